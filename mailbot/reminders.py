"""Reminders before an event, and notices when its date, time or venue changes.

Both go only to people holding a seat (confirmed, registration not cancelled or late)
whose address is not bouncing — a reminder only to those who held it at the reminder's
moment, so a late registrant gets the 1-day reminder and not a belated 7-day one. A
person without an e-mail address, or whose address is still unconfirmed (the reader
doubted it: :func:`mailbot.replies.mail_address`), is reached through whoever
registered them. Each mail's dedupe key names the event, the reminder (or the
change's calendar SEQUENCE) and the address, so a second run at the same moment, or a
restart, sends nothing twice.

A change needs a decision (issue 12, item 10). ``event_state`` keeps what participants
were last told about each event; an edit in the config (SIGHUP or a restart included)
mails nobody by itself — one added "(I piętro)" must not write to a hundred people. It
waits, logged once and reported by ``mailbot check-config`` (:func:`pending_changes`,
also for ``status`` and the digest), until an organiser runs ``mailbot announce EVENT``
(:func:`announce`): ``--dry-run`` shows who would get what, plain ``announce`` queues
one ``changed`` per address, ``--silent`` accepts the new state without mail. Until
then nothing is held back: reminders, acknowledgements and every other mail go out as
usual, showing the details configured now. A raised capacity still seats people from
the waiting list on the next pass (their ``promoted`` mail is no announcement).

Every pass runs both checks, so an idle one must cost next to nothing (issue 13): per
event one read of its ``event_state`` row, one indexed look for somebody waiting, and
for a due reminder one query for the seated people whose reminder is not in the outbox
yet (an anti-join on the outbox's unique dedupe key) — none, once all went out. The
mail composer (:mod:`mailbot.replies`, templates, calendars) is imported and built only
when something is to be queued.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, and_, case, exists, func, literal
from sqlmodel import Session, col, select

from mailbot.calendar import event_fingerprint
from mailbot.config import EventSettings, Settings
from mailbot.seats import HOLDING, promote
from mailbot.store.tables import EMAIL_UNCONFIRMED as _UNCONFIRMED
from mailbot.store.tables import AddressStatus, EventState, OutboundMail, Participant, Registration

if TYPE_CHECKING:
    from mailbot.replies import Mailer, Queued

log = logging.getLogger(__name__)

MailerFactory = Callable[[], "Mailer"]
"""Builds (or returns) the mail composer: called only when a mail is to be queued, so an
idle pass never imports the templates, calendars and form vocabulary behind it."""

_CHUNK = 500
"""Bound parameters per IN list (SQLite allows a few thousand at most)."""


@dataclass(frozen=True)
class DueReminder:
    event: EventSettings
    offset: dt.timedelta
    moment: dt.datetime


def offset_label(offset: dt.timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def due_reminder(event: EventSettings, settings: Settings, now: dt.datetime) -> DueReminder | None:
    """The reminder whose moment passed most recently, if the event is still ahead.

    Only that one: after a week's outage the daemon sends the 1-day reminder, not both."""
    start = event.starts_at(settings.tz)
    if now >= start:
        return None
    passed = [(o, start - o) for o in event.reminder_offsets if start - o <= now]
    if not passed:
        return None
    offset, moment = min(passed, key=lambda item: item[0])
    return DueReminder(event, offset, moment)


def _sql_address() -> Any:
    """SQL twin of ``mail_address(person) or norm_address(reg.sender_email)``, folding
    ASCII case only (SQLite's ``lower``). It may miss a match Python would find (a
    non-ASCII capital), never invent one: a folded address that equals one Python
    produced is Python's result too. So it can narrow who needs a look, not decide."""
    own = func.trim(col(Participant.email))
    return case(
        (and_(col(Participant.email_check).is_distinct_from(_UNCONFIRMED), own != ""), func.lower(own)),
        else_=func.lower(func.trim(col(Registration.sender_email))),
    )


