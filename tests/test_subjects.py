"""Subjects say what happened to whom, and mails address their recipient (issue 12,
item 5): through the templates, and end to end through the real pipeline."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailbot.intent import detect_withdrawal
from mailbot.template_samples import sample_context
from mailbot.templating import KINDS, Rendered, Templates, change_subject, names_pl

from tests.conversation import WARSAW, Conversation, form_docx, kinds, mail, settings_for
from tests.conversation import text_of as raw_text_of

APR1 = dt.datetime(2016, 4, 1, 9, 0, tzinfo=WARSAW)


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates()


def render(templates: Templates, kind: str, **extra: Any) -> Rendered:
    ctx = sample_context(kind)
    ctx.update(extra)
    return templates.render(kind, ctx)


# --- through the templates ---------------------------------------------------------------


def test_changed_subject_says_what_changed() -> None:
    one = [{"field": "Godzina rozpoczęcia", "old": "11:00", "new": "10:00"}]
    assert change_subject(one) == "Zmiana godziny rozpoczęcia: 11:00 → 10:00"
    assert change_subject([{"field": "Data", "old": "18 kwietnia 2016 r.", "new": "19 kwietnia 2016 r."}]) == (
        "Zmiana terminu: 18 kwietnia 2016 r. → 19 kwietnia 2016 r."
    )
    # A venue's full name would drown the subject: it stays in the body.
    long = [{"field": "Miejsce", "old": "Sala Sejmiku Urzędu Marszałkowskiego", "new": "Sala Herbowa Urzędu"}]
    assert change_subject(long) == "Zmiana miejsca konferencji"
    assert change_subject([{"field": "Godzina zakończenia", "old": "—", "new": "15:00"}]) == (
        "Zmiana godziny zakończenia: 15:00"
    )
    several = one + [{"field": "Miejsce", "old": "A", "new": "B"}]
    assert change_subject(several) == "Zmiany w konferencji: godzina, miejsce"
    assert change_subject([]) == "Zmiana szczegółów konferencji"


def test_changed_mail_subject(templates: Templates) -> None:
    ctx = sample_context("changed")
    ctx["changes"] = [{"field": "Godzina rozpoczęcia", "old": "11:00", "new": "10:00"}]
    r = templates.render("changed", ctx)
    assert r.subject == "Zmiana godziny rozpoczęcia: 11:00 → 10:00 – Opole, 18 kwietnia 2016 r."
    assert render(templates, "changed").subject.startswith("Zmiany w konferencji: godzina, miejsce –")


def test_names_in_subjects() -> None:
    assert names_pl([{"full_name": "Tomasz Lis"}]) == "Tomasz Lis"
    assert names_pl([{"full_name": "Jan Nowak"}, {"full_name": "Ewa Lis"}]) == "Jan Nowak i Ewa Lis"
    three = [{"full_name": "A B"}, {"full_name": "C D"}, {"full_name": "E F"}]
    assert names_pl(three) == "3 osoby"
    assert names_pl([{"full_name": None}]) == "1 osoba"
    assert names_pl([]) == ""


def test_cancelled_subject_names_who_was_taken_off(templates: Templates) -> None:
    r = render(templates, "cancelled")
    assert r.subject == "Usunięcie z listy uczestników: Piotr Wiśniewski [OPO-7K3FQ] – Opole, 18 kwietnia 2016 r."
    assert "Potwierdzenie usunięcia" not in r.subject


def test_cancelled_to_someone_who_still_attends_says_their_seat_stays(templates: Templates) -> None:
    r = render(templates, "cancelled", recipient_name="Anna Kowalska", recipient_person="Anna Kowalska",
               recipient_keeps_seat=True)
    assert r.text.startswith("Szanowna Pani Anno,\n")
    assert "usunęliśmy:\n\n  1. Piotr Wiśniewski\n" in r.text
    assert "Pani udział w konferencji pozostaje potwierdzony" in r.text
    assert "Pani udział w konferencji pozostaje potwierdzony" in r.html


@pytest.mark.parametrize("kind", KINDS)
def test_a_reply_to_any_subject_is_no_withdrawal(templates: Templates, kind: str) -> None:
    """Our subjects carry no withdrawal word: "Re: <our subject>" + "Dziękuję" must not
    take anyone off the list."""
    subject = render(templates, kind).subject
    assert detect_withdrawal(f"Re: {subject}", "Dziękuję.").kind == "none"


def test_incomplete_says_the_seats_are_held(templates: Templates) -> None:
    r = render(templates, "incomplete")
    assert r.subject.startswith("Zgłoszenie przyjęte, prosimy o uzupełnienie [OPO-7K3FQ]")
    assert "miejsca zgłoszonych osób są już\nzarezerwowane" in r.text
    everyone_waiting = sample_context("incomplete")
    for p in everyone_waiting["registrations"][0]["participants"]:
        p.update(status="waitlisted", waitlist_position=1)
    assert "zarezerwowane" not in templates.render("incomplete", everyone_waiting).text


@pytest.mark.parametrize("kind", KINDS)
def test_the_body_keeps_to_the_greeting(templates: Templates, kind: str) -> None:
    """A mail that greets one person by name never calls them "Państwo" in the body."""
    for ctx in (sample_context(kind), sample_context(kind)):
        ctx.update(recipient_name="Katarzyna Wróbel", recipient_person="Katarzyna Wróbel", calendar_attached=True)
        if kind == "ack":
            ctx["registrations"][0]["participants"][-1].update(status="waitlisted", waitlist_position=2)
        r = templates.render(kind, ctx)
        assert r.text.startswith("Szanowna Pani Katarzyno,\n") and "<p>Szanowna Pani Katarzyno,</p>" in r.html
        assert "Państw" not in r.text and "Państw" not in r.html


# --- through the real pipeline -------------------------------------------------------------


def text_of(message: EmailMessage) -> str:
    return raw_text_of(message).replace("\r\n", "\n")


def at(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2016, 4, day, hour, 0, tzinfo=WARSAW)


def to(mails: list[EmailMessage], address: str) -> EmailMessage:
    return next(m for m in mails if str(m["To"].addresses[0].addr_spec) == address)


def register(conv: Conversation, sender: str, people: list[tuple[str, str | None]], when: dt.datetime) -> None:
    event = conv.settings.event("opole-2016")
    conv.receive(mail(sender, "Zgłoszenie na konferencję", "W załączeniu zgłoszenie.", when=when,
                      form=form_docx(event, people)))


def test_an_office_gets_panstwo_and_each_person_their_own_greeting(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    register(conv, "sekretariat@testowo.example.pl",
             [("Katarzyna Wróbel", "k.wrobel@testowo.example.pl"), ("Tomasz Lis", "t.lis@testowo.example.pl")],
             APR1 - dt.timedelta(hours=1))
    conv.run(APR1)
    sent = conv.sent()
    assert kinds(sent) == [
        ("ack", "k.wrobel@testowo.example.pl"),
        ("ack", "sekretariat@testowo.example.pl"),
        ("ack", "t.lis@testowo.example.pl"),
    ]
    katarzyna = text_of(to(sent, "k.wrobel@testowo.example.pl"))
    assert katarzyna.startswith("Szanowna Pani Katarzyno,\n") and "Państw" not in katarzyna
    assert "Jeśli chce Pani coś zmienić" in katarzyna
    assert text_of(to(sent, "t.lis@testowo.example.pl")).startswith("Szanowny Panie Tomaszu,\n")
    office = text_of(to(sent, "sekretariat@testowo.example.pl"))
    assert office.startswith("Szanowni Państwo,\n") and "Jeśli chcą Państwo coś zmienić" in office


def test_the_withdrawal_subject_names_the_person_withdrawn(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    register(conv, "k.wrobel@testowo.example.pl",
             [("Katarzyna Wróbel", "k.wrobel@testowo.example.pl"), ("Tomasz Lis", "t.lis@testowo.example.pl")],
             APR1 - dt.timedelta(hours=1))
    conv.run(APR1)
    acks = conv.sent()
    tomasz_ack = to(acks, "t.lis@testowo.example.pl")
    conv.receive(mail("t.lis@testowo.example.pl", f"Re: {tomasz_ack['Subject']}", "Rezygnuję z udziału.",
                      when=at(2), in_reply_to=str(tomasz_ack["Message-ID"])))
    conv.run(at(2))
    after = conv.sent()
    assert kinds(after) == [("cancelled", "k.wrobel@testowo.example.pl"), ("cancelled", "t.lis@testowo.example.pl")]
    # Katarzyna registered him and still attends: her subject says whom it is about,
    # her mail that her own seat stays.
    hers = to(after, "k.wrobel@testowo.example.pl")
    assert str(hers["Subject"]).startswith("Usunięcie z listy uczestników: Tomasz Lis [")
    assert text_of(hers).startswith("Szanowna Pani Katarzyno,\n")
    assert "Pani udział w konferencji pozostaje potwierdzony" in text_of(hers)
    his = to(after, "t.lis@testowo.example.pl")
    assert str(his["Subject"]).startswith("Usunięcie z listy uczestników: Tomasz Lis [")
    assert text_of(his).startswith("Szanowny Panie Tomaszu,\n")
    assert "usunęliśmy Pana z listy uczestników" in text_of(his)
    # A thank-you to that mail is no second withdrawal.
    assert detect_withdrawal(f"Re: {hers['Subject']}", "Dziękuję.").kind == "none"
