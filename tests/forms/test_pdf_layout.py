"""Text PDFs read by their layout: ruled table cells, line-end hyphens, tables across
pages, flattened forms (see ``mailbot.forms.pdf_page``), other producers (Ghostscript,
LibreOffice from .odt/.doc, tables drawn with row lines only, glyph-by-glyph text,
turned pages), field by field.

The copies come from ``pdfgen`` and ``pdfdraw``; Word-printed ones need LibreOffice
and Ghostscript-distilled ones ``gs`` (Debian ``ghostscript``), and are skipped
without them (the canvas-drawn ones exercise the same cells without either).
"""

from __future__ import annotations

import functools
from dataclasses import replace
import shutil
from collections import defaultdict
from typing import Any

import pypdfium2 as pdfium
import pytest

from mailbot.forms import DEFAULT_LIMITS, parse_bytes
from mailbot.forms.blank import FilledValues, make_docx, make_pdf
from mailbot.forms.extract import Block, Document, Para
from mailbot.forms.labels import default_vocabulary
from mailbot.forms.model import Consents, EventRef, FormData, Institution, Participant
from mailbot.forms.pdf import read_pdf
from mailbot.forms.pdf_objects import _unswap
from tests.forms import pdfgen
from tests.forms.pdfdraw import Style, ascii_values, drawn_form, rotated
from tests.forms.scoring import Score, flat_fields, score

EVENTS = [EventRef("opole-2016", pdfgen.TITLE, "Opole", pdfgen.OPOLE.date)]
needs_soffice = pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice not installed")

WRAPPING = FilledValues(
    institution=Institution(
        "Starostwo Powiatowe w Strzelcach Opolskich", "ul. Jordanowska 2, 47-100 Strzelce Opolskie",
        "77 440 17 00", "sekretariat.starostwa@powiatstrzelecki.pl",
    ),
    participants=[
        Participant("Agnieszka Kwiatkowska-Krawczyk", "Naczelnik Wydziału Rozwoju, Promocji i Współpracy Zagranicznej",
                    "+48 507 634 291", "agnieszka.kwiatkowska-krawczyk@powiatstrzelecki.pl"),
        Participant("Bożena Ćwik-Górska", "Inspektor", "(77) 461-22-33", "b.cwik-gorska@powiatstrzelecki.pl"),
        *(Participant(f"Łukasz Żółkiewski {chr(65 + i)}", "Podinspektor ds. funduszy", f"601 234 56{i}",
                      f"zolkiewski.{chr(97 + i)}@powiatstrzelecki.pl") for i in range(10)),
    ],
    workshops={"B"},
    remarks="Prosimy o posiłek wegetariański dla dwóch osób oraz o miejsce parkingowe dla osoby "
    "z niepełnosprawnością ruchową, która przyjedzie samochodem",
    consents=Consents(True, False),
    place_date="Strzelce Opolskie, 5.04.2016",
)  # fmt: skip


def parse(data: bytes) -> FormData:
    return parse_bytes(data, "zgloszenie.pdf", EVENTS)


def assert_reads(data: bytes, values: FilledValues) -> None:
    """Every field, compared one by one (a failure lists the fields that differ)."""
    got, want = flat_fields(parse(data)), flat_fields(pdfgen.expected(values))
    assert {k: v for k, v in got.items() if want.get(k) != v} == {}
    assert got == want


def texts(blocks: list[Block]) -> str:
    out = []
    for block in blocks:
        if isinstance(block, Para):
            out.append("".join(i if isinstance(i, str) else i.render() for i in block.inlines))
        else:
            out.extend(texts(cell) for row in block.rows for cell in row)
    return "\n".join(out)


@functools.cache
def word_pdf() -> bytes:
    pdf = pdfgen.to_pdf([make_docx(pdfgen.OPOLE, WRAPPING, rows=12)])[0]
    assert pdf is not None, "LibreOffice did not convert the form"
    return pdf


# --- 1. PDF printed from Word: wrapped cells, hyphens, page 2, remarks ---------------


