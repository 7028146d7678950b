"""Fetchers in several processes share robots.txt through Redis: a site is asked for it once.

Two fetchers built by ``build_fetcher`` stand for two fetch workers; each has its own process
cache and its own gate, and only the ``robots_store`` (fakeredis here, real Redis in the
integration variant) is common."""

from __future__ import annotations

from typing import Any

import fakeredis
import httpx
import pytest

from shared.errors import BlockedBySite, PolitenessDeferred, ServerBusy
from shared.settings import Settings
from worker.crawler.http import Fetcher, build_fetcher
from worker.crawler.politeness import LocalPolitenessGate
from worker.crawler.robots import RedisRobotsStore

HOST = "www.xx.gov.cn"
PAGE = "http://www.xx.gov.cn/zfxxgk/zfxxgknb/202401/t20240125_1.html"
PRIVATE = "http://www.xx.gov.cn/private/a.html"


class Site:
    """One government host behind ``httpx.MockTransport``; records every path requested."""

    def __init__(self, robots: tuple[int, str]) -> None:
        self.robots = robots
        self.requested: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requested.append(request.url.path)
        if request.url.path == "/robots.txt":
            return httpx.Response(self.robots[0], content=self.robots[1].encode())
        return httpx.Response(200, content=b"<html>report</html>", headers={"Content-Type": "text/html"})


def worker(site: Site, store: RedisRobotsStore | None) -> Fetcher:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    return build_fetcher(
        settings, LocalPolitenessGate(0.0), transport=httpx.MockTransport(site), robots_store=store
    )


def store_on(client: Any) -> RedisRobotsStore:
    return RedisRobotsStore(client, prefix="test:robots:")


def test_without_a_store_each_worker_asks_the_site_itself() -> None:
    site = Site((200, "User-agent: *\nDisallow: /private/\n"))
    worker(site, None).fetch(PAGE)
    worker(site, None).fetch(PAGE)
    assert site.requested.count("/robots.txt") == 2  # the defect the shared tier removes


def test_the_second_worker_takes_robots_txt_from_the_shared_store() -> None:
    site = Site((200, "User-agent: *\nDisallow: /private/\nCrawl-delay: 7\n"))
    store = store_on(fakeredis.FakeRedis(server=fakeredis.FakeServer()))
    first, second = worker(site, store), worker(site, store)
    with pytest.raises(PolitenessDeferred) as caught:  # the page waits for the Crawl-delay
        first.fetch(PAGE)
    assert caught.value.retry_after_s == pytest.approx(7.0, abs=0.5)
    assert second.fetch(PAGE).status == 200  # another worker (its own gate here)
    with pytest.raises(BlockedBySite, match=r"robots\.txt"):
        second.fetch(PRIVATE)
    assert site.requested == ["/robots.txt", "/zfxxgk/zfxxgknb/202401/t20240125_1.html"]
    assert second.robots is not None and second.robots.crawl_delay(HOST) == 7.0


def test_an_unreachable_robots_txt_is_not_now_for_every_worker() -> None:
    site = Site((503, ""))
    store = store_on(fakeredis.FakeRedis(server=fakeredis.FakeServer()))
    for fetcher in (worker(site, store), worker(site, store)):
        with pytest.raises(ServerBusy, match=r"robots\.txt") as caught:
            fetcher.fetch(PAGE)
        assert caught.value.retry_after_s is not None and 0 < caught.value.retry_after_s <= 900
    assert site.requested == ["/robots.txt"]


def test_the_shared_store_being_down_does_not_stop_the_fetch() -> None:
    server = fakeredis.FakeServer()
    server.connected = False
    site = Site((200, "User-agent: *\nDisallow: /private/\n"))
    fetcher = worker(site, store_on(fakeredis.FakeRedis(server=server)))
    assert fetcher.fetch(PAGE).status == 200
    with pytest.raises(BlockedBySite):
        fetcher.fetch(PRIVATE)
    assert site.requested == ["/robots.txt", "/zfxxgk/zfxxgknb/202401/t20240125_1.html"]


@pytest.mark.integration
def test_workers_share_robots_txt_through_a_real_redis(redis_url: str) -> None:
    import uuid

    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
    store = RedisRobotsStore(client, prefix=f"test:robots:{uuid.uuid4().hex[:8]}:")
    try:
        site = Site((200, "User-agent: *\nDisallow: /private/\n"))
        worker(site, store).fetch(PAGE)
        second = worker(site, store)
        second.fetch(PAGE)
        with pytest.raises(BlockedBySite):
            second.fetch(PRIVATE)
        assert site.requested.count("/robots.txt") == 1
        assert 0 < client.pttl(store.key("http://www.xx.gov.cn:80")) <= 24 * 3600 * 1000
    finally:
        for key in client.scan_iter(match=f"{store.prefix}*"):
            client.delete(key)
        client.close()
