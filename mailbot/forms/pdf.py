"""Read a PDF into ``Document``: AcroForm widgets and the positioned text layer.

PDFium (pypdfium2) rather than pypdf: it is ~10x faster on our forms, opens AES-
encrypted files with an empty password, survives the reference loops and broken
xref tables in the corpus, and gives text and widget positions, which a flattened
table needs (a wrapped cell such as "Naczelnik Wydziału / Strategii i Rozwoju" is
only readable by position). It can also render pages for OCR later.

Filled AcroForm fields become controls (method ``fields``); a page's text is
grouped into lines and cells and rebuilt into tables where the layout shows one
(the participants table; label | value rows), so the shared extractor reads it as
text (method ``text``). A PDF without a text layer is a scan: see ``read_scan``.
"""

from __future__ import annotations

import ctypes
import functools
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from mailbot.errors import FormError
from mailbot.forms.extract import Block, Control, Document, Inline, Para, Table
from mailbot.forms.labels import Vocabulary
from mailbot.forms.model import Limits

__all__ = ["read_pdf", "read_scan"]

# PDFium is not thread-safe; the daemon may parse from several threads.
_PDFIUM_LOCK = threading.Lock()

_FIELD_CHECKBOX = 2
_FIELD_RADIO = 3
_FIELD_PUSHBUTTON = 1
_FIELD_SIGNATURE = 7
_ERR_PASSWORD = 4
_ERR_SECURITY = 5
_SURROGATE_HIGH_BYTE = re.compile(rb"[\xd8-\xdf]")


@dataclass(slots=True)
class _Chunk:
    """A run of text (or a form widget) with its box in page coordinates (y up)."""

    x0: float
    y0: float
    x1: float
    y1: float
    inlines: list[Inline]

    @property
    def text(self) -> str:
        return "".join(i if isinstance(i, str) else i.render() for i in self.inlines)

    @property
    def height(self) -> float:
        return max(self.y1 - self.y0, 1.0)


@dataclass(slots=True)
class _Line:
    chunks: list[_Chunk]
    top: float
    bottom: float
    cells: list[_Chunk] = field(default_factory=list)
    # The median chunk height, set by ``_lines`` once the line's chunks are final.
    height: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(c.text.strip() for c in self.chunks)


def read_pdf(data: bytes, limits: Limits, vocab: Vocabulary) -> Document:
    """Parse a PDF; raises ``FormError`` with a reason when it can't be read as text."""
    started = time.monotonic()
    with _PDFIUM_LOCK:
        try:
            doc = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as e:
            code = getattr(e, "err_code", None)
            if code in (_ERR_PASSWORD, _ERR_SECURITY):
                raise FormError("encrypted PDF: needs a password") from e
            raise FormError(f"damaged PDF: {e}") from e
        try:
            result = _read(doc, data, limits, vocab, started)
        finally:
            doc.close()
    if result is None:  # a scan: OCR runs outside the lock, PDFium is free meanwhile
        return read_scan(data, limits, vocab)
    return result


def _read(
    doc: Any, data: bytes, limits: Limits, vocab: Vocabulary, started: float
) -> Document | None:
    pages = len(doc)
    if pages == 0:
        raise FormError("PDF has no pages")
    if pages > limits.max_pdf_pages:
        raise FormError(f"PDF has {pages} pages (limit {limits.max_pdf_pages})")
    # XFA-only forms are not ours, and this PDFium build cannot run them anyway.
    if int(doc.get_formtype()) == pdfium_c.FORMTYPE_ACRO_FORM:
        doc.init_forms()
    form = doc.formenv
    blocks: list[Block] = []
    controls: list[Control] = []
    text_chars = 0
    images = False
    for index in range(pages):
        if time.monotonic() - started > limits.timeout_seconds:
            raise FormError(
                f"PDF took longer than {limits.timeout_seconds:.0f} s to read"
            )
        # Raw page handles: pypdfium2's get_page() runs FORM_OnAfterLoadPage, which
        # costs ~20 ms per page and is only needed for rendering forms.
        page = pdfium_c.FPDF_LoadPage(doc.raw, index)
        if not page:
            raise FormError(f"damaged PDF: cannot load page {index + 1}")
        try:
            chunks = _text_chunks(page)
            text_chars += sum(len(c.text.strip()) for c in chunks)
            widgets = _widgets(page, form) if form is not None else []
            if not text_chars and not images:
                images = _has_image(page)
        finally:
            pdfium_c.FPDF_ClosePage(page)
        controls.extend(
            w.inlines[0] for w in widgets if isinstance(w.inlines[0], Control)
        )
        blocks.extend(_layout(chunks + widgets, vocab))
    if text_chars == 0 and not any(c.value or c.checked for c in controls):
        if images:
            return None  # a scan: read_pdf hands it to read_scan
        return Document(blocks=[])  # neither text nor images: nothing of a form in it
    return Document(blocks=blocks, controls=controls, layout_tables=True)


