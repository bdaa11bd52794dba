"""Build the configured transport; the only place settings meet the adapters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailbot.config import OutboxSettings
from mailbot.errors import ConfigError
from mailbot.transport.base import Transport
from mailbot.transport.maildir import MaildirTransport

if TYPE_CHECKING:
    from mailbot.oauth import TokenProvider


def transport_from_settings(settings: OutboxSettings) -> Transport:
    if settings.kind == "maildir":
        return MaildirTransport(settings.path)
    assert settings.host  # validated in config
    # smtplib and the OAuth client are loaded only for an SMTP outbox.
    from mailbot.oauth import TokenProvider
    from mailbot.transport.smtp import SmtpSettings, SmtpTransport

    provider: TokenProvider | None = None
    password: str | None = None
    if settings.auth == "xoauth2":
        if settings.oauth is None:  # validated in config; model_copy() skips validation
            raise ConfigError("outbox: auth = 'xoauth2' needs an [outbox.oauth] table")
        provider = TokenProvider.from_settings(settings.oauth, timeout=settings.timeout_seconds)
    elif settings.username:
        password = settings.resolve()
    return SmtpTransport(
        SmtpSettings(
            host=settings.host,
            port=settings.port,
            security=settings.security,
            username=settings.username,
            password=password,
            ca_file=settings.ca_file,
            timeout=settings.timeout_seconds,
            auth=settings.auth,
            token_provider=provider,
        )
    )