@needs_soffice
def test_word_pdf_reads_every_field_of_wrapped_cells_and_the_table_on_page_2() -> None:
    assert len(pdfium.PdfDocument(word_pdf())) >= 2  # the table runs onto page 2
    assert_reads(word_pdf(), WRAPPING)


@needs_soffice
def test_a_wrapped_email_stays_in_its_cell_and_the_phone_next_to_it_is_clean() -> None:
    first = parse(word_pdf()).participants[0]
    assert (first.phone, first.email) == ("+48507634291", "agnieszka.kwiatkowska-krawczyk@powiatstrzelecki.pl")


@needs_soffice
def test_a_hyphen_printed_at_a_line_end_is_kept_and_no_pdfium_mark_is_left() -> None:
    doc = read_pdf(word_pdf(), DEFAULT_LIMITS, default_vocabulary())
    text = texts(doc.blocks)
    assert "\x02" not in text and "\ufffe" not in text
    assert "Kwiatkowska-\nKrawczyk" in text or "Kwiatkowska-Krawczyk" in text
    assert parse(word_pdf()).participants[0].full_name == "Agnieszka Kwiatkowska-Krawczyk"


@needs_soffice
def test_participants_on_page_2_belong_to_the_same_table() -> None:
    people = parse(word_pdf()).participants
    assert [p.full_name for p in people] == [p.full_name for p in WRAPPING.participants]


@needs_soffice
def test_wrapped_remarks_keep_their_second_line() -> None:
    assert parse(word_pdf()).remarks == WRAPPING.remarks


def test_a_reportlab_table_of_wrapped_paragraph_cells_keeps_each_cell_whole() -> None:
    """reportlab breaks a long e-mail anywhere: the cell hands over its two lines (how
    they join is the extractor's call) and nothing leaks into the next column."""
    data = pdfgen.reportlab_pdf(pdfgen.OPOLE, WRAPPING)
    text = texts(read_pdf(data, DEFAULT_LIMITS, default_vocabulary()).blocks)
    email = WRAPPING.participants[0].email
    assert email is not None and email not in text and email in text.replace("\n", "")
    got, want = flat_fields(parse(data)), flat_fields(pdfgen.expected(WRAPPING))
    del got["participants[0].email"], want["participants[0].email"]
    assert {k: v for k, v in got.items() if want.get(k) != v} == {}


# --- 2. flattened forms -----------------------------------------------------------------

FLAT = FilledValues(
    WRAPPING.institution,
    [Participant("Agnieszka Kwiatkowska-Krawczyk", "Naczelnik Wydziału Rozwoju", "+48 507 634 291",
                 "agnieszka.kwiatkowska-krawczyk@powiatstrzelecki.pl"), *WRAPPING.participants[1:5]],
    {"A"}, "dieta wegetariańska", Consents(True, True), "Opole",
)  # fmt: skip


def test_a_form_flattened_by_pdfium_reads_values_and_drawn_crosses() -> None:
    data = pdfgen.flatten(make_pdf(pdfgen.OPOLE, FLAT))
    assert pdfium.PdfDocument(data).get_formtype() == 0  # no AcroForm left
    assert_reads(data, FLAT)


def test_values_drawn_where_the_fields_were_with_zapfdingbats_ticks_read() -> None:
    blank = make_pdf(pdfgen.OPOLE, pdfgen._blank(len(FLAT.participants)))
    assert_reads(pdfgen.drawn_over(blank, FLAT), FLAT)


def test_the_fillable_form_itself_stays_exact() -> None:
    assert_reads(make_pdf(pdfgen.OPOLE, FLAT), FLAT)


# --- all generated copies -----------------------------------------------------------


