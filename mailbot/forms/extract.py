"""From a format-neutral document (paragraphs, tables, form controls) to ``FormData``.

docx, odt and PDF readers only translate their format into ``Document``; every rule
about what the form means (labels, sections, participants, ticks, consents, event,
problems) lives here once, so all formats read the form the same way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from mailbot.forms.confidence import UNCLEAR, Kind, Reading, assess
from mailbot.forms.events import EventLine, recognise_event
from mailbot.forms.labels import LabelMatch, Vocabulary
from mailbot.forms.model import (
    Consents,
    EventRef,
    FormData,
    Limits,
    Institution,
    Method,
    Participant,
    Problem,
)
from mailbot.forms.normalize import clean_text, fold, normalize_email, normalize_phone

__all__ = ["Block", "Control", "Document", "Para", "Table", "build_form", "tick_state"]

log = logging.getLogger(__name__)

Source = Literal["fields", "table", "text"]


@dataclass(slots=True)
class Control:
    """A form control: Word content control, legacy form field, ODF or AcroForm field.

    ``key`` is the control's tag/name (the organiser's copies use the contract's
    paths, e.g. ``participants[0].email``); ``checked`` is set for check boxes only;
    ``value`` is ``None`` when the control shows its placeholder.
    """

    key: str | None = None
    label: str | None = None
    value: str | None = None
    checked: bool | None = None

    def render(self) -> str:
        if self.checked is not None:
            return " ☒ " if self.checked else " ☐ "
        return (self.value or "").replace("\n", " ")


Inline: TypeAlias = "str | Control"


@dataclass(slots=True)
class Para:
    """A paragraph: text runs and inline controls; "\\n" separates lines, "\\t" cells."""

    inlines: list[Inline] = field(default_factory=list)
    rendered: list[_Line] | None = field(default=None, repr=False, compare=False)
    """Its lines, once ``_render`` made them: a table's cells are looked at several
    times (header? label row? values?), the text is the same each time."""


@dataclass(slots=True)
class Table:
    """Rows of cells; a cell is a list of blocks (paragraphs or nested tables)."""

    rows: list[list[list[Block]]] = field(default_factory=list)


Block: TypeAlias = "Para | Table"


@dataclass(slots=True)
class Document:
    """What a format reader hands over: blocks in reading order and every control."""

    blocks: list[Block]
    controls: list[Control] = field(default_factory=list)
    layout_tables: bool = False
    """Tables were rebuilt from a PDF page's layout: values in them count as ``text``."""
    method: Method | None = None
    """Forces the method (the OCR reader sets ``ocr``); ``None`` lets the values decide."""
    confidence: dict[str, float] = field(default_factory=dict)
    """OCR only: each recognised word's confidence (0–100), to flag poorly read values."""
    findings: list[Problem] = field(default_factory=list)
    """Problems the reader found itself (an unclear tick box in a scan)."""


@dataclass(slots=True)
class _Line:
    text: str
    controls: list[Control]


# --- ticks --------------------------------------------------------------------------

# Word's Wingdings tick boxes arrive as private-use code points (U+F0FE etc.).
_TICKS = frozenset("☒☑✓✔■✗✘⊠⌧▣◼☓🗹🗷\uf0fe\uf0fd\uf078\uf0fc\uf0fb\uf0ef")
_UNTICKS = frozenset("☐□▢◻❏❑○\uf0a8\uf06f\uf071")
# "X" typed at the start (also next to an empty box: "☐ X", "[x]") or at the end.
_X_START = re.compile(r"^\s*(?:[☐□\[(]\s*){0,2}[xX][\])]?(?:\s|$)")
_X_END = re.compile(r"\s[\[(]?[xX][\])]?[\s.]*$")
_OPTION_LETTER = re.compile(r"^[\s☐□☒☑✓✔■\[\]()xX]*?\b([A-H])\s*[–—\-).:]\s*\S")


def _lone_tick(text: str) -> bool:
    """A line holding a tick mark and nothing else ("X", "☒", "[x]")."""
    marks = _NOT_A_MARK.sub("", text)
    return (
        bool(marks)
        and len(marks) <= 3
        and tick_state(text) is True
        and all(c in _TICKS or c in _UNTICKS or c in "xX" for c in marks)
    )


_NOT_A_MARK = re.compile(r"[\s\[\]().]+")


def _option_ticks(
    text: str, spans: Sequence[tuple[str, int, int]]
) -> tuple[list[tuple[str, bool]], bool]:
    """Each option's tick on a line naming several ("☐ A – … ☒ B – …").

    A mark before the first option says marks precede their options; a mark after
    the last one says they follow them. Marks only between options (or on both
    sides) can be read for either neighbour: then nothing is ticked and the second
    value, *ambiguous*, is true.
    """
    cuts = [0, *(x for _, a, b in spans for x in (a, b)), len(text)]
    gaps = [tick_state(text[cuts[i] : cuts[i + 1]]) for i in range(0, len(cuts), 2)]
    letters = [letter for letter, _, _ in spans]
    if True not in gaps:
        return [(letter, False) for letter in letters], False
    before, after = gaps[0] is not None, gaps[-1] is not None
    if before and not after:
        return [(letter, gaps[k] is True) for k, letter in enumerate(letters)], False
    if after and not before:
        return [
            (letter, gaps[k + 1] is True) for k, letter in enumerate(letters)
        ], False
    return [(letter, False) for letter in letters], True


def tick_state(text: str) -> bool | None:
    """``True`` for a ticked option line, ``False`` for an empty box, ``None`` for no box."""
    if any(c in _TICKS for c in text):
        return True
    if _X_START.match(text) or _X_END.search(text):
        return True
    if any(c in _UNTICKS for c in text):
        return False
    return None


