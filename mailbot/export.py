"""The participant list as organisers want it: CSV, XLSX (one sheet per event) or JSON.

The XLSX is also what the daily digest attaches (:mod:`mailbot.digest`): organisers open
it in Excel or LibreOffice, so it speaks Polish (statuses included), keeps the header
row bold and frozen, has filters on and columns sized to their content. The CSV says
the same in the same words, plus everything else the JSON holds, and by default is
written for Polish Excel (``;``, UTF-8 with a byte-order mark, CRLF: see
:data:`CSV_DIALECTS`). One line per person; a registration's remark only on its first
line, so a diet is never counted once per person."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from sqlmodel import Session, col, select

from mailbot.store.tables import InboundMessage, Participant, Registration


@dataclass(frozen=True)
class PersonRow:
    full_name: str | None
    position: str | None
    phone: str | None
    email: str | None
    status: str = "confirmed"
    """confirmed | waitlisted | cancelled | late (see mailbot.seats)"""
    email_check: str | None = None
    """``unconfirmed`` while the reader's doubt about the address is not settled (see
    ``Participant.email_check``); ``confirmed``/``corrected`` once it is."""
    doubts: list[str] = field(default_factory=list)
    """What of this person's data (and, on the first row, the institution's) was read
    with doubt, in Polish: the organisers check it before relying on it."""


@dataclass(frozen=True)
class RegistrationRow:
    code: str
    event: str
    status: str
    institution: dict[str, str | None]
    participants: list[PersonRow]
    workshops: list[str]
    remarks: str | None
    consents: dict[str, bool]
    sender: str | None
    source_message_id: str | None
    created_at: str
    updated_at: str
    version: int
    problems: list[dict[str, str]] = field(default_factory=list)


def load_rows(session: Session, event: str | None = None) -> list[RegistrationRow]:
    """Every registration (of ``event``, or of all events) with its participants.

    Three queries whatever the size: registrations, their participants, their source
    messages (the digest builds this for hundreds of people every morning)."""
    query = select(Registration).order_by(col(Registration.event_key), col(Registration.id))
    if event:
        query = query.where(Registration.event_key == event)
    regs = session.exec(query).all()
    people_of: dict[int, list[Participant]] = {}
    message_ids: dict[int, str | None] = {}
    reg_ids = [r.id for r in regs if r.id is not None]
    for chunk in _chunks(reg_ids):
        for p in session.exec(
            select(Participant)
            .where(col(Participant.registration_id).in_(chunk))
            .order_by(col(Participant.registration_id), col(Participant.position))
        ).all():
            people_of.setdefault(p.registration_id, []).append(p)
    inbound_ids = sorted({r.source_inbound_id for r in regs})
    for chunk in _chunks(inbound_ids):
        for inbound_id, message_id in session.exec(
            select(InboundMessage.id, InboundMessage.message_id).where(col(InboundMessage.id).in_(chunk))
        ).all():
            if inbound_id is not None:
                message_ids[inbound_id] = message_id
    rows = []
    for reg in regs:
        people = people_of.get(reg.id or -1, [])
        problems = _low_confidence(reg.problems_json)
        rows.append(
            RegistrationRow(
                code=reg.code,
                event=reg.event_key,
                status=reg.status,
                institution={
                    "name": reg.institution_name,
                    "address": reg.institution_address,
                    "phone": reg.institution_phone,
                    "email": reg.institution_email,
                },
                participants=[
                    PersonRow(
                        p.full_name, p.job_title, p.phone, p.email, p.status, p.email_check,
                        _doubts(p, problems, first=n == 0),
                    )
                    for n, p in enumerate(people)
                ],
                workshops=[w for w in reg.workshops.split(",") if w],
                remarks=reg.remarks,
                consents={
                    "data_processing": reg.consent_data_processing,
                    "newsletter": reg.consent_newsletter,
                },
                sender=reg.sender_email,
                source_message_id=message_ids.get(reg.source_inbound_id),
                created_at=reg.created_at.isoformat(),
                updated_at=reg.updated_at.isoformat(),
                version=reg.version,
                problems=json.loads(reg.problems_json),
            )
        )
    return rows


_FIELD_PL = {
    "full_name": "imię i nazwisko",
    "position": "stanowisko",
    "phone": "telefon",
    "email": "e-mail",
    "name": "nazwa instytucji",
    "address": "adres instytucji",
}


def _low_confidence(problems_json: str) -> dict[str, dict[str, str]]:
    """The reader's ``low_confidence`` problems by field path."""
    try:
        problems = json.loads(problems_json or "[]")
    except ValueError:
        return {}
    return {
        str(p.get("field")): p
        for p in problems if isinstance(problems, list)
        if isinstance(p, dict) and p.get("code") == "low_confidence"
    }


