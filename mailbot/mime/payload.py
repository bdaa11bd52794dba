"""The bytes of a leaf part, transfer-decoded leniently.

Mailers send base64 with junk and missing padding, undeclared 8-bit text and
uuencode (as a transfer encoding or pasted into a text body); each is decoded to
what the sender meant rather than rejected.
"""

from __future__ import annotations

import binascii
import quopri
import re
from collections.abc import Sequence
from email.message import Message
from typing import Final

from mailbot.mime.headers import raw_header
from mailbot.mime.text import decode_bytes, lenient_b64

__all__ = ["decode_payload", "estimated_size", "raw_payload", "uu_decode", "uu_lines"]

_UU_CTES: Final = frozenset({"x-uuencode", "uuencode", "uue", "x-uue"})
_ENCODED_CTES: Final = frozenset({"base64", "quoted-printable"} | _UU_CTES)


def _cte(part: Message) -> str:
    value = raw_header(part, "content-transfer-encoding") or ""
    return value.strip().split(";", 1)[0].strip().strip('"').lower()


def raw_payload(part: Message) -> bytes:
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


def uu_decode(data: bytes) -> tuple[str | None, bytes] | None:
    """Decode the first uuencoded block (``begin 644 name`` .. ``end``) or None."""
    lines = data.splitlines()
    for i, line in enumerate(lines):
        m = _UU_BEGIN.match(line.strip())
        if m:
            return decode_bytes(m.group(1).strip()), uu_lines(lines, i + 1, len(lines))
    return None


_UU_BEGIN: Final = re.compile(rb"begin [0-7]{3,4} (.+)$")


def uu_lines(lines: Sequence[bytes], start: int, stop: int) -> bytes:
    """The data of ``lines[start:stop]`` up to ``end`` or the first line that is not
    uuencode; reads each line once, so one block costs its own length, nothing more."""
    out: list[bytes] = []
    for k in range(start, stop):
        line = lines[k]
        stripped = line.strip()
        if stripped == b"end":
            break
        if not stripped:
            continue
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            try:
                nbytes = (((line[0] - 32) & 63) * 4 + 5) // 3
                out.append(binascii.a2b_uu(line[:nbytes]))
            except (binascii.Error, IndexError):
                break
    return b"".join(out)


def decode_payload(part: Message) -> bytes:
    """Transfer-decode a leaf part leniently (base64 junk, QP, uuencode, 8bit)."""
    raw = raw_payload(part)
    cte = _cte(part)
    if cte == "base64":
        return lenient_b64(raw)
    if cte == "quoted-printable":
        return quopri.decodestring(raw)
    if cte in _UU_CTES:
        res = uu_decode(raw)
        return res[1] if res else raw
    return raw


def estimated_size(part: Message) -> int:
    """Decoded size guessed from the encoded payload, to refuse huge files before decoding."""
    payload = part.get_payload()
    size = len(payload) if isinstance(payload, (str, bytes)) else 0
    return size * 3 // 4 if _cte(part) == "base64" else size
