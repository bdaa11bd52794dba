"""Read registration forms from attachment bytes.

``parse_bytes`` never raises: whatever arrives (a damaged zip, an encrypted PDF, a
zip bomb, a photo) ends as a ``FormData`` whose ``status`` and ``reason`` say why,
so one hostile attachment cannot stop the mailbox. The format is sniffed from the
bytes; docx/odt/pdf readers build a neutral ``Document`` that ``extract`` reads.
"""

from __future__ import annotations

import logging
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

from lxml import etree

from mailbot.errors import ConfigError, FormError
from mailbot.forms.convert import CONVERTIBLE
from mailbot.forms.labels import Vocabulary, default_vocabulary, load_vocabulary
from mailbot.forms.model import EventRef, FormData, Limits
from mailbot.forms.sniff import sniff

__all__ = [
    "DEFAULT_LIMITS",
    "Vocabulary",
    "load_vocabulary",
    "parse_bytes",
    "parse_file",
]

log = logging.getLogger(__name__)

DEFAULT_LIMITS = Limits()

_DAMAGED: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    UnicodeError,
    etree.LxmlError,
)
"""What a bit-flipped zip or XML part raises from deep inside zipfile/lxml."""

_UNSUPPORTED = {
    "msg": "Outlook message, not a document (its attachments are read by the mail pipeline)",
    "tnef": "winmail.dat (TNEF), not a document (its attachments are read by the mail pipeline)",
    "zip": "zip archive, not a document (its files are read by the mail pipeline)",
    "ole2": "password-protected or unknown OLE2 document",
    "unknown": "unknown file format",
}


def parse_bytes(
    data: bytes,
    filename: str,
    events: Sequence[EventRef],
    limits: Limits = DEFAULT_LIMITS,
    *,
    vocabulary: Vocabulary | None = None,
) -> FormData:
    """Parse one attachment; never raises (failures become ``unreadable`` with a reason).

    ``vocabulary`` defaults to the packaged config/labels.toml; the app passes the
    admin's (``load_vocabulary(path)``).
    """
    fmt: str | None = None
    try:
        fmt = sniff(data)
        if len(data) > limits.max_file_bytes:
            return _unreadable(
                filename, fmt, f"file is larger than {limits.max_file_bytes} bytes"
            )
        vocab = vocabulary if vocabulary is not None else default_vocabulary()
        return _parse(data, filename, fmt, events, limits, vocab)
    except FormError as e:
        return _unreadable(filename, fmt, str(e) or type(e).__name__)
    except ConfigError as e:
        log.error("cannot parse %s: %s", filename, e)
        return _unreadable(filename, fmt, f"label vocabulary unavailable: {e}")
    except RecursionError:
        return _unreadable(filename, fmt, "document nests too deeply")
    except MemoryError:
        return _unreadable(filename, fmt, "document needs too much memory")
    except _DAMAGED as e:
        # A damaged package or part the readers' own checks let through: ordinary
        # unreadable input, worth one line, not a traceback.
        log.info("cannot read %s: %s: %s", filename, type(e).__name__, e)
        return _unreadable(filename, fmt, f"damaged document ({type(e).__name__}: {e})")
    except Exception as e:  # the boundary: no input may crash the caller
        log.exception("unexpected error parsing %s", filename)
        return _unreadable(
            filename, fmt, f"cannot read document ({type(e).__name__}: {e})"
        )


def parse_file(
    path: Path,
    events: Sequence[EventRef],
    limits: Limits = DEFAULT_LIMITS,
    *,
    vocabulary: Vocabulary | None = None,
) -> FormData:
    """``parse_bytes`` on a file's content (``file`` = the path's name); never raises."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            with path.open("rb") as fh:
                head = fh.read(8192)
            return _unreadable(
                path.name,
                sniff(head),
                f"file is larger than {limits.max_file_bytes} bytes",
            )
        data = path.read_bytes()
    except OSError as e:
        return _unreadable(path.name, None, f"cannot read file: {e.strerror or e}")
    return parse_bytes(data, path.name, events, limits, vocabulary=vocabulary)


def _parse(
    data: bytes,
    filename: str,
    fmt: str,
    events: Sequence[EventRef],
    limits: Limits,
    vocab: Vocabulary,
) -> FormData:
    # Imported here so that sniffing and unsupported formats stay cheap to import.
    from mailbot.forms.extract import build_form

    if fmt == "docx":
        from mailbot.forms.docx import read_docx

        doc = read_docx(data, limits)
    elif fmt == "odt":
        from mailbot.forms.odt import read_odt

        doc = read_odt(data, limits)
    elif fmt == "pdf":
        from mailbot.forms.pdf import read_pdf

        doc = read_pdf(data, limits, vocab)
    elif fmt == "image":
        from mailbot.forms.ocr import read_image

        doc = read_image(data, limits, vocab)
    elif fmt in CONVERTIBLE:
        from mailbot.forms.convert import to_docx
        from mailbot.forms.docx import read_docx

        doc = read_docx(to_docx(data, fmt, limits), limits)
    else:
        return _unreadable(
            filename, fmt, _UNSUPPORTED.get(fmt, f"{fmt} is not supported yet")
        )
    return build_form(
        doc,
        file=filename,
        fmt=fmt,
        events=events,
        vocab=vocab,
        max_participants=limits.max_participants,
    )


def _unreadable(filename: str, fmt: str | None, reason: str) -> FormData:
    return FormData(file=filename, status="unreadable", format=fmt, reason=reason)
