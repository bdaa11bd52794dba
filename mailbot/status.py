"""``mailbot status``: what an admin looks at first when someone says "I got no reply".

Read-only, from the database alone (works while the service runs: SQLite is in WAL
mode): when the mailbox was last checked and with what error, what waits in review,
the outbox queue and its last error, the next scheduled jobs, seats per event — and,
for one address, every message from it and every mail to it with its delivery state.

Read-only also means it never creates anything: :func:`open_existing` refuses a
database that is not there (a relative ``state_dir`` would otherwise sprout a fresh
database under whatever directory the admin happens to be in).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, func
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from mailbot.config import Settings
from mailbot import runlock
from mailbot.errors import ConfigError, MailbotError
from mailbot.leadership import leaders
from mailbot.reminders import pending_changes
from mailbot.seats import HOLDING, seats_taken
from mailbot.store.tables import (
    TEMPORARY_PREFIX,
    AddressStatus,
    InboundMessage,
    MailboxState,
    OutboundMail,
    Participant,
    Registration,
)

JOBS_TABLE = "apscheduler_jobs"


class NoDatabase(MailbotError):
    """There is no mailbot database at the configured URL (nothing was created)."""


class OutdatedDatabase(MailbotError):
    """The database predates this mailbot's schema; a read-only command does not migrate."""


def open_existing(url: str) -> Engine:
    """An engine on the mailbot database at ``url``, which must exist and be migrated.

    Never creates a file, a directory or a table (``make_engine`` and ``upgrade`` do,
    for the commands that write)."""
    from mailbot.store.db import current_revision, head_revision, make_engine

    try:
        parsed = make_url(url)
    except Exception as e:
        raise ConfigError(f"database_url {url!r} is not a valid SQLAlchemy URL") from e
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:") or not Path(path).is_file():
            raise NoDatabase(
                f"no database at {Path(path).resolve() if path else shown}: mailbot has not run with this config yet "
                "(`mailbot run` or `mailbot db upgrade` creates it; check --config, --db or state_dir)"
            )
    engine = make_engine(url)
    current, head = current_revision(engine), head_revision()
    if current is None:
        engine.dispose()
        raise NoDatabase(f"{shown} holds no mailbot tables (`mailbot db upgrade` creates them)")
    if current != head:
        engine.dispose()
        raise OutdatedDatabase(
            f"{shown} is at schema revision {current}, this mailbot needs {head}: "
            "run `mailbot db upgrade` (the service also does it when it starts)"
        )
    return engine


@dataclass(frozen=True)
class EventLine:
    key: str
    date: dt.date
    seated: int
    capacity: int
    waiting: int
    cancelled: int
    late: int


@dataclass(frozen=True)
class Trace:
    """One address's history: what it sent us and what we sent it."""

    address: str
    inbound: list[tuple[dt.datetime, str, str, str]]
    """(received, ref, outcome, reason)"""
    outbound: list[tuple[dt.datetime, str, str, str, str | None]]
    """(queued, kind, subject, status, last error)"""
    bouncing: bool
    bounce_reason: str | None


@dataclass
class Status:
    mailboxes: list[MailboxState] = field(default_factory=list)
    outcomes_today: dict[str, int] = field(default_factory=dict)
    review_open: int = 0
    unfiled: int = 0
    outbox: dict[str, int] = field(default_factory=dict)
    oldest_queued: dt.datetime | None = None
    last_delivery_error: str | None = None
    jobs: list[tuple[str, dt.datetime | None]] = field(default_factory=list)
    events: list[EventLine] = field(default_factory=list)
    trace: Trace | None = None
    leader: str | None = None
    """The `mailbot run` serving the store now (``None``: none is running)."""
    standbys: list[str] = field(default_factory=list)
    """Services waiting to take over (PostgreSQL)."""
    temporary_errors: int = 0
    unannounced: list[tuple[str, str, int]] = field(default_factory=list)
    """(event key, what changed, seated people) for edits waiting for `mailbot announce`."""
    """Messages left in the inbox after a temporary storage error, waiting for a retry."""


