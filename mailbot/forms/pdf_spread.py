"""Text objects that PDFium reads as one run but that are drawn as several.

Ghostscript's ``pdfwrite`` (behind many "print to PDF" drivers) rebuilds a page's text
into one show-text operation per line, moving across table columns with positioning
offsets: "Telefon:" and "77 440 17 00" in two cells become one object. PDFium marks
such a jump inside an object with a space it made up (``FPDFText_IsGenerated``); a
real space is a character of the font. Runs are cut there, so each piece lands in its
own cell and the layout sees the gap. Finding them costs one whole-page text call
and one call per space: per-character calls for every run would cost more than the
bare text extraction.
"""

from __future__ import annotations

import ctypes
from typing import Any

import pypdfium2.raw as pdfium_c

Box = tuple[float, float, float, float]  # x0, y0, x1, y1

__all__ = ["PageText", "page_text"]

_MAX_CHARS = 200_000  # a form page has a few thousand
_MAX_SPLIT = 2_000  # generated spaces followed per page
_MAX_RUN = 2_000  # characters walked to find a run's ends


class PageText:
    """The text page's characters and, per text object (by address), the indices of
    the spaces PDFium generated inside it."""

    __slots__ = ("chars", "inner", "textpage")

    def __init__(self, textpage: Any, chars: str, inner: dict[int, list[int]]) -> None:
        self.textpage = textpage
        self.chars = chars
        self.inner = inner

    def split(self, obj: Any, address: int) -> list[tuple[Box, str]] | None:
        """The object's pieces with their boxes (the union of their characters'),
        cut at its generated spaces; ``None`` when it cannot be followed character by
        character (then it stays whole)."""
        tp, chars = self.textpage, self.chars
        gaps = self.inner[address]
        get_obj = pdfium_c.FPDFText_GetTextObject

        def own(i: int) -> bool:
            o = get_obj(tp, i)
            return bool(o) and ctypes.cast(o, ctypes.c_void_p).value == address

        first = gaps[0]
        steps = 0
        while first > 0 and own(first - 1) and steps < _MAX_RUN:
            first -= 1
            steps += 1
        last = gaps[-1]
        while last + 1 < len(chars) and own(last + 1) and steps < _MAX_RUN:
            last += 1
            steps += 1
        if first == gaps[0] or last == gaps[-1]:
            return None
        bounds = [first - 1, *gaps, last + 1]
        out: list[tuple[Box, str]] = []
        for a, b in zip(bounds, bounds[1:], strict=False):
            lo, hi = a + 1, b - 1
            while lo <= hi and chars[lo].isspace():
                lo += 1
            while hi >= lo and chars[hi].isspace():
                hi -= 1
            if lo > hi:
                continue
            box = _union(tp, lo, hi, chars)
            if box is None:
                return None
            out.append((box, chars[lo : hi + 1]))
        return out or None


def _union(tp: Any, lo: int, hi: int, chars: str) -> Box | None:
    """The box of characters ``lo..hi`` (spaces have no height: they add none)."""
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    get = pdfium_c.FPDFText_GetCharBox
    x0 = y0 = float("inf")
    x1 = y1 = float("-inf")
    for i in range(lo, hi + 1):
        if chars[i].isspace() or not get(tp, i, left, right, bottom, top):
            continue
        x0, x1 = min(x0, left.value), max(x1, right.value)
        y0, y1 = min(y0, bottom.value), max(y1, top.value)
    return (x0, y0, x1, y1) if x0 <= x1 and y0 <= y1 else None


def page_text(textpage: Any) -> PageText | None:
    """The page's generated spaces inside text objects; ``None`` when there are none
    (the common case: every run is drawn as one piece)."""
    count = int(pdfium_c.FPDFText_CountChars(textpage))
    if count <= 0 or count > _MAX_CHARS:
        return None
    buf = (ctypes.c_ushort * (count + 1))()
    got = int(pdfium_c.FPDFText_GetText(textpage, 0, count, buf))
    chars = ctypes.string_at(buf, 2 * max(0, min(got - 1, count))).decode("utf-16-le", "replace")
    if len(chars) != count:
        return None  # surrogate pairs: indices no longer line up; read runs whole
    generated = pdfium_c.FPDFText_IsGenerated
    get_obj = pdfium_c.FPDFText_GetTextObject
    inner: dict[int, list[int]] = {}
    found = 0
    i = chars.find(" ")
    while i >= 0 and found < _MAX_SPLIT:
        if generated(textpage, i) == 1:
            obj = get_obj(textpage, i)
            if obj:
                address = ctypes.cast(obj, ctypes.c_void_p).value
                if address is not None:
                    inner.setdefault(address, []).append(i)
                    found += 1
        i = chars.find(" ", i + 1)
    return PageText(textpage, chars, inner) if inner else None
