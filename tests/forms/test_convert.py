"""Legacy formats (.doc, .rtf, Word 2003 XML, WordPerfect) read through LibreOffice.

The fixtures are the project's own forms (``blank.make_docx``) saved by LibreOffice as
.doc/.rtf/WordML, so a converted copy must give exactly what the .docx gives. Tests
that run LibreOffice are ``slow`` (CI runs them); a missing ``soffice`` FAILS them
with an install hint instead of skipping: a skipped converter test proves nothing.
"""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mailbot.errors import FormError
from mailbot.forms import parse_bytes, parse_file
from mailbot.forms.blank import FilledValues, make_docx
from mailbot.forms.convert import _doc_filter, _summary, to_docx
from mailbot.forms.model import (
    Consents,
    FormData,
    Institution,
    Limits,
    Participant,
)
from mailbot.forms.sniff import sniff

from .cycle import EVENTS, OPOLE, TITLE

try:
    from tests.shared import corpus_file, corpus_files, corpus_id
except ImportError:
    from shared import corpus_file, corpus_files, corpus_id  # type: ignore[no-redef]

ENCRYPTED = "other/poi-password_tika_binaryrc4.doc"
VALUES = FilledValues(
    institution=Institution(
        name="Urząd Miejski w Brzezinie Opolskiej",
        address="ul. Rynek 12, 46-320 Brzezina Opolska",
        phone="77 413 20 10",
        email="sekretariat@um.example.pl",
    ),
    participants=[
        Participant(
            "Anna Kowalska-Nowak",
            "Kierownik Referatu Rozwoju",
            "77 123 45 61",
            "a.kowalska@um.example.pl",
        ),
        Participant("Łukasz Żółkiewski", "Sekretarz Gminy", "601 234 562", None),
    ],
    workshops={"B"},
    remarks="dieta wegetariańska",
    consents=Consents(data_processing=True, newsletter=True),
    place_date="Brzezina Opolska, 8.04.2016",
)
COMPARED = (
    "status",
    "method",
    "event",
    "institution",
    "participants",
    "workshops",
    "remarks",
    "consents",
    "problems",
)
# (fixture name, LibreOffice export filter, extension, sniffed format)
SAVE_AS = {
    "doc": ("MS Word 97", "doc", "doc"),
    "rtf": ("Rich Text Format", "rtf", "rtf"),
    "wordml": ("MS Word 2003 XML", "xml", "wordml"),
}
# LibreOffice's *export* loses check-box states: legacy ones in RTF, all in WordML
# (its RTF import reads Word's own check boxes: see the hand-written RTF below), so
# those pairs are left out rather than tested against a lossy fixture.
CASES = [
    ("table", "doc"),
    ("controls", "doc"),
    ("legacy", "doc"),
    ("table", "rtf"),
    ("controls", "rtf"),
    ("table", "wordml"),
]

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def soffice() -> str:
    path = shutil.which("soffice")
    if path is None:
        pytest.fail(
            "LibreOffice is missing: install the Debian package libreoffice-writer-nogui "
            "(apt-get install --no-install-recommends libreoffice-writer-nogui)"
        )
    return path


# --------------------------------------------------------------------------- fixtures


def _run(*parts: str) -> str:
    return "".join(f'<w:r><w:t xml:space="preserve">{p}</w:t></w:r>' for p in parts)


def _formtext(name: str, value: str) -> str:
    return (
        f'<w:r><w:fldChar w:fldCharType="begin"><w:ffData><w:name w:val="{name}"/><w:textInput/>'
        '</w:ffData></w:fldChar></w:r><w:r><w:instrText xml:space="preserve"> FORMTEXT </w:instrText></w:r>'
        f'<w:r><w:fldChar w:fldCharType="separate"/></w:r>{_run(value)}'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )


