"""Many variants of a filled-in form, each read field by field.

A ``Copy`` is one form as a participant might send it back: its header, its labels
(reworded, without diacritics, upper case, with typos), the layout values are typed
in (table cells, or running text after the labels), the way options are ticked, and
the values typed. ``Copy.docx()`` writes it as a .docx from body XML, so variants
``make_docx`` cannot express (legacy form fields, a deleted option, ☑ typed after the
text…) are one argument away. The organisers' own layouts come from ``make_docx`` and
``make_pdf``.

Every test compares ``flat(result)`` with ``read_as(...)``: one key per field of the
contract ("institution.phone", "participants[1].email", "workshops", "problems"…), so
a failure names the fields that differ.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

import pytest

from mailbot.forms import parse_bytes
from mailbot.forms.blank import (
    CONSENT_TEXTS,
    WORKSHOPS,
    EventHeader,
    FilledValues,
    header_line,
    make_docx,
    make_pdf,
)
from mailbot.forms.model import (
    Consents,
    EventRef,
    FormData,
    Institution,
    Method,
    Participant,
    Problem,
    ProblemCode,
)

TITLE = "Współpraca w partnerstwach samorządowych"
EVENTS = [
    EventRef("szczecin-2016", TITLE, "Szczecin", dt.date(2016, 3, 7)),
    EventRef("torun-2016", TITLE, "Toruń", dt.date(2016, 3, 14)),
    EventRef("lublin-2016", TITLE, "Lublin", dt.date(2016, 3, 21)),
    EventRef("opole-2016", TITLE, "Opole", dt.date(2016, 4, 18)),
]
_VENUES = {
    "szczecin-2016": ("Sala Kolumnowa Urzędu Wojewódzkiego", "ul. Wały Chrobrego 4"),
    "torun-2016": ("Dwór Artusa", "Rynek Staromiejski 6"),
    "lublin-2016": ("Sala Kolumnowa Urzędu Wojewódzkiego", "ul. Spokojna 4"),
    "opole-2016": ("Sala Herbowa Urzędu Wojewódzkiego", "ul. Piastowska 14"),
}
HEADERS = {
    e.key: EventHeader(
        TITLE, e.city, e.date, dt.time(11), *_VENUES[e.key], e.date - dt.timedelta(days=4)
    )
    for e in EVENTS
}
OPOLE = HEADERS["opole-2016"]


def heading(place_and_date: str | None) -> tuple[str, ...]:
    """The form's title lines, then the line naming the event (if any)."""
    lines = ("ZGŁOSZENIE UCZESTNICTWA", f"w konferencji informacyjnej „{TITLE}”")
    return lines if place_and_date is None else (*lines, place_and_date)


# --- values typed, and how they read ----------------------------------------------------

NYSA = Institution(
    "Urząd Miejski w Nysie", "ul. Kolejowa 15, 48-300 Nysa", "(077) 408 05 00", "Sekretariat@NYSA.pl"
)
NYSA_READ = Institution(
    "Urząd Miejski w Nysie", "ul. Kolejowa 15, 48-300 Nysa", "+48774080500", "Sekretariat@nysa.pl"
)
# (as typed, as read): seven people, each phone in another common style.
PEOPLE: list[tuple[Participant, Participant]] = [
    (
        Participant("Anna Kowalska-Nowak", "Kierownik Referatu Rozwoju", "601 234 567", "a.kowalska@nysa.pl"),
        Participant("Anna Kowalska-Nowak", "Kierownik Referatu Rozwoju", "+48601234567", "a.kowalska@nysa.pl"),
    ),
    (
        Participant("Łukasz Żółkiewski", "Sekretarz Gminy", "+48 77 408 05 01", "L.Zolkiewski@Nysa.PL"),
        Participant("Łukasz Żółkiewski", "Sekretarz Gminy", "+48774080501", "L.Zolkiewski@nysa.pl"),
    ),
    (
        Participant("Małgorzata Śliwińska", "Inspektor ds. funduszy UE", "0048774080502", "m.sliwinska@nysa.pl"),
        Participant("Małgorzata Śliwińska", "Inspektor ds. funduszy UE", "+48774080502", "m.sliwinska@nysa.pl"),
    ),
    (
        Participant("Jerzy Bąk", "Burmistrz", "601-234-568", "burmistrz@nysa.pl"),
        Participant("Jerzy Bąk", "Burmistrz", "+48601234568", "burmistrz@nysa.pl"),
    ),
    (
        Participant("Ewa Ćwiklińska", "Skarbnik", "(77) 408-05-04", "skarbnik@nysa.pl"),
        Participant("Ewa Ćwiklińska", "Skarbnik", "+48774080504", "skarbnik@nysa.pl"),
    ),
    (
        Participant("Grzegorz Dźwigaj", "Podinspektor", "774080505", "g.dzwigaj@nysa.pl"),
        Participant("Grzegorz Dźwigaj", "Podinspektor", "+48774080505", "g.dzwigaj@nysa.pl"),
    ),
    (
        Participant("Zofia Wąs", "Referent", "tel. 605 111 222", "z.was@nysa.pl"),
        Participant("Zofia Wąs", "Referent", "+48605111222", "z.was@nysa.pl"),
    ),
]
ANNA, ANNA_READ = PEOPLE[0]
TYPED = [typed for typed, _ in PEOPLE]
READ = [read for _, read in PEOPLE]


# --- body XML of a .docx ----------------------------------------------------------------

_NS = (
    'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
    'xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml"'
)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def run(text: str) -> str:
    """A text run; "\\t" becomes a tab, "\\n" a line break."""
    out = []
    for i, line in enumerate(text.split("\n")):
        if i:
            out.append("<w:br/>")
        for j, piece in enumerate(line.split("\t")):
            if j:
                out.append("<w:tab/>")
            if piece:
                out.append(f'<w:t xml:space="preserve">{_esc(piece)}</w:t>')
    return f"<w:r>{''.join(out)}</w:r>"


