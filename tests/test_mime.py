"""Unit tests for mailbot.mime: decoding, containers, limits and hostile input."""

from __future__ import annotations

import base64
import hashlib
import io
import random
import time
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailbot.mime import MimeLimits, ParsedMessage, parse_message

try:
    from tests.shared import corpus_file
except ImportError:
    from shared import corpus_file  # type: ignore[no-redef]
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
FAKE_DOCX = b"PK\x03\x04" + b"word/document.xml" + bytes(range(256)) * 4
FAKE_PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"


def _mail(
    subject: str = "Zgłoszenie", body: str = "W załączeniu zgłoszenie."
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Jan Kowalski <jan.kowalski@Gmina.EXAMPLE.pl>"
    msg["To"] = "zgloszenia@konferencja.example.pl"
    msg["Subject"] = subject
    msg["Message-ID"] = "<abc.123@gmina.example.pl>"
    msg["Date"] = "Mon, 11 Apr 2016 10:00:00 +0200"
    msg.set_content(body)
    return msg


def _raw_mail(
    headers: str, parts: list[bytes] | None = None, body: bytes = b"Tresc.\r\n"
) -> bytes:
    """Hand-built message for headers EmailMessage would refuse or re-encode."""
    head = headers.strip().replace("\n", "\r\n").encode("utf-8", "surrogateescape")
    if parts is None:
        return head + b"\r\n\r\n" + body
    mime = (
        b"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
    )
    out = b"".join(b"--BB\r\n" + p + b"\r\n" for p in parts)
    return head + mime + out + b"--BB--\r\n"


def _attachment_part(header_lines: bytes, data: bytes) -> bytes:
    return (
        header_lines.strip()
        + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(data)
    )


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _with_file(
    data: bytes,
    filename: str,
    maintype: str = "application",
    subtype: str = "octet-stream",
) -> bytes:
    msg = _mail()
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


# --------------------------------------------------------------------------- basics


def test_ordinary_message_with_docx() -> None:
    msg = _mail()
    msg.add_attachment(
        FAKE_DOCX,
        maintype="application",
        subtype=DOCX.split("/")[1],
        filename="zgloszenie.docx",
    )
    parsed = parse_message(msg.as_bytes())
    assert parsed.message_id == "abc.123@gmina.example.pl"
    assert parsed.subject == "Zgłoszenie"
    assert parsed.from_addr == "jan.kowalski@gmina.example.pl"
    assert parsed.from_name == "Jan Kowalski"
    assert parsed.to == ("zgloszenia@konferencja.example.pl",)
    assert parsed.date is not None and parsed.date.year == 2016
    assert parsed.text == "W załączeniu zgłoszenie."
    assert parsed.return_path is None
    assert parsed.report is None
    assert parsed.warnings == ()
    (att,) = parsed.attachments
    assert att.filename == "zgloszenie.docx"
    assert att.content_type == DOCX
    assert att.data == FAKE_DOCX
    assert att.origin == "zgloszenie.docx"
    assert att.sha256 == hashlib.sha256(FAKE_DOCX).hexdigest()


def test_threading_headers_and_null_return_path() -> None:
    raw = _raw_mail(
        """
Return-Path: <>
From: a@example.pl
Message-ID:  < spaced.id @example.pl >
In-Reply-To: <parent@example.pl>
References: <root@example.pl>
 <parent@example.pl> garbage
Subject: Re: x
"""
    )
    parsed = parse_message(raw)
    assert parsed.return_path == ""
    assert parsed.message_id == "spaced.id@example.pl"
    assert parsed.in_reply_to == ("parent@example.pl",)
    assert parsed.references == ("root@example.pl", "parent@example.pl")


def test_loop_headers_are_collected_lower_case_and_decoded() -> None:
    raw = _raw_mail(
        """
From: a@example.pl
AUTO-SUBMITTED: auto-replied
X-Loop: zgloszenia@konferencja.example.pl
X-Loop: other
List-Id: =?utf-8?q?Lista_=C5=81=C3=B3d=C5=BA?= <lista.example.pl>
Subject: x
"""
    )
    headers = parse_message(raw).headers
    assert headers["auto-submitted"] == "auto-replied"
    assert headers["x-loop"] == "zgloszenia@konferencja.example.pl, other"
    assert headers["list-id"] == "Lista Łódź <lista.example.pl>"
    assert "precedence" not in headers


# --------------------------------------------------------------------------- file names


def test_rfc2231_polish_filename_from_emailmessage() -> None:
    parsed = parse_message(_with_file(FAKE_DOCX, "Zgłoszenie ZGŚO.docx"))
    assert [a.filename for a in parsed.attachments] == ["Zgłoszenie ZGŚO.docx"]
    assert (
        parsed.attachments[0].content_type == DOCX
    )  # octet-stream refined by extension


@pytest.mark.parametrize(
    "disposition",
    [
        # RFC 2231 continuations in ISO-8859-2
        b"Content-Disposition: attachment;\r\n filename*0*=iso-8859-2''Zg%B3oszenie%20ZG;\r\n filename*1*=%A6O.docx",
        # RFC 2231 with UTF-8, continuation without encoding flag
        b"Content-Disposition: attachment;\r\n filename*0*=UTF-8'pl'Zg%C5%82oszenie%20ZG%C5%9AO;\r\n filename*1=.docx",
        # RFC 2047 inside a quoted filename (Outlook, Thunderbird)
        b'Content-Disposition: attachment;\r\n filename="=?UTF-8?Q?Zg=C5=82oszenie_ZG=C5=9AO.docx?="',
        # RFC 2047 split across words in the middle of a character
        b'Content-Disposition: attachment;\r\n filename="=?utf-8?B?WmfF?= =?utf-8?B?gm9zemVuaWUgWkfFmk8uZG9jeA==?="',
        # RFC 2047 with the wrong charset declared
        b'Content-Disposition: attachment; filename="=?us-ascii?Q?Zg=C5=82oszenie_ZG=C5=9AO.docx?="',
        # RFC 2047 in cp1250 in name= only
        b'Content-Disposition: attachment\r\nX-Dummy: 1; name="x"',
        # raw 8-bit UTF-8
        'Content-Disposition: attachment; filename="Zgłoszenie ZGŚO.docx"'.encode(),
        # raw 8-bit cp1250 (Outlook Express, old webmail)
        'Content-Disposition: attachment; filename="Zgłoszenie ZGŚO.docx"'.encode(
            "cp1250"
        ),
    ],
)
def test_polish_filename_encodings(disposition: bytes) -> None:
    ctype = b"Content-Type: application/octet-stream"
    if b"X-Dummy" in disposition:
        ctype = b'Content-Type: application/octet-stream; name="=?windows-1250?Q?Zg=B3oszenie_ZG=8CO.docx?="'
    raw = _raw_mail(
        "From: a@example.pl\nSubject: x",
        [_attachment_part(ctype + b"\r\n" + disposition, FAKE_DOCX)],
    )
    parsed = parse_message(raw)
    assert [a.filename for a in parsed.attachments] == ["Zgłoszenie ZGŚO.docx"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\System32\\zgloszenie.docx", "zgloszenie.docx"),
        ("/tmp/../zgloszenie.pdf", "zgloszenie.pdf"),
        ("php://foo.pdf", "foo.pdf"),
        ("C:zgloszenie.docx", "C_zgloszenie.docx"),
        ("zgl\x00osze\x07nie\r\n.docx", "zgl osze nie.docx"),
        ("..", "zalacznik-1.pdf"),
        ("   ", "zalacznik-1.pdf"),
        ("fdp.\u202excod", "fdp.xcod"),
        ("NUL.pdf", "_NUL.pdf"),
    ],
)
def test_filenames_are_sanitised(name: str, expected: str) -> None:
    escaped = base64.b64encode(name.encode()).decode()
    disp = f'Content-Disposition: attachment; filename="=?utf-8?B?{escaped}?="'.encode()
    raw = _raw_mail(
        "From: a@example.pl\nSubject: x",
        [_attachment_part(b"Content-Type: application/pdf\r\n" + disp, FAKE_PDF)],
    )
    (att,) = parse_message(raw).attachments
    assert att.filename == expected


