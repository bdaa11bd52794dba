"""The demo's sample mailbox: realistic registration e-mails, built by the project itself.

An installed ``mailbot`` has no test fixtures beside it, so the demo generates its inbox
here from the project's own form generator. Every scenario the pipeline must handle is
covered (complete, incomplete, forwarded, zipped, duplicate, auto-reply, bounce, …).
People, institutions and domains are invented (``*.example.pl``). Output is
deterministic: same arguments, same bytes, so demo runs and tests are reproducible.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import hashlib
import io
import os
import unicodedata
import zipfile
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email import encoders
from email.charset import QP, Charset
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesHeaderParser
from email.utils import format_datetime, formataddr, parsedate_to_datetime
from pathlib import Path
from typing import Literal

from mailbot.forms.blank import (
    DOCX_MIME,
    EventHeader,
    FilledValues,
    make_docx,
    polish_date,
)
from mailbot.forms.model import Consents, Institution, Participant

__all__ = [
    "Sample",
    "SentMail",
    "demo_command_reply",
    "demo_followups",
    "demo_late_form",
    "demo_messages",
    "write_maildir",
]

_WARSAW = zoneinfo.ZoneInfo("Europe/Warsaw")
_WIRE = email.policy.compat32.clone(linesep="\r\n")  # RFC 5322 line ends
_THUNDERBIRD = "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:38.0) Gecko/20100101 Thunderbird/38.7.2"
_OUTLOOK = "Microsoft Outlook 15.0"


@dataclass(frozen=True)
class Sample:
    """One demo message: a short name, a one-line description, the raw RFC 5322 bytes."""

    name: str
    description: str
    data: bytes


@dataclass(frozen=True)
class _Person:
    name: str
    email: str

    @property
    def address(self) -> str:
        return formataddr((self.name, self.email), charset="utf-8")

    @property
    def domain(self) -> str:
        return self.email.split("@")[1]


def _slug(text: str) -> str:
    """ASCII file-name fragment (``Opole`` → ``opole``, ``Toruń`` → ``torun``)."""
    text = text.replace("ł", "l").replace("Ł", "L")
    ascii_ = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "-".join(ascii_.lower().split())


def _short_date(day: dt.date) -> str:
    return f"{day.day:02d}.{day.month:02d}.{day.year}"


def _message_id(name: str, when: dt.datetime, domain: str) -> str:
    """A stable Message-ID in the style clients use: time stamp plus a token."""
    utc = when.astimezone(dt.UTC)
    token = hashlib.sha256(f"{name}|{utc.isoformat()}".encode()).hexdigest()[:16].upper()
    return f"<{utc:%Y%m%d%H%M%S}.{token}@{domain}>"


class _Boundaries:
    """Fixed multipart boundaries (the stdlib would pick random ones)."""

    def __init__(self, name: str) -> None:
        self._name, self._n = name, 0

    def __call__(self) -> str:
        self._n += 1
        return f"=_mailbot_{self._name}_{self._n}"


def _header(text: str, name: str) -> str:
    """Plain ASCII as is, anything else as RFC 2047 encoded words (folded correctly)."""
    return text if text.isascii() else Header(text, "utf-8", header_name=name).encode()


def _file_param(filename: str) -> str | tuple[str, str, str]:
    """An ASCII file name as is, a Polish one RFC 2231-encoded (``filename*=utf-8''…``)."""
    return filename if filename.isascii() else ("utf-8", "", filename)


def _text(body: str, subtype: str = "plain") -> Message:
    charset = Charset("utf-8")
    charset.body_encoding = QP  # what Outlook/Thunderbird do for Polish text
    part = MIMEText(body, subtype, charset)  # type: ignore[arg-type]  # stub says str only
    del part["MIME-Version"]
    return part


def _attachment(data: bytes, mime: str, filename: str) -> Message:
    maintype, subtype = mime.split("/")
    part = MIMEBase(maintype, subtype, name=_file_param(filename))
    part.set_payload(data)
    encoders.encode_base64(part)
    part.add_header("Content-Disposition", "attachment", filename=_file_param(filename))
    del part["MIME-Version"]
    return part


def _forwarded(inner: Message, filename: str) -> Message:
    part = MIMEMessage(inner)
    part.add_header("Content-Disposition", "attachment", filename=_file_param(filename))
    del part["MIME-Version"]
    return part


def _mail(
    name: str,
    *,
    sender: _Person,
    to: str,
    subject: str,
    body: str,
    when: dt.datetime,
    agent: str | None = _THUNDERBIRD,
    html: bool = False,
    attachments: Sequence[Message] = (),
    extra: Sequence[tuple[str, str]] = (),
) -> Message:
    """A client-style message: text (and HTML) body, attachments, headers in the usual order.

    Built with the compat32 classes because the default policy's folder mangles long
    encoded Subjects and long Content-Types with RFC 2231 parameters (CPython 3.11).
    """
    boundary = _Boundaries(name)
    msg: Message = _text(body)
    if html:
        paragraphs = "".join(f"<p>{p.replace(chr(10), '<br>')}</p>" for p in body.split("\n\n"))
        html_part = _text(f"<html><body>{paragraphs}</body></html>", "html")
        msg = MIMEMultipart("alternative", boundary(), [msg, html_part])
        del msg["MIME-Version"]
    if attachments:
        msg = MIMEMultipart("mixed", boundary(), [msg, *attachments])
    content = [(key, msg[key]) for key in ("Content-Type", "Content-Transfer-Encoding") if key in msg]
    for key in ("Content-Type", "Content-Transfer-Encoding", "MIME-Version"):
        del msg[key]
    msg["Date"] = format_datetime(when)
    msg["From"] = sender.address
    msg["To"] = to
    msg["Subject"] = _header(subject, "Subject")
    msg["Message-ID"] = _message_id(name, when, sender.domain)
    for key, value in extra:
        msg[key] = _header(value, key)
    if agent is not None:
        msg["X-Mailer" if agent.startswith("Microsoft") else "User-Agent"] = agent
    msg["MIME-Version"] = "1.0"
    for key, value in content:
        msg[key] = value
    return msg


def _finish(msg: Message) -> bytes:
    out = io.BytesIO()
    BytesGenerator(out, mangle_from_=False, policy=_WIRE).flatten(msg)
    return out.getvalue()


def _zip(name: str, data: bytes, when: dt.datetime) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(name, date_time=(when.year, when.month, when.day, when.hour, when.minute, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        zf.writestr(info, data)
    return out.getvalue()


def _form(
    header: EventHeader,
    institution: Institution,
    people: Sequence[Participant],
    *,
    workshops: Iterable[str],
    consent: bool = True,
    newsletter: bool = False,
    remarks: str | None = None,
    place: str,
    day: dt.date,
    style: Literal["table", "controls"] = "table",
) -> bytes:
    values = FilledValues(
        institution=institution,
        participants=list(people),
        workshops=frozenset(workshops),
        remarks=remarks,
        consents=Consents(data_processing=consent, newsletter=newsletter),
        place_date=f"{place}, {_short_date(day)}",
    )
    return make_docx(header, values, style=style)


def _bounce(
    *,
    when: dt.datetime,
    organiser: str,
    recipient: str,
    original_subject: str,
    original_time: dt.datetime,
    original_id: str | None = None,
    diag: str | None = None,
    name: str = "j_bounce",
) -> bytes:
    """A Postfix-style delivery status notification for a reply the organiser sent."""
    org_domain = organiser.split("@")[1]
    mta = f"mail.{org_domain}"
    rcpt_domain = recipient.split("@")[1]
    boundary = f"=_mailbot_{name}_1"
    original_id = original_id or _message_id("reply", original_time, org_domain)
    subject = Header(original_subject, "utf-8").encode()
    diag = diag or f"550 5.1.1 <{recipient}>: Recipient address rejected: User unknown in virtual mailbox table"
    lines = [
        "Return-Path: <>",
        f"Date: {format_datetime(when)}",
        f"From: Mail Delivery System <MAILER-DAEMON@{mta}>",
        f"To: {organiser}",
        "Subject: Undelivered Mail Returned to Sender",
        f"Message-ID: {_message_id('bounce', when, mta)}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        "This is a MIME-encapsulated message.",
        "",
        f"--{boundary}",
        "Content-Description: Notification",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        f"This is the mail system at host {mta}.",
        "",
        "I'm sorry to have to inform you that your message could not",
        "be delivered to one or more recipients. It's attached below.",
        "",
        "For further assistance, please send mail to postmaster.",
        "",
        "                   The mail system",
        "",
        f"<{recipient}>: host mx.{rcpt_domain}[192.0.2.25] said:",
        f"    {diag} (in reply to RCPT TO command)",
        "",
        f"--{boundary}",
        "Content-Description: Delivery report",
        "Content-Type: message/delivery-status",
        "",
        f"Reporting-MTA: dns; {mta}",
        "X-Postfix-Queue-ID: 3F2A1C01D4",
        f"X-Postfix-Sender: rfc822; {organiser}",
        f"Arrival-Date: {format_datetime(original_time)}",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        f"Original-Recipient: rfc822;{recipient}",
        "Action: failed",
        f"Status: {diag.split()[1]}",
        f"Remote-MTA: dns; mx.{rcpt_domain}",
        f"Diagnostic-Code: smtp; {diag}",
        "",
        f"--{boundary}",
        "Content-Description: Undelivered Message Headers",
        "Content-Type: text/rfc822-headers",
        "",
        f"Return-Path: <{organiser}>",
        f"Received: by {mta} (Postfix, from userid 1001) id 3F2A1C01D4;",
        f" {format_datetime(original_time)}",
        f"Date: {format_datetime(original_time)}",
        f"From: {organiser}",
        f"To: {recipient}",
        f"Subject: {subject}",
        f"Message-ID: {original_id}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="=_reply_1"',
        "",
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(lines).encode("ascii")


def demo_messages(
    header: EventHeader,
    *,
    organiser_address: str,
    base_time: dt.datetime,
    other_event: EventHeader | None = None,
    held_event: EventHeader | None = None,
) -> list[Sample]:
    """The demo inbox for ``header``'s conference, oldest first, all before ``base_time``.

    ``base_time`` without a time zone is taken as Warsaw time. ``other_event`` (another
    conference of the cycle, already held) adds its form sent in a mail that names
    ``header``'s conference (routed there); ``held_event`` (another one already held)
    adds its form sent in a mail that names no conference at all (the sender is told
    which are open). Without them those samples are left out.
    """
    if base_time.tzinfo is None:
        base_time = base_time.replace(tzinfo=_WARSAW)
    organiser = organiser_address
    title, city, day = header.title, header.city, header.date
    on_day = f"{city}, {polish_date(day)}"
    form_name = f"zgloszenie-{_slug(city)}-{day.year}.docx"

    def at(days: int, hours: int, minutes: int) -> dt.datetime:
        # Odd seconds, like real clients, but derived from the arguments: reproducible.
        seconds = (days * 7 + hours * 13 + minutes * 17) % 60
        delta = dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        return (base_time - delta).replace(microsecond=0)

    samples: list[Sample] = []

    def add(name: str, description: str, data: bytes) -> None:
        samples.append(Sample(name=name, description=description, data=data))

    # a) complete, table layout, 2 participants, workshop A
    wrobel = _Person("Katarzyna Wróbel", "k.wrobel@um-brzezina.example.pl")
    when_a = at(4, 1, 12)
    form_a = _form(
        header,
        Institution(
            "Urząd Miejski w Brzezinie Opolskiej",
            "ul. Rynek 12, 46-320 Brzezina Opolska",
            "77 413 20 10",
            "sekretariat@um-brzezina.example.pl",
        ),
        [
            Participant("Katarzyna Wróbel", "Kierownik Referatu Rozwoju i Promocji", "77 413 20 25", wrobel.email),
            Participant(
                "Tomasz Lis", "Inspektor ds. funduszy zewnętrznych", "601 442 318", "t.lis@um-brzezina.example.pl"
            ),
        ],
        workshops={"A"},
        place="Brzezina Opolska",
        day=when_a.date(),
    )
    msg = _mail(
        "a",
        sender=wrobel,
        to=organiser,
        subject=f"Zgłoszenie na konferencję {_short_date(day)} – UM Brzezina Opolska",
        body=(
            "Dzień dobry,\n\n"
            "w załączeniu przesyłam zgłoszenie uczestnictwa dwóch pracowników Urzędu Miejskiego "
            f"w Brzezinie Opolskiej w konferencji „{title}” ({on_day}).\n\n"
            "Z poważaniem\nKatarzyna Wróbel\nKierownik Referatu Rozwoju i Promocji\n"
            "Urząd Miejski w Brzezinie Opolskiej\ntel. 77 413 20 25\n"
        ),
        when=when_a,
        attachments=[_attachment(form_a, DOCX_MIME, "zgloszenie_UM_Brzezina_Opolska.docx")],
    )
    data_a = _finish(msg)
    add("a_complete_table", "Kompletne zgłoszenie (tabela): 2 uczestników, warsztat A, zgoda", data_a)

    # b) complete, content controls, 3 participants, both workshops, newsletter
    pawlak = _Person("Agnieszka Pawlak", "a.pawlak@powiat-dabrowa.example.pl")
    when_b = at(3, 22, 40)
    form_b = _form(
        header,
        Institution(
            "Starostwo Powiatowe w Dąbrowie Nyskiej",
            "ul. Kościuszki 3, 48-210 Dąbrowa Nyska",
            "77 435 11 00",
            "starostwo@powiat-dabrowa.example.pl",
        ),
        [
            Participant("Marek Zieliński", "Wicestarosta", "77 435 11 02", "m.zielinski@powiat-dabrowa.example.pl"),
            Participant("Agnieszka Pawlak", "Naczelnik Wydziału Rozwoju Powiatu", "77 435 11 40", pawlak.email),
            Participant(
                "Paweł Nowicki",
                "Podinspektor ds. współpracy z samorządami",
                "698 115 204",
                "p.nowicki@powiat-dabrowa.example.pl",
            ),
        ],
        workshops={"A", "B"},
        newsletter=True,
        remarks="jedna osoba – dieta bezglutenowa",
        place="Dąbrowa Nyska",
        day=when_b.date(),
        style="controls",
    )
    msg = _mail(
        "b",
        sender=pawlak,
        to=organiser,
        subject=f"Konferencja „{title}” – zgłoszenie Starostwa Powiatowego",
        body=(
            "Szanowni Państwo,\n\n"
            "przesyłam zgłoszenie trzech osób ze Starostwa Powiatowego w Dąbrowie Nyskiej "
            f"na konferencję ({on_day}).\n\n"
            "Z wyrazami szacunku\nAgnieszka Pawlak\nNaczelnik Wydziału Rozwoju Powiatu\n"
        ),
        when=when_b,
        agent=_OUTLOOK,
        html=True,
        extra=[("Content-Language", "pl-PL")],
        attachments=[_attachment(form_b, DOCX_MIME, "Zgłoszenie – Starostwo Dąbrowa Nyska.docx")],
    )
    add(
        "b_complete_controls",
        "Kompletne zgłoszenie (pola formularza): 3 osoby, warsztaty A i B, newsletter",
        _finish(msg),
    )

    # c) incomplete: a participant without e-mail, consent not ticked
    mazur = _Person("Joanna Mazur", "j.mazur@ug-lipowiec.example.pl")
    lipowiec = Institution(
        "Urząd Gminy Lipowiec Opolski",
        "ul. Opolska 41, 47-150 Lipowiec Opolski",
        "77 461 30 10",
        "ug@ug-lipowiec.example.pl",
    )
    when_c = at(3, 5, 3)
    kaczmarek = Participant(
        "Robert Kaczmarek", "Referent ds. promocji gminy", "77 461 30 15", "r.kaczmarek@ug-lipowiec.example.pl"
    )
    form_c = _form(
        header,
        lipowiec,
        [Participant("Joanna Mazur", "Sekretarz Gminy", "77 461 30 12", None), kaczmarek],
        workshops={"B"},
        consent=False,
        place="Lipowiec Opolski",
        day=when_c.date(),
    )
    msg = _mail(
        "c",
        sender=mazur,
        to=organiser,
        subject="Zgłoszenie – Urząd Gminy Lipowiec Opolski",
        body=(
            "Dzień dobry,\n\nprzesyłam zgłoszenie na konferencję.\n\n"
            "Pozdrawiam\nJoanna Mazur\nSekretarz Gminy Lipowiec Opolski\n"
        ),
        when=when_c,
        agent=_OUTLOOK,
        attachments=[_attachment(form_c, DOCX_MIME, "zgloszenie.docx")],
    )
    data_c = _finish(msg)
    add("c_incomplete", "Zgłoszenie niekompletne: uczestnik bez e-maila, brak zgody na przetwarzanie danych", data_c)

    # d) "W załączeniu zgłoszenie" without any attachment
    sikora = _Person("Piotr Sikora", "p.sikora@ug-wierzbiecin.example.pl")
    msg = _mail(
        "d",
        sender=sikora,
        to=organiser,
        subject=f"Zgłoszenie – konferencja {city} {_short_date(day)}",
        body=(
            "Dzień dobry,\n\nW załączeniu zgłoszenie na konferencję w dniu "
            f"{polish_date(day)}\n\nPozdrawiam\nPiotr Sikora\nUrząd Gminy Wierzbięcin\n"
        ),
        when=at(3, 2, 47),
    )
    add("d_no_attachment", "„W załączeniu zgłoszenie” – ale załącznika brak", _finish(msg))

    # e) forwarded as attachment (message/rfc822) with a complete form inside
    gorski = _Person("Michał Górski", "m.gorski@ug-jarnow.example.pl")
    secretariat = _Person("Sekretariat Urzędu Gminy Jarnów", "sekretariat@ug-jarnow.example.pl")
    when_inner, when_e = at(2, 23, 10), at(2, 20, 31)
    form_e = _form(
        header,
        Institution("Urząd Gminy Jarnów", "Jarnów 25, 49-130 Jarnów", "77 466 80 00", secretariat.email),
        [Participant("Michał Górski", "Inspektor ds. planowania przestrzennego", "77 466 80 21", gorski.email)],
        workshops={"A"},
        place="Jarnów",
        day=when_inner.date(),
    )
    inner_subject = f"Zgłoszenie na konferencję – {city} {_short_date(day)}"
    inner = _mail(
        "e-inner",
        sender=gorski,
        to=secretariat.address,
        subject=inner_subject,
        body="Pani Ewo,\n\nbardzo proszę o przekazanie mojego zgłoszenia organizatorowi konferencji.\n\nMichał\n",
        when=when_inner,
        attachments=[_attachment(form_e, DOCX_MIME, "zgloszenie_Gorski.docx")],
    )
    msg = _mail(
        "e",
        sender=secretariat,
        to=organiser,
        subject=f"PD: {inner_subject}",
        body=(
            "Dzień dobry,\n\nprzekazuję zgłoszenie pana Michała Górskiego (w załączeniu).\n\n"
            "Z poważaniem\nEwa Dudek\nSekretariat\n"
        ),
        when=when_e,
        agent=_OUTLOOK,
        attachments=[_forwarded(inner, f"{inner_subject}.eml")],
    )
    add("e_forwarded", "Przekazana dalej wiadomość (message/rfc822) z kompletnym zgłoszeniem", _finish(msg))

    # f) zipped form, Polish file name (RFC 2231)
    kaminska = _Person("Beata Kamińska", "b.kaminska@ug-kostrzyca.example.pl")
    when_f = at(2, 6, 15)
    form_f = _form(
        header,
        Institution(
            "Urząd Gminy Kostrzyca Opolska",
            "ul. Szkolna 2, 46-053 Kostrzyca Opolska",
            "77 421 55 10",
            "gmina@ug-kostrzyca.example.pl",
        ),
        [
            Participant("Beata Kamińska", "Zastępca Wójta", "77 421 55 12", kaminska.email),
            Participant(
                "Grzegorz Wieczorek", "Inspektor ds. inwestycji", "604 918 337", "g.wieczorek@ug-kostrzyca.example.pl"
            ),
        ],
        workshops={"A"},
        newsletter=True,
        place="Kostrzyca Opolska",
        day=when_f.date(),
    )
    zipped = _zip("Zgłoszenie Urząd Gminy.docx", form_f, when_f)
    msg = _mail(
        "f",
        sender=kaminska,
        to=organiser,
        subject="Zgłoszenie Urzędu Gminy Kostrzyca Opolska",
        body=(
            "Dzień dobry,\n\nw załączeniu (spakowane) zgłoszenie dwóch osób z naszego urzędu.\n\n"
            "Z poważaniem\nBeata Kamińska\nZastępca Wójta\n"
        ),
        when=when_f,
        html=True,
        attachments=[_attachment(zipped, "application/zip", "Zgłoszenie Urząd Gminy.zip")],
    )
    add("f_zipped", "Zgłoszenie w archiwum ZIP, polska nazwa pliku (RFC 2231)", _finish(msg))

    # g) the sender of (c) sends a corrected, complete form a day later
    when_g = when_c + dt.timedelta(days=1, minutes=26)
    form_g = _form(
        header,
        lipowiec,
        [Participant("Joanna Mazur", "Sekretarz Gminy", "77 461 30 12", mazur.email), kaczmarek],
        workshops={"B"},
        place="Lipowiec Opolski",
        day=when_g.date(),
    )
    id_c = _message_id("c", when_c, mazur.email.split("@")[1])
    msg = _mail(
        "g",
        sender=mazur,
        to=organiser,
        subject="Poprawione zgłoszenie – Urząd Gminy Lipowiec Opolski",
        body=(
            "Dzień dobry,\n\nprzesyłam poprawione zgłoszenie: uzupełniłam adres e-mail i zaznaczyłam zgodę "
            "na przetwarzanie danych.\n\nPozdrawiam\nJoanna Mazur\nSekretarz Gminy Lipowiec Opolski\n"
        ),
        when=when_g,
        agent=_OUTLOOK,
        extra=[("References", id_c)],
        attachments=[_attachment(form_g, DOCX_MIME, "zgloszenie_poprawione.docx")],
    )
    add("g_corrected", "Poprawione zgłoszenie od nadawcy (c), już kompletne – aktualizacja rejestracji", _finish(msg))

    # h) exactly the same message as (a), delivered twice
    add("h_duplicate", "Duplikat wiadomości (a): ten sam Message-ID i treść", data_a)

    # i) Exchange out-of-office reply to the invitation
    nowak = _Person("Krzysztof Nowak", "k.nowak@gmina-rudnik.example.pl")
    invitation = f"Zaproszenie na konferencję „{title}” – {on_day}"
    when_i = at(1, 23, 2)
    # The invitation went out a month before the event (its id only needs to be stable).
    invited = dt.datetime.combine(day - dt.timedelta(days=30), dt.time(8, 0), dt.UTC)
    back = polish_date(when_i.date() + dt.timedelta(days=7))
    msg = _mail(
        "i",
        sender=nowak,
        to=organiser,
        subject=f"Automatyczna odpowiedź: {invitation}",
        body=(
            f"Dzień dobry,\n\ndo {back} przebywam na urlopie bez dostępu do poczty. "
            "W sprawach pilnych proszę o kontakt z sekretariatem urzędu, tel. 77 471 20 00.\n\n"
            "Krzysztof Nowak\n"
        ),
        when=when_i,
        agent=None,
        extra=[
            ("In-Reply-To", _message_id("invitation", invited, organiser.split("@")[1])),
            ("Thread-Topic", invitation),
            ("Auto-Submitted", "auto-replied"),
            ("X-Auto-Response-Suppress", "All"),
            ("X-MS-Exchange-Inbox-Rules-Loop", nowak.email),
            ("X-MS-Has-Attach", ""),
            ("X-MS-TNEF-Correlator", ""),
            ("Content-Language", "pl-PL"),
        ],
    )
    add("i_auto_reply", "Automatyczna odpowiedź (nieobecność) – pominąć, bez odpowiedzi", _finish(msg))

    # j) bounce of a reply the organiser sent
    when_j = at(1, 4, 30)
    add(
        "j_bounce",
        "Zwrot niedoręczonej wiadomości (multipart/report) – pominąć, bez odpowiedzi",
        _bounce(
            when=when_j,
            organiser=organiser_address,
            recipient="biuro@gops-nowawies.example.pl",
            original_subject=f"Re: Zgłoszenie na konferencję – {city}",
            original_time=when_j - dt.timedelta(seconds=4),
        ),
    )

    # k) the blank form sent back unfilled
    baran = _Person("Halina Baran", "h.baran@ug-starylas.example.pl")
    msg = _mail(
        "k",
        sender=baran,
        to=organiser,
        subject="Zgłoszenie",
        body="Dzień dobry,\n\nw załączeniu zgłoszenie.\n\nHalina Baran\nUrząd Gminy Stary Las\n",
        when=at(1, 2, 18),
        agent=_OUTLOOK,
        attachments=[_attachment(make_docx(header), DOCX_MIME, form_name)],
    )
    add("k_blank_form", "Odesłany pusty, niewypełniony formularz", _finish(msg))

    # l) a form for another conference of the cycle
    if other_event is not None:
        wojcik = _Person("Dariusz Wójcik", "d.wojcik@um-mirow.example.pl")
        when_l = at(0, 12, 55)
        form_l = _form(
            other_event,
            Institution(
                "Urząd Miejski w Mirowie", "pl. Wolności 1, 46-200 Mirów", "77 418 02 00", "um@um-mirow.example.pl"
            ),
            [Participant("Dariusz Wójcik", "Burmistrz", "77 418 02 01", wojcik.email)],
            workshops={"B"},
            place="Mirów",
            day=when_l.date(),
        )
        other_name = f"zgloszenie-{_slug(other_event.city)}-{other_event.date.year}.docx"
        msg = _mail(
            "l",
            sender=wojcik,
            to=organiser,
            subject=f"Zgłoszenie na konferencję – {city}",
            body=(
                f"Dzień dobry,\n\nprzesyłam zgłoszenie na konferencję ({on_day}).\n\nDariusz Wójcik\nBurmistrz Mirowa\n"
            ),
            when=when_l,
            attachments=[_attachment(form_l, DOCX_MIME, other_name)],
        )
        add(
            "l_other_event",
            f"Formularz konferencji {other_event.city} ({polish_date(other_event.date)}, już się odbyła), "
            f"w treści „{on_day}” – zapis przekierowany na {city}",
            _finish(msg),
        )

    # p) a form for a conference already held, in a mail that names no conference
    if held_event is not None:
        kowalczyk = _Person("Ewa Kowalczyk", "e.kowalczyk@gops-zielonka.example.pl")
        when_p = at(0, 9, 20)
        form_p = _form(
            held_event,
            Institution(
                "Gminny Ośrodek Pomocy Społecznej w Zielonce",
                "ul. Lipowa 7, 46-112 Zielonka",
                "77 419 33 00",
                "gops@gops-zielonka.example.pl",
            ),
            [Participant("Ewa Kowalczyk", "Kierownik GOPS", "77 419 33 01", kowalczyk.email)],
            workshops={"A"},
            place="Zielonka",
            day=when_p.date(),
        )
        held_name = f"zgloszenie-{_slug(held_event.city)}-{held_event.date.year}.docx"
        msg = _mail(
            "p",
            sender=kowalczyk,
            to=organiser,
            subject="Zgłoszenie",
            body=(
                "Dzień dobry,\n\nw załączeniu przesyłam wypełniony formularz zgłoszenia.\n\n"
                "Pozdrawiam\nEwa Kowalczyk\nKierownik GOPS w Zielonce\n"
            ),
            when=when_p,
            agent=_OUTLOOK,
            attachments=[_attachment(form_p, DOCX_MIME, held_name)],
        )
        add(
            "p_held_event",
            f"Formularz konferencji {held_event.city} ({polish_date(held_event.date)}, już się odbyła), "
            "wiadomość nie wskazuje innej – nadawca dostaje listę otwartych konferencji",
            _finish(msg),
        )
    return samples


@dataclass(frozen=True)
class SentMail:
    """A mail mailbot sent in the demo's first pass, as the recipient sees it."""

    message_id: str
    subject: str
    when: dt.datetime