def _doubts(person: Participant, problems: dict[str, dict[str, str]], *, first: bool) -> list[str]:
    """Polish notes on what was read with doubt: the person's own fields (by their place
    on the form), the e-mail by its settled state, and on the first row the institution's."""
    out: list[str] = []
    if person.email_check == "unconfirmed":
        note = "e-mail niepotwierdzony"
        if person.email_suggestion:
            note += f" (czy {person.email_suggestion}?)"
        out.append(note)
    for name in ("full_name", "position", "phone"):
        problem = problems.get(f"participants[{person.position}].{name}")
        if problem is not None:
            hint = f" (czy {problem['suggestion']}?)" if problem.get("suggestion") else ""
            out.append(f"{_FIELD_PL[name]} odczytany niepewnie{hint}")
    if first:
        for name in ("name", "address", "phone", "email"):
            if f"institution.{name}" in problems:
                out.append(f"{_FIELD_PL[name]} odczytany niepewnie")
    return out


def _chunks(ids: Sequence[int], size: int = 500) -> list[Sequence[int]]:
    """IN lists of bounded length (SQLite and PostgreSQL both cope, but not unbounded)."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]


SEAT_PL = {
    "confirmed": "potwierdzony",
    "waitlisted": "lista rezerwowa",
    "cancelled": "rezygnacja",
    "late": "po terminie",
}
"""A participant's status as organisers read it (the "Udział" column)."""

REGISTRATION_PL = {
    "confirmed": "przyjęte",
    "incomplete": "niekompletne",
    "cancelled": "wycofane",
    "late": "po terminie",
}
"""A registration's status in Polish (the "Status" column of the XLSX and the CSV, which
organisers open side by side; JSON keeps the stored values, which scripts match on)."""

COLUMNS = (
    ("Wydarzenie", "event"),
    ("Kod zgłoszenia", "code"),
    ("Status", "status"),
    ("Instytucja", "institution"),
    ("Lp.", "n"),
    ("Imię i nazwisko", "full_name"),
    ("Stanowisko / funkcja", "position"),
    ("Telefon", "phone"),
    ("E-mail", "email"),
    ("Udział", "seat"),
    ("Warsztaty", "workshops"),
    ("Uwagi", "remarks"),
    ("Zgoda RODO", "consent"),
    ("Zgoda na informacje", "newsletter"),
    ("Zgłaszający", "sender"),
    ("Do sprawdzenia", "doubts"),
)


CSV_COLUMNS = COLUMNS + (
    ("Adres instytucji", "institution_address"),
    ("Telefon instytucji", "institution_phone"),
    ("E-mail instytucji", "institution_email"),
    ("Stan adresu e-mail", "email_check"),
    ("Braki w zgłoszeniu", "problems"),
    ("Wpłynęło", "created_at"),
    ("Zmieniono", "updated_at"),
    ("Wersja", "version"),
    ("Message-ID zgłoszenia", "source_message_id"),
)
"""The CSV's columns: the XLSX's, then the rest of what the JSON holds, so nobody has to
open the JSON to find an institution's address or phone. Added only at the end."""

EMAIL_CHECK_PL = {
    "unconfirmed": "niepotwierdzony",
    "confirmed": "potwierdzony",
    "corrected": "poprawiony",
}

CSV_DIALECTS = ("excel-pl", "plain")
"""``excel-pl`` (the command's default): what Excel with Polish regional settings opens
by double-click as columns — ``;`` between fields (the Polish list separator, as ``,``
is the decimal one), a UTF-8 byte-order mark (else Excel reads the file as Windows-1250
and garbles ą, ę, ł …) and CRLF line ends. ``plain``: RFC 4180 with ``,``, no mark, for
scripts and other tools; same columns and values."""


def _remarks_once(r: RegistrationRow, i: int) -> str | None:
    """A registration's remark on its first row only: a "dieta wegetariańska" written
    once for three people must not be counted three times by whoever filters the
    column (the remark belongs to the form, not to each person on it)."""
    return r.remarks if i == 1 else None


def _flat(rows: Sequence[RegistrationRow], *, extra: bool = False) -> list[list[Any]]:
    """One line per person (``COLUMNS``; with ``extra``, ``CSV_COLUMNS``)."""
    out: list[list[Any]] = []
    for r in rows:
        people = r.participants or [PersonRow(None, None, None, None, "")]
        for i, p in enumerate(people, 1):
            line: list[Any] = [
                r.event, r.code, REGISTRATION_PL.get(r.status, r.status), r.institution["name"], i,
                p.full_name, p.position, p.phone, p.email, SEAT_PL.get(p.status, p.status),
                ", ".join(r.workshops), _remarks_once(r, i),
                "tak" if r.consents["data_processing"] else "nie",
                "tak" if r.consents["newsletter"] else "nie",
                r.sender,
                "; ".join(p.doubts) or None,
            ]
            if extra:
                line += [
                    r.institution.get("address"), r.institution.get("phone"), r.institution.get("email"),
                    EMAIL_CHECK_PL.get(p.email_check or "", p.email_check),
                    "; ".join(_problem_text(x) for x in r.problems) or None if i == 1 else None,
                    r.created_at, r.updated_at, r.version, r.source_message_id,
                ]
            out.append(line)
    return out


