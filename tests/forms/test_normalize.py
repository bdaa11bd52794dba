"""Unit tests: value normalisation, label matching, ticks and event recognition."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailbot.errors import ConfigError
from mailbot.forms.events import EventLine, find_dates, mentions_city, recognise_event
from mailbot.forms.extract import tick_state
from mailbot.forms.labels import default_vocabulary, load_vocabulary
from mailbot.forms.model import EventRef
from mailbot.forms.normalize import clean_text, fold, normalize_email, normalize_phone

PLACEHOLDERS = default_vocabulary().placeholders


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(077) 4080500", "+48774080500"),
        ("606-763-426", "+48606763426"),
        ("77 314-77-07", "+48773147707"),
        ("+48 664 019 378", "+48664019378"),
        ("0048 77 123 45 67", "+48771234567"),
        ("0 77 123 45 67", "+48771234567"),
        ("tel. 77 123 45 67", "+48771234567"),
        ("77 123 45 67 wew. 12", "+48771234567"),
        ("+49 30 1234567", "+49301234567"),
        ("600 100 200, 77 123 45 67", "+48600100200"),
    ],
)
def test_phone_to_e164(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == (expected, True)


@pytest.mark.parametrize("raw", ["123", "brak", "tel. ???", "12-34"])
def test_unparseable_phone_is_kept_as_written(raw: str) -> None:
    assert normalize_phone(raw) == (raw, False)


@pytest.mark.parametrize("raw", [None, "", "   ", "............", "\u2002\u2002\u2002"])
def test_absent_phone(raw: str | None) -> None:
    assert normalize_phone(raw) == (None, True)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("SEKRETARIAT@BRZEG.PL", "SEKRETARIAT@brzeg.pl"),
        ("Joannam@Prudnik.PL", "Joannam@prudnik.pl"),
        (" kontakt@zgso.pl .................. ", "kontakt@zgso.pl"),
        ("mailto:a.b@nysa.pl", "a.b@nysa.pl"),
        ("a.b@nysa.pl (sekretariat)", "a.b@nysa.pl"),
    ],
)
def test_email_normalised(raw: str, expected: str) -> None:
    assert normalize_email(raw) == (expected, True)


@pytest.mark.parametrize(
    "raw", ["jan@test", "nie mam", "a@@b.pl", "jan kowalski@nysa.pl"]
)
def test_invalid_email_is_kept(raw: str) -> None:
    assert normalize_email(raw) == (raw, False)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Urząd   Miejski\tw  Nysie ", "Urząd Miejski w Nysie"),
        ("....Specjalista ds. projektów.....", "Specjalista ds. projektów"),
        ("Justyna Kozłowska.............", "Justyna Kozłowska"),
        ("ul. Krakowska 38, 45-075 Opole", "ul. Krakowska 38, 45-075 Opole"),
        ("________________", None),
        ("…", None),
        ("", None),
        (None, None),
        ("Kliknij lub naciśnij tutaj, aby wprowadzić tekst.", None),
        ("Kliknij tutaj, aby wprowadzić tekst.", None),
        ("Click or tap here to enter text.", None),
        ("\u2002\u2002\u2002\u2002\u2002", None),
    ],
)
def test_clean_text(raw: str | None, expected: str | None) -> None:
    assert clean_text(raw, PLACEHOLDERS) == expected


def test_fold_keeps_length() -> None:
    text = "ZGŁOSZENIE Uczestnictwa – Łódź, Kędzierzyn-Koźle"
    assert len(fold(text)) == len(text)
    assert fold(text) == "zgloszenie uczestnictwa - lodz, kedzierzyn-kozle"


# --- labels --------------------------------------------------------------------------

VOCAB = default_vocabulary()


@pytest.mark.parametrize(
    ("cell", "key"),
    [
        ("Nazwa jednostki samorządu terytorialnego / instytucji:", "institution.name"),
        ("NAZWA JEDNOSTKI SAMORZADU TERYTORIALNEGO / INSTYTUCJI", "institution.name"),
        ("Instytucja / Urząd", "institution.name"),
        ("Nazwa jednostki samorzadu terytorialnego/instytucji", "institution.name"),
        (
            "Nazwa jednostki samorządu terytorialngo / instytucji",
            "institution.name",
        ),  # typo
        ("Adres (ulica, kod pocztowy, miejscowość):", "institution.address"),
        ("Imię i nazwisko", "participant.full_name"),
        ("Nazwisko i imię", "participant.full_name"),
        ("Imie i nazwisko uczestnika:", "participant.full_name"),
        ("Stanowisko / funkcja", "participant.position"),
        ("Adres e-mail", "institution.email"),
        ("e-mail", "institution.email"),
        ("Email:", "institution.email"),
        ("Tel.", "institution.phone"),
        ("Lp.", "participant.number"),
    ],
)
def test_label_cell(cell: str, key: str) -> None:
    match = VOCAB.match_cell(cell)
    assert match is not None and key in match.keys


@pytest.mark.parametrize(
    "cell",
    ["Urząd Miejski w Nysie", "Jan Kowalski", "dieta", "ul. Opolska 104", "Tel"[:2]],
)
def test_values_are_not_labels(cell: str) -> None:
    match = VOCAB.match_cell(cell)
    assert match is None or cell == "Urząd"


@pytest.mark.parametrize(
    ("line", "key", "value"),
    [
        ("Telefon: 77 123 45 67", "institution.phone", "77 123 45 67"),
        ("Tel. 77 123 45 67", "institution.phone", "77 123 45 67"),
        ("E-MAIL : kontakt@zgso.pl", "institution.email", "kontakt@zgso.pl"),
        (
            "Stanowisko / funkcja: .....Specjalista ds. projektów.....",
            "participant.position",
            "Specjalista ds. projektów.....",
        ),
        ("Uwagi (np. specjalne potrzeby, dieta): dieta", "remarks", "dieta"),
        ("Adres (ulica, kod, miejscowość): ul. X 1", "institution.address", "ul. X 1"),
    ],
)
def test_label_prefix(line: str, key: str, value: str) -> None:
    match = VOCAB.match_prefix(line)
    assert match is not None and key in match.keys
    assert line[match.value_start :] == value


def test_value_word_is_not_a_label_without_delimiter() -> None:
    assert VOCAB.match_prefix("Urząd Miejski w Nysie") is None


def test_split_several_labels_on_one_line() -> None:
    parts = VOCAB.split_labelled("Telefon: 77 123 45 67   E-mail: a@b.pl")
    assert [(m.keys[0] if m else None, v.strip()) for m, v in parts] == [
        ("institution.phone", "77 123 45 67"),
        ("institution.email", "a@b.pl"),
    ]


def test_sections() -> None:
    assert VOCAB.match_section("2. Uczestnicy") == ("participants", None)
    assert VOCAB.match_section("Uczestnik 2") == ("participant", 2)
    assert VOCAB.match_section(
        "3. Udział w dyskusjach warsztatowych (proszę zaznaczyć):"
    ) == ("workshops", None)
    assert VOCAB.match_section("Uczestnicy: Jan Kowalski") is None


def test_load_vocabulary_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "labels.toml"
    path.write_text(
        '[fields]\n"institution.name" = ["Nazwa gminy"]\n', encoding="utf-8"
    )
    vocab = load_vocabulary(path)
    match = vocab.match_cell("NAZWA GMINY:")
    assert match is not None and match.keys == ("institution.name",)


@pytest.mark.parametrize("content", ["[fields", "[fields]\nx = 3\n", ""])
def test_bad_vocabulary_is_a_config_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "labels.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_vocabulary(path)


def test_missing_vocabulary_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_vocabulary(tmp_path / "nope.toml")


# --- ticks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "state"),
    [
        ("☒ A – Zarządzanie", True),
        ("☑ A", True),
        ("✓ A", True),
        ("✔ A", True),
        ("■ A", True),
        ("X A – Zarządzanie", True),
        ("x Wyrażam zgodę", True),
        ("A – Zarządzanie strategiczne w partnerstwie☒", True),
        ("A – Zarządzanie strategiczne w partnerstwie X", True),
        ("[x] A", True),
        ("☐ A – Zarządzanie", False),
        ("□ A", False),
        ("A – Zarządzanie strategiczne w partnerstwie", None),
    ],
)
def test_tick_state(line: str, state: bool | None) -> None:
    assert tick_state(line) is state


# --- events --------------------------------------------------------------------------

TITLE = "Współpraca w partnerstwach samorządowych"
EVENTS = [
    EventRef("szczecin-2016", TITLE, "Szczecin", dt.date(2016, 3, 7)),
    EventRef("torun-2016", TITLE, "Toruń", dt.date(2016, 3, 14)),
    EventRef("lublin-2016", TITLE, "Lublin", dt.date(2016, 3, 21)),
    EventRef("opole-2016", TITLE, "Opole", dt.date(2016, 4, 18)),
]


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("Opole, 18 kwietnia 2016 r.", dt.date(2016, 4, 18)),
        ("18.04.2016", dt.date(2016, 4, 18)),
        ("2016-04-18", dt.date(2016, 4, 18)),
        ("18 IV 2016", dt.date(2016, 4, 18)),
        ("14 MARCA 2016", dt.date(2016, 3, 14)),
    ],
)
def test_dates(text: str, date: dt.date) -> None:
    assert date in find_dates(text)


@pytest.mark.parametrize(
    ("text", "city", "found"),
    [
        ("w Opolu", "Opole", True),
        ("Torun", "Toruń", True),
        ("w Toruniu", "Toruń", True),
        ("w Lublinie", "Lublin", True),
        ("Lubliniec", "Lublin", False),
        ("Związek Gmin Śląska Opolskiego", "Opole", False),
        ("SZCZECIN", "Szczecin", True),
    ],
)
def test_city_mentions(text: str, city: str, found: bool) -> None:
    assert mentions_city(text, city) is found


def _event(*lines: str, body: tuple[str, ...] = ()) -> str | None:
    return recognise_event(
        [EventLine(t, header=True) for t in lines]
        + [EventLine(t, header=False) for t in body],
        EVENTS,
    )


def test_event_from_header() -> None:
    assert _event("Opole, 18 kwietnia 2016 r., Sala Herbowa") == "opole-2016"
    assert _event("konferencja w Toruniu, 14.03.2016") == "torun-2016"
    assert _event("Torun 2016-03-14") == "torun-2016"


def test_event_city_or_date_alone() -> None:
    assert _event("w Lublinie") == "lublin-2016"
    assert _event("7 marca 2016") == "szczecin-2016"


def test_event_contradiction_is_unknown() -> None:
    assert _event("Opole, 14 marca 2016") is None
    assert _event("Kraków, 2 maja 2016") is None
    assert _event() is None


def test_event_from_body_needs_city_and_date() -> None:
    assert _event(body=("spotkanie w Opolu 18.04.2016",)) == "opole-2016"
    assert _event(body=("Opole",)) is None
