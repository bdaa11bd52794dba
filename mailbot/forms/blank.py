"""The project's own copy of the registration form ("Zgłoszenie uczestnictwa").

The bot attaches a blank form to "no_form" replies and the demo needs filled-in forms to
feed the pipeline, so both come from here rather than from files shipped next to the
package. The layout, wording and content-control tags mirror the organisers' own .docx
and .pdf (see docs/forms.md) so that what we generate is read exactly like what people send.
All output is deterministic: fixed document dates and zip timestamps, fixed control ids.
"""

from __future__ import annotations

import datetime as dt
import io
import textwrap
import unicodedata
import zipfile
import zlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import docx
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt, RGBColor, Twips
from docx.text.paragraph import Paragraph
from lxml import etree

from mailbot.config import DEFAULT_CONSENT_TEXTS, DEFAULT_WORKSHOPS
from mailbot.forms.model import Consents, Institution, Participant

if TYPE_CHECKING:
    from mailbot.forms.labels import Vocabulary

__all__ = [
    "CONSENT_TEXTS",
    "DOCX_MIME",
    "PLACEHOLDER_TEXT",
    "WORKSHOPS",
    "EventHeader",
    "FilledValues",
    "header_line",
    "make_docx",
    "make_pdf",
    "polish_date",
    "with_event_options",
]

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

PLACEHOLDER_TEXT = "Kliknij lub naciśnij tutaj, aby wprowadzić tekst."
"""What Word (Polish UI) shows in an empty text content control."""

WORKSHOPS: dict[str, str] = {w.key: w.title for w in DEFAULT_WORKSHOPS}
"""The default workshop options (letter → title); an event's come from the config
(``workshops``) through :attr:`EventHeader.workshops`."""

CONSENT_TEXTS: dict[str, str] = dict(DEFAULT_CONSENT_TEXTS)
"""The default consent texts; an event's come from the config (``consents``) through
:attr:`EventHeader.consent_data_processing` and ``consent_newsletter``."""

_CONSENT_ALIASES = {"data_processing": "Zgoda na przetwarzanie danych", "newsletter": "Zgoda na informacje o wydarzeniach"}

INSTITUTION_LABELS: tuple[tuple[str, str, str], ...] = (
    # (field, label on the form, content-control alias)
    ("name", "Nazwa jednostki samorządu terytorialnego / instytucji:", "Nazwa instytucji"),
    ("address", "Adres (ulica, kod pocztowy, miejscowość):", "Adres instytucji"),
    ("phone", "Telefon:", "Telefon instytucji"),
    ("email", "E-mail:", "E-mail instytucji"),
)

PARTICIPANT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (field, column header, content-control alias prefix)
    ("full_name", "Imię i nazwisko", "Imię i nazwisko"),
    ("position", "Stanowisko / funkcja", "Stanowisko"),
    ("phone", "Telefon", "Telefon"),
    ("email", "E-mail", "E-mail"),
)

_MONTHS_GENITIVE = (
    "stycznia", "lutego", "marca", "kwietnia", "maja", "czerwca",
    "lipca", "sierpnia", "września", "października", "listopada", "grudnia",
)  # fmt: skip

_UNCHECKED, _CHECKED = "☐", "☒"
_PLACEHOLDER_STYLE_ID = "Tekstzastpczy"  # Polish Word's id for "Placeholder Text"
_BOX_FONT = "MS Gothic"  # Word's own choice for check-box glyphs
_INSTITUTION_WIDTHS = (3742, 6123)  # twips, as on the organisers' form
_PARTICIPANT_WIDTHS = (567, 2438, 2494, 1701, 2665)
_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")  # Debian fonts-dejavu-core
_PDF_MAX_ROWS = 12
_LATIN1_FALLBACK = str.maketrans({"ł": "l", "Ł": "L", "–": "-", "—": "-", "„": '"', "”": '"', "“": '"', "’": "'"})


