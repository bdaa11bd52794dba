"""Outgoing mail as database rows first, wire transactions second.

A reply is composed completely (bytes, Message-ID) when it is queued, inside the same
transaction that records why it is sent; delivery later just hands those bytes to a
transport. The unique ``dedupe_key`` means a reprocessed message can never queue a
second copy, and a row is marked ``sent`` only after the transport accepted it.

Delivery semantics (also in the README): a process claims rows with a conditional
UPDATE (``sending``, its name in ``claimed_by``, a ``lease_until`` on the database's
clock), so several processes on one store never send the same row at once; it claims a
batch of rows at a time once its connection is open, and records each row's outcome
with a commit of its own right after the server answered. A crash before a row's SMTP
transaction leaves it ``queued``/``retry`` (or, claimed in a batch but not tried yet,
``sending`` until its lease ran out) and it is sent on a later run; a crash during or
right after the transaction leaves the row ``sending`` and the sweeper puts it back once
the lease ran out — the one window where a participant can get a mail twice
(at-least-once), never zero times.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.policy
import email.quoprimime
import functools
import hashlib
import logging
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, quote

from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, CursorResult, bindparam, func, insert, update
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, col, select

from mailbot.errors import DeliveryError
from mailbot.store.claims import claimer_name, db_clock
from mailbot.store.tables import OutboundMail
from mailbot.transport.base import Envelope, Transport

if TYPE_CHECKING:  # Jinja and Babel are loaded only when a mail is composed
    from mailbot.templating import Rendered

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


@dataclass(frozen=True)
class Composed:
    """A reply serialized once (CRLF, as SMTP wants it), with the two header values its
    outbox row keeps: what :func:`enqueue` needs, without an :class:`EmailMessage`."""

    raw: bytes
    subject: str
    message_id: str


_SMTP = email.policy.SMTP
_PLAIN_VALUE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_FILENAME = re.compile(r"[\x20-\x7e]+")


def _header(name: str, value: str) -> str:
    """``name: value`` exactly as ``email.policy.SMTP`` writes it (see :func:`_parsed`)."""
    return _parsed(name, value)[0]


def _parsed(name: str, value: str) -> tuple[str, str]:
    """The header line as ``email.policy.SMTP`` writes it, and the value a reader gets
    back (``str(msg[name])``). A short, plain ASCII value is written as it is (which is
    what the policy's folder does with it); anything else (long, non-ASCII, encoded
    words, odd spacing, CR/LF) takes the policy's own parse-and-fold, which also refuses
    line breaks."""
    if len(name) + len(value) <= 76 and "=?" not in value and _PLAIN_VALUE.fullmatch(value):
        return f"{name}: {value}\r\n", value
    header = _SMTP.header_store_parse(name, value)[1]
    return str(_SMTP.fold(name, header)), str(header)


def _address_line(field: str, address: str, name: str | None) -> str:
    """:func:`_address_header`, written out."""
    display = clean_header_text(name)
    if not display:
        return _header(field, address)
    if display.isascii():
        return _header(field, str(Address(display_name=display, addr_spec=address)))
    return str(_SMTP.fold(field, _fold(f"{_encoded_phrase(display)} <{address}>", field)))


def _qp_body(text: str) -> str:
    """A text part's body as ``set_content(cte="quoted-printable")`` encodes it."""
    lines = text.encode("utf-8").splitlines()
    body = email.quoprimime.body_encode((b"\n".join(lines) + b"\n").decode("latin-1"), 78)
    return body.replace("\n", "\r\n")


def _text_part(subtype: str, text: str, *, first: bool) -> str:
    """The first text part keeps no MIME-Version of its own, the later ones carry one
    (what the stdlib's make_alternative leaves behind)."""
    head = _header("Content-Type", f'text/{subtype}; charset="utf-8"')
    head += "Content-Transfer-Encoding: quoted-printable\r\n"
    if not first:
        head += "MIME-Version: 1.0\r\n"
    return head + "\r\n" + _qp_body(text)


