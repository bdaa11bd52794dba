"""Scans of filled-in forms, generated, with what a perfect reader returns for each.

A real scan is a printed form: here the project's own .docx layouts (the organisers'
table form, its content-control copy, a running-text retyping) are printed to PDF by
LibreOffice, and the fillable PDF (``make_pdf``) is printed with its boxed values, then
rendered by PDFium at scanner resolutions and spoiled like a cheap scanner does:
rotated a quarter or half turn, tilted, speckled, blurred, JPEG-compressed. Each
``GenCase`` carries the exact ``FormData`` the values make (phones E.164, e-mails
normalised), so ``scoring.score`` judges a reading field by field.

Run ``.venv/bin/python -m tests.forms.scangen`` for per-kind accuracy and OCR time.
LibreOffice conversions are cached by content hash under the temp directory (a first
run converts ~10 files in one ``soffice`` call, ~15 s).
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from mailbot.forms.blank import FilledValues, make_docx, make_pdf
from mailbot.forms.model import Consents, FormData, Institution, Participant
from mailbot.forms.normalize import normalize_email, normalize_phone

from .cycle import OPOLE
from .scoring import GenCase

__all__ = ["KINDS", "SETS", "GenCase", "cases", "docx_to_pdf", "expected_for", "have_soffice", "render"]

KINDS = (
    "scan-150dpi",
    "scan-200dpi",
    "scan-300dpi",
    "scan-tilt2",
    "scan-rot90",
    "scan-rot180",
    "scan-fillable",
    "scan-running-text",
    # How real scanners and people differ from the above:
    "scan-gray",  # grey paper, faint toner: low contrast
    "scan-fax",  # 1-bit black and white TIFF (Group 4), as a fax or "B&W" scan
    "scan-photo",  # a phone photo: mild perspective, uneven light, desk showing
    "scan-stamp",  # a stamp and a signature across the place/date and consent lines
    "scan-coffee",  # a coffee ring over the page
    "scan-jpeg40",  # JPEG at quality 40
    "scan-2page",  # nine people: the participants table breaks onto page 2
    "scan-2page-flip",  # the same, page 1 upside down in the PDF, page 2 upright
)

# --- realistic values ---------------------------------------------------------------


def _p(name: str, position: str, phone: str, email: str) -> Participant:
    return Participant(name, position, phone, email)


SETS: list[FilledValues] = [
    FilledValues(
        Institution(
            "Starostwo Powiatowe w Opolu",
            "ul. 1 Maja 29, 45-068 Opole",
            "77 541 51 00",
            "starostwo@powiat.opole.pl",
        ),
        [
            _p("Małgorzata Kwiatkowska", "Naczelnik Wydziału Rozwoju", "601 234 567", "m.kwiatkowska@powiat.opole.pl"),
            _p("Łukasz Żak-Wiśniewski", "Inspektor", "77 541 51 23", "l.zak@powiat.opole.pl"),
        ],
        {"A"},
        "dieta wegetariańska",
        Consents(True, False),
        "Opole, 11.04.2016",
    ),
    FilledValues(
        Institution("Urząd Gminy Łubniany", "ul. Opolska 104, 46-024 Łubniany", "77 421 10 00", "ug@lubniany.pl"),
        [_p("Michał Świątek", "Sekretarz Gminy", "605 111 222", "m.swiatek@lubniany.pl")],
        {"B"},
        None,
        Consents(True, True),
        "Łubniany, 8.04.2016",
    ),
    FilledValues(
        Institution(
            "Urząd Miejski w Głuchołazach",
            "ul. Rynek 15, 48-340 Głuchołazy",
            "(77) 408 85 20",
            "sekretariat@glucholazy.pl",
        ),
        [
            _p("Jolanta Ślęzak-Bąk", "Kierownik Referatu Promocji", "606 700 800", "j.slezak@glucholazy.pl"),
            _p("Grzegorz Łęcki", "Informatyk", "77 408 85 31", "g.lecki@glucholazy.pl"),
            _p("Żaneta Kołodziej", "Podinspektor ds. funduszy UE", "512 345 678", "z.kolodziej@glucholazy.pl"),
        ],
        {"A", "B"},
        "parking dla 1 samochodu",
        Consents(True, False),
        "Głuchołazy, 12.04.2016",
    ),
    FilledValues(
        Institution("Urząd Gminy i Miasta Dobrodzień", "ul. Piastowska 1, 46-380 Dobrodzień", "34 358 00 00", "info@dobrodzien.pl"),
        [
            _p("Izabela Czyż", "Skarbnik", "604 321 987", "i.czyz@dobrodzien.pl"),
            _p("Cezary Łoś", "Zastępca Burmistrza", "34 358 00 12", "c.los@dobrodzien.pl"),
        ],
        set(),
        "dieta bezglutenowa",
        Consents(True, False),
        "Dobrodzień, 7.04.2016",
    ),
    # 4: a whole office (the 2-page kinds break its table across two pages).
    FilledValues(
        Institution("Urząd Miasta Opola", "Rynek-Ratusz, 45-015 Opole", "77 451 18 00", "sekretariat@um.opole.pl"),
        [
            _p("Anna Grabowska", "Dyrektor Wydziału Strategii", "77 451 18 10", "a.grabowska@um.opole.pl"),
            _p("Piotr Wójcik", "Zastępca Dyrektora", "77 451 18 11", "p.wojcik@um.opole.pl"),
            _p("Katarzyna Dąbrowska", "Kierownik Referatu", "601 100 200", "k.dabrowska@um.opole.pl"),
            _p("Tomasz Zieliński", "Główny Specjalista", "77 451 18 13", "t.zielinski@um.opole.pl"),
            _p("Ewa Szymańska", "Inspektor", "602 300 400", "e.szymanska@um.opole.pl"),
            _p("Marek Woźniak", "Podinspektor", "77 451 18 15", "m.wozniak@um.opole.pl"),
            _p("Agnieszka Kozłowska", "Referent", "603 500 600", "a.kozlowska@um.opole.pl"),
            _p("Paweł Jankowski", "Radca Prawny", "77 451 18 17", "p.jankowski@um.opole.pl"),
            _p("Monika Mazur", "Sekretarz Miasta", "604 700 800", "m.mazur@um.opole.pl"),
        ],
        {"B"},
        "dwie osoby na wózku",
        Consents(True, True),
        "Opole, 13.04.2016",
    ),
]
STANDARD = (0, 1, 2, 3)
"""The one-page value sets; ``SETS[4]`` fills two pages."""


def expected_for(values: FilledValues, event: str | None = "opole-2016") -> FormData:
    """What the contract makes of ``values``: phones E.164, e-mails normalised."""

    def phone(v: str | None) -> str | None:
        return normalize_phone(v)[0]

    def email(v: str | None) -> str | None:
        return normalize_email(v)[0]

    inst = values.institution
    return FormData(
        file="",
        status="ok",
        format="image",
        method="ocr",
        event=event,
        institution=Institution(inst.name, inst.address, phone(inst.phone), email(inst.email)),
        participants=[
            Participant(p.full_name, p.position, phone(p.phone), email(p.email)) for p in values.participants
        ],
        workshops=sorted(values.workshops),
        remarks=values.remarks,
        consents=Consents(values.consents.data_processing, values.consents.newsletter),
        problems=[],
    )


# --- sources: printed forms as PDF ----------------------------------------------------


def have_soffice() -> bool:
    return shutil.which("soffice") is not None


_CACHE = Path(tempfile.gettempdir()) / "mailbot-scangen"


def docx_to_pdf(sources: Sequence[bytes]) -> list[bytes]:
    """Print .docx files to PDF with LibreOffice; cached by content hash, one call for all."""
    _CACHE.mkdir(exist_ok=True)
    keys = [hashlib.sha256(s).hexdigest()[:24] for s in sources]
    missing = {k: s for k, s in zip(keys, sources, strict=True) if not (_CACHE / f"{k}.pdf").exists()}
    if missing:
        with tempfile.TemporaryDirectory(prefix="scangen-") as tmp:
            work = Path(tmp)
            for key, data in missing.items():
                (work / f"{key}.docx").write_bytes(data)
            profile = work / "profile"
            subprocess.run(
                [
                    "soffice",
                    f"-env:UserInstallation=file://{profile}",
                    "--headless",
                    "--convert-to",
                    "pdf",
                    "--outdir",
                    str(work),
                    *(str(work / f"{k}.docx") for k in missing),
                ],
                check=True,
                capture_output=True,
                timeout=240,
            )
            for key in missing:
                shutil.copyfile(work / f"{key}.pdf", _CACHE / f"{key}.pdf")
    return [(_CACHE / f"{k}.pdf").read_bytes() for k in keys]


def running_text_docx(values: FilledValues) -> bytes:
    """The form retyped as running text: "Label: value" lines, one block per person."""
    from .test_variants import Copy, heading

    from mailbot.forms.blank import header_line

    people = list(values.participants)
    return Copy(
        header=heading(header_line(OPOLE)),
        layout="text",
        institution=values.institution,
        people=people,
        ticked="".join(sorted(values.workshops)),
        remarks=values.remarks,
        consents=(values.consents.data_processing, values.consents.newsletter),
        signed=values.place_date or "",
    ).docx()


# --- rendering and spoiling -------------------------------------------------------------


def render(pdf: bytes, dpi: int, *, forms: bool = False) -> Image.Image:
    """The first page as gray pixels, as a printer and scanner at ``dpi`` make it."""
    return render_pages(pdf, dpi, forms=forms)[0]


def render_pages(pdf: bytes, dpi: int, *, forms: bool = False) -> list[Image.Image]:
    """Every page as gray pixels, with where "Podpis" is on the first (for the stamp)."""
    doc = pdfium.PdfDocument(pdf)
    if forms:
        doc.init_forms()
    return [
        page.render(scale=dpi / 72, grayscale=True, may_draw_forms=forms).to_pil().convert("L")
        for page in doc
    ]


def find_text(pdf: bytes, text: str, dpi: int) -> tuple[int, int] | None:
    """Pixel (x, y) of the first ``text`` on page 1 (top left of it), if drawn as text."""
    doc = pdfium.PdfDocument(pdf)
    page = doc[0]
    found = page.get_textpage().search(text).get_next()
    if found is None:
        return None
    index, _ = found
    left, _, _, top = page.get_textpage().get_charbox(index)
    return round(left * dpi / 72), round((page.get_height() - top) * dpi / 72)


@dataclass(frozen=True)
class Spoil:
    """What the scanner (and the person, and their desk) does to a page."""

    rotate: int = 0  # quarter turns, counter-clockwise
    tilt: float = 0.0
    noise: float = 0.0
    blur: float = 0.0
    contrast: tuple[int, int] | None = None  # (ink, paper) gray levels
    photo: bool = False
    stamp: bool = False
    coffee: bool = False

    def apply(
        self, page: Image.Image, rng: random.Random, anchor: tuple[int, int] | None = None
    ) -> Image.Image:
        if self.stamp:
            page = _stamp(page, anchor, rng)
        if self.coffee:
            page = _coffee(page, rng)
        if self.photo:
            page = _photo(page, rng)
        if self.contrast:
            ink, paper = self.contrast
            page = page.point([round(ink + v * (paper - ink) / 255) for v in range(256)])
        if self.tilt:
            page = page.rotate(self.tilt, Image.Resampling.BICUBIC, fillcolor=255, expand=True)
        if self.rotate:
            page = page.rotate(90 * self.rotate, expand=True)
        if self.blur:
            page = page.filter(ImageFilter.GaussianBlur(self.blur))
        if self.noise:
            # Seeded speckle (Image.effect_noise uses C's rand(): not reproducible).
            speckle = Image.frombytes("L", page.size, rng.randbytes(page.width * page.height))
            page = Image.blend(page, speckle, self.noise)
        return page


def split_table(page: Image.Image, after: int = 6) -> list[Image.Image]:
    """The page as two, broken at the ruling line under the table's ``after``-th row
    (the header's is the first rule): page 2 carries on with the next row, as Word
    breaks a long table without repeating its header."""
    width = page.width
    dark = [
        y
        for y in range(page.height)
        if page.crop((0, y, width, y + 1)).histogram()[:128].count(0) < 128
        and sum(page.crop((0, y, width, y + 1)).histogram()[:128]) > 0.6 * width
    ]
    rules = [y for i, y in enumerate(dark) if i == 0 or y - dark[i - 1] > 3]
    # The institution table's five rules come first, then the participants'.
    cut = rules[5 + after] + 2
    first = Image.new("L", page.size, 255)
    first.paste(page.crop((0, 0, width, cut)), (0, 0))
    second = Image.new("L", page.size, 255)
    margin = page.height // 12
    second.paste(page.crop((0, cut - 4, width, page.height - margin)), (0, margin))
    return [first, second]


def _stamp(page: Image.Image, anchor: tuple[int, int] | None, rng: random.Random) -> Image.Image:
    """An office stamp (a ring of text, mid-gray as blue ink scans) and a signature
    scribble, over "Podpis" and the lines around it."""
    scale = page.width / 1654  # sizes below are for A4 at 200 dpi
    x, y = anchor if anchor is not None else (round(page.width * 0.55), round(page.height * 0.8))
    layer = Image.new("L", page.size, 255)
    draw = ImageDraw.Draw(layer)
    r = round(120 * scale)
    cx, cy = x + round(60 * scale), y - round(40 * scale)
    width = max(2, round(5 * scale))
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=110, width=width)
    draw.ellipse((cx - r + 3 * width, cy - r + 3 * width, cx + r - 3 * width, cy + r - 3 * width), outline=110, width=width)
    font = ImageFont.load_default(size=max(10, round(26 * scale)))
    draw.text((cx - round(95 * scale), cy - round(30 * scale)), "URZĄD GMINY", fill=110, font=font)
    draw.text((cx - round(80 * scale), cy + round(5 * scale)), "pieczęć", fill=110, font=font)
    # The signature: a quick scribble through the place/date line, left of the stamp.
    sx, sy = x - round(330 * scale), y + round(10 * scale)
    points = [
        (sx + i * round(12 * scale), sy + round(rng.uniform(-28, 28) * scale)) for i in range(28)
    ]
    draw.line(points, fill=40, width=max(2, round(3 * scale)), joint="curve")
    return ImageChops.darker(page, layer)


def _coffee(page: Image.Image, rng: random.Random) -> Image.Image:
    """A coffee ring: a brown (mid-gray) rim and a faint stain inside, mid-page."""
    w, h = page.size
    cx = round(w * rng.uniform(0.45, 0.65))
    cy = round(h * rng.uniform(0.35, 0.55))
    r = round(w * 0.11)
    stain = Image.new("L", page.size, 255)
    draw = ImageDraw.Draw(stain)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=228)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=170, width=max(3, w // 200))
    stain = stain.filter(ImageFilter.GaussianBlur(max(1, w // 600)))
    return ImageChops.multiply(page, stain)


def _photo(page: Image.Image, rng: random.Random) -> Image.Image:
    """A phone photo of the page on a desk: a mild trapezoid, light falling off to
    one side, a little blur."""
    w, h = page.size
    margin = round(0.04 * w)
    desk = Image.new("L", (w + 2 * margin, h + 2 * margin), 120)
    desk.paste(page, (margin, margin))

    def jitter() -> int:
        return round(rng.uniform(0.0, 0.025) * w)

    # The source corners (top left, bottom left, bottom right, top right) of the shot.
    quad = (
        jitter(), jitter(),
        jitter(), desk.height - jitter(),
        desk.width - jitter(), desk.height - jitter(),
        desk.width - jitter(), jitter(),
    )  # fmt: skip
    shot = desk.transform(desk.size, Image.Transform.QUAD, quad, Image.Resampling.BICUBIC, fillcolor=120)
    # Light falling off to the right: paper 255 on the left, 175 on the right edge.
    light = Image.linear_gradient("L").rotate(90).resize(shot.size)
    light = light.point([round(255 - v * 80 / 255) for v in range(256)])
    return ImageChops.multiply(shot, light).filter(ImageFilter.GaussianBlur(0.7))


def encode(page: Image.Image | list[Image.Image], fmt: str, dpi: int) -> tuple[bytes, str]:
    """(bytes, file name): PNG, JPEG (quality 70, or 40 for "jpg40"), a 1-bit Group 4
    TIFF ("tif1"), or an image-only PDF (one page per image)."""
    pages = page if isinstance(page, list) else [page]
    first = pages[0]
    out = io.BytesIO()
    if fmt in ("jpg", "jpg40"):
        first.save(out, "JPEG", quality=40 if fmt == "jpg40" else 70, dpi=(dpi, dpi))
        return out.getvalue(), "skan.jpg"
    if fmt == "png":
        first.save(out, "PNG", dpi=(dpi, dpi))
    elif fmt == "tif1":
        # A fax: thresholded, not dithered (text mode), Group 4 compressed.
        bilevel = [p.point([0 if v < 150 else 255 for v in range(256)]).convert("1") for p in pages]
        bilevel[0].save(
            out, "TIFF", compression="group4", dpi=(dpi, dpi), save_all=True, append_images=bilevel[1:]
        )
        return out.getvalue(), "skan.tif"
    else:
        first.save(out, "PDF", resolution=float(dpi), save_all=True, append_images=pages[1:])
    return out.getvalue(), f"skan.{fmt}"


# --- the cases ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Recipe:
    kind: str
    source: str  # "table", "controls", "running", "fillable"
    dpi: int
    spoil: Spoil
    fmt: str
    sets: tuple[int, ...] = STANDARD
    flip_first: bool = False  # page 1 scanned upside down, the rest upright
    split: bool = False  # a page break in the participants table (no header repeated)


RECIPES: list[_Recipe] = [
    _Recipe("scan-150dpi", "table", 150, Spoil(noise=0.05), "jpg"),
    _Recipe("scan-200dpi", "controls", 200, Spoil(noise=0.06, blur=0.4), "png"),
    _Recipe("scan-300dpi", "table", 300, Spoil(noise=0.05), "pdf"),
    _Recipe("scan-tilt2", "table", 200, Spoil(tilt=2.0, noise=0.05), "jpg"),
    _Recipe("scan-tilt2", "controls", 300, Spoil(tilt=-2.0, noise=0.05), "pdf"),
    _Recipe("scan-rot90", "table", 200, Spoil(rotate=1, noise=0.05), "png"),
    _Recipe("scan-rot90", "fillable", 300, Spoil(rotate=3, noise=0.04), "pdf"),
    _Recipe("scan-rot180", "table", 300, Spoil(rotate=2, noise=0.05), "jpg"),
    _Recipe("scan-fillable", "fillable", 300, Spoil(noise=0.04), "pdf"),
    _Recipe("scan-fillable", "fillable", 200, Spoil(tilt=1.0, noise=0.05), "jpg"),
    _Recipe("scan-running-text", "running", 300, Spoil(noise=0.05), "png"),
    _Recipe("scan-running-text", "running", 200, Spoil(tilt=-1.0, noise=0.05), "jpg"),
    _Recipe("scan-gray", "table", 300, Spoil(contrast=(95, 200), noise=0.04), "jpg"),
    _Recipe("scan-gray", "fillable", 200, Spoil(contrast=(120, 215), noise=0.04, blur=0.4), "png"),
    _Recipe("scan-fax", "table", 200, Spoil(tilt=0.7, noise=0.03), "tif1"),
    _Recipe("scan-fax", "controls", 200, Spoil(noise=0.03), "tif1"),
    _Recipe("scan-photo", "table", 200, Spoil(photo=True, noise=0.03), "jpg"),
    _Recipe("scan-stamp", "table", 300, Spoil(stamp=True, noise=0.04), "pdf"),
    _Recipe("scan-stamp", "running", 200, Spoil(stamp=True, noise=0.04), "jpg"),
    _Recipe("scan-coffee", "table", 200, Spoil(coffee=True, noise=0.04), "jpg"),
    _Recipe("scan-jpeg40", "controls", 200, Spoil(noise=0.04), "jpg40"),
    _Recipe("scan-2page", "table", 200, Spoil(noise=0.04), "pdf", sets=(4,), split=True),
    _Recipe("scan-2page", "table", 200, Spoil(noise=0.04), "tif1", sets=(4,), split=True),
    _Recipe("scan-2page-flip", "table", 300, Spoil(noise=0.04), "pdf", sets=(4,), split=True, flip_first=True),
]


def _source(kind: str, values: FilledValues) -> bytes:
    if kind == "table":
        return make_docx(OPOLE, values, style="table")
    if kind == "controls":
        return make_docx(OPOLE, values, style="controls")
    if kind == "running":
        return running_text_docx(values)
    return make_pdf(OPOLE, values)


def cases(
    kinds: Sequence[str] = KINDS,
    sets: Sequence[int] | None = None,
    seed: int = 2016,
    *,
    sources: Sequence[str] | None = None,
) -> Iterator[GenCase]:
    """Every recipe of ``kinds`` (printed from ``sources``: "table", "controls",
    "running", "fillable"; all by default) over the value ``sets`` (indices into
    ``SETS``). Each case's noise is seeded by its recipe and set: a case reads the
    same whichever others are generated with it."""
    chosen = [
        r for r in RECIPES if r.kind in kinds and (sources is None or r.source in sources)
    ]
    plan = [(r, i) for r in chosen for i in r.sets if sets is None or i in sets]
    docx_needed = {
        (r.source, i): _source(r.source, SETS[i]) for r, i in plan if r.source != "fillable"
    }
    pdfs = dict(zip(docx_needed, docx_to_pdf(list(docx_needed.values())), strict=True))
    for recipe, i in plan:
        rng = random.Random(f"{seed}/{RECIPES.index(recipe)}/{i}")
        values = SETS[i]
        pdf = make_pdf(OPOLE, values) if recipe.source == "fillable" else pdfs[(recipe.source, i)]
        pages = render_pages(pdf, recipe.dpi, forms=recipe.source == "fillable")
        if recipe.split:
            pages = split_table(pages[0]) + pages[1:]
        anchor = find_text(pdf, "Podpis", recipe.dpi) if recipe.spoil.stamp else None
        pages = [recipe.spoil.apply(pages[0], rng, anchor)] + [
            Spoil(noise=recipe.spoil.noise).apply(p, rng) for p in pages[1:]
        ]
        if recipe.flip_first:
            pages[0] = pages[0].rotate(180)
        data, name = encode(pages, recipe.fmt, recipe.dpi)
        label = f"{recipe.kind}/{recipe.source}/{recipe.dpi}dpi/{recipe.fmt}/set{i}"
        yield GenCase(label, recipe.kind, data, expected_for(values), name)


# --- the accuracy report -----------------------------------------------------------------


def _cpu() -> float:
    """CPU seconds of this process and its finished children (Tesseract runs)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _pages(case: GenCase) -> int:
    """How many pages a case's file has (time is reported per page)."""
    if case.filename.endswith(".pdf"):
        return len(pdfium.PdfDocument(case.data))
    return int(getattr(Image.open(io.BytesIO(case.data)), "n_frames", 1))


def main(argv: Sequence[str]) -> int:
    """Per-kind accuracy and OCR time: ``python -m tests.forms.scangen [kind…]``."""
    from mailbot.forms import parse_bytes

    from .cycle import EVENTS
    from .scoring import Score, flat_fields, score

    kinds = [a for a in argv if not a.startswith("-")] or list(KINDS)
    verbose = "-v" in argv
    per: dict[str, Score] = {}
    times: list[float] = []
    cpus: list[float] = []
    for case in cases(kinds):
        started, cpu = time.monotonic(), _cpu()
        got = parse_bytes(case.data, case.filename, EVENTS)
        pages = _pages(case)
        times.extend([(time.monotonic() - started) / pages] * pages)
        cpus.extend([(_cpu() - cpu) / pages] * pages)
        s = score(got, case.expected, case.label)
        per.setdefault(case.kind, Score()).add(s)
        if verbose:
            print(f"{case.label}: {s.right}/{s.fields} ({times[-1]:.1f} s/page)", file=sys.stderr)
            for miss in s.misses:
                print("   ", miss, file=sys.stderr)
            want, have = flat_fields(case.expected), flat_fields(got)
            for problem in got.problems:  # right values flagged: the cost of doubt
                if problem.code == "low_confidence" and have.get(problem.field) == want.get(problem.field):
                    print(f"    doubted but right: {problem.field} {have.get(problem.field)!r}", file=sys.stderr)
    total = Score()
    print(f"{'kind':20} {'files':>5} {'right':>7} {'r/caught':>8} {'exact':>6} {'doubted':>7}")
    for kind in kinds:
        found = per.get(kind)
        if found is None:
            continue
        total.add(found)
        print(
            f"{kind:20} {found.files:5} {found.accuracy:7.1%} {found.right_or_caught:8.1%} "
            f"{found.exact_files / found.files:6.0%} {found.doubt_rate:7.1%}"
        )
    print(
        f"{'all':20} {total.files:5} {total.accuracy:7.1%} {total.right_or_caught:8.1%} "
        f"{total.exact_files / max(total.files, 1):6.0%} {total.doubt_rate:7.1%}"
    )
    if times:
        times.sort()
        print(f"parse time per page ({len(times)} pages): median {times[len(times) // 2]:.2f} s, max {times[-1]:.2f} s")
        cpus.sort()
        print(f"CPU time per page: median {cpus[len(cpus) // 2]:.2f} s, max {cpus[-1]:.2f} s")
    for miss in total.misses:
        print("  miss:", miss)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
