"""The label vocabulary (config/labels.toml) and tolerant label matching.

Labels are configuration, not code: organisers reword their forms and participants
retype them, so the admin must be able to add a variant without a release. Matching
folds case and diacritics, ignores punctuation and a trailing colon, and allows a
small edit distance on longer labels.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mailbot.errors import ConfigError
from mailbot.resources import default_config_dir
from mailbot.forms.normalize import fold

__all__ = [
    "DEFAULT_VOCABULARY_PATH",
    "LabelMatch",
    "Vocabulary",
    "default_vocabulary",
    "load_vocabulary",
]

log = logging.getLogger(__name__)

DEFAULT_VOCABULARY_PATH = default_config_dir() / "labels.toml"
"""The shipped vocabulary: ``config/labels.toml`` of the source tree or of the wheel."""

_TOKEN = re.compile(r"[a-z0-9@]+(?:[-'][a-z0-9@]+)*")
# What may follow a label in running text before its value: a colon, a tab, a fill-in
# run, a dash or "=". Without one, "Urząd Miejski w Nysie" would read as label "Urząd".
_DELIMITER = re.compile(
    r"[ \u00a0]*[)\]*]*[ \u00a0]*(?::|\t|\.{2,}|…|_{2,}|\.?[ \u00a0]*[-–—=](?=\s)|\.(?=\s)|\.?$|$)"
)
_COLON = re.compile(":")
_VALUE_SEPARATOR = re.compile(r"[:\t]")
_FUZZY_END = re.compile(r":|\t|\.{2,}|…|_{2,}")
_VALUE_LEAD = re.compile(r"[\s:=…_.\-–—]*")
_NUMBERING = re.compile(r"^\s*(?:\d{1,2}|[IVX]{1,4}|[a-h])[.)]\s+")
_LEADING_LETTER = re.compile(r"\b([A-Ha-h])\s*[–—\-).:]?\s*$")


@dataclass(frozen=True, slots=True)
class _Token:
    norm: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Label:
    text: str
    tokens: tuple[str, ...]
    joined: str
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LabelMatch:
    """A label found in a text: the fields it may stand for and where its value starts."""

    keys: tuple[str, ...]
    label: str
    value_start: int
    exact: bool


_R = TypeVar("_R")
_MEMO_SIZE = 8192
_MEMO_TEXT = 1000


def _memoized(
    method: Callable[[Vocabulary, str], _R],
) -> Callable[[Vocabulary, str], _R]:
    """Cache a pure ``Vocabulary`` question about one line (an immutable answer): the
    extractor asks each line several of them, and forms repeat the same lines."""
    name = method.__name__

    @functools.wraps(method)
    def cached(self: Vocabulary, text: str) -> _R:
        if len(text) > _MEMO_TEXT:  # not worth keeping (nor its memory)
            return method(self, text)
        key = (name, text)
        try:
            return self._memo[key]  # type: ignore[no-any-return]
        except KeyError:
            pass
        found = method(self, text)
        if len(self._memo) > _MEMO_SIZE:
            self._memo.clear()
        self._memo[key] = found
        return found

    return cached


@functools.lru_cache(maxsize=8192)
def _tokens(text: str, limit: int = 10_000) -> tuple[_Token, ...]:
    """Folded word tokens with their offsets; cached because every line is asked
    several questions (section? consent? label?) and forms repeat the same lines."""
    folded = fold(text)
    out: list[_Token] = []
    for m in _TOKEN.finditer(folded):
        out.append(
            _Token(m.group().replace("-", "").replace("'", ""), m.start(), m.end())
        )
        if len(out) >= limit:
            break
    return tuple(out)


def _levenshtein(a: str, b: str, limit: int) -> int:
    """Edit distance, giving up (returning ``limit + 1``) once it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        best = i
        for j, cb in enumerate(b, 1):
            cost = min(
                previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)
            )
            current.append(cost)
            best = min(best, cost)
        if best > limit:
            return limit + 1
        previous = current
    return previous[-1]


