"""Turn legacy word-processor files (.doc, .rtf, Word 2003 XML, WordPerfect) into .docx.

People "save as" the organisers' .docx in older formats (docs/forms.md: "the .docx saved as
.doc (Word 97)"). Rather than a second reader per format, headless LibreOffice
converts the file to .docx and the docx reader reads it, so tables, legacy form
fields and check boxes go through the same code as a .docx. antiword/catdoc were
rejected: they flatten tables and form fields to plain text (a ticked FORMCHECKBOX
and an unticked one look the same), while LibreOffice keeps table cells, form-field
values, check-box states and even content controls.

LibreOffice is a large C++ program fed hostile bytes, so every conversion runs in a
subprocess that is contained:

* a fresh private profile and work directory per call (``-env:UserInstallation``),
  deleted afterwards: calls never share state and can run concurrently. Measured
  (LibreOffice 7.4, Debian 12, 2 cores): ~1.1-1.2 s per conversion with a new
  profile, ~0.9-1.0 s reusing one, 1.5-2 s for the first call with a cold page
  cache; 0.2 s does not pay for a profile pool and its locking;
* the input saved under a fixed name (never the sender's file name) and opened with
  the import filter of the sniffed format (``--infilter``; for a .doc the Word 97 or
  6/95 filter its FIB names), so LibreOffice's type detection cannot pick another,
  riskier importer (only a .doc too damaged to read its FIB is left to detection);
* macros disabled and links never updated (a profile setting), no network (a new
  network namespace via ``unshare`` where the kernel allows it), a scrubbed
  environment, stdin closed; LibreOffice dies with this process (``setpriv
  --pdeathsig`` and a PID namespace), so a killed parent leaves nothing running;
* address space, CPU time, file size and core dumps limited with ``prlimit``
  (not ``preexec_fn``, which can deadlock a threaded parent);
* a wall-clock timeout (``Limits.timeout_seconds``) after which the whole process
  group is killed (the leader is reaped only after the kill, so its group id cannot
  be reused meanwhile).

Needs Debian ``libreoffice-writer-nogui`` (``soffice``) and ``util-linux``
(``prlimit``, ``setpriv``, ``unshare``; essential on Debian).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Final

from mailbot.errors import FormError
from mailbot.forms.model import Limits

__all__ = ["CONVERTIBLE", "MEMORY_LIMIT_BYTES", "to_docx"]

log = logging.getLogger(__name__)

CONVERTIBLE: Final = frozenset({"doc", "rtf", "wordml", "wordperfect"})
"""Sniffed formats that ``to_docx`` accepts."""

MEMORY_LIMIT_BYTES: Final = 2 * 1024**3
"""RLIMIT_AS for LibreOffice: it needs ~0.5 GB to start; the rest is for big documents."""

MAX_WRITE_BYTES: Final = 128 * 1024**2
"""RLIMIT_FSIZE for LibreOffice: keeps a crafted file from filling the disk with temp
files; what is accepted as output is ``Limits.max_decompressed_bytes``."""

# sniffed format -> (fixed input file name, LibreOffice import filter)
_INPUT: Final[dict[str, tuple[str, str]]] = {
    "doc": ("input.doc", ""),  # filter chosen from the FIB: Word 97 vs Word 6/95
    "rtf": ("input.rtf", "Rich Text Format"),
    "wordml": ("input.xml", "MS Word 2003 XML"),
    "wordperfect": ("input.wpd", "WordPerfect"),
}
_OUTPUT_FILTER: Final = "docx:MS Word 2007 XML"
_INSTALL_HINT: Final = (
    "LibreOffice is not installed (no 'soffice' on PATH): "
    "ask the administrator to install the Debian package libreoffice-writer-nogui"
)
_PRLIMIT_HINT: Final = (
    "'prlimit' is missing: "
    "ask the administrator to install the Debian package util-linux"
)
_POLL_SECONDS: Final = 0.02
_CRASH: Final = re.compile(r"Fatal exception: Signal (\d+)")
_MAX_REASON: Final = 300
_MAX_LOG_BYTES: Final = 65536

# Profile settings written before LibreOffice starts. Macros off; Writer's link update
# mode 0 = never, so a document cannot pull local files or URLs into its text.
_PROFILE_SETTINGS: Final = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Common/Security/Scripting">\
<prop oor:name="DisableMacrosExecution" oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting">\
<prop oor:name="MacroSecurityLevel" oor:op="fuse"><value>3</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting">\
<prop oor:name="BlockUntrustedRefererLinks" oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Writer/Content/Update">\
<prop oor:name="Link" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Misc">\
<prop oor:name="FirstRun" oor:op="fuse"><value>false</value></prop></item>
</oor:items>
"""


