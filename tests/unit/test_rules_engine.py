"""The rule table, the context and thresholds, filer levels, fingerprints, blank handling."""

from __future__ import annotations

import importlib
import re
from datetime import date

import pytest

from shared.record import empty_report
from shared.rules import (
    DEFAULT_THRESHOLDS,
    RULES,
    CheckContext,
    FilerLevel,
    MonthDay,
    check_report,
    infer_filer_level,
    prepare_facts,
    rule_by_id,
)
from tests.conftest import SHARED_KIT, require_kit
from tests.unit.rule_cases import busy_report

SINGLE_REPORT_IDS = [
    "t3_identity", "t3_result_sum", "t3_row_sum", "t4_sum", "negative_value", "blank_table",
    "template_mismatch", "year_mismatch", "total_omitted", "late_publication", "template_deviation",
    "sections_missing", "text_table_mismatch", "unit_suspect", "split_cell",
]
CROSS_REPORT_IDS = [
    "carry_over_mismatch", "in_force_rollforward", "copied_report", "cloned_tables", "report_changed",
    "missing_report",
]


# ---------------------------------------------------------------- the table


def test_table_lists_every_contract_rule_in_domain_order() -> None:
    assert [r.id for r in RULES] == SINGLE_REPORT_IDS + CROSS_REPORT_IDS
    assert {r.scope for r in RULES if r.id in SINGLE_REPORT_IDS} == {"report"}
    assert {r.scope for r in RULES if r.id in CROSS_REPORT_IDS} == {"store"}


def test_table_matches_the_severities_of_domain_md() -> None:
    domain = require_kit(SHARED_KIT / "spec" / "domain.md")
    declared = dict(re.findall(r"^\| `(\w+)` \| (error|warning|info) \|", domain.read_text("utf-8"), re.M))
    assert declared == {r.id: r.severity for r in RULES}


def test_each_rule_describes_itself() -> None:
    for entry in RULES:
        described = entry.describe()
        assert {"id", "severity", "scope", "title"} <= set(described)
        assert re.search(r"[\u4e00-\u9fff]", described["title"])
        assert entry.scope == "store" or entry.check is not None


def test_store_rules_name_a_pure_function_that_exists() -> None:
    for entry in RULES:
        if entry.scope != "store" or entry.hook is None:
            continue
        module, function = entry.hook.split(":")
        assert callable(getattr(importlib.import_module(module), function))


def test_rule_by_id() -> None:
    assert rule_by_id("t4_sum").severity == "error"
    with pytest.raises(KeyError):
        rule_by_id("no_such_rule")


# ---------------------------------------------------------------- filer level and thresholds


@pytest.mark.parametrize(
    ("agency", "level"),
    [
        ("城郊乡人民政府", FilerLevel.TOWNSHIP),
        ("丰城市段潭乡人民政府", FilerLevel.TOWNSHIP),
        ("郑庄子镇", FilerLevel.TOWNSHIP),
        ("官坡镇人民政府", FilerLevel.TOWNSHIP),
        ("某某区某某街道办事处", FilerLevel.TOWNSHIP),
        ("某某旗某某苏木", FilerLevel.TOWNSHIP),
        ("固镇县城市管理局", FilerLevel.DEPARTMENT),  # 镇 inside the county's name
        ("镇江市人民政府", FilerLevel.GOVERNMENT),
        ("乡宁县人民政府", FilerLevel.GOVERNMENT),
        ("上海市人民政府办公厅", FilerLevel.GOVERNMENT),
        ("某某县人民政府办公室", FilerLevel.GOVERNMENT),
        ("平潭综合实验区", FilerLevel.GOVERNMENT),
        ("某某经济技术开发区管委会", FilerLevel.GOVERNMENT),
        ("平潭综合实验区财政金融局", FilerLevel.DEPARTMENT),
        ("某某市城市管理委员会", FilerLevel.DEPARTMENT),
        ("某某市卫生健康委员会", FilerLevel.DEPARTMENT),
        ("", None),
        (None, None),
    ],
)
def test_filer_level_from_the_name(agency: str | None, level: FilerLevel | None) -> None:
    assert infer_filer_level(agency) == level


def test_deadlines_by_level_and_era() -> None:
    t = DEFAULT_THRESHOLDS
    assert t.deadline(FilerLevel.DEPARTMENT, 2021) == date(2022, 1, 31)
    assert t.deadline(FilerLevel.GOVERNMENT, 2021) == date(2022, 3, 31)
    assert t.deadline(FilerLevel.TOWNSHIP, 2021) == date(2022, 2, 20)
    assert t.deadline(None, 2021) == date(2022, 3, 31)
    assert t.deadline(FilerLevel.DEPARTMENT, 2017) == date(2018, 3, 31)  # the 2007 regulation
    local = t.with_township_deadline("01-31")
    assert local.deadline(FilerLevel.TOWNSHIP, 2021) == date(2022, 1, 31)
    assert DEFAULT_THRESHOLDS.deadline(FilerLevel.TOWNSHIP, 2021) == date(2022, 2, 20)  # unchanged


