"""A local Maildir as a mailbox source, for sites that deliver to disk and for tests.

Filing is a plain ``rename(2)`` inside one Maildir++ tree, so a message is always in
exactly one place: a crash can never lose it or leave two copies behind.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from mailbot.errors import MailboxError
from mailbot.mailbox.base import Cursor, Outcome, RawMessage

log = logging.getLogger(__name__)

OUTCOMES: tuple[Outcome, ...] = ("processed", "needs_review", "ignored")

DEFAULT_FOLDERS: Mapping[Outcome, str] = {
    "processed": "Processed",
    "needs_review": "Needs-Review",
    "ignored": "Ignored",
}
"""Folder names used when the configuration does not name its own."""

_SUBDIRS = ("new", "cur", "tmp")


def validate_folders(folders: Mapping[Outcome, str], *, inbox: str = "INBOX") -> dict[Outcome, str]:
    """Check the outcome→folder mapping once, so filing never fails halfway through a run."""
    missing = [o for o in OUTCOMES if not folders.get(o)]
    if missing:
        raise MailboxError(f"no target folder configured for outcome(s): {', '.join(missing)}")
    result: dict[Outcome, str] = {o: folders[o] for o in OUTCOMES}
    for outcome, name in result.items():
        if name == inbox or name.upper() == "INBOX":
            raise MailboxError(
                f"the folder for {outcome!r} is the inbox {inbox!r}; filed messages would be "
                "fetched again forever - configure a different folder"
            )
    return result


def ensure_maildir(path: Path) -> None:
    """Create ``new``/``cur``/``tmp`` so a fresh install works without manual setup."""
    try:
        for sub in _SUBDIRS:
            (path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise MailboxError(
            f"cannot create Maildir {path}: {e}; check the path and permissions"
        ) from e


def maildir_key(filename: str) -> str:
    """The unique part of a Maildir file name, without the ``:2,FLAGS`` info suffix."""
    for sep in (":", "!"):
        if sep in filename:
            return filename.split(sep, 1)[0]
    return filename


def _fsync_dir(path: Path) -> None:
    """Persist a rename: on ext4 and friends the directory entry needs its own fsync."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class MaildirSource:
    """Reads the inbox of a Maildir and files messages into Maildir++ subfolders.

    ``fetch`` ignores cursors: a message stays in the inbox until it is filed, so the
    inbox itself is the to-do list.
    """

    def __init__(self, path: Path, folders: Mapping[Outcome, str] = DEFAULT_FOLDERS) -> None:
        self.path = Path(path)
        self.folders = validate_folders(folders)
        for name in self.folders.values():
            if "/" in name or name.startswith(".") or name.endswith(".") or ".." in name:
                raise MailboxError(
                    f"invalid Maildir++ folder name {name!r}: use names like 'Processed' or "
                    "'Mailbot.Processed' (no '/', no leading or trailing dot)"
                )
        self.name = f"maildir://{self.path}"
        self._seen: dict[str, tuple[str, str]] = {}
        """Where the last fetch found each key (subdirectory, file name): filing a
        backlog then renames directly instead of listing the inbox once per message."""

    def open(self) -> None:
        ensure_maildir(self.path)

    def close(self) -> None:
        pass

    def fetch(self, after: Cursor | None) -> Iterator[RawMessage]:
        del after  # the inbox only ever holds unfiled mail
        self._seen = {}
        entries: list[tuple[int, str, Path]] = []
        for sub in ("new", "cur"):
            directory = self.path / sub
            try:
                names = os.listdir(directory)
            except FileNotFoundError:
                continue
            except OSError as e:
                raise MailboxError(f"cannot list {directory}: {e}") from e
            for filename in names:
                if filename.startswith("."):
                    continue
                file_path = directory / filename
                try:
                    st = file_path.stat()
                except FileNotFoundError:
                    continue
                entries.append((st.st_mtime_ns, maildir_key(filename), file_path))
                self._seen[maildir_key(filename)] = (sub, filename)
        entries.sort(key=lambda e: (e[0], e[1]))
        for _, key, file_path in entries:
            try:
                data = file_path.read_bytes()
            except FileNotFoundError:
                log.debug("Maildir message %s vanished before it was read", key)
                continue
            except OSError as e:
                raise MailboxError(f"cannot read {file_path}: {e}") from e
            yield RawMessage(ref=key, data=data, folder="INBOX")

    def _candidates(self, key: str) -> Iterator[tuple[str, str]]:
        """Where the message with ``key`` may be: where the fetch saw it, then wherever
        a listing of the inbox finds it now."""
        known = self._seen.pop(key, None)
        if known is not None:
            yield known
        for sub in ("new", "cur"):
            try:
                names = os.listdir(self.path / sub)
            except FileNotFoundError:
                continue
            yield from ((sub, filename) for filename in names if maildir_key(filename) == key)

    def file(self, message: RawMessage, outcome: Outcome) -> None:
        key = message.ref
        if not key or "/" in key or key.startswith("."):
            raise MailboxError(f"not a Maildir key: {key!r}")
        folder = self.folders[outcome]
        target = self.path / f".{folder}"
        ensure_maildir(target)
        marker = target / "maildirfolder"
        if not marker.exists():
            marker.touch(mode=0o600)
        for sub, filename in self._candidates(key):
            source_dir = self.path / sub
            try:
                os.rename(source_dir / filename, target / sub / filename)
            except FileNotFoundError:
                continue  # renamed (flags changed) or filed concurrently: look further
            except OSError as e:
                raise MailboxError(f"cannot move {filename} to {target}: {e}") from e
            _fsync_dir(target / sub)
            _fsync_dir(source_dir)
            log.debug("Filed Maildir message %s into %s", key, folder)
            return
        log.debug("Maildir message %s is no longer in the inbox; nothing to file", key)