def _content_type(att: FileAttachment) -> tuple[str, str, dict[str, str]]:
    """Main type, subtype and parameters of an attachment's Content-Type."""
    kind, *raw_params = (part.strip() for part in att.content_type.split(";"))
    maintype, _, subtype = kind.partition("/")
    return maintype, subtype, dict(p.split("=", 1) for p in raw_params if "=" in p)


def _simple_attachment(att: FileAttachment) -> tuple[str, str, list[tuple[str, str]]] | None:
    """(maintype, subtype, params) of an attachment the fast writer handles the way
    ``add_attachment`` does; None for anything unusual (non-ASCII names, quoted values)."""
    maintype, subtype, params = _content_type(att)
    if not (_TOKEN.fullmatch(maintype) and _TOKEN.fullmatch(subtype) and _FILENAME.fullmatch(att.filename)):
        return None
    if '"' in att.filename or "\\" in att.filename:
        return None
    if not all(_TOKEN.fullmatch(k) and _TOKEN.fullmatch(v) for k, v in params.items()):
        return None
    return maintype, subtype, list(params.items())


def _attachment_part(att: FileAttachment, maintype: str, subtype: str, params: list[tuple[str, str]]) -> str:
    """As ``add_attachment`` writes it: base64 in 76-character lines; a Content-Type
    with parameters is re-added after Content-Disposition (``set_param``'s order)."""
    ctype = "; ".join([f"{maintype}/{subtype}", *(f'{k}="{quote(v)}"' for k, v in params)])
    disposition = _header("Content-Disposition", f'attachment; filename="{quote(att.filename)}"')
    encoding = "Content-Transfer-Encoding: base64\r\n"
    head = (
        encoding + disposition + _header("Content-Type", ctype)
        if params
        else _header("Content-Type", ctype) + encoding + disposition
    )
    body = base64.encodebytes(att.data).decode("ascii").replace("\n", "\r\n")
    return head + "MIME-Version: 1.0\r\n\r\n" + body


def _boundary(parts: Sequence[str]) -> str:
    """A boundary in the stdlib's shape, not occurring in ``parts``."""
    while True:
        boundary = "=" * 15 + f"{random.randrange(sys.maxsize):019d}" + "=="
        if not any(boundary in p for p in parts):
            return boundary


def _multipart(subtype: str, parts: Sequence[str]) -> tuple[str, str]:
    """(Content-Type header, body) of a multipart made of ``parts``."""
    boundary = _boundary(parts)
    delimiter = f"--{boundary}\r\n"
    body = delimiter + f"\r\n{delimiter}".join(parts) + f"\r\n--{boundary}--\r\n"
    line = f'Content-Type: multipart/{subtype}; boundary="{boundary}"'
    # The policy's parameter folding: the boundary on a line of its own when too long.
    head = f"{line}\r\n" if len(line) <= 78 else f'Content-Type: multipart/{subtype};\r\n boundary="{boundary}"\r\n'
    return head, body


def compose_raw(
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
) -> Composed:
    """:func:`compose` serialized, the same bytes (boundaries aside) written directly:
    the stdlib builds every header into an object, parses it, then re-folds it, which
    was most of a reply's CPU. Anything out of the ordinary is left to :func:`compose`."""
    specs = [_simple_attachment(att) for att in attachments]
    if all(spec is not None for spec in specs):
        head = [_address_line("From", sender.address, sender.name), _address_line("To", to, to_name)]
        values: dict[str, str] = {}
        for name, value in _reply_headers(sender, rendered, kind, dedupe_key, ref, now, reply_to, auto_submitted):
            line, values[name] = _parsed(name, value)
            head.append(line)
        head.append("MIME-Version: 1.0\r\n")
        subject, message_id = values["Subject"], values["Message-ID"]
        alternative = _multipart(
            "alternative",
            [_text_part("plain", rendered.text, first=True), _text_part("html", rendered.html, first=False)],
        )
        if attachments:
            parts = [alternative[0] + "\r\n" + alternative[1]]
            for att, spec in zip(attachments, specs, strict=True):
                assert spec is not None
                parts.append(_attachment_part(att, *spec))
            content_type, body = _multipart("mixed", parts)
        else:
            content_type, body = alternative
        text = "".join(head) + content_type + "\r\n" + body
        if text.isascii():  # else a non-ASCII address: the stdlib decides what becomes of it
            return Composed(text.encode("ascii"), subject, message_id)
    message = compose(
        sender=sender, to=to, to_name=to_name, rendered=rendered, kind=kind, dedupe_key=dedupe_key, ref=ref,
        now=now, reply_to=reply_to, attachments=attachments, auto_submitted=auto_submitted,
    )  # fmt: skip
    return Composed(message.as_bytes(policy=_SMTP), str(message["Subject"]), str(message["Message-ID"]))


