"""The attendance list ("lista obecności") for the day of the event, to print and sign.

Only people holding a seat are on it — status ``confirmed`` on a registration that holds
seats (confirmed or incomplete: see :mod:`mailbot.seats`); the waiting list, people who
withdrew and late registrations are not. Sorted by institution, then by surname (the
last word of the name as typed) and the full name, in Polish alphabetical order
(Ł after L, Ś after S, Ż last), so the person at the desk finds a name quickly.

Two files of the same list: XLSX (to edit before printing: A4 landscape — the workshop
column needs the width — fitted to the page width, the column header repeated on every
page, borders, rows tall enough to sign, and :data:`WALK_IN_ROWS` empty numbered rows
under "Osoby dopisane na miejscu" for people who turn up unregistered, so the desk
never writes in a margin) and PDF (ready to print: DejaVu Sans for the Polish letters, header repeated on every
page, "strona 1 z 3" at the foot).
"""

from __future__ import annotations

import io
import textwrap
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins
from sqlmodel import Session, col, select

from mailbot.config import EventSettings
from mailbot.seats import HOLDING
from mailbot.store.tables import Participant, Registration
from mailbot.templating import date_pl, time_pl, weekday_pl

TITLE = "Lista obecności"
COLUMNS = ("Lp.", "Imię i nazwisko", "Stanowisko", "Instytucja", "Podpis")
"""The PDF's columns."""
XLSX_COLUMNS = ("Lp.", "Imię i nazwisko", "Stanowisko", "Instytucja", "Warsztaty", "Podpis")
"""The XLSX's columns: with the workshops each person's form chose, so the desk can
send people to the right room."""
WALK_IN_ROWS = 10
"""Empty rows at the end of the XLSX for people added at the desk."""
WALK_IN_TITLE = "Osoby dopisane na miejscu"


@dataclass(frozen=True)
class AttendanceRow:
    number: int
    """Lp.: the position on the list, from 1."""
    full_name: str
    job_title: str
    institution: str
    code: str
    """The registration code (not printed; for matching with the digest and exports)."""
    workshops: str = ""
    """The workshops the registration chose, "A, B" (one choice per form)."""


# --- who, in which order ------------------------------------------------------------

_ALPHABET = "0123456789aąbcćdeęfghijklłmnńoópqrsśtuvwxyzźż"
_RANK = {c: i + 2 for i, c in enumerate(_ALPHABET)}


def _letter_rank(c: str) -> int | None:
    if c in _RANK:
        return _RANK[c]
    base = unicodedata.normalize("NFKD", c)[0]  # é → e, ü → u
    if base in _RANK:
        return _RANK[base]
    return None


def polish_key(text: str | None) -> tuple[int, ...]:
    """A sort key in Polish alphabetical order, case-blind; spaces sort before letters
    ("Urząd Gminy" before "Urząd Gminy Lubsza"), punctuation and quotes are ignored."""
    out: list[int] = []
    for c in (text or "").casefold():
        if c.isspace():
            if out and out[-1] != 1:
                out.append(1)
            continue
        rank = _letter_rank(c)
        if rank is not None:
            out.append(rank)
    while out and out[-1] == 1:
        out.pop()
    return tuple(out)


def _surname(full_name: str) -> str:
    words = full_name.split()
    return words[-1] if words else ""


def _order(institution: str, full_name: str) -> tuple[Any, ...]:
    # An empty institution goes last, not first.
    return (not institution.strip(), polish_key(institution), polish_key(_surname(full_name)),
            polish_key(full_name), institution, full_name)


