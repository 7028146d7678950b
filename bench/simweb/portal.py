"""The simulated government web as data: hosts, their pages and the ground truth (pure, deterministic).

:func:`build_portal` turns a :class:`PortalConfig` into one :class:`HostSite` per loopback
address (``127.0.1.1``, ``127.0.1.2`` … — distinct hosts for every crawler, Scrapy's download
slots included), each with the pages a 政府信息公开年报 column really has:

- **TRS-style** hosts (even index): ``/xxgk/zfxxgknb/index.html`` + ``index_1.html`` …, the pager
  only a ``createPageHTML(countPage, page, "index", "html")`` script (no links); detail pages at
  ``/xxgk/zfxxgknb/YYYYMM/tYYYYMMDD_N.html``; attachments linked by ``href``.
- **Hanweb-style** hosts (odd index): ``/col/colC/index.html`` with ``?uid=…&pageNum=k`` pages
  linked by 首页/上一页/下一页/尾页; detail pages at ``/art/Y/M/D/art_C_D.html``; attachments behind
  ``onclick="window.open('/module/download/downfile.jsp?…filename=….pdf')"``.
- Report bodies are seed reports (the demo's documents, :func:`worker.demo.pages.document`, and
  two renderings of our own in ``data/``) with a unique agency name per report, so every
  report is its own filer; one in five is the faulty seed (its ``t3_*`` anomalies are the
  *seeded anomalies*), one in four reports is only an attachment (DOCX, or the faulty PDF).
- One host in five is GBK (labelled ``gb2312``, agency names with GBK-only characters such as
  堃 and 镕); four in five send ``ETag``/``Last-Modified`` and answer conditional GETs with 304;
  one in ten asks for a ``Crawl-delay``; one in seven links a draft that robots.txt disallows.

Nothing here does I/O except reading the seed files; the list and detail pages come from the
demo's page makers (:mod:`worker.demo.pages`). The server
(:mod:`bench.simweb.server`) serves what this module builds, and the benchmarks judge crawlers
against :meth:`Portal.truth`.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from worker.demo import pages as demo_pages
from worker.demo.pages import ListItem, content_type_meta, document

# the seeds the demo does not bundle: the clean report as HTML, the faulty one as PDF
DATA_DIR = Path(__file__).with_name("data")

# the anomalies the faulty seed carries (checked by tests/unit/test_simweb.py against the rules)
FAULTY_RULES: tuple[str, ...] = ("t3_identity", "t3_result_sum", "t3_row_sum")
HTML_UTF8 = "text/html; charset=utf-8"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

# characters agency names are spelled from (all in GB2312); GBK hosts add GBK-only ones
NAME_CHARS = "青石岭白水河东西南北山川林泉溪桥湖岗坪塘湾田源峰岩龙凤云霞安康宁平和兴隆盛丰乐华新"
GBK_ONLY_CHARS = "堃镕"


def town_name(serial: int, *, gbk_only: bool = False) -> str:
    """A unique town name for report number ``serial`` (three characters, base len(NAME_CHARS))."""
    base = len(NAME_CHARS)
    digits = []
    n = serial
    for _ in range(3):
        digits.append(NAME_CHARS[n % base])
        n //= base
    if n:
        raise ValueError(f"serial {serial} is too large for a three-character name")
    if gbk_only:
        digits[0] = GBK_ONLY_CHARS[serial % len(GBK_ONLY_CHARS)]
    return "".join(digits)


@dataclass(frozen=True)
class PortalConfig:
    hosts: int = 10
    reports_per_host: int = 20
    list_page_size: int = 15
    port: int = 8080
    network: str = "127.0.1"  # host i is {network}.{i + 1}
    # share knobs, as "one host in N" (deterministic by index, no randomness to reproduce)
    gbk_every: int = 5
    no_validators_every: int = 5
    crawl_delay_every: int = 10
    crawl_delay_s: float = 2.0
    robots_draft_every: int = 7
    anomaly_every: int = 5
    attachment_every: int = 4
    noise_per_list_page: int = 1

    def address(self, index: int) -> str:
        address = f"{self.network}.{index + 1}"
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError(f"{address} is not a loopback address: the simulated web stays on loopback")
        return address


@dataclass(frozen=True)
class Page:
    body: bytes
    content_type: str
    kind: str  # robots | home | listing | report | attachment | detail | noise | draft
    last_modified: datetime

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'

    @property
    def last_modified_http(self) -> str:
        return format_datetime(self.last_modified, usegmt=True)


@dataclass(frozen=True)
class ReportTruth:
    """One report document: where it is, what carries it, what the checks must find in it."""

    path: str  # the document's path (the detail page for inline HTML, else the attachment)
    detail_path: str  # the page linked from the list
    carrier: str  # html | docx | pdf
    agency: str
    year: int
    expected_rules: tuple[str, ...]


@dataclass
class HostSite:
    index: int
    address: str
    platform: str  # trs | hanweb
    encoding: str  # utf-8 | gbk
    validators: bool
    crawl_delay_s: float | None
    entry_path: str
    pages: dict[str, Page] = field(default_factory=dict)
    reports: list[ReportTruth] = field(default_factory=list)
    disallowed: tuple[str, ...] = ("/private/",)

    @property
    def name(self) -> str:
        return f"模拟{self.index + 1:03d}县人民政府"

    def lookup(self, target: str) -> Page | None:
        """The page for a request target (query parameters in any order)."""
        return self.pages.get(page_key(target))

    def truth(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "address": self.address,
            "name": self.name,
            "platform": self.platform,
            "encoding": self.encoding,
            "validators": self.validators,
            "crawl_delay_s": self.crawl_delay_s,
            "entry_path": self.entry_path,
            "disallowed": list(self.disallowed),
            "pages": {path: page.kind for path, page in self.pages.items()},
            "reports": [
                vars(report) | {"expected_rules": list(report.expected_rules)} for report in self.reports
            ],
        }


def page_key(target: str) -> str:
    """A request target normalised the way the portal stores paths: query parameters sorted."""
    parts = urlsplit(target)
    path = parts.path or "/"
    if not parts.query:
        return path
    query = "&".join(f"{k}={v}" for k, v in sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return f"{path}?{query}"


# --------------------------------------------------------------------------- seed bodies


UTF8_META = "<meta charset='utf-8'>"


@dataclass(frozen=True)
class SeedBodies:
    clean_html: str
    faulty_html: str
    faulty_gbk_html: str  # the faulty seed as a GBK site labels it (served encoded as GBK)
    clean_docx: bytes
    faulty_pdf: bytes

    @classmethod
    def load(cls, data_dir: Path = DATA_DIR) -> SeedBodies:
        faulty_html = document("duantan_2020.html").decode("utf-8")
        return cls(
            clean_html=(data_dir / "clean_2021.html").read_text("utf-8"),
            faulty_html=faulty_html,
            faulty_gbk_html=faulty_html.replace(UTF8_META, content_type_meta("gbk")),
            clean_docx=document("guanpo_2023.docx"),
            faulty_pdf=(data_dir / "faulty_2019.pdf").read_bytes(),
        )

    def documents(self) -> list[tuple[str, bytes]]:
        """Every seed as (carrier, bytes as served): the inputs the fuzz harness mutates."""
        return [
            ("docx", self.clean_docx),
            ("html", self.clean_html.encode("utf-8")),
            ("html", self.faulty_html.encode("utf-8")),
            ("pdf", self.faulty_pdf),
            ("html", self.faulty_gbk_html.encode("gbk")),
        ]


# the seed's own town, replaced by the generated one; the agency the parser reads, and its year
CLEAN_TOWN, CLEAN_SUFFIX, CLEAN_YEAR = "官坡镇", "镇人民政府", 2023
FAULTY_TOWN, FAULTY_PREFIX, FAULTY_SUFFIX, FAULTY_YEAR = "段潭乡", "丰城市", "乡人民政府", 2020
PDF_AGENCY = "丰城市段潭乡人民政府"


def render_docx(template: bytes, old: str, new: str) -> bytes:
    """The DOCX with ``old`` replaced by ``new`` in every XML part (document text and metadata)."""
    source = zipfile.ZipFile(io.BytesIO(template))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.endswith(".xml"):
                data = data.decode("utf-8").replace(old, new).encode("utf-8")
            target.writestr(info, data)
    return out.getvalue()


# --------------------------------------------------------------------------- page makers


def _html(text: str, encoding: str) -> bytes:
    return text.encode(encoding)


def trs_list_page(*, site: str, items: list[ListItem], page: int, pages: int, encoding: str) -> str:
    """A TRS WCM list page: the pager is only a ``createPageHTML`` call (no links to other pages)."""
    return demo_pages.trs_list_page(
        site_name=site,
        column="政府信息公开年报",
        items=items,
        page=page,
        pages=pages,
        head_meta=content_type_meta(encoding) + "\n",
        breadcrumb=(
            '<div class="position">当前位置：<a href="/">首页</a> &gt; '
            "政府信息公开 &gt; 政府信息公开年报</div>"
        ),
    )


def hanweb_list_page(
    *,
    site: str,
    column: int,
    uid: int,
    items: list[ListItem],
    page: int,
    pages: int,
    encoding: str,
) -> str:
    """A Hanweb list page: rows in a table and a 首页/上一页/下一页/尾页 pager (``pageNum`` links)."""

    def href(n: int) -> str:
        return (
            f"/col/col{column}/index.html" if n == 1 else f"/col/col{column}/index.html?uid={uid}&pageNum={n}"
        )

    pager = [f'<a href="{href(1)}">首页</a>']
    if page > 1:
        pager.append(f'<a href="{href(page - 1)}">上一页</a>')
    if page < pages:
        pager.append(f'<a href="{href(page + 1)}">下一页</a>')
    pager.append(f'<a href="{href(pages)}">尾页</a>')
    return demo_pages.table_list_page(
        site_name=site,
        column="政府信息公开年报",
        items=items,
        encoding=encoding,
        breadcrumb=(
            '<div class="bt-position">您当前的位置：<a href="/">首页</a> &gt; '
            "信息公开 &gt; 政府信息公开年报</div>"
        ),
        pager=f'<div class="default_pgPanel">{" ".join(pager)} <span>共{pages}页</span></div>',
        table_id=uid,
        new_window=True,
    )


def noise_page(*, title: str, encoding: str) -> str:
    return (
        f"<html><head>{content_type_meta(encoding)}"
        f"<title>{title}</title></head><body><h1>{title}</h1><p>为做好相关工作，现将有关事项通知如下。</p>"
        "</body></html>"
    )


def home_page(*, site: str, entry: str, encoding: str) -> str:
    return (
        f"<html><head>{content_type_meta(encoding)}"
        f"<title>{site}</title></head><body><h1>{site}</h1>"
        f'<a href="{entry}">政府信息公开年报</a></body></html>'
    )


# --------------------------------------------------------------------------- one host


def _published(index: int, serial: int) -> datetime:
    return datetime(2021, 1, 10, 9, 0, tzinfo=UTC) + timedelta(days=serial % 80, minutes=index)


def build_host(config: PortalConfig, index: int, seeds: SeedBodies) -> HostSite:
    platform = "trs" if index % 2 == 0 else "hanweb"
    gbk = config.gbk_every > 0 and index % config.gbk_every == config.gbk_every - 1
    encoding = "gbk" if gbk else "utf-8"
    validators = not (config.no_validators_every > 0 and index % config.no_validators_every == 3)
    crawl_delay = (
        config.crawl_delay_s
        if config.crawl_delay_every > 0 and index % config.crawl_delay_every == config.crawl_delay_every - 4
        else None
    )
    column = 4000 + index
    uid = 50000 + index
    entry = "/xxgk/zfxxgknb/index.html" if platform == "trs" else f"/col/col{column}/index.html"
    host = HostSite(
        index=index,
        address=config.address(index),
        platform=platform,
        encoding=encoding,
        validators=validators,
        crawl_delay_s=crawl_delay,
        entry_path=entry,
    )
    html_type = HTML_UTF8 if not gbk else ("text/html" if index % 2 else "text/html; charset=gb2312")
    site_updated = _published(index, 0)

    # robots.txt
    robots = "User-agent: *\nDisallow: /private/\n"
    if crawl_delay is not None:
        robots += f"Crawl-delay: {crawl_delay:g}\n"
    host.pages["/robots.txt"] = Page(robots.encode(), "text/plain", "robots", site_updated)
    home = _html(home_page(site=host.name, entry=entry, encoding=encoding), encoding)
    host.pages["/"] = Page(home, html_type, "home", site_updated)
    host.pages["/index.html"] = Page(home, html_type, "home", site_updated)

    # reports, newest first
    items: list[ListItem] = []
    for j in range(config.reports_per_host):
        serial = index * config.reports_per_host + j
        published = _published(index, serial)
        date_text = published.date().isoformat()
        faulty = config.anomaly_every > 0 and serial % config.anomaly_every == 0
        attachment = (
            config.attachment_every > 0 and j % config.attachment_every == config.attachment_every - 1
        )
        town = town_name(serial, gbk_only=gbk)
        if platform == "trs":
            detail = f"/xxgk/zfxxgknb/{published:%Y%m}/t{published:%Y%m%d}_{100000 + j}.html"
        else:
            detail = f"/art/{published.year}/{published.month}/{published.day}/art_{column}_{1000 + j}.html"
        if attachment:
            carrier = "pdf" if faulty else "docx"
            digest = hashlib.sha1(f"{index}/{j}".encode()).hexdigest()[:12]
            if platform == "trs":
                doc_path = f"/xxgk/zfxxgknb/{published:%Y%m}/P0{published:%Y%m%d}{digest}.{carrier}"
            else:
                doc_path = f"/module/download/downfile.jsp?classid=0&filename={digest}.{carrier}"
            if carrier == "pdf":
                agency, year, rules = PDF_AGENCY, FAULTY_YEAR, FAULTY_RULES
                body, doc_type = (
                    seeds.faulty_pdf,
                    ("application/pdf" if platform == "trs" else "application/octet-stream"),
                )
            else:
                agency, year, rules = f"{town}{CLEAN_SUFFIX}", CLEAN_YEAR, ()
                body, doc_type = render_docx(seeds.clean_docx, CLEAN_TOWN, f"{town}镇"), DOCX_TYPE
            title = f"{agency}{year}年政府信息公开工作年度报告"
            host.pages[page_key(doc_path)] = Page(body, doc_type, "attachment", published)
            detail_html = demo_pages.attachment_detail_page(
                site_name=host.name,
                title=title,
                href=doc_path,
                name=f"{title}.{carrier}",
                published=date_text,
                encoding=encoding,
                onclick=platform == "hanweb",
            )
            host.pages[detail] = Page(_html(detail_html, encoding), html_type, "detail", published)
            host.reports.append(ReportTruth(doc_path, detail, carrier, agency, year, rules))
        else:
            if faulty:
                agency, year, rules = f"{FAULTY_PREFIX}{town}{FAULTY_SUFFIX}", FAULTY_YEAR, FAULTY_RULES
                text = (seeds.faulty_gbk_html if gbk else seeds.faulty_html).replace(FAULTY_TOWN, f"{town}乡")
            else:
                agency, year, rules = f"{town}{CLEAN_SUFFIX}", CLEAN_YEAR, ()
                text = seeds.clean_html.replace(CLEAN_TOWN, f"{town}镇")
                if gbk:
                    text = text.replace(UTF8_META, "<meta charset='gb2312'>")
            title = f"{agency}{year}年政府信息公开工作年度报告"
            host.pages[detail] = Page(_html(text, encoding), html_type, "report", published)
            host.reports.append(ReportTruth(detail, detail, "html", agency, year, rules))
        items.append((title, detail, date_text))

    # a notice or two among the reports, and a robots-disallowed draft on some hosts
    listing: list[ListItem] = []
    per_page = max(config.list_page_size, 1)
    noise_serial = 0
    for start in range(0, len(items), per_page):
        chunk = list(items[start : start + per_page])
        for _ in range(config.noise_per_list_page):
            noise_serial += 1
            published = _published(index, noise_serial)
            if platform == "trs":
                path = f"/xxgk/zfxxgknb/{published:%Y%m}/t{published:%Y%m%d}_{900000 + noise_serial}.html"
            else:
                day = f"{published.year}/{published.month}/{published.day}"
                path = f"/art/{day}/art_{column}_{9000 + noise_serial}.html"
            title = f"关于做好{2021 + noise_serial % 3}年春季森林防火工作的通知"
            host.pages[path] = Page(
                _html(noise_page(title=title, encoding=encoding), encoding), html_type, "noise", published
            )
            chunk.insert(len(chunk) // 2, (title, path, published.date().isoformat()))
        listing.extend(chunk)
    if config.robots_draft_every > 0 and index % config.robots_draft_every == 0:
        draft = f"/private/draft_{index}.html"
        host.pages[draft] = Page(
            _html(noise_page(title="草稿", encoding=encoding), encoding), html_type, "draft", site_updated
        )
        listing.insert(
            0, (f"{host.name}政府信息公开工作年度报告（征求意见稿）", draft, site_updated.date().isoformat())
        )

    size = per_page + config.noise_per_list_page
    pages = max(1, -(-len(listing) // size))
    for k in range(pages):
        chunk = listing[k * size : (k + 1) * size]
        newest = max(
            (datetime.fromisoformat(d).replace(tzinfo=UTC) for _t, _h, d in chunk), default=site_updated
        )
        if platform == "trs":
            path = "/xxgk/zfxxgknb/index.html" if k == 0 else f"/xxgk/zfxxgknb/index_{k}.html"
            # TRS pages link relative to the column: ./YYYYMM/t….html
            rel = [
                (t, "." + h.removeprefix("/xxgk/zfxxgknb") if h.startswith("/xxgk/zfxxgknb/") else h, d)
                for t, h, d in chunk
            ]
            text = trs_list_page(site=host.name, items=rel, page=k, pages=pages, encoding=encoding)
        else:
            path = page_key(
                f"/col/col{column}/index.html"
                if k == 0
                else f"/col/col{column}/index.html?uid={uid}&pageNum={k + 1}"
            )
            text = hanweb_list_page(
                site=host.name,
                column=column,
                uid=uid,
                items=chunk,
                page=k + 1,
                pages=pages,
                encoding=encoding,
            )
        host.pages[path] = Page(_html(text, encoding), html_type, "listing", newest)
    return host


@dataclass
class Portal:
    config: PortalConfig
    hosts: list[HostSite]

    def host(self, address: str) -> HostSite | None:
        return self._by_address.get(address)

    def __post_init__(self) -> None:
        self._by_address = {host.address: host for host in self.hosts}

    def truth(self) -> dict[str, Any]:
        return {
            "port": self.config.port,
            "config": vars(self.config),
            "hosts": [h.truth() for h in self.hosts],
        }

    def entry_urls(self) -> list[str]:
        return [f"http://{h.address}:{self.config.port}{h.entry_path}" for h in self.hosts]


def build_portal(config: PortalConfig, seeds: SeedBodies | None = None) -> Portal:
    seeds = seeds or SeedBodies.load()
    return Portal(config, [build_host(config, i, seeds) for i in range(config.hosts)])
