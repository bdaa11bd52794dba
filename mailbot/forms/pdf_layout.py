"""Positioned text into blocks: lines, cells, the participants table, label | value
rows, paragraphs. Shared by the PDF text layer and the OCR reader (``ocr.py``).

Without ruling lines a table is only visible in the gaps between text: a line's runs
are cut into cells at wide gaps, the participants table is found by its header
and its rows follow its columns, and wrapped cell lines are folded into their cell.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mailbot.forms.extract import Block, Control, Inline, Para, Table
from mailbot.forms.labels import Vocabulary

__all__ = ["Chunk", "Columns", "layout", "line_inlines"]


@dataclass(slots=True)
class Chunk:
    """A run of text (or a form widget) with its box in page coordinates (y up)."""

    x0: float
    y0: float
    x1: float
    y1: float
    inlines: list[Inline]
    frame: int = -1
    """The drawn frame (flattened field box) the run starts in; runs in different
    frames are never one cell."""
    ax: float | None = None
    """Where the run belongs across, when not at its left edge (see ``Piece.ax``)."""

    @property
    def text(self) -> str:
        return "".join(i if isinstance(i, str) else i.render() for i in self.inlines)

    @property
    def height(self) -> float:
        return max(self.y1 - self.y0, 1.0)


@dataclass(slots=True)
class _Line:
    chunks: list[Chunk]
    top: float
    bottom: float
    cells: list[Chunk] = field(default_factory=list)
    # The median chunk height, set by ``_lines`` once the line's chunks are final.
    height: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(c.text.strip() for c in self.chunks)


Columns = list[tuple[float, float, str]]
Placed = tuple[float, Block]
"""A block and the top of its first line (to merge blocks of a page in order)."""


def layout(
    chunks: list[Chunk],
    vocab: Vocabulary,
    *,
    runs: bool = False,
    margin: float | None = None,
) -> list[Placed]:
    """Blocks of a page's free text (outside ruled tables), top to bottom.

    ``runs``: the chunks are a PDF's text runs, not OCR words: runs drawn touching
    are one word (a font fallback splits "Wydzia" "ł" "u"), and consecutive
    single-cell lines set like a wrapped paragraph are one paragraph, so the
    extractor sees the soft line break (wrapped remarks keep their second line).

    ``margin``: the text column's right edge. With it, a labelled line that was
    wrapped there is joined with its continuation into the one line it was typed
    as (see ``_unwrap``).
    """
    lines = _lines(chunks, runs)
    if margin is not None:
        lines = _unwrap(lines, margin, vocab)
    # A line may be asked twice whether it heads the participants table (by
    # ``_label_table``, then here); the answer is a pure function of the line.
    memo: dict[int, Columns | None] = {}

    def columns_at(n: int) -> Columns | None:
        if n not in memo:
            memo[n] = _participant_columns(lines[n], vocab)
            if memo[n] is None and runs and n + 1 < len(lines):
                memo[n] = _wrapped_header(lines, n, vocab)
        return memo[n]

    blocks: list[Placed] = []
    para: tuple[Para, _Line] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        columns = columns_at(i)
        if columns is not None:
            if _participant_columns(line, vocab) is None:
                i += 1  # the header's wrapped second line
            table, i = _participant_table(lines, i, columns, vocab)
            blocks.append((line.top, table))
            para = None
            continue
        if len(line.cells) >= 2:
            table, i = _label_table(lines, i, columns_at, vocab)
            blocks.append((line.top, table))
            para = None
            continue
        if runs and para is not None and _continues(para[1], line):
            para[0].inlines.extend(["\n", *line.cells[0].inlines])
        else:
            block = Para(_joined(line.cells))
            blocks.append((line.top, block))
            para = (block, line) if len(line.cells) == 1 else None
        if para is not None:
            para = (para[0], line)  # the next line continues from this one
        i += 1
    return blocks


def _unwrap(lines: list[_Line], margin: float, vocab: Vocabulary) -> list[_Line]:
    """Labelled lines joined with the lines they wrapped onto.

    "Nazwa …: Starostwo Powiatowe w" ↵ "Opolu": word wrap moved "Opolu" down only
    because it would not fit before ``margin``. A line is joined to the one above
    when that one is a single labelled cell, this one starts under it, is set right
    below it, is no label, section or option itself, and its first word would
    not have fit on it. The extractor then reads the value whole, as in a .docx.
    """
    out: list[_Line] = []
    for line in lines:
        prev = out[-1] if out else None
        if prev is not None and _wrapped_onto(prev, line, margin, vocab):
            head, tail = prev.cells[0], line.cells[0]
            joiner = "" if head.text.rstrip().endswith("-") else " "
            merged = Chunk(
                head.x0,
                min(head.y0, tail.y0),
                max(head.x1, tail.x1),
                head.y1,
                [*head.inlines, joiner, *tail.inlines],
                head.frame,
            )
            out[-1] = _Line([merged], prev.top, line.bottom, [merged], prev.height)
            continue
        out.append(line)
    return out


def _wrapped_onto(prev: _Line, line: _Line, margin: float, vocab: Vocabulary) -> bool:
    if len(prev.cells) != 1 or len(line.cells) != 1:
        return False
    head, tail = prev.cells[0].text.strip(), line.cells[0].text.strip()
    if not head or not tail or head[0] in "☒☐" or tail[0] in "☒☐":
        return False
    height = max(prev.height, line.height)
    if prev.bottom - line.top > 0.6 * height or abs(line.cells[0].x0 - prev.cells[0].x0) > height:
        return False
    first = tail.split()[0]
    width = (line.cells[0].x1 - line.cells[0].x0) * len(first) / len(tail)
    if prev.cells[0].x1 + 0.25 * height + width <= margin:
        return False  # the word would have fit: the line ended there on purpose
    if vocab.match_section(tail) is not None or vocab.match_prefix(tail) is not None:
        return False
    return vocab.match_prefix(head) is not None


def _continues(prev: _Line, line: _Line) -> bool:
    """A line set right under the previous one, as a wrapped paragraph's next line."""
    if len(line.cells) != 1 or line.cells[0].frame != prev.cells[0].frame:
        return False
    height = max(prev.height, line.height)
    return prev.bottom - line.top <= 0.6 * height and line.top < prev.bottom + 1


