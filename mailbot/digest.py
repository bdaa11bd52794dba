"""The organisers' daily digest: one mail a day per event and organiser address.

Organisers read this mail and nothing else, so everything that needs a person is in it:

- the registrations that arrived since the last digest of the event (the first digest
  lists everything), and the corrections made to older ones;
- seats against the capacity, the waiting list in order, who was taken off the list
  since the last digest, and the late registrations (stored, seated by nobody: the
  organisers decide);
- the addresses of the event's people that bounce (no reminders reach them) and those
  that answered with an out-of-office reply;
- the e-mail addresses the form reader doubted and nobody has confirmed yet: no mail of
  their own reaches those people (their sender was asked to confirm or correct);
- every message waiting for review (``needs_review``, not yet resolved with
  ``mailbot review``), with its reason and the start of its text; those new since the
  last digest with their original attachments (up to :data:`MAX_ATTACHMENT_BYTES` in
  all; files left out are named), older ones listed again each day until resolved.
  A message tied to an event (a registration it created, a
  form naming the event, a registration code it quotes, a reply we sent about a
  registration) goes to that event's organisers; one tied to none goes to the organisers
  of every event still open;
- the full participant list as XLSX (:func:`mailbot.export.to_xlsx`), one sheet per
  event the recipient organises — never another event's personal data.

"Since the last digest" is since the last digest of the event queued before today
(local time), so a dry run or a second run later the same day shows what today's mail
showed. Each mail is queued once: the dedupe key ``digest:{event}:{local date}:{address}``
makes a second run the same day a no-op. Events still to come get a digest every day;
past events only on days something new happened.

:func:`build_digests` gathers the data (pure, typed, no rendering); :func:`queue_digests`
renders ``templates/digest.*.j2`` and queues the mails through :mod:`mailbot.outbox`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func
from sqlmodel import Session, col, select

from mailbot import export
from mailbot.bounces import is_soft_reason
from mailbot.config import EventSettings, Settings, is_unlimited
from mailbot.errors import ConfigError
from mailbot.intent import find_codes, strip_quoted
from mailbot.mime import MimeLimits, parse_message
from mailbot.outbox import FileAttachment, Sender, compose, enqueue
from mailbot.registrations import UNCONFIRMED, Change, _snapshot, describe_changes, people_keys
from mailbot.forms.normalize import fold
from mailbot.replies import dedupe_ref, event_context, norm_address
from mailbot.seats import HOLDING
from mailbot.store.blobs import BlobStore
from mailbot.store.tables import (
    AddressStatus,
    InboundMessage,
    OutboundMail,
    Participant,
    Registration,
    RegistrationVersion,
    StoredAttachment,
)
from mailbot.templating import Rendered, Templates, plural_pl

if TYPE_CHECKING:
    from mailbot.app import App

log = logging.getLogger(__name__)

KIND = "digest"
MAX_ATTACHMENT_BYTES = 15 * 1024 * 1024
"""Total size of the review items' files attached to one digest (the XLSX comes on top;
a few dozen KB). What does not fit is named in the mail, to be fetched from the mailbox."""
EXCERPT_CHARS = 1500
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_MIME_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*$")

SOFT_BOUNCE_DAYS = dt.timedelta(days=7)
"""How long a full mailbox stays in the digest after its last bounce: the address is not
muted, so once the owner has made room nothing more comes back and it drops out."""

PERSON_STATUS_PL = export.SEAT_PL
REGISTRATION_STATUS_PL = export.REGISTRATION_PL


# --- the data -----------------------------------------------------------------------


@dataclass(frozen=True)
class DigestPerson:
    full_name: str | None
    job_title: str | None
    email: str | None
    status: str
    """confirmed | waitlisted | cancelled | late"""
    status_pl: str
    waitlist_position: int | None = None
    email_unconfirmed: bool = False
    """The reader doubted the address and nobody confirmed it yet."""


@dataclass(frozen=True)
class DigestRegistration:
    code: str
    institution: str | None
    status: str
    status_pl: str
    sender: str | None
    created_at: dt.datetime
    """Local time, as every datetime of a :class:`Digest`."""
    people: tuple[DigestPerson, ...]
    problems: tuple[str, ...] = ()
    """What the form still lacks (an incomplete registration)."""


@dataclass(frozen=True)
class Correction:
    """A registration created before the last digest and corrected since."""

    code: str
    institution: str | None
    updated_at: dt.datetime
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class WaitingPerson:
    position: int
    full_name: str | None
    institution: str | None
    code: str
    registered_at: dt.datetime


@dataclass(frozen=True)
class Withdrawn:
    """Someone taken off the list since the last digest."""

    full_name: str | None
    institution: str | None
    code: str
    at: dt.datetime
    how: Literal["withdrawn", "removed"]
    """withdrawn: by a withdrawal message; removed: a corrected form no longer lists them."""


@dataclass(frozen=True)
class LateRegistration:
    code: str
    institution: str | None
    sender: str | None
    created_at: dt.datetime
    people: tuple[str, ...]
    new: bool
    """Arrived since the last digest."""


@dataclass(frozen=True)
class Bounce:
    address: str
    reason: str | None
    """The server's answer as recorded (status code first): shown as the server gave it."""
    at: dt.datetime | None
    count: int
    who: tuple[str, ...]
    """The people (or "zgłaszający KOD") the address belongs to."""
    new: bool
    soft: bool = False
    """A full mailbox or a temporary failure (:func:`mailbot.bounces.is_soft`): the address
    is not muted, later mails go to it again; this one did not arrive."""
    phones: tuple[str, ...] = ()
    """Phone numbers the forms give for the address's people (their own, then their
    institution's), so the organisers can call someone mail does not reach."""


@dataclass(frozen=True)
class UnconfirmedEmail:
    """An address read with doubt that nobody has confirmed yet."""

    full_name: str | None
    institution: str | None
    code: str
    as_read: str | None
    suggestion: str | None
    sender: str | None
    """Whoever registered the person: they were asked to confirm or correct it."""
    since: dt.datetime
    new: bool
    """Appeared since the last digest."""


@dataclass(frozen=True)
class AutoReply:
    address: str
    count: int
    at: dt.datetime | None
    who: tuple[str, ...]


@dataclass(frozen=True)
class ReviewFile:
    attachment_id: int
    filename: str
    """The name it is attached under: the message's ref, then its own name."""
    original_name: str
    content_type: str
    sha256: str
    size: int
    included: bool
    note: str | None = None
    """Why it is not attached (too large for the digest, already attached, missing)."""


@dataclass(frozen=True)
class ReviewItem:
    inbound_id: int
    ref: str
    received_at: dt.datetime
    sent_at: dt.datetime | None
    sender: str | None
    sender_name: str | None
    subject: str | None
    reason: str | None
    """As recorded (English, for the admin's log)."""
    reason_pl: str | None
    """The same in Polish where the wording is known (:func:`reason_pl`)."""
    excerpt: str | None
    """The start of what the person wrote (quotes cut), when the message was readable."""
    files: tuple[ReviewFile, ...]
    events: tuple[str, ...]
    """The events it is tied to; empty: tied to none (sent to every open event)."""
    new: bool = True
    """Arrived since the last digest (its files are attached); an older item is listed
    again every day until it is resolved."""
    commands: tuple[str, ...] = ()
    """The reply commands that fit the item ("PRZYJMIJ 12", "ODRZUĆ 12", …; see
    :mod:`mailbot.organiser_commands`); empty when e-mail commands are not configured."""
    token: str | None = None
    """The item's token in this digest (:func:`command_token`), quoted as ``[#ID TOKEN]``
    next to the item; None when e-mail commands are not configured."""


@dataclass(frozen=True)
class WorkshopCount:
    """How many people chose one workshop: the organisers book rooms and trainers by it."""

    key: str
    """The letter on the form (A, B, …)."""
    name: str | None
    seated: int
    """People with a seat whose form chose the workshop."""
    waiting: int
    """People on the waiting list whose form chose it (they may still come)."""
    capacity: int | None = None
    """The workshop's configured places (``workshops = [{…, capacity = 30}]``); None:
    not set. Registrations are never refused for it: the digest only shows it."""

    @property
    def over(self) -> int:
        """How many seated people the workshop has beyond its capacity (0: within it)."""
        return max(0, self.seated - self.capacity) if self.capacity is not None else 0


@dataclass(frozen=True)
class InstitutionTypeCount:
    """Registrations (institutions) holding seats, by the kind of institution."""

    kind: str
    """One of :data:`INSTITUTION_TYPES` ("gmina", "miasto", …, "inne")."""
    registrations: int
    people: int
    """Their seated and waiting people."""


@dataclass(frozen=True)
class RemarkGroup:
    """A need several forms' remarks share (a diet, accessibility), by keyword."""

    label: str
    """E.g. "dieta wegetariańska" or "dostępność (wózek, pętla indukcyjna…)"."""
    codes: tuple[str, ...]
    """The registrations whose remark names it (counted once per registration)."""

    @property
    def count(self) -> int:
        return len(self.codes)


@dataclass(frozen=True)
class PlainRemark:
    """A remark no keyword of :data:`REMARK_KEYWORDS` matched: listed as written."""

    code: str
    institution: str | None
    text: str


@dataclass(frozen=True)
class SeatsOnDay:
    """Seated people by the day they were registered, added up (the digest's chart)."""

    day: dt.date
    seated: int
    """Everyone seated now whose registration arrived on ``day`` or before."""


@dataclass(frozen=True)
class Totals:
    capacity: int
    seated: int
    free: int | None
    """None: ``capacity = "unlimited"``."""
    waiting: int
    registrations: int
    """Registrations holding seats (confirmed or incomplete)."""
    incomplete: int
    people: int
    """People on those registrations, seated or waiting."""
    withdrawn_since: int
    late: int
    """Late registrations (all of them)."""


