"""Plain data the form parsers return; no database, no mail, no I/O.

Field names and JSON shape follow the ``mailbot parse`` contract in docs/forms.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "not_a_form", "unreadable"]
Method = Literal["fields", "table", "text", "ocr"]
ProblemCode = Literal["missing", "invalid", "unknown", "ambiguous", "low_confidence"]


@dataclass(frozen=True)
class EventRef:
    """What a parser needs to know of a configured event to recognise it on a form."""

    key: str
    title: str
    city: str
    date: dt.date


@dataclass(frozen=True)
class Limits:
    """Resource limits for opening untrusted documents safely."""

    max_file_bytes: int = 25 * 1024 * 1024
    max_decompressed_bytes: int = 50 * 1024 * 1024
    max_zip_entries: int = 2000
    max_pdf_pages: int = 50
    max_image_pixels: int = 40_000_000
    timeout_seconds: float = 60.0
    max_paragraphs: int = 20_000
    """docx/odt paragraphs (a form has a few hundred): reading costs ~60 µs each, so
    a 48 MB body of them ends ``unreadable`` in milliseconds instead of a minute."""
    max_table_rows: int = 5_000
    """docx/odt table rows (a form has a few dozen); each costs ~1 ms to label."""
    max_text_runs: int = 8_000
    """PDF text runs per page (a dense page drawn glyph by glyph has ~4,000): PDFium
    finds a run's text in time linear in the page's text, so a page costs runs²."""
    max_participants: int = 200
    """People read from one form (a real one has a few dozen); the rest are left out
    with a problem, so one form cannot flood the registrations."""


@dataclass
class Institution:
    name: str | None = None
    address: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass
class Participant:
    full_name: str | None = None
    position: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass
class Consents:
    data_processing: bool = False
    newsletter: bool = False


@dataclass
class Problem:
    field: str
    code: ProblemCode
    message: str
    suggestion: str | None = None
    """``low_confidence`` only: the one close alternative a cross-check points to
    ("jan.kowalski@nysa.pl" for a read "jan.kowalskl@nysa.pl"). The value read is kept
    as written; the suggestion is for the person who confirms it, never applied."""


@dataclass
class Provenance:
    """Where one value came from and how sure the reader is of it.

    ``confidence`` is 0–1: a clean content-control value is near 1, a value joined from
    wrapped lines or read by OCR lower; below ``CONFIDENCE_THRESHOLD`` the field gets a
    ``low_confidence`` problem. ``notes`` say why it is lower (``joined lines``,
    ``ocr 61``, ``e-mail does not match the name``) for ``mailbot review``.
    """

    source: Method
    confidence: float
    notes: list[str] = field(default_factory=list)


CONFIDENCE_THRESHOLD = 0.8


@dataclass
class FormData:
    """The result of parsing one file: a form, or a clear reason why it is not one."""

    file: str
    status: Status
    format: str | None
    method: Method | None = None
    event: str | None = None
    institution: Institution | None = None
    participants: list[Participant] = field(default_factory=list)
    workshops: list[str] = field(default_factory=list)
    remarks: str | None = None
    consents: Consents | None = None
    problems: list[Problem] = field(default_factory=list)
    reason: str | None = None
    """Why the file is ``not_a_form`` or ``unreadable``; not part of an ``ok`` result."""
    provenance: dict[str, Provenance] = field(default_factory=dict)
    """Per field path (``participants[0].email``): its source and confidence."""

    def to_json(self, *, provenance: bool = False) -> dict[str, Any]:
        """The dict printed by ``mailbot parse --json`` (``reason`` only when not ok;
        a problem's ``suggestion`` only when there is one). ``provenance`` adds each
        field's source and confidence (``mailbot parse --provenance``); the contract's
        keys stay exactly as docs/forms.md lists them without it."""
        data = asdict(self)
        if self.status == "ok" or self.reason is None:
            data.pop("reason")
        if not provenance:
            data.pop("provenance")
        for problem in data["problems"]:
            if problem.get("suggestion") is None:
                problem.pop("suggestion", None)
        return data

    def doubtful(self, path: str) -> Problem | None:
        """The ``low_confidence`` problem of field ``path``, if the reader doubts it."""
        return next(
            (p for p in self.problems if p.field == path and p.code == "low_confidence"),
            None,
        )
