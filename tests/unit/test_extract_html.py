"""extract_html: reading order, grids, Word debris, metadata, hostile pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import EmptyDocument, LimitExceeded, XxgkError
from shared.extract import DEFAULT_LIMITS, ExtractLimits, Paragraph, Table, extract_document
from shared.extract.html import extract_html


def extract(markup: str | bytes, **kw) -> list[tuple[str, object]]:
    """Blocks as ("P", text) / ("T", rows) pairs, which read well in assertions."""
    doc = extract_html(markup.encode() if isinstance(markup, str) else markup, limits=DEFAULT_LIMITS, **kw)
    return [("P", b.text) if isinstance(b, Paragraph) else ("T", b.rows) for b in doc.blocks]


def tables(markup: str) -> list[tuple[tuple[str, ...], ...]]:
    return [rows for kind, rows in extract(markup) if kind == "T"]


# ---------------------------------------------------------------- grids


def test_rowspan_and_colspan_repeat_the_merged_text_into_every_slot():
    markup = """<table>
      <tr><td colspan=2 rowspan=2>说明</td><td colspan=2>申请人情况</td></tr>
      <tr><td>自然人</td><td>法人</td></tr>
      <tr><td rowspan=2>三、本年度办理结果</td><td>（一）予以公开</td><td>1</td><td></td></tr>
      <tr><td>（二）部分公开</td><td>0</td><td>2</td></tr>
    </table>"""
    assert tables(markup) == [
        (
            ("说明", "说明", "申请人情况", "申请人情况"),
            ("说明", "说明", "自然人", "法人"),
            ("三、本年度办理结果", "（一）予以公开", "1", ""),
            ("三、本年度办理结果", "（二）部分公开", "0", "2"),
        )
    ]


def test_grids_are_rectangular_when_rows_are_short():
    assert tables("<table><tr><td>a</td><td>b</td><td>c</td></tr><tr><td>1</td></tr></table>") == [
        (("a", "b", "c"), ("1", "", ""))
    ]


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ("rowspan='2;'", (("A", "B", ""), ("A", "x", "y"))),  # leading digits count
        ("rowspan='0'", (("A", "B"), ("x", "y"))),  # 0 and below are 1
        ("rowspan='-3'", (("A", "B"), ("x", "y"))),
        ("rowspan='abc'", (("A", "B"), ("x", "y"))),
        ("rowspan=''", (("A", "B"), ("x", "y"))),
        ("colspan='abc'", (("A", "B"), ("x", "y"))),
        ("colspan='2px'", (("A", "A", "B"), ("x", "y", ""))),
        ("rowspan='99999'", (("A", "B", ""), ("A", "x", "y"))),  # never past the table's last row
    ],
)
def test_bogus_span_values(attributes, expected):
    markup = f"<table><tr><td {attributes}>A</td><td>B</td></tr><tr><td>x</td><td>y</td></tr></table>"
    assert tables(markup) == [expected]


def test_colspan_is_capped_at_100():
    (grid,) = tables("<table><tr><td colspan=5000>A</td><td>B</td></tr></table>")
    assert grid == (("A",) * 100 + ("B",),)


def test_td_directly_under_tbody_or_table_is_a_row():
    assert tables("<table><tbody><td>a</td><td>b</td></tbody></table>") == [(("a", "b"),)]
    assert tables("<table><td>c</td><td>d</td><tr><td>e</td><td>f</td></tr></table>") == [
        (("c", "d"), ("e", "f"))
    ]


def test_thead_tbody_tfoot_rows_in_order():
    markup = """<table><thead><tr><th>项目</th><th>数量</th></tr></thead>
      <tbody><tr><td>规章</td><td>0</td></tr></tbody><tfoot><tr><td>合计</td><td>0</td></tr></tfoot></table>"""
    assert tables(markup) == [(("项目", "数量"), ("规章", "0"), ("合计", "0"))]


def test_unclosed_cells_and_rows():
    assert extract("<table><tr><td>a<td>b<tr><td>1<td>2</table><p>之后") == [
        ("T", (("a", "b"), ("1", "2"))),
        ("P", "之后"),
    ]


def test_unclosed_table_at_the_end_of_the_page():
    assert tables("<p>前</p><table><tr><td>规章<td>0<tr><td>规范性文件<td>2") == [
        (("规章", "0"), ("规范性文件", "2"))
    ]


def test_stray_text_inside_a_table_does_not_break_the_grid():
    (grid,) = tables("<table>说明<tr><td>a</td><td>b</td></tr></table>")
    assert grid == (("a", "b"),)


def test_table_inside_a_paragraph():
    assert extract("<p>前<table><tr><td>a</td><td>b</td></tr></table>后</p>") == [
        ("P", "前"),
        ("T", (("a", "b"),)),
        ("P", "后"),
    ]


def test_spacer_rows_are_dropped_but_blank_cells_kept():
    markup = (
        "<table><tr><td>a</td><td></td></tr><tr><td>&nbsp;</td><td> </td></tr>"
        "<tr><td></td><td>1</td></tr></table>"
    )
    assert tables(markup) == [(("a", ""), ("", "1"))]


# ---------------------------------------------------------------- cell text


def test_cell_text_keeps_line_breaks_from_br_and_blocks():
    markup = """<table><tr>
      <td><p>本年新<br>制作数量</p></td>
      <td><div>本年新</div><div>公开数量</div></td>
      <td>对外公开<br/><br/>总数量</td>
    </tr></table>"""
    assert tables(markup) == [(("本年新\n制作数量", "本年新\n公开数量", "对外公开\n总数量"),)]


@pytest.mark.parametrize(
    ("cell", "text"),
    [
        ("<p><span>13</span></p>", "13"),
        ("<p>本年新</p>制作数量", "本年新\n制作数量"),
        ("本年新<p>制作数量</p>", "本年新\n制作数量"),
        ("<span><p>本年新</p></span><span>制作数量</span>", "本年新\n制作数量"),
        ("<p>对外<b>公开</b>总数量</p>", "对外公开总数量"),
        ("<p>12<script>x</script></p>", "12"),
    ],
)
def test_cell_text_with_one_block(cell, text):
    assert tables(f"<table><tr><td>{cell}</td><td>x</td></tr></table>") == [((text, "x"),)]


def test_nbsp_and_ideographic_spaces_become_spaces_and_collapse():
    (grid,) = tables(
        "<table><tr><td>&nbsp;&nbsp;0&nbsp;</td><td>　　12　</td><td>结果&nbsp;&nbsp; 维持</td></tr></table>"
    )
    assert grid == (("0", "12", "结果 维持"),)


def test_cell_text_never_appears_as_paragraphs_too():
    doc = extract_html(
        b"<p>before</p><table><tr><td><p>cell one</p></td><td>cell two</td></tr></table><p>after</p>",
        limits=DEFAULT_LIMITS,
    )
    assert doc.text() == "before\nafter"


def test_source_line_breaks_between_chinese_characters_vanish():
    assert extract("<p>政府信息\n    公开工作 2020\n年度 annual\nreport</p>") == [
        ("P", "政府信息公开工作 2020 年度 annual report")
    ]


# ---------------------------------------------------------------- paragraphs and reading order


def test_block_elements_and_br_make_paragraphs_in_order():
    markup = """<body><h1>标题</h1><div>第一行<br>第二行<br/><br>第三行</div>
      <ul><li>甲</li><li>乙</li></ul><p>段落<span>内</span>文字</p>尾巴</body>"""
    assert extract(markup) == [
        ("P", "标题"),
        ("P", "第一行"),
        ("P", "第二行"),
        ("P", "第三行"),
        ("P", "甲"),
        ("P", "乙"),
        ("P", "段落内文字"),
        ("P", "尾巴"),
    ]


def test_nested_layout_table_yields_the_inner_tables_and_the_outer_text():
    markup = """<table width=100%><tr>
      <td>首页 &gt; 政府信息公开</td>
      <td><p>二、主动公开政府信息情况</p>
          <table><tr><td>规章</td><td>0</td></tr><tr><td>规范性文件</td><td>2</td></tr></table>
          <p>三、收到和处理政府信息公开申请情况</p>
          <div><table><tr><td>自然人</td><td>总计</td></tr></table></div></td>
    </tr><tr><td colspan=2>主办单位：某某县人民政府</td></tr></table>"""
    assert extract(markup) == [
        ("P", "首页 > 政府信息公开"),
        ("P", "二、主动公开政府信息情况"),
        ("T", (("规章", "0"), ("规范性文件", "2"))),
        ("P", "三、收到和处理政府信息公开申请情况"),
        ("T", (("自然人", "总计"),)),
        ("P", "主办单位：某某县人民政府"),
    ]


def test_single_column_wrapper_tables_are_text():
    assert extract("<table><tr><td><p>正文一</p><p>正文二</p></td></tr><tr><td>正文三</td></tr></table>") == [
        ("P", "正文一"),
        ("P", "正文二"),
        ("P", "正文三"),
    ]


def test_caption_is_a_paragraph_before_its_table():
    assert extract("<table><caption>表一</caption><tr><td>a</td><td>b</td></tr></table>") == [
        ("P", "表一"),
        ("T", (("a", "b"),)),
    ]


def test_scripts_styles_templates_and_hidden_elements_are_dropped():
    markup = """<html><head><style>p{color:red}</style><script>var a='<p>no</p>'</script></head><body>
      <script>document.write("不要")</script><noscript>请启用脚本</noscript><template><p>模板</p></template>
      <p>看得见</p><div style="display: none">看不见</div><p hidden>也看不见</p>
      <select><option>部门网站</option></select><p>也看得见</p></body></html>"""
    assert extract(markup) == [("P", "看得见"), ("P", "也看得见")]


def test_word_export_debris_is_dropped():
    markup = """<html xmlns:o="urn:schemas-microsoft-com:office:office"
    xmlns:w="urn:schemas-microsoft-com:office:word">
    <head><style>p.MsoNormal {margin:0cm}</style>
    <!--[if gte mso 9]><xml><o:DocumentProperties><o:Author>admin</o:Author></o:DocumentProperties></xml>
    <![endif]-->
    </head><body lang=ZH-CN>
    <p class=MsoNormal><![if !supportLists]><span>1.</span><![endif]>第一段<o:p>&nbsp;</o:p></p>
    <p class=MsoNormal style='text-indent:21pt'>　　第二段&nbsp;&nbsp;内容[bookmark: _GoBack]<o:p></o:p></p>
    <table class=MsoNormalTable border=1><tr>
      <td><p class=MsoNormal><span lang=EN-US>政府集中采购<o:p></o:p></span></p></td>
      <td><p class=MsoNormal><span lang=EN-US>[bookmark: _GoBack]570.6387<o:p></o:p></span></p></td>
      <td><p class=MsoNormal><span lang=EN-US><o:p>&nbsp;</o:p></span></p></td>
    </tr></table>
    <!--[if !supportLineBreakNewLine]--><br><!--[endif]--></body></html>"""
    assert extract(markup) == [
        ("P", "1.第一段"),
        ("P", "第二段 内容"),
        ("T", (("政府集中采购", "570.6387", ""),)),
    ]


# ---------------------------------------------------------------- metadata and encodings


def test_title_and_meta_names_go_into_meta():
    markup = """<html><head><title> 某某镇2020年 政府信息公开工作年度报告 </title>
      <meta name="ArticleTitle" content="某某镇2020年政府信息公开工作年度报告">
      <meta name="PubDate" content="2021-01-05 10:00">
      <meta name="SiteName" content="某某县人民政府"><meta name="SiteIDCode" content="1302050003">
      <meta name="ColumnName" content="政府信息公开年报"><meta name="Keywords" content="年报">
      <meta name="Description" content="  年度报告 "><meta name="ContentSource" content="县政府办">
      <meta http-equiv="X-UA-Compatible" content="IE=edge"></head><body><p>正文</p></body></html>"""
    doc = extract_html(markup.encode(), limits=DEFAULT_LIMITS)
    assert doc.meta == {
        "title": "某某镇2020年 政府信息公开工作年度报告",
        "ArticleTitle": "某某镇2020年政府信息公开工作年度报告",
        "PubDate": "2021-01-05 10:00",
        "SiteName": "某某县人民政府",
        "SiteIDCode": "1302050003",
        "ColumnName": "政府信息公开年报",
        "Keywords": "年报",
        "Description": "年度报告",
        "ContentSource": "县政府办",
    }
    assert doc.media_type == "text/html"
    assert "正文" in doc.text() and "某某镇" not in doc.text()  # the <title> is meta, not body


def test_gbk_page_with_gb2312_meta():
    source = "<html><head><meta charset=gb2312><title>朱镕基报告</title></head><body><p>张喆</p></body>"
    doc = extract_html(source.encode("gbk"), limits=DEFAULT_LIMITS)
    assert doc.meta["title"] == "朱镕基报告"
    assert doc.text() == "张喆"
    assert doc.warnings == ["decoded as gb18030"]


def test_utf8_page_declaring_gb2312_keeps_its_title():
    # with raw bytes lxml would follow the meta and lose the title; we decode first
    source = "<html><head><meta charset=gb2312><title>年度报告</title></head><body><p>正文</p></body></html>"
    doc = extract_html(source.encode("utf-8"), limits=DEFAULT_LIMITS)
    assert (doc.meta["title"], doc.text()) == ("年度报告", "正文")


def test_leading_xml_declaration_is_stripped():
    source = "<?xml version='1.0' encoding='gb2312'?>\n<html><body><p>中文</p></body></html>"
    assert extract(source.encode("gbk")) == [("P", "中文")]


def test_http_header_charset_is_used():
    source = "<html><head><meta charset=utf-8></head><body><p>中文内容</p></body></html>"
    assert extract(source.encode("gbk"), content_type="text/html; charset=GBK") == [("P", "中文内容")]


def test_flat_page_without_tables_is_marked_flat():
    markup = "<p>规章000行政规范性文件808行政许可5一、本年新收政府信息公开申请数量1 0 0 0 0 01</p>"
    assert extract_html(markup.encode(), limits=DEFAULT_LIMITS).flat is True
    assert extract_html(b"<p>we published 13 regulations</p>", limits=DEFAULT_LIMITS).flat is False


# ---------------------------------------------------------------- hostile and empty pages


@pytest.mark.parametrize(
    "markup",
    [
        "<html><head><title>只有标题</title></head><body></body></html>",
        "<html><body><script>render()</script>   &nbsp; </body></html>",
        "<!-- nothing but a comment -->",
        "<table><tr><td></td><td>&nbsp;</td></tr></table>",
    ],
)
def test_pages_without_body_text_are_empty(markup):
    with pytest.raises(EmptyDocument):
        extract_html(markup.encode(), limits=DEFAULT_LIMITS)


@pytest.mark.parametrize("data", [b"", b"   \n\t  "])
def test_empty_bytes(data):
    with pytest.raises(EmptyDocument):
        extract_html(data, limits=DEFAULT_LIMITS)
    with pytest.raises(EmptyDocument):
        extract_document(data)


def test_5000_nested_divs_exceed_the_depth_limit():
    with pytest.raises(LimitExceeded):
        extract_html(("<div>" * 5000 + "x" + "</div>" * 5000).encode(), limits=DEFAULT_LIMITS)
    with pytest.raises(LimitExceeded):
        extract_document(("<div>" * 5000 + "x" + "</div>" * 5000).encode())


def test_depth_limit_follows_the_limits():
    markup = ("<div>" * 40 + "深处" + "</div>" * 40).encode()
    assert extract_html(markup, limits=DEFAULT_LIMITS).text() == "深处"
    with pytest.raises(LimitExceeded):
        extract_html(markup, limits=ExtractLimits(max_depth=30))


def test_unclosed_inline_tags_nest_deep_and_are_caught():
    with pytest.raises(LimitExceeded):
        extract_html(("<span><font>" * 1000 + "x").encode(), limits=DEFAULT_LIMITS)


def test_50_mb_of_tiny_elements_fails_fast_with_a_typed_error():
    data = b"<html><body><table>" + b"<td>1" * 10_000_000 + b"</table></body></html>"
    assert len(data) > 50_000_000
    with pytest.raises(LimitExceeded):
        extract_html(data, limits=ExtractLimits(max_bytes=60_000_000))


def test_50_mb_page_of_text_is_read():
    data = b"<html><body><p>" + "政府信息公开".encode() * 2_800_000 + b"</p><p>end</p></body></html>"
    assert len(data) > 50_000_000
    doc = extract_html(data, limits=ExtractLimits(max_bytes=60_000_000))
    assert doc.text().endswith("end")


def test_over_the_byte_cap():
    with pytest.raises(LimitExceeded):
        extract_html(b"<p>x</p>" * 100, limits=ExtractLimits(max_bytes=100))


@pytest.mark.parametrize(
    "markup",
    [
        "<table>" + ("<tr>" + "<td rowspan=200 colspan=100>x</td>" * 300 + "</tr>") * 200 + "</table>",
        # many small tables whose spans add up
        "<table><tr><td colspan=100>x</td><td colspan=100>y</td></tr></table>" * 100
        + "<table><tr><td colspan=100>x</td></tr>"
        + "<tr><td>1</td></tr>" * 20_000
        + "</table>",
    ],
)
def test_huge_spans_cannot_explode_the_grid(markup):
    with pytest.raises(LimitExceeded):
        extract_html(markup.encode(), limits=DEFAULT_LIMITS)


TAG_SOUP = (
    "<table> </table> <tr> </tr> <td> </td> <td_rowspan=3> <td_colspan=2> <th> <tbody> <p> </p> <br> <div> "
    "</div> <o:p> <![if_!x]> <![endif]> <script> </script> &nbsp; 规章 0 12 < > & <!-- -->"
)
TAG_SOUP_PARTS = [part.replace("_", " ") for part in TAG_SOUP.split()] + [" ", "\n"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(TAG_SOUP_PARTS), max_size=60))
def test_any_tag_soup_gives_blocks_or_a_typed_error(parts):
    try:
        doc = extract_html("".join(parts).encode(), limits=DEFAULT_LIMITS)
    except XxgkError:
        return
    for block in doc.blocks:
        if isinstance(block, Table):
            assert len({len(row) for row in block.rows}) == 1  # rectangular
            assert all(any(row) for row in block.rows)
        else:
            assert block.text == block.text.strip() and block.text


# ---------------------------------------------------------------- the reference kit


SEED_HTML_SHAPES = {
    # (rows, width) of each table, in reading order
    "000_230915953f1370e3_rendered.html": [(18, 4), (26, 10), (4, 15)],
    "000_230915953f1370e3_rendered_gbk.html": [(18, 4), (26, 10), (4, 15)],
    "001_8d444e37c1d0efbd_rendered.html": [(14, 4), (28, 10), (3, 15)],
    "002_ba2450cc1c30b59a_rendered.html": [(14, 4), (28, 10), (4, 15)],
    "003_2e7af97f8f577716_rendered.html": [(18, 4), (26, 10), (4, 15)],
    "003_2e7af97f8f577716_rendered_gbk.html": [(18, 4), (26, 10), (4, 15)],
    "004_f6bc76c28a8b0cd7_rendered.html": [(18, 4), (26, 10), (4, 15)],
}


@pytest.mark.parametrize("name", sorted(SEED_HTML_SHAPES))
def test_seed_pages_give_their_three_tables(seeds_dir: Path, name: str):
    doc = extract_document((seeds_dir / "docs" / name).read_bytes(), filename=name)
    assert doc.media_type == "text/html"
    assert [(len(t.rows), t.width) for t in doc.tables] == SEED_HTML_SHAPES[name]
    assert all(t.origin == "html" for t in doc.tables)
    expected = json.loads((seeds_dir / "docs" / "expected" / name.replace(".html", ".json")).read_text())
    assert expected["agency"] in doc.meta["title"]
    assert str(expected["year"]) in doc.meta["title"]
    assert not doc.flat


@pytest.mark.parametrize("stem", ["000_230915953f1370e3_rendered", "003_2e7af97f8f577716_rendered"])
def test_gbk_seed_pages_equal_their_utf8_twins(seeds_dir: Path, stem: str):
    utf8 = extract_document((seeds_dir / "docs" / f"{stem}.html").read_bytes())
    gbk = extract_document((seeds_dir / "docs" / f"{stem}_gbk.html").read_bytes())
    assert gbk.blocks == utf8.blocks
    assert gbk.meta == utf8.meta


def test_seed_000_section_three_header_is_expanded(seeds_dir: Path):
    doc = extract_document((seeds_dir / "docs" / "000_230915953f1370e3_rendered.html").read_bytes())
    section_three = doc.tables[1]
    note = "（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）"
    assert section_three.rows[0] == (note, note, note, *("申请人情况",) * 7)
    assert section_three.rows[1] == (note, note, note, "自然人", *("法人或其他组织",) * 5, "总计")
    assert section_three.rows[2] == (
        note,
        note,
        note,
        "自然人",
        "商业企业",
        "科研机构",
        "社会公益组织",
        "法律服务机构",
        "其他",
        "总计",
    )


def test_shanghai_2019_page(corpus_dir: Path):
    doc = extract_document((corpus_dir / "raw" / "001.html").read_bytes(), filename="001.html")
    assert [(len(t.rows), t.width) for t in doc.tables] == [(18, 5), (26, 10), (4, 15)]
    disclosure, applications, reviews = doc.tables
    made, published = "本年新\n制作数量", "本年新\n公开数量"
    assert disclosure.rows[1] == ("信息内容", made, published, published, "对外公开总数量")
    assert disclosure.rows[2] == ("规章", "13", "13", "13", "524")
    # zero cells are left blank, the 总计 column too for rows (一)–(六): blanks stay blanks
    granted = next(r for r in applications.rows if r[1] == "（一）予以公开")
    assert granted[3:] == ("258", "12", "", "", "1", "1", "")
    assert reviews.rows[-1] == ("5", "", "", "2", "7", "8", "", "", "1", "9", "", "", "", "", "")
    assert doc.blocks[0] == Paragraph("2019年上海市人民政府办公厅政府信息公开工作年度报告")
    # the narrative's "&lt;长江三角洲…&gt;" entities are text, not tags
    assert "《上海市贯彻<长江三角洲区域一体化发展规划纲要>实施方案》" in doc.text()
