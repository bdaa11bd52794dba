"""Which registration a message is about, when it says so: a quoted registration code
(every mail we send carries one in its subject) or a reply to one of our mails
(In-Reply-To/References). Either ties the message to that registration even when it
comes from another address — a colleague answering for someone on holiday."""

from __future__ import annotations

from sqlmodel import Session, col, select

from mailbot.intent import find_codes
from mailbot.mime import ParsedMessage
from mailbot.store.tables import OutboundMail, Registration


def linked_registrations(session: Session, parsed: ParsedMessage) -> list[Registration]:
    """Registrations the message names, codes first, then the thread; no duplicates."""
    found: list[Registration] = []
    codes = find_codes(parsed.subject) + find_codes(parsed.text[:200_000])
    if codes:
        rows = session.exec(select(Registration).where(col(Registration.code).in_(codes))).all()
        by_code = {r.code: r for r in rows}
        found.extend(by_code[c] for c in dict.fromkeys(codes) if c in by_code)
    thread = [f"<{m.strip('<>')}>" for m in (*parsed.in_reply_to, *parsed.references) if m]
    if thread:
        reg_ids = session.exec(
            select(OutboundMail.registration_id).where(
                col(OutboundMail.message_id).in_(thread[-50:]),
                col(OutboundMail.registration_id).is_not(None),
            )
        ).all()
        for reg_id in dict.fromkeys(reg_ids):
            reg = session.get(Registration, reg_id)
            if reg is not None and reg not in found:
                found.append(reg)
    return found
