"""A changed event needs a decision (issue 12, item 10): an edit to an event in the config
mails nobody until an organiser runs ``mailbot announce EVENT`` (``--dry-run`` shows who
would get what, ``--silent`` accepts the change without mail). Through the real pipeline:
forms into a Maildir, SQLite, the outbox Maildir read back, the command line in-process
on a config file that the test edits as an organiser would.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from rich.console import Console
from sqlmodel import col, select
from typer.testing import CliRunner, Result

from mailbot.cli import ExitCode, app as cli
from mailbot.config import Settings, load_settings
from mailbot.configcheck import check_command, unannounced_changes
from mailbot.reminders import pending_changes
from mailbot.store.tables import EventState, OutboundMail

from tests.conversation import WARSAW, Conversation, calendar_of, form_docx, kinds, mail, text_of
from tests.test_configcheck import Run

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "config" / "demo.toml"
OPOLE = "opole-2016"  # 2016-04-18 11:00, Sala Herbowa…, reminders 7d and 1d
APR1 = dt.datetime(2016, 4, 1, 9, 0, tzinfo=WARSAW)
ANNA = "anna@gmina-a.example.pl"
BARTOSZ = "bartosz@gmina-a.example.pl"
CELINA = "celina@gmina-c.example.pl"
SECRETARY = "sekretariat@gmina-s.example.pl"
START = 'start_time = 11:00:00\nvenue = "Sala Herbowa'
VENUE = 'venue = "Sala Herbowa Urzędu Wojewódzkiego w Opolu"\naddress = "ul. Piastowska 14'
runner = CliRunner()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Commands run in-process set up logging on the runner's streams; undo it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def at(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2016, 4, day, hour, 0, tzinfo=WARSAW)


class Organiser:
    """The config file as the organisers keep it (demo.toml with paths under tmp_path),
    the running mailbot on it, and the command line on the same file."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "mailbot.toml"
        self.text = (
            DEMO.read_text(encoding="utf-8")
            .replace('state_dir = "demo-output/state"', f'state_dir = "{tmp_path / "state"}"')
            .replace('path = "demo-output/inbox"', f'path = "{tmp_path / "inbox"}"')
            .replace('path = "demo-output/outbox"', f'path = "{tmp_path / "outbox"}"')
        )
        self.path.write_text(self.text, encoding="utf-8")
        self.conv = Conversation(self.settings())

    def settings(self) -> Settings:
        return load_settings(self.path)

    def edit(self, old: str, new: str) -> None:
        """Change the file and reload it, as SIGHUP does for the service."""
        assert self.text.count(old) == 1, old
        self.text = self.text.replace(old, new)
        self.path.write_text(self.text, encoding="utf-8")
        self.conv.settings = self.settings()

    def register(self, sender: str, people: list[tuple[str, str | None]], when: dt.datetime) -> None:
        event = self.conv.settings.event(OPOLE)
        self.conv.receive(mail(sender, "Zgłoszenie na konferencję", "W załączeniu zgłoszenie.", when=when,
                               form=form_docx(event, people)))

    def mailbot(self, *args: str, now: dt.datetime) -> Result:
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        try:
            return runner.invoke(cli, [*args, "--config", str(self.path), "--now", now.isoformat()])
        finally:  # the command logs to the runner's streams, closed once it returns
            root.handlers[:] = handlers
            root.setLevel(level)

    def changed_rows(self) -> list[OutboundMail]:
        with self.conv.app(self.conv.now).session() as s:
            return list(s.exec(select(OutboundMail).where(OutboundMail.kind == "changed")
                               .order_by(col(OutboundMail.id))).all())


