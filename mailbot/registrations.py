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
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlmodel import Session, col, select

from mailbot.forms.model import FormData, Problem
from mailbot.store.tables import (
    EMAIL_UNCONFIRMED,
    Participant,
    Registration,
    RegistrationVersion,
)

# Problems that do not stop a registration: informative ones, and ones the pipeline
# resolves itself (an unrecognised event falls back to the default event).
NON_BLOCKING_CODES = frozenset({"low_confidence"})
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud on the phone


@dataclass(frozen=True)
class Change:
    """One difference a corrected form made, worded for the participant."""

    field: str
    old: str
    new: str


@dataclass(frozen=True)
class PersonGone:
    """Someone a corrected form no longer lists."""

    full_name: str | None
    email: str | None
    status: str
    email_unconfirmed: bool = False
    """Their address was never confirmed: nothing of their own goes there."""


@dataclass(frozen=True)
class Applied:
    """What applying one form did."""

    registration: Registration
    created: bool
    blocking_problems: tuple[Problem, ...]
    added: tuple[Participant, ...] = ()
    """People new to this registration: they need a seat (or a place in the queue)."""
    removed: tuple[PersonGone, ...] = ()
    changes: tuple[Change, ...] = ()
    settled: tuple[Participant, ...] = ()
    """People already on the registration whose unconfirmed address this form settled
    (a new address, read without doubt): they are owed the mail they were not sent."""
    people: tuple[Participant, ...] = ()
    """Everyone the registration lists now, in form order (no need to read them back)."""


def _fold(text: str | None) -> str:
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.replace("ł", "l").split())


def people_keys(names_emails: Iterable[tuple[str | None, str | None]]) -> set[str]:
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


