"""One message in, one committed outcome out: the ledger, the MIME walk, the forms, the
registrations and the queued replies, all in a single transaction.

The mailbox is told to file the message only after :func:`process` returns, i.e. after
the commit; a crash before that just means the next pass sees the message again, finds
its dedupe key in the ledger, and files it without registering or replying twice.

:func:`reprocess` runs a stored message again from its raw copy (the review queue's
``reprocess``, e.g. after the admin extended the label vocabulary): same ledger row, same
dedupe keys for the replies, so nothing already queued goes twice.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    StatementError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session, col, select

from mailbot.config import EventSettings, Settings
from mailbot.errors import MailboxError, MailbotError
from mailbot.forms import Vocabulary
from mailbot.forms.sniff import sniff
from mailbot.forms.worker import parse_isolated
from mailbot.forms.model import EventRef, FormData, Limits
from mailbot.loopguard import classify, safe_to_reply
from mailbot.mailbox.base import Outcome, RawMessage
from mailbot.mime import Attachment, MimeLimits, ParsedMessage, parse_message
from mailbot.mime.budget import MessageBudget
from mailbot import cancellations, doubts
from mailbot.bounces import clear_bounce, record_auto_reply, record_bounce
from mailbot.intent import detect_question, detect_withdrawal
from mailbot.links import linked_registrations
from mailbot.registrations import apply_form, find_correction_target
from mailbot.replies import Answering, Mailer, Queued, cancelled, closed, corrected, promoted, welcome
from mailbot.replies import forward_to_organisers, open_events_reply, question_received
from mailbot.routing import Route, route_form
from mailbot.seats import allocate, promote
from mailbot.store.blobs import BlobStore, sha256
from mailbot.store.tables import TEMPORARY_PREFIX, InboundMessage, Registration, StoredAttachment

log = logging.getLogger(__name__)

FOLDER_OF: dict[str, Outcome] = {
    "registered": "processed",
    "needs_review": "needs_review",
    "ignored": "ignored",
}
# Formats a person attaches on purpose as "the form"; an unreadable one of these needs a
# human, while an unreadable 3 KB logo in a signature does not.
_DOCUMENT_FORMATS = frozenset({"docx", "doc", "odt", "pdf", "rtf", "wordml", "wordperfect", "zip"})
_SMALL_IMAGE = 60 * 1024
# Machine-made messages whose attachments are never forms: a bounce carries our own
# reply back, a receipt or our own mail carries nothing new.
_NEVER_FORMS = frozenset({"bounce", "read_receipt", "own", "loop"})
_HEADER_END = re.compile(rb"\r?\n\r?\n")

MAX_ATTEMPTS = 3
"""Failed attempts (counted in the ledger row's history) before an internal error makes
a message needs_review; a temporary storage error is never counted."""
_LEASE_PREFIX = "processing by"
_LEASE = re.compile(r"processing by (\S+) pid (\d+) since (\S+)")
_LEASE_S = 15 * 60
"""A claim by a process on another host is taken over after this long (no pid to ask)."""
_OWNER_WAIT_S = 3.0
"""How long to wait for another process finishing a message before leaving it to it."""
_OWNER_POLL_S = 0.2
_EARLIEST_YEAR, _LATEST_YEAR = 1900, 2200
_WARNINGS_CHARS = 20_000
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_DB_DRIVERS = frozenset({"sqlite3", "psycopg", "psycopg2", "pg8000", "asyncpg"})
_TEMPORARY_DB: tuple[tuple[str, str], ...] = (
    ("database is locked", "the database is locked by another process: it retries by itself"),
    ("database table is locked", "the database is locked by another process: it retries by itself"),
    ("disk is full", "the database's disk is full: free some space"),
    ("no space left", "the database's disk is full: free some space"),
    ("could not extend file", "the database's disk is full: free some space"),
    ("could not connect", "database unreachable: check the database server"),
    ("connection refused", "database unreachable: check the database server"),
    ("server closed the connection", "database connection lost: check the database server"),
    ("terminating connection", "database connection lost: check the database server"),
    ("connection reset", "database connection lost: check the database server"),
    ("connection already closed", "database connection lost: check the database server"),
    ("the database system is", "the database server is starting or stopping: it retries by itself"),
)


class ReprocessError(MailbotError):
    """A stored message could not be run again (unknown, raw copy gone, or the pipeline
    failed on it); nothing was changed."""


@dataclass(frozen=True)
class IngestContext:
    """Everything :func:`process` needs; built once by :mod:`mailbot.app`."""

    settings: Settings
    session_factory: Callable[[], Session]
    blobs: BlobStore
    mailer: Mailer
    now: Callable[[], dt.datetime]
    events: tuple[EventRef, ...] = ()
    form_limits: Limits = Limits()
    mime_limits: MimeLimits = MimeLimits()
    vocabulary: Vocabulary | None = None
    """The admin's label vocabulary; None means the shipped config/labels.toml."""


@dataclass(frozen=True)
class MessageResult:
    """What happened to one message; ``already_seen`` for a re-fetch or a double send."""

    inbound_id: int
    ref: str
    outcome: str
    reason: str
    folder: Outcome
    registrations: tuple[str, ...] = ()
    replies: tuple[str, ...] = ()
    already_seen: bool = False
    deferred: bool = False
    """Another live process is working on the message: left in the inbox, unfiled, for
    a later pass (its owner files it)."""


@dataclass
class _Decision:
    outcome: str = "registered"
    reasons: list[str] = field(default_factory=list)
    registrations: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)

    def escalate(self, outcome: str, reason: str) -> None:
        order = {"ignored": 0, "registered": 1, "needs_review": 2}
        if order[outcome] > order.get(self.outcome, 0):
            self.outcome = outcome
        self.reasons.append(reason)


def dedupe_key(raw: bytes, message_id: str | None) -> str:
    """Message-ID plus a hash of the body: equal for a re-fetch or a client's double send,
    whatever trace headers the delivery path added; the UID is never trusted alone."""
    match = _HEADER_END.search(raw)
    body = raw[match.end() :] if match else raw
    basis = (message_id or "").encode("utf-8", "replace") + b"\0" + hashlib.sha256(
        body if message_id else raw
    ).digest()
    return hashlib.sha256(basis).hexdigest()


