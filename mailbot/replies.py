"""Who gets which mail about a registration, and the context its template sees.

Rules, in the words organisers use:
- everyone on a form who gave an e-mail address gets one mail about *their* place; the
  sender gets one mail listing everyone on the form (a sender who is also a participant
  gets just that one);
- an address the form reader doubted (``unconfirmed``) gets no mail of its own until it
  is confirmed: that person is reached through whoever registered them, like a person
  without an address, and the sender's mail asks them to confirm or correct it;
- mails about a seat (ack, promoted, reminder, changed) carry a calendar entry — but
  only to the address of someone who holds a seat: a registrant who merely registered
  colleagues gets no entry of their own (and no "Potwierdzamy udział"). The UID is
  stable per address and event and each file to an address has a higher SEQUENCE than
  the last (``calendar_sequence``), so a later change replaces the entry;
- a withdrawal (``cancelled``) carries the cancellation (METHOD:CANCEL) of the entry the
  address holds, if it holds one and has no seat left in the event;
- only configured facts are stated: an end time only when ``end_time`` is set, the
  organiser's name, phone, e-mail and data-controller line only where configured;
- every mail has a dedupe key naming what it is about, so reprocessing, a crash or a
  second run never sends it twice.

Rendering and queueing happen here; sending is :mod:`mailbot.outbox`'s job.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import functools
import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from mailbot.address_replies import CONFIRM_SENTENCE
from mailbot.calendar import (
    CANCEL,
    PUBLISH,
    calendar_file,
    entry_description,
    event_uid,
    make_ics,
    organizer,
)
from mailbot.config import DEFAULT_WORKSHOPS, EventSettings, Settings
from mailbot.loopguard import safe_to_reply
from mailbot.mime import ParsedMessage
from mailbot.outbox import FileAttachment, ReplyTo, Sender, compose, compose_raw, enqueue, replies_today
from mailbot.registrations import UNCONFIRMED, Applied, participants_of
from mailbot.seats import HOLDING, waitlist_position
from mailbot.store.tables import (
    AddressStatus,
    CalendarSequence,
    EventState,
    InboundMessage,
    OutboundMail,
    Participant,
    Registration,
)
from mailbot.templating import Templates

log = logging.getLogger(__name__)

WORKSHOP_NAMES: dict[str, str] = {w.key: w.title for w in DEFAULT_WORKSHOPS}
"""The default workshop titles; a mail names its event's (:func:`workshop_names`)."""
CALENDAR_KINDS = frozenset({"ack", "promoted", "reminder", "changed"})
_UPSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


@dataclass(frozen=True)
class Answering:
    """The inbound message a mail answers: threading headers, ref, the daily cap."""

    inbound: InboundMessage
    parsed: ParsedMessage


def organiser_context(event: EventSettings) -> dict[str, str]:
    """``event.organiser`` of the templates: each field the configured text, or empty
    (a template prints a line only for what is set — nothing is made up)."""
    org = event.organiser
    return {
        "name": org.name or "",
        "phone": org.phone or "",
        "email": org.email or "",
        "data_controller": org.data_controller or "",
    }


def workshop_names(event: EventSettings) -> dict[str, str]:
    """``workshop_names`` of the templates: the event's workshop letters → titles, as
    configured (``workshops``)."""
    return dict(event.workshop_titles)


def workshops_context(event: EventSettings) -> list[dict[str, object]]:
    """``event.workshops`` of the templates: key, title and capacity (None: not set)."""
    return [{"key": w.key, "title": w.title, "capacity": w.capacity} for w in event.workshop_options]


def event_context(event: EventSettings) -> dict[str, object]:
    """``event`` of the templates. ``end_time`` is the configured one or None: a mail
    states an end only when the organisers gave one (the calendar file's DTEND falls
    back to ``calendar_default_hours``, the mail text never does)."""
    return {
        "key": event.key,
        "title": event.title,
        "city": event.city,
        "date": event.date,
        "start_time": event.start_time,
        "end_time": event.end_time,
        "venue": event.venue,
        "address": event.address,
        "deadline": event.deadline,
        "organiser": organiser_context(event),
        "workshops": workshops_context(event),
        "fee_line": event.fee_text,
    }


def person_view(session: Session, person: Participant, event_key: str) -> dict[str, object]:
    return {
        "full_name": person.full_name,
        "job_title": person.job_title,
        "email": person.email,
        "email_unconfirmed": person.email_check == UNCONFIRMED,
        "status": person.status,
        "waitlist_position": waitlist_position(session, person, event_key),
    }


