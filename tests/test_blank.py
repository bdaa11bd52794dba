"""The generated registration form: layout, filled values, controls, determinism, round trip."""

from __future__ import annotations

import datetime as dt
import importlib
import io
import re
import zipfile
from collections.abc import Callable
from typing import Any, Literal

import docx
import pytest
from lxml import etree

from mailbot.forms.blank import (
    CONSENT_TEXTS,
    PLACEHOLDER_TEXT,
    WORKSHOPS,
    EventHeader,
    FilledValues,
    header_line,
    make_docx,
    polish_date,
)
from mailbot.forms.model import Consents, EventRef, Institution, Participant

TITLE = "Współpraca w partnerstwach samorządowych"
OPOLE = EventHeader(
    title=TITLE,
    city="Opole",
    date=dt.date(2016, 4, 18),
    start_time=dt.time(11, 0),
    venue="Sala Herbowa Urzędu Wojewódzkiego",
    address="ul. Piastowska 14",
    deadline=dt.date(2016, 4, 14),
)
LUBLIN = EventHeader(
    title=TITLE,
    city="Lublin",
    date=dt.date(2016, 3, 21),
    start_time=dt.time(11, 0),
    venue="Sala Kolumnowa Urzędu Wojewódzkiego",
    address="ul. Spokojna 4",
    deadline=dt.date(2016, 3, 17),
)
EVENTS = [
    EventRef(key="lublin-2016", title=TITLE, city="Lublin", date=dt.date(2016, 3, 21)),
    EventRef(key="opole-2016", title=TITLE, city="Opole", date=dt.date(2016, 4, 18)),
]
Style = Literal["table", "controls"]
STYLES: list[Style] = ["table", "controls"]

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W14 = "http://schemas.microsoft.com/office/word/2010/wordml"
NS = {"w": W, "w14": W14}

PEOPLE = [
    ("Anna Kowalska-Nowak", "Kierownik Referatu Rozwoju", "77 123 45 61", "a.kowalska@um.example.pl"),
    ("Łukasz Żółkiewski", "Sekretarz Gminy", "601 234 562", "l.zolkiewski@um.example.pl"),
    ("Małgorzata Śliwińska", "Inspektor ds. funduszy", "77 123 45 63", "m.sliwinska@um.example.pl"),
    ("Jerzy Bąk", "Wójt", "602 345 674", "wojt@ug.example.pl"),
    ("Ewa Ćwiklińska", "Skarbnik", "77 123 45 65", "skarbnik@ug.example.pl"),
    ("Grzegorz Dźwigaj", "Podinspektor", "603 456 786", "g.dzwigaj@ug.example.pl"),
    ("Zofia Wąs", "Referent", "77 123 45 67", "z.was@ug.example.pl"),
]


def values(n: int, *, workshops: frozenset[str] = frozenset({"A"}), newsletter: bool = False) -> FilledValues:
    return FilledValues(
        institution=Institution(
            name="Urząd Miejski w Brzezinie Opolskiej",
            address="ul. Rynek 12, 46-320 Brzezina Opolska",
            phone="77 413 20 10",
            email="sekretariat@um.example.pl",
        ),
        participants=[Participant(*row) for row in PEOPLE[:n]],
        workshops=workshops,
        remarks="dieta wegetariańska",
        consents=Consents(data_processing=True, newsletter=newsletter),
        place_date="Brzezina Opolska, 8.04.2016",
    )


def e164(phone: str | None) -> str | None:
    return None if phone is None else "+48" + re.sub(r"\D", "", phone)


def document_xml(data: bytes) -> Any:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return etree.fromstring(zf.read("word/document.xml"))


def all_text(data: bytes) -> str:
    doc = docx.Document(io.BytesIO(data))
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        parts += [cell.text for row in table.rows for cell in row.cells]
    return "\n".join(parts)


# --------------------------------------------------------------------------- basics


def test_polish_dates() -> None:
    assert polish_date(dt.date(2016, 4, 18)) == "18 kwietnia 2016 r."
    assert polish_date(dt.date(2016, 3, 1)) == "1 marca 2016 r."
    assert polish_date(dt.date(2016, 9, 30)) == "30 września 2016 r."
    assert header_line(OPOLE) == "Opole, 18 kwietnia 2016 r., Sala Herbowa Urzędu Wojewódzkiego, ul. Piastowska 14"


