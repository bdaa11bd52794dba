"""sd_notify spoken to a real AF_UNIX datagram socket, at a path and in the abstract namespace."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailbot import sdnotify

Receiver = Callable[[], dict[str, str]]


def _receiver(sock: socket.socket) -> Receiver:
    def receive() -> dict[str, str]:
        data = sock.recv(4096).decode("utf-8")
        assert data.endswith("\n")
        return dict(line.split("=", 1) for line in data.splitlines())

    return receive


@pytest.fixture
def path_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    address = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(address))
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(address))
        yield _receiver(sock)


@pytest.fixture
def abstract_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    name = f"mailbot-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        yield _receiver(sock)


def test_ready_with_status_over_a_path_socket(path_socket: Receiver) -> None:
    assert sdnotify.ready("waiting for mail") is True
    assert path_socket() == {"READY": "1", "STATUS": "waiting for mail"}


def test_every_message_over_the_abstract_namespace(abstract_socket: Receiver) -> None:
    assert sdnotify.ready()
    assert abstract_socket() == {"READY": "1"}
    assert sdnotify.status("3 messages processed")
    assert abstract_socket() == {"STATUS": "3 messages processed"}
    assert sdnotify.watchdog()
    assert abstract_socket() == {"WATCHDOG": "1"}
    assert sdnotify.stopping()
    assert abstract_socket() == {"STOPPING": "1"}
    assert sdnotify.extend_timeout(90)
    assert abstract_socket() == {"EXTEND_TIMEOUT_USEC": "90000000"}


def test_reloading_carries_the_monotonic_clock(path_socket: Receiver) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert sdnotify.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    message = path_socket()
    assert message["RELOADING"] == "1"
    assert before <= int(message["MONOTONIC_USEC"]) <= after


def test_notify_fields_newlines_and_booleans(path_socket: Receiver) -> None:
    assert sdnotify.notify(STATUS="line one\nline two", READY=True, ERRNO=0)
    assert path_socket() == {"STATUS": "line one line two", "READY": "1", "ERRNO": "0"}


def test_field_names_must_be_upper_case(path_socket: Receiver) -> None:
    with pytest.raises(ValueError):
        sdnotify.notify(status="x")


def test_no_socket_means_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.ready("x") is False
    assert sdnotify.watchdog() is False
    assert sdnotify.notify() is False


def test_socket_errors_are_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    with caplog.at_level(logging.DEBUG, logger="mailbot.sdnotify"):
        assert sdnotify.ready() is False
    assert any("nobody-listens" in r.getMessage() for r in caplog.records)
    assert all(r.levelno == logging.DEBUG for r in caplog.records)
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert sdnotify.watchdog() is False


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    pid = str(os.getpid())
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "300000000"}) == 150.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "300000000", "WATCHDOG_PID": pid}) == 150.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "300000000", "WATCHDOG_PID": "1"}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "300000000", "WATCHDOG_PID": "x"}) is None
    assert sdnotify.watchdog_interval({}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


def test_watchdog_interval_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sdnotify.watchdog_interval() == 0.5
