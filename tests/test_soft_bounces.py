"""Soft and hard bounces (issue 12, item 7), through the real pipeline: a DSN lands in the
Maildir inbox, mailbot reads it, and the SQLite store, the reminders and the digest show
the result.

A full mailbox (RFC 3463 ``X.2.2``) or any temporary failure (class ``4``) must not mute
the address — the owner makes room and later mails get through — so the person keeps
getting reminders and change notices; the organisers see the bounce in the digest with a
phone number from the form, to call. A dead address (``5.1.1``, and ``5.2.1`` "mailbox
disabled") keeps today's behaviour: muted until it writes to us again. The DSNs are
shaped as Postfix, Exchange Online and a relay giving up on Gmail write them.
"""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlmodel import select

from mailbot.bounces import is_soft, is_soft_reason, status_code
from mailbot.digest import queue_digests
from mailbot.store.tables import AddressStatus, InboundMessage

from tests.conversation import ORGANISER, WARSAW, Conversation, form_docx, kinds, mail, settings_for

ANNA = "anna@gmina-a.example.pl"
BARTOSZ = "bartosz@gmina-a.example.pl"
SENDER = "sekretariat@gmina-a.example.pl"
REMINDER_7D = dt.datetime(2016, 4, 11, 11, 0, tzinfo=WARSAW)


