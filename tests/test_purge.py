"""Retention: `retention_days` after an event its personal data and stored files are
gone — from every table and from the blob store — while the organisers' anonymous counts
stay; messages tied to no event go `retention_days` after they arrived. A conversation
(Maildir in, Maildir out, SQLite; PostgreSQL once) with every kind of message is purged."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import json
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel, select

from mailbot.app import App, PassReport, event_header
from mailbot.config import Settings
from mailbot.forms.blank import FilledValues, make_docx
from mailbot.forms.model import Consents, Institution
from mailbot.forms.model import Participant as FormParticipant
from mailbot.purge import PurgeReport, purge, render_report
from mailbot.store.tables import (
    AddressStatus,
    InboundMessage,
    OutboundMail,
    Participant,
    PurgedEvent,
    Registration,
)

try:  # tests/ is a package in some layouts and a plain rootdir-inserted path in others
    from tests import conversation, pg
    from tests.conversation import WARSAW, Conversation, kinds, mail, settings_for
    from tests.conversation import bounce
except ImportError:
    import conversation  # type: ignore[no-redef]
    import pg  # type: ignore[no-redef]
    from conversation import WARSAW, Conversation, kinds, mail, settings_for  # type: ignore[no-redef]
    from conversation import bounce  # type: ignore[no-redef]

postgres_server = pg.postgres_server
postgres_url = pg.postgres_url


def at(month: int, day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2016, month, day, hour, 0, tzinfo=WARSAW)


# Opole is on 18 April 2016: with 180 days' retention its data goes on 15 October.
PURGE_AT = at(10, 16)
PROGRAMME = b"Program konferencji: 11:00 otwarcie, 12:30 warsztaty.\n"

ALFA = {
    "sender": "sekretariat@alfaborow.example.pl",
    "institution": Institution("Urząd Gminy Alfaborów", "ul. Lipowa 7, 46-100 Alfaborów", "77 411 22 33",
                               "ug@alfaborow.example.pl"),
    "people": [("Anna Kowalska", "anna.kowalska@alfaborow.example.pl", "601 100 201"),
               ("Bartosz Wiśniewski", "bartosz.wisniewski@alfaborow.example.pl", "601 100 202")],
    "workshops": {"A", "B"}, "remarks": "Dieta bezglutenowa dla pani Anny", "newsletter": True,
}
CELINA = {
    "sender": "celina.dabrowska@celinow.example.pl",
    "institution": Institution("Starostwo Powiatowe w Celinowie", "ul. Długa 3, 47-200 Celinów", "77 422 33 44",
                               "starostwo@celinow.example.pl"),
    "people": [("Celina Dąbrowska", "celina.dabrowska@celinow.example.pl", "601 100 203")],
    "workshops": {"B"}, "remarks": None, "newsletter": False,
}
ERYK = {
    "sender": "eryk.pawlak@erykowo.example.pl",
    "institution": Institution("Urząd Miasta Erykowo", "Rynek 9, 48-300 Erykowo", "77 433 44 55",
                               "um@erykowo.example.pl"),
    "people": [("Eryk Pawlak", "eryk.pawlak@erykowo.example.pl", "601 100 205")],
    "workshops": {"A"}, "remarks": None, "newsletter": False,
}
FILIP = {
    "sender": "filip.fraczek@filipowo.example.pl",
    "institution": Institution("Urząd Gminy Filipowo", "ul. Polna 1, 49-400 Filipowo", "77 455 66 77",
                               "ug@filipowo.example.pl"),
    "people": [("Filip Frączek", "filip.fraczek@filipowo.example.pl", "601 100 206")],
    "workshops": {"A"}, "remarks": None, "newsletter": False,
}
ZOFIA = {  # Kraków, in October: not yet due
    "sender": "zofia.zielinska@zofiowo.example.pl",
    "institution": Institution("Urząd Gminy Zofiowo", "ul. Leśna 2, 30-001 Zofiowo", "12 400 11 22",
                               "ug@zofiowo.example.pl"),
    "people": [("Zofia Zielińska", "zofia.zielinska@zofiowo.example.pl", "601 100 299")],
    "workshops": {"A"}, "remarks": "Zofia przyjedzie pociągiem", "newsletter": True,
}
DARIUSZ = ("dariusz.dudek@dudkowo.example.pl", "Pytanie o dojazd – Dariusz Dudek", "Dzwonić: 601 100 204")


def personal(*who: dict[str, Any]) -> list[str]:
    """Every value that names or reaches a person (or their office), as typed and as stored."""
    out: list[str] = []
    for data in who:
        inst: Institution = data["institution"]
        out += [data["sender"], inst.name or "", inst.address or "", inst.email or "", inst.phone or "",
                "+48" + (inst.phone or "").replace(" ", "")]
        for name, address, phone in data["people"]:
            out += [name, address, phone, "+48" + phone.replace(" ", "")]
        if data["remarks"]:
            out.append(data["remarks"])
    return out


GONE = personal(ALFA, CELINA, ERYK, FILIP) + list(DARIUSZ)
KEPT = personal(ZOFIA)


def kraków(settings: Settings) -> Settings:
    krakow = settings.event("opole-2016").model_copy(
        update={"key": "krakow-2016", "city": "Kraków", "date": dt.date(2016, 10, 20),
                "registration_deadline": None, "venue": "Sala Obrad", "address": "pl. Wszystkich Świętych 3"}
    )
    return settings.model_copy(update={"events": (*settings.events, krakow)})


def form_mail(conv: Conversation, data: dict[str, Any], event: str, when: dt.datetime, *,
              programme: bool = False) -> bytes:
    values = FilledValues(
        institution=data["institution"],
        participants=[FormParticipant(n, "Inspektor", p, a) for n, a, p in data["people"]],
        workshops=frozenset(data["workshops"]),
        remarks=data["remarks"],
        consents=Consents(data_processing=True, newsletter=data["newsletter"]),
        place_date="1.04.2016",
    )
    form = make_docx(event_header(conv.settings.event(event)), values, style="table")
    raw = mail(data["sender"], "Zgłoszenie na konferencję", "W załączeniu zgłoszenie.", when=when, form=form)
    if programme:  # the same file in two messages: one blob on disk
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        msg.add_attachment(PROGRAMME, maintype="text", subtype="plain", filename="program.txt")
        raw = msg.as_bytes()
    conv.receive(raw)
    return raw


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def snapshot(app: App) -> dict[str, Any]:
    """Every row of every table, and every stored file."""
    tables: dict[str, Any] = {}
    with app.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
            tables[table.name] = [tuple(r) for r in rows]
    files = {str(p.relative_to(app.blobs.root)): sha(p.read_bytes())
             for p in sorted(app.blobs.root.rglob("*")) if p.is_file()}
    return {"tables": tables, "files": files}


def text_values(app: App) -> list[tuple[str, str, str]]:
    """(table, column, value) of every text and binary value in the database."""
    found = []
    with app.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)).mappings():
                for column, value in row.items():
                    if isinstance(value, bytes | memoryview):
                        value = bytes(value).decode("utf-8", "replace")
                    if isinstance(value, str):
                        found.append((table.name, column, value))
    return found


def leaks(haystack: str, needles: list[str]) -> list[str]:
    low = haystack.casefold()
    return [n for n in needles if n and n.casefold() in low]


def purge_now(app: App, now: dt.datetime, *, dry_run: bool = False) -> PurgeReport:
    with app.session() as s:
        return purge(s, app.settings, app.blobs, now, dry_run=dry_run)


def build(tmp_path: Path) -> tuple[Conversation, dict[str, bytes]]:
    """Spring 2016 in the mailbox: forms, a waiting list, a withdrawal, a question
    without a form, a late form, a bounce, an auto-reply; Kraków's form for October."""
    conv = Conversation(kraków(settings_for(tmp_path, capacity=2)))
    raws: dict[str, bytes] = {}
    raws["alfa"] = form_mail(conv, ALFA, "opole-2016", at(4, 1))
    raws["celina"] = form_mail(conv, CELINA, "opole-2016", at(4, 1, 10), programme=True)
    raws["zofia"] = form_mail(conv, ZOFIA, "krakow-2016", at(4, 1, 11), programme=True)
    conv.run(at(4, 1, 12))
    first = conv.sent()
    assert ("waitlist", CELINA["sender"]) in kinds(first)
    acks = {str(m["To"].addresses[0].addr_spec): m for m in first}
    bartosz = acks[ALFA["people"][1][1]]
    raws["withdrawal"] = mail(ALFA["people"][1][1], f"Re: {bartosz['Subject']}", "Rezygnuję z udziału.",
                              when=at(4, 3), in_reply_to=str(bartosz["Message-ID"]))
    raws["question"] = mail(DARIUSZ[0], DARIUSZ[1], f"Jak dojechać na konferencję? {DARIUSZ[2]}", when=at(4, 2))
    anna = acks[ALFA["people"][0][1]]
    raws["bounce"] = bounce(ALFA["people"][0][1], str(anna["Message-ID"]), at(4, 2),
                            status="5.1.1", diagnostic="smtp; 550 5.1.1 user unknown")  # hard: muted
    zofia = acks[ZOFIA["sender"]]
    raws["auto_reply"] = mail(ZOFIA["sender"], f"Automatyczna odpowiedź: {zofia['Subject']}", "Jestem na urlopie.",
                              when=at(4, 6), in_reply_to=str(zofia["Message-ID"]),
                              extra=[("Auto-Submitted", "auto-replied")])
    for key in ("withdrawal", "question", "bounce", "auto_reply"):
        conv.receive(raws[key])
    conv.run(at(4, 6))
    assert ("promoted", CELINA["sender"]) in kinds(conv.sent())
    raws["eryk"] = form_mail(conv, ERYK, "opole-2016", at(4, 15))
    conv.run(at(4, 15))  # also the 7-day reminders
    assert ("closed", ERYK["sender"]) in kinds(conv.sent())
    return conv, raws


