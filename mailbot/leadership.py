"""Which `mailbot run` leads, when several share one PostgreSQL store.

The leader holds a session advisory lock ("mailbox watcher") on a connection of its
own; PostgreSQL drops it the moment that session ends, however the process died. A
second service is a hot standby: it tries the lock every second and takes over within
seconds of the leader's death. Each side names itself in ``application_name``, which is
how ``mailbot status`` tells who leads from the server's own lock table.

Scheduled jobs (digest, purge, reminders) also take a lock of their own while they run,
so a hand-run ``mailbot digest`` beside the service waits its turn instead of racing it.
On SQLite the service lock is :mod:`mailbot.runlock` (a second service refuses to
start) and job locks are file locks beside the database.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from mailbot.runlock import lock_path

log = logging.getLogger(__name__)

__all__ = ["Leader", "PgLeadership", "job_lock", "leaders"]

_WATCHER = "mailbot:mailbox-watcher"
_NAME_PREFIX = "mailbot "


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _halves(key: int) -> tuple[int, int]:
    """How pg_locks shows a bigint key: classid (high 32 bits), objid (low 32 bits)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


def _me() -> str:
    return f"{socket.gethostname()[:40]} pid {os.getpid()}"


class PgLeadership:
    """The service lock on PostgreSQL. Not thread-safe: the main loop alone uses it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self.leading = False

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._name(conn, "standby")
            self._conn = conn
        return self._conn

    @staticmethod
    def _name(conn: Connection, role: str) -> None:
        since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        label = f"{_NAME_PREFIX}{role} {_me()} since {since}"[:63]
        conn.execute(text("SELECT set_config('application_name', :v, false)"), {"v": label})

    def try_lead(self) -> bool:
        """Take the lead if nobody holds it; False (and still a standby) otherwise.
        A database error counts as not leading: the caller tries again later."""
        try:
            conn = self._connection()
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(_WATCHER)}).scalar())
            if got:
                self._name(conn, "leader")
        except SQLAlchemyError as e:
            log.warning("cannot reach the database to ask for the lead: %s", e.__class__.__name__)
            self._drop()
            return False
        self.leading = got
        return got

    def still_leading(self) -> bool:
        """True while the session holding the lock is alive. A lost session means the
        lock is gone (a standby may lead already): the caller must stop working."""
        if not self.leading or self._conn is None:
            return False
        try:
            held = self._conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND pid = pg_backend_pid() AND classid = :hi AND objid = :lo AND objsubid = 1"
                ),
                dict(zip(("hi", "lo"), _halves(lock_key(_WATCHER)), strict=True)),
            ).scalar()
        except SQLAlchemyError:
            held = 0
        if not held:
            self.leading = False
            self._drop()
        return bool(held)

    def holder(self) -> str | None:
        """Who leads now, as its ``application_name`` says (for a standby's log)."""
        for leader in leaders(self._engine):
            return leader.name
        return None

    def _drop(self) -> None:
        """End the session itself: a pooled connection would keep holding the lock."""
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except SQLAlchemyError:
                log.debug("closing the leadership connection failed", exc_info=True)
            self._conn = None

    def release(self) -> None:
        """Let a standby take over now: unlock first (the server notices a closed
        connection only a moment later), then end the session."""
        if self.leading and self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(_WATCHER)})
            except SQLAlchemyError:
                log.debug("unlocking the lead failed; ending the session drops it", exc_info=True)
        self.leading = False
        self._drop()


@dataclass(frozen=True)
class Leader:
    """A `mailbot run` session seen in the database, as ``mailbot status`` shows it."""

    name: str
    """``mailbot leader <host> pid <pid> since <UTC time>`` (or ``standby``)."""
    backend_pid: int
    client: str | None


def leaders(engine: Engine, role: str = "leader") -> list[Leader]:
    """The sessions of ``role`` ("leader" or "standby") on a PostgreSQL store; a leader is
    the holder of the watcher lock, a standby any mailbot session waiting for it."""
    if engine.dialect.name != "postgresql":
        return []
    hi, lo = _halves(lock_key(_WATCHER))
    if role == "leader":
        query = text(
            "SELECT a.application_name, a.pid, host(a.client_addr) FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi AND l.objid = :lo "
            "AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        params: dict[str, object] = {"hi": hi, "lo": lo}
    else:
        query = text(
            "SELECT application_name, pid, host(client_addr) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name LIKE :p ORDER BY backend_start"
        )
        params = {"p": f"{_NAME_PREFIX}standby %"}
    with engine.connect() as conn:
        return [Leader(str(name or ""), int(pid), client) for name, pid, client in conn.execute(query, params)]


class JobBusy(Exception):
    """Another process runs the same job on this store right now."""


@contextmanager
def job_lock(engine: Engine, url: str, job: str) -> Iterator[None]:
    """Hold the lock of ``job`` for the block; :class:`JobBusy` if another process has it.

    PostgreSQL: a session advisory lock on a connection kept for the block. SQLite: a
    ``flock`` on ``<database>.<job>-lock``. Other stores: no lock."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            key = lock_key(f"mailbot:job:{job}")
            if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                raise JobBusy(job)
            try:
                yield
            finally:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                except SQLAlchemyError:
                    # Never hand a session that may still hold the lock back to the pool.
                    log.debug("unlocking job %s failed; ending its session", job, exc_info=True)
                    conn.invalidate()
        return
    service = lock_path(url)
    if service is None:
        yield
        return
    path = Path(f"{service.with_suffix('')}.{job}-lock") if service.suffix == ".run-lock" else service
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JobBusy(job) from None
        yield
    finally:
        os.close(fd)
