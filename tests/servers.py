"""Real servers for integration tests, on loopback only: Dovecot (IMAP) and an SMTP sink.

Both use one throw-away test CA made with the ``openssl`` CLI, so clients connect with
certificate verification ON (``ca_file=...``) exactly as in production.

* :class:`DovecotServer` runs ``dovecot -F -c <own config>`` (never the system config)
  in a private directory; :meth:`DovecotServer.add_user` hands out a fresh, empty
  mailbox as a :class:`DovecotAccount`, so one server serves a whole test session.
* :class:`SmtpSink` runs ``tests/smtp_sink.py`` (aiosmtpd) as a subprocess that stores
  messages on disk and can be told to fail.
* :class:`OAuthServer` is a fake OAuth 2.0 provider (HTTPS, a thread in the test process):
  ``token_url`` serves the refresh_token grant, ``introspection_url`` answers RFC 7662
  introspection, which Dovecot's oauth2 passdb and the sink's AUTH XOAUTH2 ask.

The pytest fixtures wrapping these live in tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import grp
import http.server
import itertools
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from imapclient import IMAPClient

from mailbot.mailbox.imap import ImapSettings
from mailbot.oauth import TokenProvider
from mailbot.transport.smtp import SmtpSettings

HOST = "127.0.0.1"
START_TIMEOUT_S = 15.0


class ServerSetupError(RuntimeError):
    """A test server could not be started; fixtures turn this into a test failure."""


# -- plumbing -----------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def port_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _die_with_parent() -> list[str]:
    """Command prefix that SIGTERMs the server if pytest dies, so no orphan keeps a port.

    ``setpriv --pdeathsig`` (util-linux) rather than a ``preexec_fn``: Python 3.12+
    warns about forking with a Python callback while threads run, and warnings are errors.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


def _stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """SIGTERM the server's whole process group (it runs in its own session).

    Signalling only Dovecot's master lets a login process sit out a 5 s stats-writer
    handshake timeout; terminating the group together stops it in milliseconds.
    """
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


def _wait_for_start(
    name: str,
    proc: subprocess.Popen[bytes],
    log_path: Path,
    stop: Callable[[], None],
    ready: Callable[[], bool],
) -> None:
    """Poll ``ready`` until the server is up; fail with its log if it dies or stalls."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        if proc.poll() is not None:
            raise ServerSetupError(f"{name} exited with code {proc.returncode}; log:\n{_tail(log_path)}")
        if time.monotonic() > deadline:
            stop()
            raise ServerSetupError(f"{name} did not start in time; log:\n{_tail(log_path)}")
        time.sleep(0.02)


def _wait_until_free(ports: Sequence[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(port_free(p) for p in ports):
        if time.monotonic() > deadline:
            raise ServerSetupError(f"ports {list(ports)} still busy after the server stopped")
        time.sleep(0.05)


# -- test CA ------------------------------------------------------------------------


@dataclass(frozen=True)
class TestCA:
    """A private CA and a server certificate for 127.0.0.1 / localhost, signed by it."""

    __test__ = False  # not a pytest test class

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_test_ca(directory: Path) -> TestCA:
    """Create the CA with the openssl CLI; EC keys keep it to a few milliseconds."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ServerSetupError("the 'openssl' command is needed to create test certificates")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid,issuer\n"
        "subjectKeyIdentifier=hash\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    commands = [
        [openssl, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_crt, "-days", "7",
         "-subj", "/CN=mailbot test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-addext", "subjectKeyIdentifier=hash"],
        [openssl, "req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
        [openssl, "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
         "-CAcreateserial", "-out", crt, "-days", "7", "-extfile", ext],
    ]  # fmt: skip
    for cmd in commands:
        done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServerSetupError(f"openssl failed: {' '.join(map(str, cmd))}\n{done.stderr}")
    for path in (ca_crt, crt, key):
        path.chmod(0o644 if path.suffix == ".crt" else 0o600)
    return TestCA(ca_file=ca_crt, cert_file=crt, key_file=key)


# -- OAuth 2.0 provider --------------------------------------------------------------


