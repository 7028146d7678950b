"""The Fetcher against httpx.MockTransport: statuses → the error tree, caps, conditional GET,
redirects, robots.txt and the politeness gate."""

from __future__ import annotations

import gzip
import hashlib
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from shared.errors import (
    BlockedBySite,
    CorruptDocument,
    FetchRejected,
    FetchTimeout,
    LimitExceeded,
    PolitenessDeferred,
    ServerBusy,
    UnsupportedMediaType,
)
from shared.settings import Settings
from worker.crawler.http import Fetcher, build_fetcher, parse_retry_after
from worker.crawler.politeness import LocalPolitenessGate
from worker.crawler.robots import RobotsCache

URL = "http://www.xx.gov.cn/zfxxgk/zfxxgknb/202401/t20240125_1.html"
PAGE = "<html><body>XX区2023年政府信息公开工作年度报告</body></html>".encode()
Handler = Callable[[httpx.Request], httpx.Response]


class Chunks(httpx.SyncByteStream):
    """A body that arrives in pieces, as from a socket (optionally slowly)."""

    def __init__(self, chunks: Iterable[bytes], pause_s: float = 0.0) -> None:
        self.chunks = chunks
        self.pause_s = pause_s

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            if self.pause_s:
                time.sleep(self.pause_s)
            yield chunk


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


def make_fetcher(handler: Handler, *, gate: LocalPolitenessGate | None = None, **overrides: Any) -> Fetcher:
    options = {
        k: overrides.pop(k) for k in ("robots", "politeness_wait_s", "scope_domains") if k in overrides
    }
    return Fetcher(
        settings(**overrides),
        transport=httpx.MockTransport(handler),
        gate=gate or LocalPolitenessGate(0.0),
        **options,
    )


def answer(status: int = 200, content: bytes = PAGE, **headers: str) -> Handler:
    return lambda request: httpx.Response(status, content=content, headers=headers)


# --------------------------------------------------------------------------- success


def test_a_page_is_fetched_with_an_honest_user_agent_and_logged_without_its_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            content=PAGE,
            headers={
                "Content-Type": "text/html; charset=utf-8",
                "ETag": '"v1"',
                "Last-Modified": "Thu, 25 Jan 2024",
            },
        )

    fetcher = make_fetcher(handler, user_agent="xxgk-watch/test (+https://example.invalid)")
    with capture_logs() as logs:
        result = fetcher.fetch(URL)
    assert seen[0].headers["user-agent"] == "xxgk-watch/test (+https://example.invalid)"
    assert "cookie" not in seen[0].headers
    assert (result.status, result.content, result.not_modified) == (200, PAGE, False)
    assert result.sha256 == hashlib.sha256(PAGE).hexdigest()
    assert (result.url, result.final_url, result.content_type) == (URL, URL, "text/html; charset=utf-8")
    assert (result.etag, result.last_modified) == ('"v1"', "Thu, 25 Jan 2024")
    (event,) = [e for e in logs if e["event"] == "page_fetched"]
    assert event["status"] == 200 and event["sha256"] == result.sha256 and event["bytes"] == len(PAGE)
    assert "elapsed_ms" in event
    assert all(PAGE.decode() not in str(value) for e in logs for value in e.values())


def test_conditional_get_sends_validators_and_understands_304() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(304, headers={"ETag": '"v1"'})

    result = make_fetcher(handler).fetch(URL, etag='"v1"', last_modified="Thu, 25 Jan 2024 08:00:00 GMT")
    assert seen[0].headers["if-none-match"] == '"v1"'
    assert seen[0].headers["if-modified-since"] == "Thu, 25 Jan 2024 08:00:00 GMT"
    assert result.not_modified and result.status == 304
    assert (result.content, result.sha256) == (b"", None)
    assert (result.etag, result.last_modified) == ('"v1"', "Thu, 25 Jan 2024 08:00:00 GMT")


def test_redirects_are_followed_by_hand_and_recorded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(301, headers={"Location": "https://www.xx.gov.cn/mid"})
        if request.url.path == "/mid":
            return httpx.Response(302, headers={"Location": "/zfxxgk/final.html"})
        return httpx.Response(200, content=PAGE)

    result = make_fetcher(handler).fetch("http://www.xx.gov.cn/old")
    assert result.final_url == "https://www.xx.gov.cn/zfxxgk/final.html"
    assert result.redirects == ("http://www.xx.gov.cn/old", "https://www.xx.gov.cn/mid")


