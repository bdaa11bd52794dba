"""The organisers' daily digest, on data made by the real pipeline (Maildir in, SQLite,
fixed clock): what is new since the last digest, seats against the capacity, the waiting
list, who was taken off the list, bounces, the messages waiting for review with their
attachments, the participant XLSX cell by cell — and that each organiser gets one mail
a day about their own events only."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import shutil
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func
from sqlmodel import select

from mailbot.config import Settings
from mailbot.digest import (
    Digest,
    DigestResult,
    build_digests,
    digest_due,
    next_digest_at,
    queue_digests,
    reason_pl,
    run_digest_command,
)
from mailbot.errors import ConfigError
from mailbot.export import COLUMNS
from mailbot.review import reject
from mailbot.store.tables import OutboundMail, Registration

from tests.conversation import WARSAW, Conversation, form_docx, mail, settings_for, text_of
from tests.conversation import bounce

OPOLE_ORGANISERS = ("opole@partnerstwa.example.pl", "Biuro.Opole@partnerstwa.example.pl")
COORDINATOR = "koordynator@partnerstwa.example.pl"
LUBLIN = "lublin@partnerstwa.example.pl"
OPOLE_TO = ("opole@partnerstwa.example.pl", "biuro.opole@partnerstwa.example.pl", COORDINATOR)
BROKEN_PDF = b"%PDF-1.4\n" + b"this scan did not survive the fax machine " * 120


def at(day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(2016, 4, day, hour, minute, tzinfo=WARSAW)


def settings_in(tmp: Path) -> Settings:
    """The demo config; Opole has 4 seats and three organiser addresses, Lublin moves to
    May (so two events are open), and a coordinator organises both."""
    base = settings_for(tmp, capacity=4, organisers=(*OPOLE_ORGANISERS, COORDINATOR))
    events = tuple(
        e.model_copy(update={"date": dt.date(2016, 5, 16), "registration_deadline": dt.date(2016, 5, 12),
                             "organisers": (LUBLIN, COORDINATOR)})
        if e.key == "lublin-2016" else e
        for e in base.events
    )
    return base.model_copy(update={"events": events})


def register(conv: Conversation, sender: str, people: list[tuple[str, str | None]], when: dt.datetime,
             institution: str, event: str = "opole-2016") -> None:
    conv.receive(mail(sender, "Zgłoszenie na konferencję", "W załączeniu zgłoszenie.", when=when,
                      form=form_docx(conv.settings.event(event), people, institution=institution)))


def scan(sender: str, when: dt.datetime) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "zgloszenia@partnerstwa.example.pl"
    msg["Subject"] = "Zgłoszenie – skan"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<scan.{int(when.timestamp())}@kamiennik.example.pl>"
    msg.set_content("W załączeniu skan zgłoszenia.")
    msg.add_attachment(BROKEN_PDF, maintype="application", subtype="pdf", filename="zgłoszenie Kamiennik.pdf")
    return msg.as_bytes()


def day_one(conv: Conversation) -> None:
    """1 April: three forms fill the four seats and start the waiting list; a question
    without a form and an unreadable scan go to review."""
    register(conv, "sekretariat@brzeg.example.pl",
             [("Katarzyna Wróbel", "k.wrobel@brzeg.example.pl"), ("Tomasz Lis", "t.lis@brzeg.example.pl")],
             at(1), "Urząd Miejski w Brzegu")
    register(conv, "gmina@lubsza.example.pl", [("Żaneta Łęcka", "zaneta@lubsza.example.pl"), ("Jan Nowak", None)],
             at(1, 9, 1), "Urząd Gminy Lubsza")
    register(conv, "ops@prudnik.example.pl", [("Grzegorz Ślusarczyk", "g.slusarczyk@prudnik.example.pl")],
             at(1, 9, 2), "Ośrodek Pomocy Społecznej w Prudniku")
    conv.run(at(1, 9, 5))
    conv.receive(mail("anonim@example.com", "Pytanie o konferencję",
                      "Dzień dobry,\nczy konferencja będzie transmitowana online?\nPozdrawiam", when=at(1, 10)))
    conv.receive(scan("wojt@kamiennik.example.pl", at(1, 10, 30)))
    conv.run(at(1, 11))


@pytest.fixture(scope="module")
def day_one_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("digest-day-one")
    conv = Conversation(settings_in(base))
    day_one(conv)
    conv.app(at(1, 11)).engine.dispose()
    return base


@pytest.fixture
def conv(day_one_dir: Path, tmp_path: Path) -> Iterator[Conversation]:
    """A copy of the state after day one (database, blobs, Maildirs) for this test."""
    shutil.copytree(day_one_dir, tmp_path, dirs_exist_ok=True)
    c = Conversation(settings_in(tmp_path))
    c.sent()  # what day one delivered
    yield c
    c.app(c.now).engine.dispose()


def build(conv: Conversation, when: dt.datetime, **kw: object) -> list[Digest]:
    app = conv.app(when)
    with app.session() as s:
        return build_digests(s, app.settings, when, blobs=app.blobs, **kw)  # type: ignore[arg-type]


def digest_at(conv: Conversation, when: dt.datetime, **kw: object) -> list[DigestResult]:
    app = conv.app(when)
    with app.session() as s:
        results = queue_digests(s, app.settings, app.templates, app.blobs, when, **kw)  # type: ignore[arg-type]
        s.commit()
    return results


def one(digests: list[Digest], key: str) -> Digest:
    (digest,) = [d for d in digests if d.event.key == key]
    return digest


def queued_mail(conv: Conversation, dedupe_key: str) -> EmailMessage:
    with conv.app(conv.now).session() as s:
        row = s.exec(select(OutboundMail).where(OutboundMail.dedupe_key == dedupe_key)).one()
    msg = email.message_from_bytes(row.raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def attachments_of(message: EmailMessage) -> dict[str, bytes]:
    return {
        str(part.get_filename()): part.get_payload(decode=True)
        for part in message.iter_attachments()  # type: ignore[attr-defined]
    }


def digest_rows(conv: Conversation) -> int:
    with conv.app(conv.now).session() as s:
        return int(s.exec(select(func.count()).select_from(OutboundMail).where(OutboundMail.kind == "digest")).one())


def codes(conv: Conversation) -> dict[str, str]:
    """Institution → registration code."""
    with conv.app(conv.now).session() as s:
        return {r.institution_name or "": r.code for r in s.exec(select(Registration))}


# --- what is new, seats, waiting list -------------------------------------------------


def test_the_first_digest_lists_everything_and_the_next_day_only_what_is_new(conv: Conversation) -> None:
    code = codes(conv)
    first = one(build(conv, at(2, 7)), "opole-2016")
    assert first.since is None and first.recipients == OPOLE_TO
    assert [(r.code, r.institution, r.status_pl) for r in first.new_registrations] == [
        (code["Urząd Miejski w Brzegu"], "Urząd Miejski w Brzegu", "przyjęte"),
        (code["Urząd Gminy Lubsza"], "Urząd Gminy Lubsza", "niekompletne"),
        (code["Ośrodek Pomocy Społecznej w Prudniku"], "Ośrodek Pomocy Społecznej w Prudniku", "przyjęte"),
    ]
    assert [(p.full_name, p.status, p.waitlist_position) for r in first.new_registrations for p in r.people] == [
        ("Katarzyna Wróbel", "confirmed", None), ("Tomasz Lis", "confirmed", None),
        ("Żaneta Łęcka", "confirmed", None), ("Jan Nowak", "confirmed", None),
        ("Grzegorz Ślusarczyk", "waitlisted", 1),
    ]
    assert first.new_registrations[1].problems  # what Lubsza's form still lacks
    t = first.totals
    assert (t.seated, t.capacity, t.free, t.waiting, t.registrations, t.incomplete, t.people) == (4, 4, 0, 1, 3, 1, 5)
    assert [(w.position, w.full_name) for w in first.waiting_list] == [(1, "Grzegorz Ślusarczyk")]
    assert first.withdrawn == () and first.bounces == () and first.late == ()

    results = digest_at(conv, at(2, 7))
    assert sorted((r.event_key, r.address, r.status) for r in results) == sorted(
        [("opole-2016", a, "queued") for a in OPOLE_TO] + [("lublin-2016", a, "queued") for a in (LUBLIN, COORDINATOR)]
    )  # Szczecin and Toruń are over and nothing new happened there: no digest
    opole = next(r for r in results if r.address == "opole@partnerstwa.example.pl")
    assert opole.rendered is not None
    assert opole.subject.startswith("Zestawienie dzienne 02.04.2016 – Opole, 18 kwietnia 2016 r.: miejsca 4/4")
    assert "3 nowe zgłoszenia" in opole.subject and "do przejrzenia: 2" in opole.subject
    text = opole.rendered.text
    assert "To pierwsze zestawienie" in text and "miejsca zajęte: 4 z 4 (wolne: 0)" in text
    assert "Grzegorz Ślusarczyk, Inspektor <g.slusarczyk@prudnik.example.pl> – lista rezerwowa (miejsce 1)" in text
    assert "Do uzupełnienia:" in text
    assert "1. Grzegorz Ślusarczyk – Ośrodek Pomocy Społecznej w Prudniku" in text

    # Day two: Tomasz withdraws (Grzegorz moves up), Oleśno's three go to the waiting list,
    # Lubsza corrects its form, Katarzyna's mailbox bounces, Żaneta is on holiday.
    tomasz = _ack_to(conv, "t.lis@brzeg.example.pl")
    conv.receive(mail("t.lis@brzeg.example.pl", f"Re: {tomasz['Subject']}", "Rezygnuję z udziału.",
                      when=at(2, 10), in_reply_to=str(tomasz["Message-ID"])))
    register(conv, "sekretariat@olesno.example.pl",
             [("Bożena Żółkiewska", "b.zolkiewska@olesno.example.pl"), ("Michał Ćwik", "m.cwik@olesno.example.pl"),
              ("Ewa Źrebiec", "ewa@olesno.example.pl")], at(2, 10, 5), "Starostwo Powiatowe w Oleśnie")
    register(conv, "gmina@lubsza.example.pl",
             [("Żaneta Łęcka", "zaneta@lubsza.example.pl"), ("Jan Nowak", "jan.nowak@lubsza.example.pl")],
             at(2, 10, 10), "Urząd Gminy Lubsza")
    conv.run(at(2, 10, 15))
    with conv.app(at(2, 11)).session() as s:
        ack = s.exec(select(OutboundMail).where(OutboundMail.to_addr == "k.wrobel@brzeg.example.pl")).first()
        assert ack is not None
    conv.receive(bounce("k.wrobel@brzeg.example.pl", ack.message_id, at(2, 11)))
    conv.receive(mail("zaneta@lubsza.example.pl", "Automatyczna odpowiedź: Potwierdzenie", "Jestem na urlopie.",
                      when=at(2, 12), extra=[("Auto-Submitted", "auto-replied")]))
    conv.run(at(2, 12))

    second = one(build(conv, at(3, 7)), "opole-2016")
    assert second.since == at(2, 7)
    assert [r.institution for r in second.new_registrations] == ["Starostwo Powiatowe w Oleśnie"]
    assert [(c.code, [(x.field, x.old, x.new) for x in c.changes]) for c in second.corrections] == [
        (code["Urząd Gminy Lubsza"], [("Jan Nowak: e-mail", "—", "jan.nowak@lubsza.example.pl")]),
    ]
    assert [(w.full_name, w.code, w.how) for w in second.withdrawn] == [
        ("Tomasz Lis", code["Urząd Miejski w Brzegu"], "withdrawn"),
    ]
    assert [(w.position, w.full_name) for w in second.waiting_list] == [
        (1, "Bożena Żółkiewska"), (2, "Michał Ćwik"), (3, "Ewa Źrebiec"),
    ]
    t = second.totals
    assert (t.seated, t.waiting, t.withdrawn_since, t.incomplete) == (4, 3, 1, 0)
    (bounced,) = second.bounces
    assert bounced.address == "k.wrobel@brzeg.example.pl" and bounced.new and "mailbox full" in (bounced.reason or "")
    assert bounced.who == (f"Katarzyna Wróbel ({code['Urząd Miejski w Brzegu']})",)
    assert [a.address for a in second.auto_replies] == ["zaneta@lubsza.example.pl"]
    # The bounce and the out-of-office reply are not for review; yesterday's two items wait
    # still: listed again, their files not attached again.
    assert [(i.subject, i.new) for i in second.review] == [("Pytanie o konferencję", False), ("Zgłoszenie – skan", False)]
    assert [(f.included, f.note) for f in second.review[1].files] == [(False, "dołączony do wcześniejszego zestawienia")]

    results = digest_at(conv, at(3, 7))
    opole = next(r for r in results if r.address == "opole@partnerstwa.example.pl")
    assert opole.status == "queued" and opole.rendered is not None
    text = opole.rendered.text
    assert "Zmiany od poprzedniego zestawienia (02.04.2016, 07:00)." in text
    assert "NOWE ZGŁOSZENIA (1)" in text and "Katarzyna Wróbel, Inspektor" not in text
    assert "Bożena Żółkiewska, Inspektor <b.zolkiewska@olesno.example.pl> – lista rezerwowa (miejsce 1)" in text
    assert "- Tomasz Lis – Urząd Miejski w Brzegu" in text
    assert "Jan Nowak: e-mail: — → jan.nowak@lubsza.example.pl" in text
    assert "k.wrobel@brzeg.example.pl [nowe] – Katarzyna Wróbel" in text and "mailbox full" in text
    assert "zaneta@lubsza.example.pl – Żaneta Łęcka" in text
    assert "1 nowe zgłoszenie, do przejrzenia: 2" in opole.subject
    assert "DO PRZEJRZENIA (2, w tym nowe: 0)" in text
    assert "2. [" in text and "(czeka od 2 dni), od: <wojt@kamiennik.example.pl>" in text
    assert opole.attachments == ("uczestnicy-opole-2016-2016-04-03.xlsx",)
    html = opole.rendered.html
    assert "Bożena Żółkiewska" in html and "Tomasz Lis" in html and "mailbox full" in html
    # Lublin: nothing happened there; its daily mail still goes out (the event is to come).
    lublin = next(r for r in results if r.event_key == "lublin-2016" and r.address == LUBLIN)
    assert lublin.rendered is not None and "NOWE ZGŁOSZENIA (0)" in lublin.rendered.text


def _ack_to(conv: Conversation, address: str) -> EmailMessage:
    with conv.app(conv.now).session() as s:
        row = s.exec(select(OutboundMail).where(OutboundMail.to_addr == address)).first()
        assert row is not None
    msg = email.message_from_bytes(row.raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


# --- review -------------------------------------------------------------------------


def test_review_items_and_their_attachments_go_to_the_organisers_of_their_event(conv: Conversation) -> None:
    code = codes(conv)
    # A question about Brzeg's registration (its code quoted), a form after Opole's
    # deadline, and a form for Toruń, which took place in March.
    conv.receive(mail("sekretariat@brzeg.example.pl", f"Pytanie – zgłoszenie {code['Urząd Miejski w Brzegu']}",
                      "Czy jest parking dla uczestników?", when=at(15, 8)))
    register(conv, "urzad@kamiennik.example.pl", [("Zofia Późna", "zofia@kamiennik.example.pl")],
             at(15, 8, 30), "Urząd Gminy Kamiennik")
    register(conv, "gmina@chelmza.example.pl", [("Piotr Spóźniony", "piotr@chelmza.example.pl")],
             at(15, 8, 45), "Urząd Gminy Chełmża", event="torun-2016")
    conv.run(at(15, 9))
    late_code = codes(conv)["Urząd Gminy Kamiennik"]

    digests = build(conv, at(16, 7))
    assert {d.event.key: d.recipients for d in digests} == {
        "lublin-2016": (LUBLIN, COORDINATOR),
        "opole-2016": OPOLE_TO,
        "torun-2016": ("torun@partnerstwa.example.pl",),  # over, but something new is there
    }
    subjects = {d.event.key: [i.subject for i in d.review] for d in digests}
    assert subjects == {
        "opole-2016": ["Pytanie o konferencję", "Zgłoszenie – skan",
                       f"Pytanie – zgłoszenie {code['Urząd Miejski w Brzegu']}", "Zgłoszenie na konferencję"],
        # Tied to no event: every event still open hears of them.
        "lublin-2016": ["Pytanie o konferencję", "Zgłoszenie – skan"],
        "torun-2016": ["Zgłoszenie na konferencję"],
    }
    opole = one(digests, "opole-2016")
    question, scanned, about_code, late_form = opole.review
    assert question.sender == "anonim@example.com" and question.received_at == at(1, 11)
    assert question.excerpt == "Dzień dobry,\nczy konferencja będzie transmitowana online?\nPozdrawiam"
    assert question.reason_pl == (
        "brak formularza zgłoszeniowego w załączniku; wysłano automatycznie: pusty formularz → anonim@example.com"
    )
    assert question.files == ()
    (pdf,) = scanned.files
    assert pdf.original_name == "zgłoszenie Kamiennik.pdf" and pdf.included and pdf.size == len(BROKEN_PDF)
    assert pdf.filename == f"{scanned.ref}-zgłoszenie Kamiennik.pdf"
    assert about_code.events == ("opole-2016",) and "bez formularza" in (about_code.reason_pl or "")
    assert late_form.events == ("opole-2016",) and late_form.reason_pl is not None
    assert late_form.reason_pl.startswith(f"zgłoszenie {late_code} po terminie (przyjmowanie zgłoszeń zakończono 14.04.2016)")
    assert [(r.code, r.people, r.new) for r in opole.late] == [(late_code, ("Zofia Późna",), True)]

    results = digest_at(conv, at(16, 7))
    by_address = {(r.event_key, r.address): r for r in results}
    assert set(by_address) == {
        *(("opole-2016", a) for a in OPOLE_TO), ("lublin-2016", LUBLIN), ("lublin-2016", COORDINATOR),
        ("torun-2016", "torun@partnerstwa.example.pl"),
    }
    message = queued_mail(conv, by_address[("opole-2016", "opole@partnerstwa.example.pl")].dedupe_key)
    files = attachments_of(message)
    assert files[pdf.filename] == BROKEN_PDF  # the original bytes
    # The forms that did register are not attached (their message is not for review),
    # but the late one is: it waits for the organisers' decision.
    late_files = [f.filename for f in late_form.files]
    assert late_files == [f"{late_form.ref}-zgloszenie.docx"]
    assert set(files) == {pdf.filename, *late_files, "uczestnicy-opole-2016-2016-04-16.xlsx"}
    text = text_of(message)
    assert f"[{scanned.ref}]" in text and "Powód: nie udało się odczytać pliku zgłoszenie Kamiennik.pdf" in text
    assert "   | czy konferencja będzie transmitowana online?" in text
    assert f"- {late_code} – Urząd Gminy Kamiennik" in text and "[nowe]: Zofia Późna" in text
    html = html_of(message)
    assert "czy konferencja będzie transmitowana online?" in html and f"[{scanned.ref}]" in html
    # Lublin's organiser sees the two untied items, not Opole's own.
    lublin = queued_mail(conv, by_address[("lublin-2016", LUBLIN)].dedupe_key)
    assert pdf.filename in attachments_of(lublin)
    assert "Zofia Późna" not in text_of(lublin) and "Pytanie – zgłoszenie" not in text_of(lublin)
    torun = queued_mail(conv, by_address[("torun-2016", "torun@partnerstwa.example.pl")].dedupe_key)
    assert "Piotr Spóźniony" in text_of(torun) and "Kamiennik" not in text_of(torun)
    # The next morning the items still wait (listed, files not sent again); Toruń, over
    # and without news, gets no digest. Once resolved, an item is gone.
    next_day = build(conv, at(17, 7))
    assert {d.event.key for d in next_day} == {"lublin-2016", "opole-2016"}
    assert [(i.subject, i.new) for i in one(next_day, "opole-2016").review] == [(s, False) for s in subjects["opole-2016"]]
    assert not any(f.included for d in next_day for f in d.files)
    app = conv.app(at(17, 8))
    reject(app.ingest, scanned.ref, note="telefonicznie: prześlą formularz jeszcze raz")
    reject(app.ingest, question.ref)
    after = build(conv, at(17, 9))
    assert [i.subject for i in one(after, "opole-2016").review] == subjects["opole-2016"][2:]
    assert one(after, "lublin-2016").review == ()


def test_files_over_the_size_cap_are_named_instead_of_attached(conv: Conversation) -> None:
    results = digest_at(conv, at(2, 7), attachment_budget=len(BROKEN_PDF) - 1)
    opole = next(r for r in results if r.address == "opole@partnerstwa.example.pl")
    (left_out,) = opole.left_out
    assert left_out.endswith("-zgłoszenie Kamiennik.pdf")
    assert opole.attachments == ("uczestnicy-opole-2016-2016-04-02.xlsx",)
    message = queued_mail(conv, opole.dedupe_key)
    assert set(attachments_of(message)) == {"uczestnicy-opole-2016-2016-04-02.xlsx"}
    text = text_of(message)
    assert "zgłoszenie Kamiennik.pdf (5 KB) – NIE dołączony: za duży" in text
    assert f"Nie dołączono (są w skrzynce zgłoszeń, folder „Needs-Review”): {left_out}." in text


def test_a_file_gone_from_the_archive_is_named_instead_of_attached(conv: Conversation) -> None:
    (digest,) = [d for d in build(conv, at(2, 7)) if d.event.key == "opole-2016"]
    (pdf,) = digest.files
    conv.app(at(2, 7)).blobs.path_for(pdf.sha256).unlink()
    results = digest_at(conv, at(2, 7), event_key="opole-2016")
    assert all(r.left_out == (pdf.filename,) and len(r.attachments) == 1 for r in results)
    assert "pliku nie ma już w archiwum" in text_of(queued_mail(conv, results[0].dedupe_key))


# --- the XLSX -------------------------------------------------------------------------


def test_the_participant_xlsx_cell_by_cell(conv: Conversation) -> None:
    code = codes(conv)
    results = {r.address: r for r in digest_at(conv, at(2, 7)) if r.event_key == "opole-2016"}
    files = attachments_of(queued_mail(conv, results["opole@partnerstwa.example.pl"].dedupe_key))
    book = load_workbook(io.BytesIO(files["uczestnicy-opole-2016-2016-04-02.xlsx"]))
    assert book.sheetnames == ["opole-2016"]  # only the event this address organises
    sheet = book["opole-2016"]
    header = [c.value for c in sheet[1]]
    assert header == [title for title, _ in COLUMNS]
    assert header[:6] == ["Wydarzenie", "Kod zgłoszenia", "Status", "Instytucja", "Lp.", "Imię i nazwisko"]
    assert all(c.font.b for c in sheet[1])
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:P6"
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    brzeg, lubsza, prudnik = code["Urząd Miejski w Brzegu"], code["Urząd Gminy Lubsza"], code["Ośrodek Pomocy Społecznej w Prudniku"]
    assert [r[:10] for r in rows] == [
        ["opole-2016", brzeg, "przyjęte", "Urząd Miejski w Brzegu", 1, "Katarzyna Wróbel", "Inspektor",
         "+48774000011", "k.wrobel@brzeg.example.pl", "potwierdzony"],
        ["opole-2016", brzeg, "przyjęte", "Urząd Miejski w Brzegu", 2, "Tomasz Lis", "Inspektor",
         "+48774000011", "t.lis@brzeg.example.pl", "potwierdzony"],
        ["opole-2016", lubsza, "niekompletne", "Urząd Gminy Lubsza", 1, "Żaneta Łęcka", "Inspektor",
         "+48774000011", "zaneta@lubsza.example.pl", "potwierdzony"],
        ["opole-2016", lubsza, "niekompletne", "Urząd Gminy Lubsza", 2, "Jan Nowak", "Inspektor",
         "+48774000011", None, "potwierdzony"],
        ["opole-2016", prudnik, "przyjęte", "Ośrodek Pomocy Społecznej w Prudniku", 1, "Grzegorz Ślusarczyk",
         "Inspektor", "+48774000011", "g.slusarczyk@prudnik.example.pl", "lista rezerwowa"],
    ]
    assert [r[10:14] for r in rows] == [["A", None, "tak", "nie"]] * 5
    assert [r[15] for r in rows] == [None] * 5  # "Do sprawdzenia": nothing read with doubt
    # Columns fitted to their longest value (and never narrower than 8).
    assert sheet.column_dimensions["D"].width == len("Ośrodek Pomocy Społecznej w Prudniku") + 2
    assert sheet.column_dimensions["E"].width == 8

    # The coordinator organises Lublin too: one sheet per event, Lublin's still empty.
    files = attachments_of(queued_mail(conv, results[COORDINATOR].dedupe_key))
    book = load_workbook(io.BytesIO(files["uczestnicy-2016-04-02.xlsx"]))
    assert book.sheetnames == ["lublin-2016", "opole-2016"]
    empty = book["lublin-2016"]
    assert empty.max_row == 1 and empty.auto_filter.ref == "A1:P1" and empty.freeze_panes == "A2"
    assert book["opole-2016"].max_row == 6


# --- once a day, to the right people ------------------------------------------------------


def test_no_digest_twice_the_same_day_and_a_dry_run_queues_nothing(conv: Conversation) -> None:
    dry = digest_at(conv, at(2, 7), dry_run=True)
    assert len(dry) == 5 and all(r.status == "dry_run" and r.rendered is not None and r.size > 0 for r in dry)
    assert digest_rows(conv) == 0

    first = digest_at(conv, at(2, 7))
    assert [r.status for r in first] == ["queued"] * 5 and digest_rows(conv) == 5
    assert {r.dedupe_key for r in first} >= {
        "digest:opole-2016:2016-04-02:opole@partnerstwa.example.pl",
        "digest:opole-2016:2016-04-02:biuro.opole@partnerstwa.example.pl",
        "digest:lublin-2016:2016-04-02:koordynator@partnerstwa.example.pl",
    }
    again = digest_at(conv, at(2, 18))  # the scheduler fires twice, or someone runs the command
    assert [r.status for r in again] == ["already_sent"] * 5 and digest_rows(conv) == 5
    assert [r.outbound_id for r in again] == [r.outbound_id for r in first]
    assert [r.status for r in digest_at(conv, at(2, 19), dry_run=True)] == ["dry_run"] * 5
    assert digest_rows(conv) == 5

    tomorrow = digest_at(conv, at(3, 7))
    assert [r.status for r in tomorrow] == ["queued"] * 5 and digest_rows(conv) == 10
    assert all(":2016-04-03:" in r.dedupe_key for r in tomorrow)


def test_the_digest_is_an_automatic_mail_to_one_organiser_without_bcc(conv: Conversation) -> None:
    conv.settings = conv.settings.model_copy(
        update={"outbox": conv.settings.outbox.model_copy(update={"bcc": ("archiwum@partnerstwa.example.pl",)})}
    )
    results = digest_at(conv, at(2, 7), event_key="opole-2016")
    assert [r.address for r in results] == list(OPOLE_TO)
    with conv.app(at(2, 7)).session() as s:
        rows = s.exec(select(OutboundMail).where(OutboundMail.kind == "digest").order_by(OutboundMail.id)).all()  # type: ignore[arg-type]
    assert [(r.to_addr, r.envelope_to) for r in rows] == [(a, a) for a in OPOLE_TO]  # no bcc copy
    message = queued_mail(conv, results[0].dedupe_key)
    assert message["Auto-Submitted"] == "auto-generated" and message["X-Mailbot-Kind"] == "digest"
    assert str(message["To"]) == "opole@partnerstwa.example.pl"
    assert message.get_body(("plain",)) is not None and message.get_body(("html",)) is not None
    # Delivered like any other mail.
    conv.app(at(2, 7)).deliver()
    delivered = conv.sent()
    assert sorted(str(m["To"]) for m in delivered) == sorted(OPOLE_TO)


def test_an_event_without_registrations_renders_both_parts(conv: Conversation) -> None:
    (result,) = [r for r in digest_at(conv, at(2, 7), dry_run=True) if r.event_key == "lublin-2016" and r.address == LUBLIN]
    assert result.rendered is not None
    text, html = result.rendered.text, result.rendered.html
    assert "miejsca zajęte: 0 z 120 (wolne: 120)" in text and "NOWE ZGŁOSZENIA (0)\nbrak" in text
    assert "LISTA REZERWOWA (0)\nbrak" in text
    assert html.startswith("<!DOCTYPE html>") and "Lublin" in html and ">brak</p>" in html
    assert "{{" not in text and "{{" not in html


def test_a_chosen_event_and_an_unknown_one(conv: Conversation) -> None:
    # A past event without news still gets its digest when asked for by name.
    (szczecin,) = build(conv, at(2, 7), event_key="szczecin-2016")
    assert szczecin.recipients == ("szczecin@partnerstwa.example.pl",) and not szczecin.has_news
    with pytest.raises(ConfigError, match="nowhere-2016"):
        build(conv, at(2, 7), event_key="nowhere-2016")


def test_run_digest_command_prints_a_summary_and_delivers(conv: Conversation) -> None:
    app = conv.app(at(2, 7))
    summary = run_digest_command(app, "opole-2016", dry_run=True)
    assert "would queue: digest opole-2016 → opole@partnerstwa.example.pl" in summary
    assert "  W SKRÓCIE" in summary  # the text part, for a look before sending
    assert summary.endswith("dry run: 3 digest(s) rendered, nothing queued")
    assert digest_rows(conv) == 0 and conv.sent() == []
    summary = run_digest_command(app, None, dry_run=False)
    assert "queued: digest lublin-2016 → lublin@partnerstwa.example.pl" in summary
    assert "5 digest(s) queued, 0 already queued today" in summary and "sent 5" in summary
    assert len(conv.sent()) == 5
    again = run_digest_command(app, None, dry_run=False)
    assert "0 digest(s) queued, 5 already queued today" in again and conv.sent() == []


# --- when -----------------------------------------------------------------------------


def test_the_next_digest_is_at_digest_time_in_warsaw_across_the_clock_change() -> None:
    settings = settings_for(Path("/nonexistent"))  # digest_time 07:00 Europe/Warsaw
    assert next_digest_at(settings, at(2, 6, 59)) == at(2, 7)
    assert next_digest_at(settings, at(2, 7)) == at(3, 7)
    winter = dt.timezone(dt.timedelta(hours=1))
    # The night of 26/27 March 2016 the clocks went forward: 7:00 is 5:00 UTC, not 6:00.
    moment = next_digest_at(settings, dt.datetime(2016, 3, 26, 12, tzinfo=winter))
    assert moment == dt.datetime(2016, 3, 27, 7, tzinfo=WARSAW)
    assert moment.astimezone(dt.UTC).hour == 5


def test_a_digest_is_due_once_its_moment_passed_since_the_last_run() -> None:
    settings = settings_for(Path("/nonexistent"))
    assert not digest_due(settings, at(2, 6, 59), None)  # started before 7: wait
    assert digest_due(settings, at(2, 7), None)
    assert not digest_due(settings, at(2, 9), at(2, 7))
    assert digest_due(settings, at(3, 7, 1), at(2, 7))
    assert digest_due(settings, at(5, 12), at(2, 7))  # after a long outage: once, now


def test_review_reasons_in_polish_keep_what_they_do_not_know() -> None:
    assert reason_pl("no registration form attached; queued no_form → a@b.pl") == (
        "brak formularza zgłoszeniowego w załączniku; wysłano automatycznie: pusty formularz → a@b.pl"
    )
    assert reason_pl("message too large (60000000 bytes); not opened") == (
        "wiadomość za duża (57,2 MB); nie otwierano jej"
    )
    assert reason_pl("something new") == "something new" and reason_pl(None) is None
