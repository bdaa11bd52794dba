"""`mailbot parse --provenance`: the contract's JSON plus where each value came from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mailbot.forms.blank import FilledValues, make_docx
from mailbot.forms.model import Consents, Institution, Participant
from tests.forms.cycle import OPOLE

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "config" / "demo.toml"


def _form(tmp_path: Path) -> Path:
    values = FilledValues(
        institution=Institution("Urząd Miejski w Nysie", None, None, "sekretariat@nysa.pl"),
        participants=[
            Participant("Anna Kowalska", "Inspektor", "601 234 567", "a.kowalska@nysa.pl"),
            Participant("Jan Kowalski", "Referent", "601 234 568", "jan.kowalskl@nysa.pl"),
        ],
        workshops={"B"},
        remarks=None,
        consents=Consents(True, False),
        place_date=None,
    )
    path = tmp_path / "zgloszenie.docx"
    path.write_bytes(make_docx(OPOLE, values, style="controls"))
    return path


def _parse(*args: str, cwd: Path) -> list[dict[str, object]]:
    proc = subprocess.run(
        [sys.executable, "-m", "mailbot", "parse", *args, "--config", str(DEMO)],
        capture_output=True, text=True, cwd=cwd, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    assert isinstance(docs, list)
    return docs


def test_parse_doubts_a_misread_address_and_explains_with_provenance(tmp_path: Path) -> None:
    form = _form(tmp_path)
    plain = _parse(str(form), cwd=tmp_path)[0]
    assert "provenance" not in plain  # the contract's keys, exactly
    doubt = [p for p in plain["problems"] if p["code"] == "low_confidence"]  # type: ignore[union-attr,index]
    assert doubt == [
        {
            "field": "participants[1].email",
            "code": "low_confidence",
            "message": doubt[0]["message"],
            "suggestion": "jan.kowalski@nysa.pl",
        }
    ]
    explained = _parse(str(form), "--provenance", cwd=tmp_path)[0]
    prov = explained["provenance"]
    assert isinstance(prov, dict)
    assert prov["participants[0].email"]["source"] == "fields"
    assert prov["participants[0].email"]["confidence"] >= 0.8
    assert prov["participants[1].email"]["confidence"] < 0.8
    assert "e-mail close to the name" in prov["participants[1].email"]["notes"]