# --- control keys -------------------------------------------------------------------

_KEY_INSTITUTION = re.compile(
    r"^(?:institution|instytucja)[._](name|address|phone|email)$", re.IGNORECASE
)
_KEY_PARTICIPANT = re.compile(
    r"^(?:participants?|uczestni(?:k|cy))[._]?\[?(\d{1,3})\]?[._](full_name|position|phone|email)$",
    re.IGNORECASE,
)
_KEY_WORKSHOP = re.compile(
    r"^(?:workshops?|warsztaty?)[._\[]([A-Za-z])\]?$", re.IGNORECASE
)
_KEY_CONSENT = re.compile(
    r"^(?:consents?|zgody?)[._](data_processing|newsletter)$", re.IGNORECASE
)
_KEY_REMARKS = re.compile(r"^(?:remarks|uwagi)$", re.IGNORECASE)


def _canonical(key: str | None) -> tuple[str, ...] | None:
    """Split a contract path such as ``participants[1].email`` into its parts."""
    if not key:
        return None
    key = key.strip()
    if m := _KEY_INSTITUTION.match(key):
        return ("institution", m.group(1).lower())
    if m := _KEY_PARTICIPANT.match(key):
        return ("participant", m.group(1), m.group(2).lower())
    if m := _KEY_WORKSHOP.match(key):
        return ("workshop", m.group(1).upper())
    if m := _KEY_CONSENT.match(key):
        return ("consent", m.group(1).lower())
    if _KEY_REMARKS.match(key):
        return ("remarks",)
    return None


# --- the extractor ------------------------------------------------------------------

_PERSON_FIELDS = ("full_name", "position", "phone", "email")
_INSTITUTION_FIELDS = ("name", "address", "phone", "email")
_PARTICIPANT_SECTIONS = frozenset({"participants", "participant"})


@dataclass(slots=True)
class _Person:
    values: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    sources: set[Source] = field(default_factory=set)
    closed: bool = False
    origin: dict[str, Source] = field(default_factory=dict)
    """Where each value was read (``fields``, ``table``, ``text``)."""
    notes: dict[str, list[str]] = field(default_factory=dict)
    """Repairs a value needed (``joined``, ``marker``, ``wrapped``): less certain."""

    def put(self, name: str, value: str, source: Source, notes: list[str]) -> None:
        self.values[name] = value
        self.sources.add(source)
        self.origin[name] = source
        if notes:
            self.notes[name] = notes


@dataclass(slots=True)
class _Pending:
    key: str
    person: _Person | None
    source: Source


