"""Grids → cells, one kind of damage per test (spec/domain.md "What real reports look like")."""

from __future__ import annotations

from shared.extract.blocks import Document, Paragraph
from shared.parse import parse_document
from shared.parse.grid import align_values, pick_in_span, split_row
from shared.templates import TEMPLATES
from tests.unit.parse_snippets import (
    REVIEW_HEADER,
    application_rows,
    disclosure_rows,
    report_doc,
    review_rows,
    table,
)

L2019, L2021 = TEMPLATES["2019"], TEMPLATES["2021"]


def numbered(row: str, col: str) -> str:
    """A distinct value per cell, so a misplaced cell cannot pass unnoticed."""
    return str(sum(ord(c) for c in row + col) % 97)


def test_clean_report_reads_every_cell_with_full_confidence() -> None:
    doc = report_doc(
        "2021",
        applications=application_rows(L2021, numbered),
        reviews=review_rows(L2021, numbered),
    )
    report = parse_document(doc)
    assert report.template == "2021"
    for r in L2021.application_rows:
        for c in L2021.application_columns:
            assert report.applications[r.key][c.key] == int(numbered(r.key, c.key))
    for g in L2021.review_groups:
        for o in L2021.review_outcomes:
            assert report.reviews[g.key][o.key] == int(numbered(g.key, o.key))
    assert report.confidence.score == 1.0
    assert report.evidence.missing_rows == []
    assert report.evidence.tables_found == ["active_disclosure", "applications", "reviews"]


def test_format_comes_from_the_labels_not_the_year() -> None:
    # a 2020 report printed on the 2021 form is a 2021-layout record (template_mismatch is a rule's job)
    doc = report_doc("2021", title="某某镇人民政府2020年政府信息公开工作年度报告")
    report = parse_document(doc)
    assert (report.year, report.template) == (2020, "2021")
    doc = report_doc("2019", title="某某镇人民政府2022年政府信息公开工作年度报告")
    assert parse_document(doc).template == "2019"


def test_wrapped_header_cells_are_read() -> None:
    rows = disclosure_rows(L2019, lambda item, f: "7" if f == "new_published" else "1")
    rows[1] = ("信息内容", "本年新\n制作数量", "本年新\n公开数量", "对外公开\n总数量")
    reviews = [
        REVIEW_HEADER[0],
        tuple(c.replace("结果", "结果\n") for c in REVIEW_HEADER[1]),
        REVIEW_HEADER[2],
        tuple(str(i) for i in range(15)),
    ]
    report = parse_document(
        report_doc("2019", disclosure=rows, applications=application_rows(L2019), reviews=reviews)
    )
    assert report.active_disclosure["regulations"] == {
        "new_made": 1,
        "new_published": 7,
        "total_published": 1,
    }
    assert report.reviews["litigation_after_review"]["total"] == 14
    assert report.confidence.score == 1.0


def test_rows_that_lost_their_leading_cells_land_in_their_columns() -> None:
    # seed 002: the header's columns start at index 2; (七)总计 is printed one cell left
    header = [
        (
            "(本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和)",
            "",
            "申请人情况",
            "",
            "",
            "",
            "",
            "",
            "总计",
            "",
        ),
        ("", "", "自然人", "法人或其他组织", "", "", "", "", "", ""),
        ("", "", "", "商业企业", "科研机构", "社会公益组织", "法律服务机构", "其他", "", ""),
    ]
    rows = [*header]
    for r in L2021.application_rows:
        values = [numbered(r.key, c.key) for c in L2021.application_columns]
        if r.key == "total":
            rows.append(("(七) 总计", *values, "", ""))
        elif r.key == "other_misc":
            rows.append(("3.其他", "", *values, ""))
        else:
            rows.append((r.official, "", *values, ""))
    report = parse_document(report_doc("2021", applications=rows))
    for key in ("total", "other_misc", "granted"):
        assert report.applications[key] == {
            c.key: int(numbered(key, c.key)) for c in L2021.application_columns
        }


def test_shifted_row_keeps_a_blank_total_blank() -> None:
    header = [
        ("勾稽关系", "", "申请人情况", "", "", "", "", "", "总计", ""),
        ("", "", "自然人", "商业企业", "科研机构", "社会公益组织", "法律服务机构", "其他", "", ""),
    ]
    rows = [*header, ("（七）总计", "5", "1", "0", "0", "0", "0", "", "", "")]
    report = parse_document(report_doc("2021", applications=rows))
    assert report.applications["total"] == {
        "natural_person": 5,
        "commercial": 1,
        "research": 0,
        "social_welfare": 0,
        "legal_service": 0,
        "other_org": 0,
        "total": None,
    }
    assert report.confidence.score < 1.0


