"""mailbot on PostgreSQL: the same migrations, pipeline and export as on SQLite.

A real PostgreSQL server (tests/pg.py) on loopback, one fresh database per test, reached
as an unprivileged role with a password over TCP — only the database URL differs from
the SQLite runs in tests/test_pipeline.py and tests/test_cli.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel, col, select

from mailbot.app import App, build_app, event_header, fixed_clock
from mailbot.config import Settings
from mailbot.forms.blank import DOCX_MIME, FilledValues, make_docx
from mailbot.forms.model import Consents, Institution
from mailbot.forms.model import Participant as FormParticipant
from mailbot.mailbox.base import Cursor, RawMessage
from mailbot.mailbox.maildir import MaildirSource
from mailbot.samples import write_maildir
from mailbot.store import db
from mailbot.store.tables import (
    InboundMessage,
    MailboxState,
    OutboundMail,
    Participant,
    Registration,
    RegistrationVersion,
)

try:  # tests/ is a package in some layouts and a plain rootdir-inserted path in others
    from tests import conversation, pg
    from tests import test_conversation as conversation_tests
    from tests.test_pipeline import (
        EXPECTED_MAILS, EXPECTED_OUTCOMES, EXPECTED_REGISTRATIONS, NOW, make_settings, ref_of, samples_for, sent_mails,
    )
except ImportError:
    import conversation  # type: ignore[no-redef]
    import pg  # type: ignore[no-redef]
    import test_conversation as conversation_tests  # type: ignore[no-redef]
    from test_pipeline import (  # type: ignore[no-redef]
        EXPECTED_MAILS, EXPECTED_OUTCOMES, EXPECTED_REGISTRATIONS, NOW, make_settings, ref_of, samples_for, sent_mails,
    )

# The PostgreSQL fixtures (tests/pg.py), bound here so pytest finds them for this module.
postgres_server = pg.postgres_server
postgres_url = pg.postgres_url

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "config" / "demo.toml"
TABLES = {
    "mailbox_state",
    "inbound_message",
    "attachment",
    "registration",
    "participant",
    "registration_version",
    "outbound_mail",
    "address_status",
    "event_state",
    "purged_event",
}


def test_the_url_is_postgresql_as_an_ordinary_role(postgres_url: str) -> None:
    engine = db.make_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.dialect.name == "postgresql"
            assert conn.execute(sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar() is False
    finally:
        engine.dispose()


def test_migrations_apply_and_are_idempotent(postgres_url: str) -> None:
    engine = db.make_engine(postgres_url)
    try:
        db.upgrade(engine)
        tables = set(sa.inspect(engine).get_table_names())
        assert TABLES <= tables and "alembic_version" in tables
        with engine.connect() as conn:
            head = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        db.upgrade(engine)  # second run: nothing to do, nothing breaks
        restarted = db.make_engine(postgres_url)  # a fresh engine (a restarted daemon) too
        try:
            db.upgrade(restarted)
        finally:
            restarted.dispose()
        assert set(sa.inspect(engine).get_table_names()) == tables
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == head
            assert len(head) == 1
            # The migrated schema is exactly what the models describe (types included).
            assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
            columns = {
                (table, column): data_type
                for table, column, data_type in conn.execute(
                    sa.text(
                        "SELECT table_name, column_name, data_type FROM information_schema.columns"
                        " WHERE table_schema = current_schema()"
                    )
                )
            }
        assert columns["registration", "created_at"] == "timestamp with time zone"
        assert columns["outbound_mail", "raw"] == "bytea"
    finally:
        engine.dispose()


def with_database(tmp_path: Path, url: str) -> Settings:
    return make_settings(tmp_path).model_copy(update={"database_url": url})


@pytest.fixture
def pg_demo(tmp_path: Path, postgres_url: str) -> Iterator[tuple[App, Settings, dict[str, str]]]:
    """The demo's sample mailbox run once through the whole pipeline, stored in PostgreSQL."""
    settings = with_database(tmp_path, postgres_url)
    samples = samples_for(settings)
    write_maildir(samples, settings.mailbox.path)
    app = build_app(settings, clock=fixed_clock(NOW))
    try:
        assert app.engine.dialect.name == "postgresql"
        report = app.run_once()
        by_ref: dict[str, str] = {}
        for r in report.results:
            by_ref.setdefault(r.ref, r.outcome)
        yield app, settings, {s.name: by_ref[ref_of(s)] for s in samples}
    finally:
        app.engine.dispose()


