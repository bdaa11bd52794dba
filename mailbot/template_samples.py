"""Realistic sample contexts for every reply kind (``mailbot preview`` and the tests).

``sample_context(kind)`` returns a dict with every key of :data:`BASE_KEYS` — the same
keys mailbot passes when it really sends that kind — filled with plausible Polish data
for the Opole conference of 18 April 2016, or for ``event`` when one is given (so an
admin can preview a template against a configured event).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from typing import Any

from mailbot.address_replies import CONFIRM_SENTENCE
from mailbot.config import DEFAULT_FEE_LINE, DEFAULT_WORKSHOPS
from mailbot.templating import KINDS, date_pl, time_pl

BASE_KEYS: frozenset[str] = frozenset(
    {
        "event",
        "signature",
        "organiser_email",
        "original_subject",
        "recipient_name",
        "kind",
        "code",
        "registrations",
        "people",
        "problems",
        "unreadable",
        "blank_form_returned",
        "attachment_name",
        "calendar_attached",
        "recipient_attends",
        "recipient_keeps_seat",
        "recipient_person",
        "changes",
        "days_before",
        "closed_reason",
        "workshop_names",
        "unconfirmed_emails",
        "confirmed_emails",
        "confirm_sentence",
        "question",
        "open_events",
    }
)
"""Every key a reply template receives, whatever its kind."""

DEFAULT_EVENT: Mapping[str, object] = {
    "key": "opole-2016",
    "title": "Współpraca w partnerstwach samorządowych",
    "city": "Opole",
    "date": dt.date(2016, 4, 18),
    "start_time": dt.time(11, 0),
    "end_time": dt.time(15, 0),
    "venue": "Sala Herbowa Urzędu Wojewódzkiego w Opolu",
    "address": "ul. Piastowska 14",
    "deadline": dt.date(2016, 4, 14),
    "organiser": {
        "name": "Związek Miast Polskich",
        "phone": "61 000 00 00",
        "email": "biuro@partnerstwa.example.pl",
        "data_controller": "Administratorem danych osobowych uczestników jest Związek Miast Polskich.",
    },
    "workshops": [{"key": w.key, "title": w.title, "capacity": w.capacity} for w in DEFAULT_WORKSHOPS],
    "fee_line": DEFAULT_FEE_LINE,
}

WORKSHOP_NAMES: Mapping[str, str] = {w.key: w.title for w in DEFAULT_WORKSHOPS}
"""The default workshop titles; a sample for a configured event names that event's."""


def _workshop_names(event: Mapping[str, Any]) -> dict[str, str]:
    """Letter → title of ``event["workshops"]`` (as :func:`mailbot.replies.event_context`
    gives them), else the defaults."""
    items = event.get("workshops")
    if not isinstance(items, list):
        return dict(WORKSHOP_NAMES)
    return {str(w["key"]): str(w["title"]) for w in items if isinstance(w, Mapping)}


def _code(event: Mapping[str, object], body: str) -> str:
    """A code shaped like the real ones: the event key's first three letters, then ``body``."""
    prefix = "".join(c for c in str(event.get("key", "")).upper() if c.isalpha())[:3] or "REG"
    return f"{prefix}-{body}"


def _participant(
    full_name: str | None,
    job_title: str | None,
    email: str | None,
    status: str = "confirmed",
    waitlist_position: int | None = None,
    email_unconfirmed: bool = False,
) -> dict[str, Any]:
    return {
        "full_name": full_name,
        "job_title": job_title,
        "email": email,
        "email_unconfirmed": email_unconfirmed,
        "status": status,
        "waitlist_position": waitlist_position,
    }


def _person(p: Mapping[str, Any]) -> dict[str, Any]:
    """The ``people`` entry for a participant."""
    return {
        "full_name": p["full_name"],
        "status": p["status"],
        "waitlist_position": p["waitlist_position"],
    }


def _registration(
    code: str,
    participants: list[dict[str, Any]],
    *,
    status: str = "confirmed",
    institution: str | None = "Urząd Miejski w Nysie",
    workshops: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "code": code,
        "institution": institution,
        "workshops": ["A"] if workshops is None else workshops,
        "status": status,
        "participants": participants,
    }


