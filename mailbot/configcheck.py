"""``mailbot check-config``: everything that would break in production, in one run.

Validation errors, secret files, CA and token files, templates and the label file are
checked together, so an admin fixes them all at once instead of one per run. Every
finding names its TOML path and says what to do next. Secrets are never read here (only
``stat``-ed), except by ``--connect``, which logs in with them through the same adapters
the service uses (TLS verified as everywhere) and reports what the servers offer without
selecting a folder or sending anything.
"""

from __future__ import annotations

import datetime as dt
import os
import pwd
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from mailbot.config import (
    ConfigProblem,
    InvalidConfig,
    Settings,
    find_config,
    read_config,
    settings_from_dict,
)
from mailbot.errors import ConfigError

SERVICE_USER = "mailbot"
"""The account systemd runs mailbot as (systemd/mailbot.sysusers.conf)."""

EXIT_OK, EXIT_CONNECT, EXIT_CONFIG = 0, 1, 2


def check_command(
    config: Path | None,
    *,
    connect: bool = False,
    out: Console,
    err: Console,
    now: dt.datetime | None = None,
) -> int:
    """Check the config file (``--config``, else $MAILBOT_CONFIG, else /etc/mailbot), print
    every finding, and return the exit status: 0 OK (warnings allowed), 2 config errors,
    1 when ``connect`` could not log in somewhere. A valid config is also compared with
    what the participants in its database were told (``now``: the clock, for tests)."""
    path = find_config(config)
    try:
        data = read_config(path)
    except InvalidConfig as e:
        _print_findings(err, path, e.problems)
        return EXIT_CONFIG
    except ConfigError as e:
        err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False)
        return EXIT_CONFIG
    findings, settings = check_document(data, str(path))
    if settings is not None and not any(f.severity == "error" for f in findings):
        findings += unannounced_changes(settings, now)
    _print_findings(err, path, findings)
    if settings is None or any(f.severity == "error" for f in findings):
        if connect:
            err.print("--connect: not attempted until the errors above are fixed", highlight=False)
        return EXIT_CONFIG
    warnings = sum(1 for f in findings if f.severity == "warning")
    tail = f", {warnings} warning(s)" if warnings else ""
    out.print(
        escape(
            f"{path}: OK — {len(settings.events)} event(s), mailbox {settings.mailbox.kind}, "
            f"outbox {settings.outbox.kind}{tail}"
        ),
        highlight=False,
    )
    if not connect:
        return EXIT_OK
    from mailbot.configprobe import probe_all

    failed = False
    for result in probe_all(settings):
        if result.ok:
            out.print(escape(f"{result.what} {result.where}: {result.summary}"), highlight=False)
        else:
            failed = True
            err.print(
                f"[red]{escape(result.what)}[/red] {escape(result.where)}: {escape(result.summary)}",
                highlight=False,
            )
        for line in result.warnings:
            err.print(f"  [yellow]warning[/yellow] {escape(line)}", highlight=False)
    return EXIT_CONNECT if failed else EXIT_OK


def check_document(
    data: Mapping[str, Any], source: str = "<config>"
) -> tuple[list[ConfigProblem], Settings | None]:
    """Every finding about a parsed document, and the settings when it validated."""
    findings: list[ConfigProblem] = []
    settings: Settings | None = None
    try:
        settings = settings_from_dict(data, source)
    except InvalidConfig as e:
        findings.extend(e.problems)
    findings.extend(check_files(data))
    return findings, settings


def _print_findings(err: Console, path: Path, findings: list[ConfigProblem]) -> None:
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        err.print(f"[red]{escape(str(path))}[/red]: {len(errors)} problem(s)", highlight=False)
    for f in sorted(findings, key=lambda f: ("error", "warning", "note").index(f.severity)):
        label = {"error": "", "warning": "[yellow]warning[/yellow] ", "note": "note "}[f.severity]
        err.print(f"  {label}[bold]{escape(f.path)}[/bold]: {escape(f.message)}", highlight=False)
        if f.hint:
            err.print(f"      hint: {escape(f.hint)}", highlight=False)


