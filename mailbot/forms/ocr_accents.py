"""An accent the pixels show and the OCR text lacks: "Slęzak" printed as "Ślęzak".

Tesseract's Polish model drops the acute of a capital Ś, Ć, Ź, Ń, Ó or the dot of Ż
now and then and is sure of the result (92 for "Slezak-Bak"); both the page and
the enlarged reading may agree on it. The ink does not: above the word's first
letter sits a small separate mark. A word whose first letter is a plain S, C, Z,
N or O with such a mark over it is doubted, so its value is flagged.
"""

from __future__ import annotations

from PIL import Image

from mailbot.forms.ocr_words import Boxed

__all__ = ["accent_lost"]

# First letters that have an accented Polish twin (and no dot or mark of their own).
_PLAIN = frozenset("SCZNOscznoe")
# How far above the word box a mark may sit (× text height), and how tall a mark
# may be against the letter's body.
_ABOVE = 0.45
_MARK_MAX = 0.45
_MIN_INK = 6


def accent_lost(ink: Image.Image, word: Boxed, height: float) -> bool:
    """Whether ``word``'s plain first letter has a separate mark over it in ``ink``
    (255 = ink); ``height`` is the page's typical word height in pixels."""
    text = word.text
    if not text or text[0] not in _PLAIN or not text[0].isalpha():
        return False
    width = word.x1 - word.x0
    letter = min(round(width / max(len(text), 1) * 1.1), round(0.8 * height))
    top = word.y0 - round(_ABOVE * height)
    box = (max(word.x0, 0), max(top, 0), min(word.x0 + letter, ink.width), min(word.y1, ink.height))
    if box[2] - box[0] < 3 or box[3] - box[1] < 6:
        return False
    crop = ink.crop(box)
    w = crop.width
    data = crop.tobytes()
    rows = [sum(1 for v in data[r * w : (r + 1) * w] if v) for r in range(crop.height)]
    runs: list[tuple[int, int, int]] = []  # (start, end, ink)
    start = None
    for r, count in enumerate([*rows, 0]):
        if count >= 1 and start is None:
            start = r
        elif count == 0 and start is not None:
            runs.append((start, r, sum(rows[start:r])))
            start = None
    if len(runs) < 2:
        return False
    body = max(runs, key=lambda run: run[1] - run[0])
    above = [run for run in runs if run[1] <= body[0]]
    if not above:
        return False
    mark = above[-1]  # the run right over the letter
    tall = mark[1] - mark[0]
    gap = body[0] - mark[1]
    return (
        mark[0] > 0  # not a descender of the line above, cut by the crop
        and mark[2] >= _MIN_INK
        and 2 <= tall <= _MARK_MAX * (body[1] - body[0])
        and gap <= 0.25 * height
    )
