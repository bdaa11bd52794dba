"""Wiring: the one place that builds the engine, templates, mailbox and transport.

Nothing here runs at import. Tests pass their own clock, source or transport to
:func:`build_app`; the CLI and the daemon use the ones the settings describe.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from contextlib import AbstractContextManager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, true, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from mailbot.config import EventSettings, Settings
from mailbot.errors import MailboxError
from mailbot.forms.labels import Vocabulary, default_vocabulary, load_vocabulary
from mailbot.forms.blank import EventHeader, make_docx, with_event_options
from mailbot.forms.model import Limits
from mailbot.ingest import (
    IngestContext,
    MessageResult,
    StorageUnavailable,
    events_for_forms,
    process,
    temporary_reason,
)
from mailbot.leadership import JobBusy, job_lock
from mailbot.mailbox.base import Cursor, MailboxSource, RawMessage
from mailbot.mime import MimeLimits
from mailbot.outbox import DeliveryStats, FileAttachment, deliver_due
from mailbot.reminders import announce_changes, queue_reminders
from mailbot.replies import Mailer, Queued
from mailbot.store import claims, db
from mailbot.store.blobs import BlobStore
from mailbot.store.tables import InboundMessage, MailboxState
from mailbot.templating import Templates
from mailbot.transport.base import Transport

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
    base = load_vocabulary(settings.labels_file) if settings.labels_file else default_vocabulary()
    vocab = with_event_options(base, (event_header(e) for e in settings.events))
    return None if vocab is base and not settings.labels_file else vocab


@lru_cache(maxsize=32)
def _blank_docx(header: EventHeader) -> bytes:
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
        self.templates = Templates(settings.templates_dir)
        self.mailer = Mailer(settings, self.templates, blank_form_attachment)
        self._source = source
        self._transport = transport
        self._claimer = claims.claimer_name()
        limits = settings.limits
        self.ingest = IngestContext(
            settings=settings,
            session_factory=self.session,
            blobs=self.blobs,
            mailer=self.mailer,
            now=clock,
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
        out = Queued()
        try:
            with self.exclusive("remind"), self.session() as session:
                announce_changes(session, self.mailer, now, out)
                queue_reminders(session, self.mailer, now, out)
                session.commit()
        except JobBusy:
            log.info("reminders and change notices: another process is queueing them now")
            return []
        for line in out.queued:
            log.info("queued %s", line)
        return out.queued

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
        try:
            # The high-water mark only moves past messages that were filed, so one that
            # could not be moved is seen again (and recognised) on the next pass.
            advancing = True
            for raw in source.fetch(cursor):
                result = process(self.ingest, raw)
                report.results.append(result)
                filed = not result.deferred and self._file(source, raw, result, report)
                if result.deferred:
                    report.deferred.append(result.ref)
                advancing = advancing and filed
                if advancing and raw.cursor is not None:
                    cursor = raw.cursor
                    self._save_cursor(source.name, cursor, None)
                if on_message is not None:
                    on_message(result)
            self._save_cursor(source.name, cursor, None)
            self._mark_gone_as_filed({r.inbound_id for r in report.results})
        except SQLAlchemyError as e:
            # Filing claims and the cursor write to the database too: a full disk or a
            # lock there is as temporary as in ingest, and ends the pass the same way.
            if temporary_reason(e) is None:
                raise
            raise StorageUnavailable(f"the database is unavailable: {temporary_reason(e)} ({e.__class__.__name__})") from e
        except MailboxError as e:
            try:
                self._save_cursor(source.name, cursor, str(e))
            except SQLAlchemyError as db_error:  # the database itself may be what is full
                log.error("could not record the mailbox error in the database: %s", db_error)
            raise
        finally:
            source.close()

    def _file(self, source: MailboxSource, raw: RawMessage, result: MessageResult, report: PassReport) -> bool:
        """Move the message where its outcome says, if this process wins the filing claim
        (a daemon and a hand-run pass never both move it). False when it is still in the
        inbox: the move failed, or another process is filing it."""
        place = raw.ref if raw.cursor is None else f"{raw.cursor.uidvalidity}:{raw.ref}"
        if not claims.claim_filing(self.session, source.name, place, self._claimer):
            log.info("message %s is being filed by another process", result.ref)
            report.deferred.append(result.ref)
            return False
        try:
            source.file(raw, result.folder)
        except MailboxError as e:
            log.warning("could not file message %s: %s (trying again shortly)", result.ref, e)
            report.filing_errors.append(f"{result.ref}: {e}")
            claims.release_filing(self.session, source.name, place, self._claimer)
            return False
        with self.session() as session:  # the claim and the ledger row in one commit
            claims.mark_filed(session, source.name, place, self._claimer)
            session.execute(
                update(InboundMessage)
                .where(col(InboundMessage.id) == result.inbound_id, col(InboundMessage.filed).is_(False))
                .values(filed=True)
            )
            session.commit()
        return True

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
