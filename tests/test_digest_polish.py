"""Issue "English inside the Polish digest": every review reason reads in Polish.

The pipeline records reasons in English (``InboundMessage.reason``, ``; ``-separated
parts); :func:`mailbot.digest.reason_pl` puts them in Polish for the organisers. The
examples below are one per reason pattern, built the way the pipeline builds them
(the real constants and :class:`MessageBudget` where there are some).

What is checked: no English *sentence word* is left. The stop-list is matched as whole
words, case-insensitively, so it catches English prose but not what stays as it is on
purpose — file names (``zgloszenie.pdf``), codes, addresses, config keys
(``default_event``), error class names (``ValueError``: "error" is no whole word there),
header names and values (``Precedence: bulk``), Debian package names, and command
lines in backticks (removed before checking). Messages that libraries give (pdfium,
zipfile, lxml, LibreOffice, tesseract, the database) are kept as the library wrote them
unless they are among the frequent ones translated; the examples use such details
(numbers, class names) where a library message would stand. Names joined by dots,
slashes or hyphens (``word/document.xml``, the folder ``Needs-Review``) are removed too.
"""

from __future__ import annotations

import datetime as dt
import re
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlmodel import select

from mailbot.digest import queue_digests, reason_pl
from mailbot.forms import _UNSUPPORTED
from mailbot.forms.convert import _INSTALL_HINT, _PRLIMIT_HINT
from mailbot.forms.model import Limits
from mailbot.forms.ocr import INSTALL_HINT, _timed_out
from mailbot.mime.budget import MessageBudget
from mailbot.store.tables import InboundMessage, Registration

from tests.conversation import ORGANISER, WARSAW, Conversation, form_docx, mail, settings_for

STOP_WORDS = (
    "the", "is", "was", "are", "not", "no", "with", "from", "for", "and", "of", "but",
    "could", "cannot", "error", "failed", "unreadable", "registration", "registrations", "registered",
    "message", "attachment", "attachments", "review", "sent", "queued", "read", "reply", "answer",
    "document", "file", "password", "encrypted", "damaged", "unknown", "too", "large", "after",
    "took", "place", "withdrawal", "unclear", "event", "address", "corrected", "confirmed",
    "cancelled", "nothing", "changed", "person", "should", "organisers", "automatic", "today",
    "missing", "installed", "ask", "pages", "image", "spent", "budget",
)
"""English words that Polish reasons never contain. Not listed: words Polish shares
(to, a, on, by, limit, administrator, PDF, OCR) and "mail" (a whole word inside "e-mail")."""
_STOP = re.compile(r"\b(?:" + "|".join(STOP_WORDS) + r")\b", re.IGNORECASE)
_CODE_SPAN = re.compile(r"`[^`]*`")
_PATH = re.compile(r"\w+(?:[-./]\w+)+")
"""Names joined by dots, slashes or hyphens: files and paths (``word/document.xml``),
folders (``Needs-Review``), headers (``Auto-Submitted``), packages: not prose."""


def english_in(text: str) -> list[str]:
    return _STOP.findall(_PATH.sub("", _CODE_SPAN.sub("", text)))


LIMITS = Limits()
CODE = "K7Q2M6XA4B"
OTHER = "P3W8N2ZC5D"


def _budget_notes() -> list[str]:
    """The per-message budget notes, from MessageBudget itself."""
    now = [0.0]
    many = MessageBudget(max_documents=2, seconds=60, max_scans=1, clock=lambda: now[0])
    many.documents = 2
    slow = MessageBudget(max_documents=10, seconds=30, max_scans=1, clock=lambda: now[0])
    slow.start()
    slow.spent("pdf", "text")
    now[0] = 31.0
    scans = MessageBudget(max_documents=10, seconds=60, max_scans=1)
    scans.spent("image", "ocr")
    scans.scan_refused("image")
    scans.scan_refused("image")
    same = MessageBudget(max_documents=10, seconds=60, max_scans=1)
    same.duplicate("x")
    same.duplicate("x")
    notes = [many.refusal(), slow.refusal(), *scans.notes(), same.duplicates_note()]
    assert all(n is not None for n in notes)
    return [n for n in notes if n is not None]