def _has_image(page: Any) -> bool:
    """Whether a page draws an image (directly or in a form XObject): a scan."""
    stack = [
        (
            pdfium_c.FPDFPage_CountObjects(page),
            functools.partial(pdfium_c.FPDFPage_GetObject, page),
            0,
        )
    ]
    seen = 0
    while stack:
        count, get, depth = stack.pop()
        for i in range(min(int(count), 5000)):
            seen += 1
            if seen > 20_000:
                return False
            obj = get(i)
            kind = pdfium_c.FPDFPageObj_GetType(obj)
            if kind == pdfium_c.FPDF_PAGEOBJ_IMAGE:
                return True
            if kind == pdfium_c.FPDF_PAGEOBJ_FORM and depth < 4:
                stack.append(
                    (
                        pdfium_c.FPDFFormObj_CountObjects(obj),
                        functools.partial(pdfium_c.FPDFFormObj_GetObject, obj),
                        depth + 1,
                    )
                )
    return False


def read_scan(data: bytes, limits: Limits, vocab: Vocabulary) -> Document:
    """Render a scan's pages and OCR them (method ``ocr``, see ``mailbot.forms.ocr``).

    The OCR reader lays its positioned words out with ``_layout``, so the shared
    extractor reads a scan like a text layer. Pages are rendered under the PDFium lock;
    the OCR itself runs outside it.
    """
    from mailbot.forms.image import render_pdf_pages
    from mailbot.forms.ocr import read_pages

    started = time.monotonic()
    pages = render_pdf_pages(data, limits, _PDFIUM_LOCK)
    try:
        return read_pages(pages, limits, vocab, started)
    finally:
        pages.close()


# --- text and widgets ---------------------------------------------------------------


def _text_chunks(page: Any) -> list[_Chunk]:
    """Text runs with their boxes, as PDFium groups characters into rectangles."""
    textpage = pdfium_c.FPDFText_LoadPage(page)
    if not textpage:
        return []
    try:
        chunks: list[_Chunk] = []
        count = min(int(pdfium_c.FPDFText_CountRects(textpage, 0, -1)), 20_000)
        if count <= 0:
            return chunks
        left, top, right, bottom = (ctypes.c_double() for _ in range(4))
        # One buffer for the page, and one GetBoundedText call per rectangle instead of
        # the size-then-fill pair: each call walks every character of the page.
        buflen = max(1024, 2 * int(pdfium_c.FPDFText_CountChars(textpage)) + 64)
        buf = (ctypes.c_ushort * (buflen + 1))()
        get_rect = pdfium_c.FPDFText_GetRect
        get_bounded = pdfium_c.FPDFText_GetBoundedText
        for i in range(count):
            if not get_rect(textpage, i, left, top, right, bottom):
                continue
            box = (left.value, top.value, right.value, bottom.value)
            got = int(get_bounded(textpage, *box, buf, buflen))
            if got <= 0:
                continue
            raw = ctypes.string_at(buf, 2 * got)
            if got >= buflen or _has_surrogates(raw):
                text = _bounded_text_sized(textpage, box)
            else:
                text = raw.decode("utf-16-le", "replace")
            text = text.replace("\r", "").replace("\n", " ").replace("\x00", "")
            if text.strip():
                chunks.append(_Chunk(box[0], box[3], box[2], box[1], [text]))
        return chunks
    finally:
        pdfium_c.FPDFText_ClosePage(textpage)