def _reply_headers(
    sender: Sender,
    rendered: Rendered,
    kind: str,
    dedupe_key: str,
    ref: str,
    now: dt.datetime,
    reply_to: ReplyTo | None,
    auto_submitted: str,
) -> list[tuple[str, str]]:
    """A reply's headers after From and To, in order, for both writers."""
    headers = [
        ("Subject", clean_header_text(rendered.subject, limit=250)),
        ("Date", format_datetime(now)),
        ("Message-ID", _message_id(sender, dedupe_key, kind)),
    ]
    if reply_to and reply_to.message_id:
        refs = [*reply_to.references[-10:], reply_to.message_id]
        headers += [("In-Reply-To", f"<{reply_to.message_id}>"), ("References", " ".join(f"<{r}>" for r in refs))]
    # RFC 3834: mark as automatic so well-behaved responders stay silent; the Microsoft
    # header stops Exchange/Outlook out-of-office replies to us.
    return headers + [
        ("Auto-Submitted", auto_submitted),
        ("X-Auto-Response-Suppress", "OOF, NRN, AutoReply, RN"),
        ("Precedence", "auto_reply"),
        ("X-Mailbot-Kind", kind),
        ("X-Mailbot-Ref", ref),
        ("X-Loop", sender.address),
    ]


def _message_id(sender: Sender, dedupe_key: str, kind: str) -> str:
    domain = sender.address.rpartition("@")[2] or "mailbot.invalid"
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]
    return f"<{digest}.{kind}@{domain}>"


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
    for name, value in _reply_headers(sender, rendered, kind, dedupe_key, ref, now, reply_to, auto_submitted):
        msg[name] = value
    msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    for att in attachments:
        maintype, subtype, params = _content_type(att)
        msg.add_attachment(
            att.data, maintype=maintype, subtype=subtype, filename=att.filename, params=params
        )
    return msg


_TABLE = OutboundMail.__table__  # type: ignore[attr-defined]
"""Claims and outcomes are Core statements on the table: the ORM's bulk UPDATE path
(session synchronisation) cost more than the statements themselves."""


_INSERT = insert(_TABLE).returning(_TABLE.c.id)


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
    message: EmailMessage | Composed,
    kind: str,
    dedupe_key: str,
    to: str,
    bcc: Sequence[str],
    now: dt.datetime,
    inbound_id: int | None = None,
    registration_id: int | None = None,
    known_new: bool = False,
) -> OutboundMail | None:
    """Queue ``message`` unless a mail with the same dedupe key exists (returns None).
    ``known_new``: the caller looked for the key in this transaction already."""
    if not known_new:
        existing = session.exec(select(OutboundMail.id).where(OutboundMail.dedupe_key == dedupe_key)).first()
        if existing is not None:
            return None
    if not isinstance(message, Composed):  # CRLF, as SMTP requires
        message = Composed(message.as_bytes(policy=_SMTP), str(message["Subject"]), str(message["Message-ID"]))
    row = OutboundMail(
        dedupe_key=dedupe_key,
        kind=kind,
        to_addr=to.casefold(),
        subject=message.subject,
        message_id=message.message_id,
        inbound_id=inbound_id,
        registration_id=registration_id,
        raw=message.raw,
        envelope_to="\n".join([to, *bcc]),
        status="queued",
        created_at=now,
        next_attempt_at=now,
    )
    # One Core INSERT, then the row joins the session as if loaded: the ORM's flush of a
    # single new row cost more than the INSERT itself.
    values = {c.name: getattr(row, c.key) for c in _TABLE.columns if c.name != "id"}
    row.id = session.execute(_INSERT, values).scalar_one()
    make_transient_to_detached(row)
    session.add(row)
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
    if session.exec(select(OutboundMail.id).where(sending).limit(1)).first() is None:
        return 0  # nearly always: a read, where two UPDATEs would take the write lock
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


