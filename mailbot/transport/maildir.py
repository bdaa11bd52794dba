"""Outgoing mail written into a Maildir instead of sent: for dry runs, demos and tests.

File names derive from the envelope's dedupe key, so a retried send after a crash finds
the file already there and writes nothing: the same guarantee the outbox expects of SMTP.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from mailbot.errors import DeliveryError
from mailbot.transport.base import Envelope

log = logging.getLogger(__name__)


def envelope_filename(dedupe_key: str) -> str:
    """A stable, filesystem-safe Maildir name for one dedupe key."""
    digest = hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:40]
    return f"mailbot-{digest}"


class MaildirTransport:
    """Delivers each envelope's bytes, unchanged, into ``path/new``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = f"maildir://{self.path}"

    def open(self) -> None:
        try:
            for sub in ("tmp", "new", "cur"):
                (self.path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise DeliveryError(f"cannot create Maildir {self.path}: {e}", permanent=False) from e

    def close(self) -> None:
        pass

    def _already_delivered(self, name: str) -> bool:
        if (self.path / "new" / name).exists():
            return True
        try:
            return any(f.split(":", 1)[0] == name for f in os.listdir(self.path / "cur"))
        except FileNotFoundError:
            return False

    def send(self, envelope: Envelope) -> None:
        name = envelope_filename(envelope.dedupe_key)
        if self._already_delivered(name):
            log.debug(
                "Envelope %s already in %s; not writing it twice", envelope.dedupe_key, self.name
            )
            return
        self.open()
        tmp = self.path / "tmp" / f"{name}.{os.getpid()}"
        final = self.path / "new" / name
        try:
            with open(tmp, "wb") as fh:
                fh.write(envelope.data)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                # link() fails instead of overwriting: a concurrent writer of the same key wins.
                os.link(tmp, final)
            except FileExistsError:
                log.debug("Envelope %s was written concurrently", envelope.dedupe_key)
        except OSError as e:
            raise DeliveryError(f"cannot write {final}: {e}", permanent=False) from e
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        log.debug("Wrote %s to %s", envelope.dedupe_key, final)