def sample_context(kind: str, event: Mapping[str, object] | None = None) -> dict[str, Any]:
    """A full, realistic template context for ``kind`` (one of :data:`KINDS`)."""
    if kind not in KINDS:
        raise ValueError(f"unknown reply kind {kind!r}; known: {', '.join(KINDS)}")
    ev: dict[str, Any] = copy.deepcopy(dict(DEFAULT_EVENT if event is None else event))
    code = _code(ev, "7K3FQ")
    city_date = f"{ev['city']}, {date_pl(ev['date'])}"
    kowalska = _participant(
        "Anna Kowalska", "Kierownik Referatu Promocji", "a.kowalska@nysa.pl"
    )
    wisniewski = _participant(
        "Piotr Wiśniewski", "Inspektor ds. współpracy zagranicznej", "p.wisniewski@nysa.pl"
    )
    ctx: dict[str, Any] = {
        "event": ev,
        "signature": "Zespół organizacyjny konferencji",
        "organiser_email": "zgloszenia@example.org",
        "original_subject": f"Zgłoszenie na konferencję – {ev['city']}",
        "recipient_name": "Anna Kowalska",
        "kind": kind,
        "code": code,
        "registrations": [_registration(code, [kowalska, wisniewski])],
        "people": [_person(kowalska), _person(wisniewski)],
        "problems": [],
        "unreadable": [],
        "blank_form_returned": False,
        "attachment_name": "",
        "calendar_attached": False,
        "recipient_attends": True,
        "recipient_keeps_seat": False,
        "recipient_person": "Anna Kowalska",
        "changes": [],
        "days_before": None,
        "closed_reason": None,
        "workshop_names": _workshop_names(ev),
        "unconfirmed_emails": [],
        "confirmed_emails": [],
        "confirm_sentence": CONFIRM_SENTENCE,
        "question": None,
        "open_events": [],
    }

    if kind == "ack":
        # The sender's copy, with an address the reader doubted (a scan; the name
        # suggests another spelling): the request to confirm or correct it.
        wisniewski.update(email="p.wisniewskl@nysa.pl", email_unconfirmed=True)
        ctx["unconfirmed_emails"] = [
            {"full_name": "Piotr Wiśniewski", "email": "p.wisniewskl@nysa.pl", "suggestion": "p.wisniewski@nysa.pl"}
        ]
    elif kind == "incomplete":
        wisniewski["email"] = None
        ctx["registrations"] = [_registration(code, [kowalska, wisniewski], status="incomplete")]
        ctx["problems"] = ["Brak adresu e-mail uczestnika 2 (Piotr Wiśniewski)."]
    elif kind == "no_form":
        ctx.update(
            code=None,
            registrations=[],
            people=[],
            original_subject=f"Konferencja {ev['city']} – zgłoszenie",
            # An office's display name: no one person's first name, so the mail says
            # "Szanowni Państwo," (mailbot.salutation).
            recipient_name="Sekretariat Urzędu Miejskiego w Nysie",
            recipient_person=None,
            attachment_name=f"zgloszenie-{ev['key']}.docx",
            unreadable=["skan_zgloszenia.heic"],
        )
    elif kind == "waitlist":
        nowak = _participant("Jan Nowak", "Sekretarz Gminy", "sekretarz@glucholazy.pl", "waitlisted", 3)
        lis = _participant("Ewa Lis", "Podinspektor", "e.lis@glucholazy.pl", "waitlisted", 4)
        code = _code(ev, "W2N8P")
        ctx.update(
            code=code,
            registrations=[
                _registration(code, [nowak, lis], institution="Urząd Miejski w Głuchołazach")
            ],
            people=[_person(nowak), _person(lis)],
            original_subject="Zgłoszenie – Gmina Głuchołazy",
            recipient_name="Jan Nowak",
            recipient_person="Jan Nowak",
        )
    elif kind == "promoted":
        ctx.update(
            people=[_person(kowalska)],
            registrations=[_registration(code, [kowalska])],
            original_subject=None,
            calendar_attached=True,
        )
    elif kind == "cancelled":
        wisniewski["status"] = "cancelled"
        ctx.update(
            people=[_person(wisniewski)],
            registrations=[_registration(code, [wisniewski])],
            original_subject=f"Re: Potwierdzenie zgłoszenia [{code}] – {city_date}",
            recipient_name="Piotr Wiśniewski",
            recipient_person="Piotr Wiśniewski",
            recipient_attends=False,
        )
    elif kind == "closed":
        zielinski = _participant(
            "Tomasz Zieliński", "Naczelnik Wydziału Rozwoju", "t.zielinski@brzeg-powiat.pl", "late"
        )
        code = _code(ev, "R8M2T")
        ctx.update(
            code=code,
            registrations=[
                _registration(
                    code, [zielinski], status="late", institution="Starostwo Powiatowe w Brzegu"
                )
            ],
            people=[_person(zielinski)],
            original_subject=f"Zgłoszenie na konferencję w dniu {date_pl(ev['date'])}",
            recipient_name="Tomasz Zieliński",
            recipient_person="Tomasz Zieliński",
            closed_reason="deadline",
        )
    elif kind == "reminder":
        # Sent about an event, not one registration: no code, no registrations.
        ctx.update(
            code=None, registrations=[], original_subject=None, days_before=1, calendar_attached=True
        )
    elif kind == "changed":
        ctx.update(
            code=None,
            registrations=[],
            original_subject=None,
            calendar_attached=True,
            changes=[
                {
                    "field": "Godzina rozpoczęcia",
                    "old": "10:00",
                    "new": time_pl(ev["start_time"]),
                },
                {
                    "field": "Miejsce",
                    "old": "Sala Sejmiku Urzędu Marszałkowskiego Województwa Opolskiego",
                    "new": str(ev["venue"]),
                },
            ],
        )
    elif kind == "updated":
        # The answer to our question about a doubtful address: the corrected address
        # (``confirmed_emails``) and the change it made. A corrected form brings the same
        # mail with ``changes`` only.
        ctx.update(
            registrations=[_registration(code, [kowalska, wisniewski], workshops=["A", "B"])],
            original_subject=f"Re: Potwierdzenie zgłoszenia [{code}] – {city_date}",
            confirmed_emails=[
                {"full_name": "Piotr Wiśniewski", "email": "p.wisniewski@nysa.pl", "corrected": True}
            ],
            changes=[
                {
                    "field": "Piotr Wiśniewski: e-mail",
                    "old": "p.wisniewskl@nysa.pl",
                    "new": "p.wisniewski@nysa.pl",
                },
            ],
        )
    _issue12_samples(kind, ctx, ev, code)
    return ctx