def _headers_only(raw: bytes) -> bytes:
    match = _HEADER_END.search(raw, 0, 1024 * 1024)
    return raw[: match.end()] if match else raw[: 64 * 1024]


def events_for_forms(settings: Settings) -> tuple[EventRef, ...]:
    return tuple(EventRef(key=e.key, title=e.title, city=e.city, date=e.date) for e in settings.events)


def process(ctx: IngestContext, raw: RawMessage, parsed: ParsedMessage | None = None) -> MessageResult:
    """Record the outcome of ``raw`` (idempotent, and safe with a second process on the
    same store). Never raises for bad input: a message that keeps failing ends as
    needs-review with its reason, and the pass goes on. ``parsed``: ``raw`` already
    parsed with ``ctx.mime_limits`` (read ahead, :mod:`mailbot.readahead`).

    Raises :class:`StorageUnavailable` when storage is only temporarily unusable (disk
    full, database locked or unreachable): the message then stays unfiled in the inbox
    and is taken up again on a later pass, instead of being filed with a final outcome.
    """
    now = ctx.now()
    parsed, message_id = _read(ctx, raw, parsed)
    key = dedupe_key(raw.data, message_id)
    ref = key[:10]
    try:
        claimed = _claim(ctx, raw, parsed, key, ref, now)
        if isinstance(claimed, MessageResult):
            return claimed
        return _run_claimed(ctx, raw, parsed, claimed, ref, now)
    except StorageUnavailable:
        raise
    except Exception as e:
        if temporary_reason(e) is None:
            raise
        raise _unavailable(ref, e) from e


def _read(ctx: IngestContext, raw: RawMessage, ahead: ParsedMessage | None) -> tuple[ParsedMessage, str | None]:
    """The message read once (an oversized one only as far as its headers), and the
    Message-ID its dedupe key uses: the one its header block gives, as before."""
    head = _headers_only(raw.data)
    too_large = len(raw.data) > ctx.settings.limits.max_message_bytes
    if ahead is not None and not too_large:
        parsed = ahead
    else:
        parsed = parse_message(head if too_large else raw.data, ctx.mime_limits)
    if too_large or _HEADER_END.search(head) is not None:
        return parsed, parsed.message_id
    # No end of the header block in sight: the key has always been read from the cut.
    return parsed, parse_message(head, ctx.mime_limits).message_id


def _claim(
    ctx: IngestContext, raw: RawMessage, headers: ParsedMessage, key: str, ref: str, now: dt.datetime
) -> InboundMessage | int | MessageResult:
    """Insert the ledger row in its own transaction before any work: the unique dedupe
    key makes exactly one process the owner; any other finds the row and files the
    message as the owner decided (or takes it up when the owner gave up or died).
    The row itself when this process inserted it (nothing to read back), else the id
    of the row it took up."""
    lease = _lease()
    digest = sha256(raw.data)
    for _ in range(3):
        row = _ledger_row(headers, raw, key, ref, digest, now)
        row.reason = lease
        try:
            _insert(ctx, row)
            return row
        except IntegrityError:
            pass
        except Exception as e:
            if temporary_reason(e) is not None:
                raise
            return _unstorable(ctx, raw, key, ref, now, e)
        found = _existing(ctx, key, ref, lease)
        if found is not None:
            return found
    raise StorageUnavailable(
        f"message {ref}: its ledger row conflicts with another but cannot be read; left in the inbox for a later pass"
    )


def _insert(ctx: IngestContext, row: InboundMessage) -> int:
    """Insert a ledger row in a transaction of its own; its id."""
    with ctx.session_factory() as session:
        session.add(row)
        session.flush()
        assert row.id is not None
        inbound_id = row.id
        session.commit()
    return inbound_id


def _existing(ctx: IngestContext, key: str, ref: str, lease: str) -> int | MessageResult | None:
    """The message is in the ledger already: a final outcome means a duplicate (filed as
    before); a pending row is taken up when free, else its owner is given a few seconds
    and then left to finish (the result is ``deferred``)."""
    give_up_at = time.monotonic() + _OWNER_WAIT_S
    while True:
        with ctx.session_factory() as session:
            seen = session.exec(select(InboundMessage).where(InboundMessage.dedupe_key == key)).first()
            if seen is None:
                return None
            assert seen.id is not None
            if seen.outcome != "pending":
                session.execute(
                    update(InboundMessage)
                    .where(col(InboundMessage.id) == seen.id)
                    .values(times_seen=col(InboundMessage.times_seen) + 1)
                )
                session.commit()
                log.info("message %s already handled (%s); filing it again", seen.ref, seen.outcome)
                return MessageResult(
                    inbound_id=seen.id,
                    ref=seen.ref,
                    outcome=seen.outcome,
                    reason=seen.reason or "",
                    folder=FOLDER_OF.get(seen.outcome, "needs_review"),
                    already_seen=True,
                )
            owner = seen.reason
            if _free(owner):
                same = col(InboundMessage.reason).is_(None) if owner is None else col(InboundMessage.reason) == owner
                taken = session.execute(
                    update(InboundMessage)
                    .where(col(InboundMessage.id) == seen.id, col(InboundMessage.outcome) == "pending", same)
                    .values(reason=lease)
                )
                session.commit()
                if getattr(taken, "rowcount", 0) == 1:
                    log.info("message %s: taking it up again (%s)", ref, owner or "unclaimed")
                    return seen.id
                continue  # another process took it up in between: look again
        if time.monotonic() > give_up_at:
            log.info("message %s is being processed by another process (%s); leaving it to it", ref, owner)
            return MessageResult(
                inbound_id=seen.id, ref=ref, outcome="pending", reason=f"being processed: {owner}",
                folder="needs_review", deferred=True,
            )
        time.sleep(_OWNER_POLL_S)


def _lease() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{_LEASE_PREFIX} {socket.gethostname()[:100]} pid {os.getpid()} since {stamp}"


