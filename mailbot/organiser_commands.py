"""Organisers act by e-mail: reply commands to the daily digest.

The organisers have no shell on the server, so each review item of the digest carries
short commands in Polish and a token (:func:`mailbot.digest.command_token`), e.g.::

    1. [3f2a9c01be] [#12 K7Q2M6XA4B] 15.04.2016, 09:00, od: <sekretariat@…>
       Polecenia: PRZYJMIJ 12 | ODRZUĆ 12 | POPRAW 12 … | POTWIERDŹ 12 2

An organiser answers the digest with one command per line, at the start of the line, in
their own words (quoted lines never count: the digest itself lists the commands):

- ``PRZYJMIJ 12`` → ``review accept``; ``ODRZUĆ 12`` → ``review reject``;
  ``PRZETWÓRZ 12`` → ``review reprocess``;
- ``POTWIERDŹ 12 [N] [SUGESTIA]`` → ``review confirm`` (participant N's address as read,
  or as the reader suggested);
- ``POPRAW 12 e-mail uczestnika 2: jan@x.pl`` → ``review fix participants[2].email=…``;
  also ``imię i nazwisko``/``telefon``/``stanowisko uczestnika N``, ``e-mail``/
  ``telefon``/``nazwa``/``adres instytucji``, or ``review fix``'s own ``field=value``.

A command is carried out only when all of these hold, else it is refused and nothing
changes:

1. e-mail commands are configured: the server secret (``[digest] command_secret_file``,
   ``…_env`` or ``…_credential``) can be read;
2. where the receiving server wrote an ``Authentication-Results`` header (RFC 8601), it
   says ``dkim=pass``, ``spf=pass`` or ``dmarc=pass`` for the sender's domain. Only the
   **topmost** such header is read: every server on the way prepends its own, so the
   topmost one is the one our own server added on delivery, while any below it came with
   the message and may be forged by the sender (RFC 8601 §5: a receiver must not trust
   results it did not produce). With no header at all (a local Maildir, a server that
   does not check) the message is taken as it is — the token still has to match;
3. the sender is a configured organiser address (``events[].organisers``, case-blind);
4. the message quotes, anywhere in its body (the quoted digest is fine), the item's tag
   ``[#ID TOKEN]`` with a token that is the HMAC of (item, digest date, event) under the
   secret, for an event the sender organises and a date at most
   ``[digest] command_token_days`` back. The token names the digest's event, and a
   digest lists only the items tied to its event (or, tied to none, every open event's),
   so this is "an organiser of the item's event (any organiser for items without one)".

Each command then goes through :mod:`mailbot.review` — the same function, so the same
seats, mails and history as ``mailbot review`` on the command line — with a note naming
the command, the sender and this message (the item's history and resolution note). The
command message's own history lists every command and its result, and the organiser
gets a ``command_result`` mail listing each line and what came of it. A command already
carried out (by this or an earlier mail, or on the command line) is answered "już
wykonane" and changes nothing; the ledger decides a message once (its dedupe key), and a
message processed again after a crash finds its own commands done.

:func:`handle_reply` is called by :mod:`mailbot.ingest` for a reply to the digest that is
no automatic mail; it returns None when the message has no command line (it then goes to
review as before: an organiser writing to a person).
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import hmac
import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sqlmodel import Session, col, select

from mailbot import digest as digest_mod
from mailbot import review
from mailbot.config import Settings
from mailbot.ingest import IngestContext, _headers_only
from mailbot.intent import strip_quoted
from mailbot.loopguard import safe_to_reply
from mailbot.mime import ParsedMessage
from mailbot.outbox import ReplyTo, Sender, compose, enqueue
from mailbot.registrations import participants_of
from mailbot.replies import norm_address
from mailbot.store.tables import InboundMessage, OutboundMail, Registration

log = logging.getLogger(__name__)

__all__ = [
    "KIND",
    "Command",
    "CommandResult",
    "Handled",
    "authentication_problem",
    "find_tags",
    "handle_reply",
    "parse_commands",
]

KIND = "command_result"

Action = Literal["accept", "reject", "fix", "confirm", "reprocess"]
Status = Literal["done", "already", "refused", "failed", "unknown"]

VERBS: dict[str, Action] = {
    "PRZYJMIJ": "accept",
    "ODRZUĆ": "reject",
    "ODRZUC": "reject",
    "POPRAW": "fix",
    "POTWIERDŹ": "confirm",
    "POTWIERDZ": "confirm",
    "PRZETWÓRZ": "reprocess",
    "PRZETWORZ": "reprocess",
}
"""The command words (with and without Polish letters: some keyboards have none)."""

_HEAD = re.compile(r"^(?P<verb>[^\W\d_]{3,})\s+#?(?P<id>\d{1,12})\b(?P<rest>.*)$")
_TAG = re.compile(r"\[#(\d{1,12})\s+([A-Za-z2-7]{%d})\]" % digest_mod.TOKEN_CHARS)
_CONFIRM_REST = re.compile(r"^(?:\s+(?P<n>\d{1,3}))?(?:\s+(?P<sug>sugesti[aię]|sugerowan[ayey]|propozycj[aię]))?\s*$",
                           re.IGNORECASE)
_FIX_REST = re.compile(r"^\s+(?P<field>[^:=]+?)\s*:\s*(?P<value>.*)$")
_FIX_RAW = re.compile(r"^\s+(?P<assignment>(?:institution\.|participants\[|consents\.|event\b|workshops\b|remarks\b)"
                      r"[^=]*=.*)$")
_PERSON_FIELD = re.compile(
    r"^(?P<what>e-?mail|adres e-?mail|imi[eę] i nazwisko|nazwisko|telefon|tel\.?|nr telefonu|stanowisko)"
    r"\s+uczestnika\s+(?:nr\s*)?(?P<n>\d{1,3})$",
    re.IGNORECASE,
)
_INSTITUTION_FIELD = re.compile(
    r"^(?P<what>e-?mail|adres e-?mail|telefon|tel\.?|nr telefonu|nazwa|adres)\s+instytucji$", re.IGNORECASE
)
_PERSON_PATH = {"email": "email", "name": "full_name", "phone": "phone", "position": "position"}
_INSTITUTION_PATH = {"email": "email", "phone": "phone", "name": "name", "address": "address"}

HELP = (
    "PRZYJMIJ 12, ODRZUĆ 12, PRZETWÓRZ 12, POTWIERDŹ 12 2, "
    "POPRAW 12 e-mail uczestnika 2: jan@example.pl"
)


def _what(text: str) -> str:
    t = text.casefold().replace("-", "").rstrip(".")
    if "mail" in t:
        return "email"
    if t.startswith(("tel", "nr tel")):
        return "phone"
    if "nazwisko" in t:
        return "name"
    if t == "stanowisko":
        return "position"
    if t == "nazwa":
        return "name"
    return "address"


# --- reading the commands -----------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One command line of an organiser's reply."""

    line: str
    """As written (whitespace folded)."""
    action: Action | None
    """None: not a command we know (or a known word in a form we cannot read)."""
    item: int | None
    assignment: str | None = None
    """``fix``: the ``review fix`` assignment (``participants[2].email=jan@x.pl``)."""
    number: int | None = None
    """``confirm``: the participant (from 1), None when left out."""
    suggestion: bool = False
    error: str | None = None
    """Why the line could not be read (Polish), for the answer."""