def test_more_than_five_redirects_are_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        n = int(request.url.path.strip("/") or 0)
        return httpx.Response(302, headers={"Location": f"/{n + 1}"})

    with pytest.raises(FetchRejected, match="redirects"):
        make_fetcher(handler).fetch("http://www.xx.gov.cn/0")


@pytest.mark.parametrize(
    "location",
    [
        "http://spam-clone.example.com/zfxxgknb/a.html",
        "file:///etc/passwd",
        "gopher://www.xx.gov.cn/x",
        "http://user:pw@www.xx.gov.cn/a",
    ],
)
def test_redirects_out_of_scope_or_to_other_schemes_are_refused(location: str) -> None:
    requested: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return httpx.Response(302, headers={"Location": location})

    with pytest.raises(FetchRejected):
        make_fetcher(handler).fetch(URL)
    assert requested == [URL]  # the refused hop was never requested


def test_the_start_url_must_be_in_scope_too() -> None:
    requested: list[str] = []
    fetcher = make_fetcher(lambda r: requested.append(str(r.url)) or httpx.Response(200))  # type: ignore[func-returns-value]
    with pytest.raises(FetchRejected, match="scope"):
        fetcher.fetch("http://www.example.com/a.html")
    assert requested == []
    make_fetcher(answer(), extra_allowed_domains=["example.com"]).fetch("http://www.example.com/a.html")
    make_fetcher(answer(), scope_domains=["example.org"]).fetch("http://example.org/a.html")


def test_cookies_from_one_response_are_never_sent_again() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=PAGE, headers={"Set-Cookie": "JSESSIONID=abc; Path=/"})

    fetcher = make_fetcher(handler)
    fetcher.fetch(URL)
    fetcher.fetch(URL)
    assert "cookie" not in seen[1].headers


# --------------------------------------------------------------------------- status → error tree


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (429, {"Retry-After": "120"}, 120.0),
        (503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: now
        (500, {}, None),
        (502, {}, None),
    ],
)
def test_429_and_5xx_are_server_busy_with_retry_after(
    status: int, headers: dict[str, str], retry_after: float | None
) -> None:
    with pytest.raises(ServerBusy) as caught:
        make_fetcher(answer(status, b"busy", **headers)).fetch(URL)
    assert caught.value.retry_after_s == retry_after
    assert caught.value.source == URL


def test_retry_after_keeps_the_host_closed_for_that_long() -> None:
    t = FakeTime()
    gate = LocalPolitenessGate(2.0, clock=t.clock, sleep=t.sleep)
    fetcher = make_fetcher(answer(429, b"", **{"Retry-After": "120"}), gate=gate)
    with pytest.raises(ServerBusy):
        fetcher.fetch(URL)
    t.now += 119
    with pytest.raises(PolitenessDeferred):
        fetcher.fetch(URL)
    t.now += 1
    with pytest.raises(ServerBusy):  # allowed again: the server is asked (and still busy)
        fetcher.fetch(URL)


def test_retry_after_dates_are_relative_to_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 60) == 60
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize("status", [400, 403, 404, 410, 412])
def test_other_4xx_are_rejections(status: int) -> None:
    with pytest.raises(FetchRejected, match=f"HTTP {status}"):
        make_fetcher(answer(status, b"<html><h1>Not Found</h1></html>")).fetch(URL)


@pytest.mark.parametrize(
    ("status", "headers", "body", "reason"),
    [
        (
            412,
            {"Set-Cookie": "FSSBBIl1UgzbN7N80S=x"},
            b"<script>$_ts=window['$_ts'];$_ts.nsd=1;</script>",
            "ruishu",
        ),
        (
            521,
            {},
            b"<script>document.cookie=('__jsl_clearance_s=1');location.href=location.pathname</script>",
            "jsl",
        ),
        (
            200,
            {},
            "<html><title>网站防火墙</title><body>您的请求带有不合法参数，已被网站管理员设置拦截！安全狗"
            "</body></html>".encode(),
            "safedog",
        ),
        (403, {"cf-mitigated": "challenge"}, b"", "cloudflare"),
    ],
)
def test_challenge_pages_are_blocked_not_content(
    status: int, headers: dict[str, str], body: bytes, reason: str
) -> None:
    with capture_logs() as logs, pytest.raises(BlockedBySite, match=reason):
        make_fetcher(answer(status, body, **headers)).fetch(URL)
    assert any(e["event"] == "page_blocked" and e["challenge"] == reason for e in logs)


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectTimeout("slow"),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("reset"),
    ],
)
def test_timeouts_and_resets_are_fetch_timeouts_and_back_the_host_off(error: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    t = FakeTime()
    gate = LocalPolitenessGate(2.0, clock=t.clock, sleep=t.sleep)
    fetcher = make_fetcher(handler, gate=gate)
    with pytest.raises(FetchTimeout):
        fetcher.fetch(URL)
    assert gate.state("www.xx.gov.cn")["failures"] == 1
    t.now += 2.0
    with pytest.raises(PolitenessDeferred):  # backoff: 2 · 2¹ = 4 s, not the usual 2 s
        fetcher.fetch(URL)


def test_a_body_that_trickles_past_the_deadline_is_a_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Chunks([b"x" * 10] * 50, pause_s=0.01))

    with pytest.raises(FetchTimeout, match="longer than"):
        make_fetcher(handler, fetch_timeout_s=0.02).fetch(URL)  # deadline 5 × 0.02 s


