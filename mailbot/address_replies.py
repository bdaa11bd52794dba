"""What a reply says about an e-mail address we asked to confirm.

When the form reader doubts a participant's address, whoever registered them is asked:
"we read it as A (czy chodziło o B?) — please confirm or correct it". Their answer settles
the doubt, and the participant then gets their own mail at that address — so a wrong
settlement sends a participant's data to a stranger or into a bounce. As for withdrawals
(:mod:`mailbot.intent`), the rules read only the person's own words (quotes, reply
headers, our own sentences and the signature cut off) and prefer ``unclear`` (a person
reads the mail) to a guess:

- a **new address** in their words settles it to that address, when it is clear whose it
  is (the only doubt, the suggestion we offered, the person named next to it, or the
  one closest to what we read) and nothing around it negates, asks or hedges;
- a **confirmation** ("potwierdzam", "adres jest poprawny", "tak, zgadza się") keeps the
  address as read — but only when we offered no other reading, or they wrote the
  address out: after "czy chodziło o B?" a bare "tak" or "potwierdzam" could mean A or B;
- anything negated, asked, hedged, or a complaint without an address ("adres jest
  błędny") is ``unclear``; a message saying none of this is ``none`` (not about it).

Pure: no I/O, no database, deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from mailbot.intent import MAX_TEXT_CHARS, _fold, mentioned_names, strip_quoted

__all__ = ["CONFIRM_SENTENCE", "AddressAnswer", "Doubt", "Settlement", "read_address_reply"]

CONFIRM_SENTENCE = (
    "Prosimy o odpowiedź na tę wiadomość: wystarczy wpisać właściwy adres, "
    "a jeśli odczytaliśmy dobrze – napisać „potwierdzam”."
)
"""Our own request in the sender's mail (template variable ``confirm_sentence``). It
names the confirmation word, so it is cut from a reply like the withdrawal footer:
a client that quotes without ``>`` must not make us read it as the person's answer."""


@dataclass(frozen=True)
class Doubt:
    """One unconfirmed address a reply may answer about."""

    key: int
    """The caller's id for it (the participant's)."""
    full_name: str | None
    as_read: str
    suggestion: str | None = None


@dataclass(frozen=True)
class Settlement:
    key: int
    address: str
    """The address to keep: ``as_read`` (confirmed) or another one (corrected)."""
    corrected: bool


@dataclass(frozen=True)
class AddressAnswer:
    kind: Literal["none", "settle", "unclear"]
    settlements: tuple[Settlement, ...]
    reason: str
    """One line for the admin log."""


_I = re.IGNORECASE
_ADDRESS = re.compile(r"(?<![\w.+-])[A-Za-z0-9][\w.+'-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?![\w@-])")
_TOKEN = "ADRES{}X"
_TOKEN_RE = re.compile(r"ADRES(\d+)X")


def _sentence_pattern() -> re.Pattern[str]:
    words = re.findall(r"\w+", _fold(CONFIRM_SENTENCE))
    return re.compile(r"\W+".join(words) + r"[^\w\s]{0,3}", _I)


_OUR_SENTENCE = _sentence_pattern()
# The closing formula: what follows signs the message ("Pozdrawiam, Anna …, tel., e-mail").
_SIGN_OFF = re.compile(
    r"^\s*(?:z\s+)?(?:pozdrawiam|pozdrowienia|serdecznie|powazaniem|wyrazami\s+szacunku|dziekuj\w*"
    r"|best\s+regards|kind\s+regards|regards)\b",
    _I | re.MULTILINE,
)