def started(tmp_path: Path) -> tuple[Organiser, list[EmailMessage]]:
    """Anna registers herself and Bartosz; the secretary registers Celina (no seat of
    her own: she is not the secretary). Everyone is seated and acknowledged."""
    org = Organiser(tmp_path)
    org.register(ANNA, [("Anna Kowalska", ANNA), ("Bartosz Wiśniewski", BARTOSZ)], APR1)
    org.register(SECRETARY, [("Celina Dąbrowska", CELINA)], APR1 + dt.timedelta(minutes=1))
    org.conv.run(APR1 + dt.timedelta(minutes=2))
    acks = org.conv.sent()
    assert kinds(acks) == [("ack", ANNA), ("ack", BARTOSZ), ("ack", CELINA), ("ack", SECRETARY)]
    return org, acks


def to(mails: list[EmailMessage], address: str) -> EmailMessage:
    (found,) = [m for m in mails if str(m["To"].addresses[0].addr_spec) == address]
    return found


def vevent(message: EmailMessage) -> object:
    cal = calendar_of(message)
    assert cal is not None, f"no calendar in {message['X-Mailbot-Kind']} to {message['To']}"
    (event,) = cal.walk("VEVENT")
    return event


def test_an_edited_event_mails_nobody_on_later_passes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    org, _ = started(tmp_path)
    org.edit(START, START.replace("11:00", "10:00"))
    with caplog.at_level(logging.WARNING, logger="mailbot.reminders"):
        for day in (5, 6, 7):
            org.conv.run(at(day))
    assert org.conv.sent() == [] and org.changed_rows() == []
    # Said once in the log, not on every pass.
    logged = [r.getMessage() for r in caplog.records if "mailbot announce opole-2016" in r.getMessage()]
    assert len(logged) == 1 and "Godzina rozpoczęcia: 11:00 → 10:00" in logged[0]
    # It waits for a decision, as the lead's status and digest can ask.
    with org.conv.app(at(7)).session() as s:
        (pending,) = pending_changes(s, org.conv.settings, at(7))
        state = s.get(EventState, OPOLE)
        assert state is not None and state.sequence == 0  # nothing announced
    assert pending.event.key == OPOLE and pending.people == 3
    assert [str(c) for c in pending.changes] == ["Godzina rozpoczęcia: 11:00 → 10:00"]
    assert {r.address for r in pending.recipients} == {ANNA, BARTOSZ, CELINA, SECRETARY}


def test_mails_sent_meanwhile_show_the_configured_details_and_reminders_go_out(tmp_path: Path) -> None:
    org, _ = started(tmp_path)
    org.edit(START, START.replace("11:00", "10:00"))
    org.conv.run(at(5))
    # A late registrant's acknowledgement states the new start, calendar entry included.
    org.register("dorota@gmina-d.example.pl", [("Dorota Zawadzka", "dorota@gmina-d.example.pl")], at(6))
    org.conv.run(at(6))
    (ack,) = org.conv.sent()
    assert ack["X-Mailbot-Kind"] == "ack" and "10:00" in text_of(ack) and "11:00" not in text_of(ack)
    assert vevent(ack).decoded("DTSTART") == dt.datetime(2016, 4, 18, 10, 0, tzinfo=WARSAW)  # type: ignore[attr-defined]
    # The pending change holds no reminder back: the 7-day one goes at 10:00 on the 11th.
    org.conv.run(dt.datetime(2016, 4, 11, 10, 0, tzinfo=WARSAW))
    week = org.conv.sent()
    assert kinds(week) == [("reminder", a) for a in (ANNA, BARTOSZ, CELINA, "dorota@gmina-d.example.pl")]
    assert all("10:00" in text_of(m) for m in week)
    assert org.changed_rows() == []


