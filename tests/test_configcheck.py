"""`mailbot check-config` (mailbot.configcheck): every problem in one run, with its TOML
path and a hint; secret files checked without being read; `--connect` logs in to the real
test Dovecot and SMTP sink and reports what they offer."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from mailbot import configcheck
from mailbot.configcheck import check_command

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "config" / "demo.toml"
SECRET = "hunter2-Zaq1@WSX"
EVENT = """
[[events]]
key = "opole-2016"
title = "Współpraca w partnerstwach samorządowych"
city = "Opole"
date = 2016-04-18
venue = "Sala Herbowa"
address = "ul. Piastowska 14"
capacity = "unlimited"
"""


class Run:
    """One check_command call with its exit status and what it printed."""

    def __init__(self, config: Path, *, connect: bool = False) -> None:
        out, err = io.StringIO(), io.StringIO()
        self.status = check_command(
            config,
            connect=connect,
            out=Console(file=out, width=300, soft_wrap=True, color_system=None),
            err=Console(file=err, width=300, soft_wrap=True, color_system=None),
        )
        self.out, self.err = out.getvalue(), err.getvalue()


def write(tmp_path: Path, text: str, name: str = "mailbot.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def secret_file(tmp_path: Path, mode: int = 0o600, name: str = "imap.password") -> Path:
    path = tmp_path / name
    path.write_text(SECRET + "\n")
    path.chmod(mode)
    return path


def imap_config(tmp_path: Path, password_file: Path, **extra: str) -> Path:
    lines = "".join(f"{k} = {v}\n" for k, v in extra.items())
    return write(tmp_path, f"""
[mailbox]
kind = "imap"
host = "imap.example.pl"
username = "zgloszenia@example.pl"
password_file = "{password_file}"
{lines}
[outbox]
from_address = "zgloszenia@example.pl"
{EVENT}""")


def test_the_shipped_configs_pass_in_todays_output_style() -> None:
    demo = Run(DEMO)
    assert demo.status == 0, demo.err
    assert demo.out.strip() == f"{DEMO}: OK — 4 event(s), mailbox maildir, outbox maildir"
    example = Run(REPO / "config" / "mailbot.example.toml")
    assert example.status == 0, example.err  # its credentials are systemd's: notes only
    assert "OK — 4 event(s), mailbox imap, outbox smtp" in example.out
    assert "note mailbox.password_credential" in example.err


@pytest.mark.parametrize(
    ("setting", "path", "expected"),
    [
        ('[outbox]\nfrom_address = "zgloszenia(at)example.pl"', "outbox.from_address", "must have an @-sign"),
        ('own_addresses = ["zgloszenia@example"]\n[outbox]\nfrom_address = "a@example.pl"', "own_addresses[0]", "should have a period"),
        ('[outbox]\nfrom_address = "a@example.pl"\nbcc = ["archiwum"]', "outbox.bcc[0]", "must have an @-sign"),
        ("[outbox]\nkind = \"maildir\"", "outbox.from_address", "required option is missing"),
    ],
)
def test_each_bad_value_that_used_to_pass_is_an_error_with_path_and_hint(
    tmp_path: Path, setting: str, path: str, expected: str
) -> None:
    run = Run(write(tmp_path, setting + "\n" + EVENT))
    assert run.status == 2 and run.out == ""
    assert f"  {path}: " in run.err and expected in run.err
    assert "hint: " in run.err


def test_organisers_and_capacity_are_checked_per_event(tmp_path: Path) -> None:
    event = EVENT.replace('capacity = "unlimited"\n', 'organisers = ["opole at example"]\n')
    run = Run(write(tmp_path, '[outbox]\nfrom_address = "a@example.pl"\n' + event))
    assert run.status == 2
    assert "events[opole-2016].organisers[0]: 'opole at example' is not an e-mail address" in run.err
    assert "events[opole-2016].capacity: required option is missing" in run.err
    assert 'capacity = "unlimited"' in run.err  # the hint shows both spellings


def test_every_kind_of_problem_comes_in_one_run(tmp_path: Path) -> None:
    """Validation, secrets, templates and labels together: nothing waits for the next run."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "ack.txt.j2").write_text("{% set subject %}X{% endset %}{{ evnt.city }}", encoding="utf-8")
    labels = write(tmp_path, "version = 1\n[fields\n", "labels.toml")
    config = write(tmp_path, f"""
templates_dir = "{templates}"
labels_file = "{labels}"
default_event = "gdansk-2016"
[mailbox]
kind = "imap"
host = "imap.example.pl"
username = "zgloszenia@example.pl"
password_file = "{tmp_path / 'missing.password'}"
idel = false
[outbox]
kind = "smtp"
from_address = "zgloszenia(at)example.pl"
{EVENT.replace('capacity = "unlimited"', 'registration_deadline = 2016-04-20')}""")
    run = Run(config)
    assert run.status == 2
    for expected in (
        "mailbox.idel: unknown option `idel`",
        "hint: did you mean `idle`?",
        "outbox.from_address: 'zgloszenia(at)example.pl' is not an e-mail address",
        "outbox: kind = 'smtp' needs host",
        "events[opole-2016].capacity: required option is missing",
        "events[opole-2016].registration_deadline: registration_deadline 2016-04-20 is after the date of event opole-2016",
        "default_event: default_event 'gdansk-2016' is not one of the [[events]] keys",
        f"mailbox.password_file: secret file {tmp_path / 'missing.password'} does not exist",
        "templates_dir: ack: does not render with sample data",
        "labels_file: invalid TOML in label vocabulary",
    ):
        assert expected in run.err, expected
    assert "9 problem(s)" in run.err and run.err.count("hint: ") == 9  # each with a hint


