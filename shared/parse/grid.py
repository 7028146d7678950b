"""Cell grids → template cells, aligned by label.

The reader walks every table row of the document in order (a section may be split
over several ``Table`` blocks, or several sections may share one) and decides what
each row is from its own cells:

- a section heading (``四、政府信息公开行政复议…`` printed inside a table),
- a section-二 caption (``第二十条第（一）项``, or a deviant ``第二十六条…``),
- a header row (``信息内容 | 本年新制作数量…``; ``自然人 | 商业企业…``;
  ``行政复议 | 行政诉讼…``) — header cells give column positions,
- a data row, found by its label cells (``规章``; ``三、本年度办理结果 | （三）不予公开 |
  1.属于国家秘密``) — the label decides the row, never its position in the table,
- a values-only row: the 15 numbers of section 四 (possibly split over rows).

Values of a data row are aligned to columns by, in order of trust:

1. the header's column positions, when every value sits under its column (a header
   label merged over several columns owns them all, see :func:`pick_in_span`);
2. the header's positions with one cell lost under a two-column label (seed 000's
   ``三、本年度办理结果 | (一) 予以公开 | … | 0``), only when the row's last value sits
   under the header's last column;
3. the row's own cells right after its labels, when exactly as many as there are
   columns are followed only by padding (the ragged text carriers: the header lost
   its merged cells, or the labels take more cells than the header's);
4. the header's positions shifted left or right (a row that lost or gained leading
   cells, e.g. ``(七) 总计	0	0…`` printed one cell left of its header);
5. exactly as many non-blank cells as columns;
6. otherwise right-aligned to the last printed value, every cell marked uncertain.

Rows placed by 2, 4, 5 or 6 lower the confidence. A carrier that pads every row to
a rectangle cannot tell a row's trailing blanks from padding, so a sparse row in a
ragged table remains ambiguous between 2 and 3; 2 is taken only for one lost cell.

Blank cells stay ``None``. Everything noteworthy is recorded in
:class:`GridReading` for the record's evidence and confidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise

from shared.extract.blocks import Document, Table
from shared.parse.labels import LabelIndex, LabelMatch, core_label, normalise_label
from shared.parse.numbers import CellReading, is_blank_text, looks_like_value, read_cell
from shared.parse.sections import match_heading
from shared.record import CellValue, LabelDeviation
from shared.templates import OFFICIAL_CAPTIONS, DisclosureItem, Label, Template

# how much each kind of alignment is trusted (confidence score ceiling)
CONFIDENCE_PREFIX_LABEL = 0.95
CONFIDENCE_FUZZY_LABEL = 0.9
CONFIDENCE_SHIFTED_ROW = 0.9
CONFIDENCE_COUNTED_ROW = 0.9
CONFIDENCE_GUESSED_ROW = 0.6
CONFIDENCE_HEADERLESS_REVIEWS = 0.85

REVIEW_CELLS = 15

# alignments that lower confidence: (score ceiling, what it means)
ALIGNMENT_CONFIDENCE: dict[str, tuple[float, str]] = {
    "lost": (0.95, "cells lost under a row's label cells, left blank"),
    "shifted": (CONFIDENCE_SHIFTED_ROW, "rows shifted against the header"),
    "nonblank": (CONFIDENCE_COUNTED_ROW, "rows placed by counting non-blank cells"),
    "guessed": (CONFIDENCE_GUESSED_ROW, "rows whose cell count did not fit, right-aligned"),
}

# Section 三's groups: a label cell that names one sets the group the following
# numbered items belong to. (六)其他处理 is a group in 2021 and a row in 2019.
APPLICATION_GROUPS: tuple[Label, ...] = (
    Label("denied", "（三）不予公开", ("不予以公开",)),
    Label("unavailable", "（四）无法提供", ()),
    Label("rejected", "（五）不予处理", ()),
    Label("other", "（六）其他处理", ()),
    Label("results", "三、本年度办理结果", ("本年度办理结果",)),
)
_GROUP_OF_ROW_PREFIX = {"denied_": "denied", "unavailable_": "unavailable", "rejected_": "rejected"}
_GROUP_OTHER_2021 = ("other_no_correction", "other_no_fee", "other_misc")

# header words that only section 三's header carries (总计/其他 are shared with 四)
APPLICATION_HEADER_WORDS = frozenset(
    core_label(w)
    for w in (
        "自然人",
        "商业企业",
        "科研机构",
        "社会公益组织",
        "法律服务机构",
        "法人或其他组织",
        "申请人情况",
    )
)
REVIEW_GROUP_LABELS: tuple[Label, ...] = (
    Label("review", "行政复议"),
    Label("litigation", "行政诉讼"),
    Label("litigation_direct", "未经复议直接起诉", ("行政诉讼未经复议直接起诉", "直接起诉")),
    Label("litigation_after_review", "复议后起诉", ("行政诉讼复议后起诉",)),
)
# fragments of wrapped review header cells ("结果\n维持" split into two cells)
REVIEW_HEADER_FRAGMENTS = frozenset(
    {"结果", "维持", "纠正", "尚未", "审结", "其他结果", "结果维持", "结果纠正", "尚未审结"}
)
DISCLOSURE_HEADER_WORDS = frozenset({core_label("信息内容")})
# header cells of section 三 that name a group of columns, not a column of their own
APPLICATION_HEADER_ONLY_WORDS = frozenset(core_label(w) for w in ("申请人情况", "法人或其他组织"))

_CAPTION = re.compile(r"^第[一二三四五六七八九十百零〇\d]+条第\([一二三四五六七八九十\d]+\)项")
_UNIT_NOTE = re.compile(r"[(（]?\s*单位\s*[:：]?\s*(万元|元)[^)）]*[)）]?")
_EMBEDDED_ITEM = re.compile(r"^(.+?)((?:\d+[.、]|\([一二三四五六七八九十]\)).+)$")
_OFFICIAL_CAPTIONS_NORMALISED = frozenset(normalise_label(c) for c in OFFICIAL_CAPTIONS)


@dataclass
class GridReading:
    """What the grids gave: cells by dotted path plus the evidence around them."""

    cells: dict[str, CellValue] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    uncertain: dict[str, str] = field(default_factory=dict)
    deviations: list[LabelDeviation] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)  # record sections that had a table, in order
    rows_found: list[str] = field(default_factory=list)  # "applications.granted", …
    extra_rows: list[str] = field(default_factory=list)
    reasons: list[tuple[float, str]] = field(default_factory=list)  # (score ceiling, why)
    notes: list[str] = field(default_factory=list)  # worth telling, not lowering confidence

    def lower(self, score: float, reason: str) -> None:
        if all(r != reason for _, r in self.reasons):
            self.reasons.append((score, reason))

    def saw(self, section: str) -> None:
        if section not in self.sections:
            self.sections.append(section)

    def deviation(self, where: str, found: str, official: str | None) -> None:
        dev = LabelDeviation(where=where, found=found.strip(), official=official)
        if dev not in self.deviations:
            self.deviations.append(dev)


@dataclass(frozen=True, slots=True)
class SplitRow:
    """A row cut into its leading label cells and the value cells after them."""

    cells: tuple[str, ...]
    labels: tuple[tuple[int, str], ...]  # (index, text) of non-blank label cells
    last_label: int  # index of the last label cell, -1 when none
    tail: tuple[tuple[int, str], ...]  # (index, text) of every cell after the labels
    has_values: bool  # some cell after the labels is not blank


def split_row(cells: tuple[str, ...]) -> SplitRow:
    labels: list[tuple[int, str]] = []
    last = -1
    for i, cell in enumerate(cells):
        if _is_blank(cell):
            continue
        if looks_like_value(cell):
            break
        labels.append((i, cell))
        last = i
    tail = tuple(enumerate(cells))[last + 1 :]
    return SplitRow(cells, tuple(labels), last, tail, not all(map(_is_blank, cells[last + 1 :])))


_is_blank = is_blank_text


@dataclass(frozen=True, slots=True)
class Alignment:
    cells: tuple[tuple[int, str] | None, ...]  # per column: (grid index, text) or None (lost)
    how: str  # "header" | "count" | "shifted" | "nonblank" | "guessed"
    note: str | None = None


Span = tuple[int, ...]  # the grid columns one header label covers (merged cells repeat)


def pick_in_span(cells: tuple[str, ...], span: Span) -> int:
    """The grid column to read under a header label spanning several columns.

    Merged cells are repeated into every slot, so the slots at the start of the span
    that repeat the cell left of it continue a merge from the left (and likewise at
    the end); the first slot that is not such a continuation holds this column's value.
    """
    if len(span) == 1:
        return span[0]

    def text(i: int) -> str | None:
        return cells[i] if 0 <= i < len(cells) else None

    inner = list(span)
    left, right = text(span[0] - 1), text(span[-1] + 1)
    while inner and left is not None and text(inner[0]) == left:
        inner.pop(0)
    while inner and right is not None and text(inner[-1]) == right:
        inner.pop()
    return inner[0] if inner else span[0]


def align_values(
    row: SplitRow, n: int, spans: list[Span] | None, extra_columns: frozenset[int] = frozenset()
) -> Alignment:
    """Put a data row's value cells under its ``n`` columns (see the module docstring).

    ``extra_columns``: grid columns the header labels with something that is not one of
    the form's columns (a 小计 or 备注 column); their cells are read past, not placed."""
    tail = row.tail
    last = row.last_label
    if not row.has_values:
        # nothing printed: every column is blank whatever the alignment
        blanks: list[tuple[int, str] | None] = [(i, "") for i, _ in tail[:n]]
        return Alignment(tuple([*blanks, *[None] * (n - len(blanks))]), "blank")

    cells = row.cells
    width = len(cells)
    owned_unshifted = frozenset(p for span in spans for p in span) if spans is not None else frozenset()

    def fits(shift: int, *, allow_lost: bool, allow_extra: bool) -> Alignment | None:
        assert spans is not None
        first, end = spans[0][0] + shift, spans[-1][-1] + shift
        if not allow_lost and first <= last:
            return None
        owned = owned_unshifted | extra_columns if shift == 0 else {p + shift for p in owned_unshifted}
        for i in range(last + 1, min(end, width)):
            if i not in owned and not _is_blank(cells[i]):
                return None  # a value between or left of the columns: not this alignment
        extra = [i for i in range(max(end + 1, last + 1), width) if not _is_blank(cells[i])]
        if extra and not allow_extra:
            return None
        picked: list[tuple[int, str] | None] = []
        lost = printed = False
        for span in spans:
            if span[-1] + shift <= last:
                picked.append(None)  # the cell under this column holds a label: lost
                lost = True
                continue
            live = tuple(p + shift for p in span if p + shift > last)
            p = live[0] if len(live) == 1 else pick_in_span(cells, live)
            text = cells[p] if p < width else ""
            printed = printed or not _is_blank(text)
            picked.append((p, text))
        if not printed:
            return None
        note = f"{len(extra)} value cell(s) right of the last column ignored" if extra else None
        if lost:
            return Alignment(tuple(picked), "lost", note)
        return Alignment(tuple(picked), "header" if shift == 0 else "shifted", note)

    if spans is not None:
        exact = fits(0, allow_lost=False, allow_extra=True)
        if exact is not None:
            return exact
        # one cell lost under the labels (a label merged over two columns printed once,
        # seed 000's 予以公开 row): only when the row's last value sits under the
        # header's last column, which pins the row
        last_value = max(i for i, c in tail if not _is_blank(c))
        lost_cells = sum(1 for span in spans if span[-1] <= last)
        if last_value == spans[-1][-1] and lost_cells == 1:
            lost = fits(0, allow_lost=True, allow_extra=False)
            if lost is not None:
                return lost
    if len(tail) >= n and all(_is_blank(c) for _, c in tail[n:]):
        # the row's own cells, right after its labels; what follows is padding. When
        # they start left of the header's first column, the row lost leading cells.
        lost_leading = spans is not None and tail[0][0] < spans[0][0]
        return Alignment(tuple(tail[:n]), "shifted" if lost_leading else "count")
    if spans is not None:
        for shift in sorted((s for s in range(-4, 5) if s), key=lambda s: (abs(s), s)):
            moved = fits(shift, allow_lost=False, allow_extra=False)
            if moved is not None:
                return moved
    nonblank = [(i, c) for i, c in tail if not _is_blank(c)]
    if len(nonblank) == n:
        return Alignment(tuple(nonblank), "nonblank")
    # last resort: right-aligned to the last printed value
    trimmed = list(tail)
    while trimmed and _is_blank(trimmed[-1][1]):
        trimmed.pop()
    padded: list[tuple[int, str] | None] = [None] * max(0, n - len(trimmed)) + list(trimmed[-n:])
    return Alignment(tuple(padded), "guessed", f"{len(trimmed)} value cells for {n} columns")