def _formcheck(name: str, checked: bool) -> str:
    return (
        f'<w:r><w:fldChar w:fldCharType="begin"><w:ffData><w:name w:val="{name}"/><w:checkBox>'
        f'<w:sizeAuto/><w:default w:val="0"/>{"<w:checked/>" if checked else ""}</w:checkBox>'
        '</w:ffData></w:fldChar></w:r><w:r><w:instrText xml:space="preserve"> FORMCHECKBOX </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )


def _row(*cells: str) -> str:
    return (
        "<w:tr>"
        + "".join(
            f"<w:tc><w:p>{c if c.startswith('<') else _run(c)}</w:p></w:tc>"
            for c in cells
        )
        + "</w:tr>"
    )


def legacy_docx() -> bytes:
    """An older organisers' copy: legacy FORMTEXT / FORMCHECKBOX fields in the table."""
    body = (
        f"<w:p>{_run('ZGŁOSZENIE UCZESTNICTWA')}</w:p>"
        f"<w:p>{_run(f'w konferencji informacyjnej „{TITLE}”')}</w:p>"
        f"<w:p>{_run('Opole, 18 kwietnia 2016 r., Sala Herbowa Urzędu Wojewódzkiego')}</w:p>"
        "<w:tbl>"
        + _row(
            "Nazwa jednostki samorządu terytorialnego / instytucji:",
            _formtext("t1", "Gmina Lubrza"),
        )
        + _row("Telefon:", _formtext("t2", "\u2002\u2002\u2002\u2002\u2002"))
        + _row("E-mail:", _formtext("t3", "gmina@lubrza.example.pl"))
        + "</w:tbl><w:tbl>"
        + _row("Lp.", "Imię i nazwisko", "Stanowisko / funkcja", "Telefon", "E-mail")
        + _row(
            "1.",
            _formtext("a", "Zieliński Marek"),
            "Sekretarz",
            "77 431 11 22",
            _formtext("b", "m.z@lubrza.example.pl"),
        )
        + "</w:tbl>"
        f"<w:p>{_formcheck('c1', False)}{_run(' A – Zarządzanie strategiczne w partnerstwie')}</w:p>"
        f"<w:p>{_formcheck('c2', True)}{_run(' B – Zarządzanie relacjami w partnerstwie')}</w:p>"
        f"<w:p>{_formcheck('c3', True)}{_run(' Wyrażam zgodę na przetwarzanie danych osobowych zawartych w zgłoszeniu')}</w:p>"
    )
    xml = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{_W}"><w:body>{body}</w:body></w:document>'
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        z.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="word/document.xml"/></Relationships>',
        )
        z.writestr("word/document.xml", xml)
    return out.getvalue()


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], bytes]:
    """Each (layout, format) in CASES as LibreOffice saves it, plus the .docx originals.

    One soffice call per target format (each with its own profile, run side by side)
    converts all its layouts at once.
    """
    exe = soffice()
    root = tmp_path_factory.mktemp("saved")
    originals = {
        "table": make_docx(OPOLE, VALUES, style="table"),
        "controls": make_docx(OPOLE, VALUES, style="controls"),
        "legacy": legacy_docx(),
    }
    for name, data in originals.items():
        (root / f"{name}.docx").write_bytes(data)
    out: dict[tuple[str, str], bytes] = {(n, "docx"): d for n, d in originals.items()}
    calls = []
    for target, (filter_name, ext, _) in SAVE_AS.items():
        names = [n for n, t in CASES if t == target]
        command = [
            exe, f"-env:UserInstallation={(root / f'profile-{target}').as_uri()}", "--headless",
            "--norestore", "--convert-to", f"{ext}:{filter_name}", "--outdir", str(root / target),
            *(str(root / f"{n}.docx") for n in names),
        ]  # fmt: skip
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        calls.append((proc, target, ext, names))
    for proc, target, ext, names in calls:
        assert proc.wait(timeout=120) == 0
        for n in names:
            out[(n, target)] = (root / target / f"{n}.{ext}").read_bytes()
    return out


@pytest.fixture(scope="module")
def parsed(saved: dict[tuple[str, str], bytes]) -> dict[tuple[str, str], FormData]:
    """Every saved copy parsed once (each conversion costs ~1 s)."""
    return {
        key: parse_bytes(data, f"form.{key[1]}", EVENTS) for key, data in saved.items()
    }