class _Extractor:
    """Walks a Document once, keeping the section context labels are read in."""

    def __init__(
        self, doc: Document, vocab: Vocabulary, events: Sequence[EventRef]
    ) -> None:
        self.doc = doc
        self.vocab = vocab
        self.events = events
        self.section: str | None = None
        self.header_done = False
        self.pending: _Pending | None = None
        self.address_open = False
        self.remarks_open = False
        """Remarks were just read: a soft line break may carry them on."""
        self.soft_break = False
        """The line being read follows a line break inside the same paragraph."""
        self.institution: dict[str, str] = {}
        self.institution_origin: dict[str, Source] = {}
        self.institution_notes: dict[str, list[str]] = {}
        self.remarks_origin: Source = "text"
        self.people: list[_Person] = []
        self.remarks: str | None = None
        self.remarks_raw = ""
        """Remarks as read, lines kept: cleaned once when a line is added, so a
        comma ending one line ("ruchową," ↵ "która …") survives the join."""
        self.options: list[tuple[str, bool]] = []
        self.unclear_ticks = 0
        """Tick marks in the workshops section that belong to no one option."""
        self.consents: dict[str, bool] = {}
        self.signals: set[str] = set()
        self.max_people = Limits.max_participants
        """People kept (``Limits.max_participants``); more are left out with a problem."""
        self.sources: set[Source] = set()
        self.structure_table = False
        self.event_lines: list[EventLine] = []
        # Values read from controls named with the contract's paths.
        self.keyed = False
        self.keyed_people: dict[int, _Person] = {}
        self.keyed_copies: list[tuple[int, int, _Person]] = []
        """Rows copied with their controls' tags (``participants[2].*`` twice): each
        copy is a person of its own, after the row it was copied from."""
        self.keyed_workshops: dict[str, bool] = {}
        self.keyed_consents: dict[str, bool] = {}
        self._titles = [fold(e.title) for e in events if e.title]

    # keyed controls ------------------------------------------------------------------

    def keyed_pass(self) -> None:
        for control in self.doc.controls:
            parts = _canonical(control.key)
            if parts is None:
                continue
            self.keyed = True
            self.signals.add("keyed")
            kind = parts[0]
            value = clean_text(control.value, self.vocab.placeholders)
            if kind == "institution":
                if value is not None and parts[1] not in self.institution:
                    self.institution[parts[1]] = value
                    self.institution_origin[parts[1]] = "fields"
                if parts[1] == "name":
                    self.signals.add("institution_label")
            elif kind == "participant":
                person = self._keyed_person(int(parts[1]), parts[2])
                person.seen.add(parts[2])
                if value is not None:
                    person.put(parts[2], value, "fields", _marker_notes(control.value))
                self.signals.add("participants_table")
            elif kind == "workshop":
                ticked = (
                    bool(control.checked)
                    if control.checked is not None
                    else _truthy(value)
                )
                self.keyed_workshops[parts[1]] = (
                    self.keyed_workshops.get(parts[1], False) or ticked
                )
                self.signals.add("workshops")
            elif kind == "consent":
                ticked = (
                    bool(control.checked)
                    if control.checked is not None
                    else _truthy(value)
                )
                self.keyed_consents[parts[1]] = (
                    self.keyed_consents.get(parts[1], False) or ticked
                )
                self.signals.add("consents")
            elif kind == "remarks" and value is not None and self.remarks is None:
                self.remarks = value

    def _keyed_person(self, index: int, name: str) -> _Person:
        """The person a ``participants[index].name`` control belongs to; a second
        control of the same path starts a copy of that row (a row copied in Word keeps
        its controls' tags)."""
        person = self.keyed_people.get(index)
        if person is None:
            person = self.keyed_people[index] = _Person()
            return person
        copies = [c for i, _, c in self.keyed_copies if i == index]
        current = copies[-1] if copies else person
        if name not in current.seen:
            return current
        copy = _Person()
        self.keyed_copies.append((index, len(copies) + 1, copy))
        return copy

    def keyed_list(self) -> list[_Person]:
        """Keyed people in document order: by index, each copy after its original."""
        order = [(i, 0, p) for i, p in self.keyed_people.items()] + self.keyed_copies
        return [p for _, _, p in sorted(order, key=lambda t: (t[0], t[1]))]

    # blocks ----------------------------------------------------------------------------

    def walk(self, blocks: Sequence[Block], source: Source, depth: int = 0) -> None:
        if depth > 20:
            return
        for block in blocks:
            if isinstance(block, Para):
                for k, line in enumerate(_render(block)):
                    self.soft_break = k > 0
                    self.line(line, source)
                self.soft_break = False
            else:
                self.table(block, depth + 1)

    def table(self, table: Table, depth: int) -> None:
        header = self._participant_header(table)
        rows = table.rows
        if header is None:
            self.rows(rows, depth)
            return
        index, columns = header
        self.rows(rows[:index], depth)
        self.structure_table = True
        self.signals.add("participants_table")
        self.section = "participants"
        self.header_done = True
        self.pending = None
        in_table = True
        for row in rows[index + 1 :]:
            if in_table and self._leaves_participants(row, columns):
                in_table = False  # the same table goes on with other parts of the form
            if in_table:
                self._participant_row(row, columns, depth)
            else:
                self.row(row, depth)

    def rows(self, rows: Sequence[list[list[Block]]], depth: int) -> None:
        """Rows of any other table; a row of labels over a row of values (labels as
        column headings: "Nazwa instytucji | Adres | Telefon") pairs them by column."""
        i = 0
        while i < len(rows):
            labels = self._label_row(rows[i])
            below = rows[i + 1] if i + 1 < len(rows) else None
            if (
                labels is None
                or below is None
                or len(below) != len(labels)
                or any(isinstance(b, Table) for cell in below for b in cell)
                or any(self._label_cell(_cell_text(cell)) for cell in below)
            ):
                self.row(rows[i], depth)
                i += 1
                continue
            self.structure_table = True
            self.header_done = True
            self.pending = None
            for match, cell in zip(labels, below, strict=True):
                if match is None:
                    continue
                lines = [ln for b in cell if isinstance(b, Para) for ln in _render(b)]
                controls = [c for ln in lines for c in ln.controls]
                text, notes = _join_noted(
                    [ln.text for ln in lines], address=_is_address(match)
                )
                self.assign(
                    match, text, controls, "table", allow_pending=False, notes=notes
                )
            i += 2

    def _label_row(self, row: list[list[Block]]) -> list[LabelMatch | None] | None:
        """The row's label per cell when every filled cell (two at least) is a label."""
        if any(isinstance(b, Table) for cell in row for b in cell):
            return None
        texts = [_cell_text(cell) for cell in row]
        labels = [self._label_cell(t) if t else None for t in texts]
        found = sum(1 for m in labels if m is not None)
        if found < 2 or found != sum(1 for t in texts if t):
            return None
        return labels

    def _leaves_participants(
        self, row: list[list[Block]], columns: dict[int, str]
    ) -> bool:
        if len(row) <= max(columns):
            return any(_cell_text(cell) for cell in row)
        first = next((t for t in map(_cell_text, row) if t), "")
        return bool(first) and (
            self.vocab.match_section(first) is not None
            or self._label_cell(first) is not None
        )

    def _participant_header(self, table: Table) -> tuple[int, dict[int, str]] | None:
        for index, row in enumerate(table.rows[:6]):
            if len(row) < self.vocab.table_min_columns:
                continue
            columns: dict[int, str] = {}
            for i, cell in enumerate(row):
                text = _cell_text(cell)
                if not text or len(text) > 80:
                    continue
                match = self.vocab.match_cell(text)
                if match is None:
                    continue
                key = next(
                    (k for k in match.keys if k.startswith("participant.")), None
                )
                if key is not None and key not in columns.values():
                    columns[i] = key
            names = set(columns.values())
            if len(names) >= self.vocab.table_min_columns and all(
                r in names for r in self.vocab.table_required
            ):
                return index, columns
        return None

    def _participant_row(
        self, row: list[list[Block]], columns: dict[int, str], depth: int
    ) -> None:
        if any(isinstance(b, Table) for cell in row for b in cell):
            for cell in row:
                self.walk(cell, "table", depth)
            return
        person = _Person(closed=True)
        keyed_only = True
        for i, cell in enumerate(row):
            key = columns.get(i)
            if key is None or key == "participant.number":
                continue
            lines = [
                line
                for block in cell
                if isinstance(block, Para)
                for line in _render(block)
            ]
            controls = [c for line in lines for c in line.controls]
            unkeyed = [c for c in controls if _canonical(c.key) is None]
            if not controls or unkeyed:
                keyed_only = False
            name = key.split(".", 1)[1]
            joined, notes = _join_noted(
                [line.text for line in lines], address=name == "email"
            )
            value = clean_text(joined, self.vocab.placeholders)
            person.seen.add(name)
            if value is not None:
                person.put(name, value, "fields" if unkeyed else "table", notes)
        if keyed_only:
            return  # the keyed pass read these controls already
        if person.values:
            self.people.append(person)
            self.sources.update(person.sources)

    def row(self, row: list[list[Block]], depth: int) -> None:
        if any(isinstance(b, Table) for cell in row for b in cell):
            for cell in row:
                self.walk(cell, "table", depth)
            return
        cell_lines = [
            [ln for b in cell if isinstance(b, Para) for ln in _render(b)]
            for cell in row
        ]
        noted = [_join_noted([ln.text for ln in lines]) for lines in cell_lines]
        texts = [text.strip() for text, _ in noted]
        emails = [
            j
            for j, text in enumerate(texts)
            if j and (m := self._label_cell(texts[j - 1])) is not None and _is_address(m)
        ]
        for j in emails:  # the cell right of an e-mail label holds one address
            text, notes = _join_noted([ln.text for ln in cell_lines[j]], address=True)
            noted[j] = (text, notes)
            texts[j] = text.strip()
        filled = [i for i, t in enumerate(texts) if t]
        if not filled:
            return
        pairs: list[tuple[LabelMatch, int, int]] = []  # label, its cell, value cell
        if len(row) >= 2:
            i = 0
            while i < len(row):
                match = self._label_cell(texts[i])
                if (
                    match is not None
                    and i + 1 < len(row)
                    and self._label_cell(texts[i + 1]) is None
                ):
                    j = i + 1
                    # "Telefon: | | 77 …": a split cell between a label and its value.
                    while (
                        j + 1 < len(row)
                        and not texts[j]
                        and not any(ln.controls for ln in cell_lines[j])
                        and self._label_cell(texts[j + 1]) is None
                    ):
                        j += 1
                    if not texts[j]:
                        j = i + 1
                    pairs.append((match, i, j))
                    i = j + 1
                else:
                    i += 1
        if pairs and pairs[0][1] == filled[0]:
            self.structure_table = True
            self.header_done = True
            self.pending = None
            for match, _, j in pairs:
                controls = [c for ln in cell_lines[j] for c in ln.controls]
                self.assign(
                    match, texts[j], controls, "table", allow_pending=False,
                    notes=noted[j][1],
                )
            return
        if all(len(lines) <= 1 for lines in cell_lines):
            controls = [c for lines in cell_lines for ln in lines for c in ln.controls]
            self.line(_Line("\t".join(texts), controls), "table")
            return
        for cell in row:
            self.walk(cell, "table", depth)

    def _label_cell(self, text: str) -> LabelMatch | None:
        if not text or len(text) > 90 or self.vocab.match_section(text) is not None:
            return None
        return self.vocab.match_cell(text)

    # lines -----------------------------------------------------------------------------

    def line(self, line: _Line, source: Source) -> None:
        text = line.text
        if not text.strip():
            return
        address_open, self.address_open = self.address_open, False
        remarks_open, self.remarks_open = self.remarks_open, False
        vocab = self.vocab
        section = vocab.match_section(text)
        if section is not None and tick_state(text) is None:
            self._enter_section(*section)
            return
        if vocab.is_title(text):
            self.signals.add("title")
            self._event_candidate(text)
            return
        parts = vocab.split_labelled(_strip_numbering(text))
        labelled = parts[0][0] is not None
        consent = None if labelled else vocab.match_consent(text)
        if consent is not None:
            self.consents[consent] = (
                self.consents.get(consent, False) or tick_state(text) is True
            )
            self._structural("consents")
            self._tick_box(text, line.controls)
            return
        spans = [] if labelled else vocab.find_workshops(text)
        if len(spans) > 1:  # options side by side: each with its own mark
            ticks, unclear = _option_ticks(text, spans)
            self.options.extend(ticks)
            self.unclear_ticks += unclear
            self._structural("workshops")
            self._tick_box(text, line.controls)
            return
        letter = None if labelled else vocab.match_workshop(text)
        if letter is None and not labelled and self.section == "workshops":
            m = _OPTION_LETTER.match(text)
            if m is not None and m.group(1) in vocab.workshop_letters:
                letter = m.group(1)
        if letter is not None:
            self.options.append((letter, tick_state(text) is True))
            self._structural("workshops")
            self._tick_box(text, line.controls)
            return
        if not labelled:
            lead = parts[0][1]
            if self.pending is not None and lead.strip():
                pending, self.pending = self.pending, None
                self._store(
                    pending.key, lead, line.controls, pending.source, pending.person
                )
                if pending.key == "institution.address" and not _POSTCODE.search(lead):
                    self.address_open = True  # street now, "45-075 Opole" may follow
            elif (
                address_open
                and _POSTCODE.search(lead)
                and "address" in self.institution
            ):
                self.institution["address"] += ", " + (clean_text(lead) or "")
            elif (
                remarks_open
                and self.soft_break
                and self.remarks is not None
                and not vocab.is_not_event(text)
            ):
                if clean_text(lead, vocab.placeholders):
                    # "Uwagi: dieta wegetariańska," ↵ "podjazd dla wózka"
                    self.remarks_raw += "\n" + lead
                    self.remarks = clean_text(self.remarks_raw) or self.remarks
                self.remarks_open = True
            elif (
                self.section == "workshops"
                and self.doc.method != "ocr"  # OCR judges its boxes itself (and noise)
                and _lone_tick(lead)
            ):
                self.unclear_ticks += 1  # "X" on a line of its own: whose option?
            elif lead.strip() and len(parts) == 1:
                self._event_candidate(text)
            parts = parts[1:]
        for match, value in parts:
            assert match is not None
            self.assign(match, value, line.controls, source, allow_pending=True)

    def _tick_box(self, text: str, controls: list[Control]) -> None:
        """An option or consent offered with a box (empty or ticked) to mark: a form's
        structure, where a programme or a letter only names the options."""
        if tick_state(text) is not None or any(c.checked is not None for c in controls):
            self.signals.add("tick_box")

    def _structural(self, signal: str) -> None:
        self.signals.add(signal)
        self.header_done = True
        self.pending = None

    def _enter_section(self, name: str, number: int | None) -> None:
        self.header_done = True
        self.pending = None
        self.section = name
        self.signals.add(f"section:{name}")
        if name == "participant":
            self.people.append(_Person())

    def _event_candidate(self, text: str) -> None:
        if self.vocab.is_not_event(text):
            return
        folded = fold(text)
        if any(t and t in folded for t in self._titles):
            self.signals.add("event_title")
        # A line naming the conference ("w konferencji … w Opolu") is header wherever it is.
        header = not self.header_done or self.vocab.is_event_header(text)
        self.event_lines.append(EventLine(text, header=header))

    def assign(
        self,
        match: LabelMatch,
        value: str,
        controls: list[Control],
        source: Source,
        *,
        allow_pending: bool,
        notes: list[str] | None = None,
    ) -> None:
        key = self._resolve(match.keys)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("label %r (section %s) -> %s", match.label, self.section, key)
        self.header_done = True
        self.pending = None
        if key.startswith("signature.") or key == "participant.number":
            return
        if key == "institution.name":
            self.signals.add("institution_label")
        elif key == "participant.full_name":
            self.signals.add("participant_label")
        person = None
        if key.startswith("participant."):
            person = self._person_for(key.split(".", 1)[1])
            if self.section not in _PARTICIPANT_SECTIONS:
                self.section = (
                    "participants"  # "Telefon"/"E-mail" after a name are the person's
                )
        if allow_pending and not value.strip():
            self.pending = _Pending(key, person, source)
            return
        self._store(key, value, controls, source, person, notes)

    def _store(
        self,
        key: str,
        raw: str,
        controls: list[Control],
        source: Source,
        person: _Person | None,
        notes: list[str] | None = None,
    ) -> None:
        if controls and all(_canonical(c.key) is not None for c in controls):
            return  # read by the keyed pass
        value = clean_text(raw, self.vocab.placeholders)
        if value is None:
            return
        src: Source = "fields" if controls else source
        notes = [*(notes or []), *_marker_notes(raw)]
        name = key.split(".", 1)[1] if "." in key else key
        if key.startswith("institution."):
            if name not in self.institution:
                self.institution[name] = value
                self.institution_origin[name] = src
                if notes:
                    self.institution_notes[name] = sorted(set(notes))
                self.sources.add(src)
        elif person is not None:
            if name not in person.values:
                person.put(name, value, src, sorted(set(notes)))
                self.sources.add(src)
        elif key == "remarks" and self.remarks is None:
            self.remarks = value
            self.remarks_raw = raw
            self.remarks_origin = src
            self.remarks_open = not controls
            self.sources.add(src)

    def _resolve(self, keys: tuple[str, ...]) -> str:
        participant = [k for k in keys if k.startswith("participant.")]
        institution = [k for k in keys if k.startswith("institution.")]
        if participant and (self.section in _PARTICIPANT_SECTIONS or not institution):
            return participant[0]
        if institution:
            return institution[0]
        return keys[0]

    def _person_for(self, name: str) -> _Person:
        current = (
            self.people[-1] if self.people and not self.people[-1].closed else None
        )
        if current is None or name in current.seen:
            current = _Person()
            self.people.append(current)
        current.seen.add(name)
        return current

    # result ----------------------------------------------------------------------------

    def is_form(self) -> bool:
        strong = {
            "title",
            "event_title",
            "institution_label",
            "participants_table",
            "participant_label",
            "workshops",
            "consents",
            "keyed",
        }
        found = self.signals & strong
        sections = sum(1 for s in self.signals if s.startswith("section:"))
        if not self.signals & _FORM_STRUCTURE:
            # The conference's title, its workshops or consents named in a programme
            # or a letter make no form: something must be there to fill in.
            return False
        return len(found) + (1 if sections >= 2 else 0) >= 2

    def method(self) -> Method:
        if self.keyed or "fields" in self.sources:
            return "fields"
        if (
            self.structure_table or "table" in self.sources
        ) and not self.doc.layout_tables:
            return "table"
        return "text"


