"""Cells recovered from run-together text (``shared.parse.flat``).

Two kinds of evidence: the real run-together corpus (``/work/shared/corpus``, labels made
by hand with the same arithmetic) and small synthetic documents, one per rule.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.parse.flat import FlatTables, detect_flat_template, read_flat_tables
from shared.templates import TEMPLATES, Template

BODY_MARKER = "==================== 正文 ===================="
SECTIONS = ("active_disclosure", "applications", "reviews")
MIN_COVERAGE = 0.97


# ---------------------------------------------------------------- the corpus


def _flat_corpus_files(corpus_dir: Path) -> list[Path]:
    return sorted(p for p in (corpus_dir / "raw").glob("*.txt") if BODY_MARKER in p.read_text("utf-8"))


def _body(path: Path) -> str:
    return path.read_text("utf-8").split(BODY_MARKER, 1)[1]


def _labelled_cells(label: dict[str, object]) -> dict[str, object]:
    cells: dict[str, object] = {}
    for section in SECTIONS:
        table = label.get(section) or {}
        assert isinstance(table, dict)
        for row, columns in table.items():
            for column, value in columns.items():
                cells[f"{section}.{row}.{column}"] = value
    return cells


def _read_corpus_file(corpus_dir: Path, path: Path) -> tuple[FlatTables, dict[str, object], str | None]:
    label = json.loads((corpus_dir / "labels" / f"{path.stem}.json").read_text("utf-8"))
    text = _body(path)
    template_id = detect_flat_template(text)
    assert template_id is not None, f"{path.name}: no template detected"
    return read_flat_tables(text, TEMPLATES[template_id]), label, template_id


def test_every_returned_corpus_cell_equals_its_label_and_coverage_is_high(
    corpus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _flat_corpus_files(corpus_dir)
    assert len(files) >= 18, "the run-together corpus files (002–008, P001–P007, P022–P025)"
    labelled = returned = 0
    wrong: list[str] = []
    per_file: list[str] = []
    for path in files:
        tables, label, template_id = _read_corpus_file(corpus_dir, path)
        assert template_id == label["template"], path.name
        expected = _labelled_cells(label)
        got = {p: tables.cells[p] for p in expected if p in tables.cells}
        for cell_path, value in got.items():
            want = expected[cell_path]
            if value != want or (value is None) != (want is None) or isinstance(value, bool):
                wrong.append(f"{path.stem} {cell_path}: got {value!r}, label {want!r}")
        labelled += len(expected)
        returned += len(got)
        per_file.append(f"{path.stem} {len(got)}/{len(expected)}")
    coverage = returned / labelled
    with capsys.disabled():
        print(
            f"\nflat corpus: {returned}/{labelled} labelled cells returned ({coverage:.2%}), "
            f"{len(wrong)} differ from the label; " + ", ".join(per_file)
        )
    assert not wrong, "\n".join(wrong)
    assert coverage >= MIN_COVERAGE


def test_corpus_ambiguous_section_two_runs_are_left_out_with_their_candidates(corpus_dir: Path) -> None:
    tables, _label, _tid = _read_corpus_file(corpus_dir, corpus_dir / "raw" / "P001.txt")
    for field in ("new_made", "new_published", "total_published"):
        path = f"active_disclosure.normative_documents.{field}"
        assert path not in tables.cells
        assert "1|0|77" in tables.uncertain[path] and "10|7|7" in tables.uncertain[path]


def test_corpus_rows_with_two_splits_are_settled_by_the_column_identities(corpus_dir: Path) -> None:
    # 004: 予以公开 "270020130" reads 27|0|0|2|0|1|30 or 2|7|0|0|20|1|30; only the first reconciles
    tables, _label, _tid = _read_corpus_file(corpus_dir, corpus_dir / "raw" / "004.txt")
    columns = [c.key for c in TEMPLATES["2021"].application_columns]
    assert [tables.cells[f"applications.granted.{c}"] for c in columns] == [27, 0, 0, 2, 0, 1, 30]
    assert not any(p.startswith("applications.") for p in tables.uncertain)


def test_corpus_faulty_filing_is_read_as_printed_not_repaired(corpus_dir: Path) -> None:
    # 003 (Pingtan 2020): the outcome rows add up to 26 natural persons against a 总计 of 20
    tables, _label, _tid = _read_corpus_file(corpus_dir, corpus_dir / "raw" / "003.txt")
    layout = TEMPLATES["2019"]
    outcomes = sum(tables.cells[f"applications.{row}.natural_person"] or 0 for row in layout.outcome_rows)
    assert outcomes == 26
    assert tables.cells["applications.total.natural_person"] == 20


# ---------------------------------------------------------------- synthetic documents

COLUMNS = tuple(c.key for c in TEMPLATES["2021"].application_columns)
GROUP_HEADERS = {
    "granted": "三、本年度办理结果",
    "denied_state_secret": "（三）不予公开",
    "unavailable_not_held": "（四）无法提供",
    "rejected_complaint": "（五）不予处理",
    "other_no_correction": "（六）其他处理",
}
REVIEW_HEADER = (
    "四、政府信息公开行政复议、行政诉讼情况行政复议行政诉讼结果维持结果纠正其他结果尚未审结总计"
    "未经复议直接起诉复议后起诉结果维持结果纠正其他结果尚未审结总计结果维持结果纠正其他结果尚未审结总计"
)


def _row_run(values: list[int]) -> str:
    return "".join(str(v) for v in values)


def _flat_document(
    layout: Template,
    *,
    rows: dict[str, str] | None = None,
    disclosure: dict[str, str] | None = None,
    reviews: str = "0" * 15,
) -> str:
    """A report flattened the way the corpus crawler does it: labels and cells run together."""
    rows = rows or {}
    disclosure = disclosure or {}
    parts = ["一、总体情况本机关认真贯彻落实《条例》。二、主动公开政府信息情况"]
    caption = None
    for item in layout.disclosure:
        if item.caption != caption:
            caption = item.caption
            parts.append(f"{caption}信息内容" + "".join(f.official for f in item.fields))
        default = "0" * len(item.fields)
        parts.append(item.label.official + disclosure.get(item.key, default))
    parts.append(
        "三、收到和处理政府信息公开申请情况（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）"
        "申请人情况自然人法人或其他组织总计商业企业科研机构社会公益组织法律服务机构其他"
    )
    for label in layout.application_rows:
        parts.append(GROUP_HEADERS.get(label.key, "") + label.official + rows.get(label.key, "0" * 7))
    parts.append(REVIEW_HEADER + reviews + "五、存在的主要问题及改进情况无。六、其他需要报告的事项无。")
    return "".join(parts)


def _row(tables: FlatTables, row: str) -> list[object]:
    return [tables.cells.get(f"applications.{row}.{c}", "?") for c in COLUMNS]


@pytest.mark.parametrize("template_id", ["2019", "2021"])
def test_a_synthetic_report_of_either_layout_is_read_completely(template_id: str) -> None:
    layout = TEMPLATES[template_id]
    rows = {
        "new_received": "640020470",
        "granted": "270020130",
        "partially_granted": "500000 5",
        "denied_internal_affairs": "1000001",
        "denied_enforcement_file": "6000006",
        "denied_query_matter": "1000001",
        "unavailable_not_held": "220000325",
        "total": "630020469",
        "carried_forward": "1000001",
    }
    rows["other_misc" if template_id == "2021" else "other_handling"] = "1000001"
    text = _flat_document(layout, rows=rows, reviews="10203120001200000")
    assert detect_flat_template(text) == template_id
    tables = read_flat_tables(text, layout)
    paths = [f"applications.{r.key}.{c}" for r in layout.application_rows for c in COLUMNS]
    assert all(p in tables.cells for p in paths), [p for p in paths if p not in tables.cells]
    assert not tables.uncertain, tables.uncertain
    assert _row(tables, "new_received") == [64, 0, 0, 2, 0, 4, 70]
    assert _row(tables, "granted") == [27, 0, 0, 2, 0, 1, 30]
    assert _row(tables, "unavailable_not_held") == [22, 0, 0, 0, 0, 3, 25]
    assert tables.raw["applications.granted.total"] == "270020130"
    assert [tables.cells[f"reviews.litigation_direct.{o}"] for o in ("upheld", "total")] == [12, 12]
    assert tables.cells["reviews.review.other"] == 2
    assert f"applications.{layout.application_rows[-1].key}" in tables.found_rows
    assert "reviews.review" in tables.found_rows


def test_no_leading_zeros_decides_a_split() -> None:
    layout = TEMPLATES["2021"]
    text = _flat_document(layout, disclosure={"normative_documents": "0012", "regulations": "000"})
    tables = read_flat_tables(text, layout)
    doc = "active_disclosure.normative_documents"
    assert [tables.cells[f"{doc}.{f}"] for f in ("made", "repealed", "in_force")] == [0, 0, 12]
    assert [tables.cells[f"active_disclosure.regulations.{f}"] for f in ("made", "repealed", "in_force")] == [
        0,
        0,
        0,
    ]


def test_a_space_is_a_cell_boundary() -> None:
    layout = TEMPLATES["2021"]
    heading = "三、收到和处理政府信息公开申请情况"
    run_together = read_flat_tables(f"{heading}（一）予以公开330000033", layout)
    # 33|0|0|0|0|0|33 or 3|30|0|0|0|0|33, and no other row to reconcile with
    assert "applications.granted.natural_person" not in run_together.cells
    assert "3|30|0|0|0|0|33" in run_together.uncertain["applications.granted.natural_person"]
    assert run_together.cells["applications.granted.total"] == 33  # equal in both readings
    spaced = read_flat_tables(f"{heading}（一）予以公开33 0 0 0 0 0 33", layout)
    assert _row(spaced, "granted") == [33, 0, 0, 0, 0, 0, 33]
    assert not spaced.uncertain


def test_a_sign_starts_a_signed_cell_and_only_change_may_be_negative() -> None:
    layout = TEMPLATES["2019"]
    text = _flat_document(layout, disclosure={"fees": "15-15", "licensing": "88-720"})
    tables = read_flat_tables(text, layout)
    assert tables.cells["active_disclosure.fees.previous_items"] == 15
    assert tables.cells["active_disclosure.fees.change"] == -15
    # 88|-7|20 or 88|-72|0 (8|8|-720 would make 处理决定数量 negative): only the 88 is certain
    assert tables.cells["active_disclosure.licensing.previous_items"] == 88
    for field in ("change", "decisions"):
        reason = tables.uncertain[f"active_disclosure.licensing.{field}"]
        assert "88|-7|20" in reason and "88|-72|0" in reason and "8|8|-720" not in reason
    row_with_sign = read_flat_tables(_flat_document(layout, rows={"granted": "1-10000-1"}), layout)
    assert "applications.granted.natural_person" not in row_with_sign.cells
    assert "applications.granted.natural_person" in row_with_sign.uncertain


@pytest.mark.parametrize(
    ("template_id", "item", "run", "expected"),
    [
        ("2019", "procurement", "2笔 984361元", {"projects": 2, "amount_wan_yuan": 98.4361}),
        ("2019", "procurement", "3 570.6387万元", {"projects": 3, "amount_wan_yuan": 570.6387}),
        ("2021", "fees", "251000元", {"amount_wan_yuan": 25.1}),
        ("2021", "fees", "24252.311082", {"amount_wan_yuan": 24252.311082}),
        ("2021", "fees", "0", {"amount_wan_yuan": 0}),
    ],
)
def test_amounts_keep_their_decimal_point_and_yuan_become_wan_yuan(
    template_id: str, item: str, run: str, expected: dict[str, float]
) -> None:
    layout = TEMPLATES[template_id]
    tables = read_flat_tables(_flat_document(layout, disclosure={item: run}), layout)
    assert {f: tables.cells[f"active_disclosure.{item}.{f}"] for f in expected} == expected


def test_a_header_in_yuan_converts_an_amount_without_a_unit() -> None:
    layout = TEMPLATES["2019"]
    text = _flat_document(layout, disclosure={"procurement": "2 263042532"}).replace(
        "采购总金额", "采购总金额（元）"
    )
    tables = read_flat_tables(text, layout)
    assert tables.cells["active_disclosure.procurement.amount_wan_yuan"] == 26304.2532


def test_an_ambiguous_run_is_left_out_with_every_candidate_listed() -> None:
    layout = TEMPLATES["2019"]
    text = _flat_document(layout, disclosure={"normative_documents": "1077", "procurement": "547.9659万元"})
    tables = read_flat_tables(text, layout)
    for field in ("new_made", "new_published", "total_published"):
        path = f"active_disclosure.normative_documents.{field}"
        assert path not in tables.cells
        assert "1|0|77" in tables.uncertain[path] and "10|7|7" in tables.uncertain[path]
    reason = tables.uncertain["active_disclosure.procurement.amount_wan_yuan"]
    assert "5|47.9659万元" in reason and "54|7.9659万元" in reason
    assert "active_disclosure.procurement.projects" not in tables.cells


def _rows_with(granted: str, total: str) -> dict[str, str]:
    """33 new applications (printed with spaces, so unambiguous); everything else 0."""
    return {"new_received": "33 0 0 0 0 0 33", "granted": granted, "total": total}


def test_a_row_with_two_valid_splits_is_settled_by_the_column_identities() -> None:
    layout = TEMPLATES["2021"]
    # 予以公开 and 总计 "330000033" each read 33|0|0|0|0|0|33 or 3|30|0|0|0|0|33; only the first
    # makes 新收 + 结转 = 总计 + 结转下年度 and the outcome rows add up to 总计 in every column
    text = _flat_document(layout, rows=_rows_with("330000033", "330000033"))
    tables = read_flat_tables(text, layout)
    assert _row(tables, "granted") == [33, 0, 0, 0, 0, 0, 33]
    assert _row(tables, "total") == [33, 0, 0, 0, 0, 0, 33]
    assert not tables.uncertain


def test_rows_ambiguous_in_the_same_way_everywhere_stay_uncertain() -> None:
    layout = TEMPLATES["2021"]
    # 新收, 予以公开 and 总计 all "330000033": both readings reconcile every column
    rows = {**_rows_with("330000033", "330000033"), "new_received": "330000033"}
    tables = read_flat_tables(_flat_document(layout, rows=rows), layout)
    for row in ("new_received", "granted", "total"):
        assert _row(tables, row)[:2] == ["?", "?"]
        assert _row(tables, row)[2:] == [0, 0, 0, 0, 33]
        assert "3|30|0|0|0|0|33" in tables.uncertain[f"applications.{row}.commercial"]


def test_when_nothing_reconciles_only_what_every_reading_agrees_on_is_kept() -> None:
    layout = TEMPLATES["2021"]
    # a faulty filing: 总计 says 30, the outcome rows say 33 — neither split of 予以公开 reconciles
    rows = _rows_with("330000033", _row_run([30, 0, 0, 0, 0, 0, 30]))
    tables = read_flat_tables(_flat_document(layout, rows=rows), layout)
    assert _row(tables, "granted")[2:] == [0, 0, 0, 0, 33]
    for column in ("natural_person", "commercial"):
        reason = tables.uncertain[f"applications.granted.{column}"]
        assert "no combination of row splits makes every column reconcile" in reason
        assert "33|0|0|0|0|0|33" in reason and "3|30|0|0|0|0|33" in reason
    assert _row(tables, "total") == [30, 0, 0, 0, 0, 0, 30]  # printed as filed, not repaired


def test_a_row_that_adds_up_in_no_reading_keeps_only_what_the_digits_force() -> None:
    layout = TEMPLATES["2021"]
    tables = read_flat_tables(_flat_document(layout, rows={"granted": "5000004"}), layout)
    # seven digits are seven cells, whatever they add up to; the rules will see 5 ≠ 4
    assert _row(tables, "granted") == [5, 0, 0, 0, 0, 0, 4]
    assert "makes the totals equal the sums" in tables.uncertain["applications.granted.total"]


def test_a_label_followed_directly_by_the_next_is_a_blank_row() -> None:
    layout = TEMPLATES["2021"]
    tables = read_flat_tables(_flat_document(layout, rows={"denied_state_secret": ""}), layout)
    assert _row(tables, "denied_state_secret") == [None] * 7
    assert _row(tables, "denied_law_prohibited") == [0] * 7


@pytest.mark.parametrize(
    "run",
    [
        "1234567890" * 4,
        "9" * 40,
        "3141592653589793238462643383279502884197",
        "12" * 60,
    ],
)
def test_a_pathological_run_is_bounded_and_never_guessed(run: str) -> None:
    layout = TEMPLATES["2021"]
    text = _flat_document(layout, rows={"granted": run}, reviews=run)
    tables = read_flat_tables(text, layout)
    for column in COLUMNS:
        assert f"applications.granted.{column}" not in tables.cells
        assert f"applications.granted.{column}" in tables.uncertain
    assert not any(p.startswith("reviews.") for p in tables.cells)
    assert _row(tables, "new_received") == [0] * 7  # the rest of the table is unaffected


_COUNT = st.one_of(st.just(0), st.integers(0, 9), st.integers(10, 999))


@st.composite
def _consistent_table(draw: st.DrawFn) -> tuple[dict[str, list[int]], list[int]]:
    """A section 三 whose columns reconcile, and a section 四 whose groups add up."""
    layout = TEMPLATES["2021"]
    width = len(COLUMNS) - 1
    table = {
        row: [draw(_COUNT) if draw(st.booleans()) else 0 for _ in range(width)] for row in layout.outcome_rows
    }
    total = [sum(table[row][c] for row in layout.outcome_rows) for c in range(width)]
    carried_over = [draw(st.integers(0, t)) for t in total]
    forward = [draw(st.integers(0, 5)) for _ in range(width)]
    table["total"] = total
    table["carried_over"] = carried_over
    table["carried_forward"] = forward
    table["new_received"] = [t + f - o for t, f, o in zip(total, forward, carried_over, strict=True)]
    for row in table.values():
        row.append(sum(row))
    reviews: list[int] = []
    for _group in range(3):
        outcomes = [draw(_COUNT) for _ in range(4)]
        reviews += [*outcomes, sum(outcomes)]
    return table, reviews


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_consistent_table())
def test_a_consistent_table_is_never_misread(drawn: tuple[dict[str, list[int]], list[int]]) -> None:
    table, reviews = drawn
    layout = TEMPLATES["2021"]
    text = _flat_document(
        layout, rows={row: _row_run(values) for row, values in table.items()}, reviews=_row_run(reviews)
    )
    tables = read_flat_tables(text, layout)
    for row, values in table.items():
        for column, value in zip(COLUMNS, values, strict=True):
            path = f"applications.{row}.{column}"
            assert path in tables.cells or path in tables.uncertain
            if path in tables.cells:
                assert tables.cells[path] == value, (path, tables.raw[path])
    outcomes = [o.key for o in layout.review_outcomes]
    for n, group in enumerate(layout.review_groups):
        for m, outcome in enumerate(outcomes):
            path = f"reviews.{group.key}.{outcome}"
            if path in tables.cells:
                assert tables.cells[path] == reviews[n * len(outcomes) + m]


def test_detect_flat_template_decides_by_markers_not_year() -> None:
    assert detect_flat_template(_flat_document(TEMPLATES["2019"])) == "2019"
    assert detect_flat_template(_flat_document(TEMPLATES["2021"])) == "2021"
    assert detect_flat_template("平潭综合实验区2021年政府信息公开工作年度报告") is None


def test_text_without_tables_gives_nothing() -> None:
    tables = read_flat_tables("一、总体情况今年我区认真贯彻落实《条例》。", TEMPLATES["2021"])
    assert tables == FlatTables()
