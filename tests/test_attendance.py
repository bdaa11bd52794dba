"""The attendance list for the day of the event: who is on it (only people with a seat),
in which order (institution, then surname, in Polish alphabetical order), and both files
as they come out of the printer: the XLSX's cells and print settings, the PDF's text and
page numbering."""

from __future__ import annotations

import datetime as dt
import io
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from openpyxl import load_workbook
from sqlmodel import Session, select

from mailbot.attendance import (
    COLUMNS,
    ROW_HEIGHT_PT,
    WALK_IN_ROWS,
    XLSX_COLUMNS,
    AttendanceRow,
    attendance_rows,
    polish_key,
    to_pdf,
    to_xlsx,
    write_attendance,
)
from mailbot.config import Settings
from mailbot.store import db
from mailbot.store.tables import InboundMessage, Participant, Registration

from tests.conversation import WARSAW, Conversation, form_docx, mail, settings_for


def at(day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(2016, 4, day, hour, minute, tzinfo=WARSAW)


def register(conv: Conversation, sender: str, people: list[tuple[str, str | None]], when: dt.datetime,
             institution: str) -> None:
    event = conv.settings.event("opole-2016")
    conv.receive(mail(sender, "Zgłoszenie na konferencję", "W załączeniu zgłoszenie.", when=when,
                      form=form_docx(event, people, institution=institution)))


@pytest.fixture(scope="module")
def conversation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Conversation]:
    """Capacity 4; a full house, a waiting list, a withdrawal with a promotion, an
    incomplete form (its people keep their seats) and a form after the deadline."""
    conv = Conversation(settings_for(tmp_path_factory.mktemp("attendance"), capacity=4))
    register(conv, "gmina@lubniany.example.pl",
             [("Adam Zieliński", None), ("Żaneta Łęcka", "zaneta@lubniany.example.pl")],  # no e-mail: incomplete
             at(1), "Urząd Gminy Łubniany")
    register(conv, "starostwo@olesno.example.pl",
             [("Bartosz Wiśniewski", "bartosz@olesno.example.pl"), ("Anna Ćwik", "anna@olesno.example.pl")],
             at(1, 9, 1), "Starostwo Powiatowe w Oleśnie")
    register(conv, "gmina@lubsza.example.pl", [("Celina Dąbrowska", "celina@lubsza.example.pl")],
             at(1, 9, 2), "Urząd Gminy Lubsza")
    register(conv, "ops@prudnik.example.pl", [("Eryk Pawlak", "eryk@prudnik.example.pl")],
             at(1, 9, 3), "Ośrodek Pomocy Społecznej w Prudniku")
    conv.run(at(1, 9, 5))
    bartosz = next(m for m in conv.sent() if "bartosz@" in str(m["To"]))
    conv.receive(mail("bartosz@olesno.example.pl", f"Re: {bartosz['Subject']}", "Rezygnuję z udziału.",
                      when=at(2), in_reply_to=str(bartosz["Message-ID"])))
    conv.run(at(2))
    register(conv, "urzad@kamiennik.example.pl", [("Zofia Późna", "zofia@kamiennik.example.pl")],
             at(15), "Urząd Gminy Kamiennik")
    conv.run(at(15))
    yield conv
    conv.app(at(15)).engine.dispose()


def test_only_people_with_a_seat_are_listed_by_institution_then_surname(conversation: Conversation) -> None:
    with conversation.app(at(16)).session() as s:
        rows = attendance_rows(s, "opole-2016")
        statuses = {p.full_name: p.status for p in s.exec(select(Participant))}
    assert statuses["Eryk Pawlak"] == "waitlisted" and statuses["Bartosz Wiśniewski"] == "cancelled"
    assert statuses["Zofia Późna"] == "late" and statuses["Celina Dąbrowska"] == "confirmed"  # promoted
    # S < U; "Urząd Gminy Lubsza" before "… Łubniany" (L before Ł); Łęcka before Zieliński.
    assert [(r.number, r.full_name, r.institution) for r in rows] == [
        (1, "Anna Ćwik", "Starostwo Powiatowe w Oleśnie"),
        (2, "Celina Dąbrowska", "Urząd Gminy Lubsza"),
        (3, "Żaneta Łęcka", "Urząd Gminy Łubniany"),
        (4, "Adam Zieliński", "Urząd Gminy Łubniany"),  # on an incomplete form: still seated
    ]
    assert all(r.job_title == "Inspektor" and r.code.startswith("OPO-") for r in rows)