# What only a form has: a field's label, the participants' grid, a control, a box.
_FORM_STRUCTURE = frozenset(
    {"institution_label", "participants_table", "participant_label", "keyed", "tick_box"}
)


def _truthy(value: str | None) -> bool:
    return value is not None and fold(value).strip("/ ") not in {
        "",
        "off",
        "no",
        "false",
        "0",
        "nie",
    }


_NUMBERING = re.compile(r"^\s*(?:\d{1,2}|[IVX]{1,4})[.)]\s+")
_POSTCODE = re.compile(r"\b\d{2}-\d{3}\b")


def _strip_numbering(text: str) -> str:
    return _NUMBERING.sub("", text, count=1)


def _render(para: Para) -> list[_Line]:
    if para.rendered is None:
        para.rendered = list(_render_lines(para))
    return para.rendered


def _render_lines(para: Para) -> Iterator[_Line]:
    buf: list[str] = []
    controls: list[Control] = []
    for item in para.inlines:
        if isinstance(item, str):
            pieces = item.split("\n")
            buf.append(pieces[0])
            for piece in pieces[1:]:
                yield _Line("".join(buf), controls)
                buf, controls = [piece], []
        else:
            buf.append(item.render())
            controls.append(item)
    yield _Line("".join(buf), controls)


