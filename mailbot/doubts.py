"""Unconfirmed e-mail addresses: settling them, and the mail a participant is owed then.

An address the form reader doubted is stored ``unconfirmed`` (:func:`mailbot.registrations.judge_email`)
and gets no mail of its own (:func:`mailbot.replies.mail_address`). It is settled by:

- a reply tied to the registration (its code quoted, or answering our mail) that
  confirms it or gives another address (:func:`mailbot.address_replies.read_address_reply`);
- a message *from* that very address (not an automatic one): the envelope shows it
  exists and is read — and from the address we suggested, when tied to the registration;
- a corrected form giving it without doubt, or another address;
- an admin (``mailbot review confirm`` / ``review fix``).

Then the participant gets the first mail of their own (``ack`` or ``waitlist``, under
the dedupe key of a first mail to that address, so nothing goes twice). A correction
changes the registration, so it is kept as a new version like a corrected form.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, LargeBinary, cast, func, or_
from sqlmodel import Session, col, select

from mailbot.address_replies import AddressAnswer, Doubt, read_address_reply
from mailbot.config import Settings
from mailbot.mime import ParsedMessage
from mailbot.registrations import UNCONFIRMED, _snapshot, participants_of, same_address
from mailbot.replies import Answering, Mailer, Queued, addresses_settled, norm_address, welcome_settled
from mailbot.store.tables import Participant, Registration, RegistrationVersion

OPEN = ("confirmed", "incomplete", "late")
"""Registration states whose doubts still matter (not a withdrawn registration)."""


@dataclass
class Settled:
    """What settling did: ``done`` lines for the ledger's reason, per registration the
    people whose address is now certain."""

    done: list[str] = field(default_factory=list)
    people: dict[int, list[Participant]] = field(default_factory=dict)
    changes: dict[int, list[dict[str, str]]] = field(default_factory=dict)

    def add(self, reg: Registration, person: Participant, line: str, change: dict[str, str] | None) -> None:
        assert reg.id is not None
        self.people.setdefault(reg.id, []).append(person)
        if change is not None:
            self.changes.setdefault(reg.id, []).append(change)
        self.done.append(f"{line} on {reg.code}")


def unconfirmed(session: Session, regs: Iterable[Registration]) -> list[tuple[Registration, Participant]]:
    """The unconfirmed addresses of ``regs`` (open registrations, people not withdrawn)."""
    out: list[tuple[Registration, Participant]] = []
    for reg in regs:
        if reg.status not in OPEN or reg.id is None:
            continue
        out.extend(unconfirmed_on(reg, participants_of(session, reg.id)))
    return out


def unconfirmed_on(reg: Registration, people: Iterable[Participant]) -> list[tuple[Registration, Participant]]:
    """:func:`unconfirmed` for one registration whose people are in hand (a form just
    applied): nothing read back from the database."""
    if reg.status not in OPEN:
        return []
    return [(reg, p) for p in people if p.email_check == UNCONFIRMED and p.status != "cancelled"]


def settle(
    session: Session,
    reg: Registration,
    person: Participant,
    address: str,
    *,
    by: str,
    inbound_id: int,
    now: dt.datetime,
) -> dict[str, str] | None:
    """Settle ``person``'s address as ``address``: confirmed when it is the one read,
    corrected otherwise (the registration's previous state kept as a version). Returns
    the change, worded like a corrected form's, or None for a confirmation."""
    assert reg.id is not None
    change = None
    if same_address(address, person.email):
        person.email_check = "confirmed"
    else:
        session.add(
            RegistrationVersion(
                registration_id=reg.id,
                version=reg.version,
                snapshot_json=_snapshot(session, reg),
                replaced_by_inbound_id=inbound_id,
                replaced_at=now,
            )
        )
        change = {"field": f"{person.full_name or '(bez nazwiska)'}: e-mail", "old": person.email or "—", "new": address}
        person.email = address
        person.email_check = "corrected"
        reg.version += 1
        reg.updated_at = now
        session.add(reg)
    person.email_settled_at = now
    person.email_settled_by = by[:300]
    session.add(person)
    session.flush()
    return change


def by_envelope(
    session: Session, parsed: ParsedMessage, linked: Sequence[Registration], *, ref: str, inbound_id: int,
    now: dt.datetime,
) -> Settled:
    """A person's (not automatic) message settles the doubt about its own From address:
    it exists and is read. From the address we suggested instead, it settles the doubt
    of a registration the message is tied to."""
    result = Settled()
    sender = norm_address(parsed.from_addr)
    if not sender:
        return result
    linked_ids = {r.id for r in linked}
    query = (
        select(Registration, Participant)
        .join(Participant, col(Participant.registration_id) == col(Registration.id))
        .where(Participant.email_check == UNCONFIRMED, col(Registration.status).in_(OPEN))
        .order_by(col(Registration.id), col(Participant.position))
    )
    narrow = _may_match(session, sender, linked_ids)
    candidates = session.exec(query if narrow is None else query.where(narrow)).all()
    for reg, person in candidates:
        if person.status == "cancelled":
            continue
        if same_address(person.email, sender) or (
            reg.id in linked_ids and same_address(person.email_suggestion, sender)
        ):
            change = settle(session, reg, person, sender, by=f"from {ref}", inbound_id=inbound_id, now=now)
            what = "corrected" if change else "confirmed"
            result.add(reg, person, f"{what} the e-mail of {person.full_name or '(no name)'} by its own message", change)
    return result


def _may_match(session: Session, sender: str, linked_ids: Collection[int | None]) -> ColumnElement[bool] | None:
    """A filter keeping every unconfirmed person ``sender`` may settle (and a few
    more; :func:`by_envelope` still judges each), so the doubts of all past events are
    not read for every message. None when no such filter is sure (a non-ASCII sender,
    an unknown database): then all are read, as before.

    An ASCII address equals ``sender`` case- and space-blind only if its lower case
    contains it; an address with other characters (``casefold`` can map them to
    ASCII) is always kept."""
    if not sender.isascii():
        return None
    email = col(Participant.email)
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        non_ascii = func.length(email) != func.length(cast(email, LargeBinary))
    elif dialect == "postgresql":
        non_ascii = func.octet_length(email) != func.length(email)
    else:
        return None
    ids = [i for i in linked_ids if i is not None]
    return or_(
        func.lower(email).contains(sender, autoescape=True),
        non_ascii,
        *([col(Registration.id).in_(ids)] if ids else []),
    )


@dataclass(frozen=True)
class ReplyOutcome:
    answer: AddressAnswer
    settled: Settled
    regs: tuple[Registration, ...]


def by_reply(
    session: Session,
    settings: Settings,
    parsed: ParsedMessage,
    linked: Sequence[Registration],
    *,
    ref: str,
    inbound_id: int,
    now: dt.datetime,
) -> ReplyOutcome | None:
    """Read a reply tied to registrations with unconfirmed addresses; settle what it
    clearly says. None when the registrations it is tied to have no doubt left."""
    pending = unconfirmed(session, linked)
    if not pending:
        return None
    regs = tuple({r.id: r for r, _ in pending}.values())
    ignore: set[str] = set(settings.replying_as)
    for addr in (parsed.from_addr, parsed.reply_to):
        if addr:
            ignore.add(addr)
    for reg in regs:
        assert reg.id is not None
        ignore.update(a for a in (reg.sender_email, reg.institution_email) if a)
        ignore.update(
            p.email for p in participants_of(session, reg.id) if p.email and p.email_check != UNCONFIRMED
        )
    # One doubt per address: the same misreading on two registrations is one question.
    doubts = [
        Doubt(key=person.id or 0, full_name=person.full_name, as_read=person.email or "", suggestion=person.email_suggestion)
        for _, person in pending
    ]
    answer = read_address_reply(parsed.text, doubts, ignore=ignore)
    settled = Settled()
    if answer.kind == "settle":
        by_id = {p.id: (r, p) for r, p in pending}
        for s in answer.settlements:
            reg, person = by_id[s.key]
            change = settle(session, reg, person, s.address, by=f"reply {ref}", inbound_id=inbound_id, now=now)
            what = "corrected" if change else "confirmed"
            settled.add(reg, person, f"{what} the e-mail of {person.full_name or '(no name)'} ({answer.reason})", change)
    return ReplyOutcome(answer, settled, regs)


def queue_settled(
    session: Session,
    mailer: Mailer,
    settled: Settled,
    *,
    answering: Answering | None,
    reply_to: str | None,
    tell_sender: bool,
    now: dt.datetime,
    out: Queued,
) -> list[str]:
    """The mails settling owes: each person their first mail at the settled address;
    with ``tell_sender``, whoever answered our question the addresses now used.
    Returns notes on what was not sent (an event not configured or already held)."""
    notes: list[str] = []
    today = now.astimezone(mailer.settings.tz).date()
    for reg_id, people in settled.people.items():
        reg = session.get(Registration, reg_id)
        assert reg is not None
        try:
            event = mailer.settings.event(reg.event_key)
        except KeyError:
            notes.append(f"{reg.code}: event {reg.event_key} is not configured; no mail")
            continue
        if today > event.date:
            notes.append(f"{reg.code}: {event.key} took place on {event.date.isoformat()}; no mail")
            continue
        welcome_settled(session, mailer, reg, people, event, answering=answering, now=now, out=out)
        if tell_sender and answering is not None:
            addresses_settled(
                session, mailer, reg, people, event, answering=answering, reply_to=reply_to,
                changes=settled.changes.get(reg_id, []), now=now, out=out,
            )
    return notes