def demo_followups(
    *, organiser_address: str, base_time: dt.datetime, sent: dict[str, SentMail]
) -> list[Sample]:
    """What comes back after the first replies: a withdrawal answering an
    acknowledgement, a question that only sounds like one, and a bounce of an
    acknowledgement. ``sent`` maps a recipient address to the mail we sent them."""
    if base_time.tzinfo is None:
        base_time = base_time.replace(tzinfo=_WARSAW)
    samples: list[Sample] = []
    lis = _Person("Tomasz Lis", "t.lis@um-brzezina.example.pl")
    nowicki = _Person("Paweł Nowicki", "p.nowicki@powiat-dabrowa.example.pl")
    zielinski = "m.zielinski@powiat-dabrowa.example.pl"

    def quoted(original: SentMail) -> str:
        stamp = original.when.astimezone(_WARSAW)
        return (
            f"\n\nW dniu {stamp:%d.%m.%Y o %H:%M}, {organiser_address} pisze:\n"
            "> Dzień dobry,\n> dziękujemy za przesłanie zgłoszenia. Potwierdzamy udział w konferencji.\n"
        )

    if lis.email in sent:
        ack = sent[lis.email]
        msg = _mail(
            "m",
            sender=lis,
            to=organiser_address,
            subject=f"Re: {ack.subject}",
            body=(
                "Dzień dobry,\n\nniestety z powodu obowiązków służbowych rezygnuję z udziału "
                "w konferencji. Przepraszam za kłopot.\n\nZ poważaniem\nTomasz Lis"
                + quoted(ack)
            ),
            when=base_time - dt.timedelta(hours=3, minutes=12),
            extra=[("In-Reply-To", ack.message_id), ("References", ack.message_id)],
        )
        samples.append(
            Sample(
                "m_withdrawal",
                "Rezygnacja w odpowiedzi na potwierdzenie – wpis w kalendarzu odwołany (METHOD:CANCEL)",
                _finish(msg),
            )
        )
    if nowicki.email in sent:
        ack = sent[nowicki.email]
        msg = _mail(
            "n",
            sender=nowicki,
            to=organiser_address,
            subject=f"Re: {ack.subject}",
            body=(
                "Dzień dobry,\n\nczy mogę zrezygnować tylko z warsztatu B, a w konferencji wziąć udział?\n\n"
                "Pozdrawiam\nPaweł Nowicki" + quoted(ack)
            ),
            when=base_time - dt.timedelta(hours=2, minutes=40),
            agent=_OUTLOOK,
            extra=[("In-Reply-To", ack.message_id), ("References", ack.message_id)],
        )
        samples.append(
            Sample(
                "n_unclear",
                "Pytanie, które tylko brzmi jak rezygnacja – potwierdzenie dla pytającego, "
                "pytanie przekazane organizatorom",
                _finish(msg),
            )
        )
    if zielinski in sent:
        ack = sent[zielinski]
        samples.append(
            Sample(
                "o_bounce_of_ack",
                "Zwrot potwierdzenia: skrzynka uczestnika pełna",
                _bounce(
                    when=ack.when + dt.timedelta(seconds=6),
                    organiser=organiser_address,
                    recipient=zielinski,
                    original_subject=ack.subject,
                    original_time=ack.when,
                    original_id=ack.message_id,
                    diag=f"552 5.2.2 <{zielinski}>: Mailbox full, quota exceeded",
                    name="o_bounce",
                ),
            )
        )
    return samples


