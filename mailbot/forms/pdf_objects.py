"""A PDF page's drawn content, read from its page objects: text runs, ruling lines,
boxes and tick marks, all in page coordinates (y up).

Reading page objects (a few per line of text) instead of PDFium's per-character
boxes keeps a page at the cost of one text-page load: a character box costs a ctypes
call each, ~1 µs, which on a 1000-character form is more than the whole bare text
extraction. Form XObjects are entered (a flattened form draws its fields there), with
their matrices applied, since nested objects report bounds in the XObject's space.
"""

from __future__ import annotations

import ctypes
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import pypdfium2.raw as pdfium_c

from mailbot.errors import FormError
from mailbot.forms.pdf_spread import page_text

__all__ = ["UNREADABLE", "Piece", "Drawn", "display_matrix", "read_objects", "transform"]

UNREADABLE = "\ufffd"  # a drawn glyph PDFium has no Unicode for

_MAX_OBJECTS = 20_000  # per page, nested ones included
_MAX_SEGMENTS = 20_000  # path segments walked per page
_MAX_DEPTH = 4  # form XObjects inside form XObjects
_THIN = 2.5  # a ruling is at most this thick (points)
_LONG = 6.0  # and at least this long
_TICK_MIN, _TICK_MAX = 5.0, 20.0  # a tick box's side
_MAX_TICK_BOXES = 200  # a form has a handful; more is a pattern, not boxes
_MAX_PAIRS = 1_000_000  # runs x frames (or x tick boxes) compared per page
_FIELD_HEIGHT = 80.0  # a form XObject this low is a flattened field's appearance
_FLUSH_GAP = 0.12  # heights: narrower than a space's advance (~0.25 em and more)
_GLYPH_ROOM = 0.6  # heights: more room than a space's advance takes
_JOIN_GAP = 0.25  # heights: narrower than a space plus side bearings
_JOIN_EM = 0.35  # ems: PDFium saw no space and the gap is about a space at most
_TEXT, _PATH = pdfium_c.FPDF_PAGEOBJ_TEXT, pdfium_c.FPDF_PAGEOBJ_PATH
_FORM, _IMAGE = pdfium_c.FPDF_PAGEOBJ_FORM, pdfium_c.FPDF_PAGEOBJ_IMAGE
_UNSEEN = (pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE, pdfium_c.FPDF_TEXTRENDERMODE_CLIP)
_STRIP = 10.0  # points: frames are filed by strips this tall
_MAX_STRIPS = 40  # a frame taller than this many strips is filed apart
_ANYWHERE = -(10**9)  # the strip key of such frames
_SWAPPED_MIN = "\u3000"  # lowest code point ``_unswap`` looks at
_HYPHEN_MARK = "\x02"  # PDFium's "hyphen at a line end"
_HYPHEN_MARK_ALT = "\ufffe"
_SOFT_HYPHEN = "\u00ad"

Box = tuple[float, float, float, float]  # x0, y0, x1, y1
_Matrix = tuple[float, float, float, float, float, float]
_IDENTITY: _Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


@dataclass(slots=True)
class Piece:
    """A run of text as one show-text operation drew it (never spans two lines)."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    frame: int = -1
    """Index of the field frame (a drawn box around a value) the run starts in."""
    ax: float = 0.0
    """Where the run belongs across: its own left edge, or for a run drawn in a
    flattened field's appearance, that field's first run (a font fallback splits a
    value into runs, and one overflowing its field still belongs to it)."""
    group: int = -1
    source: tuple[Any, _Matrix] | None = None
    """The text object and the matrix it is drawn under, while the page is loaded
    (for ``em``, asked only where a gap is in doubt)."""
    em_size: float = 0.0

    def em(self) -> float:
        """The run's font size on the page (0 when unknown)."""
        if self.em_size == 0.0 and self.source is not None:
            obj, outer = self.source
            size, m = ctypes.c_float(), pdfium_c.FS_MATRIX()
            if pdfium_c.FPDFTextObj_GetFontSize(obj, size) and pdfium_c.FPDFPageObj_GetMatrix(obj, m):
                a, b, c, d, _, _ = _compose((m.a, m.b, m.c, m.d, m.e, m.f), outer)
                self.em_size = size.value * abs(a * d - b * c) ** 0.5
        return self.em_size