# --------------------------------------------------------------------------- round trips


@pytest.mark.slow
@pytest.mark.parametrize(
    ("layout", "target"), CASES, ids=[f"{a}-{b}" for a, b in CASES]
)
def test_saved_copy_reads_like_the_docx(
    saved: dict[tuple[str, str], bytes],
    parsed: dict[tuple[str, str], FormData],
    layout: str,
    target: str,
) -> None:
    assert sniff(saved[(layout, target)]) == SAVE_AS[target][2]
    expected = parsed[(layout, "docx")].to_json()
    got = parsed[(layout, target)].to_json()
    assert got["format"] == SAVE_AS[target][2]
    assert got["status"] == "ok", got.get("reason")
    for key in COMPARED:
        assert got[key] == expected[key], key


@pytest.mark.slow
def test_doc_from_the_generator_has_every_value(
    parsed: dict[tuple[str, str], FormData],
) -> None:
    got = parsed[("controls", "doc")]
    assert (got.status, got.format, got.method, got.event) == (
        "ok",
        "doc",
        "fields",
        "opole-2016",
    )
    assert got.institution == Institution(
        "Urząd Miejski w Brzezinie Opolskiej",
        "ul. Rynek 12, 46-320 Brzezina Opolska",
        "+48774132010",
        "sekretariat@um.example.pl",
    )
    assert got.participants == [
        Participant(
            "Anna Kowalska-Nowak",
            "Kierownik Referatu Rozwoju",
            "+48771234561",
            "a.kowalska@um.example.pl",
        ),
        Participant("Łukasz Żółkiewski", "Sekretarz Gminy", "+48601234562", None),
    ]
    assert got.workshops == ["B"] and got.consents == Consents(True, True)
    assert [(p.field, p.code) for p in got.problems] == [
        ("participants[1].email", "missing")
    ]


@pytest.mark.slow
def test_legacy_fields_survive_the_doc(parsed: dict[tuple[str, str], FormData]) -> None:
    got = parsed[("legacy", "doc")]
    assert (got.status, got.method) == ("ok", "fields")
    assert got.institution is not None and got.institution.name == "Gmina Lubrza"
    assert got.institution.phone is None  # Word's blank en-spaces are still empty
    assert got.workshops == ["B"] and got.consents == Consents(True, False)


@pytest.mark.slow
def test_word_rtf_check_boxes_are_read() -> None:
    soffice()
    box = r"{\field{\*\fldinst{ FORMCHECKBOX {\*\formfield{\fftype1\ffres%d\ffdefres0{\*\ffname c%d}}}}}{\fldrslt }}"
    rtf = "\n".join(
        [
            r"{\rtf1\ansi\ansicpg1250\deff0{\fonttbl{\f0 Times New Roman;}}",
            r"\pard ZG\'a3OSZENIE UCZESTNICTWA\par",
            r"\pard w konferencji informacyjnej \'84Wsp\'f3\'b3praca w partnerstwach samorz\'b9dowych\'94\par",
            r"\pard Opole, 18 kwietnia 2016 r.\par",
            r"\pard Nazwa jednostki samorz\'b9du terytorialnego / instytucji: Gmina Tu\'b3owice\par",
            r"\pard Imi\'ea i nazwisko: Jan Nowak\par",
            r"\pard E-mail: jan@tulowice.example.pl\par",
            r"\pard "
            + box % (1, 1)
            + r" A \endash  Zarz\'b9dzanie strategiczne w partnerstwie\par",
            r"\pard "
            + box % (0, 2)
            + r" B \endash  Zarz\'b9dzanie relacjami w partnerstwie\par",
            r"\pard "
            + box % (1, 3)
            + r" Wyra\'bfam zgod\'ea na przetwarzanie danych osobowych\par",
            "}",
        ]
    ).encode("ascii")
    got = parse_bytes(rtf, "zgloszenie.rtf", EVENTS)
    assert (got.status, got.format, got.event) == ("ok", "rtf", "opole-2016"), (
        got.reason
    )
    assert got.institution is not None and got.institution.name == "Gmina Tułowice"
    assert [p.full_name for p in got.participants] == ["Jan Nowak"]
    assert got.workshops == ["A"]
    assert got.consents == Consents(data_processing=True, newsletter=False)