def _seated(
    session: Session,
    event_key: str,
    seated_by: dt.datetime | None = None,
    *,
    unsent: str | None = None,
) -> list[tuple[Registration, Participant]]:
    """Seated people of the event (registration and person, in form order). ``unsent``:
    only those who may still need the mail keyed ``unsent + address``: no outbox row has
    that key and the address is not bouncing (two indexed probes per seat inside the
    database; no rows at all once everybody reachable was mailed)."""
    query = (
        select(Registration, Participant)
        .join(Participant, col(Participant.registration_id) == col(Registration.id))
        .where(
            Registration.event_key == event_key,
            col(Registration.status).in_(HOLDING),
            Participant.status == "confirmed",
        )
        .order_by(col(Registration.id), col(Participant.position))
    )
    if seated_by is not None:
        # For a confirmed person the last status change is when they got their seat:
        # someone moved up from the waiting list after a reminder's moment has just had
        # the "promoted" mail and waits for the next reminder.
        query = query.where(col(Participant.status_changed_at) <= seated_by)
    if unsent is not None:
        address = _sql_address()
        key = literal(unsent, String) + address
        query = query.where(
            ~exists().where(col(OutboundMail.dedupe_key) == key),
            # Stored casefolded: a match is Python's address too (see _sql_address).
            ~exists().where(col(AddressStatus.address) == address, col(AddressStatus.bouncing)),
        )
    return [(r, p) for r, p in session.exec(query).all()]


def _holds(session: Session, event_key: str, status: str) -> bool:
    """Somebody in the event's seat-holding registrations has ``status`` (one indexed
    probe that stops at the first)."""
    return session.exec(
        select(Participant.id)
        .join(Registration, col(Participant.registration_id) == col(Registration.id))
        .where(Registration.event_key == event_key, col(Registration.status).in_(HOLDING), Participant.status == status)
        .limit(1)
    ).first() is not None


def _chunks(items: Collection[str]) -> Iterator[list[str]]:
    ordered = sorted(items)
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start:start + _CHUNK]


def _bouncing(session: Session, addresses: Collection[str]) -> set[str]:
    """Which of these (casefolded) addresses bounce: :func:`mailbot.replies.is_bouncing`
    for many at once."""
    found: set[str] = set()
    for chunk in _chunks(addresses):
        found.update(session.exec(
            select(AddressStatus.address).where(col(AddressStatus.address).in_(chunk), col(AddressStatus.bouncing))
        ).all())
    return found


def _existing_keys(session: Session, keys: Collection[str]) -> set[str]:
    """The outbox dedupe keys among ``keys`` that are taken already."""
    found: set[str] = set()
    for chunk in _chunks(keys):
        found.update(session.exec(select(OutboundMail.dedupe_key).where(col(OutboundMail.dedupe_key).in_(chunk))).all())
    return found


def _by_address(
    session: Session, rows: Sequence[tuple[Registration, Participant]], own: Sequence[str]
) -> dict[str, list[Participant]]:
    from mailbot.loopguard import safe_to_reply  # with the mail parser: only when there are rows
    from mailbot.replies import mail_address, norm_address

    out: dict[str, list[Participant]] = {}
    for reg, person in rows:
        # An unconfirmed address is no address of the person's own: whoever registered
        # them is reached instead, as for a person without one.
        addr = mail_address(person) or norm_address(reg.sender_email)
        if addr and safe_to_reply(addr, own):
            out.setdefault(addr, []).append(person)
    bouncing = _bouncing(session, out)
    return {addr: people for addr, people in out.items() if addr not in bouncing}


