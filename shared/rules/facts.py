"""What every rule sees: the record with omitted totals imputed, and the context.

Blank handling (domain.md, implemented exactly here and nowhere else):

1. A wholly blank table (section 二, 三 or 四) is listed in ``blank_tables``;
   only ``blank_table`` speaks about it.
2. A blank *total* cell — the 总计 column, the (七)总计 row, a 复议/诉讼 总计 —
   whose components are not all zero is imputed as the sum of its components
   (``total_omitted`` reports it) in a copy of the record; the caller's record
   is never mutated.
3. Every other blank counts as 0 (:meth:`Facts.value`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cache
from typing import Any, TypeVar

from shared.record import SECTIONS, CellTable, Number, Report
from shared.rules.level import infer_filer_level
from shared.rules.thresholds import DEFAULT_THRESHOLDS, FilerLevel, Thresholds
from shared.templates import APPLICATION_COLUMNS, REVIEW_OUTCOMES, TEMPLATES, Template

APPLICANT_COLUMNS: tuple[str, ...] = tuple(c.key for c in APPLICATION_COLUMNS if c.key != "total")
REVIEW_PARTS: tuple[str, ...] = tuple(o.key for o in REVIEW_OUTCOMES if o.key != "total")
# rows of section 三 that are not outcomes
FRAME_ROWS: tuple[str, ...] = ("new_received", "carried_over", "total", "carried_forward")

T = TypeVar("T")


@cache
def row_paths(section: str, row: str, cols: tuple[str, ...]) -> tuple[str, ...]:
    """Dotted paths of one row's cells (cached: rules ask for the same rows on every report)."""
    return tuple(f"{section}.{row}.{col}" for col in cols)


@cache
def column_paths(section: str, rows: tuple[str, ...], col: str) -> tuple[str, ...]:
    return tuple(f"{section}.{row}.{col}" for row in rows)


@dataclass(frozen=True, slots=True)
class CheckContext:
    """Everything a rule may know besides the record. Nothing here is read from the world."""

    today: date | None = None
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    # known from the site registry or the store; when None it is inferred from the agency name
    filer_level: FilerLevel | None = None


@dataclass(frozen=True, slots=True)
class ImputedTotal:
    path: str
    value: Number
    components: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Facts:
    report: Report  # a copy, with omitted totals imputed
    original: Report  # the caller's record, untouched
    layout: Template | None
    context: CheckContext
    blank_tables: frozenset[str]
    imputed: dict[str, ImputedTotal] = field(default_factory=dict)
    # the layout's rows (or the record's own keys when the layout is unknown), computed once
    application_rows: tuple[str, ...] = ()
    outcome_rows: tuple[str, ...] = ()
    review_groups: tuple[str, ...] = ()
    # what rules compute once and share (split readings): name → value
    memo: dict[str, Any] = field(default_factory=dict)

    def once(self, name: str, compute: Callable[[Facts], T]) -> T:
        if name not in self.memo:
            self.memo[name] = compute(self)
        result: T = self.memo[name]
        return result

    @property
    def thresholds(self) -> Thresholds:
        return self.context.thresholds

    @property
    def filer_level(self) -> FilerLevel | None:
        return self.context.filer_level or infer_filer_level(self.report.agency)

    def value(self, path: str) -> Number:
        """The cell as the arithmetic rules read it: imputed if omitted, blank as 0."""
        section, row, col = path.split(".")
        found = getattr(self.report, section).get(row, {}).get(col)
        return 0 if found is None else found

    def uncertain_reason(self, path: str) -> str | None:
        """Why the parser doubted this cell (or its row, or its table), if it did."""
        uncertain = self.report.confidence.uncertain_cells
        if not uncertain:
            return None
        probe = path
        while True:
            if probe in uncertain:
                return uncertain[probe]
            if "." not in probe:
                return None
            probe = probe.rsplit(".", 1)[0]


def infer_layout(report: Report) -> Template | None:
    """The record's template, or the one its row keys belong to when the parser left it unset."""
    if report.layout is not None:
        return report.layout
    rows = set(report.applications)
    if "other_handling" in rows:
        return TEMPLATES["2019"]
    if rows & {"other_no_correction", "other_no_fee", "other_misc"}:
        return TEMPLATES["2021"]
    items = set(report.active_disclosure)
    if items & {"other_services", "procurement"}:
        return TEMPLATES["2019"]
    return None


