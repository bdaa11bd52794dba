"""The one small interface every mailbox source implements.

Sources yield raw bytes and file messages into folders when told to; they know nothing
of forms, registrations or the database.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from mailbot.errors import MailboxError

Outcome = Literal["processed", "needs_review", "ignored"]


@dataclass(frozen=True)
class Cursor:
    """Where a source stopped: UIDVALIDITY and the highest UID handed out (IMAP only)."""

    uidvalidity: int
    uid: int


@dataclass(frozen=True)
class RawMessage:
    """One message exactly as the mailbox holds it."""

    ref: str
    """Source-specific handle used by :meth:`MailboxSource.file` (Maildir key, IMAP UID)."""
    data: bytes
    folder: str
    cursor: Cursor | None = None
    """Set by IMAP: the position of this message, for the high-water mark."""


class MailboxSource(Protocol):
    """A mailbox that hands out new messages and files them once their outcome is stored."""

    name: str
    """Human-readable description without secrets, e.g. ``imaps://bot@host:993/INBOX``."""

    def open(self) -> None: ...

    def close(self) -> None: ...

    def fetch(self, after: Cursor | None) -> Iterator[RawMessage]:
        """Yield the messages waiting in the inbox (IMAP: only UIDs above ``after``
        when its UIDVALIDITY still matches, all of them otherwise)."""
        ...

    def file(self, message: RawMessage, outcome: Outcome) -> None:
        """Move a message to the folder configured for ``outcome``. Never deletes mail
        except the source copy of a completed COPY during a move."""
        ...


@runtime_checkable
class BatchFiling(Protocol):
    """A source that files many messages at once (IMAP: one MOVE per target folder)."""

    def file_many(self, messages: Sequence[tuple[RawMessage, Outcome]]) -> list[MailboxError | None]:
        """Per message: None when it was filed (or is no longer there), else the error."""
        ...


def file_all(source: MailboxSource, messages: Sequence[tuple[RawMessage, Outcome]]) -> list[MailboxError | None]:
    """File ``messages`` in one go where the source can, one by one where it cannot."""
    if isinstance(source, BatchFiling):
        return source.file_many(messages)
    errors: list[MailboxError | None] = []
    for message, outcome in messages:
        try:
            source.file(message, outcome)
        except MailboxError as e:
            errors.append(e)
        else:
            errors.append(None)
    return errors
