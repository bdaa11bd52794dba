"""Small network facts shared by the adapters and the config."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for hosts whose traffic never leaves the machine, where plaintext is tolerable."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
