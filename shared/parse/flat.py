"""Recover table cells from text whose cells were run together by someone else's extractor.

Some archives keep only a page's text, with the statistical tables flattened and
no separator between cells: ``一、本年新收政府信息公开申请数量640020470`` is the
row 64|0|0|2|0|4|70. The cell boundaries are lost; what survives is the form's
arithmetic, and that is what this module uses to put them back:

- **Digit rules** (every cell): a cell is ``0`` or starts with 1–9 (no leading
  zeros); whitespace is a cell boundary; a sign starts a cell and only 本年增/减
  may carry one; a decimal point stays inside its cell and only amounts have
  one; ``元``/``万元`` (and count words such as ``笔``) end the cell they follow.
- **Row sums** (section 三 rows, section 四 groups): the total is the sum of the
  cells before it. The total is taken as a suffix of the run and the addends are
  searched with the remaining sum as a bound, so long runs stay cheap.
- **Column identities** (section 三): per column, 本年新收 + 上年结转 = 总计 +
  结转下年度, and 总计 = the sum of the outcome rows (``Template.outcome_rows``).
  When a row still has several valid splits, the combination of splits that
  makes every column reconcile is chosen.

Nothing is invented: when several readings survive (or none reconciles, as in a
genuinely faulty filing), a cell gets a value only when every surviving reading
agrees on it; the others are listed in :attr:`FlatTables.uncertain` with the
candidate splits. Section 二 has no sum, so only the digit rules speak there: a
cell is kept when every reading they allow agrees on it (``000`` → 0|0|0,
``0012`` → 0|0|12, ``15-15`` → 15|-15; in ``88-720`` only the 88).

Pure and bounded: no I/O, and every search has a step budget and a candidate cap
(hitting one is reported in ``uncertain``, never guessed through).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache, partial
from itertools import product
from typing import TypeVar

from shared.parse.numbers import MAX_INTEGER_DIGITS, integer_digits
from shared.templates import SECTION_HEADINGS, TEMPLATES, Label, Template, TemplateId

Split = tuple[int, ...]
Segments = tuple[str, ...]
_T = TypeVar("_T")

# Search bounds. Real runs need a few hundred steps; these only stop pathological text.
STEP_BUDGET = 20_000  # DFS steps per run
MAX_CANDIDATES = 64  # splits kept per run before giving up on it
MAX_COMBINATIONS = 4_096  # row-split combinations tried when reconciling columns
SHOWN_CANDIDATES = 8  # candidate splits listed in an ``uncertain`` message
# longer runs are not a table row: no count in these tables reaches 10**8, no amount 24 characters
MAX_COUNT_CHARS = 8
MAX_AMOUNT_CHARS = 24


@dataclass
class FlatTables:
    """Cells recovered from run-together text.

    ``cells`` holds only cells that could be determined (``None`` = a row printed
    with no cells at all, i.e. blank). ``uncertain`` explains every cell of a found
    row that was left out, and also flags kept cells whose reading needed a
    fallback (e.g. a space inside a cell). Rows whose label was not found appear in
    neither; compare ``found_rows`` with the layout to see them.
    """

    cells: dict[str, int | float | None] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    uncertain: dict[str, str] = field(default_factory=dict)
    found_rows: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- text and labels

_EXTRA_MINUS = str.maketrans({"\u2212": "-", "\u2012": "-", "\u2013": "-"})
_QUOTE_CHARS = "\"'“”‘’「」『』〝〞"
_LABEL_GAP = f"[\\s{re.escape(_QUOTE_CHARS)}]*"
_NUMBERING = re.compile(r"^(?:[一二三四五六七八九十]+[、.]|\([一二三四五六七八九十]+\)|\d+[.、])")
# a sub-item number ("2." / "2、") printed right before a label, glued to the previous run
_ITEM_NUMBER_BEFORE = re.compile(r"[1-9]\s*[.、]\s*$")
# a note after a label: （区分处理的，只计这一情形，不计其他情形）
_LABEL_NOTE = re.compile(r"\s*\([^()0-9]{0,60}\)")
# a run of cell text: numbers (signed, decimal, with a unit word) separated by nothing or whitespace
_RUN = re.compile(r"(?:\s*[+\-]?\d[\d.]*(?:万元|元|笔|个|件|项)?)*")
_CELL_PIECE = re.compile(r"[+\-]?[\d.]+(?:万元|元|笔|个|件|项)?")
_TRAILING_ITEM_NUMBER = re.compile(r"[1-9]\.$")
_HEADER_UNIT = re.compile(r"\((?:单位[:]?)?\s*(万元|元)\s*\)")
_DISCLOSURE_START = ("第二十条第(一)项", "二、主动公开政府信息情况")
_REVIEW_HEADER_WORDS = ("行政复议", "行政诉讼")


def normalise_text(text: str) -> str:
    """NFKC (full-width digits, brackets, minus and spaces become ASCII) plus the odd minus signs."""
    return unicodedata.normalize("NFKC", text).translate(_EXTRA_MINUS)


def _core(label: str) -> str:
    s = normalise_text(label)
    s = re.sub(r"\s+", "", s)
    s = s.translate(str.maketrans("", "", _QUOTE_CHARS))
    return _NUMBERING.sub("", s, count=1)


def _fuzzy(core: str) -> str:
    """A pattern for ``core`` that tolerates whitespace and quotes between its characters."""
    return _LABEL_GAP.join(re.escape(ch) for ch in core)


def _label_pattern(cores: Sequence[str]) -> re.Pattern[str]:
    unique = sorted({c for c in cores if c}, key=len, reverse=True)  # longest wins at a position
    # a closing quote may follow the label: 危及“三安全一稳定”
    return re.compile(f"(?:{'|'.join(_fuzzy(c) for c in unique)})[{re.escape(_QUOTE_CHARS)}]*")


def _is_numbered_item(label: Label) -> bool:
    return bool(re.match(r"\d+[.、]", normalise_text(label.official)))


@dataclass(frozen=True, slots=True)
class _RowPattern:
    path: str  # "applications.granted"
    pattern: re.Pattern[str]
    numbered: bool  # an official "1." prefix may be glued to the previous run


@dataclass(frozen=True, slots=True)
class _Patterns:
    disclosure: tuple[_RowPattern, ...]
    applications: tuple[_RowPattern, ...]
    disclosure_start: re.Pattern[str]
    applications_heading: re.Pattern[str]
    review_start: re.Pattern[str]
    review_header: re.Pattern[str]


@lru_cache(maxsize=4)
def _patterns(layout: Template) -> _Patterns:
    def row(section: str, label: Label) -> _RowPattern:
        return _RowPattern(
            f"{section}.{label.key}",
            _label_pattern([_core(v) for v in label.all]),
            _is_numbered_item(label),
        )

    heading = next(h for h in SECTION_HEADINGS if h.key == "applications")
    header_words = [
        *_REVIEW_HEADER_WORDS,
        *(v for g in layout.review_groups for v in g.all),
        *(v for o in layout.review_outcomes for v in o.all),
    ]
    header_alternatives = "|".join(_fuzzy(_core(w)) for w in sorted(set(header_words), key=len, reverse=True))
    first_outcome = layout.review_outcomes[0].official
    return _Patterns(
        disclosure=tuple(row("active_disclosure", item.label) for item in layout.disclosure),
        applications=tuple(row("applications", r) for r in layout.application_rows),
        disclosure_start=re.compile("|".join(_fuzzy(normalise_text(s)) for s in _DISCLOSURE_START)),
        # keep the numbering: the report's introduction lists the section names without it
        applications_heading=re.compile(
            "|".join(_fuzzy(re.sub(r"\s+", "", normalise_text(s))) for s in heading.all)
        ),
        review_start=re.compile(_fuzzy(_core(first_outcome))),
        review_header=re.compile(f"(?:\\s|{header_alternatives})*"),
    )


@dataclass(frozen=True, slots=True)
class _Located:
    path: str
    start: int  # where the label (with a glued item number) begins: the previous run ends here
    end: int  # where the cell text may begin


def _locate_rows(text: str, rows: Sequence[_RowPattern], start: int, end: int) -> list[_Located]:
    """Find each row label in order; a label not found leaves the cursor where it was."""
    found: list[_Located] = []
    cursor = start
    for row in rows:
        m = row.pattern.search(text, cursor, end)
        if not m:
            continue
        label_start = m.start()
        if row.numbered:
            before = _ITEM_NUMBER_BEFORE.search(text, max(cursor, label_start - 6), label_start)
            if before:
                label_start = before.start()
        label_end = m.end()
        note = _LABEL_NOTE.match(text, label_end, end)
        if note:
            label_end = note.end()
        found.append(_Located(row.path, label_start, label_end))
        cursor = label_end
    return found


def _run_after(text: str, begin: int, stop: int) -> tuple[str, str]:
    """(the run of cell text at ``begin``, the rest of the gap up to ``stop``)."""
    m = _RUN.match(text, begin, stop)
    run = m.group(0) if m else ""
    rest = text[begin + len(run) : stop]
    run = run.strip()
    if _TRAILING_ITEM_NUMBER.search(run):  # the "2." of a following label we did not recognise
        run = run[:-2].rstrip()
    return run, rest


# ---------------------------------------------------------------- cells


@dataclass(frozen=True, slots=True)
class _CellSpec:
    signed: bool = False
    amount: bool = False
    amount_in_yuan: bool = False  # the column header says 元: an amount without a unit is in 元


_PLAIN = _CellSpec()
_CELL = re.compile(r"^([+\-]?)(0|[1-9]\d*)(?:\.(\d+))?(万元|元|笔|个|件|项)?$")
_AMOUNT_UNITS = ("万元", "元")


def _cell_value(text: str, spec: _CellSpec) -> int | float | None:
    """The value of one cell's text under the digit rules, or None when the text cannot be a cell."""
    m = _CELL.match(text)
    if not m:
        return None
    sign, whole, frac, unit = m.groups()
    if sign and (not spec.signed or (whole == "0" and not frac)):
        return None
    if (frac is not None or unit in _AMOUNT_UNITS) and not spec.amount:
        return None
    if unit and unit not in _AMOUNT_UNITS and spec.amount:
        return None
    if integer_digits(whole) > MAX_INTEGER_DIGITS:
        return None  # the same bound as a grid cell's (shared.parse.numbers): damage, not a value
    number = Decimal(f"{sign}{whole}.{frac}" if frac is not None else f"{sign}{whole}")
    in_yuan = unit == "元" or (unit is None and spec.amount_in_yuan)
    if in_yuan:
        return float(number / 10_000)
    if frac is not None:
        return float(number)
    return int(number)


