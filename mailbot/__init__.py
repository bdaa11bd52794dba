"""mailbot: turns a conference registration mailbox into a participant list."""

from typing import Any


def __getattr__(name: str) -> Any:
    """``__version__`` from the installed package's metadata, so ``mailbot --version``
    matches pyproject.toml; read on first use (importlib.metadata is slow to load)."""
    if name != "__version__":
        raise AttributeError(f"module 'mailbot' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mailbot")
    except PackageNotFoundError:  # a checkout on sys.path without `pip install -e .`
        return "0+unknown"
