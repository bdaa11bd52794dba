"""Read scanned pages with Tesseract into the same ``Document`` a PDF text layer gives.

OCR only turns pixels into positioned words (and tick boxes into ☒/☐): the words go
through the shared ``pdf_layout.layout`` (lines, cells, the participants table, label |
value rows), and the shared extractor reads the result. So a scan is read by exactly
the rules a typed form is, and OCR adds only what pixels need:

- table borders are found and erased first (Tesseract loses or garbles text touching
  them), and the page is deskewed by them, so rows line up;
- each workshop/consent option's box is measured from pixels (hand-drawn crosses are
  rarely recognised as glyphs); an unclear box is reported ``ambiguous``;
- e-mail and phone values get a few safe OCR repairs (``repair_values``, applied by
  the extractor to those fields only); poorly recognised values get ``low_confidence``.

Tesseract runs as a subprocess (``tesseract stdin stdout … tsv``) with a deadline and
``OMP_THREAD_LIMIT=1``: its OpenMP threads fight each other on a 2-core machine (4.8 s
wall instead of 1.4 s for the example page).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import itertools
import logging
import os
import re
import shutil
import statistics
import subprocess
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from mailbot.errors import FormError
from mailbot.forms import ocr_accents, ocr_junk, ocr_orient, ocr_unread, ocr_vote
from mailbot.forms.extract import Block, Document, Inline, Para, Table, tick_state
from mailbot.forms.image import (
    TARGET_DPI,
    CleanPage,
    clean_page,
    open_image,
    read_tick,
)
from mailbot.forms.labels import Vocabulary, _levenshtein
from mailbot.forms.model import Limits, Problem
from mailbot.forms.normalize import fold, normalize_email, normalize_phone
from mailbot.forms.pdf_layout import Chunk, layout

__all__ = [
    "INSTALL_HINT",
    "Word",
    "read_image",
    "read_pages",
    "repair_email",
    "repair_phone",
    "repair_values",
    "value_confidence",
]

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "OCR unavailable: {what}; ask the administrator to install the Debian packages "
    "tesseract-ocr tesseract-ocr-pol"
)

# Page segmentation 4 ("a single column of text of variable sizes") keeps a table
# row on one line; 3 (auto) split rows into blocks and lost cells, 6 and 11 were no
# better. LSTM only (--oem 1); no inverted-text retry (tessedit_do_invert=0): forms
# have no white-on-black text and the retry costs time on every doubtful word.
_PSM = "4"
_CONFIG = ("-c", "tessedit_do_invert=0")

# Words Tesseract makes of rule stubs and specks, never of form text.
_JUNK = re.compile(r"^[|¦‖_\[\]{}~^`'\"‚„,.:;]+$")
_TALL = 2.5  # × the page's median word height: signatures and scribbles
# Confidence (0–100) under which a name or position is flagged ``low_confidence``;
# low on purpose: Tesseract gives 0–40 to many correct but unusual words.
LOW_CONFIDENCE = 30.0


Reader = Callable[[Image.Image, int, str], list["Word"]]
"""Reads an image at a dpi with a Tesseract language: the second and third looks."""


@dataclass(frozen=True, slots=True)
class Word:
    """A recognised word with its pixel box (y down) and Tesseract's line key."""

    text: str
    conf: float
    x0: int
    y0: int
    x1: int
    y1: int
    line: tuple[int, int, int]

    @property
    def height(self) -> int:
        return self.y1 - self.y0


# --- entry points -------------------------------------------------------------------


def read_image(data: bytes, limits: Limits, vocab: Vocabulary) -> Document:
    """OCR a JPG/PNG/TIFF scan (all TIFF pages) into a ``Document`` (method ``ocr``)."""
    started = time.monotonic()
    return read_pages(open_image(data, limits), limits, vocab, started)


def read_pages(
    pages: Iterable[Image.Image],
    limits: Limits,
    vocab: Vocabulary,
    started: float | None = None,
) -> Document:
    """OCR grayscale pages (A4-normalised at 300 dpi) within ``limits.timeout_seconds``."""
    started = time.monotonic() if started is None else started
    # Opening the first page checks the file's limits (pixels, page count): a bomb is
    # refused as such even on a machine without Tesseract.
    pending = iter(pages)
    first = next(pending, None)
    languages = _languages()
    doc = Document(blocks=[], layout_tables=True, method="ocr")
    letters: set[str] = set()
    carry = _Carry()
    for page in itertools.chain(() if first is None else (first,), pending):
        remaining = limits.timeout_seconds - (time.monotonic() - started)
        if remaining <= 0:
            raise FormError(_timed_out(limits))
        clean, words = _read_upright(page, languages, limits, started)

        def again(image: Image.Image, dpi: int, language: str) -> list[Word]:
            left = limits.timeout_seconds - (time.monotonic() - started)
            if language not in languages.split("+"):
                return []  # no English model: the other readings decide
            return recognise(image, dpi, language, left, limits)

        letters |= _read_page(clean, words, vocab, doc, again, carry)
    consents = {k.partition(":")[2] for k in letters if k.startswith("consent:")}
    letters -= {f"consent:{k}" for k in consents}
    if consents:
        # One consent line found and not the other: a stamp or a blot hid it, and
        # unread it would count as not given. Ask.
        for key in sorted(set(vocab.consents) - consents):
            doc.findings.append(_unread_consent(key))
    if len(letters) == 1 and len(vocab.workshop_letters) > 1:
        # The extractor takes a lone option as chosen (the others were deleted); on a
        # printed form it more likely means OCR missed a line: ask, don't guess.
        doc.findings.append(
            Problem(
                "workshops",
                "ambiguous",
                "Nie udało się odczytać ze skanu wszystkich opcji warsztatów; "
                "prosimy o potwierdzenie wyboru.",
            )
        )
    return doc


