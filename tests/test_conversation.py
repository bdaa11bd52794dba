"""The conversation with participants, end to end on the embedded default (Maildir in,
Maildir out, SQLite): acknowledgements to everyone on a form, corrections, the waiting
list, withdrawals, the deadline, reminders, changed events, bounces and rate limits."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlmodel import select

from mailbot.reminders import announce
from mailbot.store.tables import AddressStatus, InboundMessage, OutboundMail, Participant, Registration

from tests.conversation import (
    WARSAW,
    bounce,
    Conversation,
    calendar_of,
    form_docx,
    kinds,
    mail,
    settings_for,
    text_of,
)

APR1 = dt.datetime(2016, 4, 1, 9, 0, tzinfo=WARSAW)


def at(day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(2016, 4, day, hour, minute, tzinfo=WARSAW)


def register(conv: Conversation, sender: str, people: list[tuple[str, str | None]], when: dt.datetime, **kw: str) -> None:
    event = conv.settings.event("opole-2016")
    conv.receive(mail(sender, "Zgłoszenie na konferencję", "W załączeniu zgłoszenie.", when=when,
                      form=form_docx(event, people, **kw)))


def codes(conv: Conversation) -> list[str]:
    with conv.app(APR1).session() as s:
        return [r.code for r in s.exec(select(Registration).order_by(Registration.id))]  # type: ignore[arg-type]


def test_everyone_on_the_form_and_the_sender_get_one_mail_each(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    register(conv, "sekretariat@testowo.example.pl",
             [("Anna Kowalska", "anna@testowo.example.pl"), ("Jan Nowak", None), ("Ewa Lis", "ewa@testowo.example.pl")],
             APR1 - dt.timedelta(hours=1))
    conv.run(APR1)
    sent = {str(m["To"].addresses[0].addr_spec): m for m in conv.sent()}
    assert kinds(list(sent.values())) == [
        ("ack", "anna@testowo.example.pl"),
        ("ack", "ewa@testowo.example.pl"),
        # Jan has no e-mail, which the form requires: the sender is asked for it, while
        # the others already know their seat is held.
        ("incomplete", "sekretariat@testowo.example.pl"),
    ]
    (code,) = codes(conv)
    assert all(f"[{code}]" in str(m["Subject"]) for m in sent.values())
    secretary = text_of(sent["sekretariat@testowo.example.pl"])
    assert "Anna Kowalska" in secretary and "Jan Nowak" in secretary and "Ewa Lis" in secretary
    anna = text_of(sent["anna@testowo.example.pl"])
    assert "Anna Kowalska" in anna and "Jan Nowak" not in anna and "Ewa Lis" not in anna
    # Only the sender's mail answers their message (threading); acks carry a calendar entry.
    assert sent["sekretariat@testowo.example.pl"]["In-Reply-To"] is not None
    assert sent["anna@testowo.example.pl"]["In-Reply-To"] is None
    assert calendar_of(sent["sekretariat@testowo.example.pl"]) is None
    uids = set()
    for m in (sent["anna@testowo.example.pl"], sent["ewa@testowo.example.pl"]):
        cal = calendar_of(m)
        assert cal is not None and cal["METHOD"] == "PUBLISH"
        (vevent,) = cal.walk("VEVENT")
        uids.add(str(vevent["UID"]))
    assert len(uids) == 2  # one per address
    # A second pass, and the very same message delivered again, send nothing more.
    conv.run(APR1 + dt.timedelta(minutes=5))
    conv.receive(conv.received[0])
    report = conv.run(APR1 + dt.timedelta(minutes=10))
    assert conv.sent() == [] and report.results[0].already_seen


def test_a_corrected_form_is_acknowledged_with_what_changed(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    register(conv, "anna@testowo.example.pl",
             [("Anna Kowalska", "anna@testowo.example.pl"), ("Jan Nowak", "jan@testowo.example.pl")], APR1)
    conv.run(APR1)
    assert kinds(conv.sent()) == [("ack", "anna@testowo.example.pl"), ("ack", "jan@testowo.example.pl")]
    register(conv, "anna@testowo.example.pl",
             [("Anna Kowalska", "anna@testowo.example.pl"), ("Piotr Zając", "piotr@testowo.example.pl")],
             at(2), institution="Urząd Gminy Testowo Wielkie")
    conv.run(at(2))
    sent = conv.sent()
    assert kinds(sent) == [
        ("ack", "piotr@testowo.example.pl"),
        ("cancelled", "jan@testowo.example.pl"),
        ("updated", "anna@testowo.example.pl"),
    ]
    updated = next(m for m in sent if m["X-Mailbot-Kind"] == "updated")
    body = text_of(updated)
    assert "Urząd Gminy Testowo Wielkie" in body and "Piotr Zając" in body and "Jan Nowak" in body
    assert len(codes(conv)) == 1  # still one registration, now version 2
    with conv.app(at(2)).session() as s:
        reg = s.exec(select(Registration)).one()
        assert reg.version == 2 and reg.institution_name == "Urząd Gminy Testowo Wielkie"


def test_capacity_waiting_list_withdrawal_and_promotion(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path, capacity=2))
    register(conv, "anna@gmina-a.example.pl",
             [("Anna Kowalska", "anna@gmina-a.example.pl"), ("Bartosz Wiśniewski", "bartosz@gmina-a.example.pl")], APR1)
    register(conv, "celina@gmina-c.example.pl", [("Celina Dąbrowska", "celina@gmina-c.example.pl")],
             APR1 + dt.timedelta(minutes=1))
    conv.run(APR1 + dt.timedelta(minutes=2))
    first = conv.sent()
    assert kinds(first) == [
        ("ack", "anna@gmina-a.example.pl"),
        ("ack", "bartosz@gmina-a.example.pl"),
        ("waitlist", "celina@gmina-c.example.pl"),
    ]
    waitlist = next(m for m in first if m["X-Mailbot-Kind"] == "waitlist")
    assert calendar_of(waitlist) is None  # no seat, no calendar entry
    bartosz_ack = next(m for m in first if str(m["To"].addresses[0].addr_spec) == "bartosz@gmina-a.example.pl")

    conv.receive(mail("bartosz@gmina-a.example.pl", f"Re: {bartosz_ack['Subject']}",
                      "Dzień dobry,\nniestety rezygnuję z udziału w konferencji.\nBartosz",
                      when=at(3), in_reply_to=str(bartosz_ack["Message-ID"])))
    conv.run(at(3))
    after = conv.sent()
    assert kinds(after) == [
        ("cancelled", "anna@gmina-a.example.pl"),  # she registered him
        ("cancelled", "bartosz@gmina-a.example.pl"),
        ("promoted", "celina@gmina-c.example.pl"),
    ]
    promoted = next(m for m in after if m["X-Mailbot-Kind"] == "promoted")
    assert calendar_of(promoted) is not None
    with conv.app(at(3)).session() as s:
        status = {p.full_name: p.status for p in s.exec(select(Participant))}
    assert status == {"Anna Kowalska": "confirmed", "Bartosz Wiśniewski": "cancelled", "Celina Dąbrowska": "confirmed"}


def test_a_quoted_code_ties_a_withdrawal_from_another_address(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    register(conv, "anna@gmina-a.example.pl", [("Anna Kowalska", "anna@gmina-a.example.pl")], APR1)
    conv.run(APR1)
    conv.sent()
    (code,) = codes(conv)
    conv.receive(mail("sekretariat@gmina-a.example.pl", f"Rezygnacja – zgłoszenie {code.lower()}",
                      "Pani Anna jest na zwolnieniu lekarskim, odwołujemy jej udział.", when=at(4)))
    conv.run(at(4))
    assert kinds(conv.sent()) == [
        ("cancelled", "anna@gmina-a.example.pl"),
        ("cancelled", "sekretariat@gmina-a.example.pl"),
    ]
    with conv.app(at(4)).session() as s:
        reg = s.exec(select(Registration)).one()
        assert reg.status == "cancelled" and reg.cancelled_at is not None


def test_an_unclear_withdrawal_goes_to_review_and_changes_nothing(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    register(conv, "anna@gmina-a.example.pl", [("Anna Kowalska", "anna@gmina-a.example.pl")], APR1)
    conv.run(APR1)
    (ack,) = conv.sent()
    conv.receive(mail("anna@gmina-a.example.pl", f"Re: {ack['Subject']}",
                      "Czy mogę zrezygnować tylko z warsztatów popołudniowych?",
                      when=at(4), in_reply_to=str(ack["Message-ID"])))
    report = conv.run(at(4))
    # A question (issue 12): acknowledged at once and forwarded to Opole's organisers.
    assert kinds(conv.sent()) == [
        ("forwarded_question", "opole@partnerstwa.example.pl"),
        ("question_received", "anna@gmina-a.example.pl"),
    ]
    (result,) = report.results
    assert result.outcome == "needs_review" and "unclear" in result.reason
    with conv.app(at(4)).session() as s:
        assert s.exec(select(Participant)).one().status == "confirmed"


def test_a_form_after_the_deadline_is_stored_and_answered_closed(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    register(conv, "anna@gmina-a.example.pl", [("Anna Kowalska", "anna@gmina-a.example.pl")], at(15))
    report = conv.run(at(15))
    assert kinds(conv.sent()) == [("closed", "anna@gmina-a.example.pl")]
    (result,) = report.results
    assert result.outcome == "needs_review" and "late registration" in result.reason
    with conv.app(at(15)).session() as s:
        reg = s.exec(select(Registration)).one()
        assert reg.status == "late" and s.exec(select(Participant)).one().status == "late"


def test_reminders_go_once_to_seated_people_registered_before_their_moment(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path, capacity=4))
    register(conv, "anna@gmina-a.example.pl",
             [("Anna Kowalska", "anna@gmina-a.example.pl"), ("Bartosz Wiśniewski", "bartosz@gmina-a.example.pl"),
              ("Jan Nowak", None)], APR1)
    register(conv, "celina@gmina-c.example.pl", [("Celina Dąbrowska", "celina@gmina-c.example.pl")],
             APR1 + dt.timedelta(minutes=1))
    register(conv, "eryk@gmina-e.example.pl", [("Eryk Pawlak", "eryk@gmina-e.example.pl")],
             APR1 + dt.timedelta(minutes=2))  # capacity 4: the waiting list
    conv.run(APR1 + dt.timedelta(minutes=3))
    assert ("waitlist", "eryk@gmina-e.example.pl") in kinds(conv.sent())
    # Bartosz's mailbox bounces the acknowledgement: marked, never answered.
    ack = next(r for r in _outbound(conv) if r.to_addr == "bartosz@gmina-a.example.pl")
    conv.receive(bounce("bartosz@gmina-a.example.pl", ack.message_id, at(2),
                        status="5.1.1", diagnostic="smtp; 550 5.1.1 user unknown"))  # a full mailbox is soft
    report = conv.run(at(2))
    assert conv.sent() == [] and report.results[0].outcome == "ignored"
    with conv.app(at(2)).session() as s:
        state = s.get(AddressStatus, "bartosz@gmina-a.example.pl")
        assert state is not None and state.bouncing and "user unknown" in (state.last_bounce_reason or "")

    seven_days = dt.datetime(2016, 4, 11, 11, 0, tzinfo=WARSAW)
    conv.run(seven_days - dt.timedelta(minutes=1))
    assert conv.sent() == []  # not due yet
    conv.run(seven_days)
    week = conv.sent()
    # Jan has no e-mail: his reminder goes to Anna, who registered him (one mail for both).
    assert kinds(week) == [("reminder", "anna@gmina-a.example.pl"), ("reminder", "celina@gmina-c.example.pl")]
    anna = next(m for m in week if "anna@" in str(m["To"]))
    assert "Jan Nowak" in text_of(anna) and "Anna Kowalska" in text_of(anna)
    assert calendar_of(anna) is not None
    conv.run(seven_days + dt.timedelta(hours=3))
    assert conv.sent() == []  # once

    # Celina withdraws by answering her reminder; Eryk moves up from the waiting list.
    celina = next(m for m in week if "celina@" in str(m["To"]))
    conv.receive(mail("celina@gmina-c.example.pl", f"RE: {celina['Subject']}", "Rezygnuję, przepraszam.",
                      when=at(12), in_reply_to=str(celina["Message-ID"])))
    conv.run(at(12))
    assert kinds(conv.sent()) == [("cancelled", "celina@gmina-c.example.pl"), ("promoted", "eryk@gmina-e.example.pl")]

    # The organisers add a seat and take forms until the day before; Dorota registers
    # two days before the event and gets a seat.
    conv.settings = settings_for(tmp_path, capacity=5, registration_deadline=dt.date(2016, 4, 17))
    register(conv, "dorota@gmina-d.example.pl", [("Dorota Zawadzka", "dorota@gmina-d.example.pl")], at(16))
    conv.run(at(16))
    assert kinds(conv.sent()) == [("ack", "dorota@gmina-d.example.pl")]
    one_day = dt.datetime(2016, 4, 17, 11, 0, tzinfo=WARSAW)
    conv.run(one_day)
    day_before = conv.sent()
    assert kinds(day_before) == [
        ("reminder", "anna@gmina-a.example.pl"),
        ("reminder", "dorota@gmina-d.example.pl"),
        ("reminder", "eryk@gmina-e.example.pl"),
    ]
    assert all("jutro" in text_of(m) for m in day_before)
    conv.run(one_day + dt.timedelta(hours=1))
    assert conv.sent() == []


def test_a_changed_event_is_announced_once_with_the_same_calendar_uid(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path, capacity=1))
    register(conv, "anna@gmina-a.example.pl", [("Anna Kowalska", "anna@gmina-a.example.pl")], APR1)
    register(conv, "celina@gmina-c.example.pl", [("Celina Dąbrowska", "celina@gmina-c.example.pl")], APR1)
    conv.run(APR1)
    ack = next(m for m in conv.sent() if m["X-Mailbot-Kind"] == "ack")
    ack_event = calendar_of(ack).walk("VEVENT")[0]  # type: ignore[union-attr]

    conv.settings = settings_for(tmp_path, capacity=1, start_time=dt.time(10, 0), venue="Sala Marmurowa")
    conv.run(at(5))
    assert conv.sent() == []  # an edit alone mails nobody (issue 12, item 10)
    app = conv.app(at(5))
    with app.session() as s:  # `mailbot announce opole-2016`
        assert announce(s, app.mailer, conv.settings.event("opole-2016"), at(5)) is not None
        s.commit()
    conv.run(at(5))
    (changed,) = conv.sent()  # Celina is on the waiting list: nothing to change for her
    assert changed["X-Mailbot-Kind"] == "changed" and "anna@" in str(changed["To"])
    body = text_of(changed)
    assert "Sala Marmurowa" in body and "10:00" in body and "11:00" in body
    new_event = calendar_of(changed).walk("VEVENT")[0]  # type: ignore[union-attr]
    assert str(new_event["UID"]) == str(ack_event["UID"])
    assert int(new_event["SEQUENCE"]) == int(ack_event["SEQUENCE"]) + 1
    assert new_event.decoded("DTSTART") == dt.datetime(2016, 4, 18, 10, 0, tzinfo=WARSAW)
    conv.run(at(6))
    assert conv.sent() == []


def test_out_of_office_replies_are_recorded_and_never_answered(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    register(conv, "anna@gmina-a.example.pl", [("Anna Kowalska", "anna@gmina-a.example.pl")], APR1)
    conv.run(APR1)
    (ack,) = conv.sent()
    conv.receive(mail("anna@gmina-a.example.pl", f"Automatyczna odpowiedź: {ack['Subject']}",
                      "Jestem na urlopie do 10 kwietnia.", when=at(2), in_reply_to=str(ack["Message-ID"]),
                      extra=[("Auto-Submitted", "auto-replied")]))
    report = conv.run(at(2))
    assert conv.sent() == [] and report.results[0].outcome == "ignored"
    with conv.app(at(2)).session() as s:
        state = s.get(AddressStatus, "anna@gmina-a.example.pl")
        assert state is not None and state.auto_reply_count == 1 and not state.bouncing


def test_delivery_keeps_to_the_rate_limit_and_bcc_reaches_the_organisers(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    settings = settings.model_copy(
        update={"outbox": settings.outbox.model_copy(update={"max_per_minute": 2, "bcc": ("archiwum@partnerstwa.example.pl",)})}
    )
    conv = Conversation(settings)
    register(conv, "anna@gmina-a.example.pl",
             [("Anna Kowalska", "anna@gmina-a.example.pl"), ("Bartosz Wiśniewski", "bartosz@gmina-a.example.pl"),
              ("Celina Dąbrowska", "celina@gmina-a.example.pl")], APR1)
    report = conv.run(APR1)
    assert report.delivery.sent == 2 and report.delivery.deferred == 1
    assert len(conv.sent()) == 2
    conv.run(APR1 + dt.timedelta(seconds=30))
    assert conv.sent() == []  # still the same minute
    conv.run(APR1 + dt.timedelta(minutes=1, seconds=1))
    assert len(conv.sent()) == 1
    with conv.app(APR1).session() as s:
        rows = s.exec(select(OutboundMail)).all()
        assert all(r.envelope_to.split("\n")[1:] == ["archiwum@partnerstwa.example.pl"] for r in rows)
        assert s.exec(select(InboundMessage)).one().outcome == "registered"


def _outbound(conv: Conversation) -> list[OutboundMail]:
    with conv.app(APR1).session() as s:
        return list(s.exec(select(OutboundMail)))


def test_someone_who_withdrew_and_is_listed_again_gets_a_place_again(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    people = [("Anna Kowalska", "anna@gmina-a.example.pl"), ("Bartosz Wiśniewski", "bartosz@gmina-a.example.pl")]
    register(conv, "anna@gmina-a.example.pl", people, APR1)
    conv.run(APR1)
    bartosz_ack = next(m for m in conv.sent() if "bartosz@" in str(m["To"]))
    conv.receive(mail("bartosz@gmina-a.example.pl", f"Re: {bartosz_ack['Subject']}", "Rezygnuję.",
                      when=at(2), in_reply_to=str(bartosz_ack["Message-ID"])))
    conv.run(at(2))
    conv.sent()
    # He changes his mind; Anna sends the form again with both of them.
    register(conv, "anna@gmina-a.example.pl", people, at(3))
    conv.run(at(3))
    assert kinds(conv.sent()) == [("ack", "bartosz@gmina-a.example.pl"), ("updated", "anna@gmina-a.example.pl")]
    with conv.app(at(3)).session() as s:
        assert {p.full_name: p.status for p in s.exec(select(Participant))} == {
            "Anna Kowalska": "confirmed", "Bartosz Wiśniewski": "confirmed",
        }


def test_an_organisers_reply_to_the_digest_is_for_a_person_and_never_answered(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    conv.receive(mail("opole@partnerstwa.example.pl", "Re: Podsumowanie dnia", "Proszę dopisać p. Nowaka ręcznie.",
                      when=APR1, in_reply_to="<0123456789abcdef0123456789abcdef.digest@partnerstwa.example.pl>"))
    (result,) = conv.run(APR1).results
    assert conv.sent() == []
    assert result.outcome == "needs_review" and "daily digest" in result.reason