def test_long_filename_is_capped_and_keeps_extension() -> None:
    parsed = parse_message(_with_file(FAKE_DOCX, "Zgłoszenie " * 40 + ".docx"))
    name = parsed.attachments[0].filename
    assert len(name) <= 150 and name.endswith(".docx") and name.startswith("Zgłoszenie")


def test_missing_filename_is_synthesised_from_type_or_content() -> None:
    raw = _raw_mail(
        "From: a@example.pl\nSubject: x",
        [
            _attachment_part(b"Content-Type: application/pdf", FAKE_PDF),
            _attachment_part(
                b"Content-Type: application/octet-stream", FAKE_PDF + b"x"
            ),
            _attachment_part(
                b"Content-Type: image/jpeg\r\nContent-Disposition: inline",
                b"\xff\xd8\xff\xe0jpeg",
            ),
            _attachment_part(b"Content-Type: application/x-whatever", b"\x00\x01"),
        ],
    )
    names = [a.filename for a in parse_message(raw).attachments]
    assert names == [
        "zalacznik-1.pdf",
        "zalacznik-2.pdf",
        "zalacznik-3.jpg",
        "zalacznik-4.bin",
    ]


# --------------------------------------------------------------------------- header safety


def test_header_injection_in_from_display_name_is_cleaned() -> None:
    raw = _raw_mail(
        """
From: =?utf-8?q?Jan=0D=0ABcc:_x@y.example?= <jan@example.pl>
Subject: =?utf-8?q?Zg=C5=82oszenie=0D=0ABcc:_evil@example.com?=
Reply-To: =?utf-8?q?a=0Ab?= <odpowiedz@example.pl>
"""
    )
    parsed = parse_message(raw)
    assert parsed.from_addr == "jan@example.pl"
    assert parsed.from_name == "Jan Bcc: x@y.example"
    assert parsed.subject == "Zgłoszenie Bcc: evil@example.com"
    assert parsed.reply_to == "odpowiedz@example.pl"
    for value in (parsed.from_name, parsed.subject):
        assert "\r" not in value and "\n" not in value


