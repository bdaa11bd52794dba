"""How a reply mail addresses its recipient: the salutation and the polite pronoun.

Polish letters address one person as Pani / Pan with the first name in the vocative
("Szanowna Pani Katarzyno,", "Szanowny Panie Tomaszu,") and several people, an office or
someone we cannot tell as Państwo ("Szanowni Państwo,"). The body then keeps to the same
form: "Pani zgłoszenie" / "Pana zgłoszenie" / "Państwa zgłoszenie".

Gender and vocative come only from the name list shipped as data
(``mailbot/data/imiona.tsv``, see its header), looked up by the FIRST word of the name
after titles (dr, mgr, inż., prof., Pan, Pani…). A name not in the list — an office
("Sekretariat"), a surname first ("Nowak Jan"), a diminutive ("Kuba"), a foreign name —
gets "Szanowni Państwo,": nothing is guessed from the ending. So does a name whose parts
disagree (a female first name with a "-ski" surname, "Jan Maria" with no surname).

Templates see the result as ``you`` (:class:`Addressee`): ``you.greeting``, the pronoun
in each case (``you.nom`` "Pani/Pan/Państwo", ``you.gen`` "Pani/Pana/Państwa",
``you.dat``, ``you.acc``, ``you.ins``, ``you.loc``) and ``you.pick(...)`` for a verb
("chce" / "chcą").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal

Gender = Literal["f", "m"]

DATA_FILE = "imiona.tsv"
"""The name list, in ``mailbot/data/``."""

# Titles and courtesy words that may precede a first name ("dr hab. inż. Anna Nowak",
# "Pani Anna Nowak"), compared without the trailing dot. Pan / Pani also give the gender.
_TITLES = frozenset(
    {
        "dr", "dra", "doktor", "hab", "mgr", "inż", "inz", "prof", "lek", "med", "wet",
        "dent", "arch", "lic", "ks", "o", "s", "płk", "mjr", "kpt", "por", "ppor", "gen",
        "adw", "mec", "r.pr", "phd", "dyr", "p",
    }
)
_COURTESY: dict[str, Gender] = {"pani": "f", "pan": "m"}
_TOKEN = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*\.?", re.UNICODE)
# Adjectival surnames show the gender: Kowalski / Kowalska, Zawadzki / Zawadzka.
_MALE_SURNAME = re.compile(r"(?:ski|cki|dzki)$")
_FEMALE_SURNAME = re.compile(r"(?:ska|cka|dzka)$")

_PRONOUNS: dict[Gender | None, tuple[str, str, str, str, str, str]] = {
    #      nom        gen        dat        acc        ins         loc
    "f": ("Pani", "Pani", "Pani", "Panią", "Panią", "Pani"),
    "m": ("Pan", "Pana", "Panu", "Pana", "Panem", "Panu"),
    None: ("Państwo", "Państwa", "Państwu", "Państwa", "Państwem", "Państwu"),
}


@dataclass(frozen=True)
class Name:
    """One line of the name list."""

    name: str
    gender: Gender
    vocative: str | None


@dataclass(frozen=True)
class Addressee:
    """Whom a mail addresses and how: ``gender`` None means Państwo."""

    gender: Gender | None = None
    vocative: str | None = None

    @property
    def plural(self) -> bool:
        return self.gender is None

    @property
    def greeting(self) -> str:
        """'Szanowna Pani Katarzyno,' / 'Szanowny Panie,' / 'Szanowni Państwo,'."""
        if self.gender == "f":
            return f"Szanowna Pani {self.vocative}," if self.vocative else "Szanowna Pani,"
        if self.gender == "m":
            return f"Szanowny Panie {self.vocative}," if self.vocative else "Szanowny Panie,"
        return "Szanowni Państwo,"

    def _case(self, i: int) -> str:
        return _PRONOUNS[self.gender][i]

    @property
    def nom(self) -> str:
        """'Pani' / 'Pan' / 'Państwo' — "czy Pani chce", "chcą Państwo"."""
        return self._case(0)

    @property
    def gen(self) -> str:
        """'Pani' / 'Pana' / 'Państwa' — also the possessive: "Pani zgłoszenie"."""
        return self._case(1)

    @property
    def dat(self) -> str:
        """'Pani' / 'Panu' / 'Państwu' — "przesyłamy Pani"."""
        return self._case(2)

    @property
    def acc(self) -> str:
        """'Panią' / 'Pana' / 'Państwa' — "poinformujemy Panią"."""
        return self._case(3)

    @property
    def ins(self) -> str:
        """'Panią' / 'Panem' / 'Państwem' — "skontaktują się z Panią"."""
        return self._case(4)

    @property
    def loc(self) -> str:
        """'Pani' / 'Panu' / 'Państwu' — "o Pani"."""
        return self._case(5)

    def pick(self, *forms: str) -> str:
        """The form for this addressee: ``pick(singular, plural)`` ("chce", "chcą") or
        ``pick(female, male, plural)`` ("otrzymała", "otrzymał", "otrzymali")."""
        if len(forms) == 2:
            return forms[1] if self.plural else forms[0]
        if len(forms) == 3:
            return forms[2] if self.plural else forms[0] if self.gender == "f" else forms[1]
        raise TypeError("pick() takes 2 forms (singular, plural) or 3 (female, male, plural)")


EVERYONE = Addressee()
"""Szanowni Państwo."""


def _fold(text: str) -> str:
    """Case- and accent-free: 'Małgorzata' and 'MALGORZATA' both give 'malgorzata'."""
    text = text.casefold().replace("ł", "l")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def parse_names(text: str) -> dict[str, Name]:
    """The name list: casefolded name → :class:`Name`. '#' starts a comment line."""
    out: dict[str, Name] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = line.rstrip("\r\n").split("\t")
        if len(cols) != 3 or not cols[0].strip() or cols[1].strip() not in ("K", "M"):
            raise ValueError(f"{DATA_FILE} line {number}: expected 'imię<TAB>K|M<TAB>wołacz', got {line!r}")
        name, sex, vocative = (c.strip() for c in cols)
        key = name.casefold()
        if key in out:
            raise ValueError(f"{DATA_FILE} line {number}: {name} is listed twice")
        out[key] = Name(name, "f" if sex == "K" else "m", vocative or None)
    return out


@lru_cache(maxsize=1)
def names() -> dict[str, Name]:
    """The shipped name list (read once)."""
    text = resources.files("mailbot").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    return parse_names(text)


@lru_cache(maxsize=1)
def _folded() -> dict[str, Gender | None]:
    """Accent-free name → gender, None where two listed names of different gender fold
    to the same letters."""
    out: dict[str, Gender | None] = {}
    for n in names().values():
        key = _fold(n.name)
        out[key] = n.gender if out.get(key, n.gender) == n.gender else None
    return out


def _tokens(full_name: str) -> list[str]:
    return _TOKEN.findall(full_name)


def addressee(full_name: str | None) -> Addressee:
    """How to address the person called ``full_name`` (a form's "Imię i nazwisko" or a
    mail's display name); :data:`EVERYONE` whenever that is not certain."""
    if not full_name or "@" in full_name:
        return EVERYONE
    tokens = _tokens(full_name)
    courtesy: Gender | None = None
    while tokens and tokens[0].rstrip(".").casefold() in _TITLES | set(_COURTESY):
        word = tokens.pop(0).rstrip(".").casefold()
        courtesy = _COURTESY.get(word, courtesy)
    if not tokens:
        return Addressee(courtesy) if courtesy else EVERYONE
    first, rest = tokens[0].rstrip("."), [t.rstrip(".") for t in tokens[1:]]
    listed = names().get(first.casefold())
    if listed is not None:
        gender: Gender | None = listed.gender
        vocative = listed.vocative
    else:
        # The same name written without Polish letters ("Malgorzata"): the gender is
        # certain, the spelling of the vocative is not ours to correct — no name.
        gender, vocative = _folded().get(_fold(first)), None
    if gender is None:
        # Not a first name we know (an office, a surname first, a diminutive). "Pani
        # Kowalska" still tells the gender; nothing else does.
        return Addressee(courtesy) if courtesy and not _conflicts(courtesy, [first, *rest]) else EVERYONE
    if courtesy is not None and courtesy != gender:
        return EVERYONE
    if _conflicts(gender, rest):
        return EVERYONE
    return Addressee(gender, vocative)


def _conflicts(gender: Gender, rest: list[str]) -> bool:
    """Whether the words after the first name say otherwise: an adjectival surname of
    the other gender ("Anna Kowalski"), or — with no surname at all — a second first
    name of the other gender ("Jan Maria")."""
    if rest:
        last = rest[-1].casefold()
        if gender == "f" and _MALE_SURNAME.search(last):
            return True
        if gender == "m" and _FEMALE_SURNAME.search(last):
            return True
    if len(rest) == 1:
        other = names().get(rest[0].casefold())
        if other is not None and other.gender != gender:
            return True
    return False


def greeting(full_name: str | None) -> str:
    """The salutation line for ``full_name``: 'Szanowna Pani Katarzyno,' and so on."""
    return addressee(full_name).greeting
