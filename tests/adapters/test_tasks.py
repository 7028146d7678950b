"""The Celery layer: configuration, routing, and tasks run by a real worker over the ``memory://``
broker (never ``task_always_eager``: it skips serialisation, acks and retries).

The pipeline's resources are fakes (a scripted web, an in-memory archive, a stand-in ingest) on
a real SQLite store, installed into the worker's runtime.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime

import pytest
import structlog
from celery import signals
from celery.contrib.testing.worker import start_worker
from sqlmodel import select

from shared.errors import BlockedBySite, ConfigError, PolitenessDeferred, ServerBusy
from shared.settings import Settings
from shared.store import crawl_state
from shared.store.crawl_state import SiteSpec
from shared.store.engine import open_store
from shared.store.models import Page
from tests.pipeline_support import ENTRY, PDF, FakeFetcher, FakeIngest, MemoryArchive, web
from worker.app import CHECK_MISSING_SCHEDULES, create_celery_app
from worker.pipeline import PipelineConfig, PipelineResources
from worker.tasks import runtime
from worker.tasks.base import STAGE_TASKS, TIME_LIMITS

TASK_NAMES = {
    "xxgk.crawl.discover_site": "crawl",
    "xxgk.crawl.discover_sites": "crawl",
    "xxgk.crawl.sweep_stuck": "crawl",
    "xxgk.crawl.check_missing": "crawl",
    "xxgk.fetch.fetch_page": "fetch",
    "xxgk.parse.ingest_page": "parse",
    "xxgk.alerts.relay_outbox": "alerts",
}


def memory_settings(**overrides) -> Settings:
    return Settings(redis_url=None, **overrides)


@pytest.fixture(scope="module", autouse=True)
def _keep_logging_config():
    """The worker configures structlog (Celery's setup_logging signal); later tests expect theirs."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture(scope="module")
def app():
    celery_app = create_celery_app(memory_settings())
    celery_app.conf.broker_url = "memory://"
    # the in-memory transport polls; the default 1 s per hop would make each test slow
    celery_app.conf.broker_transport_options = {
        **celery_app.conf.broker_transport_options,
        "polling_interval": 0.01,
    }
    celery_app.conf.worker_soft_shutdown_timeout = 0.0
    celery_app.loader.import_default_modules()
    return celery_app


# --------------------------------------------------------------------------- configuration


def test_every_task_has_its_wire_name_queue_and_delivery_guarantees(app):
    router = app.amqp.router
    for name, queue in TASK_NAMES.items():
        task = app.tasks[name]
        assert router.route({}, name)["queue"].name == queue
        assert task.acks_late and task.reject_on_worker_lost and task.ignore_result
        hard, soft = TIME_LIMITS[queue]
        assert (task.time_limit, task.soft_time_limit) == (hard, soft)
    assert set(STAGE_TASKS.values()) <= set(TASK_NAMES)
    conf = app.conf
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.worker_prefetch_multiplier == 1 and conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.result_backend is None and conf.task_ignore_result
    assert conf.worker_cancel_long_running_tasks_on_connection_loss


def test_the_visibility_timeout_outlasts_every_task_and_retry_delay(app):
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    longest = max(hard for hard, _ in TIME_LIMITS.values())
    assert visibility >= 3 * max(longest, Settings().max_retry_delay_s)
    with pytest.raises(ConfigError, match="VISIBILITY_TIMEOUT"):
        create_celery_app(memory_settings(broker_visibility_timeout_s=900))


def test_the_beat_schedule_is_coarse_and_calendar_aware(app):
    schedule = app.conf.beat_schedule
    assert schedule["sweep-stuck"] == {"task": "xxgk.crawl.sweep_stuck", "schedule": 60.0}
    assert schedule["discover-sites"]["task"] == "xxgk.crawl.discover_sites"
    assert {name for name in schedule if name.startswith("check-missing")} == set(CHECK_MISSING_SCHEDULES)
    deadline_season = schedule["check-missing-deadline-season"]["schedule"]
    assert deadline_season.month_of_year == {2, 3, 4, 5} and deadline_season.hour == {6}
    assert app.conf.beat_scheduler == "worker.app:RelockingRedBeatScheduler"  # RedBeat, relocking


def test_a_key_prefix_isolates_one_deployment_on_a_shared_redis():
    shared = create_celery_app(memory_settings(broker_key_prefix="tenant-a:"))
    assert shared.conf.broker_transport_options["global_keyprefix"] == "tenant-a:"
    assert shared.conf.redbeat_key_prefix.startswith("tenant-a:")


# --------------------------------------------------------------------------- tasks on a real worker

NOW = datetime(2024, 2, 1, tzinfo=UTC)


@pytest.fixture
def store(sqlite_url):
    engine, session_factory = open_store(sqlite_url)
    with session_factory() as session:
        crawl_state.upsert_site(session, SiteSpec(name="某县人民政府", entry_urls=(ENTRY,)))
        session.commit()
    yield session_factory
    engine.dispose()


class Recorder:
    """Task outcomes and retries, as the worker reports them through Celery's signals."""

    def __init__(self) -> None:
        self.finished: list[tuple[str, object]] = []
        self.retries: list[str] = []
        self.lock = threading.Lock()

    def on_postrun(self, task=None, retval=None, **_kw) -> None:
        with self.lock:
            self.finished.append((task.name, retval))

    def on_retry(self, request=None, **_kw) -> None:
        with self.lock:
            self.retries.append(request.task)

    def outcomes(self, name: str) -> list[object]:
        with self.lock:
            return [value for task, value in self.finished if task == name]


@pytest.fixture
def recorder():
    rec = Recorder()
    signals.task_postrun.connect(rec.on_postrun, weak=False)
    signals.task_retry.connect(rec.on_retry, weak=False)
    yield rec
    signals.task_postrun.disconnect(rec.on_postrun)
    signals.task_retry.disconnect(rec.on_retry)


@pytest.fixture(scope="module")
def worker(app):
    with start_worker(
        app,
        pool="threads",
        concurrency=4,
        perform_ping_check=False,
        shutdown_timeout=10,
        queues=list(TIME_LIMITS),
        loglevel="WARNING",
    ):
        yield app


def install(store, fetcher, ingest, relays=None) -> None:
    runtime.install(
        PipelineResources(
            session_factory=store,
            archive=MemoryArchive(),
            config=PipelineConfig(fetch_lease_s=30),
            fetcher_factory=lambda: fetcher,
            today=lambda: date(2024, 2, 1),
            ingest=ingest,
            relay=(lambda: relays.append(time.monotonic())) if relays is not None else None,
        )
    )


def wait_for(condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the worker")


def states(store) -> dict[str, str]:
    with store() as session:
        return {p.url: p.state for p in session.exec(select(Page)).all()}


@pytest.fixture(autouse=True)
def _clean_runtime():
    yield
    runtime.install(None)


def test_discovery_fans_out_through_every_queue_to_a_stored_report(store, recorder, worker):
    fetcher, ingest, relays = FakeFetcher(web()), FakeIngest(), []
    install(store, fetcher, ingest, relays)
    worker.send_task("xxgk.crawl.discover_sites")
    wait_for(lambda: states(store).get(PDF) == "parsed" and relays)
    assert recorder.outcomes("xxgk.crawl.discover_sites") == ["fanned_out"]
    assert recorder.outcomes("xxgk.crawl.discover_site") == ["seeded"]
    assert sorted(recorder.outcomes("xxgk.parse.ingest_page")) == ["failed", "new"]
    assert recorder.outcomes("xxgk.alerts.relay_outbox") == ["relayed"]
    assert ingest.calls.count(PDF) == 1


def test_a_transient_error_is_retried_with_the_delay_it_names(store, recorder, worker):
    class BusyOnce(FakeFetcher):
        def fetch(self, url, **kw):
            if url == ENTRY and not self.calls:
                self.calls.append((url, None))
                raise ServerBusy("HTTP 503", retry_after_s=0.2)
            return super().fetch(url, **kw)

    fetcher = BusyOnce(web())
    install(store, fetcher, FakeIngest())
    worker.send_task("xxgk.crawl.discover_sites")
    wait_for(lambda: states(store).get(PDF) == "parsed")
    # the 503 ended the host's batch with a follow-up 0.2 s later, which fetched the page
    assert [u for u, _ in fetcher.calls].count(ENTRY) == 2
    assert recorder.outcomes("xxgk.fetch.fetch_page")[0] == "done"
    assert "failed" not in recorder.outcomes("xxgk.fetch.fetch_page")
    with store() as session:
        entry = session.exec(select(Page).where(Page.url == ENTRY)).one()
    assert entry.state == "parsed" and entry.attempts == 0


def test_politeness_deferrals_are_retries_not_failures(store, recorder, worker):
    class BusyHost(FakeFetcher):
        def fetch(self, url, **kw):
            if sum(1 for u, _ in self.calls if u == url) < 3:
                self.calls.append((url, None))
                raise PolitenessDeferred("host busy", retry_after_s=0.05)
            return super().fetch(url, **kw)

    install(store, BusyHost(web()), FakeIngest())
    worker.send_task("xxgk.crawl.discover_sites")
    wait_for(lambda: states(store).get(PDF) == "parsed")
    # three pages, three deferrals each: each ends the host's batch with a delayed follow-up
    assert recorder.outcomes("xxgk.fetch.fetch_page").count("deferred") >= 9
    assert "failed" not in recorder.outcomes("xxgk.fetch.fetch_page")


def test_a_permanent_error_is_recorded_and_the_task_finishes(store, recorder, worker):
    install(
        store, FakeFetcher(web(**{ENTRY: BlockedBySite("anti-bot challenge: jsl (HTTP 521)")})), FakeIngest()
    )
    worker.send_task("xxgk.crawl.discover_sites")
    wait_for(lambda: states(store).get(ENTRY) == "blocked")
    wait_for(lambda: recorder.outcomes("xxgk.fetch.fetch_page") == ["done"])
    assert recorder.retries == []


def test_the_sweep_task_re_enqueues_a_page_whose_message_was_lost(store, recorder, worker):
    with store() as session:
        site = crawl_state.list_sites(session)[0]
        crawl_state.seed_site(session, site, now=datetime(2020, 1, 1, tzinfo=UTC))  # long ago, never sent
        session.commit()
    install(store, FakeFetcher(web()), FakeIngest())
    worker.send_task("xxgk.crawl.sweep_stuck")
    wait_for(lambda: states(store).get(PDF) == "parsed")
    assert recorder.outcomes("xxgk.crawl.sweep_stuck") == ["swept"]