@dataclass(frozen=True)
class EventHeader:
    """What the form's heading says about the conference.

    ``start_time`` is not printed: the organisers' form does not show it; it is kept for
    letters built from the same header.

    The organiser fields (all optional, from the config's ``[organiser]`` block) are
    printed at the foot of the form only when set: where to send the form (the e-mail
    address, which the form used to leave for people to guess), who organises it and how
    to phone them, and the data-controller line. Nothing is printed for an unset one.
    """

    title: str
    city: str
    date: dt.date
    start_time: dt.time | None
    venue: str
    address: str
    deadline: dt.date | None
    organiser_email: str | None = None
    organiser_name: str | None = None
    organiser_phone: str | None = None
    data_controller: str | None = None
    workshops: tuple[tuple[str, str], ...] = tuple(WORKSHOPS.items())
    """The workshop options, (letter, title) in form order (config ``workshops``)."""
    consent_data_processing: str = CONSENT_TEXTS["data_processing"]
    consent_newsletter: str = CONSENT_TEXTS["newsletter"]
    """The consent texts printed on the form (config ``consents``)."""

    @property
    def consent_texts(self) -> dict[str, str]:
        return {"data_processing": self.consent_data_processing, "newsletter": self.consent_newsletter}


@dataclass(frozen=True)
class FilledValues:
    """What a participant typed into the form (``None`` leaves a field empty)."""

    institution: Institution
    participants: Sequence[Participant]
    workshops: Collection[str]
    remarks: str | None
    consents: Consents
    place_date: str | None


def polish_date(day: dt.date) -> str:
    """``18 kwietnia 2016 r.``: the genitive month form Polish documents use."""
    return f"{day.day} {_MONTHS_GENITIVE[day.month - 1]} {day.year} r."


def header_line(header: EventHeader) -> str:
    """The place/date line under the title, e.g. ``Opole, 18 kwietnia 2016 r., Sala …``."""
    parts = [f"{header.city}, {polish_date(header.date)}"]
    parts += [p for p in (header.venue, header.address) if p]
    return ", ".join(parts)


def _deadline_line(header: EventHeader) -> str:
    """Where and by when to send the form: the organiser's address when configured
    (``… na adres e-mail organizatora: biuro@… .``), else the words alone."""
    when = f" do {polish_date(header.deadline)}" if header.deadline is not None else ""
    where = f": {header.organiser_email.strip()}" if header.organiser_email else ""
    return f"Zgłoszenia prosimy przesyłać{when} na adres e-mail organizatora{where}."


def _organiser_lines(header: EventHeader) -> list[str]:
    """The lines under the deadline line: organiser (name, phone) and the data
    controller, each only when configured."""
    lines: list[str] = []
    who = " ".join((header.organiser_name or "").split())
    phone = " ".join((header.organiser_phone or "").split())
    if who and phone:
        lines.append(f"Organizator: {who}, tel. {phone}")
    elif who:
        lines.append(f"Organizator: {who}")
    elif phone:
        lines.append(f"Telefon organizatora: {phone}")
    controller = " ".join((header.data_controller or "").split())
    if controller:
        lines.append(controller)
    return lines


def _doc_time(header: EventHeader) -> dt.datetime:
    """A fixed, plausible creation time (30 days before the event) for reproducible files."""
    day = header.date - dt.timedelta(days=30)
    return dt.datetime(day.year, day.month, day.day, 9, 0, tzinfo=dt.UTC)


def _check_values(values: FilledValues | None, header: EventHeader) -> None:
    if values is None:
        return
    unknown = set(values.workshops) - {letter for letter, _ in header.workshops}
    if unknown:
        raise ValueError(f"unknown workshop option(s): {sorted(unknown)}")


def with_event_options(base: Vocabulary, headers: Iterable[EventHeader]) -> Vocabulary:
    """``base`` (labels.toml) plus the configured workshop titles and consent texts of
    ``headers``' events, so a form of a cycle whose options the labels file does not
    name (workshop "C – …", a reworded consent) is read like the default one: a ticked
    line naming an option counts for its letter whatever the layout (table, PDF, scan).
    The configured wording comes first; the file's variants stay as they are. Returns
    ``base`` itself when it already reads every option."""
    from mailbot.forms.labels import Vocabulary

    workshops = {k: list(v) for k, v in base.workshops.items()}
    consents = {k: list(v) for k, v in base.consents.items()}
    added = False
    for header in headers:
        for letter, title in header.workshops:
            known = workshops.setdefault(letter, [])
            if base.match_workshop(title) != letter and title not in known:
                known.insert(0, title)
                added = True
        for key, text in header.consent_texts.items():
            known = consents.setdefault(key, [])
            if base.match_consent(text) != key and text not in known:
                known.insert(0, text)
                added = True
    if not added:
        return base
    data: dict[str, Any] = {  # labels.toml's tables, as the file would give them
        "fields": {k: list(v) for k, v in base.fields.items()},
        "sections": {k: list(v) for k, v in base.sections.items()},
        "workshops": workshops,
        "consents": consents,
        "form": {"title": list(base.titles)},
        "event": {"header": list(base.event_header), "not_event": list(base.not_event)},
        "placeholders": {"texts": list(base.placeholders)},
        "participants_table": {
            "columns": list(base.table_columns),
            "required": list(base.table_required),
            "min_columns": base.table_min_columns,
        },
    }
    return Vocabulary(data, source=base.source)