def test_the_pipeline_gives_the_same_results_as_on_sqlite(
    tmp_path: Path, pg_demo: tuple[App, Settings, dict[str, str]]
) -> None:
    app, settings, outcomes = pg_demo
    assert outcomes == EXPECTED_OUTCOMES
    with app.session() as s:
        regs = {r.institution_name: r for r in s.exec(select(Registration))}
        assert len(regs) == EXPECTED_REGISTRATIONS
        brzezina = regs["Urząd Miejski w Brzezinie Opolskiej"]
        people = s.exec(select(Participant).where(Participant.registration_id == brzezina.id)).all()
        assert [(p.full_name, p.phone) for p in people] == [
            ("Katarzyna Wróbel", "+48774132025"),
            ("Tomasz Lis", "+48601442318"),
        ]
        lipowiec = regs["Urząd Gminy Lipowiec Opolski"]
        assert lipowiec.status == "confirmed" and lipowiec.version == 2
        (history,) = s.exec(
            select(RegistrationVersion).where(RegistrationVersion.registration_id == lipowiec.id)
        ).all()
        assert '"status": "incomplete"' in history.snapshot_json
        assert lipowiec.created_at.utcoffset() is not None  # timezone-aware on the way back
        assert len(s.exec(select(OutboundMail)).all()) == EXPECTED_MAILS
    assert len(sent_mails(settings)) == EXPECTED_MAILS
    assert not list(tmp_path.rglob("*.db"))  # nothing went to a SQLite file by mistake


def test_a_second_pass_changes_nothing_and_redelivered_messages_are_recognised(
    pg_demo: tuple[App, Settings, dict[str, str]],
) -> None:
    app, settings, _ = pg_demo
    report = app.run_once()
    assert report.results == [] and len(sent_mails(settings)) == EXPECTED_MAILS

    inbox = settings.mailbox.path
    for folder in (".Processed", ".Needs-Review", ".Ignored"):
        for sub in ("new", "cur"):
            for p in (inbox / folder / sub).iterdir():
                p.rename(inbox / "new" / p.name)
    report = app.run_once()
    assert len(report.results) == 12 and all(r.already_seen for r in report.results)
    with app.session() as s:
        assert len(s.exec(select(Registration)).all()) == EXPECTED_REGISTRATIONS
        assert len(s.exec(select(OutboundMail)).all()) == EXPECTED_MAILS
    assert len(sent_mails(settings)) == EXPECTED_MAILS


def test_export_json_reads_registrations_from_postgresql(
    pg_demo: tuple[App, Settings, dict[str, str]], postgres_url: str
) -> None:
    app, _, _ = pg_demo
    app.engine.dispose()
    proc = subprocess.run(
        [sys.executable, "-m", "mailbot", "export", "--config", str(DEMO), "--db", postgres_url, "--format", "json"],
        check=False, capture_output=True, text=True, timeout=120, cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(REPO)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    # The Lublin form (an event already held) whose mail names Opole is registered for Opole.
    assert len(rows) == EXPECTED_REGISTRATIONS and {r["event"] for r in rows} == {"opole-2016"}
    first = next(r for r in rows if r["event"] == "opole-2016")
    assert first["institution"]["name"] == "Urząd Miejski w Brzezinie Opolskiej"
    assert first["status"] == "confirmed" and first["source_message_id"].endswith("example.pl")
    assert [p["full_name"] for p in first["participants"]] == ["Katarzyna Wróbel", "Tomasz Lis"]
    corrected = next(r for r in rows if r["institution"]["name"] == "Urząd Gminy Lipowiec Opolski")
    assert corrected["version"] == 2


# -- values SQLite accepts silently -----------------------------------------------------
# SQLite neither bounds INTEGER to 32 bits nor enforces VARCHAR(n); PostgreSQL does both.
# These cases run on both databases: whatever SQLite does, PostgreSQL must do too.


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'state' / 'mailbot.db'}"


# IMAP UIDs and UIDVALIDITY are unsigned 32-bit numbers (RFC 3501/9051 nz-number, up to
# 4294967295), so values above 2**31 - 1 are valid.
BIG_UIDVALIDITY = 4_294_967_295
BIG_UID = 3_000_000_000


class HighUidSource(MaildirSource):
    """A Maildir that reports IMAP-style positions with UIDVALIDITY/UIDs above 2**31."""

    def fetch(self, after: Cursor | None) -> Iterator[RawMessage]:
        for i, raw in enumerate(super().fetch(after)):
            yield RawMessage(raw.ref, raw.data, raw.folder, Cursor(BIG_UIDVALIDITY, BIG_UID + i))