def _read_upright(
    page: Image.Image, languages: str, limits: Limits, started: float
) -> tuple[CleanPage, list[Word]]:
    """Clean and read a page the right way up (see ``ocr_orient``).

    OSD picks the orientation; when the words read that way are poor and OSD was
    unsure (or the reading is very poor), the page is read once more the other way
    up and the better reading is kept: at most OSD and two page passes.
    """

    def left() -> float:
        remaining = limits.timeout_seconds - (time.monotonic() - started)
        if remaining <= 0:
            raise FormError(_timed_out(limits))
        return remaining

    found = ocr_orient.detect(
        page, _tesseract_binary(), TARGET_DPI, min(left(), 10.0), _environment()
    )
    first = found.rotate if found is not None else (0 if page.height >= page.width else 90)
    clean = clean_page(ocr_orient.turn(page, first))
    words = run_tesseract(clean, languages, left(), limits)
    score = ocr_orient.quality(words)
    need = ocr_orient.GOOD_WORDS * 80.0
    if found is not None and found.sure:
        need /= 3  # OSD was sure: only a very poor reading is worth a second look
    if score >= need:
        return clean, words
    for other in ocr_orient.alternatives(page, first):
        turned = clean_page(ocr_orient.turn(page, other))
        again = run_tesseract(turned, languages, left(), limits)
        if ocr_orient.quality(again) > score:
            clean, words, score = turned, again, ocr_orient.quality(again)
    return clean, words


def _timed_out(limits: Limits) -> str:
    return f"OCR timed out after {limits.timeout_seconds:g} s"


# --- tesseract ----------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _tesseract_binary() -> str:
    found = shutil.which("tesseract")
    if found is None:
        raise FormError(
            INSTALL_HINT.format(what="the tesseract program is not installed")
        )
    return found


def _languages() -> str:
    """``pol+eng`` (eng reads "@" far better), ``pol`` alone, or an install hint."""
    try:
        binary = _tesseract_binary()
    except FormError:
        _tesseract_binary.cache_clear()  # installed later: found on the next scan
        raise
    installed = _LANGUAGES.get(binary)
    if installed is None:
        installed = _installed_languages(binary)
        if "pol" in installed:  # a missing model is looked for again next time
            _LANGUAGES[binary] = installed
    if "pol" not in installed:
        raise FormError(INSTALL_HINT.format(what="Tesseract's Polish model is missing"))
    return "pol+eng" if "eng" in installed else "pol"


_LANGUAGES: dict[str, frozenset[str]] = {}


def _installed_languages(binary: str) -> frozenset[str]:
    try:
        out = subprocess.run(
            [binary, "--list-langs"],
            capture_output=True,
            timeout=30,
            check=False,
            env=_environment(),
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FormError(
            INSTALL_HINT.format(what=f"tesseract does not run ({e})")
        ) from e
    text = (out.stdout + out.stderr).decode("utf-8", "replace")
    return frozenset(line.strip() for line in text.splitlines()[1:] if line.strip())


def _environment() -> dict[str, str]:
    return {**os.environ, "OMP_THREAD_LIMIT": "1"}


def run_tesseract(
    page: CleanPage, languages: str, timeout: float, limits: Limits
) -> list[Word]:
    """Recognise a cleaned page; Tesseract is killed when ``timeout`` runs out."""
    # The rule-free ink mask, black on white, 1 bit: 60 kB of PNG instead of 9 MB.
    image = page.ink.point([255, *([0] * 255)]).convert("1")
    return recognise(image, TARGET_DPI, languages, timeout, limits)


def recognise(
    image: Image.Image, dpi: int, languages: str, timeout: float, limits: Limits
) -> list[Word]:
    """Run Tesseract on ``image`` (TSV words); killed when ``timeout`` runs out."""
    buf = io.BytesIO()
    image.save(buf, "PNG")
    command = [
        _tesseract_binary(),
        "stdin",
        "stdout",
        "--dpi",
        str(dpi),
        "--psm",
        _PSM,
        "--oem",
        "1",
        "-l",
        languages,
        *_CONFIG,
        "tsv",
    ]
    try:
        done = subprocess.run(
            command,
            input=buf.getvalue(),
            capture_output=True,
            timeout=max(timeout, 0.001),
            check=False,
            env=_environment(),
        )
    except subprocess.TimeoutExpired as e:  # run() has killed it already
        raise FormError(_timed_out(limits)) from e
    except OSError as e:
        _tesseract_binary.cache_clear()
        raise FormError(
            INSTALL_HINT.format(what=f"tesseract does not run ({e})")
        ) from e
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        raise FormError(f"OCR failed: {tail[0] if tail else done.returncode}")
    return parse_tsv(done.stdout.decode("utf-8", "replace"))


def parse_tsv(tsv: str) -> list[Word]:
    """Word rows (level 5) of Tesseract's TSV output."""
    words: list[Word] = []
    reader = csv.reader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE)
    for row in reader:
        if len(row) < 12 or row[0] != "5":
            continue
        text = row[11].strip()
        if not text:
            continue
        try:
            block, par, line = int(row[2]), int(row[3]), int(row[4])
            left, top, width, height = (int(v) for v in row[6:10])
            conf = float(row[10])
        except ValueError:
            continue
        words.append(
            Word(text, conf, left, top, left + width, top + height, (block, par, line))
        )
    return words


# --- words → chunks -----------------------------------------------------------------


