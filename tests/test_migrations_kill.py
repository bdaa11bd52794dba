"""A migration killed at any point leaves a database the next start upgrades (issue 11).

``upgrade`` runs in a child process that SIGKILLs itself right after its N-th write
statement (CREATE/ALTER/DROP/INSERT/UPDATE/DELETE, the version row included), for
every N until an upgrade runs to the end; then a plain ``upgrade`` in another process
must succeed and give exactly the schema of a clean upgrade. The kill switch is a
SQLAlchemy ``after_cursor_execute`` listener installed by the driver below (test code
only). To stay fast the driver imports mailbot once and forks a child per N.

Covered: the whole chain from an empty database, and each later migration on its own
(from the previous revision; together every write of the chain), on SQLite and on
PostgreSQL, plus the whole chain from nothing after every 5th write; the real ``mailbot db
upgrade`` command killed through ``sitecustomize``; and a database half-made by the old
statement-by-statement behaviour (tables, empty ``alembic_version``) starting again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event

from mailbot.store import db

try:  # tests/ is a package in some layouts and a plain rootdir-inserted path in others
    from tests import pg
except ImportError:
    import pg  # type: ignore[no-redef]

postgres_server = pg.postgres_server
postgres_url = pg.postgres_url

REPO = Path(__file__).resolve().parents[1]
WRITES = ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE")
PG_STRIDE = 1  # every write on PostgreSQL too: about 15 s with its server start

# Shared by the driver and the in-process tests: the schema as comparable JSON, straight
# from the catalogue (the DDL text on SQLite), cheap enough to take after every kill.
SNAPSHOT = """
import sqlalchemy as sa

PG_CATALOGUE = [
    "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable,"
    " column_default FROM information_schema.columns WHERE table_schema = 'public'",
    "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE connamespace = 'public'::regnamespace",
]

def snapshot(engine):
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            queries = ["SELECT type, name, tbl_name, sql FROM sqlite_master"]
        else:
            queries = PG_CATALOGUE
        catalogue = [sorted([str(v) for v in row] for row in conn.exec_driver_sql(q)) for q in queries]
        version = sorted(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    return {"catalogue": catalogue, "version": version}
"""

DRIVER = SNAPSHOT + """
import json, os, shutil, signal, sys
from sqlalchemy import Engine, event
from mailbot.store import db

WRITES = %r
spec = json.loads(sys.argv[1])
sqlite = spec["url"].startswith("sqlite")

def url_for(step, n):
    return spec["url"].replace("{case}", f"{step}-{n}")

def fresh(step, n, start):
    \"\"\"The database at ``start``: SQLite copies a template file, PostgreSQL (one database
    for all cases) drops everything and upgrades.\"\"\"
    url = url_for(step, n)
    if sqlite:
        if start is not None:
            template = url_for(step, "template")
            if not os.path.exists(template.removeprefix("sqlite:///")):
                engine = db.make_engine(template)
                db.upgrade(engine, start)
                engine.dispose()  # the last connection checkpoints the WAL into the file
            shutil.copyfile(template.removeprefix("sqlite:///"), url.removeprefix("sqlite:///"))
        return url
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    if start is not None:
        db.upgrade(engine, start)
    engine.dispose()
    return url

def killed_at(url, n, target):
    pid = os.fork()
    if pid == 0:
        seen = 0
        def kill_after(conn, cursor, statement, params, context, many):
            nonlocal seen
            if statement.lstrip().split(None, 1)[0].upper() in WRITES:
                seen += 1
                if seen == n:
                    os.kill(os.getpid(), signal.SIGKILL)
        event.listen(Engine, "after_cursor_execute", kill_after)
        try:
            db.upgrade(db.make_engine(url), target)
        finally:
            os._exit(3)  # ran to the end: fewer than n writes
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL

def upgraded(url, target):
    engine = db.make_engine(url)
    try:
        db.upgrade(engine, target)  # the next start
        return snapshot(engine)
    except Exception as e:  # reported per kill point, compared (and shown) by the test
        return {"error": repr(e)[:500]}
    finally:
        engine.dispose()

