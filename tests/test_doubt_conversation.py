"""An e-mail address the form reader doubts, end to end on the embedded default (Maildir
in, Maildir out, SQLite), with real forms read by the real reader: "Jan Kowalski" with
``jan.kowalskl@nysa.pl`` is flagged low_confidence with the suggestion
``jan.kowalski@nysa.pl`` (the address does not match the name).

The doubtful address gets no mail of its own until it is settled; the sender is asked to
confirm or correct it; a reply settles it (or goes to review when unclear); the
participant then gets their ack at the settled address, once."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from mailbot import ingest
from mailbot.forms.model import FormData
from mailbot.reminders import announce
from mailbot.store.tables import InboundMessage, Participant, Registration

from tests import conversation, pg
from tests.conversation import WARSAW, Conversation, bounce, form_docx, kinds, mail, settings_for, text_of

APR1 = dt.datetime(2016, 4, 1, 9, 0, tzinfo=WARSAW)
SENDER = "sekretariat@nysa.example.pl"
READ = "jan.kowalskl@nysa.pl"
MEANT = "jan.kowalski@nysa.pl"
ANNA = "anna.nowak@nysa.example.pl"


def at(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2016, 4, day, hour, 0, tzinfo=WARSAW)


def register(conv: Conversation, sender: str = SENDER, when: dt.datetime = APR1,
             people: list[tuple[str, str | None]] | None = None) -> None:
    event = conv.settings.event("opole-2016")
    people = people if people is not None else [("Jan Kowalski", READ), ("Anna Nowak", ANNA)]
    conv.receive(mail(sender, "Zgłoszenie na konferencję", "W załączeniu zgłoszenie.", when=when,
                      form=form_docx(event, people, institution="Urząd Miejski w Nysie")))


def reply(conv: Conversation, to: Any, body: str, when: dt.datetime, sender: str = SENDER,
          extra: tuple[tuple[str, str], ...] = ()) -> None:
    conv.receive(mail(sender, f"Re: {to['Subject']}", body, when=when, in_reply_to=str(to["Message-ID"]),
                      extra=extra))


def jan(conv: Conversation) -> Participant:
    with conv.app(conv.now).session() as s:
        return s.exec(select(Participant).where(Participant.full_name == "Jan Kowalski")).one()


@pytest.fixture
def conv(tmp_path: Path) -> Conversation:
    return Conversation(settings_for(tmp_path))


def first_run(conv: Conversation) -> Any:
    """Register the form; returns the sender's ack."""
    register(conv)
    conv.run(APR1)
    sent = conv.sent()
    assert kinds(sent) == [("ack", ANNA), ("ack", SENDER)]
    return next(m for m in sent if SENDER in str(m["To"]))


def test_a_doubtful_address_gets_nothing_and_the_sender_is_asked(conv: Conversation) -> None:
    ack = first_run(conv)
    body = text_of(ack)
    assert f"Jan Kowalski: odczytaliśmy {READ} – czy chodziło o {MEANT}?" in body
    assert "„potwierdzam”" in body and "nie wysyłamy na ten adres żadnych wiadomości" in body
    assert f"<{READ}> (adres do potwierdzenia)" in body
    assert READ in ack.get_body(("html",)).get_content()  # type: ignore[union-attr]
    person = jan(conv)
    assert (person.email_check, person.email, person.email_suggestion) == ("unconfirmed", READ, MEANT)
    assert person.status == "confirmed"  # seated as usual
    with conv.app(APR1).session() as s:
        reg = s.exec(select(Registration)).one()
        assert reg.status == "confirmed"
        (inbound,) = s.exec(select(InboundMessage)).all()
        assert inbound.outcome == "registered" and "1 e-mail address(es) to confirm" in (inbound.reason or "")
    # Anna's own ack says nothing about Jan's address.
    conv.run(APR1 + dt.timedelta(minutes=5))
    assert conv.sent() == []