def _read_page(
    page: CleanPage,
    words: list[Word],
    vocab: Vocabulary,
    doc: Document,
    again: Reader | None = None,
    carry: _Carry | None = None,
) -> set[str]:
    """Lay a page's words out into ``doc``; returns the options found (see ``_option_line``).

    Words inside a ruled table go into its cells (a ``Table`` block, read by the
    extractor's table rules like a .docx table); the rest is laid out like a PDF
    text layer. Both are emitted top to bottom. With ``again``, the values are read
    a second time, enlarged (see ``_reread``). ``carry`` holds the participants
    table the previous page ended with, which a headerless table opening this
    page continues.
    """
    words = _drop_noise(words)
    letters: set[str] = set()
    if not words:
        return letters
    grids = _grids(page, statistics.median(w.height for w in words))
    free: list[Word] = []
    cells: list[dict[tuple[int, int], list[Word]]] = [{} for _ in grids]
    for word in words:
        placed = _cell_of(word, grids)
        if placed is None:
            free.append(word)
        else:
            g, row, col = placed
            cells[g].setdefault((row, col), []).append(word)
    if again is not None:
        free = _reread(page, grids, cells, free, vocab, again)
    free = [_pipe_l(w) for w in free]
    cells = [{k: [_pipe_l(w) for w in ws] for k, ws in c.items()} for c in cells]
    free, cells = _doubt_unread(page, free, cells)
    _note_confidence(doc, page, free, cells, vocab)
    pieces: list[tuple[int, Chunk | Table]] = []
    to_points = 72 / TARGET_DPI
    height = page.gray.height
    widths: dict[int, list[int]] = {}
    for grid, content in zip(grids, cells, strict=True):
        table = _table(page, grid, content, vocab, doc, letters)
        widths[id(table)] = [b - a for a, b in grid.cols]
        pieces.append((grid.rows[0][0], table))
    lines: dict[tuple[int, int, int], list[Word]] = {}
    for word in free:
        lines.setdefault(word.line, []).append(word)
    for line in lines.values():
        line.sort(key=lambda w: w.x0)
        option = _option_line(page, line, vocab, doc)
        if option is not None:
            text, box, letter = option
            if letter is not None:
                letters.add(letter)
            pieces.append((box[1], _chunk(text, box, height, to_points)))
            continue
        for group in _groups(page, ocr_junk.clean_line(line)):
            text = " ".join(w.text for w in group)
            box = (
                min(w.x0 for w in group),
                min(w.y0 for w in group),
                max(w.x1 for w in group),
                max(w.y1 for w in group),
            )
            pieces.append((box[1], _chunk(text, box, height, to_points)))
    # The free text's right edge: where word wrap broke long labelled values.
    margin = max((p.x1 for _, p in pieces if isinstance(p, Chunk)), default=None)
    pending: list[Chunk] = []
    ordered = [p for _, p in sorted(pieces, key=lambda p: p[0])]
    # Page numbers and running heads ("Strona 2 z 2") do not end or open a table.
    body = [p for p in ordered if isinstance(p, Table) or len(p.text.split()) > 3]
    carry = carry if carry is not None else _Carry()
    merged: Table | None = None
    for piece in ordered:
        if isinstance(piece, Table):
            doc.blocks.extend(b for _, b in layout(pending, vocab, margin=margin))
            pending = []
            if piece is body[0] and carry.continued_by(piece, widths[id(piece)], vocab):
                assert carry.table is not None
                carry.table.rows.extend(piece.rows)
                merged = piece
                continue
            doc.blocks.append(piece)
        else:
            pending.append(piece)
    doc.blocks.extend(b for _, b in layout(pending, vocab, margin=margin))
    last = body[-1] if body else None
    if last is None or last is not merged:  # a page of more rows keeps it open
        carry.table, carry.widths = None, []
        if isinstance(last, Table) and _participant_header(last, vocab):
            carry.table, carry.widths = last, widths[id(last)]
    return letters


@dataclass(slots=True)
class _Carry:
    """The participants table a page ended with, and its column widths (pixels)."""

    table: Table | None = None
    widths: list[int] = dataclasses.field(default_factory=list)

    def continued_by(self, table: Table, widths: list[int], vocab: Vocabulary) -> bool:
        """Whether ``table`` (opening the next page) is more rows of this one: the
        same columns, to a few pixels, and no header of its own. Word breaks a long
        table across pages without repeating the header unless told to."""
        if self.table is None or len(widths) != len(self.widths):
            return False
        tol = max(12, round(0.02 * sum(widths)))
        if any(abs(a - b) > tol for a, b in zip(widths, self.widths, strict=True)):
            return False
        return not _participant_header(table, vocab)


def _participant_header(table: Table, vocab: Vocabulary) -> bool:
    """Whether the table's first row labels participants' columns."""
    if not table.rows:
        return False
    for cell in table.rows[0]:
        text = " ".join(
            "".join(i for i in b.inlines if isinstance(i, str)) for b in cell if isinstance(b, Para)
        )
        match = vocab.match_cell(text.strip())
        if match is not None and any(k.startswith("participant.") for k in match.keys):
            return True
    return False


# --- ruled tables -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Grid:
    """A ruled table: row bands (y) and column bands (x) between its rules, in pixels."""

    rows: list[tuple[int, int]]
    cols: list[tuple[int, int]]


def _grids(page: CleanPage, text_height: float) -> list[_Grid]:
    """Tables drawn with rules: consecutive horizontal rules crossed by the same
    vertical ones. Cells then come from the drawing, not from gaps between words,
    so a wrapped cell or a missed "2." in the Lp. column cannot merge two rows."""
    tol = max(6, round(text_height * 0.3))
    horizontal = sorted(
        (r for r in page.rules if r.horizontal), key=lambda r: r.position
    )
    vertical = [r for r in page.rules if not r.horizontal]
    grids: list[_Grid] = []
    for upper, lower in itertools.pairwise(horizontal):
        y0, y1 = round(upper.position), round(lower.position)
        if y1 - y0 < 0.8 * text_height:
            continue
        left = max(upper.start, lower.start)
        right = min(upper.end, lower.end)
        if right - left < 4 * text_height:
            continue
        crossing = sorted(
            round(v.position)
            for v in vertical
            if v.start <= y0 + tol
            and v.end >= y1 - tol
            and left - tol <= v.position <= right + tol
        )
        if not crossing:
            continue
        bounds: list[int] = []
        for x in [left, *crossing, right]:
            if not bounds or x - bounds[-1] > tol:
                bounds.append(x)
        cols = [(a, b) for a, b in itertools.pairwise(bounds) if b - a > tol]
        if len(cols) < 2:
            continue
        last = grids[-1] if grids else None
        if (
            last is not None
            and abs(last.rows[-1][1] - y0) <= tol
            and len(last.cols) == len(cols)
            and all(
                abs(a - c) <= tol and abs(b - d) <= tol
                for (a, b), (c, d) in zip(last.cols, cols, strict=True)
            )
        ):
            last.rows.append((y0, y1))
        else:
            grids.append(_Grid([(y0, y1)], cols))
    return grids


_REREAD_SCALE = 2
_REREAD_GAP = 40


_DOMAIN_LIKE = re.compile(r"\w{2,}\.[a-z]{2,4}$")