@dataclass(frozen=True)
class Claimed:
    """A row this process holds ('sending'), as the claim returned it, with what it was
    before (so a row claimed but never tried can be given back untouched)."""

    id: int
    kind: str
    to_addr: str
    message_id: str
    dedupe_key: str
    envelope_to: str
    raw: bytes
    attempts: int
    prior: tuple[str, str | None, dt.datetime | None]
    """status, claimed_by and claimed_at before this claim."""


def claim_due(
    session_factory: Callable[[], Session], me: str, now: dt.datetime, size: int = 1
) -> list[Claimed]:
    """Take up to ``size`` of the oldest due rows for ``me`` (oldest first), or [] when
    nothing is due.

    One conditional UPDATE changes the rows that are still due, so of two processes
    racing for a row exactly one gets it back from RETURNING; the loser tries the next
    rows. On PostgreSQL ``FOR UPDATE SKIP LOCKED`` makes the racers pick different rows.
    All of them get the same lease on the database's clock (renewed by the sender while
    it works through them, see :func:`deliver_due`)."""
    t = _TABLE
    while True:
        with session_factory() as session:
            pick = (
                select(t.c.id, t.c.status, t.c.claimed_by, t.c.claimed_at)
                .where(*_due(now)).order_by(t.c.id).limit(size)
            )  # fmt: skip
            if session.get_bind().dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            prior = {r.id: (r.status, r.claimed_by, r.claimed_at) for r in session.execute(pick)}
            if not prior:
                return []
            got = session.execute(
                update(t)
                .where(t.c.id.in_(prior), *_due(now))
                .values(
                    status="sending", claimed_by=me, claimed_at=now,
                    lease_until=db_clock(session, LEASE), attempts=t.c.attempts + 1,
                )  # fmt: skip
                .returning(
                    t.c.id, t.c.kind, t.c.to_addr, t.c.message_id, t.c.dedupe_key, t.c.envelope_to, t.c.raw,
                    t.c.attempts,
                )  # fmt: skip
            ).all()
            if not got:
                session.rollback()
                continue
            session.commit()
        return sorted((_claimed(r, prior[r.id]) for r in got), key=lambda c: c.id)


def _claimed(r: Any, prior: tuple[str, str | None, dt.datetime | None]) -> Claimed:
    return Claimed(
        id=r.id, kind=r.kind, to_addr=r.to_addr, message_id=r.message_id, dedupe_key=r.dedupe_key,
        envelope_to=r.envelope_to, raw=r.raw, attempts=r.attempts, prior=prior,
    )  # fmt: skip


def _settle(session: Session, row_id: int, me: str, **values: Any) -> bool:
    """Record a claimed row's outcome, only while ``me`` still holds it (also after the
    sweeper put it back but before anyone claimed it again). True once committed: one
    commit per row, so a crash can repeat at most the one mail in the SMTP window."""
    params = {f"new_{k}": v for k, v in values.items()}
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        _settle_statement(frozenset(values)), {"row_id": row_id, "me": me, **params}
    )
    session.commit()
    return result.rowcount == 1


