"""ImapSource against a real Dovecot (TLS verified with the fixture's private CA)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mailbot.errors import MailboxError
from mailbot.mailbox.base import Cursor
from mailbot.mailbox.imap import ImapSettings, ImapSource, MailboxSetupError, connect_with_backoff

pytestmark = pytest.mark.integration

FOLDERS = {"processed": "Processed", "needs_review": "Needs-Review", "ignored": "Ignored"}


def mail(n: int) -> bytes:
    return (
        f"From: sender{n}@example.org\r\nTo: registration@example.org\r\n"
        f"Subject: registration {n}\r\nMessage-ID: <reg{n}@example.org>\r\n\r\nform {n}\r\n"
    ).encode()


class Sleeps:
    """A fake sleep that records the backoff instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def source(dovecot: Any) -> Iterator[ImapSource]:
    src = ImapSource(dovecot.settings(folders=FOLDERS), sleep=Sleeps(), base_delay=0.01)
    src.open()
    yield src
    src.close()


def subjects(messages: list[Any]) -> list[str]:
    return [m.data.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode() for m in messages]


def test_fetch_all_then_only_newer(dovecot: Any, source: ImapSource) -> None:
    uids = [dovecot.append("INBOX", mail(n)) for n in (1, 2, 3)]

    first = list(source.fetch(None))

    assert [m.data for m in first] == [mail(1), mail(2), mail(3)]
    assert [m.ref for m in first] == [str(u) for u in uids]
    assert {m.folder for m in first} == {"INBOX"}
    validity = dovecot.uidvalidity("INBOX")
    assert [m.cursor for m in first] == [Cursor(validity, u) for u in uids]

    high_water = first[-1].cursor
    assert list(source.fetch(high_water)) == []  # "UID n+1:*" still matches UID n: filtered
    dovecot.append("INBOX", mail(4))
    newer = list(source.fetch(high_water))
    assert subjects(newer) == ["registration 4"]
    assert list(source.fetch(first[0].cursor)) == first[1:] + newer


def test_fetch_does_not_mark_mail_as_read(dovecot: Any, source: ImapSource) -> None:
    dovecot.append("INBOX", mail(1))
    assert len(list(source.fetch(None))) == 1
    (stored,) = dovecot.list_folder("INBOX")
    assert not stored.seen


def test_uidvalidity_change_yields_everything_again(
    dovecot: Any, caplog: pytest.LogCaptureFixture
) -> None:
    folder = "Registrations"
    for n in (1, 2):
        dovecot.append(folder, mail(n))
    src = ImapSource(dovecot.settings(inbox=folder, folders=FOLDERS), sleep=Sleeps())
    src.open()
    try:
        before = list(src.fetch(None))
        cursor = before[-1].cursor
        assert cursor is not None and list(src.fetch(cursor)) == []

        # A cursor from another UIDVALIDITY era: everything again, with a warning.
        stale = Cursor(cursor.uidvalidity - 1, cursor.uid)
        assert [m.data for m in src.fetch(stale)] == [mail(1), mail(2)]
        assert "UIDVALIDITY" in caplog.text

        # The real thing: the folder is deleted and recreated, UIDs start over.
        dovecot.delete_folder(folder)
        for n in (1, 2, 3):
            dovecot.append(folder, mail(n))
        assert dovecot.uidvalidity(folder) != cursor.uidvalidity
        again = list(src.fetch(cursor))
        assert subjects(again) == ["registration 1", "registration 2", "registration 3"]
        assert all(m.cursor and m.cursor.uidvalidity != cursor.uidvalidity for m in again)
    finally:
        src.close()


def test_fetch_in_batches(dovecot: Any) -> None:
    for n in range(5):
        dovecot.append("INBOX", mail(n))
    src = ImapSource(dovecot.settings(batch_size=2, folders=FOLDERS))
    src.open()
    try:
        client = src._client
        calls: list[list[int]] = []
        real_fetch = client.fetch

        def spy(uids: list[int], *args: Any, **kwargs: Any) -> Any:
            calls.append(list(uids))
            return real_fetch(uids, *args, **kwargs)

        client.fetch = spy
        messages = list(src.fetch(None))
    finally:
        src.close()
    assert len(messages) == 5
    assert [len(c) for c in calls] == [2, 2, 1]


def test_open_creates_target_folders(dovecot: Any, source: ImapSource) -> None:
    assert {"Processed", "Needs-Review", "Ignored"} <= set(dovecot.folders())


def test_file_moves_and_empties_the_inbox(dovecot: Any, source: ImapSource) -> None:
    for n in (1, 2, 3):
        dovecot.append("INBOX", mail(n))
    m1, m2, m3 = source.fetch(None)

    source.file(m1, "processed")
    source.file(m2, "needs_review")
    source.file(m3, "ignored")

    assert dovecot.list_folder("INBOX") == []
    assert [m.data for m in dovecot.list_folder("Processed")] == [mail(1)]
    assert [m.data for m in dovecot.list_folder("Needs-Review")] == [mail(2)]
    assert [m.data for m in dovecot.list_folder("Ignored")] == [mail(3)]
    assert not dovecot.list_folder("Processed")[0].seen
    assert list(source.fetch(None)) == []


