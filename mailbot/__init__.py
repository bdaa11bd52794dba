"""mailbot: turns a conference registration mailbox into a participant list."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mailbot")
    """From the installed package's metadata, so ``mailbot --version`` matches pyproject.toml."""
except PackageNotFoundError:  # a checkout on sys.path without `pip install -e .`
    __version__ = "0+unknown"