def parse_commands(own_text: str, tagged: Collection[int] = ()) -> list[Command]:
    """The command lines of what the organiser wrote (quotes already cut): a command
    word at the very start of a line, then the item number. A short line of a word in
    capitals we do not know and the number of an item whose tag the message quotes
    (``tagged``), like "USUŃ 12", is answered as an unknown command; other lines are
    prose ("PILNE 3 osoby…") and ignored (a person reads the message). The same line
    twice counts once."""
    out: list[Command] = []
    seen: set[str] = set()
    for raw_line in own_text.splitlines():
        line = " ".join(raw_line.split())
        match = _HEAD.match(line)
        if match is None:
            continue
        word = match.group("verb")
        action = VERBS.get(word.upper())
        if action is None and (not word.isupper() or len(line.split()) > 2 or int(match.group("id")) not in tagged):
            continue  # prose ("Dziękuję 2 razy", "PILNE 3 osoby chcą…"), not a command attempt
        key = line.casefold()
        if key in seen:
            continue
        seen.add(key)
        item = int(match.group("id"))
        rest = match.group("rest")
        if action is None:
            out.append(Command(line, None, item, error=f"nieznane polecenie „{word}”"))
        else:
            out.append(_parse_one(line, action, item, rest))
    return out


def _parse_one(line: str, action: Action, item: int, rest: str) -> Command:
    if action in ("accept", "reject", "reprocess"):
        if rest.strip(" .").strip():
            return Command(line, None, item, error=f"po numerze wiadomości nie może być nic więcej (np. {_example(action, item)})")
        return Command(line, action, item)
    if action == "confirm":
        m = _CONFIRM_REST.match(rest.rstrip(". "))
        if m is None:
            return Command(line, None, item, error=f"nie rozpoznano polecenia (np. POTWIERDŹ {item} 2 lub POTWIERDŹ {item} 2 SUGESTIA)")
        number = int(m.group("n")) if m.group("n") else None
        return Command(line, action, item, number=number, suggestion=bool(m.group("sug")))
    # fix
    raw = _FIX_RAW.match(rest)
    if raw is not None:
        return Command(line, action, item, assignment=raw.group("assignment").strip())
    m = _FIX_REST.match(rest)
    if m is None:
        return Command(line, None, item, error=f"nie rozpoznano poprawki (np. POPRAW {item} e-mail uczestnika 2: jan@example.pl)")
    field_text, value = m.group("field").strip(), m.group("value").strip()
    person = _PERSON_FIELD.match(field_text)
    if person is not None:
        path = f"participants[{int(person.group('n'))}].{_PERSON_PATH[_what(person.group('what'))]}"
        return Command(line, action, item, assignment=f"{path}={value}")
    inst = _INSTITUTION_FIELD.match(field_text)
    if inst is not None:
        path = f"institution.{_INSTITUTION_PATH[_what(inst.group('what'))]}"
        return Command(line, action, item, assignment=f"{path}={value}")
    return Command(
        line, None, item,
        error=f"nieznane pole „{field_text}” (znane: e-mail, imię i nazwisko, telefon, stanowisko uczestnika N; "
        "e-mail, telefon, nazwa, adres instytucji)",
    )