def test_polish_headers_in_various_encodings() -> None:
    raw = _raw_mail(
        "From: =?iso-8859-2?q?Urz=B1d_Gminy_=A3=F3d=BC?= <urzad@lodz.example.pl>\n"
        "Subject: =?windows-1250?B?WmczbyBzemVuaWU=?= =?utf-8?q?_ZG=C5=9AO?=\n"
    )
    parsed = parse_message(raw)
    assert parsed.from_name == "Urząd Gminy Łódź"
    assert parsed.subject.endswith("ZGŚO")
    raw8 = "From: Paweł Gąsior <pawel@example.pl>\nSubject: Zgłoszenie – Opole\n"
    assert parse_message(_raw_mail(raw8)).from_name == "Paweł Gąsior"
    assert parse_message(_raw_mail(raw8)).subject == "Zgłoszenie – Opole"
    cp = parse_message(
        raw8.encode("cp1250", "replace").replace(b"\n", b"\r\n") + b"\r\nx"
    )
    assert cp.from_name == "Paweł Gąsior"


def test_unparseable_from_gives_no_address() -> None:
    parsed = parse_message(_raw_mail("From: just some text\nSubject: x"))
    assert parsed.from_addr is None
    assert parsed.from_name == "just some text"


def test_subject_is_length_capped() -> None:
    parsed = parse_message(_raw_mail("From: a@example.pl\nSubject: " + "ż" * 5000))
    assert 0 < len(parsed.subject) <= 300


# --------------------------------------------------------------------------- body text


def test_plain_text_preferred_over_html() -> None:
    msg = _mail(body="Tekst zwykły")
    msg.add_alternative("<p>Tekst <b>HTML</b></p>", subtype="html")
    assert parse_message(msg.as_bytes()).text == "Tekst zwykły"