def extra_header_columns(
    header: tuple[str, ...], spans: list[Span] | None, header_words: frozenset[str]
) -> frozenset[int]:
    """Header cells right of the first column that name none of the form's columns."""
    if spans is None:
        return frozenset()
    owned = {p for span in spans for p in span}
    return frozenset(
        i
        for i, text in enumerate(header)
        if i > spans[0][0] and i not in owned and not _is_blank(text) and core_label(text) not in header_words
    )


def header_spans(found: dict[str, list[int]], keys: list[str]) -> list[Span] | None:
    """Each key's run of consecutive header columns, when all keys are there, in order."""
    spans: list[Span] = []
    for key in keys:
        indices = found.get(key)
        if not indices:
            return None
        run = [indices[0]]
        for i in indices[1:]:
            if i != run[-1] + 1:
                break
            run.append(i)
        spans.append(tuple(run))
    for a, b in pairwise(spans):
        if a[-1] >= b[0]:
            return None
    return spans


def _labels_index(labels: tuple[Label, ...], *, allow_prefix: bool = True) -> LabelIndex:
    return LabelIndex(((lab.key, lab.official, lab.variants) for lab in labels), allow_prefix=allow_prefix)


def _header_unit(text: str) -> str | None:
    m = _UNIT_NOTE.search(normalise_label(text))
    return m.group(1) if m else None


