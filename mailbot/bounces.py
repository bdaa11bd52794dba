"""What comes back from the addresses we write to: bounces and out-of-office replies.

A hard bounce marks the address as bouncing (no more reminders or change notices to it;
the organisers see it in the digest). A soft bounce — a full mailbox, a temporary
failure (:func:`is_soft`) — is only recorded: the mailbox exists and will take mail
again, so muting it would make the person silently miss every later mail; the digest
shows it so the organisers can phone. An out-of-office reply is only counted. None of
them is ever answered — the loop guard has already decided that.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlmodel import Session, col, or_, select

from mailbot.mime import ParsedMessage
from mailbot.store.tables import AddressStatus, OutboundMail, Participant, Registration

_OUR_MESSAGE_ID = re.compile(r"<?([0-9a-f]{32}\.[a-z_]+@[^\s<>]+)>?")
_STATUS_CODE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_FULL_WORDS = re.compile(
    r"mailbox (?:is )?full|over ?quota|quota exceeded|exceeded (?:the |its |their )?(?:storage )?quota"
    r"|insufficient (?:system )?storage|skrzynka (?:odbiorcy )?(?:jest )?pe(?:ł|l)na|przekroczon\w* limit",
    re.IGNORECASE,
)


def status_code(status: str | None, diagnostic: str | None = None) -> str | None:
    """The enhanced status code (RFC 3463) a bounce gives for one recipient: the DSN's
    ``Status:`` field, unless it is missing or only the generic ``X.0.0`` while the
    server's own answer (``Diagnostic-Code``, or a plain-text bounce's transcript) names
    a more precise one — Exchange and some relays write ``5.0.0`` above "552 5.2.2"."""
    found = _STATUS_CODE.search(status or "")
    field = found.group(0) if found else None
    if field is not None and not field.endswith(".0.0"):
        return field
    detail = _STATUS_CODE.search(diagnostic or "")
    return detail.group(0) if detail else field


def is_soft(status: str | None, diagnostic: str | None = None) -> bool:
    """Whether a failed delivery leaves the address usable (soft) rather than dead (hard).

    RFC 3463 (Enhanced Mail System Status Codes), section 3.1: class ``4`` is a
    *persistent transient failure* — the message was valid and may be delivered later;
    class ``5`` is a *permanent failure*. Within class 5, section 3.3 defines ``X.2.2``
    "Mailbox full: the mailbox is full because the user has exceeded a per-mailbox
    administrative quota or physical capacity" and notes it is useful for permanent *and*
    persistent transient errors: the owner empties the mailbox and mail gets through
    again, so ``5.2.2`` is soft. ``X.2.1`` "Mailbox disabled, not accepting messages"
    describes an account the site has switched off; it rarely comes back, so ``5.2.1``
    stays hard, like ``5.1.1`` (no such user). Without any code (a bare mailer-daemon
    text) only the usual "mailbox full"/"over quota" wording makes a bounce soft."""
    code = status_code(status, diagnostic)
    if code is not None:
        klass, subject, detail = code.split(".")
        return klass == "4" or (subject, detail) == ("2", "2")
    return bool(_FULL_WORDS.search(diagnostic or ""))


def is_soft_reason(reason: str | None) -> bool:
    """Whether a stored ``AddressStatus.last_bounce_reason`` is a soft bounce's: the
    reason starts with the recipient's status code (see :func:`record_bounce`), so the
    digest can tell a full mailbox from a dead one without a column of its own."""
    if not reason:
        return False
    head, _, rest = reason.partition(" ")
    return is_soft(head, rest) if _STATUS_CODE.fullmatch(head) else is_soft(None, reason)


def _state(session: Session, address: str) -> AddressStatus:
    key = address.strip().casefold()
    return session.get(AddressStatus, key) or AddressStatus(address=key)


def _known(session: Session, address: str) -> bool:
    """Only addresses we have dealt with are recorded, not whatever a bounce names."""
    key = address.strip().casefold()
    if session.exec(select(OutboundMail.id).where(OutboundMail.to_addr == key)).first():
        return True
    if session.exec(select(Registration.id).where(Registration.sender_email == key)).first():
        return True
    return (
        session.exec(
            select(Participant.id).where(
                or_(col(Participant.email) == key, col(Participant.email) == address.strip())
            )
        ).first()
        is not None
    )


def _returned_recipients(session: Session, parsed: ParsedMessage) -> list[str]:
    """Recipients of our own mail that the bounce returns, when it has no usable DSN:
    its Message-ID quoted in the report, or the References of the bounce."""
    ids = set(parsed.in_reply_to) | set(parsed.references)
    if parsed.report and parsed.report.original_message_id:
        ids.add(parsed.report.original_message_id)
    ids.update(m.group(1) for m in _OUR_MESSAGE_ID.finditer(parsed.text[:200_000]))
    out: list[str] = []
    for message_id in ids:
        row = session.exec(
            select(OutboundMail).where(OutboundMail.message_id == f"<{message_id.strip('<>')}>")
        ).first()
        if row is not None and row.to_addr not in out:
            out.append(row.to_addr)
    return out


def record_bounce(session: Session, parsed: ParsedMessage, now: dt.datetime) -> str:
    """Record the failed recipients; returns what was done, for the ledger.

    Each failed recipient is judged on its own status (:func:`is_soft`): a hard bounce
    marks the address as bouncing; a soft one only counts it and keeps its reason (the
    status code first, as for hard ones), leaving reminders and change notices on — and
    never lifts a hard mark already there. The reason is ``"STATUS diagnostic"`` (or the
    bounce's subject when it has no report), which the digest reads back."""
    report = parsed.report
    if report is not None and report.action and report.action != "failed":
        return f"delivery report ({report.action}); nothing marked"
    verdicts: list[tuple[str, str, bool]] = []
    if report is not None:
        for r in report.recipients:
            if r.action != "failed":
                continue
            reason = f"{r.status} {r.diagnostic}".strip()
            for address in (r.original_recipient, r.final_recipient):
                if address:
                    verdicts.append((address, reason, is_soft(r.status, r.diagnostic)))
    if not verdicts:
        text = parsed.text[:20_000]
        code = status_code(None, text)
        soft = is_soft(None, text)
        words = None if code else _FULL_WORDS.search(text)
        reason = parsed.subject or "bounce"
        if code:
            reason = f"{code} {reason}"
        elif words:  # kept in the reason, so the digest reads it as soft too
            reason = f"{reason} ({words.group(0)})"
        verdicts = [(address, reason, soft) for address in _returned_recipients(session, parsed)]
    marked: list[str] = []
    soft_ones: list[str] = []
    for address, reason, soft in verdicts:
        if not _known(session, address):
            continue
        state = _state(session, address)
        if state.address in marked or state.address in soft_ones:
            continue  # the original and final recipient of one block are one address
        state.bounce_count += 1
        state.last_bounce_at = now
        if soft and not state.bouncing:
            state.last_bounce_reason = reason[:2000]
            soft_ones.append(state.address)
        else:
            if not soft:  # a full mailbox after a dead one keeps the dead one's reason
                state.last_bounce_reason = reason[:2000]
            state.bouncing = True
            marked.append(state.address)
        session.add(state)
    session.flush()
    done = []
    if marked:
        done.append("marked as bouncing: " + ", ".join(marked))
    if soft_ones:
        done.append("soft bounce (mailbox full or temporary), not muted: " + ", ".join(soft_ones))
    if done:
        return "; ".join(done)
    failed = [a for a, _, _ in verdicts]
    return "no address of ours in it" if not failed else "names no address we wrote to: " + ", ".join(failed[:5])


def record_auto_reply(session: Session, address: str | None, now: dt.datetime) -> None:
    if not address or not _known(session, address):
        return
    state = _state(session, address)
    state.auto_reply_count += 1
    state.last_auto_reply_at = now
    session.add(state)
    session.flush()


def clear_bounce(session: Session, address: str | None) -> None:
    """Someone who writes to us again can evidently use their mailbox."""
    if not address:
        return
    state = session.get(AddressStatus, address.strip().casefold())
    if state is not None and state.bouncing:
        state.bouncing = False
        session.add(state)
        session.flush()