def _file(reason: str, name: str = "zgloszenie.pdf") -> str:
    """How mailbot.ingest._no_form words an unreadable attachment."""
    return f"cannot read {name}: {reason}"


FORM_REASONS = [
    # mailbot.forms.parse_bytes / parse_file
    f"file is larger than {LIMITS.max_file_bytes} bytes",
    "label vocabulary unavailable: /etc/mailbot/labels.toml: [fields]",
    "document nests too deeply",
    "document needs too much memory",  # also mailbot.forms.worker
    "damaged document (KeyError: 'word/_rels/document.xml.rels')",
    "cannot read document (IndexError: 3)",
    "cannot read file: Permission denied",  # strerror of the OS, in English: see below
    *_UNSUPPORTED.values(),
    "rtf is not supported yet",
    "no labels of the registration form found",
    "unreadable",  # mailbot.ingest: an unreadable form without a reason
    # mailbot.forms.worker
    "the reader process died (exit code -9)",
    "reading the document took longer than 12.5 s",
    "cannot start a reader process: [Errno 11] EAGAIN",
    # mailbot.forms.convert
    "wordperfect cannot be converted to docx",
    "Word 2003 XML declares a DTD (entity expansion / XXE attempt)",
    _INSTALL_HINT,
    _PRLIMIT_HINT,
    "LibreOffice could not convert the doc document",
    "LibreOffice could not convert the doc document: LibreOffice crashed (SIGSEGV)",
    f"converted document is larger than {LIMITS.max_decompressed_bytes} bytes",
    "cannot start LibreOffice: [Errno 2] soffice",
    f"document conversion timed out after {LIMITS.timeout_seconds:g} s",
    "encrypted document (password-protected .doc)",
    # mailbot.forms.docx, .odt
    "word/document.xml is not a WordprocessingML document",
    "docx package has no main document part",
    "odt package has no content.xml",
    "password-protected odt",
    "flat odt is too large",
    "odt has no text body",
    # mailbot.forms.pdf, .pdf_objects, .image
    "encrypted PDF: needs a password",
    "damaged PDF: Failed to load document (PDFium: Data format error).",
    "damaged PDF: cannot load page 3",
    "PDF has no pages",
    f"PDF has 250 pages (limit {LIMITS.max_pdf_pages})",
    "PDF page has too many objects",
    "PDF page has more than 200000 text runs",
    f"PDF took longer than {LIMITS.timeout_seconds:.0f} s to read",
    f"image has 40 pages (limit {LIMITS.max_pdf_pages})",
    f"image too large: 90000000 pixels (limit {LIMITS.max_image_pixels})",
    f"image too large: 12000×9000 = 108000000 pixels (limit {LIMITS.max_image_pixels})",
    "damaged or unsupported image",
    "damaged image: empty",
    "damaged image: OSError: -2",
    # mailbot.forms.ocr
    _timed_out(LIMITS),
    "OCR failed: 1",
    # mailbot.forms.safety
    "damaged zip package: File is not a zip file",
    "damaged zip package: Bad magic number for central directory",
    f"zip package has 5000 entries (limit {LIMITS.max_zip_entries})",
    "encrypted zip package",
    "zip entry 'word/document.xml' is compressed suspiciously well (zip bomb?)",
    f"zip package would unpack to 900000000 bytes (limit {LIMITS.max_decompressed_bytes})",
    "zip package has no 'word/document.xml'",
    "cannot unpack 'word/document.xml': -3",
    "zip entry 'word/document.xml' is larger than declared",
    "word/document.xml declares a DTD (entity expansion / XXE attempt)",
    "content.xml is not well-formed XML: StartTag, line 1, column 97",
    "word/document.xml is empty",
    "word/document.xml nests elements deeper than 256",
    "document has more than 20000 paragraphs",
    "document has more than 5000 table rows",
]

