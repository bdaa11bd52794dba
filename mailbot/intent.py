"""What a participant's free-text reply asks for: quoted codes, withdrawals, names.

Participants answer our mails in Polish, in every mail client there is, and often below
or above a full quote of what we sent them. Our own footer even tells them how to
withdraw ("…wpisując w treści słowo „rezygnuję”"), so the withdrawal word is present in
nearly every quoted reply. Hence the order of work: first cut the message down to what
the person wrote themselves (:func:`strip_quoted`), then look for a withdrawal only there.

A cancellation is acted on automatically and cannot be undone for the participant (their
seat goes to the next person waiting), so :func:`detect_withdrawal` prefers ``"unclear"``
(a person reads the mail) over a wrong ``"cancel"``: anything negated, asked, conditional,
hedged, partial ("rezygnuję z noclegu") or combined with a substitute goes to review.
Missing a cancellation only costs the admin a look; a wrong one costs a participant
their seat.

Everything here is pure: no I/O, no database, deterministic for the same input. Matching
is done on *folded* text (diacritics stripped, ``ł`` → ``l``) that keeps the length and
the letter case of the original, so a match can be cut back out of the original words
for the admin log, and names can be told apart from ordinary words by their capital.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "FOOTER_SENTENCE",
    "Question",
    "Withdrawal",
    "detect_question",
    "detect_withdrawal",
    "find_codes",
    "mentioned_names",
    "strip_quoted",
]

FOOTER_SENTENCE = (
    "Aby zrezygnować z udziału, wystarczy odpowiedzieć na tę wiadomość, "
    "wpisując w treści słowo „rezygnuję”."
)
"""Our own footer sentence (``templating.WITHDRAWAL_SENTENCE``); never the person's words."""


# --- folding ------------------------------------------------------------------------


def _build_fold_table() -> dict[int, str]:
    """One output char per input char: strip accents, keep case, unify odd spaces/dashes."""
    table: dict[int, str] = {}
    for code in range(0x80, 0x250):
        base = unicodedata.normalize("NFKD", chr(code))[:1]
        if base.isascii() and base.isalpha():
            table[code] = base
    table.update({ord("ł"): "l", ord("Ł"): "L", ord("ß"): "s", ord("ø"): "o", ord("Ø"): "O"})
    for ch in "\u00a0\u2002\u2003\u2007\u2009\u200a\u202f\t":
        table[ord(ch)] = " "
    for ch in "\u2010\u2011\u2012\u2013\u2014\u2212":
        table[ord(ch)] = "-"
    return table


_FOLD_TABLE = _build_fold_table()


def _fold(text: str) -> str:
    """``text`` without diacritics, same length and case (regexes use IGNORECASE)."""
    return text.translate(_FOLD_TABLE)


def _collapse(text: str) -> str:
    return " ".join(text.split())


# --- own words: strip quotes, reply headers, signatures, our footer ---------------------

_I = re.IGNORECASE

# "-----Original Message-----", "---------- Forwarded message ---------", Thunderbird's
# "-------- Przekazana wiadomość --------", Onet/WP "----- Oryginalna wiadomość -----".
_SEPARATOR = re.compile(
    r"^\s*[-_=*]{2,}\s*(?:original\s+message|forwarded\s+message|wiadomosc\s+oryginalna"
    r"|oryginalna\s+wiadomosc|wiadomosc\s+przekazana(?:\s+dalej)?|przekazana\s+wiadomosc"
    r"|tresc\s+przekazanej\s+wiadomosci)\s*[-_=*]{2,}\s*$",
    _I,
)
# Apple Mail's forward intro and its Polish reply attribution (which ends in a date, not
# in a verb): "Begin forwarded message:", "Wiadomość napisana przez X w dniu …:".
_INTRO = re.compile(
    r"^\s*(?:begin\s+forwarded\s+message|poczatek\s+przekazywanej\s+wiadomosci)\s*:?\s*$"
    r"|^\s*wiadomosc\s+napisana\s+przez\b",
    _I,
)
# Reply attributions end in a verb and a colon ("… pisze:", "… napisał(a):", "… wrote:")
# and may be wrapped over up to three lines by Gmail.
_ATTRIBUTION_END = re.compile(
    r"(?:napisal\s*\(\s*-?a\s*\)|napisal/a|napisal|napisala|napisali|pisze|wrote)\s*:\s*$", _I
)
# How an attribution starts: "W dniu …", "Dnia …", "On …", Gmail PL "wt., 12 kwi …",
# a bare date "2016-04-12 …"; used to find its first line when it is wrapped.
_ATTRIBUTION_START = re.compile(
    r"^\s*(?:w\s+dniu|dnia|on|am|le|(?:pon|wt|sr|czw|pt|sob|niedz?|mon|tue|wed|thu|fri|sat|sun)"
    r"[a-z]*\.?,|\d{1,4}[-./]\d{1,2})(?:\s|$)",
    _I,
)
# Outlook/Interia/Thunderbird header block: "Od: … / Wysłano: … / Do: … / Temat: …",
# "From: … / Sent: … / To: … / Subject: …", possibly bold ("*From:*") after HTML→text.
_HEADER_FIELD = re.compile(
    r"^[\s*]*(od|from|nadawca|wyslano|wyslane|sent|data|date|do|to|adresat|dw|cc|udw|bcc"
    r"|kopia|temat|subject)[\s*]*:",
    _I,
)
_FROM_FIELDS = frozenset({"od", "from", "nadawca"})
_SIGNATURE = re.compile(r"^--\s*$")
_QUOTED = re.compile(r"^\s*>")
_RULE_LINE = re.compile(r"^[\s\-_=*]*$")  # blank or a separator line ("_____")


