"""Reply templates: every kind renders in both parts, in Polish, safely escaped."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from jinja2 import UndefinedError

from mailbot.templating import KINDS, Templates, date_pl, weekday_pl


def sample_context(**extra: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "event": {
            "key": "opole-2016", "title": "Współpraca w partnerstwach samorządowych", "city": "Opole",
            "date": dt.date(2016, 4, 18), "start_time": dt.time(11, 0),
            "venue": "Sala Herbowa Urzędu Wojewódzkiego w Opolu", "address": "ul. Piastowska 14",
            "deadline": dt.date(2016, 4, 14),
        },
        "registrations": [
            {
                "code": "OPO-7K3FQ", "institution": "Urząd Miejski <b>w Nysie</b>", "workshops": ["A"],
                "participants": [{"full_name": "Anna Kowalska", "job_title": "Kierownik", "email": "a@nysa.pl"}],
            }
        ],
        "problems": ["Brak adresu e-mail uczestnika 2."],
        "unreadable": [],
        "blank_form_returned": False,
        "attachment_name": "zgloszenie-opole-2016.docx",
        "recipient_name": "Anna Kowalska",
        "signature": "Zespół organizacyjny",
        "organiser_email": "zgloszenia@example.pl",
        "original_subject": "Zgłoszenie",
        "workshop_names": {"A": "Zarządzanie strategiczne w partnerstwie"},
    }
    ctx.update(extra)
    return ctx


def test_polish_dates_use_the_genitive_month_and_weekday() -> None:
    assert date_pl(dt.date(2016, 4, 18)) == "18 kwietnia 2016 r."
    assert weekday_pl(dt.date(2016, 4, 18)) == "poniedziałek"


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_a_subject_a_text_and_an_html_part(kind: str) -> None:
    rendered = Templates().render(kind, sample_context())
    assert "Opole" in rendered.subject and "18 kwietnia 2016 r." in rendered.subject
    assert "poniedziałek, 18 kwietnia 2016 r., godz. 11:00" in rendered.text
    assert "Sala Herbowa" in rendered.html and rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert rendered.text.startswith("Dzień dobry,\n")


def test_ack_lists_the_registration_and_incomplete_lists_the_problems() -> None:
    t = Templates()
    ack = t.render("ack", sample_context())
    assert "OPO-7K3FQ" in ack.subject and "Anna Kowalska, Kierownik <a@nysa.pl>" in ack.text
    incomplete = t.render("incomplete", sample_context())
    assert "- Brak adresu e-mail uczestnika 2." in incomplete.text
    assert "<li>Brak adresu e-mail uczestnika 2.</li>" in incomplete.html


def test_values_from_forms_are_escaped_in_html_but_kept_in_text() -> None:
    rendered = Templates().render("ack", sample_context())
    assert "Urząd Miejski &lt;b&gt;w Nysie&lt;/b&gt;" in rendered.html
    assert "Urząd Miejski <b>w Nysie</b>" in rendered.text


def test_a_missing_variable_is_an_error_not_a_blank() -> None:
    ctx = sample_context()
    del ctx["signature"]
    with pytest.raises(UndefinedError):
        Templates().render("ack", ctx)


def test_an_admin_file_with_the_same_name_overrides_the_shipped_template(tmp_path: Path) -> None:
    (tmp_path / "ack.txt.j2").write_text('{% set subject %}Dziękujemy{% endset %}Własny tekst {{ event.city }}\n')
    rendered = Templates(override_dir=tmp_path).render("ack", sample_context())
    assert rendered.subject == "Dziękujemy" and rendered.text == "Własny tekst Opole\n"
    assert "Sala Herbowa" in rendered.html  # not overridden: still the shipped one


def test_shipped_templates_all_load() -> None:
    assert Templates().check() == []
