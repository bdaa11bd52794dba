"""Shared machinery of the chaos harness (bench/chaos.py, tests/test_chaos.py).

A :class:`Lab` is one experiment's world: an IMAP account on the test Dovecot, the SMTP
sink, a work directory and a database URL (SQLite file or a PostgreSQL database). It
starts ``mailbot`` processes (:class:`Mailbot`: their output captured line by line with
a monotonic timestamp, into ``<work>/<name>.log``), appends form mails, waits for
quiescence and counts the figures (:func:`tally`). Every wait is a bounded poll that
fails with a :class:`ChaosError` naming the log file to read.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import email.parser
import email.policy
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from mailbot.app import event_header
from mailbot.config import EventSettings, load_settings
from mailbot.forms.blank import DOCX_MIME, FilledValues, make_docx, make_pdf
from mailbot.forms.model import Consents, Institution, Participant
from mailbot.store.tables import OutboundMail
from tests.servers import DovecotAccount, SmtpSink
from tests.test_daemon import CONFIG

T0 = time.monotonic()
ORGANISER = "zgloszenia@partnerstwa.example.pl"
PAST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
"""Where :func:`fast_forward` moves leases and retry times: "long enough ago"."""


class ChaosError(RuntimeError):
    """A bounded wait gave up, or a process did something it must not; says which log to read."""


def config_text(state_dir: Path) -> str:
    """The daemon test config (tests/test_daemon.py) made fit for hundreds of senders:
    a big hall, no send rate limit, state (blobs, default database) in ``state_dir``."""
    text = CONFIG.replace("capacity = 50", "capacity = 100000")
    # The shortest IDLE renewal the config allows: it bounds how long a message that
    # arrived between a pass and the next IDLE waits (see the report on that race).
    text = text.replace("idle_renew_seconds = 60", "idle_renew_seconds = 30")
    text = text.replace("[outbox]\n", "[outbox]\nmax_per_minute = 100000\n", 1)
    return f'state_dir = "{state_dir}"\n' + text


# -- processes -------------------------------------------------------------------------


class Mailbot:
    """One ``mailbot`` process (run, run --once, status), its output timestamped."""

    def __init__(self, lab: Lab, name: str, args: Sequence[str]) -> None:
        self.name = name
        self.log_path = lab.work / f"{name}.log"
        self.lines: list[tuple[float, str]] = []
        self.signalled = False
        self.expected: tuple[int, ...] = (0,)
        """Exit codes that are no crash when the process ends by itself."""
        self.spawned_at = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailbot", *args],
            cwd=lab.work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MAILBOT_IMAP_PASSWORD": lab.account.password, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # its parse workers die with it in kill()
        )
        self._reader = threading.Thread(target=self._read, name=f"log-{name}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout, self.log_path.open("a", encoding="utf-8") as out:
            for raw in self.proc.stdout:
                t = time.monotonic()
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.lines.append((t, line))
                out.write(f"[{t - T0:9.3f}] {line}\n")
                out.flush()

    def text(self) -> str:
        return "\n".join(line for _t, line in list(self.lines))

    def seen(self, needle: str) -> float | None:
        """When a line containing ``needle`` was first printed (monotonic), else None."""
        for t, line in list(self.lines):
            if needle in line:
                return t
        return None

    def wait_for(self, needle: str, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            at = self.seen(needle)
            if at is not None:
                return at
            if self.proc.poll() is not None:
                self._reader.join(5)
                at = self.seen(needle)
                if at is not None:
                    return at
                raise ChaosError(f"{self.name} exited with {self.proc.returncode} before "
                                 f"logging {needle!r}; see {self.log_path}")
            time.sleep(0.05)
        raise ChaosError(f"{self.name} did not log {needle!r} within {timeout:.0f} s; see {self.log_path}")

    def wait_exit(self, timeout: float = 60.0) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise ChaosError(f"{self.name} still running after {timeout:.0f} s; see {self.log_path}") from None
        self._reader.join(10)
        return code

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and everything in its session (its parse workers) at once,
        as systemd's final SIGKILL of the service's cgroup does."""
        if self.proc.poll() is None:
            self.signalled = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._reader.join(10)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM: a clean stop, which must end with exit code 0."""
        if self.proc.poll() is None:
            self.signalled = True
            self.proc.send_signal(signal.SIGTERM)
        code = self.wait_exit(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return code

    def crashed(self) -> str | None:
        """Why this process counts as a crash: it ended by itself with an unexpected
        code, or printed a Python traceback. None when it did neither."""
        code = self.proc.poll()
        if code is not None and not self.signalled and code not in self.expected:
            return f"{self.name} exited with {code} by itself; see {self.log_path}"
        if "Traceback" in self.text():
            return f"{self.name} printed a Traceback; see {self.log_path}"
        return None


# -- the database ------------------------------------------------------------------------


class Store:
    """Read-mostly access to the service's database (SQLite or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, poolclass=NullPool)

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query))]

    def scalar(self, query: str, default: int = -1) -> int:
        """One number, or ``default`` while the table is not there (killed before migrating)."""
        try:
            return int(self.rows(query)[0][0])
        except sa.exc.DBAPIError:
            return default

    def unsettled(self) -> tuple[int, int]:
        """(inbound messages without a final outcome, outbound mails not yet sent).

        Not ``filed``: a kill between the MOVE and the commit of ``filed`` leaves the
        flag false for good (the copy is in its folder, never fetched again); the
        census shows where messages really are, :func:`tally` counts such rows."""
        inbound = self.scalar("SELECT count(*) FROM inbound_message WHERE outcome = 'pending'")
        outbound = self.scalar(
            "SELECT count(*) FROM outbound_mail WHERE status IN ('queued', 'retry', 'sending')"
        )
        return inbound, outbound

    def fast_forward(self, dead_pids: Iterable[int] = (), retries: bool = False) -> int:
        """Move the clock on for the mail queue instead of waiting it out: the leases of
        rows claimed by the given dead processes end now (the sweeper would give them
        back after 5 minutes), and with ``retries`` rows in retry are due now (the backoff
        would wait 1, 2, 4 … minutes). Touches no row a living process holds."""
        table = OutboundMail.__table__  # type: ignore[attr-defined]
        changed = 0
        with contextlib.suppress(sa.exc.DBAPIError), self.engine.begin() as conn:
            for pid in dead_pids:
                changed += conn.execute(
                    sa.update(table)
                    .where(table.c.status == "sending", table.c.claimed_by.like(f"%:{pid}:%"))
                    .values(lease_until=PAST)
                ).rowcount
            if retries:
                changed += conn.execute(
                    sa.update(table).where(table.c.status == "retry").values(next_attempt_at=PAST)
                ).rowcount
        return changed

    def dispose(self) -> None:
        self.engine.dispose()