# -- the database: changes to events that nobody was told about --------------------------


def unannounced_changes(settings: Settings, now: dt.datetime | None = None) -> list[ConfigProblem]:
    """A warning per event whose date, time or venue in this config differs from what
    its participants were told (:func:`mailbot.reminders.pending_changes`): the edit
    mails nobody until ``mailbot announce``. Reads the database the config names and
    never creates it; no database yet (or one this mailbot must migrate first, or one
    out of reach) means nothing to say here."""
    from sqlalchemy.exc import SQLAlchemyError
    from sqlmodel import Session

    from mailbot.errors import MailbotError
    from mailbot.reminders import pending_changes
    from mailbot.status import open_existing

    try:
        engine = open_existing(settings.db_url)
    except (MailbotError, SQLAlchemyError, OSError):
        return []
    try:
        with Session(engine) as session:
            pending = pending_changes(session, settings, now or dt.datetime.now(settings.tz))
    except SQLAlchemyError:
        return []
    finally:
        engine.dispose()
    return [
        ConfigProblem(
            f"events[{p.event.key}]",
            f"changed since participants were told: {p.summary}; this concerns {p.people} "
            f"seated {'person' if p.people == 1 else 'people'} ({len(p.recipients)} address(es)), "
            "and nobody is mailed until it is announced",
            f"announce it: mailbot announce {p.event.key} (or --dry-run to see who gets what, "
            "--silent to accept it without mail)",
            severity="warning",
        )
        for p in pending
    ]


# -- files named by the config ----------------------------------------------------------


def check_files(data: Mapping[str, Any]) -> list[ConfigProblem]:
    """Secrets, CA bundles, token files, templates and labels, from the raw document: they
    are checked even when validation failed, so nothing is left for the next run."""
    found: list[ConfigProblem] = []
    for section in ("mailbox", "outbox"):
        table = data.get(section)
        found += _account_files(section, table if isinstance(table, Mapping) else {})
    found += _templates(_text(data, "templates_dir"))
    found += _labels(_text(data, "labels_file"))
    digest = data.get("digest")
    found += _command_secret(digest if isinstance(digest, Mapping) else {})
    return found


def _command_secret(digest: Mapping[str, Any]) -> list[ConfigProblem]:
    """The secret behind the digest's reply commands, checked like a password when one
    is named."""
    if file := _text(digest, "command_secret_file"):
        return _secret_file("digest.command_secret_file", Path(file), "command secret file")
    if name := _text(digest, "command_secret_credential"):
        return _credential("digest.command_secret_credential", name)
    if var := _text(digest, "command_secret_env"):
        if var in os.environ:
            return []
        return [ConfigProblem(
            "digest.command_secret_env", f"environment variable {var} is not set here",
            "export it before running check-config, as the service's unit must, or use "
            "command_secret_credential",
        )]
    return []  # optional: without it the digest simply offers no reply commands


def _text(table: Mapping[str, Any], key: str) -> str | None:
    value = table.get(key)
    return value if isinstance(value, str) and value else None


