"""The review queue on real conversations (Maildir in, Maildir out, SQLite): every
`mailbot review` action on messages the pipeline sent to review, and the mails each one
sends — the same the pipeline sends, never one twice."""

from __future__ import annotations

import datetime as dt
import io
import json
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from mailbot import review
from mailbot.app import App
from mailbot.config import EventSettings, Settings
from mailbot.store.tables import (
    InboundMessage,
    Participant,
    Registration,
    RegistrationVersion,
    StoredAttachment,
)
from tests.conversation import (
    REPO,
    WARSAW,
    Conversation,
    form_docx,
    kinds,
    mail,
    settings_for,
    text_of,
)

SECRETARY = "sekretariat@testowo.example.pl"
ANNA = ("Anna Kowalska", "anna@testowo.example.pl")
JAN = ("Jan Nowak", "jan@testowo.example.pl")


def at(day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(2016, 4, day, hour, minute, tzinfo=WARSAW)


def send_form(conv: Conversation, sender: str, people: list[tuple[str, str | None]], when: dt.datetime,
              *, event: str = "opole-2016", data: bytes | None = None) -> bytes:
    form = data if data is not None else form_docx(conv.settings.event(event), people)
    raw = mail(sender, "Zgłoszenie na konferencję", "W załączeniu zgłoszenie.", when=when, form=form)
    conv.receive(raw)
    return raw


def only_item(app: App) -> review.ReviewItem:
    (item,) = review.list_open(app.ingest)
    return item


# --- a form written with labels the reader does not know ------------------------------

# The county office retyped the form in its own words.
RETYPED = {
    "Nazwa jednostki samorządu terytorialnego / instytucji:": "Organ delegujący:",
    ">Telefon:<": ">Centrala:<",
    ">E-mail:<": ">Skrzynka podawcza:<",
    ">Imię i nazwisko<": ">Delegowany pracownik<",
}
NEW_LABELS = {
    "institution.name": "Organ delegujący",
    "institution.phone": "Centrala",
    "institution.email": "Skrzynka podawcza",
    "participant.full_name": "Delegowany pracownik",
}


def retyped_form(event: EventSettings, people: list[tuple[str, str | None]]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(form_docx(event, people)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "word/document.xml":
                xml = data.decode()
                for old, new in RETYPED.items():
                    assert old in xml, old
                    xml = xml.replace(old, new)
                data = xml.encode()
            target.writestr(info, data)
    return out.getvalue()


def _toml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def extended_labels(path: Path) -> Path:
    """The packaged vocabulary plus the county office's labels, as an admin writes it."""
    data = tomllib.loads((REPO / "config" / "labels.toml").read_text(encoding="utf-8"))
    for key, label in NEW_LABELS.items():
        data["fields"][key] = [*data["fields"][key], label]
    lines = []
    for key, value in data.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {_toml_value(value)}")
    for key, table in data.items():
        if isinstance(table, dict):
            lines.append(f"\n[{key}]")
            lines += [f"{_toml_value(k)} = {_toml_value(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def with_labels(settings: Settings, labels: Path) -> Settings:
    return settings.model_copy(update={"labels_file": labels})


def test_reprocess_after_the_vocabulary_was_extended_registers_with_the_pipelines_replies(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path / "a"))
    form = retyped_form(conv.settings.event("opole-2016"), [ANNA, JAN])
    raw = send_form(conv, SECRETARY, [], at(1), data=form)
    (first,) = conv.run(at(1)).results
    # Nothing readable: to the organisers, and the sender gets the blank form.
    assert first.outcome == "needs_review" and "blank form" in first.reason
    assert kinds(conv.sent()) == [("no_form", SECRETARY)]
    item = only_item(conv.app(at(1)))
    assert item.ref == first.ref and item.sender == SECRETARY and "blank form" in item.reason

    # The admin teaches the reader the office's labels and runs the message again.
    labels = extended_labels(tmp_path / "labels.toml")
    conv.settings = with_labels(conv.settings, labels)
    app = conv.app(at(2))
    result = review.reprocess(app.ingest, item.ref, note="etykiety powiatu dodane")
    assert result.outcome == "registered" and result.resolution == "reprocessed"
    assert len(result.registrations) == 1
    assert review.list_open(app.ingest) == []
    conv.run(at(2))
    after = kinds(conv.sent())

    # The same message on a mailbot that knew the labels from the start.
    fresh = Conversation(with_labels(settings_for(tmp_path / "b"), labels))
    fresh.receive(raw)
    (direct,) = fresh.run(at(1)).results
    assert direct.outcome == "registered"
    assert after == kinds(fresh.sent()) == [
        ("ack", ANNA[1]),
        ("ack", JAN[1]),
        ("ack", SECRETARY),
    ]

    with app.session() as s:
        row = s.exec(select(InboundMessage)).one()
        assert (row.id, row.outcome, row.resolution) == (first.inbound_id, "registered", "reprocessed")
        assert row.resolution_note == "etykiety powiatu dodane"
        (entry,) = row.history_entries()
        assert entry["action"] == "reprocess" and entry["previous_outcome"] == "needs_review"
        assert "blank form" in entry["previous_reason"] and "was needs_review" in (row.reason or "")
        # The old reading is replaced, not kept beside the new one.
        (att,) = s.exec(select(StoredAttachment)).all()
        assert att.parse_status == "ok" and att.inbound_id == row.id
        reg = s.exec(select(Registration)).one()
        assert reg.status == "confirmed" and reg.source_attachment_id == att.id
        assert [p.full_name for p in s.exec(select(Participant).order_by(col(Participant.position)))] == [
            ANNA[0], JAN[0],
        ]

    # Nothing goes twice: not on the next pass, not when the message arrives again, and
    # the settled message is not run a second time.
    conv.run(at(2, 10))
    conv.receive(raw)
    (again,) = conv.run(at(2, 11)).results
    assert again.already_seen and again.folder == "processed"
    with pytest.raises(review.ReviewError, match="registered"):
        review.reprocess(app.ingest, item.ref)
    assert conv.sent() == []
    detail = review.show(app.ingest, item.id)
    assert [r.kind for r in detail.replies] == ["no_form", "ack", "ack", "ack"]
    assert "reprocess" in review.render_show(detail)


def test_reprocess_that_still_needs_review_stays_in_the_queue(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    send_form(conv, SECRETARY, [], at(1), data=retyped_form(conv.settings.event("opole-2016"), [ANNA]))
    conv.run(at(1))
    conv.sent()
    app = conv.app(at(2))
    item = only_item(app)
    result = review.reprocess(app.ingest, item.id)  # same labels: same reading
    assert result.outcome == "needs_review" and result.resolution is None and result.replies == ()
    (still,) = review.list_open(app.ingest)
    assert still.id == item.id and "reprocessed" in still.reason
    conv.run(at(2))
    assert conv.sent() == []  # the blank form went with the first reading


# --- show -----------------------------------------------------------------------------


def test_list_and_show_a_late_registration(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    send_form(conv, SECRETARY, [ANNA, JAN], at(15))
    conv.run(at(15))
    assert kinds(conv.sent()) == [("closed", SECRETARY)]
    app = conv.app(at(15))
    items = review.list_open(app.ingest)
    (item,) = items
    assert item.received_at == at(15) and item.subject == "Zgłoszenie na konferencję"
    assert "late registration" in item.reason
    listing = review.render_list(items)
    assert item.ref in listing and SECRETARY in listing and "late registration" in listing

    detail = review.show(app.ingest, item.ref)
    assert detail.raw_stored and ("Subject", "Zgłoszenie na konferencję") in detail.headers
    (att,) = detail.attachments
    assert att.filename == "zgloszenie.docx" and att.parse_status == "ok" and att.form is not None
    assert [p["full_name"] for p in att.form["participants"]] == [ANNA[0], JAN[0]]
    (reg,) = detail.registrations
    assert reg.relation == "source" and reg.status == "late" and reg.event_key == "opole-2016"
    assert [(p.number, p.full_name, p.status) for p in reg.participants] == [(1, ANNA[0], "late"), (2, JAN[0], "late")]
    assert [(r.kind, r.to) for r in detail.replies] == [("closed", SECRETARY)]
    text = review.render_show(detail)
    for expected in (item.ref, "late registration", "zgloszenie.docx", '"full_name": "Anna Kowalska"',
                     reg.code, "participants[2]: Jan Nowak", "closed → " + SECRETARY):
        assert expected in text
    assert review.render_list([]) == "Nothing waits for review."
    # Read again, the form would correct its own registration: fix, accept or reject it.
    with pytest.raises(review.ReviewError, match=f"already made registration\\(s\\) {reg.code}"):
        review.reprocess(app.ingest, item.id)
    with pytest.raises(review.ReviewError, match="no message"):
        review.show(app.ingest, "999")


def test_show_prints_what_the_person_wrote_and_cuts_a_long_body(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    question = "Dzień dobry,\nczy mogę zrezygnować tylko z warsztatu B?\nZ poważaniem, Anna Kowalska"
    send_form(conv, ANNA[1], [ANNA], at(1))
    conv.run(at(1))
    conv.receive(mail(ANNA[1], "Pytanie o warsztaty", question, when=at(2)))
    conv.receive(mail("jan@testowo.example.pl", "Długi list", "Zdanie numer jeden. " * 400, when=at(2)))
    conv.run(at(2))
    app = conv.app(at(2))
    by_subject = {i.subject: i for i in review.list_open(app.ingest)}

    detail = review.show(app.ingest, by_subject["Pytanie o warsztaty"].ref)
    assert detail.body == question.strip()
    text = review.render_show(detail)
    assert "Body:\n  Dzień dobry,\n  czy mogę zrezygnować tylko z warsztatu B?" in text
    assert review.detail_json(detail)["body"] == question.strip()

    long = review.show(app.ingest, by_subject["Długi list"].ref).body
    assert long.startswith("Zdanie numer jeden.") and long.endswith("more characters]")
    assert len(long) < review.BODY_CHARS + 100


# --- accept and reject ----------------------------------------------------------------


def test_accepting_a_late_registration_seats_it_and_sends_what_an_on_time_form_gets(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path, capacity=2))
    send_form(conv, "celina@gmina-c.example.pl", [("Celina Dąbrowska", "celina@gmina-c.example.pl")], at(1))
    conv.run(at(1))
    conv.sent()
    send_form(conv, SECRETARY, [ANNA, JAN], at(15))
    conv.run(at(15))
    # (Celina's 7-day reminder went out meanwhile.)
    assert kinds(conv.sent()) == [("closed", SECRETARY), ("reminder", "celina@gmina-c.example.pl")]
    app = conv.app(at(15, 12))
    item = only_item(app)

    result = review.accept(app.ingest, item.ref, note="organizatorzy przyjmują")
    assert result.resolution == "accepted" and len(result.registrations) == 1
    conv.run(at(15, 12))
    # One seat was left: Anna has it, Jan waits; the sender hears about both.
    assert kinds(conv.sent()) == [("ack", ANNA[1]), ("ack", SECRETARY), ("waitlist", JAN[1])]
    with app.session() as s:
        reg = s.exec(select(Registration).where(Registration.code == result.registrations[0])).one()
        assert reg.status == "confirmed"
        people = {p.full_name: p.status for p in s.exec(select(Participant).where(Participant.registration_id == reg.id))}
        assert people == {ANNA[0]: "confirmed", JAN[0]: "waitlisted"}
        row = s.get(InboundMessage, item.id)
        assert row is not None and row.resolution_note == "organizatorzy przyjmują" and row.resolved_at is not None
    assert review.list_open(app.ingest) == []
    with pytest.raises(review.ReviewError, match="already accepted"):
        review.accept(app.ingest, item.ref)
    with pytest.raises(review.ReviewError, match="already accepted"):
        review.reject(app.ingest, item.ref)
    conv.run(at(15, 13))
    assert conv.sent() == []


def test_a_late_registration_for_an_event_that_took_place_is_not_seated(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    send_form(conv, SECRETARY, [ANNA], at(15))
    conv.run(at(15))
    app = conv.app(dt.datetime(2016, 4, 19, 9, 0, tzinfo=WARSAW))
    item = only_item(app)
    with pytest.raises(review.ReviewError, match="took place"):
        review.accept(app.ingest, item.id)
    assert only_item(app).id == item.id  # nothing changed


def test_reject_records_the_decision_and_sends_nothing(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    send_form(conv, ANNA[1], [ANNA], at(1))
    conv.run(at(1))
    (ack,) = conv.sent()
    conv.receive(mail(ANNA[1], f"Re: {ack['Subject']}", "Czy mogę zrezygnować tylko z warsztatów popołudniowych?",
                      when=at(4), in_reply_to=str(ack["Message-ID"])))
    conv.run(at(4))
    # A question (issue 12): acknowledged and forwarded at once, before any review.
    assert sorted(str(m["X-Mailbot-Kind"]) for m in conv.sent()) == ["forwarded_question", "question_received"]
    app = conv.app(at(4, 10))
    item = only_item(app)
    assert "unclear" in item.reason
    result = review.reject(app.ingest, item.id, note="odpowiedziano telefonicznie")
    assert (result.action, result.resolution, result.replies) == ("reject", "rejected", ())
    assert "resolved as rejected" in review.render_result(result)
    assert review.list_open(app.ingest) == []
    conv.run(at(4, 11))
    assert conv.sent() == []
    detail = review.show(app.ingest, item.ref)
    assert detail.item.resolution == "rejected" and detail.resolution_note == "odpowiedziano telefonicznie"
    assert [h["action"] for h in detail.history] == ["reject"]
    with app.session() as s:
        assert s.exec(select(Participant)).one().status == "confirmed"
    # A registered message is not a review item.
    registered = review.show(app.ingest, 1)
    assert registered.item.outcome == "registered"
    with pytest.raises(review.ReviewError, match="not waiting for review"):
        review.reject(app.ingest, 1)


# --- fix --------------------------------------------------------------------------------


def test_fix_that_completes_a_registration_sends_the_updated_mail_a_corrected_form_would(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path / "a"))
    send_form(conv, SECRETARY, [ANNA, (JAN[0], None)], at(1))
    (first,) = conv.run(at(1)).results
    assert first.outcome == "registered" and "incomplete" in first.reason
    assert kinds(conv.sent()) == [("ack", ANNA[1]), ("incomplete", SECRETARY)]
    app = conv.app(at(2))

    with pytest.raises(review.ReviewError, match="not an e-mail address"):
        review.fix(app.ingest, first.ref, ["participants[2].email=jan(at)testowo"])
    # Numbered from 1 as in the mails; one past the last adds a person only with --add.
    with pytest.raises(review.ReviewUsageError, match="participants\\[1\\]–\\[2\\].*participants\\[3\\].* with --add"):
        review.fix(app.ingest, first.ref, ["participants[3].email=x@testowo.example.pl"])
    with pytest.raises(review.ReviewUsageError, match="with --add"):
        review.fix(app.ingest, first.ref, ["participants[4].email=x@testowo.example.pl"], add=True)
    with pytest.raises(review.ReviewUsageError, match="numbered from 1"):
        review.fix(app.ingest, first.ref, ["participants[0].email=x@testowo.example.pl"])
    with pytest.raises(review.ReviewError, match="expected field=value"):
        review.fix(app.ingest, first.ref, ["participants[2].shoe_size=44"])
    result = review.fix(app.ingest, first.ref, ["participants[2].email= JAN@Testowo.Example.PL",
                                                 "participants[2].phone=601 442 318"])
    assert any("status incomplete → confirmed" in n for n in result.notes)
    conv.run(at(2))
    fixed_mails = conv.sent()
    assert kinds(fixed_mails) == [("updated", SECRETARY)]
    body = text_of(fixed_mails[0])
    assert "JAN@testowo.example.pl" in body  # what changed is listed

    # What the pipeline sends when the sender corrects the form themselves.
    other = Conversation(settings_for(tmp_path / "b"))
    send_form(other, SECRETARY, [ANNA, (JAN[0], None)], at(1))
    other.run(at(1))
    other.sent()
    send_form(other, SECRETARY, [ANNA, JAN], at(2))
    other.run(at(2))
    assert kinds(other.sent()) == kinds(fixed_mails)

    with app.session() as s:
        reg = s.exec(select(Registration)).one()
        assert reg.status == "confirmed" and reg.version == 2
        jan = s.exec(select(Participant).where(Participant.full_name == JAN[0])).one()
        # Normalised like the reader does: the domain lower-cased, the phone in E.164.
        assert jan.email == "JAN@testowo.example.pl" and jan.phone == "+48601442318"
        assert jan.status == "confirmed" and jan.consent_data_processing
        (version,) = s.exec(select(RegistrationVersion)).all()
        assert version.version == 1 and '"status": "incomplete"' in version.snapshot_json
        assert json.loads(reg.problems_json) == []
    # A second identical fix changes nothing and sends nothing.
    with pytest.raises(review.ReviewError, match="already has these values"):
        review.fix(app.ingest, first.ref, ["participants[2].phone=+48 601 442 318"])
    conv.run(at(3))
    assert conv.sent() == []


def test_fix_of_a_late_registration_then_accept(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    send_form(conv, SECRETARY, [ANNA, (JAN[0], None)], at(15))
    conv.run(at(15))
    conv.sent()
    app = conv.app(at(15, 10))
    item = only_item(app)
    result = review.fix(app.ingest, item.id, [f"participants[2].email={JAN[1]}", "workshops=A,b",
                                              "institution.name=Urząd Gminy Testowo Wielkie",
                                              "consents.newsletter=tak"])
    assert result.resolution is None and result.replies == ()  # still late: accept decides
    assert only_item(app).id == item.id
    conv.run(at(15, 10))
    assert conv.sent() == []
    review.accept(app.ingest, item.id)
    conv.run(at(15, 11))
    assert kinds(conv.sent()) == [("ack", ANNA[1]), ("ack", JAN[1]), ("ack", SECRETARY)]
    with app.session() as s:
        reg = s.exec(select(Registration)).one()
        assert (reg.status, reg.workshops, reg.institution_name) == ("confirmed", "A,B", "Urząd Gminy Testowo Wielkie")
        assert all(p.consent_newsletter for p in s.exec(select(Participant)))


def test_fix_moves_a_registration_to_another_event(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, capacity=1)
    krakow = settings.event("opole-2016").model_copy(
        update={"key": "krakow-2016", "city": "Kraków", "date": dt.date(2016, 5, 16),
                "registration_deadline": None, "capacity": 50}
    )
    conv = Conversation(settings.model_copy(update={"events": (*settings.events, krakow)}))
    send_form(conv, ANNA[1], [ANNA], at(1))
    send_form(conv, "celina@gmina-c.example.pl", [("Celina Dąbrowska", "celina@gmina-c.example.pl")], at(1, 10))
    conv.run(at(1, 10))
    assert kinds(conv.sent()) == [("ack", ANNA[1]), ("waitlist", "celina@gmina-c.example.pl")]
    app = conv.app(at(2))
    with app.session() as s:
        first = s.exec(select(InboundMessage).order_by(col(InboundMessage.id))).first()
        assert first is not None
    result = review.fix(app.ingest, first.ref, ["event=krakow-2016"])
    conv.run(at(2))
    sent = conv.sent()
    # Anna learns of the move (and gets the new calendar entry); her seat in Opole goes
    # to Celina, first on the waiting list.
    assert kinds(sent) == [("ack", ANNA[1]), ("promoted", "celina@gmina-c.example.pl"), ("updated", ANNA[1])]
    assert "Kraków" in text_of(next(m for m in sent if m["X-Mailbot-Kind"] == "updated"))
    assert any("event opole-2016 → krakow-2016" in n for n in result.notes)
    with pytest.raises(review.ReviewError, match="not a configured event"):
        review.fix(app.ingest, first.ref, ["event=gdansk-2016"])


def test_parse_assignment_validates_like_the_reader() -> None:
    events, workshops = ["opole-2016"], ["A", "B"]
    parse = review.parse_assignment
    assert parse("institution.phone=(077) 4080500", events=events, workshops=workshops).value == "+48774080500"
    first = parse("participants[1].name=  Anna   Kowalska ", events=events, workshops=workshops)
    # Admins number from 1; the path is the form contract's (from 0), as problems name it.
    assert (first.path, first.index, first.label) == ("participants[0].full_name", 0, "participants[1].full_name")
    assert parse("workshops=", events=events, workshops=workshops).value == ()
    assert parse("consents.data_processing=TAK", events=events, workshops=workshops).value is True
    assert parse("remarks=", events=events, workshops=workshops).value is None
    for bad, why in [("workshops=C", "no workshop C"), ("consents.newsletter=może", "tak or nie"),
                     ("institution.email=nie mam", "not an e-mail"), ("institution.phone=brak", "not a phone")]:
        with pytest.raises(review.ReviewError, match=why):
            parse(bad, events=events, workshops=workshops)

