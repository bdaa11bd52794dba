"""The ``mailbot`` command line. Thin: parses options, wires an App, prints results."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from mailbot.config import (
    InvalidConfig,
    Settings,
    apply_overrides,
    find_config,
    load_settings,
)
from mailbot.errors import ConfigError

if TYPE_CHECKING:
    from mailbot.app import App, Clock, PassReport

app = typer.Typer(
    help="mailbot: reads the registration mailbox, parses forms, stores registrations, replies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
review_app = typer.Typer(
    help="Resolve what waits in Needs-Review: list, show, fix, confirm, accept, reject, reprocess.",
    no_args_is_help=True,
)
app.add_typer(review_app, name="review")
err = Console(stderr=True, soft_wrap=True)  # log-like lines: never wrapped mid-sentence
out = Console()
log = logging.getLogger("mailbot")

ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="Config file (else $MAILBOT_CONFIG, else /etc/mailbot/mailbot.toml)."),
]
InboxOpt = Annotated[
    Optional[str],
    typer.Option(help="Override the mailbox: maildir:PATH or imaps://user@host:port/FOLDER."),
]
OutboxOpt = Annotated[
    Optional[str],
    typer.Option(help="Override the outbox: maildir:PATH or smtp://host:port (smtps://, smtp+plain://)."),
]
DbOpt = Annotated[Optional[str], typer.Option("--db", help="Override the database URL.")]
NowOpt = Annotated[
    Optional[str],
    typer.Option(help="Pretend it is this moment (ISO 8601; local time zone if none given)."),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )


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


@app.command("check-config")
def check_config(config: ConfigOpt = None) -> None:
    """Validate the config file; print every problem with its TOML path and a hint."""
    path = find_config(config)
    try:
        settings = load_settings(path)
    except InvalidConfig as e:
        err.print(f"[red]{path}[/red]: {len(e.problems)} problem(s)", highlight=False)
        for p in e.problems:
            err.print(f"  [bold]{p.path}[/bold]: {p.message}", highlight=False)
        raise typer.Exit(2) from e
    except ConfigError as e:
        raise _fail(str(e)) from e
    problems: list[str] = []
    for name, secret in (("mailbox", settings.mailbox), ("outbox", settings.outbox)):
        needs = (
            (name == "mailbox" and settings.mailbox.kind == "imap")
            or (name == "outbox" and settings.outbox.kind == "smtp" and settings.outbox.username)
        ) and secret.auth == "password"
        if needs and not secret.configured:
            problems.append(f"{name}: no password source; set password_file, password_env or password_credential")
        elif secret.configured:
            try:
                secret.resolve()
            except ConfigError as e:
                problems.append(f"{name}: {e}")
    from mailbot.forms import load_vocabulary
    from mailbot.templating import Templates

    problems.extend(f"templates: {t}" for t in Templates(settings.templates_dir).check())
    if settings.labels_file:
        try:
            load_vocabulary(settings.labels_file)
        except ConfigError as e:
            problems.append(f"labels_file: {e}")
    if problems:
        for line in problems:
            err.print(f"  [bold]{line}[/bold]", highlight=False)
        raise typer.Exit(2)
    out.print(f"{path}: OK — {len(settings.events)} event(s), mailbox {settings.mailbox.kind}, outbox {settings.outbox.kind}")


@app.command()
def parse(
    files: Annotated[list[Path], typer.Argument(help="Form files to read.", exists=True, dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON contract (the default).")] = True,
    provenance: Annotated[
        bool,
        typer.Option(
            "--provenance",
            help="Add each field's source (fields/table/text/ocr), confidence and repairs.",
        ),
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Read registration forms and print what was found, as a JSON array.

    A value the reader doubts carries a ``low_confidence`` problem (with a proposed
    ``suggestion`` when a cross-check points to one); ``--provenance`` shows why."""
    from mailbot.forms import parse_file
    from mailbot.ingest import events_for_forms
    from mailbot.resources import default_config_dir

    path = find_config(config)
    if config is None and not path.exists():
        path = default_config_dir() / "demo.toml"
        err.print(f"note: no config found; recognising the events of {path}", highlight=False)
    try:
        settings = load_settings(path)
    except ConfigError as e:
        raise _fail(str(e)) from e
    from mailbot.forms import load_vocabulary

    events = events_for_forms(settings)
    try:
        vocabulary = load_vocabulary(settings.labels_file) if settings.labels_file else None
    except ConfigError as e:
        raise _fail(str(e)) from e
    results = [parse_file(f, events, vocabulary=vocabulary).to_json(provenance=provenance) for f in files]
    print(json.dumps(results, ensure_ascii=False, indent=2))