def test_generated_copies_read_accurately_in_every_bucket() -> None:
    totals: dict[str, Score] = defaultdict(Score)
    for case in pdfgen.cases():
        totals[case.kind].add(score(parse(case.data), case.expected, case.label))
    floors: dict[str, tuple[float, float]] = {  # fields right, files exact
        "pdf-word": (0.99, 0.9),
        "pdf-office": (0.99, 0.85),
        "pdf-ghostscript": (0.99, 0.9),
        "pdf-drawn": (1.0, 1.0),
        "pdf-reportlab": (1.0, 1.0),
        "pdf-flattened": (0.99, 0.85),
        "pdf-fillable": (1.0, 1.0),
    }
    needs = {"pdf-word": ["soffice"], "pdf-office": ["soffice"], "pdf-ghostscript": ["gs"]}
    report: dict[str, Any] = {k: (round(s.accuracy, 3), s.exact_files, s.files) for k, s in totals.items()}
    for kind, (fields, exact) in floors.items():
        if kind not in totals and any(shutil.which(tool) is None for tool in needs.get(kind, [])):
            continue
        s = totals[kind]
        assert s.files and s.accuracy >= fields and s.exact_files / s.files >= exact, (report, s.misses)


# --- 3. other producers: Ghostscript, LibreOffice from .odt/.doc, drawn tables ----------

needs_gs = pytest.mark.skipif(shutil.which("gs") is None, reason="Ghostscript (Debian ghostscript) not installed")
SEVEN = pdfgen.values(52, 7)


def drawn(style: Style, values: FilledValues = SEVEN) -> bytes:
    return drawn_form(pdfgen.OPOLE, values, style)


@needs_gs
@needs_soffice
def test_a_word_pdf_redistilled_by_ghostscript_reads_cell_by_cell() -> None:
    """Ghostscript draws a table row as one text object jumping across the columns
    ("1. Małgorzata Śliwińska Inspektor m.sliwinska@..."): it is cut at PDFium's
    generated spaces, and a ligature's shifted ToUnicode ("Zo昀椀a") is repaired."""
    data = pdfgen.distill(word_pdf())
    assert data is not None
    assert_reads(data, WRAPPING)


@needs_gs
def test_ghostscript_one_text_object_per_line_is_cut_into_cells() -> None:
    values = ascii_values(SEVEN)
    data = pdfgen.distill(drawn(Style(type1=True, rules="rows"), values))
    assert data is not None
    assert_reads(data, values)


def test_a_ligature_written_with_shifted_bytes_reads_as_its_letters() -> None:
    assert _unswap("Zo\u6600\u6900a Wąs") == "Zofia Wąs"
    assert _unswap("東京") == "東京"  # no Latin letters: left alone