class _TLSHTTPServer(http.server.ThreadingHTTPServer):
    """HTTPS with the TLS handshake in the per-request thread, quiet about broken clients."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], context: ssl.SSLContext, app: OAuthServer
    ) -> None:
        super().__init__(address, _OAuthHandler)
        self.context = context
        self.app = app

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(10)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except OSError:
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-request is no test failure


class _OAuthHandler(http.server.BaseHTTPRequestHandler):
    server: _TLSHTTPServer
    protocol_version = "HTTP/1.0"  # one request per connection: no idle keep-alives to reap

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}
        try:
            content_type = self.headers.get("Content-Type", "")
            status, reply = self.server.app.handle(self.path, content_type, form)
        except Exception as e:  # noqa: BLE001 - a bug here must show up as a reply, not a hang
            status, reply = 500, {"error": "server_error", "error_description": repr(e)}
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)


class OAuthServer:
    """A fake OAuth 2.0 provider on loopback over HTTPS (certificate from the test CA).

    * ``token_url``: the refresh_token grant (RFC 6749 section 6), a confidential client
      ``client_id``/``client_secret``. Issues access tokens valid ``expires_in`` seconds
      and, while ``rotate`` is true, a new refresh token each time (as Microsoft does),
      invalidating the old one. Unknown refresh tokens get ``invalid_grant``.
    * ``introspection_url``: ``token=...`` (POST form) answered with ``{"active": ...,
      "username": ...}``, the way Dovecot's oauth2 passdb (introspection_mode = post)
      and the SMTP sink check bearer tokens.

    ``token_requests`` records every form POSTed to ``token_url``; set
    ``introspection_status`` to e.g. 503 to make token checks fail on the provider's side.
    """

    host = HOST

    def __init__(self, ca: TestCA) -> None:
        self.ca = ca
        self.ca_file = ca.ca_file
        self.client_id = "mailbot-test-client"
        self.client_secret = secrets.token_urlsafe(16)
        self.scope = "https://mail.example.test/imap https://mail.example.test/smtp offline_access"
        self._lock = threading.Lock()
        self._refresh_tokens: dict[str, str] = {}
        self._access_tokens: dict[str, str] = {}
        self._revoked: dict[str, str] = {}
        self._httpd: _TLSHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.reset()

    def reset(self) -> None:
        """Default behaviour and an empty request log (tokens already issued stay valid)."""
        with self._lock:
            self.rotate = True
            self.expires_in = 3600
            self.token_requests: list[dict[str, str]] = []
            self.introspections = 0
            self.introspection_status = 200
            self._fail_next: list[tuple[int, dict[str, str]]] = []

    # -- lifecycle

    def start(self) -> None:
        if self._httpd is not None:
            return
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.ca.cert_file, self.ca.key_file)
        self._httpd = _TLSHTTPServer((HOST, 0), context, self)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="oauth-server",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def token_url(self) -> str:
        return f"https://{HOST}:{self.port}/token"

    @property
    def introspection_url(self) -> str:
        return f"https://{HOST}:{self.port}/introspect"

    # -- tokens

    def grant(self, user: str) -> str:
        """A new refresh token for ``user`` (what the admin obtains once by consent)."""
        token = "rt-" + secrets.token_urlsafe(24)
        with self._lock:
            self._refresh_tokens[token] = user
        return token

    def issue(self, user: str) -> str:
        """A new, valid access token for ``user``."""
        token = "at-" + secrets.token_urlsafe(24)
        with self._lock:
            self._access_tokens[token] = user
        return token

    def revoke(self, token: str) -> None:
        """Make an access or refresh token invalid (servers then refuse it)."""
        with self._lock:
            user = self._access_tokens.pop(token, None) or self._refresh_tokens.pop(token, None)
            if user is not None:
                self._revoked[token] = user

    def user_of(self, access_token: str) -> str | None:
        with self._lock:
            return self._access_tokens.get(access_token)

    def refresh_token_valid(self, token: str) -> bool:
        with self._lock:
            return token in self._refresh_tokens

    def fail_next(
        self, status: int = 503, error: str = "temporarily_unavailable", description: str = ""
    ) -> None:
        """Answer the next token request with ``status`` and ``{"error": error}``."""
        with self._lock:
            self._fail_next.append((status, {"error": error, "error_description": description}))

    def write_token_file(
        self,
        path: Path,
        user: str,
        *,
        access_token: str | None = None,
        expires_at: float | None = None,
        mode: int = 0o600,
    ) -> str:
        """Write a token file for ``user`` with a fresh refresh token; returns that token."""
        refresh = self.grant(user)
        content: dict[str, Any] = {"refresh_token": refresh}
        if access_token is not None:
            content["access_token"] = access_token
            content["expires_at"] = expires_at if expires_at is not None else time.time() + 3600
        path.write_text(json.dumps(content))
        path.chmod(mode)
        return refresh

    def provider(self, token_file: Path, **overrides: Any) -> TokenProvider:
        """A TokenProvider for this server, verified against the test CA."""
        values: dict[str, Any] = {
            "token_file": token_file,
            "token_url": self.token_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": self.scope,
            "ca_file": self.ca_file,
            "timeout": 10.0,
        }
        values.update(overrides)
        return TokenProvider(**values)

    # -- HTTP

    def handle(
        self, path: str, content_type: str, form: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        if not content_type.startswith("application/x-www-form-urlencoded"):
            return 400, {"error": "invalid_request", "error_description": "form encoding expected"}
        if path == "/token":
            return self._token(form)
        if path == "/introspect":
            return self._introspect(form)
        return 404, {"error": "not_found"}

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.token_requests.append(dict(form))
            if self._fail_next:
                return self._fail_next.pop(0)
            if (form.get("client_id"), form.get("client_secret")) != (
                self.client_id,
                self.client_secret,
            ):
                return 401, {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                }
            if form.get("grant_type") != "refresh_token":
                return 400, {"error": "unsupported_grant_type"}
            user = self._refresh_tokens.get(form.get("refresh_token", ""))
            if user is None:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "AADSTS70008: The provided authorization code or refresh "
                    "token has expired due to inactivity.\r\nTrace ID: 0000",
                }
            access = "at-" + secrets.token_urlsafe(24)
            self._access_tokens[access] = user
            reply: dict[str, Any] = {
                "token_type": "Bearer",
                "scope": form.get("scope", ""),
                "expires_in": self.expires_in,
                "access_token": access,
            }
            if self.rotate:
                old = form["refresh_token"]
                new = "rt-" + secrets.token_urlsafe(24)
                del self._refresh_tokens[old]
                self._revoked[old] = user
                self._refresh_tokens[new] = user
                reply["refresh_token"] = new
            return 200, reply

    def _introspect(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        token = form.get("token", "")
        with self._lock:
            self.introspections += 1
            if self.introspection_status != 200:  # the provider is down for the mail servers
                return self.introspection_status, {"error": "temporarily_unavailable"}
            user = self._access_tokens.get(token)
            if user is not None:
                return 200, {"active": True, "username": user, "scope": self.scope}
            # Dovecot checks the username before "active": a known, revoked token fails as
            # "account disabled", an unknown one as "user mismatch"; both are plain auth failures.
            return 200, {"active": False, "username": self._revoked.get(token, "")}


# -- Dovecot ------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredMessage:
    """One message as the IMAP server holds it."""

    uid: int
    flags: tuple[bytes, ...]
    data: bytes

    @property
    def email(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg

    @property
    def subject(self) -> str:
        return str(self.email["Subject"] or "")

    @property
    def seen(self) -> bool:
        return b"\\Seen" in self.flags


class DovecotServer:
    """A private Dovecot: own config, own directories, imaps + imap(STARTTLS) on loopback.

    ``port`` speaks implicit TLS (use ``security="ssl"``), ``starttls_port`` plain IMAP
    with STARTTLS (``ssl = required`` refuses logins before it). With ``oauth``, accounts
    also log in with AUTHENTICATE XOAUTH2 / OAUTHBEARER: a second passdb (driver oauth2)
    asks that server's introspection endpoint about the bearer token.
    """

    host = HOST

    def __init__(self, root: Path, ca: TestCA, oauth: OAuthServer | None = None) -> None:
        self.binary = shutil.which("dovecot") or (
            "/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None
        )
        if self.binary is None:
            raise ServerSetupError(
                "Dovecot is not installed, but the IMAP integration tests need it: "
                "install it with 'apt-get install dovecot-imapd' (CI must do the same)"
            )
        self.root = root
        self.ca = ca
        self.ca_file = ca.ca_file
        self.oauth = oauth
        if oauth is not None:
            oauth.start()  # its port goes into Dovecot's config
        self.port = free_port()
        self.starttls_port = free_port()
        self.conf_path = root / "dovecot.conf"
        self.oauth_conf_path = root / "dovecot-oauth2.conf.ext"
        self.log_path = root / "dovecot.log"
        self.users_dir = root / "users"
        self.mail_root = root / "mail"
        self._proc: subprocess.Popen[bytes] | None = None
        self._counter = itertools.count(1)
        self._setup()

    def _setup(self) -> None:
        # Dovecot drops privileges: the login processes, auth and the per-user mail
        # processes must all be able to reach their files through root's directory.
        self.root.chmod(0o755)
        for sub in ("run", "state"):
            (self.root / sub).mkdir(exist_ok=True)
        self.mail_root.mkdir(exist_ok=True)
        self.users_dir.mkdir(exist_ok=True)
        self.users_dir.chmod(0o755)
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("dovecot")
                pwd.getpwnam("dovenull")
                mail_user = pwd.getpwnam("nobody")
            except KeyError as e:
                raise ServerSetupError(
                    f"system user missing for Dovecot ({e}); the Debian package "
                    "dovecot-core creates 'dovecot' and 'dovenull'"
                ) from e
            internal_user, internal_group, login_user = "dovecot", "dovecot", "dovenull"
            self.mail_uid, self.mail_gid = mail_user.pw_uid, mail_user.pw_gid
            os.chown(self.mail_root, self.mail_uid, self.mail_gid)
            chroot = ""
        else:
            me = pwd.getpwuid(os.getuid())
            internal_user = login_user = me.pw_name
            internal_group = grp.getgrgid(os.getgid()).gr_name
            self.mail_uid, self.mail_gid = os.getuid(), os.getgid()
            chroot = (
                "service imap-login {\n  chroot =\n}\nservice anvil {\n  chroot =\n}\n"
                "service stats {\n  chroot =\n}\n"
            )
        r = self.root
        mechanisms = "plain login"
        oauth_passdb = ""
        if self.oauth is not None:
            mechanisms = "plain login xoauth2 oauthbearer"
            # introspection_mode = post: "token=..." to introspection_url; the reply's
            # "username" must match the login name and "active" must be true.
            self.oauth_conf_path.write_text(
                f"""introspection_mode = post
