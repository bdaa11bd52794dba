"""Phones and e-mails read three ways, and a vote between the readings.

A phone or e-mail is read by the page pass (``pol+eng``, 300 dpi), enlarged
(``pol``, 2×) and once more by the English model at 1× (it reads "@" and digit
runs such as "77" that the Polish model at 2× turned into "42" or "14"). Every
reading may be a *valid* number or address and still be wrong, so validity alone
cannot choose: two readings that make the same value outvote the third, and when
valid readings disagree with no majority the value kept is marked doubtful (its
confidence lowered to ``DISAGREED``), so the extractor flags it instead of passing
a misread number on as read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal

from mailbot.forms.normalize import normalize_email, normalize_phone
from mailbot.forms.ocr_words import Scored, W

__all__ = ["DISAGREED", "Contact", "contact_kind", "vote"]

# The confidence (0–100) a value's words get when its readings disagree: under the
# extractor's doubt threshold (50), so the value is flagged ``low_confidence``, and
# above ``ocr_junk.POOR_LINE`` (40), so the line is not thrown away as dirt.
DISAGREED = 45.0

Contact = Literal["phone", "email"]

# A word read at least this well is not at risk of being dropped as junk later.
_SURE = 60.0

_DIGIT = re.compile(r"\d")
_ADDRESS = re.compile(r"[@©®]|\w{2,}\.[a-z]{2,4}\b")


def contact_kind(text: str) -> Contact | None:
    """Whether an OCR'd value is a phone (mostly digits) or an e-mail address."""
    if _ADDRESS.search(text) and not text.startswith("http"):
        return "email"
    alnum = [c for c in text if c.isalnum()]
    digits = len(_DIGIT.findall(text))
    if digits >= 7 and digits >= 0.7 * len(alnum):
        return "phone"
    return None


def vote(
    readings: Sequence[Sequence[W]],
    kind: Contact,
    repair: Callable[[str], str],
    prefer: Callable[[list[W], list[W]], list[W]],
) -> tuple[list[W], bool]:
    """The reading to keep of one value's readings (empty ones are ignored), and
    whether the readings disagreed (the caller marks the value doubtful).

    ``repair`` is the safe OCR repair of ``kind``; ``prefer`` the two-way choice
    between equally good readings. A value at least two readings agree on wins;
    readings that make different valid values with no majority disagree.
    """
    present = [list(r) for r in readings if r]
    if not present:
        return [], False
    texts = [_text(r, kind) for r in present]
    keys = [_key(t, kind, repair) for t in texts]
    counts: dict[str, int] = {}
    for key in keys:
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    if counts:
        best, votes = max(counts.items(), key=lambda kv: kv[1])
        if votes >= 2:
            agreeing = [r for r, k in zip(present, keys, strict=True) if k == best]
            # A reading with no poorly read word (one would be dropped as junk); for
            # an address the one in fewest words ("opole." + "pl" may be laid out
            # apart); then the surest.
            def rank(r: list[W]) -> tuple[bool, int, float]:
                low = min(w.conf for w in r)
                return low >= _SURE, -len(r) if kind == "email" else 0, low

            return max(agreeing, key=rank), False
    # No majority: the valid reading closest to all the others (their medoid), so
    # one model's odd misreading does not win on confidence alone.
    pool = [i for i, k in enumerate(keys) if k is not None] or list(range(len(present)))
    spelled = [repair(t).replace(" ", "") for t in texts]
    cost = {i: sum(_distance(spelled[i], s) for s in spelled) for i in pool}
    low = min(cost.values())
    chosen: list[W] | None = None
    for i in pool:
        if cost[i] == low:
            chosen = present[i] if chosen is None else prefer(chosen, present[i])
    assert chosen is not None
    return chosen, len(counts) >= 2


def _text(words: Sequence[Scored], kind: Contact) -> str:
    """A reading as one value: an address's pieces (wrapped lines) join without a
    space, as the extractor joins an e-mail cell's lines."""
    return ("" if kind == "email" else " ").join(w.text for w in words)


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (values are short: a phone or an address)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _key(text: str, kind: Contact, repair: Callable[[str], str]) -> str | None:
    """The value a reading makes (E.164 phone, normalised address), if valid."""
    fixed = repair(text)
    if kind == "phone":
        value, ok = normalize_phone(fixed)
    else:
        value, ok = normalize_email(fixed)
        ok = ok and "@" in fixed
        value = value.lower() if value else value
    return value if ok and value else None