results = []
for step, (start, target, stride) in enumerate(spec["steps"]):
    result = {"clean": upgraded(fresh(step, "clean", start), target), "runs": []}
    n = 1
    while n <= 400:
        url = fresh(step, n, start)
        killed = killed_at(url, n, target)
        result["runs"].append({"n": n, "killed": killed, "schema": upgraded(url, target)})
        if not killed:
            break
        n += stride
    results.append(result)
print(json.dumps(results))
""" % (WRITES,)


def revisions() -> list[str]:
    """The chain from base to head, so new migrations (0005, …) are covered unasked."""
    script = ScriptDirectory.from_config(db.alembic_config(sa.create_engine("sqlite://")))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def steps(stride: int) -> list[tuple[str | None, str, int]]:
    """(start, target, stride): each migration from the revision before it, killed after
    every ``stride``-th write (stride 1: every write of the chain); then the first
    start's real case, the whole chain in one transaction from nothing, every 5th."""
    chain = revisions()
    pairs = [(None, chain[0])] + list(zip(chain[:-1], chain[1:], strict=True))
    return [(a, b, stride) for a, b in pairs] + [(None, chain[-1], 5)]


def run_driver(tmp_path: Path, url: str, steps: list[tuple[str | None, str, int]]) -> list[Any]:
    """All steps in one process (imports once; a fork per kill)."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    spec = {"url": url, "steps": steps}
    proc = subprocess.run(
        [sys.executable, str(script), json.dumps(spec)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    result: list[Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


def check_every_kill(result: dict[str, Any], start: str | None, target: str) -> None:
    runs = result["runs"]
    assert runs and runs[-1]["killed"] is False, "the upgrade never ran to its end"
    assert all(r["killed"] for r in runs[:-1])
    assert len(runs) >= 2, f"no write statement from {start} to {target}?"
    clean = result["clean"]
    assert clean["version"] == [target]
    for run in runs:
        assert run["schema"] == clean, f"killed after write {run['n']} ({start} -> {target})"


SQLITE_STEPS = steps(1)
PG_STEPS = steps(PG_STRIDE)


@pytest.fixture(scope="module")
def sqlite_results(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    tmp = tmp_path_factory.mktemp("kill-sqlite")
    return run_driver(tmp, f"sqlite:///{tmp / 'db-{case}.sqlite'}", SQLITE_STEPS)


@pytest.fixture(scope="module")
def pg_results(tmp_path_factory: pytest.TempPathFactory, postgres_server: pg.PostgresServer) -> list[Any]:
    postgres_server.start()
    url = postgres_server.create_database("kill")
    return run_driver(tmp_path_factory.mktemp("kill-pg"), url, PG_STEPS)


def step_id(step: tuple[str | None, str, int]) -> str:
    start, target, stride = step
    return f"{start or 'empty'}-{target}" + ("" if stride == 1 else f"-every{stride}")


@pytest.mark.parametrize("index", range(len(SQLITE_STEPS)), ids=[step_id(s) for s in SQLITE_STEPS])
def test_sqlite_upgrade_killed_after_any_write_is_finished_by_the_next(
    sqlite_results: list[Any], index: int
) -> None:
    start, target, _ = SQLITE_STEPS[index]
    check_every_kill(sqlite_results[index], start, target)


@pytest.mark.parametrize("index", range(len(PG_STEPS)), ids=[step_id(s) for s in PG_STEPS])
def test_postgres_upgrade_killed_after_any_write_is_finished_by_the_next(
    pg_results: list[Any], index: int
) -> None:
    start, target, _ = PG_STEPS[index]
    check_every_kill(pg_results[index], start, target)


def test_mailbot_db_upgrade_killed_mid_chain_then_started_again(tmp_path: Path) -> None:
    """The real command, killed through sitecustomize after its 30th write (in 0002)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent(f"""
        import os, signal
        from sqlalchemy import Engine, event
        seen = 0
        def kill_after(conn, cursor, statement, params, context, many):
            global seen
            if statement.lstrip().split(None, 1)[0].upper() in {WRITES!r}:
                seen += 1
                if seen == 30:
                    os.kill(os.getpid(), signal.SIGKILL)
        event.listen(Engine, "after_cursor_execute", kill_after)
    """))
    url = f"sqlite:///{tmp_path / 'state' / 'mailbot.db'}"
    mailbot = [
        str(Path(sys.executable).with_name("mailbot")), "db", "upgrade",
        "--config", str(REPO / "config" / "demo.toml"), "--db", url,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(hook)}
    killed = subprocess.run(mailbot, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert killed.returncode == -9, killed.stderr
    again = subprocess.run(mailbot, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert schema_of(url) == clean_schema(tmp_path)


# -- a database half-made by mailbot before issue 11 ------------------------------------


class Interrupted(Exception):
    pass


def schema_of(url: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(SNAPSHOT, namespace)  # noqa: S102  (our own constant: one snapshot for all tests)
    engine = db.make_engine(url)
    try:
        result: dict[str, Any] = namespace["snapshot"](engine)
        return result
    finally:
        engine.dispose()


def clean_schema(tmp_path: Path) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path / 'clean.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    return schema_of(url)


@pytest.fixture
def count_writes() -> Iterator[list[str]]:
    seen: list[str] = []

    def listener(*args: Any) -> None:
        statement: str = args[2]
        if statement.lstrip().split(None, 1)[0].upper() in WRITES:
            seen.append(statement)

    event.listen(Engine, "after_cursor_execute", listener)
    yield seen
    event.remove(Engine, "after_cursor_execute", listener)


def old_first_start(engine: Engine, writes: int) -> None:
    """The pre-issue-11 upgrade: pysqlite's legacy mode, interrupted after ``writes``."""

    def interrupt(*args: Any) -> None:
        if args[2].lstrip().split(None, 1)[0].upper() in WRITES:
            done.append(1)
            if len(done) == writes:
                raise Interrupted

    done: list[int] = []
    event.listen(engine, "after_cursor_execute", interrupt)
    try:
        with engine.begin() as conn:  # what db.upgrade did: DDL committed one by one
            cfg = db.alembic_config(engine)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001")
    except Interrupted:
        pass
    finally:
        event.remove(engine, "after_cursor_execute", interrupt)


def initial_writes(tmp_path: Path, count_writes: list[str]) -> int:
    """Write statements of 0001 before its version row, on an empty database."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'count.db'}")
    db.upgrade(engine, "0001")
    engine.dispose()
    return sum(1 for s in count_writes if "alembic_version" not in s)


@pytest.mark.parametrize("part", [0.1, 0.5, 1.0])
def test_a_schema_half_made_by_the_old_upgrade_is_finished(
    tmp_path: Path, count_writes: list[str], part: float
) -> None:
    total = initial_writes(tmp_path, count_writes)
    writes = max(1, int(total * part))
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = db.make_engine(url)
    old_first_start(engine, 1 + writes)  # + CREATE TABLE alembic_version
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 0
    tables = set(sa.inspect(engine).get_table_names())
    assert "inbound_message" in tables and len(tables) > 1  # the operator's state
    if part == 1.0:
        assert "registration_version" in tables
    engine.dispose()

    engine = db.make_engine(url)
    db.upgrade(engine)  # the next start
    engine.dispose()
    assert schema_of(url) == clean_schema(tmp_path)


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_two_first_starts_at_once_both_succeed(tmp_path: Path, store: str, request: pytest.FixtureRequest) -> None:
    """The second start waits for the first's migration, then finds it done: BEGIN
    IMMEDIATE on SQLite, a transaction-level advisory lock on PostgreSQL."""
    url = (
        f"sqlite:///{tmp_path / 'state' / 'mailbot.db'}" if store == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    errors: list[BaseException] = []

    def start() -> None:
        engine = db.make_engine(url)
        try:
            db.upgrade(engine)
        except BaseException as e:  # reported below
            errors.append(e)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    if store == "sqlite":
        assert schema_of(url) == clean_schema(tmp_path)
    else:
        engine = db.make_engine(url)
        try:
            with engine.connect() as conn:
                versions = [row[0] for row in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]
            head = ScriptDirectory.from_config(db.alembic_config(engine)).get_current_head()
            assert versions == [head]
        finally:
            engine.dispose()
