"""Reply templates: every kind renders in both parts, in Polish, safely escaped."""

from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from jinja2 import UndefinedError

from mailbot.salutation import greeting
from mailbot.template_samples import BASE_KEYS, DEFAULT_EVENT, sample_context
from mailbot.templating import (
    KINDS,
    WITHDRAWAL_KINDS,
    WITHDRAWAL_SENTENCE,
    Rendered,
    Templates,
    date_pl,
    in_days_pl,
    plural_pl,
    time_pl,
    weekday_pl,
)

CALENDAR = "W załączniku przesyłamy"
WITHDRAWAL_WORDS = ("rezygn", "odwołuj", "odwołan")


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates()


def render(templates: Templates, kind: str, **extra: Any) -> Rendered:
    ctx = sample_context(kind)
    ctx.update(extra)
    return templates.render(kind, ctx)


def parts(r: Rendered) -> dict[str, str]:
    return {"subject": r.subject, "text": r.text, "html": r.html}


def with_waitlisted_second_person(ctx: dict[str, Any]) -> dict[str, Any]:
    """A mixed form: the last person of the first registration is on the waiting list."""
    last = ctx["registrations"][0]["participants"][-1]
    last.update(status="waitlisted", waitlist_position=2)
    return ctx


# --- filters -------------------------------------------------------------------------


def test_polish_dates_use_the_genitive_month_and_weekday() -> None:
    assert date_pl(dt.date(2016, 4, 18)) == "18 kwietnia 2016 r."
    assert weekday_pl(dt.date(2016, 4, 18)) == "poniedziałek"
    assert time_pl(dt.time(9, 5)) == "09:05"


@pytest.mark.parametrize(
    ("days", "words"),
    [(0, "dziś"), (1, "jutro"), (2, "za 2 dni"), (3, "za 3 dni"), (5, "za 5 dni"),
     (7, "za tydzień"), (14, "za 14 dni"), (21, "za 21 dni"), (None, "wkrótce")],
)
def test_days_before_in_words(days: int | None, words: str) -> None:
    assert in_days_pl(days) == words


@pytest.mark.parametrize(
    ("n", "form"),
    [(0, "osób"), (1, "osoba"), (2, "osoby"), (4, "osoby"), (5, "osób"), (12, "osób"),
     (14, "osób"), (21, "osób"), (22, "osoby"), (104, "osoby"), (112, "osób")],
)
def test_polish_plural(n: int, form: str) -> None:
    assert plural_pl(n, "osoba", "osoby", "osób") == form


# --- the samples and the contract ------------------------------------------------------


def test_the_kinds_are_exactly_these_in_this_order() -> None:
    assert KINDS == (
        "ack", "incomplete", "no_form", "waitlist", "promoted",
        "cancelled", "closed", "reminder", "changed", "updated",
        "question_received", "forwarded_question", "open_events",
    )


@pytest.mark.parametrize("kind", KINDS)
def test_every_sample_has_exactly_the_contract_keys(kind: str) -> None:
    ctx = sample_context(kind)
    assert set(ctx) == BASE_KEYS and ctx["kind"] == kind
    assert set(ctx["event"]) == set(DEFAULT_EVENT)
    for p in ctx["people"]:
        assert set(p) == {"full_name", "status", "waitlist_position"}
    for reg in ctx["registrations"]:
        assert set(reg) == {"code", "institution", "workshops", "status", "participants"}
        for p in reg["participants"]:
            assert set(p) == {"full_name", "job_title", "email", "email_unconfirmed", "status", "waitlist_position"}


def test_samples_are_fresh_copies() -> None:
    a = sample_context("ack")
    a["registrations"][0]["participants"].clear()
    a["event"]["city"] = "Nysa"
    b = sample_context("ack")
    assert len(b["registrations"][0]["participants"]) == 2 and b["event"]["city"] == "Opole"


def test_an_unknown_kind_has_no_sample() -> None:
    with pytest.raises(ValueError, match="unknown reply kind"):
        sample_context("thanks")


