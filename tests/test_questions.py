"""Issue 12, item 4: a registered person's question is answered at once and forwarded.

Through the real pipeline (Maildir in, SQLite, Maildir out): the person hears at once
that the organisers have it (``question_received``), the organisers of the event get it
(``forwarded_question``, Reply-To the person, the text quoted, the original attached);
the message still waits in review. Never to automatic mail; never twice.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from pathlib import Path

from sqlmodel import select

from mailbot.intent import detect_question
from mailbot.store.tables import InboundMessage, OutboundMail, Participant

from tests.conversation import Conversation, WARSAW, form_docx, kinds, mail, settings_for, text_of

APR1 = dt.datetime(2016, 4, 1, 9, 0, tzinfo=WARSAW)
ANNA = "anna@gmina-a.example.pl"
OPOLE_ORGANISERS = "opole@partnerstwa.example.pl"  # config/demo.toml


def at(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2016, 4, day, hour, 0, tzinfo=WARSAW)


def registered(tmp_path: Path) -> tuple[Conversation, EmailMessage]:
    conv = Conversation(settings_for(tmp_path))
    event = conv.settings.event("opole-2016")
    conv.receive(mail(ANNA, "Zgłoszenie na konferencję", "W załączeniu zgłoszenie.", when=APR1,
                      form=form_docx(event, [("Anna Kowalska", ANNA)], institution="Urząd Gminy Alfa")))
    conv.run(APR1)
    (ack,) = conv.sent()
    return conv, ack


def test_a_question_is_acknowledged_and_forwarded_to_the_organisers(tmp_path: Path) -> None:
    conv, ack = registered(tmp_path)
    code = str(ack["Subject"]).split("[")[1].split("]")[0]
    conv.receive(mail(f"Anna Kowalska <{ANNA}>", f"Re: {ack['Subject']}",
                      "Dzień dobry,\n\nczy na miejscu będzie parking dla uczestników?\n\nAnna Kowalska",
                      when=at(4), in_reply_to=str(ack["Message-ID"])))
    report = conv.run(at(4))
    sent = conv.sent()
    assert kinds(sent) == [("forwarded_question", OPOLE_ORGANISERS), ("question_received", ANNA)]
    (result,) = report.results
    assert result.outcome == "needs_review"  # the organisers still answer
    assert "przekazane organizatorom" in result.reason

    reply = next(m for m in sent if m["X-Mailbot-Kind"] == "question_received")
    assert f"[{code}]" in str(reply["Subject"]) and "Opole" in str(reply["Subject"])
    text = text_of(reply).replace("\r\n", "\n")
    assert text.startswith("Szanowna Pani Anno,\n")
    assert "Przekazaliśmy ją organizatorom konferencji" in text and "odpowiedzą" in text
    assert "18 kwietnia 2016 r." in text
    assert reply["In-Reply-To"]  # threaded under the question

    forward = next(m for m in sent if m["X-Mailbot-Kind"] == "forwarded_question")
    assert forward["Reply-To"].addresses[0].addr_spec == ANNA
    subject = str(forward["Subject"])
    assert subject.startswith("Pytanie od: Anna Kowalska (Urząd Gminy Alfa)") and f"[{code}]" in subject
    body = text_of(forward).replace("\r\n", "\n")
    assert "> czy na miejscu będzie parking dla uczestników?" in body
    assert "trafi bezpośrednio do nadawcy" in body
    (original,) = [p for p in forward.iter_attachments() if p.get_content_type() == "message/rfc822"]
    inner = original.get_content()
    assert "parking" in inner.get_body(("plain",)).get_content()
    assert str(forward["Auto-Submitted"]) == "auto-generated"

    # Nothing changed on the registration, and a second pass sends nothing new.
    with conv.app(at(4)).session() as s:
        assert s.exec(select(Participant)).one().status == "confirmed"
    conv.run(at(4, 10))
    assert conv.sent() == []


def test_an_unclear_withdrawal_that_asks_is_a_question(tmp_path: Path) -> None:
    conv, ack = registered(tmp_path)
    conv.receive(mail(ANNA, f"Re: {ack['Subject']}", "Czy mogę zrezygnować tylko z warsztatu B?",
                      when=at(4), in_reply_to=str(ack["Message-ID"])))
    report = conv.run(at(4))
    assert kinds(conv.sent()) == [("forwarded_question", OPOLE_ORGANISERS), ("question_received", ANNA)]
    (result,) = report.results
    assert result.outcome == "needs_review" and "unclear" in result.reason
    with conv.app(at(4)).session() as s:
        assert s.exec(select(Participant)).one().status == "confirmed"


def test_a_clear_withdrawal_keeps_the_withdrawal_path(tmp_path: Path) -> None:
    conv, ack = registered(tmp_path)
    conv.receive(mail(ANNA, f"Re: {ack['Subject']}", "Rezygnuję z udziału w konferencji.",
                      when=at(4), in_reply_to=str(ack["Message-ID"])))
    conv.run(at(4))
    assert kinds(conv.sent()) == [("cancelled", ANNA)]


def test_a_thank_you_is_not_a_question(tmp_path: Path) -> None:
    conv, ack = registered(tmp_path)
    conv.receive(mail(ANNA, f"Re: {ack['Subject']}", "Dziękuję za potwierdzenie, do zobaczenia.",
                      when=at(4), in_reply_to=str(ack["Message-ID"])))
    report = conv.run(at(4))
    assert conv.sent() == []
    assert report.results[0].outcome == "needs_review"


def test_an_auto_reply_with_a_question_mark_gets_nothing(tmp_path: Path) -> None:
    conv, ack = registered(tmp_path)
    conv.receive(mail(ANNA, "Automatyczna odpowiedź: Re: potwierdzenie",
                      "Jestem na urlopie do 10 kwietnia. Czy sprawa jest pilna? Proszę o kontakt z sekretariatem.",
                      when=at(4), extra=[("Auto-Submitted", "auto-replied")]))
    report = conv.run(at(4))
    assert conv.sent() == []
    assert report.results[0].outcome == "ignored"


def test_an_unknown_sender_without_a_form_still_gets_the_blank_form(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    conv.receive(mail("ktos@gmina-z.example.pl", "Pytanie", "Czy można jeszcze się zapisać?", when=APR1))
    report = conv.run(APR1)
    assert kinds(conv.sent()) == [("no_form", "ktos@gmina-z.example.pl")]
    assert report.results[0].outcome == "needs_review"


def test_the_daily_cap_holds_the_reply_but_not_the_forward(tmp_path: Path) -> None:
    conv, ack = registered(tmp_path)
    cap = conv.settings.outbox.max_replies_per_address_per_day
    for n in range(cap + 1):
        conv.receive(mail(ANNA, f"Re: {ack['Subject']}", f"Czy mogę przyjechać z psem? ({n})",
                          when=at(4) + dt.timedelta(minutes=n), in_reply_to=str(ack["Message-ID"])))
    conv.run(at(4, 12))
    sent = conv.sent()
    replies = [m for m in sent if m["X-Mailbot-Kind"] == "question_received"]
    forwards = [m for m in sent if m["X-Mailbot-Kind"] == "forwarded_question"]
    assert len(forwards) == cap + 1  # one per message: the organisers see every question
    assert len(replies) < cap + 1  # the ack counted too: the cap holds
    with conv.app(at(4, 12)).session() as s:
        reasons = [m.reason or "" for m in s.exec(select(InboundMessage)).all()]
        assert any("automatic mails today" in r for r in reasons)
        assert len(s.exec(select(OutboundMail).where(OutboundMail.kind == "question_received")).all()) == len(replies)


def test_what_counts_as_a_question() -> None:
    assert detect_question("Re: Potwierdzenie", "Czy mogę zrezygnować tylko z warsztatu B?").asks
    assert detect_question("Re: Potwierdzenie", "Proszę o wystawienie faktury na gminę.").asks
    assert detect_question("Pytanie o parking", "").asks
    assert detect_question("Re: x", "Jak dojechać na miejsce").asks
    assert not detect_question("Re: x", "Dziękuję, do zobaczenia.\n\nAnna").asks
    quoted = "Dziękuję.\n\nW dniu 1.04.2016 o 10:00 zgloszenia@x.pl pisze:\n> Czy to pytanie?\n"
    assert not detect_question("Re: x", quoted).asks
    assert not detect_question("Re: x", "Link: https://x.example.pl/?a=1").asks
