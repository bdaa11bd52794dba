"""How many fields does `mailbot parse` read right, per producer and format?

Run:  .venv/bin/python bench/accuracy.py [--kinds pdf-word,scan-200dpi] [--misses 20]

Every generated copy (tests/forms/docxgen.py: Word tables, content controls, running
text, the fillable PDF; tests/forms/pdfgen.py: Word-printed, reportlab-drawn and
flattened PDFs; tests/forms/scangen.py: scans at 150/200/300 dpi, tilted, rotated) is
parsed and compared field by field with what it holds (tests/forms/scoring.py). Per
kind it prints:

- right: fields read exactly right;
- right+caught: right, or wrong but flagged low_confidence (said to be unsure);
- exact: files whose every field is right;
- doubted: right fields flagged anyway (the doubt's cost: a person asked for nothing).

Targets (issue 9): ≥ 99 % of fields right and ≥ 95 % of files exact; on scans a
flagged wrong value counts as caught; ≤ 1 % doubted on clean docx/AcroForm.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mailbot.forms import parse_bytes  # noqa: E402
from tests.forms.cycle import EVENTS  # noqa: E402
from tests.forms.scoring import GenCase, Score, score  # noqa: E402

GENERATORS = ("tests.forms.docxgen", "tests.forms.pdfgen", "tests.forms.scangen")


def _cases(kinds: set[str] | None) -> list[GenCase]:
    out: list[GenCase] = []
    for name in GENERATORS:
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            print(f"({name} not available: {e})")
            continue
        for case in module.cases():
            if kinds is None or case.kind in kinds:
                out.append(case)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", help="comma-separated kinds to run (default: all)")
    parser.add_argument("--misses", type=int, default=15, help="wrong fields to list per kind")
    args = parser.parse_args()
    kinds = set(args.kinds.split(",")) if args.kinds else None
    started = time.monotonic()
    cases = _cases(kinds)
    print(f"{len(cases)} generated copies ({time.monotonic() - started:.1f} s to generate)")
    by_kind: dict[str, Score] = defaultdict(Score)
    seconds: dict[str, float] = defaultdict(float)
    for case in cases:
        t = time.monotonic()
        got = parse_bytes(case.data, case.filename, EVENTS)
        seconds[case.kind] += time.monotonic() - t
        by_kind[case.kind].add(score(got, case.expected, case.label))
    print(f"{'kind':<20}{'files':>6}{'fields':>8}{'right':>9}{'right+caught':>14}{'exact':>9}{'doubted':>9}{'s/file':>8}")
    total = Score()
    for kind in sorted(by_kind):
        s = by_kind[kind]
        total.add(s)
        print(
            f"{kind:<20}{s.files:>6}{s.fields:>8}{100 * s.accuracy:>8.2f}%{100 * s.right_or_caught:>13.2f}%"
            f"{100 * s.exact_files / max(s.files, 1):>8.1f}%{100 * s.doubt_rate:>8.2f}%{seconds[kind] / max(s.files, 1):>8.2f}"
        )
    print(
        f"{'all':<20}{total.files:>6}{total.fields:>8}{100 * total.accuracy:>8.2f}%"
        f"{100 * total.right_or_caught:>13.2f}%{100 * total.exact_files / max(total.files, 1):>8.1f}%"
        f"{100 * total.doubt_rate:>8.2f}%"
    )
    for kind in sorted(by_kind):
        misses = by_kind[kind].misses
        if misses:
            print(f"\n{kind}: {len(misses)} wrong field(s), not flagged")
            for line in misses[: args.misses]:
                print("  " + line)


if __name__ == "__main__":
    main()