# --------------------------------------------------------------------------- docx


class _Ids:
    """Unique, stable ``w:id`` values for content controls (Word wants them unique)."""

    def __init__(self) -> None:
        self._next = 0

    def __call__(self, tag: str) -> str:
        self._next += 1
        # Spread like Word's own ids but derived from the tag, so they never change.
        return str((zlib.crc32(tag.encode()) % 900_000) * 1000 + self._next)


def _el(parent: Any, tag: str, **attrs: str) -> Any:
    """Append a namespaced child element (``w:foo``/``w14:foo``) with attributes."""
    child = OxmlElement(tag)
    for name, value in attrs.items():
        prefix = tag.split(":")[0]
        child.set(qn(f"{prefix}:{name}"), value)
    parent.append(child)
    return child


def _add_text(run: Any, text: str) -> None:
    """Write ``text`` into a ``w:r``, turning newlines into ``w:br``."""
    for i, line in enumerate(text.split("\n")):
        if i:
            _el(run, "w:br")
        t = _el(run, "w:t")
        t.set(qn("xml:space"), "preserve")
        t.text = line


def _text_control(tag: str, alias: str, value: str | None, ids: _Ids) -> Any:
    """A plain-text content control as Word writes it, showing the placeholder when empty."""
    sdt = OxmlElement("w:sdt")
    pr = _el(sdt, "w:sdtPr")
    if value is None:
        _el(_el(pr, "w:rPr"), "w:rStyle", val=_PLACEHOLDER_STYLE_ID)
    _el(pr, "w:alias", val=alias)
    _el(pr, "w:tag", val=tag)
    _el(pr, "w:id", val=ids(tag))
    if value is None:
        _el(pr, "w:showingPlcHdr")
    _el(pr, "w:text", **({"multiLine": "1"} if value and "\n" in value else {}))
    run = _el(_el(sdt, "w:sdtContent"), "w:r")
    if value is None:
        rpr = _el(run, "w:rPr")
        _el(rpr, "w:rStyle", val=_PLACEHOLDER_STYLE_ID)
        _el(rpr, "w:color", val="808080")
        _add_text(run, PLACEHOLDER_TEXT)
    else:
        _add_text(run, value)
    return sdt


def _checkbox_control(tag: str, alias: str, checked: bool, ids: _Ids) -> Any:
    """A Word 2010 check-box content control (``w14:checkbox``)."""
    sdt = OxmlElement("w:sdt")
    pr = _el(sdt, "w:sdtPr")
    _el(pr, "w:alias", val=alias)
    _el(pr, "w:tag", val=tag)
    _el(pr, "w:id", val=ids(tag))
    box = _el(pr, "w14:checkbox")
    _el(box, "w14:checked", val="1" if checked else "0")
    _el(box, "w14:checkedState", val="2612", font=_BOX_FONT)
    _el(box, "w14:uncheckedState", val="2610", font=_BOX_FONT)
    run = _el(_el(sdt, "w:sdtContent"), "w:r")
    _el(_el(run, "w:rPr"), "w:rFonts", ascii=_BOX_FONT, eastAsia=_BOX_FONT, hAnsi=_BOX_FONT, hint="eastAsia")
    _add_text(run, _CHECKED if checked else _UNCHECKED)
    return sdt


def _spacing(p: Paragraph, before: int | None = None, after: int | None = None) -> None:
    fmt = p.paragraph_format
    if before is not None:
        fmt.space_before = Twips(before)
    if after is not None:
        fmt.space_after = Twips(after)