def unconfirmed_view(people: Iterable[Participant]) -> list[dict[str, object]]:
    """The ``unconfirmed_emails`` of a mail to whoever registered ``people``: each
    address we read with doubt, and the reader's suggestion ("czy chodziło o …?")."""
    return [
        {"full_name": p.full_name, "email": p.email, "suggestion": p.email_suggestion}
        for p in people
        if p.email_check == UNCONFIRMED and p.email and p.status != "cancelled"
    ]


def registration_view(
    session: Session, reg: Registration, only: Iterable[Participant] | None = None
) -> dict[str, object]:
    assert reg.id is not None
    people = participants_of(session, reg.id)
    if only is not None:
        wanted = {p.id for p in only}
        people = [p for p in people if p.id in wanted]
    return {
        "code": reg.code,
        "institution": reg.institution_name,
        "workshops": [w for w in reg.workshops.split(",") if w],
        "status": reg.status,
        "participants": [person_view(session, p, reg.event_key) for p in people],
    }


def norm_address(address: str | None) -> str | None:
    return address.strip().casefold() if address and address.strip() else None


def mail_address(person: Participant) -> str | None:
    """The address a mail of the person's own may go to: none while it is unconfirmed
    (a misread address would bounce, or reach a stranger)."""
    return None if person.email_check == UNCONFIRMED else norm_address(person.email)


def addressed(
    people: Sequence[Participant], overseers: Iterable[str | None], own: Sequence[str]
) -> dict[str, list[Participant]]:
    """Address → the people a mail to it is about: each person's own address covers
    them (not an unconfirmed one), each overseer (whoever registered them, whoever
    asked) covers everyone."""
    out: dict[str, list[Participant]] = {}
    for person in people:
        addr = mail_address(person)
        if addr and safe_to_reply(addr, own):
            out.setdefault(addr, []).append(person)
    for overseer in overseers:
        addr = norm_address(overseer)
        if addr and safe_to_reply(addr, own):
            out[addr] = list(people)
    return out


def recipients(
    session: Session, reg: Registration, sender: str | None, own: Sequence[str]
) -> dict[str, list[Participant]]:
    """Address → the people a mail about ``reg`` is about. The sender's mail covers everyone."""
    assert reg.id is not None
    return addressed(participants_of(session, reg.id), [sender], own)


def next_calendar_sequence(
    session: Session, event_key: str, address: str, method: str, now: dt.datetime
) -> int:
    """Take the SEQUENCE of the next calendar file to ``address`` for the event and
    record it (with its METHOD), in the caller's transaction: it is kept only if the mail
    is queued. One more than the last file to that address; for an address with no row
    yet, one more than the event's announced SEQUENCE, which every file sent before
    this table existed carried at most — so a client always takes the new file as newer.
    One INSERT … ON CONFLICT DO UPDATE … RETURNING on SQLite and PostgreSQL: it locks
    the address's row, so two processes cannot hand out one number (nor both insert it).
    """
    addr = address.strip().casefold()
    statement = _sequence_upsert(session.get_bind().dialect.name)
    values = {"event_key": event_key, "address": addr, "method": method, "updated_at": now}
    sequence = int(session.execute(statement, values).scalar_one())
    loaded = session.identity_map.get(session.identity_key(CalendarSequence, (event_key, addr)))
    if loaded is not None:  # an object this session read before: it must not go stale
        session.expire(loaded)
    return sequence


@functools.cache
def _sequence_upsert(dialect: str) -> Any:
    """The statement of :func:`next_calendar_sequence`, built once per dialect (building
    it cost more than running it). The store is SQLite or PostgreSQL, both with upserts."""
    table = CalendarSequence.__table__  # type: ignore[attr-defined]
    state = EventState.__table__  # type: ignore[attr-defined]
    announced = (
        sa_select(func.coalesce(func.max(state.c.sequence), 0) + 1)
        .where(state.c.event_key == bindparam("event_key"))
        .scalar_subquery()
    )
    insert: Any = _UPSERTS[dialect](table).values(
        event_key=bindparam("event_key"), address=bindparam("address"), sequence=announced,
        method=bindparam("method"), updated_at=bindparam("updated_at", type_=table.c.updated_at.type),
    )  # fmt: skip
    return insert.on_conflict_do_update(
        index_elements=[table.c.event_key, table.c.address],
        set_={
            "sequence": table.c.sequence + 1,
            "method": insert.excluded.method,
            "updated_at": insert.excluded.updated_at,
        },
    ).returning(table.c.sequence)


