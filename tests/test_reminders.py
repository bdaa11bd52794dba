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

from mailbot.config import EventSettings, InvalidConfig, Settings, load_settings, parse_offset, settings_from_dict
from mailbot.reminders import due_reminder, offset_label

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
