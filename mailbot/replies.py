"""Who gets which mail about a registration, and the context its template sees.

Rules, in the words organisers use:
- everyone on a form who gave an e-mail address gets one mail about *their* place; the
  sender gets one mail listing everyone on the form (a sender who is also a participant
  gets just that one);
- an address the form reader doubted (``unconfirmed``) gets no mail of its own until it
  is confirmed: that person is reached through whoever registered them, like a person
  without an address, and the sender's mail asks them to confirm or correct it;
- mails about a seat (ack, promoted, reminder, changed) carry a calendar entry whose UID
  is stable per address and event, so a later change replaces it in the calendar;
- every mail has a dedupe key naming what it is about, so reprocessing, a crash or a
  second run never sends it twice.

Rendering and queueing happen here; sending is :mod:`mailbot.outbox`'s job.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from mailbot.address_replies import CONFIRM_SENTENCE
from mailbot.calendar import calendar_file, event_uid, make_ics
from mailbot.config import EventSettings, Settings
from mailbot.loopguard import safe_to_reply
from mailbot.mime import ParsedMessage
from mailbot.outbox import FileAttachment, ReplyTo, Sender, compose, enqueue, replies_today
from mailbot.registrations import UNCONFIRMED, Applied, participants_of
from mailbot.seats import HOLDING, waitlist_position
from mailbot.store.tables import (
    AddressStatus,
    EventState,
    InboundMessage,
    OutboundMail,
    Participant,
    Registration,
)
from mailbot.templating import Templates

log = logging.getLogger(__name__)

WORKSHOP_NAMES = {
    "A": "Zarządzanie strategiczne w partnerstwie",
    "B": "Zarządzanie relacjami w partnerstwie",
}
_UTC = ZoneInfo("UTC")
CALENDAR_KINDS = frozenset({"ack", "promoted", "reminder", "changed"})


@dataclass(frozen=True)
class Answering:
    """The inbound message a mail answers: threading headers, ref, the daily cap."""

    inbound: InboundMessage
    parsed: ParsedMessage


def event_context(event: EventSettings) -> dict[str, object]:
    return {
        "key": event.key,
        "title": event.title,
        "city": event.city,
        "date": event.date,
        "start_time": event.start_time,
        "end_time": event.ends_at(_UTC).time(),
        "venue": event.venue,
        "address": event.address,
        "deadline": event.deadline,
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
            "workshop_names": WORKSHOP_NAMES,
            "unconfirmed_emails": [],
            "confirmed_emails": [],
            "confirm_sentence": CONFIRM_SENTENCE,
        }

    def calendar(
        self, session: Session, event: EventSettings, address: str, now: dt.datetime, *, cancelled: bool = False
    ) -> FileAttachment:
        state = session.get(EventState, event.key)
        outbox = self.settings.outbox
        domain = outbox.from_address.rpartition("@")[2] or "mailbot.invalid"
        ics = make_ics(
            event,
            tz=self.settings.tz,
            uid=event_uid(event.key, address, domain),
            sequence=state.sequence if state else 0,
            stamp=now,
            organiser_email=outbox.from_address,
            organiser_name=outbox.from_name,
            description=f"{event.title}\n{event.venue}, {event.address}",
            cancelled=cancelled,
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
    ) -> OutboundMail | None:
        """Queue one mail; None when it already exists (same dedupe key)."""
        if session.exec(select(OutboundMail.id).where(OutboundMail.dedupe_key == dedupe)).first():
            return None
        attachments: list[FileAttachment] = []
        if attach_blank:
            attachments.append(self.blank_form(event))
        full = self.base_context(event, kind)
        full.update(context or {})
        if kind in CALENDAR_KINDS and _holds_seat(full):
            attachments.append(self.calendar(session, event, to, now))
            full["calendar_attached"] = True
        full["attachment_name"] = attachments[0].filename if attach_blank else ""
        full["recipient_name"] = to_name
        ref = answering.inbound.ref if answering else dedupe_ref(dedupe)
        if answering is not None:
            full["original_subject"] = answering.parsed.subject or "(bez tematu)"
        rendered = self.templates.render(kind, full)
        threading = None
        if answering is not None and norm_address(answering.parsed.from_addr) == to.casefold():
            threading = ReplyTo(answering.parsed.message_id, answering.parsed.references)
        message = compose(
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
        )

    def over_daily_cap(self, session: Session, address: str, now: dt.datetime) -> bool:
        """The loop guard of last resort: no address gets more than the configured number
        of automatic answers a day, whatever it keeps sending us."""
        return replies_today(session, address, now) >= self.settings.outbox.max_replies_per_address_per_day


def _holds_seat(context: Mapping[str, Any]) -> bool:
    """A calendar entry only for someone with a seat (not for the waiting list)."""
    people = context.get("people") or [
        p for r in context.get("registrations") or [] for p in r["participants"]
    ]
    return any(p.get("status") == "confirmed" for p in people) if people else True


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