def digest(app: App, event: str, when: dt.datetime, names: list[str]) -> None:
    """A mail about no registration and no message, naming people: the organisers' digest."""
    organiser = f"{event.split('-')[0]}@partnerstwa.example.pl"
    with app.session() as s:
        s.add(OutboundMail(
            dedupe_key=f"digest:{event}:{when.date().isoformat()}:{organiser}", kind="digest", to_addr=organiser,
            subject=f"Zgłoszenia {event}", message_id=f"<digest.{event}@partnerstwa.example.pl>",
            raw="\r\n".join(["Subject: digest", "", *names]).encode(), envelope_to=organiser, status="sent",
            created_at=when, sent_at=when,
        ))
        s.commit()


def scenario(tmp_path: Path) -> None:
    conv, raws = build(tmp_path)
    app = conv.app(PURGE_AT)
    digest(app, "opole-2016", at(4, 15), [n for n, _, _ in ALFA["people"] + CELINA["people"]])
    digest(app, "krakow-2016", at(4, 15), [n for n, _, _ in ZOFIA["people"]])
    with app.session() as s:
        assert s.get(AddressStatus, ALFA["people"][0][1]) is not None  # Anna's bounce
        assert s.get(AddressStatus, ZOFIA["sender"]) is not None  # Zofia's out-of-office
    before = snapshot(app)
    assert any(leaks(v, GONE) for _, _, v in text_values(app))

    # Nothing of Opole is due the day before its retention ends; the question, the bounce
    # and the auto-reply, tied to no event, already are: 180 days after they arrived.
    early = purge_now(app, at(10, 14), dry_run=True)
    assert early.registrations == 0 and early.events == [] and early.inbound_messages == 3

    dry = purge_now(app, PURGE_AT, dry_run=True)
    assert dry.dry_run and snapshot(app) == before  # a dry run changes nothing
    report = purge_now(app, PURGE_AT)
    assert report.counts() == dry.counts()
    assert (report.registrations, report.participants) == (3, 4)
    # Alfa's and Celina's forms, the withdrawal, Eryk's late form; the question, the
    # bounce and the auto-reply (no event, over 180 days old).
    assert report.inbound_messages == 7
    assert report.address_statuses == 1  # Anna's; Zofia's address is still in use
    assert report.blobs >= 7 and report.postponed == []
    assert [(e.event_key, e.registrations, e.participants, e.messages) for e in report.events] == [
        ("opole-2016", 3, 4, 4)
    ]
    assert "opole-2016" in render_report(report) and "would be" in render_report(dry)

    # No personal data of Opole's people, nor of the question, in any table …
    found = [(t, c, leaks(v, GONE)) for t, c, v in text_values(app) if leaks(v, GONE)]
    assert found == []
    # … nor on disk: no stored file holds their strings, no raw message of theirs is kept.
    for path in app.blobs.root.rglob("*"):
        if path.is_file():
            assert leaks(path.read_bytes().decode("utf-8", "replace"), GONE) == [], path
    for key in ("alfa", "celina", "withdrawal", "question", "bounce", "auto_reply", "eryk"):
        assert not app.blobs.exists(sha(raws[key])), key
    if app.engine.dialect.name == "sqlite":
        database = Path(app.engine.url.database or "")
        on_disk = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
        assert leaks(on_disk.decode("utf-8", "replace"), [a for a in GONE if "@" in a]) == []

    # Kraków is untouched: its data, its raw message, the file it shares with Celina.
    assert app.blobs.exists(sha(raws["zofia"])) and app.blobs.exists(sha(PROGRAMME))
    with app.session() as s:
        zofia = s.exec(select(Registration).where(Registration.event_key == "krakow-2016")).one()
        assert zofia.purged_at is None and zofia.institution_name == "Urząd Gminy Zofiowo"
        assert zofia.remarks == ZOFIA["remarks"] and zofia.sender_email == ZOFIA["sender"]
        person = s.exec(select(Participant).where(Participant.registration_id == zofia.id)).one()
        assert (person.full_name, person.email, person.phone) == ("Zofia Zielińska", ZOFIA["sender"], "+48601100299")
        assert s.get(AddressStatus, ZOFIA["sender"]) is not None
        source = s.get(InboundMessage, zofia.source_inbound_id)
        assert source is not None and source.from_addr == ZOFIA["sender"] and source.purged_at is None
        assert all(m.raw for m in s.exec(select(OutboundMail).where(OutboundMail.registration_id == zofia.id)))
        # The organisers' digests go with their event, not by their date.
        digests = {m.subject: m for m in s.exec(select(OutboundMail).where(OutboundMail.kind == "digest"))}
        assert b"Zofia" in digests["Zgłoszenia krakow-2016"].raw and digests[""].raw == b""
        # Opole's statistics survive, anonymous.
        stats = s.get(PurgedEvent, "opole-2016")
        assert stats is not None and stats.event_date == dt.date(2016, 4, 18)
        assert (stats.registrations, stats.registrations_late, stats.registrations_cancelled, stats.messages) == (3, 1, 0, 4)
        assert (stats.participants, stats.participants_confirmed, stats.participants_waitlisted,
                stats.participants_cancelled, stats.participants_late, stats.consent_newsletter) == (4, 2, 0, 1, 1, 2)
        assert json.loads(stats.workshops_json) == {"A": 2, "B": 2}
        assert json.loads(stats.by_date_json) == {
            "2016-04-01": {"registrations": 2, "participants": 3},
            "2016-04-15": {"registrations": 1, "participants": 1},
        }
        statuses = sorted(p.status for p in s.exec(select(Participant).where(Participant.full_name.is_(None))))  # type: ignore[union-attr]
        assert statuses == ["cancelled", "confirmed", "confirmed", "late"]

    # A second purge is a no-op.
    after = snapshot(app)
    again = purge_now(app, PURGE_AT + dt.timedelta(hours=1))
    assert again.nothing and again.postponed == [] and again.events == []
    assert snapshot(app) == after and "Nothing to purge" in render_report(again)

    # A straggler: a form for Opole months after it (Kraków still open: its reply is
    # `open_events`, and the organisers get the message — issue 12). Its mails are not
    # sent yet, so it waits; once sent, it goes too, and the counts grow.
    raws["filip"] = form_mail(conv, FILIP, "opole-2016", at(10, 17))
    late = conv.app(at(10, 17))
    late.check_mailbox(PassReport())
    waiting = purge_now(late, at(10, 17, 10))
    assert waiting.nothing and len(waiting.postponed) == 1 and "still to be sent" in waiting.postponed[0]
    assert late.deliver().sent == 2
    done = purge_now(late, at(10, 17, 11))
    assert (done.registrations, done.participants, done.inbound_messages, done.outbound_mails) == (1, 1, 1, 2)
    assert [a for _, _, v in text_values(late) for a in leaks(v, GONE)] == []
    with late.session() as s:
        stats = s.get(PurgedEvent, "opole-2016")
        assert stats is not None and (stats.registrations, stats.registrations_late, stats.messages) == (4, 2, 5)
        assert json.loads(stats.by_date_json)["2016-10-17"] == {"registrations": 1, "participants": 1}
    assert any(leaks(v, KEPT) for _, _, v in text_values(late))  # Kraków still has its data

    # Kraków's turn comes 180 days after 20 October.
    final = purge_now(late, dt.datetime(2017, 4, 18, 9, 0, tzinfo=WARSAW))
    assert [(e.event_key, e.registrations) for e in final.events] == [("krakow-2016", 1)]
    assert [a for _, _, v in text_values(late) for a in leaks(v, GONE + KEPT)] == []
    assert not app.blobs.exists(sha(PROGRAMME)) and not app.blobs.exists(sha(raws["zofia"]))
    with late.session() as s:
        assert s.exec(select(AddressStatus)).all() == []


