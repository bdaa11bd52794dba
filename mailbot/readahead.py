"""Read the next message's forms while the current one is stored and answered.

Storing a registration and composing its reply take the main process most of a
message's time; the attachments' parsing happens in a reader child and used to wait
for it. With a backlog (a thousand forms after a weekend) a second reader child now
takes the next messages whole — MIME, every document within the message's budget —
so that when ingest asks :func:`mailbot.forms.worker.parse_isolated` for a document,
the answer is usually there.

It is only ever a head start: ingest still decides what to read and under which
budget, and anything the read-ahead did not finish, could not read, or read under other
settings is parsed the ordinary way. The child has the same memory cap as every reader,
and a message's read-ahead is stopped after the message's whole reading budget.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mailbot.forms import parse_bytes
from mailbot.forms.labels import Vocabulary
from mailbot.forms.model import EventRef, FormData, Limits
from mailbot.forms.sniff import sniff
from mailbot.forms.worker import _GRACE_SECONDS, _Reader
from mailbot.mailbox.base import RawMessage
from mailbot.mime import MimeLimits, ParsedMessage, parse_message

log = logging.getLogger(__name__)

_SCANS = frozenset({"image"})
"""Formats left to ingest: OCR is slow and counted against ``max_scans_per_message``."""

Key = tuple[str, str]
"""A document as ingest will ask for it: SHA-256 of its bytes, its file name."""


@dataclass(frozen=True)
class Settings:
    """What ingest reads with; a document read with anything else is not reused."""

    events: tuple[EventRef, ...]
    limits: Limits
    vocabulary: Vocabulary | None
    mime_limits: MimeLimits
    max_documents: int
    seconds: float


@dataclass(frozen=True)
class Read:
    """A message as the read-ahead child left it: its MIME structure, its documents."""

    message: ParsedMessage
    forms: dict[Key, FormData]


def read_message(raw: bytes, settings: Settings) -> Read:
    """In the reader child: ``raw`` parsed, and every distinct document of it ingest
    would read, read."""
    seen: set[str] = set()
    out: dict[Key, FormData] = {}
    message = parse_message(raw, settings.mime_limits)
    for att in message.attachments:
        if att.sha256 in seen or len(seen) >= settings.max_documents or sniff(att.data) in _SCANS:
            continue
        seen.add(att.sha256)
        form = parse_bytes(att.data, att.filename, settings.events, settings.limits, vocabulary=settings.vocabulary)
        out[(hashlib.sha256(att.data).hexdigest(), att.filename)] = form
    return Read(message, out)


_reader = _Reader()
"""The read-ahead child, kept warm across passes like the ordinary reader."""


class ReadAhead:
    """Feeds messages to the read-ahead child one at a time, ``depth`` ahead of ingest."""

    def __init__(self, settings: Settings, depth: int = 2) -> None:
        self.settings = settings
        self.depth = depth
        self._queued: deque[tuple[int, bytes]] = deque()
        """Messages handed to :meth:`over` the child has not started on: token, bytes."""
        self._in_flight: int | None = None
        self._sent_at = 0.0
        self._current: int | None = None
        self._done: dict[int, Read] = {}
        self.hits = self.misses = 0
        self.waited = 0.0

    def over(self, messages: Iterable[RawMessage]) -> Iterator[tuple[RawMessage, ParsedMessage | None]]:
        """``messages`` in order, each handed to the child before ingest reaches it, with
        its MIME structure as the child parsed it (None: ingest parses it itself)."""
        window: deque[tuple[int, RawMessage]] = deque()
        for token, raw in enumerate(messages):
            window.append((token, raw))
            self._queued.append((token, raw.data))
            self._pump()
            if len(window) > self.depth:
                yield self._begin(*window.popleft())
        while window:
            yield self._begin(*window.popleft())

    def _begin(self, token: int, raw: RawMessage) -> tuple[RawMessage, ParsedMessage | None]:
        """Ingest starts on ``token``: what was read for earlier messages is dropped,
        and a message the child has not started on is left to ingest; one it is reading
        is waited for (ingest would do the same work meanwhile)."""
        self._current = token
        for older in [t for t in self._done if t < token]:
            del self._done[older]
        while self._queued and self._queued[0][0] <= token:
            self._queued.popleft()
        if self._in_flight is not None and self._in_flight < token:
            self._finish(wait=False)
        self._wait_for_current()
        self._pump()
        read = self._done.get(token)
        return raw, None if read is None else read.message

    def _wait_for_current(self) -> None:
        if self._in_flight is not None and self._in_flight == self._current:
            started = time.monotonic()
            self._finish(wait=True)
            self.waited += time.monotonic() - started

    def lookup(
        self, data: bytes, filename: str, events: tuple[EventRef, ...], limits: Limits, vocabulary: Vocabulary | None
    ) -> FormData | None:
        """The current message's document as read ahead, or None: parse it yourself."""
        s = self.settings
        if events != s.events or limits != s.limits or vocabulary is not s.vocabulary:
            return None
        self._wait_for_current()
        read = self._done.get(self._current) if self._current is not None else None
        form = None if read is None else read.forms.pop((hashlib.sha256(data).hexdigest(), filename), None)
        if form is None:
            self.misses += 1
        else:
            self.hits += 1
        return form

    def _pump(self) -> None:
        """Give the child the next queued message if it is idle."""
        if self._in_flight is not None and not self._finish(wait=False):
            return
        if not self._queued:
            return
        token, data = self._queued.popleft()
        failure = _reader.submit((read_message, (data, self.settings), {}))
        if failure is not None:
            log.debug("read-ahead not available: %s", failure)
            return
        self._in_flight, self._sent_at = token, time.monotonic()

    def _finish(self, *, wait: bool) -> bool:
        """Collect the child's answer (at once, or waiting up to the message's budget);
        False when it is still working and ``wait`` is off."""
        if not wait and not _reader.ready():
            return False
        token, self._in_flight = self._in_flight, None
        left = self.settings.seconds + _GRACE_SECONDS - (time.monotonic() - self._sent_at)
        result, failure = _reader.collect(left, Read)
        if failure is not None:
            log.info("read-ahead of a message stopped (%s); its documents are read one by one", failure)
        elif token is not None and (self._current is None or token >= self._current):
            self._done[token] = result
        return True

    def close(self) -> None:
        """End of the pass: a message still being read ahead is abandoned with its child."""
        if self.hits or self.misses:
            log.info(
                "read ahead: %d of %d document(s) ready when needed, %.1f s waited for them",
                self.hits, self.hits + self.misses, self.waited,
            )
        if self._in_flight is not None:
            _reader.stop()
            self._in_flight = None
        self._queued.clear()
        self._done.clear()