def line_inlines(chunks: Sequence[Chunk]) -> list[Inline]:
    """One line's chunks (left to right) as inlines, with a space where runs part."""
    out: list[Inline] = []
    prev: Chunk | None = None
    for chunk in chunks:
        if prev is not None:
            out.append(_joiner(prev, chunk, True))
        out.extend(chunk.inlines)
        prev = chunk
    return out


def _joiner(left: Chunk, right: Chunk, runs: bool) -> str:
    if left.text.endswith(" ") or right.text.startswith(" "):
        return ""
    if runs and right.x0 - left.x1 < 0.2 * max(left.height, right.height):
        return ""
    return " "


def _lines(chunks: list[Chunk], runs: bool = False) -> list[_Line]:
    """Group chunks whose vertical extents overlap into lines, top to bottom."""
    lines: list[_Line] = []
    for chunk in sorted(chunks, key=lambda c: (-c.y1, c.x0)):
        centre = (chunk.y0 + chunk.y1) / 2
        for line in reversed(lines[-3:]):
            if line.bottom - 1 <= centre <= line.top + 1:
                line.chunks.append(chunk)
                break
        else:
            lines.append(_Line([chunk], chunk.y1, chunk.y0))
    for line in lines:
        line.chunks.sort(key=lambda c: c.x0)
        line.height = _median([c.height for c in line.chunks])
        line.cells = _cells(line, runs)
    return lines


