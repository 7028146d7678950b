"""Positioned glyphs and ruling lines → paragraphs and cell grids, in reading order.

The PDF text layer (:mod:`shared.extract.pdf`) and OCR (:mod:`shared.extract.ocr`) both
end up with the same raw material per page: glyphs (a character or word with its box)
and ruling lines (horizontal and vertical segments). This module turns that into the
:class:`~shared.extract.blocks.Document` intermediate, so both carriers produce the same
grids as HTML:

1. **Lattice**: ruling lines are snapped, grouped into connected frames, and each frame
   becomes a grid of slots; neighbouring slots with no line between them are one merged
   cell (the PDF equivalent of rowspan/colspan). Merged text is repeated into every slot.
2. **Lines**: glyphs outside any table are grouped into text lines (vertical overlap),
   ordered left to right, with a space wherever the gap says there was one.
3. **Page furniture**: lines in the top/bottom band that repeat on most pages (running
   headers/footers) and page numbers (``- 3 -``, ``第 3 页``, ``3/5``) are dropped.
4. **Flow**: a line that runs to the right margin continues into the next line (wrapped
   paragraph), also across a page break; a table that ends one page and starts the next
   with the same outer frame is one table, and a row cut by the page break is stitched
   back together.

Everything is in points, origin top-left of the page as displayed (rotation applied by the
caller). Pure: no I/O, no third-party imports.
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from shared.extract.blocks import Block, Paragraph, Table
from shared.templates import OFFICIAL_CAPTIONS, TEMPLATES

# lines closer than this (points) are the same line; ~1 mm
SNAP_TOLERANCE = 3.0
# a text line is "full" (wraps into the next) when it ends this many glyph heights from the margin
FULL_LINE_SLACK = 1.6
# the band (fraction of page height) where running headers, footers and page numbers live
FURNITURE_BAND = 0.1
# a gap wider than this many glyph heights between two glyphs on a line is a space
SPACE_GAP = 0.3
# ... and wider than this, a column gap (segments of an unruled table)
COLUMN_GAP = 1.5
# more white than this many line heights between two lines separates paragraphs
PARAGRAPH_GAP = 0.75
# a page with more distinct rules than this is a drawing, not a table (and would cost rules²)
MAX_RULES = 2000
# a frame with more slots than this is not a report table
MAX_SLOTS = 100_000

_CJK_RANGES = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f"
_CJK_CHAR = re.compile(f"[{_CJK_RANGES}]")
_PAGE_NUMBER = re.compile(
    r"^(?:"
    r"[-—–_·•\s]*\d{1,4}[-—–_·•\s]*"  # 3, - 3 -, — 3 —
    r"|第\s*[\d一二三四五六七八九十百]+\s*页(?:\s*[,，/、]?\s*共\s*[\d一二三四五六七八九十百]+\s*页)?"
    r"|共\s*\d+\s*页\s*第\s*\d+\s*页"
    r"|\d{1,4}\s*/\s*\d{1,4}"
    r"|(?:page|p\.)\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?"
    r")$",
    re.I,
)
# the start of a heading or enumerated item: never the continuation of a wrapped line
_ITEM_START = re.compile(
    r"^(?:[-•·●○■□◆▪*]\s*\S|[一二三四五六七八九十]+[、.．]|[（(][一二三四五六七八九十\d]+[)）]|\d{1,2}[、.．](?!\d)|[①-⑳])"
)
_NUMBER_CELL = re.compile(r"[-+−]?\d[\d,，]*(?:[.．]\d+)?\s*(?:%|％|万元|元|件|个|条)?")


# ---------------------------------------------------------------- raw material


@dataclass(frozen=True, slots=True)
class Glyph:
    """A character (or an OCR word) and its box. ``score`` is the OCR confidence (1.0 for text layers)."""

    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    score: float = 1.0

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.top + self.bottom) / 2


@dataclass(frozen=True, slots=True)
class Segment:
    """A ruling line: horizontal (``y0 == y1``) or vertical (``x0 == x1``)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def horizontal(self) -> bool:
        return abs(self.y1 - self.y0) <= abs(self.x1 - self.x0)


