"""No message ends a pass, no race crashes, temporary errors stay temporary.

On the embedded default (Maildir in, SQLite): poison headers each get an outcome and the
next message is still processed; a full disk leaves the message unfiled and it is
registered once space returns; two processes on one store record each message once.
"""

from __future__ import annotations

import datetime as dt
import errno
import multiprocessing
import os
import shutil
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from mailbot import ingest, registrations
from mailbot.app import build_app, event_header, fixed_clock
from mailbot.config import Settings
from mailbot.errors import MailboxError
from mailbot.forms.blank import DOCX_MIME, FilledValues, make_docx
from mailbot.forms.model import Consents, Institution, Participant
from mailbot.mime import parse_message
from mailbot.registrations import make_code
from mailbot.samples import write_maildir
from mailbot.store.blobs import BlobStore
from mailbot.store.tables import InboundMessage, MailboxState, Registration
from tests.test_pipeline import NOW, make_settings, samples_for, sent_mails

GOOD = "a_complete_table"


def _inbox(settings: Settings) -> list[Path]:
    box = settings.mailbox.path
    return sorted(p for sub in ("new", "cur") if (box / sub).exists() for p in (box / sub).iterdir())


def _deliver_first(settings: Settings, raw: bytes, good: bool = True) -> None:
    """The poison message, then (one second later) a good form, in that fetch order."""
    samples = [s for s in samples_for(settings) if s.name == GOOD] if good else []
    write_maildir(samples, settings.mailbox.path)
    path = settings.mailbox.path / "new" / "0.poison.test"
    path.write_bytes(raw)
    os.utime(path, (0, 0))


def _headers(*lines: bytes, body: bytes = b"Dzien dobry.\r\n") -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


POISON = {
    "year_9999_date": _headers(
        b"From: Jan <jan@example.pl>", b"To: zgloszenia@example.org", b"Subject: test",
        b"Date: Fri, 31 Dec 9999 23:59:59 -1200", b"Message-ID: <y9999@example.pl>",
    ),
    "one_megabyte_header": _headers(
        b"From: Jan <jan@example.pl>", b"To: zgloszenia@example.org",
        b"Subject: " + b"x" * 1024 * 1024, b"X-Junk: " + b"y " * 300_000, b"Message-ID: <big@example.pl>",
    ),
    "invalid_utf8_headers": _headers(
        b"From: \xff\xfe\xc3( <bad@example.pl>", b"To: zgloszenia@example.org",
        b"Subject: \xed\xa0\x80 \xc0\xaf \x00 nul", b"Message-ID: <\xff\x00bad@example.pl>",
    ),
    "iso_8859_2_from": _headers(
        b"From: Wojciech \xa3\xb1cki <w@example.pl>", b"To: zgloszenia@example.org",
        b"Subject: Zg\xb3oszenie", b"Message-ID: <latin2@example.pl>",
    ),
    "unquoted_attachment_name": _headers(
        b"From: Jan <jan@example.pl>", b"To: zgloszenia@example.org", b"Subject: formularz",
        b"Message-ID: <unq@example.pl>", b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="b1"',
        body=b"--b1\r\nContent-Type: text/plain\r\n\r\nw zalaczeniu\r\n--b1\r\n"
        b"Content-Type: application/msword; name=zg\xb3oszenie Opole \"2016\".doc\r\n"
        b"Content-Disposition: attachment; filename=zg\xb3oszenie Opole; \"2016.doc\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n0M8R4KGxGuEAAAAA\r\n--b1--\r\n",
    ),
}


@pytest.mark.parametrize("name", sorted(POISON))
def test_a_poison_message_gets_an_outcome_and_the_next_one_is_still_processed(tmp_path: Path, name: str) -> None:
    settings = make_settings(tmp_path)
    _deliver_first(settings, POISON[name])
    app = build_app(settings, clock=fixed_clock(NOW))
    report = app.run_once()
    assert len(report.results) == 2
    assert report.results[-1].outcome == "registered"
    assert report.results[0].outcome in ("needs_review", "ignored")
    assert _inbox(settings) == []
    with app.session() as s:
        rows = s.exec(select(InboundMessage)).all()
        assert len(rows) == 2 and all(r.outcome != "pending" and r.filed for r in rows)


