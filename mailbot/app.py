"""Wiring: the one place that builds the engine, templates, mailbox and transport.

Nothing here runs at import. Tests pass their own clock, source or transport to
:func:`build_app`; the CLI and the daemon use the ones the settings describe.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from itertools import chain
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from contextlib import AbstractContextManager
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, true, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from mailbot.config import EventSettings, Settings
from mailbot.errors import MailboxError
from mailbot.leadership import JobBusy, job_lock
from mailbot.mailbox.base import Cursor, MailboxSource, RawMessage, file_all
from mailbot.outbox import DeliveryStats, FileAttachment, deliver_due
from mailbot.reminders import announce_changes, queue_reminders
from mailbot.store import claims, db
from mailbot.store.blobs import BlobStore
from mailbot.store.tables import InboundMessage, MailboxState
from mailbot.transport.base import Transport

# Ingest (the form readers, MIME parser), the mail composer (Jinja, Babel, iCalendar)
# and the blank form (python-docx) are imported where first used: an idle pass, which
# reads no message and composes no mail, never loads them (issue 13).
if TYPE_CHECKING:
    from mailbot.forms.blank import EventHeader
    from mailbot.forms.labels import Vocabulary
    from mailbot.ingest import IngestContext, MessageResult
    from mailbot.mime import ParsedMessage
    from mailbot.replies import Mailer
    from mailbot.templating import Templates


def process(context: IngestContext, raw: RawMessage, parsed: ParsedMessage | None = None) -> MessageResult:
    """:func:`mailbot.ingest.process`, the ingest module loaded with the first message."""
    from mailbot.ingest import process as ingest_process

    return ingest_process(context, raw, parsed)


def temporary_reason(exc: BaseException) -> str | None:
    """:func:`mailbot.ingest.temporary_reason`, loaded when a database error needs judging."""
    from mailbot.ingest import temporary_reason as reason

    return reason(exc)


log = logging.getLogger(__name__)
Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def fixed_clock(at: dt.datetime) -> Clock:
    """A clock that always says ``at`` (``--now`` replays and tests)."""
    return lambda: at


@dataclass
class PassReport:
    """What one pass over the mailbox did."""

    results: list[MessageResult] = field(default_factory=list)
    filing_errors: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    """Messages left unfiled because another process holds them (processing or filing)."""
    scheduled: list[str] = field(default_factory=list)
    """Mails queued by the clock rather than by a message: reminders, change notices."""
    delivery: DeliveryStats = field(default_factory=DeliveryStats)


def event_header(event: EventSettings) -> EventHeader:
    from mailbot.forms.blank import EventHeader  # python-docx: only for a form or a vocabulary

    return EventHeader(
        title=event.title,
        city=event.city,
        date=event.date,
        start_time=event.start_time,
        venue=event.venue,
        address=event.address,
        deadline=event.deadline,
        organiser_email=event.organiser.email,
        organiser_name=event.organiser.name,
        organiser_phone=event.organiser.phone,
        data_controller=event.organiser.data_controller,
        workshops=tuple(event.workshop_titles.items()),
        consent_data_processing=event.consents.text("data_processing"),
        consent_newsletter=event.consents.text("newsletter"),
    )


def form_vocabulary(settings: Settings) -> Vocabulary | None:
    """The label vocabulary (the admin's ``labels_file`` or the packaged one) plus the
    workshop titles and consent texts the config gives its events; None: the packaged
    one as it is (the readers' default)."""
    from mailbot.forms.blank import with_event_options
    from mailbot.forms.labels import default_vocabulary, load_vocabulary

    base = load_vocabulary(settings.labels_file) if settings.labels_file else default_vocabulary()
    vocab = with_event_options(base, (event_header(e) for e in settings.events))
    return None if vocab is base and not settings.labels_file else vocab


@lru_cache(maxsize=32)
def _blank_docx(header: EventHeader) -> bytes:
    from mailbot.forms.blank import make_docx

    return make_docx(header, None, style="controls")


def blank_form_attachment(event: EventSettings) -> FileAttachment:
    """The organisers' form for ``event``, generated from config, as sent with no_form."""
    return FileAttachment(
        filename=f"zgloszenie-{event.key}.docx",
        content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        data=_blank_docx(event_header(event)),
    )


class App:
    """A configured mailbot: storage ready, adapters built on demand."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        source: MailboxSource | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.engine: Engine = db.make_engine(settings.db_url)
        db.upgrade(self.engine)
        self.blobs = BlobStore(settings.state_dir / "blobs")
        self._source = source
        self._transport = transport
        self._claimer = claims.claimer_name()

    # Built on first use (a message to read, a mail to compose): see the imports above.
    @cached_property
    def templates(self) -> Templates:
        from mailbot.templating import Templates

        return Templates(self.settings.templates_dir)

    @cached_property
    def mailer(self) -> Mailer:
        from mailbot.replies import Mailer

        return Mailer(self.settings, self.templates, blank_form_attachment)

    @cached_property
    def ingest(self) -> IngestContext:
        from mailbot.forms.model import Limits
        from mailbot.ingest import IngestContext, events_for_forms
        from mailbot.mime import MimeLimits

        settings, limits = self.settings, self.settings.limits
        return IngestContext(
            settings=settings,
            session_factory=self.session,
            blobs=self.blobs,
            mailer=self.mailer,
            now=self.clock,
            events=events_for_forms(settings),
            vocabulary=form_vocabulary(settings),
            form_limits=Limits(
                max_file_bytes=limits.max_attachment_bytes,
                max_decompressed_bytes=limits.max_decompressed_bytes,
                max_zip_entries=limits.max_zip_entries,
                max_pdf_pages=limits.max_pdf_pages,
                max_image_pixels=limits.max_image_pixels,
                timeout_seconds=limits.parse_timeout_seconds,
            ),
            mime_limits=MimeLimits(
                max_parts=limits.max_mime_parts,
                max_attachment_bytes=limits.max_attachment_bytes,
                max_zip_entries=limits.max_zip_entries,
                max_zip_total=limits.max_decompressed_bytes,
            ),
        )

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @property
    def source(self) -> MailboxSource:
        if self._source is None:
            from mailbot.mailbox.factory import source_from_settings

            self._source = source_from_settings(self.settings.mailbox)
        return self._source

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            from mailbot.transport.factory import transport_from_settings

            self._transport = transport_from_settings(self.settings.outbox)
        return self._transport

    def run_once(self, on_message: Callable[[MessageResult], None] | None = None) -> PassReport:
        """One pass: read the mailbox, record and file every message, deliver replies."""
        report = PassReport()
        self.check_mailbox(report, on_message)
        report.scheduled = self.remind()
        report.delivery = self.deliver()
        return report

    def exclusive(self, job: str) -> AbstractContextManager[None]:
        """Hold ``job``'s lock on this store for a block (raises JobBusy when another
        process runs the same job), so the service and a hand-run command take turns."""
        return job_lock(self.engine, self.settings.db_url, job)

    def remind(self) -> list[str]:
        """Queue what the clock makes due: promotions after a raised capacity (an edited
        event is only noted; `mailbot announce` mails it), then reminders. Idempotent;
        skipped while another process does the same."""
        now = self.clock()
        out: list[str] = []
        try:
            with self.exclusive("remind"), self.session() as session:
                announce_changes(session, self.settings, lambda: self.mailer, now, out)
                queue_reminders(session, self.settings, lambda: self.mailer, now, out)
                session.commit()
        except JobBusy:
            log.info("reminders and change notices: another process is queueing them now")
            return []
        for line in out:
            log.info("queued %s", line)
        return out

    def check_mailbox(
        self, report: PassReport, on_message: Callable[[MessageResult], None] | None = None
    ) -> None:
        source = self.source
        with self.session() as session:
            state = session.get(MailboxState, source.name) or MailboxState(source=source.name)
            cursor = (
                Cursor(state.uidvalidity, state.last_uid)
                if state.uidvalidity is not None and state.last_uid is not None
                else None
            )
        source.open()
        filing = _Filing(self, source, report, cursor)
        messages = self._read_ahead(source.fetch(cursor))
        try:
            for raw, parsed in messages:
                result = process(self.ingest, raw, parsed)
                report.results.append(result)
                if result.deferred:
                    report.deferred.append(result.ref)
                filing.add(raw, result)
                if on_message is not None:
                    on_message(result)
            filing.flush()
            self._save_cursor(source.name, filing.cursor, None)
            self._mark_gone_as_filed({r.inbound_id for r in report.results})
        except SQLAlchemyError as e:
            # Filing claims and the cursor write to the database too: a full disk or a
            # lock there is as temporary as in ingest, and ends the pass the same way.
            if temporary_reason(e) is None:
                raise
            from mailbot.ingest import StorageUnavailable  # the ingest module: only on a failing pass

            raise StorageUnavailable(f"the database is unavailable: {temporary_reason(e)} ({e.__class__.__name__})") from e
        except MailboxError as e:
            filing.flush_quietly()
            try:
                self._save_cursor(source.name, filing.cursor, str(e))
            except SQLAlchemyError as db_error:  # the database itself may be what is full
                log.error("could not record the mailbox error in the database: %s", db_error)
            raise
        finally:
            messages.close()  # the read-ahead ends with the pass, however it ends
            filing.flush_quietly()
            source.close()

    def _read_ahead(
        self, messages: Iterable[RawMessage]
    ) -> Generator[tuple[RawMessage, ParsedMessage | None], None, None]:
        """``messages``, each with its MIME structure, its documents read ahead in a
        reader child of their own while the message before is stored (see
        :mod:`mailbot.readahead`; None where it could not). An idle pass imports none
        of it."""
        it = iter(messages)
        first = next(it, None)
        if first is None:
            return
        from mailbot.forms.worker import reading_ahead
        from mailbot.readahead import ReadAhead, Settings as AheadSettings

        ctx, limits = self.ingest, self.settings.limits
        ahead = ReadAhead(
            AheadSettings(
                events=ctx.events,
                limits=ctx.form_limits,
                vocabulary=ctx.vocabulary,
                mime_limits=ctx.mime_limits,
                max_documents=limits.max_documents_per_message,
                seconds=limits.message_parse_seconds,
            )
        )
        with reading_ahead(ahead):
            yield from ahead.over(chain([first], it))

    def _file_batch(self, source: MailboxSource, batch: list[tuple[RawMessage, MessageResult]], report: PassReport) -> set[int]:
        """Move the batch's messages where their outcomes say, those this process wins
        the filing claim for (a daemon and a hand-run pass never both move one), and
        record them filed. Their outcomes are already committed. Returns the indexes in
        ``batch`` now filed; the others stay in the inbox: the move failed, or another
        process is filing them."""
        places = [_place(raw) for raw, _ in batch]
        mine = claims.claim_filings(self.session, source.name, places, self._claimer)
        todo = [i for i, place in enumerate(places) if place in mine]
        for i, (_raw, result) in enumerate(batch):
            if places[i] not in mine:
                log.info("message %s is being filed by another process", result.ref)
                report.deferred.append(result.ref)
        errors = file_all(source, [(batch[i][0], batch[i][1].folder) for i in todo]) if todo else []
        failed = [i for i, error in zip(todo, errors) if error is not None]
        for i, error in zip(todo, errors):
            if error is not None:
                log.warning("could not file message %s: %s (trying again shortly)", batch[i][1].ref, error)
                report.filing_errors.append(f"{batch[i][1].ref}: {error}")
        claims.release_filings(self.session, source.name, [places[i] for i in failed], self._claimer)
        done = set(todo) - set(failed)
        with self.session() as session:  # the claims and the ledger rows in one commit
            claims.mark_filings(session, source.name, [places[i] for i in done], self._claimer)
            if done:
                session.execute(
                    update(InboundMessage)
                    .where(
                        col(InboundMessage.id).in_(sorted({batch[i][1].inbound_id for i in done})),
                        col(InboundMessage.filed).is_(False),
                    )
                    .values(filed=True)
                )
            session.commit()
        return done

    def _mark_gone_as_filed(self, seen: set[int]) -> None:
        """After a complete pass: a handled message the inbox no longer holds was filed.

        A process killed between the MOVE and recording it leaves the ledger row saying
        "not filed" while the message already sits in its folder, where no pass fetches
        it again; ``mailbot status`` would report it unfiled for ever. A fetch lists every
        message still waiting (above the high-water mark, below which all were filed),
        so a row with a final outcome that this pass did not meet is no longer there."""
        gone = (
            col(InboundMessage.filed).is_(False),
            col(InboundMessage.outcome) != "pending",
            col(InboundMessage.id).not_in(seen) if seen else true(),
        )
        with self.session() as session:
            # A read first: an idle pass (nearly always nothing to mend) takes no write lock.
            if session.exec(select(InboundMessage.id).where(*gone).limit(1)).first() is None:
                return
            session.execute(update(InboundMessage).where(*gone).values(filed=True))
            session.commit()

    def _save_cursor(self, name: str, cursor: Cursor | None, error: str | None) -> None:
        try:
            self._write_cursor(name, cursor, error)
        except IntegrityError:  # two processes' first pass both created the row: it exists now
            self._write_cursor(name, cursor, error)

    def _write_cursor(self, name: str, cursor: Cursor | None, error: str | None) -> None:
        with self.session() as session:
            state = session.get(MailboxState, name) or MailboxState(source=name)
            if cursor is not None:
                state.uidvalidity = cursor.uidvalidity
                state.last_uid = cursor.uid
            state.last_check_at = self.clock()
            state.last_error = error
            session.add(state)
            session.commit()

    def deliver(self) -> DeliveryStats:
        outbox = self.settings.outbox
        return deliver_due(
            self.session,
            self.transport,
            now=self.clock(),
            sender=outbox.from_address,
            max_attempts=outbox.max_attempts,
            max_per_minute=outbox.max_per_minute,
            limit=outbox.max_per_pass,
        )


def _place(raw: RawMessage) -> str:
    """A message's place in its mailbox, the key of its filing claim."""
    return raw.ref if raw.cursor is None else f"{raw.cursor.uidvalidity}:{raw.ref}"


class _Filing:
    """Files a pass's messages in batches once their outcomes are committed, and moves
    the high-water mark past a message only when it and all before it are filed (one
    that could not be moved is seen again, and recognised, on the next pass).

    A batch goes out at ``FILE_BATCH`` messages, when its oldest has waited
    ``FILE_WAIT_S``, and at the end of the pass: a backlog costs one MOVE and one commit
    per batch instead of per message, and a lone message is filed at once."""

    FILE_BATCH = 50
    FILE_WAIT_S = 2.0

    def __init__(self, app: App, source: MailboxSource, report: PassReport, cursor: Cursor | None) -> None:
        self.app, self.source, self.report = app, source, report
        self.cursor = cursor
        self.pending: list[tuple[RawMessage, MessageResult]] = []
        self.blocked = False  # an earlier message stayed in the inbox: the mark stays
        self.since = 0.0

    def add(self, raw: RawMessage, result: MessageResult) -> None:
        if not self.pending:
            self.since = time.monotonic()
        self.pending.append((raw, result))
        if len(self.pending) >= self.FILE_BATCH or time.monotonic() - self.since >= self.FILE_WAIT_S:
            self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        todo = [(raw, result) for raw, result in batch if not result.deferred]
        filed = self.app._file_batch(self.source, todo, self.report) if todo else set()
        moved = {id(todo[i][0]) for i in filed}
        for raw, _result in batch:
            self.blocked = self.blocked or id(raw) not in moved
            if not self.blocked and raw.cursor is not None:
                self.cursor = raw.cursor
        self.app._save_cursor(self.source.name, self.cursor, None)

    def flush_quietly(self) -> None:
        """On the way out of a pass that failed or was stopped: file what is committed,
        unless that fails too (the next pass files it)."""
        waiting = len(self.pending)
        if not waiting:
            return
        try:
            self.flush()
        except Exception as e:  # noqa: BLE001 - the error that ended the pass is the one to report
            log.warning("could not file the last %d message(s) of the pass: %s", waiting, e)


def build_app(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    source: MailboxSource | None = None,
    transport: Transport | None = None,
) -> App:
    """Create storage (migrations applied) and wire the adapters."""
    Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
    return App(settings, clock=clock, source=source, transport=transport)