def _account_files(section: str, table: Mapping[str, Any]) -> list[ConfigProblem]:
    kind = table.get("kind", "maildir")
    remote = (section == "mailbox" and kind == "imap") or (section == "outbox" and kind == "smtp")
    if not remote:
        return []  # a Maildir account logs in nowhere: its secrets, if any, are unused
    found: list[ConfigProblem] = []
    if table.get("security", "ssl" if section == "mailbox" else "starttls") != "none":
        if ca := _text(table, "ca_file"):
            found += _readable_file(f"{section}.ca_file", Path(ca), "CA bundle")
    if table.get("auth", "password") == "xoauth2":
        oauth = table.get("oauth")
        return found + (_oauth_files(f"{section}.oauth", oauth) if isinstance(oauth, Mapping) else [])
    needs_password = section == "mailbox" or bool(table.get("username"))
    given = [k for k in ("password_file", "password_env", "password_credential") if table.get(k)]
    if needs_password and not given:
        found.append(ConfigProblem(
            section,
            f"no password source for the {'IMAP' if section == 'mailbox' else 'SMTP'} login",
            "set password_credential (systemd LoadCredential=), password_file or password_env",
        ))
    if file := _text(table, "password_file"):
        found += _secret_file(f"{section}.password_file", Path(file))
    if name := _text(table, "password_credential"):
        found += _credential(f"{section}.password_credential", name)
    if (var := _text(table, "password_env")) and var not in os.environ:
        found.append(ConfigProblem(
            f"{section}.password_env",
            f"environment variable {var} is not set here",
            "export it before running check-config, as the service's unit must "
            "(Environment=/EnvironmentFile=), or use password_credential",
        ))
    return found


def _oauth_files(path: str, oauth: Mapping[str, Any]) -> list[ConfigProblem]:
    found: list[ConfigProblem] = []
    if token := _text(oauth, "token_file"):
        found += _token_file(f"{path}.token_file", Path(token))
    if file := _text(oauth, "client_secret_file"):
        found += _secret_file(f"{path}.client_secret_file", Path(file))
    if name := _text(oauth, "client_secret_credential"):
        found += _credential(f"{path}.client_secret_credential", name)
    if ca := _text(oauth, "ca_file"):
        found += _readable_file(f"{path}.ca_file", Path(ca), "CA bundle")
    return found


@dataclass(frozen=True)
class _Account:
    """Who must be able to read the files: the service user when it exists here, else us."""

    name: str
    uid: int
    gids: frozenset[int]

    @property
    def is_us(self) -> bool:
        return self.uid == os.geteuid()

    def may(self, st: os.stat_result, bits: tuple[int, int, int]) -> bool:
        """Owner/group/other permission check by mode bits (root passes everything)."""
        if self.uid == 0:
            return True
        owner, group, other = bits
        if st.st_uid == self.uid:
            return bool(st.st_mode & owner)
        if st.st_gid in self.gids:
            return bool(st.st_mode & group)
        return bool(st.st_mode & other)


def _service_account() -> _Account:
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        entry = pwd.getpwuid(os.geteuid())
    groups = {entry.pw_gid}
    try:
        groups.update(os.getgrouplist(entry.pw_name, entry.pw_gid))
    except OSError:
        pass
    return _Account(entry.pw_name, entry.pw_uid, frozenset(groups))


_READ = (stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH)
_WRITE_ENTER = (stat.S_IWUSR | stat.S_IXUSR, stat.S_IWGRP | stat.S_IXGRP, stat.S_IWOTH | stat.S_IXOTH)


def _stat(path: str, file: Path, what: str) -> tuple[os.stat_result | None, list[ConfigProblem]]:
    relative = "" if file.is_absolute() else (
        f" (relative to {Path.cwd()}; the service runs in /var/lib/mailbot)"
    )
    try:
        st = file.stat()
    except FileNotFoundError:
        return None, [ConfigProblem(path, f"{what} {file} does not exist{relative}", _create_hint(what, file))]
    except OSError as e:
        return None, [ConfigProblem(
            path, f"{what} {file} cannot be reached: {e.strerror}",
            "check the permissions of the directories leading to it",
        )]
    if not stat.S_ISREG(st.st_mode):
        return None, [ConfigProblem(path, f"{what} {file} is not a regular file", "point it at the file itself")]
    return st, []


def _create_hint(what: str, file: Path) -> str:
    if what == "CA bundle":
        return "point ca_file at the PEM file of your CA, or remove ca_file to use the system trust store"
    if what == "token file":
        return "obtain the first refresh token as docs/deploy.md describes"
    return (
        f"write the secret on one line: install -m 600 -o {SERVICE_USER} /dev/null {file}, "
        "then edit it"
    )