def _footer_pattern() -> re.Pattern[str]:
    # Word by word with any non-word run in between: survives re-wrapping, '>' prefixes,
    # and clients that turn „…” into "…".
    words = re.findall(r"\w+", _fold(FOOTER_SENTENCE))
    return re.compile(r"\W+".join(words) + r"[^\w\s]{0,3}", _I)


_FOOTER = _footer_pattern()


def _remove_footer(text: str) -> str:
    while True:
        m = _FOOTER.search(_fold(text))
        if not m:
            return text
        text = text[: m.start()] + text[m.end() :]


def _header_block_at(lines: Sequence[str], i: int) -> bool:
    """Whether an Outlook-style header block (from + two other fields) starts at ``i``."""
    fields: set[str] = set()
    blanks = 0
    for line in lines[i : i + 10]:
        m = _HEADER_FIELD.match(line)
        if m:
            fields.add(m.group(1).lower())
            blanks = 0
        elif not line.strip() and blanks == 0 and fields:
            blanks += 1  # HTML-to-text conversions sometimes space the fields out
        else:
            break
    return bool(fields & _FROM_FIELDS) and len(fields) >= 3


def _attribution_start(lines: Sequence[str], j: int) -> int | None:
    """First line of a reply attribution ending on line ``j``, or None if it is not one."""
    for k in range(max(0, j - 2), j + 1):
        # A wrapped attribution has no blank line and no sentence end inside it.
        if any(not line.strip() or line.rstrip().endswith((".", "!", "?")) for line in lines[k:j]):
            continue
        joined = " ".join(lines[k : j + 1])
        if len(joined) <= 300 and _ATTRIBUTION_START.match(lines[k]) and re.search(r"\d|@", joined):
            return k
    # No recognisable opener: a single line with a date or an address still is one
    # ("pon., 12 kwi 2021 o 10:15 Jan <jan@x.pl> napisał(a):" wrapped oddly, Onet).
    if len(lines[j]) <= 300 and re.search(r"\d|@", lines[j]):
        return j
    return None


def strip_quoted(text: str) -> str:
    """The part of a reply the person wrote themselves.

    Drops ``>`` lines, our footer sentence, a signature after ``--``, and everything from
    a reply/forward header on. A reply attribution directly followed by ``>`` lines is
    only a label of that quote, so text *below* such a quote (bottom posting) is kept.
    """
    text = _remove_footer(text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = text.split("\n")
    folded = [_fold(line) for line in lines]
    own = [not _QUOTED.match(line) for line in lines]
    cut = len(lines)
    for j, line in enumerate(folded):
        if not own[j]:
            continue
        if _SIGNATURE.match(lines[j]) or _SEPARATOR.match(line) or _INTRO.match(line):
            cut = j
            break
        if _HEADER_FIELD.match(line) and _header_block_at(folded, j):
            cut = j
            break
        if _ATTRIBUTION_END.search(line):
            k = _attribution_start(folded, j)
            if k is None:
                continue
            following = next((n for n in range(j + 1, len(lines)) if lines[n].strip()), None)
            if following is not None and not own[following]:
                for n in range(k, j + 1):  # label of a '>' quote: drop it, keep reading
                    own[n] = False
                continue
            cut = k
            break
    kept = [line.rstrip() for n, line in enumerate(lines[:cut]) if own[n]]
    while kept and _RULE_LINE.match(kept[-1]):
        kept.pop()
    while kept and not kept[0].strip():
        kept.pop(0)
    return "\n".join(kept)


# --- registration codes -------------------------------------------------------------

# PREFIX-BODY: 1–3 letters, a hyphen, five chars of the code alphabet (no 0/O, 1/I).
# Not glued to other word chars or hyphens, so "RE-ABCDE1", "ABCD-23456", dates,
# postcodes ("45-082") and phone numbers never match. Case is the writer's choice.
_CODE = re.compile(
    r"(?<![\w-])([A-Za-z]{1,3})-([2-9A-HJ-NP-Za-hj-np-z]{5})(?!\w|-\w)",
)


def find_codes(text: str) -> list[str]:
    """Registration codes anywhere in ``text`` (quotes included), upper-cased, in order of
    first appearance, without duplicates."""
    found: dict[str, None] = {}
    for m in _CODE.finditer(text):
        found.setdefault(f"{m.group(1)}-{m.group(2)}".upper(), None)
    return list(found)


# --- withdrawal ---------------------------------------------------------------------


@dataclass(frozen=True)
class Withdrawal:
    """Whether a message withdraws from the conference.

    ``phrase``: the original words that decided it; ``reason``: one line for the admin log.
    """

    kind: Literal["none", "cancel", "unclear"]
    phrase: str | None
    reason: str


@dataclass(frozen=True)
class _Rule:
    label: str
    pattern: re.Pattern[str]
    subject_only: bool = False
    # About someone else ("… nie przyjedzie"): a cancel only when the sentence names
    # somebody, since "Kolega nie może przyjechać" would otherwise withdraw everyone.
    third_person: bool = False


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, _I)


# Building blocks (all on folded text).
_PARTICIPATION = r"(?:udzial|uczestnictw|zgloszeni|rejestracj|przyjazd|obecnosc|przybyci|kandydatur)\w*"
_ATTEND = (
    r"(?:przyjechac|przyjsc|uczestniczyc|byc|dojechac|dotrzec|przybyc|(?:wziac|brac)\s+udzialu"
    r"|(?:pojawic|stawic|zjawic)\s+sie)\b"
)
_MODAL = (
    r"(?:musze|musimy|musial\w*|chce|chcemy|chcial\w*|chciel\w*|pragne|pragniemy"
    r"|postanowil\w*|postanawiam\w*|zdecydowal\w*|decyduje\w*|zamierzam\w*"
    r"|(?:jestem\s+|jestesmy\s+)?zmuszen\w*|(?:jestem\s+|jestesmy\s+)?zmuszon\w*)"
)
_FILLER = r"(?:(?:sie|niestety|jednak|juz|wiec|dlatego|z\s+przykroscia|do)\s+){0,3}"
_REQUEST = r"(?:prosze|prosimy|uprzejmie\s+prosze)"
# Who is struck off: a pronoun, "Pani …", "z listy", or a capitalised name ("Jana Nowaka").
_WHOM = r"(?:mnie|nas|go|ja|ich|moja\s+osobe|pan\w*|osob\w*|uczestnik\w*|z\s+listy|(?-i:[A-Z])\w+)"

