"""One PDF page's drawn content into blocks: ruled tables cell by cell, tick boxes as
tick characters, the rest of the text through the gap-based ``layout``.

Ruled tables are read from their grid (``pdf_grid``), so a value wrapped inside its
cell stays in its cell as lines of one paragraph ("\\n" between them: the extractor
decides how an e-mail's or a name's wrapped lines join). A tick box (a small square)
becomes "☒" when a mark is drawn in it (a ✘ glyph, a cross of strokes, a ZapfDingbats
check) and "☐" when it is empty: the text the extractor reads ticks from.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbot.forms.extract import Block, Inline, Para, Table
from mailbot.forms.labels import Vocabulary
from mailbot.forms.pdf_grid import Grid, find_grids, locate, split_columns
from mailbot.forms.pdf_layout import Chunk, layout, line_inlines
from mailbot.forms.pdf_objects import Box, Drawn

__all__ = ["RuledTable", "page_blocks"]

TICKED, UNTICKED = "☒", "☐"
_MARK_TEXT_MAX = 2  # a tick drawn as text is a glyph or two ("✘", "X")


@dataclass(slots=True)
class RuledTable:
    """A table rebuilt from a grid, with what its continuation on the next page needs."""

    table: Table
    first_xs: list[float]
    last_xs: list[float]


def page_blocks(
    drawn: Drawn, widgets: list[Chunk], vocab: Vocabulary
) -> list[tuple[float, Block, RuledTable | None]]:
    """The page's blocks top to bottom; ruled tables carry their ``RuledTable``."""
    chunks = [
        Chunk(p.x0, p.y0, p.x1, p.y1, [p.text], p.frame, p.ax) for p in drawn.pieces
    ]
    if drawn.tick_boxes:
        chunks = _ticks(chunks, drawn)
    chunks.extend(widgets)
    grids = find_grids(drawn.horizontal, drawn.vertical)
    free: list[Chunk] = []
    cells: list[dict[tuple[int, int], list[Chunk]]] = [{} for _ in grids]
    for chunk in chunks:
        where = locate(grids, *_anchor(chunk)) if grids else None
        if where is None:
            free.append(chunk)
        else:
            g, band, col = where
            cells[g].setdefault((band, col), []).append(chunk)
    if any(len(b.xs) == 2 for grid in grids for b in grid.bands):
        grids, cells = _with_columns(grids, cells, free, vocab)
    out: list[tuple[float, Block, RuledTable | None]] = [
        (top, block, None)
        for top, block in layout(
            # The text column's right edge: a labelled value wrapped there is one line.
            free, vocab, runs=True, margin=max((c.x1 for c in free), default=None)
        )
    ]
    for grid, content in zip(grids, cells, strict=True):
        if not content:
            continue  # a frame drawn around nothing (or around the page)
        ruled = _ruled_table(grid, content)
        out.append((grid.top, ruled.table, ruled))
    out.sort(key=lambda item: -item[0])
    return out


def _with_columns(
    grids: list[Grid],
    cells: list[dict[tuple[int, int], list[Chunk]]],
    free: list[Chunk],
    vocab: Vocabulary,
) -> tuple[list[Grid], list[dict[tuple[int, int], list[Chunk]]]]:
    """Grids drawn without inner vertical lines (row lines only, or a frame) get their
    columns from the white gaps running down them (``split_columns``). Row lines of
    one width run on from one table to the next, so a stack is cut at a band holding
    a section heading ("2. Uczestnicy"). A stack without such gaps, or a frame with
    no row lines, is read by gaps like free text: a one-column "table" says nothing."""
    out_grids: list[Grid] = []
    out_cells: list[dict[tuple[int, int], list[Chunk]]] = []
    for grid, content in zip(grids, cells, strict=True):
        if not content or any(len(b.xs) != 2 for b in grid.bands):
            out_grids.append(grid)
            out_cells.append(content)
            continue
        by_band: dict[int, list[Chunk]] = {}
        for (band, _), chunks in content.items():
            by_band.setdefault(band, []).extend(chunks)
        segment: list[int] = []
        for b in range(len(grid.bands) + 1):
            heading = b < len(grid.bands) and _is_heading(by_band.get(b, []), vocab)
            if b < len(grid.bands) and not heading:
                segment.append(b)
                continue
            if segment:
                _segment(grid, segment, by_band, free, out_grids, out_cells)
            if heading:
                free.extend(by_band.get(b, []))
            segment = []
    return out_grids, out_cells


def _is_heading(chunks: list[Chunk], vocab: Vocabulary) -> bool:
    text = " ".join(c.text.strip() for c in sorted(chunks, key=lambda c: c.x0))
    return bool(text) and vocab.match_section(text) is not None