# --------------------------------------------------------------------------- the corpus


def _legacy_corpus() -> list[Path]:
    """The corpus's legacy documents: tests/data's always, ../shared's when present."""
    return [
        p
        for p in corpus_files("other")
        if sniff(p.read_bytes()) in {"doc", "rtf", "wordml", "wordperfect"}
    ]


@pytest.mark.slow
@pytest.mark.parametrize("path", _legacy_corpus(), ids=corpus_id)
def test_corpus_document_gets_a_clear_status(path: Path) -> None:
    soffice()
    got = parse_file(path, EVENTS)
    assert got.status in {"not_a_form", "unreadable"}
    assert got.reason
    assert got.format == sniff(path.read_bytes())
    assert got.institution is None and got.participants == [] and got.problems == []


def test_corpus_has_the_legacy_documents() -> None:
    assert {sniff(p.read_bytes()) for p in _legacy_corpus()} >= {"doc", "rtf", "wordml"}


def test_encrypted_doc_is_refused_before_libreoffice_runs() -> None:
    got = parse_file(corpus_file(ENCRYPTED), EVENTS)
    assert (got.status, got.format) == ("unreadable", "doc")
    assert got.reason and "encrypted" in got.reason


# --------------------------------------------------------------------------- containment


def _processes_with(text: str) -> list[str]:
    found = subprocess.run(
        ["pgrep", "-af", text], capture_output=True, text=True, check=False
    )
    return found.stdout.splitlines()


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The converter's temp dirs go here, so a leftover dir or process shows up."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    yield tmp_path


@pytest.mark.slow
def test_timeout_kills_libreoffice_and_cleans_up(
    saved: dict[tuple[str, str], bytes], private_tmp: Path
) -> None:
    started = time.monotonic()
    got = parse_bytes(
        saved[("table", "doc")], "x.doc", EVENTS, Limits(timeout_seconds=0.4)
    )
    assert time.monotonic() - started < 3
    assert (got.status, got.format) == ("unreadable", "doc")
    assert got.reason and "timed out" in got.reason
    deadline = time.monotonic() + 3
    while _processes_with(str(private_tmp)) and time.monotonic() < deadline:
        time.sleep(0.05)  # SIGKILL is delivered asynchronously
    assert _processes_with(str(private_tmp)) == []
    assert list(private_tmp.iterdir()) == []


