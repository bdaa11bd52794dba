"""End to end throughput: N form mails from an IMAP inbox to N acknowledgements (issue 13).

Run:  .venv/bin/python bench/e2e.py [--n 1000] [--db sqlite|postgresql|postgresql://user:pw@host/db]
                                    [--keep] [--workers K]

It starts the test suite's private Dovecot (IMAPS, throw-away CA) and SMTP sink
(tests/servers.py) and, for ``--db postgresql``, a throw-away PostgreSQL server
(tests/pg.py; a ``postgresql://…`` URL uses an existing database instead). It APPENDs N
realistic form mails to the inbox (bench/e2e_mails.py: 70 % .docx, 30 % text PDF, from
the project's own generators, several producers and layouts; every mail from its own
sender, who is the form's one participant, for the one open event) over one IMAP
connection with MULTIAPPEND, 50 mails a command. Preparing is timed but is no figure.

Then, in this order, it measures and prints one line each:

1. download      UID SEARCH ALL + FETCH BODY.PEEK[] in batches of 100, in this process
                 (imapclient over TLS, connect and login included): wall and CPU.
2. download+parse  the same download, then for every message ``mailbot.mime.parse_message``
                 and ``mailbot.forms.parse_bytes`` of each attachment (what ``mailbot parse``
                 and the service run, without the isolation worker), in this process,
                 after one warm-up parse of each format. Wall and CPU, and the CPU of the
                 ``parse_bytes`` calls alone ("parse part").
3. run --once    ``mailbot run --once`` as a subprocess, repeated until the sink has an
                 ``X-Mailbot-Kind: ack`` for every sender (or a pass brings nothing new).
                 The bench config lifts the outbox rate limit (``max_per_minute``) and,
                 if the config has such a setting, the per-pass delivery cap (else
                 ``deliver_due``'s hidden 500 applies and the pass count shows it). Wall
                 (sum of the passes), CPU of the process tree (user+sys from
                 ``getrusage(RUSAGE_CHILDREN)`` deltas; this process is made a child
                 subreaper and reaps the orphaned forkserver/resource tracker, so the
                 parse workers' CPU is counted), passes, CPU per message. PostgreSQL's
                 own backend CPU is NOT included (it is not a child).
4. idle pass     one more ``run --once`` with nothing new (all N filed): wall and CPU;
                 and the same idle pass inside one process that already made a pass (as
                 the service makes them between two waits): start-up left out.
5. peak memory   of the process tree during step 3, sampled every 50 ms from /proc
                 (mailbot and all its descendants): the sum of RSS (counts pages shared
                 by the forkserver's children once per process, so an upper bound), the
                 sum of PSS (shared pages split: the fair figure), and the largest RSS of
                 a single process (a lower bound; not ``ru_maxrss`` of the children,
                 which also covers the processes that made the mails).
6. ratios and the issue's targets, one PASS/MISS line each:
                 - N mails at ≤ 20 s per 1,000 (step 3 wall × 1000/N);
                 - step 3 wall ≤ 1.5 × step 2 wall;
                 - CPU outside parsing ≤ 15 ms per message: (step 3 CPU − step 2 parse
                   part) / N;
                 - idle pass ≤ 0.5 s (the issue measures it at 10,000 filed messages:
                   run with ``--n 10000``);
                 - peak memory ≤ 250 MB (judged on the PSS sum; the RSS sum is shown).

After step 3 it prints a sanity line from the database: inbound outcomes, participants,
acks at the sink.

``--profile FILE`` runs step 3's first pass under cProfile (``python -m cProfile -o FILE
-m mailbot run --once …``; its figures then include the profiler's overhead); read it with
``python -c "import pstats; pstats.Stats('FILE').sort_stats('cumulative').print_stats(25)"``.
Only the mailbot process is profiled, not its parse workers.

``--keep`` keeps the temp root (configs, the database, every pass's log
``pass-<k>.log``, the sink's messages) and prints where it is.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import math
import os
import resource
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from imapclient import IMAPClient  # noqa: E402

from bench import e2e_mails  # noqa: E402
from mailbot.app import event_header, form_vocabulary  # noqa: E402
from mailbot.config import OutboxSettings, load_settings  # noqa: E402
from mailbot.forms import parse_bytes  # noqa: E402
from mailbot.forms.model import Limits  # noqa: E402
from mailbot.ingest import events_for_forms  # noqa: E402
from mailbot.mime import MimeLimits, parse_message  # noqa: E402
from tests.servers import DovecotServer, SmtpSink, make_temp_root, make_test_ca  # noqa: E402
from tests.test_daemon import CONFIG  # noqa: E402

BATCH = 100
APPEND_BATCH = 50
PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024
HIDDEN_DELIVERY_CAP = 500
"""``deliver_due(..., limit=500)``: mails one pass delivers at most, when no setting lifts it."""

TARGET_WALL_PER_1000 = 20.0
TARGET_RATIO = 1.5
TARGET_CPU_OUTSIDE_MS = 15.0
TARGET_IDLE = 0.5
TARGET_PEAK_MB = 250.0


# -- config ------------------------------------------------------------------------------


def delivery_cap_setting() -> tuple[str, int] | None:
    """The ``[outbox]`` setting that caps one pass's deliveries, if the config has one
    (the lead is turning the hidden 500 into a setting), and the largest value allowed."""
    for name, info in OutboxSettings.model_fields.items():
        if name == "max_per_minute" or info.annotation not in (int, "int"):
            continue
        if any(word in name for word in ("per_pass", "per_run", "batch", "delivery_limit", "deliver")):
            high = 1_000_000
            for meta in info.metadata:
                le = getattr(meta, "le", None)
                lt = getattr(meta, "lt", None)
                if le is not None:
                    high = min(high, int(le))
                if lt is not None:
                    high = min(high, int(lt) - 1)
            return name, high
    return None


def config_text(state_dir: Path, cap: tuple[str, int] | None) -> str:
    text = CONFIG.replace("capacity = 50", "capacity = 1000000")
    outbox = "[outbox]\nmax_per_minute = 10000000\n"
    if cap is not None:
        outbox += f"{cap[0]} = {cap[1]}\n"
    text = text.replace("[outbox]\n", outbox, 1)
    return f'state_dir = "{state_dir}"\n' + text


# -- process tree: CPU and memory -------------------------------------------------------


def make_subreaper() -> bool:
    """PR_SET_CHILD_SUBREAPER: orphans of mailbot (its forkserver) become our children,
    so reaping them adds their CPU (and their parse workers') to RUSAGE_CHILDREN."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(36, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def children_of(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out += [int(x) for x in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def tree(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children_of(p)
    return seen


def rss_pss(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except OSError:
        try:
            with open(f"/proc/{pid}/statm") as f:
                rss = pss = int(f.read().split()[1]) * PAGE
        except OSError:
            pass
    return rss, pss


@dataclass
class Sampler:
    """Every 50 ms: the process tree under ``pid``, its summed RSS and PSS."""

    pid: int
    interval: float = 0.05
    peak_rss: int = 0
    peak_pss: int = 0
    peak_procs: int = 0
    peak_single: int = 0
    """The largest RSS of one process of the tree."""
    seen: set[int] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = tree(self.pid)
            self.seen.update(pids)
            rss = pss = 0
            for p in pids:
                r, s = rss_pss(p)
                rss += r
                pss += s
                self.peak_single = max(self.peak_single, r)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self.peak_procs = max(self.peak_procs, len(pids))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def reap(pids: set[int], timeout: float = 10.0) -> None:
    """Wait for mailbot's orphans (now ours, as subreaper) so their CPU is counted."""
    deadline = time.monotonic() + timeout
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # not ours (mailbot reaped it) or gone
                pending.discard(pid)
                continue
            if done:
                pending.discard(pid)
        if pending:
            time.sleep(0.02)


@dataclass
class Pass:
    wall: float
    cpu: float
    code: int
    sampler: Sampler


_SERVICE_IDLE = """
import sys, time
from pathlib import Path
from mailbot.app import build_app
from mailbot.config import apply_overrides, load_settings
config, inbox, outbox, db = sys.argv[1:5]
settings = apply_overrides(load_settings(Path(config)), inbox=inbox, outbox=outbox, db=db)
app = build_app(settings)
app.run_once()  # the service's first pass: imports, engine, connections
wall, cpu = time.perf_counter(), time.process_time()
app.run_once()
print(time.perf_counter() - wall, time.process_time() - cpu)
"""


def service_idle_pass(args: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Wall and CPU seconds of an idle pass in a process that already made one, as the
    daemon (``mailbot run``) makes them: what an idle pass costs beyond start-up."""
    opts = dict(zip(args[::2], args[1::2], strict=True))
    with log.open("w") as err:
        out = subprocess.run(
            [sys.executable, "-c", _SERVICE_IDLE, opts["--config"], opts["--inbox"], opts["--outbox"], opts["--db"]],
            cwd=log.parent, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env, text=True,
            check=True,
        )  # fmt: skip
    wall, cpu = out.stdout.split()[-2:]
    return float(wall), float(cpu)


def run_once(args: list[str], env: dict[str, str], log: Path, profile: Path | None = None) -> Pass:
    before = cpu_children()
    prefix = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, *prefix, "-m", "mailbot", "run", "--once", *args],
            cwd=log.parent, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        sampler = Sampler(proc.pid)
        code = proc.wait()
        wall = time.perf_counter() - start
    sampler.stop()
    reap(sampler.seen - {proc.pid})
    return Pass(wall, cpu_children() - before, code, sampler)


# -- the sink ------------------------------------------------------------------------------


class AckCounter:
    """Senders with an ``X-Mailbot-Kind: ack`` at the sink; reads each new file's headers once."""

    def __init__(self, sink: SmtpSink, senders: set[str]) -> None:
        self.dir = sink.messages_dir
        self.senders = senders
        self.strays: set[str] = set()
        """Ack recipients who sent no mail (an address misread from a form)."""
        self.read: set[str] = set()
        self.acked: set[str] = set()
        self.kinds: collections.Counter[str] = collections.Counter()

    def count(self) -> int:
        import json

        for eml in self.dir.glob("*.eml"):
            if eml.name in self.read:
                continue
            self.read.add(eml.name)
            kind = ""
            with eml.open("rb") as f:
                for raw in f:
                    if raw in (b"\r\n", b"\n"):
                        break
                    if raw.lower().startswith(b"x-mailbot-kind:"):
                        kind = raw.split(b":", 1)[1].strip().decode()
            self.kinds[kind or "(none)"] += 1
            if kind == "ack":
                meta = json.loads(eml.with_suffix(".json").read_text())
                for r in meta["rcpt_tos"]:
                    (self.acked if r.lower() in self.senders else self.strays).add(r.lower())
        return len(self.acked)


# -- IMAP --------------------------------------------------------------------------------


def connect(account: object) -> IMAPClient:
    context = ssl.create_default_context(cafile=str(account.ca_file))  # type: ignore[attr-defined]
    client = IMAPClient(account.host, port=account.port, ssl_context=context, timeout=60)  # type: ignore[attr-defined]
    client.login(account.user, account.password)  # type: ignore[attr-defined]
    return client


def prepare(account: object, n: int, header: object, workers: int | None) -> tuple[float, int]:
    """APPEND N mails over one connection (MULTIAPPEND, 50 a command); (seconds, bytes)."""
    start = time.perf_counter()
    total = 0
    client = connect(account)
    try:
        batch: list[bytes] = []
        for i, data in e2e_mails.stream(n, header, workers=workers):  # type: ignore[arg-type]
            batch.append(data)
            total += len(data)
            if len(batch) == APPEND_BATCH:
                client.multiappend("INBOX", batch)
                batch = []
            if (i + 1) % 1000 == 0:
                print(f"  … {i + 1} mails appended ({time.perf_counter() - start:.0f} s)", flush=True)
        if batch:
            client.multiappend("INBOX", batch)
        count = int(client.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"])
    finally:
        client.logout()
    if count != n:
        raise SystemExit(f"the inbox holds {count} messages, expected {n}")
    return time.perf_counter() - start, total


def download(account: object, each: object = None) -> tuple[int, int]:
    """UID SEARCH + FETCH BODY.PEEK[] in batches of 100; ``each(raw)`` per message.
    Returns (messages, bytes)."""
    client = connect(account)
    messages = size = 0
    try:
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        for k in range(0, len(uids), BATCH):
            fetched = client.fetch(uids[k : k + BATCH], ["BODY.PEEK[]"])
            for uid in uids[k : k + BATCH]:
                raw = fetched[uid][b"BODY[]"]
                messages += 1
                size += len(raw)
                if each is not None:
                    each(raw)  # type: ignore[operator]
            del fetched
    finally:
        client.logout()
    return messages, size


# -- main -----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> int:  # noqa: C901, PLR0915 - a linear script
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="form mails (default 1000)")
    parser.add_argument("--db", default="sqlite", help="sqlite (default), postgresql (throw-away server) or a URL")
    parser.add_argument("--keep", action="store_true", help="keep the temp root with logs and database")
    parser.add_argument("--profile", type=Path, default=None, metavar="FILE",
                        help="run step 3's first pass under cProfile, stats to FILE (its figures then include cProfile's overhead)")
    parser.add_argument("--workers", type=int, default=None, help="processes making the mails (default: CPUs, ≤ 4)")
    args = parser.parse_args()
    n = args.n
    subreaper = make_subreaper()

    root = make_temp_root("mailbot-e2e-")
    root.chmod(0o755)
    (root / "dovecot").mkdir()
    work = Path(tempfile.mkdtemp(prefix="work-", dir=root))
    ca = make_test_ca(root / "ca")
    dovecot = DovecotServer(root / "dovecot", ca)
    sink = SmtpSink(root / "smtp", ca)
    pg = None
    ok_exit = False
    try:
        dovecot.start()
        sink.start()
        if args.db == "sqlite":
            db_url, db_label = f"sqlite:///{work / 'mailbot.db'}", "SQLite"
        elif args.db == "postgresql":
            from tests.pg import PostgresServer

            pg = PostgresServer()
            pg.start()
            db_url, db_label = pg.create_database("e2e"), "PostgreSQL (throw-away)"
        else:
            db_url = args.db
            if db_url.startswith(("postgresql://", "postgres://")):
                db_url = "postgresql+psycopg://" + db_url.split("://", 1)[1]
            db_label = "PostgreSQL (given)" if "postgres" in db_url else db_url.split(":", 1)[0]
        account = dovecot.add_user()
        cap = delivery_cap_setting()
        config = work / "mailbot.toml"
        config.write_text(config_text(work / "state", cap), encoding="utf-8")
        settings = load_settings(config)
        event = settings.event("opole")
        header = event_header(event)

        mix = collections.Counter(e2e_mails.producer(i) for i in range(n))
        docx = sum(v for k, v in mix.items() if k.startswith("docx"))
        print(f"e2e: {n} form mails, {docx} docx / {n - docx} PDF, database {db_label}, "
              f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")  # fmt: skip
        print("  producers: " + ", ".join(f"{k} {v}" for k, v in sorted(mix.items())))
        if cap is None:
            print(f"  delivery cap: no setting found in [outbox]; deliver_due's hidden limit of "
                  f"{HIDDEN_DELIVERY_CAP} mails a pass applies")  # fmt: skip
        else:
            print(f"  delivery cap: [outbox] {cap[0]} = {cap[1]} (lifted)")
        if not subreaper:
            print("  note: could not become a child subreaper; CPU of the parse workers may be missing")
        seconds, size = prepare(account, n, header, args.workers)
        print(f"prepare (not a figure): {n} mails, {size / MB:.1f} MB APPENDed in {seconds:.1f} s", flush=True)

        # -- warm-up of the in-process readers (imports, vocabulary, fonts)
        events = events_for_forms(settings)
        vocabulary = form_vocabulary(settings)
        lim = settings.limits
        limits = Limits(
            max_file_bytes=lim.max_attachment_bytes, max_decompressed_bytes=lim.max_decompressed_bytes,
            max_zip_entries=lim.max_zip_entries, max_pdf_pages=lim.max_pdf_pages,
            max_image_pixels=lim.max_image_pixels, timeout_seconds=lim.parse_timeout_seconds,
        )  # fmt: skip
        mime_limits = MimeLimits(
            max_parts=lim.max_mime_parts, max_attachment_bytes=lim.max_attachment_bytes,
            max_zip_entries=lim.max_zip_entries, max_zip_total=lim.max_decompressed_bytes,
        )  # fmt: skip
        warm = {e2e_mails.producer(i).split("/")[0]: i for i in range(n + 1000, n + 1100)}
        for i in warm.values():
            for att in parse_message(e2e_mails.form_mail(i, header), mime_limits).attachments:
                parse_bytes(att.data, att.filename, events, limits, vocabulary=vocabulary)

        # -- 1. bare download
        w0, c0 = time.perf_counter(), time.process_time()
        got, size = download(account)
        dl_wall, dl_cpu = time.perf_counter() - w0, time.process_time() - c0
        print(f"1. download        : wall {dl_wall:7.2f} s   CPU {dl_cpu:7.2f} s   "
              f"({got} messages, {size / MB:.1f} MB, batches of {BATCH})", flush=True)  # fmt: skip

        # -- 2. download + parse
        parse_cpu = [0.0, 0.0]  # mime, forms
        statuses: collections.Counter[str] = collections.Counter()
        matched = [0]

        def parse_one(raw: bytes) -> None:
            t0 = time.process_time()
            parsed = parse_message(raw, mime_limits)
            t1 = time.process_time()
            for att in parsed.attachments:
                form = parse_bytes(att.data, att.filename, events, limits, vocabulary=vocabulary)
                statuses[form.status] += 1
                if (parsed.from_addr or "").lower() in {(p.email or "").lower() for p in form.participants}:
                    matched[0] += 1
            t2 = time.process_time()
            parse_cpu[0] += t1 - t0
            parse_cpu[1] += t2 - t1

        w0, c0 = time.perf_counter(), time.process_time()
        download(account, parse_one)
        dp_wall, dp_cpu = time.perf_counter() - w0, time.process_time() - c0
        print(f"2. download+parse  : wall {dp_wall:7.2f} s   CPU {dp_cpu:7.2f} s   (parse part {parse_cpu[1]:.2f} s "
              f"= {parse_cpu[1] / n * 1000:.1f} ms/form, MIME {parse_cpu[0]:.2f} s; forms "
              f"{dict(statuses)}, participant = sender in {matched[0]})", flush=True)  # fmt: skip

        # -- 3. mailbot run --once until every ack is at the sink
        env = {**os.environ, "MAILBOT_IMAP_PASSWORD": account.password}
        env.pop("MAILBOT_CONFIG", None)
        run_args = [
            "--config", str(config),
            "--inbox", f"imaps://{account.user}@{account.host}:{account.port}/INBOX?ca_file={account.ca_file}",
            "--outbox", f"smtp://{sink.host}:{sink.port}?ca_file={sink.ca_file}",
            "--db", db_url,
        ]  # fmt: skip
        acks = AckCounter(sink, {e2e_mails.sender(i).lower() for i in range(n)})
        passes: list[Pass] = []
        max_passes = math.ceil(n / HIDDEN_DELIVERY_CAP) + 5
        while len(passes) < max_passes:
            profile = args.profile if args.profile is not None and not passes else None
            p = run_once(run_args, env, work / f"pass-{len(passes) + 1}.log", profile)
            before = len(acks.acked)
            passes.append(p)
            got_acks = acks.count()
            print(f"   pass {len(passes)}: wall {p.wall:6.2f} s, CPU {p.cpu:6.2f} s, exit {p.code}, "
                  f"acks {got_acks}/{n} (+{got_acks - before})", flush=True)  # fmt: skip
            if p.code != 0:
                print(f"   pass {len(passes)} exited with {p.code}; see {work / f'pass-{len(passes)}.log'}")
            if got_acks >= n or (got_acks == before and len(passes) > 1):
                break
        run_wall = sum(p.wall for p in passes)
        run_cpu = sum(p.cpu for p in passes)
        got_acks = len(acks.acked)
        print(f"3. run --once      : wall {run_wall:7.2f} s   CPU {run_cpu:7.2f} s   passes {len(passes)}   "
              f"CPU/message {run_cpu / n * 1000:.1f} ms   acks {got_acks}/{n}", flush=True)  # fmt: skip
        sanity(db_url, acks)

        # -- 4. idle pass
        idle = run_once(run_args, env, work / "idle.log")
        print(f"4. idle pass       : wall {idle.wall:7.2f} s   CPU {idle.cpu:7.2f} s   "
              f"({n} messages filed, exit {idle.code})", flush=True)  # fmt: skip

        # -- 4b. the same idle pass inside a running service (imports and set-up paid)
        service_idle = service_idle_pass(run_args, env, work / "service-idle.log")
        print(f"   in the service  : wall {service_idle[0] * 1000:7.1f} ms  CPU {service_idle[1] * 1000:7.1f} ms   "
              "(a second run_once() in one process, as `mailbot run` does between two waits)", flush=True)  # fmt: skip

        # -- 5. peak memory during step 3
        peak_rss = max(p.sampler.peak_rss for p in passes)
        peak_pss = max(p.sampler.peak_pss for p in passes)
        procs = max(p.sampler.peak_procs for p in passes)
        single = max(p.sampler.peak_single for p in passes)
        print(f"5. peak memory     : PSS sum {peak_pss / MB:6.1f} MB   RSS sum {peak_rss / MB:6.1f} MB "
              f"(up to {procs} processes, sampled every 50 ms)   largest single process RSS "
              f"{single / MB:.1f} MB (lower bound)")  # fmt: skip

        # -- 6. ratios and targets
        outside = (run_cpu - parse_cpu[1]) / n * 1000
        per_1000 = run_wall * 1000 / n
        print(f"6. ratios          : run/download+parse {run_wall / dp_wall:.2f}×   run/download {run_wall / dl_wall:.2f}×   "
              f"CPU run/(download+parse) {run_cpu / dp_cpu:.2f}×")  # fmt: skip
        print(f"   {verdict(per_1000 <= TARGET_WALL_PER_1000)} wall per 1,000 mails {per_1000:.1f} s "
              f"(target ≤ {TARGET_WALL_PER_1000:.0f} s)")  # fmt: skip
        print(f"   {verdict(run_wall <= TARGET_RATIO * dp_wall)} run / download+parse {run_wall / dp_wall:.2f}× "
              f"(target ≤ {TARGET_RATIO}×)")  # fmt: skip
        print(f"   {verdict(outside <= TARGET_CPU_OUTSIDE_MS)} CPU outside parsing {outside:.1f} ms/message "
              f"(({run_cpu:.2f} s − {parse_cpu[1]:.2f} s) / {n}; target ≤ {TARGET_CPU_OUTSIDE_MS:.0f} ms)")  # fmt: skip
        note = "" if n >= 10000 else f"; the issue's figure is at 10,000 filed, this is at {n}"
        print(f"   {verdict(idle.wall <= TARGET_IDLE)} idle pass {idle.wall:.2f} s (target ≤ {TARGET_IDLE} s{note})")
        print(f"   {verdict(peak_pss <= TARGET_PEAK_MB * MB)} peak memory {peak_pss / MB:.0f} MB PSS "
              f"(RSS sum {peak_rss / MB:.0f} MB; target ≤ {TARGET_PEAK_MB:.0f} MB)")  # fmt: skip
        print(f"   {verdict(got_acks == n)} every sender acknowledged ({got_acks}/{n})")
        ok_exit = True
    finally:
        sink.stop()
        dovecot.stop()
        if pg is not None:
            if args.keep:
                pg.stop()
            else:
                pg.cleanup()
        if args.keep or not ok_exit:
            print(f"kept: {root}" + (f" and {pg.root}" if pg is not None and args.keep else ""))
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def sanity(db_url: str, acks: AckCounter) -> None:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    engine = sa.create_engine(db_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            outcomes: dict[str, int] = dict(conn.execute(sa.text("SELECT outcome, count(*) FROM inbound_message GROUP BY outcome")).all())
            unfiled = conn.execute(sa.text("SELECT count(*) FROM inbound_message WHERE NOT filed")).scalar()
            people = conn.execute(sa.text("SELECT count(*) FROM participant")).scalar()
            mails: dict[str, int] = dict(conn.execute(sa.text("SELECT status, count(*) FROM outbound_mail GROUP BY status")).all())
    finally:
        engine.dispose()
    print(f"   database: inbound {outcomes}, not filed {unfiled}, participants {people}, "
          f"outbound {mails}; sink: {dict(acks.kinds)}, acks to addresses nobody sent from: "
          f"{len(acks.strays)} {sorted(acks.strays)[:3]}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