def test_a_value_the_database_refuses_is_recorded_as_could_not_be_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    _deliver_first(settings, POISON["year_9999_date"])
    # Bypass the bounding, as a value nobody foresaw would: the row itself fails.
    west = dt.timezone(dt.timedelta(hours=-12))
    monkeypatch.setattr(ingest, "_storable_date", lambda d: d or dt.datetime(9999, 12, 31, 23, 59, tzinfo=west))
    app = build_app(settings, clock=fixed_clock(NOW))
    report = app.run_once()
    poison = report.results[0]
    assert poison.outcome == "needs_review" and poison.reason.startswith("could not be stored: ")
    assert [r.outcome for r in report.results[1:]] == ["registered"]
    assert _inbox(settings) == []


def _full_disk(self: BlobStore, data: bytes, *, durable: bool = True) -> str:
    raise OSError(errno.ENOSPC, "No space left on device", str(self.root))


def test_a_full_blob_store_leaves_the_message_unfiled_until_space_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    write_maildir([s for s in samples_for(settings) if s.name == GOOD], settings.mailbox.path)
    app = build_app(settings, clock=fixed_clock(NOW))
    monkeypatch.setattr(BlobStore, "put", _full_disk)
    for _ in range(2):  # still temporary the second time: never counted as an attempt
        with pytest.raises(MailboxError, match="no space left"):
            app.run_once()
    assert len(_inbox(settings)) == 1 and sent_mails(settings) == []
    with app.session() as s:
        (row,) = s.exec(select(InboundMessage)).all()
        assert row.outcome == "pending" and not row.filed and row.history is None
        assert s.exec(select(Registration)).all() == []
        (state,) = s.exec(select(MailboxState)).all()
        assert state.last_error and "no space left" in state.last_error  # what `mailbot status` shows
    monkeypatch.undo()
    report = app.run_once()
    assert [r.outcome for r in report.results] == ["registered"]
    assert _inbox(settings) == []
    acks = [m for m in sent_mails(settings) if m["X-Mailbot-Kind"] == "ack"]
    assert len(acks) == 2  # the sender and her colleague, once each
    assert app.run_once().results == [] and len(sent_mails(settings)) == 2
    with app.session() as s:
        assert len(s.exec(select(Registration)).all()) == 1
        assert s.exec(select(MailboxState)).one().last_error is None


def test_a_locked_database_is_temporary_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path)
    write_maildir([s for s in samples_for(settings) if s.name == GOOD], settings.mailbox.path)
    app = build_app(settings, clock=fixed_clock(NOW))

    def locked(*_a: object, **_k: object) -> None:
        raise OperationalError("INSERT …", {}, Exception("database is locked"))

    monkeypatch.setattr(ingest, "_decide", locked)
    with pytest.raises(MailboxError, match="locked"):
        app.run_once()
    assert len(_inbox(settings)) == 1
    monkeypatch.undo()
    assert [r.outcome for r in app.run_once().results] == ["registered"]


def test_an_internal_error_goes_to_review_after_the_attempts_and_reprocess_recovers_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    write_maildir([s for s in samples_for(settings) if s.name == GOOD], settings.mailbox.path)
    app = build_app(settings, clock=fixed_clock(NOW))
    real = ingest._decide
    calls: list[int] = []

    def broken(*_a: object, **_k: object) -> None:
        calls.append(1)
        raise RuntimeError("bug in a reader")

    monkeypatch.setattr(ingest, "_decide", broken)
    (result,) = app.run_once().results
    assert result.outcome == "needs_review" and "internal error" in result.reason
    assert len(calls) == ingest.MAX_ATTEMPTS and _inbox(settings) == []
    monkeypatch.setattr(ingest, "_decide", real)
    again = ingest.reprocess(app.ingest, result.inbound_id)
    assert again.outcome == "registered"
    with app.session() as s:
        row = s.exec(select(InboundMessage)).one()
        assert sum(e["action"] == "attempt_failed" for e in row.history_entries()) == ingest.MAX_ATTEMPTS


