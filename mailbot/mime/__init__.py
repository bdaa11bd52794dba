"""Turn raw e-mail bytes into a :class:`ParsedMessage`: decoded headers, body text, attachments.

Mail is hostile input (bounces, part-count bombs, broken boundaries, archives inside
forwards, winmail.dat), and the daemon must survive whatever arrives. So everything
here is pure (no I/O), bounded by :class:`MimeLimits`, and :func:`parse_message` never
raises: what was skipped, and why, is reported in ``ParsedMessage.warnings``.

The structure is parsed with the ``compat32`` policy, not ``policy.default``: on the
3,000-part corpus bomb it is ~8x faster (``default`` re-parses Content-Type for every
part boundary it checks), it splits boundaries that ``default`` gives up on (unquoted
``=`` in the boundary), and it never turns a malformed header into an exception.
Header values are decoded by ``headers`` instead, with explicit charset fallbacks,
because the corpus mixes RFC 2047, RFC 2231, raw 8-bit UTF-8/cp1250 and wrongly
declared charsets.

Modules, lowest layer first: ``model`` (results and limits), ``text`` (charsets,
encoded words, display-safe text), ``headers`` (raw header values, addresses, MIME
parameters), ``containers`` (TNEF, CMS and zip readers), ``names`` (file names and
types), ``payload`` (transfer decoding), ``report`` (DSN fields), ``collect`` (the
bounded output), ``unpack`` (decoded files and containers), ``walk`` (the MIME tree)
and ``parse`` (the entry point).
"""

from __future__ import annotations

from mailbot.mime.model import (
    LOOP_HEADERS,
    Attachment,
    DeliveryReport,
    MimeLimits,
    ParsedMessage,
    RecipientStatus,
)
from mailbot.mime.parse import parse_message

__all__ = [
    "LOOP_HEADERS",
    "Attachment",
    "DeliveryReport",
    "MimeLimits",
    "ParsedMessage",
    "RecipientStatus",
    "parse_message",
]