def test_group_and_item_labels_spread_over_three_cells() -> None:
    rows = [
        *application_rows(L2019)[:3],
        ("三、本年度办理结果", "（一）予以公开", "", "", "", "", "", "4"),  # a lost cell under the labels
        ("", "（三）不予公开", "1.属于国家秘密", "1", "2", "3", "4", "5", "6", "21"),
        ("", "", "2.其他法律行政法规禁止公开", "0", "0", "0", "0", "0", "0", "0"),
    ]
    report = parse_document(report_doc("2019", applications=rows))
    assert report.applications["granted"]["total"] == 4
    assert report.applications["granted"]["natural_person"] is None
    assert report.applications["denied_state_secret"]["other_org"] == 6
    assert report.applications["denied_state_secret"]["total"] == 21
    assert "applications.granted.natural_person" in report.confidence.uncertain_cells


def test_full_width_digits_and_blank_marks() -> None:
    rows = [
        *application_rows(L2021)[:3],
        ("一、本年新收政府信息公开申请数量", "１２", "/", "-", "—", "无", "——", "１２"),
    ]
    report = parse_document(report_doc("2021", applications=rows))
    assert report.applications["new_received"] == {
        "natural_person": 12,
        "commercial": None,
        "research": None,
        "social_welfare": None,
        "legal_service": 0,
        "other_org": None,
        "total": 12,
    }


def test_amount_units() -> None:
    def value(item: str, f: str) -> str:
        return {"projects": "6", "amount_wan_yuan": "251000元"}.get(f, "0")

    report = parse_document(
        report_doc("2019", disclosure=disclosure_rows(L2019, value), applications=application_rows(L2019))
    )
    assert report.active_disclosure["procurement"] == {"projects": 6, "amount_wan_yuan": 25.1}
    assert report.evidence.units["active_disclosure.procurement.amount_wan_yuan"] == "元"
    assert report.evidence.raw_cells["active_disclosure.procurement.amount_wan_yuan"] == "251000元"

    rows = disclosure_rows(L2021, lambda item, f: "12.5" if f == "amount_wan_yuan" else "0")
    rows = [tuple(c.replace("本年收费金额", "本年收费金额（单位：万元）") for c in r) for r in rows]
    report = parse_document(report_doc("2021", disclosure=rows))
    assert report.active_disclosure["fees"]["amount_wan_yuan"] == 12.5
    assert report.evidence.units["active_disclosure.fees.amount_wan_yuan"] == "万元"


def test_negative_change_is_read() -> None:
    rows = disclosure_rows(L2019, lambda item, f: "-3" if (item, f) == ("licensing", "change") else "2")
    report = parse_document(report_doc("2019", disclosure=rows, applications=application_rows(L2019)))
    assert report.active_disclosure["licensing"] == {"previous_items": 2, "change": -3, "decisions": 2}


def test_typo_labels_are_matched_and_reported() -> None:
    rows = application_rows(L2021, numbered)
    renamed = {
        "4.无正当理由大量反复申请": "4.无正当理由由大量反复申请",
        "1.信访举报投诉类申请": "1.信访举报类申请",
        "2.没有现成信息需要另行制作": "2.没有现成信息需另行制作",
    }
    rows = [(renamed.get(r[0], r[0]), *r[1:]) for r in rows]
    report = parse_document(report_doc("2021", applications=rows))
    for key in ("rejected_mass_repeat", "rejected_complaint", "unavailable_needs_creation"):
        assert report.applications[key]["natural_person"] == int(numbered(key, "natural_person"))
    found = {d.found for d in report.evidence.label_deviations}
    assert set(renamed.values()) <= found
    assert report.confidence.score < 1.0  # the unknown typo was a fuzzy match
    assert any("fuzzy" in r for r in report.confidence.reasons)


def test_caption_twenty_six_is_a_deviation() -> None:
    rows = disclosure_rows(L2019)
    rows = [tuple(c.replace("第二十条第（六）项", "第二十六条第（六）项") for c in r) for r in rows]
    report = parse_document(report_doc("2019", disclosure=rows, applications=application_rows(L2019)))
    assert "第二十六条第（六）项" in report.evidence.captions
    assert any(
        d.where == "caption" and d.found == "第二十六条第（六）项" for d in report.evidence.label_deviations
    )
    assert report.active_disclosure["punishment"] == {"previous_items": 0, "change": 0, "decisions": 0}


def test_table_printed_before_its_heading() -> None:
    doc = report_doc("2021", reviews=review_rows(L2021, lambda g, o: "1" if o != "total" else "4"))
    blocks = doc.blocks
    heading = next(i for i, b in enumerate(blocks) if isinstance(b, Paragraph) and b.text.startswith("四、"))
    blocks[heading], blocks[heading + 1] = blocks[heading + 1], blocks[heading]
    report = parse_document(Document(blocks=blocks, media_type="text/plain"))
    assert report.reviews["review"] == {"upheld": 1, "corrected": 1, "other": 1, "pending": 1, "total": 4}
    assert report.evidence.sections_found[:4] == ["overview", "active_disclosure", "applications", "reviews"]


