"""The cross-report rules as pure functions: each rule's passing and failing records."""

from __future__ import annotations

from datetime import date

import pytest

from shared.rules.cross import (
    CROSS_RULES,
    check_against_previous,
    check_missing_report,
    check_revision,
    diff_reports,
    due_years,
    narrative_overlap,
    report_deadline,
)
from shared.rules.thresholds import DEFAULT_THRESHOLDS
from tests.store_support import NARRATIVE, make_record

AGENCY = "某县财政局"


def rules(findings):
    return sorted(f.rule for f in findings)


def test_every_cross_rule_is_in_the_table_with_its_domain_severity():
    assert {r.id: r.severity for r in CROSS_RULES} == {
        "carry_over_mismatch": "warning",
        "in_force_rollforward": "warning",
        "copied_report": "warning",
        "cloned_tables": "warning",
        "report_changed": "info",
        "missing_report": "error",
    }


# ------------------------------------------------------------------ carry_over_mismatch


def test_carry_over_matching_last_years_carried_forward_passes():
    last = make_record(
        AGENCY, 2020, new_received={"natural_person": 5}, carried_forward={"natural_person": 2}
    )
    this = make_record(AGENCY, 2021, new_received={"natural_person": 1}, carried_over={"natural_person": 2})
    assert check_against_previous(this, last) == []


def test_carry_over_mismatch_is_one_finding_naming_every_mismatching_column():
    last = make_record(
        AGENCY, 2020, new_received={"natural_person": 5}, carried_forward={"natural_person": 2}
    )
    this = make_record(AGENCY, 2021, new_received={"natural_person": 1}, carried_over={"natural_person": 1})
    [finding] = check_against_previous(this, last)
    assert finding.rule == "carry_over_mismatch" and finding.severity == "warning"
    assert finding.cells == ["applications.carried_over.natural_person", "applications.carried_over.total"]
    assert "自然人" in finding.message and "2020" in finding.message


def test_carry_over_single_column_carries_expected_and_actual():
    last = make_record(AGENCY, 2020, new_received={"commercial": 3}, carried_forward={"commercial": 1})
    this = make_record(AGENCY, 2021, new_received={"commercial": 1}, carried_over={"commercial": 1})
    this.applications["carried_over"]["total"] = 2  # a filing error in the total only
    last.applications["carried_forward"]["total"] = 2
    this.applications["carried_over"]["commercial"] = 2
    [finding] = check_against_previous(this, last)
    assert finding.cells == ["applications.carried_over.commercial"]
    assert (finding.expected, finding.actual) == (1, 2)


def test_carry_over_blank_total_is_the_sum_of_its_columns_and_a_blank_row_is_not_judged():
    last = make_record(
        AGENCY, 2020, new_received={"natural_person": 5}, carried_forward={"natural_person": 2}
    )
    this = make_record(AGENCY, 2021, new_received={"natural_person": 1}, carried_over={"natural_person": 2})
    this.applications["carried_over"]["total"] = None
    assert check_against_previous(this, last) == []
    for col in this.applications["carried_over"]:
        this.applications["carried_over"][col] = None
    assert check_against_previous(this, last) == []


def test_only_the_year_just_before_is_compared():
    last = make_record(AGENCY, 2019, carried_forward={"natural_person": 2})
    this = make_record(AGENCY, 2021, carried_over={"natural_person": 1})
    assert check_against_previous(this, last) == []


# ------------------------------------------------------------------ in_force_rollforward


def test_in_force_rolls_forward_passes():
    last = make_record(AGENCY, 2021, in_force={"normative_documents": (3, 0, 3)})
    this = make_record(AGENCY, 2022, in_force={"normative_documents": (8, 0, 11)})
    assert check_against_previous(this, last) == []


def test_in_force_that_does_not_roll_forward_is_one_finding_per_instrument():
    # the real break of 平潭综合实验区财政金融局 2021→2022 (corpus P003→P004)
    last = make_record(AGENCY, 2021, in_force={"normative_documents": (3, 0, 3), "regulations": (1, 0, 5)})
    this = make_record(AGENCY, 2022, in_force={"normative_documents": (8, 0, 8), "regulations": (0, 1, 3)})
    found = check_against_previous(this, last)
    assert rules(found) == ["in_force_rollforward", "in_force_rollforward"]
    by_cell = {f.cells[0]: f for f in found}
    assert by_cell["active_disclosure.normative_documents.in_force"].expected == 11
    assert by_cell["active_disclosure.normative_documents.in_force"].actual == 8
    assert by_cell["active_disclosure.regulations.in_force"].expected == 4


def test_in_force_needs_the_2021_format_on_both_sides():
    last = make_record(AGENCY, 2020)  # 2019 format: no 现行有效件数
    this = make_record(AGENCY, 2021, in_force={"normative_documents": (8, 0, 8)})
    assert check_against_previous(this, last) == []