# Clear, first-person (or about a named person) statements of withdrawal. A match here
# still yields "unclear" when the same sentence holds one of the _DOUBTS below.
_CANCEL: tuple[_Rule, ...] = (
    # "rezygnuję", "rezygnujemy", "rezygnuje" (no diacritics, or "Pani X rezygnuje":
    # the same letters, so both count), "zrezygnuję", "zrezygnowałam", "zrezygnowaliśmy"
    _Rule("rezygnuję", _rx(r"\b(?:z?rezygnuj(?:e|emy)|zrezygnowal(?:em|am|ismy|ysmy))\b")),
    # "Pani X zrezygnowała", "Pan X zrezygnował"
    _Rule("zrezygnował", _rx(r"\bzrezygnowal(?:a|i|y)?\b"), third_person=True),
    # "muszę (niestety) zrezygnować", "chciałabym zrezygnować", "zdecydowałam się
    # zrezygnować", "jestem zmuszona do rezygnacji", "musimy się wycofać",
    # "chcę odwołać swój udział"
    _Rule(
        "must withdraw",
        _rx(
            rf"\b{_MODAL}\s+{_FILLER}(?:z?rezygnowac|rezygnacji|zrezygnowania"
            rf"|wycofac\s+(?:sie\b|(?:\w+\s+){{0,2}}?{_PARTICIPATION})"
            rf"|(?:odwolac|anulowac)\s+(?:\w+\s+){{0,2}}?{_PARTICIPATION})"
        ),
    ),
    # "rezygnacja z udziału", "rezygnację z uczestnictwa w konferencji"
    _Rule(
        "rezygnacja z udziału",
        _rx(
            r"\brezygnacj\w*\s+z\s+(?:\w+\s+)?(?:udzial|uczestnictw|konferencj|zgloszeni"
            r"|rejestracj|wyjazd|przyjazd|wydarzeni|szkoleni|spotkani)\w*"
        ),
    ),
    # "zgłaszam rezygnację", "składam swoją rezygnację", "proszę przyjąć moją rezygnację"
    _Rule(
        "submits rezygnacja",
        _rx(
            r"\b(?:zglaszam|zglaszamy|skladam|skladamy|przesylam|przesylamy|przekazuje"
            r"|przekazujemy|informuje\s+o|informujemy\s+o|prosze\s+o\s+przyjecie|prosze\s+przyjac"
            r"|prosze\s+o\s+uwzglednienie|prosze\s+uwzglednic)\s+(?:(?:moja|moje|mojej|nasza"
            r"|naszej|swoja|swojej|niniejszym|niestety)\s+)?rezygnacj\w*"
        ),
    ),
    # A body sentence opening with "Rezygnacja" ("Rezygnacja. Anna Kowalska").
    _Rule("Rezygnacja", _rx(r"^\W*rezygnacja\b")),
    # Subject "Rezygnacja", "RE: Rezygnacja z udziału", "Jan Kowalski - rezygnacja"
    # (nominative only: "Pytanie o rezygnację" stays a mere mention).
    _Rule("Rezygnacja (subject)", _rx(r"\brezygnacja\b"), subject_only=True),
    # "odwołuję (mój/swój/nasz) udział", "odwołujemy udział", "anuluję zgłoszenie"
    _Rule(
        "odwołuję udział",
        _rx(rf"\b(?:odwoluj|anuluj)(?:e|emy)\s+(?:\w+\s+){{0,2}}?{_PARTICIPATION}"),
    ),
    # "wycofuję zgłoszenie/udział", "wycofuję się", bare "wycofujemy." at a clause end
    _Rule(
        "wycofuję",
        _rx(
            rf"\bwycofuj(?:e|emy)(?:\s+(?:sie\b|(?:\w+\s+){{0,2}}?{_PARTICIPATION})"
            r"|(?=\s*(?:[.!;,]|$)))"
        ),
    ),
    # "proszę o wykreślenie (mnie) z listy", "proszę skreślić", "proszę wykreślić Jana
    # Nowaka" — but not "proszę skreślić punkt 3" (no person, no list: only a mention)
    _Rule(
        "proszę o wykreślenie",
        _rx(
            rf"\b{_REQUEST}\s+(?:\w+\s+){{0,2}}?(?:o\s+)?(?:wykresl|skresl)\w*"
            rf"(?:\s+(?:\w+\s+){{0,2}}?{_WHOM}|(?=\s*(?:[.!;,]|$)))"
        ),
    ),
    # "skreślcie mnie", "proszę mnie wykreślić" said the other way round
    _Rule("skreślcie mnie", _rx(r"\b(?:wykreslcie|skreslcie|wykreslic|skreslic)\s+(?:mnie|nas)\b")),
    # "proszę o anulowanie/odwołanie/wycofanie mojego zgłoszenia",
    # "proszę o usunięcie mnie z listy uczestników"
    _Rule(
        "proszę o anulowanie",
        _rx(
            rf"\b{_REQUEST}\s+(?:\w+\s+){{0,2}}?(?:o\s+)?(?:anulow|odwol|wycof|usun)\w*\s+"
            rf"(?:\w+\s+){{0,3}}?(?:{_PARTICIPATION}|z\s+listy\s+(?:uczestnik|zgloszon|osob)\w*)"
        ),
    ),
    # "nie wezmę udziału", "nie weźmiemy (niestety) udziału"; "Pani X nie weźmie udziału"
    _Rule("nie wezmę udziału", _rx(r"\bnie\s+(?:\w+\s+)?wezm(?:e|iemy)\s+(?:\w+\s+)?udzialu\b")),
    _Rule(
        "nie weźmie udziału",
        _rx(r"\bnie\s+(?:\w+\s+)?wezmie\s+(?:\w+\s+)?udzialu\b"),
        third_person=True,
    ),
    # "nie będę mógł/mogła uczestniczyć / przyjechać / być", "nie będziemy w stanie dojechać"
    _Rule(
        "nie będę mógł",
        _rx(
            rf"\bnie\s+(?:bede|bedziemy)\s+(?:\w+\s+)?(?:mogl\w*|moc|w\s+stanie)\s+"
            rf"(?:\w+\s+)?{_ATTEND}"
        ),
    ),
    # "nie mogę/możemy przyjechać", "nie mogłam dojechać", "nie dam rady dotrzeć"
    _Rule(
        "nie mogę",
        _rx(
            rf"\bnie\s+(?:moge|mozemy|moglam|moglem|moglismy|moglysmy|dam\s+rady|damy\s+rady"
            rf"|zdaze|zdazymy|zdolam|zdolamy)\s+(?:\w+\s+)?{_ATTEND}"
        ),
    ),
    # "Pani X nie może / nie będzie mogła przyjechać", "Pan X nie da rady dojechać"
    _Rule(
        "nie może",
        _rx(
            rf"\bnie\s+(?:moze|mogl[aoi]?|da\s+rady|zdazy|bedzie\s+(?:\w+\s+)?(?:mogl\w*|w\s+stanie))"
            rf"\s+(?:\w+\s+)?{_ATTEND}"
        ),
        third_person=True,
    ),
    # "nie będę uczestniczyć", "nie będziemy obecni"
    _Rule(
        "nie będę uczestniczyć",
        _rx(r"\bnie\s+(?:bede|bedziemy)\s+(?:\w+\s+)?(?:uczestniczy|obecn)\w*"),
    ),
    _Rule(
        "nie będzie uczestniczyć",
        _rx(r"\bnie\s+bedzie\s+(?:\w+\s+)?(?:uczestniczy|obecn)\w*"),
        third_person=True,
    ),
    # "nie przyjadę", "nie przyjedziemy", "nie dotrę"
    _Rule(
        "nie przyjadę",
        _rx(
            r"\bnie\s+(?:\w+\s+)?(?:przyjade|przyjedziemy|dojade|dojedziemy|przybede|przybedziemy"
            r"|dotre|dotrzemy|(?:pojawie|pojawimy)\s+sie)\b"
        ),
    ),
    # "Pani X nie przyjedzie"
    _Rule(
        "nie przyjedzie",
        _rx(r"\bnie\s+(?:\w+\s+)?(?:przyjedzie|dojedzie|przybedzie|dotrze|pojawi\s+sie)\b"),
        third_person=True,
    ),
    # "nie będzie mnie / nas (na konferencji)"
    _Rule("nie będzie mnie", _rx(r"\bnie\s+(?:\w+\s+)?bedzie\s+(?:mnie|nas)\b")),
)

