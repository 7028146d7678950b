"""extract_text: the four table layouts, the crawler header, flat detection, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import CorruptDocument, EmptyDocument, LimitExceeded
from shared.extract import DEFAULT_LIMITS, ExtractLimits, Paragraph, Table, extract_document, sniff_media_type
from shared.extract.text import extract_text, looks_flat


def extract(text: str, **kw):
    return extract_text(text.encode("utf-8"), limits=DEFAULT_LIMITS, **kw)


def blocks(text: str) -> list[tuple[str, object]]:
    return [("P", b.text) if isinstance(b, Paragraph) else (b.origin, b.rows) for b in extract(text).blocks]


# ---------------------------------------------------------------- tab-separated rows


def test_tab_rows_keep_leading_empty_cells_and_pad_to_a_rectangle():
    text = (
        "三、收到和处理政府信息公开申请情况\n"
        "\t(三) 不予公开\t1.属于国家秘密\t0\t0\n"
        "\t\t2.其他法律行政法规禁止公开\t0\t0\n"
        "尾"
    )
    assert blocks(text) == [
        ("P", "三、收到和处理政府信息公开申请情况"),
        (
            "tabs",
            (
                ("", "(三) 不予公开", "1.属于国家秘密", "0", "0"),
                ("", "", "2.其他法律行政法规禁止公开", "0", "0"),
            ),
        ),
        ("P", "尾"),
    ]


def test_trailing_empty_cells_and_short_rows():
    text = "第二十条第（八）项\t\t\t\n信息内容\t本年收费金额（单位：万元）\t\t\n行政事业性收费\t0"
    assert blocks(text) == [
        (
            "tabs",
            (
                ("第二十条第（八）项", "", "", ""),
                ("信息内容", "本年收费金额（单位：万元）", "", ""),
                ("行政事业性收费", "0", "", ""),
            ),
        )
    ]


def test_a_blank_line_inside_a_tab_table_does_not_split_it():
    text = "a\t1\t2\n\n\t(二) 部分公开\t0\n\n正文"
    assert blocks(text) == [("tabs", (("a", "1", "2"), ("", "(二) 部分公开", "0"))), ("P", "正文")]


def test_tab_cells_lose_their_padding():
    assert blocks("规章\t 0\t0\u3000\t\u3000\u30000\xa0") == [("tabs", (("规章", "0", "0", "0"),))]


def test_rows_of_empty_cells_are_dropped():
    assert blocks("a\tb\n\t\t\nc\td") == [("tabs", (("a", "b"), ("c", "d")))]


# ---------------------------------------------------------------- pipe-separated rows


def test_pipe_rows_final_pipe_closes_the_row():
    text = (
        "第二十条第(一)项 | |||\n"
        "信息内容 | 本年制发件数 | 本年废止件数 | 现行有效件数 |\n"
        "规章 | 0 | 0 | 5 |\n"
        "行政事业性收费 |"
    )
    assert blocks(text) == [
        (
            "pipes",
            (
                ("第二十条第(一)项", "", "", ""),
                ("信息内容", "本年制发件数", "本年废止件数", "现行有效件数"),
                ("规章", "0", "0", "5"),
                ("行政事业性收费", "", "", ""),
            ),
        )
    ]


def test_pipe_rows_of_nothing_but_pipes_are_empty_cells():
    text = "(本列数据的勾稽关系) | 申请人情况 | ||||||||\n一、本年新收政府信息公开申请数量 | |||||||||"
    (table,) = extract(text).tables
    assert table.width == 10
    assert table.rows[1] == ("一、本年新收政府信息公开申请数量", *("",) * 9)


# ---------------------------------------------------------------- one cell a line


ONE_CELL_A_LINE = (
    "二、主动公开政府信息情况\n"
    "\t第二十条第（一）项\n"
    "\n"
    "\t信息内容\n\t本年新\n制作数量\n\t本年新\n公开数量\n\t对外公开总数量\n"
    "\n"
    "\t规章\n\t\u3000\u30000\n\t\xa0 0\n\t0 \n"
    "\n"
    "\t规范性文件\n\t\u3000\u30000\n\t\xa0 6\n\t\u30006\n"
    "\n"
    "\n"
    "三、收到和处理政府信息公开申请情况\n"
)


def test_one_cell_a_line_layout():
    assert blocks(ONE_CELL_A_LINE) == [
        ("P", "二、主动公开政府信息情况"),
        (
            "lines",
            (
                ("第二十条第（一）项", "", "", ""),
                ("信息内容", "本年新\n制作数量", "本年新\n公开数量", "对外公开总数量"),
                ("规章", "0", "0", "0"),
                ("规范性文件", "0", "6", "6"),
            ),
        ),
        ("P", "三、收到和处理政府信息公开申请情况"),
    ]


def test_continuation_lines_join_their_cell():
    text = "\t（三）不予\n以公\n开\n\t1、属于国家秘密\n\t0\n\n\t\n\t商业\n企业\n\t科研\n机构\n\t0\n"
    (table,) = extract(text).tables
    assert table.rows == (
        ("（三）不予\n以公\n开", "1、属于国家秘密", "0", ""),
        ("", "商业\n企业", "科研\n机构", "0"),
    )


def test_empty_cells_in_the_one_cell_a_line_layout_keep_their_position():
    text = "\t\n\t自然人\n\t法人或其他组织\n\n\t一、本年新收政府信息公开申请数量\n\t1\n\t\xa0\n"
    (table,) = extract(text).tables
    assert table.rows == (("", "自然人", "法人或其他组织"), ("一、本年新收政府信息公开申请数量", "1", ""))


def test_a_heading_right_after_a_cell_is_not_a_continuation():
    text = "\t规章\n\t0\n\n\t规范性文件\n\t2\n四、政府信息公开行政复议、行政诉讼情况\n"
    assert blocks(text) == [
        ("lines", (("规章", "0"), ("规范性文件", "2"))),
        ("P", "四、政府信息公开行政复议、行政诉讼情况"),
    ]


def test_tab_indented_prose_is_paragraphs_not_a_table():
    prose = (
        "2020年，我乡认真贯彻《政府信息公开条例》，强化组织领导，精心组织部署，进一步建立健全工作机制，"
        "紧紧围绕建设法治、透明、服务政府的要求，推动了工作顺利开展。"
    )
    text = f"\t一、总体情况\n\n\t{prose}\n\n\t（一）健全完善组织机构\n\n\t{prose}\n"
    assert blocks(text) == [
        ("P", "一、总体情况"),
        ("P", prose),
        ("P", "（一）健全完善组织机构"),
        ("P", prose),
    ]


def test_a_lone_row_of_short_indented_lines_is_not_a_table():
    assert blocks("\t一、总体情况\n\t（一）主动公开\n\n正文") == [
        ("P", "一、总体情况"),
        ("P", "（一）主动公开"),
        ("P", "正文"),
    ]


def test_word_bookmark_debris_is_dropped():
    text = "\t政府集中采购\n\t\u30002\n\t[bookmark: _GoBack]570.6387万元\n\n\t合计\n\t2\n\t570.6387万元\n"
    (table,) = extract(text).tables
    assert table.rows[0] == ("政府集中采购", "2", "570.6387万元")


# ---------------------------------------------------------------- markdown


def test_markdown_table_and_media_type():
    text = (
        "# 报告\n\n"
        "| 信息内容 | 本年制发件数 | 本年废止件数 |\n"
        "|---|:---:|---:|\n"
        "| 规章 | 0 | |\n"
        "| a \\| b | 1 | 2 |\n\n"
        "正文"
    )
    doc = extract(text)
    assert doc.media_type == "text/markdown"
    assert [(b.origin, b.rows) if isinstance(b, Table) else b.text for b in doc.blocks] == [
        "# 报告",
        ("markdown", (("信息内容", "本年制发件数", "本年废止件数"), ("规章", "0", ""), ("a | b", "1", "2"))),
        "正文",
    ]


def test_plain_text_media_type():
    assert extract("a\tb\nc\td").media_type == "text/plain"


def test_markdown_is_sniffed_from_the_bytes():
    data = "报告\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n".encode()
    assert sniff_media_type(data) == "text/markdown"
    assert extract_document(data).media_type == "text/markdown"
    assert sniff_media_type(b"a | b |\nc | d |\n") == "text/plain"


# ---------------------------------------------------------------- crawler header block


CRAWLED = """标题: 平潭综合实验区2019年度政府信息公开工作年度报告
发布时间: 2020-01-20 15:22
文号:\x20
发布机构: 区管委会办公室
栏目: 政府信息公开年报
原文链接: https://www.pingtan.gov.cn/zwgk/zfxxgk/zfxxgknb/202001/t20200120_80576.htm
本地目录: zwgk/zfxxgk/zfxxgknb/202001/80576
页面链接与图片详见 links.tsv(同目录)
==================== 正文 ====================
平潭综合实验区2019年政府信息公开工作年度报告 一、总体情况……
"""


def test_crawler_header_goes_into_meta_not_blocks():
    doc = extract(CRAWLED)
    assert doc.meta == {
        "标题": "平潭综合实验区2019年度政府信息公开工作年度报告",
        "发布时间": "2020-01-20 15:22",
        "发布机构": "区管委会办公室",
        "栏目": "政府信息公开年报",
        "原文链接": "https://www.pingtan.gov.cn/zwgk/zfxxgk/zfxxgknb/202001/t20200120_80576.htm",
    }
    assert doc.blocks == [Paragraph("平潭综合实验区2019年政府信息公开工作年度报告 一、总体情况……")]


def test_without_the_body_separator_there_is_no_header():
    doc = extract("标题: 不是抓取头\n正文第一行")
    assert doc.meta == {}
    assert doc.text() == "标题: 不是抓取头\n正文第一行"


# ---------------------------------------------------------------- flat detection


FLAT_SNIPPET = (
    "第二十条第（一）项信息内容本年制发件数本年废止件数现行有效件数规章000行政规范性文件808"
    "第二十条第（五）项信息内容本年处理决定数量行政许可5 三、收到和处理政府信息公开申请情况"
    "申请人情况自然人法人或其他组织总计商业企业科研机构社会公益组织法律服务机构其他"
    "一、本年新收政府信息公开申请数量1 0 0 0 0 01二、上年结转政府信息公开申请数量0 0 0 0 0 00"
)


def test_run_together_tables_are_flat():
    doc = extract(FLAT_SNIPPET)
    assert doc.tables == []
    assert doc.flat is True


def test_prose_mentioning_a_few_numbers_is_not_flat():
    prose = "2019年主动公开规章13件，行政规范性文件60件，市政府其他文件162件。"
    assert looks_flat(prose) is False
    assert extract(prose).flat is False


def test_documents_with_grids_are_never_flat():
    assert extract(FLAT_SNIPPET + "\n规章\t0\t0\n行政许可\t1\t2").flat is False


def test_corpus_crawled_pages_are_flat_with_header_meta(corpus_dir: Path):
    for path in sorted((corpus_dir / "raw").glob("*.txt")):
        doc = extract_document(path.read_bytes(), filename=path.name)
        assert doc.flat, path.name
        assert doc.tables == [], path.name
        assert doc.meta["标题"].endswith("政府信息公开工作年度报告"), path.name
        assert doc.meta["原文链接"].startswith("https://www.pingtan.gov.cn/"), path.name
        assert not any("==== 正文" in b.text for b in doc.blocks if isinstance(b, Paragraph)), path.name


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("data", [b"", b"   ", b"\n\n\t\n", "\u3000\xa0\n".encode()])
def test_empty_and_whitespace_only(data):
    with pytest.raises(EmptyDocument):
        extract_text(data, limits=DEFAULT_LIMITS)


def test_whitespace_only_through_extract_document():
    with pytest.raises(EmptyDocument):
        extract_document(b" \r\n \t ")


def test_binary_bytes_are_corrupt_text():
    with pytest.raises(CorruptDocument):
        extract_text(b"\x00\x01\x02binary\x00" * 50, limits=DEFAULT_LIMITS)


def test_too_many_lines():
    with pytest.raises(LimitExceeded):
        extract_text(b"x\n" * 1001, limits=ExtractLimits(max_text_lines=1000))
    with pytest.raises(LimitExceeded):
        extract_text(b"x" * 101, limits=ExtractLimits(max_bytes=100))


def test_gbk_text_is_decoded():
    doc = extract_text("规章\t0\t0\n朱镕基".encode("gbk"), limits=DEFAULT_LIMITS)
    assert doc.tables[0].rows == (("规章", "0", "0"),)
    assert doc.text() == "朱镕基"
    assert doc.warnings == ["decoded as gb18030"]


def test_crlf_line_ends():
    assert blocks("a\tb\r\nc\td\r\n\r\n正文\r\n") == [("tabs", (("a", "b"), ("c", "d"))), ("P", "正文")]


_CELL = st.text(alphabet=st.sampled_from("规章行政许可0123456789 \u3000"), max_size=8)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_CELL, min_size=2, max_size=6), min_size=1, max_size=8))
def test_tab_tables_keep_every_cell_in_its_position(rows):
    text = "\n".join("\t".join(row) for row in rows)
    doc = extract(text) if text.strip() else None
    if doc is None or not doc.tables:
        return
    (table,) = doc.tables
    cleaned = [[" ".join(cell.split()) for cell in row] for row in rows]  # padding and runs of spaces
    kept = [row for row in cleaned if any(row)]
    width = max(len(row) for row in kept)
    assert table.rows == tuple(tuple(row + [""] * (width - len(row))) for row in kept)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from("\t\n|-: a规0\u3000\xa0"), max_size=300))
def test_any_text_gives_rectangular_tables_or_a_typed_error(text):
    try:
        doc = extract(text)
    except (EmptyDocument, CorruptDocument):
        return
    for table in doc.tables:
        assert len({len(row) for row in table.rows}) == 1
        assert all(any(row) for row in table.rows)
    assert all(b.text for b in doc.blocks if isinstance(b, Paragraph))


# ---------------------------------------------------------------- the reference kit


SEED_TEXT_SHAPES = {
    # (origin, rows, width) of each table, in reading order
    "000_230915953f1370e3.txt": [("tabs", 18, 4), ("tabs", 26, 10), ("tabs", 4, 15)],
    "001_8d444e37c1d0efbd.txt": [("pipes", 14, 4), ("pipes", 28, 10), ("pipes", 3, 15)],
    "002_ba2450cc1c30b59a.txt": [("tabs", 14, 4), ("tabs", 28, 10), ("tabs", 4, 15)],
    # 003 prints section 四's table straight after section 三's, before its heading
    "003_2e7af97f8f577716.txt": [("lines", 18, 4), ("lines", 30, 15)],
    "004_f6bc76c28a8b0cd7.txt": [("lines", 18, 4), ("lines", 26, 10), ("lines", 4, 15)],
}


@pytest.mark.parametrize("name", sorted(SEED_TEXT_SHAPES))
def test_seed_texts_give_their_tables(seeds_dir: Path, name: str):
    doc = extract_document((seeds_dir / name).read_bytes(), filename=name)
    assert doc.media_type == "text/plain"
    assert [(t.origin, len(t.rows), t.width) for t in doc.tables] == SEED_TEXT_SHAPES[name]
    assert not doc.flat
    assert all(len(row) == t.width for t in doc.tables for row in t.rows)


def test_seed_002_section_three_rows_keep_their_positions(seeds_dir: Path):
    doc = extract_document((seeds_dir / "002_ba2450cc1c30b59a.txt").read_bytes())
    section_three = doc.tables[1]
    zeros = ("0",) * 7
    note = "(本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和)"
    assert section_three.rows[0][:3] == (note, "", "申请人情况")
    assert section_three.rows[3] == ("一、本年新收政府信息公开申请数量", "", *zeros, "")
    assert section_three.rows[7] == ("", "(三) 不予公开", "1.属于国家秘密", *zeros)
    assert section_three.rows[8] == ("", "", "2.其他法律行政法规禁止公开", *zeros)
    # the damaged rows that lost leading cells stay as printed: the parser realigns them
    assert section_three.rows[25] == ("3.其他", "", *zeros, "")
    assert section_three.rows[26] == ("(七) 总计", *zeros, "", "")
    assert [len(row) for row in section_three.rows] == [10] * 28


def test_seed_004_one_cell_a_line_values(seeds_dir: Path):
    doc = extract_document((seeds_dir / "004_f6bc76c28a8b0cd7.txt").read_bytes())
    disclosure = doc.tables[0]
    assert disclosure.rows[1] == ("信息内容", "本年新\n制作数量", "本年新\n公开数量", "对外公开总数量")
    assert disclosure.rows[3] == ("规范性文件", "0", "6", "6")
    assert disclosure.rows[-1] == ("政府集中采购", "2", "570.6387万元", "")


def test_seed_003_continuation_cells(seeds_dir: Path):
    doc = extract_document((seeds_dir / "003_2e7af97f8f577716.txt").read_bytes())
    applications = doc.tables[1]
    assert applications.rows[2][:4] == ("", "", "商业\n企业", "科研\n机构")
    assert applications.rows[7][:3] == ("", "（三）不予\n以公\n开", "1、属于国家秘密")


def test_seed_001_pipes_are_all_blank(seeds_dir: Path):
    doc = extract_document((seeds_dir / "001_8d444e37c1d0efbd.txt").read_bytes())
    reviews = doc.tables[2]
    assert reviews.rows[0] == ("行政复议", "行政诉讼", *("",) * 13)
    assert doc.blocks[-1] == Paragraph("冀公网安备: 13020502000245号")
