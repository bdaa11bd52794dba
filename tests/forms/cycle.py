"""The 2016 cycle as the form tests know it: titles, event refs and form headers."""

from __future__ import annotations

import datetime as dt

from mailbot.forms.blank import EventHeader
from mailbot.forms.model import EventRef

TITLE = "Współpraca w partnerstwach samorządowych"
EVENTS = [
    EventRef("lublin-2016", TITLE, "Lublin", dt.date(2016, 3, 21)),
    EventRef("opole-2016", TITLE, "Opole", dt.date(2016, 4, 18)),
]
OPOLE = EventHeader(
    title=TITLE,
    city="Opole",
    date=dt.date(2016, 4, 18),
    start_time=dt.time(11, 0),
    venue="Sala Herbowa Urzędu Wojewódzkiego",
    address="ul. Piastowska 14",
    deadline=dt.date(2016, 4, 14),
)
