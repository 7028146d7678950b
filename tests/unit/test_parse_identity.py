"""Who filed it, for which year, published when (spec/domain.md "Identity")."""

from __future__ import annotations

import pytest

from shared.extract.blocks import Document, Paragraph
from shared.parse.identity import parse_date, read_identity, read_title


def doc(*lines: str, meta: dict[str, str] | None = None) -> Document:
    return Document(blocks=[Paragraph(line) for line in lines], media_type="text/plain", meta=meta or {})


@pytest.mark.parametrize(
    ("title", "agency", "year"),
    [
        ("城郊乡人民政府2020年政府信息公开工作年度报告", "城郊乡人民政府", 2020),
        ("官坡镇人民政府 2023 年政府信息公开工作年度报告", "官坡镇人民政府", 2023),
        ("2019年上海市人民政府办公厅政府信息公开工作年度报告", "上海市人民政府办公厅", 2019),
        ("平潭综合实验区财政金融局2022年度 政府信息公开工作年度报告", "平潭综合实验区财政金融局", 2022),
        ("关于某某县2021年度政府信息公开工作年度报告", "某某县", 2021),
    ],
)
def test_read_title(title: str, agency: str, year: int) -> None:
    parts = read_title(title)
    assert parts is not None
    assert (parts.agency, parts.year) == (agency, year)


def test_not_a_title() -> None:
    assert read_title("2020年，我乡认真贯彻《政府信息公开条例》") is None
    assert read_title("一、总体情况") is None


def test_title_from_meta_minus_site_suffix() -> None:
    ident = read_identity(
        doc("正文", meta={"title": "某某区民政局2021年政府信息公开工作年度报告_某某区人民政府网"})
    )
    assert ident.title == "某某区民政局2021年政府信息公开工作年度报告"
    assert (ident.agency, ident.year, ident.agency_source) == ("某某区民政局", 2021, "title")


def test_article_title_beats_page_title() -> None:
    meta = {"title": "首页_某某市人民政府", "ArticleTitle": "某某市统计局2020年政府信息公开工作年度报告"}
    assert read_identity(doc("正文", meta=meta)).agency == "某某市统计局"


def test_signature_gives_agency_and_date_but_footer_owner_does_not() -> None:
    ident = read_identity(
        doc(
            "本年度报告中使用数据统计期限为2020年1月1日至2020年12月31日。",
            "一、总体情况",
            "2020年，我乡认真贯彻落实条例。",
            "六、其他需要报告的事项",
            "无。",
            "2021年1月12日",
            "丰城市段潭乡人民政府",
            "主办单位：丰城市人民政府",
            "网站标识码：3609810001",
        )
    )
    assert ident.agency == "丰城市段潭乡人民政府"
    assert ident.agency_source == "signature"
    assert ident.published_on == "2021-01-12"
    assert (ident.year, ident.year_source, ident.statistics_year) == (2020, "statistics", 2020)
    assert ident.site_id_code == "3609810001"


def test_body_names_the_filer_when_title_and_signature_are_missing() -> None:
    ident = read_identity(
        doc(
            "一、总体情况",
            "一年来，我镇政务公开工作紧紧围绕区委中心工作。现将2021年度政务公开工作情况汇报如下。",
            "成立了由镇长任组长的郑庄子镇政务公开工作领导小组，2021年度我镇主动公开信息10条。",
            "主办单位:开平区人民政府",
            "冀公网安备: 13020502000245号",
        )
    )
    assert ident.agency == "郑庄子镇"
    assert ident.agency_source == "body"
    assert ident.year == 2021
    assert ident.published_on is None


def test_crawler_header_meta() -> None:
    meta = {"标题": "平潭综合实验区2021年度政府信息公开工作年度报告", "发布时间": "2022-02-08 16:34"}
    ident = read_identity(doc("当前位置：首页 来源：平潭县人民政府 正文……", meta=meta))
    assert (ident.agency, ident.year, ident.published_on) == ("平潭综合实验区", 2021, "2022-02-08")


def test_publication_line_on_the_page() -> None:
    ident = read_identity(
        doc("2019年上海市人民政府办公厅政府信息公开工作年度报告", "发布日期：2020-01-31", "正文")
    )
    assert ident.published_on == "2020-01-31"
    assert ident.year == 2019  # the report year, not the publication year


def test_statistics_period_without_the_second_year() -> None:
    ident = read_identity(doc("本年度报告中所列数据统计期限从2019年1月1日到12月31日止。"))
    assert ident.statistics_year == 2019


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2021年1月20日", "2021-01-20"),
        ("2022-02-08 16:34", "2022-02-08"),
        ("二〇二一年一月十二日", "2021-01-12"),
        ("2020/1/31", "2020-01-31"),
        ("无", None),
    ],
)
def test_parse_date(text: str, iso: str | None) -> None:
    assert parse_date(text) == iso


def test_site_name_glued_before_the_title_is_dropped() -> None:
    parts = read_title("某某市人民政府网-某某市交通运输局2021年度政府信息公开工作年度报告")
    assert parts is not None
    assert parts.agency == "某某市交通运输局"


def test_full_width_digits_in_the_body_give_the_year() -> None:
    # no title, no statistics period: only the narrative names the year, in full-width digits
    ident = read_identity(
        doc(
            "现将２０２１年度政府信息公开工作情况报告如下：",
            "本年度我镇认真贯彻落实《中华人民共和国政府信息公开条例》。",
            "某某镇人民政府",
            "２０２２年１月１５日",
        )
    )
    assert ident.year == 2021
    assert ident.published_on == "2022-01-15"


def test_full_width_site_id_code_is_read() -> None:
    ident = read_identity(
        doc("某某县财政局2021年政府信息公开工作年度报告", "网站标识码：１３０２０５０００３")
    )
    assert ident.site_id_code == "1302050003"
