"""A participant's side of the conversation, for tests: writes mails into the Maildir
inbox, runs mailbot at a given moment, and reads what it sent from the Maildir outbox."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import itertools
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import icalendar

from mailbot.app import App, PassReport, build_app, event_header
from mailbot.config import EventSettings, Settings, load_settings
from mailbot.forms.blank import DOCX_MIME, FilledValues, make_docx
from mailbot.forms.model import Consents, Institution, Participant

REPO = Path(__file__).resolve().parents[1]
WARSAW = dt.timezone(dt.timedelta(hours=2))  # April 2016 is summer time
ORGANISER = "zgloszenia@partnerstwa.example.pl"
_counter = itertools.count(1)
DATABASE_URL: str | None = None
"""Where the conversation tests keep their data: None is SQLite under tmp_path; the
PostgreSQL tests set a server's URL and replay the same conversations."""


def settings_for(tmp_path: Path, **opole: Any) -> Settings:
    """The demo config with its paths under ``tmp_path`` and Opole's event changed."""
    base = load_settings(REPO / "config" / "demo.toml")
    events = tuple(e.model_copy(update=opole) if e.key == "opole-2016" else e for e in base.events)
    return base.model_copy(
        update={
            "state_dir": tmp_path / "state",
            "database_url": DATABASE_URL or f"sqlite:///{tmp_path / 'state' / 'mailbot.db'}",
            "mailbox": base.mailbox.model_copy(update={"path": tmp_path / "inbox"}),
            "outbox": base.outbox.model_copy(update={"path": tmp_path / "outbox"}),
            "events": events,
        }
    )


def form_docx(event: EventSettings, people: Sequence[tuple[str, str | None]], *, institution: str = "Urząd Gminy Testowo") -> bytes:
    values = FilledValues(
        institution=Institution(institution, "ul. Rynek 1, 46-000 Testowo", "77 400 00 00", "ug@testowo.example.pl"),
        participants=[Participant(name, "Inspektor", "77 400 00 11", mail) for name, mail in people],
        workshops=frozenset({"A"}),
        remarks=None,
        consents=Consents(data_processing=True, newsletter=False),
        place_date="Testowo, 1.04.2016",
    )
    return make_docx(event_header(event), values, style="table")


def mail(
    sender: str,
    subject: str,
    body: str,
    *,
    when: dt.datetime,
    form: bytes | None = None,
    in_reply_to: str | None = None,
    extra: Sequence[tuple[str, str]] = (),
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ORGANISER
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<t{next(_counter)}.{int(when.timestamp())}@{sender.split('@')[1]}>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    for key, value in extra:
        msg[key] = value
    msg.set_content(body)
    if form is not None:
        maintype, subtype = DOCX_MIME.split("/")
        msg.add_attachment(form, maintype=maintype, subtype=subtype, filename="zgloszenie.docx")
    return msg.as_bytes()


class Conversation:
    """Mailbot on the embedded default, driven message by message and moment by moment."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._seen: set[str] = set()
        self._n = 0
        self.received: list[bytes] = []
        self.now = dt.datetime.now(dt.UTC)
        self._app: App | None = None
        for sub in ("tmp", "new", "cur"):
            (settings.mailbox.path / sub).mkdir(parents=True, exist_ok=True)

    def receive(self, data: bytes) -> None:
        self._n += 1
        self.received.append(data)
        (self.settings.mailbox.path / "new" / f"{self._n:05d}.test").write_bytes(data)

    def app(self, at: dt.datetime) -> App:
        """Mailbot at moment ``at``; one App (one engine) until the settings change."""
        self.now = at
        if self._app is None or self._app.settings is not self.settings:
            if self._app is not None:
                self._app.engine.dispose()
            self._app = build_app(self.settings, clock=lambda: self.now)
        return self._app

    def run(self, at: dt.datetime) -> PassReport:
        return self.app(at).run_once()

    def sent(self) -> list[EmailMessage]:
        """Mails delivered since the last call, oldest first."""
        folder = self.settings.outbox.path / "new"
        fresh = sorted(p for p in folder.iterdir() if p.name not in self._seen) if folder.exists() else []
        self._seen.update(p.name for p in fresh)
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for p in fresh
        ]


def kinds(mails: Sequence[EmailMessage]) -> list[tuple[str, str]]:
    """(kind, recipient) of each mail, sorted."""
    return sorted((str(m["X-Mailbot-Kind"]), str(m["To"].addresses[0].addr_spec)) for m in mails)


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def calendar_of(message: EmailMessage) -> icalendar.Calendar | None:
    for part in message.iter_attachments():  # type: ignore[attr-defined]
        if part.get_content_type() == "text/calendar":
            return icalendar.Calendar.from_ical(part.get_payload(decode=True))
    return None


def bounce(
    recipient: str,
    message_id: str,
    when: dt.datetime,
    *,
    action: str = "failed",
    status: str = "5.2.2",
    diagnostic: str = "smtp; 552 5.2.2 mailbox full",
) -> bytes:
    """A delivery status notification (RFC 3464) for the mail ``message_id`` we sent."""
    boundary = "b0unce"
    lines = [
        "Return-Path: <>",
        "From: Mail Delivery System <MAILER-DAEMON@mail.partnerstwa.example.pl>",
        f"To: {ORGANISER}",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {format_datetime(when)}",
        f"Message-ID: <bounce.{next(_counter)}.{int(when.timestamp())}@mail.partnerstwa.example.pl>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain",
        "",
        "Your message could not be delivered.",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mail.partnerstwa.example.pl",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        f"Action: {action}",
        f"Status: {status}",
        f"Diagnostic-Code: {diagnostic}",
        "",
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "",
        f"Message-ID: {message_id}",
        f"To: {recipient}",
        "",
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(lines).encode()
