"""The filled examples and blank organiser forms read exactly as docs/forms.md promises.

The organisers' examples and blank forms live in ``../shared`` (skipped without it);
the same checks run on the project's own generated copies (``make_docx``/``make_pdf``)
always. A few docx variants are built here from body XML to pin behaviours the
examples don't show (legacy form fields, untagged content controls, deleted options,
another event of the cycle, no header, not a form).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from mailbot.forms import parse_bytes, parse_file
from mailbot.forms.blank import FilledValues, make_docx as make_form_docx, make_pdf
from mailbot.forms.model import Consents, EventRef, Institution, Participant

from .cycle import OPOLE

try:
    from tests.shared import BLANK, EXAMPLES, HAS_BLANK, example, needs_examples, or_skip
except ImportError:
    from shared import BLANK, EXAMPLES, HAS_BLANK, example, needs_examples, or_skip  # type: ignore[no-redef]

TITLE = "Współpraca w partnerstwach samorządowych"
EVENTS = [
    EventRef("szczecin-2016", TITLE, "Szczecin", dt.date(2016, 3, 7)),
    EventRef("torun-2016", TITLE, "Toruń", dt.date(2016, 3, 14)),
    EventRef("lublin-2016", TITLE, "Lublin", dt.date(2016, 3, 21)),
    EventRef("opole-2016", TITLE, "Opole", dt.date(2016, 4, 18)),
]

SUPPORTED_FORMATS = {"docx", "pdf", "odt"}


def _expected() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for path in sorted(EXAMPLES.glob("*.expected.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out.append((path.with_name(path.name.removesuffix(".expected.json")), data))
    return out


def _comparable(data: dict[str, Any]) -> dict[str, Any]:
    """The contract compares problems by field and code; messages may be worded freely."""
    return {**data, "problems": [(p["field"], p["code"]) for p in data["problems"]]}


TEXT_EXAMPLES = [
    pytest.param(path, data, id=path.name)
    for path, data in _expected()
    if data["format"] in SUPPORTED_FORMATS and data["method"] != "ocr"
]
OCR_EXAMPLES = [
    pytest.param(path, data, id=path.name)
    for path, data in _expected()
    if data["method"] == "ocr"
]

# The project's own filled copies, in the organisers' three layouts, with the JSON the
# contract promises for them: the examples' checks on fixtures every clone has.
FILLED = FilledValues(
    institution=Institution(
        name="Urząd Miejski w Brzezinie Opolskiej",
        address="ul. Rynek 12, 46-320 Brzezina Opolska",
        phone="(077) 413 20 10",
        email="Sekretariat@UM.Example.PL",
    ),
    participants=[
        Participant("Anna Kowalska-Nowak", "Kierownik Referatu Rozwoju", "77 123 45 61", "a.kowalska@um.example.pl"),
        Participant("Łukasz Żółkiewski", "Sekretarz Gminy", "601 234 562", None),
        Participant("Nowak Ewa", None, None, "e.nowak@um.example.pl"),
    ],
    workshops={"A", "B"},
    remarks="dieta wegetariańska",
    consents=Consents(data_processing=True, newsletter=False),
    place_date="Brzezina Opolska, 8.04.2016",
)


def _generated_expected(file: str, fmt: str, method: str) -> dict[str, Any]:
    return {
        "file": file, "status": "ok", "format": fmt, "method": method, "event": "opole-2016",
        "institution": {
            "name": "Urząd Miejski w Brzezinie Opolskiej",
            "address": "ul. Rynek 12, 46-320 Brzezina Opolska",
            "phone": "+48774132010",
            "email": "Sekretariat@um.example.pl",
        },
        "participants": [
            {"full_name": "Anna Kowalska-Nowak", "position": "Kierownik Referatu Rozwoju",
             "phone": "+48771234561", "email": "a.kowalska@um.example.pl"},
            {"full_name": "Łukasz Żółkiewski", "position": "Sekretarz Gminy", "phone": "+48601234562", "email": None},
            {"full_name": "Nowak Ewa", "position": None, "phone": None, "email": "e.nowak@um.example.pl"},
        ],
        "workshops": ["A", "B"],
        "remarks": "dieta wegetariańska",
        "consents": {"data_processing": True, "newsletter": False},
        "problems": [{"field": "participants[1].email", "code": "missing", "message": "x"}],
    }  # fmt: skip


GENERATED = {
    "tabela.docx": (lambda v: make_form_docx(OPOLE, v, style="table"), "docx", "table"),
    "kontrolki.docx": (lambda v: make_form_docx(OPOLE, v, style="controls"), "docx", "fields"),
    "formularz.pdf": (lambda v: make_pdf(OPOLE, v), "pdf", "fields"),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_example_matches_expected_json(name: str) -> None:
    make, fmt, method = GENERATED[name]
    got = parse_bytes(make(FILLED), name, EVENTS).to_json()
    assert _comparable(got) == _comparable(_generated_expected(name, fmt, method))
    for problem in got["problems"]:
        assert problem["message"].strip()


@needs_examples
def test_examples_are_there() -> None:
    assert len(TEXT_EXAMPLES) >= 7
    assert OCR_EXAMPLES


@pytest.mark.parametrize(("path", "expected"), or_skip(TEXT_EXAMPLES, 2))
def test_example_matches_expected_json(path: Path, expected: dict[str, Any]) -> None:
    got = parse_file(path, EVENTS).to_json()
    assert _comparable(got) == _comparable(expected)
    for problem in got["problems"]:
        assert problem["message"].strip()


@pytest.mark.slow
@pytest.mark.parametrize(("path", "expected"), or_skip(OCR_EXAMPLES, 2))
def test_scan_matches_expected_json(path: Path, expected: dict[str, Any]) -> None:
    # A printed, hand-signed, scanned form is read by OCR exactly (problems: [] too).
    got = parse_file(path, EVENTS).to_json()
    assert _comparable(got) == _comparable(expected)


BLANK_PROBLEMS = [
    ("institution.name", "missing"),
    ("participants", "missing"),
    ("consents.data_processing", "missing"),
]


BLANKS: list[Any] = [
    pytest.param(lambda: make_form_docx(OPOLE, style="table"), "pusty.docx", id="generated-table.docx"),
    pytest.param(lambda: make_form_docx(OPOLE, style="controls"), "pusty.docx", id="generated-controls.docx"),
    pytest.param(lambda: make_pdf(OPOLE), "pusty.pdf", id="generated.pdf"),
    *(
        pytest.param(path.read_bytes, path.name, id=path.name)
        for path in (sorted(BLANK.iterdir()) if HAS_BLANK else [])
    ),
]


@pytest.mark.parametrize(("read", "name"), BLANKS)
def test_blank_form_is_ok_with_gaps(read: Any, name: str) -> None:
    path = Path(name)
    got = parse_bytes(read(), name, EVENTS)
    assert got.status == "ok"
    assert got.event == "opole-2016"
    assert got.participants == []
    assert got.workshops == []
    assert got.consents is not None and not got.consents.data_processing
    assert [(p.field, p.code) for p in got.problems] == BLANK_PROBLEMS
    assert got.institution is not None
    assert all(v is None for v in vars(got.institution).values())
    if path.suffix == ".pdf":
        assert got.method == "fields"


@pytest.mark.parametrize("source", ["generated", "shared"])
def test_parse_bytes_ignores_the_file_name(source: str) -> None:
    if source == "shared":
        data = example("zgloszenie_UM_Brzeg.docx").read_bytes()
    else:
        data = make_form_docx(OPOLE, FILLED)
    got = parse_bytes(data, "scan.pdf", EVENTS)
    assert got.format == "docx"
    assert got.file == "scan.pdf"
    assert got.status == "ok"


# --- variants built from body XML ------------------------------------------------------

_NS = (
    'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
    'xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml"'
)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")


def p(*parts: str) -> str:
    runs = "".join(
        part
        if part.startswith("<")
        else f'<w:r><w:t xml:space="preserve">{_esc(part)}</w:t></w:r>'
        for part in parts
    )
    return f"<w:p>{runs}</w:p>"


def tbl(rows: list[list[str]]) -> str:
    def cells(row: list[str]) -> str:
        return "".join(
            f"<w:tc>{c if c.startswith('<w:p') else p(c)}</w:tc>" for c in row
        )

    return "<w:tbl>" + "".join(f"<w:tr>{cells(r)}</w:tr>" for r in rows) + "</w:tbl>"


def formtext(name: str, value: str) -> str:
    return (
        f'<w:r><w:fldChar w:fldCharType="begin"><w:ffData><w:name w:val="{name}"/><w:textInput/>'
        "</w:ffData></w:fldChar></w:r>"
        '<w:r><w:instrText xml:space="preserve"> FORMTEXT </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        f'<w:r><w:t xml:space="preserve">{_esc(value)}</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )


def formcheck(name: str, checked: bool) -> str:
    state = "<w:checked/>" if checked else ""
    return (
        f'<w:r><w:fldChar w:fldCharType="begin"><w:ffData><w:name w:val="{name}"/><w:checkBox>'
        f'<w:sizeAuto/><w:default w:val="0"/>{state}</w:checkBox></w:ffData></w:fldChar></w:r>'
        '<w:r><w:instrText xml:space="preserve"> FORMCHECKBOX </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )


def sdt(value: str, *, tag: str = "", placeholder: bool = False) -> str:
    flag = "<w:showingPlcHdr/>" if placeholder else ""
    return (
        f'<w:sdt><w:sdtPr><w:tag w:val="{tag}"/>{flag}<w:text/></w:sdtPr>'
        f"<w:sdtContent><w:r><w:t>{_esc(value)}</w:t></w:r></w:sdtContent></w:sdt>"
    )


def sdt_box(checked: bool) -> str:
    return (
        f'<w:sdt><w:sdtPr><w14:checkbox><w14:checked w14:val="{int(checked)}"/></w14:checkbox></w:sdtPr>'
        f"<w:sdtContent><w:r><w:t>{'☒' if checked else '☐'}</w:t></w:r></w:sdtContent></w:sdt>"
    )


def make_docx(body: str) -> bytes:
    xml = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {_NS}><w:body>{body}</w:body></w:document>'
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        z.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="word/document.xml"/></Relationships>',
        )
        z.writestr("word/document.xml", xml)
    return out.getvalue()


HEADER = p("ZGŁOSZENIE UCZESTNICTWA") + p(f"w konferencji informacyjnej „{TITLE}”")


def parse_body(body: str) -> dict[str, Any]:
    return parse_bytes(make_docx(body), "variant.docx", EVENTS).to_json()


def test_running_text_variant_for_lublin() -> None:
    got = parse_body(
        HEADER
        + p("w Lublinie, 21.03.2016 r.")
        + p("NAZWA INSTYTUCJI: Urzad Gminy Test")
        + p("Tel. (081) 5321100")
        + p("Adres e-mail: Biuro@Test.PL")
        + p("Uczestnicy")
        + p("Nazwisko i imię: Kowalski Jan")
        + p("Stanowisko: Wójt")
        + p("E-mail: jan@test")
        + p("Nazwisko i imię: Nowak Anna")
        + p("Telefon kom.: 600 100 200")
        + p("Udział w dyskusjach warsztatowych")
        + p("B – Zarządzanie relacjami w partnerstwie")
        + p("Wyrażam zgodę na przetwarzanie danych osobowych zawartych w zgłoszeniu ✓")
        + p("Zgłoszenia prosimy przesyłać do 14 marca 2016 r.")
    )
    assert got["event"] == "lublin-2016"
    assert got["method"] == "text"
    assert got["institution"] == {
        "name": "Urzad Gminy Test",
        "address": None,
        "phone": "+48815321100",
        "email": "Biuro@test.pl",
    }
    assert got["participants"] == [
        {
            "full_name": "Kowalski Jan",
            "position": "Wójt",
            "phone": None,
            "email": "jan@test",
        },
        {
            "full_name": "Nowak Anna",
            "position": None,
            "phone": "+48600100200",
            "email": None,
        },
    ]
    assert got["workshops"] == [
        "B"
    ]  # the other option was deleted: the one left is chosen
    assert got["consents"] == {"data_processing": True, "newsletter": False}
    assert [(x["field"], x["code"]) for x in got["problems"]] == [
        ("participants[0].email", "invalid"),
        ("participants[1].email", "missing"),
    ]


def test_legacy_form_fields() -> None:
    got = parse_body(
        HEADER
        + p("Toruń, 14 marca 2016")
        + tbl(
            [
                ["Instytucja / Urząd:", p(formtext("Tekst1", "Gmina Lubicz"))],
                ["Tel.:", p(formtext("Tekst2", "\u2002\u2002\u2002\u2002\u2002"))],
                ["e-mail", p(formtext("Tekst3", "gmina@lubicz.pl"))],
            ]
        )
        + tbl(
            [
                ["Lp.", "Nazwisko i imię", "Funkcja", "Tel.", "Adres e-mail"],
                [
                    "1.",
                    p(formtext("a", "Zieliński Marek")),
                    "Sekretarz",
                    "56 678 11 22",
                    p(formtext("b", "     ")),
                ],
                ["2.", "", "", "", ""],
            ]
        )
        + p(formcheck("c1", True), " A – Zarządzanie strategiczne w partnerstwie")
        + p(formcheck("c2", False), " B – Zarządzanie relacjami w partnerstwie")
        + p(formcheck("c3", True), " Wyrażam zgodę na przetwarzanie danych osobowych")
        + p("Miejscowość, data: Lubicz, 1 marca 2016")
    )
    assert got["method"] == "fields"
    assert got["event"] == "torun-2016"
    assert got["institution"]["name"] == "Gmina Lubicz"
    assert got["institution"]["phone"] is None  # Word's blank en-spaces are empty
    assert got["participants"] == [
        {
            "full_name": "Zieliński Marek",
            "position": "Sekretarz",
            "phone": "+48566781122",
            "email": None,
        }
    ]
    assert got["workshops"] == ["A"]
    assert got["consents"]["data_processing"] is True


def test_untagged_content_controls_and_placeholders() -> None:
    got = parse_body(
        HEADER
        + p("Opole, 18 kwietnia 2016")
        + tbl(
            [
                [
                    "Nazwa jednostki samorządu terytorialnego / instytucji:",
                    p(sdt("Gmina Z")),
                ],
                [
                    "Adres:",
                    p(sdt("Kliknij tutaj, aby wprowadzić tekst.", placeholder=True)),
                ],
                ["Telefon:", p(sdt("Click or tap here to enter text."))],
            ]
        )
        + p("Imię i nazwisko uczestnika: ", sdt("Ala Ma"))
        + p("E-mail: ", sdt("ala@z.pl"))
        + p(sdt_box(True), " Wyrażam zgodę na przetwarzanie danych osobowych")
        + p(
            sdt_box(False),
            " Wyrażam zgodę na otrzymywanie informacji o kolejnych wydarzeniach",
        )
    )
    assert got["method"] == "fields"
    assert got["institution"] == {
        "name": "Gmina Z",
        "address": None,
        "phone": None,
        "email": None,
    }
    assert got["participants"] == [
        {"full_name": "Ala Ma", "position": None, "phone": None, "email": "ala@z.pl"}
    ]
    assert got["consents"] == {"data_processing": True, "newsletter": False}
    assert got["problems"] == []


def test_values_on_the_line_after_their_label() -> None:
    got = parse_body(
        HEADER
        + p("Szczecin, 7 marca 2016 r.")
        + p("Nazwa jednostki samorządu terytorialnego / instytucji:")
        + p("Urząd Gminy Police")
        + p("Adres (ulica, kod pocztowy, miejscowość):")
        + p("ul. Stefana Batorego 3")
        + p("72-010 Police")
        + p("Imię i nazwisko:")
        + p("Ewa Lis")
        + p("Telefon:", "<w:r><w:br/></w:r>", "91 311 22 33")
        + p("☒ Wyrażam zgodę na przetwarzanie danych osobowych")
    )
    assert got["event"] == "szczecin-2016"
    assert got["institution"]["name"] == "Urząd Gminy Police"
    assert got["institution"]["address"] == "ul. Stefana Batorego 3, 72-010 Police"
    assert got["participants"] == [
        {
            "full_name": "Ewa Lis",
            "position": None,
            "phone": "+48913112233",
            "email": None,
        }
    ]


def test_whole_form_inside_a_layout_table() -> None:
    inner = (
        HEADER
        + p("Szczecin, 7 marca 2016 r.")
        + p("1. Dane instytucji")
        + p("Instytucja: Gmina W")
        + p("Telefon: 91 123 45 67", "<w:r><w:br/></w:r>", "E-mail: gmina@w.pl")
        + p("2. Uczestnicy")
        + tbl(
            [
                ["Lp.", "Imię i nazwisko", "Stanowisko", "Telefon", "E-mail"],
                ["1.", "Jan Wrona", "Wójt", "", "jan@w.pl"],
                ["2.", "", "", "", ""],
                ["3.", "Anna Sroka", "", "500600700", ""],
                ["4. Uwagi:", "brak"],
            ]
        )
        + p("☒ B – Zarządzanie relacjami w partnerstwie")
        + p("☐ A – Zarządzanie strategiczne w partnerstwie")
        + p("☒ Wyrażam zgodę na przetwarzanie danych osobowych")
    )
    got = parse_body(f"<w:tbl><w:tr><w:tc>{inner}</w:tc></w:tr></w:tbl>")
    assert got["method"] == "table"
    assert got["institution"] == {
        "name": "Gmina W",
        "address": None,
        "phone": "+48911234567",
        "email": "gmina@w.pl",
    }
    assert [x["full_name"] for x in got["participants"]] == ["Jan Wrona", "Anna Sroka"]
    assert got["remarks"] == "brak"
    assert got["workshops"] == ["B"]
    assert [(x["field"], x["code"]) for x in got["problems"]] == [
        ("participants[1].email", "missing")
    ]


def test_form_without_header_has_no_event() -> None:
    got = parse_body(
        p("Nazwa instytucji: Urząd X")
        + p("Imię i nazwisko: Jan Nowak")
        + p("E-mail: nie mam")
        + p("Miejscowość, data: Opole, 18 kwietnia 2016")
        + p("x Wyrażam zgodę na przetwarzanie danych osobowych")
    )
    assert got["status"] == "ok"
    assert got["event"] is None
    assert [(x["field"], x["code"]) for x in got["problems"]] == [
        ("participants[0].email", "invalid"),
        ("event", "unknown"),
    ]
    assert got["participants"][0]["email"] == "nie mam"  # kept as written


def test_event_with_wrong_date_is_unknown() -> None:
    got = parse_body(HEADER + p("Opole, 14 marca 2016") + p("Instytucja: Gmina Q"))
    assert got["event"] is None
    assert ("event", "unknown") in [(x["field"], x["code"]) for x in got["problems"]]


def test_ticks_after_the_option() -> None:
    got = parse_body(
        HEADER
        + p("Opole, 18 kwietnia 2016")
        + p("Instytucja: Gmina Q")
        + p("A – Zarządzanie strategiczne w partnerstwie x")
        + p("B – Zarządzanie relacjami w partnerstwie ☐")
        + p("☑ Wyrażam zgodę na przetwarzanie danych osobowych")
        + p("□ Wyrażam zgodę na otrzymywanie informacji o kolejnych wydarzeniach")
    )
    assert got["workshops"] == ["A"]
    assert got["consents"] == {"data_processing": True, "newsletter": False}


def test_other_document_is_not_a_form() -> None:
    got = parse_body(
        p("FAKTURA VAT")
        + tbl([["Nazwa", "Ilość"], ["Usługa", "1"]])
        + p("Telefon: 123 456 789")
    )
    assert got["status"] == "not_a_form"
    assert got["reason"]
    assert got["institution"] is None and got["participants"] == []