@dataclass(frozen=True)
class Digest:
    """What one event's organisers are told today."""

    event: EventSettings
    recipients: tuple[str, ...]
    local_date: dt.date
    generated_at: dt.datetime
    since: dt.datetime | None
    """When the previous digest was queued (local time); None: this is the first."""
    new_registrations: tuple[DigestRegistration, ...]
    corrections: tuple[Correction, ...]
    totals: Totals
    waiting_list: tuple[WaitingPerson, ...]
    withdrawn: tuple[Withdrawn, ...]
    late: tuple[LateRegistration, ...]
    bounces: tuple[Bounce, ...]
    auto_replies: tuple[AutoReply, ...]
    review: tuple[ReviewItem, ...]
    unconfirmed: tuple[UnconfirmedEmail, ...] = ()
    workshops: tuple[WorkshopCount, ...] = ()
    institution_types: tuple[InstitutionTypeCount, ...] = ()
    """Registrations holding seats by kind of institution (:func:`institution_type`)."""
    remark_groups: tuple[RemarkGroup, ...] = ()
    """Diets and accessibility needs gathered from the remarks (:func:`remark_groups`)."""
    plain_remarks: tuple[PlainRemark, ...] = ()
    """The remarks no keyword matched, listed as written."""
    seats_by_day: tuple[SeatsOnDay, ...] = ()
    """Seated people, cumulative by day of registration (empty: nobody registered)."""

    @property
    def hard_bounces(self) -> tuple[Bounce, ...]:
        """Addresses muted for good (no reminders or change notices reach them)."""
        return tuple(b for b in self.bounces if not b.soft)

    @property
    def soft_bounces(self) -> tuple[Bounce, ...]:
        """Full mailboxes: not muted, but the mail that bounced did not arrive."""
        return tuple(b for b in self.bounces if b.soft)

    @property
    def has_news(self) -> bool:
        """Anything new since the last digest (past events get a digest only then)."""
        return bool(
            self.new_registrations
            or self.corrections
            or self.withdrawn
            or any(item.new for item in self.review)
            or self.auto_replies
            or any(b.new for b in self.bounces)
            or any(u.new for u in self.unconfirmed)
        )

    @property
    def files(self) -> tuple[ReviewFile, ...]:
        return tuple(f for item in self.review for f in item.files)

    @property
    def left_out(self) -> tuple[ReviewFile, ...]:
        """Files of new review items that could not be attached (named in the mail)."""
        return tuple(f for item in self.review if item.new for f in item.files if not f.included)


@dataclass(frozen=True)
class DigestResult:
    event_key: str
    address: str
    dedupe_key: str
    status: Literal["queued", "already_sent", "dry_run"]
    subject: str
    size: int
    """Bytes of the composed mail (0 when it was not composed again: already sent)."""
    attachments: tuple[str, ...]
    left_out: tuple[str, ...]
    """Review files named in the mail but not attached."""
    rendered: Rendered | None
    outbound_id: int | None = None

    @property
    def queued(self) -> bool:
        return self.status == "queued"


# --- when ---------------------------------------------------------------------------


def next_digest_at(settings: Settings, now: dt.datetime) -> dt.datetime:
    """The next moment (strictly after ``now``) the digest is due, in local time."""
    tz = settings.tz
    local = now.astimezone(tz)
    moment = dt.datetime.combine(local.date(), settings.digest_time, tzinfo=tz)
    if moment <= local:
        moment = dt.datetime.combine(local.date() + dt.timedelta(days=1), settings.digest_time, tzinfo=tz)
    return moment


def last_digest_moment(settings: Settings, now: dt.datetime) -> dt.datetime:
    """The latest moment at or before ``now`` the digest was due."""
    tz = settings.tz
    local = now.astimezone(tz)
    moment = dt.datetime.combine(local.date(), settings.digest_time, tzinfo=tz)
    if moment > local:
        moment = dt.datetime.combine(local.date() - dt.timedelta(days=1), settings.digest_time, tzinfo=tz)
    return moment


def digest_due(settings: Settings, now: dt.datetime, last_run: dt.datetime | None) -> bool:
    """Whether a digest moment passed since ``last_run`` (catch-up after downtime).

    Without a last run, only once today's ``digest_time`` has passed (a service started at
    3 a.m. does not send yesterday's digest). Running it when not strictly due is
    harmless: the dedupe key allows one digest per event, address and day."""
    moment = last_digest_moment(settings, now)
    if last_run is None:
        return moment.date() == now.astimezone(settings.tz).date()
    return last_run < moment


# --- building -----------------------------------------------------------------------


def _local(value: dt.datetime, settings: Settings) -> dt.datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(settings.tz)


def _local_or_none(value: dt.datetime | None, settings: Settings) -> dt.datetime | None:
    return None if value is None else _local(value, settings)


def _day_start(settings: Settings, now: dt.datetime) -> dt.datetime:
    local = now.astimezone(settings.tz)
    return dt.datetime.combine(local.date(), dt.time(0, 0), tzinfo=settings.tz)


def _digest_prefix(event_key: str) -> str:
    return f"{KIND}:{event_key}:"


def digest_dedupe_key(event_key: str, day: dt.date, address: str) -> str:
    """``digest:{event}:{local date}:{address}``; an address too long for the column is
    replaced by its hash (the key must stay unique, not readable)."""
    key = f"{_digest_prefix(event_key)}{day.isoformat()}:{address}"
    if len(key) > 200:
        key = f"{_digest_prefix(event_key)}{day.isoformat()}:#{hashlib.sha256(address.encode()).hexdigest()}"
    return key


