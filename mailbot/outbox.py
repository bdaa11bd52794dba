"""Outgoing mail as database rows first, wire transactions second.

A reply is composed completely (bytes, Message-ID) when it is queued, inside the same
transaction that records why it is sent; delivery later just hands those bytes to a
transport. The unique ``dedupe_key`` means a reprocessed message can never queue a
second copy, and a row is marked ``sent`` only after the transport accepted it.

Delivery semantics (also in the README): a process claims a row with a conditional
UPDATE (``sending``, its name in ``claimed_by``, a ``lease_until`` on the database's
clock), so several processes on one store never send the same row at once. A crash
before the SMTP transaction leaves the row ``queued``/``retry`` and it is sent on the
next run; a crash during or right after it leaves the row ``sending`` and the sweeper
puts it back once the lease ran out — the one window where a participant can get a mail
twice (at-least-once), never zero times.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.policy
import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from typing import Any

from sqlalchemy import ColumnElement, func, update
from sqlmodel import Session, col, select

from mailbot.errors import DeliveryError
from mailbot.store.claims import claimer_name, db_clock
from mailbot.store.tables import OutboundMail
from mailbot.templating import Rendered
from mailbot.transport.base import Envelope, Transport

log = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)
"""How long a claim holds a row 'sending' (one SMTP transaction, connection included)
before the sweeper may give it to another process, measured on the database's clock."""
STUCK_AFTER = dt.timedelta(minutes=15)
"""The same for rows claimed by a version without leases, on the pass's clock."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class FileAttachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class ReplyTo:
    """The message we answer, for threading headers."""

    message_id: str | None
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sender:
    address: str
    name: str
    bcc: tuple[str, ...] = ()


@dataclass
class DeliveryStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0
    """Due but left for the next run: over the per-minute rate limit, or behind a
    connection that could not be opened."""
    errors: list[str] = field(default_factory=list)


def clean_header_text(text: str | None, limit: int = 120) -> str:
    """Text safe for a header: no CR/LF or control characters (no header injection from a
    name typed on a form), whitespace collapsed, bounded length."""
    if not text:
        return ""
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


_ATOM = frozenset("!#$%&'*+-/=?^_`{|}~.")


def _is_atom(word: str) -> bool:
    return bool(word) and word.isascii() and all(c.isalnum() or c in _ATOM for c in word)


def _encoded_phrase(text: str) -> str:
    """RFC 2047 encoding of a display name that never splits a word between two
    encoded-words (the stdlib folder does, and some readers then show "sa morządowych").

    Runs of words that need encoding become one encoded-word, the spaces inside it;
    a run over 45 bytes is cut after a space, so the space travels inside the encoding
    (whitespace *between* encoded-words is ignored by readers).
    """
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if not run:
            return
        pieces, current = [], ""
        for i, word in enumerate(run):
            token = word if i == 0 else " " + word
            if current and len((current + token).encode()) > 45:
                pieces.append(current)
                current = token
            else:
                current += token
        pieces.append(current)
        for piece in pieces:
            out.append(f"=?utf-8?b?{base64.b64encode(piece.encode()).decode()}?=")
        run.clear()

    for word in text.split(" "):
        if _is_atom(word):
            flush()
            out.append(word)
        else:
            run.append(word)
    flush()
    return " ".join(out)


def _fold(value: str, name: str) -> str:
    """Fold at spaces so no line exceeds 78 characters (RFC 5322)."""
    lines: list[str] = []
    current = ""
    for token in value.split(" "):
        candidate = f"{current} {token}" if current else token
        limit = 78 - (len(name) + 2 if not lines else 1)
        if current and len(candidate) > limit:
            lines.append(current)
            current = token
        else:
            current = candidate
    lines.append(current)
    return "\r\n ".join(lines)


def _address_header(msg: EmailMessage, field: str, address: str, name: str | None) -> None:
    display = clean_header_text(name)
    if not display:
        msg[field] = address
        return
    if display.isascii():
        msg[field] = Address(display_name=display, addr_spec=address)
        return
    msg.set_raw(field, _fold(f"{_encoded_phrase(display)} <{address}>", field))


def compose(
    *,
    sender: Sender,
    to: str,
    to_name: str | None,
    rendered: Rendered,
    kind: str,
    dedupe_key: str,
    ref: str,
    now: dt.datetime,
    reply_to: ReplyTo | None = None,
    attachments: Sequence[FileAttachment] = (),
    auto_submitted: str = "auto-replied",
) -> EmailMessage:
    """Build the reply; its Message-ID derives from the dedupe key, so it is stable.

    ``auto_submitted``: ``auto-replied`` for answers, ``auto-generated`` for mail nobody
    asked for (the organisers' daily digest), per RFC 3834."""
    msg = EmailMessage()
    _address_header(msg, "From", sender.address, sender.name)
    _address_header(msg, "To", to, to_name)
    msg["Subject"] = clean_header_text(rendered.subject, limit=250)
    msg["Date"] = format_datetime(now)
    domain = sender.address.rpartition("@")[2] or "mailbot.invalid"
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]
    msg["Message-ID"] = f"<{digest}.{kind}@{domain}>"
    if reply_to and reply_to.message_id:
        msg["In-Reply-To"] = f"<{reply_to.message_id}>"
        refs = [*reply_to.references[-10:], reply_to.message_id]
        msg["References"] = " ".join(f"<{r}>" for r in refs)
    # RFC 3834: mark as automatic so well-behaved responders stay silent; the Microsoft
    # header stops Exchange/Outlook out-of-office replies to us.
    msg["Auto-Submitted"] = auto_submitted
    msg["X-Auto-Response-Suppress"] = "OOF, NRN, AutoReply, RN"
    msg["Precedence"] = "auto_reply"
    msg["X-Mailbot-Kind"] = kind
    msg["X-Mailbot-Ref"] = ref
    msg["X-Loop"] = sender.address
    msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    for att in attachments:
        kind, *raw_params = (part.strip() for part in att.content_type.split(";"))
        maintype, _, subtype = kind.partition("/")
        params = dict(p.split("=", 1) for p in raw_params if "=" in p)
        msg.add_attachment(
            att.data, maintype=maintype, subtype=subtype, filename=att.filename, params=params
        )
    return msg


