"""mailbot: turns a conference registration mailbox into a participant list."""

__version__ = "0.1.0"