class _CodesInUse:
    """``code in taken`` as one lookup in the unique index on ``registration.code``:
    a collision is rare, so probing beats loading every code of every registration.
    Two processes picking the same new code at once is rarer still: the index refuses
    the second, whose message is tried again (:data:`mailbot.ingest.MAX_ATTEMPTS`) and
    then probes the committed code and takes the next candidate."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def __contains__(self, code: object) -> bool:
        return self._session.exec(select(Registration.id).where(Registration.code == code)).first() is not None


def make_code(event_key: str, seed: str, taken: Container[str] | None = None) -> str:
    """A short, stable registration code like ``OPO-7K3F`` derived from ``seed``, the
    first candidate not in ``taken``."""
    prefix = "".join(c for c in event_key.upper() if c.isalpha())[:3] or "REG"
    counter = 0
    while True:
        digest = hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        body = "".join(_CODE_ALPHABET[b % len(_CODE_ALPHABET)] for b in digest[:5])
        code = f"{prefix}-{body}"
        if not taken or code not in taken:
            return code
        counter += 1


UNCONFIRMED = EMAIL_UNCONFIRMED
SETTLED = ("confirmed", "corrected")


def same_address(a: str | None, b: str | None) -> bool:
    """Addresses compared case-blind (what people type and what servers accept)."""
    return bool(a and b) and a.strip().casefold() == (b or "").strip().casefold()  # type: ignore[union-attr]


def judge_email(
    person: Participant,
    previous: Participant | None,
    doubt: Problem | None,
    *,
    sender: str | None,
    settled_by: str,
    now: dt.datetime,
) -> bool:
    """Set ``person``'s address check from the form's ``doubt`` and what ``previous``
    (the same person on the registration before) had; True when this settles a doubt
    the registration had (the person is owed the mail they were not sent).

    - an address the reader doubts is ``unconfirmed`` — unless it is the sender's own
      address: the envelope shows it is right;
    - a settled address stays settled while the form gives it again, or brings back the
      very misreading that was settled (the same scan sent again);
    - an unconfirmed address stays so while a form gives it with the same doubt; given
      again without doubt (a typed form), or replaced by another address read without
      doubt, the form settles it.
    """
    if previous is not None and previous.email_check in SETTLED and person.email and (
        same_address(person.email, previous.email) or same_address(person.email, previous.email_as_read)
    ):
        person.email = previous.email
        _copy_check(person, previous, with_settlement=True)
        return False
    doubted = doubt is not None and bool(person.email) and not same_address(person.email, sender)
    if doubted:
        assert doubt is not None
        person.email_check = UNCONFIRMED
        person.email_as_read = person.email
        person.email_suggestion = doubt.suggestion
        person.email_doubt_note = doubt.message
        return False
    if previous is not None and previous.email_check == UNCONFIRMED and person.email:
        _copy_check(person, previous, with_settlement=False)
        person.email_check = "confirmed" if same_address(person.email, previous.email) else "corrected"
        person.email_settled_at = now
        person.email_settled_by = settled_by
        return True
    return False


def _copy_check(person: Participant, previous: Participant, *, with_settlement: bool) -> None:
    names = ["email_check", "email_as_read", "email_suggestion", "email_doubt_note"]
    if with_settlement:
        names += ["email_settled_at", "email_settled_by"]
    for name in names:
        setattr(person, name, getattr(previous, name))


def _snapshot(session: Session, reg: Registration) -> str:
    assert reg.id is not None
    return json.dumps(_state(reg, participants_of(session, reg.id)), ensure_ascii=False, sort_keys=True)


def _state(reg: Registration, people: Iterable[Participant]) -> dict[str, Any]:
    """The registration and its people as a version stores them."""
    data = reg.model_dump(mode="json")
    data["participants"] = [p.model_dump(mode="json", exclude={"id", "registration_id"}) for p in people]
    return data


def find_correction_target(
    session: Session, *, event_key: str, sender: str | None, form: FormData
) -> Registration | None:
    """The registration this form corrects, if any (same sender, event, and people)."""
    if not sender:
        return None
    new_keys = people_keys((p.full_name, p.email) for p in form.participants)
    candidates = session.exec(
        select(Registration)
        .where(
            Registration.event_key == event_key,
            col(Registration.sender_email) == sender.casefold(),
            col(Registration.status).in_(("confirmed", "incomplete", "late")),
        )
        .order_by(col(Registration.id).desc())
    ).all()
    if not candidates:
        return None
    people: dict[int | None, list[Participant]] = {r.id: [] for r in candidates}
    for p in session.exec(
        select(Participant).where(col(Participant.registration_id).in_([r.id for r in candidates]))
    ).all():
        people[p.registration_id].append(p)
    for reg in candidates:
        old_keys = people_keys((p.full_name, p.email) for p in people[reg.id])
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
    target: Registration | None = None,
    searched: bool = False,
    late: bool = False,
    settled_by: str = "form",
) -> Applied:
    """Create or correct the registration for one parsed form (no commit here).

    ``target`` is a registration the message is explicitly tied to (its code quoted, or
    a reply to our mail about it); otherwise the same-sender rule finds corrections —
    unless ``searched`` says the caller already did that and ``target`` is the answer.
    People who stay on a corrected form keep their seat and their place in the queue.
    An address the reader doubts is stored ``unconfirmed`` (see :func:`judge_email`);
    ``settled_by`` names what settles an earlier doubt when this form does.
    """
    blocking = blocking_problems(form, event_defaulted=event_defaulted)
    if not searched and (target is None or target.event_key != event_key or target.status == "cancelled"):
        target = find_correction_target(session, event_key=event_key, sender=sender, form=form)
    is_late = late or (target is not None and target.status == "late")
    status = "late" if is_late else "incomplete" if blocking else "confirmed"
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
        problems_json=json.dumps([asdict(p) for p in form.problems], ensure_ascii=False),
        source_inbound_id=inbound_id,
        source_attachment_id=attachment_id,
        updated_at=now,
    )
    old_people: list[Participant] = []
    before: dict[str, object] = {}
    if target is not None:
        assert target.id is not None
        old_people = list(participants_of(session, target.id))
        before = json.loads(json.dumps(_state(target, old_people), ensure_ascii=False, sort_keys=True))
        session.add(
            RegistrationVersion(
                registration_id=target.id,
                version=target.version,
                snapshot_json=json.dumps(before, ensure_ascii=False, sort_keys=True),
                replaced_by_inbound_id=inbound_id,
                replaced_at=now,
            )
        )
        for old in old_people:
            session.delete(old)
        for key, value in fields.items():
            setattr(target, key, value)
        target.version += 1
        reg, created = target, False
    else:
        reg = Registration(
            code=make_code(event_key, seed, _CodesInUse(session)),
            created_at=now,
            sender_email=sender.casefold() if sender else None,
            **fields,  # type: ignore[arg-type]
        )
        created = True
    session.add(reg)
    if reg.id is None:
        session.flush()  # a new registration: its people need its id
    assert reg.id is not None
    unmatched_old = list(old_people)
    added: list[Participant] = []
    settled: list[Participant] = []
    people: list[Participant] = []
    for i, p in enumerate(form.participants):
        keys = people_keys([(p.full_name, p.email)])
        previous = next(
            (o for o in unmatched_old if keys & people_keys([(o.full_name, o.email)])), None
        )
        person = Participant(
            registration_id=reg.id,
            position=i,
            full_name=p.full_name,
            job_title=p.position,
            phone=p.phone,
            email=p.email,
            status="late" if is_late else "confirmed",
            registered_at=now,
            status_changed_at=now,
            # One set of consents per form, given for everyone it lists.
            consent_data_processing=bool(consents and consents.data_processing),
            consent_newsletter=bool(consents and consents.newsletter),
        )
        if previous is not None:
            unmatched_old.remove(previous)
        if judge_email(person, previous, form.doubtful(f"participants[{i}].email"),
                       sender=sender, settled_by=settled_by, now=now):
            settled.append(person)
        if previous is not None and previous.status != "cancelled":
            if not is_late:
                person.status = previous.status
            person.registered_at = previous.registered_at
            person.status_changed_at = previous.status_changed_at
        elif not is_late:
            # New, or back after withdrawing: a seat or the queue, like anyone new.
            added.append(person)
        session.add(person)
        people.append(person)
    session.flush()  # one flush for the people, the version and the replaced rows
    removed = tuple(
        PersonGone(full_name=o.full_name, email=o.email, status=o.status,
                   email_unconfirmed=o.email_check == UNCONFIRMED)
        for o in unmatched_old
        if o.status != "cancelled"
    )
    changes = describe_changes(before, _state(reg, people)) if before else ()
    return Applied(
        registration=reg,
        created=created,
        blocking_problems=blocking,
        added=tuple(added),
        removed=removed,
        changes=changes,
        settled=tuple(p for p in settled if p not in added),
        people=tuple(people),
    )


_FIELD_LABELS = {
    "institution_name": "Nazwa instytucji",
    "institution_address": "Adres instytucji",
    "institution_phone": "Telefon instytucji",
    "institution_email": "E-mail instytucji",
    "workshops": "Warsztaty",
    "remarks": "Uwagi",
    "consent_data_processing": "Zgoda na przetwarzanie danych",
    "consent_newsletter": "Zgoda na informacje o kolejnych konferencjach",
}
_PERSON_LABELS = {
    "full_name": "imię i nazwisko",
    "job_title": "stanowisko",
    "phone": "telefon",
    "email": "e-mail",
}
_NONE = "—"


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "tak" if value else "nie"
    text = "" if value is None else str(value).strip()
    return text or _NONE


def describe_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[Change, ...]:
    """What a corrected form changed, in the words of the ``updated`` mail.

    People are matched by name or e-mail like corrections are, so a fixed phone number
    reads as a change of that person, not as one person removed and another added."""
    changes = [
        Change(label, _shown(before.get(key)), _shown(after.get(key)))
        for key, label in _FIELD_LABELS.items()
        if _shown(before.get(key)) != _shown(after.get(key))
    ]
    old_people = list(before.get("participants") or [])
    for person in after.get("participants") or []:
        keys = people_keys([(person.get("full_name"), person.get("email"))])
        match = next(
            (o for o in old_people if keys & people_keys([(o.get("full_name"), o.get("email"))])), None
        )
        name = _shown(person.get("full_name"))
        if match is None:
            changes.append(Change("Nowy uczestnik", _NONE, name))
            continue
        old_people.remove(match)
        for key, label in _PERSON_LABELS.items():
            if _shown(match.get(key)) != _shown(person.get(key)):
                changes.append(Change(f"{name}: {label}", _shown(match.get(key)), _shown(person.get(key))))
    for gone in old_people:
        changes.append(Change("Usunięty uczestnik", _shown(gone.get("full_name")), _NONE))
    return tuple(changes)


def participants_of(session: Session, registration_id: int) -> Sequence[Participant]:
    return session.exec(
        select(Participant)
        .where(Participant.registration_id == registration_id)
        .order_by(col(Participant.position))
    ).all()
