"""Scanned pages as pixels: safe opening, ruling lines, deskew and tick boxes.

Everything here works on 8-bit grayscale Pillow images and uses only Pillow's C
operations (point tables, box resizes, crops) plus small Python loops over reduced
data, so a page costs tens of milliseconds and no numpy is needed.

Untrusted images are sized from their header before any pixel is decoded: a 30,000 ×
30,000 PNG is refused in microseconds, not after allocating 900 MB. PDF pages are
rendered at a scale we choose (A4 at 300 dpi, the resolution Tesseract reads best),
after checking the images embedded in them the same way.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import io
import itertools
import math
import re
import statistics
import struct
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image, ImageDraw, ImageFilter, ImageMath, ImageOps, UnidentifiedImageError

from mailbot.errors import FormError
from mailbot.forms.model import Limits

__all__ = [
    "TARGET_DPI",
    "Box",
    "CleanPage",
    "Rule",
    "Tick",
    "clean_page",
    "find_box",
    "find_rules",
    "ink_mask",
    "open_image",
    "otsu_threshold",
    "read_tick",
    "render_pdf_pages",
    "text_skew",
]

TARGET_DPI = 300
"""Pages are normalised to this resolution (as if A4): Tesseract's sweet spot for
9–11 pt print; 200–250 dpi read the example's e-mails worse, 300 costs ~1 s a page."""

_A4_LONG_INCH = 297 / 25.4
_TARGET_LONG = round(_A4_LONG_INCH * TARGET_DPI)  # 3508 px
_MAX_UPSCALE = 2.5
_JPEG_DRAFT = {"JPEG", "MPO"}

# Rules: a page is cut into strips this many px wide (at 300 dpi); a strip row that is
# ≥ 85% ink is line-like, and a line is a chain of line-like strip rows at least
# _H_MIN_STRIPS (horizontal) / _V_MIN_STRIPS (vertical) long. Bold 14 pt capitals
# form chains of up to 8 strips at lower coverage, table borders run across the page.
_STRIP = 32
_LINE_COVER = 217
_H_MIN_STRIPS = 10
_V_MIN_STRIPS = 4
_SKEW_MIN_STRIPS = 20
_MAX_SKEW_DEG = 5.0
_MIN_SKEW_DEG = 0.1


# --- opening ------------------------------------------------------------------------


