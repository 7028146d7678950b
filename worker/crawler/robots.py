"""robots.txt, per RFC 9309, parsed by protego and cached per origin.

What a fetch of ``/robots.txt`` means (RFC 9309 §2.3.1):

- 2xx: the rules apply (the first 512 KiB are parsed; protego also reads ``Crawl-delay``);
- 4xx ("unavailable", including 401/403): no rules, everything is allowed;
- 5xx, 429, timeouts, resets ("unreachable"): assume complete disallow, and ask again after
  ``unreachable_ttl_s`` rather than after the full ``ttl_s``.

``fetch_text(url) -> (status, text)`` does the fetching (redirects already followed), so this
module holds no HTTP client; :meth:`worker.crawler.http.Fetcher.fetch_text` is the usual one.
It may raise: :class:`~shared.errors.PolitenessDeferred` and
:class:`~shared.errors.BlockedBySite` pass through uncached, and so does
:class:`~shared.errors.StoreUnavailable` (our own Redis being down says nothing about the
site); other transient errors mean "unreachable", other permanent errors (SSRF refusal, out
of scope) mean "unavailable".

Two tiers. :class:`RobotsCache` keeps entries per process (LRU, ``max_entries``). With
``shared=`` a :class:`RedisRobotsStore` behind it, every fetch worker on every machine shares
one answer per origin, so a site sees one robots.txt request per ``ttl_s`` however many
workers crawl it (each of which costs a politeness slot on the site). Order: the process
cache, then the shared store (its text parsed again by protego), then the network; what the
network said goes into both. The store holds what rebuilds the entry — state, HTTP status,
the robots.txt text (already cut to :data:`MAX_ROBOTS_CHARS`) — under a Redis TTL equal to
the entry's remaining lifetime (``ttl_s``, or ``unreachable_ttl_s`` for "unreachable"), so an
"unreachable" verdict expires for every worker at the same moment. The shared tier is an
optimisation and never a verdict: when Redis fails (connection, timeout, any Redis error) the
cache logs ``robots_shared_store_unavailable`` and carries on with the process cache and the
network, and a failure of the shared store is never remembered as anything about the site.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args
from urllib.parse import urlsplit

import redis.exceptions
from protego import Protego

from shared.errors import (
    BlockedBySite,
    PermanentError,
    PolitenessDeferred,
    StoreUnavailable,
    TransientError,
)
from shared.logging import get_logger

log = get_logger(__name__)

MAX_ROBOTS_CHARS = 512 * 1024
RobotsState = Literal["rules", "unavailable", "unreachable"]
ROBOTS_STATES: frozenset[str] = frozenset(get_args(RobotsState))


@dataclass(frozen=True, slots=True)
class RobotsVerdict:
    allowed: bool
    state: RobotsState
    retry_after_s: float | None = None  # for "unreachable": when robots.txt will be asked again


@dataclass(slots=True)
class _Entry:
    state: RobotsState
    parser: Protego | None
    expires_at: float
    status: int | None


@dataclass(frozen=True, slots=True)
class StoredRobots:
    """What the shared tier keeps per origin: enough to rebuild the entry in any process."""

    state: RobotsState
    status: int | None
    text: str  # the robots.txt text for "rules" (at most MAX_ROBOTS_CHARS), else ""
    ttl_s: float  # remaining lifetime


class SharedRobotsStore(Protocol):
    """The shared tier. Both methods raise :class:`~shared.errors.StoreUnavailable` when the
    store cannot answer; ``get`` returns ``None`` for nothing (or nothing usable) stored."""

    def get(self, origin: str) -> StoredRobots | None: ...

    def put(self, origin: str, record: StoredRobots) -> None: ...


class RedisRobotsStore:
    """Per origin a Redis hash ``{prefix}{origin}`` (``state``, ``status``, ``text``) that
    expires with the entry it describes. ``client``: a ``redis.Redis`` — the politeness gate's
    is fine (no ``decode_responses`` needed either way)."""

    def __init__(self, client: Any, prefix: str = "xxgk:robots:") -> None:
        self.client = client
        self.prefix = prefix

    def key(self, origin: str) -> str:
        return f"{self.prefix}{origin}"

    def get(self, origin: str) -> StoredRobots | None:
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.hgetall(self.key(origin))
            pipe.pttl(self.key(origin))
            raw, pttl_ms = pipe.execute()
        except redis.exceptions.RedisError as exc:
            raise StoreUnavailable(f"robots.txt store: Redis unavailable ({exc})", source=origin) from exc
        if not raw or pttl_ms is None or int(pttl_ms) <= 0:  # absent, expiring now, or no TTL
            return None
        fields = {_text(k): v for k, v in raw.items()}
        state = _text(fields.get("state", b""))
        status = _text(fields.get("status", b""))
        if state not in ROBOTS_STATES or not (status == "" or status.isdigit()):
            log.warning("robots_shared_store_corrupt", origin=origin, key=self.key(origin))
            return None
        return StoredRobots(
            state=state,  # type: ignore[arg-type]
            status=int(status) if status else None,
            text=_text(fields.get("text", b""))[:MAX_ROBOTS_CHARS],
            ttl_s=int(pttl_ms) / 1000.0,
        )

    def put(self, origin: str, record: StoredRobots) -> None:
        ttl_ms = max(round(record.ttl_s * 1000), 1)
        key = self.key(origin)
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(key)
            pipe.hset(
                key,
                mapping={
                    "state": record.state,
                    "status": "" if record.status is None else str(record.status),
                    "text": record.text[:MAX_ROBOTS_CHARS],
                },
            )
            pipe.pexpire(key, ttl_ms)
            pipe.execute()
        except redis.exceptions.RedisError as exc:
            raise StoreUnavailable(f"robots.txt store: Redis unavailable ({exc})", source=origin) from exc


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def robots_url_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.rsplit('@', 1)[-1].lower()}/robots.txt"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}:{port}"


class RobotsCache:
    def __init__(
        self,
        fetch_text: Callable[[str], tuple[int, str]],
        ttl_s: float = 24 * 3600.0,
        *,
        user_agent: str = "*",
        unreachable_ttl_s: float = 900.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedRobotsStore | None = None,
    ) -> None:
        self.fetch_text = fetch_text
        self.ttl_s = ttl_s
        self.unreachable_ttl_s = min(unreachable_ttl_s, ttl_s)
        self.user_agent = user_agent
        self.max_entries = max_entries
        self.clock = clock
        self.shared = shared
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._entries_lock = threading.Lock()

    def _load(self, url: str) -> _Entry:
        origin = origin_of(url)
        now = self.clock()
        entry = self._fresh(origin, now)
        if entry is not None:
            return entry
        entry = self._from_shared(origin, now)
        if entry is not None:
            return entry
        entry, text = self._fetch(robots_url_of(url), now)
        self._remember(origin, entry)
        log.info("robots_loaded", origin=origin, state=entry.state, status=entry.status, source="network")
        self._share(origin, entry, text, now)
        return entry

    def _fresh(self, origin: str, now: float) -> _Entry | None:
        # a fetch worker's threads share this cache: the LRU moves and evictions are locked
        with self._entries_lock:
            entry = self._entries.get(origin)
            if entry is not None and entry.expires_at > now:
                self._entries.move_to_end(origin)
                return entry
            return None

    def _remember(self, origin: str, entry: _Entry) -> None:
        with self._entries_lock:
            self._entries[origin] = entry
            self._entries.move_to_end(origin)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def _lifetime(self, state: RobotsState) -> float:
        return self.unreachable_ttl_s if state == "unreachable" else self.ttl_s

    def _from_shared(self, origin: str, now: float) -> _Entry | None:
        """The shared tier's entry for ``origin``, kept in the process cache; ``None`` when
        there is no shared tier, nothing stored, or the store cannot answer."""
        if self.shared is None:
            return None
        try:
            record = self.shared.get(origin)
        except StoreUnavailable as exc:
            log.warning("robots_shared_store_unavailable", origin=origin, op="get", error=exc.message)
            return None
        if record is None:
            return None
        parser = Protego.parse(record.text[:MAX_ROBOTS_CHARS]) if record.state == "rules" else None
        # never longer than this process would have kept its own answer
        remaining = min(record.ttl_s, self._lifetime(record.state))
        entry = _Entry(record.state, parser, now + remaining, record.status)
        self._remember(origin, entry)
        log.info("robots_loaded", origin=origin, state=entry.state, status=entry.status, source="shared")
        return entry

    def _share(self, origin: str, entry: _Entry, text: str, now: float) -> None:
        if self.shared is None:
            return
        record = StoredRobots(entry.state, entry.status, text, entry.expires_at - now)
        try:
            self.shared.put(origin, record)
        except StoreUnavailable as exc:
            log.warning("robots_shared_store_unavailable", origin=origin, op="put", error=exc.message)

    def _fetch(self, robots_url: str, now: float) -> tuple[_Entry, str]:
        """The entry for what the network said, and the text to share ("" unless "rules")."""
        try:
            status, text = self.fetch_text(robots_url)
        except (PolitenessDeferred, BlockedBySite, StoreUnavailable):
            # our own Redis being down says nothing about the site: do not cache a disallow
            raise
        except TransientError as exc:
            log.info("robots_unreachable", url=robots_url, error=exc.code)
            return _Entry("unreachable", None, now + self.unreachable_ttl_s, None), ""
        except PermanentError as exc:
            log.info("robots_unavailable", url=robots_url, error=exc.code)
            return _Entry("unavailable", None, now + self.ttl_s, None), ""
        if 200 <= status < 300:
            text = text[:MAX_ROBOTS_CHARS]
            return _Entry("rules", Protego.parse(text), now + self.ttl_s, status), text
        if status == 429 or status >= 500:
            return _Entry("unreachable", None, now + self.unreachable_ttl_s, status), ""
        # 4xx and redirect loops: unavailable, crawl freely
        return _Entry("unavailable", None, now + self.ttl_s, status), ""

    def is_cached(self, url: str) -> bool:
        """Whether robots.txt for ``url``'s origin is known and fresh (no fetch needed): in this
        process, or in the shared tier (then it is kept in this process too)."""
        origin = origin_of(url)
        now = self.clock()
        return self._fresh(origin, now) is not None or self._from_shared(origin, now) is not None

    def verdict(self, url: str, user_agent: str | None = None) -> RobotsVerdict:
        entry = self._load(url)
        if entry.state == "unreachable":
            return RobotsVerdict(False, "unreachable", max(entry.expires_at - self.clock(), 0.0))
        if entry.parser is None:
            return RobotsVerdict(True, "unavailable")
        return RobotsVerdict(bool(entry.parser.can_fetch(url, user_agent or self.user_agent)), "rules")

    def allowed(self, url: str, user_agent: str | None = None) -> bool:
        return self.verdict(url, user_agent).allowed

    def crawl_delay(self, host: str, user_agent: str | None = None) -> float | None:
        """The ``Crawl-delay`` for ``host`` (a host name or a URL) from robots.txt already loaded
        into this process (from the network or the shared tier)."""
        with self._entries_lock:
            if "://" in host:
                entries = [self._entries.get(origin_of(host))]
            else:
                name = host.lower()
                entries = [
                    e
                    for origin, e in self._entries.items()
                    if origin.split("://", 1)[1].rsplit(":", 1)[0] == name
                ]
        delays = [
            float(delay)
            for entry in entries
            if entry is not None
            and entry.parser is not None
            and (delay := entry.parser.crawl_delay(user_agent or self.user_agent)) is not None
        ]
        return max(delays) if delays else None
