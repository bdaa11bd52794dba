"""XOAUTH2 for IMAP and SMTP (Microsoft 365, Gmail): access tokens from a refresh token.

The admin obtains a refresh token once (see docs/deploy.md) and puts it in ``token_file``::

    {"refresh_token": "0.AXkA..."}

:class:`TokenProvider` hands out access tokens. It keeps the current one in the same file
(``access_token`` and ``expires_at``, seconds since the epoch) and asks ``token_url`` for a
new one (OAuth 2.0 ``refresh_token`` grant, RFC 6749 section 6) when there is none, when it
expires within five minutes, or when a server refused it. A refresh token the provider
rotates (Microsoft does) is saved too. Writes are atomic (temporary file + rename, mode
0600) and serialised with a lock file beside the token file, so the IMAP source, the SMTP
transport and a CLI run can share one token file.

Tokens, refresh tokens and the client secret are never logged nor put in exception texts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import http.client
import json
import logging
import os
import ssl
import stat
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailbot.errors import ConfigError, MailbotError
from mailbot.net import is_loopback

if TYPE_CHECKING:
    from mailbot.config import OAuthSettings

log = logging.getLogger(__name__)

REFRESH_MARGIN_S = 300.0
"""A cached access token expiring sooner than this is refreshed before use."""
DEFAULT_LIFETIME_S = 3600
"""Assumed lifetime when the token endpoint does not say (``expires_in`` is optional)."""
_MAX_REPLY_BYTES = 1024 * 1024
_HELP = "see docs/deploy.md"


class OAuthError(MailbotError):
    """No access token could be had; adapters turn this into MailboxError / DeliveryError."""


class OAuthSetupError(OAuthError, ConfigError):
    """Retrying cannot help until the admin acts: the refresh token or the client was
    rejected, or the token file is missing, unreadable or broken."""


class OAuthUnavailable(OAuthError):
    """The token endpoint could not be reached or failed on its side; a later try may work."""


@dataclass(frozen=True)
class AccessToken:
    """A bearer token; ``value`` never appears in repr."""

    value: str = field(repr=False)
    expires_at: float
    """Seconds since the epoch."""
    refreshed: bool = False
    """True when it was just obtained from the token endpoint rather than the cache: if a
    server refuses such a token, refreshing again will not help."""


def xoauth2_string(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response (before base64), as Google and Microsoft define it."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def _number(value: object) -> float | None:
    """``expires_at``/``expires_in`` as a number; some servers send strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            try:
                moment = dt.datetime.fromisoformat(value)
            except ValueError:
                return None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            return moment.timestamp()
    return None


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class TokenProvider:
    """Valid access tokens for one account, refreshed through ``token_url`` when needed.

    Thread-safe. ``clock`` (seconds since the epoch) is injectable for tests; ``ca_file``
    is a PEM bundle for a private CA (the system trust store otherwise). Plain ``http://``
    is accepted only for loopback hosts.
    """

    def __init__(
        self,
        *,
        token_file: Path,
        token_url: str,
        client_id: str,
        client_secret: str | None = None,
        scope: str = "",
        ca_file: Path | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        url = urllib.parse.urlsplit(token_url)
        if not url.hostname or not (
            url.scheme == "https" or (url.scheme == "http" and is_loopback(url.hostname))
        ):
            raise OAuthSetupError(
                f"token_url {token_url!r} must be an https:// URL (plain http only for localhost)"
            )
        self.token_file = Path(token_file)
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.ca_file = ca_file
        self.timeout = timeout
        self._clock = clock
        self._loopback = is_loopback(url.hostname)
        self._lock = threading.Lock()
        self._unsaved: dict[str, Any] | None = None
        self._warned_mode = False

    @classmethod
    def from_settings(
        cls,
        settings: OAuthSettings,
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> TokenProvider:
        """Build from ``[mailbox.oauth]`` / ``[outbox.oauth]``; reads the client secret now."""
        return cls(
            token_file=settings.token_file,
            token_url=settings.token_url,
            client_id=settings.client_id,
            client_secret=settings.resolve_client_secret(env),
            scope=settings.scope,
            ca_file=settings.ca_file,
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"TokenProvider(token_file={str(self.token_file)!r}, token_url={self.token_url!r})"

    # -- the one public operation -------------------------------------------------------

    def get(self, *, rejected: AccessToken | None = None) -> AccessToken:
        """A usable access token: the cached one unless it is missing, expires within five
        minutes or is ``rejected`` (a server just refused it), else a fresh one.

        Raises :class:`OAuthSetupError` when the admin must act and :class:`OAuthUnavailable`
        when the token endpoint failed for now.
        """
        with self._lock, self._file_lock():
            state = self._read()
            now = self._clock()
            cached = self._cached(state)
            if cached is not None:
                if rejected is not None and cached.value == rejected.value:
                    log.info(
                        "Access token in %s was refused by the server; refreshing it",
                        self.token_file,
                    )
                elif cached.expires_at - now > REFRESH_MARGIN_S:
                    return cached
                else:
                    log.debug(
                        "Access token in %s expires at %s; refreshing it",
                        self.token_file,
                        _when(cached.expires_at),
                    )
            # A token another process stored after ours was refused is used as it is:
            # ``cached`` then differs from ``rejected`` and is still valid (handled above).
            return self._refresh(state)

    # -- token file ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Serialise refreshes across processes (a rotated refresh token must not be lost)."""
        lock_path = self.token_file.with_name(self.token_file.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            # A read-only directory: saving will fail too and say so; don't fail twice.
            log.debug("No lock file %s (%s); refreshing without it", lock_path, e.strerror)
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _read(self) -> dict[str, Any]:
        if self._unsaved is not None:
            return dict(self._unsaved)
        path = self.token_file
        try:
            raw = path.read_text(encoding="utf-8")
            mode = path.stat().st_mode
        except FileNotFoundError as e:
            raise OAuthSetupError(
                f"token file {path} does not exist; create it (mode 0600, in a directory "
                'mailbot may write) holding {"refresh_token": "..."}, ' + _HELP
            ) from e
        except OSError as e:
            raise OAuthSetupError(
                f"cannot read token file {path}: {e.strerror}; it must be readable and its "
                f"directory writable by the user mailbot runs as, {_HELP}"
            ) from e
        if mode & 0o077 and not self._warned_mode:
            self._warned_mode = True
            log.warning(
                "Token file %s is accessible to other users (mode %s); it holds a refresh "
                "token: chmod 600 it (mailbot writes it back as 0600 at the next refresh)",
                path,
                oct(stat.S_IMODE(mode)),
            )
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            # e.msg and the position only, never the text: it may hold a token.
            raise OAuthSetupError(
                f"token file {path} is not valid JSON ({e.msg} at line {e.lineno}); it must "
                'look like {"refresh_token": "..."}, ' + _HELP
            ) from None
        if not isinstance(data, dict):
            raise OAuthSetupError(
                f'token file {path} must hold a JSON object like {{"refresh_token": "..."}}, {_HELP}'
            )
        refresh = data.get("refresh_token")
        if not isinstance(refresh, str) or not refresh.strip():
            raise OAuthSetupError(
                f"token file {path} has no refresh_token; obtain one and store it there as "
                f'{{"refresh_token": "..."}}, {_HELP}'
            )
        return data

    @staticmethod
    def _cached(state: Mapping[str, Any]) -> AccessToken | None:
        value = state.get("access_token")
        expires_at = _number(state.get("expires_at"))
        if not isinstance(value, str) or not value or expires_at is None:
            return None
        return AccessToken(value=value, expires_at=expires_at)

    def _write(self, state: dict[str, Any]) -> None:
        """Replace the token file atomically; on failure keep the state in memory and say so."""
        path = self.token_file
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fh.fileno(), 0o600)
                json.dump(state, fh, indent=2)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            tmp = None
            with contextlib.suppress(OSError):
                dir_fd = os.open(path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        except OSError as e:
            self._unsaved = dict(state)
            log.error(
                "Cannot save the refreshed token to %s (%s): its directory must be writable by "
                "the user mailbot runs as. Using the new token from memory until mailbot "
                "restarts; if the provider rotated the refresh token it is lost then, and a "
                "new one must be obtained (%s)",
                path,
                e.strerror or e,
                _HELP,
            )
            return
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self._unsaved = None

    # -- token endpoint -----------------------------------------------------------------

    def _refresh(self, state: dict[str, Any]) -> AccessToken:
        form = {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "refresh_token": str(state["refresh_token"]).strip(),
        }
        if self._client_secret:
            form["client_secret"] = self._client_secret
        if self.scope:
            form["scope"] = self.scope
        started = self._clock()
        reply = self._post(form)
        value = reply.get("access_token")
        if not isinstance(value, str) or not value:
            raise OAuthUnavailable(
                f"token endpoint {self.token_url} answered without an access_token"
            )
        token_type = reply.get("token_type")
        if isinstance(token_type, str) and token_type.lower() != "bearer":
            raise OAuthSetupError(
                f"token endpoint {self.token_url} issued a {token_type!r} token; XOAUTH2 needs "
                "a Bearer token"
            )
        lifetime = _number(reply.get("expires_in"))
        expires_at = int(started + (lifetime if lifetime is not None else DEFAULT_LIFETIME_S))
        new_state = dict(state)
        new_state["access_token"] = value
        new_state["expires_at"] = expires_at
        rotated = reply.get("refresh_token")
        did_rotate = (
            isinstance(rotated, str) and bool(rotated) and rotated != state["refresh_token"]
        )
        if did_rotate:
            new_state["refresh_token"] = rotated
        self._write(new_state)
        log.info(
            "Refreshed the OAuth access token in %s (valid until %s)%s",
            self.token_file,
            _when(expires_at),
            "; the provider issued a new refresh token, saved too" if did_rotate else "",
        )
        return AccessToken(value=value, expires_at=expires_at, refreshed=True)

    def _opener(self) -> urllib.request.OpenerDirector:
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        except (OSError, ssl.SSLError) as e:
            raise OAuthSetupError(
                f"cannot load the CA file {self.ca_file} for the token endpoint: {e}"
            ) from e
        handlers: list[urllib.request.BaseHandler] = [urllib.request.HTTPSHandler(context=context)]
        if self._loopback:
            handlers.append(urllib.request.ProxyHandler({}))  # never send loopback via a proxy
        return urllib.request.build_opener(*handlers)

    def _post(self, form: Mapping[str, str]) -> dict[str, Any]:
        request = urllib.request.Request(
            self.token_url,
            data=urllib.parse.urlencode(form).encode("ascii"),
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "User-Agent": "mailbot",
            },
        )
        where = self.token_url
        try:
            with self._opener().open(request, timeout=self.timeout) as response:
                status = int(response.status)
                body = response.read(_MAX_REPLY_BYTES)
        except urllib.error.HTTPError as e:
            with e:
                body = e.read(_MAX_REPLY_BYTES)
            raise self._refused(e.code, body) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, ssl.SSLCertVerificationError):
                raise OAuthSetupError(
                    f"TLS certificate of the token endpoint {where} could not be verified "
                    f"({e.reason.verify_message or e.reason}); set ca_file in the oauth settings "
                    "if it uses a private CA. Verification is never switched off."
                ) from e
            raise OAuthUnavailable(f"cannot reach the token endpoint {where}: {e.reason}") from e
        except (OSError, http.client.HTTPException) as e:
            raise OAuthUnavailable(f"token endpoint {where} failed: {e!r}") from e
        if status != 200:
            raise self._refused(status, body)
        try:
            reply = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            reply = None
        if not isinstance(reply, dict):
            raise OAuthUnavailable(
                f"token endpoint {where} answered with something that is not a JSON object"
            )
        return reply

    def _refused(self, status: int, body: bytes) -> OAuthError:
        """An admin-facing error for a non-200 reply; only ``error`` and its description."""
        try:
            info = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            info = None
        if not isinstance(info, dict):
            info = {}
        error = str(info.get("error") or "").strip()
        description = str(info.get("error_description") or "").strip().splitlines()
        detail = f": {description[0][:300]}" if description else ""
        where = self.token_url
        if error == "invalid_grant":
            return OAuthSetupError(
                f"refresh token rejected (invalid_grant) by {where}{detail}. It expired, was "
                f"revoked or the password changed: obtain a new one and store it in "
                f"{self.token_file}, {_HELP}"
            )
        if error in ("invalid_client", "unauthorized_client"):
            return OAuthSetupError(
                f"token endpoint {where} rejected the client ({error}){detail}; check client_id "
                f"and the client secret (client_secret_file / client_secret_credential), {_HELP}"
            )
        if error == "invalid_scope":
            return OAuthSetupError(
                f"token endpoint {where} rejected the scope {self.scope!r} (invalid_scope){detail}; "
                f"request the scopes the refresh token was granted for, {_HELP}"
            )
        if status == 429 or status >= 500:
            label = f" ({error})" if error else ""
            return OAuthUnavailable(f"token endpoint {where} answered HTTP {status}{label}{detail}")
        label = f" ({error})" if error else ""
        return OAuthSetupError(
            f"token endpoint {where} refused the refresh with HTTP {status}{label}{detail}; check "
            f"token_url, client_id and the refresh token in {self.token_file}, {_HELP}"
        )