def _median(values: list[float]) -> float:
    """``statistics.median``, to the bit, without its generality (it is hot here)."""
    data = sorted(values)
    n = len(data)
    if n % 2 == 1:
        return data[n // 2]
    i = n // 2
    return (data[i - 1] + data[i]) / 2


def _cells(line: _Line, runs: bool) -> list[Chunk]:
    """Merge chunks separated by small gaps; a wide gap (or a frame) starts a new cell."""
    gap = max(1.5 * line.height, 12.0)
    cells: list[Chunk] = []
    for chunk in line.chunks:
        last = cells[-1] if cells else None
        if (
            last is not None
            and chunk.x0 - last.x1 <= gap
            and chunk.frame == last.frame
            and not _is_widget(chunk)
            and not _is_widget(last)
        ):
            cells[-1] = Chunk(
                last.x0,
                min(last.y0, chunk.y0),
                max(last.x1, chunk.x1),
                max(last.y1, chunk.y1),
                [*last.inlines, _joiner(last, chunk, runs), *chunk.inlines],
                last.frame,
            )
        else:
            cells.append(
                Chunk(chunk.x0, chunk.y0, chunk.x1, chunk.y1, list(chunk.inlines), chunk.frame)
            )
    return cells


def _is_widget(chunk: Chunk) -> bool:
    return any(isinstance(i, Control) and i.checked is None for i in chunk.inlines)


def _joined(cells: Sequence[Chunk]) -> list[Inline]:
    out: list[Inline] = []
    for n, cell in enumerate(cells):
        if n:
            out.append("\t")
        out.extend(cell.inlines)
    return out


def _cell(inlines: list[Inline]) -> list[Block]:
    return [Para(inlines)]


def _label_table(
    lines: list[_Line],
    start: int,
    columns_at: Callable[[int], Columns | None],
    vocab: Vocabulary,
) -> tuple[Table, int]:
    """Consecutive multi-cell lines, with wrapped cell lines folded into their cell."""
    rows: list[list[Chunk]] = [list(lines[start].cells)]
    i = start + 1
    while i < len(lines):
        prev, line = lines[i - 1], lines[i]
        if prev.top - line.top > 1.6 * max(prev.height, line.height):
            break
        if columns_at(i) is not None:
            break
        if len(line.cells) >= 2 and _wraps(prev, line, rows[-1], vocab):
            for cell in line.cells:  # both cells of a label | value row wrapped
                _fold(rows[-1], cell)
        elif len(line.cells) >= 2:
            rows.append(list(line.cells))
        elif len(line.cells) == 1:
            cell = line.cells[0]
            if vocab.match_section(cell.text.strip()) is not None:
                break  # "2. Uczestnicy" under the last label is the next section
            if not _fold(rows[-1], cell):
                break
        i += 1
    return Table([[_cell(c.inlines) for c in row] for row in rows]), i


def _fold(row: list[Chunk], cell: Chunk) -> bool:
    """Add ``cell`` as the next line of the row's cell it sits under (same left edge);
    ``False`` when it sits under none."""
    n = next((n for n, c in enumerate(row) if abs(c.x0 - cell.x0) <= 4), None)
    if n is None:
        return False
    old = row[n]
    row[n] = Chunk(
        old.x0, cell.y0, max(old.x1, cell.x1), old.y1,
        [*old.inlines, "\n", *cell.inlines], old.frame,
    )  # fmt: skip
    return True


def _wraps(prev: _Line, line: _Line, row: list[Chunk], vocab: Vocabulary) -> bool:
    """A label | value row whose cells both wrapped: the next line sits tight under
    it, each of its cells under one of the row's, and it goes on in lower case
    ("terytorialnego / instytucji:" | "Opolskich") rather than starting a label of
    its own (a lower-case "e-mail:" is a new row, not a wrapped one)."""
    first = line.cells[0].text.strip()
    if not first or not first[0].islower() or vocab.match_cell(first) is not None:
        return False
    if prev.bottom - line.top > 0.6 * max(prev.height, line.height):
        return False
    return all(any(abs(c.x0 - cell.x0) <= 4 for c in row) for cell in line.cells)


def _participant_columns(line: _Line, vocab: Vocabulary) -> Columns | None:
    """Header cells of the participants table, as (x0, x1, field) columns."""
    if len(line.cells) < vocab.table_min_columns:
        return None
    columns: Columns = []
    for cell in line.cells:
        match = vocab.match_cell(cell.text.strip())
        key = (
            next((k for k in match.keys if k.startswith("participant.")), None)
            if match
            else None
        )
        if key is not None:
            columns.append((cell.x0, cell.x1, key))
    names = {k for _, _, k in columns}
    if len(names) >= vocab.table_min_columns and all(
        r in names for r in vocab.table_required
    ):
        return columns
    return None


def _wrapped_header(lines: list[_Line], n: int, vocab: Vocabulary) -> Columns | None:
    """The participants header when its labels wrap onto a second line ("Imię i" /
    "nazwisko"): each cell of the next line joins the header cell above it."""
    first, second = lines[n], lines[n + 1]
    if len(first.cells) < vocab.table_min_columns or first.bottom - second.top > (
        0.6 * max(first.height, second.height)
    ):
        return None
    merged = [Chunk(c.x0, c.y0, c.x1, c.y1, list(c.inlines)) for c in first.cells]
    for cell in second.cells:
        above = next(
            (m for m in merged if min(m.x1, cell.x1) - max(m.x0, cell.x0) > 0), None
        )
        if above is None:
            return None
        above.inlines.extend([" ", *cell.inlines])
        above.x1 = max(above.x1, cell.x1)
    return _participant_columns(_Line(merged, first.top, second.bottom, merged), vocab)


def _column_of(chunk: Chunk, columns: Columns) -> int | None:
    """The column a chunk sits in; ``None`` when it spans several (text below the table)."""
    overlaps = [min(chunk.x1, x1) - max(chunk.x0, x0) for x0, x1, _ in columns]
    if sum(1 for o in overlaps if o > 0) > 1:
        return None
    best = max(range(len(columns)), key=lambda n: overlaps[n])
    if overlaps[best] > 0:
        return best
    centre = (chunk.x0 + chunk.x1) / 2
    return min(
        range(len(columns)),
        key=lambda n: min(abs(columns[n][0] - centre), abs(columns[n][1] - centre)),
    )


def _participant_table(
    lines: list[_Line], start: int, columns: Columns, vocab: Vocabulary
) -> tuple[Table, int]:
    header_row: list[list[Block]] = [_cell([vocab.fields[k][0]]) for _, _, k in columns]
    number_col = next(
        (n for n, (_, _, k) in enumerate(columns) if k == "participant.number"), None
    )
    name_col = next(
        n for n, (_, _, k) in enumerate(columns) if k == "participant.full_name"
    )
    rows: list[list[list[Inline]]] = []
    i = start + 1
    while i < len(lines):
        prev, line = lines[i - 1], lines[i]
        if prev.top - line.top > 2.8 * max(prev.height, line.height):
            break
        placed: list[tuple[int, Chunk]] = []
        for cell in line.cells:
            col = _column_of(cell, columns)
            if col is None:
                break
            placed.append((col, cell))
        else:
            if vocab.match_section(line.text) is not None:
                break
            starts = (
                any(
                    c == number_col and cell.text.strip().rstrip(".").isdigit()
                    for c, cell in placed
                )
                if number_col is not None
                else any(c == name_col for c, _ in placed)
            )
            if starts or not rows:
                rows.append([[] for _ in columns])
            for col, cell in placed:
                target = rows[-1][col]
                if target:
                    target.append("\n")
                target.extend(cell.inlines)
            i += 1
            continue
        break
    table_rows: list[list[list[Block]]] = [header_row]
    table_rows.extend([_cell(c) for c in row] for row in rows)
    return Table(table_rows), i
