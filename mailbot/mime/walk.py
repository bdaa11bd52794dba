"""The bounded walk over one message tree: what is body text, what is a file.

Parts are counted and multiparts and forwarded mail nest only to the limits in
:class:`~mailbot.mime.model.MimeLimits`; one broken part costs a warning, never the
rest of the message. Returned copies of our own mail in a bounce are read for their
Message-ID only, never for attachments. Files go to :class:`Unpacker`.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from email.message import Message
from typing import Final

from mailbot.mime.headers import (
    SUBJECT_CHARS,
    Headers,
    content_type,
    msg_ids,
    param,
    raw_header,
    split_params,
)
from mailbot.mime.model import DeliveryReport, MimeLimits
from mailbot.mime.names import sanitize_filename, type_from_name
from mailbot.mime.payload import decode_payload, estimated_size, raw_payload, uu_lines
from mailbot.mime.report import (
    delivery_report,
    dsn_blocks,
    dsn_text_blocks,
    returned_message_id,
)
from mailbot.mime.text import (
    MAX_HTML_CHARS,
    clean,
    decode_bytes,
    decode_words,
    html_to_text,
)
from mailbot.mime.unpack import PKCS7_MIME, Unpacker, parse_bytes

__all__ = ["Walker"]

_MAX_UU_FILES: Final = 20
_UU_BEGIN: Final = re.compile(r"begin [0-7]{3,4} \S")
_UU_NAME: Final = re.compile(rb"begin [0-7]{3,4} (.+)$")

_SIGNATURE_TYPES: Final = frozenset(
    {
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
        "application/pgp-signature",
    }
)


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


class Walker(Unpacker):
    """Collects text, attachments, warnings and DSN data over one message tree."""

    def __init__(self, limits: MimeLimits) -> None:
        super().__init__(limits)
        self.parts = 0
        self.part_limit_hit = False
        self.dsn_blocks: list[dict[str, str]] | None = None
        self.original_id: str | None = None

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
            hdr = Headers(msg)
            lines = ["---------- Forwarded message ----------"]
            for key, title in (
                ("from", "From"),
                ("date", "Date"),
                ("subject", "Subject"),
            ):
                val = hdr.first(key)
                if val:
                    lines.append(f"{title}: {clean(decode_words(val), SUBJECT_CHARS)}")
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
        except Exception as exc:  # one broken part must not cost the whole message
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
        ctype, params = content_type(part, digest)
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
        boundary = param(params, "boundary")
        body = raw_payload(part)
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
            return parse_bytes(head + body)
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
            types = [content_type(k)[0] for k in kids]
            chosen = (
                types.index("text/plain") if "text/plain" in types else len(kids) - 1
            )
        report = ctype == "multipart/report"
        if report and top:
            rtype = (param(params, "report-type") or "").lower()
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
                self._add_dsn_blocks(dsn_blocks(payload))
            return
        if ctype == "message/disposition-notification":
            return
        if in_report or ctype in ("message/rfc822-headers", "text/rfc822-headers"):
            # The returned copy of our own mail: read its id, never its attachments.
            if top and self.original_id is None:
                ids = msg_ids(Headers(inner).first("message-id"))
                self.original_id = ids[0] if ids else None
            return
        if ctype in ("message/rfc822", "message/news", "message/global"):
            _, dparams = split_params(raw_header(part, "content-disposition"))
            name = param(dparams, "filename") or param(content_type(part)[1], "name")
            subject = clean(decode_words(Headers(inner).first("subject") or ""), 60)
            label = sanitize_filename(name) or (
                f"forwarded message ({subject})" if subject else "forwarded message"
            )
            self.enter_message(inner, depth + 1, (*path, label), label)
            return
        if ctype == "message/partial":
            self.warn("message/partial fragment cannot be reassembled")

    def _add_dsn_blocks(self, blocks: list[dict[str, str]]) -> None:
        if self.dsn_blocks is None:
            self.dsn_blocks = []
        self.dsn_blocks.extend(blocks)

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
        disp, dparams = split_params(raw_header(part, "content-disposition"))
        name = param(dparams, "filename") or param(params, "name")
        attached = disp == "attachment"
        if ctype in _SIGNATURE_TYPES or ctype == "application/pgp-encrypted":
            return
        if ctype in ("text/rfc822-headers", "message/rfc822-headers") or (
            in_report and ctype == "message/rfc822"
        ):
            if top and self.original_id is None:
                self.original_id = returned_message_id(
                    decode_bytes(decode_payload(part))
                )
            return
        if ctype == "message/delivery-status":
            if top:
                self._add_dsn_blocks(
                    dsn_text_blocks(decode_bytes(decode_payload(part)))
                )
            return
        if ctype in ("message/rfc822", "message/global", "message/news"):
            self.file(
                name,
                "message/rfc822",
                decode_payload(part),
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
            ctype in PKCS7_MIME
            and "enveloped" in (param(params, "smime-type") or "").lower()
        ):
            self.warn("encrypted S/MIME message: cannot read attachments")
            return
        size = estimated_size(part)
        if size > self.limits.max_attachment_bytes + 1024:
            self.warn(
                f"attachment {sanitize_filename(name) or ctype} skipped: about {size} bytes exceeds {self.limits.max_attachment_bytes}"
            )
            return
        self.file(name, ctype, decode_payload(part), depth, path, archive_level=0)

    def _body(
        self,
        part: Message,
        ctype: str,
        params: list[tuple[str, str]],
        depth: int,
        path: tuple[str, ...],
    ) -> None:
        data = decode_payload(part)
        if len(data) > 4 * MAX_HTML_CHARS:
            data = data[: 4 * MAX_HTML_CHARS]
        text = decode_bytes(data, param(params, "charset"))
        if ctype == "text/html":
            self.add_text(html_to_text(text))
            return
        if "begin " in text:
            text = self._uu_in_text(text, depth, path)
        self.add_text(text)

    def _uu_in_text(self, text: str, depth: int, path: tuple[str, ...]) -> str:
        """Pull classic uuencoded files out of a plain-text body (old Eudora/Pegasus mail).

        One pass: each ``begin`` candidate decodes only up to its ``end``, at most
        ``max_uu_candidates`` are tried, so a body of ``begin`` lines costs its length.
        """
        lines = text.splitlines(keepends=True)
        ends = [k for k, line in enumerate(lines) if line.strip() == "end"]
        if not ends:
            return text
        raw: list[bytes] | None = None
        out: list[str] = []
        i = found = tried = 0
        while i < len(lines):
            line = lines[i]
            if (
                found < _MAX_UU_FILES
                and i < ends[-1]
                and _UU_BEGIN.match(line)
            ):
                if tried >= self.limits.max_uu_candidates:
                    self.warn(
                        f"more than {self.limits.max_uu_candidates} uuencode 'begin' lines: the rest read as text"
                    )
                    out.extend(lines[i:])
                    break
                tried += 1
                end = ends[bisect.bisect_right(ends, i)]
                if raw is None:
                    raw = [x.encode("latin-1", "replace") for x in lines]
                head = _UU_NAME.match(raw[i].strip())
                data = uu_lines(raw, i + 1, end + 1) if head else b""
                if head and data:
                    name = decode_bytes(head.group(1).strip())
                    found += 1
                    out.append(f"[uuencoded file: {sanitize_filename(name)}]\n")
                    self.file(name, type_from_name(name), data, depth, path, 0)
                    i = end + 1
                    continue
            out.append(line)
            i += 1
        return "".join(out)

    # -- result

    def finish(self, root: Message) -> None:
        """Add the warnings that sum up the walk (part limit, truncated body)."""
        if self.part_limit_hit:
            total = _count_parts(root)
            self.warn(
                f"MIME part limit reached: {total} parts, first {self.limits.max_parts} examined"
            )
        if self.text_truncated:
            self.warn(f"body text truncated to {self.limits.max_body_chars} characters")

    def report(self) -> DeliveryReport | None:
        """The delivery report, if the message was one (``None`` otherwise)."""
        if self.dsn_blocks is None:
            return None
        return delivery_report(self.dsn_blocks, self.original_id)