def test_html_only_body_is_stripped_safely() -> None:
    msg = _mail()
    msg.set_content(
        "<html><head><style>p{color:red}</style><script>alert(1)</script></head>"
        "<body><p>Dzień&nbsp;dobry,</p><p>przesyłam <b>zgłoszenie</b> &amp; pozdrawiam</p>"
        '<img src="http://tracker.example/x.png"></body></html>',
        subtype="html",
    )
    text = parse_message(msg.as_bytes()).text
    assert "Dzień dobry," in text
    assert "przesyłam zgłoszenie & pozdrawiam" in text
    assert "alert" not in text and "color" not in text and "<" not in text


def test_inline_text_parts_are_body_but_named_html_attachment_is_kept() -> None:
    raw = _raw_mail(
        "From: a@example.pl\nSubject: x",
        [
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nPierwsza cz\xc4\x99\xc5\x9b\xc4\x87",
            b'Content-Type: text/plain; name="notatka.txt"\r\nContent-Disposition: inline; filename="notatka.txt"\r\n\r\nDruga',
            b'Content-Type: text/html; name="att0001.htm"\r\nContent-Disposition: attachment; filename="att0001.htm"\r\n\r\n<p>x</p>',
            b"Content-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR",
        ],
    )
    parsed = parse_message(raw)
    assert parsed.text == "Pierwsza część\n\nDruga"
    assert [a.filename for a in parsed.attachments] == ["att0001.htm"]


def test_body_text_is_capped() -> None:
    parsed = parse_message(
        _mail(body="słowo " * 10_000).as_bytes(), MimeLimits(max_body_chars=1000)
    )
    assert len(parsed.text) <= 1000
    assert any("truncated" in w for w in parsed.warnings)


def test_broken_charset_declaration_falls_back() -> None:
    raw = _raw_mail(
        "From: a@example.pl\nSubject: x\nContent-Type: text/plain; charset=x-no-such",
        body="Zażółć".encode(),
    )
    assert parse_message(raw).text == "Zażółć"
    raw = _raw_mail(
        "From: a@example.pl\nSubject: x\nContent-Type: text/plain; charset=us-ascii",
        body="Zażółć".encode("cp1250"),
    )
    assert parse_message(raw).text == "Zażółć"


# --------------------------------------------------------------------------- forwarded messages


def _forward(inner: EmailMessage, filename: str = "fwd.eml") -> EmailMessage:
    outer = _mail(subject="Fwd: Zgłoszenie", body="Przesyłam dalej.")
    outer.add_attachment(inner, filename=filename)
    return outer


def test_forwarded_message_with_form_inside() -> None:
    inner = _mail(body="Treść oryginału")
    inner.add_attachment(
        FAKE_DOCX,
        maintype="application",
        subtype="octet-stream",
        filename="zgłoszenie.docx",
    )
    parsed = parse_message(_forward(inner).as_bytes())
    (att,) = parsed.attachments
    assert att.filename == "zgłoszenie.docx"
    assert att.origin == "fwd.eml > zgłoszenie.docx"
    assert "Przesyłam dalej." in parsed.text
    assert "Forwarded message" in parsed.text and "Treść oryginału" in parsed.text
    assert parsed.from_addr == "jan.kowalski@gmina.example.pl"


def test_nested_forwards_are_bounded_by_max_depth() -> None:
    msg = _mail(body="poziom 0")
    msg.add_attachment(
        FAKE_PDF, maintype="application", subtype="pdf", filename="form.pdf"
    )
    for level in range(1, 6):
        msg = _forward(msg, filename=f"fwd{level}.eml")
    deep = parse_message(msg.as_bytes())
    assert [a.origin for a in deep.attachments] == [
        "fwd5.eml > fwd4.eml > fwd3.eml > fwd2.eml > fwd1.eml > form.pdf"
    ]
    assert "poziom 0" in deep.text
    shallow = parse_message(msg.as_bytes(), MimeLimits(max_depth=3))
    assert shallow.attachments == ()
    assert any("nesting deeper than 3" in w for w in shallow.warnings)


