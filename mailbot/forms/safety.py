"""Guards for opening untrusted zip packages and XML parts.

Attachments come from anyone: a zip bomb, a billion-laughs entity or an XXE fetch
must cost a bounded amount of time and memory and end as ``unreadable``, never as a
crash or a network request. Every docx/odt read goes through here.
"""

from __future__ import annotations

import io
import threading
import zipfile
import zlib

from lxml import etree

from mailbot.errors import FormError
from mailbot.forms.model import Limits

__all__ = ["MAX_COMPRESSION_RATIO", "MAX_XML_DEPTH", "SafeZip", "check_counts", "parse_xml"]

MAX_COMPRESSION_RATIO = 200
"""Declared size / compressed size above which an entry is treated as a zip bomb.

Word's XML compresses about 10:1, repetitive parts (styles) up to ~60:1.
"""

MAX_XML_DEPTH = 200
"""Element nesting bound; libxml2 without huge_tree stops at 256 anyway."""

_PARSER_OPTIONS = {
    "resolve_entities": False,
    "no_network": True,
    "huge_tree": False,
    "load_dtd": False,
    "dtd_validation": False,
    "remove_comments": True,
    "remove_pis": True,
}


class SafeZip:
    """A zip archive whose entries were checked before any is decompressed."""

    def __init__(self, data: bytes, limits: Limits) -> None:
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as e:
            raise FormError(f"damaged zip package: {e}") from e
        infos = self._zip.infolist()
        if len(infos) > limits.max_zip_entries:
            raise FormError(
                f"zip package has {len(infos)} entries (limit {limits.max_zip_entries})"
            )
        total = 0
        for info in infos:
            total += info.file_size
            if info.flag_bits & 0x1:
                raise FormError("encrypted zip package")
            if info.file_size > 1_000_000 and (
                info.compress_size == 0
                or info.file_size / info.compress_size > MAX_COMPRESSION_RATIO
            ):
                raise FormError(
                    f"zip entry {info.filename!r} is compressed suspiciously well (zip bomb?)"
                )
        if total > limits.max_decompressed_bytes:
            raise FormError(
                f"zip package would unpack to {total} bytes (limit {limits.max_decompressed_bytes})"
            )
        self._limits = limits
        self.names = frozenset(i.filename for i in infos)

    def read(self, name: str) -> bytes:
        """Read one entry, never more than the declared size or the package limit."""
        try:
            info = self._zip.getinfo(name)
        except KeyError as e:
            raise FormError(f"zip package has no {name!r}") from e
        cap = min(info.file_size, self._limits.max_decompressed_bytes)
        try:
            with self._zip.open(info) as fh:
                data = fh.read(cap + 1)
        except (
            zipfile.BadZipFile,
            OSError,
            EOFError,
            ValueError,
            NotImplementedError,
            zlib.error,
        ) as e:
            raise FormError(f"cannot unpack {name!r}: {e}") from e
        if len(data) > cap:
            raise FormError(f"zip entry {name!r} is larger than declared")
        return data


def parse_xml(data: bytes, part: str = "XML part") -> etree._Element:
    """Parse an XML part with no DTD, no entities, no network and bounded depth.

    Documents with a DOCTYPE are rejected outright: Office and ODF parts never carry
    one, so its presence means an XXE or entity-expansion attempt.
    """
    head = data[:65536]
    if b"<!DOCTYPE" in head or b"<\x00!\x00D\x00O\x00C\x00T\x00Y\x00P\x00E" in head:
        raise FormError(f"{part} declares a DTD (entity expansion / XXE attempt)")
    parser = _parser()
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        raise FormError(f"{part} is not well-formed XML: {e}") from e
    if root is None:
        raise FormError(f"{part} is empty")
    docinfo = root.getroottree().docinfo
    if (
        docinfo.internalDTD is not None
        or docinfo.externalDTD is not None
        or docinfo.doctype
    ):
        raise FormError(f"{part} declares a DTD (entity expansion / XXE attempt)")
    _check_depth(root, part)
    return root


_LOCAL = threading.local()


def _parser() -> etree.XMLParser:
    """One hardened parser per thread: lxml parsers must not be shared across threads."""
    parser: etree.XMLParser | None = getattr(_LOCAL, "parser", None)
    if parser is None:
        parser = etree.XMLParser(**_PARSER_OPTIONS)
        _LOCAL.parser = parser
    return parser


def _check_depth(root: etree._Element, part: str) -> None:
    depth = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        if event == "start":
            depth += 1
            if depth > MAX_XML_DEPTH:
                raise FormError(f"{part} nests elements deeper than {MAX_XML_DEPTH}")
        else:
            depth -= 1


def check_counts(
    root: etree._Element, paragraphs: tuple[str, ...], rows: tuple[str, ...], limits: Limits
) -> None:
    """Refuse a body far bigger than any form before walking it.

    Reading costs per paragraph and per row: a legal 48 MB part of them would take
    minutes, so it ends ``unreadable`` after one cheap count in lxml.
    """
    for tags, limit, what in (
        (paragraphs, limits.max_paragraphs, "paragraphs"),
        (rows, limits.max_table_rows, "table rows"),
    ):
        for count, _ in enumerate(root.iter(*tags), 1):
            if count > limit:
                raise FormError(f"document has more than {limit} {what}")
