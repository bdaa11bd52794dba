"""Turn raw e-mail bytes into a :class:`ParsedMessage`: decoded headers, body text, attachments.

Mail is hostile input (bounces, part-count bombs, broken boundaries, archives inside
forwards, winmail.dat), and the daemon must survive whatever arrives. So everything
here is pure (no I/O), bounded by :class:`MimeLimits`, and :func:`parse_message` never
raises: what was skipped, and why, is reported in ``ParsedMessage.warnings``.

The structure is parsed with the ``compat32`` policy, not ``policy.default``: on the
3,000-part corpus bomb it is ~8x faster (``default`` re-parses Content-Type for every
part boundary it checks), it splits boundaries that ``default`` gives up on (unquoted
``=`` in the boundary), and it never turns a malformed header into an exception.
Header values are decoded here with explicit charset fallbacks instead, because the
corpus mixes RFC 2047, RFC 2231, raw 8-bit UTF-8/cp1250 and wrongly declared charsets.
"""

from __future__ import annotations

import binascii
import bisect
import codecs
import email
import email.utils
import hashlib
import io
import quopri
import re
import struct
import unicodedata
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from html.parser import HTMLParser
from types import MappingProxyType
from typing import Any, Final

__all__ = [
    "Attachment",
    "DeliveryReport",
    "MimeLimits",
    "ParsedMessage",
    "RecipientStatus",
    "parse_message",
]

MiB: Final = 1024 * 1024


@dataclass(frozen=True)
class MimeLimits:
    """Resource bounds for one message, so a hostile mail costs seconds, not the host."""

    max_parts: int = 500
    max_depth: int = 8
    """Nesting of containers: forwarded messages, zips, winmail.dat, opaque S/MIME."""
    max_attachment_bytes: int = 25 * MiB
    max_total_bytes: int = 100 * MiB
    max_zip_entries: int = 200
    max_zip_ratio: int = 100
    max_zip_total: int = 50 * MiB
    max_body_chars: int = 20_000


@dataclass(frozen=True)
class Attachment:
    """One file found anywhere in the message, ready for the form parsers."""

    filename: str
    """Decoded and sanitised: no directories, no control characters, never empty."""
    content_type: str
    """Declared type, or the type implied by the extension when the declared one is generic."""
    data: bytes = field(repr=False)
    origin: str
    """Container path for the admin, e.g. ``fwd.eml > formularze.zip > zgloszenie.docx``."""
    sha256: str
    """Hex digest, so the pipeline can recognise the same file sent twice or forwarded."""


@dataclass(frozen=True)
class RecipientStatus:
    """One per-recipient block of a delivery status notification (RFC 3464)."""

    final_recipient: str | None
    original_recipient: str | None
    action: str
    """Lower-case ``failed``, ``delayed``, ``delivered``, ``relayed``, ``expanded`` or ``""``."""
    status: str
    """Enhanced status code such as ``5.1.1`` (``""`` if absent)."""
    diagnostic: str


_ACTION_RANK: Final = {
    "failed": 4,
    "delayed": 3,
    "relayed": 2,
    "expanded": 2,
    "delivered": 1,
}


@dataclass(frozen=True)
class DeliveryReport:
    """What a DSN says about our mail, so the pipeline can mark participants as bouncing."""

    recipients: tuple[RecipientStatus, ...] = ()
    original_message_id: str | None = None
    """Message-ID of our message, from the returned message or its headers."""

    @property
    def action(self) -> str:
        """The most serious action over all recipients (``failed`` beats ``delayed``)."""
        best = max(
            self.recipients, key=lambda r: _ACTION_RANK.get(r.action, 0), default=None
        )
        return best.action if best else ""

    @property
    def status(self) -> str:
        """Status code of the recipient that gave :attr:`action`."""
        for r in self.recipients:
            if r.action == self.action:
                return r.status
        return ""

    @property
    def failed_addresses(self) -> tuple[str, ...]:
        """Final and original recipients whose action is ``failed`` (deduplicated)."""
        out: list[str] = []
        for r in self.recipients:
            if r.action == "failed":
                for addr in (r.original_recipient, r.final_recipient):
                    if addr and addr not in out:
                        out.append(addr)
        return tuple(out)


