"""The salutation of reply mails: gender and vocative from the shipped name list only."""

from __future__ import annotations

import pytest

from mailbot.salutation import EVERYONE, Addressee, addressee, greeting, names, parse_names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Katarzyna Wróbel", "Szanowna Pani Katarzyno,"),
        ("Anna Kowalska", "Szanowna Pani Anno,"),
        ("Małgorzata Żak", "Szanowna Pani Małgorzato,"),
        ("Zofia Nowak", "Szanowna Pani Zofio,"),
        ("Tomasz Lis", "Szanowny Panie Tomaszu,"),
        ("Piotr Wiśniewski", "Szanowny Panie Piotrze,"),
        ("Marek Nowak", "Szanowny Panie Marku,"),
        ("Paweł Kowalski", "Szanowny Panie Pawle,"),
        ("Michał Zieliński", "Szanowny Panie Michale,"),
        ("Łukasz Dąbrowski", "Szanowny Panie Łukaszu,"),
        ("Jacek Kuroń", "Szanowny Panie Jacku,"),
        ("Jerzy Nowak", "Szanowny Panie Jerzy,"),
        ("Jakub Wójcik", "Szanowny Panie Jakubie,"),
        ("Krzysztof Krawczyk", "Szanowny Panie Krzysztofie,"),
    ],
)
def test_a_listed_first_name_gives_the_gender_and_the_vocative(name: str, expected: str) -> None:
    assert greeting(name) == expected


def test_upper_case_titles_and_double_first_names() -> None:
    assert greeting("KATARZYNA WRÓBEL") == "Szanowna Pani Katarzyno,"
    assert greeting("dr Katarzyna Wróbel") == "Szanowna Pani Katarzyno,"
    assert greeting("dr hab. inż. Tomasz Lis") == "Szanowny Panie Tomaszu,"
    assert greeting("Pani Anna Nowak") == "Szanowna Pani Anno,"
    assert greeting('"Łukasz Żak"') == "Szanowny Panie Łukaszu,"
    # Only the FIRST name counts: Maria as a man's second name changes nothing.
    assert greeting("Anna Maria Kowalska") == "Szanowna Pani Anno,"
    assert greeting("Jan Maria Rokita") == "Szanowny Panie Janie,"


@pytest.mark.parametrize(
    "name",
    [
        None,
        "",
        "   ",
        "Sekretariat",
        "Urząd Gminy Testowo",
        "Nowak Jan",  # surname first: "Nowak" is no first name — nothing is guessed
        "Kuba Nowak",  # a diminutive, never on a form
        "Bożydar Kowalski",  # not in the list: no guess from the ending
        "Jan Maria",  # two first names of different gender and no surname
        "Anna Kowalski",  # a woman's first name with a man's surname
        "Pan Anna Nowak",  # the courtesy word and the name disagree
        "sekretariat@gmina.example.pl",
        "dr",
    ],
)
def test_unsure_means_szanowni_panstwo(name: str | None) -> None:
    assert addressee(name) == EVERYONE
    assert greeting(name) == "Szanowni Państwo,"


def test_gender_without_a_vocative_gives_the_title_alone() -> None:
    assert greeting("Pani Kowalska") == "Szanowna Pani,"
    assert greeting("Pan Nowak") == "Szanowny Panie,"
    # Written without Polish letters: the gender is certain, the vocative's spelling not.
    assert greeting("Malgorzata Kowalska") == "Szanowna Pani,"
    assert greeting("LUKASZ NOWAK") == "Szanowny Panie,"


def test_the_pronoun_follows_the_addressee() -> None:
    her, him, all_ = addressee("Anna Nowak"), addressee("Jan Nowak"), EVERYONE
    assert (her.nom, her.gen, her.dat, her.acc, her.ins, her.loc) == ("Pani", "Pani", "Pani", "Panią", "Panią", "Pani")
    assert (him.nom, him.gen, him.dat, him.acc, him.ins, him.loc) == ("Pan", "Pana", "Panu", "Pana", "Panem", "Panu")
    assert (all_.nom, all_.gen, all_.dat, all_.acc, all_.ins, all_.loc) == (
        "Państwo", "Państwa", "Państwu", "Państwa", "Państwem", "Państwu",
    )
    assert her.pick("chce", "chcą") == "chce" and all_.pick("chce", "chcą") == "chcą"
    assert her.pick("otrzymała", "otrzymał", "otrzymali") == "otrzymała"
    assert him.pick("otrzymała", "otrzymał", "otrzymali") == "otrzymał"
    assert all_.pick("otrzymała", "otrzymał", "otrzymali") == "otrzymali"
    with pytest.raises(TypeError):
        her.pick("chce")
    assert Addressee("f").greeting == "Szanowna Pani," and Addressee("m", "Janie").greeting == "Szanowny Panie Janie,"


def test_the_shipped_list_is_sound() -> None:
    listed = names()
    assert len(listed) >= 300
    assert sum(n.gender == "f" for n in listed.values()) >= 140
    assert sum(n.gender == "m" for n in listed.values()) >= 140
    assert "kuba" not in listed  # diminutives stay out
    for n in listed.values():
        assert n.name[0].isupper() and n.name == n.name.strip()
        if n.vocative is None:
            continue
        assert n.vocative[:2] == n.name[:2], n  # a vocative keeps the stem's start
        if n.gender == "f":
            # Official female names in -a take -o in the vocative.
            assert n.name.endswith("a") and n.vocative == n.name[:-1] + "o", n
        else:
            assert not n.vocative.endswith("o"), n
    # The examples of the issue, exactly.
    expected = {
        "Katarzyna": "Katarzyno", "Anna": "Anno", "Tomasz": "Tomaszu", "Piotr": "Piotrze",
        "Marek": "Marku", "Paweł": "Pawle", "Michał": "Michale", "Jan": "Janie", "Ewa": "Ewo",
        "Zofia": "Zofio", "Jacek": "Jacku", "Łukasz": "Łukaszu", "Kamil": "Kamilu",
        "Karol": "Karolu", "Jerzy": "Jerzy", "Maria": "Mario", "Agnieszka": "Agnieszko",
        "Bartosz": "Bartoszu", "Marcin": "Marcinie", "Adam": "Adamie", "Rafał": "Rafale",
        "Krzysztof": "Krzysztofie", "Andrzej": "Andrzeju", "Stanisław": "Stanisławie",
        "Wojciech": "Wojciechu", "Grzegorz": "Grzegorzu", "Jakub": "Jakubie", "Beata": "Beato",
        "Iwona": "Iwono", "Małgorzata": "Małgorzato", "Barbara": "Barbaro", "Joanna": "Joanno",
        "Aleksandra": "Aleksandro", "Natalia": "Natalio", "Kinga": "Kingo", "Olga": "Olgo",
        "Dorota": "Doroto", "Danuta": "Danuto",
    }
    for name, vocative in expected.items():
        assert listed[name.casefold()].vocative == vocative, name


def test_a_malformed_list_is_refused() -> None:
    assert parse_names("# komentarz\nAnna\tK\tAnno\nAdam\tM\t\n")["adam"].vocative is None
    with pytest.raises(ValueError, match="line 1"):
        parse_names("Anna\tX\tAnno\n")
    with pytest.raises(ValueError, match="twice"):
        parse_names("Anna\tK\tAnno\nANNA\tK\tAnno\n")
    with pytest.raises(ValueError):
        parse_names("Anna K Anno\n")