def p(*parts: str) -> str:
    """A paragraph of text runs and raw inline XML (parts starting with "<")."""
    return "<w:p>" + "".join(x if x.startswith("<") else run(x) for x in parts) + "</w:p>"


def tbl(rows: Sequence[Sequence[str]]) -> str:
    """A table; a cell is text or raw paragraph XML."""
    def cell(c: str) -> str:
        return f"<w:tc>{c if c.startswith('<w:p') else p(c)}</w:tc>"

    return "<w:tbl>" + "".join("<w:tr>" + "".join(map(cell, r)) + "</w:tr>" for r in rows) + "</w:tbl>"


def text_control(value: str | None, *, tag: str = "", placeholder: str | None = None) -> str:
    """A content control; with ``placeholder`` it shows that prompt as Word does."""
    flag = "<w:showingPlcHdr/>" if placeholder is not None else ""
    shown = placeholder if placeholder is not None else value or ""
    return (
        f'<w:sdt><w:sdtPr><w:tag w:val="{tag}"/>{flag}<w:text/></w:sdtPr>'
        f"<w:sdtContent>{run(shown)}</w:sdtContent></w:sdt>"
    )


def control_box(checked: bool, *, tag: str = "") -> str:
    """A Word 2010 check-box content control (w14:checkbox)."""
    return (
        f'<w:sdt><w:sdtPr><w:tag w:val="{tag}"/><w14:checkbox><w14:checked w14:val="{int(checked)}"/>'
        '<w14:checkedState w14:val="2612"/><w14:uncheckedState w14:val="2610"/></w14:checkbox></w:sdtPr>'
        f"<w:sdtContent>{run('☒' if checked else '☐')}</w:sdtContent></w:sdt>"
    )


def legacy_box(checked: bool | None, *, default: bool = False, bare: bool = False) -> str:
    """A legacy FORMCHECKBOX; ``checked=None`` leaves its state to ``w:default``;
    ``bare`` writes a tick as ``<w:checked/>`` (no value) and no tick as nothing."""
    if checked is None or (bare and not checked):
        state = ""
    else:
        state = "<w:checked/>" if bare else f'<w:checked w:val="{int(checked)}"/>'
    return (
        '<w:r><w:fldChar w:fldCharType="begin"><w:ffData><w:name w:val="Wybór1"/><w:enabled/>'
        f'<w:checkBox><w:sizeAuto/><w:default w:val="{int(default)}"/>{state}</w:checkBox>'
        "</w:ffData></w:fldChar></w:r>"
        '<w:r><w:instrText xml:space="preserve"> FORMCHECKBOX </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )


def package(body: str) -> bytes:
    """A minimal .docx around ``body``."""
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f"<w:document {_NS}><w:body>{body}</w:body></w:document>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        z.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="word/document.xml"/></Relationships>',
        )
        z.writestr("word/document.xml", document)
    return out.getvalue()


# --- ticks --------------------------------------------------------------------------------

Tick = Callable[[str, bool], str]
"""(option or consent text, ticked) → the paragraph XML of that line."""


def mark(on: str, off: str = "☐", *, after: bool = False) -> Tick:
    """``on``/``off`` typed before the text (or after it)."""

    def line(text: str, ticked: bool) -> str:
        m = on if ticked else off
        return p((f"{text} {m}" if after else f"{m} {text}").strip())

    return line


def with_control_box(text: str, ticked: bool) -> str:
    return p(control_box(ticked), f" {text}")


def with_legacy_box(text: str, ticked: bool) -> str:
    return p(legacy_box(ticked, bare=True), f" {text}")


def with_legacy_override(text: str, ticked: bool) -> str:
    """``w:checked`` says the opposite of ``w:default``: the click wins."""
    return p(legacy_box(ticked, default=not ticked), f" {text}")


def with_wingdings(text: str, ticked: bool) -> str:
    """Word's Insert → Symbol: Wingdings ☒ (F0FE) or ☐ (F0A8), stored as w:sym."""
    code = "F0FE" if ticked else "F0A8"
    return p(f'<w:r><w:sym w:font="Wingdings" w:char="{code}"/></w:r>', f" {text}")


def with_legacy_default(text: str, ticked: bool) -> str:
    """A legacy check box never clicked, its state only in ``w:default``."""
    return p(legacy_box(None, default=ticked), f" {text}")


TICKED_BOX = mark("☒")
"""The organisers' way: ☒ for a tick, ☐ for none, before the text."""


Layout = Literal["table", "text"]
LAYOUTS: list[Layout] = ["table", "text"]


# --- one copy of the form -----------------------------------------------------------------


@dataclass(frozen=True)
class Labels:
    name: str = "Nazwa jednostki samorządu terytorialnego / instytucji:"
    address: str = "Adres (ulica, kod pocztowy, miejscowość):"
    phone: str = "Telefon:"
    email: str = "E-mail:"
    full_name: str = "Imię i nazwisko"
    position: str = "Stanowisko / funkcja"
    person_phone: str = "Telefon"
    person_email: str = "E-mail"