def attendance_rows(session: Session, event_key: str) -> list[AttendanceRow]:
    """The seated people of one event, sorted by institution, then surname and name."""
    pairs = session.exec(
        select(Participant, Registration)
        .join(Registration, col(Registration.id) == col(Participant.registration_id))
        .where(
            Registration.event_key == event_key,
            col(Registration.status).in_(HOLDING),
            Participant.status == "confirmed",
        )
    ).all()
    people = [
        (" ".join((reg.institution_name or "").split()), " ".join((p.full_name or "").split()),
         " ".join((p.job_title or "").split()), reg.code,
         ", ".join(w.strip() for w in (reg.workshops or "").split(",") if w.strip()))
        for p, reg in pairs
    ]
    people.sort(key=lambda t: _order(t[0], t[1]))
    return [
        AttendanceRow(i, name, job, inst, code, workshops)
        for i, (inst, name, job, code, workshops) in enumerate(people, start=1)
    ]


# --- the header -----------------------------------------------------------------------


def when_line(event: EventSettings) -> str:
    """'Opole, poniedziałek, 18 kwietnia 2016 r., godz. 11:00'."""
    return f"{event.city}, {weekday_pl(event.date)}, {date_pl(event.date)}, godz. {time_pl(event.start_time)}"


def where_line(event: EventSettings) -> str:
    return f"{event.venue}, {event.address}"


# --- XLSX ---------------------------------------------------------------------------

_WIDTHS = (5, 30, 24, 38, 11, 34)
_THIN = Side(style="thin", color="000000")
_BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_HEADER_ROW = 6
ROW_HEIGHT_PT = 30
"""Data rows: about 1 cm, room for a signature."""


def _xlsx_height(values: Sequence[object]) -> float:
    """Rows keep ROW_HEIGHT_PT to sign in, taller when a long name or title wraps
    (a set height does not grow by itself in Excel)."""
    lines = 1
    for value, width in zip(values, _WIDTHS, strict=True):
        if isinstance(value, str) and value:
            lines = max(lines, len(textwrap.wrap(value, max(1, int(width * 1.1) - 2))))
    return max(ROW_HEIGHT_PT, 13.0 * lines + 6)


