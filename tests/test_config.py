"""Configuration: the shipped files validate, mistakes are reported by TOML path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailbot.config import (
    InvalidConfig,
    Secret,
    apply_overrides,
    find_config,
    load_settings,
    settings_from_dict,
)
from mailbot.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
EVENT = {
    "key": "opole-2016",
    "title": "Współpraca w partnerstwach samorządowych",
    "city": "Opole",
    "date": "2016-04-18",
    "venue": "Sala Herbowa",
    "address": "ul. Piastowska 14",
}


def test_the_example_and_demo_configs_hold_the_four_events_of_the_cycle() -> None:
    for name in ("mailbot.example.toml", "demo.toml"):
        settings = load_settings(REPO / "config" / name)
        assert [e.key for e in settings.events] == ["szczecin-2016", "torun-2016", "lublin-2016", "opole-2016"]
        opole = settings.event("opole-2016")
        assert str(opole.date) == "2016-04-18" and str(opole.start_time) == "11:00:00"
        assert "Sala Herbowa" in opole.venue and "Piastowska 14" in opole.address
        assert settings.default_event == "opole-2016"


def test_a_password_written_into_the_file_is_refused_with_a_hint() -> None:
    with pytest.raises(InvalidConfig) as exc:
        settings_from_dict({"mailbox": {"kind": "imap", "host": "h", "username": "u", "password": "x"}})
    (problem,) = exc.value.problems
    assert problem.path == "mailbox"
    assert "password_file" in problem.message


def test_every_problem_is_named_by_its_toml_path() -> None:
    data = {
        "timezone": "Mars/Olympus",
        "outbox": {"max_replies_per_address_per_day": 0, "colour": "blue"},
        "events": [dict(EVENT, date="18.04.2016")],
    }
    with pytest.raises(InvalidConfig) as exc:
        settings_from_dict(data)
    paths = {p.path: p.message for p in exc.value.problems}
    assert "unknown time zone" in paths["timezone"]
    assert "outbox.max_replies_per_address_per_day" in paths
    assert "unknown option" in paths["outbox.colour"]
    assert "2016-04-18" in paths["events[opole-2016].date"]


def test_default_event_must_be_a_configured_event() -> None:
    with pytest.raises(InvalidConfig, match="default_event"):
        settings_from_dict({"default_event": "gdansk-2016", "events": [EVENT]})


def test_secrets_come_from_a_file_an_environment_variable_or_a_systemd_credential(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    assert Secret(password_file=tmp_path / "pw").resolve({}) == "s3cret"
    assert Secret(password_env="PW").resolve({"PW": "env-secret"}) == "env-secret"
    assert Secret(password_credential="pw").resolve({"CREDENTIALS_DIRECTORY": str(tmp_path)}) == "s3cret"
    with pytest.raises(ConfigError, match="CREDENTIALS_DIRECTORY"):
        Secret(password_credential="pw").resolve({})
    with pytest.raises(ConfigError, match="not set"):
        Secret(password_env="NOPE").resolve({})


def test_config_is_found_via_option_then_environment_then_etc(tmp_path: Path) -> None:
    assert find_config(tmp_path / "a.toml", {"MAILBOT_CONFIG": "/x.toml"}) == tmp_path / "a.toml"
    assert find_config(None, {"MAILBOT_CONFIG": "/x.toml"}) == Path("/x.toml")
    assert find_config(None, {}) == Path("/etc/mailbot/mailbot.toml")


def test_command_line_overrides_replace_mailbox_outbox_and_database() -> None:
    settings = load_settings(REPO / "config" / "demo.toml")
    changed = apply_overrides(
        settings,
        inbox="imaps://bot%40example.pl@imap.example.pl:993/Zgloszenia?ca_file=/tmp/ca.pem",
        outbox="smtp+plain://127.0.0.1:2525",
        db="sqlite:////tmp/x.db",
    )
    assert changed.mailbox.kind == "imap" and changed.mailbox.username == "bot@example.pl"
    assert changed.mailbox.inbox == "Zgloszenia" and changed.mailbox.security == "ssl"
    assert changed.mailbox.ca_file == Path("/tmp/ca.pem")
    assert changed.mailbox.password_env == "MAILBOT_IMAP_PASSWORD"
    assert changed.outbox.kind == "smtp" and changed.outbox.security == "none"
    assert changed.db_url == "sqlite:////tmp/x.db"
    with pytest.raises(ConfigError, match="loopback"):
        apply_overrides(settings, outbox="smtp+plain://mail.example.pl:25")


def test_check_config_prints_each_error_with_its_path_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('timezone = "Nowhere/Town"\n[outbox]\nkind = "smtp"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "mailbot", "check-config", "--config", str(bad)],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 2
    assert "timezone" in proc.stderr and "unknown time zone" in proc.stderr
    assert "outbox" in proc.stderr and "needs host" in proc.stderr


def test_check_config_accepts_the_demo_config() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mailbot", "check-config", "--config", str(REPO / "config" / "demo.toml")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout
