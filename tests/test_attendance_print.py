"""The attendance list's XLSX as the desk prints it (issue 12, item 9): a workshop column
(people go to the room their form chose), empty numbered rows for walk-ins under
"Osoby dopisane na miejscu", and A4 landscape fitted to one page wide — read back with
openpyxl, as Excel would open it."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from openpyxl import load_workbook

from mailbot.attendance import WALK_IN_ROWS, WALK_IN_TITLE, XLSX_COLUMNS, attendance_rows, write_attendance
from mailbot.forms.blank import FilledValues, make_docx
from mailbot.forms.model import Consents, Institution, Participant

from tests.conversation import WARSAW, Conversation, event_header, mail, settings_for

APR1 = dt.datetime(2016, 4, 1, 9, 0, tzinfo=WARSAW)


def test_workshops_walk_in_rows_and_landscape(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    event = conv.settings.event("opole-2016")
    for sender, name, people, workshops in (
        ("gmina@lubniany.example.pl", "Urząd Gminy Łubniany", ["Żaneta Łęcka", "Adam Zieliński"], {"A", "B"}),
        ("um@brzeg.example.pl", "Urząd Miejski w Brzegu", ["Katarzyna Wróbel"], {"B"}),
    ):
        values = FilledValues(
            institution=Institution(name, "ul. Rynek 1, 46-000 Testowo", "77 400 00 00", sender),
            participants=[Participant(p, "Inspektor", "77 400 00 11", None) for p in people],
            workshops=frozenset(workshops), remarks=None,
            consents=Consents(data_processing=True, newsletter=False), place_date="1.04.2016",
        )
        conv.receive(mail(sender, "Zgłoszenie", "W załączeniu.", when=APR1,
                          form=make_docx(event_header(event), values, style="table")))
    conv.run(APR1)
    with conv.app(APR1).session() as s:
        assert [(r.full_name, r.workshops) for r in attendance_rows(s, "opole-2016")] == [
            ("Żaneta Łęcka", "A, B"), ("Adam Zieliński", "A, B"), ("Katarzyna Wróbel", "B"),
        ]
        xlsx, _ = write_attendance(s, event, tmp_path / "lista")

    ws = load_workbook(io.BytesIO(xlsx.read_bytes())).active
    assert ws is not None
    assert [c.value for c in ws[6]] == list(XLSX_COLUMNS)
    assert XLSX_COLUMNS[4] == "Warsztaty" and XLSX_COLUMNS[-1] == "Podpis"
    assert [[c.value for c in row] for row in ws.iter_rows(min_row=7, max_row=9)] == [
        [1, "Żaneta Łęcka", "Inspektor", "Urząd Gminy Łubniany", "A, B", None],
        [2, "Adam Zieliński", "Inspektor", "Urząd Gminy Łubniany", "A, B", None],
        [3, "Katarzyna Wróbel", "Inspektor", "Urząd Miejski w Brzegu", "B", None],
    ]
    # The walk-ins: a heading across the table, then empty rows numbered on, with borders.
    assert ws["A10"].value == WALK_IN_TITLE == "Osoby dopisane na miejscu" and ws["A10"].font.b
    assert "A10:F10" in {str(r) for r in ws.merged_cells.ranges}
    walk_ins = [[c.value for c in row] for row in ws.iter_rows(min_row=11, max_row=10 + WALK_IN_ROWS)]
    assert WALK_IN_ROWS >= 5
    assert walk_ins == [[4 + i, None, None, None, None, None] for i in range(WALK_IN_ROWS)]
    assert ws.max_row == 10 + WALK_IN_ROWS
    last = ws[10 + WALK_IN_ROWS]
    assert all(c.border.left.style == "thin" and c.border.bottom.style == "thin" for c in last)
    # Print: A4 landscape, one page wide, as long as needed; the walk-in rows printed too.
    assert int(ws.page_setup.paperSize) == 9 and ws.page_setup.orientation == "landscape"
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
    assert ws.print_area == f"'Lista obecności'!$A$1:$F${10 + WALK_IN_ROWS}"
    assert ws.print_title_rows == "$6:$6"
    assert ws.column_dimensions["F"].width >= 25 and ws.column_dimensions["A"].width < 8