introspection_url = {self.oauth.introspection_url}
username_attribute = username
active_attribute = active
active_value = true
force_introspection = yes
tls_ca_cert_file = {self.ca.ca_file}
timeout_msecs = 5000
"""
            )
            self.oauth_conf_path.chmod(0o644)
            oauth_passdb = f"""passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {self.oauth_conf_path}
}}
"""
        self.conf_path.write_text(
            f"""# Written by tests/servers.py; Dovecot is started with -c so no system config applies.
protocols = imap
listen = {HOST}
base_dir = {r}/run
state_dir = {r}/state
instance_name = mailbot-test-{self.port}
log_path = {self.log_path}
info_log_path = {self.log_path}
ssl = required
ssl_cert = <{self.ca.cert_file}
ssl_key = <{self.ca.key_file}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 1
first_valid_gid = 1
auth_mechanisms = {mechanisms}
# Tests log in with wrong passwords on purpose; don't slow down the next test.
auth_failure_delay = 0
mailbox_idle_check_interval = 1 secs
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
}}
# One passwd-file per user: Dovecot stats a passwd-file at most once per second, so
# appending users to a single file makes a login right after add_user() fail.
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {self.users_dir}/%u
}}
{oauth_passdb}userdb {{
  driver = passwd-file
  args = username_format=%u {self.users_dir}/%u
}}
# No per-IP penalty after failed logins (all tests come from 127.0.0.1).
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {self.starttls_port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {self.port}
    ssl = yes
  }}
}}
{chroot}"""
        )

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [*_die_with_parent(), self.binary or "dovecot", "-F", "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        _wait_for_start(
            "dovecot", self._proc, self.log_path, self.stop,
            lambda: port_open(self.port) and port_open(self.starttls_port),
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the master (it takes its children and all client connections with it)."""
        _stop_process(self._proc)
        self._proc = None
        _wait_until_free([self.port, self.starttls_port])

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def add_user(self, user: str | None = None, password: str | None = None) -> DovecotAccount:
        """A new account with an empty mailbox, usable at once (no reload needed)."""
        user = user or f"user{next(self._counter)}"
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", user) or user.startswith("."):
            raise ValueError(f"unsuitable test user name {user!r}")
        password = password or secrets.token_urlsafe(12)
        home = self.mail_root / user
        line = f"{user}:{{PLAIN}}{password}:{self.mail_uid}:{self.mail_gid}::{home}::\n"
        path = self.users_dir / user
        tmp = self.users_dir / f".{user}.tmp"
        tmp.write_text(line)
        tmp.chmod(0o644)
        os.replace(tmp, path)
        return DovecotAccount(self, user, password)


