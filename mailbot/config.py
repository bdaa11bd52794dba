"""Typed, frozen configuration loaded from TOML and validated before anything starts.

Where the file is: ``--config``, then ``$MAILBOT_CONFIG``, then ``/etc/mailbot/mailbot.toml``.
Passwords never live in the file: each secret names a file, an environment variable or a
systemd credential (``$CREDENTIALS_DIRECTORY``) that holds it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mailbot.errors import ConfigError
from mailbot.net import is_loopback

DEFAULT_CONFIG_PATH = Path("/etc/mailbot/mailbot.toml")
ENV_CONFIG = "MAILBOT_CONFIG"
EventKey = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Secret(_Model):
    """Where a password comes from; exactly one of the three must be given."""

    password_file: Path | None = None
    password_env: str | None = None
    password_credential: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Secret:
        given = [x for x in (self.password_file, self.password_env, self.password_credential) if x]
        if len(given) > 1:
            raise ValueError(
                "give only one of password_file, password_env, password_credential"
            )
        return self

    @property
    def configured(self) -> bool:
        return bool(self.password_file or self.password_env or self.password_credential)

    def resolve(self, env: Mapping[str, str] | None = None) -> str | None:
        """Read the secret now; raises ConfigError naming the place that failed."""
        env = os.environ if env is None else env
        if self.password_env:
            value = env.get(self.password_env)
            if value is None:
                raise ConfigError(
                    f"environment variable {self.password_env} is not set; "
                    "export it or use password_file / password_credential"
                )
            return value
        if self.password_credential:
            return _read_secret(_credential_path(self.password_credential, "password_credential", env), "password file")
        if self.password_file:
            return _read_secret(self.password_file, "password file")
        return None


def _credential_path(name: str, key: str, env: Mapping[str, str]) -> Path:
    """Where systemd's ``LoadCredential=`` put the secret called ``name``."""
    creds = env.get("CREDENTIALS_DIRECTORY")
    if not creds:
        raise ConfigError(
            f"{key}={name!r} needs systemd's $CREDENTIALS_DIRECTORY (LoadCredential= in the unit file)"
        )
    return Path(creds) / name


def _read_secret(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip("\r\n")
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror}") from e


def _reject_inline_password(data: Any) -> Any:
    if isinstance(data, dict) and "password" in data:
        raise ValueError(
            "passwords never live in the config file: use password_file, "
            "password_env or password_credential"
        )
    return data


Security = Literal["ssl", "starttls", "none"]


class OAuthSettings(_Model):
    """XOAUTH2 login (Microsoft 365, Gmail): a refresh token kept in a file mailbot may
    rewrite, exchanged for short-lived access tokens at ``token_url``."""

    token_file: Path
    """JSON with at least ``refresh_token``; mailbot stores the access token beside it.
    Its directory must be writable by mailbot: the file is replaced atomically (mode 0600)
    whenever a token is refreshed, and the provider may rotate the refresh token."""
    token_url: str = Field(min_length=1)
    """The OAuth 2.0 token endpoint, e.g.
    ``https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`` or
    ``https://oauth2.googleapis.com/token``. https only (http just for loopback)."""
    client_id: str = Field(min_length=1)
    client_secret_file: Path | None = None
    client_secret_credential: str | None = None
    """The client secret from systemd's ``$CREDENTIALS_DIRECTORY`` (LoadCredential=).
    Public clients (device-code flow) have no secret: leave both unset."""
    scope: str = ""
    """Sent with every refresh, e.g. ``https://outlook.office.com/IMAP.AccessAsUser.All
    https://outlook.office.com/SMTP.Send offline_access`` or ``https://mail.google.com/``."""
    ca_file: Path | None = None
    """PEM bundle to verify the token endpoint with; the system trust store when unset."""

    @field_validator("token_url")
    @classmethod
    def _secure_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        url = urlsplit(value)
        if url.scheme == "https" and url.hostname:
            return value
        if url.scheme == "http" and url.hostname and is_loopback(url.hostname):
            return value
        raise ValueError(
            f"token_url {value!r} must be an https:// URL (plain http only for localhost): "
            "the refresh token and client secret are sent to it"
        )

    @model_validator(mode="after")
    def _one_secret_source(self) -> OAuthSettings:
        if self.client_secret_file and self.client_secret_credential:
            raise ValueError("give only one of client_secret_file, client_secret_credential")
        return self

    def resolve_client_secret(self, env: Mapping[str, str] | None = None) -> str | None:
        """Read the client secret now (None for a public client); ConfigError names the place."""
        env = os.environ if env is None else env
        if self.client_secret_credential:
            path = _credential_path(self.client_secret_credential, "client_secret_credential", env)
        elif self.client_secret_file:
            path = self.client_secret_file
        else:
            return None
        secret = _read_secret(path, "client secret file")
        if not secret:
            raise ConfigError(f"client secret file {path} is empty")
        return secret


