"""Delivery status notifications (RFC 3464) read into a :class:`DeliveryReport`.

A bounce tells the pipeline which participant address failed and which of our
messages it was about. The per-recipient fields arrive either parsed (the stdlib
reads each block as a header-only message) or as plain text, depending on how the
reporting MTA labelled the part; both end as the same field dicts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.message import Message

from mailbot.mime.headers import MAX_ADDRESSES, msg_ids, norm_addr, unfold
from mailbot.mime.model import DeliveryReport, RecipientStatus
from mailbot.mime.text import clean, fix_8bit

__all__ = [
    "delivery_report",
    "dsn_blocks",
    "dsn_text_blocks",
    "returned_message_id",
]


def dsn_blocks(payload: Sequence[object]) -> list[dict[str, str]]:
    """Field blocks of a parsed ``message/delivery-status`` part (lower-case names)."""
    blocks: list[dict[str, str]] = []
    for block in payload:
        if not isinstance(block, Message):
            continue
        fields: dict[str, str] = {}
        for key, value in block.raw_items():
            fields.setdefault(
                str(key).strip().lower(),
                clean(fix_8bit(unfold(str(value))), 500),
            )
        blocks.append(fields)
    return blocks[:MAX_ADDRESSES]


def dsn_text_blocks(text: str) -> list[dict[str, str]]:
    """RFC 3464 field blocks from text, for delivery-status parts the parser left as text."""
    blocks: list[dict[str, str]] = []
    for chunk in re.split(
        r"\n[ \t]*\n", text.replace("\r\n", "\n").replace("\r", "\n")
    )[:MAX_ADDRESSES]:
        fields: dict[str, str] = {}
        current = None
        for line in chunk.split("\n")[:200]:
            if line[:1] in (" ", "\t") and current:
                fields[current] = clean(fields[current] + " " + line, 500)
            elif ":" in line:
                key, _, value = line.partition(":")
                current = key.strip().lower()
                fields.setdefault(current, clean(value, 500))
        if fields:
            blocks.append(fields)
    return blocks


def returned_message_id(headers_text: str) -> str | None:
    """Message-ID from the returned headers of our mail, when they arrive as text."""
    m = re.search(
        r"^message-id:[ \t]*(.+)$", headers_text, re.IGNORECASE | re.MULTILINE
    )
    ids = msg_ids(m.group(1)) if m else []
    return ids[0] if ids else None


def _dsn_addr(value: str | None) -> str | None:
    """``rfc822; user@host`` → ``user@host`` (domain lower-cased)."""
    if not value:
        return None
    addr = value.split(";", 1)[1] if ";" in value else value
    return norm_addr(addr)


def delivery_report(
    blocks: list[dict[str, str]], original_id: str | None
) -> DeliveryReport:
    """One :class:`RecipientStatus` per block that names a recipient or an action."""
    recipients: list[RecipientStatus] = []
    for block in blocks:
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
                status=clean(status, 20),
                diagnostic=clean(block.get("diagnostic-code") or "", 300),
            )
        )
        if len(recipients) >= MAX_ADDRESSES:
            break
    return DeliveryReport(recipients=tuple(recipients), original_message_id=original_id)
