"""The command line as a newcomer uses it: demo, parse, export."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from mailbot.templating import KINDS
from tests.shared import EXAMPLES, needs_examples

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "config" / "demo.toml"


SCRATCH = Path(tempfile.mkdtemp(prefix="mailbot-cli-test-"))
"""Working directory of commands run without one: demo.toml's relative state_dir must
land here, never in the checkout (where it would stop a later `./dev demo`)."""


def mailbot(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailbot", *args], capture_output=True, text=True, cwd=cwd or SCRATCH, timeout=300,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(cwd or SCRATCH)},
    )


def test_help_is_available_for_every_command() -> None:
    for command in (
        [], ["run"], ["remind"], ["preview"], ["demo"], ["parse"], ["export"], ["check-config"], ["form"],
        ["db", "upgrade"],
    ):
        proc = mailbot(*command, "--help")
        assert proc.returncode == 0, (command, proc.stderr)
        assert "Usage" in proc.stdout


@pytest.mark.slow  # the whole demo in a subprocess: a few seconds each
def test_the_demo_shows_every_kind_of_mail_and_export_reads_it(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = mailbot("demo", "--dir", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Registrations at the end" in proc.stdout and "Mails written" in proc.stdout
    assert "Urząd Miejski w Brzezinie Opolskiej" in proc.stdout
    assert "Potwierdzenie zgłoszenia" in proc.stdout
    written = {
        m.group(1) for m in re.finditer(r"^│ (\w+)\s+│ [\w.-]+@", proc.stdout, re.MULTILINE)
    }
    assert written == set(KINDS)  # every kind of mail, each in a realistic situation
    files = len(list((out / "outbox" / "new").iterdir()))
    assert files > 20

    # Running it again starts from scratch, with the same result.
    again = mailbot("demo", "--dir", str(out))
    assert again.returncode == 0 and len(list((out / "outbox" / "new").iterdir())) == files

    db = f"sqlite:///{out / 'state' / 'mailbot.db'}"
    exported = mailbot("export", "--config", str(DEMO), "--db", db, "--format", "json")
    assert exported.returncode == 0, exported.stderr
    rows = json.loads(exported.stdout)
    assert len(rows) == 6 and {r["event"] for r in rows} == {"opole-2016", "lublin-2016"}
    first = next(r for r in rows if r["event"] == "opole-2016")
    assert first["institution"]["name"] == "Urząd Miejski w Brzezinie Opolskiej"
    assert first["source_message_id"].endswith("example.pl")
    # Tomasz Lis withdrew by answering his acknowledgement; his colleague stays.
    assert [(p["full_name"], p["status"]) for p in first["participants"]] == [
        ("Katarzyna Wróbel", "confirmed"), ("Tomasz Lis", "cancelled"),
    ]

    csv_out = mailbot("export", "--config", str(DEMO), "--db", db, "--format", "csv", "--event", "opole-2016")
    lines = csv_out.stdout.strip().splitlines()
    assert lines[0].startswith("Wydarzenie,Kod zgłoszenia,Status,Instytucja")
    assert len(lines) == 1 + 10  # one line per participant

    xlsx = tmp_path / "lista.xlsx"
    assert mailbot("export", "--config", str(DEMO), "--db", db, "--format", "xlsx", "-o", str(xlsx)).returncode == 0
    sheet = load_workbook(xlsx)["opole-2016"]
    assert sheet["F1"].value == "Imię i nazwisko" and sheet["F2"].value == "Katarzyna Wróbel"
    assert sheet.auto_filter.ref and sheet.freeze_panes == "A2"


def test_the_demo_refuses_to_wipe_a_directory_it_did_not_create(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    proc = mailbot("demo", "--dir", str(tmp_path))
    assert proc.returncode == 2 and "not created by `mailbot demo`" in proc.stderr
    assert (tmp_path / "precious.txt").exists()


def _filled_forms(tmp_path: Path) -> tuple[Path, Path]:
    """A .docx and a fillable .pdf with five people, as the organisers' copies come back."""
    from mailbot.forms.blank import FilledValues, make_docx, make_pdf
    from mailbot.forms.model import Consents, Institution, Participant
    from tests.forms.cycle import OPOLE

    values = FilledValues(
        institution=Institution("Urząd Miejski w Brzegu", "ul. Robotnicza 12, 49-300 Brzeg", "77 416 03 00", "um@brzeg.pl"),
        participants=[
            Participant(f"Osoba Numer{i}", "Inspektor", f"60{i} 100 200", f"osoba{i}@brzeg.pl") for i in range(1, 6)
        ],
        workshops={"A"},
        remarks=None,
        consents=Consents(True, False),
        place_date="Brzeg, 8.04.2016",
    )
    docx, pdf = tmp_path / "zgloszenie_UM_Brzeg.docx", tmp_path / "zgloszenie_UM_Prudnik.pdf"
    docx.write_bytes(make_docx(OPOLE, values, style="table", rows=5))
    pdf.write_bytes(make_pdf(OPOLE, values))
    return docx, pdf


