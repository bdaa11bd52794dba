"""Unconfirmed addresses for the people around the bot: `mailbot review show` gives both
readings and the commands that settle them, `review confirm` / `review fix` settle them
(the participant then gets their ack, once), the organisers' digest lists them, a
corrected form settles them, and the retention purge erases them.

Also the rules of :func:`mailbot.registrations.judge_email` on hand-made forms."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel, select

from mailbot import review as rv
from mailbot.digest import build_digests, queue_digests
from mailbot.forms.model import Consents, FormData, Institution, Problem
from mailbot.forms.model import Participant as FormParticipant
from mailbot.purge import purge
from mailbot.registrations import apply_form
from mailbot.store.tables import InboundMessage, Participant, Registration

from tests.conversation import Conversation, form_docx, kinds, mail, settings_for, text_of
from tests.test_doubt_conversation import ANNA, APR1, MEANT, READ, SENDER, at, first_run, jan, register, reply


@pytest.fixture
def conv(tmp_path: Path) -> Conversation:
    settings = settings_for(tmp_path)
    events = tuple(
        e.model_copy(update={"organisers": ("opole@partnerstwa.example.pl",)}) if e.key == "opole-2016" else e
        for e in settings.events
    )
    return Conversation(settings.model_copy(update={"events": events}))


def registration_message(conv: Conversation) -> InboundMessage:
    with conv.app(conv.now).session() as s:
        reg = s.exec(select(Registration)).one()
        row = s.get(InboundMessage, reg.source_inbound_id)
        assert row is not None
        return row


def test_review_show_gives_both_readings_and_confirm_takes_the_suggestion(conv: Conversation) -> None:
    first_run(conv)
    row = registration_message(conv)
    app = conv.app(at(2))
    shown = rv.render_show(rv.show(app.ingest, row.ref))
    assert f"participants[1]: Jan Kowalski; Inspektor; +48774000011; {READ} [confirmed]" in shown
    assert "e-mail UNCONFIRMED" in shown
    assert f"as read:   {READ}" in shown and f"suggested: {MEANT}" in shown
    assert f"mailbot review confirm {row.id} 1 --suggestion" in shown
    assert f"mailbot review fix {row.id} participants[1].email=ADDRESS" in shown

    with pytest.raises(rv.ReviewUsageError, match="no unconfirmed address"):
        rv.confirm(app.ingest, row.ref, 2)  # Anna, second on the form: nothing in doubt
    result = rv.confirm(app.ingest, row.ref, suggestion=True, note="telefonicznie")
    assert result.replies == (f"ack → {MEANT}",)
    app.deliver()
    assert kinds(conv.sent()) == [("ack", MEANT)]
    person = jan(conv)
    assert (person.email, person.email_check, person.email_settled_by) == (MEANT, "corrected", "review")
    shown = rv.render_show(rv.show(app.ingest, row.ref))
    assert f"e-mail corrected (review); read as {READ}" in shown
    with pytest.raises(rv.ReviewError, match="no unconfirmed"):
        rv.confirm(app.ingest, row.ref)


def test_review_fix_of_the_address_settles_it_and_acks_once(conv: Conversation) -> None:
    first_run(conv)
    row = registration_message(conv)
    app = conv.app(at(2))
    with pytest.raises(rv.ReviewError, match="review confirm"):
        rv.fix(app.ingest, row.ref, [f"participants[1].email={READ}"])
    # A fix of something else keeps the doubt.
    rv.fix(app.ingest, row.ref, ["participants[1].phone=77 400 00 99"])
    assert jan(conv).email_check == "unconfirmed"
    result = rv.fix(app.ingest, row.ref, ["participants[1].email=jan.k@nysa.pl"])
    assert "ack → jan.k@nysa.pl" in result.replies
    app.deliver()
    assert kinds(conv.sent()) == [("ack", "jan.k@nysa.pl")]
    assert (jan(conv).email, jan(conv).email_check) == ("jan.k@nysa.pl", "corrected")


def test_an_unclear_reply_is_settled_from_the_review_queue(conv: Conversation) -> None:
    ack = first_run(conv)
    reply(conv, ack, "Potwierdzam.", at(2))
    (result,) = conv.run(at(2)).results
    assert result.outcome == "needs_review"
    app = conv.app(at(3))
    (item,) = rv.list_open(app.ingest)
    shown = rv.render_show(rv.show(app.ingest, item.id))
    assert "(replies of this message were about it)" in shown and "e-mail UNCONFIRMED" in shown
    done = rv.confirm(app.ingest, item.id, 1)
    assert done.resolution == "fixed" and done.replies == (f"ack → {READ}",)
    assert rv.list_open(app.ingest) == []


def test_the_digest_lists_unconfirmed_addresses_until_settled(conv: Conversation) -> None:
    ack = first_run(conv)
    app = conv.app(at(1, 18))
    with app.session() as s:
        (digest,) = build_digests(s, app.settings, at(1, 18))
        (u,) = digest.unconfirmed
        assert (u.full_name, u.as_read, u.suggestion, u.sender, u.new) == ("Jan Kowalski", READ, MEANT, SENDER, True)
        assert digest.has_news
        (queued,) = queue_digests(s, app.settings, app.templates, app.blobs, at(1, 18), dry_run=True)
    assert queued.rendered is not None
    text = queued.rendered.text
    assert "ADRESY E-MAIL DO POTWIERDZENIA (1)" in text and f"odczytano: {READ}; może: {MEANT}" in text
    assert f"<{READ}> (adres do potwierdzenia)" in text
    assert "Adresy e-mail do potwierdzenia (1)" in queued.rendered.html
    reply(conv, ack, f"Chodziło o {MEANT}.", at(2))
    conv.run(at(2))
    with app.session() as s:
        assert build_digests(s, app.settings, at(2, 18))[0].unconfirmed == ()


def test_a_corrected_form_settles_the_doubt(conv: Conversation) -> None:
    ack = first_run(conv)
    event = conv.settings.event("opole-2016")
    conv.receive(mail(SENDER, f"Re: {ack['Subject']}", "Poprawiony formularz w załączeniu.", when=at(2),
                      in_reply_to=str(ack["Message-ID"]),
                      form=form_docx(event, [("Jan Kowalski", MEANT), ("Anna Nowak", ANNA)],
                                     institution="Urząd Miejski w Nysie")))
    conv.run(at(2))
    sent = conv.sent()
    assert kinds(sent) == [("ack", MEANT), ("updated", SENDER)]
    assert "Prosimy o sprawdzenie" not in text_of(next(m for m in sent if SENDER in str(m["To"])))
    assert (jan(conv).email_check, jan(conv).email) == ("corrected", MEANT)


def test_the_purge_erases_the_doubt(conv: Conversation) -> None:
    first_run(conv)
    app = conv.app(at(2))
    later = dt.datetime(2016, 12, 1, 9, 0, tzinfo=APR1.tzinfo)
    with app.session() as s:
        purge(s, app.settings, app.blobs, later)
    with app.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)).mappings():
                for column, value in row.items():
                    if isinstance(value, bytes | memoryview):
                        value = bytes(value).decode("utf-8", "replace")
                    if isinstance(value, str):
                        assert "kowalsk" not in value.casefold(), (table.name, column)
    with app.session() as s:
        person = s.exec(select(Participant).where(Participant.position == 0)).one()
    assert person.full_name is None and person.email is None
    assert person.email_check == "unconfirmed"  # anonymous: that there was a doubt
    assert (person.email_as_read, person.email_suggestion, person.email_doubt_note) == (None, None, None)


# --- judge_email on hand-made forms ------------------------------------------------------


def _form(email: str, *, doubt: bool, suggestion: str | None = MEANT) -> FormData:
    return FormData(
        file="z.docx", status="ok", format="docx", event="opole-2016",
        institution=Institution("Urząd Miejski w Nysie"),
        participants=[FormParticipant("Jan Kowalski", None, None, email)],
        consents=Consents(True, False),
        problems=[Problem("participants[0].email", "low_confidence", "Adres mógł zostać odczytany błędnie.",
                          suggestion=suggestion)] if doubt else [],
    )


def test_judge_email_rules(conv: Conversation) -> None:
    register(conv, people=[("Ewa Lis", "ewa@gmina.example.pl")])
    conv.run(APR1)
    app = conv.app(APR1)
    now = APR1
    with app.session() as s:
        inbound = s.exec(select(InboundMessage)).one()
        assert inbound.id is not None

        def apply(form: FormData, sender: str = SENDER, target: Registration | None = None) -> Participant:
            applied = apply_form(s, form, event_key="opole-2016", event_defaulted=False, sender=sender,
                                 inbound_id=inbound.id or 0, attachment_id=None, seed=f"t{json.dumps(sender)}",
                                 now=now, target=target, searched=target is not None)
            return [p for p in s.exec(select(Participant).where(
                Participant.registration_id == applied.registration.id))][0]

        person = apply(_form(READ, doubt=True))
        assert (person.email_check, person.email_as_read, person.email_suggestion) == ("unconfirmed", READ, MEANT)
        reg = s.get(Registration, person.registration_id)
        assert reg is not None
        # The same doubt on a form sent again: still unconfirmed.
        assert apply(_form(READ, doubt=True), target=reg).email_check == "unconfirmed"
        # The same address typed without doubt: the sender stands by it.
        person = apply(_form(READ, doubt=False), target=reg)
        assert (person.email_check, person.email_settled_by) == ("confirmed", "form")
        # Settled stays settled, even when the reader doubts it again.
        assert apply(_form(READ, doubt=True), target=reg).email_check == "confirmed"
        # A doubt on the sender's own address is no doubt.
        assert apply(_form(READ, doubt=True), sender=READ.upper()).email_check is None
        s.rollback()