def replies_today(session: Session, address: str, now: dt.datetime) -> int:
    """Automatic replies queued to ``address`` in the 24 hours before ``now``."""
    since = now - dt.timedelta(days=1)
    count = session.exec(
        select(func.count())
        .select_from(OutboundMail)
        .where(OutboundMail.to_addr == address.casefold(), col(OutboundMail.created_at) >= since)
    ).one()
    return int(count)


def enqueue(
    session: Session,
    *,
    message: EmailMessage,
    kind: str,
    dedupe_key: str,
    to: str,
    bcc: Sequence[str],
    now: dt.datetime,
    inbound_id: int | None = None,
    registration_id: int | None = None,
) -> OutboundMail | None:
    """Queue ``message`` unless a mail with the same dedupe key exists (returns None)."""
    existing = session.exec(select(OutboundMail).where(OutboundMail.dedupe_key == dedupe_key)).first()
    if existing is not None:
        return None
    row = OutboundMail(
        dedupe_key=dedupe_key,
        kind=kind,
        to_addr=to.casefold(),
        subject=str(message["Subject"]),
        message_id=str(message["Message-ID"]),
        inbound_id=inbound_id,
        registration_id=registration_id,
        raw=message.as_bytes(policy=email.policy.SMTP),  # CRLF, as SMTP requires
        envelope_to="\n".join([to, *bcc]),
        status="queued",
        created_at=now,
        next_attempt_at=now,
    )
    session.add(row)
    session.flush()
    return row


def backoff(attempts: int) -> dt.timedelta:
    """1, 2, 4 … minutes, capped at an hour."""
    return dt.timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


def sweep_stuck(session: Session, now: dt.datetime) -> int:
    """Put rows whose sender vanished back into the queue: 'sending' past their lease on
    the database's clock, or (rows claimed before leases existed) older than
    ``STUCK_AFTER`` on the pass's clock. Each is one conditional UPDATE, safe to race."""
    put_back = {
        "status": "retry",
        "lease_until": None,
        "last_error": "delivery interrupted (process stopped during sending); retrying",
    }
    sending = col(OutboundMail.status) == "sending"
    expired = session.exec(
        update(OutboundMail)
        .where(sending, col(OutboundMail.lease_until) < db_clock(session))
        .values(**put_back)
    ).rowcount
    legacy = session.exec(
        update(OutboundMail)
        .where(sending, col(OutboundMail.lease_until).is_(None), col(OutboundMail.claimed_at) < now - STUCK_AFTER)
        .values(**put_back)
    ).rowcount
    session.commit()
    if expired or legacy:
        log.warning("%d mail(s) left 'sending' by a stopped process go back to the queue", expired + legacy)
    return int(expired) + int(legacy)


def _due(now: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        col(OutboundMail.status).in_(("queued", "retry")),
        col(OutboundMail.next_attempt_at) <= now,
    )


def claim_next(session_factory: Callable[[], Session], me: str, now: dt.datetime) -> OutboundMail | None:
    """Take the oldest due row for ``me``, or None when nothing is due.

    The conditional UPDATE changes the row only while it is still due, so of two
    processes racing for it exactly one sees ``rowcount == 1``; the loser tries the next
    row. On PostgreSQL ``FOR UPDATE SKIP LOCKED`` makes the racers pick different rows."""
    while True:
        with session_factory() as session:
            pick = select(OutboundMail.id).where(*_due(now)).order_by(col(OutboundMail.id)).limit(1)
            if session.get_bind().dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            row_id = session.exec(pick).first()
            if row_id is None:
                return None
            claimed = session.exec(
                update(OutboundMail)
                .where(col(OutboundMail.id) == row_id, *_due(now))
                .values(
                    status="sending",
                    claimed_by=me,
                    claimed_at=now,
                    lease_until=db_clock(session, LEASE),
                    attempts=col(OutboundMail.attempts) + 1,
                )
            ).rowcount
            if claimed != 1:
                session.rollback()
                continue
            session.commit()
            return session.get(OutboundMail, row_id)