def _without_unit_note(text: str) -> str:
    return _UNIT_NOTE.sub("", normalise_label(text))


def _group_of(key: str) -> str | None:
    for prefix, group in _GROUP_OF_ROW_PREFIX.items():
        if key.startswith(prefix):
            return group
    return "other" if key in _GROUP_OTHER_2021 else None


@dataclass(frozen=True)
class LayoutIndexes:
    """The label lookups of one layout; built once per layout (they cache their matches)."""

    app_rows: LabelIndex
    app_cols: LabelIndex
    groups: LabelIndex
    items: LabelIndex
    fields: dict[str, LabelIndex]
    review_groups: LabelIndex
    review_outcomes: LabelIndex
    row_group: dict[str, str | None]
    app_paths: dict[str, tuple[str, ...]]  # row key -> its cells' dotted paths, in column order


_INDEXES: dict[str, LayoutIndexes] = {}


def layout_indexes(layout: Template) -> LayoutIndexes:
    cached = _INDEXES.get(layout.id)
    if cached is not None:
        return cached
    row_cores = {core_label(lab) for r in layout.application_rows for lab in r.all}
    indexes = LayoutIndexes(
        app_rows=_labels_index(layout.application_rows),
        app_cols=_labels_index(layout.application_columns, allow_prefix=False),
        # a group whose label is a row of this layout (2019: (六)其他处理) is read as the row
        groups=_labels_index(tuple(g for g in APPLICATION_GROUPS if core_label(g.official) not in row_cores)),
        items=LabelIndex((i.key, i.label.official, i.label.variants) for i in layout.disclosure),
        fields={i.key: _labels_index(i.fields) for i in layout.disclosure},
        review_groups=_labels_index(REVIEW_GROUP_LABELS),
        review_outcomes=_labels_index(layout.review_outcomes, allow_prefix=False),
        row_group={r.key: _group_of(r.key) for r in layout.application_rows},
        app_paths={
            r.key: tuple(f"applications.{r.key}.{c.key}" for c in layout.application_columns)
            for r in layout.application_rows
        },
    )
    _INDEXES[layout.id] = indexes
    return indexes


