"""Claims: how several processes on one store agree who does what.

A claim is a row changed by a conditional statement, so of two racing processes exactly
one sees it succeed. Leases run on the database's clock, the one clock every process
shares (a pass's ``--now`` may be fixed in the past). Used by the outbox (who sends a
mail) and by filing (who moves a mailbox message).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col

from mailbot.store.tables import FilingClaim

FILING_LEASE = dt.timedelta(seconds=60)
"""How long a filing claim is its holder's alone: a MOVE takes milliseconds, and a
message whose filer died waits this long before another process files it."""


def claimer_name() -> str:
    """Who claims rows: host, pid and a random part (pids are reused, hosts share a
    database), so two passes never mistake each other's claims for their own."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[:300]


def db_clock(session: Session, ahead: dt.timedelta = dt.timedelta(0)) -> ColumnElement[Any]:
    """The database's current time plus ``ahead``, as SQL."""
    if session.get_bind().dialect.name == "sqlite":
        # UTC, in the layout SQLAlchemy stores datetimes in, so text comparison orders them.
        return func.strftime("%Y-%m-%d %H:%M:%f000", "now", f"{int(ahead.total_seconds()):+d} seconds")
    return func.now() + ahead


def claim_filing(session_factory: Callable[[], Session], source: str, ref: str, me: str) -> bool:
    """May ``me`` move the message at ``ref`` of ``source``? True for exactly one of
    several racing processes; False while another holds a live claim, or once the
    message was filed."""
    return ref in claim_filings(session_factory, source, [ref], me)


def claim_filings(session_factory: Callable[[], Session], source: str, refs: Collection[str], me: str) -> set[str]:
    """:func:`claim_filing` for a batch of messages in one transaction: the refs ``me``
    may move. Three statements however many messages (take over expired or own claims,
    insert the new ones unless present, read who holds what), where one claim at a time
    cost two commits a message."""
    if not refs:
        return set()
    wanted = sorted(set(refs))
    with session_factory() as session, _log_synced(session):
        session.exec(
            update(FilingClaim)
            .where(
                col(FilingClaim.source) == source,
                col(FilingClaim.ref).in_(wanted),
                col(FilingClaim.filed_at).is_(None),
                or_(col(FilingClaim.claimed_by) == me, col(FilingClaim.lease_until) < db_clock(session)),
            )
            .values(claimed_by=me, lease_until=db_clock(session, FILING_LEASE))
        )
        lease = db_clock(session, FILING_LEASE)
        rows = [{"source": source, "ref": ref, "claimed_by": me, "lease_until": lease} for ref in wanted]
        table = FilingClaim.__table__  # type: ignore[attr-defined]
        if session.get_bind().dialect.name == "sqlite":  # PostgreSQL's dialect is not loaded for nothing
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            session.execute(sqlite_insert(table).values(rows).on_conflict_do_nothing())
        else:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            session.execute(pg_insert(table).values(rows).on_conflict_do_nothing())
        holders = session.execute(
            select(col(FilingClaim.ref), col(FilingClaim.claimed_by), col(FilingClaim.filed_at)).where(
                col(FilingClaim.source) == source, col(FilingClaim.ref).in_(wanted)
            )
        ).all()
        session.commit()
    mine = {ref for ref, holder, filed_at in holders if holder == me and filed_at is None}
    # Held by a process that is certainly gone (rare: a crash on this host): one at a time.
    mine |= {
        ref
        for ref, holder, filed_at in holders
        if holder != me and filed_at is None and abandoned(holder) and _take_over(session_factory, source, ref, me)
    }
    return mine


@contextmanager
def _log_synced(session: Session) -> Iterator[None]:
    """On SQLite, make the commit of this block sync the log.

    SQLite runs WAL with synchronous=NORMAL: a commit is durable at the next checkpoint,
    so a power cut could undo outcomes whose messages were already moved. The filing
    claim's commit, just before the MOVE, syncs the log and with it every outcome
    committed before: one fsync per batch, not one per commit."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    session.execute(text("PRAGMA synchronous=FULL"))  # before the transaction: not allowed in one
    try:
        yield
    finally:
        # Back to the engine's setting before the connection returns to the pool; a
        # failed transaction is ended first, and a database that fails even that is
        # reported by the statement that failed, not here.
        with suppress(SQLAlchemyError):
            session.rollback()
            session.execute(text("PRAGMA synchronous=NORMAL"))


def _take_over(session_factory: Callable[[], Session], source: str, ref: str, me: str) -> bool:
    """Take an unfiled claim whose holder is known to be gone (this host, pid no longer
    running, or this very process after an aborted attempt) without waiting out its lease."""
    with session_factory() as session:
        row = session.get(FilingClaim, (source, ref))
        if row is None or row.filed_at is not None or not abandoned(row.claimed_by):
            return False
        taken = session.exec(
            update(FilingClaim)
            .where(
                col(FilingClaim.source) == source,
                col(FilingClaim.ref) == ref,
                col(FilingClaim.claimed_by) == row.claimed_by,
                col(FilingClaim.filed_at).is_(None),
            )
            .values(claimed_by=me, lease_until=db_clock(session, FILING_LEASE))
        ).rowcount
        session.commit()
        return taken == 1


def abandoned(claimer: str) -> bool:
    """Is the process named by ``claimer`` (see :func:`claimer_name`) certainly gone?
    Only answerable on its own host; elsewhere the lease decides."""
    host, _, rest = claimer.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # this process: its earlier attempt is over (the main loop files alone)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, someone else's
    return False


def filed(session_factory: Callable[[], Session], source: str, ref: str, me: str) -> None:
    """Record that ``me`` moved the message: nobody claims it again."""
    with session_factory() as session:
        mark_filed(session, source, ref, me)
        session.commit()


def mark_filed(session: Session, source: str, ref: str, me: str) -> None:
    """:func:`filed` inside the caller's transaction (which commits it)."""
    mark_filings(session, source, [ref], me)


def _held(source: str, refs: Collection[str], me: str) -> tuple[ColumnElement[bool], ...]:
    """``me``'s claims on ``refs`` of ``source``."""
    return (
        col(FilingClaim.source) == source,
        col(FilingClaim.ref).in_(sorted(refs)),
        col(FilingClaim.claimed_by) == me,
    )


def mark_filings(session: Session, source: str, refs: Collection[str], me: str) -> None:
    """:func:`mark_filed` for a batch, inside the caller's transaction."""
    if refs:
        session.exec(update(FilingClaim).where(*_held(source, refs, me)).values(filed_at=db_clock(session)))


def release_filings(session_factory: Callable[[], Session], source: str, refs: Collection[str], me: str) -> None:
    """Give claims up after a failed MOVE, so the next pass (of any process) tries again
    at once instead of waiting for the lease."""
    if not refs:
        return
    with session_factory() as session:
        session.exec(
            update(FilingClaim)
            .where(*_held(source, refs, me), col(FilingClaim.filed_at).is_(None))
            .values(lease_until=db_clock(session, -dt.timedelta(seconds=1)))
        )
        session.commit()


def release_filing(session_factory: Callable[[], Session], source: str, ref: str, me: str) -> None:
    """Give a claim up after a failed MOVE, so the next pass (of any process) tries again
    at once instead of waiting for the lease."""
    release_filings(session_factory, source, [ref], me)