# Words that talk about withdrawing at all. A sentence with one of these but no _CANCEL
# match is a mere mention ("rozważam rezygnację"): unclear unless the message also
# clearly cancels. Sentences without any of these are never examined for doubts.
_CUES: tuple[re.Pattern[str], ...] = (
    _rx(r"\bz?rezygn\w*"),
    _rx(r"\bwycof\w*"),
    _rx(r"\b(?:wykresl|skresl)\w*"),
    # "odwołuję"/"anuluję" only with a participation object or on their own:
    # "odwołuję rezerwację hotelu" is about something else.
    _rx(rf"\b(?:odwol|anul)\w*\s+(?:\w+\s+){{0,2}}?{_PARTICIPATION}"),
    _rx(r"\b(?:odwol|anul)\w*(?=\s*(?:[.!?;,]|$))"),
    _rx(
        r"\bnie\s+(?:\w+\s+){0,2}?(?:przyjad|przyjed|przyjecha|dojad|dojed|dojecha|dotr|przyb"
        r"|uczestnicz|obecn|wezm|wziac\s+udzial|brac\s+udzial|pojawi|stawi)\w*"
    ),
    _rx(r"\bnie\s+(?:\w+\s+)?bedzie\s+(?:mnie|nas)\b"),
    _rx(r"\bnieobecn\w*"),
    # "nie wiem, czy przyjadę", "nie jestem pewna, czy dam radę dojechać"
    _rx(
        r"\bnie\s+(?:wiem|jestem\s+pew\w*|wiadomo)\W+czy\s+(?:\w+\s+){0,2}?(?:przyjad|przyjed"
        r"|dojad|dojed|dotr|bede|bedziemy|wezm|uczestnicz|dam\s+rady|zdaz)\w*"
    ),
)

# Cue words in a neutral role: asking to confirm a withdrawal is consistent with one and
# is no doubt about it ("Proszę o potwierdzenie rezygnacji?"). Still a mention.
_NEUTRAL = _rx(r"\bpotwierdz\w*\s+(?:\w+\s+){0,2}?(?:rezygnacj|wycofani|wykresleni|skresleni)\w*")

_STEMS = r"(?:z?rezygn|odwol|anul|wycof|wykresl|skresl)"
_NOT_JOIN = r"(?!i\b|wiec\b|dlatego\b|zatem\b|oraz\b|a\b)"