def last_digest_at(session: Session, event_key: str, before: dt.datetime) -> dt.datetime | None:
    """When the last digest of the event queued before ``before`` was queued."""
    value = session.exec(
        select(func.max(OutboundMail.created_at)).where(
            OutboundMail.kind == KIND,
            col(OutboundMail.dedupe_key).startswith(_digest_prefix(event_key), autoescape=True),
            col(OutboundMail.created_at) < before,
        )
    ).one()
    if value is None:
        return None
    assert isinstance(value, dt.datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _in_window(value: dt.datetime | None, since: dt.datetime | None, now: dt.datetime) -> bool:
    if value is None:
        return False
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return (since is None or value > since) and value <= now


def _organisers(event: EventSettings) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for address in event.organisers:
        norm = norm_address(address)
        if norm:
            out.setdefault(norm, None)
    return tuple(out)


@dataclass
class _EventData:
    """One event's rows, loaded once."""

    regs: dict[int, Registration]
    people: dict[int, list[Participant]]


def _load_event(session: Session, event_key: str) -> _EventData:
    regs = {
        r.id: r
        for r in session.exec(
            select(Registration).where(Registration.event_key == event_key).order_by(col(Registration.id))
        ).all()
        if r.id is not None
    }
    people: dict[int, list[Participant]] = {}
    for p in session.exec(
        select(Participant)
        .join(Registration, col(Registration.id) == col(Participant.registration_id))
        .where(Registration.event_key == event_key)
        .order_by(col(Participant.registration_id), col(Participant.position))
    ).all():
        people.setdefault(p.registration_id, []).append(p)
    return _EventData(regs, people)


def _queue(data: _EventData) -> list[Participant]:
    """The waiting list, in the order of :mod:`mailbot.seats`: when people first
    appeared on a form, then form order."""
    waiting = [
        p
        for plist in data.people.values()
        for p in plist
        if p.status == "waitlisted" and data.regs[p.registration_id].status in HOLDING
    ]
    waiting.sort(key=lambda p: (_utc(p.registered_at), p.id or 0))
    return waiting


def _waiting_list(queue: Sequence[Participant], data: _EventData, settings: Settings) -> list[WaitingPerson]:
    out = []
    for i, p in enumerate(queue, start=1):
        reg = data.regs[p.registration_id]
        out.append(WaitingPerson(i, p.full_name, reg.institution_name, reg.code, _local(p.registered_at, settings)))
    return out


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _problems(reg: Registration) -> tuple[str, ...]:
    try:
        items = json.loads(reg.problems_json or "[]")
    except ValueError:
        return ()
    return tuple(str(p.get("message") or p.get("field")) for p in items if isinstance(p, dict))


def _person(p: Participant, positions: Mapping[int, int]) -> DigestPerson:
    return DigestPerson(
        full_name=p.full_name,
        job_title=p.job_title,
        email=p.email,
        status=p.status,
        status_pl=PERSON_STATUS_PL.get(p.status, p.status),
        waitlist_position=positions.get(p.id or -1),
        email_unconfirmed=p.email_check == UNCONFIRMED,
    )


def _new_registrations(
    data: _EventData, settings: Settings, since: dt.datetime | None, now: dt.datetime, positions: Mapping[int, int]
) -> list[DigestRegistration]:
    out = []
    for reg in data.regs.values():
        if not _in_window(reg.created_at, since, now):
            continue
        out.append(
            DigestRegistration(
                code=reg.code,
                institution=reg.institution_name,
                status=reg.status,
                status_pl=REGISTRATION_STATUS_PL.get(reg.status, reg.status),
                sender=reg.sender_email,
                created_at=_local(reg.created_at, settings),
                people=tuple(_person(p, positions) for p in data.people.get(reg.id or -1, [])),
                problems=_problems(reg) if reg.status == "incomplete" else (),
            )
        )
    out.sort(key=lambda r: r.created_at)  # stable: same moment, arrival (id) order
    return out


def _versions_in_window(
    session: Session, data: _EventData, since: dt.datetime | None, now: dt.datetime
) -> dict[int, RegistrationVersion]:
    """Per registration, its oldest version replaced inside the window."""
    if not data.regs:
        return {}
    query = (
        select(RegistrationVersion)
        .join(Registration, col(Registration.id) == col(RegistrationVersion.registration_id))
        .where(Registration.event_key == next(iter(data.regs.values())).event_key)
        .order_by(col(RegistrationVersion.registration_id), col(RegistrationVersion.version))
    )
    first: dict[int, RegistrationVersion] = {}
    for version in session.exec(query).all():
        if _in_window(version.replaced_at, since, now):
            first.setdefault(version.registration_id, version)
    return first


def _corrections_and_removed(
    session: Session, data: _EventData, settings: Settings, since: dt.datetime | None, now: dt.datetime
) -> tuple[list[Correction], list[Withdrawn]]:
    corrections: list[Correction] = []
    removed: list[Withdrawn] = []
    for reg_id, version in _versions_in_window(session, data, since, now).items():
        reg = data.regs[reg_id]
        try:
            before = json.loads(version.snapshot_json)
        except ValueError:
            continue
        after = json.loads(_snapshot(session, reg))
        changes = describe_changes(before, after)
        when = _local(version.replaced_at, settings)
        if not _in_window(reg.created_at, since, now) and changes:
            corrections.append(Correction(reg.code, reg.institution_name, _local(reg.updated_at, settings), changes))
        # People the corrected form dropped are deleted, not marked: find them in the snapshot.
        current = [(p.full_name, p.email) for p in data.people.get(reg_id, [])]
        for old in before.get("participants") or []:
            if old.get("status") in ("cancelled", "late"):
                continue
            keys = people_keys([(old.get("full_name"), old.get("email"))])
            if any(keys & people_keys([c]) for c in current):
                continue
            removed.append(
                Withdrawn(
                    full_name=old.get("full_name"),
                    institution=reg.institution_name,
                    code=reg.code,
                    at=when,
                    how="removed",
                )
            )
    corrections.sort(key=lambda c: (c.updated_at, c.code))
    return corrections, removed


def _withdrawn(
    data: _EventData, settings: Settings, since: dt.datetime | None, now: dt.datetime
) -> list[Withdrawn]:
    out = []
    for reg_id, plist in data.people.items():
        reg = data.regs[reg_id]
        for p in plist:
            if p.status == "cancelled" and _in_window(p.status_changed_at, since, now):
                out.append(
                    Withdrawn(
                        full_name=p.full_name,
                        institution=reg.institution_name,
                        code=reg.code,
                        at=_local(p.status_changed_at, settings),
                        how="withdrawn",
                    )
                )
    return out


def _late(data: _EventData, settings: Settings, since: dt.datetime | None, now: dt.datetime) -> list[LateRegistration]:
    out = [
        LateRegistration(
            code=reg.code,
            institution=reg.institution_name,
            sender=reg.sender_email,
            created_at=_local(reg.created_at, settings),
            people=tuple(p.full_name or "(bez nazwiska)" for p in data.people.get(reg.id or -1, [])),
            new=_in_window(reg.created_at, since, now),
        )
        for reg in data.regs.values()
        if reg.status == "late"
    ]
    out.sort(key=lambda r: r.created_at)  # stable: same moment, arrival (id) order
    return out


def _unconfirmed(
    data: _EventData, settings: Settings, since: dt.datetime | None, now: dt.datetime
) -> list[UnconfirmedEmail]:
    out = []
    for reg in data.regs.values():
        if reg.status == "cancelled":
            continue
        for p in data.people.get(reg.id or -1, []):
            if p.email_check != UNCONFIRMED or p.status == "cancelled":
                continue
            out.append(
                UnconfirmedEmail(
                    full_name=p.full_name,
                    institution=reg.institution_name,
                    code=reg.code,
                    as_read=p.email,
                    suggestion=p.email_suggestion,
                    sender=reg.sender_email,
                    since=_local(p.registered_at, settings),
                    new=_in_window(p.registered_at, since, now),
                )
            )
    out.sort(key=lambda u: (u.since, u.code))
    return out


def _owners(data: _EventData, phones: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Address → who it belongs to, for every address of the event we write to; fills
    ``phones`` (address → numbers from the forms: the person's own, then the
    institution's; a sender gets the institution's) when given."""
    owners: dict[str, list[str]] = {}

    def phone(addr: str, *numbers: str | None) -> None:
        if phones is None:
            return
        for number in numbers:
            number = " ".join((number or "").split())
            if number and number not in phones.setdefault(addr, []):
                phones[addr].append(number)

    for reg in data.regs.values():
        if reg.status == "cancelled":
            continue
        for p in data.people.get(reg.id or -1, []):
            addr = norm_address(p.email)
            if addr and p.status != "cancelled":
                label = f"{p.full_name or '(bez nazwiska)'} ({reg.code})"
                if label not in owners.setdefault(addr, []):
                    owners[addr].append(label)
                phone(addr, p.phone, reg.institution_phone)
        sender = norm_address(reg.sender_email)
        if sender:
            label = f"zgłaszający {reg.code}"
            if label not in owners.setdefault(sender, []):
                owners[sender].append(label)
            phone(sender, reg.institution_phone)
    return owners


def _workshops(data: _EventData, event: EventSettings) -> list[WorkshopCount]:
    """People per workshop, over registrations holding seats: the ones the forms chose
    (``Registration.workshops``, a registration's choice applying to each of its
    people), plus any configured workshop nobody chose yet, as 0; configured ones first,
    in config order, with their titles and capacities."""
    seated: dict[str, int] = {}
    waiting: dict[str, int] = {}
    for reg in data.regs.values():
        if reg.status not in HOLDING:
            continue
        chosen = [w.strip() for w in (reg.workshops or "").split(",") if w.strip()]
        people = data.people.get(reg.id or -1, [])
        for key in chosen:
            seated[key] = seated.get(key, 0) + sum(1 for p in people if p.status == "confirmed")
            waiting[key] = waiting.get(key, 0) + sum(1 for p in people if p.status == "waitlisted")
    configured = {w.key: w for w in event.workshop_options}
    keys = [*configured, *sorted(set(seated) - set(configured))]
    return [
        WorkshopCount(
            k,
            configured[k].title if k in configured else None,
            seated.get(k, 0),
            waiting.get(k, 0),
            configured[k].capacity if k in configured else None,
        )
        for k in keys
    ]


# --- the organisers' numbers ----------------------------------------------------------

INSTITUTION_TYPES = ("gmina", "miasto", "powiat", "województwo", "związek", "inne")
"""The kinds of institution the digest counts, in this order."""

INSTITUTION_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("związek", ("zwiazek", "stowarzyszenie gmin", "stowarzyszenie samorzad")),
    ("województwo", ("urzad marszalkowski", "urzad wojewodzki", "wojewodztwo", "wojewodztwa")),
    ("powiat", ("starostwo powiatowe", "starostwo", "powiat")),
    ("miasto", ("urzad miasta", "urzad miejski", "urzad miasta i gminy", "prezydent miasta", "miasto")),
    ("gmina", ("urzad gminy", "gmina", "wojt")),
)
"""The rules of :func:`institution_type`, first match wins, on the name folded to
lower case without diacritics: "Związek …" (of towns, of communes) → związek; "Urząd
Marszałkowski" → województwo; "Starostwo Powiatowe" → powiat; "Urząd Miasta", "Urząd
Miejski" → miasto; "Urząd Gminy", "Gmina …", "Wójt …" → gmina; anything else (or no name) → inne. "Urząd
Miasta i Gminy" counts as miasto (its "Urząd Miasta" comes first)."""


def institution_type(name: str | None) -> str:
    """The kind of institution ``name`` is, by :data:`INSTITUTION_RULES`."""
    folded = " ".join(fold(name or "").replace("-", " ").split())
    for kind, phrases in INSTITUTION_RULES:
        if any(re.search(rf"\b{re.escape(p)}", folded) for p in phrases):
            return kind
    return "inne"


def _institution_types(data: _EventData) -> list[InstitutionTypeCount]:
    regs: dict[str, int] = {}
    people: dict[str, int] = {}
    for reg in data.regs.values():
        if reg.status not in HOLDING:
            continue
        kind = institution_type(reg.institution_name)
        regs[kind] = regs.get(kind, 0) + 1
        people[kind] = people.get(kind, 0) + sum(
            1 for p in data.people.get(reg.id or -1, []) if p.status in ("confirmed", "waitlisted")
        )
    return [InstitutionTypeCount(k, regs[k], people[k]) for k in INSTITUTION_TYPES if k in regs]


ACCESSIBILITY = "dostępność (wózek, pętla indukcyjna…)"

REMARK_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("dieta wegetariańska", ("wegetarian",)),
    ("dieta wegańska", ("wegan",)),
    ("dieta bezglutenowa", ("bezglutenow", "bez glutenu", "celiakia")),
    ("dieta bez laktozy", ("bez laktozy", "bezlaktozow", "nietolerancja laktozy")),
    ("alergia", ("alergi", "uczulen")),
    ("dieta (inna)", ("dieta", "diety", "diecie", "posilek", "posilki")),
    (ACCESSIBILITY, (
        "wozek", "wozka", "wozku", "niepelnospraw", "tlumacz migow", "tlumacza migow",
        "tlumaczenie migow", "pjm", "petla indukcyjn", "petli indukcyjn", "parking dla",
        "miejsce parkingowe dla", "podjazd", "winda", "windy", "niewidom", "niedowidz",
        "nieslysz", "pies asystujacy",
    )),
)
"""The keywords that gather remarks (folded: lower case, no diacritics; a keyword
matches at the start of a word): a remark naming a vegetarian diet ("wegetariańsk…"),
vegan ("wegańsk…"), gluten-free ("bezglutenow…"), lactose-free ("bez laktozy"), an
allergy ("alergi…", "uczuleni…"), any other diet ("dieta" when no diet above matched),
or an accessibility need (wheelchair "wózek", "niepełnospraw…", sign-language
interpreter "tłumacz migowy"/"PJM", "pętla indukcyjna", "parking dla …", "podjazd",
"winda", …) is counted in that group, once per registration; one remark may land in
several groups. A remark matching none is listed as written."""


def remark_labels(text: str) -> list[str]:
    """The groups of :data:`REMARK_KEYWORDS` a remark belongs to, in that order."""
    folded = " ".join(fold(text).split())
    labels = [label for label, words in REMARK_KEYWORDS
              if any(re.search(rf"\b{re.escape(fold(w))}", folded) for w in words)]
    if "dieta (inna)" in labels and any(label.startswith("dieta ") and label != "dieta (inna)" for label in labels):
        labels.remove("dieta (inna)")
    return labels


def _remarks(data: _EventData) -> tuple[list[RemarkGroup], list[PlainRemark]]:
    """Remarks of registrations holding seats, once per registration (a remark belongs
    to the form, not to each person on it)."""
    codes: dict[str, list[str]] = {}
    plain: list[PlainRemark] = []
    for reg in data.regs.values():
        text = " ".join((reg.remarks or "").split())
        if reg.status not in HOLDING or not text:
            continue
        labels = remark_labels(text)
        for label in labels:
            codes.setdefault(label, []).append(reg.code)
        if not labels:
            plain.append(PlainRemark(reg.code, reg.institution_name, text))
    groups = [RemarkGroup(label, tuple(codes[label])) for label, _ in REMARK_KEYWORDS if label in codes]
    return groups, plain


def _seats_by_day(data: _EventData, settings: Settings) -> list[SeatsOnDay]:
    """Seated people, added up by the local day they were registered: from the first
    day anyone was to the last (days without registrations carry the total on)."""
    per_day: dict[dt.date, int] = {}
    for reg in data.regs.values():
        if reg.status not in HOLDING:
            continue
        for p in data.people.get(reg.id or -1, []):
            if p.status == "confirmed":
                day = _local(p.registered_at, settings).date()
                per_day[day] = per_day.get(day, 0) + 1
    if not per_day:
        return []
    out: list[SeatsOnDay] = []
    day, last, total = min(per_day), max(per_day), 0
    while day <= last:
        total += per_day.get(day, 0)
        out.append(SeatsOnDay(day, total))
        day += dt.timedelta(days=1)
    return out


def _address_states(session: Session, addresses: Sequence[str]) -> list[AddressStatus]:
    states: list[AddressStatus] = []
    for i in range(0, len(addresses), 500):
        chunk = addresses[i : i + 500]
        states.extend(
            session.exec(select(AddressStatus).where(col(AddressStatus.address).in_(chunk))).all()
        )
    return states


def _bounces_and_auto_replies(
    session: Session, data: _EventData, settings: Settings, since: dt.datetime | None, now: dt.datetime
) -> tuple[list[Bounce], list[AutoReply]]:
    phones: dict[str, list[str]] = {}
    owners = _owners(data, phones)
    bounces: list[Bounce] = []
    autos: list[AutoReply] = []
    soft_since = now - SOFT_BOUNCE_DAYS
    for state in _address_states(session, sorted(owners)):
        who = tuple(owners.get(state.address, ()))
        soft = (
            not state.bouncing
            and state.bounce_count > 0
            and is_soft_reason(state.last_bounce_reason)
            and _in_window(state.last_bounce_at, soft_since, now)
        )
        if state.bouncing or soft:
            bounces.append(
                Bounce(
                    address=state.address,
                    reason=state.last_bounce_reason,
                    at=_local_or_none(state.last_bounce_at, settings),
                    count=state.bounce_count,
                    who=who,
                    new=_in_window(state.last_bounce_at, since, now),
                    soft=soft,
                    phones=tuple(phones.get(state.address, ())),
                )
            )
        if state.auto_reply_count and _in_window(state.last_auto_reply_at, since, now):
            autos.append(
                AutoReply(state.address, state.auto_reply_count, _local_or_none(state.last_auto_reply_at, settings), who)
            )
    bounces.sort(key=lambda b: b.address)
    autos.sort(key=lambda a: a.address)
    return bounces, autos


# --- review items -------------------------------------------------------------------

_KIND_PL = {
    "ack": "potwierdzenie",
    "incomplete": "prośbę o uzupełnienie",
    "no_form": "pusty formularz",
    "waitlist": "informację o liście rezerwowej",
    "promoted": "informację o zwolnionym miejscu",
    "cancelled": "potwierdzenie wykreślenia z listy",
    "closed": "informację o zakończeniu przyjmowania zgłoszeń",
    "updated": "potwierdzenie poprawek",
    "question_received": "potwierdzenie otrzymania pytania",
    "forwarded_question": "pytanie przekazane organizatorom",
    "open_events": "listę otwartych konferencji z formularzami",
    "command_result": "wynik poleceń",
}


def _too_large_pl(match: re.Match[str]) -> str:
    return f"wiadomość za duża ({int(match.group(1)) / 1024 / 1024:.1f} MB)".replace(".", ",")


def _queued_pl(match: re.Match[str]) -> str:
    items = []
    for item in match.group(1).split(", "):
        kind, _, to = item.partition(" → ")
        items.append(f"{_KIND_PL.get(kind, kind)} → {to}" if to else item)
    return "wysłano automatycznie: " + ", ".join(items)


_WHERE_PL = {"body": "w treści", "subject": "w temacie"}
_DOUBT_PL = {
    "substitution": "zastępstwo",
    "reversal": "odwołanie rezygnacji",
    "negated": "zaprzeczenie",
    "question": "pytanie",
    "conditional": "warunek",
    "hedged": "niepewność",
    "partial attendance": "udział tylko w części",
    "refers to an earlier form": "odwołanie do wcześniejszego zgłoszenia",
}
"""The doubts of :mod:`mailbot.intent` (``_Rule`` labels) as the organisers read them."""


def _quote(text: str) -> str:
    return f"„{text}”"


def _doubt_pl(match: re.Match[str]) -> str:
    label, phrase, where = match.group(1), match.group(2), match.group(3)
    return f"{_DOUBT_PL.get(label, label)} {_quote(phrase)} {_WHERE_PL.get(where, where)}"


def _word_pl(match: re.Match[str]) -> str:
    where = _WHERE_PL.get(match.group(2), match.group(2))
    return f"słowo {_quote(match.group(1))} {where}, bez jednoznacznej deklaracji"


def _withdrawal_pl(match: re.Match[str]) -> str:
    return f"wycofanie udziału: {_quote(match.group(1))} {_WHERE_PL.get(match.group(2), match.group(2))}"


_UNCLEAR_PL: tuple[tuple[re.Pattern[str], str | Any], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (rf"^({'|'.join(map(re.escape, _DOUBT_PL))}) '(.+)' in (body|subject)$", _doubt_pl),
        (r"^withdrawal word '(.+)' in (body|subject) without a clear statement$", _word_pl),
        (
            r"^withdrawal together with a new registration, a substitution\? \('(.+)', then '(.+)'\)$",
            r"wycofanie razem z nowym zgłoszeniem – może zastępstwo? („\1”, potem „\2”)",
        ),
        (
            r"^withdrawal while someone still attends \('(.+)', then '(.+)'\)$",
            r"wycofanie, choć ktoś nadal ma przyjechać („\1”, potem „\2”)",
        ),
    )
)
"""What :func:`mailbot.intent.detect_withdrawal` found unclear, after "unclear: "."""