@functools.cache
def _settle_statement(columns: frozenset[str]) -> Any:
    """The UPDATE of :func:`_settle` for these columns, built once (building it cost
    about as much as running it)."""
    t = _TABLE
    return (
        update(t)
        .where(t.c.id == bindparam("row_id"), t.c.claimed_by == bindparam("me"), t.c.status.in_(("sending", "retry")))
        .values(lease_until=None, **{k: bindparam(f"new_{k}", type_=t.c[k].type) for k in columns})
    )


def _renew(session: Session, rows: Sequence[Claimed], me: str) -> list[Claimed]:
    """Extend the lease of ``rows`` still held by ``me``; the ones returned are those
    (a row the sweeper gave away meanwhile is another process's now: never sent here)."""
    t = _TABLE
    held = set(
        session.execute(
            update(t)
            .where(t.c.id.in_([r.id for r in rows]), t.c.claimed_by == me, t.c.status == "sending")
            .values(lease_until=db_clock(session, LEASE))
            .returning(t.c.id)
        ).scalars()
    )
    session.commit()
    return [r for r in rows if r.id in held]


def _release(session: Session, rows: Sequence[Claimed], me: str) -> None:
    """Give back rows claimed but never tried, as they were (status, tries, claimer)."""
    t = _TABLE
    for row in rows:
        status, claimed_by, claimed_at = row.prior
        session.execute(
            update(t)
            .where(t.c.id == row.id, t.c.claimed_by == me, t.c.status == "sending")
            .values(
                status=status, claimed_by=claimed_by, claimed_at=claimed_at, lease_until=None,
                attempts=t.c.attempts - 1,
            )  # fmt: skip
        )
    session.commit()


def _count_due(session: Session, now: dt.datetime) -> int:
    return int(session.exec(select(func.count()).select_from(OutboundMail).where(*_due(now))).one())


CLAIM_BATCH = 25
"""Rows claimed by one UPDATE once the connection is open (the first row is claimed
alone, so a server that cannot be reached costs one row's try, as before)."""


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
    """Send every queued row that is due, within the rate limit: at most
    ``max_per_minute`` mails accepted in any minute (counted from the rows' ``sent_at``,
    so it holds across runs and restarts) and ``limit`` per run.

    Rows are claimed in batches (:func:`claim_due`) and each outcome is committed on its
    own, right after the server's answer. Safe to run in several processes on one store:
    a row goes out once per claim, and a claim is only ever held by one process."""
    stats = DeliveryStats()
    me = claimer_name()
    with session_factory() as session:
        sweep_stuck(session, now)
        due = _count_due(session, now)
        if not due:
            return stats  # an idle pass: no rate-limit count, no connection
        sent_last_minute = session.exec(
            select(func.count())
            .select_from(OutboundMail)
            .where(OutboundMail.status == "sent", col(OutboundMail.sent_at) > now - dt.timedelta(minutes=1))
        ).one()
        by_rate = max(0, max_per_minute - int(sent_last_minute))
        budget = min(limit, by_rate)
        stats.deferred = max(0, due - budget)
    if stats.deferred:
        held = (
            f"rate limit {max_per_minute}/min (outbox.max_per_minute)" if by_rate <= limit
            else f"{limit} mails per run (outbox.max_per_pass)"
        )
        log.info("%s: %d due mail(s) wait for the next run", held, stats.deferred)
    with session_factory() as settler:
        _Delivery(session_factory, settler, transport, me, now, sender, max_attempts, stats).run(budget)
    return stats


