"""Discovery on small HTML snippets, one per CMS pattern (domain.md "Where reports live")."""

from __future__ import annotations

import pytest

from worker.crawler.discovery import (
    DiscoveredLink,
    decode_page,
    extract_links,
    in_scope,
    paginated_urls,
    report_year_from_title,
)

SITE = "http://www.xx.gov.cn"
COLUMN = f"{SITE}/zfxxgk/zfxxgknb/index.html"


def links_by_url(html: str, base_url: str = COLUMN) -> dict[str, DiscoveredLink]:
    return {link.url: link for link in extract_links(html, base_url)}


def page(body: str, head: str = "") -> str:
    return f"<html><head><meta charset='utf-8'>{head}</head><body>{body}</body></html>"


# --------------------------------------------------------------------------- report links


def test_trs_list_reports_by_anchor_text_and_title() -> None:
    html = page(
        """<ul class="list">
        <li><a href="./202401/t20240125_1234567.html" title="XX区2023年政府信息公开工作年度报告"
               >XX区2023年政府信息公开工作...</a><span>2024-01-25</span></li>
        <li><a href="./202301/t20230130_999.html">XX区2022年度政府信息公开工作年度报告</a></li>
        <li><a href="/xwzx/202401/t20240110_5.html">区长调研农业生产</a></li>
        </ul>"""
    )
    found = links_by_url(html)
    first = found[f"{SITE}/zfxxgk/zfxxgknb/202401/t20240125_1234567.html"]
    assert (first.kind, first.year) == ("report", 2023)
    assert first.text == "XX区2023年政府信息公开工作年度报告"  # the full title, not the truncated text
    assert found[f"{SITE}/zfxxgk/zfxxgknb/202301/t20230130_999.html"].year == 2022
    assert f"{SITE}/xwzx/202401/t20240110_5.html" not in found  # news, not a report


def test_hanweb_article_urls_in_a_report_column_are_reports() -> None:
    html = page(
        """<a href="/art/2024/1/20/art_1229_5566.html">2023年度市财政局政府信息公开工作年度报告</a>
        <a href="/art/2023/1/18/art_1229_4455.html">市财政局2022年年报</a>"""
    )
    found = links_by_url(html, f"{SITE}/col/col1229/index.html?zfxxgknb=1")
    report = found[f"{SITE}/art/2024/1/20/art_1229_5566.html"]
    assert (report.kind, report.year) == ("report", 2023)


def test_detail_shape_inside_the_report_column_counts_without_report_words() -> None:
    html = page('<a href="/zfxxgk/zfxxgknb/202402/t20240201_77.html">查看详情</a>')
    assert links_by_url(html)[f"{SITE}/zfxxgk/zfxxgknb/202402/t20240201_77.html"].kind == "report"


@pytest.mark.parametrize(
    "text",
    ["政府信息公开指南", "法治政府建设年度报告", "2023年部门决算公开", "2023年统计年报", "政府信息公开目录"],
)
def test_look_alike_documents_are_not_reports(text: str) -> None:
    html = page(f'<a href="/qt/202401/t20240105_1.html">{text}</a>')
    assert links_by_url(html, f"{SITE}/zwgk/index.html") == {}


# --------------------------------------------------------------------------- columns (listings)


def test_report_columns_by_slug_and_by_name() -> None:
    html = page(
        """<a href="/zfxxgk/zfxxgknb/">政府信息公开年报</a>
        <a href="/col/col88/index.html">信息公开年报</a>
        <a href="/fdzdgknr/ndbg/">年度报告</a>
        <a href="/zfxxgk/gknb/2023nb/">2023年</a>
        <a href="/bmxxgk/zfxxgkndbg/list.shtml">部门年报</a>"""
    )
    found = links_by_url(html, f"{SITE}/zfxxgk/index.html")
    assert {url: link.kind for url, link in found.items()} == {
        f"{SITE}/zfxxgk/zfxxgknb/": "listing",
        f"{SITE}/col/col88/index.html": "listing",
        f"{SITE}/fdzdgknr/ndbg/": "listing",
        f"{SITE}/zfxxgk/gknb/2023nb/": "listing",
        f"{SITE}/bmxxgk/zfxxgkndbg/list.shtml": "listing",
    }