def demo_late_form(header: EventHeader, *, organiser_address: str, base_time: dt.datetime) -> list[Sample]:
    """A complete form for ``header``'s conference that arrives after its registration
    deadline (shortly before ``base_time``): a late registration, for the organisers to
    decide."""
    if base_time.tzinfo is None:
        base_time = base_time.replace(tzinfo=_WARSAW)
    adamczyk = _Person("Leszek Adamczyk", "l.adamczyk@ug-zawada.example.pl")
    when = (base_time - dt.timedelta(minutes=47, seconds=-13)).replace(microsecond=0)
    form = _form(
        header,
        Institution(
            "Urząd Gminy Zawada Książęca",
            "ul. Główna 15, 47-120 Zawada Książęca",
            "77 462 10 00",
            "ug@ug-zawada.example.pl",
        ),
        [Participant("Leszek Adamczyk", "Wójt Gminy", "77 462 10 01", adamczyk.email)],
        workshops={"B"},
        place="Zawada Książęca",
        day=when.date(),
    )
    msg = _mail(
        "q",
        sender=adamczyk,
        to=organiser_address,
        subject=f"Zgłoszenie na konferencję – {header.city} {_short_date(header.date)}",
        body=(
            "Dzień dobry,\n\nprzepraszam za spóźnienie – w załączeniu zgłoszenie na konferencję "
            f"({header.city}, {polish_date(header.date)}). Czy jest jeszcze szansa na udział?\n\n"
            "Z poważaniem\nLeszek Adamczyk\nWójt Gminy Zawada Książęca\n"
        ),
        when=when,
        attachments=[_attachment(form, DOCX_MIME, f"zgloszenie-{_slug(header.city)}-{header.date.year}.docx")],
    )
    deadline = f" ({polish_date(header.deadline)})" if header.deadline is not None else ""
    return [
        Sample(
            "q_late",
            f"Kompletne zgłoszenie po terminie zapisów{deadline} – spóźnione, decydują organizatorzy",
            _finish(msg),
        )
    ]


