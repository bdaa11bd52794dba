"""Engine creation and schema migrations; the only place that knows the database URL.

Migrations cannot half-apply. ``upgrade`` runs the whole pending chain, version row
included, in ONE real transaction on every backend, so a crash or SIGKILL at any point
leaves the old schema and version or the new ones, never a mix. PostgreSQL has
transactional DDL; on SQLite pysqlite's legacy transaction control would commit before
every DDL statement, so ``migration_connection`` switches it off for the migration's
connection (the SQLAlchemy pysqlite recipe: ``isolation_level = None`` on the DBAPI
connection, our own ``BEGIN`` from a ``begin`` listener). It takes ``BEGIN IMMEDIATE``:
the write lock up front, so two processes starting at once wait for each other (up to
busy_timeout) instead of the second failing on a stale snapshot. The run-time engine is
untouched: other connections keep pysqlite's default behaviour and the connect pragmas.

A new migration gets this for free and must keep it:

* no ``COMMIT``, ``op.get_context().autocommit_block()`` or anything else that ends the
  transaction early (that is the half-applied state again);
* nothing SQLite refuses or ignores inside a transaction: ``PRAGMA journal_mode``,
  ``PRAGMA foreign_keys`` (silently a no-op there), ``VACUUM``; on PostgreSQL no
  ``CREATE INDEX CONCURRENTLY`` or ``ALTER TYPE ... ADD VALUE`` used in the same run;
* use ``op.batch_alter_table`` for SQLite changes (it runs inside the transaction; note
  that foreign keys are ON, so a recreated table must not be one others reference);
* data fixes (``op.execute``) are fine: they roll back with the DDL.

tests/test_migrations_kill.py kills ``upgrade`` after every write statement of every
migration, on SQLite and PostgreSQL, and checks that the next start finishes the job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import re
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.engine import make_url
from sqlmodel import create_engine

from mailbot.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets `mailbot status` and exports read while the daemon writes; busy_timeout
    # makes the rare concurrent writer wait instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    """Create the engine; for SQLite also the directory holding the file."""
    try:
        parsed = make_url(url)
    except Exception as e:
        raise ConfigError(f"database_url {url!r} is not a valid SQLAlchemy URL") from e
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


_MIGRATION_LOCK = 0x6D61696C626F7401
"""The advisory-lock key that serialises migrations on PostgreSQL ("mailbot" + 1)."""


def _begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside one real transaction, committed on success (see module doc)."""
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    # Two services starting at once on a new database: the second waits
                    # here, then finds the schema at head (SQLite's BEGIN IMMEDIATE does
                    # the same there).
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
                yield conn
            return
        dbapi_conn: Any = conn.connection.driver_connection
        saved = dbapi_conn.isolation_level
        dbapi_conn.isolation_level = None  # pysqlite stops committing before DDL
        event.listen(conn, "begin", _begin_immediate)
        try:
            with conn.begin():
                yield conn
        finally:
            event.remove(conn, "begin", _begin_immediate)
            dbapi_conn.isolation_level = saved  # back to the pool as it came


_REVISION = re.compile(r"^(revision|down_revision)\b[^=]*=\s*'([^']*)'", re.MULTILINE)


def head_revision() -> str:
    """The newest migration, read from the version files' own ``revision`` lines:
    asking Alembic costs its import (a fifth of a second) on every start."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for kind, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            (revisions if kind == "revision" else parents).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        raise ConfigError(f"the migrations in {MIGRATIONS} have {len(heads)} heads; the package is damaged")
    return heads.pop()


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at; None for a database without mailbot's
    tables (or one that cannot be read: the caller's next step says why)."""
    try:
        with engine.connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError:
        return None
    return current[0] if len(current) == 1 else None


def _at_head(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every pending migration in one transaction (idempotent; run on every start).
    A database already at the newest revision is left alone without loading Alembic."""
    if revision == "head" and _at_head(engine):
        return
    from alembic import command

    with migration_connection(engine) as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
