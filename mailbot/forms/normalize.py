"""Turning raw form text into the values the contract promises.

Everything here is pure and cheap: it runs for every value of every form, and the
same rules must hold whatever format the value came from (docs/forms.md: trimmed, inner
whitespace collapsed, placeholder lines removed, absent → ``None``, E.164 phones,
email-validator e-mails).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

import phonenumbers
from email_validator import EmailNotValidError, validate_email

__all__ = [
    "clean_text",
    "fold",
    "normalize_email",
    "normalize_phone",
    "phone_assigned",
    "strip_placeholders",
]

# Dotted/underscored fill-in lines ("......", "____", "…") and long dash runs.
_PLACEHOLDER_RUNS = re.compile(r"(?:…|\.{3,}|_{3,}|-{4,}|–{2,})+")
_WS = re.compile(r"\s+")
# Word's blank legacy-field spaces are U+2002 en-spaces; NBSP and friends are blank too.
_BLANK_CHARS = "\u00a0\u2002\u2003\u2007\u2009\u200a\u202f\u3000"
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_EDGE_JUNK = " \t:;,|"


def strip_placeholders(text: str) -> str:
    """Remove fill-in runs (``.....``, ``____``, ``…``) but keep single dots ("ul.", "ds.")."""
    return _PLACEHOLDER_RUNS.sub(" ", text)


def clean_text(value: str | None, placeholders: Iterable[str] = ()) -> str | None:
    """Trim, collapse whitespace, drop placeholder runs/prompts; empty → ``None``.

    ``placeholders`` are whole-value prompts such as "Kliknij tutaj, aby wprowadzić
    tekst." that count as empty; compare them folded so case/diacritics don't matter.
    """
    if value is None:
        return None
    text = value.translate(_ZERO_WIDTH)
    text = strip_placeholders(text)
    text = _WS.sub(" ", text).strip(_EDGE_JUNK + _BLANK_CHARS)
    if not text:
        return None
    folded = fold_key(text)
    for prompt in placeholders:
        key = fold_key(prompt)
        if key and key in folded and len(folded) - len(key) <= 2:
            return None
    return text


# --- folding ------------------------------------------------------------------------

_SPECIAL_FOLD = {
    "ł": "l",
    "Ł": "l",
    "đ": "d",
    "Đ": "d",
    "ø": "o",
    "Ø": "o",
    "ß": "s",
    "æ": "a",
    "Æ": "a",
    "œ": "o",
    "Œ": "o",
    "ı": "i",
    "İ": "i",
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u00a0": " ",
    "\u2002": " ",
    "\u2003": " ",
    "\u2007": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\t": " ",
}


def _build_fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in range(0x80, 0x250):
        ch = chr(code)
        if ch in _SPECIAL_FOLD:
            continue
        base = unicodedata.normalize("NFKD", ch)[:1]
        if base and base.isascii() and base.isalnum():
            table[code] = base.lower()
    for ch, repl in _SPECIAL_FOLD.items():
        table[ord(ch)] = repl
    return table


_FOLD_TABLE = _build_fold_table()


def fold(text: str) -> str:
    """Lower-case and strip diacritics, one output char per input char.

    Keeping the length lets callers find a label in the folded text and cut the
    original at the same offset.
    """
    out = text.translate(_FOLD_TABLE).lower()
    if len(out) != len(text):  # a rare char whose lower() is longer (e.g. "ẞ" variants)
        out = "".join(c.translate(_FOLD_TABLE).lower()[:1] or c for c in text)
    return out


_KEY_JUNK = re.compile(r"[^a-z0-9@]+")


@functools.lru_cache(maxsize=4096)
def fold_key(text: str) -> str:
    """Folded text with punctuation and spacing removed, for equality tests."""
    return _KEY_JUNK.sub("", fold(text))


# --- phones -------------------------------------------------------------------------

_EXTENSION = re.compile(
    r"(?:\bwew(?:n)?\.?|\bw\.|\bext\.?|\bx)\s*\d{1,5}\s*$", re.IGNORECASE
)
_PHONE_PREFIX = re.compile(
    r"^\s*(?:tel(?:efon)?|kom(?:órka|orka)?|fax|nr)\.?\s*:?\s*", re.IGNORECASE
)


def normalize_phone(value: str | None) -> tuple[str | None, bool]:
    """Return ``(E.164 or the value as written, valid)``; ``(None, True)`` when absent.

    Polish numbers are assumed without a country code. The old trunk prefix 0
    ("(077) 4080500") is dropped: phonenumbers would otherwise keep it as an
    "Italian leading zero" and print +480774080500.
    """
    text = clean_text(value)
    if text is None:
        return None, True
    candidate = _EXTENSION.sub("", _PHONE_PREFIX.sub("", text)).strip()
    if not candidate.startswith(("+", "00")):
        digits = re.sub(r"\D", "", candidate)
        if len(digits) == 10 and digits.startswith("0"):
            candidate = digits[1:]
    number = _parse_phone(candidate)
    if number is None:
        # Several numbers or words around one: take the first number found.
        for match in phonenumbers.PhoneNumberMatcher(text, "PL"):
            number = match.number
            break
    if number is None or not _complete(number):
        return text, False
    number.italian_leading_zero = False
    number.number_of_leading_zeros = None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if len(_ASSIGNED) > 4096:
        _ASSIGNED.clear()
    _ASSIGNED[e164] = phonenumbers.is_valid_number(number)
    return e164, True


_ASSIGNED: dict[str, bool] = {}
"""E.164 → lies in an assigned range, noted while the parsed number is at hand, so the
cross-check that follows for the same form need not parse it again."""


def phone_assigned(e164: str) -> bool:
    """Whether a normalised number lies in a range its country's plan assigns
    (a Polish "+48 123 456 789" has nine digits but no such area code)."""
    known = _ASSIGNED.get(e164)
    if known is not None:
        return known
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


def _complete(number: phonenumbers.PhoneNumber) -> bool:
    """Whether no digit is missing or extra: every Polish number has nine digits
    ("77 40 80 5" is a number with a digit lost, not +487740805); a foreign number
    must be valid for its country. A nine-digit Polish number with an unassigned
    prefix stays valid here; the cross-checks only doubt it."""
    if number.country_code == 48:
        return len(str(number.national_number)) == 9
    return phonenumbers.is_valid_number(number)


def _parse_phone(text: str) -> phonenumbers.PhoneNumber | None:
    if not re.search(r"\d", text) or re.search(r"[A-Za-zżźćńółęąśŻŹĆĄŚĘŁÓŃ]{3,}", text):
        return None
    try:
        return phonenumbers.parse(text, "PL")
    except phonenumbers.NumberParseException:
        return None


# --- e-mails ------------------------------------------------------------------------

_EMAIL_IN_TEXT = re.compile(r"[^\s<>(),;:\"'\[\]]+@[^\s<>(),;:\"'\[\]]+\.[A-Za-z]{2,}")


def normalize_email(value: str | None) -> tuple[str | None, bool]:
    """Return ``(normalised address or the value as written, valid)``; absent → ``(None, True)``.

    email-validator lower-cases the domain and keeps the local part ("SEKRETARIAT@BRZEG.PL"
    → "SEKRETARIAT@brzeg.pl"); no DNS is asked. A value like "mailto:x@y.pl" or
    "x@y.pl (sekretariat)" is reduced to the one address it holds.
    """
    text = clean_text(value)
    if text is None:
        return None, True
    candidate = text.removeprefix("mailto:").strip()
    result = _validate(candidate)
    if result is None:
        found = list(_EMAIL_IN_TEXT.finditer(candidate))
        # Only an address set apart from the words around it ("x@y.pl (sekretariat)",
        # "<x@y.pl>"): in "jan kowalski@nysa.pl" the space is a typo, not a separator.
        if len(found) == 1 and re.fullmatch(
            r"(?:.*[:;,(<\[])?\s*", candidate[: found[0].start()]
        ):
            result = _validate(found[0].group().rstrip("."))
    if result is None:
        return text, False
    return result, True


def _validate(candidate: str) -> str | None:
    try:
        return validate_email(candidate, check_deliverability=False).normalized
    except EmailNotValidError:
        return None
    except (ValueError, UnicodeError):  # odd Unicode can trip idna inside the library
        return None
