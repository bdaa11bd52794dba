"""Field-by-field scoring of a parse against what a generated copy holds.

The generators (``pdfgen``, ``scangen``, the docx variants) each yield ``GenCase``s:
the bytes of one filled-in copy, the bucket it is counted in ("pdf-word",
"scan-200dpi"…) and the ``FormData`` a perfect reader would return. ``score`` compares
one key per field of the contract, the way the acceptance set is judged:

- a field is *right* when the value read equals the value expected;
- a field is *caught* when it is wrong but carries a ``low_confidence`` (or
  ``ambiguous``) problem naming it: the program said it was unsure, nothing false was
  stated as sure;
- otherwise it is *wrong*;
- a field flagged ``low_confidence`` although it is right is *doubted* (the doubt's
  cost: a person is asked for no reason).

A file is *exact* when every field is right. Used by the tests and by
``bench/accuracy.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mailbot.forms.model import FormData

__all__ = ["GenCase", "Score", "flat_fields", "score", "tally"]

_DOUBT_CODES = frozenset({"low_confidence", "ambiguous"})


@dataclass(frozen=True)
class GenCase:
    """One generated copy: its bytes and what reading it must give."""

    label: str
    """Names the variant, e.g. ``word-pdf/wrapped-email/3p``; shown on a failure."""
    kind: str
    """The accuracy bucket it counts in: ``pdf-word``, ``pdf-flattened``, ``scan-300dpi``…"""
    data: bytes
    expected: FormData
    filename: str = "zgloszenie.bin"


def flat_fields(form: FormData) -> dict[str, Any]:
    """One key per value of the contract (institution, participants, options, consents).

    ``participants`` count is a field of its own, so a dropped or phantom person is
    wrong even when every value of the others is right.
    """
    out: dict[str, Any] = {"status": form.status}
    if form.status != "ok":
        return out
    out["event"] = form.event
    inst = form.institution
    for name in ("name", "address", "phone", "email"):
        out[f"institution.{name}"] = getattr(inst, name) if inst is not None else None
    out["participants"] = len(form.participants)
    for i, person in enumerate(form.participants):
        for name in ("full_name", "position", "phone", "email"):
            out[f"participants[{i}].{name}"] = getattr(person, name)
    out["workshops"] = list(form.workshops)
    out["remarks"] = form.remarks
    consents = form.consents
    out["consents.data_processing"] = bool(consents and consents.data_processing)
    out["consents.newsletter"] = bool(consents and consents.newsletter)
    return out


@dataclass
class Score:
    right: int = 0
    caught: int = 0
    wrong: int = 0
    doubted: int = 0
    fields: int = 0
    files: int = 0
    exact_files: int = 0
    misses: list[str] = field(default_factory=list)
    """``label: key got X want Y`` for every wrong (uncaught) field."""

    def add(self, other: Score) -> None:
        self.right += other.right
        self.caught += other.caught
        self.wrong += other.wrong
        self.doubted += other.doubted
        self.fields += other.fields
        self.files += other.files
        self.exact_files += other.exact_files
        self.misses.extend(other.misses)

    @property
    def accuracy(self) -> float:
        return self.right / self.fields if self.fields else 1.0

    @property
    def right_or_caught(self) -> float:
        return (self.right + self.caught) / self.fields if self.fields else 1.0

    @property
    def doubt_rate(self) -> float:
        return self.doubted / self.fields if self.fields else 0.0


def _doubted(form: FormData) -> set[str]:
    return {p.field for p in form.problems if p.code in _DOUBT_CODES}


def score(got: FormData, expected: FormData, label: str = "") -> Score:
    """Compare every field of ``expected`` with ``got``."""
    want = flat_fields(expected)
    have = flat_fields(got)
    doubts = _doubted(got)
    s = Score(files=1)
    for key, value in want.items():
        s.fields += 1
        flagged = key in doubts or any(d.startswith(key + ".") for d in doubts)
        if key.startswith("participants[") and "participants" in doubts:
            flagged = True
        if have.get(key, None) == value and (key in have or value is None):
            s.right += 1
            if key in doubts:
                s.doubted += 1
        elif flagged:
            s.caught += 1
        else:
            s.wrong += 1
            s.misses.append(f"{label}: {key} got {have.get(key)!r} want {value!r}")
    # A phantom participant (read but not on the form) is wrong too.
    for key in have.keys() - want.keys():
        s.fields += 1
        if key in doubts:
            s.caught += 1
        else:
            s.wrong += 1
            s.misses.append(f"{label}: {key} got {have[key]!r}, not on the form")
    s.exact_files = int(s.right == s.fields)
    return s


def tally(results: Iterable[tuple[FormData, FormData, str]]) -> Score:
    """The sum of ``score`` over (got, expected, label) triples."""
    total = Score()
    for got, expected, label in results:
        total.add(score(got, expected, label))
    return total
