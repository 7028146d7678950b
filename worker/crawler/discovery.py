"""Discovery (pure): which links on a government page lead to annual reports.

Given a page's HTML and its URL, :func:`extract_links` returns

- ``report``: a 政府信息公开工作年度报告 page, recognised by its anchor text or ``title``
  (``2023年政府信息公开工作年度报告``, ``…信息公开年报``), or by a CMS detail-page URL shape
  (TRS ``/YYYYMM/tYYYYMMDD_N.html``, Hanweb ``/art/Y/M/D/art_C_D.html`` …) inside a report column;
- ``attachment``: ``.pdf .doc .docx .wps`` files, also when the link hides in ``onclick``,
  ``javascript:``/``window.open(…)``, ``<iframe>``/``<embed>``/``<object>`` or a pdf.js viewer;
- ``listing``: pages to crawl further — pagination (``index_N.html``, 下一页/尾页 links, and the
  pages a TRS ``createPageHTML(countPage, …)`` script would have written) and report columns
  (``zfxxgknb``, ``gknb``, ``ndbg``, ``zfxxgkndbg``, link text 政府信息公开年报).

Patterns are tables below: a new CMS shape or column slug is one entry. Also here:
:func:`report_year_from_title`, :func:`in_scope` (government domains only: ``*.gov.cn`` plus the
site's own and configured domains — spam sites clone government pages) and :func:`decode_page`
(bytes → text the way domain.md says: BOM, UTF-8, declared charset with GB2312/GBK read as
GB18030). No network, no clock.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, unquote, urljoin, urlsplit, urlunsplit

import lxml.html
from lxml import etree

from shared.extract.encoding import decode_bytes

LinkKind = Literal["report", "attachment", "listing"]

# the order decides which kind wins when one URL is seen several ways
KIND_PRIORITY: dict[str, int] = {"report": 0, "attachment": 1, "listing": 2}

ATTACHMENT_EXTENSIONS: tuple[str, ...] = (".pdf", ".doc", ".docx", ".wps")

# report columns (domain.md "Where reports live"; research/domain.md §4.1)
COLUMN_SLUGS: tuple[str, ...] = ("zfxxgknb", "zfxxgkndbg", "wzxxgknb", "xxgknb", "gknb", "ndbg", "bmnb")
_COLUMN_SLUG = re.compile(
    r"(?<![a-z])(" + "|".join(COLUMN_SLUGS) + r")(?![a-z])|(?<![a-z])nb_?\d{4}n?(?![a-z])", re.I
)
# link texts that name a report column rather than one report
_COLUMN_TEXT = re.compile(
    r"^(政府)?信息公开(工作)?(年度)?(年报|报告|年度报告)(专栏)?$|^(公开|政务公开)?年报$|^年度报告$|^(部门|乡镇|街道)年报$"
)

# a single report, by its title
_REPORT_TEXT = re.compile(r"信息公开.{0,12}?(年度报告|年报|工作报告)|公开(工作)?年报|政务公开.{0,8}?年度报告")
# texts that look similar but are other documents
_NOT_A_REPORT_TEXT = re.compile(r"指南|目录|制度|申请表|法治政府|统计年报|企业年报|决算|预算|规定|办法")

# CMS detail-page URL shapes (research/domain.md §4.2)
DETAIL_URL_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("trs", re.compile(r"/\d{6}/t\d{8}_\d+\.s?html?$", re.I)),
    ("hanweb", re.compile(r"/art/\d{4}/\d{1,2}/\d{1,2}/art_\d+_\d+\.html?$", re.I)),
    ("gdgkmlpt", re.compile(r"/content/post_\d+\.html?$", re.I)),
    ("hunan", re.compile(r"/c\d+/\d{6}/(c01_\d+|[0-9a-f]{32})\.s?html?$", re.I)),
    ("vsb", re.compile(r"/info/\d+/\d+\.html?$", re.I)),
    ("anhui", re.compile(r"/OpennessContent/show/\d+\.html?$", re.I)),
    ("shanghai", re.compile(r"/nw\d+/\d{8}/[0-9a-f-]{16,}\.html?$", re.I)),
)

# pagination
PAGER_TEXTS: frozenset[str] = frozenset(
    {
        "下一页",
        "下页",
        "尾页",
        "末页",
        "最后一页",
        "上一页",
        "上页",
        "首页",
        "第一页",
        ">",
        ">>",
        "»",
        "›",
        "next",
        "last",
        "下一页>",
        "<上一页",
    }
)
_PAGER_URL = re.compile(
    r"(index|list|default)_\d+\.s?html?$|[?&](page|pageno|pagenum|pageindex|currpage|cur_page|curpage|p)=\d+"
    r"|column-index-\d+\.s?html?$|/\d{1,4}\.s?html?$",
    re.I,
)
# a column's own page rather than an article: ``…/``, ``index.html``, ``list_2.shtml``, Hanweb ``/col/colN/``
_INDEX_PATH = re.compile(r"(/|/(index|list|default)(_\d+)?\.\w+|/col/col\d+/?)$", re.I)
_PAGE_NUMBER_TEXT = re.compile(r"^\[?\d{1,4}\]?$")
MAX_GENERATED_PAGES = 500
_CREATE_PAGE_CALL = re.compile(r"(?<![\w$.])createPageHTML\s*\(([^()]*)\)")
_COUNT_PAGE_VAR = re.compile(r"\bcountPage\s*=\s*(\d+)")
_JS_NUMBER_VAR = re.compile(r"\b(?:var|let|const)?\s*([A-Za-z_$][\w$]*)\s*=\s*(\d+)\s*(?:[;,\n/]|$)")

# URLs inside scripts and onclick handlers: quoted strings that look like a path or a document
_QUOTED = re.compile(r"""["']([^"'\s<>]{3,500})["']""")
_PAGE_PATH = re.compile(r"\.(s?html?|jsp|aspx?|php)(\?|$)", re.I)

_YEAR_AFTER = re.compile(r"((?:19|20)\d{2})\s*(年度|年)")
_CHINESE_DIGITS = str.maketrans(
    {
        "〇": "0",
        "零": "0",
        "○": "0",
        "Ｏ": "0",
        "一": "1",
        "二": "2",
        "三": "3",
        "四": "4",
        "五": "5",
        "六": "6",
        "七": "7",
        "八": "8",
        "九": "9",
    }
)
_CHINESE_YEAR = re.compile(r"[〇零○Ｏ一二三四五六七八九]{4}(?=\s*年)")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class DiscoveredLink:
    url: str
    text: str
    kind: LinkKind
    year: int | None = None


# ---------------------------------------------------------------------------------------------
# small pure predicates


def normalise_text(text: str | None) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text or "")).strip()


def report_year_from_title(text: str | None) -> int | None:
    """The report year a title names: ``2023年度…`` beats ``2024年…``; Chinese numerals count too.

    ``XX区2023年政府信息公开工作年度报告`` → 2023; ``关于发布二〇二一年度…年报`` → 2021.
    """
    value = normalise_text(text)
    value = _CHINESE_YEAR.sub(lambda m: m.group(0).translate(_CHINESE_DIGITS), value)
    matches = list(_YEAR_AFTER.finditer(value))
    for match in matches:
        if match.group(2) == "年度":
            return int(match.group(1))
    return int(matches[0].group(1)) if matches else None


def is_attachment_url(url: str) -> bool:
    parts = urlsplit(url)
    if unquote(parts.path).lower().endswith(ATTACHMENT_EXTENSIONS):
        return True
    return any(value.lower().endswith(ATTACHMENT_EXTENSIONS) for _, value in parse_qsl(parts.query))


def detail_url_shape(url: str) -> str | None:
    """The CMS whose article-page URL shape ``url`` has, if any."""
    path = urlsplit(url).path
    return next((name for name, shape in DETAIL_URL_SHAPES if shape.search(path)), None)


def is_report_column_url(url: str) -> bool:
    return bool(_COLUMN_SLUG.search(unquote(urlsplit(url).path)))


def looks_like_report_title(text: str) -> bool:
    return bool(_REPORT_TEXT.search(text)) and not _NOT_A_REPORT_TEXT.search(text)


def _host_of(url: str) -> str | None:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    try:
        return host.encode("idna").decode("ascii").lower().rstrip(".")
    except UnicodeError:
        return host.lower().rstrip(".")


def _domain_of(entry: str) -> str:
    entry = entry.strip().lower()
    if "://" in entry:
        entry = urlsplit(entry).hostname or ""
    entry = entry.removeprefix("*.").lstrip(".").rstrip(".")
    if entry.startswith("[") and "]" in entry:
        return entry[1 : entry.index("]")]
    if entry.count(":") == 1:
        entry = entry.split(":", 1)[0]
    try:
        return entry.encode("idna").decode("ascii")
    except UnicodeError:
        return entry


GOVERNMENT_SUFFIXES: tuple[str, ...] = ("gov.cn",)


def in_scope(url: str, domains: Iterable[str] = ()) -> bool:
    """Whether ``url`` is on a government domain (``*.gov.cn``) or one of ``domains``.

    ``domains`` are the site's own domains plus ``settings.extra_allowed_domains``; an entry
    covers its subdomains (``example.org`` covers ``www.example.org``); IPs match exactly.
    """
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return False
    host = _host_of(url)
    if not host:
        return False
    for domain in (*GOVERNMENT_SUFFIXES, *(_domain_of(d) for d in domains)):
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# decoding


def decode_page(data: bytes, content_type: str | None = None) -> str:
    """Bytes → text by the project's one rule (domain.md: BOM, strict UTF-8, the declared
    charset with GB2312/GBK read as GB18030, then GB18030): :func:`shared.extract.encoding.decode_bytes`."""
    return decode_bytes(data, content_type=content_type)[0]


# ---------------------------------------------------------------------------------------------
# link extraction


def _clean_url(raw: str, base_url: str) -> str | None:
    raw = raw.strip().replace("\n", "").replace("\r", "").replace("\t", "")
    if not raw or raw.startswith(("#", "mailto:", "tel:", "data:", "about:")):
        return None
    try:
        url = urljoin(base_url, raw)
        parts = urlsplit(url)
        # .port is parsed lazily: a link to ":99999" or ":abc" would only blow up at fetch time
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or port == 0:
        return None
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def _pdf_viewer_target(url: str) -> str | None:
    """pdf.js and similar viewers: ``…/viewer.html?file=/upload/a.pdf`` → the PDF's URL."""
    parts = urlsplit(url)
    if "viewer" not in parts.path.lower():
        return None
    for key, value in parse_qsl(parts.query):
        if key.lower() in ("file", "url", "src") and value:
            return _clean_url(unquote(value), url)
    return None


