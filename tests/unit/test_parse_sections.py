"""Section headings: on their own line, inside table cells, or run into the text."""

from __future__ import annotations

import pytest

from shared.extract.blocks import Document, Paragraph
from shared.parse.sections import find_inline_headings, locate_headings, match_heading, sections_in_order
from tests.unit.parse_snippets import table


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("一、总体情况", "overview"),
        ("二、主动公开政府信息情况", "active_disclosure"),
        ("三、收到和处理政府信息公开申请情况", "applications"),
        ("四、因政府信息公开申请行政复议、提起行政诉讼的情况", "reviews"),
        ("五、存在的主要问题及改进措施", "problems"),  # a reworded heading (seed 003)
        ("六、其他需要报告的事项", "other"),
    ],
)
def test_headings(line: str, key: str) -> None:
    assert match_heading(line) == key


@pytest.mark.parametrize(
    "line",
    [
        "一、明确责任，建立健全组织领导机制",  # a numbered point inside section 一
        "四、结转下年度继续办理",  # a section 三 row label
        "三、本年度办理结果",
        "二、主动公开政府信息情况，本年度共主动公开信息一百二十条，其中规章两件，规范性文件五件，其余为工作动态。",
    ],
)
def test_not_headings(line: str) -> None:
    assert match_heading(line) is None


def test_inline_headings_tolerate_a_typo() -> None:
    text = (
        "一、总体情况2021年，我区……二、主动公开政府信息情况 第二十条第（一）项……"
        "四、结转下年度继续办理1000001 四、政府信息公开行政法复议、行政诉讼情况 行政复议……"
        "五、存在的主要问题及改进情况（一）……六、其他需要报告的事项 无。"
    )
    assert [key for _, key in find_inline_headings(text)] == [
        "overview",
        "active_disclosure",
        "reviews",
        "problems",
        "other",
    ]


def test_headings_in_document_order_including_table_cells() -> None:
    doc = Document(
        blocks=[
            Paragraph("一、总体情况"),
            table(("三、收到和处理政府信息公开申请情况", "", "")),
            Paragraph("二、主动公开政府信息情况"),
        ],
        media_type="text/html",
    )
    assert sections_in_order(locate_headings(doc)) == ["overview", "applications", "active_disclosure"]
