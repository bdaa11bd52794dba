"""Messages that cost far more than a registration should (issue 11): thousands of
attachments, one form attached many times, bodies of ``begin`` lines, many scans. Each
must end with a clear outcome, keep what was read, and leave the next message in the
same pass handled; times are judged only as a ratio to one ordinary form message."""

from __future__ import annotations

import datetime as dt
import io
import time
import zipfile
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from mailbot.app import PassReport
from mailbot.ingest import MessageResult
from mailbot.mime import parse_message
from tests.conversation import ORGANISER, WARSAW, Conversation, form_docx, mail, settings_for

APR1 = dt.datetime(2016, 4, 1, 9, 0, tzinfo=WARSAW)
SENT = APR1 - dt.timedelta(hours=1)
RATIO = 25
"""How many ordinary messages a hostile one may cost: generous, for a shared CI host."""


def _conv(tmp_path: Path, **limits: Any) -> Conversation:
    settings = settings_for(tmp_path)
    if limits:
        settings = settings.model_copy(update={"limits": settings.limits.model_copy(update=limits)})
    return Conversation(settings)


def _form(conv: Conversation, who: str = "Anna Kowalska") -> bytes:
    return form_docx(conv.settings.event("opole-2016"), [(who, "anna@testowo.example.pl")])


def _message(sender: str, files: list[tuple[str, bytes]], *, body: str = "W załączeniu.") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ORGANISER
    msg["Subject"] = "Zgłoszenie"
    msg["Date"] = format_datetime(SENT)
    msg["Message-ID"] = f"<big.{abs(hash((sender, len(files), body[:50])))}@testowo.example.pl>"
    msg.set_content(body)
    for name, data in files:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


def _scan(n: int) -> bytes:
    """A small grey page with a few lines of text: a scan, cheap to read."""
    img = Image.new("L", (320, 200), 255)
    draw = ImageDraw.Draw(img)
    for row in range(4):
        draw.text((10, 20 + 40 * row), f"Formularz {n} wiersz {row}", fill=0)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _timed(conv: Conversation, at: dt.datetime) -> tuple[PassReport, float]:
    start = time.perf_counter()
    report = conv.run(at)
    return report, time.perf_counter() - start


def _baseline(tmp_path: Path) -> float:
    """Seconds for one pass over one ordinary form message, on this host, now."""
    conv = _conv(tmp_path / "baseline")
    conv.receive(mail("ug@wzor.example.pl", "Zgłoszenie", "W załączeniu.", when=SENT, form=_form(conv)))
    conv.run(APR1)  # warm-up: engine, migrations, reader process start
    conv.receive(mail("ug2@wzor.example.pl", "Zgłoszenie", "W załączeniu.", when=SENT, form=_form(conv, "Jan Nowak")))
    report, seconds = _timed(conv, APR1)
    assert [r.outcome for r in report.results] == ["registered"]
    return seconds


def _big_then_normal(conv: Conversation, big: bytes) -> tuple[MessageResult, float]:
    """Receive ``big`` and then an ordinary form; both in one pass. The ordinary one
    must be registered whatever the big one did."""
    conv.receive(big)
    conv.receive(mail("nastepny@testowo.example.pl", "Zgłoszenie", "W załączeniu.", when=SENT,
                      form=_form(conv, "Ewa Lis")))
    report, seconds = _timed(conv, APR1)
    assert len(report.results) == 2
    big_result, after = report.results
    assert after.outcome == "registered", after.reason
    return big_result, seconds


def test_a_flat_message_with_500_attachments_reads_the_first_few(tmp_path: Path) -> None:
    base = _baseline(tmp_path)
    conv = _conv(tmp_path, max_documents_per_message=5)
    files = [("zgloszenie.docx", _form(conv))] + [(f"plik{i}.bin", b"junk %d\n" % i * 20) for i in range(500)]
    result, seconds = _big_then_normal(conv, _message("duzo@testowo.example.pl", files))
    assert result.outcome == "needs_review"
    assert "too many documents: parsed the first 5" in result.reason
    assert result.registrations  # the form read before the budget ran out is kept
    assert seconds < RATIO * base


def test_the_same_form_attached_50_times_is_read_once(tmp_path: Path) -> None:
    base = _baseline(tmp_path)
    conv = _conv(tmp_path)
    form = _form(conv)
    files = [(f"zgloszenie-{i}.docx", form) for i in range(50)]
    result, seconds = _big_then_normal(conv, _message("kopie@testowo.example.pl", files))
    assert result.outcome == "registered", result.reason
    assert len(result.registrations) == 1
    assert "49 identical attachments read once" in result.reason
    assert seconds < RATIO * base


def test_50000_uuencode_begin_lines_cost_a_linear_walk(tmp_path: Path) -> None:
    def body(n: int) -> bytes:
        text = "".join(f"begin 644 plik{i}.txt\n" for i in range(n)) + "end\n"
        return _message("uu@testowo.example.pl", [], body=text)

    def walk(raw: bytes) -> float:
        start = time.perf_counter()
        parsed = parse_message(raw)
        seconds = time.perf_counter() - start
        assert any("uuencode 'begin' lines" in w for w in parsed.warnings)
        return seconds

    small, large = walk(body(12_500)), walk(body(50_000))
    assert large < 16 * max(small, 1e-3)  # 4× the input: linear is ~4×, quadratic was ~16×
    base = _baseline(tmp_path)
    conv = _conv(tmp_path)
    result, seconds = _big_then_normal(conv, body(50_000))
    assert result.outcome == "needs_review"  # no form in it: the sender gets the blank one
    assert seconds < RATIO * base


def test_scans_beyond_the_scan_budget_are_not_read(tmp_path: Path) -> None:
    conv = _conv(tmp_path, max_scans_per_message=1)
    files = [(f"skan{i}.png", _scan(i)) for i in range(3)]
    result, _ = _big_then_normal(conv, _message("skany@testowo.example.pl", files))
    assert result.outcome == "needs_review"
    assert "scan budget of 1 spent: 2 more scans not read" in result.reason


def test_a_zip_of_20_scans_stops_at_the_time_budget(tmp_path: Path) -> None:
    base = _baseline(tmp_path)
    conv = _conv(tmp_path, message_parse_seconds=max(base, 0.2))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(20):
            zf.writestr(f"skan{i:02d}.png", _scan(i))
    result, seconds = _big_then_normal(conv, _message("zip@testowo.example.pl", [("skany.zip", buf.getvalue())]))
    assert result.outcome == "needs_review"
    assert "time budget of" in result.reason and "s spent after" in result.reason, result.reason
    assert seconds < RATIO * base


def test_the_budget_defaults_leave_room_for_a_real_sender(tmp_path: Path) -> None:
    limits = settings_for(tmp_path).limits
    assert limits.max_documents_per_message >= 20
    assert limits.max_scans_per_message >= 5
    assert limits.message_parse_seconds >= limits.parse_timeout_seconds
