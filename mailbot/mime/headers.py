"""Header values read raw and decoded here, not by the stdlib's header parser.

The tree is parsed with ``compat32``, which leaves header values undecoded; this
module unfolds and caps them, decodes encoded words inside addresses without letting
them forge addresses, and reads MIME parameters with RFC 2231 continuations and
charsets, tolerating the unquoted and 8-bit values real mailers send.
"""

from __future__ import annotations

import email.utils
import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime, timedelta
from email.message import Message
from typing import Final

from mailbot.mime.model import LOOP_HEADERS
from mailbot.mime.text import clean, decode_bytes, decode_words, fix_8bit

__all__ = [
    "MAX_ADDRESSES",
    "SUBJECT_CHARS",
    "Headers",
    "addresses",
    "cap_raw",
    "content_type",
    "msg_ids",
    "norm_addr",
    "param",
    "parse_date",
    "raw_header",
    "split_params",
    "unfold",
]

SUBJECT_CHARS: Final = 300
MAX_ADDRESSES: Final = 100
_RAW_HEADER_CAP: Final = 16_384
_MAX_IDS: Final = 100
_EARLIEST_YEAR: Final = 1900
_LATEST_YEAR: Final = 2200

_ADDRESS_HEADERS: Final = ("from", "reply-to", "to", "cc")
_OTHER_HEADERS: Final = (
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "return-path",
)
_WANTED: Final = frozenset(LOOP_HEADERS + _ADDRESS_HEADERS + _OTHER_HEADERS)


def unfold(value: str) -> str:
    """RFC 5322 unfolding: drop line breaks, keep the whitespace that follows them."""
    return re.sub(r"\r\n|\r|\n", "", value)