def _reread(
    page: CleanPage,
    grids: list[_Grid],
    cells: list[dict[tuple[int, int], list[Word]]],
    free: list[Word],
    vocab: Vocabulary,
    again: Reader,
) -> list[Word]:
    """Read the values again at twice the size, from the gray page.

    Values are what matters and where the page pass errs most: a line-end hyphen
    dropped ("Krawczyk-"), "b@" read as "o©", a lost ogonek ("Bąk"); enlarged gray
    pixels read them reliably (the example's values came out right at every scale
    tried, against 4 in 15 from the page pass alone). Reread: the tables' cells
    that are not labels, and e-mail-like groups of words elsewhere. All go into one
    stacked image, so this is one more Tesseract run (~0.6 s), not one per value.
    Phones and e-mails are read a third time (``ocr_vote``), ~0.3 s more.
    Returns ``free`` with the reread groups replaced.
    """
    regions: list[tuple[int, int, int, int]] = []
    targets: list[tuple[int, tuple[int, int]] | list[Word]] = []
    for g, (grid, content) in enumerate(zip(grids, cells, strict=True)):
        for (r, c), words in content.items():
            if vocab.match_cell(" ".join(w.text for w in words)) is not None:
                continue
            (x0, x1), (y0, y1) = grid.cols[c], grid.rows[r]
            regions.append((x0 + 3, y0 + 3, x1 - 2, y1 - 2))
            targets.append((g, (r, c)))
    lines: dict[tuple[int, int, int], list[Word]] = {}
    for word in free:
        lines.setdefault(word.line, []).append(word)
    for line in lines.values():
        line.sort(key=lambda w: w.x0)
        for group in _line_values(_groups(page, line), vocab):
            pad = round(0.3 * statistics.median(w.height for w in group))
            regions.append(
                (
                    min(w.x0 for w in group) - pad,
                    min(w.y0 for w in group) - pad,
                    max(w.x1 for w in group) + pad,
                    max(w.y1 for w in group) + pad,
                )
            )
            targets.append(group)
    if not regions:
        return free
    found = _read_regions(page.gray, regions, again, _REREAD_SCALE, "pol")
    firsts = [
        cells[t[0]].get(t[1], []) if isinstance(t, tuple) else t for t in targets
    ]
    kinds = [
        ocr_vote.contact_kind(" ".join(w.text for w in [*a, *b]))
        for a, b in zip(firsts, found, strict=True)
    ]
    contacts = [i for i, k in enumerate(kinds) if k is not None]
    thirds: list[list[Word]] = [[] for _ in targets]
    if contacts:
        english = _read_regions(page.gray, [regions[i] for i in contacts], again, 1, "eng")
        for i, words in zip(contacts, english, strict=True):
            thirds[i] = words
    replaced: set[int] = set()
    added: list[Word] = []
    for target, first, words, third, kind in zip(
        targets, firsts, found, thirds, kinds, strict=True
    ):
        if kind is not None:
            repair = repair_phone if kind == "phone" else repair_email
            words, disagreed = ocr_vote.vote([first, words, third], kind, repair, _prefer)
            if disagreed:
                words = _doubted(words)
        elif not words:
            continue  # nothing read the second time: keep the first reading
        else:
            chosen = _prefer(first, words)
            words = _unconfirmed(chosen, words if chosen is first else first)
        if not words:
            continue
        if isinstance(target, tuple):
            g, key = target
            cells[g][key] = words
        else:  # the group stays on its line, so the layout sees it where it was
            replaced.update(id(w) for w in target)
            added += [dataclasses.replace(w, line=target[0].line) for w in words]
    return [w for w in free if id(w) not in replaced] + added


def _unconfirmed(chosen: list[Word], other: list[Word]) -> list[Word]:
    """``chosen`` with the words the other reading spelled differently doubted.

    Two looks at the same pixels that disagree ("Slezak-Bak" at 92 on the page,
    "SŚlęzak-Bąk" enlarged; "jolanta" / "Jolanta") mean neither is sure, however
    confident Tesseract was of each: such words get ``ocr_vote.DISAGREED``, so the
    value is flagged rather than passed on as read. A word the other reading has
    with fewer diacritics only ("Bąk" / "Bak") is kept as sure; so are
    punctuation ("Krawczyk-") and one-character words (the "1." of Lp.).
    """
    if not other:
        return chosen
    # Words compared by their letters and digits ("Krawczyk-" / "Krawczyk" agree).
    # The other reading only lost marks this one has ("Bak" for "Bąk"): one pass
    # missing an ogonek is common, a mark seen where there is none is not.
    spelled: dict[str, int] = {}
    for w in other:
        key = _bare(_letters(w.text))
        spelled[key] = min(spelled.get(key, 99), _marks(w.text))
    out: list[Word] = []
    for w in chosen:
        letters = _letters(w.text)
        if len(letters) >= 2 and spelled.get(_bare(letters), 99) > _marks(letters):
            w = dataclasses.replace(w, conf=min(w.conf, ocr_vote.DISAGREED))
        out.append(w)
    return out


def _letters(text: str) -> str:
    return "".join(c for c in text if c.isalnum())


_NO_MARKS = str.maketrans("łŁ", "lL")


def _bare(text: str) -> str:
    """``text`` without diacritics, case kept ("Ślęzak" → "Slezak")."""
    decomposed = unicodedata.normalize("NFD", text.translate(_NO_MARKS))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _marks(text: str) -> int:
    return sum(1 for c in text if _bare(c) != c)


def _doubted(words: list[Word]) -> list[Word]:
    """A value whose readings disagreed, as one word of low confidence.

    Confidences are looked up by a word's text, so lowering "77" would doubt every
    value spelling "77"; the value's words are fused instead (spaces mean nothing
    in a phone or an address), and only this value is doubted.
    """
    if not words:
        return words
    return [
        Word(
            "".join(w.text for w in words),
            min(min(w.conf for w in words), ocr_vote.DISAGREED),
            min(w.x0 for w in words),
            min(w.y0 for w in words),
            max(w.x1 for w in words),
            max(w.y1 for w in words),
            words[0].line,
        )
    ]


def _note_confidence(
    doc: Document,
    page: CleanPage,
    free: list[Word],
    cells: list[dict[tuple[int, int], list[Word]]],
    vocab: Vocabulary,
) -> None:
    """Record each word's confidence in ``doc.confidence`` (by its text, the lowest).

    Confidences are looked up by text, so a word spelled alike in a value and in
    printed text ("ul." of the header's "ul. Piastowska 14" and of the address)
    takes the value's own: words where values stand (table cells, what follows a
    label, address-like groups) override the page's other words.
    """
    lines: dict[tuple[int, int, int], list[Word]] = {}
    for word in free:
        lines.setdefault(word.line, []).append(word)
    valued: list[Word] = [w for c in cells for ws in c.values() for w in ws]
    for line in lines.values():
        line.sort(key=lambda w: w.x0)
        for group in _line_values(_groups(page, line), vocab):
            valued += group
    found: dict[str, float] = {}
    for word in free:
        found[word.text] = min(word.conf, found.get(word.text, 101.0))
    own: dict[str, float] = {}
    for word in valued:
        own[word.text] = min(word.conf, own.get(word.text, 101.0))
    found.update(own)
    for text, conf in found.items():
        known = doc.confidence.get(text)
        doc.confidence[text] = conf if known is None else min(known, conf)