def at(day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(2016, 4, day, hour, minute, tzinfo=WARSAW)


# --- the DSNs, as the servers write them -----------------------------------------------


def postfix_dsn(recipient: str, message_id: str, when: dt.datetime, *, status: str, smtp: str,
                action: str = "failed") -> bytes:
    """Postfix's bounce: notification text, ``message/delivery-status``, returned headers."""
    b = "3F2A1C0A1.1459500000/mail.partnerstwa.example.pl"
    return "\r\n".join([
        "Return-Path: <>",
        "Received: by mail.partnerstwa.example.pl (Postfix) id 3F2A1C0A1; " + format_datetime(when),
        f"Date: {format_datetime(when)}",
        "From: MAILER-DAEMON@mail.partnerstwa.example.pl (Mail Delivery System)",
        "Subject: Undelivered Mail Returned to Sender",
        f"To: {ORGANISER}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{b}"',
        f"Message-Id: <20160402070000.3F2A1C0A1.{int(when.timestamp())}@mail.partnerstwa.example.pl>",
        "",
        "This is a MIME-encapsulated message.",
        "",
        f"--{b}",
        "Content-Description: Notification",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "This is the mail system at host mail.partnerstwa.example.pl.",
        "",
        "I'm sorry to have to inform you that your message could not",
        "be delivered to one or more recipients. It's attached below.",
        "",
        f"<{recipient}>: host mx.gmina-a.example.pl[192.0.2.25] said: {smtp} (in reply",
        "    to RCPT TO command)",
        "",
        f"--{b}",
        "Content-Description: Delivery report",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mail.partnerstwa.example.pl",
        "X-Postfix-Queue-ID: 3F2A1C0A1",
        f"X-Postfix-Sender: rfc822; {ORGANISER}",
        f"Arrival-Date: {format_datetime(when - dt.timedelta(minutes=5))}",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        f"Original-Recipient: rfc822;{recipient}",
        f"Action: {action}",
        f"Status: {status}",
        "Remote-MTA: dns; mx.gmina-a.example.pl",
        f"Diagnostic-Code: smtp; {smtp}",
        "",
        f"--{b}",
        "Content-Description: Undelivered Message Headers",
        "Content-Type: text/rfc822-headers",
        "",
        f"From: {ORGANISER}",
        f"To: {recipient}",
        f"Message-ID: {message_id}",
        "Subject: Potwierdzenie zgloszenia",
        "",
        f"--{b}--",
        "",
    ]).encode()


def exchange_ndr(recipient: str, message_id: str, when: dt.datetime) -> bytes:
    """Exchange Online's NDR for a full mailbox: "550 5.2.2 mailbox full", the friendly
    text as multipart/alternative, the delivery status folded over lines, the original
    message attached whole."""
    b, alt = "_000_AM0PR01MB1234_", "_001_AM0PR01MB1234_"
    return "\r\n".join([
        "Return-Path: <>",
        "From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@gmina-a.example.pl>",
        f"To: {ORGANISER}",
        "Subject: Undeliverable: Potwierdzenie zgloszenia",
        f"Date: {format_datetime(when)}",
        f"Message-ID: <ndr.{int(when.timestamp())}@AM0PR01MB1234.eurprd01.prod.exchangelabs.com>",
        "Auto-Submitted: auto-replied",
        "X-MS-Exchange-Message-Is-Ndr:",
        "Content-Language: en-US",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{b}"',
        "",
        f"--{b}",
        f'Content-Type: multipart/alternative; differences=Content-Type; boundary="{alt}"',
        "",
        f"--{alt}",
        'Content-Type: text/plain; charset="us-ascii"',
        "",
        f"Your message to {recipient} couldn't be delivered.",
        "The recipient's mailbox is full and can't accept messages now.",
        "",
        f"--{alt}",
        'Content-Type: text/html; charset="us-ascii"',
        "",
        "<html><body><p>Your message couldn't be delivered. The mailbox is full.</p></body></html>",
        "",
        f"--{alt}--",
        "",
        f"--{b}",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com",
        f"Arrival-Date: {format_datetime(when)}",
        "",
        f"Original-Recipient: rfc822;{recipient}",
        f"Final-Recipient: rfc822;{recipient}",
        "Action: failed",
        "Status: 5.2.2",
        "Diagnostic-Code: smtp;550 5.2.2 mailbox full;",
        " STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded;",
        " Failed to process message due to a permanent exception",
        "",
        f"--{b}",
        "Content-Type: message/rfc822",
        "",
        f"From: {ORGANISER}",
        f"To: {recipient}",
        "Subject: Potwierdzenie zgloszenia",
        f"Message-ID: {message_id}",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Dziekujemy za zgloszenie.",
        "",
        f"--{b}--",
        "",
    ]).encode()


GMAIL_OVER_QUOTA = (
    "452-4.2.2 The email account that you tried to reach is over quota. Please direct "
    "452-4.2.2 the recipient to https://support.google.com/mail/?p=OverQuotaTemp "
    "a1si1234567wrb.300 - gsmtp"
)


# --- the pipeline ----------------------------------------------------------------------


@pytest.fixture
def conv(tmp_path: Path) -> Conversation:
    """Anna and Bartosz, registered by their secretariat on 1 April; every ack sent."""
    conv = Conversation(settings_for(tmp_path))
    event = conv.settings.event("opole-2016")
    conv.receive(mail(SENDER, "Zgłoszenie", "W załączeniu.", when=at(1),
                      form=form_docx(event, [("Anna Kowalska", ANNA), ("Bartosz Wiśniewski", BARTOSZ)],
                                     institution="Urząd Gminy A")))
    conv.run(at(1))
    assert sorted(a for _, a in kinds(conv.sent())) == [ANNA, BARTOSZ, SENDER]
    return conv


def ack_id(conv: Conversation, address: str) -> str:
    from mailbot.store.tables import OutboundMail

    with conv.app(conv.now).session() as s:
        row = s.exec(select(OutboundMail).where(OutboundMail.to_addr == address)).first()
        assert row is not None
        return row.message_id


def state(conv: Conversation, address: str) -> AddressStatus | None:
    with conv.app(conv.now).session() as s:
        return s.get(AddressStatus, address)


def digest_text(conv: Conversation, when: dt.datetime) -> tuple[str, str]:
    app = conv.app(when)
    with app.session() as s:
        results = queue_digests(s, app.settings, app.templates, app.blobs, when, event_key="opole-2016",
                                dry_run=True)
    rendered = next(r.rendered for r in results if r.rendered is not None)
    return rendered.text, rendered.html


def test_a_full_mailbox_from_postfix_is_recorded_but_does_not_mute_the_address(conv: Conversation) -> None:
    conv.receive(postfix_dsn(BARTOSZ, ack_id(conv, BARTOSZ), at(2), status="5.2.2",
                             smtp=f"552 5.2.2 <{BARTOSZ}>: Recipient address rejected: Mailbox full"))
    report = conv.run(at(2))
    (result,) = report.results
    assert result.outcome == "ignored" and "soft bounce" in result.reason and conv.sent() == []
    bartosz = state(conv, BARTOSZ)
    assert bartosz is not None and not bartosz.bouncing
    assert bartosz.bounce_count == 1 and bartosz.last_bounce_at is not None
    assert (bartosz.last_bounce_reason or "").startswith("5.2.2 smtp; 552 5.2.2")
    # The reminder a week before still reaches him: the mailbox exists.
    conv.run(REMINDER_7D)
    assert ("reminder", BARTOSZ) in kinds(conv.sent())


def test_exchange_550_5_2_2_mailbox_full_is_soft(conv: Conversation) -> None:
    conv.receive(exchange_ndr(ANNA, ack_id(conv, ANNA), at(2)))
    (result,) = conv.run(at(2)).results
    assert result.outcome == "ignored", result.reason
    anna = state(conv, ANNA)
    assert anna is not None and not anna.bouncing and anna.bounce_count == 1
    assert "550 5.2.2 mailbox full" in (anna.last_bounce_reason or "")
    conv.run(REMINDER_7D)
    assert ("reminder", ANNA) in kinds(conv.sent())


def test_gmail_over_quota_is_soft_and_a_delay_notice_records_nothing(conv: Conversation) -> None:
    message_id = ack_id(conv, ANNA)
    # First the relay says it keeps trying, then that it gave up.
    conv.receive(postfix_dsn(ANNA, message_id, at(2), status="4.2.2", smtp=GMAIL_OVER_QUOTA, action="delayed"))
    conv.run(at(2))
    assert state(conv, ANNA) is None
    conv.receive(postfix_dsn(ANNA, message_id, at(6), status="4.2.2", smtp=GMAIL_OVER_QUOTA))
    conv.run(at(6))
    anna = state(conv, ANNA)
    assert anna is not None and not anna.bouncing and anna.bounce_count == 1
    assert "over quota" in (anna.last_bounce_reason or "")
    conv.run(REMINDER_7D)
    assert ("reminder", ANNA) in kinds(conv.sent())


@pytest.mark.parametrize("status, smtp", [
    ("5.1.1", "550 5.1.1 <{0}>: Recipient address rejected: User unknown in virtual mailbox table"),
    ("5.2.1", "550 5.2.1 <{0}>: Mailbox disabled, not accepting messages"),
])
def test_a_dead_or_disabled_mailbox_is_still_muted(conv: Conversation, status: str, smtp: str) -> None:
    conv.receive(postfix_dsn(BARTOSZ, ack_id(conv, BARTOSZ), at(2), status=status, smtp=smtp.format(BARTOSZ)))
    (result,) = conv.run(at(2)).results
    assert result.reason.endswith(f"marked as bouncing: {BARTOSZ}")
    bartosz = state(conv, BARTOSZ)
    assert bartosz is not None and bartosz.bouncing and bartosz.bounce_count == 1
    conv.run(REMINDER_7D)
    sent = kinds(conv.sent())
    assert ("reminder", ANNA) in sent and ("reminder", BARTOSZ) not in sent


def test_a_full_mailbox_after_a_dead_one_keeps_it_muted(conv: Conversation) -> None:
    message_id = ack_id(conv, BARTOSZ)
    conv.receive(postfix_dsn(BARTOSZ, message_id, at(2), status="5.1.1", smtp="550 5.1.1 User unknown"))
    conv.run(at(2))
    conv.receive(postfix_dsn(BARTOSZ, message_id, at(3), status="5.2.2", smtp="552 5.2.2 Mailbox full"))
    conv.run(at(3))
    bartosz = state(conv, BARTOSZ)
    assert bartosz is not None and bartosz.bouncing and bartosz.bounce_count == 2
    assert (bartosz.last_bounce_reason or "").startswith("5.1.1")


def test_the_digest_shows_full_mailboxes_apart_with_a_phone_to_call(conv: Conversation) -> None:
    conv.receive(postfix_dsn(ANNA, ack_id(conv, ANNA), at(2, 8), status="5.2.2", smtp="552 5.2.2 Mailbox full"))
    conv.receive(postfix_dsn(BARTOSZ, ack_id(conv, BARTOSZ), at(2, 8, 5), status="5.1.1",
                             smtp="550 5.1.1 User unknown"))
    conv.run(at(2, 8, 10))
    text, html = digest_text(conv, at(3, 7))
    assert "- adresy, na które poczta nie dochodzi: 1" in text
    assert "- pełne skrzynki odbiorców: 1" in text
    hard = text[text.index("ADRESY, NA KTÓRE POCZTA NIE DOCHODZI (1)"):]
    soft = text[text.index("PEŁNE SKRZYNKI ODBIORCÓW (1)"):]
    assert hard.splitlines()[1].startswith(f"- {BARTOSZ} [nowe] – Bartosz Wiśniewski (OPO-")
    # The form gave the person's phone and the institution's: both, to call.
    assert hard.splitlines()[2] == "  tel. +48774000011, +48774000000"
    assert "odpowiedź serwera: 5.1.1 smtp; 550 5.1.1 User unknown" in hard.splitlines()[3]
    assert soft.splitlines()[2].startswith(f"- {ANNA} [nowe] – Anna Kowalska (OPO-")
    assert soft.splitlines()[3] == "  tel. +48774000011, +48774000000"
    assert "skrzynka odbiorcy pełna lub chwilowo niedostępna; odpowiedź serwera: 5.2.2" in soft.splitlines()[4]
    assert "kolejne (przypomnienia, zmiany) wyślemy normalnie" in soft
    assert "Pełne skrzynki odbiorców (1)" in html and "tel. +48774000011, +48774000000" in html
    # A week after its last bounce a full mailbox has evidently been emptied: it drops out.
    later, _ = digest_text(conv, at(10, 7))
    assert "PEŁNE SKRZYNKI" not in later and f"- {BARTOSZ} [nowe] – Bartosz" in later


def test_nothing_is_muted_for_a_plain_text_over_quota_bounce(conv: Conversation) -> None:
    conv.receive(mail("MAILER-DAEMON@mx.gmina-a.example.pl", "Delivery Status Notification (Failure)",
                      f"Delivery to {ANNA} failed: the recipient's mailbox is over quota.\n\n"
                      f"--- original message ---\nMessage-ID: {ack_id(conv, ANNA)}\n",
                      when=at(2), extra=[("Auto-Submitted", "auto-replied")]))
    (result,) = conv.run(at(2)).results
    assert result.outcome == "ignored", result.reason
    anna = state(conv, ANNA)
    assert anna is not None and not anna.bouncing and anna.bounce_count == 1
    assert is_soft_reason(anna.last_bounce_reason)
    with conv.app(at(2)).session() as s:
        assert s.exec(select(InboundMessage)).all()[-1].outcome == "ignored"


# --- the rule ----------------------------------------------------------------------------


@pytest.mark.parametrize("status, diagnostic, soft", [
    ("5.2.2", "smtp; 552 5.2.2 Mailbox full", True),
    ("4.2.2", GMAIL_OVER_QUOTA, True),
    ("4.4.7", "smtp; 451 4.4.7 delivery time expired", True),
    ("5.0.0", "smtp;554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException", True),
    ("", "smtp; 552 5.2.2 quota exceeded", True),
    ("5.2.1", "smtp; 550 5.2.1 Mailbox disabled", False),
    ("5.1.1", "smtp; 550 5.1.1 user unknown", False),
    ("5.0.0", "smtp; 550 mailbox unavailable", False),
    ("5.7.1", "smtp; 554 5.7.1 rejected: mailbox full of spam?", False),  # the code decides, not the words
    ("", "the recipient's mailbox is full", True),
    ("", "Returned mail: see transcript for details", False),
])
def test_soft_or_hard_by_rfc_3463(status: str, diagnostic: str, soft: bool) -> None:
    assert is_soft(status, diagnostic) is soft
    reason = f"{status} {diagnostic}".strip()
    assert is_soft_reason(reason) is soft


def test_the_status_field_wins_unless_it_is_generic() -> None:
    assert status_code("5.1.1", "550 5.2.2 full") == "5.1.1"
    assert status_code("5.0.0", "550 5.2.2 full") == "5.2.2"
    assert status_code("5.0.0", "550 mailbox unavailable") == "5.0.0"
    assert status_code(None, "Konferencja 18.04.2016, sala 5.2") is None
    assert not is_soft_reason(None) and not is_soft_reason("")
