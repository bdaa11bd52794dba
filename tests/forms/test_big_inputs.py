"""Big-but-legal inputs cost bounded time: refused with a reason, never run out a limit.

Each input is generated here at a few MB; its time is bounded as a ratio to parsing a
normal generated form in the same test, so the bound holds on any machine.
"""

from __future__ import annotations

import io
import logging
import random
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mailbot.forms import parse_bytes
from mailbot.forms import worker
from mailbot.forms.blank import FilledValues, make_docx, make_pdf
from mailbot.forms.model import Consents, FormData, Limits
from tests.forms.cycle import OPOLE
from tests.forms.test_hostile import EVENTS, docx
from tests.forms.test_variants import NYSA, TYPED

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_ODT_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
)
RATIO = 200


def _words(rng: random.Random, n: int) -> str:
    return " ".join(
        "".join(rng.choice("abcdefghijklmnoprstuwyz") for _ in range(rng.randint(3, 9)))
        for _ in range(n)
    )


def _normal(fmt: str = "docx") -> bytes:
    values = FilledValues(
        institution=NYSA, participants=TYPED[:3], workshops={"A"}, remarks=None,
        consents=Consents(True, False), place_date=None,
    )
    return make_pdf(OPOLE, values) if fmt == "pdf" else make_docx(OPOLE, values)


def _timed(data: bytes, limits: Limits = Limits()) -> tuple[FormData, float]:
    started = time.perf_counter()
    got = parse_bytes(data, "big", EVENTS, limits)
    return got, time.perf_counter() - started


def _bounded(data: bytes, fmt: str) -> FormData:
    """Parse ``data``; its time must stay within RATIO × a normal form's (same format)."""
    form = _normal(fmt)
    _timed(form)  # warm imports and caches
    normal = min(_timed(form)[1] for _ in range(3))
    got, took = _timed(data)
    assert took <= RATIO * normal, f"{took:.2f} s vs {normal:.3f} s for a normal form"
    return got


def _docx_paragraphs(n: int) -> bytes:
    rng = random.Random(1)
    body = "".join(f"<w:p><w:r><w:t>{_words(rng, 6)}</w:t></w:r></w:p>" for _ in range(n))
    return docx(f'<w:document xmlns:w="{_W}"><w:body>{body}</w:body></w:document>'.encode())


def _odt_xml(paragraphs: int = 0, rows: int = 0) -> str:
    rng = random.Random(1)
    body = "".join(f"<text:p>{_words(rng, 6)}</text:p>" for _ in range(paragraphs))
    if rows:
        cell = "<table:table-cell><text:p>{}</text:p></table:table-cell>"
        body += "<table:table>" + "".join(
            f"<table:table-row>{cell.format(_words(rng, 2))}{cell.format(_words(rng, 1))}</table:table-row>"
            for _ in range(rows)
        ) + "</table:table>"
    return (
        f"<office:document-content {_ODT_NS}><office:body><office:text>{body}"
        "</office:text></office:body></office:document-content>"
    )


def _odt(paragraphs: int = 0, rows: int = 0) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.text", zipfile.ZIP_STORED)
        z.writestr("content.xml", _odt_xml(paragraphs, rows))
    return out.getvalue()


def _fodt(paragraphs: int) -> bytes:
    xml = _odt_xml(paragraphs).replace("office:document-content", "office:document")
    xml = xml.replace(
        "xmlns:office=", 'office:mimetype="application/vnd.oasis.opendocument.text" xmlns:office=', 1
    )
    return ('<?xml version="1.0" encoding="UTF-8"?>' + xml).encode()


def _pdf(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _stream(content: bytes, extra: bytes = b"") -> bytes:
    return b"<< %s /Length %d >>\nstream\n" % (extra, len(content)) + content + b"\nendstream"


def _pdf_runs(n: int) -> bytes:
    rng = random.Random(1)
    lines = ["BT /F1 6 Tf"] + [
        f"1 0 0 1 {20 + (i % 8) * 70} {20 + (i // 8) % 130 * 6} Tm ({_words(rng, 1)}) Tj"
        for i in range(n)
    ] + ["ET"]
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        _stream("\n".join(lines).encode()),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ])


