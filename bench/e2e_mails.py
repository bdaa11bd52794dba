"""Realistic registration mails for bench/e2e.py, made lazily, one sender each.

Mail ``i`` carries one filled form whose one participant is the sender (a unique
name and address for every ``i``), for the event whose header is given. The form's
producer and layout are picked from the project's own generators, in fixed shares:

docx 70 %   ``make_docx`` tables (15), ``make_docx`` content controls (15), hand-built
            Word copies (``tests/forms/test_variants.Copy``) as tables in every label
            set (20), as running text (10), with other tick marks (10);
PDF 30 %    text PDFs: reportlab platypus tables with and without a grid (8 + 4), forms
            drawn with other fonts/rules/alignments (``tests/forms/pdfdraw``, 10), the
            fillable form flattened by PDFium (4), values drawn over the blank (4).

LibreOffice-printed PDFs (``pdf-word``) are left out: ~1 s a document.

:func:`stream` yields ``(i, bytes)`` in order, made by a small process pool (a docx
costs ~30 ms, a PDF 7–35 ms), so 10,000 mails never sit in memory at once.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import random
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from email.utils import format_datetime

from mailbot.forms.blank import DOCX_MIME, EventHeader, FilledValues, header_line, make_docx, make_pdf
from mailbot.forms.model import Consents, Participant
from tests.forms import pdfdraw, pdfgen
from tests.forms.test_variants import LABEL_SETS, TICKS, Copy, heading

ORGANISER = "zgloszenia@partnerstwa.example.pl"

FIRST = [
    "Anna", "Maria", "Katarzyna", "Małgorzata", "Agnieszka", "Barbara", "Ewa", "Krystyna", "Elżbieta",
    "Zofia", "Joanna", "Beata", "Żaneta", "Bożena", "Dorota", "Jadwiga", "Halina", "Iwona", "Grażyna",
    "Urszula", "Piotr", "Krzysztof", "Andrzej", "Tomasz", "Paweł", "Jan", "Michał", "Marcin", "Grzegorz",
    "Józef", "Łukasz", "Adam", "Zbigniew", "Jerzy", "Tadeusz", "Mateusz", "Dariusz", "Mariusz",
    "Wojciech", "Ryszard",
]  # fmt: skip
SURNAMES = [
    "Nowak", "Wójcik", "Kaczmarek", "Mazur", "Krawczyk", "Zając", "Król", "Wieczorek", "Wróbel", "Stępień",
    "Dudek", "Pawlak", "Walczak", "Michalak", "Sikora", "Baran", "Szewczyk", "Duda", "Kubiak", "Wilk",
    "Lis", "Mazurek", "Kołodziej", "Sobczak", "Kaczor", "Bąk", "Wąs", "Kowal", "Zięba", "Żak", "Kurek",
    "Bielak", "Gil", "Jaworek", "Cieślak", "Kozioł", "Rogala", "Kasprzak", "Adamczyk", "Leśniak",
    "Chmiel", "Pietrzak", "Urban", "Marczak", "Szulc", "Kruk", "Ślązak", "Łęcki", "Dźwigaj", "Ćwik",
]  # fmt: skip
DOMAINS = [
    "powiatstrzelecki.pl", "lubniany.pl", "glogowek.pl", "dabrowa-opolska.pl", "opolskie.pl", "nysa.pl",
    "brzeg.pl", "kluczbork.pl", "um.opole.pl", "gmina-prudnik.pl", "olesno.pl", "namyslow.pl",
]  # fmt: skip
SUBJECTS = ["Zgłoszenie", "Formularz zgłoszeniowy", "zgłoszenie na konferencję", "Konferencja Opole – zgłoszenie",
            "RE: Zaproszenie na konferencję", "Zgłoszenie uczestnictwa"]  # fmt: skip
BODIES = [
    "Dzień dobry,\n\nw załączeniu przesyłam wypełniony formularz zgłoszeniowy.\n\nZ poważaniem\n{name}",
    "W załączeniu zgłoszenie.",
    "Szanowni Państwo,\nprzesyłam zgłoszenie na konferencję.\nPozdrawiam,\n{name}\n{institution}",
    "Dzień dobry, zgłaszam swój udział w konferencji. Formularz w załączniku.\n--\n{name}",
]
_ASCII = str.maketrans("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ", "acelnoszzACELNOSZZ")

# (producer, share in %): shares add up to 100.
PRODUCERS: list[tuple[str, int]] = [
    ("docx/make_docx-table", 15),
    ("docx/make_docx-controls", 15),
    ("docx/copy-table", 20),
    ("docx/copy-text", 10),
    ("docx/copy-ticks", 10),
    ("pdf/reportlab-grid", 8),
    ("pdf/reportlab-plain", 4),
    ("pdf/drawn", 10),
    ("pdf/flattened-pdfium", 4),
    ("pdf/drawn-over", 4),
]
_PATTERN = [name for name, share in PRODUCERS for _ in range(share)]
random.Random(13).shuffle(_PATTERN)
_DRAWN_STYLES = [style for _seed, _people, style, _turn in pdfgen.DRAWN]
_LABELS = list(LABEL_SETS.values())
_TICKS = list(TICKS.values())


def producer(i: int) -> str:
    return _PATTERN[i % len(_PATTERN)]


def person(i: int) -> tuple[str, str]:
    """A unique (full name, address) for mail ``i``: 2,000 single surnames, then double ones."""
    first = FIRST[i % len(FIRST)]
    rest = i // len(FIRST)
    surname = SURNAMES[rest % len(SURNAMES)]
    rest //= len(SURNAMES)
    if rest:
        surname += "-" + SURNAMES[(rest - 1) % len(SURNAMES)]
        rest = (rest - 1) // len(SURNAMES)
    name = f"{first} {surname}"
    local = f"{first}.{surname}".translate(_ASCII).lower()
    if rest:  # beyond 100,000 people: a number keeps the address unique
        local += str(rest)
    return name, f"{local}@{DOMAINS[i % len(DOMAINS)]}"


def values(i: int) -> FilledValues:
    name, address = person(i)
    base = pdfgen.values(i, 1)  # institution, position, phone, ticks, remarks from the generator
    p = base.participants[0]
    return replace(
        base,
        participants=[Participant(name, p.position, p.phone, address)],
        consents=Consents(True, base.consents.newsletter),  # an ack needs the data consent
    )


def document(i: int, header: EventHeader) -> tuple[bytes, str, str]:
    """(form bytes, filename, MIME type) of mail ``i``."""
    kind = producer(i)
    v = values(i)
    docx = DOCX_MIME
    if kind == "docx/make_docx-table":
        return make_docx(header, v, style="table"), "zgloszenie.docx", docx
    if kind == "docx/make_docx-controls":
        return make_docx(header, v, style="controls"), "Formularz zgłoszeniowy.docx", docx
    if kind.startswith("docx/copy"):
        copy = Copy(
            header=heading(header_line(header)), institution=v.institution, people=tuple(v.participants),
            layout="text" if kind == "docx/copy-text" else "table", ticked="".join(sorted(v.workshops)),
            remarks=v.remarks, consents=(v.consents.data_processing, v.consents.newsletter),
            signed=v.place_date or "",
        )  # fmt: skip
        if kind == "docx/copy-ticks":
            copy = replace(copy, tick=_TICKS[i % len(_TICKS)])
        else:
            copy = replace(copy, labels=_LABELS[i % len(_LABELS)])
        return copy.docx(), f"zgloszenie_{i % 7}.docx", docx
    if kind == "pdf/reportlab-grid":
        return pdfgen.reportlab_pdf(header, v, grid=True), "zgloszenie.pdf", "application/pdf"
    if kind == "pdf/reportlab-plain":
        return pdfgen.reportlab_pdf(header, v, grid=False), "zgloszenie.pdf", "application/pdf"
    if kind == "pdf/drawn":
        style = _DRAWN_STYLES[i % len(_DRAWN_STYLES)]
        return pdfdraw.drawn_form(header, pdfdraw.ascii_values(v) if style.type1 else v, style), "skan_formularza.pdf", "application/pdf"
    if kind == "pdf/flattened-pdfium":
        return pdfgen.flatten(make_pdf(header, v)), "zgloszenie.pdf", "application/pdf"
    if kind == "pdf/drawn-over":
        return pdfgen.drawn_over(make_pdf(header, pdfgen._blank(1)), v), "zgloszenie.pdf", "application/pdf"
    raise AssertionError(kind)


def sender(i: int) -> str:
    return person(i)[1]


def form_mail(i: int, header: EventHeader, when: dt.datetime | None = None) -> bytes:
    """The whole mail ``i``: From the participant, To the organiser, one form attached."""
    name, address = person(i)
    data, filename, mime = document(i, header)
    msg = EmailMessage()
    msg["From"] = f'"{name}" <{address}>' if i % 3 else address
    msg["To"] = ORGANISER
    msg["Subject"] = SUBJECTS[i % len(SUBJECTS)]
    msg["Date"] = format_datetime(when or dt.datetime.now(dt.UTC))
    msg["Message-ID"] = f"<e2e.{i}.{i * 7919 % 100003}@{address.split('@')[1]}>"
    msg.set_content(BODIES[i % len(BODIES)].format(name=name, institution=values(i).institution.name))
    maintype, subtype = mime.split("/")
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


_header: EventHeader | None = None


def _init(header: EventHeader) -> None:
    global _header
    _header = header


def _make(i: int) -> tuple[int, bytes]:
    assert _header is not None
    return i, form_mail(i, _header)


def stream(n: int, header: EventHeader, *, start: int = 0, workers: int | None = None) -> Iterator[tuple[int, bytes]]:
    """Mails ``start`` … ``start + n - 1`` in order, made by a process pool as they are consumed."""
    workers = workers or max(1, min(4, multiprocessing.cpu_count()))
    if workers == 1 or n < 20:
        for i in range(start, start + n):
            yield i, form_mail(i, header)
        return
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers, initializer=_init, initargs=(header,)) as pool:
        yield from pool.imap(_make, range(start, start + n), chunksize=8)
