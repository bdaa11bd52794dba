"""Scans (PDF without text layer, JPG/PNG/TIFF) read by OCR as docs/forms.md promises.

The slow cases run Tesseract (about 1.5 s a page here): the project's own generated
form rendered to images, the committed corpus photos, and the organisers' scanned
example when ``../shared`` is there. The rest checks the limits and the pixel and
repair logic without OCR.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import threading
import time
import zlib
from typing import Any

import pypdf
import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageDraw

from mailbot.errors import FormError
from mailbot.forms import ocr, parse_bytes, parse_file
from mailbot.forms.blank import FilledValues, make_pdf
from mailbot.forms.extract import _join_lines
from mailbot.forms.image import (
    clean_page,
    find_box,
    ink_mask,
    open_image,
    read_tick,
    render_pdf_pages,
)
from mailbot.forms.model import Consents, Institution, Limits, Participant

from .cycle import EVENTS, OPOLE

try:
    from tests.shared import corpus_file, example
except ImportError:  # tests/ on sys.path instead of the repository root
    from shared import corpus_file, example  # type: ignore[no-redef]

EXAMPLE_NAME = "skan_zgloszenie_Lubniany.pdf"

VALUES = FilledValues(
    institution=Institution(
        name="Urząd Miejski w Głogówku",
        address="ul. Rynek 1, 48-250 Głogówek",
        phone="77 406 98 00",
        email="sekretariat@glogowek.pl",
    ),
    participants=[
        Participant(
            "Anna Kowalska-Nowak",
            "Kierownik Referatu",
            "601 234 567",
            "a.kowalska@glogowek.pl",
        ),
        Participant(
            "Piotr Zieliński", "Sekretarz", "(077) 4069811", "p.zielinski@glogowek.pl"
        ),
    ],
    workshops={"B"},
    remarks="dieta wegetariańska",
    consents=Consents(data_processing=True, newsletter=True),
    place_date="Głogówek, 8.04.2016",
)


def example_page() -> Image.Image:
    """The organisers' scanned example (skips without ``../shared``)."""
    path = example(EXAMPLE_NAME)
    image: Image.Image = pdfium.PdfDocument(path)[0].render(scale=300 / 72).to_pil()
    return image.convert("L")


def form_page(dpi: int) -> Image.Image:
    """The project's own filled PDF form, as a printer would put it on paper."""
    doc = pdfium.PdfDocument(make_pdf(OPOLE, VALUES))
    doc.init_forms()
    page = doc[0].render(scale=dpi / 72, grayscale=True, may_draw_forms=True)
    image: Image.Image = page.to_pil()
    return image.convert("L")


def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width``×``height`` with next to no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


# --- the shared example and generated scans (Tesseract) ------------------------------


@pytest.mark.slow
def test_scanned_example_matches_expected_json_exactly() -> None:
    path = example(EXAMPLE_NAME)
    expected = json.loads(path.with_name(path.name + ".expected.json").read_text("utf-8"))
    assert parse_file(path, EVENTS).to_json() == expected


def _rotated_noisy(page: Image.Image) -> Image.Image:
    tilted = page.rotate(0.8, Image.Resampling.BICUBIC, fillcolor=255, expand=True)
    noise = Image.effect_noise(tilted.size, 40)
    return Image.blend(tilted, noise, 0.08)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "make"),
    [
        # a PNG named .tiff: the format is sniffed from the bytes
        ("skan.tiff", lambda: encoded(form_page(300), "PNG")),
        # a 200 dpi JPEG, tilted 0.8° and noisy, as from a cheap scanner
        (
            "skan.jpg",
            lambda: encoded(_rotated_noisy(form_page(200)), "JPEG", quality=75),
        ),
        # a two-page TIFF: a blank cover page, then the form
        (
            "skan.tif",
            lambda: encoded(
                Image.new("L", (2480, 3508), 255),
                "TIFF",
                save_all=True,
                append_images=[form_page(300)],
                compression="tiff_deflate",
            ),
        ),
    ],
    ids=["png-named-tiff", "jpeg-200dpi-tilted", "tiff-two-pages"],
)
def test_generated_form_scanned_to_an_image(name: str, make: Any) -> None:
    got = parse_bytes(make(), name, EVENTS)
    assert (got.status, got.format, got.method) == ("ok", "image", "ocr")
    assert got.event == "opole-2016"
    inst = got.institution
    assert inst is not None
    assert inst.name == "Urząd Miejski w Głogówku"
    assert inst.address == "ul. Rynek 1, 48-250 Głogówek"
    assert inst.phone == "+48774069800"
    assert inst.email == "sekretariat@glogowek.pl"
    assert [vars(p) for p in got.participants] == [
        {
            "full_name": "Anna Kowalska-Nowak",
            "position": "Kierownik Referatu",
            "phone": "+48601234567",
            "email": "a.kowalska@glogowek.pl",
        },
        {
            "full_name": "Piotr Zieliński",
            "position": "Sekretarz",
            "phone": "+48774069811",
            "email": "p.zielinski@glogowek.pl",
        },
    ]
    assert got.workshops == ["B"]
    assert got.remarks == "dieta wegetariańska"
    assert got.consents is not None
    assert (got.consents.data_processing, got.consents.newsletter) == (True, True)
    assert got.problems == []


