"""Database tables. Every registration traces back to the inbound message it came from.

Schema changes go through Alembic migrations in ``mailbot/store/migrations``; never
``create_all`` outside tests of the migrations themselves.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import BigInteger, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class MailboxState(SQLModel, table=True):
    """High-water mark per mailbox source: UIDVALIDITY and the last UID fully handled."""

    __tablename__ = "mailbox_state"

    source: str = Field(primary_key=True, max_length=500)
    # IMAP UIDs and UIDVALIDITY are unsigned 32-bit: they do not fit a signed INTEGER.
    uidvalidity: int | None = Field(default=None, sa_type=BigInteger)
    last_uid: int | None = Field(default=None, sa_type=BigInteger)
    last_check_at: dt.datetime | None = None
    last_error: str | None = Field(default=None, max_length=2000)


TEMPORARY_PREFIX = "temporary error, retried on a later pass: "
"""How the reason of a pending ledger row released after a temporary error begins
(written by ingest, counted by ``mailbot status``)."""


class InboundMessage(SQLModel, table=True):
    """Ledger of every message read, with the outcome that decides where it is filed.

    ``dedupe_key`` (Message-ID plus a hash of the content) makes reprocessing of a
    message already seen — after a crash, a UIDVALIDITY change, or a double send —
    recognisable; the mailbox UID alone is never trusted for that.
    """

    __tablename__ = "inbound_message"

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True, max_length=64)
    ref: str = Field(index=True, max_length=16)
    """Short public id used in logs and in the X-Mailbot-Ref header of replies."""
    message_id: str | None = Field(default=None, index=True, max_length=998)
    raw_sha256: str = Field(max_length=64)
    size: int
    source: str = Field(max_length=500)
    folder: str | None = Field(default=None, max_length=500)
    uidvalidity: int | None = Field(default=None, sa_type=BigInteger)
    uid: int | None = Field(default=None, sa_type=BigInteger)
    from_addr: str | None = Field(default=None, index=True, max_length=320)
    from_name: str | None = Field(default=None, max_length=300)
    subject: str | None = Field(default=None, max_length=300)
    sent_at: dt.datetime | None = None
    received_at: dt.datetime = Field(default_factory=utcnow)
    outcome: str = Field(default="pending", index=True, max_length=20)
    """pending | registered | needs_review | ignored"""
    reason: str | None = Field(default=None, max_length=2000)
    filed: bool = Field(default=False, index=True)
    """True once the mailbox copy was moved to the outcome's folder."""
    times_seen: int = 1
    """How often these exact bytes arrived (a double send, a re-fetch after a crash)."""
    warnings: str | None = None
    resolution: str | None = Field(default=None, index=True, max_length=20)
    """How an admin settled a needs_review message (``mailbot review``): accepted |
    rejected | reprocessed | fixed; None while it waits (or needs no review)."""
    resolved_at: dt.datetime | None = None
    resolution_note: str | None = Field(default=None, max_length=2000)
    history: str | None = None
    """JSON list of what admins did with this message (fix, accept, reject, reprocess —
    the latter with the outcome and reason it replaced), oldest first."""
    purged_at: dt.datetime | None = None
    """Set when retention removed the message's personal data and stored files."""

    def history_entries(self) -> list[dict[str, Any]]:
        if not self.history:
            return []
        loaded = json.loads(self.history)
        return [e for e in loaded if isinstance(e, dict)] if isinstance(loaded, list) else []

    def add_history(self, action: str, at: dt.datetime, **details: Any) -> None:
        """Append one entry to :attr:`history` (the caller adds the row to its session)."""
        entries = self.history_entries()
        entries.append({"action": action, "at": at.isoformat(), **details})
        self.history = json.dumps(entries, ensure_ascii=False, default=str)


class FilingClaim(SQLModel, table=True):
    """Who files one mailbox message: the process whose claim this is, alone, MOVEs it.

    Keyed by the message's place in its mailbox (source, UIDVALIDITY:UID or the
    Maildir key), not by its content: two copies of one mail are two messages to file.
    A claim whose holder vanished before ``filed_at`` is taken over when its lease, on
    the database's clock, has run out.
    """

    __tablename__ = "filing_claim"

    source: str = Field(primary_key=True, max_length=500)
    ref: str = Field(primary_key=True, max_length=200)
    claimed_by: str = Field(max_length=300)
    lease_until: dt.datetime
    filed_at: dt.datetime | None = None


