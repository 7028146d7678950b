"""Small hand-made documents for the parser tests: blocks built in Python, no extractor.

``report_doc`` assembles a whole report (title, the three sections' grids, the
narrative headings) from per-row value lists, so each test changes only the
damage it is about.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from shared.extract.blocks import Document, Paragraph, Table
from shared.templates import TEMPLATES, Template, TemplateId

APP_HEADER: tuple[tuple[str, ...], ...] = (
    (
        "（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）",
        "申请人情况",
        "",
        "",
        "",
        "",
        "",
        "总计",
    ),
    ("", "自然人", "法人或其他组织", "", "", "", "", ""),
    ("", "", "商业企业", "科研机构", "社会公益组织", "法律服务机构", "其他", ""),
)
REVIEW_HEADER: tuple[tuple[str, ...], ...] = (
    ("行政复议", "", "", "", "", "行政诉讼", "", "", "", "", "", "", "", "", ""),
    (
        "结果维持",
        "结果纠正",
        "其他结果",
        "尚未审结",
        "总计",
        "未经复议直接起诉",
        "",
        "",
        "",
        "",
        "复议后起诉",
        "",
        "",
        "",
        "",
    ),
    ("", "", "", "", "", *(("结果维持", "结果纠正", "其他结果", "尚未审结", "总计") * 2)),
)


def table(*rows: Sequence[str], origin: str = "tabs") -> Table:
    return Table(rows=tuple(tuple(r) for r in rows), origin=origin)


def paragraphs(*lines: str) -> list[Paragraph]:
    return [Paragraph(line) for line in lines]


def disclosure_rows(
    layout: Template, value: Callable[[str, str], str] = lambda item, f: "0"
) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    caption = None
    for item in layout.disclosure:
        if item.caption != caption:
            caption = item.caption
            rows.append((caption, "", "", ""))
            header = ("信息内容", *(f.official for f in item.fields))
            rows.append(header + ("",) * (4 - len(header)))
        cells = (item.label.official, *(value(item.key, f.key) for f in item.fields))
        rows.append(cells + ("",) * (4 - len(cells)))
    return rows


def application_rows(
    layout: Template, value: Callable[[str, str], str] = lambda row, col: "0"
) -> list[tuple[str, ...]]:
    rows = [tuple(r) for r in APP_HEADER]
    for r in layout.application_rows:
        rows.append((r.official, *(value(r.key, c.key) for c in layout.application_columns)))
    return rows


def review_rows(
    layout: Template, value: Callable[[str, str], str] = lambda g, o: "0"
) -> list[tuple[str, ...]]:
    data = tuple(value(g.key, o.key) for g in layout.review_groups for o in layout.review_outcomes)
    return [*REVIEW_HEADER, data]


def report_doc(
    template_id: TemplateId = "2021",
    *,
    title: str | None = "某某县某某局2021年政府信息公开工作年度报告",
    disclosure: list[tuple[str, ...]] | None = None,
    applications: list[tuple[str, ...]] | None = None,
    reviews: list[tuple[str, ...]] | None = None,
    tail: Sequence[str] = (),
    meta: dict[str, str] | None = None,
) -> Document:
    layout = TEMPLATES[template_id]
    blocks: list[Paragraph | Table] = []
    if title:
        blocks.append(Paragraph(title))
    blocks += paragraphs("一、总体情况", "本年度我局认真贯彻落实《条例》。", "二、主动公开政府信息情况")
    blocks.append(table(*(disclosure if disclosure is not None else disclosure_rows(layout))))
    blocks.append(Paragraph("三、收到和处理政府信息公开申请情况"))
    blocks.append(table(*(applications if applications is not None else application_rows(layout))))
    blocks.append(Paragraph("四、政府信息公开行政复议、行政诉讼情况"))
    blocks.append(table(*(reviews if reviews is not None else review_rows(layout))))
    blocks += paragraphs(
        "五、存在的主要问题及改进情况", "宣传不够。", "六、其他需要报告的事项", "无。", *tail
    )
    return Document(blocks=blocks, media_type="text/plain", meta=dict(meta or {}))
