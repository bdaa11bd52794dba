"""Seats: who holds one, who waits, and who moves up when a seat frees.

An event's ``capacity`` counts people, not forms: a participant holds a seat while their
status is ``confirmed`` and their registration is neither cancelled nor late. Seats go
in the order people first appeared on a form (``registered_at``, then form order); the
rest wait, and the first of them moves up as soon as someone withdraws or the organisers
raise the capacity. An incomplete registration holds its seats: the person meant to come,
only a phone number is missing. ``capacity = "unlimited"`` arrives as
:data:`~mailbot.config.UNLIMITED`: nobody ever waits.

Two processes may seat people for the same event at once (a second service on the same
PostgreSQL, a hand-run ``mailbot review``): whoever counts free seats first holds the
event's seat lock (:func:`_lock_event`) until its transaction ends, so the last seat is
never given twice. The counts use the ``(event_key, status)`` and ``(registration_id,
status)`` indexes: they touch one event's registrations, not the whole table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Select, and_, bindparam, case, func, or_, text
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from mailbot.config import is_unlimited
from mailbot.store.tables import Participant, Registration

HOLDING = ("confirmed", "incomplete")
"""Registration states whose confirmed participants hold seats."""


def _holding(event_key: str) -> SelectOfScalar[int | None]:
    """Ids of ``event_key``'s registrations that hold seats."""
    return select(col(Registration.id)).where(
        Registration.event_key == event_key, col(Registration.status).in_(HOLDING)
    )


def _of_event(event_key: str, status: str, besides: Collection[int] = ()) -> list[ColumnElement[bool]]:
    """People of ``event_key`` with ``status`` on registrations that hold seats. An IN
    over the event's registrations, not a join: SQLite then walks the two composite
    indexes from the event down, instead of every participant with that status."""
    where: list[ColumnElement[bool]] = [
        col(Participant.registration_id).in_(_holding(event_key)),
        col(Participant.status) == status,
    ]
    if besides:
        where.append(col(Participant.id).not_in(besides))
    return where


def _lock_key(event_key: str) -> int:
    """A stable signed 64-bit advisory-lock key for seating in one event."""
    return int.from_bytes(hashlib.sha256(f"mailbot seats {event_key}".encode()).digest()[:8], "big", signed=True)


def _lock_event(session: Session, event_key: str) -> None:
    """Hold the right to seat people in ``event_key`` until this transaction ends.

    PostgreSQL: a transaction advisory lock per event (READ COMMITTED would let two
    transactions count the same free seat). SQLite has one writer at a time: once this
    transaction has written, nobody else can commit a seat before it ends, and what it
    reads is current; a no-op write takes that lock when nothing was written yet."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(event_key)})
    elif conn.dialect.name == "sqlite":
        dbapi: Any = conn.connection.driver_connection
        if not getattr(dbapi, "in_transaction", True):
            conn.execute(text("UPDATE registration SET event_key = event_key WHERE 0"))


def seats_taken(session: Session, event_key: str) -> int:
    count = session.exec(select(func.count()).select_from(Participant).where(*_of_event(event_key, "confirmed"))).one()
    return int(count)


def free_seats(session: Session, event_key: str, capacity: int) -> int | None:
    """Seats still free (never negative after the capacity was lowered); None: unlimited."""
    if is_unlimited(capacity):
        return None
    return max(0, capacity - seats_taken(session, event_key))


def _waiting(session: Session, event_key: str, limit: int | None = None) -> Sequence[Participant]:
    query = (
        select(Participant)
        .where(*_of_event(event_key, "waitlisted"))
        .order_by(col(Participant.registered_at), col(Participant.id))
    )
    return session.exec(query if limit is None else query.limit(limit)).all()


def _seats_and_queue_queries() -> tuple[Select[Any], Select[Any]]:
    """Seats held and whether anyone waits, besides the newcomers (for an unlimited
    event only the latter): one statement each, built once (building one costs more
    than running it on the indexes)."""
    key: BindParameter[str] = bindparam("event_key")
    besides: BindParameter[list[int]] = bindparam("besides", expanding=True)
    holding = sa_select(col(Registration.id)).where(
        col(Registration.event_key) == key, col(Registration.status).in_(HOLDING)
    )

    def of(status: str) -> list[ColumnElement[bool]]:
        return [
            col(Participant.registration_id).in_(holding),
            col(Participant.status) == status,
            col(Participant.id).not_in(besides),
        ]

    taken = sa_select(func.count()).select_from(Participant).where(*of("confirmed")).scalar_subquery()
    waiting = sa_select(col(Participant.id)).where(*of("waitlisted")).exists()
    return sa_select(taken, waiting), sa_select(waiting)


_SEATS_AND_QUEUE, _QUEUE = _seats_and_queue_queries()


def _seats_and_queue(
    session: Session, event_key: str, capacity: int, besides: Collection[int]
) -> tuple[int | None, bool]:
    """Free seats (None: unlimited) and whether anyone waits, in one statement."""
    params = {"event_key": event_key, "besides": list(besides)}
    if is_unlimited(capacity):
        return None, bool(session.execute(_QUEUE, params).scalar_one())
    count, queue = session.execute(_SEATS_AND_QUEUE, params).one()
    return max(0, capacity - int(count)), bool(queue)


def allocate(
    session: Session, event_key: str, capacity: int, people: Sequence[Participant], now: dt.datetime
) -> None:
    """Give each newcomer a seat while there are any, else a place on the waiting list.

    Someone already waiting keeps their turn: newcomers never jump the queue. The
    newcomers themselves (stored or not) count neither as seated nor as waiting; their
    new statuses are written with the message's next flush, not one by one."""
    if not people:
        return
    session.flush()  # the newcomers get their ids (a no-op when the form already did)
    newcomers = [p.id for p in people if p.id is not None]
    _lock_event(session, event_key)
    free, queue_exists = _seats_and_queue(session, event_key, capacity, newcomers)
    for person in people:
        if (free is None or free > 0) and not queue_exists:
            person.status = "confirmed"
            if free is not None:
                free -= 1
        else:
            person.status = "waitlisted"
            queue_exists = True
        person.status_changed_at = now
        session.add(person)


def waitlist_position(session: Session, person: Participant, event_key: str) -> int | None:
    """``person``'s place in the queue (1 = next to move up): the waiting people ahead
    of them counted in the index, not the whole queue loaded."""
    if person.status != "waitlisted":
        return None
    session.flush()
    if person.id is None:
        return None
    ahead = or_(
        col(Participant.registered_at) < person.registered_at,
        and_(col(Participant.registered_at) == person.registered_at, col(Participant.id) <= person.id),
    )
    count, me = session.exec(
        select(func.count(), func.coalesce(func.sum(case((col(Participant.id) == person.id, 1), else_=0)), 0))
        .select_from(Participant)
        .where(*_of_event(event_key, "waitlisted"), ahead)
    ).one()
    return int(count) if me else None


def promote(session: Session, event_key: str, capacity: int, now: dt.datetime) -> list[Participant]:
    """Move people up from the waiting list while seats are free; returns them."""
    session.flush()
    _lock_event(session, event_key)
    free = free_seats(session, event_key, capacity)
    promoted: list[Participant] = []
    if free == 0:
        return promoted
    for person in _waiting(session, event_key, free):
        person.status = "confirmed"
        person.status_changed_at = now
        session.add(person)
        promoted.append(person)
    session.flush()
    return promoted
