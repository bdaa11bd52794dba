"""One service per SQLite store: a second `mailbot run` refuses cleanly, and a killed
service never blocks its restart (the kernel drops the lock with the process)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailbot import runlock
from mailbot.errors import AlreadyRunning

REPO = Path(__file__).resolve().parents[1]

CONFIG = """
timezone = "Europe/Warsaw"
default_event = "opole"
own_addresses = ["zgloszenia@partnerstwa.example.pl"]
database_url = "sqlite:///{state}/mailbot.db"
state_dir = "{state}"

[mailbox]
kind = "maildir"
path = "{inbox}"
poll_seconds = 5

[outbox]
kind = "maildir"
path = "{outbox}"
from_address = "zgloszenia@partnerstwa.example.pl"

[[events]]
key = "opole"
title = "Współpraca w partnerstwach samorządowych"
city = "Opole"
date = 2030-04-18
start_time = 11:00:00
venue = "Sala Herbowa"
address = "ul. Piastowska 14, 45-082 Opole"
capacity = 50
organisers = ["opole@partnerstwa.example.pl"]
"""


def _holder(url: str) -> subprocess.Popen[str]:
    """Another process holding the lock until killed."""
    code = (
        "import sys, time; from mailbot import runlock; "
        "runlock.hold(sys.argv[1]); print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_is_refused_with_the_first_ones_pid_until_it_dies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mailbot.db'}"
    first = _holder(url)
    try:
        with pytest.raises(AlreadyRunning, match=f"pid {first.pid}"):
            runlock.hold(url)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    lock = runlock.hold(url)  # the kill released it
    assert lock is not None
    lock.release()


def test_only_sqlite_stores_are_locked() -> None:
    assert runlock.hold("postgresql+psycopg://mailbot@/mailbot") is None
    assert runlock.hold("sqlite:///:memory:") is None


def test_a_second_service_on_the_same_store_refuses_to_start(tmp_path: Path) -> None:
    config = tmp_path / "mailbot.toml"
    config.write_text(
        CONFIG.format(state=tmp_path / "state", inbox=tmp_path / "inbox", outbox=tmp_path / "outbox"), "utf-8"
    )
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "inbox" / sub).mkdir(parents=True)
    command = [sys.executable, "-m", "mailbot", "run", "--config", str(config)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        lock_file = tmp_path / "state" / "mailbot.db.run-lock"
        deadline = time.monotonic() + 60
        while not (lock_file.exists() and lock_file.read_text().strip()) and time.monotonic() < deadline:
            assert first.poll() is None, first.stdout.read() if first.stdout else ""
            time.sleep(0.1)
        second = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert second.returncode == 1
        assert "already serves the database" in second.stdout + second.stderr
        assert first.poll() is None  # the first one is untouched
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