class _Delivery:
    """One run's sending loop: claimed rows in hand, one connection, one session for
    the outcomes."""

    def __init__(
        self,
        session_factory: Callable[[], Session],
        settler: Session,
        transport: Transport,
        me: str,
        now: dt.datetime,
        sender: str,
        max_attempts: int,
        stats: DeliveryStats,
    ) -> None:
        self.session_factory, self.settler, self.transport = session_factory, settler, transport
        self.me, self.now, self.sender, self.max_attempts, self.stats = me, now, sender, max_attempts, stats
        self.opened = False
        self.held: list[Claimed] = []
        """Claimed for this run, not tried yet (oldest first)."""
        self.taken = 0
        """Rows tried or held: the budget counts these."""
        self.leased_at = 0.0

    def run(self, budget: int) -> None:
        try:
            while self.held or self.taken < budget:
                if not self.held:
                    size = min(budget - self.taken, CLAIM_BATCH if self.opened else 1)
                    self.held = claim_due(self.session_factory, self.me, self.now, size)
                    self.leased_at = time.monotonic()
                    if not self.held:
                        break
                    self.taken += len(self.held)
                elif time.monotonic() - self.leased_at > LEASE.total_seconds() / 10:
                    # A slow server: each row starts its transaction with 90 % of a lease.
                    held = _renew(self.settler, self.held, self.me)
                    self.taken -= len(self.held) - len(held)
                    self.held, self.leased_at = held, time.monotonic()
                    continue
                row = self.held.pop(0)
                if not self.opened and not self._open(row):
                    break
                self._send(row)
        finally:
            try:
                self._give_back()
            except Exception:  # noqa: BLE001 - must not mask the error that got us here
                log.warning("could not give back %d claimed mail(s); their lease frees them", len(self.held),
                            exc_info=True)  # fmt: skip
            if self.opened:
                _quiet_close(self.transport)

    def _give_back(self) -> None:
        """Release the rows claimed but not tried, as they were; they no longer count."""
        if self.held:
            _release(self.settler, self.held, self.me)
            self.taken -= len(self.held)
            self.held = []

    def _open(self, row: Claimed) -> bool:
        try:
            self.transport.open()
        except DeliveryError as e:
            # The server, not this mail, is the problem: put the row back and leave the
            # rest of the queue untouched for the next run. Not this mail's attempt: it
            # keeps its count of tries.
            _settle(
                self.settler, row.id, self.me, status="retry", attempts=row.attempts - 1,
                next_attempt_at=self.now + backoff(1), last_error=str(e)[:2000],
            )  # fmt: skip
            self._give_back()
            self.stats.retried += 1
            self.stats.errors.append(str(e))
            with self.session_factory() as session:
                self.stats.deferred = _count_due(session, self.now)
            log.warning("cannot reach the mail server (%s); %d mail(s) wait", e, self.stats.deferred + 1)
            return False
        self.opened = True
        return True

    def _send(self, row: Claimed) -> None:
        try:
            recipients = tuple(a for a in row.envelope_to.split("\n") if a)
            self.transport.send(Envelope(self.sender, recipients, row.raw, row.dedupe_key))
        except DeliveryError as e:
            _record_failure(self.settler, row, self.me, e, self.now, self.max_attempts, self.stats)
            if not e.permanent:
                self.opened = False
                _quiet_close(self.transport)
                self._give_back()  # claimed again, one by one, once a connection is open
            return
        self.stats.sent += 1
        if _settle(self.settler, row.id, self.me, status="sent", sent_at=self.now, last_error=None):
            log.info("sent %s mail %s to %s", row.kind, row.message_id, row.to_addr)
        else:
            log.warning(
                "sent %s mail %s to %s, but its lease ran out and another process took it:"
                " it may go out twice", row.kind, row.message_id, row.to_addr,
            )  # fmt: skip


def _record_failure(
    session: Session,
    row: Claimed,
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
        if _settle(session, row.id, me, status="failed", last_error=error):
            log.warning("giving up on %s mail to %s: %s", row.kind, row.to_addr, e)
        return
    stats.retried += 1
    retry_at = now + backoff(row.attempts)
    if _settle(session, row.id, me, status="retry", next_attempt_at=retry_at, last_error=error):
        log.warning("will retry %s mail to %s at %s: %s", row.kind, row.to_addr, retry_at, e)


def _quiet_close(transport: Transport) -> None:
    try:
        transport.close()
    except Exception:  # noqa: BLE001 - closing a broken connection must not mask the real error
        log.debug("ignoring error while closing transport", exc_info=True)