@app.command()
def run(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit (else run as a service).")] = False,
    config: ConfigOpt = None,
    inbox: InboxOpt = None,
    outbox: OutboxOpt = None,
    db: DbOpt = None,
    now: NowOpt = None,
) -> None:
    """Run the service: watch the mailbox (IMAP IDLE or polling), answer, remind, send
    the daily digest. With --once: one pass over the mailbox and the outbox, then exit."""
    from mailbot.app import build_app
    from mailbot.errors import MailboxError

    settings = _settings(config, inbox=inbox, outbox=outbox, db=db)
    if not once:
        from mailbot.daemon import Daemon, setup_logging

        if now is not None:
            raise _fail("--now only makes sense with --once (the service follows the real clock)")
        setup_logging(settings.log_level)
        try:
            daemon = Daemon(find_config(config), {"inbox": inbox, "outbox": outbox, "db": db}, settings=settings)
        except ConfigError as e:
            raise _fail(str(e)) from e
        raise typer.Exit(daemon.run())
    _setup_logging(settings.log_level)
    try:
        app_ = build_app(settings, clock=_clock(now, settings))
    except ConfigError as e:
        raise _fail(str(e)) from e
    try:
        report = _run_pass(app_)
    except MailboxError as e:
        raise _fail(f"mailbox: {e}", code=1) from e
    _print_pass(report)


def _run_pass(app_: App) -> PassReport:
    from mailbot.app import PassReport

    if not err.is_terminal:
        return app_.run_once()
    report = PassReport()
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
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
    err.print(
        f"pass done: {summary}{scheduled}; mails sent {d.sent}, retrying {d.retried}, "
        f"failed {d.failed}{deferred}",
        highlight=False,
    )


@app.command()
def remind(
    config: ConfigOpt = None,
    outbox: OutboxOpt = None,
    db: DbOpt = None,
    now: NowOpt = None,
) -> None:
    """Queue and send what is due at this moment: reminders before events, and notices of
    events whose date, time or venue changed in the config. Safe to run repeatedly."""
    from mailbot.app import build_app

    settings = _settings(config, outbox=outbox, db=db)
    _setup_logging(settings.log_level)
    try:
        app_ = build_app(settings, clock=_clock(now, settings))
    except ConfigError as e:
        raise _fail(str(e)) from e
    queued = app_.remind()
    d = app_.deliver()
    for line in queued:
        out.print(f"queued {line}", highlight=False)
    err.print(
        f"{len(queued)} mail(s) queued; sent {d.sent}, retrying {d.retried}, failed {d.failed}"
        + (f", {d.deferred} left for the next run" if d.deferred else ""),
        highlight=False,
    )


