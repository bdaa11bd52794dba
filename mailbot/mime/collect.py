"""What the walk keeps from a message, within the output limits of :class:`MimeLimits`.

Body text, attachments and warnings only grow through here, so the body-length,
attachment-size and total-size budgets (and the warning that says which one was
hit) are enforced in one place whatever container a file came out of.
"""

from __future__ import annotations

import hashlib
from typing import Final

from mailbot.mime.model import Attachment, MimeLimits
from mailbot.mime.names import sanitize_filename, type_for, unnamed_extension
from mailbot.mime.text import clean, tidy_text

__all__ = ["Collector"]

_MAX_WARNINGS: Final = 100


class Collector:
    """Bounded accumulation of body text, attachments and warnings for one message."""

    def __init__(self, limits: MimeLimits) -> None:
        self.limits = limits
        self.total_bytes = 0
        self.total_limit_hit = False
        self.attachments: list[Attachment] = []
        self.texts: list[str] = []
        self.text_len = 0
        self.text_truncated = False
        self.warnings: list[str] = []
        self.counter = 0

    def warn(self, text: str) -> None:
        text = clean(text, 300)
        if text not in self.warnings and len(self.warnings) < _MAX_WARNINGS:
            self.warnings.append(text)

    def add_text(self, text: str) -> None:
        room = self.limits.max_body_chars - self.text_len
        if room <= 0:
            if text.strip():
                self.text_truncated = True
            return
        text = tidy_text(text[: max(4 * room, 4096)])  # tidying only shrinks text
        if not text:
            return
        if len(text) > room:
            text = text[:room]
            self.text_truncated = True
        self.texts.append(text)
        self.text_len += len(text) + 2

    def add_attachment(
        self, name: str | None, ctype: str, data: bytes, path: tuple[str, ...]
    ) -> None:
        lim = self.limits
        shown = sanitize_filename(name) or "attachment"
        if not data:
            self.warn(f"attachment {shown} is empty, skipped")
            return
        if len(data) > lim.max_attachment_bytes:
            self.warn(
                f"attachment {shown} skipped: {len(data)} bytes exceeds {lim.max_attachment_bytes}"
            )
            return
        if self.total_bytes + len(data) > lim.max_total_bytes:
            if not self.total_limit_hit:
                self.warn(
                    f"total attachment size limit ({lim.max_total_bytes} bytes) reached: {shown} and later files skipped"
                )
            self.total_limit_hit = True
            return
        self.counter += 1
        filename = sanitize_filename(name)
        if not filename:
            filename = f"zalacznik-{self.counter}{unnamed_extension(ctype, data)}"
        digest = hashlib.sha256(data).hexdigest()
        origin = " > ".join((*path, filename))
        self.total_bytes += len(data)
        self.attachments.append(
            Attachment(filename, type_for(ctype, filename), data, origin, digest)
        )