def test_polish_alphabetical_order() -> None:
    words = ["Żak", "Zając", "Łoś", "Lis", "ćma", "Cyran", "Śliwa", "Sowa", "Źrebiec", "Ąbel", "Azja", "Óma", "Oko",
             "Nowak", "Ńa", "Eryk", "Ęki", "Émile"]
    assert sorted(words, key=polish_key) == [
        "Azja", "Ąbel", "Cyran", "ćma", "Émile", "Eryk", "Ęki", "Lis", "Łoś", "Nowak", "Ńa", "Oko", "Óma",
        "Sowa", "Śliwa", "Zając", "Źrebiec", "Żak",
    ]
    # A space sorts before any letter; quotes and punctuation do not count.
    assert polish_key("Urząd Gminy") < polish_key("Urząd Gminy Lubsza") < polish_key("Urząd Gminyx")
    assert polish_key("„Żak”") == polish_key("żak")


def test_xlsx_cells_and_print_settings(conversation: Conversation) -> None:
    event = conversation.settings.event("opole-2016")
    with conversation.app(at(16)).session() as s:
        rows = attendance_rows(s, "opole-2016")
    ws = load_workbook(io.BytesIO(to_xlsx(event, rows))).active
    assert ws is not None and ws.title == "Lista obecności"
    assert ws["A1"].value == "LISTA OBECNOŚCI" and ws["A1"].font.b
    assert ws["A2"].value == "„Współpraca w partnerstwach samorządowych”"
    assert ws["A3"].value == "Opole, poniedziałek, 18 kwietnia 2016 r., godz. 11:00"
    assert ws["A4"].value == "Sala Herbowa Urzędu Wojewódzkiego w Opolu, ul. Piastowska 14, 45-082 Opole"
    # Row 11: the heading of the walk-in rows (tests/test_attendance_print.py).
    assert {str(r) for r in ws.merged_cells.ranges} == {"A1:F1", "A2:F2", "A3:F3", "A4:F4", "A11:F11"}
    assert list(COLUMNS) == ["Lp.", "Imię i nazwisko", "Stanowisko", "Instytucja", "Podpis"]  # the PDF's
    assert [c.value for c in ws[6]] == list(XLSX_COLUMNS) == [
        "Lp.", "Imię i nazwisko", "Stanowisko", "Instytucja", "Warsztaty", "Podpis"]
    assert all(c.font.b for c in ws[6])
    body = [[c.value for c in row] for row in ws.iter_rows(min_row=7, max_row=10)]
    assert body == [
        [1, "Anna Ćwik", "Inspektor", "Starostwo Powiatowe w Oleśnie", "A", None],
        [2, "Celina Dąbrowska", "Inspektor", "Urząd Gminy Lubsza", "A", None],
        [3, "Żaneta Łęcka", "Inspektor", "Urząd Gminy Łubniany", "A", None],
        [4, "Adam Zieliński", "Inspektor", "Urząd Gminy Łubniany", "A", None],
    ]
    for row in ws.iter_rows(min_row=6, max_row=10):
        for cell in row:
            assert {cell.border.left.style, cell.border.right.style, cell.border.top.style,
                    cell.border.bottom.style} == {"thin"}, cell.coordinate
    assert all((ws.row_dimensions[r].height or 0) >= ROW_HEIGHT_PT for r in range(7, 11))
    widths = {c: ws.column_dimensions[c].width for c in "ABCDEF"}
    assert widths["A"] < 8 and widths["F"] >= 25  # Lp. narrow, the signature wide
    # Print: A4 landscape, one page wide, as many pages long as needed, header row on each.
    assert int(ws.page_setup.paperSize) == 9 and ws.page_setup.orientation == "landscape"  # 9: A4
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
    assert ws.print_title_rows == "$6:$6"
    assert ws.print_area == f"'Lista obecności'!$A$1:$F${11 + WALK_IN_ROWS}"
    assert ws.freeze_panes == "A7"
    assert "&P" in ws.oddFooter.right.text and "&N" in ws.oddFooter.right.text