def _pdf_xobject_fanout(levels: int = 24, fanout: int = 4) -> bytes:
    """Form XObjects each drawing the next ``fanout`` times: fanout**levels objects."""
    first = 5
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /XObject << /X %d 0 R >> >> /Contents 4 0 R >>" % first,
        _stream(b"/X Do"),
    ]
    for level in range(levels):
        last = level == levels - 1
        body = b"BT /F1 6 Tf (x) Tj ET" if last else b" ".join([b"/X Do"] * fanout)
        res = (
            b"/Resources << /Font << /F1 %d 0 R >> >>" % (first + levels)
            if last
            else b"/Resources << /XObject << /X %d 0 R >> >>" % (first + level + 1)
        )
        objects.append(_stream(body, b"/Type /XObject /Subtype /Form /BBox [0 0 595 842] " + res))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    return _pdf(objects)


CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "docx paragraphs": (lambda: _docx_paragraphs(40_000), "more than 20000 paragraphs"),
    "odt paragraphs": (lambda: _odt(paragraphs=40_000), "more than 20000 paragraphs"),
    "odt table rows": (lambda: _odt(rows=8_000), "more than 5000 table rows"),
    "fodt": (lambda: _fodt(40_000), "more than 20000 paragraphs"),
    "pdf text runs": (lambda: _pdf_runs(30_000), "more than 8000 text runs"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_big_input_is_refused_in_bounded_time(case: str) -> None:
    make, reason = CASES[case]
    data = make()
    got = _bounded(data, "pdf" if case.startswith("pdf") else "docx")
    assert got.status == "unreadable", got
    assert got.reason is not None and reason in got.reason


def test_a_form_keeps_at_most_max_participants_with_a_problem() -> None:
    values = FilledValues(
        institution=NYSA, participants=TYPED[:4], workshops={"A"}, remarks=None,
        consents=Consents(True, False), place_date=None,
    )
    got, _ = _timed(make_docx(OPOLE, values, rows=4), Limits(max_participants=2))
    assert got.status == "ok", got
    assert len(got.participants) == 2
    assert any(p.field == "participants" and p.code == "invalid" for p in got.problems)


def test_cli_parse_runs_in_the_capped_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailbot.cli import app

    seen: list[dict[str, Any]] = []
    real = worker.parse_isolated

    def spy(*args: Any, **kwargs: Any) -> FormData:
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(worker, "parse_isolated", spy)
    monkeypatch.setattr(worker, "MEMORY_LIMIT_BYTES", 1024**3)
    path = tmp_path / "fanout.pdf"
    path.write_bytes(_pdf_xobject_fanout())
    config = Path(__file__).resolve().parents[2] / "config" / "demo.toml"
    result = CliRunner().invoke(app, ["parse", str(path), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert '"fanout.pdf"' in result.stdout
    assert '"status": "unreadable"' in result.stdout or '"status": "not_a_form"' in result.stdout
    assert len(seen) == 1  # the CLI went through the capped child


@pytest.mark.parametrize("kind", ["docx", "odt"])
def test_bit_flipped_package_is_unreadable_without_a_traceback(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    base = _normal() if kind == "docx" else _odt(paragraphs=300)
    rng = random.Random(7)
    unreadable = 0
    caplog.set_level(logging.DEBUG)
    for _ in range(60):
        flipped = bytearray(base)
        for _ in range(3):
            i = rng.randrange(len(flipped))
            flipped[i] ^= 1 << rng.randrange(8)
        got = parse_bytes(bytes(flipped), f"flipped.{kind}", EVENTS)
        unreadable += got.status == "unreadable"
        assert got.status in ("ok", "unreadable", "not_a_form")
    assert unreadable > 0
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