def collect(session: Session, settings: Settings, now: dt.datetime, *, address: str | None = None) -> Status:
    status = Status()
    status.mailboxes = list(session.exec(select(MailboxState)).all())
    midnight = dt.datetime.combine(now.astimezone(settings.tz).date(), dt.time(), tzinfo=settings.tz)
    for outcome, count in session.exec(
        select(InboundMessage.outcome, func.count())
        .where(col(InboundMessage.received_at) >= midnight)
        .group_by(InboundMessage.outcome)
    ).all():
        status.outcomes_today[outcome] = int(count)
    status.review_open = _count(session, InboundMessage.outcome == "needs_review")
    status.unfiled = _count(session, col(InboundMessage.filed).is_(False))
    status.temporary_errors = _count(
        session, InboundMessage.outcome == "pending", col(InboundMessage.reason).startswith(TEMPORARY_PREFIX)
    )
    status.leader, status.standbys = _service(session, settings)
    status.unannounced = [(c.event.key, c.summary, c.people) for c in pending_changes(session, settings, now)]
    for state, count in session.exec(
        select(OutboundMail.status, func.count()).group_by(OutboundMail.status)
    ).all():
        status.outbox[state] = int(count)
    status.oldest_queued = session.exec(
        select(func.min(OutboundMail.created_at)).where(col(OutboundMail.status).in_(("queued", "retry", "sending")))
    ).one()
    status.last_delivery_error = session.exec(
        select(OutboundMail.last_error)
        .where(col(OutboundMail.last_error).is_not(None))
        .order_by(col(OutboundMail.id).desc())
    ).first()
    status.jobs = _jobs(session, settings)
    for event in settings.events:
        status.events.append(
            EventLine(
                key=event.key,
                date=event.date,
                seated=seats_taken(session, event.key),
                capacity=event.capacity,
                waiting=_people(session, event.key, "waitlisted"),
                cancelled=_people(session, event.key, "cancelled", any_registration=True),
                late=_people(session, event.key, "late", any_registration=True),
            )
        )
    if address:
        status.trace = trace(session, address)
    return status


def _count(session: Session, *where: object) -> int:
    return int(session.exec(select(func.count()).select_from(InboundMessage).where(*where)).one())  # type: ignore[arg-type]


def _service(session: Session, settings: Settings) -> tuple[str | None, list[str]]:
    """Who serves the store: on PostgreSQL the holder of the watcher lock and the
    standbys (from the server's own tables); on SQLite the holder of the run lock."""
    bind = session.get_bind()
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        leading = leaders(bind)
        return (leading[0].name if leading else None), [s.name for s in leaders(bind, "standby")]
    return runlock.holder(settings.db_url), []


def _people(session: Session, event_key: str, state: str, *, any_registration: bool = False) -> int:
    query = (
        select(func.count())
        .select_from(Participant)
        .join(Registration, col(Registration.id) == col(Participant.registration_id))
        .where(Registration.event_key == event_key, Participant.status == state)
    )
    if not any_registration:
        query = query.where(col(Registration.status).in_(HOLDING))
    return int(session.exec(query).one())


def _jobs(session: Session, settings: Settings) -> list[tuple[str, dt.datetime | None]]:
    """The scheduler's next run times, read from its table (the service may be running)."""
    bind = session.get_bind()
    if not sa.inspect(bind).has_table(JOBS_TABLE):
        return []
    rows = session.execute(sa.text(f"SELECT id, next_run_time FROM {JOBS_TABLE} ORDER BY next_run_time")).all()
    return [
        (str(job_id), dt.datetime.fromtimestamp(float(stamp), dt.UTC).astimezone(settings.tz) if stamp else None)
        for job_id, stamp in rows
    ]


def trace(session: Session, address: str) -> Trace:
    key = address.strip().casefold()
    inbound = session.exec(
        select(InboundMessage)
        .where(func.lower(col(InboundMessage.from_addr)) == key)
        .order_by(col(InboundMessage.received_at))
    ).all()
    outbound = session.exec(
        select(OutboundMail).where(OutboundMail.to_addr == key).order_by(col(OutboundMail.created_at))
    ).all()
    state = session.get(AddressStatus, key)
    return Trace(
        address=key,
        inbound=[(m.received_at, m.ref, m.outcome, m.reason or "") for m in inbound],
        outbound=[(m.created_at, m.kind, m.subject, m.status, m.last_error) for m in outbound],
        bouncing=bool(state and state.bouncing),
        bounce_reason=state.last_bounce_reason if state else None,
    )