# -- mails ---------------------------------------------------------------------------------


def _values(name: str, address: str) -> FilledValues:
    return FilledValues(
        institution=Institution("Urząd Gminy Testowo", "ul. Rynek 1, 46-000 Testowo", "77 400 00 00",
                                "ug@testowo.example.pl"),
        participants=[Participant(name, "Inspektor", "77 400 00 11", address)],
        workshops=frozenset({"A"}),
        remarks=None,
        consents=Consents(data_processing=True, newsletter=False),
        place_date="Testowo, 1.04.2016",
    )


@dataclass(frozen=True)
class FormMail:
    sender: str
    message_id: str
    data: bytes


def form_mail(event: EventSettings, tag: str, i: int, *, pdf: bool = False) -> FormMail:
    """A filled form (docx, or PDF) from its own sender, who is its one participant."""
    sender = f"osoba{i}.{tag}@gmina-{i}.example.pl"
    values = _values(f"Osoba Numer{i}", sender)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ORGANISER
    msg["Subject"] = "Zgłoszenie"
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    message_id = f"<chaos.{tag}.{i}@gmina-{i}.example.pl>"
    msg["Message-ID"] = message_id
    msg.set_content("W załączeniu zgłoszenie.")
    if pdf:
        msg.add_attachment(make_pdf(event_header(event), values), maintype="application", subtype="pdf",
                           filename="zgloszenie.pdf")
    else:
        maintype, subtype = DOCX_MIME.split("/")
        msg.add_attachment(make_docx(event_header(event), values, style="table"), maintype=maintype,
                           subtype=subtype, filename="zgloszenie.docx")
    return FormMail(sender, message_id, msg.as_bytes())


_MESSAGE_ID = re.compile(rb"^message-id:\s*(<[^>\r\n]*>?)", re.IGNORECASE | re.MULTILINE)


def census(account: DovecotAccount) -> dict[str, list[str]]:
    """Message-ID → the folder of each copy, over every folder of the account."""
    where: dict[str, list[str]] = collections.defaultdict(list)
    with account.client() as c:
        for _flags, _delim, folder in c.list_folders():
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            if not uids:
                continue
            fetched = c.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
            for item in fetched.values():
                header = next((v for k, v in item.items() if k.startswith(b"BODY[HEADER")), b"")
                match = _MESSAGE_ID.search(header or b"")
                key = match.group(1).decode("ascii", "replace") if match else "(none)"
                where[key].append(str(folder))
    return dict(where)