class GridReader:
    """Reads every table of a document against one layout. Use :func:`read_grids`."""

    def __init__(self, layout: Template) -> None:
        self.layout = layout
        self.out = GridReading()
        indexes = layout_indexes(layout)
        self.app_rows = indexes.app_rows
        self.app_cols = indexes.app_cols
        self.groups = indexes.groups
        self.items = indexes.items
        self.fields = indexes.fields
        self.review_groups = indexes.review_groups
        self.review_outcomes = indexes.review_outcomes
        self.row_group = indexes.row_group
        self.app_paths = indexes.app_paths
        # state
        self.context: str | None = None
        self.heading_hint: str | None = None
        self.group: str | None = None
        self.app_header: list[Span] | None = None
        self.app_header_parts: dict[str, list[int]] = {}
        self.app_header_rows: list[tuple[str, ...]] = []
        self.app_extra_columns: frozenset[int] = frozenset()
        self.disc_header: tuple[str, ...] | None = None
        self.review_header: list[tuple[str, ...]] = []
        self.review_values: list[tuple[int, str]] = []  # (grid index, text)
        self.review_done = False
        self._review_map: list[tuple[str, str] | None] | None = None
        self._review_map_for = -1
        self.aligned: dict[str, list[str]] = {}
        self._rows_seen: set[str] = set()

    # ------------------------------------------------------------------ driving

    def read(self, doc: Document) -> GridReading:
        for block in doc.blocks:
            if isinstance(block, Table):
                for row in block.rows:
                    self.feed(tuple(row))
            else:
                key = match_heading(block.text)
                if key:
                    self.heading_hint = key
        self.finish_reviews()
        self.summarise_alignment()
        return self.out

    def feed(self, cells: tuple[str, ...]) -> None:
        if not cells or all(_is_blank(c) for c in cells):
            if self.context == "reviews" and not self.review_done and self.review_header and len(cells) >= 5:
                self.add_review_values(split_row(cells))
            return
        row = split_row(cells)
        if not row.has_values:
            # headings, captions and header rows carry no numbers
            distinct = [c for c in dict.fromkeys(cells) if not _is_blank(c)]
            if len(distinct) == 1:
                key = match_heading(distinct[0])
                if key:
                    self.heading_hint = key
                    return
            if self.try_caption(row) or self.try_review_header(row) or self.try_app_header(row):
                return
            if self.try_disclosure_header(row):
                return
        if self.try_data_row(row):
            return
        if not row.labels:
            self.values_only_row(row)
            return
        if self.context in ("applications", "active_disclosure") and row.has_values:
            label = " | ".join(t.strip() for _, t in row.labels)
            self.out.extra_rows.append(label)

    # ------------------------------------------------------------------ section 二

    def try_caption(self, row: SplitRow) -> bool:
        for _, text in row.labels:
            s = normalise_label(text)
            m = _CAPTION.match(s)
            if not m:
                continue
            self.context = "active_disclosure"
            self.disc_header = None
            self.out.saw("active_disclosure")
            printed = text.strip()
            if printed not in self.out.captions:
                self.out.captions.append(printed)
            if m.group(0) not in _OFFICIAL_CAPTIONS_NORMALISED:
                self.out.deviation("caption", printed, None)
            return True
        return False

    def try_disclosure_header(self, row: SplitRow) -> bool:
        if not row.labels or row.has_values:
            return False
        cores = [core_label(t) for _, t in row.labels]
        if cores[0] in DISCLOSURE_HEADER_WORDS or any(
            any(idx.match(_without_unit_note(t), fuzzy=False) for idx in self.fields.values())
            for _, t in row.labels[1:]
        ):
            if any(self.items.match(t, fuzzy=False) for _, t in row.labels):
                return False
            self.context = "active_disclosure"
            self.disc_header = row.cells
            self.out.saw("active_disclosure")
            return True
        return False

    def disclosure_row(self, row: SplitRow, item: DisclosureItem, match: LabelMatch, label: str) -> None:
        self.context = "active_disclosure"
        self.out.saw("active_disclosure")
        where = f"active_disclosure.{item.key}"
        self.note_label(where, label, match)
        positions, units = self.disclosure_positions(item)
        extra = extra_header_columns(self.disc_header or (), positions, DISCLOSURE_HEADER_WORDS)
        alignment = align_values(row, len(item.fields), positions, extra)
        self.note_alignment(where, alignment)
        for f, picked in zip(item.fields, alignment.cells, strict=True):
            amount = f.key in item.amount_fields
            self.put(
                f"{where}.{f.key}",
                picked,
                amount=amount,
                default_unit=units.get(f.key),
                guessed=alignment.how == "guessed",
            )
        self.record_row(where)

    def disclosure_positions(self, item: DisclosureItem) -> tuple[list[Span] | None, dict[str, str]]:
        header = self.disc_header
        units: dict[str, str] = {}
        if header is None:
            return None, units
        index = self.fields[item.key]
        found: dict[str, list[int]] = {}
        for i, text in enumerate(header):
            if _is_blank(text):
                continue
            match = index.match(_without_unit_note(text))
            if match is None:
                continue
            found.setdefault(match.key, []).append(i)
            unit = _header_unit(text)
            if unit:
                units.setdefault(match.key, unit)
            if match.deviates:
                self.out.deviation(f"active_disclosure.{item.key}.{match.key}", text, match.official)
        return header_spans(found, [f.key for f in item.fields]), units

    # ------------------------------------------------------------------ section 三

    def try_app_header(self, row: SplitRow) -> bool:
        if row.has_values:
            return False
        cores = [core_label(t) for _, t in row.labels]
        specific = sum(1 for c in cores if c in APPLICATION_HEADER_WORDS)
        if (
            specific < 2
            and not any("勾稽关系" in c for c in cores)
            and not (specific >= 1 and self.context == "applications")
        ):
            return False
        if self.context != "applications":
            self.app_header_parts = {}
            self.app_header_rows = []
        self.context = "applications"
        self.out.saw("applications")
        self.app_header_rows.append(row.cells)
        found: dict[str, list[int]] = {}
        for i, text in row.labels:
            match = self.app_cols.match(text)
            if match and match.kind in ("exact", "variant"):
                found.setdefault(match.key, []).append(i)
        for key, indices in found.items():
            # a label repeated down a rowspan keeps the columns it was first seen in
            self.app_header_parts.setdefault(key, indices)
        self.app_header = header_spans(
            self.app_header_parts, [c.key for c in self.layout.application_columns]
        )
        extra: set[int] = set()
        for cells in self.app_header_rows:
            extra |= extra_header_columns(cells, self.app_header, APPLICATION_HEADER_ONLY_WORDS)
        self.app_extra_columns = frozenset(extra)
        for i in sorted(extra):
            names = {c[i].strip() for c in self.app_header_rows if i < len(c) and not _is_blank(c[i])}
            for name in sorted(names - set(self.out.extra_rows)):
                self.out.extra_rows.append(name)
        return True

    def app_row(self, row: SplitRow, key: str, match: LabelMatch, label: str) -> None:
        self.context = "applications"
        self.out.saw("applications")
        where = f"applications.{key}"
        if where in self._rows_seen:
            self.out.extra_rows.append(f"{label.strip()}（重复）")
            return
        self.note_label(where, label, match)
        group = self.row_group.get(key)
        if group:
            self.group = group
        alignment = align_values(
            row, len(self.layout.application_columns), self.app_header, self.app_extra_columns
        )
        self.note_alignment(where, alignment)
        guessed = alignment.how == "guessed"
        for path, picked in zip(self.app_paths[key], alignment.cells, strict=True):
            self.put(path, picked, False, None, guessed)
        self.record_row(where)

    # ------------------------------------------------------------------ section 四

    def try_review_header(self, row: SplitRow) -> bool:
        if row.has_values or not row.labels:
            return False
        groups = sum(1 for _, t in row.labels if self.review_groups.match(t, fuzzy=False))
        fragments = sum(1 for _, t in row.labels if core_label(t) in REVIEW_HEADER_FRAGMENTS)
        if groups == 0 and fragments < 2:
            return False
        if self.context != "reviews" or self.review_done:
            self.review_header = []
            self.review_values = []
            self.review_done = False
            self._review_map_for = -1
        self.context = "reviews"
        self.out.saw("reviews")
        self.review_header.append(row.cells)
        return True

    def values_only_row(self, row: SplitRow) -> None:
        if self.context == "reviews" and not self.review_done:
            self.add_review_values(row)
            return
        if self.heading_hint == "reviews" and not self.review_done and len(row.tail) == REVIEW_CELLS:
            # a bare row of 15 numbers right under heading 四: its header was not printed
            self.context = "reviews"
            self.out.saw("reviews")
            self.out.lower(CONFIDENCE_HEADERLESS_REVIEWS, "section 四 read without its header row")
            self.add_review_values(row)
            return
        if self.context == "applications":
            self.out.extra_rows.append("（无标签的数据行）")
            self.out.lower(CONFIDENCE_GUESSED_ROW, "a section 三 row has no label and was skipped")

    def review_map(self) -> list[tuple[str, str] | None] | None:
        """(group, outcome) per grid column from the header rows, when it is complete."""
        if not self.review_header:
            return None
        key = len(self.review_header)
        if self._review_map_for != key:
            self._review_map = self._build_review_map()
            self._review_map_for = key
        return self._review_map

    def _build_review_map(self) -> list[tuple[str, str] | None] | None:
        width = max(len(r) for r in self.review_header)
        groups: list[str | None] = [None] * width
        outcomes: list[str | None] = [None] * width
        for cells in self.review_header:
            current: str | None = None
            for i in range(width):
                text = cells[i] if i < len(cells) else ""
                if _is_blank(text):
                    if current is not None and (groups[i] in (None, "litigation") or current != "litigation"):
                        groups[i] = current if groups[i] in (None, "litigation") else groups[i]
                    continue
                g = self.review_groups.match(text)
                if g:
                    current = g.key
                    if groups[i] in (None, "litigation"):
                        groups[i] = g.key
                    continue
                current = None
                o = self.review_outcomes.match(text)
                if o:
                    outcomes[i] = o.key
        pairs = [(g, o) for g, o in zip(groups, outcomes, strict=True) if g and o]
        expected = {(g.key, o.key) for g in self.layout.review_groups for o in self.layout.review_outcomes}
        columns = [(g, o) if g and o else None for g, o in zip(groups, outcomes, strict=True)]
        if len(pairs) == REVIEW_CELLS and set(pairs) == expected:
            return columns
        return None

    def add_review_values(self, row: SplitRow) -> None:
        tail = row.tail
        if not self.review_values and self.place_reviews_by_header(row):
            return
        nonblank = [(i, c) for i, c in tail if not _is_blank(c)]
        trimmed = list(tail)
        while trimmed and _is_blank(trimmed[-1][1]) and len(self.review_values) + len(trimmed) > REVIEW_CELLS:
            trimmed.pop()  # blanks at a row's end beyond 15 are padding
        if not self.review_values and len(trimmed) != REVIEW_CELLS and len(nonblank) == REVIEW_CELLS:
            cells = nonblank
            self.out.lower(CONFIDENCE_COUNTED_ROW, "section 四 values placed by counting non-blank cells")
        else:
            cells = trimmed
            if self.review_values or len(cells) < REVIEW_CELLS:
                self.out.lower(CONFIDENCE_COUNTED_ROW, "section 四 values collected over several rows")
        self.review_values.extend(cells)
        if len(self.review_values) >= REVIEW_CELLS:
            if len(self.review_values) > REVIEW_CELLS:
                self.out.lower(CONFIDENCE_GUESSED_ROW, "section 四 has more than 15 value cells")
            self.commit_reviews()

    def place_reviews_by_header(self, row: SplitRow) -> bool:
        columns = self.review_map()
        if columns is None:
            return False
        mapped = [(i, c) for i, c in enumerate(columns) if c is not None]
        positions = [i for i, _ in mapped]
        if positions[0] <= row.last_label or positions[-1] >= len(row.cells):
            return False
        owned = set(positions)
        if any(i not in owned and not _is_blank(c) for i, c in row.tail):
            return False
        for i, (group, outcome) in mapped:
            self.put(f"reviews.{group}.{outcome}", (i, row.cells[i]))
        self.review_done = True
        self.note_reviews_found()
        return True

    def review_paths(self) -> list[str]:
        return [
            f"reviews.{g.key}.{o.key}" for g in self.layout.review_groups for o in self.layout.review_outcomes
        ]

    def review_header_in_official_order(self) -> bool:
        """The header's labels, read row by row, name the 15 columns in the official order
        (a carrier that dropped merged cells keeps the order, not the positions)."""
        groups: list[str] = []
        outcomes: list[str] = []
        for cells in self.review_header:
            for text in cells:
                if _is_blank(text):
                    continue
                g = self.review_groups.match(text)
                if g:
                    if g.key != "litigation" and (not groups or groups[-1] != g.key):
                        groups.append(g.key)
                    continue
                o = self.review_outcomes.match(text)
                if o:
                    outcomes.append(o.key)
        official_groups = [g.key for g in self.layout.review_groups]
        official_outcomes = [o.key for o in self.layout.review_outcomes] * len(official_groups)
        return groups == official_groups and outcomes == official_outcomes

    def commit_reviews(self) -> None:
        if self.review_header and self.review_map() is None and not self.review_header_in_official_order():
            self.out.lower(0.95, "section 四 header unreadable; values read in the official order")
        for path, picked in zip(self.review_paths(), self.review_values[:REVIEW_CELLS], strict=False):
            self.put(path, picked)
        self.review_done = True
        self.note_reviews_found()

    def note_reviews_found(self) -> None:
        for g in self.layout.review_groups:
            self.record_row(f"reviews.{g.key}")

    def finish_reviews(self) -> None:
        if self.review_values and not self.review_done:
            n = len(self.review_values)
            self.out.lower(CONFIDENCE_GUESSED_ROW, f"section 四 has {n} value cells, not 15")
            for path, picked in zip(self.review_paths(), self.review_values, strict=False):
                self.put(path, picked, guessed=True)
            self.note_reviews_found()

    # ------------------------------------------------------------------ data rows

    def try_data_row(self, row: SplitRow) -> bool:
        if not row.labels:
            return False
        for position in range(len(row.labels) - 1, -1, -1):
            text = row.labels[position][1]
            for candidate in self.label_candidates(text):
                if self.dispatch(row, candidate, position):
                    return True
        joined = "".join(t for _, t in row.labels)
        if len(row.labels) > 1:
            return self.dispatch(row, joined, len(row.labels) - 1)
        return False

    @staticmethod
    @lru_cache(maxsize=8192)
    def label_candidates(text: str) -> tuple[str, ...]:
        """The cell, and the item label run into it: ``（三）不予公开1.属于国家秘密``."""
        s = normalise_label(text)
        m = _EMBEDDED_ITEM.match(s)
        return (text, m.group(2)) if m else (text,)

    def dispatch(self, row: SplitRow, text: str, position: int) -> bool:
        item = self.items.match(text)
        if item is not None:
            self.disclosure_row(row, self.layout.disclosure_item(item.key), item, text)
            return True
        app = self.app_rows.match(text)
        if app is not None and app.kind == "fuzzy" and self.group:
            # a typo'd sub-item: prefer the rows of the group it is printed under
            in_group = frozenset(k for k, g in self.row_group.items() if g == self.group)
            app = self.app_rows.match(text, only=in_group) or app
        group = self.groups.match(text)
        if app is not None and (group is None or group.score < app.score):
            self.app_row(row, app.key, app, text)
            return True
        if group is not None:
            self.group = group.key
            if position == len(row.labels) - 1 and row.has_values:
                # a group printed with numbers of its own, e.g. a 不予公开 subtotal
                self.context = "applications"
                self.out.extra_rows.append(text.strip())
            return True
        return False

    # ------------------------------------------------------------------ recording

    def note_label(self, where: str, label: str, match: LabelMatch) -> None:
        if match.kind in ("prefix", "fuzzy"):
            self.out.deviation(where, label, match.official)
            if match.kind == "fuzzy":
                self.out.lower(
                    CONFIDENCE_FUZZY_LABEL, f"fuzzy label match: {label.strip()!r} read as {match.official!r}"
                )
            else:
                self.out.lower(CONFIDENCE_PREFIX_LABEL, f"label with extra words: {label.strip()!r}")
        elif match.kind == "variant":
            self.out.deviation(where, label, match.official)

    def note_alignment(self, where: str, alignment: Alignment) -> None:
        if alignment.how in ALIGNMENT_CONFIDENCE:
            self.aligned.setdefault(alignment.how, []).append(where)
        if alignment.note and alignment.how != "guessed":
            self.out.notes.append(f"{where}: {alignment.note}")

    def summarise_alignment(self) -> None:
        for how, rows in self.aligned.items():
            score, what = ALIGNMENT_CONFIDENCE[how]
            shown = ", ".join(r.split(".", 1)[1] for r in rows[:6]) + (
                f" (+{len(rows) - 6})" if len(rows) > 6 else ""
            )
            self.out.lower(score, f"{what}: {shown}")

    def record_row(self, where: str) -> None:
        if where not in self._rows_seen:
            self._rows_seen.add(where)
            self.out.rows_found.append(where)

    def put(
        self,
        path: str,
        picked: tuple[int, str] | None,
        amount: bool = False,
        default_unit: str | None = None,
        guessed: bool = False,
    ) -> None:
        out = self.out
        if path in out.cells:
            return
        if picked is None:
            out.cells[path] = None
            out.uncertain[path] = "cell lost: no value cell under this column"
            return
        text = picked[1]
        reading: CellReading = read_cell(text, amount, default_unit)
        out.cells[path] = reading.value
        out.raw[path] = text
        if amount:
            unit = reading.unit or (default_unit if not reading.blank else None)
            if unit:
                out.units[path] = unit
        if reading.problem is not None:
            out.uncertain[path] = reading.problem
            out.lower(0.8, "some cells could not be read as numbers")
        elif guessed:
            out.uncertain[path] = "column guessed from the cell count"


def read_grids(doc: Document, layout: Template) -> GridReading:
    """Every table cell the document's grids give for ``layout``, with evidence."""
    return GridReader(layout).read(doc)
