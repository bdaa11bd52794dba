"""What :func:`~mailbot.mime.parse_message` returns, and the limits it works within.

Frozen dataclasses only: the pipeline, loop guard and store read these, and nothing
downstream may change what the mail said.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

__all__ = [
    "LOOP_HEADERS",
    "Attachment",
    "DeliveryReport",
    "MiB",
    "MimeLimits",
    "ParsedMessage",
    "RecipientStatus",
]

MiB: Final = 1024 * 1024


@dataclass(frozen=True)
class MimeLimits:
    """Resource bounds for one message, so a hostile mail costs seconds, not the host."""

    max_parts: int = 500
    max_depth: int = 8
    """Nesting of containers: forwarded messages, zips, winmail.dat, opaque S/MIME."""
    max_attachment_bytes: int = 25 * MiB
    max_total_bytes: int = 100 * MiB
    max_zip_entries: int = 200
    max_zip_ratio: int = 100
    max_zip_total: int = 50 * MiB
    max_body_chars: int = 20_000
    max_uu_candidates: int = 100
    """``begin`` lines tried as uuencoded files in one body; later ones stay text."""


@dataclass(frozen=True)
class Attachment:
    """One file found anywhere in the message, ready for the form parsers."""

    filename: str
    """Decoded and sanitised: no directories, no control characters, never empty."""
    content_type: str
    """Declared type, or the type implied by the extension when the declared one is generic."""
    data: bytes = field(repr=False)
    origin: str
    """Container path for the admin, e.g. ``fwd.eml > formularze.zip > zgloszenie.docx``."""
    sha256: str
    """Hex digest, so the pipeline can recognise the same file sent twice or forwarded."""


@dataclass(frozen=True)
class RecipientStatus:
    """One per-recipient block of a delivery status notification (RFC 3464)."""

    final_recipient: str | None
    original_recipient: str | None
    action: str
    """Lower-case ``failed``, ``delayed``, ``delivered``, ``relayed``, ``expanded`` or ``""``."""
    status: str
    """Enhanced status code such as ``5.1.1`` (``""`` if absent)."""
    diagnostic: str


_ACTION_RANK: Final = {
    "failed": 4,
    "delayed": 3,
    "relayed": 2,
    "expanded": 2,
    "delivered": 1,
}


@dataclass(frozen=True)
class DeliveryReport:
    """What a DSN says about our mail, so the pipeline can mark participants as bouncing."""

    recipients: tuple[RecipientStatus, ...] = ()
    original_message_id: str | None = None
    """Message-ID of our message, from the returned message or its headers."""

    @property
    def action(self) -> str:
        """The most serious action over all recipients (``failed`` beats ``delayed``)."""
        best = max(
            self.recipients, key=lambda r: _ACTION_RANK.get(r.action, 0), default=None
        )
        return best.action if best else ""

    @property
    def status(self) -> str:
        """Status code of the recipient that gave :attr:`action`."""
        for r in self.recipients:
            if r.action == self.action:
                return r.status
        return ""

    @property
    def failed_addresses(self) -> tuple[str, ...]:
        """Final and original recipients whose action is ``failed`` (deduplicated)."""
        out: list[str] = []
        for r in self.recipients:
            if r.action == "failed":
                for addr in (r.original_recipient, r.final_recipient):
                    if addr and addr not in out:
                        out.append(addr)
        return tuple(out)


@dataclass(frozen=True)
class ParsedMessage:
    """Everything the pipeline needs from one mail; all text is decoded and header-safe."""

    message_id: str | None = None
    subject: str = ""
    from_addr: str | None = None
    from_name: str | None = None
    reply_to: str | None = None
    return_path: str | None = None
    """``""`` when the header is the null path ``<>`` (bounces), ``None`` when absent."""
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    date: datetime | None = None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    text: str = ""
    attachments: tuple[Attachment, ...] = ()
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Lower-case names of the loop/auto-reply headers (see ``LOOP_HEADERS``), decoded."""
    warnings: tuple[str, ...] = ()
    report: DeliveryReport | None = None

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Picklable (the read-ahead child sends parsed messages back): the read-only
        header view travels as a plain dict and is made read-only again on arrival."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["headers"] = dict(self.headers)
        return _unpickle, (values,)


def _unpickle(values: dict[str, Any]) -> ParsedMessage:
    return ParsedMessage(**{**values, "headers": MappingProxyType(values["headers"])})


LOOP_HEADERS: Final = (
    "auto-submitted",
    "precedence",
    "x-precedence",
    "list-id",
    "list-unsubscribe",
    "list-post",
    "x-mailing-list",
    "x-loop",
    "x-auto-response-suppress",
    "x-autoreply",
    "x-autorespond",
    "x-autogenerated",
    "x-apple-action",
    "x-ms-exchange-message-is-ndr",
    "x-failed-recipients",
    "x-mailbot-kind",
    "content-type",
)
"""Headers copied into ``ParsedMessage.headers`` (root message only)."""
