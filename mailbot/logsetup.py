"""The one logging setup of every command and of the service.

Each command used to call ``logging.basicConfig`` at the config's ``log_level``
(INFO), so everything the application narrates at INFO — "queued reminder → …",
Alembic's "Context impl SQLiteImpl" on every start — reached the terminal beside the
command's own output. Now a one-shot command logs WARNING and above unless asked
(``-v``: INFO, ``-vv``: DEBUG, ``-q``: errors only); the service logs at ``log_level``.
Alembic and APScheduler narrate routine work at INFO, so they are held at WARNING
unless DEBUG is asked for. Calling :func:`configure` again replaces mailbot's handler
instead of adding a second one (a reload, or several commands in one process).
"""

from __future__ import annotations

import logging
import os
from typing import TextIO

CHATTY = ("alembic", "apscheduler")
"""Libraries that log routine work at INFO: kept at WARNING unless DEBUG is asked for."""
_MARK = "_mailbot_handler"


class JournalFormatter(logging.Formatter):
    """One line per record, prefixed with its syslog priority (``<3>``) when stdout is
    the journal, which then files it at that level; no timestamp (journald adds one)."""

    _PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def __init__(self, journal: bool) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record).replace("\n", "\n  ")
        if self.journal:
            return f"<{self._PRIORITY.get(record.levelno, 6)}>{text}"
        return text


def level_for(verbose: int, quiet: bool, default: str = "WARNING") -> int:
    """The level ``-v``/``-q`` ask for, else ``default`` (a level name)."""
    if quiet:
        return logging.ERROR
    if verbose >= 2:
        return logging.DEBUG
    if verbose == 1:
        return logging.INFO
    return logging.getLevelNamesMapping().get(default.upper(), logging.WARNING)


def configure(level: int, stream: TextIO, *, journal: bool | None = None) -> None:
    """Log records at ``level`` and above to ``stream``, once each."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    setattr(handler, _MARK, True)
    if journal is None:
        journal = bool(os.environ.get("JOURNAL_STREAM"))
    handler.setFormatter(JournalFormatter(journal=journal))
    root.addHandler(handler)
    root.setLevel(level)
    for name in CHATTY:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else max(logging.WARNING, level))