def _example(action: Action, item: int) -> str:
    word = {"accept": "PRZYJMIJ", "reject": "ODRZUĆ", "reprocess": "PRZETWÓRZ", "fix": "POPRAW", "confirm": "POTWIERDŹ"}
    return f"{word[action]} {item}"


def find_tags(text: str) -> dict[int, set[str]]:
    """Every ``[#ID TOKEN]`` in ``text`` (quoted or not), tokens upper-cased."""
    out: dict[int, set[str]] = {}
    for m in _TAG.finditer(text):
        out.setdefault(int(m.group(1)), set()).add(m.group(2).upper())
    return out


# --- who may ------------------------------------------------------------------------

_AR_COMMENT = re.compile(r"\([^()]*\)")
_AR_RESULT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*=\s*([A-Za-z]+)(.*)$", re.DOTALL)
_AR_PROP = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\s*=\s*\"?([^\s\";]+)\"?")


def _aligned(domain: str, sender_domain: str) -> bool:
    d, s = domain.strip().strip(".").casefold(), sender_domain.casefold()
    if "@" in d:
        d = d.rpartition("@")[2]
    return bool(d) and (d == s or s.endswith("." + d) or d.endswith("." + s))


def authentication_problem(raw: bytes, sender: str) -> str | None:
    """Why the topmost ``Authentication-Results`` header (the one our own server added;
    see the module doc) does not vouch for ``sender``, in Polish; None when it passes
    ``dkim``, ``spf`` or ``dmarc`` for the sender's domain, or when there is none."""
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(_headers_only(raw))
    values = headers.get_all("Authentication-Results") or []
    if not values:
        return None
    value = " ".join(str(values[0]).split())
    while _AR_COMMENT.search(value):
        value = _AR_COMMENT.sub(" ", value)
    sender_domain = sender.rpartition("@")[2]
    seen: list[str] = []
    for part in value.split(";")[1:]:  # the first part is the authserv-id
        m = _AR_RESULT.match(part)
        if m is None:
            continue
        method, result, props = m.group(1).casefold(), m.group(2).casefold(), m.group(3)
        if method not in ("dkim", "spf", "dmarc"):
            continue
        seen.append(f"{method}={result}")
        if result != "pass":
            continue
        wanted = {"dkim": ("header", "d"), "spf": ("smtp", "mailfrom"), "dmarc": ("header", "from")}[method]
        domains = [p.group(3) for p in _AR_PROP.finditer(props) if (p.group(1).casefold(), p.group(2).casefold()) == wanted]
        if not domains or any(_aligned(d, sender_domain) for d in domains):
            return None
    found = ", ".join(seen) or "brak wyniku dkim/spf"
    return f"serwer pocztowy nie potwierdził nadawcy {sender} (Authentication-Results: {found})"


