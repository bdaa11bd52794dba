"""Parsing in a child process: same results, and a hard stop for what readers cannot foresee."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import zipfile
from collections.abc import Callable

import pytest

from mailbot.forms import parse_bytes
from mailbot.forms.blank import FilledValues, make_docx, make_pdf
from mailbot.forms.model import Consents, EventRef, Institution, Limits, Participant
from mailbot.forms.worker import parse_isolated

from .cycle import OPOLE

try:
    from tests.shared import example
except ImportError:
    from shared import example  # type: ignore[no-redef]

EVENTS = [EventRef("opole-2016", "Współpraca w partnerstwach samorządowych", "Opole", dt.date(2016, 4, 18))]
FILLED = FilledValues(
    institution=Institution("Gmina Lubrza", None, "77 431 11 00", "gmina@lubrza.example.pl"),
    participants=[Participant("Marek Zieliński", "Sekretarz", "77 431 11 22", "m.z@lubrza.example.pl")],
    workshops={"A"},
    remarks=None,
    consents=Consents(data_processing=True, newsletter=False),
    place_date="Lubrza, 8.04.2016",
)
# A .docx and a PDF form: the project's own copies always, the organisers' examples
# (../shared) when present.
FORMS: dict[str, Callable[[], bytes]] = {
    "generated.docx": lambda: make_docx(OPOLE, FILLED),
    "generated.pdf": lambda: make_pdf(OPOLE, FILLED),
    "zgloszenie_UM_Brzeg.docx": lambda: example("zgloszenie_UM_Brzeg.docx").read_bytes(),
    "zgloszenie_UM_Prudnik.pdf": lambda: example("zgloszenie_UM_Prudnik.pdf").read_bytes(),
}


@pytest.mark.parametrize("name", list(FORMS))
def test_a_form_parsed_in_a_child_process_gives_the_same_result(name: str) -> None:
    data = FORMS[name]()
    isolated = parse_isolated(data, name, EVENTS, Limits())
    assert json.dumps(isolated.to_json()) == json.dumps(parse_bytes(data, name, EVENTS).to_json())
    assert isolated.status == "ok"


@pytest.mark.parametrize("name", ["generated.pdf", "zgloszenie_UM_Prudnik.pdf"])
def test_a_parse_past_its_deadline_is_stopped_and_reported(name: str) -> None:
    data = FORMS[name]()
    # No parse beats a deadline of zero: the answer is looked for as soon as the job is
    # sent. (A millisecond was not enough once the warm reader's caches were filled by
    # the test before, which parses the same file.)
    result = parse_isolated(data, "slow.pdf", EVENTS, Limits(), deadline=0.0)
    assert result.status == "unreadable" and result.format == "pdf"
    assert "took longer than" in (result.reason or "")


def _large_docx(text_bytes: int) -> bytes:
    """A legitimate .docx (within the zip limits) whose text needs real memory to read."""
    text = os.urandom(text_bytes // 2).hex()
    paragraphs = "".join(
        f"<w:p><w:r><w:t>{text[i : i + 4096]}</w:t></w:r></w:p>" for i in range(0, len(text), 4096)
    )
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{paragraphs}</w:body></w:document>"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
        z.writestr("word/document.xml", document)
    return buf.getvalue()


def test_a_parse_that_exhausts_its_memory_cap_is_reported_not_fatal() -> None:
    data = _large_docx(20 * 1024**2)
    assert parse_isolated(data, "big.docx", EVENTS, Limits()).status == "not_a_form"  # fine uncapped
    result = parse_isolated(data, "big.docx", EVENTS, Limits(), memory_limit=8 * 1024**2)
    assert result.status == "unreadable" and result.format == "docx"
    assert "memory" in (result.reason or "") or "died" in (result.reason or "")