def test_full_32_bit_imap_uids_and_uidvalidity_are_stored(tmp_path: Path, any_db_url: str) -> None:
    settings = with_database(tmp_path, any_db_url)
    write_maildir(samples_for(settings)[:2], settings.mailbox.path)
    source = HighUidSource(settings.mailbox.path)
    app = build_app(settings, clock=fixed_clock(NOW), source=source)
    try:
        report = app.run_once()
        outcomes = [r.outcome for r in report.results]
        assert outcomes == ["registered", "registered"], [r.reason[:300] for r in report.results]
        with app.session() as s:
            state = s.get(MailboxState, source.name)
            assert state is not None and state.last_error is None
            assert (state.uidvalidity, state.last_uid) == (BIG_UIDVALIDITY, BIG_UID + 1)
            rows = s.exec(select(InboundMessage).order_by(col(InboundMessage.uid))).all()
            assert [(r.uidvalidity, r.uid) for r in rows] == [
                (BIG_UIDVALIDITY, BIG_UID),
                (BIG_UIDVALIDITY, BIG_UID + 1),
            ]
    finally:
        app.engine.dispose()


# What people really type: a phone field used for a sentence (kept verbatim, as it is not
# a number) and a long remark. Longer than the columns' VARCHAR(50) and VARCHAR(2000).
LONG_PHONE = "sekretariat czynny w dni robocze, proszę dzwonić w godzinach pracy urzędu"
LONG_REMARKS = "Prosimy o posiłki wegetariańskie dla obu uczestników. " * 40


def long_values_mail(settings: Settings) -> bytes:
    values = FilledValues(
        institution=Institution(
            "Urząd Gminy Testowo", "ul. Długa 1, 46-000 Testowo", LONG_PHONE, "ug@testowo.example.pl"
        ),
        participants=[FormParticipant("Jan Kowalski", "Inspektor", "601 442 318", "jan@testowo.example.pl")],
        workshops=frozenset({"A"}),
        remarks=LONG_REMARKS,
        consents=Consents(data_processing=True, newsletter=False),
        place_date="Testowo, 31.03.2016",
    )
    msg = EmailMessage()
    msg["From"] = "Jan Kowalski <jan@testowo.example.pl>"
    msg["To"] = settings.outbox.from_address
    msg["Subject"] = "Zgłoszenie – UG Testowo"
    msg["Message-ID"] = "<long-values@testowo.example.pl>"
    msg["Date"] = "Thu, 31 Mar 2016 10:00:00 +0200"
    msg.set_content("Dzień dobry,\nw załączeniu zgłoszenie.\n")
    maintype, subtype = DOCX_MIME.split("/")
    msg.add_attachment(
        make_docx(event_header(settings.event("opole-2016")), values),
        maintype=maintype,
        subtype=subtype,
        filename="zgloszenie.docx",
    )
    return msg.as_bytes()


def test_a_form_with_values_longer_than_the_columns_is_still_registered(
    tmp_path: Path, any_db_url: str
) -> None:
    settings = with_database(tmp_path, any_db_url)
    inbox = settings.mailbox.path
    for sub in ("new", "cur", "tmp"):
        (inbox / sub).mkdir(parents=True, exist_ok=True)
    (inbox / "new" / "1.msg").write_bytes(long_values_mail(settings))
    app = build_app(settings, clock=fixed_clock(NOW))
    try:
        (result,) = app.run_once().results
        assert result.outcome == "registered", result.reason[:300]
        with app.session() as s:
            (reg,) = s.exec(select(Registration)).all()
            # Truncated or kept whole is the code's choice; losing the registration is not.
            assert reg.institution_phone and reg.institution_phone[:30] == LONG_PHONE[:30]
            assert reg.remarks and reg.remarks[:200] == LONG_REMARKS[:200]
    finally:
        app.engine.dispose()


@pytest.mark.parametrize(
    "scenario",
    [
        conversation_tests.test_capacity_waiting_list_withdrawal_and_promotion,
        conversation_tests.test_reminders_go_once_to_seated_people_registered_before_their_moment,
        conversation_tests.test_a_changed_event_is_announced_once_with_the_same_calendar_uid,
        conversation_tests.test_a_corrected_form_is_acknowledged_with_what_changed,
    ],
    ids=lambda f: f.__name__.removeprefix("test_"),
)
def test_the_conversation_with_participants_on_postgresql(
    scenario: Callable[[Path], None], tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seats, the waiting list, withdrawals, reminders and change notices query the
    database in ways the demo pipeline does not; the same conversations, on PostgreSQL."""
    monkeypatch.setattr(conversation, "DATABASE_URL", postgres_url)
    scenario(tmp_path)
    assert not list(tmp_path.rglob("*.db"))  # nothing went to a SQLite file by mistake