class StoredAttachment(SQLModel, table=True):
    """One file found in a message (also inside forwards, zips, winmail.dat)."""

    __tablename__ = "attachment"

    id: int | None = Field(default=None, primary_key=True)
    inbound_id: int = Field(foreign_key="inbound_message.id", index=True)
    filename: str = Field(max_length=300)
    content_type: str = Field(max_length=200)
    sha256: str = Field(max_length=64)
    size: int
    origin: str = Field(max_length=1000)
    parse_status: str | None = Field(default=None, max_length=20)
    parse_format: str | None = Field(default=None, max_length=20)
    parse_method: str | None = Field(default=None, max_length=20)
    parse_reason: str | None = Field(default=None, max_length=2000)
    parse_json: str | None = None


class Registration(SQLModel, table=True):
    """One institution's registration for one event, with its participants.

    Values typed on forms have no length limit: people type anything, and a too-long
    phone must end as a registration with a problem, not as a database error.
    """

    __tablename__ = "registration"
    __table_args__ = (Index("ix_registration_event_key_status", "event_key", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=16)
    event_key: str = Field(index=True, max_length=64)
    status: str = Field(default="confirmed", max_length=20)
    """confirmed | incomplete | cancelled | late (arrived after the deadline; kept for the
    organisers, holds no seat)"""
    institution_name: str | None = Field(default=None)
    institution_address: str | None = Field(default=None)
    institution_phone: str | None = Field(default=None)
    institution_email: str | None = Field(default=None)
    workshops: str = Field(default="", max_length=20)
    remarks: str | None = None
    consent_data_processing: bool = False
    consent_newsletter: bool = False
    sender_email: str | None = Field(default=None, index=True, max_length=320)
    problems_json: str = "[]"
    source_inbound_id: int = Field(foreign_key="inbound_message.id")
    source_attachment_id: int | None = Field(default=None, foreign_key="attachment.id")
    version: int = 1
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)
    cancelled_at: dt.datetime | None = None
    purged_at: dt.datetime | None = None
    """Set when retention removed the personal data (see :mod:`mailbot.purge`)."""


EMAIL_UNCONFIRMED = "unconfirmed"
"""``Participant.email_check`` of an address read with doubt and not yet confirmed by
its owner: nobody mails it (see :mod:`mailbot.doubts`)."""


