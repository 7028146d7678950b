"""Run the single-report rules over one record.

Order of work: blank tables found and omitted totals imputed once
(:func:`prepare_facts`); each rule of the table run in order; each violation
stamped with its rule's id and severity, then *lowered* when it rests on cells
the parser was unsure of — extraction damage is not a filing error:

- on cells the parser was sure of: as declared;
- on a cell it doubted (``confidence.uncertain_cells``: the cell, its row or its
  table): one step lower (error → warning, warning → info), the message says
  which cells and why;
- on a doubted cell, when the row would also add up with two digits joined
  (``split_cell``) or the report's confidence is below
  ``thresholds.low_confidence``: info;
- on sure cells of a row that adds up with two digits joined, in a
  low-confidence report: one step lower.

A wholly blank table yields ``blank_table`` and nothing else about that table.
"""

from __future__ import annotations

from datetime import date

from shared.record import Finding, Report, Severity
from shared.rules.facts import CheckContext, Facts, prepare_facts, with_today
from shared.rules.labels import cell_name
from shared.rules.registry import RULES, Rule, Violation
from shared.rules.splits import SplitReading, split_readings

LOWER: dict[Severity, Severity] = {"error": "warning", "warning": "info", "info": "info"}


def _in_blank_table(facts: Facts, cells: tuple[str, ...]) -> bool:
    return bool(cells) and all(c.split(".", 1)[0] in facts.blank_tables for c in cells)


def _split_row(cells: tuple[str, ...], splits: dict[str, SplitReading]) -> SplitReading | None:
    rows = {c.rsplit(".", 1)[0] for c in cells if c.count(".") == 2}
    if len(rows) == 1:
        return splits.get(rows.pop())
    return None


def _doubts_in_words(doubts: dict[str, str]) -> str:
    """``甲、乙解析不确定（why）``: the doubted cells, grouped by the parser's reason."""
    by_reason: dict[str, list[str]] = {}
    for cell, reason in doubts.items():
        by_reason.setdefault(reason, []).append(cell_name(cell))
    parts = []
    for reason, cells in list(by_reason.items())[:3]:
        shown = "、".join(cells[:3]) + ("等" if len(cells) > 3 else "")
        parts.append(f"{shown}解析不确定（{reason}）")
    return "；".join(parts)


def _stamp(rule: Rule, violation: Violation, facts: Facts, splits: dict[str, SplitReading]) -> Finding:
    severity: Severity = rule.severity
    message = violation.message
    if rule.extraction_sensitive and severity != "info":
        doubts = {c: reason for c in violation.cells if (reason := facts.uncertain_reason(c)) is not None}
        split = _split_row(violation.cells, splits) if rule.id != "split_cell" else None
        low = facts.report.confidence.score < facts.thresholds.low_confidence
        if doubts:
            severity = "info" if (split or low) else LOWER[severity]
            message += f"；其中{_doubts_in_words(doubts)}，可能是提取误差而非填报错误"
        elif split and low:
            severity = LOWER[severity]
            message += "；报告整体解析可信度低，且相邻两格合为一个数即可相符，可能是提取误差"
    # built without re-validation: every field comes from the rule table or a typed Violation
    return Finding.model_construct(
        rule=rule.id,
        severity=severity,
        message=message,
        cells=list(violation.cells),
        expected=violation.expected,
        actual=violation.actual,
    )


def run_rules(facts: Facts, rules: list[Rule] | None = None) -> list[Finding]:
    splits = split_readings(facts)
    findings: list[Finding] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for entry in RULES if rules is None else rules:
        if entry.check is None:
            continue
        for violation in entry.check(facts):
            if entry.id != "blank_table" and _in_blank_table(facts, violation.cells):
                continue
            key = (entry.id, tuple(sorted(violation.cells)))
            if key in seen:
                continue  # one finding per fingerprint
            seen.add(key)
            findings.append(_stamp(entry, violation, facts, splits))
    return findings


def check_report(
    report: Report, *, today: date | None = None, context: CheckContext | None = None
) -> list[Finding]:
    """Every single-report rule's findings for ``report`` (which is not modified).

    ``today`` (or ``context.today``) is the caller's date; thresholds, and the
    filer's level when the caller knows it, come in ``context``.
    """
    return run_rules(prepare_facts(report, with_today(context, today)))