def _free(reason: str | None) -> bool:
    """May this process take up a pending row? Yes unless a live process (this host:
    its pid runs; another host: its claim is younger than the lease) is working on it."""
    match = _LEASE.fullmatch(reason or "")
    if match is None:
        return True  # released after a temporary error, or not a claim at all
    host, pid, since = match.group(1), int(match.group(2)), match.group(3)
    if host == socket.gethostname()[:100]:
        return pid == os.getpid() or not _alive(pid)
    try:
        started = dt.datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return True
    return (dt.datetime.now(dt.UTC) - started).total_seconds() > _LEASE_S


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _run_claimed(
    ctx: IngestContext,
    raw: RawMessage,
    parsed: ParsedMessage,
    claimed: InboundMessage | int,
    ref: str,
    now: dt.datetime,
) -> MessageResult:
    """Store and decide a claimed message. An internal error is retried (each failed
    attempt noted in the row's history) and gives needs_review only after
    :data:`MAX_ATTEMPTS`; a temporary storage error releases the claim and raises."""
    fresh = claimed if isinstance(claimed, InboundMessage) else None
    inbound_id = claimed if isinstance(claimed, int) else claimed.id
    assert inbound_id is not None
    failures = 0
    while True:
        try:
            ctx.blobs.put(raw.data)
            with ctx.session_factory() as session:
                inbound = _ledger_in(session, fresh, inbound_id)
                fresh = None  # a retry reads the row: the failed attempt may have changed it
                decision = _decide(ctx, session, inbound, parsed, raw, now)
                inbound.outcome = decision.outcome
                inbound.reason = _bounded("; ".join(decision.reasons), 2000)
                inbound.warnings = _bounded("\n".join(parsed.warnings), _WARNINGS_CHARS) or None
                session.add(inbound)
                session.commit()
            break
        except Exception as e:  # noqa: BLE001 - one bad message must never stop the queue
            if temporary_reason(e) is not None:
                _release(ctx, inbound_id, e)
                raise _unavailable(ref, e) from e
            failures += 1
            attempts = max(failures, _note_attempt(ctx, inbound_id, e))
            if attempts < MAX_ATTEMPTS:
                log.warning("message %s: attempt %d failed (%s); trying again", ref, attempts, _describe(e))
                continue
            decision = _give_up(ctx, inbound_id, ref, e, attempts)
            break
    log.info("message %s → %s (%s)", ref, decision.outcome, "; ".join(decision.reasons))
    return MessageResult(
        inbound_id=inbound_id,
        ref=ref,
        outcome=decision.outcome,
        reason="; ".join(decision.reasons),
        folder=FOLDER_OF[decision.outcome],
        registrations=tuple(decision.registrations),
        replies=tuple(decision.replies),
    )


def _ledger_in(session: Session, fresh: InboundMessage | None, inbound_id: int) -> InboundMessage:
    """The claimed ledger row in ``session``: the one just inserted as it is (its values
    are what the database holds), else read by id."""
    if fresh is not None:
        session.add(fresh)
        return fresh
    inbound = session.get(InboundMessage, inbound_id)
    assert inbound is not None
    return inbound


def _note_attempt(ctx: IngestContext, inbound_id: int, error: Exception) -> int:
    """Note a failed attempt in the row's history; the number of failed attempts so far
    (across passes and processes), or 0 when even that could not be written."""
    try:
        with ctx.session_factory() as session:
            inbound = session.get(InboundMessage, inbound_id)
            assert inbound is not None
            inbound.add_history("attempt_failed", dt.datetime.now(dt.UTC), error=_bounded(_describe(error), 500))
            count = sum(1 for e in inbound.history_entries() if e.get("action") == "attempt_failed")
            session.add(inbound)
            session.commit()
            return count
    except Exception as e:  # noqa: BLE001 - the in-process count still bounds the retries
        if temporary_reason(e) is not None:
            raise
        log.warning("could not note the failed attempt on message %d: %s", inbound_id, _describe(e))
        return 0


def _give_up(ctx: IngestContext, inbound_id: int, ref: str, error: Exception, attempts: int) -> _Decision:
    """Final outcome after repeated failures, in a fresh transaction: needs_review with a
    reason an admin can act on."""
    what = "could not be stored" if _is_storage_error(error) else "internal error while processing"
    reason = _bounded(
        f"{what}: {_describe(error)} (failed {attempts} times); "
        "`mailbot review reprocess` runs it again once the cause is fixed",
        2000,
    ) or what
    if what == "could not be stored":
        log.error("message %s %s; sending it to review", ref, reason)
    else:
        log.error("message %s failed %d times; sending it to review", ref, attempts, exc_info=error)
    with ctx.session_factory() as session:
        inbound = session.get(InboundMessage, inbound_id)
        assert inbound is not None
        inbound.outcome = "needs_review"
        inbound.reason = reason
        session.add(inbound)
        session.commit()
    return _Decision(outcome="needs_review", reasons=[reason])


def _unstorable(
    ctx: IngestContext, raw: RawMessage, key: str, ref: str, now: dt.datetime, error: Exception
) -> int | MessageResult:
    """The ledger row itself could not be written (a header value the database refuses):
    record the message without its header values, as needs_review, so it is never lost
    nor tried forever; its raw copy is kept for the admin and for ``reprocess``."""
    raw_sha = ctx.blobs.put(raw.data)
    reason = _bounded(
        f"could not be stored: {_describe(error)}; recorded without its headers — read the raw mail, "
        "`mailbot review reprocess` runs it again once the cause is fixed",
        2000,
    )
    log.error("message %s %s", ref, reason)
    row = InboundMessage(
        dedupe_key=key, ref=ref, raw_sha256=raw_sha, size=len(raw.data), source=_bounded(raw.folder, 500) or "",
        received_at=now, outcome="needs_review", reason=reason,
    )
    try:
        inbound_id = _insert(ctx, row)
    except IntegrityError:
        found = _existing(ctx, key, ref, _lease())
        if found is None:
            raise
        return found
    return MessageResult(
        inbound_id=inbound_id, ref=ref, outcome="needs_review", reason=reason or "", folder="needs_review"
    )


def _release(ctx: IngestContext, inbound_id: int, error: Exception) -> None:
    """Give the claim up after a temporary error, so any process may take the message up
    on a later pass (if this write fails too, the claim is freed when its pid is gone)."""
    try:
        with ctx.session_factory() as session:
            session.execute(
                update(InboundMessage)
                .where(col(InboundMessage.id) == inbound_id, col(InboundMessage.outcome) == "pending")
                .values(reason=_bounded(f"{TEMPORARY_PREFIX}{_describe(error)}", 2000))
            )
            session.commit()
    except Exception:  # noqa: BLE001 - storage is failing; the claim frees itself
        log.debug("could not release the claim on message %d", inbound_id, exc_info=True)


