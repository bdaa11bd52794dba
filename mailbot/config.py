"""Typed, frozen configuration loaded from TOML and validated before anything starts.

Where the file is: ``--config``, then ``$MAILBOT_CONFIG``, then ``/etc/mailbot/mailbot.toml``.
Passwords never live in the file: each secret names a file, an environment variable or a
systemd credential (``$CREDENTIALS_DIRECTORY``) that holds it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mailbot.errors import ConfigError
from mailbot.net import is_loopback

DEFAULT_CONFIG_PATH = Path("/etc/mailbot/mailbot.toml")
ENV_CONFIG = "MAILBOT_CONFIG"
EventKey = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
Rule = tuple[str, str]
"""A broken cross-field rule: (message, hint)."""


def _rule_error(rule: Rule) -> PydanticCustomError:
    """A validation error carrying its hint in ``ctx`` (see :func:`_describe`)."""
    message, hint = rule
    return PydanticCustomError("config_rule", message, {"hint": hint})


def _email(value: str) -> str:
    """Syntax only (no DNS): a typo like ``zgloszenia(at)example.pl`` or a domain without
    a dot would otherwise surface as bounces, or as loop protection that never matches."""
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as e:
        raise PydanticCustomError(
            "email_address",
            "{value} is not an e-mail address: {reason}",
            {
                "value": repr(value),
                "reason": str(e),
                "hint": 'write one plain address such as "zgloszenia@example.pl": no display '
                'name, no "(at)", a domain with a dot',
            },
        ) from None
    return value


def _login_name(value: str) -> str:
    """Login names are often addresses; one that looks like an address must be one."""
    return _email(value) if "@" in value else value


EmailAddress = Annotated[str, AfterValidator(_email)]
LoginName = Annotated[str, AfterValidator(_login_name)]


class Unlimited(int):
    """``capacity = "unlimited"``: an int larger than any event fills, so seat arithmetic
    (free = capacity - taken) needs no special case anywhere; prints as "unlimited"."""

    def __new__(cls) -> Unlimited:
        return super().__new__(cls, 2**31 - 1)

    def __str__(self) -> str:
        return "unlimited"

    def __repr__(self) -> str:
        return "UNLIMITED"


UNLIMITED = Unlimited()


def is_unlimited(capacity: int) -> bool:
    return isinstance(capacity, Unlimited)


_CAPACITY_HINT = 'a number of seats, e.g. capacity = 120, or capacity = "unlimited" for no limit'


def _capacity(value: object) -> int:
    """Seats must be said: a positive whole number, or ``"unlimited"`` in so many words."""
    if isinstance(value, Unlimited) or (isinstance(value, str) and value.strip().lower() == "unlimited"):
        return UNLIMITED
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return int(value)
    raise PydanticCustomError(
        "capacity",
        "capacity {value} is neither a positive number of seats nor \"unlimited\"",
        {"value": repr(value), "hint": _CAPACITY_HINT},
    )


def _dump_capacity(value: int) -> int | str:
    return "unlimited" if is_unlimited(value) else int(value)


Capacity = Annotated[int, PlainValidator(_capacity), PlainSerializer(_dump_capacity)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Secret(_Model):
    """Where a password comes from; exactly one of the three must be given."""

    password_file: Path | None = None
    password_env: str | None = None
    password_credential: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Secret:
        for rule in _secret_rules(dict(self)):
            raise _rule_error(rule)
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


def _secret_rules(values: Mapping[str, Any]) -> list[Rule]:
    given = [k for k in ("password_file", "password_env", "password_credential") if values.get(k)]
    if len(given) > 1:
        return [(
            "give only one of password_file, password_env, password_credential",
            f"keep one of {', '.join(given)} and remove the other(s)",
        )]
    return []


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
        for rule in _oauth_rules(dict(self)):
            raise _rule_error(rule)
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


def _oauth_rules(values: Mapping[str, Any]) -> list[Rule]:
    if values.get("client_secret_file") and values.get("client_secret_credential"):
        return [(
            "give only one of client_secret_file, client_secret_credential",
            "keep one and remove the other",
        )]
    return []


def _account_rules(section: Literal["mailbox", "outbox"], values: Mapping[str, Any]) -> list[Rule]:
    """Cross-field rules of ``[mailbox]``/``[outbox]``; also run on the raw table when a
    field error kept pydantic from reaching them, so every problem shows in one run."""
    rules: list[Rule] = []
    kind, auth, oauth = values.get("kind", "maildir"), values.get("auth", "password"), values.get("oauth")
    if section == "mailbox" and kind == "imap" and not (values.get("host") and values.get("username")):
        rules.append((
            "kind = 'imap' needs host and username",
            'e.g. host = "imap.example.pl" and username = "zgloszenia@example.pl"',
        ))
    if section == "outbox" and kind == "smtp" and not values.get("host"):
        rules.append(("kind = 'smtp' needs host", 'e.g. host = "smtp.example.pl"'))
    if auth == "xoauth2" and oauth is None:
        rules.append((
            f"auth = 'xoauth2' needs a [{section}.oauth] table with token_file, token_url "
            "and client_id",
            "see the commented [mailbox.oauth] example in config/mailbot.example.toml",
        ))
    if auth == "password" and oauth is not None:
        rules.append((
            f"[{section}.oauth] is set but auth = 'password'; set auth = 'xoauth2' to log in "
            "with the token, or remove the table",
            "",
        ))
    if section == "outbox" and kind == "smtp" and auth == "xoauth2" and not values.get("username"):
        rules.append((
            "auth = 'xoauth2' needs username: the address of the mailbox the token "
            "was granted for",
            'e.g. username = "zgloszenia@example.pl"',
        ))
    return rules


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
    username: LoginName | None = None
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
        for rule in _account_rules("mailbox", dict(self)):
            raise _rule_error(rule)
        return self


class OutboxSettings(Secret):
    """How replies leave: written to a Maildir (default) or sent over SMTP."""

    kind: Literal["maildir", "smtp"] = "maildir"
    path: Path = Path("var/outbox")
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security = "starttls"
    username: LoginName | None = None
    ca_file: Path | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)
    from_address: EmailAddress
    """The sender of every reply; required: a guessed default would mail as someone else."""
    from_name: str = "Zespół organizacyjny konferencji"
    bcc: tuple[EmailAddress, ...] = ()
    max_replies_per_address_per_day: int = Field(default=5, ge=1)
    max_attempts: int = Field(default=8, ge=1)
    max_per_minute: int = Field(default=60, ge=1)
    """Rate limit for sending; what is over it waits for the next delivery run."""
    max_per_pass: int = Field(default=500, ge=1)
    """Mails one delivery run sends at most; the rest go in the next run (seconds later
    in the service). Bounds how long one run holds the SMTP connection."""
    auth: Literal["password", "xoauth2"] = "password"
    oauth: OAuthSettings | None = None

    _no_password = model_validator(mode="before")(_reject_inline_password)

    @model_validator(mode="after")
    def _smtp_needs_host(self) -> OutboxSettings:
        for rule in _account_rules("outbox", dict(self)):
            raise _rule_error(rule)
        return self


COMMAND_SECRET_MIN_CHARS = 16
"""The shortest server secret the digest's e-mail commands accept (a token is an HMAC of
it: a short secret could be guessed from tokens the organisers forward)."""


class DigestSettings(_Model):
    """``[digest]``: the organisers' daily digest. Its review items carry reply commands
    ("PRZYJMIJ 12") with a per-item token, an HMAC made with a server secret; without the
    secret the digest shows no commands and e-mail commands are refused. Like passwords,
    the secret never lives in the config file: give one of ``command_secret_file``,
    ``command_secret_env`` or ``command_secret_credential`` (at least
    :data:`COMMAND_SECRET_MIN_CHARS` characters, e.g. ``openssl rand -base64 32``)."""

    command_secret_file: Path | None = None
    command_secret_env: str | None = None
    command_secret_credential: str | None = None
    """The secret from systemd's ``$CREDENTIALS_DIRECTORY`` (LoadCredential=)."""
    command_token_days: int = Field(default=14, ge=1, le=90)
    """How many days a digest's tokens are accepted after the digest's date."""

    @model_validator(mode="after")
    def _one_command_secret(self) -> DigestSettings:
        given = [k for k in ("command_secret_file", "command_secret_env", "command_secret_credential")
                 if getattr(self, k)]
        if len(given) > 1:
            raise _rule_error((
                "give only one of command_secret_file, command_secret_env, command_secret_credential",
                f"keep one of {', '.join(given)} and remove the other(s)",
            ))
        return self

    @property
    def commands_configured(self) -> bool:
        return bool(self.command_secret_file or self.command_secret_env or self.command_secret_credential)

    def resolve_command_secret(self, env: Mapping[str, str] | None = None) -> bytes | None:
        """The secret now (None when not configured); ConfigError names the place that
        failed, or says it is too short."""
        env = os.environ if env is None else env
        if self.command_secret_env:
            value = env.get(self.command_secret_env)
            if value is None:
                raise ConfigError(f"environment variable {self.command_secret_env} is not set")
            where = f"environment variable {self.command_secret_env}"
        elif self.command_secret_credential:
            path = _credential_path(self.command_secret_credential, "command_secret_credential", env)
            value, where = _read_secret(path, "command secret file"), str(path)
        elif self.command_secret_file:
            value = _read_secret(self.command_secret_file, "command secret file")
            where = str(self.command_secret_file)
        else:
            return None
        value = value.strip()
        if len(value) < COMMAND_SECRET_MIN_CHARS:
            raise ConfigError(
                f"the command secret in {where} is shorter than {COMMAND_SECRET_MIN_CHARS} characters"
            )
        return value.encode("utf-8")


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
    max_documents_per_message: int = Field(default=40, ge=1)
    """Attachments read per message (identical files count once); a real sender
    attaches a few forms, so more is a mistake or an attack and goes to review."""
    message_parse_seconds: float = Field(default=300.0, gt=0)
    """Reading time shared by all attachments of one message, so one mail cannot hold up
    every message behind it."""
    max_scans_per_message: int = Field(default=10, ge=0)
    """Scanned pages (OCR, the slow case) read per message."""


