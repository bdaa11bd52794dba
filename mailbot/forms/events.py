"""Which configured event a form is for, told by city and date.

All events of the cycle share one title, so the title proves nothing; the header
line ("Opole, 18 kwietnia 2016 r., Sala Herbowa …") does. Cities appear declined
("w Opolu", "w Toruniu") or without diacritics, dates in several notations. The
deadline ("prosimy przesyłać do 14 kwietnia") and the signature line ("Miejscowość,
data: Brzeg, 3 kwietnia 2016") name other dates and places and are skipped by the
caller (see ``Vocabulary.is_not_event``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mailbot.forms.model import EventRef
from mailbot.forms.normalize import fold

__all__ = ["EventLine", "events_named", "find_dates", "mentions_city", "recognise_event"]

_MONTHS = {
    "stycznia": 1,
    "styczen": 1,
    "lutego": 2,
    "luty": 2,
    "marca": 3,
    "marzec": 3,
    "kwietnia": 4,
    "kwiecien": 4,
    "maja": 5,
    "maj": 5,
    "czerwca": 6,
    "czerwiec": 6,
    "lipca": 7,
    "lipiec": 7,
    "sierpnia": 8,
    "sierpien": 8,
    "wrzesnia": 9,
    "wrzesien": 9,
    "pazdziernika": 10,
    "pazdziernik": 10,
    "listopada": 11,
    "listopad": 11,
    "grudnia": 12,
    "grudzien": 12,
}
_ROMAN = {
    "i": 1,
    "ii": 2,
    "iii": 3,
    "iv": 4,
    "v": 5,
    "vi": 6,
    "vii": 7,
    "viii": 8,
    "ix": 9,
    "x": 10,
    "xi": 11,
    "xii": 12,
}
_WORD_DATE = re.compile(
    r"\b(\d{1,2})\s*("
    + "|".join(sorted(_MONTHS, key=len, reverse=True))
    + r")\s*(\d{4})\b"
)
_ROMAN_DATE = re.compile(
    r"\b(\d{1,2})\s*[ .]\s*(xii|xi|x|ix|viii|vii|vi|v|iv|iii|ii|i)\s*[ .]\s*(\d{4})\b"
)
_DMY = re.compile(r"\b(\d{1,2})\s*[./-]\s*(\d{1,2})\s*[./-]\s*(\d{4})\b")
_YMD = re.compile(r"\b(\d{4})\s*[./-]\s*(\d{1,2})\s*[./-]\s*(\d{1,2})\b")
_WORD = re.compile(r"[a-z]+")
# Case endings a Polish city name takes after its stem ("Opol|u", "Torun|iu", "Lublin|ie").
_CITY_ENDINGS = frozenset(
    {"", "a", "e", "u", "y", "i", "o", "ie", "iu", "ia", "em", "owi", "iem", "ow"}
)


@dataclass(frozen=True, slots=True)
class EventLine:
    """A line that may name the event; ``header`` when it precedes the form's body."""

    text: str
    header: bool


def find_dates(text: str) -> set[dt.date]:
    """Dates written as "18 kwietnia 2016", "18.04.2016", "2016-04-18" or "18 IV 2016"."""
    folded = fold(text)
    found: set[dt.date] = set()
    for m in _WORD_DATE.finditer(folded):
        _add(found, int(m.group(3)), _MONTHS[m.group(2)], int(m.group(1)))
    for m in _ROMAN_DATE.finditer(folded):
        _add(found, int(m.group(3)), _ROMAN[m.group(2)], int(m.group(1)))
    for m in _DMY.finditer(folded):
        _add(found, int(m.group(3)), int(m.group(2)), int(m.group(1)))
    for m in _YMD.finditer(folded):
        _add(found, int(m.group(1)), int(m.group(2)), int(m.group(3)))
    return found


def _add(found: set[dt.date], year: int, month: int, day: int) -> None:
    try:
        found.add(dt.date(year, month, day))
    except ValueError:
        pass


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word[-1] in "aeiouy" else word


