"""The review queue: the messages the pipeline left to a person (outcome
``needs_review``), settled without touching the database by hand.

    mailbot review list | show ID | fix ID field=value… | accept ID | reject ID | reprocess ID

``ID`` is the ledger id or the message's ref (the ten characters in logs and in the
X-Mailbot-Ref header of our replies). Each action is one transaction, is written to the
message's history, and queues exactly the mails the pipeline would have queued — under
the same dedupe keys, so nothing already queued goes twice:

- ``fix`` corrects the registration(s) the message created, validated like the form
  reader validates (e-mail addresses with email-validator, phones to E.164), as a new
  version; when that makes an incomplete registration complete the sender gets the
  ``updated`` mail a corrected form would have brought (moving it to another event
  does too, and the people moved get their ``ack``/``waitlist`` for the new event).
- ``accept`` takes a late registration after all: seats (or the waiting list, by
  capacity) and the ``ack``/``waitlist``/``incomplete`` mails of an on-time form.
- ``reject`` only records the decision (and a note); no mail.
- ``reprocess`` runs the stored raw message through the pipeline again
  (:func:`mailbot.ingest.reprocess`), e.g. after the admin extended the labels.
- ``confirm`` settles an e-mail address the reader doubted, as read (or as the reader
  suggested): the participant then gets the first mail of their own. ``fix
  participants[N].email=…`` settles it with another address.

``fix`` and ``confirm`` act on the registrations the message made; on a message that
made none (an unclear answer to our question about an address), on the registrations it
is tied to by a quoted code or by answering our mail.

Every function returns plain data; the ``render_*`` functions turn it into the text the
command line prints.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.parser
import email.policy
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from mailbot.config import EventSettings
from mailbot.errors import MailbotError
from mailbot.forms import Vocabulary
from mailbot.forms.labels import default_vocabulary
from mailbot.forms.model import Consents, FormData, Institution, Problem
from mailbot.forms.model import Participant as FormParticipant
from mailbot.forms.normalize import clean_text, normalize_email, normalize_phone
from mailbot import doubts
from mailbot.ingest import IngestContext, ReprocessError, _headers_only, answering_for
from mailbot.ingest import reprocess as ingest_reprocess
from mailbot.registrations import (
    NON_BLOCKING_CODES,
    Applied,
    Change,
    apply_form,
    participants_of,
)
from mailbot.links import linked_registrations
from mailbot.mime import parse_message
from mailbot.replies import Queued, corrected, promoted, welcome, welcome_settled
from mailbot.seats import allocate, promote
from mailbot.store.tables import (
    InboundMessage,
    OutboundMail,
    Registration,
    RegistrationVersion,
    StoredAttachment,
)

__all__ = [
    "ActionResult",
    "ItemDetail",
    "ReviewError",
    "ReviewItem",
    "accept",
    "confirm",
    "fix",
    "list_open",
    "parse_assignment",
    "reject",
    "render_list",
    "render_result",
    "render_show",
    "reprocess",
    "show",
]

RESOLUTIONS = ("accepted", "rejected", "reprocessed", "fixed")


class ReviewError(MailbotError):
    """The action cannot be done in the item's state (already resolved, purged,
    withdrawn, nothing to change); nothing was changed. The message is meant for the
    admin. Subclasses tell a wrong request (exit 2) and an unknown item (exit 3) apart."""


class ReviewUsageError(ReviewError):
    """The request itself is wrong: an invalid value, an unknown field, a participant
    number the registration does not have."""


class ReviewNotFound(ReviewError):
    """No such message, or no such registration among the message's."""


def participant_label(index: int) -> str:
    """How admins and mails number participants: from 1 ("uczestnik 1")."""
    return f"participants[{index + 1}]"


_CONTRACT_PATH = re.compile(r"^participants\[(\d+)\]")


def shown_field(path: str) -> str:
    """A problem's field as admins read it: the form contract counts participants from
    0 (``participants[0].email``), ``review`` from 1 like the mails."""
    return _CONTRACT_PATH.sub(lambda m: participant_label(int(m.group(1))), path)


# --- what the commands return ------------------------------------------------------


@dataclass(frozen=True)
class ReviewItem:
    """One line of ``review list``."""

    id: int
    ref: str
    received_at: dt.datetime
    """In the configured time zone."""
    sender: str
    subject: str
    outcome: str
    reason: str
    resolution: str | None


@dataclass(frozen=True)
class AttachmentView:
    id: int
    filename: str
    content_type: str
    size: int
    origin: str
    parse_status: str | None
    parse_format: str | None
    parse_method: str | None
    parse_reason: str | None
    form: dict[str, Any] | None
    """The parsed form, as ``mailbot parse --json`` prints it."""


@dataclass(frozen=True)
class PersonView:
    number: int
    """The ``N`` of ``participants[N].field`` for ``fix`` and of ``confirm ID N``: from
    1, as the mails number participants ("uczestnik 1")."""
    full_name: str | None
    job_title: str | None
    phone: str | None
    email: str | None
    status: str
    consent_data_processing: bool
    consent_newsletter: bool
    email_check: str | None = None
    """None, ``unconfirmed`` (the reader doubted it: no mail goes there), ``confirmed``
    or ``corrected``."""
    email_as_read: str | None = None
    email_suggestion: str | None = None
    email_doubt_note: str | None = None
    email_settled_by: str | None = None


@dataclass(frozen=True)
class RegistrationView:
    code: str
    relation: str
    """``source``: registered or corrected by this message (what ``fix`` and ``accept``
    act on); ``related``: a registration the message's replies were about (a withdrawal)."""
    event_key: str
    status: str
    version: int
    institution_name: str | None
    institution_address: str | None
    institution_phone: str | None
    institution_email: str | None
    workshops: str
    remarks: str | None
    consent_data_processing: bool
    consent_newsletter: bool
    sender_email: str | None
    participants: tuple[PersonView, ...]
    problems: tuple[Problem, ...]
    versions: int
    """Earlier versions kept (corrections and fixes)."""


@dataclass(frozen=True)
class ReplyView:
    kind: str
    to: str
    status: str
    created_at: dt.datetime
    sent_at: dt.datetime | None


@dataclass(frozen=True)
class ItemDetail:
    """Everything ``review show`` prints about one message."""

    item: ReviewItem
    size: int
    times_seen: int
    headers: tuple[tuple[str, str], ...]
    raw_stored: bool
    warnings: str | None
    resolved_at: dt.datetime | None
    resolution_note: str | None
    attachments: tuple[AttachmentView, ...]
    registrations: tuple[RegistrationView, ...]
    replies: tuple[ReplyView, ...]
    history: tuple[dict[str, Any], ...]
    purged: bool
    body: str = ""
    """The message's own words (its plain text, or its HTML as text), at most
    :data:`BODY_CHARS` characters, with a note when cut: most review decisions hang on
    what the person wrote, not on the attachment."""