def test_attached_eml_file_is_read_as_message() -> None:
    inner = _mail(body="wewnątrz")
    inner.add_attachment(
        FAKE_PDF, maintype="application", subtype="pdf", filename="f.pdf"
    )
    parsed = parse_message(_with_file(inner.as_bytes(), "stary mail.eml"))
    assert [a.origin for a in parsed.attachments] == ["stary mail.eml > f.pdf"]


# --------------------------------------------------------------------------- zip


def test_zip_with_form_inside_skips_macos_junk() -> None:
    data = _zip(
        {
            "formularze/": b"",
            "formularze/zgłoszenie.docx": FAKE_DOCX,
            "__MACOSX/formularze/._zgłoszenie.docx": b"\x00\x05\x16\x07",
            "formularze/.DS_Store": b"junk",
        }
    )
    parsed = parse_message(_with_file(data, "formularze.zip", "application", "zip"))
    (att,) = parsed.attachments
    assert att.filename == "zgłoszenie.docx"
    assert att.content_type == DOCX
    assert att.origin == "formularze.zip > zgłoszenie.docx"
    assert att.data == FAKE_DOCX


def test_zip_names_in_polish_oem_codepage() -> None:
    data = _zip({"Zg?oszenie.docx": FAKE_DOCX})
    data = data.replace(
        b"Zg?oszenie", "Zgłoszenie".encode("cp852")
    )  # Windows "Send to zip"
    (att,) = parse_message(_with_file(data, "z.zip", "application", "zip")).attachments
    assert att.filename == "Zgłoszenie.docx"


def test_docx_is_not_unpacked_as_zip() -> None:
    docx = _zip({"[Content_Types].xml": b"<x/>", "word/document.xml": b"<w/>"})
    (att,) = parse_message(
        _with_file(docx, "form.docx", "application", "zip")
    ).attachments
    assert att.filename == "form.docx" and att.data == docx


def test_nested_zip_one_level_and_no_further() -> None:
    inner = _zip({"form.pdf": FAKE_PDF})
    middle = _zip({"inner.zip": inner})
    parsed = parse_message(_with_file(middle, "outer.zip", "application", "zip"))
    assert [a.origin for a in parsed.attachments] == [
        "outer.zip > inner.zip > form.pdf"
    ]
    deeper = _zip({"middle.zip": middle})
    parsed = parse_message(_with_file(deeper, "outer.zip", "application", "zip"))
    assert parsed.attachments == ()
    assert any("inside a zip inside a zip" in w for w in parsed.warnings)


def test_zip_bomb_is_skipped_with_warning() -> None:
    bomb = _zip({"zeros.bin": bytes(100 * 1024 * 1024), "form.pdf": FAKE_PDF})
    assert len(bomb) < 200_000
    start = time.perf_counter()
    parsed = parse_message(_with_file(bomb, "x.zip", "application", "zip"))
    assert time.perf_counter() - start < 2
    assert [a.filename for a in parsed.attachments] == ["form.pdf"]
    assert any(
        w.startswith("zip bomb suspected in x.zip") and "skipped" in w
        for w in parsed.warnings
    )


def test_zip_entry_and_size_limits() -> None:
    rnd = random.Random(1)
    entries = {f"f{i}.pdf": b"%PDF" + rnd.randbytes(600) for i in range(5)}
    parsed = parse_message(
        _with_file(_zip(entries), "a.zip", "application", "zip"),
        MimeLimits(max_zip_entries=3),
    )
    assert len(parsed.attachments) == 3
    assert any("5 files: first 3 examined" in w for w in parsed.warnings)
    parsed = parse_message(
        _with_file(_zip(entries), "a.zip", "application", "zip"),
        MimeLimits(max_zip_total=1500),
    )
    assert len(parsed.attachments) == 2
    assert any("unpacks to more than 1500 bytes" in w for w in parsed.warnings)