@dataclass(frozen=True)
class Copy:
    """A filled-in form as it comes back; ``docx()`` writes it."""

    header: Sequence[str] = heading(header_line(OPOLE))
    labels: Labels = Labels()
    layout: Layout = "table"
    fill: str = "{label}: {value}"
    """How a value follows its label in the ``text`` layout."""
    institution: Institution = field(default_factory=lambda: NYSA)
    people: Sequence[Participant | None] = (ANNA,)
    """``None`` is an empty row (a block of empty labels in the ``text`` layout)."""
    tick: Tick = TICKED_BOX
    options: str = "AB"
    """The workshop options left on the form (the others were deleted)."""
    ticked: str = "A"
    remarks: str | None = "dieta wegetariańska"
    consents: tuple[bool, bool] = (True, False)
    signed: str = "Nysa, 8.04.2016"

    def body(self) -> str:
        lb = self.labels
        inst = self.institution
        out = [p(line) for line in self.header]
        out.append(p("1. Dane instytucji"))
        labels = (lb.name, lb.address, lb.phone, lb.email)
        out.append(self._pairs(list(zip(labels, _values_of(inst), strict=True))))
        out.append(p("2. Uczestnicy"))
        columns = (lb.full_name, lb.position, lb.person_phone, lb.person_email)
        people = [person or Participant() for person in self.people]
        if self.layout == "table":
            rows = [["Lp.", *columns]]
            rows += [[f"{i}.", *(v or "" for v in _values(person))] for i, person in enumerate(people, 1)]
            out.append(tbl(rows))
        else:
            out += [self._pairs(list(zip(columns, _values(person), strict=True))) for person in people]
        out.append(p("3. Udział w dyskusjach warsztatowych (proszę zaznaczyć):"))
        out += [self.tick(f"{letter} – {WORKSHOPS[letter]}", letter in self.ticked) for letter in self.options]
        out.append(p(f"4. Uwagi (np. specjalne potrzeby, dieta): {self.remarks or '_' * 40}"))
        out.append(p("5. Zgody"))
        out += [self.tick(text, ticked) for text, ticked in zip(CONSENT_TEXTS.values(), self.consents, strict=True)]
        out.append(p(f"Miejscowość, data: {self.signed}\tPodpis: ________________"))
        out.append(p("Zgłoszenia prosimy przesyłać do 14 kwietnia 2016 r. na adres e-mail organizatora."))
        return "".join(out)

    def _pairs(self, pairs: Sequence[tuple[str, str | None]]) -> str:
        if self.layout == "table":
            return tbl([[label, value or ""] for label, value in pairs])
        fill = self.fill
        return "".join(p(fill.format(label=label.rstrip(":"), value=value or "")) for label, value in pairs)

    def docx(self) -> bytes:
        return package(self.body())

    def read(self) -> dict[str, Any]:
        return flat(parse_bytes(self.docx(), "zgloszenie.docx", EVENTS))


def _values(person: Participant) -> tuple[str | None, ...]:
    return (person.full_name, person.position, person.phone, person.email)


def _values_of(inst: Institution) -> tuple[str | None, ...]:
    return (inst.name, inst.address, inst.phone, inst.email)


BASE = Copy()


# --- the expected reading, field by field -----------------------------------------------


def flat(form: FormData) -> dict[str, Any]:
    """One key per field of the contract; problems as "field/code" (messages are free)."""
    assert form.status == "ok", form.reason
    out: dict[str, Any] = {"method": form.method, "event": form.event}
    assert form.institution is not None and form.consents is not None
    out |= {f"institution.{k}": v for k, v in vars(form.institution).items()}
    for i, person in enumerate(form.participants):
        out |= {f"participants[{i}].{k}": v for k, v in vars(person).items()}
    out["workshops"] = form.workshops
    out["remarks"] = form.remarks
    out |= {f"consents.{k}": v for k, v in vars(form.consents).items()}
    out["problems"] = [f"{x.field}/{x.code}" for x in form.problems if x.code != "low_confidence"]
    for x in form.problems:
        assert x.message.strip(), x
    return out


def read_as(
    *,
    method: Method = "table",
    event: str | None = "opole-2016",
    institution: Institution = NYSA_READ,
    people: Sequence[Participant] = (ANNA_READ,),
    workshops: Sequence[str] = ("A",),
    remarks: str | None = "dieta wegetariańska",
    consents: tuple[bool, bool] = (True, False),
    problems: Sequence[str] = (),
) -> dict[str, Any]:
    """What ``flat`` must give; the defaults are how ``BASE`` reads."""
    return flat(
        FormData(
            file="",
            status="ok",
            format="docx",
            method=method,
            event=event,
            institution=institution,
            participants=list(people),
            workshops=list(workshops),
            remarks=remarks,
            consents=Consents(*consents),
            problems=[_problem(x) for x in problems],
        )
    )


def _problem(text: str) -> Problem:
    where, code = text.split("/")
    return Problem(where, cast(ProblemCode, code), "-")


def read_docx(data: bytes) -> dict[str, Any]:
    return flat(parse_bytes(data, "zgloszenie.docx", EVENTS))


def test_the_base_copy_reads_as_filled() -> None:
    assert BASE.read() == read_as()
    assert replace(BASE, layout="text").read() == read_as(method="text")


# --- 1. labels ----------------------------------------------------------------------------

