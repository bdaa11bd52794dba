"""Generated text PDFs of filled-in forms, each with the exact reading it must give.

``cases()`` yields ``GenCase``s in four buckets, made the way real senders make them:

- ``pdf-word``: a .docx (``make_docx`` tables or content controls, and the hand-built
  layouts of ``test_variants``) printed to PDF by LibreOffice: tables with ruling
  lines, long e-mails and positions wrapped inside their cells, hyphenated surnames
  broken at the hyphen, 2–3-line remarks, 4–12 people so the table runs onto page 2;
- ``pdf-reportlab``: the same form drawn by reportlab (another producer): a platypus
  ``Table`` of ``Paragraph`` cells (wrapped), ☒/☐ typed before the options;
- ``pdf-flattened``: the fillable form filled and flattened into page content
  (PDFium's flattening, and values drawn by reportlab where the fields were, with
  ZapfDingbats ✘ ticks), no AcroForm left;
- ``pdf-fillable``: the AcroForm itself, filled.

LibreOffice costs ~1 s a call, so every .docx is converted once: results are cached
by content hash (``MAILBOT_PDFGEN_CACHE`` or the temp dir) and missing ones are
converted together in one ``soffice`` call. Without LibreOffice the ``pdf-word``
bucket is empty.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from mailbot.forms.blank import (
    CONSENT_TEXTS,
    WORKSHOPS,
    EventHeader,
    FilledValues,
    header_line,
    make_docx,
    make_pdf,
)
from mailbot.forms.model import Consents, FormData, Institution, Participant
from mailbot.forms.normalize import normalize_email, normalize_phone
from tests.forms.pdfdraw import Style, ascii_values, drawn_form, rotated
from tests.forms.scoring import GenCase

__all__ = ["OPOLE", "cases", "expected", "flatten", "to_pdf", "values"]

TITLE = "Współpraca w partnerstwach samorządowych"
OPOLE = EventHeader(
    TITLE, "Opole", dt.date(2016, 4, 18), dt.time(11), "Sala Herbowa Urzędu Wojewódzkiego",
    "ul. Piastowska 14", dt.date(2016, 4, 14),
)  # fmt: skip

INSTITUTIONS = [
    Institution("Starostwo Powiatowe w Strzelcach Opolskich", "ul. Jordanowska 2, 47-100 Strzelce Opolskie",
                "77 440 17 00", "sekretariat.starostwa@powiatstrzelecki.pl"),
    Institution("Urząd Gminy Łubniany", "ul. Opolska 104, 46-024 Łubniany", "(077) 421 50 31", "ug@lubniany.pl"),
    Institution("Urząd Miejski w Głogówku", "Rynek 1, 48-250 Głogówek", "+48 77 406 99 00",
                "Sekretariat.Urzedu@Glogowek.PL"),
    Institution("Urząd Gminy Dąbrowa", "ul. Ks. Gorzołki 2, 49-120 Dąbrowa", "77-464-10-10",
                "gmina.dabrowa@dabrowa-opolska.pl"),
]  # fmt: skip
NAMES = [
    "Agnieszka Kwiatkowska-Krawczyk", "Bożena Ćwik-Górska", "Łukasz Żółkiewski", "Małgorzata Śliwińska",
    "Grzegorz Dźwigaj", "Katarzyna Wróblewska-Szczęsna", "Jerzy Bąk", "Żaneta Ślązak", "Wiesław Łęcki",
    "Zofia Wąs", "Przemysław Grzegorczyk-Michalski", "Ewa Ćwiklińska", "Kowalska-Nowak Anna",
]  # fmt: skip
POSITIONS = [
    "Naczelnik Wydziału Rozwoju, Promocji i Współpracy Zagranicznej", "Inspektor",
    "Kierownik Referatu Inwestycji i Funduszy Europejskich", "Sekretarz Gminy", "Skarbnik",
    "Podinspektor ds. pozyskiwania środków zewnętrznych", "Burmistrz", "Referent",
]  # fmt: skip
PHONES = [
    "601 234 567", "+48 507 634 291", "(77) 461-22-33", "0048774080502", "774080505", "tel. 605 111 222",
    "77 408 05 01", "604-123-456",
]  # fmt: skip
DOMAINS = ["powiatstrzelecki.pl", "lubniany.pl", "glogowek.pl", "dabrowa-opolska.pl", "opolskie.pl"]
REMARKS = [
    "dieta wegetariańska",
    "Prosimy o posiłek wegetariański dla dwóch osób oraz o miejsce parkingowe dla osoby z "
    "niepełnosprawnością ruchową, która przyjedzie samochodem służbowym",
    "Jedna osoba na wózku inwalidzkim – prosimy o informację o dostępności sali i windy, "
    "a także o możliwość wcześniejszego wjazdu na parking przy Urzędzie Wojewódzkim w Opolu",
    None,
]
_ASCII = str.maketrans("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ", "acelnoszzACELNOSZZ")


def _email(name: str, domain: str, rng: random.Random) -> str:
    parts = name.translate(_ASCII).lower().replace("-", " ").split()
    style = rng.randrange(3)
    if style == 0:  # long: the one that wraps in a narrow column
        local = ".".join(parts[:1] + ["-".join(parts[1:])]) if len(parts) > 2 else ".".join(parts)
    elif style == 1:
        local = parts[0][0] + "." + parts[-1]
    else:
        local = parts[-1]
    return f"{local}@{domain}"


def values(seed: int, people: int, remarks: int | None = None) -> FilledValues:
    """A realistic filled form; ``seed`` picks names, phones, ticks; remarks by index."""
    rng = random.Random(seed)
    inst = INSTITUTIONS[seed % len(INSTITUTIONS)]
    domain = DOMAINS[seed % len(DOMAINS)]
    names = rng.sample(NAMES, min(people, len(NAMES)))
    while len(names) < people:
        names.append(f"{rng.choice(NAMES).split()[0]} Nowak{len(names)}")
    persons = [
        Participant(
            name,
            rng.choice(POSITIONS),
            rng.choice(PHONES) if rng.random() > 0.1 else None,
            _email(name, domain, rng),
        )
        for name in names
    ]
    return FilledValues(
        institution=inst,
        participants=persons,
        workshops=rng.choice([{"A"}, {"B"}, {"A", "B"}, set()]),
        remarks=REMARKS[remarks if remarks is not None else seed % len(REMARKS)],
        consents=Consents(rng.random() > 0.15, rng.random() > 0.5),
        place_date=f"Opole, {1 + seed % 12}.04.2016",
    )


def expected(v: FilledValues, event: str | None = "opole-2016") -> FormData:
    """What a perfect reader gives for ``v``: the contract's normalised values."""
    inst = v.institution
    return FormData(
        file="",
        status="ok",
        format="pdf",
        event=event,
        institution=Institution(
            inst.name, inst.address, normalize_phone(inst.phone)[0], normalize_email(inst.email)[0]
        ),
        participants=[
            Participant(p.full_name, p.position, normalize_phone(p.phone)[0], normalize_email(p.email)[0])
            for p in v.participants
        ],
        workshops=sorted(v.workshops),
        remarks=v.remarks,
        consents=Consents(v.consents.data_processing, v.consents.newsletter),
    )