def render(status: Status, settings: Settings, now: dt.datetime) -> list[tuple[str, Sequence[Sequence[str]]]]:
    """Titled tables of strings, the first row the column titles ("" for none)."""
    tz = settings.tz

    def when(value: dt.datetime | None) -> str:
        if value is None:
            return "—"
        ago = now - value
        return f"{value.astimezone(tz):%Y-%m-%d %H:%M} ({_ago(ago)})"

    tables: list[tuple[str, Sequence[Sequence[str]]]] = []
    tables.append((
        "Service",
        [("", ""), ("leader", status.leader or "none running"), *(("standby", name) for name in status.standbys)],
    ))
    mailbox_rows = [(m.source, when(m.last_check_at), m.last_error or "—") for m in status.mailboxes]
    tables.append((
        "Mailbox",
        [("source", "last check", "last error"), *(mailbox_rows or [("(never checked)", "—", "—")])],
    ))
    today = ", ".join(f"{n} {k}" for k, n in sorted(status.outcomes_today.items())) or "none"
    queue = ", ".join(f"{n} {k}" for k, n in sorted(status.outbox.items())) or "empty"
    tables.append((
        "Backlog",
        [
            ("", ""),
            ("messages today", today),
            ("waiting for review", str(status.review_open)),
            ("handled but not yet filed", str(status.unfiled)),
            ("waiting after a temporary error", str(status.temporary_errors)),
            ("outbox", queue),
            ("oldest mail not yet sent", when(status.oldest_queued)),
            ("last delivery error", status.last_delivery_error or "—"),
        ],
    ))
    tables.append((
        "Scheduled jobs",
        [("job", "next run"), *([(job, when(at)) for job, at in status.jobs] or [("(the service has not run yet)", "—")])],
    ))
    tables.append((
        "Events",
        [("event", "date", "seats", "waiting", "cancelled", "late")]
        + [
            (e.key, e.date.isoformat(), f"{e.seated}/{e.capacity}", str(e.waiting), str(e.cancelled), str(e.late))
            for e in status.events
        ],
    ))
    if status.unannounced:
        tables.append((
            "Edits not yet announced (mailbot announce EVENT)",
            [("event", "change", "seated")] + [(key, what, str(n)) for key, what, n in status.unannounced],
        ))
    if status.trace is not None:
        t = status.trace
        rows: list[Sequence[str]] = [("when", "direction", "what", "state")]
        for at, ref, outcome, reason in t.inbound:
            rows.append((when(at), "from", f"message {ref}", f"{outcome}: {reason}"))
        for at, kind, subject, state, error in t.outbound:
            rows.append((when(at), "to", f"{kind}: {subject}", state + (f" ({error})" if error else "")))
        if t.bouncing:
            rows.append(("", "", "address is bouncing", t.bounce_reason or ""))
        if len(rows) == 1:
            rows.append(("", "", "nothing from or to this address", ""))
        tables.append((f"History of {t.address}", rows))
    return tables


def _ago(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "in the future"
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def to_json(status: Status, now: dt.datetime) -> dict[str, Any]:
    """``status --json``. The keys are part of the command line's contract
    (docs/cli.md): add keys, never rename. Times are ISO 8601 with their offset."""

    def iso(value: dt.datetime | dt.date | None) -> str | None:
        return value.isoformat() if value is not None else None

    t = status.trace
    return {
        "now": iso(now),
        "service": {"leader": status.leader, "standbys": status.standbys},
        "temporary_errors": status.temporary_errors,
        "mailboxes": [
            {"source": m.source, "last_check_at": iso(m.last_check_at), "last_error": m.last_error}
            for m in status.mailboxes
        ],
        "messages_today": dict(sorted(status.outcomes_today.items())),
        "review_open": status.review_open,
        "unfiled": status.unfiled,
        "outbox": dict(sorted(status.outbox.items())),
        "oldest_unsent_at": iso(status.oldest_queued),
        "last_delivery_error": status.last_delivery_error,
        "jobs": [{"id": job, "next_run_at": iso(at)} for job, at in status.jobs],
        "events": [{**dataclasses.asdict(e), "date": e.date.isoformat()} for e in status.events],
        "unannounced_changes": [
            {"event": key, "changes": what, "seated": n} for key, what, n in status.unannounced
        ],
        "address": None if t is None else {
            "address": t.address,
            "bouncing": t.bouncing,
            "bounce_reason": t.bounce_reason,
            "inbound": [
                {"received_at": iso(at), "ref": ref, "outcome": outcome, "reason": reason}
                for at, ref, outcome, reason in t.inbound
            ],
            "outbound": [
                {"queued_at": iso(at), "kind": kind, "subject": subject, "status": state, "last_error": error}
                for at, kind, subject, state, error in t.outbound
            ],
        },
    }
