"""The store on real PostgreSQL: migrations, idempotent ingest, races between workers, relays sharing work."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import date

import pytest
import redis as redis_lib
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlmodel import SQLModel, select

from shared.errors import ConfigError
from shared.parse import read_report
from shared.settings import get_settings
from shared.store.engine import make_engine, open_store
from shared.store.ingest import ingest_document, ingest_paths
from shared.store.models import FindingRecord, OutboxEvent, SourceDocument, StoredReport
from shared.store.queries import table_counts
from tests.store_support import add_synthetic_events, make_record, read_json_record, record_bytes
from worker.alerts.relay import RelayConfig, relay_once
from worker.alerts.stream import RedisEventStream
from worker.cli import main

pytestmark = pytest.mark.integration
TODAY = date(2026, 6, 1)
AGENCY = "某县财政局"


@pytest.fixture
def pg_store_url(pg_url):
    """A fresh schema of the session's database, selected through the URL (so subprocesses get it too)."""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{pg_url}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def pg_store(pg_store_url):
    engine, session_factory = open_store(pg_store_url)
    yield session_factory
    engine.dispose()


@pytest.fixture
def stream(redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    key = f"xxgk:events:test:{uuid.uuid4().hex[:8]}"
    yield client, key
    client.delete(key)
    client.close()


def test_migrations_match_the_models_on_postgresql(pg_store_url):
    engine, _ = open_store(pg_store_url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0001"
    engine.dispose()


def test_seeds_and_corpus_twice_give_the_same_row_counts(pg_store, seeds_dir, corpus_dir):
    files = sorted(seeds_dir.glob("*.txt")) + sorted((corpus_dir / "raw").iterdir())
    first = ingest_paths(files, session_factory=pg_store, today=TODAY, read=read_report)
    with pg_store() as session:
        once = table_counts(session)
    ingest_paths(files, session_factory=pg_store, today=TODAY, read=read_report)
    with pg_store() as session:
        assert table_counts(session) == once
    assert once["reports"] == first.counts()["new"] > 0 and first.counts()["crashed"] == 0


@pytest.mark.parametrize("order", ["earlier_first", "later_first"])
def test_one_carry_over_event_whichever_year_first(pg_store, order):
    last = make_record(
        AGENCY, 2020, new_received={"natural_person": 5}, carried_forward={"natural_person": 2}
    )
    this = make_record(AGENCY, 2021, new_received={"natural_person": 1}, carried_over={"natural_person": 1})
    pair = [(last, "2020"), (this, "2021")]
    for record, name in pair if order == "earlier_first" else reversed(pair):
        with pg_store() as session:
            ingest_document(
                session, record_bytes(record), path=f"/r/{name}", today=TODAY, read=read_json_record
            )
    with pg_store() as session:
        rows = session.exec(select(OutboxEvent).where(OutboxEvent.rule == "carry_over_mismatch")).all()
    assert len(rows) == 1


def _ingest_together(pg_store, documents):
    """Ingest documents from one thread each, all reaching the store at the same moment."""
    barrier = threading.Barrier(len(documents))
    errors: list[BaseException] = []

    def read(data, **kw):
        report = read_json_record(data, **kw)
        barrier.wait(timeout=30)
        return report

    def work(data, path):
        try:
            with pg_store() as session:
                ingest_document(session, data, path=path, today=TODAY, read=read)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=doc) for doc in documents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def test_two_years_ingested_at_the_same_moment_still_meet(pg_store):
    for n in range(5):
        agency = f"第{n}县财政局"
        last = make_record(
            agency, 2020, new_received={"natural_person": 5}, carried_forward={"natural_person": 2}
        )
        this = make_record(
            agency, 2021, new_received={"natural_person": 1}, carried_over={"natural_person": 1}
        )
        _ingest_together(
            pg_store, [(record_bytes(last), f"/r/{n}/2020"), (record_bytes(this), f"/r/{n}/2021")]
        )
    with pg_store() as session:
        rows = session.exec(select(FindingRecord).where(FindingRecord.rule == "carry_over_mismatch")).all()
        assert len(rows) == 5
        assert (
            len(session.exec(select(OutboxEvent).where(OutboxEvent.rule == "carry_over_mismatch")).all()) == 5
        )


def test_the_same_document_from_two_workers_is_stored_once(pg_store):
    data = record_bytes(make_record(AGENCY, 2021, new_received={"natural_person": 3}))
    _ingest_together(pg_store, [(data, "/r/same"), (data, "/r/same"), (data, "/r/same")])
    with pg_store() as session:
        assert len(session.exec(select(StoredReport)).all()) == 1
        assert len(session.exec(select(SourceDocument)).all()) == 1


def test_two_relays_share_the_outbox_without_publishing_twice(pg_store, stream):
    client, key = stream
    ids = add_synthetic_events(pg_store, 300)
    config = RelayConfig(batch=10, stream=key)
    errors: list[BaseException] = []

    def relay():
        try:
            while relay_once(pg_store, client, None, config=config).published:
                pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=relay) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    published = [m["id"] for _, m in RedisEventStream(client, key).iter_all()]
    assert sorted(published) == sorted(ids)  # every id, each once: SKIP LOCKED split the batches


def test_a_shared_database_at_another_revision_is_not_migrated_behind_your_back(pg_store_url):
    engine, _ = open_store(pg_store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))
    engine.dispose()
    with pytest.raises(ConfigError, match="xxgk db upgrade"):
        open_store(pg_store_url)


def test_alerts_tail_follows_the_real_stream(pg_store_url, stream, monkeypatch):
    client, key = stream
    engine, session_factory = open_store(pg_store_url)
    ids = add_synthetic_events(session_factory, 3)
    relay_once(session_factory, client, None, config=RelayConfig(stream=key))
    engine.dispose()
    monkeypatch.setenv("XXGK_DATABASE_URL", pg_store_url)
    monkeypatch.setenv("XXGK_REDIS_URL", _redis_url(client))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            main,
            ["alerts", "tail", "--from-start", "--count", "3", "--json", "--stream", key],
            catch_exceptions=False,
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in result.output.splitlines()] == ids


def _redis_url(client):
    kw = client.connection_pool.connection_kwargs
    return f"redis://{kw['host']}:{kw['port']}/{kw['db']}"