@dataclass(slots=True)
class Line:
    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    # the line's pieces separated by column-wide gaps (an unruled table row has several)
    segments: list[tuple[float, float, str]] = field(default_factory=list)
    height: float = 0.0


@dataclass(slots=True)
class Cell:
    """A merged cell of a lattice: rows ``r0..r1-1`` of its frame, x-range in points."""

    r0: int
    r1: int
    x0: float
    x1: float
    text: str = ""


@dataclass(slots=True)
class TableFragment:
    """One framed table on one page (a table broken by a page break is two fragments)."""

    cells: list[Cell]
    row_bounds: list[float]  # y of each row boundary, nrows + 1 of them
    x0: float
    top: float
    x1: float
    bottom: float
    origin: str = "pdf-ruled"
    page: int = 0

    @property
    def nrows(self) -> int:
        return len(self.row_bounds) - 1


@dataclass(slots=True)
class PageLayout:
    """What a page holds, top to bottom. ``width``/``height`` in points as displayed."""

    width: float
    height: float
    items: list[Line | TableFragment] = field(default_factory=list)


# ---------------------------------------------------------------- lattice


def _cluster(values: Iterable[float], tolerance: float = SNAP_TOLERANCE) -> list[float]:
    """Sorted representatives of values that lie within ``tolerance`` of their neighbours."""
    ordered = sorted(values)
    groups: list[list[float]] = []
    for v in ordered:
        if groups and v - groups[-1][-1] <= tolerance:
            groups[-1].append(v)
        else:
            groups.append([v])
    return [sum(g) / len(g) for g in groups]


def _nearest(anchors: Sequence[float], value: float) -> int:
    return min(range(len(anchors)), key=lambda i: abs(anchors[i] - value))


@dataclass(slots=True)
class _Rule:
    at: float  # y of a horizontal rule, x of a vertical one
    lo: float
    hi: float


def _merge_rules(pieces: Iterable[tuple[float, float, float]], tolerance: float) -> list[_Rule]:
    """Collinear segments (same ``at`` within tolerance) that touch or overlap become one rule."""
    segments = list(pieces)
    rules: list[_Rule] = []
    by_position: dict[int, list[tuple[float, float, float]]] = {}
    anchors = _cluster((s[0] for s in segments), tolerance)
    for at, lo, hi in segments:
        by_position.setdefault(_nearest(anchors, at), []).append((at, lo, hi))
    for index, group in sorted(by_position.items()):
        group.sort(key=lambda s: s[1])
        current: _Rule | None = None
        for _, lo, hi in group:
            if current is not None and lo <= current.hi + tolerance:
                current.hi = max(current.hi, hi)
                continue
            current = _Rule(anchors[index], lo, hi)
            rules.append(current)
    return rules


