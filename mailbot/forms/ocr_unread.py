"""Ink that OCR read no word from, right beside a word: part of its value is missing.

Tesseract leaves out what it takes for a picture: the words under a stamp, a
signature or a blot are not misread but *omitted*, and the words around them come
out well read ("dieta" ✓ "utenowa" ✓ for "dieta bezglutenowa" under a stamp). Only
the pixels tell: ink on the word's own line, just left or right of it, that no
recognised word covers. Such a word is doubted, so the value it belongs to is
flagged instead of passed on cut short.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw

from mailbot.forms.ocr_words import Boxed

__all__ = ["UNREAD_SHARE", "beside_unread"]

# Share of a strip beside a word that is unread ink above which text (or something
# over it) was left out. Scanner speckle gives 0–2 %, a stamp's ring crossing the
# strip 4–8 %, hidden letters 15–30 %.
UNREAD_SHARE = 0.06
# The strips: from this far off the word (× text height) to this far.
_NEAR, _FAR = 0.3, 2.3
# Word boxes are grown by this much (× text height) before they count as read ink.
_PAD = 0.25


# Shorter words are not judged: confidences are looked up by a word's text, and
# doubting "w" or "A" would doubt every value spelling them.
_MIN_LETTERS = 3


def beside_unread(ink: Image.Image, words: Sequence[Boxed], height: float) -> set[int]:
    """Indices of ``words`` with unread ink just left or right on their line.

    ``ink`` is the page's ink mask (255 = ink) without its ruling lines; ``words``
    are all words read on the page (their boxes are what counts as read);
    ``height`` is the typical text height in pixels.
    """
    if not words or height <= 0:
        return set()
    unread = ink.copy()
    draw = ImageDraw.Draw(unread)
    pad = round(_PAD * height)
    for w in words:
        draw.rectangle((w.x0 - pad, w.y0 - pad, w.x1 + pad, w.y1 + pad), fill=0)
    near, far = round(_NEAR * height), round(_FAR * height)
    found: set[int] = set()
    for i, w in enumerate(words):
        if sum(c.isalnum() for c in w.text) < _MIN_LETTERS:
            continue
        top = w.y0 + round(0.15 * height)
        bottom = max(top + 1, w.y1 - round(0.15 * height))
        for x0, x1 in ((w.x0 - far, w.x0 - near), (w.x1 + near, w.x1 + far)):
            if _share(unread, (x0, top, x1, bottom)) > UNREAD_SHARE:
                found.add(i)
                break
    return found


def _share(mask: Image.Image, box: tuple[int, int, int, int]) -> float:
    x0, y0 = max(box[0], 0), max(box[1], 0)
    x1, y1 = min(box[2], mask.width), min(box[3], mask.height)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    hist = mask.crop((x0, y0, x1, y1)).histogram()
    total = sum(hist[:256])
    return hist[255] / total if total else 0.0
