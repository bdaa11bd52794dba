"""OCR output that is not text: dropped before the extractor sees it.

Tesseract turns dotted fill-in lines, signatures, stamps and scanner dirt into
"words" ("m---eeeerereaseeeereaa", "‚;:.", "ZZWZ"). In a table cell they stay inside
the cell, but in running text such a line lands after a label and becomes a value
(junk remarks) or a phantom participant. A word is junk when it was read poorly
*and* does not look like a word: runs of one letter, runs of dashes, no vowel in a
long run of letters. Well-read words are never dropped, whatever they look like.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from mailbot.forms.ocr_words import Scored, W

__all__ = ["clean_line", "is_junk"]

# Confidence (0–100) at or above which a word is kept as read.
KEEP = 60.0
# Below this a word is junk whatever it looks like: Tesseract's guess at a speck.
HOPELESS = 15.0
# A line with no word at KEEP and a mean below this is dropped whole.
POOR_LINE = 40.0

_VOWELS = frozenset("aeiouyąęóAEIOUYĄĘÓ")
_REPEATED = re.compile(r"([^\W\d])\1\1")
_RULE = re.compile(r"[-–—_=~.]{3,}")
_DASHES = frozenset("-–—‐")
_ADDRESS = re.compile(r"[@©]|[^\W\d_]{2,}\.(?:pl|com|eu|org|net|gov)\b")


def is_junk(word: Scored) -> bool:
    """A poorly read word that is no word: scribble, fill-in dots, dirt."""
    if word.conf >= KEEP:
        return False
    text = word.text
    if word.conf < HOPELESS:
        return True
    if _REPEATED.search(text) or _RULE.search(text):
        return True
    letters = [c for c in text if c.isalpha()]
    if len(letters) >= 5 and not any(c in _VOWELS for c in letters):
        return True
    return not any(c.isalnum() for c in text)


def clean_line(line: Sequence[W]) -> list[W]:
    """A line without its junk words and trailing dashes; empty when junk is most of
    the line, or when no word left was read well and on average they were read badly
    (a stamp, dirt)."""
    kept = [w for w in line if not is_junk(w)]
    if 2 * len(kept) < len(line):
        return []
    if kept and max(w.conf for w in kept) < KEEP and not any(
        _ADDRESS.search(w.text) for w in kept
    ):
        # Judged without its junk: "dieta" (doubted) beside "bezglutenowa" read at 0
        # is a value cut short, to be flagged, not dirt. An address piece (".opole.pl"
        # wrapped in a narrow cell) is kept too: dropping it would truncate it.
        if sum(w.conf for w in kept) / len(kept) < POOR_LINE:
            return []
    while kept and all(c in _DASHES for c in kept[-1].text):
        kept = kept[:-1]  # a dash ending a line: a stamp's ring or a rule's stub
    return kept
