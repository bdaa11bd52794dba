"""Withdrawals by e-mail: whom a "rezygnuję" message takes off the list.

Acting on a withdrawal is irreversible for the participant (their seat goes to the next
person waiting), so every doubt becomes a question for a human: a message that could
mean several registrations, or none we know, goes to review instead of being guessed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from mailbot.intent import MAX_TEXT_CHARS, mentioned_names, strip_quoted
from mailbot.mime import ParsedMessage
from mailbot.registrations import people_keys, participants_of
from mailbot.store.tables import Participant, Registration

ACTIVE = ("confirmed", "incomplete", "late")
_SIGN_OFF = re.compile(
    r"^\s*(z\s+)?(pozdrawiam|pozdrowienia|serdecznie|powa[zż]aniem|wyrazami\s+szacunku|"
    r"dzi[eę]kuj[eę]|dzi[eę]kujemy|best\s+regards|kind\s+regards|regards)\b",
    re.IGNORECASE | re.MULTILINE,
)
_PRESENT = ("confirmed", "waitlisted", "late")


@dataclass(frozen=True)
class Withdrawal:
    registration: Registration
    people: tuple[Participant, ...]


@dataclass(frozen=True)
class Unclear:
    reason: str


def _without_sign_off(text: str) -> str:
    """The message up to its closing formula: the name under "Pozdrawiam" signs the
    message, it does not withdraw that person."""
    match = _SIGN_OFF.search(text)
    return text[: match.start()] if match else text


def _active_registrations_of(session: Session, address: str, open_keys: Sequence[str]) -> list[Registration]:
    key = address.casefold()
    by_sender = session.exec(
        select(Registration).where(
            Registration.sender_email == key,
            col(Registration.status).in_(ACTIVE),
            col(Registration.event_key).in_(open_keys),
        )
    ).all()
    by_person = session.exec(
        select(Registration)
        .join(Participant, col(Participant.registration_id) == col(Registration.id))
        .where(
            func.lower(col(Participant.email)) == key,
            col(Participant.status).in_(_PRESENT),
            col(Registration.status).in_(ACTIVE),
            col(Registration.event_key).in_(open_keys),
        )
    ).all()
    out: list[Registration] = []
    for reg in [*by_sender, *by_person]:
        if reg not in out:
            out.append(reg)
    return out


def plan(
    session: Session,
    parsed: ParsedMessage,
    *,
    linked: Sequence[Registration],
    form_people: Sequence[tuple[str | None, str | None]],
    open_keys: Sequence[str],
) -> list[Withdrawal] | Unclear:
    """Who this withdrawal takes off the list, or why a person has to decide.

    ``open_keys``: events not yet over — nobody withdraws from yesterday's conference.
    """
    sender = (parsed.from_addr or "").casefold()
    explicit = [r for r in linked if r.status in ACTIVE and r.event_key in open_keys]
    candidates = explicit or (_active_registrations_of(session, sender, open_keys) if sender else [])
    if not candidates:
        return Unclear(f"withdrawal from {sender or 'an unknown sender'}, but no open registration is linked to it")
    form_keys = people_keys(form_people)
    own_words = _without_sign_off(strip_quoted(parsed.text[:MAX_TEXT_CHARS]))
    named: list[Withdrawal] = []
    implied: list[Withdrawal] = []
    for reg in candidates:
        assert reg.id is not None
        present = [p for p in participants_of(session, reg.id) if p.status in _PRESENT]
        if not present:
            continue
        if form_keys:
            chosen = [p for p in present if people_keys([(p.full_name, p.email)]) & form_keys]
            if chosen:
                named.append(Withdrawal(reg, tuple(chosen)))
            continue
        names = [p.full_name for p in present if p.full_name]
        mentioned = set(mentioned_names(f"{parsed.subject}\n{own_words}", names))
        chosen = [p for p in present if p.full_name in mentioned]
        own = [p for p in present if (p.email or "").casefold() == sender]
        if chosen:
            named.append(Withdrawal(reg, tuple(chosen)))
        elif reg.sender_email == sender or (reg in explicit and not own):
            # Whoever registered the group, or someone answering for it by its code
            # (a colleague, the secretariat): the whole registration.
            implied.append(Withdrawal(reg, tuple(present)))
        elif own:
            # A participant speaks for themselves, even when answering our mail.
            implied.append(Withdrawal(reg, tuple(own)))
    if named:
        # Names settle it: "proszę wykreślić Jana Nowaka" from a secretary with two
        # registrations takes off Jan, not everyone on the other one.
        return named + [w for w in implied if w.registration in explicit and not form_keys]
    if not implied:
        return Unclear("withdrawal, but it names nobody on the linked registrations")
    if len(implied) > 1 and not explicit:
        codes = ", ".join(w.registration.code for w in implied)
        return Unclear(f"withdrawal from {sender} could mean any of {len(implied)} registrations ({codes})")
    return implied


def apply(session: Session, withdrawal: Withdrawal, now: dt.datetime) -> bool:
    """Cancel the people; the registration too when nobody is left. True if a seat freed."""
    reg = withdrawal.registration
    freed = False
    for person in withdrawal.people:
        freed = freed or person.status == "confirmed"
        person.status = "cancelled"
        person.status_changed_at = now
        session.add(person)
    session.flush()
    assert reg.id is not None
    if all(p.status == "cancelled" for p in participants_of(session, reg.id)):
        reg.status = "cancelled"
        reg.cancelled_at = now
    reg.updated_at = now
    session.add(reg)
    session.flush()
    return freed
