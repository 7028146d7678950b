"""The bundled sample government portal that ``xxgk demo`` and the end-to-end tests crawl.

Several "hosts" (distinct loopback addresses, 127.0.0.2 …, one port) serve the kinds of
pages the crawler meets on real 政府信息公开 columns, generated from the small documents in
``data/``:

* TRS-style list pages whose pager exists only as ``createPageHTML(n, …)`` in a script,
  and a GBK site with ``下一页`` links and an ``onclick`` attachment;
* HTML reports (one a real faulty filing, one with blank tables), a PDF and a DOCX;
* a ``robots.txt`` whose ``Disallow`` covers a linked draft, a link that redirects to the
  cloud metadata address (the SSRF guard must refuse it), an anti-bot 412 page, an agency
  that has not filed;
* ``ETag``/``Last-Modified`` on every document, answered with 304 on a conditional GET;
* a report silently edited after publication: :meth:`DemoPortal.publish_edit` switches
  the portal to its second edition, where that report has different bytes.

Every request is logged server-side (:attr:`DemoPortal.requests`) with its host, path,
arrival and finish times and how many requests that host was already serving, so tests
judge politeness from the server's point of view, not the crawler's.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.server
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from worker.demo.pages import (
    ListItem,
    attachment_detail_page,
    document,
    table_list_page,
    trs_list_page,
)

DEFAULT_ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6")

BodyFn = Callable[[int], bytes]  # edition -> bytes


# --------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class Route:
    """What one path answers. ``body``/``last_modified`` may depend on the edition."""

    body: BodyFn
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    last_modified: Callable[[int], datetime] | None = None
    location: str | None = None  # for redirects
    extra_headers: tuple[tuple[str, str], ...] = ()


def _static(
    data: bytes | BodyFn, content_type: str, published: datetime, edited: datetime | None = None
) -> Route:
    def same_bytes(_edition: int) -> bytes:
        assert isinstance(data, bytes)
        return data

    body: BodyFn = data if callable(data) else same_bytes

    def last_modified(edition: int) -> datetime:
        return edited if (edited is not None and edition >= 2) else published

    return Route(body=body, content_type=content_type, last_modified=last_modified)


def _utc(y: int, m: int, d: int, hh: int = 9) -> datetime:
    return datetime(y, m, d, hh, 0, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- page makers


def _trs_list_page(
    *,
    site_name: str,
    column: str,
    items: list[ListItem],
    page: int,
    pages: int,
    encoding: str = "utf-8",
) -> bytes:
    """A TRS WCM list page: the pager is only a ``createPageHTML`` call (no links)."""
    breadcrumb = (
        f'<div class="header"><a href="/">{site_name}</a> &gt; '
        f'<a href="/xxgk/">政府信息公开</a> &gt; {column}</div>'
    )
    html = trs_list_page(
        site_name=site_name,
        column=column,
        items=items,
        page=page,
        pages=pages,
        head_meta=f'<meta charset="{encoding}">',
        breadcrumb=breadcrumb,
    )
    return html.encode(encoding)


def _linked_list_page(
    *,
    site_name: str,
    column: str,
    items: list[ListItem],
    next_href: str | None,
    prev_href: str | None,
    encoding: str,
) -> bytes:
    """A list page with plain 上一页/下一页 links (encoded as the site is)."""
    pager = " ".join(
        part
        for part in (
            f'<a href="{prev_href}">上一页</a>' if prev_href else "",
            f'<a href="{next_href}">下一页</a>' if next_href else "",
        )
        if part
    )
    html = table_list_page(
        site_name=site_name,
        column=column,
        items=items,
        encoding=encoding,
        breadcrumb=f'<div class="position">当前位置：首页 &gt; 信息公开 &gt; {column}</div>',
        pager=f'<div class="pager">{pager}</div>',
    )
    return html.encode(encoding)


def _attachment_detail_page(
    *, site_name: str, title: str, attachment_href: str, attachment_name: str, published: str, encoding: str
) -> bytes:
    """A detail page whose body is only "see the attachment", linked via ``onclick``."""
    html = attachment_detail_page(
        site_name=site_name,
        title=title,
        href=attachment_href,
        name=attachment_name,
        published=published,
        encoding=encoding,
        onclick=True,
        break_before_close=True,
    )
    return html.encode(encoding)


def _challenge_page() -> bytes:
    """What a 瑞数-style gate answers on the first request: 412 and obfuscated script."""
    return (
        b'<!DOCTYPE html><html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        b'<script type="text/javascript" r="m">$_ts=window[\'$_ts\'];if(!$_ts)$_ts={};$_ts.nsd=60122;'
        b'$_ts.cd="qqzErpAlEGqGcGVzqqzqqq";</script>'
        b'<script type="text/javascript" charset="utf-8" src="/4QbVtADbnLVIc/c.FxJzG50F.js" r="m"></script>'
        b"</head><body></body></html>"
    )


def _notice_page(text: str) -> bytes:
    """An ordinary notice in a report column: a link a crawler follows, not a report."""
    head = "<html><head><meta charset='utf-8'><title>通知</title></head>"
    return f"{head}<body><p>{text}</p></body></html>".encode()


def _edited_chengjiao(edition: int) -> bytes:
    """城郊乡's 2020 report; in edition 2 the 行政许可 decisions quietly change 241 → 245."""
    data = document("chengjiao_2020_gbk.html")
    if edition >= 2:
        data = data.replace(
            "<td colspan='1'>241</td>".encode("gbk"), "<td colspan='1'>245</td>".encode("gbk")
        )
    return data


