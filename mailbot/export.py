"""The participant list as organisers want it: CSV, XLSX (one sheet per event) or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from openpyxl import Workbook
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
    query = select(Registration).order_by(col(Registration.event_key), col(Registration.id))
    if event:
        query = query.where(Registration.event_key == event)
    rows = []
    for reg in session.exec(query).all():
        people = session.exec(
            select(Participant).where(Participant.registration_id == reg.id).order_by(col(Participant.position))
        ).all()
        source = session.get(InboundMessage, reg.source_inbound_id)
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
                participants=[PersonRow(p.full_name, p.job_title, p.phone, p.email, p.status) for p in people],
                workshops=[w for w in reg.workshops.split(",") if w],
                remarks=reg.remarks,
                consents={
                    "data_processing": reg.consent_data_processing,
                    "newsletter": reg.consent_newsletter,
                },
                sender=reg.sender_email,
                source_message_id=source.message_id if source else None,
                created_at=reg.created_at.isoformat(),
                updated_at=reg.updated_at.isoformat(),
                version=reg.version,
                problems=json.loads(reg.problems_json),
            )
        )
    return rows


SEAT_PL = {
    "confirmed": "potwierdzony",
    "waitlisted": "lista rezerwowa",
    "cancelled": "rezygnacja",
    "late": "po terminie",
}

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
)


def _flat(rows: Sequence[RegistrationRow]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for r in rows:
        people = r.participants or [PersonRow(None, None, None, None, "")]
        for i, p in enumerate(people, 1):
            out.append(
                [
                    r.event, r.code, r.status, r.institution["name"], i, p.full_name, p.position,
                    p.phone, p.email, SEAT_PL.get(p.status, p.status), ", ".join(r.workshops), r.remarks,
                    "tak" if r.consents["data_processing"] else "nie",
                    "tak" if r.consents["newsletter"] else "nie",
                    r.sender,
                ]
            )
    return out


def to_json(rows: Sequence[RegistrationRow]) -> str:
    return json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2)


def to_csv(rows: Sequence[RegistrationRow]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([title for title, _ in COLUMNS])
    writer.writerows(["" if v is None else v for v in line] for line in _flat(rows))
    return buf.getvalue()


def _fit_columns(sheet: Worksheet) -> None:
    for idx, column in enumerate(sheet.iter_cols(values_only=True), 1):
        width = max((len(str(v)) for v in column if v is not None), default=8)
        sheet.column_dimensions[get_column_letter(idx)].width = min(60, max(8, width + 2))


def to_xlsx(rows: Sequence[RegistrationRow]) -> bytes:
    """One sheet per event, header row frozen, filters on, columns sized to content."""
    wb = Workbook()
    wb.remove(wb.active)
    events = sorted({r.event for r in rows}) or ["uczestnicy"]
    for event in events:
        sheet = wb.create_sheet(title=event[:31])
        sheet.append([title for title, _ in COLUMNS])
        for line in _flat([r for r in rows if r.event == event]):
            sheet.append(line)
        sheet.freeze_panes = "A2"
        sheet.auto_filter.ref = sheet.dimensions
        _fit_columns(sheet)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
