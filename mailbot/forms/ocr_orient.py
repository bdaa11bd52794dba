"""Which way up a scanned page is: Tesseract's OSD, checked against the reading.

Scanners hand pages in sideways (90°/270°) or upside down (180°) as often as not.
Tesseract's orientation detection (``--psm 0``, model ``osd.traineddata`` from the
Debian package ``tesseract-ocr-osd``, a dependency of ``tesseract-ocr``) reads a
half-size copy of the page in ~0.5 s. On a page with little text its answer can be
wrong, so ``read_pages`` also judges the words read (``quality``) and, when they are
poor, reads the page once more the other way up and keeps the better reading.
"""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from PIL import Image

from mailbot.forms.ocr_words import Scored

__all__ = ["Orientation", "alternatives", "detect", "good", "quality", "turn"]

# OSD's "Orientation confidence" below which its answer is only a first guess; upright
# and turned form pages score 7–17 here, a half-empty page 0.5–1.
SURE = 2.0
# A page reading counts as good with this many words of ≥ 3 letters read at ≥ 80.
GOOD_WORDS = 25

_OSD_SCALE = 0.5
_ROTATE = re.compile(r"Rotate:\s*(\d+)")
_CONFIDENCE = re.compile(r"Orientation confidence:\s*([\d.]+)")


@dataclass(frozen=True, slots=True)
class Orientation:
    """Degrees to turn the page counter-clockwise (``Image.rotate``) to read it upright."""

    rotate: int
    confidence: float

    @property
    def sure(self) -> bool:
        return self.confidence >= SURE


def detect(
    page: Image.Image, binary: str, dpi: int, timeout: float, env: dict[str, str]
) -> Orientation | None:
    """Tesseract OSD on a half-size copy; ``None`` when it cannot tell (no OSD model,
    too little text, an error). Never raises: orientation is a refinement."""
    small = page.resize(
        (max(1, round(page.width * _OSD_SCALE)), max(1, round(page.height * _OSD_SCALE))),
        Image.Resampling.BOX,
    )
    buf = io.BytesIO()
    small.save(buf, "PNG")
    command = [binary, "stdin", "stdout", "--dpi", str(round(dpi * _OSD_SCALE)), "--psm", "0"]
    try:
        done = subprocess.run(
            command,
            input=buf.getvalue(),
            capture_output=True,
            timeout=max(timeout, 0.001),
            check=False,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = done.stdout.decode("utf-8", "replace")
    rotate, confidence = _ROTATE.search(out), _CONFIDENCE.search(out)
    if done.returncode != 0 or rotate is None or confidence is None:
        return None
    degrees = int(rotate.group(1)) % 360
    if degrees not in (0, 90, 180, 270):
        return None
    # OSD's "Rotate" is clockwise; Image.rotate turns counter-clockwise.
    return Orientation((360 - degrees) % 360, float(confidence.group(1)))


def turn(page: Image.Image, degrees: int) -> Image.Image:
    """``page`` turned counter-clockwise by a multiple of 90° (lossless)."""
    if degrees % 360 == 0:
        return page
    method = {
        90: Image.Transpose.ROTATE_90,
        180: Image.Transpose.ROTATE_180,
        270: Image.Transpose.ROTATE_270,
    }[degrees % 360]
    return page.transpose(method)


def alternatives(page: Image.Image, tried: int) -> list[int]:
    """The orientation to try when the reading at ``tried`` was poor.

    A portrait page is a portrait form the right way up or upside down; a landscape
    one is a form turned a quarter either way. One alternative keeps the cost bounded.
    """
    upright = page.height >= page.width
    if tried in (0, 180):
        return [180 - tried] if upright else [90]
    return [360 - tried] if not upright else [0]


def quality(words: Iterable[Scored]) -> float:
    """How well a page was read: the summed confidence of its well-read real words.

    Upside-down text reads as short junk at low confidence; upright form text gives
    dozens of words of three letters and more at 85–96.
    """
    return sum(
        w.conf
        for w in words
        if w.conf >= 80 and sum(c.isalpha() for c in w.text) >= 3
    )


def good(words: Iterable[Scored]) -> bool:
    """Whether a reading is plainly upright (no other orientation worth a try)."""
    return quality(words) >= 80 * GOOD_WORDS