# Doubts: any of these in a sentence with a withdrawal cue makes the message "unclear".
# Order = which reason the admin sees first.
_DOUBTS: tuple[_Rule, ...] = (
    # "wycofuję moją rezygnację", "anuluję rezygnację", "jednak przyjadę"
    _Rule(
        "reversal",
        _rx(
            r"\b(?:wycof|cof|anul|odwol)\w*\s+(?:\w+\s+){0,2}?rezygnacj\w*"
            r"|\bjednak\s+(?:\w+\s+){0,2}?(?:przyjad|przyjed|bede|wezm|uczestnicz)\w*"
        ),
    ),
    # "nie rezygnuję", "nie chcę rezygnować", "nie zamierzam jednak się wycofywać"
    _Rule("negated", _rx(rf"\bnie\s+(?:{_NOT_JOIN}\w+\s+){{0,2}}?{_STEMS}\w*")),
    # "czy mogę zrezygnować", "jak zrezygnować", "czy można odwołać udział",
    # "do kiedy można zgłosić rezygnację", "w jaki sposób się wycofać"
    _Rule(
        "question",
        _rx(
            r"\b(?:czy|(?<!tak )jak(?!\s+najszyb|\s+najpred|\s+najwczes|\s+tylko)|jaki\w*"
            r"|w\s+jaki\s+sposob|gdzie|kiedy|co\s+(?:zrobic|trzeba|nalezy|mam|mamy|musze))\b"
            rf"(?:\W+\w+){{0,5}}?\W+(?:{_STEMS}|przyjecha|przyjad|uczestnicz|udzial)\w*(?:\s*\?)?"
        ),
    ),
    _Rule("question", _rx(r"\?")),
    # "jeśli … to rezygnuję", "gdybym nie dostała urlopu", "w razie choroby"
    _Rule(
        "conditional",
        _rx(
            r"\b(?:jesli|jezeli|jesliby|gdyby\w*|o\s+ile|w\s+razie|w\s+przypadku|chyba\s+ze"
            r"|pod\s+warunkiem|jakby|w\s+sytuacji)\b"
        ),
    ),
    # "być może będę musiał zrezygnować", "możliwe, że nie przyjadę", "chyba nie dojadę"
    _Rule(
        "hedged",
        _rx(
            r"\b(?:byc\s+moze|(?<!nie )moze|prawdopodobn\w*|najprawdopodobniej|chyba"
            r"|mozliw(?:a|e|y|osc\w*)|niewykluczone|istnieje\s+(?:ryzyko|szansa)|obawiam\s+sie"
            r"|raczej|nie\s+wiem|nie\s+jestem\s+pew\w*|byc\s+pewn\w*|zastanawiam\s+sie"
            r"|rozwaz\w*|waham\s+sie|(?:moge|mozemy)\s+nie|ewentualn\w*|na\s+razie)\b|\bew\."
        ),
    ),
    # "rezygnuję z noclegu / z kolacji / z warsztatów", "nie będę w piątek",
    # "nie przyjadę drugiego dnia", "tylko na pierwszy dzień"
    _Rule(
        "partial attendance",
        _rx(
            r"\b(?:(?:pierwsz|drug|trzeci|ostatni)\w*\s+(?:dni|dzien)\w*|poniedzial\w*|wtor(?:ek|k)\w*"
            r"|srod[aeyz]\w*|czwart\w*|piat(?:ek|k)\w*|sobot\w*|niedziel\w*|kolacj\w*|obiad\w*"
            r"|bankiet\w*|warsztat\w*|wycieczk\w*|nocleg\w*|hotel\w*|posil\w*|wyzywieni\w*"
            r"|sniadani\w*|lunch\w*|parking\w*|sesj\w*|czesci\w*|czesciow\w*|tylko|jedynie"
            r"|spozni\w*|wczesniej\s+wyjad\w*|wyjad\w*\s+wczesniej|dopiero|pozniej|na\s+czas"
            r"|na\s+poczat\w*|na\s+(?:godz\w*\s+)?\d+|o\s+(?:godz\w*\s+)?\d+|prezentacj\w*"
            r"|referat\w*|wystapieni\w*|plakat\w*|poster\w*)\b"
        ),
    ),
    # "wycofuję poprzednie zgłoszenie" is more likely a correction than a withdrawal.
    _Rule(
        "refers to an earlier form",
        _rx(r"\b(?:poprzedni|wczesniejsz|star|pierwotn)\w*\s+(?:zgloszeni|formularz)\w*"),
    ),
)

# Someone else comes instead: a withdrawal *and* a registration — never automatic.
_SUBSTITUTION = _rx(
    r"\bzamiast\s+(?:mnie|niego|niej|nas|pani|pana)\b|\bna\s+(?:moje|jego|jej|nasze)\s+miejsce"
    r"|\bw\s+(?:moim\s+|jego\s+|jej\s+|naszym\s+)?zastepstwie|\bzastap\w*\s+(?:mnie|go|ja|nas)\b"
    r"|\b(?:mnie|go|ja|nas)\s+zastap\w*|\b(?:zmian|zamian)\w*\s+(?:uczestnik\w*|osob[aeyi]\b)"
    r"|\bza\s+mnie\s+(?:przyjedzie|pojedzie|bedzie|wezmie)|\b(?:przyjedzie|pojedzie)\s+za\s+mnie"
)
# Weaker signs of a new registration: only matter next to a clear cancel
# ("rezygnuję, ale w zamian zgłaszam Panią …", "rezygnuję; w załączeniu nowy formularz").
_REGISTERS_SOMEONE = _rx(
    r"\bw\s+zamian\b|\bzamiast\b"
    r"|\bzglaszam\w*\s+(?:(?!rezygn)\w+\s+){0,2}?(?:osob|pani\b|pana\b|koleg|kolezank|now|inn)\w*"
    rf"|\b{_REQUEST}\s+(?:\w+\s+){{0,2}}?(?:o\s+)?(?:zapis|dopis|zarejestrow|wpis)\w*"
    r"|\b(?:inn|now)\w*\s+(?:osob|uczestnik)\w*"
    r"|\b(?:przyjedzie|pojedzie|wezmie\s+udzial)\s+(?:\w+\s+)?"
    r"(?:kolega|kolezanka|pani|pan|inn\w*|ktos)\b"
    r"|\b(?:w\s+zalaczeniu|zalaczam\w*|przesylam\w*)\s+(?:\w+\s+){0,2}?"
    r"(?:nowe|nowy|poprawion|formularz|zgloszeni)\w*"
)