class StorageUnavailable(MailboxError):
    """Storage is temporarily unusable (disk full, database locked or unreachable).

    A :class:`MailboxError` so the pass stops and the daemon retries with backoff,
    recording the error where ``mailbot status`` shows it; the message in hand stays
    unfiled in the inbox and nothing about it is final."""


def temporary_reason(exc: BaseException) -> str | None:
    """What an admin must fix when ``exc`` (or what caused it) is temporary; None for an
    error that will not go away by waiting (a bug, a value the database refuses)."""
    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _DISK_FULL:
            return f"no space left on the disk of {getattr(e, 'filename', None) or 'the state directory'}: free some space"
        if isinstance(e, DBAPIError) and e.connection_invalidated:
            return "database connection lost: check the database server"
        if isinstance(e, (DisconnectionError, PoolTimeout)):
            return "database unreachable: check the database server"
        if isinstance(e, (OperationalError, InterfaceError)) or type(e).__module__.split(".")[0] in _DB_DRIVERS:
            text = str(e).lower()
            for needle, why in _TEMPORARY_DB:
                if needle in text:
                    return why
        todo.extend(x for x in (e.__cause__, e.__context__, getattr(e, "orig", None)) if isinstance(x, BaseException))
    return None


def _unavailable(ref: str, error: BaseException) -> StorageUnavailable:
    why = temporary_reason(error) or "temporary storage error"
    return StorageUnavailable(f"message {ref} left in the inbox, retried on a later pass: {why} ({_describe(error)})")


def _describe(error: BaseException) -> str:
    """One line, no traceback: the error's type and the first line of its message."""
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")


def _is_storage_error(error: BaseException) -> bool:
    return isinstance(error, (StatementError, OverflowError, UnicodeError))


def reprocess(ctx: IngestContext, inbound_id: int, *, note: str | None = None) -> MessageResult:
    """Run a stored message through the pipeline again from its raw copy in the blob
    store (e.g. after the admin extended the label vocabulary), in one transaction.

    The ledger row keeps its id and dedupe key; its attachment rows are replaced by the
    new reading; its outcome and reason are replaced, the previous ones kept in its
    history. Replies are queued as the first time: their dedupe keys keep anything
    already queued from going twice. Deadlines are judged by when the message arrived.
    The new outcome settles a review (``resolution = 'reprocessed'``) unless it is
    needs_review again. Raises :class:`ReprocessError`, with nothing changed, when the
    message is unknown, purged, its raw copy is gone, or the pipeline fails on it.
    """
    now = ctx.now()
    with ctx.session_factory() as session:
        inbound = session.get(InboundMessage, inbound_id)
        if inbound is None:
            raise ReprocessError(f"no message with id {inbound_id}")
        assert inbound.id is not None
        ref = inbound.ref
        if inbound.purged_at is not None:
            raise ReprocessError(f"message {ref} was purged (retention); nothing to run again")
        data = _stored_raw(ctx, inbound)
        if data is None:
            raise ReprocessError(f"the raw copy of message {inbound.ref} is no longer stored")
        raw = RawMessage(ref=inbound.ref, data=data, folder=inbound.folder or inbound.source)
        too_large = len(data) > ctx.settings.limits.max_message_bytes
        parsed = parse_message(_headers_only(data) if too_large else data, ctx.mime_limits)
        before_outcome, before_reason = inbound.outcome, inbound.reason
        try:
            _forget_attachments(session, inbound.id)
            decision = _decide(ctx, session, inbound, parsed, raw, now, as_of=inbound.received_at, replay=True)
            when = now.astimezone(ctx.settings.tz).strftime("%Y-%m-%d %H:%M")
            reason = "; ".join(decision.reasons)
            inbound.outcome = decision.outcome
            inbound.reason = f"{reason} [reprocessed {when}; was {before_outcome}]"[:2000]
            inbound.warnings = _bounded("\n".join(parsed.warnings), _WARNINGS_CHARS) or None
            inbound.add_history(
                "reprocess",
                now,
                previous_outcome=before_outcome,
                previous_reason=before_reason,
                outcome=decision.outcome,
                reason=reason[:2000],
                note=note,
            )
            if decision.outcome != "needs_review":
                inbound.resolution = "reprocessed"
                inbound.resolved_at = now
                inbound.resolution_note = (note or None) and (note or "")[:2000]
            session.add(inbound)
            session.commit()
        except Exception as e:
            session.rollback()
            log.exception("message %s could not be reprocessed; nothing changed", ref)
            raise ReprocessError(
                f"message {ref} could not be reprocessed ({type(e).__name__}: {e}); nothing changed"
            ) from e
    log.info("message %s reprocessed: %s → %s (%s)", inbound.ref, before_outcome, decision.outcome, reason)
    return MessageResult(
        inbound_id=inbound.id,
        ref=inbound.ref,
        outcome=decision.outcome,
        reason=reason,
        folder=FOLDER_OF[decision.outcome],
        registrations=tuple(decision.registrations),
        replies=tuple(decision.replies),
    )


def _stored_raw(ctx: IngestContext, inbound: InboundMessage) -> bytes | None:
    try:
        data = ctx.blobs.get(inbound.raw_sha256)
    except FileNotFoundError:
        return None
    return data if hashlib.sha256(data).hexdigest() == inbound.raw_sha256 else None


def _forget_attachments(session: Session, inbound_id: int) -> None:
    """Drop a message's attachment rows before it is read again; a registration that
    came from one of them loses the link until the new reading applies its form."""
    old = session.exec(select(StoredAttachment).where(StoredAttachment.inbound_id == inbound_id)).all()
    ids = [a.id for a in old]
    if not ids:
        return
    for reg in session.exec(select(Registration).where(col(Registration.source_attachment_id).in_(ids))).all():
        reg.source_attachment_id = None
        session.add(reg)
    session.flush()
    for att in old:
        session.delete(att)
    session.flush()


