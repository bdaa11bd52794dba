"""Outgoing mail over SMTP (smtplib), with errors sorted into retry-later and give-up.

The outbox decides from :attr:`DeliveryError.permanent` whether to try again, so the
classification errs on the side of "transient" for anything that is not a verdict
about the message itself (server down, throttling, bad credentials, TLS trouble).

Login is by password (AUTH PLAIN/LOGIN) or XOAUTH2 (Microsoft 365, Gmail); a cached
access token the server refuses is refreshed once and tried again on the same connection.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mailbot.errors import ConfigError, DeliveryError
from mailbot.net import is_loopback
from mailbot.oauth import AccessToken, OAuthError, TokenProvider, xoauth2_string
from mailbot.transport.base import Envelope

log = logging.getLogger(__name__)

Security = Literal["ssl", "starttls", "none"]
_SECURITIES: tuple[Security, ...] = ("ssl", "starttls", "none")
_DEFAULT_PORTS: dict[Security, int] = {"ssl": 465, "starttls": 587, "none": 25}
Auth = Literal["password", "xoauth2"]
_AUTHS: tuple[Auth, ...] = ("password", "xoauth2")
CHECK_IDLE_AFTER = 30.0
"""Seconds a connection may sit idle before it is checked with NOOP before a mail."""


@dataclass(frozen=True, kw_only=True)
class SmtpSettings:
    """How to reach the submission server. ``password`` never appears in repr.

    ``auth="xoauth2"`` logs in as ``username`` with a bearer token from ``token_provider``;
    with ``auth="password"`` a ``username`` means AUTH with ``password``, none means no AUTH.
    Contradictions are :class:`ConfigError` at construction, before any mail is queued.
    """

    host: str
    port: int | None = None
    """Defaults to 465 for ``ssl``, 587 for ``starttls`` and 25 for ``none``."""
    security: Security = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    """PEM bundle of a private CA; the system trust store is used when unset."""
    timeout: float = 60.0
    local_hostname: str | None = None
    """Name sent in EHLO; smtplib's FQDN guess when unset."""
    auth: Auth = "password"
    token_provider: TokenProvider | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.security not in _SECURITIES:
            raise ConfigError(
                f"unknown SMTP security {self.security!r}; use one of {', '.join(_SECURITIES)}"
            )
        if self.security == "none" and not is_loopback(self.host):
            raise ConfigError(
                f"SMTP security 'none' is refused for {self.host}: the password and every reply "
                "would cross the network unencrypted. Use 'starttls' (port 587) or 'ssl' "
                "(port 465); 'none' is only allowed for localhost."
            )
        if self.auth not in _AUTHS:
            raise ConfigError(f"unknown SMTP auth {self.auth!r}; use one of {', '.join(_AUTHS)}")
        if self.auth == "xoauth2":
            if not self.username:
                raise ConfigError(
                    "SMTP auth 'xoauth2' needs username: the mailbox the token was granted for"
                )
            if self.token_provider is None:
                raise ConfigError(
                    "SMTP auth 'xoauth2' needs a token provider (the [outbox.oauth] settings)"
                )
        elif self.username and self.password is None:
            raise ConfigError(f"SMTP username {self.username!r} is set but no password")

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else _DEFAULT_PORTS[self.security]


def _code_is_permanent(code: int) -> bool:
    """5xx is the server's final word on this message; 4xx (and Exchange's 432) means later."""
    return 500 <= code < 600


def _reply_text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


