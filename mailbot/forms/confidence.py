"""How sure the reader is of each value, and which values to doubt out loud.

Every value gets a ``Provenance``: where it was read (a form control, a table cell,
running text, OCR) and a confidence from 0 to 1. The confidence starts from the
source, drops for each repair the value needed (lines joined without a space, a soft
hyphen dropped, an OCR repair), follows OCR's own word confidences, and then meets the
cross-checks (``mailbot.forms.crosscheck``): an e-mail one letter away from the
person's name, a domain one letter away from the institution's, a first name one
letter away from a common one, a number in no assigned range.

Below ``CONFIDENCE_THRESHOLD`` the field gets a ``low_confidence`` problem whose
message can be quoted to the participant, with the proposed alternative (if one) in
``suggestion``. The value itself is never replaced: a wrong value stated confidently
is worse than a doubtful one shown as doubtful.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from mailbot.forms.crosscheck import (
    Verdict,
    check_domain,
    check_first_name,
    check_local_part,
    phone_assigned,
)
from mailbot.forms.model import CONFIDENCE_THRESHOLD, Method, Problem, Provenance

__all__ = ["UNCLEAR", "Reading", "assess"]

Kind = Literal["name", "position", "phone", "email", "institution", "address", "remarks"]

# A clean value's confidence by where it was read: a control holds exactly what was
# typed; a table cell can still carry a neighbour's text; running text relies on
# where a label ends.
_BASE: dict[Method, float] = {"fields": 0.99, "table": 0.97, "text": 0.95, "ocr": 0.9}
# What each repair costs. Lines joined without a space decide an address or a
# number (where the line broke is a guess); in a name they only close a hyphen
# ("Krawczyk-" ↵ "Grabowski"). A wrapped line matters only where a line break cannot
# occur in the value itself (an address, a number).
_REPAIR = {"joined": 0.9, "marker": 0.93, "repaired": 0.85}
_JOINED_TEXT = 0.97
_WRAPPED = 0.95
_STRICT_KINDS = ("email", "phone")
# Tesseract's word confidence (0–100) at which a value becomes doubtful; above it
# the value's confidence rises linearly to ``_BASE["ocr"]``.
OCR_WORD_DOUBT = 50.0
# A cross-check pointing to one close alternative: below the threshold whatever else.
_CLOSE = 0.5
# An OCR'd address that nothing on the form corroborates (neither the name nor a
# known domain): doubtful, because an OCR slip in it would pass every syntax check.
_OCR_UNCORROBORATED = 0.75
_UNASSIGNED_PHONE = 0.6
_UNREADABLE_GLYPH = 0.5
# A value broken over lines where the reader cannot tell which reading the line break
# makes ("…@firma.co" ↵ "m": "…@firma.com", or "…@firma.co" and a stray "m"). The
# extractor notes it as ``f"{UNCLEAR}: {the other reading}"``.
UNCLEAR = "unclear line break"
_UNCLEAR_BREAK = 0.6


@dataclass
class Reading:
    """One value as the extractor found it."""

    path: str
    kind: Kind
    value: str
    raw: str
    """The text as read, before normalisation (OCR confidences are looked up by it)."""
    source: Method
    notes: list[str] = field(default_factory=list)
    person: str | None = None
    """For a participant's e-mail: that participant's name, for the cross-check."""


def assess(
    readings: Sequence[Reading],
    *,
    ocr_score: Callable[[str], float | None] | None = None,
    settled: set[str] | frozenset[str] = frozenset(),
) -> tuple[dict[str, Provenance], list[Problem]]:
    """Provenance for every reading, and a ``low_confidence`` problem for each doubt.

    ``ocr_score`` gives a raw value's lowest OCR word confidence (0–100); ``settled``
    names fields that already carry a ``missing``/``invalid`` problem (not doubted
    twice).
    """
    domains = [r.value.rpartition("@")[2] for r in readings if r.kind == "email"]
    provenance: dict[str, Provenance] = {}
    problems: list[Problem] = []
    for reading in readings:
        confidence, notes, suggestion = _score(reading, domains, ocr_score)
        provenance[reading.path] = Provenance(
            reading.source, round(confidence, 3), notes
        )
        if confidence < CONFIDENCE_THRESHOLD and reading.path not in settled:
            problems.append(_problem(reading, suggestion))
    return provenance, problems


def _score(
    reading: Reading,
    domains: list[str],
    ocr_score: Callable[[str], float | None] | None,
) -> tuple[float, list[str], str | None]:
    notes = list(reading.notes)
    confidence = _BASE[reading.source]
    words: float | None = None
    if reading.source == "ocr" and ocr_score is not None:
        words = ocr_score(reading.raw)
        if words is not None:
            notes.append(f"ocr {words:.0f}")
            confidence = min(confidence, _from_ocr(words))
    if "\ufffd" in reading.raw or "\ufffd" in reading.value:
        # A glyph drawn with no character behind it (a PDF font without a Unicode
        # map): the value is incomplete however clean the rest looks.
        notes.append("unreadable glyph")
        confidence = min(confidence, _UNREADABLE_GLYPH)
    strict = reading.kind in _STRICT_KINDS
    suggestion: str | None = None
    for note in reading.notes:
        if note.startswith(UNCLEAR):
            confidence = min(confidence, _UNCLEAR_BREAK)
            suggestion = note.partition(": ")[2] or None
        elif note == "joined" and not strict:
            confidence *= _JOINED_TEXT
        elif note == "wrapped":
            confidence *= _WRAPPED if strict else 1.0
        else:
            confidence *= _REPAIR.get(note, 1.0)
    if reading.kind == "email":
        words_ok = words is None or words >= OCR_WORD_DOUBT  # read well enough to vouch
        confidence, checked = _email(reading, domains, confidence, notes, words_ok)
        suggestion = checked or suggestion
    elif reading.kind == "phone" and reading.value.startswith("+"):
        if not phone_assigned(reading.value):
            notes.append("no such number range")
            confidence = min(confidence, _UNASSIGNED_PHONE)
    elif reading.kind == "name" and (
        reading.source == "ocr" or {"joined", "marker"} & set(reading.notes)
    ):
        verdict = check_first_name(reading.value)
        if verdict.outcome == "close":
            notes.append("first name close to a common one")
            confidence = min(confidence, _CLOSE)
            suggestion = verdict.suggestion
    return confidence, notes, suggestion


def _from_ocr(words: float) -> float:
    """Tesseract's 0–100 on the same scale as the other sources."""
    if words < OCR_WORD_DOUBT:
        return CONFIDENCE_THRESHOLD * max(words, 0.0) / OCR_WORD_DOUBT * 0.99
    span = (words - OCR_WORD_DOUBT) / (100.0 - OCR_WORD_DOUBT)
    return CONFIDENCE_THRESHOLD + span * (_BASE["ocr"] - CONFIDENCE_THRESHOLD)


