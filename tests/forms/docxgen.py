"""Generated .docx and fillable-PDF copies with what reading them must give.

The clean producers (Word tables, content controls, running text, the organisers'
fillable PDF) in every label set, tick style and 1–7 people: the accuracy baseline
and the set the doubt's precision is measured on (a clean copy should carry no
``low_confidence``). Used by ``bench/accuracy.py`` and ``test_confidence``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from mailbot.forms.blank import FilledValues, make_docx, make_pdf
from mailbot.forms.model import Consents, FormData, Problem
from tests.forms.scoring import GenCase
from tests.forms.test_variants import (
    BASE,
    LABEL_SETS,
    NYSA,
    NYSA_READ,
    OPOLE,
    READ,
    TICKS,
    TYPED,
)

__all__ = ["cases"]


def _expected(n: int, *, method: str, workshops: list[str], consents: tuple[bool, bool]) -> FormData:
    problems = [] if consents[0] else [Problem("consents.data_processing", "missing", "-")]
    return FormData(
        file="",
        status="ok",
        format="docx",
        method=method,  # type: ignore[arg-type]
        event="opole-2016",
        institution=NYSA_READ,
        participants=list(READ[:n]),
        workshops=workshops,
        remarks="dieta wegetariańska",
        consents=Consents(*consents),
        problems=problems,
    )


def cases() -> Iterator[GenCase]:
    for n in range(1, 8):
        values = FilledValues(
            institution=NYSA,
            participants=TYPED[:n],
            workshops={"A", "B"} if n % 2 else {"B"},
            remarks="dieta wegetariańska",
            consents=Consents(True, n % 3 == 0),
            place_date="Nysa, 8.04.2016",
        )
        ws = sorted(values.workshops)
        consents = (True, n % 3 == 0)
        for style in ("table", "controls"):
            yield GenCase(
                f"make_docx/{style}/{n}p",
                "docx",
                make_docx(OPOLE, values, style=style, rows=max(3, n)),  # type: ignore[arg-type]
                _expected(n, method="fields" if style == "controls" else "table", workshops=ws, consents=consents),
                "zgloszenie.docx",
            )
        yield GenCase(
            f"make_pdf/{n}p",
            "pdf-fillable",
            make_pdf(OPOLE, values),
            _expected(n, method="fields", workshops=ws, consents=consents),
            "zgloszenie.pdf",
        )
        for layout in ("table", "text"):
            for label_name, labels in LABEL_SETS.items():
                copy = replace(BASE, labels=labels, layout=layout, people=tuple(TYPED[:n]))
                yield GenCase(
                    f"copy/{layout}/{label_name}/{n}p",
                    "docx",
                    copy.docx(),
                    _expected(n, method="table" if layout == "table" else "text", workshops=["A"], consents=(True, False)),
                    "zgloszenie.docx",
                )
    for tick_name, tick in TICKS.items():
        copy = replace(BASE, tick=tick, people=tuple(TYPED[:2]))
        yield GenCase(
            f"copy/tick/{tick_name}",
            "docx",
            copy.docx(),
            _expected(2, method="table", workshops=["A"], consents=(True, False)),
            "zgloszenie.docx",
        )
