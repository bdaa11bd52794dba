"""An IMAP mailbox source (imapclient), built to be safe against crashes and big folders.

* ``BODY.PEEK[]`` only: fetching never marks mail as read for the humans sharing the box.
* UIDs plus UIDVALIDITY form the cursor; a UIDVALIDITY change restarts from the top
  (the pipeline deduplicates by Message-ID and content hash, so nobody registers twice).
* Filing uses MOVE, or COPY + ``\\Deleted`` + ``UID EXPUNGE`` of exactly those UIDs; a
  plain EXPUNGE is never sent because it would also purge mail other clients flagged.
  A batch of messages going to one folder is moved by one command.
* Every connection-level failure drops the connection; the next call reconnects.
* Login by password or XOAUTH2 (Microsoft 365, Gmail): a cached access token the server
  refuses is refreshed once and tried again on the same connection.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, IMAPClientError, LoginError

from mailbot.errors import MailboxError
from mailbot.mailbox.base import Cursor, Outcome, RawMessage
from mailbot.mailbox.maildir import DEFAULT_FOLDERS, validate_folders
from mailbot.net import is_loopback
from mailbot.oauth import AccessToken, OAuthError, OAuthSetupError, TokenProvider

log = logging.getLogger(__name__)

Security = Literal["ssl", "starttls", "none"]
_SECURITIES: tuple[Security, ...] = ("ssl", "starttls", "none")
Auth = Literal["password", "xoauth2"]
_AUTHS: tuple[Auth, ...] = ("password", "xoauth2")
_MAX_UID = 2**32 - 1
_MAX_IDLE_S = 25 * 60
_QUIET_S = 30.0
"""A connection silent this long is checked (NOOP) before it is used to file a message."""
"""RFC 2177: clients must re-issue IDLE before the server's 30-minute logout timer."""

_WIRE_ERRORS = (IMAPClientError, OSError, EOFError)
"""What a broken or confused connection raises (imaplib errors, sockets, TLS, timeouts)."""

T = TypeVar("T")


class MailboxSetupError(MailboxError):
    """The server answered but refused our setup (credentials, certificate, TLS mode).

    Retrying cannot help until the admin changes the configuration, so the connect
    backoff gives up at once instead of hammering the server (and its lockout rules).
    """


@dataclass(frozen=True, kw_only=True)
class ImapSettings:
    """Where and how to reach the registration mailbox. ``password`` never appears in repr.

    ``auth="xoauth2"`` logs in with a bearer token from ``token_provider`` instead of the
    password (which is then unused).
    """

    host: str
    username: str
    password: str = field(default="", repr=False)
    port: int | None = None
    """Defaults to 993 for ``ssl`` and 143 otherwise."""
    security: Security = "ssl"
    ca_file: Path | None = None
    """PEM bundle of a private CA; the system trust store is used when unset."""
    inbox: str = "INBOX"
    folders: Mapping[Outcome, str] = field(default_factory=lambda: dict(DEFAULT_FOLDERS))
    batch_size: int = 100
    timeout: float = 60.0
    auth: Auth = "password"
    token_provider: TokenProvider | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.security not in _SECURITIES:
            raise MailboxError(
                f"unknown IMAP security {self.security!r}; use one of {', '.join(_SECURITIES)}"
            )
        if self.auth not in _AUTHS:
            raise MailboxError(f"unknown IMAP auth {self.auth!r}; use one of {', '.join(_AUTHS)}")
        if self.auth == "xoauth2" and self.token_provider is None:
            raise MailboxError(
                "IMAP auth 'xoauth2' needs a token provider (the [mailbox.oauth] settings)"
            )
        if self.security == "none" and not is_loopback(self.host):
            raise MailboxError(
                f"IMAP security 'none' is refused for {self.host}: the password and every "
                "registration would cross the network unencrypted. Use 'ssl' (port 993) or "
                "'starttls' (port 143); 'none' is only allowed for localhost."
            )
        if self.batch_size < 1:
            raise MailboxError(f"IMAP batch_size must be at least 1, not {self.batch_size}")
        validate_folders(self.folders, inbox=self.inbox)

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 993 if self.security == "ssl" else 143