def test_a_reply_taking_the_suggestion_acks_jan_at_the_meant_address_once(conv: Conversation) -> None:
    ack = first_run(conv)
    reply(conv, ack, f"Dzień dobry,\ntak, chodziło o {MEANT}\n\nPozdrawiam\nSekretariat", at(2))
    report = conv.run(at(2))
    sent = conv.sent()
    assert kinds(sent) == [("ack", MEANT), ("updated", SENDER)]
    (result,) = report.results
    assert result.outcome == "registered" and "corrected the e-mail of Jan Kowalski" in result.reason
    jan_ack = next(m for m in sent if MEANT in str(m["To"]))
    assert "Jan Kowalski" in text_of(jan_ack) and "Anna Nowak" not in text_of(jan_ack)
    updated = text_of(next(m for m in sent if SENDER in str(m["To"])))
    assert f"Jan Kowalski: {MEANT} (poprawiony)" in updated and f"{READ} → {MEANT}" in updated
    assert "Prosimy o sprawdzenie" not in updated  # nothing waits any more
    person = jan(conv)
    assert (person.email_check, person.email, person.email_as_read) == ("corrected", MEANT, READ)
    assert person.email_settled_by == f"reply {result.ref}"
    with conv.app(at(2)).session() as s:
        assert s.exec(select(Registration)).one().version == 2  # the previous state is kept
    # The same form again (the same scan) does not bring the misreading back; a second
    # answer changes nothing and sends nothing twice.
    register(conv, when=at(3))
    conv.run(at(3))
    assert kinds(conv.sent()) == [("updated", SENDER)]
    assert jan(conv).email == MEANT
    reply(conv, ack, f"Potwierdzam {MEANT}.", at(4))
    conv.run(at(4))
    assert all(MEANT not in str(m["To"]) for m in conv.sent())


def test_a_reply_confirming_the_address_as_read_acks_it(conv: Conversation) -> None:
    ack = first_run(conv)
    reply(conv, ack, f"Adres {READ} jest poprawny, potwierdzam.", at(2))
    conv.run(at(2))
    assert kinds(conv.sent()) == [("ack", READ), ("updated", SENDER)]
    assert (jan(conv).email_check, jan(conv).email) == ("confirmed", READ)