def _has_surrogates(raw: bytes) -> bool:
    """Whether UTF-16-LE bytes hold a surrogate unit (a high byte in D8..DF)."""
    return _SURROGATE_HIGH_BYTE.search(raw[1::2]) is not None


def _bounded_text_sized(textpage: Any, box: tuple[float, float, float, float]) -> str:
    """GetBoundedText by the two-call protocol, for text with surrogate pairs (or
    longer than the page buffer): the size call counts code points, not UTF-16 units,
    and the text is cut to that many units exactly as it always was."""
    size = int(pdfium_c.FPDFText_GetBoundedText(textpage, *box, None, 0))
    if size <= 0:
        return ""
    buf = (ctypes.c_ushort * (size + 1))()
    got = int(pdfium_c.FPDFText_GetBoundedText(textpage, *box, buf, size))
    return bytes(buf)[: 2 * got].decode("utf-16-le", "replace")


def _get_text(fn: Any, *args: Any) -> str:
    """Call a PDFium UTF-16 getter (two-call protocol: size, then fill)."""
    size = int(fn(*args, None, 0))
    if size <= 2 or size > 1_000_000:
        return ""
    buf = (ctypes.c_ushort * (size // 2))()
    fn(*args, buf, size)
    return bytes(buf)[: size - 2].decode("utf-16-le", "replace")


class _TextGetter:
    """PDFium UTF-16 getters (size in bytes; fill only when the buffer is big enough),
    through one reused buffer: one call instead of two when the text fits."""

    __slots__ = ("buf", "size")

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.buf = (ctypes.c_ushort * (size // 2))()

    def __call__(self, fn: Any, *args: Any) -> str:
        size = int(fn(*args, self.buf, self.size))
        if size <= 2 or size > 1_000_000:
            return ""
        if size > self.size:
            return _get_text(fn, *args)
        return ctypes.string_at(self.buf, size - 2).decode("utf-16-le", "replace")


def _widgets(page: Any, form: Any) -> list[_Chunk]:
    out: list[_Chunk] = []
    handle = form.raw
    text = _TextGetter()
    rect = pdfium_c.FS_RECTF()
    count = min(int(pdfium_c.FPDFPage_GetAnnotCount(page)), 2000)
    for i in range(count):
        annot = pdfium_c.FPDFPage_GetAnnot(page, i)
        if not annot:
            continue
        try:
            if pdfium_c.FPDFAnnot_GetSubtype(annot) != pdfium_c.FPDF_ANNOT_WIDGET:
                continue
            kind = int(pdfium_c.FPDFAnnot_GetFormFieldType(handle, annot))
            if kind in (_FIELD_PUSHBUTTON, _FIELD_SIGNATURE):
                continue
            name = text(pdfium_c.FPDFAnnot_GetFormFieldName, handle, annot)
            label = text(pdfium_c.FPDFAnnot_GetFormFieldAlternateName, handle, annot)
            if kind in (_FIELD_CHECKBOX, _FIELD_RADIO):
                # The widget's appearance state (/AS) is its own on/off state; PDFium's
                # IsChecked needs the page loaded into the form env (~20 ms a page).
                state = text(pdfium_c.FPDFAnnot_GetStringValue, annot, b"AS")
                if not state:
                    state = text(pdfium_c.FPDFAnnot_GetFormFieldValue, handle, annot)
                checked = state not in ("", "Off")
                if kind == _FIELD_RADIO and checked:
                    name = f"{name}.{state}"  # radio "workshops" with state "A" → workshops.A
                control = Control(
                    key=name or None, label=label or None, checked=checked
                )
            else:
                value = text(pdfium_c.FPDFAnnot_GetFormFieldValue, handle, annot)
                control = Control(
                    key=name or None, label=label or None, value=value or None
                )
            if not pdfium_c.FPDFAnnot_GetRect(annot, rect):
                continue
            # sorted((a, b)), spelled out: (b, a) only when b < a.
            left, right = float(rect.left), float(rect.right)
            bottom, top = float(rect.bottom), float(rect.top)
            x0, x1 = (right, left) if right < left else (left, right)
            y0, y1 = (top, bottom) if top < bottom else (bottom, top)
            out.append(_Chunk(x0, y0, x1, y1, [control]))
        finally:
            pdfium_c.FPDFPage_CloseAnnot(annot)
    return out


# --- layout: lines, cells, tables ---------------------------------------------------


def _lines(chunks: list[_Chunk]) -> list[_Line]:
    """Group chunks whose vertical extents overlap into lines, top to bottom."""
    lines: list[_Line] = []
    for chunk in sorted(chunks, key=lambda c: (-c.y1, c.x0)):
        centre = (chunk.y0 + chunk.y1) / 2
        for line in reversed(lines[-3:]):
            if line.bottom - 1 <= centre <= line.top + 1:
                line.chunks.append(chunk)
                break
        else:
            lines.append(_Line([chunk], chunk.y1, chunk.y0))
    for line in lines:
        line.chunks.sort(key=lambda c: c.x0)
        line.height = _median([c.height for c in line.chunks])
        line.cells = _cells(line)
    return lines


def _median(values: list[float]) -> float:
    """``statistics.median``, to the bit, without its generality (it is hot here)."""
    data = sorted(values)
    n = len(data)
    if n % 2 == 1:
        return data[n // 2]
    i = n // 2
    return (data[i - 1] + data[i]) / 2


def _cells(line: _Line) -> list[_Chunk]:
    """Merge chunks separated by small gaps; a wide gap starts a new cell."""
    gap = max(1.5 * line.height, 12.0)
    cells: list[_Chunk] = []
    for chunk in line.chunks:
        if (
            cells
            and chunk.x0 - cells[-1].x1 <= gap
            and not _is_widget(chunk)
            and not _is_widget(cells[-1])
        ):
            last = cells[-1]
            joiner = (
                "" if last.text.endswith(" ") or chunk.text.startswith(" ") else " "
            )
            cells[-1] = _Chunk(
                last.x0,
                min(last.y0, chunk.y0),
                max(last.x1, chunk.x1),
                max(last.y1, chunk.y1),
                [*last.inlines, joiner, *chunk.inlines],
            )
        else:
            cells.append(
                _Chunk(chunk.x0, chunk.y0, chunk.x1, chunk.y1, list(chunk.inlines))
            )
    return cells


def _is_widget(chunk: _Chunk) -> bool:
    return any(isinstance(i, Control) and i.checked is None for i in chunk.inlines)


_Columns = list[tuple[float, float, str]]


def _layout(chunks: list[_Chunk], vocab: Vocabulary) -> list[Block]:
    lines = _lines(chunks)
    # A line may be asked twice whether it heads the participants table (by
    # ``_label_table``, then here); the answer is a pure function of the line.
    memo: dict[int, _Columns | None] = {}

    def columns_at(n: int) -> _Columns | None:
        if n not in memo:
            memo[n] = _participant_columns(lines[n], vocab)
        return memo[n]

    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        columns = columns_at(i)
        if columns is not None:
            table, i = _participant_table(lines, i, columns, vocab)
            blocks.append(table)
            continue
        if len(line.cells) >= 2:
            table, i = _label_table(lines, i, columns_at)
            blocks.append(table)
            continue
        blocks.append(Para(_joined(line.cells)))
        i += 1
    return blocks


def _joined(cells: Sequence[_Chunk]) -> list[Inline]:
    out: list[Inline] = []
    for n, cell in enumerate(cells):
        if n:
            out.append("\t")
        out.extend(cell.inlines)
    return out


def _cell(inlines: list[Inline]) -> list[Block]:
    return [Para(inlines)]


def _label_table(
    lines: list[_Line], start: int, columns_at: Callable[[int], _Columns | None]
) -> tuple[Table, int]:
    """Consecutive multi-cell lines, with wrapped cell lines folded into their cell."""
    rows: list[list[_Chunk]] = [list(lines[start].cells)]
    i = start + 1
    while i < len(lines):
        prev, line = lines[i - 1], lines[i]
        if prev.top - line.top > 1.6 * max(prev.height, line.height):
            break
        if columns_at(i) is not None:
            break
        if len(line.cells) >= 2:
            rows.append(list(line.cells))
        elif len(line.cells) == 1:
            cell = line.cells[0]
            target = next(
                (n for n, c in enumerate(rows[-1]) if abs(c.x0 - cell.x0) <= 4), None
            )
            if target is None:
                break
            old = rows[-1][target]
            rows[-1][target] = _Chunk(
                old.x0,
                cell.y0,
                max(old.x1, cell.x1),
                old.y1,
                [*old.inlines, "\n", *cell.inlines],
            )
        i += 1
    return Table([[_cell(c.inlines) for c in row] for row in rows]), i


def _participant_columns(
    line: _Line, vocab: Vocabulary
) -> list[tuple[float, float, str]] | None:
    """Header cells of the participants table, as (x0, x1, field) columns."""
    if len(line.cells) < vocab.table_min_columns:
        return None
    columns: list[tuple[float, float, str]] = []
    for cell in line.cells:
        match = vocab.match_cell(cell.text.strip())
        key = (
            next((k for k in match.keys if k.startswith("participant.")), None)
            if match
            else None
        )
        if key is not None:
            columns.append((cell.x0, cell.x1, key))
    names = {k for _, _, k in columns}
    if len(names) >= vocab.table_min_columns and all(
        r in names for r in vocab.table_required
    ):
        return columns
    return None


def _column_of(chunk: _Chunk, columns: list[tuple[float, float, str]]) -> int | None:
    """The column a chunk sits in; ``None`` when it spans several (text below the table)."""
    overlaps = [min(chunk.x1, x1) - max(chunk.x0, x0) for x0, x1, _ in columns]
    if sum(1 for o in overlaps if o > 0) > 1:
        return None
    best = max(range(len(columns)), key=lambda n: overlaps[n])
    if overlaps[best] > 0:
        return best
    centre = (chunk.x0 + chunk.x1) / 2
    return min(
        range(len(columns)),
        key=lambda n: min(abs(columns[n][0] - centre), abs(columns[n][1] - centre)),
    )


def _participant_table(
    lines: list[_Line],
    start: int,
    columns: list[tuple[float, float, str]],
    vocab: Vocabulary,
) -> tuple[Table, int]:
    header_row: list[list[Block]] = [_cell([vocab.fields[k][0]]) for _, _, k in columns]
    number_col = next(
        (n for n, (_, _, k) in enumerate(columns) if k == "participant.number"), None
    )
    name_col = next(
        n for n, (_, _, k) in enumerate(columns) if k == "participant.full_name"
    )
    rows: list[list[list[Inline]]] = []
    i = start + 1
    while i < len(lines):
        prev, line = lines[i - 1], lines[i]
        if prev.top - line.top > 2.8 * max(prev.height, line.height):
            break
        placed: list[tuple[int, _Chunk]] = []
        for cell in line.cells:
            col = _column_of(cell, columns)
            if col is None:
                break
            placed.append((col, cell))
        else:
            if vocab.match_section(line.text) is not None:
                break
            starts = (
                any(
                    c == number_col and cell.text.strip().rstrip(".").isdigit()
                    for c, cell in placed
                )
                if number_col is not None
                else any(c == name_col for c, _ in placed)
            )
            if starts or not rows:
                rows.append([[] for _ in columns])
            for col, cell in placed:
                target = rows[-1][col]
                if target:
                    target.append("\n")
                target.extend(cell.inlines)
            i += 1
            continue
        break
    table_rows: list[list[list[Block]]] = [header_row]
    table_rows.extend([_cell(c) for c in row] for row in rows)
    return Table(table_rows), i
