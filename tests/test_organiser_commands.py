"""Organisers act by e-mail: the digest lists reply commands with per-item tokens, and an
organiser's reply carrying them goes through the same review functions as the command
line — through the real pipeline (Maildir in, SQLite, Maildir out, fixed clock)."""

from __future__ import annotations

import datetime as dt
import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlmodel import select

from mailbot import review
from mailbot.config import DigestSettings, Settings
from mailbot.digest import command_token, queue_digests
from mailbot.organiser_commands import authentication_problem, find_tags, parse_commands
from mailbot.store.tables import InboundMessage, Participant, Registration
from tests.conversation import WARSAW, Conversation, form_docx, kinds, mail, settings_for, text_of

SECRETARY = "sekretariat@testowo.example.pl"
ANNA = ("Anna Kowalska", "anna@testowo.example.pl")
JAN = ("Jan Nowak", "jan@testowo.example.pl")
OPOLE = "opole@partnerstwa.example.pl"
LUBLIN = "lublin@partnerstwa.example.pl"
SECRET = "test-secret-0123456789-abcdef"


def at(day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(2016, 4, day, hour, minute, tzinfo=WARSAW)


def with_secret(settings: Settings, tmp_path: Path) -> Settings:
    path = tmp_path / "command-secret"
    path.write_text(SECRET + "\n", encoding="utf-8")
    return settings.model_copy(update={"digest": DigestSettings(command_secret_file=path)})


def late_registration(tmp_path: Path, *, secret: bool = True) -> tuple[Conversation, review.ReviewItem]:
    """A late form for Opole (the deadline was 14 April), waiting for the organisers."""
    settings = settings_for(tmp_path)
    conv = Conversation(with_secret(settings, tmp_path) if secret else settings)
    form = form_docx(conv.settings.event("opole-2016"), [ANNA, JAN])
    conv.receive(mail(SECRETARY, "Zgłoszenie na konferencję", "W załączeniu zgłoszenie.", when=at(15), form=form))
    conv.run(at(15))
    assert kinds(conv.sent()) == [("closed", SECRETARY)]
    (item,) = review.list_open(conv.app(at(15)).ingest)
    return conv, item


def send_digest(conv: Conversation, when: dt.datetime) -> dict[str, EmailMessage]:
    """Queue and deliver the day's digests; the Opole ones by recipient."""
    app = conv.app(when)
    with app.session() as s:
        queue_digests(s, app.settings, app.templates, app.blobs, when)  # type: ignore[arg-type]
        s.commit()
    app.deliver()
    return {str(m["To"].addresses[0].addr_spec): m for m in conv.sent() if m["X-Mailbot-Kind"] == "digest"}


def reply(digest: EmailMessage, commands: str, *, sender: str = OPOLE, when: dt.datetime,
          extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    """An organiser's answer: commands on top, the digest quoted below."""
    quoted = "\n".join("> " + line for line in text_of(digest).splitlines())
    body = f"{commands}\n\nPozdrawiam\n\nW dniu 16.04.2016 o 07:00 mailbot pisze:\n{quoted}\n"
    return mail(sender, f"Re: {digest['Subject']}", body, when=when, in_reply_to=str(digest["Message-ID"]),
                extra=extra)


def result_text(conv: Conversation, to: str = OPOLE) -> str:
    mails = [m for m in conv.sent() if m["X-Mailbot-Kind"] == "command_result"]
    assert [str(m["To"].addresses[0].addr_spec) for m in mails] == [to]
    return text_of(mails[0])


def people(conv: Conversation, when: dt.datetime) -> dict[str, tuple[str, str | None]]:
    with conv.app(when).session() as s:
        return {p.full_name or "": (p.status, p.email) for p in s.exec(select(Participant)).all()}


def row(conv: Conversation, item_id: int) -> InboundMessage:
    with conv.app(at(16)).session() as s:
        found = s.get(InboundMessage, item_id)
        assert found is not None
        return found


# --- the digest ---------------------------------------------------------------------


def test_the_digest_lists_each_items_commands_next_to_its_token(tmp_path: Path) -> None:
    conv, item = late_registration(tmp_path)
    digest = send_digest(conv, at(16, 7))[OPOLE]
    text = text_of(digest)
    token = command_token(SECRET.encode(), item.id, dt.date(2016, 4, 16), "opole-2016")
    assert re.fullmatch(r"[A-Z2-7]{10}", token)
    assert f"[{item.ref}] [#{item.id} {token}]" in text
    assert f"   Polecenia: PRZYJMIJ {item.id} | ODRZUĆ {item.id} | POPRAW {item.id} …" in text
    assert "np. PRZYJMIJ 12 – przyjąć" in text and "Prosimy nie odpowiadać" not in text
    assert f"[#{item.id} {token}]" in str(digest.get_body(("html",)).get_content())  # type: ignore[union-attr]
    # Another day, another token; another event's digest, another token.
    assert token != command_token(SECRET.encode(), item.id, dt.date(2016, 4, 17), "opole-2016")
    assert token != command_token(SECRET.encode(), item.id, dt.date(2016, 4, 16), "lublin-2016")


def test_without_the_secret_the_digest_shows_no_commands(tmp_path: Path) -> None:
    conv, item = late_registration(tmp_path, secret=False)
    text = text_of(send_digest(conv, at(16, 7))[OPOLE])
    assert f"[{item.ref}]" in text and "Polecenia:" not in text and f"[#{item.id} " not in text
    assert "PRZYJMIJ" not in text and "Prosimy nie odpowiadać na tę wiadomość" in text


# --- carrying commands out ------------------------------------------------------------


def test_przyjmij_accepts_a_late_registration_as_review_accept_does_and_only_once(tmp_path: Path) -> None:
    conv, item = late_registration(tmp_path)
    digest = send_digest(conv, at(16, 7))[OPOLE]
    raw = reply(digest, f"PRZYJMIJ {item.id}", when=at(16, 8))
    conv.receive(raw)
    conv.run(at(16, 9))
    mails = conv.sent()
    # The participants get what `review accept` sends; the organiser the result.
    assert kinds(mails) == [("ack", ANNA[1]), ("ack", JAN[1]), ("ack", SECRETARY), ("command_result", OPOLE)]
    (answer,) = [m for m in mails if m["X-Mailbot-Kind"] == "command_result"]
    text = text_of(answer)
    assert f"PRZYJMIJ {item.id}: przyjęte — Anna Kowalska ma miejsce, Jan Nowak ma miejsce" in text
    assert answer["In-Reply-To"] is not None and answer["Auto-Submitted"] == "auto-replied"
    assert people(conv, at(16, 9)) == {ANNA[0]: ("confirmed", ANNA[1]), JAN[0]: ("confirmed", JAN[1])}
    target = row(conv, item.id)
    assert target.resolution == "accepted"
    assert target.resolution_note is not None and f"polecenie e-mailem od {OPOLE}" in target.resolution_note
    assert review.list_open(conv.app(at(16, 9)).ingest) == []
    with conv.app(at(16, 9)).session() as s:
        command_mail = s.exec(select(InboundMessage).where(InboundMessage.from_addr == OPOLE)).one()
    assert command_mail.outcome == "registered"
    (entry,) = [e for e in command_mail.history_entries() if e["action"] == "organiser_commands"]
    assert entry["sender"] == OPOLE and entry["commands"] == [f"PRZYJMIJ {item.id}: " + text.split(f"PRZYJMIJ {item.id}: ")[1].splitlines()[0]]

    # The same message again (a re-fetch): the ledger files it, nothing runs twice.
    conv.receive(raw)
    conv.run(at(16, 10))
    assert conv.sent() == []
    # The same command in a second mail: "już wykonane", nothing changes.
    conv.receive(reply(digest, f"PRZYJMIJ {item.id}", when=at(16, 11)))
    conv.run(at(16, 11))
    assert f"PRZYJMIJ {item.id}: już wykonane" in result_text(conv)
    assert people(conv, at(16, 11)) == {ANNA[0]: ("confirmed", ANNA[1]), JAN[0]: ("confirmed", JAN[1])}


def test_odrzuc_and_several_commands_in_one_mail(tmp_path: Path) -> None:
    conv, item = late_registration(tmp_path)
    digest = send_digest(conv, at(16, 7))[OPOLE]
    conv.receive(reply(digest, f"odrzuć {item.id}\nUSUŃ {item.id}\nPRZYJMIJ {item.id}", when=at(16, 8)))
    conv.run(at(16, 9))
    text = result_text(conv)
    assert f"odrzuć {item.id}: odrzucone" in text
    assert f"USUŃ {item.id}: nie wykonano — nieznane polecenie „USUŃ”" in text and "Znane polecenia" in text
    assert f"PRZYJMIJ {item.id}: nie wykonano — wiadomość już wcześniej odrzucona" in text
    assert row(conv, item.id).resolution == "rejected"
    assert people(conv, at(16, 9)) == {ANNA[0]: ("late", ANNA[1]), JAN[0]: ("late", JAN[1])}


def test_popraw_changes_a_participants_email(tmp_path: Path) -> None:
    conv, item = late_registration(tmp_path)
    digest = send_digest(conv, at(16, 7))[OPOLE]
    conv.receive(reply(digest, f"POPRAW {item.id} e-mail uczestnika 2: jan.nowak@testowo.example.pl\n"
                               f"POPRAW {item.id} telefon instytucji: 77 400 99 99", when=at(16, 8)))
    conv.run(at(16, 9))
    text = result_text(conv)
    assert f"POPRAW {item.id} e-mail uczestnika 2: jan.nowak@testowo.example.pl: poprawione — " in text
    assert "jan@testowo.example.pl → jan.nowak@testowo.example.pl" in text
    assert f"POPRAW {item.id} telefon instytucji: 77 400 99 99: poprawione" in text
    assert people(conv, at(16, 9))[JAN[0]] == ("late", "jan.nowak@testowo.example.pl")
    with conv.app(at(16, 9)).session() as s:
        reg = s.exec(select(Registration)).one()
        assert reg.institution_phone == "+48774009999" and reg.version == 3
    assert row(conv, item.id).resolution is None  # still late: accept or reject decides
    # The same fix again: already done; an invalid one: refused, nothing changes.
    conv.receive(reply(digest, f"POPRAW {item.id} e-mail uczestnika 2: jan.nowak@testowo.example.pl\n"
                               f"POPRAW {item.id} e-mail uczestnika 1: to-nie-adres\n"
                               f"POPRAW {item.id} kolor uczestnika 1: zielony", when=at(16, 10)))
    conv.run(at(16, 10))
    text = result_text(conv)
    assert "jan.nowak@testowo.example.pl: już wykonane" in text
    assert "to-nie-adres: nie wykonano — to nie jest poprawny adres e-mail" in text
    assert "zielony: nie wykonano — nieznane pole „kolor uczestnika 1”" in text
    assert people(conv, at(16, 10))[ANNA[0]] == ("late", ANNA[1])


# --- refusals -------------------------------------------------------------------------


def test_a_wrong_token_is_refused_with_an_answer_and_changes_nothing(tmp_path: Path) -> None:
    conv, item = late_registration(tmp_path)
    digest = send_digest(conv, at(16, 7))[OPOLE]
    forged = text_of(digest)
    forged = re.sub(rf"\[#{item.id} [A-Z2-7]{{10}}\]", f"[#{item.id} AAAAAAAAAA]", forged)
    body = f"PRZYJMIJ {item.id}\n\n" + "\n".join("> " + line for line in forged.splitlines())
    conv.receive(mail(OPOLE, "Re: zestawienie", body, when=at(16, 8), in_reply_to=str(digest["Message-ID"])))
    # No tag at all: refused too.
    conv.receive(mail(OPOLE, "Re: zestawienie", f"PRZYJMIJ {item.id}", when=at(16, 8),
                      in_reply_to=str(digest["Message-ID"])))
    conv.run(at(16, 9))
    mails = conv.sent()
    assert kinds(mails) == [("command_result", OPOLE), ("command_result", OPOLE)]
    texts = sorted(text_of(m) for m in mails)
    assert any("nie wykonano — brak uprawnień — kod" in t and "nie pasuje do zestawienia" in t for t in texts)
    assert any("nie wykonano — brak uprawnień — w odpowiedzi nie ma kodu" in t for t in texts)
    assert row(conv, item.id).resolution is None
    assert people(conv, at(16, 9)) == {ANNA[0]: ("late", ANNA[1]), JAN[0]: ("late", JAN[1])}
    with conv.app(at(16, 9)).session() as s:
        refused = s.exec(select(InboundMessage).where(InboundMessage.from_addr == OPOLE)).all()
    assert [r.outcome for r in refused] == ["needs_review", "needs_review"]
    assert all("refused" in (r.reason or "") for r in refused)


def test_another_events_organiser_and_a_stranger_are_refused(tmp_path: Path) -> None:
    conv, item = late_registration(tmp_path)
    digest = send_digest(conv, at(16, 7))[OPOLE]
    conv.receive(reply(digest, f"PRZYJMIJ {item.id}", sender=LUBLIN, when=at(16, 8)))
    conv.run(at(16, 9))
    assert "brak uprawnień — kod" in result_text(conv, LUBLIN)
    conv.receive(reply(digest, f"PRZYJMIJ {item.id}", sender="ktos@obcy.example.com", when=at(16, 10)))
    conv.run(at(16, 10))
    text = result_text(conv, "ktos@obcy.example.com")
    assert f"PRZYJMIJ {item.id}: nie wykonano — brak uprawnień (ktos@obcy.example.com nie jest" in text
    assert row(conv, item.id).resolution is None
    assert people(conv, at(16, 10))[ANNA[0]] == ("late", ANNA[1])


def test_failed_authentication_results_are_refused(tmp_path: Path) -> None:
    conv, item = late_registration(tmp_path)
    digest = send_digest(conv, at(16, 7))[OPOLE]
    failed = ("Authentication-Results",
              "mx.partnerstwa.example.pl; dkim=fail header.d=partnerstwa.example.pl; "
              "spf=fail smtp.mailfrom=opole@partnerstwa.example.pl")
    conv.receive(reply(digest, f"PRZYJMIJ {item.id}", when=at(16, 8), extra=(failed,)))
    conv.run(at(16, 9))
    text = result_text(conv)
    assert "serwer pocztowy nie potwierdził nadawcy" in text and "dkim=fail, spf=fail" in text
    assert row(conv, item.id).resolution is None
    # Passing results for the sender's domain: carried out.
    passed = ("Authentication-Results", "mx.partnerstwa.example.pl; dkim=pass header.d=partnerstwa.example.pl")
    conv.receive(reply(digest, f"PRZYJMIJ {item.id}", when=at(16, 10), extra=(passed,)))
    conv.run(at(16, 10))
    assert row(conv, item.id).resolution == "accepted"


def test_only_the_topmost_authentication_results_header_counts() -> None:
    def raw(*headers: str) -> bytes:
        lines = [f"Authentication-Results: {h}" for h in headers]
        return ("\r\n".join([*lines, "From: opole@partnerstwa.example.pl", "Subject: x", "", "body"])).encode()

    sender = "opole@partnerstwa.example.pl"
    assert authentication_problem(raw(), sender) is None  # a local Maildir: no header
    assert authentication_problem(raw("mx.example; spf=pass smtp.mailfrom=opole@partnerstwa.example.pl"), sender) is None
    assert authentication_problem(raw("mx.example; dmarc=pass header.from=partnerstwa.example.pl"), sender) is None
    assert authentication_problem(raw("mx.example; dkim=pass header.d=mail.partnerstwa.example.pl"), sender) is None
    # A pass for another domain does not vouch for the sender.
    assert authentication_problem(raw("mx.example; dkim=pass header.d=evil.example"), sender) is not None
    assert authentication_problem(raw("mx.example; none"), sender) is not None
    # The sender's own forged "pass" below our server's "fail" is not read.
    problem = authentication_problem(
        raw("mx.example; dkim=fail (bad signature) header.d=partnerstwa.example.pl; spf=softfail",
            "forged.example; dkim=pass header.d=partnerstwa.example.pl"),
        sender,
    )
    assert problem is not None and "dkim=fail, spf=softfail" in problem


def test_without_the_secret_commands_are_refused_with_what_the_admin_must_do(tmp_path: Path) -> None:
    conv, item = late_registration(tmp_path, secret=False)
    digest = send_digest(conv, at(16, 7))[OPOLE]
    conv.receive(reply(digest, f"PRZYJMIJ {item.id}", when=at(16, 8)))
    conv.run(at(16, 9))
    text = result_text(conv)
    assert "polecenia e-mailem są wyłączone: administrator musi ustawić tajny klucz" in text
    assert "command_secret_file" in text and row(conv, item.id).resolution is None


def test_a_reply_without_commands_goes_to_review_as_before(tmp_path: Path) -> None:
    conv, item = late_registration(tmp_path)
    digest = send_digest(conv, at(16, 7))[OPOLE]
    conv.receive(reply(digest, "Proszę przyjąć to zgłoszenie, rozmawiałam z panią Kowalską.", when=at(16, 8)))
    conv.run(at(16, 9))
    assert conv.sent() == []
    open_items = review.list_open(conv.app(at(16, 9)).ingest)
    assert [i.id for i in open_items][0] == item.id and len(open_items) == 2
    assert "reply to the organisers' daily digest" in open_items[1].reason


# --- reading commands -------------------------------------------------------------------


def test_only_the_organisers_own_lines_are_commands() -> None:
    own = "\n".join([
        "przyjmij 12",
        "POTWIERDŹ 13 2 sugestia",
        "POTWIERDZ 14",
        "PRZETWORZ 15",
        "POPRAW 16 imię i nazwisko uczestnika 1: Anna Nowak-Kowalska",
        "POPRAW 16 participants[2].phone=600 100 200",
        "  np. PRZYJMIJ 12 – przyjąć",  # the digest's own help text
        "Polecenia: PRZYJMIJ 12 | ODRZUĆ 12",
        "Dziękuję 2 razy",
        "PRZYJMIJ 12",  # twice: once
        "ODRZUĆ 17 bo tak",
        "PILNE 3 osoby dzwoniły",  # capitals and a number, but prose
        "USUŃ 18",  # a command we do not know, next to a tag the mail quotes
        "KASUJ 19",  # the same without a tag: prose
    ])
    commands = parse_commands(own, tagged={3, 18})
    assert [(c.action, c.item) for c in commands] == [
        ("accept", 12), ("confirm", 13), ("confirm", 14), ("reprocess", 15), ("fix", 16), ("fix", 16), (None, 17),
        (None, 18),
    ]
    assert commands[7].error == "nieznane polecenie „USUŃ”"
    assert commands[1].number == 2 and commands[1].suggestion and commands[2].number is None
    assert commands[4].assignment == "participants[1].full_name=Anna Nowak-Kowalska"
    assert commands[5].assignment == "participants[2].phone=600 100 200"
    assert commands[6].error is not None
    assert find_tags("> 1. [abc] [#12 k7q2m6xa4b] x\n[#12 AAAAAAAAAA]") == {12: {"K7Q2M6XA4B", "AAAAAAAAAA"}}


def test_the_secret_never_lives_in_the_config(tmp_path: Path) -> None:
    assert DigestSettings().resolve_command_secret() is None
    with pytest.raises(Exception, match="only one of"):
        DigestSettings(command_secret_file=tmp_path / "a", command_secret_env="X")
    short = tmp_path / "short"
    short.write_text("abc", encoding="utf-8")
    with pytest.raises(Exception, match="shorter than 16"):
        DigestSettings(command_secret_file=short).resolve_command_secret()
    assert DigestSettings(command_secret_env="MB_SECRET").resolve_command_secret({"MB_SECRET": SECRET}) == SECRET.encode()
    with pytest.raises(Exception, match="extra|not permitted|command_secret"):
        DigestSettings(command_secret=SECRET)  # type: ignore[call-arg]


def test_the_answer_renders_from_its_sample() -> None:
    from mailbot.template_samples import command_result_sample
    from mailbot.templating import Templates

    rendered = Templates().render("command_result", command_result_sample())
    assert rendered.subject == "Wynik poleceń z odpowiedzi na zestawienie: wykonane 2, niewykonane 2"
    assert "PRZYJMIJ 12: przyjęte — Anna Kowalska ma miejsce" in rendered.text
    assert "ODRZUĆ 13: nie wykonano — brak uprawnień" in rendered.text and "Znane polecenia" in rendered.text
    assert "<strong>USUŃ 15</strong>" in rendered.html


def test_potwierdz_settles_an_unconfirmed_address_as_review_confirm_does(tmp_path: Path) -> None:
    from tests.test_doubt_conversation import READ, first_run
    from tests.test_doubt_conversation import reply as participant_reply

    conv = Conversation(with_secret(settings_for(tmp_path), tmp_path))
    ack = first_run(conv)
    participant_reply(conv, ack, "Potwierdzam.", at(2))  # unclear: after a suggestion, either reading
    conv.run(at(2))
    (item,) = review.list_open(conv.app(at(2)).ingest)
    digest = send_digest(conv, at(3, 7))[OPOLE]
    assert f"Polecenia: PRZYJMIJ {item.id} | ODRZUĆ {item.id} | PRZETWÓRZ {item.id} | POTWIERDŹ {item.id} 1" \
        in text_of(digest)
    conv.receive(reply(digest, f"POTWIERDŹ {item.id} 1", when=at(3, 8)))
    conv.run(at(3, 9))
    mails = conv.sent()
    assert kinds(mails) == [("ack", READ), ("command_result", OPOLE)]
    text = text_of([m for m in mails if m["X-Mailbot-Kind"] == "command_result"][0])
    assert f"POTWIERDŹ {item.id} 1: potwierdzone — adres uczestnika 1: {READ}" in text
    assert row(conv, item.id).resolution == "fixed"
    conv.receive(reply(digest, f"POTWIERDŹ {item.id} 1", when=at(3, 10)))
    conv.run(at(3, 10))
    assert f"POTWIERDŹ {item.id} 1: już wykonane" in result_text(conv)


def test_przetworz_reads_a_message_again(tmp_path: Path) -> None:
    conv = Conversation(with_secret(settings_for(tmp_path), tmp_path))
    conv.receive(mail(SECRETARY, "Konferencja w Opolu", "Przesyłam zgłoszenie.", when=at(10)))  # no form
    conv.run(at(10))
    assert kinds(conv.sent()) == [("no_form", SECRETARY)]
    (item,) = review.list_open(conv.app(at(10)).ingest)
    digest = send_digest(conv, at(11, 7))[OPOLE]
    conv.receive(reply(digest, f"PRZETWÓRZ {item.id}", when=at(11, 8)))
    conv.run(at(11, 9))
    text = result_text(conv)
    assert f"PRZETWÓRZ {item.id}: przeczytane ponownie — wiadomość nadal do przejrzenia" in text