# --------------------------------------------------------------------------- the sites


@dataclass(frozen=True)
class DemoSite:
    """One registry entry of the demo: an agency and its annual-report column on a host."""

    name: str
    agency: str
    level: str
    region_code: str
    host: int  # index into the portal's addresses
    entry_path: str
    # what a complete crawl should find here (for the summary and the tests)
    expected_reports: tuple[str, ...] = ()
    note: str = ""


SITES: tuple[DemoSite, ...] = (
    DemoSite(
        "丰城市段潭乡人民政府",
        "丰城市段潭乡人民政府",
        "township",
        "360981",
        0,
        "/xxgk/xzjd/dtx/zfxxgknb/index.html",
        ("duantan_2020",),
        "TRS pager in a script; a faulty filing; a robots.txt-disallowed draft; an SSRF redirect",
    ),
    DemoSite(
        "丰城市人民政府",
        "丰城市人民政府",
        "government",
        "360981",
        0,
        "/xxgk/zfxxgknb/index.html",
        (),
        "has not published its report: missing_report",
    ),
    DemoSite(
        "固镇县城市管理局",
        "固镇县城市管理局",
        "department",
        "340323",
        1,
        "/col/col4321/index.html",
        ("guzhen_cgj_2020",),
        "GBK site; 下一页 pagination; PDF behind an onclick link",
    ),
    DemoSite(
        "城郊乡人民政府",
        "城郊乡人民政府",
        "township",
        "340323",
        1,
        "/col/col4322/index.html",
        ("chengjiao_2020",),
        "GBK HTML report, silently edited after publication",
    ),
    DemoSite(
        "官坡镇人民政府",
        "官坡镇人民政府",
        "township",
        "411224",
        2,
        "/zwgk/gknb/gpz/index.html",
        ("guanpo_2023",),
        "DOCX attachment linked from the list",
    ),
    DemoSite(
        "郑庄子镇人民政府",
        "郑庄子镇人民政府",
        "township",
        "120118",
        3,
        "/xxgk/ndbg/index.html",
        ("zhengzhuangzi_2021",),
        "published its tables blank",
    ),
    DemoSite(
        "某市卫生健康委员会",
        "某市卫生健康委员会",
        "department",
        "360900",
        4,
        "/xxgk/zfxxgknb/index.html",
        (),
        "answers 412 + script (anti-bot): blocked, not missing",
    ),
)