def _para(doc: Any, text: str = "", *, bold: bool = False, size: float | None = None) -> Paragraph:
    p: Paragraph = doc.add_paragraph()
    if text:
        run = p.add_run(text)
        run.bold = bold or None
        if size is not None:
            run.font.size = Pt(size)
    return p


def _table(doc: Any, rows: int, widths: Sequence[int]) -> Any:
    """A centred, fixed-layout "Table Grid" table with the organisers' column widths."""
    table = doc.add_table(rows=rows, cols=len(widths))
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    for col, width in zip(table._tbl.tblGrid.gridCol_lst, widths, strict=True):
        col.w = Twips(width)
    for row in table.rows:
        for cell, width in zip(row.cells, widths, strict=True):
            cell.width = Twips(width)
    return table


def _fill_cell(cell: Any, value: str | None, controls: bool, tag: str, alias: str, ids: _Ids) -> None:
    p = cell.paragraphs[0]
    if controls:
        p._p.append(_text_control(tag, alias, value, ids))
    elif value:
        p.add_run(value)


def _add_placeholder_style(doc: Any) -> None:
    """Define the character style empty controls refer to, so Word shows them grey."""
    style = doc.styles.add_style("Placeholder Text", WD_STYLE_TYPE.CHARACTER, builtin=True)
    style.element.set(qn("w:styleId"), _PLACEHOLDER_STYLE_ID)
    style.base_style = doc.styles["Default Paragraph Font"]
    style.priority = 99
    style.hidden = True
    style.font.color.rgb = RGBColor(0x80, 0x80, 0x80)


def _build_docx(header: EventHeader, values: FilledValues | None, controls: bool, rows: int) -> Any:
    doc = docx.Document()
    ids = _Ids()
    if controls:
        _add_placeholder_style(doc)
    # Normal as on the organisers' copies: Arial 10 pt, tight spacing.
    normal = doc.styles["Normal"]
    normal.font.name = "Arial"
    normal.element.rPr.rFonts.set(qn("w:eastAsia"), "Arial")
    normal.element.rPr.rFonts.set(qn("w:cs"), "Arial")
    normal.font.size = Pt(10)
    normal.paragraph_format.space_before = Twips(0)
    normal.paragraph_format.space_after = Twips(40)
    normal.paragraph_format.line_spacing = 252 / 240

    section = doc.sections[0]
    section.page_width, section.page_height = Twips(11906), Twips(16838)
    section.top_margin = section.bottom_margin = Twips(850)
    section.left_margin = section.right_margin = Twips(1020)

    for text, bold, size, after in (
        ("ZGŁOSZENIE UCZESTNICTWA", True, 14.0, 40),
        (f"w konferencji informacyjnej „{header.title}”", True, None, 40),
        (header_line(header), False, None, 160),
    ):
        p = _para(doc, text, bold=bold, size=size)
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _spacing(p, after=after)

    # 1. Institution: label | value
    _spacing(_para(doc, "1. Dane instytucji", bold=True), before=120, after=60)
    inst = values.institution if values else Institution()
    table = _table(doc, len(INSTITUTION_LABELS), _INSTITUTION_WIDTHS)
    for row, (field, label, alias) in zip(table.rows, INSTITUTION_LABELS, strict=True):
        row.cells[0].paragraphs[0].add_run(label)
        _fill_cell(row.cells[1], getattr(inst, field), controls, f"institution.{field}", alias, ids)

    # 2. Participants
    _spacing(_para(doc, "2. Uczestnicy", bold=True), before=160, after=60)
    people = list(values.participants) if values else []
    count = max(rows, len(people))
    table = _table(doc, count + 1, _PARTICIPANT_WIDTHS)
    headings = ["Lp."] + [h for _, h, _ in PARTICIPANT_COLUMNS]
    for cell, heading in zip(table.rows[0].cells, headings, strict=True):
        p = cell.paragraphs[0]
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        p.add_run(heading).bold = True
    for i in range(count):
        cells = table.rows[i + 1].cells
        cells[0].paragraphs[0].add_run(f"{i + 1}.")
        person = people[i] if i < len(people) else Participant()
        for cell, (field, _, alias) in zip(cells[1:], PARTICIPANT_COLUMNS, strict=True):
            tag = f"participants[{i}].{field}"
            _fill_cell(cell, getattr(person, field), controls, tag, f"{alias} – uczestnik {i + 1}", ids)

    # 3. Workshops (none configured: no section, the later ones move up)
    number = 3
    if header.workshops:
        _spacing(
            _para(doc, f"{number}. Udział w dyskusjach warsztatowych (proszę zaznaczyć):", bold=True),
            before=160, after=60,
        )  # fmt: skip
        number += 1
    chosen = set(values.workshops) if values else set()
    for letter, title in header.workshops:
        _tick_line(
            doc, f"{letter} – {title}", letter in chosen, controls, f"workshops.{letter}", f"Warsztat {letter}", ids
        )

    # 4. Remarks
    p = _para(doc, f"{number}. Uwagi (np. specjalne potrzeby, dieta): ", bold=True)
    _spacing(p, before=160)
    remarks = values.remarks if values else None
    if controls:
        p._p.append(_text_control("remarks", "Uwagi", remarks, ids))
    else:
        p.add_run(remarks or "_" * 40)

    # 5. Consents
    _spacing(_para(doc, f"{number + 1}. Zgody", bold=True), before=160, after=60)
    consents = values.consents if values else Consents()
    for key, text in header.consent_texts.items():
        _tick_line(doc, text, bool(getattr(consents, key)), controls, f"consents.{key}", _CONSENT_ALIASES[key], ids)

    # Place, date, signature
    p = _para(doc, "Miejscowość, data: ")
    _spacing(p, before=440)
    place_date = values.place_date if values else None
    if controls:
        p._p.append(_text_control("signature.place_date", "Miejscowość, data", place_date, ids))
    else:
        p.add_run(place_date or "_" * 22)
    run = p.add_run()
    run.add_tab()
    if not controls:
        run.add_tab()
    run.add_text("Podpis: " + "_" * 24)

    p = _para(doc)
    _spacing(p, before=280)
    run = p.add_run(_deadline_line(header))
    run.italic = True
    run.font.size = Pt(9)
    for line in _organiser_lines(header):
        p = _para(doc)
        run = p.add_run(line)
        run.italic = True
        run.font.size = Pt(9)

    props = doc.core_properties
    props.title = "Zgłoszenie uczestnictwa"
    props.subject = header.title
    props.author = props.last_modified_by = "Biuro konferencji"
    props.revision = 1
    props.created = props.modified = _doc_time(header).replace(tzinfo=None)
    return doc


