"""The systemd unit: what it must keep, that systemd 252 accepts it, and how exposed it is.

``systemd-analyze`` comes from Debian's ``systemd`` package (in ``./dev``'s TEST_DEBS); the
tests that run it skip only where it is absent. systemd need not be running: ``verify``
and ``security --offline=yes`` read the file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "mailbot.service"
SYSUSERS = ROOT / "systemd" / "mailbot.sysusers.conf"
MAILBOTCTL = ROOT / "systemd" / "mailbotctl"
DEPLOY = ROOT / "docs" / "deploy.md"
EXAMPLE_CONFIG = ROOT / "config" / "mailbot.example.toml"

MAX_EXPOSURE = 2.0
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed (Debian package systemd)")
ENV = {**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C.UTF-8"}

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Sections → key → every value in order (a key may repeat; an empty value resets)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"line {number}: keep directives on one line"
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None and "=" in line, f"line {number}: {raw!r}"
        key, value = (part.strip() for part in line.split("=", 1))
        section.setdefault(key, []).append(value)
    return unit


@pytest.fixture(scope="module")
def service() -> dict[str, list[str]]:
    return parse_unit(UNIT.read_text(encoding="utf-8"))["Service"]


def one(service: dict[str, list[str]], key: str) -> str:
    values = service.get(key)
    assert values is not None, f"{key}= is missing"
    assert len(values) == 1, f"{key}= is given {len(values)} times"
    return values[0]


def credential_ids(values: list[str]) -> list[str]:
    return [value.split(":", 1)[0] for value in values]


def test_service_keeps_what_the_daemon_needs(service: dict[str, list[str]]) -> None:
    assert one(service, "Type") == "notify"
    assert one(service, "NotifyAccess") == "main"
    assert one(service, "Restart") == "on-failure"
    assert one(service, "User") == "mailbot"
    assert one(service, "Group") == "mailbot"
    assert one(service, "StateDirectory") == "mailbot"
    assert one(service, "ConfigurationDirectory") == "mailbot"
    assert one(service, "WorkingDirectory") == "/var/lib/mailbot"
    assert "MAILBOT_CONFIG=/etc/mailbot/mailbot.toml" in service["Environment"]
    assert one(service, "ExecStart") == "/opt/mailbot/venv/bin/mailbot run"
    assert one(service, "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(service, "KillMode") == "mixed"  # SIGTERM to the main process only
    assert one(service, "WatchdogSec")
    assert one(service, "TimeoutStopSec")
    assert "DynamicUser" not in service


def test_secrets_come_as_credentials(service: dict[str, list[str]]) -> None:
    ids = credential_ids(service["LoadCredential"])
    assert {"imap-password", "smtp-password", "oauth-client-secret"} <= set(ids)
    # Name-only sources (looked up in /etc/credstore) are optional; an absolute path
    # that is missing would stop the service from starting.
    for value in service["LoadCredential"]:
        assert ":" in value and not value.split(":", 1)[1].startswith("/"), value
    # Every credential the example config names is one the unit loads.
    names = re.findall(r'^\s*(?:password|client_secret|command_secret)_credential\s*=\s*"([^"]+)"',
                       EXAMPLE_CONFIG.read_text(encoding="utf-8"), re.MULTILINE)
    assert names, "the example config names no credential"
    assert set(names) <= set(ids)
    assert "password" not in " ".join(service.get("Environment", [])).lower()


def test_sandbox_directives_stay(service: dict[str, list[str]]) -> None:
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "PrivateUsers": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "ProtectClock": "yes",
        "ProtectHostname": "yes",
        "ProtectProc": "invisible",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "RestrictRealtime": "yes",
        "RestrictSUIDSGID": "yes",
        "SystemCallArchitectures": "native",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "UMask": "0077",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    }
    for key, value in expected.items():
        assert one(service, key) == value, key
    assert service["SystemCallFilter"][0] == "@system-service"
    assert "~@privileged @resources" in service["SystemCallFilter"]
    assert one(service, "RestrictNamespaces").startswith("~")
    assert one(service, "MemoryMax")


def test_admin_wrapper_matches_the_unit(service: dict[str, list[str]]) -> None:
    text = MAILBOTCTL.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/sh\n")
    wrapped = re.findall(r"--property=LoadCredential=(\S+) ", text)
    assert wrapped == service["LoadCredential"]
    binary = one(service, "ExecStart").split()[0]
    assert f"{binary} \"$@\"" in text
    for key in ("User", "Group", "StateDirectory", "WorkingDirectory", "UMask"):
        assert f"--property={key}={one(service, key)} " in text, key
    sh = shutil.which("sh")
    assert sh is not None
    subprocess.run([sh, "-n", str(MAILBOTCTL)], check=True)
    assert os.access(MAILBOTCTL, os.X_OK), "systemd/mailbotctl must be executable"


def test_deploy_doc_uses_the_units_paths(service: dict[str, list[str]]) -> None:
    doc = DEPLOY.read_text(encoding="utf-8")
    assert one(service, "ExecStart").split()[0].rsplit("/", 2)[0] in doc  # /opt/mailbot/venv
    for value in service["LoadCredential"]:
        assert f"/etc/credstore/{value.split(':', 1)[1]}" in doc, value
    assert "mailbot.sysusers.conf" in doc and "mailbotctl" in doc


def test_example_config_parses() -> None:  # the deploy doc starts from it
    tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))


def _runnable_copy(tmp_path: Path) -> Path:
    """The unit with its commands pointed at an existing binary: ``verify`` checks that
    ExecStart= exists, and the service is not installed here."""
    true = shutil.which("true")
    assert true is not None
    text = UNIT.read_text(encoding="utf-8").replace("/opt/mailbot/venv/bin/mailbot", true)
    copy = tmp_path / UNIT.name
    copy.write_text(text, encoding="utf-8")
    return copy


@needs_analyze
def test_systemd_analyze_verify_is_silent(tmp_path: Path) -> None:
    assert ANALYZE is not None
    done = subprocess.run(
        [ANALYZE, "verify", "--man=no", str(_runnable_copy(tmp_path))],
        capture_output=True, text=True, env=ENV, check=False,
    )
    # Unknown keys and bad values are warnings with exit status 0: any output fails.
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stdout + done.stderr


@needs_analyze
def test_security_exposure_is_low(tmp_path: Path) -> None:
    assert ANALYZE is not None
    done = subprocess.run(
        [ANALYZE, "security", "--offline=yes", "--no-pager", str(_runnable_copy(tmp_path))],
        capture_output=True, text=True, env=ENV, check=False,
    )
    match = re.search(r"Overall exposure level for mailbot\.service: (\d+\.\d+)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, done.stdout


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers is not installed")
def test_sysusers_creates_a_system_user(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    sysusers = shutil.which("systemd-sysusers")
    assert sysusers is not None
    subprocess.run(
        [sysusers, f"--root={tmp_path}", str(SYSUSERS)],
        capture_output=True, env=ENV, check=True,
    )
    passwd = (tmp_path / "etc" / "passwd").read_text(encoding="utf-8").splitlines()
    entry = next(line.split(":") for line in passwd if line.startswith("mailbot:"))
    assert int(entry[2]) < 1000  # a system user
    assert entry[5] == "/var/lib/mailbot" and entry[6] == "/usr/sbin/nologin"
    group = (tmp_path / "etc" / "group").read_text(encoding="utf-8")
    assert re.search(r"^mailbot:x:\d+:", group, re.MULTILINE)