def _typo_distance(a: str, b: str, limit: int) -> int:
    """Edit distance counting a swap of two neighbours as one typo ("instytucij",
    "e-mial"); gives up (returning ``limit + 1``) once it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        best = i
        for j, cb in enumerate(b, 1):
            cost = min(
                previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)
            )
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, before[j - 2] + 1)
            current.append(cost)
            best = min(best, cost)
        if best > limit:
            return limit + 1
        before, previous = previous, current
    return previous[-1]


def _max_distance(length: int) -> int:
    """Typos tolerated in a label of ``length`` characters: none in "Adres" or "Uwagi"
    (a typo there is another word), one in "Telefon" ("Telefom")."""
    if length < 6:
        return 0
    if length < 16:
        return 1
    if length < 30:
        return 2
    return 3


class Vocabulary:
    """Parsed labels.toml with the lookups the extractor needs."""

    def __init__(self, data: Mapping[str, Any], source: str = "<memory>") -> None:
        self.source = source
        try:
            fields = _str_lists(data.get("fields", {}), "fields")
            self.sections = _str_lists(data.get("sections", {}), "sections")
            self.workshops = _str_lists(data.get("workshops", {}), "workshops")
            self.consents = _str_lists(data.get("consents", {}), "consents")
            form = data.get("form", {})
            self.titles = _str_list(form.get("title", []), "form.title")
            event = data.get("event", {})
            self.event_header = _str_list(event.get("header", []), "event.header")
            self.not_event = _str_list(event.get("not_event", []), "event.not_event")
            self.placeholders = _str_list(
                data.get("placeholders", {}).get("texts", []), "placeholders.texts"
            )
            table = data.get("participants_table", {})
            self.table_columns = _str_list(
                table.get("columns", []), "participants_table.columns"
            )
            self.table_required = _str_list(
                table.get("required", []), "participants_table.required"
            )
            self.table_min_columns = int(table.get("min_columns", 2))
        except (AttributeError, TypeError, ValueError) as e:
            raise ConfigError(f"{source}: invalid label vocabulary: {e}") from e
        if not fields:
            raise ConfigError(f"{source}: label vocabulary has no [fields]")
        self.fields = fields

        by_text: dict[str, list[str]] = {}
        for key, variants in fields.items():
            for variant in variants:
                by_text.setdefault(variant, []).append(key)
        labels: list[_Label] = []
        for text, keys in by_text.items():
            toks = tuple(t.norm for t in _tokens(text))
            if toks:
                labels.append(_Label(text, toks, " ".join(toks), tuple(keys)))
        # Longest first so "Adres e-mail" wins over "Adres".
        labels.sort(key=lambda lb: (-len(lb.tokens), -len(lb.joined)))
        self._labels = labels
        self._by_first: dict[str, list[_Label]] = {}
        self._by_joined: dict[str, _Label] = {}
        for lb in labels:
            self._by_first.setdefault(lb.tokens[0], []).append(lb)
            self._by_joined.setdefault(lb.joined, lb)

        self._sections = _phrase_index(self.sections)
        # A heading starts with a section phrase's first word: most lines are rejected
        # by this set lookup before the phrases are compared one by one.
        self._section_first = frozenset(phrase[0] for _, phrase in self._sections)
        self._workshop_phrases = [
            (letter, " ".join(t.norm for t in _tokens(p)))
            for letter, phrases in self.workshops.items()
            for p in phrases
        ]
        self._consent_phrases = [
            (key, " ".join(t.norm for t in _tokens(p)))
            for key, phrases in self.consents.items()
            for p in phrases
        ]
        self._titles = [" ".join(t.norm for t in _tokens(p)) for p in self.titles]
        self._cell_cache: dict[str, LabelMatch | None] = {}
        self._memo: dict[tuple[str, str], Any] = {}
        self._not_event = [fold(p) for p in self.not_event]
        self._header = [" ".join(t.norm for t in _tokens(p)) for p in self.event_header]

    # --- labels ---------------------------------------------------------------------

    def match_cell(self, text: str) -> LabelMatch | None:
        """The whole ``text`` is a label (a table label cell or a control's alias)."""
        if text in self._cell_cache:
            return self._cell_cache[text]
        found = self._match_cell(text)
        if len(self._cell_cache) > 8192:
            self._cell_cache.clear()
        self._cell_cache[text] = found
        return found

    def _match_cell(self, text: str) -> LabelMatch | None:
        toks = _tokens(text, limit=16)
        if not toks or len(toks) > 14:
            return None
        joined = " ".join(t.norm for t in toks)
        hit = self._by_joined.get(joined)
        if hit is not None:
            return self._found(hit, text, len(text), exact=True)
        # A label with an explanation in brackets: "Telefon (stacjonarny)".
        bare = re.sub(r"\([^)]*\)", " ", text)
        if bare != text:
            bare_toks = _tokens(bare, limit=16)
            hit = self._by_joined.get(" ".join(t.norm for t in bare_toks))
            if hit is not None:
                return self._found(hit, text, len(text), exact=True)
        limit = _max_distance(len(joined))
        if limit == 0:
            return None
        best: tuple[int, _Label] | None = None
        for lb in self._labels:
            if abs(len(lb.joined) - len(joined)) > limit:
                continue
            # Typos sit inside words: a label that neither starts nor ends alike is not it.
            if lb.joined[0] != joined[0] and lb.joined[-3:] != joined[-3:]:
                continue
            # Within the typos both the text and the label tolerate: a distance over the
            # label's own limit only says "too far", it must not beat a real match.
            allowed = min(limit, _max_distance(len(lb.joined)))
            d = _typo_distance(lb.joined, joined, allowed)
            if d <= allowed and (best is None or d < best[0]):
                best = (d, lb)
        if best is None:
            return None
        return self._found(best[1], text, len(text), exact=False)

    def match_prefix(self, text: str, *, strict: bool = False) -> LabelMatch | None:
        """``text`` starts with a label followed by a delimiter (":", tab, dots, dash).

        ``strict`` demands a colon (used for labels found mid-line, where a bare word
        such as "Urząd" is far more likely part of a value).
        """
        toks = _tokens(text, limit=16)
        if not toks:
            return None
        for lb in self._by_first.get(toks[0].norm, ()):
            n = len(lb.tokens)
            if n > len(toks) or any(toks[i].norm != lb.tokens[i] for i in range(1, n)):
                continue
            if _VALUE_SEPARATOR.search(text, toks[0].end, toks[n - 1].start):
                continue  # "Telefon: kom. 601…" is "Telefon" and its value
            start = self._value_start(text, toks[n - 1].end, strict)
            if start is not None:
                return self._found(lb, text, start, exact=True)
        # A reworded or mistyped label: whatever stands before the first delimiter
        # (only a colon mid-line), matched as a whole label.
        ends = (_COLON if strict else _FUZZY_END).finditer(text, 0, 91)
        for end in itertools.islice(ends, 3):
            if end.start() == 0:
                continue
            hit = self.match_cell(text[: end.start()])
            if hit is not None:
                return LabelMatch(
                    hit.keys, hit.label, _skip_lead(text, end.end()), hit.exact
                )
        return None

    def split_labelled(self, text: str) -> list[tuple[LabelMatch | None, str]]:
        """Split a line into ``(label, value)`` parts: "Telefon: 1 E-mail: a@b.pl" → two.

        The first part has ``None`` as label when the line does not start with one.
        """
        parts: list[tuple[LabelMatch | None, str]] = []
        first = self.match_prefix(text)
        pos = 0
        label = first
        if first is not None:
            pos = first.value_start
        toks = _tokens(text, limit=60)
        while True:
            nxt: tuple[int, LabelMatch] | None = None
            for tok in toks:
                if tok.start <= pos or tok.start == 0:
                    continue
                if tok.norm not in self._by_first:
                    continue
                before = text[tok.start - 1]
                if not (before.isspace() or before in ",;|"):
                    continue
                hit = self.match_prefix(text[tok.start :], strict=True)
                if hit is not None:
                    nxt = (tok.start, hit)
                    break
            if nxt is None:
                parts.append((label, text[pos:]))
                return parts
            parts.append((label, text[pos : nxt[0]]))
            label = nxt[1]
            pos = nxt[0] + nxt[1].value_start

    def _value_start(self, text: str, end: int, strict: bool) -> int | None:
        rest = text[end:]
        if strict:
            m = re.match(r"[ \u00a0]*[)\]*]*[ \u00a0]*:", rest)
        else:
            m = _DELIMITER.match(rest)
            if m is None and rest.lstrip().startswith("("):
                # "Adres (ulica, kod, miejscowość): …" with an unlisted explanation.
                close = rest.find(")")
                if 0 < close < 80:
                    m2 = re.match(r"\)\s*:", rest[close:])
                    if m2 is not None:
                        return _skip_lead(text, end + close + m2.end())
        if m is None:
            return None
        return _skip_lead(text, end + m.end())

    def _found(self, lb: _Label, text: str, start: int, *, exact: bool) -> LabelMatch:
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "label %r matched %r -> %s", text[:60], lb.text, ", ".join(lb.keys)
            )
        return LabelMatch(lb.keys, lb.text, start, exact)

    # --- sections, options, consents ------------------------------------------------

    @_memoized
    def match_section(self, text: str) -> tuple[str, int | None] | None:
        """A section heading ("2. Uczestnicy", "Uczestnik 2", "5. Zgody"), with its number."""
        stripped = _NUMBERING.sub("", text, count=1)
        toks = _tokens(stripped, limit=20)
        if not toks or len(toks) > 12 or toks[0].norm not in self._section_first:
            return None
        for name, phrase in self._sections:
            n = len(phrase)
            if n > len(toks) or any(toks[i].norm != phrase[i] for i in range(n)):
                continue
            rest = toks[n:]
            if name == "participant":
                if len(rest) >= 1 and rest[0].norm.isdigit() and len(rest) <= 2:
                    return name, int(rest[0].norm)
                continue
            tail = stripped[toks[n - 1].end :].strip()
            if not tail or tail.startswith(("(", ":")) and len(rest) <= 6:
                if tail.startswith(":") and tail[1:].strip():
                    continue  # "Uczestnicy: Jan Kowalski" is data, not a heading
                return name, None
        return None

    @_memoized
    def match_consent(self, text: str) -> str | None:
        """Which consent a line is the tick box of, if any."""
        return _first_phrase(text, self._consent_phrases)

    @_memoized
    def match_workshop(self, text: str) -> str | None:
        """The workshop letter whose option text the line contains."""
        return _first_phrase(text, self._workshop_phrases)

    def find_workshops(self, text: str) -> list[tuple[str, int, int]]:
        """Every option a line names, in order: ``(letter, start, end)`` of its wording,
        ``start`` at its letter when one leads it ("B – Zarządzanie …")."""
        toks = _tokens(text, limit=60)
        norms = [t.norm for t in toks]
        found: dict[str, tuple[int, int]] = {}
        for letter, phrase in self._workshop_phrases:
            words = phrase.split()
            n = len(words)
            for i in range(len(norms) - n + 1):
                if letter not in found and norms[i : i + n] == words:
                    start = toks[i].start
                    m = _LEADING_LETTER.search(text, 0, start)
                    if m is not None and m.group(1).upper() == letter:
                        start = m.start(1)
                    found[letter] = (start, toks[i + n - 1].end)
        return sorted(
            ((letter, a, b) for letter, (a, b) in found.items()), key=lambda f: f[1]
        )

    @property
    def workshop_letters(self) -> frozenset[str]:
        return frozenset(self.workshops)

    @_memoized
    def is_title(self, text: str) -> bool:
        joined = " ".join(t.norm for t in _tokens(text, limit=20))
        return any(joined.startswith(t) for t in self._titles if t)

    @_memoized
    def is_event_header(self, text: str) -> bool:
        joined = " " + " ".join(t.norm for t in _tokens(text, limit=30)) + " "
        return any(f" {h} " in joined for h in self._header if h)

    def is_not_event(self, text: str) -> bool:
        folded = fold(text)
        return any(p in folded for p in self._not_event)


