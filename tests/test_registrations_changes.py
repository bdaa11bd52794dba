"""Corrected forms (mailbot.registrations): what changed, in the participant's words, and
what a correction keeps.

The ``updated`` mail lists the changes a corrected form made, so describe_changes must
word them the way a participant reads them: a fixed phone number is a change of that
person, not one person removed and another added; consents read "tak"/"nie". A
correction must never cost anyone their seat or their place in the queue, must tell
who was dropped, may come from a colleague who quotes the code (the registration stays
the original sender's), and cannot turn a late registration into a seated one.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from mailbot.forms.model import Consents, FormData, Institution, Problem
from mailbot.forms.model import Participant as FormPerson
from mailbot.registrations import Applied, Change, PersonGone, apply_form, describe_changes, participants_of
from mailbot.seats import allocate
from mailbot.store.db import make_engine, upgrade
from mailbot.store.tables import InboundMessage, Participant, Registration

T1 = dt.datetime(2016, 4, 1, 7, 0, tzinfo=dt.UTC)
T2 = T1 + dt.timedelta(days=1)
T3 = T1 + dt.timedelta(days=2)
EVENT = "opole-2016"
SENDER = "sekretariat@nysa.example.pl"
_n = itertools.count(1)

Person = tuple[str, str | None] | tuple[str, str | None, str | None]


@pytest.fixture
def session(tmp_path: Path) -> Session:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    return Session(engine, expire_on_commit=False)


def form(*people: Person, inst: str = "UM Nysa", newsletter: bool = False) -> FormData:
    return FormData(
        file="f.docx", status="ok", format="docx", method="table", event=EVENT,
        institution=Institution(name=inst),
        participants=[FormPerson(full_name=p[0], email=p[1], phone=p[2] if len(p) > 2 else None) for p in people],
        workshops=["A"], consents=Consents(True, newsletter),
    )


def apply(
    session: Session,
    f: FormData,
    now: dt.datetime,
    *,
    sender: str = SENDER,
    target: Registration | None = None,
    late: bool = False,
    capacity: int = 100,
) -> Applied:
    """apply_form followed by seating, as the pipeline does it."""
    n = next(_n)
    inbound = InboundMessage(dedupe_key=f"k{n}", ref=f"r{n}", raw_sha256="0" * 64, size=1, source="t")
    session.add(inbound)
    session.flush()
    assert inbound.id is not None
    applied = apply_form(
        session, f, event_key=EVENT, event_defaulted=False, sender=sender, inbound_id=inbound.id,
        attachment_id=None, seed=f"s{n}", now=now, target=target, late=late,
    )
    if not late and applied.registration.status != "late":
        allocate(session, EVENT, capacity, applied.added, now)
    session.commit()
    return applied


def people(session: Session, reg: Registration) -> dict[str, Participant]:
    assert reg.id is not None
    return {p.full_name or "": p for p in participants_of(session, reg.id)}


# --- describe_changes ---------------------------------------------------------------


def snapshot(*people: dict[str, Any], **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "institution_name": "UM Nysa", "institution_address": None, "institution_phone": None,
        "institution_email": None, "workshops": "A", "remarks": None,
        "consent_data_processing": True, "consent_newsletter": False,
    }
    base.update(fields)
    base["participants"] = list(people)
    return base


def person(name: str | None, email: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"full_name": name, "email": email, "job_title": None, "phone": None, **fields}


def test_nothing_changed_reads_as_no_changes() -> None:
    before = snapshot(person("Anna Nowak", "a@nysa.pl"), remarks="")
    after = snapshot(person("Anna Nowak", "a@nysa.pl"), remarks=None)  # empty and missing read the same
    assert describe_changes(before, after) == ()


def test_an_institution_field_change_is_worded_with_its_label() -> None:
    changes = describe_changes(snapshot(), snapshot(institution_name="Urząd Miejski w Nysie", remarks="Wegetariańskie"))
    assert changes == (
        Change("Nazwa instytucji", "UM Nysa", "Urząd Miejski w Nysie"),
        Change("Uwagi", "—", "Wegetariańskie"),
    )


def test_a_persons_phone_change_is_a_change_of_that_person_matched_by_name() -> None:
    before = snapshot(person("Anna Nowak", None, phone="77 400 00 11"), person("Jan Kos", "j@nysa.pl"))
    after = snapshot(person("Jan Kos", "j@nysa.pl"), person("NOWAK Anna", None, phone="77 400 00 12"))
    assert describe_changes(before, after) == (
        Change("NOWAK Anna: imię i nazwisko", "Anna Nowak", "NOWAK Anna"),
        Change("NOWAK Anna: telefon", "77 400 00 11", "77 400 00 12"),
    )


def test_a_person_matched_by_email_shows_a_corrected_name() -> None:
    before = snapshot(person("Ana Nowak", "a@nysa.pl"))
    after = snapshot(person("Anna Nowak", "a@nysa.pl", job_title="Inspektor"))
    assert describe_changes(before, after) == (
        Change("Anna Nowak: imię i nazwisko", "Ana Nowak", "Anna Nowak"),
        Change("Anna Nowak: stanowisko", "—", "Inspektor"),
    )


def test_people_added_and_removed() -> None:
    before = snapshot(person("Anna Nowak", "a@nysa.pl"), person("Jan Kos", "j@nysa.pl"))
    after = snapshot(person("Anna Nowak", "a@nysa.pl"), person("Piotr Zając", None))
    assert describe_changes(before, after) == (
        Change("Nowy uczestnik", "—", "Piotr Zając"),
        Change("Usunięty uczestnik", "Jan Kos", "—"),
    )


def test_consents_read_tak_and_nie() -> None:
    changes = describe_changes(snapshot(), snapshot(consent_newsletter=True, consent_data_processing=False))
    assert changes == (
        Change("Zgoda na przetwarzanie danych", "tak", "nie"),
        Change("Zgoda na informacje o kolejnych konferencjach", "nie", "tak"),
    )


def test_apply_form_reports_the_changes_of_a_correction(session: Session) -> None:
    apply(session, form(("Anna Nowak", "a@nysa.pl", "77 400 00 11"), ("Jan Kos", "j@nysa.pl")), T1)
    second = apply(session, form(("Anna Nowak", "a@nysa.pl", "77 400 00 12"), ("Ewa Lis", "e@nysa.pl"),
                                 inst="Urząd Miejski w Nysie", newsletter=True), T2)
    assert not second.created
    assert second.changes == (
        Change("Nazwa instytucji", "UM Nysa", "Urząd Miejski w Nysie"),
        Change("Zgoda na informacje o kolejnych konferencjach", "nie", "tak"),
        Change("Anna Nowak: telefon", "77 400 00 11", "77 400 00 12"),
        Change("Nowy uczestnik", "—", "Ewa Lis"),
        Change("Usunięty uczestnik", "Jan Kos", "—"),
    )


# --- apply_form: what a correction keeps ---------------------------------------------


def test_a_colleague_quoting_the_code_corrects_the_registration_which_stays_the_senders(session: Session) -> None:
    first = apply(session, form(("Anna Nowak", "a@nysa.pl")), T1).registration
    second = apply(session, form(("Anna Nowak", "a@nysa.pl"), ("Jan Kos", "j@nysa.pl")), T2,
                   sender="kadry@nysa.example.pl", target=first)
    reg = second.registration
    assert not second.created and reg.id == first.id and reg.version == 2
    assert reg.sender_email == SENDER
    assert [p.full_name for p in second.added] == ["Jan Kos"]
    assert len(session.exec(select(Registration)).all()) == 1


def test_a_cancelled_target_is_not_corrected_the_form_registers_anew(session: Session) -> None:
    first = apply(session, form(("Anna Nowak", "a@nysa.pl")), T1).registration
    first.status = "cancelled"
    session.add(first)
    session.commit()
    second = apply(session, form(("Anna Nowak", "a@nysa.pl")), T2, sender="kadry@nysa.example.pl", target=first)
    assert second.created and second.registration.id != first.id
    assert second.registration.sender_email == "kadry@nysa.example.pl"


def test_people_kept_on_a_corrected_form_keep_their_seat_and_place_in_the_queue(session: Session) -> None:
    first = apply(session, form(("Anna Nowak", "a@nysa.pl"), ("Jan Kos", "j@nysa.pl")), T1, capacity=1)
    assert {n: p.status for n, p in people(session, first.registration).items()} == {
        "Anna Nowak": "confirmed", "Jan Kos": "waitlisted",
    }
    # Jan's phone is added, his name written surname first, and Ewa joins; nothing else.
    second = apply(session, form(("Anna Nowak", "a@nysa.pl"), ("KOS Jan", "j@nysa.pl", "77 400 00 13"),
                                 ("Ewa Lis", "e@nysa.pl")), T2, capacity=1)
    now = people(session, second.registration)
    assert (now["Anna Nowak"].status, now["Anna Nowak"].registered_at) == ("confirmed", T1)
    assert (now["KOS Jan"].status, now["KOS Jan"].registered_at, now["KOS Jan"].phone) == (
        "waitlisted", T1, "77 400 00 13",
    )
    assert now["KOS Jan"].status_changed_at == T1
    assert [p.full_name for p in second.added] == ["Ewa Lis"]
    assert (now["Ewa Lis"].status, now["Ewa Lis"].registered_at) == ("waitlisted", T2)
    assert second.removed == ()


def test_people_dropped_by_a_correction_are_reported_removed(session: Session) -> None:
    first = apply(session, form(("Anna Nowak", "a@nysa.pl"), ("Jan Kos", "j@nysa.pl"), ("Ewa Lis", None)),
                  T1, capacity=2)
    ewa = people(session, first.registration)["Ewa Lis"]
    assert ewa.status == "waitlisted"
    second = apply(session, form(("Anna Nowak", "a@nysa.pl")), T2, capacity=2)
    assert second.removed == (
        PersonGone(full_name="Jan Kos", email="j@nysa.pl", status="confirmed"),
        PersonGone(full_name="Ewa Lis", email=None, status="waitlisted"),
    )
    assert list(people(session, second.registration)) == ["Anna Nowak"]


def test_someone_who_already_withdrew_is_not_reported_removed_again(session: Session) -> None:
    first = apply(session, form(("Anna Nowak", "a@nysa.pl"), ("Jan Kos", "j@nysa.pl")), T1)
    jan = people(session, first.registration)["Jan Kos"]
    jan.status = "cancelled"
    session.add(jan)
    session.commit()
    second = apply(session, form(("Anna Nowak", "a@nysa.pl")), T2)
    assert second.removed == ()


def test_a_late_registration_stays_late_when_corrected(session: Session) -> None:
    first = apply(session, form(("Anna Nowak", "a@nysa.pl")), T1, late=True)
    assert first.registration.status == "late" and first.added == ()
    # Corrected after the organisers moved the deadline (the pipeline passes late=False):
    # still late, the new person too, and nobody is handed a seat.
    second = apply(session, form(("Anna Nowak", "a@nysa.pl", "77 400 00 11"), ("Jan Kos", "j@nysa.pl")), T2)
    assert second.registration.id == first.registration.id
    assert second.registration.status == "late" and second.added == ()
    assert {p.status for p in people(session, second.registration).values()} == {"late"}


def test_an_incomplete_registration_corrected_keeps_its_people_seated(session: Session) -> None:
    missing = form(("Anna Nowak", "a@nysa.pl"), ("Jan Kos", None))
    missing.problems.append(Problem("participants[1].email", "missing", "Brak adresu e-mail uczestnika 2."))
    first = apply(session, missing, T1, capacity=2)
    assert first.registration.status == "incomplete"
    second = apply(session, form(("Anna Nowak", "a@nysa.pl"), ("Jan Kos", "j@nysa.pl")), T3, capacity=2)
    assert second.registration.status == "confirmed" and second.added == ()
    assert {n: (p.status, p.registered_at) for n, p in people(session, second.registration).items()} == {
        "Anna Nowak": ("confirmed", T1), "Jan Kos": ("confirmed", T1),
    }
