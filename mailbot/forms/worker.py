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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from multiprocessing.context import ForkServerContext
from typing import TYPE_CHECKING, Any

from mailbot.forms import parse_bytes, parse_file
from mailbot.forms.labels import Vocabulary
from mailbot.forms.model import EventRef, FormData, Limits
from mailbot.forms.sniff import sniff

if TYPE_CHECKING:
    from mailbot.readahead import ReadAhead

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
    """The warm reader: run what the parent sends (a module-level function and its
    arguments, by default ``parse_bytes``) until it hangs up. After running out of
    memory it answers and exits, so the next job starts on a fresh heap."""
    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    except (ValueError, OSError):
        pass
    while True:
        try:
            function, args, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        exhausted = False
        result: Any
        try:
            result = function(*args, **kwargs)
        except MemoryError:
            exhausted = True
            result = FormData(file=str(args[1]), status="unreadable", format=None, reason=_OUT_OF_MEMORY)
        try:
            conn.send(result)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            return
        if exhausted:
            return


_WARM_JOBS = 200
"""Jobs one warm reader serves before it is replaced."""

Job = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]
"""What a reader child runs: a module-level function (pickled by name), its positional
and keyword arguments."""


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

    def submit(self, job: Job) -> str | None:
        """Hand ``job`` to the child (started if need be); the reason when that failed."""
        try:
            conn = self._start()
        except OSError as e:
            self.stop()
            return f"cannot start a reader process: {e}"
        try:
            conn.send(job)  # a child that died taking the job in breaks the pipe
        except OSError as e:
            self.stop()
            return f"the reader process died ({e.__class__.__name__})"
        return None

    def ready(self) -> bool:
        """Has the child answered the job it was given?"""
        try:
            return self._conn is not None and self._conn.poll(0)
        except OSError:
            return True  # collect() reports the death

    def collect(self, deadline: float, expected: type) -> tuple[Any, str | None]:
        """The answer to the submitted job within ``deadline`` seconds, or None and the
        reason (overrun, death); the child is replaced in those cases and, as a matter
        of hygiene, after :data:`_WARM_JOBS` jobs."""
        result: Any = None
        conn = self._conn
        try:
            if conn is None:
                raise EOFError
            if not conn.poll(max(deadline, 0.0)):
                self.stop()
                return None, f"took longer than {deadline:.1f} s"
            result = conn.recv()
        except (EOFError, OSError):
            pass
        if not isinstance(result, expected):
            proc = self._proc
            self.stop()
            code = proc.exitcode if proc is not None else None
            return None, f"the reader process died (exit code {code})"
        self._jobs += 1
        if self._jobs >= _WARM_JOBS or getattr(result, "reason", None) == _OUT_OF_MEMORY:
            self.stop()
        return result, None

    def parse(self, job: Job, filename: str, fmt: str | None, deadline: float) -> FormData:
        failure = self.submit(job)
        if failure is not None:
            log.error("cannot read %s: %s", filename, failure)
            return _failed(filename, fmt, failure)
        result, failure = self.collect(deadline, FormData)
        if failure is not None:
            log.warning("reading %s: %s; stopped", filename, failure)
            if failure.startswith("took longer"):
                return _failed(filename, fmt, f"reading the document took longer than {deadline:.1f} s")
            return _failed(filename, fmt, failure)
        assert isinstance(result, FormData)
        return result


_warm = _Reader()
_ahead: ReadAhead | None = None
"""Forms already read ahead for the message being stored (see :mod:`mailbot.readahead`)."""


@contextmanager
def reading_ahead(ahead: ReadAhead) -> Iterator[ReadAhead]:
    """Let :func:`parse_isolated` answer from ``ahead`` while the block runs."""
    global _ahead
    _ahead = ahead
    try:
        yield ahead
    finally:
        _ahead = None
        ahead.close()


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
    if memory_limit == MEMORY_LIMIT_BYTES and _ahead is not None:
        known = _ahead.lookup(data, filename, tuple(events), limits, vocabulary)
        if known is not None:
            return known
    fmt = sniff(data)
    job: Job = (parse_bytes, (data, filename, tuple(events), limits), {"vocabulary": vocabulary})
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
