"""What reading one message's attachments may cost: documents, scans and seconds.

Each document already has its own deadline in the reader process; this budget is
shared by the whole message, so a mail with hundreds of files (or a few dense scans)
cannot hold up every message behind it. Identical files are read once. When the budget
is spent the rest is left unread and :meth:`MessageBudget.refusal` says why, in words
an admin understands.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["MessageBudget"]

_SCAN_FORMATS = frozenset({"image"})
"""Formats only OCR can read; a scanned PDF is only known to be one after reading."""


@dataclass
class MessageBudget:
    """Counts what has been read so far; one instance per message."""

    max_documents: int
    seconds: float
    max_scans: int
    clock: Callable[[], float] = time.monotonic
    documents: int = 0
    scans: int = 0
    duplicates: int = 0
    skipped_scans: int = 0
    _seen: set[str] = field(default_factory=set)
    _start: float | None = None

    def remaining(self) -> float:
        """Seconds left for this message (the whole budget before the first document)."""
        if self._start is None:
            return self.seconds
        return self.seconds - (self.clock() - self._start)

    def duplicate(self, sha256: str) -> bool:
        """True for a file already read in this message (counted, not read again)."""
        if sha256 in self._seen:
            self.duplicates += 1
            return True
        self._seen.add(sha256)
        return False

    def refusal(self) -> str | None:
        """Why no further document may be read, or None while the budget lasts."""
        if self.documents >= self.max_documents:
            return f"too many documents: parsed the first {self.max_documents}, the rest not read"
        if self.remaining() <= 0:
            return (
                f"time budget of {self.seconds:g} s spent after {self.documents} "
                f"document{'' if self.documents == 1 else 's'}: the rest not read"
            )
        return None

    def scan_refused(self, fmt: str) -> bool:
        """True (and counted) for a scan beyond ``max_scans``: it would need OCR."""
        if fmt in _SCAN_FORMATS and self.scans >= self.max_scans:
            self.skipped_scans += 1
            return True
        return False

    def start(self) -> None:
        """Mark the start of one document's reading (the clock runs from the first)."""
        if self._start is None:
            self._start = self.clock()

    def spent(self, fmt: str, method: str | None) -> None:
        """Count one document read, and a scan if it was an image or read by OCR."""
        self.documents += 1
        if fmt in _SCAN_FORMATS or method == "ocr":
            self.scans += 1

    def notes(self) -> list[str]:
        """Reasons for review about what was left unread (scans), and plain notes."""
        out = []
        if self.skipped_scans:
            out.append(
                f"scan budget of {self.max_scans} spent: {self.skipped_scans} more "
                f"scan{'' if self.skipped_scans == 1 else 's'} not read"
            )
        return out

    def duplicates_note(self) -> str | None:
        """A plain note (not a problem) when the same file was attached more than once."""
        if not self.duplicates:
            return None
        return f"{self.duplicates} identical attachment{'' if self.duplicates == 1 else 's'} read once"