BODY_CHARS = 4000


@dataclass(frozen=True)
class ActionResult:
    """What ``fix``, ``accept``, ``reject`` or ``reprocess`` did."""

    id: int
    ref: str
    action: str
    outcome: str
    resolution: str | None
    registrations: tuple[str, ...] = ()
    replies: tuple[str, ...] = ()
    """Mails queued, as "kind → address"."""
    notes: tuple[str, ...] = ()
    """What changed, and why something was not done (a skipped mail, a missing copy)."""


# --- finding items ---------------------------------------------------------------------

_REF = re.compile(r"^[0-9a-f]{10}$")


def find_message(session: Session, key: str | int) -> InboundMessage:
    """The ledger row named by its id or its ref; :class:`ReviewError` when none is."""
    text = str(key).strip().lower()
    row: InboundMessage | None = None
    if _REF.match(text):
        row = session.exec(select(InboundMessage).where(InboundMessage.ref == text)).first()
    if row is None and text.isdigit() and len(text) < 19:
        row = session.get(InboundMessage, int(text))
    if row is None:
        raise ReviewNotFound(f"no message {key!r} (give its id or its 10-character ref, see `mailbot review list`)")
    return row


def _is_open(row: InboundMessage) -> bool:
    return row.outcome == "needs_review" and row.resolution is None and row.purged_at is None


def _require_open(row: InboundMessage, action: str) -> None:
    if row.purged_at is not None:
        raise ReviewError(f"message {row.ref} was purged (retention); nothing to {action}")
    if row.outcome != "needs_review":
        raise ReviewError(f"message {row.ref} is {row.outcome}, not waiting for review; nothing to {action}")
    if row.resolution is not None:
        when = f" on {row.resolved_at:%Y-%m-%d}" if row.resolved_at else ""
        raise ReviewError(f"message {row.ref} was already {row.resolution}{when}")


def _sender(row: InboundMessage) -> str:
    if row.from_name and row.from_addr:
        return f"{row.from_name} <{row.from_addr}>"
    return row.from_addr or row.from_name or ""


def _item(ctx: IngestContext, row: InboundMessage) -> ReviewItem:
    assert row.id is not None
    return ReviewItem(
        id=row.id,
        ref=row.ref,
        received_at=row.received_at.astimezone(ctx.settings.tz),
        sender=_sender(row),
        subject=row.subject or "",
        outcome=row.outcome,
        reason=row.reason or "",
        resolution=row.resolution,
    )


def list_open(ctx: IngestContext) -> list[ReviewItem]:
    """Messages waiting for a person: needs_review and not yet resolved, oldest first."""
    with ctx.session_factory() as session:
        rows = session.exec(
            select(InboundMessage)
            .where(
                InboundMessage.outcome == "needs_review",
                col(InboundMessage.resolution).is_(None),
                col(InboundMessage.purged_at).is_(None),
            )
            .order_by(col(InboundMessage.received_at), col(InboundMessage.id))
        ).all()
        return [_item(ctx, r) for r in rows]


def _source_registrations(session: Session, row: InboundMessage) -> list[Registration]:
    """Registrations the message registered or corrected (what fix and accept act on)."""
    ids = set(session.exec(select(Registration.id).where(Registration.source_inbound_id == row.id)).all())
    ids.update(
        session.exec(
            select(RegistrationVersion.registration_id).where(RegistrationVersion.replaced_by_inbound_id == row.id)
        ).all()
    )
    if not ids:
        return []
    return list(session.exec(select(Registration).where(col(Registration.id).in_(ids)).order_by(col(Registration.id))).all())


def _related_registrations(session: Session, row: InboundMessage, known: Iterable[int | None]) -> list[Registration]:
    seen = set(known)
    ids = [
        i
        for i in dict.fromkeys(
            session.exec(
                select(OutboundMail.registration_id).where(
                    OutboundMail.inbound_id == row.id, col(OutboundMail.registration_id).is_not(None)
                )
            ).all()
        )
        if i not in seen
    ]
    if not ids:
        return []
    return list(session.exec(select(Registration).where(col(Registration.id).in_(ids)).order_by(col(Registration.id))).all())


# --- show --------------------------------------------------------------------------------


def _headers(data: bytes) -> tuple[tuple[str, str], ...]:
    parser = email.parser.BytesHeaderParser(policy=email.policy.default)
    try:
        msg = parser.parsebytes(data[: 1024 * 1024])
        out: list[tuple[str, str]] = []
        for name, value in msg.items()[:200]:
            text = " ".join(str(value).split())
            out.append((name, text[:1000]))
        return tuple(out)
    except Exception:  # noqa: BLE001 - a broken header block is shown as missing, not fatal
        return ()


def _body(ctx: IngestContext, data: bytes) -> str:
    """The text :data:`ItemDetail.body` shows; a message over the size limit is not
    opened here either."""
    if len(data) > ctx.settings.limits.max_message_bytes:
        return "(not opened: the message is over limits.max_message_bytes)"
    text = parse_message(data, ctx.mime_limits).text.strip()
    if len(text) > BODY_CHARS:
        return text[:BODY_CHARS].rstrip() + f"\n[… cut: {len(text) - BODY_CHARS} more characters]"
    return text


def _problems(reg: Registration) -> tuple[Problem, ...]:
    try:
        raw = json.loads(reg.problems_json or "[]")
    except ValueError:
        return ()
    out = []
    for p in raw if isinstance(raw, list) else []:
        if isinstance(p, dict):
            suggestion = p.get("suggestion")
            out.append(
                Problem(
                    str(p.get("field", "")), p.get("code", "invalid"), str(p.get("message", "")),
                    suggestion=str(suggestion) if suggestion else None,
                )
            )
    return tuple(out)


def _registration_view(session: Session, reg: Registration, relation: str) -> RegistrationView:
    assert reg.id is not None
    people = participants_of(session, reg.id)
    versions = session.exec(
        select(RegistrationVersion.id).where(RegistrationVersion.registration_id == reg.id)
    ).all()
    return RegistrationView(
        code=reg.code,
        relation=relation,
        event_key=reg.event_key,
        status=reg.status,
        version=reg.version,
        institution_name=reg.institution_name,
        institution_address=reg.institution_address,
        institution_phone=reg.institution_phone,
        institution_email=reg.institution_email,
        workshops=reg.workshops,
        remarks=reg.remarks,
        consent_data_processing=reg.consent_data_processing,
        consent_newsletter=reg.consent_newsletter,
        sender_email=reg.sender_email,
        participants=tuple(
            PersonView(
                number=i + 1,
                full_name=p.full_name,
                job_title=p.job_title,
                phone=p.phone,
                email=p.email,
                status=p.status,
                consent_data_processing=p.consent_data_processing,
                consent_newsletter=p.consent_newsletter,
                email_check=p.email_check,
                email_as_read=p.email_as_read,
                email_suggestion=p.email_suggestion,
                email_doubt_note=p.email_doubt_note,
                email_settled_by=p.email_settled_by,
            )
            for i, p in enumerate(people)
        ),
        problems=_problems(reg),
        versions=len(versions),
    )


