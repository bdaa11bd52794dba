"""Every value read right or visibly doubted: provenance, cross-checks, copied rows,
incomplete phones, and what is not a form at all.

The docx copies are built from body XML with the helpers of ``test_variants`` so the
case each test is about is the only thing that differs from a clean form.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from mailbot.forms import parse_bytes
from mailbot.forms.blank import FilledValues, make_docx, make_pdf
from mailbot.forms.confidence import Reading, assess
from mailbot.forms.crosscheck import (
    check_domain,
    check_first_name,
    check_local_part,
    phone_assigned,
)
from mailbot.forms.model import CONFIDENCE_THRESHOLD, Consents, FormData, Institution, Participant
from mailbot.forms.normalize import normalize_phone
from tests.forms.test_variants import (
    ANNA,
    EVENTS,
    NYSA,
    OPOLE,
    READ,
    TYPED,
    Copy,
    heading,
    header_line,
    p,
    package,
    tbl,
    text_control,
)


def parse(data: bytes, name: str = "zgloszenie.docx") -> FormData:
    return parse_bytes(data, name, EVENTS)


def doubts(form: FormData) -> dict[str, str | None]:
    return {x.field: x.suggestion for x in form.problems if x.code == "low_confidence"}


# --- cross-checks, one by one -----------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "name"),
    [
        ("jan.kowalski@nysa.pl", "Jan Kowalski"),
        ("jkowalski2@gmail.com", "Jan Kowalski"),
        ("kowalski.j@nysa.pl", "Jan Kowalski"),
        ("cwik-gorska@zgso.pl", "Ćwik-Górska Ewa"),
        ("e.cwik@zgso.pl", "Ewa Ćwik-Górska"),
        ("a.kowalska@nysa.pl", "Anna Kowalska-Nowak"),
        ("lukasz.malek@nysa.pl", "Łukasz Małek"),
        ("l.zolkiewski@nysa.pl", "Łukasz Żółkiewski"),
    ],
)
def test_an_address_made_of_the_name_agrees_with_it(email: str, name: str) -> None:
    assert check_local_part(email, name).outcome == "agrees"


@pytest.mark.parametrize(
    ("email", "name", "suggestion"),
    [
        ("jan.kowalskl@nysa.pl", "Jan Kowalski", "jan.kowalski@nysa.pl"),  # i → l
        ("tukasz.malek@nysa.pl", "Łukasz Małek", "lukasz.malek@nysa.pl"),  # ł → t
        ("a.kowalezyk@nysa.pl", "Anna Kowalczyk", "a.kowalczyk@nysa.pl"),  # c → e
        ("m.sliwinskaa@nysa.pl", "Małgorzata Śliwińska", "m.sliwinska@nysa.pl"),  # stray letter
    ],
)
def test_an_address_one_letter_from_the_name_is_close_with_the_fix_proposed(
    email: str, name: str, suggestion: str
) -> None:
    verdict = check_local_part(email, name)
    assert (verdict.outcome, verdict.suggestion) == ("close", suggestion)


@pytest.mark.parametrize(
    ("email", "name"),
    [
        ("sekretariat@nysa.pl", "Anna Nowak"),  # a role mailbox
        ("kasia.nowak@nysa.pl", "Katarzyna Nowak"),  # a nickname
        ("j.nowak@nysa.pl", "Anna Nowak"),  # someone else's initial: not a misread
        ("biuro@zgso.pl", "Sylwia Nowicka"),
    ],
)
def test_an_address_unrelated_to_the_name_says_nothing(email: str, name: str) -> None:
    assert check_local_part(email, name).outcome == "unrelated"


def test_a_domain_one_letter_from_the_institutions_is_close() -> None:
    assert check_domain("a@nysa.p1", ["nysa.pl"]).suggestion == "a@nysa.pl"
    assert check_domain("a@powiatstrzelecki.pl", ["powiatstrzelecki.pl"]).outcome == "agrees"
    assert check_domain("a@gmaii.com", []).suggestion == "a@gmail.com"
    assert check_domain("a@opole.pl", ["nysa.pl"]).outcome == "unrelated"


def test_a_first_name_one_letter_from_a_common_one_is_proposed() -> None:
    assert check_first_name("Michat Nowak").suggestion == "Michał Nowak"
    assert check_first_name("Michał Nowak").outcome == "agrees"
    assert check_first_name("Bożydar Xiński").outcome == "unrelated"


def test_a_nine_digit_number_in_no_assigned_range_is_not_a_sure_number() -> None:
    assert phone_assigned("+48774080500")
    assert phone_assigned("+48601234567")
    assert not phone_assigned("+48101234567")


# --- phones: a digit missing stays as written ------------------------------------------


@pytest.mark.parametrize("typed", ["77 40 80 5", "60123456", "(077) 408050", "+48 60 123 456"])
def test_a_phone_with_a_digit_missing_stays_as_written_and_invalid(typed: str) -> None:
    assert normalize_phone(typed) == (typed, False)


def test_an_incomplete_phone_on_a_form_is_reported_not_reshaped() -> None:
    copy = Copy(people=(replace(ANNA, phone="77 40 80 5"),))
    form = parse(copy.docx())
    assert form.participants[0].phone == "77 40 80 5"
    assert ("participants[0].phone", "invalid") in {(x.field, x.code) for x in form.problems}


# --- confidence, end to end --------------------------------------------------------------


def test_every_value_says_where_it_came_from() -> None:
    form = parse(Copy(people=TYPED[:3]).docx())
    assert form.provenance["participants[2].email"].source == "table"
    assert form.provenance["institution.name"].source == "table"
    assert all(x.confidence >= CONFIDENCE_THRESHOLD for x in form.provenance.values())
    assert "provenance" not in form.to_json()  # the contract's keys stay as they are
    assert form.to_json(provenance=True)["provenance"]["participants[0].email"]["source"] == "table"


def test_a_content_control_value_is_more_certain_than_running_text() -> None:
    controls = parse(make_docx(OPOLE, _values(), style="controls"))
    text = parse(Copy(layout="text", people=(ANNA,)).docx())
    assert controls.provenance["participants[0].email"].source == "fields"
    assert text.provenance["participants[0].email"].source == "text"
    assert (
        controls.provenance["participants[0].email"].confidence
        > text.provenance["participants[0].email"].confidence
    )


def test_an_address_a_letter_away_from_the_name_is_doubted_with_the_fix_proposed() -> None:
    jan = Participant("Jan Kowalski", "Inspektor", "601 234 567", "jan.kowalskl@nysa.pl")
    form = parse(Copy(people=(ANNA, jan)).docx())
    assert form.participants[1].email == "jan.kowalskl@nysa.pl"  # kept as written
    assert doubts(form) == {"participants[1].email": "jan.kowalski@nysa.pl"}
    problem = form.doubtful("participants[1].email")
    assert problem is not None and "jan.kowalski@nysa.pl" in problem.message
    assert form.provenance["participants[1].email"].confidence < CONFIDENCE_THRESHOLD


def test_a_domain_a_letter_away_from_the_institutions_is_doubted() -> None:
    ewa = Participant("Ewa Ćwiklińska", "Skarbnik", None, "skarbnik@nyza.pl")
    form = parse(Copy(people=(ANNA, ewa)).docx())
    assert doubts(form) == {"participants[1].email": "skarbnik@nysa.pl"}


def _cell(*lines: str) -> str:
    return "".join(p(line) for line in lines)


def test_an_address_wrapped_in_its_cell_is_joined_and_noted() -> None:
    rows = [
        ["Lp.", "Imię i nazwisko", "Stanowisko / funkcja", "Telefon", "E-mail"],
        ["1.", "Anna Kowalska", "Inspektor", "601 234 567", _cell("a.kowalska@powiatstrzele", "cki.pl")],
        ["2.", _cell("Maria Kwiatkowska-", "Krawczyk"), "Referent", "601 234 568", _cell("m.kwiatkowska@opolski", "e.pl")],
    ]
    body = "".join(p(x) for x in heading(header_line(OPOLE)))
    body += tbl([["Nazwa instytucji:", "Starostwo Powiatowe w Strzelcach Opolskich"]])
    body += tbl(rows)
    form = parse(package(body))
    assert [x.email for x in form.participants] == [
        "a.kowalska@powiatstrzelecki.pl",
        "m.kwiatkowska@opolskie.pl",
    ]
    assert form.participants[1].full_name == "Maria Kwiatkowska-Krawczyk"
    prov = form.provenance["participants[0].email"]
    assert "joined" in prov.notes
    assert prov.confidence < form.provenance["participants[0].phone"].confidence


def test_a_soft_hyphen_dropped_from_a_value_makes_it_less_certain() -> None:
    rows = [
        ["Lp.", "Imię i nazwisko", "Stanowisko / funkcja", "Telefon", "E-mail"],
        ["1.", "Anna Kowal\u00adska", "Inspektor", "601 234 567", "a.kowalska@nysa.pl"],
    ]
    body = "".join(p(x) for x in heading(header_line(OPOLE))) + tbl(rows)
    form = parse(package(body))
    assert form.participants[0].full_name == "Anna Kowalska"
    assert "marker" in form.provenance["participants[0].full_name"].notes


def test_ocr_readings_are_doubted_by_word_confidence_and_cross_checks() -> None:
    readings = [
        Reading("participants[0].email", "email", "jan.kowalski@nysa.pl", "jan.kowalski@nysa.pl", "ocr", person="Jan Kowalski"),
        Reading("participants[1].email", "email", "zz.qq@nysa.pl", "zz.qq@nysa.pl", "ocr", person="Ewa Nowak"),
        Reading("participants[2].email", "email", "rada@wp.pl", "rada@wp.pl", "ocr", person="Ewa Nowak"),
        Reading("participants[1].full_name", "name", "Michat Nowak", "Michat Nowak", "ocr"),
        Reading("participants[2].position", "position", "Referent", "Referent", "ocr"),
    ]
    scores = {"jan.kowalski@nysa.pl": 95.0, "zz.qq@nysa.pl": 96.0, "rada@wp.pl": 95.0,
              "Michat Nowak": 91.0, "Referent": 20.0}
    provenance, problems = assess(readings, ocr_score=scores.get)
    flagged = {x.field: x.suggestion for x in problems}
    # Name and domain agree: sure. Domain only (nysa.pl is another's): word confidence.
    # A first name one letter from Michał, a word read at 20 %: doubted.
    assert flagged == {"participants[1].full_name": "Michał Nowak", "participants[2].position": None}
    assert provenance["participants[0].email"].confidence >= CONFIDENCE_THRESHOLD
    assert "ocr 20" in provenance["participants[2].position"].notes


def test_an_ocr_address_nothing_corroborates_is_doubted() -> None:
    readings = [Reading("participants[0].email", "email", "xq@gminaabc.pl", "xq@gminaabc.pl", "ocr", person="Jan Nowak")]
    _, problems = assess(readings, ocr_score=lambda _: 97.0)
    assert [x.field for x in problems] == ["participants[0].email"]


# --- precision: clean forms are not doubted ------------------------------------------------


def _values(people: list[Participant] | None = None) -> FilledValues:
    return FilledValues(
        institution=NYSA,
        participants=people or [ANNA],
        workshops={"A"},
        remarks="dieta wegetariańska",
        consents=Consents(True, False),
        place_date="Nysa, 8.04.2016",
    )


@pytest.mark.parametrize("n", [1, 3, 7])
def test_clean_docx_and_acroform_copies_carry_no_doubt(n: int) -> None:
    values = _values(TYPED[:n])
    for data, name in [
        (make_docx(OPOLE, values, style="controls", rows=n), "a.docx"),
        (make_docx(OPOLE, values, style="table", rows=n), "b.docx"),
        (make_pdf(OPOLE, values), "c.pdf"),
        (Copy(people=TYPED[:n]).docx(), "d.docx"),
        (Copy(layout="text", people=TYPED[:n]).docx(), "e.docx"),
    ]:
        form = parse(data, name)
        assert [x.email for x in form.participants] == [x.email for x in READ[:n]], name
        assert doubts(form) == {}, name


# --- a row copied with its controls' tags ---------------------------------------------------


def _tagged_row(index: int, person: Participant) -> list[str]:
    return [
        f"{index + 1}.",
        *(
            p(text_control(value, tag=f"participants[{index}].{name}"))
            for name, value in (
                ("full_name", person.full_name),
                ("position", person.position),
                ("phone", person.phone),
                ("email", person.email),
            )
        ),
    ]


def test_a_row_copied_with_its_control_tags_is_a_new_participant_in_order() -> None:
    header = ["Lp.", "Imię i nazwisko", "Stanowisko / funkcja", "Telefon", "E-mail"]
    rows = [
        header,
        _tagged_row(0, TYPED[0]),
        _tagged_row(1, TYPED[1]),
        _tagged_row(1, TYPED[2]),  # row 2 copied in Word, then filled with another person
        _tagged_row(2, TYPED[3]),
    ]
    body = "".join(p(x) for x in heading(header_line(OPOLE)))
    body += p("Nazwa instytucji: " + text_control(NYSA.name, tag="institution.name"))
    body += tbl(rows)
    form = parse(package(body))
    assert [x.full_name for x in form.participants] == [x.full_name for x in READ[:4]]
    assert [x.email for x in form.participants] == [x.email for x in READ[:4]]


# --- not a form ---------------------------------------------------------------------------


PROGRAMME = [
    "Konferencja informacyjna „Współpraca w partnerstwach samorządowych”",
    header_line(OPOLE),
    "PROGRAM",
    "10:30 – 11:00 Rejestracja uczestników",
    "11:00 – 12:30 Prezentacja nagrodzonych partnerstw",
    "12:45 – 14:15 Dyskusje warsztatowe:",
    "A – Zarządzanie strategiczne w partnerstwie",
    "B – Zarządzanie relacjami w partnerstwie",
    "14:15 Podsumowanie i zakończenie konferencji",
    "Udział w konferencji jest bezpłatny. Zgłoszenia prosimy przesyłać do 14 kwietnia 2016 r.",
]
LETTER = [
    "Szanowni Państwo,",
    "zapraszamy na konferencję informacyjną „Współpraca w partnerstwach samorządowych”, "
    "która odbędzie się w Opolu 18 kwietnia 2016 r. w Sali Herbowej Urzędu Wojewódzkiego.",
    "W załączeniu przesyłamy program oraz formularz zgłoszenia uczestnictwa.",
    "Wypełnione zgłoszenie prosimy odesłać do 14 kwietnia 2016 r.",
    "Z poważaniem",
    "Anna Nowak",
    "Związek Miast Polskich",
    "tel. 61 633 50 50, e-mail: konferencje@zmp.poznan.pl",
]


@pytest.mark.parametrize("lines", [PROGRAMME, LETTER], ids=["programme", "letter"])
def test_a_programme_or_letter_about_the_conference_is_not_a_form(lines: list[str]) -> None:
    form = parse(package("".join(p(x) for x in lines)))
    assert form.status == "not_a_form", form


def test_the_blank_form_returned_unfilled_is_still_a_form() -> None:
    form = parse(make_docx(OPOLE, None, style="controls"))
    assert form.status == "ok"
    assert form.event == "opole-2016"


def test_a_form_with_only_labels_typed_over_is_a_form() -> None:
    copy = Copy(layout="text", people=(ANNA,), institution=Institution(NYSA.name))
    assert parse(copy.docx()).status == "ok"


def test_dates_on_the_programme_do_not_matter() -> None:
    # The event date alone (no structure) never makes a programme a form.
    lines = [*PROGRAMME, dt.date(2016, 4, 18).isoformat()]
    assert parse(package("".join(p(x) for x in lines))).status == "not_a_form"


def test_an_at_read_as_a_letter_is_repaired_only_by_a_domain_the_form_uses() -> None:
    from mailbot.forms.extract import _at_before_domain

    assert _at_before_domain("sekretariateglucholazy.pl", {"glucholazy.pl"}) == "sekretariat@glucholazy.pl"
    # The "@" lost altogether: where the local part ends is unknown, nothing is guessed.
    assert _at_before_domain("sekretariatglucholazy.pl", {"glucholazy.pl"}) is None
    assert _at_before_domain("sekretariateglucholazy.pl", {"nysa.pl"}) is None


def test_a_glyph_with_no_character_behind_it_makes_the_value_doubtful() -> None:
    readings = [Reading("remarks", "remarks", "wózek inwalidzki \ufffd prosimy o podjazd", "x", "text")]
    provenance, problems = assess(readings)
    assert [x.field for x in problems] == ["remarks"]
    assert "unreadable glyph" in provenance["remarks"].notes
