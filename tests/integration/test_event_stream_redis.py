"""The bounded event stream on a real Redis: ``XADD … MAXLEN ~`` keeps about the bound (whole
nodes are dropped, so up to ``stream-node-max-entries`` more), always the newest, and a reader
resuming after a trimmed entry is told so."""

from __future__ import annotations

import time
import uuid

import pytest
import redis as redis_lib

from worker.alerts.stream import RedisEventStream

pytestmark = pytest.mark.integration
BOUND = 1000
NODE = 100  # Redis's default stream-node-max-entries: the slack of approximate trimming


def message(n: int) -> dict[str, object]:
    return {"id": f"e{n:05d}", "type": "report.anomalous", "payload": {"n": n}}


@pytest.fixture
def events(redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    stream = f"xxgk:events:test:{uuid.uuid4().hex[:8]}"
    yield RedisEventStream(client, stream, max_len=BOUND)
    client.delete(stream)
    client.close()


def test_the_stream_stays_near_its_bound_and_keeps_the_newest(events):
    client, stream = events.client, events.stream
    published = 0
    for _ in range(40):
        events.publish_many([message(n) for n in range(published, published + 97)])
        published += 97
        assert client.xlen(stream) <= min(published, BOUND + NODE)
    length = client.xlen(stream)
    assert BOUND <= length <= BOUND + NODE
    kept = [m["id"] for _, m in events.iter_all()]
    assert kept == [f"e{n:05d}" for n in range(published - length, published)]


def test_a_reader_after_a_trimmed_entry_is_told_and_a_caught_up_one_waits(events):
    first = events.publish_many([message(n) for n in range(5)])
    events.publish_many([message(n) for n in range(5, 3 * BOUND)])
    batch = events.read(first[-1], block_ms=None, count=10)
    assert batch.trimmed and len(batch.entries) == 10
    newest = batch.entries[-1][0]
    assert not events.read(newest, block_ms=None, count=10).trimmed
    *_, last = events.iter_all()
    started = time.monotonic()
    assert events.read(last[0], block_ms=200) == ([], False)
    assert time.monotonic() - started >= 0.15
