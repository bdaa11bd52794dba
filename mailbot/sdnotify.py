"""Tell systemd how the daemon is doing: the ``sd_notify`` protocol, spoken directly.

The unit runs with ``Type=notify`` and ``WatchdogSec=``: systemd waits for ``READY=1``
before it calls the service started, and restarts it when the ``WATCHDOG=1`` pings stop.
The protocol is one datagram of ``KEY=VALUE`` lines sent to the ``AF_UNIX`` socket named
in ``$NOTIFY_SOCKET`` (a leading ``@`` means Linux's abstract namespace). That is a few
lines of :mod:`socket`, so mailbot does not depend on ``systemd-python``: it is a C
extension that needs libsystemd's headers and a compiler to build from PyPI, for this
one call.

Outside systemd (``$NOTIFY_SOCKET`` unset: a terminal, the tests, ``run --once``) every
function is a no-op returning ``False``. Socket errors are logged at DEBUG and never
raised: a lost status message must not stop mail processing.

Only the main process may notify (``NotifyAccess=main``, the default): call these from
the daemon's process, never from a parse worker.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Mapping

__all__ = [
    "extend_timeout",
    "notify",
    "ready",
    "reloading",
    "status",
    "stopping",
    "watchdog",
    "watchdog_interval",
]

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _address(value: str) -> str | None:
    """The socket address for ``$NOTIFY_SOCKET``, or None when unusable here."""
    if value.startswith("@"):
        return "\0" + value[1:]  # abstract namespace
    if value.startswith("/"):
        return value
    # systemd >= 254 also accepts "vsock:CID:PORT" (VMs); a service on a host never
    # gets one, so it is not spoken here.
    return None


def _line(key: str, value: object) -> str:
    if not _KEY.match(key):
        raise ValueError(f"sd_notify field name {key!r} is not upper-case KEY form")
    if value is True:
        text = "1"
    elif value is False:
        text = "0"
    else:
        text = str(value)
    # One field per line: a newline inside a value would start a bogus field.
    return f"{key}={' '.join(text.splitlines())}"


def notify(**fields: object) -> bool:
    """Send ``KEY=VALUE`` fields in one datagram; True if the message was sent.

    ``notify(READY=1, STATUS="waiting for mail")``. Booleans become ``1``/``0``;
    newlines inside a value are replaced by spaces. A field name that is not upper-case
    raises ``ValueError`` (a programming error, not a runtime condition).
    """
    if not fields:
        return False
    payload = "\n".join(_line(key, value) for key, value in fields.items()) + "\n"
    target = os.environ.get("NOTIFY_SOCKET", "")
    if not target:
        return False
    address = _address(target)
    if address is None:
        log.debug("sd_notify: unsupported NOTIFY_SOCKET %r", target)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(payload.encode("utf-8"))
    except OSError as e:
        log.debug("sd_notify to %r failed: %s", target, e)
        return False
    return True


def ready(status: str | None = None) -> bool:
    """Start-up finished (config read, database migrated): ``READY=1``.

    Also sent after a reload has completed, to end the ``reloading`` state.
    """
    if status is None:
        return notify(READY=1)
    return notify(READY=1, STATUS=status)


def stopping() -> bool:
    """Shutdown has begun (SIGTERM received): ``STOPPING=1``."""
    return notify(STOPPING=1)


def reloading() -> bool:
    """A reload has begun (SIGHUP received): ``RELOADING=1`` with ``MONOTONIC_USEC``.

    systemd >= 253 (``Type=notify-reload``) matches the timestamp against the moment it
    sent the signal; older versions ignore the extra field. Send :func:`ready` when the
    new configuration is in force.
    """
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify(RELOADING=1, MONOTONIC_USEC=usec)


def status(text: str) -> bool:
    """A one-line status shown by ``systemctl status``: ``STATUS=…``."""
    return notify(STATUS=text)


def watchdog() -> bool:
    """Keep-alive ping: ``WATCHDOG=1``. Send at least every :func:`watchdog_interval`."""
    return notify(WATCHDOG=1)


def extend_timeout(seconds: float) -> bool:
    """Ask for ``seconds`` more before the start, reload or stop times out:
    ``EXTEND_TIMEOUT_USEC`` (systemd >= 236), e.g. while long migrations run."""
    return notify(EXTEND_TIMEOUT_USEC=max(0, int(seconds * 1_000_000)))


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings (half of ``WatchdogSec=``), or None when systemd
    expects none from this process (no watchdog, or ``$WATCHDOG_PID`` names another)."""
    env = os.environ if env is None else env
    raw_pid = env.get("WATCHDOG_PID")
    if raw_pid:
        try:
            if int(raw_pid) != os.getpid():
                return None
        except ValueError:
            return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 2_000_000
