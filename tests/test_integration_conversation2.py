"""Conversation II (issue 12) through real servers: mail arrives in Dovecot over IMAPS,
mailbot's mails leave through the SMTP sink, and the real command line runs at chosen
moments (`mailbot run --once`, `mailbot digest`), as cron or the daemon would.

One registration period covers items 1, 3, 4 and 8 of the issue: last month's form in a
mail naming this month's conference is registered for it; a withdrawal cancels the
person's calendar entry (same UID, higher SEQUENCE, METHOD:CANCEL); a registered
person's question is answered and forwarded to the organisers; an organiser accepts a
late registration by answering the daily digest with a command and the item's token.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import subprocess
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import icalendar
import pytest

from mailbot.config import load_settings

from tests.conversation import WARSAW, form_docx, mail
from tests.test_integration_conversation import Mailbot as CliMailbot

pytestmark = pytest.mark.integration

OWN = "zgloszenia@partnerstwa.example.pl"
OPOLE_ORGANISERS = "opole@partnerstwa.example.pl"
LUBLIN_ORGANISERS = "lublin@partnerstwa.example.pl"
SECRET_ENV = "MAILBOT_TEST_COMMAND_SECRET"

CONFIG = f"""
timezone = "Europe/Warsaw"
default_event = "opole-2016"
own_addresses = ["{OWN}"]
signature = "Zespół organizacyjny"

[outbox]
from_address = "{OWN}"
from_name = "Konferencja w Opolu"

[digest]
command_secret_env = "{SECRET_ENV}"

[[events]]
key = "lublin-2016"
title = "Współpraca w partnerstwach samorządowych"
city = "Lublin"
date = 2016-03-21
start_time = 11:00:00
venue = "Sala Kolumnowa Lubelskiego Urzędu Wojewódzkiego"
address = "ul. Spokojna 4, 20-914 Lublin"
capacity = 120
registration_deadline = 2016-03-17
organisers = ["{LUBLIN_ORGANISERS}"]