def test_a_sample_for_another_event_uses_that_event(templates: Templates) -> None:
    event = dict(DEFAULT_EVENT, key="wroclaw-2016", city="Wrocław", date=dt.date(2016, 5, 9),
                 end_time=None, deadline=dt.date(2016, 5, 5))
    ctx = sample_context("ack", event)
    assert ctx["code"] == "WRO-7K3FQ"
    r = templates.render("ack", ctx)
    assert "[WRO-7K3FQ]" in r.subject and "Wrocław, 9 maja 2016 r." in r.subject
    assert "poniedziałek, 9 maja 2016 r., godz. 11:00\n" in r.text  # no end time: no range


# --- every kind ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_a_subject_a_text_and_an_html_part(templates: Templates, kind: str) -> None:
    ctx = sample_context(kind)
    r = templates.render(kind, ctx)
    assert "Opole" in r.subject and "18 kwietnia 2016 r." in r.subject
    if ctx["code"] is not None:
        assert f"[{ctx['code']}]" in r.subject
    assert "poniedziałek, 18 kwietnia 2016 r., godz. 11:00–15:00" in r.text
    assert "Sala Herbowa" in r.html and r.html.lstrip().startswith("<!DOCTYPE html>")
    assert f"<title>{r.subject}</title>" in r.html
    # The footer ends with the data controller's line when the config gives one.
    controller = ctx["event"]["organiser"]["data_controller"]
    # The greeting is the recipient's: a named person's vocative, else "Szanowni Państwo,".
    assert r.text.startswith(f"{greeting(ctx['recipient_person'] or ctx['recipient_name'])}\n") and r.text.endswith(f"ten e-mail.\n{controller}\n")
    assert f"<p>{greeting(ctx['recipient_person'] or ctx['recipient_name'])}</p>" in r.html
    assert "\n\n\n" not in r.text
    assert "Zespół organizacyjny konferencji" in r.text and "zgloszenia@example.org" in r.html


@pytest.mark.parametrize("kind", KINDS)
def test_without_a_code_the_subject_has_no_brackets(templates: Templates, kind: str) -> None:
    r = render(templates, kind, code=None)
    assert "[" not in r.subject and "Opole, 18 kwietnia 2016 r." in r.subject
    assert "numer zgłoszenia [" not in r.text


@pytest.mark.parametrize("kind", KINDS)
def test_with_a_code_the_footer_asks_to_keep_it_in_the_subject(templates: Templates, kind: str) -> None:
    r = render(templates, kind, code="OPO-ABCDE")
    assert "[OPO-ABCDE]" in r.subject
    assert "prosimy zachować w temacie numer zgłoszenia [OPO-ABCDE]" in r.text
    assert "prosimy zachować w temacie numer zgłoszenia [OPO-ABCDE]" in r.html


@pytest.mark.parametrize("kind", KINDS)
def test_the_footer_names_the_answered_message_only_when_there_is_one(
    templates: Templates, kind: str
) -> None:
    answered = render(templates, kind, original_subject="Zgłoszenie – Nysa")
    for part in (answered.text, answered.html):
        assert "wysłana automatycznie w odpowiedzi na wiadomość „Zgłoszenie – Nysa”." in part
    unprompted = render(templates, kind, original_subject=None)
    for part in (unprompted.text, unprompted.html):
        assert "Ta wiadomość została wysłana automatycznie." in part
        assert "w odpowiedzi na wiadomość" not in part and "None" not in part


@pytest.mark.parametrize("kind", KINDS)
def test_the_withdrawal_sentence_is_in_the_footer_of_exactly_the_right_kinds(
    templates: Templates, kind: str
) -> None:
    r = render(templates, kind)
    if kind in WITHDRAWAL_KINDS:
        # One whole line, verbatim, so the quote-stripper can recognise and drop it.
        assert WITHDRAWAL_SENTENCE in r.text.splitlines()
        assert r.text.index(WITHDRAWAL_SENTENCE) > r.text.index("\n--\n")
        assert f"{WITHDRAWAL_SENTENCE}<br>" in r.html
    else:
        assert WITHDRAWAL_SENTENCE not in r.text and WITHDRAWAL_SENTENCE not in r.html


