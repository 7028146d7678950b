"""robots.txt, per RFC 9309, parsed by protego and cached per origin.

What a fetch of ``/robots.txt`` means (RFC 9309 §2.3.1):

- 2xx: the rules apply (the first 512 KiB are parsed; protego also reads ``Crawl-delay``);
- 4xx ("unavailable", including 401/403): no rules, everything is allowed;
- 5xx, 429, timeouts, resets ("unreachable"): assume complete disallow, and ask again after
  ``unreachable_ttl_s`` rather than after the full ``ttl_s``.

``fetch_text(url) -> (status, text)`` does the fetching (redirects already followed), so this
module holds no HTTP client; :meth:`worker.crawler.http.Fetcher.fetch_text` is the usual one.
It may raise: :class:`~shared.errors.PolitenessDeferred` and
:class:`~shared.errors.BlockedBySite` pass through uncached, other transient errors mean
"unreachable", other permanent errors (SSRF refusal, out of scope) mean "unavailable".
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

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
    ) -> None:
        self.fetch_text = fetch_text
        self.ttl_s = ttl_s
        self.unreachable_ttl_s = min(unreachable_ttl_s, ttl_s)
        self.user_agent = user_agent
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def _load(self, url: str) -> _Entry:
        origin = origin_of(url)
        now = self.clock()
        entry = self._entries.get(origin)
        if entry is not None and entry.expires_at > now:
            self._entries.move_to_end(origin)
            return entry
        entry = self._fetch(robots_url_of(url), now)
        self._entries[origin] = entry
        self._entries.move_to_end(origin)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        log.info("robots_loaded", origin=origin, state=entry.state, status=entry.status)
        return entry

    def _fetch(self, robots_url: str, now: float) -> _Entry:
        try:
            status, text = self.fetch_text(robots_url)
        except (PolitenessDeferred, BlockedBySite, StoreUnavailable):
            # our own Redis being down says nothing about the site: do not cache a disallow
            raise
        except TransientError as exc:
            log.info("robots_unreachable", url=robots_url, error=exc.code)
            return _Entry("unreachable", None, now + self.unreachable_ttl_s, None)
        except PermanentError as exc:
            log.info("robots_unavailable", url=robots_url, error=exc.code)
            return _Entry("unavailable", None, now + self.ttl_s, None)
        if 200 <= status < 300:
            return _Entry("rules", Protego.parse(text[:MAX_ROBOTS_CHARS]), now + self.ttl_s, status)
        if status == 429 or status >= 500:
            return _Entry("unreachable", None, now + self.unreachable_ttl_s, status)
        # 4xx and redirect loops: unavailable, crawl freely
        return _Entry("unavailable", None, now + self.ttl_s, status)

    def is_cached(self, url: str) -> bool:
        """Whether robots.txt for ``url``'s origin is known and fresh (no fetch needed)."""
        entry = self._entries.get(origin_of(url))
        return entry is not None and entry.expires_at > self.clock()

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
        """The ``Crawl-delay`` for ``host`` (a host name or a URL) from robots.txt already loaded."""
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
