"""SmtpTransport against a real SMTP server process, and MaildirTransport on disk."""

from __future__ import annotations

import mailbox
import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailbot.errors import ConfigError, DeliveryError
from mailbot.transport.base import Envelope
from mailbot.transport.maildir import MaildirTransport
from mailbot.transport.smtp import SmtpSettings, SmtpTransport


def envelope(n: int = 1, recipients: tuple[str, ...] = ("alice@example.org",)) -> Envelope:
    data = (
        f"From: Registration <registration@example.org>\r\nTo: {', '.join(recipients)}\r\n"
        f"Subject: Your registration {n}\r\nMessage-ID: <reply{n}@example.org>\r\n\r\n"
        f"Thank you {n}.\r\n.leading dot survives\r\n"
    ).encode()
    return Envelope(
        sender="registration@example.org", recipients=recipients, data=data, dedupe_key=f"reply-{n}"
    )


@pytest.fixture
def transport(smtp_server: Any) -> Iterator[SmtpTransport]:
    t = SmtpTransport(
        smtp_server.settings(username=smtp_server.user, password=smtp_server.password)
    )
    t.open()
    yield t
    t.close()


# -- SMTP: delivery -----------------------------------------------------------------


@pytest.mark.integration
def test_send_over_starttls_with_login(smtp_server: Any, transport: SmtpTransport) -> None:
    env = envelope(1, ("alice@example.org", "bob@example.org"))
    transport.send(env)

    (got,) = smtp_server.messages()
    assert got.mail_from == "registration@example.org"
    assert got.recipients == ["alice@example.org", "bob@example.org"]
    assert got.message["Subject"] == "Your registration 1"
    assert got.data == env.data  # dot-stuffing undone, bytes unchanged
    assert got.tls and got.authenticated


@pytest.mark.integration
def test_send_over_implicit_tls(smtp_server: Any) -> None:
    t = SmtpTransport(
        smtp_server.settings(
            port=smtp_server.ssl_port,
            security="ssl",
            username=smtp_server.user,
            password=smtp_server.password,
        )
    )
    t.open()
    try:
        t.send(envelope())
    finally:
        t.close()
    (got,) = smtp_server.messages()
    assert got.tls and got.authenticated


@pytest.mark.integration
def test_plaintext_on_loopback(smtp_server: Any) -> None:
    t = SmtpTransport(smtp_server.settings(security="none"))
    t.send(envelope())  # send() connects by itself when open() was not called
    t.close()
    (got,) = smtp_server.messages()
    assert not got.tls


def test_plaintext_refused_for_remote_hosts() -> None:
    with pytest.raises(ConfigError, match="only allowed for localhost"):
        SmtpSettings(host="smtp.example.org", security="none")


def test_password_not_in_repr() -> None:
    settings = SmtpSettings(host="smtp.example.org", username="bot", password="hunter2-secret")
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in SmtpTransport(settings).name


@pytest.mark.integration
def test_one_connection_for_many_sends(smtp_server: Any, transport: SmtpTransport) -> None:
    transport.send(envelope(1))
    transport.send(envelope(2))
    assert len(smtp_server.messages()) == 2
    assert smtp_server.connections() == 1


# -- SMTP: error classification -----------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("code", [550, 554, 552])
def test_5xx_is_permanent(smtp_server: Any, transport: SmtpTransport, code: int) -> None:
    smtp_server.fail_next(1, code=code, message="5.7.1 rejected by policy")
    with pytest.raises(DeliveryError) as info:
        transport.send(envelope())
    assert info.value.permanent is True
    assert str(code) in str(info.value)
    transport.send(envelope(2))  # the transport is still usable
    assert len(smtp_server.messages()) == 1


@pytest.mark.integration
@pytest.mark.parametrize("code", [451, 421, 432, 452])
def test_4xx_is_transient(smtp_server: Any, transport: SmtpTransport, code: int) -> None:
    smtp_server.fail_next(1, code=code, message="4.3.2 try again later")
    with pytest.raises(DeliveryError) as info:
        transport.send(envelope())
    assert info.value.permanent is False
    transport.send(envelope())  # the retry goes through on a fresh connection
    assert len(smtp_server.messages()) == 1


@pytest.mark.integration
def test_refused_recipient_is_permanent(smtp_server: Any, transport: SmtpTransport) -> None:
    smtp_server.reject_recipients(r"^nobody@", code=550, message="5.1.1 no such user")
    with pytest.raises(DeliveryError, match="no such user") as info:
        transport.send(envelope(1, ("nobody@example.org",)))
    assert info.value.permanent is True


@pytest.mark.integration
def test_greylisted_recipient_is_transient(smtp_server: Any, transport: SmtpTransport) -> None:
    smtp_server.reject_recipients(r"^grey@", code=450, message="4.2.0 greylisted")
    with pytest.raises(DeliveryError) as info:
        transport.send(envelope(1, ("grey@example.org",)))
    assert info.value.permanent is False


@pytest.mark.integration
def test_partly_refused_recipients_still_deliver(
    smtp_server: Any, transport: SmtpTransport, caplog: pytest.LogCaptureFixture
) -> None:
    smtp_server.reject_recipients(r"^nobody@", code=550)
    transport.send(envelope(1, ("alice@example.org", "nobody@example.org")))
    (got,) = smtp_server.messages()
    assert got.recipients == ["alice@example.org"]
    assert "nobody@example.org" in caplog.text


