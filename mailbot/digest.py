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

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func
from sqlmodel import Session, col, select

from mailbot import export
from mailbot.config import EventSettings, Settings, is_unlimited
from mailbot.errors import ConfigError
from mailbot.intent import find_codes, strip_quoted
from mailbot.mime import MimeLimits, parse_message
from mailbot.outbox import FileAttachment, Sender, compose, enqueue
from mailbot.registrations import UNCONFIRMED, Change, _snapshot, describe_changes, people_keys
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
from mailbot.templating import Rendered, Templates

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
    at: dt.datetime | None
    count: int
    who: tuple[str, ...]
    """The people (or "zgłaszający KOD") the address belongs to."""
    new: bool


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


def _owners(data: _EventData) -> dict[str, list[str]]:
    """Address → who it belongs to, for every address of the event we write to."""
    owners: dict[str, list[str]] = {}
    for reg in data.regs.values():
        if reg.status == "cancelled":
            continue
        for p in data.people.get(reg.id or -1, []):
            addr = norm_address(p.email)
            if addr and p.status != "cancelled":
                label = f"{p.full_name or '(bez nazwiska)'} ({reg.code})"
                if label not in owners.setdefault(addr, []):
                    owners[addr].append(label)
        sender = norm_address(reg.sender_email)
        if sender:
            label = f"zgłaszający {reg.code}"
            if label not in owners.setdefault(sender, []):
                owners[sender].append(label)
    return owners


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
    owners = _owners(data)
    bounces: list[Bounce] = []
    autos: list[AutoReply] = []
    for state in _address_states(session, sorted(owners)):
        who = tuple(owners.get(state.address, ()))
        if state.bouncing:
            bounces.append(
                Bounce(
                    address=state.address,
                    reason=state.last_bounce_reason,
                    at=_local_or_none(state.last_bounce_at, settings),
                    count=state.bounce_count,
                    who=who,
                    new=_in_window(state.last_bounce_at, since, now),
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
}


def _too_large_pl(match: re.Match[str]) -> str:
    return f"wiadomość za duża ({int(match.group(1)) / 1024 / 1024:.1f} MB)".replace(".", ",")


def _queued_pl(match: re.Match[str]) -> str:
    items = []
    for item in match.group(1).split(", "):
        kind, _, to = item.partition(" → ")
        items.append(f"{_KIND_PL.get(kind, kind)} → {to}" if to else item)
    return "wysłano automatycznie: " + ", ".join(items)


_REASONS_PL: tuple[tuple[re.Pattern[str], str | Any], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"^no registration form attached$", "brak formularza zgłoszeniowego w załączniku"),
        (r"^blank form returned unfilled$", "odesłano niewypełniony formularz"),
        (r"^cannot read (.+?): (.+)$", r"nie udało się odczytać pliku \1 (\2)"),
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
        (r"^unclear: (.+)$", r"niejasne, czy to wycofanie udziału: \1"),
        (
            r"^withdrawal from (.+?), but no open registration is linked to it$",
            r"wycofanie udziału od \1, ale nie pasuje do żadnego otwartego zgłoszenia",
        ),
        (
            r"^withdrawal, but it names nobody on the linked registrations$",
            "wycofanie udziału, ale bez wskazania osoby z powiązanych zgłoszeń",
        ),
        (
            r"^withdrawal from (.+) could mean any of (\d+) registrations \((.+)\)$",
            r"wycofanie udziału od \1 może dotyczyć każdego z \2 zgłoszeń (\3)",
        ),
        (
            r"^no (\w+) to (.+): already (\d+) automatic mails today$",
            r"bez odpowiedzi do \2: dziś wysłano tam już \3 automatycznych wiadomości",
        ),
        (r"^no no_form reply: no address we may answer$", "bez odpowiedzi: brak adresu, na który wolno odpowiedzieć"),
        (
            r"^(.+): the form names no known event and no default_event is configured$",
            r"\1: formularz nie wskazuje znanej konferencji",
        ),
        (
            r"^(.+): corrects (\S+) after (\S+) took place; not applied$",
            r"\1: poprawka zgłoszenia \2 po konferencji – nie uwzględniono",
        ),
        (r"^internal error while processing: (.+)$", r"błąd wewnętrzny podczas przetwarzania: \1"),
        (
            r"^answer about an unconfirmed e-mail address on (.+?) is unclear: (.+)$",
            r"niejasna odpowiedź w sprawie niepotwierdzonego adresu e-mail (zgłoszenie \1): \2",
        ),
        (r"^e-mail address\(es\) on (.+) still unconfirmed$", r"adres e-mail w zgłoszeniu \1 nadal niepotwierdzony"),
        (r"^queued (.+)$", _queued_pl),
    )
)


def reason_pl(reason: str | None) -> str | None:
    """A review reason in Polish for the organisers, part by part (``; ``-separated);
    parts with unknown wording are kept as they are."""
    if not reason:
        return reason
    parts = []
    for part in reason.split("; "):
        for pattern, replacement in _REASONS_PL:
            if pattern.match(part):
                part = pattern.sub(replacement, part, count=1)
                break
        parts.append(part)
    return "; ".join(parts)



@dataclass
class _ReviewRow:
    inbound: InboundMessage
    attachments: list[StoredAttachment]
    events: tuple[str, ...]


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
    return [
        _ReviewRow(m, attachments.get(m.id or -1, []), tuple(k for k in tied[m.id or -1] if k in known))
        for m in messages
    ]


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
) -> dict[str, Any]:
    """What ``digest.*.j2`` sees."""
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
    for built in build_digests(
        session, settings, now, event_key=event_key, blobs=blobs, attachment_budget=attachment_budget
    ):
        digest, files = _with_blobs(built, blobs)
        left_out = tuple(f.filename for f in digest.left_out)
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