def holds_calendar_entry(session: Session, event_key: str, address: str) -> bool:
    """Whether the last calendar file sent to ``address`` for the event added an entry
    (PUBLISH) that no cancellation has removed since."""
    row = session.get(CalendarSequence, (event_key, address.strip().casefold()))
    return row is not None and row.method == PUBLISH


def _seated_with_own_address(event_key: str, address: str) -> tuple[Any, ...]:
    """The conditions for a person who holds a seat in the event under ``address`` as
    their own, confirmed address."""
    return (
        Registration.event_key == event_key,
        col(Registration.status).in_(HOLDING),
        Participant.status == "confirmed",
        col(Participant.email_check).is_distinct_from(UNCONFIRMED),
        func.lower(func.trim(col(Participant.email))) == address.strip().casefold(),
    )


def has_seat(session: Session, event_key: str, address: str) -> bool:
    """Whether someone with this (confirmed) address of their own still holds a seat in
    the event: their entry stays, whoever else withdrew."""
    query = (
        select(Participant.id)
        .join(Registration, col(Participant.registration_id) == col(Registration.id))
        .where(*_seated_with_own_address(event_key, address))
    )
    return session.exec(query).first() is not None


def seat_holders(session: Session, event_key: str, address: str) -> list[str]:
    """The names of the people with a seat in the event whose own (confirmed) address
    this is — as :func:`has_seat`, for the salutation of a mail about someone else."""
    query = (
        select(Participant.full_name)
        .join(Registration, col(Participant.registration_id) == col(Registration.id))
        .where(*_seated_with_own_address(event_key, address))
    )
    return sorted({name.strip() for name in session.exec(query) if name and name.strip()})


def is_bouncing(session: Session, address: str) -> bool:
    state = session.get(AddressStatus, address.casefold())
    return bool(state and state.bouncing)