def _issue12_samples(kind: str, ctx: dict[str, Any], ev: Mapping[str, Any], code: str) -> None:
    """The kinds of issue 12: a registered person's question (``question_received``, and
    its forward to the organisers, ``forwarded_question``) and a form for an event already
    held with no clear choice of another (``open_events``)."""
    if kind == "question_received":
        ctx.update(
            original_subject=f"Re: Potwierdzenie zgłoszenia [{code}] – {ev['city']}, {date_pl(ev['date'])}",
        )
    elif kind == "forwarded_question":
        ctx.update(
            recipient_name=None,
            recipient_person=None,
            recipient_attends=False,
            original_subject=f"Re: Potwierdzenie zgłoszenia [{code}] – {ev['city']}, {date_pl(ev['date'])}",
            question={
                "topic": "question",
                "why": "Pytanie od osoby zarejestrowanej na konferencję – mailbot nie odpowiada na nie sam. "
                "Nadawca dostał potwierdzenie, że wiadomość przekazano organizatorom.",
                "from_name": "Anna Kowalska",
                "from_addr": "a.kowalska@nysa.pl",
                "institution": "Urząd Miejski w Nysie",
                "subject": f"Re: Potwierdzenie zgłoszenia [{code}] – {ev['city']}, {date_pl(ev['date'])}",
                "received_at": dt.datetime(2016, 4, 5, 10, 12),
                "text": "Dzień dobry,\n\nczy na miejscu będzie parking dla uczestników?\n\nPozdrawiam\nAnna Kowalska",
                "codes": [code],
                "original_attached": True,
            },
        )
    elif kind == "open_events":
        later = [
            ("wroclaw-2016", "Wrocław", dt.date(2016, 5, 9), "Sala Marmurowa Dolnośląskiego Urzędu Wojewódzkiego",
             "pl. Powstańców Warszawy 1"),
            ("krakow-2016", "Kraków", dt.date(2016, 5, 16), "Sala Obrad Małopolskiego Urzędu Wojewódzkiego",
             "ul. Basztowa 22"),
        ]
        ctx.update(
            code=None,
            registrations=[],
            people=[],
            recipient_name="Dariusz Wójcik",
            recipient_person=None,
            recipient_attends=False,
            original_subject="Zgłoszenie na konferencję",
            closed_reason="event_over",
            open_events=[
                dict(
                    ev, key=key, city=city, date=day, venue=venue, address=address,
                    deadline=day - dt.timedelta(days=4), attachment_name=f"zgloszenie-{key}.docx",
                )
                for key, city, day, venue, address in later
            ],
        )


def command_result_sample() -> dict[str, Any]:
    """A full context for ``command_result`` (the answer to an organiser's reply commands,
    :mod:`mailbot.organiser_commands`; an organisers' mail, so not one of :data:`KINDS`)."""
    from mailbot.organiser_commands import HELP, CommandResult  # it imports the pipeline

    results = [
        CommandResult("PRZYJMIJ 12", "done", "przyjęte — Anna Kowalska ma miejsce, Piotr Wiśniewski – lista rezerwowa"),
        CommandResult("POPRAW 14 e-mail uczestnika 2: p.wisniewski@nysa.pl", "done",
                      "poprawione — Piotr Wiśniewski: e-mail: p.wisniewskl@nysa.pl → p.wisniewski@nysa.pl"),
        CommandResult("ODRZUĆ 13", "refused", "nie wykonano — brak uprawnień"),
        CommandResult("USUŃ 15", "unknown", "nie wykonano — nieznane polecenie „USUŃ”"),
    ]
    return {
        "kind": "command_result",
        "results": results,
        "done": 2,
        "not_done": 2,
        "unknown": True,
        "original_subject": "Re: Zestawienie dzienne 16.04.2016 – Opole, 18 kwietnia 2016 r.",
        "recipient": "opole@partnerstwa.example.pl",
        "signature": "Zespół organizacyjny konferencji",
        "organiser_email": "zgloszenia@example.org",
        "help": HELP,
        "generated_at": dt.datetime(2016, 4, 16, 9, 5),
    }
