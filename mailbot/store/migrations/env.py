"""Alembic environment: runs on the connection handed in by mailbot.store.db.upgrade.

Every migration runs inside the single transaction that connection holds (on SQLite
too: see the module docstring of mailbot.store.db for why, and for what a new migration
must not do). Without a connection (``command.upgrade(alembic_config(engine), rev)``)
it opens one the same way.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import mailbot.store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from mailbot.store.db import migration_connection

config = context.config
target_metadata = SQLModel.metadata


def _run(connection: Connection) -> None:
    # transactional_ddl: the caller's transaction covers DDL on SQLite as well, so
    # alembic must not treat SQLite as a backend that commits statement by statement.
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=True,
        transactional_ddl=True,
    )  # fmt: skip
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    with migration_connection(config.attributes["engine"]) as conn:
        _run(conn)


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `mailbot db upgrade`")
run_migrations_online()
