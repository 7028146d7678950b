"""Pass/fail cases for every single-report rule, as data.

Each case starts from a small *consistent* record of its template (``busy_report``:
a few applications, one review, section 二 filled) and changes only what it
names. ``test_rules_cases.py`` runs them and fails when a registered rule has
no passing or no failing case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from shared.record import CellValue, LabelDeviation, Report, empty_report
from shared.templates import TemplateId

# A consistent section 三, per applicant column (the 总计 column is their sum):
# 自然人: 新收 5 + 结转 1 = (七) 5 + 结转下年度 1; 商业企业: 新收 2 = (七) 2.
BUSY_APPLICATIONS: dict[str, dict[str, int]] = {
    "new_received": {"natural_person": 5, "commercial": 2},
    "carried_over": {"natural_person": 1},
    "granted": {"natural_person": 3, "commercial": 1},
    "partially_granted": {"natural_person": 1},
    "unavailable_not_held": {"natural_person": 1, "commercial": 1},
    "total": {"natural_person": 5, "commercial": 2},
    "carried_forward": {"natural_person": 1},
}
BUSY_REVIEWS: dict[str, dict[str, int]] = {
    "review": {"upheld": 1, "pending": 1},
    "litigation_direct": {"corrected": 1},
}
BUSY_DISCLOSURE: dict[TemplateId, dict[str, dict[str, CellValue]]] = {
    "2019": {
        "regulations": {"new_made": 0, "new_published": 0, "total_published": 0},
        "normative_documents": {"new_made": 2, "new_published": 2, "total_published": 10},
        "licensing": {"previous_items": 40, "change": -3, "decisions": 120},
        "other_services": {"previous_items": 5, "change": 0, "decisions": 3},
        "punishment": {"previous_items": 12, "change": 1, "decisions": 30},
        "coercion": {"previous_items": 2, "change": 0, "decisions": 1},
        "fees": {"previous_items": 1, "change": 0},
        "procurement": {"projects": 3, "amount_wan_yuan": 25.1},
    },
    "2021": {
        "regulations": {"made": 0, "repealed": 0, "in_force": 0},
        "normative_documents": {"made": 2, "repealed": 1, "in_force": 14},
        "licensing": {"decisions": 120},
        "punishment": {"decisions": 30},
        "coercion": {"decisions": 1},
        "fees": {"amount_wan_yuan": 12.5},
    },
}

ALL_SECTIONS = ["overview", "active_disclosure", "applications", "reviews", "problems", "other"]


def busy_report(template: TemplateId = "2021", **fields: Any) -> Report:
    """A small consistent record: zeros everywhere, a few applications and cases, 总计 filled in."""
    report = empty_report(template, **fields)
    for section in ("applications", "reviews"):
        for cols in getattr(report, section).values():
            for col in cols:
                cols[col] = 0
    for row, values in BUSY_APPLICATIONS.items():
        for col, value in values.items():
            report.applications[row][col] = value
    for cols in report.applications.values():
        cols["total"] = sum(v or 0 for c, v in cols.items() if c != "total")
    for group, values in BUSY_REVIEWS.items():
        report.reviews[group].update(values)
    for cols in report.reviews.values():
        cols["total"] = sum(v or 0 for c, v in cols.items() if c != "total")
    for item, values in BUSY_DISCLOSURE[template].items():
        report.active_disclosure[item].update(values)
    return report


@dataclass(frozen=True)
class RuleCase:
    rule: str
    name: str
    outcome: Literal["pass", "fail"]
    template: TemplateId = "2021"
    fields: dict[str, Any] = field(default_factory=dict)  # agency, year, title, published_on
    cells: dict[str, CellValue] = field(default_factory=dict)  # dotted path → value, over busy_report
    blank_sections: tuple[str, ...] = ()  # sections to blank entirely
    evidence: dict[str, Any] = field(default_factory=dict)
    uncertain: dict[str, str] = field(default_factory=dict)
    confidence: float = 1.0
    today: date | None = None
    township_deadline: str | None = None  # "MM-DD"
    # for a failing case: the severity of the finding and cells it must name
    severity: str | None = None
    cells_include: tuple[str, ...] = ()
    # for a failing case: no other rule may fire
    alone: bool = False

    @property
    def id(self) -> str:
        return f"{self.rule}:{self.outcome}:{self.name}"

    def build(self) -> Report:
        report = busy_report(self.template, **self.fields)
        for path, value in self.cells.items():
            report.set_cell(path, value)
        for section in self.blank_sections:
            for cols in getattr(report, section).values():
                for col in cols:
                    cols[col] = None
        for key, value in self.evidence.items():
            setattr(report.evidence, key, value)
        report.confidence.uncertain_cells.update(self.uncertain)
        report.confidence.score = self.confidence
        return report


A = "applications"
NP = "natural_person"
SHANGHAI_STYLE = {  # 总计 column left blank for the outcome rows: warnings, no arithmetic error
    f"{A}.granted.total": None,
    f"{A}.partially_granted.total": None,
    f"{A}.unavailable_not_held.total": None,
}

CASES: tuple[RuleCase, ...] = (
    # ------------------------------------------------------------ t3_identity
    RuleCase("t3_identity", "consistent 2021", "pass"),
    RuleCase("t3_identity", "consistent 2019", "pass", template="2019"),
    RuleCase("t3_identity", "blank totals imputed", "pass", cells=SHANGHAI_STYLE),
    RuleCase(
        "t3_identity", "one more new application than handled", "fail",
        cells={f"{A}.new_received.{NP}": 6, f"{A}.new_received.total": 8},
        severity="error", cells_include=(f"{A}.new_received.{NP}", f"{A}.total.{NP}"),
    ),
    RuleCase(
        "t3_identity", "uncertain cell lowers to warning", "fail",
        cells={f"{A}.new_received.{NP}": 6, f"{A}.new_received.total": 8},
        uncertain={f"{A}.new_received.{NP}": "run '6200002' split two ways"},
        severity="warning", cells_include=(f"{A}.new_received.{NP}",),
    ),
    RuleCase(
        "t3_identity", "uncertain row in a low-confidence report drops to info", "fail",
        cells={f"{A}.new_received.{NP}": 6, f"{A}.new_received.total": 8},
        uncertain={f"{A}.new_received": "fuzzy label match"}, confidence=0.4,
        severity="info", cells_include=(f"{A}.new_received.{NP}",),
    ),
    # ------------------------------------------------------------ t3_result_sum
    RuleCase("t3_result_sum", "consistent", "pass"),
    RuleCase("t3_result_sum", "blank totals imputed", "pass", template="2019", cells=SHANGHAI_STYLE),
    RuleCase(
        "t3_result_sum", "outcomes exceed (七)总计", "fail",
        cells={f"{A}.granted.{NP}": 4, f"{A}.granted.total": 6},
        severity="error", cells_include=(f"{A}.total.{NP}", f"{A}.granted.{NP}"),
    ),
    RuleCase(
        "t3_result_sum", "2021 (六)其他 row counts", "fail",
        cells={f"{A}.other_misc.commercial": 1, f"{A}.other_misc.total": 1},
        severity="error", cells_include=(f"{A}.other_misc.commercial", f"{A}.total.commercial"),
    ),
    RuleCase(
        "t3_result_sum", "2019 (六)其他处理 row counts", "fail", template="2019",
        cells={f"{A}.other_handling.commercial": 1, f"{A}.other_handling.total": 1},
        severity="error", cells_include=(f"{A}.other_handling.commercial",),
    ),
    # ------------------------------------------------------------ t3_row_sum
    RuleCase("t3_row_sum", "consistent", "pass"),
    RuleCase("t3_row_sum", "blank components count as 0", "pass",
             cells={f"{A}.granted.commercial": None, f"{A}.granted.total": 3,
                    f"{A}.new_received.commercial": None, f"{A}.new_received.total": 5,
                    f"{A}.unavailable_not_held.commercial": None, f"{A}.unavailable_not_held.total": 1,
                    f"{A}.total.commercial": None, f"{A}.total.total": 5}),
    RuleCase(
        "t3_row_sum", "total column off by one (seed 003's (七)总计)", "fail",
        cells={f"{A}.total.{NP}": 0, f"{A}.total.total": 7},
        severity="error", cells_include=(f"{A}.total.total", f"{A}.total.{NP}"),
    ),
    RuleCase(
        "t3_row_sum", "a split 12 read as 1|2 on an uncertain row is info", "fail",
        cells={f"{A}.granted.{NP}": 1, f"{A}.granted.commercial": 2, f"{A}.granted.total": 12},
        uncertain={f"{A}.granted": "row re-split from a run of digits"},
        severity="info", cells_include=(f"{A}.granted.total",),
    ),
    RuleCase(
        "t3_row_sum", "a split row in a low-confidence report is a warning", "fail",
        cells={f"{A}.granted.{NP}": 1, f"{A}.granted.commercial": 2, f"{A}.granted.total": 12},
        confidence=0.4, severity="warning", cells_include=(f"{A}.granted.total",),
    ),
    RuleCase(
        "t3_row_sum", "a split row on sure cells stays an error", "fail",
        cells={f"{A}.granted.{NP}": 1, f"{A}.granted.commercial": 2, f"{A}.granted.total": 12},
        severity="error", cells_include=(f"{A}.granted.total",),
    ),
    # ------------------------------------------------------------ t4_sum
    RuleCase("t4_sum", "consistent", "pass"),
    RuleCase("t4_sum", "blank total imputed", "pass", cells={"reviews.review.total": None}),
    RuleCase(
        "t4_sum", "review total too high", "fail", cells={"reviews.review.total": 3},
        severity="error", cells_include=("reviews.review.total", "reviews.review.upheld"),
    ),
    RuleCase(
        "t4_sum", "litigation after review", "fail", cells={"reviews.litigation_after_review.pending": 2},
        severity="error", cells_include=("reviews.litigation_after_review.pending",),
    ),
    # ------------------------------------------------------------ negative_value
    RuleCase("negative_value", "本年增/减 may be negative", "pass", template="2019",
             cells={"active_disclosure.punishment.change": -5}),
    RuleCase(
        "negative_value", "a negative count", "fail", cells={"active_disclosure.licensing.decisions": -1},
        severity="error", cells_include=("active_disclosure.licensing.decisions",),
    ),
    RuleCase(
        "negative_value", "a negative application count", "fail", template="2019",
        cells={f"{A}.granted.commercial": -1, f"{A}.granted.total": 2},
        severity="error", cells_include=(f"{A}.granted.commercial",),
    ),
    # ------------------------------------------------------------ blank_table
    RuleCase("blank_table", "all zero is not blank", "pass",
             blank_sections=(), cells={f"{A}.new_received.{NP}": 5}),
    RuleCase(
        "blank_table", "all three tables blank (seed 001): nothing else", "fail",
        blank_sections=("active_disclosure", "applications", "reviews"),
        evidence={"narrative": "2021年度我镇主动公开政府信息10条。"},
        severity="error", cells_include=("applications",), alone=True,
    ),
    RuleCase(
        "blank_table", "section 四 blank only", "fail", blank_sections=("reviews",),
        severity="error", cells_include=("reviews",), alone=True,
    ),
    # ------------------------------------------------------------ template_mismatch
    RuleCase("template_mismatch", "2021 format for 2022", "pass", fields={"year": 2022}),
    RuleCase("template_mismatch", "2019 format for 2020", "pass", template="2019", fields={"year": 2020}),
    RuleCase("template_mismatch", "no year, no judgement", "pass", template="2019"),
    RuleCase("template_mismatch", "2019 format for 2021", "fail", template="2019", fields={"year": 2021},
             severity="error"),
    RuleCase("template_mismatch", "2021 format for 2019", "fail", fields={"year": 2019}, severity="error"),
    # ------------------------------------------------------------ year_mismatch
    RuleCase("year_mismatch", "title and period agree", "pass",
             evidence={"title_year": 2021, "statistics_year": 2021}),
    RuleCase("year_mismatch", "no period stated", "pass",
             fields={"title": "某镇2021年政府信息公开工作年度报告"}),
    RuleCase("year_mismatch", "title 2022, period 2021", "fail",
             evidence={"title_year": 2022, "statistics_year": 2021}, severity="error"),
    RuleCase(
        "year_mismatch", "read from the title and the narrative", "fail",
        fields={"title": "官坡镇人民政府 2023 年政府信息公开工作年度报告"},
        evidence={"narrative": "本报告中所列数据的统计期限为2022年1月1日至2022年12月31日。"},
        severity="error",
    ),
    # ------------------------------------------------------------ total_omitted
    RuleCase("total_omitted", "blank total, blank parts", "pass",
             cells={f"{A}.denied_state_secret.total": None}),
    RuleCase("total_omitted", "Shanghai 2019 style", "fail", template="2019", cells=SHANGHAI_STYLE,
             severity="warning", cells_include=(f"{A}.granted.total",)),
    RuleCase("total_omitted", "(七)总计 row left blank", "fail",
             cells={f"{A}.total.{NP}": None}, severity="warning", cells_include=(f"{A}.total.{NP}",)),
    RuleCase("total_omitted", "review total left blank", "fail",
             cells={"reviews.review.total": None}, severity="warning",
             cells_include=("reviews.review.total",)),
    # ------------------------------------------------------------ late_publication
    RuleCase("late_publication", "government on 31 Mar", "pass",
             fields={"agency": "某某县人民政府", "year": 2021, "published_on": "2022-03-31"}),
    RuleCase("late_publication", "no date, no finding", "pass",
             fields={"agency": "某某县财政局", "year": 2021}),
    RuleCase("late_publication", "unknown body: the latest deadline", "pass",
             fields={"year": 2021, "published_on": "2022-03-15"}),
    RuleCase("late_publication", "2018 report: old regulation, 31 Mar for all", "pass", template="2019",
             fields={"agency": "某某县财政局", "year": 2018, "published_on": "2019-03-20"}),
    RuleCase("late_publication", "township within a local deadline of 28 Feb", "pass",
             fields={"agency": "郑庄子镇", "year": 2021, "published_on": "2022-02-25"},
             township_deadline="02-28"),
    RuleCase("late_publication", "a date after today is a misread", "pass", today=date(2022, 1, 15),
             fields={"agency": "某某县财政局", "year": 2021, "published_on": "2022-06-01"}),
    RuleCase("late_publication", "government on 1 Apr", "fail", severity="warning",
             fields={"agency": "某某县人民政府", "year": 2021, "published_on": "2022-04-01"}),
    RuleCase("late_publication", "department on 1 Feb", "fail", severity="warning",
             fields={"agency": "固镇县城市管理局", "year": 2021, "published_on": "2022-02-01"}),
    RuleCase("late_publication", "township after 20 Feb", "fail", severity="warning",
             fields={"agency": "官坡镇人民政府", "year": 2023, "published_on": "2024-02-21"}),
    # ------------------------------------------------------------ template_deviation
    RuleCase("template_deviation", "official captions", "pass",
             evidence={"captions": ["第二十条第(一)项", "第二十条第（五）项", "第二十条第（六）项"]}),
    RuleCase("template_deviation", "a numbering variant is no deviation", "pass",
             evidence={"label_deviations": [LabelDeviation(
                 where=f"{A}.denied_state_secret", found="1、属于国家秘密", official="1.属于国家秘密")]}),
    RuleCase("template_deviation", "第二十六条 (seed 003)", "fail", template="2019", severity="warning",
             evidence={"captions": ["第二十条第（一）项", "第二十六条第（六）项"]}),
    RuleCase("template_deviation", "a word missing from a row label", "fail", severity="warning",
             evidence={"label_deviations": [LabelDeviation(
                 where=f"{A}.rejected_complaint", found="1.信访举报类申请",
                 official="1.信访举报投诉类申请")]},
             cells_include=(f"{A}.rejected_complaint",)),
    RuleCase("template_deviation", "an extra subtotal row", "fail", severity="warning",
             evidence={"extra_rows": ["applications: （三）不予公开"]}),
    # ------------------------------------------------------------ sections_missing
    RuleCase("sections_missing", "all six in order", "pass", evidence={"sections_found": ALL_SECTIONS}),
    RuleCase("sections_missing", "no headings recorded", "pass", evidence={"sections_found": []}),
    RuleCase("sections_missing", "五 and 六 missing", "fail", severity="warning",
             evidence={"sections_found": ALL_SECTIONS[:4]}),
    RuleCase("sections_missing", "四 before 三", "fail", severity="warning",
             evidence={"sections_found": ["overview", "active_disclosure", "reviews", "applications",
                                          "problems", "other"]}),
    # ------------------------------------------------------------ text_table_mismatch
    RuleCase("text_table_mismatch", "received and handled agree", "pass",
             evidence={"narrative": "全年共收到政府信息公开申请7件，办结7件，1件结转下年度继续办理。"}),
    RuleCase("text_table_mismatch", "received includes carried over", "pass",
             evidence={"narrative": "本年度受理政府信息公开申请8件。"}),
    RuleCase("text_table_mismatch", "comparisons and rates are not claims", "pass",
             evidence={"narrative": "收到申请较上年增加5件，办结率100%，"
                                    "办结时长缩短至30分钟以内，受理群众诉求259起。"}),
    RuleCase("text_table_mismatch", "cases that are not about disclosure", "pass",
             evidence={"narrative": "全年办理行政复议案件120件，行政诉讼应诉35件。"}),
    RuleCase("text_table_mismatch", "cases agree", "pass",
             evidence={"narrative": "因政府信息公开引起的行政复议案件2件、行政诉讼案件1件。"}),
    RuleCase("text_table_mismatch", "received 9 but the table says 7", "fail", severity="warning",
             evidence={"narrative": "本年度共收到政府信息公开申请9件。"},
             cells_include=(f"{A}.new_received.total",)),
    RuleCase("text_table_mismatch", "3 reviews stated, 2 in the table", "fail", severity="warning",
             evidence={"narrative": "全年发生政府信息公开行政复议3起，行政诉讼1起。"},
             cells_include=("reviews.review.total",)),
    RuleCase("text_table_mismatch", "carried forward 3 stated", "fail", severity="warning",
             evidence={"narrative": "办结7件，结转至2022年3件。"},
             cells_include=(f"{A}.carried_forward.total",)),
    RuleCase("text_table_mismatch", "an uncertain table cell lowers it to info", "fail", severity="info",
             evidence={"narrative": "本年度共收到政府信息公开申请9件。"},
             uncertain={f"{A}.new_received": "fuzzy label match"},
             cells_include=(f"{A}.new_received.total",)),
    RuleCase("text_table_mismatch", "says none received", "fail", severity="warning",
             evidence={"narrative": "本年度未收到政府信息公开申请。"},
             cells_include=(f"{A}.new_received.total",)),
    # ------------------------------------------------------------ unit_suspect
    RuleCase("unit_suspect", "万元 as required", "pass", evidence={"units": {
        "active_disclosure.fees.amount_wan_yuan": "万元"}}),
    RuleCase("unit_suspect", "a large sum for a whole government", "pass",
             fields={"agency": "上海市人民政府办公厅"}, template="2019",
             cells={"active_disclosure.procurement.amount_wan_yuan": 251000}),
    RuleCase("unit_suspect", "251000元 (Shanghai 2019)", "fail", template="2019", severity="warning",
             cells={"active_disclosure.procurement.amount_wan_yuan": 25.1},
             evidence={"units": {"active_disclosure.procurement.amount_wan_yuan": "元"},
                       "raw_cells": {"active_disclosure.procurement.amount_wan_yuan": "251000元"}},
             cells_include=("active_disclosure.procurement.amount_wan_yuan",)),
    RuleCase("unit_suspect", "a township's 5亿元 of fees", "fail", severity="warning",
             fields={"agency": "官坡镇人民政府"}, cells={"active_disclosure.fees.amount_wan_yuan": 50000},
             cells_include=("active_disclosure.fees.amount_wan_yuan",)),
    # ------------------------------------------------------------ split_cell
    RuleCase("split_cell", "consistent", "pass"),
    RuleCase("split_cell", "a row off by a non-split amount", "pass", cells={f"{A}.granted.total": 5}),
    RuleCase(
        "split_cell", "12 read as 1|2", "fail", severity="info",
        cells={f"{A}.granted.{NP}": 1, f"{A}.granted.commercial": 2, f"{A}.granted.total": 12},
        cells_include=(f"{A}.granted.{NP}", f"{A}.granted.commercial"),
    ),
    RuleCase(
        "split_cell", "a review total read as 1|0", "fail", severity="info",
        # 6+4+0+1 printed against a total of 0: the true row is 6+4+0 = 10, its "10" read as 1|0
        cells={"reviews.review.upheld": 6, "reviews.review.corrected": 4, "reviews.review.pending": 1,
               "reviews.review.total": 0},
        cells_include=("reviews.review.pending", "reviews.review.total"),
    ),
)