# All on folded text (no diacritics), addresses replaced by ADRESnX tokens.
_CONFIRM = re.compile(
    r"\bpotwierdzam(?:y)?\b(?!\s+(?:udzial|uczestnictw|obecnosc|przyjazd|otrzymani|odbior))"
    r"|\b(?:jest|sa|byl|zostal\w*)\s+(?:\w+\s+)?(?:poprawn|prawidlow|wlasciw|dobr)\w*"
    r"|\b(?:poprawn|prawidlow|wlasciw)\w*\s+(?:jest|sa)\b"
    r"|\b(?:odczytan\w*|wpisan\w*|podan\w*)\s+(?:\w+\s+)?(?:poprawnie|prawidlowo|dobrze)\b"
    r"|\b(?:wszystko\s+)?(?:sie\s+)?zgadza(?:\s+sie)?\b",
    _I,
)
# "Tak", "OK", "w porządku": a confirmation only in a short answer or next to the address
# ("Tak, będę na konferencji" answers something else).
_YES = re.compile(r"^\W*(?:(?:dzien\s+dobry|witam)\W+)?(?:tak|ok|okej)\b|\bw\s+porzadku\b|\bjest\s+(?:ok|okej)\b", _I | re.MULTILINE)
_ABOUT_ADDRESS = re.compile(r"\b(?:adres\w*|e-?mail\w*|mail\w*|poczt\w*)|ADRES\d+X", _I)
_SHORT_ANSWER_WORDS = 8
_NEGATION = re.compile(r"\bnie(?:poprawn|prawidlow|wlasciw|zgodn|aktualn|dobr)?\w*?\b", _I)
_BARE_NO = re.compile(r"^\W*nie\W*(?:[,.!;:–-]|$)", _I)
_WRONG = re.compile(
    r"\b(?:bled\w*|blad\w*|zl[aey]\b|zle|pomyl\w*|omyl\w*|literowk\w*|popraw(?!n)\w*|zmien\w*|zmian\w*"
    r"|inn[yaey]\s+adres\w*)",
    _I,
)
_HEDGE = re.compile(
    r"\b(?:chyba|raczej|moze|byc\s+moze|prawdopodobn\w*|jesli|jezeli|gdyby\w*|o\s+ile|nie\s+wiem"
    r"|nie\s+jestem\s+pew\w*|sprawdze|sprawdzimy|upewnie|upewnimy|dopytam|zapytam|ustale|ustalimy)\b",
    _I,
)
_SENTENCE_END = re.compile(r"[.!?…;]+(?=\s|$)|\n")


def _norm(address: str) -> str:
    return address.strip().strip(".,;:").casefold()


def _own_words(text: str) -> str:
    text = text[:MAX_TEXT_CHARS]
    while (m := _OUR_SENTENCE.search(_fold(text))) is not None:
        text = text[: m.start()] + text[m.end() :]
    own = strip_quoted(text)
    sign_off = _SIGN_OFF.search(_fold(own))
    return own[: sign_off.start()] if sign_off else own


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (short strings: addresses)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _sentences(folded: str) -> list[str]:
    out, start = [], 0
    for m in _SENTENCE_END.finditer(folded):
        out.append(folded[start : m.end()])
        start = m.end()
    out.append(folded[start:])
    return [s for s in out if s.strip()]


