"""Where the tests find real-world inputs, and how they skip what a plain clone lacks.

Two sources:

* ``tests/data/corpus`` — a small curated, redistributable subset of the robustness
  corpus, committed with its sources and licences (``tests/data/MANIFEST.tsv``). Always
  there.
* ``../shared`` — the workplace's folder beside the repository: the organisers' example
  forms (``forms/examples``, ``forms/blank``) and the whole corpus (``corpus``). Only on
  our machines, so tests that need it skip with :data:`REASON`, never error at
  collection.

Corpus tests run over the union of both (the same relative path counts once).
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
DATA_CORPUS = DATA / "corpus"

SHARED = REPO.parent / "shared"
EXAMPLES = SHARED / "forms" / "examples"
BLANK = SHARED / "forms" / "blank"
CORPUS = SHARED / "corpus"

REASON = "needs ../shared (the workplace's example forms and corpus); not in a plain clone"

HAS_EXAMPLES = EXAMPLES.is_dir()
HAS_BLANK = BLANK.is_dir()
HAS_CORPUS = CORPUS.is_dir()

needs_examples = pytest.mark.skipif(not HAS_EXAMPLES, reason=REASON)
needs_blank = pytest.mark.skipif(not HAS_BLANK, reason=REASON)
needs_corpus = pytest.mark.skipif(not HAS_CORPUS, reason=REASON)

#: Files in a corpus folder that are documentation, not test input.
_NOT_INPUT = {"README.md", "MANIFEST.tsv"}


def corpus_files(*subdirs: str) -> list[Path]:
    """Corpus inputs under ``subdirs`` (all when none): committed ones, plus the shared
    corpus's when present; sorted by relative path, each relative path once."""
    found: dict[str, Path] = {}
    for root in (CORPUS, DATA_CORPUS):  # the committed copy wins: it is always there
        if not root.is_dir():
            continue
        tops = [root / s for s in subdirs] if subdirs else [root]
        for top in tops:
            if not top.is_dir():
                continue
            for path in top.rglob("*"):
                if path.is_file() and path.name not in _NOT_INPUT:
                    found[path.relative_to(root).as_posix()] = path
    return [found[k] for k in sorted(found)]


def corpus_file(relative: str) -> Path:
    """One corpus input by its path relative to the corpus root (``pdf/x.pdf``).

    Committed copy first, then ``../shared/corpus``; skips the calling test with a
    reason when neither has it (a file we may not redistribute, in a plain clone)."""
    for root in (DATA_CORPUS, CORPUS):
        path = root / relative
        if path.is_file():
            return path
    pytest.skip(f"{relative}: {REASON} (not copied to tests/data: its licence or its size)")


def corpus_id(path: Path) -> str:
    """A stable test id: ``sub/name`` whichever corpus the file came from."""
    return f"{path.parent.name}/{path.name}"


def example(name: str) -> Path:
    """One of the organisers' filled example forms; skips without ``../shared``."""
    path = EXAMPLES / name
    if not path.is_file():
        pytest.skip(f"{name}: {REASON}")
    return path


def or_skip(params: list[object], argcount: int) -> list[object]:
    """``params`` for ``parametrize``, or one visibly skipped case when ``../shared`` is
    absent (instead of pytest's anonymous "empty parameter set")."""
    if params:
        return params
    return [pytest.param(*([None] * argcount), id="no-shared", marks=pytest.mark.skip(reason=REASON))]
