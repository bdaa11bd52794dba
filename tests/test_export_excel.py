"""The CSV for Polish Excel (issue 12, item 9): double-clicked, it must open as columns
(``;``, UTF-8 with a byte-order mark, CRLF), say the statuses as the XLSX says them, carry
everything the JSON carries (institution address and phone above all), and give a
registration's remark once, so a diet written for three people is not counted three
times."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from mailbot.cli import app as cli
from mailbot.export import COLUMNS, CSV_COLUMNS, load_rows, to_csv, to_json, to_xlsx
from mailbot.forms.blank import FilledValues, make_docx
from mailbot.forms.model import Consents, Institution, Participant

from tests.conversation import WARSAW, Conversation, event_header, mail, settings_for

APR1 = dt.datetime(2016, 4, 1, 9, 0, tzinfo=WARSAW)
REMARK = "Dieta wegetariańska dla p. Łęckiej"


@pytest.fixture(scope="module")
def conv(tmp_path_factory: pytest.TempPathFactory) -> Conversation:
    """Three people from Łubniany with one remark, and Brzeg without one."""
    conv = Conversation(settings_for(tmp_path_factory.mktemp("excel")))
    event = conv.settings.event("opole-2016")
    for sender, institution, people, remarks, workshops in (
        ("gmina@lubniany.example.pl", Institution("Urząd Gminy Łubniany", "ul. Opolska 104, 46-024 Łubniany",
                                                  "77 421 15 00", "ug@lubniany.example.pl"),
         [("Żaneta Łęcka", "zaneta@lubniany.example.pl"), ("Adam Zieliński", "adam@lubniany.example.pl"),
          ("Ewa Ślusarczyk", "ewa@lubniany.example.pl")], REMARK, {"A", "B"}),
        ("sekretariat@brzeg.example.pl", Institution("Urząd Miejski w Brzegu", "ul. Robotnicza 12, 49-300 Brzeg",
                                                     "77 404 56 00", "um@brzeg.example.pl"),
         [("Katarzyna Wróbel", "k.wrobel@brzeg.example.pl")], None, {"A"}),
    ):
        values = FilledValues(
            institution=institution,
            participants=[Participant(name, "Inspektor", "77 400 00 11", address) for name, address in people],
            workshops=frozenset(workshops), remarks=remarks,
            consents=Consents(data_processing=True, newsletter=False), place_date="1.04.2016",
        )
        conv.receive(mail(sender, "Zgłoszenie", "W załączeniu.", when=APR1,
                          form=make_docx(event_header(event), values, style="table")))
    conv.run(APR1)
    return conv


def rows_of(conv: Conversation) -> list[list[str]]:
    with conv.app(APR1).session() as s:
        text = to_csv(load_rows(s, "opole-2016"), "excel-pl")
    assert text.startswith("\ufeff")
    raw = text.encode("utf-8")
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))


def test_excel_pl_reads_back_with_semicolons_and_polish_letters(conv: Conversation) -> None:
    header, *lines = rows_of(conv)
    assert header == [title for title, _ in CSV_COLUMNS] and header[: len(COLUMNS)] == [t for t, _ in COLUMNS]
    col = {title: i for i, title in enumerate(header)}
    assert all(len(line) == len(header) for line in lines)
    by_name = {line[col["Imię i nazwisko"]]: line for line in lines}
    zaneta = by_name["Żaneta Łęcka"]
    assert zaneta[col["Instytucja"]] == "Urząd Gminy Łubniany"
    assert zaneta[col["Status"]] == "przyjęte" and zaneta[col["Udział"]] == "potwierdzony"
    assert zaneta[col["Adres instytucji"]] == "ul. Opolska 104, 46-024 Łubniany"
    assert zaneta[col["Telefon instytucji"]] and zaneta[col["Telefon"]]
    assert zaneta[col["E-mail instytucji"]] == "ug@lubniany.example.pl"
    assert zaneta[col["Warsztaty"]] == "A, B" and zaneta[col["Zgoda RODO"]] == "tak"
    assert zaneta[col["Wersja"]] == "1" and zaneta[col["Wpłynęło"]].startswith("2016-04-01")


def test_a_remark_is_given_once_per_registration(conv: Conversation) -> None:
    header, *lines = rows_of(conv)
    col = {title: i for i, title in enumerate(header)}
    lubniany = [line for line in lines if line[col["Instytucja"]] == "Urząd Gminy Łubniany"]
    assert [line[col["Lp."]] for line in lubniany] == ["1", "2", "3"]
    assert [line[col["Uwagi"]] for line in lubniany] == [REMARK, "", ""]
    assert sum(1 for line in lines if "wegetaria" in line[col["Uwagi"]].lower()) == 1
    # The XLSX the same way.
    with conv.app(APR1).session() as s:
        sheet = load_workbook(io.BytesIO(to_xlsx(load_rows(s, "opole-2016")))).active
    assert sheet is not None
    remarks = [row[11].value for row in sheet.iter_rows(min_row=2) if row[3].value == "Urząd Gminy Łubniany"]
    assert remarks == [REMARK, None, None]
    assert [row[2].value for row in sheet.iter_rows(min_row=2)] == ["przyjęte"] * 4


def test_the_csv_carries_what_the_json_carries(conv: Conversation) -> None:
    with conv.app(APR1).session() as s:
        rows = load_rows(s, "opole-2016")
    header, *lines = rows_of(conv)
    cells = {cell for line in lines for cell in line}
    for reg in json.loads(to_json(rows)):
        for value in (reg["code"], reg["sender"], reg["source_message_id"], reg["created_at"], reg["updated_at"],
                      *reg["institution"].values()):
            assert value in cells, value
        for person in reg["participants"]:
            assert {person["full_name"], person["position"], person["phone"], person["email"]} <= cells


def test_plain_dialect_for_scripts_and_the_command_default(conv: Conversation, tmp_path: Path) -> None:
    with conv.app(APR1).session() as s:
        plain = to_csv(load_rows(s, "opole-2016"))
    assert not plain.startswith("\ufeff") and "\r\n" not in plain
    assert list(csv.reader(io.StringIO(plain)))[0][:3] == ["Wydarzenie", "Kod zgłoszenia", "Status"]
    with pytest.raises(ValueError):
        to_csv([], "excel-us")

    db = conv.settings.database_url
    out = tmp_path / "lista.csv"
    runner = CliRunner()
    result = runner.invoke(cli, ["export", "--config", "config/demo.toml", "--db", db, "--format", "csv",
                                 "--event", "opole-2016", "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith("\ufeffWydarzenie;Kod zgłoszenia;Status;".encode())
    assert data.count(b"\r\n") == 1 + 4
    result = runner.invoke(cli, ["export", "--config", "config/demo.toml", "--db", db, "--format", "csv",
                                 "--dialect", "plain", "--event", "opole-2016"])
    assert result.exit_code == 0 and result.stdout.startswith("Wydarzenie,Kod zgłoszenia,Status,")
    result = runner.invoke(cli, ["export", "--config", "config/demo.toml", "--db", db, "--format", "csv",
                                 "--dialect", "excel-us"])
    assert result.exit_code == 2
