"""The Procfile really runs: ``honcho start`` brings up every process kind against the local Redis and
PostgreSQL, ``xxgk crawl`` enqueues the sample portal, and the fleet crawls, parses, stores and
publishes the events (through the ``relay`` process) — then stops cleanly on SIGTERM.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from shared.store.engine import make_engine, make_session_factory
from shared.store.models import OutboxEvent, Page, StoredReport
from tests.e2e.conftest import POLITENESS_DELAY_S, REPO, VENV_BIN, Fleet, e2e_environment, wait_until
from worker.alerts.stream import RedisEventStream

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]

PROCESS_KINDS = ("crawl", "fetch", "parse", "alerts", "beat", "relay")


def test_the_procfile_fleet_crawls_the_portal_end_to_end(tmp_path, e2e_database, redis_slice, portal):
    client, prefix = redis_slice
    env = e2e_environment(
        database_url=e2e_database,
        prefix=prefix,
        archive=tmp_path / "archive",
        portal=portal,
        XXGK_FETCH_CONCURRENCY="4",
        XXGK_PARSE_CONCURRENCY="1",
    )
    fleet = Fleet(env=env, logdir=tmp_path)
    registry = tmp_path / "sites.yaml"
    registry.write_text(portal.registry_yaml(), encoding="utf-8")
    fleet.xxgk("db", "upgrade")
    fleet.xxgk("sites", "import", str(registry))
    log_path = tmp_path / "honcho.log"
    with log_path.open("wb") as log:
        honcho = subprocess.Popen(
            [str(VENV_BIN / "honcho"), "start", "-f", str(REPO / "Procfile"), "-d", str(REPO)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    engine = make_engine(e2e_database)
    sessions = make_session_factory(engine)
    try:
        assert "enqueued discovery of 7 sites" in fleet.xxgk("crawl")

        def done() -> bool:
            with sessions() as session:
                reports = session.exec(select(func.count()).select_from(StoredReport)).one()
                pending = session.exec(
                    select(func.count())
                    .select_from(Page)
                    .where(col(Page.state).in_(("discovered", "fetched")))
                ).one()
                events = set(session.exec(select(OutboxEvent.event_id)).all())
            published = {m["id"] for _e, m in RedisEventStream(client).iter_all()}
            return reports == 5 and pending == 0 and len(events) >= 6 and published >= events

        wait_until(
            done, timeout_s=150, what="the Procfile fleet to crawl the portal", fleet=_LogFleet(log_path)
        )
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)
        try:
            honcho.wait(timeout=45)
        except subprocess.TimeoutExpired:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait(timeout=10)
        with sessions() as session:
            events = collections.Counter(session.exec(select(OutboxEvent.type)).all())
        engine.dispose()

    output = log_path.read_text(errors="replace")
    for kind in PROCESS_KINDS:
        assert f"{kind}.1 " in output, f"honcho never started {kind}"
    assert events["report.anomalous"] == 6
    assert portal.politeness_violations(POLITENESS_DELAY_S) == []
    entries = [m["id"] for _e, m in RedisEventStream(client).iter_all()]
    assert len(entries) == len(set(entries))  # the relay published each event once


class _LogFleet:
    """Adapter so wait_until can print honcho's interleaved log on a timeout."""

    def __init__(self, path) -> None:
        self.path = path

    def logs(self) -> str:
        return self.path.read_text(errors="replace")[-6000:]