REASONS = [
    # mailbot.ingest: no form, or one that could not be read
    "no registration form attached; queued no_form → anonim@example.com",
    "blank form returned unfilled; queued no_form → anonim@example.com",
    *(_file(r) for r in FORM_REASONS),
    # the OCR install hint has "; " inside: one part each side
    _file(INSTALL_HINT.format(what="the tesseract program is not installed"), "skan.jpg"),
    _file(INSTALL_HINT.format(what="Tesseract's Polish model is missing"), "skan.jpg"),
    _file(INSTALL_HINT.format(what="tesseract does not run (PermissionError: 13)"), "skan.jpg"),
    f"{_file('unreadable', 'a.pdf')}; {_file('encrypted PDF: needs a password', 'b.pdf')}",
    f"message about {CODE}, {OTHER} without a form: for the organisers to read; "
    f"pytanie „czy jest parking?” – przekazane organizatorom, nadawca dostał potwierdzenie; "
    f"queued question_received → sekretariat@brzeg.example.pl, forwarded_question → opole@partnerstwa.example.pl",
    "no no_form reply: no address we may answer",
    "no no_form to anonim@example.com: already 5 automatic mails today",
    "message too large (60000000 bytes); not opened",
    "reply to the organisers' daily digest: for a person, not answered",
    # the per-message budget
    *_budget_notes(),
    # forms
    f"zgloszenie.docx: the form names no known event and no default_event is configured",
    f"zgloszenie.docx: corrects {CODE} after torun-2016 took place; not applied",
    f"late registration {CODE} for opole-2016 (registration closed on 2016-04-14): stored, not seated — "
    "organisers decide; queued closed → urzad@kamiennik.example.pl",
    f"registered {CODE} for opole-2016 (incomplete: 2 problem(s)) (1 on the waiting list) "
    "(2 e-mail address(es) to confirm); queued incomplete → a@b.pl, waitlist → c@d.pl",
    f"corrected {CODE} for opole-2016; queued updated → a@b.pl",
    f"no reply: auto_reply (Auto-Submitted: auto-replied); registered {CODE} for opole-2016",
    "no reply: auto_reply (Auto-Submitted: (empty))",
    "no reply: auto_reply (X-Autoreply: yes)",
    "no reply: auto_reply (X-Apple-Action: vacation (iCloud vacation reply))",
    "no reply: auto_reply (subject of an automatic reply: 'Odpowiedź automatyczna: urlop')",
    "no reply: auto_reply (X-Auto-Response-Suppress: All (Exchange automatic reply or system mail; "
    "the sender asks for no automatic answers))",
    "no reply: list (Precedence: bulk)",
    "no reply: list (List-Id: <gminy.lista.example.pl> (mailing list))",
    # withdrawals (mailbot.intent, mailbot.cancellations)
    "unclear: hedged 'chyba nie przyjadę' in body; nothing changed, a person should read it",
    "unclear: substitution 'zamiast mnie' in subject; nothing changed, a person should read it",
    "unclear: withdrawal word 'rezygnacja' in subject without a clear statement; "
    "nothing changed, a person should read it",
    "unclear: withdrawal together with a new registration, a substitution? ('rezygnuję', then 'zgłaszam'); "
    "nothing changed, a person should read it",
    "unclear: withdrawal while someone still attends ('rezygnuję', then 'przyjedzie'); "
    "nothing changed, a person should read it",
    "withdrawal: 'rezygnuję' in body; withdrawal from an unknown sender, but no open registration is linked to it",
    "withdrawal: 'rezygnuję' in body; withdrawal from jan@gmina.example.pl, but no open registration is linked to it",
    "withdrawal: 'rezygnuję' in body; withdrawal, but it names nobody on the linked registrations",
    f"withdrawal: 'rezygnuję' in body; withdrawal from jan@gmina.example.pl could mean any of 2 registrations "
    f"({CODE}, {OTHER})",
    f"withdrawal: 'rezygnuję' in body; cancelled Jan Nowak, (no name) on {CODE}; queued cancelled → a@b.pl",
    # unconfirmed addresses (mailbot.doubts, mailbot.address_replies)
    f"e-mail address(es) on {CODE} still unconfirmed",
    f"answer about an unconfirmed e-mail address on {CODE} is unclear: a question in the reply; "
    "nothing changed, a person should read it",
    f"answer about an unconfirmed e-mail address on {CODE} is unclear: hedged ('chyba')",
    f"answer about an unconfirmed e-mail address on {CODE} is unclear: says 'błędny' but gives no other address",
    f"answer about an unconfirmed e-mail address on {CODE} is unclear: 'nie' in an answer about the address",
    f"answer about an unconfirmed e-mail address on {CODE} is unclear: "
    "repeats the address without saying whether it is right",
    f"answer about an unconfirmed e-mail address on {CODE} is unclear: "
    "'tak' after we asked whether jan@gmina.pl meant jan@gmina.example.pl: could mean either",
    f"answer about an unconfirmed e-mail address on {CODE} is unclear: 'nie' next to jan@gmina.example.pl",
    f"answer about an unconfirmed e-mail address on {CODE} is unclear: cannot tell whose address x@y.pl is",
    f"answer about an unconfirmed e-mail address on {CODE} is unclear: two addresses for Jan Nowak",
    f"confirmed the e-mail of Jan Nowak by its own message on {CODE}; "
    f"{CODE}: event gdansk-2016 is not configured; no mail",
    f"corrected the e-mail of (no name) (corrected (jan@gmina.pl → jan@gmina.example.pl)) on {CODE}; "
    f"{CODE}: opole-2016 took place on 2016-04-18; no mail",
    f"confirmed the e-mail of Jan Nowak (confirmed ('tak')) on {CODE}; queued updated → a@b.pl",
    # organiser commands (mailbot.organiser_commands)
    "organiser commands by opole@partnerstwa.example.pl refused: brak uprawnień; "
    "no reply: opole@partnerstwa.example.pl is not an address we answer",
    "organiser commands by opole@partnerstwa.example.pl refused: brak uprawnień; "
    "no command_result to opole@partnerstwa.example.pl: daily cap reached",
    "organiser commands by opole@partnerstwa.example.pl: PRZYJMIJ 12: wykonane; "
    "no reply: no sender is not an address we answer",
    # failures (mailbot.ingest._give_up, _unstorable) and reprocessing
    "internal error while processing: ValueError: 7 (failed 3 times); "
    "`mailbot review reprocess` runs it again once the cause is fixed",
    "could not be stored: DataError: 22001 (failed 3 times); "
    "`mailbot review reprocess` runs it again once the cause is fixed",
    "could not be stored: DataError: 22001; recorded without its headers — read the raw mail, "
    "`mailbot review reprocess` runs it again once the cause is fixed",
    "no registration form attached; queued no_form → a@b.pl [reprocessed 2016-04-02 10:15; was needs_review]",
]


