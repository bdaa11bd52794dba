"""Content-addressed file store for raw messages and attachments.

Files are named by their SHA-256, so storing the same bytes twice is free and a
registration can always be traced back to — and reprocessed from — its original mail.

Durability, one fsync per message: a raw message is written beside its final name and
fsynced before :meth:`BlobStore.put` returns, hence before the outcome that points to it
commits; Linux's journaling filesystems (ext4, XFS, btrfs) make a new file's name durable
with that fsync. The rename to the final name is not fsynced (a directory fsync per
file, as costly as the file's own): the name is the content's hash, so a rename a power
cut undid is redone on the first read that misses (:meth:`BlobStore._recover` finds
the written-aside file whose hash is the name). An attachment is cut from its raw
message and is stored without fsync (``durable=False``): a power cut can lose it but
never leave a wrong file under its name, ``mailbot review reprocess`` makes it again
from the raw copy, and the digest already names a missing file instead of attaching it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

_ASIDE = ".tmp-"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes, *, durable: bool = True) -> str:
        """Store ``data`` (write aside, atomic rename); return its SHA-256. ``durable``
        (the default): its bytes are on disk before this returns; ``False`` only for
        bytes that can be made again from a durable blob."""
        digest = sha256(data)
        target = self.path_for(digest)
        if self._stored(target, len(data)):
            if durable:  # perhaps stored without fsync, as an attachment with these bytes
                _fsync(target)
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_ASIDE)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        path = self.path_for(digest)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            if not self._recover(digest):
                raise
        return path.read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).exists() or self._recover(digest)

    @staticmethod
    def _stored(target: Path, size: int) -> bool:
        """Already there, whole (a file of another size is what a power cut left of an
        un-fsynced write: written again)."""
        try:
            return target.stat().st_size == size
        except FileNotFoundError:
            return False

    def _recover(self, digest: str) -> bool:
        """Redo a rename a power cut undid: a written-aside file whose content hashes to
        ``digest`` is the blob. False when there is none."""
        target = self.path_for(digest)
        try:
            aside = sorted(p for p in target.parent.iterdir() if p.name.startswith(_ASIDE))
        except (FileNotFoundError, NotADirectoryError):
            return False
        for candidate in aside:
            try:
                if sha256(candidate.read_bytes()) == digest:
                    os.replace(candidate, target)
                    return True
            except FileNotFoundError:
                continue  # another process moved it first
        return target.exists()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