# ------------------------------------------------------------------ copied_report


LAST_TEXT = NARRATIVE * 3 + "2020年，我局共主动公开政府信息120条，重点围绕财政预决算、政府采购开展公开。"


def test_copied_report_fires_above_half_the_narrative_with_years_masked():
    last = make_record(AGENCY, 2020, narrative=LAST_TEXT)
    this = make_record(AGENCY, 2021, narrative=LAST_TEXT.replace("2020", "2021").replace("120", "98"))
    [finding] = [f for f in check_against_previous(this, last) if f.rule == "copied_report"]
    assert finding.actual > 0.9 and finding.expected == DEFAULT_THRESHOLDS.copied_similarity


def test_a_new_narrative_is_not_a_copy():
    last = make_record(AGENCY, 2020, narrative=LAST_TEXT)
    fresh = (
        "本年度我局围绕优化营商环境推进决策公开，新建政策解读专栏，开展线上访谈六期，"
        "对群众关切的减税降费、专项债券使用情况逐项说明，并邀请人大代表、政协委员参与评议。" * 3
    )
    this = make_record(AGENCY, 2021, narrative=fresh)
    assert "copied_report" not in rules(check_against_previous(this, last))


def test_short_narratives_are_not_judged():
    assert narrative_overlap("太短", "太短") is None


# ------------------------------------------------------------------ cloned_tables


def test_identical_non_zero_tables_are_cloned():
    last = make_record(AGENCY, 2021, new_received={"natural_person": 4})
    this = make_record(AGENCY, 2022, new_received={"natural_person": 4})
    assert "cloned_tables" in rules(check_against_previous(this, last))


def test_identical_all_zero_tables_are_an_idle_body_not_a_clone():
    last = make_record(AGENCY, 2021)
    this = make_record(AGENCY, 2022)
    assert check_against_previous(this, last) == []


# ------------------------------------------------------------------ report_changed


def test_an_unchanged_revision_has_no_finding():
    before = make_record(AGENCY, 2021, new_received={"natural_person": 4})
    assert check_revision(before, before.model_copy(deep=True), revision=2) == []


def test_a_changed_cell_is_named_with_before_and_after():
    before = make_record(AGENCY, 2021, new_received={"natural_person": 4})
    after = before.model_copy(deep=True)
    after.applications["granted"]["natural_person"] = 3
    [finding] = check_revision(before, after, revision=2)
    assert finding.rule == "report_changed" and finding.severity == "info"
    assert finding.cells == ["applications.granted.natural_person"]
    assert (finding.expected, finding.actual) == (4, 3)
    assert [c.as_dict() for c in diff_reports(before, after)] == [
        {"cell": "applications.granted.natural_person", "before": 4, "after": 3}
    ]


def test_a_changed_narrative_or_date_is_a_change_too():
    before = make_record(AGENCY, 2021, narrative=LAST_TEXT)
    after = before.model_copy(deep=True)
    after.evidence.narrative = LAST_TEXT + "补充说明。"
    after.published_on = "2022-02-01"
    cells = [c.cell for c in diff_reports(before, after)]
    assert cells == ["published_on", "narrative"]
    [finding] = check_revision(before, after, revision=3)
    assert finding.cells == [] and "第3版" in finding.message


# ------------------------------------------------------------------ missing_report


@pytest.mark.parametrize(
    ("level", "deadline"),
    [("department", date(2024, 1, 31)), ("government", date(2024, 3, 31)), ("township", date(2024, 2, 20))],
)
def test_deadline_by_level(level, deadline):
    assert report_deadline(level, 2023) == deadline


def test_township_deadline_is_local():
    local = DEFAULT_THRESHOLDS.with_township_deadline("02-28")
    assert report_deadline("township", 2023, thresholds=local) == date(2024, 2, 28)


def test_missing_only_after_deadline_plus_grace():
    kw = {"grace_days": 14, "have_report": False}
    assert check_missing_report(AGENCY, "department", 2023, today=date(2024, 2, 14), **kw) is None
    finding = check_missing_report(AGENCY, "department", 2023, today=date(2024, 2, 15), **kw)
    assert finding is not None and finding.rule == "missing_report" and finding.severity == "error"
    assert finding.expected == "2024-01-31"
    assert (
        check_missing_report(
            AGENCY, "department", 2023, today=date(2024, 6, 1), grace_days=14, have_report=True
        )
        is None
    )


def test_due_years_run_up_to_the_last_deadline_passed():
    assert due_years("government", first_year=2021, today=date(2024, 4, 20), grace_days=14) == [
        2021,
        2022,
        2023,
    ]
    assert due_years("government", first_year=2021, today=date(2024, 4, 10), grace_days=14) == [2021, 2022]
