"""Only the claimant moves a message; another process's message is left to it.

A daemon and a hand-run ``mailbot run --once`` share one store: the filing claim makes
exactly one of them MOVE a message, a message another live process is still reading is
left in the inbox (deferred) rather than waited on, and the service looks again within
seconds when a message could not be filed.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, update
from sqlmodel import col, select

from mailbot.app import App, build_app, fixed_clock
from mailbot.config import Settings
from mailbot.daemon import Daemon
from mailbot.errors import MailboxError
from mailbot.mailbox.base import Outcome, RawMessage
from mailbot.mailbox.maildir import MaildirSource
from mailbot.samples import write_maildir
from mailbot.store import claims
from mailbot.store.tables import FilingClaim, InboundMessage, Registration
from tests.test_pipeline import NOW, make_settings, samples_for, sent_mails

GOOD = "a_complete_table"
ELSEWHERE = "other-host.example:4242:cafe"
"""A claimer on another host: alive as far as this one can tell, until its lease ends."""


def _one_form(settings: Settings) -> None:
    write_maildir([s for s in samples_for(settings) if s.name == GOOD], settings.mailbox.path)


def _inbox(settings: Settings) -> list[Path]:
    box = settings.mailbox.path
    return sorted(p for sub in ("new", "cur") if (box / sub).exists() for p in (box / sub).iterdir())


def _app(tmp_path: Path) -> App:
    settings = make_settings(tmp_path)
    _one_form(settings)
    return build_app(settings, clock=fixed_clock(NOW))


def test_of_two_claimants_one_files_and_the_claim_ends_when_filed(tmp_path: Path) -> None:
    app = _app(tmp_path)
    assert claims.claim_filing(app.session, "src", "7:42", "me:1:a")
    assert not claims.claim_filing(app.session, "src", "7:42", ELSEWHERE)
    assert claims.claim_filing(app.session, "src", "7:42", "me:1:a")  # renewing one's own
    claims.release_filing(app.session, "src", "7:42", "me:1:a")
    assert claims.claim_filing(app.session, "src", "7:42", ELSEWHERE)  # a released claim is free
    claims.filed(app.session, "src", "7:42", ELSEWHERE)
    assert not claims.claim_filing(app.session, "src", "7:42", "me:1:a")  # filed: nobody moves it again
    assert claims.claim_filing(app.session, "src", "7:43", "me:1:a")  # per message place


def test_batch_claims_give_each_message_to_one_claimant(tmp_path: Path) -> None:
    app = _app(tmp_path)
    assert claims.claim_filings(app.session, "src", ["7:1", "7:2", "7:3"], ELSEWHERE) == {"7:1", "7:2", "7:3"}
    claims.release_filings(app.session, "src", ["7:2"], ELSEWHERE)
    with app.session() as s:
        claims.mark_filings(s, "src", ["7:3"], ELSEWHERE)
        s.commit()
    # 7:1 is held, 7:2 was given up, 7:3 is filed, 7:4 is new.
    assert claims.claim_filings(app.session, "src", ["7:1", "7:2", "7:3", "7:4"], "me:1:a") == {"7:2", "7:4"}
    assert claims.claim_filings(app.session, "src", ["7:1", "7:2", "7:4"], "third.example:9:b") == set()
    assert claims.claim_filings(app.session, "src", ["7:1"], ELSEWHERE) == {"7:1"}  # renewing its own
    assert claims.claim_filings(app.session, "other", ["7:1"], ELSEWHERE) == {"7:1"}  # per source
    assert claims.claim_filings(app.session, "src", [], ELSEWHERE) == set()


def test_the_claim_before_a_move_syncs_the_log_then_leaves_the_connection_as_it_was(tmp_path: Path) -> None:
    app = _app(tmp_path)
    seen: list[int] = []

    def level(conn: Any, *_: Any) -> None:  # SQLite's safety level as each statement runs
        seen.append(conn.exec_driver_sql("PRAGMA synchronous").scalar())

    with app.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL: the engine's
    event.listen(app.engine, "after_execute", level)
    try:
        claims.claim_filings(app.session, "src", ["7:1", "7:2"], ELSEWHERE)
    finally:
        event.remove(app.engine, "after_execute", level)
    assert 2 in seen  # FULL while claiming: its commit syncs every outcome committed before
    with app.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1


def test_a_claim_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    app = _app(tmp_path)
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    host = socket.gethostname()
    assert claims.claim_filing(app.session, "src", "1", f"{host}:{os.getppid()}:beef")
    assert not claims.claim_filing(app.session, "src", "1", claims.claimer_name())  # its holder lives
    assert claims.claim_filing(app.session, "src", "2", f"{host}:{dead}:beef")
    assert claims.claim_filing(app.session, "src", "2", claims.claimer_name())  # its holder is gone
    assert claims.claim_filing(app.session, "src", "3", f"{host}:{dead}:beef")
    assert claims.claim_filings(app.session, "src", ["1", "3", "4"], claims.claimer_name()) == {"3", "4"}


def test_a_message_another_process_is_filing_stays_in_the_inbox_until_its_lease_ends(tmp_path: Path) -> None:
    app = _app(tmp_path)
    source = app.source
    (raw,) = list(source.fetch(None))
    assert claims.claim_filing(app.session, source.name, raw.ref, ELSEWHERE)

    report = app.run_once()
    assert [r.outcome for r in report.results] == ["registered"]
    assert report.deferred == [report.results[0].ref] and report.filing_errors == []
    assert len(_inbox(app.settings)) == 1  # not moved by us: the other process holds it
    assert len(sent_mails(app.settings)) == 2  # the outcome is final and answered all the same

    with app.session() as s:  # the other process died on another host; its lease ran out
        s.exec(update(FilingClaim).values(lease_until=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
        s.commit()
    again = app.run_once()
    assert [r.already_seen for r in again.results] == [True] and again.deferred == []
    assert _inbox(app.settings) == []
    with app.session() as s:
        assert s.exec(select(InboundMessage)).one().filed
        assert len(s.exec(select(Registration)).all()) == 1
        assert s.exec(select(FilingClaim)).one().filed_at is not None
    assert len(sent_mails(app.settings)) == 2


def test_a_message_another_live_process_is_reading_is_deferred_not_waited_on(tmp_path: Path) -> None:
    app = _app(tmp_path)
    first = app.run_once()  # stored and filed; now pretend it is back and pending elsewhere
    ref = first.results[0].ref
    write_maildir([s for s in samples_for(app.settings) if s.name == GOOD], app.settings.mailbox.path)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with app.session() as s:
        s.exec(
            update(InboundMessage)
            .where(col(InboundMessage.ref) == ref)
            .values(outcome="pending", reason=f"processing by other-host.example pid 4242 since {started}")
        )
        s.commit()
    report = app.run_once()
    assert [(r.ref, r.deferred, r.outcome) for r in report.results] == [(ref, True, "pending")]
    assert report.deferred == [ref]
    assert len(_inbox(app.settings)) == 1  # left to its owner, who files it


class _FlakySource(MaildirSource):
    """Refuses the first MOVE, as a server does while it restarts."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.refused = 0

    def file(self, message: RawMessage, outcome: Outcome) -> None:
        if self.refused == 0:
            self.refused += 1
            raise MailboxError("[UNAVAILABLE] server shutting down")
        super().file(message, outcome)