def _email(
    reading: Reading,
    domains: list[str],
    confidence: float,
    notes: list[str],
    words_ok: bool,
) -> tuple[float, str | None]:
    address = reading.value
    if "@" not in address:
        return confidence, None
    others = list(domains)
    own = address.rpartition("@")[2]
    if own in others:
        others.remove(own)  # its own occurrence is no corroboration
    local: Verdict = check_local_part(address, reading.person)
    domain = check_domain(address, others)
    suggestion: str | None = None
    if local.outcome == "close" and local.suggestion:
        notes.append("e-mail close to the name")
        suggestion = local.suggestion
    if domain.outcome == "close" and domain.suggestion:
        notes.append("domain close to a known one")
        base = suggestion or address
        suggestion = (
            base.rpartition("@")[0] + "@" + domain.suggestion.rpartition("@")[2]
        )
    if suggestion is not None:
        return min(confidence, _CLOSE), suggestion
    agreeing = (local.outcome == "agrees") + (domain.outcome == "agrees")
    if reading.source == "ocr":
        if agreeing == 2 and words_ok:
            notes.append("matches the name and a known domain")
            return max(confidence, CONFIDENCE_THRESHOLD + 0.05), None
        if agreeing == 0:
            notes.append("nothing on the form corroborates it")
            return min(confidence, _OCR_UNCORROBORATED), None
        # One half corroborated: a repair of the "@" or the ".pl" is then no doubt
        # of its own; the other half's words must have been read well.
        if words_ok:
            notes.append(
                "matches the name" if local.outcome == "agrees" else "matches a known domain"
            )
            return max(confidence, CONFIDENCE_THRESHOLD + 0.01), None
    return confidence, None


_MASC = "mógł zostać odczytany błędnie"
_FEM = "mogła zostać odczytana błędnie"
_NEUT = "mogło zostać odczytane błędnie"
_PLUR = "mogły zostać odczytane błędnie"
# (what, verb) per kind, for a participant's field and for the institution's.
_PERSON_WORDING: dict[str, tuple[str, str]] = {
    "email": ("Adres e-mail uczestnika {n} ({v})", _MASC),
    "phone": ("Numer telefonu uczestnika {n} ({v})", _MASC),
    "name": ("Imię i nazwisko uczestnika {n} ({v})", _PLUR),
    "position": ("Stanowisko uczestnika {n} ({v})", _NEUT),
}
_OTHER_WORDING: dict[str, tuple[str, str]] = {
    "email": ("Adres e-mail instytucji ({v})", _MASC),
    "phone": ("Numer telefonu instytucji ({v})", _MASC),
    "address": ("Adres instytucji ({v})", _MASC),
    "institution": ("Nazwa instytucji ({v})", _FEM),
    "remarks": ("Treść uwag", _FEM),
}


def _problem(reading: Reading, suggestion: str | None) -> Problem:
    """Polish, short, fit to quote to the participant."""
    path = reading.path
    if path.startswith("participants["):
        n = int(path[len("participants[") : path.index("]")]) + 1
        what, verb = _PERSON_WORDING.get(reading.kind, ("Dane uczestnika {n}", _PLUR))
    else:
        n = 0
        what, verb = _OTHER_WORDING.get(reading.kind, ("Dane instytucji", _PLUR))
    message = f"{what.format(n=n, v=reading.value)} {verb}"
    message += f"; czy chodzi o {suggestion}?" if suggestion else "; prosimy o sprawdzenie."
    return Problem(path, "low_confidence", message, suggestion)