def test_corrupt_or_encrypted_zip_does_not_raise() -> None:
    broken = _zip({"a.pdf": FAKE_PDF})[:-30]
    parsed = parse_message(_with_file(broken, "broken.zip", "application", "zip"))
    assert [a.filename for a in parsed.attachments] == [
        "broken.zip"
    ]  # kept for the admin
    assert any("could not be opened" in w for w in parsed.warnings)
    enc = bytearray(_zip({"a.pdf": FAKE_PDF}))
    for sig in (
        b"PK\x03\x04",
        b"PK\x01\x02",
    ):  # set the "encrypted" flag bit in both headers
        pos = enc.find(sig)
        flag_at = pos + (6 if sig == b"PK\x03\x04" else 8)
        enc[flag_at] |= 1
    parsed = parse_message(_with_file(bytes(enc), "enc.zip", "application", "zip"))
    assert parsed.attachments == ()
    assert any("password-protected" in w for w in parsed.warnings)


def test_macos_zip_from_corpus() -> None:
    parsed = parse_message(
        _with_file(
            corpus_file("other/mail-test-pdf-macos.zip").read_bytes(),
            "test.zip",
            "application",
            "zip",
        )
    )
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("test.pdf", "application/pdf")
    ]


# --------------------------------------------------------------------------- limits and hostile structure


def test_ten_thousand_parts_finish_fast_and_bounded() -> None:
    parts = [
        b'Content-Type: application/pdf; name="f%d.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK%d'
        % (i, i)
        for i in range(10_000)
    ]
    raw = _raw_mail("From: a@example.pl\nSubject: bomba", parts)
    start = time.perf_counter()
    parsed = parse_message(raw)
    assert time.perf_counter() - start < 5
    assert parsed.subject == "bomba"
    assert len(parsed.attachments) < 500
    assert "MIME part limit reached: 10001 parts, first 500 examined" in parsed.warnings


def test_deeply_nested_multiparts_do_not_recurse_forever() -> None:
    for levels in (100, 3000):
        raw = b"From: a@example.pl\r\nSubject: deep\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
        raw += b"".join(
            b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i - 1, i)
            for i in range(1, levels)
        )
        parsed = parse_message(raw)
        assert parsed.subject == "deep" and parsed.from_addr == "a@example.pl"
        assert parsed.warnings


def test_attachment_and_total_size_limits() -> None:
    msg = _mail()
    for i in range(3):
        msg.add_attachment(
            FAKE_PDF + bytes([i]) * 2000,
            maintype="application",
            subtype="pdf",
            filename=f"{i}.pdf",
        )
    small = parse_message(msg.as_bytes(), MimeLimits(max_attachment_bytes=1000))
    assert small.attachments == () and any("exceeds 1000" in w for w in small.warnings)
    total = parse_message(msg.as_bytes(), MimeLimits(max_total_bytes=7000))
    assert [a.filename for a in total.attachments] == ["0.pdf", "1.pdf"]
    assert any("total attachment size limit" in w for w in total.warnings)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00" * 1000,
        bytes(range(256)) * 200,
        b"Content-Type: multipart/mixed\r\n\r\n--\r\n--\r\n",
        b'Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n\r\n----\r\n',
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!",
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n=",
        b"Content-Type: application/zip; name=a.zip\r\n\r\nPK\x03\x04garbage",
        b"Content-Type: application/pkcs7-mime; name=smime.p7m\r\n\r\n0\x80\x06\x09*\x86H\x86\xf7\r\x01\x07\x02\xa0\x80",
        b'Content-Type: application/ms-tnef\r\n\r\nx\x9f>"\x01\x00\x01\xff\xff\xff\xff\xff\xff',
        b"From: =?utf-8?b?####?= <@>\r\nDate: Mon, 99 Foo 99999 99:99:99\r\nSubject: =?x?q?=ZZ?=\r\n\r\n",
        b"From: " + b"(" * 10000 + b"\r\n\r\n",
    ],
)
def test_hostile_input_never_raises(raw: bytes) -> None:
    assert isinstance(parse_message(raw), ParsedMessage)


