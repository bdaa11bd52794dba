"""``mailbot run``: the long-running service.

The main thread watches the mailbox — IMAP IDLE where the server offers it, so a form is
acknowledged within seconds, else a poll every ``mailbox.poll_seconds`` — and handles
each new message, then delivers its replies at once. APScheduler 3 runs the clock's jobs
beside it (outbox and reminders, the daily digest, the retention purge) with its
SQLAlchemy job store in mailbot's own database, so a digest due while the service was
down runs when it comes back instead of being forgotten.

Signals: SIGTERM/SIGINT finish the message in hand, file it, and exit 0; SIGHUP reloads
the config and templates — a broken config is reported and the running one kept. With
``Type=notify`` systemd hears READY, RELOADING, STOPPING, a status line, and a watchdog
ping while the main loop is alive.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from mailbot import runlock, sdnotify
from mailbot.app import App, PassReport, build_app
from mailbot.config import Settings, apply_overrides, load_settings
from mailbot.errors import AlreadyRunning, ConfigError, MailboxError
from mailbot.ingest import StorageUnavailable
from mailbot.leadership import JobBusy, PgLeadership
from mailbot.logsetup import configure

log = logging.getLogger(__name__)

JOBS_TABLE = "apscheduler_jobs"
"""APScheduler's own table in mailbot's database (created by the job store itself)."""
PURGE_AT = dt.time(3, 30)
MISFIRE_GRACE_S = 6 * 3600
"""A job missed while the service was down still runs if it is at most this late."""
HEARTBEAT_LIMIT_S = 15 * 60
"""The watchdog is fed only while the main loop has shown life this recently (a parse
is bounded by ``limits.parse_timeout_seconds``, a mailbox pass by the batch size)."""
_MAX_BACKOFF_S = 300.0
_FILING_RETRY_S = 5.0
"""First wait before filing again messages the server would not move."""
_STANDBY_POLL_S = 1.0
"""How often a standby asks for the lead: the takeover delay after a leader dies."""
_TICK_S = 5.0
"""How long one IDLE or sleep step lasts: the longest a stop request waits."""

_current: Daemon | None = None


class _StopPass(Exception):
    """Raised between two messages when a stop was requested."""


# Job functions live at module level: the job store keeps them by reference
# ("mailbot.daemon:outbox_job"), so they survive a restart of the process.
def outbox_job() -> None:
    if _current is not None:
        _current.outbox_tick()


def digest_job() -> None:
    if _current is not None:
        _current.digest_tick()


def purge_job() -> None:
    if _current is not None:
        _current.purge_tick()


@dataclass
class DaemonState:
    """What `mailbot status` and the logs report about the running service."""

    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    passes: int = 0
    messages: int = 0
    last_error: str | None = None
    heartbeat: float = field(default_factory=time.monotonic)


class JobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """The scheduler's jobs in mailbot's database, riding out a write that fails.

    APScheduler records each job's next run from its own thread, and an exception there
    ends the thread: one write on a full disk or a locked database would stop the
    outbox, the digest and the purge until a restart, with the mail loop running on as
    if nothing happened. Here the failure is logged and the scheduler waits a moment;
    the job keeps its old next run, so it comes round again (its work is idempotent)."""

    RETRY_S = 5.0

    def update_job(self, job: Any) -> None:
        try:
            super().update_job(job)
        except SQLAlchemyError as e:
            log.warning(
                "could not record the next run of the %s job (%s); the scheduler tries again in %.0f s",
                job.id, e.__class__.__name__, self.RETRY_S,
            )  # fmt: skip
            time.sleep(self.RETRY_S)


class Daemon:
    """One service process. Build with a config path so SIGHUP can re-read it."""

    def __init__(
        self,
        config_path: Path,
        overrides: dict[str, str | None] | None = None,
        *,
        settings: Settings | None = None,
        app_factory: Callable[[Settings], App] = build_app,
    ) -> None:
        self.config_path = config_path
        self.overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        self._app_factory = app_factory
        self.settings = settings or self._load()
        self.app = self._prepared(app_factory(self.settings))
        self.state = DaemonState()
        self.work = threading.RLock()
        """Serialises everything that writes: a mailbox pass, delivery, digests, purge."""
        self._stop = threading.Event()
        self._reload = threading.Event()
        self.scheduler: BackgroundScheduler | None = None

    # -- configuration -------------------------------------------------------------

    def _load(self) -> Settings:
        return apply_overrides(load_settings(self.config_path), **self.overrides)

    @staticmethod
    def _prepared(app: App) -> App:
        """Build the mailbox, transport and ingest context now, so an unreadable password
        file, a bad OAuth setup or a broken labels file is reported at start (or reload),
        not in the middle of the night. (A one-off pass builds them when first needed.)"""
        _ = app.source, app.transport, app.ingest
        return app

    def reload(self) -> bool:
        """Re-read config and templates; on any problem keep running as before."""
        sdnotify.reloading()
        try:
            settings = self._load()
            app = self._prepared(self._app_factory(settings))
            problems = app.templates.check()
            if problems:
                raise ConfigError("templates: " + "; ".join(problems))
        except ConfigError as e:
            log.error("reload failed, keeping the running configuration: %s", e)
            sdnotify.ready(status="reload failed; running with the previous configuration")
            return False
        with self.work:
            old = self.app
            self.settings, self.app = settings, app
            self._schedule()
        _dispose(old)
        log.info("configuration and templates reloaded from %s", self.config_path)
        sdnotify.ready(status="configuration reloaded")
        return True

    # -- signals -------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        if not self._stop.is_set():
            # At once, not when done: after a plain `kill -TERM` the watchdog stays
            # armed, and STOPPING tells systemd the silence that follows is expected.
            sdnotify.stopping()
            log.info("signal %s: finishing the message in hand, then stopping", signal.Signals(signum).name)
        self._stop.set()

    def _on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload.set()

    def request_stop(self) -> None:
        self._stop.set()

    # -- the scheduler -------------------------------------------------------------

    def _triggers(self) -> dict[str, tuple[Callable[[], None], BaseTrigger]]:
        s = self.settings
        return {
            "outbox": (outbox_job, IntervalTrigger(seconds=s.outbox_seconds)),
            "digest": (
                digest_job,
                CronTrigger(hour=s.digest_time.hour, minute=s.digest_time.minute, timezone=s.tz),
            ),
            "purge": (purge_job, CronTrigger(hour=PURGE_AT.hour, minute=PURGE_AT.minute, timezone=s.tz)),
        }

    def start_scheduler(self) -> None:
        scheduler = BackgroundScheduler(
            jobstores={"default": JobStore(engine=self.app.engine, tablename=JOBS_TABLE)},
            executors={"default": ThreadPoolExecutor(max_workers=2)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_S},
            timezone=self.settings.tz,
        )
        self.scheduler = scheduler
        scheduler.start(paused=True)
        self._schedule()
        scheduler.resume()

    def _schedule(self) -> None:
        """Add the jobs, keeping a stored job whose trigger is unchanged: its next run
        time (maybe one missed while we were down) is the point of a persistent store."""
        if self.scheduler is None:
            return
        for job_id, (func, trigger) in self._triggers().items():
            existing = self.scheduler.get_job(job_id)
            if existing is not None and str(existing.trigger) == str(trigger):
                continue
            self.scheduler.add_job(func, trigger, id=job_id, name=job_id, replace_existing=True)
            log.info("scheduled %s: %s", job_id, trigger)

    def next_runs(self) -> dict[str, dt.datetime | None]:
        if self.scheduler is None:
            return {}
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()}

    # -- jobs --------------------------------------------------------------------------

    def outbox_tick(self) -> None:
        with self.work:
            try:
                self.app.remind()
                self.app.deliver()
            except Exception:  # noqa: BLE001 - a job must never take the service down
                log.exception("outbox job failed; it runs again in %s s", self.settings.outbox_seconds)

    def digest_tick(self) -> None:
        with self.work:
            try:
                from mailbot.digest import queue_digests

                with self.app.exclusive("digest"), self.app.session() as session:
                    results = queue_digests(
                        session, self.settings, self.app.templates, self.app.blobs, self.app.clock()
                    )
                    session.commit()
                log.info("daily digest: %d mail(s) queued", sum(1 for r in results if r.queued))
                self.app.deliver()
            except JobBusy:
                log.info("daily digest: another process is sending it now")
            except Exception:  # noqa: BLE001
                log.exception("digest job failed; it runs again tomorrow (or run `mailbot digest`)")

    def purge_tick(self) -> None:
        with self.work:
            try:
                from mailbot.purge import purge

                with self.app.exclusive("purge"), self.app.session() as session:
                    report = purge(session, self.settings, self.app.blobs, self.app.clock())
                    session.commit()
                log.info("retention purge: %s", report)
            except JobBusy:
                log.info("retention purge: another process is running it now")
            except Exception:  # noqa: BLE001
                log.exception("purge job failed; it runs again tomorrow (or run `mailbot purge`)")

    # -- the main loop -------------------------------------------------------------------

    def one_pass(self) -> PassReport:
        """Handle what is in the mailbox now, stopping between messages if asked to."""
        report = PassReport()

        def after_each(_result: object) -> None:
            self.state.messages += 1
            self.state.heartbeat = time.monotonic()
            if self._stop.is_set():
                raise _StopPass

        with self.work:
            try:
                self.app.check_mailbox(report, on_message=after_each)
            except _StopPass:
                log.info("stopped between two messages; the rest waits in the mailbox")
            report.delivery = self.app.deliver()
        self.state.passes += 1
        return report

    def _wait_for_mail(self, leadership: PgLeadership | None = None) -> None:
        """Until new mail may be there, a stop or a reload is asked for, or the poll
        interval passes. IDLE where the server has it; plain sleep for a Maildir."""
        settings = self.settings.mailbox
        source = self.app.source
        idle = getattr(source, "idle_wait", None) if settings.idle else None
        # A source without IDLE (a Maildir) is polled every poll_seconds even when the
        # config leaves `idle` on: the IDLE renewal interval is no poll interval.
        deadline = time.monotonic() + (settings.idle_renew_seconds if idle is not None else settings.poll_seconds)
        while not self._stop.is_set() and not self._reload.is_set():
            self.state.heartbeat = time.monotonic()
            if leadership is not None and not leadership.still_leading():
                return  # the main loop says so and stops
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            step = min(_TICK_S, remaining)
            if idle is not None:
                if idle(step):
                    return
            else:
                self._stop.wait(step)

    def run(self) -> int:
        global _current
        try:
            lock = runlock.hold(self.settings.db_url)
        except AlreadyRunning as e:
            log.error("%s", e)
            _dispose(self.app)
            return 1
        _current = self
        self.install_signal_handlers()
        watchdog = threading.Thread(target=self._feed_watchdog, name="watchdog", daemon=True)
        watchdog.start()
        leadership = PgLeadership(self.app.engine) if self.app.engine.dialect.name == "postgresql" else None
        code = 0
        try:
            if leadership is not None and not self._stand_by(leadership):
                return 0
            self.start_scheduler()
            sdnotify.ready(status=f"watching {self.app.source.name}")
            log.info("mailbot started: mailbox %s, outbox %s", self.app.source.name, self.settings.outbox.kind)
            code = self._main_loop(leadership)
        finally:
            sdnotify.stopping()
            log.info("stopping: %d message(s) handled in %d pass(es)", self.state.messages, self.state.passes)
            if self.scheduler is not None:
                self.scheduler.shutdown(wait=True)
            with self.work:
                _close_source(self.app)
            if leadership is not None:
                leadership.release()
            _dispose(self.app)
            _current = None
            if lock is not None:
                lock.release()
        return code

    def _stand_by(self, leadership: PgLeadership) -> bool:
        """Wait as a hot standby until this process leads (True) or is stopped (False)."""
        if leadership.try_lead():
            return True
        holder = leadership.holder() or "another mailbot"
        log.info("standing by: %s serves this database; taking over when it stops", holder)
        sdnotify.ready(status=f"standby; the leader is {holder}"[:200])
        while not self._stop.wait(_STANDBY_POLL_S):
            self.state.heartbeat = time.monotonic()
            if leadership.try_lead():
                log.info("the leader is gone: taking over")
                return True
        return False

    def _main_loop(self, leadership: PgLeadership | None) -> int:
        backoff = 1.0
        retry_in = _FILING_RETRY_S
        while not self._stop.is_set():
            if self._reload.is_set():
                self._reload.clear()
                self.reload()
            if leadership is not None and not leadership.still_leading():
                # The session holding the lock ended (database restarted, network cut): a
                # standby may lead already, so working on would race it.
                log.error("lost the lead (the database session holding it ended); stopping so that "
                          "a standby or a restart by systemd takes over")
                return 1
            try:
                report = self.one_pass()
                if report.results:
                    log.info(
                        "pass: %d message(s); mails sent %d, retrying %d, failed %d",
                        len(report.results), report.delivery.sent, report.delivery.retried,
                        report.delivery.failed,
                    )
                    sdnotify.status(f"last pass {len(report.results)} message(s)")
                if self._stop.is_set():
                    break
                backoff = 1.0
                self.state.last_error = None
                if report.filing_errors or report.deferred:
                    # Registered and answered but still in the inbox (the server refused
                    # the MOVE, e.g. while restarting), or in another process's hands:
                    # look again in a few seconds rather than at the next IDLE renewal.
                    log.warning(
                        "%d message(s) left in the inbox (not filed: %d, held by another process: %d); "
                        "looking again in %.0f s",
                        len(report.filing_errors) + len(report.deferred), len(report.filing_errors),
                        len(report.deferred), retry_in,
                    )
                    self._stop.wait(retry_in)
                    retry_in = min(_MAX_BACKOFF_S, retry_in * 2)
                    continue
                retry_in = _FILING_RETRY_S
                self._wait_for_mail(leadership)
            except (MailboxError, ConfigError) as e:
                # ConfigError here: e.g. a refresh token revoked while running — keep
                # trying (with backoff) while the admin fixes it; the log says how.
                # StorageUnavailable: a full disk or a locked database; the message
                # in hand stays unfiled in the inbox, nothing about it is final.
                what = "storage" if isinstance(e, StorageUnavailable) else "mailbox"
                self._trouble(f"{what} unavailable", e, backoff)
                backoff = min(_MAX_BACKOFF_S, backoff * 2)
            except Exception as e:  # noqa: BLE001 - a bug in one pass must not end the service
                log.exception("the pass failed unexpectedly")
                self._trouble("pass failed", e, backoff)
                backoff = min(_MAX_BACKOFF_S, backoff * 2)
        return 0

    def _trouble(self, what: str, error: Exception, wait: float) -> None:
        """Record, log and report (status, sd_notify) a failed pass, then wait."""
        self.state.last_error = f"{what}: {error}"
        log.error("%s: %s; trying again in %.0f s", what, error, wait)
        sdnotify.status(f"{what}, retrying: {error}"[:200])
        self._stop.wait(wait)

    def _feed_watchdog(self) -> None:
        interval = sdnotify.watchdog_interval()
        if interval is None:
            return
        while not self._stop.wait(interval):
            if time.monotonic() - self.state.heartbeat < HEARTBEAT_LIMIT_S:
                sdnotify.watchdog()
            else:
                log.error("main loop silent for %.0f s; letting the watchdog restart us", HEARTBEAT_LIMIT_S)


def _close_source(app: App) -> None:
    source: Any = app._source  # noqa: SLF001 - only close what was opened
    if source is not None:
        try:
            source.close()
        except Exception:  # noqa: BLE001
            log.debug("closing the mailbox failed", exc_info=True)


def _dispose(app: App) -> None:
    try:
        app.engine.dispose()
    except Exception:  # noqa: BLE001
        log.debug("disposing the engine failed", exc_info=True)


def setup_logging(level: str) -> None:
    """The service logs to stdout (the journal) at the config's level."""
    configure(logging.getLevelNamesMapping().get(level.upper(), logging.INFO), sys.stdout)
