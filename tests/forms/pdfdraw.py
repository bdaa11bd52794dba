"""The form drawn on a reportlab canvas in the ways other producers set it, with knobs
for what varies between them: which rulings a table has (a full grid, row lines only,
a frame only, none), the fonts (embedded TrueType subsets, or the standard Type 1
Helvetica with no Polish letters), values in bold or another size, right-aligned or
centred, a value drawn as several text objects (word by word, glyph by glyph), tick
boxes drawn as paths or typed as ☒/☐, a participants table broken across pages with
or without its header repeated, and the page turned by /Rotate with its content
counter-rotated (it shows upright, but its coordinates run sideways).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from typing import Literal

from mailbot.forms.blank import CONSENT_TEXTS, WORKSHOPS, EventHeader, FilledValues, header_line
from mailbot.forms.model import Institution, Participant

__all__ = ["Style", "ascii_values", "drawn_form", "rotated"]

_ASCII = str.maketrans("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ„”–", 'acelnoszzACELNOSZZ""-')


@dataclass(frozen=True)
class Style:
    rules: Literal["grid", "rows", "frame", "none"] = "grid"
    type1: bool = False
    """Standard Helvetica (WinAnsi, not embedded): the text must be ASCII."""
    value_bold: bool = False
    value_size: float = 9.0
    align: Literal["left", "right", "center"] = "left"
    split: Literal["none", "words", "glyphs"] = "none"
    ticks: Literal["typed", "drawn"] = "drawn"
    repeat_header: bool = True
    row_gap: float = 0.0
    """Extra height per participant row (pushes the table onto the next page)."""


def ascii_values(v: FilledValues) -> FilledValues:
    """``v`` without Polish letters (what a Type 1 standard font can show)."""

    def a(text: str | None) -> str | None:
        return text.translate(_ASCII) if text is not None else None

    inst = v.institution
    return replace(
        v,
        institution=Institution(a(inst.name), a(inst.address), inst.phone, inst.email),
        participants=[Participant(a(p.full_name), a(p.position), p.phone, p.email) for p in v.participants],
        remarks=a(v.remarks),
        place_date=a(v.place_date),
    )


class _Page:
    """A canvas with a cursor and the fonts of a ``Style``."""

    def __init__(self, style: Style) -> None:
        from reportlab.lib.pagesizes import A4
        from reportlab.pdfgen.canvas import Canvas

        from mailbot.forms.blank import _pdf_fonts

        self.style = style
        self.out = io.BytesIO()
        self.canvas = Canvas(self.out, pagesize=A4, invariant=True)
        self.width, self.height = A4
        if style.type1:
            self.regular, self.bold = "Helvetica", "Helvetica-Bold"
        else:
            self.regular, self.bold, _ = _pdf_fonts()
        self.y = self.height - 60

    def text(self, text: str) -> str:
        return text.translate(_ASCII) if self.style.type1 else text

    def line(self, text: str, *, bold: bool = False, size: float = 9.5, x: float = 50) -> None:
        """A paragraph, wrapped at the right margin."""
        from reportlab.lib.utils import simpleSplit

        font = self.bold if bold else self.regular
        for line in simpleSplit(self.text(text), font, size, 545 - x):
            self.need(size + 6)
            self.canvas.setFont(font, size)
            self.canvas.drawString(x, self.y - size, line)
            self.y -= size + 3
        self.y -= 2

    def need(self, height: float) -> bool:
        """A new page when ``height`` does not fit; whether one was started."""
        if self.y - height >= 50:
            return False
        self.canvas.showPage()
        self.y = self.height - 60
        return True

    def value(self, text: str, x0: float, x1: float, baseline: float) -> None:
        """A value in a cell, aligned and split into text objects as the style says."""
        style, canvas = self.style, self.canvas
        font = self.bold if style.value_bold else self.regular
        size = style.value_size
        text = self.text(text)
        from reportlab.pdfbase.pdfmetrics import stringWidth

        width = stringWidth(text, font, size)
        if style.align == "right":
            x = x1 - 3 - width
        elif style.align == "center":
            x = (x0 + x1 - width) / 2
        else:
            x = x0 + 3
        if style.split == "none":
            canvas.setFont(font, size)
            canvas.drawString(x, baseline, text)
            return
        parts = text.split(" ") if style.split == "words" else list(text)
        for n, part in enumerate(parts):
            piece = part + (" " if style.split == "words" and n < len(parts) - 1 else "")
            obj = canvas.beginText(x, baseline)  # one BT..ET each: its own text object
            obj.setFont(font, size)
            obj.textOut(piece)
            canvas.drawText(obj)
            x += stringWidth(piece, font, size)

    def wrapped(self, text: str | None, width: float) -> list[str]:
        if not text:
            return []
        from reportlab.lib.utils import simpleSplit

        style = self.style
        font = self.bold if style.value_bold else self.regular
        lines: list[str] = []
        for line in simpleSplit(self.text(text), font, style.value_size, width - 6):
            from reportlab.pdfbase.pdfmetrics import stringWidth

            while stringWidth(line, font, style.value_size) > width - 6 and len(line) > 1:
                cut = len(line) - 1  # a long e-mail: broken anywhere, as Word does
                while cut > 1 and stringWidth(line[:cut], font, style.value_size) > width - 6:
                    cut -= 1
                if "@" not in line and "-" in line[1:cut]:
                    cut = line.rindex("-", 1, cut) + 1  # a double surname: at its hyphen
                lines.append(line[:cut])
                line = line[cut:]
            lines.append(line)
        return lines

    def rules(self, xs: list[float], top: float, bottom: float, *, first: bool, last: bool) -> None:
        """One table row's rulings, as the style draws them."""
        c, rules = self.canvas, self.style.rules
        c.setLineWidth(0.6)
        if rules == "grid":
            c.line(xs[0], top, xs[-1], top)
            c.line(xs[0], bottom, xs[-1], bottom)
            for x in xs:
                c.line(x, top, x, bottom)
        elif rules == "rows":
            c.line(xs[0], top, xs[-1], top)
            c.line(xs[0], bottom, xs[-1], bottom)
        elif rules == "frame":
            if first:
                c.line(xs[0], top, xs[-1], top)
            if last:
                c.line(xs[0], bottom, xs[-1], bottom)
            c.line(xs[0], top, xs[0], bottom)
            c.line(xs[-1], top, xs[-1], bottom)

    def row(self, cells: list[tuple[str | None, bool]], xs: list[float], *, first: bool, last: bool,
            gap: float = 0.0) -> None:  # fmt: skip
        """A table row: each cell (text, is a value) wrapped in its column."""
        size = self.style.value_size
        lead = max(size, 9) + 2.5
        wrapped = [
            (self.wrapped(text, x1 - x0) if is_value else self._label_lines(text, x1 - x0), is_value)
            for (text, is_value), x0, x1 in zip(cells, xs, xs[1:], strict=False)
        ]
        height = max(1, *(len(lines) for lines, _ in wrapped)) * lead + 6 + gap
        top = self.y
        for (lines, is_value), x0, x1 in zip(wrapped, xs, xs[1:], strict=False):
            for n, line in enumerate(lines):
                baseline = top - 3 - lead * (n + 1) + 2.5
                if is_value:
                    self.value(line, x0, x1, baseline)
                else:
                    self.canvas.setFont(self.regular, 9)
                    self.canvas.drawString(x0 + 3, baseline, line)
        self.rules(xs, top, top - height, first=first, last=last)
        self.y = top - height

    def _label_lines(self, text: str | None, width: float) -> list[str]:
        from reportlab.lib.utils import simpleSplit

        lines: list[str] = simpleSplit(self.text(text or ""), self.regular, 9, width - 6)
        return lines

    def tick(self, on: bool, label: str) -> None:
        self.need(16)
        c = self.canvas
        base = self.y - 10
        if self.style.ticks == "typed" and not self.style.type1:
            c.setFont(self.regular, 9.5)
            c.drawString(50, base, f"{'☒' if on else '☐'} {label}")
        else:
            c.setLineWidth(0.6)
            c.rect(50, base - 1.5, 9, 9)
            if on:
                c.line(51.5, base, 57.5, base + 6)
                c.line(51.5, base + 6, 57.5, base)
            c.setFont(self.regular, 9.5)
            c.drawString(64, base, self.text(label))
        self.y -= 14

    def tick_line(self, on: bool, label: str) -> None:
        """A tick box and its text, wrapped under the text's start."""
        from reportlab.lib.utils import simpleSplit

        first, *rest = simpleSplit(self.text(label), self.regular, 9.5, 470)
        self.tick(on, first)
        for line in rest:
            self.need(14)
            self.canvas.setFont(self.regular, 9.5)
            self.canvas.drawString(64, self.y - 10 + 4, line)
            self.y -= 12

    def save(self) -> bytes:
        self.canvas.showPage()
        self.canvas.save()
        return self.out.getvalue()