def _every_branch(kind: str) -> list[dict[str, Any]]:
    """Contexts for ``kind`` that between them take every optional paragraph."""
    base = sample_context(kind)
    rich = copy.deepcopy(base)
    rich.update(
        calendar_attached=True,
        problems=["Brak stanowiska uczestnika 1."],
        changes=[{"field": "Termin", "old": "18 kwietnia 2016 r.", "new": "19 kwietnia 2016 r."}],
        days_before=7,
        blank_form_returned=True,
    )
    if rich["registrations"]:
        with_waitlisted_second_person(rich)
        rich["registrations"].append(copy.deepcopy(rich["registrations"][0]))
        for p in rich["registrations"][1]["participants"]:
            p["status"] = "cancelled"
        rich["registrations"][1]["status"] = "cancelled"
    bare = copy.deepcopy(base)
    bare.update(changes=[], problems=[], people=[], registrations=[], unreadable=[], code=None)
    variants = [base, rich, bare]
    for reason in ("deadline", "event_over", None):
        variants.append(dict(copy.deepcopy(base), closed_reason=reason))
    for days in (0, 1, 3, 7, None):
        variants.append(dict(copy.deepcopy(base), days_before=days))
    return variants


@pytest.mark.parametrize("kind", KINDS)
def test_no_withdrawal_word_outside_the_footer_sentence(templates: Templates, kind: str) -> None:
    for ctx in _every_branch(kind):
        r = templates.render(kind, ctx)
        for name, part in parts(r).items():
            rest = part.replace(WITHDRAWAL_SENTENCE, "").casefold()
            for word in WITHDRAWAL_WORDS:
                assert word not in rest, f"{kind} {name} says {word!r} outside the footer sentence"


@pytest.mark.parametrize("kind", KINDS)
def test_every_optional_branch_renders(templates: Templates, kind: str) -> None:
    for ctx in _every_branch(kind):
        r = templates.render(kind, ctx)
        assert r.text.startswith(f"{greeting(ctx['recipient_person'] or ctx['recipient_name'])}\n") and "\n\n\n" not in r.text


# --- escaping ---------------------------------------------------------------------------


HOSTILE = '<script>alert("x")</script>'


def _hostile(kind: str) -> dict[str, Any]:
    ctx = sample_context(kind)
    for reg in ctx["registrations"]:
        reg["institution"] = f"Urząd {HOSTILE}"
        for p in reg["participants"]:
            p["job_title"] = HOSTILE
    for p in ctx["people"]:
        p["full_name"] = f"Jan {HOSTILE}"
    ctx["problems"] = [f"Nieczytelne: {HOSTILE}"]
    ctx["changes"] = [{"field": "Instytucja", "old": HOSTILE, "new": f"<b>{HOSTILE}</b>"}]
    ctx["original_subject"] = f"Re: {HOSTILE}"
    ctx["unreadable"] = [f"{HOSTILE}.pdf"]
    return ctx


@pytest.mark.parametrize("kind", KINDS)
def test_values_from_mail_and_forms_are_escaped_in_html(templates: Templates, kind: str) -> None:
    r = templates.render(kind, _hostile(kind))
    assert "<script" not in r.html and "<b><script" not in r.html
    assert "&lt;script&gt;" in r.html


@pytest.mark.parametrize("kind", ["ack", "incomplete", "updated"])
def test_a_hostile_institution_is_escaped_in_html_but_kept_in_text(templates: Templates, kind: str) -> None:
    ctx = sample_context(kind)
    ctx["registrations"][0]["institution"] = "Urząd Miejski <script>w Nysie</script>"
    r = templates.render(kind, ctx)
    assert "Urząd Miejski &lt;script&gt;w Nysie&lt;/script&gt;" in r.html
    assert "<script>" not in r.html
    assert "Urząd Miejski <script>w Nysie</script>" in r.text


# --- kind-specific content --------------------------------------------------------------


def test_ack_lists_the_registration_and_incomplete_lists_the_problems(templates: Templates) -> None:
    ack = render(templates, "ack")
    assert "OPO-7K3FQ" in ack.subject
    assert "Anna Kowalska, Kierownik Referatu Promocji <a.kowalska@nysa.pl>" in ack.text
    assert "Warsztaty: A – Zarządzanie strategiczne w partnerstwie" in ack.text
    assert "Potwierdzamy udział w konferencji" in ack.text and "lista rezerwowa" not in ack.text
    incomplete = render(templates, "incomplete")
    assert "- Brak adresu e-mail uczestnika 2 (Piotr Wiśniewski)." in incomplete.text
    assert "<li>Brak adresu e-mail uczestnika 2 (Piotr Wiśniewski).</li>" in incomplete.html


