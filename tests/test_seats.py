"""Seats and the waiting list (mailbot.seats), on a real SQLite database.

Who holds a seat decides who comes to the conference, and the order of the waiting list
decides who moves up when someone withdraws; both must follow the rules organisers were
promised: seats in order of registration, newcomers never jump an existing queue,
incomplete registrations keep their seats, late and cancelled ones hold none.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlmodel import Session

from mailbot.seats import allocate, promote, seats_taken, waitlist_position
from mailbot.store.db import make_engine, upgrade
from mailbot.store.tables import InboundMessage, Participant, Registration

EVENT = "opole-2016"
T0 = dt.datetime(2016, 4, 1, 7, 0, tzinfo=dt.UTC)
_n = itertools.count(1)


@pytest.fixture
def session(tmp_path: Path) -> Session:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    return Session(engine, expire_on_commit=False)


def registration(
    session: Session,
    names: Sequence[str],
    *,
    at: dt.datetime = T0,
    status: str = "confirmed",
    people_status: str = "confirmed",
    event_key: str = EVENT,
) -> list[Participant]:
    """A registration with its people, stored as a form leaves them (before seating)."""
    n = next(_n)
    inbound = InboundMessage(dedupe_key=f"k{n}", ref=f"r{n}", raw_sha256="0" * 64, size=1, source="t")
    session.add(inbound)
    session.flush()
    assert inbound.id is not None
    reg = Registration(code=f"OPO-T{n:04d}", event_key=event_key, status=status,
                       source_inbound_id=inbound.id, created_at=at, updated_at=at)
    session.add(reg)
    session.flush()
    assert reg.id is not None
    people = [
        Participant(registration_id=reg.id, position=i, full_name=name, status=people_status,
                    registered_at=at, status_changed_at=at)
        for i, name in enumerate(names)
    ]
    session.add_all(people)
    session.flush()
    return people


def register(session: Session, names: Sequence[str], capacity: int, at: dt.datetime = T0) -> list[Participant]:
    """A new registration seated the way the pipeline seats it."""
    people = registration(session, names, at=at)
    allocate(session, EVENT, capacity, people, at)
    return people


def statuses(people: Sequence[Participant]) -> list[str]:
    return [p.status for p in people]


def test_seats_go_in_form_order_and_the_rest_wait(session: Session) -> None:
    people = register(session, ["Anna", "Bartosz", "Celina", "Dorota", "Eryk"], capacity=3)
    assert statuses(people) == ["confirmed", "confirmed", "confirmed", "waitlisted", "waitlisted"]
    assert seats_taken(session, EVENT) == 3
    assert all(p.status_changed_at == T0 for p in people)


def test_a_later_registration_waits_when_the_event_is_full(session: Session) -> None:
    first = register(session, ["Anna", "Bartosz"], capacity=2)
    second = register(session, ["Celina"], capacity=2, at=T0 + dt.timedelta(minutes=1))
    assert statuses(first) == ["confirmed", "confirmed"] and statuses(second) == ["waitlisted"]


def test_a_newcomer_never_jumps_the_queue_even_when_a_seat_is_free(session: Session) -> None:
    (anna,) = register(session, ["Anna"], capacity=1)
    (bartosz,) = register(session, ["Bartosz"], capacity=1, at=T0 + dt.timedelta(minutes=1))
    assert bartosz.status == "waitlisted"
    # Anna withdraws; before anyone is promoted, Celina's form arrives.
    anna.status = "cancelled"
    session.add(anna)
    (celina,) = register(session, ["Celina"], capacity=1, at=T0 + dt.timedelta(minutes=2))
    assert seats_taken(session, EVENT) == 0
    assert celina.status == "waitlisted"  # behind Bartosz, although the seat is free
    assert waitlist_position(session, celina, EVENT) == 2
    assert promote(session, EVENT, 1, T0 + dt.timedelta(minutes=3)) == [bartosz]
    assert (bartosz.status, celina.status) == ("confirmed", "waitlisted")


def test_newcomers_queue_behind_the_waiting_list_after_the_capacity_was_raised(session: Session) -> None:
    register(session, ["Anna"], capacity=2)
    (bartosz,) = register(session, ["Bartosz"], capacity=1, at=T0 + dt.timedelta(minutes=1))
    assert bartosz.status == "waitlisted"
    # The organisers raised the capacity to 3, nobody promoted yet: one seat free for
    # the newcomers would leave Bartosz behind, so both newcomers queue after him.
    later = register(session, ["Celina", "Dorota"], capacity=3, at=T0 + dt.timedelta(minutes=2))
    assert statuses(later) == ["waitlisted", "waitlisted"]
    assert [waitlist_position(session, p, EVENT) for p in (bartosz, *later)] == [1, 2, 3]


def test_incomplete_registrations_hold_their_seats(session: Session) -> None:
    registration(session, ["Anna", "Bartosz"], status="incomplete")
    assert seats_taken(session, EVENT) == 2
    (celina,) = register(session, ["Celina"], capacity=2, at=T0 + dt.timedelta(minutes=1))
    assert celina.status == "waitlisted"


def test_late_and_cancelled_registrations_hold_no_seats(session: Session) -> None:
    registration(session, ["Anna"], status="late", people_status="late")
    # Even people still marked confirmed do not count once their registration is cancelled.
    registration(session, ["Bartosz"], status="cancelled", people_status="confirmed")
    registration(session, ["Celina"], status="late", people_status="confirmed")
    assert seats_taken(session, EVENT) == 0
    (dorota,) = register(session, ["Dorota"], capacity=1, at=T0 + dt.timedelta(minutes=1))
    assert dorota.status == "confirmed"


def test_seats_are_counted_per_event(session: Session) -> None:
    registration(session, ["Anna", "Bartosz"], event_key="torun-2016")
    assert seats_taken(session, EVENT) == 0
    (celina,) = register(session, ["Celina"], capacity=1)
    assert celina.status == "confirmed"


def test_promote_moves_up_the_oldest_waiting_and_only_as_many_as_seats_free(session: Session) -> None:
    seated = register(session, ["Anna", "Bartosz", "Celina"], capacity=3)
    # Waiting people stored out of order: registered_at decides, then the row id.
    dorota = registration(session, ["Dorota"], at=T0 + dt.timedelta(minutes=5), people_status="waitlisted")[0]
    eryk, filip = registration(session, ["Eryk", "Filip"], at=T0 + dt.timedelta(minutes=2),
                               people_status="waitlisted")
    assert [waitlist_position(session, p, EVENT) for p in (eryk, filip, dorota)] == [1, 2, 3]
    for person in seated[:2]:
        person.status = "cancelled"
        session.add(person)
    later = T0 + dt.timedelta(days=1)
    moved = promote(session, EVENT, 3, later)
    assert moved == [eryk, filip]
    assert (eryk.status, filip.status, dorota.status) == ("confirmed", "confirmed", "waitlisted")
    assert eryk.status_changed_at == later and dorota.status_changed_at == T0 + dt.timedelta(minutes=5)
    assert waitlist_position(session, dorota, EVENT) == 1
    assert promote(session, EVENT, 3, later) == []  # full again


def test_promote_does_nothing_when_the_event_is_full_or_overbooked(session: Session) -> None:
    register(session, ["Anna", "Bartosz"], capacity=2)
    (celina,) = register(session, ["Celina"], capacity=2)
    assert promote(session, EVENT, 2, T0) == []
    # The organisers lowered the capacity below the seats already given: nobody loses a
    # seat, nobody moves up.
    assert promote(session, EVENT, 1, T0) == [] and seats_taken(session, EVENT) == 2
    assert celina.status == "waitlisted"


def test_promote_skips_people_waiting_on_cancelled_or_late_registrations(session: Session) -> None:
    registration(session, ["Anna"], status="cancelled", people_status="waitlisted")
    registration(session, ["Bartosz"], status="late", people_status="waitlisted")
    (celina,) = registration(session, ["Celina"], status="incomplete", people_status="waitlisted",
                             at=T0 + dt.timedelta(minutes=1))
    assert promote(session, EVENT, 5, T0) == [celina]


def test_waitlist_position_is_none_for_anyone_not_waiting(session: Session) -> None:
    anna, bartosz, celina = register(session, ["Anna", "Bartosz", "Celina"], capacity=1)
    assert waitlist_position(session, anna, EVENT) is None
    assert [waitlist_position(session, p, EVENT) for p in (bartosz, celina)] == [1, 2]
    bartosz.status = "cancelled"
    session.add(bartosz)
    session.flush()
    assert waitlist_position(session, bartosz, EVENT) is None
    assert waitlist_position(session, celina, EVENT) == 1


# --- two processes, one event; the work per allocation (issue 13) ---------------------

try:  # tests/ is a package in some layouts and a plain rootdir-inserted path in others
    from tests import pg
except ImportError:
    import pg  # type: ignore[no-redef]

postgres_server = pg.postgres_server
postgres_url = pg.postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


def test_two_sessions_seating_the_last_seat_at_once_never_oversell(store_url: str) -> None:
    """The second allocation waits for the first to commit and then sees its seat: on
    PostgreSQL (READ COMMITTED) both would otherwise count the same free seat."""
    engine = make_engine(store_url)
    upgrade(engine)
    with Session(engine, expire_on_commit=False) as setup:
        register(setup, ["Anna"], capacity=2)
        setup.commit()
    first = Session(engine, expire_on_commit=False)
    (bartosz,) = register(first, ["Bartosz"], capacity=2)  # holds the event until it commits
    assert bartosz.status == "confirmed"
    first.flush()

    def second() -> Participant:
        with Session(engine, expire_on_commit=False) as other:
            (celina,) = register(other, ["Celina"], capacity=2)
            other.commit()
            return celina

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(second)
        time.sleep(0.5)  # let it reach the seat count (or the write lock) and wait there
        first.commit()
        celina = pending.result(timeout=60)
    first.close()
    assert celina.status == "waitlisted"
    with Session(engine) as check:
        assert seats_taken(check, EVENT) == 2
    engine.dispose()


def _statements(session: Session) -> list[tuple[str, object]]:
    seen: list[tuple[str, object]] = []

    def record(_c: object, _cur: object, statement: str, params: object, _ctx: object, _many: bool) -> None:
        seen.append((statement, params))

    event.listen(session.get_bind(), "before_cursor_execute", record)
    return seen


def test_allocating_reads_once_and_writes_with_the_messages_next_flush(session: Session) -> None:
    register(session, ["Anna"], capacity=1)
    people = registration(session, ["Bartosz", "Celina"])
    seen = _statements(session)
    allocate(session, EVENT, 1, people, T0)
    assert statuses(people) == ["waitlisted", "waitlisted"]
    assert len(seen) == 1 and seen[0][0].lstrip().startswith("SELECT")
    session.flush()
    assert [s for s, _ in seen[1:]] and all(s.startswith("UPDATE participant") for s, _ in seen[1:])


def test_seat_counts_walk_one_events_registrations_not_the_whole_table(session: Session) -> None:
    """Counting seats and looking for a queue use the (event_key, status) and
    (registration_id, status) indexes: no scan of every participant with a status."""
    register(session, ["Anna"], capacity=5)
    people = registration(session, ["Bartosz"])
    seen = _statements(session)
    allocate(session, EVENT, 5, people, T0)
    (query, params), = seen
    rows = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + query, params)  # type: ignore[arg-type]
    plan = " | ".join(row[-1] for row in rows)
    assert "ix_registration_event_key_status" in plan and "ix_participant_registration_id_status" in plan
    assert "ix_participant_status" not in plan and "SCAN participant" not in plan


def test_on_sqlite_a_seat_count_holds_the_write_lock_until_the_transaction_ends(tmp_path: Path) -> None:
    """A transaction that has written nothing yet still counts seats nobody can change
    before it ends (SQLite has one writer: a no-op write takes that place)."""
    path = tmp_path / "db.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with Session(engine, expire_on_commit=False) as setup:
        register(setup, ["Anna"], capacity=1)
        setup.commit()
    counting = Session(engine)
    assert promote(counting, EVENT, 1, T0) == []
    other = sqlite3.connect(path, timeout=0.1)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("UPDATE participant SET status = 'cancelled'")
        counting.commit()
        other.execute("UPDATE participant SET status = 'cancelled'")
        other.rollback()
    finally:
        other.close()
        counting.close()
        engine.dispose()
