"""A real SMTP server process for tests: stores what it receives, fails on request.

Run by the ``smtp_server`` fixture (tests/servers.py) as
``python tests/smtp_sink.py DIR --port N [--ssl-port M] [--cert C --key K]``;
``SMTP_SINK_AUTH=user:password`` in the environment enables AUTH (after STARTTLS only).

Everything lives in DIR so the test process can read and steer it without a socket:

* ``messages/<seq>.eml`` and ``<seq>.json`` (envelope sender, recipients, peer);
  the ``.eml`` is renamed into place last, so a listed message is always complete.
* ``connections.log``: one line per accepted TCP connection (STARTTLS is not counted).
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
import json
import os
import re
import ssl
import sys
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Sink:
    """The handler: decisions come from control.json, messages go to disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.messages = root / "messages"
        self.messages.mkdir(parents=True, exist_ok=True)
        self.control_path = root / "control.json"

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
    sink = Sink(root)
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
        return AuthResult(success=ok, handled=False)  # handled=True would mean "I replied"

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
