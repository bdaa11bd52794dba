"""`mailbot run` as the service it is: a real process watching a real Dovecot over IMAPS
(IDLE) and sending through a real SMTP server process, stopped and reloaded with real
signals. Waits are bounded polls for an effect, never assertions on how long it took
(bench/latency.py measures that)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mailbot.config import load_settings
from tests.conversation import form_docx, mail

pytestmark = pytest.mark.integration

EVENT_DAY = dt.date.today() + dt.timedelta(days=60)
CONFIG = f"""
timezone = "Europe/Warsaw"
default_event = "opole"
own_addresses = ["zgloszenia@partnerstwa.example.pl"]
signature = "Zespół organizacyjny"
outbox_seconds = 5

[mailbox]
poll_seconds = 5
idle_renew_seconds = 60

[outbox]
from_address = "zgloszenia@partnerstwa.example.pl"
from_name = "Konferencja w Opolu"

[[events]]
key = "opole"
title = "Współpraca w partnerstwach samorządowych"
city = "Opole"
date = {EVENT_DAY.isoformat()}
start_time = 11:00:00
venue = "Sala Herbowa Urzędu Wojewódzkiego w Opolu"
address = "ul. Piastowska 14, 45-082 Opole"
capacity = 50
organisers = ["opole@partnerstwa.example.pl"]
"""


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 120.0, log: Path | None = None) -> Any:
    """Poll until ``condition`` holds; the generous timeout only bounds a hung test
    (reconnect backoff after a Dovecot restart on a loaded CI machine takes a while)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-4000:] if log is not None and log.exists() else ""
    raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s\n{tail}")


class Service:
    """`mailbot run` in its own process, its log captured to a file."""

    def __init__(self, tmp_path: Path, dovecot: Any, smtp: Any, config: str = CONFIG) -> None:
        self.tmp_path, self.dovecot, self.smtp = tmp_path, dovecot, smtp
        self.config = tmp_path / "mailbot.toml"
        self.config.write_text(config, encoding="utf-8")
        self.log_path = tmp_path / "service.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        d, s = self.dovecot, self.smtp
        # The log is appended to across starts: wait for this start's line, not an
        # earlier one (a SIGTERM sent before the handlers are in place kills outright).
        started_before = self.log().count("mailbot started")
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "mailbot", "run", "--config", str(self.config),
                "--inbox", f"imaps://{d.user}@{d.host}:{d.port}/INBOX?ca_file={d.ca_file}",
                "--outbox", f"smtp://{s.host}:{s.port}?ca_file={s.ca_file}",
                "--db", f"sqlite:///{self.tmp_path / 'mailbot.db'}",
            ],
            cwd=self.tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MAILBOT_IMAP_PASSWORD": d.password},
        )
        wait_for(lambda: self.log().count("mailbot started") > started_before, "the service to start")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=30)
            self.proc = None

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.tmp_path / "mailbot.db") as conn:
            return conn.execute(sql).fetchall()

    def form(self, sender: str, name: str) -> None:
        event = load_settings(self.config).event("opole")
        self.dovecot.append(
            "INBOX",
            mail(sender, "Zgłoszenie", "W załączeniu zgłoszenie.", when=dt.datetime.now(dt.UTC),
                 form=form_docx(event, [(name, sender)])),
        )


@pytest.fixture
def service(tmp_path: Path, dovecot: Any, smtp_server: Any) -> Iterator[Service]:
    svc = Service(tmp_path, dovecot, smtp_server)
    try:
        yield svc
    finally:
        svc.kill()
        assert dovecot.password not in svc.log()


def acks_to(smtp: Any, address: str) -> list[Any]:
    return [m for m in smtp.messages() if m.recipients[0] == address and m.message["X-Mailbot-Kind"] == "ack"]


def test_the_service_answers_a_form_survives_a_dovecot_restart_and_stops_cleanly(
    service: Service, dovecot: Any, smtp_server: Any
) -> None:
    service.start()
    service.form("anna@gmina-a.example.pl", "Anna Kowalska")
    wait_for(lambda: acks_to(smtp_server, "anna@gmina-a.example.pl"), "the first acknowledgement",
             log=service.log_path)

    dovecot.restart()  # the IDLE connection drops; the service reconnects
    service.form("bartosz@gmina-b.example.pl", "Bartosz Wiśniewski")
    wait_for(lambda: acks_to(smtp_server, "bartosz@gmina-b.example.pl"), "an acknowledgement after the restart",
             log=service.log_path)

    assert service.stop() == 0
    log = service.log()
    assert "stopping" in log and "Traceback" not in log
    assert service.query("SELECT count(*) FROM registration") == [(2,)]
    assert dovecot.list_folder("INBOX") == []
    # The job schedule is in the database, for the next start.
    jobs = dict(service.query("SELECT id, next_run_time FROM apscheduler_jobs"))
    assert set(jobs) == {"outbox", "digest", "purge"} and all(jobs.values())