def show(ctx: IngestContext, key: str | int) -> ItemDetail:
    """Everything about one message (any outcome, open or resolved)."""
    with ctx.session_factory() as session:
        row = find_message(session, key)
        data: bytes | None = None
        if row.purged_at is None:
            try:
                data = ctx.blobs.get(row.raw_sha256)
            except FileNotFoundError:
                data = None
        attachments = session.exec(
            select(StoredAttachment).where(StoredAttachment.inbound_id == row.id).order_by(col(StoredAttachment.id))
        ).all()
        source = _source_registrations(session, row)
        related = _related_registrations(session, row, (r.id for r in source))
        if data is not None and not source:
            known = {r.id for r in related}
            related += [r for r in _linked(ctx, data, session) if r.id not in known]
        replies = session.exec(
            select(OutboundMail).where(OutboundMail.inbound_id == row.id).order_by(col(OutboundMail.id))
        ).all()
        tz = ctx.settings.tz
        return ItemDetail(
            item=_item(ctx, row),
            size=row.size,
            times_seen=row.times_seen,
            headers=_headers(data) if data is not None else (),
            raw_stored=data is not None,
            body=_body(ctx, data) if data is not None else "",
            warnings=row.warnings,
            resolved_at=row.resolved_at.astimezone(tz) if row.resolved_at else None,
            resolution_note=row.resolution_note,
            attachments=tuple(
                AttachmentView(
                    id=a.id or 0,
                    filename=a.filename,
                    content_type=a.content_type,
                    size=a.size,
                    origin=a.origin,
                    parse_status=a.parse_status,
                    parse_format=a.parse_format,
                    parse_method=a.parse_method,
                    parse_reason=a.parse_reason,
                    form=_loads(a.parse_json),
                )
                for a in attachments
            ),
            registrations=tuple(
                [_registration_view(session, r, "source") for r in source]
                + [_registration_view(session, r, "related") for r in related]
            ),
            replies=tuple(
                ReplyView(
                    kind=m.kind,
                    to=m.to_addr,
                    status=m.status,
                    created_at=m.created_at.astimezone(tz),
                    sent_at=m.sent_at.astimezone(tz) if m.sent_at else None,
                )
                for m in replies
            ),
            history=tuple(row.history_entries()),
            purged=row.purged_at is not None,
        )


def _linked(ctx: IngestContext, data: bytes, session: Session) -> list[Registration]:
    """The registrations a stored message is tied to by a quoted code or the thread."""
    too_large = len(data) > ctx.settings.limits.max_message_bytes
    parsed = parse_message(_headers_only(data) if too_large else data, ctx.mime_limits)
    return linked_registrations(session, parsed)


def _about(ctx: IngestContext, session: Session, row: InboundMessage) -> list[Registration]:
    """What ``fix`` and ``confirm`` act on: the registrations the message made, else
    (a reply) the ones it is tied to."""
    made = _source_registrations(session, row)
    if made or row.purged_at is not None:
        return made
    try:
        data = ctx.blobs.get(row.raw_sha256)
    except FileNotFoundError:
        return []
    return _linked(ctx, data, session)