def test_month_day_parsing() -> None:
    assert MonthDay.parse("02-20") == MonthDay(2, 20)
    assert MonthDay.parse("02-29").in_year(2023) == date(2023, 2, 28)
    with pytest.raises(ValueError):
        MonthDay.parse("02-30")


def test_templates_by_year() -> None:
    t = DEFAULT_THRESHOLDS
    years = (2018, 2019, 2020, 2021, 2030)
    assert [t.template_for_year(y) for y in years] == [None, "2019", "2019", "2021", "2021"]


def test_late_publication_follows_the_level_the_caller_knows() -> None:
    report = busy_report(agency="某某中心", year=2021, published_on="2022-02-15")
    assert [f.rule for f in check_report(report)] == ["late_publication"]  # a department by its name
    known = CheckContext(filer_level=FilerLevel.GOVERNMENT)
    assert check_report(report, context=known) == []


def test_today_reaches_the_rules_with_or_without_a_context() -> None:
    report = busy_report(agency="某某县财政局", year=2021, published_on="2022-06-01")
    assert [f.rule for f in check_report(report)] == ["late_publication"]
    assert check_report(report, today=date(2022, 1, 10)) == []
    assert check_report(report, today=date(2022, 1, 10), context=CheckContext()) == []


# ---------------------------------------------------------------- findings


def seed_003_like():
    report = empty_report("2019", agency="丰城市段潭乡人民政府", year=2020, published_on="2021-01-12")
    for section in ("active_disclosure", "applications", "reviews"):
        for cols in getattr(report, section).values():
            for col in cols:
                cols[col] = 0
    for path, value in {
        "applications.new_received.natural_person": 1, "applications.new_received.total": 1,
        "applications.granted.natural_person": 1, "applications.granted.total": 1,
        "applications.total.total": 1,
    }.items():
        report.set_cell(path, value)
    report.evidence.captions = ["第二十条第（一）项", "第二十条第（五）项", "第二十六条第（六）项"]
    return report


def test_seed_003_findings_point_at_the_cells_with_the_numbers() -> None:
    findings = check_report(seed_003_like(), today=date(2024, 1, 1))
    by_rule = {f.rule: f for f in findings}
    assert set(by_rule) == {"t3_identity", "t3_result_sum", "t3_row_sum", "template_deviation"}
    identity = by_rule["t3_identity"]
    assert identity.severity == "error"
    assert identity.message == "自然人列：新收1件+上年结转0件=1件，而办理结果总计0件+结转下年度0件=0件"
    assert "applications.new_received.natural_person" in identity.cells
    assert (identity.expected, identity.actual) == (1, 0)
    row = by_rule["t3_row_sum"]
    assert row.cells[0] == "applications.total.total" and (row.expected, row.actual) == (0, 1)
    assert "第二十六条第（六）项" in by_rule["template_deviation"].message
    assert by_rule["t3_identity"].to_json_dict()["expected"] == 1


def test_fingerprints_are_stable_and_distinct() -> None:
    report = seed_003_like()
    report.source.path = "seeds/003.txt"
    first = [f.fingerprint(report.identity()) for f in check_report(report)]
    again = [f.fingerprint(report.identity()) for f in check_report(seed_003_like().model_copy(
        update={"source": report.source}))]
    assert first == again
    assert len(set(first)) == len(first)


def test_blank_table_alone_and_imputation_on_a_copy() -> None:
    report = busy_report("2019")
    report.applications["granted"]["total"] = None
    facts = prepare_facts(report, CheckContext())
    assert facts.report.applications["granted"]["total"] == 4
    assert report.applications["granted"]["total"] is None  # the caller's record is untouched
    assert list(facts.imputed) == ["applications.granted.total"]

    blank = empty_report("2021")
    findings = check_report(blank)
    assert [(f.rule, f.cells) for f in findings] == [
        ("blank_table", ["active_disclosure"]),
        ("blank_table", ["applications"]),
        ("blank_table", ["reviews"]),
    ]


def test_omitted_corner_total_is_taken_from_its_row_or_its_column() -> None:
    report = busy_report()
    report.applications["total"]["total"] = None
    facts = prepare_facts(report, CheckContext())
    assert facts.imputed["applications.total.total"].value == 7
    # the whole (七)总计 row left blank: the corner comes from the outcome rows' totals
    for col in report.applications["total"]:
        report.applications["total"][col] = None
    facts = prepare_facts(report, CheckContext())
    assert facts.report.applications["total"]["total"] == 7
    assert [f.severity for f in check_report(report)] == ["warning"] * 3  # np, commercial, corner


def test_template_left_unset_is_inferred_from_the_rows() -> None:
    report = busy_report("2019")
    report.template = None
    report.applications["other_handling"]["commercial"] = 1
    report.applications["other_handling"]["total"] = 1
    assert "t3_result_sum" in {f.rule for f in check_report(report)}
