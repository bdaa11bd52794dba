"""Seats: who holds one, who waits, and who moves up when a seat frees.

An event's ``capacity`` counts people, not forms: a participant holds a seat while their
status is ``confirmed`` and their registration is neither cancelled nor late. Seats go
in the order people first appeared on a form (``registered_at``, then form order); the
rest wait, and the first of them moves up as soon as someone withdraws or the organisers
raise the capacity. An incomplete registration holds its seats: the person meant to come,
only a phone number is missing. ``capacity = "unlimited"`` arrives as
:data:`~mailbot.config.UNLIMITED`: nobody ever waits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from mailbot.config import is_unlimited
from mailbot.store.tables import Participant, Registration

HOLDING = ("confirmed", "incomplete")
"""Registration states whose confirmed participants hold seats."""


def seats_taken(session: Session, event_key: str) -> int:
    count = session.exec(
        select(func.count())
        .select_from(Participant)
        .join(Registration, col(Registration.id) == col(Participant.registration_id))
        .where(
            Registration.event_key == event_key,
            col(Registration.status).in_(HOLDING),
            Participant.status == "confirmed",
        )
    ).one()
    return int(count)


def free_seats(session: Session, event_key: str, capacity: int) -> int | None:
    """Seats still free (never negative after the capacity was lowered); None: unlimited."""
    if is_unlimited(capacity):
        return None
    return max(0, capacity - seats_taken(session, event_key))


def _waiting(session: Session, event_key: str) -> Sequence[Participant]:
    return session.exec(
        select(Participant)
        .join(Registration, col(Registration.id) == col(Participant.registration_id))
        .where(
            Registration.event_key == event_key,
            col(Registration.status).in_(HOLDING),
            Participant.status == "waitlisted",
        )
        .order_by(col(Participant.registered_at), col(Participant.id))
    ).all()


def allocate(
    session: Session, event_key: str, capacity: int, people: Sequence[Participant], now: dt.datetime
) -> None:
    """Give each newcomer a seat while there are any, else a place on the waiting list.

    Someone already waiting keeps their turn: newcomers never jump the queue."""
    for person in people:
        person.status = "pending"  # counted neither as seated nor as waiting, yet
        session.add(person)
    session.flush()
    free = free_seats(session, event_key, capacity)
    queue_exists = bool(_waiting(session, event_key))
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
    session.flush()


def waitlist_position(session: Session, person: Participant, event_key: str) -> int | None:
    if person.status != "waitlisted":
        return None
    for index, waiting in enumerate(_waiting(session, event_key), start=1):
        if waiting.id == person.id:
            return index
    return None


def promote(session: Session, event_key: str, capacity: int, now: dt.datetime) -> list[Participant]:
    """Move people up from the waiting list while seats are free; returns them."""
    session.flush()
    free = free_seats(session, event_key, capacity)
    promoted: list[Participant] = []
    if free == 0:
        return promoted
    for person in _waiting(session, event_key)[:free]:
        person.status = "confirmed"
        person.status_changed_at = now
        session.add(person)
        promoted.append(person)
    session.flush()
    return promoted
