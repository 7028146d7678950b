"""The politeness gate: the same behaviour in-process and in Redis (fakeredis with Lua)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import fakeredis
import pytest
from structlog.testing import capture_logs

from shared.errors import PolitenessDeferred, StoreUnavailable
from worker.crawler.politeness import (
    MAX_HOST_WAIT_S,
    Lease,
    LocalPolitenessGate,
    PolitenessGate,
    PolitenessPolicy,
    RedisPolitenessGate,
)

HOST = "www.xx.gov.cn"
GateFactory = Callable[..., PolitenessGate]


@pytest.fixture(params=["local", "redis"])
def make_gate(request: pytest.FixtureRequest) -> GateFactory:
    """A gate on real time (fakeredis answers TIME from the clock) with small, configurable numbers."""

    def factory(delay_s: float = 0.2, **policy: float) -> PolitenessGate:
        settings = PolitenessPolicy(delay_s=delay_s, **policy)  # type: ignore[arg-type]
        if request.param == "local":
            return LocalPolitenessGate(delay_s, policy=settings)
        redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        return RedisPolitenessGate(redis, delay_s, settings.lease_ttl_s, policy=settings)

    return factory


def deferral(gate: PolitenessGate, host: str = HOST, **kw: float) -> PolitenessDeferred:
    with pytest.raises(PolitenessDeferred) as caught:
        gate.acquire(host, **kw)
    assert caught.value.retry_after_s is not None
    return caught.value


# --------------------------------------------------------------------------- shared semantics


def test_one_request_at_a_time_per_host(make_gate: GateFactory) -> None:
    gate = make_gate()
    lease = gate.acquire(HOST)
    assert "busy" in deferral(gate).message
    other = gate.acquire("zwgk.yy.gov.cn")  # hosts are independent
    gate.release(other)
    gate.release(lease)


def failures(gate: PolitenessGate, host: str = HOST) -> int:
    return int(float(gate.state(host).get("failures", 0)))  # type: ignore[attr-defined]


# Real time runs on: every "not yet" below has at least 0.25 s of slack for a loaded machine.


def test_starts_are_spaced_by_the_delay(make_gate: GateFactory) -> None:
    gate = make_gate(delay_s=0.5)
    first = gate.acquire(HOST)
    gate.release(first, outcome="ok")
    retry = deferral(gate).retry_after_s
    assert retry is not None and 0 < retry <= 0.5
    second = gate.acquire(HOST, wait_s=30)  # short waits are slept through
    assert second.acquired_at - first.acquired_at >= 0.5 - 0.001  # ms resolution on Redis
    gate.release(second)


def test_host_names_are_one_host_whatever_their_case(make_gate: GateFactory) -> None:
    gate = make_gate()
    lease = gate.acquire("WWW.XX.GOV.CN.")
    deferral(gate, HOST)
    gate.release(lease)


def test_a_lease_expires_so_a_killed_worker_never_blocks_a_host(make_gate: GateFactory) -> None:
    gate = make_gate(delay_s=0.01, lease_ttl_s=0.3)
    lost = gate.acquire(HOST)  # never released: the worker "died"
    taken_over = gate.acquire(HOST, wait_s=30)  # granted once the lease has run out
    assert taken_over.acquired_at - lost.acquired_at >= 0.3 - 0.001
    with capture_logs() as logs:
        gate.release(lost)  # the dead worker's late release must not free the new holder's lease
    assert "busy" in deferral(gate).message
    gate.release(taken_over)
    if isinstance(gate, RedisPolitenessGate):
        assert any(entry["event"] == "politeness_lease_lost" for entry in logs)


def test_retry_after_is_honoured(make_gate: GateFactory) -> None:
    gate = make_gate(delay_s=0.05)
    gate.release(gate.acquire(HOST), outcome="throttled", retry_after_s=120)
    retry = deferral(gate).retry_after_s
    assert retry is not None and 119 <= retry <= 120


def test_failures_back_off_exponentially_and_success_resets(make_gate: GateFactory) -> None:
    gate = make_gate(delay_s=0.25)
    lease = gate.acquire(HOST)
    gate.release(lease, outcome="error")
    first = deferral(gate).retry_after_s
    assert first is not None and 0.25 < first <= 0.5  # delay · 2¹
    gate.release(lease, outcome="error")  # a second failure report (a late one counts too)
    second = deferral(gate).retry_after_s
    assert second is not None and 0.5 < second <= 1.0  # delay · 2²
    assert failures(gate) == 2
    gate.release(lease, outcome="ok")
    assert failures(gate) == 0


def test_circuit_opens_after_consecutive_failures(make_gate: GateFactory) -> None:
    gate = make_gate(delay_s=0.01, breaker_threshold=2, breaker_cooldown_s=60)
    lease = gate.acquire(HOST)
    gate.release(lease, outcome="error")
    with capture_logs() as logs:
        gate.release(lease, outcome="throttled")
    opened = deferral(gate)
    assert "circuit open" in opened.message
    assert opened.retry_after_s is not None and 59 <= opened.retry_after_s <= 60
    assert [e["host"] for e in logs if e["event"] == "host_circuit_opened"] == [HOST]
    gate.acquire("other.gov.cn")  # only that host is cut off


def test_robots_crawl_delay_widens_the_spacing_and_is_remembered(make_gate: GateFactory) -> None:
    gate = make_gate(delay_s=0.05)
    lease = gate.acquire(HOST, delay_s=1.0)
    assert lease.delay_s == 1.0
    gate.release(lease)
    retry = deferral(gate).retry_after_s  # asked without a delay: the host's own is kept
    assert retry is not None and 0.5 < retry <= 1.0


def test_a_crawl_delay_below_our_default_changes_nothing(make_gate: GateFactory) -> None:
    gate = make_gate(delay_s=0.3)
    lease = gate.acquire(HOST, delay_s=0.01)
    assert lease.delay_s == 0.3
    gate.release(lease)


def test_invalid_outcome_is_a_bug(make_gate: GateFactory) -> None:
    gate = make_gate()
    with pytest.raises(ValueError, match="outcome"):
        gate.release(gate.acquire(HOST), outcome="maybe")  # type: ignore[arg-type]


def test_threads_hammering_one_host_never_overlap_or_crowd(make_gate: GateFactory) -> None:
    gate = make_gate(delay_s=0.03)
    spans: list[tuple[Lease, float, float]] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(4):
            lease = gate.acquire(HOST, wait_s=30)
            start = time.monotonic()
            time.sleep(0.002)
            end = time.monotonic()
            with lock:
                spans.append((lease, start, end))
            gate.release(lease)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spans.sort(key=lambda span: span[1])
    assert len(spans) == 16
    for (lease_a, _, end_a), (lease_b, start_b, _) in itertools.pairwise(spans):
        assert end_a <= start_b  # one at a time
        assert lease_b.acquired_at - lease_a.acquired_at >= 0.03 - 0.001  # spaced, on the gate's clock


# --------------------------------------------------------------------------- Redis specifics


def test_redis_state_lives_under_one_key_per_host_and_expires() -> None:
    redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    gate = RedisPolitenessGate(redis, delay_s=0.05, lease_ttl_s=10)
    gate.release(gate.acquire("WWW.XX.gov.cn"), outcome="error")
    assert redis.keys("*") == [b"xxgk:polite:www.xx.gov.cn"]
    assert 0 < redis.pttl("xxgk:polite:www.xx.gov.cn") <= (24 * 3600 + 1) * 1000
    assert gate.state("www.xx.gov.cn")["failures"] == "1"


def test_redis_down_is_store_unavailable() -> None:
    server = fakeredis.FakeServer()
    gate = RedisPolitenessGate(fakeredis.FakeRedis(server=server), delay_s=0.05)
    server.connected = False
    with pytest.raises(StoreUnavailable):
        gate.acquire(HOST)


# --------------------------------------------------------------------------- in-process, on a fake clock


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_local_gate_backoff_is_capped_and_the_probe_after_cooldown_closes_the_circuit() -> None:
    t = FakeTime()
    policy = PolitenessPolicy(max_backoff_s=10, breaker_threshold=3, breaker_cooldown_s=100)
    gate = LocalPolitenessGate(2.0, policy=policy, clock=t.clock, sleep=t.sleep)
    for _ in range(2):
        gate.release(gate.acquire(HOST, wait_s=1000), outcome="error")
    assert deferral(gate).retry_after_s == 8.0  # 2 · 2²
    gate.release(gate.acquire(HOST, wait_s=1000), outcome="error")
    assert deferral(gate).retry_after_s == 100.0  # third failure: open for the cool-down
    t.now += 100
    probe = gate.acquire(HOST)
    gate.release(probe, outcome="ok")
    assert gate.state(HOST)["failures"] == 0
    t.now += 2
    gate.acquire(HOST)


def test_local_gate_sleeps_only_for_waits_within_wait_s() -> None:
    t = FakeTime()
    gate = LocalPolitenessGate(2.0, clock=t.clock, sleep=t.sleep)
    gate.release(gate.acquire(HOST))
    assert deferral(gate, wait_s=1.5).retry_after_s == 2.0
    assert t.slept == []
    gate.acquire(HOST, wait_s=2.5)
    assert t.slept == [2.0]


@pytest.mark.parametrize("huge", [99999999999999999999.0, float("inf"), 10.0**300])
def test_an_absurd_retry_after_closes_the_host_for_a_day_at_most(make_gate: GateFactory, huge: float) -> None:
    gate = make_gate(delay_s=0.05)
    gate.release(gate.acquire(HOST), outcome="throttled", retry_after_s=huge)
    retry = deferral(gate).retry_after_s
    assert retry is not None and MAX_HOST_WAIT_S - 5 <= retry <= MAX_HOST_WAIT_S


def test_the_redis_gate_keeps_a_bounded_ttl_after_an_absurd_retry_after() -> None:
    redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    gate = RedisPolitenessGate(redis, delay_s=0.05, lease_ttl_s=10)
    gate.release(gate.acquire(HOST), outcome="throttled", retry_after_s=99999999999999999999.0)
    key = "xxgk:polite:" + HOST
    assert 0 < redis.pttl(key) <= (MAX_HOST_WAIT_S + 24 * 3600 + 1) * 1000
    assert int(gate.state(HOST)["next_at"]) - time.time() * 1000 <= MAX_HOST_WAIT_S * 1000 + 1000


def test_an_absurd_crawl_delay_is_bounded_too(make_gate: GateFactory) -> None:
    gate = make_gate(delay_s=0.05)
    gate.release(gate.acquire(HOST, delay_s=1e20))
    retry = deferral(gate).retry_after_s
    assert retry is not None and retry <= MAX_HOST_WAIT_S


# --------------------------------------------------------------------------- spacing from the end


def test_spacing_runs_from_the_end_of_the_last_request(make_gate: GateFactory) -> None:
    gate = make_gate(delay_s=0.5)
    lease = gate.acquire(HOST)
    time.sleep(0.3)  # a slow response: the server saw the request up to 0.3 s after the start
    gate.release(lease)
    retry = deferral(gate).retry_after_s
    assert retry is not None and retry > 0.4  # a full delay from the end, not 0.2 from the start


def test_a_crawl_delay_learnt_after_a_request_spaces_the_next_one_from_it(make_gate: GateFactory) -> None:
    # robots.txt goes out under the default spacing; the Crawl-delay it names applies to the gap after it
    gate = make_gate(delay_s=0.05)
    gate.release(gate.acquire(HOST))
    retry = deferral(gate, delay_s=1.0).retry_after_s
    assert retry is not None and 0.75 < retry <= 1.0


# --------------------------------------------------------------------------- host ownership


def test_a_host_has_one_owner_at_a_time(make_gate: GateFactory) -> None:
    hosts = make_gate()
    token = hosts.claim_host(HOST, ttl_s=30)  # type: ignore[attr-defined]
    assert token is not None
    assert hosts.claim_host(HOST.upper(), ttl_s=30) is None  # type: ignore[attr-defined]
    assert hosts.claim_host("zwgk.yy.gov.cn", ttl_s=30) is not None  # type: ignore[attr-defined]
    assert hosts.renew_host(HOST, token, ttl_s=30)  # type: ignore[attr-defined]
    assert not hosts.renew_host(HOST, "someone-else", ttl_s=30)  # type: ignore[attr-defined]
    hosts.release_host(HOST, "someone-else")  # type: ignore[attr-defined]
    assert hosts.claim_host(HOST, ttl_s=30) is None  # not released by a stranger  # type: ignore[attr-defined]
    hosts.release_host(HOST, token)  # type: ignore[attr-defined]
    assert hosts.claim_host(HOST, ttl_s=30) is not None  # type: ignore[attr-defined]


def test_ownership_lapses_when_not_renewed(make_gate: GateFactory) -> None:
    hosts = make_gate()
    token = hosts.claim_host(HOST, ttl_s=0.2)  # type: ignore[attr-defined]
    assert token is not None
    time.sleep(0.35)  # the owner was killed
    assert not hosts.renew_host(HOST, token, ttl_s=30)  # type: ignore[attr-defined]
    assert hosts.claim_host(HOST, ttl_s=30) is not None  # type: ignore[attr-defined]


def test_waiting_for_a_turn_takes_no_lease_and_sleeps_only_short_waits(make_gate: GateFactory) -> None:
    gate = make_gate(delay_s=0.5)
    assert gate.wait_for_turn(HOST, max_wait_s=0) == 0.0  # type: ignore[attr-defined]  # a new host
    gate.release(gate.acquire(HOST))
    wait = gate.wait_for_turn(HOST, max_wait_s=0.1)  # type: ignore[attr-defined]
    assert 0.3 < wait <= 0.5  # too long: told, not slept
    assert gate.wait_for_turn(HOST, max_wait_s=2.0) == 0.0  # type: ignore[attr-defined]  # slept
    gate.release(gate.acquire(HOST))  # and the turn really had come