def test_a_bare_confirmation_settles_a_doubt_without_a_suggestion(
    conv: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An OCR doubt ("the scan is faint") comes without another reading to offer.
    real = ingest.parse_isolated

    def no_suggestion(*args: Any, **kw: Any) -> FormData:
        form = real(*args, **kw)
        form.problems = [dataclasses.replace(p, suggestion=None) for p in form.problems]
        return form

    monkeypatch.setattr(ingest, "parse_isolated", no_suggestion)
    ack = first_run(conv)
    assert "czy chodziło o" not in text_of(ack) and f"odczytaliśmy {READ}" in text_of(ack)
    reply(conv, ack, "Tak, zgadza się.\n\nAnna", at(2))
    conv.run(at(2))
    assert kinds(conv.sent()) == [("ack", READ), ("updated", SENDER)]
    assert jan(conv).email_check == "confirmed"


def test_a_correcting_reply_from_another_address_quoting_the_code_acks_the_new_address(conv: Conversation) -> None:
    first_run(conv)
    with conv.app(APR1).session() as s:
        code = s.exec(select(Registration)).one().code
    conv.receive(mail("kadry@nysa.example.pl", f"Adres Jana Kowalskiego – {code}",
                      "Nie, właściwy adres to j.kowalski@nysa.pl.", when=at(2)))
    conv.run(at(2))
    assert kinds(conv.sent()) == [("ack", "j.kowalski@nysa.pl"), ("updated", "kadry@nysa.example.pl")]
    assert (jan(conv).email_check, jan(conv).email) == ("corrected", "j.kowalski@nysa.pl")


@pytest.mark.parametrize(
    "body",
    [
        "Potwierdzam.",  # we offered another reading: it could mean either
        "Adres jest błędny.",  # wrong, but which is right?
        "Czy mogę podać inny adres?",
        "To nie jest jan.kowalski@nysa.pl",
    ],
)
def test_an_unclear_answer_goes_to_review_and_changes_nothing(conv: Conversation, body: str) -> None:
    ack = first_run(conv)
    reply(conv, ack, body, at(2))
    (result,) = conv.run(at(2)).results
    assert conv.sent() == []
    assert result.outcome == "needs_review" and "unconfirmed e-mail address" in result.reason
    assert jan(conv).email_check == "unconfirmed"


def test_our_own_request_quoted_in_a_reply_is_not_the_answer(conv: Conversation) -> None:
    ack = first_run(conv)
    # A client that quotes without '>' after a plain separator line.
    quoted = "\n".join(text_of(ack).splitlines())
    reply(conv, ack, f"Dziękuję za informację.\n\n{quoted}", at(2))
    (result,) = conv.run(at(2)).results
    assert conv.sent() == [] and jan(conv).email_check == "unconfirmed"
    assert result.outcome == "needs_review"  # a message without a form: for the organisers


def test_an_auto_reply_never_confirms(conv: Conversation) -> None:
    ack = first_run(conv)
    reply(conv, ack, f"Potwierdzam {READ}. Jestem na urlopie.", at(2), extra=(("Auto-Submitted", "auto-replied"),))
    (result,) = conv.run(at(2)).results
    assert result.outcome == "ignored" and conv.sent() == []
    assert jan(conv).email_check == "unconfirmed"


def test_a_message_from_the_doubtful_address_itself_confirms_it(conv: Conversation) -> None:
    first_run(conv)
    with conv.app(APR1).session() as s:
        code = s.exec(select(Registration)).one().code
    conv.receive(mail(READ, f"Konferencja {code}", "Dzień dobry, czy będzie parking?", when=at(2)))
    (result,) = conv.run(at(2)).results
    # The question is also acknowledged and forwarded to the organisers (issue 12).
    assert kinds(conv.sent()) == [
        ("ack", READ), ("forwarded_question", "opole@partnerstwa.example.pl"), ("question_received", READ),
    ]
    assert jan(conv).email_check == "confirmed" and jan(conv).email_settled_by == f"from {result.ref}"
    assert result.outcome == "needs_review"  # the question still goes to a person


def test_a_doubtful_address_equal_to_the_senders_is_confirmed_by_the_envelope(conv: Conversation) -> None:
    register(conv, sender=READ)
    conv.run(APR1)
    sent = conv.sent()
    assert kinds(sent) == [("ack", ANNA), ("ack", READ)]
    body = text_of(next(m for m in sent if READ in str(m["To"])))
    assert "Prosimy o sprawdzenie" not in body and "do potwierdzenia" not in body
    assert jan(conv).email_check is None


def test_reminders_and_change_notices_skip_the_doubtful_address(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    first_run(conv)
    seven_days = dt.datetime(2016, 4, 11, 11, 0, tzinfo=WARSAW)
    conv.run(seven_days)
    week = conv.sent()
    # Jan's reminder reaches him through the sender (who has no seat of their own).
    assert kinds(week) == [("reminder", ANNA), ("reminder", SENDER)]
    assert "Jan Kowalski" in text_of(next(m for m in week if SENDER in str(m["To"])))
    conv.settings = settings_for(tmp_path, venue="Sala Marmurowa")
    conv.run(at(12))
    assert conv.sent() == []  # an edit alone mails nobody (issue 12, item 10)
    app = conv.app(at(12))
    with app.session() as s:  # `mailbot announce opole-2016`
        assert announce(s, app.mailer, conv.settings.event("opole-2016"), at(12)) is not None
        s.commit()
    conv.run(at(12))
    assert kinds(conv.sent()) == [("changed", ANNA), ("changed", SENDER)]


def test_a_promotion_reaches_a_doubtful_person_through_the_sender(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path, capacity=1))
    register(conv, sender="ewa@gmina.example.pl", people=[("Ewa Lis", "ewa@gmina.example.pl")])
    register(conv, when=APR1 + dt.timedelta(minutes=1), people=[("Jan Kowalski", READ)])
    conv.run(APR1 + dt.timedelta(minutes=2))
    assert kinds(conv.sent()) == [("ack", "ewa@gmina.example.pl"), ("waitlist", SENDER)]
    conv.receive(mail("ewa@gmina.example.pl", "Rezygnacja", "Rezygnuję z udziału.", when=at(2)))
    conv.run(at(2))
    assert kinds(conv.sent()) == [("cancelled", "ewa@gmina.example.pl"), ("promoted", SENDER)]


def test_a_bounce_of_the_senders_ack_does_not_settle_anything(conv: Conversation) -> None:
    ack = first_run(conv)
    conv.receive(bounce(SENDER, str(ack["Message-ID"]), at(2)))
    assert conv.run(at(2)).results[0].outcome == "ignored"
    assert jan(conv).email_check == "unconfirmed"



postgres_server = pg.postgres_server
postgres_url = pg.postgres_url


@pytest.mark.integration
@pytest.mark.parametrize(
    "scenario",
    [
        test_a_reply_taking_the_suggestion_acks_jan_at_the_meant_address_once,
        test_a_message_from_the_doubtful_address_itself_confirms_it,
        test_reminders_and_change_notices_skip_the_doubtful_address,
    ],
    ids=lambda f: f.__name__.removeprefix("test_"),
)
def test_the_doubts_on_postgresql(
    scenario: Any, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The queries that find and settle doubts, on PostgreSQL."""
    monkeypatch.setattr(conversation, "DATABASE_URL", postgres_url)
    if scenario is test_reminders_and_change_notices_skip_the_doubtful_address:
        scenario(tmp_path)
    else:
        scenario(Conversation(settings_for(tmp_path)))
    assert not list(tmp_path.rglob("*.db"))
