"""Everything event-specific in config (issue 12, item 6): workshops, consent texts and
the fee line, cycle-wide with per-event overrides. The defaults reproduce the 2016
texts exactly; a cycle with three workshops and its own consents works end to end on
the blank form the project generates."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any, Literal

import pytest

from mailbot.app import event_header, form_vocabulary
from mailbot.config import (
    DEFAULT_CONSENT_TEXTS,
    DEFAULT_FEE_LINE,
    DEFAULT_WORKSHOPS,
    InvalidConfig,
    Workshop,
    load_settings,
    settings_from_dict,
)
from mailbot.forms import parse_bytes
from mailbot.forms.blank import CONSENT_TEXTS, WORKSHOPS, FilledValues, make_docx, with_event_options
from mailbot.forms.labels import default_vocabulary
from mailbot.forms.model import Consents, Institution, Participant
from mailbot.ingest import events_for_forms
from mailbot.replies import event_context
from mailbot.template_samples import sample_context
from mailbot.templating import Templates

from tests.conversation import REPO, WARSAW, Conversation, mail, settings_for, text_of

OLD_FEE = "Udział w konferencji jest bezpłatny; koszty dojazdu uczestnicy pokrywają we własnym zakresie."
OLD_WORKSHOPS = {"A": "Zarządzanie strategiczne w partnerstwie", "B": "Zarządzanie relacjami w partnerstwie"}
OLD_CONSENTS = {
    "data_processing": "Wyrażam zgodę na przetwarzanie danych osobowych zawartych w zgłoszeniu "
    "przez organizatora w celu organizacji konferencji.",
    "newsletter": "Wyrażam zgodę na otrzymywanie informacji o kolejnych wydarzeniach.",
}
THREE = [
    {"key": "A", "title": "Finansowanie projektów partnerskich", "capacity": 30},
    {"key": "B", "title": "Cyfrowe usługi publiczne"},
    {"key": "C", "title": "Rewitalizacja śródmieść", "capacity": 12},
]
MY_CONSENTS = {
    "data_processing": "Zgadzam się, aby Fundacja Rozwoju Regionów przetwarzała moje dane w celu organizacji spotkania.",
    "newsletter": "Chcę dostawać zaproszenia na następne spotkania cyklu.",
}


def event(key: str, **extra: Any) -> dict[str, Any]:
    return {"key": key, "title": "Partnerstwa 2017", "city": "Kielce", "date": "2017-05-10", "venue": "Sala A",
            "address": "ul. Sienkiewicza 1", "capacity": 40, **extra}


def config(**top: Any) -> dict[str, Any]:
    return {"outbox": {"from_address": "zgloszenia@example.pl"}, **top}


# --- config ---------------------------------------------------------------------------


def test_the_defaults_are_the_texts_of_today() -> None:
    assert DEFAULT_FEE_LINE == OLD_FEE
    assert {w.key: w.title for w in DEFAULT_WORKSHOPS} == OLD_WORKSHOPS == WORKSHOPS
    assert dict(DEFAULT_CONSENT_TEXTS) == OLD_CONSENTS == CONSENT_TEXTS
    settings = load_settings(REPO / "config" / "demo.toml")
    for e in settings.events:
        assert e.workshop_titles == OLD_WORKSHOPS and e.fee_text == OLD_FEE
        assert e.consents.texts == OLD_CONSENTS
        assert all(w.capacity is None for w in e.workshop_options)


def test_cycle_settings_reach_every_event_and_an_event_overrides_them() -> None:
    settings = settings_from_dict(config(
        workshops=THREE, consents={"newsletter": MY_CONSENTS["newsletter"]}, fee_line="Opłata: 100 zł.",
        events=[
            event("kielce"),
            event("radom", workshops=[{"key": "A", "title": "Tylko jeden"}], fee_line="",
                  consents={"data_processing": MY_CONSENTS["data_processing"]}),
            event("sandomierz", workshops=[]),
        ],
    ))
    kielce, radom, sandomierz = settings.events
    assert kielce.workshop_titles == {w["key"]: w["title"] for w in THREE}
    assert [w.capacity for w in kielce.workshop_options] == [30, None, 12]
    assert kielce.fee_text == "Opłata: 100 zł."
    assert kielce.consents.texts == {"data_processing": OLD_CONSENTS["data_processing"],
                                     "newsletter": MY_CONSENTS["newsletter"]}
    # The event's own list replaces the cycle's whole; its consents override field by field.
    assert radom.workshop_titles == {"A": "Tylko jeden"} and radom.fee_text == ""
    assert radom.consents.texts == MY_CONSENTS
    assert sandomierz.workshop_options == () and sandomierz.fee_text == "Opłata: 100 zł."


def test_an_event_built_alone_has_the_defaults() -> None:
    e = settings_from_dict(config(events=[event("kielce")])).events[0]
    bare = e.model_copy(update={"workshops": None, "fee_line": None})
    assert bare.workshop_titles == OLD_WORKSHOPS and bare.fee_text == OLD_FEE


@pytest.mark.parametrize(
    ("workshops", "message"),
    [
        ([{"key": "A", "title": "x"}, {"key": "A", "title": "y"}], "workshop keys must be unique; repeated: A"),
        ([{"key": "Z", "title": "x"}], "is not one capital letter A–H"),
        ([{"key": "A", "title": ""}], "at least 1 character"),
        ([{"key": "A", "title": "x", "capacity": 0}], "greater than or equal to 1"),
    ],
)
def test_bad_workshops_are_reported_with_their_place(workshops: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(InvalidConfig) as err:
        settings_from_dict(config(events=[event("kielce", workshops=workshops)]))
    problems = err.value.problems
    assert any(message in p.message and p.path.startswith("events[kielce].workshops") for p in problems), problems
    with pytest.raises(InvalidConfig):
        settings_from_dict(config(workshops=workshops))


def test_the_example_config_documents_the_keys_and_still_loads() -> None:
    text = (REPO / "config" / "mailbot.example.toml").read_text(encoding="utf-8")
    for key in ("# workshops = [", "# fee_line =", "# [consents]", "# data_processing =", "# newsletter =",
                "capacity ="):
        assert key in text
    load_settings(REPO / "config" / "mailbot.example.toml")
    docs = (REPO / "docs" / "templates.md").read_text(encoding="utf-8")
    assert "event.fee_line" in docs and "event.workshops" in docs


# --- the blank form round trip ----------------------------------------------------------


def three_workshop_settings() -> Any:
    return settings_from_dict(config(
        workshops=THREE, consents=MY_CONSENTS,
        events=[event("kielce-2017")],
    ))


def filled(workshops: frozenset[str], *, newsletter: bool = True) -> FilledValues:
    return FilledValues(
        institution=Institution("Urząd Gminy Masłów", "ul. Spacerowa 1, 26-001 Masłów", "41 311 00 00",
                                "ug@maslow.example.pl"),
        participants=[Participant("Ewa Zielińska", "Sekretarz", "41 311 00 11", "e.zielinska@maslow.example.pl")],
        workshops=workshops,
        remarks=None,
        consents=Consents(data_processing=True, newsletter=newsletter),
        place_date="Masłów, 2.05.2017",
    )


@pytest.mark.parametrize("style", ["table", "controls"])
@pytest.mark.parametrize("chosen", [frozenset({"C"}), frozenset({"A", "C"}), frozenset({"B"})])
def test_a_three_workshop_form_with_own_consents_reads_back(
    style: Literal["table", "controls"], chosen: frozenset[str]
) -> None:
    settings = three_workshop_settings()
    e = settings.events[0]
    header = event_header(e)
    assert header.workshops == tuple((w["key"], w["title"]) for w in THREE)
    data = make_docx(header, filled(chosen), style=style)
    form = parse_bytes(data, "zgloszenie.docx", events_for_forms(settings), vocabulary=form_vocabulary(settings))
    assert form.status == "ok", form.problems
    assert form.event == "kielce-2017"
    assert sorted(form.workshops) == sorted(chosen)
    assert form.consents.data_processing is True and form.consents.newsletter is True


def test_the_generated_form_prints_the_configured_options() -> None:
    import io

    import docx

    e = three_workshop_settings().events[0]
    doc = docx.Document(io.BytesIO(make_docx(event_header(e), filled(frozenset({"C"})))))
    lines = [p.text for p in doc.paragraphs]
    assert "☐ A – Finansowanie projektów partnerskich" in lines
    assert "☒ C – Rewitalizacja śródmieść" in lines
    assert f"☒ {MY_CONSENTS['data_processing']}" in lines and f"☒ {MY_CONSENTS['newsletter']}" in lines
    assert not any("Zarządzanie" in line or OLD_CONSENTS["newsletter"] in line for line in lines)
    with pytest.raises(ValueError, match="unknown workshop"):
        make_docx(event_header(e), filled(frozenset({"D"})))


def test_a_form_without_workshops_has_no_such_section() -> None:
    import io

    import docx

    e = settings_from_dict(config(events=[event("kielce", workshops=[])])).events[0]
    doc = docx.Document(io.BytesIO(make_docx(event_header(e), filled(frozenset()))))
    lines = [p.text for p in doc.paragraphs]
    assert not any("warsztat" in line.lower() for line in lines)
    assert any(line.startswith("3. Uwagi (np. specjalne potrzeby, dieta): ") for line in lines) and "4. Zgody" in lines


def test_the_pdf_form_prints_three_workshops_and_long_consents() -> None:
    from mailbot.forms.blank import _FONT_DIR, make_pdf

    if not (_FONT_DIR / "DejaVuSans.ttf").is_file():
        pytest.skip("fonts-dejavu-core is not installed")
    settings = three_workshop_settings()
    header = event_header(settings.events[0])
    data = make_pdf(header, filled(frozenset({"C"})))
    form = parse_bytes(data, "zgloszenie.pdf", events_for_forms(settings), vocabulary=form_vocabulary(settings))
    assert form.workshops == ["C"] and form.consents.newsletter is True


def test_the_vocabulary_is_only_extended_where_the_labels_do_not_read_an_option() -> None:
    base = default_vocabulary()
    default_header = event_header(load_settings(REPO / "config" / "demo.toml").events[0])
    assert with_event_options(base, [default_header]) is base
    extended = with_event_options(base, [event_header(three_workshop_settings().events[0])])
    assert extended is not base
    assert extended.match_workshop("☒ C – Rewitalizacja śródmieść") == "C"
    assert extended.match_consent(MY_CONSENTS["newsletter"]) == "newsletter"
    assert extended.match_workshop("Zarządzanie relacjami w partnerstwie") == "B"  # the file's stay


# --- replies ---------------------------------------------------------------------------


def test_replies_name_the_configured_workshops_and_fee_line() -> None:
    templates = Templates()
    e = settings_from_dict(config(workshops=THREE, fee_line="Opłata konferencyjna: 150 zł.",
                                  events=[event("kielce-2017")])).events[0]
    ctx = sample_context("ack", event_context(e))
    ctx["registrations"][0]["workshops"] = ["A", "C"]
    r = templates.render("ack", ctx)
    assert "A – Finansowanie projektów partnerskich; C – Rewitalizacja śródmieść" in r.text
    assert "Rewitalizacja śródmieść" in r.html
    assert "Opłata konferencyjna: 150 zł.\nJeśli" in r.text and "Opłata konferencyjna: 150 zł." in r.html
    assert OLD_FEE not in r.text and "Zarządzanie" not in r.text
    promoted = templates.render("promoted", sample_context("promoted", event_context(e)))
    assert "Opłata konferencyjna: 150 zł." in promoted.text and "Opłata konferencyjna: 150 zł." in promoted.html


def test_an_empty_fee_line_prints_nothing_and_the_default_prints_todays() -> None:
    templates = Templates()
    free = settings_from_dict(config(fee_line="", events=[event("kielce-2017")])).events[0]
    for kind in ("ack", "promoted"):
        r = templates.render(kind, sample_context(kind, event_context(free)))
        assert "bezpłatny" not in r.text and "bezpłatny" not in r.html
        assert "\n\n\n" not in r.text
        default = templates.render(kind, sample_context(kind))
        assert OLD_FEE + "\n" in default.text and OLD_FEE in default.html
    ack = templates.render("ack", sample_context("ack", event_context(free)))
    assert "\nJeśli " in ack.text and "<p>Jeśli " in ack.html


APR1 = dt.datetime(2016, 4, 1, 9, 0, tzinfo=WARSAW)


def test_a_real_ack_names_the_events_workshops_and_fee(tmp_path: Path) -> None:
    three = tuple(Workshop(**w) for w in THREE)
    settings = settings_for(tmp_path, workshops=three, fee_line="Opłata: 99 zł.")
    e = settings.event("opole-2016")
    values = dataclasses.replace(filled(frozenset({"C"})), participants=[
        Participant("Anna Kowalska", "Inspektor", "77 400 00 11", "anna@gmina-a.example.pl")])
    conv = Conversation(settings)
    conv.receive(mail("anna@gmina-a.example.pl", "Zgłoszenie", "W załączeniu.", when=APR1,
                      form=make_docx(event_header(e), values, style="table")))
    conv.run(APR1)
    (ack,) = conv.sent()
    text = text_of(ack).replace("\r\n", "\n")
    assert "Warsztaty: C – Rewitalizacja śródmieść" in text
    assert "Opłata: 99 zł." in text and OLD_FEE not in text
    conv.app(APR1).engine.dispose()