class SmtpTransport:
    """Sends envelopes over one SMTP connection, reused until :meth:`close`."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        scheme = {"ssl": "smtps", "starttls": "smtp+starttls", "none": "smtp"}[settings.security]
        user = f"{settings.username}@" if settings.username else ""
        self.name = f"{scheme}://{user}{settings.host}:{settings.effective_port}"
        self._conn: smtplib.SMTP | None = None
        self._used_at = 0.0
        """When the connection last answered a mail transaction (monotonic clock)."""
        self._fresh = False
        """The connection was opened for the mail now being sent: a failure is real."""

    def open(self) -> None:
        if self._conn is None:
            self._conn = self._connect()
            self._fresh = True
            self._used_at = time.monotonic()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()

    def _reset(self) -> None:
        """Throw the connection away so the next send starts on a fresh one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def _ssl_context(self) -> ssl.SSLContext:
        ca_file = self.settings.ca_file
        try:
            return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        except (OSError, ssl.SSLError) as e:
            raise DeliveryError(
                f"cannot load the CA file {ca_file} for {self.name}: {e}; point ca_file at a "
                "readable PEM file with your CA certificate",
                permanent=False,
            ) from e

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        where = f"{s.host}:{s.effective_port}"
        conn: smtplib.SMTP | None = None
        try:
            if s.security == "ssl":
                conn = smtplib.SMTP_SSL(
                    s.host,
                    s.effective_port,
                    local_hostname=s.local_hostname,
                    timeout=s.timeout,
                    context=self._ssl_context(),
                )
            else:
                conn = smtplib.SMTP(
                    s.host, s.effective_port, local_hostname=s.local_hostname, timeout=s.timeout
                )
            conn.ehlo()
            if s.security == "starttls":
                conn.starttls(context=self._ssl_context())
                conn.ehlo()
            if s.auth == "xoauth2":
                self._xoauth2_login(conn, where)
            elif s.username:
                conn.login(s.username, s.password or "")  # None refused by SmtpSettings
        except DeliveryError:
            _close_quietly(conn)
            raise
        except Exception as e:
            _close_quietly(conn)
            raise DeliveryError(_connect_hint(where, s.username, e, s.auth), permanent=False) from e
        log.info("Connected to %s", self.name)
        return conn

    def _token(self, rejected: AccessToken | None = None) -> AccessToken:
        provider = self.settings.token_provider
        assert provider is not None  # checked by SmtpSettings
        try:
            return provider.get(rejected=rejected)
        except OAuthError as e:
            # Not a verdict on any message: the outbox keeps it and tries again later.
            raise DeliveryError(f"no access token for {self.name}: {e}", permanent=False) from e

    def _xoauth2_login(self, conn: smtplib.SMTP, where: str) -> None:
        """AUTH XOAUTH2 with an initial response; a refused cached token is refreshed once."""
        user = self.settings.username or ""
        if not conn.has_extn("auth"):
            raise smtplib.SMTPNotSupportedError("the server offers no AUTH")
        offered = conn.esmtp_features.get("auth", "").upper().split()
        if "XOAUTH2" not in offered:
            raise DeliveryError(
                f"SMTP server {where} does not offer AUTH XOAUTH2 (only {' '.join(offered)}); "
                "check host and port, or use auth = 'password' for this server",
                permanent=False,
            )
        token = self._token()
        try:
            conn.auth("XOAUTH2", _xoauth2_responder(user, token.value), initial_response_ok=True)
            return
        except smtplib.SMTPAuthenticationError as e:
            if token.refreshed or not _code_is_permanent(e.smtp_code):
                raise
            log.info(
                "SMTP server %s refused the cached access token for %s (%d); refreshing it and "
                "trying once more",
                where,
                user,
                e.smtp_code,
            )
        token = self._token(rejected=token)
        conn.auth("XOAUTH2", _xoauth2_responder(user, token.value), initial_response_ok=True)

    def _connection(self) -> smtplib.SMTP:
        """The open connection. One idle for longer than :data:`CHECK_IDLE_AFTER` is
        checked with NOOP first; a recently used one is trusted (a NOOP per mail was a
        round trip each), and :meth:`send` starts over once if it turns out dropped."""
        if self._conn is not None and time.monotonic() - self._used_at > CHECK_IDLE_AFTER:
            try:
                code, _ = self._conn.noop()
            except (smtplib.SMTPException, OSError):
                code = -1
            if code != 250:
                log.info("SMTP connection to %s went stale; reconnecting", self.name)
                self._reset()
        if self._conn is None:
            self._conn = self._connect()
            self._fresh = True
        return self._conn

    def _transaction(self, envelope: Envelope, options: list[str]) -> dict[str, tuple[int, bytes]]:
        """One mail transaction, as smtplib's ``sendmail``; a trusted connection that
        went away before MAIL FROM was answered (nothing of this mail reached the
        server) is replaced once."""
        conn = self._connection()
        try:
            code, resp = _mail_from(conn, envelope, options)
        except (smtplib.SMTPServerDisconnected, OSError):
            if self._fresh:
                raise
            code, resp = 421, b"connection dropped"
        if code == 421 and not self._fresh:  # the server's idle timeout, usually
            log.info("SMTP connection to %s was dropped; reconnecting", self.name)
            self._reset()
            conn = self._connection()
            code, resp = _mail_from(conn, envelope, options)
        self._fresh = False
        if code != 250:
            if code == 421:
                conn.close()
            else:
                _rset(conn)
            raise smtplib.SMTPSenderRefused(code, resp, envelope.sender)
        refused = _rcpt_and_data(conn, envelope)
        self._used_at = time.monotonic()
        return refused

    def send(self, envelope: Envelope) -> None:
        if not envelope.recipients:
            raise DeliveryError("envelope has no recipients", permanent=True)
        addresses = [envelope.sender, *envelope.recipients]
        # Non-ASCII addresses need SMTPUTF8; smtplib refuses them otherwise.
        options = ["SMTPUTF8"] if any(not a.isascii() for a in addresses) else []
        try:
            refused = self._transaction(envelope, options)
        except smtplib.SMTPNotSupportedError as e:
            # Only SMTPUTF8 can get here; this server will never accept these addresses.
            self._reset()
            raise DeliveryError(
                f"{self.name} cannot take non-ASCII addresses ({e})", permanent=True
            ) from e
        except smtplib.SMTPRecipientsRefused as e:
            # Every recipient was refused; the session was RSET and stays usable, but a
            # fresh one is cheap and avoids trusting a half-known state.
            self._reset()
            details = "; ".join(
                f"{rcpt}: {code} {_reply_text(msg)}" for rcpt, (code, msg) in e.recipients.items()
            )
            permanent = any(_code_is_permanent(code) for code, _ in e.recipients.values())
            raise DeliveryError(
                f"recipients refused by {self.name}: {details}", permanent=permanent
            ) from e
        except smtplib.SMTPResponseException as e:
            # Sender refused, DATA refused, or any other reply code: its class decides.
            self._reset()
            raise DeliveryError(
                f"{self.name} answered {e.smtp_code} {_reply_text(e.smtp_error)}",
                permanent=_code_is_permanent(e.smtp_code),
            ) from e
        except (smtplib.SMTPException, OSError) as e:
            # Disconnects, timeouts, resets: nothing was decided about the message.
            self._reset()
            raise DeliveryError(f"connection to {self.name} failed: {e!r}", permanent=False) from e
        if refused:
            # Some recipients got it; a retry would duplicate it for them, so report and move on.
            log.warning(
                "%s accepted message %s for some recipients but refused: %s",
                self.name,
                envelope.dedupe_key,
                ", ".join(f"{rcpt} ({code})" for rcpt, (code, _msg) in refused.items()),
            )
        log.debug("Sent %s via %s", envelope.dedupe_key, self.name)