def append(account: DovecotAccount, data: bytes, timeout: float = 60.0) -> None:
    """APPEND to INBOX, trying again while the server is away (a restart)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            account.append("INBOX", data)
            return
        except Exception as e:  # noqa: BLE001 - imaplib, ssl and socket errors alike
            if time.monotonic() > deadline:
                raise ChaosError(f"APPEND to {account.user} failed for {timeout:.0f} s: {e}") from e
            time.sleep(0.2)


def inbox_count(account: DovecotAccount) -> int:
    with account.client() as c:
        return int(c.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"])


# -- the world of one experiment -------------------------------------------------------


@dataclass
class Lab:
    """One experiment: an IMAP account, the sink, a work directory and a database."""

    name: str
    account: DovecotAccount
    sink: SmtpSink
    work: Path
    db_url: str
    procs: list[Mailbot] = field(default_factory=list)
    sent: dict[str, str] = field(default_factory=dict)
    """Message-ID → sender of every form mail appended."""
    appended_at: dict[str, float] = field(default_factory=dict)
    """Sender → wall-clock time its form was appended."""

    def __post_init__(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.config = self.write_config(self.work / "state")
        self.event = load_settings(self.config).event("opole")
        self._store: Store | None = None
        self._counter = 0

    def write_config(self, state_dir: Path, name: str = "mailbot.toml") -> Path:
        path = self.work / name
        path.write_text(config_text(state_dir), encoding="utf-8")
        return path

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.db_url)
        return self._store

    def mailbot(self, name: str, *args: str) -> Mailbot:
        proc = Mailbot(self, name, args)
        self.procs.append(proc)
        return proc

    def service_args(self, db_url: str | None = None, config: Path | None = None) -> list[str]:
        a, s = self.account, self.sink
        return [
            "--config", str(config or self.config),
            "--inbox", f"imaps://{a.user}@{a.host}:{a.port}/INBOX?ca_file={a.ca_file}",
            "--outbox", f"smtp://{s.host}:{s.port}?ca_file={s.ca_file}",
            "--db", db_url or self.db_url,
        ]  # fmt: skip

    def run(self, name: str, *, once: bool = False, db_url: str | None = None, config: Path | None = None) -> Mailbot:
        """``mailbot run`` (the service) or ``mailbot run --once -v``."""
        extra = ["--once", "-v"] if once else []
        return self.mailbot(name, "run", *extra, *self.service_args(db_url, config))

    def next_name(self, stem: str) -> str:
        self._counter += 1
        return f"{stem}-{self._counter:03d}"

    def append_forms(self, indices: Iterable[int], *, pdf_every: int = 0,
                     pace: Callable[[], float] | None = None) -> None:
        for i in indices:
            item = form_mail(self.event, self.name, i, pdf=bool(pdf_every) and i % pdf_every == pdf_every - 1)
            append(self.account, item.data)
            self.sent[item.message_id] = item.sender
            self.appended_at[item.sender] = time.time()
            if pace is not None:
                time.sleep(pace())

    def wait_quiet(self, timeout: float = 300.0, also: Callable[[], bool] | None = None,
                   each: Callable[[], object] | None = None) -> None:
        """Until the inbox is empty, every message final and filed and no mail waits;
        ``each`` runs before every look (e.g. :meth:`Store.fast_forward`)."""
        deadline = time.monotonic() + timeout
        state: tuple[int, int, int] = (-1, -1, -1)
        while time.monotonic() < deadline:
            if each is not None:
                each()
            inbox = inbox_count(self.account)
            inbound, outbound = self.store.unsettled()
            state = (inbox, inbound, outbound)
            if state == (0, 0, 0) and (also is None or also()):
                return
            time.sleep(0.3)
        logs = ", ".join(str(p.log_path) for p in self.procs[-3:])
        raise ChaosError(
            f"{self.name}: not quiet after {timeout:.0f} s (inbox {state[0]}, messages unsettled "
            f"{state[1]}, mails unsent {state[2]}); see {logs}"
        )

    def close(self) -> None:
        for proc in self.procs:
            if proc.alive():
                proc.kill()
        if self._store is not None:
            self._store.dispose()


# -- figures ---------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one experiment measured; ``failures`` are broken invariants."""

    name: str
    items: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def __setitem__(self, key: str, value: object) -> None:
        self.items[key] = str(value)

    def check(self, ok: bool, failure: str) -> None:
        if not ok:
            self.failures.append(failure)

    def line(self) -> str:
        body = ", ".join(f"{k} {v}" if v != "" else k for k, v in self.items.items())
        verdict = "" if not self.failures else "  FAILED: " + "; ".join(self.failures)
        return f"{self.name}: {body}{verdict}"