def _doubt_unread(
    page: CleanPage,
    free: list[Word],
    cells: list[dict[tuple[int, int], list[Word]]],
) -> tuple[list[Word], list[dict[tuple[int, int], list[Word]]]]:
    """Words the pixels contradict get ``ocr_vote.DISAGREED``, so their values are
    flagged: unread ink beside them (``ocr_unread``: a stamp or blot hid part of
    their line) or an accent over a plain first letter (``ocr_accents``)."""
    placed = [(None, w) for w in free] + [
        ((g, key), w) for g, c in enumerate(cells) for key, ws in c.items() for w in ws
    ]
    words = [w for _, w in placed]
    if not words:
        return free, cells
    height = statistics.median(w.height for w in words)
    # A junk word's ink counts as unread: "dieta bezglutenowa" with the second word
    # read at 0 (and dropped as junk) leaves "dieta", cut short.
    read = [i for i, w in enumerate(words) if not ocr_junk.is_junk(w)]
    hit = {read[i] for i in ocr_unread.beside_unread(page.ink, [words[i] for i in read], height)}
    hit |= {
        i for i, w in enumerate(words) if ocr_accents.accent_lost(page.ink, w, height)
    }
    if not hit:
        return free, cells
    if log.isEnabledFor(logging.DEBUG):
        log.debug("pixels doubt %s", [words[i].text for i in sorted(hit)])
    out_free: list[Word] = []
    out_cells: list[dict[tuple[int, int], list[Word]]] = [{} for _ in cells]
    for i, (where, w) in enumerate(placed):
        if i in hit:
            w = dataclasses.replace(w, conf=min(w.conf, ocr_vote.DISAGREED))
        if where is None:
            out_free.append(w)
        else:
            out_cells[where[0]].setdefault(where[1], []).append(w)
    return out_free, out_cells


def _line_values(groups: list[list[Word]], vocab: Vocabulary) -> list[list[Word]]:
    """The value words of a free line's groups: what follows a label in its group,
    a whole group after a label standing alone ("Adres (…):" | "ul. Rynek 1"),
    and address-like groups."""
    values: list[list[Word]] = []
    after_label = False
    for group in groups:
        words = group if after_label else _labelled_value(group, vocab)
        if words:
            values.append(words)
        text = " ".join(w.text for w in group)
        after_label = not words and (
            vocab.match_prefix(text) is not None or vocab.match_cell(text) is not None
        )
    return values


def _labelled_value(group: list[Word], vocab: Vocabulary) -> list[Word]:
    """The words of a free group worth a second look: the value after a label
    ("Stanowisko: informatyk" → "informatyk", running text), or a whole e-mail-like
    group; none for other text (titles, options, notes)."""
    text = " ".join(w.text for w in group)
    found = vocab.match_prefix(text)
    if found is not None:
        at = 0
        for k, word in enumerate(group):
            if at >= found.value_start:
                return group[k:]
            at += len(word.text) + 1
        return []
    if any(_DOMAIN_LIKE.search(w.text) for w in group):
        return group
    return []


# How much lower the enlarged reading's weakest word may score and still be kept:
# it is the better reading as a rule, but it turns some digit runs to junk.
_REREAD_SLACK = 15.0


def _prefer(first: list[Word], second: list[Word]) -> list[Word]:
    """The better of two readings of one value: the page pass and the enlarged one.

    A reading that makes a valid phone or e-mail (after the safe repairs) beats one
    that does not; otherwise the enlarged reading is kept unless its weakest word
    is clearly less sure than the page pass's.
    """
    if not first:
        return second
    a = " ".join(w.text for w in first)
    b = " ".join(w.text for w in second)
    for valid in (_valid_phone, _valid_email):
        va, vb = valid(a), valid(b)
        if va != vb:
            return first if va else second
    low_a = min(w.conf for w in first)
    low_b = min(w.conf for w in second)
    return second if low_b >= low_a - _REREAD_SLACK else first


def _valid_phone(text: str) -> bool:
    if sum(c.isdigit() for c in text) < 5:
        return False
    return normalize_phone(repair_phone(text))[1]


def _valid_email(text: str) -> bool:
    fixed = repair_email(text)
    return "@" in fixed and normalize_email(fixed)[1] and bool(_DOMAIN_END.search(fixed))


_PIPE_L = re.compile(r"^\|(?=[.\w])")
_INITIAL = re.compile(r"^\|\.[^\W\d_]{2,}$")


def _pipe_l(word: Word) -> Word:
    """"|.zak@nysa.pl" → "l.zak@nysa.pl": a leading "l" of an address read as "|"
    (which later cleaning would strip, losing the letter). Only in address-like
    words: elsewhere a "|" is a rule's remnant."""
    text = word.text
    address = "@" in text or "©" in text or _DOMAIN_LIKE.search(text)
    # "|.zak" read apart from "@powiat.opole.pl": an initial and a dot follow.
    if not text.startswith("|") or not (address or _INITIAL.match(text)):
        return word
    return dataclasses.replace(word, text=_PIPE_L.sub("l", text))