_INST_XS = [50.0, 230.0, 545.0]
_PEOPLE_XS = [50.0, 74.0, 196.0, 322.0, 408.0, 545.0]
_HEADER = ("Lp.", "Imię i nazwisko", "Stanowisko / funkcja", "Telefon", "E-mail")


def drawn_form(header: EventHeader, v: FilledValues, style: Style) -> bytes:
    """``v`` on the form, drawn as ``style`` says."""
    p = _Page(style)
    p.line("ZGŁOSZENIE UCZESTNICTWA", bold=True, size=13, x=200)
    p.line(f"w konferencji informacyjnej „{header.title}”", bold=True, size=10.5)
    p.line(header_line(header), size=9)
    p.y -= 6
    p.line("1. Dane instytucji", bold=True, size=10.5)
    inst = v.institution
    labels = [
        ("Nazwa jednostki samorządu terytorialnego / instytucji:", inst.name),
        ("Adres (ulica, kod pocztowy, miejscowość):", inst.address),
        ("Telefon:", inst.phone),
        ("E-mail:", inst.email),
    ]
    for n, (label, value) in enumerate(labels):
        p.row([(label, False), (value, True)], _INST_XS, first=n == 0, last=n == len(labels) - 1)
    p.y -= 10
    p.line("2. Uczestnicy", bold=True, size=10.5)
    p.row([(h, False) for h in _HEADER], _PEOPLE_XS, first=True, last=not v.participants)
    for n, person in enumerate(v.participants, 1):
        if p.need(30 + style.row_gap) and style.repeat_header:
            p.row([(h, False) for h in _HEADER], _PEOPLE_XS, first=True, last=False)
        cells = [(f"{n}.", False), (person.full_name, True), (person.position, True), (person.phone, True),
                 (person.email, True)]  # fmt: skip
        p.row(cells, _PEOPLE_XS, first=False, last=n == len(v.participants), gap=style.row_gap)
    p.y -= 10
    p.line("3. Udział w dyskusjach warsztatowych (proszę zaznaczyć):", bold=True, size=10.5)
    for key, title in WORKSHOPS.items():
        p.tick(key in v.workshops, f"{key} – {title}")
    p.y -= 6
    p.line(f"4. Uwagi (np. specjalne potrzeby, dieta): {v.remarks or ''}", size=9)
    p.line("5. Zgody", bold=True, size=10.5)
    for key, text in CONSENT_TEXTS.items():
        p.tick_line(bool(getattr(v.consents, key)), text)
    p.y -= 8
    p.line(f"Miejscowość, data: {v.place_date or ''}", size=9.5)
    return p.save()


def rotated(data: bytes, rotation: int = 90) -> bytes:
    """Every page turned by /Rotate ``rotation`` (90 or 270), its content counter-rotated
    so that it still shows upright: the page's own coordinates run sideways."""
    import pypdfium2 as pdfium

    src = pdfium.PdfDocument(data)
    out = pdfium.PdfDocument.new()
    for index in range(len(src)):
        width, height = src[index].get_size()
        page = out.new_page(height, width)
        obj = src.page_as_xobject(index, out).as_pageobject()
        if rotation == 90:  # (x, y) -> (height - y, x)
            obj.transform(pdfium.PdfMatrix(0, 1, -1, 0, height, 0))
        else:  # (x, y) -> (y, width - x)
            obj.transform(pdfium.PdfMatrix(0, -1, 1, 0, 0, width))
        page.insert_obj(obj)
        page.gen_content()
        page.set_rotation(rotation)
    buf = io.BytesIO()
    out.save(buf)
    return buf.getvalue()