_WRAPPED_HYPHEN = re.compile(r"(?<=\w)-\s*$")


def _join_lines(lines: Iterable[str]) -> str:
    """Join a cell's lines with spaces, but without one after a hyphen ending a word:
    a wrapped "Krawczyk-" / "Grabowski" is "Krawczyk-Grabowski" (also in e-mails),
    nor at the "@" of an e-mail wrapped there ("a.kowalska@" / "nysa.pl"), nor inside
    an address wrapped anywhere else ("kowalska@powiatstrzele" / "cki.pl")."""
    return _join_noted(list(lines))[0]


def _join_noted(
    lines: Sequence[str], *, address: bool = False
) -> tuple[str, list[str]]:
    """``_join_lines`` and what the join did: ``wrapped`` (lines joined with a space),
    ``joined`` (joined without one: the reading rests on where the line broke),
    ``marker`` (a soft hyphen or PDFium's line-end marker dropped).

    ``address``: the lines are one e-mail cell, where a line break is never a space
    (see ``_address_lines``).
    """
    if address and len([ln for ln in lines if ln.strip()]) > 1:
        return _address_lines(lines)
    notes: set[str] = set()
    out = ""
    for line in lines:
        if not line.strip():
            continue
        if out:
            if _joins_tight(out, line):
                out = out.rstrip() + line.lstrip()
                notes.add("joined")
            else:
                out = f"{out} {line}"
                notes.add("wrapped")
        else:
            out = line
        if any(m in line for m in _MARKERS):
            notes.add("marker")
    return out, sorted(notes)


