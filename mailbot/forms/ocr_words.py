"""What the OCR helpers need of a recognised word, so they need not import ``ocr``.

``ocr.Word`` satisfies both protocols; the helpers (``ocr_junk``, ``ocr_vote``,
``ocr_orient``, ``ocr_unread``, ``ocr_accents``) are imported by ``ocr`` and would
otherwise import it back.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

__all__ = ["Boxed", "Scored", "W"]


class Scored(Protocol):
    """A recognised word and Tesseract's confidence in it (0–100)."""

    @property
    def text(self) -> str: ...

    @property
    def conf(self) -> float: ...


class Boxed(Protocol):
    """A recognised word and its box in page pixels."""

    @property
    def x0(self) -> int: ...

    @property
    def y0(self) -> int: ...

    @property
    def x1(self) -> int: ...

    @property
    def y1(self) -> int: ...

    @property
    def text(self) -> str: ...


W = TypeVar("W", bound=Scored)
