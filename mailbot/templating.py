"""Render reply mails from Jinja2 templates: a plain-text part always, HTML beside it.

Each kind ``K`` has ``K.txt.j2`` and ``K.html.j2``; each sets ``subject`` with
``{% set subject %}…{% endset %}``. An admin overrides any file by dropping one with the
same name into ``templates_dir``. ``StrictUndefined`` turns a typo into an error at
render time instead of a silently blank line in a participant's mail.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_time
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    select_autoescape,
)

from mailbot.resources import default_templates_dir
from mailbot.salutation import addressee

KINDS = (
    "ack",
    "incomplete",
    "no_form",
    "waitlist",
    "promoted",
    "cancelled",
    "closed",
    "reminder",
    "changed",
    "updated",
    "question_received",
    "forwarded_question",
    "open_events",
)

WITHDRAWAL_SENTENCE = (
    "Aby zrezygnować z udziału, wystarczy odpowiedzieć na tę wiadomość, "
    "wpisując w treści słowo „rezygnuję”."
)
"""The one footer sentence that names the withdrawal word. Templates print it through the
``withdrawal_sentence`` global so it cannot drift from what the quote-stripper ignores;
no other template text may contain a withdrawal word."""

WITHDRAWAL_KINDS = ("ack", "updated", "waitlist", "promoted", "reminder", "changed")
"""Kinds whose footer carries :data:`WITHDRAWAL_SENTENCE` (global ``withdrawal_kinds``)."""

_EXTRA_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")

CHANGE_NAMES: Mapping[str, tuple[str, str]] = {
    # field of a ``changed`` mail → (genitive after "Zmiana", short name in a list)
    "Tytuł": ("tytułu", "tytuł"),
    "Data": ("terminu", "termin"),
    "Godzina rozpoczęcia": ("godziny rozpoczęcia", "godzina"),
    "Godzina zakończenia": ("godziny zakończenia", "godzina zakończenia"),
    "Miejsce": ("miejsca", "miejsce"),
    "Adres": ("adresu", "adres"),
}
"""How the subject of a ``changed`` mail names each announced field (see
:func:`change_subject`); a field not listed here is named as it is, in lower case."""

_SHORT_VALUE = 25
"""Old and new values longer than this stay out of a subject (a venue's full name)."""


def date_pl(value: dt.date | dt.datetime) -> str:
    """'18 kwietnia 2016 r.' — the genitive month form Polish letters use."""
    return _cached(_date_pl, value)


def weekday_pl(value: dt.date | dt.datetime) -> str:
    """'poniedziałek'."""
    return _cached(_weekday_pl, value)


def time_pl(value: dt.time) -> str:
    return _cached(_time_pl, value)


def _cached(fmt: Callable[[Any], str], value: Any) -> str:
    """Babel's formatting, remembered for plain dates and naive times: every mail of an
    event prints the same few. Not for datetimes and aware times, which compare equal
    across time zones while printing differently."""
    if type(value) is dt.date or (type(value) is dt.time and value.tzinfo is None):
        return _remembered(fmt, value)
    return fmt(value)


@functools.lru_cache(maxsize=1024)
def _remembered(fmt: Callable[[Any], str], value: dt.date | dt.time) -> str:
    return fmt(value)


def _date_pl(value: dt.date | dt.datetime) -> str:
    return f"{format_date(value, 'd MMMM y', locale='pl')} r."


def _weekday_pl(value: dt.date | dt.datetime) -> str:
    return str(format_date(value, "EEEE", locale="pl"))


def _time_pl(value: dt.time) -> str:
    return str(format_time(value, "HH:mm", locale="pl"))


def in_days_pl(days: int | None) -> str:
    """When an event is, seen from a reminder: 'jutro', 'za tydzień', 'za 3 dni'."""
    if days is None or days < 0:
        return "wkrótce"
    if days == 0:
        return "dziś"
    if days == 1:
        return "jutro"
    if days == 7:
        return "za tydzień"
    return f"za {days} dni"


def plural_pl(count: int, one: str, few: str, many: str) -> str:
    """The Polish noun form for ``count``: ``plural_pl(n, "osoba", "osoby", "osób")``.

    1 → one; 2–4, 22–24, 32–34 … → few; everything else (0, 5–21, 25–31 …) → many.
    """
    n = abs(count)
    if n == 1:
        return one
    if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14):
        return few
    return many


def _blank(value: object) -> bool:
    return value is None or str(value).strip() in ("", "—")


