"""Cross-checks that catch misread values: each value against the others on the form.

A reader can return a well-formed value that is still wrong: OCR turns
``jan.kowalski@nysa.pl`` into ``jan.kowalskl@nysa.pl``, a wrapped cell loses a letter.
Such a value passes every syntax check, so it is held against what else the form says:

- the e-mail's local part against the person's name, transliterated the Polish way
  (``Ćwik-Górska`` ↔ ``cwik-gorska``; ``ł`` → ``l``);
- the e-mail's domain against the institution's, the other participants' and the big
  Polish mail providers';
- a first name against the Polish first-name lists Faker ships (drawn from the PESEL
  registry's most common names): "Michat" is one letter from "Michał";
- a phone number against the numbering plan (phonenumbers).

A check either *agrees* (evidence the value is right), points to *one close
alternative* (edit distance 1–2: evidence of a misread, with the alternative as a
suggestion), or says nothing. Nothing here replaces a value: the caller keeps what the
person wrote and records the suggestion beside it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from rapidfuzz.distance import Levenshtein

from mailbot.forms.normalize import fold, phone_assigned

__all__ = [
    "Verdict",
    "check_domain",
    "check_first_name",
    "check_local_part",
    "phone_assigned",
]

Outcome = Literal["agrees", "close", "unrelated"]


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    suggestion: str | None = None
    """For ``close``: the value with the one alternative put in."""


UNRELATED = Verdict("unrelated")
AGREES = Verdict("agrees")

# Mail providers most Polish offices and people use; a domain one letter away from
# one of them is a misread, not a new provider.
PUBLIC_DOMAINS = frozenset(
    {
        "gmail.com",
        "wp.pl",
        "o2.pl",
        "onet.pl",
        "onet.eu",
        "op.pl",
        "interia.pl",
        "interia.eu",
        "poczta.onet.pl",
        "poczta.fm",
        "tlen.pl",
        "gazeta.pl",
        "vp.pl",
        "outlook.com",
        "hotmail.com",
        "yahoo.com",
        "icloud.com",
    }
)

_SEPARATORS = re.compile(r"[._\-+]")
_TRAILING_DIGITS = re.compile(r"\d+$")


def _name_tokens(full_name: str) -> list[str]:
    """The name's words and the parts of a double-barrelled surname, transliterated."""
    out: list[str] = []
    for word in re.split(r"\s+", fold(full_name).strip()):
        word = word.strip(".,;()")
        if not word:
            continue
        out.append(word)
        if "-" in word:
            out.extend(p for p in word.split("-") if p)
    return out


def _segment_forms(tokens: Sequence[str]) -> set[str]:
    """What one segment of a local part may spell: a name word, an initial plus a word
    (``jkowalski``), a word plus an initial (``kowalskij``) or two words run together."""
    forms = set(tokens)
    for a in tokens:
        for b in tokens:
            if a == b:
                continue
            forms.add(a[0] + b)
            forms.add(a + b[0])
            forms.add(a + b)
            forms.add(a + "-" + b)
    return forms


