"""The organisers' spreadsheet never shows a doubted value as sure: the address the
reader doubted is marked (yellow, "Do sprawdzenia") until it is settled."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from openpyxl import load_workbook

from mailbot.export import COLUMNS, load_rows, to_csv, to_json, to_xlsx
from tests.conversation import Conversation, settings_for
from tests.test_doubt_conversation import APR1, MEANT, READ, SENDER, at, register, reply

DOUBT = [title for title, _ in COLUMNS].index("Do sprawdzenia")
EMAIL = [title for title, _ in COLUMNS].index("E-mail")


def _rows(conv: Conversation) -> list:  # type: ignore[type-arg]
    with conv.app(conv.now).session() as s:
        return load_rows(s)


def test_a_doubted_address_is_marked_in_every_export_until_settled(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    register(conv)
    conv.run(APR1)
    rows = _rows(conv)
    sheet = load_workbook(io.BytesIO(to_xlsx(rows))).active
    assert sheet is not None
    jan_row = next(r for r in sheet.iter_rows(min_row=2) if r[EMAIL].value == READ)
    assert jan_row[DOUBT].value == f"e-mail niepotwierdzony (czy {MEANT}?)"
    assert jan_row[EMAIL].fill.fgColor.rgb.endswith("FFF2A8")
    anna_row = next(r for r in sheet.iter_rows(min_row=2) if r[EMAIL].value != READ)
    assert anna_row[DOUBT].value is None and not anna_row[EMAIL].fill.fgColor.rgb.endswith("FFF2A8")
    lines = list(csv.reader(io.StringIO(to_csv(rows))))
    assert lines[0][DOUBT] == "Do sprawdzenia"
    assert [line[DOUBT] for line in lines[1:] if line[EMAIL] == READ] == [f"e-mail niepotwierdzony (czy {MEANT}?)"]
    people = json.loads(to_json(rows))[0]["participants"]
    assert {p["email"]: p["email_check"] for p in people}[READ] == "unconfirmed"

    ack = next(m for m in conv.sent() if SENDER in str(m["To"]))
    reply(conv, ack, f"Prawidłowy adres to {MEANT}", at(2))
    conv.run(at(2))
    settled = _rows(conv)
    people = json.loads(to_json(settled))[0]["participants"]
    assert {p["email"]: p["email_check"] for p in people}[MEANT] == "corrected"
    assert all(p["doubts"] == [] for p in people)