def _urls_in_script(script: str, base_url: str) -> Iterator[str]:
    """URL-like quoted strings in ``onclick``/``javascript:`` code: documents and pages."""
    for match in _QUOTED.finditer(script):
        value = match.group(1)
        if not (is_attachment_url(value) or _PAGE_PATH.search(value)):
            continue
        if not (
            value.startswith(("http://", "https://", "/", "./", "../"))
            or "/" in value
            or is_attachment_url(value)
        ):
            continue
        url = _clean_url(value, base_url)
        if url:
            yield url


def _same_directory(url: str, base_url: str) -> bool:
    a, b = urlsplit(url), urlsplit(base_url)
    return a.netloc == b.netloc and a.path.rsplit("/", 1)[0] == b.path.rsplit("/", 1)[0]


def classify_link(url: str, text: str, base_url: str) -> LinkKind | None:
    """What a link to ``url`` with anchor ``text`` (text and title joined) is, found on ``base_url``."""
    if is_attachment_url(url):
        return "attachment"
    shape = detail_url_shape(url)
    in_column = is_report_column_url(url) or is_report_column_url(base_url)
    if text and not _NOT_A_REPORT_TEXT.search(text):
        if looks_like_report_title(text):
            year = report_year_from_title(text)
            if shape is None and (year is None or _INDEX_PATH.search(urlsplit(url).path)):
                return "listing"  # a column (or a per-year sub-column), not one report
            return "report"
        if shape and in_column and ("年报" in text or "年度报告" in text or report_year_from_title(text)):
            return "report"
    if shape and is_report_column_url(url):
        return "report"
    if _COLUMN_TEXT.match(text):
        return "listing"
    pager_text = text.lower() in PAGER_TEXTS or bool(_PAGE_NUMBER_TEXT.match(text))
    if pager_text and (_PAGER_URL.search(url) or _same_directory(url, base_url)):
        return "listing"
    if re.search(r"(index|list)_\d+\.s?html?$", urlsplit(url).path, re.I) and _same_directory(url, base_url):
        return "listing"
    if is_report_column_url(url) and shape is None:
        return "listing"
    return None


