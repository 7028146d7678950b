"""The Redis politeness gate across processes, on a real Redis server.

Several processes hammer one host through their own gate instances; from the timestamps they
record we check that no two held the host at once and that no two starts were closer than
the delay.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from shared.errors import PolitenessDeferred
from worker.crawler.politeness import RedisPolitenessGate

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DELAY_S = 0.1
PROCESSES = 4
ACQUISITIONS = 5

HAMMER = """
import json, sys, time
import redis
from worker.crawler.politeness import RedisPolitenessGate

url, host, delay, count = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
gate = RedisPolitenessGate(redis.Redis.from_url(url), delay_s=delay, lease_ttl_s=30)
spans = []
for _ in range(count):
    lease = gate.acquire(host, wait_s=60)
    start = time.time()
    time.sleep(0.005)  # "the request"
    end = time.time()
    spans.append({"acquired_at": lease.acquired_at, "start": start, "end": end})
    gate.release(lease, outcome="ok")
print(json.dumps(spans))
"""


@pytest.fixture
def redis_client(redis_url: str):  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_processes_hammering_one_host_respect_the_delay(redis_url: str, redis_client) -> None:  # type: ignore[no-untyped-def]
    host = f"hammer-{uuid.uuid4().hex[:8]}.gov.cn"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HAMMER, redis_url, host, str(DELAY_S), str(ACQUISITIONS)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    spans = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            spans += json.loads(out.strip().splitlines()[-1])
    finally:
        redis_client.delete(RedisPolitenessGate.KEY_PREFIX + host)
    assert len(spans) == PROCESSES * ACQUISITIONS
    spans.sort(key=lambda span: span["acquired_at"])
    for earlier, later in itertools.pairwise(spans):
        # spacing, on the clock every process shares: the Redis server's
        assert later["acquired_at"] - earlier["acquired_at"] >= DELAY_S - 0.001
        # one at a time, on the processes' own wall clocks
        assert earlier["end"] <= later["start"]


def test_the_gate_keeps_time_by_the_server_not_by_the_worker(
    redis_client, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    host = f"skew-{uuid.uuid4().hex[:8]}.gov.cn"
    gate = RedisPolitenessGate(redis_client, delay_s=30)
    try:
        gate.release(gate.acquire(host))
        # this worker's clock jumps a day ahead: the host is still not due
        monkeypatch.setattr(time, "time", lambda: time.monotonic() + 86_400 + 1e9)
        with pytest.raises(PolitenessDeferred) as caught:
            gate.acquire(host)
        assert caught.value.retry_after_s is not None and 25 <= caught.value.retry_after_s <= 30
    finally:
        redis_client.delete(RedisPolitenessGate.KEY_PREFIX + host)