@pytest.mark.parametrize("kind", ["ack", "incomplete", "updated"])
def test_a_waitlisted_person_on_a_mixed_form_is_marked_with_the_position(
    templates: Templates, kind: str
) -> None:
    ctx = with_waitlisted_second_person(sample_context(kind))
    r = templates.render(kind, ctx)
    # A position on the waiting list, not a seat number ("miejsce 2" read as a seat).
    assert "(pozycja 2 na liście rezerwowej)" in r.text and "(pozycja 2 na liście rezerwowej)" in r.html
    assert "miejsce 2" not in r.text
    first_line = next(line for line in r.text.splitlines() if "Anna Kowalska" in line)
    assert "rezerwow" not in first_line


def test_a_mixed_ack_does_not_confirm_everybody(templates: Templates) -> None:
    r = templates.render("ack", with_waitlisted_second_person(sample_context("ack")))
    assert "Potwierdzamy udział w konferencji" not in r.text
    assert "z wyjątkiem oznaczonych\ndopiskiem „na liście rezerwowej”" in r.text


def test_waitlist_says_the_position_and_that_nothing_needs_doing(templates: Templates) -> None:
    r = render(templates, "waitlist")
    assert "Jan Nowak – pozycja 3 na liście rezerwowej" in r.text
    assert "Ewa Lis – pozycja 4 na liście rezerwowej" in r.text
    assert "<strong>pozycja 3</strong>" in r.html
    # The sentence has its object: who was put on the list.
    assert "dlatego zgłoszone osoby wpisaliśmy na listę rezerwową:" in r.text
    assert "nie trzeba nic robić" in r.text and "poinformujemy" in r.text


def test_promoted_names_the_people_and_confirms(templates: Templates) -> None:
    r = render(templates, "promoted")
    assert "zwolniło się miejsce" in r.text and "1. Anna Kowalska" in r.text
    assert "Piotr Wiśniewski" not in r.text
    two = render(templates, "promoted", people=sample_context("reminder")["people"])
    assert "zwolniły się miejsca" in two.text and "2. Piotr Wiśniewski" in two.text


def test_cancelled_confirms_and_says_how_to_come_back(templates: Templates) -> None:
    # The sample: Piotr Wiśniewski, taken off the list, told so at his own address.
    r = render(templates, "cancelled")
    assert r.text.startswith("Szanowny Panie Piotrze,\n")
    assert "potwierdzamy, że usunęliśmy Pana z listy uczestników konferencji:" in r.text
    assert "Anna Kowalska" not in r.text
    assert "wystarczy ponownie przesłać formularz" in r.text
    assert "wystarczy ponownie przesłać formularz" in r.html
    ics = render(templates, "cancelled", calendar_attached=True)
    assert "zostanie usunięty z Pana kalendarza" in ics.text
    # The same mail to whoever registered him (an office): the list of who was taken off.
    office = render(templates, "cancelled", recipient_name=None, recipient_person=None, calendar_attached=True)
    assert office.text.startswith("Szanowni Państwo,\n")
    assert "usunęliśmy:\n\n  1. Piotr Wiśniewski\n" in office.text
    assert "Anna Kowalska" not in office.text
    assert "zostanie usunięty z Państwa kalendarza" in office.text


def test_closed_after_the_deadline_and_after_the_event(templates: Templates) -> None:
    deadline = render(templates, "closed", closed_reason="deadline")
    assert "zapisy zakończyły się 14 kwietnia 2016 r." in deadline.text
    assert "przekazany organizatorom" in deadline.text and "skontaktują się" in deadline.text
    over = render(templates, "closed", closed_reason="event_over")
    assert "Konferencja już się odbyła" in over.text and "przekazany organizatorom" in over.text
    assert "skontaktują się" not in over.text


