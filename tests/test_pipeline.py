"""The whole pipeline on the embedded default: Maildir in, Maildir out, SQLite.

Uses the demo's own sample mailbox (every scenario the pipeline must handle) and the
real adapters; only the clock is fixed.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlmodel import select

from mailbot.app import App, build_app, event_header, fixed_clock
from mailbot.config import Settings, load_settings
from mailbot.ingest import dedupe_key
from mailbot.mailbox.base import RawMessage
from mailbot.mailbox.maildir import MaildirSource
from mailbot.mime import parse_message
from mailbot.samples import Sample, demo_messages, write_maildir
from mailbot.store.tables import InboundMessage, OutboundMail, Participant, Registration, RegistrationVersion

REPO = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2016, 4, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))


# What each demo sample must end as (the duplicate h is recognised as a; l, Lublin's
# form of an event already held, says "Opole, 18 kwietnia" in its text: registered for
# Opole — issue 12, tests/test_routing.py).
EXPECTED_OUTCOMES = {
    "a_complete_table": "registered",
    "b_complete_controls": "registered",
    "c_incomplete": "registered",
    "d_no_attachment": "needs_review",
    "e_forwarded": "registered",
    "f_zipped": "registered",
    "g_corrected": "registered",
    "h_duplicate": "registered",
    "i_auto_reply": "ignored",
    "j_bounce": "ignored",
    "k_blank_form": "needs_review",
    "l_other_event": "registered",
}


EXPECTED_REGISTRATIONS = 6  # a (and its duplicate h), b, c (corrected by g), e, f, l (for Opole)
EXPECTED_MAILS = 15  # see test_every_sender_is_answered_and_everyone_on_a_form_hears_once


def make_settings(tmp_path: Path) -> Settings:
    base = load_settings(REPO / "config" / "demo.toml")
    return base.model_copy(
        update={
            "state_dir": tmp_path / "state",
            "database_url": f"sqlite:///{tmp_path / 'state' / 'mailbot.db'}",
            "mailbox": base.mailbox.model_copy(update={"path": tmp_path / "inbox"}),
            "outbox": base.outbox.model_copy(update={"path": tmp_path / "outbox"}),
        }
    )


def samples_for(settings: Settings) -> list[Sample]:
    return demo_messages(
        event_header(settings.event("opole-2016")),
        organiser_address=settings.outbox.from_address,
        base_time=NOW,
        other_event=event_header(settings.event("lublin-2016")),
    )


def ref_of(sample: Sample) -> str:
    return dedupe_key(sample.data, parse_message(sample.data).message_id)[:10]


def sent_mails(settings: Settings) -> list[EmailMessage]:
    folder = settings.outbox.path / "new"
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in sorted(folder.iterdir())
    ] if folder.exists() else []


@pytest.fixture
def demo(tmp_path: Path) -> tuple[App, Settings, dict[str, str]]:
    settings = make_settings(tmp_path)
    samples = samples_for(settings)
    write_maildir(samples, settings.mailbox.path)
    app = build_app(settings, clock=fixed_clock(NOW))
    report = app.run_once()
    outcomes = {}
    by_ref = {}
    for r in report.results:
        by_ref.setdefault(r.ref, r)
    for s in samples:
        outcomes[s.name] = by_ref[ref_of(s)].outcome
    return app, settings, outcomes


def test_every_sample_ends_in_the_expected_state(demo: tuple[App, Settings, dict[str, str]]) -> None:
    _, _, outcomes = demo
    assert outcomes == EXPECTED_OUTCOMES


def test_the_inbox_is_empty_and_every_message_filed_by_outcome(demo: tuple[App, Settings, dict[str, str]]) -> None:
    _, settings, _ = demo
    inbox = settings.mailbox.path
    assert list((inbox / "new").iterdir()) == [] and list((inbox / "cur").iterdir()) == []
    count = {
        name: sum(len(list((inbox / f".{name}" / sub).iterdir())) for sub in ("new", "cur"))
        for name in ("Processed", "Needs-Review", "Ignored")
    }
    assert count == {"Processed": 8, "Needs-Review": 2, "Ignored": 2}


def test_registrations_and_their_participants_are_stored(demo: tuple[App, Settings, dict[str, str]]) -> None:
    app, _, _ = demo
    with app.session() as s:
        regs = {r.institution_name: r for r in s.exec(select(Registration))}
        assert len(regs) == EXPECTED_REGISTRATIONS
        mirow = regs["Urząd Miejski w Mirowie"]
        assert mirow.status == "confirmed" and mirow.event_key == "opole-2016"  # routed from Lublin's form
        brzezina = regs["Urząd Miejski w Brzezinie Opolskiej"]
        assert brzezina.status == "confirmed" and brzezina.event_key == "opole-2016" and brzezina.workshops == "A"
        people = s.exec(select(Participant).where(Participant.registration_id == brzezina.id)).all()
        assert [(p.full_name, p.phone) for p in people] == [
            ("Katarzyna Wróbel", "+48774132025"),
            ("Tomasz Lis", "+48601442318"),
        ]
        lipowiec = regs["Urząd Gminy Lipowiec Opolski"]
        assert lipowiec.status == "confirmed" and lipowiec.version == 2
        (history,) = s.exec(select(RegistrationVersion).where(RegistrationVersion.registration_id == lipowiec.id)).all()
        assert '"status": "incomplete"' in history.snapshot_json


def test_every_sender_is_answered_and_everyone_on_a_form_hears_once(
    demo: tuple[App, Settings, dict[str, str]],
) -> None:
    _, settings, _ = demo
    mails = sent_mails(settings)
    kinds = sorted(m["X-Mailbot-Kind"] for m in mails)
    # a: 2 people, b: 3, c: the sender asked to complete + her colleague, e: the person
    # and the secretariat that forwarded it, f: 2 people of whom the second is the 10th
    # (capacity 9: waiting list); g corrects c; d and k get the blank form; l (Lublin's
    # form, Opole named in the text) is registered for Opole: the waiting list too.
    assert len(kinds) == EXPECTED_MAILS and kinds == sorted(
        ["ack"] * 2 + ["ack"] * 3 + ["incomplete", "ack"] + ["ack"] * 2 + ["ack", "waitlist"]
        + ["updated", "no_form", "no_form", "waitlist"]
    )
    assert len({m["To"].addresses[0].addr_spec for m in mails if m["X-Mailbot-Kind"] == "ack"}) == 9
    senders = {parse_message(s.data).from_addr for s in samples_for(settings)}
    for m in mails:
        assert m["Auto-Submitted"] == "auto-replied"
        assert bool(m["In-Reply-To"]) == (m["To"].addresses[0].addr_spec in senders)
        assert m["From"].addresses[0].addr_spec == settings.outbox.from_address
        greeting = m.get_body(("plain",)).get_content().splitlines()[0]  # type: ignore[union-attr]
        assert greeting.startswith(("Szanowna Pani", "Szanowny Panie", "Szanowni Państwo")), greeting
    incomplete = next(m for m in mails if m["X-Mailbot-Kind"] == "incomplete")
    text = incomplete.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Brak adresu e-mail uczestnika 1." in text and "zgod" in text.lower()
    for no_form in (m for m in mails if m["X-Mailbot-Kind"] == "no_form"):
        (attachment,) = list(no_form.iter_attachments())
        assert attachment.get_filename() == "zgloszenie-opole-2016.docx"


def test_a_second_pass_changes_nothing(demo: tuple[App, Settings, dict[str, str]]) -> None:
    app, settings, _ = demo
    before = len(sent_mails(settings))
    report = app.run_once()
    assert report.results == [] and len(sent_mails(settings)) == before


def test_messages_put_back_in_the_inbox_are_recognised_not_registered_again(
    demo: tuple[App, Settings, dict[str, str]],
) -> None:
    app, settings, _ = demo
    inbox = settings.mailbox.path
    for folder in (".Processed", ".Needs-Review", ".Ignored"):
        for sub in ("new", "cur"):
            for p in (inbox / folder / sub).iterdir():
                p.rename(inbox / "new" / p.name)
    report = app.run_once()
    assert report.results and all(r.already_seen for r in report.results)
    with app.session() as s:
        assert len(s.exec(select(Registration)).all()) == EXPECTED_REGISTRATIONS
        assert len(s.exec(select(OutboundMail)).all()) == EXPECTED_MAILS


class CrashOnFile(MaildirSource):
    """A source that dies right after the outcome is committed, before filing."""

    def file(self, message: RawMessage, outcome):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt("simulated kill between commit and move")


def test_a_crash_between_storing_and_filing_leaves_no_duplicate(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    write_maildir(samples_for(settings)[:1], settings.mailbox.path)
    crashing = build_app(settings, clock=fixed_clock(NOW), source=CrashOnFile(settings.mailbox.path))
    with pytest.raises(KeyboardInterrupt):
        crashing.run_once()
    with crashing.session() as s:
        assert len(s.exec(select(Registration)).all()) == 1
        (row,) = s.exec(select(InboundMessage)).all()
        assert not row.filed
    assert len(list((settings.mailbox.path / "new").iterdir())) == 1  # still in the inbox

    restarted = build_app(settings, clock=fixed_clock(NOW))
    report = restarted.run_once()
    assert [r.already_seen for r in report.results] == [True]
    with restarted.session() as s:
        assert len(s.exec(select(Registration)).all()) == 1
        assert s.exec(select(InboundMessage)).one().filed
        assert len(s.exec(select(OutboundMail)).all()) == 2  # the sender and her colleague
    assert len(sent_mails(settings)) == 2
    assert list((settings.mailbox.path / "new").iterdir()) == []


def test_no_address_gets_more_replies_than_the_daily_cap(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings = settings.model_copy(
        update={"outbox": settings.outbox.model_copy(update={"max_replies_per_address_per_day": 2})}
    )
    inbox = settings.mailbox.path
    for sub in ("new", "cur", "tmp"):
        (inbox / sub).mkdir(parents=True, exist_ok=True)
    for i in range(4):
        msg = EmailMessage()
        msg["From"] = "Pętla <loop@example.org>"
        msg["To"] = settings.outbox.from_address
        msg["Subject"] = f"Pytanie {i}"
        msg["Message-ID"] = f"<q{i}@example.org>"
        msg.set_content("Czy jest parking?")
        (inbox / "new" / f"{i}.msg").write_bytes(msg.as_bytes())
    app = build_app(settings, clock=fixed_clock(NOW))
    report = app.run_once()
    assert len(sent_mails(settings)) == 2
    assert sum("automatic mails today" in r.reason for r in report.results) == 2


def test_a_broken_message_goes_to_review_and_does_not_block_the_others(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    samples = samples_for(settings)[:1]
    write_maildir(samples, settings.mailbox.path)
    (settings.mailbox.path / "new" / "0.garbage").write_bytes(b"\x00\xff" * 1000 + b"\r\n\r\n" + b"\xfe" * 5000)
    app = build_app(settings, clock=fixed_clock(NOW))
    report = app.run_once()
    assert sorted(r.outcome for r in report.results) == ["needs_review", "registered"]


def test_an_oversized_message_is_recorded_by_its_headers_and_sent_to_review_unopened(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings = settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"max_message_bytes": 64 * 1024})}
    )
    inbox = settings.mailbox.path
    for sub in ("new", "cur", "tmp"):
        (inbox / sub).mkdir(parents=True, exist_ok=True)
    msg = EmailMessage()
    msg["From"] = "Anna Duża <anna@gmina.example.pl>"
    msg["To"] = settings.outbox.from_address
    msg["Subject"] = "Zgłoszenie ze skanem"
    msg["Message-ID"] = "<big@gmina.example.pl>"
    msg.set_content("W załączeniu.")
    msg.add_attachment(b"\0" * 200_000, maintype="application", subtype="pdf", filename="skan.pdf")
    (inbox / "new" / "big.msg").write_bytes(msg.as_bytes())
    app = build_app(settings, clock=fixed_clock(NOW))
    (result,) = app.run_once().results
    assert result.outcome == "needs_review" and "too large" in result.reason
    with app.session() as s:
        row = s.exec(select(InboundMessage)).one()
        assert row.message_id == "big@gmina.example.pl" and row.from_addr == "anna@gmina.example.pl"
        assert row.subject == "Zgłoszenie ze skanem"