def test_parse_prints_one_json_document_per_file_in_argument_order(tmp_path: Path) -> None:
    junk = tmp_path / "notes.docx"
    junk.write_bytes(b"this is not a zip at all")
    docx, pdf = _filled_forms(tmp_path)
    proc = mailbot("parse", str(docx), str(junk), str(pdf), "--config", str(DEMO))
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    assert [d["file"] for d in docs] == ["zgloszenie_UM_Brzeg.docx", "notes.docx", "zgloszenie_UM_Prudnik.pdf"]
    assert [d["status"] for d in docs] == ["ok", "unreadable", "ok"]
    assert docs[0]["event"] == "opole-2016" and len(docs[0]["participants"]) == 5
    assert docs[2]["event"] == "opole-2016" and len(docs[2]["participants"]) == 5


@needs_examples
def test_parse_reads_the_organisers_examples(tmp_path: Path) -> None:
    junk = tmp_path / "notes.docx"
    junk.write_bytes(b"this is not a zip at all")
    files = [EXAMPLES / "zgloszenie_UM_Brzeg.docx", junk, EXAMPLES / "zgloszenie_UM_Prudnik.pdf"]
    proc = mailbot("parse", *map(str, files), "--json", "--config", str(DEMO))
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    assert [d["file"] for d in docs] == ["zgloszenie_UM_Brzeg.docx", "notes.docx", "zgloszenie_UM_Prudnik.pdf"]
    assert [d["status"] for d in docs] == ["ok", "unreadable", "ok"]
    assert docs[0]["event"] == "opole-2016" and len(docs[0]["participants"]) == 5


def test_form_writes_blank_docx_and_pdf_forms_that_parse_reads_back_as_fields(tmp_path: Path) -> None:
    for fmt in ("docx", "pdf"):
        target = tmp_path / f"blank.{fmt}"
        proc = mailbot("form", "--config", str(DEMO), "--event", "torun-2016", "--format", fmt, "-o", str(target))
        assert proc.returncode == 0, proc.stderr
        (doc,) = json.loads(mailbot("parse", str(target), "--config", str(DEMO)).stdout)
        assert (doc["status"], doc["format"], doc["method"]) == ("ok", fmt, "fields")
        assert doc["event"] == "torun-2016" and doc["participants"] == []
        assert {p["field"] for p in doc["problems"]} == {"institution.name", "participants", "consents.data_processing"}


def test_run_reports_a_broken_config_with_a_hint_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[mailbox]\npassword = 'hunter2'\n")
    proc = mailbot("run", "--once", "--config", str(bad), cwd=tmp_path)
    assert proc.returncode == 2
    assert "password_file" in proc.stderr and "hunter2" not in proc.stderr


def test_preview_renders_a_template_with_sample_data_and_the_configured_event() -> None:
    proc = mailbot("preview", "waitlist", "--event", "torun-2016", "--config", str(DEMO))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Subject: Lista rezerwowa")
    assert "Toruń, 14 marca 2016 r." in proc.stdout and "Dworu Artusa" in proc.stdout
    assert "<!DOCTYPE html>" in proc.stdout  # the HTML part follows the text
    unknown = mailbot("preview", "welcome", "--config", str(DEMO))
    assert unknown.returncode == 2 and "choose one of: ack, incomplete" in unknown.stderr


