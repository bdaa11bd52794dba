"""The interface outgoing mail is handed to; rows in the outbox become bytes on a wire."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Envelope:
    """What the wire needs: the SMTP envelope and the fully rendered RFC 5322 bytes."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    dedupe_key: str


class Transport(Protocol):
    """Delivers envelopes. Raises :class:`mailbot.errors.DeliveryError` with ``permanent``
    set for failures that retrying cannot fix."""

    name: str

    def open(self) -> None: ...

    def send(self, envelope: Envelope) -> None: ...

    def close(self) -> None: ...
