"""What a 政府信息公开年报 column is made of: the bundled seed documents and the page makers.

Shared by the demo portal (:mod:`worker.demo.portal`) and the bench's simulated web
(``bench.simweb.portal``), which build their list and detail pages from the same templates
and their reports from the same documents in ``data/``. Pure: returns text, reads only
``data/``.
"""

from __future__ import annotations

from importlib import resources

ListItem = tuple[str, str, str]  # (title, href, date)


def document(name: str) -> bytes:
    """One of the seed documents bundled in ``worker/demo/data`` (see its README), as bytes."""
    return resources.files("worker.demo").joinpath("data", name).read_bytes()


def charset_label(encoding: str) -> str:
    """The charset a page labels itself with: GBK sites say ``gb2312``."""
    return "gb2312" if encoding.lower() in ("gbk", "gb2312", "gb18030") else encoding


def content_type_meta(encoding: str) -> str:
    return f'<meta http-equiv="Content-Type" content="text/html; charset={charset_label(encoding)}">'


def trs_list_page(
    *,
    site_name: str,
    column: str,
    items: list[ListItem],
    page: int,
    pages: int,
    head_meta: str,
    breadcrumb: str,
) -> str:
    """A TRS WCM list page: the pager is only a ``createPageHTML`` call (no links to other pages).

    ``head_meta`` is what comes before ``<title>`` (the charset declaration), ``breadcrumb``
    the line above the list."""
    lis = "\n".join(
        f'<li><a href="{href}" target="_blank" title="{title}">{title}</a><span>{date}</span></li>'
        for title, href, date in items
    )
    return f"""<!DOCTYPE html>
<html><head>{head_meta}<title>{column}_{site_name}</title>
<meta name="SiteName" content="{site_name}"><meta name="ColumnName" content="{column}">
</head><body>
{breadcrumb}
<div class="list"><ul>
{lis}
</ul>
<div class="page"><script type="text/javascript">
var countPage = {pages}//共多少页
createPageHTML({pages}, {page}, "index", "html");
</script></div></div>
<div class="footer">主办单位：{site_name}办公室</div>
</body></html>"""


def table_list_page(
    *,
    site_name: str,
    column: str,
    items: list[ListItem],
    encoding: str,
    breadcrumb: str,
    pager: str,
    table_id: int | None = None,
    new_window: bool = False,
) -> str:
    """A list page whose items are table rows and whose pager is links (Hanweb and the like).

    ``pager`` is the whole pager element; ``new_window`` gives each link ``target``/``title``."""
    rows = "\n".join(
        f'<tr><td><a href="{href}"'
        + (f' target="_blank" title="{title}"' if new_window else "")
        + f">{title}</a></td><td>{date}</td></tr>"
        for title, href, date in items
    )
    table_attrs = f' id="{table_id}"' if table_id is not None else ""
    return f"""<html><head>
{content_type_meta(encoding)}
<title>{column}-{site_name}</title></head><body>
{breadcrumb}
<table class="list"{table_attrs}>{rows}</table>
{pager}
<div class="footer">{site_name} 版权所有</div>
</body></html>"""


def attachment_detail_page(
    *,
    site_name: str,
    title: str,
    href: str,
    name: str,
    published: str,
    encoding: str,
    onclick: bool = True,
    break_before_close: bool = False,
) -> str:
    """A detail page whose body is only "see the attachment", linked by ``href`` or ``onclick``.

    ``break_before_close`` puts a line break before the closing ``</div>`` (the demo's pages
    have one, the simulated web's do not)."""
    link = (
        f'<a href="javascript:void(0)" onclick="window.open(\'{href}\')">{name}</a>'
        if onclick
        else f'<a href="{href}">{name}</a>'
    )
    close = "\n</div>" if break_before_close else "</div>"
    return f"""<html><head>
{content_type_meta(encoding)}
<meta name="ArticleTitle" content="{title}"><meta name="PubDate" content="{published}">
<meta name="SiteName" content="{site_name}">
<title>{title}</title></head><body>
<h1>{title}</h1><div class="info">发布日期：{published}</div>
<div class="content"><p>现将{title}予以公布，详见附件。</p>
<p>附件：{link}</p>{close}</body></html>"""