def test_a_batch_is_filed_with_one_move_per_target_folder(dovecot: Any, source: ImapSource) -> None:
    for n in range(1, 7):
        dovecot.append("INBOX", mail(n))
    fetched = list(source.fetch(None))
    outcomes = ["processed", "needs_review", "processed", "ignored", "processed", "needs_review"]
    moves: list[tuple[list[int], str]] = []
    client = source._connection()
    real_move = client.move
    client.move = lambda uids, target: (moves.append((list(uids), target)), real_move(uids, target))[1]
    gone = fetched[4]
    source.file(gone, "processed")  # already filed (say by a pass that died before its commit)
    moves.clear()

    errors = source.file_many(list(zip(fetched, outcomes, strict=True)))  # type: ignore[arg-type]

    assert errors == [None] * 6  # a UID no longer there is no error (RFC 3501 6.4.8)
    assert sorted(target for _, target in moves) == ["Ignored", "Needs-Review", "Processed"]
    assert dovecot.list_folder("INBOX") == []
    assert sorted(m.data for m in dovecot.list_folder("Processed")) == sorted([mail(1), mail(3), mail(5)])
    assert sorted(m.data for m in dovecot.list_folder("Needs-Review")) == sorted([mail(2), mail(6)])
    assert [m.data for m in dovecot.list_folder("Ignored")] == [mail(4)]


def test_a_batch_that_cannot_be_moved_reports_each_message(dovecot: Any, source: ImapSource) -> None:
    for n in (1, 2):
        dovecot.append("INBOX", mail(n))
    m1, m2 = source.fetch(None)
    client = source._connection()

    def refuse(uids: Any, target: str) -> None:
        raise MailboxError("[UNAVAILABLE] server shutting down")

    client.move = refuse
    source._last_reply = 0.0  # a quiet connection: no second attempt on a fresh one is made
    errors = source.file_many([(m1, "processed"), (m2, "processed")])
    assert [type(e) for e in errors] == [MailboxError, MailboxError]
    assert len(dovecot.list_folder("INBOX")) == 2


def test_filing_a_vanished_uid_is_a_noop(dovecot: Any, source: ImapSource) -> None:
    dovecot.append("INBOX", mail(1))
    (msg,) = source.fetch(None)
    source.file(msg, "processed")

    source.file(msg, "processed")  # again, e.g. after a crash before the DB commit
    source.file(msg, "ignored")

    assert [m.data for m in dovecot.list_folder("Processed")] == [mail(1)]
    assert dovecot.list_folder("Ignored") == []