def queue_reminders(
    session: Session, settings: Settings, mailer: MailerFactory, now: dt.datetime, out: list[str]
) -> None:
    """Queue the due reminder of each event to every seated address not sent it yet
    ("reminder → address" lines appended to ``out``). When all went out this is one
    query per event in its reminder window, and nothing else."""
    for event in settings.events:
        due = due_reminder(event, settings, now)
        if due is None:
            continue
        prefix = f"reminder:{event.key}:{offset_label(due.offset)}:"
        rows = _seated(session, event.key, seated_by=due.moment, unsent=prefix)
        if not rows:
            continue
        # The SQL narrowed the rows; the exact address rules and keys decide.
        targets = _by_address(session, rows, settings.replying_as)
        sent = _existing_keys(session, {f"{prefix}{addr}" for addr in targets})
        todo = {addr: people for addr, people in targets.items() if f"{prefix}{addr}" not in sent}
        if todo:
            _send_reminders(session, mailer(), event, due, prefix, todo, now, out)


def _send_reminders(
    session: Session,
    mailer: Mailer,
    event: EventSettings,
    due: DueReminder,
    prefix: str,
    todo: dict[str, list[Participant]],
    now: dt.datetime,
    out: list[str],
) -> None:
    from mailbot.replies import Queued, display_name, person_view  # composing: only when one is due

    days = (event.date - due.moment.astimezone(mailer.settings.tz).date()).days
    queued = Queued()
    for addr, people in todo.items():
        row = mailer.queue(
            session,
            kind="reminder",
            event=event,
            to=addr,
            now=now,
            dedupe=f"{prefix}{addr}",
            context={
                "people": [person_view(session, p, event.key) for p in people],
                "days_before": days,
            },
            to_name=display_name(None, addr, people),
            registration_id=people[0].registration_id,
        )
        queued.add(row, "reminder", addr)
    out.extend(queued.queued)


# --- changes to an event: recorded by every pass, announced by `mailbot announce` ------