def to_docx(data: bytes, fmt: str, limits: Limits) -> bytes:
    """Convert ``data`` (sniffed as ``fmt``, one of ``CONVERTIBLE``) to .docx bytes.

    Raises ``FormError`` with a reason fit for ``unreadable``: LibreOffice missing, an
    encrypted document, a timeout, a failed conversion or an oversized result.
    """
    if fmt not in _INPUT:
        raise FormError(f"{fmt} cannot be converted to docx")
    name, in_filter = _INPUT[fmt]
    if fmt == "doc":
        in_filter = _doc_filter(data)
    elif fmt == "wordml" and _declares_dtd(data):
        raise FormError("Word 2003 XML declares a DTD (entity expansion / XXE attempt)")
    soffice = shutil.which("soffice")
    if soffice is None:
        raise FormError(_INSTALL_HINT)
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        raise FormError(_PRLIMIT_HINT)

    work = Path(tempfile.mkdtemp(prefix="mailbot-convert-"))
    try:
        src = work / name
        src.write_bytes(data)
        out_dir = work / "out"
        profile = work / "profile"
        (profile / "user").mkdir(parents=True)
        (profile / "user" / "registrymodifications.xcu").write_text(
            _PROFILE_SETTINGS, encoding="utf-8"
        )
        command = [
            prlimit,
            f"--as={MEMORY_LIMIT_BYTES}",
            f"--cpu={max(1, int(limits.timeout_seconds) + 1)}",
            f"--fsize={max(limits.max_decompressed_bytes, MAX_WRITE_BYTES)}",
            "--core=0",
            "--",
            *_isolation_prefix(),
            soffice,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--invisible",
            "--norestore",
            "--nolockcheck",
            "--nodefault",
            "--nologo",
            *([f"--infilter={in_filter}"] if in_filter else []),
            "--convert-to",
            _OUTPUT_FILTER,
            "--outdir",
            str(out_dir),
            str(src),
        ]
        output = _run(command, work, limits.timeout_seconds)
        result = out_dir / (src.stem + ".docx")
        try:
            size = result.stat().st_size
        except FileNotFoundError:
            raise FormError(
                f"LibreOffice could not convert the {fmt} document"
                + (f": {output}" if output else "")
            ) from None
        if size > limits.max_decompressed_bytes:
            raise FormError(
                f"converted document is larger than {limits.max_decompressed_bytes} bytes"
            )
        return result.read_bytes()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(command: list[str], work: Path, timeout: float) -> str:
    """Run LibreOffice; return its last output lines; ``FormError`` on timeout.

    The leader is waited for without reaping it (``WNOWAIT``) so that ``killpg`` can
    never hit a recycled group id; the kill also takes stragglers after a normal exit.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "TMPDIR": str(work),
        "LANG": "C.UTF-8",
        "SAL_USE_VCLPLUGIN": "svp",
    }
    log_path = work / "soffice.log"
    started = time.monotonic()
    with log_path.open("wb") as log_file:
        try:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=work,
                env=env,
                start_new_session=True,
            )
        except OSError as e:
            raise FormError(f"cannot start LibreOffice: {e}") from e
        timed_out = False
        try:
            while not _exited(proc.pid):
                if time.monotonic() - started > timeout:
                    timed_out = True
                    break
                time.sleep(_POLL_SECONDS)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # the group is already gone
            proc.wait()
    log.debug(
        "soffice exit %s after %.2f s", proc.returncode, time.monotonic() - started
    )
    if timed_out:
        raise FormError(f"document conversion timed out after {timeout:g} s")
    with log_path.open("rb") as fh:
        return _summary(fh.read(_MAX_LOG_BYTES))


def _exited(pid: int) -> bool:
    """Whether the child has exited, leaving it unreaped (a zombie keeps its group id)."""
    try:
        return (
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        )
    except ChildProcessError:
        return True  # already reaped elsewhere (e.g. SIGCHLD ignored)


def _summary(output: bytes) -> str:
    """LibreOffice's own error lines, without the noise it prints on every start.

    A crash prints a stack dump; the reason keeps only the signal's name.
    """
    text = output.decode("utf-8", "replace")
    crash = _CRASH.search(text)
    if crash:
        try:
            name = signal.Signals(int(crash.group(1))).name
        except ValueError:
            name = f"signal {crash.group(1)}"
        return f"LibreOffice crashed ({name})"
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and "javaldx" not in line and not line.startswith("convert ")
    ]
    return " ".join(lines)[:_MAX_REASON]


@functools.cache
def _isolation_prefix() -> tuple[str, ...]:
    """Wrappers that tie LibreOffice's lifetime to ours and cut it off the network.

    ``setpriv --pdeathsig`` kills the wrapper chain if this process dies mid-conversion
    (a daemon restart, the reader process killed by its own deadline); ``unshare
    --pid --fork --kill-child`` makes that take every LibreOffice process with it (the
    namespace's first process dying ends the namespace), and ``--net`` gives it no
    network. Unprivileged user namespaces may be disabled (some containers, hardened
    kernels): then only the profile settings keep LibreOffice from fetching links.
    """
    prefix: tuple[str, ...] = ()
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        prefix = (setpriv, "--pdeathsig", "KILL", "--")
    unshare = shutil.which("unshare")
    if unshare is not None:
        namespaces = (
            unshare,
            "--net",
            "--pid",
            "--fork",
            "--kill-child",
            "--map-root-user",
            "--",
        )
        try:
            probe = subprocess.run(
                [*namespaces, "true"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            pass  # fall through to the warning
        else:
            if probe.returncode == 0:
                return prefix + namespaces
    log.warning("cannot isolate LibreOffice from the network: unshare failed")
    return prefix


def _declares_dtd(data: bytes) -> bool:
    """WordML never carries a DOCTYPE; one means an XXE / entity-expansion attempt."""
    return b"<!DOCTYPE" in data or "<!DOCTYPE".encode("utf-16-le") in data


# --------------------------------------------------------------------------- .doc

_FIB_ENCRYPTED: Final = 0x0100  # fEncrypted, same bit in Word 6/95 and 97+ FIBs
_WORD97_IDENT: Final = 0xA5EC
_WORD95_IDENT: Final = 0xA5DC  # Word 6.0 and Word 95
_OLE2: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_NO_SECTOR: Final = 0xFFFFFFFA  # ids at or above this end a chain (or are special)


def _doc_filter(data: bytes) -> str:
    """The import filter for a .doc, after refusing a password-protected one.

    LibreOffice would otherwise stop at the password prompt (headless: "source file
    could not be loaded") or wait for input, so the FIB's encryption flag is checked
    first. A compound file too damaged to walk is left to LibreOffice (and the timeout).
    """
    fib = _word_stream_head(data)
    if fib is None or len(fib) < 12:
        return ""  # let LibreOffice detect the type
    ident, _nfib = struct.unpack_from("<HH", fib, 0)
    (flags,) = struct.unpack_from("<H", fib, 0x0A)
    if ident in (_WORD97_IDENT, _WORD95_IDENT) and flags & _FIB_ENCRYPTED:
        raise FormError("encrypted document (password-protected .doc)")
    if ident == _WORD97_IDENT:
        return "MS Word 97"
    if ident == _WORD95_IDENT:
        return "MS Word 95"
    return ""


def _word_stream_head(data: bytes) -> bytes | None:
    """The first 64 bytes of the compound file's WordDocument stream, or None.

    A minimal, bounded walk of the OLE2 structures (header, FAT, directory, first
    sector of the stream): enough to read the FIB flags without a new dependency.
    """
    if len(data) < 512 or not data.startswith(_OLE2):
        return None
    sector_shift, mini_shift = struct.unpack_from("<HH", data, 0x1E)
    if sector_shift not in (9, 12) or mini_shift != 6:
        return None
    size = 1 << sector_shift
    n_sectors = len(data) // size - 1
    (n_fat, first_dir, _, mini_cutoff, _, _, first_difat, n_difat) = struct.unpack_from(
        "<8I", data, 0x2C
    )

    def sector(i: int) -> bytes:
        return data[(i + 1) * size : (i + 2) * size] if i < n_sectors else b""

    # FAT sector ids: 109 in the header, the rest in the DIFAT chain.
    n_fat = min(n_fat, n_sectors)
    fat_ids = list(struct.unpack_from("<109I", data, 0x4C))
    difat, seen = first_difat, 0
    while difat < _NO_SECTOR and seen < n_difat and len(fat_ids) < n_fat:
        block = sector(difat)
        if len(block) < size:
            return None
        ids = struct.unpack(f"<{size // 4}I", block)
        fat_ids += ids[:-1]
        difat, seen = ids[-1], seen + 1
    fat_bytes = b"".join(sector(i) for i in fat_ids[:n_fat] if i < _NO_SECTOR)
    fat = struct.unpack(
        f"<{len(fat_bytes) // 4}I", fat_bytes[: len(fat_bytes) // 4 * 4]
    )

    def chain(start: int) -> list[int]:
        out: list[int] = []
        while start < _NO_SECTOR and start < len(fat) and len(out) <= n_sectors:
            out.append(start)
            start = fat[start]
        return out

    directory = b"".join(sector(i) for i in chain(first_dir))
    n_entries = len(directory) // 128
    if n_entries == 0 or directory[0x42] != 5:  # entry 0 must be the root storage
        return None

    def entry(i: int) -> tuple[int, ...]:
        """Name length, type, left/right sibling, child, start sector, stream size."""
        off = i * 128
        return struct.unpack_from(
            "<HBxIII", directory, off + 0x40
        ) + struct.unpack_from("<II", directory, off + 0x74)

    root_start = entry(0)[5]
    # Only a WordDocument stream directly in the root storage makes a .doc (an
    # embedded document's stream, e.g. in an OLE object, does not): walk the root's
    # children, a red-black tree linked through left/right sibling ids.
    name = "WordDocument".encode("utf-16-le") + b"\0\0"
    stream: tuple[int, int] | None = None
    pending, seen_ids = [entry(0)[4]], set[int]()
    while pending and stream is None:
        i = pending.pop()
        if i >= n_entries or i in seen_ids:
            continue
        seen_ids.add(i)
        name_len, kind, left, right, _, start, length = entry(i)
        if (
            kind == 2
            and name_len == len(name)
            and directory[i * 128 : i * 128 + name_len] == name
        ):
            stream = (start, length)
        pending += [left, right]
    if stream is None:
        return None
    start, length = stream
    if length >= mini_cutoff:
        return sector(start)[:64]
    # A small stream lives in the mini stream (64-byte sectors inside the root's chain).
    offset = start * 64
    root_chain = chain(root_start)
    index = offset // size
    if index >= len(root_chain):
        return None
    within = offset % size
    return sector(root_chain[index])[within : within + 64]