@pytest.mark.parametrize(("days", "words"), [(1, "jutro"), (7, "za tydzień"), (3, "za 3 dni")])
def test_reminder_says_when(templates: Templates, days: int, words: str) -> None:
    r = render(templates, "reminder", days_before=days)
    assert r.subject == f"Przypomnienie: konferencja {words} – Opole, 18 kwietnia 2016 r."
    coded = render(templates, "reminder", days_before=days, code="OPO-7K3FQ")
    assert coded.subject == f"Przypomnienie: konferencja {words} [OPO-7K3FQ] – Opole, 18 kwietnia 2016 r."
    assert f"przypominamy, że {words} odbędzie się konferencja" in r.text
    assert f"<strong>{words}</strong>" in r.html
    assert "1. Anna Kowalska" in r.text and "2. Piotr Wiśniewski" in r.text


@pytest.mark.parametrize("kind", ["changed", "updated"])
def test_the_changes_are_listed_old_to_new(templates: Templates, kind: str) -> None:
    changes = [
        {"field": "Termin", "old": "18 kwietnia 2016 r.", "new": "19 kwietnia 2016 r."},
        {"field": "Telefon (uczestnik 1)", "old": "", "new": "77 123 45 67"},
    ]
    r = render(templates, kind, changes=changes)
    assert "  - Termin: 18 kwietnia 2016 r. → 19 kwietnia 2016 r.\n" in r.text
    # An empty old value reads as an addition, not as "(brak) →" or "— →".
    assert "  - Telefon (uczestnik 1): dodano 77 123 45 67\n" in r.text
    assert "<li>Telefon (uczestnik 1): dodano <strong>77 123 45 67</strong></li>" in r.html
    assert "<li>Termin: <s>18 kwietnia 2016 r.</s> → <strong>19 kwietnia 2016 r.</strong></li>" in r.html


def test_changed_shows_the_new_details_and_replaces_the_calendar_entry(templates: Templates) -> None:
    r = render(templates, "changed")
    assert "Godzina rozpoczęcia: 10:00 → 11:00" in r.text
    assert "Zgłoszenie pozostaje ważne" in r.text
    assert "Zgłoszenie nr OPO-7K3FQ pozostaje ważne" in render(templates, "changed", code="OPO-7K3FQ").text
    assert "Aktualne informacje o konferencji" in r.text
    assert "zaktualizowany plik kalendarza (.ics)" in r.text and "zastąpią poprzedni wpis" in r.text


def test_updated_shows_the_current_state(templates: Templates) -> None:
    r = render(templates, "updated")
    assert "Stan zgłoszenia: przyjęte" in r.text and "Stan zgłoszenia: przyjęte" in r.html
    assert "Warsztaty: A – Zarządzanie strategiczne w partnerstwie; B – Zarządzanie relacjami" in r.text
    unchanged = render(templates, "updated", changes=[], confirmed_emails=[])  # a form without changes
    assert "Nie zawierał on zmian" in unchanged.text and "→" not in unchanged.text


@pytest.mark.parametrize("kind", KINDS)
def test_the_calendar_is_mentioned_only_when_attached(templates: Templates, kind: str) -> None:
    with_ics = render(templates, kind, calendar_attached=True)
    assert "plik kalendarza (.ics)" in with_ics.text and "plik kalendarza (.ics)" in with_ics.html
    without = render(templates, kind, calendar_attached=False)
    for part in (without.text, without.html):
        assert CALENDAR not in part and ".ics" not in part and "kalendarz" not in part


def test_no_form_keeps_its_three_cases(templates: Templates) -> None:
    unreadable = render(templates, "no_form")
    assert "Nie udało nam się odczytać załączonego pliku (skan_zgloszenia.heic)." in unreadable.text
    assert "(zgloszenie-opole-2016.docx)" in unreadable.text
    blank = render(templates, "no_form", unreadable=[], blank_form_returned=True)
    assert "nie jest on wypełniony" in blank.text
    nothing = render(templates, "no_form", unreadable=[])
    assert "Nie znaleźliśmy w niej wypełnionego formularza" in nothing.text
    assert "zgłoszenia przyjmujemy do 14 kwietnia 2016 r." in nothing.text


def test_a_person_without_a_name_is_still_listed(templates: Templates) -> None:
    ctx = sample_context("reminder")
    ctx["people"][0]["full_name"] = None
    assert "1. (bez nazwiska)" in templates.render("reminder", ctx).text