def demo_command_reply(
    *,
    organiser: str,
    digest: SentMail,
    digest_from: str,
    digest_text: str,
    commands: Sequence[str],
    when: dt.datetime,
) -> Sample:
    """An organiser's answer to the daily digest: ``commands`` (e.g. ``PRZYJMIJ 17``) on
    top, the digest (its text part ``digest_text``, with the items' ``[#ID TOKEN]``
    tags) quoted below, as a mail client quotes it."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=_WARSAW)
    person = _Person("Zespół konferencji w Opolu", organiser)
    stamp = digest.when.astimezone(_WARSAW)
    quoted = "\n".join(f"> {line}" if line else ">" for line in digest_text.splitlines())
    msg = _mail(
        "r",
        sender=person,
        to=digest_from,
        subject=f"Re: {digest.subject}",
        body=(
            "\n".join(commands)
            + "\n\nPozdrawiamy\nZespół konferencji w Opolu\n\n"
            + f"W dniu {stamp:%d.%m.%Y o %H:%M}, {digest_from} pisze:\n"
            + quoted
            + "\n"
        ),
        when=when.replace(microsecond=0),
        extra=[("In-Reply-To", digest.message_id), ("References", digest.message_id)],
    )
    return Sample(
        "r_command",
        "Organizatorzy odpowiadają na zestawienie dnia poleceniem " + ", ".join(f"„{c}”" for c in commands),
        _finish(msg),
    )


def write_maildir(samples: Iterable[Sample], path: Path, *, start: int = 0) -> None:
    """Deliver ``samples`` into a Maildir at ``path`` (``new/``), in order, reproducibly.

    File names are ``<Date epoch>.M<index>P0.mailbot-demo`` and mtimes are the Date
    header, so an IMAP server shows the messages' own dates; writes go through ``tmp/``
    then a rename, as Maildir requires. Writing again overwrites the same files.
    """
    for sub in ("tmp", "new", "cur"):
        (path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    for index, sample in enumerate(samples, start=start):
        headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(sample.data)
        date = headers.get("Date")
        stamp = int(parsedate_to_datetime(date).timestamp()) if date else 0
        name = f"{stamp}.M{index:06d}P0.mailbot-demo"
        tmp = path / "tmp" / name
        tmp.write_bytes(sample.data)
        os.utime(tmp, (stamp, stamp))
        os.replace(tmp, path / "new" / name)