@pytest.mark.parametrize("reason", REASONS)
def test_every_review_reason_reads_in_polish(reason: str) -> None:
    polish = reason_pl(reason)
    assert polish is not None
    assert english_in(polish) == [], polish
    # every part was recognised: only those the pipeline writes in Polish stay as they were
    kept = set(reason.split("; ")) & set(polish.split("; "))
    assert all(part.startswith(("pytanie „", "brak adresów")) for part in kept), kept


def test_technical_details_are_kept_inside_the_polish_sentence() -> None:
    assert reason_pl(_file("encrypted PDF: needs a password")) == (
        "nie udało się odczytać pliku zgloszenie.pdf: PDF zaszyfrowany hasłem – nie da się go odczytać"
    )
    assert reason_pl("internal error while processing: ValueError: 7 (failed 3 times)") == (
        "błąd wewnętrzny podczas przetwarzania: ValueError: 7 (nieudane próby: 3)"
    )
    polish = reason_pl(_file("zip entry 'word/document.xml' is compressed suspiciously well (zip bomb?)", "a.docx"))
    assert polish is not None and "'word/document.xml'" in polish and "bomba zip" in polish
    assert reason_pl(_file(_INSTALL_HINT, "a.doc")) == (
        "nie udało się odczytać pliku a.doc: brak programu LibreOffice (soffice) – administrator musi zainstalować"
        " pakiet Debiana libreoffice-writer-nogui"
    )
    # a library message nobody translated stays as it came, after the Polish words
    assert reason_pl(_file("damaged PDF: something odd")) == (
        "nie udało się odczytać pliku zgloszenie.pdf: uszkodzony PDF (something odd)"
    )