def open_image(data: bytes, limits: Limits) -> Iterator[Image.Image]:
    """Decode a JPG/PNG/TIFF/GIF/BMP into grayscale pages normalised for OCR.

    Pages are decoded one at a time as the caller asks for them (a 50-page TIFF is
    never all in memory). Raises ``FormError`` for damaged files, too many pages and
    too many pixels; the pixel count is read from the header, so a decompression
    bomb is never decoded.
    """
    # A second line of defence behind the header check: Pillow refuses to open an
    # image above twice this (and warns above it, but then we refuse it ourselves).
    Image.MAX_IMAGE_PIXELS = limits.max_image_pixels
    try:
        img = Image.open(io.BytesIO(data))
        frames = int(getattr(img, "n_frames", 1) or 1)
        if frames > limits.max_pdf_pages:
            raise FormError(f"image has {frames} pages (limit {limits.max_pdf_pages})")
        for index in range(frames):
            if index:
                img.seek(index)
            _check_pixels(*img.size, limits)
            yield _normalise(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow's check ran first (the warning, between the limit and twice it, is an
        # error where warnings are errors): say it in our words.
        found = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{found.group(1)} pixels" if found else str(e)
        raise FormError(
            f"image too large: {size} (limit {limits.max_image_pixels})"
        ) from e
    except UnidentifiedImageError as e:
        raise FormError("damaged or unsupported image") from e
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
        # struct.error escapes Pillow on some truncated headers.
        raise FormError(f"damaged image: {e}") from e


def _check_pixels(width: int, height: int, limits: Limits) -> None:
    if width <= 0 or height <= 0:
        raise FormError("damaged image: empty")
    if width * height > limits.max_image_pixels:
        raise FormError(
            f"image too large: {width}×{height} = {width * height} pixels "
            f"(limit {limits.max_image_pixels})"
        )


def _normalise(img: Image.Image) -> Image.Image:
    """Grayscale, upright (EXIF), scaled so the page's long side is A4 at 300 dpi."""
    long_side = max(img.size)
    scale = _TARGET_LONG / long_side
    if img.format in _JPEG_DRAFT and scale < 0.5:
        # Let libjpeg decode at 1/2…1/8 size: a 20 Mpx phone photo costs a quarter.
        target = (math.ceil(img.width * scale), math.ceil(img.height * scale))
        img.draft("L", target)
    img.load()
    img = ImageOps.exif_transpose(img)
    gray = _to_gray(img)
    scale = min(_TARGET_LONG / max(gray.size), _MAX_UPSCALE)
    if not 0.85 <= scale <= 1.2:
        size = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
        gray = gray.resize(size, Image.Resampling.LANCZOS)
    return gray


def _to_gray(img: Image.Image) -> Image.Image:
    if img.mode == "L":
        return img.copy()
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        img = img.convert("I") if img.mode != "F" else img
        return img.point(lambda v: v * (1 / 256)).convert("L")
    if img.mode in ("RGBA", "LA", "PA") or (
        img.mode == "P" and "transparency" in img.info
    ):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("L")
    return img.convert("L")


def render_pdf_pages(
    data: bytes, limits: Limits, lock: AbstractContextManager[Any]
) -> Generator[Image.Image, None, None]:
    """Render a scanned PDF's pages to grayscale images, A4-normalised at 300 dpi.

    The page count and every page's embedded images are checked before anything is
    rendered; pages are rendered one at a time as the caller asks for them. ``lock``
    is the PDF reader's PDFium lock (PDFium is not thread-safe): it is held while
    PDFium works, never while the caller OCRs a page. Close the generator when done.
    """
    import pypdfium2 as pdfium

    with lock:
        try:
            doc = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as e:
            raise FormError(f"damaged PDF: {e}") from e
    try:
        with lock:
            count = len(doc)
            if count > limits.max_pdf_pages:
                raise FormError(f"PDF has {count} pages (limit {limits.max_pdf_pages})")
            for index in range(count):
                page = doc[index]
                try:
                    _check_embedded_images(page, limits)
                finally:
                    page.close()
        for index in range(count):
            with lock:
                page = doc[index]
                try:
                    width, height = page.get_size()
                    # Our own choice of scale: the page fits the pixel limit whatever
                    # its size in points (embedded bombs were refused above).
                    scale = min(
                        _TARGET_LONG / max(width, height, 1.0),
                        math.sqrt(limits.max_image_pixels / max(width * height, 1.0)),
                    )
                    bitmap = page.render(scale=scale, grayscale=True)
                    image = bitmap.to_pil().convert("L")
                finally:
                    page.close()
            yield image
    finally:
        with lock:
            doc.close()


def _check_embedded_images(page: Any, limits: Limits) -> None:
    """Refuse a page drawing an image bigger than the pixel limit (a bomb in a PDF)."""
    import pypdfium2.raw as pdfium_c

    stack: list[tuple[int, Callable[[int], Any], int]] = [
        (
            int(pdfium_c.FPDFPage_CountObjects(page.raw)),
            functools.partial(pdfium_c.FPDFPage_GetObject, page.raw),
            0,
        )
    ]
    width, height = ctypes.c_uint(), ctypes.c_uint()
    seen = 0
    while stack:
        count, get, depth = stack.pop()
        for i in range(min(count, 5000)):
            seen += 1
            if seen > 20_000:
                raise FormError("PDF page has too many objects")
            obj = get(i)
            kind = pdfium_c.FPDFPageObj_GetType(obj)
            if kind == pdfium_c.FPDF_PAGEOBJ_IMAGE:
                if pdfium_c.FPDFImageObj_GetImagePixelSize(
                    obj, ctypes.byref(width), ctypes.byref(height)
                ):
                    _check_pixels(max(width.value, 1), max(height.value, 1), limits)
            elif kind == pdfium_c.FPDF_PAGEOBJ_FORM and depth < 4:
                stack.append(
                    (
                        int(pdfium_c.FPDFFormObj_CountObjects(obj)),
                        functools.partial(pdfium_c.FPDFFormObj_GetObject, obj),
                        depth + 1,
                    )
                )


# --- ink, rules, deskew -------------------------------------------------------------


def otsu_threshold(gray: Image.Image) -> int:
    """The gray level separating ink from paper (Otsu on the histogram)."""
    hist = gray.histogram()[:256]
    total = sum(hist)
    if not total:
        return 128
    sum_all = sum(i * v for i, v in enumerate(hist))
    weight_b = 0
    sum_b = 0.0
    best, threshold = -1.0, 128
    for level in range(256):
        weight_b += hist[level]
        if not weight_b:
            continue
        weight_f = total - weight_b
        if not weight_f:
            break
        sum_b += level * hist[level]
        mean_b = sum_b / weight_b
        mean_f = (sum_all - sum_b) / weight_f
        between = weight_b * weight_f * (mean_b - mean_f) ** 2
        if between > best:
            best, threshold = between, level
    # A blank page has no bimodal histogram: keep faint paper texture out of the ink.
    return min(threshold, 200)


def ink_mask(gray: Image.Image, threshold: int) -> Image.Image:
    """255 where the page has ink (darker than ``threshold``), 0 on paper."""
    return gray.point([255 if v <= threshold else 0 for v in range(256)])


@dataclass(frozen=True, slots=True)
class Rule:
    """A ruling line: ``horizontal`` runs along x; ``cells`` are its (strip, lo, hi) bands
    (strip index along the line, pixel band across it)."""

    horizontal: bool
    start: int
    end: int
    cells: tuple[tuple[int, int, int], ...]

    @property
    def position(self) -> float:
        """The line's mean coordinate across it (y for horizontal rules, x for vertical)."""
        return statistics.fmean((lo + hi) / 2 for _, lo, hi in self.cells)

    def slope(self, strip: int) -> float:
        """Pixels across per pixel along (least squares over the strips)."""
        xs = [k * strip for k, _, _ in self.cells]
        ys = [(lo + hi) / 2 for _, lo, hi in self.cells]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        if not sxx:
            return 0.0
        return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def _strip_width(gray: Image.Image) -> int:
    return max(12, round(_STRIP * max(gray.size) / _TARGET_LONG))


def find_rules(ink: Image.Image, strip: int) -> list[Rule]:
    """Horizontal and vertical ruling lines (table borders, fill-in underlines)."""
    width, height = ink.size
    rules: list[Rule] = []
    if width >= strip:
        # Each output pixel is the mean ink of `strip` px along a row: one C resize.
        along_x = ink.resize((width // strip, height), Image.Resampling.BOX)
        data = along_x.transpose(Image.Transpose.TRANSPOSE).tobytes()
        profiles = [data[k * height : (k + 1) * height] for k in range(width // strip)]
        rules += _chains(profiles, strip, True, _H_MIN_STRIPS)
    if height >= strip:
        along_y = ink.resize((width, height // strip), Image.Resampling.BOX)
        data = along_y.tobytes()
        profiles = [data[k * width : (k + 1) * width] for k in range(height // strip)]
        rules += _chains(profiles, strip, False, _V_MIN_STRIPS)
    return rules


def _chains(
    profiles: list[bytes], strip: int, horizontal: bool, min_strips: int
) -> list[Rule]:
    """Link line-like bands of consecutive strips into rules (a tilted line drifts)."""
    active: list[list[tuple[int, int, int]]] = []
    done: list[list[tuple[int, int, int]]] = []
    for k, profile in enumerate(profiles):
        bands: list[tuple[int, int]] = []
        n = len(profile)
        pos = 0
        while pos < n:
            if profile[pos] >= _LINE_COVER:
                start = pos
                while pos < n and profile[pos] >= _LINE_COVER:
                    pos += 1
                bands.append((start, pos))
            else:
                pos += 1
        following: list[list[tuple[int, int, int]]] = []
        used: set[int] = set()
        for lo, hi in bands:
            for ci, chain in enumerate(active):
                if ci in used:
                    continue
                _, plo, phi = chain[-1]
                if lo <= phi + 1 and hi >= plo - 1:
                    chain.append((k, lo, hi))
                    used.add(ci)
                    following.append(chain)
                    break
            else:
                following.append([(k, lo, hi)])
        done.extend(c for ci, c in enumerate(active) if ci not in used)
        active = following
    done.extend(active)
    return [
        Rule(horizontal, c[0][0] * strip, (c[-1][0] + 1) * strip, tuple(c))
        for c in done
        if len(c) >= min_strips
    ]


def _skew_degrees(rules: list[Rule], strip: int) -> float:
    slopes = [
        r.slope(strip)
        for r in rules
        if r.horizontal and len(r.cells) >= _SKEW_MIN_STRIPS
    ]
    if not slopes:
        return 0.0
    angle = math.degrees(math.atan(statistics.median(slopes)))
    return angle if abs(angle) <= _MAX_SKEW_DEG else 0.0


# Text-line deskew: the ink reduced to ~600 px wide is turned by each candidate
# angle; text lines are sharpest (rows alternate ink/paper most) when level.
_TEXT_SKEW_WIDTH = 600
_TEXT_SKEW_STEP = 0.25


def text_skew(ink: Image.Image) -> float:
    """The angle (degrees, as ``Image.rotate`` takes it) that levels the text lines.

    For pages without long rules (running text). ~30 small rotations: ~50 ms a page.
    """
    scale = _TEXT_SKEW_WIDTH / max(ink.width, 1)
    if scale >= 1:
        small = ink
    else:
        small = ink.resize(
            (max(1, round(ink.width * scale)), max(1, round(ink.height * scale))),
            Image.Resampling.BOX,
        )

    def sharpness(angle: float) -> float:
        turned = small.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=0)
        rows = turned.resize((1, turned.height), Image.Resampling.BOX).tobytes()
        return float(sum((a - b) ** 2 for a, b in itertools.pairwise(rows)))

    steps = round(_MAX_SKEW_DEG / _TEXT_SKEW_STEP)
    angles = [k * _TEXT_SKEW_STEP for k in range(-steps, steps + 1)]
    scores = {a: sharpness(a) for a in angles}
    best = max(angles, key=lambda a: (scores[a], -abs(a)))
    if scores[best] <= scores[0.0] * 1.02:
        return 0.0  # no clear gain: leave the page as it is
    for a in (best - _TEXT_SKEW_STEP / 2, best + _TEXT_SKEW_STEP / 2):
        scores[a] = sharpness(a)
    return max(scores, key=lambda a: (scores[a], -abs(a)))


def _erase(
    gray: Image.Image, ink: Image.Image, rules: list[Rule], strip: int
) -> list[Rule]:
    """Paint rules white on ``gray`` and ``ink``: Tesseract drops or garbles text
    touching table borders ("77 259 41 30" in the example was lost), and stubs become
    "|" and "_" words. Returns the rules with their ends found to the pixel."""
    width, height = gray.size
    pixels = ink.load()
    assert pixels is not None
    draw_gray = ImageDraw.Draw(gray)
    draw_ink = ImageDraw.Draw(ink)
    exact: list[Rule] = []
    for rule in rules:
        ends: list[int] = []
        boxes: list[tuple[int, int, int, int]] = []
        for k, lo, hi in rule.cells:
            a, b = k * strip - 1, (k + 1) * strip
            boxes.append(
                (a, lo - 2, b, hi + 1) if rule.horizontal else (lo - 2, a, hi + 1, b)
            )
        # The rule's ends rarely fall on a strip boundary: follow the ink pixel by pixel.
        limit = width if rule.horizontal else height
        across = height if rule.horizontal else width
        for (k, lo, hi), step in ((rule.cells[0], -1), (rule.cells[-1], 1)):
            edge = k * strip - 1 if step < 0 else (k + 1) * strip
            pos = edge
            while 0 <= pos < limit and abs(pos - edge) < strip + 8:
                band = range(max(lo - 1, 0), min(hi + 1, across))
                if rule.horizontal:
                    inked = any(pixels[pos, q] for q in band)
                else:
                    inked = any(pixels[q, pos] for q in band)
                if not inked:
                    break
                pos += step
            ends.append(pos + 1 if step < 0 else pos)
            if pos != edge:
                a, b = sorted((edge, pos))
                boxes.append(
                    (a, lo - 2, b, hi + 1)
                    if rule.horizontal
                    else (lo - 2, a, hi + 1, b)
                )
        for box in boxes:
            draw_gray.rectangle(box, fill=255)
            draw_ink.rectangle(box, fill=0)
        exact.append(dataclasses.replace(rule, start=ends[0], end=ends[1]))
    return exact


@dataclass(slots=True)
class CleanPage:
    """A page ready for OCR: deskewed gray, its ink mask without rules, and the rules."""

    gray: Image.Image
    ink: Image.Image
    threshold: int
    rules: list[Rule]
    skew: float


# Paper flattening: the page reduced by this factor, then a max filter of this size
# (cells) takes the ink out, leaving the paper's own brightness (≈ 80 px at 300 dpi:
# wider than any stroke or text line, narrower than a shadow or a stain).
_PAPER_REDUCE = 16
_PAPER_WINDOW = 5
# Levels clipped at each end when the flattened page is stretched to full contrast.
_STRETCH_CUTOFF = 0.5


def flatten(gray: Image.Image) -> Image.Image:
    """The page on white paper at full contrast, whatever the light and the paper.

    A phone photo darkens towards one side, recycled or grey paper scans at 180–210,
    a coffee stain tints a patch, faint toner prints at 100: one global threshold
    then either loses strokes in the dark part or fills the light one, and the
    enlarged gray reread sees faint text. The paper's brightness is estimated at
    low resolution with the ink filtered out, divided out, and the levels stretched.
    ~0.15 s a page.
    """
    small = gray.reduce(_PAPER_REDUCE) if min(gray.size) >= 8 * _PAPER_REDUCE else gray
    paper = small.filter(ImageFilter.MaxFilter(_PAPER_WINDOW)).resize(
        gray.size, Image.Resampling.BILINEAR
    )
    # page / paper: light that falls off darkens ink and paper alike, so the ratio
    # is the print's own (paper → 255 everywhere, ink its share of it).
    flat = ImageMath.lambda_eval(
        lambda a: a["convert"](a["page"] * 255 / (a["paper"] + 1), "L"),
        page=gray,
        paper=paper,
    )
    assert isinstance(flat, Image.Image)
    return ImageOps.autocontrast(flat, cutoff=_STRETCH_CUTOFF)


def clean_page(gray: Image.Image) -> CleanPage:
    """Flatten the paper, find the rules, straighten the page by them, and erase
    them for OCR."""
    gray = flatten(gray)
    threshold = otsu_threshold(gray)
    strip = _strip_width(gray)
    ink = ink_mask(gray, threshold)
    rules = find_rules(ink, strip)
    skew = _skew_degrees(rules, strip)
    if not skew and not any(
        r.horizontal and len(r.cells) >= _SKEW_MIN_STRIPS for r in rules
    ):
        skew = text_skew(ink)  # running text: no long rule to go by
    if abs(skew) >= _MIN_SKEW_DEG:
        gray = gray.rotate(
            skew, resample=Image.Resampling.BILINEAR, fillcolor=255, expand=False
        )
        ink = ink_mask(gray, threshold)
        rules = find_rules(ink, strip)
    rules = _erase(gray, ink, rules, strip)
    return CleanPage(gray, ink, threshold, rules, skew)


# --- tick boxes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Box:
    """A square frame found on the page (pixel box, inclusive of the frame)."""

    x0: int
    y0: int
    x1: int
    y1: int


TickState = Literal["ticked", "empty", "ambiguous", "none"]


@dataclass(frozen=True, slots=True)
class Tick:
    """What the pixels say of an option's box: its state, where it is, the ink share."""

    state: TickState
    box: Box | None
    density: float


# Ink share inside a box frame (its inner 60 %): an empty printed box reads 0–2 %, the
# example's hand-drawn crosses 31–35 %, a pen tick 20–30 %, a filled box most of it.
# Between is a dot, a speck or a faint partial mark that a person should look at.
_BOX_EMPTY = 0.04
_BOX_TICKED = 0.12
# Without a frame (a faint AcroForm box or none) the mark stands alone left of the text.
_MARK_EMPTY = 0.012
_MARK_TICKED = 0.035


def read_tick(
    ink: Image.Image,
    search: tuple[int, int, int, int],
    mark: tuple[int, int, int, int],
    text_height: float,
    *,
    before: int,
) -> Tick:
    """Read an option's tick box from the ink mask.

    ``search`` is where the box may be (left of and slightly into the option text,
    as OCR often fuses the box with the first letter); the box must start left of
    ``before`` (the option text's estimated start), so a letter is never taken for it.
    ``mark`` is the strip left of the text checked for a free-standing mark when no
    frame is found. ``text_height`` (the line's word height) bounds the frame's size.
    """
    box = find_box(ink, search, text_height)
    if box is not None and box.x0 > before - 0.2 * text_height:
        box = None
    if box is not None:
        size = min(box.x1 - box.x0, box.y1 - box.y0)
        inset = max(2, round(size * 0.2))
        inner = (box.x0 + inset, box.y0 + inset, box.x1 - inset + 1, box.y1 - inset + 1)
        density = _density(ink, inner)
        if density < _BOX_EMPTY:
            return Tick("empty", box, density)
        if density >= _BOX_TICKED:
            return Tick("ticked", box, density)
        return Tick("ambiguous", box, density)
    density = _density(ink, mark)
    if density < _MARK_EMPTY:
        return Tick("none", None, density)
    if density >= _MARK_TICKED:
        return Tick("ticked", None, density)
    return Tick("ambiguous", None, density)


def _density(ink: Image.Image, box: tuple[int, int, int, int]) -> float:
    x0, y0, x1, y1 = _clip(box, ink.size)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    hist = ink.crop((x0, y0, x1, y1)).histogram()
    total = sum(hist[:256])
    return hist[255] / total if total else 0.0


def _clip(
    box: tuple[int, int, int, int], size: tuple[int, int]
) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return max(0, x0), max(0, y0), min(size[0], x1), min(size[1], y1)


def find_box(
    ink: Image.Image, region: tuple[int, int, int, int], text_height: float
) -> Box | None:
    """The leftmost square frame in ``region`` whose four straight edges are ≥ 85 % ink.

    Edges are searched among columns/rows holding a long enough ink run, so letters
    (no four straight sides) and hand-drawn crosses (they add ink, never remove a
    frame) do not fool it.
    """
    x0, y0, x1, y1 = _clip(region, ink.size)
    w, h = x1 - x0, y1 - y0
    if w < 6 or h < 6:
        return None
    smin = max(6, round(text_height * 0.4))
    smax = max(smin + 2, round(text_height * 1.7))
    data = ink.crop((x0, y0, x1, y1)).tobytes()
    rows = [data[r * w : (r + 1) * w] for r in range(h)]
    cols = [bytes(rows[r][c] for r in range(h)) for c in range(w)]
    need = round(smin * 0.7)
    col_cand = [c for c in range(w) if _longest_run(cols[c]) >= need]
    row_cand = [r for r in range(h) if _longest_run(rows[r]) >= need]
    if len(col_cand) < 2 or len(row_cand) < 2:
        return None
    col_groups = _groups(col_cand)
    row_groups = _groups(row_cand)
    best: tuple[int, int, Box] | None = None
    for li, left in enumerate(col_groups):
        for right in col_groups[li + 1 :]:
            size = right[0] - left[-1]
            if size < smin - 2:
                continue
            if size > smax:
                break
            for ti, top in enumerate(row_groups):
                for bottom in row_groups[ti + 1 :]:
                    tall = bottom[0] - top[-1]
                    if tall > size * 1.3 + 2:
                        break
                    if tall < size * 0.75 - 2:
                        continue
                    if not _frame(rows, cols, left, right, top, bottom):
                        continue
                    box = Box(
                        x0 + left[0], y0 + top[0], x0 + right[-1], y0 + bottom[-1]
                    )
                    key = (box.x0, -size)
                    if best is None or key < best[:2]:
                        best = (key[0], key[1], box)
    return best[2] if best is not None else None


def _longest_run(line: bytes) -> int:
    best = run = 0
    for v in line:
        if v:
            run += 1
            best = max(best, run)
        else:
            run = 0
    return best


def _groups(indices: list[int]) -> list[list[int]]:
    """Adjacent indices grouped (a 3 px thick frame edge is one edge)."""
    groups: list[list[int]] = []
    for i in indices:
        if groups and i - groups[-1][-1] <= 1:
            groups[-1].append(i)
        else:
            groups.append([i])
    return [g for g in groups if len(g) <= 8]


def _frame(
    rows: list[bytes],
    cols: list[bytes],
    left: list[int],
    right: list[int],
    top: list[int],
    bottom: list[int],
) -> bool:
    """Whether the four edges are (nearly) continuous ink between the corners."""
    ya, yb = top[0], bottom[-1] + 1
    xa, xb = left[0], right[-1] + 1

    def covered(lines: list[bytes], group: list[int], a: int, b: int) -> bool:
        # Two adjacent columns (rows) at most: the curved side of a "B" or "D" is
        # covered by a wide group of columns, a straight frame edge by one or two.
        need = 0.85 * (b - a)
        pairs = [group[i : i + 2] for i in range(max(len(group) - 1, 1))]
        return any(
            sum(1 for p in range(a, b) if any(lines[g][p] for g in pair)) >= need
            for pair in pairs
        )

    return (
        covered(cols, left, ya, yb)
        and covered(cols, right, ya, yb)
        and covered(rows, top, xa, xb)
        and covered(rows, bottom, xa, xb)
    )