def _settle(session_factory: Callable[[], Session], row_id: int | None, me: str, **values: Any) -> bool:
    """Record a claimed row's outcome, only while ``me`` still holds it (also after the
    sweeper put it back but before anyone claimed it again). True once committed."""
    with session_factory() as session:
        changed = session.exec(
            update(OutboundMail)
            .where(
                col(OutboundMail.id) == row_id,
                col(OutboundMail.claimed_by) == me,
                col(OutboundMail.status).in_(("sending", "retry")),
            )
            .values(lease_until=None, **values)
        ).rowcount
        session.commit()
    return changed == 1


def _count_due(session: Session, now: dt.datetime) -> int:
    return int(session.exec(select(func.count()).select_from(OutboundMail).where(*_due(now))).one())


def deliver_due(
    session_factory: Callable[[], Session],
    transport: Transport,
    *,
    now: dt.datetime,
    sender: str,
    max_attempts: int,
    max_per_minute: int = 60,
    limit: int = 500,
) -> DeliveryStats:
    """Send every queued row that is due, each claimed and committed on its own, within
    the rate limit: at most ``max_per_minute`` mails accepted in any minute (counted from
    the rows' ``sent_at``, so it holds across runs and restarts).

    Safe to run in several processes on one store: a row goes out once per claim, and
    a claim is only ever held by one process (see :func:`claim_next`)."""
    stats = DeliveryStats()
    me = claimer_name()
    with session_factory() as session:
        sweep_stuck(session, now)
        sent_last_minute = session.exec(
            select(func.count())
            .select_from(OutboundMail)
            .where(OutboundMail.status == "sent", col(OutboundMail.sent_at) > now - dt.timedelta(minutes=1))
        ).one()
        by_rate = max(0, max_per_minute - int(sent_last_minute))
        budget = min(limit, by_rate)
        stats.deferred = max(0, _count_due(session, now) - budget)
    if stats.deferred:
        held = (
            f"rate limit {max_per_minute}/min (outbox.max_per_minute)" if by_rate <= limit
            else f"{limit} mails per run (outbox.max_per_pass)"
        )
        log.info("%s: %d due mail(s) wait for the next run", held, stats.deferred)
    opened = False
    try:
        for _ in range(budget):
            row = claim_next(session_factory, me, now)
            if row is None:
                break
            if not opened:
                try:
                    transport.open()
                    opened = True
                except DeliveryError as e:
                    # The server, not this mail, is the problem: put the row back and
                    # leave the rest of the queue untouched for the next run. Not this
                    # mail's attempt: it keeps its count of tries.
                    _settle(
                        session_factory, row.id, me, status="retry", attempts=row.attempts - 1,
                        next_attempt_at=now + backoff(1), last_error=str(e)[:2000],
                    )  # fmt: skip
                    stats.retried += 1
                    stats.errors.append(str(e))
                    with session_factory() as session:
                        stats.deferred = _count_due(session, now)
                    log.warning("cannot reach the mail server (%s); %d mail(s) wait", e, stats.deferred + 1)
                    break
            try:
                recipients = tuple(a for a in row.envelope_to.split("\n") if a)
                transport.send(Envelope(sender, recipients, row.raw, row.dedupe_key))
            except DeliveryError as e:
                _record_failure(session_factory, row, me, e, now, max_attempts, stats)
                if not e.permanent:
                    opened = False
                    _quiet_close(transport)
                continue
            stats.sent += 1
            if _settle(session_factory, row.id, me, status="sent", sent_at=now, last_error=None):
                log.info("sent %s mail %s to %s", row.kind, row.message_id, row.to_addr)
            else:
                log.warning(
                    "sent %s mail %s to %s, but its lease ran out and another process took it:"
                    " it may go out twice", row.kind, row.message_id, row.to_addr,
                )  # fmt: skip
    finally:
        if opened:
            _quiet_close(transport)
    return stats


def _record_failure(
    session_factory: Callable[[], Session],
    row: OutboundMail,
    me: str,
    e: DeliveryError,
    now: dt.datetime,
    max_attempts: int,
    stats: DeliveryStats,
) -> None:
    """Commit the failure, then say what happened (never before the database knows)."""
    stats.errors.append(str(e))
    error = str(e)[:2000]
    if e.permanent or row.attempts >= max_attempts:
        stats.failed += 1
        if _settle(session_factory, row.id, me, status="failed", last_error=error):
            log.warning("giving up on %s mail to %s: %s", row.kind, row.to_addr, e)
        return
    stats.retried += 1
    retry_at = now + backoff(row.attempts)
    if _settle(session_factory, row.id, me, status="retry", next_attempt_at=retry_at, last_error=error):
        log.warning("will retry %s mail to %s at %s: %s", row.kind, row.to_addr, retry_at, e)


def _quiet_close(transport: Transport) -> None:
    try:
        transport.close()
    except Exception:  # noqa: BLE001 - closing a broken connection must not mask the real error
        log.debug("ignoring error while closing transport", exc_info=True)