def _check_auth(section: str, auth: str, oauth: OAuthSettings | None) -> None:
    """``auth = "xoauth2"`` needs the ``[<section>.oauth]`` table, and the table needs it."""
    if auth == "xoauth2" and oauth is None:
        raise ValueError(
            f"auth = 'xoauth2' needs a [{section}.oauth] table with token_file, token_url "
            "and client_id"
        )
    if auth == "password" and oauth is not None:
        raise ValueError(
            f"[{section}.oauth] is set but auth = 'password'; set auth = 'xoauth2' to log in "
            "with the token, or remove the table"
        )


class Folders(_Model):
    processed: str = "Processed"
    needs_review: str = "Needs-Review"
    ignored: str = "Ignored"


class MailboxSettings(Secret):
    """Where registrations arrive: a local Maildir (default) or an IMAP account."""

    kind: Literal["maildir", "imap"] = "maildir"
    path: Path = Path("var/inbox")
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security = "ssl"
    username: str | None = None
    ca_file: Path | None = None
    inbox: str = "INBOX"
    batch_size: int = Field(default=100, ge=1, le=1000)
    timeout_seconds: float = Field(default=60.0, gt=0)
    poll_seconds: int = Field(default=60, ge=5)
    idle: bool = True
    """Wait with IMAP IDLE when the server offers it (replies within seconds)."""
    idle_renew_seconds: int = Field(default=600, ge=30, le=1740)
    """Re-issue IDLE this often: servers drop an IDLE after 30 minutes (RFC 2177)."""
    auth: Literal["password", "xoauth2"] = "password"
    oauth: OAuthSettings | None = None
    folders: Folders = Folders()

    _no_password = model_validator(mode="before")(_reject_inline_password)

    @model_validator(mode="after")
    def _imap_needs_host(self) -> MailboxSettings:
        if self.kind == "imap" and not (self.host and self.username):
            raise ValueError("kind = 'imap' needs host and username")
        _check_auth("mailbox", self.auth, self.oauth)
        return self


class OutboxSettings(Secret):
    """How replies leave: written to a Maildir (default) or sent over SMTP."""

    kind: Literal["maildir", "smtp"] = "maildir"
    path: Path = Path("var/outbox")
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security = "starttls"
    username: str | None = None
    ca_file: Path | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)
    from_address: str = "zgloszenia@example.pl"
    from_name: str = "Zespół organizacyjny konferencji"
    bcc: tuple[str, ...] = ()
    max_replies_per_address_per_day: int = Field(default=5, ge=1)
    max_attempts: int = Field(default=8, ge=1)
    max_per_minute: int = Field(default=60, ge=1)
    """Rate limit for sending; what is over it waits for the next delivery run."""
    auth: Literal["password", "xoauth2"] = "password"
    oauth: OAuthSettings | None = None

    _no_password = model_validator(mode="before")(_reject_inline_password)

    @model_validator(mode="after")
    def _smtp_needs_host(self) -> OutboxSettings:
        if self.kind == "smtp" and not self.host:
            raise ValueError("kind = 'smtp' needs host")
        _check_auth("outbox", self.auth, self.oauth)
        if self.kind == "smtp" and self.auth == "xoauth2" and not self.username:
            raise ValueError(
                "auth = 'xoauth2' needs username: the address of the mailbox the token "
                "was granted for"
            )
        return self


class LimitSettings(_Model):
    """Bounds for untrusted input; raise them only if real forms hit them."""

    max_message_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_mime_parts: int = Field(default=500, ge=10)
    max_attachment_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    max_zip_entries: int = Field(default=200, ge=1)
    max_decompressed_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_pdf_pages: int = Field(default=50, ge=1)
    max_image_pixels: int = Field(default=40_000_000, ge=1)
    parse_timeout_seconds: float = Field(default=60.0, gt=0)


_OFFSET = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")


def parse_offset(text: str) -> dt.timedelta:
    """ "7d" → 7 days, "12h" → 12 hours, "30m" → 30 minutes."""
    match = _OFFSET.match(text)
    if not match:
        raise ValueError(f"reminder offset {text!r}: expected a number and d, h or m, e.g. \"7d\"")
    amount, unit = int(match.group(1)), match.group(2)
    return {"d": dt.timedelta(days=amount), "h": dt.timedelta(hours=amount), "m": dt.timedelta(minutes=amount)}[unit]


