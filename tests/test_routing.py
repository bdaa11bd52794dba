"""Issue 12, item 1: a form for a past event, the message naming an open one.

Through the real pipeline: last month's form (Lublin, already held) with "przesyłam
zgłoszenie na konferencję (Opole, 18 kwietnia 2016 r.)" registers for Opole, and the
reason says so; when the message names no open event (or several), the sender gets the
open events with their blank forms and the organisers of both events get the message —
with none named the form is kept as a late one (as before), with several nothing is
registered.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlmodel import select

from mailbot.forms.model import FormData
from mailbot.routing import route_form
from mailbot.store.tables import InboundMessage, Registration

from tests.conversation import Conversation, WARSAW, form_docx, kinds, mail, settings_for, text_of

APR1 = dt.datetime(2016, 4, 1, 9, 0, tzinfo=WARSAW)  # Lublin (21 March) is over; Opole open
SENDER = "d.wojcik@um-mirow.example.pl"
LUBLIN_ORGANISERS = "lublin@partnerstwa.example.pl"
OPOLE_ORGANISERS = "opole@partnerstwa.example.pl"


def lublin_form(conv: Conversation, body: str, subject: str = "Zgłoszenie na konferencję") -> None:
    lublin = conv.settings.event("lublin-2016")
    conv.receive(mail(f"Dariusz Wójcik <{SENDER}>", subject, body, when=APR1,
                      form=form_docx(lublin, [("Dariusz Wójcik", SENDER)], institution="Urząd Miejski w Mirowie")))


def test_the_wrong_form_with_opole_in_the_body_registers_for_opole(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    lublin_form(conv, "Dzień dobry,\n\nprzesyłam zgłoszenie na konferencję (Opole, 18 kwietnia 2016 r.).\n\n"
                      "Dariusz Wójcik\nBurmistrz Mirowa\n")
    report = conv.run(APR1)
    (result,) = report.results
    assert result.outcome == "registered"
    assert "w treści wiadomości: Opole → zapisano na Opole, 18 kwietnia 2016 r. (opole-2016)" in result.reason
    assert "formularz konferencji Lublin, 21 marca 2016 r. (już się odbyła)" in result.reason
    (ack,) = conv.sent()
    assert kinds([ack]) == [("ack", SENDER)] and "Opole" in str(ack["Subject"])
    with conv.app(APR1).session() as s:
        reg = s.exec(select(Registration)).one()
        assert reg.event_key == "opole-2016" and reg.status == "confirmed"
        inbound = s.exec(select(InboundMessage)).one()
        assert "zapisano na Opole" in (inbound.reason or "")
    conv.run(APR1 + dt.timedelta(hours=1))
    assert conv.sent() == []


def test_the_wrong_form_naming_no_open_event_is_kept_late_and_the_open_ones_are_listed(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    lublin_form(conv, "Dzień dobry,\n\nw załączeniu zgłoszenie.\n\nDariusz Wójcik\n")
    report = conv.run(APR1)
    (result,) = report.results
    assert result.outcome == "needs_review"
    assert "wiadomość nie wskazuje innej konferencji – zapisano jako spóźnione" in result.reason
    sent = conv.sent()
    assert kinds(sent) == [
        ("forwarded_question", LUBLIN_ORGANISERS),
        ("forwarded_question", OPOLE_ORGANISERS),
        ("open_events", SENDER),
    ]
    reply = next(m for m in sent if m["X-Mailbot-Kind"] == "open_events")
    text = text_of(reply).replace("\r\n", "\n")
    assert "Ta konferencja już się odbyła" in text and "formularz zapisaliśmy (nr LUB-" in text
    assert "Opole, poniedziałek, 18 kwietnia 2016 r., godz. 11:00" in text
    assert "zgłoszenia do 14 kwietnia 2016 r.; formularz: zgloszenie-opole-2016.docx" in text
    names = [p.get_filename() for p in reply.iter_attachments()]
    assert names == ["zgloszenie-opole-2016.docx"]
    forward = next(m for m in sent if m["To"].addresses[0].addr_spec == OPOLE_ORGANISERS)
    assert forward["Reply-To"].addresses[0].addr_spec == SENDER
    assert str(forward["Subject"]).startswith("Formularz innej konferencji od: Dariusz Wójcik")
    with conv.app(APR1).session() as s:  # kept for the organisers, as a late form was
        reg = s.exec(select(Registration)).one()
        assert (reg.event_key, reg.status) == ("lublin-2016", "late")
    conv.run(APR1 + dt.timedelta(hours=1))
    assert conv.sent() == []


def test_several_open_events_named_is_ambiguous(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    opole = settings.event("opole-2016")
    krakow = opole.model_copy(update={
        "key": "krakow-2016", "city": "Kraków", "date": dt.date(2016, 5, 16),
        "registration_deadline": dt.date(2016, 5, 12), "organisers": ("krakow@partnerstwa.example.pl",),
    })
    conv = Conversation(settings.model_copy(update={"events": (*settings.events, krakow)}))
    lublin_form(conv, "Zgłaszam się na konferencję w Opolu albo w Krakowie.")
    report = conv.run(APR1)
    assert report.results[0].outcome == "needs_review"
    assert "wiadomość wskazuje kilka konferencji: Opole, Kraków – niczego nie zapisano" in report.results[0].reason
    sent = conv.sent()
    assert ("open_events", SENDER) in kinds(sent)
    reply = next(m for m in sent if m["X-Mailbot-Kind"] == "open_events")
    assert sorted(p.get_filename() or "" for p in reply.iter_attachments()) == [
        "zgloszenie-krakow-2016.docx", "zgloszenie-opole-2016.docx",
    ]
    assert {m["To"].addresses[0].addr_spec for m in sent if m["X-Mailbot-Kind"] == "forwarded_question"} == {
        LUBLIN_ORGANISERS, OPOLE_ORGANISERS, "krakow@partnerstwa.example.pl",
    }
    with conv.app(APR1).session() as s:
        assert s.exec(select(Registration)).all() == []


def test_an_open_events_form_is_never_rerouted(tmp_path: Path) -> None:
    """A city in the message never overrides the form of an event still open."""
    settings = settings_for(tmp_path)
    form = FormData(file="f.docx", status="ok", format="docx", event="opole-2016")
    route = route_form(settings, form, subject="Zgłoszenie", text="Na konferencję w Lublinie", today=APR1.date())
    assert route.kind == "as_form"


def test_a_closed_events_form_naming_nothing_else_stays_late(tmp_path: Path) -> None:
    """Deadline passed, event still to come, nothing else named: a late form for it."""
    settings = settings_for(tmp_path)
    form = FormData(file="f.docx", status="ok", format="docx", event="opole-2016")
    route = route_form(settings, form, subject="Zgłoszenie", text="W załączeniu zgłoszenie.",
                       today=dt.date(2016, 4, 15))
    assert route.kind == "as_form"


def test_a_signature_town_is_no_choice_of_event(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    form = FormData(file="f.docx", status="ok", format="docx", event="lublin-2016")
    text = "W załączeniu zgłoszenie.\n\nUrząd Miasta Opole\nul. Rynek 1, 45-015 Opole\n"
    route = route_form(settings, form, subject="Zgłoszenie", text=text, today=APR1.date())
    assert route.kind == "ask" and route.candidates == ("opole-2016",)