@dataclass
class DovecotAccount:
    """One user's mailbox on a :class:`DovecotServer`, plus helpers to set up and inspect it.

    Helpers talk IMAP themselves (TLS verified, ``BODY.PEEK``/EXAMINE only), so they
    never change flags the code under test is judged by.
    """

    server: DovecotServer
    user: str
    password: str = field(repr=False)

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def starttls_port(self) -> int:
        return self.server.starttls_port

    @property
    def ca_file(self) -> Path:
        return self.server.ca_file

    def settings(self, **overrides: Any) -> ImapSettings:
        """ImapSettings for this account over implicit TLS; keyword arguments override."""
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "username": self.user,
            "password": self.password,
            "security": "ssl",
            "ca_file": self.ca_file,
            "timeout": 10.0,
        }
        values.update(overrides)
        return ImapSettings(**values)

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        client = IMAPClient(self.host, port=self.port, ssl_context=context, timeout=10)
        try:
            client.login(self.user, self.password)
            yield client
        finally:
            try:
                client.logout()
            except Exception:  # noqa: BLE001
                client.shutdown()

    def append(self, folder: str, data: bytes, flags: Sequence[bytes] = ()) -> int:
        """Store a message (creating the folder if needed) and return its UID."""
        with self.client() as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            reply = c.append(folder, data, flags=tuple(flags))
        match = re.search(
            rb"APPENDUID \d+ (\d+)", reply if isinstance(reply, bytes) else reply.encode()
        )
        assert match, f"no APPENDUID in {reply!r}"
        return int(match.group(1))

    def list_folder(self, folder: str) -> list[StoredMessage]:
        """The messages in ``folder`` by UID; a missing folder is empty. Read-only (EXAMINE)."""
        with self.client() as c:
            if not c.folder_exists(folder):
                return []
            c.select_folder(folder, readonly=True)
            uids = sorted(c.search("ALL"))
            fetched = c.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}
        return [
            StoredMessage(
                uid=uid, flags=tuple(fetched[uid][b"FLAGS"]), data=fetched[uid][b"BODY[]"]
            )
            for uid in uids
            if uid in fetched
        ]

    def folders(self) -> list[str]:
        with self.client() as c:
            return sorted(name for _flags, _delim, name in c.list_folders())

    def create_folder(self, folder: str) -> None:
        with self.client() as c:
            c.create_folder(folder)

    def delete_folder(self, folder: str) -> None:
        with self.client() as c:
            c.delete_folder(folder)

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.client() as c:
            return int(c.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])

    def set_flags(self, folder: str, uid: int, flags: Sequence[bytes]) -> None:
        with self.client() as c:
            c.select_folder(folder)
            c.add_flags([uid], list(flags))

    def restart(self) -> None:
        """Restart the whole Dovecot (same data, same ports); open connections are cut."""
        self.server.restart()