# --- carrying them out ---------------------------------------------------------------


@dataclass(frozen=True)
class CommandResult:
    line: str
    status: Status
    text: str
    """Polish: "przyjęte — Anna Kowalska ma miejsce", "nie wykonano — brak uprawnień"."""

    @property
    def summary(self) -> str:
        return f"{self.line}: {self.text}"


@dataclass
class Handled:
    """What :mod:`mailbot.ingest` records for the command message."""

    outcome: str
    reasons: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    results: list[CommandResult] = field(default_factory=list)


_RESOLUTION_PL = {
    "accepted": "przyjęta",
    "rejected": "odrzucona",
    "reprocessed": "przetworzona ponownie",
    "fixed": "poprawiona",
}
_DONE_AS = {"accept": "accepted", "reject": "rejected", "reprocess": "reprocessed"}
_OUTCOME_PL = {"registered": "zarejestrowana", "needs_review": "nadal do przejrzenia", "ignored": "pominięta"}


def handle_reply(
    ctx: IngestContext,
    session: Session,
    inbound: InboundMessage,
    parsed: ParsedMessage,
    raw: bytes,
    now: dt.datetime,
) -> Handled | None:
    """Carry out the commands of a reply to the digest (see the module doc); None when
    it has none. Called before anything of the message is written in ``session``: each
    command runs in a transaction of its own (the review functions'), the answer and the
    history are written in ``session`` (the caller commits)."""
    own = strip_quoted(parsed.text or "")
    tags = find_tags(parsed.text or "")
    commands = parse_commands(own, tags)
    if not commands:
        return None
    settings = ctx.settings
    sender = norm_address(parsed.from_addr) or ""
    refusal = _refusal(settings, raw, sender)
    secret = None if refusal else digest_mod.command_secret(settings)
    if refusal is None and secret is None:
        refusal = ("polecenia e-mailem są wyłączone: administrator musi ustawić tajny klucz serwera "
                   "([digest] command_secret_file lub command_secret_credential w konfiguracji mailbota)")
    results: list[CommandResult] = []
    for command in commands:
        if command.action is None or command.item is None:
            results.append(CommandResult(command.line, "unknown", f"nie wykonano — {command.error}"))
        elif refusal is not None:
            results.append(CommandResult(command.line, "refused", f"nie wykonano — {refusal}"))
        else:
            assert secret is not None
            why = _token_problem(settings, secret, sender, command.item, tags.get(command.item, set()), now)
            if why is not None:
                results.append(CommandResult(command.line, "refused", f"nie wykonano — {why}"))
            else:
                results.append(_execute(ctx, command, sender, inbound))
    for r in results:
        log.info("organiser command from %s in %s: %s", sender, inbound.ref, r.summary)
    handled = Handled(outcome="registered", results=results)
    if all(r.status == "refused" for r in results):
        handled.outcome = "needs_review"
        handled.reasons.append(f"organiser commands by {sender} refused: {results[0].text.removeprefix('nie wykonano — ')}")
    else:
        handled.reasons.append(f"organiser commands by {sender}: " + "; ".join(r.summary for r in results))
    inbound.add_history("organiser_commands", now, sender=sender, commands=[r.summary for r in results])
    _answer(ctx, session, inbound, parsed, sender, results, now, handled)
    return handled


