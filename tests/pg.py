"""A throw-away PostgreSQL server for integration tests, on loopback only.

:class:`PostgresServer` runs the binaries of Debian's ``postgresql`` package
(``/usr/lib/postgresql/<version>/bin``, newest version found) with its own cluster in a
private temporary directory:

* ``initdb`` (``--no-sync``, UTF-8, C locale), then ``postgres -D <data>`` in the
  foreground, so the test run owns the process and ``setpriv --pdeathsig`` stops it if
  pytest dies;
* TCP on ``127.0.0.1:<free port>`` only, with password (SCRAM) authentication for the
  unprivileged test role ``mailbot`` — the same way a production daemon connects;
* the Unix socket in the temp directory, ``trust`` for the superuser ``postgres``, used
  only by the fixture itself to create the role and the per-test databases;
* ``fsync=off`` and friends for speed, and a non-UTC server time zone so timezone
  mistakes in the code under test show up.

PostgreSQL refuses to run as root: when the tests run as root, every server process runs
as the ``postgres`` system user that the Debian package creates.

Pytest fixtures (importable from here; tests/test_postgres.py imports them):

* ``postgres_server`` (session): one running server for the whole run.
* ``postgres_url`` (function): a fresh, empty database owned by the test role, as a
  SQLAlchemy URL ``postgresql+psycopg://mailbot:PASSWORD@127.0.0.1:PORT/DBNAME``.

A missing PostgreSQL makes these fixtures FAIL, never skip: CI must install it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

try:  # tests/ is a package in some layouts and a plain rootdir-inserted path in others
    from tests.servers import HOST, START_TIMEOUT_S, ServerSetupError, free_port
except ImportError:
    from servers import HOST, START_TIMEOUT_S, ServerSetupError, free_port  # type: ignore[no-redef]

PG_LIB = Path("/usr/lib/postgresql")
INSTALL_HINT = "install it with 'apt-get install postgresql' (CI must do the same)"
SERVER_TIME_ZONE = "Europe/Warsaw"  # deliberately not UTC


def find_bindir() -> Path:
    """The ``bin`` directory of the newest PostgreSQL under /usr/lib/postgresql.

    ``$MAILBOT_TEST_PG_BINDIR`` overrides the search (e.g. a non-Debian install).
    """
    override = os.environ.get("MAILBOT_TEST_PG_BINDIR")
    candidates = [Path(override)] if override else []
    if not override and PG_LIB.is_dir():
        versions = [p for p in PG_LIB.iterdir() if re.fullmatch(r"\d+(\.\d+)?", p.name)]
        versions.sort(key=lambda p: tuple(int(x) for x in p.name.split(".")), reverse=True)
        candidates = [v / "bin" for v in versions]
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "postgres")):
            return bindir
    where = override or f"{PG_LIB}/<version>/bin"
    raise ServerSetupError(
        f"PostgreSQL server binaries (initdb, postgres) not found in {where}, but the "
        f"PostgreSQL integration tests need them: {INSTALL_HINT}"
    )


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


class PostgresServer:
    """A private PostgreSQL cluster; :meth:`create_database` hands out fresh databases."""

    host = HOST
    superuser = "postgres"

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self._setpriv = shutil.which("setpriv")
        if self._setpriv is None:
            raise ServerSetupError("the 'setpriv' command (Debian package util-linux) is needed")
        self._as_user: list[str] = []
        owner_uid, owner_gid = os.getuid(), os.getgid()
        if os.geteuid() == 0:
            try:
                pg_user = pwd.getpwnam("postgres")
            except KeyError as e:
                raise ServerSetupError(
                    "PostgreSQL refuses to run as root and the 'postgres' system user is "
                    f"missing; the Debian package postgresql-common creates it: {INSTALL_HINT}"
                ) from e
            owner_uid, owner_gid = pg_user.pw_uid, pg_user.pw_gid
            self._as_user = ["--reuid=postgres", "--regid=postgres", "--init-groups"]
        self.user = "mailbot"
        self.password = secrets.token_urlsafe(16)
        self.port = free_port()
        # Not pytest's tmp_path: /tmp/pytest-of-root is 0700, unreachable for 'postgres'.
        self.root = Path(tempfile.mkdtemp(prefix="mailbot-pg-"))
        self.root.chmod(0o700)
        os.chown(self.root, owner_uid, owner_gid)
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log_path = self.root / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._counter = itertools.count(1)
        self._initialised = False

    # -- process control

    def _command(self, tool: str, *args: str) -> list[str]:
        # --pdeathsig INT: a fast shutdown of the postmaster if pytest dies. setpriv
        # switches the user first and sets the signal last, so the switch can't clear it.
        return [self._setpriv or "setpriv", *self._as_user, "--pdeathsig", "INT", "--",
                str(self.bindir / tool), *args]  # fmt: skip

    def _init_cluster(self) -> None:
        pwfile = self.root / "superuser.pw"  # initdb wants one with --auth-host=scram
        pwfile.write_text(secrets.token_urlsafe(16) + "\n")
        os.chown(pwfile, self.root.stat().st_uid, self.root.stat().st_gid)
        pwfile.chmod(0o600)
        done = subprocess.run(
            self._command(
                "initdb", "-D", str(self.data_dir), "-U", self.superuser, "--pwfile", str(pwfile),
                "-E", "UTF8", "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256",
                "--no-sync", "--no-instructions",
            ),
            cwd=self.root, capture_output=True, text=True, check=False, timeout=120,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TZ": SERVER_TIME_ZONE},
        )  # fmt: skip
        pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise ServerSetupError(f"initdb failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        self.socket_dir.mkdir()
        os.chown(self.socket_dir, self.root.stat().st_uid, self.root.stat().st_gid)
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                f"""
# Written by tests/pg.py for a throw-away test cluster.
listen_addresses = '{HOST}'
port = {self.port}
unix_socket_directories = '{self.socket_dir}'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 50
timezone = '{SERVER_TIME_ZONE}'
logging_collector = off
log_min_messages = warning
"""
            )
        self._initialised = True

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        if not self._initialised:
            self._init_cluster()
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self._command("postgres", "-D", str(self.data_dir)),
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with self._admin():
                    break
            except psycopg.OperationalError as e:
                if self._proc.poll() is not None:
                    raise ServerSetupError(
                        f"postgres exited with code {self._proc.returncode}; log:\n{_tail(self.log_path)}"
                    ) from e
                if time.monotonic() > deadline:
                    self.stop()
                    raise ServerSetupError(
                        f"postgres did not accept connections in time ({e}); log:\n{_tail(self.log_path)}"
                    ) from e
                time.sleep(0.05)
        with self._admin() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.user,)).fetchone()
            if not exists:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(self.user), sql.Literal(self.password)
                    )
                )

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGINT: open sessions are terminated), SIGKILL as a last resort."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)

    def cleanup(self) -> None:
        """Stop the server and delete the cluster."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    # -- databases

    @contextlib.contextmanager
    def _admin(self) -> Iterator[psycopg.Connection[Any]]:
        """Superuser connection over the private Unix socket (autocommit, for DDL)."""
        with psycopg.connect(
            host=str(self.socket_dir), port=self.port, user=self.superuser, dbname="postgres",
            autocommit=True, connect_timeout=5,
        ) as conn:  # fmt: skip
            yield conn

    def url(self, database: str) -> str:
        """SQLAlchemy URL for ``database`` as the (non-superuser) test role, over TCP."""
        return f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self, hint: str = "") -> str:
        """A new, empty database owned by the test role; returns its SQLAlchemy URL."""
        slug = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")
        name = f"t{next(self._counter)}_{slug}"[:63].rstrip("_")
        with self._admin() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(self.user)
                )
            )
        return self.url(name)


# -- pytest fixtures ----------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run; fails (never skips) if it can't start."""
    server: PostgresServer | None = None
    try:
        server = PostgresServer()
        server.start()
    except ServerSetupError as e:
        if server is not None:
            server.cleanup()
        pytest.fail(str(e), pytrace=False)
    yield server
    server.cleanup()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh empty database for this test, as a ``postgresql+psycopg://`` URL."""
    try:
        postgres_server.start()  # in case a previous test stopped it
    except ServerSetupError as e:
        pytest.fail(str(e), pytrace=False)
    return postgres_server.create_database(request.node.name)