def read_address_reply(text: str, doubts: Sequence[Doubt], *, ignore: Collection[str] = ()) -> AddressAnswer:
    """What the reply ``text`` says about ``doubts`` (the unconfirmed addresses of the
    registrations it is tied to). ``ignore``: addresses that are no answer (the
    writer's own, ours, the certain addresses of others on the registration)."""
    if not doubts:
        return AddressAnswer("none", (), "no unconfirmed address to answer about")
    own = _own_words(text)
    ignored = {_norm(a) for a in ignore}
    read = {_norm(d.as_read): d for d in doubts}
    found: list[str] = []
    for m in _ADDRESS.finditer(own):
        found.append(_norm(m.group()))
    tokens = iter(range(len(found)))
    folded = _fold(_ADDRESS.sub(lambda _m: f" {_TOKEN.format(next(tokens))} ", own))
    new = [a for a in dict.fromkeys(found) if a not in read and a not in ignored]
    named = [d for d in doubts if d.full_name and d.full_name in mentioned_names(own, [d.full_name])]

    if "?" in folded:
        return _unclear("a question in the reply")
    hedge = _HEDGE.search(folded)
    if hedge:
        return _unclear(f"hedged ('{hedge.group()}')")

    if new:
        return _corrections(new, found, folded, doubts, named)

    mentioned = [read[a] for a in dict.fromkeys(found) if a in read]
    about = bool(mentioned) or _ABOUT_ADDRESS.search(folded) is not None
    short = len(re.findall(r"\w+", folded)) <= _SHORT_ANSWER_WORDS
    confirm = _CONFIRM.search(folded) or (_YES.search(folded) if about or short else None)
    wrong = _WRONG.search(folded)
    negation = _negation(folded)
    if wrong and (about or confirm):
        return _unclear(f"says '{wrong.group()}' but gives no other address")
    if negation and (about or confirm):
        return _unclear(f"'{negation.group()}' in an answer about the address")
    if not confirm:
        if mentioned:
            return _unclear("repeats the address without saying whether it is right")
        return AddressAnswer("none", (), "no answer about the address in the sender's own words")
    chosen = mentioned or named or list(doubts)
    for d in chosen:
        if d.suggestion and d not in mentioned:
            return _unclear(
                f"'{confirm.group().strip()}' after we asked whether {d.as_read} meant {d.suggestion}: "
                "could mean either"
            )
    return AddressAnswer(
        "settle",
        tuple(Settlement(d.key, d.as_read, corrected=False) for d in chosen),
        f"confirmed ('{confirm.group().strip()}')",
    )


def _corrections(
    new: Sequence[str], found: Sequence[str], folded: str, doubts: Sequence[Doubt], named: Sequence[Doubt]
) -> AddressAnswer:
    """Whose address each new one is, or why that is not clear."""
    sentences = _sentences(folded)
    chosen: dict[int, str] = {}
    for address in new:
        index = found.index(address)
        token = _TOKEN.format(index)
        sentence = next((s for s in sentences if token in s), "")
        negation = _negation(sentence, answer_word_ok=True)
        if negation is not None:
            return _unclear(f"'{negation.group()}' next to {address}")
        owner = _owner(address, sentence, doubts, named)
        if owner is None:
            return _unclear(f"cannot tell whose address {address} is")
        if owner.key in chosen and chosen[owner.key] != address:
            return _unclear(f"two addresses for {owner.full_name or owner.as_read}")
        chosen[owner.key] = address
    by_key = {d.key: d for d in doubts}
    settlements = tuple(
        Settlement(key, address, corrected=address != _norm(by_key[key].as_read)) for key, address in chosen.items()
    )
    what = ", ".join(f"{by_key[s.key].as_read} → {s.address}" for s in settlements)
    return AddressAnswer("settle", settlements, f"corrected ({what})")


def _owner(address: str, sentence: str, doubts: Sequence[Doubt], named: Sequence[Doubt]) -> Doubt | None:
    by_suggestion = [d for d in doubts if d.suggestion and _norm(d.suggestion) == address]
    if len(by_suggestion) == 1:
        return by_suggestion[0]
    if len(doubts) == 1:
        return doubts[0]
    in_sentence = [d for d in named if d.full_name and mentioned_names(sentence, [d.full_name])]
    if len(in_sentence) == 1:
        return in_sentence[0]
    distances = sorted((_distance(address, _norm(d.as_read)), i) for i, d in enumerate(doubts))
    best, index = distances[0]
    if best <= 4 and (len(distances) == 1 or distances[1][0] > best):
        return doubts[index]
    return None


def _negation(folded: str, *, answer_word_ok: bool = False) -> re.Match[str] | None:
    """The first negation; ``answer_word_ok``: a bare "Nie," opening the sentence
    answers our question ("Nie, właściwy adres to …") and negates nothing after it."""
    for m in _NEGATION.finditer(folded):
        if m.group().casefold() == "niestety":
            continue
        if answer_word_ok and not folded[: m.start()].strip(" \t\n-–,.") and _BARE_NO.match(folded[m.start() :]):
            continue
        return m
    return None


def _unclear(why: str) -> AddressAnswer:
    return AddressAnswer("unclear", (), why)