# --------------------------------------------------------------------------- size caps and bombs


def test_content_length_over_the_cap_is_refused_before_reading() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(10**9)}, stream=Chunks(iter(())))

    with pytest.raises(LimitExceeded, match="Content-Length"):
        make_fetcher(handler, max_fetch_bytes=1000).fetch(URL)


def test_a_streamed_body_over_the_cap_is_cut() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Chunks(b"a" * 100 for _ in range(10**6)))

    with pytest.raises(LimitExceeded, match="raw"):
        make_fetcher(handler, max_fetch_bytes=10_000).fetch(URL)


def test_max_bytes_per_call_can_only_lower_the_cap() -> None:
    fetcher = make_fetcher(answer(200, b"x" * 5000), max_fetch_bytes=10_000)
    with pytest.raises(LimitExceeded):
        fetcher.fetch(URL, max_bytes=1000)
    assert len(fetcher.fetch(URL, max_bytes=10**9).content) == 5000


def _gzip_bomb(size: int) -> Iterator[bytes]:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1 << 20)
    for _ in range(size >> 20):
        out = compressor.compress(block)
        if out:
            yield out
    yield compressor.flush()


def test_a_gzip_bomb_stops_at_our_decompressed_cap() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        # 1 GiB of zeros in about 1 MiB of gzip: far under the raw cap, far over the decoded one
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=Chunks(_gzip_bomb(1 << 30)))

    with pytest.raises(LimitExceeded, match="decompressed"):
        make_fetcher(handler, max_fetch_bytes=4 << 20).fetch(URL)


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send it
        ("gzip", lambda data: gzip.compress(data[:10]) + gzip.compress(data[10:])),  # two gzip members
        ("gzip, gzip", lambda data: gzip.compress(gzip.compress(data))),
        ("identity", lambda data: data),
    ],
)
def test_content_encodings_are_undone(encoding: str, encode: Callable[[bytes], bytes]) -> None:
    body = encode(PAGE)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept-encoding"] == "gzip, deflate"
        return httpx.Response(
            200,
            headers={"Content-Encoding": encoding},
            stream=Chunks([body[i : i + 7] for i in range(0, len(body), 7)]),
        )

    assert make_fetcher(handler).fetch(URL).content == PAGE


def test_an_encoding_we_did_not_ask_for_is_unsupported() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "br"}, stream=Chunks([b"\x1b\x00"]))

    with pytest.raises(UnsupportedMediaType, match="br"):
        make_fetcher(handler).fetch(URL)


def test_a_corrupt_gzip_body_is_a_corrupt_document() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=Chunks([b"definitely not gzip"])
        )

    with pytest.raises(CorruptDocument):
        make_fetcher(handler).fetch(URL)


# --------------------------------------------------------------------------- politeness and robots


def test_every_request_goes_through_the_gate() -> None:
    t = FakeTime()
    gate = LocalPolitenessGate(2.0, clock=t.clock, sleep=t.sleep)
    fetcher = make_fetcher(answer(), gate=gate)
    fetcher.fetch(URL)
    with pytest.raises(PolitenessDeferred) as caught:
        fetcher.fetch(URL)
    assert caught.value.retry_after_s == 2.0
    t.now += 2.0
    fetcher.fetch(URL)


def test_politeness_wait_sleeps_through_short_waits() -> None:
    t = FakeTime()
    gate = LocalPolitenessGate(2.0, clock=t.clock, sleep=t.sleep)
    fetcher = make_fetcher(answer(), gate=gate, politeness_wait_s=5.0)
    fetcher.fetch(URL)
    fetcher.fetch(URL)
    assert t.now == 1_000_002.0


