"""Rules across reports (domain.md, "Across reports"): pure functions over records.

The store decides *which* records to compare (same agency, neighbouring years,
two revisions of one source) and calls these; nothing here touches a database
or a clock. Each rule is one row of :data:`CROSS_RULES` plus one small function.

- :func:`check_against_previous` — ``carry_over_mismatch``, ``in_force_rollforward``,
  ``copied_report``, ``cloned_tables``: this year's report against the same
  agency's report for the year before.
- :func:`check_revision` — ``report_changed``: two revisions of one source.
- :func:`check_missing_report` — ``missing_report``: a tracked agency with no
  report for a year whose deadline (by level) plus grace has passed.

Granularity, chosen so one anomaly is one finding (and so one event):
``carry_over_mismatch`` compares column by column and reports every
mismatching column in one finding per report; ``in_force_rollforward`` gives
one finding per instrument (规章, 行政规范性文件).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from shared.record import SECTIONS, CellValue, Finding, Report, Severity
from shared.rules.labels import count
from shared.rules.thresholds import DEFAULT_THRESHOLDS, FilerLevel, Thresholds
from shared.templates import APPLICATION_COLUMNS

# ------------------------------------------------------------------ the table


@dataclass(frozen=True, slots=True)
class CrossRule:
    id: str
    severity: Severity
    title: str
    scope: str = "cross"

    def describe(self) -> dict[str, str]:
        return {"id": self.id, "severity": self.severity, "scope": self.scope, "title": self.title}


CROSS_RULES: tuple[CrossRule, ...] = (
    CrossRule("carry_over_mismatch", "warning", "上年结转与上年报告的结转下年度继续办理不一致"),
    CrossRule("in_force_rollforward", "warning", "现行有效件数≠上年现行有效件数+本年制发−本年废止"),
    CrossRule("copied_report", "warning", "正文与上年报告雷同超过50%"),
    CrossRule("cloned_tables", "warning", "各表与上年报告完全相同而数据非零"),
    CrossRule("report_changed", "info", "已发布的报告内容在首次发现后被修改"),
    CrossRule("missing_report", "error", "截止日期后仍未找到该机关该年度的报告"),
)
RULES_BY_ID: dict[str, CrossRule] = {r.id: r for r in CROSS_RULES}
# the rules check_against_previous owns: re-evaluating a pair replaces exactly these findings
PREVIOUS_YEAR_RULES: frozenset[str] = frozenset(
    {"carry_over_mismatch", "in_force_rollforward", "copied_report", "cloned_tables"}
)

# copied_report: the share of this year's narrative found in last year's is compared with
# thresholds.copied_similarity (宿迁's indicator uses 50%)
SHINGLE_CHARS = 8
MIN_NARRATIVE_CHARS = 200
# report_changed: how many changed cells a finding lists before summarising
MAX_LISTED_CHANGES = 200


def _finding(rule_id: str, message: str, **kw: Any) -> Finding:
    return Finding(rule=rule_id, severity=RULES_BY_ID[rule_id].severity, message=message, **kw)


# ------------------------------------------------------------------ across years


def check_against_previous(
    current: Report, previous: Report, *, thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> list[Finding]:
    """Findings of ``current`` that need the same agency's report for the year before.

    Returns nothing when ``previous`` is not exactly the year before."""
    if current.year is None or previous.year != current.year - 1:
        return []
    findings: list[Finding] = []
    for check in _PREVIOUS_YEAR_CHECKS:
        findings.extend(check(current, previous, thresholds))
    return findings


def _blank_row(row: dict[str, CellValue] | None) -> bool:
    return not row or all(v is None for v in row.values())


def _column_values(row: dict[str, CellValue]) -> dict[str, int | float]:
    """Blank counts as 0, except a blank 总计 which is the sum of its components (domain.md).

    Values stay as they are (no ``float()``): an int too large for a float would overflow,
    and ints and floats compare exactly as they are."""
    values: dict[str, int | float] = {c.key: row.get(c.key) or 0 for c in APPLICATION_COLUMNS}
    if row.get("total") is None:
        values["total"] = sum(v for k, v in values.items() if k != "total")
    return values


def _fmt(value: float) -> str:
    return count(value)


def check_carry_over(current: Report, previous: Report, _thresholds: Thresholds) -> list[Finding]:
    this_row = current.applications.get("carried_over")
    last_row = previous.applications.get("carried_forward")
    if _blank_row(this_row) or _blank_row(last_row):
        return []
    assert this_row is not None and last_row is not None
    now, then = _column_values(this_row), _column_values(last_row)
    labels = {c.key: c.official for c in APPLICATION_COLUMNS}
    bad = [c.key for c in APPLICATION_COLUMNS if now[c.key] != then[c.key]]
    if not bad:
        return []
    parts = "；".join(f"{labels[k]} 本年上年结转{_fmt(now[k])}、上年结转下年度{_fmt(then[k])}" for k in bad)
    first = bad[0]
    return [
        _finding(
            "carry_over_mismatch",
            f"{current.year}年报告的上年结转与{previous.year}年报告的结转下年度继续办理不一致：{parts}",
            cells=[f"applications.carried_over.{k}" for k in bad],
            expected=then[first] if len(bad) == 1 else None,
            actual=now[first] if len(bad) == 1 else None,
        )
    ]


ROLLFORWARD_ITEMS: tuple[tuple[str, str], ...] = (
    ("regulations", "规章"),
    ("normative_documents", "行政规范性文件"),
)


def check_in_force_rollforward(current: Report, previous: Report, _thresholds: Thresholds) -> list[Finding]:
    if current.template != "2021" or previous.template != "2021":
        return []
    findings: list[Finding] = []
    for item, label in ROLLFORWARD_ITEMS:
        now, then = current.active_disclosure.get(item, {}), previous.active_disclosure.get(item, {})
        in_force, made, repealed = now.get("in_force"), now.get("made"), now.get("repealed")
        before = then.get("in_force")
        if in_force is None or before is None or (made is None and repealed is None):
            continue
        expected = before + (made or 0) - (repealed or 0)
        if expected == in_force:
            continue
        findings.append(
            _finding(
                "in_force_rollforward",
                f"{label}现行有效件数{_fmt(in_force)}，应为上年现行有效{_fmt(before)}"
                f"+本年制发{_fmt(made or 0)}−本年废止{_fmt(repealed or 0)}={_fmt(expected)}",
                cells=[f"active_disclosure.{item}.in_force"],
                expected=expected,
                actual=in_force,
            )
        )
    return findings


_DIGITS = re.compile(r"\d+")
_SKIP_CHARS = re.compile(r"[\s\W_]+", re.UNICODE)


def _normalise_text(text: str) -> str:
    # digits are masked: "2020年" vs "2021年" must not make a copied sentence look new
    text = unicodedata.normalize("NFKC", text)
    return _DIGITS.sub("#", _SKIP_CHARS.sub("", text))


def _shingles(text: str) -> set[str]:
    return {text[i : i + SHINGLE_CHARS] for i in range(max(0, len(text) - SHINGLE_CHARS + 1))}


def narrative_overlap(current: str, previous: str) -> float | None:
    """Share of ``current``'s character 8-grams that also occur in ``previous`` (0..1).

    ``None`` when either text is too short to judge."""
    a, b = _normalise_text(current), _normalise_text(previous)
    if len(a) < MIN_NARRATIVE_CHARS or len(b) < MIN_NARRATIVE_CHARS:
        return None
    mine = _shingles(a)
    return len(mine & _shingles(b)) / len(mine) if mine else None


def check_copied_report(current: Report, previous: Report, thresholds: Thresholds) -> list[Finding]:
    share = narrative_overlap(current.evidence.narrative, previous.evidence.narrative)
    limit = thresholds.copied_similarity
    if share is None or share <= limit:
        return []
    return [
        _finding(
            "copied_report",
            f"{current.year}年报告正文与{previous.year}年报告雷同{share:.0%}（阈值{limit:.0%}）",
            expected=limit,
            actual=round(share, 3),
        )
    ]


def _tables(report: Report) -> dict[str, CellValue]:
    return dict(report.iter_cells())


def check_cloned_tables(current: Report, previous: Report, _thresholds: Thresholds) -> list[Finding]:
    if current.template is None or current.template != previous.template:
        return []
    mine, theirs = _tables(current), _tables(previous)
    if not mine or mine != theirs:
        return []
    if not any(v for v in mine.values()):
        return []  # all blank or all zero: blank_table's business, or a genuinely idle body
    return [
        _finding(
            "cloned_tables",
            f"{current.year}年报告的{len(SECTIONS)}张表与{previous.year}年报告逐格相同，而数据不为零",
        )
    ]


_PREVIOUS_YEAR_CHECKS: tuple[Callable[[Report, Report, Thresholds], list[Finding]], ...] = (
    check_carry_over,
    check_in_force_rollforward,
    check_copied_report,
    check_cloned_tables,
)

# ------------------------------------------------------------------ across revisions


@dataclass(frozen=True, slots=True)
class CellChange:
    cell: str  # a dotted cell path, or a top-level field name (agency, year, title, published_on, narrative)
    before: Any
    after: Any

    def as_dict(self) -> dict[str, Any]:
        return {"cell": self.cell, "before": self.before, "after": self.after}


# top-level fields whose change is a change of the filing
IDENTITY_FIELDS: tuple[str, ...] = ("agency", "year", "template", "title", "published_on")


def diff_reports(before: Report, after: Report) -> list[CellChange]:
    """Every cell (and identity field) whose value differs between two revisions, in record order."""
    changes = [
        CellChange(name, getattr(before, name), getattr(after, name))
        for name in IDENTITY_FIELDS
        if getattr(before, name) != getattr(after, name)
    ]
    old, new = _tables(before), _tables(after)
    for path in [*old, *(p for p in new if p not in old)]:
        if old.get(path) != new.get(path):
            changes.append(CellChange(path, old.get(path), new.get(path)))
    if _normalise_text(before.evidence.narrative) != _normalise_text(after.evidence.narrative):
        changes.append(CellChange("narrative", None, None))
    return changes


def check_revision(before: Report, after: Report, *, revision: int) -> list[Finding]:
    """``report_changed`` when revision ``revision`` of a source differs from the one before."""
    changes = diff_reports(before, after)
    if not changes:
        return []
    cells = [c.cell for c in changes if "." in c.cell]
    shown = "，".join(
        f"{c.cell} {c.before if c.before is not None else '空'}→{c.after if c.after is not None else '空'}"
        for c in changes[:5]
        if c.cell != "narrative"
    )
    more = f"等{len(changes)}处" if len(changes) > 5 else ""
    text = "；正文有改动" if any(c.cell == "narrative" for c in changes) else ""
    only = changes[0] if len(changes) == 1 and "." in changes[0].cell else None
    return [
        _finding(
            "report_changed",
            f"报告发布后内容被修改（第{revision}版）：{shown or '正文'}{more}{text}",
            cells=cells[:MAX_LISTED_CHANGES],
            expected=only.before if only else None,
            actual=only.after if only else None,
        )
    ]


# ------------------------------------------------------------------ missing reports


def report_deadline(level: str | None, year: int, *, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> date:
    """The last day to publish the report covering ``year`` (Art. 49, by the filer's level)."""
    return thresholds.deadline(FilerLevel(level) if level else None, year)


def due_years(
    level: str | None,
    *,
    first_year: int,
    today: date,
    grace_days: int,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> list[int]:
    """Years from ``first_year`` whose deadline plus grace is before ``today``."""
    years = []
    year = first_year
    while report_deadline(level, year, thresholds=thresholds) + timedelta(days=grace_days) < today:
        years.append(year)
        year += 1
    return years


def check_missing_report(
    agency: str,
    level: str | None,
    year: int,
    *,
    today: date,
    grace_days: int,
    have_report: bool,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> Finding | None:
    """``missing_report`` for a tracked agency and year, once the deadline plus grace has passed."""
    deadline = report_deadline(level, year, thresholds=thresholds)
    if have_report or deadline + timedelta(days=grace_days) >= today:
        return None
    return _finding(
        "missing_report",
        f"{agency}的{year}年报告在截止日期{deadline.isoformat()}（宽限{grace_days}天）后仍未找到",
        expected=deadline.isoformat(),
    )