@pytest.mark.slow
def test_an_unclear_tick_is_reported_ambiguous() -> None:
    page = example_page()
    box = find_box(ink_mask(page, 150), (150, 1300, 330, 1420), 40)
    assert box is not None  # option A's empty box
    cx, cy = (box.x0 + box.x1) // 2, (box.y0 + box.y1) // 2
    ImageDraw.Draw(page).rectangle((cx - 3, cy - 3, cx + 2, cy + 2), fill=0)
    got = parse_bytes(encoded(page, "PNG"), "skan.png", EVENTS)
    assert got.status == "ok"
    assert got.workshops == ["A", "B"]  # counted, but a person is asked to confirm
    assert [(p.field, p.code) for p in got.problems] == [("workshops", "ambiguous")]
    assert got.problems[0].message.strip()


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["textract-raw_text.jpg", "textract-raw_text-png-named.tiff"]
)
def test_photos_of_other_text_are_not_forms(name: str) -> None:
    got = parse_file(corpus_file(f"other/{name}"), EVENTS)
    assert (got.status, got.format) == ("not_a_form", "image")
    assert got.reason


@pytest.mark.slow
def test_ocr_timeout_kills_tesseract() -> None:
    limits = Limits(timeout_seconds=0.5)
    scan = encoded(form_page(300), "PDF", resolution=300.0)
    started = time.monotonic()
    got = parse_bytes(scan, "skan.pdf", EVENTS, limits)
    assert (got.status, got.format) == ("unreadable", "pdf")
    assert got.reason == "OCR timed out after 0.5 s"
    assert time.monotonic() - started < 3
    # Tesseract itself is stopped at its deadline, not waited for.
    page = clean_page(form_page(300))
    started = time.monotonic()
    with pytest.raises(FormError, match="OCR timed out after 0.5 s"):
        ocr.run_tesseract(page, "pol", 0.2, limits)
    assert time.monotonic() - started < 1.5


# --- limits: refused before decoding or rendering ----------------------------------------


def test_huge_image_header_is_refused_at_once() -> None:
    started = time.monotonic()
    got = parse_bytes(png_header(30_000, 30_000), "bomb.png", EVENTS)
    assert (got.status, got.format) == ("unreadable", "image")
    assert got.reason is not None
    assert got.reason.startswith("image too large")
    assert "pixels" in got.reason
    assert time.monotonic() - started < 1


def test_image_just_over_the_pixel_limit_is_refused() -> None:
    data = png_header(2001, 1000)
    got = parse_bytes(data, "big.png", EVENTS, Limits(max_image_pixels=2_000_000))
    assert got.status == "unreadable"
    assert got.reason is not None
    assert got.reason.startswith("image too large: ")
    assert got.reason.endswith("2001000 pixels (limit 2000000)")