_MARKERS = ("\u00ad", "\x02", "\ufffe")

# Top-level domains a sender's address really ends in: an address cut at the cell's
# edge leaves a "domain" ending in a piece of a word ("…@um.opo" ↵ "le.pl", "…@sp.gmi"
# ↵ "na.pl"), which is none of these; one that ends in one of these may be whole.
_REAL_TLDS = frozenset(
    """pl eu com org net edu gov int info biz name pro mobi app dev io online site co tv cc
    de cz sk ua by lt lv ee ru fr it es pt nl be lu at ch uk ie dk no se fi is hu ro bg
    gr hr si rs ba me mk al md tr il us ca au nz jp cn in br""".split()
)


def _address_lines(lines: Sequence[str]) -> tuple[str, list[str]]:
    """The lines of one e-mail cell as one value.

    A line break in an address is never a space. When the lines make a valid address
    only run together ("malgorzata.sli" ↵ "winska@nysa.pl", "…@glogowek.p" ↵ "l"),
    they are joined so. When the first line already reads as an address but the
    lines run together make a longer one, the cut is where the cell's edge fell:
    "…@um.opo" ↵ "le.pl", "…@um.opole." ↵ "pl", "…@um.dabrowa" ↵ "-opolska.pl" are
    joined, as is any tail after a "domain" with no real top-level domain. Only when
    the first line ends in a real one ("…@nysa.pl" ↵ "sekretariat", "…@firma.co" ↵
    "m") can the reader not tell a cut address from a word after a whole one: the
    likelier reading is kept with an ``UNCLEAR`` note naming the other one, and the
    value is doubted, never stated as sure.
    """
    spaced, spaced_notes = _join_noted(lines)
    tight = "".join(ln.strip() for ln in lines)
    spaced_value, spaced_ok = normalize_email(spaced)
    if not spaced_ok:
        if _valid_address(tight):
            return tight, sorted({*spaced_notes, "joined"} - {"wrapped"})
        return spaced, spaced_notes
    tight_value = normalize_email(tight)[0] if _valid_address(tight) else None
    if tight_value is None or spaced_value is None or tight_value == spaced_value:
        return spaced, spaced_notes
    if not tight_value.lower().startswith(spaced_value.lower()):
        return spaced, spaced_notes  # the address read is not the head of the joined one
    rest = tight_value[len(spaced_value) :]
    tld = spaced_value.rpartition(".")[2].lower()
    if rest[:1] in (".", "-") or tld not in _REAL_TLDS:
        return tight, sorted({*spaced_notes, "joined"} - {"wrapped"})
    # A real top-level domain, then more of an address: a cut one, or two words.
    if "." in rest or len(rest) <= 3:  # "…@um.de" ↵ "blin.pl", "…@firma.co" ↵ "m"
        notes = {*spaced_notes, "joined", f"{UNCLEAR}: {spaced_value}"} - {"wrapped"}
        return tight, sorted(notes)
    # "…@nysa.pl" ↵ "sekretariat"
    return spaced, sorted({*spaced_notes, f"{UNCLEAR}: {tight_value}"})


def _is_address(match: LabelMatch) -> bool:
    return any(k.endswith(".email") for k in match.keys)


def _valid_address(text: str) -> bool:
    """One whole valid address with a plausible top-level domain (two letters or
    more): "…@glogowek.p" is a cut, not an address."""
    value, ok = normalize_email(text)
    if not ok or value is None or " " in text.strip():
        return False
    return bool(re.search(r"\.[a-z]{2,}$", value.rpartition("@")[2]))


