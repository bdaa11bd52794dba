"""`mailbot status`: the first thing an admin runs when someone says "I got no reply"."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from mailbot.status import collect, render
from tests.conversation import WARSAW, Conversation, form_docx, mail, settings_for

APR1 = dt.datetime(2016, 4, 1, 9, 0, tzinfo=WARSAW)


def conversation(tmp_path: Path) -> Conversation:
    conv = Conversation(settings_for(tmp_path, capacity=1))
    event = conv.settings.event("opole-2016")
    for sender, name in (("anna@gmina-a.example.pl", "Anna Kowalska"), ("celina@gmina-c.example.pl", "Celina Dąbrowska")):
        conv.receive(mail(sender, "Zgłoszenie", "W załączeniu.", when=APR1, form=form_docx(event, [(name, sender)])))
    conv.receive(mail("piotr@gmina-p.example.pl", "Pytanie", "Czy jest parking?", when=APR1))
    conv.run(APR1)
    return conv


def test_status_counts_the_backlog_the_outbox_and_the_seats(tmp_path: Path) -> None:
    conv = conversation(tmp_path)
    app = conv.app(APR1)
    with app.session() as session:
        status = collect(session, conv.settings, APR1 + dt.timedelta(hours=1))
    assert status.mailboxes and status.mailboxes[0].last_error is None
    assert status.outcomes_today == {"registered": 2, "needs_review": 1}
    assert status.review_open == 1 and status.unfiled == 0
    assert status.outbox == {"sent": 3}  # ack, waitlist, no_form
    opole = next(e for e in status.events if e.key == "opole-2016")
    assert (opole.seated, opole.capacity, opole.waiting) == (1, 1, 1)
    tables = dict(render(status, conv.settings, APR1 + dt.timedelta(hours=1)))
    assert ("opole-2016", "2016-04-18", "1/1", "1", "0", "0") in tables["Events"]


def test_status_traces_one_address(tmp_path: Path) -> None:
    conv = conversation(tmp_path)
    db = conv.settings.db_url
    proc = subprocess.run(
        [sys.executable, "-m", "mailbot", "status", "--config", str(Path(__file__).parents[1] / "config" / "demo.toml"),
         "--db", db, "--address", "Celina@gmina-c.example.pl"],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "COLUMNS": "250"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "History of celina@gmina-c.example.pl" in proc.stdout
    assert "registered" in proc.stdout and "waitlist: Lista rezerwowa" in proc.stdout and "sent" in proc.stdout
    assert "(the service has not run yet)" in proc.stdout
