"""The ``mailbot`` command line. Thin: parses options, wires an App, prints results.

Conventions every command follows (docs/cli.md is generated from this module by
``python -m mailbot.clidoc``; a test fails when it drifts):

- ``-v``/``-vv``/``-q`` on every command set the log level (:mod:`mailbot.logsetup`);
  ``-q`` leaves only errors and the command's own output (stdout).
- The command's result goes to stdout; notes ("wrote FILE") and logs go to stderr.
- Exit codes are :class:`ExitCode`; click's own usage errors are 2 as well.
- Read-only commands (``status``, ``review list|show``, ``export``) never create a
  database or directory (:func:`mailbot.status.open_existing`).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from mailbot.config import (
    Settings,
    apply_overrides,
    find_config,
    load_settings,
)
from mailbot.errors import ConfigError, MailboxError, MailbotError
from mailbot.logsetup import configure, level_for

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy import Engine

    from mailbot.app import App, Clock, PassReport


class ExitCode(enum.IntEnum):
    """What a script calling mailbot can rely on (documented in docs/cli.md)."""

    OK = 0
    FAILED = 1
    """The work itself failed: the mailbox or database could not be reached, an action
    the item's state does not allow (already resolved, purged), an internal error."""
    USAGE = 2
    """The command line or the configuration is wrong (also click's usage errors)."""
    NOT_FOUND = 3
    """What was named does not exist: a review item, a registration code, an event key,
    or the database itself (read-only commands never create it)."""


EXIT_CODES_HELP = """\b
Exit status:
  0  ok
  1  the work failed (mailbox or database unreachable, wrong item state)
  2  usage or configuration error
  3  not found (review item, registration, event key, no database yet)"""

app = typer.Typer(
    help="mailbot: reads the registration mailbox, parses forms, stores registrations, replies.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's help: paragraphs rewrapped, no type tags on flags
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(db_app, name="db")
review_app = typer.Typer(
    help="Resolve what waits in Needs-Review.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(review_app, name="review")


@functools.cache
def _err() -> Console:
    """stderr, for notes and errors: log-like lines, never wrapped mid-sentence. Made
    on first use: ``run -q`` with nothing to say never imports rich (issue 13)."""
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


@functools.cache
def _out() -> Console:
    """stdout, for the command's result."""
    from rich.console import Console

    return Console()


class _Verbosity:
    """The ``-v``/``-q`` of the command being run (one command per process)."""

    verbose = 0
    quiet = False


VerboseOpt = Annotated[int, typer.Option(
    "--verbose", "-v", count=True, show_default=False, help="Log more: -v progress (INFO), -vv debugging detail (DEBUG).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors and the command's own output.")]


def _start(verbose: int, quiet: bool) -> None:
    """Every command's first line: remember -v/-q and set up logging before any work."""
    if verbose and quiet:
        raise typer.BadParameter("-v and -q contradict each other; give one", param_hint="-q")
    _Verbosity.verbose, _Verbosity.quiet = verbose, quiet
    _logging()


def _code_for(error: MailbotError) -> ExitCode:
    from mailbot.review import ReviewNotFound, ReviewUsageError
    from mailbot.status import NoDatabase, OutdatedDatabase

    if isinstance(error, (ReviewNotFound, NoDatabase)):
        return ExitCode.NOT_FOUND
    if isinstance(error, (ReviewUsageError, OutdatedDatabase, ConfigError)):
        return ExitCode.USAGE
    return ExitCode.FAILED


def _logging(default: str = "WARNING", *, stream: Any = None) -> None:
    """Log to stderr at what -v/-q ask for, else ``default`` (WARNING for one-shot
    commands: their output says what happened; the service uses its log_level)."""
    configure(level_for(_Verbosity.verbose, _Verbosity.quiet, default), stream or sys.stderr)


def note(message: str) -> None:
    """A line about the work (not its result) on stderr; ``-q`` silences it."""
    if not _Verbosity.quiet:
        _err().print(message, highlight=False, markup=False)


def _fail(message: str, code: int = ExitCode.USAGE) -> typer.Exit:
    _err().print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(int(code))


def _version(value: bool) -> None:
    if value:
        from mailbot import __version__  # package metadata: read for --version only

        _out().print(f"mailbot {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print mailbot's version and exit.")] = False,
) -> None:
    """mailbot: reads the registration mailbox, parses forms, stores registrations, replies."""


ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", metavar="FILE",
                 help="Config file (else $MAILBOT_CONFIG, else /etc/mailbot/mailbot.toml)."),
]
InboxOpt = Annotated[
    Optional[str],
    typer.Option(metavar="URL", help="Override the mailbox: maildir:PATH or imaps://user@host:port/FOLDER."),
]
OutboxOpt = Annotated[
    Optional[str],
    typer.Option(metavar="URL", help="Override the outbox: maildir:PATH or smtp://host:port (smtps://, smtp+plain://)."),
]
DbOpt = Annotated[Optional[str], typer.Option("--db", metavar="URL", help="Override the database URL.")]
NowOpt = Annotated[
    Optional[str],
    typer.Option(metavar="ISO", help="Pretend it is this moment (ISO 8601; the config's time zone if none given)."),
]
EventOpt = Annotated[Optional[str], typer.Option(metavar="KEY", help="Only this event key.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (keys documented in docs/cli.md).")]


