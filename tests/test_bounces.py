"""What comes back from the addresses we write to (mailbot.bounces) and which
registration a message is about (mailbot.links).

A bounce stops reminders and change notices to an address, so it may only mark an
address we really wrote to or registered, and only when delivery failed for good — a
"delayed" report or a bounce naming some stranger marks nothing. Bounces without a
machine-readable report still name our Message-ID, which leads to the recipient of that
mail. Links tie a message to a registration by a quoted code (in any case) or by the
thread of one of our mails, so a colleague from another address can answer for it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from pathlib import Path

import pytest
from sqlmodel import Session, select

from mailbot.bounces import clear_bounce, record_auto_reply, record_bounce
from mailbot.links import linked_registrations
from mailbot.mime import ParsedMessage, parse_message
from mailbot.store.db import make_engine, upgrade
from mailbot.store.tables import AddressStatus, InboundMessage, OutboundMail, Participant, Registration

from tests.conversation import WARSAW, bounce, mail

NOW = dt.datetime(2016, 4, 2, 9, 0, tzinfo=WARSAW)
DOMAIN = "partnerstwa.example.pl"
_n = itertools.count(1)


@pytest.fixture
def session(tmp_path: Path) -> Session:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    return Session(engine, expire_on_commit=False)


def registration(session: Session, sender: str = "sekretariat@gmina-a.example.pl", *people: str) -> Registration:
    n = next(_n)
    inbound = InboundMessage(dedupe_key=f"k{n}", ref=f"r{n}", raw_sha256="0" * 64, size=1, source="t")
    session.add(inbound)
    session.flush()
    assert inbound.id is not None
    reg = Registration(code=f"OPO-{'ABCDEFGHJKLMNPQRSTUVWXYZ'[n % 24]}7K3F", event_key="opole-2016",
                       sender_email=sender, source_inbound_id=inbound.id)
    session.add(reg)
    session.flush()
    assert reg.id is not None
    for i, address in enumerate(people):
        session.add(Participant(registration_id=reg.id, position=i, full_name=f"Osoba {i}", email=address))
    session.flush()
    return reg


def sent_to(session: Session, address: str, *, kind: str = "ack", registration_id: int | None = None) -> OutboundMail:
    """A mail we sent, with a Message-ID shaped like outbox.compose makes them."""
    dedupe = f"{kind}:{next(_n)}:{address}"
    row = OutboundMail(
        dedupe_key=dedupe, kind=kind, to_addr=address, subject="Potwierdzenie",
        message_id=f"<{hashlib.sha256(dedupe.encode()).hexdigest()[:32]}.{kind}@{DOMAIN}>",
        registration_id=registration_id, raw=b"", envelope_to=address, status="sent",
    )
    session.add(row)
    session.flush()
    return row


def dsn(recipient: str, message_id: str, *, action: str = "failed", status: str = "5.1.1",
        diagnostic: str = "smtp; 550 5.1.1 user unknown") -> ParsedMessage:
    return parse_message(bounce(recipient, message_id, NOW, action=action, status=status, diagnostic=diagnostic))


def states(session: Session) -> dict[str, AddressStatus]:
    return {s.address: s for s in session.exec(select(AddressStatus))}


# --- record_bounce -----------------------------------------------------------------


def test_a_failed_delivery_report_marks_the_address_with_its_diagnostic(session: Session) -> None:
    ack = sent_to(session, "bartosz@gmina-a.example.pl")
    parsed = dsn("bartosz@gmina-a.example.pl", ack.message_id, status="5.1.1",
                 diagnostic="smtp; 550 5.1.1 user unknown")  # 5.2.2 is soft: tests/test_soft_bounces.py
    assert parsed.report is not None and parsed.report.action == "failed"
    assert record_bounce(session, parsed, NOW) == "marked as bouncing: bartosz@gmina-a.example.pl"
    state = states(session)["bartosz@gmina-a.example.pl"]
    assert state.bouncing and state.bounce_count == 1 and state.last_bounce_at == NOW
    assert state.last_bounce_reason == "5.1.1 smtp; 550 5.1.1 user unknown"
    # A second bounce counts again.
    record_bounce(session, dsn("bartosz@gmina-a.example.pl", ack.message_id), NOW + dt.timedelta(days=1))
    assert states(session)["bartosz@gmina-a.example.pl"].bounce_count == 2


def test_addresses_we_only_know_from_a_registration_can_bounce_too(session: Session) -> None:
    registration(session, "sekretariat@gmina-a.example.pl", "Jan.Nowak@gmina-a.example.pl")
    record_bounce(session, dsn("sekretariat@gmina-a.example.pl", "<x@y>"), NOW)
    record_bounce(session, dsn("Jan.Nowak@gmina-a.example.pl", "<x@y>"), NOW)
    assert sorted(a for a, s in states(session).items() if s.bouncing) == [
        "jan.nowak@gmina-a.example.pl",
        "sekretariat@gmina-a.example.pl",
    ]


def test_a_report_in_another_case_marks_the_same_address(session: Session) -> None:
    ack = sent_to(session, "anna@gmina-a.example.pl")
    record_bounce(session, dsn("Anna@GMINA-A.example.pl", ack.message_id), NOW)
    assert list(states(session)) == ["anna@gmina-a.example.pl"]


def test_a_bounce_for_an_address_we_never_wrote_to_marks_nothing(session: Session) -> None:
    ack = sent_to(session, "anna@gmina-a.example.pl")
    result = record_bounce(session, dsn("stranger@elsewhere.example.com", ack.message_id), NOW)
    assert result == "names no address we wrote to: stranger@elsewhere.example.com"
    assert states(session) == {}


def test_a_delayed_report_marks_nothing(session: Session) -> None:
    ack = sent_to(session, "anna@gmina-a.example.pl")
    parsed = dsn("anna@gmina-a.example.pl", ack.message_id, action="delayed", status="4.4.7",
                 diagnostic="smtp; 451 4.4.7 try again later")
    assert record_bounce(session, parsed, NOW) == "delivery report (delayed); nothing marked"
    assert states(session) == {}


def test_a_plain_text_bounce_quoting_our_message_id_marks_that_mails_recipient(session: Session) -> None:
    sent_to(session, "anna@gmina-a.example.pl")
    ack = sent_to(session, "bartosz@gmina-a.example.pl")
    raw = mail(
        "MAILER-DAEMON@mail.gmina-a.example.pl",
        "Returned mail: see transcript for details",
        "The original message was received but could not be delivered.\n\n"
        "   ----- Transcript of session follows -----\n"
        "... while talking to mx.gmina-a.example.pl: 550 mailbox unavailable\n\n"
        "   ----- Original message -----\n"
        f"Message-ID: {ack.message_id}\n"
        "Subject: Potwierdzenie\n",
        when=NOW,
    )
    parsed = parse_message(raw)
    assert parsed.report is None or not parsed.report.failed_addresses
    assert record_bounce(session, parsed, NOW) == "marked as bouncing: bartosz@gmina-a.example.pl"
    state = states(session)["bartosz@gmina-a.example.pl"]
    assert state.bouncing and state.last_bounce_reason == "Returned mail: see transcript for details"
    assert "anna@gmina-a.example.pl" not in states(session)


def test_a_bounce_naming_no_address_and_no_mail_of_ours_marks_nothing(session: Session) -> None:
    sent_to(session, "anna@gmina-a.example.pl")
    parsed = parse_message(mail("MAILER-DAEMON@mail.gmina-a.example.pl", "Undeliverable",
                                "Delivery failed.", when=NOW))
    assert record_bounce(session, parsed, NOW) == "no address of ours in it"
    assert states(session) == {}


# --- out-of-office replies and a mailbox back in use --------------------------------


def test_auto_replies_are_counted_only_for_addresses_we_know(session: Session) -> None:
    sent_to(session, "anna@gmina-a.example.pl")
    record_auto_reply(session, "anna@gmina-a.example.pl", NOW)
    record_auto_reply(session, "Anna@gmina-a.example.pl", NOW + dt.timedelta(hours=1))
    record_auto_reply(session, "stranger@elsewhere.example.com", NOW)
    record_auto_reply(session, None, NOW)
    (state,) = states(session).values()
    assert state.address == "anna@gmina-a.example.pl"
    assert state.auto_reply_count == 2 and state.last_auto_reply_at == NOW + dt.timedelta(hours=1)
    assert not state.bouncing and state.bounce_count == 0


def test_writing_to_us_again_clears_the_bounce_but_keeps_its_history(session: Session) -> None:
    ack = sent_to(session, "anna@gmina-a.example.pl")
    record_bounce(session, dsn("anna@gmina-a.example.pl", ack.message_id), NOW)
    clear_bounce(session, " Anna@gmina-a.example.pl ")
    state = states(session)["anna@gmina-a.example.pl"]
    assert not state.bouncing and state.bounce_count == 1 and state.last_bounce_reason
    clear_bounce(session, "stranger@elsewhere.example.com")
    clear_bounce(session, None)
    assert list(states(session)) == ["anna@gmina-a.example.pl"]


# --- links.linked_registrations -------------------------------------------------------


def test_a_code_in_the_subject_links_the_registration_in_any_case(session: Session) -> None:
    reg = registration(session)
    other = registration(session)
    for subject in (f"Rezygnacja [{reg.code}]", f"rezygnacja {reg.code.lower()}"):
        parsed = parse_message(mail("ktos@inna.example.pl", subject, "Treść.", when=NOW))
        assert linked_registrations(session, parsed) == [reg]
    both = parse_message(mail("ktos@inna.example.pl", f"{other.code} i {reg.code}", f"Też {reg.code}.", when=NOW))
    assert linked_registrations(session, both) == [other, reg]


def test_a_code_in_the_body_links_the_registration(session: Session) -> None:
    reg = registration(session)
    parsed = parse_message(mail("ktos@inna.example.pl", "Pytanie", f"Dotyczy zgłoszenia {reg.code}.", when=NOW))
    assert linked_registrations(session, parsed) == [reg]


def test_an_unknown_code_is_ignored(session: Session) -> None:
    registration(session)
    parsed = parse_message(mail("ktos@inna.example.pl", "Rezygnacja OPO-ZZZZZ", "Treść.", when=NOW))
    assert linked_registrations(session, parsed) == []


def test_a_reply_to_our_mail_links_the_registration_it_was_about(session: Session) -> None:
    reg = registration(session)
    assert reg.id is not None
    ack = sent_to(session, "anna@gmina-a.example.pl", registration_id=reg.id)
    unrelated = sent_to(session, "anna@gmina-a.example.pl", kind="no_form")  # no registration
    parsed = parse_message(mail("kolega@gmina-a.example.pl", "Re: Potwierdzenie", "Rezygnuję.",
                                when=NOW, in_reply_to=ack.message_id))
    assert linked_registrations(session, parsed) == [reg]
    # The same registration by code and by thread is listed once.
    both = parse_message(mail("kolega@gmina-a.example.pl", f"Re: [{reg.code}]", "Rezygnuję.",
                              when=NOW, in_reply_to=ack.message_id))
    assert linked_registrations(session, both) == [reg]
    nothing = parse_message(mail("kolega@gmina-a.example.pl", "Re: Formularz", "Pytanie.",
                                 when=NOW, in_reply_to=unrelated.message_id))
    assert linked_registrations(session, nothing) == []