# (field of ``Labels``, label as typed): docs/forms.md's and labels.toml's variants, without
# diacritics, upper case, with and without a colon, with small typos.
LABEL_VARIANTS = [
    ("name", "Nazwa jednostki samorządu terytorialnego / instytucji"),
    ("name", "Nazwa jednostki samorzadu terytorialnego/instytucji:"),
    ("name", "NAZWA JEDNOSTKI SAMORZĄDU TERYTORIALNEGO / INSTYTUCJI:"),
    ("name", "Nazwa jednostki samorządu teytorialnego / instytucji:"),
    ("name", "Instytucja / Urząd"),
    ("name", "INSTYTUCJA/URZAD:"),
    ("name", "Nazwa instytucji:"),
    ("name", "Nazwa instytucij"),
    ("name", "Nazwa JST"),
    ("name", "Urząd:"),
    ("address", "Adres"),
    ("address", "ADRES:"),
    ("address", "Adres instytucji:"),
    ("address", "Adres (ulica, kod pocztowy, miejscowosc)"),
    ("address", "Adres (ulica, kod, miejscowość):"),
    ("address", "Adres do korespondecji"),
    ("phone", "Telefon"),
    ("phone", "Tel."),
    ("phone", "TEL.:"),
    ("phone", "tel"),
    ("phone", "Nr telefonu:"),
    ("phone", "Telefom:"),
    ("email", "E-mail"),
    ("email", "e-mail:"),
    ("email", "Adres e-mail:"),
    ("email", "ADRES E-MAIL"),
    ("email", "Email:"),
    ("email", "Mail:"),
    ("email", "Adres e-mial"),
    ("full_name", "Imię i nazwisko uczestnika"),
    ("full_name", "Imie i nazwisko:"),
    ("full_name", "IMIĘ I NAZWISKO"),
    ("full_name", "Imię, nazwisko:"),
    ("full_name", "Imię i nazwsko"),
    ("position", "Stanowisko"),
    ("position", "Funkcja:"),
    ("position", "STANOWISKO/FUNKCJA"),
    ("position", "Zajmowane stanowisko"),
    ("position", "Stanowsko"),
    ("person_phone", "Tel."),
    ("person_phone", "Nr tel.:"),
    ("person_phone", "Telefon kom."),
    ("person_phone", "TELEFON:"),
    ("person_phone", "Telefom"),
    ("person_email", "e-mail"),
    ("person_email", "Adres e-mail:"),
    ("person_email", "EMAIL"),
    ("person_email", "Mail"),
    ("person_email", "Adres e-mial"),
]
LABEL_IDS = [f"{f}={label}" for f, label in LABEL_VARIANTS]
# How a value follows its label in running text.
FILLS = {
    "colon": "{label}: {value}",
    "colon and dotted line": "{label}: .....{value}..........",
    "dotted line": "{label} ........{value}........",
    "tab": "{label}\t{value}",
    "underscores": "{label}: __{value}____",
}
# Whole sets of labels as one person retyped them.
LABEL_SETS = {
    "as printed": Labels(),
    "without diacritics": Labels(
        "Nazwa jednostki samorzadu terytorialnego / instytucji:", "Adres (ulica, kod pocztowy, miejscowosc):",
        "Telefon:", "E-mail:", "Imie i nazwisko", "Stanowisko / funkcja", "Telefon", "E-mail",
    ),
    "upper case without colons": Labels(
        "INSTYTUCJA / URZĄD", "ADRES", "TELEFON", "E-MAIL", "NAZWISKO I IMIĘ", "STANOWISKO", "TEL.", "ADRES E-MAIL",
    ),
    "short": Labels("Urząd:", "Adres:", "Tel.:", "e-mail:", "Imię i nazwisko", "Funkcja", "Tel.", "e-mail"),
    "with typos": Labels(
        "Nazwa jednostki samorządu terytorialengo / instytucji:", "Adres (ulica, kod pocztowy, miejscowść):",
        "Telefom:", "Adres e-mial:", "Imię i nazwsiko", "Stanowsko / funkcja", "Telefom", "Adres e-mial",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("field_", "label"), LABEL_VARIANTS, ids=LABEL_IDS)
def test_a_reworded_label_in_the_table_still_reads_its_value(field_: str, label: str) -> None:
    copy = replace(BASE, labels=replace(Labels(), **{field_: label}))
    assert copy.read() == read_as()


@pytest.mark.parametrize("fill", FILLS.values(), ids=list(FILLS))
@pytest.mark.parametrize(("field_", "label"), LABEL_VARIANTS, ids=LABEL_IDS)
def test_a_reworded_label_in_running_text_still_reads_its_value(field_: str, label: str, fill: str) -> None:
    copy = replace(BASE, labels=replace(Labels(), **{field_: label}), layout="text", fill=fill)
    assert copy.read() == read_as(method="text")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("labels", LABEL_SETS.values(), ids=list(LABEL_SETS))
def test_a_retyped_set_of_labels_reads_three_people(labels: Labels, layout: Layout) -> None:
    copy = replace(BASE, labels=labels, layout=layout, people=TYPED[:3])
    assert copy.read() == read_as(method=layout, people=READ[:3])


def test_values_typed_on_the_line_below_their_labels_are_read() -> None:
    copy = replace(BASE, layout="text", fill="{label}:\n{value}", people=TYPED[:2])
    assert copy.read() == read_as(method="text", people=READ[:2])


# --- 1b. shapes of the tables -------------------------------------------------------------

INSTITUTION_HEADING = p("1. Dane instytucji")
PARTICIPANTS_HEADING = p("2. Uczestnicy")
WORKSHOP_HEADING = p("3. Udział w dyskusjach warsztatowych (proszę zaznaczyć):")
SHORT_LABELS = ["Instytucja:", "Adres:", "Telefon:", "E-mail:"]
COLUMNS = ["Imię i nazwisko", "Stanowisko / funkcja", "Telefon", "E-mail"]


def with_sections_1_2(*parts: str) -> bytes:
    """``BASE`` with ``parts`` (body XML) in place of its institution and participants."""
    body = BASE.body()
    start = body.index(INSTITUTION_HEADING)
    end = body.index(WORKSHOP_HEADING)
    return package(body[:start] + "".join(parts) + body[end:])


def institution_table(*, gap: int = 0) -> str:
    """Label | value rows for ``NYSA``; ``gap`` empty cells between them (a split cell)."""
    pairs = zip(SHORT_LABELS, _values_of(NYSA), strict=True)
    return tbl([[label, *[""] * gap, value or ""] for label, value in pairs])


def lines(labels: Sequence[str], values: Sequence[str | None], fill: str = "{label} {value}") -> str:
    """One paragraph per label, its value after it."""
    return "".join(p(fill.format(label=lb, value=v or "")) for lb, v in zip(labels, values, strict=True))


def people_table(columns: Sequence[str], rows: Sequence[Sequence[str]], *, numbered: bool = True) -> str:
    if not numbered:
        return tbl([columns, *rows])
    return tbl([["Lp.", *columns], *([f"{i}.", *row] for i, row in enumerate(rows, 1))])


def cells(person: Participant, order: str = "npte") -> list[str]:
    """A person's cells, ``order`` naming the columns: name, position, telephone, e-mail."""
    by = dict(zip("npte", _values(person), strict=True))
    return [by[c] or "" for c in order]


WRAPPED = ["Anna\nKowalska-\nNowak", "Kierownik Referatu\nRozwoju", "601 234\n567", "a.kowalska@\nnysa.pl"]
ONE_LINE = "Imię i nazwisko: {0.full_name}, Stanowisko: {0.position}, Tel.: {0.phone}, E-mail: {0.email}"
SHAPES: dict[str, tuple[str, dict[str, Any]]] = {
    "participant columns reordered and reworded": (
        institution_table()
        + people_table(["E-mail", "Nazwisko i imię", "Tel.", "Funkcja"], [cells(x, "entp") for x in TYPED[:2]]),
        read_as(people=READ[:2]),
    ),
    "an extra column for remarks": (
        institution_table() + people_table([*COLUMNS, "Uwagi"], [[*cells(x), "wege"] for x in TYPED[:2]]),
        read_as(people=READ[:2]),
    ),
    "no Lp. column": (
        institution_table() + people_table(COLUMNS, [cells(x) for x in TYPED[:2]], numbered=False),
        read_as(people=READ[:2]),
    ),
    "values over dotted lines in the cells, then dotted empty rows": (
        institution_table()
        + people_table(COLUMNS, [[f"....{v}......" for v in cells(ANNA)], ["........."] * 4, ["__________"] * 4]),
        read_as(),
    ),
    "values wrapped over lines in their cells": (
        institution_table() + people_table(COLUMNS, [WRAPPED]),
        read_as(),
    ),
    "label and value in the same cell": (
        tbl([[f"{label} {value}"] for label, value in zip(SHORT_LABELS, _values_of(NYSA), strict=True)])
        + people_table(COLUMNS, [cells(ANNA)]),
        read_as(),
    ),
    "an empty split cell between label and value": (
        institution_table(gap=1) + people_table(COLUMNS, [cells(ANNA)]),
        read_as(),
    ),
    "institution labels as column headings over their values": (
        tbl([["Nazwa instytucji", "Adres", "Telefon", "E-mail"], [v or "" for v in _values_of(NYSA)]])
        + people_table(COLUMNS, [cells(ANNA)]),
        read_as(),
    ),
    "one line per participant in running text": (
        institution_table() + PARTICIPANTS_HEADING + "".join(p(ONE_LINE.format(x)) for x in TYPED[:3]),
        read_as(people=READ[:3]),
    ),
    "Uczestnik 1, Uczestnik 2… blocks in running text": (
        INSTITUTION_HEADING
        + lines(SHORT_LABELS, _values_of(NYSA))
        + PARTICIPANTS_HEADING
        + "".join(
            p(f"Uczestnik {i}") + lines(COLUMNS, _values(x), "{label}: {value}") for i, x in enumerate(TYPED[:3], 1)
        ),
        read_as(method="text", people=READ[:3]),
    ),
}


@pytest.mark.parametrize(("parts", "expected"), SHAPES.values(), ids=list(SHAPES))
def test_other_shapes_of_the_tables_read_every_field(parts: str, expected: dict[str, Any]) -> None:
    assert read_docx(with_sections_1_2(parts)) == expected


# --- 2. ticks -----------------------------------------------------------------------------

TICKS: dict[str, Tick] = {
    **{f"{on} before": mark(on) for on in ("☒", "☑", "✓", "✔", "■", "X", "x")},
    **{f"{on} after": mark(on, after=True) for on in ("☒", "☑", "✓", "✔", "■", "X", "x")},
    "□ for no tick": mark("☒", "□"),
    "[X] and [ ]": mark("[X]", "[ ]"),
    "X typed next to the empty box": mark("☐ X"),
    "X typed before the empty box": mark("X ☐"),
    "x, no box on the other lines": mark("x", ""),
    "✓ after, □ before the unticked": mark("✓", "□", after=True),
    "Wingdings symbols": with_wingdings,
    "content-control check box": with_control_box,
    "legacy FORMCHECKBOX <w:checked/>": with_legacy_box,
    "legacy FORMCHECKBOX w:checked over w:default": with_legacy_override,
    "legacy FORMCHECKBOX never clicked (w:default)": with_legacy_default,
}
# (workshop letters ticked, (data processing, newsletter)).
CHOICES = [("A", (True, False)), ("B", (True, True)), ("AB", (False, True)), ("", (True, False))]


def _consent_problems(consents: tuple[bool, bool]) -> list[str]:
    return [] if consents[0] else ["consents.data_processing/missing"]


@pytest.mark.parametrize(("ticked", "consents"), CHOICES, ids=["A", "B and newsletter", "both, no consent", "none"])
@pytest.mark.parametrize("tick", TICKS.values(), ids=list(TICKS))
def test_each_option_and_consent_reads_its_own_tick(tick: Tick, ticked: str, consents: tuple[bool, bool]) -> None:
    copy = replace(BASE, tick=tick, ticked=ticked, consents=consents)
    assert copy.read() == read_as(workshops=list(ticked), consents=consents, problems=_consent_problems(consents))


@pytest.mark.parametrize("ticked", [True, False], ids=["ticked", "not ticked"])
@pytest.mark.parametrize(
    "tick", [mark("☒"), mark("X", ""), with_control_box, with_legacy_box], ids=["☒", "X", "control", "legacy"]
)
@pytest.mark.parametrize("left", ["A", "B"])
def test_the_one_option_left_standing_is_chosen_tick_or_not(left: str, tick: Tick, ticked: bool) -> None:
    copy = replace(BASE, tick=tick, options=left, ticked=left if ticked else "")
    assert copy.read() == read_as(workshops=[left])


OPTION_A = f"A – {WORKSHOPS['A']}"
OPTION_B = f"B – {WORKSHOPS['B']}"


def with_workshop_lines(*lines: str) -> bytes:
    """``BASE`` with its workshops section replaced by ``lines`` (body XML)."""
    body = BASE.body()
    start = body.index(WORKSHOP_HEADING) + len(WORKSHOP_HEADING)
    end = body.index(p(f"4. Uwagi (np. specjalne potrzeby, dieta): {BASE.remarks}"))
    return package(body[:start] + "".join(lines) + body[end:])


REJECTED = {
    "deleted with track changes": (
        '<w:p><w:del w:id="1" w:author="Jan" w:date="2016-04-01T10:00:00Z">'
        f"<w:r><w:delText>☐ {OPTION_A}</w:delText></w:r></w:del></w:p>"
    ),
    "struck through": p(f'<w:r><w:rPr><w:strike/></w:rPr><w:t xml:space="preserve">☐ {OPTION_A}</w:t></w:r>'),
    "double struck through": p(f'<w:r><w:rPr><w:dstrike/></w:rPr><w:t xml:space="preserve">☐ {OPTION_A}</w:t></w:r>'),
}


@pytest.mark.parametrize("rejected", REJECTED.values(), ids=list(REJECTED))
def test_an_option_deleted_or_struck_through_leaves_the_other_chosen(rejected: str) -> None:
    assert read_docx(with_workshop_lines(rejected, p(f"☐ {OPTION_B}"))) == read_as(workshops=["B"])


SIDE_BY_SIDE = {
    "boxes before, on one line": (p(f"☐ {OPTION_A}\t☒ {OPTION_B}"), ["B"]),
    "boxes after, on one line": (p(f"{OPTION_A} ✓\t{OPTION_B} ☐"), ["A"]),
    "both ticked, on one line": (p(f"X {OPTION_A}   X {OPTION_B}"), ["A", "B"]),
    "none ticked, on one line": (p(f"☐ {OPTION_A}   ☐ {OPTION_B}"), []),
    "in two cells of a row": (tbl([[f"☐ {OPTION_A}", f"☒ {OPTION_B}"]]), ["B"]),
    "in rows, ticks in a column before": (tbl([["", OPTION_A], ["X", OPTION_B]]), ["B"]),
    "in rows, ticks in a column after": (tbl([[OPTION_A, "X"], [OPTION_B, ""]]), ["A"]),
    "on two lines of one paragraph": (p(f"☐ {OPTION_A}\n☒ {OPTION_B}"), ["B"]),
    "content-control boxes on one line": (
        p(control_box(False), f" {OPTION_A}\t", control_box(True), f" {OPTION_B}"),
        ["B"],
    ),
}


@pytest.mark.parametrize(("lines", "chosen"), SIDE_BY_SIDE.values(), ids=list(SIDE_BY_SIDE))
def test_options_side_by_side_each_read_their_own_mark(lines: str, chosen: list[str]) -> None:
    assert read_docx(with_workshop_lines(lines)) == read_as(workshops=chosen)


# "ambiguous" where two readings are possible: in a .docx, a tick mark that cannot be
# tied to one option. Nothing is ticked for it (no guess) and `workshops`/`ambiguous`
# asks the person. Not ambiguous: an X typed next to an empty box or an unticked check-box
# control ("☐ X A" is ticked), X typed on both options (both chosen), and a stray mark
# when only one option is left (that one is chosen anyway).
AMBIGUOUS = {
    # One mark between two options: after A, or before B?
    "X between two options on one line": p(f"{OPTION_A}  X  {OPTION_B}"),
    "✓ after the first of two options on one line": p(f"{OPTION_A} ✓\t{OPTION_B}"),
    # A mark on a line (or row) of its own: for the option above or below?
    "X on a line of its own between the options": p(f"☐ {OPTION_A}") + p("X") + p(f"☐ {OPTION_B}"),
    "options as column headings, X in the row below": tbl([[OPTION_A, OPTION_B], ["", "X"]]),
}


@pytest.mark.parametrize("lines", AMBIGUOUS.values(), ids=list(AMBIGUOUS))
def test_a_tick_that_fits_two_options_is_reported_ambiguous_not_guessed(lines: str) -> None:
    assert read_docx(with_workshop_lines(lines)) == read_as(workshops=[], problems=["workshops/ambiguous"])


def test_a_stray_tick_is_not_ambiguous_when_only_one_option_is_left() -> None:
    got = read_docx(with_workshop_lines(p(OPTION_B), p("X")))
    assert got == read_as(workshops=["B"])


def test_a_typed_x_next_to_an_unticked_check_box_control_ticks_it() -> None:
    # The control could not be clicked (another editor): the X is the participant's tick.
    got = read_docx(with_workshop_lines(p(control_box(False), f" X {OPTION_A}"), p(control_box(False), f" {OPTION_B}")))
    assert got == read_as()


# --- 3. participants ----------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("n", range(1, 8))
def test_one_to_seven_participants_read_in_order(n: int, layout: Layout) -> None:
    copy = replace(BASE, layout=layout, people=TYPED[:n])
    assert copy.read() == read_as(method=layout, people=READ[:n])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_empty_rows_are_omitted_and_problems_use_the_output_index(layout: Layout) -> None:
    no_email = replace(TYPED[3], email=None)
    copy = replace(BASE, layout=layout, people=(None, TYPED[0], None, None, no_email, None, TYPED[6]))
    assert copy.read() == read_as(
        method=layout,
        people=[READ[0], replace(READ[3], email=None), READ[6]],
        problems=["participants[1].email/missing"],
    )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_row_with_data_but_no_name_is_kept_with_a_missing_name(layout: Layout) -> None:
    copy = replace(BASE, layout=layout, people=(TYPED[0], replace(TYPED[1], full_name=None)))
    assert copy.read() == read_as(
        method=layout,
        people=[READ[0], replace(READ[1], full_name=None)],
        problems=["participants[1].full_name/missing"],
    )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_participant_with_only_a_name_lacks_an_email(layout: Layout) -> None:
    copy = replace(BASE, layout=layout, people=(Participant("Jan Kowalski"),))
    assert copy.read() == read_as(
        method=layout, people=[Participant("Jan Kowalski")], problems=["participants[0].email/missing"]
    )


@pytest.mark.parametrize(
    "email", ["jan.kowalski@", "jan kowalski@gmina", "jan.kowalski@gmina", "jan@@nysa.pl", "nie mam"]
)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_invalid_email_is_kept_as_written(email: str, layout: Layout) -> None:
    copy = replace(BASE, layout=layout, people=(replace(ANNA, email=email),))
    assert copy.read() == read_as(
        method=layout, people=[replace(ANNA_READ, email=email)], problems=["participants[0].email/invalid"]
    )


@pytest.mark.parametrize("phone", ["12", "123 45", "60123", "tel. ???"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_invalid_phone_is_kept_as_written(phone: str, layout: Layout) -> None:
    copy = replace(BASE, layout=layout, people=(replace(ANNA, phone=phone),))
    assert copy.read() == read_as(
        method=layout, people=[replace(ANNA_READ, phone=phone)], problems=["participants[0].phone/invalid"]
    )


# Every common Polish way to write a phone → E.164. An extension ("wew. 12") is dropped:
# E.164 has no place for it and the switchboard number reaches the person.
PHONES = {
    "(077) 4080500": "+48774080500",
    "(77) 408 05 00": "+48774080500",
    "077 408 05 00": "+48774080500",
    "77 408 05 00": "+48774080500",
    "77-408-05-00": "+48774080500",
    "774080500": "+48774080500",
    "+48 77 408 05 00": "+48774080500",
    "+48 (77) 408 05 00": "+48774080500",
    "+48774080500": "+48774080500",
    "0048774080500": "+48774080500",
    "0048 77 408 05 00": "+48774080500",
    "77 408 05 00 wew. 12": "+48774080500",
    "77 408 05 00 w. 12": "+48774080500",
    "601 234 567 wew. 12": "+48601234567",
    "77 4080500": "+48774080500",
    "+48 774 080 500": "+48774080500",
    "tel. 77 408 05 00": "+48774080500",
    "601-234-567": "+48601234567",
    "601 234 567": "+48601234567",
    "601234567": "+48601234567",
    "+48 601 234 567": "+48601234567",
    "+48-601-234-567": "+48601234567",
    "kom. 601 234 567": "+48601234567",
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("typed", "e164"), PHONES.items(), ids=list(PHONES))
def test_phones_in_polish_styles_become_e164(typed: str, e164: str, layout: Layout) -> None:
    copy = replace(BASE, layout=layout, institution=replace(NYSA, phone=typed), people=(replace(ANNA, phone=typed),))
    assert copy.read() == read_as(
        method=layout, institution=replace(NYSA_READ, phone=e164), people=[replace(ANNA_READ, phone=e164)]
    )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_surname_first_names_stay_as_written(layout: Layout) -> None:
    names = ["KOWALSKA-NOWAK Anna", "Żółkiewski Łukasz", "śliwińska małgorzata"]
    people = tuple(replace(person, full_name=name) for person, name in zip(TYPED, names, strict=False))
    copy = replace(BASE, layout=layout, labels=replace(Labels(), full_name="Nazwisko i imię"), people=people)
    assert copy.read() == read_as(
        method=layout, people=[replace(person, full_name=name) for person, name in zip(READ, names, strict=False)]
    )


# --- 4. missing values --------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_no_institution_name_is_missing(layout: Layout) -> None:
    copy = replace(BASE, layout=layout, institution=replace(NYSA, name=None))
    assert copy.read() == read_as(
        method=layout, institution=replace(NYSA_READ, name=None), problems=["institution.name/missing"]
    )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_institution_address_phone_and_email_may_be_left_empty(layout: Layout) -> None:
    copy = replace(BASE, layout=layout, institution=Institution(NYSA.name))
    assert copy.read() == read_as(method=layout, institution=Institution(NYSA.name))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_no_participants_is_missing(layout: Layout) -> None:
    copy = replace(BASE, layout=layout, people=(None, None, None))
    assert copy.read() == read_as(method=layout, people=[], problems=["participants/missing"])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_consent_not_ticked_is_missing(layout: Layout) -> None:
    copy = replace(BASE, layout=layout, consents=(False, True))
    assert copy.read() == read_as(method=layout, consents=(False, True), problems=["consents.data_processing/missing"])


@pytest.mark.parametrize("remarks", [None, "", "   ", "..........", "…………", "________"], ids=repr)
def test_empty_remarks_are_null(remarks: str | None) -> None:
    assert replace(BASE, remarks=remarks).read() == read_as(remarks=None)


PLACEHOLDERS = [
    "Kliknij lub naciśnij tutaj, aby wprowadzić tekst.",
    "Kliknij tutaj, aby wprowadzić tekst.",
    "Click or tap here to enter text.",
]


@pytest.mark.parametrize("flagged", [True, False], ids=["shown as placeholder", "left as plain text"])
@pytest.mark.parametrize("prompt", PLACEHOLDERS)
def test_placeholder_text_of_content_controls_is_null(prompt: str, flagged: bool) -> None:
    def placeholder() -> str:
        return text_control(None, placeholder=prompt) if flagged else text_control(prompt)

    def empty() -> str:
        return p(placeholder())

    body = (
        "".join(p(line) for line in BASE.header)
        + tbl([["Nazwa instytucji:", p(text_control(NYSA.name))], ["Adres:", empty()], ["Telefon:", empty()]])
        + tbl(
            [
                ["Lp.", "Imię i nazwisko", "Stanowisko", "Telefon", "E-mail"],
                ["1.", p(text_control(ANNA.full_name)), empty(), empty(), p(text_control(ANNA.email))],
                ["2.", empty(), empty(), empty(), empty()],
            ]
        )
        + p("Uwagi: ", placeholder())
        + p(control_box(True), f" {OPTION_A}")
        + p(control_box(True), f" {CONSENT_TEXTS['data_processing']}")
    )
    assert read_docx(package(body)) == read_as(
        method="fields",
        institution=Institution(NYSA.name),
        people=[Participant(ANNA.full_name, email=ANNA.email)],
        remarks=None,
    )


BLANK_PROBLEMS = ["institution.name/missing", "participants/missing", "consents.data_processing/missing"]
BLANK = Copy(institution=Institution(), people=(None, None, None), ticked="", remarks=None, consents=(False, False))


@pytest.mark.parametrize(
    ("layout", "fill"),
    [
        ("table", ""),
        ("text", "{label}: {value}"),
        ("text", "{label}: ..............{value}"),
        ("text", "{label}\t{value}___________"),
    ],
    ids=["table", "text, empty after the colon", "text, dotted lines", "text, underscores"],
)
def test_the_blank_form_is_ok_with_the_standard_problems(layout: Layout, fill: str) -> None:
    copy = replace(BLANK, layout=layout, fill=fill)
    assert copy.read() == read_as(
        method=layout,
        institution=Institution(),
        people=[],
        workshops=[],
        remarks=None,
        consents=(False, False),
        problems=BLANK_PROBLEMS,
    )


# --- 5. events ----------------------------------------------------------------------------

EVENT_HEADERS = {
    **{f"{e.city} as printed": (heading(header_line(HEADERS[e.key])), e.key) for e in EVENTS},
    "Torun without diacritics": (heading("Torun, 14 marca 2016 r."), "torun-2016"),
    "TORUŃ upper case": (heading("TORUŃ, 14 MARCA 2016 R."), "torun-2016"),
    "Lublin, 21.03.2016": (heading("Lublin, 21.03.2016"), "lublin-2016"),
    "Lublin, 2016-03-21": (heading("Lublin, 2016-03-21"), "lublin-2016"),
    "Szczecin, 07.03.2016 r.": (heading("Szczecin, 07.03.2016 r."), "szczecin-2016"),
    "declined: w Opolu, 18 kwietnia": (heading("Konferencja w Opolu, 18 kwietnia 2016 r."), "opole-2016"),
    "no header at all": ((), None),
    "title without place and date": (heading(None), None),
    "Opole with Lublin's date": (heading("Opole, 21 marca 2016 r."), None),
    "Toruń with a date of no event": (heading("Toruń, 15 marca 2016 r."), None),
    "a city of no event": (heading("Kraków, 9 maja 2016 r."), None),
}


@pytest.mark.parametrize(("header", "event"), EVENT_HEADERS.values(), ids=list(EVENT_HEADERS))
def test_the_event_is_told_by_city_and_date(header: tuple[str, ...], event: str | None) -> None:
    problems = [] if event else ["event/unknown"]
    assert replace(BASE, header=header).read() == read_as(event=event, problems=problems)


def test_the_institutions_city_and_the_signing_date_do_not_change_the_event() -> None:
    # Lublin's office fills in the Opole form on the day of the Lublin conference.
    lublin = Institution("Urząd Miasta Lublin", "pl. Króla Władysława Łokietka 1, 20-109 Lublin", None, None)
    copy = replace(BASE, institution=lublin, signed="Lublin, 21.03.2016 r.", remarks="Byliśmy w Lublinie 21 marca 2016")
    assert copy.read() == read_as(institution=lublin, remarks="Byliśmy w Lublinie 21 marca 2016")


# --- 6. formats ---------------------------------------------------------------------------

FULL = FilledValues(
    NYSA, TYPED, {"A", "B"}, "dieta wegetariańska, podjazd dla wózka", Consents(True, True), "Nysa, 8.04.2016"
)
FULL_READ = read_as(
    institution=NYSA_READ, people=READ, workshops=["A", "B"], remarks="dieta wegetariańska, podjazd dla wózka",
    consents=(True, True),
)  # fmt: skip
GAPS = FilledValues(
    Institution(None, "ul. Kolejowa 15, 48-300 Nysa", "12", "sekretariat@nysa"),
    [
        Participant("Jan Kowalski", None, None, "jan.kowalski@"),
        Participant(),
        Participant(None, "Referent", "601 234 567", "referent@nysa.pl"),
        Participant("KOWALSKA Anna", "Skarbnik", "(77) 408-05-04", None),
    ],
    {"B"},
    None,
    Consents(False, True),
    None,
)
GAPS_READ = read_as(
    institution=Institution(None, "ul. Kolejowa 15, 48-300 Nysa", "12", "sekretariat@nysa"),
    people=[
        Participant("Jan Kowalski", None, None, "jan.kowalski@"),
        Participant(None, "Referent", "+48601234567", "referent@nysa.pl"),
        Participant("KOWALSKA Anna", "Skarbnik", "+48774080504", None),
    ],
    workshops=["B"],
    remarks=None,
    consents=(False, True),
    problems=[
        "institution.name/missing",
        "institution.phone/invalid",
        "institution.email/invalid",
        "participants[0].email/invalid",
        "participants[1].full_name/missing",
        "participants[2].email/missing",
        "consents.data_processing/missing",
    ],
)
BLANK_READ = read_as(
    institution=Institution(), people=[], workshops=[], remarks=None, consents=(False, False), problems=BLANK_PROBLEMS
)
# Typed over several lines (Enter in a cell, a multi-line control, a long remark).
MULTILINE = FilledValues(
    replace(NYSA, address="ul. Kolejowa 15\n48-300 Nysa"),
    [replace(ANNA, position="Kierownik Referatu\nRozwoju")],
    {"A"},
    "dieta wegetariańska\npodjazd dla wózka",
    Consents(True, False),
    None,
)
MULTILINE_READ = read_as(
    institution=replace(NYSA_READ, address="ul. Kolejowa 15 48-300 Nysa"),
    remarks="dieta wegetariańska podjazd dla wózka",
)
SCENARIOS = {
    "seven people, every field": (OPOLE, FULL, FULL_READ),
    "gaps and invalid values": (OPOLE, GAPS, GAPS_READ),
    "values over several lines": (OPOLE, MULTILINE, MULTILINE_READ),
    "blank": (OPOLE, None, BLANK_READ),
    "Lublin": (HEADERS["lublin-2016"], FULL, {**FULL_READ, "event": "lublin-2016"}),
}
FORMATS: dict[str, tuple[Method, Callable[[EventHeader, FilledValues | None], bytes]]] = {
    "docx table": ("table", lambda h, v: make_docx(h, v, style="table")),
    "docx controls": ("fields", lambda h, v: make_docx(h, v, style="controls")),
    "fillable pdf": ("fields", make_pdf),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("header", "values", "expected"), SCENARIOS.values(), ids=list(SCENARIOS))
def test_the_same_values_read_alike_from_docx_table_docx_controls_and_pdf(
    header: EventHeader, values: FilledValues | None, expected: dict[str, Any], fmt: str
) -> None:
    method, make = FORMATS[fmt]
    got = flat(parse_bytes(make(header, values), "zgloszenie", EVENTS))
    assert got == {**expected, "method": method}
