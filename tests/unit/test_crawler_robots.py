"""robots.txt per RFC 9309: rules apply, 4xx allows all, 5xx/timeouts disallow for a while;
and the shared tier in Redis (fakeredis) that lets fetch processes ask a site only once."""

from __future__ import annotations

import time
from typing import Any

import fakeredis
import pytest
import redis.exceptions
from structlog.testing import capture_logs

from shared.errors import (
    BlockedBySite,
    FetchRejected,
    FetchTimeout,
    PolitenessDeferred,
    StoreUnavailable,
)
from worker.crawler.robots import MAX_ROBOTS_CHARS, RedisRobotsStore, RobotsCache, RobotsVerdict

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


# --------------------------------------------------------------------------- the shared tier


class FailingClient:
    """A Redis client whose every command fails the way a dead or stalled server does."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def pipeline(self, transaction: bool = True) -> FailingClient:
        return self

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise self.error

        return fail


def fake_redis() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


def process(
    server: RobotsServer, store: RedisRobotsStore | None, **kw: float
) -> tuple[RobotsCache, FakeClock]:
    """One fetch worker process: its own clock and process cache, the shared store."""
    clock = FakeClock()
    cache = RobotsCache(
        server,
        ttl_s=kw.get("ttl_s", 3600),
        unreachable_ttl_s=kw.get("unreachable_ttl_s", 900),
        user_agent=UA,
        clock=clock,
        shared=store,
    )
    return cache, clock


def test_a_second_process_gets_the_verdict_and_crawl_delay_from_the_shared_store() -> None:
    store = RedisRobotsStore(fake_redis())
    first_site, second_site = RobotsServer((200, ROBOTS)), RobotsServer((200, ROBOTS))
    first, _ = process(first_site, store)
    second, _ = process(second_site, store)
    urls = ["https://www.xx.gov.cn/zfxxgk/zfxxgknb/", "https://www.xx.gov.cn/private/a.html"]
    first_verdicts = [first.verdict(u, UA) for u in urls]
    with capture_logs() as logs:
        assert second.is_cached(urls[0])
        second_verdicts = [second.verdict(u, UA) for u in urls]
    assert second_verdicts == first_verdicts == [RobotsVerdict(True, "rules"), RobotsVerdict(False, "rules")]
    assert not second.allowed("https://www.xx.gov.cn/zfxxgk/", "SomeOtherBot/1.0")
    assert second.crawl_delay("www.xx.gov.cn") == first.crawl_delay("www.xx.gov.cn") == 5.0
    assert first_site.requests == ["https://www.xx.gov.cn/robots.txt"]
    assert second_site.requests == []  # the site was asked once, not once per process
    assert [e.get("source") for e in logs if e["event"] == "robots_loaded"] == ["shared"]


def test_the_shared_entry_lives_as_long_as_the_entry_and_holds_what_rebuilds_it() -> None:
    client = fake_redis()
    store = RedisRobotsStore(client, prefix="test:robots:")
    cache, _ = process(RobotsServer((200, ROBOTS)), store, ttl_s=600)
    cache.allowed("https://www.xx.gov.cn/a", UA)
    key = "test:robots:https://www.xx.gov.cn:443"
    assert 599_000 < client.pttl(key) <= 600_000
    assert client.hgetall(key) == {b"state": b"rules", b"status": b"200", b"text": ROBOTS.encode()}


def test_only_the_first_512_kib_are_shared() -> None:
    huge = "User-agent: *\nDisallow: /a\n" + "# 片段\n" * 200_000 + "Disallow: /b\n"
    store = RedisRobotsStore(fake_redis())
    first, _ = process(RobotsServer((200, huge)), store)
    first.allowed("http://www.xx.gov.cn/a/x", UA)
    record = store.get("http://www.xx.gov.cn:80")
    assert record is not None and len(record.text) == MAX_ROBOTS_CHARS
    second, _ = process(RobotsServer((500, "")), store)
    assert not second.allowed("http://www.xx.gov.cn/a/x", UA)
    assert second.allowed("http://www.xx.gov.cn/b/x", UA)


@pytest.mark.parametrize("status", [404, 403])
def test_unavailable_is_shared_for_the_full_ttl(status: int) -> None:
    client = fake_redis()
    store = RedisRobotsStore(client)
    first, _ = process(RobotsServer((status, "nope")), store, ttl_s=3600)
    first.allowed("http://www.xx.gov.cn/", UA)
    assert client.pttl("xxgk:robots:http://www.xx.gov.cn:80") > 3_590_000
    second_site = RobotsServer((200, "User-agent: *\nDisallow: /\n"))
    second, _ = process(second_site, store)
    assert second.verdict("http://www.xx.gov.cn/zfxxgk/", UA) == RobotsVerdict(True, "unavailable")
    assert second_site.requests == []


def test_unreachable_is_shared_and_expires_after_unreachable_ttl_in_the_store_too() -> None:
    client = fake_redis()
    store = RedisRobotsStore(client)
    first, _ = process(RobotsServer((503, "")), store, ttl_s=3600, unreachable_ttl_s=0.3)
    assert first.verdict("http://www.xx.gov.cn/", UA).state == "unreachable"
    assert 0 < client.pttl("xxgk:robots:http://www.xx.gov.cn:80") <= 300  # not the full ttl_s
    second_site = RobotsServer((200, "User-agent: *\nAllow: /\n"))
    second, _ = process(second_site, store, ttl_s=3600, unreachable_ttl_s=0.3)
    verdict = second.verdict("http://www.xx.gov.cn/", UA)
    assert (verdict.allowed, verdict.state) == (False, "unreachable")
    assert verdict.retry_after_s is not None and 0 < verdict.retry_after_s <= 0.3
    assert second_site.requests == []
    time.sleep(0.35)  # Redis forgets the entry on its own clock
    assert store.get("http://www.xx.gov.cn:80") is None
    third_site = RobotsServer((200, "User-agent: *\nAllow: /\n"))
    third, _ = process(third_site, store)
    assert third.allowed("http://www.xx.gov.cn/", UA)
    assert third_site.requests == ["http://www.xx.gov.cn/robots.txt"]


def test_a_process_keeps_a_shared_entry_no_longer_than_its_own_ttl() -> None:
    store = RedisRobotsStore(fake_redis())
    long_lived, _ = process(RobotsServer((200, ROBOTS)), store, ttl_s=86400)
    long_lived.allowed("https://www.xx.gov.cn/a", UA)
    site = RobotsServer((200, ROBOTS))
    short_lived, clock = process(site, store, ttl_s=60)
    short_lived.allowed("https://www.xx.gov.cn/a", UA)
    clock.now += 61
    assert short_lived._entries["https://www.xx.gov.cn:443"].expires_at < clock.now
    short_lived.allowed("https://www.xx.gov.cn/a", UA)  # the shared entry again, not the site
    assert site.requests == []


@pytest.mark.parametrize(
    "error",
    [redis.exceptions.ConnectionError("refused"), redis.exceptions.TimeoutError("timed out")],
)
def test_shared_store_down_still_crawls_and_caches_nothing_bogus(error: Exception) -> None:
    site = RobotsServer((200, ROBOTS))
    cache, _ = process(site, RedisRobotsStore(FailingClient(error)))
    with capture_logs() as logs:
        assert not cache.is_cached("https://www.xx.gov.cn/a")
        assert cache.allowed("https://www.xx.gov.cn/zfxxgk/", UA)
        assert not cache.allowed("https://www.xx.gov.cn/private/a.html", UA)
    assert cache.crawl_delay("www.xx.gov.cn") == 5.0
    assert site.requests == ["https://www.xx.gov.cn/robots.txt"]  # the process cache still works
    warnings = [e for e in logs if e["event"] == "robots_shared_store_unavailable"]
    assert {e["op"] for e in warnings} == {"get", "put"}
    assert all(e["log_level"] == "warning" for e in warnings)


def test_shared_store_down_is_not_cached_as_unreachable_or_disallow() -> None:
    server = fakeredis.FakeServer()
    store = RedisRobotsStore(fakeredis.FakeRedis(server=server))
    server.connected = False
    site = RobotsServer((404, ""))
    cache, _ = process(site, store)
    assert cache.verdict("http://www.xx.gov.cn/", UA) == RobotsVerdict(True, "unavailable")
    server.connected = True
    # what the site said is in this process; nothing was written on the store's behalf
    assert store.get("http://www.xx.gov.cn:80") is None
    other_site = RobotsServer((200, ROBOTS))
    other, _ = process(other_site, store)
    assert other.allowed("http://www.xx.gov.cn/zfxxgk/", UA)
    assert other_site.requests == ["http://www.xx.gov.cn/robots.txt"]
    assert store.get("http://www.xx.gov.cn:80") is not None  # shared once Redis is back


def test_all_of_redis_down_caches_nothing_in_either_tier() -> None:
    server = fakeredis.FakeServer()
    store = RedisRobotsStore(fakeredis.FakeRedis(server=server))
    server.connected = False
    site = RobotsServer(StoreUnavailable("politeness gate: Redis unavailable"))
    cache, _ = process(site, store)
    with pytest.raises(StoreUnavailable):
        cache.allowed("https://www.xx.gov.cn/zfxxgknb/", UA)
    assert not cache.is_cached("https://www.xx.gov.cn/zfxxgknb/")
    server.connected = True
    assert store.get("https://www.xx.gov.cn:443") is None
    site.answer = (200, ROBOTS)  # Redis is back: the next question asks the site
    assert cache.allowed("https://www.xx.gov.cn/zfxxgknb/", UA)
    assert len(site.requests) == 2
    assert store.get("https://www.xx.gov.cn:443") is not None


@pytest.mark.parametrize("error", [PolitenessDeferred("busy", retry_after_s=2.0), BlockedBySite("jsl")])
def test_deferrals_and_challenges_are_not_shared(error: Exception) -> None:
    client = fake_redis()
    cache, _ = process(RobotsServer(error), RedisRobotsStore(client))
    with pytest.raises(type(error)):
        cache.allowed("http://www.xx.gov.cn/", UA)
    assert client.keys("*") == []


@pytest.mark.parametrize(
    "fields",
    [
        {"state": "maybe", "status": "200", "text": ""},
        {"state": "rules", "status": "abc", "text": ""},
    ],
)
def test_an_unreadable_shared_entry_is_a_miss(fields: dict[str, str]) -> None:
    client = fake_redis()
    client.hset("xxgk:robots:http://www.xx.gov.cn:80", mapping=fields)
    client.expire("xxgk:robots:http://www.xx.gov.cn:80", 60)
    site = RobotsServer((200, "User-agent: *\nAllow: /\n"))
    cache, _ = process(site, RedisRobotsStore(client))
    assert cache.allowed("http://www.xx.gov.cn/", UA)
    assert site.requests == ["http://www.xx.gov.cn/robots.txt"]
    assert client.hget("xxgk:robots:http://www.xx.gov.cn:80", "state") == b"rules"  # overwritten


def test_a_shared_entry_without_a_ttl_is_ignored() -> None:
    client = fake_redis()
    client.hset("xxgk:robots:http://www.xx.gov.cn:80", mapping={"state": "unreachable", "status": "503"})
    assert RedisRobotsStore(client).get("http://www.xx.gov.cn:80") is None


def test_a_store_on_a_decoding_client_reads_the_same() -> None:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    store = RedisRobotsStore(client)
    process(RobotsServer((200, ROBOTS)), store)[0].allowed("https://www.xx.gov.cn/a", UA)
    record = store.get("https://www.xx.gov.cn:443")
    assert record is not None and (record.state, record.status, record.text) == ("rules", 200, ROBOTS)