# Somebody still comes: "Anna Kowalska rezygnuje, Jan Nowak przyjedzie", "pozostali bez
# zmian", "rezygnuję z prezentacji, ale przyjadę" (not after "nie": "nie przyjadę").
_STILL_ATTENDS = _rx(
    r"(?<!nie )\b(?:przyjade|przyjedziemy|przyjedzie|przyjada|dojade|dojedziemy|dojedzie"
    r"|(?:wezme|wezmiemy|wezmie|wezma)\s+udzial\w*|potwierdzam\w*\s+(?:\w+\s+)?udzial\w*"
    r"|(?:bede|bedzie|beda)\s+(?:obecn|uczestnicz)\w*|pozostal\w*|reszta)\b"
)
_MESSAGE_DOUBTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (_REGISTERS_SOMEONE, "withdrawal together with a new registration, a substitution?"),
    (_STILL_ATTENDS, "withdrawal while someone still attends"),
)

# Sentence ends: . ! ? … before a space, a blank line, or a line starting with a capital.
_SENTENCE_END = re.compile(r"[.!?…]+(?=\s|$)|\n[ \t]*\n|\n(?=[ \t]*[A-Z])")
_ABBREVIATIONS = frozenset(
    {
        "np", "ew", "tj", "ok", "godz", "ul", "dr", "prof", "mgr", "inz", "hab", "nr",
        "tel", "wg", "ds", "pt", "r", "al", "os", "pl", "tzn", "itd", "itp",
    }
)
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|odp|fwd?|pd|aw|wg|tr|sv)[\s.]*:\s*|\[[^\]]*\]\s*)+", _I)


def _sentences(folded: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(folded):
        if m.group().startswith("."):
            word = re.search(r"(\w+)$", folded[start : m.start()])
            if word and word.group(1).lower() in _ABBREVIATIONS:
                continue
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, len(folded)))
    return [(s, e) for s, e in spans if folded[s:e].strip()]


@dataclass(frozen=True)
class _Finding:
    kind: Literal["cancel", "unclear", "mention"]
    phrase: str
    reason: str


def _phrase(original: str, start: int, end: int) -> str:
    text = _collapse(original[start:end]).strip(" ,;:")
    return text if len(text) <= 120 else text[:117] + "…"


# A person named in a sentence, for third-person rules: two capitalised words in a row
# ("Jan Nowak") or a title and a capitalised word ("Pani Kowalska"), not "Kolega".
_NAMED = re.compile(
    r"\b(?:pan|pani|pania|pana|panu)\s+(?-i:[A-Z][a-z]+)|(?-i:\b([A-Z][a-z]+)[ \t]+[A-Z][a-z]+)", _I
)
_NOT_NAMES = frozenset(
    {
        "Dzien", "Witam", "Szanowni", "Szanowna", "Szanowny", "Drodzy", "Droga",
        "Drogi", "Pan", "Pani",
    }
)


def _names_someone(sentence: str) -> bool:
    return any(m.group(1) not in _NOT_NAMES for m in _NAMED.finditer(sentence))


def _clear_cancel(sentence: str, where: str) -> re.Match[str] | None:
    for rule in _CANCEL:
        if rule.subject_only and where != "subject":
            continue
        m = rule.pattern.search(sentence)
        if m and (not rule.third_person or _names_someone(sentence)):
            return m
    return None


def _examine(original: str, folded: str, where: str) -> list[_Finding]:
    """Findings for each sentence of one part (subject or own body text)."""
    findings: list[_Finding] = []
    for s, e in _sentences(folded):
        sent, orig = folded[s:e], original[s:e]
        if where == "subject":
            prefix = _REPLY_PREFIX.match(sent)
            if prefix:  # "RE: Rezygnacja" → "Rezygnacja", same offsets with blanks
                sent = " " * prefix.end() + sent[prefix.end() :]

        sub = _SUBSTITUTION.search(sent)
        if sub:
            p = _phrase(orig, sub.start(), sub.end())
            findings.append(_Finding("unclear", p, f"unclear: substitution '{p}' in {where}"))
            continue

        # Every withdrawal wording, clear or not, makes the sentence worth a look.
        found = [m for rx in _CUES for m in rx.finditer(sent)]
        found += [
            m for r in _CANCEL if not r.subject_only or where == "subject" for m in r.pattern.finditer(sent)
        ]
        cues = sorted(found, key=lambda m: m.start())
        if not cues:
            continue
        neutral = [m.span() for m in _NEUTRAL.finditer(sent)]
        live = [c for c in cues if not any(a <= c.start() < b for a, b in neutral)]
        cue = (live or cues)[0]
        if not live:  # only "potwierdzenie rezygnacji" and the like
            findings.append(_Finding("mention", _phrase(orig, cue.start(), cue.end()), where))
            continue

        doubt = next(((r, m) for r in _DOUBTS if (m := r.pattern.search(sent))), None)
        if doubt is not None:
            rule, m = doubt
            p = _phrase(orig, min(m.start(), cue.start()), max(m.end(), cue.end()))
            findings.append(_Finding("unclear", p, f"unclear: {rule.label} '{p}' in {where}"))
            continue

        clear = _clear_cancel(sent, where)
        if clear is not None:
            p = _phrase(orig, clear.start(), clear.end())
            findings.append(_Finding("cancel", p, f"withdrawal: '{p}' in {where}"))
        else:
            findings.append(_Finding("mention", _phrase(orig, cue.start(), cue.end()), where))
    return findings