def test_a_real_full_tmpfs_blob_store(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount(8) to put the blob store on a 2 MB tmpfs")
    settings = make_settings(tmp_path)
    blobs = settings.state_dir / "blobs"
    blobs.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(blobs)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs not permitted here: {done.stderr.decode(errors='replace').strip()}")
    try:
        filler = blobs / "filler"
        with filler.open("wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError as e:
                assert e.errno == errno.ENOSPC
        write_maildir([s for s in samples_for(settings) if s.name == GOOD], settings.mailbox.path)
        app = build_app(settings, clock=fixed_clock(NOW))
        with pytest.raises(MailboxError, match="no space left"):
            app.run_once()
        assert len(_inbox(settings)) == 1 and sent_mails(settings) == []
        filler.unlink()
        assert [r.outcome for r in app.run_once().results] == ["registered"]
        assert _inbox(settings) == [] and len(sent_mails(settings)) == 2
    finally:
        subprocess.run(["umount", str(blobs)], check=False)


def test_a_real_full_tmpfs_under_the_database(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount(8) to put the database on a 4 MB tmpfs")
    settings = make_settings(tmp_path)
    dbdir = tmp_path / "db"
    dbdir.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(dbdir)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs not permitted here: {done.stderr.decode(errors='replace').strip()}")
    try:
        settings = settings.model_copy(update={"database_url": f"sqlite:///{dbdir / 'mailbot.db'}"})
        app = build_app(settings, clock=fixed_clock(NOW))  # migrated while there is room
        filler = dbdir / "filler"
        with filler.open("wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()
            except OSError as e:
                assert e.errno == errno.ENOSPC
        write_maildir([s for s in samples_for(settings) if s.name == GOOD], settings.mailbox.path)
        for _ in range(2):  # the service retries: nothing becomes final meanwhile
            with pytest.raises(MailboxError, match="disk is full|no space"):
                app.run_once()
            assert len(_inbox(settings)) == 1 and sent_mails(settings) == []
        filler.unlink()
        assert [r.outcome for r in app.run_once().results] == ["registered"]
        assert _inbox(settings) == [] and len(sent_mails(settings)) == 2
        with app.session() as s:
            assert len(s.exec(select(Registration)).all()) == 1
        app.engine.dispose()
    finally:
        subprocess.run(["umount", "-l", str(dbdir)], check=False)


# ------------------------------------------------------------------ two processes, one store

MESSAGES = 50


def _form_mail(settings: Settings, i: int) -> bytes:
    header = event_header(settings.event("opole-2016"))
    email_addr = f"osoba{i}@gmina{i}.example.pl"
    values = FilledValues(
        institution=Institution(f"Urząd Gminy Numer {i}", f"ul. Polna {i}, 46-0{i:02d} Wieś", "77 400 00 00",
                                f"sekretariat@gmina{i}.example.pl"),
        participants=[Participant(f"Osoba{i} Testowa", "Inspektor", f"601 000 {i:03d}", email_addr)],
        workshops=frozenset({"A"}),
        remarks=None,
        consents=Consents(data_processing=True, newsletter=False),
        place_date="Opole, 1 marca 2016",
    )
    msg = EmailMessage()
    msg["From"] = f"Osoba{i} Testowa <{email_addr}>"
    msg["To"] = settings.outbox.from_address
    msg["Subject"] = f"Zgłoszenie {i}"
    msg["Message-ID"] = f"<race{i}@gmina{i}.example.pl>"
    msg["Date"] = "Tue, 01 Mar 2016 10:00:00 +0100"
    msg.set_content("W załączeniu zgłoszenie.")
    maintype, subtype = DOCX_MIME.split("/")
    msg.add_attachment(make_docx(header, values), maintype=maintype, subtype=subtype, filename="zgloszenie.docx")
    return msg.as_bytes()


def _worker(settings: Settings) -> None:
    """One mailbot process: passes until the inbox is empty; a temporary error (the
    other process holding the database) is retried, anything else fails the test."""
    app = build_app(settings, clock=fixed_clock(NOW))
    temporary = 0
    for _ in range(200):
        try:
            app.run_once()
        except MailboxError:
            temporary += 1
            continue
        if not _inbox(settings):
            break
    print(f"worker {os.getpid()}: {temporary} temporary error(s)")


def test_two_processes_on_one_store_record_every_message_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    box = settings.mailbox.path
    for sub in ("tmp", "new", "cur"):
        (box / sub).mkdir(parents=True)
    for i in range(MESSAGES):
        (box / "new" / f"{1000 + i}.race{i}.test").write_bytes(_form_mail(settings, i))
    build_app(settings, clock=fixed_clock(NOW)).engine.dispose()  # migrate once, before the race
    ctx = multiprocessing.get_context("spawn")
    # Plain processes, not a Pool: a pool's workers are daemonic and may not start the
    # form reader's own worker process.
    workers = [ctx.Process(target=_worker, args=(settings,)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=600)
    assert [w.exitcode for w in workers] == [0, 0]  # a crash in a worker exits 1
    assert _inbox(settings) == []
    app = build_app(settings, clock=fixed_clock(NOW))
    with app.session() as s:
        rows = s.exec(select(InboundMessage)).all()
        assert len(rows) == MESSAGES and len({r.dedupe_key for r in rows}) == MESSAGES
        assert all(r.outcome == "registered" for r in rows), [(r.ref, r.outcome, r.reason) for r in rows]
        regs = s.exec(select(Registration)).all()
        assert len(regs) == MESSAGES
        assert sorted(r.source_inbound_id for r in regs) == sorted(r.id or 0 for r in rows)


# --- one read, one fsync per message (issue 13) ------------------------------------------


def test_a_message_is_read_once_and_its_raw_copy_alone_is_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    write_maildir([s for s in samples_for(settings) if s.name == GOOD], settings.mailbox.path)
    app = build_app(settings, clock=fixed_clock(NOW))
    reads: list[int] = []
    real_parse = ingest.parse_message
    monkeypatch.setattr(ingest, "parse_message", lambda raw, *a: reads.append(len(raw)) or real_parse(raw, *a))
    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    (raw,) = app.source.fetch(None)
    result = ingest.process(app.ingest, raw)  # as `review reprocess` and a lone message run it
    assert result.outcome == "registered"
    assert len(reads) == 1  # the dedupe key and the decision share one MIME walk
    blob_syncs = [p for p in synced if p.startswith(str(app.blobs.root))]
    assert len(blob_syncs) == 1  # the raw mail; the attachment is made again from it if lost
    with app.session() as s:
        row = s.exec(select(InboundMessage)).one()
    assert app.blobs.path_for(row.raw_sha256).exists()
    # In a pass the read-ahead child walks the MIME tree; the main process takes its walk.
    write_maildir([s for s in samples_for(settings) if s.name != GOOD][:1], settings.mailbox.path)
    reads.clear()
    assert [r.already_seen for r in app.run_once().results].count(False) == 1
    assert reads == []


def test_a_rename_a_power_cut_undid_is_redone_on_the_next_read(tmp_path: Path) -> None:
    """The raw mail is fsynced under its written-aside name; its final name is the
    hash of its content, so a lost rename is found again, never a lost mail."""
    blobs = BlobStore(tmp_path / "blobs")
    digest = blobs.put(b"raw mail")
    path = blobs.path_for(digest)
    path.rename(path.with_name(".tmp-x1y2"))
    (path.parent / ".tmp-other").write_bytes(b"half a write")
    assert blobs.exists(digest) and blobs.get(digest) == b"raw mail"
    assert path.read_bytes() == b"raw mail" and (path.parent / ".tmp-other").exists()
    with pytest.raises(FileNotFoundError):
        blobs.get("ab" * 32)


def test_a_blob_a_power_cut_left_short_is_written_again(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    digest = blobs.put(b"form.docx bytes", durable=False)
    blobs.path_for(digest).write_bytes(b"")  # what an un-fsynced write can leave
    assert blobs.put(b"form.docx bytes", durable=False) == digest
    assert blobs.get(digest) == b"form.docx bytes"


def test_a_code_another_process_took_at_the_same_moment_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unique index refuses a code committed by another process after this one
    probed it; the message's next attempt probes again and takes the next candidate."""
    settings = make_settings(tmp_path)
    (sample,) = [s for s in samples_for(settings) if s.name == GOOD]
    write_maildir([sample], settings.mailbox.path)
    app = build_app(settings, clock=fixed_clock(NOW))
    key = ingest.dedupe_key(sample.data, parse_message(sample.data).message_id)
    wanted = make_code("opole-2016", f"{key}:0")
    with app.session() as s:
        other = InboundMessage(dedupe_key="other", ref="other", raw_sha256="0" * 64, size=1, source="t")
        s.add(other)
        s.flush()
        assert other.id is not None
        s.add(Registration(code=wanted, event_key="opole-2016", source_inbound_id=other.id))
        s.commit()
    probes: list[object] = []
    real = registrations._CodesInUse.__contains__

    def racing(self: registrations._CodesInUse, code: object) -> bool:
        probes.append(code)
        return False if len(probes) == 1 else real(self, code)  # the first probe came too early

    monkeypatch.setattr(registrations._CodesInUse, "__contains__", racing)
    (result,) = app.run_once().results
    assert result.outcome == "registered"
    (code,) = result.registrations
    assert code != wanted and code == make_code("opole-2016", f"{key}:0", taken={wanted})
    with app.session() as s:
        row = s.exec(select(InboundMessage).where(InboundMessage.id == result.inbound_id)).one()
        assert [e["action"] for e in row.history_entries()] == ["attempt_failed"]
