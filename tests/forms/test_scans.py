"""Scans read right or visibly doubted (issue 9), field by field.

The slow cases OCR generated scans (``scangen``): one per failure class seen on
unseen forms — a page turned 90°, 180° or 270°, a tilted page, a low-resolution JPEG,
the printed fillable PDF, running text, a stamp over text, a table broken across
two pages of which the first is upside down. Each must give every field right, or wrong
but flagged ``low_confidence``/``ambiguous`` (``scoring.score``'s *caught*), with no
phantom participant. The cheap cases check the repairs, confidences, junk filter and
orientation logic without Tesseract.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass

import pytest
from PIL import Image, ImageChops, ImageDraw

from mailbot.forms import ocr, ocr_accents, ocr_junk, ocr_orient, ocr_unread, ocr_vote, parse_bytes
from mailbot.forms.image import flatten, ink_mask, text_skew
from mailbot.forms.labels import load_vocabulary
from mailbot.forms.extract import Para, Table
from mailbot.forms.pdf_layout import Chunk, layout

from . import scangen
from .cycle import EVENTS
from .scoring import score

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract is not installed"
)
needs_soffice = pytest.mark.skipif(
    not scangen.have_soffice(), reason="LibreOffice (soffice) converts the .docx forms"
)


def _one(kind: str, source: str, index: int) -> scangen.GenCase:
    """The generated case of ``kind`` printed from ``source`` for value set ``index``."""
    for case in scangen.cases([kind], [index], sources=[source]):
        return case
    raise LookupError(kind)


def _assert_read_or_caught(case: scangen.GenCase) -> None:
    got = parse_bytes(case.data, case.filename, EVENTS)
    result = score(got, case.expected, case.label)
    assert result.misses == []
    assert len(got.participants) == len(case.expected.participants)


# --- OCR of generated scans (Tesseract, ~2–4 s each) ------------------------------------


@pytest.mark.slow
@needs_tesseract
@needs_soffice
@pytest.mark.parametrize(
    ("kind", "source", "index"),
    [
        ("scan-rot90", "table", 1),  # a quarter turn counter-clockwise
        ("scan-rot180", "table", 3),  # upside down
        ("scan-tilt2", "table", 1),  # tilted 2°, JPEG
        ("scan-150dpi", "table", 3),  # low resolution, JPEG
        ("scan-running-text", "running", 1),  # labels and values, no table
        ("scan-running-text", "running", 3),  # a long value wrapped onto a 2nd line
        ("scan-stamp", "running", 3),  # a stamp hides words: the value is doubted
        ("scan-2page-flip", "table", 4),  # page 1 upside down, table goes on on page 2
    ],
)
def test_printed_docx_scans_read_every_field_or_doubt_it(
    kind: str, source: str, index: int
) -> None:
    _assert_read_or_caught(_one(kind, source, index))


@pytest.mark.slow
@needs_tesseract
@pytest.mark.parametrize(
    ("kind", "index"),
    [
        ("scan-fillable", 1),  # the printed fillable PDF: values in boxes
        ("scan-fillable", 2),
        ("scan-fillable", 0),  # the "l" of "l.zak@…" touches the box's left edge
        ("scan-rot90", 3),  # the fillable PDF turned 270°
    ],
)
def test_printed_fillable_pdf_scans_read_every_field_or_doubt_it(
    kind: str, index: int
) -> None:
    _assert_read_or_caught(_one(kind, "fillable", index))


# --- repairs of e-mails and phones (no OCR) ----------------------------------------------


@pytest.mark.parametrize(
    ("read", "repaired"),
    [
        ("m.kwiatkowska@powiat.opole.pi", "m.kwiatkowska@powiat.opole.pl"),
        ("m.kwiatkowskaAOpowiat.opole.pl", "m.kwiatkowska@powiat.opole.pl"),
        ("m.kwiatkowska Q powiat.opole.p", "m.kwiatkowska@powiat.opole.pl"),
        ("m.kwiatkowska©powiat .„opole.pl", "m.kwiatkowska@powiat.opole.pl"),
        ("info © ,dobrodzien.pl", "info@dobrodzien.pl"),
        ("j.slezakE@glucholazy.pl", "j.slezak@glucholazy.pl"),  # stray letter before "@"
        ("m.swiatekElubniany.pl", "m.swiatek@lubniany.pl"),
        ("z.kolodziej@glucholazy. pl", "z.kolodziej@glucholazy.pl"),  # space in the domain
        ("|.zak©powiat.opole.pl", "l.zak@powiat.opole.pl"),
        # Ambiguous or fine as read: kept.
        ("sekretariateglucholazy.pl", "sekretariateglucholazy.pl"),
        # no "@" to be had, but tidied for the extractor's known-domain repair
        ("z.kolodziejeglucholazy. pi", "z.kolodziejeglucholazy.pl"),
        ("SEKRETARIAT@BRZEG.PL", "SEKRETARIAT@BRZEG.PL"),
        ("a.kowalska@nysa.pl", "a.kowalska@nysa.pl"),
    ],
)
def test_unambiguous_email_confusions_are_repaired(read: str, repaired: str) -> None:
    assert ocr.repair_email(read) == repaired


def test_repair_values_says_which_values_it_changed() -> None:
    values = {
        "full_name": "Michat Nowak",  # names are the extractor's: never touched here
        "email": "m.nowakQnysa.pl",
        "phone": "6O1 234 567",
    }
    assert ocr.repair_values(values) == {"email", "phone"}
    assert values == {
        "full_name": "Michat Nowak",
        "email": "m.nowak@nysa.pl",
        "phone": "601 234 567",
    }
    fine = {"email": "m.nowak@nysa.pl", "phone": "601 234 567"}
    assert ocr.repair_values(fine) == set()
    assert ocr.repair_values({}) == set()


def test_value_confidence_is_the_weakest_word_of_the_value() -> None:
    confidence = {
        "Anna": 96.0,
        "Kowalska-": 71.0,
        "Nowak": 88.0,
        "a.kowalska@": 90.0,
        "nysa.pl": 42.0,
    }
    assert ocr.value_confidence("Anna Kowalska-Nowak", confidence) == 71.0
    # a hyphenated name read as one word is found whole
    assert ocr.value_confidence("Jolanta Slęzak-Bąk", {"Jolanta": 90.0, "Slęzak-Bąk": 45.0}) == 45.0
    # wrapped lines joined without a space are found word by word
    assert ocr.value_confidence("a.kowalska@nysa.pl", confidence) == 42.0
    assert ocr.value_confidence("Jan Kowalski", confidence) is None
    assert ocr.value_confidence(None, confidence) is None
    assert ocr.value_confidence("", confidence) is None


# --- junk and orientation (no OCR) -----------------------------------------------------


@dataclass(frozen=True)
class _W:
    text: str
    conf: float


@pytest.mark.parametrize(
    ("text", "conf", "junk"),
    [
        ("m---eeeerereaseeeereaa", 30.0, True),
        ("ZZWZ", 25.0, False),  # too short to judge by vowels
        ("SZCZWZK", 25.0, True),
        ("‚;:", 40.0, True),
        ("Głuchołazy", 35.0, False),  # poorly read but a word: kept for the doubt
        ("m---eeee", 95.0, False),  # well read: kept whatever it looks like
        ("x", 5.0, True),
    ],
)
def test_junk_words_are_poorly_read_non_words(text: str, conf: float, junk: bool) -> None:
    assert ocr_junk.is_junk(_W(text, conf)) is junk


def test_a_line_mostly_of_junk_is_dropped_whole() -> None:
    line = [_W("2", 20.0), _W("I", 30.0), _W("Id>isl", 12.0), _W("ROWERZE", 40.0)]
    assert ocr_junk.clean_line(line) == []
    ok = [_W("Uwagi:", 95.0), _W("dieta", 90.0), _W("eeeeee", 20.0)]
    assert ocr_junk.clean_line(ok) == ok[:2]


def test_orientation_alternatives_and_turns() -> None:
    portrait, landscape = Image.new("L", (10, 14)), Image.new("L", (14, 10))
    assert ocr_orient.alternatives(portrait, 0) == [180]
    assert ocr_orient.alternatives(portrait, 180) == [0]
    assert ocr_orient.alternatives(landscape, 90) == [270]
    assert ocr_orient.alternatives(landscape, 270) == [90]
    page = Image.new("L", (2, 3), 255)
    page.putpixel((0, 0), 0)
    assert ocr_orient.turn(page, 90).size == (3, 2)
    assert ocr_orient.turn(ocr_orient.turn(page, 90), 270).tobytes() == page.tobytes()
    assert ocr_orient.turn(page, 180).getpixel((1, 2)) == 0


def test_reading_quality_prefers_many_well_read_words() -> None:
    upright = [_W("Zgłoszenie", 95.0), _W("uczestnictwa", 93.0)] * 20
    upside_down = [_W("ɐɯ", 30.0), _W("pn", 45.0), _W("xoq", 60.0)] * 20
    assert ocr_orient.quality(upright) > ocr_orient.quality(upside_down)
    assert ocr_orient.good(upright) and not ocr_orient.good(upside_down)


@pytest.mark.parametrize("angle", [-2.0, 0.0, 1.5])
def test_running_text_without_rules_is_levelled_by_its_lines(angle: float) -> None:
    page = Image.new("L", (1200, 1600), 255)
    draw = ImageDraw.Draw(page)
    for y in range(100, 1500, 45):
        for x in range(100, 1100, 70):
            draw.rectangle((x, y, x + 50, y + 18), fill=0)  # words as ink blocks
    tilted = page.rotate(angle, Image.Resampling.BICUBIC, fillcolor=255)
    found = text_skew(ink_mask(tilted, 128))
    assert found == pytest.approx(-angle, abs=0.2)


# --- votes, doubts, unwrapping, paper (no OCR) --------------------------------------------


def _word(text: str, conf: float = 90.0, x0: int = 0) -> ocr.Word:
    return ocr.Word(text, conf, x0, 0, x0 + 10 * len(text), 30, (1, 1, 1))


def test_contact_kind_tells_phones_and_addresses_from_other_values() -> None:
    assert ocr_vote.contact_kind("77 541 51 23") == "phone"
    assert ocr_vote.contact_kind("(77) 408 85 20") == "phone"
    assert ocr_vote.contact_kind("m.kwiatkowska©powiat.opole.pl") == "email"
    assert ocr_vote.contact_kind("Naczelnik Wydziału Rozwoju") is None
    assert ocr_vote.contact_kind("ul. 1 Maja 29, 45-068 Opole") is None


def test_two_readings_making_one_value_outvote_the_third() -> None:
    page = [_word("77"), _word("541"), _word("51"), _word("23")]
    enlarged = [_word("1454151", 70.0), _word("23")]
    english = [_word("77"), _word("54151"), _word("23", 60.0)]
    chosen, disagreed = ocr_vote.vote(
        [page, enlarged, english], "phone", ocr.repair_phone, ocr._prefer
    )
    assert not disagreed and " ".join(w.text for w in chosen) in ("77 541 51 23", "77 54151 23")


def test_valid_readings_that_disagree_without_a_majority_are_doubted() -> None:
    page = [_word("77"), _word("541"), _word("51"), _word("23")]
    enlarged = [_word("1454151", 70.0), _word("23")]
    english = [_word("77"), _word("$4151", 37.0), _word("23")]  # no valid number
    chosen, disagreed = ocr_vote.vote(
        [page, enlarged, english], "phone", ocr.repair_phone, ocr._prefer
    )
    assert disagreed
    # the reading closest to all others (the English one shares "77") is kept
    assert [w.text for w in chosen] == ["77", "541", "51", "23"]
    fused = ocr._doubted(chosen)
    assert [w.text for w in fused] == ["775415123"]
    assert fused[0].conf == ocr_vote.DISAGREED < 50
    # a doubted value is still kept as text, not dropped as dirt
    assert ocr_junk.clean_line(fused) == fused
    assert ocr_vote.DISAGREED >= ocr_junk.POOR_LINE


def test_one_valid_reading_is_kept_as_read() -> None:
    valid = [_word("m.kwiatkowska©"), _word("powiat.opole.pl")]
    junk = [_word("m."), _word("1.kwiatkowskaG", 46.0)]
    chosen, disagreed = ocr_vote.vote([valid, junk, []], "email", ocr.repair_email, ocr._prefer)
    assert chosen == valid and not disagreed


def test_words_the_other_reading_spelled_differently_are_doubted() -> None:
    page = [_word("Jolanta", 79.0), _word("Slezak-Bak", 92.0)]
    enlarged = [_word("Jolanta", 87.0), _word("SŚlęzak-Bąk", 35.0)]
    kept = ocr._unconfirmed(page, enlarged)
    assert [(w.text, w.conf) for w in kept] == [
        ("Jolanta", 79.0),
        ("Slezak-Bak", ocr_vote.DISAGREED),
    ]
    assert ocr._unconfirmed(page, []) == page
    # the other reading lost a mark this one has: kept as sure; the reverse is doubted
    sure = [_word("Józef", 96.0), _word("Bąk", 96.0)]
    assert ocr._unconfirmed(sure, [_word("Józef"), _word("Bak")]) == sure
    lost = ocr._unconfirmed([_word("Bak", 96.0)], [_word("Bąk")])
    assert lost[0].conf == ocr_vote.DISAGREED


def test_a_value_beside_junk_is_kept_and_a_trailing_dash_dropped() -> None:
    cut_short = [_W("dieta", 45.0), _W("bezglutenowa", 0.0)]
    assert ocr_junk.clean_line(cut_short) == cut_short[:1]
    ring = [_W("Uwagi:", 95.0), _W("—", 74.0)]
    assert ocr_junk.clean_line(ring) == ring[:1]


def test_an_address_piece_wrapped_in_a_cell_is_not_dirt() -> None:
    line = [_W(".opole.pl", 31.0)]
    assert ocr_junk.clean_line(line) == line
    assert ocr_junk.clean_line([_W("„;:", 31.0)]) == []


def test_a_pipe_for_the_initial_l_is_an_l() -> None:
    assert ocr._pipe_l(_word("|.zak")).text == "l.zak"
    assert ocr._pipe_l(_word("|.zak©powiat.opole.pl")).text == "l.zak©powiat.opole.pl"
    assert ocr._pipe_l(_word("|")).text == "|"
    assert ocr._pipe_l(_word("|Inspektor")).text == "|Inspektor"


def _chunk(text: str, x0: float, top: float, x1: float) -> Chunk:
    return Chunk(x0, top - 10.0, x1, top, [text])


def test_a_labelled_line_wrapped_at_the_margin_is_joined_with_its_continuation() -> None:
    vocab = load_vocabulary()
    chunks = [
        _chunk("Nazwa jednostki samorządu terytorialnego / instytucji: Starostwo Powiatowe w", 72, 667, 504),
        _chunk("Opolu", 72, 654.5, 103),
        _chunk("Adres (ulica, kod pocztowy, miejscowość): ul. 1 Maja 29, 45-068 Opole", 72, 642, 459),
        _chunk("Telefon: 77 541 51 00", 72, 629, 191),
        _chunk("przez organizatora", 72, 616, 160),  # "Telefon" line ended short
    ]
    texts = [b.inlines for _, b in layout(chunks, vocab, margin=532.0)]  # type: ignore[union-attr]
    flat = ["".join(str(i) for i in t) for t in texts]
    assert flat[0].endswith("Starostwo Powiatowe w Opolu")
    assert flat[1].startswith("Adres")
    assert flat[-1] == "przez organizatora"
    # without a margin (the PDF text path) nothing is joined
    assert len(layout(chunks, vocab)) == len(chunks)


def test_uneven_light_and_grey_paper_are_flattened_to_white() -> None:
    page = Image.new("L", (800, 1100), 230)  # grey paper
    draw = ImageDraw.Draw(page)
    for y in range(100, 1000, 60):
        draw.rectangle((100, y, 700, y + 4), fill=60)  # strokes everywhere
    light = Image.linear_gradient("L").rotate(90).resize(page.size)
    light = light.point([round(255 - v * 100 / 255) for v in range(256)])  # 255 → 155
    flat = flatten(ImageChops.multiply(page, light)).tobytes()

    def at(x: int, y: int) -> int:
        return flat[y * page.width + x]

    assert at(750, 50) >= 240  # the dark side's paper is white
    assert at(650, 102) <= 60  # and its ink stays dark
    assert at(150, 102) <= 60


def _ink(size: tuple[int, int] = (400, 200)) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    ink = Image.new("L", size, 0)
    return ink, ImageDraw.Draw(ink)


def test_a_mark_over_a_plain_first_letter_is_an_accent_ocr_lost() -> None:
    ink, draw = _ink()
    draw.rectangle((50, 80, 70, 120), fill=255)  # the "S"
    draw.rectangle((60, 68, 66, 73), fill=255)  # its acute, apart from it
    draw.rectangle((75, 90, 200, 120), fill=255)  # the rest of the word
    word = ocr.Word("Slezak", 92.0, 50, 80, 200, 120, (1, 1, 1))
    assert ocr_accents.accent_lost(ink, word, 40.0)
    assert not ocr_accents.accent_lost(ink, dataclasses.replace(word, text="Ślęzak"), 40.0)
    assert not ocr_accents.accent_lost(ink, dataclasses.replace(word, text="jolanta"), 40.0)
    plain, draw = _ink()
    draw.rectangle((50, 80, 70, 120), fill=255)
    draw.rectangle((75, 90, 200, 120), fill=255)
    assert not ocr_accents.accent_lost(plain, word, 40.0)


def test_ink_beside_a_word_that_no_word_covers_doubts_it() -> None:
    ink, draw = _ink((600, 200))
    draw.rectangle((50, 80, 150, 110), fill=255)  # "dieta", read
    words = [ocr.Word("dieta", 96.0, 50, 80, 150, 110, (1, 1, 1))]
    assert ocr_unread.beside_unread(ink, words, 30.0) == set()
    draw.ellipse((170, 40, 260, 150), outline=255, width=6)  # a stamp's ring beside it
    draw.rectangle((175, 82, 240, 108), fill=255)  # over hidden letters
    assert ocr_unread.beside_unread(ink, words, 30.0) == {0}
    short = [ocr.Word("w", 96.0, 50, 80, 150, 110, (1, 1, 1))]
    assert ocr_unread.beside_unread(ink, short, 30.0) == set()  # shared by many values


def _table(*rows: tuple[str, ...]) -> Table:
    return Table([[[Para([text])] for text in row] for row in rows])


def test_a_headerless_table_opening_a_page_continues_the_participants_table() -> None:
    vocab = load_vocabulary()
    first = _table(("Lp.", "Imię i nazwisko", "Stanowisko", "Telefon", "E-mail"), ("1.", "Anna", "", "", ""))
    carry = ocr._Carry(first, [100, 400, 300, 250, 400])
    more = _table(("6.", "Marek Woźniak", "Podinspektor", "77 451 18 15", "m.wozniak@um.opole.pl"))
    assert carry.continued_by(more, [102, 398, 301, 249, 400], vocab)
    assert not carry.continued_by(more, [100, 700, 250, 400], vocab)  # other columns
    assert not carry.continued_by(first, [100, 400, 300, 250, 400], vocab)  # a new table
    assert not ocr._Carry().continued_by(more, [100, 400, 300, 250, 400], vocab)
