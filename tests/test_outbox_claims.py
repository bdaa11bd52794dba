"""The outbox with several processes on one store (issue 11): each due row is claimed by
one process only, a killed sender's rows come back after their lease on the database's
clock (also under a fixed ``--now``), and "sent" is logged only once it is committed.

The senders are real processes (multiprocessing, spawn context) started together behind
a barrier; their transport writes every envelope it is handed into a Maildir without
deduplicating, so a mail sent twice shows up as two files with one Message-ID.
"""

from __future__ import annotations

import datetime as dt
import email
import json
import logging
import multiprocessing
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from mailbot import outbox
from mailbot.errors import DeliveryError
from mailbot.outbox import Sender, compose, deliver_due, enqueue
from mailbot.store.db import make_engine, upgrade
from mailbot.store.tables import OutboundMail
from mailbot.templating import Rendered
from mailbot.transport.base import Envelope

try:  # tests/ is a package in some layouts and a plain rootdir-inserted path in others
    from tests import pg
except ImportError:
    import pg  # type: ignore[no-redef]

postgres_server = pg.postgres_server
postgres_url = pg.postgres_url

NOW = dt.datetime(2016, 4, 1, 7, 0, tzinfo=dt.UTC)
MAILS = 120
SPAWN = multiprocessing.get_context("spawn")


class CopyingTransport:
    """Writes each envelope into ``maildir/new`` under a fresh name (no dedupe, unlike
    MaildirTransport): duplicates stay visible. ``hang`` simulates a sender stuck in the
    SMTP transaction: it leaves a marker and blocks until it is killed."""

    name = "copying"

    def __init__(self, maildir: Path, *, delay: float = 0.0, hang: bool = False) -> None:
        self.new = maildir / "new"
        self.delay = delay
        self.hang = hang

    def open(self) -> None:
        self.new.mkdir(parents=True, exist_ok=True)

    def send(self, envelope: Envelope) -> None:
        if self.hang:
            (self.new.parent / "hanging").write_text(envelope.dedupe_key)
            time.sleep(120)
        time.sleep(self.delay)
        tmp = self.new.parent / f"tmp-{os.getpid()}-{uuid.uuid4().hex}"
        tmp.write_bytes(envelope.data)
        tmp.rename(self.new / tmp.name)

    def close(self) -> None:
        pass


def sender_process(url: str, maildir: str, barrier: Barrier | None, report: str, lease_s: float, hang: bool) -> None:
    """One mailbot process delivering whatever is due (the spawn target)."""
    outbox.LEASE = dt.timedelta(seconds=lease_s)
    engine = make_engine(url)
    transport = CopyingTransport(Path(maildir), delay=0.003, hang=hang)
    if barrier is not None:
        barrier.wait(timeout=30)
    stats = deliver_due(
        lambda: Session(engine, expire_on_commit=False), transport, now=NOW, sender="s@example.pl",
        max_attempts=3, max_per_minute=10_000,
    )  # fmt: skip
    Path(report).write_text(json.dumps({"sent": stats.sent, "errors": stats.errors}))
    engine.dispose()


def _queue(factory: Callable[[], Session], count: int) -> set[str]:
    ids = set()
    with factory() as s:
        for i in range(count):
            key = f"mail-{i}"
            msg = compose(
                sender=Sender("s@example.pl", "Konferencja"), to=f"p{i}@example.pl", to_name=f"Osoba {i}",
                rendered=Rendered("Potwierdzenie", "Tekst\n", "<p>Tekst</p>"), kind="ack", dedupe_key=key,
                ref="abc123", now=NOW,
            )  # fmt: skip
            enqueue(s, message=msg, kind="ack", dedupe_key=key, to=f"p{i}@example.pl", bcc=(), now=NOW)
            ids.add(str(msg["Message-ID"]))
        s.commit()
    return ids


def _delivered(maildir: Path) -> Counter[str]:
    new = maildir / "new"
    files = sorted(new.iterdir()) if new.is_dir() else []
    return Counter(str(email.message_from_bytes(f.read_bytes())["Message-ID"]) for f in files)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'mailbot.db'}"