def _refusal(settings: Settings, raw: bytes, sender: str) -> str | None:
    """Why no command of this message may run, whatever it says (Polish), or None."""
    if not sender:
        return "brak uprawnień (nie wiadomo, kto pisze)"
    problem = authentication_problem(raw, sender)
    if problem is not None:
        return problem
    if not digest_mod.organised_by(settings, sender):
        return f"brak uprawnień ({sender} nie jest w konfiguracji adresem organizatorów żadnej konferencji)"
    return None


def _token_problem(
    settings: Settings, secret: bytes, sender: str, item: int, tokens: set[str], now: dt.datetime
) -> str | None:
    """None when one of ``tokens`` is the item's token of a digest of an event the
    sender organises, dated within ``command_token_days``; else why not (Polish)."""
    if not tokens:
        return (f"brak uprawnień — w odpowiedzi nie ma kodu [#{item} …] tej wiadomości z zestawienia "
                "(prosimy odpowiadać na zestawienie, zostawiając je w cytacie)")
    today = now.astimezone(settings.tz).date()
    days = settings.digest.command_token_days
    for event_key in digest_mod.organised_by(settings, sender):
        for back in range(days + 1):
            day = today - dt.timedelta(days=back)
            expected = digest_mod.command_token(secret, item, day, event_key)
            if any(hmac.compare_digest(expected, t) for t in tokens):
                return None
    return (f"brak uprawnień — kod [#{item} …] nie pasuje do zestawienia wysłanego na adres {sender} "
            f"w ostatnich {days} dniach")


def _note(command: Command, sender: str, inbound: InboundMessage) -> str:
    return f"polecenie e-mailem od {sender} (wiadomość {inbound.ref}): {command.line}"


def _execute(ctx: IngestContext, command: Command, sender: str, inbound: InboundMessage) -> CommandResult:
    assert command.action is not None and command.item is not None
    line, note = command.line, _note(command, sender, inbound)
    state = _state(ctx, command.item)
    if state is None:
        return CommandResult(line, "failed", f"nie wykonano — nie ma wiadomości nr {command.item}")
    outcome, resolution, resolution_note = state
    done_as = _DONE_AS.get(command.action)
    if resolution is not None and command.action in _DONE_AS:
        if resolution == done_as:
            if resolution_note and f"(wiadomość {inbound.ref})" in resolution_note:
                return CommandResult(line, "done", "wykonane")  # by this message, before a crash
            return CommandResult(line, "already", "już wykonane")
        return CommandResult(line, "failed",
                             f"nie wykonano — wiadomość już wcześniej {_RESOLUTION_PL.get(resolution, resolution)}")
    try:
        if command.action == "accept":
            return CommandResult(line, "done", _accepted(ctx, review.accept(ctx, command.item, note=note)))
        if command.action == "reject":
            review.reject(ctx, command.item, note=note)
            return CommandResult(line, "done", "odrzucone — sprawa zamknięta, nikt nie dostaje wiadomości")
        if command.action == "reprocess":
            result = review.reprocess(ctx, command.item, note=note)
            codes = f" (zgłoszenia: {', '.join(result.registrations)})" if result.registrations else ""
            return CommandResult(line, "done",
                                 f"przeczytane ponownie — wiadomość {_OUTCOME_PL.get(result.outcome, result.outcome)}{codes}")
        if command.action == "confirm":
            result = review.confirm(ctx, command.item, command.number, suggestion=command.suggestion, note=note)
            return CommandResult(line, "done", "potwierdzone — " + "; ".join(_polish_notes(result.notes[:1])) + _mails(result))
        assert command.assignment is not None
        result = review.fix(ctx, command.item, [command.assignment], note=note)
        return CommandResult(line, "done", "poprawione — " + "; ".join(_polish_notes(result.notes)) + _mails(result))
    except review.ReviewError as e:
        return _review_error(line, command, str(e))
    except Exception as e:  # noqa: BLE001 - one failing command must not lose the others' answer
        log.exception("organiser command %r failed", line)
        return CommandResult(line, "failed", f"nie wykonano — błąd wewnętrzny ({type(e).__name__}); administrator zobaczy go w logu")


