"""Every single-report rule against its pass and fail cases (``rule_cases.py``)."""

from __future__ import annotations

import pytest

from shared.rules import DEFAULT_THRESHOLDS, RULES, CheckContext, check_report
from tests.unit.rule_cases import CASES, RuleCase

REPORT_RULES = [r.id for r in RULES if r.scope == "report"]


def _run(case: RuleCase):
    thresholds = DEFAULT_THRESHOLDS
    if case.township_deadline:
        thresholds = thresholds.with_township_deadline(case.township_deadline)
    return check_report(case.build(), context=CheckContext(today=case.today, thresholds=thresholds))


@pytest.mark.parametrize("rule_id", REPORT_RULES)
def test_every_rule_has_passing_and_failing_cases(rule_id: str) -> None:
    outcomes = {case.outcome for case in CASES if case.rule == rule_id}
    assert outcomes == {"pass", "fail"}, f"{rule_id} needs at least one passing and one failing case"


def test_cases_name_registered_rules_only() -> None:
    assert {case.rule for case in CASES} <= set(REPORT_RULES)
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", [c for c in CASES if c.outcome == "pass"], ids=lambda c: c.id)
def test_passing_case_raises_nothing_for_its_rule(case: RuleCase) -> None:
    raised = [f for f in _run(case) if f.rule == case.rule]
    assert raised == []


@pytest.mark.parametrize("case", [c for c in CASES if c.outcome == "fail"], ids=lambda c: c.id)
def test_failing_case_raises_its_rule_with_cells_and_numbers(case: RuleCase) -> None:
    findings = _run(case)
    raised = [f for f in findings if f.rule == case.rule]
    assert raised, f"{case.rule} did not fire; got {[f.rule for f in findings]}"
    matching = [
        f for f in raised
        if (case.severity is None or f.severity == case.severity) and set(case.cells_include) <= set(f.cells)
    ]
    assert matching, [(f.severity, f.cells, f.message) for f in raised]
    for finding in raised:
        assert finding.message and any("\u4e00" <= ch <= "\u9fff" for ch in finding.message)
    if case.alone:
        assert {f.rule for f in findings} == {case.rule}