class OrganiserSettings(_Model):
    """Who organises the conference, as participants should see it: in the signature
    area of every reply, in the blank form (where to send it) and in the calendar entry.

    Every field is optional and nothing is made up for a missing one: an unset line is
    simply left out. A cycle-wide ``[organiser]`` table gives the defaults; an event's
    own ``[events.organiser]`` table overrides them field by field (see
    :meth:`merged_over`). Not to be confused with an event's ``organisers``: those are
    the addresses that receive the daily digest.
    """

    name: str | None = Field(default=None, min_length=1)
    """E.g. "Związek Miast Polskich"."""
    phone: str | None = Field(default=None, min_length=1)
    """As it should be printed, e.g. "61 633 50 50"."""
    email: EmailAddress | None = None
    """The organisers' own address for people (the blank form says to send it there);
    the calendar entry names it as ORGANIZER. Unset: the replies' sender address."""
    data_controller: str | None = Field(default=None, min_length=1)
    """The data-protection line printed under every reply and on the blank form, e.g.
    "Administratorem danych osobowych jest Związek Miast Polskich, …"."""

    def merged_over(self, defaults: OrganiserSettings) -> OrganiserSettings:
        """This table's fields where set, ``defaults`` for the rest."""
        own = self.model_dump(exclude_none=True)
        return defaults.model_copy(update=own)

    @property
    def is_empty(self) -> bool:
        return not any(self.model_dump(exclude_none=True).values())


