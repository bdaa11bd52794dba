"""Render reply mails from Jinja2 templates: a plain-text part always, HTML beside it.

Each kind ``K`` has ``K.txt.j2`` and ``K.html.j2``; each sets ``subject`` with
``{% set subject %}…{% endset %}``. An admin overrides any file by dropping one with the
same name into ``templates_dir``. ``StrictUndefined`` turns a typo into an error at
render time instead of a silently blank line in a participant's mail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
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

KINDS = ("ack", "incomplete", "no_form")


def date_pl(value: dt.date | dt.datetime) -> str:
    """'18 kwietnia 2016 r.' — the genitive month form Polish letters use."""
    return f"{format_date(value, 'd MMMM y', locale='pl')} r."


def weekday_pl(value: dt.date | dt.datetime) -> str:
    """'poniedziałek'."""
    return str(format_date(value, "EEEE", locale="pl"))


def time_pl(value: dt.time) -> str:
    return str(format_time(value, "HH:mm", locale="pl"))


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

    def render(self, kind: str, context: Mapping[str, Any]) -> Rendered:
        text_mod = self.env.get_template(f"{kind}.txt.j2").make_module(dict(context))
        html_mod = self.env.get_template(f"{kind}.html.j2").make_module(dict(context))
        subject = " ".join(str(getattr(text_mod, "subject", "")).split())
        if not subject:
            raise ValueError(f"template {kind}.txt.j2 does not set a subject")
        return Rendered(subject=subject, text=str(text_mod).strip() + "\n", html=str(html_mod))

    def check(self, kinds: Sequence[str] = KINDS) -> list[str]:
        """Names of templates that fail to load (for check-config)."""
        bad = []
        for kind in kinds:
            for part in ("txt", "html"):
                name = f"{kind}.{part}.j2"
                try:
                    self.env.get_template(name)
                except Exception as e:  # noqa: BLE001 - reported to the admin verbatim
                    bad.append(f"{name}: {e}")
        return bad
