"""Retention: personal data is kept for ``retention_days`` after its event, then purged.

What goes, ``retention_days`` after an event's date (``Settings.retention_days``):

- participants' names, job titles, phone numbers and e-mail addresses (also an address
  as the reader read it with doubt, its suggestion and note);
- registrations' institution fields, remarks, sender and the problems (which quote
  values), and the earlier versions kept of them;
- the inbound messages tied to the event (they registered, corrected or withdrew one
  of its registrations, or were answered about one): sender, subject, Message-ID,
  reason, warnings, review notes and history; their attachments' names, origins and
  parsed contents;
- the replies about those registrations and messages: their bytes, addresses, subject
  and dedupe key;
- the raw messages and attachments on disk (``state_dir/blobs``), unless the same
  bytes are still referenced by something not purged (blobs are content-addressed);
- the bounce/auto-reply state (``address_status``) of the addresses purged, unless an
  address is still in use for another event.

A message tied to no event (no form, a question, a bounce, an auto-reply) is purged
``retention_days`` after it arrived. A mail tied to neither a registration nor a message
(the organisers' digest) goes with the event its dedupe key names (``kind:event:…``),
else ``retention_days`` after it was queued. An event no longer in the configuration counts from its registrations' last
change. What stays is anonymous: the rows themselves (statuses, dates, codes, counts)
and one ``purged_event`` row per event with the organisers' statistics.

A registration or message with a reply still waiting to be sent is left for the next
run (the reply must go out whole). :func:`purge` is idempotent: rows are marked
``purged_at`` and never counted twice; files a crash left behind are removed next time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlmodel import Session, col, select

from mailbot.config import Settings
from mailbot.store.blobs import BlobStore
from mailbot.store.tables import (
    AddressStatus,
    CalendarSequence,
    InboundMessage,
    OutboundMail,
    Participant,
    PurgedEvent,
    Registration,
    RegistrationVersion,
    StoredAttachment,
)

log = logging.getLogger(__name__)

_PENDING = ("queued", "retry", "sending")


@dataclass
class EventPurge:
    """What one run purged of one event."""

    event_key: str
    event_date: dt.date | None
    registrations: int = 0
    participants: int = 0
    messages: int = 0


@dataclass
class PurgeReport:
    """Counts of what was (or, in a dry run, would be) removed."""

    now: dt.datetime
    dry_run: bool
    events: list[EventPurge] = field(default_factory=list)
    registrations: int = 0
    participants: int = 0
    registration_versions: int = 0
    inbound_messages: int = 0
    attachments: int = 0
    outbound_mails: int = 0
    address_statuses: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    postponed: list[str] = field(default_factory=list)
    """What was due but left for the next run, and why (a reply still to be sent)."""

    @property
    def nothing(self) -> bool:
        return not any(
            (
                self.registrations,
                self.participants,
                self.registration_versions,
                self.inbound_messages,
                self.attachments,
                self.outbound_mails,
                self.address_statuses,
                self.blobs,
            )
        )

    def counts(self) -> dict[str, int]:
        return {
            "registrations": self.registrations,
            "participants": self.participants,
            "registration_versions": self.registration_versions,
            "inbound_messages": self.inbound_messages,
            "attachments": self.attachments,
            "outbound_mails": self.outbound_mails,
            "address_statuses": self.address_statuses,
            "blobs": self.blobs,
            "blob_bytes": self.blob_bytes,
        }


def render_report(report: PurgeReport) -> str:
    """What ``mailbot purge`` prints."""
    verb = "would be purged" if report.dry_run else "purged"
    head = f"Retention at {report.now.isoformat(timespec='minutes')}" + (" (dry run: nothing changed)" if report.dry_run else "")
    if report.nothing and not report.postponed:
        return f"{head}\nNothing to purge."
    lines = [head]
    for e in report.events:
        date = e.event_date.isoformat() if e.event_date else "not configured"
        lines.append(
            f"  {e.event_key} ({date}): {e.registrations} registration(s), {e.participants} participant(s), "
            f"{e.messages} message(s) {verb}"
        )
    lines.append(
        f"  {report.registrations} registration(s), {report.participants} participant(s), "
        f"{report.registration_versions} earlier version(s), {report.inbound_messages} message(s), "
        f"{report.attachments} attachment(s), {report.outbound_mails} reply(ies), "
        f"{report.address_statuses} address state(s) {verb}"
    )
    lines.append(f"  {report.blobs} stored file(s) ({report.blob_bytes} bytes) {'would be ' if report.dry_run else ''}deleted")
    for p in report.postponed:
        lines.append(f"  postponed: {p}")
    return "\n".join(lines)


def purge(
    session: Session,
    settings: Settings,
    blobs: BlobStore,
    now: dt.datetime,
    dry_run: bool = False,
) -> PurgeReport:
    """Purge what retention makes due at ``now``, commit, then delete the files no longer
    referenced. ``dry_run`` computes the same report and changes nothing (the session is
    rolled back, no file is touched). Safe to repeat: a second run finds nothing."""
    report = PurgeReport(now=now, dry_run=dry_run)
    sqlite = session.get_bind().dialect.name == "sqlite"
    if sqlite and not dry_run:
        # Freed pages and overwritten cells are zeroed, so purged text does not linger
        # in the database file.
        session.execute(text("PRAGMA secure_delete = ON"))
    try:
        candidates = _run(session, settings, blobs, now, report)
    except BaseException:
        session.rollback()
        raise
    if dry_run:
        session.rollback()
        report.blobs, report.blob_bytes = _count_files(blobs, candidates)
        return report
    session.commit()
    report.blobs, report.blob_bytes = _delete_files(blobs, candidates)
    if sqlite:
        _checkpoint(session)
    if not report.nothing:
        log.info("retention: %s", "; ".join(f"{k}={v}" for k, v in report.counts().items()))
    return report


# --- deciding what is due ----------------------------------------------------------


def _run(session: Session, settings: Settings, blobs: BlobStore, now: dt.datetime, report: PurgeReport) -> set[str]:
    horizon = dt.timedelta(days=settings.retention_days)
    today = now.astimezone(settings.tz).date()
    configured = {e.key: e.date for e in settings.events}

    regs = list(session.exec(select(Registration)).all())
    by_id = {r.id: r for r in regs}
    pending = session.exec(
        select(OutboundMail.registration_id, OutboundMail.inbound_id).where(col(OutboundMail.status).in_(_PENDING))
    ).all()
    pending_regs = {r for r, _ in pending if r is not None}
    pending_msgs = {m for _, m in pending if m is not None}

    # Events whose retention ran out.
    due_events: dict[str, dt.date | None] = {}
    for key in {r.event_key for r in regs if r.purged_at is None}:
        if key in configured:
            if today >= configured[key] + horizon:
                due_events[key] = configured[key]
        else:
            last = _last_activity(session, [r for r in regs if r.event_key == key])
            if last.astimezone(settings.tz).date() + horizon <= today:
                due_events[key] = None
    purging: list[Registration] = []
    for reg in regs:
        if reg.purged_at is not None or reg.event_key not in due_events:
            continue
        if reg.id in pending_regs:
            report.postponed.append(f"{reg.code} ({reg.event_key}): a reply about it is still to be sent")
            continue
        purging.append(reg)
    purging_ids = {r.id for r in purging}
    gone = {r.id for r in regs if r.purged_at is not None} | purging_ids

    # Messages: tied to registrations, or to nothing (then by their own date).
    links = _message_links(session, regs)
    messages: list[tuple[InboundMessage, set[str]]] = []
    for msg in session.exec(select(InboundMessage).where(col(InboundMessage.purged_at).is_(None))).all():
        linked = links.get(msg.id, set())
        if linked:
            if not linked <= gone:
                continue
        elif msg.received_at + horizon > now:
            continue
        if msg.id in pending_msgs:
            report.postponed.append(f"message {msg.ref}: a reply to it is still to be sent")
            continue
        messages.append((msg, {by_id[r].event_key for r in linked if r in by_id}))
    message_ids = {m.id for m, _ in messages}

    purged_addresses: set[str] = set()
    dates: dict[str, dt.date | None] = {**configured, **due_events}
    _summarise(session, purging, messages, dates, settings, now, report)
    for reg in purging:
        _purge_registration(session, reg, now, report, purged_addresses)
    for msg, _ in messages:
        _purge_message(session, msg, now, report, purged_addresses)
    gone_messages = message_ids | set(
        session.exec(select(InboundMessage.id).where(col(InboundMessage.purged_at).is_not(None))).all()
    )
    # Mails about no registration and no message: with the event their dedupe key names
    # ("digest:{event}:…"), else by their own date.
    known = set(configured) | {r.event_key for r in regs}
    due_keys = {k for k, d in configured.items() if today >= d + horizon} | set(due_events)

    def orphan_due(row: OutboundMail) -> bool:
        parts = row.dedupe_key.split(":")
        if len(parts) > 2 and parts[1] in known:
            return parts[1] in due_keys
        return row.created_at + horizon <= now

    _purge_mails(session, gone, gone_messages, orphan_due, now, report, purged_addresses)
    # Which address was sent which calendar entry of a purged event: personal data too,
    # and of no use once the event is over.
    for row in session.exec(select(CalendarSequence).where(col(CalendarSequence.event_key).in_(due_keys))).all():
        session.delete(row)
    session.flush()
    _purge_address_states(session, purged_addresses, report)
    session.flush()
    return _unreferenced_blobs(session)


def _last_activity(session: Session, regs: Iterable[Registration]) -> dt.datetime:
    moments: list[dt.datetime] = []
    for reg in regs:
        moments += [m for m in (reg.created_at, reg.updated_at, reg.cancelled_at) if m is not None]
        moments += [
            p.status_changed_at
            for p in session.exec(select(Participant).where(Participant.registration_id == reg.id)).all()
        ]
    return max(moments)


def _message_links(session: Session, regs: Iterable[Registration]) -> dict[int | None, set[int | None]]:
    """Message id → the registrations it registered, corrected, withdrew or was answered
    about (through the replies it caused)."""
    links: dict[int | None, set[int | None]] = {}
    for reg in regs:
        links.setdefault(reg.source_inbound_id, set()).add(reg.id)
    for reg_id, msg_id in session.exec(
        select(RegistrationVersion.registration_id, RegistrationVersion.replaced_by_inbound_id)
    ).all():
        links.setdefault(msg_id, set()).add(reg_id)
    for answered, about in session.exec(
        select(OutboundMail.inbound_id, OutboundMail.registration_id).where(
            col(OutboundMail.inbound_id).is_not(None), col(OutboundMail.registration_id).is_not(None)
        )
    ).all():
        links.setdefault(answered, set()).add(about)
    return links


# --- anonymous counts ----------------------------------------------------------------


def _summarise(
    session: Session,
    regs: list[Registration],
    messages: list[tuple[InboundMessage, set[str]]],
    dates: dict[str, dt.date | None],
    settings: Settings,
    now: dt.datetime,
    report: PurgeReport,
) -> None:
    per_event: dict[str, EventPurge] = {}

    def event_purge(key: str) -> EventPurge:
        if key not in per_event:
            per_event[key] = EventPurge(key, dates.get(key))
        return per_event[key]

    for reg in regs:
        assert reg.id is not None
        row = _summary_row(session, reg.event_key, dates.get(reg.event_key), now)
        people = session.exec(select(Participant).where(Participant.registration_id == reg.id)).all()
        row.registrations += 1
        row.registrations_incomplete += reg.status == "incomplete"
        row.registrations_cancelled += reg.status == "cancelled"
        row.registrations_late += reg.status == "late"
        row.participants += len(people)
        for person in people:
            row.participants_confirmed += person.status == "confirmed"
            row.participants_waitlisted += person.status == "waitlisted"
            row.participants_cancelled += person.status == "cancelled"
            row.participants_late += person.status == "late"
            row.consent_newsletter += person.consent_newsletter
        workshops = json.loads(row.workshops_json or "{}")
        for letter in (w for w in reg.workshops.split(",") if w):
            workshops[letter] = workshops.get(letter, 0) + 1
        row.workshops_json = json.dumps(workshops, sort_keys=True)
        by_date = json.loads(row.by_date_json or "{}")
        day = by_date.setdefault(reg.created_at.astimezone(settings.tz).date().isoformat(),
                                 {"registrations": 0, "participants": 0})
        day["registrations"] += 1
        day["participants"] += len(people)
        row.by_date_json = json.dumps(by_date, sort_keys=True)
        session.add(row)
        e = event_purge(reg.event_key)
        e.registrations += 1
        e.participants += len(people)
    for _, keys in messages:
        for key in keys:
            row = _summary_row(session, key, dates.get(key), now)
            row.messages += 1
            session.add(row)
            event_purge(key).messages += 1
    session.flush()
    report.events = sorted(per_event.values(), key=lambda e: (e.event_date or dt.date.min, e.event_key))


def _summary_row(session: Session, key: str, date: dt.date | None, now: dt.datetime) -> PurgedEvent:
    row = session.get(PurgedEvent, key)
    if row is None:
        row = PurgedEvent(event_key=key, event_date=date, first_purged_at=now, last_purged_at=now)
        session.add(row)
        session.flush()
    row.last_purged_at = now
    if row.event_date is None:
        row.event_date = date
    return row


# --- scrubbing ---------------------------------------------------------------------


def _addresses(*values: str | None) -> set[str]:
    return {v.strip().casefold() for v in values if v and v.strip()}


def _purge_registration(
    session: Session, reg: Registration, now: dt.datetime, report: PurgeReport, addresses: set[str]
) -> None:
    addresses |= _addresses(reg.sender_email, reg.institution_email)
    reg.institution_name = reg.institution_address = reg.institution_phone = reg.institution_email = None
    reg.remarks = None
    reg.sender_email = None
    reg.problems_json = "[]"
    reg.purged_at = now
    session.add(reg)
    report.registrations += 1
    for person in session.exec(select(Participant).where(Participant.registration_id == reg.id)).all():
        addresses |= _addresses(person.email)
        addresses |= _addresses(person.email_as_read, person.email_suggestion)
        person.full_name = person.job_title = person.phone = person.email = None
        # The doubt about an address quotes it; whether there was one stays (anonymous).
        person.email_as_read = person.email_suggestion = person.email_doubt_note = None
        session.add(person)
        report.participants += 1
    for version in session.exec(
        select(RegistrationVersion).where(RegistrationVersion.registration_id == reg.id)
    ).all():
        if version.snapshot_json != "{}":
            version.snapshot_json = "{}"
            session.add(version)
            report.registration_versions += 1


def _purge_message(
    session: Session, msg: InboundMessage, now: dt.datetime, report: PurgeReport, addresses: set[str]
) -> None:
    addresses |= _addresses(msg.from_addr)
    msg.message_id = msg.from_addr = msg.from_name = msg.subject = None
    msg.reason = f"{msg.outcome}; personal data purged {now.date().isoformat()}"
    msg.warnings = None
    msg.resolution_note = None
    msg.history = None
    msg.purged_at = now
    session.add(msg)
    report.inbound_messages += 1
    for att in session.exec(select(StoredAttachment).where(StoredAttachment.inbound_id == msg.id)).all():
        att.filename = att.origin = ""
        att.parse_json = att.parse_reason = None
        session.add(att)
        report.attachments += 1


def _purge_mails(
    session: Session,
    regs: set[int | None],
    messages: set[int | None],
    orphan_due: Callable[[OutboundMail], bool],
    now: dt.datetime,
    report: PurgeReport,
    addresses: set[str],
) -> None:
    rows = session.exec(
        select(OutboundMail).where(
            col(OutboundMail.purged_at).is_(None), col(OutboundMail.status).not_in(_PENDING)
        )
    ).all()
    for row in rows:
        orphan = row.registration_id is None and row.inbound_id is None
        if not (
            row.registration_id in regs
            or row.inbound_id in messages
            or (orphan and orphan_due(row))
        ):
            continue
        if row.registration_id is not None and row.registration_id not in regs:
            continue  # about a registration still kept
        addresses |= _addresses(row.to_addr)
        row.raw = b""
        row.to_addr = row.subject = row.envelope_to = ""
        row.dedupe_key = f"purged:{row.id}"
        row.message_id = f"<purged.{row.id}@mailbot.invalid>"
        row.last_error = None
        row.purged_at = now
        session.add(row)
        report.outbound_mails += 1


def _purge_address_states(session: Session, addresses: set[str], report: PurgeReport) -> None:
    """Forget what came back from the purged addresses, unless still in use."""
    if not addresses:
        return
    kept: set[str] = set()
    kept |= _addresses(
        *session.exec(
            select(Participant.email)
            .join(Registration, col(Registration.id) == col(Participant.registration_id))
            .where(col(Registration.purged_at).is_(None))
        ).all()
    )
    for sender, inst in session.exec(
        select(Registration.sender_email, Registration.institution_email).where(col(Registration.purged_at).is_(None))
    ).all():
        kept |= _addresses(sender, inst)
    kept |= _addresses(
        *session.exec(select(InboundMessage.from_addr).where(col(InboundMessage.purged_at).is_(None))).all()
    )
    kept |= _addresses(*session.exec(select(OutboundMail.to_addr).where(col(OutboundMail.purged_at).is_(None))).all())
    for state in session.exec(select(AddressStatus)).all():
        if state.address.casefold() in addresses and state.address.casefold() not in kept:
            session.delete(state)
            report.address_statuses += 1


# --- files -------------------------------------------------------------------------


def _unreferenced_blobs(session: Session) -> set[str]:
    """Digests of the files of purged messages that nothing kept refers to."""
    purged = set(session.exec(select(InboundMessage.raw_sha256).where(col(InboundMessage.purged_at).is_not(None))).all())
    purged |= set(
        session.exec(
            select(StoredAttachment.sha256)
            .join(InboundMessage, col(InboundMessage.id) == col(StoredAttachment.inbound_id))
            .where(col(InboundMessage.purged_at).is_not(None))
        ).all()
    )
    kept = set(session.exec(select(InboundMessage.raw_sha256).where(col(InboundMessage.purged_at).is_(None))).all())
    kept |= set(
        session.exec(
            select(StoredAttachment.sha256)
            .join(InboundMessage, col(InboundMessage.id) == col(StoredAttachment.inbound_id))
            .where(col(InboundMessage.purged_at).is_(None))
        ).all()
    )
    return purged - kept


def _count_files(blobs: BlobStore, digests: Iterable[str]) -> tuple[int, int]:
    count = size = 0
    for digest in digests:
        path = blobs.path_for(digest)
        try:
            size += path.stat().st_size
        except FileNotFoundError:
            continue
        count += 1
    return count, size


def _delete_files(blobs: BlobStore, digests: Iterable[str]) -> tuple[int, int]:
    count = size = 0
    for digest in sorted(digests):
        path = blobs.path_for(digest)
        try:
            length = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        count += 1
        size += length
        for parent in (path.parent, path.parent.parent):
            try:
                parent.rmdir()  # only when empty
            except OSError:
                break
    return count, size


def _checkpoint(session: Session) -> None:
    """Move the WAL into the database file and truncate it, so the purged values do not
    linger in old WAL frames either (best effort: a busy reader just defers it)."""
    try:
        session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        session.execute(text("PRAGMA secure_delete = OFF"))
        session.commit()
    except Exception:
        session.rollback()
        log.debug("WAL checkpoint after purge deferred", exc_info=True)
