"""A participant's e-mail wrapped inside its PDF table cell is read whole, or doubted.

A narrow e-mail column cuts a long address anywhere: "elzbieta.mazurek@um.opo" ↵
"le.pl". The first line alone already reads as an address (a subdomain makes
"um.opo" look like one), so reading only it sends the acknowledgement nowhere. The
continuation line of the same cell is part of the address; where the reader cannot
tell ("…@firma.co" ↵ "m"), the value carries a ``low_confidence`` problem naming the
other reading, never a confident wrong one.

Every producer of ``pdfgen``/``pdfdraw`` that wraps cells is tried: reportlab
platypus tables (ruled and not), canvas-drawn tables (grid, row lines only, split
into words or glyphs, centred, right-aligned, bold, Type 1, turned pages), Word
printed by LibreOffice, and a drawn copy through Ghostscript (these two skipped
without ``soffice``/``gs``). Flattened and fillable forms set a value on one line and
do not wrap.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace

import pytest

from mailbot.forms import parse_bytes
from mailbot.forms.blank import FilledValues, make_docx
from mailbot.forms.confidence import UNCLEAR, Reading, assess
from mailbot.forms.extract import _join_noted
from mailbot.forms.model import EventRef, FormData, Participant
from tests.forms import pdfgen
from tests.forms.pdfdraw import Style, ascii_values, drawn_form, rotated

EVENTS = [EventRef("opole-2016", pdfgen.TITLE, "Opole", pdfgen.OPOLE.date)]

# Long enough to wrap in every producer's e-mail column, with the cut falling inside
# a subdomain, right before or after a dot, or inside a hyphenated domain.
WRAPPED = [
    "elzbieta.mazurek@um.opole.pl",
    "zaneta.kaczmarek@um.opole.pl",
    "bozena.cwik-gorska@sp.gmina.lubniany.pl",
    "lukasz.zolkiewski@um.dabrowa-opolska.pl",
    "grzegorz.dzwigaj@bip.opolskie.pl",
    "kowalska.nowak-anna@powiat.nysa.pl",
]


def _with_emails(emails: list[str], seed: int = 21) -> FilledValues:
    v = pdfgen.values(seed, len(emails))
    people = [replace(p, email=e) for p, e in zip(v.participants, emails, strict=True)]
    return replace(v, participants=people)


def _drawn(style: Style, turn: int = 0) -> Callable[[FilledValues], bytes]:
    def make(v: FilledValues) -> bytes:
        data = drawn_form(pdfgen.OPOLE, ascii_values(v) if style.type1 else v, style)
        return rotated(data, turn) if turn else data

    return make


PRODUCERS: dict[str, Callable[[FilledValues], bytes]] = {
    "reportlab/grid": lambda v: pdfgen.reportlab_pdf(pdfgen.OPOLE, v, grid=True),
    "reportlab/plain": lambda v: pdfgen.reportlab_pdf(pdfgen.OPOLE, v, grid=False),
    "drawn/grid": _drawn(Style()),
    "drawn/rows": _drawn(Style(rules="rows")),
    "drawn/glyphs": _drawn(Style(split="glyphs", value_bold=True)),
    "drawn/words-center": _drawn(Style(split="words", align="center", value_size=8)),
    "drawn/right": _drawn(Style(align="right")),
    "drawn/big": _drawn(Style(value_bold=True, value_size=11)),
    "drawn/type1": _drawn(Style(type1=True, rules="rows", split="glyphs")),
    "drawn/rotate90": _drawn(Style(), 90),
    "drawn/rotate270": _drawn(Style(rules="rows", align="right"), 270),
}


def _emails(got: FormData) -> list[str | None]:
    return [p.email for p in got.participants]


def _assert_whole_or_doubted(got: FormData, want: list[str]) -> None:
    assert len(got.participants) == len(want)
    for i, (person, email) in enumerate(zip(got.participants, want, strict=True)):
        if person.email != email:
            doubt = got.doubtful(f"participants[{i}].email")
            assert doubt is not None, f"{person.email!r} stated as sure, the form says {email!r}"


@pytest.mark.parametrize("producer", sorted(PRODUCERS))
def test_wrapped_address_is_read_whole(producer: str) -> None:
    got = parse_bytes(PRODUCERS[producer](_with_emails(WRAPPED)), "f.pdf", EVENTS)
    assert _emails(got) == WRAPPED
    assert not [p for p in got.problems if p.field.endswith(".email")]


@pytest.mark.parametrize("producer", sorted(PRODUCERS))
def test_one_wrapped_address_alone_is_read_whole(producer: str) -> None:
    # Alone, nothing on the form (another participant's domain) hints at the cut.
    want = ["elzbieta.mazurek@um.opole.pl"]
    got = parse_bytes(PRODUCERS[producer](_with_emails(want)), "f.pdf", EVENTS)
    assert _emails(got) == want
    assert got.doubtful("participants[0].email") is None


# Known, separate: with row lines only, a short right-aligned value falls outside the
# column the header sets up and is reported missing (never a wrong address).
_SHORT_LOST = pytest.mark.xfail(reason="rows-only table, short right-aligned values missed", strict=True)


@pytest.mark.parametrize(
    "producer",
    [pytest.param(p, marks=_SHORT_LOST) if p == "drawn/rotate270" else p for p in sorted(PRODUCERS)],
)
def test_short_addresses_in_adjacent_rows_stay_apart(producer: str) -> None:
    want = ["ug@um.opole.pl", "pl@nysa.pl", "a.b@um.pl", "le@opole.pl", "x@um.opole.pl"]
    got = parse_bytes(PRODUCERS[producer](_with_emails(want)), "f.pdf", EVENTS)
    assert _emails(got) == want
    assert not [p for p in got.problems if p.field.endswith(".email")]


def test_a_word_after_a_whole_address_is_doubted() -> None:
    # "…@powiat.pl sekretariat" wraps at its space: a whole address and a word, or
    # an address cut after ".pl"? The reader cannot tell, so it says so.
    emails = ["g.dzwigaj@powiat.pl sekretariat", "jerzy.bak@nysa.pl"]
    for name in ("drawn/grid", "reportlab/grid"):
        got = parse_bytes(PRODUCERS[name](_with_emails(emails)), "f.pdf", EVENTS)
        assert _emails(got)[1] == "jerzy.bak@nysa.pl"
        doubt = got.doubtful("participants[0].email")
        assert doubt is not None, (name, _emails(got))
        assert {got.participants[0].email, doubt.suggestion} >= {"g.dzwigaj@powiat.pl"}


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice not installed")
def test_word_printed_wrapped_address() -> None:
    v = _with_emails(WRAPPED)
    pdf = pdfgen.to_pdf([make_docx(pdfgen.OPOLE, v, style="table", rows=len(WRAPPED))])[0]
    assert pdf is not None
    got = parse_bytes(pdf, "f.pdf", EVENTS)
    assert _emails(got) == WRAPPED
    _assert_whole_or_doubted(got, WRAPPED)


@pytest.mark.skipif(shutil.which("gs") is None, reason="Ghostscript not installed")
def test_ghostscript_distilled_wrapped_address() -> None:
    pdf = pdfgen.distill(PRODUCERS["drawn/grid"](_with_emails(WRAPPED)))
    assert pdf is not None
    got = parse_bytes(pdf, "f.pdf", EVENTS)
    assert _emails(got) == WRAPPED


# --- where the cut falls: the cell's lines as the extractor gets them -------------------


@pytest.mark.parametrize(
    ("lines", "want"),
    [
        (["elzbieta.mazurek@um.opo", "le.pl"], "elzbieta.mazurek@um.opole.pl"),  # inside a label
        (["elzbieta.mazurek@um.opole.", "pl"], "elzbieta.mazurek@um.opole.pl"),  # after a dot
        (["elzbieta.mazurek@um.opole", ".pl"], "elzbieta.mazurek@um.opole.pl"),  # before a dot
        (["elzbieta.mazurek@um.opole.p", "l"], "elzbieta.mazurek@um.opole.pl"),  # inside the TLD
        (["elzbieta.mazurek@um.", "opole.pl"], "elzbieta.mazurek@um.opole.pl"),
        (["elzbieta.mazurek@", "um.opole.pl"], "elzbieta.mazurek@um.opole.pl"),  # at the "@"
        (["elzbieta.maz", "urek@um.opole.pl"], "elzbieta.mazurek@um.opole.pl"),  # local part
        (["elzbieta.", "mazurek@um.opole.pl"], "elzbieta.mazurek@um.opole.pl"),
        (["elzbieta.mazurek@", "um.opole.", "pl"], "elzbieta.mazurek@um.opole.pl"),  # three lines
        (["l.z@um.dabrowa", "-opolska.pl"], "l.z@um.dabrowa-opolska.pl"),  # hyphenated domain
        (["l.z@um.dabrowa-", "opolska.pl"], "l.z@um.dabrowa-opolska.pl"),
        (["l.z@um.dabrowa-opol", "ska.pl"], "l.z@um.dabrowa-opolska.pl"),
        (["b.cwik-", "gorska@sp.gmina.pl"], "b.cwik-gorska@sp.gmina.pl"),
    ],
)
def test_cut_anywhere_is_joined(lines: list[str], want: str) -> None:
    text, notes = _join_noted(lines, address=True)
    assert text == want
    assert not [n for n in notes if n.startswith(UNCLEAR)]


@pytest.mark.parametrize(
    ("lines", "value", "other"),
    [
        (["jan.kowalski@firma.co", "m"], "jan.kowalski@firma.com", "jan.kowalski@firma.co"),
        (["jan@um.de", "blin.pl"], "jan@um.deblin.pl", "jan@um.de"),
        (["jan@nysa.pl", "sekretariat"], "jan@nysa.pl sekretariat", "jan@nysa.plsekretariat"),
    ],
)
def test_cut_after_a_real_tld_is_unclear(lines: list[str], value: str, other: str) -> None:
    text, notes = _join_noted(lines, address=True)
    assert text == value
    assert f"{UNCLEAR}: {other}" in notes


@pytest.mark.parametrize(
    "lines",
    [
        ["a@nysa.pl", "b@nysa.pl"],  # two addresses: not one
        ["jan@nysa.pl", "(sekretariat)"],  # a comment, set apart
        ["jan@nysa.pl", "tel. 600 100 200"],
    ],
)
def test_not_an_address_tail_is_not_glued(lines: list[str]) -> None:
    text, notes = _join_noted(lines, address=True)
    assert text == " ".join(lines)
    assert "joined" not in notes


def test_unclear_break_is_doubted_with_the_other_reading() -> None:
    reading = Reading(
        "participants[0].email", "email", "jan.kowalski@firma.com", "jan.kowalski@firma.com",
        "table", [f"{UNCLEAR}: jan.kowalski@firma.co", "joined"], person="Jan Kowalski",
    )  # fmt: skip
    provenance, problems = assess([reading])
    assert provenance["participants[0].email"].confidence < 0.8
    [problem] = problems
    assert problem.code == "low_confidence"
    assert problem.suggestion == "jan.kowalski@firma.co"


def test_participant_with_no_email_is_unaffected() -> None:
    v = _with_emails(["elzbieta.mazurek@um.opole.pl", "x@nysa.pl"])
    v = replace(v, participants=[v.participants[0], replace(v.participants[1], email=None)])
    got = parse_bytes(PRODUCERS["drawn/grid"](v), "f.pdf", EVENTS)
    assert [p.email for p in got.participants] == ["elzbieta.mazurek@um.opole.pl", None]
    assert isinstance(got.participants[1], Participant)
