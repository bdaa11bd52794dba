"""Nothing invented (issue 12, item 2): a mail states only what the organisers configured.

An end time appears in a mail only when ``end_time`` is set; the calendar file still
needs an end and takes ``calendar_default_hours`` for it. The organiser block (name,
phone, e-mail, data controller) appears in replies, the blank form and the .ics where it
is configured, and not at all where it is not: no placeholder, no guessed line. Old
configurations without any of it stay valid.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path
from typing import Any, Literal

import docx
import pytest

from mailbot.config import OrganiserSettings, Settings, load_settings, settings_from_dict
from mailbot.forms.blank import EventHeader, make_docx, make_pdf

from tests.conversation import REPO, WARSAW, Conversation, calendar_of, form_docx, mail, settings_for, text_of

APR1 = dt.datetime(2016, 4, 1, 9, 0, tzinfo=WARSAW)
ANNA = "anna@gmina-a.example.pl"
NO_ORGANISER = OrganiserSettings()


def _ack(settings: Settings) -> Any:
    """Anna registers herself for Opole; the one mail she gets back."""
    conv = Conversation(settings)
    event = settings.event("opole-2016")
    conv.receive(mail(ANNA, "Zgłoszenie", "W załączeniu.", when=APR1,
                      form=form_docx(event, [("Anna Kowalska", ANNA)])))
    conv.run(APR1)
    (ack,) = conv.sent()
    assert ack["X-Mailbot-Kind"] == "ack"
    return ack


def _vevent(message: Any) -> Any:
    cal = calendar_of(message)
    assert cal is not None
    (vevent,) = cal.walk("VEVENT")
    return vevent


def _text(message: Any) -> str:
    return text_of(message).replace("\r\n", "\n")


def _html(message: Any) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


# --- the end time --------------------------------------------------------------------


def test_without_end_time_the_mail_gives_the_start_alone_and_the_calendar_a_default_end(tmp_path: Path) -> None:
    ack = _ack(settings_for(tmp_path, end_time=None))
    text, html = _text(ack), _html(ack)
    assert "poniedziałek, 18 kwietnia 2016 r., godz. 11:00\n" in text
    assert "17:00" not in text and "17:00" not in html
    assert "godz. 11:00</td>" in html
    vevent = _vevent(ack)
    assert vevent.decoded("DTSTART") == dt.datetime(2016, 4, 18, 11, 0, tzinfo=WARSAW)
    assert vevent.decoded("DTEND") == dt.datetime(2016, 4, 18, 17, 0, tzinfo=WARSAW)  # default 6 h


def test_the_default_length_is_configurable_and_still_never_stated(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, end_time=None).model_copy(update={"calendar_default_hours": 3.5})
    ack = _ack(settings)
    assert "14:30" not in _text(ack) and "godz. 11:00\n" in _text(ack)
    assert _vevent(ack).decoded("DTEND") == dt.datetime(2016, 4, 18, 14, 30, tzinfo=WARSAW)


def test_a_configured_end_time_is_stated_and_ends_the_entry(tmp_path: Path) -> None:
    ack = _ack(settings_for(tmp_path, end_time=dt.time(16, 0)))
    assert "godz. 11:00–16:00" in _text(ack) and "godz. 11:00–16:00" in _html(ack)
    assert _vevent(ack).decoded("DTEND") == dt.datetime(2016, 4, 18, 16, 0, tzinfo=WARSAW)


# --- the organiser block in replies and the .ics ----------------------------------------


def test_the_configured_organiser_signs_the_reply_and_the_calendar_entry(tmp_path: Path) -> None:
    # config/demo.toml: [organiser] for the cycle, Opole's own phone in [events.organiser].
    ack = _ack(settings_for(tmp_path))
    text, html = _text(ack), _html(ack)
    assert "Organizator: Związek Miast Polskich\ntel. 77 000 00 00, e-mail: biuro@partnerstwa.example.pl\n" in text
    assert "Administratorem danych osobowych uczestników jest Związek Miast Polskich" in text
    assert "Organizator: Związek Miast Polskich" in html
    assert 'href="mailto:biuro@partnerstwa.example.pl"' in html
    assert "Administratorem danych osobowych uczestników" in html
    vevent = _vevent(ack)
    organizer = vevent["ORGANIZER"]
    assert str(organizer) == "mailto:biuro@partnerstwa.example.pl"
    assert organizer.params["CN"] == "Związek Miast Polskich"
    description = str(vevent["DESCRIPTION"])
    assert "Organizator: Związek Miast Polskich" in description
    assert "tel. 77 000 00 00, e-mail: biuro@partnerstwa.example.pl" in description


def test_without_an_organiser_nothing_is_made_up(tmp_path: Path) -> None:
    ack = _ack(settings_for(tmp_path, organiser=NO_ORGANISER))
    text, html = _text(ack), _html(ack)
    for absent in ("Organizator", "tel.", "Administratorem", "Związek Miast Polskich"):
        assert absent not in text and absent not in html, absent
    # The signature ends with the sender's address, the footer as before.
    assert "\nzgloszenia@partnerstwa.example.pl\n\n--\n" in text
    vevent = _vevent(ack)
    # ORGANIZER must exist in an entry: the real sender, never an invented organiser.
    assert str(vevent["ORGANIZER"]) == "mailto:zgloszenia@partnerstwa.example.pl"
    assert "Organizator" not in str(vevent["DESCRIPTION"])


def test_only_the_lines_given_are_printed(tmp_path: Path) -> None:
    ack = _ack(settings_for(tmp_path, organiser=OrganiserSettings(phone="77 111 22 33")))
    text = _text(ack)
    assert "\ntel. 77 111 22 33\n" in text
    assert "Organizator" not in text and "Administratorem" not in text and "e-mail: " not in text
    assert "tel. 77 111 22 33" in str(_vevent(ack)["DESCRIPTION"])


# --- configuration -------------------------------------------------------------------


OUTBOX = {"from_address": "zgloszenia@example.pl"}
EVENT: dict[str, Any] = {
    "key": "opole-2016", "title": "T", "city": "Opole", "date": "2016-04-18",
    "venue": "Sala", "address": "ul. Piastowska 14", "capacity": 10,
}


def test_an_old_config_without_the_new_options_is_valid() -> None:
    settings = settings_from_dict({"outbox": OUTBOX, "events": [EVENT]})
    event = settings.event("opole-2016")
    assert settings.calendar_default_hours == 6
    assert event.organiser == OrganiserSettings() and event.organiser.is_empty
    assert event.end_time is None


def test_an_events_organiser_overrides_the_cycle_field_by_field() -> None:
    settings = settings_from_dict({
        "outbox": OUTBOX,
        "organiser": {"name": "Związek Miast Polskich", "phone": "61 633 50 50", "email": "biuro@zmp.example.pl",
                      "data_controller": "Administratorem danych jest ZMP."},
        "events": [dict(EVENT, organiser={"phone": "77 400 00 00"}), dict(EVENT, key="torun-2016")],
    })
    opole, torun = settings.event("opole-2016").organiser, settings.event("torun-2016").organiser
    assert opole == OrganiserSettings(name="Związek Miast Polskich", phone="77 400 00 00",
                                      email="biuro@zmp.example.pl", data_controller="Administratorem danych jest ZMP.")
    assert torun.phone == "61 633 50 50"


@pytest.mark.parametrize("bad", [
    {"organiser": {"email": "biuro(at)zmp.pl"}},
    {"organiser": {"fax": "61 000"}},
    {"calendar_default_hours": 0},
    {"calendar_default_hours": 25},
])
def test_organiser_and_default_length_are_checked(bad: dict[str, Any]) -> None:
    from mailbot.config import InvalidConfig

    with pytest.raises(InvalidConfig):
        settings_from_dict({"outbox": OUTBOX, "events": [EVENT], **bad})


@pytest.mark.parametrize("name", ["demo.toml", "mailbot.example.toml"])
def test_the_shipped_configs_document_and_load_the_new_options(name: str) -> None:
    settings = load_settings(REPO / "config" / name)
    assert settings.calendar_default_hours == 6
    assert all(e.organiser.name == "Związek Miast Polskich" for e in settings.events)
    assert all(e.organiser.data_controller for e in settings.events)


# --- the blank form ------------------------------------------------------------------


HEADER = EventHeader("Współpraca w partnerstwach samorządowych", "Opole", dt.date(2016, 4, 18), dt.time(11, 0),
                     "Sala Herbowa", "ul. Piastowska 14", dt.date(2016, 4, 14))
ORGANISED = dataclasses.replace(
    HEADER, organiser_email="biuro@zmp.example.pl", organiser_name="Związek Miast Polskich",
    organiser_phone="61 633 50 50", data_controller="Administratorem danych osobowych jest ZMP.",
)


def _docx_text(data: bytes) -> str:
    return "\n".join(p.text for p in docx.Document(io.BytesIO(data)).paragraphs)


@pytest.mark.parametrize("style", ["table", "controls"])
def test_the_blank_form_says_where_to_send_it(style: Literal["table", "controls"]) -> None:
    text = _docx_text(make_docx(ORGANISED, style=style))
    assert ("Zgłoszenia prosimy przesyłać do 14 kwietnia 2016 r. na adres e-mail organizatora: "
            "biuro@zmp.example.pl.") in text
    assert "Organizator: Związek Miast Polskich, tel. 61 633 50 50" in text
    assert "Administratorem danych osobowych jest ZMP." in text


def test_the_blank_form_without_an_organiser_is_as_before() -> None:
    text = _docx_text(make_docx(HEADER))
    assert "Zgłoszenia prosimy przesyłać do 14 kwietnia 2016 r. na adres e-mail organizatora.\n" in text + "\n"
    assert "Organizator" not in text and "Administratorem" not in text


def test_the_pdf_form_says_where_to_send_it() -> None:
    pypdf = pytest.importorskip("pypdf")
    try:
        data = make_pdf(ORGANISED)
    except (FileNotFoundError, OSError) as e:  # the DejaVu fonts are a Debian package
        pytest.skip(str(e))
    text = pypdf.PdfReader(io.BytesIO(data)).pages[0].extract_text()
    assert "biuro@zmp.example.pl" in text
    assert "Administratorem danych osobowych jest ZMP." in text


def test_an_organised_form_is_still_read_as_the_form() -> None:
    from mailbot.forms import parse_bytes
    from mailbot.forms.model import EventRef

    events = [EventRef("opole-2016", HEADER.title, "Opole", dt.date(2016, 4, 18))]
    form = parse_bytes(make_docx(ORGANISED, style="controls"), "zgloszenie.docx", events=events)
    assert form.status == "ok" and form.event == "opole-2016"
    assert form.participants == [] and (form.institution is None or form.institution.email is None)
