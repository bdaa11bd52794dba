"""``check-config --connect``: log in where the service will, and say what is offered.

Logins go through the service's own adapters (:mod:`mailbot.mailbox.imap`,
:mod:`mailbot.transport.smtp`, their factories, :mod:`mailbot.oauth`), so TLS is verified
and errors carry the same hints as in production. Nothing touches mail: no SELECT, no
folder creation, no MAIL FROM — only CAPABILITY/EHLO, login and logout. Secrets are
handed to the adapters and never printed.
"""

from __future__ import annotations

import contextlib
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from imapclient import IMAPClient

from mailbot.config import MailboxSettings, OutboxSettings, Settings
from mailbot.errors import MailbotError

_IMAP_FEATURES = ("IDLE", "MOVE", "UIDPLUS")


@dataclass(frozen=True)
class ProbeResult:
    what: str
    """``mailbox``, ``outbox`` or ``database``."""
    where: str
    """The endpoint as the logs name it (never with a password)."""
    ok: bool
    summary: str
    """What the server offers, or why the login failed and what to do."""
    warnings: tuple[str, ...] = field(default=())


def probe_all(settings: Settings) -> Iterator[ProbeResult]:
    yield probe_mailbox(settings.mailbox)
    yield probe_outbox(settings.outbox)
    yield probe_database(settings)


def probe_mailbox(settings: MailboxSettings) -> ProbeResult:
    if settings.kind == "maildir":
        return ProbeResult("mailbox", f"maildir:{settings.path}", True, "a local Maildir: no login")
    from mailbot.mailbox.factory import source_from_settings
    from mailbot.mailbox.imap import ImapSource

    where = f"imap://{settings.username}@{settings.host}"
    try:
        source = source_from_settings(settings)  # resolves the password or token provider
        assert isinstance(source, ImapSource)
        where = source.name
        client = source._connect_once()  # login only: open() would also create folders
    except (MailbotError, OSError) as e:
        return ProbeResult("mailbox", where, False, f"cannot log in: {e}")
    try:
        caps = _names(client.capabilities())
    except Exception as e:  # noqa: BLE001 - the login worked; report what failed after it
        caps = set()
        warnings = [f"CAPABILITY failed after login: {e}"]
    else:
        warnings = []
    finally:
        with contextlib.suppress(Exception):
            client.logout()
    auth = _imap_auth_mechanisms(source)
    tls = {"ssl": "implicit TLS", "starttls": "STARTTLS", "none": "no TLS (loopback)"}[settings.security]
    offers = ", ".join(f"{name} {'yes' if name in caps else 'no'}" for name in _IMAP_FEATURES)
    summary = f"logged in ({settings.auth}) over {tls}; offers {offers}"
    if auth:
        summary += f"; AUTH {' '.join(auth)}"
    if settings.idle and "IDLE" not in caps:
        warnings.append(f"no IDLE: mailbot polls every {settings.poll_seconds} s instead")
    if not {"MOVE", "UIDPLUS"} & caps:
        warnings.append(
            "neither MOVE nor UIDPLUS: filed mail is copied and flagged \\Deleted, and stays "
            "in the inbox until the server expunges it"
        )
    return ProbeResult("mailbox", where, True, summary, tuple(warnings))


def _imap_auth_mechanisms(source: Any) -> list[str]:
    """AUTH= mechanisms, which servers announce only before login: a second, anonymous
    look (same verified TLS). Best effort: the login above already proved the setup."""
    s = source.settings
    try:
        context = source._ssl_context() if s.security != "none" else None
        client = IMAPClient(
            s.host,
            port=s.effective_port,
            ssl=s.security == "ssl",
            ssl_context=context if s.security == "ssl" else None,
            timeout=s.timeout,
        )
    except Exception:  # noqa: BLE001 - best effort, see above
        return []
    try:
        if s.security == "starttls":
            client.starttls(context)
        caps = _names(client.capabilities())
    except Exception:  # noqa: BLE001 - best effort
        return []
    finally:
        with contextlib.suppress(Exception):
            client.logout()
    return sorted(c.split("=", 1)[1] for c in caps if c.startswith("AUTH="))


def _names(capabilities: Any) -> set[str]:
    return {
        (c.decode("ascii", "replace") if isinstance(c, bytes) else str(c)).upper()
        for c in capabilities
    }


def probe_outbox(settings: OutboxSettings) -> ProbeResult:
    if settings.kind == "maildir":
        return ProbeResult("outbox", f"maildir:{settings.path}", True, "a local Maildir: no login")
    from mailbot.transport.factory import transport_from_settings
    from mailbot.transport.smtp import SmtpTransport

    where = f"smtp://{settings.host}"
    try:
        transport = transport_from_settings(settings)  # resolves the password or token provider
        assert isinstance(transport, SmtpTransport)
        where = transport.name
        conn = transport._connect()  # EHLO, STARTTLS, EHLO, AUTH: the service's own session setup
    except (MailbotError, OSError) as e:
        return ProbeResult("outbox", where, False, f"cannot log in: {e}")
    try:
        features = dict(conn.esmtp_features)
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            conn.quit()
    tls = {
        "ssl": "implicit TLS",
        "starttls": "STARTTLS",
        "none": "no TLS (loopback)",
    }[settings.security]
    login = f"logged in ({settings.auth})" if settings.username else "connected (no login: username not set)"
    parts = [f"{login} over {tls}"]
    auth = features.get("auth", "").split()
    parts.append(f"AUTH {' '.join(a.upper() for a in auth)}" if auth else "no AUTH offered")
    extras = [name.upper() for name in ("smtputf8", "8bitmime", "pipelining") if name in features]
    if "size" in features:
        extras.append(f"SIZE {features['size']}".strip())
    if extras:
        parts.append("offers " + ", ".join(extras))
    warnings = []
    if "smtputf8" not in features:
        warnings.append("no SMTPUTF8: replies to addresses with non-ASCII local parts will fail")
    return ProbeResult("outbox", where, True, "; ".join(parts), tuple(warnings))


def probe_database(settings: Settings) -> ProbeResult:
    """Connect and ``SELECT 1``; a SQLite file is only looked at (connecting creates it)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    try:
        url = make_url(settings.db_url)
    except Exception as e:  # noqa: BLE001 - a malformed URL: say so
        return ProbeResult("database", "(database_url)", False, f"not a database URL: {e}")
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite":
        from pathlib import Path

        file = Path(url.database or "")
        if file.exists():
            return ProbeResult("database", shown, True, "SQLite file exists")
        return ProbeResult("database", shown, True, "SQLite file will be created on the first run")
    try:
        engine = create_engine(url)
    except ImportError as e:
        return ProbeResult(
            "database", shown, False,
            f"no driver for it ({e}); for PostgreSQL install mailbot[postgres]",
        )
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as e:
        reason = (str(getattr(e, "orig", None) or e).strip().splitlines() or ["?"])[0]
        return ProbeResult("database", shown, False, f"cannot connect: {reason}")
    finally:
        engine.dispose()
    return ProbeResult("database", shown, True, "connected (SELECT 1)")