def _read_regions(
    gray: Image.Image,
    regions: list[tuple[int, int, int, int]],
    again: Reader,
    scale: int,
    language: str,
) -> list[list[Word]]:
    """OCR page regions scaled and stacked in one image; words in page pixels."""
    gap = _REREAD_GAP
    boxes = [
        (max(x0, 0), max(y0, 0), min(x1, gray.width), min(y1, gray.height))
        for x0, y0, x1, y1 in regions
    ]
    sizes = [
        (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
        for x0, y0, x1, y1 in boxes
    ]
    sheet = Image.new(
        "L",
        (max(w for w, _ in sizes) + 2 * gap, sum(h + gap for _, h in sizes) + gap),
        255,
    )
    bands: list[tuple[int, int]] = []
    y = gap
    for box, size in zip(boxes, sizes, strict=True):
        sheet.paste(gray.crop(box).resize(size, Image.Resampling.LANCZOS), (gap, y))
        bands.append((y, y + size[1]))
        y += size[1] + gap
    found: list[list[Word]] = [[] for _ in boxes]
    for word in _drop_noise(again(sheet, round(TARGET_DPI * scale), language)):
        centre = (word.y0 + word.y1) / 2
        index = next((i for i, (a, b) in enumerate(bands) if a <= centre <= b), None)
        if index is None:
            continue
        top = bands[index][0]
        x0, y0 = boxes[index][:2]
        found[index].append(
            Word(
                word.text,
                word.conf,
                x0 + round((word.x0 - gap) / scale),
                y0 + round((word.y0 - top) / scale),
                x0 + round((word.x1 - gap) / scale),
                y0 + round((word.y1 - top) / scale),
                word.line,
            )
        )
    return found


def _cell_of(word: Word, grids: list[_Grid]) -> tuple[int, int, int] | None:
    cx, cy = (word.x0 + word.x1) / 2, (word.y0 + word.y1) / 2
    for g, grid in enumerate(grids):
        if not grid.rows[0][0] <= cy <= grid.rows[-1][1]:
            continue
        if not grid.cols[0][0] <= cx <= grid.cols[-1][1]:
            continue
        row = next((i for i, (a, b) in enumerate(grid.rows) if a <= cy <= b), None)
        col = next((j for j, (a, b) in enumerate(grid.cols) if a <= cx <= b), None)
        if row is not None and col is not None:
            return g, row, col
    return None


def _table(
    page: CleanPage,
    grid: _Grid,
    content: dict[tuple[int, int], list[Word]],
    vocab: Vocabulary,
    doc: Document,
    letters: set[str],
) -> Table:
    rows: list[list[list[Block]]] = []
    for r in range(len(grid.rows)):
        row: list[list[Block]] = []
        for c in range(len(grid.cols)):
            inlines: list[Inline] = []
            for line in _cell_lines(content.get((r, c), [])):
                option = _option_line(page, line, vocab, doc)
                if option is not None and option[2] is not None:
                    letters.add(option[2])
                if option is None:
                    line = ocr_junk.clean_line(line)
                    if not line:
                        continue
                text = (
                    option[0] if option is not None else " ".join(w.text for w in line)
                )
                if inlines:
                    inlines.append("\n")
                inlines.append(text)
            row.append([Para(inlines)])
        rows.append(row)
    return Table(rows)


def _cell_lines(words: list[Word]) -> list[list[Word]]:
    """A cell's words as lines, top to bottom (by vertical overlap)."""
    lines: list[list[Word]] = []
    for word in sorted(words, key=lambda w: (w.y0 + w.y1) / 2):
        centre = (word.y0 + word.y1) / 2
        if lines:
            last = lines[-1]
            top = statistics.median(w.y0 for w in last)
            bottom = statistics.median(w.y1 for w in last)
            if top <= centre <= bottom:
                last.append(word)
                continue
        lines.append([word])
    for line in lines:
        line.sort(key=lambda w: w.x0)
    return lines


def _chunk(
    text: str, box: tuple[int, int, int, int], height: int, to_points: float
) -> Chunk:
    """Pixels (y down) → PDF points (y up), the text layer's coordinate system."""
    x0, y0, x1, y1 = box
    return Chunk(
        x0 * to_points,
        (height - y1) * to_points,
        x1 * to_points,
        (height - y0) * to_points,
        [text],
    )


def _drop_noise(words: list[Word]) -> list[Word]:
    """Rule stubs ("|", "_"), specks, and signature scribbles are not form text."""
    if not words:
        return []
    typical = statistics.median(w.height for w in words)
    kept = []
    for w in words:
        if _JUNK.match(w.text):
            continue
        if w.conf < 40 and not any(c.isalnum() or c in "@©®&" for c in w.text):
            continue
        if w.height > _TALL * typical and w.conf < 60:
            continue
        kept.append(w)
    return kept


def _groups(page: CleanPage, line: list[Word]) -> list[list[Word]]:
    """Words of a line split into cells at wide gaps and at vertical table rules."""
    if not line:
        return []
    height = statistics.median(w.height for w in line)
    top = min(w.y0 for w in line)
    bottom = max(w.y1 for w in line)
    verticals = [
        r.position
        for r in page.rules
        if not r.horizontal and r.start <= bottom and r.end >= top
    ]
    groups: list[list[Word]] = [[line[0]]]
    for word in line[1:]:
        prev = groups[-1][-1]
        # A stray "—" (a field border's remnant) must not bridge label and value.
        solid = next((w for w in reversed(groups[-1]) if _solid(w)), prev)
        ruled = any(prev.x1 - 2 <= x <= word.x0 + 2 for x in verticals)
        if ruled or word.x0 - solid.x1 > 1.2 * height:
            groups.append([word])
        else:
            groups[-1].append(word)
    return groups


def _solid(word: Word) -> bool:
    return any(c.isalnum() for c in word.text)


# --- option lines and their tick boxes ------------------------------------------------

_DASHES = frozenset("-–—‐")
_LETTER_WORD = re.compile(r"^\W*?\w?([A-H])[-–—‐.):]?$")
_WORD_TOKEN = re.compile(r"[a-z0-9@]+")


@dataclass(frozen=True, slots=True)
class _Option:
    """An option line: which option, its printed wording, and where that starts."""

    kind: Literal["workshop", "consent"]
    key: str
    phrase: str
    start: int
    """Index of the word the wording starts in."""
    fused: bool
    """The wording starts inside that word ("A-Zarządzanie": the letter is fused)."""


def _match_option(line: list[Word], vocab: Vocabulary) -> _Option | None:
    """The workshop/consent option a line prints, tolerating a few OCR errors.

    The wording is the vocabulary's, so it is matched token by token against the
    line with a small edit distance ("Zarzqdzanie" is still option A); words fused
    by OCR ("A-Zarządzanie") are split at hyphens.
    """
    tokens: list[tuple[str, int, bool]] = []  # (token, word index, first in word)
    for index, word in enumerate(line):
        for n, tok in enumerate(_WORD_TOKEN.findall(fold(word.text))):
            tokens.append((tok, index, n == 0))
    if not tokens:
        return None
    present = {t for t, _, _ in tokens}
    best: tuple[int, int, _Option] | None = None
    for kind, table in (("workshop", vocab.workshops), ("consent", vocab.consents)):
        for key, phrases in table.items():
            for phrase in phrases:
                target_tokens = _WORD_TOKEN.findall(fold(phrase))
                if not target_tokens:
                    continue
                if not any(t in present for t in target_tokens if len(t) >= 5) and not (
                    all(t in present for t in target_tokens)
                ):
                    continue  # shares no distinctive word: skip the edit distances
                target = " ".join(target_tokens)
                limit = len(target) // 8
                m = len(target_tokens)
                for size in {m - 1, m, m + 1} - {0}:
                    for i in range(len(tokens) - size + 1):
                        window = " ".join(t for t, _, _ in tokens[i : i + size])
                        d = _levenshtein(window, target, limit)
                        if d > limit:
                            continue
                        rank = (d, -len(target))
                        if best is None or rank < best[:2]:
                            _, at, first = tokens[i]
                            option = _Option(
                                "workshop" if kind == "workshop" else "consent",
                                key,
                                phrase,
                                at,
                                not first,
                            )
                            best = (rank[0], rank[1], option)
    return best[2] if best is not None else None


def _option_line(
    page: CleanPage, line: list[Word], vocab: Vocabulary, doc: Document
) -> tuple[str, tuple[int, int, int, int], str] | None:
    """An option line rewritten as "☒ A – <wording>" from its box's pixels.

    The box is measured, not read: OCR turns hand-drawn crosses into "M", "pQ",
    "HB"… When the page shows no box or mark, glyphs typed next to the option
    ("X", "☒", "[x]") decide, as in a typed form. Returns the text, its pixel box
    and which option it is: the workshop letter, or "consent:<key>".
    """
    option = _match_option(line, vocab)
    if option is None:
        return None
    # The height of real words (not "-", "v" or a box glyph) sizes the search areas.
    wordy = [w for w in line if sum(c.isalpha() for c in w.text) >= 3] or line
    height = statistics.median(w.height for w in wordy)
    if option.kind == "workshop":
        anchor = _letter_anchor(line, option)
        wording = f"{option.key} – {option.phrase}"
    else:
        anchor = _word_anchor(line)
        wording = option.phrase
    regular = [w for w in line if w.height <= 1.6 * height] or line
    top = min(w.y0 for w in regular)
    bottom = max(w.y1 for w in regular)
    search = (
        round(min(line[0].x0, anchor) - 2.2 * height),
        round(top - 0.6 * height),
        round(anchor + 0.5 * height),
        round(bottom + 0.6 * height),
    )
    mark_area = (
        round(anchor - 1.8 * height),
        top,
        round(anchor - 0.2 * height),
        bottom,
    )
    tick = read_tick(page.ink, search, mark_area, height, before=anchor)
    text = " ".join(w.text for w in line)
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "option %s %r: %s (%.3f)", option.key, text[:40], tick.state, tick.density
        )
    if tick.state == "none":
        typed = tick_state(text)
        glyph = "" if typed is None else "☒ " if typed else "☐ "
    else:
        glyph = "☐ " if tick.state == "empty" else "☒ "
    if tick.state == "ambiguous":
        doc.findings.append(_ambiguous(option))
    left = tick.box.x0 if tick.box is not None else min(anchor, line[0].x0)
    key = option.key if option.kind == "workshop" else f"consent:{option.key}"
    return glyph + wording, (left, top, max(w.x1 for w in line), bottom), key


