"""How long does reading a reply for a withdrawal take, on real replies and on hostile text?

Run:  .venv/bin/python bench/intent.py [--seconds 1]

Every message mailbot ingests goes through `detect_withdrawal` in the daemon process
itself (not in the sandboxed parse worker), so its cost must stay small and linear
whatever a sender puts in the body. For each input this prints the time per call and
the ratio to a baseline measured in the same run on the same text: one pass of
`re.findall(r"\\w+")` over it (the cheapest thing that reads every character).

No target is asserted; a ratio that grows with the input size is the thing to look for
(it was quadratic on runs of whitespace before the regexes were fixed).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mailbot.intent import detect_withdrawal, strip_quoted  # noqa: E402

REPLY = (
    "Dzień dobry,\n\nniestety z powodu obowiązków służbowych rezygnuję z udziału w konferencji.\n\n"
    "Z poważaniem\nTomasz Lis\n\n"
    "W dniu 01.04.2016 o 09:00, zgloszenia@partnerstwa.example.pl pisze:\n"
    + "> Dzień dobry,\n> dziękujemy za przesłanie zgłoszenia. Potwierdzamy udział w konferencji.\n" * 20
)
OUTLOOK = (
    "Rezygnujemy.\n\nOd: Zgłoszenia\nWysłano: 1 kwietnia 2016 09:00\nDo: Jan Nowak\nTemat: Potwierdzenie\n\n"
    + "Treść poprzedniej wiadomości.\n" * 200
)
INPUTS: dict[str, str] = {
    "reply, quoted ack (2 KB)": REPLY,
    "Outlook reply (6 KB)": OUTLOOK,
    "100 KB of whitespace": " " * 100_000 + "x",
    "1 MB of whitespace": " " * 1_000_000 + "x",
    "1 MB of short lines": "Od: \n" * 200_000,
    "1 MB of '>' quotes": "> rezygnuję\n" * 83_000,
}


def per_call(fn: Callable[[], object], seconds: float) -> float:
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    words = re.compile(r"\w+")
    print(f"{'input':28} {'detect_withdrawal':>18} {'strip_quoted':>14} {'baseline':>10} {'ratio':>7}")
    for name, text in INPUTS.items():
        detect = per_call(lambda: detect_withdrawal("Re: Potwierdzenie", text), args.seconds)
        strip = per_call(lambda: strip_quoted(text), args.seconds)
        base = per_call(lambda: words.findall(text), args.seconds)
        print(f"{name:28} {detect * 1e3:15.3f} ms {strip * 1e3:11.3f} ms {base * 1e3:7.3f} ms {detect / base:7.2f}")


if __name__ == "__main__":
    main()