def _tick_line(doc: Any, text: str, checked: bool, controls: bool, tag: str, alias: str, ids: _Ids) -> None:
    """One option line: a glyph (☐/☒) or a check-box control, then the option text."""
    p = _para(doc)
    if controls:
        p._p.append(_checkbox_control(tag, alias, checked, ids))
        p.add_run(" " + text)
    else:
        p.add_run(f"{_CHECKED if checked else _UNCHECKED} {text}")


def _normalise_zip(data: bytes, when: dt.datetime) -> bytes:
    """Rewrite a zip with fixed timestamps and attributes so equal input gives equal bytes."""
    stamp = (max(when.year, 1980), when.month, when.day, when.hour, when.minute, when.second)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=stamp)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            fixed.create_system = 0
            dst.writestr(fixed, src.read(info))
    return out.getvalue()


def make_docx(
    header: EventHeader,
    values: FilledValues | None = None,
    *,
    style: Literal["table", "controls"] = "table",
    rows: int = 3,
) -> bytes:
    """The registration form as .docx bytes, blank or filled with ``values``.

    ``style="table"`` is the organisers' plain table layout (values typed into cells,
    ☒ for ticks); ``style="controls"`` uses Word content controls and check-box
    controls tagged like the organisers' "kontrolki" copy. The participants table has
    ``max(rows, len(participants))`` numbered rows.
    """
    if style not in ("table", "controls"):
        raise ValueError(f"unknown style {style!r}")
    if rows < 0:
        raise ValueError("rows must be >= 0")
    _check_values(values, header)
    doc = _build_docx(header, values, style == "controls", rows)
    etree.cleanup_namespaces(doc.element, keep_ns_prefixes=list(doc.element.nsmap))
    buf = io.BytesIO()
    doc.save(buf)
    return _normalise_zip(buf.getvalue(), _doc_time(header))