def test_the_stop_list_catches_english() -> None:
    assert english_in("cannot read zgloszenie.pdf: the file is not a form")
    assert english_in("uszkodzony PDF (Failed to load document)") == ["Failed", "document"]
    assert not english_in("ValueError: 7; `mailbot review reprocess`; default_event; e-mail; no_form")


# --- end to end ----------------------------------------------------------------------


def at(day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(2016, 4, day, hour, minute, tzinfo=WARSAW)


def _encrypted_pdf() -> bytes:
    """A one-page PDF under the standard security handler with a user password."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        b"<< /Filter /Standard /V 1 /R 2 /O <" + b"ab" * 32 + b"> /U <" + b"cd" * 32 + b"> /P -4 >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Encrypt 4 0 R /ID [<%s><%s>] >>\n" % (
        len(objects) + 1, b"01" * 16, b"01" * 16)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _with_file(sender: str, subject: str, body: str, when: dt.datetime, data: bytes, filename: str,
               mime: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ORGANISER
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<{filename}.{int(when.timestamp())}@{sender.split('@')[1]}>"
    msg.set_content(body)
    maintype, subtype = mime.split("/")
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


TRUNCATED_DOCX = Path(__file__).parent / "data" / "corpus" / "docx" / "tika-testWORD_truncated.docx"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def test_the_digest_review_section_has_no_english(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    opole = conv.settings.event("opole-2016")
    conv.receive(mail("sekretariat@brzeg.example.pl", "Zgłoszenie na konferencję", "W załączeniu zgłoszenie.",
                      when=at(1), form=form_docx(opole, [("Katarzyna Wróbel", "k.wrobel@brzeg.example.pl")],
                                                 institution="Urząd Miejski w Brzegu")))
    conv.run(at(1, 9, 5))
    # An encrypted PDF and a broken docx from people not registered; a mail without a
    # form from a stranger; a question from a registered sender; a form after the deadline.
    conv.receive(_with_file("wojt@kamiennik.example.pl", "Zgłoszenie", "W załączeniu zgłoszenie.", at(2),
                            _encrypted_pdf(), "zgloszenie.pdf", "application/pdf"))
    conv.receive(_with_file("gmina@lubsza.example.pl", "Formularz", "Przesyłam formularz.", at(2, 9, 10),
                            TRUNCATED_DOCX.read_bytes(), "formularz.docx", DOCX))
    conv.receive(mail("anonim@example.com", "Konferencja", "Dzień dobry,\nproszę o informacje.\nPozdrawiam",
                      when=at(2, 9, 20)))
    conv.receive(mail("sekretariat@brzeg.example.pl", "Parking", "Czy jest parking dla uczestników?",
                      when=at(2, 9, 30)))
    conv.run(at(2, 10))
    conv.receive(mail("urzad@olesno.example.pl", "Zgłoszenie", "W załączeniu zgłoszenie.", when=at(15, 8),
                      form=form_docx(opole, [("Zofia Późna", "zofia@olesno.example.pl")],
                                     institution="Starostwo Powiatowe w Oleśnie")))
    conv.run(at(15, 9))

    app = conv.app(at(16, 7))
    with app.session() as s:
        reasons = [m.reason or "" for m in s.exec(select(InboundMessage)).all() if m.outcome == "needs_review"]
        assert s.exec(select(Registration)).all()
        results = queue_digests(s, app.settings, app.templates, app.blobs, at(16, 7))
        s.commit()
    assert len(reasons) == 5, reasons
    joined = "\n".join(reasons)
    for english in ("encrypted PDF", "damaged zip package", "no registration form attached", "without a form",
                    "late registration"):
        assert english in joined  # the situations the digest must put in Polish
    result = next(r for r in results if r.address == "opole@partnerstwa.example.pl")
    assert result.rendered is not None
    text = result.rendered.text
    section = text[text.index("DO PRZEJRZENIA"):text.index("NOWE ZGŁOSZENIA")]
    assert "DO PRZEJRZENIA (5" in section
    assert section.count("Powód: ") == 5
    assert "PDF zaszyfrowany hasłem" in section and "to nie jest poprawne archiwum zip" in section
    assert english_in(section) == [], section
    conv.app(at(16, 7)).engine.dispose()
