"""The command line follows the conventions docs/cli.md promises: --version, -v/-q on
every command, clean --help, distinct exit codes, --json, read-only commands that create
nothing, one line per event in the output, 1-based participant numbers, and a manual
that cannot drift from --help."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailbot import __version__, clidoc
from mailbot import review as rv
from mailbot.cli import ExitCode, app
from tests.conversation import Conversation, settings_for
from tests.test_review import ANNA, JAN, SECRETARY, at, kinds, send_form
from tests.test_status import conversation

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "config" / "demo.toml"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Commands run in-process set up logging on the runner's streams; undo it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def mailbot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailbot", *args], capture_output=True, text=True, cwd=cwd, timeout=300,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(cwd)},
    )


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"mailbot {__version__}"


@pytest.mark.parametrize("width", [80, 200])
def test_every_commands_help_is_clean_and_offers_verbose_and_quiet(width: int) -> None:
    helps = dict(clidoc.commands(width))
    groups = {"mailbot", "mailbot db", "mailbot review"}
    assert {"mailbot status", "mailbot review fix", "mailbot db upgrade"} <= set(helps)
    for name, text in helps.items():
        assert "<bool>" not in text, name
        assert all(len(line) <= width for line in text.splitlines()), name
        # Short help in command lists is a whole sentence, never cut off with "...".
        assert not any(line.rstrip().endswith("...") and "  " in line.strip() for line in text.splitlines()), name
        if name not in groups:
            assert "-v, --verbose" in text and "-q, --quiet" in text, name
    root = helps["mailbot"]
    assert "--install-completion" in root and "--show-completion" in root and "--version" in root
    assert "Exit status" in root
    assert "--inbox" not in helps["mailbot export"] and "--outbox" not in helps["mailbot export"]
    assert "--json" not in helps["mailbot parse"] and "--provenance" in helps["mailbot parse"]
    for name in ("mailbot status", "mailbot review list", "mailbot review show"):
        assert "--json" in helps[name], name
    for name in ("mailbot status", "mailbot run", "mailbot remind", "mailbot digest"):
        assert "--now ISO" in helps[name], name
    assert "--add" in helps["mailbot review fix"] and "numbered from 1" in helps["mailbot review fix"]


def test_docs_cli_md_matches_the_help_of_every_command() -> None:
    checked_in = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert checked_in == clidoc.render(), "docs/cli.md is out of date: run `python -m mailbot.clidoc`"


def test_status_without_a_database_says_so_and_creates_nothing(tmp_path: Path) -> None:
    # demo.toml's state_dir is relative: run from an empty directory.
    for command in (["status"], ["review", "list"], ["review", "show", "1"], ["export", "--format", "json"]):
        proc = mailbot(*command, "--config", str(DEMO), cwd=tmp_path)
        assert proc.returncode == ExitCode.NOT_FOUND, (command, proc.stderr)
        assert "no database at" in proc.stderr and "mailbot db upgrade" in proc.stderr
        assert list(tmp_path.iterdir()) == [], command


def test_exit_codes_are_distinct(tmp_path: Path) -> None:
    conv = conversation(tmp_path)
    db = ["--config", str(DEMO), "--db", conv.settings.db_url]
    assert runner.invoke(app, ["status", "--no-such-option"]).exit_code == ExitCode.USAGE
    assert runner.invoke(app, ["status", "-v", "-q", *db]).exit_code == ExitCode.USAGE
    assert runner.invoke(app, ["status", "--now", "yesterday", *db]).exit_code == ExitCode.USAGE
    assert runner.invoke(app, ["status", "--config", str(tmp_path / "none.toml")]).exit_code == ExitCode.USAGE
    shown = runner.invoke(app, ["review", "show", "999", *db])
    assert shown.exit_code == ExitCode.NOT_FOUND and "no message '999'" in shown.stderr
    for command in (["export", "--event", "gdansk-2016", *db], ["digest", "--dry-run", "--event", "gdansk-2016", *db],
                    ["form", "--event", "gdansk-2016", "-o", str(tmp_path / "f.docx"), "--config", str(DEMO)]):
        result = runner.invoke(app, command)
        assert result.exit_code == ExitCode.NOT_FOUND and "opole-2016" in result.stderr, command
    (item,) = json.loads(runner.invoke(app, ["review", "list", "--json", *db]).stdout)
    assert runner.invoke(app, ["review", "reject", str(item["id"]), *db]).exit_code == ExitCode.OK
    again = runner.invoke(app, ["review", "reject", str(item["id"]), *db])
    assert again.exit_code == ExitCode.FAILED and "already rejected" in again.stderr


def test_status_and_review_print_json_with_the_documented_keys(tmp_path: Path) -> None:
    conv = conversation(tmp_path)
    db = ["--config", str(DEMO), "--db", conv.settings.db_url]
    result = runner.invoke(app, ["status", "--json", "--now", "2016-04-01T10:00", "--address",
                                 "celina@gmina-c.example.pl", *db])
    assert result.exit_code == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["now"] == "2016-04-01T10:00:00+02:00"
    assert set(status) == {"now", "service", "mailboxes", "messages_today", "review_open", "unfiled",
                           "temporary_errors", "outbox", "oldest_unsent_at", "last_delivery_error", "jobs",
                           "events", "unannounced_changes", "address"}
    assert status["service"] == {"leader": None, "standbys": []} and status["temporary_errors"] == 0
    assert status["messages_today"] == {"needs_review": 1, "registered": 2} and status["review_open"] == 1
    opole = next(e for e in status["events"] if e["key"] == "opole-2016")
    assert (opole["seated"], opole["waiting"], opole["date"]) == (1, 1, "2016-04-18")
    assert [m["kind"] for m in status["address"]["outbound"]] == ["waitlist"]
    # --now moves "today": a day later nothing arrived.
    later = json.loads(runner.invoke(app, ["status", "--json", "--now", "2016-04-02T10:00", *db]).stdout)
    assert later["messages_today"] == {}

    (item,) = json.loads(runner.invoke(app, ["review", "list", "--json", *db]).stdout)
    assert set(item) == {"id", "ref", "received_at", "sender", "subject", "outcome", "reason", "resolution"}
    detail = json.loads(runner.invoke(app, ["review", "show", "--json", item["ref"], *db]).stdout)
    assert detail["item"] == item and [r["kind"] for r in detail["replies"]] == ["no_form"]
    assert {"attachments", "registrations", "history", "purged"} <= set(detail)


def test_remind_prints_each_line_once_and_no_library_chatter(tmp_path: Path) -> None:
    conv = conversation(tmp_path)
    db = ["--config", str(DEMO), "--db", conv.settings.db_url, "--outbox", f"maildir:{tmp_path / 'sent'}"]
    # demo.toml has more seats than the conversation's event: Celina is promoted too.
    proc = mailbot("remind", *db, "--now", "2016-04-11T12:00", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    queued = proc.stdout.splitlines()
    assert "queued reminder → anna@gmina-a.example.pl" in queued and "queued promoted → celina@gmina-c.example.pl" in queued
    assert all(line.startswith("queued ") for line in queued) and len(set(queued)) == len(queued)
    assert "alembic" not in proc.stderr and "INFO" not in proc.stderr and "queued " not in proc.stderr
    n = len(queued)
    assert proc.stderr.strip() == f"{n} mail(s) queued; sent {n}, retrying 0, failed 0"
    # -q: only the command's own output; -v: the log too, still without Alembic.
    quiet = mailbot("remind", "-q", *db, "--now", "2016-04-17T12:00", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout.startswith("queued reminder")
    verbose = mailbot("db", "upgrade", "-v", "--config", str(DEMO), "--db", conv.settings.db_url, cwd=tmp_path)
    assert verbose.returncode == 0 and "alembic" not in verbose.stderr


def test_review_numbers_participants_from_1_and_fix_adds_only_with_add(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    send_form(conv, SECRETARY, [ANNA, (JAN[0], None)], at(1))
    (first,) = conv.run(at(1)).results
    conv.sent()
    app_ = conv.app(at(2))
    (reg,) = rv.show(app_.ingest, first.ref).registrations
    assert [p.number for p in reg.participants] == [1, 2]
    shown = rv.render_show(rv.show(app_.ingest, first.ref))
    assert "participants[1]: Anna Kowalska" in shown and "participants[2]: Jan Nowak" in shown
    assert "problem participants[2].email (missing)" in shown  # the contract's [1], shown as people count
    with pytest.raises(rv.ReviewUsageError, match="with --add"):
        rv.fix(app_.ingest, first.ref, ["participants[3].full_name=Ewa Lis"])
    result = rv.fix(app_.ingest, first.ref, [f"participants[2].email={JAN[1]}", "participants[3].full_name=Ewa Lis",
                                             "participants[3].email=ewa@testowo.example.pl"], add=True)
    assert "ack → ewa@testowo.example.pl" in result.replies
    conv.run(at(2))
    assert ("ack", "ewa@testowo.example.pl") in kinds(conv.sent())
    (reg,) = rv.show(app_.ingest, first.ref).registrations
    assert [(p.number, p.full_name) for p in reg.participants][-1] == (3, "Ewa Lis")


def test_check_config_runs_the_config_checker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[Path | None, bool]] = []

    def check_command(config: Path | None, *, connect: bool = False, out: object, err: object) -> int:
        calls.append((config, connect))
        return 7

    fake = types.ModuleType("mailbot.configcheck")
    fake.check_command = check_command  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mailbot.configcheck", fake)
    result = runner.invoke(app, ["check-config", "--config", str(DEMO), "--connect"])
    assert result.exit_code == 7 and calls == [(DEMO, True)]