def _problem_text(problem: dict[str, str]) -> str:
    return str(problem.get("message") or problem.get("field") or problem.get("code") or "")


def to_json(rows: Sequence[RegistrationRow]) -> str:
    return json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2)


def to_csv(rows: Sequence[RegistrationRow], dialect: str = "plain") -> str:
    """The participant list as CSV in ``dialect`` (see :data:`CSV_DIALECTS`; the command
    line defaults to ``excel-pl``, this function to ``plain`` for the scripts that call
    it). Statuses in Polish as in the XLSX; every field of the JSON; a remark once per
    registration. Write the text as UTF-8 bytes, unchanged (the mark and CRLF are in it)."""
    if dialect not in CSV_DIALECTS:
        raise ValueError(f"unknown CSV dialect {dialect!r}: choose {' or '.join(CSV_DIALECTS)}")
    excel = dialect == "excel-pl"
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter=";" if excel else ",", lineterminator="\r\n" if excel else "\n")
    writer.writerow([title for title, _ in CSV_COLUMNS])
    writer.writerows(["" if v is None else v for v in line] for line in _flat(rows, extra=True))
    return ("\ufeff" if excel else "") + buf.getvalue()


def _fit_columns(sheet: Worksheet) -> None:
    for idx, column in enumerate(sheet.iter_cols(values_only=True), 1):
        width = max((len(str(v)) for v in column if v is not None), default=8)
        sheet.column_dimensions[get_column_letter(idx)].width = min(60, max(8, width + 2))


_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDE6F0")
_DOUBT_FILL = PatternFill("solid", fgColor="FFF2A8")
_DOUBT_COLUMNS = {
    key: i + 1 for i, (_, key) in enumerate(COLUMNS) if key in ("full_name", "position", "phone", "email", "doubts")
}


def _sheet_titles(events: Sequence[str]) -> dict[str, str]:
    """Sheet names: the event key, cut to Excel's 31 characters, unique."""
    titles: dict[str, str] = {}
    for event in events:
        title = event[:31] or "uczestnicy"
        n = 2
        while title in titles.values():
            suffix = f"~{n}"
            title = event[: 31 - len(suffix)] + suffix
            n += 1
        titles[event] = title
    return titles


def _mark_doubts(sheet: Worksheet, row: int, person: PersonRow) -> None:
    """Yellow cells for what was read with doubt, so nobody copies it as sure."""
    if not person.doubts:
        return
    marked = {"doubts"}
    if person.email_check == "unconfirmed":
        marked.add("email")
    for note in person.doubts:
        for key, word in (("full_name", "imię"), ("position", "stanowisko"), ("phone", "telefon")):
            if note.startswith(word):
                marked.add(key)
    for key in marked:
        sheet.cell(row=row, column=_DOUBT_COLUMNS[key]).fill = _DOUBT_FILL


def to_xlsx(rows: Sequence[RegistrationRow], events: Sequence[str] | None = None) -> bytes:
    """One sheet per event, header row bold and frozen, filters on, columns sized to
    content, statuses in Polish.

    ``events`` names the sheets, in that order, an event without registrations getting
    an empty one (the digest always shows the organiser's event); rows of other events
    are left out. By default: every event that has rows, sorted."""
    wb = Workbook()
    if wb.active is not None:
        wb.remove(wb.active)
    chosen = list(dict.fromkeys(events)) if events is not None else sorted({r.event for r in rows})
    titles = _sheet_titles(chosen or ["uczestnicy"])
    for event, title in titles.items():
        sheet = wb.create_sheet(title=title)
        sheet.append([heading for heading, _ in COLUMNS])
        for cell in sheet[1]:
            cell.font = _HEADER_FONT
            cell.fill = _HEADER_FILL
            cell.alignment = Alignment(vertical="center")
        event_rows = [r for r in rows if r.event == event]
        people = [p for r in event_rows for p in (r.participants or [PersonRow(None, None, None, None, "")])]
        for line, person in zip(_flat(event_rows), people, strict=True):
            sheet.append(line)
            _mark_doubts(sheet, sheet.max_row, person)
        sheet.freeze_panes = "A2"
        sheet.auto_filter.ref = sheet.dimensions
        _fit_columns(sheet)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
