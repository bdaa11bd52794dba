"""Reminders before an event, and notices when its date, time or venue changes.

Both go only to people holding a seat (confirmed, registration not cancelled or late)
whose address is not bouncing — a reminder only to those who held it at the reminder's
moment, so a late registrant gets the 1-day reminder and not a belated 7-day one. A
person without an e-mail address, or whose address is still unconfirmed (the reader
doubted it: :func:`mailbot.replies.mail_address`), is reached through whoever
registered them. Each mail's dedupe key names the event, the reminder (or the
change's calendar SEQUENCE) and the address, so a second run at the same moment, or a
restart, sends nothing twice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from mailbot.calendar import event_fingerprint
from mailbot.config import EventSettings, Settings
from mailbot.loopguard import safe_to_reply
from mailbot.replies import (
    Mailer,
    Queued,
    display_name,
    is_bouncing,
    mail_address,
    norm_address,
    person_view,
    promoted,
)
from mailbot.seats import HOLDING, promote
from mailbot.store.tables import EventState, Participant, Registration
from mailbot.templating import date_pl, time_pl


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


def _seated(session: Session, event_key: str, seated_by: dt.datetime | None = None) -> list[tuple[Registration, Participant]]:
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
    return [(r, p) for r, p in session.exec(query).all()]


def _by_address(
    session: Session, rows: Sequence[tuple[Registration, Participant]], own: Sequence[str]
) -> dict[str, list[Participant]]:
    out: dict[str, list[Participant]] = {}
    for reg, person in rows:
        # An unconfirmed address is no address of the person's own: whoever registered
        # them is reached instead, as for a person without one.
        addr = mail_address(person) or norm_address(reg.sender_email)
        if not addr or not safe_to_reply(addr, own) or is_bouncing(session, addr):
            continue
        out.setdefault(addr, []).append(person)
    return out


def queue_reminders(session: Session, mailer: Mailer, now: dt.datetime, out: Queued) -> None:
    settings = mailer.settings
    for event in settings.events:
        due = due_reminder(event, settings, now)
        if due is None:
            continue
        label = offset_label(due.offset)
        days = (event.date - due.moment.astimezone(settings.tz).date()).days
        rows = _seated(session, event.key, seated_by=due.moment)
        for addr, people in _by_address(session, rows, settings.replying_as).items():
            row = mailer.queue(
                session,
                kind="reminder",
                event=event,
                to=addr,
                now=now,
                dedupe=f"reminder:{event.key}:{label}:{addr}",
                context={
                    "people": [person_view(session, p, event.key) for p in people],
                    "days_before": days,
                },
                to_name=display_name(None, addr, people),
                registration_id=people[0].registration_id,
            )
            out.add(row, "reminder", addr)


def _announced(event: EventSettings) -> dict[str, str]:
    return {
        "Tytuł": event.title,
        "Data": date_pl(event.date),
        "Godzina rozpoczęcia": time_pl(event.start_time),
        "Godzina zakończenia": time_pl(event.end_time) if event.end_time else "",
        "Miejsce": event.venue,
        "Adres": f"{event.address}, {event.city}",
    }


def announce_changes(session: Session, mailer: Mailer, now: dt.datetime, out: Queued) -> None:
    """Compare each event with what participants were told; on a change, one ``changed``
    mail per address with the calendar entry at the next SEQUENCE. Also seats people
    from the waiting list when the organisers raised the capacity."""
    settings = mailer.settings
    today = now.astimezone(settings.tz).date()
    for event in settings.events:
        fingerprint = event_fingerprint(event)
        shown = _announced(event)
        state = session.get(EventState, event.key)
        if state is None:
            session.add(EventState(event_key=event.key, fingerprint=fingerprint,
                                   snapshot_json=json.dumps(shown, ensure_ascii=False), updated_at=now))
            session.flush()
        elif state.fingerprint != fingerprint:
            before = json.loads(state.snapshot_json or "{}")
            state.fingerprint = fingerprint
            state.snapshot_json = json.dumps(shown, ensure_ascii=False)
            state.updated_at = now
            state.sequence += 1
            session.add(state)
            session.flush()
            if today <= event.date:
                changes = [
                    {"field": k, "old": before.get(k) or "—", "new": v or "—"}
                    for k, v in shown.items()
                    if (before.get(k) or "") != v
                ]
                _notify_change(session, mailer, event, state.sequence, changes, now, out)
        if today < event.date:
            moved = promote(session, event.key, event.capacity, now)
            promoted(session, mailer, moved, event, now=now, out=out)


def _notify_change(
    session: Session,
    mailer: Mailer,
    event: EventSettings,
    sequence: int,
    changes: list[dict[str, str]],
    now: dt.datetime,
    out: Queued,
) -> None:
    rows = _seated(session, event.key)
    targets = _by_address(session, rows, mailer.settings.replying_as)
    # Whoever registered a group hears about it too: they told their colleagues.
    for reg, person in rows:
        addr = norm_address(reg.sender_email)
        if addr and safe_to_reply(addr, mailer.settings.replying_as) and not is_bouncing(session, addr):
            group = targets.setdefault(addr, [])
            if person not in group:
                group.append(person)
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