def outcome_rows(report: Report, layout: Template | None) -> tuple[str, ...]:
    if layout is not None:
        return layout.outcome_rows
    return tuple(r for r in report.applications if r not in FRAME_ROWS)


def table_is_blank(table: CellTable) -> bool:
    return all(value is None for cols in table.values() for value in cols.values())


def _copy_table(table: CellTable) -> CellTable:
    return {row: dict(cols) for row, cols in table.items()}


def _impute(
    table: CellTable,
    section: str,
    row: str,
    col: str,
    *,
    part_rows: tuple[str, ...],
    part_cols: tuple[str, ...],
    out: dict[str, ImputedTotal],
) -> bool:
    """Fill table[row][col] with the sum of its parts (every ``part_rows`` × ``part_cols`` cell)
    when it is blank and they are not all zero."""
    if row not in table or table[row].get(col, 0) is not None:
        return False
    parts = [(r, c) for r in part_rows for c in part_cols]
    nonzero = [v for v in (table.get(r, {}).get(c) for r, c in parts) if v]
    if not nonzero:
        return False
    total = sum(nonzero)
    table[row][col] = total
    path = f"{section}.{row}.{col}"
    out[path] = ImputedTotal(path, total, tuple(f"{section}.{r}.{c}" for r, c in parts))
    return True


def _has_blank_total(report: Report, blank_tables: frozenset[str]) -> bool:
    apps = report.applications
    in_apps = "applications" not in blank_tables and (
        any(cols.get("total", 0) is None for cols in apps.values())
        or any(v is None for v in apps.get("total", {}).values())
    )
    in_reviews = "reviews" not in blank_tables and any(
        cols.get("total", 0) is None for cols in report.reviews.values()
    )
    return in_apps or in_reviews


def impute_omitted_totals(
    report: Report, layout: Template | None, blank_tables: frozenset[str] = frozenset()
) -> tuple[Report, dict[str, ImputedTotal]]:
    """A copy of ``report`` whose blank totals with non-zero parts hold the sum of the parts.

    A wholly blank table has no non-zero parts; it is skipped outright."""
    if not _has_blank_total(report, blank_tables):
        return report, {}  # the common case: every total printed, nothing to copy
    applications = _copy_table(report.applications)
    reviews = _copy_table(report.reviews)
    imputed: dict[str, ImputedTotal] = {}
    outcomes = outcome_rows(report, layout)
    apps = "applications"

    # 1. the 总计 column of every row but (七): sum of the six applicant columns
    for row in applications:
        if row != "total":
            _impute(
                applications, apps, row, "total", part_rows=(row,), part_cols=APPLICANT_COLUMNS, out=imputed
            )
    # 2. the (七)总计 row, per applicant column: sum of the outcome rows
    for col in APPLICANT_COLUMNS:
        _impute(applications, apps, "total", col, part_rows=outcomes, part_cols=(col,), out=imputed)
    # 3. the corner (七)总计·总计: its row if that is not all zero, else its column
    if not _impute(
        applications, apps, "total", "total", part_rows=("total",), part_cols=APPLICANT_COLUMNS, out=imputed
    ):
        _impute(applications, apps, "total", "total", part_rows=outcomes, part_cols=("total",), out=imputed)
    # 4. 复议/诉讼 总计: sum of the four outcomes of its group
    for group in reviews:
        _impute(reviews, "reviews", group, "total", part_rows=(group,), part_cols=REVIEW_PARTS, out=imputed)

    if not imputed:
        return report, imputed
    return report.model_copy(update={"applications": applications, "reviews": reviews}), imputed


def prepare_facts(report: Report, context: CheckContext) -> Facts:
    layout = infer_layout(report)
    blank = frozenset(section for section in SECTIONS if table_is_blank(getattr(report, section)))
    imputed_report, imputed = impute_omitted_totals(report, layout, blank)
    if layout is not None:
        application_rows = tuple(r.key for r in layout.application_rows)
        review_groups = tuple(g.key for g in layout.review_groups)
    else:
        application_rows, review_groups = tuple(report.applications), tuple(report.reviews)
    return Facts(
        imputed_report,
        report,
        layout,
        context,
        blank,
        imputed,
        application_rows=application_rows,
        outcome_rows=outcome_rows(report, layout),
        review_groups=review_groups,
    )


def with_today(context: CheckContext | None, today: date | None) -> CheckContext:
    if context is None:
        return CheckContext(today=today)
    if today is not None and context.today is None:
        return replace(context, today=today)
    return context