@pytest.fixture
def store(request: pytest.FixtureRequest) -> Iterator[tuple[str, Callable[[], Session]]]:
    url: str = request.getfixturevalue(request.param)
    engine = make_engine(url)
    upgrade(engine)
    yield url, lambda: Session(engine, expire_on_commit=False)
    engine.dispose()


@pytest.mark.parametrize(
    "store", ["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.integration)], indirect=True
)
def test_two_processes_started_together_deliver_every_mail_exactly_once(
    store: tuple[str, Callable[[], Session]], tmp_path: Path
) -> None:
    url, factory = store
    expected = _queue(factory, MAILS)
    maildir = tmp_path / "Maildir"
    barrier = SPAWN.Barrier(2)
    reports = [tmp_path / f"report-{n}.json" for n in range(2)]
    procs = [
        SPAWN.Process(target=sender_process, args=(url, str(maildir), barrier, str(r), 300.0, False)) for r in reports
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    results = [json.loads(r.read_text()) for r in reports]
    assert all(r["errors"] == [] for r in results)
    assert all(r["sent"] > 0 for r in results), results  # both really took part
    assert sum(r["sent"] for r in results) == MAILS

    delivered = _delivered(maildir)
    assert set(delivered) == expected
    assert set(delivered.values()) == {1}
    with factory() as s:
        rows = s.exec(select(OutboundMail)).all()
    assert {(r.status, r.attempts, r.lease_until) for r in rows} == {("sent", 1, None)}
    assert len({r.claimed_by for r in rows}) == 2


def test_a_row_left_sending_by_a_killed_process_is_resent_after_its_lease_under_a_fixed_now(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    factory = lambda: Session(engine, expire_on_commit=False)  # noqa: E731
    (message_id,) = _queue(factory, 1)
    maildir = tmp_path / "Maildir"
    lease_s = 3.0
    proc = SPAWN.Process(
        target=sender_process, args=(sqlite_url, str(maildir), None, str(tmp_path / "r.json"), lease_s, True)
    )
    proc.start()
    deadline = time.monotonic() + 20
    while not (maildir / "hanging").exists():
        assert time.monotonic() < deadline and proc.is_alive(), "the sender never reached the transport"
        time.sleep(0.02)
    proc.kill()
    proc.join(timeout=10)
    killed_at = time.monotonic()
    with factory() as s:
        row = s.exec(select(OutboundMail)).one()
    assert row.status == "sending" and row.claimed_by and row.lease_until is not None

    transport = CopyingTransport(maildir)
    with engine.connect() as conn:  # the lease still has a second to run on the database's clock
        leased = conn.execute(sa.text(
            "SELECT lease_until > strftime('%Y-%m-%d %H:%M:%f000', 'now', '+1 seconds') FROM outbound_mail"
        )).scalar_one()
    # Same fixed clock as the killed run: only the database's clock can release the row.
    first = deliver_due(factory, transport, now=NOW, sender="s@example.pl", max_attempts=3)
    if leased:
        assert first.sent == 0 and _delivered(maildir) == Counter()
    while not _delivered(maildir):
        assert time.monotonic() < killed_at + lease_s + 10, "the row never came back from its lease"
        time.sleep(0.2)
        deliver_due(factory, transport, now=NOW, sender="s@example.pl", max_attempts=3)
    assert _delivered(maildir) == Counter({message_id: 1})
    with factory() as s:
        row = s.exec(select(OutboundMail)).one()
    assert (row.status, row.attempts, row.lease_until) == ("sent", 2, None)
    engine.dispose()


def test_sent_and_failures_are_logged_only_once_the_database_has_them(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    factory = lambda: Session(engine, expire_on_commit=False)  # noqa: E731
    _queue(factory, 4)
    observer = make_engine(sqlite_url)  # another connection: sees committed rows only
    seen: list[tuple[str, str]] = []

    class Check(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            args = record.args if isinstance(record.args, tuple) else ()
            to = next(a for a in args if isinstance(a, str) and a.endswith("@example.pl") and "<" not in a)
            with observer.connect() as conn:
                status = conn.execute(
                    sa.text("SELECT status FROM outbound_mail WHERE to_addr = :to"), {"to": to}
                ).scalar_one()
            seen.append((record.getMessage().split()[0], status))

    class FailingSecond(CopyingTransport):
        calls = 0

        def send(self, envelope: Envelope) -> None:
            self.calls += 1
            if self.calls == 2:
                raise DeliveryError("451 try later", permanent=False)
            if self.calls == 3:
                raise DeliveryError("550 no such user", permanent=True)
            super().send(envelope)

    handler = Check(level=logging.INFO)
    logging.getLogger("mailbot.outbox").addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="mailbot.outbox"):
            stats = deliver_due(factory, FailingSecond(tmp_path / "Maildir"), now=NOW, sender="s", max_attempts=3)
    finally:
        logging.getLogger("mailbot.outbox").removeHandler(handler)
        observer.dispose()
    assert (stats.sent, stats.retried, stats.failed) == (2, 1, 1)
    assert sorted(seen) == [("giving", "failed"), ("sent", "sent"), ("sent", "sent"), ("will", "retry")]
    engine.dispose()


def test_rows_sending_before_the_upgrade_get_a_lease_from_the_database_clock(sqlite_url: str) -> None:
    from alembic import command

    from mailbot.store.db import alembic_config

    engine = make_engine(sqlite_url)
    command.upgrade(alembic_config(engine), "0004")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO outbound_mail (dedupe_key, kind, to_addr, subject, message_id, raw, envelope_to, status,"
            " attempts, claimed_at, created_at) VALUES ('k', 'ack', 'a@example.pl', 's', '<m@x>', x'00', 'a@example.pl',"
            " 'sending', 1, '2016-04-01 07:00:00.000000', '2016-04-01 07:00:00.000000')"
        ))
    upgrade(engine)
    with engine.connect() as conn:
        minutes = conn.execute(sa.text(
            "SELECT (julianday(lease_until) - julianday('now')) * 24 * 60 FROM outbound_mail"
        )).scalar_one()
    assert 14 < minutes < 15.05  # the 15 minutes of grace the sweeper gave them before
    engine.dispose()


def test_a_run_sends_at_most_max_per_pass_and_the_log_names_the_limit_that_held(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    factory = lambda: Session(engine, expire_on_commit=False)  # noqa: E731
    _queue(factory, 7)
    transport = CopyingTransport(tmp_path / "out")
    with caplog.at_level(logging.INFO, logger="mailbot.outbox"):
        first = deliver_due(factory, transport, now=NOW, sender="s@example.pl", max_attempts=3,
                            max_per_minute=10_000, limit=5)
    assert (first.sent, first.deferred) == (5, 2)
    assert "5 mails per run (outbox.max_per_pass): 2 due mail(s) wait" in caplog.text
    caplog.clear()
    later = NOW + dt.timedelta(minutes=5)
    with caplog.at_level(logging.INFO, logger="mailbot.outbox"):
        second = deliver_due(factory, transport, now=later, sender="s@example.pl", max_attempts=3,
                             max_per_minute=1, limit=5)
    assert (second.sent, second.deferred) == (1, 1)
    assert "rate limit 1/min (outbox.max_per_minute): 1 due mail(s) wait" in caplog.text
    assert sum(_delivered(tmp_path / "out").values()) == 6
    engine.dispose()


# --- batches of claims (issue 13) ------------------------------------------------------


def claim_until_empty(url: str, me: str, barrier: threading.Barrier, got: list[int]) -> None:
    """One claimer taking batches of 7 until nothing is due (the thread target)."""
    engine = make_engine(url)
    factory = lambda: Session(engine, expire_on_commit=False)  # noqa: E731
    barrier.wait(timeout=30)
    while batch := outbox.claim_due(factory, me, NOW, 7):
        got.extend(row.id for row in batch)
    engine.dispose()


@pytest.mark.parametrize(
    "store", ["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.integration)], indirect=True
)
def test_a_batch_claim_by_racing_claimers_never_gives_a_row_to_two_of_them(
    store: tuple[str, Callable[[], Session]],
) -> None:
    url, factory = store
    _queue(factory, MAILS)
    barrier = threading.Barrier(3)
    got: dict[str, list[int]] = {f"claimer-{n}": [] for n in range(3)}
    threads = [threading.Thread(target=claim_until_empty, args=(url, me, barrier, ids)) for me, ids in got.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    everything = [i for ids in got.values() for i in ids]
    assert len(everything) == len(set(everything)) == MAILS
    with factory() as s:
        rows = s.exec(select(OutboundMail)).all()
    assert {r.status for r in rows} == {"sending"} and {r.attempts for r in rows} == {1}
    assert all(r.id in got[r.claimed_by or ""] for r in rows)  # each row's holder is the one that got it
    assert all(r.lease_until is not None for r in rows)


def test_rows_claimed_but_never_tried_go_back_as_they_were(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    factory = lambda: Session(engine, expire_on_commit=False)  # noqa: E731
    _queue(factory, 6)

    class DropsAfterTheSecond(CopyingTransport):
        """Sends one, loses the connection on the second, then cannot reconnect."""

        sends = opens = 0

        def open(self) -> None:
            self.opens += 1
            if self.opens > 1:
                raise DeliveryError("connection refused", permanent=False)
            super().open()

        def send(self, envelope: Envelope) -> None:
            self.sends += 1
            if self.sends == 2:
                raise DeliveryError("421 closing", permanent=False)
            super().send(envelope)

    stats = deliver_due(factory, DropsAfterTheSecond(tmp_path / "out"), now=NOW, sender="s", max_attempts=3,
                        max_per_minute=10_000)  # fmt: skip
    assert (stats.sent, stats.retried, stats.deferred) == (1, 2, 3)
    with factory() as s:
        rows = {r.dedupe_key: r for r in s.exec(select(OutboundMail))}
    assert (rows["mail-0"].status, rows["mail-0"].attempts) == ("sent", 1)
    assert (rows["mail-1"].status, rows["mail-1"].attempts) == ("retry", 1)  # tried and failed
    assert (rows["mail-2"].status, rows["mail-2"].attempts, rows["mail-2"].last_error) == ("retry", 0, "connection refused")
    for key in ("mail-3", "mail-4", "mail-5"):  # never tried: as if never claimed
        r = rows[key]
        assert (r.status, r.attempts, r.claimed_by, r.claimed_at, r.lease_until) == ("queued", 0, None, None, None)
    engine.dispose()


def test_a_renewed_batch_keeps_only_the_rows_still_held(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    factory = lambda: Session(engine, expire_on_commit=False)  # noqa: E731
    _queue(factory, 3)
    batch = outbox.claim_due(factory, "me", NOW, 3)
    assert [r.dedupe_key for r in batch] == ["mail-0", "mail-1", "mail-2"]
    with factory() as s:  # the sweeper gave mail-1 back and another process took it
        s.execute(sa.text("UPDATE outbound_mail SET claimed_by = 'other', lease_until = NULL WHERE dedupe_key = 'mail-1'"))
        s.commit()
    with factory() as s:
        held = outbox._renew(s, batch, "me")
    assert [r.dedupe_key for r in held] == ["mail-0", "mail-2"]
    with engine.connect() as conn:
        leases = dict(conn.execute(sa.text("SELECT dedupe_key, lease_until IS NOT NULL FROM outbound_mail")).all())
    assert leases == {"mail-0": 1, "mail-1": 0, "mail-2": 1}
    engine.dispose()


def test_the_per_run_cap_counts_tried_mails_not_claims_given_back(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    factory = lambda: Session(engine, expire_on_commit=False)  # noqa: E731
    _queue(factory, 6)

    class DropsTheSecond(CopyingTransport):
        sends = 0

        def send(self, envelope: Envelope) -> None:
            self.sends += 1
            if self.sends == 2:
                raise DeliveryError("421 closing", permanent=False)
            super().send(envelope)

    stats = deliver_due(factory, DropsTheSecond(tmp_path / "out"), now=NOW, sender="s", max_attempts=3,
                        max_per_minute=10_000, limit=4)  # fmt: skip
    assert (stats.sent, stats.retried, stats.deferred) == (3, 1, 2)
    with factory() as s:
        status = {r.dedupe_key: (r.status, r.attempts) for r in s.exec(select(OutboundMail))}
    assert status == {
        "mail-0": ("sent", 1), "mail-1": ("retry", 1), "mail-2": ("sent", 1), "mail-3": ("sent", 1),
        "mail-4": ("queued", 0), "mail-5": ("queued", 0),
    }  # fmt: skip
    engine.dispose()