def _joins_tight(before: str, after: str) -> bool:
    if _WRAPPED_HYPHEN.search(before) and after.lstrip()[:1].isalnum():
        return True
    if before.rstrip().endswith("@") and after.strip()[:1].isalnum():
        return True
    if after.lstrip().startswith("@") and before.rstrip()[-1:].isalnum():
        return True
    # An address broken inside its local part or domain: the two halves only make a
    # valid address together ("…@powiatstrzele" + "cki.pl", "…@opolski" + "e.pl").
    tail = before.split()[-1] if before.split() else ""
    head = after.split()[0] if after.split() else ""
    if not tail or not head or (tail + head).count("@") != 1:
        return False
    # Cheapest refusals first: a whole address on either line is no broken one.
    return (
        not _valid_address(tail)
        and not _valid_address(head)
        and _valid_address(tail + head)
    )


def _marker_notes(raw: str | None) -> list[str]:
    return ["marker"] if raw and any(m in raw for m in _MARKERS) else []


def _cell_text(cell: list[Block]) -> str:
    return " ".join(
        ln.text for b in cell if isinstance(b, Para) for ln in _render(b)
    ).strip()


# --- assembling the result ---------------------------------------------------------


def build_form(
    doc: Document,
    *,
    file: str,
    fmt: str,
    events: Sequence[EventRef],
    vocab: Vocabulary,
    method: Method | None = None,
    max_participants: int = Limits.max_participants,
) -> FormData:
    """Read ``doc`` as the registration form; ``not_a_form`` when it plainly is not one."""
    ex = _Extractor(doc, vocab, events)
    ex.max_people = max_participants
    ex.keyed_pass()
    ex.walk(doc.blocks, "text")
    if not ex.is_form():
        return FormData(
            file=file,
            status="not_a_form",
            format=fmt,
            reason="no labels of the registration form found",
        )
    problems: list[Problem] = []
    found = len(_kept(ex, cap=False))
    if found > max_participants:
        problems.append(
            Problem(
                "participants",
                "invalid",
                f"Zgłoszenie zawiera {found} osób; odczytano pierwsze {max_participants}.",
            )
        )
    kept = _kept(ex)
    raw_text = _raw_values(ex, kept)
    if doc.method == "ocr":
        _repair_ocr(ex)
    institution = _institution(ex.institution, problems)
    people = _people(kept, problems)
    workshops = _workshops(ex)
    if ex.unclear_ticks and len({letter for letter, _ in ex.options}) > 1:
        problems.append(
            Problem(
                "workshops",
                "ambiguous",
                "Nie jest jasne, który warsztat zaznaczono; prosimy o potwierdzenie wyboru.",
            )
        )
    consents = Consents(
        data_processing=ex.keyed_consents.get("data_processing", False)
        or ex.consents.get("data_processing", False),
        newsletter=ex.keyed_consents.get("newsletter", False)
        or ex.consents.get("newsletter", False),
    )
    if not consents.data_processing:
        problems.append(
            Problem(
                "consents.data_processing",
                "missing",
                "Brak zgody na przetwarzanie danych osobowych.",
            )
        )
    event = recognise_event(ex.event_lines, events)
    if event is None:
        problems.append(
            Problem(
                "event",
                "unknown",
                "Nie rozpoznano konferencji, której dotyczy zgłoszenie.",
            )
        )
    problems.extend(doc.findings)
    readings = _readings(ex, institution, zip(people, kept, strict=True), raw_text, doc)
    ocr_score = None
    if doc.method == "ocr":
        from mailbot.forms.ocr import value_confidence

        def ocr_score(raw: str) -> float | None:
            return value_confidence(raw, doc.confidence)

    provenance, doubts = assess(
        readings,
        ocr_score=ocr_score,
        settled={p.field for p in problems if p.code != "low_confidence"},
    )
    known = {(p.field, p.code) for p in problems}
    problems.extend(d for d in doubts if (d.field, d.code) not in known)
    return FormData(
        file=file,
        status="ok",
        format=fmt,
        method=method or doc.method or ex.method(),
        event=event,
        institution=institution,
        participants=people,
        workshops=workshops,
        remarks=clean_text(ex.remarks, vocab.placeholders),
        consents=consents,
        problems=problems,
        provenance=provenance,
    )


def _repair_ocr(ex: _Extractor) -> None:
    """OCR's usual misreadings in e-mail and phone fields ("urzadQlubniany.pl");
    a repaired value is noted, as it is less certain than one read as it stands."""
    from mailbot.forms.ocr import repair_values

    for name in repair_values(ex.institution):
        ex.institution_notes.setdefault(name, []).append("repaired")
    people = [*ex.keyed_list(), *ex.people]
    for person in people:
        for name in repair_values(person.values):
            person.notes.setdefault(name, []).append("repaired")
    # An "@" read as a letter ("sekretariateglucholazy.pl") has several readings on
    # its own; a domain the form's other addresses use settles which one it is.
    holders = [(ex.institution, ex.institution_notes)] + [(p.values, p.notes) for p in people]
    domains = {
        v.rpartition("@")[2].lower()
        for values, _ in holders
        if (v := values.get("email")) and normalize_email(v)[1]
    }
    for values, notes in holders:
        value = values.get("email")
        if value is None or "@" in value or normalize_email(value)[1]:
            continue
        fixed = _at_before_domain(value, domains)
        if fixed is not None:
            values["email"] = fixed
            notes.setdefault("email", []).append("repaired")


_AT_LOOKALIKES = frozenset("eoacQ©®&0")


def _at_before_domain(value: str, domains: set[str]) -> str | None:
    """``local?domain`` → ``local@domain`` when exactly one known domain ends the value
    after a single character OCR reads for "@" (never a letter dropped: in
    "sekretariatglucholazy.pl" the "@" is lost, not misread, and the cut is unknown)."""
    text = value.strip()
    found = {
        text[: -len(d) - 1] + "@" + d
        for d in domains
        if text.lower().endswith(d)
        and len(text) > len(d) + 2
        and text[-len(d) - 1] in _AT_LOOKALIKES
    }
    valid = {f for f in found if normalize_email(f)[1]}
    return valid.pop() if len(valid) == 1 else None


