"""Which reminder is due (mailbot.reminders.due_reminder) and how offsets are written.

A reminder's moment is the event's start minus its offset, in the configured time zone.
Only the reminder whose moment passed most recently is due — after an outage that
spans both the 7-day and the 1-day moment the daemon sends the 1-day one only — and
nothing once the event has started. Offsets are configured as "7d", "12h", "30m"; a
spelling like "7 days" must be refused when the configuration is loaded, by its TOML
path, not discovered on the morning a reminder should go out.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import delete, event, update
from sqlmodel import col

from mailbot.app import App, build_app
from mailbot.config import EventSettings, InvalidConfig, Settings, load_settings, parse_offset, settings_from_dict
from mailbot.reminders import _seated, due_reminder, offset_label
from mailbot.store.tables import AddressStatus, InboundMessage, OutboundMail, Participant, Registration

from tests.conversation import WARSAW

REPO = Path(__file__).resolve().parents[1]
SETTINGS = load_settings(REPO / "config" / "demo.toml")
OPOLE = SETTINGS.event("opole-2016")  # 2016-04-18 11:00 Europe/Warsaw (summer time), "7d" and "1d"
START = dt.datetime(2016, 4, 18, 11, 0, tzinfo=WARSAW)
MINUTE = dt.timedelta(minutes=1)


def with_reminders(*offsets: str) -> EventSettings:
    return EventSettings.model_validate({**OPOLE.model_dump(), "reminders": offsets})


def due(event: EventSettings, now: dt.datetime, settings: Settings = SETTINGS) -> tuple[str, dt.datetime] | None:
    reminder = due_reminder(event, settings, now)
    if reminder is None:
        return None
    assert reminder.event is event
    return offset_label(reminder.offset), reminder.moment


def test_the_event_starts_in_the_configured_time_zone() -> None:
    assert OPOLE.starts_at(SETTINGS.tz) == START
    assert OPOLE.reminder_offsets == (dt.timedelta(days=7), dt.timedelta(days=1))


def test_nothing_is_due_before_the_first_moment() -> None:
    assert due(OPOLE, START - dt.timedelta(days=7) - MINUTE) is None
    assert due(OPOLE, dt.datetime(2016, 3, 1, tzinfo=dt.UTC)) is None


def test_the_seven_day_reminder_is_due_from_its_moment_until_the_one_day_moment() -> None:
    week = START - dt.timedelta(days=7)
    assert due(OPOLE, week) == ("7d", week)
    assert due(OPOLE, week.astimezone(dt.UTC)) == ("7d", week)  # the clock's zone does not matter
    assert due(OPOLE, START - dt.timedelta(days=1) - MINUTE) == ("7d", week)


def test_after_the_one_day_moment_only_the_one_day_reminder_is_due() -> None:
    day = START - dt.timedelta(days=1)
    assert due(OPOLE, day) == ("1d", day)
    # Back after a week's outage, an hour before the start: the 1-day reminder, not both.
    assert due(OPOLE, START - dt.timedelta(hours=1)) == ("1d", day)
    assert due(OPOLE, START - MINUTE) == ("1d", day)


def test_nothing_is_due_once_the_event_has_started() -> None:
    assert due(OPOLE, START) is None
    assert due(OPOLE, START + dt.timedelta(days=2)) is None


def test_hour_and_minute_offsets() -> None:
    event = with_reminders("30m", "12h")
    assert event.reminder_offsets == (dt.timedelta(hours=12), dt.timedelta(minutes=30))
    half_day = START - dt.timedelta(hours=12)
    half_hour = START - dt.timedelta(minutes=30)
    assert due(event, half_day - MINUTE) is None
    assert due(event, half_day) == ("12h", half_day)
    assert due(event, half_hour - MINUTE) == ("12h", half_day)
    assert due(event, half_hour) == ("30m", half_hour)
    assert due(event, START) is None


def test_an_event_without_reminders_never_has_one_due() -> None:
    assert due(with_reminders(), START - dt.timedelta(hours=1)) is None


def test_offset_labels_use_the_largest_whole_unit() -> None:
    assert offset_label(dt.timedelta(days=7)) == "7d"
    assert offset_label(dt.timedelta(hours=24)) == "1d"
    assert offset_label(dt.timedelta(hours=12)) == "12h"
    assert offset_label(dt.timedelta(hours=36)) == "36h"
    assert offset_label(dt.timedelta(minutes=30)) == "30m"
    assert offset_label(dt.timedelta(minutes=90)) == "90m"


def test_offsets_parse_and_their_labels_read_back() -> None:
    for text in ("7d", "1d", "12h", "30m", " 2 h "):
        offset = parse_offset(text)
        assert parse_offset(offset_label(offset)) == offset
    assert parse_offset("12h") == dt.timedelta(hours=12)


@pytest.mark.parametrize("bad", ["7 days", "1 dzień", "7", "d7", "1.5d", "-1d"])
def test_a_misspelt_offset_is_refused_by_its_toml_path_with_an_example(bad: str) -> None:
    event = {
        "key": "opole-2016", "title": "Konferencja", "city": "Opole", "date": "2016-04-18",
        "venue": "Sala Herbowa", "address": "ul. Piastowska 14", "capacity": 120, "reminders": ["1d", bad],
    }
    with pytest.raises(InvalidConfig) as exc:
        settings_from_dict({"outbox": {"from_address": "zgloszenia@example.pl"}, "events": [event]})
    (problem,) = exc.value.problems
    assert problem.path == "events[opole-2016].reminders"
    assert repr(bad) in problem.message and '"7d"' in problem.message
    assert "events[opole-2016].reminders" in str(exc.value)


# --- an idle pass costs a constant handful of statements (issue 13) ---------------------

IDLE_NOW = dt.datetime(2016, 4, 12, 9, 0, tzinfo=WARSAW)  # Opole's 7-day reminder is due


def _idle_store(tmp_path: Path, people: int) -> App:
    """A store with ``people`` seated registrations for Opole (and two waiting), each from
    a filed message (the event full), every due reminder queued and sent: nothing to do."""
    full = [e.model_copy(update={"capacity": people}) if e.key == "opole-2016" else e for e in SETTINGS.events]
    settings = SETTINGS.model_copy(update={
        "events": full,
        "state_dir": tmp_path / "state",
        "database_url": f"sqlite:///{tmp_path / 'state' / 'mailbot.db'}",
        "mailbox": SETTINGS.mailbox.model_copy(update={"path": tmp_path / "inbox"}),
        "outbox": SETTINGS.outbox.model_copy(update={"path": tmp_path / "outbox"}),
    })
    app = build_app(settings, clock=lambda: IDLE_NOW)
    before = IDLE_NOW - dt.timedelta(days=20)
    numbers = range(1, people + 3)
    with app.session() as s:
        s.add_all(InboundMessage(id=i, dedupe_key=f"{i:064d}", ref=f"r{i}", raw_sha256="0" * 64, size=1,
                                 source="test", outcome="registered", filed=True, received_at=before)
                  for i in numbers)
        s.flush()
        s.add_all(Registration(id=i, code=f"C{i}", event_key="opole-2016", sender_email=f"osoba{i}@gmina.example.pl",
                               source_inbound_id=i, created_at=before, updated_at=before)
                  for i in numbers)
        s.flush()
        s.add_all(Participant(registration_id=i, position=0, full_name=f"Osoba {i}", email=f"osoba{i}@gmina.example.pl",
                              status="confirmed" if i <= people else "waitlisted",
                              registered_at=before, status_changed_at=before)
                  for i in numbers)
        s.commit()
    assert len(app.remind()) == people  # the first pass in the window queues them all
    with app.session() as s:
        s.execute(update(OutboundMail).values(status="sent", sent_at=IDLE_NOW - dt.timedelta(hours=1)))
        s.commit()
    return app


def _statements_of_a_pass(app: App) -> int:
    seen: list[str] = []

    def count(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(app.engine, "before_cursor_execute", count)
    try:
        report = app.run_once()
    finally:
        event.remove(app.engine, "before_cursor_execute", count)
    assert report.results == [] and report.scheduled == [] and report.delivery.sent == 0
    return len(seen)


def test_an_idle_pass_issues_the_same_few_statements_however_many_are_seated(tmp_path: Path) -> None:
    small = _statements_of_a_pass(_idle_store(tmp_path / "small", 3))
    large = _statements_of_a_pass(_idle_store(tmp_path / "large", 60))
    assert large == small  # no per-participant or per-address query
    assert large <= 20


def test_a_seated_person_without_the_reminder_still_gets_it_on_the_next_pass(tmp_path: Path) -> None:
    app = _idle_store(tmp_path, 3)
    with app.session() as s:  # as if that mail had never been queued
        s.execute(delete(OutboundMail).where(col(OutboundMail.to_addr) == "osoba2@gmina.example.pl"))
        s.commit()
    assert app.remind() == ["reminder → osoba2@gmina.example.pl"]
    assert app.remind() == []


def test_the_sql_address_rule_names_the_unconfirmed_state_as_registrations_do() -> None:
    from mailbot import reminders
    from mailbot.registrations import UNCONFIRMED

    assert reminders._UNCONFIRMED == UNCONFIRMED


def test_a_bouncing_seated_address_keeps_an_idle_pass_idle(tmp_path: Path) -> None:
    """A bouncing address never gets its reminder: it must not make every later pass
    load that person, import the mail composer and look again."""
    app = _idle_store(tmp_path, 3)
    with app.session() as s:
        s.execute(delete(OutboundMail).where(col(OutboundMail.to_addr) == "osoba2@gmina.example.pl"))
        s.add(AddressStatus(address="osoba2@gmina.example.pl", bouncing=True, bounce_count=1))
        s.commit()
    assert app.remind() == []
    with app.session() as s:
        assert _seated(s, "opole-2016", seated_by=IDLE_NOW, unsent="reminder:opole-2016:7d:") == []