def _state(ctx: IngestContext, item: int) -> tuple[str, str | None, str | None] | None:
    with ctx.session_factory() as s:
        row = s.get(InboundMessage, item)
        if row is None:
            return None
        return row.outcome, row.resolution, row.resolution_note


def _accepted(ctx: IngestContext, result: review.ActionResult) -> str:
    if not result.registrations:
        return "przyjęte — sprawa zamknięta"
    people: list[str] = []
    with ctx.session_factory() as s:
        for reg in s.exec(select(Registration).where(col(Registration.code).in_(result.registrations))).all():
            assert reg.id is not None
            for p in participants_of(s, reg.id):
                name = p.full_name or "(bez nazwiska)"
                if p.status == "confirmed":
                    people.append(f"{name} ma miejsce")
                elif p.status == "waitlisted":
                    people.append(f"{name} – lista rezerwowa")
    return "przyjęte — " + (", ".join(people) or "zgłoszenie " + ", ".join(result.registrations)) + _mails(result)


def _mails(result: review.ActionResult) -> str:
    if not result.replies:
        return ""
    items = []
    for r in result.replies:
        kind, _, to = r.partition(" → ")
        items.append(f"{digest_mod._KIND_PL.get(kind, kind)} → {to}" if to else r)
    return "; wysłano: " + ", ".join(items)


_CHANGE_NOTE = re.compile(r"^(?:[A-Z]{2,}-[A-Z0-9]+: )?(.+?): (.*) → (.*)$")
_CONFIRM_NOTE = re.compile(r"^\S+: participants\[(\d+)\]\.email (\S+) (confirmed|corrected)$")


def _polish_notes(notes: Sequence[str]) -> list[str]:
    out = []
    for n in notes:
        m = _CONFIRM_NOTE.match(n)
        if m is not None:
            out.append(f"adres uczestnika {m.group(1)}: {m.group(2)}")
            continue
        m = _CHANGE_NOTE.match(n)
        if m is not None and "status" not in m.group(1):
            out.append(f"{m.group(1)}: {m.group(2) or '—'} → {m.group(3) or '—'}")
    return out or ["zapisane"]