def answering_for(ctx: IngestContext, inbound: InboundMessage) -> tuple[Answering | None, str | None]:
    """How the pipeline answers ``inbound``, for mails an admin's action causes later:
    the :class:`Answering` (threading, ref, daily cap) and the address replies go to.
    ``(None, None)`` when its raw copy is gone or it is a message never answered
    (bounce, auto-reply, mailing list, our own mail)."""
    data = _stored_raw(ctx, inbound)
    if data is None:
        return None, None
    too_large = len(data) > ctx.settings.limits.max_message_bytes
    parsed = parse_message(_headers_only(data) if too_large else data, ctx.mime_limits)
    if classify(parsed, ctx.settings.replying_as) is not None:
        return None, None
    return Answering(inbound, parsed), _reply_address(parsed, ctx.settings)


def _ledger_row(
    parsed: ParsedMessage, raw: RawMessage, key: str, ref: str, raw_sha: str, now: dt.datetime
) -> InboundMessage:
    """The ledger row, every value bounded to what its column takes."""
    return InboundMessage(
        dedupe_key=key,
        ref=ref,
        message_id=_bounded(parsed.message_id, 998) or None,
        raw_sha256=raw_sha,
        size=len(raw.data),
        source=_bounded(raw.folder, 500) or "",
        folder=_bounded(raw.folder, 500) or None,
        uidvalidity=raw.cursor.uidvalidity if raw.cursor else None,
        uid=raw.cursor.uid if raw.cursor else None,
        from_addr=_bounded(parsed.from_addr, 320) or None,
        from_name=_bounded(parsed.from_name, 300) or None,
        subject=_bounded(parsed.subject, 300),
        sent_at=_storable_date(parsed.date),
        received_at=now,
        warnings=_bounded("\n".join(parsed.warnings), _WARNINGS_CHARS) or None,
    )


def _bounded(value: str | None, cap: int | None) -> str | None:
    """``value`` as every database stores it: no NUL, no lone surrogate (undecodable
    bytes become U+FFFD), at most ``cap`` characters."""
    if value is None:
        return None
    text = value.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text if cap is None else text[:cap]


def _storable_date(value: dt.datetime | None) -> dt.datetime | None:
    """A sent date the database can hold and that means something; else None (the raw
    Date header stays in the stored mail)."""
    if value is None or value.tzinfo is None:
        return None
    try:
        utc = value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        return None
    return value if _EARLIEST_YEAR <= utc.year <= _LATEST_YEAR else None


def _decide(
    ctx: IngestContext,
    session: Session,
    inbound: InboundMessage,
    parsed: ParsedMessage,
    raw: RawMessage,
    now: dt.datetime,
    *,
    as_of: dt.datetime | None = None,
    replay: bool = False,
) -> _Decision:
    """Decide and carry out what ``parsed`` asks for. ``as_of`` is when the message
    arrived (deadlines are judged by it; defaults to ``now``); ``replay`` runs a stored
    message again, without counting its bounce or auto-reply a second time."""
    settings = ctx.settings
    decision = _Decision()
    if len(raw.data) > settings.limits.max_message_bytes:
        decision.escalate("needs_review", f"message too large ({len(raw.data)} bytes); not opened")
        return decision
    verdict = classify(parsed, settings.replying_as)
    if verdict is not None and verdict.kind == "bounce":
        decision.outcome = "ignored"
        done = "recorded when it arrived" if replay else record_bounce(session, parsed, now)
        decision.reasons.append(f"bounce: {verdict.reason}; {done}")
        return decision
    if verdict is not None and verdict.kind in _NEVER_FORMS:
        decision.outcome = "ignored"
        decision.reasons.append(f"{verdict.kind}: {verdict.reason}")
        return decision
    if verdict is None and any(".digest@" in m for m in (*parsed.in_reply_to, *parsed.references)):
        # Command lines ("PRZYJMIJ 12") are carried out by mailbot.organiser_commands,
        # before anything of this message is written here (each runs in its own
        # transaction); a reply without any is for a person, as before.
        from mailbot.organiser_commands import handle_reply  # it imports this module

        handled = handle_reply(ctx, session, inbound, parsed, raw.data, now)
        if handled is not None:
            decision.outcome = handled.outcome
            decision.reasons.extend(handled.reasons)
            decision.replies.extend(handled.replies)
            return decision
        # An organiser answering the daily digest writes to a person, not to the bot.
        decision.escalate("needs_review", "reply to the organisers' daily digest: for a person, not answered")
        return decision
    if replay:
        pass  # the address's state was updated when the message arrived
    elif verdict is not None and verdict.kind == "auto_reply":
        record_auto_reply(session, parsed.from_addr, now)
    else:
        clear_bounce(session, parsed.from_addr)

    assert inbound.id is not None
    forms: list[tuple[StoredAttachment, FormData]] = []
    unreadable: list[str] = []
    blank_returned = False
    budget = _budget(settings)
    for att in parsed.attachments:
        if budget.duplicate(att.sha256):
            continue
        refused = budget.refusal()
        if refused is not None:
            decision.escalate("needs_review", refused)
            break
        fmt = sniff(att.data)
        if budget.scan_refused(fmt):
            continue
        budget.start()
        stored, form = _parse_attachment(ctx, session, inbound.id, att, budget.remaining())
        budget.spent(fmt, form.method)
        if form.status == "ok" and _is_blank(form):
            blank_returned = True
        elif form.status == "ok":
            forms.append((stored, form))
        elif form.status == "unreadable" and _worth_a_look(form, att):
            unreadable.append(f"{att.filename}: {form.reason or 'unreadable'}")
    session.flush()  # the attachments' ids, which registrations point to: one INSERT for all
    for why in budget.notes():
        decision.escalate("needs_review", why)
    if (dups := budget.duplicates_note()) is not None:
        decision.reasons.append(dups)

    reply_addr = _reply_address(parsed, settings)
    if verdict is not None:
        # An auto-reply or list message is never answered, but a form inside it is
        # still a registration: nothing a person sent is dropped.
        if not forms:
            decision.outcome = "ignored"
            decision.reasons.append(f"{verdict.kind}: {verdict.reason}")
            return decision
        decision.reasons.append(f"no reply: {verdict.kind} ({verdict.reason})")
        reply_addr = None
    answering = Answering(inbound, parsed) if verdict is None else None
    out = Queued()
    linked = linked_registrations(session, parsed)
    withdrawal = detect_withdrawal(parsed.subject, parsed.text) if verdict is None else None
    if answering is not None and withdrawal is not None and withdrawal.kind == "none":
        _settle_by_envelope(ctx, session, decision, answering, reply_addr, linked, now, out)
    if withdrawal is not None and withdrawal.kind == "unclear":
        decision.escalate("needs_review", f"{withdrawal.reason}; nothing changed, a person should read it")
        if answering is not None and not forms:  # "czy mogę zrezygnować…?": a question (issue 12)
            _question(ctx, session, decision, answering, reply_addr, _known(ctx, session, linked, reply_addr, now),
                      now, out)
    elif withdrawal is not None and withdrawal.kind == "cancel":
        assert answering is not None
        _withdraw(ctx, session, decision, answering, reply_addr, linked, forms, withdrawal.reason, now, out)
    elif forms:
        _register(ctx, session, decision, inbound, answering, reply_addr, linked, forms, now, out,
                  as_of=as_of or now, parsed=parsed)
    elif not _address_reply(ctx, session, decision, answering, reply_addr, linked, now, out):
        _no_form(ctx, session, decision, answering, reply_addr, linked, unreadable, blank_returned, now, out)
    decision.replies.extend(out.queued)
    for skipped in out.skipped:
        decision.escalate("needs_review", skipped)
    if out.queued:
        decision.reasons.append("queued " + ", ".join(out.queued))
    return decision


