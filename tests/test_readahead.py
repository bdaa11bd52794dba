"""Reading the next messages' forms ahead (mailbot.readahead): a head start that never
changes what ingest reads."""

from __future__ import annotations

from pathlib import Path

from mailbot.app import build_app, fixed_clock
from mailbot.forms.model import Limits
from mailbot.forms.worker import parse_isolated, reading_ahead
from mailbot.mailbox.base import RawMessage
from mailbot.mime import parse_message
from mailbot.readahead import ReadAhead, Settings
from tests.test_pipeline import NOW, make_settings, samples_for


def _setup(tmp_path: Path) -> tuple[Settings, list[RawMessage]]:
    app = build_app(make_settings(tmp_path), clock=fixed_clock(NOW))
    ctx = app.ingest
    settings = Settings(
        events=ctx.events,
        limits=ctx.form_limits,
        vocabulary=ctx.vocabulary,
        mime_limits=ctx.mime_limits,
        max_documents=app.settings.limits.max_documents_per_message,
        seconds=app.settings.limits.message_parse_seconds,
    )
    raws = [RawMessage(ref=s.name, data=s.data, folder="INBOX") for s in samples_for(app.settings)]
    return settings, raws


def _documents(raw: RawMessage) -> list[tuple[bytes, str]]:
    return [(a.data, a.filename) for a in parse_message(raw.data).attachments]


def test_the_forms_read_ahead_are_the_forms_read_one_by_one(tmp_path: Path) -> None:
    settings, raws = _setup(tmp_path)
    assert sum(len(_documents(r)) for r in raws) >= 3
    direct = [
        [parse_isolated(d, n, settings.events, settings.limits, vocabulary=settings.vocabulary) for d, n in _documents(r)]
        for r in raws
    ]
    ahead = ReadAhead(settings)
    seen: list[str] = []
    read: list[list[object]] = []
    messages: list[object] = []
    with reading_ahead(ahead):
        for raw, parsed in ahead.over(raws):
            seen.append(raw.ref)
            messages.append(parsed)
            read.append(
                [parse_isolated(d, n, settings.events, settings.limits, vocabulary=settings.vocabulary)
                 for d, n in _documents(raw)]
            )
        hits = ahead.hits
    assert seen == [r.ref for r in raws]  # every message, in order
    assert read == direct
    assert hits > 0
    # The MIME structure handed to ingest is the one ingest would parse itself.
    assert any(m is not None for m in messages)
    assert all(m is None or m == parse_message(r.data, settings.mime_limits) for m, r in zip(messages, raws))


def test_a_document_asked_for_with_other_limits_is_read_again(tmp_path: Path) -> None:
    settings, raws = _setup(tmp_path)
    other = Limits(max_file_bytes=settings.limits.max_file_bytes - 1)
    ahead = ReadAhead(settings)
    with reading_ahead(ahead):
        for raw, _parsed in ahead.over(raws):
            for data, name in _documents(raw):
                parse_isolated(data, name, settings.events, other, vocabulary=settings.vocabulary)
        assert ahead.hits == 0 and ahead.misses == 0  # never even looked up: other settings


def test_a_pass_that_ends_early_abandons_the_read_ahead_and_the_next_one_works(tmp_path: Path) -> None:
    settings, raws = _setup(tmp_path)
    ahead = ReadAhead(settings)
    with reading_ahead(ahead):
        next(iter(ahead.over(raws)))  # a stop between two messages
    again = ReadAhead(settings)
    with reading_ahead(again):
        assert [r.ref for r, _ in again.over(raws)] == [r.ref for r in raws]
    outside = _documents(raws[0])[0]
    # Outside a pass nothing is answered from a read-ahead.
    assert parse_isolated(*outside, settings.events, settings.limits).file == outside[1]