# --------------------------------------------------------------------------- pdf


def _pdf_fonts() -> tuple[str, str, str]:
    """Register DejaVu (Polish glyphs) with reportlab; names of regular, bold, oblique."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    names = ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique")
    for name in names:
        path = _FONT_DIR / f"{name}.ttf"
        if not path.is_file():
            raise RuntimeError(f"{path} missing: install the Debian package fonts-dejavu-core")
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(path)))
    return names


def _latin1(text: str) -> str:
    """``Łąka`` → ``Laka``: only for reportlab's Helvetica appearance streams."""
    text = text.translate(_LATIN1_FALLBACK)
    return "".join(c if ord(c) < 256 else unicodedata.normalize("NFKD", c)[0] if c.isalpha() else "?" for c in text)


def make_pdf(header: EventHeader, values: FilledValues | None = None) -> bytes:
    """The form as a fillable AcroForm PDF, laid out and named like the organisers' PDF.

    Field names are the organisers' (``institution.name``, ``participants[0].email``,
    ``workshops.A``, ``consents.data_processing``, ``remarks``,
    ``signature.place_date``), so PDF replies are read by the same code. One page holds
    up to 12 participants. Needs ``reportlab`` (imported here: only this function uses
    it) and the DejaVu fonts of Debian ``fonts-dejavu-core``. Deterministic (reportlab's
    invariant mode, as on the organisers' copy).
    """
    from reportlab.lib.colors import Color, black, white
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase.acroform import PDFFromString
    from reportlab.pdfgen.canvas import Canvas

    _check_values(values, header)
    people = list(values.participants) if values else []
    consent_lines = {key: textwrap.wrap(text, 90) or [""] for key, text in header.consent_texts.items()}
    # The page was laid out for two workshops and three consent lines: more of either
    # take rows from the participants table.
    extra = 17 * max(0, len(header.workshops) - 2) + 12 * max(0, sum(map(len, consent_lines.values())) - 3)
    max_rows = _PDF_MAX_ROWS - -(-extra // 20)
    if len(people) > max_rows:
        raise ValueError(f"at most {max_rows} participants fit on the PDF form")
    regular, bold, oblique = _pdf_fonts()
    inst = values.institution if values else Institution()
    consents = values.consents if values else Consents()
    chosen = set(values.workshops) if values else set()

    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=A4, invariant=True, pageCompression=1)
    canvas.setTitle("Zgłoszenie uczestnictwa")
    canvas.setAuthor("Organizator konferencji")
    canvas.setSubject(header.title)
    form = canvas.acroForm
    # reportlab draws field appearances in Helvetica, which has no "ą", "ł"…: draw those
    # with the nearest Latin-1 letter; /V keeps the real text and NeedAppearances makes
    # viewers redraw it properly.
    draw_appearance = form.txAP
    form.txAP = lambda key, value, *a, **kw: draw_appearance(key, _latin1(value), *a, **kw)
    width, top = A4
    field_bg = Color(0.92, 0.94, 1)

    def text(x: float, y: float, s: str, font: str = regular, size: float = 9.5, centre: bool = False) -> None:
        canvas.setFont(font, size)
        (canvas.drawCentredString if centre else canvas.drawString)(x, y, s)

    def field(
        name: str, tip: str, x: float, y: float, w: float, h: float = 16, value: str | None = None, **kw: Any
    ) -> None:
        form.textfield(
            name=name, tooltip=tip, x=x, y=y, width=w, height=h, value=value or "", fontName="Helvetica",
            fontSize=9, borderWidth=0.6, borderColor=black, fillColor=field_bg, textColor=black,
            forceBorder=True, maxlen=kw.pop("maxlen", 120), **kw,
        )  # fmt: skip

    def box(name: str, tip: str, x: float, y: float, checked: bool) -> None:
        form.checkbox(
            name=name, tooltip=tip, x=x, y=y, size=11, checked=checked, buttonStyle="cross",
            borderWidth=0.6, borderColor=black, fillColor=white, textColor=black, forceBorder=True,
        )  # fmt: skip

    text(width / 2, top - 58, "ZGŁOSZENIE UCZESTNICTWA", bold, 14, centre=True)
    text(width / 2, top - 75, f"w konferencji informacyjnej „{header.title}”", bold, 10, centre=True)
    text(width / 2, top - 89, header_line(header), regular, 9.5, centre=True)

    text(50, top - 119, "1. Dane instytucji", bold, 10.5)
    y = top - 155  # bottom of the first field
    for (key, label, alias), value in zip(
        INSTITUTION_LABELS, (inst.name, inst.address, inst.phone, inst.email), strict=True
    ):
        if key == "name":  # the organisers wrap the long label
            text(52, y + 15, "Nazwa jednostki samorządu terytorialnego", regular, 9)
            text(52, y + 4, "/ instytucji:", regular, 9)
        else:
            text(52, y + 5, label, regular, 9)
        field(f"institution.{key}", alias, 255, y, 290, value=value)
        y -= 20

    text(50, top - 233, "2. Uczestnicy", bold, 10.5)
    rows = max(3, len(people))
    table_top, header_bottom = top - 241, top - 267
    bottom = header_bottom - 20 * rows
    canvas.setLineWidth(0.6)
    cols = (50, 74, 202, 327, 415, 545)
    for x in cols:
        canvas.line(x, table_top, x, bottom)
    for y in (table_top, header_bottom, *(header_bottom - 20 * (i + 1) for i in range(rows))):
        canvas.line(50, y, 545, y)
    for (left, right), heading in zip(pairwise(cols), ["Lp.", *(h for _, h, _ in PARTICIPANT_COLUMNS)], strict=True):
        text((left + right) / 2, top - 257, heading, bold, 8.5, centre=True)
    for i in range(rows):
        y = header_bottom - 20 * (i + 1) + 2
        text(55, y + 4, f"{i + 1}.", regular, 9)
        person = people[i] if i < len(people) else Participant()
        for (key, _, alias), (left, right) in zip(PARTICIPANT_COLUMNS, pairwise(cols[1:]), strict=True):
            field(f"participants[{i}].{key}", f"{alias} – uczestnik {i + 1}", left + 1.5, y, right - left - 3,
                  value=getattr(person, key))  # fmt: skip

    shift = bottom - (top - 327)  # everything below the table moves with its height
    number = 3
    if header.workshops:
        text(50, top - 353 + shift, f"{number}. Udział w dyskusjach warsztatowych (proszę zaznaczyć):", bold, 10.5)
        number += 1
    for n, (letter, title) in enumerate(header.workshops):
        y = top - 373 - 17 * n + shift
        box(f"workshops.{letter}", f"Warsztat {letter}", 56, y, letter in chosen)
        text(74, y + 2, f"{letter} – {title}")
    shift -= 17 * max(0, len(header.workshops) - 2)

    text(50, top - 417 + shift, f"{number}. Uwagi (np. specjalne potrzeby, dieta):", bold, 10.5)
    field("remarks", "Uwagi", 50, top - 455 + shift, 495, 32, value=values.remarks if values else None,
          fieldFlags="multiline", maxlen=300)  # fmt: skip

    text(50, top - 479 + shift, f"{number + 1}. Zgody", bold, 10.5)
    y = top - 499 + shift
    for key, lines in consent_lines.items():
        box(f"consents.{key}", header.consent_texts[key][:60], 56, y, bool(getattr(consents, key)))
        for i, line in enumerate(lines):
            text(74, y + 2 - 12 * i, line)
        y -= 12 * len(lines) + 8
    shift -= 12 * max(0, sum(map(len, consent_lines.values())) - 3)

    y = top - 579 + shift
    text(50, y, "Miejscowość, data:")
    field("signature.place_date", "Miejscowość, data", 142, y - 5, 170, value=values.place_date if values else None)
    text(340, y, "Podpis:")
    canvas.line(378, y - 3, 545, y - 3)
    text(50, top - 619 + shift, _deadline_line(header), oblique, 8.5)
    y = top - 631 + shift
    for line in _organiser_lines(header):
        for piece in textwrap.wrap(line, 110):  # 8.5 pt italic: about 110 letters a line
            text(50, y, piece, oblique, 8.5)
            y -= 11

    if values is not None:  # Helvetica appearances lack Polish letters: let viewers redraw
        form.extras["NeedAppearances"] = PDFFromString("true")
    canvas.showPage()
    canvas.save()
    return buf.getvalue()
