"""Plain data the form parsers return; no database, no mail, no I/O.

Field names and JSON shape follow the ``mailbot parse`` contract in FORM.md.
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

    def to_json(self) -> dict[str, Any]:
        """The dict printed by ``mailbot parse --json`` (``reason`` only when not ok)."""
        data = asdict(self)
        if self.status == "ok" or self.reason is None:
            data.pop("reason")
        return data