DEFAULT_FEE_LINE = "Udział w konferencji jest bezpłatny; koszty dojazdu uczestnicy pokrywają we własnym zakresie."
"""The fee sentence of acknowledgements and promotions when the config sets none."""

DEFAULT_CONSENT_TEXTS: Mapping[str, str] = {
    "data_processing": (
        "Wyrażam zgodę na przetwarzanie danych osobowych zawartych w zgłoszeniu "
        "przez organizatora w celu organizacji konferencji."
    ),
    "newsletter": "Wyrażam zgodę na otrzymywanie informacji o kolejnych wydarzeniach.",
}
"""The consent texts printed on the blank form when the config sets none."""

WORKSHOP_KEY_PATTERN = r"^[A-H]$"
"""A workshop's key is the letter printed before it on the form (``workshops.A`` in the
form contract); the form reader knows the letters A–H."""


def _workshop_key(value: str) -> str:
    if not re.match(WORKSHOP_KEY_PATTERN, value):
        raise PydanticCustomError(
            "workshop_key",
            "workshop key {value} is not one capital letter A–H",
            {"value": repr(value), "hint": 'the letter printed before the option on the form, e.g. key = "C"'},
        )
    return value


class Workshop(_Model):
    """One workshop option of the form (``workshops = [{key = "A", title = "…"}]``)."""

    key: Annotated[str, AfterValidator(_workshop_key)]
    """The letter on the form: A, B, … H (what the form JSON and the store keep)."""
    title: str = Field(min_length=1)
    """The option's wording, printed after the letter on the form and in the replies."""
    capacity: int | None = Field(default=None, ge=1)
    """Places in the workshop: the digest then shows "A: 23/30" and flags an overfull
    one. Registrations are never refused for it (the organisers decide)."""