def _settings(config: Path | None, **overrides: str | None) -> Settings:
    path = find_config(config)
    try:
        settings = load_settings(path)
        return apply_overrides(settings, **overrides)
    except ConfigError as e:
        raise _fail(f"{e}\n(run `mailbot check-config` for details)") from e


def _clock(now: str | None, settings: Settings) -> Clock:
    from mailbot.app import fixed_clock, system_clock

    if now is None:
        return system_clock
    try:
        moment = dt.datetime.fromisoformat(now)
    except ValueError as e:
        raise _fail(f"--now {now!r} is not ISO 8601 (e.g. 2016-04-01T09:00)") from e
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=settings.tz)
    return fixed_clock(moment)


def _event_key(settings: Settings, event: str | None) -> None:
    """Refuse an unknown ``--event`` with exit 3, naming the known keys."""
    if event is not None and event not in {e.key for e in settings.events}:
        known = ", ".join(e.key for e in settings.events) or "none"
        raise _fail(f"--event {event!r} is not a configured event key (configured: {known})", ExitCode.NOT_FOUND)


def _existing_db(settings: Settings) -> Engine:
    from mailbot.status import open_existing

    try:
        return open_existing(settings.db_url)
    except MailbotError as e:
        raise _fail(str(e), _code_for(e)) from e


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


