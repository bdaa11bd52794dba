"""A real SMTP server process for tests: stores what it receives, fails on request.

Run by the ``smtp_server`` fixture (tests/servers.py) as
``python tests/smtp_sink.py DIR --port N [--ssl-port M] [--cert C --key K]``;
``SMTP_SINK_AUTH=user:password`` in the environment enables AUTH (after STARTTLS only).
``SMTP_SINK_OAUTH_INTROSPECT=URL`` (and ``SMTP_SINK_OAUTH_CA=PEM``) enables AUTH XOAUTH2:
the bearer token is POSTed as ``token=...`` to that RFC 7662 introspection endpoint and
must come back ``active`` for the ``user=`` it was sent with. A refused token is reported
the way Gmail does: a 334 challenge carrying a JSON error, then 535 after the client's
empty reply.

Everything lives in DIR so the test process can read and steer it without a socket:

* ``messages/<seq>.eml`` and ``<seq>.json`` (envelope sender, recipients, peer);
  the ``.eml`` is renamed into place last, so a listed message is always complete.
* ``connections.log``: one line per accepted TCP connection (STARTTLS is not counted).
* ``auth.log``: one JSON line per AUTH: mechanism, user, success (never the secret).
* ``control.json`` (optional), re-read for every command, written by the fixture::

      {"fail_next": {"count": 2, "code": 451, "message": "try later"},
       "reject_rcpt": [{"pattern": "bounce@", "code": 550, "message": "no such user"}]}

  ``fail_next`` answers DATA with ``code`` for the next ``count`` messages (the sink
  counts down and rewrites the file); ``reject_rcpt`` answers RCPT for addresses that
  match the regular expression ``pattern``.
* ``ready``: written with the ports once the sockets listen.
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import json
import os
import re
import ssl
import sys
import time
import urllib.parse
import urllib.request
from base64 import b64decode
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Login:
    """What a successful AUTH leaves in ``session.auth_data``."""

    mechanism: str
    login: bytes


def log_auth(root: Path, mechanism: str, user: str, success: bool) -> None:
    with open(root / "auth.log", "a") as fh:
        fh.write(json.dumps({"mechanism": mechanism, "user": user, "success": success}) + "\n")


class Sink:
    """The handler: decisions come from control.json, messages go to disk."""

    def __init__(
        self, root: Path, introspection_url: str | None = None, ca_file: str | None = None
    ) -> None:
        self.root = root
        self.messages = root / "messages"
        self.messages.mkdir(parents=True, exist_ok=True)
        self.control_path = root / "control.json"
        self.introspection_url = introspection_url
        self.ca_file = ca_file

    def _token_owner_ok(self, token: str, user: str) -> bool:
        """Ask the introspection endpoint (blocking; run in a thread)."""
        assert self.introspection_url is not None
        context = ssl.create_default_context(cafile=self.ca_file)
        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), urllib.request.ProxyHandler({})
        )
        request = urllib.request.Request(
            self.introspection_url,
            data=urllib.parse.urlencode({"token": token}).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        with opener.open(request, timeout=10) as response:
            info = json.loads(response.read())
        return bool(info.get("active") is True and info.get("username") == user)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        if self.introspection_url is None:
            return AuthResult(
                success=False, handled=False, message="504 5.5.4 XOAUTH2 not configured"
            )
        blob: Any
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        parts = dict(
            p.split("=", 1) for p in blob.decode("utf-8", "replace").split("\x01") if "=" in p
        )
        user, bearer = parts.get("user", ""), parts.get("auth", "")
        if not user or not bearer.startswith("Bearer ") or not blob.endswith(b"\x01\x01"):
            await server.push("501 5.5.2 Malformed XOAUTH2 initial response")
            return AuthResult(success=False, handled=True)
        ok = await asyncio.to_thread(self._token_owner_ok, bearer[len("Bearer ") :], user)
        log_auth(self.root, "XOAUTH2", user, ok)
        if ok:
            return AuthResult(success=True, auth_data=Login("XOAUTH2", user.encode()))
        error = json.dumps(
            {"status": "401", "schemes": "Bearer", "scope": "https://mail.google.com/"}
        )
        reply = await server.challenge_auth(error)
        if reply is MISSING:
            return AuthResult(success=False, handled=True)
        return AuthResult(
            success=False, handled=False, message="535 5.7.8 Username and Password not accepted"
        )

    def _control(self) -> dict[str, Any]:
        try:
            loaded = json.loads(self.control_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        for rule in self._control().get("reject_rcpt", []):
            if re.search(rule["pattern"], address):
                return f"{int(rule.get('code', 550))} {rule.get('message') or 'recipient rejected'}"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        control = self._control()
        fail = control.get("fail_next")
        if fail and int(fail.get("count", 0)) > 0:
            fail["count"] = int(fail["count"]) - 1
            _write_atomic(self.control_path, json.dumps(control).encode())
            return (
                f"{int(fail.get('code', 451))} {fail.get('message') or 'failure requested by test'}"
            )
        seq = f"{time.time_ns():020d}-{os.getpid()}"
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "peer": list(session.peer) if isinstance(session.peer, tuple) else session.peer,
            "authenticated": bool(session.authenticated),
            "auth_mechanism": getattr(session.auth_data, "mechanism", None),
            "tls": server.transport is not None
            and server.transport.get_extra_info("sslcontext") is not None,
        }
        content = envelope.original_content or b""
        _write_atomic(self.messages / f"{seq}.json", json.dumps(meta).encode())
        _write_atomic(self.messages / f"{seq}.eml", content)
        return f"250 OK queued as {seq}"


class CountingSMTP(SMTP):
    """SMTP that logs each new TCP connection, so tests can prove connection reuse."""

    connections_log: Path

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not getattr(self, "_sink_counted", False):
            self._sink_counted = True
            with open(self.connections_log, "a") as fh:
                fh.write(f"{time.time_ns()}\n")
        super().connection_made(transport)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ssl-port", type=int, default=0, help="implicit-TLS listener")
    parser.add_argument("--cert", type=Path)
    parser.add_argument("--key", type=Path)
    args = parser.parse_args(argv)

    root: Path = args.dir
    root.mkdir(parents=True, exist_ok=True)
    (root / "ready").unlink(missing_ok=True)
    sink = Sink(
        root,
        introspection_url=os.environ.get("SMTP_SINK_OAUTH_INTROSPECT"),
        ca_file=os.environ.get("SMTP_SINK_OAUTH_CA"),
    )
    CountingSMTP.connections_log = root / "connections.log"

    tls: ssl.SSLContext | None = None
    if args.cert and args.key:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)

    credentials = os.environ.get("SMTP_SINK_AUTH")

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            credentials is not None
            and isinstance(auth_data, LoginPassword)
            and f"{auth_data.login.decode()}:{auth_data.password.decode()}" == credentials
        )
        login = auth_data.login if isinstance(auth_data, LoginPassword) else b""
        log_auth(root, mechanism, login.decode("utf-8", "replace"), ok)
        # handled=True would mean "I replied"
        return AuthResult(
            success=ok, handled=False, auth_data=Login(mechanism, login) if ok else None
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory(implicit_tls: bool) -> SMTP:
        # On the implicit-TLS port the socket is already encrypted: no STARTTLS offer,
        # and AUTH must not demand a STARTTLS that will never come.
        return CountingSMTP(
            sink,
            hostname="sink.test",
            tls_context=None if implicit_tls else tls,
            authenticator=authenticator if credentials else None,
            auth_require_tls=not implicit_tls,
            timeout=60,
            loop=loop,
        )

    servers = [
        loop.run_until_complete(loop.create_server(lambda: factory(False), args.host, args.port))
    ]
    ports = {"port": args.port}
    if args.ssl_port and tls is not None:
        servers.append(
            loop.run_until_complete(
                loop.create_server(lambda: factory(True), args.host, args.ssl_port, ssl=tls)
            )
        )
        ports["ssl_port"] = args.ssl_port
    _write_atomic(root / "ready", json.dumps(ports).encode())
    print(f"smtp_sink listening on {args.host} {ports}", file=sys.stderr, flush=True)
    try:
        loop.run_forever()
    finally:
        for server in servers:
            server.close()


if __name__ == "__main__":
    main()