def to_xlsx(event: EventSettings, rows: Sequence[AttendanceRow]) -> bytes:
    """The list as a workbook ready to print on A4 landscape, one page wide, with empty
    rows for walk-ins at the end."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = TITLE
    last_col = get_column_letter(len(XLSX_COLUMNS))
    header = (
        (TITLE.upper(), Font(bold=True, size=14)),
        (f"„{event.title}”", Font(bold=True, size=12)),
        (when_line(event), Font(size=11)),
        (where_line(event), Font(size=11)),
    )
    for r, (text, font) in enumerate(header, start=1):
        ws.cell(row=r, column=1, value=text).font = font
        ws.cell(row=r, column=1).alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        ws.merge_cells(f"A{r}:{last_col}{r}")
        ws.row_dimensions[r].height = 20 if r > 1 else 24
    for c, heading in enumerate(XLSX_COLUMNS, start=1):
        cell = ws.cell(row=_HEADER_ROW, column=c, value=heading)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="E6E6E6")
        cell.border = _BOX
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    ws.row_dimensions[_HEADER_ROW].height = 22
    for offset, row in enumerate(rows, start=1):
        r = _HEADER_ROW + offset
        values = (row.number, row.full_name, row.job_title, row.institution, row.workshops or None, None)
        for c, value in enumerate(values, start=1):
            cell = ws.cell(row=r, column=c, value=value)
            cell.border = _BOX
            cell.alignment = Alignment(
                horizontal="center" if c in (1, 5) else "left", vertical="center", wrap_text=True
            )
        ws.row_dimensions[r].height = _xlsx_height(values)
    walk_in = _HEADER_ROW + len(rows) + 1
    ws.cell(row=walk_in, column=1, value=WALK_IN_TITLE).font = Font(bold=True)
    ws.cell(row=walk_in, column=1).alignment = Alignment(horizontal="left", vertical="bottom")
    ws.merge_cells(f"A{walk_in}:{last_col}{walk_in}")
    ws.row_dimensions[walk_in].height = 24
    for n in range(1, WALK_IN_ROWS + 1):
        r = walk_in + n
        for c in range(1, len(XLSX_COLUMNS) + 1):
            cell = ws.cell(row=r, column=c, value=len(rows) + n if c == 1 else None)
            cell.border = _BOX
            cell.alignment = Alignment(horizontal="center" if c == 1 else "left", vertical="center")
        ws.row_dimensions[r].height = ROW_HEIGHT_PT
    for c, width in enumerate(_WIDTHS, start=1):
        ws.column_dimensions[get_column_letter(c)].width = width
    last_row = walk_in + WALK_IN_ROWS
    ws.freeze_panes = f"A{_HEADER_ROW + 1}"
    ws.print_title_rows = f"{_HEADER_ROW}:{_HEADER_ROW}"
    ws.print_area = f"A1:{last_col}{last_row}"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages as the list needs
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins = PageMargins(left=0.5, right=0.5, top=0.6, bottom=0.7, header=0.3, footer=0.3)
    ws.oddFooter.left.text = f"{TITLE} – {event.city}, {event.date.strftime('%d.%m.%Y')}"
    ws.oddFooter.left.size = 8
    ws.oddFooter.right.text = "strona &P z &N"
    ws.oddFooter.right.size = 8
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --- PDF ----------------------------------------------------------------------------

_MM = 72 / 25.4
_PDF_WIDTHS_MM = (10, 42, 38, 50, 40)  # 180 mm: A4 less 15 mm margins
ROW_HEIGHT_MM = 11
_PADDING = 3


def wrap_text(text: str, font: str, size: float, width: float) -> list[str]:
    """Lines of ``text`` no wider than ``width`` points: broken at spaces, a word too long
    for a line after its hyphen ("Grzegorzewska-" / "Brzęczyszczykiewicz"), only as a
    last resort between letters. (reportlab alone cuts such a name mid-word.)"""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    def fits(s: str) -> bool:
        return bool(stringWidth(s, font, size) <= width)

    pieces: list[str] = []
    for word in text.split():
        if fits(word):
            pieces.append(word)
            continue
        parts = [p + "-" for p in word.split("-")]
        parts[-1] = parts[-1][:-1]
        for part in parts:
            while not fits(part) and len(part) > 1:
                cut = max(1, next((i for i in range(len(part), 0, -1) if fits(part[:i])), 1))
                pieces.append(part[:cut] + "\u00ad")  # marks a forced cut: no space after it
                part = part[cut:]
            pieces.append(part + ("\u00ad" if part.endswith("-") else ""))
    lines: list[str] = []
    current = ""
    for piece in pieces:
        glue = piece if current.endswith("\u00ad") or not current else " " + piece
        candidate = current + glue if current else piece
        if current and not fits(candidate.replace("\u00ad", "")):
            lines.append(current)
            current = piece
        else:
            current = candidate
    if current:
        lines.append(current)
    return [line.replace("\u00ad", "") for line in lines] or [""]


def _fonts() -> tuple[str, str]:
    from mailbot.forms.blank import _pdf_fonts

    regular, bold, _ = _pdf_fonts()
    return regular, bold


def _build_pdf(event: EventSettings, rows: Sequence[AttendanceRow], total_pages: int | None) -> tuple[bytes, int]:
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    regular, bold = _fonts()
    title = ParagraphStyle("title", fontName=bold, fontSize=15, leading=19, alignment=TA_CENTER, spaceAfter=4)
    name = ParagraphStyle("name", fontName=bold, fontSize=12, leading=15, alignment=TA_CENTER, spaceAfter=4)
    line = ParagraphStyle("line", fontName=regular, fontSize=10.5, leading=13.5, alignment=TA_CENTER)
    cell = ParagraphStyle("cell", fontName=regular, fontSize=9.5, leading=11.5)
    head = ParagraphStyle("head", fontName=bold, fontSize=9.5, leading=11.5, alignment=TA_CENTER)
    number = ParagraphStyle("number", parent=cell, alignment=TA_CENTER)

    story: list[Any] = [
        Paragraph(escape(TITLE.upper()), title),
        Paragraph(escape(f"„{event.title}”"), name),
        Paragraph(escape(when_line(event)), line),
        Paragraph(escape(where_line(event)), line),
        Spacer(1, 5 * _MM),
    ]
    widths = [w * _MM for w in _PDF_WIDTHS_MM]

    def text(value: str, column: int) -> Any:
        lines = wrap_text(value, regular, cell.fontSize, widths[column] - 2 * _PADDING)
        return Paragraph("<br/>".join(escape(line) for line in lines), cell)

    data: list[list[Any]] = [[Paragraph(escape(h), head) for h in COLUMNS]]
    for row in rows:
        data.append(
            [
                Paragraph(f"{row.number}.", number),
                text(row.full_name, 1),
                text(row.job_title, 2),
                text(row.institution, 3),
                "",
            ]
        )
    heights = [8 * _MM]
    for cells in data[1:]:
        # At least ROW_HEIGHT_MM to sign in; more when a long name or title wraps.
        needed = max(
            c.wrap(w - 2 * _PADDING, 1000)[1] for c, w in zip(cells, widths, strict=True) if isinstance(c, Paragraph)
        )
        heights.append(max(ROW_HEIGHT_MM * _MM, needed + 3 * _MM))
    table = Table(data, colWidths=widths, rowHeights=heights, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.6, colors.black),
                ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.9, 0.9)),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LEFTPADDING", (0, 0), (-1, -1), _PADDING),
                ("RIGHTPADDING", (0, 0), (-1, -1), _PADDING),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    story.append(table)
    if not rows:
        story.append(Spacer(1, 4 * _MM))
        story.append(Paragraph("Brak osób z potwierdzonym miejscem.", line))

    footer_left = f"{TITLE} – {event.city}, {event.date.strftime('%d.%m.%Y')}"

    def on_page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(regular, 8)
        canvas.drawString(15 * _MM, 9 * _MM, footer_left)
        page = canvas.getPageNumber()
        text = f"strona {page} z {total_pages}" if total_pages else f"strona {page}"
        canvas.drawRightString(A4[0] - 15 * _MM, 9 * _MM, text)
        canvas.restoreState()

    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=15 * _MM,
        rightMargin=15 * _MM,
        topMargin=14 * _MM,
        bottomMargin=16 * _MM,
        title=f"{TITLE} – {event.title}, {event.city}",
        author="mailbot",
        invariant=1,  # the same list gives the same bytes (no timestamp, fixed ID)
    )
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buf.getvalue(), int(doc.page)


def to_pdf(event: EventSettings, rows: Sequence[AttendanceRow]) -> bytes:
    """The list as an A4 PDF; laid out twice, the second time knowing the page count."""
    _, pages = _build_pdf(event, rows, None)
    data, _ = _build_pdf(event, rows, pages)
    return data


# --- files --------------------------------------------------------------------------


def _stem(stem: Path) -> Path:
    """``lista`` and ``lista.xlsx`` both mean lista.xlsx + lista.pdf."""
    if stem.suffix.lower() in (".xlsx", ".pdf"):
        return stem.with_suffix("")
    return stem


def write_attendance(session: Session, event: EventSettings, stem: Path) -> tuple[Path, Path]:
    """Write ``STEM.xlsx`` and ``STEM.pdf`` for ``event``; returns both paths."""
    rows = attendance_rows(session, event.key)
    base = _stem(stem)
    xlsx = base.parent / f"{base.name}.xlsx"
    pdf = base.parent / f"{base.name}.pdf"
    writers: tuple[tuple[Path, Callable[[EventSettings, Sequence[AttendanceRow]], bytes]], ...] = (
        (xlsx, to_xlsx),
        (pdf, to_pdf),
    )
    for path, make in writers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make(event, rows))
    return xlsx, pdf
