"""Schema migrations on SQLite: an installation running 0001 keeps its data through the
upgrade, and the migrations build exactly the schema the models describe.

The daemon upgrades the database on every start, so 0002 runs on real registrations:
the people already registered must keep their seats (status 'confirmed') and count as
registered when their registration was created, which orders the waiting list and
decides which reminders they get. 0003 gives each existing participant the consents of
their registration's form, and leaves every message unresolved and nothing purged. 0004
leaves every existing address as it was: never in doubt. tests/test_postgres.py checks models against
migrations on PostgreSQL; this is the same check for the embedded default.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel, select

from mailbot.store.db import alembic_config, make_engine, upgrade
from mailbot.store.tables import InboundMessage, Participant, PurgedEvent, Registration

HEAD = "0009"
CREATED = dt.datetime(2016, 3, 30, 14, 15, 16, tzinfo=dt.UTC)
CREATED_SQL = "2016-03-30 14:15:16.000000"  # how SQLAlchemy stores it in SQLite (UTC)


def engine_at(tmp_path: Path, revision: str | None = None) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'state' / 'mailbot.db'}")
    if revision is None:
        upgrade(engine)
    else:
        command.upgrade(alembic_config(engine), revision)
    return engine


def revision_of(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def test_0002_keeps_existing_participants_seated_since_their_registration(tmp_path: Path) -> None:
    engine = engine_at(tmp_path, "0001")
    assert revision_of(engine) == ["0001"]
    assert "status" not in {c["name"] for c in sa.inspect(engine).get_columns("participant")}
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO inbound_message (id, dedupe_key, ref, raw_sha256, size, source, received_at,"
            " outcome, filed, times_seen) VALUES (1, 'k1', 'r1', :sha, 10, 'maildir', :at, 'registered', 1, 1)"
        ), {"sha": "0" * 64, "at": CREATED_SQL})
        conn.execute(sa.text(
            "INSERT INTO registration (id, code, event_key, status, workshops, consent_data_processing,"
            " consent_newsletter, sender_email, problems_json, source_inbound_id, version, created_at,"
            " updated_at) VALUES (1, 'OPO-7K3F2', 'opole-2016', 'confirmed', 'A', 1, 0,"
            " 'sekretariat@nysa.pl', '[]', 1, 1, :created, :updated)"
        ), {"created": CREATED_SQL, "updated": "2016-04-01 08:00:00.000000"})
        conn.execute(sa.text(
            "INSERT INTO participant (id, registration_id, position, full_name, email) VALUES"
            " (1, 1, 0, 'Anna Nowak', 'a@nysa.pl'), (2, 1, 1, 'Jan Kos', NULL)"
        ))
    engine.dispose()

    engine = engine_at(tmp_path)  # as the daemon does on its next start
    try:
        assert revision_of(engine) == [HEAD]
        tables = set(sa.inspect(engine).get_table_names())
        assert {"address_status", "event_state"} <= tables
        assert "cancelled_at" in {c["name"] for c in sa.inspect(engine).get_columns("registration")}
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT p.status, p.registered_at, p.status_changed_at, r.created_at FROM participant p"
                " JOIN registration r ON r.id = p.registration_id ORDER BY p.id"
            )).all()
        assert len(rows) == 2
        for status, registered_at, changed_at, created_at in rows:
            assert status == "confirmed"
            assert registered_at == created_at and changed_at == created_at

        with Session(engine, expire_on_commit=False) as session:
            reg = session.exec(select(Registration)).one()
            people = session.exec(select(Participant).order_by(Participant.id)).all()  # type: ignore[arg-type]
            assert reg.cancelled_at is None and reg.created_at == CREATED
            assert [(p.full_name, p.status, p.registered_at, p.status_changed_at) for p in people] == [
                ("Anna Nowak", "confirmed", CREATED, CREATED),
                ("Jan Kos", "confirmed", CREATED, CREATED),
            ]
            # New rows get the model defaults; the added columns are NOT NULL.
            session.add(Participant(registration_id=1, position=2, full_name="Ewa Lis"))
            session.commit()
        with engine.connect() as conn:
            nullable = {c["name"]: c["nullable"] for c in sa.inspect(conn).get_columns("participant")}
        assert not nullable["status"] and not nullable["registered_at"] and not nullable["status_changed_at"]
    finally:
        engine.dispose()


def test_an_empty_database_upgrades_to_head_and_again_without_change(tmp_path: Path) -> None:
    engine = engine_at(tmp_path)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        assert set(SQLModel.metadata.tables) | {"alembic_version"} == tables
        head = revision_of(engine)
        upgrade(engine)
        assert revision_of(engine) == head == [HEAD]
    finally:
        engine.dispose()


def test_the_migrations_build_exactly_what_the_models_describe(tmp_path: Path) -> None:
    engine = engine_at(tmp_path)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
    finally:
        engine.dispose()


def test_downgrading_0002_restores_the_0001_schema(tmp_path: Path) -> None:
    engine = engine_at(tmp_path)
    try:
        command.downgrade(alembic_config(engine), "0001")
        assert revision_of(engine) == ["0001"]
        tables = set(sa.inspect(engine).get_table_names())
        assert "address_status" not in tables and "event_state" not in tables
        columns = {c["name"] for c in sa.inspect(engine).get_columns("participant")}
        assert not {"status", "registered_at", "status_changed_at"} & columns
        command.upgrade(alembic_config(engine), "head")
        assert revision_of(engine) == [HEAD]
    finally:
        engine.dispose()


def _seed_0002(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO inbound_message (id, dedupe_key, ref, raw_sha256, size, source, received_at,"
            " outcome, reason, filed, times_seen) VALUES"
            " (1, 'k1', 'r1', :sha, 10, 'maildir', :at, 'registered', NULL, 1, 1),"
            " (2, 'k2', 'r2', :sha, 10, 'maildir', :at, 'needs_review', 'late registration', 1, 1)"
        ), {"sha": "0" * 64, "at": CREATED_SQL})
        conn.execute(sa.text(
            "INSERT INTO registration (id, code, event_key, status, workshops, consent_data_processing,"
            " consent_newsletter, sender_email, problems_json, source_inbound_id, version, created_at,"
            " updated_at) VALUES"
            " (1, 'OPO-7K3F2', 'opole-2016', 'confirmed', 'A', 1, 1, 'sekretariat@nysa.pl', '[]', 1, 1, :at, :at),"
            " (2, 'OPO-9QWE4', 'opole-2016', 'late', 'B', 1, 0, 'ug@brzeg.pl', '[]', 2, 1, :at, :at)"
        ), {"at": CREATED_SQL})
        conn.execute(sa.text(
            "INSERT INTO participant (id, registration_id, position, full_name, email, status, registered_at,"
            " status_changed_at) VALUES"
            " (1, 1, 0, 'Anna Nowak', 'a@nysa.pl', 'confirmed', :at, :at),"
            " (2, 1, 1, 'Jan Kos', NULL, 'waitlisted', :at, :at),"
            " (3, 2, 0, 'Ewa Lis', 'ewa@brzeg.pl', 'late', :at, :at)"
        ), {"at": CREATED_SQL})
        conn.execute(sa.text(
            "INSERT INTO outbound_mail (id, dedupe_key, kind, to_addr, subject, message_id, inbound_id,"
            " registration_id, raw, envelope_to, status, attempts, created_at) VALUES"
            " (1, 'first:OPO-7K3F2:a@nysa.pl', 'ack', 'a@nysa.pl', 's', '<m1@x>', 1, 1, :raw, 'a@nysa.pl',"
            " 'sent', 1, :at)"
        ), {"at": CREATED_SQL, "raw": b"raw"})


def test_0003_gives_participants_their_forms_consents_and_leaves_messages_unresolved(tmp_path: Path) -> None:
    engine = engine_at(tmp_path, "0002")
    _seed_0002(engine)
    engine.dispose()

    engine = engine_at(tmp_path)  # the daemon's next start
    try:
        assert revision_of(engine) == [HEAD]
        assert "purged_event" in set(sa.inspect(engine).get_table_names())
        with Session(engine, expire_on_commit=False) as session:
            people = session.exec(select(Participant).order_by(Participant.id)).all()  # type: ignore[arg-type]
            assert [(p.full_name, p.status, p.consent_data_processing, p.consent_newsletter) for p in people] == [
                ("Anna Nowak", "confirmed", True, True),
                ("Jan Kos", "waitlisted", True, True),
                ("Ewa Lis", "late", True, False),
            ]
            messages = session.exec(select(InboundMessage).order_by(InboundMessage.id)).all()  # type: ignore[arg-type]
            assert [(m.outcome, m.resolution, m.resolved_at, m.history, m.purged_at) for m in messages] == [
                ("registered", None, None, None, None),
                ("needs_review", None, None, None, None),
            ]
            assert all(r.purged_at is None for r in session.exec(select(Registration)))
            assert session.exec(select(PurgedEvent)).all() == []
            # New rows get the model defaults; the consent columns are NOT NULL.
            session.add(Participant(registration_id=2, position=1, full_name="Piotr Zając"))
            messages[1].add_history("reject", CREATED, note="telefonicznie")
            messages[1].resolution = "rejected"
            session.add(messages[1])
            session.commit()
            added = session.exec(select(Participant).where(Participant.full_name == "Piotr Zając")).one()
            assert (added.consent_data_processing, added.consent_newsletter) == (False, False)
            assert session.get(InboundMessage, 2).history_entries()[0]["note"] == "telefonicznie"  # type: ignore[union-attr]
        with engine.connect() as conn:
            nullable = {c["name"]: c["nullable"] for c in sa.inspect(conn).get_columns("participant")}
            assert not nullable["consent_data_processing"] and not nullable["consent_newsletter"]
            columns = {c["name"] for c in sa.inspect(conn).get_columns("inbound_message")}
            assert {"resolution", "resolved_at", "resolution_note", "history", "purged_at"} <= columns
            assert conn.execute(sa.text("SELECT raw FROM outbound_mail")).scalar() == b"raw"
    finally:
        engine.dispose()


def test_downgrading_0003_keeps_the_data_of_0002(tmp_path: Path) -> None:
    engine = engine_at(tmp_path, "0002")
    _seed_0002(engine)
    engine.dispose()
    engine = engine_at(tmp_path)
    try:
        command.downgrade(alembic_config(engine), "0002")
        assert revision_of(engine) == ["0002"]
        assert "purged_event" not in set(sa.inspect(engine).get_table_names())
        assert "consent_newsletter" not in {c["name"] for c in sa.inspect(engine).get_columns("participant")}
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM participant")).scalar() == 3
            assert conn.execute(sa.text("SELECT reason FROM inbound_message WHERE id = 2")).scalar() == (
                "late registration"
            )
        upgrade(engine)
        assert revision_of(engine) == [HEAD]
    finally:
        engine.dispose()


def test_0004_leaves_existing_addresses_undoubted_and_downgrades_keeping_them(tmp_path: Path) -> None:
    engine = engine_at(tmp_path, "0003")
    _seed_0002(engine)
    engine.dispose()
    engine = engine_at(tmp_path)
    try:
        assert revision_of(engine) == [HEAD]
        with Session(engine) as session:
            people = session.exec(select(Participant).order_by(Participant.id)).all()  # type: ignore[arg-type]
            assert people and all(p.email_check is None and p.email_suggestion is None for p in people)
            people[0].email_check = "unconfirmed"
            people[0].email_as_read = people[0].email
            session.add(people[0])
            session.commit()
        command.downgrade(alembic_config(engine), "0003")
        assert "email_check" not in {c["name"] for c in sa.inspect(engine).get_columns("participant")}
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM participant")).scalar() == len(people)
        upgrade(engine)
        assert revision_of(engine) == [HEAD]
    finally:
        engine.dispose()


def test_the_head_read_from_the_files_is_alembics_and_a_current_database_skips_alembic(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    from mailbot.store.db import head_revision

    engine = engine_at(tmp_path)
    try:
        assert head_revision() == ScriptDirectory.from_config(alembic_config(engine)).get_current_head() == HEAD
    finally:
        engine.dispose()
    # A start on a current database does not load Alembic at all (a fifth of a second).
    probe = (
        "import sys; from mailbot.store.db import make_engine, upgrade; "
        f"upgrade(make_engine('sqlite:///{tmp_path / 'state' / 'mailbot.db'}')); "
        "print('alembic' in sys.modules)"
    )
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"
