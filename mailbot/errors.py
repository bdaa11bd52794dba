"""One exception tree for mailbot.

Adapters translate library errors into these at their boundary (``raise ... from e``)
so the pipeline can decide per message what to do without knowing any wire library.
"""

from __future__ import annotations


class MailbotError(Exception):
    """Base class of every error mailbot raises on purpose."""


class ConfigError(MailbotError):
    """The configuration is missing, unreadable or invalid; the admin must fix a file."""


class MailboxError(MailbotError):
    """The mailbox could not be reached or answered unexpectedly; retried with backoff."""


class FormError(MailbotError):
    """A document could not be read as a form; carried into a parse result, never raised out."""


class DeliveryError(MailbotError):
    """An outgoing mail could not be handed over.

    ``permanent`` tells the outbox whether to give up (5xx, bad address) or to retry
    later (4xx, connection lost).
    """

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class AlreadyRunning(MailbotError):
    """Another `mailbot run` already serves this SQLite store; a second one would race it."""