def _today(settings: Settings, now: dt.datetime) -> dt.date:
    return now.astimezone(settings.tz).date()


def _open_event_keys(settings: Settings, now: dt.datetime) -> list[str]:
    today = _today(settings, now)
    return [e.key for e in settings.events if e.date >= today]


def _no_form(
    ctx: IngestContext,
    session: Session,
    decision: _Decision,
    answering: Answering | None,
    reply_addr: str | None,
    linked: Sequence[Registration],
    unreadable: Sequence[str],
    blank_returned: bool,
    now: dt.datetime,
    out: Queued,
) -> None:
    """No form: send the blank one — unless the sender is already registered, in which
    case it is a question or a thank-you for the organisers, not a missing form."""
    settings = ctx.settings
    why = (
        "blank form returned unfilled"
        if blank_returned and not unreadable
        else "; ".join(f"cannot read {u}" for u in unreadable)
        if unreadable
        else "no registration form attached"
    )
    known = list(linked) or (
        _registrations_of_sender(session, reply_addr, _open_event_keys(settings, now)) if reply_addr else []
    )
    if known and not unreadable and not blank_returned:
        codes = ", ".join(r.code for r in known[:5])
        decision.escalate("needs_review", f"message about {codes} without a form: for the organisers to read")
        if answering is not None:  # a question is answered at once and forwarded (issue 12)
            _question(ctx, session, decision, answering, reply_addr, known, now, out)
        return
    decision.escalate("needs_review", why)
    event = _fallback_event(settings, now)
    if event is None or reply_addr is None or answering is None:
        if reply_addr is None:
            decision.reasons.append("no no_form reply: no address we may answer")
        return
    if ctx.mailer.over_daily_cap(session, reply_addr, now):
        cap = settings.outbox.max_replies_per_address_per_day
        out.skipped.append(f"no no_form to {reply_addr}: already {cap} automatic mails today")
        return
    row = ctx.mailer.queue(
        session,
        kind="no_form",
        event=event,
        to=reply_addr,
        now=now,
        dedupe=f"no_form:{answering.inbound.dedupe_key}",
        context={
            "unreadable": [u.split(":", 1)[0] for u in unreadable],
            "blank_form_returned": blank_returned,
        },
        to_name=answering.parsed.from_name if reply_addr == answering.parsed.from_addr else None,
        answering=answering,
        attach_blank=True,
    )
    out.add(row, "no_form", reply_addr)


def _settle_by_envelope(
    ctx: IngestContext,
    session: Session,
    decision: _Decision,
    answering: Answering,
    reply_addr: str | None,
    linked: Sequence[Registration],
    now: dt.datetime,
    out: Queued,
) -> None:
    """A person writing from an address we doubted shows it is theirs: settle it, and
    send them the mail they were owed (whatever else the message asks for)."""
    inbound = answering.inbound
    assert inbound.id is not None
    settled = doubts.by_envelope(session, answering.parsed, linked, ref=inbound.ref, inbound_id=inbound.id, now=now)
    if not settled.people:
        return
    decision.reasons.extend(settled.done)
    decision.reasons.extend(
        doubts.queue_settled(session, ctx.mailer, settled, answering=answering, reply_to=reply_addr,
                             tell_sender=False, now=now, out=out)
    )


def _address_reply(
    ctx: IngestContext,
    session: Session,
    decision: _Decision,
    answering: Answering | None,
    reply_addr: str | None,
    linked: Sequence[Registration],
    now: dt.datetime,
    out: Queued,
) -> bool:
    """A reply without a form, tied to registrations whose addresses wait for
    confirmation: settle what it clearly says (the people get their mail, the writer
    hears which addresses we now use); an unclear answer goes to review, nothing
    changed. False when it says nothing about them (then it is an ordinary message)."""
    if answering is None:
        return False  # automatic mail never confirms anything
    inbound = answering.inbound
    assert inbound.id is not None
    outcome = doubts.by_reply(session, ctx.settings, answering.parsed, linked, ref=inbound.ref,
                              inbound_id=inbound.id, now=now)
    if outcome is None:
        return False
    codes = ", ".join(r.code for r in outcome.regs)
    if outcome.answer.kind == "none":
        decision.reasons.append(f"e-mail address(es) on {codes} still unconfirmed")
        return False
    decision.registrations.extend(r.code for r in outcome.regs)
    if outcome.answer.kind == "unclear":
        decision.escalate(
            "needs_review",
            f"answer about an unconfirmed e-mail address on {codes} is unclear: {outcome.answer.reason}",
        )
        decision.reasons.append("nothing changed, a person should read it")
        return True
    decision.reasons.extend(outcome.settled.done)
    decision.reasons.extend(
        doubts.queue_settled(session, ctx.mailer, outcome.settled, answering=answering, reply_to=reply_addr,
                             tell_sender=True, now=now, out=out)
    )
    return True