DEFAULT_WORKSHOPS: tuple[Workshop, ...] = (
    Workshop(key="A", title="Zarządzanie strategiczne w partnerstwie"),
    Workshop(key="B", title="Zarządzanie relacjami w partnerstwie"),
)
"""The workshops when the config names none (the 2016 cycle's)."""


class ConsentTexts(_Model):
    """``[consents]`` / ``[events.consents]``: the two consent sentences printed on the
    blank form. Unset fields take the cycle's text, then :data:`DEFAULT_CONSENT_TEXTS`."""

    data_processing: str | None = Field(default=None, min_length=1)
    """The data-processing consent (required for a registration)."""
    newsletter: str | None = Field(default=None, min_length=1)
    """The consent to information about later events (optional for a registration)."""

    def merged_over(self, defaults: ConsentTexts) -> ConsentTexts:
        """This table's fields where set, ``defaults`` for the rest."""
        return defaults.model_copy(update=self.model_dump(exclude_none=True))

    def text(self, key: str) -> str:
        """The text to print for ``key`` (``data_processing`` or ``newsletter``)."""
        own = getattr(self, key)
        return own if isinstance(own, str) and own else DEFAULT_CONSENT_TEXTS[key]

    @property
    def texts(self) -> dict[str, str]:
        """Both texts, in form order, defaults filled in."""
        return {key: self.text(key) for key in DEFAULT_CONSENT_TEXTS}