def test_purge_removes_personal_data_and_keeps_anonymous_counts(tmp_path: Path) -> None:
    scenario(tmp_path)


def test_an_event_no_longer_configured_counts_from_its_last_change(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    form_mail(conv, CELINA, "opole-2016", at(4, 1))
    conv.run(at(4, 1))
    settings = conv.settings.model_copy(
        update={"events": tuple(e for e in conv.settings.events if e.key != "opole-2016"), "default_event": None}
    )
    conv.settings = settings
    app = conv.app(at(9, 27))
    assert purge_now(app, at(9, 27), dry_run=True).registrations == 0  # 179 days after 1 April
    report = purge_now(app, at(9, 28, 12))
    assert [(e.event_key, e.event_date, e.registrations) for e in report.events] == [("opole-2016", None, 1)]


def test_review_cannot_reprocess_a_purged_message(tmp_path: Path) -> None:
    from mailbot import review

    conv = Conversation(settings_for(tmp_path))
    conv.receive(mail(DARIUSZ[0], DARIUSZ[1], "Bez załącznika.", when=at(4, 2)))
    conv.run(at(4, 2))
    app = conv.app(at(10, 1))
    (item,) = review.list_open(app.ingest)
    purge_now(app, at(10, 1))
    assert review.list_open(app.ingest) == []
    with pytest.raises(review.ReviewError, match="purged"):
        review.reprocess(app.ingest, item.id)
    detail = review.show(app.ingest, item.id)
    assert detail.item.sender == "" and detail.purged and not detail.raw_stored


@pytest.mark.integration
def test_purge_on_postgresql(tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conversation, "DATABASE_URL", postgres_url)
    scenario(tmp_path)
    assert not list(tmp_path.rglob("*.db"))


def test_nothing_to_purge_in_an_empty_database(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    app = conv.app(at(4, 1))
    report = purge_now(app, at(4, 1))
    assert report.nothing and report.events == [] and "Nothing to purge" in render_report(report)
    with app.session() as s:
        assert s.exec(select(PurgedEvent)).all() == []
