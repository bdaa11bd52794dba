"""Where the files shipped beside the package live (templates, default label vocabulary)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _first_existing(*candidates: Path) -> Path:
    for path in candidates:
        if path.exists():
            return path
    return candidates[0]


def default_templates_dir() -> Path:
    """``templates/`` of the source tree, or the copy installed inside the package."""
    return _first_existing(_PACKAGE.parent / "templates", _PACKAGE / "_data" / "templates")


def default_config_dir() -> Path:
    return _first_existing(_PACKAGE.parent / "config", _PACKAGE / "_data" / "config")
