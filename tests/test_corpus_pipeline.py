"""Every file of the robustness corpus goes through the whole pipeline to a recorded outcome.

E-mails are delivered as they are; documents are attached to an ordinary message. None
is a registration form, so none may be registered, and nothing may crash or hang. The
corpus is ``tests/data/corpus`` plus ``../shared/corpus`` when present.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlmodel import select

from mailbot.app import build_app, fixed_clock
from mailbot.config import load_settings
from mailbot.store.tables import InboundMessage, Registration

try:
    from tests.shared import HAS_CORPUS, corpus_files
except ImportError:
    from shared import HAS_CORPUS, corpus_files  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2016, 4, 1, 9, 0, tzinfo=dt.UTC)


def all_corpus_files() -> list[Path]:
    files = corpus_files()
    assert len(files) >= (119 if HAS_CORPUS else 80), "corpus incomplete"
    return files


def as_message(path: Path) -> bytes:
    if path.suffix == ".eml":
        return path.read_bytes()
    msg = EmailMessage()
    msg["From"] = "Jan Testowy <jan@gmina.example.pl>"
    msg["To"] = "zgloszenia@partnerstwa.example.pl"
    msg["Subject"] = f"Zgłoszenie ({path.name})"
    msg["Message-ID"] = f"<{path.stem}@corpus.example.pl>"
    msg.set_content("W załączeniu zgłoszenie.")
    msg.add_attachment(path.read_bytes(), maintype="application", subtype="octet-stream", filename=path.name)
    return msg.as_bytes()


@pytest.mark.slow
def test_every_corpus_file_ends_in_a_known_state_with_a_reason(tmp_path: Path) -> None:
    base = load_settings(REPO / "config" / "demo.toml")
    settings = base.model_copy(
        update={
            "state_dir": tmp_path / "state",
            "database_url": f"sqlite:///{tmp_path / 'state' / 'db.sqlite'}",
            "mailbox": base.mailbox.model_copy(update={"path": tmp_path / "inbox"}),
            "outbox": base.outbox.model_copy(update={"path": tmp_path / "outbox", "max_replies_per_address_per_day": 1000}),
        }
    )
    files = all_corpus_files()
    inbox = settings.mailbox.path
    for sub in ("new", "cur", "tmp"):
        (inbox / sub).mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(files):
        (inbox / "new" / f"{i:04d}.corpus").write_bytes(as_message(path))

    app = build_app(settings, clock=fixed_clock(NOW))
    report = app.run_once()

    assert len(report.results) == len(files)
    assert report.filing_errors == []
    with app.session() as s:
        rows = s.exec(select(InboundMessage)).all()
        assert all(r.outcome in ("registered", "needs_review", "ignored") for r in rows)
        assert all(r.reason for r in rows), [r.subject for r in rows if not r.reason]
        assert all(r.filed for r in rows)
        assert not any(r.reason and r.reason.startswith("internal error") for r in rows), [
            r.reason for r in rows if r.reason and r.reason.startswith("internal error")
        ]
        assert s.exec(select(Registration)).all() == []
    assert list((inbox / "new").iterdir()) == []
