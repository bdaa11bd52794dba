"""The demo mailbox: every scenario is a well-formed message with the structure it claims."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import importlib
import io
import mailbox
import zipfile
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import docx
import pytest

from mailbot.forms.blank import DOCX_MIME, EventHeader, make_docx
from mailbot.forms.events import events_named
from mailbot.forms.model import EventRef
from mailbot.intent import strip_quoted
from mailbot.samples import Sample, SentMail, demo_command_reply, demo_late_form, demo_messages, write_maildir

TITLE = "Współpraca w partnerstwach samorządowych"
OPOLE = EventHeader(
    TITLE,
    "Opole",
    dt.date(2016, 4, 18),
    dt.time(11, 0),
    "Sala Herbowa Urzędu Wojewódzkiego",
    "ul. Piastowska 14",
    dt.date(2016, 4, 14),
)
LUBLIN = EventHeader(
    TITLE,
    "Lublin",
    dt.date(2016, 3, 21),
    dt.time(11, 0),
    "Sala Kolumnowa Urzędu Wojewódzkiego",
    "ul. Spokojna 4",
    dt.date(2016, 3, 17),
)
ORGANISER = "konferencje@zms.example.pl"
BASE = dt.datetime(2016, 4, 12, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
NAMES = [
    "a_complete_table",
    "b_complete_controls",
    "c_incomplete",
    "d_no_attachment",
    "e_forwarded",
    "f_zipped",
    "g_corrected",
    "h_duplicate",
    "i_auto_reply",
    "j_bounce",
    "k_blank_form",
    "l_other_event",
]


def build(**kwargs: Any) -> list[Sample]:
    return demo_messages(OPOLE, organiser_address=ORGANISER, base_time=BASE, other_event=LUBLIN, **kwargs)


@pytest.fixture(scope="module")
def samples() -> dict[str, Sample]:
    return {s.name: s for s in build()}


def parse(sample: Sample) -> EmailMessage:
    msg = email.message_from_bytes(sample.data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def attachments(msg: EmailMessage) -> list[EmailMessage]:
    return list(msg.iter_attachments())


def docx_text(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return zf.read("word/document.xml").decode()


def test_all_scenarios_in_order(samples: dict[str, Sample]) -> None:
    assert [s.name for s in build()] == NAMES
    assert all(s.description for s in samples.values())
    without = demo_messages(OPOLE, organiser_address=ORGANISER, base_time=BASE)
    assert [s.name for s in without] == NAMES[:-1]


def test_deterministic() -> None:
    assert build() == build()


def test_every_message_is_well_formed(samples: dict[str, Sample]) -> None:
    ids = []
    for sample in samples.values():
        msg = parse(sample)
        assert not msg.defects, sample.name
        assert msg["Message-ID"] and msg["Message-ID"].endswith("example.pl>"), sample.name
        ids.append(msg["Message-ID"])
        sent = parsedate_to_datetime(msg["Date"])
        assert BASE - dt.timedelta(days=5) < sent < BASE, sample.name
        assert msg["From"] and msg["Subject"], sample.name
        assert msg["To"] == ORGANISER, sample.name
        # RFC 5322: CRLF line ends, lines at most 998 characters
        assert b"\n" not in sample.data.replace(b"\r\n", b""), sample.name
        assert max(len(line) for line in sample.data.split(b"\r\n")) <= 998, sample.name
        assert sample.data.isascii(), sample.name  # 7-bit clean: encoded words, QP, base64
    assert len(set(ids)) == len(ids) - 1  # only (h) repeats (a)


def test_polish_headers_decode(samples: dict[str, Sample]) -> None:
    a = parse(samples["a_complete_table"])
    assert a["From"].addresses[0].display_name == "Katarzyna Wróbel"
    assert a["Subject"] == "Zgłoszenie na konferencję 18.04.2016 – UM Brzezina Opolska"
    b = parse(samples["b_complete_controls"])
    assert b["Subject"] == f"Konferencja „{TITLE}” – zgłoszenie Starostwa Powiatowego"


def test_complete_forms_attached(samples: dict[str, Sample]) -> None:
    a = parse(samples["a_complete_table"])
    (form,) = attachments(a)
    assert form.get_content_type() == DOCX_MIME
    assert form.get_filename() == "zgloszenie_UM_Brzezina_Opolska.docx"
    text = docx_text(form.get_content())
    assert "Katarzyna Wróbel" in text and "Tomasz Lis" in text and "w:sdt" not in text
    assert "☒ A – " in text and "☐ B – " in text

    b = parse(samples["b_complete_controls"])
    assert b.get_body(("plain",)) is not None and b.get_body(("html",)) is not None
    (form,) = attachments(b)
    assert form.get_filename() == "Zgłoszenie – Starostwo Dąbrowa Nyska.docx"
    text = docx_text(form.get_content())
    assert "w:sdt" in text and "w14:checkbox" in text
    assert text.count('w14:checked w14:val="1"') == 4  # both workshops, both consents
    assert "Paweł Nowicki" in text


def test_incomplete_then_corrected(samples: dict[str, Sample]) -> None:
    c, g = parse(samples["c_incomplete"]), parse(samples["g_corrected"])
    assert c["From"] == g["From"]
    assert g["References"] == c["Message-ID"]
    delay = parsedate_to_datetime(g["Date"]) - parsedate_to_datetime(c["Date"])
    assert dt.timedelta(hours=23) < delay < dt.timedelta(hours=25)
    c_doc = docx.Document(io.BytesIO(attachments(c)[0].get_content()))
    g_doc = docx.Document(io.BytesIO(attachments(g)[0].get_content()))
    assert c_doc.tables[1].rows[1].cells[4].text == ""
    assert g_doc.tables[1].rows[1].cells[4].text == "j.mazur@ug-lipowiec.example.pl"
    assert any(p.text.startswith("☐ Wyrażam zgodę na przetwarzanie") for p in c_doc.paragraphs)
    assert any(p.text.startswith("☒ Wyrażam zgodę na przetwarzanie") for p in g_doc.paragraphs)


def test_no_attachment(samples: dict[str, Sample]) -> None:
    d = parse(samples["d_no_attachment"])
    assert not d.is_multipart() and attachments(d) == []
    assert "W załączeniu zgłoszenie" in d.get_content()


def test_forwarded_message_inside(samples: dict[str, Sample]) -> None:
    e = parse(samples["e_forwarded"])
    assert e["Subject"].startswith("PD: ")
    (fwd,) = attachments(e)
    assert fwd.get_content_type() == "message/rfc822"
    inner = fwd.get_content()
    assert isinstance(inner, EmailMessage)
    assert inner["From"].addresses[0].display_name == "Michał Górski"
    (form,) = attachments(inner)
    assert form.get_content_type() == DOCX_MIME
    assert "Michał Górski" in docx_text(form.get_content())


def test_zipped_form_with_rfc2231_name(samples: dict[str, Sample]) -> None:
    sample = samples["f_zipped"]
    assert b"filename*=utf-8''Zg%C5%82oszenie%20Urz%C4%85d%20Gminy.zip" in sample.data
    (part,) = attachments(parse(sample))
    assert part.get_content_type() == "application/zip"
    assert part.get_filename() == "Zgłoszenie Urząd Gminy.zip"
    with zipfile.ZipFile(io.BytesIO(part.get_content())) as zf:
        assert zf.namelist() == ["Zgłoszenie Urząd Gminy.docx"]
        inner = zf.read("Zgłoszenie Urząd Gminy.docx")
    docx.Document(io.BytesIO(inner))
    assert "Beata Kamińska" in docx_text(inner)


def test_duplicate_is_byte_identical(samples: dict[str, Sample]) -> None:
    assert samples["h_duplicate"].data == samples["a_complete_table"].data


def test_auto_reply(samples: dict[str, Sample]) -> None:
    i = parse(samples["i_auto_reply"])
    assert i["Auto-Submitted"] == "auto-replied"
    assert i["Subject"].startswith("Automatyczna odpowiedź: Zaproszenie na konferencję")
    assert i["In-Reply-To"].endswith("@zms.example.pl>")
    assert attachments(i) == []


def test_bounce(samples: dict[str, Sample]) -> None:
    j = parse(samples["j_bounce"])
    assert j.get_content_type() == "multipart/report"
    assert j.get_param("report-type") == "delivery-status"
    assert j["From"].addresses[0].username == "MAILER-DAEMON"
    assert j["Return-Path"] == "<>"
    types = [p.get_content_type() for p in j.iter_parts()]
    assert types == ["text/plain", "message/delivery-status", "text/rfc822-headers"]


def test_blank_form_sent_back(samples: dict[str, Sample]) -> None:
    (form,) = attachments(parse(samples["k_blank_form"]))
    assert form.get_filename() == "zgloszenie-opole-2016.docx"
    assert form.get_content() == make_docx(OPOLE)


def test_other_event_form(samples: dict[str, Sample]) -> None:
    (form,) = attachments(parse(samples["l_other_event"]))
    assert form.get_filename() == "zgloszenie-lublin-2016.docx"
    assert "Lublin, 21 marca 2016 r., Sala Kolumnowa Urzędu Wojewódzkiego, ul. Spokojna 4" in docx_text(
        form.get_content()
    )


def test_naive_base_time_is_warsaw_time() -> None:
    naive = demo_messages(OPOLE, organiser_address=ORGANISER, base_time=dt.datetime(2016, 4, 12, 9, 0))
    aware = demo_messages(OPOLE, organiser_address=ORGANISER, base_time=BASE)
    assert naive == aware


def test_write_maildir(tmp_path: Path) -> None:
    samples = build()
    target = tmp_path / "inbox"
    write_maildir(samples, target)
    assert sorted(p.name for p in target.iterdir()) == ["cur", "new", "tmp"]
    assert list((target / "tmp").iterdir()) == [] and list((target / "cur").iterdir()) == []
    files = sorted((target / "new").iterdir())
    assert len(files) == len(samples)
    assert sorted(f.read_bytes() for f in files) == sorted(s.data for s in samples)
    # mtime is the message's own Date (an IMAP server shows it as the arrival time)
    for f in files:
        msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        assert int(f.stat().st_mtime) == int(parsedate_to_datetime(msg["Date"]).timestamp())
    assert len(mailbox.Maildir(target, create=False)) == len(samples)
    names = [f.name for f in files]
    write_maildir(samples, target)  # idempotent: same names, nothing added
    assert sorted(p.name for p in (target / "new").iterdir()) == names


# --------------------------------------------------------------------------- through the parser

EVENTS = [
    EventRef(key="lublin-2016", title=TITLE, city="Lublin", date=dt.date(2016, 3, 21)),
    EventRef(key="opole-2016", title=TITLE, city="Opole", date=dt.date(2016, 4, 18)),
]


def _parse_docx(data: bytes) -> Any:
    try:
        parse_bytes = getattr(importlib.import_module("mailbot.forms"), "parse_bytes", None)
    except ImportError:  # pragma: no cover - depends on the parser's progress
        parse_bytes = None
    if parse_bytes is None:
        pytest.skip("mailbot.forms.parse_bytes not available yet")
    return parse_bytes(data, "zgloszenie.docx", events=EVENTS)


@pytest.mark.parametrize(
    ("name", "event", "people", "problems"),
    [
        ("a_complete_table", "opole-2016", 2, set()),
        ("b_complete_controls", "opole-2016", 3, set()),
        ("c_incomplete", "opole-2016", 2, {"participants[0].email", "consents.data_processing"}),
        ("g_corrected", "opole-2016", 2, set()),
        ("l_other_event", "lublin-2016", 1, set()),
    ],
)
def test_attached_forms_parse_as_intended(
    samples: dict[str, Sample], name: str, event: str, people: int, problems: set[str]
) -> None:
    (form,) = attachments(parse(samples[name]))
    result = _parse_docx(form.get_content())
    assert result.status == "ok"
    assert result.event == event
    assert len(result.participants) == people
    assert {p.field for p in result.problems if p.code != "low_confidence"} == problems


# ------------------------------------------------------------- Conversation II (issue 12)

TORUN = EventHeader(
    TITLE,
    "Toruń",
    dt.date(2016, 3, 14),
    dt.time(11, 0),
    "Sala Wielka Dworu Artusa",
    "Rynek Staromiejski 6",
    dt.date(2016, 3, 10),
)
CYCLE = [
    EventRef(key="torun-2016", title=TITLE, city="Toruń", date=dt.date(2016, 3, 14)),
    *EVENTS,
]


def assert_well_formed(sample: Sample, *, before: dt.datetime, to: str = ORGANISER) -> EmailMessage:
    msg = parse(sample)
    assert not msg.defects, sample.name
    assert msg["Message-ID"] and msg["Message-ID"].endswith("example.pl>"), sample.name
    assert parsedate_to_datetime(msg["Date"]) < before, sample.name
    assert msg["From"] and msg["Subject"] and msg["To"] == to, sample.name
    assert b"\n" not in sample.data.replace(b"\r\n", b""), sample.name
    assert max(len(line) for line in sample.data.split(b"\r\n")) <= 998, sample.name
    assert sample.data.isascii(), sample.name
    return msg


def own_words(msg: EmailMessage) -> list[str]:
    body = msg.get_body(("plain",))
    assert body is not None
    return [str(msg["Subject"]), strip_quoted(str(body.get_content()))]


def test_the_lublin_form_names_opole_in_its_mail(samples: dict[str, Sample]) -> None:
    """The routed story: the form is Lublin's, the person's own words name Opole only."""
    msg = parse(samples["l_other_event"])
    assert events_named(own_words(msg), CYCLE) == {"opole-2016"}
    assert "Opole" in samples["l_other_event"].description and "Lublin" in samples["l_other_event"].description


def test_a_held_events_form_in_a_mail_naming_no_conference() -> None:
    made = build(held_event=TORUN)
    assert [s.name for s in made] == [*NAMES, "p_held_event"]
    assert made[: len(NAMES)] == build()  # the other samples do not change
    (sample,) = [s for s in made if s.name == "p_held_event"]
    msg = assert_well_formed(sample, before=BASE)
    assert BASE - dt.timedelta(days=1) < parsedate_to_datetime(msg["Date"])
    assert events_named(own_words(msg), CYCLE) == set()  # no conference named
    (form,) = attachments(msg)
    assert form.get_filename() == "zgloszenie-torun-2016.docx"
    text = docx_text(form.get_content())
    assert "Toruń, 14 marca 2016 r." in text and "Ewa Kowalczyk" in text
    assert build(held_event=TORUN) == made  # deterministic


def test_a_late_form_arrives_after_the_deadline() -> None:
    late = dt.datetime(2016, 4, 15, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    (sample,) = demo_late_form(OPOLE, organiser_address=ORGANISER, base_time=late)
    assert sample.name == "q_late" and "po terminie" in sample.description
    msg = assert_well_formed(sample, before=late)
    sent = parsedate_to_datetime(msg["Date"])
    assert OPOLE.deadline is not None and sent.date() > OPOLE.deadline
    (form,) = attachments(msg)
    text = docx_text(form.get_content())
    assert "Opole, 18 kwietnia 2016 r." in text and "Leszek Adamczyk" in text
    assert demo_late_form(OPOLE, organiser_address=ORGANISER, base_time=late.replace(tzinfo=None)) == [sample]


def test_an_organisers_command_answers_the_digest_quoting_it() -> None:
    digest = SentMail(
        message_id="<20160416050000.abc.digest@partnerstwa.example.pl>",
        subject="Zestawienie dzienne 16.04.2016 – Opole, 18 kwietnia 2016 r.: do przejrzenia: 1",
        when=dt.datetime(2016, 4, 16, 5, 0, tzinfo=dt.UTC),
    )
    digest_text = (
        "Dzień dobry,\n\noto zestawienie.\n\n"
        "1. [0123456789] [#16 ABCDEFGHJK] 15.04.2016, 08:13, od: Leszek Adamczyk <l.adamczyk@ug-zawada.example.pl>\n"
        "   Polecenia: PRZYJMIJ 16 | ODRZUĆ 16 | POPRAW 16 …\n"
    )
    when = dt.datetime(2016, 4, 16, 8, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    sample = demo_command_reply(
        organiser="opole@zms.example.pl", digest=digest, digest_from=ORGANISER,
        digest_text=digest_text, commands=["PRZYJMIJ 16"], when=when,
    )
    assert sample.name == "r_command" and "„PRZYJMIJ 16”" in sample.description
    msg = assert_well_formed(sample, before=when + dt.timedelta(seconds=1))
    assert msg["From"].addresses[0].addr_spec == "opole@zms.example.pl"
    assert msg["Subject"] == f"Re: {digest.subject}"
    assert msg["In-Reply-To"] == digest.message_id and msg["References"] == digest.message_id
    body = msg.get_body(("plain",))
    assert body is not None
    text = str(body.get_content()).replace("\r\n", "\n")
    assert text.startswith("PRZYJMIJ 16\n")
    # The command is the person's own line; the digest with the item's tag only in the quote.
    own = strip_quoted(text)
    assert "PRZYJMIJ 16" in own and "[#16 ABCDEFGHJK]" not in own
    assert "> 1. [0123456789] [#16 ABCDEFGHJK] 15.04.2016" in text
