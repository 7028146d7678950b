"""Property: a random record rendered into each carrier layout parses back to itself.

Layouts (the seeds show the text ones): tab-separated (seed 000: ragged label cells,
one-label rows under the header's columns, grouped rows with three label slots),
pipe-separated (a regular grid with merged cells repeated), one cell per line
(seed 004: the header lost its merged cells, so rows are aligned by their own
cells), and HTML with rowspan/colspan headers. Everything goes through
``shared.parse.read_report`` so the extractors are exercised too.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.parse import read_report
from shared.record import Report, empty_report
from shared.templates import Template, TemplateId

REPORT_YEAR: dict[TemplateId, int] = {"2019": 2020, "2021": 2022}
AGENCY = "测试县统计局"
CHECK = "（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）"
RESULTS = "三、本年度办理结果"
GROUP_LABELS = {
    "denied": "（三）不予公开",
    "unavailable": "（四）无法提供",
    "rejected": "（五）不予处理",
    "other": "（六）其他处理",
}
ORG_COLUMNS = ("商业企业", "科研机构", "社会公益组织", "法律服务机构", "其他")
OUTCOMES = ("结果维持", "结果纠正", "其他结果", "尚未审结", "总计")

Cell = int | float | None

# ------------------------------------------------------------------ random records


def _value(path: str) -> st.SearchStrategy[Cell]:
    if path.endswith(".change"):
        number: st.SearchStrategy[Cell] = st.integers(-99, 99)
    elif path.endswith(".amount_wan_yuan"):
        number = st.one_of(st.integers(0, 99999), st.integers(1, 999999).map(lambda n: n / 100))
    else:
        number = st.integers(0, 9999)
    return st.one_of(st.none(), number, number)  # about a third blank


@st.composite
def records(draw: st.DrawFn) -> Report:
    template_id: TemplateId = draw(st.sampled_from(("2019", "2021")))
    report = empty_report(template_id)
    for path, _ in list(report.iter_cells()):
        report.set_cell(path, draw(_value(path)))
    return report


def text(value: Cell) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------ logical rows


def _group(key: str) -> str | None:
    for prefix, group in (("denied_", "denied"), ("unavailable_", "unavailable"), ("rejected_", "rejected")):
        if key.startswith(prefix):
            return group
    return "other" if key in ("other_no_correction", "other_no_fee", "other_misc") else None


def application_labels(layout: Template) -> list[tuple[str, str, str, str]]:
    """(row key, results-group cell, group cell, row label) in printed order."""
    out: list[tuple[str, str, str, str]] = []
    seen_groups: set[str] = set()
    first_result = True
    for row in layout.application_rows:
        if row.key in ("new_received", "carried_over", "carried_forward"):
            out.append((row.key, "", "", row.official))
            continue
        results = RESULTS if first_result else ""
        first_result = False
        group = _group(row.key)
        group_cell = ""
        if group and group not in seen_groups:
            seen_groups.add(group)
            group_cell = GROUP_LABELS[group]
        out.append((row.key, results, group_cell if group else "", row.official))
    return out


def disclosure_blocks(layout: Template) -> list[tuple[str, tuple[str, ...], list[Any]]]:
    """(caption, header field labels, items) per sub-table."""
    blocks: list[tuple[str, tuple[str, ...], list[Any]]] = []
    for item in layout.disclosure:
        if not blocks or blocks[-1][0] != item.caption:
            labels = tuple(
                f.official + ("（单位：万元）" if f.key == "amount_wan_yuan" else "") for f in item.fields
            )
            blocks.append((item.caption, labels, []))
        blocks[-1][2].append(item)
    return blocks


def app_values(report: Report, key: str, layout: Template) -> list[str]:
    return [text(report.applications[key][c.key]) for c in layout.application_columns]


def review_values(report: Report, layout: Template) -> list[str]:
    return [text(report.reviews[g.key][o.key]) for g in layout.review_groups for o in layout.review_outcomes]


def paragraphs_head(report: Report) -> list[str]:
    year = REPORT_YEAR[report.template]  # type: ignore[index]
    return [
        f"{AGENCY}{year}年政府信息公开工作年度报告",
        "一、总体情况",
        f"{year}年，我局认真贯彻落实《条例》。",
        "二、主动公开政府信息情况",
    ]


TAIL = ["五、存在的主要问题及改进情况", "宣传不够。", "六、其他需要报告的事项", "无。"]

# ------------------------------------------------------------------ text layouts


def grid_rows(
    report: Report, layout: Template, style: str
) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """Section 二, 三, 四 rows as cell lists, shaped like the seeds of each text layout."""
    disclosure: list[list[str]] = []
    for caption, labels, items in disclosure_blocks(layout):
        if style == "regular":
            disclosure.append([caption] * 4)
            disclosure.append(["信息内容", *labels, *[labels[-1]] * (3 - len(labels))])
        else:
            disclosure.append([caption] if style == "lines" else [caption, "", "", ""])
            disclosure.append(["信息内容", *labels] + ([""] * (3 - len(labels)) if style == "tabs" else []))
        for item in items:
            values = [text(report.active_disclosure[item.key][f.key]) for f in item.fields]
            if style == "regular":
                values += [values[-1]] * (3 - len(values))
            elif style == "tabs":
                values += [""] * (3 - len(values))
            disclosure.append([item.label.official, *values])

    applications: list[list[str]] = []
    if style == "regular":
        applications += [
            [CHECK] * 3 + ["申请人情况"] * 7,
            [CHECK] * 3 + ["自然人", *["法人或其他组织"] * 5, "总计"],
            [CHECK] * 3 + ["自然人", *ORG_COLUMNS, "总计"],
        ]
    elif style == "tabs":  # seed 000
        applications += [
            [CHECK, "申请人情况", "", "", "", "", "", "总计"],
            ["", "自然人", "法人或其他组织"],
            ["", "", *ORG_COLUMNS],
        ]
    else:  # seed 004: the header lost its merged cells
        applications += [
            [CHECK, "申请人情况"],
            ["", "自然人", "法人或其他组织", "总计"],
            ["", "", *ORG_COLUMNS, ""],
        ]
    current_results = current_group = ""
    for key, results, group, label in application_labels(layout):
        values = app_values(report, key, layout)
        if not results and not group and key in ("new_received", "carried_over", "carried_forward"):
            labels = [label] * 3 if style == "regular" else [label]
        elif style == "regular":
            current_results = results or current_results
            current_group = group or (current_group if _group(key) else label)
            labels = [current_results, current_group if _group(key) else label, label]
        elif style == "tabs":
            labels = [results, group, label]
        else:
            labels = [results, group, label] if _group(key) else [results, label]
        applications.append([*labels, *values])

    reviews: list[list[str]]
    values = review_values(report, layout)
    if style == "regular":
        reviews = [
            ["行政复议"] * 5 + ["行政诉讼"] * 10,
            list(OUTCOMES) + ["未经复议直接起诉"] * 5 + ["复议后起诉"] * 5,
            list(OUTCOMES) * 3,
        ]
    elif style == "tabs":  # seed 000
        reviews = [
            ["行政复议", "", "", "", "", "行政诉讼"],
            [*OUTCOMES, "未经复议直接起诉", "", "", "", "", "复议后起诉"],
            ["", "", "", "", "", *OUTCOMES, *OUTCOMES],
        ]
    else:  # seed 004
        reviews = [
            ["行政复议", "行政诉讼"],
            [*OUTCOMES, "未经复议直接起诉", "复议后起诉"],
            ["", "", "", "", "", *OUTCOMES * 2],
        ]
    reviews.append(values)
    return disclosure, applications, reviews


def render_tabs(report: Report) -> str:
    layout = report.layout
    assert layout is not None
    d, a, r = grid_rows(report, layout, "tabs")
    lines = [
        *paragraphs_head(report),
        *("\t".join(c) for c in d),
        "三、收到和处理政府信息公开申请情况",
        *("\t".join(c) for c in a),
        "四、政府信息公开行政复议、行政诉讼情况",
        *("\t".join(c) for c in r),
        *TAIL,
    ]
    return "\n".join(lines)


def render_pipes(report: Report) -> str:
    layout = report.layout
    assert layout is not None
    d, a, r = grid_rows(report, layout, "regular")

    def pipe(cells: list[str]) -> str:
        # a row cannot start with "|" (that is Markdown): a leading blank is printed as a dash
        first = cells[0] or "—"
        return " | ".join([first, *cells[1:]]) + " |"

    lines = [
        *paragraphs_head(report),
        *map(pipe, d),
        "三、收到和处理政府信息公开申请情况",
        *map(pipe, a),
        "四、政府信息公开行政复议、行政诉讼情况",
        *map(pipe, r),
        *TAIL,
    ]
    return "\n".join(lines)


def render_lines(report: Report) -> str:
    layout = report.layout
    assert layout is not None
    d, a, r = grid_rows(report, layout, "lines")

    def table(rows: list[list[str]]) -> list[str]:
        out: list[str] = []
        for cells in rows:
            out.append("")
            out += ["\t" + c for c in cells]
        return [*out, ""]

    lines = [
        *paragraphs_head(report),
        *table(d),
        "三、收到和处理政府信息公开申请情况",
        *table(a),
        "四、政府信息公开行政复议、行政诉讼情况",
        *table(r),
        *TAIL,
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------ HTML


def td(content: str, colspan: int = 1, rowspan: int = 1) -> str:
    span = (f" colspan='{colspan}'" if colspan > 1 else "") + (f" rowspan='{rowspan}'" if rowspan > 1 else "")
    return f"<td{span}>{html.escape(content) if content else '&nbsp;'}</td>"


def render_html(report: Report) -> str:
    layout = report.layout
    assert layout is not None
    head = paragraphs_head(report)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{head[0]}</title></head><body>"]
    parts += [f"<p>{p}</p>" for p in head[1:]]

    parts.append("<table border='1'>")
    for caption, labels, items in disclosure_blocks(layout):
        parts.append(f"<tr>{td(caption, 4)}</tr>")
        widths = [1] * (len(labels) - 1) + [4 - len(labels)]
        parts.append(
            "<tr>"
            + td("信息内容")
            + "".join(td(lab, w) for lab, w in zip(labels, widths, strict=True))
            + "</tr>"
        )
        for item in items:
            values = [text(report.active_disclosure[item.key][f.key]) for f in item.fields]
            parts.append(
                "<tr>"
                + td(item.label.official)
                + "".join(td(v, w) for v, w in zip(values, widths, strict=True))
                + "</tr>"
            )
    parts.append("</table><p>三、收到和处理政府信息公开申请情况</p><table border='1'>")

    parts.append(f"<tr>{td(CHECK, 3, 3)}{td('申请人情况', 7)}</tr>")
    parts.append(f"<tr>{td('自然人', 1, 2)}{td('法人或其他组织', 5)}{td('总计', 1, 2)}</tr>")
    parts.append("<tr>" + "".join(td(c) for c in ORG_COLUMNS) + "</tr>")
    rows = application_labels(layout)
    result_rows = sum(1 for key, *_ in rows if key not in ("new_received", "carried_over", "carried_forward"))
    group_sizes = {g: sum(1 for key, *_ in rows if _group(key) == g) for g in GROUP_LABELS}
    for key, results, group, label in rows:
        cells = "".join(td(v) for v in app_values(report, key, layout))
        if key in ("new_received", "carried_over", "carried_forward"):
            parts.append(f"<tr>{td(label, 3)}{cells}</tr>")
            continue
        lead = td(results, 1, result_rows) if results else ""
        if _group(key):
            lead += td(group, 1, group_sizes[_group(key)]) if group else ""  # type: ignore[index]
            parts.append(f"<tr>{lead}{td(label)}{cells}</tr>")
        else:
            parts.append(f"<tr>{lead}{td(label, 2)}{cells}</tr>")
    parts.append("</table><p>四、政府信息公开行政复议、行政诉讼情况</p><table border='1'>")

    parts.append(f"<tr>{td('行政复议', 5)}{td('行政诉讼', 10)}</tr>")
    parts.append(
        "<tr>"
        + "".join(td(o, 1, 2) for o in OUTCOMES)
        + td("未经复议直接起诉", 5)
        + td("复议后起诉", 5)
        + "</tr>"
    )
    parts.append("<tr>" + "".join(td(o) for o in OUTCOMES * 2) + "</tr>")
    parts.append("<tr>" + "".join(td(v) for v in review_values(report, layout)) + "</tr>")
    parts.append("</table>" + "".join(f"<p>{p}</p>" for p in TAIL) + "</body></html>")
    return "\n".join(parts)


RENDERERS: dict[str, tuple[Callable[[Report], str], str]] = {
    "tabs": (render_tabs, "report.txt"),
    "pipes": (render_pipes, "report.txt"),
    "lines": (render_lines, "report.txt"),
    "html": (render_html, "report.html"),
}


@pytest.mark.parametrize("layout_name", sorted(RENDERERS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=records())
def test_rendered_record_parses_back(layout_name: str, record: Report) -> None:
    render, filename = RENDERERS[layout_name]
    parsed = read_report(render(record).encode("utf-8"), path=filename)
    assert parsed.template == record.template
    assert (parsed.agency, parsed.year) == (AGENCY, REPORT_YEAR[record.template])  # type: ignore[index]
    wrong = [
        f"{path}: rendered {value!r}, parsed {parsed.cell(path)!r}"
        for path, value in record.iter_cells()
        if parsed.cell(path) != value
    ]
    assert not wrong, "\n".join(wrong)