def test_dry_run_lists_each_address_and_the_changes_and_queues_nothing(tmp_path: Path) -> None:
    org, _ = started(tmp_path)
    org.edit(START, START.replace("11:00", "10:00"))
    org.conv.run(at(5))
    result = org.mailbot("announce", OPOLE, "--dry-run", now=at(5))
    assert result.exit_code == ExitCode.OK, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("opole-2016: changed since participants were told (2016-04-01 09:02)")
    assert "  Godzina rozpoczęcia: 11:00 → 10:00" in lines
    assert 'would queue 4 "changed" mail(s) about 3 seated:' in lines
    assert f"  {ANNA}: Anna Kowalska, Bartosz Wiśniewski; calendar entry" in lines
    assert f"  {BARTOSZ}: Bartosz Wiśniewski; calendar entry" in lines
    assert f"  {CELINA}: Celina Dąbrowska; calendar entry" in lines
    assert f"  {SECRETARY}: Celina Dąbrowska" in lines  # registered her: no entry of their own
    assert "dry run: nothing queued" in result.stderr
    assert org.changed_rows() == [] and org.conv.sent() == []
    silent = org.mailbot("announce", OPOLE, "--dry-run", "--silent", now=at(5))
    assert silent.exit_code == ExitCode.OK and "would record these as announced and mail nobody" in silent.stdout
    org.conv.run(at(6))
    assert org.conv.sent() == [] and org.changed_rows() == []
    with org.conv.app(at(6)).session() as s:
        assert len(pending_changes(s, org.conv.settings, at(6))) == 1


def test_announce_queues_one_changed_per_address_with_a_higher_sequence_once(tmp_path: Path) -> None:
    org, acks = started(tmp_path)
    org.edit(START, START.replace("11:00", "10:00"))
    org.conv.run(at(5))
    result = org.mailbot("announce", OPOLE, now=at(5))
    assert result.exit_code == ExitCode.OK, result.stderr
    assert {line for line in result.stdout.splitlines() if line.startswith("queued")} == {
        f"queued changed → {a}" for a in (ANNA, BARTOSZ, CELINA, SECRETARY)
    }
    changed = org.conv.sent()  # delivered by the command
    assert kinds(changed) == [("changed", ANNA), ("changed", BARTOSZ), ("changed", CELINA), ("changed", SECRETARY)]
    for address in (ANNA, BARTOSZ, CELINA):
        before, after = vevent(to(acks, address)), vevent(to(changed, address))
        assert str(after["UID"]) == str(before["UID"])  # type: ignore[index]
        assert int(after["SEQUENCE"]) > int(before["SEQUENCE"])  # type: ignore[index]
        assert after.decoded("DTSTART") == dt.datetime(2016, 4, 18, 10, 0, tzinfo=WARSAW)  # type: ignore[attr-defined]
    assert calendar_of(to(changed, SECRETARY)) is None
    body = text_of(to(changed, ANNA))
    assert "11:00" in body and "10:00" in body
    assert [r.dedupe_key for r in org.changed_rows()] == [
        f"changed:{OPOLE}:1:{a}" for a in (ANNA, BARTOSZ, CELINA, SECRETARY)
    ]
    # Once: again, nothing to announce (exit 0), and no pass sends anything either.
    again = org.mailbot("announce", OPOLE, now=at(5, 10))
    assert again.exit_code == ExitCode.OK and "nothing to announce" in again.stdout
    org.conv.run(at(6))
    assert org.conv.sent() == [] and len(org.changed_rows()) == 4
    with org.conv.app(at(6)).session() as s:
        assert pending_changes(s, org.conv.settings, at(6)) == []


def test_silent_records_the_change_without_mail(tmp_path: Path) -> None:
    org, _ = started(tmp_path)
    org.edit(VENUE, VENUE.replace("w Opolu", "w Opolu (I piętro)"))
    org.conv.run(at(5))
    result = org.mailbot("announce", OPOLE, "--silent", now=at(5))
    assert result.exit_code == ExitCode.OK, result.stderr
    assert "Miejsce: Sala Herbowa Urzędu Wojewódzkiego w Opolu → Sala Herbowa Urzędu Wojewódzkiego w Opolu (I piętro)" \
        in result.stdout
    assert "recorded as announced; nobody mailed" in result.stdout
    org.conv.run(at(6))
    assert org.conv.sent() == [] and org.changed_rows() == []
    with org.conv.app(at(6)).session() as s:
        assert pending_changes(s, org.conv.settings, at(6)) == []
        state = s.get(EventState, OPOLE)
        assert state is not None and state.sequence == 0
    # The next file each address gets brings the calendars up to date anyway.
    org.conv.run(dt.datetime(2016, 4, 11, 11, 0, tzinfo=WARSAW))
    reminder = to(org.conv.sent(), ANNA)
    assert "(I piętro)" in str(vevent(reminder)["LOCATION"])  # type: ignore[index]