def _letter_anchor(line: list[Word], option: _Option) -> int:
    """x where the option letter ("A" of "A – Zarządzanie …") starts."""
    word = line[option.start]
    if option.fused:
        return word.x0  # "A-Zarządzanie": the letter opens the word
    i = option.start - 1
    while i >= 0 and all(c in _DASHES for c in line[i].text):
        i -= 1
    if i < 0:
        return word.x0
    before = line[i]
    m = _LETTER_WORD.match(before.text)
    if m is None:
        return before.x1 + 1
    # The letter may be fused with the box ("☒B" read as "HB"): estimate its place.
    share = (len(before.text) - m.start(1)) / len(before.text)
    return round(before.x1 - share * (before.x1 - before.x0))


def _word_anchor(line: list[Word]) -> int:
    """x where a consent's wording starts: the first real word, past box glyphs."""
    for word in line:
        stripped = re.sub(r"^[\W\d_]+", "", word.text)
        letters = re.match(r"[^\W\d_]+", stripped)
        if letters is None or len(letters.group()) < 3:
            continue
        lead = len(word.text) - len(stripped)
        return round(word.x0 + lead / len(word.text) * (word.x1 - word.x0))
    return line[0].x0


def _unread_consent(key: str) -> Problem:
    what = (
        "zgody na przetwarzanie danych osobowych"
        if key == "data_processing"
        else "zgody na otrzymywanie informacji o kolejnych wydarzeniach"
    )
    return Problem(
        f"consents.{key}",
        "ambiguous",
        f"Nie udało się odczytać ze skanu {what}; prosimy o potwierdzenie.",
    )


def _ambiguous(option: _Option) -> Problem:
    if option.kind == "workshop":
        return Problem(
            "workshops",
            "ambiguous",
            f"Nie jest jasne, czy zaznaczono warsztat {option.key}; prosimy o potwierdzenie.",
        )
    what = (
        "zgodę na przetwarzanie danych osobowych"
        if option.key == "data_processing"
        else "zgodę na otrzymywanie informacji o kolejnych wydarzeniach"
    )
    return Problem(
        f"consents.{option.key}",
        "ambiguous",
        f"Nie jest jasne, czy zaznaczono {what}; prosimy o potwierdzenie.",
    )


# --- repairs of OCR'd values ----------------------------------------------------------

_AT_LOOKALIKES = re.compile(
    r"\s*[\(\[]at[\)\]]\s*|\s*[\(\[]a[\)\]]\s*|A[O0]|[©®Q&]", re.IGNORECASE
)
# One "@" read as two glyphs: a local part ending in a capital Q or E (or ©, ®)
# right before the "@" is far rarer than this misreading.
_DOUBLED_AT = re.compile(r"[©®QE]@|@[©®Q]")
_AT_RUN = re.compile(r"[©®Q&]{2}")
_AT_ALONE = frozenset({"O", "o", "0", "Q", "©", "®", "&", "@", "a", "e", "AO"})
_DOMAIN_END = re.compile(r"\.[A-Za-z]{2,}$")
# ".pl" misread: "p!", "p1", "pI", "p|", "pi", or its "l" lost. No such TLDs exist.
_PL_END = re.compile(r"\.p[!1I|i]?$")
# Specks OCR puts beside a dot or the "@": quotes and commas ("info©,nysa.pl").
_SPECKS = re.compile(r"[„”“\"'`,]+(?=[.@©®])|(?<=[.@©®])[„”“\"'`,]+")
_NUMBER_TOKEN = re.compile(r"[\d()+\-./OoDlI|!]*[\dOoDlI|!][\d()+\-./OoDlI|!]*")
_PHONE_DIGITS = str.maketrans(
    {"O": "0", "o": "0", "D": "0", "l": "1", "I": "1", "|": "1", "!": "1"}
)