def test_a_per_year_sub_column_is_a_listing_that_keeps_its_year() -> None:
    html = page('<a href="/zfxxgk/zfxxgknb/nb_2022n/">2022年政府信息公开年报</a>')
    link = links_by_url(html)[f"{SITE}/zfxxgk/zfxxgknb/nb_2022n/"]
    assert (link.kind, link.year) == ("listing", 2022)


# --------------------------------------------------------------------------- pagination


def test_trs_create_page_html_generates_every_list_page() -> None:
    html = page(
        "<div id='page'></div>",
        head="""<script>var countPage = 4//共多少页
        var currentPage = 0;
        createPageHTML(countPage, currentPage, "index", "html");</script>""",
    )
    listing = sorted(u for u, link in links_by_url(html).items() if link.kind == "listing")
    assert listing == [f"{SITE}/zfxxgk/zfxxgknb/index_{n}.html" for n in (1, 2, 3)]


def test_trs_pager_with_literal_arguments_and_a_container_id() -> None:
    scripts = ["createPageHTML('page_div', 3, 1, 'index', 'shtml', 20);"]
    assert paginated_urls(scripts, f"{SITE}/col/list/index_1.shtml") == [
        f"{SITE}/col/list/index.shtml",
        f"{SITE}/col/list/index_2.shtml",
    ]


def test_the_pager_function_definition_is_not_a_call() -> None:
    scripts = ["function createPageHTML(_nPageCount, _nCurrIndex, _sPageName, _sPageExt){ var x = 1; }"]
    assert paginated_urls(scripts, COLUMN) == []


def test_generated_pages_are_capped() -> None:
    assert len(paginated_urls(["createPageHTML(100000, 0, 'index', 'html')"], COLUMN)) < 1000


def test_pager_anchors_but_not_the_site_home_link() -> None:
    html = page(
        """<div class="page"><a href="index.html">首页</a><a href="index_1.html">下一页</a>
        <a href="index_2.html">3</a><a href="index_9.html">尾页</a></div>
        <div class="nav"><a href="http://www.xx.gov.cn/">首页</a></div>
        <a href="list.jsp?cur_page=2">下一页</a>"""
    )
    found = links_by_url(html, f"{SITE}/zfxxgk/zfxxgknb/index_1.html")
    assert {u for u, link in found.items() if link.kind == "listing"} == {
        f"{SITE}/zfxxgk/zfxxgknb/index.html",
        f"{SITE}/zfxxgk/zfxxgknb/index_2.html",
        f"{SITE}/zfxxgk/zfxxgknb/index_9.html",
        f"{SITE}/zfxxgk/zfxxgknb/list.jsp?cur_page=2",
    }
    assert f"{SITE}/" not in found


# --------------------------------------------------------------------------- attachments


def test_attachments_in_hrefs_onclick_iframes_and_viewers() -> None:
    html = page(
        """<a href="/uploads/P020240125.pdf">附件：2023年年报.pdf</a>
        <a href="javascript:void(0)" onclick="window.open('/uploads/nb2023.docx')">下载</a>
        <span onclick="downloadFile('1','/attach/nb.wps')">WPS版</span>
        <a href="javascript:openFile('/attach/old.DOC')">DOC版</a>
        <iframe src="/files/report.pdf" title="2023年度报告"></iframe>
        <iframe src="/pdfjs/web/viewer.html?file=%2Fupload%2Fscan.pdf"></iframe>
        <embed src="embedded.pdf">
        <a href="/module/download/downfile.jsp?classid=0&filename=2023nb.pdf">政府信息公开年报附件</a>
        <a href="/images/banner.jpg">图片</a>"""
    )
    found = links_by_url(html)
    attachments = {u for u, link in found.items() if link.kind == "attachment"}
    assert attachments == {
        f"{SITE}/uploads/P020240125.pdf",
        f"{SITE}/uploads/nb2023.docx",
        f"{SITE}/attach/nb.wps",
        f"{SITE}/attach/old.DOC",
        f"{SITE}/files/report.pdf",
        f"{SITE}/upload/scan.pdf",
        f"{SITE}/zfxxgk/zfxxgknb/embedded.pdf",
        f"{SITE}/module/download/downfile.jsp?classid=0&filename=2023nb.pdf",
    }
    assert found[f"{SITE}/uploads/P020240125.pdf"].year == 2023