class Participant(SQLModel, table=True):
    """A person on a registration; ``position`` keeps the order on the form."""

    __tablename__ = "participant"
    __table_args__ = (Index("ix_participant_registration_id_status", "registration_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    registration_id: int = Field(foreign_key="registration.id", index=True)
    position: int
    full_name: str | None = Field(default=None)
    job_title: str | None = Field(default=None)
    phone: str | None = None
    email: str | None = Field(default=None, index=True)
    status: str = Field(default="confirmed", index=True, max_length=20)
    """confirmed (holds a seat) | waitlisted | cancelled | late"""
    registered_at: dt.datetime = Field(default_factory=utcnow)
    """When this person first appeared on a form: orders the waiting list and decides
    which reminders they get; kept when a corrected form replaces the registration."""
    status_changed_at: dt.datetime = Field(default_factory=utcnow)
    consent_data_processing: bool = False
    consent_newsletter: bool = False
    """The consents of the form that listed this person (a form has one set of consents:
    each person on it gets them)."""
    email_check: str | None = Field(default=None, index=True, max_length=20)
    """Whether ``email`` may be written to. None: never in doubt (or the envelope showed
    it is the sender's own) · ``unconfirmed``: the reader doubted it (a scan, a name
    that does not match): no mail of its own goes there, whoever registered the person
    is asked · ``confirmed``/``corrected``: settled by a reply, a form or an admin."""
    email_as_read: str | None = Field(default=None)
    """The address as the reader read it when it doubted it (kept after a correction,
    so the same misreading on a form sent again does not undo it)."""
    email_suggestion: str | None = Field(default=None)
    """The one close alternative the reader pointed to ("czy chodziło o …?")."""
    email_doubt_note: str | None = Field(default=None)
    """The reader's words on the doubt (Polish, for the review and the digest)."""
    email_settled_at: dt.datetime | None = None
    email_settled_by: str | None = Field(default=None, max_length=300)
    """How the doubt was settled: ``reply <ref>``, ``from <ref>`` (a message from that
    very address), ``form <ref>``, ``review``."""


class AddressStatus(SQLModel, table=True):
    """What came back from an address: bounces stop reminders; out-of-office replies are
    only counted (the organisers see them in the digest)."""

    __tablename__ = "address_status"

    address: str = Field(primary_key=True, max_length=320)
    bouncing: bool = False
    bounce_count: int = 0
    last_bounce_at: dt.datetime | None = None
    last_bounce_reason: str | None = Field(default=None, max_length=2000)
    auto_reply_count: int = 0
    last_auto_reply_at: dt.datetime | None = None


class EventState(SQLModel, table=True):
    """What participants were last told about an event (its calendar fingerprint), so a
    changed date, time or venue in config is announced exactly once per change."""

    __tablename__ = "event_state"

    event_key: str = Field(primary_key=True, max_length=64)
    fingerprint: str = Field(max_length=200)
    sequence: int = 0
    """iCalendar SEQUENCE of the participants' calendar entries."""
    snapshot_json: str = "{}"
    """The announced date/time/venue, to show "before → after" in the changed mail."""
    updated_at: dt.datetime = Field(default_factory=utcnow)


class CalendarSequence(SQLModel, table=True):
    """The SEQUENCE of the last calendar file sent to one address for one event.

    Each address holds its own entry (one UID per address and event,
    :func:`mailbot.calendar.event_uid`), and a calendar client applies a file only
    when its SEQUENCE is higher than the one it holds: acknowledgement, cancellation,
    a new acknowledgement after re-registering, reminders and change notices must
    climb per address, whatever happened to other addresses. A row also means "this
    address was sent an entry", which is what decides that a withdrawal carries a
    cancellation. Addresses are stored casefolded, as the UID formula uses them.
    """

    __tablename__ = "calendar_sequence"

    event_key: str = Field(primary_key=True, max_length=64)
    address: str = Field(primary_key=True, max_length=320)
    sequence: int
    method: str = Field(max_length=16)
    """METHOD of the last file sent: PUBLISH (the address holds the entry) or CANCEL."""
    updated_at: dt.datetime = Field(default_factory=utcnow)


class RegistrationVersion(SQLModel, table=True):
    """The state of a registration before a corrected form replaced it."""

    __tablename__ = "registration_version"
    __table_args__ = (UniqueConstraint("registration_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    registration_id: int = Field(foreign_key="registration.id", index=True)
    version: int
    snapshot_json: str
    replaced_by_inbound_id: int = Field(foreign_key="inbound_message.id")
    replaced_at: dt.datetime = Field(default_factory=utcnow)


class OutboundMail(SQLModel, table=True):
    """A reply as a row first, an SMTP transaction second.

    ``status``: queued → sending → sent, or queued → retry (with ``next_attempt_at``) →
    …, or failed (permanent error or attempts exhausted). ``dedupe_key`` guarantees one
    row, hence one send, per logical mail.
    """

    __tablename__ = "outbound_mail"
    __table_args__ = (Index("ix_outbound_mail_status_sent_at", "status", "sent_at"),)

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True, max_length=200)
    kind: str = Field(index=True, max_length=30)
    to_addr: str = Field(index=True, max_length=320)
    subject: str = Field(max_length=500)
    message_id: str = Field(max_length=300)
    inbound_id: int | None = Field(default=None, foreign_key="inbound_message.id")
    registration_id: int | None = Field(default=None, foreign_key="registration.id")
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    envelope_to: str = Field(max_length=2000)
    status: str = Field(default="queued", index=True, max_length=20)
    attempts: int = 0
    next_attempt_at: dt.datetime | None = None
    claimed_at: dt.datetime | None = None
    """When a delivery run took the row ('sending'), on the run's clock (for the record)."""
    claimed_by: str | None = Field(default=None, max_length=300)
    """The process that claimed the row (host:pid:random): only it may record the outcome."""
    lease_until: dt.datetime | None = None
    """Database-clock time after which a 'sending' row counts as abandoned and is swept
    back: the database's clock, so a replay with a fixed ``--now`` still recovers it."""
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: dt.datetime = Field(default_factory=utcnow, index=True)
    sent_at: dt.datetime | None = None
    purged_at: dt.datetime | None = None
    """Set when retention removed the mail's bytes and addresses (kind, status and dates
    stay for the statistics)."""


class PurgedEvent(SQLModel, table=True):
    """What is left of an event once its personal data was purged: anonymous counts, so
    the organisers' statistics survive. Added to when late stragglers are purged too."""

    __tablename__ = "purged_event"

    event_key: str = Field(primary_key=True, max_length=64)
    event_date: dt.date | None = None
    """None when the event was no longer configured at purge time."""
    first_purged_at: dt.datetime = Field(default_factory=utcnow)
    last_purged_at: dt.datetime = Field(default_factory=utcnow)
    messages: int = 0
    registrations: int = 0
    registrations_incomplete: int = 0
    registrations_cancelled: int = 0
    registrations_late: int = 0
    participants: int = 0
    participants_confirmed: int = 0
    participants_waitlisted: int = 0
    participants_cancelled: int = 0
    participants_late: int = 0
    consent_newsletter: int = 0
    """Participants who had agreed to hear about later conferences."""
    workshops_json: str = "{}"
    """Workshop letter → registrations that chose it."""
    by_date_json: str = "{}"
    """Day the registration was created (local date, ISO) → {"registrations": n,
    "participants": m}."""