_ERRORS_PL: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        (r"already has these values", "już wykonane (dane są już takie)"),
        (r"has no unconfirmed e-mail address", "już wykonane (żaden adres w tym zgłoszeniu nie czeka na potwierdzenie)"),
        (r"not an e-mail address", "nie wykonano — to nie jest poprawny adres e-mail"),
        (r"not a phone number", "nie wykonano — to nie jest poprawny numer telefonu"),
        (r"the registration lists (\d+) participant", r"nie wykonano — zgłoszenie ma tylko tylu uczestników: \1"),
        (r"numbered from 1", "nie wykonano — uczestników numerujemy od 1"),
        (r"created no registration", "nie wykonano — ta wiadomość nie utworzyła zgłoszenia (można PRZETWÓRZ albo ODRZUĆ)"),
        (r"created \d+ registrations", "nie wykonano — wiadomość utworzyła kilka zgłoszeń; tę zmianę musi wykonać administrator"),
        (r"unconfirmed addresses .*: give N", "nie wykonano — kilka adresów czeka na potwierdzenie: prosimy podać numer uczestnika"),
        (r"has no unconfirmed address \(waiting: (.*)\)", r"nie wykonano — ten uczestnik nie ma adresu do potwierdzenia (czekają: \1)"),
        (r"suggested no other address", "nie wykonano — nie było innej propozycji adresu"),
        (r"took place on", "nie wykonano — konferencja już się odbyła"),
        (r"was purged", "nie wykonano — dane tej wiadomości zostały już usunięte (retencja)"),
        (r"was withdrawn", "nie wykonano — zgłoszenie zostało wycofane"),
        (r"was registered; correct", "nie wykonano — wiadomość została zarejestrowana; zmiany: POPRAW"),
        (r"already made registration", "nie wykonano — wiadomość utworzyła już zgłoszenie: POPRAW, potem PRZYJMIJ lub ODRZUĆ"),
        (r"is (registered|ignored), not waiting for review", "nie wykonano — ta wiadomość nie czeka na decyzję"),
        (r"no message", "nie wykonano — nie ma takiej wiadomości"),
        (r"is not configured", "nie wykonano — konferencji nie ma w konfiguracji"),
    )
)


def _review_error(line: str, command: Command, message: str) -> CommandResult:
    for pattern, text in _ERRORS_PL:
        m = pattern.search(message)
        if m is not None:
            status: Status = "already" if text.startswith("już") else "failed"
            return CommandResult(line, status, m.expand(text))
    return CommandResult(line, "failed", f"nie wykonano — {message}")


# --- the answer -----------------------------------------------------------------------


def _answer(
    ctx: IngestContext,
    session: Session,
    inbound: InboundMessage,
    parsed: ParsedMessage,
    sender: str,
    results: Sequence[CommandResult],
    now: dt.datetime,
    handled: Handled,
) -> None:
    """Queue the ``command_result`` mail to the sender (never to an address we must not
    answer, nor past the daily cap). One per processing of the message: a second pass
    after a crash finds its dedupe key; ``review reprocess`` of it answers again."""
    settings = ctx.settings
    if not safe_to_reply(sender, settings.replying_as):
        handled.reasons.append(f"no reply: {sender or 'no sender'} is not an address we answer")
        return
    if ctx.mailer.over_daily_cap(session, sender, now):
        handled.reasons.append(f"no {KIND} to {sender}: daily cap reached")
        return
    runs = sum(1 for e in inbound.history_entries() if e.get("action") == "organiser_commands")
    dedupe = f"{KIND}:{inbound.id}:{runs}"
    if session.exec(select(OutboundMail.id).where(OutboundMail.dedupe_key == dedupe)).first():
        return
    context = {
        "kind": KIND,
        "results": list(results),
        "done": sum(1 for r in results if r.status in ("done", "already")),
        "not_done": sum(1 for r in results if r.status not in ("done", "already")),
        "unknown": any(r.status == "unknown" for r in results),
        "original_subject": parsed.subject or "(bez tematu)",
        "recipient": sender,
        "signature": settings.signature,
        "organiser_email": settings.outbox.from_address,
        "help": HELP,
        "generated_at": now.astimezone(settings.tz),
    }
    rendered = ctx.mailer.templates.render(KIND, context)
    message = compose(
        sender=Sender(settings.outbox.from_address, settings.outbox.from_name),
        to=sender,
        to_name=None,
        rendered=rendered,
        kind=KIND,
        dedupe_key=dedupe,
        ref=inbound.ref,
        now=now,
        reply_to=ReplyTo(parsed.message_id, parsed.references) if parsed.message_id else None,
    )
    row = enqueue(session, message=message, kind=KIND, dedupe_key=dedupe, to=sender, bcc=(), now=now,
                  inbound_id=inbound.id)
    if row is not None:
        handled.replies.append(f"{KIND} → {sender}")