def find_tables(
    segments: Sequence[Segment], *, tolerance: float = SNAP_TOLERANCE, origin: str = "pdf-ruled"
) -> list[TableFragment]:
    """Framed tables from ruling lines: each connected set of horizontal and vertical rules
    with at least two cells becomes a :class:`TableFragment` (cell text still empty)."""
    min_length = tolerance * 2
    horizontal = _merge_rules(
        [
            ((s.y0 + s.y1) / 2, min(s.x0, s.x1), max(s.x0, s.x1))
            for s in segments
            if s.horizontal and abs(s.x1 - s.x0) >= min_length
        ],
        tolerance,
    )
    vertical = _merge_rules(
        [
            ((s.x0 + s.x1) / 2, min(s.y0, s.y1), max(s.y0, s.y1))
            for s in segments
            if not s.horizontal and abs(s.y1 - s.y0) >= min_length
        ],
        tolerance,
    )
    if not horizontal or not vertical or len(horizontal) + len(vertical) > MAX_RULES:
        return []

    # connected components of crossing rules (union-find over h + v)
    parent = list(range(len(horizontal) + len(vertical)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for hi, h in enumerate(horizontal):
        for vi, v in enumerate(vertical):
            if h.lo - tolerance <= v.at <= h.hi + tolerance and v.lo - tolerance <= h.at <= v.hi + tolerance:
                parent[find(hi)] = find(len(horizontal) + vi)

    groups: dict[int, tuple[list[_Rule], list[_Rule]]] = {}
    for hi, h in enumerate(horizontal):
        groups.setdefault(find(hi), ([], []))[0].append(h)
    for vi, v in enumerate(vertical):
        groups.setdefault(find(len(horizontal) + vi), ([], []))[1].append(v)

    tables = [
        t
        for hs, vs in groups.values()
        if hs and vs and (t := _frame_to_table(hs, vs, tolerance, origin)) is not None
    ]
    tables.sort(key=lambda t: (t.top, t.x0))
    return tables


def _covers(rules: Sequence[_Rule], at: float, point: float, tolerance: float) -> bool:
    return any(abs(r.at - at) <= tolerance and r.lo - tolerance <= point <= r.hi + tolerance for r in rules)


def _frame_to_table(hs: list[_Rule], vs: list[_Rule], tolerance: float, origin: str) -> TableFragment | None:
    ys = _cluster((h.at for h in hs), tolerance)
    xs = _cluster((v.at for v in vs), tolerance)
    if len(ys) < 2 or len(xs) < 2:
        return None
    nrows, ncols = len(ys) - 1, len(xs) - 1
    if nrows * ncols > MAX_SLOTS:
        return None
    # slot (r, c) joins its right / lower neighbour unless a rule separates them
    parent = list(range(nrows * ncols))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for r in range(nrows):
        mid_y = (ys[r] + ys[r + 1]) / 2
        for c in range(ncols):
            mid_x = (xs[c] + xs[c + 1]) / 2
            if c + 1 < ncols and not _covers(vs, xs[c + 1], mid_y, tolerance):
                parent[find(r * ncols + c + 1)] = find(r * ncols + c)
            if r + 1 < nrows and not _covers(hs, ys[r + 1], mid_x, tolerance):
                parent[find((r + 1) * ncols + c)] = find(r * ncols + c)

    spans: dict[int, list[int]] = {}
    for r in range(nrows):
        for c in range(ncols):
            root = find(r * ncols + c)
            box = spans.setdefault(root, [r, r + 1, c, c + 1])
            box[0], box[1] = min(box[0], r), max(box[1], r + 1)
            box[2], box[3] = min(box[2], c), max(box[3], c + 1)
    if len(spans) < 2:
        return None  # a framed box around text is not a table
    cells = [Cell(r0, r1, xs[c0], xs[c1]) for r0, r1, c0, c1 in spans.values()]
    cells.sort(key=lambda cell: (cell.r0, cell.x0))
    return TableFragment(cells, ys, xs[0], ys[0], xs[-1], ys[-1], origin)


def fill_cells(fragment: TableFragment, glyphs: Iterable[Glyph]) -> list[Glyph]:
    """Put each glyph whose centre lies inside a cell into that cell (text in reading order);
    returns the glyphs that fell outside the fragment."""
    columns = _cluster([v for c in fragment.cells for v in (c.x0, c.x1)])
    slot_owner: dict[tuple[int, int], int] = {}
    for index, cell in enumerate(fragment.cells):
        c0, c1 = _nearest(columns, cell.x0), _nearest(columns, cell.x1)
        for r in range(cell.r0, cell.r1):
            for c in range(c0, max(c1, c0 + 1)):
                slot_owner.setdefault((r, c), index)
    inside: dict[int, list[Glyph]] = {}
    outside: list[Glyph] = []
    for g in glyphs:
        if not (fragment.x0 <= g.cx <= fragment.x1 and fragment.top <= g.cy <= fragment.bottom):
            outside.append(g)
            continue
        row = min(max(bisect_right(fragment.row_bounds, g.cy) - 1, 0), fragment.nrows - 1)
        column = min(max(bisect_right(columns, g.cx) - 1, 0), len(columns) - 2)
        owner = slot_owner.get((row, column))
        if owner is not None:
            inside.setdefault(owner, []).append(g)
    for index, members in inside.items():
        lines = glyphs_to_lines(members)
        fragment.cells[index].text = join_wrapped([line.text for line in lines])
    return outside


# ---------------------------------------------------------------- text lines


def is_cjk(char: str) -> bool:
    return bool(_CJK_CHAR.match(char))


def join_wrapped(parts: Sequence[str]) -> str:
    """Join visually wrapped pieces of one text: nothing between CJK characters, a space
    between Latin words and numbers."""
    out = ""
    for piece in parts:
        part = piece.strip()
        if not part:
            continue
        if out and not (is_cjk(out[-1]) or is_cjk(part[0])):
            out += " "
        out += part
    return out


def glyphs_to_lines(glyphs: Iterable[Glyph]) -> list[Line]:
    """Group glyphs into text lines, top to bottom, each read left to right.

    A glyph joins the current line when its vertical centre lies in the line's band, or the
    band's centre lies in the glyph's box (a taller bracket, a smaller digit)."""
    rows: list[list[Glyph]] = []
    band = (0.0, 0.0)
    for g in sorted(glyphs, key=lambda g: (g.cy, g.x0)):
        if not g.text:
            continue
        if rows and (band[0] <= g.cy <= band[1] or g.top <= (band[0] + band[1]) / 2 <= g.bottom):
            rows[-1].append(g)
            continue
        rows.append([g])
        band = (g.top, g.bottom)
    return [line for row in rows if (line := _make_line(row)) is not None]


def _make_line(glyphs: list[Glyph]) -> Line | None:
    glyphs.sort(key=lambda g: g.x0)
    visible = [g for g in glyphs if g.text.strip()]
    if not visible:
        return None
    height = statistics.median(g.height for g in visible) or 1.0
    segments: list[tuple[float, float, str]] = []
    text = ""
    seg_start, seg_text, last_x1 = visible[0].x0, "", None
    pending_space = False
    for g in glyphs:
        if not g.text.strip():
            pending_space = bool(seg_text)
            continue
        if last_x1 is not None:
            gap = g.x0 - last_x1
            if gap > COLUMN_GAP * height:
                segments.append((seg_start, last_x1, seg_text.strip()))
                seg_start, seg_text, pending_space = g.x0, "", False
                text += " "
            elif pending_space or (gap > SPACE_GAP * height and not (is_cjk(text[-1]) and is_cjk(g.text[0]))):
                # Chinese is written without spaces: a gap between two CJK glyphs is spacing
                # (justification, OCR box slack), not a word break
                seg_text += " "
                text += " "
        seg_text += g.text
        text += g.text
        last_x1 = g.x1
        pending_space = False
    segments.append((seg_start, last_x1 or seg_start, seg_text.strip()))
    text = re.sub(r" {2,}", " ", text).strip()
    return Line(
        text=text,
        x0=visible[0].x0,
        top=min(g.top for g in visible),
        x1=max(g.x1 for g in visible),
        bottom=max(g.bottom for g in visible),
        segments=segments,
        height=height,
    )


# ---------------------------------------------------------------- page furniture


def _furniture_key(text: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", text))


def remove_furniture(pages: list[PageLayout]) -> int:
    """Drop running headers/footers and page numbers in place; returns how many lines went."""
    pages_with_text = [p for p in pages if any(isinstance(i, Line) for i in p.items)]
    needed = max(2, (len(pages_with_text) + 1) // 2)
    seen: dict[tuple[str, bool], set[int]] = {}
    for number, page in enumerate(pages):
        for item in page.items:
            if isinstance(item, Line) and (band := _band(item, page)) is not None:
                seen.setdefault((_furniture_key(item.text), band), set()).add(number)
    repeated = {key for key, where in seen.items() if len(where) >= needed}
    removed = 0
    for page in pages:
        kept: list[Line | TableFragment] = []
        for item in page.items:
            if isinstance(item, Line) and _is_furniture(item, _band(item, page), repeated):
                removed += 1
                continue
            kept.append(item)
        page.items = kept
    return removed


def _is_furniture(line: Line, band: bool | None, repeated: set[tuple[str, bool]]) -> bool:
    if band is None:
        return False
    return (_furniture_key(line.text), band) in repeated or bool(_PAGE_NUMBER.match(line.text.strip()))


def _band(line: Line, page: PageLayout) -> bool | None:
    """True for the header band, False for the footer band, None for the body."""
    if line.bottom <= page.height * FURNITURE_BAND:
        return True
    if line.top >= page.height * (1 - FURNITURE_BAND):
        return False
    return None


# ---------------------------------------------------------------- flow: paragraphs and tables


@lru_cache(maxsize=1)
def _row_start_vocabulary() -> tuple[str, ...]:
    """Printed labels that begin a table row (or a header row) of either layout."""
    words: set[str] = set(OFFICIAL_CAPTIONS) | {
        "信息内容",
        "申请人情况",
        "法人或其他组织",
        "行政复议",
        "行政诉讼",
    }
    for layout in TEMPLATES.values():
        for item in layout.disclosure:
            words.update(item.label.all)
            for f in item.fields:
                words.update(f.all)
        for group in (
            layout.application_rows,
            layout.application_columns,
            layout.review_groups,
            layout.review_outcomes,
        ):
            for label in group:
                words.update(label.all)
    return tuple(sorted({_squash(w) for w in words if len(_squash(w)) >= 2}, key=len, reverse=True))


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def _starts_row(text: str) -> bool:
    squashed = _squash(text)
    if not squashed:
        return False
    if _ITEM_START.match(squashed) or _ITEM_START.match(text.strip()):
        return True
    return squashed.startswith(_row_start_vocabulary())


def _is_number(text: str) -> bool:
    return bool(_NUMBER_CELL.fullmatch(text.strip()))


def fragment_grid(fragment: TableFragment, xs: Sequence[float] | None = None) -> list[list[str]]:
    """The rectangular grid of a fragment: merged text repeated into every slot."""
    columns = list(xs) if xs is not None else _cluster([v for c in fragment.cells for v in (c.x0, c.x1)])
    width = max(len(columns) - 1, 1)
    grid: list[list[str | None]] = [[None] * width for _ in range(fragment.nrows)]
    for cell in fragment.cells:
        c0, c1 = _nearest(columns, cell.x0), _nearest(columns, cell.x1)
        for r in range(cell.r0, min(cell.r1, fragment.nrows)):
            for c in range(c0, min(max(c1, c0 + 1), width)):
                if grid[r][c] is None:
                    grid[r][c] = cell.text
    return [[text or "" for text in row] for row in grid]


def _same_frame(a: TableFragment, b: TableFragment) -> bool:
    tolerance = SNAP_TOLERANCE * 2
    return abs(a.x0 - b.x0) <= tolerance and abs(a.x1 - b.x1) <= tolerance


def _is_split_row(last: list[str], first: list[str]) -> bool:
    """Is ``first`` (the top row of a continuation) the rest of ``last``, a row cut by the page break?

    Two halves of one row never both hold a number in the same column, and the lower half
    never starts a new labelled row (an enumerator such as ``（五）`` or ``3.``, or a label of
    the template). A wholly blank top row is padding of the cut row."""
    if len(last) != len(first):
        return False
    if any(a and b and _is_number(a) and _is_number(b) for a, b in zip(last, first, strict=True)):
        return False
    fresh = [b for a, b in zip(last, first, strict=True) if b and b != a]
    if any(_starts_row(text) for text in fresh if not _is_number(text)):
        return False
    if fresh and all(_is_number(text) for text in fresh):
        # only numbers below: the rest of the row above only where that row left them blank
        # (a header row above a row of numbers is two rows)
        return all(not a for a, b in zip(last, first, strict=True) if b and b != a)
    return True


def _matching_cell(cells: Iterable[Cell], cell: Cell) -> Cell | None:
    tolerance = SNAP_TOLERANCE * 2
    return next(
        (p for p in cells if abs(p.x0 - cell.x0) <= tolerance and abs(p.x1 - cell.x1) <= tolerance), None
    )


def join_fragments(a: TableFragment, b: TableFragment) -> TableFragment:
    """``b`` continues ``a`` on the next page: one fragment with the rows of both.

    A header row repeated at the top of each page is dropped; a row cut by the page break
    becomes one row again; a merged (vertically spanning) cell that goes on across the break
    keeps its text below the break too, as the HTML grid of the same table would."""
    xs = _cluster([v for c in (*a.cells, *b.cells) for v in (c.x0, c.x1)])
    grid_a, grid_b = fragment_grid(a, xs), fragment_grid(b, xs)

    repeated = 0
    while repeated < min(len(grid_a), len(grid_b) - 1) and grid_a[repeated] == grid_b[repeated]:
        repeated += 1
    grid_b = grid_b[repeated:]
    split = bool(grid_a and grid_b) and _is_split_row(grid_a[-1], grid_b[0])
    offset = a.nrows - repeated - (1 if split else 0)  # b's row r becomes row r + offset

    bottom_of_a = [c for c in a.cells if c.r1 == a.nrows]
    cells = list(a.cells)
    for cell in b.cells:
        if cell.r1 <= repeated:
            continue
        moved = Cell(max(cell.r0, repeated) + offset, cell.r1 + offset, cell.x0, cell.x1, cell.text)
        partner = _matching_cell(bottom_of_a, cell) if cell.r0 <= repeated else None
        if partner is None and split and cell.r0 <= repeated:
            partner = next((p for p in bottom_of_a if p.x0 <= (cell.x0 + cell.x1) / 2 <= p.x1), None)
        spans_rows = partner is not None and (partner.r1 - partner.r0 > 1 or moved.r1 - moved.r0 > 1)
        if partner is not None and (split or (not moved.text and partner.text and spans_rows)):
            if moved.text and moved.text != partner.text:
                partner.text = join_wrapped([partner.text, moved.text])
            partner.r1 = max(partner.r1, moved.r1)
            continue
        cells.append(moved)

    shift = a.bottom - b.row_bounds[repeated + (1 if split else 0)]
    lower = [y + shift for y in b.row_bounds[repeated + (1 if split else 0) + 1 :]]
    return TableFragment(
        cells=cells,
        row_bounds=[*a.row_bounds, *lower],
        x0=min(a.x0, b.x0),
        top=a.top,
        x1=max(a.x1, b.x1),
        bottom=a.bottom + (lower[-1] - a.bottom if lower else 0.0),
        origin=a.origin,
        page=b.page,
    )


def _fragment_to_blocks(fragment: TableFragment) -> list[Block]:
    grid = tuple(tuple(row) for row in fragment_grid(fragment) if any(cell.strip() for cell in row))
    if not grid:
        return []
    if len(grid) == 1 and len(set(grid[0])) == 1:
        return [Paragraph(grid[0][0])]  # one framed line of text
    return [Table(rows=grid, origin=fragment.origin)]


def _words_table(lines: list[Line], origin: str) -> Table | None:
    """An unruled table: consecutive lines whose column-gapped segments line up."""
    intervals = sorted((x0, x1) for line in lines for x0, x1, _ in line.segments)
    columns: list[list[float]] = []
    for x0, x1 in intervals:
        if columns and x0 <= columns[-1][1]:
            columns[-1][1] = max(columns[-1][1], x1)
        else:
            columns.append([x0, x1])
    if len(columns) < 3:
        return None
    rows: list[tuple[str, ...]] = []
    for line in lines:
        row = [""] * len(columns)
        for x0, x1, text in line.segments:
            index = next(i for i, (c0, c1) in enumerate(columns) if c0 <= (x0 + x1) / 2 <= c1)
            row[index] = join_wrapped([row[index], text])
        rows.append(tuple(row))
    return Table(rows=tuple(rows), origin=origin)


def _is_table_row(line: Line) -> bool:
    return len(line.segments) >= 3 and any(_is_number(s[2]) for s in line.segments)


@dataclass(slots=True)
class _Flow:
    """Builds blocks from a stream of lines and table fragments."""

    word_tables: bool
    blocks: list[Block] = field(default_factory=list)
    paragraph: list[str] = field(default_factory=list)
    previous: Line | None = None
    previous_margin: float = 0.0
    previous_page: int = -1
    table: TableFragment | None = None  # the last table, until something else follows it
    run: list[tuple[Line, float, int]] = field(default_factory=list)  # candidate unruled table rows

    def add_line(self, line: Line, right_margin: float, page: int) -> None:
        self.flush_table()
        if self.word_tables and _is_table_row(line):
            self.run.append((line, right_margin, page))
            return
        self.flush_run()
        self._add_text_line(line, right_margin, page)

    def _add_text_line(self, line: Line, right_margin: float, page: int) -> None:
        if not (
            self.paragraph
            and self.previous is not None
            and _continues(self.previous, line, self.previous_margin, same_page=page == self.previous_page)
        ):
            self.flush_paragraph()
        self.paragraph.append(line.text)
        self.previous, self.previous_margin, self.previous_page = line, right_margin, page

    def add_table(self, fragment: TableFragment) -> None:
        self.flush_run()
        if (
            self.table is not None
            and fragment.page == self.table.page + 1
            and _same_frame(self.table, fragment)
        ):
            self.table = join_fragments(self.table, fragment)
            return
        self.flush_paragraph()
        self.flush_table()
        self.table = fragment

    def flush_paragraph(self) -> None:
        if self.paragraph:
            self.blocks.append(Paragraph(join_wrapped(self.paragraph)))
            self.paragraph.clear()
        self.previous = None

    def flush_table(self) -> None:
        if self.table is not None:
            self.flush_paragraph()
            self.blocks.extend(_fragment_to_blocks(self.table))
            self.table = None

    def flush_run(self) -> None:
        run, self.run = self.run, []
        if not run:
            return
        table = _words_table([line for line, _, _ in run], "pdf-words") if len(run) >= 3 else None
        if table is None:
            for line, margin, page in run:
                self._add_text_line(line, margin, page)
            return
        self.flush_paragraph()
        self.blocks.append(table)

    def finish(self) -> list[Block]:
        self.flush_run()
        self.flush_table()
        self.flush_paragraph()
        return self.blocks


def assemble(pages: list[PageLayout], *, word_tables: bool = True) -> list[Block]:
    """Pages → blocks in reading order: furniture removed, wrapped lines joined into
    paragraphs (also across a page break), a table broken by a page break joined again."""
    remove_furniture(pages)
    flow = _Flow(word_tables=word_tables)
    # the text column's right edge: a page's widest line, but never less than on a typical
    # page (the last page's one short line must not count as running to the margin)
    widest = [max((i.x1 for i in p.items if isinstance(i, Line)), default=0.0) for p in pages]
    typical = statistics.median([w for w in widest if w > 0] or [0.0])
    for number, page in enumerate(pages):
        right_margin = max(widest[number], typical) or page.width
        for item in page.items:
            if isinstance(item, Line):
                flow.add_line(item, right_margin, number)
            else:
                item.page = number
                flow.add_table(item)
    return flow.finish()


def _continues(previous: Line, line: Line, right_margin: float, *, same_page: bool) -> bool:
    """Does ``line`` carry on the paragraph that ``previous`` wrapped? Only when the previous
    line ran to the right margin, this one does not start an item, and (on one page) the
    gap between them is line spacing, not paragraph spacing."""
    height = previous.height or 10.0
    if previous.x1 < right_margin - FULL_LINE_SLACK * height:
        return False  # the previous line stopped short: its paragraph ended
    if same_page and line.top - previous.bottom > PARAGRAPH_GAP * height:
        return False
    return not _ITEM_START.match(line.text.strip())