def _segments(run: str) -> Segments | None:
    """Pieces no cell can span: whitespace, a sign before and a unit after are boundaries."""
    pieces: list[str] = []
    for token in run.split():
        parts = _CELL_PIECE.findall(token)
        if "".join(parts) != token:
            return None
        pieces.extend(parts)
    return tuple(pieces)


@dataclass(frozen=True, slots=True)
class _Run:
    """A run as one string of cell characters, with the pieces (see :func:`_segments`) it came from."""

    chars: str
    piece: tuple[int, ...]  # piece[i]: which piece character i belongs to
    reach: tuple[int, ...]  # reach[i]: where that piece ends; a cell starting at i ends there at the latest

    @classmethod
    def of(cls, pieces: Segments) -> _Run:
        piece: list[int] = []
        reach: list[int] = []
        end = 0
        for n, p in enumerate(pieces):
            end += len(p)
            piece.extend([n] * len(p))
            reach.extend([end] * len(p))
        return cls("".join(pieces), tuple(piece), tuple(reach))

    def pieces_in(self, start: int, end: int) -> int:
        """How many pieces [start, end) touches: the fewest cells that can cover it."""
        return self.piece[end - 1] - self.piece[start] + 1 if end > start else 0


class _SearchCapped(Exception):
    """A split search ran out of its step budget or found too many candidates."""