def change_subject(changes: Sequence[Mapping[str, Any]]) -> str:
    """What changed, for the subject of a ``changed`` mail: 'Zmiana godziny
    rozpoczęcia: 10:00 → 11:00', 'Zmiana miejsca konferencji' (long values stay in the
    body), 'Zmiany w konferencji: godzina, miejsce'."""
    if not changes:
        return "Zmiana szczegółów konferencji"
    if len(changes) == 1:
        c = changes[0]
        field = str(c.get("field") or "")
        genitive = CHANGE_NAMES.get(field, (None, ""))[0]
        if genitive is None:
            return f"Zmiana w konferencji: {field.lower()}" if field else "Zmiana szczegółów konferencji"
        old, new = c.get("old"), c.get("new")
        if _blank(new) or len(str(new)) > _SHORT_VALUE or (not _blank(old) and len(str(old)) > _SHORT_VALUE):
            return f"Zmiana {genitive} konferencji"
        if _blank(old):
            return f"Zmiana {genitive}: {new}"
        return f"Zmiana {genitive}: {old} → {new}"
    short: list[str] = []
    for c in changes:
        field = str(c.get("field") or "")
        name = CHANGE_NAMES.get(field, (None, field.lower()))[1]
        if name and name not in short:
            short.append(name)
    return "Zmiany w konferencji: " + ", ".join(short)


def names_pl(people: Sequence[Mapping[str, Any]], limit: int = 2) -> str:
    """Who a mail is about, for a subject: 'Anna Kowalska', 'Anna Kowalska i Jan
    Nowak', '3 osoby' (more than ``limit``, or someone without a name)."""
    named = [str(p.get("full_name") or "").strip() for p in people]
    if not named:
        return ""
    if len(named) > limit or not all(named):
        return f"{len(named)} {plural_pl(len(named), 'osoba', 'osoby', 'osób')}"
    return " i ".join([", ".join(named[:-1]), named[-1]] if len(named) > 1 else named)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Templates:
    """The template environment for reply mails."""

    def __init__(self, override_dir: Path | None = None, default_dir: Path | None = None) -> None:
        loaders = []
        if override_dir is not None:
            loaders.append(FileSystemLoader(str(override_dir)))
        loaders.append(FileSystemLoader(str(default_dir or default_templates_dir())))
        self.env = Environment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html.j2", "html"), default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["date_pl"] = date_pl
        self.env.filters["weekday_pl"] = weekday_pl
        self.env.filters["time_pl"] = time_pl
        self.env.filters["in_days_pl"] = in_days_pl
        self.env.filters["plural_pl"] = plural_pl
        self.env.filters["change_subject"] = change_subject
        self.env.filters["names_pl"] = names_pl
        self.env.globals["withdrawal_sentence"] = WITHDRAWAL_SENTENCE
        self.env.globals["withdrawal_kinds"] = WITHDRAWAL_KINDS

    def render(self, kind: str, context: Mapping[str, Any]) -> Rendered:
        """Render ``kind``. Besides ``context`` the templates see ``you``
        (:class:`mailbot.salutation.Addressee`: the greeting and the polite pronoun of the
        mail), unless the context brings its own: from the name on the form of the person
        whose own address this is (``recipient_person``), else the display name the mail
        goes to (``recipient_name``), else "Szanowni Państwo"."""
        ctx = dict(context)
        if "you" not in ctx:
            ctx["you"] = addressee(ctx.get("recipient_person") or ctx.get("recipient_name"))
        text_mod = self.env.get_template(f"{kind}.txt.j2").make_module(dict(ctx))
        html_mod = self.env.get_template(f"{kind}.html.j2").make_module(dict(ctx))
        subject = " ".join(str(getattr(text_mod, "subject", "")).split())
        if not subject:
            raise ValueError(f"template {kind}.txt.j2 does not set a subject")
        # Optional paragraphs leave runs of blank lines behind; a mail shows at most one.
        text = _EXTRA_BLANK_LINES.sub("\n\n", str(text_mod)).strip() + "\n"
        return Rendered(subject=subject, text=text, html=str(html_mod))

    def check(self, kinds: Sequence[str] = KINDS) -> list[str]:
        """Problems with the templates, for check-config: files that fail to load, and
        kinds that fail to render with sample data (a misspelt variable, a bad filter)."""
        from mailbot.template_samples import sample_context  # it imports this module

        bad = []
        for kind in kinds:
            loaded = True
            for part in ("txt", "html"):
                name = f"{kind}.{part}.j2"
                try:
                    self.env.get_template(name)
                except Exception as e:  # noqa: BLE001 - reported to the admin verbatim
                    bad.append(f"{name}: {e}")
                    loaded = False
            if loaded:
                try:
                    self.render(kind, sample_context(kind))
                except Exception as e:  # noqa: BLE001 - reported to the admin verbatim
                    bad.append(f"{kind}: does not render with sample data: {type(e).__name__}: {e}")
        return bad