def _mail_from(conn: smtplib.SMTP, envelope: Envelope, options: list[str]) -> tuple[int, bytes]:
    """MAIL FROM as smtplib's ``sendmail`` sends it (SIZE, the options)."""
    conn.ehlo_or_helo_if_needed()
    esmtp_opts = []
    if conn.does_esmtp:
        if conn.has_extn("size"):
            esmtp_opts.append(f"size={len(envelope.data)}")
        esmtp_opts.extend(options)
    return conn.mail(envelope.sender, esmtp_opts)


def _rset(conn: smtplib.SMTP) -> None:
    """RSET, ignoring a connection already gone (as ``sendmail`` does)."""
    try:
        conn.rset()
    except smtplib.SMTPServerDisconnected:
        pass


def _rcpt_and_data(conn: smtplib.SMTP, envelope: Envelope) -> dict[str, tuple[int, bytes]]:
    """The rest of smtplib's ``sendmail`` after MAIL FROM: the same replies, the same
    exceptions, the refused recipients returned when some were accepted."""
    refused: dict[str, tuple[int, bytes]] = {}
    for rcpt in envelope.recipients:
        code, resp = conn.rcpt(rcpt)
        if code not in (250, 251):
            refused[rcpt] = (code, resp)
        if code == 421:
            conn.close()
            raise smtplib.SMTPRecipientsRefused(refused)
    if len(refused) == len(envelope.recipients):
        _rset(conn)
        raise smtplib.SMTPRecipientsRefused(refused)
    code, resp = conn.data(envelope.data)
    if code != 250:
        if code == 421:
            conn.close()
        else:
            _rset(conn)
        raise smtplib.SMTPDataError(code, resp)
    return refused


def _xoauth2_responder(user: str, token: str) -> Callable[..., str]:
    """smtplib's ``authobject``: the XOAUTH2 string first (or for an empty 334 challenge);
    a non-empty challenge is the server's JSON error report, answered with an empty line
    so that it ends the exchange with its 5xx."""

    def respond(challenge: bytes | None = None) -> str:
        return "" if challenge else xoauth2_string(user, token)

    return respond


def _close_quietly(conn: smtplib.SMTP | None) -> None:
    if conn is None:
        return
    try:
        conn.close()
    except OSError:
        pass


def _connect_hint(
    where: str, username: str | None, error: BaseException, auth: Auth = "password"
) -> str:
    """An admin-facing explanation of why the SMTP session could not be set up."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate of SMTP server {where} could not be verified ({error}). If it "
            "uses a private CA, set ca_file to that CA's PEM file; otherwise fix the server "
            "certificate. Verification is never switched off."
        )
    if isinstance(error, smtplib.SMTPAuthenticationError) and auth == "xoauth2":
        if not _code_is_permanent(error.smtp_code):
            return (
                f"SMTP server {where} could not check the access token right now "
                f"({error.smtp_code} {_reply_text(error.smtp_error)}); will retry"
            )
        return (
            f"SMTP XOAUTH2 login as {username!r} on {where} was refused ({error.smtp_code} "
            f"{_reply_text(error.smtp_error)}) even with a freshly refreshed access token; check "
            "that username is the mailbox the token was granted for and that the scope allows "
            "SMTP (Microsoft 365: https://outlook.office.com/SMTP.Send and SMTP AUTH enabled "
            "for the mailbox; Gmail: https://mail.google.com/)"
        )
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return (
            f"SMTP login as {username!r} on {where} was refused ({error.smtp_code} "
            f"{_reply_text(error.smtp_error)}); check the username and password"
        )
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return (
            f"SMTP server {where} does not support what the configuration needs ({error}). "
            "STARTTLS is usually offered on port 587 (implicit TLS: security 'ssl', port "
            "465); login needs the AUTH extension, which many servers only offer after TLS"
        )
    if isinstance(error, ssl.SSLError):
        return (
            f"TLS handshake with SMTP server {where} failed ({error}); use security 'ssl' for "
            "port 465 and 'starttls' for ports 587/25"
        )
    return f"cannot connect to SMTP server {where}: {error!r}; check host, port and that it is up"
