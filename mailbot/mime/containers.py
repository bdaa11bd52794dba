"""Low-level readers for the containers that hide attachments: TNEF, CMS and zip.

Each looks only at bytes and is bounded by them: the TNEF check refuses what would
send tnefparse into unbounded loops, the BER reader unpacks opaque-signed S/MIME
without a crypto library, and the zip helpers read what ``zipfile`` gets wrong or
reads too late. The walk decides what to do with the results.
"""

from __future__ import annotations

import struct
import zipfile
from typing import Final

__all__ = [
    "TNEF_SIG",
    "BerError",
    "smime_content",
    "tnef_unsafe",
    "zip_entry_count",
    "zip_name",
]


def _u16(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<H", data, off)[0])


def _u32(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<I", data, off)[0])


# --------------------------------------------------------------------------- TNEF safety

TNEF_SIG: Final = b"\x78\x9f\x3e\x22"
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
                        why = tnef_unsafe(item[len(_IMESSAGE_SIG) :], level + 1)
                        if why:
                            return why, offset
                offset += ln + (-ln % 4)
        if (mv or 1) % 2 and typ in (0x0002, 0x000B):
            offset += 2
    return None, offset


def tnef_unsafe(data: bytes, level: int = 0) -> str | None:
    """Why tnefparse must not be given ``data`` (None when its loops are bounded)."""
    n = len(data)
    if n < 6 or not data.startswith(TNEF_SIG):
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


class BerError(ValueError):
    """The CMS blob is not the shape we can unpack."""


def _ber_read(data: bytes, pos: int, end: int, level: int) -> tuple[int, int, int, int]:
    """One BER element at ``pos``: (tag, content start, content end, next position)."""
    if level > 40:
        raise BerError("nested too deeply")
    if pos + 2 > end:
        raise BerError("truncated")
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        while pos < end and data[pos] & 0x80:
            pos += 1
        pos += 1
    if pos >= end:
        raise BerError("truncated")
    first = data[pos]
    pos += 1
    if first == 0x80:
        if not tag & 0x20:
            raise BerError("indefinite primitive")
        cur = pos
        while True:
            if cur + 2 > end:
                raise BerError("missing end-of-contents")
            if data[cur] == 0 and data[cur + 1] == 0:
                return tag, pos, cur, cur + 2
            cur = _ber_read(data, cur, end, level + 1)[3]
    if first < 0x80:
        length = first
    else:
        nbytes = first & 0x7F
        if nbytes > 8 or pos + nbytes > end:
            raise BerError("bad length")
        length = int.from_bytes(data[pos : pos + nbytes], "big")
        pos += nbytes
    if pos + length > end:
        raise BerError("truncated")
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
            raise BerError("too many elements")
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
        raise BerError("content is not an OCTET STRING")
    if len(out) > cap:
        raise BerError("content too large")


def smime_content(data: bytes, cap: int) -> tuple[str, bytes | None]:
    """Unpack CMS: ("enveloped", None), ("signed", content or None if detached) or ("unknown", None).

    Raises :class:`BerError` (or ``IndexError``) when the blob is not CMS we can read.
    """
    tag, cs, ce, _ = _ber_read(data, 0, len(data), 0)
    if tag != 0x30:
        raise BerError("not a ContentInfo")
    kids = _ber_children(data, cs, ce, 1)
    if not kids or kids[0][0] != 0x06:
        raise BerError("no content type")
    oid = data[kids[0][1] : kids[0][2]]
    if oid in (_OID_ENVELOPED, _OID_AUTH_ENVELOPED):
        return "enveloped", None
    if oid != _OID_SIGNED or len(kids) < 2:
        return "unknown", None
    signed = _ber_children(data, kids[1][1], kids[1][2], 2)
    sd = _ber_children(data, signed[0][1], signed[0][2], 3)
    if len(sd) < 3:
        raise BerError("short SignedData")
    encap = _ber_children(data, sd[2][1], sd[2][2], 4)
    if len(encap) < 2:
        return "signed", None
    inner = _ber_children(data, encap[1][1], encap[1][2], 5)
    if not inner:
        return "signed", None
    out = bytearray()
    _ber_octets(data, inner[0][0], inner[0][1], inner[0][2], 6, out, cap)
    return "signed", bytes(out)


# --------------------------------------------------------------------------- zip


def zip_entry_count(data: bytes) -> int | None:
    """Entry count from the end-of-central-directory record, read before ZipFile lists it all."""
    pos = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if pos < 0 or pos + 12 > len(data):
        return None
    return _u16(data, pos + 10)


def zip_name(info: zipfile.ZipInfo) -> str:
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