@dataclass(frozen=True)
class ParsedMessage:
    """Everything the pipeline needs from one mail; all text is decoded and header-safe."""

    message_id: str | None = None
    subject: str = ""
    from_addr: str | None = None
    from_name: str | None = None
    reply_to: str | None = None
    return_path: str | None = None
    """``""`` when the header is the null path ``<>`` (bounces), ``None`` when absent."""
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    date: datetime | None = None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    text: str = ""
    attachments: tuple[Attachment, ...] = ()
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Lower-case names of the loop/auto-reply headers (see ``LOOP_HEADERS``), decoded."""
    warnings: tuple[str, ...] = ()
    report: DeliveryReport | None = None


LOOP_HEADERS: Final = (
    "auto-submitted",
    "precedence",
    "x-precedence",
    "list-id",
    "list-unsubscribe",
    "list-post",
    "x-mailing-list",
    "x-loop",
    "x-auto-response-suppress",
    "x-autoreply",
    "x-autorespond",
    "x-autogenerated",
    "x-apple-action",
    "x-ms-exchange-message-is-ndr",
    "x-failed-recipients",
    "x-mailbot-kind",
    "content-type",
)
"""Headers copied into ``ParsedMessage.headers`` (root message only)."""

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

_SUBJECT_CHARS: Final = 300
_HEADER_CHARS: Final = 500
_RAW_HEADER_CAP: Final = 16_384
_MAX_ADDRESSES: Final = 100
_MAX_IDS: Final = 100
_MAX_WARNINGS: Final = 100
_MAX_HTML_CHARS: Final = 1_000_000
_RATIO_FLOOR: Final = MiB
"""Compression ratio is only judged above this size: small text files compress well."""

# --------------------------------------------------------------------------- text decoding

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


def _decode_bytes(data: bytes, declared: str | None = None) -> str:
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


def _fix_8bit(text: str) -> str:
    """Repair raw 8-bit header bytes that the parser kept as surrogate escapes."""
    if not _SURROGATES.search(text):
        return text
    return _guess_decode(text.encode("utf-8", "surrogateescape"))


def _lenient_b64(data: bytes) -> bytes:
    """Base64 that tolerates junk, missing padding and a dangling character."""
    clean = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    if len(clean) % 4 == 1:
        clean = clean[:-1]
    clean += b"=" * (-len(clean) % 4)
    try:
        return binascii.a2b_base64(clean)
    except (binascii.Error, ValueError):
        return b""


def _decode_words(value: str) -> str:
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
            out.append(_decode_bytes(bytes(pend), pend_cs))
        pend.clear()
        pend_cs = None

    pos = 0
    for m in _ENCODED_WORD.finditer(value):
        between = value[pos : m.start()]
        if between and not (pend_cs is not None and between.isspace()):
            flush()
            out.append(_fix_8bit(between))
        charset, enc, payload = m.group(1), m.group(2).lower(), m.group(3)
        raw = payload.encode("utf-8", "surrogateescape")
        if enc == "q":
            try:
                chunk = binascii.a2b_qp(raw, header=True)
            except (binascii.Error, ValueError):
                chunk = raw
        else:
            chunk = _lenient_b64(raw)
        cs = charset.split("*", 1)[0].lower()
        if pend_cs != cs:
            flush()
            pend_cs = cs
        pend.extend(chunk)
        pos = m.end()
    flush()
    out.append(_fix_8bit(value[pos:]))
    return "".join(out)


def _clean(text: str, cap: int) -> str:
    """One line of display text: no control or bidi characters (header-injection safe)."""
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    text = " ".join(text.translate(_INVISIBLE).split())
    return text[:cap].rstrip()


def _unfold(value: str) -> str:
    """RFC 5322 unfolding: drop line breaks, keep the whitespace that follows them."""
    return re.sub(r"\r\n|\r|\n", "", value)


def _cap_raw(value: str, cap: int = _RAW_HEADER_CAP) -> str:
    """Cut an oversized raw header at whitespace, so decoding stays cheap."""
    if len(value) <= cap:
        return value
    cut = value.rfind(" ", 0, cap)
    return value[: cut if cut > cap // 2 else cap]


# --------------------------------------------------------------------------- headers


class _Headers:
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
                    bucket.append(_cap_raw(_unfold(str(value))))

    def first(self, name: str) -> str | None:
        vals = self.values.get(name)
        return vals[0] if vals else None

    def all(self, name: str) -> list[str]:
        return self.values.get(name, [])


_DOMAIN_OK: Final = re.compile(r"^[^\s<>()\[\],;:\\\"@]+$")
_LOCAL_BAD: Final = re.compile(r"[\s<>()\[\],;:\\]")


def _norm_addr(addr: str) -> str | None:
    """An addr-spec with lower-case domain, or None if it does not look like one."""
    addr = _fix_8bit(addr).strip().strip("<>").strip()
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
        return _clean(text, 400).replace("\\", "\\\\").replace('"', '\\"')

    out: list[str] = []
    pos = 0
    for m in _QUOTED.finditer(value):
        out.append(
            _WORD_RUN.sub(
                lambda w: '"' + esc(_decode_words(w.group(0))) + '"',
                value[pos : m.start()],
            )
        )
        out.append(_WORD_RUN.sub(lambda w: esc(_decode_words(w.group(0))), m.group(0)))
        pos = m.end()
    out.append(
        _WORD_RUN.sub(lambda w: '"' + esc(_decode_words(w.group(0))) + '"', value[pos:])
    )
    return "".join(out)


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    """(display name, addr-spec) pairs; names decoded, unparseable entries dropped."""
    out: list[tuple[str, str]] = []
    for value in values:
        try:
            pairs = email.utils.getaddresses([_quote_words(value)])
        except Exception:
            pairs = []
        for name, addr in pairs:
            norm = _norm_addr(addr)
            if norm:
                out.append((_clean(_fix_8bit(name), 200), norm))
            if len(out) >= _MAX_ADDRESSES:
                return out
    return out


_MSGID: Final = re.compile(r"<([^<>]*)>")


def _msg_ids(value: str | None) -> list[str]:
    """Message-ids without brackets or whitespace; bare ids accepted when no brackets."""
    if not value:
        return []
    ids = [re.sub(r"\s+", "", m) for m in _MSGID.findall(value)]
    if not ids:
        ids = [tok for tok in value.split() if "@" in tok]
    ids = [_clean(i, 250) for i in ids if i.strip()]
    ids = [i for i in ids if i]
    if len(ids) > _MAX_IDS:
        ids = ids[:1] + ids[-(_MAX_IDS - 1) :]
    return ids


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(_fix_8bit(value)[:200])
    except Exception:
        return None


# --------------------------------------------------------------------------- MIME parameters


def _split_params(value: str | None) -> tuple[str, list[tuple[str, str]]]:
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


def _param(params: list[tuple[str, str]], key: str) -> str | None:
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
        return _decode_words(simple)
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
    text = _decode_bytes(bytes(buf), charset)
    return _decode_words(text) if "=?" in text else text


def _header(part: Message, name: str) -> str | None:
    """First raw value of a header of one part, unfolded, without header parsing."""
    try:
        for key, value in part.raw_items():
            if str(key).strip().lower() == name:
                return _cap_raw(_unfold(str(value)))
    except Exception:
        return None
    return None


_TYPE_OK: Final = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")


def _content_type(
    part: Message, parent_digest: bool = False
) -> tuple[str, list[tuple[str, str]]]:
    main, params = _split_params(_header(part, "content-type"))
    main = main.replace(" ", "")
    if not _TYPE_OK.match(main):
        main = "message/rfc822" if parent_digest else "text/plain"
    return main, params


# --------------------------------------------------------------------------- file names and types

_EXT_TYPES: Final = {
    ".pdf": "application/pdf",
    ".doc": "application/msword",
    ".dot": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".docm": "application/vnd.ms-word.document.macroenabled.12",
    ".dotx": "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".fodt": "application/vnd.oasis.opendocument.text-flat-xml",
    ".rtf": "application/rtf",
    ".txt": "text/plain",
    ".htm": "text/html",
    ".html": "text/html",
    ".xml": "application/xml",
    ".csv": "text/csv",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".zip": "application/zip",
    ".eml": "message/rfc822",
    ".msg": "application/vnd.ms-outlook",
    ".dat": "application/octet-stream",
    ".p7m": "application/pkcs7-mime",
    ".p7s": "application/pkcs7-signature",
    ".ics": "text/calendar",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".bmp": "image/bmp",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".heif": "image/heif",
}
_TYPE_EXTS: Final = {
    **{
        v: k for k, v in reversed(list(_EXT_TYPES.items())) if k not in (".dat", ".dot")
    },
    "image/jpg": ".jpg",
    "image/pjpeg": ".jpg",
    "application/x-pdf": ".pdf",
    "application/vnd.ms-word": ".doc",
    "text/rtf": ".rtf",
    "application/x-zip-compressed": ".zip",
    "application/x-zip": ".zip",
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
    "application/x-pkcs7-mime": ".p7m",
}
_GENERIC_TYPES: Final = frozenset(
    {
        "application/octet-stream",
        "application/x-octet-stream",
        "binary/octet-stream",
        "application/binary",
        "application/download",
        "application/force-download",
        "application/x-download",
        "application/unknown",
        "application/x-unknown",
        "application/x-msdownload",
    }
)
_OFFICE_ZIP_EXTS: Final = frozenset(
    {".docx", ".docm", ".dotx", ".xlsx", ".pptx", ".odt", ".ods", ".odp", ".epub"}
)
_ZIP_TYPES: Final = frozenset(
    {"application/zip", "application/x-zip-compressed", "application/x-zip"}
)
_TNEF_TYPES: Final = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
_PKCS7_MIME: Final = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
_SIGNATURE_TYPES: Final = frozenset(
    {
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
        "application/pgp-signature",
    }
)
_TNEF_SIG: Final = b"\x78\x9f\x3e\x22"
_WINDOWS_RESERVED: Final = frozenset(
    {
        "con",
        "prn",
        "aux",
        "nul",
        *(f"com{i}" for i in range(1, 10)),
        *(f"lpt{i}" for i in range(1, 10)),
    }
)


def _ext(name: str | None) -> str:
    if not name or "." not in name:
        return ""
    ext = "." + name.rsplit(".", 1)[1].lower()
    return ext if 1 < len(ext) <= 10 and " " not in ext else ""


def _sniff_ext(data: bytes) -> str:
    """Extension for unnamed parts, from magic bytes, so downstream can pick a parser."""
    head = data[:2048]
    if b"%PDF-" in head[:1024]:
        return ".pdf"
    if head.startswith(b"PK\x03\x04"):
        if b"word/" in head:
            return ".docx"
        if b"opendocument.text" in head:
            return ".odt"
        return ".zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return ".doc"
    if head.startswith(b"\x89PNG"):
        return ".png"
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return ".gif"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return ".tif"
    if head.startswith(b"{\\rtf"):
        return ".rtf"
    if head.startswith(_TNEF_SIG):
        return ".dat"
    return ".bin"


def _sanitize_filename(name: str | None) -> str:
    """Only the last path component, printable, length-capped with its extension kept."""
    if not name:
        return ""
    name = unicodedata.normalize("NFC", name)
    name = "".join(" " if unicodedata.category(c) == "Cc" else c for c in name)
    name = "".join(
        c for c in name.translate(_INVISIBLE) if unicodedata.category(c) != "Cf"
    )
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r'[<>:"|?*]', "_", name)
    name = " ".join(name.split()).strip(" .")
    if not name:
        return ""
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 10 or not stem:
        stem, ext = name, ""
    ext = f".{ext}" if ext else ""
    stem = stem[: 150 - len(ext)].rstrip(" .") or "plik"
    if stem.lower() in _WINDOWS_RESERVED:
        stem = "_" + stem
    return stem + ext


def _type_for(declared: str, filename: str) -> str:
    """Declared type unless it is generic and the extension says more."""
    if declared in _GENERIC_TYPES or not declared:
        return _EXT_TYPES.get(_ext(filename), declared or "application/octet-stream")
    return declared


# --------------------------------------------------------------------------- payloads


def _cte(part: Message) -> str:
    value = _header(part, "content-transfer-encoding") or ""
    return value.strip().split(";", 1)[0].strip().strip('"').lower()


_UU_CTES: Final = frozenset({"x-uuencode", "uuencode", "uue", "x-uue"})
_ENCODED_CTES: Final = frozenset({"base64", "quoted-printable"} | _UU_CTES)


def _raw_payload(part: Message) -> bytes:
    """The body bytes exactly as sent.

    ``get_payload()`` re-decodes raw 8-bit text with ``errors="replace"`` (losing
    undeclared UTF-8/cp1250), while ``get_payload(decode=True)`` returns those bytes
    untouched when the transfer encoding is not one it decodes, so use each where
    it is lossless (transfer-encoded bodies are ASCII).
    """
    if part.is_multipart():
        return b""
    stdlib_cte = str(part.get("content-transfer-encoding", "")).lower()
    if _cte(part) in _ENCODED_CTES or stdlib_cte in _ENCODED_CTES:
        payload = part.get_payload()
        return (
            payload.encode("utf-8", "surrogateescape")
            if isinstance(payload, str)
            else b""
        )
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _uu_decode(data: bytes) -> tuple[str | None, bytes] | None:
    """Decode the first uuencoded block (``begin 644 name`` .. ``end``) or None."""
    lines = data.splitlines()
    start = None
    name: str | None = None
    for i, line in enumerate(lines):
        m = re.match(rb"begin [0-7]{3,4} (.+)$", line.strip())
        if m:
            start = i + 1
            name = _decode_bytes(m.group(1).strip())
            break
    if start is None:
        return None
    out: list[bytes] = []
    for line in lines[start:]:
        if line.strip() == b"end":
            break
        if not line.strip():
            continue
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            try:
                nbytes = (((line[0] - 32) & 63) * 4 + 5) // 3
                out.append(binascii.a2b_uu(line[:nbytes]))
            except (binascii.Error, IndexError):
                break
    return name, b"".join(out)


def _decode_payload(part: Message) -> bytes:
    """Transfer-decode a leaf part leniently (base64 junk, QP, uuencode, 8bit)."""
    raw = _raw_payload(part)
    cte = _cte(part)
    if cte == "base64":
        return _lenient_b64(raw)
    if cte == "quoted-printable":
        return quopri.decodestring(raw)
    if cte in _UU_CTES:
        res = _uu_decode(raw)
        return res[1] if res else raw
    return raw


def _estimated_size(part: Message) -> int:
    payload = part.get_payload()
    size = len(payload) if isinstance(payload, (str, bytes)) else 0
    return size * 3 // 4 if _cte(part) == "base64" else size


# --------------------------------------------------------------------------- HTML to text


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


def _html_to_text(html: str) -> str:
    parser = _HTMLText()
    try:
        parser.feed(html[:_MAX_HTML_CHARS])
        parser.close()
    except Exception:
        pass
    return "".join(parser.parts)


def _tidy_text(text: str) -> str:
    """Normalise line ends and whitespace runs; keep paragraph breaks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --------------------------------------------------------------------------- TNEF safety