@app.command()
def status(
    address: Annotated[Optional[str], typer.Option(help="Also show everything from and to this e-mail address.")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """What the service is doing: last mailbox check, backlog, outbox, next jobs, seats."""
    from rich.table import Table
    from sqlmodel import Session

    from mailbot.app import system_clock
    from mailbot.status import collect, render
    from mailbot.store.db import make_engine, upgrade

    settings = _settings(config, db=db)
    engine = make_engine(settings.db_url)
    upgrade(engine)
    now = system_clock()
    with Session(engine) as session:
        report = collect(session, settings, now, address=address)
    for title, rows in render(report, settings, now):
        table = Table(title=title, show_header=any(rows[0]), title_justify="left")
        for column in rows[0]:
            table.add_column(column, overflow="fold")
        for row in rows[1:]:
            table.add_row(*row)
        out.print(table)
    engine.dispose()


@app.command()
def preview(
    template: Annotated[str, typer.Argument(help="Template kind: ack, incomplete, no_form, waitlist, promoted, cancelled, closed, reminder, changed, updated.")],
    event: Annotated[Optional[str], typer.Option(help="Event key from the config (else sample data).")] = None,
    html: Annotated[bool, typer.Option("--html/--no-html", help="Also print the HTML part.")] = True,
    config: ConfigOpt = None,
) -> None:
    """Render one reply template with sample data, as the admin's check after editing it."""
    from mailbot.replies import event_context
    from mailbot.template_samples import sample_context
    from mailbot.templating import KINDS, Templates

    if template not in KINDS:
        raise _fail(f"unknown template {template!r}; choose one of: {', '.join(KINDS)}")
    path = find_config(config)
    settings: Settings | None = None
    if path.exists() or config is not None:
        settings = _settings(config)
    event_data = None
    if event is not None:
        if settings is None:
            raise _fail("--event needs a config file (--config or $MAILBOT_CONFIG)")
        try:
            event_data = event_context(settings.event(event))
        except KeyError as e:
            raise _fail(f"--event {event!r} is not a configured event key") from e
    context = sample_context(template, event_data)
    if settings is not None:
        context["signature"] = settings.signature
        context["organiser_email"] = settings.outbox.from_address
    templates = Templates(settings.templates_dir if settings else None)
    try:
        rendered = templates.render(template, context)
    except Exception as e:  # noqa: BLE001 - the admin needs the template error itself
        raise _fail(f"template {template}: {type(e).__name__}: {e}") from e
    out.print(f"[bold]Subject:[/bold] {rendered.subject}\n", highlight=False)
    out.print(rendered.text, markup=False, highlight=False, soft_wrap=True)
    if html:
        out.rule("HTML")
        out.print(rendered.html, markup=False, highlight=False, soft_wrap=True)


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo writes everything.")] = Path("demo-output"),
    now: NowOpt = "2016-04-01T09:00",
) -> None:
    """Run one full pass over sample messages made by mailbot itself; no servers needed."""
    from mailbot.demo import run_demo

    try:
        run_demo(directory, now or "2016-04-01T09:00", out)
    except ConfigError as e:
        raise _fail(str(e)) from e


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="csv, xlsx, json, or attendance (the list to sign, XLSX + PDF).")] = "csv",
    event: Annotated[Optional[str], typer.Option(help="Only this event key.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="File to write (default: stdout; required for xlsx).")] = None,
    config: ConfigOpt = None,
    inbox: InboxOpt = None,
    outbox: OutboxOpt = None,
    db: DbOpt = None,
) -> None:
    """Export registrations with their participants, or the attendance list of an event."""
    from mailbot import export as exp
    from mailbot.store.db import make_engine, upgrade
    from sqlmodel import Session

    settings = _settings(config, inbox=inbox, outbox=outbox, db=db)
    if fmt not in ("csv", "xlsx", "json", "attendance"):
        raise _fail(f"--format {fmt!r}: choose csv, xlsx, json or attendance")
    if event and event not in {e.key for e in settings.events}:
        raise _fail(f"--event {event!r} is not a configured event key")
    engine = make_engine(settings.db_url)
    upgrade(engine)
    if fmt == "attendance":
        from mailbot.attendance import write_attendance

        if event is None or output is None:
            raise _fail("--format attendance needs --event KEY and --output STEM (writes STEM.xlsx and STEM.pdf)")
        with Session(engine) as session:
            paths = write_attendance(session, settings.event(event), output)
        err.print("wrote " + " and ".join(str(p) for p in paths), highlight=False)
        return
    with Session(engine) as session:
        rows = exp.load_rows(session, event)
    if fmt == "xlsx":
        if output is None:
            raise _fail("--format xlsx needs --output FILE")
        output.write_bytes(exp.to_xlsx(rows))
        err.print(f"wrote {len(rows)} registration(s) to {output}", highlight=False)
        return
    text = exp.to_json(rows) if fmt == "json" else exp.to_csv(rows)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {len(rows)} registration(s) to {output}", highlight=False)


@app.command()
def form(
    event: Annotated[str, typer.Option(help="Event key from the config.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="docx (content controls) or pdf (fillable).")] = "docx",
    config: ConfigOpt = None,
) -> None:
    """Write the blank registration form for an event (header from the config)."""
    from mailbot.app import event_header
    from mailbot.forms.blank import make_docx, make_pdf

    settings = _settings(config)
    if fmt not in ("docx", "pdf"):
        raise _fail(f"--format {fmt!r}: choose docx or pdf")
    try:
        ev = settings.event(event)
    except KeyError as e:
        raise _fail(f"--event {event!r} is not a configured event key") from e
    header = event_header(ev)
    output.write_bytes(make_docx(header, None, style="controls") if fmt == "docx" else make_pdf(header))
    err.print(f"wrote {output}", highlight=False)


def _app_for(config: Path | None, db: str | None, now: str | None, outbox: str | None = None) -> App:
    from mailbot.app import build_app

    settings = _settings(config, db=db, outbox=outbox)
    _setup_logging("WARNING" if settings.log_level == "INFO" else settings.log_level)
    try:
        return build_app(settings, clock=_clock(now, settings))
    except ConfigError as e:
        raise _fail(str(e)) from e


@app.command()
def digest(
    event: Annotated[Optional[str], typer.Option(help="Only this event key.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the digests; queue and send nothing.")] = False,
    config: ConfigOpt = None,
    outbox: OutboxOpt = None,
    db: DbOpt = None,
    now: NowOpt = None,
) -> None:
    """Send the organisers' daily digest now (at most one per event, address and day)."""
    from mailbot.digest import run_digest_command

    app_ = _app_for(config, db, now, outbox)
    try:
        out.print(run_digest_command(app_, event, dry_run), markup=False, highlight=False, soft_wrap=True)
    except ConfigError as e:
        raise _fail(str(e)) from e


@app.command()
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would go; change nothing.")] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
    now: NowOpt = None,
) -> None:
    """Remove personal data and stored files retention_days after each event (anonymous
    counts stay). The service does this every night; mail in the mailbox is not touched."""
    from mailbot.purge import purge as run_purge, render_report

    app_ = _app_for(config, db, now)
    with app_.session() as session:
        report = run_purge(session, app_.settings, app_.blobs, app_.clock(), dry_run=dry_run)
    out.print(render_report(report), markup=False, highlight=False, soft_wrap=True)


ReviewId = Annotated[str, typer.Argument(help="The item's number or its 10-character ref (see `review list`).")]
NoteOpt = Annotated[Optional[str], typer.Option(help="Why: kept with the decision.")]


def _review(action: Callable[[], str]) -> None:
    from mailbot.review import ReviewError

    try:
        out.print(action(), markup=False, highlight=False, soft_wrap=True)
    except (ReviewError, ConfigError) as e:
        raise _fail(str(e)) from e


@review_app.command("list")
def review_list(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Messages waiting for a person, with the reason."""
    from mailbot import review as rv

    app_ = _app_for(config, db, None)
    _review(lambda: rv.render_list(rv.list_open(app_.ingest)))


@review_app.command("show")
def review_show(item: ReviewId, config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Everything about one item: headers, reason, attachments and what was read from them."""
    from mailbot import review as rv

    app_ = _app_for(config, db, None)
    _review(lambda: rv.render_show(rv.show(app_.ingest, item)))


@review_app.command("fix")
def review_fix(
    item: ReviewId,
    assignments: Annotated[list[str], typer.Argument(help="field=value, e.g. participants[1].email=jan@gmina.pl")],
    registration: Annotated[Optional[str], typer.Option(help="The registration code, when the message made several.")] = None,
    note: NoteOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    outbox: OutboxOpt = None,
) -> None:
    """Correct the registration a message made; the participant hears what the pipeline would say."""
    from mailbot import review as rv

    app_ = _app_for(config, db, None, outbox)
    _review(lambda: rv.render_result(rv.fix(app_.ingest, item, assignments, registration=registration, note=note)))
    app_.deliver()


@review_app.command("confirm")
def review_confirm(
    item: ReviewId,
    index: Annotated[Optional[int], typer.Argument(
        help="N of participants[N] as `review show` lists them; may be left out when one address waits.")] = None,
    suggestion: Annotated[bool, typer.Option(
        "--suggestion", help="Take the address the reader suggested instead of the one read.")] = False,
    registration: Annotated[Optional[str], typer.Option(help="The registration code, when the message has several.")] = None,
    note: NoteOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    outbox: OutboxOpt = None,
) -> None:
    """Confirm an e-mail address the reader doubted; the participant then gets their own mail."""
    from mailbot import review as rv

    app_ = _app_for(config, db, None, outbox)
    _review(lambda: rv.render_result(
        rv.confirm(app_.ingest, item, index, registration=registration, suggestion=suggestion, note=note)))
    app_.deliver()


@review_app.command("accept")
def review_accept(item: ReviewId, note: NoteOpt = None, config: ConfigOpt = None, db: DbOpt = None,
                  outbox: OutboxOpt = None) -> None:
    """Take it as it is (e.g. a late registration the organisers admit), with the usual mails."""
    from mailbot import review as rv

    app_ = _app_for(config, db, None, outbox)
    _review(lambda: rv.render_result(rv.accept(app_.ingest, item, note=note)))
    app_.deliver()


@review_app.command("reject")
def review_reject(item: ReviewId, note: NoteOpt = None, config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Close it without any mail."""
    from mailbot import review as rv

    app_ = _app_for(config, db, None)
    _review(lambda: rv.render_result(rv.reject(app_.ingest, item, note=note)))


@review_app.command("reprocess")
def review_reprocess(item: ReviewId, note: NoteOpt = None, config: ConfigOpt = None, db: DbOpt = None,
                     outbox: OutboxOpt = None) -> None:
    """Run the message through the pipeline again from its stored copy (e.g. after
    extending labels_file), with the replies the pipeline sends; nothing goes twice."""
    from mailbot import review as rv

    app_ = _app_for(config, db, None, outbox)
    _review(lambda: rv.render_result(rv.reprocess(app_.ingest, item, note=note)))
    app_.deliver()


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Apply pending database migrations (also done on every start)."""
    from mailbot.store.db import make_engine, upgrade

    settings = _settings(config, db=db)
    upgrade(make_engine(settings.db_url))
    err.print("database is up to date", highlight=False)


def main() -> None:
    app()