def test_the_service_files_again_within_seconds_not_at_the_next_poll(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings = settings.model_copy(
        update={"mailbox": settings.mailbox.model_copy(update={"poll_seconds": 3600, "idle": False})}
    )
    _one_form(settings)
    source = _FlakySource(settings.mailbox.path)
    daemon = Daemon(
        tmp_path / "unused.toml", settings=settings,
        app_factory=lambda s: build_app(s, clock=fixed_clock(NOW), source=source),
    )
    emptied: list[bool] = []

    def watch() -> None:  # the service runs in the main thread (signal handlers)
        deadline = time.monotonic() + 120
        # The only way out of the inbox before the hour-long poll is the quick retry.
        while _inbox(settings) and time.monotonic() < deadline:
            time.sleep(0.2)
        emptied.append(not _inbox(settings))
        daemon.request_stop()

    watcher = threading.Thread(target=watch)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    watcher.start()
    try:
        assert daemon.run() == 0
    finally:
        watcher.join()
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert emptied == [True] and source.refused == 1
    assert daemon.state.passes >= 2


class _DiesAfterTheMove(MaildirSource):
    """Moves the message, then the process "dies" before recording it."""

    def file(self, message: RawMessage, outcome: Outcome) -> None:
        super().file(message, outcome)
        raise KeyboardInterrupt("killed between the MOVE and its commit")


def test_a_kill_between_the_move_and_its_record_is_mended_by_the_next_pass(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    _one_form(settings)
    dying = build_app(settings, clock=fixed_clock(NOW), source=_DiesAfterTheMove(settings.mailbox.path))
    try:
        dying.run_once()
    except KeyboardInterrupt:
        pass
    assert _inbox(settings) == []  # moved: no pass will ever fetch it again
    with dying.session() as s:
        assert not s.exec(select(InboundMessage)).one().filed

    report = build_app(settings, clock=fixed_clock(NOW)).run_once()
    assert report.results == []
    with dying.session() as s:
        assert s.exec(select(InboundMessage)).one().filed  # `status` no longer calls it unfiled