def test_file_without_move_uses_uid_expunge_of_that_uid_only(
    dovecot: Any, source: ImapSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    dovecot.append("INBOX", mail(1))
    other = dovecot.append("INBOX", mail(2))
    (msg, _) = source.fetch(None)
    # Another client flagged a message \Deleted without expunging it yet.
    dovecot.set_flags("INBOX", other, [b"\\Deleted"])
    client = source._client
    real = client.has_capability
    monkeypatch.setattr(client, "has_capability", lambda cap: cap.upper() != "MOVE" and real(cap))

    source.file(msg, "processed")

    assert [m.data for m in dovecot.list_folder("Processed")] == [mail(1)]
    remaining = dovecot.list_folder("INBOX")
    assert [m.uid for m in remaining] == [other]  # a plain EXPUNGE would have removed it
    assert b"\\Deleted" in remaining[0].flags
    assert list(source.fetch(None)) == []  # \Deleted messages are not handed out


def test_file_recreates_a_deleted_target_folder(dovecot: Any, source: ImapSource) -> None:
    dovecot.append("INBOX", mail(1))
    (msg,) = source.fetch(None)
    dovecot.delete_folder("Processed")
    source.file(msg, "processed")
    assert [m.data for m in dovecot.list_folder("Processed")] == [mail(1)]


def test_wrong_password_is_a_clear_setup_error(dovecot: Any) -> None:
    sleeps = Sleeps()
    src = ImapSource(dovecot.settings(password="not-the-password"), sleep=sleeps)
    with pytest.raises(MailboxSetupError) as info:
        src.open()
    text = str(info.value)
    assert "check the username and password" in text and dovecot.user in text
    assert "not-the-password" not in text
    assert sleeps.calls == []  # credentials are not retried: lockout rules


def test_tls_is_verified(dovecot: Any) -> None:
    src = ImapSource(dovecot.settings(ca_file=None), sleep=Sleeps())
    with pytest.raises(MailboxError, match="certificate") as info:
        src.open()
    assert "ca_file" in str(info.value)


def test_starttls(dovecot: Any) -> None:
    dovecot.append("INBOX", mail(1))
    src = ImapSource(dovecot.settings(port=dovecot.starttls_port, security="starttls"))
    src.open()
    try:
        assert [m.data for m in src.fetch(None)] == [mail(1)]
    finally:
        src.close()


def test_plaintext_on_loopback(dovecot: Any) -> None:
    dovecot.append("INBOX", mail(1))
    src = ImapSource(dovecot.settings(port=dovecot.starttls_port, security="none"))
    src.open()
    try:
        assert [m.data for m in src.fetch(None)] == [mail(1)]
    finally:
        src.close()


def test_ssl_against_a_plain_port_explains_itself(dovecot: Any) -> None:
    src = ImapSource(dovecot.settings(port=dovecot.starttls_port), max_attempts=1)
    with pytest.raises(MailboxError, match="starttls"):
        src.open()


def test_plaintext_only_for_loopback() -> None:
    with pytest.raises(MailboxError, match="only allowed for localhost"):
        ImapSettings(host="imap.example.org", username="u", password="p", security="none")
    ImapSettings(host="127.0.0.1", username="u", password="p", security="none")
    ImapSettings(host="localhost", username="u", password="p", security="none")


def test_password_never_in_repr_or_name(dovecot: Any) -> None:
    settings = dovecot.settings()
    src = ImapSource(settings)
    assert dovecot.password not in repr(settings)
    assert dovecot.password not in src.name
    assert src.name == f"imaps://{dovecot.user}@127.0.0.1:{dovecot.port}/INBOX"


def test_reconnects_after_server_restart(dovecot: Any, source: ImapSource) -> None:
    dovecot.append("INBOX", mail(1))
    (first,) = source.fetch(None)

    dovecot.restart()
    dovecot.append("INBOX", mail(2))

    newer = list(source.fetch(first.cursor))
    assert subjects(newer) == ["registration 2"]
    source.file(newer[0], "processed")
    assert [m.data for m in dovecot.list_folder("Processed")] == [mail(2)]

    dovecot.restart()  # between fetch and file, e.g. while a form was being parsed
    source.file(first, "ignored")
    assert [m.data for m in dovecot.list_folder("Ignored")] == [mail(1)]


def test_server_down_then_up_is_bridged_by_backoff(dovecot: Any) -> None:
    dovecot.server.stop()
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            dovecot.server.start()

    src = ImapSource(dovecot.settings(), sleep=sleep, base_delay=0.5)
    src.open()
    src.close()
    assert sleeps == [0.5, 1.0]


def test_server_down_gives_mailbox_error(dovecot: Any) -> None:
    dovecot.server.stop()
    src = ImapSource(dovecot.settings(), sleep=Sleeps(), max_attempts=3)
    with pytest.raises(MailboxError, match="cannot connect"):
        src.open()


def test_connect_with_backoff_doubles_and_caps() -> None:
    sleeps = Sleeps()
    attempts = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 5:
            raise MailboxError("down")
        return "up"

    assert (
        connect_with_backoff(flaky, max_attempts=5, base_delay=1, max_delay=3, sleep=sleeps) == "up"
    )
    assert sleeps.calls == [1, 2, 3, 3]

    def always_down() -> str:
        raise MailboxError("still down")

    sleeps.calls.clear()
    with pytest.raises(MailboxError, match="still down"):
        connect_with_backoff(always_down, max_attempts=3, sleep=sleeps)
    assert sleeps.calls == [1.0, 2.0]

    def refused() -> str:
        raise MailboxSetupError("bad password")

    sleeps.calls.clear()
    with pytest.raises(MailboxSetupError):
        connect_with_backoff(refused, max_attempts=3, sleep=sleeps)
    assert sleeps.calls == []


def test_mail_that_arrived_while_the_last_pass_was_busy_is_not_left_for_the_idle_renewal(
    dovecot: Any, source: ImapSource
) -> None:
    dovecot.append("INBOX", mail(1))
    (first,) = list(source.fetch(None))
    dovecot.append("INBOX", mail(2))  # lands while the first one is being answered and filed
    source.file(first, "processed")  # its MOVE's response carries the EXISTS nobody reads
    # IDLE alone would wait out its whole timeout here: the server told us already.
    assert source.idle_wait(30) is True
    assert subjects(list(source.fetch(None))) == ["registration 2"]


def test_idle_reports_new_mail(dovecot: Any, source: ImapSource) -> None:
    list(source.fetch(None))
    assert source.idle_wait(0.3) is False

    timer = threading.Timer(0.3, dovecot.append, ("INBOX", mail(1)))
    timer.start()
    started = time.monotonic()
    try:
        assert source.idle_wait(10) is True
    finally:
        timer.join()
    assert time.monotonic() - started < 5
    # The connection is usable after IDLE (DONE was sent).
    assert subjects(list(source.fetch(None))) == ["registration 1"]
