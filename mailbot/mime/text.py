"""Bytes and encoded words to text that is safe to show, whatever the charset claims.

The corpus mixes RFC 2047, raw 8-bit UTF-8/cp1250 and wrongly declared charsets, so
decoding uses explicit fallbacks and never raises; cleaning strips the control and
bidi characters that could forge a header line or disguise a name.
"""

from __future__ import annotations

import binascii
import codecs
import re
import unicodedata
from html.parser import HTMLParser
from typing import Final

__all__ = [
    "MAX_HTML_CHARS",
    "clean",
    "decode_bytes",
    "decode_words",
    "fix_8bit",
    "html_to_text",
    "lenient_b64",
    "tidy_text",
]

MAX_HTML_CHARS: Final = 1_000_000

_FALLBACK_CHARSETS: Final = ("cp1250", "iso-8859-2")
_UTF8_SEQ: Final = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_HIGH_BYTE: Final = re.compile(rb"[\x80-\xff]")
_SURROGATES: Final = re.compile("[\udc80-\udcff]")
_ENCODED_WORD: Final = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?]*)\?=")
_INVISIBLE: Final = dict.fromkeys(
    map(
        ord,
        "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff",
    )
)
"""Zero-width and bidi controls, as a ``str.translate`` table that deletes them."""


def _codec(charset: str | None) -> str | None:
    """A usable Python codec name for a declared MIME charset, or None."""
    if not charset:
        return None
    name = charset.strip().strip('"').split("*", 1)[0].lower()
    if not name or name in (
        "unknown-8bit",
        "x-unknown",
        "unknown",
        "default",
        "binary",
    ):
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    return info.name


def _guess_decode(data: bytes) -> str:
    """Decode undeclared 8-bit text: UTF-8 if it plausibly is, else the Polish code pages."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    high = len(_HIGH_BYTE.findall(data))
    seqs = _UTF8_SEQ.findall(data)
    if len(seqs) >= 2 and sum(map(len, seqs)) >= 0.8 * high:
        return data.decode("utf-8", "replace")  # UTF-8 cut in the middle of a character
    for cs in _FALLBACK_CHARSETS:
        try:
            return data.decode(cs)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Decode with the declared charset if it fits, otherwise guess; never raises.

    Valid multi-byte UTF-8 wins over a declared single-byte charset: mailers that
    label UTF-8 as ISO-8859-x are common, Latin text that happens to be valid UTF-8 is not.
    """
    codec = _codec(declared)
    if (
        codec
        and codec.startswith(("iso8859", "cp125", "latin", "mac-", "koi8"))
        and _HIGH_BYTE.search(data)
    ):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if codec and not (codec == "ascii" and _HIGH_BYTE.search(data)):
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError, TypeError, ValueError):
            pass
    return _guess_decode(data)


def fix_8bit(text: str) -> str:
    """Repair raw 8-bit header bytes that the parser kept as surrogate escapes."""
    if not _SURROGATES.search(text):
        return text
    return _guess_decode(text.encode("utf-8", "surrogateescape"))


def lenient_b64(data: bytes) -> bytes:
    """Base64 that tolerates junk, missing padding and a dangling character."""
    digits = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    if len(digits) % 4 == 1:
        digits = digits[:-1]
    digits += b"=" * (-len(digits) % 4)
    try:
        return binascii.a2b_base64(digits)
    except (binascii.Error, ValueError):
        return b""


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words (even inside quoted strings) and raw 8-bit text.

    Adjacent words in the same charset are joined before decoding, because mailers
    split multi-byte characters across words.
    """
    out: list[str] = []
    pend = bytearray()
    pend_cs: str | None = None

    def flush() -> None:
        nonlocal pend_cs
        if pend_cs is not None:
            out.append(decode_bytes(bytes(pend), pend_cs))
        pend.clear()
        pend_cs = None

    pos = 0
    for m in _ENCODED_WORD.finditer(value):
        between = value[pos : m.start()]
        if between and not (pend_cs is not None and between.isspace()):
            flush()
            out.append(fix_8bit(between))
        charset, enc, payload = m.group(1), m.group(2).lower(), m.group(3)
        raw = payload.encode("utf-8", "surrogateescape")
        if enc == "q":
            try:
                chunk = binascii.a2b_qp(raw, header=True)
            except (binascii.Error, ValueError):
                chunk = raw
        else:
            chunk = lenient_b64(raw)
        cs = charset.split("*", 1)[0].lower()
        if pend_cs != cs:
            flush()
            pend_cs = cs
        pend.extend(chunk)
        pos = m.end()
    flush()
    out.append(fix_8bit(value[pos:]))
    return "".join(out)


def clean(text: str, cap: int) -> str:
    """One line of display text: no control or bidi characters (header-injection safe)."""
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    text = " ".join(text.translate(_INVISIBLE).split())
    return text[:cap].rstrip()


def tidy_text(text: str) -> str:
    """Normalise line ends and whitespace runs; keep paragraph breaks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class _HTMLText(HTMLParser):
    """HTML to plain text with the stdlib parser: no network, no entities expanded twice."""

    _SKIP = frozenset({"script", "style", "title", "noscript", "template"})
    _BLOCK = frozenset(
        "p div br tr li ul ol table blockquote pre hr h1 h2 h3 h4 h5 h6 "
        "section article header footer dt dd".split()
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif tag == "body":
            self.skip = 0
        elif tag in self._BLOCK:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append("\t")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The visible text of an HTML body (first ``MAX_HTML_CHARS``); never raises."""
    parser = _HTMLText()
    try:
        parser.feed(html[:MAX_HTML_CHARS])
        parser.close()
    except Exception:
        pass
    return "".join(parser.parts)
