"""Decoded files: containers opened, attached mail parsed, everything else kept.

A file is anything the walk has decoded to bytes: a MIME leaf, a zip entry, a
winmail.dat attachment, a uuencoded block. Zips, TNEF and opaque-signed S/MIME
are unpacked within the depth, entry and size limits, and the mail found inside
them goes back to the tree walk (the abstract hooks below); the rest becomes an
:class:`~mailbot.mime.model.Attachment`.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from abc import ABC, abstractmethod
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from typing import Any, Final

from mailbot.mime.collect import Collector
from mailbot.mime.containers import (
    TNEF_SIG,
    BerError,
    smime_content,
    tnef_unsafe,
    zip_entry_count,
    zip_name,
)
from mailbot.mime.model import MiB
from mailbot.mime.names import extension, sanitize_filename, type_from_name
from mailbot.mime.text import decode_bytes

__all__ = ["PKCS7_MIME", "Unpacker", "parse_bytes"]

PKCS7_MIME: Final = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
_OFFICE_ZIP_EXTS: Final = frozenset(
    {".docx", ".docm", ".dotx", ".xlsx", ".pptx", ".odt", ".ods", ".odp", ".epub"}
)
_ZIP_TYPES: Final = frozenset(
    {"application/zip", "application/x-zip-compressed", "application/x-zip"}
)
_TNEF_TYPES: Final = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
_RATIO_FLOOR: Final = MiB
"""Compression ratio is only judged above this size: small text files compress well."""


def parse_bytes(data: bytes, headers_only: bool = False) -> Message:
    """Parse a message with the ``compat32`` policy (why: see :mod:`mailbot.mime`)."""
    return BytesParser(policy=compat32).parsebytes(data, headersonly=headers_only)


def _looks_like_mail(data: bytes) -> bool:
    head = data[:4096].lstrip()
    return (
        bool(re.match(rb"(From [^\r\n]*\r?\n)?[A-Za-z0-9-]{1,76}:", head))
        and b"@" in head
    )


class Unpacker(Collector, ABC):
    """Routes decoded files; the tree walk supplies the two hooks for mail found inside."""

    @abstractmethod
    def enter_message(
        self, msg: Message, depth: int, path: tuple[str, ...], label: str | None
    ) -> None:
        """Walk an attached message as a forward (with its From/Date/Subject in the text)."""

    @abstractmethod
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
        """Walk one MIME part and everything below it."""

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
        ext = extension(name)
        shown = sanitize_filename(name) or f"{ctype} part"
        if ctype in PKCS7_MIME or ext == ".p7m":
            self._pkcs7(name, data, depth, path)
            return
        if (
            ctype in _TNEF_TYPES
            or (name or "").strip().lower() == "winmail.dat"
            or data.startswith(TNEF_SIG)
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
                inner = parse_bytes(data)
            except RecursionError:
                self.warn(f"attached message {shown} is nested too deeply to read")
                return
            self.enter_message(inner, depth + 1, (*path, shown), shown)
            return
        self.add_attachment(name, ctype, data, path)

    def _pkcs7(
        self,
        name: str | None,
        data: bytes,
        depth: int,
        path: tuple[str, ...],
    ) -> None:
        shown = sanitize_filename(name) or "smime.p7m"
        try:
            kind, content = smime_content(data, self.limits.max_total_bytes)
        except (BerError, IndexError) as exc:
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
                inner = parse_bytes(content)
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
        if not data.startswith(TNEF_SIG):
            self.warn(
                f"{shown} could not be decoded: not TNEF data (kept as a plain attachment)"
            )
            return False
        why = tnef_unsafe(data)
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
        self._tnef_contents(tnef, depth + 1, (*path, shown), archive_level, 0)
        if (len(self.attachments), self.text_len) == before:
            self.warn(f"{shown} holds no files or text we can read")
        return True

    def _tnef_contents(
        self,
        tnef: Any,
        depth: int,
        path: tuple[str, ...],
        archive_level: int,
        level: int,
    ) -> None:
        body = getattr(tnef, "body", None)
        if isinstance(body, bytes):
            body = decode_bytes(body)
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
                name = decode_bytes(name.rstrip(b"\x00"))
            fname = name.strip("\x00") if isinstance(name, str) else None
            embed = getattr(att, "embed", None)
            if embed is not None and level < 3:
                self._tnef_contents(
                    embed,
                    depth,
                    (*path, sanitize_filename(fname) or "embedded message"),
                    archive_level,
                    level + 1,
                )
                continue
            data = getattr(att, "data", b"")
            if isinstance(data, bytes) and data:
                self.file(
                    fname, type_from_name(fname), data, depth, path, archive_level
                )

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
        declared = zip_entry_count(data)
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
            ename = zip_name(info)
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
            label = sanitize_filename(ename) or "entry"
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
            except Exception as exc:  # BadZipFile, zlib.error, unsupported methods...
                self.warn(
                    f"{shown} > {label} could not be read ({type(exc).__name__}: {exc})"
                )
                continue
            if len(content) > lim.max_attachment_bytes:
                self.warn(f"{shown} > {label} skipped: larger than declared")
                continue
            self.file(
                ename,
                type_from_name(ename),
                content,
                depth + 1,
                inner_path,
                archive_level + 1,
            )