def _readable(path: str, file: Path, st: os.stat_result, what: str) -> list[ConfigProblem]:
    account = _service_account()
    ok = os.access(file, os.R_OK) if account.is_us else account.may(st, _READ)
    if ok:
        return []
    return [ConfigProblem(
        path,
        f"{what} {file} is not readable by {account.name}, the user mailbot runs as",
        f"chown {account.name} {file} (keep mode 0600 for secrets)",
    )]


def _readable_file(path: str, file: Path, what: str) -> list[ConfigProblem]:
    st, found = _stat(path, file, what)
    return found if st is None else _readable(path, file, st, what)


def _secret_file(path: str, file: Path, what: str = "secret file") -> list[ConfigProblem]:
    """Exists, readable by the service, not empty, not readable by others; never opened."""
    st, found = _stat(path, file, what)
    if st is None:
        return found
    found += _readable(path, file, st, what)
    if st.st_size == 0:
        found.append(ConfigProblem(path, f"{what} {file} is empty", "write the secret into it"))
    if st.st_mode & (stat.S_IRGRP | stat.S_IROTH):
        who = "every user on this machine" if st.st_mode & stat.S_IROTH else "its group"
        found.append(ConfigProblem(
            path,
            f"{what} {file} is readable by {who} (mode {stat.S_IMODE(st.st_mode):04o})",
            f"chmod 600 {file}",
            severity="warning",
        ))
    return found


def _token_file(path: str, file: Path) -> list[ConfigProblem]:
    """Like a secret, and its directory must let the service replace it after a refresh."""
    found = _secret_file(path, file, "token file")
    directory = file.parent
    try:
        st = directory.stat()
    except OSError:
        return found
    account = _service_account()
    ok = os.access(directory, os.W_OK | os.X_OK) if account.is_us else account.may(st, _WRITE_ENTER)
    if not ok:
        found.append(ConfigProblem(
            path,
            f"directory {directory} is not writable by {account.name}: a refreshed token "
            "cannot be saved, and a rotated refresh token is lost on restart",
            f"chown {account.name} {directory} (mode 0700)",
        ))
    return found


def _credential(path: str, name: str) -> list[ConfigProblem]:
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds:
        return _secret_file(path, Path(creds) / name, "credential")
    return [ConfigProblem(
        path,
        f"credential {name!r} is handed to the service by systemd (LoadCredential=) and "
        "cannot be checked from here",
        f"check the LoadCredential={name}:… line of mailbot.service; `sudo mailbotctl "
        "check-config --connect` checks it as the service sees it",
        severity="note",
    )]


def _templates(directory: str | None) -> list[ConfigProblem]:
    from mailbot.templating import Templates

    if directory is not None and not Path(directory).is_dir():
        return [ConfigProblem(
            "templates_dir", f"{directory} is not a directory",
            "create it, or remove templates_dir to use the packaged templates",
        )]
    try:
        problems = Templates(Path(directory) if directory else None).check()
    except Exception as e:  # noqa: BLE001 - reported to the admin verbatim
        problems = [f"{type(e).__name__}: {e}"]
    return [
        ConfigProblem(
            "templates_dir" if directory else "templates",
            problem,
            "fix the template, or delete it to fall back to the packaged one"
            if directory else "the packaged templates are broken: reinstall mailbot",
        )
        for problem in problems
    ]


def _labels(file: str | None) -> list[ConfigProblem]:
    if file is None:
        return []
    from mailbot.forms import load_vocabulary

    try:
        load_vocabulary(Path(file))
    except (ConfigError, ValueError, TypeError, KeyError) as e:
        return [ConfigProblem(
            "labels_file", str(e),
            "start from a copy of config/labels.toml, or remove labels_file",
        )]
    return []
