"""The pipeline's stages with fakes (no Celery, no network): states, leases, retries, the sweep.

A real SQLite store holds the frontier; the fetcher, the archive and the ingest are fakes,
so each test states exactly what the "web" answers and checks what the SQL state becomes.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select
from structlog.testing import capture_logs

from shared.errors import (
    BlockedBySite,
    FetchRejected,
    FetchTimeout,
    PolitenessDeferred,
    ServerBusy,
    StoreUnavailable,
)
from shared.store import crawl_state
from shared.store.crawl_state import SiteSpec
from shared.store.models import Page
from tests.pipeline_support import ENTRY, PDF, REPORT, FakeFetcher, FakeIngest, MemoryArchive, web
from worker.pipeline import (
    FollowUp,
    InProcessPipeline,
    PipelineConfig,
    PipelineResources,
    check_missing,
    discover_site,
    fetch_page,
    ingest_page,
    next_visit,
    revisit_interval_s,
    sweep_stuck,
)

NOW = datetime(2024, 2, 1, 8, 0, tzinfo=UTC)  # in season
TODAY = NOW.date()
CONFIG = PipelineConfig(fetch_lease_s=60, stuck_after_s=120, max_page_attempts=3, max_retry_delay_s=300)


@pytest.fixture
def site_id(store) -> int:
    with store() as session:
        site, _ = crawl_state.upsert_site(session, SiteSpec(name="某县人民政府", entry_urls=(ENTRY,)))
        session.commit()
        assert site.id is not None
        return site.id


def page_by_url(store, url: str) -> Page:
    with store() as session:
        page = session.exec(select(Page).where(Page.url == url)).one()
        return page


def run_fetch(store, page_id: int, fetcher, archive, now: datetime = NOW):
    with store() as session:
        return fetch_page(session, page_id, fetcher, archive, now=now, config=CONFIG)


def crawl_to_rest(store, site_id: int, fetcher, archive, ingest) -> list[str]:
    """Drive every follow-up by hand until nothing is left; returns the stages run."""
    with store() as session:
        queue = list(discover_site(session, site_id, now=NOW).follow_ups)
    ran = []
    while queue:
        follow_up = queue.pop(0)
        ran.append(follow_up.stage)
        with store() as session:
            if follow_up.stage == "fetch":
                result = fetch_page(session, follow_up.target, fetcher, archive, now=NOW, config=CONFIG)
            elif follow_up.stage == "ingest":
                result = ingest_page(session, follow_up.target, archive, today=TODAY, now=NOW, ingest=ingest)
            else:
                continue
        queue += result.follow_ups
    return ran


# --------------------------------------------------------------------------- discovery and fetching


def test_a_crawl_finds_the_report_behind_its_page_and_ingests_it(store, site_id):
    fetcher, archive, ingest = FakeFetcher(web()), MemoryArchive(), FakeIngest()
    crawl_to_rest(store, site_id, fetcher, archive, ingest)

    assert page_by_url(store, ENTRY).state == "parsed"  # a listing is "parsed" once its links are in
    assert page_by_url(store, REPORT).state == "failed"  # the HTML wrapper is not a report …
    pdf = page_by_url(store, PDF)
    assert (pdf.kind, pdf.state) == ("attachment", "parsed")  # … the PDF behind it is
    assert ingest.calls == [REPORT, PDF]
    assert pdf.sha256 == hashlib.sha256(b"%PDF-1.7 the report").hexdigest()
    assert pdf.next_fetch_at == NOW + timedelta(seconds=CONFIG.revisit_in_season_s)


def test_a_report_link_off_the_site_is_recorded_but_never_requested(store, site_id):
    fetcher = FakeFetcher(web())
    crawl_to_rest(store, site_id, fetcher, MemoryArchive(), FakeIngest())
    spam = page_by_url(store, "http://spam.example.com/copy/2023nb.html")
    assert spam.state == "failed" and "outside the crawl scope" in (spam.last_error or "")
    assert all("spam.example.com" not in url for url, _ in fetcher.calls)


def test_discovery_is_idempotent_and_force_makes_every_page_due(store, site_id):
    crawl_to_rest(store, site_id, FakeFetcher(web()), MemoryArchive(), FakeIngest())
    with store() as session:
        assert discover_site(session, site_id, now=NOW).follow_ups == []
    with store() as session:
        forced = discover_site(session, site_id, now=NOW, force=True)
    with store() as session:
        fetchable = session.exec(select(Page).where(Page.site_id == site_id, Page.state != "failed")).all()
    # every page is due again, and one fetch per host sets its owner going through all of them
    assert all(p.next_fetch_at is None or p.next_fetch_at <= NOW for p in fetchable)
    hosts = {p.host: min(q.id for q in fetchable if q.host == p.host) for p in fetchable}
    assert {f.target for f in forced.follow_ups} >= set(hosts.values())
    assert len(forced.follow_ups) == len({p.host for p in session_pages(store, forced.follow_ups)})


def session_pages(store, follow_ups):
    with store() as session:
        return [session.get(Page, f.target) for f in follow_ups]


def test_a_second_visit_sends_validators_and_a_304_changes_nothing_else(store, site_id):
    fetcher, archive, ingest = FakeFetcher(web()), MemoryArchive(), FakeIngest()
    crawl_to_rest(store, site_id, fetcher, archive, ingest)
    pdf = page_by_url(store, PDF)
    later = NOW + timedelta(days=2)
    result = run_fetch(store, pdf.id, fetcher, archive, now=later)
    assert result.outcome == "not_modified" and result.follow_ups == []
    assert fetcher.calls[-1] == (PDF, pdf.etag)
    again = page_by_url(store, PDF)
    assert again.state == "not_modified" and again.sha256 == pdf.sha256 and again.fetched_at == later


def test_a_page_that_is_not_a_report_stays_failed_when_it_comes_back_unchanged(store, site_id):
    fetcher, archive = FakeFetcher(web()), MemoryArchive()
    crawl_to_rest(store, site_id, fetcher, archive, FakeIngest())
    wrapper = page_by_url(store, REPORT)
    later = NOW + timedelta(days=2)
    assert run_fetch(store, wrapper.id, fetcher, archive, now=later).outcome == "not_modified"
    assert page_by_url(store, REPORT).state == "failed"


def test_changed_bytes_are_ingested_again(store, site_id):
    fetcher, archive, ingest = FakeFetcher(web()), MemoryArchive(), FakeIngest()
    crawl_to_rest(store, site_id, fetcher, archive, ingest)
    fetcher.pages[PDF] = (b"%PDF-1.7 the report, corrected", "application/pdf")
    pdf = page_by_url(store, PDF)
    result = run_fetch(store, pdf.id, fetcher, archive, now=NOW + timedelta(days=2))
    assert result.follow_ups == [FollowUp("ingest", pdf.id)]
    with store() as session:
        ingested = ingest_page(session, pdf.id, archive, today=TODAY, now=NOW, ingest=ingest)
    assert ingested.outcome == "new" and ingested.follow_ups == [FollowUp("alerts")]


# --------------------------------------------------------------------------- leases and duplicates


def test_a_duplicate_message_does_nothing_while_the_page_is_leased_or_done(store, site_id):
    with store() as session:
        entry_id = discover_site(session, site_id, now=NOW).follow_ups[0].target
        claim = crawl_state.claim_for_fetch(session, entry_id, now=NOW, lease_s=60, max_attempts=3)
        session.commit()
    assert claim.page is not None
    fetcher = FakeFetcher(web())
    assert run_fetch(store, entry_id, fetcher, MemoryArchive()).outcome == "skipped_leased"
    assert fetcher.calls == []
    # the worker holding the lease died: once it runs out, the page is fetchable again
    expired = NOW + timedelta(seconds=61)
    assert run_fetch(store, entry_id, fetcher, MemoryArchive(), now=expired).outcome == "fetched"
    after = expired + timedelta(seconds=1)
    assert run_fetch(store, entry_id, fetcher, MemoryArchive(), now=after).outcome == "skipped_not_due"
    assert len(fetcher.calls) == 1


def test_ingest_runs_once_per_fetched_page(store, site_id):
    fetcher, archive, ingest = FakeFetcher(web()), MemoryArchive(), FakeIngest()
    crawl_to_rest(store, site_id, fetcher, archive, ingest)
    pdf = page_by_url(store, PDF)
    with store() as session:
        assert ingest_page(session, pdf.id, archive, today=TODAY, now=NOW, ingest=ingest).outcome == "skipped"
    assert ingest.calls.count(PDF) == 1


def test_a_lost_archive_copy_is_fetched_again_unconditionally(store, site_id):
    fetcher, archive = FakeFetcher(web()), MemoryArchive()
    with store() as session:
        entry_id = discover_site(session, site_id, now=NOW).follow_ups[0].target
    run_fetch(store, entry_id, fetcher, archive)
    report_id = page_by_url(store, REPORT).id
    run_fetch(store, report_id, fetcher, archive)
    archive.blobs.clear()
    with store() as session:
        result = ingest_page(session, report_id, archive, today=TODAY, now=NOW, ingest=FakeIngest())
    assert result.follow_ups == [FollowUp("fetch", report_id)]
    page = page_by_url(store, REPORT)
    assert page.sha256 is None and page.etag is None  # no 304 for bytes we no longer have
    run_fetch(store, report_id, fetcher, archive)
    assert fetcher.calls[-1] == (REPORT, None)


# --------------------------------------------------------------------------- errors


def test_politeness_deferral_gives_the_claim_back_without_counting_an_attempt(store, site_id):
    with store() as session:
        entry_id = discover_site(session, site_id, now=NOW).follow_ups[0].target
    busy = FakeFetcher(web(**{ENTRY: PolitenessDeferred("host busy", retry_after_s=1.5)}))
    with pytest.raises(PolitenessDeferred) as caught:
        run_fetch(store, entry_id, busy, MemoryArchive())
    assert caught.value.retry_after_s == 1.5
    page = page_by_url(store, ENTRY)
    assert page.attempts == 0 and page.state == "discovered"
    assert page.next_fetch_at == NOW + timedelta(seconds=1.5)
    assert (
        run_fetch(
            store, entry_id, FakeFetcher(web()), MemoryArchive(), now=NOW + timedelta(seconds=2)
        ).outcome
        == "fetched"
    )


def test_a_transient_error_is_recorded_and_retried_and_gives_up_after_max_attempts(store, site_id):
    with store() as session:
        entry_id = discover_site(session, site_id, now=NOW).follow_ups[0].target
    failing = FakeFetcher(web(**{ENTRY: ServerBusy("HTTP 503", retry_after_s=30)}))
    moment = NOW
    for attempt in range(1, CONFIG.max_page_attempts + 1):
        with pytest.raises(ServerBusy) as caught:
            run_fetch(store, entry_id, failing, MemoryArchive(), now=moment)
        assert caught.value.retry_after_s == 30
        page = page_by_url(store, ENTRY)
        assert (page.state, page.attempts) == ("discovered", attempt)
        assert "HTTP 503" in (page.last_error or "")
        moment = page.next_fetch_at
    result = run_fetch(store, entry_id, failing, MemoryArchive(), now=moment)
    assert result.outcome == "abandoned"
    page = page_by_url(store, ENTRY)
    assert page.state == "failed" and page.attempts == 0 and page.next_fetch_at > moment


def test_backoff_without_retry_after_is_capped_below_the_visibility_timeout(store, site_id):
    with store() as session:
        entry_id = discover_site(session, site_id, now=NOW).follow_ups[0].target
        session.execute(Page.__table__.update().values(attempts=2))
        session.commit()
    with pytest.raises(FetchTimeout) as caught:
        run_fetch(store, entry_id, FakeFetcher(web(**{ENTRY: FetchTimeout("timed out")})), MemoryArchive())
    assert 0 < caught.value.retry_after_s <= CONFIG.max_retry_delay_s


@pytest.mark.parametrize(
    ("error", "state"),
    [
        (BlockedBySite("anti-bot challenge: ruishu (HTTP 412)"), "blocked"),
        (BlockedBySite("robots.txt disallows this URL for our user agent"), "blocked"),
        (FetchRejected("SSRF guard: 10.0.0.5 (private)"), "failed"),
        (FetchRejected("HTTP 404"), "failed"),
    ],
)
def test_permanent_errors_are_recorded_with_their_reason(store, site_id, error, state):
    with store() as session:
        entry_id = discover_site(session, site_id, now=NOW).follow_ups[0].target
    result = run_fetch(store, entry_id, FakeFetcher(web(**{ENTRY: error})), MemoryArchive())
    assert result.outcome == state and result.follow_ups == []
    page = page_by_url(store, ENTRY)
    assert page.state == state and error.message in (page.last_error or "")
    assert page.next_fetch_at == next_visit(NOW, CONFIG)


# --------------------------------------------------------------------------- the sweep


def test_the_sweep_finds_expired_leases_lost_messages_stuck_ingests_and_due_revisits(store, site_id):
    fetcher, archive = FakeFetcher(web()), MemoryArchive()
    with store() as session:
        entry_id = discover_site(session, site_id, now=NOW).follow_ups[0].target
    run_fetch(store, entry_id, fetcher, archive)  # finds REPORT (discovered, never claimed)
    report_id = page_by_url(store, REPORT).id
    run_fetch(store, report_id, fetcher, archive)  # fetched; its ingest message "is lost"
    pdf_id = page_by_url(store, PDF).id
    with store() as session:  # a worker claims the PDF and dies
        crawl_state.claim_for_fetch(session, pdf_id, now=NOW, lease_s=CONFIG.fetch_lease_s, max_attempts=3)
        session.commit()

    def swept(at: datetime) -> set[FollowUp]:
        with store() as session:
            return set(sweep_stuck(session, now=at, config=CONFIG).follow_ups)

    assert swept(NOW + timedelta(seconds=10)) == set()  # nothing is stale yet
    later = NOW + timedelta(seconds=CONFIG.stuck_after_s + 1)
    assert swept(later) == {FollowUp("fetch", pdf_id), FollowUp("ingest", report_id)}
    # a day later the entry page's revisit is due too
    assert FollowUp("fetch", entry_id) in swept(NOW + timedelta(days=1, seconds=1))


# --------------------------------------------------------------------------- calendar and missing reports


@pytest.mark.parametrize(("month", "expected"), [(1, 86400), (3, 86400), (4, 604800), (11, 604800)])
def test_revisits_are_daily_in_the_reporting_season_and_weekly_otherwise(month, expected):
    assert revisit_interval_s(datetime(2025, month, 15, tzinfo=UTC), PipelineConfig()) == expected


def test_missing_report_check_skips_sites_the_crawler_could_not_see_into(store, site_id):
    with store() as session:
        entry_id = discover_site(session, site_id, now=NOW).follow_ups[0].target
    blocked = FakeFetcher(web(**{ENTRY: BlockedBySite("anti-bot challenge")}))
    run_fetch(store, entry_id, blocked, MemoryArchive())
    seen: dict[str, Any] = {}

    def fake_check(session, *, today, skip_site_ids):
        seen.update(today=today, skip=set(skip_site_ids))
        return ["event-missing-1"]

    with store() as session:
        result = check_missing(session, today=TODAY, check=fake_check)
    assert seen == {"today": TODAY, "skip": {site_id}}
    assert result.follow_ups == [FollowUp("alerts")]


# --------------------------------------------------------------------------- the in-process driver


def test_the_in_process_driver_runs_everything_and_retries_politeness(store, site_id):
    class OnceBusy(FakeFetcher):
        def fetch(self, url, **kw):
            if url == PDF and not any(u == PDF for u, _ in self.calls):
                self.calls.append((url, None))
                raise PolitenessDeferred("host busy", retry_after_s=0.05)
            return super().fetch(url, **kw)

    fetcher, ingest, relays = OnceBusy(web()), FakeIngest(), []
    resources = PipelineResources(
        session_factory=store,
        archive=MemoryArchive(),
        config=CONFIG,
        fetcher_factory=lambda: fetcher,
        today=lambda: TODAY,
        ingest=ingest,
        relay=lambda: relays.append(1),
    )
    pipeline = InProcessPipeline(resources, workers=2)
    pipeline.submit([FollowUp("discover", site_id)])
    stats = pipeline.run(timeout_s=20)
    assert stats.errors == []
    # the busy host ended its batch with a follow-up for when the gate said, not a failure
    assert stats.get("host", "deferred") == 1
    assert stats.get("ingest", "new") == 1 and relays  # the PDF, and a relay pass for its event
    assert page_by_url(store, PDF).state == "parsed"


def test_a_document_that_kills_its_ingest_every_time_is_quarantined(store, site_id):
    fetcher, archive = FakeFetcher(web()), MemoryArchive()
    crawl_to_rest(store, site_id, fetcher, archive, FakeIngest())
    fetcher.pages[PDF] = (b"%PDF-1.7 a poison pill", "application/pdf")
    pdf_id = page_by_url(store, PDF).id
    run_fetch(store, pdf_id, fetcher, archive, now=NOW + timedelta(days=2))

    def crashing_ingest(*_args, **_kw):
        raise MemoryError("the parser took the worker down")

    for _ in range(CONFIG.max_page_attempts):
        with store() as session, pytest.raises(MemoryError):
            ingest_page(
                session,
                pdf_id,
                archive,
                today=TODAY,
                now=NOW,
                ingest=crashing_ingest,
                max_attempts=CONFIG.max_page_attempts,
            )
    with store() as session:
        result = ingest_page(
            session,
            pdf_id,
            archive,
            today=TODAY,
            now=NOW,
            ingest=crashing_ingest,
            max_attempts=CONFIG.max_page_attempts,
        )
    assert result.outcome == "quarantined"
    page = page_by_url(store, PDF)
    assert page.state == "failed" and "quarantined" in (page.last_error or "")


def test_an_unexpected_exception_fails_its_page_and_the_worker_thread_goes_on(store, site_id):
    """One worker thread: had the bug killed it, the PDF behind the report page would never run."""

    class BuggyIngest(FakeIngest):
        def __call__(self, session, data, *, url, today, **kw):
            if url == REPORT:
                raise KeyError("a bug in the ingest")
            return super().__call__(session, data, url=url, today=today, **kw)

    # the report page is fetched (its PDF queued first), then its ingest crashes; the PDF's
    # ingest is queued after the crash
    fetcher, ingest = FakeFetcher(web()), BuggyIngest()
    resources = PipelineResources(
        session_factory=store,
        archive=MemoryArchive(),
        config=CONFIG,
        fetcher_factory=lambda: fetcher,
        today=lambda: TODAY,
        ingest=ingest,
    )
    pipeline = InProcessPipeline(resources, workers=1)
    pipeline.submit([FollowUp("discover", site_id)])
    with capture_logs() as logs:
        stats = pipeline.run(timeout_s=20)
    assert pipeline.pending == 0
    crashed = page_by_url(store, REPORT)
    assert crashed.state == "failed" and crashed.last_error.startswith("internal_error: KeyError")
    assert stats.get("ingest", "crashed") == 1 and any("KeyError" in e for e in stats.errors)
    assert page_by_url(store, PDF).state == "parsed"  # the thread lived on
    [event] = [e for e in logs if e["event"] == "stage_crashed"]
    assert event["url"] == REPORT and event["sha256"] and event["stage"] == "ingest"


def test_an_archive_that_cannot_be_written_is_store_unavailable_and_retried(store, site_id):
    class FullDisk(MemoryArchive):
        def put(self, data):
            raise OSError(28, "No space left on device")

    fetcher = FakeFetcher(web())
    with store() as session:
        [entry_id] = [f.target for f in discover_site(session, site_id, now=NOW).follow_ups]
    with pytest.raises(StoreUnavailable) as raised:
        run_fetch(store, entry_id, fetcher, FullDisk())
    assert raised.value.retry_after_s and raised.value.sha256 and raised.value.source == ENTRY
    page = page_by_url(store, ENTRY)
    assert page.state != "failed" and "No space left" in page.last_error
    # once the disk has room again, the retry fetches and archives the page
    later = NOW + timedelta(seconds=CONFIG.max_retry_delay_s + 1)
    assert run_fetch(store, entry_id, fetcher, MemoryArchive(), now=later).outcome == "fetched"


def test_today_is_the_beijing_date_not_the_utc_date():
    from worker.pipeline import beijing_today

    evening_utc = datetime(2024, 1, 31, 17, 0, tzinfo=UTC)  # 01:00 on 1 February in Beijing
    assert beijing_today(evening_utc) == date(2024, 2, 1)
    assert beijing_today(datetime(2024, 1, 31, 15, 59, tzinfo=UTC)) == date(2024, 1, 31)
    resources = PipelineResources(session_factory=None, archive=MemoryArchive(), config=CONFIG)
    assert resources.today() == beijing_today()
