"""Table cells rebuilt from the ruling lines a PDF draws.

A table printed from Word or LibreOffice (or drawn by reportlab) is text runs plus
thin lines; gaps between runs cannot tell a wrapped e-mail's tail from the next
column's value, the lines can. Horizontal and vertical rulings that touch form one
grid; each band between two horizontal rulings is a row whose cells are bounded by
the vertical rulings crossing it (so merged cells and a different column count per
row come out right). Text runs go into the cell their first character is in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailbot.forms.pdf_objects import Box

__all__ = ["Band", "Grid", "find_grids", "locate", "split_columns"]

_NEAR = 3.0  # rulings this close touch
_SAME = 2.0  # coordinates this close are one line
_MIN_BAND = 4.0  # thinner bands are double rules
_MAX_PAIRS = 250_000  # horizontal x vertical rulings compared per page
_MAX_LONE = 5_000  # horizontal rulings looked at per page
_STACK_GAP = 120.0  # row lines further apart than this are not one table
_RIVER = 5.0  # a white gap this wide down a whole table parts two columns
_PAD = 2.0  # a column starts this far left of its text
_MAX_GRIDS = 60  # more is a drawing, not a form's tables: read by gaps instead


@dataclass(slots=True)
class Band:
    """One row of a grid: its vertical extent and its column boundaries."""

    top: float
    bottom: float
    xs: list[float]


@dataclass(slots=True)
class Grid:
    left: float
    bottom: float
    right: float
    top: float
    bands: list[Band] = field(default_factory=list)


def find_grids(horizontal: list[Box], vertical: list[Box]) -> list[Grid]:
    """Grids (top to bottom) made by rulings that cross or touch each other."""
    hs = [((b[1] + b[3]) / 2, b[0], b[2]) for b in horizontal]
    vs = [((b[0] + b[2]) / 2, b[1], b[3]) for b in vertical]
    if len(hs) < 3 and not vs or len(hs) * len(vs) > _MAX_PAIRS:
        return []
    parent = list(range(len(hs) + len(vs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (y, x0, x1) in enumerate(hs):
        for j, (x, y0, y1) in enumerate(vs):
            if x0 - _NEAR <= x <= x1 + _NEAR and y0 - _NEAR <= y <= y1 + _NEAR:
                a, b = root(i), root(len(hs) + j)
                if a != b:
                    parent[a] = b
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for i in range(len(hs)):
        groups.setdefault(root(i), ([], []))[0].append(i)
    for j in range(len(vs)):
        groups.setdefault(root(len(hs) + j), ([], []))[1].append(j)
    grids = []
    lone: list[tuple[float, float, float]] = []
    for h_ids, v_ids in groups.values():
        if not v_ids and len(h_ids) == 1:
            lone.append(hs[h_ids[0]])
            continue
        grid = _grid([hs[i] for i in h_ids], [vs[j] for j in v_ids])
        if grid is not None:
            grids.append(grid)
    if len(lone) <= _MAX_LONE:
        grids.extend(_rule_stacks(lone))
    grids.sort(key=lambda g: -g.top)
    return grids if len(grids) <= _MAX_GRIDS else []


def _rule_stacks(lone: list[tuple[float, float, float]]) -> list[Grid]:
    """Tables ruled with row lines only: three or more lines of one width stacked
    close together. Their bands have no columns yet (see ``split_columns``)."""
    stacks: dict[tuple[int, int], list[tuple[float, float, float]]] = {}
    for line in lone:  # lines of one width: their ends fall in the same buckets
        stacks.setdefault((round(line[1] / _NEAR), round(line[2] / _NEAR)), []).append(line)
    grids = []
    for lines in stacks.values():
        x0, x1 = min(x for _, x, _ in lines), max(x for _, _, x in lines)
        ys = _distinct(sorted((y for y, _, _ in lines), reverse=True))
        start = 0
        for n in range(1, len(ys) + 1):
            if n == len(ys) or ys[n - 1] - ys[n] > _STACK_GAP:
                run = ys[start:n]
                if len(run) >= 3:
                    bands = [
                        Band(top, bottom, [x0, x1])
                        for top, bottom in zip(run, run[1:], strict=False)
                        if top - bottom >= _MIN_BAND
                    ]
                    if bands:
                        grids.append(Grid(x0, bands[-1].bottom, x1, bands[0].top, bands))
                start = n
    return grids


def split_columns(grid: Grid, boxes: list[Box]) -> bool:
    """Columns for a grid drawn without inner vertical lines (row lines only, or a
    frame): the boundaries are the white gaps running down the whole table, between
    the boxes of the text in it. Whether any were found (the grid's bands get them)."""
    if len(grid.bands) < 2 or not boxes:
        return False
    spans = sorted((b[0], b[2]) for b in boxes)
    bounds: list[float] = []
    reach = spans[0][1]
    for x0, x1 in spans[1:]:
        if x0 - reach >= _RIVER:
            bounds.append(x0 - _PAD)
        reach = max(reach, x1)
    if not bounds:
        return False
    for band in grid.bands:
        band.xs = [band.xs[0], *bounds, band.xs[-1]]
    return True


def _grid(
    hs: list[tuple[float, float, float]], vs: list[tuple[float, float, float]]
) -> Grid | None:
    if len(hs) < 2 or len(vs) < 2:
        return None
    ys = _distinct(sorted((y for y, _, _ in hs), reverse=True))
    bands: list[Band] = []
    for top, bottom in zip(ys, ys[1:], strict=False):
        if top - bottom < _MIN_BAND:
            continue
        mid = (top + bottom) / 2
        xs = _distinct(sorted(x for x, y0, y1 in vs if y0 - 1 <= mid <= y1 + 1))
        if len(xs) >= 2:
            bands.append(Band(top, bottom, xs))
    if not bands:
        return None
    left = min(b.xs[0] for b in bands)
    right = max(b.xs[-1] for b in bands)
    return Grid(left, bands[-1].bottom, right, bands[0].top, bands)


def _distinct(values: list[float]) -> list[float]:
    """Sorted values with near-duplicates (double rules, thick lines) folded."""
    out: list[float] = []
    for v in values:
        if not out or abs(v - out[-1]) > _SAME:
            out.append(v)
    return out


def locate(grids: list[Grid], x: float, y: float) -> tuple[int, int, int] | None:
    """(grid, band, cell) holding the point, or ``None`` when it is outside every grid."""
    for g, grid in enumerate(grids):
        if not (grid.left - 1 <= x <= grid.right + 1 and grid.bottom - 1 <= y <= grid.top + 1):
            continue
        for b, band in enumerate(grid.bands):
            if band.bottom - 1 <= y <= band.top + 1:
                xs = band.xs
                if not xs[0] - 1 <= x <= xs[-1] + 1:
                    return None
                for c in range(len(xs) - 1):
                    if x <= xs[c + 1]:
                        return g, b, c
                return g, b, len(xs) - 2
        return None
    return None