_ADDRESS_ANSWER_PL: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"^a question in the reply$", "w odpowiedzi jest pytanie"),
        (r"^hedged \('(.+)'\)$", r"odpowiedź niepewna („\1”)"),
        (r"^says '(.+)' but gives no other address$", r"pisze „\1”, ale nie podaje innego adresu"),
        (r"^'(.+)' in an answer about the address$", r"„\1” w odpowiedzi o adres"),
        (r"^repeats the address without saying whether it is right$", "powtarza adres, nie pisząc, czy jest prawidłowy"),
        (
            r"^'(.+)' after we asked whether (\S+) meant (\S+): could mean either$",
            r"„\1” po pytaniu, czy \2 to \3 – może dotyczyć obu wersji",
        ),
        (r"^'(.+)' next to (\S+)$", r"„\1” obok adresu \2"),
        (r"^cannot tell whose address (\S+) is$", r"nie wiadomo, czyj jest adres \1"),
        (r"^two addresses for (.+)$", r"dwa adresy dla: \1"),
    )
)
"""Why :func:`mailbot.address_replies.read_address_reply` found an answer unclear."""


def _translate(text: str, table: Sequence[tuple[re.Pattern[str], str | Any]]) -> str:
    for pattern, replacement in table:
        if pattern.match(text):
            return pattern.sub(replacement, text, count=1)
    return text


def _unclear_pl(match: re.Match[str]) -> str:
    return "niejasne, czy to wycofanie udziału: " + _translate(match.group(1), _UNCLEAR_PL)


def _address_unclear_pl(match: re.Match[str]) -> str:
    why = _translate(match.group(2), _ADDRESS_ANSWER_PL)
    return f"niejasna odpowiedź w sprawie niepotwierdzonego adresu e-mail (zgłoszenie {match.group(1)}): {why}"


def _identical_pl(match: re.Match[str]) -> str:
    n = int(match.group(1))
    return f"{n} {plural_pl(n, 'identyczny załącznik', 'identyczne załączniki', 'identycznych załączników')}" \
        f" – {'przeczytany' if n == 1 else 'przeczytane'} raz"


_Replacement = str | Callable[[re.Match[str]], str]


def _table(*rows: tuple[str, _Replacement]) -> tuple[tuple[re.Pattern[str], _Replacement], ...]:
    return tuple((re.compile(pattern), replacement) for pattern, replacement in rows)


def _decimal_pl(number: str) -> str:
    return number.replace(".", ",")


def _pixels_pl(match: re.Match[str]) -> str:
    size = match.group(1).replace(" pixels", " pikseli")
    return f"obraz za duży: {size} (limit {match.group(2)} pikseli)"


def _unpack_pl(match: re.Match[str]) -> str:
    return f"nie udało się rozpakować {match.group(1)} ({match.group(2)})"


def _libreoffice_pl(match: re.Match[str]) -> str:
    said = match.group(2)
    if said is None:
        return f"LibreOffice nie przekonwertował dokumentu {match.group(1)}"
    crash = re.fullmatch(r"LibreOffice crashed \((.+)\)", said)
    said = f"program uległ awarii ({crash.group(1)})" if crash else f"komunikat programu: {said}"
    return f"LibreOffice nie przekonwertował dokumentu {match.group(1)} – {said}"


_PDFIUM_PL = {
    "Unknown error": "nieznany błąd",
    "File access error": "błąd dostępu do pliku",
    "Data format error": "błędny format danych",
    "Incorrect password error": "nieprawidłowe hasło",
    "Unsupported security scheme error": "nieobsługiwany rodzaj zabezpieczenia",
    "Page not found or content error": "brak strony albo błędna treść",
}
_LIBRARY_PL = _table(
    # The most frequent messages of the libraries that read the files (pypdfium2,
    # zipfile); any other is kept as the library gave it.
    (
        r"^Failed to load document \(PDFium: (.+)\)\.$",
        lambda m: f"PDFium nie wczytał dokumentu – {_PDFIUM_PL.get(m.group(1), m.group(1))}",
    ),
    (r"^File is not a zip file$", "to nie jest poprawne archiwum zip"),
    (r"^Bad magic number for central directory$", "błędny katalog centralny archiwum"),
    (r"^Truncated file header$", "urwany nagłówek pliku"),
)


def _detail_pl(template: str) -> Callable[[re.Match[str]], str]:
    """``template`` with ``{}`` for the library's message, put in Polish where known."""
    return lambda m: template.format(_translate(m.group(1), _LIBRARY_PL))


_OCR_MISSING_PL = _table(
    (r"^the tesseract program is not installed$", "nie zainstalowano programu tesseract"),
    (r"^Tesseract's Polish model is missing$", "brak polskiego modelu języka dla programu tesseract"),
    (r"^tesseract does not run \((.+)\)$", r"program tesseract się nie uruchamia (\1)"),
)

