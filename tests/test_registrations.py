"""Registrations: new forms create, corrected forms replace and keep history."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlmodel import Session, select

from mailbot.forms.model import Consents, FormData, Institution, Participant, Problem
from mailbot.doubts import by_envelope, unconfirmed
from mailbot.mime import ParsedMessage
from mailbot.registrations import apply_form, blocking_problems, find_correction_target, make_code, participants_of
from mailbot.store.db import make_engine, upgrade
from mailbot.store.tables import InboundMessage, Registration, RegistrationVersion

NOW = dt.datetime(2016, 4, 1, 7, 0, tzinfo=dt.UTC)


@pytest.fixture
def session(tmp_path: Path) -> Session:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    return Session(engine, expire_on_commit=False)


def form(*people: tuple[str, str | None], problems: list[Problem] | None = None, inst: str = "UM Nysa") -> FormData:
    return FormData(
        file="f.docx", status="ok", format="docx", method="table", event="opole-2016",
        institution=Institution(name=inst),
        participants=[Participant(full_name=n, email=e) for n, e in people],
        workshops=["B", "A"], consents=Consents(True, False), problems=problems or [],
    )


def inbound(session: Session, n: int) -> int:
    row = InboundMessage(dedupe_key=f"k{n}", ref=f"r{n}", raw_sha256="0" * 64, size=1, source="t")
    session.add(row)
    session.flush()
    assert row.id is not None
    return row.id


def apply(session: Session, f: FormData, n: int, sender: str = "sekretariat@nysa.pl") -> Registration:
    result = apply_form(
        session, f, event_key="opole-2016", event_defaulted=False, sender=sender,
        inbound_id=inbound(session, n), attachment_id=None, seed=f"s{n}", now=NOW,
    )
    session.commit()
    return result.registration


def test_a_form_creates_a_registration_with_its_participants_in_order(session: Session) -> None:
    reg = apply(session, form(("Anna Nowak", "a@nysa.pl"), ("Jan Kos", None)), 1)
    assert reg.status == "confirmed" and reg.workshops == "A,B" and reg.code.startswith("OPO-")
    assert [p.full_name for p in participants_of(session, reg.id or 0)] == ["Anna Nowak", "Jan Kos"]


def test_a_corrected_form_from_the_same_sender_replaces_it_and_keeps_history(session: Session) -> None:
    missing = Problem("participants[1].email", "missing", "Brak adresu e-mail uczestnika 2.")
    first = apply(session, form(("Anna Nowak", "a@nysa.pl"), ("Jan Kos", None), problems=[missing]), 1)
    assert first.status == "incomplete"
    second = apply(session, form(("Anna Nowak", "a@nysa.pl"), ("Jan Kos", "j@nysa.pl")), 2, sender="Sekretariat@NYSA.pl")
    assert second.id == first.id and second.version == 2 and second.status == "confirmed"
    assert len(session.exec(select(Registration)).all()) == 1
    (old,) = session.exec(select(RegistrationVersion)).all()
    snapshot = json.loads(old.snapshot_json)
    assert snapshot["status"] == "incomplete" and snapshot["participants"][1]["email"] is None
    assert [p.email for p in participants_of(session, second.id or 0)] == ["a@nysa.pl", "j@nysa.pl"]


def test_a_form_naming_only_new_people_is_a_new_registration_not_a_replacement(session: Session) -> None:
    a = apply(session, form(("Anna Nowak", "a@nysa.pl")), 1)
    b = apply(session, form(("Piotr Wiśniewski", "p@nysa.pl")), 2)
    assert a.id != b.id and a.code != b.code


def test_surname_first_names_match_the_same_person(session: Session) -> None:
    a = apply(session, form(("Anna Nowak", None)), 1)
    b = apply(session, form(("NOWAK Anna", None)), 2)
    assert a.id == b.id


def test_another_sender_never_replaces_a_registration(session: Session) -> None:
    a = apply(session, form(("Anna Nowak", "a@nysa.pl")), 1)
    b = apply(session, form(("Anna Nowak", "a@nysa.pl")), 2, sender="ktos@inny.pl")
    assert a.id != b.id


def test_an_unknown_event_does_not_block_when_the_default_event_applies() -> None:
    f = form(("A B", "a@b.pl"), problems=[Problem("event", "unknown", "x"), Problem("remarks", "low_confidence", "y")])
    assert blocking_problems(f, event_defaulted=True) == ()
    assert [p.field for p in blocking_problems(f, event_defaulted=False)] == ["event"]


def test_codes_are_short_stable_and_unique() -> None:
    code = make_code("opole-2016", "seed")
    assert code == make_code("opole-2016", "seed") and len(code) == 9
    assert make_code("opole-2016", "seed", taken={code}) != code


# --- codes and corrections without reading the whole table (issue 13) -----------------


def test_a_code_already_taken_is_retried_with_the_next_candidate(session: Session) -> None:
    """The unique index on the code answers "taken?" for the one candidate; a collision
    (a few in 10,000 registrations) takes the next candidate of the same seed."""
    first = make_code("opole-2016", "s2")
    other = apply(session, form(("Ewa Lis", "e@nysa.pl")), 1, sender="ewa@opole.pl")
    other.code = first
    session.add(other)
    session.commit()
    reg = apply(session, form(("Anna Nowak", "a@nysa.pl")), 2)
    assert reg.code != first and reg.code == make_code("opole-2016", "s2", taken={first})


def test_the_correction_target_is_found_among_several_registrations_of_the_sender(session: Session) -> None:
    older = apply(session, form(("Anna Nowak", "a@nysa.pl")), 1)
    newer = apply(session, form(("Jan Kos", "j@nysa.pl")), 2)
    assert find_correction_target(session, event_key="opole-2016", sender="SEKRETARIAT@nysa.pl",
                                  form=form(("Anna Nowak", None))) == older
    assert find_correction_target(session, event_key="opole-2016", sender="sekretariat@nysa.pl",
                                  form=form(("Jan Kos", None))) == newer
    assert find_correction_target(session, event_key="opole-2016", sender="sekretariat@nysa.pl",
                                  form=form(("Ola Wrona", None))) is None


def _doubted(session: Session, n: int, email: str) -> Registration:
    f = form((f"Osoba {n}", email))
    f.problems.append(Problem("participants[0].email", "low_confidence", "Adres odczytany z wątpliwością."))
    return apply(session, f, n, sender="sekretariat@nysa.pl")


def _from(address: str) -> ParsedMessage:
    return ParsedMessage(from_addr=address)


def test_a_message_from_a_doubted_address_settles_it_whatever_its_case(session: Session) -> None:
    """Only the doubts the sender may settle are read, and the comparison stays the
    same: case- and space-blind, also for addresses that are not plain ASCII."""
    plain = _doubted(session, 1, " Jozef.Maka@Nysa.pl ")
    accented = _doubted(session, 2, "JÓZEF@nysa.pl")
    stranger = _doubted(session, 3, "ktos@nysa.pl")
    assert len(unconfirmed(session, [plain, accented, stranger])) == 3
    settled = by_envelope(session, _from("jozef.maka@nysa.pl"), [], ref="r9", inbound_id=inbound(session, 9), now=NOW)
    assert list(settled.people) == [plain.id]
    settled = by_envelope(session, _from("józef@nysa.pl"), [], ref="r10", inbound_id=inbound(session, 10), now=NOW)
    assert list(settled.people) == [accented.id]
    assert [r.id for r, _ in unconfirmed(session, [plain, accented, stranger])] == [stranger.id]


def test_a_message_from_the_suggested_address_settles_a_doubt_it_is_tied_to(session: Session) -> None:
    reg = _doubted(session, 1, "jozef@nysa.p")
    (person,) = participants_of(session, reg.id or 0)
    person.email_suggestion = "jozef@nysa.pl"
    session.add(person)
    session.flush()
    untied = by_envelope(session, _from("jozef@nysa.pl"), [], ref="r8", inbound_id=inbound(session, 8), now=NOW)
    assert not untied.people
    tied = by_envelope(session, _from("jozef@nysa.pl"), [reg], ref="r9", inbound_id=inbound(session, 9), now=NOW)
    assert list(tied.people) == [reg.id] and person.email == "jozef@nysa.pl" and person.email_check == "corrected"