# --------------------------------------------------------------------------- plumbing


def test_base_href_and_one_entry_per_url_with_the_strongest_kind() -> None:
    html = page(
        """<a href="202401/t20240125_1.html">更多</a>
        <a href="202401/t20240125_1.html#top">2023年政府信息公开工作年度报告</a>""",
        head='<base href="http://www.xx.gov.cn/zfxxgk/zfxxgknb/">',
    )
    links = extract_links(html, "http://www.xx.gov.cn/other/page.html")
    assert links == [
        DiscoveredLink(
            url=f"{SITE}/zfxxgk/zfxxgknb/202401/t20240125_1.html",
            text="2023年政府信息公开工作年度报告",
            kind="report",
            year=2023,
        )
    ]


def test_meta_refresh_is_followed_as_a_listing() -> None:
    html = page("", head='<meta http-equiv="refresh" content="0;url=/zfxxgk/zfxxgknb/index.shtml">')
    assert links_by_url(html, f"{SITE}/")[f"{SITE}/zfxxgk/zfxxgknb/index.shtml"].kind == "listing"


@pytest.mark.parametrize("html", ["", "   ", "<<<>>>", "\x00\x01"])
def test_garbage_yields_nothing(html: str) -> None:
    assert extract_links(html, COLUMN) == []


@pytest.mark.parametrize(
    ("title", "year"),
    [
        ("XX区2023年政府信息公开工作年度报告", 2023),
        ("XX区人民政府2022年度政府信息公开工作年度报告", 2022),
        ("关于发布2024年1月报告：2023年度政府信息公开年报", 2023),  # 年度 names the report year
        ("二〇二一年度政府信息公开工作年度报告", 2021),
        ("２０２０年政府信息公开工作年度报告", 2020),
        ("政府信息公开年报", None),
        ("t20240125_123", None),
        (None, None),
    ],
)
def test_report_year_from_title(title: str | None, year: int | None) -> None:
    assert report_year_from_title(title) == year


@pytest.mark.parametrize(
    ("url", "domains", "expected"),
    [
        ("http://www.beijing.gov.cn/a.html", (), True),
        ("https://gov.cn/", (), True),
        ("http://zfxxgk.xx.gov.cn:8080/a", (), True),
        ("http://www.beijing.gov.cn.evil.com/a.html", (), False),
        ("http://evilgov.cn/", (), False),
        ("http://hongxingpaper.com/zfxxgknb/a.html", (), False),
        ("http://www.example.org/a", ("example.org",), True),
        ("http://sub.example.org/a", ("*.example.org",), True),
        ("http://example.org.evil.com/a", ("example.org",), False),
        ("http://127.0.0.1:8765/a", ("127.0.0.1",), True),
        ("http://127.0.0.1:8765/a", ("127.0.0.1:9999",), True),  # ports are not part of the scope
        ("ftp://www.xx.gov.cn/a.pdf", (), False),
        ("javascript:alert(1)", (), False),
    ],
)
def test_in_scope(url: str, domains: tuple[str, ...], expected: bool) -> None:
    assert in_scope(url, domains) is expected


def test_decode_page_reads_gb2312_claims_as_gb18030() -> None:
    text = "<html><head><meta charset='gb2312'></head><body>朱镕基 政府信息公开工作年度报告</body></html>"
    assert "朱镕基" in decode_page(text.encode("gb18030"), "text/html; charset=gb2312")
    assert "年度报告" in decode_page(text.encode("utf-8"), "text/html; charset=gbk")  # the label lies


@pytest.mark.parametrize(
    "href",
    [
        "http://www.xx.gov.cn:99999/zfxxgk/2023nb.pdf",
        "http://www.xx.gov.cn:abc/zfxxgk/2023nb.pdf",
        "http://www.xx.gov.cn:0/zfxxgk/2023nb.pdf",
    ],
)
def test_links_with_impossible_ports_are_dropped_at_discovery(href: str) -> None:
    html = page(f"<a href='{href}'>XX区2023年政府信息公开工作年度报告</a><a href='/ok.pdf'>附件</a>")
    urls = set(links_by_url(html))
    assert not any(":99999" in u or ":abc" in u or ":0/" in u for u in urls)
    assert f"{SITE}/ok.pdf" in urls