def _registrations_of_sender(session: Session, address: str, open_keys: Sequence[str]) -> list[Registration]:
    return list(
        session.exec(
            select(Registration).where(
                Registration.sender_email == address.casefold(),
                col(Registration.event_key).in_(open_keys),
                Registration.status != "cancelled",
            )
        ).all()
    )


def _register(
    ctx: IngestContext,
    session: Session,
    decision: _Decision,
    inbound: InboundMessage,
    answering: Answering | None,
    reply_addr: str | None,
    linked: Sequence[Registration],
    forms: Sequence[tuple[StoredAttachment, FormData]],
    now: dt.datetime,
    out: Queued,
    *,
    as_of: dt.datetime,
    parsed: ParsedMessage | None = None,
) -> None:
    settings = ctx.settings
    mailer = ctx.mailer
    today = _today(settings, now)
    arrived = _today(settings, as_of)
    assert inbound.id is not None
    for index, (stored, form) in enumerate(forms):
        event_key = form.event or settings.default_event
        if event_key is None:
            decision.escalate(
                "needs_review",
                f"{stored.filename}: the form names no known event and no default_event is configured",
            )
            continue
        route: Route | None = None
        if parsed is not None:  # a past event's form, the message naming an open one (issue 12)
            route = route_form(settings, form, subject=parsed.subject, text=parsed.text, today=arrived)
            if route.kind == "ask" and not route.store_late:
                _ask_for_event(ctx, session, decision, answering, reply_addr, stored, form, route, now, out)
                continue
            if route.kind == "routed" and route.event_key is not None:
                event_key = route.event_key
                decision.reasons.append(f"{stored.filename}: {route.note}")
        event = settings.event(event_key)
        target = next((r for r in linked if r.event_key == event_key and r.status != "cancelled"), None)
        if target is None:
            target = find_correction_target(session, event_key=event_key, sender=inbound.from_addr, form=form)
        over = today > event.date
        # A form that arrived in time is in time, even when it is read later (reprocessed
        # after the admin taught the reader a label); one for an event already held is not.
        late = over or (arrived > event.deadline and target is None)
        if over and target is not None:
            decision.escalate(
                "needs_review",
                f"{stored.filename}: corrects {target.code} after {event_key} took place; not applied",
            )
            continue
        applied = apply_form(
            session,
            form,
            event_key=event_key,
            event_defaulted=form.event is None,
            sender=inbound.from_addr,
            inbound_id=inbound.id,
            attachment_id=stored.id,
            seed=f"{inbound.dedupe_key}:{index}",
            now=now,
            target=target,
            searched=True,
            late=late,
            settled_by=f"form {inbound.ref}",
        )
        reg = applied.registration
        decision.registrations.append(reg.code)
        prefix = f"{form.file}: " if len(forms) > 1 else ""
        problems = [prefix + p.message for p in applied.blocking_problems]
        if late:
            reason = "event_over" if over else "deadline"
            decision.escalate(
                "needs_review",
                f"late registration {reg.code} for {event_key} (registration closed on "
                f"{event.deadline.isoformat()}): stored, not seated — organisers decide",
            )
            if route is not None and route.kind == "ask":  # other events are open: point to them
                _ask_for_event(ctx, session, decision, answering, reply_addr, stored, form, route, now, out, reg=reg)
            elif answering is not None:
                closed(session, mailer, reg, event, answering=answering, reply_to=reply_addr,
                       reason=reason, now=now, out=out)
            continue
        allocate(session, event_key, event.capacity, applied.added, now)
        waiting = sum(1 for p in applied.added if p.status == "waitlisted")
        verb = "registered" if applied.created else "corrected"
        doubted = len(doubts.unconfirmed_on(reg, applied.people))
        decision.reasons.append(
            f"{verb} {reg.code} for {event_key}"
            + (f" (incomplete: {len(applied.blocking_problems)} problem(s))" if applied.blocking_problems else "")
            + (f" ({waiting} on the waiting list)" if waiting else "")
            + (f" ({doubted} e-mail address(es) to confirm)" if doubted else "")
        )
        if answering is None:
            continue
        if applied.created:
            welcome(session, mailer, reg, event, answering=answering, reply_to=reply_addr,
                    problems=problems, now=now, out=out)
        else:
            corrected(session, mailer, applied, event, answering=answering, reply_to=reply_addr,
                      problems=problems, now=now, out=out)
        if any(g.status == "confirmed" for g in applied.removed):
            moved = promote(session, event_key, event.capacity, now)
            promoted(session, mailer, moved, event, now=now, out=out)


def _withdraw(
    ctx: IngestContext,
    session: Session,
    decision: _Decision,
    answering: Answering,
    reply_addr: str | None,
    linked: Sequence[Registration],
    forms: Sequence[tuple[StoredAttachment, FormData]],
    why: str,
    now: dt.datetime,
    out: Queued,
) -> None:
    settings = ctx.settings
    result = cancellations.plan(
        session,
        answering.parsed,
        linked=linked,
        form_people=[(p.full_name, p.email) for _, f in forms for p in f.participants],
        open_keys=_open_event_keys(settings, now),
    )
    if isinstance(result, cancellations.Unclear):
        decision.escalate("needs_review", f"{why}; {result.reason}")
        return
    for withdrawal in result:
        reg = withdrawal.registration
        event = settings.event(reg.event_key)
        freed = cancellations.apply(session, withdrawal, now)
        decision.registrations.append(reg.code)
        names = ", ".join(p.full_name or "(no name)" for p in withdrawal.people)
        decision.reasons.append(f"{why}; cancelled {names} on {reg.code}")
        cancelled(session, ctx.mailer, reg, withdrawal.people, event, answering=answering,
                  reply_to=reply_addr, now=now, out=out)
        if freed:
            moved = promote(session, reg.event_key, event.capacity, now)
            promoted(session, ctx.mailer, moved, event, now=now, out=out)


def _budget(settings: Settings) -> MessageBudget:
    """The reading budget of one message, from ``[limits]``."""
    lim = settings.limits
    return MessageBudget(
        max_documents=lim.max_documents_per_message,
        seconds=lim.message_parse_seconds,
        max_scans=lim.max_scans_per_message,
    )