def _segment(
    grid: Grid,
    bands: list[int],
    by_band: dict[int, list[Chunk]],
    free: list[Chunk],
    out_grids: list[Grid],
    out_cells: list[dict[tuple[int, int], list[Chunk]]],
) -> None:
    chunks = [c for b in bands for c in by_band.get(b, [])]
    rows = [grid.bands[b] for b in bands]
    sub = Grid(grid.left, rows[-1].bottom, grid.right, rows[0].top, rows)
    if not chunks or not split_columns(sub, [(c.x0, c.y0, c.x1, c.y1) for c in chunks]):
        free.extend(chunks)
        return
    content: dict[tuple[int, int], list[Chunk]] = {}
    for chunk in chunks:
        where = locate([sub], *_anchor(chunk))
        if where is None:
            free.append(chunk)
        else:
            content.setdefault((where[1], where[2]), []).append(chunk)
    out_grids.append(sub)
    out_cells.append(content)


def _anchor(chunk: Chunk) -> tuple[float, float]:
    """Where a run belongs: its first character (a value overflowing its field is
    still the field's), or a widget's centre."""
    y = (chunk.y0 + chunk.y1) / 2
    inlines = chunk.inlines
    if not (len(inlines) == 1 and isinstance(inlines[0], str)) and any(
        not isinstance(i, str) for i in inlines
    ):
        return (chunk.x0 + chunk.x1) / 2, y
    x = chunk.x0 if chunk.ax is None else chunk.ax
    return x + min(2.0, (chunk.x1 - chunk.x0) / 2), y


def _ruled_table(grid: Grid, content: dict[tuple[int, int], list[Chunk]]) -> RuledTable:
    rows: list[list[list[Block]]] = []
    for b, band in enumerate(grid.bands):
        row: list[list[Block]] = []
        for c in range(len(band.xs) - 1):
            row.append([Para(_cell_inlines(content.get((b, c), [])))])
        rows.append(row)
    return RuledTable(Table(rows), grid.bands[0].xs, grid.bands[-1].xs)


def _cell_inlines(chunks: list[Chunk]) -> list[Inline]:
    """A cell's runs as lines (top to bottom) separated by "\\n"."""
    if not chunks:
        return []
    if len(chunks) == 1 and len(chunks[0].inlines) == 1:
        only = chunks[0].inlines[0]
        return [only.strip()] if isinstance(only, str) else [only]
    out: list[Inline] = []
    lines: list[list[Chunk]] = []
    bounds: list[tuple[float, float]] = []
    for chunk in sorted(chunks, key=lambda c: (-c.y1, c.x0)):
        centre = (chunk.y0 + chunk.y1) / 2
        if lines and bounds[-1][1] - 1 <= centre <= bounds[-1][0] + 1:
            lines[-1].append(chunk)
        else:
            lines.append([chunk])
            bounds.append((chunk.y1, chunk.y0))
    for n, line in enumerate(lines):
        if n:
            out.append("\n")
        line.sort(key=lambda c: c.x0)
        inlines = line_inlines(line)
        if inlines and isinstance(inlines[0], str):
            inlines[0] = inlines[0].lstrip()
        if inlines and isinstance(inlines[-1], str):
            inlines[-1] = inlines[-1].rstrip()
        out.extend(inlines)
    return out


def _ticks(chunks: list[Chunk], drawn: Drawn) -> list[Chunk]:
    """Tick boxes as "☒"/"☐" chunks; a short text run drawn in a box is its mark."""
    boxes = drawn.tick_boxes
    ticked = [any(_inside(m, box) for m in drawn.marks) for box in boxes]
    kept: list[Chunk] = []
    for chunk in chunks:
        text = chunk.text.strip()
        if len(text) <= _MARK_TEXT_MAX:
            box_of = next(
                (n for n, box in enumerate(boxes) if _inside((chunk.x0, chunk.y0, chunk.x1, chunk.y1), box)),
                None,
            )
            if box_of is not None:
                ticked[box_of] = ticked[box_of] or bool(text)
                continue
        kept.append(chunk)
    for box, on in zip(boxes, ticked, strict=True):
        kept.append(Chunk(box[0], box[1], box[2], box[3], [TICKED if on else UNTICKED]))
    return kept


def _inside(inner: Box, outer: Box) -> bool:
    """Whether ``inner``'s centre lies in ``outer``."""
    x = (inner[0] + inner[2]) / 2
    y = (inner[1] + inner[3]) / 2
    return outer[0] <= x <= outer[2] and outer[1] <= y <= outer[3]