@pytest.mark.integration
def test_non_ascii_address_without_smtputf8_is_permanent(
    smtp_server: Any, transport: SmtpTransport
) -> None:
    with pytest.raises(DeliveryError, match="non-ASCII") as info:
        transport.send(envelope(1, ("zażółć@example.org",)))
    assert info.value.permanent is True
    transport.send(envelope(2))
    assert len(smtp_server.messages()) == 1


@pytest.mark.integration
def test_server_down_is_transient_and_recovers(smtp_server: Any, transport: SmtpTransport) -> None:
    transport.send(envelope(1))
    smtp_server.stop()

    with pytest.raises(DeliveryError) as info:
        transport.send(envelope(2))
    assert info.value.permanent is False

    smtp_server.start()
    transport.send(envelope(2))
    assert [m.message["Subject"] for m in smtp_server.messages()] == [
        "Your registration 1",
        "Your registration 2",
    ]


@pytest.mark.integration
def test_stale_connection_is_replaced_before_sending(
    smtp_server: Any, transport: SmtpTransport
) -> None:
    transport.send(envelope(1))
    smtp_server.restart()  # drops the open connection, like a server-side idle timeout
    transport.send(envelope(2))
    assert len(smtp_server.messages()) == 2
    assert smtp_server.connections() == 2


@pytest.mark.integration
def test_unverifiable_certificate_is_refused(smtp_server: Any) -> None:
    t = SmtpTransport(smtp_server.settings(ca_file=None))
    with pytest.raises(DeliveryError, match="certificate") as info:
        t.open()
    assert info.value.permanent is False
    assert "ca_file" in str(info.value)
    assert smtp_server.messages() == []


@pytest.mark.integration
def test_wrong_password_is_transient_and_explained(smtp_server: Any) -> None:
    t = SmtpTransport(smtp_server.settings(username=smtp_server.user, password="wrong-pass-word"))
    with pytest.raises(DeliveryError, match="check the username and password") as info:
        t.send(envelope())
    assert info.value.permanent is False  # fixing the config must let the outbox retry
    assert "wrong-pass-word" not in str(info.value)


@pytest.mark.integration
def test_connection_refused_is_transient(smtp_server: Any) -> None:
    smtp_server.stop()
    t = SmtpTransport(smtp_server.settings())
    with pytest.raises(DeliveryError, match="cannot connect") as info:
        t.open()
    assert info.value.permanent is False


# -- Maildir transport --------------------------------------------------------------


def test_maildir_transport_writes_bytes_unchanged(tmp_path: Path) -> None:
    t = MaildirTransport(tmp_path / "out")
    t.open()
    env = envelope(1)
    t.send(env)
    t.send(envelope(2))
    t.close()

    box = mailbox.Maildir(tmp_path / "out", create=False)
    assert len(box) == 2
    files = sorted((tmp_path / "out" / "new").iterdir())
    assert env.data in [f.read_bytes() for f in files]
    assert list((tmp_path / "out" / "tmp").iterdir()) == []


def test_maildir_transport_is_idempotent(tmp_path: Path) -> None:
    t = MaildirTransport(tmp_path / "out")
    env = envelope(1)
    t.send(env)  # works without open(): creates the Maildir
    t.send(env)
    assert len(list((tmp_path / "out" / "new").iterdir())) == 1

    # Still recognised after a mail client moved it to cur/ and flagged it.
    (only,) = (tmp_path / "out" / "new").iterdir()
    only.rename(tmp_path / "out" / "cur" / f"{only.name}:2,S")
    t.send(env)
    assert list((tmp_path / "out" / "new").iterdir()) == []
    assert len(list((tmp_path / "out" / "cur").iterdir())) == 1


@pytest.mark.integration
def test_a_busy_connection_is_not_checked_before_every_mail_but_a_dropped_one_is_replaced(
    smtp_server: Any, transport: SmtpTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No NOOP between mails of a batch; a connection that went away before MAIL FROM
    was answered is replaced once and the mail still goes out (nothing reached the server)."""
    noops = _count_noops(monkeypatch)
    for n in range(1, 4):
        transport.send(envelope(n))
    assert smtp_server.connections() == 1 and noops == []
    smtp_server.restart()
    transport.send(envelope(4))
    assert [m.message["Subject"] for m in smtp_server.messages()][-1] == "Your registration 4"
    assert smtp_server.connections() == 2


@pytest.mark.integration
def test_an_idle_connection_is_checked_with_noop_first(
    smtp_server: Any, transport: SmtpTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailbot.transport import smtp

    monkeypatch.setattr(smtp, "CHECK_IDLE_AFTER", -1.0)  # every connection counts as idle
    noops = _count_noops(monkeypatch)
    transport.send(envelope(1))
    smtp_server.restart()
    transport.send(envelope(2))
    assert len(smtp_server.messages()) == 2 and smtp_server.connections() == 2
    assert len(noops) == 2


def _count_noops(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record every NOOP smtplib sends from now on."""
    sent: list[int] = []
    noop = smtplib.SMTP.noop

    def counting(self: smtplib.SMTP) -> tuple[int, bytes]:
        sent.append(1)
        return noop(self)

    monkeypatch.setattr(smtplib.SMTP, "noop", counting)
    return sent