@dataclass(frozen=True)
class Mailer:
    """Renders a template for one address and queues it, once per dedupe key."""

    settings: Settings
    templates: Templates
    blank_form: Callable[[EventSettings], FileAttachment]

    def base_context(self, event: EventSettings, kind: str) -> dict[str, Any]:
        return {
            "kind": kind,
            "event": event_context(event),
            "signature": self.settings.signature,
            "organiser_email": self.settings.outbox.from_address,
            "recipient_attends": False,
            "recipient_keeps_seat": False,
            "recipient_person": None,
            "original_subject": None,
            "recipient_name": None,
            "code": None,
            "registrations": [],
            "people": [],
            "problems": [],
            "unreadable": [],
            "blank_form_returned": False,
            "attachment_name": "",
            "calendar_attached": False,
            "changes": [],
            "days_before": None,
            "closed_reason": None,
            "workshop_names": workshop_names(event),
            "unconfirmed_emails": [],
            "confirmed_emails": [],
            "confirm_sentence": CONFIRM_SENTENCE,
            "question": None,
            "open_events": [],
        }

    def calendar(
        self,
        session: Session,
        event: EventSettings,
        address: str,
        now: dt.datetime,
        *,
        cancelled: bool = False,
        attendee_name: str | None = None,
    ) -> FileAttachment:
        """The calendar file for ``address``: its own UID, the next SEQUENCE for it
        (recorded), PUBLISH for a seat or CANCEL for a withdrawal."""
        outbox = self.settings.outbox
        domain = outbox.from_address.rpartition("@")[2] or "mailbot.invalid"
        org_email, org_name = organizer(
            event, fallback_email=outbox.from_address, fallback_name=outbox.from_name
        )
        sequence = next_calendar_sequence(
            session, event.key, address, CANCEL if cancelled else PUBLISH, now
        )
        ics = make_ics(
            event,
            tz=self.settings.tz,
            uid=event_uid(event.key, address, domain),
            sequence=sequence,
            stamp=now,
            organiser_email=org_email,
            organiser_name=org_name,
            description=entry_description(event),
            cancelled=cancelled,
            attendee_email=address if cancelled else None,
            attendee_name=attendee_name,
            default_hours=self.settings.calendar_default_hours,
        )
        f = calendar_file(ics, event.key, cancelled=cancelled)
        return FileAttachment(f.filename, f.content_type, f.data)

    def queue(
        self,
        session: Session,
        *,
        kind: str,
        event: EventSettings,
        to: str,
        now: dt.datetime,
        dedupe: str,
        context: Mapping[str, Any] | None = None,
        to_name: str | None = None,
        answering: Answering | None = None,
        registration_id: int | None = None,
        attach_blank: bool = False,
        extra_attachments: Sequence[FileAttachment] = (),
    ) -> OutboundMail | None:
        """Queue one mail; None when it already exists (same dedupe key)."""
        if session.exec(select(OutboundMail.id).where(OutboundMail.dedupe_key == dedupe)).first():
            return None
        attachments: list[FileAttachment] = []
        if attach_blank:
            attachments.append(self.blank_form(event))
        full = self.base_context(event, kind)
        full.update(context or {})
        full["recipient_attends"] = _attends(full, to)
        full["recipient_person"] = _owner(full, to)
        if kind == "cancelled":  # a registrant who withdrew a colleague but still comes
            full["recipient_keeps_seat"] = has_seat(session, event.key, to)
            holders = seat_holders(session, event.key, to)
            if full["recipient_person"] is None and len(holders) == 1:
                full["recipient_person"] = holders[0]
        if kind in CALENDAR_KINDS and full["recipient_attends"]:
            attachments.append(self.calendar(session, event, to, now))
            full["calendar_attached"] = True
        elif (
            kind == "cancelled"
            and holds_calendar_entry(session, event.key, to)
            and not has_seat(session, event.key, to)
        ):
            attachments.append(
                self.calendar(session, event, to, now, cancelled=True, attendee_name=to_name)
            )
            full["calendar_attached"] = True
        full["attachment_name"] = attachments[0].filename if attach_blank else ""
        attachments.extend(extra_attachments)
        full["recipient_name"] = to_name
        ref = answering.inbound.ref if answering else dedupe_ref(dedupe)
        if answering is not None:
            full["original_subject"] = answering.parsed.subject or "(bez tematu)"
        rendered = self.templates.render(kind, full)
        threading = None
        if answering is not None and norm_address(answering.parsed.from_addr) == to.casefold():
            threading = ReplyTo(answering.parsed.message_id, answering.parsed.references)
        message = compose_raw(
            sender=Sender(self.settings.outbox.from_address, self.settings.outbox.from_name),
            to=to,
            to_name=to_name,
            rendered=rendered,
            kind=kind,
            dedupe_key=dedupe,
            ref=ref,
            now=now,
            reply_to=threading,
            attachments=attachments,
        )
        return enqueue(
            session,
            message=message,
            kind=kind,
            dedupe_key=dedupe,
            to=to,
            bcc=self.settings.outbox.bcc,
            now=now,
            inbound_id=answering.inbound.id if answering else None,
            registration_id=registration_id,
            known_new=True,  # looked for above, in this transaction
        )

    def over_daily_cap(self, session: Session, address: str, now: dt.datetime) -> bool:
        """The loop guard of last resort: no address gets more than the configured number
        of automatic answers a day, whatever it keeps sending us."""
        return replies_today(session, address, now) >= self.settings.outbox.max_replies_per_address_per_day


def _attends(context: Mapping[str, Any], to: str) -> bool:
    """Whether the addressee holds a seat themselves: one of the people the mail is about
    is confirmed and ``to`` is their own (confirmed) address. Only such an address gets
    a calendar entry and the "Potwierdzamy udział" wording: not the waiting list, and not
    a registrant who only registered colleagues (the entry would sit in the wrong
    calendar, under a UID nobody attends with)."""
    people = list(context.get("people") or []) + [
        p for r in context.get("registrations") or [] for p in r["participants"]
    ]
    addr = to.strip().casefold()
    return any(
        p.get("status") == "confirmed"
        and not p.get("email_unconfirmed")
        and norm_address(p.get("email")) == addr
        for p in people
    )


def _owner(context: Mapping[str, Any], to: str) -> str | None:
    """The name on the form of the one person whose own (confirmed) address ``to`` is,
    for the salutation; None for an address shared or not a participant's own."""
    people = list(context.get("people") or []) + [
        p for r in context.get("registrations") or [] for p in r["participants"]
    ]
    addr = to.strip().casefold()
    found = {
        str(p["full_name"]).strip()
        for p in people
        if p.get("full_name") and not p.get("email_unconfirmed") and norm_address(p.get("email")) == addr
    }
    return found.pop() if len(found) == 1 else None


def dedupe_ref(dedupe: str) -> str:
    """The X-Mailbot-Ref of a mail that answers no message (reminder, changed…)."""
    return hashlib.sha256(dedupe.encode()).hexdigest()[:10]


# --- who gets what -----------------------------------------------------------------


