"""Politeness: one request at a time per host, starts spaced by the host's delay, across every worker.

Scrapy and scrapy-redis keep politeness per process, so N processes hit a host N times as
often (crawling.md §2 item 1). Here one authority per host decides: :class:`RedisPolitenessGate`
keeps, per host, the next allowed start time and an in-flight lease in one Redis hash and
changes them only inside Lua scripts (atomic on the server), timed by the Redis server's
``TIME`` so that workers with skewed clocks still agree. :class:`LocalPolitenessGate` is the
same state machine in-process, for the embedded mode (``xxgk demo``).

Per host:

- ``acquire`` succeeds only when no unexpired lease is held, ``now >= next_at`` and
  ``now >= ended_at + delay``, where ``delay = max(delay_s, robots Crawl-delay)`` is the spacing
  in force *now* (a Crawl-delay learnt from robots.txt applies to the gap after the robots.txt
  request itself) and ``ended_at`` is when the last request to the host ended: the server never
  sees two requests closer than the delay, whatever the network adds to either. It then takes
  the lease (expires after ``lease_ttl_s``, so a killed worker never blocks a host for good) and
  sets ``next_at = now + delay``; otherwise it raises :class:`~shared.errors.PolitenessDeferred`
  with ``retry_after_s``, or, given ``wait_s``, sleeps for short waits first.
- ``release(outcome="ok")`` frees the lease and resets the failure count.
  ``"error"``/``"throttled"`` (timeouts, 5xx, 429, anti-bot pages) count a consecutive failure
  and push ``next_at`` to at least ``now + delay·2^failures`` (capped at ``max_backoff_s``) and
  to ``now + Retry-After``; after ``breaker_threshold`` consecutive failures the circuit opens
  and the host gets no request for ``breaker_cooldown_s``. The next request after the
  cool-down is the probe: success closes the circuit, one more failure reopens it.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import redis.exceptions

from shared.errors import PolitenessDeferred, StoreUnavailable
from shared.logging import get_logger

log = get_logger(__name__)

Outcome = Literal["ok", "error", "throttled"]
OUTCOMES: frozenset[str] = frozenset({"ok", "error", "throttled"})

# the shortest pause between two tries inside acquire(wait_s=…): keeps a busy loop off Redis
MIN_POLL_S = 0.01

# the longest any server-given wait (Retry-After, robots.txt Crawl-delay) or our own backoff may
# close a host: "Retry-After: 99999999999999999999" would otherwise block it for ever, and on the
# Redis gate overflow PEXPIRE after next_at was already written. A day is also the state TTL.
MAX_HOST_WAIT_S = 24 * 3600.0


def bounded_wait_s(seconds: float | None) -> float | None:
    """``seconds`` clamped to [0, MAX_HOST_WAIT_S]; ``None`` (and NaN) stay "no wait given"."""
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_HOST_WAIT_S)


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to send one request to ``host`` now. Give it back with ``release``."""

    host: str
    token: str
    acquired_at: float  # seconds since the epoch on the gate's clock (Redis TIME for the Redis gate)
    delay_s: float  # the spacing in force for this host when the lease was granted


@dataclass(frozen=True, slots=True)
class PolitenessPolicy:
    """The numbers behind the gate; defaults are deliberately slow (crawling.md §5)."""

    delay_s: float = 2.0
    lease_ttl_s: float = 300.0
    max_backoff_s: float = 3600.0
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 900.0
    # how long a host's state outlives its last activity (a day: backoff and breaker memory)
    state_ttl_s: float = 24 * 3600.0


class PolitenessGate(Protocol):
    def acquire(self, host: str, *, wait_s: float = 0.0, delay_s: float | None = None) -> Lease:
        """Take the host's lease or raise ``PolitenessDeferred(retry_after_s=…)``.

        ``wait_s``: sleep and retry while the wait is shorter than this. ``delay_s``: this host's
        own spacing (robots.txt Crawl-delay); never lowers the gate's default.
        """
        ...

    def release(
        self, lease: Lease, *, outcome: Outcome = "ok", retry_after_s: float | None = None
    ) -> None: ...


