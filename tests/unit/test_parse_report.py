"""The parser's entry point: not-a-report, the run-together route, OCR, evidence."""

from __future__ import annotations

import json
from datetime import date
from types import SimpleNamespace

import pytest

from shared.errors import NotAReport
from shared.extract.blocks import Document, Paragraph
from shared.parse import parse_document
from shared.parse import report as report_module
from shared.record import Report
from shared.rules import check_report
from shared.rules.cross import check_against_previous
from shared.templates import TEMPLATES
from tests.unit.parse_snippets import application_rows, report_doc, table

L2021 = TEMPLATES["2021"]


def text_doc(*lines: str, flat: bool = False) -> Document:
    return Document(blocks=[Paragraph(line) for line in lines], media_type="text/plain", flat=flat)


def test_a_news_page_is_not_a_report() -> None:
    doc = text_doc(
        "关于开展春季植树活动的通知",
        "各村、各单位：定于3月12日开展植树活动。",
        "某某镇人民政府",
        "2021年3月1日",
    )
    with pytest.raises(NotAReport, match="not a 政府信息公开工作年度报告"):
        parse_document(doc)


def test_a_lone_unrelated_table_is_not_a_report() -> None:
    doc = Document(
        blocks=[Paragraph("行政审批事项目录"), table(("事项", "数量"), ("行政许可", "12"))],
        media_type="text/html",
    )
    with pytest.raises(NotAReport):
        parse_document(doc)


def test_a_report_without_tables_says_so() -> None:
    doc = text_doc(
        "某某县统计局2021年政府信息公开工作年度报告",
        "一、总体情况",
        "2021年，我局认真贯彻落实条例。",
        "二、主动公开政府信息情况",
        "本年度主动公开信息120条。",
        "三、收到和处理政府信息公开申请情况",
        "本年度未收到申请。",
    )
    with pytest.raises(NotAReport, match=r"no statistical tables \(sections 二/三/四\) found"):
        parse_document(doc)


def test_a_report_with_some_tables_missing_is_parsed_with_blanks() -> None:
    doc = report_doc("2021")
    doc.blocks = [b for b in doc.blocks if not (getattr(b, "rows", None) and b.rows[0][0] == "行政复议")]
    report = parse_document(doc)
    assert report.evidence.tables_found == ["active_disclosure", "applications"]
    assert all(v is None for g in report.reviews.values() for v in g.values())
    assert report.applications["total"]["total"] == 0


def test_run_together_text_goes_to_the_flat_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def fake_reader(text: str, layout: object) -> SimpleNamespace:
        seen.append(text)
        return SimpleNamespace(
            cells={"applications.new_received.natural_person": 64, "applications.new_received.total": 70},
            raw={"applications.new_received.natural_person": "64"},
            uncertain={"applications.granted.natural_person": "two splits reconcile"},
            found_rows=["applications.new_received", "applications.granted"],
        )

    monkeypatch.setattr(report_module, "_flat_reader", lambda: fake_reader)
    doc = text_doc(
        "平潭综合实验区2021年度政府信息公开工作年度报告",
        "三、收到和处理政府信息公开申请情况一、本年新收政府信息公开申请数量640020470申请人无正当理由逾期不补正…",
        flat=True,
    )
    report = parse_document(doc)
    assert seen and "640020470" in seen[0]
    assert report.template == "2021"
    assert report.applications["new_received"]["natural_person"] == 64
    assert report.confidence.score <= 0.7
    assert "cell boundaries recovered from run-together text" in report.confidence.reasons
    assert report.confidence.uncertain_cells["applications.granted.natural_person"] == "two splits reconcile"
    assert "applications" in report.evidence.tables_found


def test_run_together_text_without_the_flat_reader_is_a_blank_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_module, "_flat_reader", lambda: None)
    doc = text_doc(
        "某某局2021年度政府信息公开工作年度报告",
        "一、本年新收政府信息公开申请数量640020470本年制发件数",
        flat=True,
    )
    report = parse_document(doc)
    assert all(v is None for _, v in report.iter_cells())
    assert report.confidence.score <= 0.5


def test_ocr_cells_are_uncertain() -> None:
    doc = report_doc("2021")
    doc.ocr = True
    report = parse_document(doc)
    assert report.confidence.score <= 0.8
    assert report.confidence.uncertain_cells["applications.total.total"] == "read by OCR"


def test_evidence_for_the_rules() -> None:
    doc = report_doc(
        "2021",
        tail=["本报告中所列数据的统计期限为2021年1月1日至2021年12月31日。"],
        meta={"SiteIDCode": "1302050003", "SiteName": "某某县人民政府", "PubDate": "2022-01-20 09:00"},
    )
    report = parse_document(doc)
    e = report.evidence
    assert e.sections_found == [
        "overview",
        "active_disclosure",
        "applications",
        "reviews",
        "problems",
        "other",
    ]
    assert (e.statistics_year, e.title_year) == (2021, 2021)
    assert (e.site_id_code, e.site_name) == ("1302050003", "某某县人民政府")
    assert report.published_on == "2022-01-20"
    assert "本年度我局认真贯彻落实" in e.narrative
    assert e.captions[0] == "第二十条第（一）项"
    assert e.raw_cells["applications.total.total"] == "0"


def _undecided(year: int) -> Document:
    """A report whose tables carry no label that only one layout prints."""
    rows = [r for r in application_rows(L2021) if not r[0].startswith(("1.申请人", "2.申请人", "3.其他"))]
    return report_doc(
        "2021",
        title=f"某某局{year}年政府信息公开工作年度报告",
        applications=rows,
        disclosure=[("第二十条第（一）项", "", "", "")],
    )


@pytest.mark.parametrize(("year", "shape"), [(2020, "2019"), (2022, "2021")])
def test_template_is_null_when_no_label_decides(year: int, shape: str) -> None:
    # report-schema.md: the template is decided by the labels, not the year; the year only
    # shapes the tables, so the record still has every cell of that layout (null when unread)
    report = parse_document(_undecided(year))
    assert report.template is None
    assert report.year == year
    assert any("chosen from the year" in r and "template left null" in r for r in report.confidence.reasons)
    layout = TEMPLATES[shape]  # type: ignore[index]
    assert list(report.applications) == [r.key for r in layout.application_rows]
    assert list(report.active_disclosure) == [i.key for i in layout.disclosure]
    record = json.loads(report.to_json())
    assert record["template"] is None
    assert all(len(cols) == len(layout.application_columns) for cols in record["applications"].values())


@pytest.mark.parametrize("year", [2020, 2022])
def test_rules_run_on_a_record_without_template(year: int) -> None:
    report = parse_document(_undecided(year))
    findings = check_report(report, today=date(year + 1, 6, 1))
    # a guessed layout is not the report's: it cannot be "the wrong format for the year"
    assert "template_mismatch" not in {f.rule for f in findings}
    previous = parse_document(_undecided(year - 1))
    check_against_previous(report, previous)


def test_rules_run_on_a_bare_record_without_template() -> None:
    check_report(Report(year=2021), today=date(2022, 6, 1))