# --- strictness and overrides -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "key"),
    [(k, "signature") for k in KINDS]
    + [(k, "code") for k in KINDS]
    + [(k, "calendar_attached") for k in KINDS]
    + [("ack", "registrations"), ("waitlist", "people"), ("changed", "changes"),
       ("reminder", "days_before"), ("closed", "closed_reason"), ("no_form", "attachment_name"),
       ("updated", "workshop_names")],
)
def test_a_missing_variable_is_an_error_not_a_blank(templates: Templates, kind: str, key: str) -> None:
    ctx = sample_context(kind)
    del ctx[key]
    with pytest.raises(UndefinedError):
        templates.render(kind, ctx)


def test_a_missing_event_field_is_an_error(templates: Templates) -> None:
    ctx = sample_context("ack")
    del ctx["event"]["end_time"]
    with pytest.raises(UndefinedError):
        templates.render("ack", ctx)


def test_an_admin_file_with_the_same_name_overrides_the_shipped_template(tmp_path: Path) -> None:
    (tmp_path / "ack.txt.j2").write_text('{% set subject %}Dziękujemy{% endset %}Własny tekst {{ event.city }}\n')
    rendered = Templates(override_dir=tmp_path).render("ack", sample_context("ack"))
    assert rendered.subject == "Dziękujemy" and rendered.text == "Własny tekst Opole\n"
    assert "Sala Herbowa" in rendered.html  # not overridden: still the shipped one


def test_an_admin_partial_overrides_it_in_every_kind(tmp_path: Path) -> None:
    (tmp_path / "_event.txt.j2").write_text("  Spotkanie w mieście {{ event.city }}\n")
    t = Templates(override_dir=tmp_path)
    for kind in KINDS:
        r = t.render(kind, sample_context(kind))
        assert "Spotkanie w mieście Opole" in r.text and "Termin:" not in r.text


def test_a_broken_override_is_reported_by_check(tmp_path: Path) -> None:
    (tmp_path / "reminder.html.j2").write_text("{% if %}")
    bad = Templates(override_dir=tmp_path).check()
    assert len(bad) == 1 and bad[0].startswith("reminder.html.j2:")


def test_check_renders_each_kind_so_a_misspelt_variable_is_caught(tmp_path: Path) -> None:
    (tmp_path / "waitlist.txt.j2").write_text("{% set subject %}S{% endset %}{{ evnet.city }}\n")
    bad = Templates(override_dir=tmp_path).check()
    assert len(bad) == 1 and bad[0].startswith("waitlist: does not render with sample data: UndefinedError")
    assert "evnet" in bad[0]


def test_shipped_templates_all_load() -> None:
    assert Templates().check() == []


def test_text_has_at_most_one_blank_line_in_a_row(tmp_path: Path) -> None:
    (tmp_path / "ack.txt.j2").write_text("{% set subject %}S{% endset %}a\n\n\n  \nb\n")
    assert Templates(override_dir=tmp_path).render("ack", sample_context("ack")).text == "a\n\nb\n"


def test_subject_is_one_line(templates: Templates) -> None:
    for kind in KINDS:
        subject = render(templates, kind).subject
        assert "\n" not in subject and not re.search(r"\s{2,}", subject)


def test_remembered_dates_never_mix_up_time_zones_or_types() -> None:
    """The babel filters are cached for plain dates and naive times only: an aware
    datetime compares equal to the same instant in another zone but prints its own day."""
    utc = dt.datetime(2016, 4, 17, 23, 30, tzinfo=dt.UTC)
    warsaw = utc.astimezone(ZoneInfo("Europe/Warsaw"))
    assert utc == warsaw
    assert date_pl(utc) == "17 kwietnia 2016 r." and date_pl(warsaw) == "18 kwietnia 2016 r."
    assert weekday_pl(utc) == "niedziela" and weekday_pl(warsaw) == "poniedziałek"
    assert date_pl(dt.date(2016, 4, 18)) == date_pl(dt.date(2016, 4, 18)) == "18 kwietnia 2016 r."
    assert date_pl(dt.datetime(2016, 4, 18, 0, 0)) == "18 kwietnia 2016 r."
    assert time_pl(dt.time(11, 0)) == time_pl(dt.time(11, 0)) == "11:00"
    assert time_pl(dt.time(9, 5)) == "09:05"
