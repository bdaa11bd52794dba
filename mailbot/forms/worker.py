"""Parse untrusted attachments in a child process with a deadline and a memory cap.

The readers guard against what they can foresee (zip bombs, entity expansion, page
counts); this guards against what they cannot: a native library (PDFium, an image
decoder) that loops or balloons on a crafted file. The daemon keeps going either way —
the child is killed and the file is reported ``unreadable`` with the reason.

Children come from a forkserver that has already imported the readers, so starting one
costs milliseconds, not an interpreter start-up. One child is kept warm between parses
(its caches filled, no fork per file) under the same deadline and memory cap: it is
replaced when a parse overruns, dies or runs out of memory, and after
:data:`_WARM_JOBS` parses, so nothing one file did lives on for long.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import resource
import threading
from collections.abc import Sequence
from pathlib import Path
from multiprocessing.context import ForkServerContext
from typing import Any

from mailbot.forms import parse_bytes, parse_file
from mailbot.forms.labels import Vocabulary
from mailbot.forms.model import EventRef, FormData, Limits
from mailbot.forms.sniff import sniff

log = logging.getLogger(__name__)

# Address space for one parse: generous for a 50-page PDF render, small enough that a
# decompression bomb fails in the child instead of swapping the server.
MEMORY_LIMIT_BYTES = 2 * 1024**3
_GRACE_SECONDS = 5.0
_OUT_OF_MEMORY = "document needs too much memory"
_READERS = ("worker", "extract", "docx", "odt", "pdf", "ocr", "image", "convert")
_context: ForkServerContext | None = None


def _ctx() -> ForkServerContext:
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        # Every reader is imported once in the forkserver, so a child neither pays for
        # the imports nor compiles modules under its memory cap.
        ctx.set_forkserver_preload([f"mailbot.forms.{name}" for name in _READERS])
        _context = ctx
    return _context


def _serve(conn: multiprocessing.connection.Connection, memory_limit: int) -> None:
    """The warm reader: parse what the parent sends until it hangs up. After running out
    of memory it answers and exits, so the next parse starts on a fresh heap."""
    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    except (ValueError, OSError):
        pass
    while True:
        try:
            data, filename, events, limits, vocabulary = conn.recv()
        except (EOFError, OSError):
            return
        exhausted = False
        result: Any
        try:
            result = parse_bytes(data, filename, events, limits, vocabulary=vocabulary)
        except MemoryError:
            exhausted = True
            result = FormData(file=filename, status="unreadable", format=None, reason=_OUT_OF_MEMORY)
        try:
            conn.send(result)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            return
        if exhausted:
            return


_WARM_JOBS = 200
"""Parses one warm reader serves before it is replaced."""


class _Reader:
    """A reader child and its pipe, kept between parses (the warm one) or used for one
    file. One caller at a time."""

    def __init__(self, memory_limit: int = MEMORY_LIMIT_BYTES) -> None:
        self.memory_limit = memory_limit
        self.lock = threading.Lock()
        self._proc: Any = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._jobs = 0

    def _start(self) -> multiprocessing.connection.Connection:
        if self._conn is None or self._proc is None or not self._proc.is_alive():
            self.stop()
            ctx = _ctx()
            parent, child = ctx.Pipe(duplex=True)
            proc = ctx.Process(target=_serve, args=(child, self.memory_limit), daemon=True)
            proc.start()
            child.close()
            self._proc, self._conn, self._jobs = proc, parent, 0
        assert self._conn is not None
        return self._conn

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(timeout=5)
        self._proc = self._conn = None

    def parse(self, job: tuple[Any, ...], filename: str, fmt: str | None, deadline: float) -> FormData:
        try:
            conn = self._start()
        except OSError as e:
            self.stop()
            log.error("cannot start a reader process for %s: %s", filename, e)
            return _failed(filename, fmt, f"cannot start a reader process: {e}")
        result: Any = None
        try:
            conn.send(job)  # a child that died taking the job in breaks the pipe
            if not conn.poll(deadline):
                self.stop()
                log.warning("parsing %s took longer than %.1f s; stopped", filename, deadline)
                return _failed(filename, fmt, f"reading the document took longer than {deadline:.1f} s")
            result = conn.recv()
        except (EOFError, OSError):
            pass
        if not isinstance(result, FormData):
            proc = self._proc
            self.stop()
            code = proc.exitcode if proc is not None else None
            log.warning("the reader process for %s died (exit code %s)", filename, code)
            return _failed(filename, fmt, f"the reader process died (exit code {code})")
        self._jobs += 1
        if self._jobs >= _WARM_JOBS or result.reason == _OUT_OF_MEMORY:
            self.stop()
        return result


_warm = _Reader()


def parse_isolated(
    data: bytes,
    filename: str,
    events: Sequence[EventRef],
    limits: Limits,
    *,
    vocabulary: Vocabulary | None = None,
    memory_limit: int | None = None,
    deadline: float | None = None,
) -> FormData:
    """``parse_bytes`` in a child process; never raises, never outlives its deadline
    (default: the readers' own ``limits.timeout_seconds`` plus a grace period) and
    never takes more than ``memory_limit`` (default ``MEMORY_LIMIT_BYTES``)."""
    if memory_limit is None:
        memory_limit = MEMORY_LIMIT_BYTES
    if deadline is None:
        deadline = limits.timeout_seconds + _GRACE_SECONDS
    fmt = sniff(data)
    job = (data, filename, tuple(events), limits, vocabulary)
    if memory_limit == MEMORY_LIMIT_BYTES and _warm.lock.acquire(blocking=False):
        try:
            return _warm.parse(job, filename, fmt, deadline)
        finally:
            _warm.lock.release()
    # Another thread is using the warm reader, or an unusual memory cap: a reader of its
    # own for this one file.
    once = _Reader(memory_limit)
    try:
        return once.parse(job, filename, fmt, deadline)
    finally:
        once.stop()


def parse_file_isolated(
    path: Path,
    events: Sequence[EventRef],
    limits: Limits,
    *,
    vocabulary: Vocabulary | None = None,
) -> FormData:
    """``parse_file`` with ``parse_isolated``'s deadline and memory cap (``mailbot
    parse``): a file too large or missing is refused here without reading it."""
    try:
        size = path.stat().st_size
    except OSError:
        size = None
    if size is None or size > limits.max_file_bytes:
        return parse_file(path, events, limits, vocabulary=vocabulary)
    try:
        data = path.read_bytes()
    except OSError as e:
        return _failed(path.name, None, f"cannot read file: {e.strerror or e}")
    return parse_isolated(data, path.name, events, limits, vocabulary=vocabulary)


def _failed(filename: str, fmt: str | None, reason: str) -> FormData:
    return FormData(file=filename, status="unreadable", format=fmt, reason=reason)