[[events]]
key = "opole-2016"
title = "Współpraca w partnerstwach samorządowych"
city = "Opole"
date = 2016-04-18
start_time = 11:00:00
venue = "Sala Herbowa Urzędu Wojewódzkiego w Opolu"
address = "ul. Piastowska 14, 45-082 Opole"
capacity = 3
registration_deadline = 2016-04-14
organisers = ["{OPOLE_ORGANISERS}"]
"""

ANNA, BARTOSZ = "anna@gmina-a.example.pl", "bartosz@gmina-a.example.pl"
DARIUSZ = "d.wojcik@um-mirow.example.pl"
CELINA = "celina@gmina-c.example.pl"


def at(day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(2016, 4, day, hour, minute, tzinfo=WARSAW)


class Mailbot(CliMailbot):
    config_text = CONFIG
    extra_env = {SECRET_ENV: "integration-secret-" + "x" * 32}

    def __init__(self, tmp_path: Path, dovecot: Any, smtp: Any) -> None:
        super().__init__(tmp_path, dovecot, smtp)
        settings = load_settings(self.config)
        self.opole, self.lublin = settings.event("opole-2016"), settings.event("lublin-2016")

    def digest(self, now: str) -> subprocess.CompletedProcess[str]:
        return self._cli("digest", now=now)

    def db(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.tmp_path / "mailbot.db") as db:
            return db.execute(sql, args).fetchall()

    def subjects(self, folder: str) -> list[str]:
        return sorted(m.subject for m in self.dovecot.list_folder(folder))


def kinds(received: list[Any]) -> list[tuple[str, str]]:
    return sorted((str(m.message["X-Mailbot-Kind"]), m.recipients[0]) for m in received)


def to(received: list[Any], kind: str, address: str) -> EmailMessage:
    (found,) = [m.message for m in received if m.message["X-Mailbot-Kind"] == kind and m.recipients[0] == address]
    assert isinstance(found, EmailMessage)
    return found


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def calendar(message: EmailMessage) -> icalendar.Calendar | None:
    for part in message.iter_attachments():
        if part.get_content_type() == "text/calendar":
            return icalendar.Calendar.from_ical(part.get_payload(decode=True))
    return None


def vevent(message: EmailMessage) -> tuple[str, Any]:
    ics = calendar(message)
    assert ics is not None
    (event,) = ics.walk("VEVENT")
    return str(ics["METHOD"]), event


def test_conversation_ii_through_dovecot_and_smtp(tmp_path: Path, dovecot: Any, smtp_server: Any) -> None:
    bot = Mailbot(tmp_path, dovecot, smtp_server)

    # --- item 1: Anna registers for Opole; Dariusz sends Lublin's form (already held)
    # in a mail naming Opole: he is registered for Opole and the reason says why.
    dovecot.append("INBOX", mail(ANNA, "Zgłoszenie", "W załączeniu zgłoszenie.", when=at(1, 8),
                                 form=form_docx(bot.opole, [("Anna Kowalska", ANNA), ("Bartosz Wiśniewski", BARTOSZ)])))
    dovecot.append("INBOX", mail(DARIUSZ, "Zgłoszenie na konferencję",
                                 "Dzień dobry,\n\nprzesyłam zgłoszenie na konferencję w Opolu "
                                 "(18 kwietnia 2016 r.).\n\nDariusz Wójcik\n", when=at(1, 8, 30),
                                 form=form_docx(bot.lublin, [("Dariusz Wójcik", DARIUSZ)],
                                                institution="Urząd Miejski w Mirowie")))
    bot.run("2016-04-01T09:00")
    first = bot.new_mail()
    assert kinds(first) == [("ack", ANNA), ("ack", BARTOSZ), ("ack", DARIUSZ)]
    assert "Opole" in str(to(first, "ack", DARIUSZ)["Subject"])
    assert bot.db("SELECT r.event_key, r.status FROM registration r WHERE r.institution_name = ?",
                  "Urząd Miejski w Mirowie") == [("opole-2016", "confirmed")]
    ((reason,),) = bot.db("SELECT reason FROM inbound_message WHERE from_addr = ?", DARIUSZ)
    assert "formularz konferencji Lublin, 21 marca 2016 r. (już się odbyła)" in reason
    assert "w treści wiadomości: Opole → zapisano na Opole, 18 kwietnia 2016 r. (opole-2016)" in reason
    method, bartosz_entry = vevent(to(first, "ack", BARTOSZ))
    assert method == "PUBLISH"

    # --- items 3 and 4: Bartosz withdraws, Anna asks a question, both answering their acks.
    bartosz_ack, anna_ack = to(first, "ack", BARTOSZ), to(first, "ack", ANNA)
    dovecot.append("INBOX", mail(BARTOSZ, f"Re: {bartosz_ack['Subject']}", "Niestety rezygnuję.\n\nBartosz",
                                 when=at(3, 8), in_reply_to=str(bartosz_ack["Message-ID"])))
    dovecot.append("INBOX", mail(ANNA, f"Re: {anna_ack['Subject']}",
                                 "Dzień dobry,\n\nczy na miejscu będzie parking dla uczestników?\n\nAnna Kowalska",
                                 when=at(3, 8, 10), in_reply_to=str(anna_ack["Message-ID"])))
    bot.run("2016-04-03T09:00")
    answers = bot.new_mail()
    assert kinds(answers) == [
        ("cancelled", ANNA), ("cancelled", BARTOSZ), ("forwarded_question", OPOLE_ORGANISERS), ("question_received", ANNA),
    ]
    # Item 3: the withdrawn person's entry is cancelled: same UID, a higher SEQUENCE.
    method, cancelled = vevent(to(answers, "cancelled", BARTOSZ))
    assert method == "CANCEL" and str(cancelled["STATUS"]) == "CANCELLED"
    assert str(cancelled["UID"]) == str(bartosz_entry["UID"])
    assert int(cancelled["SEQUENCE"]) > int(bartosz_entry["SEQUENCE"])
    assert calendar(to(answers, "cancelled", ANNA)) is None  # Anna still comes: her entry stays
    assert bot.db("SELECT address, method FROM calendar_sequence WHERE address = ?", BARTOSZ) == [(BARTOSZ, "CANCEL")]
    # Item 4: Anna hears her question was passed on; the organisers can answer her directly.
    received = to(answers, "question_received", ANNA)
    assert received["In-Reply-To"] is not None and "[OPO-" in str(received["Subject"])
    forward = to(answers, "forwarded_question", OPOLE_ORGANISERS)
    assert forward["Reply-To"].addresses[0].addr_spec == ANNA
    assert "> czy na miejscu będzie parking dla uczestników?" in text_of(forward)

    # --- item 8: a form after the deadline waits for the organisers...
    dovecot.append("INBOX", mail(CELINA, "Zgłoszenie", "W załączeniu zgłoszenie.", when=at(15, 8),
                                 form=form_docx(bot.opole, [("Celina Dąbrowska", CELINA)],
                                                institution="Urząd Gminy Celinów")))
    bot.run("2016-04-15T09:00")
    # (The week-before reminders, due since 11 April, go with this first pass after it.)
    assert kinds(bot.new_mail()) == [("closed", CELINA), ("reminder", ANNA), ("reminder", DARIUSZ)]
    ((late_id,),) = bot.db("SELECT id FROM inbound_message WHERE from_addr = ?", CELINA)
    assert bot.db("SELECT status FROM participant WHERE email = ?", CELINA) == [("late",)]

    # ...the morning digest lists it with its commands and token...
    bot.digest("2016-04-16T07:00")
    (digest,) = bot.new_mail()
    assert digest.message["X-Mailbot-Kind"] == "digest" and digest.recipients == [OPOLE_ORGANISERS]
    digest_text = text_of(digest.message)
    tag = re.search(rf"\[#{late_id} ([A-Z2-7]{{10}})\]", digest_text)
    assert tag is not None, digest_text
    assert f"Polecenia: PRZYJMIJ {late_id} | ODRZUĆ {late_id} | POPRAW {late_id} …" in digest_text

    # ...an organiser answers it, quoting it, with PRZYJMIJ: the next pass accepts.
    quoted = "\n".join("> " + line for line in digest_text.splitlines())
    dovecot.append("INBOX", mail(OPOLE_ORGANISERS, f"Re: {digest.message['Subject']}",
                                 f"PRZYJMIJ {late_id}\n\nPozdrawiam\n\nW dniu 16.04.2016 o 07:00 {OWN} pisze:\n{quoted}\n",
                                 when=at(16, 8), in_reply_to=str(digest.message["Message-ID"])))
    bot.run("2016-04-16T09:00")
    accepted = bot.new_mail()
    assert kinds(accepted) == [("ack", CELINA), ("command_result", OPOLE_ORGANISERS)]
    method, celina_entry = vevent(to(accepted, "ack", CELINA))
    assert method == "PUBLISH"  # a seat freed by Bartosz: Celina gets it and her entry
    result = to(accepted, "command_result", OPOLE_ORGANISERS)
    assert f"PRZYJMIJ {late_id}: przyjęte — Celina Dąbrowska ma miejsce" in text_of(result)
    (command,) = [m.email for m in dovecot.list_folder("Processed") if OPOLE_ORGANISERS in str(m.email["From"])]
    assert str(result["In-Reply-To"]).strip() == str(command["Message-ID"]).strip()
    assert bot.db("SELECT status FROM participant WHERE email = ?", CELINA) == [("confirmed",)]
    assert bot.db("SELECT resolution FROM inbound_message WHERE id = ?", late_id) == [("accepted",)]

    # Every message was filed where it belongs, and the inbox is empty.
    assert dovecot.list_folder("INBOX") == []
    assert bot.subjects("Processed") == sorted([
        "Zgłoszenie", "Zgłoszenie na konferencję", f"Re: {bartosz_ack['Subject']}", f"Re: {digest.message['Subject']}",
    ])
    assert bot.subjects("Needs-Review") == sorted([f"Re: {anna_ack['Subject']}", "Zgłoszenie"])
    assert bot.subjects("Ignored") == []

    # A pass later sends nothing more, and nothing was ever sent twice.
    bot.run("2016-04-16T10:00")
    assert bot.new_mail() == []
    ids = [str(m.message["Message-ID"]).strip() for m in smtp_server.messages()]
    assert len(ids) == len(set(ids)) == len(first) + len(answers) + 3 + 1 + len(accepted) == 13
