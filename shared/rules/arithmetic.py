"""The form's arithmetic: section 三's column identity, outcome sum and row sums; section 四's groups.

Values are the imputed record's (omitted totals filled in, other blanks 0);
a wholly blank table is skipped (``blank_table`` speaks for it). Every finding
lists the cells of the identity it checked, the total cell first. The sums read
the row dicts directly: this runs on every report, and messages are only built
for what fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

from shared.record import CellTable, Number
from shared.rules.facts import APPLICANT_COLUMNS, REVIEW_PARTS, Facts, column_paths, row_paths
from shared.rules.labels import COLUMN_NAMES, REVIEW_GROUP_NAMES, REVIEW_OUTCOME_NAMES, ROW_NAMES, cell_name
from shared.rules.labels import count as n
from shared.rules.registry import Violation, rule
from shared.templates import TEMPLATES

ALL_COLUMNS: tuple[str, ...] = (*APPLICANT_COLUMNS, "total")
# new + carried over = total + carried forward, in this order
IDENTITY_ROWS: tuple[str, ...] = ("new_received", "carried_over", "total", "carried_forward")
_NO_ROW: dict[str, Number | None] = {}


def number(table: CellTable, row: str, col: str) -> Number:
    return table.get(row, _NO_ROW).get(col) or 0


def _find_row_failures(facts: Facts) -> dict[tuple[str, str], tuple[Number, Number]]:
    failures: dict[tuple[str, str], tuple[Number, Number]] = {}
    tolerance = facts.thresholds.tolerance
    for section, rows, parts in (
        ("applications", facts.application_rows, APPLICANT_COLUMNS),
        ("reviews", facts.review_groups, REVIEW_PARTS),
    ):
        if section in facts.blank_tables:
            continue
        table = getattr(facts.report, section)
        for row in rows:
            cols = table.get(row, _NO_ROW)
            # map/filter run in C: this runs over every row of every report (filter drops blanks and 0s)
            summed: Number = sum(filter(None, map(cols.get, parts)))
            total = cols.get("total") or 0
            if abs(summed - total) > tolerance:
                failures[(section, row)] = (summed, total)
    return failures


def row_failures(facts: Facts) -> dict[tuple[str, str], tuple[Number, Number]]:
    """(section, row) → (sum of parts, total) for each row of 三 and group of 四 that does not add up.

    Computed once per report: ``t3_row_sum``, ``t4_sum`` and ``split_cell`` all start from it."""
    return facts.once("row_failures", _find_row_failures)


def _imputed_note(facts: Facts, paths: tuple[str, ...]) -> str:
    notes = [
        f"{cell_name(p)}空白，按分项之和{n(facts.imputed[p].value)}件计" for p in paths if p in facts.imputed
    ]
    return f"（{'；'.join(notes)}）" if notes else ""


@rule(
    "t3_identity",
    "error",
    "申请情况表各列：本年新收+上年结转≠办理结果总计+结转下年度",
    extraction_sensitive=True,
)
def t3_identity(facts: Facts) -> Iterator[Violation]:
    if "applications" in facts.blank_tables:
        return
    apps, tolerance = facts.report.applications, facts.thresholds.tolerance
    for col in ALL_COLUMNS:
        new, carried, total, forward = (number(apps, row, col) for row in IDENTITY_ROWS)
        if abs(new + carried - total - forward) <= tolerance:
            continue
        paths = column_paths("applications", IDENTITY_ROWS, col)
        yield Violation(
            f"{COLUMN_NAMES[col]}列：新收{n(new)}件+上年结转{n(carried)}件={n(new + carried)}件，"
            f"而办理结果总计{n(total)}件+结转下年度{n(forward)}件={n(total + forward)}件"
            + _imputed_note(facts, paths),
            (paths[2], paths[3], paths[0], paths[1]),
            expected=new + carried,
            actual=total + forward,
        )


@rule("t3_result_sum", "error", "申请情况表各列：（七）总计≠各项办理结果之和", extraction_sensitive=True)
def t3_result_sum(facts: Facts) -> Iterator[Violation]:
    if "applications" in facts.blank_tables:
        return
    apps, rows, tolerance = facts.report.applications, facts.outcome_rows, facts.thresholds.tolerance
    sums: list[Number] = [0] * len(ALL_COLUMNS)
    for row in rows:  # one pass over the outcome rows, adding whole rows (blanks as 0)
        cols = apps.get(row, _NO_ROW)
        sums = [s + (v or 0) for s, v in zip(sums, map(cols.get, ALL_COLUMNS), strict=True)]
    for col, summed in zip(ALL_COLUMNS, sums, strict=True):
        total = number(apps, "total", col)
        if abs(summed - total) <= tolerance:
            continue
        parts = column_paths("applications", rows, col)
        nonzero = [f"{ROW_NAMES.get(r, r)}{n(number(apps, r, col))}件" for r in rows if number(apps, r, col)]
        detail = f"（其中{'、'.join(nonzero)}）" if nonzero else ""
        total_path = f"applications.total.{col}"
        yield Violation(
            f"{COLUMN_NAMES[col]}列：各项办理结果合计{n(summed)}件{detail}，而（七）总计为{n(total)}件"
            + _imputed_note(facts, (total_path, *parts)),
            (total_path, *parts),
            expected=summed,
            actual=total,
        )


@rule("t3_row_sum", "error", "申请情况表各行：总计列≠六类申请人之和", extraction_sensitive=True)
def t3_row_sum(facts: Facts) -> Iterator[Violation]:
    apps = facts.report.applications
    for (section, row), (summed, total) in row_failures(facts).items():
        if section != "applications":
            continue
        parts = row_paths("applications", row, APPLICANT_COLUMNS)
        shown = "+".join(n(number(apps, row, c)) for c in APPLICANT_COLUMNS)
        total_path = f"applications.{row}.total"
        yield Violation(
            f"{ROW_NAMES.get(row, row)}行：六类申请人{shown}={n(summed)}件，而总计列为{n(total)}件"
            + _imputed_note(facts, (total_path,)),
            (total_path, *parts),
            expected=summed,
            actual=total,
        )


@rule("t4_sum", "error", "复议诉讼表各组：维持+纠正+其他+尚未审结≠总计", extraction_sensitive=True)
def t4_sum(facts: Facts) -> Iterator[Violation]:
    reviews = facts.report.reviews
    for (section, group), (summed, total) in row_failures(facts).items():
        if section != "reviews":
            continue
        shown = "+".join(f"{REVIEW_OUTCOME_NAMES[o]}{n(number(reviews, group, o))}" for o in REVIEW_PARTS)
        total_path = f"reviews.{group}.total"
        yield Violation(
            f"{REVIEW_GROUP_NAMES.get(group, group)}：{shown}={n(summed)}件，而总计为{n(total)}件"
            + _imputed_note(facts, (total_path,)),
            (total_path, *row_paths("reviews", group, REVIEW_PARTS)),
            expected=summed,
            actual=total,
        )


def _signed_fields(facts: Facts) -> frozenset[tuple[str, str]]:
    layouts = [facts.layout] if facts.layout is not None else list(TEMPLATES.values())
    return frozenset(
        (item.key, key) for layout in layouts for item in layout.disclosure for key in item.signed_fields
    )


@rule("negative_value", "error", "计数为负数（只有本年增/减可以为负）", extraction_sensitive=True)
def negative_value(facts: Facts) -> Iterator[Violation]:
    signed = _signed_fields(facts)
    for section in ("active_disclosure", "applications", "reviews"):
        table: CellTable = getattr(facts.original, section)
        every_value = chain.from_iterable(cols.values() for cols in table.values())
        if min(filter(None, every_value), default=0) >= 0:
            continue  # the usual table: nothing below zero (one pass in C; blanks and 0s filtered out)
        allowed = signed if section == "active_disclosure" else frozenset()
        for row, cols in table.items():
            for col, value in cols.items():
                if value is not None and value < 0 and (row, col) not in allowed:
                    path = f"{section}.{row}.{col}"
                    yield Violation(f"{cell_name(path)}为{n(value)}，计数不能小于0", (path,), actual=value)