def _resolve_js_int(arg: str, variables: dict[str, int]) -> int | None:
    arg = arg.strip()
    if arg.isdigit():
        return int(arg)
    return variables.get(arg)


def paginated_urls(scripts: Iterable[str], base_url: str) -> list[str]:
    """The list pages a TRS pager script would link: ``createPageHTML(N, cur, "index", "html")``
    (or only ``var countPage = N``) → ``index.html``, ``index_1.html`` … ``index_{N-1}.html``."""
    code = "\n".join(scripts)
    variables = {name: int(value) for name, value in _JS_NUMBER_VAR.findall(code)}
    pagers: list[tuple[int, str, str]] = []
    for call in _CREATE_PAGE_CALL.finditer(code):
        if code[: call.start()].rstrip().endswith("function"):
            continue  # the pager's own definition, inlined by some templates
        args = [a.strip() for a in call.group(1).split(",")]
        numbers = [n for n in (_resolve_js_int(a, variables) for a in args) if n is not None]
        strings = [a.strip("\"'") for a in args if len(a) >= 2 and a[0] in "\"'" and a[-1] == a[0]]
        if not numbers:
            continue
        name, ext = (strings[-2], strings[-1]) if len(strings) >= 2 else ("index", "html")
        pagers.append((numbers[0], name, ext))
    if not pagers:
        count = _COUNT_PAGE_VAR.search(code)
        if count:
            pagers.append((int(count.group(1)), "index", "html"))
    urls: list[str] = []
    for count, name, ext in pagers:
        for page in range(min(count, MAX_GENERATED_PAGES)):
            relative = f"{name}.{ext}" if page == 0 else f"{name}_{page}.{ext}"
            url = _clean_url(relative, base_url)
            if url and url != _clean_url(base_url, base_url) and url not in urls:
                urls.append(url)
    return urls