_IMESSAGE_SIG: Final = (
    b"\x07\x03\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"
)
_MAPI_FIXED: Final = {
    0x0002: 2,
    0x000B: 2,
    0x0003: 4,
    0x0004: 4,
    0x000A: 4,
    0x0005: 8,
    0x0006: 8,
    0x0007: 8,
    0x0014: 8,
    0x0040: 8,
    0x0048: 16,
}
_MAPI_VARIABLE: Final = frozenset({0x0000, 0x000D, 0x001E, 0x001F, 0x0102})


def _u16(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<H", data, off)[0])


def _u32(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<I", data, off)[0])


def _mapi_unsafe(data: bytes, offset: int, level: int) -> tuple[str | None, int]:
    """Mirror tnefparse's MAPI loop and refuse counts the data cannot hold.

    tnefparse 1.4 trusts 32-bit property and value counts: with slices past the end
    it keeps appending empty attributes (poi-oom.tnef eats all memory) or logs once
    per missing property (hours). Returns (reason, end offset); reason None = safe.
    """
    n = len(data)
    if offset + 4 > n:
        return None, n
    count = _u32(data, offset)
    offset += 4
    if count > (n - offset) // 4 + 1:
        return f"implausible MAPI property count {count}", offset
    for _ in range(count):
        if offset >= n:
            continue
        if offset + 4 > n:
            return None, offset
        typ, name = _u16(data, offset), _u16(data, offset + 2)
        offset += 4
        if name >= 0x8000:
            offset += 16
            if offset + 8 > n:
                return None, offset
            kind = _u32(data, offset)
            offset += 4
            if kind == 0:
                offset += 4
            else:
                ln = _u32(data, offset)
                offset += 4 + ln + (-ln % 4)
        mv: int | None = None
        if typ & 0x1000:
            typ ^= 0x1000
            if offset + 4 > n:
                return None, offset
            mv = _u32(data, offset)
            offset += 4
            if mv > max(0, n - offset) // 2 + 1:
                return f"implausible MAPI value count {mv}", offset
        for _ in range(mv or 1):
            if typ in _MAPI_FIXED:
                offset += _MAPI_FIXED[typ]
                continue
            if typ not in _MAPI_VARIABLE:
                return None, offset  # tnefparse raises on unknown types and stops
            nvals = 1
            if mv is None:
                if offset + 4 > n:
                    return None, offset
                nvals = _u32(data, offset)
                offset += 4
                if nvals > max(0, n - offset) // 4 + 1:
                    return f"implausible MAPI value count {nvals}", offset
            for _ in range(nvals):
                if offset + 4 > n:
                    return None, offset
                ln = _u32(data, offset)
                offset += 4
                if name == 0x3701:
                    item = data[offset : offset + ln].rstrip(b"\x00")
                    if item.startswith(_IMESSAGE_SIG):
                        why = _tnef_unsafe(item[len(_IMESSAGE_SIG) :], level + 1)
                        if why:
                            return why, offset
                offset += ln + (-ln % 4)
        if (mv or 1) % 2 and typ in (0x0002, 0x000B):
            offset += 2
    return None, offset


def _tnef_unsafe(data: bytes, level: int = 0) -> str | None:
    """Why tnefparse must not be given ``data`` (None when its loops are bounded)."""
    n = len(data)
    if n < 6 or not data.startswith(_TNEF_SIG):
        return None  # tnefparse rejects the signature itself
    if level > 3:
        return "embedded messages nested too deeply"
    offset, records, copied = 6, 0, 0
    while offset + 12 < n:
        records += 1
        copied += n - offset  # tnefparse copies the rest of the buffer per record
        if records > 10_000 or copied > 1 << 31:
            return "too many TNEF records"
        lvl, name = data[offset], _u16(data, offset + 1)
        length = min(n - offset, _u32(data, offset + 5) + 11)
        body = data[offset + 9 : offset + length - 2]
        if (lvl == 2 and name == 0x9005) or (lvl != 2 and name == 0x9003):
            why, _ = _mapi_unsafe(body, 0, level)
            if why:
                return why
        elif lvl != 2 and name == 0x9004 and len(body) >= 4:
            rows = _u32(body, 0)
            if rows > len(body) // 4 + 1:
                return f"implausible recipient count {rows}"
            pos = 4
            for _ in range(rows):
                if pos + 4 > len(body):
                    break
                why, new = _mapi_unsafe(body, pos, level)
                if why:
                    return why
                pos = max(new, pos + 4)
        offset += length
    return None


# --------------------------------------------------------------------------- opaque S/MIME (BER)

_OID_SIGNED: Final = bytes.fromhex("2a864886f70d010702")
_OID_ENVELOPED: Final = bytes.fromhex("2a864886f70d010703")
_OID_AUTH_ENVELOPED: Final = bytes.fromhex("2a864886f70d0109100117")


class _BerError(ValueError):
    """The CMS blob is not the shape we can unpack."""


def _ber_read(data: bytes, pos: int, end: int, level: int) -> tuple[int, int, int, int]:
    """One BER element at ``pos``: (tag, content start, content end, next position)."""
    if level > 40:
        raise _BerError("nested too deeply")
    if pos + 2 > end:
        raise _BerError("truncated")
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        while pos < end and data[pos] & 0x80:
            pos += 1
        pos += 1
    if pos >= end:
        raise _BerError("truncated")
    first = data[pos]
    pos += 1
    if first == 0x80:
        if not tag & 0x20:
            raise _BerError("indefinite primitive")
        cur = pos
        while True:
            if cur + 2 > end:
                raise _BerError("missing end-of-contents")
            if data[cur] == 0 and data[cur + 1] == 0:
                return tag, pos, cur, cur + 2
            cur = _ber_read(data, cur, end, level + 1)[3]
    if first < 0x80:
        length = first
    else:
        nbytes = first & 0x7F
        if nbytes > 8 or pos + nbytes > end:
            raise _BerError("bad length")
        length = int.from_bytes(data[pos : pos + nbytes], "big")
        pos += nbytes
    if pos + length > end:
        raise _BerError("truncated")
    return tag, pos, pos + length, pos + length


def _ber_children(
    data: bytes, start: int, end: int, level: int
) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    pos = start
    while pos < end and not (data[pos] == 0 and pos + 1 < end and data[pos + 1] == 0):
        tag, cs, ce, pos = _ber_read(data, pos, end, level)
        out.append((tag, cs, ce))
        if len(out) > 10_000:
            raise _BerError("too many elements")
    return out


def _ber_octets(
    data: bytes, tag: int, cs: int, ce: int, level: int, out: bytearray, cap: int
) -> None:
    if tag == 0x04:
        out.extend(data[cs:ce])
    elif tag == 0x24:
        for t, s, e in _ber_children(data, cs, ce, level + 1):
            _ber_octets(data, t, s, e, level + 1, out, cap)
    else:
        raise _BerError("content is not an OCTET STRING")
    if len(out) > cap:
        raise _BerError("content too large")


def _smime_content(data: bytes, cap: int) -> tuple[str, bytes | None]:
    """Unpack CMS: ("enveloped", None), ("signed", content or None if detached) or ("unknown", None)."""
    tag, cs, ce, _ = _ber_read(data, 0, len(data), 0)
    if tag != 0x30:
        raise _BerError("not a ContentInfo")
    kids = _ber_children(data, cs, ce, 1)
    if not kids or kids[0][0] != 0x06:
        raise _BerError("no content type")
    oid = data[kids[0][1] : kids[0][2]]
    if oid in (_OID_ENVELOPED, _OID_AUTH_ENVELOPED):
        return "enveloped", None
    if oid != _OID_SIGNED or len(kids) < 2:
        return "unknown", None
    signed = _ber_children(data, kids[1][1], kids[1][2], 2)
    sd = _ber_children(data, signed[0][1], signed[0][2], 3)
    if len(sd) < 3:
        raise _BerError("short SignedData")
    encap = _ber_children(data, sd[2][1], sd[2][2], 4)
    if len(encap) < 2:
        return "signed", None
    inner = _ber_children(data, encap[1][1], encap[1][2], 5)
    if not inner:
        return "signed", None
    out = bytearray()
    _ber_octets(data, inner[0][0], inner[0][1], inner[0][2], 6, out, cap)
    return "signed", bytes(out)


# --------------------------------------------------------------------------- zip helpers


def _zip_entry_count(data: bytes) -> int | None:
    """Entry count from the end-of-central-directory record, read before ZipFile lists it all."""
    pos = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if pos < 0 or pos + 12 > len(data):
        return None
    return _u16(data, pos + 10)


def _zip_name(info: zipfile.ZipInfo) -> str:
    """Entry name: UTF-8 flag, Info-ZIP unicode path, UTF-8 without flag, else CP852.

    Windows' built-in zip writes names in the OEM code page; for Polish users that
    is CP852, which zipfile would misread as CP437.
    """
    name = info.filename
    if info.flag_bits & 0x800:
        return name
    extra, pos = info.extra, 0
    while pos + 4 <= len(extra):
        hid, ln = struct.unpack_from("<HH", extra, pos)
        if hid == 0x7075 and ln >= 5:
            try:
                return extra[pos + 9 : pos + 4 + ln].decode("utf-8")
            except UnicodeDecodeError:
                break
        pos += 4 + ln
    try:
        raw = name.encode("cp437")
    except UnicodeEncodeError:
        return name
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp852", "replace")


# --------------------------------------------------------------------------- the walk


def _count_parts(msg: Message) -> int:
    """Every node of a parsed tree, iteratively (the tree is already in memory)."""
    count, stack = 0, [msg]
    while stack:
        node = stack.pop()
        count += 1
        payload = node.get_payload()
        if isinstance(payload, list):
            stack.extend(p for p in payload if isinstance(p, Message))
    return count


def _parse_bytes(data: bytes, headers_only: bool = False) -> Message:
    return BytesParser(policy=compat32).parsebytes(data, headersonly=headers_only)


def _looks_like_mail(data: bytes) -> bool:
    head = data[:4096].lstrip()
    return (
        bool(re.match(rb"(From [^\r\n]*\r?\n)?[A-Za-z0-9-]{1,76}:", head))
        and b"@" in head
    )


class _Walker:
    """Collects text, attachments, warnings and DSN data over one message tree."""

    def __init__(self, limits: MimeLimits) -> None:
        self.limits = limits
        self.parts = 0
        self.part_limit_hit = False
        self.total_bytes = 0
        self.total_limit_hit = False
        self.attachments: list[Attachment] = []
        self.texts: list[str] = []
        self.text_len = 0
        self.text_truncated = False
        self.warnings: list[str] = []
        self.counter = 0
        self.dsn_blocks: list[dict[str, str]] | None = None
        self.original_id: str | None = None

    # -- bookkeeping

    def warn(self, text: str) -> None:
        text = _clean(text, 300)
        if text not in self.warnings and len(self.warnings) < _MAX_WARNINGS:
            self.warnings.append(text)

    def add_text(self, text: str) -> None:
        room = self.limits.max_body_chars - self.text_len
        if room <= 0:
            if text.strip():
                self.text_truncated = True
            return
        text = _tidy_text(text[: max(4 * room, 4096)])  # tidying only shrinks text
        if not text:
            return
        if len(text) > room:
            text = text[:room]
            self.text_truncated = True
        self.texts.append(text)
        self.text_len += len(text) + 2

    def add_attachment(
        self, name: str | None, ctype: str, data: bytes, path: tuple[str, ...]
    ) -> None:
        lim = self.limits
        shown = _sanitize_filename(name) or "attachment"
        if not data:
            self.warn(f"attachment {shown} is empty, skipped")
            return
        if len(data) > lim.max_attachment_bytes:
            self.warn(
                f"attachment {shown} skipped: {len(data)} bytes exceeds {lim.max_attachment_bytes}"
            )
            return
        if self.total_bytes + len(data) > lim.max_total_bytes:
            if not self.total_limit_hit:
                self.warn(
                    f"total attachment size limit ({lim.max_total_bytes} bytes) reached: {shown} and later files skipped"
                )
            self.total_limit_hit = True
            return
        self.counter += 1
        filename = _sanitize_filename(name)
        if not filename:
            filename = (
                f"zalacznik-{self.counter}{_TYPE_EXTS.get(ctype) or _sniff_ext(data)}"
            )
        digest = hashlib.sha256(data).hexdigest()
        origin = " > ".join((*path, filename))
        self.total_bytes += len(data)
        self.attachments.append(
            Attachment(filename, _type_for(ctype, filename), data, origin, digest)
        )

    # -- messages

    def enter_message(
        self, msg: Message, depth: int, path: tuple[str, ...], label: str | None
    ) -> None:
        if depth > self.limits.max_depth:
            self.warn(
                f"nested message {label or ''} skipped: nesting deeper than {self.limits.max_depth}"
            )
            return
        if depth > 0:
            hdr = _Headers(msg)
            lines = ["---------- Forwarded message ----------"]
            for key, title in (
                ("from", "From"),
                ("date", "Date"),
                ("subject", "Subject"),
            ):
                val = hdr.first(key)
                if val:
                    lines.append(
                        f"{title}: {_clean(_decode_words(val), _SUBJECT_CHARS)}"
                    )
            self.add_text("\n".join(lines))
        self.walk(msg, depth, path, collect_text=True, nesting=0, top=depth == 0)

    def walk(
        self,
        part: Message,
        depth: int,
        path: tuple[str, ...],
        *,
        collect_text: bool,
        nesting: int,
        top: bool,
        in_report: bool = False,
        digest: bool = False,
    ) -> None:
        if self.parts >= self.limits.max_parts:
            self.part_limit_hit = True
            return
        self.parts += 1
        try:
            self._walk(part, depth, path, collect_text, nesting, top, in_report, digest)
        except (RecursionError, MemoryError):
            raise
        except (
            Exception
        ) as exc:  # one broken part must not cost the rest of the message
            self.warn(f"a MIME part could not be read ({type(exc).__name__}: {exc})")

    def _walk(
        self,
        part: Message,
        depth: int,
        path: tuple[str, ...],
        collect_text: bool,
        nesting: int,
        top: bool,
        in_report: bool,
        digest: bool,
    ) -> None:
        ctype, params = _content_type(part, digest)
        payload = part.get_payload()
        if isinstance(payload, list) and ctype.startswith("message/"):
            self._message_part(part, ctype, payload, depth, path, top, in_report)
            return
        if isinstance(payload, list):
            self._multipart(
                part, ctype, params, payload, depth, path, collect_text, nesting, top
            )
            return
        if ctype.startswith("multipart/"):
            fixed = self._reparse_multipart(part, params)
            if fixed is not None:
                payload = fixed.get_payload()
                if isinstance(payload, list):
                    self._multipart(
                        fixed,
                        ctype,
                        params,
                        payload,
                        depth,
                        path,
                        collect_text,
                        nesting,
                        top,
                    )
                    return
            ctype = "text/plain"  # unusable multipart: read what is there as text
        self._leaf(part, ctype, params, depth, path, collect_text, top, in_report)

    def _reparse_multipart(
        self, part: Message, params: list[tuple[str, str]]
    ) -> Message | None:
        """Second chance for a boundary the stdlib could not use (one re-parse, bounded)."""
        boundary = _param(params, "boundary")
        body = _raw_payload(part)
        if (
            not boundary
            or len(boundary) > 200
            or ("--" + boundary).encode("utf-8", "surrogateescape") not in body
        ):
            return None
        quoted = boundary.replace("\\", "\\\\").replace('"', '\\"')
        head = f'Content-Type: multipart/mixed; boundary="{quoted}"\r\n\r\n'.encode(
            "utf-8", "surrogateescape"
        )
        try:
            return _parse_bytes(head + body)
        except RecursionError:
            return None

    def _multipart(
        self,
        part: Message,
        ctype: str,
        params: list[tuple[str, str]],
        children: Sequence[object],
        depth: int,
        path: tuple[str, ...],
        collect_text: bool,
        nesting: int,
        top: bool,
    ) -> None:
        if nesting >= self.limits.max_depth * 4:
            self.warn(
                f"multipart nesting deeper than {self.limits.max_depth * 4} levels: inner parts skipped"
            )
            return
        kids = [c for c in children if isinstance(c, Message)]
        if ctype == "multipart/encrypted":
            self.warn("encrypted (PGP/MIME) message: cannot read attachments")
            return
        chosen = -1
        if ctype == "multipart/alternative":
            types = [_content_type(k)[0] for k in kids]
            chosen = (
                types.index("text/plain") if "text/plain" in types else len(kids) - 1
            )
        report = ctype == "multipart/report"
        if report and top:
            rtype = (_param(params, "report-type") or "").lower()
            if rtype == "delivery-status" and self.dsn_blocks is None:
                self.dsn_blocks = []
        for i, kid in enumerate(kids):
            self.walk(
                kid,
                depth,
                path,
                collect_text=collect_text and (chosen < 0 or i == chosen),
                nesting=nesting + 1,
                top=top,
                in_report=report and i > 0,
                digest=ctype == "multipart/digest",
            )
            if self.part_limit_hit:
                return

    def _message_part(
        self,
        part: Message,
        ctype: str,
        payload: Sequence[object],
        depth: int,
        path: tuple[str, ...],
        top: bool,
        in_report: bool,
    ) -> None:
        inner = next((p for p in payload if isinstance(p, Message)), None)
        if inner is None:
            return
        if ctype == "message/delivery-status":
            if top:
                self._dsn(payload)
            return
        if ctype == "message/disposition-notification":
            return
        if in_report or ctype in ("message/rfc822-headers", "text/rfc822-headers"):
            # The returned copy of our own mail: read its id, never its attachments.
            if top and self.original_id is None:
                ids = _msg_ids(_Headers(inner).first("message-id"))
                self.original_id = ids[0] if ids else None
            return
        if ctype in ("message/rfc822", "message/news", "message/global"):
            _, dparams = _split_params(_header(part, "content-disposition"))
            name = _param(dparams, "filename") or _param(_content_type(part)[1], "name")
            subject = _clean(_decode_words(_Headers(inner).first("subject") or ""), 60)
            label = _sanitize_filename(name) or (
                f"forwarded message ({subject})" if subject else "forwarded message"
            )
            self.enter_message(inner, depth + 1, (*path, label), label)
            return
        if ctype == "message/partial":
            self.warn("message/partial fragment cannot be reassembled")

    def _dsn(self, payload: Sequence[object]) -> None:
        """Read RFC 3464 fields; the stdlib parses each block as a header-only Message."""
        blocks: list[dict[str, str]] = []
        for block in payload:
            if not isinstance(block, Message):
                continue
            fields: dict[str, str] = {}
            for key, value in block.raw_items():
                fields.setdefault(
                    str(key).strip().lower(),
                    _clean(_fix_8bit(_unfold(str(value))), 500),
                )
            blocks.append(fields)
        self._add_dsn_blocks(blocks)

    def _add_dsn_blocks(self, blocks: list[dict[str, str]]) -> None:
        if self.dsn_blocks is None:
            self.dsn_blocks = []
        self.dsn_blocks.extend(blocks[:_MAX_ADDRESSES])

    def _leaf(
        self,
        part: Message,
        ctype: str,
        params: list[tuple[str, str]],
        depth: int,
        path: tuple[str, ...],
        collect_text: bool,
        top: bool,
        in_report: bool,
    ) -> None:
        disp, dparams = _split_params(_header(part, "content-disposition"))
        name = _param(dparams, "filename") or _param(params, "name")
        attached = disp == "attachment"
        if ctype in _SIGNATURE_TYPES or ctype == "application/pgp-encrypted":
            return
        if ctype in ("text/rfc822-headers", "message/rfc822-headers") or (
            in_report and ctype == "message/rfc822"
        ):
            if top and self.original_id is None:
                m = re.search(
                    r"^message-id:[ \t]*(.+)$",
                    _decode_bytes(_decode_payload(part)),
                    re.IGNORECASE | re.MULTILINE,
                )
                ids = _msg_ids(m.group(1)) if m else []
                self.original_id = ids[0] if ids else None
            return
        if ctype == "message/delivery-status":
            if top:
                self._add_dsn_blocks(
                    _dsn_text_blocks(_decode_bytes(_decode_payload(part)))
                )
            return
        if ctype in ("message/rfc822", "message/global", "message/news"):
            self.file(
                name,
                "message/rfc822",
                _decode_payload(part),
                depth,
                path,
                archive_level=0,
            )
            return
        if ctype.startswith("message/"):
            if ctype == "message/partial":
                self.warn("message/partial fragment cannot be reassembled")
            return
        if ctype in ("text/plain", "text/html") and not (name and attached):
            if collect_text:
                self._body(part, ctype, params, depth, path)
            return
        if ctype.startswith("text/") and not name and not attached:
            return
        if ctype.startswith("multipart/"):
            ctype = "application/octet-stream"
        if (
            ctype in _PKCS7_MIME
            and "enveloped" in (_param(params, "smime-type") or "").lower()
        ):
            self.warn("encrypted S/MIME message: cannot read attachments")
            return
        size = _estimated_size(part)
        if size > self.limits.max_attachment_bytes + 1024:
            self.warn(
                f"attachment {_sanitize_filename(name) or ctype} skipped: about {size} bytes exceeds {self.limits.max_attachment_bytes}"
            )
            return
        self.file(name, ctype, _decode_payload(part), depth, path, archive_level=0)

    def _body(
        self,
        part: Message,
        ctype: str,
        params: list[tuple[str, str]],
        depth: int,
        path: tuple[str, ...],
    ) -> None:
        data = _decode_payload(part)
        if len(data) > 4 * _MAX_HTML_CHARS:
            data = data[: 4 * _MAX_HTML_CHARS]
        text = _decode_bytes(data, _param(params, "charset"))
        if ctype == "text/html":
            self.add_text(_html_to_text(text))
            return
        if "begin " in text:
            text = self._uu_in_text(text, depth, path)
        self.add_text(text)

    def _uu_in_text(self, text: str, depth: int, path: tuple[str, ...]) -> str:
        """Pull classic uuencoded files out of a plain-text body (old Eudora/Pegasus mail)."""
        lines = text.splitlines(keepends=True)
        ends = [k for k, line in enumerate(lines) if line.strip() == "end"]
        out: list[str] = []
        i = found = 0
        while i < len(lines):
            line = lines[i]
            if found < 20 and re.match(r"begin [0-7]{3,4} \S", line):
                nxt = bisect.bisect_right(ends, i)
                end = ends[nxt] if nxt < len(ends) else None
                if end is not None:
                    res = _uu_decode(
                        "".join(lines[i : end + 1]).encode("latin-1", "replace")
                    )
                    if res and res[1]:
                        found += 1
                        out.append(f"[uuencoded file: {_sanitize_filename(res[0])}]\n")
                        ctype = _EXT_TYPES.get(_ext(res[0]), "application/octet-stream")
                        self.file(res[0], ctype, res[1], depth, path, 0)
                        i = end + 1
                        continue
            out.append(line)
            i += 1
        return "".join(out)

    # -- files and containers

    def file(
        self,
        name: str | None,
        ctype: str,
        data: bytes,
        depth: int,
        path: tuple[str, ...],
        archive_level: int,
    ) -> None:
        """Route one decoded file: unpack containers, keep everything else."""
        ext = _ext(name)
        shown = _sanitize_filename(name) or f"{ctype} part"
        if ctype in _PKCS7_MIME or ext == ".p7m":
            self._pkcs7(name, ctype, data, depth, path)
            return
        if (
            ctype in _TNEF_TYPES
            or (name or "").strip().lower() == "winmail.dat"
            or data.startswith(_TNEF_SIG)
        ):
            if self._tnef(shown, data, depth, path, archive_level):
                return
            self.add_attachment(name, ctype, data, path)
            return
        is_zip = ext == ".zip" or (ctype in _ZIP_TYPES and ext not in _OFFICE_ZIP_EXTS)
        if is_zip and data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            if self._zip(shown, data, depth, path, archive_level):
                return
            self.add_attachment(name, ctype, data, path)
            return
        if (
            ctype in ("message/rfc822", "message/global") or ext == ".eml"
        ) and _looks_like_mail(data):
            try:
                inner = _parse_bytes(data)
            except RecursionError:
                self.warn(f"attached message {shown} is nested too deeply to read")
                return
            self.enter_message(inner, depth + 1, (*path, shown), shown)
            return
        self.add_attachment(name, ctype, data, path)

    def _pkcs7(
        self,
        name: str | None,
        ctype: str,
        data: bytes,
        depth: int,
        path: tuple[str, ...],
    ) -> None:
        shown = _sanitize_filename(name) or "smime.p7m"
        try:
            kind, content = _smime_content(data, self.limits.max_total_bytes)
        except (_BerError, IndexError) as exc:
            self.warn(f"S/MIME part {shown} could not be unpacked ({exc})")
            return
        if kind == "enveloped":
            self.warn("encrypted S/MIME message: cannot read attachments")
        elif kind == "signed" and content:
            if depth + 1 > self.limits.max_depth:
                self.warn(
                    f"S/MIME content {shown} skipped: nesting deeper than {self.limits.max_depth}"
                )
                return
            self.warn(
                "opaque-signed S/MIME message: content read, signature not verified"
            )
            try:
                inner = _parse_bytes(content)
            except RecursionError:
                self.warn("S/MIME content is nested too deeply to read")
                return
            self.walk(
                inner,
                depth + 1,
                (*path, shown),
                collect_text=True,
                nesting=0,
                top=False,
            )
        else:
            self.warn(f"S/MIME part {shown} holds no readable content")

    def _tnef(
        self,
        shown: str,
        data: bytes,
        depth: int,
        path: tuple[str, ...],
        archive_level: int,
    ) -> bool:
        """Surface the files inside winmail.dat; False if it cannot be decoded (kept as is)."""
        if depth + 1 > self.limits.max_depth:
            self.warn(f"{shown} skipped: nesting deeper than {self.limits.max_depth}")
            return True
        if not data.startswith(_TNEF_SIG):
            self.warn(
                f"{shown} could not be decoded: not TNEF data (kept as a plain attachment)"
            )
            return False
        why = _tnef_unsafe(data)
        if why:
            self.warn(f"{shown} could not be decoded: {why}")
            return True
        try:
            import tnefparse

            tnef = tnefparse.TNEF(data, do_checksum=False)
        except MemoryError:
            self.warn(f"{shown} could not be decoded: out of memory")
            return True
        except Exception as exc:
            self.warn(f"{shown} could not be decoded: {type(exc).__name__}: {exc}")
            return True
        before = (len(self.attachments), self.text_len)
        self._tnef_contents(tnef, shown, depth + 1, (*path, shown), archive_level, 0)
        if (len(self.attachments), self.text_len) == before:
            self.warn(f"{shown} holds no files or text we can read")
        return True

    def _tnef_contents(
        self,
        tnef: Any,
        shown: str,
        depth: int,
        path: tuple[str, ...],
        archive_level: int,
        level: int,
    ) -> None:
        body = getattr(tnef, "body", None)
        if isinstance(body, bytes):
            body = _decode_bytes(body)
        if isinstance(body, str):
            self.add_text(body)
        for att in list(getattr(tnef, "attachments", []))[:500]:
            name: object = None
            for attr in ("long_filename", "name"):
                try:
                    value = getattr(att, attr)
                    name = value() if callable(value) else value
                except Exception:  # tnefparse decodes names as it reads them
                    continue
                if name:
                    break
            if isinstance(name, bytes):
                name = _decode_bytes(name.rstrip(b"\x00"))
            fname = name.strip("\x00") if isinstance(name, str) else None
            embed = getattr(att, "embed", None)
            if embed is not None and level < 3:
                self._tnef_contents(
                    embed,
                    shown,
                    depth,
                    (*path, _sanitize_filename(fname) or "embedded message"),
                    archive_level,
                    level + 1,
                )
                continue
            data = getattr(att, "data", b"")
            if isinstance(data, bytes) and data:
                ctype = _EXT_TYPES.get(_ext(fname), "application/octet-stream")
                self.file(fname, ctype, data, depth, path, archive_level)

    def _zip(
        self,
        shown: str,
        data: bytes,
        depth: int,
        path: tuple[str, ...],
        archive_level: int,
    ) -> bool:
        """Unpack a zip within the limits; False if it cannot be opened (kept as is)."""
        lim = self.limits
        if archive_level >= 2:
            self.warn(f"zip {shown} inside a zip inside a zip skipped")
            return True
        if depth + 1 > lim.max_depth:
            self.warn(f"zip {shown} skipped: nesting deeper than {lim.max_depth}")
            return True
        declared = _zip_entry_count(data)
        if declared is not None and declared > max(lim.max_zip_entries * 5, 1000):
            self.warn(
                f"zip {shown} skipped: {declared} entries (limit {lim.max_zip_entries})"
            )
            return True
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            OSError,
            ValueError,
            EOFError,
            struct.error,
        ) as exc:
            self.warn(
                f"zip {shown} could not be opened ({exc}); kept as a plain attachment"
            )
            return False
        with zf:
            self._zip_entries(zf, shown, depth, path, archive_level)
        return True

    def _zip_entries(
        self,
        zf: zipfile.ZipFile,
        shown: str,
        depth: int,
        path: tuple[str, ...],
        archive_level: int,
    ) -> None:
        lim = self.limits
        infos = zf.infolist()
        inner_path = (*path, shown)
        entries = []
        for info in infos:
            ename = _zip_name(info)
            base = ename.replace("\\", "/").rsplit("/", 1)[-1]
            if info.is_dir() or ename.startswith("__MACOSX/") or "/__MACOSX/" in ename:
                continue
            if (
                base.startswith("._")
                or base in (".DS_Store", "Thumbs.db", "desktop.ini")
                or not base
            ):
                continue
            entries.append((info, ename))
        if len(entries) > lim.max_zip_entries:
            self.warn(
                f"zip {shown} has {len(entries)} files: first {lim.max_zip_entries} examined"
            )
            entries = entries[: lim.max_zip_entries]
        declared_total = 0
        for info, ename in entries:
            label = _sanitize_filename(ename) or "entry"
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > _RATIO_FLOOR and ratio > lim.max_zip_ratio:
                self.warn(
                    f"zip bomb suspected in {shown}: {label} ratio {ratio:.0f}:1, skipped"
                )
                continue
            if info.file_size > lim.max_attachment_bytes:
                self.warn(
                    f"{shown} > {label} skipped: {info.file_size} bytes exceeds {lim.max_attachment_bytes}"
                )
                continue
            declared_total += info.file_size
            if declared_total > lim.max_zip_total:
                self.warn(
                    f"zip {shown} unpacks to more than {lim.max_zip_total} bytes: remaining files skipped"
                )
                break
            if info.flag_bits & 0x1:
                self.warn(f"{shown} > {label} is password-protected, skipped")
                continue
            try:
                with zf.open(info) as fh:
                    content = fh.read(lim.max_attachment_bytes + 1)
            except (
                zipfile.BadZipFile,
                RuntimeError,
                NotImplementedError,
                OSError,
                EOFError,
                ValueError,
                struct.error,
            ) as exc:
                self.warn(
                    f"{shown} > {label} could not be read ({type(exc).__name__}: {exc})"
                )
                continue
            except Exception as exc:  # zlib.error and friends
                self.warn(
                    f"{shown} > {label} could not be read ({type(exc).__name__}: {exc})"
                )
                continue
            if len(content) > lim.max_attachment_bytes:
                self.warn(f"{shown} > {label} skipped: larger than declared")
                continue
            ctype = _EXT_TYPES.get(_ext(ename), "application/octet-stream")
            self.file(ename, ctype, content, depth + 1, inner_path, archive_level + 1)

    # -- result

    def finish(self, root: Message) -> None:
        if self.part_limit_hit:
            total = _count_parts(root)
            self.warn(
                f"MIME part limit reached: {total} parts, first {self.limits.max_parts} examined"
            )
        if self.text_truncated:
            self.warn(f"body text truncated to {self.limits.max_body_chars} characters")

    def report(self) -> DeliveryReport | None:
        if self.dsn_blocks is None:
            return None
        recipients: list[RecipientStatus] = []
        for block in self.dsn_blocks:
            final = _dsn_addr(block.get("final-recipient"))
            original = _dsn_addr(block.get("original-recipient"))
            if not (final or original or "action" in block):
                continue
            status = (block.get("status") or "").split(" ", 1)[0]
            recipients.append(
                RecipientStatus(
                    final_recipient=final,
                    original_recipient=original,
                    action=(block.get("action") or "").split(" ", 1)[0].strip().lower(),
                    status=_clean(status, 20),
                    diagnostic=_clean(block.get("diagnostic-code") or "", 300),
                )
            )
            if len(recipients) >= _MAX_ADDRESSES:
                break
        return DeliveryReport(
            recipients=tuple(recipients), original_message_id=self.original_id
        )


def _dsn_text_blocks(text: str) -> list[dict[str, str]]:
    """RFC 3464 field blocks from text, for delivery-status parts the parser left as text."""
    blocks: list[dict[str, str]] = []
    for chunk in re.split(
        r"\n[ \t]*\n", text.replace("\r\n", "\n").replace("\r", "\n")
    )[:_MAX_ADDRESSES]:
        fields: dict[str, str] = {}
        current = None
        for line in chunk.split("\n")[:200]:
            if line[:1] in (" ", "\t") and current:
                fields[current] = _clean(fields[current] + " " + line, 500)
            elif ":" in line:
                key, _, value = line.partition(":")
                current = key.strip().lower()
                fields.setdefault(current, _clean(value, 500))
        if fields:
            blocks.append(fields)
    return blocks


def _dsn_addr(value: str | None) -> str | None:
    """``rfc822; user@host`` → ``user@host`` (domain lower-cased)."""
    if not value:
        return None
    addr = value.split(";", 1)[1] if ";" in value else value
    return _norm_addr(addr)


# --------------------------------------------------------------------------- entry point


def parse_message(raw: bytes, limits: MimeLimits = MimeLimits()) -> ParsedMessage:
    """Parse one raw message within ``limits``; never raises.

    Whatever cannot be read is left out and explained in ``warnings``; if even the
    structure cannot be parsed, the headers alone are returned so that loop
    protection still sees From, Subject and the auto-reply headers.
    """
    try:
        data = bytes(raw)
    except Exception:
        return ParsedMessage(warnings=("input is not bytes",))
    try:
        return _parse(data, limits)
    except Exception as exc:  # incl. RecursionError and MemoryError
        reason = f"message structure could not be parsed ({type(exc).__name__}); headers only"
        try:
            return _build(
                _parse_bytes(data[: 4 * MiB], headers_only=True), None, [reason]
            )
        except Exception as exc2:
            return ParsedMessage(
                warnings=(
                    reason,
                    f"headers could not be parsed ({type(exc2).__name__})",
                )
            )


def _parse(data: bytes, limits: MimeLimits) -> ParsedMessage:
    cap = (
        limits.max_total_bytes + limits.max_total_bytes // 2 + 4 * MiB
    )  # base64 inflates by a third
    if len(data) > cap:
        msg = _parse_bytes(data[: 4 * MiB], headers_only=True)
        return _build(
            msg, None, [f"message too large ({len(data)} bytes): only headers read"]
        )
    try:
        msg = _parse_bytes(data)
    except RecursionError:
        msg = _parse_bytes(data[: 4 * MiB], headers_only=True)
        return _build(
            msg, None, ["MIME structure nested too deeply: only headers read"]
        )
    walker = _Walker(limits)
    walker.enter_message(msg, 0, (), None)
    walker.finish(msg)
    return _build(msg, walker, walker.warnings)


def _build(msg: Message, walker: _Walker | None, warnings: list[str]) -> ParsedMessage:
    """Decode the root headers and assemble the result."""
    h = _Headers(msg)
    froms = _addresses(h.all("from")[:1])
    replies = _addresses(h.all("reply-to")[:1])
    rp = h.first("return-path")
    return_path: str | None = None
    if rp is not None:
        inner = rp.strip()
        inner = (
            inner[1:-1].strip()
            if inner.startswith("<") and inner.endswith(">")
            else inner
        )
        return_path = "" if inner in ("", "<>") else _norm_addr(inner)
    headers: dict[str, str] = {}
    for key in LOOP_HEADERS:
        vals = h.all(key)
        if vals:
            joined = ", ".join(_decode_words(v) for v in vals)
            headers[key] = _clean(joined, _HEADER_CHARS)
    ids = _msg_ids(h.first("message-id"))
    from_name = froms[0][0] if froms else None
    if not froms and h.first("from"):
        # No parseable address: keep a cleaned display form for the admin, never an address.
        from_name = _clean(_decode_words(h.first("from") or ""), 200) or None
    return ParsedMessage(
        message_id=ids[0] if ids else None,
        subject=_clean(
            _decode_words(_cap_raw(h.first("subject") or "", 4000)), _SUBJECT_CHARS
        ),
        from_addr=froms[0][1] if froms else None,
        from_name=from_name or None,
        reply_to=replies[0][1] if replies else None,
        return_path=return_path,
        to=tuple(a for _, a in _addresses(h.all("to"))),
        cc=tuple(a for _, a in _addresses(h.all("cc"))),
        date=_date(h.first("date")),
        in_reply_to=tuple(_msg_ids(h.first("in-reply-to"))),
        references=tuple(_msg_ids(" ".join(h.all("references")))),
        text="\n\n".join(walker.texts) if walker else "",
        attachments=tuple(walker.attachments) if walker else (),
        headers=MappingProxyType(headers),
        warnings=tuple(warnings),
        report=walker.report() if walker else None,
    )
