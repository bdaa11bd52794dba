"""MaildirSource: the inbox is the to-do list, filing is an atomic rename, repeats are harmless."""

from __future__ import annotations

import email
import mailbox
import os
from pathlib import Path

import pytest

from mailbot.errors import MailboxError
from mailbot.mailbox.maildir import DEFAULT_FOLDERS, MaildirSource

FOLDERS = {"processed": "Processed", "needs_review": "Needs-Review", "ignored": "Ignored"}


def deliver(path: Path, subject: str, *, mtime: float, seen: bool = False) -> str:
    """Deliver like an MDA would (stdlib Maildir), with a controlled delivery time."""
    box = mailbox.Maildir(path, create=True)
    msg = mailbox.MaildirMessage(
        f"Subject: {subject}\r\nMessage-ID: <{subject}@test>\r\n\r\nbody\r\n".encode()
    )
    if seen:
        msg.set_subdir("cur")
        msg.add_flag("S")
    key = box.add(msg)
    for sub in ("new", "cur"):
        for name in os.listdir(path / sub):
            if name.startswith(key):
                os.utime(path / sub / name, (mtime, mtime))
    return key


def subjects(source: MaildirSource) -> list[str]:
    return [str(email.message_from_bytes(m.data)["Subject"]) for m in source.fetch(None)]


def test_open_creates_the_maildir(tmp_path: Path) -> None:
    source = MaildirSource(tmp_path / "box", FOLDERS)
    source.open()
    assert all((tmp_path / "box" / sub).is_dir() for sub in ("new", "cur", "tmp"))
    assert list(source.fetch(None)) == []


def test_fetch_yields_inbox_in_delivery_order(tmp_path: Path) -> None:
    box = tmp_path / "box"
    k2 = deliver(box, "second", mtime=2_000, seen=True)
    k1 = deliver(box, "first", mtime=1_000)
    deliver(box, "third", mtime=3_000)
    sub = mailbox.Maildir(box).add_folder("Elsewhere")
    sub.add(b"Subject: not in the inbox\r\n\r\n")
    source = MaildirSource(box, FOLDERS)
    source.open()

    messages = list(source.fetch(None))

    assert subjects(source) == ["first", "second", "third"]
    assert [m.ref for m in messages[:2]] == [k1, k2]
    assert all(m.folder == "INBOX" and m.cursor is None for m in messages)
    assert messages[0].data == (box / "new" / k1).read_bytes()  # bytes untouched


def test_fetch_ignores_the_cursor(tmp_path: Path) -> None:
    from mailbot.mailbox.base import Cursor

    box = tmp_path / "box"
    deliver(box, "only", mtime=1_000)
    source = MaildirSource(box, FOLDERS)
    assert len(list(source.fetch(Cursor(uidvalidity=1, uid=99)))) == 1


def test_file_moves_into_maildirplusplus_folders(tmp_path: Path) -> None:
    box = tmp_path / "box"
    deliver(box, "a", mtime=1_000)
    deliver(box, "b", mtime=2_000, seen=True)
    deliver(box, "c", mtime=3_000)
    source = MaildirSource(box, FOLDERS)
    source.open()
    a, b, c = source.fetch(None)

    source.file(a, "processed")
    source.file(b, "needs_review")
    source.file(c, "ignored")

    assert list(source.fetch(None)) == []
    stdlib = mailbox.Maildir(box)
    assert sorted(stdlib.list_folders()) == ["Ignored", "Needs-Review", "Processed"]
    processed = stdlib.get_folder("Processed")
    assert [m["Subject"] for m in processed] == ["a"]
    review = stdlib.get_folder("Needs-Review")
    (msg,) = list(review)
    assert msg["Subject"] == "b" and "S" in msg.get_flags()  # flags survive the move
    assert (box / ".Processed" / "maildirfolder").exists()
    assert [m["Subject"] for m in stdlib.get_folder("Ignored")] == ["c"]


def test_file_is_idempotent(tmp_path: Path) -> None:
    box = tmp_path / "box"
    deliver(box, "a", mtime=1_000)
    source = MaildirSource(box, FOLDERS)
    (msg,) = source.fetch(None)

    source.file(msg, "processed")
    source.file(msg, "processed")  # crash-restart: already moved
    source.file(msg, "ignored")  # gone from the inbox: nothing to do, nothing deleted

    assert len(list((box / ".Processed" / "new").iterdir())) == 1
    assert not (box / ".Ignored" / "new").exists() or not list((box / ".Ignored" / "new").iterdir())


def test_default_folder_names() -> None:
    assert dict(DEFAULT_FOLDERS) == FOLDERS


@pytest.mark.parametrize("name", ["a/b", ".hidden", "", "INBOX", "trailing."])
def test_bad_folder_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(MailboxError):
        MaildirSource(tmp_path, {**FOLDERS, "ignored": name})


def test_refs_cannot_escape_the_maildir(tmp_path: Path) -> None:
    from mailbot.mailbox.base import RawMessage

    source = MaildirSource(tmp_path / "box", FOLDERS)
    source.open()
    with pytest.raises(MailboxError):
        source.file(RawMessage(ref="../../etc/passwd", data=b"", folder="INBOX"), "processed")