_FILE_REASONS_PL = _table(
    # mailbot.forms (parse_bytes, parse_file) and its readers' FormError texts; the
    # details a library or the system gave (in parentheses, after a colon) are kept.
    (r"^unreadable$", "plik nieczytelny"),
    (r"^file is larger than (\d+) bytes$", r"plik jest za duży (ponad \1 bajtów)"),
    (r"^label vocabulary unavailable: (.+)$", r"niedostępny słownik etykiet formularza – sprawa dla administratora (\1)"),
    (r"^document nests too deeply$", "dokument ma zbyt głęboko zagnieżdżoną strukturę"),
    (r"^document needs too much memory$", "odczyt dokumentu wymaga zbyt dużo pamięci – przerwano"),
    (r"^damaged document \((.+)\)$", r"dokument uszkodzony (\1)"),
    (r"^cannot read document \((.+)\)$", r"nieoczekiwany problem przy odczycie dokumentu (\1)"),
    (r"^cannot read file: (.+)$", r"nie da się otworzyć pliku (\1)"),
    (
        r"^Outlook message, not a document \(its attachments are read by the mail pipeline\)$",
        "wiadomość programu Outlook, a nie dokument (jej załączniki mailbot czyta osobno)",
    ),
    (
        r"^winmail\.dat \(TNEF\), not a document \(its attachments are read by the mail pipeline\)$",
        "winmail.dat (TNEF), a nie dokument (jego załączniki mailbot czyta osobno)",
    ),
    (
        r"^zip archive, not a document \(its files are read by the mail pipeline\)$",
        "archiwum zip, a nie dokument (pliki z archiwum mailbot czyta osobno)",
    ),
    (r"^password-protected or unknown OLE2 document$", "dokument OLE2 zaszyfrowany hasłem albo nieznanego rodzaju"),
    (r"^unknown file format$", "nieznany format pliku"),
    (r"^(\S+) is not supported yet$", r"format \1 nie jest jeszcze obsługiwany"),
    (r"^no labels of the registration form found$", "nie ma w nim pól formularza zgłoszeniowego – to nie formularz"),
    # mailbot.forms.worker
    (
        r"^the reader process died \(exit code (-?\d+)\)$",
        r"proces odczytujący dokument zakończył się awaryjnie (kod wyjścia \1)",
    ),
    (
        r"^reading the document took longer than (\S+) s$",
        lambda m: f"odczyt dokumentu trwał dłużej niż {_decimal_pl(m.group(1))} s – przerwano",
    ),
    (r"^cannot start a reader process: (.+)$", r"nie udało się uruchomić procesu odczytu dokumentu (\1)"),
    # mailbot.forms.convert
    (r"^(\S+) cannot be converted to docx$", r"formatu \1 nie da się przekształcić w docx"),
    (
        r"^(.+) declares a DTD \(entity expansion / XXE attempt\)$",
        r"\1 zawiera deklarację DTD (możliwa próba ataku XXE) – odrzucono",
    ),
    (
        r"^LibreOffice is not installed \(no 'soffice' on PATH\): "
        r"ask the administrator to install the Debian package (\S+)$",
        r"brak programu LibreOffice (soffice) – administrator musi zainstalować pakiet Debiana \1",
    ),
    (
        r"^'prlimit' is missing: ask the administrator to install the Debian package (\S+)$",
        r"brak programu prlimit – administrator musi zainstalować pakiet Debiana \1",
    ),
    (r"^LibreOffice could not convert the (\S+) document(?:: (.+))?$", _libreoffice_pl),
    (r"^LibreOffice crashed \((.+)\)$", r"LibreOffice uległ awarii (\1)"),
    (r"^converted document is larger than (\d+) bytes$", r"dokument po konwersji jest za duży (ponad \1 bajtów)"),
    (r"^cannot start LibreOffice: (.+)$", r"nie udało się uruchomić LibreOffice (\1)"),
    (
        r"^document conversion timed out after (\S+) s$",
        lambda m: f"konwersja dokumentu przekroczyła limit czasu ({_decimal_pl(m.group(1))} s)",
    ),
    (
        r"^encrypted document \(password-protected \.doc\)$",
        "dokument .doc zaszyfrowany hasłem – nie da się go odczytać",
    ),
    # mailbot.forms.docx, .odt
    (r"^(.+) is not a WordprocessingML document$", r"\1 nie jest dokumentem programu Word (WordprocessingML)"),
    (r"^docx package has no main document part$", "w pliku docx brak głównej części dokumentu"),
    (r"^odt package has no content\.xml$", "w pliku odt brak części content.xml"),
    (r"^password-protected odt$", "dokument odt zaszyfrowany hasłem – nie da się go odczytać"),
    (r"^flat odt is too large$", "dokument fodt (płaski odt) jest za duży"),
    (r"^odt has no text body$", "dokument odt nie ma treści"),
    # mailbot.forms.pdf, .pdf_objects, .image
    (r"^encrypted PDF: needs a password$", "PDF zaszyfrowany hasłem – nie da się go odczytać"),
    (r"^damaged PDF: cannot load page (\d+)$", r"uszkodzony PDF: nie da się wczytać strony \1"),
    (r"^damaged PDF: (.+)$", _detail_pl("uszkodzony PDF ({})")),
    (r"^PDF has no pages$", "PDF nie ma ani jednej strony"),
    (r"^PDF has (\d+) pages \(limit (\d+)\)$", r"PDF ma za dużo stron: \1 (limit \2)"),
    (r"^PDF page has too many objects$", "strona PDF ma zbyt wiele obiektów"),
    (r"^PDF page has more than (\d+) text runs$", r"strona PDF ma ponad \1 fragmentów tekstu"),
    (r"^PDF took longer than (\d+) s to read$", r"odczyt PDF trwał dłużej niż \1 s – przerwano"),
    (r"^image has (\d+) pages \(limit (\d+)\)$", r"obraz ma za dużo stron: \1 (limit \2)"),
    (r"^image too large: (.+) \(limit (\d+)\)$", _pixels_pl),
    (r"^damaged or unsupported image$", "obraz uszkodzony albo w nieobsługiwanym formacie"),
    (r"^damaged image: empty$", "uszkodzony obraz: pusty"),
    (r"^damaged image: (.+)$", r"uszkodzony obraz (\1)"),
    # mailbot.forms.ocr
    (
        r"^OCR timed out after (\S+) s$",
        lambda m: f"rozpoznawanie tekstu (OCR) przekroczyło limit czasu ({_decimal_pl(m.group(1))} s)",
    ),
    (
        r"^OCR unavailable: (.+)$",
        lambda m: "rozpoznawanie tekstu (OCR) niedostępne: " + _translate(m.group(1), _OCR_MISSING_PL),
    ),
    (r"^OCR failed: (.+)$", r"rozpoznawanie tekstu (OCR) nie powiodło się (\1)"),
    # mailbot.forms.safety
    (r"^damaged zip package: (.+)$", _detail_pl("uszkodzony pakiet zip ({})")),
    (r"^zip package has (\d+) entries \(limit (\d+)\)$", r"pakiet zip ma za dużo plików: \1 (limit \2)"),
    (r"^encrypted zip package$", "pakiet zip zaszyfrowany hasłem – nie da się go odczytać"),
    (
        r"^zip entry (.+) is compressed suspiciously well \(zip bomb\?\)$",
        r"plik \1 w pakiecie zip jest podejrzanie mocno skompresowany (możliwa „bomba zip”) – nie otwarto",
    ),
    (
        r"^zip package would unpack to (\d+) bytes \(limit (\d+)\)$",
        r"pakiet zip po rozpakowaniu zająłby \1 bajtów (limit \2)",
    ),
    (r"^zip package has no (.+)$", r"w pakiecie zip brak części \1"),
    (r"^cannot unpack ('.*'): (.+)$", _unpack_pl),
    (r"^zip entry (.+) is larger than declared$", r"plik \1 w pakiecie zip jest większy, niż deklaruje pakiet"),
    (r"^(.+) is not well-formed XML: (.+)$", r"\1 nie jest poprawnym XML (\2)"),
    (r"^(.+) nests elements deeper than (\d+)$", r"\1 ma elementy zagnieżdżone głębiej niż \2 poziomów"),
    (r"^document has more than (\d+) paragraphs$", r"dokument ma ponad \1 akapitów"),
    (r"^document has more than (\d+) table rows$", r"dokument ma ponad \1 wierszy tabel"),
    (r"^(.+) is empty$", r"\1 jest pusty"),
)
"""Why :mod:`mailbot.forms` could not read a file (``FormData.reason`` of an unreadable
one, after "cannot read FILE: " in a review reason)."""

_VERDICT_KIND_PL = {"auto_reply": "automatyczna odpowiedź", "list": "lista mailingowa"}

_VERDICT_PL = _table(
    # mailbot.loopguard.classify: why a message with a form in it gets no automatic reply
    (r"^Auto-Submitted: \(empty\)$", "Auto-Submitted: (puste)"),
    (r"^X-Apple-Action: (.+) \(iCloud vacation reply\)$", r"X-Apple-Action: \1 (odpowiedź urlopowa iCloud)"),
    (r"^subject of an automatic reply: (.+)$", r"temat jak w automatycznej odpowiedzi: \1"),
    (r"^(.+?): (.+) \(mailing list\)$", r"\1: \2 (lista mailingowa)"),
)
"""Header values (``Precedence: bulk``, ``X-Autoreply: yes``) are kept as they came."""


def _no_reply_pl(match: re.Match[str]) -> str:
    kind = _VERDICT_KIND_PL.get(match.group(1), match.group(1))
    return f"bez automatycznej odpowiedzi – {kind} ({_translate(match.group(2), _VERDICT_PL)})"


def _kind_pl(kind: str) -> str:
    return _KIND_PL.get(kind, kind)


def _over_cap_pl(match: re.Match[str]) -> str:
    return (
        f"dzienny limit automatycznych wiadomości do {match.group(2)} wyczerpany"
        f" (dziś już {match.group(3)}) – nie wysłano: {_kind_pl(match.group(1))}"
    )


def _no_name_pl(names: str) -> str:
    return names.replace("(no name)", "(bez nazwiska)")


def _settled_pl(match: re.Match[str]) -> str:
    verb = "potwierdzono" if match.group(1) == "confirmed" else "poprawiono"
    how = match.group(3).removeprefix("(").removesuffix(")")
    said = re.fullmatch(r"confirmed \('(.*)'\)", how)
    fixed = re.fullmatch(r"corrected \((.*)\)", how)
    if how == "by its own message":
        why = "napisał(a) z tego adresu"
    elif said:
        why = f"odpowiedź: {_quote(said.group(1))}"
    elif fixed:
        why = f"poprawka w odpowiedzi: {fixed.group(1)}"
    else:
        why = how
    return f"{verb} adres e-mail: {_no_name_pl(match.group(2))} ({why}), zgłoszenie {match.group(4)}"


_REPROCESSED_OUTCOME_PL = {"registered": "zarejestrowana", "needs_review": "do przejrzenia", "ignored": "pominięta",
               "pending": "w trakcie"}
_REPROCESSED = re.compile(r"^(.*) \[reprocessed (\d{4})-(\d{2})-(\d{2}) (\d{2}:\d{2}); was (\w+)\]$", re.DOTALL)
_WHOLE_PL = _table(
    # Phrases with "; " inside, put in Polish before the reason is cut into parts.
    (
        r" \(Exchange automatic reply or system mail; the sender asks for no automatic answers\)",
        " (automatyczna odpowiedź z Exchange lub poczta systemowa – nadawca prosi, by nie odpowiadać automatycznie)",
    ),
)