def test_random_corruption_never_raises() -> None:
    msg = _mail()
    msg.add_attachment(
        _zip({"a.docx": FAKE_DOCX}),
        maintype="application",
        subtype="zip",
        filename="a.zip",
    )
    msg.add_attachment(_forward(_mail()), filename="f.eml")
    seed = msg.as_bytes()
    rnd = random.Random(20160418)
    for _ in range(150):
        data = bytearray(seed)
        for _ in range(rnd.randint(1, 20)):
            op = rnd.random()
            pos = rnd.randrange(len(data))
            if op < 0.5:
                data[pos] = rnd.randrange(256)
            elif op < 0.8:
                del data[pos : pos + rnd.randint(1, 200)]
            else:
                data[pos:pos] = rnd.choice(
                    [b"\r\n--", b"=?", b"\x00", b'"', b";", b"\r\n\r\n"]
                )
        assert isinstance(parse_message(bytes(data)), ParsedMessage)


# --------------------------------------------------------------------------- S/MIME, uuencode, DSN


def test_smime_signature_is_not_an_attachment() -> None:
    raw = _raw_mail(
        "From: a@example.pl\nSubject: podpisany\nMIME-Version: 1.0\n"
        'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=SS',
        body=(
            b"--SS\r\nContent-Type: multipart/mixed; boundary=MM\r\n\r\n"
            b"--MM\r\nContent-Type: text/plain\r\n\r\nTre\xc5\x9b\xc4\x87\r\n"
            b"--MM\r\nContent-Type: application/pdf; name=f.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(FAKE_PDF)
            + b"--MM--\r\n--SS\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
            b"Content-Disposition: attachment; filename=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\nMIIB\r\n--SS--\r\n"
        ),
    )
    parsed = parse_message(raw)
    assert [a.filename for a in parsed.attachments] == ["f.pdf"]
    assert parsed.text == "Treść"


def test_encrypted_smime_gives_warning() -> None:
    raw = _raw_mail(
        "From: a@example.pl\nSubject: tajne\nMIME-Version: 1.0\n"
        'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"\n'
        "Content-Transfer-Encoding: base64",
        body=base64.encodebytes(b"0\x82\x01\x00 not really"),
    )
    parsed = parse_message(raw)
    assert parsed.attachments == ()
    assert "encrypted S/MIME message: cannot read attachments" in parsed.warnings


def test_uuencoded_file_in_text_body() -> None:
    import binascii

    payload = FAKE_PDF
    lines = b"".join(
        binascii.b2a_uu(payload[i : i + 45]) for i in range(0, len(payload), 45)
    )
    body = (
        b"Przesylam formularz.\r\n\r\nbegin 644 zgloszenie.pdf\r\n"
        + lines.replace(b"\n", b"\r\n")
        + b"`\r\nend\r\n\r\nPozdrawiam\r\n"
    )
    parsed = parse_message(_raw_mail("From: a@example.pl\nSubject: uu", body=body))
    (att,) = parsed.attachments
    assert (att.filename, att.content_type, att.data) == (
        "zgloszenie.pdf",
        "application/pdf",
        payload,
    )
    assert "Przesylam formularz." in parsed.text and "Pozdrawiam" in parsed.text
    assert "begin 644" not in parsed.text


def test_x_uuencode_transfer_encoding() -> None:
    import binascii

    lines = b"".join(
        binascii.b2a_uu(FAKE_DOCX[i : i + 45]) for i in range(0, len(FAKE_DOCX), 45)
    )
    part = (
        b'Content-Type: application/msword; name="form.doc"\r\nContent-Disposition: attachment; filename="form.doc"\r\n'
        b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 600 form.doc\r\n"
        + lines
        + b"`\r\nend\r\n"
    )
    (att,) = parse_message(
        _raw_mail("From: a@example.pl\nSubject: x", [part])
    ).attachments
    assert att.filename == "form.doc" and att.data == FAKE_DOCX


