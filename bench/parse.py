"""How fast is `mailbot parse`, against the bare text extraction of the same files?

Run:  .venv/bin/python bench/parse.py [--seconds 2]

For each format it parses the same files repeatedly and prints forms per second, and
the ratio of the full parse time to the time the underlying library needs just to pull
the text out (python-docx paragraphs + table cells for .docx; pypdfium2 page text for
PDF; lxml text of content.xml for .odt), measured in the same run on the same files:
the median of per-round ratios, the rounds alternating between the two, so that load
from other processes on a shared machine lands on both sides alike.
It also times one scanned page through OCR and the peak memory (max RSS) of a process
that parses a batch of 100 forms.

Format ``textpdf`` is the PDFs read from their text layer (office-printed, reportlab,
flattened), whose ratio to pypdfium2's bare text extraction is the text-PDF ratio.

Targets (issue 3, 2-core machine): docx and text PDF ≥ 100 forms/s with ratio ≤ 1.5;
a scanned page ≤ 5 s; a 100-form batch ≤ 300 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import docx  # python-docx: the baseline for .docx
import pypdf
import pypdfium2 as pdfium
from lxml import etree

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mailbot.forms import parse_bytes  # noqa: E402
from mailbot.forms.blank import EventHeader, FilledValues, make_docx, make_pdf  # noqa: E402
from mailbot.forms.model import Consents, EventRef, Institution, Participant  # noqa: E402

EXAMPLES = REPO.parent / "shared" / "forms" / "examples"
EVENTS = [
    EventRef("opole-2016", "Współpraca w partnerstwach samorządowych", "Opole", dt.date(2016, 4, 18)),
    EventRef("lublin-2016", "Współpraca w partnerstwach samorządowych", "Lublin", dt.date(2016, 3, 21)),
]
HEADER = EventHeader(
    title="Współpraca w partnerstwach samorządowych", city="Opole", date=dt.date(2016, 4, 18),
    start_time=dt.time(11, 0), venue="Sala Herbowa Urzędu Wojewódzkiego", address="ul. Piastowska 14",
    deadline=dt.date(2016, 4, 14),
)


def generated(n_people: int) -> FilledValues:
    return FilledValues(
        institution=Institution("Urząd Gminy Testowo", "ul. Polna 1, 46-000 Testowo", "77 400 10 10", "ug@testowo.pl"),
        participants=[
            Participant(f"Osoba Numer{i}", "Inspektor", f"60{i} 100 200", f"osoba{i}@testowo.pl")
            for i in range(1, n_people + 1)
        ],
        workshops={"A"},
        remarks=None,
        consents=Consents(True, False),
        place_date="Testowo, 1 kwietnia 2016 r.",
    )


def corpus() -> dict[str, list[tuple[str, bytes]]]:
    files: dict[str, list[tuple[str, bytes]]] = {"docx": [], "pdf": [], "odt": []}
    for path in sorted(EXAMPLES.iterdir()):
        if path.suffix in (".docx", ".odt") or (path.suffix == ".pdf" and not path.name.startswith("skan")):
            files[path.suffix[1:]].append((path.name, path.read_bytes()))
    for n in (1, 3, 7):
        files["docx"].append((f"gen-table-{n}.docx", make_docx(HEADER, generated(n), style="table", rows=max(3, n))))
        files["docx"].append((f"gen-controls-{n}.docx", make_docx(HEADER, generated(n), style="controls", rows=max(3, n))))
        files["pdf"].append((f"gen-{n}.pdf", make_pdf(HEADER, generated(n))))
    return files


def text_pdfs() -> list[tuple[str, bytes]]:
    """PDFs read from their text layer (no AcroForm values): the examples printed from
    an office suite, and generated copies printed from Word, drawn by reportlab and
    flattened (``tests/forms/pdfgen``; the Word ones only where LibreOffice is)."""
    from tests.forms import pdfgen

    files = [(n, d) for n, d in corpus()["pdf"] if not n.startswith("gen-") and "Prudnik" not in n]
    v = pdfgen.values(7, 6)
    files.append(("reportlab-6.pdf", pdfgen.reportlab_pdf(HEADER, v)))
    files.append(("flattened-6.pdf", pdfgen.flatten(make_pdf(HEADER, v))))
    word = pdfgen.to_pdf([make_docx(HEADER, v, rows=6)])[0]
    if word is not None:
        files.append(("word-6.pdf", word))
    return files


def baseline_docx(data: bytes) -> str:
    document = docx.Document(io.BytesIO(data))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.extend(cell.text for cell in row.cells)
    return "\n".join(parts)


def baseline_pdf(data: bytes) -> str:
    pdf = pdfium.PdfDocument(data)
    try:
        return "\n".join(page.get_textpage().get_text_range() for page in pdf)
    finally:
        pdf.close()


def baseline_pypdf(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def baseline_odt(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        root = etree.fromstring(z.read("content.xml"), etree.XMLParser(resolve_entities=False, no_network=True))
    return "".join(root.itertext())


BASELINES: dict[str, list[tuple[str, Callable[[bytes], str]]]] = {
    "docx": [("python-docx paragraphs+tables", baseline_docx)],
    "pdf": [("pypdfium2 get_text_range (the library mailbot uses)", baseline_pdf), ("pypdf extract_text", baseline_pypdf)],
    "odt": [("lxml content.xml itertext", baseline_odt)],
    "textpdf": [("pypdfium2 get_text_range (text-PDF ratio, target <= 1.5)", baseline_pdf)],
}


def paired(
    files: list[tuple[str, bytes]],
    work: Callable[[str, bytes], object],
    bare: Callable[[bytes], object],
    seconds: float,
) -> tuple[float, float, float]:
    """Seconds per file for ``work`` and ``bare``, and the median of their per-round
    ratio: rounds alternate, so a load spike on a shared machine hits both sides."""
    for name, data in files:
        work(name, data)
        bare(data)
    ratios: list[float] = []
    full_total = bare_total = 0.0
    start = time.perf_counter()
    while len(ratios) < 5 or time.perf_counter() - start < 2 * seconds:
        t0 = time.perf_counter()
        for name, data in files:
            work(name, data)
        t1 = time.perf_counter()
        for _name, data in files:
            bare(data)
        t2 = time.perf_counter()
        full_total += t1 - t0
        bare_total += t2 - t1
        ratios.append((t1 - t0) / (t2 - t1))
    n = len(ratios) * len(files)
    return full_total / n, bare_total / n, statistics.median(ratios)


def scan_seconds(repeat: int = 3) -> float | None:
    path = EXAMPLES / "skan_zgloszenie_Lubniany.pdf"
    if not path.exists():
        return None
    data = path.read_bytes()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = parse_bytes(data, path.name, EVENTS)
        times.append(time.perf_counter() - start)
        if result.status != "ok":
            print(f"  (scan not read: {result.status}: {result.reason})")
    return statistics.median(times)


_BATCH = """
import resource, sys
sys.path.insert(0, {repo!r})
from bench.parse import corpus, EVENTS
from mailbot.forms import parse_bytes
files = [f for fs in corpus().values() for f in fs]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for i in range(100):
    name, data = files[i % len(files)]
    parse_bytes(data, name, EVENTS)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, after)
"""


def batch_memory_mb() -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", _BATCH.format(repo=str(REPO))], capture_output=True, text=True, check=True
    ).stdout.split()
    before, after = (int(x) / 1024 for x in out)
    return before, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement (default 2)")
    args = parser.parse_args()

    files = corpus()
    files["textpdf"] = text_pdfs()
    print(f"{'format':<6} {'files':>5} {'parse forms/s':>14} {'baseline forms/s':>17} {'ratio':>6}  baseline")
    for fmt, batch in files.items():
        if not batch:
            continue
        for label, extract in BASELINES[fmt]:
            full, bare, ratio = paired(
                batch, lambda name, data: parse_bytes(data, name, EVENTS), extract, args.seconds
            )
            print(f"{fmt:<7} {len(batch):>5} {1 / full:>14.0f} {1 / bare:>17.0f} {ratio:>6.2f}  {label}")
    scan = scan_seconds()
    if scan is not None:
        print(f"scanned page (OCR), median of 3: {scan:.2f} s")
    before, after = batch_memory_mb()
    print(f"100-form batch, peak RSS of the process: {after:.0f} MB (after imports: {before:.0f} MB)")


if __name__ == "__main__":
    main()
