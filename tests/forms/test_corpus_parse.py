"""Every real-world hostile/odd document in the corpus ends with a clear status.

None of them is a registration form, so none may come out ``ok``; each gets a
reason. Messages (eml/) are the ingest tests' business, not the parser's. The corpus
is ``tests/data/corpus`` (committed) plus ``../shared/corpus`` when present.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailbot.forms import parse_file
from mailbot.forms.model import EventRef
from mailbot.forms.sniff import sniff

try:
    from tests.shared import DATA_CORPUS, HAS_CORPUS, REASON, corpus_file, corpus_files, corpus_id
except ImportError:
    from shared import DATA_CORPUS, HAS_CORPUS, REASON, corpus_file, corpus_files, corpus_id  # type: ignore[no-redef]

# Read through LibreOffice (converted formats) or Tesseract (images, and the PDFs the
# reader OCRs): these need Debian packages, take a second or more each, and are left
# out of `./dev test --quick`.
_CONVERTED_OR_OCR = {"doc", "rtf", "wordml", "wordperfect", "image"}
_OCR_PDFS = {
    "tika-testOCR.pdf",
    "paperless-multi-page-images.pdf",
    "tika-testPDF_XFA_govdocs1_258578.pdf",
    "tika-testPDF_acroform3.pdf",
}
_TOOLS = (pytest.mark.system, pytest.mark.slow)


def _needs_tools(path: Path) -> bool:
    return path.name in _OCR_PDFS or sniff(path.read_bytes()) in _CONVERTED_OR_OCR


FILES = corpus_files("docx", "pdf", "other")
EVENTS = [
    EventRef(
        "opole-2016",
        "Współpraca w partnerstwach samorządowych",
        "Opole",
        dt.date(2016, 4, 18),
    )
]


def test_corpus_is_there() -> None:
    committed = [p for p in FILES if p.is_relative_to(DATA_CORPUS)]
    assert len(committed) >= 45  # tests/data: the curated, redistributable subset
    if not HAS_CORPUS:
        pytest.skip(f"the whole corpus (79 documents): {REASON}")
    assert len(FILES) == 79


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=corpus_id(p), marks=_TOOLS if _needs_tools(p) else ()) for p in FILES],
)
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


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(name, expected, id=name, marks=_TOOLS if expected[1] in _CONVERTED_OR_OCR
                     or name.rsplit("/", 1)[-1] in _OCR_PDFS else ())
        for name, expected in sorted(KNOWN.items())
    ],
)  # fmt: skip
def test_known_outcomes(name: str, expected: tuple[str, str]) -> None:
    got = parse_file(corpus_file(name), EVENTS)
    assert (got.status, got.format) == expected


@pytest.mark.system
@pytest.mark.slow
def test_scans_are_read_by_ocr() -> None:
    # A scan without a text layer is OCR'd; this one is a page of prose, not a form.
    got = parse_file(corpus_file("pdf/tika-testOCR.pdf"), EVENTS)
    assert got.status == "not_a_form"
    assert got.reason == "no labels of the registration form found"
