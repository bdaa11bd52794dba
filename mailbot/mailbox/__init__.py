"""Mailbox sources: where registration mail comes from (IMAP in production, Maildir locally).

The names below are loaded on first access (PEP 562): importing one submodule, say
``mailbot.mailbox.base`` for a Maildir pass, must not drag in the IMAP client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailbot.mailbox.base import Cursor, MailboxSource, Outcome, RawMessage
    from mailbot.mailbox.imap import (
        ImapSettings,
        ImapSource,
        MailboxSetupError,
        connect_with_backoff,
    )
    from mailbot.mailbox.maildir import DEFAULT_FOLDERS, MaildirSource

_HOME = {
    "Cursor": "base",
    "MailboxSource": "base",
    "Outcome": "base",
    "RawMessage": "base",
    "ImapSettings": "imap",
    "ImapSource": "imap",
    "MailboxSetupError": "imap",
    "connect_with_backoff": "imap",
    "DEFAULT_FOLDERS": "maildir",
    "MaildirSource": "maildir",
}

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


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