def _skip_lead(text: str, pos: int) -> int:
    m = _VALUE_LEAD.match(text, pos)
    return m.end() if m else pos


def _phrase_index(
    sections: Mapping[str, Sequence[str]],
) -> list[tuple[str, tuple[str, ...]]]:
    out = [
        (name, tuple(t.norm for t in _tokens(p)))
        for name, phrases in sections.items()
        for p in phrases
    ]
    out = [(n, p) for n, p in out if p]
    out.sort(key=lambda item: -len(item[1]))
    return out


def _str_list(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{where} must be a list of strings")
    return tuple(value)


def _str_lists(value: object, where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise TypeError(f"[{where}] must be a table")
    return {str(k): _str_list(v, f"{where}.{k}") for k, v in value.items()}


def load_vocabulary(path: Path | str | None = None) -> Vocabulary:
    """Load a labels.toml (the packaged default when ``path`` is ``None``).

    Raises ``ConfigError`` when the file is missing or malformed: that is an admin's
    mistake to report, not a form to reject.
    """
    target = Path(path) if path is not None else DEFAULT_VOCABULARY_PATH
    try:
        with target.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as e:
        raise ConfigError(f"cannot read label vocabulary {target}: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"invalid TOML in label vocabulary {target}: {e}") from e
    return Vocabulary(data, source=str(target))


@functools.lru_cache(maxsize=1)
def default_vocabulary() -> Vocabulary:
    """The packaged vocabulary, loaded once per process."""
    return load_vocabulary(None)


def _first_phrase(text: str, phrases: Iterable[tuple[str, str]]) -> str | None:
    """The key of the first phrase the text contains as whole folded words."""
    joined = " " + " ".join(t.norm for t in _tokens(text, limit=60)) + " "
    for key, phrase in phrases:
        if f" {phrase} " in joined:
            return key
    return None