# expected report documents: key -> (agency, year) as the parser should read them
EXPECTED_REPORTS: dict[str, tuple[str, int]] = {
    "duantan_2020": ("丰城市段潭乡人民政府", 2020),
    "guzhen_cgj_2020": ("固镇县城市管理局", 2020),
    "chengjiao_2020": ("城郊乡人民政府", 2020),
    "guanpo_2023": ("官坡镇人民政府", 2023),
    "zhengzhuangzi_2021": ("郑庄子镇", 2021),
}
# the path each expected report document is served at
REPORT_PATHS: dict[str, str] = {
    "duantan_2020": "/xxgk/xzjd/dtx/zfxxgknb/202101/t20210112_100003.html",
    "guzhen_cgj_2020": "/picture/0/2101251030123.pdf",
    "chengjiao_2020": "/art/2021/1/20/art_4322_1002.html",
    "guanpo_2023": "/zwgk/gknb/gpz/P020240125388126.docx",
    "zhengzhuangzi_2021": "/xxgk/ndbg/202201/t20220125_2001.html",
}
ROBOTS_DISALLOWED_PATH = "/xxgk/internal/t20210110_draft.html"
# two links that redirect where a crawler must never connect: the cloud metadata address
# (off the site's domains: refused by scope) and another port on the portal's own address
# (in scope, refused by the SSRF guard, whose allow-list names the portal's port only)
SSRF_REDIRECT_PATH = "/xxgk/xzjd/dtx/zfxxgknb/202101/t20210112_100004.html"
SSRF_REDIRECT_TARGET = "http://169.254.169.254/latest/meta-data/"
SSRF_PORT_REDIRECT_PATH = "/xxgk/xzjd/dtx/zfxxgknb/202101/t20210112_100005.html"
SSRF_OTHER_PORT = 6379
EDITED_REPORT = "chengjiao_2020"