@dataclass
class Queued:
    """The mails one step queued, as "kind → address" lines for the ledger's reason."""

    queued: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, row: OutboundMail | None, kind: str, to: str) -> None:
        if row is not None:
            self.queued.append(f"{kind} → {to}")


def _answer_allowed(
    mailer: Mailer, session: Session, out: Queued, kind: str, to: str, now: dt.datetime
) -> bool:
    if mailer.over_daily_cap(session, to, now):
        out.skipped.append(
            f"no {kind} to {to}: already {mailer.settings.outbox.max_replies_per_address_per_day} "
            "automatic mails today"
        )
        return False
    return True


def welcome(
    session: Session,
    mailer: Mailer,
    reg: Registration,
    event: EventSettings,
    *,
    answering: Answering | None,
    reply_to: str | None,
    problems: Sequence[str],
    now: dt.datetime,
    out: Queued,
    only_new: Iterable[Participant] | None = None,
) -> None:
    """The first mail about a registration to each address: ack, waitlist or, for the
    sender of an incomplete form, incomplete. ``only_new`` limits it to the people a
    correction added (the others were welcomed before: same dedupe key)."""
    assert reg.id is not None
    own = mailer.settings.replying_as
    targets = recipients(session, reg, reply_to, own)
    new_ids = {p.id for p in only_new} if only_new is not None else None
    sender = norm_address(reply_to)
    for addr, people in targets.items():
        is_sender = addr == sender
        if new_ids is not None and not (is_sender or any(p.id in new_ids for p in people)):
            continue
        if is_sender and reg.status == "incomplete":
            kind = "incomplete"
        elif all(p.status == "waitlisted" for p in people):
            kind = "waitlist"
        else:
            kind = "ack"
        if answering is not None and not _answer_allowed(mailer, session, out, kind, addr, now):
            continue
        view = registration_view(session, reg, None if is_sender else people)
        row = mailer.queue(
            session,
            kind=kind,
            event=event,
            to=addr,
            now=now,
            dedupe=(
                f"first:{reg.code}:{addr}" if new_ids is None else f"added:{reg.code}:v{reg.version}:{addr}"
            ),
            context={
                "code": reg.code,
                "registrations": [view],
                "people": view["participants"],
                "problems": list(problems) if is_sender else [],
                "unconfirmed_emails": unconfirmed_view(people) if is_sender else [],
            },
            to_name=display_name(answering, addr, people),
            answering=answering,
            registration_id=reg.id,
        )
        out.add(row, kind, addr)


def corrected(
    session: Session,
    mailer: Mailer,
    applied: Applied,
    event: EventSettings,
    *,
    answering: Answering,
    reply_to: str | None,
    problems: Sequence[str],
    now: dt.datetime,
    out: Queued,
) -> None:
    """A corrected form: the sender sees what changed (or what is still missing); people
    it adds are welcomed; people it drops are told they are off the list."""
    reg = applied.registration
    assert reg.id is not None
    sender = norm_address(reply_to)
    if sender and safe_to_reply(sender, mailer.settings.replying_as):
        kind = "incomplete" if reg.status == "incomplete" else "updated"
        if _answer_allowed(mailer, session, out, kind, sender, now):
            view = registration_view(session, reg)
            row = mailer.queue(
                session,
                kind=kind,
                event=event,
                to=sender,
                now=now,
                dedupe=f"updated:{reg.code}:v{reg.version}:{sender}",
                context={
                    "code": reg.code,
                    "registrations": [view],
                    "people": view["participants"],
                    "problems": list(problems),
                    "changes": [
                        {"field": c.field, "old": c.old, "new": c.new} for c in applied.changes
                    ],
                    "unconfirmed_emails": unconfirmed_view(participants_of(session, reg.id)),
                },
                to_name=display_name(answering, sender, []),
                answering=answering,
                registration_id=reg.id,
            )
            out.add(row, kind, sender)
    if applied.added:
        welcome(
            session, mailer, reg, event,
            answering=answering, reply_to=None, problems=(), now=now, out=out,
            only_new=applied.added,
        )
    if applied.settled:
        welcome_settled(session, mailer, reg, applied.settled, event, answering=answering, now=now, out=out)
    for gone in applied.removed:
        addr = None if gone.email_unconfirmed else norm_address(gone.email)
        if not addr or addr == sender or not safe_to_reply(addr, mailer.settings.replying_as):
            continue
        person = {"full_name": gone.full_name, "status": "cancelled", "waitlist_position": None}
        row = mailer.queue(
            session,
            kind="cancelled",
            event=event,
            to=addr,
            now=now,
            dedupe=f"removed:{reg.code}:v{reg.version}:{addr}",
            context={"code": reg.code, "people": [person]},
            to_name=gone.full_name,
            registration_id=reg.id,
        )
        out.add(row, "cancelled", addr)


