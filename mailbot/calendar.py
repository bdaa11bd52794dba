"""Calendar (.ics) attachments that Outlook, Thunderbird and the web calendars accept.

Every mail about a seat (acknowledgement, "promoted", reminder, "changed") to the
address of someone who attends carries one VCALENDAR with one VEVENT, and a withdrawal
carries the cancellation of that entry. Its UID is stable per participant address and
event (:func:`event_uid`); every file sent to an address has a higher SEQUENCE than the
one before it (kept per address and event in the ``calendar_sequence`` table), so a
client applies each one to the entry it holds: update, removal, and a fresh entry after
a re-registration. :func:`event_fingerprint` tells when the details a calendar shows
have changed and such a "changed" mail is due.

Choices made for the clients people actually use:

* Two iTIP methods (RFC 5546), and the same method in the attachment's Content-Type
  (Outlook wants the two to agree; :func:`calendar_file` reads it from the file):

  - ``METHOD:PUBLISH`` for a seat (RFC 5546 3.2.1): "here is an event, add it". No
    ATTENDEE — the PUBLISH table gives ATTENDEE presence "0", i.e. MUST NOT — so no
    RSVP buttons and no replies coming back to the bot. Outlook offers it as an
    appointment to save; Thunderbird shows "Add" and, for a newer SEQUENCE of a UID it
    holds, "Update". (REQUEST would need ATTENDEE and turn every acknowledgement into
    a meeting invitation whose "Decline" button mails the bot.)
  - ``METHOD:CANCEL`` for a withdrawal (RFC 5546 3.2.5): the organizer's notice that
    the entry is cancelled, which clients act on — Thunderbird's "Delete", Outlook's
    "Remove from Calendar", Google removes it — where a newer PUBLISH with
    STATUS:CANCELLED (this module's earlier choice) merely stayed in the calendar as a
    struck-through or, in Outlook, still visible entry. The file carries what 3.2.5
    requires: ORGANIZER, the UID the person holds, a SEQUENCE higher than the last one
    sent to them, DTSTAMP, ``STATUS:CANCELLED`` (the whole entry is cancelled, not one
    attendee uninvited) and ATTENDEE: "all Attendees" of a cancelled event, which for
    a UID that belongs to one address is exactly the recipient. The published files
    cannot carry that ATTENDEE (PUBLISH forbids it), so the CANCEL is the only file
    with one; clients match the cancellation by UID, not by attendee lists.
    SUMMARY keeps the prefix :data:`CANCELLED_PREFIX` and TRANSP is TRANSPARENT, so a
    client that merely imports the file shows a clearly labelled, free slot.
  - Only a person who holds an entry gets its cancellation: an address with a row in
    ``calendar_sequence`` whose last file was a PUBLISH and which has no seat left in
    the event. A re-registration later sends a PUBLISH of the same UID with a higher
    SEQUENCE again, which re-creates the entry.
* DTEND: the configured ``end_time``, else ``calendar_default_hours`` after the start
  (a calendar needs an end; the mails never state one that was not configured).
* ORGANIZER is the configured organiser (``[organiser]`` name and e-mail), else the
  replies' sender; DESCRIPTION names the organiser with phone and e-mail when given.
* A ``VTIMEZONE`` built from the zone's yearly rule (``RRULE:FREQ=YEARLY;BYMONTH=3;
  BYDAY=-1SU`` …), not the RDATE list that :meth:`icalendar.Timezone.from_tzinfo`
  produces: Outlook reads only DTSTART, RRULE and the offsets of the STANDARD and
  DAYLIGHT parts ([MS-STANOICAL] 2.2.47) and ignores RDATE, which shifts the event by
  an hour. The onset is written in the local time before the change (02:00 for the
  spring change in Warsaw), as RFC 5545 and Outlook's own exports do (``from_tzinfo``
  writes 03:00). Zones without a regular weekday rule get every change of the event's
  year and the years either side listed with RDATE: exact for Thunderbird, the best
  Outlook can be given.
* No VALARM unless asked for (``alarm=``): the bot already sends reminder mails at the
  configured offsets, Outlook would pop a second reminder up, and Thunderbird keeps the
  user's own alarms when it updates an entry anyway.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from mailbot.config import EventSettings

# icalendar is loaded by the functions that build a file: every pass fingerprints the
# events (:func:`event_fingerprint`), but only a pass that composes a mail needs it.
if TYPE_CHECKING:
    from icalendar import Calendar, Event, Timezone

__all__ = [
    "CANCEL",
    "CANCELLED_PREFIX",
    "CONTENT_TYPE",
    "DEFAULT_HOURS",
    "METHOD",
    "PUBLISH",
    "PRODID",
    "CalendarFile",
    "calendar_file",
    "content_type",
    "event_fingerprint",
    "entry_description",
    "event_uid",
    "make_ics",
    "organizer",
]

PUBLISH = "PUBLISH"
CANCEL = "CANCEL"
METHOD = PUBLISH
"""The method of an entry for a seat (a cancellation is :data:`CANCEL`)."""
CONTENT_TYPE = f"text/calendar; method={METHOD}; charset=UTF-8"
"""The Content-Type of a :data:`PUBLISH` file; :func:`content_type` for either method."""
DEFAULT_HOURS = 6.0
"""The length of an entry without end_time when the caller names none
(``calendar_default_hours``'s default)."""
PRODID = "-//mailbot//Conference registrations//PL"
CANCELLED_PREFIX = "ODWOŁANE: "
"""Put before SUMMARY of a cancelled entry: Outlook does not show STATUS:CANCELLED."""

_UTC = dt.UTC
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_SAFE_NAME = re.compile(r"[^a-z0-9_-]+")


# --- identity ------------------------------------------------------------------------


def event_uid(event_key: str, address: str, domain: str) -> str:
    """The UID of one participant's calendar entry for one event.

    ``<first 24 hex digits of sha256(event_key NUL casefolded address)>-<event_key>@<domain>``.
    The address is stripped and casefolded, so ``Jan@X.pl`` and ``jan@x.pl`` share an
    entry; the domain is lower-cased. Never change this formula: entries already in
    participants' calendars are matched by it.
    """
    key = event_key.strip()
    addr = address.strip().casefold()
    host = domain.strip().lower()
    if not key or not addr or not host:
        raise ValueError("event_uid needs an event key, an address and a domain")
    digest = hashlib.sha256(f"{key}\x00{addr}".encode()).hexdigest()[:24]
    return f"{digest}-{key}@{host}"


def _norm(text: str) -> str:
    return " ".join(text.split())


def _effective_end(event: EventSettings) -> dt.datetime:
    """The naive wall-clock end the fingerprint uses: the configured end_time, else six
    hours after the start — fixed at six whatever ``calendar_default_hours`` says, so
    neither an upgrade nor a changed default sends every participant a "changed" mail
    about an end no mail ever stated (later files carry the new DTEND anyway)."""
    start = dt.datetime.combine(event.date, event.start_time)
    if event.end_time is not None:
        return dt.datetime.combine(event.date, event.end_time)
    return start + dt.timedelta(hours=6)


def event_fingerprint(event: EventSettings) -> str:
    """A short hash of what a calendar entry shows: title, city, date, start, end, venue,
    address. Capacity, deadline, reminders and organisers are not in it.

    Whitespace is normalised (a trailing space in the config is no change), and the end is
    the effective one: leaving end_time unset or setting it to start + 6 h is the same
    entry. The result starts with ``v1:`` so a future formula can be told apart.
    """
    shown = {
        "title": _norm(event.title),
        "city": _norm(event.city),
        "start": dt.datetime.combine(event.date, event.start_time).isoformat(),
        "end": _effective_end(event).isoformat(),
        "venue": _norm(event.venue),
        "address": _norm(event.address),
    }
    blob = json.dumps(shown, sort_keys=True, ensure_ascii=False).encode()
    return "v1:" + hashlib.sha256(blob).hexdigest()[:32]


# --- VTIMEZONE -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Transition:
    onset: dt.datetime
    """Naive local wall time of the change, measured in ``offset_from``."""
    offset_from: dt.timedelta
    offset_to: dt.timedelta
    name: str


def _offset(tz: ZoneInfo, when: dt.datetime) -> dt.timedelta:
    off = when.astimezone(tz).utcoffset()
    assert off is not None
    return off


@functools.lru_cache(maxsize=64)
def _transitions(tz: ZoneInfo, year: int) -> tuple[_Transition, ...]:
    """Offset changes of ``tz`` whose local onset falls in ``year``, found by sampling
    daily and bisecting to the second."""
    out: list[_Transition] = []
    day = dt.timedelta(days=1)
    t = dt.datetime(year - 1, 12, 31, 12, tzinfo=_UTC)
    end = dt.datetime(year + 1, 1, 1, 12, tzinfo=_UTC)
    before = _offset(tz, t)
    while t < end:
        nxt = t + day
        after = _offset(tz, nxt)
        if after != before:
            lo, hi = 0, 86400
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(tz, t + dt.timedelta(seconds=mid)) == before:
                    lo = mid
                else:
                    hi = mid
            at = t + dt.timedelta(seconds=hi)
            onset = (at + before).replace(tzinfo=None)
            if onset.year == year:
                out.append(
                    _Transition(onset, before, after, at.astimezone(tz).tzname() or "")
                )
        before = after
        t = nxt
    return tuple(out)


def _nth_weekday(year: int, month: int, weekday: int, ordinal: int) -> dt.date:
    """The ordinal-th (1..4, or -1 for the last) given weekday of a month."""
    if ordinal > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(
            days=(weekday - first.weekday()) % 7 + 7 * (ordinal - 1)
        )
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _candidate_ordinals(onset: dt.datetime) -> list[int]:
    """BYDAY ordinals that put the onset on its day: the last (-1) first when it is the
    last such weekday of the month (how EU rules are stated), then the n-th."""
    d = onset.date()
    out: list[int] = []
    if _nth_weekday(d.year, d.month, d.weekday(), -1) == d:
        out.append(-1)
    nth = (d.day - 1) // 7 + 1
    if nth <= 4:
        out.append(nth)
    return out


def _rule_holds(tz: ZoneInfo, tr: _Transition, ordinal: int, years: range) -> bool:
    for year in years:
        date = _nth_weekday(year, tr.onset.month, tr.onset.weekday(), ordinal)
        expected = dt.datetime.combine(date, tr.onset.time())
        if not any(
            o.onset == expected
            and o.offset_from == tr.offset_from
            and o.offset_to == tr.offset_to
            for o in _transitions(tz, year)
        ):
            return False
    return True


def _vtimezone(tz: ZoneInfo, tzid: str, year: int) -> Timezone:
    """A VTIMEZONE valid around ``year``: yearly RRULEs when the zone follows a weekday
    rule in the years around it, one fixed STANDARD when it has no changes, else the
    changes of those years listed with DTSTART and RDATE."""
    from icalendar import Timezone, TimezoneDaylight, TimezoneStandard
    from icalendar.prop import vRecur

    years = range(year - 1, year + 2)
    per_year = [_transitions(tz, y) for y in years]
    vtz = Timezone()
    vtz.add("TZID", tzid)
    if not any(per_year):
        fixed = _offset(tz, dt.datetime(year, 7, 1, tzinfo=_UTC))
        part = TimezoneStandard()
        part.add("DTSTART", dt.datetime(1970, 1, 1))
        part.add("TZOFFSETFROM", fixed)
        part.add("TZOFFSETTO", fixed)
        part.add(
            "TZNAME",
            dt.datetime(year, 7, 1, tzinfo=_UTC).astimezone(tz).tzname() or tzid,
        )
        vtz.add_component(part)
        return vtz
    first = per_year[0]
    if all(len(t) == 2 for t in per_year) and first[0].offset_to != first[1].offset_to:
        parts: list[TimezoneStandard | TimezoneDaylight] = []
        for tr in first:
            ordinal = next(
                (
                    o
                    for o in _candidate_ordinals(tr.onset)
                    if _rule_holds(tz, tr, o, years)
                ),
                None,
            )
            if ordinal is None:
                break
            daylight = tr.offset_to > tr.offset_from
            part_: TimezoneStandard | TimezoneDaylight = (
                TimezoneDaylight() if daylight else TimezoneStandard()
            )
            part_.add("DTSTART", tr.onset)
            part_.add(
                "RRULE",
                vRecur(
                    {
                        "FREQ": "YEARLY",
                        "BYMONTH": tr.onset.month,
                        "BYDAY": f"{ordinal}{_WEEKDAYS[tr.onset.weekday()]}",
                    }
                ),
            )
            part_.add("TZOFFSETFROM", tr.offset_from)
            part_.add("TZOFFSETTO", tr.offset_to)
            if tr.name:
                part_.add("TZNAME", tr.name)
            parts.append(part_)
        else:
            # STANDARD first, as Outlook writes it (some readers look only at it).
            for part_ in sorted(parts, key=lambda p: p.name != "STANDARD"):
                vtz.add_component(part_)
            return vtz
    # Irregular zone: the offset on 1 January of the first year, then every change of
    # the three years listed (DTSTART and RDATE).
    opening = dt.datetime(year - 1, 1, 1, tzinfo=tz)
    initial = _offset(tz, opening)
    part0 = TimezoneDaylight() if opening.dst() else TimezoneStandard()
    part0.add("DTSTART", opening.replace(tzinfo=None))
    part0.add("TZOFFSETFROM", initial)
    part0.add("TZOFFSETTO", initial)
    part0.add("TZNAME", opening.tzname() or tzid)
    vtz.add_component(part0)
    groups: dict[tuple[dt.timedelta, dt.timedelta, str], list[dt.datetime]] = {}
    for tr in (t for ts in per_year for t in ts):
        groups.setdefault((tr.offset_from, tr.offset_to, tr.name), []).append(tr.onset)
    for (off_from, off_to, name), onsets in groups.items():
        part_ = TimezoneDaylight() if off_to > off_from else TimezoneStandard()
        part_.add("DTSTART", onsets[0])
        for onset in onsets[1:]:
            part_.add("RDATE", onset)
        part_.add("TZOFFSETFROM", off_from)
        part_.add("TZOFFSETTO", off_to)
        if name:
            part_.add("TZNAME", name)
        vtz.add_component(part_)
    return vtz


# --- the file ------------------------------------------------------------------------


def _location(event: EventSettings) -> str:
    parts = [_norm(event.venue), _norm(event.address)]
    city = _norm(event.city)
    if city.casefold() not in parts[1].casefold():
        parts.append(city)
    return ", ".join(parts)


def organizer(
    event: EventSettings, *, fallback_email: str, fallback_name: str
) -> tuple[str, str]:
    """ORGANIZER's address and CN: the event's configured organiser where given, else
    the replies' sender (``outbox.from_address`` / ``from_name``): an entry needs an
    ORGANIZER, and the sender is a true one, never an invented one."""
    org = event.organiser
    return (org.email or fallback_email, org.name or fallback_name)


def entry_description(event: EventSettings) -> str:
    """DESCRIPTION of the entry: the title, the place, and the organiser's name, phone
    and e-mail — each line only when configured."""
    lines = [_norm(event.title), f"{_norm(event.venue)}, {_norm(event.address)}"]
    org = event.organiser
    if org.name:
        lines.append(f"Organizator: {_norm(org.name)}")
    contact = [f"tel. {_norm(org.phone)}" if org.phone else "", f"e-mail: {org.email}" if org.email else ""]
    if any(contact):
        lines.append(", ".join(c for c in contact if c))
    return "\n".join(lines)


def make_ics(
    event: EventSettings,
    *,
    tz: ZoneInfo,
    uid: str,
    sequence: int,
    stamp: dt.datetime,
    organiser_email: str,
    organiser_name: str,
    description: str = "",
    cancelled: bool = False,
    attendee_email: str | None = None,
    attendee_name: str | None = None,
    default_hours: float = DEFAULT_HOURS,
    alarm: dt.timedelta | None = None,
) -> bytes:
    """One VCALENDAR (UTF-8, CRLF, folded at 75 octets) with a VTIMEZONE for ``tz`` and
    one VEVENT for ``event``.

    ``stamp`` becomes DTSTAMP in UTC (a naive value is taken as UTC, as databases hand
    it back). DTEND is ``end_time``, else ``default_hours`` after the start. ``alarm``
    adds a display VALARM that long before the start (off by default, never on a
    cancellation).

    ``cancelled=False`` gives ``METHOD:PUBLISH`` with no ATTENDEE (RFC 5546 3.2.1
    forbids one); ``cancelled=True`` gives ``METHOD:CANCEL`` with ``STATUS:CANCELLED``
    and the recipient as ATTENDEE (``attendee_email``, required: RFC 5546 3.2.5 wants
    every attendee of a cancelled event named, and the UID is the recipient's alone).
    The caller passes a SEQUENCE higher than the last one sent to that address.
    """
    if sequence < 0:
        raise ValueError("SEQUENCE cannot be negative")
    if not uid or any(c in uid for c in "\r\n"):
        raise ValueError(f"invalid UID {uid!r}")
    tzid = tz.key
    if not tzid:
        raise ValueError("the time zone needs an IANA key such as Europe/Warsaw")
    if cancelled and not (attendee_email and attendee_email.strip()):
        raise ValueError("a CANCEL names its recipient as ATTENDEE (RFC 5546 3.2.5)")
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        stamp = stamp.replace(tzinfo=_UTC)
    start, end = event.starts_at(tz), event.calendar_end(tz, default_hours)
    summary = f"{_norm(event.title)} – {_norm(event.city)}"
    skeleton = _skeleton(
        tz, start, end, summary, _location(event), description, organiser_email, organiser_name, cancelled, alarm
    )
    own = _own_lines(uid, sequence, stamp, attendee_email if cancelled else None, attendee_name)
    return b"\r\n".join(own[line] if isinstance(line, str) else line for line in skeleton) + b"\r\n"


_OWN = frozenset({"UID", "SEQUENCE", "DTSTAMP", "ATTENDEE"})
"""The properties of a file that differ between addresses and mails; everything else
is the same for every file of an event (:func:`_skeleton`)."""
_SKELETON_STAMP = dt.datetime(2000, 1, 1, tzinfo=_UTC)


def _own_lines(
    uid: str, sequence: int, stamp: dt.datetime, attendee_email: str | None, attendee_name: str | None
) -> dict[str, bytes]:
    """The folded content lines of :data:`_OWN`, as icalendar writes them: SEQUENCE and
    DTSTAMP (an integer, a UTC time: never folded) directly, the others by icalendar."""
    from icalendar.parser import Contentline, Parameters
    from icalendar.prop import vText

    if attendee_email:
        ev = _own_properties(uid, sequence, stamp, attendee_email, attendee_name)
        return {name: ev.content_line(name, ev[name]).to_ical() for name in ev}
    return {
        "UID": Contentline.from_parts("UID", Parameters(), vText(uid)).to_ical(),
        "SEQUENCE": b"SEQUENCE:%d" % sequence,
        "DTSTAMP": stamp.astimezone(_UTC).strftime("DTSTAMP:%Y%m%dT%H%M%SZ").encode(),
    }


def _own_properties(
    uid: str, sequence: int, stamp: dt.datetime, attendee_email: str | None, attendee_name: str | None
) -> Event:
    from icalendar import Event
    from icalendar.prop import vCalAddress, vText

    ev = Event()
    ev.add("UID", uid)
    ev.add("SEQUENCE", sequence)
    ev.add("DTSTAMP", stamp.astimezone(_UTC).replace(microsecond=0))
    if attendee_email:
        attendee = vCalAddress(f"mailto:{attendee_email.strip()}")
        if attendee_name and _norm(attendee_name):
            attendee.params["CN"] = vText(_norm(attendee_name))
        attendee.params["ROLE"] = vText("REQ-PARTICIPANT")
        ev.add("ATTENDEE", attendee)
    return ev


@functools.lru_cache(maxsize=64)
def _skeleton(
    tz: ZoneInfo,
    start: dt.datetime,
    end: dt.datetime,
    summary: str,
    location: str,
    description: str,
    organiser_email: str,
    organiser_name: str,
    cancelled: bool,
    alarm: dt.timedelta | None,
) -> tuple[bytes | str, ...]:
    """The folded content lines of an event's file, built once: each line of
    :data:`_OWN` is left as its property name, for :func:`make_ics` to fill in. Building
    the VTIMEZONE and folding every line was most of a calendar file's cost."""
    cal = _calendar(
        tz, start, end, summary, location, description, organiser_email, organiser_name, cancelled, alarm,
        _own_properties("-", 0, _SKELETON_STAMP, "-" if cancelled else None, None),
    )  # fmt: skip
    out: list[bytes | str] = []
    for line in cal.content_lines():
        if not line:
            continue
        name = line.split(":", 1)[0].split(";", 1)[0]
        out.append(name if name in _OWN else line.to_ical())
    return tuple(out)


def _calendar(
    tz: ZoneInfo,
    start: dt.datetime,
    end: dt.datetime,
    summary: str,
    location: str,
    description: str,
    organiser_email: str,
    organiser_name: str,
    cancelled: bool,
    alarm: dt.timedelta | None,
    own: Event,
) -> Calendar:
    """The VCALENDAR, with the properties of ``own`` in its VEVENT."""
    from icalendar import Alarm, Calendar, Event
    from icalendar.prop import vCalAddress, vText

    tzid = tz.key
    method = CANCEL if cancelled else PUBLISH
    cal = Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    cal.add("CALSCALE", "GREGORIAN")
    cal.add("METHOD", method)
    cal.add_component(_vtimezone(tz, tzid, start.year))

    ev = Event()
    for name in own:
        ev.add(name, own[name])
    ev.add("DTSTART", start)
    ev.add("DTEND", end)
    ev.add("SUMMARY", CANCELLED_PREFIX + summary if cancelled else summary)
    ev.add("LOCATION", location)
    if description:
        ev.add("DESCRIPTION", description.replace("\r\n", "\n"))
    organizer = vCalAddress(f"mailto:{organiser_email.strip()}")
    if organiser_name:
        organizer.params["CN"] = vText(_norm(organiser_name))
    ev.add("ORGANIZER", organizer)
    ev.add("STATUS", "CANCELLED" if cancelled else "CONFIRMED")
    ev.add("TRANSP", "TRANSPARENT" if cancelled else "OPAQUE")
    if alarm is not None and not cancelled:
        valarm = Alarm()
        valarm.add("ACTION", "DISPLAY")
        valarm.add("DESCRIPTION", summary)
        valarm.add("TRIGGER", -abs(alarm))
        ev.add_component(valarm)
    cal.add_component(ev)
    return cal


@dataclass(frozen=True)
class CalendarFile:
    """An .ics ready to attach: file name, Content-Type with method and charset, bytes."""

    filename: str
    content_type: str
    data: bytes


_METHOD_LINE = re.compile(rb"\r\nMETHOD:([A-Z-]+)\r\n")


def content_type(method: str) -> str:
    """``text/calendar; method=<METHOD>; charset=UTF-8``."""
    return f"text/calendar; method={method}; charset=UTF-8"


def calendar_file(
    ics: bytes, event_key: str, *, cancelled: bool = False
) -> CalendarFile:
    """Wrap :func:`make_ics` output as an attachment: ``konferencja-<key>.ics`` (with
    ``-odwolana`` for a cancellation) and a Content-Type whose method parameter is the
    file's own METHOD (PUBLISH, or CANCEL for a cancellation). Refuses a file whose
    METHOD is not the one ``cancelled`` asks for: the mail's words and the file would
    disagree."""
    found = _METHOD_LINE.search(ics)
    expected = CANCEL if cancelled else PUBLISH
    if found is None or found.group(1).decode() != expected:
        raise ValueError(
            f"the calendar's METHOD is not {expected}; Content-Type and file would disagree"
        )
    key = _SAFE_NAME.sub("-", event_key.casefold()).strip("-") or "wydarzenie"
    suffix = "-odwolana" if cancelled else ""
    return CalendarFile(f"konferencja-{key}{suffix}.ics", content_type(expected), ics)