@pytest.mark.parametrize("style", STYLES)
def test_valid_docx_package(style: Style) -> None:
    data = make_docx(OPOLE, values(2), style=style)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        assert names[0] == "[Content_Types].xml"
        assert {"word/document.xml", "word/styles.xml", "docProps/core.xml", "_rels/.rels"} <= set(names)
        etree.fromstring(zf.read("word/document.xml"))  # well-formed
    docx.Document(io.BytesIO(data))  # python-docx can open it


@pytest.mark.parametrize("style", STYLES)
def test_wording_of_the_form(style: Style) -> None:
    text = all_text(make_docx(OPOLE, style=style))
    for expected in [
        "ZGŁOSZENIE UCZESTNICTWA",
        f"w konferencji informacyjnej „{TITLE}”",
        "Opole, 18 kwietnia 2016 r., Sala Herbowa Urzędu Wojewódzkiego, ul. Piastowska 14",
        "1. Dane instytucji",
        "Nazwa jednostki samorządu terytorialnego / instytucji:",
        "Adres (ulica, kod pocztowy, miejscowość):",
        "Telefon:",
        "E-mail:",
        "2. Uczestnicy",
        "Lp.",
        "Imię i nazwisko",
        "Stanowisko / funkcja",
        "3. Udział w dyskusjach warsztatowych (proszę zaznaczyć):",
        "☐ A – Zarządzanie strategiczne w partnerstwie" if style == "table" else "A – Zarządzanie strategiczne",
        "B – Zarządzanie relacjami w partnerstwie",
        "4. Uwagi (np. specjalne potrzeby, dieta):",
        "5. Zgody",
        CONSENT_TEXTS["data_processing"],
        CONSENT_TEXTS["newsletter"],
        "Miejscowość, data:",
        "Podpis:",
        "Zgłoszenia prosimy przesyłać do 14 kwietnia 2016 r. na adres e-mail organizatora.",
    ]:
        assert expected in text, expected


def test_same_text_as_the_organisers_blank_forms() -> None:
    """Our blank copies read exactly like the organisers' own (paragraphs and cells)."""
    try:
        from tests.shared import BLANK, HAS_BLANK, REASON
    except ImportError:
        from shared import BLANK, HAS_BLANK, REASON  # type: ignore[no-redef]

    pairs: list[tuple[Style, str]] = [
        ("table", "zgloszenie-opole-2016.docx"),
        ("controls", "zgloszenie-opole-2016-kontrolki.docx"),
    ]
    if not HAS_BLANK:
        pytest.skip(REASON)
    for style, name in pairs:
        ours = all_text(make_docx(OPOLE, style=style))
        theirs = all_text((BLANK / name).read_bytes())
        assert ours == theirs, name


def test_no_deadline_line() -> None:
    header = EventHeader(TITLE, "Toruń", dt.date(2016, 2, 29), None, "Dwór Artusa", "Rynek Staromiejski 6", None)
    text = all_text(make_docx(header))
    assert "Toruń, 29 lutego 2016 r., Dwór Artusa, Rynek Staromiejski 6" in text
    assert "Zgłoszenia prosimy przesyłać na adres e-mail organizatora." in text


# --------------------------------------------------------------------------- table style


def test_table_style_values_in_cells() -> None:
    filled = values(2, workshops=frozenset({"B"}), newsletter=True)
    doc = docx.Document(io.BytesIO(make_docx(OPOLE, filled)))
    institution, people = doc.tables
    assert [row.cells[1].text for row in institution.rows] == [
        "Urząd Miejski w Brzezinie Opolskiej",
        "ul. Rynek 12, 46-320 Brzezina Opolska",
        "77 413 20 10",
        "sekretariat@um.example.pl",
    ]
    assert [c.text for c in people.rows[0].cells] == [
        "Lp.",
        "Imię i nazwisko",
        "Stanowisko / funkcja",
        "Telefon",
        "E-mail",
    ]
    assert len(people.rows) == 4  # header + max(3, 2)
    assert [c.text for c in people.rows[1].cells] == ["1.", *PEOPLE[0]]
    assert [c.text for c in people.rows[2].cells] == ["2.", *PEOPLE[1]]
    assert [c.text for c in people.rows[3].cells] == ["3.", "", "", "", ""]
    paragraphs = [p.text for p in doc.paragraphs]
    assert f"☐ A – {WORKSHOPS['A']}" in paragraphs
    assert f"☒ B – {WORKSHOPS['B']}" in paragraphs
    assert f"☒ {CONSENT_TEXTS['data_processing']}" in paragraphs
    assert f"☒ {CONSENT_TEXTS['newsletter']}" in paragraphs
    assert "4. Uwagi (np. specjalne potrzeby, dieta): dieta wegetariańska" in paragraphs
    assert any(p.startswith("Miejscowość, data: Brzezina Opolska, 8.04.2016") for p in paragraphs)