@needs_gs
def test_a_text_layer_without_unicode_is_read_from_its_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ghostscript drops the ToUnicode maps of reportlab's TrueType subsets: the text
    layer says "Urz\x03d Gminy \x04ubniany". It is read as a scan (OCR) instead."""
    import mailbot.forms.pdf as pdf_module

    data = pdfgen.distill(make_pdf(pdfgen.OPOLE, FLAT))
    assert data is not None
    calls: list[bytes] = []

    def scan(d: bytes, *_: object) -> Document:
        calls.append(d)
        return Document(blocks=[])

    monkeypatch.setattr(pdf_module, "read_scan", scan)
    read_pdf(data, DEFAULT_LIMITS, default_vocabulary())
    assert calls == [data]
    calls.clear()
    read_pdf(make_pdf(pdfgen.OPOLE, FLAT), DEFAULT_LIMITS, default_vocabulary())
    assert calls == []


@needs_soffice
@pytest.mark.parametrize("via", ["odt", "doc"])
def test_the_form_saved_as_odt_or_doc_and_printed_reads_exactly(via: str) -> None:
    values = pdfgen.values(3, 4)
    pdf = pdfgen.to_pdf([make_docx(pdfgen.OPOLE, values, rows=4)], via=via)[0]
    assert pdf is not None
    assert_reads(pdf, values)


@pytest.mark.parametrize(
    "style",
    [Style(rules="rows"), Style(rules="rows", align="right"), Style(type1=True, rules="rows")],
    ids=["row-lines-only", "row-lines-right-aligned", "row-lines-type1"],
)
def test_a_table_ruled_with_row_lines_only_gets_its_columns_from_the_white_gaps(style: Style) -> None:
    values = ascii_values(SEVEN) if style.type1 else SEVEN
    assert_reads(drawn(style, values), values)


@pytest.mark.parametrize("split", ["words", "glyphs"])
def test_values_drawn_as_several_text_objects_join_without_false_spaces(split: str) -> None:
    """Glyph by glyph, the gap between two glyphs' boxes is their side bearings ("a" |
    "." is 0.15 em): runs PDFium sees no space between are joined; word gaps stay."""
    style = Style(split=split)  # type: ignore[arg-type]
    assert_reads(drawn(style), SEVEN)
    plain = ascii_values(SEVEN)
    assert_reads(drawn(Style(split=split, type1=True), plain), plain)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "style",
    [Style(value_bold=True, value_size=11), Style(align="right"), Style(align="center", value_size=8)],
    ids=["bold-11pt", "right-aligned", "centred-8pt"],
)
def test_values_in_another_weight_size_or_alignment_stay_in_their_cells(style: Style) -> None:
    assert_reads(drawn(style), SEVEN)


@pytest.mark.parametrize("repeat", [True, False], ids=["header-repeated", "no-header"])
@pytest.mark.parametrize("people", [1, 12])
def test_participants_across_page_breaks_with_or_without_a_repeated_header(repeat: bool, people: int) -> None:
    values = pdfgen.values(63, people)
    data = drawn(Style(row_gap=30, repeat_header=repeat), values)
    assert people == 1 or len(pdfium.PdfDocument(data)) >= 2
    assert_reads(data, values)


@pytest.mark.parametrize("turn", [90, 270])
def test_a_page_turned_by_rotate_reads_as_shown(turn: int) -> None:
    assert_reads(rotated(drawn(Style(rules="rows")), turn), SEVEN)


def test_a_glyph_without_unicode_is_marked_not_dropped() -> None:
    """PDFium's flattening draws "–" in a fallback CID font it has no Unicode for: the
    remarks keep a U+FFFD where it is (not "inwalidzkim prosimy"), and the fallback's
    spaces (drawn, with no room for more) are not taken for glyphs."""
    values = replace(FLAT, remarks=pdfgen.REMARKS[2])
    text = texts(read_pdf(pdfgen.flatten(make_pdf(pdfgen.OPOLE, values)), DEFAULT_LIMITS,
                          default_vocabulary()).blocks)  # fmt: skip
    assert "inwalidzkim \ufffd prosimy" in text
    assert text.count("\ufffd") == 1


def test_a_generated_space_before_a_font_fallback_glyph_is_dropped() -> None:
    """A position overflowing its field: PDFium's text of "…i Wspó" ends in a space it
    made up before the fallback font's "ł" drawn flush after it."""
    values = pdfgen.values(34, 12)
    got = parse(pdfgen.flatten(make_pdf(pdfgen.OPOLE, values)))
    assert [p.position for p in got.participants] == [p.position for p in values.participants]


@needs_soffice
def test_a_value_typed_after_its_label_and_wrapped_at_the_margin_reads_whole() -> None:
    # Running text printed to PDF: "Nazwa …: Starostwo Powiatowe w" ↵ "Strzelcach Opolskich".
    long_name = replace(
        WRAPPING,
        institution=replace(
            WRAPPING.institution,
            name="Starostwo Powiatowe w Strzelcach Opolskich, Wydział Rozwoju Powiatu i Współpracy z Zagranicą",
        ),
        participants=WRAPPING.participants[:2],
    )
    from tests.forms.scangen import running_text_docx

    pdf = pdfgen.to_pdf([running_text_docx(long_name)])[0]
    assert pdf is not None
    form = parse(pdf)
    assert form.institution is not None
    assert form.institution.name == long_name.institution.name
    assert [p.full_name for p in form.participants] == [p.full_name for p in long_name.participants]
