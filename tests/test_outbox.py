"""The outbox: replies are rows with a dedupe key; delivery retries transient failures."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from mailbot.errors import DeliveryError
from mailbot.outbox import (
    STUCK_AFTER,
    FileAttachment,
    ReplyTo,
    Sender,
    compose,
    compose_raw,
    deliver_due,
    enqueue,
    replies_today,
)
from mailbot.store.db import make_engine, upgrade
from mailbot.store.tables import OutboundMail
from mailbot.templating import Rendered
from mailbot.transport.base import Envelope

NOW = dt.datetime(2016, 4, 1, 7, 0, tzinfo=dt.UTC)
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


class RecordingTransport:
    """Our own Transport interface, faked: records envelopes, fails as scripted."""

    name = "fake"

    def __init__(self, failures: list[DeliveryError | None] | None = None) -> None:
        self.sent: list[Envelope] = []
        self.failures = list(failures or [])
        self.opens = 0

    def open(self) -> None:
        self.opens += 1

    def send(self, envelope: Envelope) -> None:
        if self.failures:
            failure = self.failures.pop(0)
            if failure is not None:
                raise failure
        self.sent.append(envelope)

    def close(self) -> None:
        pass


@pytest.fixture
def session_factory(tmp_path: Path) -> Callable[[], Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    return lambda: Session(engine, expire_on_commit=False)


def _message(name: str = "Jan Kowalski", key: str = "k1"):  # type: ignore[no-untyped-def]
    return compose(
        sender=Sender("zgloszenia@example.pl", "Konferencja"),
        to="jan@example.pl",
        to_name=name,
        rendered=Rendered("Potwierdzenie", "Tekst\n", "<p>Tekst</p>"),
        kind="ack",
        dedupe_key=key,
        ref="abc123",
        now=NOW,
        reply_to=ReplyTo("orig@example.pl", ("first@example.pl",)),
    )


def _queue(session_factory: Callable[[], Session], key: str) -> None:
    with session_factory() as s:
        enqueue(s, message=_message(key=key), kind="ack", dedupe_key=key, to="jan@example.pl", bcc=(), now=NOW)
        s.commit()


def test_a_reply_is_marked_automatic_threaded_and_tagged() -> None:
    msg = _message()
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "OOF, NRN, AutoReply, RN"
    assert msg["X-Mailbot-Kind"] == "ack" and msg["X-Mailbot-Ref"] == "abc123"
    assert msg["In-Reply-To"] == "<orig@example.pl>"
    assert msg["References"] == "<first@example.pl> <orig@example.pl>"
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed.get_body(("plain",)).get_content() == "Tekst\n"  # type: ignore[union-attr]
    assert "<p>Tekst</p>" in parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_the_message_id_is_stable_for_a_dedupe_key() -> None:
    assert _message(key="x")["Message-ID"] == _message(key="x")["Message-ID"]
    assert _message(key="x")["Message-ID"] != _message(key="y")["Message-ID"]


def test_a_name_with_a_line_break_cannot_inject_headers() -> None:
    raw = _message(name="Jan\r\nBcc: victim@example.com").as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None
    assert b"\nBcc:" not in raw
    assert parsed["To"].addresses[0].display_name == "Jan Bcc: victim@example.com"
    assert parsed["To"].addresses[0].addr_spec == "jan@example.pl"


def test_the_same_dedupe_key_is_queued_once(session_factory: Callable[[], Session]) -> None:
    _queue(session_factory, "same")
    _queue(session_factory, "same")
    with session_factory() as s:
        assert len(s.exec(select(OutboundMail)).all()) == 1
        assert replies_today(s, "JAN@example.pl", NOW) == 1
        assert replies_today(s, "jan@example.pl", NOW + dt.timedelta(days=2)) == 0


def test_delivery_sends_each_row_once_over_one_connection(session_factory: Callable[[], Session]) -> None:
    _queue(session_factory, "a")
    _queue(session_factory, "b")
    transport = RecordingTransport()
    stats = deliver_due(session_factory, transport, now=NOW, sender="zgloszenia@example.pl", max_attempts=3)
    assert stats.sent == 2 and transport.opens == 1
    assert [e.recipients for e in transport.sent] == [("jan@example.pl",), ("jan@example.pl",)]
    again = deliver_due(session_factory, transport, now=NOW, sender="zgloszenia@example.pl", max_attempts=3)
    assert again.sent == 0 and len(transport.sent) == 2


def test_a_transient_failure_is_retried_later_and_a_permanent_one_gives_up(
    session_factory: Callable[[], Session],
) -> None:
    _queue(session_factory, "transient")
    _queue(session_factory, "permanent")
    transport = RecordingTransport(
        [DeliveryError("451 try later", permanent=False), DeliveryError("550 no such user", permanent=True)]
    )
    stats = deliver_due(session_factory, transport, now=NOW, sender="s@example.pl", max_attempts=3)
    assert (stats.sent, stats.retried, stats.failed) == (0, 1, 1)
    with session_factory() as s:
        rows = {r.dedupe_key: r for r in s.exec(select(OutboundMail))}
    assert rows["transient"].status == "retry" and rows["transient"].next_attempt_at == NOW + dt.timedelta(minutes=1)
    assert rows["permanent"].status == "failed" and "550" in (rows["permanent"].last_error or "")
    # Not due yet: nothing happens; once due, it goes out.
    assert deliver_due(session_factory, transport, now=NOW, sender="s@example.pl", max_attempts=3).sent == 0
    later = NOW + dt.timedelta(minutes=1)
    assert deliver_due(session_factory, transport, now=later, sender="s@example.pl", max_attempts=3).sent == 1


def test_attempts_are_bounded(session_factory: Callable[[], Session]) -> None:
    _queue(session_factory, "flaky")
    transport = RecordingTransport([DeliveryError("421 busy", permanent=False)] * 5)
    now = NOW
    for _ in range(3):
        deliver_due(session_factory, transport, now=now, sender="s@example.pl", max_attempts=2)
        now += dt.timedelta(hours=2)
    with session_factory() as s:
        row = s.exec(select(OutboundMail)).one()
    assert row.status == "failed" and row.attempts == 2


def test_a_row_left_sending_by_a_crash_is_swept_back_and_sent(session_factory: Callable[[], Session]) -> None:
    _queue(session_factory, "stuck")
    with session_factory() as s:
        row = s.exec(select(OutboundMail)).one()
        row.status, row.claimed_at = "sending", NOW
        s.add(row)
        s.commit()
    transport = RecordingTransport()
    assert deliver_due(session_factory, transport, now=NOW + dt.timedelta(minutes=1), sender="s", max_attempts=3).sent == 0
    later = NOW + STUCK_AFTER + dt.timedelta(minutes=1)
    assert deliver_due(session_factory, transport, now=later, sender="s", max_attempts=3).sent == 1


def test_polish_display_names_survive_the_round_trip_word_for_word() -> None:
    msg = compose(
        sender=Sender("zgloszenia@example.pl", "Konferencja „Współpraca w partnerstwach samorządowych”"),
        to="jozef@example.pl",
        to_name="Józef Bąk-Świętochowski",
        rendered=Rendered("Temat", "t\n", "<p>h</p>"),
        kind="ack",
        dedupe_key="pl",
        ref="r",
        now=NOW,
    )
    raw = msg.as_bytes(policy=email.policy.SMTP)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["From"].addresses[0].display_name == "Konferencja „Współpraca w partnerstwach samorządowych”"
    assert parsed["To"].addresses[0].display_name == "Józef Bąk-Świętochowski"


# --- the reply's bytes, written directly (issue 13) ------------------------------------

_BOUNDARY = re.compile(rb"===============\d{19}==")


def _same_boundaries(raw: bytes) -> bytes:
    """``raw`` with its (random) MIME boundaries numbered in order of appearance."""
    seen: dict[bytes, bytes] = {}
    return _BOUNDARY.sub(lambda m: seen.setdefault(m.group(0), b"BOUNDARY-%d" % len(seen)), raw)


ICS = FileAttachment("konferencja-opole-2016.ics", "text/calendar; method=PUBLISH; charset=UTF-8", b"BEGIN:VCALENDAR\r\n" * 30)
CANCEL_ICS = FileAttachment(
    "konferencja-opole-2016-odwolana.ics", "text/calendar; method=CANCEL; charset=UTF-8", b"END:VCALENDAR\r\n"
)
DOCX = FileAttachment("zgloszenie-opole-2016.docx", DOCX_TYPE, bytes(range(256)) * 5)


@pytest.mark.parametrize(
    ("to_name", "subject", "attachments", "reply_to"),
    [
        ("Jan Kowalski", "Potwierdzenie", (), None),
        ("Józef Bąk-Świętochowski", "Potwierdzenie zgłoszenia [OPL00001] – Opole, 18 kwietnia 2016 r.", (ICS,), ReplyTo("m1@x.pl")),
        ("Kowalski, Jan (dyr.)", "x" * 120, (DOCX, CANCEL_ICS), ReplyTo("o@x.pl", tuple(f"r{i}@example.pl" for i in range(14)))),
        ("Jan\r\nBcc: victim@example.com", "Temat =?utf-8?q?nie_kodowany?=", (ICS,), None),
        (None, "Zmiana  terminu\t konferencji", (), ReplyTo(None)),
        ("A" * 100, "Ą" * 90, (FileAttachment("zgłoszenie.docx", DOCX_TYPE, b"x"),), None),
    ],
)
def test_the_fast_composer_writes_the_bytes_the_stdlib_writes(
    to_name: str | None, subject: str, attachments: tuple[FileAttachment, ...], reply_to: ReplyTo | None
) -> None:
    kw: dict[str, Any] = dict(
        sender=Sender("zgloszenia@example.pl", "Konferencja „Współpraca w partnerstwach samorządowych”"),
        to="jan@example.pl", to_name=to_name, rendered=Rendered(subject, "Zażółć gęślą jaźń\n" + "a " * 80 + "\n", "<p>ą</p>"),
        kind="ack", dedupe_key="k", ref="abc123", now=NOW, reply_to=reply_to, attachments=attachments,
    )  # fmt: skip
    old = compose(**kw)
    new = compose_raw(**kw)
    assert _same_boundaries(new.raw) == _same_boundaries(old.as_bytes(policy=email.policy.SMTP))
    assert (new.subject, new.message_id) == (str(old["Subject"]), str(old["Message-ID"]))


def test_a_composed_reply_parses_back_with_its_headers_bodies_and_attachments() -> None:
    composed = compose_raw(
        sender=Sender("zgloszenia@example.pl", "Konferencja"), to="jozef@example.pl", to_name="Józef Bąk",
        rendered=Rendered("Potwierdzenie – Opole", "Dzień dobry\n", "<p>Dzień dobry</p>"), kind="ack",
        dedupe_key="k", ref="abc123", now=NOW, reply_to=ReplyTo("orig@example.pl"), attachments=[ICS, DOCX],
    )  # fmt: skip
    head, _, _ = composed.raw.partition(b"\r\n\r\n")
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    assert b"\n" not in composed.raw.replace(b"\r\n", b"")  # CRLF only, as SMTP wants
    parsed = email.message_from_bytes(composed.raw, policy=email.policy.default)
    assert parsed["To"].addresses[0].display_name == "Józef Bąk"
    assert parsed["Subject"] == composed.subject == "Potwierdzenie – Opole"
    assert parsed["Message-ID"] == composed.message_id
    assert parsed["In-Reply-To"] == "<orig@example.pl>"
    assert parsed.get_body(("plain",)).get_content() == "Dzień dobry\r\n"  # type: ignore[union-attr]
    assert "<p>Dzień dobry</p>" in parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    files = {p.get_filename(): p for p in parsed.iter_attachments()}
    assert files["konferencja-opole-2016.ics"].get_content_type() == "text/calendar"
    assert files["konferencja-opole-2016.ics"].get_param("method") == "PUBLISH"
    assert files["konferencja-opole-2016.ics"].get_content().replace("\r\n", "\n") == ICS.data.decode().replace("\r\n", "\n")
    assert files["zgloszenie-opole-2016.docx"].get_content() == DOCX.data


@pytest.mark.parametrize("name", ["Jan\r\nBcc: victim@example.com", "Józef\nBcc: victim@example.com", "Jan\rX-Evil: 1"])
def test_a_name_with_a_line_break_cannot_inject_headers_into_a_composed_reply(name: str) -> None:
    raw = compose_raw(
        sender=Sender("zgloszenia@example.pl", "Konferencja"), to="jan@example.pl", to_name=name,
        rendered=Rendered("Temat", "t\n", "<p>h</p>"), kind="ack", dedupe_key="k", ref="r", now=NOW,
    ).raw  # fmt: skip
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None
    assert b"\nBcc:" not in raw and b"\nX-Evil" not in raw
    assert parsed["To"].addresses[0].addr_spec == "jan@example.pl"
    assert "\n" not in parsed["To"].addresses[0].display_name


def test_a_composed_reply_is_queued_with_its_subject_and_message_id(session_factory: Callable[[], Session]) -> None:
    composed = compose_raw(
        sender=Sender("zgloszenia@example.pl", "Konferencja"), to="jan@example.pl", to_name="Jan",
        rendered=Rendered("Potwierdzenie zgłoszenia", "t\n", "<p>h</p>"), kind="ack", dedupe_key="c1", ref="r", now=NOW,
    )  # fmt: skip
    with session_factory() as s:
        row = enqueue(s, message=composed, kind="ack", dedupe_key="c1", to="Jan@example.pl", bcc=("a@x.pl",), now=NOW)
        assert row is not None and row.id is not None
        assert enqueue(s, message=composed, kind="ack", dedupe_key="c1", to="jan@example.pl", bcc=(), now=NOW) is None
        s.commit()
    with session_factory() as s:
        stored = s.exec(select(OutboundMail)).one()
    assert (stored.raw, stored.subject, stored.message_id) == (composed.raw, "Potwierdzenie zgłoszenia", composed.message_id)
    assert (stored.to_addr, stored.envelope_to, stored.status, stored.attempts) == ("jan@example.pl", "Jan@example.pl\na@x.pl", "queued", 0)