@pytest.mark.parametrize(("rows", "n", "expected"), [(3, 0, 3), (5, 0, 5), (3, 7, 7), (0, 1, 1), (1, 0, 1)])
def test_participant_rows(rows: int, n: int, expected: int) -> None:
    filled = values(n) if n else None
    for style in STYLES:
        doc = docx.Document(io.BytesIO(make_docx(OPOLE, filled, style=style, rows=rows)))
        table = doc.tables[1]
        assert len(table.rows) == expected + 1
        assert [r.cells[0].text for r in table.rows[1:]] == [f"{i}." for i in range(1, expected + 1)]


def test_blank_table_style_has_lines_to_write_on() -> None:
    doc = docx.Document(io.BytesIO(make_docx(OPOLE)))
    paragraphs = [p.text for p in doc.paragraphs]
    assert "4. Uwagi (np. specjalne potrzeby, dieta): " + "_" * 40 in paragraphs
    assert all(p.startswith("☐") for p in paragraphs if "Zarządzanie" in p or "Wyrażam" in p)
    assert all(c.text == "" for c in doc.tables[0].columns[1].cells)


# --------------------------------------------------------------------------- controls style


def sdts(root: Any) -> dict[str, Any]:
    return {s.find("w:sdtPr/w:tag", NS).get(f"{{{W}}}val"): s for s in root.iter(f"{{{W}}}sdt")}


def test_controls_blank_mirrors_the_organisers_controls() -> None:
    root = document_xml(make_docx(OPOLE, style="controls"))
    assert root.nsmap.get("w14") == W14
    assert "w14" in root.get("{http://schemas.openxmlformats.org/markup-compatibility/2006}Ignorable").split()
    controls = sdts(root)
    expected_text = [f"institution.{f}" for f in ("name", "address", "phone", "email")]
    expected_text += [f"participants[{i}].{f}" for i in range(3) for f in ("full_name", "position", "phone", "email")]
    expected_text += ["remarks", "signature.place_date"]
    expected_boxes = ["workshops.A", "workshops.B", "consents.data_processing", "consents.newsletter"]
    assert set(controls) == set(expected_text + expected_boxes)
    for tag in expected_text:
        sdt = controls[tag]
        assert sdt.find("w:sdtPr/w:showingPlcHdr", NS) is not None, tag
        assert sdt.find("w:sdtPr/w:text", NS) is not None, tag
        assert "".join(sdt.find("w:sdtContent", NS).itertext()) == PLACEHOLDER_TEXT
        assert sdt.find("w:sdtContent/w:r/w:rPr/w:rStyle", NS).get(f"{{{W}}}val") == "Tekstzastpczy"
    for tag in expected_boxes:
        sdt = controls[tag]
        assert sdt.find("w:sdtPr/w14:checkbox/w14:checked", NS).get(f"{{{W14}}}val") == "0"
        assert "".join(sdt.find("w:sdtContent", NS).itertext()) == "☐"
    ids = [s.find("w:sdtPr/w:id", NS).get(f"{{{W}}}val") for s in controls.values()]
    assert len(set(ids)) == len(ids)
    assert all(-(2**31) <= int(i) < 2**31 for i in ids)


def test_controls_filled_values_and_ticks() -> None:
    filled = values(2, workshops=frozenset({"A", "B"}), newsletter=False)
    controls = sdts(document_xml(make_docx(OPOLE, filled, style="controls")))

    def text(tag: str) -> str:
        sdt = controls[tag]
        assert sdt.find("w:sdtPr/w:showingPlcHdr", NS) is None, tag
        return "".join(sdt.find("w:sdtContent", NS).itertext())

    def checked(tag: str) -> bool:
        state = controls[tag].find("w:sdtPr/w14:checkbox/w14:checked", NS).get(f"{{{W14}}}val")
        glyph = "".join(controls[tag].find("w:sdtContent", NS).itertext())
        assert glyph == ("☒" if state == "1" else "☐")
        return bool(state == "1")

    assert text("institution.name") == "Urząd Miejski w Brzezinie Opolskiej"
    assert text("institution.phone") == "77 413 20 10"
    assert [text(f"participants[1].{f}") for f in ("full_name", "position", "phone", "email")] == list(PEOPLE[1])
    assert controls["participants[2].full_name"].find("w:sdtPr/w:showingPlcHdr", NS) is not None
    assert text("remarks") == "dieta wegetariańska"
    assert text("signature.place_date") == "Brzezina Opolska, 8.04.2016"
    assert checked("workshops.A") and checked("workshops.B")
    assert checked("consents.data_processing") and not checked("consents.newsletter")