def mentions_city(text: str, city: str) -> bool:
    """``text`` names ``city`` in any case form, with or without diacritics."""
    city_words = _WORD.findall(fold(city))
    if not city_words:
        return False
    stems = [_stem(w) for w in city_words]
    words = _WORD.findall(fold(text))
    n = len(stems)
    for i in range(len(words) - n + 1):
        if all(
            words[i + k].startswith(stems[k])
            and words[i + k][len(stems[k]) :] in _CITY_ENDINGS
            for k in range(n)
        ):
            return True
    return False


def recognise_event(
    lines: Iterable[EventLine], events: Sequence[EventRef]
) -> str | None:
    """The key of the one event the header (else the body) names, or ``None``.

    A line naming an event's city and its date is strong evidence; city or date
    alone is weak. A line that pairs one event's city with another date contradicts
    that event. The header is searched first; the body only when the header names
    nothing.
    """
    header: list[str] = []
    body: list[str] = []
    for line in lines:
        (header if line.header else body).append(line.text)
    for group in (header, body):
        key = _decide(group, events, allow_weak=group is header)
        if key is not None:
            return key
    return None


def _decide(
    texts: Sequence[str], events: Sequence[EventRef], *, allow_weak: bool
) -> str | None:
    strong: set[str] = set()
    weak: set[str] = set()
    contradicted: set[str] = set()
    for text in texts:
        dates = find_dates(text)
        cities = {e.key for e in events if mentions_city(text, e.city)}
        if not dates and not cities:
            continue
        for e in events:
            has_city = e.key in cities
            has_date = e.date in dates
            if has_city and has_date:
                strong.add(e.key)
            elif has_city and dates:
                contradicted.add(
                    e.key
                )  # "Opole, 25 kwietnia" for an Opole event on the 18th
            elif has_date and cities:
                contradicted.add(e.key)
            elif has_city or has_date:
                weak.add(e.key)
    strong -= contradicted
    if len(strong) == 1:
        return next(iter(strong))
    if strong or not allow_weak:
        return None
    weak -= contradicted
    if len(weak) == 1:
        return next(iter(weak))
    return None


# "18 kwietnia" without a year: matched against each event's own year.
_DAY_MONTH = re.compile(
    r"\b(\d{1,2})\s*(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b(?!\s*\d{4})"
)
# Lines of an address or a signature block name the sender's town, not an event:
# "ul. Rynek 1, 45-000 Opole", "tel. 77 …", "Urząd Miasta Lublin".
_ADDRESS_LINE = re.compile(r"\b\d{2}-\d{3}\b|\b(?:ul|al|pl|tel|fax|kom|os)\.|\bwww\b|@")
_SIGNATURE_LINE = re.compile(
    r"^\W*(?:urzad|starostwo|gmina|gminy|powiat\w*|miasto|sekretariat|burmistrz|wojt|starosta"
    r"|prezydent|referat|wydzial|biuro|zespol|inspektor|kierownik|naczelnik|sekretarz|skarbnik)\b"
)


def events_named(texts: Iterable[str], events: Sequence[EventRef]) -> set[str]:
    """Keys of the events a person's own words name, by city ("na konferencję w Opolu")
    or by date ("18 kwietnia 2016", "18.04.2016", "18 kwietnia"); lines of an address
    or a signature block are skipped (the sender's town is no choice of event)."""
    named: set[str] = set()
    for text in texts:
        for line in text.splitlines():
            folded = fold(line)
            if not folded.strip() or _ADDRESS_LINE.search(folded):
                continue
            if len(folded.split()) <= 6 and _SIGNATURE_LINE.match(folded):
                continue
            dates = find_dates(line)
            day_months = {(int(m.group(1)), _MONTHS[m.group(2)]) for m in _DAY_MONTH.finditer(folded)}
            for e in events:
                if (
                    mentions_city(line, e.city)
                    or e.date in dates
                    or (e.date.day, e.date.month) in day_months
                ):
                    named.add(e.key)
    return named
