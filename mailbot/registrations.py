"""FormData → Registration: which event, new or corrected, confirmed or incomplete.

Rules, in the words organisers use:
- A form goes to the event its header names, else to the mailbox's default event.
- A form from the same sender for the same event that names at least one of the same
  people (e-mail or name) is a *correction*: it replaces the registration, and the old
  state is kept as a version. A form naming only new people is a new registration —
  we would rather list someone twice than drop them.
- A registration whose form still lacks required data is stored as ``incomplete`` and the
  sender is asked for a corrected form.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from sqlmodel import Session, col, select

from mailbot.forms.model import FormData, Problem
from mailbot.store.tables import (
    Participant,
    Registration,
    RegistrationVersion,
)

# Problems that do not stop a registration: informative ones, and ones the pipeline
# resolves itself (an unrecognised event falls back to the default event).
NON_BLOCKING_CODES = frozenset({"low_confidence"})
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud on the phone


@dataclass(frozen=True)
class Applied:
    """What applying one form did."""

    registration: Registration
    created: bool
    blocking_problems: tuple[Problem, ...]


def _fold(text: str | None) -> str:
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.replace("ł", "l").split())


def _people_keys(names_emails: Iterable[tuple[str | None, str | None]]) -> set[str]:
    keys: set[str] = set()
    for name, email in names_emails:
        if email:
            keys.add("e:" + email.casefold())
        if name:
            # "Nazwisko i imię" and "Imię i nazwisko" name the same person.
            keys.add("n:" + " ".join(sorted(_fold(name).split())))
    return keys


def blocking_problems(form: FormData, *, event_defaulted: bool) -> tuple[Problem, ...]:
    """Problems the participant must fix; an unknown event is not theirs to fix when a
    default event applies."""
    out = []
    for p in form.problems:
        if p.code in NON_BLOCKING_CODES:
            continue
        if p.field == "event" and event_defaulted:
            continue
        out.append(p)
    return tuple(out)


def make_code(event_key: str, seed: str, taken: set[str] | None = None) -> str:
    """A short, stable registration code like ``OPO-7K3F`` derived from ``seed``."""
    prefix = "".join(c for c in event_key.upper() if c.isalpha())[:3] or "REG"
    counter = 0
    while True:
        digest = hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        body = "".join(_CODE_ALPHABET[b % len(_CODE_ALPHABET)] for b in digest[:5])
        code = f"{prefix}-{body}"
        if not taken or code not in taken:
            return code
        counter += 1


def _snapshot(session: Session, reg: Registration) -> str:
    people = session.exec(
        select(Participant)
        .where(Participant.registration_id == reg.id)
        .order_by(col(Participant.position))
    ).all()
    data = reg.model_dump(mode="json")
    data["participants"] = [p.model_dump(mode="json", exclude={"id", "registration_id"}) for p in people]
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def find_correction_target(
    session: Session, *, event_key: str, sender: str | None, form: FormData
) -> Registration | None:
    """The registration this form corrects, if any (same sender, event, and people)."""
    if not sender:
        return None
    new_keys = _people_keys((p.full_name, p.email) for p in form.participants)
    candidates = session.exec(
        select(Registration)
        .where(
            Registration.event_key == event_key,
            col(Registration.sender_email) == sender.casefold(),
            Registration.status != "cancelled",
        )
        .order_by(col(Registration.id).desc())
    ).all()
    for reg in candidates:
        old = session.exec(select(Participant).where(Participant.registration_id == reg.id)).all()
        old_keys = _people_keys((p.full_name, p.email) for p in old)
        if new_keys & old_keys or (not new_keys and not old_keys):
            return reg
    return None


def apply_form(
    session: Session,
    form: FormData,
    *,
    event_key: str,
    event_defaulted: bool,
    sender: str | None,
    inbound_id: int,
    attachment_id: int | None,
    seed: str,
    now: dt.datetime,
) -> Applied:
    """Create or correct the registration for one parsed form (no commit here)."""
    blocking = blocking_problems(form, event_defaulted=event_defaulted)
    status = "incomplete" if blocking else "confirmed"
    inst = form.institution
    consents = form.consents
    fields = dict(
        event_key=event_key,
        status=status,
        institution_name=inst.name if inst else None,
        institution_address=inst.address if inst else None,
        institution_phone=inst.phone if inst else None,
        institution_email=inst.email if inst else None,
        workshops=",".join(sorted(form.workshops)),
        remarks=form.remarks,
        consent_data_processing=bool(consents and consents.data_processing),
        consent_newsletter=bool(consents and consents.newsletter),
        sender_email=sender.casefold() if sender else None,
        problems_json=json.dumps([asdict(p) for p in form.problems], ensure_ascii=False),
        source_inbound_id=inbound_id,
        source_attachment_id=attachment_id,
        updated_at=now,
    )
    target = find_correction_target(session, event_key=event_key, sender=sender, form=form)
    if target is not None:
        assert target.id is not None
        session.add(
            RegistrationVersion(
                registration_id=target.id,
                version=target.version,
                snapshot_json=_snapshot(session, target),
                replaced_by_inbound_id=inbound_id,
                replaced_at=now,
            )
        )
        for old in session.exec(select(Participant).where(Participant.registration_id == target.id)):
            session.delete(old)
        for key, value in fields.items():
            setattr(target, key, value)
        target.version += 1
        reg, created = target, False
    else:
        taken = set(session.exec(select(Registration.code)).all())
        reg = Registration(code=make_code(event_key, seed, taken), created_at=now, **fields)  # type: ignore[arg-type]
        created = True
    session.add(reg)
    session.flush()
    assert reg.id is not None
    for i, p in enumerate(form.participants):
        session.add(
            Participant(
                registration_id=reg.id,
                position=i,
                full_name=p.full_name,
                job_title=p.position,
                phone=p.phone,
                email=p.email,
            )
        )
    session.flush()
    return Applied(registration=reg, created=created, blocking_problems=blocking)


def participants_of(session: Session, registration_id: int) -> Sequence[Participant]:
    return session.exec(
        select(Participant)
        .where(Participant.registration_id == registration_id)
        .order_by(col(Participant.position))
    ).all()