def test_a_second_change_is_listed_against_the_last_announced_state(tmp_path: Path) -> None:
    org, _ = started(tmp_path)
    org.edit(START, START.replace("11:00", "10:00"))
    assert org.mailbot("announce", OPOLE, now=at(5)).exit_code == ExitCode.OK
    org.conv.sent()
    # Two edits before the next announcement: one back and forth, one for real.
    org.edit(VENUE, VENUE.replace("Sala Herbowa", "Sala Marmurowa"))
    org.conv.run(at(6))
    org.edit('Sala Marmurowa', 'Sala Lustrzana')
    org.conv.run(at(7))
    assert org.conv.sent() == []
    dry = org.mailbot("announce", OPOLE, "--dry-run", now=at(7))
    assert "  Miejsce: Sala Herbowa Urzędu Wojewódzkiego w Opolu → Sala Lustrzana Urzędu Wojewódzkiego w Opolu" \
        in dry.stdout.splitlines()
    assert "Godzina rozpoczęcia" not in dry.stdout  # announced already
    assert org.mailbot("announce", OPOLE, now=at(7)).exit_code == ExitCode.OK
    second = org.conv.sent()
    assert len(second) == 4
    body = text_of(to(second, ANNA))
    assert "Sala Lustrzana" in body and "Sala Marmurowa" not in body and "11:00" not in body
    assert {r.dedupe_key.split(":")[2] for r in org.changed_rows()} == {"1", "2"}
    # A typo fixed silently: the next change is listed against the corrected venue.
    org.edit("Sala Lustrzana", "Sala Lustrzana Urzędu Wojewódzkiego w Opolu,")
    assert org.mailbot("announce", OPOLE, "--silent", now=at(8)).exit_code == ExitCode.OK
    org.edit("start_time = 10:00:00", "start_time = 09:30:00")
    dry = org.mailbot("announce", OPOLE, "--dry-run", now=at(9))
    assert [line for line in dry.stdout.splitlines() if "→" in line] == ["  Godzina rozpoczęcia: 10:00 → 09:30"]


def test_exit_codes_and_nothing_to_announce(tmp_path: Path) -> None:
    org = Organiser(tmp_path)
    # No database yet: said so, nothing created.
    missing = org.mailbot("announce", OPOLE, now=at(5))
    assert missing.exit_code == ExitCode.NOT_FOUND and "no database at" in missing.stderr
    assert not (tmp_path / "state").exists()
    org.register(ANNA, [("Anna Kowalska", ANNA)], APR1)
    org.conv.run(APR1)
    unknown = org.mailbot("announce", "gdansk-2016", now=at(5))
    assert unknown.exit_code == ExitCode.NOT_FOUND and "opole-2016" in unknown.stderr
    for flags in ([], ["--dry-run"], ["--silent"]):
        nothing = org.mailbot("announce", OPOLE, *flags, now=at(5))
        assert nothing.exit_code == ExitCode.OK, (flags, nothing.stderr)
        assert nothing.stdout.strip() == "opole-2016: nothing to announce: no change waits to be told to participants"