def _tidy(value: str) -> str:
    """What is never part of an OCR'd address: spaces (a wrapped line or a misread
    gap), specks next to dots, "|" for "l", a damaged ".pl"."""
    text = _SPECKS.sub("", re.sub(r"\s+", "", value)).replace("|", "l")
    return _PL_END.sub(".pl", text)


def repair_email(value: str) -> str:
    """Undo OCR's usual e-mail misreadings, only when the result is a valid address.

    "urzadQlubniany.pl" → "urzad@lubniany.pl" ("@" read as ©, ®, Q, &, "AO" or
    "(at)"), "urzadQ@lubniany.pl", "j.nowakE@nysa.pl" and "urzadQ©lubniany.pl" →
    one "@" (one "@" read as two glyphs), "a@b.p!"/"a@b.pi" → "a@b.pl", spaces and
    specks dropped ("info © ,nysa.pl"), "|" → "l", a lone capital "E" in a lower-case
    address without "@" taken for it, a lost "@" between a name and a domain. The
    most specific repair that gives exactly one valid address wins; otherwise the
    value stays as read, only tidied when it looks like an address (and is
    reported invalid). A lower-case "e" or "o" for "@"
    is not repaired: "sekretariateglucholazy.pl" has three readings.
    """
    doubled = _DOUBLED_AT.sub("@", value)
    if doubled != value and normalize_email(doubled)[1]:
        return doubled
    if normalize_email(value)[1]:
        fixed = _PL_END.sub(".pl", value)
        return fixed if normalize_email(fixed)[1] else value
    base = _tidy(value)
    tiers: list[set[str]] = [{base} if "@" in base else set()]
    if "@" in base:
        tiers.append({_DOUBLED_AT.sub("@", base)})
    else:
        tiers.append(
            {base[: m.start()] + "@" + base[m.end() :] for m in _AT_RUN.finditer(base)}
        )
        tiers.append(
            {
                base[: m.start()] + "@" + base[m.end() :]
                for m in _AT_LOOKALIKES.finditer(base)
            }
        )
        upper = [i for i, c in enumerate(base) if c.isupper()]
        if len(upper) == 1 and base[upper[0]] == "E":
            i = upper[0]
            tiers.append({base[:i] + "@" + base[i + 1 :]})
        parts = value.split()
        if len(parts) == 2 and "." in parts[1]:
            tiers.append({"@".join(parts)})  # "@" lost: "sekretariat glogowek.pl"
        elif len(parts) == 3 and parts[1] in _AT_ALONE and "." in parts[2]:
            tiers.append({f"{parts[0]}@{_tidy(parts[2])}"})  # "sekretariat O nysa.pl"
    for tier in tiers:
        valid = {c for c in tier if normalize_email(c)[1] and _DOMAIN_END.search(c)}
        if len(valid) == 1:
            return valid.pop()
        if valid:
            break  # two readings: no guess
    # No "@" to be had here; an address-like value is still returned tidied
    # ("z.kolodziejeglucholazy. pi" → "…glucholazy.pl"), so the extractor can put
    # the "@" before a domain the form's other addresses use.
    return base if base != value and _DOMAIN_END.search(base) else value


def repair_phone(value: str) -> str:
    """O/o/D → 0 and l/I/|/! → 1 inside a phone number's digit groups.

    Done before validating, as the phone library would read "O" as a keypad 6 and
    accept "77 4O6 98 OO" as +48774669866. Words ("lub", "wew.") are left alone; the
    repair is kept only when the result is a valid number.
    """
    tokens = value.split()
    if sum(c.isdigit() for c in value) < 5:
        return value
    fixed = " ".join(
        token.translate(_PHONE_DIGITS) if _NUMBER_TOKEN.fullmatch(token) else token
        for token in tokens
    )
    if fixed != " ".join(tokens) and normalize_phone(fixed)[1]:
        return fixed
    return value


def repair_values(values: dict[str, str]) -> set[str]:
    """Repair a person's or institution's OCR'd ``phone`` and ``email`` in place.

    Returns the keys whose value changed: a repaired value is a guess, however
    safe, and the extractor trusts it less than one read as it stands.
    """
    changed: set[str] = set()
    for key, repair in (("email", repair_email), ("phone", repair_phone)):
        value = values.get(key)
        if value is None:
            continue
        fixed = repair(value)
        if fixed != value:
            values[key] = fixed
            changed.add(key)
    return changed


_PIECES = re.compile(r"\s+|(?<=-)(?=\w)")
_MAX_PARTS = 6


def value_confidence(value: str | None, confidence: dict[str, float]) -> float | None:
    """The lowest OCR confidence (0–100) of the words a value is made of.

    A space-separated token is looked up whole ("Ślęzak-Bąk" is one OCR word), else
    in pieces as ``doubtful`` splits them (spaces, after a hyphen). A piece
    the extractor made by joining wrapped lines without a space ("m.kowalska@" +
    "nysa.pl") is found as a concatenation of recognised words. ``None`` when no
    piece is found: the value did not come from OCR'd words (or was rewritten).
    """
    if not value:
        return None
    scores: list[float] = []
    for token in value.split():
        if token in confidence:  # "Slęzak-Bąk" read as one word
            scores.append(confidence[token])
            continue
        for piece in _PIECES.split(token):
            found = _composed(piece, confidence) if piece else None
            if found is not None:
                scores.append(found)
    return min(scores) if scores else None


def _composed(piece: str, confidence: dict[str, float]) -> float | None:
    """``piece``'s confidence, or the lowest of ≤ 6 recognised words spelling it."""
    if piece in confidence:
        return confidence[piece]
    # Shortest-first search over prefixes; bounded by the piece's length × parts.
    best: dict[int, tuple[int, float]] = {0: (0, 101.0)}
    for start in range(len(piece)):
        if start not in best:
            continue
        parts, low = best[start]
        if parts >= _MAX_PARTS:
            continue
        for end in range(start + 1, len(piece) + 1):
            conf = confidence.get(piece[start:end])
            if conf is None:
                continue
            candidate = (parts + 1, min(low, conf))
            if end not in best or candidate[1] < best[end][1]:
                best[end] = candidate
    done = best.get(len(piece))
    return done[1] if done is not None and done[0] else None


def doubtful(value: str | None, confidence: dict[str, float]) -> bool:
    """Whether a value was read poorly: its words' mean OCR confidence is low."""
    if not value:
        return False
    scores = [
        confidence[piece]
        for piece in re.split(r"\s+|(?<=-)(?=\w)", value)
        if piece in confidence
    ]
    return bool(scores) and statistics.fmean(scores) < LOW_CONFIDENCE