def connect_with_backoff(
    connect: Callable[[], T],
    *,
    max_attempts: int = 5,
    base_delay: float = 1.0,
    max_delay: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    what: str = "the server",
) -> T:
    """Call ``connect`` until it succeeds, doubling the pause after each MailboxError.

    A server restart or a short network outage then costs a few seconds instead of a
    failed run; :class:`MailboxSetupError` is re-raised at once since waiting won't fix it.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    delay = base_delay
    for attempt in range(1, max_attempts + 1):
        try:
            return connect()
        except MailboxSetupError:
            raise
        except MailboxError as e:
            if attempt == max_attempts:
                raise
            log.warning(
                "Connecting to %s failed (attempt %d of %d): %s; retrying in %.1f s",
                what,
                attempt,
                max_attempts,
                e,
                delay,
            )
            sleep(delay)
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")


def _text(value: object) -> str:
    """Server replies arrive as bytes or str; admins want readable text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _has_new_mail(responses: Sequence[Any]) -> bool:
    return any(
        isinstance(r, tuple) and len(r) >= 2 and r[1] == b"EXISTS" and r[0] != 0 for r in responses
    )


class ImapSource:
    """The registration inbox on an IMAP server.

    ``max_attempts``, ``base_delay`` and ``sleep`` shape the reconnect backoff (tests
    pass a fake ``sleep``). Not thread-safe: one pipeline drives one source.
    """

    def __init__(
        self,
        settings: ImapSettings,
        *,
        max_attempts: int = 5,
        base_delay: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.folders = validate_folders(settings.folders, inbox=settings.inbox)
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._sleep = sleep
        self._client: Any = None
        self._selected: str | None = None
        self._uidvalidity: int | None = None
        self._listed_up_to: int | None = None
        self._last_reply = 0.0
        """When the server last answered (monotonic): a quiet connection is checked first."""
        """The highest inbox UID the last fetch listed: mail above it arrived since."""
        scheme = "imaps" if settings.security == "ssl" else "imap"
        suffix = {"ssl": "", "starttls": " (STARTTLS)", "none": " (plaintext)"}[settings.security]
        self.name = (
            f"{scheme}://{settings.username}@{settings.host}:{settings.effective_port}"
            f"/{settings.inbox}{suffix}"
        )

    # -- connection ---------------------------------------------------------------

    def open(self) -> None:
        self._connection()

    def close(self) -> None:
        client, self._client = self._client, None
        self._selected = None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            _shutdown_quietly(client)

    def _drop(self) -> None:
        """Forget a connection that failed; the next call reconnects from scratch."""
        client, self._client = self._client, None
        self._selected = None
        if client is not None:
            _shutdown_quietly(client)

    def _lost(self, error: BaseException, doing: str) -> MailboxError:
        self._drop()
        return MailboxError(f"IMAP error on {self.name} while {doing}: {error}")

    def _connection(self, *, check: bool = False) -> Any:
        """The live client, reconnecting with backoff if there is none (or it died)."""
        if self._client is not None and check:
            try:
                self._client.noop()
            except _WIRE_ERRORS as e:
                log.info("IMAP connection to %s went away (%s); reconnecting", self.name, e)
                self._drop()
        if self._client is None:
            client = connect_with_backoff(
                self._connect_once,
                max_attempts=self._max_attempts,
                base_delay=self._base_delay,
                sleep=self._sleep,
                what=self.name,
            )
            try:
                self._ensure_folders(client)
            except _WIRE_ERRORS as e:
                _shutdown_quietly(client)
                raise MailboxError(f"cannot create the target folders on {self.name}: {e}") from e
            self._client = client
            self._selected = None
        return self._client

    def _ssl_context(self) -> ssl.SSLContext:
        ca_file = self.settings.ca_file
        try:
            return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        except (OSError, ssl.SSLError) as e:
            raise MailboxSetupError(
                f"cannot load the CA file {ca_file} for {self.name}: {e}; point ca_file at a "
                "readable PEM file with your CA certificate"
            ) from e

    def _connect_once(self) -> Any:
        s = self.settings
        port = s.effective_port
        where = f"{s.host}:{port}"
        context = self._ssl_context() if s.security != "none" else None
        try:
            client = IMAPClient(
                s.host,
                port=port,
                ssl=s.security == "ssl",
                ssl_context=context if s.security == "ssl" else None,
                timeout=s.timeout,
            )
        except ssl.SSLCertVerificationError as e:
            raise MailboxSetupError(_cert_hint(where, e)) from e
        except ssl.SSLError as e:
            raise MailboxError(
                f"TLS handshake with {where} failed: {e}; if this port speaks plain IMAP "
                "(usually 143) use security 'starttls', for port 993 use 'ssl'"
            ) from e
        except (OSError, IMAPClientError, EOFError) as e:
            raise MailboxError(
                f"cannot connect to IMAP server {where}: {e}; check host, port and that the "
                "server is running and reachable"
            ) from e
        try:
            if s.security == "starttls":
                client.starttls(context)
            if s.auth == "xoauth2":
                self._xoauth2_login(client, where)
            else:
                client.login(s.username, s.password)
        except BaseException as e:
            _shutdown_quietly(client)
            if isinstance(e, MailboxError):
                raise
            if isinstance(e, ssl.SSLCertVerificationError):
                raise MailboxSetupError(_cert_hint(where, e)) from e
            if isinstance(e, CapabilityError):
                raise MailboxSetupError(
                    f"IMAP server {where} does not offer STARTTLS; use security 'ssl' "
                    "(port 993) instead"
                ) from e
            if isinstance(e, LoginError):
                raise MailboxSetupError(
                    f"IMAP login as {s.username!r} on {where} was refused "
                    f"({_text(e)}); check the username and password in the configuration"
                ) from e
            if isinstance(e, (OSError, IMAPClientError, EOFError)):
                raise MailboxError(f"IMAP session setup with {where} failed: {e}") from e
            raise
        log.info("Connected to %s", self.name)
        return client

    def _token(self, rejected: AccessToken | None = None) -> AccessToken:
        provider = self.settings.token_provider
        assert provider is not None  # checked by ImapSettings
        try:
            return provider.get(rejected=rejected)
        except OAuthSetupError as e:
            raise MailboxSetupError(f"no access token for {self.name}: {e}") from e
        except OAuthError as e:
            raise MailboxError(f"no access token for {self.name} (will retry): {e}") from e

    def _xoauth2_login(self, client: Any, where: str) -> None:
        """AUTHENTICATE XOAUTH2; a refused cached token is refreshed once and tried again."""
        user = self.settings.username
        if not client.has_capability("AUTH=XOAUTH2"):
            raise MailboxSetupError(
                f"IMAP server {where} does not offer AUTH=XOAUTH2; check host and port, or "
                "use auth = 'password' for this server"
            )
        token = self._token()
        for attempt in (1, 2):
            try:
                client.oauth2_login(user, token.value)
                return
            except LoginError as e:
                reply = _text(e)
                if "[UNAVAILABLE]" in reply.upper():
                    raise MailboxError(
                        f"IMAP server {where} could not check the access token right now "
                        f"({reply}); will retry"
                    ) from e
                if attempt == 2 or token.refreshed:
                    raise MailboxSetupError(
                        f"IMAP XOAUTH2 login as {user!r} on {where} was refused ({reply}) even "
                        "with a freshly refreshed access token; check that username is the "
                        "mailbox the token was granted for and that the scope allows IMAP "
                        "(Microsoft 365: https://outlook.office.com/IMAP.AccessAsUser.All, "
                        "Gmail: https://mail.google.com/)"
                    ) from e
                log.info(
                    "IMAP server %s refused the cached access token for %s; refreshing it "
                    "and trying once more",
                    where,
                    user,
                )
            token = self._token(rejected=token)

    def _ensure_folders(self, client: Any) -> None:
        """Create the target folders up front so the first filing cannot fail on them."""
        existing = {name for _flags, _delim, name in client.list_folders()}
        for name in sorted(set(self.folders.values())):
            if name in existing:
                continue
            try:
                client.create_folder(name)
            except IMAPClientError:
                if not client.folder_exists(name):
                    raise
            log.info("Created IMAP folder %s on %s", name, self.name)
            try:
                client.subscribe_folder(name)
            except IMAPClientError as e:
                log.debug("Could not subscribe to %s: %s", name, e)

    def _select(self, folder: str) -> Any:
        client = self._connection()
        if self._selected != folder:
            try:
                info = client.select_folder(folder, readonly=False)
            except _WIRE_ERRORS as e:
                raise self._lost(e, f"selecting {folder}") from e
            self._selected = folder
            self._uidvalidity = int(info[b"UIDVALIDITY"])
        return client

    # -- MailboxSource ------------------------------------------------------------

    def fetch(self, after: Cursor | None) -> Iterator[RawMessage]:
        inbox = self.settings.inbox
        client = self._connection(check=True)
        try:
            info = client.select_folder(inbox, readonly=False)
        except _WIRE_ERRORS as e:
            raise self._lost(e, f"selecting {inbox}") from e
        self._selected = inbox
        uidvalidity = int(info[b"UIDVALIDITY"])
        self._uidvalidity = uidvalidity

        floor = 0
        criteria: list[str] = ["NOT", "DELETED"]
        if after is not None and after.uidvalidity == uidvalidity:
            if after.uid >= _MAX_UID:
                return
            floor = after.uid
            criteria = ["UID", f"{after.uid + 1}:*", "NOT", "DELETED"]
        elif after is not None:
            log.warning(
                "UIDVALIDITY of %s changed from %d to %d: the server renumbered the folder, "
                "so every message is fetched again (already registered ones are recognised "
                "by Message-ID and content and skipped)",
                self.name,
                after.uidvalidity,
                uidvalidity,
            )
        try:
            found = client.search(criteria)
        except _WIRE_ERRORS as e:
            raise self._lost(e, f"searching {inbox}") from e
        # "UID n+1:*" always matches the highest UID, even when it is <= n.
        uids = sorted(int(u) for u in found if int(u) > floor)
        self._listed_up_to = max([floor, *uids])
        log.debug("%s: %d message(s) to fetch after UID %d", self.name, len(uids), floor)

        size = self.settings.batch_size
        for start in range(0, len(uids), size):
            batch = uids[start : start + size]
            client = self._select(inbox)
            if self._uidvalidity != uidvalidity:
                log.warning("UIDVALIDITY of %s changed during a fetch; stopping early", self.name)
                return
            try:
                response = client.fetch(batch, ["BODY.PEEK[]"])
            except _WIRE_ERRORS as e:
                raise self._lost(e, f"fetching {len(batch)} message(s) from {inbox}") from e
            self._last_reply = time.monotonic()
            for uid in batch:
                item = response.get(uid)
                data = item.get(b"BODY[]") if item is not None else None
                if data is None:
                    log.debug("UID %d vanished from %s before it was fetched", uid, inbox)
                    continue
                yield RawMessage(
                    ref=str(uid),
                    data=bytes(data),
                    folder=inbox,
                    cursor=Cursor(uidvalidity=uidvalidity, uid=uid),
                )

    def file(self, message: RawMessage, outcome: Outcome) -> None:
        (error,) = self.file_many([(message, outcome)])
        if error is not None:
            raise error

    def file_many(self, messages: Sequence[tuple[RawMessage, Outcome]]) -> list[MailboxError | None]:
        """File a batch: one UID MOVE per target folder, not one per message. Returns,
        per message, None when it was moved (or is gone) and the error otherwise."""
        groups: dict[tuple[str, str], list[tuple[int, RawMessage]]] = {}
        errors: list[MailboxError | None] = [None] * len(messages)
        for i, (message, outcome) in enumerate(messages):
            try:
                groups.setdefault((message.folder, self.folders[outcome]), []).append((int(message.ref), message))
            except ValueError:
                errors[i] = MailboxError(f"not an IMAP UID: {message.ref!r}")
        for (folder, target), group in groups.items():
            # Parsing may have taken long enough for the server to time us out, or it
            # restarted meanwhile. A connection that answered a moment ago is used as it
            # is (no NOOP per batch); if it fails all the same, once more on a fresh one.
            quiet = time.monotonic() - self._last_reply > _QUIET_S
            try:
                try:
                    self._move_checked(folder, group, target, check=quiet)
                except MailboxError:
                    if quiet:
                        raise
                    self._move_checked(folder, group, target, check=True)
            except MailboxError as e:
                failed = {id(message) for _, message in group}
                for i, (message, _) in enumerate(messages):
                    if id(message) in failed:
                        errors[i] = e
        return errors

    def _move_checked(self, folder: str, group: list[tuple[int, RawMessage]], target: str, *, check: bool) -> None:
        self._connection(check=check)
        client = self._select(folder)
        uids = []
        for uid, message in group:
            if message.cursor is not None and message.cursor.uidvalidity != self._uidvalidity:
                log.warning(
                    "Not filing UID %d of %s: UIDVALIDITY changed since it was fetched, so the "
                    "UID may now name another message; it will be fetched and filed again",
                    uid,
                    folder,
                )
            else:
                uids.append(uid)
        if not uids:
            return
        # No lookup first: a UID command on a UID that is gone (filed by another process,
        # deleted by a person) is no error (RFC 3501 6.4.8) and changes nothing.
        what = f"moving {len(uids)} message(s) to {target}"
        try:
            self._move(client, uids, target)
        except IMAPClientError as e:
            if "TRYCREATE" not in str(e).upper():
                raise self._lost(e, what) from e
            try:
                log.info("Folder %s vanished from %s; creating it again", target, self.name)
                client.create_folder(target)
                self._move(client, uids, target)
            except _WIRE_ERRORS as e2:
                raise self._lost(e2, what) from e2
        except _WIRE_ERRORS as e:
            raise self._lost(e, what) from e
        self._last_reply = time.monotonic()
        log.debug("Filed UID(s) %s of %s into %s", uids, folder, target)

    def _move(self, client: Any, uids: list[int], target: str) -> None:
        if client.has_capability("MOVE"):
            client.move(uids, target)
            return
        client.copy(uids, target)
        client.add_flags(uids, [b"\\Deleted"], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            log.warning(
                "%s supports neither MOVE nor UIDPLUS: UID(s) %s were copied to %s and flagged "
                "\\Deleted but are left for the server's own expunge, because a plain EXPUNGE "
                "would also remove messages other clients flagged",
                self.name,
                uids,
                target,
            )

    # -- waiting ------------------------------------------------------------------

    def _arrived_since_fetch(self, client: Any) -> bool:
        """Did mail arrive after the last fetch listed the inbox? The server announced it
        (EXISTS) in a response to some command in between — a MOVE, a NOOP — where it
        went unread, and IDLE would not announce it again: without this look a form that
        landed while the previous one was answered waited for the next IDLE renewal."""
        if self._listed_up_to is None:
            return False
        try:
            found = client.search(["UID", f"{self._listed_up_to + 1}:*", "NOT", "DELETED"])
        except _WIRE_ERRORS as e:
            raise self._lost(e, f"searching {self.settings.inbox}") from e
        # "UID n+1:*" always matches the highest UID, even when it is <= n.
        return any(int(u) > self._listed_up_to for u in found)

    def idle_wait(self, timeout_s: float) -> bool:
        """Block until the server announces new mail in the inbox or ``timeout_s`` passes.

        Returns True when new mail was reported. Waits at most 25 minutes per call so the
        caller re-issues IDLE in time (RFC 2177). Servers without IDLE are polled once
        with NOOP after sleeping.
        """
        timeout_s = max(0.0, min(timeout_s, _MAX_IDLE_S))
        self._connection(check=True)
        client = self._select(self.settings.inbox)
        try:
            has_idle = client.has_capability("IDLE")
        except _WIRE_ERRORS as e:
            raise self._lost(e, "reading capabilities") from e
        if self._arrived_since_fetch(client):
            return True
        if not has_idle:
            self._sleep(timeout_s)
            try:
                _text_reply, responses = client.noop()
            except _WIRE_ERRORS as e:
                raise self._lost(e, "polling for new mail") from e
            return _has_new_mail(responses)

        try:
            client.idle()
        except _WIRE_ERRORS as e:
            raise self._lost(e, "starting IDLE") from e
        new_mail = False
        failure: BaseException | None = None
        try:
            deadline = time.monotonic() + timeout_s
            while not new_mail:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                new_mail = _has_new_mail(client.idle_check(timeout=remaining))
        except _WIRE_ERRORS as e:
            failure = e
        finally:
            try:
                _text_reply, responses = client.idle_done()
                new_mail = new_mail or _has_new_mail(responses)
            except _WIRE_ERRORS as e:
                failure = failure or e
        if failure is not None:
            raise self._lost(failure, "waiting for new mail (IDLE)") from failure
        return new_mail


def _shutdown_quietly(client: Any) -> None:
    """Close a socket that is broken or being abandoned; errors there tell us nothing."""
    with contextlib.suppress(Exception):
        client.shutdown()


def _cert_hint(where: str, error: BaseException) -> str:
    return (
        f"TLS certificate of {where} could not be verified ({error}). If the server uses a "
        "private CA, set ca_file to that CA's PEM file; otherwise fix the server certificate "
        "(expired, wrong host name). Verification is never switched off."
    )