# --- LibreOffice, cached ----------------------------------------------------------------


def _cache_dir() -> Path:
    path = Path(os.environ.get("MAILBOT_PDFGEN_CACHE") or Path(tempfile.gettempdir()) / "mailbot-pdfgen")
    path.mkdir(parents=True, exist_ok=True)
    return path


def to_pdf(documents: Sequence[bytes], via: str | None = None) -> list[bytes | None]:
    """Each .docx printed to PDF by LibreOffice (``None`` without it), cached by hash;
    ``via`` ("odt", "doc"): saved in that format first, and that file printed, as a
    sender who keeps the form as .odt or Word 97 does."""
    cache = _cache_dir()
    keys = [hashlib.sha256(d).hexdigest()[:24] + (f"-{via}" if via else "") for d in documents]
    missing = {k: d for k, d in zip(keys, documents, strict=True) if not (cache / f"{k}.pdf").exists()}
    soffice = shutil.which("soffice")
    if missing and soffice is not None:
        work = Path(tempfile.mkdtemp(prefix="pdfgen-"))

        def convert(target: str, sources: list[Path], out: Path) -> None:
            subprocess.run(
                [soffice, f"-env:UserInstallation={(work / 'profile').as_uri()}", "--headless", "--norestore",
                 "--nologo", "--convert-to", target, "--outdir", str(out), *map(str, sources)],
                capture_output=True, timeout=300, check=False,
            )  # fmt: skip

        try:
            for key, data in missing.items():
                (work / f"{key}.docx").write_bytes(data)
            sources = [work / f"{k}.docx" for k in missing]
            if via is not None:
                convert({"doc": "doc:MS Word 97"}.get(via, via), sources, work / "saved")
                sources = [work / "saved" / f"{k}.{via}" for k in missing if (work / "saved" / f"{k}.{via}").exists()]
            convert("pdf", sources, work / "out")
            for key in missing:
                out = work / "out" / f"{key}.pdf"
                if out.exists():
                    tmp = cache / f"{key}.pdf.tmp{os.getpid()}"
                    tmp.write_bytes(out.read_bytes())
                    tmp.replace(cache / f"{key}.pdf")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return [(cache / f"{k}.pdf").read_bytes() if (cache / f"{k}.pdf").exists() else None for k in keys]


