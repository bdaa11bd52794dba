"""Build the configured transport; the only place settings meet the adapters."""

from __future__ import annotations

from mailbot.config import OutboxSettings
from mailbot.transport.base import Transport
from mailbot.transport.maildir import MaildirTransport
from mailbot.transport.smtp import SmtpSettings, SmtpTransport


def transport_from_settings(settings: OutboxSettings) -> Transport:
    if settings.kind == "maildir":
        return MaildirTransport(settings.path)
    assert settings.host  # validated in config
    return SmtpTransport(
        SmtpSettings(
            host=settings.host,
            port=settings.port,
            security=settings.security,
            username=settings.username,
            password=settings.resolve() if settings.username else None,
            ca_file=settings.ca_file,
            timeout=settings.timeout_seconds,
        )
    )