MAX_TEXT_CHARS = 20_000
MAX_SUBJECT_CHARS = 1_000


def detect_withdrawal(subject: str, text: str) -> Withdrawal:
    """Whether the sender withdraws, judged on the subject and their own words only.

    ``unclear`` whenever a withdrawal word comes with a doubt (negation, question,
    condition, hedge, partial attendance, substitute, someone else still coming) or
    stands without a clear statement; ``cancel`` only for a clear statement alone.
    """
    # Bounded input: a withdrawal is a few sentences at the top of a message, and the
    # rules must never cost more than a glance at a hostile megabyte of text.
    subject = (subject or "")[:MAX_SUBJECT_CHARS]
    own = strip_quoted(text[:MAX_TEXT_CHARS])
    findings = _examine(subject, _fold(subject), "subject") + _examine(own, _fold(own), "body")
    for f in findings:
        if f.kind == "unclear":
            return Withdrawal("unclear", f.phrase, f.reason)

    cancels = [f for f in findings if f.kind == "cancel"]
    if cancels:
        # A clear cancel still needs a person when the message also registers or keeps
        # somebody: the names in it would otherwise all be taken off the list.
        whole = f"{subject}\n{own}"
        for rx, label in _MESSAGE_DOUBTS:
            m = rx.search(_fold(whole))
            if m:
                p = _phrase(whole, m.start(), m.end())
                return Withdrawal("unclear", p, f"unclear: {label} ('{cancels[0].phrase}', then '{p}')")
        return Withdrawal("cancel", cancels[0].phrase, cancels[0].reason)

    mentions = [f for f in findings if f.kind == "mention"]
    if mentions:
        first = mentions[0]  # a mention's reason holds where it was found
        return Withdrawal(
            "unclear",
            first.phrase,
            f"unclear: withdrawal word '{first.phrase}' in {first.reason} without a clear statement",
        )
    return Withdrawal("none", None, "no withdrawal in the sender's own words")


# --- names --------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]+")
# Titles and kin words that stand next to a name without being one.
_TITLES = frozenset(
    {
        "pan", "pani", "pania", "pana", "panu", "panem", "panstwo", "dr", "prof",
        "mgr", "inz", "hab", "dyr", "ks", "kolega", "kolezanka", "kolegi", "kolezanki",
        "kolege",
    }
)


@dataclass(frozen=True)
class _Word:
    text: str  # folded, lower case
    start: int
    end: int
    capital: bool


def _strict_stem(token: str) -> str:
    """Surname stem: drop up to two inflected letters, keep at least four."""
    return token[: max(4, len(token) - 2)]


def _loose_stem(token: str) -> str:
    """First-name stem: 'anna'→'ann' (Anny), 'ewa'→'ew' (Ewy), 'jan' stays (Jana),
    'marek'→'mar' (Marka), 'paweł'→'paw' (Pawła)."""
    if len(token) >= 5:
        return token[:-2]
    if len(token) >= 3 and token[-1] in "aeiouy":
        return token[:-1]
    return token


def _matches(word: str, token: str, stem: str) -> bool:
    # Polish names grow when inflected ("Nowak" → "Nowakowi"), they hardly shrink:
    # the length window keeps "nowa" (a new …) from matching "Nowak".
    return word.startswith(stem) and len(token) <= len(word) <= len(token) + 4


def _name_tokens(name: str) -> list[str]:
    return [t for t in _WORD.findall(_fold(name).lower()) if len(t) >= 2]


def _isolated(words: Sequence[_Word], i: int, folded: str, tokens: Sequence[str]) -> bool:
    """Whether word ``i`` stands alone, not as part of another person's name
    ("Pozdrawiam, Anna Wiśniewska" must not mention "Anna Kowalska")."""

    def joined(a: int, b: int) -> bool:  # only spaces between, or the dot of an initial
        gap = folded[words[a].end : words[b].start]
        return re.fullmatch(r"\.?[ \t]+" if len(words[a].text) == 1 else r"[ \t]+", gap) is not None

    def other_name(n: int) -> bool:
        w = words[n]
        if not w.capital or w.text in _TITLES:
            return False
        if len(w.text) == 1:  # an initial: fine if it is this person's ("A. Kowalska")
            return not any(t.startswith(w.text) for t in tokens)
        return True

    if i + 1 < len(words) and joined(i, i + 1) and other_name(i + 1):
        return False
    if i > 0 and joined(i - 1, i) and other_name(i - 1):
        before = folded[: words[i - 1].start]
        line = before[before.rfind("\n") + 1 :]
        sentence_start = not line.strip() or line.rstrip().endswith((".", "!", "?", ":", ","))
        # A capitalised sentence opener ("Rezygnuje Nowak") is no name, unless the whole
        # line is just capitalised words (a signature line "Wiśniewska Anna").
        if not sentence_start or len(words[i - 1].text) == 1:
            return False
        rest = folded[words[i - 1].start :].split("\n", 1)[0]
        name_line = re.fullmatch(r"\s*(?:[A-Z][^\W\d_]*\.?[ \t]*){2,4}", rest)
        if name_line and not any(rx.search(rest) for rx in _CUES):
            return False
    return True