@pytest.mark.slow
def test_libreoffice_dies_with_its_parent(
    saved: dict[tuple[str, str], bytes], tmp_path: Path
) -> None:
    # A daemon restart or the reader process killed at its deadline must not leave
    # LibreOffice running: kill the converting process halfway through.
    source = tmp_path / "in.doc"
    source.write_bytes(saved[("table", "doc")])
    script = (
        f"import tempfile; tempfile.tempdir = {str(tmp_path)!r}\n"
        "from pathlib import Path\n"
        "from mailbot.forms.convert import to_docx\n"
        "from mailbot.forms.model import Limits\n"
        "print('go', flush=True)\n"
        f"to_docx(Path({str(source)!r}).read_bytes(), 'doc', Limits())\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert parent.stdout is not None and parent.stdout.readline() == b"go\n"

    def converting() -> list[str]:
        return [p for p in _processes_with(str(tmp_path)) if "soffice.bin" in p]

    deadline = time.monotonic() + 5
    while not converting() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert converting()
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 3
    while _processes_with(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _processes_with(str(tmp_path)) == []


@pytest.mark.slow
def test_conversions_run_concurrently(
    saved: dict[tuple[str, str], bytes], private_tmp: Path
) -> None:
    jobs = [
        saved[("table", "doc")],
        saved[("table", "rtf")],
        saved[("controls", "doc")],
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda d: parse_bytes(d, "f", EVENTS), jobs))
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    assert [r.format for r in results] == ["doc", "rtf", "doc"]
    assert all(
        r.institution and r.institution.name == VALUES.institution.name for r in results
    )
    assert list(private_tmp.iterdir()) == []


@pytest.mark.slow
def test_output_larger_than_the_limit_is_unreadable(
    saved: dict[tuple[str, str], bytes], private_tmp: Path
) -> None:
    got = parse_bytes(
        saved[("table", "doc")], "x.doc", EVENTS, Limits(max_decompressed_bytes=4000)
    )
    assert got.status == "unreadable"
    assert got.reason == "converted document is larger than 4000 bytes"
    assert list(private_tmp.iterdir()) == []


@pytest.mark.slow
def test_wordperfect_garbage_is_unreadable() -> None:
    soffice()
    data = b"\xffWPC" + b"\x10\x00\x00\x00" + b"\x01\x0a\x02\x01" + b"\x00" * 200
    assert sniff(data) == "wordperfect"
    got = parse_bytes(data, "x.wpd", EVENTS)
    assert got.status in {"unreadable", "not_a_form"} and got.reason
    assert got.format == "wordperfect"


def test_missing_libreoffice_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    got = parse_bytes(b"{\\rtf1 Zg\\'b3oszenie}", "x.rtf", EVENTS)
    assert (got.status, got.format) == ("unreadable", "rtf")
    assert got.reason and "libreoffice-writer-nogui" in got.reason


def test_wordml_with_a_dtd_is_refused() -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<w:wordDocument xmlns:w="http://schemas.microsoft.com/office/word/2003/wordml">&x;</w:wordDocument>'
    )
    assert sniff(xxe) == "wordml"
    got = parse_bytes(xxe, "x.doc", EVENTS)
    assert got.status == "unreadable" and got.reason and "DTD" in got.reason


def test_unknown_format_is_refused() -> None:
    with pytest.raises(FormError):
        to_docx(b"%PDF-1.4", "pdf", Limits())


def test_wordperfect_is_sniffed_by_its_magic() -> None:
    assert sniff(b"\xffWPC\x10\x00\x00\x00\x01\x0a" + b"\x00" * 20) == "wordperfect"
    wpg_image = b"\xffWPC\x10\x00\x00\x00\x01\x16" + b"\x00" * 20
    assert sniff(wpg_image) == "unknown"
    wp42 = corpus_file("other/tika-testWordPerfect_42.doc").read_bytes()
    assert sniff(wp42) == "unknown"  # WordPerfect 4.2 has no magic


def test_fib_reader_picks_the_import_filter() -> None:
    assert _doc_filter(corpus_file("other/poi-Word95.doc").read_bytes()) == "MS Word 95"
    assert _doc_filter(corpus_file("other/poi-innertable.doc").read_bytes()) == "MS Word 97"
    with pytest.raises(FormError, match="encrypted"):
        _doc_filter(corpus_file(ENCRYPTED).read_bytes())


def test_fib_reader_survives_damaged_compound_files() -> None:
    rng = random.Random(7)
    original = corpus_file("other/poi-innertable.doc").read_bytes()
    for _ in range(300):
        data = bytearray(original[: rng.choice([512, 1024, 4096, len(original)])])
        for _ in range(rng.randint(1, 20)):
            pos = rng.randrange(len(data))
            data[pos] = rng.randrange(256)
        data[:8] = original[:8]
        try:
            _doc_filter(bytes(data))
        except FormError as e:
            assert "encrypted" in str(e)


def test_a_crash_is_reported_by_its_signal_not_its_stack_dump() -> None:
    dump = b"Warning: failed to launch javaldx\nFatal exception: Signal 11\nStack: /usr/lib/x.so"
    assert _summary(dump) == "LibreOffice crashed (SIGSEGV)"
    failed = (
        b"Warning: failed to launch javaldx\nError: source file could not be loaded\n"
    )
    assert _summary(failed) == "Error: source file could not be loaded"
