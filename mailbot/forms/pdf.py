"""Read a PDF into ``Document``: AcroForm widgets and the positioned text layer.

PDFium (pypdfium2) rather than pypdf: it is ~10x faster on our forms, opens AES-
encrypted files with an empty password, survives the reference loops and broken
xref tables in the corpus, and gives text and widget positions, which a flattened
table needs (a wrapped cell such as "Naczelnik Wydziału / Strategii i Rozwoju" is
only readable by position). It can also render pages for OCR later.

Filled AcroForm fields become controls (method ``fields``). A page's drawn content
(``pdf_objects``) is laid out by ``pdf_page``: ruled tables cell by cell from their
lines, tick boxes as tick characters, other text grouped into lines, cells and
gap-based tables (``pdf_layout``), so the shared extractor reads it as text (method
``text``). A ruled table whose rows go on at the top of the next page is continued
there. A PDF without a text layer is a scan: see ``read_scan``.
"""

from __future__ import annotations

import ctypes
import threading
import time
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from mailbot.errors import FormError
from mailbot.forms.extract import Block, Control, Document, Para
from mailbot.forms.labels import Vocabulary
from mailbot.forms.model import Limits
from mailbot.forms.pdf_layout import Chunk, layout
from mailbot.forms.pdf_objects import (
    UNREADABLE,
    Drawn,
    display_matrix,
    read_objects,
    transform,
)
from mailbot.forms.pdf_page import RuledTable, page_blocks

__all__ = ["read_pdf", "read_scan"]

# PDFium is not thread-safe; the daemon may parse from several threads.
_PDFIUM_LOCK = threading.Lock()

_FIELD_CHECKBOX = 2
_FIELD_RADIO = 3
_FIELD_PUSHBUTTON = 1
_FIELD_SIGNATURE = 7
_ERR_PASSWORD = 4
_ERR_SECURITY = 5
# A text layer whose fonts lost their Unicode maps (Ghostscript re-distilling TrueType
# subsets drops them) shows glyph codes: "Urz\x03d Gminy \x04ubniany". Past this many
# such characters the page is read as a scan instead.
_GARBLED_MIN = 3
_GARBLED_SHARE = 0.005
_MAX_BETWEEN = 4  # lines (page foot and head) a table may skip to go on next page
_SAME_COLUMN = 3.0  # points: a continued table's column lines match this closely

# The OCR reader lays out its words with the same code.
_Chunk = Chunk


def _layout(chunks: list[Chunk], vocab: Vocabulary) -> list[Block]:
    """OCR words into blocks (see ``pdf_layout.layout``)."""
    return [block for _, block in layout(chunks, vocab)]


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
    if result is None:  # a scan (or unreadable text): OCR runs outside the lock
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
    text_chars = garbled = 0
    images = False
    tables = _Continuation(vocab)
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
            textpage = pdfium_c.FPDFText_LoadPage(page)
            try:
                drawn = (
                    read_objects(page, textpage, limits.max_text_runs) if textpage else Drawn()
                )
            finally:
                if textpage:
                    pdfium_c.FPDFText_ClosePage(textpage)
            widgets = _widgets(page, form) if form is not None else []
            if widgets:
                turn = display_matrix(page)
                if turn is not None:
                    for w in widgets:
                        w.x0, w.y0, w.x1, w.y1 = transform((w.x0, w.y0, w.x1, w.y1), turn)
        finally:
            pdfium_c.FPDF_ClosePage(page)
        for piece in drawn.pieces:
            text_chars += len(piece.text)
            if min(piece.text) < " " or UNREADABLE in piece.text:
                garbled += sum(1 for ch in piece.text if _garbled(ch))
        images = images or drawn.images
        controls.extend(
            w.inlines[0] for w in widgets if isinstance(w.inlines[0], Control)
        )
        tables.new_page()
        for _, block, ruled in page_blocks(drawn, widgets, vocab):
            if tables.add(block, ruled):
                blocks.append(block)
    if garbled > max(_GARBLED_MIN, _GARBLED_SHARE * text_chars):
        return None  # characters without Unicode: the pixels are the only true text
    if text_chars == 0 and not any(c.value or c.checked for c in controls):
        if images:
            return None  # a scan: read_pdf hands it to read_scan
        return Document(blocks=[])  # neither text nor images: nothing of a form in it
    return Document(blocks=blocks, controls=controls, layout_tables=True)


class _Continuation:
    """Carries a ruled table over a page break.

    Rows at the top of a page, in a grid whose column lines match those of the table
    that ended the previous page, with only a page foot and head (no section) in
    between, are more rows of that table; a repeated header row is dropped.
    """

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.open: RuledTable | None = None
        self.between = 0
        self.first_on_page = False

    def new_page(self) -> None:
        self.first_on_page = True

    def add(self, block: Block, ruled: RuledTable | None) -> bool:
        """Whether ``block`` is to be kept (``False``: its rows went to the open table)."""
        if ruled is None:
            if self.open is not None:
                self.between += 1
                if (
                    not isinstance(block, Para)
                    or self.between > _MAX_BETWEEN
                    or self.vocab.match_section(_para_text(block)) is not None
                ):
                    self.open = None
            return True
        first, self.first_on_page = self.first_on_page, False
        previous = self.open
        if first and previous is not None and _same_columns(previous.last_xs, ruled.first_xs):
            rows = ruled.table.rows
            if rows and _row_texts(rows[0]) == _row_texts(previous.table.rows[0]):
                rows = rows[1:]  # the header repeated on the new page
            previous.table.rows.extend(rows)
            previous.last_xs = ruled.last_xs
            self.between = 0
            return False
        self.open, self.between = ruled, 0
        return True


def _garbled(ch: str) -> bool:
    return (ch < " " and ch not in "\t\n\r") or ch == UNREADABLE


def _same_columns(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= _SAME_COLUMN for x, y in zip(a, b, strict=True))


def _para_text(para: Para) -> str:
    return "".join(i if isinstance(i, str) else i.render() for i in para.inlines)


def _row_texts(row: list[list[Block]]) -> list[str]:
    return [
        " ".join(_para_text(b) for b in cell if isinstance(b, Para)).strip() for cell in row
    ]


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


def _widgets(page: Any, form: Any) -> list[Chunk]:
    out: list[Chunk] = []
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
            out.append(Chunk(x0, y0, x1, y1, [control]))
        finally:
            pdfium_c.FPDFPage_CloseAnnot(annot)
    return out


