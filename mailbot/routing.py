"""Which event a form is registered for, when the form and the message disagree.

All events of a cycle share one form; only the header line names the day. People take
last month's file, fill it in and write "przesyłam zgłoszenie na konferencję w Opolu":
the header says Lublin (already held), the person means Opole. The form's event, what
the person wrote (subject and their own words, never a quote or a signature block) and
the events still taking registrations decide together:

- a form for an event still taking registrations, or one naming no event, goes where it
  always went (the header, else ``default_event``): a city in a message never overrides
  an open event's form;
- a form for an event already held or closed, from a message that names exactly one
  *other* event of the same cycle still taking registrations (its city and/or date),
  is registered for that one — and the reason says so ("formularz: Lublin, w treści:
  Opole → zapisano na Opole"), so the organisers can check it;
- a form for an event already held when the message names none of the open events, or
  several: the sender is told which events are open (with their blank forms) and the
  organisers of the form's event and of those events get the message. With none named
  the form is still stored as a late registration for its own event (as before, so
  nothing is lost); with several named nothing is stored;
- a form for an event only closed (deadline passed, not yet held) naming no other open
  event is a late registration for it, as before.

Pure: no database, no mail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from mailbot.config import EventSettings, Settings
from mailbot.forms.events import events_named
from mailbot.forms.model import EventRef, FormData
from mailbot.intent import strip_quoted
from mailbot.templating import date_pl

__all__ = ["Route", "open_events", "route_form"]


@dataclass(frozen=True)
class Route:
    """``as_form``: the form's own event (or the default); ``routed``: ``event_key``, an
    open event the message names; ``ask``: register nothing, offer ``candidates``."""

    kind: Literal["as_form", "routed", "ask"]
    event_key: str | None = None
    candidates: tuple[str, ...] = ()
    note: str = ""
    """Polish, for the message's reason (what the organisers read in the review queue)."""
    form_event_over: bool = False
    """The form's own event has already taken place (else only its deadline passed)."""
    store_late: bool = False
    """``ask`` only: the message names no open event, so the form is still stored as a
    late registration for its own event (nothing is lost); with several named, nothing
    is stored."""


def open_events(settings: Settings, today: dt.date) -> list[EventSettings]:
    """Events still taking registrations on ``today``, soonest first."""
    return sorted((e for e in settings.events if today <= e.deadline), key=lambda e: e.date)


def _label(event: EventSettings) -> str:
    return f"{event.city}, {date_pl(event.date)}"


def route_form(settings: Settings, form: FormData, *, subject: str, text: str, today: dt.date) -> Route:
    """Where ``form`` goes, given the message's ``subject`` and body ``text``."""
    if form.event is None:
        return Route("as_form")
    try:
        own = settings.event(form.event)
    except KeyError:  # an event the config no longer has: as before
        return Route("as_form")
    if today <= own.deadline:
        return Route("as_form")
    over = today > own.date
    cycle = [e for e in open_events(settings, today) if e.key != own.key and e.title == own.title]
    if not cycle:
        return Route("as_form")  # nothing else to offer: late, as before
    refs = [EventRef(key=e.key, title=e.title, city=e.city, date=e.date) for e in settings.events]
    named = events_named([subject or "", strip_quoted(text or "")], refs)
    chosen = [e for e in cycle if e.key in named]
    state = "już się odbyła" if over else "zapisy zakończone"
    if len(chosen) == 1:
        target = chosen[0]
        return Route(
            "routed",
            event_key=target.key,
            note=(
                f"formularz konferencji {_label(own)} ({state}), w treści wiadomości: {target.city}"
                f" → zapisano na {_label(target)} ({target.key})"
            ),
        )
    if not chosen and not over:
        return Route("as_form")  # the person means this event, only late
    offered = tuple(e.key for e in (chosen or cycle))
    what = (
        "wiadomość wskazuje kilka konferencji: " + ", ".join(e.city for e in chosen)
        + " – niczego nie zapisano"
        if chosen
        else "wiadomość nie wskazuje innej konferencji – zapisano jako spóźnione"
    )
    return Route(
        "ask",
        candidates=offered,
        form_event_over=over,
        store_late=not chosen,
        note=(
            f"formularz konferencji {_label(own)} ({state}); {what}, "
            f"nadawca dostał listę otwartych konferencji z formularzami ("
            + ", ".join(_label(settings.event(k)) for k in offered)
            + "); do decyzji organizatorów"
        ),
    )