def test_sigterm_during_a_pass_loses_nothing_and_a_restart_finishes_the_work(
    service: Service, dovecot: Any, smtp_server: Any
) -> None:
    people = [(f"osoba{i}@gmina-{i}.example.pl", f"Osoba Numer{i}") for i in range(6)]
    for address, name in people:
        service.form(address, name)
    service.start()
    wait_for(lambda: service.query("SELECT count(*) FROM inbound_message")[0][0] >= 1, "the first message")
    assert service.stop() == 0  # mid-pass: the message in hand is finished and filed
    handled = service.query("SELECT count(*) FROM inbound_message WHERE filed")[0][0]
    assert service.query("SELECT count(*) FROM inbound_message WHERE NOT filed") == [(0,)]
    assert len(dovecot.list_folder("INBOX")) == len(people) - handled

    service.start()
    wait_for(lambda: len(dovecot.list_folder("INBOX")) == 0, "the rest of the inbox", log=service.log_path)
    wait_for(lambda: all(acks_to(smtp_server, a) for a, _ in people), "every acknowledgement", log=service.log_path)
    assert service.stop() == 0
    assert service.query("SELECT count(*) FROM registration") == [(len(people),)]
    every = [m.recipients[0] for m in smtp_server.messages()]
    assert sorted(every) == sorted(a for a, _ in people)  # each exactly once


def test_sighup_reloads_the_config_and_keeps_the_old_one_if_the_new_is_broken(
    service: Service, smtp_server: Any
) -> None:
    service.start()
    good = service.config.read_text(encoding="utf-8")
    service.config.write_text(good.replace("capacity = 50", "capacity = -1"), encoding="utf-8")
    service.signal(signal.SIGHUP)
    wait_for(lambda: "reload failed" in service.log(), "the broken config to be reported")
    assert "events[opole].capacity" in service.log()

    service.config.write_text(good.replace('signature = "Zespół organizacyjny"', 'signature = "Biuro konferencji"'),
                              encoding="utf-8")
    service.signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in service.log(), "the new config")
    service.form("celina@gmina-c.example.pl", "Celina Dąbrowska")
    (ack,) = wait_for(lambda: acks_to(smtp_server, "celina@gmina-c.example.pl"), "an acknowledgement")
    assert "Biuro konferencji" in ack.message.get_body(("plain",)).get_content()
    assert service.stop() == 0


def test_a_digest_that_fell_due_while_the_service_was_down_is_sent_when_it_returns(
    service: Service, smtp_server: Any
) -> None:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    service.start()
    assert service.stop() == 0
    # While it is down, this morning's digest time passes: move the stored job's next
    # run into the past through the job store, as the clock would have.
    store = SQLAlchemyJobStore(url=f"sqlite:///{service.tmp_path / 'mailbot.db'}", tablename="apscheduler_jobs")
    job = store.lookup_job("digest")
    assert job is not None
    job.next_run_time = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    store.update_job(job)
    store.engine.dispose()
    assert smtp_server.messages() == []

    service.start()
    wait_for(lambda: [m for m in smtp_server.messages() if m.message["X-Mailbot-Kind"] == "digest"],
             "the missed digest", log=service.log_path)
    assert service.stop() == 0
    (digest,) = [m for m in smtp_server.messages() if m.message["X-Mailbot-Kind"] == "digest"]
    assert digest.recipients == ["opole@partnerstwa.example.pl"]
    (next_run,) = service.query("SELECT next_run_time FROM apscheduler_jobs WHERE id = 'digest'")[0]
    assert next_run > dt.datetime.now(dt.UTC).timestamp()  # tomorrow's, not the missed one again


_RUNS: list[float] = []


def _scheduled_job() -> None:
    """A job the persistent store can name (module:function)."""
    _RUNS.append(time.monotonic())


def test_a_job_store_write_that_fails_does_not_stop_the_scheduled_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk while APScheduler records a job's next run used to end its thread:
    no outbox, digest or purge job ran again until a restart."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from sqlalchemy.exc import OperationalError

    from mailbot.daemon import JobStore
    from mailbot.store.db import make_engine

    store = JobStore(engine=make_engine(f"sqlite:///{tmp_path / 'jobs.db'}"), tablename="jobs")
    monkeypatch.setattr(JobStore, "RETRY_S", 0.05)
    failures = [3]
    real_update = SQLAlchemyJobStore.update_job

    def update_on_a_full_disk(self: Any, job: Any) -> None:
        if failures[0] > 0:
            failures[0] -= 1
            raise OperationalError("UPDATE jobs", {}, sqlite3.OperationalError("database or disk is full"))
        real_update(self, job)

    monkeypatch.setattr(SQLAlchemyJobStore, "update_job", update_on_a_full_disk)
    _RUNS.clear()
    scheduler = BackgroundScheduler(jobstores={"default": store}, job_defaults={"coalesce": True})
    scheduler.start()
    try:
        scheduler.add_job(_scheduled_job, "interval", seconds=0.2, id="outbox")
        wait_for(lambda: failures[0] == 0 and len(_RUNS) >= 4, "the job to run on after the failed writes")
        assert scheduler._thread is not None and scheduler._thread.is_alive()
    finally:
        scheduler.shutdown(wait=False)
