"""A scanned form through the whole pipeline: an address OCR read that nothing on the
form corroborates is never acknowledged blindly.

Ewa's address (``kadry.szkolenia@…``) matches neither her name nor any other domain on
the form, so however well Tesseract read it, one wrong letter would pass every syntax
check: she gets no mail until the sender confirms it; "potwierdzam" then acks her once.
Anna's (``anna.nowak@`` + the institution's domain) is corroborated and acked at once.
Printed by LibreOffice, rendered at 300 dpi, read by Tesseract: a slow case.
"""

from __future__ import annotations

import datetime as dt
import shutil
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest

from mailbot.forms.blank import FilledValues, make_docx
from mailbot.forms.model import Consents, Institution, Participant
from tests.conversation import ORGANISER, WARSAW, Conversation, event_header, kinds, settings_for, text_of
from tests.forms.scangen import docx_to_pdf, encode, render

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract (./dev test installs it)"),
    pytest.mark.skipif(shutil.which("soffice") is None, reason="needs LibreOffice (./dev test installs it)"),
]

SENDER = "sekretariat@dobrzenwielki.example.pl"
EWA = "kadry.szkolenia@powiatopolski.pl"
ANNA = "anna.nowak@dobrzenwielki.pl"
APR1 = dt.datetime(2016, 4, 1, 9, 0, tzinfo=WARSAW)


def _scan(conv: Conversation) -> bytes:
    values = FilledValues(
        institution=Institution("Urząd Gminy Dobrzeń Wielki", "ul. Namysłowska 44, 46-081 Dobrzeń Wielki",
                                "77 469 55 60", "ug@dobrzenwielki.pl"),
        participants=[
            Participant("Anna Nowak", "Inspektor", "77 469 55 61", ANNA),
            Participant("Ewa Zielińska", "Kierownik Referatu", "77 469 55 62", EWA),
        ],
        workshops=frozenset({"A"}),
        remarks=None,
        consents=Consents(True, False),
        place_date="Dobrzeń Wielki, 1.04.2016",
    )
    docx = make_docx(event_header(conv.settings.event("opole-2016")), values, style="table")
    (pdf,) = docx_to_pdf([docx])
    data, _ = encode(render(pdf, 300), "png", 300)
    return data


def _mail(body: str, *, form: bytes | None = None, in_reply_to: str | None = None, subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = ORGANISER
    msg["Subject"] = subject
    msg["Date"] = format_datetime(APR1)
    msg["Message-ID"] = f"<scan{len(body)}.{subject.__hash__() & 0xFFFF}@dobrzenwielki.example.pl>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    msg.set_content(body)
    if form is not None:
        msg.add_attachment(form, maintype="image", subtype="png", filename="skan.png")
    return msg.as_bytes()


def test_an_uncorroborated_ocr_address_waits_for_the_sender_to_confirm_it(tmp_path: Path) -> None:
    conv = Conversation(settings_for(tmp_path))
    conv.receive(_mail("W załączeniu skan zgłoszenia.", form=_scan(conv), subject="Zgłoszenie"))
    conv.run(APR1)
    sent = conv.sent()
    recipients = [addr for _, addr in kinds(sent)]
    assert ("ack", ANNA) in kinds(sent)
    assert not any(addr.startswith("kadry") for addr in recipients), recipients
    ack = next(m for m in sent if SENDER in str(m["To"]))
    body = text_of(ack)
    assert "Ewa Zielińska: odczytaliśmy kadry" in body
    assert "Anna Nowak: odczytaliśmy" not in body

    conv.receive(_mail("Potwierdzam.", in_reply_to=str(ack["Message-ID"]), subject=f"Re: {ack['Subject']}"))
    conv.run(APR1 + dt.timedelta(hours=2))
    after = kinds(conv.sent())
    assert ("ack", EWA) in after, after