def welcome_settled(
    session: Session,
    mailer: Mailer,
    reg: Registration,
    people: Iterable[Participant],
    event: EventSettings,
    *,
    answering: Answering | None,
    now: dt.datetime,
    out: Queued,
) -> None:
    """The first mail of their own to people whose doubtful address was just settled:
    ``ack`` or ``waitlist``, under the dedupe key of the first mail about the
    registration to that address (so an address that already had it — the sender's own
    — gets nothing twice). Nobody hears anything on a registration not holding seats."""
    assert reg.id is not None
    if reg.status not in HOLDING:
        return
    own = mailer.settings.replying_as
    for person in people:
        addr = mail_address(person)
        if not addr or not safe_to_reply(addr, own) or person.status not in ("confirmed", "waitlisted"):
            continue
        kind = "waitlist" if person.status == "waitlisted" else "ack"
        view = registration_view(session, reg, [person])
        row = mailer.queue(
            session,
            kind=kind,
            event=event,
            to=addr,
            now=now,
            dedupe=f"first:{reg.code}:{addr}",
            context={"code": reg.code, "registrations": [view], "people": view["participants"]},
            to_name=person.full_name,
            answering=answering,
            registration_id=reg.id,
        )
        out.add(row, kind, addr)


def addresses_settled(
    session: Session,
    mailer: Mailer,
    reg: Registration,
    settled: Sequence[Participant],
    event: EventSettings,
    *,
    answering: Answering,
    reply_to: str | None,
    changes: Sequence[Mapping[str, str]],
    now: dt.datetime,
    out: Queued,
) -> None:
    """Tell whoever answered our question which address we now use for each person
    (``updated`` with ``confirmed_emails``), so a misread answer is caught at once."""
    assert reg.id is not None
    sender = norm_address(reply_to)
    if not sender or not safe_to_reply(sender, mailer.settings.replying_as):
        return
    if not _answer_allowed(mailer, session, out, "updated", sender, now):
        return
    view = registration_view(session, reg)
    row = mailer.queue(
        session,
        kind="updated",
        event=event,
        to=sender,
        now=now,
        dedupe=f"settled:{answering.inbound.dedupe_key}:{reg.code}:{sender}",
        context={
            "code": reg.code,
            "registrations": [view],
            "people": view["participants"],
            "changes": [dict(c) for c in changes],
            "confirmed_emails": [
                {"full_name": p.full_name, "email": p.email, "corrected": p.email_check == "corrected"}
                for p in settled
            ],
            "unconfirmed_emails": unconfirmed_view(participants_of(session, reg.id)),
        },
        to_name=display_name(answering, sender, []),
        answering=answering,
        registration_id=reg.id,
    )
    out.add(row, "updated", sender)


def closed(
    session: Session,
    mailer: Mailer,
    reg: Registration,
    event: EventSettings,
    *,
    answering: Answering,
    reply_to: str | None,
    reason: str,
    now: dt.datetime,
    out: Queued,
) -> None:
    """A form after the deadline or the event: stored for the organisers, sender told."""
    sender = norm_address(reply_to)
    if not sender or not safe_to_reply(sender, mailer.settings.replying_as):
        return
    if not _answer_allowed(mailer, session, out, "closed", sender, now):
        return
    view = registration_view(session, reg)
    row = mailer.queue(
        session,
        kind="closed",
        event=event,
        to=sender,
        now=now,
        dedupe=f"closed:{answering.inbound.dedupe_key}:{reg.code}",
        context={"code": reg.code, "registrations": [view], "people": view["participants"], "closed_reason": reason},
        to_name=display_name(answering, sender, []),
        answering=answering,
        registration_id=reg.id,
    )
    out.add(row, "closed", sender)