def distill(data: bytes) -> bytes | None:
    """``data`` re-distilled by Ghostscript (``gs -sDEVICE=pdfwrite``), as "print to
    PDF" drivers built on it rebuild a page's text: one show-text per line across
    table columns, fonts re-subset. ``None`` without ``gs``; cached by hash."""
    cache = _cache_dir() / f"gs-{hashlib.sha256(data).hexdigest()[:24]}.pdf"
    if cache.exists():
        return cache.read_bytes()
    gs = shutil.which("gs")
    if gs is None:
        return None
    work = Path(tempfile.mkdtemp(prefix="pdfgen-gs-"))
    try:
        (work / "in.pdf").write_bytes(data)
        subprocess.run(
            [gs, "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite", f"-sOutputFile={work / 'out.pdf'}",
             str(work / "in.pdf")],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        out = work / "out.pdf"
        if not out.exists():
            return None
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(out.read_bytes())
        tmp.replace(cache)
        return cache.read_bytes()
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- flattening ---------------------------------------------------------------------


def flatten(data: bytes) -> bytes:
    """A filled AcroForm flattened by PDFium, as "print to PDF" of a filled form does:
    the form environment regenerates the appearances (Polish letters), then every
    widget is drawn into the page and the AcroForm is gone."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    doc = pdfium.PdfDocument(data)
    try:
        doc.init_forms()
        for page in doc:
            pdfium_c.FPDFPage_Flatten(page.raw, pdfium_c.FLAT_PRINT)
            page.close()
        out = io.BytesIO()
        doc.save(out)
        return out.getvalue()
    finally:
        doc.close()


def drawn_over(data: bytes, v: FilledValues) -> bytes:
    """The blank fillable form with ``v`` drawn by reportlab where its fields are
    (DejaVu text, ZapfDingbats ✘ in ticked boxes), widgets removed: a flattened copy
    from another producer."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c
    from reportlab.pdfgen.canvas import Canvas

    from mailbot.forms.blank import _pdf_fonts

    regular = _pdf_fonts()[0]
    doc = pdfium.PdfDocument(data)
    doc.init_forms()
    page = doc[0]
    width, height = page.get_size()
    rects: dict[str, tuple[float, float, float, float]] = {}
    rect = pdfium_c.FS_RECTF()
    for i in range(pdfium_c.FPDFPage_GetAnnotCount(page.raw)):
        annot = pdfium_c.FPDFPage_GetAnnot(page.raw, i)
        size = pdfium_c.FPDFAnnot_GetFormFieldName(doc.formenv.raw, annot, None, 0)
        buf = (pdfium_c.FPDF_WCHAR * (size // 2))()
        pdfium_c.FPDFAnnot_GetFormFieldName(doc.formenv.raw, annot, buf, size)
        name = bytes(buf)[: size - 2].decode("utf-16-le")
        pdfium_c.FPDFAnnot_GetRect(annot, rect)
        rects[name] = (rect.left, rect.bottom, rect.right, rect.top)
        pdfium_c.FPDFPage_CloseAnnot(annot)
    while pdfium_c.FPDFPage_GetAnnotCount(page.raw):
        pdfium_c.FPDFPage_RemoveAnnot(page.raw, 0)
    pdfium_c.FPDFPage_GenerateContent(page.raw)
    page.close()
    base = io.BytesIO()
    doc.save(base)
    doc.close()

    overlay = io.BytesIO()
    canvas = Canvas(overlay, pagesize=(width, height), invariant=True)
    texts: dict[str, str | None] = {f"institution.{k}": getattr(v.institution, k) for k in ("name", "address", "phone", "email")}
    for i, person in enumerate(v.participants):
        texts |= {f"participants[{i}].{k}": getattr(person, k) for k in ("full_name", "position", "phone", "email")}
    texts["remarks"] = v.remarks
    texts["signature.place_date"] = v.place_date
    for name, (x0, y0, x1, y1) in rects.items():
        if name.startswith(("workshops.", "consents.")):
            key = name.split(".", 1)[1]
            on = key in v.workshops if name.startswith("workshops.") else getattr(v.consents, key)
            canvas.rect(x0, y0, x1 - x0, y1 - y0)
            if on:
                canvas.setFont("ZapfDingbats", 9)
                canvas.drawString(x0 + 2, y0 + 2.5, "8")  # ✘
            continue
        value = texts.get(name)
        if not value:
            continue
        canvas.setFont(regular, 8)
        if name == "remarks":  # multi-line: wrap at the field's width
            from reportlab.lib.utils import simpleSplit

            for n, line in enumerate(simpleSplit(value, regular, 8, x1 - x0 - 4)):
                canvas.drawString(x0 + 2, y1 - 10 - 9.5 * n, line)
        else:
            canvas.drawString(x0 + 2, y0 + 5, value)
    canvas.showPage()
    canvas.save()
    base_doc = pdfium.PdfDocument(base.getvalue())
    over = pdfium.PdfDocument(overlay.getvalue())
    xobject = over.page_as_xobject(0, base_doc)
    target = base_doc[0]
    target.insert_obj(xobject.as_pageobject())
    target.gen_content()
    out = io.BytesIO()
    base_doc.save(out)
    return out.getvalue()


# --- reportlab tables ---------------------------------------------------------------


def reportlab_pdf(header: EventHeader, v: FilledValues, *, grid: bool = True) -> bytes:
    """The form drawn with reportlab platypus: wrapped ``Paragraph`` cells in tables."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from mailbot.forms.blank import _pdf_fonts

    regular, bold, _ = _pdf_fonts()
    # Long words break at their own hyphen ("Kwiatkowska-" / "Krawczyk"), as Word does.
    body = ParagraphStyle("body", fontName=regular, fontSize=9, leading=11, embeddedHyphenation=1)
    strong = ParagraphStyle("strong", parent=body, fontName=bold, fontSize=10.5, leading=14)
    title = ParagraphStyle("title", parent=strong, fontSize=13, alignment=1, leading=17)

    def cell(text: str | None) -> Paragraph:
        return Paragraph((text or "").replace("&", "&amp;").replace("<", "&lt;"), body)

    style: list[tuple[object, ...]] = [("VALIGN", (0, 0), (-1, -1), "TOP"), ("FONTNAME", (0, 0), (-1, -1), regular)]
    if grid:
        style.append(("GRID", (0, 0), (-1, -1), 0.6, (0, 0, 0)))
    inst = v.institution
    flow = [
        Paragraph("ZGŁOSZENIE UCZESTNICTWA", title),
        Paragraph(f"w konferencji informacyjnej „{header.title}”", strong),
        Paragraph(header_line(header), body),
        Spacer(1, 8),
        Paragraph("1. Dane instytucji", strong),
        Table(
            [[cell(label), cell(value)] for label, value in (
                ("Nazwa jednostki samorządu terytorialnego / instytucji:", inst.name),
                ("Adres (ulica, kod pocztowy, miejscowość):", inst.address),
                ("Telefon:", inst.phone), ("E-mail:", inst.email))],
            colWidths=[170, 320], style=TableStyle(style),
        ),
        Spacer(1, 8),
        Paragraph("2. Uczestnicy", strong),
        Table(
            [[cell(h) for h in ("Lp.", "Imię i nazwisko", "Stanowisko / funkcja", "Telefon", "E-mail")]]
            + [[cell(f"{i}."), cell(p.full_name), cell(p.position), cell(p.phone), cell(p.email)]
               for i, p in enumerate(v.participants, 1)],
            colWidths=[24, 142, 110, 80, 134], style=TableStyle(style), repeatRows=1,
        ),
        Spacer(1, 8),
        Paragraph("3. Udział w dyskusjach warsztatowych (proszę zaznaczyć):", strong),
        *(Paragraph(f"{'☒' if k in v.workshops else '☐'} {k} – {t}", body) for k, t in WORKSHOPS.items()),
        Spacer(1, 6),
        Paragraph(f"4. Uwagi (np. specjalne potrzeby, dieta): {v.remarks or ''}", body),
        Spacer(1, 6),
        Paragraph("5. Zgody", strong),
        *(Paragraph(f"{'☒' if getattr(v.consents, k) else '☐'} {t}", body) for k, t in CONSENT_TEXTS.items()),
        Spacer(1, 10),
        Paragraph(f"Miejscowość, data: {v.place_date or ''}", body),
    ]  # fmt: skip
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4, invariant=True).build(flow)
    return out.getvalue()


# --- the cases ----------------------------------------------------------------------


def _word_docs() -> list[tuple[str, bytes, FormData]]:
    from tests.forms.test_variants import Copy

    docs: list[tuple[str, bytes, FormData]] = []
    for seed, people, style in [
        (1, 1, "table"), (2, 3, "table"), (3, 4, "controls"), (4, 6, "table"), (5, 8, "table"),
        (6, 12, "table"), (7, 10, "controls"), (8, 2, "controls"),
    ]:  # fmt: skip
        v = values(seed, people)
        data = make_docx(OPOLE, v, style=style, rows=max(3, people))  # type: ignore[arg-type]
        docs.append((f"word/make_docx-{style}/{people}p/s{seed}", data, expected(v)))
    for seed, people, layout in [(11, 2, "table"), (12, 5, "table"), (13, 3, "text"), (14, 9, "table")]:
        v = values(seed, people)
        copy = Copy(
            institution=v.institution, people=tuple(v.participants), layout=layout,  # type: ignore[arg-type]
            ticked="".join(sorted(v.workshops)), remarks=v.remarks,
            consents=(v.consents.data_processing, v.consents.newsletter), signed=v.place_date or "",
        )  # fmt: skip
        docs.append((f"word/copy-{layout}/{people}p/s{seed}", copy.docx(), expected(v)))
    return docs


def _blank(people: int) -> FilledValues:
    """No values, but room for ``people`` rows."""
    return FilledValues(Institution(), [Participant()] * people, set(), None, Consents(), None)


def cases(*, ocr: bool = False) -> Iterator[GenCase]:
    """Every generated copy, bucketed by producer (see the module docstring); ``ocr``
    adds the copies whose text layer is unreadable (read by OCR: slow)."""
    docs = _word_docs()
    words = to_pdf([d for _, d, _ in docs])
    for (label, _, want), pdf in zip(docs, words, strict=True):
        if pdf is not None:
            yield GenCase(label, "pdf-word", pdf, want, "zgloszenie.pdf")
    for via in ("odt", "doc"):
        chosen = docs[::3] if via == "odt" else docs[1::3]
        for (label, _, want), pdf in zip(chosen, to_pdf([d for _, d, _ in chosen], via=via), strict=True):
            if pdf is not None:
                yield GenCase(f"{via}/{label}", "pdf-office", pdf, want, "zgloszenie.pdf")
    yield from _distilled(docs, words, ocr)
    for seed, people, style, turn in DRAWN:
        v = values(seed, people)
        if style.type1:
            v = ascii_values(v)
        data = drawn_form(OPOLE, v, style)
        label = f"drawn/{style.rules}/{people}p/s{seed}" + (f"/rotate{turn}" if turn else "")
        yield GenCase(label, "pdf-drawn", rotated(data, turn) if turn else data, expected(v), "zgloszenie.pdf")
    for seed, people, grid in [(21, 2, True), (22, 5, True), (23, 11, True), (24, 3, False)]:
        v = values(seed, people)
        yield GenCase(f"reportlab/{'grid' if grid else 'plain'}/{people}p/s{seed}", "pdf-reportlab",
                      reportlab_pdf(OPOLE, v, grid=grid), expected(v), "zgloszenie.pdf")  # fmt: skip
    for seed, people in [(31, 1), (32, 4), (33, 8), (34, 12)]:
        v = values(seed, people)
        fillable = make_pdf(OPOLE, v)
        yield GenCase(f"flattened/pdfium/{people}p/s{seed}", "pdf-flattened", flatten(fillable), expected(v),
                      "zgloszenie.pdf")  # fmt: skip
        yield GenCase(f"flattened/drawn/{people}p/s{seed}", "pdf-flattened", drawn_over(make_pdf(OPOLE, _blank(len(v.participants))), v),
                      expected(v), "zgloszenie.pdf")  # fmt: skip
        yield GenCase(f"fillable/{people}p/s{seed}", "pdf-fillable", fillable, expected(v), "zgloszenie.pdf")


def _distilled(docs: list[tuple[str, bytes, FormData]], words: list[bytes | None], ocr: bool) -> Iterator[GenCase]:
    """``pdf-ghostscript``: Word-printed and canvas-drawn copies run through Ghostscript
    (empty without ``gs``). ``pdf-ghostscript-ocr`` (only with ``ocr``): reportlab's
    TrueType subsets (the fillable form, flattened or not) come out of Ghostscript
    10.0 without their ToUnicode maps, so the text layer is glyph codes and the
    reader falls back to OCR (seconds a file)."""
    if shutil.which("gs") is None and not any(_cache_dir().glob("gs-*.pdf")):
        return
    sources: list[tuple[str, str, bytes | None, FormData]] = [
        ("pdf-ghostscript", label, pdf, want) for (label, _, want), pdf in zip(docs, words, strict=True)
    ]
    for seed, people, style in [(46, 3, Style(type1=True)), (47, 8, Style(type1=True, rules="rows", split="glyphs", row_gap=20))]:
        v = ascii_values(values(seed, people))
        sources.append(("pdf-ghostscript", f"drawn/type1/{people}p/s{seed}", drawn_form(OPOLE, v, style), expected(v)))
    if ocr:
        for seed, people, grid in [(41, 3, True), (43, 2, False)]:
            v = values(seed, people)
            sources.append(("pdf-ghostscript-ocr", f"reportlab/{'grid' if grid else 'plain'}/{people}p/s{seed}",
                            reportlab_pdf(OPOLE, v, grid=grid), expected(v)))  # fmt: skip
        for seed, people in [(44, 2), (45, 9)]:
            v = values(seed, people)
            sources.append(("pdf-ghostscript-ocr", f"flattened/pdfium/{people}p/s{seed}", flatten(make_pdf(OPOLE, v)),
                            expected(v)))  # fmt: skip
            sources.append(("pdf-ghostscript-ocr", f"flattened/drawn/{people}p/s{seed}",
                            drawn_over(make_pdf(OPOLE, _blank(people)), v), expected(v)))  # fmt: skip
    for kind, label, pdf, want in sources:
        out = distill(pdf) if pdf is not None else None
        if out is not None:
            yield GenCase(f"gs/{label}", kind, out, want, "zgloszenie.pdf")


# (seed, people, style, /Rotate): every way of drawing a table, 1-12 people.
DRAWN: list[tuple[int, int, Style, int]] = [
    (61, 4, Style(), 0),
    (62, 7, Style(rules="rows"), 0),
    (63, 12, Style(rules="rows", row_gap=25, repeat_header=False), 0),
    (64, 10, Style(row_gap=25), 0),
    (65, 11, Style(row_gap=25, repeat_header=False, align="center"), 0),
    (66, 3, Style(type1=True), 0),
    (67, 6, Style(type1=True, rules="rows", split="glyphs"), 0),
    (68, 5, Style(value_bold=True, value_size=11), 0),
    (69, 2, Style(align="right", ticks="typed"), 0),
    (70, 8, Style(split="words", align="center", value_size=8), 0),
    (71, 9, Style(split="glyphs", value_bold=True, row_gap=20), 0),
    (72, 1, Style(), 90),
    (73, 5, Style(rules="rows", align="right"), 270),
    (74, 12, Style(row_gap=25), 90),
]


def main() -> None:
    """Print accuracy per bucket: ``.venv/bin/python -m tests.forms.pdfgen [-v] [--ocr]``."""
    import sys

    from mailbot.forms import parse_bytes
    from mailbot.forms.model import EventRef
    from tests.forms.scoring import Score, score

    events = [EventRef("opole-2016", TITLE, "Opole", dt.date(2016, 4, 18))]
    totals: dict[str, Score] = {}
    for case in cases(ocr="--ocr" in sys.argv):
        got = parse_bytes(case.data, case.filename, events)
        totals.setdefault(case.kind, Score()).add(score(got, case.expected, case.label))
    for kind, s in totals.items():
        print(f"{kind:<14} files {s.files:>3}  fields right {100 * s.accuracy:5.1f}%  "
              f"right or caught {100 * s.right_or_caught:5.1f}%  exact files {100 * s.exact_files / s.files:5.1f}%")  # fmt: skip
        if "-v" in sys.argv:
            for miss in s.misses:
                print("   ", miss)


if __name__ == "__main__":
    main()