class _Budget:
    __slots__ = ("left",)

    def __init__(self, steps: int) -> None:
        self.left = steps

    def tick(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise _SearchCapped


class _SumBounds:
    """The smallest and largest sums reachable by splitting [pos, end) into c cells of ≤ ``longest`` digits.

    Exact for the digit rules (it reads the actual digits), memoised per (pos, c); the addend search
    asks it before descending, which is what keeps long runs cheap."""

    __slots__ = ("budget", "end", "longest", "memo", "run")

    def __init__(self, run: _Run, end: int, longest: int, budget: _Budget) -> None:
        self.run, self.end, self.longest, self.budget = run, end, longest, budget
        self.memo: dict[tuple[int, int], tuple[int, int]] = {}

    def __call__(self, pos: int, cells: int) -> tuple[int, int]:
        key = (pos, cells)
        known = self.memo.get(key)
        if known is not None:
            return known
        self.budget.tick()
        chars, end = self.run.chars, self.end
        low: int | None = None
        high = -1
        if cells == 1:
            text = chars[pos:end]
            fits = self.run.reach[pos] >= end and len(text) <= self.longest
            if fits and (len(text) == 1 or text[0] != "0"):
                low = high = int(text)
        else:
            for length in range(1, min(self.longest, self.run.reach[pos] - pos, end - pos - cells + 1) + 1):
                text = chars[pos : pos + length]
                if length > 1 and text[0] == "0":
                    break
                sub_low, sub_high = self(pos + length, cells - 1)
                if sub_low > sub_high:
                    continue
                value = int(text)
                low = value + sub_low if low is None else min(low, value + sub_low)
                high = max(high, value + sub_high)
        result = (1, 0) if low is None else (low, high)  # (1, 0): no split at all
        self.memo[key] = result
        return result


def _sum_addends(
    run: _Run, pos: int, end: int, cells: int, remaining: int, *, bounds: _SumBounds, budget: _Budget
) -> Iterator[Split]:
    """Every way to read [pos, end) as ``cells`` integers adding up to ``remaining``."""
    budget.tick()
    if cells == 1:
        if run.reach[pos] >= end and run.chars[pos:end] == str(remaining):
            yield (remaining,)
        return
    longest = min(run.reach[pos], end - cells + 1) - pos
    for length in range(1, min(longest, len(str(remaining))) + 1):
        text = run.chars[pos : pos + length]
        if length > 1 and text[0] == "0":
            break
        value = int(text)
        if value > remaining:
            break
        low, high = bounds(pos + length, cells - 1)
        if not low <= remaining - value <= high:
            continue
        rest = remaining - value
        for tail in _sum_addends(run, pos + length, end, cells - 1, rest, bounds=bounds, budget=budget):
            yield (value, *tail)


def _sum_group(run: _Run, pos: int, end: int, addends: int, budget: _Budget) -> Iterator[Split]:
    """[pos, end) as ``addends`` integers and then their total: the total is a suffix, chosen first."""
    for start in range(end - 1, pos, -1):
        if run.reach[start] < end:  # the total would span a boundary
            break
        total_text = run.chars[start:end]
        if len(total_text) > 1 and total_text[0] == "0":
            continue
        head = start - pos
        if head < addends or run.pieces_in(pos, start) > addends or head > addends * len(total_text):
            continue
        total = int(total_text)
        bounds = _SumBounds(run, start, len(total_text), budget)  # no addend exceeds the total
        low, high = bounds(pos, addends)
        if not low <= total <= high:
            continue
        for split in _sum_addends(run, pos, start, addends, total, bounds=bounds, budget=budget):
            yield (*split, total)


def _sum_groups(
    run: _Run, pos: int, groups: Sequence[int], budget: _Budget, memo: dict[tuple[int, int], list[Split]]
) -> Iterator[Split]:
    """Consecutive groups of (addends…, total) filling the run from ``pos``.

    ``groups`` gives each group's number of addends; ``memo`` holds the readings of a run's tail."""
    size = len(run.chars)
    if len(groups) == 1:
        yield from _sum_group(run, pos, size, groups[0], budget)
        return
    later_cells = sum(g + 1 for g in groups[1:])
    for end in range(pos + groups[0] + 1, size - later_cells + 1):
        firsts = list(_sum_group(run, pos, end, groups[0], budget))
        if not firsts:
            continue
        key = (end, len(groups) - 1)
        if key not in memo:
            memo[key] = list(_sum_groups(run, end, groups[1:], budget, memo))
        for first in firsts:
            for rest in memo[key]:
                yield (*first, *rest)


def _free_cells(
    run: _Run, pos: int, specs: Sequence[_CellSpec], budget: _Budget
) -> Iterator[tuple[tuple[int | float, ...], tuple[str, ...]]]:
    """Every reading of the run from ``pos`` as one cell per spec under the digit rules alone."""
    budget.tick()
    size = len(run.chars)
    if not specs:
        if pos == size:
            yield (), ()
        return
    if pos == size or size - pos < len(specs) or run.pieces_in(pos, size) > len(specs):
        return
    for end in range(pos + 1, run.reach[pos] + 1):
        text = run.chars[pos:end]
        value = _cell_value(text, specs[0])
        if value is None:
            continue
        for values, texts in _free_cells(run, end, specs[1:], budget):
            yield (value, *values), (text, *texts)


def _collect(search: Callable[[_Budget], Iterator[_T]]) -> tuple[list[_T], bool]:
    """Run a split search under the budget; (candidates, capped)."""
    found: list[_T] = []
    try:
        for candidate in search(_Budget(STEP_BUDGET)):
            found.append(candidate)
            if len(found) > MAX_CANDIDATES:
                return found, True
    except _SearchCapped:
        return found, True
    return found, False


def _show(split: Sequence[object]) -> str:
    return "|".join(str(v) for v in split)


def _show_all(splits: Sequence[Sequence[object]]) -> str:
    shown = "; ".join(_show(s) for s in splits[:SHOWN_CANDIDATES])
    more = len(splits) - SHOWN_CANDIDATES
    return shown + (f"; … ({len(splits)} in all)" if more > 0 else "")


# ---------------------------------------------------------------- rows with a sum


@dataclass
class _RowReading:
    """What one run says about one constrained row (or the section 四 line)."""

    run: str
    candidates: list[Split]
    # known: the candidates are all valid readings; otherwise the row gives no value by itself
    known: bool
    note: str = ""  # why the reading is weaker, when it is


def _read_sum_row(run: str, groups: Sequence[int], cell_count: int) -> _RowReading:
    pieces = _segments(run)
    if not pieces or not all(p.isdigit() for p in pieces):
        return _RowReading(run, [], False, f"run {run!r} is not a sequence of whole numbers")
    spaced = _Run.of(pieces)
    if len(spaced.chars) > cell_count * MAX_COUNT_CHARS:
        return _RowReading(run, [], False, f"run {run[:40]!r}… is too long for {cell_count} cells")
    found, capped = _collect(lambda b: _sum_groups(spaced, 0, groups, b, {}))
    if capped:
        return _RowReading(run, [], False, f"run {run!r} has too many possible splits (search capped)")
    if found:
        return _RowReading(run, found, True)
    if len(pieces) > 1:  # a space inside a cell is rare but possible: try the run without them
        joined = _Run.of(("".join(pieces),))
        found, capped = _collect(lambda b: _sum_groups(joined, 0, groups, b, {}))
        if found and not capped:
            return _RowReading(run, found, True, f"run {run!r} only adds up when its spaces are ignored")
    # No reading satisfies the sums: the filing (or the text) is inconsistent. The digit rules
    # alone may still pin cells down (seven digits are seven cells whatever they add up to).
    specs = [_PLAIN] * cell_count
    loose, capped = _collect(lambda b: _free_cells(spaced, 0, specs, b))
    note = f"no split of run {run!r} makes the totals equal the sums"
    if capped or not loose:
        return _RowReading(run, [], False, note)
    return _RowReading(run, [tuple(int(v) for v in c[0]) for c in loose], len(loose) == 1, note)


def _reconcile(rows: dict[str, _RowReading], layout: Template) -> tuple[dict[str, list[Split]], str]:
    """Per row, the splits that survive the column identities (and why, when they cannot be applied)."""
    options = {key: r.candidates for key, r in rows.items() if r.known and r.candidates}
    if all(len(c) == 1 for c in options.values()):
        return options, ""
    heads = ("new_received", "carried_over", "total", "carried_forward")
    outcomes = layout.outcome_rows
    check_balance = all(k in options for k in heads)
    check_outcomes = "total" in options and all(k in options for k in outcomes)
    if not (check_balance or check_outcomes):
        return options, "no column identity can be checked (rows missing or unreadable)"
    skipped = (
        ""
        if check_balance and check_outcomes
        else "the identity 新收 + 结转 = 总计 + 结转下年度 cannot be checked (rows missing or unreadable)"
        if check_outcomes
        else "the outcome rows cannot be checked against 总计 (rows missing or unreadable)"
    )
    free = [k for k in options if len(options[k]) > 1]
    combos = 1
    for k in free:
        combos *= len(options[k])
    if combos > MAX_COMBINATIONS:
        return options, f"too many combinations of row splits to reconcile ({combos})"
    survivors: dict[str, set[int]] = {k: set() for k in free}
    width = len(layout.application_columns)
    for choice in product(*(range(len(options[k])) for k in free)):
        picked = dict(zip(free, choice, strict=True))

        def row(key: str, picked: dict[str, int] = picked) -> Split:
            return options[key][picked.get(key, 0)]

        if check_balance and any(
            row("new_received")[c] + row("carried_over")[c] != row("total")[c] + row("carried_forward")[c]
            for c in range(width)
        ):
            continue
        if check_outcomes and any(sum(row(k)[c] for k in outcomes) != row("total")[c] for c in range(width)):
            continue
        for key, index in picked.items():
            survivors[key].add(index)
    if not any(survivors.values()):
        return options, "no combination of row splits makes every column reconcile"
    narrowed = dict(options)
    for key, kept in survivors.items():
        narrowed[key] = [options[key][i] for i in sorted(kept)]
    return narrowed, skipped


# ---------------------------------------------------------------- the three sections


def _assign(
    out: FlatTables,
    paths: Sequence[str],
    run: str,
    candidates: Sequence[Sequence[int | float]],
    *,
    why: str,
    shown: Sequence[Sequence[object]] | None = None,
) -> None:
    """Give each path the value every candidate agrees on; list the candidates for the rest."""
    for index, path in enumerate(paths):
        values = {c[index] for c in candidates}
        if len(values) == 1:
            out.cells[path] = values.pop()
            out.raw[path] = run
        else:
            out.uncertain[path] = f"{why}: {_show_all(shown or candidates)}"


def _read_disclosure(
    text: str, layout: Template, patterns: _Patterns, out: FlatTables, *, start: int, end: int
) -> None:
    located = _locate_rows(text, patterns.disclosure, start, end)
    previous_end = start
    for n, loc in enumerate(located):
        out.found_rows.append(loc.path)
        item = layout.disclosure_item(loc.path.split(".", 1)[1])
        stop = located[n + 1].start if n + 1 < len(located) else end
        header = text[previous_end : loc.end]
        unit = _HEADER_UNIT.search(header)
        in_yuan = bool(unit and unit.group(1) == "元")
        specs = [
            _CellSpec(
                signed=f.key in item.signed_fields,
                amount=f.key in item.amount_fields,
                amount_in_yuan=in_yuan and f.key in item.amount_fields,
            )
            for f in item.fields
        ]
        paths = [f"{loc.path}.{f.key}" for f in item.fields]
        run, _rest = _run_after(text, loc.end, stop)
        previous_end = loc.end + len(run)
        pieces = _segments(run)
        if not run or not pieces:
            for path in paths:
                out.uncertain[path] = f"no cell text after the label (found {text[loc.end : stop][:20]!r})"
            continue
        whole = _Run.of(pieces)
        if len(whole.chars) > len(specs) * MAX_AMOUNT_CHARS:
            for path in paths:
                out.uncertain[path] = f"run {run[:40]!r}… is too long for {len(specs)} cells"
            continue
        found, capped = _collect(partial(_free_cells, whole, 0, specs))
        if capped:
            for path in paths:
                out.uncertain[path] = f"run {run!r} has too many possible splits (search capped)"
            continue
        if not found:
            for path in paths:
                out.uncertain[path] = f"run {run!r} cannot be read as {len(specs)} cells"
            continue
        why = f"run {run!r} has {len(found)} valid splits into {len(specs)} cells and no sum decides"
        _assign(out, paths, run, [c[0] for c in found], why=why, shown=[c[1] for c in found])


def _read_applications(
    text: str, layout: Template, patterns: _Patterns, out: FlatTables, *, start: int, end: int
) -> int:
    """Section 三; returns where its last row's run ends (section 四 comes after)."""
    located = _locate_rows(text, patterns.applications, start, end)
    columns = [c.key for c in layout.application_columns]
    readings: dict[str, _RowReading] = {}
    blank: list[str] = []
    last_end = located[-1].end if located else start
    for n, loc in enumerate(located):
        out.found_rows.append(loc.path)
        key = loc.path.split(".", 1)[1]
        stop = located[n + 1].start if n + 1 < len(located) else end
        run, rest = _run_after(text, loc.end, stop)
        last_end = max(last_end, loc.end + len(run))
        if not run:
            if not rest.strip():
                blank.append(key)  # the label is followed directly by the next: a row of blanks
            else:
                for col in columns:
                    out.uncertain[f"{loc.path}.{col}"] = f"no cell text after the label (found {rest[:20]!r})"
            continue
        readings[key] = _read_sum_row(run, (len(columns) - 1,), len(columns))

    for key in blank:
        for col in columns:
            out.cells[f"applications.{key}.{col}"] = None
            out.raw[f"applications.{key}.{col}"] = ""

    surviving, reconcile_note = _reconcile(readings, layout)
    for key, reading in readings.items():
        paths = [f"applications.{key}.{col}" for col in columns]
        if not reading.candidates:
            for path in paths:
                out.uncertain[path] = reading.note or f"run {reading.run!r} cannot be split"
            continue
        candidates = surviving.get(key, reading.candidates)
        if reading.known:
            why = (
                f"run {reading.run!r} has {len(candidates)} splits with row total = sum of the six columns"
                + (f" and {reconcile_note}" if reconcile_note else " that every column identity allows")
            )
        else:
            why = f"{reading.note}; the digit rules alone allow"
        _assign(out, paths, reading.run, candidates, why=why)
        if reading.note:
            for path in paths:
                if path in out.cells:
                    out.uncertain.setdefault(path, reading.note)
    return last_end


def _read_reviews(text: str, layout: Template, patterns: _Patterns, out: FlatTables, *, start: int) -> None:
    head = patterns.review_start.search(text, start)
    if not head:
        return
    header = patterns.review_header.match(text, head.start())
    begin = header.end() if header else head.end()
    run, _rest = _run_after(text, begin, len(text))
    outcomes = [o.key for o in layout.review_outcomes]
    paths = [f"reviews.{g.key}.{o}" for g in layout.review_groups for o in outcomes]
    out.found_rows.extend(f"reviews.{g.key}" for g in layout.review_groups)
    if not run:
        for path in paths:
            out.uncertain[path] = "no cell text after the section 四 header"
        return
    groups = [len(outcomes) - 1] * len(layout.review_groups)
    reading = _read_sum_row(run, groups, len(paths))
    if not reading.candidates:
        for path in paths:
            out.uncertain[path] = reading.note or f"run {run!r} cannot be split"
        return
    if reading.known:
        why = f"run {run!r} has {len(reading.candidates)} splits with every group total = sum of its outcomes"
    else:
        why = f"{reading.note}; the digit rules alone allow"
    _assign(out, paths, run, reading.candidates, why=why)
    if reading.note:
        for path in paths:
            if path in out.cells:
                out.uncertain.setdefault(path, reading.note)


# ---------------------------------------------------------------- entry points


def detect_flat_template(text: str) -> TemplateId | None:
    """The layout whose marker labels (``Template.markers``) occur most often; None when undecided."""
    squeezed = re.sub(r"\s+", "", normalise_text(text))
    counts = {
        tid: sum(1 for m in layout.markers if re.sub(r"\s+", "", normalise_text(m)) in squeezed)
        for tid, layout in TEMPLATES.items()
    }
    best = max(counts.values())
    winners = [tid for tid, n in counts.items() if n == best]
    return winners[0] if best > 0 and len(winners) == 1 else None


def read_flat_tables(text: str, layout: Template) -> FlatTables:
    """Recover the cells of sections 二, 三 and 四 from run-together ``text``.

    ``text`` is the whole document text (paragraphs joined by newlines); ``layout`` the template
    the caller detected (see :func:`detect_flat_template`)."""
    norm = normalise_text(text)
    patterns = _patterns(layout)
    out = FlatTables()

    # Section 二 starts at its first caption (or heading); section 三 at its heading or first row,
    # searched from there so that the overview's wording cannot pass for the table.
    disclosure = patterns.disclosure_start.search(norm)
    disclosure_start = disclosure.start() if disclosure else 0
    first_row = patterns.applications[0].pattern.search(norm, disclosure_start)
    heading = patterns.applications_heading.search(norm, disclosure_start)
    candidates = [m.start() for m in (first_row, heading) if m]
    applications_start = min(candidates) if candidates else len(norm)

    _read_disclosure(norm, layout, patterns, out, start=disclosure_start, end=applications_start)

    if candidates:
        review_head = patterns.review_start.search(norm, applications_start)
        applications_end = review_head.start() if review_head else len(norm)
        after = _read_applications(
            norm, layout, patterns, out, start=applications_start, end=applications_end
        )
        _read_reviews(norm, layout, patterns, out, start=after)
    return out
