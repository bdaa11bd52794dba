"""A doubtful address through real servers and the real command line: the form arrives in
Dovecot over IMAPS, `mailbot run --once` reads it with the real form reader, the mails
leave through the SMTP server process. The sender is asked to confirm; nothing goes to
the misread address; the sender's answer settles it and Jan gets his ack, once."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conversation import WARSAW, mail
from tests.test_integration_conversation import Mailbot, kinds

pytestmark = pytest.mark.integration

SENDER = "sekretariat@nysa.example.pl"
READ = "jan.kowalskl@nysa.pl"
MEANT = "jan.kowalski@nysa.pl"
ANNA = "anna.nowak@nysa.example.pl"


def test_a_doubtful_address_is_confirmed_by_the_senders_answer(tmp_path: Path, dovecot: Any, smtp_server: Any) -> None:
    bot = Mailbot(tmp_path, dovecot, smtp_server)
    apr1 = dt.datetime(2016, 4, 1, 9, 0, tzinfo=WARSAW)
    bot.form(SENDER, [("Jan Kowalski", READ), ("Anna Nowak", ANNA)], apr1, institution="Urząd Miejski w Nysie")
    bot.run("2016-04-01T09:05")
    first = bot.new_mail()
    assert kinds(first) == [("ack", ANNA), ("ack", SENDER)]
    assert all(READ not in m.recipients for m in first)
    ack = next(m for m in first if m.recipients[0] == SENDER)
    body = ack.message.get_body(("plain",)).get_content()
    assert f"Jan Kowalski: odczytaliśmy {READ} – czy chodziło o {MEANT}?" in body
    with sqlite3.connect(tmp_path / "mailbot.db") as db:
        assert db.execute("SELECT email, email_check FROM participant WHERE full_name = 'Jan Kowalski'").fetchall() == [
            (READ, "unconfirmed")
        ]

    dovecot.append("INBOX", mail(SENDER, f"Re: {ack.message['Subject']}",
                                 f"Dzień dobry,\n\ntak, chodziło o {MEANT}\n\nPozdrawiam\n\n> {body[:200]}",
                                 when=apr1 + dt.timedelta(days=1), in_reply_to=str(ack.message["Message-ID"])))
    bot.run("2016-04-02T09:05")
    answered = bot.new_mail()
    assert kinds(answered) == [("ack", MEANT), ("updated", SENDER)]
    with sqlite3.connect(tmp_path / "mailbot.db") as db:
        assert db.execute("SELECT email, email_check FROM participant WHERE full_name = 'Jan Kowalski'").fetchall() == [
            (MEANT, "corrected")
        ]
        assert db.execute("SELECT outcome FROM inbound_message ORDER BY id").fetchall() == [
            ("registered",), ("registered",)
        ]

    # The reminder a week before reaches Jan himself now; nothing was ever sent twice.
    bot.remind("2016-04-11T11:00")
    assert kinds(bot.new_mail()) == [("reminder", ANNA), ("reminder", MEANT)]
    every = smtp_server.messages()
    assert all(READ not in m.recipients for m in every)
    assert max(Counter(str(m.message["Message-ID"]) for m in every).values()) == 1
