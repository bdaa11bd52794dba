"""The entry point: raw bytes to a :class:`ParsedMessage`, whatever arrives.

:func:`parse_message` never raises. Oversized or unparseable mail still yields its
root headers, so that loop protection always sees From, Subject and the
auto-reply headers; what was skipped, and why, is in ``warnings``.
"""

from __future__ import annotations

from email.message import Message
from types import MappingProxyType
from typing import Final

from mailbot.mime.headers import (
    SUBJECT_CHARS,
    Headers,
    addresses,
    cap_raw,
    msg_ids,
    norm_addr,
    parse_date,
)
from mailbot.mime.model import LOOP_HEADERS, MiB, MimeLimits, ParsedMessage
from mailbot.mime.text import clean, decode_words
from mailbot.mime.unpack import parse_bytes
from mailbot.mime.walk import Walker

__all__ = ["parse_message"]

_HEADER_CHARS: Final = 500


def parse_message(
    raw: bytes,
    limits: MimeLimits = MimeLimits(),  # noqa: B008 - frozen, safe to share
) -> ParsedMessage:
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
                parse_bytes(data[: 4 * MiB], headers_only=True), None, [reason]
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
        msg = parse_bytes(data[: 4 * MiB], headers_only=True)
        return _build(
            msg, None, [f"message too large ({len(data)} bytes): only headers read"]
        )
    try:
        msg = parse_bytes(data)
    except RecursionError:
        msg = parse_bytes(data[: 4 * MiB], headers_only=True)
        return _build(
            msg, None, ["MIME structure nested too deeply: only headers read"]
        )
    walker = Walker(limits)
    walker.enter_message(msg, 0, (), None)
    walker.finish(msg)
    return _build(msg, walker, walker.warnings)


def _build(msg: Message, walker: Walker | None, warnings: list[str]) -> ParsedMessage:
    """Decode the root headers and assemble the result."""
    h = Headers(msg)
    froms = addresses(h.all("from")[:1])
    replies = addresses(h.all("reply-to")[:1])
    rp = h.first("return-path")
    return_path: str | None = None
    if rp is not None:
        inner = rp.strip()
        inner = (
            inner[1:-1].strip()
            if inner.startswith("<") and inner.endswith(">")
            else inner
        )
        return_path = "" if inner in ("", "<>") else norm_addr(inner)
    headers: dict[str, str] = {}
    for key in LOOP_HEADERS:
        vals = h.all(key)
        if vals:
            joined = ", ".join(decode_words(v) for v in vals)
            headers[key] = clean(joined, _HEADER_CHARS)
    ids = msg_ids(h.first("message-id"))
    from_name = froms[0][0] if froms else None
    if not froms and h.first("from"):
        # No parseable address: keep a cleaned display form for the admin, never an address.
        from_name = clean(decode_words(h.first("from") or ""), 200) or None
    return ParsedMessage(
        message_id=ids[0] if ids else None,
        subject=clean(
            decode_words(cap_raw(h.first("subject") or "", 4000)), SUBJECT_CHARS
        ),
        from_addr=froms[0][1] if froms else None,
        from_name=from_name or None,
        reply_to=replies[0][1] if replies else None,
        return_path=return_path,
        to=tuple(a for _, a in addresses(h.all("to"))),
        cc=tuple(a for _, a in addresses(h.all("cc"))),
        date=parse_date(h.first("date")),
        in_reply_to=tuple(msg_ids(h.first("in-reply-to"))),
        references=tuple(msg_ids(" ".join(h.all("references")))),
        text="\n\n".join(walker.texts) if walker else "",
        attachments=tuple(walker.attachments) if walker else (),
        headers=MappingProxyType(headers),
        warnings=tuple(warnings),
        report=walker.report() if walker else None,
    )
