"""Attachment file names and content types: what to call a file and what it is.

Names arrive from headers, zips and winmail.dat, often with paths, control or bidi
characters, reserved Windows names or none at all; they end up on disk and in the
admin's view, so every name is sanitised here. Mailers also label most files
``application/octet-stream``, so the extension (or magic bytes) fills in the type.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from mailbot.mime.containers import TNEF_SIG

__all__ = [
    "extension",
    "sanitize_filename",
    "type_for",
    "type_from_name",
    "unnamed_extension",
]

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


def extension(name: str | None) -> str:
    """Lower-case extension with its dot, or ``""`` when there is no plausible one."""
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
    if head.startswith(TNEF_SIG):
        return ".dat"
    return ".bin"


def unnamed_extension(ctype: str, data: bytes) -> str:
    """Extension for a file sent without a name: from its declared type, else its bytes."""
    return _TYPE_EXTS.get(ctype) or _sniff_ext(data)


def sanitize_filename(name: str | None) -> str:
    """Only the last path component, printable, length-capped with its extension kept."""
    if not name:
        return ""
    name = unicodedata.normalize("NFC", name)
    name = "".join(" " if unicodedata.category(c) == "Cc" else c for c in name)
    name = "".join(c for c in name if unicodedata.category(c) != "Cf")  # incl. bidi
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


def type_from_name(name: str | None) -> str:
    """The type implied by a file's extension, for files found inside containers."""
    return _EXT_TYPES.get(extension(name), "application/octet-stream")


def type_for(declared: str, filename: str) -> str:
    """Declared type unless it is generic and the extension says more."""
    if declared in _GENERIC_TYPES or not declared:
        return _EXT_TYPES.get(
            extension(filename), declared or "application/octet-stream"
        )
    return declared
