"""Build the configured mailbox source; the only place settings meet the adapters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailbot.config import MailboxSettings
from mailbot.errors import ConfigError
from mailbot.mailbox.base import MailboxSource, Outcome
from mailbot.mailbox.maildir import MaildirSource

if TYPE_CHECKING:
    from mailbot.oauth import TokenProvider


def source_from_settings(settings: MailboxSettings) -> MailboxSource:
    folders: dict[Outcome, str] = {
        "processed": settings.folders.processed,
        "needs_review": settings.folders.needs_review,
        "ignored": settings.folders.ignored,
    }
    if settings.kind == "maildir":
        return MaildirSource(settings.path, folders)
    from mailbot.mailbox.imap import ImapSettings, ImapSource  # the IMAP client: not for a Maildir
    from mailbot.oauth import TokenProvider

    assert settings.host and settings.username  # validated in config
    password = ""
    provider: TokenProvider | None = None
    if settings.auth == "xoauth2":
        if settings.oauth is None:  # validated in config; model_copy() skips validation
            raise ConfigError("mailbox: auth = 'xoauth2' needs a [mailbox.oauth] table")
        provider = TokenProvider.from_settings(settings.oauth, timeout=settings.timeout_seconds)
    else:
        resolved = settings.resolve()
        if resolved is None:
            raise ConfigError(
                "mailbox: IMAP needs a password source (password_file, password_env or "
                "password_credential), or auth = 'xoauth2' with a [mailbox.oauth] table"
            )
        password = resolved
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
            auth=settings.auth,
            token_provider=provider,
        )
    )
