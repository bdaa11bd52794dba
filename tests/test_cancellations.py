"""Withdrawals by e-mail (mailbot.cancellations): whom a "rezygnuję" takes off the list.

A withdrawal gives the person's seat away for good, so these rules are pinned down one by
one: a participant speaks for themselves, whoever registered a group (or quotes its
code) speaks for all of it, names in the text select people but the name under
"Pozdrawiam" does not, and anything ambiguous — two registrations, an unknown sender,
an event already over — is left to a person (``Unclear``) instead of guessed.
Messages are real MIME built with tests.conversation.mail and read by parse_message.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlmodel import Session

from mailbot.cancellations import Unclear, Withdrawal, apply, plan
from mailbot.forms.model import Consents, FormData, Institution
from mailbot.forms.model import Participant as FormPerson
from mailbot.links import linked_registrations
from mailbot.mime import ParsedMessage, parse_message
from mailbot.registrations import apply_form, participants_of
from mailbot.seats import allocate
from mailbot.store.db import make_engine, upgrade
from mailbot.store.tables import InboundMessage, Participant, Registration

from tests.conversation import WARSAW, mail

OPOLE = "opole-2016"
TORUN = "torun-2016"
OPEN = (OPOLE, TORUN)
NOW = dt.datetime(2016, 4, 1, 9, 0, tzinfo=WARSAW)
LATER = NOW + dt.timedelta(days=2)
_n = itertools.count(1)

ANNA = ("Anna Kowalska", "anna@gmina-a.example.pl")
JAN = ("Jan Nowak", "jan@gmina-a.example.pl")
EWA = ("Ewa Lis", None)


@pytest.fixture
def session(tmp_path: Path) -> Session:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    return Session(engine, expire_on_commit=False)


def register(
    session: Session,
    sender: str,
    people: Sequence[tuple[str, str | None]],
    *,
    event_key: str = OPOLE,
    capacity: int = 100,
) -> Registration:
    """A registration as the pipeline stores and seats it."""
    n = next(_n)
    inbound = InboundMessage(dedupe_key=f"k{n}", ref=f"r{n}", raw_sha256="0" * 64, size=1, source="t")
    session.add(inbound)
    session.flush()
    assert inbound.id is not None
    form = FormData(
        file="f.docx", status="ok", format="docx", method="table", event=event_key,
        institution=Institution(name="Urząd Gminy A"),
        participants=[FormPerson(full_name=name, email=email) for name, email in people],
        workshops=["A"], consents=Consents(True, False),
    )
    applied = apply_form(
        session, form, event_key=event_key, event_defaulted=False, sender=sender,
        inbound_id=inbound.id, attachment_id=None, seed=f"s{n}", now=NOW,
    )
    allocate(session, event_key, capacity, applied.added, NOW)
    session.commit()
    return applied.registration


def message(sender: str, subject: str, body: str, *, in_reply_to: str | None = None) -> ParsedMessage:
    return parse_message(mail(sender, subject, body, when=LATER, in_reply_to=in_reply_to))


def people(reg: Registration, session: Session) -> dict[str, Participant]:
    assert reg.id is not None
    return {p.full_name or "": p for p in participants_of(session, reg.id)}


def planned(result: list[Withdrawal] | Unclear) -> list[tuple[str, list[str]]]:
    assert not isinstance(result, Unclear), result
    return [(w.registration.code, sorted(p.full_name or "" for p in w.people)) for w in result]


def test_a_participant_answering_their_own_mail_withdraws_only_themself(session: Session) -> None:
    reg = register(session, "anna@gmina-a.example.pl", [ANNA, JAN])
    parsed = message("jan@gmina-a.example.pl", f"Re: Potwierdzenie zgłoszenia [{reg.code}]",
                     "Dzień dobry,\nniestety rezygnuję z udziału.\n")
    result = plan(session, parsed, linked=[reg], form_people=[], open_keys=OPEN)
    assert planned(result) == [(reg.code, ["Jan Nowak"])]


def test_a_participant_writing_without_a_link_is_found_by_their_address(session: Session) -> None:
    reg = register(session, "sekretariat@gmina-a.example.pl", [ANNA, JAN])
    parsed = message("jan@gmina-a.example.pl", "Rezygnacja", "Rezygnuję z udziału w konferencji.")
    result = plan(session, parsed, linked=[], form_people=[], open_keys=OPEN)
    assert planned(result) == [(reg.code, ["Jan Nowak"])]


def test_a_participant_whose_address_has_capitals_is_found_by_it(session: Session) -> None:
    reg = register(session, "sekretariat@gmina-a.example.pl", [ANNA, ("Jan Nowak", "Jan.Nowak@gmina-a.example.pl")])
    parsed = message("Jan.Nowak@gmina-a.example.pl", "Rezygnacja", "Rezygnuję z udziału w konferencji.")
    result = plan(session, parsed, linked=[], form_people=[], open_keys=OPEN)
    assert planned(result) == [(reg.code, ["Jan Nowak"])]


def test_the_sender_of_the_registration_withdraws_everyone_on_it(session: Session) -> None:
    reg = register(session, "sekretariat@gmina-a.example.pl", [ANNA, JAN, EWA])
    parsed = message("Sekretariat@gmina-a.example.pl", "Rezygnacja", "Rezygnujemy z udziału w konferencji.")
    for linked in ([], [reg]):
        result = plan(session, parsed, linked=linked, form_people=[], open_keys=OPEN)
        assert planned(result) == [(reg.code, ["Anna Kowalska", "Ewa Lis", "Jan Nowak"])]


def test_a_sender_who_is_also_on_the_form_withdraws_the_whole_registration(session: Session) -> None:
    reg = register(session, "anna@gmina-a.example.pl", [ANNA, JAN])
    parsed = message("anna@gmina-a.example.pl", "Rezygnacja", "Rezygnujemy z udziału.")
    assert planned(plan(session, parsed, linked=[], form_people=[], open_keys=OPEN)) == [
        (reg.code, ["Anna Kowalska", "Jan Nowak"])
    ]


def test_a_colleague_quoting_the_code_from_another_address_withdraws_the_registration(session: Session) -> None:
    reg = register(session, "anna@gmina-a.example.pl", [ANNA, JAN])
    parsed = message("kadry@gmina-a.example.pl", f"Rezygnacja – zgłoszenie {reg.code.lower()}",
                     "Nasi pracownicy nie wezmą udziału, odwołujemy zgłoszenie.")
    linked = linked_registrations(session, parsed)
    assert linked == [reg]
    assert planned(plan(session, parsed, linked=linked, form_people=[], open_keys=OPEN)) == [
        (reg.code, ["Anna Kowalska", "Jan Nowak"])
    ]


def test_names_in_the_text_select_the_people(session: Session) -> None:
    reg = register(session, "sekretariat@gmina-a.example.pl", [ANNA, JAN, EWA])
    parsed = message("sekretariat@gmina-a.example.pl", "Zmiana zgłoszenia",
                     "Dzień dobry,\nproszę wykreślić Jana Nowaka z listy uczestników.\n")
    assert planned(plan(session, parsed, linked=[], form_people=[], open_keys=OPEN)) == [
        (reg.code, ["Jan Nowak"])
    ]


def test_the_name_under_the_sign_off_is_not_a_withdrawal_of_that_person(session: Session) -> None:
    reg = register(session, "sekretariat@gmina-a.example.pl", [ANNA, JAN])
    parsed = message("sekretariat@gmina-a.example.pl", "Rezygnacja",
                     "Dzień dobry,\nrezygnujemy z udziału w konferencji.\n\nPozdrawiam\nAnna Kowalska\n")
    # Anna signed the message for her office: the whole registration goes, not just her.
    assert planned(plan(session, parsed, linked=[], form_people=[], open_keys=OPEN)) == [
        (reg.code, ["Anna Kowalska", "Jan Nowak"])
    ]


def test_a_participant_signing_their_own_withdrawal_withdraws_only_themself(session: Session) -> None:
    reg = register(session, "sekretariat@gmina-a.example.pl", [ANNA, JAN])
    parsed = message("jan@gmina-a.example.pl", "Rezygnacja",
                     "Rezygnuję z udziału.\n\nZ poważaniem\nAnna Kowalska w zastępstwie Jana Nowaka\n")
    assert planned(plan(session, parsed, linked=[reg], form_people=[], open_keys=OPEN)) == [
        (reg.code, ["Jan Nowak"])
    ]


def test_people_on_an_attached_form_select_whom_it_withdraws(session: Session) -> None:
    reg = register(session, "sekretariat@gmina-a.example.pl", [ANNA, JAN, EWA])
    parsed = message("sekretariat@gmina-a.example.pl", "Rezygnacja", "Rezygnujemy – lista w załączniku.")
    result = plan(session, parsed, linked=[], form_people=[("NOWAK Jan", None), ("Ewa Lis", None)], open_keys=OPEN)
    assert planned(result) == [(reg.code, ["Ewa Lis", "Jan Nowak"])]


def test_a_sender_with_two_registrations_and_no_code_or_names_is_unclear(session: Session) -> None:
    first = register(session, "sekretariat@gmina-a.example.pl", [ANNA])
    second = register(session, "sekretariat@gmina-a.example.pl", [JAN], event_key=TORUN)
    parsed = message("sekretariat@gmina-a.example.pl", "Rezygnacja", "Rezygnujemy z udziału.")
    result = plan(session, parsed, linked=[], form_people=[], open_keys=OPEN)
    assert isinstance(result, Unclear)
    assert "2 registrations" in result.reason and first.code in result.reason and second.code in result.reason


@pytest.mark.parametrize("second_event", [OPOLE, TORUN])
def test_a_name_settles_which_of_two_registrations_is_meant(session: Session, second_event: str) -> None:
    register(session, "sekretariat@gmina-a.example.pl", [ANNA])
    second = register(session, "sekretariat@gmina-a.example.pl", [JAN], event_key=second_event)
    parsed = message("sekretariat@gmina-a.example.pl", "Rezygnacja", "Pan Jan Nowak rezygnuje z udziału.")
    assert planned(plan(session, parsed, linked=[], form_people=[], open_keys=OPEN)) == [
        (second.code, ["Jan Nowak"])
    ]


def test_a_quoted_code_settles_which_of_two_registrations_is_meant(session: Session) -> None:
    first = register(session, "sekretariat@gmina-a.example.pl", [ANNA])
    register(session, "sekretariat@gmina-a.example.pl", [JAN], event_key=TORUN)
    parsed = message("sekretariat@gmina-a.example.pl", f"Rezygnacja {first.code}", "Rezygnujemy.")
    linked = linked_registrations(session, parsed)
    assert planned(plan(session, parsed, linked=linked, form_people=[], open_keys=OPEN)) == [
        (first.code, ["Anna Kowalska"])
    ]


def test_an_unknown_sender_is_unclear(session: Session) -> None:
    register(session, "sekretariat@gmina-a.example.pl", [ANNA, JAN])
    parsed = message("ktos@inna-gmina.example.pl", "Rezygnacja", "Rezygnuję z udziału.")
    result = plan(session, parsed, linked=[], form_people=[], open_keys=OPEN)
    assert isinstance(result, Unclear) and "ktos@inna-gmina.example.pl" in result.reason


def test_a_stranger_quoting_the_code_speaks_for_it_but_a_form_naming_nobody_on_it_is_unclear(session: Session) -> None:
    reg = register(session, "sekretariat@gmina-a.example.pl", [ANNA, JAN])
    # A stranger answering one of our mails by its code speaks for the registration…
    stranger = message("ktos@inna-gmina.example.pl", f"Re: [{reg.code}]", "Rezygnuję.")
    assert planned(plan(session, stranger, linked=[reg], form_people=[], open_keys=OPEN)) == [
        (reg.code, ["Anna Kowalska", "Jan Nowak"])
    ]
    # …but a form naming nobody on it withdraws nobody.
    result = plan(session, stranger, linked=[reg], form_people=[("Piotr Zając", None)], open_keys=OPEN)
    assert isinstance(result, Unclear) and "names nobody" in result.reason


def test_events_already_over_are_out_of_reach(session: Session) -> None:
    reg = register(session, "sekretariat@gmina-a.example.pl", [ANNA, JAN])
    parsed = message("sekretariat@gmina-a.example.pl", f"Rezygnacja {reg.code}", "Rezygnujemy.")
    for linked in ([], [reg]):
        result = plan(session, parsed, linked=linked, form_people=[], open_keys=(TORUN,))
        assert isinstance(result, Unclear) and "no open registration" in result.reason


def test_people_already_withdrawn_and_cancelled_registrations_are_not_withdrawn_again(session: Session) -> None:
    reg = register(session, "sekretariat@gmina-a.example.pl", [ANNA, JAN])
    jan = people(reg, session)["Jan Nowak"]
    assert apply(session, Withdrawal(reg, (jan,)), LATER) is True
    parsed = message("sekretariat@gmina-a.example.pl", "Rezygnacja", "Rezygnujemy z udziału.")
    assert planned(plan(session, parsed, linked=[], form_people=[], open_keys=OPEN)) == [
        (reg.code, ["Anna Kowalska"])
    ]
    anna = people(reg, session)["Anna Kowalska"]
    apply(session, Withdrawal(reg, (anna,)), LATER)
    result = plan(session, parsed, linked=[reg], form_people=[], open_keys=OPEN)
    assert isinstance(result, Unclear)


def test_apply_cancels_the_people_and_reports_a_freed_seat(session: Session) -> None:
    reg = register(session, "sekretariat@gmina-a.example.pl", [ANNA, JAN, EWA], capacity=2)
    by_name = people(reg, session)
    assert [p.status for p in by_name.values()] == ["confirmed", "confirmed", "waitlisted"]
    # Ewa was only waiting: no seat frees.
    assert apply(session, Withdrawal(reg, (by_name["Ewa Lis"],)), LATER) is False
    assert by_name["Ewa Lis"].status == "cancelled" and by_name["Ewa Lis"].status_changed_at == LATER
    assert reg.status == "confirmed" and reg.cancelled_at is None and reg.updated_at == LATER
    # Jan held a seat.
    assert apply(session, Withdrawal(reg, (by_name["Jan Nowak"],)), LATER) is True
    assert reg.status == "confirmed"
    assert by_name["Anna Kowalska"].status == "confirmed"


def test_apply_cancels_the_registration_when_nobody_is_left(session: Session) -> None:
    reg = register(session, "sekretariat@gmina-a.example.pl", [ANNA, JAN])
    everyone = tuple(people(reg, session).values())
    assert apply(session, Withdrawal(reg, everyone), LATER) is True
    session.commit()
    assert reg.status == "cancelled" and reg.cancelled_at == LATER
    assert {p.status for p in participants_of(session, reg.id or 0)} == {"cancelled"}


def test_apply_on_a_late_registration_frees_no_seat(session: Session) -> None:
    reg = register(session, "sekretariat@gmina-a.example.pl", [ANNA])
    reg.status = "late"
    (anna,) = people(reg, session).values()
    anna.status = "late"
    session.add_all([reg, anna])
    assert apply(session, Withdrawal(reg, (anna,)), LATER) is False
    assert reg.status == "cancelled"