_OUTCOME = re.compile(r"message \S+ → ")


def slowest_message(procs: Iterable[Mailbot]) -> float:
    """The longest time from one log line to the next ``message <ref> → outcome`` line of
    the same process, counting only gaps that start at a line of the message loop (an
    earlier outcome, the connection, the start): an upper bound of one message's handling."""
    loop_lines = ("→", "Connected to", "mailbot started", "taking it up again", "already handled")
    worst = 0.0
    for proc in procs:
        lines = list(proc.lines)
        for (t0, before), (t1, line) in zip(lines, lines[1:], strict=False):
            if _OUTCOME.search(line) and any(m in before for m in loop_lines):
                worst = max(worst, t1 - t0)
    return worst


def slowest_ack(lab: Lab) -> float:
    """The longest time from APPENDing a form to the sink storing its sender's first ack
    (the sink's file time), over all senders that got one."""
    parser = email.parser.BytesHeaderParser(policy=email.policy.default)
    first: dict[str, float] = {}
    for eml in lab.sink.messages_dir.glob("*.eml"):
        with eml.open("rb") as f:
            headers = parser.parse(f)
        if headers["X-Mailbot-Kind"] != "ack":
            continue
        to = str(headers["To"].addresses[0].addr_spec).lower() if headers["To"] else ""
        first[to] = min(first.get(to, float("inf")), eml.stat().st_mtime)
    gaps = [first[s] - t for s, t in lab.appended_at.items() if s in first]
    return max(gaps, default=0.0)


def tally(lab: Lab, fig: Figures, *, kills: int = 0) -> None:
    """The invariants every experiment checks, as figures: nothing lost, nothing in two
    folders, nobody registered twice, every sender acknowledged, no duplicate mail beyond
    one per ten kills (the documented SMTP window), no crash."""
    where = census(lab.account)
    lost = [m for m in lab.sent if m not in where]
    twice = [m for m, folders in where.items() if len(folders) > 1]
    people = lab.store.rows(
        "SELECT lower(email), count(*) FROM participant WHERE email IS NOT NULL GROUP BY lower(email) HAVING count(*) > 1"
    )
    received = lab.sink.messages()
    senders = set(lab.sent.values())
    acked = {m.recipients[0].lower() for m in received if m.message["X-Mailbot-Kind"] == "ack"} & senders
    copies = collections.Counter(str(m.message["Message-ID"]) for m in received)
    duplicates = sum(n - 1 for n in copies.values() if n > 1)
    crashes = [why for p in lab.procs if (why := p.crashed())]
    fig["mails"] = len(lab.sent)
    if kills:
        fig["kills"] = kills
    fig["lost"] = len(lost)
    fig["in two folders"] = len(twice)
    fig["registrations twice"] = len(people)
    fig["acks"] = f"{len(acked)}/{len(senders)}"
    fig["duplicate mails"] = f"{duplicates}{' (SMTP window)' if duplicates and kills else ''}"
    fig["crashes"] = len(crashes)
    unfiled = lab.store.scalar("SELECT count(*) FROM inbound_message WHERE NOT filed", 0)
    if unfiled:  # not an invariant of the brief; a ledger inconsistency worth seeing
        fig["ledger rows left 'not filed'"] = unfiled
    fig["slowest message"] = f"{slowest_message(lab.procs):.1f} s"
    fig["slowest ack"] = f"{slowest_ack(lab):.1f} s"
    fig.check(not lost, f"lost {lost[:3]}")
    fig.check(not twice, f"in two folders: {[(m, where[m]) for m in twice[:3]]}")
    fig.check(not people, f"registered twice: {people[:3]}")
    fig.check(len(acked) == len(senders), f"no ack for {sorted(senders - acked)[:3]}")
    # At most one per ten kills, each started ten counting: one kill can land between the
    # server's 250 and the commit (the at-least-once window) however few kills there are.
    fig.check(duplicates <= -(-kills // 10), f"{duplicates} duplicate mail(s) for {kills} kill(s): "
              f"{[k for k, n in copies.items() if n > 1][:3]}")
    fig.check(not crashes, "; ".join(crashes[:3]))