@app.command("check-config")
def check_config(
    config: ConfigOpt = None,
    connect: Annotated[bool, typer.Option(
        "--connect", help="Also log in to the mailbox, the SMTP server and the database.")] = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Check the configuration file.

    Prints every problem with its TOML path and a hint: exit 2 for a configuration
    error; with --connect also logs in to the servers and the database it names,
    exit 1 when one of them fails."""
    _start(verbose, quiet)
    from mailbot.configcheck import check_command

    raise typer.Exit(check_command(config, connect=connect, out=_out(), err=_err()))


@app.command()
def parse(
    files: Annotated[list[Path], typer.Argument(
        metavar="FILE", help="Form files to read.", exists=True, dir_okay=False)],
    provenance: Annotated[
        bool,
        typer.Option(
            "--provenance",
            help="Add each field's source (fields/table/text/ocr), confidence and repairs.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", hidden=True, help="Accepted; JSON is the only output.")] = True,
    config: ConfigOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Print what registration forms contain, as JSON.

    One document per file, in argument order, in a JSON array (the contract in
    docs/forms.md).

    A value the reader doubts carries a low_confidence problem (with a proposed
    suggestion when a cross-check points to one); --provenance shows why. Without a
    config file, the events of the shipped demo.toml are recognised."""
    _start(verbose, quiet)
    from mailbot.app import form_vocabulary
    from mailbot.forms.model import Limits
    from mailbot.forms.worker import parse_file_isolated
    from mailbot.ingest import events_for_forms
    from mailbot.resources import default_config_dir

    path = find_config(config)
    if config is None and not path.exists():
        path = default_config_dir() / "demo.toml"
        note(f"note: no config found; recognising the events of {path}")
    try:
        settings = load_settings(path)
        vocabulary = form_vocabulary(settings)
    except ConfigError as e:
        raise _fail(str(e)) from e
    events = events_for_forms(settings)
    # The daemon's isolation: a hostile file gets a deadline and a memory cap here too.
    lim = settings.limits
    limits = Limits(
        max_file_bytes=lim.max_attachment_bytes,
        max_decompressed_bytes=lim.max_decompressed_bytes,
        max_zip_entries=lim.max_zip_entries,
        max_pdf_pages=lim.max_pdf_pages,
        max_image_pixels=lim.max_image_pixels,
        timeout_seconds=lim.parse_timeout_seconds,
    )
    _print_json([
        parse_file_isolated(f, events, limits, vocabulary=vocabulary).to_json(provenance=provenance)
        for f in files
    ])


@app.command()
def run(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit (else run as a service).")] = False,
    config: ConfigOpt = None,
    inbox: InboxOpt = None,
    outbox: OutboxOpt = None,
    db: DbOpt = None,
    now: NowOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Run the service, or one pass with --once.

    The service watches the mailbox (IMAP IDLE or polling), answers, reminds and sends
    the daily digest. With --once: one pass over the mailbox and the outbox, then exit.

    Logs at the config's log_level unless -v or -q is given; the service logs to
    stdout (for the journal), --once to stderr."""
    _start(verbose, quiet)
    from mailbot.app import build_app

    settings = _settings(config, inbox=inbox, outbox=outbox, db=db)
    if not once:
        from mailbot.daemon import Daemon

        if now is not None:
            raise _fail("--now only makes sense with --once (the service follows the real clock)")
        _logging(settings.log_level, stream=sys.stdout)
        try:
            daemon = Daemon(find_config(config), {"inbox": inbox, "outbox": outbox, "db": db}, settings=settings)
        except ConfigError as e:
            raise _fail(str(e)) from e
        raise typer.Exit(daemon.run())
    _logging(settings.log_level)
    try:
        app_ = build_app(settings, clock=_clock(now, settings))
    except ConfigError as e:
        raise _fail(str(e)) from e
    try:
        report = _run_pass(app_)
    except MailboxError as e:
        raise _fail(f"mailbox: {e}", ExitCode.FAILED) from e
    _print_pass(report)


def _run_pass(app_: App) -> PassReport:
    from mailbot.app import PassReport

    if _Verbosity.quiet or not _err().is_terminal:
        return app_.run_once()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    report = PassReport()
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=_err(),
        transient=True,
    ) as progress:
        task = progress.add_task("messages", total=None)
        app_.check_mailbox(report, on_message=lambda _r: progress.advance(task))
    report.scheduled = app_.remind()
    report.delivery = app_.deliver()
    return report


def _print_pass(report: PassReport) -> None:
    counts: dict[str, int] = {}
    for r in report.results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no new messages"
    d = report.delivery
    scheduled = f"; {len(report.scheduled)} reminder/change mail(s) queued" if report.scheduled else ""
    deferred = f", {d.deferred} left for the next run" if d.deferred else ""
    note(f"pass done: {summary}{scheduled}; mails sent {d.sent}, retrying {d.retried}, failed {d.failed}{deferred}")


@app.command()
def remind(
    config: ConfigOpt = None,
    outbox: OutboxOpt = None,
    db: DbOpt = None,
    now: NowOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Queue and send the reminders due now.

    Reminders before events, and promotions from the waiting list after a raised
    capacity. An edited event is mailed only by `mailbot announce`. Safe to run
    repeatedly.

    Prints one "queued KIND → ADDRESS" line per mail queued."""
    _start(verbose, quiet)
    app_ = _app_for(config, db, now, outbox)
    queued = app_.remind()
    d = app_.deliver()
    for line in queued:
        _out().print(f"queued {line}", highlight=False, markup=False)
    note(
        f"{len(queued)} mail(s) queued; sent {d.sent}, retrying {d.retried}, failed {d.failed}"
        + (f", {d.deferred} left for the next run" if d.deferred else "")
    )


@app.command()
def announce(
    event: Annotated[str, typer.Argument(metavar="EVENT", help="Event key from the config.")],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show who would get what; queue and record nothing.")] = False,
    silent: Annotated[bool, typer.Option(
        "--silent", help="Accept the change as announced without mailing anybody (a typo).")] = False,
    config: ConfigOpt = None,
    outbox: OutboxOpt = None,
    db: DbOpt = None,
    now: NowOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Tell participants that an event's date, time or venue changed.

    An edit to an event in the config mails nobody by itself: it waits here (check-config
    warns about it). Lists the changes since what participants were last told, then
    queues and sends one "changed" mail per address (seated people and whoever
    registered them, with the updated calendar entry); once only. --dry-run prints each
    address and queues nothing; --silent records the new details as announced and mails
    nobody. Reload the service (SIGHUP) too, so its mails show the same details.

    Nothing to announce: says so, exit 0. Unknown event or no database: exit 3."""
    _start(verbose, quiet)
    from sqlmodel import Session

    from mailbot.leadership import JobBusy
    from mailbot.reminders import PendingChange, announce as run_announce, pending_change
    from mailbot.status import OutdatedDatabase, open_existing

    settings = _settings(config, db=db, outbox=outbox)
    if event not in {e.key for e in settings.events}:
        known = ", ".join(e.key for e in settings.events) or "none"
        raise _fail(f"{event!r} is not a configured event key (configured: {known})", ExitCode.NOT_FOUND)
    target = settings.event(event)
    clock = _clock(now, settings)

    def say(text: str) -> None:
        _out().print(text, highlight=False, markup=False, soft_wrap=True)

    def show(change: PendingChange) -> None:
        told = change.announced_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
        say(f"{event}: changed since participants were told ({told}):")
        for item in change.changes:
            say(f"  {item}")

    try:
        engine = open_existing(settings.db_url)
    except OutdatedDatabase as e:
        if dry_run:
            raise _fail(str(e), ExitCode.USAGE) from e
        engine = None  # announcing writes: the App below brings the schema up to date
    except MailbotError as e:
        raise _fail(str(e), _code_for(e)) from e
    if dry_run:
        assert engine is not None
        try:
            with Session(engine) as session:
                change = pending_change(session, settings, target, clock())
        finally:
            engine.dispose()
        if change is None:
            say(f"{event}: nothing to announce: no change waits to be told to participants")
            return
        show(change)
        if silent:
            say(f"would record these as announced and mail nobody ({change.people} seated)")
        else:
            say(f'would queue {len(change.recipients)} "changed" mail(s) about {change.people} seated:')
            for r in change.recipients:
                entry = "; calendar entry" if r.attends else ""
                say(f"  {r.address}: {', '.join(r.people)}{entry}")
        note(f"dry run: nothing queued or recorded; `mailbot announce {event}` sends these mails, "
             "--silent accepts the change without mail")
        return
    if engine is not None:
        engine.dispose()
    app_ = _app_for(config, db, now, outbox)
    try:
        with app_.exclusive("remind"), app_.session() as session:
            done = run_announce(session, app_.mailer, app_.settings.event(event), app_.clock(), silent=silent)
            session.commit()
    except JobBusy:
        raise _fail("another mailbot process is queueing reminders right now; try again in a minute",
                    ExitCode.FAILED) from None
    if done is None:
        say(f"{event}: nothing to announce: no change waits to be told to participants")
        return
    show(done.change)
    if silent:
        say("recorded as announced; nobody mailed")
        return
    for line in done.queued:
        say(f"queued {line}")
    d = app_.deliver()
    note(
        f"{len(done.queued)} mail(s) queued; sent {d.sent}, retrying {d.retried}, failed {d.failed}"
        + (f", {d.deferred} left for the next run" if d.deferred else "")
    )


@app.command()
def status(
    address: Annotated[Optional[str], typer.Option(
        metavar="ADDRESS", help="Also show everything from and to this e-mail address.")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
    now: NowOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Show what the service is doing.

    Last mailbox check, backlog, outbox, next jobs, seats per event; with --address,
    everything from and to that address.

    Read-only: when the database does not exist yet it says so (exit 3) and creates
    nothing."""
    _start(verbose, quiet)
    from rich.table import Table
    from sqlmodel import Session

    from mailbot.status import collect, render, to_json

    settings = _settings(config, db=db)
    moment = _clock(now, settings)()
    engine = _existing_db(settings)
    try:
        with Session(engine) as session:
            report = collect(session, settings, moment, address=address)
    finally:
        engine.dispose()
    if as_json:
        _print_json(to_json(report, moment))
        return
    for title, rows in render(report, settings, moment):
        table = Table(title=title, show_header=any(rows[0]), title_justify="left")
        for column in rows[0]:
            table.add_column(column, overflow="fold")
        for row in rows[1:]:
            table.add_row(*row)
        _out().print(table)


@app.command()
def preview(
    template: Annotated[str, typer.Argument(
        metavar="KIND",
        help="Template kind: ack, incomplete, no_form, waitlist, promoted, cancelled, closed, reminder, changed, "
             "updated, question_received, forwarded_question, open_events; command_result (to organisers).")],
    event: Annotated[Optional[str], typer.Option(metavar="KEY", help="Event key from the config (else sample data).")] = None,
    html: Annotated[bool, typer.Option("--html/--no-html", help="Also print the HTML part.")] = True,
    config: ConfigOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Render a mail template with sample data.

    The admin's check after editing a template (docs/templates.md)."""
    _start(verbose, quiet)
    from mailbot.replies import event_context
    from mailbot.template_samples import sample_context
    from mailbot.templating import KINDS, Templates

    organiser_kinds = ("command_result",)  # to organisers, not participants: not in KINDS
    if template not in KINDS and template not in organiser_kinds:
        raise _fail(f"unknown template {template!r}; choose one of: {', '.join((*KINDS, *organiser_kinds))}")
    path = find_config(config)
    settings: Settings | None = None
    if path.exists() or config is not None:
        settings = _settings(config)
    event_data = None
    if event is not None:
        if settings is None:
            raise _fail("--event needs a config file (--config or $MAILBOT_CONFIG)")
        _event_key(settings, event)
        event_data = event_context(settings.event(event))
    if template == "command_result":
        from mailbot.template_samples import command_result_sample

        context = command_result_sample()
    else:
        context = sample_context(template, event_data)
    if settings is not None:
        context["signature"] = settings.signature
        context["organiser_email"] = settings.outbox.from_address
    templates = Templates(settings.templates_dir if settings else None)
    try:
        rendered = templates.render(template, context)
    except Exception as e:  # noqa: BLE001 - the admin needs the template error itself
        raise _fail(f"template {template}: {type(e).__name__}: {e}") from e
    _out().print(f"[bold]Subject:[/bold] {rendered.subject}\n", highlight=False)
    _out().print(rendered.text, markup=False, highlight=False, soft_wrap=True)
    if html:
        _out().rule("HTML")
        _out().print(rendered.html, markup=False, highlight=False, soft_wrap=True)


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", metavar="DIR", help="Where the demo writes everything.")] = Path("demo-output"),
    now: NowOpt = "2016-04-01T09:00",
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Run the demo over sample mail; no servers needed.

    The samples are made by mailbot itself; everything lands under --dir."""
    _start(verbose, quiet)
    from mailbot.demo import run_demo

    try:
        run_demo(directory, now or "2016-04-01T09:00", _out())
    except ConfigError as e:
        raise _fail(str(e)) from e


@app.command()
def export(
    fmt: Annotated[str, typer.Option(
        "--format", metavar="FORMAT", help="csv, xlsx, json, or attendance (the list to sign, XLSX + PDF).")] = "csv",
    event: EventOpt = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", metavar="FILE", help="File to write (default: stdout; required for xlsx and attendance).")] = None,
    dialect: Annotated[str, typer.Option(
        "--dialect", metavar="DIALECT",
        help="CSV only: excel-pl (';', UTF-8 with BOM, CRLF: opens in Polish Excel) or plain (',', no BOM).")] = "excel-pl",
    config: ConfigOpt = None,
    db: DbOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Export the participant list, or an attendance list.

    Registrations with their participants as CSV, XLSX or JSON; or, with --format
    attendance, the list to sign for one event.

    Read-only: a database that does not exist yet is reported (exit 3), not created."""
    _start(verbose, quiet)
    from sqlmodel import Session

    from mailbot import export as exp

    settings = _settings(config, db=db)
    if fmt not in ("csv", "xlsx", "json", "attendance"):
        raise _fail(f"--format {fmt!r}: choose csv, xlsx, json or attendance")
    if dialect not in exp.CSV_DIALECTS:
        raise _fail(f"--dialect {dialect!r}: choose {' or '.join(exp.CSV_DIALECTS)}")
    _event_key(settings, event)
    if fmt == "attendance" and (event is None or output is None):
        raise _fail("--format attendance needs --event KEY and --output STEM (writes STEM.xlsx and STEM.pdf)")
    if fmt == "xlsx" and output is None:
        raise _fail("--format xlsx needs --output FILE")
    engine = _existing_db(settings)
    try:
        if fmt == "attendance":
            from mailbot.attendance import write_attendance

            assert event is not None and output is not None
            with Session(engine) as session:
                paths = write_attendance(session, settings.event(event), output)
            note("wrote " + " and ".join(str(p) for p in paths))
            return
        with Session(engine) as session:
            rows = exp.load_rows(session, event)
    finally:
        engine.dispose()
    if fmt == "xlsx":
        assert output is not None
        output.write_bytes(exp.to_xlsx(rows))
        note(f"wrote {len(rows)} registration(s) to {output}")
        return
    text = exp.to_json(rows) if fmt == "json" else exp.to_csv(rows, dialect)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_bytes(text.encode("utf-8"))  # as is: the CSV's CRLF must not be translated
        note(f"wrote {len(rows)} registration(s) to {output}")


@app.command()
def form(
    event: Annotated[str, typer.Option(metavar="KEY", help="Event key from the config.")],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="docx (content controls) or pdf (fillable).")] = "docx",
    config: ConfigOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Write the blank registration form for an event.

    The header (title, date, venue) comes from the config."""
    _start(verbose, quiet)
    from mailbot.app import event_header
    from mailbot.forms.blank import make_docx, make_pdf

    settings = _settings(config)
    if fmt not in ("docx", "pdf"):
        raise _fail(f"--format {fmt!r}: choose docx or pdf")
    _event_key(settings, event)
    header = event_header(settings.event(event))
    output.write_bytes(make_docx(header, None, style="controls") if fmt == "docx" else make_pdf(header))
    note(f"wrote {output}")


def _app_for(config: Path | None, db: str | None, now: str | None, outbox: str | None = None) -> App:
    """An App for a command that writes (creates the database when needed)."""
    from mailbot.app import build_app

    settings = _settings(config, db=db, outbox=outbox)
    try:
        return build_app(settings, clock=_clock(now, settings))
    except ConfigError as e:
        raise _fail(str(e)) from e


def _reader_app(config: Path | None, db: str | None) -> App:
    """An App on a database that must already exist; creates no file or directory."""
    from mailbot.app import App

    settings = _settings(config, db=db)
    _existing_db(settings).dispose()
    try:
        return App(settings)
    except ConfigError as e:
        raise _fail(str(e)) from e


@app.command()
def digest(
    event: EventOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the digests; queue and send nothing.")] = False,
    config: ConfigOpt = None,
    outbox: OutboxOpt = None,
    db: DbOpt = None,
    now: NowOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Send the organisers' daily digest now.

    At most one per event, address and day."""
    _start(verbose, quiet)
    from mailbot.digest import run_digest_command
    from mailbot.leadership import JobBusy

    app_ = _app_for(config, db, now, outbox)
    _event_key(app_.settings, event)
    try:
        _out().print(run_digest_command(app_, event, dry_run), markup=False, highlight=False, soft_wrap=True)
    except ConfigError as e:
        raise _fail(str(e)) from e
    except JobBusy:
        raise _fail("another mailbot process is sending the digest right now; try again in a minute",
                    ExitCode.FAILED) from None


@app.command()
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would go; change nothing.")] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
    now: NowOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Remove personal data after the retention period.

    Personal data and stored files go retention_days after each event; anonymous
    counts stay. The service does this every night; mail in the mailbox is not touched."""
    _start(verbose, quiet)
    from mailbot.leadership import JobBusy
    from mailbot.purge import purge as run_purge, render_report

    app_ = _app_for(config, db, now)
    try:
        with app_.exclusive("purge"), app_.session() as session:
            report = run_purge(session, app_.settings, app_.blobs, app_.clock(), dry_run=dry_run)
    except JobBusy:
        raise _fail("another mailbot process is purging right now (the service does it nightly); "
                    "try again in a minute", ExitCode.FAILED) from None
    _out().print(render_report(report), markup=False, highlight=False, soft_wrap=True)


ReviewId = Annotated[str, typer.Argument(
    metavar="ID", help="The item's number or its 10-character ref (see `review list`).")]
NoteOpt = Annotated[Optional[str], typer.Option(metavar="TEXT", help="Why: kept with the decision.")]
RegistrationOpt = Annotated[Optional[str], typer.Option(
    metavar="CODE", help="The registration code, when the message has several.")]


def _review(action: Callable[[], str]) -> None:
    from mailbot.review import ReviewError

    try:
        _out().print(action(), markup=False, highlight=False, soft_wrap=True)
    except (ReviewError, ConfigError) as e:
        raise _fail(str(e), _code_for(e)) from e


@review_app.command("list")
def review_list(
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """List the messages waiting for a person.

    Each with its reason. Read-only."""
    _start(verbose, quiet)
    from mailbot import review as rv

    app_ = _reader_app(config, db)
    items = rv.list_open(app_.ingest)
    if as_json:
        _print_json([rv.item_json(i) for i in items])
        return
    _review(lambda: rv.render_list(items))


@review_app.command("show")
def review_show(
    item: ReviewId,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Show everything about one item.

    Headers, reason, attachments and what was read from them, its registrations with their participants numbered from 1 (the N of fix and
    confirm), replies and history. Read-only; an unknown ID exits 3."""
    _start(verbose, quiet)
    from mailbot import review as rv

    app_ = _reader_app(config, db)
    if as_json:
        try:
            detail = rv.show(app_.ingest, item)
        except rv.ReviewError as e:
            raise _fail(str(e), _code_for(e)) from e
        _print_json(rv.detail_json(detail))
        return
    _review(lambda: rv.render_show(rv.show(app_.ingest, item)))


@review_app.command("fix")
def review_fix(
    item: ReviewId,
    assignments: Annotated[list[str], typer.Argument(
        metavar="FIELD=VALUE",
        help="e.g. participants[1].email=jan@gmina.pl for the first participant (numbered from 1, "
             "as in the mails and `review show`); institution.name|address|phone|email, "
             "participants[N].full_name|position|phone|email, event, workshops, remarks, "
             "consents.data_processing|newsletter (tak/nie).")],
    add: Annotated[bool, typer.Option(
        "--add", help="Let participants[N] one past the last add a person (else refused as a typo).")] = False,
    registration: RegistrationOpt = None,
    note: NoteOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    outbox: OutboxOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Correct the registration a message made.

    The people concerned hear what the pipeline would have said."""
    _start(verbose, quiet)
    from mailbot import review as rv

    app_ = _app_for(config, db, None, outbox)
    _review(lambda: rv.render_result(
        rv.fix(app_.ingest, item, assignments, registration=registration, note=note, add=add)))
    app_.deliver()


@review_app.command("confirm")
def review_confirm(
    item: ReviewId,
    number: Annotated[Optional[int], typer.Argument(
        metavar="N",
        help="The participant, numbered from 1 as `review show` lists them; "
             "may be left out when one address waits.")] = None,
    suggestion: Annotated[bool, typer.Option(
        "--suggestion", help="Take the address the reader suggested instead of the one read.")] = False,
    registration: RegistrationOpt = None,
    note: NoteOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    outbox: OutboxOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Confirm an e-mail address the reader doubted.

    The participant then gets their own mail."""
    _start(verbose, quiet)
    from mailbot import review as rv

    app_ = _app_for(config, db, None, outbox)
    _review(lambda: rv.render_result(
        rv.confirm(app_.ingest, item, number, registration=registration, suggestion=suggestion, note=note)))
    app_.deliver()


@review_app.command("accept")
def review_accept(
    item: ReviewId,
    note: NoteOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    outbox: OutboxOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Take an item as it is, with the usual mails.

    E.g. a late registration the organisers admit."""
    _start(verbose, quiet)
    from mailbot import review as rv

    app_ = _app_for(config, db, None, outbox)
    _review(lambda: rv.render_result(rv.accept(app_.ingest, item, note=note)))
    app_.deliver()


@review_app.command("reject")
def review_reject(
    item: ReviewId,
    note: NoteOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Close an item without any mail."""
    _start(verbose, quiet)
    from mailbot import review as rv

    app_ = _app_for(config, db, None)
    _review(lambda: rv.render_result(rv.reject(app_.ingest, item, note=note)))


@review_app.command("reprocess")
def review_reprocess(
    item: ReviewId,
    note: NoteOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    outbox: OutboxOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Read a message again from its stored copy.

    E.g. after extending labels_file; the replies the pipeline sends are queued,
    nothing goes twice."""
    _start(verbose, quiet)
    from mailbot import review as rv

    app_ = _app_for(config, db, None, outbox)
    _review(lambda: rv.render_result(rv.reprocess(app_.ingest, item, note=note)))
    app_.deliver()


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, db: DbOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Apply pending database migrations.

    Also done on every start; creates the database when there is none."""
    _start(verbose, quiet)
    from mailbot.store.db import make_engine, upgrade

    settings = _settings(config, db=db)
    engine = make_engine(settings.db_url)
    upgrade(engine)
    engine.dispose()
    note("database is up to date")


def main() -> None:
    """The console script: a MailbotError no command caught still gets its exit code."""
    try:
        app()
    except MailbotError as e:
        raise SystemExit(int(_fail(str(e), _code_for(e)).exit_code)) from e