_REASONS_PL: tuple[tuple[re.Pattern[str], _Replacement], ...] = _table(
    (r"^no registration form attached$", "brak formularza zgłoszeniowego w załączniku"),
    (r"^blank form returned unfilled$", "odesłano niewypełniony formularz"),
    (
        r"^cannot read (.+?): (.+)$",
        lambda m: f"nie udało się odczytać pliku {m.group(1)}: {_translate(m.group(2), _FILE_REASONS_PL)}",
    ),
    (
        r"^ask the administrator to install the Debian packages? (.+)$",
        r"administrator musi zainstalować pakiety Debiana: \1",
    ),
    (
        r"^message about (.+) without a form: for the organisers to read$",
        r"wiadomość w sprawie zgłoszenia \1, bez formularza – do przeczytania przez organizatorów",
    ),
    (
        r"^late registration (\S+) for (\S+) \(registration closed on (\d{4})-(\d{2})-(\d{2})\): .*$",
        r"zgłoszenie \1 po terminie (przyjmowanie zgłoszeń zakończono \5.\4.\3): zapisane bez miejsca"
        r" – decyzja należy do organizatorów",
    ),
    (r"^message too large \((\d+) bytes\)$", _too_large_pl),
    (r"^not opened$", "nie otwierano jej"),
    (r"^nothing changed, a person should read it$", "niczego nie zmieniono – wiadomość powinien przeczytać człowiek"),
    (r"^unclear: (.+)$", _unclear_pl),
    (r"^withdrawal: '(.+)' in (body|subject)$", _withdrawal_pl),
    (r"^cancelled (.+) on (\S+)$", lambda m: f"wykreślono z listy: {_no_name_pl(m.group(1))} (zgłoszenie {m.group(2)})"),
    (
        r"^reply to the organisers' daily digest: for a person, not answered$",
        "odpowiedź na zestawienie dzienne – dla człowieka, bez automatycznej odpowiedzi",
    ),
    (
        r"^too many documents: parsed the first (\d+), the rest not read$",
        r"za dużo dokumentów: odczytano pierwsze \1, pozostałych nie",
    ),
    (
        r"^time budget of (\S+) s spent after (\d+) documents?: the rest not read$",
        lambda m: f"wyczerpano czas na odczyt ({_decimal_pl(m.group(1))} s) po {m.group(2)} dok.:"
        " pozostałych nie odczytano",
    ),
    (
        r"^scan budget of (\d+) spent: (\d+) more scans? not read$",
        r"wyczerpano limit skanów (\1): nie odczytano kolejnych \2",
    ),
    (r"^(\d+) identical attachments? read once$", _identical_pl),
    (
        r"^no reply: (.+) is not an address we answer$",
        lambda m: "bez odpowiedzi: na adres "
        + ("(brak nadawcy)" if m.group(1) == "no sender" else m.group(1))
        + " mailbot nie odpowiada",
    ),
    (r"^no reply: (\w+) \((.+)\)$", _no_reply_pl),
    (
        r"^(confirmed|corrected) the e-mail of (.+?) (by its own message|\((?:confirmed|corrected) \(.*\)\)) on (\S+)$",
        _settled_pl,
    ),
    (
        r"^(registered|corrected) (\S+) for (\S+)(.*)$",
        lambda m: ("zarejestrowano" if m.group(1) == "registered" else "poprawiono")
        + f" zgłoszenie {m.group(2)} ({m.group(3)})" + _registered_tail_pl(m.group(4)),
    ),
    (
        r"^withdrawal from (.+?), but no open registration is linked to it$",
        lambda m: "wycofanie udziału od "
        + ("nieznanego nadawcy" if m.group(1) == "an unknown sender" else m.group(1))
        + ", ale nie pasuje do żadnego otwartego zgłoszenia",
    ),
    (
        r"^withdrawal, but it names nobody on the linked registrations$",
        "wycofanie udziału, ale bez wskazania osoby z powiązanych zgłoszeń",
    ),
    (
        r"^withdrawal from (.+) could mean any of (\d+) registrations \((.+)\)$",
        r"wycofanie udziału od \1 może dotyczyć każdego z \2 zgłoszeń (\3)",
    ),
    (r"^no (\w+) to (.+): already (\d+) automatic mails today$", _over_cap_pl),
    (
        r"^no (\w+) to (.+): daily cap reached$",
        lambda m: f"dzienny limit automatycznych wiadomości do {m.group(2)} wyczerpany"
        f" – nie wysłano: {_kind_pl(m.group(1))}",
    ),
    (r"^no no_form reply: no address we may answer$", "bez odpowiedzi: brak adresu, na który wolno odpowiedzieć"),
    (
        r"^(.+): the form names no known event and no default_event is configured$",
        r"\1: formularz nie wskazuje znanej konferencji (a konferencja domyślna – default_event – nie jest ustawiona)",
    ),
    (
        r"^(.+): corrects (\S+) after (\S+) took place$",
        r"\1: poprawka zgłoszenia \2 nadeszła po konferencji \3",
    ),
    (r"^not applied$", "nie uwzględniono jej"),
    (
        r"^(could not be stored|internal error while processing): (.+) \(failed (\d+) times\)$",
        lambda m: ("nie udało się zapisać wiadomości w bazie" if m.group(1) == "could not be stored"
                   else "błąd wewnętrzny podczas przetwarzania")
        + f": {m.group(2)} (nieudane próby: {m.group(3)})",
    ),
    (r"^could not be stored: (.+)$", r"nie udało się zapisać wiadomości w bazie: \1"),
    (r"^internal error while processing: (.+)$", r"błąd wewnętrzny podczas przetwarzania: \1"),
    (
        r"^`mailbot review reprocess` runs it again once the cause is fixed$",
        "gdy administrator usunie przyczynę, `mailbot review reprocess` przetworzy ją ponownie",
    ),
    (
        r"^recorded without its headers — read the raw mail, "
        r"`mailbot review reprocess` runs it again once the cause is fixed$",
        "zapisano ją bez nagłówków – trzeba przeczytać oryginał; gdy administrator usunie przyczynę,"
        " `mailbot review reprocess` przetworzy ją ponownie",
    ),
    (r"^answer about an unconfirmed e-mail address on (.+?) is unclear: (.+)$", _address_unclear_pl),
    (r"^e-mail address\(es\) on (.+) still unconfirmed$", r"adres e-mail w zgłoszeniu \1 nadal niepotwierdzony"),
    (r"^(\S+): event (\S+) is not configured$", r"\1: konferencja \2 nie jest skonfigurowana"),
    (r"^(\S+): (\S+) took place on (\d{4})-(\d{2})-(\d{2})$", r"\1: konferencja \2 odbyła się \5.\4.\3"),
    (r"^no mail$", "nie wysłano wiadomości"),
    (r"^organiser commands by (\S+) refused: (.+)$", r"polecenia e-mailem od \1 nie zostały wykonane: \2"),
    (r"^organiser commands by (\S+): (.+)$", r"polecenia e-mailem od \1: \2"),
    (r"^queued (.+)$", _queued_pl),
)
"""Every review reason :mod:`mailbot.ingest` writes (``; ``-separated parts), in Polish.
Kept as they are: file names, codes, addresses, header values, error class names and
the messages libraries give (pdfium, Pillow, zipfile, lxml, LibreOffice, the database);
command lines in backticks."""


def _registered_tail_pl(tail: str) -> str:
    """The notes :mod:`mailbot.ingest` appends to "registered CODE for EVENT"."""
    tail = re.sub(r" \(incomplete: (\d+) problem\(s\)\)", r" (niekompletne: braki – \1)", tail)
    tail = re.sub(r" \((\d+) on the waiting list\)", r" (na liście rezerwowej: \1)", tail)
    return re.sub(r" \((\d+) e-mail address\(es\) to confirm\)", r" (adresy e-mail do potwierdzenia: \1)", tail)


def reason_pl(reason: str | None) -> str | None:
    """A review reason in Polish for the organisers, part by part (``; ``-separated);
    parts with unknown wording are kept as they are."""
    if not reason:
        return reason
    tail = ""
    if (m := _REPROCESSED.match(reason)) is not None:
        reason = m.group(1)
        before = _REPROCESSED_OUTCOME_PL.get(m.group(6), m.group(6))
        tail = f" [przetworzono ponownie {m.group(4)}.{m.group(3)}.{m.group(2)} {m.group(5)}; wcześniej: {before}]"
    for pattern, replacement in _WHOLE_PL:
        reason = pattern.sub(replacement, reason)
    parts = [_translate(part, _REASONS_PL) for part in reason.split("; ")] if reason else []
    return ("; ".join(parts) + tail).strip()


@dataclass
class _ReviewRow:
    inbound: InboundMessage
    attachments: list[StoredAttachment]
    events: tuple[str, ...]
    made: bool = False
    """The message registered (or corrected) a registration: ``fix`` acts on it."""
    unconfirmed: tuple[int, ...] = ()
    """Numbers (from 1) of the participants whose address waits for confirmation, on the
    one registration the message made or names."""


def _review_rows(session: Session, settings: Settings, now: dt.datetime) -> list[_ReviewRow]:
    """Messages waiting for review — needs_review, not yet resolved (``mailbot review``),
    not purged — each with the events it is tied to, oldest first."""
    query = (
        select(InboundMessage)
        .where(
            InboundMessage.outcome == "needs_review",
            col(InboundMessage.resolution).is_(None),
            col(InboundMessage.purged_at).is_(None),
            col(InboundMessage.received_at) <= now,
        )
        .order_by(col(InboundMessage.received_at), col(InboundMessage.id))
    )
    messages = list(session.exec(query).all())
    if not messages:
        return []
    ids = [m.id for m in messages if m.id is not None]
    known = {e.key for e in settings.events}
    attachments: dict[int, list[StoredAttachment]] = {}
    for att in session.exec(
        select(StoredAttachment).where(col(StoredAttachment.inbound_id).in_(ids)).order_by(col(StoredAttachment.id))
    ).all():
        attachments.setdefault(att.inbound_id, []).append(att)
    tied: dict[int, dict[str, None]] = {i: {} for i in ids}
    for inbound_id, event_key in session.exec(
        select(Registration.source_inbound_id, Registration.event_key).where(
            col(Registration.source_inbound_id).in_(ids)
        )
    ).all():
        tied[inbound_id].setdefault(event_key, None)
    for answered, event_key in session.exec(
        select(OutboundMail.inbound_id, Registration.event_key)
        .join(Registration, col(Registration.id) == col(OutboundMail.registration_id))
        .where(col(OutboundMail.inbound_id).in_(ids))
    ).all():
        if answered is not None:
            tied[answered].setdefault(event_key, None)
    codes: dict[int, list[str]] = {}
    for m in messages:
        assert m.id is not None
        for att in attachments.get(m.id, []):
            event = _event_of_parse(att.parse_json)
            if event:
                tied[m.id].setdefault(event, None)
        found = find_codes(f"{m.subject or ''}\n{m.reason or ''}")
        if found:
            codes[m.id] = found
    all_codes = sorted({c for cs in codes.values() for c in cs})
    if all_codes:
        event_of_code = dict(
            session.exec(
                select(Registration.code, Registration.event_key).where(col(Registration.code).in_(all_codes))
            ).all()
        )
        for inbound_id, cs in codes.items():
            for c in cs:
                if c in event_of_code:
                    tied[inbound_id].setdefault(event_of_code[c], None)
    made = set(
        session.exec(select(Registration.source_inbound_id).where(col(Registration.source_inbound_id).in_(ids))).all()
    )
    return [
        _ReviewRow(
            m, attachments.get(m.id or -1, []), tuple(k for k in tied[m.id or -1] if k in known),
            made=m.id in made, unconfirmed=_unconfirmed_numbers(session, m, codes.get(m.id or -1, [])),
        )
        for m in messages
    ]


def _unconfirmed_numbers(session: Session, inbound: InboundMessage, codes: Sequence[str]) -> tuple[int, ...]:
    """Participants (from 1) with an unconfirmed address on the single registration the
    message made, else the single one it names by code (what ``review confirm`` acts on
    without ``--registration``)."""
    regs = list(session.exec(select(Registration).where(Registration.source_inbound_id == inbound.id)).all())
    if not regs and codes:
        regs = list(session.exec(select(Registration).where(col(Registration.code).in_(list(codes)))).all())
    if len(regs) != 1 or regs[0].id is None:
        return ()
    people = session.exec(
        select(Participant).where(Participant.registration_id == regs[0].id).order_by(col(Participant.position))
    ).all()
    return tuple(i + 1 for i, p in enumerate(people) if p.email_check == UNCONFIRMED and p.status != "cancelled")


