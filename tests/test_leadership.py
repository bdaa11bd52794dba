"""Several services on one PostgreSQL store: one leads, the others stand by and take over.

A real PostgreSQL (tests/pg.py). The leader holds a session advisory lock; a standby
takes over once that session ends, whether the leader stopped, was killed, or lost its
connection; ``mailbot status`` names the leader. Jobs take turns through job locks, on
PostgreSQL and on SQLite.
"""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from mailbot.leadership import JobBusy, PgLeadership, job_lock, leaders
from mailbot.samples import write_maildir
from mailbot.store import db

try:  # tests/ is a package in some layouts and a plain rootdir-inserted path in others
    from tests import pg
    from tests.test_pipeline import make_settings, samples_for
except ImportError:
    import pg  # type: ignore[no-redef]
    from test_pipeline import make_settings, samples_for  # type: ignore[no-redef]

postgres_server = pg.postgres_server
postgres_url = pg.postgres_url

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]


def _wait(condition: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def test_one_leads_the_other_stands_by_and_takes_over_when_the_session_ends(postgres_url: str) -> None:
    engine = db.make_engine(postgres_url)
    first, second = PgLeadership(engine), PgLeadership(engine)
    try:
        assert first.try_lead() and first.still_leading()
        assert not second.try_lead() and not second.still_leading()
        (leader,) = leaders(engine)
        assert leader.name.startswith("mailbot leader ") and f"pid {os.getpid()}" in leader.name
        assert [s.name.split(" since")[0] for s in leaders(engine, "standby")] == [
            leader.name.replace("leader", "standby").split(" since")[0]
        ]
        with engine.connect() as admin:  # the leader's session is cut (network, restart)
            admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": leader.backend_pid})
            admin.commit()
        assert not first.still_leading()  # it notices, and must stop working
        assert second.try_lead() and second.still_leading()
        assert not first.try_lead()
        second.release()
        assert first.try_lead()
    finally:
        first.release()
        second.release()
        engine.dispose()


def test_job_locks_make_the_service_and_a_hand_run_command_take_turns(
    postgres_url: str, tmp_path: Path
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'mailbot.db'}"
    for url in (postgres_url, sqlite_url):
        engine = db.make_engine(url)
        try:
            with job_lock(engine, url, "digest"):
                with pytest.raises(JobBusy), job_lock(engine, url, "digest"):
                    pass
                with job_lock(engine, url, "purge"):  # another job is not blocked
                    pass
            with job_lock(engine, url, "digest"):  # released at the end of the block
                pass
        finally:
            engine.dispose()


def _config(tmp_path: Path) -> Path:
    (tmp_path / "inbox").mkdir(exist_ok=True)
    config = tmp_path / "mailbot.toml"
    text_ = (REPO / "config" / "demo.toml").read_text(encoding="utf-8")
    # The shortest poll the config allows: the new leader sees a message dropped after
    # its first pass within seconds.
    text_ = re.sub(r"(?m)^poll_seconds = .*\n", "", text_).replace("[mailbox]\n", "[mailbox]\npoll_seconds = 5\n", 1)
    config.write_text(text_, encoding="utf-8")
    return config


def _service(tmp_path: Path, config: Path, url: str, name: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / f"{name}.log"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "mailbot", "run", "--config", str(config), "--db", url,
            "--inbox", f"maildir:{tmp_path / 'inbox'}", "--outbox", f"maildir:{tmp_path / 'outbox'}",
        ],
        cwd=tmp_path, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    return proc, log


def _read(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""


def test_a_standby_service_takes_over_after_the_leader_is_killed(postgres_url: str, tmp_path: Path) -> None:
    config = _config(tmp_path)
    first, first_log = _service(tmp_path, config, postgres_url, "first")
    second = None
    try:
        _wait(lambda: "mailbot started" in _read(first_log), "the first service to lead")
        second, second_log = _service(tmp_path, config, postgres_url, "second")
        _wait(lambda: "standing by" in _read(second_log), "the second service to stand by")
        assert "mailbot started" not in _read(second_log)

        status = subprocess.run(
            [sys.executable, "-m", "mailbot", "status", "--json", "--config", str(config), "--db", postgres_url],
            capture_output=True, text=True, cwd=tmp_path, timeout=60,
        )
        service = json.loads(status.stdout)["service"]
        assert f"pid {first.pid}" in service["leader"]
        assert len(service["standbys"]) == 1 and f"pid {second.pid}" in service["standbys"][0]

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        _wait(lambda: "taking over" in _read(second_log), "the standby to take over")
        settings = make_settings(tmp_path)
        write_maildir(samples_for(settings)[:1], tmp_path / "inbox")
        _wait(lambda: not list((tmp_path / "inbox" / "new").iterdir()), "the new leader to file the message")
        assert second.poll() is None
        assert "Traceback" not in _read(second_log)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
    assert second is not None and second.returncode == 0