def test_delivery_status_notification_is_parsed() -> None:
    raw = _raw_mail(
        "From: MAILER-DAEMON@mx.example.pl (Mail Delivery System)\nSubject: Undelivered Mail Returned to Sender\n"
        "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=RR",
        body=(
            b"--RR\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n"
            b"--RR\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.pl\r\n\r\n"
            b"Final-Recipient: rfc822; Anna@Urzad.Example.pl\r\nOriginal-Recipient: rfc822;anna@urzad.example.pl\r\n"
            b"Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n"
            b"Final-Recipient: rfc822; biuro@urzad.example.pl\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
            b"--RR\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: zgloszenia@konferencja.example.pl\r\n"
            b"Message-ID: <potwierdzenie-17@konferencja.example.pl>\r\nSubject: Potwierdzenie\r\n"
            b"--RR--\r\n"
        ),
    )
    report = parse_message(raw).report
    assert report is not None
    assert report.action == "failed" and report.status == "5.1.1"
    assert report.failed_addresses == ("anna@urzad.example.pl", "Anna@urzad.example.pl")
    assert report.original_message_id == "potwierdzenie-17@konferencja.example.pl"
    assert [r.action for r in report.recipients] == ["failed", "delayed"]
    assert "550 5.1.1" in report.recipients[0].diagnostic


def test_returned_message_in_bounce_is_not_mined_for_attachments() -> None:
    returned = _mail(subject="Potwierdzenie")
    returned.add_attachment(
        FAKE_PDF, maintype="application", subtype="pdf", filename="formularz-pusty.pdf"
    )
    raw = _raw_mail(
        "From: postmaster@example.pl\nSubject: Undeliverable\nMIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=RR",
        body=(
            b"--RR\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n"
            b"--RR\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
            b"Final-Recipient: rfc822; x@example.pl\r\nAction: failed\r\nStatus: 5.0.0\r\n"
            b"--RR\r\nContent-Type: message/rfc822\r\n\r\n"
            + returned.as_bytes()
            + b"\r\n--RR--\r\n"
        ),
    )
    parsed = parse_message(raw)
    assert parsed.attachments == ()
    assert (
        parsed.report is not None
        and parsed.report.original_message_id == "abc.123@gmina.example.pl"
    )


# --------------------------------------------------------------------------- TNEF


def _tnef_mail(data: bytes) -> bytes:
    return _with_file(data, "winmail.dat", "application", "ms-tnef")


def test_tnef_quick_winmail_surfaces_attachments() -> None:
    parsed = parse_message(_tnef_mail(corpus_file("other/poi-quick-winmail.dat").read_bytes()))
    names = [a.filename for a in parsed.attachments]
    assert names == ["quick.doc", "quick.html", "quick.pdf", "quick.txt", "quick.xml"]
    pdf = parsed.attachments[2]
    assert (
        pdf.origin == "winmail.dat > quick.pdf"
        and pdf.content_type == "application/pdf"
    )
    assert pdf.data.startswith(b"%PDF")


def test_tnef_umlaut_filename() -> None:
    parsed = parse_message(_tnef_mail(corpus_file("other/tnefparse-umlaut.tnef").read_bytes()))
    assert "UmlautAnhang-äüö.txt" in [a.filename for a in parsed.attachments]


def test_tnef_memory_bomb_gives_warning_not_exception() -> None:
    start = time.perf_counter()
    parsed = parse_message(_tnef_mail(corpus_file("other/poi-oom.tnef").read_bytes()))
    assert time.perf_counter() - start < 1
    assert parsed.attachments == ()
    assert any(
        w.startswith("winmail.dat could not be decoded") for w in parsed.warnings
    )


def test_tnef_as_the_whole_message() -> None:
    data = corpus_file("other/poi-quick-winmail.dat").read_bytes()
    raw = _raw_mail(
        "From: a@example.pl\nSubject: cały TNEF\nMIME-Version: 1.0\n"
        'Content-Type: application/ms-tnef; name="winmail.dat"\nContent-Transfer-Encoding: base64',
        body=base64.encodebytes(data),
    )
    parsed = parse_message(raw)
    assert len(parsed.attachments) == 5
    assert all(a.origin.startswith("winmail.dat > ") for a in parsed.attachments)