def promoted(
    session: Session,
    mailer: Mailer,
    people: Sequence[Participant],
    event: EventSettings,
    *,
    now: dt.datetime,
    out: Queued,
) -> None:
    """People moved up from the waiting list: each of them, and whoever registered them."""
    own = mailer.settings.replying_as
    by_reg: dict[int, list[Participant]] = {}
    for person in people:
        by_reg.setdefault(person.registration_id, []).append(person)
    for reg_id, moved in by_reg.items():
        reg = session.get(Registration, reg_id)
        assert reg is not None
        targets = addressed(moved, [reg.sender_email], own)
        ids = "-".join(str(p.id) for p in moved)
        for addr, who in targets.items():
            view = registration_view(session, reg, who)
            row = mailer.queue(
                session,
                kind="promoted",
                event=event,
                to=addr,
                now=now,
                dedupe=f"promoted:{reg.code}:{ids}:{addr}",
                context={"code": reg.code, "registrations": [view], "people": view["participants"]},
                to_name=display_name(None, addr, who),
                registration_id=reg.id,
            )
            out.add(row, "promoted", addr)


def cancelled(
    session: Session,
    mailer: Mailer,
    reg: Registration,
    people: Sequence[Participant],
    event: EventSettings,
    *,
    answering: Answering,
    reply_to: str | None,
    now: dt.datetime,
    out: Queued,
) -> None:
    """Confirm a withdrawal to whoever asked, to the people withdrawn and to whoever
    registered them (one mail per address)."""
    own = mailer.settings.replying_as
    targets = addressed(people, [reg.sender_email, reply_to], own)
    for addr, who in targets.items():
        if answering is not None and not _answer_allowed(mailer, session, out, "cancelled", addr, now):
            continue
        view = registration_view(session, reg, who)
        row = mailer.queue(
            session,
            kind="cancelled",
            event=event,
            to=addr,
            now=now,
            dedupe=f"cancelled:{answering.inbound.dedupe_key}:{reg.code}:{addr}",
            context={"code": reg.code, "registrations": [view], "people": view["participants"]},
            to_name=display_name(answering, addr, who),
            answering=answering,
            registration_id=reg.id,
        )
        out.add(row, "cancelled", addr)


def display_name(answering: Answering | None, addr: str, people: Sequence[Participant]) -> str | None:
    """The display name for ``addr``: the sender's own, or the one person whose address
    it is — never a colleague's name on someone else's address."""
    if answering is not None and norm_address(answering.parsed.from_addr) == addr:
        return answering.parsed.from_name
    owners = [p for p in people if mail_address(p) == addr]
    return owners[0].full_name if len(owners) == 1 else None


# --- questions and forms for another event (issue 12: items 1 and 4) ---------------

FORWARD_ORIGINAL_MAX_BYTES = 5 * 1024 * 1024
"""The original message rides along a forward to the organisers (message/rfc822) up to
this size; a bigger one is only quoted (its raw copy stays in the review queue)."""
_QUOTE_MAX_CHARS = 8_000


def question_view(
    session: Session,
    answering: Answering,
    regs: Sequence[Registration],
    *,
    why: str,
    topic: str,
    now: dt.datetime,
    attached: bool = False,
) -> dict[str, object]:
    """``question`` of the templates: who wrote what, about which registrations."""
    parsed = answering.parsed
    text = (parsed.text or "").strip()
    if len(text) > _QUOTE_MAX_CHARS:
        text = text[:_QUOTE_MAX_CHARS].rstrip() + "\n[…]"
    name = (parsed.from_name or "").strip() or None
    if name is None and regs:
        wanted = norm_address(parsed.from_addr)
        assert regs[0].id is not None
        owners = [p.full_name for p in participants_of(session, regs[0].id) if norm_address(p.email) == wanted]
        name = owners[0] if len(owners) == 1 and owners[0] else None
    institution = next((r.institution_name for r in regs if r.institution_name), None)
    return {
        "topic": topic,
        "why": why,
        "from_name": name,
        "from_addr": parsed.from_addr or "",
        "institution": institution,
        "subject": parsed.subject or "(bez tematu)",
        "received_at": (parsed.date or now),
        "text": text,
        "codes": [r.code for r in regs],
        "original_attached": attached,
    }


def question_received(
    session: Session,
    mailer: Mailer,
    regs: Sequence[Registration],
    event: EventSettings,
    *,
    answering: Answering,
    reply_to: str | None,
    now: dt.datetime,
    out: Queued,
) -> None:
    """Tell a registered person at once that their question went to the organisers (one
    mail per message; the daily cap applies)."""
    sender = norm_address(reply_to)
    if not sender or not safe_to_reply(sender, mailer.settings.replying_as):
        return
    if not _answer_allowed(mailer, session, out, "question_received", sender, now):
        return
    views = [registration_view(session, r) for r in regs[:5]]
    reg = regs[0] if regs else None
    row = mailer.queue(
        session,
        kind="question_received",
        event=event,
        to=sender,
        now=now,
        dedupe=f"question_received:{answering.inbound.dedupe_key}",
        context={
            "code": reg.code if reg else None,
            "registrations": views,
            "people": views[0]["participants"] if views else [],
        },
        to_name=display_name(answering, sender, []),
        answering=answering,
        registration_id=reg.id if reg else None,
    )
    out.add(row, "question_received", sender)