# -- SMTP sink ----------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMessage:
    """A message the sink accepted, with its SMTP envelope."""

    message: EmailMessage
    mail_from: str
    recipients: list[str]
    data: bytes
    tls: bool
    authenticated: bool
    auth_mechanism: str | None = None
    """PLAIN, LOGIN or XOAUTH2 when the session authenticated."""


@dataclass(frozen=True)
class AuthAttempt:
    """One AUTH command the sink answered (never the secret itself)."""

    mechanism: str
    user: str
    success: bool


class SmtpSink:
    """Controls the ``tests/smtp_sink.py`` process: plain+STARTTLS on ``port``, implicit
    TLS on ``ssl_port``, AUTH (after TLS) as ``user``/``password``, certificates by ``ca_file``.
    With ``oauth``, AUTH XOAUTH2 too: bearer tokens are checked at its introspection URL.
    """

    host = HOST
    script = Path(__file__).with_name("smtp_sink.py")

    def __init__(self, root: Path, ca: TestCA, oauth: OAuthServer | None = None) -> None:
        self.root = root
        self.ca = ca
        self.ca_file = ca.ca_file
        self.oauth = oauth
        self.port = free_port()
        self.ssl_port = free_port()
        self.user = "mailbot"
        self.password = secrets.token_urlsafe(12)
        self.log_path = root / "sink.log"
        self.messages_dir = root / "messages"
        self.control_path = root / "control.json"
        self.connections_path = root / "connections.log"
        self.auth_log_path = root / "auth.log"
        self._proc: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        ready = self.root / "ready"
        ready.unlink(missing_ok=True)
        env = dict(os.environ, SMTP_SINK_AUTH=f"{self.user}:{self.password}")
        if self.oauth is not None:
            self.oauth.start()
            env["SMTP_SINK_OAUTH_INTROSPECT"] = self.oauth.introspection_url
            env["SMTP_SINK_OAUTH_CA"] = str(self.ca_file)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [*_die_with_parent(), sys.executable, str(self.script), str(self.root), "--host", self.host,
                 "--port", str(self.port), "--ssl-port", str(self.ssl_port),
                 "--cert", str(self.ca.cert_file), "--key", str(self.ca.key_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,
            )  # fmt: skip
        # Wait for the sink's own "ready" file rather than probing: a probe would be
        # counted as a connection.
        _wait_for_start("smtp_sink", self._proc, self.log_path, self.stop, ready.exists)

    def stop(self) -> None:
        """Stop the server; connecting is refused until :meth:`start`."""
        _stop_process(self._proc)
        self._proc = None
        _wait_until_free([self.port, self.ssl_port])

    def restart(self) -> None:
        self.stop()
        self.start()

    def reset(self) -> None:
        """Forget messages, connection counts and failure rules (between tests)."""
        shutil.rmtree(self.messages_dir, ignore_errors=True)
        self.messages_dir.mkdir(parents=True, exist_ok=True)
        self.connections_path.unlink(missing_ok=True)
        self.auth_log_path.unlink(missing_ok=True)
        self.clear_failures()

    def settings(self, **overrides: Any) -> SmtpSettings:
        """SmtpSettings for the plain port with STARTTLS, verified against ``ca_file``."""
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "security": "starttls",
            "ca_file": self.ca_file,
            "timeout": 10.0,
            "local_hostname": "mailbot.test",
        }
        values.update(overrides)
        return SmtpSettings(**values)

    # -- inspection

    def messages(self) -> list[ReceivedMessage]:
        """Everything accepted so far, oldest first."""
        out: list[ReceivedMessage] = []
        for eml in sorted(self.messages_dir.glob("*.eml")):
            meta = json.loads(eml.with_suffix(".json").read_text())
            data = eml.read_bytes()
            msg = email.message_from_bytes(data, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(
                ReceivedMessage(
                    message=msg,
                    mail_from=meta["mail_from"],
                    recipients=list(meta["rcpt_tos"]),
                    data=data,
                    tls=bool(meta["tls"]),
                    authenticated=bool(meta["authenticated"]),
                    auth_mechanism=meta.get("auth_mechanism"),
                )
            )
        return out

    def auth_attempts(self) -> list[AuthAttempt]:
        """Every AUTH the sink answered since the last reset, oldest first."""
        try:
            lines = self.auth_log_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            item = json.loads(line)
            out.append(AuthAttempt(item["mechanism"], item["user"], bool(item["success"])))
        return out

    def connections(self) -> int:
        """How many TCP connections the sink accepted since the last reset."""
        try:
            return len(self.connections_path.read_text().splitlines())
        except FileNotFoundError:
            return 0

    # -- failure injection

    def _control(self) -> dict[str, Any]:
        try:
            loaded = json.loads(self.control_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def _write_control(self, control: dict[str, Any]) -> None:
        tmp = self.control_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(control))
        os.replace(tmp, self.control_path)

    def fail_next(self, count: int = 1, code: int = 451, message: str | None = None) -> None:
        """Answer DATA with ``code`` for the next ``count`` messages (451: transient, 550: permanent)."""
        control = self._control()
        control["fail_next"] = {"count": count, "code": code, "message": message}
        self._write_control(control)

    def reject_recipients(self, pattern: str, code: int = 550, message: str | None = None) -> None:
        """Answer RCPT with ``code`` for addresses matching the regular expression ``pattern``."""
        control = self._control()
        control.setdefault("reject_rcpt", []).append(
            {"pattern": pattern, "code": code, "message": message}
        )
        self._write_control(control)

    def clear_failures(self) -> None:
        self._write_control({})


def make_temp_root(prefix: str) -> Path:
    """A private directory outside pytest's 0700 tmp tree, so Dovecot's unprivileged
    processes can traverse into it."""
    return Path(tempfile.mkdtemp(prefix=prefix))
