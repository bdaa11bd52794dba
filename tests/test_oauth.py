"""XOAUTH2: the token provider against a fake OAuth provider over HTTPS, and IMAP/SMTP
logins with bearer tokens against the real Dovecot (oauth2 passdb) and the SMTP sink."""

from __future__ import annotations

import json
import logging
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailbot.config import (
    MailboxSettings,
    OAuthSettings,
    OutboxSettings,
    settings_from_dict,
)
from mailbot.errors import ConfigError, DeliveryError, MailboxError
from mailbot.mailbox.factory import source_from_settings
from mailbot.mailbox.imap import ImapSource, MailboxSetupError
from mailbot.oauth import (
    REFRESH_MARGIN_S,
    AccessToken,
    OAuthSetupError,
    OAuthUnavailable,
    TokenProvider,
    xoauth2_string,
)
from mailbot.transport.base import Envelope
from mailbot.transport.factory import transport_from_settings
from mailbot.transport.smtp import SmtpTransport

USER = "registration@example.org"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def read(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def secrets_of(oauth: Any, *paths: Path, extra: tuple[str, ...] = ()) -> list[str]:
    """Every token and secret in play, to prove none of them reached a log or a message."""
    found = [oauth.client_secret, *extra]
    for path in paths:
        data = read(path)
        found += [v for k, v in data.items() if k in ("access_token", "refresh_token")]
    return [s for s in found if s]


def mail(n: int) -> bytes:
    return (
        f"From: sender{n}@example.org\r\nTo: registration@example.org\r\n"
        f"Subject: registration {n}\r\nMessage-ID: <oauth{n}@example.org>\r\n\r\nform {n}\r\n"
    ).encode()


def envelope(n: int = 1) -> Envelope:
    return Envelope(
        sender=USER,
        recipients=("alice@example.org",),
        data=f"From: {USER}\r\nTo: alice@example.org\r\nSubject: reply {n}\r\n\r\nThanks.\r\n".encode(),
        dedupe_key=f"oauth-{n}",
    )


# -- the token provider ---------------------------------------------------------------


def test_xoauth2_string() -> None:
    assert xoauth2_string("a@b.c", "tok") == "user=a@b.c\x01auth=Bearer tok\x01\x01"


def test_first_use_refreshes_saves_rotated_token_with_mode_0600(oauth: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "token.json"
    original = oauth.write_token_file(token_file, USER, mode=0o644)
    token_file.write_text(json.dumps({"refresh_token": original, "note": "kept"}))
    clock = Clock()

    token = oauth.provider(token_file, clock=clock).get()

    assert token.refreshed and oauth.user_of(token.value) == USER
    assert token.expires_at == int(clock.now + 3600)
    (request,) = oauth.token_requests
    assert request == {
        "grant_type": "refresh_token",
        "client_id": oauth.client_id,
        "client_secret": oauth.client_secret,
        "refresh_token": original,
        "scope": oauth.scope,
    }
    saved = read(token_file)
    assert saved["access_token"] == token.value and saved["expires_at"] == token.expires_at
    assert saved["refresh_token"] != original and oauth.refresh_token_valid(saved["refresh_token"])
    assert not oauth.refresh_token_valid(original)  # rotated: the old one is dead now
    assert saved["note"] == "kept"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["token.json", "token.json.lock"]


def test_cached_token_is_used_until_five_minutes_before_expiry(oauth: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "token.json"
    oauth.write_token_file(token_file, USER)
    clock = Clock()
    provider = oauth.provider(token_file, clock=clock)
    first = provider.get()

    clock.now = first.expires_at - REFRESH_MARGIN_S - 1
    again = provider.get()
    assert again.value == first.value and not again.refreshed
    assert len(oauth.token_requests) == 1

    clock.now = first.expires_at - REFRESH_MARGIN_S + 1  # expiring within 5 minutes
    renewed = provider.get()
    assert renewed.value != first.value and renewed.refreshed
    assert len(oauth.token_requests) == 2
    assert read(token_file)["access_token"] == renewed.value


def test_expired_token_in_the_file_is_refreshed(oauth: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "token.json"
    stale = oauth.issue(USER)
    oauth.write_token_file(token_file, USER, access_token=stale, expires_at=time.time() - 10)
    token = oauth.provider(token_file).get()
    assert token.refreshed and token.value != stale


def test_without_rotation_the_refresh_token_stays(oauth: Any, tmp_path: Path) -> None:
    oauth.rotate = False
    token_file = tmp_path / "token.json"
    original = oauth.write_token_file(token_file, USER)
    oauth.provider(token_file).get()
    assert read(token_file)["refresh_token"] == original


def test_a_rejected_token_is_refreshed_unless_another_process_already_did(
    oauth: Any, tmp_path: Path
) -> None:
    token_file = tmp_path / "token.json"
    oauth.write_token_file(token_file, USER)
    mailbox_side = oauth.provider(token_file)
    outbox_side = oauth.provider(token_file)  # e.g. [outbox.oauth] naming the same file
    first = mailbox_side.get()

    second = mailbox_side.get(rejected=first)
    assert second.refreshed and second.value != first.value
    # The other provider reads the file: the token refreshed (and the refresh token
    # rotated) by the first is simply used, not refreshed again with a dead refresh token.
    shared = outbox_side.get(rejected=first)
    assert shared.value == second.value and not shared.refreshed
    assert len(oauth.token_requests) == 2


def test_invalid_grant_tells_the_admin_what_to_do(oauth: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "token.json"
    dead = oauth.write_token_file(token_file, USER)
    oauth.revoke(dead)
    with pytest.raises(OAuthSetupError) as info:
        oauth.provider(token_file).get()
    text = str(info.value)
    assert "refresh token rejected (invalid_grant)" in text
    assert "obtain a new one" in text and "docs/deploy.md" in text and str(token_file) in text
    assert "AADSTS70008" in text and "Trace ID" not in text  # first line of the description
    assert dead not in text and oauth.client_secret not in text
    assert isinstance(info.value, ConfigError)
    assert read(token_file) == {"refresh_token": dead}  # nothing written


def test_wrong_client_secret_is_a_setup_error(oauth: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "token.json"
    oauth.write_token_file(token_file, USER)
    with pytest.raises(OAuthSetupError, match=r"rejected the client \(invalid_client\).*client_id"):
        oauth.provider(token_file, client_secret="wrong").get()


def test_provider_outage_is_transient(oauth: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "token.json"
    oauth.write_token_file(token_file, USER)
    provider = oauth.provider(token_file)
    oauth.fail_next(503)
    with pytest.raises(OAuthUnavailable, match="HTTP 503") as info:
        provider.get()
    assert not isinstance(info.value, ConfigError)
    assert provider.get().refreshed  # the next try works


def test_token_endpoint_unreachable_is_transient(oauth: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "token.json"
    oauth.write_token_file(token_file, USER)
    provider = oauth.provider(token_file, token_url="https://127.0.0.1:1/token")
    with pytest.raises(OAuthUnavailable, match="cannot reach the token endpoint"):
        provider.get()


def test_tls_of_the_token_endpoint_is_verified(oauth: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "token.json"
    oauth.write_token_file(token_file, USER)
    with pytest.raises(OAuthSetupError, match="could not be verified.*ca_file"):
        oauth.provider(token_file, ca_file=None).get()
    assert oauth.token_requests == []


def test_plain_http_only_to_loopback(tmp_path: Path) -> None:
    with pytest.raises(OAuthSetupError, match="https"):
        TokenProvider(
            token_file=tmp_path / "t", token_url="http://login.example.com/token", client_id="x"
        )
    TokenProvider(token_file=tmp_path / "t", token_url="http://127.0.0.1:9/token", client_id="x")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist; create it"),
        ('{"refresh_token": "rt-secret-value",', "not valid JSON"),
        ('["rt-secret-value"]', "must hold a JSON object"),
        ('{"access_token": "rt-secret-value"}', "has no refresh_token"),
    ],
)
def test_token_file_problems_are_explained(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    token_file = tmp_path / "token.json"
    if content is not None:
        token_file.write_text(content)
    provider = TokenProvider(
        token_file=token_file, token_url="https://127.0.0.1:1/token", client_id="x"
    )
    with pytest.raises(OAuthSetupError, match=expected) as info:
        provider.get()
    assert "rt-secret-value" not in str(info.value) and "docs/deploy.md" in str(info.value)


def test_unwritable_token_file_keeps_the_token_in_memory(
    oauth: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token_file = tmp_path / "token.json"
    oauth.write_token_file(token_file, USER)
    before = token_file.read_text()

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("mailbot.oauth.tempfile.mkstemp", refuse)
    provider = oauth.provider(token_file)
    first = provider.get()
    assert "Cannot save the refreshed token" in caplog.text and "writable" in caplog.text
    assert token_file.read_text() == before
    again = provider.get()  # from memory: the rotated refresh token is not lost
    assert again.value == first.value and len(oauth.token_requests) == 1
    assert first.value not in caplog.text


def test_group_readable_token_file_is_warned_about(
    oauth: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token_file = tmp_path / "token.json"
    oauth.write_token_file(token_file, USER, mode=0o644)
    oauth.provider(token_file).get()
    assert "chmod 600" in caplog.text


def test_tokens_never_reach_logs_or_reprs(
    oauth: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "token.json"
    first_refresh = oauth.write_token_file(token_file, USER)
    provider = oauth.provider(token_file)
    token = provider.get()
    provider.get(rejected=token)
    oauth.fail_next(400, "invalid_grant", "AADSTS70000: bad token")
    with pytest.raises(OAuthSetupError) as info:
        provider.get(rejected=provider.get())

    assert "Refreshed the OAuth access token" in caplog.text
    leaks = secrets_of(oauth, token_file, extra=(first_refresh, token.value))
    shown = caplog.text + str(info.value) + repr(token) + repr(provider)
    assert [s for s in leaks if s in shown] == []


# -- configuration --------------------------------------------------------------------


def oauth_table(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "token_file": str(tmp_path / "token.json"),
        "token_url": "https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
        "client_id": "00000000-aaaa",
        **extra,
    }


def with_sender(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` plus the required outbox.from_address, so only the problem under test shows."""
    return {**data, "outbox": {"from_address": USER, **data.get("outbox", {})}}


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        settings_from_dict(with_sender(data))
    return [str(p) for p in info.value.problems]  # type: ignore[attr-defined]


def test_config_xoauth2_needs_its_oauth_table_and_vice_versa(tmp_path: Path) -> None:
    imap = {"kind": "imap", "host": "outlook.office365.com", "username": USER}
    assert problems({"mailbox": {**imap, "auth": "xoauth2"}}) == [
        "mailbox: auth = 'xoauth2' needs a [mailbox.oauth] table with token_file, token_url and client_id"
    ]
    (problem,) = problems({"mailbox": {**imap, "oauth": oauth_table(tmp_path)}})
    assert problem.startswith("mailbox: [mailbox.oauth] is set but auth = 'password'")
    (problem,) = problems(
        {
            "outbox": {
                "kind": "smtp",
                "host": "smtp.office365.com",
                "auth": "xoauth2",
                "oauth": oauth_table(tmp_path),
            }
        }
    )
    assert problem.startswith("outbox: auth = 'xoauth2' needs username")
    (problem,) = problems(
        {
            "mailbox": {
                **imap,
                "auth": "xoauth2",
                "oauth": oauth_table(tmp_path, token_url="http://login.example.com/t"),
            }
        }
    )
    assert problem.startswith(
        "mailbox.oauth.token_url: token_url 'http://login.example.com/t' must be an https:// URL"
    )
    (problem,) = problems(
        {
            "mailbox": {
                **imap,
                "auth": "xoauth2",
                "oauth": oauth_table(
                    tmp_path, client_secret_file="/a", client_secret_credential="b"
                ),
            }
        }
    )
    assert problem == "mailbox.oauth: give only one of client_secret_file, client_secret_credential"

    ok = settings_from_dict(with_sender(
        {
            "mailbox": {
                **imap,
                "auth": "xoauth2",
                "oauth": oauth_table(
                    tmp_path,
                    scope="https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
                ),
            }
        }
    ))
    assert ok.mailbox.oauth is not None and ok.mailbox.oauth.client_id == "00000000-aaaa"


def test_client_secret_from_systemd_credentials(tmp_path: Path) -> None:
    (tmp_path / "oauth-secret").write_text("s3cret\n")
    settings = OAuthSettings.model_validate(
        oauth_table(tmp_path, client_secret_credential="oauth-secret")
    )
    assert settings.resolve_client_secret({"CREDENTIALS_DIRECTORY": str(tmp_path)}) == "s3cret"
    with pytest.raises(ConfigError, match="CREDENTIALS_DIRECTORY"):
        settings.resolve_client_secret({})
    (tmp_path / "file-secret").write_text("other")
    from_file = OAuthSettings.model_validate(
        oauth_table(tmp_path, client_secret_file=str(tmp_path / "file-secret"))
    )
    assert from_file.resolve_client_secret({}) == "other"
    assert OAuthSettings.model_validate(oauth_table(tmp_path)).resolve_client_secret({}) is None


# -- IMAP against Dovecot (oauth2 passdb, introspection at the fake provider) ---------


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    return tmp_path / "token.json"


def xoauth2_source(dovecot: Any, oauth: Any, token_file: Path, **kw: Any) -> ImapSource:
    settings = dovecot.settings(
        auth="xoauth2", password="", token_provider=oauth.provider(token_file)
    )
    return ImapSource(settings, **kw)


@pytest.mark.integration
def test_imap_fetch_with_xoauth2(dovecot: Any, oauth: Any, token_file: Path) -> None:
    oauth.write_token_file(token_file, dovecot.user)
    dovecot.append("INBOX", mail(1))
    source = xoauth2_source(dovecot, oauth, token_file)
    try:
        assert [m.data for m in source.fetch(None)] == [mail(1)]
    finally:
        source.close()
    assert len(oauth.token_requests) == 1 and oauth.introspections >= 1

    again = xoauth2_source(dovecot, oauth, token_file)  # a new connection: cached token
    try:
        again.open()
    finally:
        again.close()
    assert len(oauth.token_requests) == 1


@pytest.mark.integration
def test_imap_through_config_and_factory(
    dovecot: Any, oauth: Any, token_file: Path, tmp_path: Path
) -> None:
    oauth.write_token_file(token_file, dovecot.user)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "oauth-client-secret").write_text(oauth.client_secret + "\n")
    settings = MailboxSettings.model_validate(
        {
            "kind": "imap",
            "host": dovecot.host,
            "port": dovecot.starttls_port,
            "security": "starttls",
            "username": dovecot.user,
            "ca_file": str(dovecot.ca_file),
            "auth": "xoauth2",
            "oauth": {
                "token_file": str(token_file),
                "token_url": oauth.token_url,
                "client_id": oauth.client_id,
                "client_secret_credential": "oauth-client-secret",
                "scope": oauth.scope,
                "ca_file": str(oauth.ca_file),
            },
        }
    )
    dovecot.append("INBOX", mail(2))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CREDENTIALS_DIRECTORY", str(creds))
        source = source_from_settings(settings)
    try:
        assert [m.data for m in source.fetch(None)] == [mail(2)]
    finally:
        source.close()


@pytest.mark.integration
def test_imap_stale_cached_token_is_refreshed_and_retried(
    dovecot: Any, oauth: Any, token_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stale = oauth.issue(dovecot.user)
    first_refresh = oauth.write_token_file(token_file, dovecot.user, access_token=stale)
    oauth.revoke(stale)  # the server revoked it before its expires_at
    dovecot.append("INBOX", mail(3))
    source = xoauth2_source(dovecot, oauth, token_file)
    try:
        assert [m.data for m in source.fetch(None)] == [mail(3)]
    finally:
        source.close()
    assert len(oauth.token_requests) == 1
    assert read(token_file)["access_token"] != stale
    assert "refused the cached access token" in caplog.text
    leaks = secrets_of(oauth, token_file, extra=(stale, first_refresh))
    assert [s for s in leaks if s in caplog.text] == []


@pytest.mark.integration
def test_imap_fresh_token_refused_is_a_setup_error_without_a_loop(
    dovecot: Any, oauth: Any, token_file: Path
) -> None:
    other = dovecot.server.add_user()
    oauth.write_token_file(token_file, other.user)  # granted for another mailbox
    sleeps: list[float] = []
    source = xoauth2_source(dovecot, oauth, token_file, sleep=sleeps.append)
    with pytest.raises(MailboxSetupError, match="even with a freshly refreshed access token"):
        source.open()
    assert len(oauth.token_requests) == 1 and sleeps == []


@pytest.mark.integration
def test_imap_invalid_grant_is_a_setup_error(dovecot: Any, oauth: Any, token_file: Path) -> None:
    oauth.revoke(oauth.write_token_file(token_file, dovecot.user))
    sleeps: list[float] = []
    source = xoauth2_source(dovecot, oauth, token_file, sleep=sleeps.append)
    with pytest.raises(MailboxSetupError, match=r"invalid_grant.*obtain a new one"):
        source.open()
    assert sleeps == []  # retrying cannot help


@pytest.mark.integration
def test_imap_token_endpoint_outage_is_retried_with_backoff(
    dovecot: Any, oauth: Any, token_file: Path
) -> None:
    oauth.write_token_file(token_file, dovecot.user)
    oauth.fail_next(503)
    sleeps: list[float] = []
    source = xoauth2_source(dovecot, oauth, token_file, sleep=sleeps.append, base_delay=0.01)
    try:
        source.open()
    finally:
        source.close()
    assert sleeps == [0.01] and len(oauth.token_requests) == 2


@pytest.mark.integration
def test_imap_server_unable_to_check_tokens_is_retried_not_refreshed(
    dovecot: Any, oauth: Any, token_file: Path
) -> None:
    oauth.write_token_file(token_file, dovecot.user)
    oauth.provider(token_file).get()  # a cached, valid token
    oauth.reset()
    oauth.introspection_status = 503  # Dovecot answers NO [UNAVAILABLE]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        oauth.introspection_status = 200

    source = xoauth2_source(dovecot, oauth, token_file, sleep=sleep, base_delay=0.01)
    try:
        source.open()
    finally:
        source.close()
    assert sleeps == [0.01] and oauth.token_requests == []  # the token was never the problem


@pytest.mark.integration
def test_imap_password_login_still_works_beside_xoauth2(dovecot: Any) -> None:
    source = ImapSource(dovecot.settings())
    try:
        source.open()
    finally:
        source.close()


# -- SMTP against the sink ------------------------------------------------------------


@pytest.fixture
def smtp_oauth(smtp_server: Any, oauth: Any, token_file: Path) -> Iterator[SmtpTransport]:
    oauth.write_token_file(token_file, USER)
    transport = SmtpTransport(
        smtp_server.settings(
            username=USER, auth="xoauth2", token_provider=oauth.provider(token_file)
        )
    )
    yield transport
    transport.close()


@pytest.mark.integration
def test_smtp_send_with_xoauth2(smtp_server: Any, oauth: Any, smtp_oauth: SmtpTransport) -> None:
    smtp_oauth.send(envelope(1))
    (got,) = smtp_server.messages()
    assert got.authenticated and got.tls and got.auth_mechanism == "XOAUTH2"
    assert [(a.mechanism, a.user, a.success) for a in smtp_server.auth_attempts()] == [
        ("XOAUTH2", USER, True)
    ]
    assert len(oauth.token_requests) == 1


@pytest.mark.integration
def test_smtp_through_config_and_factory(
    smtp_server: Any, oauth: Any, token_file: Path, tmp_path: Path
) -> None:
    oauth.write_token_file(token_file, USER)
    secret = tmp_path / "client-secret"
    secret.write_text(oauth.client_secret)
    settings = OutboxSettings.model_validate(
        {
            "kind": "smtp",
            "host": smtp_server.host,
            "port": smtp_server.port,
            "security": "starttls",
            "username": USER,
            "from_address": USER,
            "ca_file": str(smtp_server.ca_file),
            "auth": "xoauth2",
            "oauth": {
                "token_file": str(token_file),
                "token_url": oauth.token_url,
                "client_id": oauth.client_id,
                "client_secret_file": str(secret),
                "scope": oauth.scope,
                "ca_file": str(oauth.ca_file),
            },
        }
    )
    transport = transport_from_settings(settings)
    try:
        transport.send(envelope(2))
    finally:
        transport.close()
    (got,) = smtp_server.messages()
    assert got.auth_mechanism == "XOAUTH2"


@pytest.mark.integration
def test_smtp_stale_cached_token_is_refreshed_and_retried(
    smtp_server: Any, oauth: Any, token_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stale = oauth.issue(USER)
    first_refresh = oauth.write_token_file(token_file, USER, access_token=stale)
    oauth.revoke(stale)
    transport = SmtpTransport(
        smtp_server.settings(
            username=USER, auth="xoauth2", token_provider=oauth.provider(token_file)
        )
    )
    try:
        transport.send(envelope(3))
    finally:
        transport.close()
    assert [a.success for a in smtp_server.auth_attempts()] == [False, True]
    assert len(smtp_server.messages()) == 1 and smtp_server.connections() == 1
    assert len(oauth.token_requests) == 1
    leaks = secrets_of(oauth, token_file, extra=(stale, first_refresh))
    assert [s for s in leaks if s in caplog.text] == []


@pytest.mark.integration
def test_smtp_fresh_token_refused_is_a_transient_delivery_error(
    smtp_server: Any, oauth: Any, token_file: Path
) -> None:
    oauth.write_token_file(token_file, "someone-else@example.org")
    transport = SmtpTransport(
        smtp_server.settings(
            username=USER, auth="xoauth2", token_provider=oauth.provider(token_file)
        )
    )
    with pytest.raises(DeliveryError, match="even with a freshly refreshed access token") as info:
        transport.send(envelope(4))
    assert not info.value.permanent  # the message is fine; the outbox keeps it
    assert [a.success for a in smtp_server.auth_attempts()] == [False]
    assert smtp_server.messages() == []


@pytest.mark.integration
def test_smtp_invalid_grant_is_reported_before_any_auth(
    smtp_server: Any, oauth: Any, token_file: Path
) -> None:
    oauth.revoke(oauth.write_token_file(token_file, USER))
    transport = SmtpTransport(
        smtp_server.settings(
            username=USER, auth="xoauth2", token_provider=oauth.provider(token_file)
        )
    )
    with pytest.raises(DeliveryError, match=r"invalid_grant.*docs/deploy.md") as info:
        transport.send(envelope(5))
    assert not info.value.permanent
    assert smtp_server.auth_attempts() == []


def test_settings_demand_a_provider_and_hide_it(oauth: Any, token_file: Path) -> None:
    from mailbot.mailbox.imap import ImapSettings
    from mailbot.transport.smtp import SmtpSettings

    with pytest.raises(MailboxError, match="token provider"):
        ImapSettings(host="127.0.0.1", username=USER, auth="xoauth2")
    with pytest.raises(ConfigError, match="token provider"):
        SmtpSettings(host="127.0.0.1", username=USER, auth="xoauth2")
    with pytest.raises(ConfigError, match="needs username"):
        SmtpSettings(host="127.0.0.1", auth="xoauth2", token_provider=oauth.provider(token_file))
    provider = oauth.provider(token_file)
    assert "token_provider" not in repr(
        ImapSettings(host="h", username=USER, auth="xoauth2", token_provider=provider)
    )
    assert "secret-value" not in repr(AccessToken("secret-value", 0.0))
