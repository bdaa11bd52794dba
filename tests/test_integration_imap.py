"""End to end against real servers: Dovecot over IMAPS in, an SMTP server process out.

Runs the real command line (`mailbot run --once`) with the mailbox and outbox given as
URLs, then looks at the database, the IMAP folders and what the SMTP server received.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailbot.app import event_header
from mailbot.config import load_settings
from mailbot.samples import Sample, demo_messages

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "config" / "demo.toml"
NOW = "2016-04-01T09:00"


def samples() -> dict[str, Sample]:
    settings = load_settings(DEMO)
    made = demo_messages(
        event_header(settings.event("opole-2016")),
        organiser_address=settings.outbox.from_address,
        base_time=dt.datetime(2016, 4, 1, 9, 0),
        other_event=event_header(settings.event("lublin-2016")),
    )
    return {s.name: s for s in made}


def run_once(
    tmp_path: Path, dovecot: Any, smtp: Any, inbox: str = "INBOX", now: str = NOW
) -> subprocess.CompletedProcess[str]:
    imap_url = f"imaps://{dovecot.user}@{dovecot.host}:{dovecot.port}/{inbox}?ca_file={dovecot.ca_file}"
    smtp_url = f"smtp://{smtp.host}:{smtp.port}?ca_file={smtp.ca_file}"
    proc = subprocess.run(
        [
            sys.executable, "-m", "mailbot", "run", "--once", "--config", str(DEMO),
            "--inbox", imap_url, "--outbox", smtp_url,
            "--db", f"sqlite:///{tmp_path / 'mailbot.db'}", "--now", now,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "MAILBOT_IMAP_PASSWORD": dovecot.password},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert dovecot.password not in proc.stderr + proc.stdout
    return proc


def query(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / "mailbot.db") as conn:
        return conn.execute(sql).fetchall()


def test_a_pass_registers_files_and_replies_through_real_servers(tmp_path: Path, dovecot: Any, smtp_server: Any) -> None:
    mail = samples()
    for name in ("a_complete_table", "c_incomplete", "d_no_attachment", "i_auto_reply", "j_bounce"):
        dovecot.append("INBOX", mail[name].data)

    run_once(tmp_path, dovecot, smtp_server)

    assert query(tmp_path, "SELECT outcome, count(*) FROM inbound_message GROUP BY outcome ORDER BY outcome") == [
        ("ignored", 2), ("needs_review", 1), ("registered", 2),
    ]
    assert query(tmp_path, "SELECT institution_name, status FROM registration ORDER BY id") == [
        ("Urząd Miejski w Brzezinie Opolskiej", "confirmed"),
        ("Urząd Gminy Lipowiec Opolski", "incomplete"),
    ]
    assert query(tmp_path, "SELECT count(*) FROM participant") == [(4,)]
    assert query(tmp_path, "SELECT count(*) FROM inbound_message WHERE NOT filed") == [(0,)]

    assert dovecot.list_folder("INBOX") == []
    assert len(dovecot.list_folder("Processed")) == 2
    assert len(dovecot.list_folder("Needs-Review")) == 1
    assert len(dovecot.list_folder("Ignored")) == 2
    assert not any(m.seen for m in dovecot.list_folder("Processed"))  # fetched with BODY.PEEK

    received = smtp_server.messages()
    # a: the sender and her colleague; c: the sender asked to complete, her colleague
    # acknowledged; d: the blank form; the auto-reply and the bounce: nothing.
    assert sorted((m.message["X-Mailbot-Kind"], m.recipients[0]) for m in received) == [
        ("ack", "k.wrobel@um-brzezina.example.pl"),
        ("ack", "r.kaczmarek@ug-lipowiec.example.pl"),
        ("ack", "t.lis@um-brzezina.example.pl"),
        ("incomplete", "j.mazur@ug-lipowiec.example.pl"),
        ("no_form", "p.sikora@ug-wierzbiecin.example.pl"),
    ]
    ack = next(m for m in received if m.recipients == ["k.wrobel@um-brzezina.example.pl"])
    assert ack.tls  # STARTTLS, certificate verified against the test CA
    assert "OPO-" in ack.message["Subject"]
    no_form = next(m for m in received if m.message["X-Mailbot-Kind"] == "no_form")
    assert no_form.message.get_content_type() == "multipart/mixed"


def test_a_second_pass_and_a_uidvalidity_change_register_nothing_twice(
    tmp_path: Path, dovecot: Any, smtp_server: Any
) -> None:
    mail = samples()
    for name in ("a_complete_table", "b_complete_controls"):
        dovecot.append("Zgloszenia", mail[name].data)
    run_once(tmp_path, dovecot, smtp_server, inbox="Zgloszenia")
    run_once(tmp_path, dovecot, smtp_server, inbox="Zgloszenia")

    # The folder is recreated (new UIDVALIDITY) and the same mail lands in it again.
    old_validity = dovecot.uidvalidity("Zgloszenia")
    dovecot.delete_folder("Zgloszenia")
    for name in ("a_complete_table", "b_complete_controls"):
        dovecot.append("Zgloszenia", mail[name].data)
    assert dovecot.uidvalidity("Zgloszenia") != old_validity
    run_once(tmp_path, dovecot, smtp_server, inbox="Zgloszenia")

    assert query(tmp_path, "SELECT count(*) FROM registration") == [(2,)]
    assert query(tmp_path, "SELECT times_seen FROM inbound_message ORDER BY id") == [(2,), (2,)]
    assert len(smtp_server.messages()) == 5  # a: 2 people, b: 3, each acknowledged once
    assert dovecot.list_folder("Zgloszenia") == []
    assert len(dovecot.list_folder("Processed")) == 4


def test_replies_wait_in_the_outbox_while_the_smtp_server_is_down(
    tmp_path: Path, dovecot: Any, smtp_server: Any
) -> None:
    dovecot.append("INBOX", samples()["a_complete_table"].data)
    smtp_server.stop()
    try:
        proc = run_once(tmp_path, dovecot, smtp_server)
    finally:
        smtp_server.start()
    assert "retrying 1" in proc.stderr and "1 left for the next run" in proc.stderr
    assert query(tmp_path, "SELECT status, attempts FROM outbound_mail ORDER BY id") == [("retry", 0), ("queued", 0)]
    assert dovecot.list_folder("INBOX") == []  # the message itself was handled
    assert smtp_server.messages() == []

    run_once(tmp_path, dovecot, smtp_server, now="2016-04-01T09:05")  # the retry is due
    assert query(tmp_path, "SELECT status, attempts FROM outbound_mail") == [("sent", 1), ("sent", 1)]
    assert len(smtp_server.messages()) == 2