class EventSettings(_Model):
    """One conference day of the cycle."""

    key: EventKey
    title: str = Field(min_length=1)
    city: str = Field(min_length=1)
    date: dt.date
    start_time: dt.time = dt.time(10, 0)
    end_time: dt.time | None = None
    """When the day ends, for calendars; unset means six hours after the start."""
    venue: str = Field(min_length=1)
    address: str = Field(min_length=1)
    capacity: int = Field(default=100, ge=1)
    """Seats: confirmed participants beyond it go to the waiting list."""
    registration_deadline: dt.date | None = None
    organisers: tuple[str, ...] = ()
    reminders: tuple[str, ...] = ("7d", "1d")
    """How long before the start reminders go out: "7d", "1d", "12h"."""

    @field_validator("reminders")
    @classmethod
    def _offsets_parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            parse_offset(item)
        return value

    @model_validator(mode="after")
    def _deadline_before_event(self) -> EventSettings:
        if self.registration_deadline and self.registration_deadline > self.date:
            raise ValueError("registration_deadline is after the event date")
        if self.end_time is not None and self.end_time <= self.start_time:
            raise ValueError("end_time is not after start_time")
        return self

    def starts_at(self, tz: ZoneInfo) -> dt.datetime:
        return dt.datetime.combine(self.date, self.start_time, tzinfo=tz)

    def ends_at(self, tz: ZoneInfo) -> dt.datetime:
        if self.end_time is not None:
            return dt.datetime.combine(self.date, self.end_time, tzinfo=tz)
        return self.starts_at(tz) + dt.timedelta(hours=6)

    @property
    def reminder_offsets(self) -> tuple[dt.timedelta, ...]:
        """Offsets before the start, longest first."""
        return tuple(sorted((parse_offset(r) for r in self.reminders), reverse=True))

    @property
    def deadline(self) -> dt.date:
        """Last day forms are accepted: the configured deadline, else the day before."""
        return self.registration_deadline or (self.date - dt.timedelta(days=1))


class Settings(_Model):
    """The whole configuration; build with :func:`load_settings`."""

    timezone: str = "Europe/Warsaw"
    state_dir: Path = Path("var")
    database_url: str | None = None
    templates_dir: Path | None = None
    labels_file: Path | None = None
    default_event: str | None = None
    own_addresses: tuple[str, ...] = ()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    signature: str = "Zespół organizacyjny konferencji"
    digest_time: dt.time = dt.time(7, 0)
    """When the daily digest goes to each event's organisers (local time)."""
    retention_days: int = Field(default=180, ge=1)
    """Days after an event until its personal data and stored files are purged."""
    outbox_seconds: int = Field(default=60, ge=5)
    """How often the daemon delivers queued mail and looks for due reminders."""
    mailbox: MailboxSettings = MailboxSettings()
    outbox: OutboxSettings = OutboxSettings()
    limits: LimitSettings = LimitSettings()
    events: tuple[EventSettings, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {value!r} (e.g. 'Europe/Warsaw')") from e
        return value

    @model_validator(mode="after")
    def _events_consistent(self) -> Settings:
        keys = [e.key for e in self.events]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"event keys must be unique; repeated: {', '.join(dupes)}")
        if self.default_event and self.default_event not in keys:
            raise ValueError(
                f"default_event {self.default_event!r} is not one of the [[events]] keys"
            )
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'mailbot.db'}"

    @property
    def replying_as(self) -> tuple[str, ...]:
        """Every address that is us: never reply to these (loop guard)."""
        own = {a.lower() for a in self.own_addresses}
        own.add(self.outbox.from_address.lower())
        if self.mailbox.username and "@" in self.mailbox.username:
            own.add(self.mailbox.username.lower())
        return tuple(sorted(own))

    def event(self, key: str) -> EventSettings:
        for e in self.events:
            if e.key == key:
                return e
        raise KeyError(key)


@dataclass(frozen=True)
class ConfigProblem:
    """One validation error, addressed by its TOML path, with a hint for the admin."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidConfig(ConfigError):
    """The file parsed but failed validation; ``problems`` lists every error."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the configuration:\n{lines}")


