"""The fetch stage works a host: one owner per host, its due pages in one go, one follow-up after.

A real SQLite frontier, the scripted web of :mod:`tests.pipeline_support`, and the in-process
ownership table; every test says what the host answers and checks the requests made, the
follow-ups emitted at once and the one left for later.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from shared.errors import PolitenessDeferred, ServerBusy
from shared.store import crawl_state
from shared.store.crawl_state import PageSpec, SiteSpec
from shared.store.models import Page
from tests.pipeline_support import ENTRY, PDF, REPORT, FakeFetcher, MemoryArchive, web
from worker.crawler.politeness import LocalPolitenessGate
from worker.pipeline import FollowUp, PipelineConfig, discover_site, fetch_host, sweep_stuck

NOW = datetime(2024, 2, 1, 8, 0, tzinfo=UTC)
CONFIG = PipelineConfig(fetch_lease_s=60, stuck_after_s=120, max_page_attempts=3, max_retry_delay_s=300)
HOST = "www.example.gov.cn"


@pytest.fixture
def entry_id(store) -> int:
    with store() as session:
        site, _ = crawl_state.upsert_site(session, SiteSpec(name="某县人民政府", entry_urls=(ENTRY,)))
        session.commit()
        assert site.id is not None
        (follow_up,) = discover_site(session, site.id, now=NOW).follow_ups
    assert follow_up.target is not None
    return follow_up.target


def work(store, page_id, fetcher, *, hosts=None, config=CONFIG, clock=lambda: NOW, should_stop=lambda: False):
    emitted: list[FollowUp] = []
    with store() as session:
        result = fetch_host(
            session,
            page_id,
            fetcher,
            MemoryArchive(),
            hosts or LocalPolitenessGate(),
            clock=clock,
            config=config,
            emit=emitted.append,
            should_stop=should_stop,
        )
    return result, emitted


def page_id_of(store, url: str) -> int:
    with store() as session:
        page = session.exec(select(Page).where(Page.url == url)).one()
        assert page.id is not None
        return page.id


def test_one_stage_fetches_every_due_page_of_its_host_listings_first(store, entry_id):
    fetcher = FakeFetcher(web())
    result, emitted = work(store, entry_id, fetcher)
    assert [url for url, _ in fetcher.calls] == [ENTRY, REPORT, PDF]  # the off-site copy is never asked
    assert result.outcome == "done" and result.detail["pages"] == 3
    # ingests go out at once; new pages of the same host were the batch's own work
    assert emitted == [
        FollowUp("ingest", page_id_of(store, REPORT)),
        FollowUp("ingest", page_id_of(store, PDF)),
    ]
    assert result.follow_ups == []  # nothing left on the host


def test_a_message_for_a_host_someone_works_is_dropped_and_the_owner_takes_its_page(store, entry_id):
    hosts, fetcher = LocalPolitenessGate(), FakeFetcher(web())
    owner = hosts.claim_host(HOST, ttl_s=30)
    assert owner is not None
    result, emitted = work(store, entry_id, fetcher, hosts=hosts)
    assert (result.outcome, fetcher.calls, emitted) == ("host_busy", [], [])
    hosts.release_host(HOST, owner)
    result, _ = work(store, entry_id, fetcher, hosts=hosts)
    assert result.outcome == "done" and len(fetcher.calls) == 3


def test_a_batch_that_used_its_time_leaves_the_next_due_page_to_a_new_message(store, entry_id):
    fetcher = FakeFetcher(web())
    config = PipelineConfig(**{**CONFIG.__dict__, "host_batch_s": 0.0})
    result, _ = work(store, entry_id, fetcher, config=config)
    assert result.outcome == "budget" and [url for url, _ in fetcher.calls] == [ENTRY]
    assert result.follow_ups == [FollowUp("fetch", page_id_of(store, REPORT))]


def test_a_shutting_down_worker_stops_after_the_current_page(store, entry_id):
    fetcher = FakeFetcher(web())
    result, _ = work(store, entry_id, fetcher, should_stop=lambda: True)
    assert result.outcome == "shutdown" and len(fetcher.calls) == 1
    assert result.follow_ups == [FollowUp("fetch", page_id_of(store, REPORT))]


def test_a_transient_error_leaves_one_follow_up_for_when_the_page_is_due_again(store, entry_id):
    fetcher = FakeFetcher(web(**{ENTRY: ServerBusy("HTTP 503", retry_after_s=30)}))
    result, emitted = work(store, entry_id, fetcher)
    assert result.outcome == "done" and emitted == []
    (follow_up,) = result.follow_ups
    assert (follow_up.stage, follow_up.target) == ("fetch", entry_id)
    assert follow_up.delay_s == pytest.approx(30, abs=3)  # retry_delay_s adds up to 10 % jitter


@pytest.mark.parametrize(("wait_s", "delay_s"), [(12.0, 12.0), (3600.0, CONFIG.max_retry_delay_s)])
def test_a_long_politeness_wait_ends_the_batch_with_a_follow_up_then(store, entry_id, wait_s, delay_s):
    fetcher = FakeFetcher(web(**{ENTRY: PolitenessDeferred("Retry-After", retry_after_s=wait_s)}))
    result, _ = work(store, entry_id, fetcher)
    assert result.outcome == "deferred" and len(fetcher.calls) == 1
    # never a countdown beyond max_retry_delay_s: the page comes back then and asks the gate again
    assert result.follow_ups == [FollowUp("fetch", entry_id, delay_s=delay_s)]
    with store() as session:
        page = session.get(Page, entry_id)
        assert page is not None and page.next_fetch_at == NOW + timedelta(seconds=delay_s)
        assert page.attempts == 0  # a deferral is not an attempt


def test_an_owner_whose_claim_lapsed_stops_and_leaves_one_follow_up(store, entry_id):
    class Lapsing(LocalPolitenessGate):
        def renew_host(self, host: str, token: str, *, ttl_s: float) -> bool:
            return False

    fetcher = FakeFetcher(web())
    result, _ = work(store, entry_id, fetcher, hosts=Lapsing())
    assert result.outcome == "ownership_lapsed" and len(fetcher.calls) == 1
    # one follow-up all the same: it finds the new owner at work, or carries on if nobody took over
    assert result.follow_ups == [FollowUp("fetch", page_id_of(store, REPORT))]


def test_the_sweep_hands_out_one_page_per_host(store, entry_id):
    other = "http://zwgk.example.gov.cn/xxgk/nb/index.html"
    with store() as session:
        site = session.get(Page, entry_id)
        assert site is not None
        ids = crawl_state.add_pages(
            session,
            site_id=site.site_id,
            pages=[
                PageSpec(url=other, kind="listing"),
                PageSpec(url=other.replace("index", "index_1"), kind="listing"),
            ],
            now=NOW,
        )
        session.commit()
    fetcher = FakeFetcher(web())
    with store() as session:
        result = sweep_stuck(session, now=NOW + timedelta(seconds=CONFIG.stuck_after_s + 1), config=CONFIG)
    # the sweep hands out one page per host: each host's owner works the rest
    assert {f.target for f in result.follow_ups} == {entry_id, min(ids)}
    assert fetcher.calls == []


def test_every_page_that_finds_work_on_another_host_tells_that_host(store):
    """Not once per batch: the other host's owner may have finished between two such pages."""
    portal, files = "http://www.example.gov.cn", "http://files.example.gov.cn"
    first, second = f"{portal}/xxgk/nb/index.html", f"{portal}/xxgk/nb/index_1.html"

    def listing(href: str, more: str | None) -> bytes:
        nxt = f'<a href="{more}">下一页</a>' if more else ""
        return (
            f'<html><body><a href="{href}">某县2023年政府信息公开工作年度报告</a>{nxt}</body></html>'
        ).encode()

    pages = {
        first: (listing(f"{files}/nb/2023.pdf", second), "text/html; charset=utf-8"),
        second: (listing(f"{files}/nb/2022.pdf", None), "text/html; charset=utf-8"),
    }
    with store() as session:
        site, _ = crawl_state.upsert_site(
            session,
            SiteSpec(name="某县人民政府", entry_urls=(first,), domains=("example.gov.cn",)),
        )
        session.commit()
        assert site.id is not None
        (start,) = discover_site(session, site.id, now=NOW).follow_ups
    result, emitted = work(store, start.target, FakeFetcher(pages))
    told = [f for f in emitted if f.stage == "fetch"]
    with store() as session:
        hosts = crawl_state.hosts_of_pages(session, [f.target for f in told if f.target is not None])
    assert sorted(hosts.values()) == ["files.example.gov.cn", "files.example.gov.cn"]
    assert result.outcome == "done"


def test_a_host_whose_turn_is_far_off_is_not_claimed_and_its_due_pages_wait(store, entry_id):
    hosts = LocalPolitenessGate(delay_s=60.0)  # the host's next start is a minute away
    hosts.release(hosts.acquire(HOST))
    fetcher = FakeFetcher(web())
    result, _ = work(
        store,
        entry_id,
        fetcher,
        hosts=hosts,
        config=PipelineConfig(**{**CONFIG.__dict__, "politeness_wait_s": 1.0}),
    )
    assert result.outcome == "deferred" and fetcher.calls == []
    (follow_up,) = result.follow_ups
    assert follow_up.target == entry_id and 55 < follow_up.delay_s <= 60
    with store() as session:
        page = session.get(Page, entry_id)
        assert page is not None and page.attempts == 0  # waiting for politeness costs no attempt
        # not due for the sweep either: the one follow-up carries the host
        assert page.next_fetch_at is not None and page.next_fetch_at > NOW + timedelta(seconds=55)
