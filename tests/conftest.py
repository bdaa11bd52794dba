"""Shared fixtures: real Dovecot and SMTP servers on loopback (see tests/servers.py).

* ``test_ca`` (session): throw-away CA + server certificate, ``.ca_file`` for clients.
* ``dovecot_server`` (session): one Dovecot for the whole run.
* ``dovecot`` (function): a fresh user with an empty mailbox on that server.
* ``smtp_sink_server`` (session) / ``smtp_server`` (function): the SMTP sink, reset and
  (re)started for every test.
* ``oauth_server`` (session) / ``oauth`` (function): a fake OAuth 2.0 provider (token
  endpoint + introspection) that Dovecot and the sink check XOAUTH2 bearer tokens with.

A missing ``dovecot`` or ``openssl`` makes these fixtures FAIL, never skip: CI must
install them, and a silently skipped integration suite proves nothing. A test that uses
one of them (or PostgreSQL's) is marked ``integration`` here, so ``./dev test --quick``
(``-m "not integration and not slow and not system"``) leaves it out without each
module having to remember the marker.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

try:  # tests/ is a package in some layouts and a plain rootdir-inserted path in others
    from tests.servers import (
        DovecotAccount,
        DovecotServer,
        OAuthServer,
        ServerSetupError,
        SmtpSink,
        TestCA,
        make_temp_root,
        make_test_ca,
    )
except ImportError:
    from servers import (  # type: ignore[no-redef]
        DovecotAccount,
        DovecotServer,
        OAuthServer,
        ServerSetupError,
        SmtpSink,
        TestCA,
        make_temp_root,
        make_test_ca,
    )


SERVER_FIXTURES = frozenset(
    {
        "server_root", "test_ca", "oauth_server", "oauth", "dovecot_server", "dovecot",
        "smtp_sink_server", "smtp_server", "postgres_server", "postgres_url",
    }
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that starts a real server (directly or through a fixture)."""
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def server_root() -> Iterator[Path]:
    """Parent directory for all server state; removed after the session."""
    root = make_temp_root("mailbot-servers-")
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def test_ca(server_root: Path) -> TestCA:
    try:
        return make_test_ca(server_root / "ca")
    except ServerSetupError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def oauth_server(test_ca: TestCA) -> Iterator[OAuthServer]:
    server = OAuthServer(test_ca)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def oauth(oauth_server: OAuthServer) -> OAuthServer:
    """The fake OAuth provider with default behaviour and an empty request log."""
    oauth_server.reset()
    return oauth_server


@pytest.fixture(scope="session")
def dovecot_server(
    server_root: Path, test_ca: TestCA, oauth_server: OAuthServer
) -> Iterator[DovecotServer]:
    try:
        root = server_root / "dovecot"
        root.mkdir()
        server = DovecotServer(root, test_ca, oauth=oauth_server)
        server.start()
    except ServerSetupError as e:
        pytest.fail(str(e), pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def dovecot(dovecot_server: DovecotServer) -> DovecotAccount:
    """A fresh IMAP account; the server is (re)started if a previous test stopped it."""
    try:
        dovecot_server.start()
    except ServerSetupError as e:
        pytest.fail(str(e), pytrace=False)
    return dovecot_server.add_user()


@pytest.fixture(scope="session")
def smtp_sink_server(
    server_root: Path, test_ca: TestCA, oauth_server: OAuthServer
) -> Iterator[SmtpSink]:
    sink = SmtpSink(server_root / "smtp", test_ca, oauth=oauth_server)
    try:
        sink.start()
    except ServerSetupError as e:
        pytest.fail(str(e), pytrace=False)
    yield sink
    sink.stop()


@pytest.fixture
def smtp_server(smtp_sink_server: SmtpSink) -> SmtpSink:
    """The SMTP sink, running, with no messages, connections or failure rules."""
    try:
        smtp_sink_server.start()
    except ServerSetupError as e:
        pytest.fail(str(e), pytrace=False)
    smtp_sink_server.reset()
    return smtp_sink_server
