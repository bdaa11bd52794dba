"""The calendar entry over a person's whole conversation (issue 12, items 3 and 5), end
to end on the embedded default, checked on the produced files with ``icalendar``.

- Every file sent to an address for an event has a higher SEQUENCE than the one before
  it, whatever other addresses got (``calendar_sequence``, migration 0007).
- A withdrawal carries ``METHOD:CANCEL`` for the UID the person holds (RFC 5546 3.2.5:
  ORGANIZER, ATTENDEE, UID, SEQUENCE, DTSTAMP, STATUS:CANCELLED), and only to an address
  that holds an entry and no longer has a seat; a re-registration publishes the same
  UID again with a higher SEQUENCE.
- The Content-Type's method parameter is the file's METHOD.
- Only attendees get calendar entries: a registrant who does not attend gets no .ics and
  no "Potwierdzamy udział".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import icalendar
from sqlmodel import Session, select

from mailbot.reminders import announce
from mailbot.replies import holds_calendar_entry, next_calendar_sequence
from mailbot.store.db import make_engine, upgrade
from mailbot.store.tables import CalendarSequence, EventState

from tests import pg
from tests.conversation import WARSAW, Conversation, calendar_of, form_docx, kinds, mail, settings_for, text_of

postgres_server = pg.postgres_server
postgres_url = pg.postgres_url

APR1 = dt.datetime(2016, 4, 1, 9, 0, tzinfo=WARSAW)
ANNA = "anna@gmina-a.example.pl"
BARTOSZ = "bartosz@gmina-a.example.pl"
SECRETARY = "sekretariat@gmina-s.example.pl"


def at(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2016, 4, day, hour, 0, tzinfo=WARSAW)


def register(conv: Conversation, sender: str, people: Sequence[tuple[str, str | None]], when: dt.datetime) -> None:
    event = conv.settings.event("opole-2016")
    conv.receive(mail(sender, "Zgłoszenie na konferencję", "W załączeniu zgłoszenie.", when=when,
                      form=form_docx(event, people)))


def to(mails: list[EmailMessage], address: str) -> EmailMessage:
    (found,) = [m for m in mails if str(m["To"].addresses[0].addr_spec) == address]
    return found


def entry(message: EmailMessage) -> tuple[icalendar.Calendar, Any]:
    """The calendar of a mail and its one VEVENT; checks that the attachment's
    Content-Type names the file's own METHOD."""
    cal = calendar_of(message)
    assert cal is not None, f"no calendar in {message['X-Mailbot-Kind']} to {message['To']}"
    (part,) = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    method = part.get_param("method")
    assert isinstance(method, str) and method.upper() == str(cal["METHOD"]), part["Content-Type"]
    (vevent,) = cal.walk("VEVENT")
    return cal, vevent