def _routes() -> list[dict[str, Route]]:
    """The routes of each host (index = host number)."""
    utf8 = "text/html; charset=utf-8"
    gbk = "text/html; charset=gb2312"
    fengcheng: dict[str, Route] = {
        "/robots.txt": _static(b"User-agent: *\nDisallow: /xxgk/internal/\n", "text/plain", _utc(2020, 1, 1)),
        "/xxgk/xzjd/dtx/zfxxgknb/index.html": _static(
            _trs_list_page(
                site_name="丰城市人民政府",
                column="段潭乡政府信息公开年报",
                page=0,
                pages=2,
                items=[
                    (
                        "丰城市段潭乡2020年政府信息公开工作年度报告（征求意见稿）",
                        ROBOTS_DISALLOWED_PATH,
                        "2021-01-10",
                    ),
                    (
                        "丰城市段潭乡2020年政府信息公开工作年度报告（备用下载）",
                        "./202101/t20210112_100004.html",
                        "2021-01-12",
                    ),
                    (
                        "丰城市段潭乡2020年政府信息公开工作年度报告（镜像）",
                        "./202101/t20210112_100005.html",
                        "2021-01-12",
                    ),
                    (
                        "段潭乡关于开展2021年春季森林防火工作的通知",
                        "./202102/t20210203_100020.html",
                        "2021-02-03",
                    ),
                ],
            ),
            utf8,
            _utc(2021, 2, 3),
        ),
        "/xxgk/xzjd/dtx/zfxxgknb/index_1.html": _static(
            _trs_list_page(
                site_name="丰城市人民政府",
                column="段潭乡政府信息公开年报",
                page=1,
                pages=2,
                items=[
                    (
                        "丰城市段潭乡2020年政府信息公开工作年度报告",
                        "./202101/t20210112_100003.html",
                        "2021-01-12",
                    ),
                ],
            ),
            utf8,
            _utc(2021, 1, 12),
        ),
        REPORT_PATHS["duantan_2020"]: _static(document("duantan_2020.html"), utf8, _utc(2021, 1, 12)),
        SSRF_REDIRECT_PATH: Route(body=lambda _e: b"", status=302, location=SSRF_REDIRECT_TARGET),
        # the Location is filled in per request: the same address, another port
        SSRF_PORT_REDIRECT_PATH: Route(
            body=lambda _e: b"", status=302, location=f"SAME_HOST:{SSRF_OTHER_PORT}"
        ),
        ROBOTS_DISALLOWED_PATH: _static(b"<html><body>draft</body></html>", utf8, _utc(2021, 1, 10)),
        "/xxgk/xzjd/dtx/zfxxgknb/202102/t20210203_100020.html": _static(
            _notice_page("森林防火。"),
            utf8,
            _utc(2021, 2, 3),
        ),
        "/xxgk/zfxxgknb/index.html": _static(
            _trs_list_page(
                site_name="丰城市人民政府",
                column="政府信息公开年报",
                page=0,
                pages=1,
                items=[
                    (
                        "丰城市人民政府办公室关于做好2021年春节期间值班工作的通知",
                        "./202102/t20210205_3001.html",
                        "2021-02-05",
                    ),
                ],
            ),
            utf8,
            _utc(2021, 2, 5),
        ),
        "/xxgk/zfxxgknb/202102/t20210205_3001.html": _static(
            _notice_page("值班。"),
            utf8,
            _utc(2021, 2, 5),
        ),
    }
    guzhen: dict[str, Route] = {
        "/robots.txt": _static(b"User-agent: *\nAllow: /\n", "text/plain", _utc(2020, 1, 1)),
        "/col/col4321/index.html": _static(
            _linked_list_page(
                site_name="固镇县人民政府",
                column="城市管理局政府信息公开年报",
                encoding="gbk",
                prev_href=None,
                next_href="/col/col4321/index_2.html",
                items=[
                    (
                        "固镇县城市管理局关于城区道路占道施工的公告",
                        "/art/2021/3/2/art_4321_1101.html",
                        "2021-03-02",
                    ),
                ],
            ),
            gbk,
            _utc(2021, 3, 2),
        ),
        "/col/col4321/index_2.html": _static(
            _linked_list_page(
                site_name="固镇县人民政府",
                column="城市管理局政府信息公开年报",
                encoding="gbk",
                prev_href="/col/col4321/index.html",
                next_href=None,
                items=[
                    (
                        "固镇县城市管理局2020年政府信息公开工作年度报告",
                        "/art/2021/1/25/art_4321_1001.html",
                        "2021-01-25",
                    ),
                ],
            ),
            gbk,
            _utc(2021, 1, 25),
        ),
        "/art/2021/3/2/art_4321_1101.html": _static(
            "<html><head><meta http-equiv='Content-Type' content='text/html; charset=gb2312'></head>"
            "<body><p>占道施工公告。</p></body></html>".encode("gbk"),
            gbk,
            _utc(2021, 3, 2),
        ),
        "/art/2021/1/25/art_4321_1001.html": _static(
            _attachment_detail_page(
                site_name="固镇县人民政府",
                title="固镇县城市管理局2020年政府信息公开工作年度报告",
                attachment_href=REPORT_PATHS["guzhen_cgj_2020"],
                attachment_name="固镇县城市管理局2020年政府信息公开工作年度报告.pdf",
                published="2021-01-25",
                encoding="gbk",
            ),
            gbk,
            _utc(2021, 1, 25),
        ),
        REPORT_PATHS["guzhen_cgj_2020"]: _static(
            document("guzhen_cgj_2020.pdf"), "application/pdf", _utc(2021, 1, 25)
        ),
        "/col/col4322/index.html": _static(
            _linked_list_page(
                site_name="固镇县人民政府",
                column="城郊乡政府信息公开年报",
                encoding="gbk",
                prev_href=None,
                next_href=None,
                items=[
                    (
                        "城郊乡人民政府2020年政府信息公开工作年度报告",
                        REPORT_PATHS["chengjiao_2020"],
                        "2021-01-20",
                    ),
                ],
            ),
            gbk,
            _utc(2021, 1, 20),
        ),
        REPORT_PATHS["chengjiao_2020"]: _static(
            _edited_chengjiao, gbk, _utc(2021, 1, 20), edited=_utc(2021, 6, 1)
        ),
    }
    lushi: dict[str, Route] = {
        "/robots.txt": _static(b"User-agent: *\nDisallow:\n", "text/plain", _utc(2020, 1, 1)),
        "/zwgk/gknb/gpz/index.html": _static(
            _linked_list_page(
                site_name="卢氏县人民政府",
                column="官坡镇政府信息公开年报",
                encoding="utf-8",
                prev_href=None,
                next_href=None,
                items=[
                    ("官坡镇人民政府2023年政府信息公开工作年度报告", "./P020240125388126.docx", "2024-01-25"),
                ],
            ),
            utf8,
            _utc(2024, 1, 25),
        ),
        REPORT_PATHS["guanpo_2023"]: _static(
            document("guanpo_2023.docx"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            _utc(2024, 1, 25),
        ),
    }
    zhengzhuangzi: dict[str, Route] = {
        "/xxgk/ndbg/index.html": _static(
            _trs_list_page(
                site_name="郑庄子镇人民政府",
                column="政府信息公开年度报告",
                page=0,
                pages=1,
                items=[
                    ("郑庄子镇2021年政府信息公开工作年度报告", "./202201/t20220125_2001.html", "2022-01-25"),
                ],
            ),
            utf8,
            _utc(2022, 1, 25),
        ),
        REPORT_PATHS["zhengzhuangzi_2021"]: _static(
            document("zhengzhuangzi_2021.html"), utf8, _utc(2022, 1, 25)
        ),
    }
    challenge = Route(
        body=lambda _e: _challenge_page(),
        status=412,
        extra_headers=(("Set-Cookie", "FSSBBIl1UgzbN7N80S=qUGbZ3mD; Path=/; HttpOnly"),),
    )
    antibot: dict[str, Route] = {"/xxgk/zfxxgknb/index.html": challenge}
    return [fengcheng, guzhen, lushi, zhengzhuangzi, antibot]


# --------------------------------------------------------------------------- the server


@dataclass(frozen=True)
class RequestRecord:
    host: str
    path: str
    method: str
    status: int
    started: float  # time.monotonic() at arrival
    finished: float
    in_flight: int  # requests this host was already serving when this one arrived
    conditional: bool
    user_agent: str


@dataclass
class _HostState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "DemoGovPortal/1.0"
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        # the portal keeps its own structured request log; stderr stays quiet
        return

    def do_GET(self) -> None:
        portal: DemoPortal = self.server.portal  # type: ignore[attr-defined]
        portal._serve(self)

    def do_HEAD(self) -> None:
        self.do_GET()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class DemoPortal:
    """Serve the sample portal on ``addresses`` (one port for all) until :meth:`stop`.

    Use as a context manager. ``response_delay_s`` slows every answer (to make a crawl
    last long enough to interrupt in tests)."""

    def __init__(
        self, addresses: tuple[str, ...] = DEFAULT_ADDRESSES, *, port: int = 0, response_delay_s: float = 0.0
    ) -> None:
        if len(addresses) < len(_routes()):
            raise ValueError(f"the demo portal needs {len(_routes())} addresses")
        self.addresses = addresses
        self.port = port
        self.response_delay_s = response_delay_s
        self.edition = 1
        self.requests: list[RequestRecord] = []
        self._routes = _routes()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._hosts: dict[str, _HostState] = {}
        self._log_lock = threading.Lock()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> DemoPortal:
        for _attempt in range(20):
            try:
                self._bind_all()
                break
            except OSError as exc:
                self._close_servers()
                if exc.errno != errno.EADDRINUSE or self.port:
                    raise
        else:  # pragma: no cover - 20 collisions in a row
            raise OSError(errno.EADDRINUSE, "no common free port on the demo addresses")
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"demo-portal-{server.server_address[0]!s}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def _bind_all(self) -> None:
        port = self.port
        for address in self.addresses[: len(self._routes)]:
            server = _Server((address, port), _Handler)
            server.portal = self  # type: ignore[attr-defined]
            self._servers.append(server)
            port = server.server_address[1]
            self._hosts[address] = _HostState()
        self.port = port

    def _close_servers(self) -> None:
        for server in self._servers:
            server.server_close()
        self._servers.clear()
        self._hosts.clear()

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
        for thread in self._threads:
            thread.join(timeout=5)
        self._close_servers()
        self._threads.clear()

    def __enter__(self) -> DemoPortal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ what it serves

    def publish_edit(self) -> None:
        """Switch to the second edition: one report gets new bytes (a silent edit)."""
        self.edition = 2

    def host(self, index: int) -> str:
        return self.addresses[index]

    def url(self, host_index: int, path: str) -> str:
        return f"http://{self.addresses[host_index]}:{self.port}{path}"

    def report_urls(self) -> dict[str, str]:
        hosts = {
            "duantan_2020": 0,
            "guzhen_cgj_2020": 1,
            "chengjiao_2020": 1,
            "guanpo_2023": 2,
            "zhengzhuangzi_2021": 3,
        }
        return {key: self.url(hosts[key], path) for key, path in REPORT_PATHS.items()}

    def registry(self) -> list[dict[str, Any]]:
        """The site registry for this portal, as ``xxgk sites import`` reads it."""
        return [
            {
                "name": site.name,
                "agency": site.agency,
                "level": site.level,
                "region_code": site.region_code,
                "entry_urls": [self.url(site.host, site.entry_path)],
                "domains": [self.addresses[site.host]],
            }
            for site in SITES
        ]

    def registry_yaml(self) -> str:
        import yaml

        return yaml.safe_dump({"sites": self.registry()}, allow_unicode=True, sort_keys=False)

    @property
    def addresses_in_use(self) -> list[str]:
        return list(self.addresses[: len(self._routes)])

    @property
    def allow_list(self) -> list[str]:
        """What the SSRF guard must be told to let through: the portal's addresses, on its port only."""
        return [f"{address}:{self.port}" for address in self.addresses_in_use]

    def add_route(self, host_index: int, path: str, route: Route) -> None:
        """Serve one more path (tests: redirects to forbidden places, slow pages …)."""
        self._routes[host_index][path] = route

    # ------------------------------------------------------------ request log

    def requests_to(self, path: str) -> list[RequestRecord]:
        return [r for r in self.requests if r.path == path]

    def politeness_violations(self, delay_s: float) -> list[str]:
        """Requests that reached a host while it was still serving another, or less than
        ``delay_s`` after the previous request to it arrived — judged by the server's clock."""
        problems: list[str] = []
        by_host: dict[str, list[RequestRecord]] = {}
        for record in sorted(self.requests, key=lambda r: r.started):
            by_host.setdefault(record.host, []).append(record)
        for host, records in by_host.items():
            for previous, current in itertools.pairwise(records):
                gap = current.started - previous.started
                if current.in_flight > 0 or gap < delay_s:
                    problems.append(
                        f"{host}: {current.path} arrived {gap:.3f}s after {previous.path}"
                        f" (in flight: {current.in_flight})"
                    )
        return problems

    # ------------------------------------------------------------ serving

    def _serve(self, handler: _Handler) -> None:
        address = handler.connection.getsockname()[0]
        state = self._hosts.get(address)
        path = urlsplit(handler.path).path
        started = time.monotonic()
        if state is None:  # pragma: no cover - only bound addresses reach us
            handler.send_error(421)
            return
        with state.lock:
            in_flight = state.in_flight
            state.in_flight += 1
        status = 500
        conditional = bool(handler.headers.get("If-None-Match") or handler.headers.get("If-Modified-Since"))
        try:
            if self.response_delay_s:
                time.sleep(self.response_delay_s)
            status = self._respond(handler, self._routes[self.addresses.index(address)].get(path))
        finally:
            with state.lock:
                state.in_flight -= 1
            record = RequestRecord(
                host=address,
                path=path,
                method=handler.command,
                status=status,
                started=started,
                finished=time.monotonic(),
                in_flight=in_flight,
                conditional=conditional,
                user_agent=handler.headers.get("User-Agent", ""),
            )
            with self._log_lock:
                self.requests.append(record)

    def _respond(self, handler: _Handler, route: Route | None) -> int:
        if route is None:
            body = b"<html><body><h1>404 Not Found</h1></body></html>"
            self._send(handler, 404, body, "text/html; charset=utf-8", [])
            return 404
        if route.location:
            location = route.location
            if location.startswith("SAME_HOST:"):
                address = handler.connection.getsockname()[0]
                location = f"http://{address}:{location.split(':', 1)[1]}/"
            self._send(handler, route.status, b"", "text/html", [("Location", location)])
            return route.status
        body = route.body(self.edition)
        headers = list(route.extra_headers)
        if route.status == 200 and route.last_modified is not None:
            modified = route.last_modified(self.edition)
            etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'
            headers += [("ETag", etag), ("Last-Modified", format_datetime(modified, usegmt=True))]
            if _not_modified(handler, etag, modified):
                self._send(handler, 304, b"", None, headers)
                return 304
        self._send(handler, route.status, body, route.content_type, headers)
        return route.status

    @staticmethod
    def _send(
        handler: _Handler, status: int, body: bytes, content_type: str | None, headers: list[tuple[str, str]]
    ) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            handler.send_response(status)
            if content_type:
                handler.send_header("Content-Type", content_type)
            for name, value in headers:
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if handler.command != "HEAD" and status != 304:
                handler.wfile.write(body)


def _not_modified(handler: _Handler, etag: str, modified: datetime) -> bool:
    if_none_match = handler.headers.get("If-None-Match")
    if if_none_match is not None:
        return etag in [tag.strip() for tag in if_none_match.split(",")] or if_none_match.strip() == "*"
    if_modified_since = handler.headers.get("If-Modified-Since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        return modified <= since
    return False


@contextlib.contextmanager
def serve_portal(**kw: Any) -> Iterator[DemoPortal]:
    portal = DemoPortal(**kw)
    with portal:
        yield portal
