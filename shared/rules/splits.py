"""Split cells: a row that fails its sum but would pass if two adjacent digits were one number.

That is the signature of extraction damage (a ``12`` read as ``1 | 2``, the
cells after it shifted), not of a filing error (KIROGOVCOMPARE's
``table3Diagnostics`` flags it the same way). ``split_cell`` says so as info;
the engine uses :func:`split_readings` to lower the row's arithmetic finding
when the parser was unsure of those cells or of the whole report.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from shared.rules.arithmetic import row_failures
from shared.rules.facts import APPLICANT_COLUMNS, REVIEW_PARTS, Facts, row_paths
from shared.rules.labels import REVIEW_GROUP_NAMES, ROW_NAMES, cell_name
from shared.rules.registry import Violation, rule

ALL_APPLICATION_COLUMNS: tuple[str, ...] = (*APPLICANT_COLUMNS, "total")
ALL_REVIEW_COLUMNS: tuple[str, ...] = (*REVIEW_PARTS, "total")


@dataclass(frozen=True, slots=True)
class SplitReading:
    row: str  # dotted row prefix: applications.granted, reviews.review
    left: str  # the two cells that may be one number
    right: str
    merged: int


COLUMNS_BY_SECTION: dict[str, tuple[str, ...]] = {
    "applications": ALL_APPLICATION_COLUMNS,
    "reviews": ALL_REVIEW_COLUMNS,
}


def _row_name(section: str, row: str) -> str:
    return f"{ROW_NAMES.get(row, row)}行" if section == "applications" else REVIEW_GROUP_NAMES.get(row, row)


def _split_of(facts: Facts, section: str, row: str, columns: tuple[str, ...]) -> tuple[int, int] | None:
    """The first adjacent pair whose concatenation makes the row add up, as (index, merged value)."""
    imputed_row = getattr(facts.report, section).get(row, {})
    values = [imputed_row.get(c) or 0 for c in columns]
    printed_row = getattr(facts.original, section).get(row, {})
    printed = [printed_row.get(c) for c in columns]
    limit = facts.thresholds.split_max_part
    for i in range(len(columns) - 1):
        left, right = printed[i], printed[i + 1]
        if not (isinstance(left, int) and isinstance(right, int)):
            continue
        if not (1 <= left <= limit and 0 <= right <= limit):
            continue  # a number never starts with 0, and the halves are single digits
        merged = int(f"{left}{right}")
        joined = [*values[:i], merged, *values[i + 2 :]]
        if abs(sum(joined[:-1]) - joined[-1]) <= facts.thresholds.tolerance:
            return i, merged
    return None


def split_readings(facts: Facts) -> dict[str, SplitReading]:
    """Every failing row that one merge of adjacent digits would repair, by row prefix."""
    return facts.once("split_readings", _find_split_readings)


def _find_split_readings(facts: Facts) -> dict[str, SplitReading]:
    found: dict[str, SplitReading] = {}
    for section, row in row_failures(facts):
        columns = COLUMNS_BY_SECTION[section]
        split = _split_of(facts, section, row, columns)
        if split is not None:
            i, merged = split
            cells = row_paths(section, row, columns)
            found[f"{section}.{row}"] = SplitReading(f"{section}.{row}", cells[i], cells[i + 1], merged)
    return found


@rule("split_cell", "info", "某行合计不符，但相邻两格若为一个数即相符：疑为提取时拆分了单元格")
def split_cell(facts: Facts) -> Iterator[Violation]:
    for prefix, reading in split_readings(facts).items():
        left, right = facts.original.cell(reading.left), facts.original.cell(reading.right)
        yield Violation(
            f"{_row_name(*prefix.split('.'))}：{cell_name(reading.left)}“{left}”与{cell_name(reading.right)}“{right}”若实为一个数"
            f"{reading.merged}，该行合计即相符，可能是提取时拆分了单元格，而非填报错误",
            (reading.left, reading.right),
            expected=reading.merged,
            actual=f"{left}|{right}",
        )