def test_python_docx_sees_controls_text() -> None:
    """Paragraph.text skips sdt content in python-docx; the XML text must still be there."""
    data = make_docx(OPOLE, values(1), style="controls")
    xml_text = "".join(document_xml(data).itertext())
    assert "Anna Kowalska-Nowak" in xml_text and "a.kowalska@um.example.pl" in xml_text


# --------------------------------------------------------------------------- determinism and errors


@pytest.mark.parametrize("style", STYLES)
def test_deterministic(style: Style) -> None:
    assert make_docx(OPOLE, values(3), style=style) == make_docx(OPOLE, values(3), style=style)
    assert make_docx(OPOLE, style=style) == make_docx(OPOLE, style=style)


def test_fixed_core_properties() -> None:
    props = docx.Document(io.BytesIO(make_docx(OPOLE))).core_properties
    assert props.title == "Zgłoszenie uczestnictwa"
    assert props.created == props.modified == dt.datetime(2016, 3, 19, 9, 0, tzinfo=dt.UTC)
    with zipfile.ZipFile(io.BytesIO(make_docx(OPOLE))) as zf:
        assert {i.date_time for i in zf.infolist()} == {(2016, 3, 19, 9, 0, 0)}


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="workshop"):
        make_docx(OPOLE, values(1, workshops=frozenset({"C"})))
    with pytest.raises(ValueError, match="style"):
        make_docx(OPOLE, style="legacy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rows"):
        make_docx(OPOLE, rows=-1)


# --------------------------------------------------------------------------- round trip through the parser


def parser() -> Callable[..., Any]:
    """``mailbot.forms.parse_bytes``, or skip while the parser is not written yet."""
    try:
        module = importlib.import_module("mailbot.forms")
    except ImportError:  # pragma: no cover - depends on the parser's progress
        pytest.skip("mailbot.forms.parse_bytes not available yet")
    parse = getattr(module, "parse_bytes", None)
    if parse is None:
        pytest.skip("mailbot.forms.parse_bytes not available yet")
    return parse  # type: ignore[no-any-return]


def real_problems(form: Any) -> list[tuple[str, str]]:
    return sorted((p.field, p.code) for p in form.problems if p.code != "low_confidence")


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("n", range(1, 8))
def test_round_trip(style: Style, n: int) -> None:
    parse = parser()
    filled = values(n, workshops=frozenset({"A", "B"}) if n % 2 else frozenset({"B"}), newsletter=n % 3 == 0)
    form = parse(make_docx(OPOLE, filled, style=style), "x.docx", events=EVENTS)
    assert form.status == "ok"
    assert form.format == "docx"
    assert form.method == ("fields" if style == "controls" else "table")
    assert form.event == "opole-2016"
    assert form.institution == Institution(
        name="Urząd Miejski w Brzezinie Opolskiej",
        address="ul. Rynek 12, 46-320 Brzezina Opolska",
        phone="+48774132010",
        email="sekretariat@um.example.pl",
    )
    assert form.participants == [Participant(name, pos, e164(phone), mail) for name, pos, phone, mail in PEOPLE[:n]]
    assert form.workshops == sorted(filled.workshops)
    assert form.remarks == "dieta wegetariańska"
    assert form.consents == filled.consents
    assert real_problems(form) == []


@pytest.mark.parametrize("style", STYLES)
def test_round_trip_blank_form(style: Style) -> None:
    form = parser()(make_docx(OPOLE, style=style), "zgloszenie.docx", events=EVENTS)
    assert form.status == "ok"
    assert form.event == "opole-2016"
    assert form.participants == []
    assert form.workshops == []
    assert form.remarks is None
    assert form.consents == Consents(False, False)
    assert {"institution.name", "participants", "consents.data_processing"} <= {f for f, _ in real_problems(form)}