class HostOwnership(Protocol):
    """Who works a host right now (one fetch batch at a time per host, across every worker)."""

    def claim_host(self, host: str, *, ttl_s: float) -> str | None:
        """A token when the host was free (ours for ``ttl_s``), else ``None``."""
        ...

    def renew_host(self, host: str, token: str, *, ttl_s: float) -> bool:
        """Extend our ownership; ``False`` when it lapsed (someone else may own the host now)."""
        ...

    def release_host(self, host: str, token: str) -> None: ...

    def wait_for_turn(self, host: str, *, max_wait_s: float) -> float:
        """Sleep until the host's next request may start, if that is within ``max_wait_s``, and
        return 0; else return the wait without sleeping. Takes no lease: it lets a caller wait
        *before* committing to a page (a claim counts an attempt)."""
        ...


def _host_key(host: str) -> str:
    return host.strip().lower().rstrip(".")


def _check_outcome(outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {sorted(OUTCOMES)}, not {outcome!r}")


class _WaitingGate:
    """``acquire(wait_s=…)`` on top of one atomic try: sleep only while the wait is short."""

    sleep: Callable[[float], None]
    monotonic: Callable[[], float]

    def _try_acquire(self, host: str, delay_s: float | None) -> Lease | tuple[float, str]:
        raise NotImplementedError

    def _ready_in(self, host: str) -> float:
        raise NotImplementedError

    def wait_for_turn(self, host: str, *, max_wait_s: float) -> float:
        host = _host_key(host)
        deadline = self.monotonic() + max(max_wait_s, 0.0)
        while (wait := self._ready_in(host)) > 0:
            if self.monotonic() + wait > deadline:
                return wait
            self.sleep(max(wait, MIN_POLL_S))
        return 0.0

    def acquire(self, host: str, *, wait_s: float = 0.0, delay_s: float | None = None) -> Lease:
        host = _host_key(host)
        deadline = self.monotonic() + max(wait_s, 0.0)
        while True:
            attempt = self._try_acquire(host, delay_s)
            if isinstance(attempt, Lease):
                return attempt
            retry_after_s, reason = attempt
            retry_after_s = max(retry_after_s, MIN_POLL_S)
            if self.monotonic() + retry_after_s > deadline:
                raise PolitenessDeferred(
                    f"{host}: {reason}, retry in {retry_after_s:.2f}s",
                    retry_after_s=retry_after_s,
                    source=host,
                )
            self.sleep(retry_after_s)


# ---------------------------------------------------------------------------------------------
# in-process


@dataclass(slots=True)
class _HostState:
    next_at: float = 0.0
    lease: str | None = None
    lease_until: float = 0.0
    crawl_delay_s: float = 0.0
    failures: int = 0
    open_until: float = 0.0
    touched_at: float = 0.0
    ended_at: float = 0.0


class LocalPolitenessGate(_WaitingGate):
    """The gate's state machine in one process (embedded mode); thread-safe. ``clock`` and
    ``sleep`` are injectable so tests need not wait."""

    def __init__(
        self,
        delay_s: float = 2.0,
        *,
        policy: PolitenessPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        base = policy or PolitenessPolicy()
        self.policy = PolitenessPolicy(**{**_policy_fields(base), "delay_s": delay_s})
        self.clock = clock
        self.sleep = sleep
        self.monotonic = monotonic or clock
        self._hosts: dict[str, _HostState] = {}
        self._owners: dict[str, tuple[str, float]] = {}  # host -> (token, until)
        self._lock = threading.Lock()

    def _try_acquire(self, host: str, delay_s: float | None) -> Lease | tuple[float, str]:
        with self._lock:
            now = self.clock()
            state = self._hosts.setdefault(host, _HostState())
            if delay_s is not None:
                state.crawl_delay_s = bounded_wait_s(delay_s) or 0.0
            delay = max(self.policy.delay_s, state.crawl_delay_s)
            if state.lease and state.lease_until > now:
                return max(state.next_at - now, min(state.lease_until - now, delay)), "busy"
            ready_at = max(state.next_at, state.ended_at + delay)
            if ready_at > now:
                return ready_at - now, "circuit open" if state.open_until > now else "not yet"
            token = uuid.uuid4().hex
            state.lease, state.lease_until = token, now + self.policy.lease_ttl_s
            state.next_at, state.touched_at = now + delay, now
            return Lease(host=host, token=token, acquired_at=now, delay_s=delay)

    def _ready_in(self, host: str) -> float:
        with self._lock:
            now = self.clock()
            state = self._hosts.get(host)
            if state is None:
                return 0.0
            delay = max(self.policy.delay_s, state.crawl_delay_s)
            if state.lease and state.lease_until > now:
                return max(state.next_at - now, min(state.lease_until - now, delay))
            return max(max(state.next_at, state.ended_at + delay) - now, 0.0)

    def release(self, lease: Lease, *, outcome: Outcome = "ok", retry_after_s: float | None = None) -> None:
        _check_outcome(outcome)
        retry_after_s = bounded_wait_s(retry_after_s)
        with self._lock:
            now = self.clock()
            state = self._hosts.setdefault(lease.host, _HostState())
            if state.lease == lease.token:
                state.lease, state.lease_until = None, 0.0
            state.ended_at = now
            delay = max(self.policy.delay_s, state.crawl_delay_s)
            if outcome == "ok":
                state.failures, state.open_until = 0, 0.0
            else:
                state.failures += 1
                backoff = min(
                    self.policy.max_backoff_s, MAX_HOST_WAIT_S, delay * 2 ** min(state.failures, 30)
                )
                state.next_at = max(state.next_at, now + backoff)
                if state.failures >= self.policy.breaker_threshold:
                    state.open_until = now + self.policy.breaker_cooldown_s
                    state.next_at = max(state.next_at, state.open_until)
                    log.warning(
                        "host_circuit_opened",
                        host=lease.host,
                        failures=state.failures,
                        cooldown_s=self.policy.breaker_cooldown_s,
                    )
            if retry_after_s is not None and retry_after_s > 0:
                state.next_at = max(state.next_at, now + retry_after_s)
            state.touched_at = now
            self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        idle = [
            h
            for h, s in self._hosts.items()
            if not s.lease and s.next_at < now and now - s.touched_at > self.policy.state_ttl_s
        ]
        for host in idle:
            del self._hosts[host]

    def state(self, host: str) -> dict[str, Any]:
        with self._lock:
            state = self._hosts.get(_host_key(host))
            return {} if state is None else {k: getattr(state, k) for k in _HostState.__slots__}

    # host ownership (see the module docstring)

    def claim_host(self, host: str, *, ttl_s: float) -> str | None:
        with self._lock:
            host, now = _host_key(host), self.clock()
            held = self._owners.get(host)
            if held is not None and held[1] > now:
                return None
            token = uuid.uuid4().hex
            self._owners[host] = (token, now + ttl_s)
            return token

    def renew_host(self, host: str, token: str, *, ttl_s: float) -> bool:
        with self._lock:
            host, now = _host_key(host), self.clock()
            held = self._owners.get(host)
            if held is None or held[0] != token or held[1] <= now:
                return False
            self._owners[host] = (token, now + ttl_s)
            return True

    def release_host(self, host: str, token: str) -> None:
        with self._lock:
            host = _host_key(host)
            held = self._owners.get(host)
            if held is not None and held[0] == token:
                del self._owners[host]


def _policy_fields(policy: PolitenessPolicy) -> dict[str, Any]:
    return {name: getattr(policy, name) for name in PolitenessPolicy.__slots__}


# ---------------------------------------------------------------------------------------------
# Redis: the same state machine, atomic in Lua, on the server's clock (all times in ms)

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS[1] host hash; ARGV: token, default delay ms, crawl delay ms ('' = keep), lease ttl ms, state ttl ms
ACQUIRE_LUA = (
    _NOW_MS
    + """
local h = redis.call('HMGET', KEYS[1], 'lease', 'lease_until', 'next_at', 'crawl_delay_ms', 'open_until',
                     'ended_at')
local lease_until = tonumber(h[2]) or 0
local next_at = tonumber(h[3]) or 0
local crawl_delay = tonumber(h[4]) or 0
local open_until = tonumber(h[5]) or 0
local ended_at = tonumber(h[6]) or 0
if ARGV[3] ~= '' then
  crawl_delay = tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], 'crawl_delay_ms', crawl_delay)
end
local delay = math.max(tonumber(ARGV[2]), crawl_delay)
if h[1] and lease_until > now then
  return {0, math.max(next_at - now, math.min(lease_until - now, delay)), 'busy', now}
end
next_at = math.max(next_at, ended_at + delay)
if next_at > now then
  local reason = 'not yet'
  if open_until > now then reason = 'circuit open' end
  return {0, next_at - now, reason, now}
end
redis.call('HSET', KEYS[1], 'lease', ARGV[1], 'lease_until', now + tonumber(ARGV[4]),
           'next_at', now + delay, 'started_at', now)
redis.call('PEXPIRE', KEYS[1], math.max(delay, tonumber(ARGV[4])) + tonumber(ARGV[5]))
return {1, delay, 'granted', now}
"""
)

# KEYS[1] host hash; ARGV: token, outcome, retry-after ms (-1 = none), default delay ms,
# max backoff ms, breaker threshold, breaker cool-down ms, state ttl ms
RELEASE_LUA = (
    _NOW_MS
    + """
local h = redis.call('HMGET', KEYS[1], 'lease', 'next_at', 'failures', 'crawl_delay_ms')
local next_at = tonumber(h[2]) or 0
local failures = tonumber(h[3]) or 0
local delay = math.max(tonumber(ARGV[4]), tonumber(h[4]) or 0)
local mine = 0
if h[1] == ARGV[1] then
  mine = 1
  redis.call('HDEL', KEYS[1], 'lease', 'lease_until')
end
local opened = 0
if ARGV[2] == 'ok' then
  failures = 0
  redis.call('HDEL', KEYS[1], 'open_until')
else
  failures = failures + 1
  local backoff = math.min(tonumber(ARGV[5]), delay * math.pow(2, math.min(failures, 30)))
  next_at = math.max(next_at, now + backoff)
  if failures >= tonumber(ARGV[6]) then
    local open_until = now + tonumber(ARGV[7])
    next_at = math.max(next_at, open_until)
    redis.call('HSET', KEYS[1], 'open_until', open_until)
    opened = 1
  end
end
local retry_after = tonumber(ARGV[3])
if retry_after > 0 then
  next_at = math.max(next_at, now + retry_after)
end
redis.call('HSET', KEYS[1], 'failures', failures, 'next_at', next_at, 'ended_at', now)
redis.call('PEXPIRE', KEYS[1], math.max(next_at - now, 0) + tonumber(ARGV[8]))
return {mine, failures, opened}
"""
)


# KEYS[1] host hash; ARGV: default delay ms. How long until acquire could succeed (read only).
READY_LUA = (
    _NOW_MS
    + """
local h = redis.call('HMGET', KEYS[1], 'lease', 'lease_until', 'next_at', 'crawl_delay_ms', 'ended_at')
local lease_until = tonumber(h[2]) or 0
local next_at = tonumber(h[3]) or 0
local delay = math.max(tonumber(ARGV[1]), tonumber(h[4]) or 0)
local ended_at = tonumber(h[5]) or 0
if h[1] and lease_until > now then
  return math.max(next_at - now, math.min(lease_until - now, delay))
end
return math.max(math.max(next_at, ended_at + delay) - now, 0)
"""
)

# KEYS[1] ownership key; ARGV: token, ttl ms. Renew / release only what is still ours.
RENEW_HOST_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE_HOST_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _ms(seconds: float) -> int:
    return max(round(seconds * 1000), 0)


class RedisPolitenessGate(_WaitingGate):
    """Per-host politeness shared by every worker on every machine, keys ``xxgk:polite:<host>``."""

    KEY_PREFIX = "xxgk:polite:"

    def __init__(
        self,
        redis: Any,
        delay_s: float = 2.0,
        lease_ttl_s: float = 300.0,
        *,
        policy: PolitenessPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        owner_key_prefix: str = "",
    ) -> None:
        base = policy or PolitenessPolicy()
        self.policy = PolitenessPolicy(
            **{**_policy_fields(base), "delay_s": delay_s, "lease_ttl_s": lease_ttl_s}
        )
        self.redis = redis
        self.sleep = sleep
        self.monotonic = time.monotonic
        # politeness is owed per host whoever crawls it, so the gate's keys are shared by every
        # deployment on this Redis; who works a host is one deployment's business (its prefix)
        self.owner_prefix = f"{owner_key_prefix}xxgk:crawlhost:"
        self._acquire = redis.register_script(ACQUIRE_LUA)
        self._release = redis.register_script(RELEASE_LUA)
        self._ready = redis.register_script(READY_LUA)
        self._renew_host = redis.register_script(RENEW_HOST_LUA)
        self._release_host = redis.register_script(RELEASE_HOST_LUA)

    def key(self, host: str) -> str:
        return self.KEY_PREFIX + _host_key(host)

    def _call(self, script: Any, host: str, args: list[Any]) -> list[Any]:
        try:
            return list(script(keys=[self.key(host)], args=args))
        except redis.exceptions.RedisError as exc:
            raise StoreUnavailable(f"politeness gate: Redis unavailable ({exc})", source=host) from exc

    def _try_acquire(self, host: str, delay_s: float | None) -> Lease | tuple[float, str]:
        token = uuid.uuid4().hex
        crawl_delay = "" if delay_s is None else _ms(bounded_wait_s(delay_s) or 0.0)
        granted, value_ms, reason, now_ms = self._call(
            self._acquire,
            host,
            [
                token,
                _ms(self.policy.delay_s),
                crawl_delay,
                _ms(self.policy.lease_ttl_s),
                _ms(self.policy.state_ttl_s),
            ],
        )
        if int(granted) == 1:
            return Lease(host=host, token=token, acquired_at=int(now_ms) / 1000, delay_s=int(value_ms) / 1000)
        text = reason.decode() if isinstance(reason, bytes) else str(reason)
        return int(value_ms) / 1000, text

    def _ready_in(self, host: str) -> float:
        try:
            wait_ms = self._ready(keys=[self.key(host)], args=[_ms(self.policy.delay_s)])
        except redis.exceptions.RedisError as exc:
            raise StoreUnavailable(f"politeness gate: Redis unavailable ({exc})", source=host) from exc
        return int(wait_ms) / 1000

    def release(self, lease: Lease, *, outcome: Outcome = "ok", retry_after_s: float | None = None) -> None:
        _check_outcome(outcome)
        policy = self.policy
        # bounded before the script: it writes next_at, then PEXPIREs with it
        retry_after_s = bounded_wait_s(retry_after_s)
        mine, failures, opened = self._call(
            self._release,
            lease.host,
            [
                lease.token,
                outcome,
                -1 if retry_after_s is None else _ms(retry_after_s),
                _ms(policy.delay_s),
                _ms(min(policy.max_backoff_s, MAX_HOST_WAIT_S)),
                policy.breaker_threshold,
                _ms(policy.breaker_cooldown_s),
                _ms(policy.state_ttl_s),
            ],
        )
        if not int(mine):
            log.warning("politeness_lease_lost", host=lease.host, outcome=outcome)
        if int(opened):
            log.warning(
                "host_circuit_opened",
                host=lease.host,
                failures=int(failures),
                cooldown_s=policy.breaker_cooldown_s,
            )

    def state(self, host: str) -> dict[str, str]:
        raw = self.redis.hgetall(self.key(host))
        return {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()
        }

    # host ownership (see the module docstring)

    def owner_key(self, host: str) -> str:
        return self.owner_prefix + _host_key(host)

    def claim_host(self, host: str, *, ttl_s: float) -> str | None:
        token = uuid.uuid4().hex
        try:
            taken = self.redis.set(self.owner_key(host), token, nx=True, px=max(_ms(ttl_s), 1))
        except redis.exceptions.RedisError as exc:
            raise StoreUnavailable(f"host ownership: Redis unavailable ({exc})", source=host) from exc
        return token if taken else None

    def renew_host(self, host: str, token: str, *, ttl_s: float) -> bool:
        try:
            return bool(self._renew_host(keys=[self.owner_key(host)], args=[token, max(_ms(ttl_s), 1)]))
        except redis.exceptions.RedisError as exc:
            raise StoreUnavailable(f"host ownership: Redis unavailable ({exc})", source=host) from exc

    def release_host(self, host: str, token: str) -> None:
        try:
            self._release_host(keys=[self.owner_key(host)], args=[token])
        except redis.exceptions.RedisError:
            # the key expires by itself; a release that cannot reach Redis costs a short wait only
            log.warning("host_release_failed", host=host)
