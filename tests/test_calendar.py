"""The .ics attachments: structure Outlook and Thunderbird accept, stable identity, and
the fingerprint that decides when a "changed" mail is due."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from icalendar import Calendar

from mailbot.calendar import (
    CANCELLED_PREFIX,
    CalendarFile,
    calendar_file,
    event_fingerprint,
    event_uid,
    make_ics,
)
from mailbot.config import EventSettings

WARSAW = ZoneInfo("Europe/Warsaw")
STAMP = dt.datetime(2016, 3, 1, 8, 30, 15, tzinfo=dt.UTC)
TITLE = "Zarządzanie strategiczne w partnerstwie – źdźbło, żółć, łąka"
VENUE = "Centrum Wystawienniczo-Kongresowe Województwa Opolskiego"
ADDRESS = "ul. Józefa Ignacego Kraszewskiego 14a, 45-111 Opole"


def _event(**changes: Any) -> EventSettings:
    data: dict[str, Any] = {
        "key": "opole-2016",
        "title": TITLE,
        "city": "Opole",
        "date": dt.date(2016, 4, 18),
        "start_time": dt.time(11, 0),
        "venue": VENUE,
        "address": ADDRESS,
        "capacity": 120,
        "registration_deadline": dt.date(2016, 4, 11),
    }
    data.update(changes)
    return EventSettings(**data)


def _ics(event: EventSettings | None = None, **kwargs: Any) -> bytes:
    args: dict[str, Any] = {
        "tz": WARSAW,
        "uid": event_uid("opole-2016", "jan.kowalski@example.pl", "example.pl"),
        "sequence": 0,
        "stamp": STAMP,
        "organiser_email": "zgloszenia@example.pl",
        "organiser_name": "Zespół organizacyjny konferencji",
        "description": "Rejestracja od 10:30.\nProsimy o zabranie potwierdzenia.",
    }
    args.update(kwargs)
    return make_ics(event or _event(), **args)


def _parse(data: bytes) -> Calendar:
    return Calendar.from_ical(data)


def _vevent(data: bytes) -> Any:
    events = _parse(data).walk("VEVENT")
    assert len(events) == 1
    return events[0]


def _lines(data: bytes) -> list[bytes]:
    """The physical lines, each without its CRLF; fails on a bare LF or a missing final CRLF."""
    assert data.endswith(b"\r\n")
    lines = data[:-2].split(b"\r\n")
    for line in lines:
        assert b"\n" not in line and b"\r" not in line, line
    return lines


def _unfolded(data: bytes) -> list[str]:
    return data.decode("utf-8").replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")


# --- the calendar as a whole ---------------------------------------------------------


def test_parses_with_publish_method_and_headers() -> None:
    cal = _parse(_ics())
    assert cal["METHOD"] == "PUBLISH"
    assert cal["VERSION"] == "2.0"
    assert str(cal["PRODID"]).startswith("-//")
    assert len(cal.walk("VEVENT")) == 1
    timezones = cal.walk("VTIMEZONE")
    assert len(timezones) == 1
    assert timezones[0]["TZID"] == "Europe/Warsaw"
    assert not cal.get_missing_tzids()


def test_vtimezone_comes_before_the_event() -> None:
    names = [c.name for c in _parse(_ics()).subcomponents]
    assert names == ["VTIMEZONE", "VEVENT"]


def test_lines_are_crlf_terminated_and_at_most_75_octets() -> None:
    long_description = "Ćwiczenia warsztatowe: " + "zażółć gęślą jaźń, " * 30
    data = _ics(description=long_description)
    lines = _lines(data)
    assert max(len(line) for line in lines) <= 75
    assert any(line.startswith(b" ") for line in lines), "long values are folded"
    data.decode("utf-8")  # folding never splits a multi-byte character
    for line in lines:
        line.decode("utf-8")
    assert _vevent(data)["DESCRIPTION"] == long_description


def test_polish_characters_survive_in_utf8() -> None:
    data = _ics()
    ev = _vevent(data)
    assert ev["SUMMARY"] == f"{TITLE} – Opole"
    escaped = TITLE.replace(",", "\\,")
    assert f"SUMMARY:{escaped} – Opole" in _unfolded(data)
    assert "Józefa" in ev["LOCATION"]
    assert ev["ORGANIZER"].params["CN"] == "Zespół organizacyjny konferencji"


# --- the event -----------------------------------------------------------------------


def test_start_is_11_oclock_warsaw_with_tzid() -> None:
    data = _ics()
    ev = _vevent(data)
    start = ev["DTSTART"].dt
    assert start == dt.datetime(2016, 4, 18, 11, 0, tzinfo=WARSAW)
    assert start.astimezone(dt.UTC) == dt.datetime(2016, 4, 18, 9, 0, tzinfo=dt.UTC)
    assert ev["DTSTART"].params["TZID"] == "Europe/Warsaw"
    assert "DTSTART;TZID=Europe/Warsaw:20160418T110000" in _unfolded(data)


def test_end_defaults_to_six_hours_after_start() -> None:
    ev = _vevent(_ics())
    assert ev["DTEND"].dt == dt.datetime(2016, 4, 18, 17, 0, tzinfo=WARSAW)
    assert ev["DTEND"].params["TZID"] == "Europe/Warsaw"


def test_end_is_the_configured_end_time() -> None:
    ev = _vevent(_ics(_event(end_time=dt.time(16, 30))))
    assert ev["DTEND"].dt == dt.datetime(2016, 4, 18, 16, 30, tzinfo=WARSAW)


def test_location_has_venue_address_and_city_once() -> None:
    location = _vevent(_ics())["LOCATION"]
    assert VENUE in location
    assert ADDRESS in location
    assert location.count("Opole") == 1  # the address already names the city
    other = _vevent(_ics(_event(address="ul. Ozimska 19")))["LOCATION"]
    assert other == f"{VENUE}, ul. Ozimska 19, Opole"


def test_description_and_organiser() -> None:
    ev = _vevent(_ics())
    assert (
        ev["DESCRIPTION"] == "Rejestracja od 10:30.\nProsimy o zabranie potwierdzenia."
    )
    assert str(ev["ORGANIZER"]) == "mailto:zgloszenia@example.pl"
    assert "DESCRIPTION" not in _vevent(_ics(description=""))


def test_confirmed_opaque_and_no_alarm_by_default() -> None:
    ev = _vevent(_ics())
    assert ev["STATUS"] == "CONFIRMED"
    assert ev["TRANSP"] == "OPAQUE"
    assert not ev.walk("VALARM")


def test_optional_alarm_one_day_before() -> None:
    ev = _vevent(_ics(alarm=dt.timedelta(days=1)))
    (alarm,) = ev.walk("VALARM")
    assert alarm["ACTION"] == "DISPLAY"
    assert alarm["TRIGGER"].dt == -dt.timedelta(days=1)
    assert alarm["DESCRIPTION"]


def test_sequence_passes_through() -> None:
    assert _vevent(_ics(sequence=0))["SEQUENCE"] == 0
    assert _vevent(_ics(sequence=7))["SEQUENCE"] == 7
    with pytest.raises(ValueError):
        _ics(sequence=-1)


def test_stamp_is_utc() -> None:
    data = _ics(stamp=dt.datetime(2016, 3, 1, 10, 30, 15, 123456, tzinfo=WARSAW))
    stamp = _vevent(data)["DTSTAMP"].dt
    assert stamp.utcoffset() == dt.timedelta(0)
    assert stamp == dt.datetime(2016, 3, 1, 9, 30, 15, tzinfo=dt.UTC)
    assert "DTSTAMP:20160301T093015Z" in _unfolded(data)


def test_naive_stamp_is_taken_as_utc() -> None:
    data = _ics(stamp=dt.datetime(2016, 3, 1, 8, 30, 15))
    assert "DTSTAMP:20160301T083015Z" in _unfolded(data)


def test_output_is_deterministic() -> None:
    assert _ics() == _ics()


# --- cancellation --------------------------------------------------------------------


def test_cancelled_variant() -> None:
    # RFC 5546 3.2.5: METHOD:CANCEL, same UID, higher SEQUENCE, ORGANIZER, DTSTAMP,
    # STATUS:CANCELLED and the recipient as ATTENDEE; the published entry has no ATTENDEE.
    normal = _vevent(_ics(sequence=1))
    data = _ics(sequence=2, cancelled=True, alarm=dt.timedelta(days=1),
                attendee_email="jan.kowalski@example.pl", attendee_name="Jan Kowalski")
    cal = _parse(data)
    ev = _vevent(data)
    assert cal["METHOD"] == "CANCEL"
    assert "ATTENDEE" not in normal
    assert str(ev["ATTENDEE"]) == "mailto:jan.kowalski@example.pl"
    assert ev["ATTENDEE"].params["CN"] == "Jan Kowalski"
    assert str(ev["ORGANIZER"]) == str(normal["ORGANIZER"])
    assert "DTSTAMP" in ev
    assert ev["STATUS"] == "CANCELLED"
    assert ev["TRANSP"] == "TRANSPARENT"
    assert ev["UID"] == normal["UID"]
    assert ev["SEQUENCE"] == 2
    assert ev["SUMMARY"] == CANCELLED_PREFIX + normal["SUMMARY"]
    assert ev["DTSTART"].dt == normal["DTSTART"].dt
    assert not ev.walk("VALARM")
    assert len(cal.walk("VTIMEZONE")) == 1


# --- identity ------------------------------------------------------------------------


def test_uid_is_stable_and_case_insensitive_in_the_address() -> None:
    uid = event_uid("opole-2016", "Jan.Kowalski@Example.PL", "example.pl")
    assert uid == event_uid("opole-2016", " jan.kowalski@example.pl ", "EXAMPLE.pl")
    assert re.fullmatch(r"[0-9a-f]{24}-opole-2016@example\.pl", uid)
    # pinned: entries already in calendars are matched by this value
    assert uid == "aed794e7bbcad36c26b2c1d8-opole-2016@example.pl"


def test_uid_differs_per_address_and_per_event() -> None:
    a = event_uid("opole-2016", "jan@example.pl", "example.pl")
    b = event_uid("opole-2016", "anna@example.pl", "example.pl")
    c = event_uid("wroclaw-2016", "jan@example.pl", "example.pl")
    assert len({a, b, c}) == 3


def test_uid_lands_in_the_event() -> None:
    uid = event_uid("opole-2016", "anna@example.pl", "example.pl")
    assert _vevent(_ics(uid=uid))["UID"] == uid


def test_uid_needs_all_parts() -> None:
    with pytest.raises(ValueError):
        event_uid("opole-2016", "", "example.pl")
    with pytest.raises(ValueError):
        event_uid("opole-2016", "jan@example.pl", "")


# --- fingerprint ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"date": dt.date(2016, 4, 19)},
        {"start_time": dt.time(10, 0)},
        {"end_time": dt.time(15, 0)},
        {"venue": "Filharmonia Opolska"},
        {"address": "ul. Krakowska 24, 45-075 Opole"},
        {"title": "Inny tytuł"},
        {"city": "Wrocław"},
    ],
)
def test_fingerprint_changes_with_what_the_calendar_shows(
    change: dict[str, Any],
) -> None:
    assert event_fingerprint(_event(**change)) != event_fingerprint(_event())


@pytest.mark.parametrize(
    "change",
    [
        {"capacity": 40},
        {"registration_deadline": dt.date(2016, 4, 15)},
        {"registration_deadline": None},
        {"reminders": ("3d",)},
        {"organisers": ("anna@example.pl",)},
        {"venue": f"  {VENUE} "},
        {"end_time": dt.time(17, 0)},  # the same as the default start + 6 h
    ],
)
def test_fingerprint_ignores_what_the_calendar_does_not_show(
    change: dict[str, Any],
) -> None:
    assert event_fingerprint(_event(**change)) == event_fingerprint(_event())


def test_fingerprint_is_short_and_stable() -> None:
    fp = event_fingerprint(_event())
    assert fp == event_fingerprint(_event())
    assert len(fp) <= 64
    assert fp.startswith("v1:")


# --- the time zone -------------------------------------------------------------------


def _vtimezone(data: bytes) -> Any:
    (vtz,) = _parse(data).walk("VTIMEZONE")
    return vtz


def test_vtimezone_has_standard_and_daylight_with_warsaw_offsets() -> None:
    vtz = _vtimezone(_ics())
    (standard,) = vtz.walk("STANDARD")
    (daylight,) = vtz.walk("DAYLIGHT")
    assert standard["TZOFFSETFROM"].td == dt.timedelta(hours=2)
    assert standard["TZOFFSETTO"].td == dt.timedelta(hours=1)
    assert daylight["TZOFFSETFROM"].td == dt.timedelta(hours=1)
    assert daylight["TZOFFSETTO"].td == dt.timedelta(hours=2)
    text = vtz.to_ical().decode()
    assert "TZOFFSETFROM:+0100" in text and "TZOFFSETTO:+0200" in text
    assert "TZOFFSETFROM:+0200" in text and "TZOFFSETTO:+0100" in text
    # Outlook reads RRULE, not RDATE
    assert "RDATE" not in text
    assert "RRULE" in standard and "RRULE" in daylight


def test_vtimezone_rules_give_the_2016_changes() -> None:
    vtz = _vtimezone(_ics())
    onsets = {}
    for part in vtz.walk("STANDARD") + vtz.walk("DAYLIGHT"):
        rule = rrulestr(part["RRULE"].to_ical().decode(), dtstart=part["DTSTART"].dt)
        onsets[part.name] = [
            d for d in rule.between(dt.datetime(2016, 1, 1), dt.datetime(2017, 1, 1))
        ]
    # local wall time before the change: 02:00 CET in March, 03:00 CEST in October
    assert onsets["DAYLIGHT"] == [dt.datetime(2016, 3, 27, 2, 0)]
    assert onsets["STANDARD"] == [dt.datetime(2016, 10, 30, 3, 0)]


def test_vtimezone_alone_gives_summer_time_on_the_day() -> None:
    """Read the VTIMEZONE as a client without the IANA database would."""
    tz = _vtimezone(_ics()).to_tz(lookup_tzid=False)
    assert dt.datetime(2016, 4, 18, 11, 0, tzinfo=tz).utcoffset() == dt.timedelta(
        hours=2
    )
    assert dt.datetime(2016, 1, 18, 11, 0, tzinfo=tz).utcoffset() == dt.timedelta(
        hours=1
    )
    assert dt.datetime(2016, 11, 18, 11, 0, tzinfo=tz).utcoffset() == dt.timedelta(
        hours=1
    )


@pytest.mark.parametrize(
    "zone",
    [
        "America/New_York",
        "Australia/Sydney",
        "Asia/Tokyo",
        "Europe/London",
        "Asia/Tehran",
        "Africa/Casablanca",
    ],
)
def test_vtimezone_matches_the_zone_all_year(zone: str) -> None:
    tz = ZoneInfo(zone)
    event = _event(date=dt.date(2016, 7, 4))
    vtz = _vtimezone(_ics(event, tz=tz)).to_tz(lookup_tzid=False)
    start = dt.datetime(2016, 1, 1, tzinfo=dt.UTC)
    for hours in range(0, 366 * 24, 5):
        moment = start + dt.timedelta(hours=hours)
        assert (
            moment.astimezone(vtz).utcoffset() == moment.astimezone(tz).utcoffset()
        ), moment


# --- the attachment ------------------------------------------------------------------


def test_calendar_file() -> None:
    data = _ics()
    f = calendar_file(data, "opole-2016")
    assert f == CalendarFile(
        "konferencja-opole-2016.ics",
        "text/calendar; method=PUBLISH; charset=UTF-8",
        data,
    )
    method = re.search(r"method=(\w+)", f.content_type)
    assert method is not None and method.group(1) == _parse(data)["METHOD"]


def test_calendar_file_for_a_cancellation() -> None:
    data = _ics(cancelled=True, attendee_email="jan.kowalski@example.pl")
    f = calendar_file(data, "opole-2016", cancelled=True)
    assert f.filename == "konferencja-opole-2016-odwolana.ics"
    # The Content-Type's method is the file's own: CANCEL.
    assert f.content_type == "text/calendar; method=CANCEL; charset=UTF-8"
    assert _parse(data)["METHOD"] == "CANCEL"


def test_a_cancellation_names_its_recipient() -> None:
    with pytest.raises(ValueError, match="ATTENDEE"):
        _ics(cancelled=True)


def test_calendar_file_refuses_a_cancellation_labelled_as_publish() -> None:
    with pytest.raises(ValueError):
        calendar_file(_ics(cancelled=True, attendee_email="jan@example.pl"), "opole-2016")
    with pytest.raises(ValueError):
        calendar_file(_ics(), "opole-2016", cancelled=True)


def test_calendar_file_refuses_a_different_method() -> None:
    data = _ics().replace(b"METHOD:PUBLISH", b"METHOD:REQUEST")
    with pytest.raises(ValueError):
        calendar_file(data, "opole-2016")


# --- files from the cached skeleton (issue 13) -----------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"uid": "x" * 130 + "@example.pl", "sequence": 12345},  # a UID line that folds
        {"cancelled": True, "attendee_email": " Józef.Bąk@Example.pl ", "attendee_name": "Józef Bąk, dyr.; „ZMP”" * 3},
        {"cancelled": True, "attendee_email": "jan@example.pl", "attendee_name": None, "sequence": 2},
        {"alarm": dt.timedelta(hours=2), "stamp": dt.datetime(2016, 3, 1, 8, 30, 15, 999999)},
        {"tz": ZoneInfo("America/Sao_Paulo"), "default_hours": 2.5, "description": ""},
    ],
)
def test_a_file_from_the_cached_skeleton_is_the_file_built_in_full(changes: dict[str, Any]) -> None:
    from mailbot import calendar as cal

    args: dict[str, Any] = {
        "tz": WARSAW, "uid": event_uid("opole-2016", "jan@example.pl", "example.pl"), "sequence": 1, "stamp": STAMP,
        "organiser_email": "zgloszenia@example.pl", "organiser_name": "Zespół", "description": "Opis;\nz, przecinkiem",
        "cancelled": False, "attendee_email": None, "attendee_name": None, "default_hours": 6.0, "alarm": None,
    }  # fmt: skip
    args.update(changes)
    event = _event()
    stamp = args["stamp"] if args["stamp"].tzinfo else args["stamp"].replace(tzinfo=dt.UTC)
    full = cal._calendar(
        args["tz"], event.starts_at(args["tz"]), event.calendar_end(args["tz"], args["default_hours"]),
        f"{TITLE} – Opole", cal._location(event), args["description"], args["organiser_email"],
        args["organiser_name"], args["cancelled"], args["alarm"],
        cal._own_properties(
            args["uid"], args["sequence"], stamp, args["attendee_email"] if args["cancelled"] else None,
            args["attendee_name"],
        ),
    ).to_ical()  # fmt: skip
    assert make_ics(event, **args) == full
    assert make_ics(event, **args) == full  # and again, from the cache


def test_files_for_two_addresses_differ_only_in_their_own_lines() -> None:
    one = _ics(uid="uid-one@example.pl", sequence=1)
    two = _ics(uid="uid-two@example.pl", sequence=7, stamp=STAMP + dt.timedelta(days=1))
    first, second = Calendar.from_ical(one), Calendar.from_ical(two)
    (ev1,), (ev2,) = first.walk("VEVENT"), second.walk("VEVENT")
    assert (str(ev1["UID"]), int(ev1["SEQUENCE"])) == ("uid-one@example.pl", 1)
    assert (str(ev2["UID"]), int(ev2["SEQUENCE"])) == ("uid-two@example.pl", 7)
    assert ev2.decoded("DTSTAMP") == STAMP + dt.timedelta(days=1)
    differing = {a.split(b":")[0] for a, b in zip(one.split(b"\r\n"), two.split(b"\r\n"), strict=True) if a != b}
    assert differing == {b"DTSTAMP", b"UID", b"SEQUENCE"}