def _pages_text(pdf: bytes) -> list[str]:
    doc = pdfium.PdfDocument(pdf)
    try:
        return [page.get_textpage().get_text_range() for page in doc]
    finally:
        doc.close()


def _flat(text: str) -> str:
    """Page text on one line: cells wrap, and pdfium reports a hyphen that ends a line as
    U+FFFE (a double-barrelled name breaks after its hyphen)."""
    text = text.replace("\ufffe", "-")
    return " ".join(re.sub(r"-\s+", "-", text).split())


def _in_order(text: str, names: list[str]) -> bool:
    positions = [text.find(n) for n in names]
    return all(p >= 0 for p in positions) and positions == sorted(positions)


def test_pdf_has_the_polish_names_in_order_and_the_header(conversation: Conversation) -> None:
    event = conversation.settings.event("opole-2016")
    with conversation.app(at(16)).session() as s:
        rows = attendance_rows(s, "opole-2016")
    pdf = to_pdf(event, rows)
    assert pdf.startswith(b"%PDF") and to_pdf(event, rows) == pdf  # deterministic
    (text,) = _pages_text(pdf)
    assert "LISTA OBECNOŚCI" in text and "„Współpraca w partnerstwach samorządowych”" in text
    assert "Opole, poniedziałek, 18 kwietnia 2016 r., godz. 11:00" in text
    assert "Sala Herbowa Urzędu Wojewódzkiego w Opolu" in text
    assert _in_order(text, ["Lp.", "Imię i nazwisko", "Stanowisko", "Instytucja", "Podpis"])
    assert _in_order(text, ["Anna Ćwik", "Celina Dąbrowska", "Żaneta Łęcka", "Adam Zieliński"])
    for absent in ("Eryk Pawlak", "Bartosz Wiśniewski", "Zofia Późna"):
        assert absent not in text
    assert "strona 1 z 1" in text


FIRST = ["Anna", "Żaneta", "Łukasz", "Ewa", "Grzegorz", "Ścibor", "Bożena", "Michał", "Jolanta", "Zdzisław"]
LAST = ["Kowalska", "Łęcka", "Żółkiewski", "Śliwa", "Nowak", "Lis", "Ćwik", "Zając", "Wiśniewska", "Źrebiec",
        "Ostrowski", "Dąbrowska", "Grzegorzewska-Brzęczyszczykiewicz"]
INSTITUTIONS = ["Urząd Gminy Łubniany", "Urząd Miejski w Brzegu", "Starostwo Powiatowe w Oleśnie",
                "Zespół Szkół Ekonomicznych im. Jana Pawła II w Kędzierzynie-Koźlu", "Świetlica „Żak”"]
TITLES = ["Inspektor", "Wójt", "Kierownik Referatu Funduszy Europejskich i Rozwoju Lokalnego"]