def test_pdf_embedding_a_huge_image_is_refused_before_rendering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_render(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("rendered a page it should have refused")

    monkeypatch.setattr(pdfium.PdfPage, "render", no_render)
    got = parse_bytes(_pdf_with_image(30_000, 30_000), "bomb.pdf", EVENTS)
    assert (got.status, got.format) == ("unreadable", "pdf")
    assert got.reason == (
        "image too large: 30000×30000 = 900000000 pixels (limit 40000000)"
    )


def test_scan_with_too_many_pages_is_refused_before_rendering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writer = pypdf.PdfWriter()
    scan = io.BytesIO(encoded(form_page(100), "PDF", resolution=100.0))
    for _ in range(2):
        writer.add_page(pypdf.PdfReader(scan).pages[0])
    out = io.BytesIO()
    writer.write(out)

    def no_render(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("rendered a page of a PDF over the page limit")

    monkeypatch.setattr(pdfium.PdfPage, "render", no_render)
    limits = Limits(max_pdf_pages=1)
    got = parse_bytes(out.getvalue(), "skan.pdf", EVENTS, limits)
    assert (got.status, got.format) == ("unreadable", "pdf")
    assert got.reason == "PDF has 2 pages (limit 1)"
    with pytest.raises(FormError, match="PDF has 2 pages"):
        next(render_pdf_pages(out.getvalue(), limits, threading.Lock()))


def test_tiff_with_too_many_pages_is_refused() -> None:
    blank = Image.new("L", (50, 50), 255)
    data = encoded(blank, "TIFF", save_all=True, append_images=[blank, blank])
    got = parse_bytes(data, "skan.tiff", EVENTS, Limits(max_pdf_pages=2))
    assert got.status == "unreadable"
    assert got.reason == "image has 3 pages (limit 2)"


def test_damaged_image_is_unreadable() -> None:
    data = encoded(Image.new("L", (400, 400), 255), "PNG")[:60]
    got = parse_bytes(data, "skan.png", EVENTS)
    assert (got.status, got.format) == ("unreadable", "image")
    assert got.reason


def test_missing_tesseract_tells_the_admin_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    ocr._tesseract_binary.cache_clear()
    try:
        got = parse_bytes(
            encoded(Image.new("L", (100, 100), 255), "PNG"), "a.png", EVENTS
        )
    finally:
        ocr._tesseract_binary.cache_clear()
    assert got.status == "unreadable"
    assert got.reason is not None
    assert "tesseract-ocr tesseract-ocr-pol" in got.reason


@pytest.mark.system
def test_missing_polish_model_tells_the_admin_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ocr, "_LANGUAGES", {})
    monkeypatch.setattr(ocr, "_installed_languages", lambda binary: frozenset({"eng"}))
    got = parse_bytes(encoded(Image.new("L", (100, 100), 255), "PNG"), "a.png", EVENTS)
    assert got.status == "unreadable"
    assert got.reason is not None
    assert "Polish model" in got.reason
    assert "tesseract-ocr-pol" in got.reason


# --- pixels: pages, tick boxes ---------------------------------------------------------


def test_images_become_upright_grayscale_a4_pages() -> None:
    rgba = Image.new("RGBA", (1240, 1754), (0, 0, 0, 0))  # transparent = paper
    ImageDraw.Draw(rgba).rectangle((100, 100, 300, 140), fill=(0, 0, 0, 255))
    deep = Image.new("I;16", (1240, 1754), 65535)
    pages = [*open_image(encoded(rgba, "PNG"), Limits())]
    pages += [*open_image(encoded(deep, "PNG"), Limits())]
    for page in pages:
        assert page.mode == "L"
        assert max(page.size) == 3508  # A4 at 300 dpi
    assert pages[0].getpixel((10, 10)) == 255
    assert pages[0].getpixel((400, 240)) == 0
    assert pages[1].getextrema() == (255, 255)


def _box_page(frame: bool, inside: str) -> Image.Image:
    page = Image.new("L", (400, 200), 255)
    draw = ImageDraw.Draw(page)
    if frame:
        draw.rectangle((100, 80, 140, 120), outline=0, width=3)
    if inside == "cross":
        draw.line((96, 76, 146, 126), fill=0, width=4)  # by hand: over the frame
        draw.line((146, 76, 96, 126), fill=0, width=4)
    elif inside == "dot":
        draw.rectangle((117, 97, 123, 103), fill=0)
    elif inside == "tick":
        draw.line((105, 100, 115, 112), fill=0, width=4)
        draw.line((115, 112, 135, 84), fill=0, width=4)
    draw.text((160, 90), "A – Zarządzanie", fill=0)
    return page


@pytest.mark.parametrize(
    ("frame", "inside", "state"),
    [
        (True, "nothing", "empty"),
        (True, "cross", "ticked"),
        (True, "tick", "ticked"),
        (True, "dot", "ambiguous"),
        (False, "nothing", "none"),
        (False, "tick", "ticked"),  # a faint frame that binarises away, or none at all
    ],
)
def test_tick_box_read_from_pixels(frame: bool, inside: str, state: str) -> None:
    ink = ink_mask(_box_page(frame, inside), 128)
    tick = read_tick(ink, (40, 50, 180, 150), (88, 80, 152, 120), 40, before=160)
    assert tick.state == state, tick


def test_a_letter_is_not_a_box() -> None:
    page = Image.new("L", (400, 200), 255)
    draw = ImageDraw.Draw(page)
    draw.line((160, 80, 160, 120), fill=0, width=3)  # a "B"-like stem and bowls
    draw.arc((140, 80, 185, 101), -90, 90, fill=0, width=3)
    draw.arc((140, 99, 190, 120), -90, 90, fill=0, width=3)
    draw.line((160, 80, 162, 80), fill=0, width=3)
    ink = ink_mask(page, 128)
    tick = read_tick(ink, (40, 50, 190, 150), (80, 80, 150, 120), 40, before=160)
    assert tick.state == "none"


# --- repairs and joins ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("read", "repaired"),
    [
        ("urzadQlubniany.pl", "urzad@lubniany.pl"),
        ("urzad©lubniany.pl", "urzad@lubniany.pl"),
        ("urzad(at)lubniany.pl", "urzad@lubniany.pl"),
        ("urzad © lubniany.pl", "urzad@lubniany.pl"),
        ("urzadQ@lubniany.pl", "urzad@lubniany.pl"),
        ("jozefb@©lubniany.pl", "jozefb@lubniany.pl"),
        ("urzadQ©lubniany.pl", "urzad@lubniany.pl"),
        ("grabowski@lubniany.p!", "grabowski@lubniany.pl"),
        ("sekretariat glogowek.pl", "sekretariat@glogowek.pl"),
        ("sekretariat O glogowek.pl", "sekretariat@glogowek.pl"),
        ("a.kowalska@ glogowek.pl", "a.kowalska@glogowek.pl"),
        ("QuirinoQfoo.pl", "Quirino@foo.pl"),
        ("nie mam", "nie mam"),  # nothing valid to make of it: kept as written
        ("brak", "brak"),
        ("aQbQc.pl", "aQbQc.pl"),  # two ways to read it: no guess
    ],
)
def test_email_repairs(read: str, repaired: str) -> None:
    assert ocr.repair_email(read) == repaired