def _parse_attachment(
    ctx: IngestContext, session: Session, inbound_id: int, att: Attachment, seconds_left: float
) -> tuple[StoredAttachment, FormData]:
    digest = ctx.blobs.put(att.data, durable=False)  # re-created from the raw mail if lost
    # The document's own deadline, cut short when the message's shared budget ends first.
    deadline = seconds_left if seconds_left < ctx.form_limits.timeout_seconds else None
    form = parse_isolated(
        att.data, att.filename, ctx.events, ctx.form_limits, vocabulary=ctx.vocabulary, deadline=deadline
    )
    stored = StoredAttachment(
        inbound_id=inbound_id,
        filename=_bounded(att.filename, 300) or "",
        content_type=_bounded(att.content_type, 200) or "",
        sha256=digest,
        size=len(att.data),
        origin=_bounded(att.origin, 1000) or "",
        parse_status=form.status,
        parse_format=form.format,
        parse_method=form.method,
        parse_reason=_bounded(form.reason or None, 2000),
        parse_json=_bounded(json.dumps(form.to_json(), ensure_ascii=False), None),
    )
    session.add(stored)  # flushed with the message's other attachments
    return stored, form


def _is_blank(form: FormData) -> bool:
    inst = form.institution
    return not form.participants and not (inst and (inst.name or inst.email or inst.phone))


def _worth_a_look(form: FormData, att: Attachment) -> bool:
    if form.format in _DOCUMENT_FORMATS:
        return True
    return form.format == "image" and len(att.data) >= _SMALL_IMAGE


def _reply_address(parsed: ParsedMessage, settings: Settings) -> str | None:
    for candidate in (parsed.reply_to, parsed.from_addr):
        if candidate and safe_to_reply(candidate, settings.replying_as):
            return candidate
    return None


def _fallback_event(settings: Settings, now: dt.datetime) -> EventSettings | None:
    """The event a form-less message is most likely about: the default event while it is
    open, else the next one still taking registrations."""
    today = now.astimezone(settings.tz).date()
    if settings.default_event:
        event = settings.event(settings.default_event)
        if today <= event.deadline:
            return event
    upcoming = sorted((e for e in settings.events if today <= e.deadline), key=lambda e: e.date)
    return upcoming[0] if upcoming else None


# --- questions and forms for another event (issue 12) --------------------------------


def _known(
    ctx: IngestContext, session: Session, linked: Sequence[Registration], reply_addr: str | None, now: dt.datetime
) -> list[Registration]:
    """The registrations a message without a form is about: the ones it is tied to, else
    the sender's own in events still to come."""
    if linked:
        return list(linked)
    if reply_addr is None:
        return []
    return _registrations_of_sender(session, reply_addr, _open_event_keys(ctx.settings, now))


def _raw_of(ctx: IngestContext, inbound: InboundMessage) -> bytes:
    """The message as it came (stored before it is decided), for a forward; empty if gone."""
    try:
        return ctx.blobs.get(inbound.raw_sha256)
    except FileNotFoundError:
        return b""


def _question(
    ctx: IngestContext,
    session: Session,
    decision: _Decision,
    answering: Answering,
    reply_addr: str | None,
    known: Sequence[Registration],
    now: dt.datetime,
    out: Queued,
) -> None:
    """A registered person asks something (no form, no clear withdrawal): tell them at
    once that the organisers have it (``question_received``) and forward it to the
    organisers of the events concerned, Reply-To the person. The outcome stays
    needs_review: the organisers still answer. Anything else (a thank-you) only waits
    for the organisers, as before."""
    if not known or reply_addr is None:
        return
    asked = detect_question(answering.parsed.subject, answering.parsed.text)
    if not asked.asks:
        return
    events: list[EventSettings] = []
    for reg in known:
        try:
            event = ctx.settings.event(reg.event_key)
        except KeyError:
            continue
        if event not in events:
            events.append(event)
    if not events:
        return
    before = len(out.queued)
    question_received(session, ctx.mailer, known, events[0], answering=answering, reply_to=reply_addr,
                      now=now, out=out)
    told = len(out.queued) > before
    codes = ", ".join(r.code for r in known[:5])
    why = (
        f"Pytanie od osoby zarejestrowanej na konferencję (zgłoszenie {codes}) – mailbot nie odpowiada na nie sam."
        + (" Nadawca dostał potwierdzenie, że wiadomość przekazano organizatorom." if told else "")
    )
    without = forward_to_organisers(
        session, ctx.mailer, events, known, answering=answering, reply_to=reply_addr,
        raw=_raw_of(ctx, answering.inbound), why=why, topic="question", now=now, out=out,
    )
    decision.reasons.append(
        f"pytanie „{asked.phrase}” – przekazane organizatorom"
        + (", nadawca dostał potwierdzenie" if told else "")
    )
    if without:
        decision.reasons.append(
            "brak adresów organizatorów (events.organisers) dla " + ", ".join(without)
            + ": pytanie tylko w kolejce do przejrzenia"
        )


def _ask_for_event(
    ctx: IngestContext,
    session: Session,
    decision: _Decision,
    answering: Answering | None,
    reply_addr: str | None,
    stored: StoredAttachment,
    form: FormData,
    route: Route,
    now: dt.datetime,
    out: Queued,
    *,
    reg: Registration | None = None,
) -> None:
    """A form for an event already held, and no single open event named: tell the
    sender which events are open (their blank forms attached) and forward the message
    to the organisers of the form's event and of those events. ``reg``: the late
    registration the form was stored as (none named), else nothing was stored."""
    settings = ctx.settings
    decision.escalate("needs_review", f"{stored.filename}: {route.note}")
    if answering is None or form.event is None:
        return
    own = settings.event(form.event)
    offered = [settings.event(k) for k in route.candidates]
    open_events_reply(session, ctx.mailer, own, offered, answering=answering, reply_to=reply_addr,
                      closed_reason="event_over" if route.form_event_over else "deadline", now=now, out=out,
                      reg=reg)
    if reply_addr is None:
        return
    without = forward_to_organisers(
        session, ctx.mailer, [own, *offered], [reg] if reg is not None else [], answering=answering,
        reply_to=reply_addr,
        raw=_raw_of(ctx, answering.inbound), why=route.note[:1].upper() + route.note[1:] + ".",
        topic="event", now=now, out=out,
    )
    if without:
        decision.reasons.append("brak adresów organizatorów (events.organisers) dla " + ", ".join(without))