def _event_of_parse(parse_json: str | None) -> str | None:
    if not parse_json:
        return None
    try:
        data = json.loads(parse_json)
    except ValueError:
        return None
    event = data.get("event") if isinstance(data, dict) else None
    return event if isinstance(event, str) and event else None


def _targets(row: _ReviewRow, settings: Settings, today: dt.date) -> tuple[str, ...]:
    """The events whose organisers see the item: the ones it is tied to (that have
    organisers), else every event still open."""
    with_organisers = {e.key for e in settings.events if _organisers(e)}
    tied = tuple(k for k in row.events if k in with_organisers)
    if tied:
        return tied
    return tuple(e.key for e in settings.events if e.date >= today and e.key in with_organisers)


EXCERPT_SOURCE_BYTES = 2 * 1024 * 1024
"""Only the start of a message is read for its excerpt: the text comes before the
attachments, and a 20 MB scan need not be decoded every morning."""


def _excerpt(inbound: InboundMessage, settings: Settings, blobs: BlobStore | None) -> str | None:
    """The start of what the sender wrote, quotes cut; None when unreadable or not stored."""
    if blobs is None or inbound.size > settings.limits.max_message_bytes:
        return None
    try:
        if not blobs.exists(inbound.raw_sha256):
            return None
        with blobs.path_for(inbound.raw_sha256).open("rb") as f:
            raw = f.read(EXCERPT_SOURCE_BYTES)
    except OSError:
        return None
    limits = settings.limits
    parsed = parse_message(
        raw,
        MimeLimits(
            max_parts=limits.max_mime_parts,
            max_attachment_bytes=limits.max_attachment_bytes,
            max_zip_entries=limits.max_zip_entries,
            max_zip_total=limits.max_decompressed_bytes,
        ),
    )
    own = strip_quoted(parsed.text[:200_000]) if parsed.text else ""
    lines = [line.rstrip() for line in own.splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if not text:
        return None
    if len(text) > EXCERPT_CHARS:
        text = text[:EXCERPT_CHARS].rsplit(" ", 1)[0] + " …"
    return text


def _safe_filename(name: str) -> str:
    cleaned = re.sub(r"[\x00-\x1f\x7f/\\]+", "_", name).strip() or "plik"
    return cleaned[:150]


# --- e-mail commands ------------------------------------------------------------------

TOKEN_CHARS = 10
"""Base32 characters of a command token: 50 bits of an HMAC-SHA256, plenty against
guessing (a wrong token changes nothing and is answered, never retried in bulk)."""


def command_token(secret: bytes, inbound_id: int, day: dt.date, event_key: str) -> str:
    """The token of review item ``inbound_id`` in the digest of ``event_key`` of ``day``:
    HMAC-SHA256 with the server secret over the three, base32, :data:`TOKEN_CHARS`
    characters. Quoting it proves the sender had that digest; it names the event, so
    only that event's organisers may act with it."""
    message = f"mailbot-command\0{inbound_id}\0{day.isoformat()}\0{event_key}".encode()
    mac = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.b32encode(mac).decode("ascii")[:TOKEN_CHARS]


def token_tag(inbound_id: int, token: str) -> str:
    """How the digest prints a token next to its item: ``[#12 K7Q2M6XA4B]``."""
    return f"[#{inbound_id} {token}]"


def item_commands(inbound_id: int, *, made: bool, unconfirmed: Sequence[int]) -> tuple[str, ...]:
    """The commands the digest offers for an item: accept and reject always; fix for a
    message that made a registration, reprocess for one that made none (``review
    reprocess`` refuses the others); confirm for each participant whose address waits."""
    n = inbound_id
    out = [f"PRZYJMIJ {n}", f"ODRZUĆ {n}"]
    if made:
        out.append(f"POPRAW {n} …")
    else:
        out.append(f"PRZETWÓRZ {n}")
    out += [f"POTWIERDŹ {n} {k}" for k in unconfirmed]
    return tuple(out)


def with_commands(digest: Digest, secret: bytes | None) -> Digest:
    """``digest`` with each review item's token for this digest (event, day), or as it
    is without a secret."""
    if secret is None:
        return digest
    items = tuple(
        replace(item, token=command_token(secret, item.inbound_id, digest.local_date, digest.event.key))
        for item in digest.review
    )
    return replace(digest, review=items)


def command_secret(settings: Settings) -> bytes | None:
    """The server secret of e-mail commands, or None when it is not configured or cannot
    be read (logged: the digest then goes without commands rather than not at all)."""
    try:
        return settings.digest.resolve_command_secret()
    except ConfigError as e:
        log.error("digest e-mail commands are off: %s", e)
        return None


def _review_items(
    rows: Sequence[_ReviewRow],
    settings: Settings,
    since: dt.datetime | None,
    now: dt.datetime,
    blobs: BlobStore | None,
    budget: int,
    excerpts: dict[int, str | None],
) -> list[ReviewItem]:
    """Items with their files. The files of items new since the last digest are attached
    in order while they fit in ``budget``; older items' files went with an earlier digest.
    ``excerpts`` caches the texts by message id (one item may go to several events)."""
    left = budget
    seen: dict[str, str] = {}
    items = []
    for row in rows:
        m = row.inbound
        assert m.id is not None
        new = _in_window(m.received_at, since, now)
        files = []
        for att in row.attachments:
            assert att.id is not None
            name = _safe_filename(f"{m.ref}-{att.filename}")
            note: str | None = None
            if not new:
                note = "dołączony do wcześniejszego zestawienia"
            elif att.sha256 in seen:
                note = f"ten sam plik co {seen[att.sha256]}"
            elif att.size > left:
                note = "za duży, by dołączyć go do zestawienia (jest w skrzynce, w folderze do przejrzenia)"
            included = note is None
            if included:
                left -= att.size
                seen[att.sha256] = name
            files.append(
                ReviewFile(
                    attachment_id=att.id,
                    filename=name,
                    original_name=att.filename,
                    content_type=att.content_type,
                    sha256=att.sha256,
                    size=att.size,
                    included=included,
                    note=note,
                )
            )
        items.append(
            ReviewItem(
                inbound_id=m.id,
                ref=m.ref,
                received_at=_local(m.received_at, settings),
                sent_at=_local_or_none(m.sent_at, settings),
                sender=m.from_addr,
                sender_name=m.from_name,
                subject=m.subject,
                reason=m.reason,
                reason_pl=reason_pl(m.reason),
                excerpt=excerpts[m.id] if m.id in excerpts else excerpts.setdefault(m.id, _excerpt(m, settings, blobs)),
                files=tuple(files),
                events=row.events,
                new=new,
                commands=item_commands(m.id, made=row.made, unconfirmed=row.unconfirmed),
            )
        )
    return items


# --- one event ----------------------------------------------------------------------


def _build_one(
    session: Session,
    settings: Settings,
    event: EventSettings,
    now: dt.datetime,
    since: dt.datetime | None,
    review_rows: Sequence[_ReviewRow],
    blobs: BlobStore | None,
    budget: int,
    excerpts: dict[int, str | None],
) -> Digest:
    data = _load_event(session, event.key)
    queue = _queue(data)
    waiting = _waiting_list(queue, data, settings)
    positions = {p.id: i for i, p in enumerate(queue, start=1) if p.id is not None}
    new = _new_registrations(data, settings, since, now, positions)
    corrections, removed = _corrections_and_removed(session, data, settings, since, now)
    withdrawn = sorted(_withdrawn(data, settings, since, now) + removed, key=lambda w: (w.at, w.code))
    late = _late(data, settings, since, now)
    bounces, autos = _bounces_and_auto_replies(session, data, settings, since, now)
    holding = [r for r in data.regs.values() if r.status in HOLDING]
    seated = sum(
        1 for r in holding for p in data.people.get(r.id or -1, []) if p.status == "confirmed"
    )
    totals = Totals(
        capacity=event.capacity,
        seated=seated,
        free=None if is_unlimited(event.capacity) else max(0, event.capacity - seated),
        waiting=len(waiting),
        registrations=len(holding),
        incomplete=sum(1 for r in holding if r.status == "incomplete"),
        people=sum(
            1 for r in holding for p in data.people.get(r.id or -1, []) if p.status in ("confirmed", "waitlisted")
        ),
        withdrawn_since=len(withdrawn),
        late=len(late),
    )
    groups, plain = _remarks(data)
    return Digest(
        event=event,
        recipients=_organisers(event),
        local_date=now.astimezone(settings.tz).date(),
        generated_at=now.astimezone(settings.tz),
        since=_local_or_none(since, settings),
        new_registrations=tuple(new),
        corrections=tuple(corrections),
        totals=totals,
        waiting_list=tuple(waiting),
        withdrawn=tuple(withdrawn),
        late=tuple(late),
        bounces=tuple(bounces),
        auto_replies=tuple(autos),
        review=tuple(_review_items(review_rows, settings, since, now, blobs, budget, excerpts)),
        unconfirmed=tuple(_unconfirmed(data, settings, since, now)),
        workshops=tuple(_workshops(data, event)),
        institution_types=tuple(_institution_types(data)),
        remark_groups=tuple(groups),
        plain_remarks=tuple(plain),
        seats_by_day=tuple(_seats_by_day(data, settings)),
    )


def build_digests(
    session: Session,
    settings: Settings,
    now: dt.datetime,
    *,
    event_key: str | None = None,
    blobs: BlobStore | None = None,
    attachment_budget: int = MAX_ATTACHMENT_BYTES,
) -> list[Digest]:
    """Today's digests: one per event with organisers (or just ``event_key``'s, even
    without organisers or news). Events still to come always get one; past events only
    when something new happened. ``blobs`` adds the start of each review message's text.
    Reads only; renders nothing."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    today = now.astimezone(settings.tz).date()
    if event_key is not None:
        try:
            chosen = [settings.event(event_key)]
        except KeyError:
            raise ConfigError(f"{event_key!r} is not a configured event key") from None
    else:
        chosen = [e for e in settings.events if _organisers(e)]
    if not chosen:
        return []
    sinces = [last_digest_at(session, e.key, _day_start(settings, now)) for e in chosen]
    all_rows = _review_rows(session, settings, now)
    digests = []
    excerpts: dict[int, str | None] = {}
    for event, since in zip(chosen, sinces, strict=True):
        rows = [r for r in all_rows if event.key in _targets(r, settings, today)]
        digest = _build_one(session, settings, event, now, since, rows, blobs, attachment_budget, excerpts)
        if event_key is None and event.date < today and not digest.has_news:
            continue
        digests.append(digest)
    return digests


# --- the chart ------------------------------------------------------------------------

CHART_SIZE_INCHES = (6.0, 2.5)
CHART_DPI = 100


def chart_png(digest: Digest) -> bytes | None:
    """A small PNG of :attr:`Digest.seats_by_day` (seated people, cumulative by day of
    registration) with the event's capacity as a horizontal line; None when nobody is
    registered. Drawn with matplotlib's Agg backend in memory: no display, nothing
    written to disk (matplotlib's font cache aside, which it keeps on its own)."""
    points = digest.seats_by_day
    if not points:
        return None
    import io

    from matplotlib.figure import Figure  # a Figure of its own: no pyplot, no display

    fig = Figure(figsize=CHART_SIZE_INCHES, dpi=CHART_DPI)
    ax = fig.add_subplot()
    x = list(range(len(points)))  # day numbers: labelled below as "dd.mm"
    seated = [p.seated for p in points]
    if len(x) == 1:  # one day: a dot, and room either side so the axis has a width
        ax.plot(x, seated, "o", color="#1f4e79")
        ax.set_xlim(-1, 1)
    else:
        ax.step(x, seated, where="post", color="#1f4e79", linewidth=2)
        ax.fill_between(x, seated, step="post", color="#1f4e79", alpha=0.12)
        ax.set_xlim(0, len(x) - 1)
    capacity = digest.event.capacity
    top = max(seated)
    if not is_unlimited(capacity):
        ax.axhline(capacity, color="#a33", linestyle="--", linewidth=1.2)
        ax.annotate(f"limit miejsc: {capacity}", xy=(0.01, capacity), xycoords=("axes fraction", "data"),
                    xytext=(0, 3), textcoords="offset points", color="#a33", fontsize=8)
        top = max(top, capacity)
    ax.set_ylim(0, top * 1.15 + 1)
    ax.set_ylabel("miejsca zajęte", fontsize=8)
    step = max(1, -(-len(x) // 8))  # at most 8 labelled days
    ticks = x[::step]
    ax.set_xticks(ticks, [points[i].day.strftime("%d.%m") for i in ticks])
    ax.tick_params(labelsize=8)
    ax.grid(axis="y", color="#ddd", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout(pad=0.4)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=CHART_DPI, metadata={"Software": None})
    return buf.getvalue()


def chart_cid(digest: Digest, settings: Settings) -> str:
    """The Content-ID (without angle brackets) the HTML part's ``<img src="cid:…">``
    names: unique per event and day, in the sender's domain."""
    domain = settings.outbox.from_address.rpartition("@")[2] or "mailbot.invalid"
    return f"chart-{digest.event.key}-{digest.local_date.isoformat()}@{domain}"


def embed_chart(message: EmailMessage, png: bytes, cid: str) -> None:
    """Put ``png`` next to the HTML part as an inline image (``multipart/related``
    with ``Content-ID: <cid>``), where mail clients show it in the text of the mail;
    the plain-text part stays as it is."""
    html = message.get_body(("html",))
    if html is None:
        raise ValueError("the digest has no HTML part to put the chart in")
    html.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>", disposition="inline",
                     filename="wykres-miejsc.png")


# --- rendering and queueing -----------------------------------------------------------


def _content_type(value: str) -> str:
    base = value.split(";", 1)[0].strip().lower()
    if not _MIME_TYPE.match(base) or base.startswith(("multipart/", "message/")):
        return "application/octet-stream"
    return base


def organised_by(settings: Settings, address: str) -> list[str]:
    """Keys of the events ``address`` organises, in config order."""
    key = address.casefold()
    return [e.key for e in settings.events if key in _organisers(e)]


def xlsx_name(events: Sequence[str], day: dt.date) -> str:
    stem = f"uczestnicy-{events[0]}" if len(events) == 1 else "uczestnicy"
    return f"{stem}-{day.isoformat()}.xlsx"


def digest_context(
    digest: Digest,
    settings: Settings,
    *,
    recipient: str,
    attachments: Sequence[str],
    workbook: str,
    commands: bool = False,
    chart: str | None = None,
) -> dict[str, Any]:
    """What ``digest.*.j2`` sees; ``commands``: e-mail commands are on (the items carry
    their tokens, the mail explains how to answer)."""
    return {
        "kind": KIND,
        "digest": digest,
        "event": event_context(digest.event),
        "totals": digest.totals,
        "signature": settings.signature,
        "organiser_email": settings.outbox.from_address,
        "recipient": recipient,
        "attachments": list(attachments),
        "left_out": list(digest.left_out),
        "workbook": workbook,
        "today": digest.local_date,
        "review_folder": settings.mailbox.folders.needs_review,
        "commands_enabled": commands,
        "chart_cid": chart,
    }


def _with_blobs(digest: Digest, blobs: BlobStore) -> tuple[Digest, list[FileAttachment]]:
    """Read the included files; one that is gone (purged, disk trouble) is named instead."""
    files: list[FileAttachment] = []
    items = []
    for item in digest.review:
        new_files = []
        for f in item.files:
            if f.included:
                try:
                    data = blobs.get(f.sha256)
                except OSError:
                    f = replace(f, included=False, note="pliku nie ma już w archiwum")
                else:
                    files.append(FileAttachment(f.filename, _content_type(f.content_type), data))
            new_files.append(f)
        items.append(replace(item, files=tuple(new_files)))
    return replace(digest, review=tuple(items)), files


def queue_digests(
    session: Session,
    settings: Settings,
    templates: Templates,
    blobs: BlobStore,
    now: dt.datetime,
    *,
    event_key: str | None = None,
    dry_run: bool = False,
    attachment_budget: int = MAX_ATTACHMENT_BYTES,
) -> list[DigestResult]:
    """Render and queue today's digests, one per event and organiser address; a mail
    already queued today (same dedupe key) is not queued again. ``dry_run`` renders and
    composes every mail (also those already sent) and queues nothing. No commit here."""
    results: list[DigestResult] = []
    workbooks: dict[tuple[str, ...], bytes] = {}
    rows_of: dict[str, list[export.RegistrationRow]] = {}
    sender = Sender(settings.outbox.from_address, settings.outbox.from_name)
    secret = command_secret(settings)
    for built in build_digests(
        session, settings, now, event_key=event_key, blobs=blobs, attachment_budget=attachment_budget
    ):
        digest, files = _with_blobs(with_commands(built, secret), blobs)
        left_out = tuple(f.filename for f in digest.left_out)
        png = chart_png(digest)
        cid = chart_cid(digest, settings) if png is not None else None
        for address in digest.recipients:
            key = digest_dedupe_key(digest.event.key, digest.local_date, address)
            existing = session.exec(select(OutboundMail).where(OutboundMail.dedupe_key == key)).first()
            if existing is not None and not dry_run:
                results.append(
                    DigestResult(digest.event.key, address, key, "already_sent", existing.subject, 0,
                                 (), left_out, None, existing.id)
                )
                continue
            events = organised_by(settings, address) or [digest.event.key]
            if digest.event.key not in events:
                events.insert(0, digest.event.key)
            book_key = tuple(events)
            if book_key not in workbooks:
                rows = []
                for key_ in events:
                    if key_ not in rows_of:
                        rows_of[key_] = export.load_rows(session, key_)
                    rows.extend(rows_of[key_])
                workbooks[book_key] = export.to_xlsx(rows, events=events)
            workbook = FileAttachment(xlsx_name(events, digest.local_date), XLSX_MIME, workbooks[book_key])
            attachments = [workbook, *files]
            rendered = templates.render(
                KIND,
                digest_context(
                    digest, settings, recipient=address,
                    attachments=[a.filename for a in attachments], workbook=workbook.filename,
                    commands=secret is not None, chart=cid,
                ),
            )
            message = compose(
                sender=sender,
                to=address,
                to_name=None,
                rendered=rendered,
                kind=KIND,
                dedupe_key=key,
                ref=dedupe_ref(key),
                now=now,
                attachments=attachments,
                auto_submitted="auto-generated",
            )
            if png is not None and cid is not None:
                embed_chart(message, png, cid)
            names = tuple(a.filename for a in attachments)
            if dry_run:
                results.append(
                    DigestResult(digest.event.key, address, key, "dry_run", rendered.subject,
                                 len(message.as_bytes()), names, left_out, rendered,
                                 existing.id if existing else None)
                )
                continue
            row = enqueue(
                session,
                message=message,
                kind=KIND,
                dedupe_key=key,
                to=address,
                bcc=(),  # outbox.bcc copies participant mail to the organisers; not this
                now=now,
            )
            assert row is not None
            size = len(row.raw)
            log.info("queued digest %s → %s (%d bytes)", digest.event.key, address, size)
            results.append(
                DigestResult(digest.event.key, address, key, "queued", rendered.subject, size,
                             names, left_out, rendered, row.id)
            )
    return results


def _kb(size: int) -> str:
    return f"{size / 1024:.0f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB"


def summarise(results: Iterable[DigestResult], *, dry_run: bool = False, with_text: bool = False) -> str:
    """Lines for the command line: one per mail, then a total."""
    results = list(results)
    lines = []
    for r in results:
        what = {"queued": "queued", "already_sent": "already queued today", "dry_run": "would queue"}[r.status]
        extra = f" ({_kb(r.size)}, {len(r.attachments)} attachment(s))" if r.size else ""
        lines.append(f"{what}: digest {r.event_key} → {r.address}{extra}: {r.subject}")
        if r.left_out:
            lines.append(f"  not attached (named in the mail): {', '.join(r.left_out)}")
        if with_text and r.rendered is not None:
            lines.extend(["", *("  " + line if line else "" for line in r.rendered.text.splitlines()), ""])
    queued = sum(1 for r in results if r.queued)
    if not results:
        lines.append("no digest to send (no event with organisers, or nothing new for past events)")
    elif dry_run:
        lines.append(f"dry run: {len(results)} digest(s) rendered, nothing queued")
    else:
        lines.append(f"{queued} digest(s) queued, {len(results) - queued} already queued today")
    return "\n".join(lines)


def run_digest_command(app: App, event_key: str | None, dry_run: bool) -> str:
    """``mailbot digest [--event KEY] [--now ISO] [--dry-run]``: queue (and deliver) the
    digests at the app's clock; returns the text to print. A dry run prints each mail's
    text part and queues nothing. Raises ConfigError for an unknown event key."""
    now = app.clock()
    with app.exclusive("digest"), app.session() as session:
        results = queue_digests(
            session, app.settings, app.templates, app.blobs, now, event_key=event_key, dry_run=dry_run
        )
        if not dry_run:
            session.commit()
    text = summarise(results, dry_run=dry_run, with_text=dry_run)
    if not dry_run and any(r.queued for r in results):
        stats = app.deliver()
        text += (
            f"\nsent {stats.sent}, retrying {stats.retried}, failed {stats.failed}"
            + (f", {stats.deferred} left for the next run" if stats.deferred else "")
        )
    return text