def test_preview_shows_an_admins_broken_override_as_an_error(tmp_path: Path) -> None:
    overrides = tmp_path / "templates"
    overrides.mkdir()
    (overrides / "ack.txt.j2").write_text('{% set subject %}X{% endset %}{{ evnt.city }}', encoding="utf-8")
    config = tmp_path / "mailbot.toml"
    config.write_text(f'templates_dir = "{overrides}"\n' + DEMO.read_text(encoding="utf-8"), encoding="utf-8")
    proc = mailbot("preview", "ack", "--config", str(config))
    assert proc.returncode == 2 and "evnt" in proc.stderr


@pytest.mark.slow  # the whole demo in a subprocess: a few seconds each
def test_remind_sends_what_is_due_once(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert mailbot("demo", "--dir", str(out)).returncode == 0
    db = f"sqlite:///{out / 'state' / 'mailbot.db'}"
    outbox = f"maildir:{tmp_path / 'sent'}"
    # The demo stopped at the 7-day reminders, after moving the start to 10:00; the
    # shipped demo.toml still says 11:00, so this run also announces that change.
    first = mailbot("remind", "--config", str(DEMO), "--db", db, "--outbox", outbox, "--now", "2016-04-17T11:00")
    assert first.returncode == 0, first.stderr
    reminders, changes = first.stdout.count("queued reminder"), first.stdout.count("queued changed")
    assert reminders >= 5 and changes == reminders + 1  # + the secretariat that registered Michał Górski
    assert len(list((tmp_path / "sent" / "new").iterdir())) == reminders + changes
    again = mailbot("remind", "--config", str(DEMO), "--db", db, "--outbox", outbox, "--now", "2016-04-17T12:00")
    assert again.returncode == 0 and "queued" not in again.stdout


@pytest.mark.slow  # the whole demo in a subprocess: a few seconds each
def test_the_operators_commands_work_on_the_demo_database(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert mailbot("demo", "--dir", str(out)).returncode == 0
    db = ["--config", str(DEMO), "--db", f"sqlite:///{out / 'state' / 'mailbot.db'}"]

    listed = mailbot("review", "list", *db)
    assert listed.returncode == 0, listed.stderr
    assert "4 message(s) wait for review" in listed.stdout and "czy mogę zrezygnować" in listed.stdout
    ref = re.search(r"#\d+\s+([0-9a-f]{10}).*\n.*\n.*unclear", listed.stdout)
    assert ref is not None
    rejected = mailbot("review", "reject", ref.group(1), "--note", "odpowiedziano telefonicznie", *db)
    assert rejected.returncode == 0, rejected.stderr
    assert "3 message(s) wait for review" in mailbot("review", "list", *db).stdout
    assert mailbot("review", "show", "no-such-item", *db).returncode == 3  # not found (was 2 before exit codes were split)

    digest = mailbot("digest", "--dry-run", "--event", "opole-2016", "--now", "2016-04-11T07:00", *db)
    assert digest.returncode == 0, digest.stderr
    assert "would queue: digest opole-2016 → opole@partnerstwa.example.pl" in digest.stdout

    stem = tmp_path / "lista"
    attendance = mailbot("export", "--format", "attendance", "--event", "opole-2016", "-o", str(stem), *db)
    assert attendance.returncode == 0, attendance.stderr
    assert load_workbook(stem.with_suffix(".xlsx")).active.max_row >= 10
    assert stem.with_suffix(".pdf").read_bytes().startswith(b"%PDF")

    purge = mailbot("purge", "--dry-run", "--now", "2017-01-01T00:00", *db)
    assert purge.returncode == 0, purge.stderr
    assert "opole-2016 (2016-04-18): 5 registration(s)" in purge.stdout and "dry run" in purge.stdout
