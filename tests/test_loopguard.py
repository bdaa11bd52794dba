"""Unit tests for mailbot.loopguard: every rule, its priority, and the cases it must leave alone."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from mailbot.loopguard import AutoVerdict, classify, safe_to_reply
from mailbot.mime import Attachment, ParsedMessage, parse_message

OWN = ("zgloszenia@konferencja.example.pl", "Biuro@Konferencja.example.pl")


def _parsed(
    headers: dict[str, str] | None = None,
    *,
    subject: str = "Zgłoszenie - Opole",
    sender: str = "Jan Kowalski <jan@gmina.example.pl>",
    docx: bool = True,
) -> ParsedMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = OWN[0]
    msg["Subject"] = subject
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content("W załączeniu formularz.")
    if docx:
        msg.add_attachment(
            b"PK\x03\x04word/",
            maintype="application",
            subtype="octet-stream",
            filename="zgloszenie.docx",
        )
    return parse_message(msg.as_bytes())


def _kind(parsed: ParsedMessage) -> str | None:
    verdict = classify(parsed, OWN)
    return verdict.kind if verdict else None


def test_ordinary_message_with_docx_gets_replies() -> None:
    parsed = _parsed()
    assert parsed.attachments and classify(parsed, OWN) is None


def test_empty_message_tolerated() -> None:
    assert classify(ParsedMessage(), OWN) is None
    assert classify(ParsedMessage(), ()) is None


# --------------------------------------------------------------------------- bounces


def _report(report_type: str) -> bytes:
    second = (
        b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; anna@urzad.example.pl\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        if report_type == "delivery-status"
        else b"Content-Type: message/disposition-notification\r\n\r\nFinal-Recipient: rfc822; anna@urzad.example.pl\r\n"
        b"Disposition: manual-action/MDN-sent-manually; displayed\r\n"
    )
    return (
        b"From: Anna <anna@urzad.example.pl>\r\nSubject: Zgloszenie\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/report; report-type="
        + report_type.encode()
        + b"; boundary=RR\r\n\r\n"
        b"--RR\r\nContent-Type: text/plain\r\n\r\nReport.\r\n--RR\r\n"
        + second
        + b"--RR--\r\n"
    )


def test_delivery_status_report_is_bounce_with_failed_address() -> None:
    verdict = classify(parse_message(_report("delivery-status")), OWN)
    assert verdict == AutoVerdict(
        "bounce",
        "delivery status notification: delivery to anna@urzad.example.pl failed (5.1.1)",
    )


def test_disposition_notification_is_read_receipt() -> None:
    assert _kind(parse_message(_report("disposition-notification"))) == "read_receipt"


@pytest.mark.parametrize(
    "sender",
    [
        "MAILER-DAEMON@mx.example.pl",
        "postmaster@example.pl",
        "Mail Delivery System <Mailer-Daemon@x.example>",
    ],
)
def test_mail_system_senders_are_bounces(sender: str) -> None:
    assert _kind(_parsed(sender=sender, subject="Hello")) == "bounce"


@pytest.mark.parametrize(
    "subject",
    [
        "Undelivered Mail Returned to Sender",
        "Delivery Status Notification (Failure)",
        "Niedostarczona wiadomość: Zgłoszenie",
        "Niedostarczone: Zgłoszenie",
        "Zwrot niedoręczonej wiadomości",
        "Wiadomość niedostarczona: Zgłoszenie",
        "Undeliverable: Zgłoszenie - Opole",
        "Mail delivery failed: returning message to sender",
        "Returned mail: see transcript for details",
        "failure notice",
    ],
)
def test_bounce_subjects(subject: str) -> None:
    verdict = classify(_parsed(subject=subject, docx=False), OWN)
    assert (
        verdict is not None
        and verdict.kind == "bounce"
        and "delivery failure" in verdict.reason
    )


def test_exchange_ndr_header_and_failed_recipients() -> None:
    assert _kind(_parsed({"X-MS-Exchange-Message-Is-Ndr": ""}, subject="x")) == "bounce"
    assert (
        _kind(_parsed({"X-Failed-Recipients": "anna@urzad.example.pl"}, subject="x"))
        == "bounce"
    )


def test_null_return_path_alone_is_bounce_but_auto_reply_wins() -> None:
    verdict = classify(
        _parsed({"Return-Path": "<>"}, subject="Informacja", docx=False), OWN
    )
    assert (
        verdict is not None
        and verdict.kind == "bounce"
        and "Return-Path" in verdict.reason
    )
    assert (
        _kind(
            _parsed(
                {"Return-Path": "<>"}, subject="Automatic reply: Zgłoszenie", docx=False
            )
        )
        == "auto_reply"
    )


def test_bounce_beats_auto_submitted() -> None:
    raw = _report("delivery-status").replace(
        b"MIME-Version", b"Auto-Submitted: auto-replied\r\nMIME-Version"
    )
    assert _kind(parse_message(raw)) == "bounce"


# --------------------------------------------------------------------------- auto replies


@pytest.mark.parametrize(
    "value", ["auto-replied", "auto-generated", "AUTO-NOTIFIED; owner-email=x@y", "yes"]
)
def test_auto_submitted(value: str) -> None:
    verdict = classify(_parsed({"Auto-Submitted": value}), OWN)
    assert (
        verdict is not None
        and verdict.kind == "auto_reply"
        and verdict.reason == f"Auto-Submitted: {value}"
    )


def test_auto_submitted_no_is_human() -> None:
    assert classify(_parsed({"Auto-Submitted": "No"}), OWN) is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("X-Autoreply", "yes"), ("X-Autorespond", "on"), ("x-autoreply", "TRUE")],
)
def test_autoreply_headers(name: str, value: str) -> None:
    assert _kind(_parsed({name: value})) == "auto_reply"


def test_autoreply_header_negative_value_ignored() -> None:
    assert classify(_parsed({"X-Autoreply": "no"}), OWN) is None


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: Zgłoszenie",
        "Automatyczna odpowiedź: Zgłoszenie",
        "AUTOREPLY: x",
        "Auto reply: x",
        "Out of Office: Zgłoszenie",
        "Nieobecność",
        "Nieobecność: urlop do 20.04",
        "Poza biurem",
        "Odpowiedź automatyczna: Zgłoszenie",
        "Odpowiedz automatyczna: Zgloszenie",
    ],
)
def test_auto_reply_subjects(subject: str) -> None:
    assert _kind(_parsed(subject=subject, docx=False)) == "auto_reply"


@pytest.mark.parametrize(
    "subject",
    [
        "Nieobecność na konferencji w Opolu",  # a participant cancelling, not an OOF notice
        "RE: Automatic reply: Zgłoszenie",  # a person answering an auto-reply
        "Zgłoszenie - out of office hours",
        "Potwierdzenie udziału",
    ],
)
def test_human_subjects_are_not_auto_replies(subject: str) -> None:
    assert classify(_parsed(subject=subject), OWN) is None


def test_x_auto_response_suppress_decision() -> None:
    # Exchange auto-reply marked only by the header (subject in a language we do not know)
    verdict = classify(
        _parsed(
            {"X-Auto-Response-Suppress": "All"},
            subject="Automatická odpověď: x",
            docx=False,
        ),
        OWN,
    )
    assert (
        verdict is not None
        and verdict.kind == "auto_reply"
        and "X-Auto-Response-Suppress" in verdict.reason
    )
    assert (
        _kind(
            _parsed(
                {"X-Auto-Response-Suppress": "DR, RN, NRN, OOF, AutoReply"}, docx=False
            )
        )
        == "auto_reply"
    )
    # only other kinds of automatic mail suppressed: our confirmation is fine
    assert (
        classify(_parsed({"X-Auto-Response-Suppress": "OOF"}, docx=False), OWN) is None
    )
    assert (
        classify(
            _parsed({"X-Auto-Response-Suppress": "DR, NDR, RN, NRN"}, docx=False), OWN
        )
        is None
    )
    # a form attached means a person or an app sent a registration: never drop it on this header alone
    assert classify(_parsed({"X-Auto-Response-Suppress": "All"}), OWN) is None


def test_x_auto_response_suppress_with_only_signature_images_still_counts() -> None:
    base = _parsed({"X-Auto-Response-Suppress": "All"}, docx=False)
    logo = Attachment("image001.png", "image/png", b"\x89PNG", "image001.png", "0" * 64)
    parsed = ParsedMessage(
        from_addr=base.from_addr, subject="x", headers=base.headers, attachments=(logo,)
    )
    assert _kind(parsed) == "auto_reply"


def test_read_receipt_subjects() -> None:
    assert _kind(_parsed(subject="Read: Zgłoszenie", docx=False)) == "read_receipt"
    assert (
        _kind(_parsed(subject="Przeczytane: Zgłoszenie", docx=False)) == "read_receipt"
    )


# --------------------------------------------------------------------------- lists


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"Precedence": "bulk"}, "Precedence: bulk"),
        ({"Precedence": "JUNK"}, "Precedence: junk"),
        ({"Precedence": "list"}, "Precedence: list"),
        ({"List-Id": "Samorzady <samorzady.lists.example.pl>"}, "List-Id"),
        ({"List-Unsubscribe": "<mailto:unsub@example.pl>"}, "List-Unsubscribe"),
    ],
)
def test_lists(headers: dict[str, str], fragment: str) -> None:
    verdict = classify(_parsed(headers), OWN)
    assert verdict is not None and verdict.kind == "list" and fragment in verdict.reason


def test_precedence_other_values_ignored() -> None:
    assert classify(_parsed({"Precedence": "first-class"}), OWN) is None


# --------------------------------------------------------------------------- own mail and loops


@pytest.mark.parametrize(
    "sender",
    [
        "zgloszenia@konferencja.example.pl",
        "ZGLOSZENIA@Konferencja.Example.PL",
        "Bot <zgloszenia+test@konferencja.example.pl>",
        "biuro@konferencja.example.pl",
    ],
)
def test_own_address(sender: str) -> None:
    verdict = classify(_parsed(sender=sender), OWN)
    assert verdict is not None and verdict.kind == "own"


def test_x_mailbot_kind_is_loop() -> None:
    verdict = classify(_parsed({"X-Mailbot-Kind": "confirmation"}), OWN)
    assert verdict == AutoVerdict(
        "loop", "X-Mailbot-Kind: confirmation (mail generated by this bot)"
    )


def test_x_loop_naming_us_is_loop_other_x_loop_is_not() -> None:
    assert _kind(_parsed({"X-Loop": "Zgloszenia@Konferencja.example.pl"})) == "loop"
    assert classify(_parsed({"X-Loop": "lista@inna.example.pl"}), OWN) is None


def test_classify_works_on_hand_built_messages_with_odd_header_case() -> None:
    parsed = ParsedMessage(
        from_addr="x@example.pl", headers={"Auto-Submitted": "auto-replied"}
    )
    assert _kind(parsed) == "auto_reply"


# --------------------------------------------------------------------------- safe_to_reply


@pytest.mark.parametrize(
    "address",
    [
        None,
        "",
        "mailer-daemon@example.pl",
        "MAILER-DAEMON@example.pl",
        "postmaster@example.pl",
        "noreply@example.pl",
        "no-reply@example.pl",
        "no_reply@example.pl",
        "do-not-reply@example.pl",
        "donotreply@example.pl",
        "noreply-dmarc-support@google.com",
        "bounce@example.pl",
        "bounces+abc=def@example.pl",
        "bounce-123@example.pl",
        "zgloszenia@konferencja.example.pl",
        "Zgloszenia+x@KONFERENCJA.example.pl",
        "Jan <jan@example.pl>",
        "jan@example.pl\r\nBcc: x@y.example",
        "jan@example.pl, x@y.example",
        "jan@localhost",
        "jan@",
        "@example.pl",
        "jan@@example.pl",
    ],
)
def test_not_safe_to_reply(address: str | None) -> None:
    assert safe_to_reply(address, OWN) is False


@pytest.mark.parametrize(
    "address",
    [
        "jan.kowalski@gmina.example.pl",
        "Anna.Nowak@Urzad.Example.pl",
        "sekretariat+konf@ug.example.pl",
    ],
)
def test_safe_to_reply(address: str) -> None:
    assert safe_to_reply(address, OWN) is True
