"""Build the configured mailbox source; the only place settings meet the adapters."""

from __future__ import annotations

from mailbot.config import MailboxSettings
from mailbot.errors import ConfigError
from mailbot.mailbox.base import MailboxSource, Outcome
from mailbot.mailbox.imap import ImapSettings, ImapSource
from mailbot.mailbox.maildir import MaildirSource


def source_from_settings(settings: MailboxSettings) -> MailboxSource:
    folders: dict[Outcome, str] = {
        "processed": settings.folders.processed,
        "needs_review": settings.folders.needs_review,
        "ignored": settings.folders.ignored,
    }
    if settings.kind == "maildir":
        return MaildirSource(settings.path, folders)
    assert settings.host and settings.username  # validated in config
    password = settings.resolve()
    if password is None:
        raise ConfigError(
            "mailbox: IMAP needs a password source (password_file, password_env or "
            "password_credential)"
        )
    return ImapSource(
        ImapSettings(
            host=settings.host,
            port=settings.port,
            username=settings.username,
            password=password,
            security=settings.security,
            ca_file=settings.ca_file,
            inbox=settings.inbox,
            folders=folders,
            batch_size=settings.batch_size,
            timeout=settings.timeout_seconds,
        )
    )
