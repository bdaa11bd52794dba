"""Tell a file's format from its bytes, never from its name.

Participants rename files freely (a PNG called .tiff, WordML saved as .doc, a text
file called .odt), so the extension is ignored. Formats:

``docx`` (also .docm and a truncated docx), ``odt`` (zip or flat .fodt XML), ``pdf``,
``doc`` (Word 97-2003 binary), ``msg`` (Outlook message), ``ole2`` (other OLE2 compound
files, e.g. a password-protected docx), ``rtf``, ``image``, ``tnef`` (winmail.dat),
``wordml`` (Word 2003 XML), ``wordperfect`` (WordPerfect 5.x and later; 4.x files
carry no magic and stay ``unknown``), ``zip`` (any other zip), ``unknown``.
"""

from __future__ import annotations

import re
import zipfile
from io import BytesIO
from typing import Final

__all__ = ["FORMATS", "sniff"]

FORMATS: Final = frozenset(
    {
        "docx",
        "odt",
        "pdf",
        "doc",
        "msg",
        "ole2",
        "rtf",
        "image",
        "tnef",
        "wordml",
        "wordperfect",
        "zip",
        "unknown",
    }
)

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ODT_MIME = b"application/vnd.oasis.opendocument.text"
_IMAGE_MAGIC = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"II*\x00",  # TIFF little-endian
    b"MM\x00*",  # TIFF big-endian
    b"GIF87a",
    b"GIF89a",
    b"BM",
)
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    ValueError,
    KeyError,
    EOFError,
    NotImplementedError,
)
_LOCAL_HEADER = re.compile(rb"PK\x03\x04.{22}(..)(..)", re.DOTALL)


def sniff(data: bytes) -> str:
    """Return the format name for ``data`` (one of ``FORMATS``)."""
    head = data[:1024]
    if b"%PDF" in head:
        return "pdf"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _sniff_zip(data)
    if data.startswith(_OLE2):
        return _sniff_ole2(data)
    if data.startswith(b"{\\rtf"):
        return "rtf"
    if data.startswith(b"\x78\x9f\x3e\x22"):
        return "tnef"
    # WordPerfect 5.x+: byte 9 is the file type, 0x0a a document (not a WPG image, macro…).
    if data.startswith(b"\xffWPC") and data[9:10] == b"\x0a":
        return "wordperfect"
    for magic in _IMAGE_MAGIC:
        if data.startswith(magic):
            # "BM" is a short magic: also require a plausible BMP header size field.
            if magic == b"BM" and not (
                len(data) > 14 and data[14] in (12, 40, 52, 56, 64, 108, 124)
            ):
                continue
            return "image"
    return _sniff_xml(data[:8192])


def _sniff_zip(data: bytes) -> str:
    names = _zip_names(data)
    if any(n == "mimetype" for n in names[:1]) and _ODT_MIME in data[30:120]:
        return "odt"
    if "mimetype" in names:
        try:
            with zipfile.ZipFile(BytesIO(data)) as zf:
                if zf.getinfo("mimetype").file_size < 200 and zf.read(
                    "mimetype"
                ).startswith(_ODT_MIME):
                    return "odt"
        except _ZIP_ERRORS:
            pass  # a broken package: the local headers below still tell the format
    if any(n.startswith("word/") for n in names):
        return "docx"
    if (
        "[Content_Types].xml" in names
        and "_rels/.rels" in names
        and not any(n.startswith(("xl/", "ppt/")) for n in names)
    ):
        return "docx"  # main part elsewhere (found through _rels/.rels)
    return "zip"


def _zip_names(data: bytes) -> list[str]:
    """Entry names from the central directory, or from local headers if it is broken."""
    try:
        with zipfile.ZipFile(BytesIO(data)) as zf:
            return [i.filename for i in zf.infolist()[:5000]]
    except _ZIP_ERRORS:
        pass  # central directory broken (truncated file): fall back to local headers
    names: list[str] = []
    for m in _LOCAL_HEADER.finditer(data[:1_000_000]):
        name_len = int.from_bytes(m.group(1), "little")
        start = m.end()
        names.append(data[start : start + name_len].decode("cp437", "replace"))
        if len(names) > 200:
            break
    return names


def _sniff_ole2(data: bytes) -> str:
    # Directory entry names are UTF-16LE; a byte search is enough to tell them apart.
    window = data[:4_000_000]
    if "EncryptedPackage".encode("utf-16-le") in window:
        return "ole2"
    # Outlook .msg first: a message with a .doc attachment holds a WordDocument stream too.
    if "__substg1.0_".encode("utf-16-le") in window:
        return "msg"
    if "WordDocument".encode("utf-16-le") in window:
        return "doc"
    return "ole2"


def _sniff_xml(head: bytes) -> str:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        if (
            b"schemas.microsoft.com/office/word/2003/wordml" in head
            or b"<w:wordDocument" in head
        ):
            return "wordml"
        if b"office:document" in head and _ODT_MIME in head:
            return "odt"
    return "unknown"
