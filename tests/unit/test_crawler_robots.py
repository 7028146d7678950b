"""robots.txt per RFC 9309: rules apply, 4xx allows all, 5xx/timeouts disallow for a while."""

from __future__ import annotations

import pytest

from shared.errors import BlockedBySite, FetchRejected, FetchTimeout, PolitenessDeferred
from worker.crawler.robots import RobotsCache

UA = "xxgk-watch/0.1 (+https://example.invalid; research)"
ROBOTS = """
User-agent: xxgk-watch
Disallow: /private/
Crawl-delay: 5

User-agent: *
Disallow: /
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RobotsServer:
    """``fetch_text`` double: answers per URL, counts requests."""

    def __init__(self, answer: tuple[int, str] | Exception) -> None:
        self.answer = answer
        self.requests: list[str] = []

    def __call__(self, url: str) -> tuple[int, str]:
        self.requests.append(url)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def make(answer: tuple[int, str] | Exception, **kw: float) -> tuple[RobotsCache, RobotsServer, FakeClock]:
    server, clock = RobotsServer(answer), FakeClock()
    return RobotsCache(server, ttl_s=kw.get("ttl_s", 3600), user_agent=UA, clock=clock), server, clock


def test_rules_for_our_user_agent_apply_with_their_crawl_delay() -> None:
    robots, server, _ = make((200, ROBOTS))
    assert robots.allowed("https://www.xx.gov.cn/zfxxgk/zfxxgknb/", UA)
    assert not robots.allowed("https://www.xx.gov.cn/private/a.html", UA)
    assert not robots.allowed("https://www.xx.gov.cn/zfxxgk/", "SomeOtherBot/1.0")
    assert robots.crawl_delay("www.xx.gov.cn") == 5.0
    assert robots.crawl_delay("https://www.xx.gov.cn/any") == 5.0
    assert server.requests == ["https://www.xx.gov.cn/robots.txt"]  # cached per origin


def test_each_origin_has_its_own_robots_txt() -> None:
    robots, server, _ = make((200, ROBOTS))
    robots.allowed("https://www.xx.gov.cn/a")
    robots.allowed("http://www.xx.gov.cn:8080/a")
    robots.allowed("https://zwgk.xx.gov.cn/a")
    assert server.requests == [
        "https://www.xx.gov.cn/robots.txt",
        "http://www.xx.gov.cn:8080/robots.txt",
        "https://zwgk.xx.gov.cn/robots.txt",
    ]


def test_unknown_host_has_no_crawl_delay_and_nothing_is_fetched_for_asking() -> None:
    robots, server, _ = make((200, ROBOTS))
    assert robots.crawl_delay("never.seen.gov.cn") is None
    assert server.requests == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_4xx_means_unavailable_so_everything_is_allowed(status: int) -> None:
    robots, _, _ = make((status, "<html>not found</html>"))
    verdict = robots.verdict("http://www.xx.gov.cn/zfxxgk/", UA)
    assert (verdict.allowed, verdict.state) == (True, "unavailable")


@pytest.mark.parametrize("answer", [(500, ""), (503, ""), (429, ""), FetchTimeout("read timed out")])
def test_5xx_and_timeouts_mean_unreachable_so_complete_disallow_for_a_while(
    answer: tuple[int, str] | Exception,
) -> None:
    robots, server, clock = make(answer, ttl_s=86400)
    verdict = robots.verdict("http://www.xx.gov.cn/zfxxgk/", UA)
    assert (verdict.allowed, verdict.state) == (False, "unreachable")
    assert verdict.retry_after_s == robots.unreachable_ttl_s
    clock.now += robots.unreachable_ttl_s + 1
    server.answer = (200, "User-agent: *\nAllow: /\n")
    assert robots.allowed("http://www.xx.gov.cn/zfxxgk/", UA)
    assert len(server.requests) == 2


def test_cache_expires_after_ttl() -> None:
    robots, server, clock = make((200, ROBOTS), ttl_s=60)
    robots.allowed("https://www.xx.gov.cn/a", UA)
    clock.now += 30
    robots.allowed("https://www.xx.gov.cn/b", UA)
    assert len(server.requests) == 1
    clock.now += 31
    robots.allowed("https://www.xx.gov.cn/c", UA)
    assert len(server.requests) == 2


def test_refusals_by_our_own_guards_mean_unavailable() -> None:
    robots, _, _ = make(FetchRejected("SSRF guard: resolves to 10.0.0.1 (private)"))
    assert robots.verdict("http://www.xx.gov.cn/", UA).state == "unavailable"


@pytest.mark.parametrize("error", [PolitenessDeferred("busy", retry_after_s=2.0), BlockedBySite("jsl")])
def test_deferrals_and_challenges_pass_through_and_are_not_cached(error: Exception) -> None:
    robots, server, _ = make(error)
    with pytest.raises(type(error)):
        robots.allowed("http://www.xx.gov.cn/", UA)
    server.answer = (200, ROBOTS)
    assert robots.allowed("http://www.xx.gov.cn/zfxxgk/", UA)
    assert len(server.requests) == 2


def test_only_the_first_512_kib_are_read() -> None:
    huge = "User-agent: *\nDisallow: /a\n" + "# padding\n" * 60_000 + "Disallow: /b\n"
    robots, _, _ = make((200, huge))
    assert not robots.allowed("http://www.xx.gov.cn/a/x", UA)
    assert robots.allowed("http://www.xx.gov.cn/b/x", UA)


def test_our_own_redis_being_down_is_not_cached_as_the_sites_disallow() -> None:
    from shared.errors import StoreUnavailable

    server = RobotsServer(StoreUnavailable("redis is down"))
    robots = RobotsCache(server, ttl_s=3600, user_agent=UA, clock=FakeClock())
    with pytest.raises(StoreUnavailable):
        robots.allowed("https://www.xx.gov.cn/zfxxgknb/", UA)
    server.answer = (200, ROBOTS)  # Redis is back: the next question asks the site
    assert robots.allowed("https://www.xx.gov.cn/zfxxgknb/", UA)
    assert len(server.requests) == 2