def forward_to_organisers(
    session: Session,
    mailer: Mailer,
    events: Sequence[EventSettings],
    regs: Sequence[Registration],
    *,
    answering: Answering,
    reply_to: str,
    raw: bytes,
    why: str,
    topic: str,
    now: dt.datetime,
    out: Queued,
) -> list[str]:
    """Forward the message to the organisers of ``events`` (``events[].organisers``), one
    mail per message and address: Reply-To is the person, so answering reaches them; the
    text is quoted and the original attached as message/rfc822 (when not too big).
    Returns the events that have no organisers configured (nobody got it for them)."""
    sender = Sender(mailer.settings.outbox.from_address, mailer.settings.outbox.from_name)
    attached = len(raw) <= FORWARD_ORIGINAL_MAX_BYTES
    question = question_view(session, answering, regs, why=why, topic=topic, now=now, attached=attached)
    reg = regs[0] if regs else None
    views = [registration_view(session, r) for r in regs[:5]]
    own = mailer.settings.replying_as
    done: set[str] = set()
    without: list[str] = []
    for event in events:
        addresses = [a for a in (norm_address(x) for x in event.organisers) if a and safe_to_reply(a, own)]
        if not addresses:
            without.append(event.key)
        for addr in addresses:
            if addr in done:
                continue
            done.add(addr)
            dedupe = f"forwarded_question:{answering.inbound.dedupe_key}:{addr}"
            if session.exec(select(OutboundMail.id).where(OutboundMail.dedupe_key == dedupe)).first():
                continue
            context = mailer.base_context(event, "forwarded_question")
            context.update(
                code=reg.code if reg else None,
                registrations=views,
                original_subject=answering.parsed.subject or "(bez tematu)",
                question=question,
                recipient_attends=False,
            )
            rendered = mailer.templates.render("forwarded_question", context)
            message = compose(
                sender=sender,
                to=addr,
                to_name=None,
                rendered=rendered,
                kind="forwarded_question",
                dedupe_key=dedupe,
                ref=answering.inbound.ref,
                now=now,
                auto_submitted="auto-generated",
            )
            message["Reply-To"] = reply_to
            if attached:
                original = email.message_from_bytes(raw, policy=email.policy.default)
                message.add_attachment(original, filename="wiadomosc.eml")
            row = enqueue(
                session,
                message=message,
                kind="forwarded_question",
                dedupe_key=dedupe,
                to=addr,
                bcc=(),  # the organisers themselves; outbox.bcc copies participant mail
                now=now,
                inbound_id=answering.inbound.id,
                registration_id=reg.id if reg else None,
            )
            out.add(row, "forwarded_question", addr)
    return without


def open_events_reply(
    session: Session,
    mailer: Mailer,
    form_event: EventSettings,
    offered: Sequence[EventSettings],
    *,
    answering: Answering,
    reply_to: str | None,
    closed_reason: str,
    now: dt.datetime,
    out: Queued,
    reg: Registration | None = None,
) -> None:
    """A form for an event that is over (or closed) and no clear choice of another: tell
    the sender which events are open (city, date, deadline), with their blank forms.
    ``reg``: the late registration the form was kept as, if it was (its code shown)."""
    sender = norm_address(reply_to)
    if not sender or not safe_to_reply(sender, mailer.settings.replying_as):
        return
    if not _answer_allowed(mailer, session, out, "open_events", sender, now):
        return
    forms = [mailer.blank_form(e) for e in offered]
    row = mailer.queue(
        session,
        kind="open_events",
        event=form_event,
        to=sender,
        now=now,
        dedupe=f"open_events:{answering.inbound.dedupe_key}",
        context={
            "code": reg.code if reg else None,
            "registrations": [registration_view(session, reg)] if reg else [],
            "closed_reason": closed_reason,
            "open_events": [
                dict(event_context(e), attachment_name=f.filename) for e, f in zip(offered, forms, strict=True)
            ],
        },
        to_name=display_name(answering, sender, []),
        answering=answering,
        registration_id=reg.id if reg else None,
        extra_attachments=forms,
    )
    out.add(row, "open_events", sender)