def test_a_missing_password_file_is_an_error_with_what_to_do(tmp_path: Path) -> None:
    run = Run(imap_config(tmp_path, tmp_path / "nope"))
    assert run.status == 2
    assert f"mailbox.password_file: secret file {tmp_path / 'nope'} does not exist" in run.err
    assert "install -m 600" in run.err


@pytest.mark.parametrize(("mode", "who"), [(0o644, "every user on this machine"), (0o640, "its group")])
def test_a_secret_readable_by_others_is_a_warning_and_its_content_is_never_shown(
    tmp_path: Path, mode: int, who: str
) -> None:
    run = Run(imap_config(tmp_path, secret_file(tmp_path, mode)))
    assert run.status == 0, run.err  # it works, but should not stay like this
    assert f"warning mailbox.password_file: secret file {tmp_path / 'imap.password'} is readable by {who}" in run.err
    assert f"chmod 600 {tmp_path / 'imap.password'}" in run.err
    assert "1 warning(s)" in run.out
    assert SECRET not in run.out + run.err


def test_a_private_secret_passes_and_an_empty_one_does_not(tmp_path: Path) -> None:
    ok = Run(imap_config(tmp_path, secret_file(tmp_path)))
    assert ok.status == 0 and ok.err == "", ok.err
    empty = tmp_path / "empty.password"
    empty.touch(mode=0o600)
    run = Run(imap_config(tmp_path, empty))
    assert run.status == 2 and "is empty" in run.err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_secret_is_an_error(tmp_path: Path) -> None:
    run = Run(imap_config(tmp_path, secret_file(tmp_path, 0o000)))
    assert run.status == 2 and "is not readable by" in run.err


def test_a_secret_the_service_user_cannot_read_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """check-config often runs as root; the service runs as mailbot: judge by its rights."""
    other = configcheck._Account("mailbot", os.geteuid() + 4242, frozenset({os.getegid() + 4242}))
    monkeypatch.setattr(configcheck, "_service_account", lambda: other)
    run = Run(imap_config(tmp_path, secret_file(tmp_path, 0o600)))
    assert run.status == 2
    assert "is not readable by mailbot, the user mailbot runs as" in run.err and "chown mailbot" in run.err


def test_secrets_of_an_unused_account_and_unset_sources_are_reported_sensibly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILBOT_TEST_UNSET", raising=False)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    secret_file(tmp_path, 0o600, "smtp-password")
    run = Run(write(tmp_path, f"""
[mailbox]
kind = "imap"
host = "imap.example.pl"
username = "zgloszenia@example.pl"
password_env = "MAILBOT_TEST_UNSET"
[outbox]
kind = "smtp"
host = "smtp.example.pl"
username = "zgloszenia@example.pl"
password_credential = "smtp-password"
from_address = "zgloszenia@example.pl"
{EVENT}"""))
    assert run.status == 2
    assert "mailbox.password_env: environment variable MAILBOT_TEST_UNSET is not set here" in run.err
    assert "outbox" not in run.err  # the credential is there, private, not empty


def test_an_imap_account_without_any_password_source_is_an_error(tmp_path: Path) -> None:
    run = Run(write(tmp_path, f"""
[mailbox]
kind = "imap"
host = "imap.example.pl"
username = "zgloszenia@example.pl"
[outbox]
from_address = "zgloszenia@example.pl"
{EVENT}"""))
    assert run.status == 2 and "mailbox: no password source for the IMAP login" in run.err


def test_a_missing_config_file_says_where_it_looked(tmp_path: Path) -> None:
    run = Run(tmp_path / "nowhere.toml")
    assert run.status == 2 and "not found" in run.err and "mailbot.example.toml" in run.err


