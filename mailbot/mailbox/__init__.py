"""Mailbox sources: where registration mail comes from (IMAP in production, Maildir locally)."""

from mailbot.mailbox.base import Cursor, MailboxSource, Outcome, RawMessage
from mailbot.mailbox.imap import (
    ImapSettings,
    ImapSource,
    MailboxSetupError,
    connect_with_backoff,
)
from mailbot.mailbox.maildir import DEFAULT_FOLDERS, MaildirSource

__all__ = [
    "DEFAULT_FOLDERS",
    "Cursor",
    "ImapSettings",
    "ImapSource",
    "MailboxSetupError",
    "MailboxSource",
    "MaildirSource",
    "Outcome",
    "RawMessage",
    "connect_with_backoff",
]