def _loads(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# --- fix ---------------------------------------------------------------------------------

_ASSIGNMENT = re.compile(
    r"^\s*(?:"
    r"institution\.(?P<inst>name|address|phone|email)"
    r"|participants\[(?P<index>\d{1,3})\]\.(?P<person>full_name|name|position|job_title|phone|email)"
    r"|consents\.(?P<consent>data_processing|newsletter)"
    r"|(?P<top>event|workshops|remarks)"
    r")\s*=(?P<value>.*)$",
    re.DOTALL,
)
_PERSON_FIELD = {"full_name": "full_name", "name": "full_name", "position": "position", "job_title": "position"}
_YES = {"tak", "t", "yes", "y", "true", "1", "x"}
_NO = {"nie", "n", "no", "false", "0", ""}
FIELDS_HELP = (
    "institution.name|address|phone|email, participants[N].full_name|position|phone|email "
    "(N counts from 1, as the mails and `review show` number participants; with --add the next N "
    "adds a person), event, "
    "workshops (e.g. A,B or empty), remarks, consents.data_processing|newsletter (tak/nie)"
)


@dataclass(frozen=True)
class Assignment:
    """One validated ``field=value`` of ``review fix``."""

    path: str
    """The field as problems name it (the form contract: participants from 0):
    ``institution.phone``, ``participants[0].email``."""
    value: str | bool | tuple[str, ...] | None
    index: int | None = None
    """The participant's position from 0; admins write it from 1."""
    name: str = ""

    @property
    def label(self) -> str:
        """The field as the admin wrote it (participants from 1)."""
        return shown_field(self.path)


def parse_assignment(text: str, *, events: Sequence[str], workshops: Iterable[str]) -> Assignment:
    """Validate one ``field=value`` like the form reader does; :class:`ReviewError`
    says what is wrong (an e-mail address or phone number that is not one, an unknown
    event or workshop). An empty value clears a field."""
    match = _ASSIGNMENT.match(text)
    if match is None:
        raise ReviewUsageError(f"{text!r}: expected field=value with field one of {FIELDS_HELP}")
    raw = match.group("value")
    if match.group("inst"):
        name = match.group("inst")
        return Assignment(f"institution.{name}", _text_value(f"institution.{name}", name, raw), name=name)
    if match.group("person"):
        number = int(match.group("index"))
        name = _PERSON_FIELD.get(match.group("person"), match.group("person"))
        if number < 1:
            raise ReviewUsageError(
                f"{text!r}: participants are numbered from 1, as in the mails and `review show`"
            )
        path = f"participants[{number - 1}].{name}"
        return Assignment(path, _text_value(f"participants[{number}].{name}", name, raw), index=number - 1, name=name)
    if match.group("consent"):
        name = match.group("consent")
        answer = raw.strip().casefold()
        if answer not in _YES | _NO:
            raise ReviewUsageError(f"consents.{name}={raw!r}: answer tak or nie")
        return Assignment(f"consents.{name}", answer in _YES, name=name)
    top = match.group("top")
    if top == "event":
        key = raw.strip()
        if key not in events:
            raise ReviewNotFound(f"event={raw!r}: not a configured event ({', '.join(events)})")
        return Assignment("event", key, name="event")
    if top == "workshops":
        known = {w.upper() for w in workshops}
        letters = tuple(sorted({w.strip().upper() for w in re.split(r"[\s,;]+", raw) if w.strip() and w.strip() != "-"}))
        unknown = [w for w in letters if w not in known]
        if unknown:
            raise ReviewUsageError(f"workshops={raw!r}: no workshop {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return Assignment("workshops", letters, name="workshops")
    return Assignment("remarks", clean_text(raw), name="remarks")


def _text_value(path: str, name: str, raw: str) -> str | None:
    if name == "phone":
        phone, ok = normalize_phone(raw)
        if not ok:
            raise ReviewUsageError(f"{path}={raw!r}: not a phone number")
        return phone
    if name == "email":
        address, ok = normalize_email(raw)
        if not ok:
            raise ReviewUsageError(f"{path}={raw!r}: not an e-mail address")
        return address
    return clean_text(raw)


def _form_of(session: Session, reg: Registration, filename: str) -> FormData:
    """The registration as it stands, as the form that would produce it."""
    assert reg.id is not None
    return FormData(
        file=filename,
        status="ok",
        format=None,
        event=reg.event_key,
        institution=Institution(
            reg.institution_name, reg.institution_address, reg.institution_phone, reg.institution_email
        ),
        participants=[
            FormParticipant(p.full_name, p.job_title, p.phone, p.email) for p in participants_of(session, reg.id)
        ],
        workshops=[w for w in reg.workshops.split(",") if w],
        remarks=reg.remarks,
        consents=Consents(reg.consent_data_processing, reg.consent_newsletter),
        problems=list(_problems(reg)),
    )


# Problems the reader derives from values alone; recomputed from the fixed values.
_VALUE_CHECKED = re.compile(
    r"^(?:institution\.(?:name|phone|email)|participants|participants\[\d+\]\.(?:full_name|phone|email)"
    r"|consents\.data_processing)$"
)


def validate(form: FormData, touched: Iterable[str]) -> list[Problem]:
    """The problems of ``form`` after a fix, as the reader would report them: the checks
    on values (missing name, e-mail address, consent; invalid phone or address) are
    made again, in the reader's words; other findings (an ambiguous tick, a doubtful
    scan) stay until the admin sets that field."""
    touched = set(touched)
    kept = [
        p
        for p in form.problems
        if (p.code == "low_confidence" or not _VALUE_CHECKED.match(p.field)) and p.field not in touched
    ]
    out: list[Problem] = []
    inst = form.institution or Institution()
    if inst.name is None:
        out.append(Problem("institution.name", "missing", "Brak nazwy instytucji."))
    phone, ok = normalize_phone(inst.phone)
    if not ok:
        out.append(Problem("institution.phone", "invalid", f"Nieprawidłowy numer telefonu instytucji: {phone}."))
    address, ok = normalize_email(inst.email)
    if not ok:
        out.append(Problem("institution.email", "invalid", f"Nieprawidłowy adres e-mail instytucji: {address}."))
    for i, p in enumerate(form.participants):
        n = i + 1
        if p.full_name is None:
            out.append(Problem(f"participants[{i}].full_name", "missing", f"Brak imienia i nazwiska uczestnika {n}."))
        phone, ok = normalize_phone(p.phone)
        if not ok:
            out.append(
                Problem(f"participants[{i}].phone", "invalid", f"Nieprawidłowy numer telefonu uczestnika {n}: {phone}.")
            )
        address, ok = normalize_email(p.email)
        if address is None:
            out.append(Problem(f"participants[{i}].email", "missing", f"Brak adresu e-mail uczestnika {n}."))
        elif not ok:
            out.append(
                Problem(f"participants[{i}].email", "invalid", f"Nieprawidłowy adres e-mail uczestnika {n}: {address}.")
            )
    if not form.participants:
        out.append(Problem("participants", "missing", "Brak uczestników w zgłoszeniu."))
    if not (form.consents and form.consents.data_processing):
        out.append(
            Problem("consents.data_processing", "missing", "Brak zgody na przetwarzanie danych osobowych.")
        )
    # The reader's order: institution, people, then the rest of what it found.
    return out + kept


def _blocking(problems: Iterable[Problem]) -> list[Problem]:
    """Problems the participant must still fix (an unrecognised event is not one of them
    once the registration has an event)."""
    return [p for p in problems if p.code not in NON_BLOCKING_CODES and p.field != "event"]


def _edit(form: FormData, edits: Sequence[Assignment], *, add: bool = False) -> FormData:
    """``form`` with ``edits`` applied. A participant number one past the last adds a
    person only with ``add`` (a typo must not invent a participant)."""
    inst = dataclasses.replace(form.institution or Institution())
    people = [dataclasses.replace(p) for p in form.participants]
    consents = dataclasses.replace(form.consents or Consents())
    event, workshops, remarks = form.event, list(form.workshops), form.remarks
    for a in edits:
        if a.path.startswith("institution."):
            setattr(inst, a.name, a.value)
        elif a.index is not None:
            if a.index > len(people) or (a.index == len(people) and not add):
                listed = f"participants[1]–[{len(people)}]" if people else "nobody yet"
                raise ReviewUsageError(
                    f"{a.label}: the registration lists {len(people)} participant(s) ({listed}); "
                    f"to add one, give {participant_label(len(people))}.… with --add"
                )
            if a.index == len(people):
                people.append(FormParticipant())
            setattr(people[a.index], a.name, a.value)
        elif a.path.startswith("consents."):
            setattr(consents, a.name, bool(a.value))
        elif a.path == "event":
            event = str(a.value)
        elif a.path == "workshops":
            workshops = list(a.value) if isinstance(a.value, tuple) else []
        elif a.path == "remarks":
            remarks = a.value if isinstance(a.value, str) else None
    return dataclasses.replace(
        form,
        event=event,
        institution=inst,
        participants=people,
        workshops=workshops,
        remarks=remarks,
        consents=consents,
    )


def _pick(regs: Sequence[Registration], code: str | None, ref: str) -> Registration:
    if code is not None:
        wanted = code.strip().upper()
        for reg in regs:
            if reg.code.upper() == wanted:
                return reg
        codes = ", ".join(r.code for r in regs) or "none"
        raise ReviewNotFound(f"registration {code} did not come from message {ref} (its registrations: {codes})")
    if not regs:
        raise ReviewError(f"message {ref} created no registration; nothing to fix (reprocess it, or reject it)")
    if len(regs) > 1:
        raise ReviewUsageError(
            f"message {ref} created {len(regs)} registrations ({', '.join(r.code for r in regs)}): "
            "name one with --registration CODE"
        )
    return regs[0]


def _event(ctx: IngestContext, key: str) -> EventSettings | None:
    try:
        return ctx.settings.event(key)
    except KeyError:
        return None


def _vocabulary(ctx: IngestContext) -> Vocabulary:
    return ctx.vocabulary if ctx.vocabulary is not None else default_vocabulary()


def fix(
    ctx: IngestContext,
    key: str | int,
    assignments: Sequence[str],
    *,
    registration: str | None = None,
    note: str | None = None,
    add: bool = False,
) -> ActionResult:
    """Correct fields of the registration the message created (``registration`` = its
    code when the message created several), e.g. ``participants[1].email=jan@x.pl`` for
    the first participant (numbered from 1 as in the mails; ``add`` lets the number
    after the last add a person).

    All values are validated first; one invalid value changes nothing. The change is a
    new version of the registration (the previous state kept as for a corrected form).
    When it makes an incomplete registration complete, or moves it to another event,
    the sender gets the ``updated`` mail; people it adds (or moves) get ``ack`` or
    ``waitlist``. A needs_review message is resolved as ``fixed`` once its registrations
    are complete and not late (a late one still waits for accept or reject)."""
    if not assignments:
        raise ReviewUsageError(f"nothing to fix: give field=value pairs ({FIELDS_HELP})")
    settings = ctx.settings
    now = ctx.now()
    edits = [
        parse_assignment(a, events=[e.key for e in settings.events], workshops=_vocabulary(ctx).workshops)
        for a in assignments
    ]
    with ctx.session_factory() as session:
        row = find_message(session, key)
        assert row.id is not None
        if row.purged_at is not None:
            raise ReviewError(f"message {row.ref} was purged (retention); nothing to fix")
        reg = _pick(_about(ctx, session, row), registration, row.ref)
        assert reg.id is not None
        if reg.status == "cancelled":
            raise ReviewError(f"{reg.code} was withdrawn; a withdrawn registration is not corrected")
        if reg.purged_at is not None:
            raise ReviewError(f"{reg.code} was purged (retention)")
        attachment = session.get(StoredAttachment, reg.source_attachment_id) if reg.source_attachment_id else None
        before = _form_of(session, reg, attachment.filename if attachment else f"{reg.code} (review)")
        after = _edit(before, edits, add=add)
        if _same(before, after):
            hint = ""
            if any(a.name == "email" for a in edits) and doubts.unconfirmed(session, [reg]):
                hint = f" (to confirm an address as read: mailbot review confirm {row.id} N)"
            raise ReviewError(f"{reg.code} already has these values; nothing changed{hint}")
        touched = {a.path for a in edits}
        after.problems = validate(after, touched)
        old_status, old_event = reg.status, reg.event_key
        old_people = list(participants_of(session, reg.id))
        applied = apply_form(
            session,
            after,
            event_key=old_event,
            event_defaulted=True,  # the registration has its event: "unknown event" blocks nothing
            sender=reg.sender_email,
            inbound_id=row.id,
            attachment_id=reg.source_attachment_id,
            seed=f"{row.dedupe_key}:fix",
            now=now,
            target=reg,
            late=old_status == "late",
            settled_by="review",
        )
        assert applied.registration.id == reg.id
        applied = _keep_withdrawn(session, applied, old_people)
        out = Queued()
        notes: list[str] = [f"{reg.code}: {c.field}: {c.old} → {c.new}" for c in applied.changes]
        new_event_key = after.event or old_event
        moved = new_event_key != old_event
        if moved:
            applied = _move(ctx, session, applied, old_event, new_event_key, now, out, notes)
        elif applied.added and reg.status != "late":
            event = _event(ctx, reg.event_key)
            if event is not None:
                allocate(session, reg.event_key, event.capacity, applied.added, now)
        if reg.status != old_status:
            notes.append(f"{reg.code}: status {old_status} → {reg.status}")
        blocking = [p.message for p in applied.blocking_problems]
        if reg.status == "incomplete":
            notes.extend(f"{reg.code}: still missing: {m}" for m in blocking)
        if reg.status == "late":
            notes.append(f"{reg.code}: still late, holds no seat: accept or reject the message")
        _fix_mails(ctx, session, row, applied, became_complete=old_status == "incomplete" and reg.status == "confirmed",
                   moved=moved, now=now, out=out, notes=notes)
        resolution = row.resolution
        if _is_open(row):
            about = _about(ctx, session, row)
            left = [r for r in about if r.status in ("incomplete", "late")]
            if not left and not doubts.unconfirmed(session, about):
                row.resolution = resolution = "fixed"
                row.resolved_at = now
                row.resolution_note = (note or None) and (note or "")[:2000]
        row.add_history(
            "fix",
            now,
            registration=reg.code,
            version=reg.version,
            fields=[a.path for a in edits],
            changes=[f"{c.field}: {c.old} → {c.new}" for c in applied.changes],
            status=reg.status,
            replies=out.queued,
            note=note,
        )
        session.add(row)
        session.commit()
        notes.extend(out.skipped)
        return ActionResult(
            id=row.id,
            ref=row.ref,
            action="fix",
            outcome=row.outcome,
            resolution=resolution,
            registrations=(reg.code,),
            replies=tuple(out.queued),
            notes=tuple(notes),
        )


def _same(a: FormData, b: FormData) -> bool:
    return (a.event, a.institution, a.participants, sorted(a.workshops), a.remarks, a.consents) == (
        b.event,
        b.institution,
        b.participants,
        sorted(b.workshops),
        b.remarks,
        b.consents,
    )


def _keep_withdrawn(session: Session, applied: Applied, old_people: Sequence[Any]) -> Applied:
    """A person who withdrew stays withdrawn when the admin fixes their registration
    (a corrected *form* listing them again would bring them back; a fix does not)."""
    reg = applied.registration
    assert reg.id is not None
    withdrawn = {i: p for i, p in enumerate(old_people) if p.status == "cancelled"}
    if not withdrawn:
        return applied
    kept_out = set()
    for person in participants_of(session, reg.id):
        old = withdrawn.get(person.position)
        if old is None:
            continue
        person.status = "cancelled"
        person.registered_at = old.registered_at
        person.status_changed_at = old.status_changed_at
        session.add(person)
        kept_out.add(person.id)
    session.flush()
    return dataclasses.replace(applied, added=tuple(p for p in applied.added if p.id not in kept_out))


def _move(
    ctx: IngestContext,
    session: Session,
    applied: Applied,
    old_key: str,
    new_key: str,
    now: dt.datetime,
    out: Queued,
    notes: list[str],
) -> Applied:
    """Move the registration to another event: its people take a place there (a seat or
    the waiting list), the seats they leave go to the old event's waiting list."""
    reg = applied.registration
    assert reg.id is not None
    reg.event_key = new_key
    session.add(reg)
    session.flush()
    old_event, new_event = _event(ctx, old_key), _event(ctx, new_key)
    assert new_event is not None  # validated by parse_assignment
    label = "Konferencja"
    change = Change(label, _event_label(old_event, old_key), _event_label(new_event, new_key))
    notes.append(f"{reg.code}: event {old_key} → {new_key}")
    movers: list[Any] = []
    if reg.status != "late":
        movers = [p for p in participants_of(session, reg.id) if p.status in ("confirmed", "waitlisted", "pending")]
        allocate(session, new_key, new_event.capacity, movers, now)
        if old_event is not None:
            moved_up = promote(session, old_key, old_event.capacity, now)
            promoted(session, ctx.mailer, moved_up, old_event, now=now, out=out)
    return dataclasses.replace(applied, added=tuple(movers), changes=(change, *applied.changes))


def _event_label(event: EventSettings | None, key: str) -> str:
    if event is None:
        return key
    return f"{event.title}, {event.city}, {event.date.isoformat()}"


def _fix_mails(
    ctx: IngestContext,
    session: Session,
    row: InboundMessage,
    applied: Applied,
    *,
    became_complete: bool,
    moved: bool,
    now: dt.datetime,
    out: Queued,
    notes: list[str],
) -> None:
    reg = applied.registration
    if reg.status == "late":
        return  # not seated: accept decides, and then the mails go
    event = _event(ctx, reg.event_key)
    if event is None:
        notes.append(f"{reg.code}: event {reg.event_key} is not configured; no mail")
        return
    if now.astimezone(ctx.settings.tz).date() > event.date:
        notes.append(f"{reg.code}: {event.key} took place on {event.date.isoformat()}; no mail")
        return
    answering, reply_to = answering_for(ctx, row)
    problems = [p.message for p in applied.blocking_problems]
    if (became_complete or moved) and answering is not None:
        corrected(session, ctx.mailer, applied, event, answering=answering, reply_to=reply_to,
                  problems=problems, now=now, out=out)
        return
    if (became_complete or moved) and answering is None:
        notes.append(f"message {row.ref} is not answered (its copy is gone or it is automatic mail): no updated mail")
    if applied.added:
        welcome(session, ctx.mailer, reg, event, answering=answering, reply_to=None, problems=(),
                now=now, out=out, only_new=applied.added)
    if applied.settled:
        welcome_settled(session, ctx.mailer, reg, applied.settled, event, answering=answering, now=now, out=out)


# --- confirm -----------------------------------------------------------------------------


def confirm(
    ctx: IngestContext,
    key: str | int,
    number: int | None = None,
    *,
    registration: str | None = None,
    suggestion: bool = False,
    note: str | None = None,
) -> ActionResult:
    """Settle the unconfirmed address of participant ``number`` (from 1, as ``review
    show`` and the mails number them; may be left out when only one address waits) as
    read — or, with
    ``suggestion``, as the reader suggested. The participant gets the first mail of
    their own (``ack``/``waitlist``). A message waiting for review is resolved as
    ``fixed`` once no address of its registrations waits any more. Another address
    altogether: ``fix ID participants[N].email=…``."""
    now = ctx.now()
    with ctx.session_factory() as session:
        row = find_message(session, key)
        assert row.id is not None
        if row.purged_at is not None:
            raise ReviewError(f"message {row.ref} was purged (retention); nothing to confirm")
        reg = _pick(_about(ctx, session, row), registration, row.ref)
        assert reg.id is not None
        people = list(participants_of(session, reg.id))
        pending = {p.id for _, p in doubts.unconfirmed(session, [reg])}
        waiting = {i + 1: p for i, p in enumerate(people) if p.id in pending}
        listed = ", ".join(f"participants[{n}] {p.email}" for n, p in waiting.items()) or "none"
        if not waiting:
            raise ReviewError(f"{reg.code} has no unconfirmed e-mail address; nothing to confirm")
        if number is None:
            if len(waiting) > 1:
                raise ReviewUsageError(f"{reg.code} has {len(waiting)} unconfirmed addresses ({listed}): give N")
            number = next(iter(waiting))
        if number not in waiting:
            raise ReviewUsageError(
                f"participants[{number}] of {reg.code} has no unconfirmed address (waiting: {listed})"
            )
        person = waiting[number]
        address = person.email_suggestion if suggestion else person.email
        if not address:
            raise ReviewUsageError(
                f"participants[{number}] of {reg.code}: the reader suggested no other address; "
                f"confirm it as read, or fix participants[{number}].email=…"
            )
        change = doubts.settle(session, reg, person, address, by="review", inbound_id=row.id, now=now)
        settled = doubts.Settled()
        settled.add(reg, person, f"{'corrected' if change else 'confirmed'} the e-mail of {person.full_name}", change)
        answering, _ = answering_for(ctx, row)
        out = Queued()
        notes = [f"{reg.code}: participants[{number}].email {address} {'corrected' if change else 'confirmed'}"]
        notes += doubts.queue_settled(session, ctx.mailer, settled, answering=answering, reply_to=None,
                                      tell_sender=False, now=now, out=out)
        resolution = row.resolution
        if _is_open(row) and not doubts.unconfirmed(session, _about(ctx, session, row)):
            row.resolution = resolution = "fixed"
            row.resolved_at = now
            row.resolution_note = (note or None) and (note or "")[:2000]
        row.add_history("confirm", now, registration=reg.code, field=f"participants[{number}].email",
                        address=address, replies=out.queued, note=note)
        session.add(row)
        session.commit()
        notes.extend(out.skipped)
        return ActionResult(
            id=row.id,
            ref=row.ref,
            action="confirm",
            outcome=row.outcome,
            resolution=resolution,
            registrations=(reg.code,),
            replies=tuple(out.queued),
            notes=tuple(notes),
        )


# --- accept, reject, reprocess -----------------------------------------------------------


def accept(ctx: IngestContext, key: str | int, *, note: str | None = None) -> ActionResult:
    """Resolve a needs_review message as accepted. A late registration it brought is
    taken after all: its people get seats (or the waiting list, by capacity) and the
    mails of an on-time form (``ack``/``waitlist`` to each, ``incomplete`` to the sender
    when data is missing). Anything else is only marked accepted."""
    now = ctx.now()
    with ctx.session_factory() as session:
        row = find_message(session, key)
        assert row.id is not None
        _require_open(row, "accept")
        late = [r for r in _source_registrations(session, row) if r.status == "late"]
        today = now.astimezone(ctx.settings.tz).date()
        events: dict[str, EventSettings] = {}
        for reg in late:
            event = _event(ctx, reg.event_key)
            if event is None:
                raise ReviewError(f"{reg.code}: event {reg.event_key} is not configured; fix event= first")
            if today > event.date:
                raise ReviewError(
                    f"{reg.code}: {event.key} took place on {event.date.isoformat()}; a late registration "
                    "for it cannot be seated (reject it, or fix event= to a coming event first)"
                )
            events[reg.code] = event
        answering = reply_to = None
        if late:
            answering, reply_to = answering_for(ctx, row)
        out = Queued()
        notes: list[str] = []
        for reg in late:
            assert reg.id is not None
            event = events[reg.code]
            blocking = _blocking(_problems(reg))
            reg.status = "incomplete" if blocking else "confirmed"
            reg.updated_at = now
            session.add(reg)
            people = [p for p in participants_of(session, reg.id) if p.status == "late"]
            allocate(session, reg.event_key, event.capacity, people, now)
            seated = sum(1 for p in people if p.status == "confirmed")
            notes.append(
                f"{reg.code}: late → {reg.status}; {seated} seated, {len(people) - seated} on the waiting list"
            )
            welcome(session, ctx.mailer, reg, event, answering=answering, reply_to=reply_to,
                    problems=[p.message for p in blocking], now=now, out=out)
        _resolve(row, "accept", "accepted", now, note, replies=out.queued, registrations=[r.code for r in late])
        session.add(row)
        session.commit()
        notes.extend(out.skipped)
        return ActionResult(
            id=row.id,
            ref=row.ref,
            action="accept",
            outcome=row.outcome,
            resolution=row.resolution,
            registrations=tuple(r.code for r in late),
            replies=tuple(out.queued),
            notes=tuple(notes),
        )


def reject(ctx: IngestContext, key: str | int, *, note: str | None = None) -> ActionResult:
    """Resolve a needs_review message as rejected, with an optional note; no mail, and
    a late registration it brought stays late (holding no seat)."""
    now = ctx.now()
    with ctx.session_factory() as session:
        row = find_message(session, key)
        assert row.id is not None
        _require_open(row, "reject")
        _resolve(row, "reject", "rejected", now, note)
        session.add(row)
        session.commit()
        return ActionResult(id=row.id, ref=row.ref, action="reject", outcome=row.outcome, resolution=row.resolution)


def reprocess(ctx: IngestContext, key: str | int, *, note: str | None = None) -> ActionResult:
    """Run a message the pipeline did not register (needs_review, still open, or
    ignored) again from its stored raw copy, e.g. after the admin extended the label
    vocabulary: its old outcome is replaced, and the replies the pipeline sends for the
    new one are queued (nothing already queued goes twice). A registered message is
    corrected with ``fix`` instead (so is a late one): reading it again would correct
    its registration with itself."""
    with ctx.session_factory() as session:
        row = find_message(session, key)
        assert row.id is not None
        if row.outcome == "registered":
            raise ReviewError(f"message {row.ref} was registered; correct its registration with fix")
        if row.resolution is not None:
            raise ReviewError(f"message {row.ref} was already {row.resolution}")
        made = _source_registrations(session, row)
        if made:
            # Read again, its form would correct the registration it made itself.
            codes = ", ".join(r.code for r in made)
            raise ReviewError(
                f"message {row.ref} already made registration(s) {codes}: correct them with fix, "
                "then accept or reject the message"
            )
        inbound_id, before = row.id, row.outcome
    try:
        result = ingest_reprocess(ctx, inbound_id, note=note)
    except ReprocessError as e:
        raise ReviewError(str(e)) from e
    with ctx.session_factory() as session:
        row = find_message(session, inbound_id)
        resolution = row.resolution
    notes = [f"was {before}, now {result.outcome}: {result.reason}"]
    return ActionResult(
        id=result.inbound_id,
        ref=result.ref,
        action="reprocess",
        outcome=result.outcome,
        resolution=resolution,
        registrations=result.registrations,
        replies=result.replies,
        notes=tuple(notes),
    )


def _resolve(
    row: InboundMessage,
    action: str,
    resolution: str,
    now: dt.datetime,
    note: str | None,
    **details: Any,
) -> None:
    row.resolution = resolution
    row.resolved_at = now
    row.resolution_note = (note or None) and (note or "")[:2000]
    row.add_history(action, now, note=note, **details)


# --- printable text ----------------------------------------------------------------------


def _short(text: str | None, width: int) -> str:
    value = " ".join((text or "").split())
    return value if len(value) <= width else value[: width - 1] + "…"


def render_list(items: Sequence[ReviewItem]) -> str:
    """``review list``: one block per open item, oldest first."""
    if not items:
        return "Nothing waits for review."
    lines = [f"{len(items)} message(s) wait for review:", ""]
    for it in items:
        lines.append(
            f"#{it.id}  {it.ref}  {it.received_at:%Y-%m-%d %H:%M}  {_short(it.sender, 60)}"
        )
        lines.append(f"    subject: {_short(it.subject, 100) or '(none)'}")
        lines.append(f"    reason:  {_short(it.reason, 300)}")
    return "\n".join(lines)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "tak" if value else "nie"
    return "—" if value is None or value == "" else str(value)


def render_show(detail: ItemDetail) -> str:
    """``review show ID``: headers, reason, attachments with their parsed forms, the
    registrations the message created, the replies, and what admins did."""
    it = detail.item
    lines = [
        f"Message #{it.id} ({it.ref}), received {it.received_at:%Y-%m-%d %H:%M}, {detail.size} bytes"
        + (f", seen {detail.times_seen}×" if detail.times_seen > 1 else ""),
        f"Outcome:    {it.outcome}" + (f" — resolved: {it.resolution}" if it.resolution else
                                        " — waiting for review" if it.outcome == "needs_review" else ""),
    ]
    if detail.resolved_at:
        lines.append(f"Resolved:   {detail.resolved_at:%Y-%m-%d %H:%M}" +
                     (f" — {detail.resolution_note}" if detail.resolution_note else ""))
    lines.append(f"Reason:     {it.reason or '—'}")
    if detail.purged:
        lines.append("Purged:     personal data and stored files removed (retention)")
    lines += ["", "Headers:"]
    if detail.headers:
        lines += [f"  {name}: {value}" for name, value in detail.headers]
    else:
        lines.append("  (raw message not stored; from the ledger)")
        lines.append(f"  From: {it.sender or '—'}")
        lines.append(f"  Subject: {it.subject or '—'}")
    if detail.raw_stored:
        lines += ["", "Body:"] + [f"  {line}" for line in (detail.body or "(empty)").splitlines()]
    if detail.warnings:
        lines += ["", "MIME warnings:"] + [f"  {w}" for w in detail.warnings.splitlines()]
    lines += ["", f"Attachments ({len(detail.attachments)}):"]
    for a in detail.attachments:
        how = "/".join(x for x in (a.parse_format, a.parse_method) if x)
        lines.append(f"  [{a.id}] {a.filename} ({a.content_type}, {a.size} bytes) — {a.parse_status or 'not parsed'}"
                     + (f" [{how}]" if how else ""))
        if a.origin and a.origin != a.filename:
            lines.append(f"      from: {a.origin}")
        if a.parse_reason:
            lines.append(f"      reason: {a.parse_reason}")
        if a.form is not None and a.parse_status == "ok":
            lines.append("      read (as `mailbot parse` prints it; its paths count participants from 0):")
            body = json.dumps(a.form, ensure_ascii=False, indent=2)
            lines += ["      " + line for line in body.splitlines()]
    if not detail.attachments:
        lines.append("  (none)")
    lines += ["", f"Registrations ({len(detail.registrations)}):"]
    for r in detail.registrations:
        lines.append(
            f"  {r.code}  {r.event_key}  {r.status}  version {r.version}"
            + ("" if r.relation == "source" else "  (replies of this message were about it)")
        )
        lines.append(f"    institution.name:    {_value(r.institution_name)}")
        lines.append(f"    institution.address: {_value(r.institution_address)}")
        lines.append(f"    institution.phone:   {_value(r.institution_phone)}")
        lines.append(f"    institution.email:   {_value(r.institution_email)}")
        lines.append(f"    sender:              {_value(r.sender_email)}")
        lines.append(f"    workshops:           {_value(r.workshops)}")
        lines.append(f"    remarks:             {_value(r.remarks)}")
        lines.append(
            f"    consents:            data_processing={_value(r.consent_data_processing)}"
            f" newsletter={_value(r.consent_newsletter)}"
        )
        for p in r.participants:
            lines.append(
                f"    participants[{p.number}]: {_value(p.full_name)}; {_value(p.job_title)}; "
                f"{_value(p.phone)}; {_value(p.email)} [{p.status}]"
            )
            lines.extend(_doubt_lines(detail.item.id, r, p))
        for pr in r.problems:
            lines.append(f"    problem {shown_field(pr.field)} ({pr.code}): {pr.message}")
    if not detail.registrations:
        lines.append("  (none)")
    lines += ["", f"Replies ({len(detail.replies)}):"]
    for m in detail.replies:
        lines.append(f"  {m.kind} → {m.to}  {m.status}  queued {m.created_at:%Y-%m-%d %H:%M}"
                     + (f", sent {m.sent_at:%Y-%m-%d %H:%M}" if m.sent_at else ""))
    if not detail.replies:
        lines.append("  (none)")
    if detail.history:
        lines += ["", "History:"]
        for h in detail.history:
            extra = {k: v for k, v in h.items() if k not in ("action", "at") and v not in (None, [], "")}
            lines.append(f"  {h.get('at', '')}  {h.get('action', '')}  "
                         + "; ".join(f"{k}: {_history_value(v)}" for k, v in extra.items()))
    return "\n".join(lines)


def _doubt_lines(item_id: int, reg: RegistrationView, p: PersonView) -> list[str]:
    """The reader's doubt about a participant's address: both readings and the commands
    that settle it (or how it was settled)."""
    if p.email_check is None:
        return []
    pad = "        "
    if p.email_check == "unconfirmed":
        reg_opt = f" --registration {reg.code}" if reg.relation != "source" else ""
        lines = [
            f"{pad}e-mail UNCONFIRMED — no mail goes to it; the sender was asked to confirm or correct it",
            f"{pad}  as read:   {_value(p.email_as_read or p.email)}",
            f"{pad}  suggested: {_value(p.email_suggestion)}",
        ]
        if p.email_doubt_note:
            lines.append(f"{pad}  reader:    {p.email_doubt_note}")
        lines.append(f"{pad}  as read:   mailbot review confirm {item_id} {p.number}{reg_opt}")
        if p.email_suggestion:
            lines.append(f"{pad}  suggested: mailbot review confirm {item_id} {p.number} --suggestion{reg_opt}")
        lines.append(f"{pad}  other:     mailbot review fix {item_id} participants[{p.number}].email=ADDRESS{reg_opt}")
        return lines
    read = f"; read as {p.email_as_read}" if p.email_as_read and p.email_as_read != p.email else ""
    return [f"{pad}e-mail {p.email_check} ({_value(p.email_settled_by)}){read}"]


def _history_value(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return _short(str(value), 300)


def render_result(result: ActionResult) -> str:
    """What ``fix``/``accept``/``reject``/``reprocess`` prints."""
    head = f"Message #{result.id} ({result.ref}): {result.action} done; outcome {result.outcome}"
    if result.resolution:
        head += f", resolved as {result.resolution}"
    elif result.outcome == "needs_review":
        head += ", still waiting for review"
    lines = [head]
    if result.registrations:
        lines.append("Registrations: " + ", ".join(result.registrations))
    lines += [f"  {n}" for n in result.notes]
    if result.replies:
        lines.append("Mails queued:")
        lines += [f"  {r}" for r in result.replies]
    else:
        lines.append("No mail queued.")
    return "\n".join(lines)



# --- JSON (``review list --json``, ``review show --json``) --------------------------------
# The keys are part of the command line's contract (docs/cli.md): add keys, never rename.


def _plain(value: Any) -> Any:
    """Dataclass values as JSON: times in ISO 8601 with their offset, tuples as lists."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def item_json(item: ReviewItem) -> dict[str, Any]:
    """One ``review list --json`` entry."""
    return {str(k): _plain(v) for k, v in dataclasses.asdict(item).items()}


def detail_json(detail: ItemDetail) -> dict[str, Any]:
    """``review show --json``: the text's content. Participants carry ``number`` (from 1,
    as ``fix`` and ``confirm`` take it); problem ``field`` paths use the same numbering,
    except inside ``attachments[].form``, which is ``mailbot parse``'s contract."""
    data = {str(k): _plain(v) for k, v in dataclasses.asdict(detail).items()}
    for reg in data["registrations"]:
        for problem in reg["problems"]:
            problem["field"] = shown_field(problem["field"])
    data["headers"] = [{"name": name, "value": value} for name, value in detail.headers]
    return data