def test_the_command_line_uses_it(tmp_path: Path) -> None:
    bad = write(tmp_path, '[mailbox]\nidel = true\n[outbox]\nfrom_address = "a@example.pl"\n' + EVENT)
    proc = subprocess.run(
        [sys.executable, "-m", "mailbot", "check-config", "--config", str(bad)],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 2, proc.stderr
    assert "mailbox.idel" in proc.stderr and "did you mean `idle`?" in proc.stderr


# -- --connect against the real test servers ---------------------------------------------


def connect_config(tmp_path: Path, dovecot: Any, smtp: Any, *, imap_password: str, security: str = "ssl") -> Path:
    imap_pw = tmp_path / "imap.password"
    imap_pw.write_text(imap_password + "\n")
    imap_pw.chmod(0o600)
    smtp_pw = tmp_path / "smtp.password"
    smtp_pw.write_text(smtp.password + "\n")
    smtp_pw.chmod(0o600)
    port = dovecot.port if security == "ssl" else dovecot.starttls_port
    return write(tmp_path, f"""
state_dir = "{tmp_path / 'state'}"
[mailbox]
kind = "imap"
host = "{dovecot.host}"
port = {port}
security = "{security}"
username = "{dovecot.user}"
password_file = "{imap_pw}"
ca_file = "{dovecot.ca_file}"
timeout_seconds = 10
[outbox]
kind = "smtp"
host = "{smtp.host}"
port = {smtp.port}
security = "starttls"
username = "{smtp.user}"
password_file = "{smtp_pw}"
ca_file = "{smtp.ca_file}"
timeout_seconds = 10
from_address = "zgloszenia@example.pl"
{EVENT}""")


@pytest.mark.integration
@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_connect_logs_in_and_reports_what_the_servers_offer_without_touching_mail(
    tmp_path: Path, dovecot: Any, smtp_server: Any, security: str
) -> None:
    run = Run(connect_config(tmp_path, dovecot, smtp_server, imap_password=dovecot.password, security=security),
              connect=True)
    assert run.status == 0, run.err
    mailbox = next(line for line in run.out.splitlines() if line.startswith("mailbox "))
    assert f"{dovecot.user}@{dovecot.host}" in mailbox
    assert "IDLE yes" in mailbox and "MOVE yes" in mailbox and "UIDPLUS yes" in mailbox
    assert ("implicit TLS" if security == "ssl" else "STARTTLS") in mailbox
    assert "PLAIN" in mailbox.split("; AUTH ", 1)[1].split()  # announced before login only
    outbox = next(line for line in run.out.splitlines() if line.startswith("outbox "))
    assert "logged in (password) over STARTTLS" in outbox and "AUTH " in outbox and "PLAIN" in outbox
    assert "database " in run.out and "will be created" in run.out
    # Nothing was touched: no folders created, no mail sent, only one login each.
    assert sorted(dovecot.folders()) == ["INBOX"]
    assert smtp_server.messages() == []
    assert [a.success for a in smtp_server.auth_attempts()] == [True]
    assert not (tmp_path / "state").exists()
    assert dovecot.password not in run.out + run.err and smtp_server.password not in run.out + run.err


@pytest.mark.integration
def test_connect_with_a_wrong_password_exits_1_and_says_what_to_check(
    tmp_path: Path, dovecot: Any, smtp_server: Any
) -> None:
    wrong = "not-" + dovecot.password
    run = Run(connect_config(tmp_path, dovecot, smtp_server, imap_password=wrong), connect=True)
    assert run.status == 1
    assert f"IMAP login as '{dovecot.user}'" in run.err and "was refused" in run.err
    assert "check the username and password" in run.err
    assert "outbox " in run.out  # the other account is still checked and reported
    assert wrong not in run.out + run.err and dovecot.password not in run.out + run.err


@pytest.mark.integration
def test_connect_is_not_attempted_while_the_config_has_errors(tmp_path: Path, dovecot: Any, smtp_server: Any) -> None:
    config = connect_config(tmp_path, dovecot, smtp_server, imap_password=dovecot.password)
    config.write_text(config.read_text(encoding="utf-8").replace('capacity = "unlimited"', ""), encoding="utf-8")
    run = Run(config, connect=True)
    assert run.status == 2
    assert "not attempted" in run.err and "mailbox " not in run.out


def test_the_digest_command_secret_is_checked_like_a_password(tmp_path: Path) -> None:
    from mailbot.configcheck import check_files

    secret = tmp_path / "command-secret"
    assert check_files({"digest": {}}) == []  # optional: no commands in the digest
    (missing,) = check_files({"digest": {"command_secret_file": str(secret)}})
    assert missing.path == "digest.command_secret_file" and missing.severity == "error"
    secret.write_text("s3cret-s3cret-s3cret\n")
    secret.chmod(0o644)
    (loose,) = check_files({"digest": {"command_secret_file": str(secret)}})
    assert loose.severity == "warning" and "chmod 600" in loose.hint
    secret.chmod(0o600)
    assert check_files({"digest": {"command_secret_file": str(secret)}}) == []
    (unset,) = check_files({"digest": {"command_secret_env": "MAILBOT_NO_SUCH_VARIABLE"}})
    assert "not set" in unset.message
