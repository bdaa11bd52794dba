"""From a form landing in the mailbox to its acknowledgement at the SMTP server.

Run:  .venv/bin/python bench/latency.py [--runs 20]

Starts the test suite's private Dovecot (IMAPS, throw-away CA) and SMTP sink process,
then `mailbot run` (the service, as systemd runs it) watching the inbox. For each run it
APPENDs a filled form from a new sender and times until the sink has accepted that
sender's `ack`. The same is measured in the same run for the baseline: the service with
IDLE switched off, polling every 5 s (the shortest poll interval the config allows).

Target (issue 5): with IDLE, median of 20 ≤ 3 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mailbot.config import load_settings  # noqa: E402
from tests.conversation import form_docx, mail  # noqa: E402
from tests.servers import DovecotServer, SmtpSink, make_temp_root, make_test_ca  # noqa: E402
from tests.test_daemon import CONFIG  # noqa: E402


def measure(mode: str, runs: int, dovecot: DovecotServer, sink: SmtpSink, work: Path) -> list[float]:
    account = dovecot.add_user()
    idle = "true" if mode == "idle" else "false"
    config = work / f"{mode}.toml"
    config.write_text(CONFIG.replace("[mailbox]\n", f"[mailbox]\nidle = {idle}\n"), encoding="utf-8")
    event = load_settings(config).event("opole")
    log = (work / f"{mode}.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "mailbot", "run", "--config", str(config),
            "--inbox", f"imaps://{account.user}@{account.host}:{account.port}/INBOX?ca_file={account.ca_file}",
            "--outbox", f"smtp://{sink.host}:{sink.port}?ca_file={sink.ca_file}",
            "--db", f"sqlite:///{work / (mode + '.db')}",
        ],
        cwd=work, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "MAILBOT_IMAP_PASSWORD": account.password},
    )
    try:
        deadline = time.monotonic() + 60
        while "mailbot started" not in (work / f"{mode}.log").read_text(errors="replace"):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"the service did not start; see {work / (mode + '.log')}")
            time.sleep(0.1)
        times = []
        for i in range(runs):
            sender = f"{mode}{i}@gmina-{i}.example.pl"
            data = mail(sender, "Zgłoszenie", "W załączeniu.", when=dt.datetime.now(dt.UTC),
                        form=form_docx(event, [(f"Osoba Numer{i}", sender)]))
            start = time.perf_counter()
            account.append("INBOX", data)
            while not any(m.recipients[0] == sender for m in sink.messages()):
                if time.perf_counter() - start > 120:
                    raise SystemExit(f"no acknowledgement for {sender} after 120 s")
                time.sleep(0.02)
            times.append(time.perf_counter() - start)
            time.sleep(0.3)  # a pause like real mail, so runs do not share a pass
        return times
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    root = make_temp_root("mailbot-bench-")
    root.chmod(0o755)
    (root / "dovecot").mkdir()
    work = Path(tempfile.mkdtemp(prefix="mailbot-latency-"))
    ca = make_test_ca(root / "ca")
    dovecot = DovecotServer(root / "dovecot", ca)
    sink = SmtpSink(root / "smtp", ca)
    try:
        dovecot.start()
        sink.start()
        print(f"{'mode':28} {'median':>8} {'p90':>8} {'min':>8} {'max':>8}   (seconds, {args.runs} runs)")
        results = {}
        for mode, label in (("idle", "IMAP IDLE"), ("poll", "baseline: poll every 5 s")):
            times = measure(mode, args.runs, dovecot, sink, work)
            results[mode] = statistics.median(times)
            p90 = statistics.quantiles(times, n=10)[-1] if len(times) >= 2 else times[0]
            print(f"{label:28} {statistics.median(times):8.2f} {p90:8.2f} {min(times):8.2f} {max(times):8.2f}")
        print(f"IDLE median / poll median: {results['idle'] / results['poll']:.2f}; target: IDLE median ≤ 3 s")
    finally:
        sink.stop()
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
