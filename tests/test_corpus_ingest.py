"""Every real-world message in the corpus parses, classifies, and gives the outcome we expect.

The expectations below were set by reading each file (see corpus/MANIFEST.tsv); they
describe what the message really is, not what would be convenient. The messages are
``tests/data/corpus/eml`` (committed) plus ``../shared/corpus/eml`` when present; a
test about a message only the shared corpus has skips without it.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from mailbot.loopguard import classify
from mailbot.mime import MimeLimits, ParsedMessage, parse_message

try:
    from tests.shared import HAS_CORPUS, REASON, corpus_file, corpus_files
except ImportError:
    from shared import HAS_CORPUS, REASON, corpus_file, corpus_files  # type: ignore[no-redef]

EML_FILES = [p for p in corpus_files("eml") if p.suffix == ".eml"]
OWN = ("zgloszenia@konferencja.example.pl",)
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

# What classify() must say for each corpus message (None: an ordinary message that may be answered).
EXPECTED_KIND: dict[str, str | None] = {
    "flanker-attached-pdf.eml": None,
    "flanker-bounce-office365.eml": "bounce",
    "flanker-disposition-notification.eml": "read_receipt",
    "flanker-enclosed-endless.eml": None,
    "flanker-false-multipart.eml": None,
    "flanker-iphone.eml": None,
    "flanker-long-header.eml": None,
    "flanker-mailformed-headers.eml": None,
    "flanker-missing-final-boundary.eml": None,
    "flanker-outlook-express.eml": None,
    "flanker-russian-attachment-yahoo.eml": None,
    "flanker-torture.eml": None,
    "mail-attachment-encoded-name-wrong-charset.eml": None,
    "mail-attachment-message-rfc822.eml": None,
    "mail-attachment-unquoted-name.eml": None,
    "mail-illegal-boundary.eml": None,
    "mail-japanese-attachment-long-name.eml": None,
    "mail-x-uuencode-msword.eml": None,
    "mailparser-dsn-malformed.eml": "bounce",
    "mailparser-forward-exchange-pdf-att-htm.eml": None,
    "mailparser-notes-pdf-octet-stream.eml": None,
    "paperless-broken.eml": None,
    "phpimap-attachment-encoded-filename.eml": None,
    "phpimap-attachment-long-filename.eml": None,
    "phpimap-four-nested-emails.eml": None,
    "phpimap-issue-414-path-traversal.eml": None,
    "phpimap-issue-511-iso-8859-2-from.eml": None,
    "phpimap-issue-544-boundary-dash.eml": None,
    "phpimap-mail-that-is-attachment.eml": None,  # DMARC report: no auto header; reply address is noreply
    "phpimap-multiple-html-parts-and-attachments.eml": None,
    "phpimap-pec-certified.eml": None,
    "sisimai-postfix-bounce-cr-only.eml": "bounce",
    "sisimai-rfc3834-02-exchange-automatic-reply.eml": "auto_reply",
    "sisimai-rfc3834-03-icloud-auto-reply.eml": "auto_reply",
    "sjm-smime-encrypted.eml": None,
    "sjm-smime-opaque-signed-outlook.eml": None,
    "sjm-smime-signed-with-pdf.eml": None,
    "sjm-yandex-calendar-invite.eml": None,
    "tika-incremental-updates-pdf.eml": None,
    "zbateson-m4006-tnef-whole-message.eml": "read_receipt",  # Outlook "Read:" receipt sent as TNEF
}

_CACHE: dict[str, ParsedMessage] = {}


def _parsed(name: str) -> ParsedMessage:
    if name not in _CACHE:
        _CACHE[name] = parse_message(corpus_file(f"eml/{name}").read_bytes())
    return _CACHE[name]


def _names(name: str) -> list[str]:
    return [a.filename for a in _parsed(name).attachments]


def test_every_message_has_an_expectation() -> None:
    names = {p.name for p in EML_FILES}
    assert len(names) >= 30 and names <= set(EXPECTED_KIND)


def test_shared_corpus_is_fully_covered() -> None:
    if not HAS_CORPUS:
        pytest.skip(REASON)
    assert {p.name for p in EML_FILES} == set(EXPECTED_KIND)


@pytest.mark.parametrize("path", EML_FILES, ids=lambda p: p.name)
def test_every_message_parses_and_classifies(path: Path) -> None:
    limits = MimeLimits()
    start = time.perf_counter()
    parsed = parse_message(path.read_bytes(), limits)
    elapsed = time.perf_counter() - start
    verdict = classify(parsed, OWN)

    assert elapsed < 5, f"{path.name} took {elapsed:.1f}s"
    assert (verdict.kind if verdict else None) == EXPECTED_KIND[path.name], verdict
    assert len(parsed.text) <= limits.max_body_chars
    assert len(parsed.subject) <= 300
    for value in (parsed.subject, parsed.from_name or "", *parsed.headers.values()):
        assert "\r" not in value and "\n" not in value
    for att in parsed.attachments:
        assert att.filename and att.filename == att.filename.strip()
        assert (
            "/" not in att.filename
            and "\\" not in att.filename
            and "\x00" not in att.filename
        )
        assert all(ord(c) >= 32 for c in att.filename)
        assert att.sha256 == hashlib.sha256(att.data).hexdigest()
        assert att.origin.endswith(att.filename)
        assert att.data


# --------------------------------------------------------------------------- bounces and notices


def test_office365_bounce_report() -> None:
    report = _parsed("flanker-bounce-office365.eml").report
    assert report is not None
    assert (report.action, report.status) == ("failed", "5.1.10")
    assert report.failed_addresses == ("noname@example.com",)
    assert (
        report.original_message_id
        == "20171013111011.20866.254C2F3A4D7AA526@ninomail.com"
    )


def test_dsn_with_filename_and_rfc822_headers() -> None:
    parsed = _parsed("mailparser-dsn-malformed.eml")
    assert parsed.return_path == ""
    assert parsed.attachments == ()  # the delivery-status part is a report, not a file
    assert parsed.report is not None
    assert (parsed.report.action, parsed.report.status) == ("failed", "4.2.2")
    assert parsed.report.failed_addresses == ("abh@netpar.com.br",)
    assert (
        parsed.report.original_message_id
        == "004801d1fc84$01c934ac$b247f0b7$@infospacemail.com"
    )


def test_postfix_bounce_with_bare_cr_line_ends() -> None:
    parsed = _parsed("sisimai-postfix-bounce-cr-only.eml")
    assert parsed.from_addr == "MAILER-DAEMON@p351355.pool.example.ne.jp"
    assert parsed.report is not None
    assert parsed.report.status == "5.1.1"
    assert parsed.report.failed_addresses == (
        "kijitora@example.org",
        "r@p351355.pool.example.ne.jp",
    )


def test_auto_replies_reasons() -> None:
    exchange = classify(_parsed("sisimai-rfc3834-02-exchange-automatic-reply.eml"), OWN)
    assert exchange is not None and "Automatic reply" in exchange.reason
    assert (
        _parsed("sisimai-rfc3834-02-exchange-automatic-reply.eml").headers[
            "x-auto-response-suppress"
        ]
        == "All"
    )
    icloud = classify(_parsed("sisimai-rfc3834-03-icloud-auto-reply.eml"), OWN)
    assert icloud is not None and icloud.kind == "auto_reply"


def test_read_receipt_is_not_a_bounce() -> None:
    parsed = _parsed("flanker-disposition-notification.eml")
    assert parsed.report is None and parsed.attachments == ()


# --------------------------------------------------------------------------- attachments


def test_flanker_attached_pdf() -> None:
    (att,) = _parsed("flanker-attached-pdf.eml").attachments
    assert (att.filename, att.content_type) == ("test.pdf", "application/pdf")
    assert att.data.startswith(b"%PDF")
    assert _parsed("flanker-attached-pdf.eml").text == "Test - body content"


def test_decoded_attachment_names() -> None:
    assert _names("phpimap-attachment-encoded-filename.eml") == [
        "Prostřeno_2014_poslední volné termíny.xls"
    ]
    assert _names("mail-japanese-attachment-long-name.eml") == [
        "かきくけこ" * 5 + ".txt"
    ]
    long_names = _names("phpimap-attachment-long-filename.eml")
    assert long_names[0] == (
        "Buchungsbestätigung- Rechnung-Geschäftsbedingungen-Nr.B123-45 - XXXXX xxxxxxxxxxxxxxxxx XxxX, "
        "Lüxxxxxxxxxx - VM Klaus XXXXXX - xxxxxxxx.pdf"
    )
    assert long_names[1].startswith("01_A€àä____@Z-0123456789-qwerty") and long_names[
        1
    ].endswith(".txt")
    assert long_names[2].startswith("02_A€àäąбيد@Z-0123456789-qwerty") and long_names[
        2
    ].endswith(".txt")
    assert all(len(n) <= 150 for n in long_names)
    assert _names("mail-attachment-unquoted-name.eml") == ["This is a test.txt"]
    assert _names("flanker-russian-attachment-yahoo.eml")[0].startswith(
        "Картинка с очень, очень длинным"
    )
    assert _names("mail-attachment-encoded-name-wrong-charset.eml")[0].startswith(
        "01 Quien Te Dij"
    )
    assert _names("mail-attachment-encoded-name-wrong-charset.eml")[0].endswith(
        " Pitbull.mp3"
    )


def test_path_traversal_names_are_stripped() -> None:
    assert _names("phpimap-issue-414-path-traversal.eml") == ["MyFile.txt", "foo"]


def test_forwarded_message_with_pdf() -> None:
    parsed = _parsed("mail-attachment-message-rfc822.eml")
    (att,) = parsed.attachments
    assert (att.filename, att.origin) == (
        "broken.pdf",
        "ForwardedMessage.eml > broken.pdf",
    )
    assert "Just attaching another PDF" in parsed.text


def test_four_nested_messages_all_bodies_read() -> None:
    text = _parsed("phpimap-four-nested-emails.eml").text
    for body in (
        "3-third-content",
        "2-second-content",
        "1-first-content",
        "0-zero-content",
    ):
        assert body in text


def test_part_count_bomb_is_bounded() -> None:
    parsed = _parsed("flanker-enclosed-endless.eml")
    assert "MIME part limit reached: 3043 parts, first 500 examined" in parsed.warnings
    assert parsed.text.startswith("Hello")


def test_tnef_labelled_whole_message_is_really_a_png() -> None:
    parsed = _parsed("zbateson-m4006-tnef-whole-message.eml")
    (att,) = parsed.attachments
    assert att.filename == "winmail.dat" and att.data.startswith(b"\x89PNG")
    assert (
        "winmail.dat could not be decoded: not TNEF data (kept as a plain attachment)"
        in parsed.warnings
    )


def test_smime_variants() -> None:
    encrypted = _parsed("sjm-smime-encrypted.eml")
    assert encrypted.attachments == ()
    assert "encrypted S/MIME message: cannot read attachments" in encrypted.warnings
    opaque = _parsed("sjm-smime-opaque-signed-outlook.eml")
    assert [(a.filename, a.content_type) for a in opaque.attachments] == [
        ("3 crucial benefits of Cloud computing.docx", DOCX)
    ]
    assert (
        opaque.attachments[0].origin
        == "smime.p7m > 3 crucial benefits of Cloud computing.docx"
    )
    assert (
        "opaque-signed S/MIME message: content read, signature not verified"
        in opaque.warnings
    )
    assert _names("sjm-smime-signed-with-pdf.eml") == [
        "module_architecture.png",
        "03-07-2005 errata SharnErrata.pdf",
    ]
    pec = _parsed("phpimap-pec-certified.eml")
    assert _names("phpimap-pec-certified.eml") == [
        "data.xml"
    ]  # smime.p7s dropped, postacert.eml read as mail
    assert "test-content" in pec.text


def test_other_attachment_layouts() -> None:
    assert _names("flanker-iphone.eml") == ["photo.JPG"]
    assert _names("phpimap-issue-544-boundary-dash.eml") == ["file.pdf"]
    assert _names("phpimap-multiple-html-parts-and-attachments.eml") == [
        "attachment1.pdf",
        "attachment2.pdf",
    ]
    assert _names("tika-incremental-updates-pdf.eml") == [
        "testPDF_incrementalUpdates.pdf"
    ]
    assert _names("sjm-yandex-calendar-invite.eml") == ["event.ics"]
    notes = _parsed("mailparser-notes-pdf-octet-stream.eml").attachments
    assert (notes[-1].filename, notes[-1].content_type) == (
        "Move To Eight ZWEP6227F.pdf",
        "application/pdf",
    )
    exchange = _names("mailparser-forward-exchange-pdf-att-htm.eml")
    assert "20170609091403417.pdf" in exchange and "att24916.htm" in exchange
    dmarc = _parsed("phpimap-mail-that-is-attachment.eml").attachments
    assert [a.origin for a in dmarc] == [
        "google.com!yyy.cz!1423872000!1423958399.zip > google.com!sunfox.cz!1423872000!1423958399.xml"
    ]


def test_empty_uuencoded_attachment_is_reported() -> None:
    parsed = _parsed("mail-x-uuencode-msword.eml")
    assert parsed.attachments == ()
    assert (
        "attachment PGP_Cmts_on_12-14-01_Pkg.doc is empty, skipped" in parsed.warnings
    )


# --------------------------------------------------------------------------- headers and broken structure


def test_header_decoding_cases() -> None:
    assert (
        _parsed("phpimap-issue-511-iso-8859-2-from.eml").from_name
        == "COMPANYNAME | usługi"
    )
    assert _parsed("sjm-yandex-calendar-invite.eml").from_name == "Попов Иван"
    long = _parsed("flanker-long-header.eml").subject
    assert long.startswith("Die heiße Zypernsonne quälte Max") and len(long) <= 300
    broken_from = _parsed("flanker-mailformed-headers.eml")
    assert broken_from.from_addr == "headers@gmail.com" and (
        broken_from.from_name or ""
    ).startswith("Юникод")


def test_broken_boundaries_still_give_text() -> None:
    assert _parsed("mail-illegal-boundary.eml").text.startswith(
        "Hello\nThis is an outlook test"
    )
    assert _parsed("flanker-missing-final-boundary.eml").text == "Some body"


def test_a_file_that_is_not_mail_gives_an_empty_message() -> None:
    not_mail = _parsed("paperless-broken.eml")
    assert (not_mail.from_addr, not_mail.subject, not_mail.attachments) == (
        None,
        "",
        (),
    )