def test_heading_inside_a_table_cell() -> None:
    doc = report_doc("2021")
    blocks = [b for b in doc.blocks if not (isinstance(b, Paragraph) and b.text.startswith("四、"))]
    reviews = next(i for i, b in enumerate(blocks) if getattr(b, "rows", None) and b.rows[0][0] == "行政复议")
    blocks[reviews] = table(("四、政府信息公开行政复议、行政诉讼情况",) + ("",) * 14, *review_rows(L2021))
    report = parse_document(Document(blocks=blocks, media_type="text/plain"))
    assert "reviews" in report.evidence.sections_found
    assert report.reviews["review"]["total"] == 0


def test_reviews_split_over_rows() -> None:
    rows = [*REVIEW_HEADER, ("1", "0", "0", "0", "1"), ("2", "0", "0", "0", "2"), ("0", "0", "0", "3", "3")]
    report = parse_document(report_doc("2021", reviews=rows))
    assert report.reviews["litigation_direct"]["total"] == 2
    assert report.reviews["litigation_after_review"] == {
        "upheld": 0,
        "corrected": 0,
        "other": 0,
        "pending": 3,
        "total": 3,
    }


def test_merged_cells_repeated_into_their_slots() -> None:
    # an HTML grid: 本年新公开数量 spans two columns in the header, 上一年项目数量 in the row
    rows = [
        ("第二十条第（五）项",) * 5,
        ("信息内容", "上一年项目数量", "本年增/减", "本年增/减", "处理决定数量"),
        ("行政许可", "5", "5", "3", "9"),
        ("其他对外管理服务事项", "1", "1", "2", "4"),
    ]
    report = parse_document(report_doc("2019", disclosure=rows, applications=application_rows(L2019)))
    assert report.active_disclosure["licensing"] == {"previous_items": 5, "change": 3, "decisions": 9}
    assert report.active_disclosure["other_services"] == {"previous_items": 1, "change": 2, "decisions": 4}


def test_missing_and_extra_rows_are_evidence() -> None:
    rows = [r for r in application_rows(L2021) if r[0] != "8.属于行政查询事项"]
    rows.insert(8, ("", "小计", "0", "0", "0", "0", "0", "0", "0"))
    report = parse_document(report_doc("2021", applications=rows))
    assert "applications.denied_query_matter" in report.evidence.missing_rows
    assert all(v is None for v in report.applications["denied_query_matter"].values())
    assert any("小计" in r for r in report.evidence.extra_rows)


def test_blank_tables_stay_blank() -> None:
    blank = lambda *_: ""  # noqa: E731
    doc = report_doc(
        "2021",
        disclosure=disclosure_rows(L2021, blank),
        applications=application_rows(L2021, blank),
        reviews=list(REVIEW_HEADER),
    )
    report = parse_document(doc)
    assert all(v is None for _, v in report.iter_cells())
    assert report.evidence.tables_found == ["active_disclosure", "applications", "reviews"]


def test_align_values_prefers_the_header() -> None:
    row = split_row(("label", "1", "2", "", "4"))
    aligned = align_values(row, 3, [(1,), (2,), (4,)])
    assert aligned.how == "header"
    assert [c[1] if c else None for c in aligned.cells] == ["1", "2", "4"]


def test_align_values_counts_cells_when_the_header_is_off() -> None:
    row = split_row(("", "（三）不予公开", "1.属于国家秘密", *"1234567"))
    aligned = align_values(row, 7, [(1,), (2,), (3,), (4,), (5,), (6,), (7,)])
    assert aligned.how == "count"
    assert [c[1] for c in aligned.cells if c] == list("1234567")


def test_pick_in_span_skips_a_merge_continued_from_the_left() -> None:
    assert pick_in_span(("行政许可", "5", "5", "3", "9"), (2, 3)) == 3
    assert pick_in_span(("x", "0", "0", "0"), (2, 3)) == 2


def test_an_extra_subtotal_column_is_read_past() -> None:
    header = [
        ("勾稽关系", "申请人情况", "", "", "", "", "", "", "总计"),
        ("", "自然人", "商业企业", "科研机构", "社会公益组织", "法律服务机构", "其他", "小计", ""),
    ]
    rows = [*header, ("一、本年新收政府信息公开申请数量", "5", "1", "", "", "", "2", "3", "8")]
    report = parse_document(report_doc("2021", applications=rows))
    assert report.applications["new_received"] == {
        "natural_person": 5,
        "commercial": 1,
        "research": None,
        "social_welfare": None,
        "legal_service": None,
        "other_org": 2,
        "total": 8,
    }
    assert "小计" in report.evidence.extra_rows