@pytest.mark.parametrize(
    ("read", "repaired"),
    [
        ("77 4O6 98 OO", "77 406 98 00"),
        ("6Ol 234 567", "601 234 567"),
        ("601 234 567", "601 234 567"),
        ("601 234 567 lub 77 4O6 98 OO", "601 234 567 lub 77 406 98 00"),
        ("brak", "brak"),
    ],
)
def test_phone_repairs(read: str, repaired: str) -> None:
    assert ocr.repair_phone(read) == repaired


def test_repairs_touch_only_email_and_phone_fields() -> None:
    values = {"full_name": "Olga Qlik", "email": "oQx.pl", "phone": "6O1 234 567"}
    ocr.repair_values(values)
    assert values == {
        "full_name": "Olga Qlik",
        "email": "o@x.pl",
        "phone": "601 234 567",
    }


def test_wrapped_cell_lines_join_at_a_hyphen() -> None:
    assert (
        _join_lines(["Norbert Krawczyk-", "Grabowski"]) == "Norbert Krawczyk-Grabowski"
    )
    assert (
        _join_lines(["norbert.krawczyk-", "grabowski@lubniany.pl"])
        == "norbert.krawczyk-grabowski@lubniany.pl"
    )
    assert _join_lines(["Naczelnik Wydziału -", "Strategii"]) == (
        "Naczelnik Wydziału - Strategii"
    )
    assert _join_lines(["Naczelnik Wydziału", "Strategii"]) == (
        "Naczelnik Wydziału Strategii"
    )


def test_low_confidence_needs_really_poor_words() -> None:
    confidence = {"Jan": 96.0, "Kowalski": 12.0, "Xq": 3.0, "Vb": 5.0}
    assert not ocr.doubtful("Jan Kowalski", confidence)  # mean 54
    assert ocr.doubtful("Xq Vb", confidence)
    assert not ocr.doubtful(None, confidence)


def _pdf_with_image(width: int, height: int) -> bytes:
    """A one-page PDF drawing an image XObject that claims ``width``×``height``."""
    stream = zlib.compress(b"\x00" * 16)
    content = b"q 595 0 0 842 0 0 cm /Im0 Do Q"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /XObject << /Im0 4 0 R >> >> /Contents 5 0 R >>"
        ),
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d "
        b"/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode "
        b"/Length %d >>\nstream\n"
        % (width, height, len(stream))
        + stream
        + b"\nendstream",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