def _toml_path(loc: tuple[int | str, ...], data: Any) -> str:
    """Render a pydantic location as a TOML path, naming events by key: events[opole-2016].date."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            name = str(item)
            if isinstance(node, list) and item < len(node) and isinstance(node[item], dict):
                name = str(node[item].get("key", item))
            parts[-1:] = [f"{parts[-1]}[{name}]"] if parts else [f"[{name}]"]
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(item)
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def _hint(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "extra_forbidden":
        return "unknown option; check the spelling against config/mailbot.example.toml"
    if kind == "missing":
        return "required option is missing"
    if kind.startswith("date"):
        return f"{msg}; write dates as 2016-04-18"
    if kind.startswith("time"):
        return f"{msg}; write times as 11:00:00"
    return msg


def settings_from_dict(data: Mapping[str, Any], source: str = "<config>") -> Settings:
    """Validate a parsed TOML document; raises :class:`InvalidConfig` listing every problem."""
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        problems = [
            ConfigProblem(_toml_path(tuple(err["loc"]), data), _hint(err))
            for err in e.errors()
        ]
        raise InvalidConfig(source, problems) from e


def find_config(explicit: Path | None, env: Mapping[str, str] | None = None) -> Path:
    """The config file to use: ``--config``, then $MAILBOT_CONFIG, then /etc/mailbot."""
    env = os.environ if env is None else env
    if explicit is not None:
        return explicit
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG])
    return DEFAULT_CONFIG_PATH


def load_settings(path: Path) -> Settings:
    """Read and validate one TOML file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as e:
        raise ConfigError(
            f"config file {path} not found; pass --config, set ${ENV_CONFIG}, or copy "
            "config/mailbot.example.toml there"
        ) from e
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise InvalidConfig(str(path), [ConfigProblem("(syntax)", str(e))]) from e
    return settings_from_dict(data, str(path))


def _security_for(scheme: str, host: str, plain: str, implicit: str) -> Security:
    if scheme == implicit:
        return "ssl"
    if scheme.endswith("+plain"):
        if not is_loopback(host):
            raise ConfigError(f"{scheme}:// (no TLS) is only allowed to a loopback host, not {host}")
        return "none"
    if scheme == plain:
        return "starttls"
    raise ConfigError(f"unknown scheme {scheme}://")


def apply_overrides(
    settings: Settings,
    *,
    inbox: str | None = None,
    outbox: str | None = None,
    db: str | None = None,
) -> Settings:
    """Apply the ``--inbox``, ``--outbox`` and ``--db`` command-line overrides.

    ``--inbox maildir:PATH`` or ``imaps://user@host:port/FOLDER`` (``imap://`` for
    STARTTLS; password from $MAILBOT_IMAP_PASSWORD; ``?ca_file=PATH`` for a private CA);
    ``--outbox maildir:PATH`` or ``smtp://[user@]host:port`` (STARTTLS), ``smtps://`` (TLS),
    ``smtp+plain://`` (loopback only; password from $MAILBOT_SMTP_PASSWORD).
    """
    from urllib.parse import parse_qs, unquote, urlsplit

    update: dict[str, Any] = {}
    if db:
        update["database_url"] = db
    if inbox:
        if inbox.startswith("maildir:"):
            mb = settings.mailbox.model_copy(update={"kind": "maildir", "path": Path(inbox[8:])})
        else:
            url = urlsplit(inbox)
            if not url.hostname or not url.username:
                raise ConfigError(f"--inbox {inbox!r}: expected imaps://user@host:port/FOLDER")
            security = _security_for(url.scheme, url.hostname, "imap", "imaps")
            query = parse_qs(url.query)
            mb = MailboxSettings.model_validate(
                {
                    **settings.mailbox.model_dump(exclude={"password_file", "password_credential"}),
                    "kind": "imap",
                    "host": url.hostname,
                    "port": url.port or (993 if security == "ssl" else 143),
                    "security": security,
                    "username": unquote(url.username),
                    "inbox": unquote(url.path.lstrip("/")) or "INBOX",
                    "password_env": "MAILBOT_IMAP_PASSWORD",
                    "ca_file": query.get("ca_file", [None])[0],
                }
            )
        update["mailbox"] = mb
    if outbox:
        if outbox.startswith("maildir:"):
            ob = settings.outbox.model_copy(update={"kind": "maildir", "path": Path(outbox[8:])})
        else:
            url = urlsplit(outbox)
            if not url.hostname:
                raise ConfigError(f"--outbox {outbox!r}: expected smtp://host:port")
            security = _security_for(url.scheme, url.hostname, "smtp", "smtps")
            query = parse_qs(url.query)
            ob = OutboxSettings.model_validate(
                {
                    **settings.outbox.model_dump(exclude={"password_file", "password_credential", "password_env"}),
                    "kind": "smtp",
                    "host": url.hostname,
                    "port": url.port or (465 if security == "ssl" else 587),
                    "security": security,
                    "username": unquote(url.username) if url.username else None,
                    "password_env": "MAILBOT_SMTP_PASSWORD" if url.username else None,
                    "ca_file": query.get("ca_file", [None])[0],
                }
            )
        update["outbox"] = ob
    return settings.model_copy(update=update) if update else settings
