"""Every real-world hostile/odd document in the corpus ends with a clear status.

None of them is a registration form, so none may come out ``ok``; each gets a
reason. Messages (eml/) are the ingest tests' business, not the parser's.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailbot.forms import parse_file
from mailbot.forms.model import EventRef

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "corpus"
FILES = sorted(
    p
    for sub in ("docx", "pdf", "other")
    for p in (CORPUS / sub).iterdir()
    if p.is_file()
)
EVENTS = [
    EventRef(
        "opole-2016",
        "Współpraca w partnerstwach samorządowych",
        "Opole",
        dt.date(2016, 4, 18),
    )
]


def test_corpus_is_there() -> None:
    assert len(FILES) == 79


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_file_gets_a_clear_status(path: Path) -> None:
    got = parse_file(path, EVENTS)
    assert got.file == path.name
    assert got.status in {"not_a_form", "unreadable"}
    assert got.reason
    assert got.format
    assert got.participants == [] and got.institution is None and got.problems == []
    assert "reason" in got.to_json()


# Files whose outcome is known precisely, so a regression shows up by name.
KNOWN = {
    "docx/tika-testWORD_truncated.docx": ("unreadable", "docx"),
    "docx/poi-clusterfuzz-bad-central-dir.docx": ("unreadable", "docx"),
    "docx/poi-ExternalEntityInText.docx": ("unreadable", "docx"),
    "docx/poi-protected_agile.docx": ("unreadable", "ole2"),
    "docx/poi-45690-macro.docm": ("not_a_form", "docx"),
    "docx/mammoth-strict-format.docx": ("not_a_form", "docx"),
    "docx/pandoc-alternate_document_path.docx": ("not_a_form", "docx"),
    "docx/docx4j-LegacyForms.docx": ("not_a_form", "docx"),
    "pdf/sample-files-libreoffice-writer-password.pdf": ("unreadable", "pdf"),
    "pdf/qpdf-pages-loop.pdf": ("not_a_form", "pdf"),
    "pdf/pdfminer-issue-1113-evil-xobjects.pdf": ("not_a_form", "pdf"),
    "pdf/tika-testOCR.pdf": ("not_a_form", "pdf"),
    "pdf/paperless-multi-page-images.pdf": ("not_a_form", "pdf"),
    "pdf/qpdf-form-filled-by-acrobat.pdf": ("not_a_form", "pdf"),
    "other/textract-raw_text-png-named.tiff": ("not_a_form", "image"),
    "other/textract-raw_text.jpg": ("not_a_form", "image"),
    "other/poi-Word95.doc": ("not_a_form", "doc"),
    "other/tika-testWORDML_tableInsideParagraph.doc": ("not_a_form", "wordml"),
    "other/tika-testODTEncrypted.odt": ("unreadable", "odt"),
    "other/tika-testODTMacro.fodt": ("not_a_form", "odt"),
    "other/tika-testODTnotaZipFile.odt": ("unreadable", "unknown"),
    "other/tika-testRTFWord2010CzechCharacters.rtf": ("not_a_form", "rtf"),
    "other/sample-files-libreoffice-form.odt": ("not_a_form", "odt"),
    "other/mail-test-pdf-macos.zip": ("unreadable", "zip"),
    "other/poi-quick-winmail.dat": ("unreadable", "tnef"),
}


@pytest.mark.parametrize(("name", "expected"), sorted(KNOWN.items()))
def test_known_outcomes(name: str, expected: tuple[str, str]) -> None:
    got = parse_file(CORPUS / name, EVENTS)
    assert (got.status, got.format) == expected


def test_scans_are_read_by_ocr() -> None:
    # A scan without a text layer is OCR'd; this one is a page of prose, not a form.
    got = parse_file(CORPUS / "pdf" / "tika-testOCR.pdf", EVENTS)
    assert got.status == "not_a_form"
    assert got.reason == "no labels of the registration form found"