def check_local_part(email: str, full_name: str | None) -> Verdict:
    """The local part against the person's name.

    Split at ``.``/``_``/``-``/``+``, each segment should be a word of the name, an
    initial, or a word and an initial run together. A segment of five letters or more
    one edit away from such a form (two for nine letters or more) is a likely misread;
    the suggestion puts that form in. Role mailboxes (``sekretariat@``) and nicknames
    (``kasia.nowak@``) are unrelated to the name, not close to it: no verdict.
    """
    if not full_name or "@" not in email:
        return UNRELATED
    local, _, domain = email.rpartition("@")
    tokens = [t for t in _name_tokens(full_name) if len(t) >= 2]
    if not tokens:
        return UNRELATED
    forms = _segment_forms(tokens)
    folded = fold(local)
    if folded.replace("-", "") in {f.replace("-", "") for f in forms}:
        return AGREES
    segments = [s for s in _SEPARATORS.split(folded) if s]
    if not segments:
        return UNRELATED
    matched = 0
    fixes: dict[str, str] = {}
    for segment in segments:
        core = _TRAILING_DIGITS.sub("", segment)  # "jkowalski2": the digits are chosen
        if not core or core in forms or (len(core) == 1 and any(t[0] == core for t in tokens)):
            matched += 1
            continue
        if len(core) < 5:
            continue
        allowed = 2 if len(core) >= 9 else 1
        best = _closest(core, tokens, allowed) or _closest(core, forms, allowed)
        if best is not None:
            fixes[segment] = best + segment[len(core) :]
    if matched == len(segments):
        return AGREES
    if fixes and matched + len(fixes) == len(segments):
        parts = re.split(r"([._\-+])", local)
        rebuilt = "".join(fixes.get(fold(p), p) for p in parts)
        return Verdict("close", f"{rebuilt}@{domain}")
    return UNRELATED


def _closest(word: str, candidates: Iterable[str], allowed: int) -> str | None:
    """The one candidate within ``allowed`` edits of ``word`` (``None`` if none or a tie)."""
    best: list[tuple[int, str]] = []
    for candidate in candidates:
        if abs(len(candidate) - len(word)) > allowed or candidate == word:
            continue
        d = Levenshtein.distance(word, candidate, score_cutoff=allowed)
        if d <= allowed:
            best.append((d, candidate))
    if not best:
        return None
    best.sort()
    if len(best) > 1 and best[0][0] == best[1][0] and best[0][1] != best[1][1]:
        return None  # two equally close readings: no single alternative to propose
    return best[0][1]


def check_domain(email: str, known: Iterable[str]) -> Verdict:
    """The domain against domains the form (or the big providers) make likely.

    ``known`` holds the institution's and the other participants' domains. Equal to one
    of them, or to a public provider, agrees; one edit from one of them (two for ten
    letters or more) is close, with that domain suggested.
    """
    if "@" not in email:
        return UNRELATED
    local, _, domain = email.rpartition("@")
    domain = domain.lower()
    likely = {d.lower() for d in known if d} | PUBLIC_DOMAINS
    if domain in likely:
        return AGREES
    allowed = 2 if len(domain) >= 10 else 1
    best = _closest(domain, likely, allowed)
    if best is None:
        return UNRELATED
    return Verdict("close", f"{local}@{best}")


@functools.lru_cache(maxsize=1)
def _first_names() -> frozenset[str]:
    from faker.providers.person.pl_PL import Provider

    names: set[str] = set()
    for attr in ("first_names_male", "first_names_female", "first_names"):
        values = getattr(Provider, attr, ())
        names.update(values.keys() if isinstance(values, dict) else values)
    return frozenset(n for n in names if isinstance(n, str) and n.isalpha())


def check_first_name(full_name: str | None) -> Verdict:
    """A name none of whose words is a known first name, one of which is one letter
    from exactly one ("Michat Nowak" → "Michał Nowak"). A name with any known first
    name agrees; a rare name close to nothing says nothing."""
    if not full_name:
        return UNRELATED
    names = _first_names()
    words = full_name.split()
    if any(w.strip(".,") in names for w in words):
        return AGREES
    by_fold: dict[str, list[str]] = {}
    for name in names:
        by_fold.setdefault(name.lower(), []).append(name)
    fixes: list[tuple[int, str]] = []
    for i, word in enumerate(words):
        bare = word.strip(".,")
        if len(bare) < 4 or not bare.isalpha():
            continue
        best = _closest(bare.lower(), by_fold, 1)
        if best is not None:
            fixes.append((i, by_fold[best][0]))
    if len(fixes) != 1:
        return UNRELATED
    i, name = fixes[0]
    suggested = [*words[:i], name, *words[i + 1 :]]
    return Verdict("close", " ".join(suggested))
