"""One service per SQLite store: a second `mailbot run` refuses to start.

SQLite has no way to tell two processes apart, and two services on one file would
race for the same messages and mails. The service therefore holds an exclusive
``flock`` on a file beside the database for as long as it runs; the kernel drops it
when the process dies, however it dies, so a killed service never blocks its
restart. One-shot commands (``remind``, ``run --once``, ``review``) do not take it:
they stay safe beside the service through the database's own claims. PostgreSQL
stores are not locked here.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url

from mailbot.errors import AlreadyRunning

__all__ = ["RunLock", "hold", "holder"]


class RunLock:
    """An held lock; ``release`` (or the process's end) lets another service start."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def lock_path(database_url: str) -> Path | None:
    """The lock file of a SQLite store (``mailbot.db`` → ``mailbot.db.run-lock``)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    db = Path(url.database)
    return db.with_name(db.name + ".run-lock")


def hold(database_url: str) -> RunLock | None:
    """Take the service lock of a SQLite store; ``None`` for other databases.

    Raises ``AlreadyRunning`` naming the process that holds it."""
    path = lock_path(database_url)
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise AlreadyRunning(
            f"another `mailbot run` (pid {holder}) already serves the database {path.with_suffix('')}; "
            "two services on one SQLite store would race each other. Stop the other one first "
            "(systemctl status mailbot), or give this one its own database_url."
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return RunLock(path, fd)


def holder(database_url: str) -> str | None:
    """Who serves a SQLite store now, e.g. ``pid 4242``; None when no service runs.
    Only reads: the lock file's pid, alive and a mailbot (pids are reused)."""
    path = lock_path(database_url)
    if path is None:
        return None
    try:
        pid_text = path.read_text(encoding="ascii", errors="replace").strip()
        cmdline = Path(f"/proc/{int(pid_text)}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return f"pid {pid_text}" if b"mailbot" in cmdline else None
