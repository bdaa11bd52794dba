"""A whole conversation through real servers: forms and replies arrive in Dovecot over
IMAPS, mailbot's mails leave through an SMTP server process. Runs the real command line
(`mailbot run --once`, `mailbot remind`) at chosen moments, as cron or the daemon would."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import icalendar
import pytest

from mailbot.config import load_settings

from tests.conversation import WARSAW, form_docx, mail

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]

CONFIG = """
timezone = "Europe/Warsaw"
default_event = "opole-2016"
own_addresses = ["zgloszenia@partnerstwa.example.pl"]
signature = "Zespół organizacyjny"

[outbox]
from_address = "zgloszenia@partnerstwa.example.pl"
from_name = "Konferencja w Opolu"
bcc = ["archiwum@partnerstwa.example.pl"]

[[events]]
key = "opole-2016"
title = "Współpraca w partnerstwach samorządowych"
city = "Opole"
date = 2016-04-18
start_time = 11:00:00
venue = "Sala Herbowa Urzędu Wojewódzkiego w Opolu"
address = "ul. Piastowska 14, 45-082 Opole"
capacity = 2
registration_deadline = 2016-04-14
"""


class Mailbot:
    """The command line on a test config, against the test Dovecot and SMTP sink."""

    config_text = CONFIG
    extra_env: dict[str, str] = {}

    def __init__(self, tmp_path: Path, dovecot: Any, smtp: Any) -> None:
        self.config = tmp_path / "mailbot.toml"
        self.config.write_text(self.config_text, encoding="utf-8")
        self.tmp_path, self.dovecot, self.smtp = tmp_path, dovecot, smtp
        self.event = load_settings(self.config).event("opole-2016")
        self._seen = 0

    def _cli(self, *args: str, now: str) -> subprocess.CompletedProcess[str]:
        d, s = self.dovecot, self.smtp
        proc = subprocess.run(
            [
                sys.executable, "-m", "mailbot", *args, "--config", str(self.config),
                "--outbox", f"smtp://{s.host}:{s.port}?ca_file={s.ca_file}",
                "--db", f"sqlite:///{self.tmp_path / 'mailbot.db'}", "--now", now,
                *(["--inbox", f"imaps://{d.user}@{d.host}:{d.port}/INBOX?ca_file={d.ca_file}"] if args[0] == "run" else []),
            ],
            cwd=self.tmp_path,
            capture_output=True,
            text=True,
            env={**os.environ, "MAILBOT_IMAP_PASSWORD": d.password, **self.extra_env},
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        return proc

    def run(self, now: str) -> subprocess.CompletedProcess[str]:
        return self._cli("run", "--once", now=now)

    def remind(self, now: str) -> subprocess.CompletedProcess[str]:
        return self._cli("remind", now=now)

    def new_mail(self) -> list[Any]:
        got = self.smtp.messages()
        fresh, self._seen = got[self._seen :], len(got)
        return fresh

    def form(self, sender: str, people: list[tuple[str, str | None]], when: dt.datetime, **kw: str) -> None:
        self.dovecot.append("INBOX", mail(sender, "Zgłoszenie", "W załączeniu zgłoszenie.", when=when,
                                          form=form_docx(self.event, people, **kw)))


def kinds(received: list[Any]) -> list[tuple[str, str]]:
    return sorted((str(m.message["X-Mailbot-Kind"]), m.recipients[0]) for m in received)


def calendar(received: Any) -> icalendar.Calendar:
    for part in received.message.iter_attachments():
        if part.get_content_type() == "text/calendar":
            return icalendar.Calendar.from_ical(part.get_payload(decode=True))
    raise AssertionError("no calendar attached")


def test_a_full_conversation_through_dovecot_and_smtp(tmp_path: Path, dovecot: Any, smtp_server: Any) -> None:
    bot = Mailbot(tmp_path, dovecot, smtp_server)
    apr1 = dt.datetime(2016, 4, 1, 9, 0, tzinfo=WARSAW)
    anna, bartosz, celina = "anna@gmina-a.example.pl", "bartosz@gmina-a.example.pl", "celina@gmina-c.example.pl"

    # Register: everyone on the form gets an acknowledgement with a calendar entry.
    bot.form(anna, [("Anna Kowalska", anna), ("Bartosz Wiśniewski", bartosz)], apr1)
    bot.run("2016-04-01T09:05")
    first = bot.new_mail()
    assert kinds(first) == [("ack", anna), ("ack", bartosz)]
    assert all(m.recipients[1:] == ["archiwum@partnerstwa.example.pl"] for m in first)  # organisers' Bcc
    assert all("Bcc" not in m.message for m in first)
    ics = calendar(first[0])
    assert ics["METHOD"] == "PUBLISH"
    (vevent,) = ics.walk("VEVENT")
    assert vevent.decoded("DTSTART") == dt.datetime(2016, 4, 18, 11, 0, tzinfo=WARSAW)
    assert "Piastowska 14" in str(vevent["LOCATION"])

    # A corrected form: one "updated" mail saying what changed; nobody is acked twice.
    bot.form(anna, [("Anna Kowalska", anna), ("Bartosz Wiśniewski", bartosz)], apr1 + dt.timedelta(hours=2),
             institution="Urząd Gminy Testowo Wielkie")
    bot.run("2016-04-01T11:05")
    (updated,) = bot.new_mail()
    assert updated.message["X-Mailbot-Kind"] == "updated" and updated.recipients[0] == anna
    assert "Urząd Gminy Testowo Wielkie" in updated.message.get_body(("plain",)).get_content()

    # Capacity 2 is full: the next person waits.
    bot.form(celina, [("Celina Dąbrowska", celina)], apr1 + dt.timedelta(days=1))
    bot.run("2016-04-02T09:05")
    assert kinds(bot.new_mail()) == [("waitlist", celina)]

    # Bartosz withdraws by answering his acknowledgement: Celina moves up.
    ack = next(m for m in first if m.recipients[0] == bartosz)
    dovecot.append("INBOX", mail(bartosz, f"Re: {ack.message['Subject']}", "Niestety rezygnuję.\n\nBartosz",
                                 when=apr1 + dt.timedelta(days=2), in_reply_to=str(ack.message["Message-ID"])))
    bot.run("2016-04-03T09:05")
    moved = bot.new_mail()
    assert kinds(moved) == [("cancelled", anna), ("cancelled", bartosz), ("promoted", celina)]
    calendar(next(m for m in moved if m.recipients[0] == celina))

    # An out-of-office reply and a bounce: recorded, never answered.
    dovecot.append("INBOX", mail(celina, "Automatyczna odpowiedź: Zgłoszenie", "Jestem na urlopie.",
                                 when=apr1 + dt.timedelta(days=3), extra=[("Auto-Submitted", "auto-replied")]))
    dovecot.append("INBOX", mail("MAILER-DAEMON@mx.gmina-a.example.pl", "Undelivered Mail Returned to Sender",
                                 f"<{bartosz}>: mailbox unavailable\n\n--- original message ---\n"
                                 f"Message-ID: {ack.message['Message-ID']}\n", when=apr1 + dt.timedelta(days=3),
                                 extra=[("Auto-Submitted", "auto-replied")]))
    bot.run("2016-04-04T09:05")
    assert bot.new_mail() == []
    with sqlite3.connect(tmp_path / "mailbot.db") as db:
        assert db.execute("SELECT address, bouncing FROM address_status WHERE bouncing").fetchall() == [(bartosz, 1)]
        assert db.execute("SELECT auto_reply_count FROM address_status WHERE address = ?", (celina,)).fetchall() == [(1,)]

    # Reminders a week before, to the seated people only, once.
    bot.remind("2016-04-11T11:00")
    week = bot.new_mail()
    assert kinds(week) == [("reminder", anna), ("reminder", celina)]
    bot.remind("2016-04-11T12:00")
    assert bot.new_mail() == []

    # The SMTP server is down during a pass: the ack waits, then goes exactly once.
    bot.form("dorota@gmina-d.example.pl", [("Dorota Zawadzka", "dorota@gmina-d.example.pl")],
             dt.datetime(2016, 4, 12, 8, 0, tzinfo=WARSAW))
    smtp_server.stop()
    try:
        proc = bot.run("2016-04-12T09:00")
    finally:
        smtp_server.start()
    assert "retrying 1" in proc.stderr
    bot.run("2016-04-12T09:10")
    bot.run("2016-04-12T09:20")
    assert kinds(bot.new_mail()) == [("waitlist", "dorota@gmina-d.example.pl")]

    every_id = Counter(str(m.message["Message-ID"]) for m in smtp_server.messages())
    assert max(every_id.values()) == 1  # nothing was ever sent twice