def test_raising_the_capacity_still_promotes_by_itself(tmp_path: Path) -> None:
    org = Organiser(tmp_path)
    org.edit("capacity = 9\n", "capacity = 1\n")
    org.register(ANNA, [("Anna Kowalska", ANNA)], APR1)
    org.register(CELINA, [("Celina Dąbrowska", CELINA)], APR1 + dt.timedelta(minutes=1))
    org.conv.run(APR1 + dt.timedelta(minutes=2))
    assert kinds(org.conv.sent()) == [("ack", ANNA), ("waitlist", CELINA)]
    org.edit("capacity = 1\n", "capacity = 2\n")
    org.conv.run(at(5))
    assert kinds(org.conv.sent()) == [("promoted", CELINA)]  # no announcement needed
    with org.conv.app(at(5)).session() as s:
        assert pending_changes(s, org.conv.settings, at(5)) == []


def test_an_edit_nobody_needs_to_hear_about_is_recorded_by_the_pass(tmp_path: Path) -> None:
    org, _ = started(tmp_path)
    # Lublin (no registrations) moves; Opole is edited after its day.
    org.edit('venue = "Sala Kolumnowa', 'venue = "Aula Kolumnowa')
    org.conv.run(at(5))
    org.edit(START, START.replace("11:00", "10:00"))
    org.conv.run(at(19))
    assert org.conv.sent() == []
    with org.conv.app(at(19)).session() as s:
        assert pending_changes(s, org.conv.settings, at(19)) == []
        assert pending_changes(s, org.conv.settings, at(5)) == []  # recorded, not just hidden


def test_check_config_warns_about_an_unannounced_change(tmp_path: Path) -> None:
    org, _ = started(tmp_path)
    assert unannounced_changes(org.conv.settings, at(5)) == []
    org.edit(START, START.replace("11:00", "10:00"))
    org.conv.run(at(5))
    (warning,) = unannounced_changes(org.conv.settings, at(5))
    assert warning.severity == "warning" and warning.path == "events[opole-2016]"
    assert "Godzina rozpoczęcia: 11:00 → 10:00" in warning.message and "3 seated people (4 address(es))" in warning.message
    assert "mailbot announce opole-2016" in warning.hint and "--dry-run" in warning.hint and "--silent" in warning.hint
    run = Run(org.path)  # the real clock: 2016 is long over, nothing to announce
    assert run.status == 0 and "warning" not in run.err
    out, err = io.StringIO(), io.StringIO()
    status = check_command(org.path, out=Console(file=out, width=300, soft_wrap=True, color_system=None),
                           err=Console(file=err, width=300, soft_wrap=True, color_system=None), now=at(5))
    assert status == 0, err.getvalue()
    assert "warning events[opole-2016]: changed since participants were told: Godzina rozpoczęcia: 11:00 → 10:00" \
        in err.getvalue()
    assert "hint: announce it: mailbot announce opole-2016 (or --dry-run" in err.getvalue()
    assert "1 warning(s)" in out.getvalue()
    # No database: nothing to compare, nothing created.
    elsewhere = org.conv.settings.model_copy(update={"state_dir": tmp_path / "nowhere"})
    assert unannounced_changes(elsewhere, at(5)) == []
    assert not (tmp_path / "nowhere").exists()


def test_status_lists_an_edit_waiting_for_announce(tmp_path: Path) -> None:
    org, _ = started(tmp_path)
    org.edit(START, START.replace("11:00", "10:00"))
    org.conv.run(at(5))
    shown = json.loads(org.mailbot("status", "--json", now=at(5)).stdout)
    assert shown["unannounced_changes"] == [
        {"event": OPOLE, "changes": "Godzina rozpoczęcia: 11:00 → 10:00", "seated": 3}
    ]
    text = org.mailbot("status", now=at(5)).stdout
    assert "mailbot announce EVENT" in text and "11:00 → 10:00" in text
    assert org.mailbot("announce", OPOLE, now=at(5)).exit_code == ExitCode.OK
    assert json.loads(org.mailbot("status", "--json", now=at(5)).stdout)["unannounced_changes"] == []
