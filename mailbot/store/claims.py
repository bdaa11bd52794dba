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
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, func, or_, update
from sqlalchemy.exc import IntegrityError
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
    with session_factory() as session:
        taken = session.exec(
            update(FilingClaim)
            .where(
                col(FilingClaim.source) == source,
                col(FilingClaim.ref) == ref,
                col(FilingClaim.filed_at).is_(None),
                or_(col(FilingClaim.claimed_by) == me, col(FilingClaim.lease_until) < db_clock(session)),
            )
            .values(claimed_by=me, lease_until=db_clock(session, FILING_LEASE))
        ).rowcount
        session.commit()
        if taken == 1:
            return True
    try:
        with session_factory() as session:
            session.execute(
                FilingClaim.__table__.insert().values(  # type: ignore[attr-defined]
                    source=source, ref=ref, claimed_by=me, lease_until=db_clock(session, FILING_LEASE)
                )
            )
            session.commit()
    except IntegrityError:
        return _take_over(session_factory, source, ref, me)  # held by another, or filed
    return True


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
    session.exec(
        update(FilingClaim)
        .where(col(FilingClaim.source) == source, col(FilingClaim.ref) == ref, col(FilingClaim.claimed_by) == me)
        .values(filed_at=db_clock(session))
    )


def release_filing(session_factory: Callable[[], Session], source: str, ref: str, me: str) -> None:
    """Give a claim up after a failed MOVE, so the next pass (of any process) tries again
    at once instead of waiting for the lease."""
    with session_factory() as session:
        session.exec(
            update(FilingClaim)
            .where(
                col(FilingClaim.source) == source,
                col(FilingClaim.ref) == ref,
                col(FilingClaim.claimed_by) == me,
                col(FilingClaim.filed_at).is_(None),
            )
            .values(lease_until=db_clock(session, -dt.timedelta(seconds=1)))
        )
        session.commit()