def _kept(ex: _Extractor, *, cap: bool = True) -> list[_Person]:
    """The people in the result: keyed rows first (the organiser's controls), then
    rows the participant added; rows with no value at all are left out, and those
    past ``ex.max_people`` too (a form of thousands would flood the registrations)."""
    raw = ex.keyed_list() + ex.people
    kept = [p for p in raw if any(p.values.get(f) for f in _PERSON_FIELDS)]
    return kept[: ex.max_people] if cap else kept


def _raw_values(ex: _Extractor, kept: list[_Person]) -> dict[tuple[int, str], str]:
    """Every value as read, before OCR repairs (its words carry OCR's confidence);
    person ``-1`` is the institution."""
    out = {(-1, k): v for k, v in ex.institution.items()}
    for i, person in enumerate(kept):
        out.update({(i, k): v for k, v in person.values.items()})
    return out


_PERSON_KINDS: dict[str, Kind] = {
    "full_name": "name",
    "position": "position",
    "phone": "phone",
    "email": "email",
}
_INSTITUTION_KINDS: dict[str, Kind] = {
    "name": "institution",
    "address": "address",
    "phone": "phone",
    "email": "email",
}


def _readings(
    ex: _Extractor,
    institution: Institution,
    people: Iterable[tuple[Participant, _Person]],
    raw_text: dict[tuple[int, str], str],
    doc: Document,
) -> list[Reading]:
    """Each value of the result with where it came from and what it needed."""

    def source(origin: Source) -> Method:
        if doc.method == "ocr":
            return "ocr"
        if doc.layout_tables and origin == "table":
            return "text"  # a table rebuilt from a PDF page's layout
        return origin

    # (path prefix, fields, result object, key in raw_text, origins, notes, name)
    holders: list[tuple[str, dict[str, Kind], object, int, dict[str, Source], dict[str, list[str]], str | None]]
    holders = [("institution", _INSTITUTION_KINDS, institution, -1, ex.institution_origin, ex.institution_notes, None)]
    holders += [
        (f"participants[{i}]", _PERSON_KINDS, person, i, raw.origin, raw.notes, person.full_name)
        for i, (person, raw) in enumerate(people)
    ]
    out: list[Reading] = []
    for prefix, kinds, holder, index, origin, notes, full_name in holders:
        for name, kind in kinds.items():
            value = getattr(holder, name)
            if value is None:
                continue
            out.append(
                Reading(
                    f"{prefix}.{name}", kind, value, raw_text.get((index, name), value),
                    source(origin.get(name, "text")), list(notes.get(name, [])), person=full_name,
                )
            )
    if ex.remarks is not None:
        out.append(
            Reading("remarks", "remarks", ex.remarks, ex.remarks, source(ex.remarks_origin))
        )
    return out


def _institution(values: dict[str, str], problems: list[Problem]) -> Institution:
    inst = Institution(name=values.get("name"), address=values.get("address"))
    if inst.name is None:
        problems.append(
            Problem("institution.name", "missing", "Brak nazwy instytucji.")
        )
    phone, ok = normalize_phone(values.get("phone"))
    inst.phone = phone
    if not ok:
        problems.append(
            Problem(
                "institution.phone",
                "invalid",
                f"Nieprawidłowy numer telefonu instytucji: {phone}.",
            )
        )
    email, ok = normalize_email(values.get("email"))
    inst.email = email
    if not ok:
        problems.append(
            Problem(
                "institution.email",
                "invalid",
                f"Nieprawidłowy adres e-mail instytucji: {email}.",
            )
        )
    return inst


def _people(kept: list[_Person], problems: list[Problem]) -> list[Participant]:
    people: list[Participant] = []
    for person in kept:
        n = len(people) + 1
        i = n - 1
        p = Participant(
            full_name=person.values.get("full_name"),
            position=person.values.get("position"),
        )
        if p.full_name is None:
            problems.append(
                Problem(
                    f"participants[{i}].full_name",
                    "missing",
                    f"Brak imienia i nazwiska uczestnika {n}.",
                )
            )
        phone, ok = normalize_phone(person.values.get("phone"))
        p.phone = phone
        if not ok:
            problems.append(
                Problem(
                    f"participants[{i}].phone",
                    "invalid",
                    f"Nieprawidłowy numer telefonu uczestnika {n}: {phone}.",
                )
            )
        email, ok = normalize_email(person.values.get("email"))
        p.email = email
        if email is None:
            problems.append(
                Problem(
                    f"participants[{i}].email",
                    "missing",
                    f"Brak adresu e-mail uczestnika {n}.",
                )
            )
        elif not ok:
            problems.append(
                Problem(
                    f"participants[{i}].email",
                    "invalid",
                    f"Nieprawidłowy adres e-mail uczestnika {n}: {email}.",
                )
            )
        people.append(p)
    if not people:
        problems.append(
            Problem("participants", "missing", "Brak uczestników w zgłoszeniu.")
        )
    return people


def _workshops(ex: _Extractor) -> list[str]:
    if ex.keyed_workshops:
        chosen = {k for k, v in ex.keyed_workshops.items() if v}
        if not chosen and len(ex.keyed_workshops) == 1:
            chosen = set(ex.keyed_workshops)  # the other option's control was deleted
        return sorted(chosen)
    chosen = {letter for letter, ticked in ex.options if ticked}
    letters = {letter for letter, _ in ex.options}
    if not chosen and len(letters) == 1 and len(ex.vocab.workshop_letters) > 1:
        chosen = letters  # unwanted options deleted: the one left standing is chosen
    return sorted(chosen)