def test_ack_cancel_and_re_registration_share_the_uid_with_a_rising_sequence(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    people = [("Anna Kowalska", ANNA), ("Bartosz Wiśniewski", BARTOSZ)]
    register(conv, ANNA, people, APR1)
    conv.run(APR1)
    cal, ack = entry(to(conv.sent(), BARTOSZ))
    assert cal["METHOD"] == "PUBLISH" and "ATTENDEE" not in ack  # RFC 5546 3.2.1: no ATTENDEE
    uid, first = str(ack["UID"]), int(ack["SEQUENCE"])

    # What was sent is recorded: the address's last SEQUENCE and METHOD.
    with conv.app(at(2)).session() as s:
        ack_row = s.exec(select(CalendarSequence).where(CalendarSequence.address == BARTOSZ)).one()
        assert (ack_row.event_key, ack_row.sequence, ack_row.method) == ("opole-2016", first, "PUBLISH")
    # Bartosz withdraws.
    conv.receive(mail(BARTOSZ, "Re: Potwierdzenie zgłoszenia", "Rezygnuję z udziału.", when=at(2)))
    conv.run(at(2))
    withdrawal = conv.sent()
    assert kinds(withdrawal) == [("cancelled", ANNA), ("cancelled", BARTOSZ)]
    cal, cancel = entry(to(withdrawal, BARTOSZ))
    assert cal["METHOD"] == "CANCEL"
    assert str(cancel["UID"]) == uid
    assert int(cancel["SEQUENCE"]) > first
    assert cancel["STATUS"] == "CANCELLED"
    assert str(cancel["ATTENDEE"]) == f"mailto:{BARTOSZ}"
    assert str(cancel["ORGANIZER"]).startswith("mailto:")
    assert "DTSTAMP" in cancel
    # Addressed to him by name (mailbot.salutation): "Pana", not "Państwa".
    assert "usunięty z Pana kalendarza" in text_of(to(withdrawal, BARTOSZ))
    # Anna registered him but still attends: her own entry stays, nothing to cancel.
    assert calendar_of(to(withdrawal, ANNA)) is None

    # He changes his mind; Anna sends the form again: the same UID, published again, higher.
    register(conv, ANNA, people, at(3))
    conv.run(at(3))
    again = conv.sent()
    assert kinds(again) == [("ack", BARTOSZ), ("updated", ANNA)]
    cal, republished = entry(to(again, BARTOSZ))
    assert cal["METHOD"] == "PUBLISH"
    assert str(republished["UID"]) == uid
    assert int(republished["SEQUENCE"]) > int(cancel["SEQUENCE"])
    assert republished["STATUS"] == "CONFIRMED"

    # The organisers move the start: a "changed" file, higher again, for each address.
    conv.settings = settings_for(tmp_path, start_time=dt.time(10, 0))
    conv.run(at(5))
    assert conv.sent() == []  # an edit alone mails nobody (issue 12, item 10)
    app = conv.app(at(5))
    with app.session() as s:  # `mailbot announce opole-2016`
        assert announce(s, app.mailer, conv.settings.event("opole-2016"), at(5)) is not None
        s.commit()
    conv.run(at(5))
    changed = conv.sent()
    _, moved = entry(to(changed, BARTOSZ))
    assert str(moved["UID"]) == uid and int(moved["SEQUENCE"]) > int(republished["SEQUENCE"])
    _, anna_moved = entry(to(changed, ANNA))
    assert int(anna_moved["SEQUENCE"]) > first  # Anna's own count, independent of Bartosz's


def test_sequences_only_grow_per_address_over_every_mail(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    register(conv, ANNA, [("Anna Kowalska", ANNA)], APR1)
    conv.run(APR1)
    seen: list[int] = [int(entry(m)[1]["SEQUENCE"]) for m in conv.sent()]
    conv.settings = settings_for(tmp_path, venue="Sala Marmurowa")
    conv.run(at(5))
    app = conv.app(at(5))
    with app.session() as s:  # `mailbot announce opole-2016`
        assert announce(s, app.mailer, conv.settings.event("opole-2016"), at(5)) is not None
        s.commit()
    conv.run(at(5))
    seen += [int(entry(m)[1]["SEQUENCE"]) for m in conv.sent()]
    conv.run(dt.datetime(2016, 4, 11, 11, 0, tzinfo=WARSAW))  # the 7-day reminder
    seen += [int(entry(m)[1]["SEQUENCE"]) for m in conv.sent()]
    conv.run(dt.datetime(2016, 4, 17, 11, 0, tzinfo=WARSAW))  # the 1-day reminder
    seen += [int(entry(m)[1]["SEQUENCE"]) for m in conv.sent()]
    assert len(seen) == 4 and seen == sorted(set(seen)), seen


def test_a_waitlisted_person_who_withdraws_gets_no_cancellation(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path, capacity=1))
    register(conv, ANNA, [("Anna Kowalska", ANNA)], APR1)
    register(conv, BARTOSZ, [("Bartosz Wiśniewski", BARTOSZ)], APR1 + dt.timedelta(minutes=1))
    conv.run(APR1 + dt.timedelta(minutes=2))
    first = conv.sent()
    assert calendar_of(to(first, BARTOSZ)) is None  # waiting list: no entry
    conv.receive(mail(BARTOSZ, "Re: Lista rezerwowa", "Rezygnuję.", when=at(2)))
    conv.run(at(2))
    (cancelled,) = conv.sent()
    assert cancelled["X-Mailbot-Kind"] == "cancelled"
    assert calendar_of(cancelled) is None  # he never held an entry


def test_a_registrant_who_does_not_attend_gets_no_calendar_entry(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    register(conv, SECRETARY, [("Anna Kowalska", ANNA), ("Ewa Lis", "ewa@gmina-a.example.pl")], APR1)
    conv.run(APR1)
    sent = conv.sent()
    assert kinds(sent) == [("ack", ANNA), ("ack", "ewa@gmina-a.example.pl"), ("ack", SECRETARY)]
    secretary = to(sent, SECRETARY)
    assert calendar_of(secretary) is None
    assert "Potwierdzamy udział" not in text_of(secretary)
    assert "Zgłoszone osoby wpisaliśmy na listę uczestników konferencji" in text_of(secretary)
    assert "plik kalendarza" not in text_of(secretary)
    anna = to(sent, ANNA)
    assert entry(anna)[0]["METHOD"] == "PUBLISH"
    assert "Potwierdzamy udział w konferencji" in text_of(anna)


def test_a_registrant_reached_for_a_colleague_without_an_address_gets_no_entry(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    register(conv, SECRETARY, [("Jan Nowak", None)], APR1)  # no e-mail: the secretary is asked
    conv.run(APR1)
    assert kinds(conv.sent()) == [("incomplete", SECRETARY)]
    conv.run(dt.datetime(2016, 4, 11, 11, 0, tzinfo=WARSAW))
    (reminder,) = conv.sent()
    assert reminder["X-Mailbot-Kind"] == "reminder" and "Jan Nowak" in text_of(reminder)
    assert calendar_of(reminder) is None  # Jan's entry would sit in the secretary's calendar


def test_a_registrant_hears_of_a_promotion_without_an_entry_or_a_confirmation(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path, capacity=1))
    register(conv, ANNA, [("Anna Kowalska", ANNA)], APR1)
    register(conv, SECRETARY, [("Ewa Lis", "ewa@gmina-a.example.pl")], APR1 + dt.timedelta(minutes=1))
    conv.run(APR1 + dt.timedelta(minutes=2))
    conv.sent()
    conv.receive(mail(ANNA, "Re: Potwierdzenie zgłoszenia", "Rezygnuję.", when=at(2)))
    conv.run(at(2))
    after = conv.sent()
    assert ("promoted", "ewa@gmina-a.example.pl") in kinds(after) and ("promoted", SECRETARY) in kinds(after)
    ewa = to(after, "ewa@gmina-a.example.pl")
    assert entry(ewa)[0]["METHOD"] == "PUBLISH" and "Potwierdzamy udział" in text_of(ewa)
    secretary = to(after, SECRETARY)
    assert calendar_of(secretary) is None and "Potwierdzamy udział" not in text_of(secretary)
    # "miejsce na konferencję": a seat for the conference, not a place at it.
    assert "zwolniło się miejsce na konferencję" in text_of(secretary)
    # Anna withdrew her own seat: her entry is cancelled.
    cal, cancel = entry(to(after, ANNA))
    assert cal["METHOD"] == "CANCEL" and str(cancel["ATTENDEE"]) == f"mailto:{ANNA}"


# --- the sequence, taken in one statement (issue 13) -----------------------------------

def test_a_sequence_starts_above_the_announced_one_and_climbs_per_address(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    now = at(1)
    with Session(engine, expire_on_commit=False) as s:
        s.add(EventState(event_key="opole-2016", fingerprint="v1:x", sequence=4))
        s.commit()
        assert next_calendar_sequence(s, "opole-2016", " Jan@Example.pl ", "PUBLISH", now) == 5
        assert next_calendar_sequence(s, "opole-2016", "jan@example.pl", "PUBLISH", now) == 6
        assert next_calendar_sequence(s, "lublin-2016", "jan@example.pl", "PUBLISH", now) == 1  # no state: from 0
        assert next_calendar_sequence(s, "opole-2016", "anna@example.pl", "PUBLISH", now) == 5
        s.rollback()  # kept only with the mail: nothing was queued
        assert s.exec(select(CalendarSequence)).all() == []
    engine.dispose()


def test_a_sequence_row_read_earlier_in_the_session_does_not_go_stale(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    now = at(1)
    with Session(engine, expire_on_commit=False) as s:
        next_calendar_sequence(s, "opole-2016", "jan@example.pl", "PUBLISH", now)
        s.commit()
        assert holds_calendar_entry(s, "opole-2016", "jan@example.pl")  # loads the row
        assert next_calendar_sequence(s, "opole-2016", "jan@example.pl", "CANCEL", now) == 2
        assert not holds_calendar_entry(s, "opole-2016", "jan@example.pl")
        row = s.get(CalendarSequence, ("opole-2016", "jan@example.pl"))
        assert row is not None and (row.sequence, row.method) == (2, "CANCEL")
    engine.dispose()


def test_the_sequence_is_taken_in_one_statement_on_postgresql_too(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    upgrade(engine)
    now = at(1)
    with Session(engine) as first, Session(engine) as second:
        assert next_calendar_sequence(first, "opole-2016", "jan@example.pl", "PUBLISH", now) == 1
        first.commit()
        assert next_calendar_sequence(first, "opole-2016", "jan@example.pl", "PUBLISH", now) == 2
        first.commit()
        assert next_calendar_sequence(second, "opole-2016", "jan@example.pl", "PUBLISH", now) == 3
        second.commit()
    engine.dispose()