def _element_text(element: etree._Element) -> str:
    try:
        return normalise_text(element.text_content())
    except ValueError:
        return ""


def extract_links(html: str, base_url: str) -> list[DiscoveredLink]:
    """Report, attachment and listing links on one page, in page order, one per URL."""
    if not html or not html.strip():
        return []
    try:
        root = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return []
    this_page = _clean_url(base_url, base_url)
    base_href = root.xpath("string(//base/@href)")
    if base_href:
        base_url = _clean_url(base_href, base_url) or base_url

    found: dict[str, DiscoveredLink] = {}

    def add(url: str | None, text: str, kind: LinkKind | None = None) -> None:
        if not url or url == this_page:
            return
        viewer_target = _pdf_viewer_target(url)
        if viewer_target:
            url, kind = viewer_target, "attachment"
        kind = kind or classify_link(url, text, base_url)
        if kind is None:
            return
        link = DiscoveredLink(url=url, text=text, kind=kind, year=report_year_from_title(text))
        previous = found.get(url)
        if (
            previous is None
            or KIND_PRIORITY[kind] < KIND_PRIORITY[previous.kind]
            or (kind == previous.kind and previous.year is None and link.year is not None)
        ):
            found[url] = link

    for element in root.iter("a", "area"):
        text = _element_text(element)
        title = normalise_text(element.get("title"))
        label = title if len(title) > len(text) else text
        href = (element.get("href") or "").strip()
        if href.lower().startswith("javascript:"):
            for url in _urls_in_script(unquote(href), base_url):
                add(url, label)
        else:
            add(_clean_url(href, base_url), label)
    for element in root.xpath("//*[@onclick]"):
        label = normalise_text(element.get("title")) or _element_text(element)
        for url in _urls_in_script(element.get("onclick") or "", base_url):
            add(url, label)
    for element in root.iter("iframe", "frame", "embed", "object"):
        source = element.get("src") or element.get("data") or ""
        url = _clean_url(source, base_url)
        if url and (is_attachment_url(url) or _pdf_viewer_target(url)):
            add(url, normalise_text(element.get("title")), "attachment")
    for element in root.iter("meta"):
        if (element.get("http-equiv") or "").lower() == "refresh":
            target = re.search(r"url\s*=\s*['\"]?([^'\";]+)", element.get("content") or "", re.I)
            if target:
                add(_clean_url(target.group(1), base_url), "", "listing")
    scripts = [s.text or "" for s in root.iter("script")]
    for url in paginated_urls(scripts, base_url):
        add(url, "", "listing")
    return list(found.values())