def robots_site(robots_txt: str | None, robots_status: int = 200) -> tuple[Handler, list[str]]:
    requested: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(request.url.path)
        if request.url.path == "/robots.txt":
            return httpx.Response(robots_status, content=(robots_txt or "").encode())
        return httpx.Response(200, content=PAGE)

    return handler, requested


def test_robots_disallow_is_blocked_and_nothing_is_requested() -> None:
    handler, requested = robots_site("User-agent: *\nDisallow: /zfxxgk/\n")
    fetcher = build_fetcher(settings(), LocalPolitenessGate(0.0), transport=httpx.MockTransport(handler))
    with pytest.raises(BlockedBySite, match=r"robots\.txt"):
        fetcher.fetch(URL)
    assert requested == ["/robots.txt"]
    fetcher.fetch("http://www.xx.gov.cn/xxgk/allowed.html")
    assert requested == ["/robots.txt", "/xxgk/allowed.html"]  # robots.txt was cached


def test_robots_crawl_delay_becomes_the_hosts_spacing() -> None:
    handler, requested = robots_site("User-agent: *\nCrawl-delay: 10\n")
    t = FakeTime()
    gate = LocalPolitenessGate(2.0, clock=t.clock, sleep=t.sleep)
    fetcher = build_fetcher(settings(), gate, transport=httpx.MockTransport(handler))
    # the Crawl-delay learnt from robots.txt already spaces the page from robots.txt itself
    # (the page comes back later; robots.txt is cached, so nothing is fetched twice)
    with pytest.raises(PolitenessDeferred) as caught:
        fetcher.fetch(URL)
    assert caught.value.retry_after_s == 10.0
    assert requested == ["/robots.txt"]
    t.sleep(10.0)
    fetcher.fetch(URL)
    assert len(requested) == 2
    with pytest.raises(PolitenessDeferred) as caught:
        fetcher.fetch(URL)
    assert caught.value.retry_after_s == 10.0


def test_robots_5xx_means_not_now() -> None:
    handler, requested = robots_site(None, robots_status=503)
    fetcher = build_fetcher(settings(), LocalPolitenessGate(0.0), transport=httpx.MockTransport(handler))
    with pytest.raises(ServerBusy, match=r"robots\.txt") as caught:
        fetcher.fetch(URL)
    assert caught.value.retry_after_s is not None and caught.value.retry_after_s > 0
    assert requested == ["/robots.txt"]


def test_robots_404_allows_everything() -> None:
    handler, requested = robots_site("gone", robots_status=404)
    robots_calls: list[str] = []
    fetcher = make_fetcher(handler)
    fetcher.robots = RobotsCache(lambda url: robots_calls.append(url) or fetcher.fetch_text(url))  # type: ignore[func-returns-value]
    assert fetcher.fetch(URL).status == 200
    assert robots_calls == ["http://www.xx.gov.cn/robots.txt"]
    assert requested == ["/robots.txt", URL.split("www.xx.gov.cn")[1]]


@pytest.mark.parametrize(
    "url",
    ["http://www.xx.gov.cn:99999/a.html", "http://www.xx.gov.cn:abc/a.html", "http://www.xx.gov.cn:0/a"],
)
def test_impossible_ports_are_fetch_rejected_before_robots_or_the_network(url: str) -> None:
    handler, requested = robots_site("User-agent: *\nAllow: /\n")
    fetcher = build_fetcher(settings(), LocalPolitenessGate(0.0), transport=httpx.MockTransport(handler))
    with pytest.raises(FetchRejected, match="malformed URL"):
        fetcher.fetch(url)
    assert requested == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("99999999999999999999", 24 * 3600.0),
        ("9" * 400, 24 * 3600.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 24 * 3600.0),
        ("120", 120.0),
        ("²", None),
    ],
)
def test_retry_after_is_capped_at_a_day(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, now=1_700_000_000.0) == expected


@pytest.mark.parametrize("location", ["http://0177.0.0.1/", "http://[::1/"])
def test_an_unparseable_redirect_target_is_rejected_not_retried(location: str) -> None:
    fetcher = make_fetcher(lambda request: httpx.Response(302, headers={"location": location}))
    with pytest.raises(FetchRejected):
        fetcher.fetch("https://www.xx.gov.cn/zfxxgknb/index.html")