def cap_raw(value: str, cap: int = _RAW_HEADER_CAP) -> str:
    """Cut an oversized raw header at whitespace, so decoding stays cheap."""
    if len(value) <= cap:
        return value
    cut = value.rfind(" ", 0, cap)
    return value[: cut if cut > cap // 2 else cap]


def raw_header(part: Message, name: str) -> str | None:
    """First raw value of a header of one part, unfolded, without header parsing."""
    try:
        for key, value in part.raw_items():
            if str(key).strip().lower() == name:
                return cap_raw(unfold(str(value)))
    except Exception:
        return None
    return None


class Headers:
    """The raw values of the headers we use, read once without header parsing."""

    def __init__(self, msg: Message) -> None:
        self.values: dict[str, list[str]] = {}
        try:
            items: Iterable[tuple[str, object]] = msg.raw_items()
        except Exception:
            items = ()
        for name, value in items:
            key = str(name).strip().lower()
            if key in _WANTED:
                bucket = self.values.setdefault(key, [])
                if len(bucket) < 20:
                    bucket.append(cap_raw(unfold(str(value))))

    def first(self, name: str) -> str | None:
        vals = self.values.get(name)
        return vals[0] if vals else None

    def all(self, name: str) -> list[str]:
        return self.values.get(name, [])


# --------------------------------------------------------------------------- addresses

_DOMAIN_OK: Final = re.compile(r"^[^\s<>()\[\],;:\\\"@]+$")
_LOCAL_BAD: Final = re.compile(r"[\s<>()\[\],;:\\]")


def norm_addr(addr: str) -> str | None:
    """An addr-spec with lower-case domain, or None if it does not look like one."""
    addr = fix_8bit(addr).strip().strip("<>").strip()
    if addr.count("@") < 1 or len(addr) > 320:
        return None
    local, _, domain = addr.rpartition("@")
    domain = domain.strip().rstrip(".").lower()
    if not local or not domain or not _DOMAIN_OK.match(domain):
        return None
    if local.startswith('"') and local.endswith('"') and len(local) >= 2:
        if any(unicodedata.category(c) == "Cc" for c in local):
            return None
    elif _LOCAL_BAD.search(local) or any(
        unicodedata.category(c) == "Cc" for c in local
    ):
        return None
    return f"{local}@{domain}"


_QUOTED: Final = re.compile(r'"(?:[^"\\]|\\.)*"?')
_WORD_RUN: Final = re.compile(
    r"=\?[^?\s]+\?[qQbB]\?[^?]*\?=(?:\s+=\?[^?\s]+\?[qQbB]\?[^?]*\?=)*"
)


def _quote_words(value: str) -> str:
    """Turn encoded words into quoted strings before address parsing.

    A hostile (or sloppy) encoded word may carry ``:``, ``@``, ``<`` or CR/LF in Q
    encoding; decoded first and quoted, it stays inside the display name instead of
    becoming a group, an address or a new header line.
    """

    def esc(text: str) -> str:
        return clean(text, 400).replace("\\", "\\\\").replace('"', '\\"')

    out: list[str] = []
    pos = 0
    for m in _QUOTED.finditer(value):
        out.append(
            _WORD_RUN.sub(
                lambda w: '"' + esc(decode_words(w.group(0))) + '"',
                value[pos : m.start()],
            )
        )
        out.append(_WORD_RUN.sub(lambda w: esc(decode_words(w.group(0))), m.group(0)))
        pos = m.end()
    out.append(
        _WORD_RUN.sub(lambda w: '"' + esc(decode_words(w.group(0))) + '"', value[pos:])
    )
    return "".join(out)


def addresses(values: list[str]) -> list[tuple[str, str]]:
    """(display name, addr-spec) pairs; names decoded, unparseable entries dropped."""
    out: list[tuple[str, str]] = []
    for value in values:
        try:
            pairs = email.utils.getaddresses([_quote_words(value)])
        except Exception:
            pairs = []
        for name, addr in pairs:
            norm = norm_addr(addr)
            if norm:
                out.append((clean(fix_8bit(name), 200), norm))
            if len(out) >= MAX_ADDRESSES:
                return out
    return out


# --------------------------------------------------------------------------- ids and dates

_MSGID: Final = re.compile(r"<([^<>]*)>")


def msg_ids(value: str | None) -> list[str]:
    """Message-ids without brackets or whitespace; bare ids accepted when no brackets."""
    if not value:
        return []
    ids = [re.sub(r"\s+", "", m) for m in _MSGID.findall(value)]
    if not ids:
        ids = [tok for tok in value.split() if "@" in tok]
    ids = [clean(i, 250) for i in ids if i.strip()]
    ids = [i for i in ids if i]
    if len(ids) > _MAX_IDS:
        ids = ids[:1] + ids[-(_MAX_IDS - 1) :]
    return ids


def parse_date(value: str | None) -> datetime | None:
    """The Date header, or None when unreadable or outside years 1900-2200: a year-9999
    date is a typo or an attack, and no database need hold it (the raw mail keeps it)."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(fix_8bit(value)[:200])
        shifted = parsed - (parsed.utcoffset() or timedelta())
    except Exception:
        return None
    return parsed if _EARLIEST_YEAR <= shifted.year <= _LATEST_YEAR else None


# --------------------------------------------------------------------------- MIME parameters


def split_params(value: str | None) -> tuple[str, list[tuple[str, str]]]:
    """Split ``type; a=b; c="d;e"`` into the lower-case main value and (name, value) pairs.

    Own tokenizer instead of the stdlib's so that unquoted values with spaces
    (Apple Mail) and raw 8-bit bytes survive unchanged for RFC 2231 decoding.
    """
    if not value:
        return "", []
    segments: list[str] = []
    buf: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            buf.append(ch)
            escaped = False
        elif quoted and ch == "\\":
            buf.append(ch)
            escaped = True
        elif ch == '"':
            buf.append(ch)
            quoted = not quoted
        elif ch == ";" and not quoted:
            segments.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    segments.append("".join(buf))
    main = segments[0].strip().lower()
    params: list[tuple[str, str]] = []
    for seg in segments[1:60]:
        name, eq, val = seg.partition("=")
        if not eq:
            continue
        val = val.strip()
        if len(val) >= 1 and val[0] == '"':
            end = val.rfind('"')
            inner = val[1:end] if end > 0 else val[1:]
            val = re.sub(r"\\(.)", r"\1", inner)
        params.append((name.strip().lower(), val))
    return main, params


def param(params: list[tuple[str, str]], key: str) -> str | None:
    """A parameter value with RFC 2231 (continuations, charset) and RFC 2047 decoded."""
    simple: str | None = None
    star: str | None = None
    segs: dict[int, tuple[str, bool]] = {}
    pat = re.compile(re.escape(key) + r"\*(\d{1,3})(\*?)")
    for name, val in params:
        if name == key and simple is None:
            simple = val
        elif name == key + "*" and star is None:
            star = val
        else:
            m = pat.fullmatch(name)
            if m and int(m.group(1)) not in segs:
                segs[int(m.group(1))] = (val, bool(m.group(2)))
    if star is not None:
        return _rfc2231([(star, True)])
    if segs:
        return _rfc2231([segs[i] for i in sorted(segs)])
    if simple is not None:
        return decode_words(simple)
    return None


def _rfc2231(segments: list[tuple[str, bool]]) -> str:
    """Join RFC 2231 segments as bytes, then decode once with the declared charset."""
    charset: str | None = None
    buf = bytearray()
    for i, (val, encoded) in enumerate(segments):
        if encoded:
            if i == 0 and val.count("'") >= 2:
                charset, _lang, val = val.split("'", 2)
            raw = val.encode("utf-8", "surrogateescape")
            try:
                buf.extend(
                    re.sub(
                        rb"%([0-9A-Fa-f]{2})",
                        lambda m: bytes([int(m.group(1), 16)]),
                        raw,
                    )
                )
            except ValueError:
                buf.extend(raw)
        else:
            buf.extend(val.encode("utf-8", "surrogateescape"))
    text = decode_bytes(bytes(buf), charset)
    return decode_words(text) if "=?" in text else text


_TYPE_OK: Final = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")


def content_type(
    part: Message, parent_digest: bool = False
) -> tuple[str, list[tuple[str, str]]]:
    """Lower-case type and parameters; a malformed type reads as the RFC 2046 default."""
    main, params = split_params(raw_header(part, "content-type"))
    main = main.replace(" ", "")
    if not _TYPE_OK.match(main):
        main = "message/rfc822" if parent_digest else "text/plain"
    return main, params
