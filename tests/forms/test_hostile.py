"""Hostile inputs made here end ``unreadable`` with a reason, quickly and safely."""

from __future__ import annotations

import datetime as dt
import io
import random
import struct
import time
import zipfile
from pathlib import Path

import pypdf
import pytest

from mailbot.forms import DEFAULT_LIMITS, parse_bytes, parse_file
from mailbot.forms.blank import make_docx
from mailbot.forms.model import EventRef, Limits

from .cycle import OPOLE

try:
    from tests.shared import example
except ImportError:
    from shared import example  # type: ignore[no-redef]

EVENTS = [
    EventRef(
        "opole-2016",
        "Współpraca w partnerstwach samorządowych",
        "Opole",
        dt.date(2016, 4, 18),
    )
]

_RELS = (
    '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="word/document.xml"/></Relationships>'
)
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def docx(document: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("_rels/.rels", _RELS)
        z.writestr("word/document.xml", document)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return out.getvalue()


def unreadable(data: bytes, limits: Limits = DEFAULT_LIMITS) -> str:
    started = time.monotonic()
    got = parse_bytes(data, "hostile", EVENTS, limits)
    assert time.monotonic() - started < 5
    assert got.status == "unreadable", got
    assert got.reason
    return got.reason


def test_zip_bomb_is_refused_before_unpacking() -> None:
    body = (
        f'<w:document xmlns:w="{_W}"><w:body>'.encode()
        + b" " * 30_000_000
        + b"</w:body></w:document>"
    )
    reason = unreadable(docx(body))
    assert "zip bomb" in reason


def test_zip_entry_that_lies_about_its_size() -> None:
    body = (
        f'<w:document xmlns:w="{_W}"><w:body>'.encode()
        + b" " * 500_000
        + b"</w:body></w:document>"
    )
    data = bytearray(docx(body))
    # Patch the declared uncompressed size of word/document.xml (local + central header).
    name = b"word/document.xml"
    for sig, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = 0
        while (pos := data.find(sig, pos)) >= 0:
            name_at = pos + (30 if sig == b"PK\x03\x04" else 46)
            if data[name_at : name_at + len(name)] == name:
                data[pos + size_offset : pos + size_offset + 4] = struct.pack(
                    "<I", 1000
                )
            pos += 4
    assert "unpack" in unreadable(
        bytes(data)
    )  # read stops at the declared size: CRC fails


def test_total_declared_size_limit() -> None:
    body = f'<w:document xmlns:w="{_W}"><w:body/></w:document>'.encode()
    noise = random.Random(0).randbytes(2_000_000)  # incompressible
    reason = unreadable(
        docx(body, {"word/media/a.bin": noise}),
        Limits(max_decompressed_bytes=1_000_000),
    )
    assert "unpack" in reason


def test_billion_laughs_is_refused() -> None:
    lol = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
            for i in range(1, 10)
        )
        + b"]>"
        + f'<w:document xmlns:w="{_W}"><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>'.encode()
    )
    assert "DTD" in unreadable(docx(lol))


def test_external_entity_is_refused() -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        + f'<w:document xmlns:w="{_W}"><w:body><w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>'.encode()
    )
    assert "DTD" in unreadable(docx(xxe))


def test_doctype_after_a_long_comment_is_still_refused() -> None:
    sneaky = (
        b'<?xml version="1.0"?><!--'
        + b"x" * 70_000
        + b'--><!DOCTYPE d [<!ENTITY x "y">]>'
        + f'<w:document xmlns:w="{_W}"><w:body/></w:document>'.encode()
    )
    assert "DTD" in unreadable(docx(sneaky))


def test_deep_nesting_is_refused() -> None:
    deep = (
        f'<w:document xmlns:w="{_W}"><w:body>'.encode()
        + b"<w:sdt>" * 5000
        + b"</w:sdt>" * 5000
        + b"</w:body></w:document>"
    )
    unreadable(docx(deep))


def test_ten_thousand_entries() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("_rels/.rels", _RELS)
        z.writestr(
            "word/document.xml", f'<w:document xmlns:w="{_W}"><w:body/></w:document>'
        )
        for i in range(10_000):
            z.writestr(f"word/media/{i}.bin", b"")
    assert "entries" in unreadable(out.getvalue())


@pytest.mark.parametrize("source", ["generated", "shared"])
def test_truncated_docx_keeps_its_format(source: str) -> None:
    if source == "shared":
        data = example("zgloszenie_UM_Brzeg.docx").read_bytes()
    else:
        data = make_docx(OPOLE)
    got = parse_bytes(data[:3000], "cut.docx", EVENTS)
    assert (got.status, got.format) == ("unreadable", "docx")
    assert got.reason


def _pdf(pages: int, password: str | None = None) -> bytes:
    writer = pypdf.PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    if password is not None:
        writer.encrypt(
            user_password=password, owner_password="owner", algorithm="RC4-128"
        )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_encrypted_pdf() -> None:
    assert "encrypted" in unreadable(_pdf(1, password="sekret"))


def test_pdf_with_too_many_pages() -> None:
    reason = unreadable(_pdf(DEFAULT_LIMITS.max_pdf_pages + 1))
    assert "pages" in reason


def test_a_five_thousand_page_pdf_is_refused_without_reading_its_pages() -> None:
    reason = unreadable(_pdf(5000))
    assert reason == "PDF has 5000 pages (limit 50)"


def test_pdf_page_limit_is_configurable() -> None:
    reason = unreadable(_pdf(6), Limits(max_pdf_pages=5))
    assert "limit 5" in reason


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 100,
        b"PK\x03\x04garbage",
        b"%PDF-1.7\n%%EOF",
        b"{\\rtf1 hello}",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600,
    ],
    ids=["empty", "zeros", "broken-zip", "empty-pdf", "rtf", "ole2"],
)
def test_garbage_never_raises(data: bytes) -> None:
    got = parse_bytes(data, "x", EVENTS)
    assert got.status in {"unreadable", "not_a_form"}
    assert got.reason


def test_file_too_large() -> None:
    assert "larger" in unreadable(
        b"%PDF-1.4" + b" " * 2000, Limits(max_file_bytes=1000)
    )


def test_missing_file(tmp_path: Path) -> None:
    got = parse_file(tmp_path / "nope.docx", EVENTS)
    assert got.status == "unreadable" and got.reason and got.file == "nope.docx"