@pytest.mark.parametrize("style", STYLES)
def test_round_trip_gaps_are_problems(style: Style) -> None:
    filled = FilledValues(
        institution=Institution(name="Urząd Gminy Lipowiec Opolski"),
        participants=[Participant("Joanna Mazur", "Sekretarz Gminy", "77 461 30 12", None)],
        workshops=frozenset(),
        remarks=None,
        consents=Consents(),
        place_date=None,
    )
    form = parser()(make_docx(OPOLE, filled, style=style), "x.docx", events=EVENTS)
    assert form.status == "ok"
    assert form.participants == [Participant("Joanna Mazur", "Sekretarz Gminy", "+48774613012", None)]
    assert form.institution == Institution(name="Urząd Gminy Lipowiec Opolski")
    assert real_problems(form) == [("consents.data_processing", "missing"), ("participants[0].email", "missing")]


@pytest.mark.parametrize("style", STYLES)
def test_round_trip_other_event(style: Style) -> None:
    form = parser()(make_docx(LUBLIN, values(1), style=style), "x.docx", events=EVENTS)
    assert form.status == "ok"
    assert form.event == "lublin-2016"


# --------------------------------------------------------------------------- pdf

ORGANISERS_PDF_FIELDS = [
    "institution.name",
    "institution.address",
    "institution.phone",
    "institution.email",
    *(f"participants[{i}].{f}" for i in range(3) for f in ("full_name", "position", "phone", "email")),
    "workshops.A",
    "workshops.B",
    "remarks",
    "consents.data_processing",
    "consents.newsletter",
    "signature.place_date",
]


def make_pdf_or_skip() -> Callable[..., bytes]:
    pytest.importorskip("reportlab", reason="reportlab (optional) not installed")
    from mailbot.forms.blank import _FONT_DIR, make_pdf

    if not (_FONT_DIR / "DejaVuSans.ttf").is_file():
        pytest.skip("DejaVu fonts (Debian fonts-dejavu-core) not installed")
    return make_pdf


def pdf_fields(data: bytes) -> dict[str, Any]:
    from pypdf import PdfReader

    fields = PdfReader(io.BytesIO(data)).get_fields() or {}
    return {name: f.get("/V") for name, f in fields.items()}


def test_pdf_blank_has_the_organisers_fields_and_text() -> None:
    from pypdf import PdfReader

    data = make_pdf_or_skip()(OPOLE)
    assert list(pdf_fields(data)) == ORGANISERS_PDF_FIELDS
    assert set(pdf_fields(data).values()) == {"", "/Off"}
    text = PdfReader(io.BytesIO(data)).pages[0].extract_text()
    assert header_line(OPOLE) in text
    assert "Zgłoszenia prosimy przesyłać do 14 kwietnia 2016 r. na adres e-mail organizatora." in text


def test_pdf_filled_values() -> None:
    data = make_pdf_or_skip()(OPOLE, values(5, workshops=frozenset({"B"}), newsletter=True))
    fields = pdf_fields(data)
    assert fields["institution.name"] == "Urząd Miejski w Brzezinie Opolskiej"
    assert fields["participants[4].full_name"] == "Ewa Ćwiklińska"
    assert fields["participants[1].email"] == "l.zolkiewski@um.example.pl"
    assert fields["remarks"] == "dieta wegetariańska"
    assert fields["signature.place_date"] == "Brzezina Opolska, 8.04.2016"
    assert (fields["workshops.A"], fields["workshops.B"]) == ("/Off", "/Yes")
    assert (fields["consents.data_processing"], fields["consents.newsletter"]) == ("/Yes", "/Yes")
    assert "participants[5].full_name" not in fields


def test_pdf_deterministic_and_limits() -> None:
    make_pdf = make_pdf_or_skip()
    assert make_pdf(OPOLE, values(2)) == make_pdf(OPOLE, values(2))
    with pytest.raises(ValueError, match="12"):
        make_pdf(OPOLE, FilledValues(Institution(), [Participant()] * 13, (), None, Consents(), None))


@pytest.mark.parametrize("n", [1, 3, 7])
def test_pdf_round_trip(n: int) -> None:
    data = make_pdf_or_skip()(OPOLE, values(n, workshops=frozenset({"A", "B"})))
    form = parser()(data, "x.pdf", events=EVENTS)
    assert (form.status, form.format, form.method, form.event) == ("ok", "pdf", "fields", "opole-2016")
    assert form.participants == [Participant(name, pos, e164(phone), mail) for name, pos, phone, mail in PEOPLE[:n]]
    assert form.institution is not None and form.institution.name == "Urząd Miejski w Brzezinie Opolskiej"
    assert form.workshops == ["A", "B"]
    assert form.consents == Consents(True, False)
    assert real_problems(form) == []