@dataclass(frozen=True)
class Change:
    """One detail of an event as participants were last told it, and as configured now."""

    field: str
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.field}: {self.old} → {self.new}"

    def as_context(self) -> dict[str, str]:
        """The ``changes`` item of the ``changed`` template."""
        return {"field": self.field, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class Recipient:
    """An address a ``changed`` mail would go to, and the seated people it is about."""

    address: str
    people: tuple[str, ...]
    """Their names (``uczestnik N`` for a person without one), in form order."""
    attends: bool
    """The address is one of those people's own: the mail carries the calendar entry."""


@dataclass(frozen=True)
class PendingChange:
    """An event whose details in the config differ from what participants were told,
    while somebody holds a seat and the event is not over: it waits for ``mailbot
    announce``. For the check-config warning, ``status`` and the daily digest."""

    event: EventSettings
    changes: tuple[Change, ...]
    """Relative to the last announced (or silently accepted) state."""
    announced_at: dt.datetime
    """When that state was recorded."""
    people: int
    """Seated people the change concerns (holding a seat, whether reachable or not)."""
    recipients: tuple[Recipient, ...]
    """Who ``mailbot announce`` would mail (bouncing addresses and our own are left out)."""

    @property
    def summary(self) -> str:
        """``Godzina rozpoczęcia: 11:00 → 10:00; Miejsce: … → …``."""
        return "; ".join(str(c) for c in self.changes)


@dataclass(frozen=True)
class Announcement:
    """What :func:`announce` did: the change, and the mails queued (none when silent)."""

    change: PendingChange
    queued: tuple[str, ...]
    silent: bool


def _shown(event: EventSettings) -> dict[str, str]:
    """The details a ``changed`` mail lists, as the mails write them."""
    from mailbot.templating import date_pl, time_pl  # Babel and Jinja: only when a state is recorded or compared

    return {
        "Tytuł": event.title,
        "Data": date_pl(event.date),
        "Godzina rozpoczęcia": time_pl(event.start_time),
        "Godzina zakończenia": time_pl(event.end_time) if event.end_time else "",
        "Miejsce": event.venue,
        "Adres": f"{event.address}, {event.city}",
    }


def _differences(before: dict[str, str], after: dict[str, str]) -> tuple[Change, ...]:
    return tuple(
        Change(k, before.get(k) or "—", v or "—")
        for k, v in after.items()
        if (before.get(k) or "") != v
    )


def _unannounced(
    session: Session, event: EventSettings, *, lock: bool = False
) -> tuple[EventState, tuple[Change, ...]] | None:
    """The event's recorded state and what differs from it, when the calendar
    fingerprint does; None when in step or nothing was recorded yet."""
    state = session.get(EventState, event.key, with_for_update=lock)
    if state is None or state.fingerprint == event_fingerprint(event):
        return None
    return state, _differences(json.loads(state.snapshot_json or "{}"), _shown(event))


def _over(event: EventSettings, settings: Settings, now: dt.datetime) -> bool:
    """The event's day has passed: nobody needs telling any more."""
    return now.astimezone(settings.tz).date() > event.date


def _record(state: EventState, event: EventSettings, now: dt.datetime) -> None:
    """Take the configured details as what participants know (SEQUENCE unchanged)."""
    state.fingerprint = event_fingerprint(event)
    state.snapshot_json = json.dumps(_shown(event), ensure_ascii=False)
    state.updated_at = now


def _change_targets(
    session: Session, rows: Sequence[tuple[Registration, Participant]], own: Sequence[str]
) -> dict[str, list[Participant]]:
    """Address → seated people a ``changed`` mail to it is about: each reachable
    person, and whoever registered a group (they told their colleagues)."""
    from mailbot.loopguard import safe_to_reply
    from mailbot.replies import norm_address

    targets = _by_address(session, rows, own)
    senders = {addr for reg, _ in rows if (addr := norm_address(reg.sender_email)) and safe_to_reply(addr, own)}
    bouncing = _bouncing(session, senders)
    for reg, person in rows:
        addr = norm_address(reg.sender_email)
        if addr in senders and addr not in bouncing:
            group = targets.setdefault(addr, [])
            if person not in group:
                group.append(person)
    return targets


def pending_change(
    session: Session, settings: Settings, event: EventSettings, now: dt.datetime
) -> PendingChange | None:
    """The change of ``event`` that waits for ``mailbot announce``, or None: in step
    with the config, never recorded yet, over, or nobody holds a seat (the pass records
    those by itself). Reads only."""
    from mailbot.replies import mail_address

    found = _unannounced(session, event)
    if found is None or _over(event, settings, now):
        return None
    state, changes = found
    rows = _seated(session, event.key)
    if not rows:
        return None
    targets = _change_targets(session, rows, settings.replying_as)
    recipients = tuple(
        Recipient(
            address=addr,
            people=tuple(p.full_name or f"uczestnik {p.position + 1}" for p in people),
            attends=any(mail_address(p) == addr for p in people),
        )
        for addr, people in targets.items()
    )
    told = state.updated_at
    return PendingChange(
        event=event,
        changes=changes,
        announced_at=told if told.tzinfo is not None else told.replace(tzinfo=dt.UTC),
        people=len(rows),
        recipients=recipients,
    )


def pending_changes(session: Session, settings: Settings, now: dt.datetime) -> list[PendingChange]:
    """Every configured event's change waiting for ``mailbot announce``, in config
    order. Reads only: for ``check-config``, ``status`` and the daily digest."""
    return [
        change
        for event in settings.events
        if (change := pending_change(session, settings, event, now)) is not None
    ]


_logged: set[tuple[str, str, str, str]] = set()
"""(database, event, announced fingerprint, configured fingerprint) of the pending
changes this process has logged already: once each, not on every pass."""


def announce_changes(
    session: Session, settings: Settings, mailer: MailerFactory, now: dt.datetime, out: list[str]
) -> None:
    """Every pass: record each event's state the first time it is seen, and seat people
    from the waiting list when the organisers raised the capacity (``promoted`` mails go
    out by themselves: that is no announcement of a change).

    A changed date, time, venue or title mails nobody here, whatever the pass or a
    reload (SIGHUP) sees: it waits for ``mailbot announce`` (:func:`announce`), and is
    logged once per process. Reminders and every other mail meanwhile go out as usual
    with the configured (new) details — a pending change blocks nothing. Only where
    there is nobody to tell — the event's day has passed, or no one holds a seat — is
    the new state recorded at once, without mail.

    An idle pass reads every event's state row in one query and, for an event still
    ahead, looks once (indexed, first row only) whether anybody waits for a seat."""
    today = now.astimezone(settings.tz).date()
    keys = [event.key for event in settings.events]
    states = {s.event_key: s for s in session.exec(select(EventState).where(col(EventState.event_key).in_(keys)))}
    for event in settings.events:
        state = states.get(event.key)
        fingerprint = event_fingerprint(event)
        if state is None:
            session.add(EventState(event_key=event.key, fingerprint=fingerprint,
                                   snapshot_json=json.dumps(_shown(event), ensure_ascii=False), updated_at=now))
            session.flush()
        elif state.fingerprint != fingerprint:
            if _over(event, settings, now) or not _holds(session, event.key, "confirmed"):
                _record(state, event, now)
                session.add(state)
                session.flush()
            elif (seen := (settings.db_url, event.key, state.fingerprint, fingerprint)) not in _logged:
                _logged.add(seen)
                found = _unannounced(session, event)
                summary = "; ".join(str(c) for c in found[1]) if found else ""
                log.warning(
                    "event %s changed in the config (%s); participants are not told until "
                    "`mailbot announce %s` (or --silent to accept it without mail)",
                    event.key, summary, event.key,
                )
        # Nobody waiting, nobody to seat: skip promote's count of the seats taken.
        if today < event.date and _holds(session, event.key, "waitlisted"):
            moved = promote(session, event.key, event.capacity, now)
            if moved:
                _send_promoted(session, mailer(), moved, event, now, out)


def _send_promoted(
    session: Session, mailer: Mailer, moved: list[Participant], event: EventSettings, now: dt.datetime, out: list[str]
) -> None:
    from mailbot.replies import Queued, promoted  # composing: only when somebody moved up

    queued = Queued()
    promoted(session, mailer, moved, event, now=now, out=queued)
    out.extend(queued.queued)


def announce(
    session: Session, mailer: Mailer, event: EventSettings, now: dt.datetime, *, silent: bool = False
) -> Announcement | None:
    """Announce ``event``'s pending change (:func:`pending_change`), in the caller's
    transaction; None when there is none.

    Mails one ``changed`` per address (the seated people, whoever registered them)
    listing the changes since the last announced state, each with its calendar entry
    at the address's next SEQUENCE; the event's announced SEQUENCE goes up by one and
    names the mails' dedupe keys, so announcing again sends nothing twice. ``silent``
    records the new state as announced and mails nobody (a typo in the venue); the
    calendars catch up with the next file each address gets (a reminder)."""
    from mailbot.replies import Queued

    change = pending_change(session, mailer.settings, event, now)
    if change is None:
        return None
    found = _unannounced(session, event, lock=True)
    if found is None:  # announced meanwhile by another process
        return None
    state = found[0]
    _record(state, event, now)
    out = Queued()
    if not silent:
        state.sequence += 1
    session.add(state)
    session.flush()
    if not silent:
        _notify_change(session, mailer, event, state.sequence, [c.as_context() for c in change.changes], now, out)
    return Announcement(change, tuple(out.queued), silent)


def _notify_change(
    session: Session,
    mailer: Mailer,
    event: EventSettings,
    sequence: int,
    changes: list[dict[str, str]],
    now: dt.datetime,
    out: Queued,
) -> None:
    from mailbot.replies import display_name, person_view

    rows = _seated(session, event.key)
    targets = _change_targets(session, rows, mailer.settings.replying_as)
    for addr, people in targets.items():
        row = mailer.queue(
            session,
            kind="changed",
            event=event,
            to=addr,
            now=now,
            dedupe=f"changed:{event.key}:{sequence}:{addr}",
            context={"people": [person_view(session, p, event.key) for p in people], "changes": changes},
            to_name=display_name(None, addr, people),
            registration_id=people[0].registration_id,
        )
        out.add(row, "changed", addr)