def mentioned_names(text: str, names: Sequence[str]) -> list[str]:
    """Which of ``names`` the text mentions, in the order of ``names``.

    A full mention is two tokens of the name next to each other in either order, one
    by its surname stem and one by its first-name stem ("Jana Nowaka", "Kowalska Anna",
    "Pani Anny Kowalskiej"). A lone capitalised surname ("Nowaka") counts when exactly
    one of the names fits it and it is not part of someone else's full name.
    """
    folded = _fold(text)
    words = [
        _Word(m.group().lower(), m.start(), m.end(), m.group()[0].isupper())
        for m in _WORD.finditer(folded)
    ]
    tokens = {name: _name_tokens(name) for name in names}
    found: set[str] = set()

    positions: dict[str, list[int]] = {}
    for i, w in enumerate(words):
        positions.setdefault(w.text, []).append(i)

    def hits(token: str, stem: str) -> set[int]:
        return {i for word, at in positions.items() if _matches(word, token, stem) for i in at}

    # Full mention: token a by its surname stem within two words of token b by its
    # first-name stem; which token is the surname is unknown, so both ways round.
    for name, toks in tokens.items():
        strict = [hits(t, _strict_stem(t)) for t in toks]
        loose = [hits(t, _loose_stem(t)) for t in toks]
        if any(
            i + d in loose[b]
            for a in range(len(toks))
            for b in range(len(toks))
            if a != b
            for i in strict[a]
            for d in (-2, -1, 1, 2)
        ):
            found.add(name)

    # Lone surname: the person it fits must be unique (one key per person, whichever
    # order the name is stored in).
    for i, w in enumerate(words):
        if not w.capital:
            continue
        fits: dict[tuple[str, ...], list[str]] = {}
        exact: dict[tuple[str, ...], list[str]] = {}
        for name, toks in tokens.items():
            fitting = any(len(t) >= 4 and _matches(w.text, t, _strict_stem(t)) for t in toks)
            if fitting and _isolated(words, i, folded, toks):
                fits.setdefault(tuple(sorted(toks)), []).append(name)
                if w.text in toks:
                    exact.setdefault(tuple(sorted(toks)), []).append(name)
        # "Kowalska" fits "Kowalski" by its stem too, but is written exactly as one name.
        for group in (fits, exact):
            if len(group) == 1:
                found.update(next(iter(group.values())))
                break

    return [name for name in names if name in found]


# --- questions ----------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """Whether a message asks the organisers something (a question or a request).

    ``phrase``: the words that decided it; ``reason``: one line for the admin log.
    """

    asks: bool
    phrase: str | None
    reason: str


# A sentence that opens with a question word: "Czy …", "Jak …", "Do kiedy …".
_QUESTION_OPENER = _rx(
    r"^\W*(?:czy|jak|jaki\w*|jakie|gdzie|kiedy|ile|dlaczego|czemu|kto|co|skad|ktor\w*"
    r"|w\s+jaki\s+sposob|do\s+kiedy|od\s+kiedy|o\s+ktorej|na\s+ile)\b"
)
# A request or an announced question anywhere: "proszę o informację", "uprzejmie proszę
# o przesłanie faktury", "mam pytanie", "chciałabym zapytać", "prośba o …".
_REQUEST_WORDS = _rx(
    r"\b(?:prosze|prosimy|uprzejmie\s+prosze|uprzejmie\s+prosimy)\s+o\b"
    r"|\b(?:prosba|prosbe|pytanie|pytania|zapytanie)\b"
    r"|\b(?:chcial\w*|chciel\w*|pragne|pragniemy)\s+(?:\w+\s+)?(?:zapytac|zapytac\s+sie|prosic"
    r"|dowiedziec\s+sie|sie\s+dowiedziec)\b"
    r"|\bzapyt(?:uje|ujemy|am|ac)\b"
    r"|\b(?:prosze|prosimy)\s+(?:\w+\s+)?(?:przeslac|wyslac|podac|potwierdzic|poinformowac|odpowiedziec"
    r"|wystawic|zarezerwowac|dopisac|zmienic|sprawdzic)\b"
)


# A greeting alone on its line, after the person's own words: the start of a mail quoted
# without '>' (ours begin "Szanowna Pani Anno," / "Szanowni Państwo,"), not their words.
_LATER_GREETING = _rx(
    r"^[ \t]*(?:szanown[aiy]\s+(?:pani|panie|panstwo)\b[^\n,]{0,40},|dzien\s+dobry\s*,|witam\s*,)[ \t]*$"
)


def _before_a_quoted_mail(own: str) -> str:
    lines = own.split("\n")
    seen_text = False
    for i, line in enumerate(lines):
        if seen_text and _LATER_GREETING.match(_fold(line)):
            return "\n".join(lines[:i])
        seen_text = seen_text or bool(line.strip()) and not _LATER_GREETING.match(_fold(line))
    return own


def detect_question(subject: str, text: str) -> Question:
    """Whether the sender asks the organisers something, judged on the subject and their
    own words only (quotes, our footer and the signature cut away): a question mark, a
    sentence opening with a question word, or a request ("proszę o …", "mam pytanie").

    A thank-you, a "do zobaczenia" or an empty reply asks nothing. Pure, bounded input."""
    subject = (subject or "")[:MAX_SUBJECT_CHARS]
    own = _before_a_quoted_mail(strip_quoted(text[:MAX_TEXT_CHARS]))
    prefix = _REPLY_PREFIX.match(subject)
    bare_subject = subject[prefix.end() :] if prefix else subject
    for where, original in (("body", own), ("subject", bare_subject)):
        folded = _fold(original)
        for s, e in _sentences(folded):
            sent, orig = folded[s:e], original[s:e]
            mark = re.search(r"\?(?!\S*[/=&])", sent)  # not the '?' of a link's query
            if mark:
                start = max(0, mark.start() - 100)
                p = _phrase(orig, start, mark.end())
                return Question(True, p, f"question '{p}' in {where}")
            m = _QUESTION_OPENER.match(sent) or _REQUEST_WORDS.search(sent)
            if m:
                p = _phrase(orig, m.start(), min(len(orig), m.end() + 60))
                return Question(True, p, f"request '{p}' in {where}")
    return Question(False, None, "no question in the sender's own words")
