"""The organisers' numbers in the digest (issue 12, item 9): people per workshop against
its capacity, registrations per kind of institution, diets and accessibility needs
gathered from the remarks, and a chart of seats per day as an inline PNG."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
from email.message import EmailMessage
from pathlib import Path

from PIL import Image
from sqlmodel import select

from mailbot.app import event_header
from mailbot.config import Workshop
from mailbot.digest import build_digests, institution_type, queue_digests, remark_labels
from mailbot.forms.blank import FilledValues, make_docx
from mailbot.forms.model import Consents, Institution, Participant
from mailbot.store.tables import OutboundMail

from tests.conversation import WARSAW, Conversation, mail, settings_for

ORGANISER = "opole@partnerstwa.example.pl"
WORKSHOPS = (
    Workshop(key="A", title="Finansowanie projektów", capacity=2),
    Workshop(key="B", title="Cyfrowe usługi"),
    Workshop(key="C", title="Rewitalizacja", capacity=3),
)


def at(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2016, 4, day, hour, 0, tzinfo=WARSAW)


def register(conv: Conversation, n: int, institution: str, people: int, workshops: set[str],
             remarks: str | None, when: dt.datetime) -> None:
    event = conv.settings.event("opole-2016")
    values = FilledValues(
        institution=Institution(institution, "ul. Rynek 1, 46-000 Testowo", "77 400 00 00", f"inst{n}@example.pl"),
        participants=[Participant(f"Osoba {n}{chr(97 + i)} Nowak", "Inspektor", "77 400 00 11",
                                  f"osoba{n}{i}@example.pl") for i in range(people)],
        workshops=frozenset(workshops),
        remarks=remarks,
        consents=Consents(data_processing=True, newsletter=False),
        place_date="Testowo, 1.04.2016",
    )
    conv.receive(mail(f"sekretariat{n}@example.pl", "Zgłoszenie", "W załączeniu.", when=when,
                      form=make_docx(event_header(event), values, style="table")))
    conv.run(when)


def scenario(tmp_path: Path) -> Conversation:
    settings = settings_for(tmp_path, capacity=6, organisers=(ORGANISER,), workshops=WORKSHOPS)
    conv = Conversation(settings)
    register(conv, 1, "Urząd Gminy Lubsza", 2, {"A", "C"}, "dieta wegetariańska", at(1))
    register(conv, 2, "Urząd Miejski w Brzegu", 2, {"A"}, "Dieta wegetariańska; poruszam się na wózku", at(1, 11))
    register(conv, 3, "Starostwo Powiatowe w Nysie", 1, {"C"}, "przyjedziemy dzień wcześniej", at(3))
    register(conv, 4, "Związek Gmin Śląska Opolskiego", 1, {"C"}, None, at(4))
    register(conv, 5, "Fundacja Rozwoju", 2, {"C"}, "bezglutenowa, potrzebna pętla indukcyjna", at(4, 12))
    return conv


def digest_mail(conv: Conversation, when: dt.datetime) -> EmailMessage:
    app = conv.app(when)
    with app.session() as s:
        (result,) = queue_digests(s, app.settings, app.templates, app.blobs, when)
        s.commit()
        row = s.exec(select(OutboundMail).where(OutboundMail.dedupe_key == result.dedupe_key)).one()
    msg = email.message_from_bytes(row.raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_the_rules_for_institutions_and_remarks() -> None:
    assert [institution_type(n) for n in (
        "Urząd Gminy Dobrzeń Wielki", "Urząd Miasta Opola", "Urząd Miejski w Nysie",
        "Starostwo Powiatowe w Oleśnie", "Urząd Marszałkowski Województwa Opolskiego",
        "Związek Miast Polskich", "Ośrodek Pomocy Społecznej", None, "URZAD GMINY POPIELOW",
    )] == ["gmina", "miasto", "miasto", "powiat", "województwo", "związek", "inne", "inne", "gmina"]
    assert remark_labels("Dieta wegańska, bez laktozy") == ["dieta wegańska", "dieta bez laktozy"]
    assert remark_labels("dieta niskosodowa") == ["dieta (inna)"]
    assert remark_labels("potrzebny tłumacz migowy (PJM)") == ["dostępność (wózek, pętla indukcyjna…)"]
    assert remark_labels("prosimy o parking dla osoby niepełnosprawnej") == ["dostępność (wózek, pętla indukcyjna…)"]
    assert remark_labels("alergia na orzechy") == ["alergia"]
    assert remark_labels("przyjedziemy wcześniej") == []


def test_the_digest_counts_workshops_institutions_and_remarks(tmp_path: Path) -> None:
    conv = scenario(tmp_path)
    when = at(5, 7)
    app = conv.app(when)
    with app.session() as s:
        (digest,) = build_digests(s, app.settings, when)
    # 6 seats: forms 1–3 and 4 fill them (2+2+1+1); form 5's two people wait.
    counts = {w.key: (w.seated, w.waiting, w.capacity, w.over) for w in digest.workshops}
    assert counts == {"A": (4, 0, 2, 2), "B": (0, 0, None, 0), "C": (4, 2, 3, 1)}
    assert [w.name for w in digest.workshops] == ["Finansowanie projektów", "Cyfrowe usługi", "Rewitalizacja"]
    kinds = {t.kind: (t.registrations, t.people) for t in digest.institution_types}
    assert kinds == {"gmina": (1, 2), "miasto": (1, 2), "powiat": (1, 1), "związek": (1, 1), "inne": (1, 2)}
    groups = {g.label: g.codes for g in digest.remark_groups}
    assert len(groups["dieta wegetariańska"]) == 2  # per registration, not per person (4 people)
    assert len(groups["dostępność (wózek, pętla indukcyjna…)"]) == 2
    assert len(groups["dieta bezglutenowa"]) == 1
    assert [r.text for r in digest.plain_remarks] == ["przyjedziemy dzień wcześniej"]
    assert [(p.day.day, p.seated) for p in digest.seats_by_day] == [(1, 4), (2, 4), (3, 5), (4, 6)]

    msg = digest_mail(conv, when)
    text = msg.get_body(("plain",))
    assert text is not None
    body = str(text.get_content())  # type: ignore[attr-defined]
    assert "- warsztaty: A: 4/2 – PONAD LIMIT o 2; B – 0 osób; C: 4/3 – PONAD LIMIT o 1 (+2 z listy rezerwowej)" in body
    assert "- instytucje: gmina – 1; miasto – 1; powiat – 1; związek – 1; inne – 1" in body
    codes = ", ".join(groups["dieta wegetariańska"])
    assert f"  dieta wegetariańska: 2 ({codes})" in body
    assert "  dostępność (wózek, pętla indukcyjna…): 2 (" in body
    assert ": przyjedziemy dzień wcześniej" in body
    assert "cid:" not in body and "wykres" not in body.lower()
    conv.app(when).engine.dispose()


def test_the_html_digest_shows_the_chart_as_an_inline_png(tmp_path: Path) -> None:
    conv = scenario(tmp_path)
    when = at(5, 7)
    msg = digest_mail(conv, when)
    html_part = msg.get_body(("html",))
    assert html_part is not None
    html = str(html_part.get_content())  # type: ignore[attr-defined]
    assert "A</strong> (Finansowanie projektów): <span" in html and "4/2 – ponad limit o 2" in html
    related = [p for p in msg.walk() if p.get_content_type() == "multipart/related"]
    assert len(related) == 1
    (png_part,) = [p for p in related[0].iter_parts() if p.get_content_type() == "image/png"]
    cid = str(png_part["Content-ID"]).strip("<>")
    assert f'<img src="cid:{cid}"' in html
    assert png_part.get_content_disposition() == "inline"
    data = png_part.get_payload(decode=True)
    assert isinstance(data, bytes) and len(data) < 60 * 1024
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size == (600, 250)
    # The chart is not one of the attachments (the XLSX is).
    assert all(p.get_content_type() != "image/png" for p in msg.iter_attachments())  # type: ignore[attr-defined]
    conv.app(when).engine.dispose()


def test_no_registrations_no_chart(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, capacity=6, organisers=(ORGANISER,))
    conv = Conversation(settings)
    when = at(5, 7)
    msg = digest_mail(conv, when)
    assert not any(p.get_content_type() == "image/png" for p in msg.walk())
    html_part = msg.get_body(("html",))
    assert html_part is not None and "cid:" not in str(html_part.get_content())  # type: ignore[attr-defined]
    conv.app(when).engine.dispose()