def _crowd(settings: Settings, seated: int, waiting: int) -> list[tuple[str, str]]:
    """``seated`` + ``waiting`` people written straight into the database; returns the
    seated ones' (institution, name)."""
    engine = db.make_engine(settings.db_url)
    db.upgrade(engine)
    rnd = random.Random(7)
    now = dt.datetime(2016, 4, 1, 9, tzinfo=dt.UTC)
    out = []
    with Session(engine) as s:
        inbound = InboundMessage(dedupe_key="crowd", ref="crowd", raw_sha256="0" * 64, size=1, source="test",
                                 received_at=now)
        s.add(inbound)
        s.flush()
        assert inbound.id is not None
        total = seated + waiting
        names = iter(rnd.sample([f"{f} {n}" for f in FIRST for n in LAST], total))
        for i in range(0, total, 3):
            reg = Registration(code=f"OPO-{i:05d}", event_key="opole-2016",
                               institution_name=INSTITUTIONS[(i // 3) % len(INSTITUTIONS)],
                               source_inbound_id=inbound.id, created_at=now)
            s.add(reg)
            s.flush()
            assert reg.id is not None
            for j in range(min(3, total - i)):
                name = next(names)
                status = "confirmed" if i + j < seated else "waitlisted"
                s.add(Participant(registration_id=reg.id, position=j, full_name=name, job_title=rnd.choice(TITLES),
                                  status=status, registered_at=now, status_changed_at=now))
                if status == "confirmed":
                    out.append((reg.institution_name or "", name))
        s.commit()
    engine.dispose()
    return out


def test_a_long_list_runs_over_numbered_pages_with_the_header_on_each(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    seated = _crowd(settings, seated=60, waiting=5)
    engine = db.make_engine(settings.db_url)
    with Session(engine) as s:
        xlsx_path, pdf_path = write_attendance(s, settings.event("opole-2016"), tmp_path / "lista-opole")
        rows = attendance_rows(s, "opole-2016")
    engine.dispose()
    assert (xlsx_path.name, pdf_path.name) == ("lista-opole.xlsx", "lista-opole.pdf")
    assert len(rows) == 60 and [r.number for r in rows] == list(range(1, 61))
    assert sorted((r.institution, r.full_name) for r in rows) == sorted(seated)
    institutions = [r.institution for r in rows]
    assert list(dict.fromkeys(institutions)) == [
        "Starostwo Powiatowe w Oleśnie", "Świetlica „Żak”", "Urząd Gminy Łubniany", "Urząd Miejski w Brzegu",
        "Zespół Szkół Ekonomicznych im. Jana Pawła II w Kędzierzynie-Koźlu",
    ]
    for inst in dict.fromkeys(institutions):
        surnames = [r.full_name.split()[-1] for r in rows if r.institution == inst]
        keys = [polish_key(n) for n in surnames]
        assert keys == sorted(keys), inst

    pages = _pages_text(pdf_path.read_bytes())
    assert len(pages) >= 3
    for number, text in enumerate(pages, start=1):
        assert f"strona {number} z {len(pages)}" in text
        assert _in_order(text, ["Lp.", "Imię i nazwisko", "Stanowisko", "Instytucja", "Podpis"])  # repeated
    everything = _flat("\n".join(pages))
    assert _in_order(everything, [r.full_name for r in rows])
    assert "LISTA OBECNOŚCI" in pages[0] and "LISTA OBECNOŚCI" not in pages[1]
    numbers = [int(n) for n in re.findall(r"(?:^|\s)(\d{1,2})\.(?=\s)", everything)]
    assert numbers == list(range(1, 61))

    ws = load_workbook(xlsx_path).active
    assert ws is not None and ws.max_row == 6 + 60 + 1 + WALK_IN_ROWS and ws.print_title_rows == "$6:$6"
    long_title = next(r for r in range(7, 67) if ws.cell(r, 3).value == TITLES[2])
    assert (ws.row_dimensions[long_title].height or 0) > ROW_HEIGHT_PT  # wraps: taller row


def test_a_stem_with_a_suffix_still_gives_both_files(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    engine = db.make_engine(settings.db_url)
    db.upgrade(engine)
    with Session(engine) as s:
        paths = write_attendance(s, settings.event("opole-2016"), tmp_path / "out" / "lista.xlsx")
    engine.dispose()
    assert [p.name for p in paths] == ["lista.xlsx", "lista.pdf"] and all(p.exists() for p in paths)
    (text,) = _pages_text(paths[1].read_bytes())
    assert "Brak osób z potwierdzonym miejscem." in text and "strona 1 z 1" in text


def test_markup_in_a_name_is_printed_and_a_long_name_breaks_after_its_hyphen() -> None:
    settings = settings_for(Path("/nonexistent"))
    event = settings.event("opole-2016")
    rows = [AttendanceRow(1, "Jan <b>Kowalski</b> & syn", "", "Urząd & Spółka", "OPO-AAAAA"),
            AttendanceRow(2, "Anna Grzegorzewska-Brzęczyszczykiewicz", "", "Urząd", "OPO-AAAAA")]
    (text,) = _pages_text(to_pdf(event, rows))
    text = _flat(text)
    assert "Jan <b>Kowalski</b> & syn" in text and "Urząd & Spółka" in text
    (raw,) = _pages_text(to_pdf(event, rows))
    assert re.search("Anna\\s+Grzegorzewska[-\ufffe]\\s*Brzęczyszczykiewicz", raw)  # not "…ewska-B / rzę…"