@dataclass(slots=True)
class Drawn:
    """What a page draws, sorted into what the layout needs."""

    pieces: list[Piece] = field(default_factory=list)
    horizontal: list[Box] = field(default_factory=list)
    vertical: list[Box] = field(default_factory=list)
    frames: list[Box] = field(default_factory=list)
    """Rectangles large enough to hold a value (flattened field frames, shading)."""
    tick_boxes: list[Box] = field(default_factory=list)
    marks: list[Box] = field(default_factory=list)
    """Small non-rectangular shapes (a drawn ✘ or ✓, two crossed strokes)."""
    images: bool = False


class _Walker:
    __slots__ = (
        "textpage", "out", "seen", "segments", "buf", "size", "f", "m", "groups", "spread",
        "unreadable", "runs", "max_runs",
    )

    def __init__(self, textpage: Any, max_runs: int) -> None:
        self.textpage = textpage
        self.runs = 0
        self.max_runs = max_runs
        self.spread = page_text(textpage)
        self.unreadable = False
        self.out = Drawn()
        self.seen = 0
        self.segments = 0
        self.size = 4096
        self.buf = (ctypes.c_ushort * (self.size // 2))()
        self.f = tuple(ctypes.c_float() for _ in range(4))
        self.m = pdfium_c.FS_MATRIX()
        self.groups = 0

    def walk(
        self, count: int, get: Any, parent: Any, matrix: _Matrix, depth: int, group: int = -1
    ) -> None:
        f0, f1, f2, f3 = self.f
        get_type = pdfium_c.FPDFPageObj_GetType
        get_bounds = pdfium_c.FPDFPageObj_GetBounds
        pieces = self.out.pieces
        identity = matrix is _IDENTITY
        for i in range(min(count, _MAX_OBJECTS - self.seen)):
            self.seen += 1
            obj = get(parent, i)
            if not obj:
                continue
            kind = get_type(obj)
            if kind == _TEXT:
                self.runs += 1
                if self.runs > self.max_runs:
                    # Each run's text costs a pass over the page's text (in PDFium).
                    raise FormError(f"PDF page has more than {self.max_runs} text runs")
                if not get_bounds(obj, f0, f1, f2, f3):
                    continue
                box = (f0.value, f1.value, f2.value, f3.value)
                if not identity:
                    box = _transform(box, matrix)
                text = self.text(obj, box, group, matrix)
                if text is not None:  # the common case, kept inline: it is hot
                    if max(text) >= _SWAPPED_MIN:
                        text = _unswap(text)
                    if _HYPHEN_MARK in text or _HYPHEN_MARK_ALT in text:
                        text = _hyphens(text, box, self.textpage)
                    pieces.append(Piece(*box, text, -1, box[0], group, (obj, matrix)))
            elif kind == _PATH:
                if get_bounds(obj, f0, f1, f2, f3):
                    box = (f0.value, f1.value, f2.value, f3.value)
                    self.path(obj, box if identity else _transform(box, matrix), matrix)
            elif kind == _FORM:
                if depth < _MAX_DEPTH and self.seen < _MAX_OBJECTS:
                    self.form(obj, matrix, depth, group)
            elif kind == _IMAGE:
                self.out.images = True

    def form(self, obj: Any, matrix: _Matrix, depth: int, group: int) -> None:
        """A form XObject's objects, under its matrix; a low one is a flattened
        field's appearance, whose runs are grouped (see ``Piece.ax``)."""
        f0, f1, f2, f3 = self.f
        inner_group = group
        if pdfium_c.FPDFPageObj_GetBounds(obj, f0, f1, f2, f3):
            low = _transform((f0.value, f1.value, f2.value, f3.value), matrix)
            if low[3] - low[1] <= _FIELD_HEIGHT:
                self.groups += 1
                inner_group = self.groups
        pdfium_c.FPDFPageObj_GetMatrix(obj, self.m)
        m = self.m
        inner = _compose((m.a, m.b, m.c, m.d, m.e, m.f), matrix)
        self.walk(
            int(pdfium_c.FPDFFormObj_CountObjects(obj)),
            pdfium_c.FPDFFormObj_GetObject,
            obj,
            inner,
            depth + 1,
            inner_group,
        )

    def text(self, obj: Any, box: Box, group: int, matrix: _Matrix) -> str | None:
        """The run's text, or ``None`` when there is none or its pieces were added
        here (an unreadable glyph, a run cut at its generated spaces)."""
        size = int(pdfium_c.FPDFTextObj_GetText(obj, self.textpage, self.buf, self.size))
        if size <= 2:
            # Glyphs without Unicode (a font fallback's CID glyph, a subset that lost
            # its ToUnicode map): something is drawn that cannot be read. Dropping it
            # would make a sure-looking wrong value ("inwalidzkim prosimy" without its
            # "–"); U+FFFD says a character is there.
            if pdfium_c.FPDFTextObj_GetTextRenderMode(obj) not in _UNSEEN:
                self.out.pieces.append(
                    Piece(*box, UNREADABLE, ax=box[0], group=group, source=(obj, matrix))
                )
                self.unreadable = True
            return None
        if size > self.size:
            if size > 1_000_000:
                return None
            buf = (ctypes.c_ushort * (size // 2))()
            pdfium_c.FPDFTextObj_GetText(obj, self.textpage, buf, size)
            raw = ctypes.string_at(buf, size - 2)
        else:
            raw = ctypes.string_at(self.buf, size - 2)
        text = raw.decode("utf-16-le", "replace")
        if not text.strip():
            return None
        spread = self.spread
        if spread is not None:
            address = ctypes.cast(obj, ctypes.c_void_p).value
            if address in spread.inner:
                parts = spread.split(obj, address)
                if parts is not None:
                    for part_box, part in parts:
                        self.piece(part_box, part, group, (obj, matrix))
                    return None
        return text

    def piece(self, box: Box, text: str, group: int, source: tuple[Any, _Matrix]) -> None:
        if max(text) >= _SWAPPED_MIN:
            text = _unswap(text)
        if _HYPHEN_MARK in text or _HYPHEN_MARK_ALT in text:
            text = _hyphens(text, box, self.textpage)
        self.out.pieces.append(Piece(*box, text, -1, box[0], group, source))

    def path(self, obj: Any, box: Box, matrix: _Matrix) -> None:
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        out = self.out
        if h <= _THIN and w >= _LONG:
            out.horizontal.append(box)
            return
        if w <= _THIN and h >= _LONG:
            out.vertical.append(box)
            return
        count = int(pdfium_c.FPDFPath_CountSegments(obj))
        if count <= 0:
            return
        if w <= _TICK_MAX and h <= _TICK_MAX and len(out.tick_boxes) < _MAX_TICK_BOXES:
            if _is_rectangle(obj, count) and _TICK_MIN <= min(w, h) and abs(w - h) <= 3:
                out.tick_boxes.append(box)
            elif max(w, h) >= 2:
                out.marks.append(box)
            return
        if count <= 6 and _is_rectangle(obj, count):
            out.frames.append(box)
            return
        self.lines(obj, count, matrix)

    def lines(self, obj: Any, count: int, matrix: _Matrix) -> None:
        """Axis-parallel line segments of a path drawing several lines at once."""
        if self.segments + count > _MAX_SEGMENTS:
            return
        self.segments += count
        px, py = ctypes.c_float(), ctypes.c_float()
        pdfium_c.FPDFPageObj_GetMatrix(obj, self.m)
        m = self.m
        own = _compose((m.a, m.b, m.c, m.d, m.e, m.f), matrix)
        prev: tuple[float, float] | None = None
        for i in range(count):
            seg = pdfium_c.FPDFPath_GetPathSegment(obj, i)
            if not seg or not pdfium_c.FPDFPathSegment_GetPoint(seg, px, py):
                prev = None
                continue
            a, b, c, d, e, f = own
            point = (a * px.value + c * py.value + e, b * px.value + d * py.value + f)
            kind = pdfium_c.FPDFPathSegment_GetType(seg)
            if kind == pdfium_c.FPDF_SEGMENT_LINETO and prev is not None:
                (ax, ay), (bx, by) = prev, point
                seg_box = (min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))
                if abs(ay - by) <= _THIN and abs(ax - bx) >= _LONG:
                    self.out.horizontal.append(seg_box)
                elif abs(ax - bx) <= _THIN and abs(ay - by) >= _LONG:
                    self.out.vertical.append(seg_box)
            prev = point


def read_objects(page: Any, textpage: Any, max_runs: int = 8_000) -> Drawn:
    """Everything ``Drawn`` holds, for one loaded page and its text page; a page of
    more than ``max_runs`` text runs raises ``FormError``."""
    if _count_runs(page, max_runs) > max_runs:
        raise FormError(f"PDF page has more than {max_runs} text runs")
    walker = _Walker(textpage, max_runs)
    walker.walk(
        int(pdfium_c.FPDFPage_CountObjects(page)),
        pdfium_c.FPDFPage_GetObject,
        page,
        _IDENTITY,
        0,
    )
    out = walker.out
    turn = display_matrix(page)
    if turn is not None:
        _turn(out, turn)
    if walker.unreadable:
        out.pieces = _unreadable(out.pieces)
    out.pieces = _join_flush(out.pieces)
    if walker.groups:
        _anchor_groups(out.pieces)
    if out.frames and len(out.frames) * len(out.pieces) <= _MAX_PAIRS:
        _tag_frames(out)
    return out


def _count_runs(page: Any, stop: int) -> int:
    """Text runs on the page (in form XObjects too), counted up to ``stop + 1``: cheap,
    so a page too big to read is refused before any run's text is asked for."""
    runs = seen = 0
    stack: list[tuple[Any, int]] = [(page, 0)]
    while stack and runs <= stop and seen < _MAX_OBJECTS:
        parent, depth = stack.pop()
        if depth == 0:
            count, get = int(pdfium_c.FPDFPage_CountObjects(parent)), pdfium_c.FPDFPage_GetObject
        else:
            count, get = int(pdfium_c.FPDFFormObj_CountObjects(parent)), pdfium_c.FPDFFormObj_GetObject
        for i in range(min(count, _MAX_OBJECTS - seen)):
            seen += 1
            obj = get(parent, i)
            kind = pdfium_c.FPDFPageObj_GetType(obj) if obj else None
            if kind == _TEXT:
                runs += 1
                if runs > stop:
                    break
            elif kind == _FORM and depth < _MAX_DEPTH:
                stack.append((obj, depth + 1))
    return runs


def display_matrix(page: Any) -> _Matrix | None:
    """Page space to the page as shown, for a page turned by /Rotate (its text runs
    up or down the page in its own coordinates); ``None`` when it is not turned."""
    turn = int(pdfium_c.FPDFPage_GetRotation(page)) % 4
    if turn == 0:
        return None
    f = tuple(ctypes.c_float() for _ in range(4))
    if not pdfium_c.FPDFPage_GetMediaBox(page, *f):
        return None
    left, bottom, right, top = (v.value for v in f)
    if turn == 1:  # shown turned 90° clockwise
        return (0.0, -1.0, 1.0, 0.0, -bottom, right)
    if turn == 2:
        return (-1.0, 0.0, 0.0, -1.0, right, top)
    return (0.0, 1.0, -1.0, 0.0, top, -left)


def transform(box: Box, m: _Matrix) -> Box:
    """``box`` under ``m`` (the bounding box of its corners)."""
    return _transform(box, m)


def _turn(out: Drawn, m: _Matrix) -> None:
    for piece in out.pieces:
        piece.x0, piece.y0, piece.x1, piece.y1 = _transform((piece.x0, piece.y0, piece.x1, piece.y1), m)
        piece.ax = piece.x0
    boxes = (out.frames, out.tick_boxes, out.marks)
    for kind in boxes:
        kind[:] = [_transform(b, m) for b in kind]
    lines = [_transform(b, m) for b in out.horizontal + out.vertical]
    out.horizontal = [b for b in lines if b[3] - b[1] <= _THIN]
    out.vertical = [b for b in lines if b[3] - b[1] > _THIN]


def _unreadable(pieces: list[Piece]) -> list[Piece]:
    """Unreadable glyphs PDFium gave no bounds for (a fallback font it cannot measure)
    are kept where the next run on their line starts further on than a space would
    take (a "–" drawn there); otherwise they are taken for a space and dropped."""
    out: list[Piece] = []
    for n, piece in enumerate(pieces):
        if piece.text != UNREADABLE or piece.x1 - piece.x0 > 0.5:
            out.append(piece)
            continue
        after = pieces[n + 1] if n + 1 < len(pieces) else None
        if after is not None and after.y0 - 2 <= piece.y0 <= after.y1:
            height = piece.em() or after.y1 - after.y0
            if after.x0 - piece.x0 >= _GLYPH_ROOM * height:
                piece.x1 = piece.x0 + 0.5 * height
                piece.y1 = piece.y0 + 0.5 * height
                out.append(piece)
    return out


def _join_flush(pieces: list[Piece]) -> list[Piece]:
    """Runs drawn one after the other on a line with no room for a space between them
    are one run. Producers that rebuild text (Ghostscript, print drivers, a font
    fallback for "ł") cut words into several runs, and the gap between two runs' tight
    boxes includes the glyphs' side bearings ("malgorzata" | ".sliwinska": 0.19 em),
    which a layout by gaps would read as a space. PDFium's text of a run also ends in
    a space when its next character in reading order is one, even one it made up
    ("Wspó " | "ł"); a real space ends the run's bounds before its advance, so a run
    drawn flush against it means no space is there."""
    out: list[Piece] = []
    for right in pieces:
        left = out[-1] if out else None
        if (
            left is None
            or not -1.0 <= right.x0 - left.x1 < max(left.y1 - left.y0, right.y1 - right.y0) + 1
            # (far apart: most pairs; a join needs less than 0.35 em)
            or left.group != right.group
            or not _flush(left, right)
        ):
            out.append(right)
            continue
        out[-1] = Piece(
            left.x0, min(left.y0, right.y0), max(left.x1, right.x1), max(left.y1, right.y1),
            left.text.rstrip(" ") + right.text, left.frame, left.ax, left.group, left.source,
            left.em_size,
        )
    return out


def _flush(left: Piece, right: Piece) -> bool:
    overlap = min(left.y1, right.y1) - max(left.y0, right.y0)  # "1" "," or "." "pl"
    if overlap <= 0.2 * min(left.y1 - left.y0, right.y1 - right.y0):
        return False
    if _is_mark(left.text) or _is_mark(right.text) or right.text[0].isspace():
        return False
    gap = right.x0 - left.x1
    if gap < -1.0:
        return False
    height = max(left.y1 - left.y0, right.y1 - right.y0)
    if left.text[-1] == " ":
        return gap < _FLUSH_GAP * height
    if left.text[-1].isspace():
        return False
    if gap < _JOIN_GAP * height:
        return True
    # PDFium, which knows the glyphs' advances, put no space after the run; a box's
    # height is a glyph's ("." is 1 pt tall), so the font size bounds the gap.
    return gap < _JOIN_EM * max(left.em(), right.em())


def _is_mark(text: str) -> bool:
    """A lone symbol (a drawn tick "✘", a box "☐"): never part of a word."""
    text = text.strip()
    return len(text) <= 1 and (not text or unicodedata.category(text)[0] == "S")


def _anchor_groups(pieces: list[Piece]) -> None:
    first: dict[int, float] = {}
    for piece in pieces:
        if piece.group >= 0:
            first[piece.group] = min(first.get(piece.group, piece.x0), piece.x0)
    for piece in pieces:
        if piece.group >= 0:
            piece.ax = first[piece.group]


def _is_rectangle(obj: Any, count: int) -> bool:
    """One closed subpath of four or five straight segments: a box, not a mark."""
    if count not in (4, 5):
        return False
    moves = 0
    for i in range(count):
        seg = pdfium_c.FPDFPath_GetPathSegment(obj, i)
        kind = pdfium_c.FPDFPathSegment_GetType(seg) if seg else -1
        if kind == pdfium_c.FPDF_SEGMENT_MOVETO:
            moves += 1
        elif kind != pdfium_c.FPDF_SEGMENT_LINETO:
            return False
    return moves == 1


def _tag_frames(out: Drawn) -> None:
    """Each text run's frame: the smallest frame its first character sits in. Frames
    are filed by horizontal strips of the page, so a run is checked against the few
    frames across its own strip, not all of them."""
    frames = sorted(
        range(len(out.frames)),
        key=lambda n: (out.frames[n][2] - out.frames[n][0]) * (out.frames[n][3] - out.frames[n][1]),
    )
    strips: dict[int, list[tuple[int, float, float, float, float]]] = {}
    for n in frames:  # smallest first, in every strip
        fx0, fy0, fx1, fy1 = out.frames[n]
        low, high = int((fy0 - 1) // _STRIP), int((fy1 + 1) // _STRIP)
        if high - low > _MAX_STRIPS:
            low, high = 0, -1  # a frame around the page: filed nowhere, checked last
            strips.setdefault(_ANYWHERE, []).append((n, fx0, fy0, fx1, fy1))
        for k in range(low, high + 1):
            strips.setdefault(k, []).append((n, fx0, fy0, fx1, fy1))
    empty: list[tuple[int, float, float, float, float]] = []
    for piece in out.pieces:
        x = piece.ax + 1
        y = (piece.y0 + piece.y1) / 2
        for boxes in (strips.get(int(y // _STRIP), empty), strips.get(_ANYWHERE, empty)):
            hit = next(
                (n for n, fx0, fy0, fx1, fy1 in boxes
                 if fx0 - 1 <= x <= fx1 and fy0 - 1 <= y <= fy1 + 1),
                -1,
            )  # fmt: skip
            if hit >= 0:
                piece.frame = hit
                break


def _unswap(text: str) -> str:
    """Ghostscript 10.0 writes a ligature's ToUnicode ("fi") with its bytes shifted:
    U+6600 U+6900 for "f" "i". A CJK character whose low byte is zero and whose high
    byte is a printable ASCII letter, in a run with Latin letters, is one of those."""
    if not any("a" <= ch.lower() <= "z" for ch in text):
        return text
    return "".join(
        chr(ord(ch) >> 8)
        if ord(ch) >= 0x3000 and ord(ch) & 0xFF == 0 and chr(ord(ch) >> 8).isalpha()
        and (ord(ch) >> 8) < 0x7F
        else ch
        for ch in text
    )


def _hyphens(text: str, box: Box, textpage: Any) -> str:
    """PDFium's line-end hyphen marks: a drawn hyphen stays "-", an invisible one is a
    soft hyphen (U+00AD, which the extractor drops and counts as a repair)."""
    out = []
    last = len(text.rstrip()) - 1
    for n, ch in enumerate(text):
        if ch not in (_HYPHEN_MARK, _HYPHEN_MARK_ALT):
            out.append(ch)
        elif n == last and _draws_hyphen(box, textpage):
            out.append("-")
        else:
            out.append(_SOFT_HYPHEN)
    return "".join(out)


def _draws_hyphen(box: Box, textpage: Any) -> bool:
    """Whether the mark ending the run has a visible glyph (PDFium gives the mark, not
    the character code, so the glyph's box tells a printed hyphen from a soft one)."""
    height = max(box[3] - box[1], 1.0)
    y = (box[1] + box[3]) / 2
    index = int(
        pdfium_c.FPDFText_GetCharIndexAtPos(textpage, box[2] - 0.5, y, height / 2, height / 2)
    )
    if index < 0 or int(pdfium_c.FPDFText_GetUnicode(textpage, index)) not in (2, 0xFFFE):
        return True  # not found: a hyphen is what the mark stands for
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    if not pdfium_c.FPDFText_GetCharBox(textpage, index, left, right, bottom, top):
        return True
    return right.value - left.value > 0.15 * height


def _compose(inner: _Matrix, outer: _Matrix) -> _Matrix:
    """``inner`` then ``outer`` (PDF row-vector convention)."""
    a, b, c, d, e, f = inner
    A, B, C, D, E, F = outer
    return (
        a * A + b * C,
        a * B + b * D,
        c * A + d * C,
        c * B + d * D,
        e * A + f * C + E,
        e * B + f * D + F,
    )


def _transform(box: Box, m: _Matrix) -> Box:
    a, b, c, d, e, f = m
    if b == 0.0 and c == 0.0:  # scale and move (nearly every XObject): two corners do
        x0, x1 = a * box[0] + e, a * box[2] + e
        y0, y1 = d * box[1] + f, d * box[3] + f
        return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    xs, ys = [], []
    for x, y in ((box[0], box[1]), (box[0], box[3]), (box[2], box[1]), (box[2], box[3])):
        xs.append(a * x + c * y + e)
        ys.append(b * x + d * y + f)
    return (min(xs), min(ys), max(xs), max(ys))
