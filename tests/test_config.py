"""Configuration: the shipped files validate, mistakes are reported by TOML path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailbot.config import (
    UNLIMITED,
    ConfigProblem,
    InvalidConfig,
    Secret,
    apply_overrides,
    find_config,
    is_unlimited,
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
    "capacity": 120,
}
OUTBOX = {"from_address": "zgloszenia@example.pl"}
"""The keys every config must have besides its events."""


def problems_of(data: dict[str, Any]) -> dict[str, ConfigProblem]:
    """Every problem of a document, by TOML path (one per path in these tests)."""
    with pytest.raises(InvalidConfig) as exc:
        settings_from_dict(data)
    return {p.path: p for p in exc.value.problems}


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
        settings_from_dict(
            {"mailbox": {"kind": "imap", "host": "h", "username": "u", "password": "x"}, "outbox": OUTBOX}
        )
    (problem,) = exc.value.problems
    assert problem.path == "mailbox"
    assert "password_file" in problem.message


def test_every_problem_is_named_by_its_toml_path() -> None:
    data = {
        "timezone": "Mars/Olympus",
        "outbox": {**OUTBOX, "max_replies_per_address_per_day": 0, "colour": "blue"},
        "events": [dict(EVENT, date="18.04.2016")],
    }
    with pytest.raises(InvalidConfig) as exc:
        settings_from_dict(data)
    paths = {p.path: f"{p.message} ({p.hint})" for p in exc.value.problems}
    assert "unknown time zone" in paths["timezone"]
    assert "outbox.max_replies_per_address_per_day" in paths
    assert "unknown option" in paths["outbox.colour"]
    assert "2016-04-18" in paths["events[opole-2016].date"]
    assert "2016-04-18" in str(exc.value)  # `mailbot run` shows the hints too


def test_default_event_must_be_a_configured_event() -> None:
    with pytest.raises(InvalidConfig, match="default_event"):
        settings_from_dict({"default_event": "gdansk-2016", "outbox": OUTBOX, "events": [EVENT]})


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


# -- addresses, required keys, capacity ---------------------------------------------------


@pytest.mark.parametrize(
    ("data", "path", "reason"),
    [
        ({"outbox": {"from_address": "zgloszenia(at)example.pl"}}, "outbox.from_address", "@-sign"),
        ({"outbox": OUTBOX, "own_addresses": ["zgloszenia@example"]}, "own_addresses[0]", "period"),
        (
            {"outbox": OUTBOX, "events": [dict(EVENT, organisers=["opole@example.pl", "opole at example"])]},
            "events[opole-2016].organisers[1]",
            "@-sign",
        ),
        ({"outbox": {**OUTBOX, "bcc": ["Archiwum <archiwum@example.pl>"]}}, "outbox.bcc[0]", "display name"),
        (
            {"outbox": OUTBOX, "mailbox": {"kind": "imap", "host": "h", "username": "bot@imap", "password_env": "P"}},
            "mailbox.username",
            "period",
        ),
    ],
)
def test_a_malformed_address_is_refused_with_its_path_and_how_to_write_one(
    data: dict[str, Any], path: str, reason: str
) -> None:
    problem = problems_of(data)[path]
    assert "is not an e-mail address" in problem.message and reason in problem.message
    assert "zgloszenia@example.pl" in problem.hint


def test_a_login_name_without_at_sign_is_not_an_address_and_passes() -> None:
    settings = settings_from_dict(
        {"outbox": OUTBOX, "mailbox": {"kind": "imap", "host": "h", "username": "user1", "password_env": "P"}}
    )
    assert settings.mailbox.username == "user1"


def test_from_address_is_required_even_without_an_outbox_table() -> None:
    problem = problems_of({})["outbox.from_address"]
    assert problem.message == "required option is missing"
    assert 'from_address = "' in problem.hint


def test_capacity_is_required_and_may_be_unlimited_in_so_many_words() -> None:
    event = {k: v for k, v in EVENT.items() if k != "capacity"}
    problem = problems_of({"outbox": OUTBOX, "events": [event]})["events[opole-2016].capacity"]
    assert problem.message == "required option is missing" and '"unlimited"' in problem.hint

    for bad in (0, -1, "lots", "120", True, 1.5):
        problem = problems_of({"outbox": OUTBOX, "events": [dict(EVENT, capacity=bad)]})["events[opole-2016].capacity"]
        assert '"unlimited"' in problem.message, bad

    settings = settings_from_dict({"outbox": OUTBOX, "events": [dict(EVENT, capacity="unlimited")]})
    capacity = settings.event("opole-2016").capacity
    assert capacity is UNLIMITED and is_unlimited(capacity) and str(capacity) == "unlimited"
    assert capacity > 10**6 and capacity - 5 > 10**6  # plain arithmetic: always seats free
    assert settings.event("opole-2016").model_dump()["capacity"] == "unlimited"  # round trip
    assert not is_unlimited(settings_from_dict({"outbox": OUTBOX, "events": [EVENT]}).events[0].capacity)


def test_a_deadline_after_the_event_names_the_event_and_the_field() -> None:
    problems = problems_of(
        {"outbox": OUTBOX, "events": [dict(EVENT, registration_deadline="2016-04-20", end_time="10:00:00",
                                           start_time="11:00:00")]}
    )
    deadline = problems["events[opole-2016].registration_deadline"]
    assert deadline.message == "registration_deadline 2016-04-20 is after the date of event opole-2016 (2016-04-18)"
    assert "2016-04-18 or earlier" in deadline.hint
    assert "not after start_time 11:00:00" in problems["events[opole-2016].end_time"].message


def test_an_unknown_key_gets_the_closest_option_of_its_own_table() -> None:
    problems = problems_of(
        {
            "outbox": {**OUTBOX, "from_adress": "x@example.pl"},
            "mailbox": {"idel": False, "folders": {"procesed": "Done"}},
            "evnts": [],
            "events": [dict(EVENT, capacty=5)],
            "limits": {"colour": "blue"},
        }
    )
    assert problems["mailbox.idel"].message == "unknown option `idel`"
    assert problems["mailbox.idel"].hint == "did you mean `idle`?"
    assert problems["mailbox.folders.procesed"].hint == "did you mean `processed`?"
    assert problems["outbox.from_adress"].hint == "did you mean `from_address`?"
    assert problems["evnts"].hint == "did you mean `events`?"
    assert problems["events[opole-2016].capacty"].hint == "did you mean `capacity`?"
    assert problems["limits.colour"].hint == "every option is listed in config/mailbot.example.toml"


def test_every_validation_problem_comes_in_one_run_even_rules_behind_a_field_error() -> None:
    """A field error used to hide its table's own rules (and the event keys' rules) until
    the next run; now they all come at once."""
    data = {
        "default_event": "gdansk-2016",
        "own_addresses": ["zgloszenia@example"],
        "mailbox": {"kind": "imap", "idel": True, "password_file": "/a", "password_env": "B"},
        "outbox": {"kind": "smtp", "from_address": "zgloszenia(at)example.pl"},
        "events": [EVENT, dict(EVENT, capacity="many")],
    }
    with pytest.raises(InvalidConfig) as exc:
        settings_from_dict(data)
    found = {(p.path, p.message.split(";")[0]) for p in exc.value.problems}
    assert found >= {
        ("own_addresses[0]", "'zgloszenia@example' is not an e-mail address: The part after the @-sign is not valid. It should have a period."),
        ("mailbox.idel", "unknown option `idel`"),
        ("mailbox", "give only one of password_file, password_env, password_credential"),
        ("mailbox", "kind = 'imap' needs host and username"),
        ("outbox", "kind = 'smtp' needs host"),
        ("events", "event keys must be unique"),
        ("default_event", "default_event 'gdansk-2016' is not one of the [[events]] keys"),
    }
    assert any(p.path == "outbox.from_address" for p in exc.value.problems)
    assert any(p.path == "events[opole-2016].capacity" for p in exc.value.problems)
    assert len(exc.value.problems) == len({(p.path, p.message) for p in exc.value.problems})  # no repeats