def _workshop_rules(items: Any) -> list[Rule]:
    keys = [w.key if isinstance(w, Workshop) else w.get("key") for w in items or ()
            if isinstance(w, Workshop | Mapping)]
    dupes = sorted({str(k) for k in keys if keys.count(k) > 1})
    if dupes:
        return [(
            f"workshop keys must be unique; repeated: {', '.join(dupes)}",
            'give each workshop its own letter, e.g. {key = "C", title = "…"}',
        )]
    return []


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
    """When the day ends. Only a configured end is ever stated in a mail ("godz.
    11:00–16:00"); unset, mails give the start alone and the calendar entry lasts
    ``calendar_default_hours`` (a calendar needs some end, a mail must not claim one)."""
    venue: str = Field(min_length=1)
    address: str = Field(min_length=1)
    capacity: Capacity
    """Seats: confirmed participants beyond it go to the waiting list. Required: a
    number, or ``"unlimited"`` (:data:`UNLIMITED`, an int no event fills)."""
    registration_deadline: dt.date | None = None
    organisers: tuple[EmailAddress, ...] = ()
    reminders: tuple[str, ...] = ("7d", "1d")
    """How long before the start reminders go out: "7d", "1d", "12h"."""
    organiser: OrganiserSettings = OrganiserSettings()
    """Who organises this event (``[events.organiser]``), over the cycle's
    ``[organiser]``: after loading, this is already the merged block."""
    workshops: tuple[Workshop, ...] | None = None
    """This event's workshop options; unset: the cycle's ``workshops`` (after loading,
    already filled in). An empty list: no workshops (the form prints no such section)."""
    consents: ConsentTexts = ConsentTexts()
    """``[events.consents]``: over the cycle's ``[consents]``, field by field (merged
    after loading)."""
    fee_line: str | None = None
    """The fee sentence of acknowledgements and promotions; unset: the cycle's
    ``fee_line``; empty: no such sentence."""

    @field_validator("workshops")
    @classmethod
    def _unique_workshops(cls, value: tuple[Workshop, ...] | None) -> tuple[Workshop, ...] | None:
        for rule in _workshop_rules(value):
            raise _rule_error(rule)
        return value

    @field_validator("reminders")
    @classmethod
    def _offsets_parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            parse_offset(item)
        return value

    @field_validator("end_time")
    @classmethod
    def _ends_after_start(cls, value: dt.time | None, info: ValidationInfo) -> dt.time | None:
        start = info.data.get("start_time")
        if value is not None and start is not None and value <= start:
            raise _rule_error((
                f"end_time {value} is not after start_time {start}",
                "the day must end after it starts; remove end_time to state the start alone",
            ))
        return value

    @field_validator("registration_deadline")
    @classmethod
    def _deadline_before_event(cls, value: dt.date | None, info: ValidationInfo) -> dt.date | None:
        date, key = info.data.get("date"), info.data.get("key", "?")
        if value is not None and date is not None and value > date:
            raise _rule_error((
                f"registration_deadline {value} is after the date of event {key} ({date})",
                f"set it to {date} or earlier, or remove it to close the day before the event",
            ))
        return value

    def starts_at(self, tz: ZoneInfo) -> dt.datetime:
        return dt.datetime.combine(self.date, self.start_time, tzinfo=tz)

    def calendar_end(self, tz: ZoneInfo, default_hours: float) -> dt.datetime:
        """DTEND of the calendar entry: the configured end_time, else ``default_hours``
        after the start. For calendars only: a mail states an end only when
        ``end_time`` is set (there is deliberately no "ends_at" for mails to use)."""
        if self.end_time is not None:
            return dt.datetime.combine(self.date, self.end_time, tzinfo=tz)
        return self.starts_at(tz) + dt.timedelta(hours=default_hours)

    @property
    def reminder_offsets(self) -> tuple[dt.timedelta, ...]:
        """Offsets before the start, longest first."""
        return tuple(sorted((parse_offset(r) for r in self.reminders), reverse=True))

    @property
    def workshop_options(self) -> tuple[Workshop, ...]:
        """The workshops offered: the event's, else (an event built without a cycle)
        :data:`DEFAULT_WORKSHOPS`."""
        return DEFAULT_WORKSHOPS if self.workshops is None else self.workshops

    @property
    def workshop_titles(self) -> dict[str, str]:
        """Letter → title, in form order."""
        return {w.key: w.title for w in self.workshop_options}

    @property
    def fee_text(self) -> str:
        """The fee sentence to print ("" prints none): the configured one, else
        :data:`DEFAULT_FEE_LINE`."""
        return DEFAULT_FEE_LINE if self.fee_line is None else " ".join(self.fee_line.split())

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
    own_addresses: tuple[EmailAddress, ...] = ()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    signature: str = "Zespół organizacyjny konferencji"
    digest_time: dt.time = dt.time(7, 0)
    """When the daily digest goes to each event's organisers (local time)."""
    retention_days: int = Field(default=180, ge=1)
    """Days after an event until its personal data and stored files are purged."""
    outbox_seconds: int = Field(default=60, ge=5)
    """How often the daemon delivers queued mail and looks for due reminders."""
    calendar_default_hours: float = Field(default=6, gt=0, le=24)
    """How long the calendar entry of an event without ``end_time`` lasts. A calendar
    needs an end; the mails never state this one (they give the start alone)."""
    organiser: OrganiserSettings = OrganiserSettings()
    """The cycle's organiser (``[organiser]``): the default for every event's own
    ``[events.organiser]``. Declared before ``events`` so their merge sees it."""
    workshops: tuple[Workshop, ...] = DEFAULT_WORKSHOPS
    """The cycle's workshop options (``workshops = [{key = "A", title = "…",
    capacity = 30}, …]``): the default of every event without its own ``workshops``."""
    consents: ConsentTexts = ConsentTexts()
    """The cycle's consent texts (``[consents]``), under every event's
    ``[events.consents]``; unset ones print :data:`DEFAULT_CONSENT_TEXTS`."""
    fee_line: str = DEFAULT_FEE_LINE
    """The fee sentence of acknowledgements and promotions, for every event without its
    own ``fee_line``; "" prints none."""
    mailbox: MailboxSettings = MailboxSettings()
    outbox: OutboxSettings
    """Required: at least ``from_address`` (an omitted ``[outbox]`` reports that key)."""
    limits: LimitSettings = LimitSettings()
    digest: DigestSettings = DigestSettings()
    """``[digest]``: the server secret of the digest's e-mail commands (:class:`DigestSettings`)."""
    events: tuple[EventSettings, ...] = ()
    default_event: str | None = None
    """Declared after ``events`` so its check sees them (validation follows this order)."""

    @model_validator(mode="before")
    @classmethod
    def _outbox_table(cls, data: Any) -> Any:
        if isinstance(data, dict) and "outbox" not in data:
            return {**data, "outbox": {}}  # the error then names outbox.from_address
        return data

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {value!r} (e.g. 'Europe/Warsaw')") from e
        return value

    @field_validator("events")
    @classmethod
    def _unique_keys(cls, value: tuple[EventSettings, ...]) -> tuple[EventSettings, ...]:
        for rule in _duplicate_key_rules([e.key for e in value]):
            raise _rule_error(rule)
        return value

    @field_validator("workshops")
    @classmethod
    def _unique_cycle_workshops(cls, value: tuple[Workshop, ...]) -> tuple[Workshop, ...]:
        for rule in _workshop_rules(value):
            raise _rule_error(rule)
        return value

    @field_validator("events")
    @classmethod
    def _organiser_defaults(
        cls, value: tuple[EventSettings, ...], info: ValidationInfo
    ) -> tuple[EventSettings, ...]:
        """Fill each event's organiser from the cycle's, field by field, once here, so
        everything handed an event alone (calendar, blank form) sees the full block."""
        cycle = info.data.get("organiser")
        if not isinstance(cycle, OrganiserSettings) or cycle.is_empty:
            return value
        return tuple(
            e.model_copy(update={"organiser": e.organiser.merged_over(cycle)}) for e in value
        )

    @field_validator("events")
    @classmethod
    def _cycle_defaults(cls, value: tuple[EventSettings, ...], info: ValidationInfo) -> tuple[EventSettings, ...]:
        """Fill each event's workshops, consents and fee line from the cycle's (an
        event's own list of workshops replaces the cycle's whole; its consents override
        field by field), so everything handed an event alone sees the final values."""
        workshops = info.data.get("workshops", DEFAULT_WORKSHOPS)
        consents = info.data.get("consents", ConsentTexts())
        fee_line = info.data.get("fee_line", DEFAULT_FEE_LINE)
        if not isinstance(consents, ConsentTexts):
            consents = ConsentTexts()
        out = []
        for e in value:
            update: dict[str, Any] = {"consents": e.consents.merged_over(consents)}
            if e.workshops is None and isinstance(workshops, tuple):
                update["workshops"] = workshops
            if e.fee_line is None and isinstance(fee_line, str):
                update["fee_line"] = fee_line
            out.append(e.model_copy(update=update))
        return tuple(out)

    @field_validator("default_event")
    @classmethod
    def _known_default(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "events" in info.data:
            for rule in _default_event_rules(value, [e.key for e in info.data["events"]]):
                raise _rule_error(rule)
        return value

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


def _duplicate_key_rules(keys: list[str]) -> list[Rule]:
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        return [(
            f"event keys must be unique; repeated: {', '.join(dupes)}",
            "give each [[events]] table its own key",
        )]
    return []


def _default_event_rules(default: object, keys: list[str]) -> list[Rule]:
    if default and default not in keys:
        return [(
            f"default_event {default!r} is not one of the [[events]] keys",
            f"use one of: {', '.join(keys)}" if keys else "add the event as an [[events]] table",
        )]
    return []


Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True)
class ConfigProblem:
    """One finding, addressed by its TOML path, with a hint saying what to do next."""

    path: str
    message: str
    hint: str = ""
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidConfig(ConfigError):
    """The file parsed but failed validation; ``problems`` lists every error."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" + (f" ({p.hint})" if p.hint else "") for p in problems)
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


_MISSING_HINTS = {
    "from_address": 'the sender of every reply, e.g. from_address = "zgloszenia@example.pl"',
    "capacity": _CAPACITY_HINT,
    "date": "the day of the event, e.g. date = 2016-04-18",
}


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model whose table ``loc`` points into (Settings → events → EventSettings …)."""
    model: type[BaseModel] = Settings
    for item in loc:
        if isinstance(item, int):
            continue
        field = model.model_fields.get(item)
        if field is None:
            return None
        inner = _nested_model(field.annotation)
        if inner is None:
            return None
        model = inner
    return model


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _unknown_key_hint(loc: tuple[int | str, ...]) -> str:
    """Did you mean …? The closest option of the same table, by difflib's ratio."""
    model = _model_at(loc[:-1])
    known = list(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    if close:
        return f"did you mean `{close[0]}`?"
    return "every option is listed in config/mailbot.example.toml"


def _describe(err: Mapping[str, Any], data: Any) -> ConfigProblem:
    """A pydantic error as the admin should read it: TOML path, message, what to do."""
    loc = tuple(err["loc"])
    path = _toml_path(loc, data)
    kind = str(err.get("type", ""))
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    ctx = err.get("ctx") or {}
    hint = str(ctx.get("hint", ""))
    if kind == "extra_forbidden":
        return ConfigProblem(path, f"unknown option `{loc[-1]}`", _unknown_key_hint(loc))
    if kind == "missing":
        name = str(loc[-1]) if loc else ""
        return ConfigProblem(path, "required option is missing", _MISSING_HINTS.get(name, ""))
    if kind.startswith("date"):
        hint = "write dates as 2016-04-18"
    elif kind.startswith("time"):
        hint = "write times as 11:00:00"
    elif kind == "literal_error":
        hint = f"write one of {ctx.get('expected', 'the values listed in config/mailbot.example.toml')}"
    return ConfigProblem(path, msg, hint)


def _masked_rules(data: Mapping[str, Any]) -> list[ConfigProblem]:
    """The cross-field rules, run on the raw document: pydantic skips a table's own rules
    when one of its fields is invalid, and the admin should not learn them a run later."""
    found: list[ConfigProblem] = []
    for section in ("mailbox", "outbox"):
        table = data.get(section)
        if not isinstance(table, Mapping):
            continue
        for message, hint in _secret_rules(table) + _account_rules(section, table):
            found.append(ConfigProblem(section, message, hint))
        oauth = table.get("oauth")
        if isinstance(oauth, Mapping):
            found += [ConfigProblem(f"{section}.oauth", m, h) for m, h in _oauth_rules(oauth)]
    events = data.get("events")
    tables = events if isinstance(events, list) else []
    keys = [e["key"] for e in tables if isinstance(e, Mapping) and isinstance(e.get("key"), str)]
    found += [ConfigProblem("events", m, h) for m, h in _duplicate_key_rules(keys)]
    found += [
        ConfigProblem("default_event", m, h)
        for m, h in _default_event_rules(data.get("default_event"), keys)
    ]
    return found


def settings_from_dict(data: Mapping[str, Any], source: str = "<config>") -> Settings:
    """Validate a parsed TOML document; raises :class:`InvalidConfig` listing every problem."""
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        problems = [_describe(err, data) for err in e.errors()]
        seen = {(p.path, p.message) for p in problems}
        problems += [p for p in _masked_rules(data) if (p.path, p.message) not in seen]
        raise InvalidConfig(source, problems) from e


def find_config(explicit: Path | None, env: Mapping[str, str] | None = None) -> Path:
    """The config file to use: ``--config``, then $MAILBOT_CONFIG, then /etc/mailbot."""
    env = os.environ if env is None else env
    if explicit is not None:
        return explicit
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG])
    return DEFAULT_CONFIG_PATH


def read_config(path: Path) -> dict[str, Any]:
    """The parsed TOML document, unvalidated (check-config inspects it even when invalid)."""
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
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise InvalidConfig(
            str(path), [ConfigProblem("(syntax)", str(e), "fix the TOML syntax at that line")]
        ) from e


def load_settings(path: Path) -> Settings:
    """Read and validate one TOML file."""
    return settings_from_dict(read_config(path), str(path))


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
