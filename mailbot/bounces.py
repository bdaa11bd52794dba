"""What comes back from the addresses we write to: bounces and out-of-office replies.

A bounce marks the address as bouncing (no more reminders or change notices to it; the
organisers see it in the digest); an out-of-office reply is only counted. Neither is
ever answered — the loop guard has already decided that.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlmodel import Session, col, or_, select

from mailbot.mime import ParsedMessage
from mailbot.store.tables import AddressStatus, OutboundMail, Participant, Registration

_OUR_MESSAGE_ID = re.compile(r"<?([0-9a-f]{32}\.[a-z_]+@[^\s<>]+)>?")


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
    """Mark the failed recipients as bouncing; returns what was done, for the ledger."""
    report = parsed.report
    if report is not None and report.action and report.action != "failed":
        return f"delivery report ({report.action}); nothing marked"
    failed = list(report.failed_addresses) if report else []
    if not failed:
        failed = _returned_recipients(session, parsed)
    marked: list[str] = []
    diagnostic = ""
    if report is not None:
        diagnostic = "; ".join(
            f"{r.status} {r.diagnostic}".strip() for r in report.recipients if r.action == "failed"
        )
    for address in failed:
        if not _known(session, address):
            continue
        state = _state(session, address)
        state.bouncing = True
        state.bounce_count += 1
        state.last_bounce_at = now
        state.last_bounce_reason = (diagnostic or parsed.subject or "bounce")[:2000]
        session.add(state)
        if state.address not in marked:
            marked.append(state.address)
    session.flush()
    if marked:
        return "marked as bouncing: " + ", ".join(marked)
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
