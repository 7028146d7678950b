"""The fetcher: one polite, guarded, capped, conditional GET, with errors from the one tree.

:class:`Fetcher` wraps an ``httpx.Client`` (explicit connect/read/write/pool timeouts, an
honest User-Agent, no cookies kept, no proxies from the environment) and, per hop:

1. checks the URL: ``http``/``https`` only, no userinfo, inside the crawl scope (``*.gov.cn``,
   ``XXGK_EXTRA_ALLOWED_DOMAINS``, the site's own domains, allow-listed test hosts);
2. asks robots.txt (:class:`~worker.crawler.robots.RobotsCache`, per process and, with a
   ``robots_store``, shared by all workers in Redis), whose Crawl-delay becomes the host's
   spacing in the politeness gate;
3. takes the host's lease from the :class:`~worker.crawler.politeness.PolitenessGate`, sends
   the request through the SSRF-guarded transport (the resolved address is checked and pinned),
   and releases the lease with the outcome (``ok``; ``throttled`` with Retry-After; ``error``);
4. follows a redirect by hand (at most :data:`MAX_REDIRECTS`), so every hop is checked again.

Bodies are streamed as raw bytes and decompressed here with our own cap, so a 1 MiB gzip bomb
never becomes 10 GiB in memory. Errors: timeouts and resets → ``FetchTimeout``; 429/5xx →
``ServerBusy(retry_after_s)``; anti-bot challenges and WAF pages (any status) →
``BlockedBySite``; robots.txt disallow → ``BlockedBySite("robots.txt …")``; other 4xx, SSRF
refusals and out-of-scope hops → ``FetchRejected``; too big → ``LimitExceeded``; host busy →
``PolitenessDeferred``.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.cookiejar
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from shared.errors import (
    BlockedBySite,
    CorruptDocument,
    DocumentError,
    FetchRejected,
    FetchTimeout,
    LimitExceeded,
    PolitenessDeferred,
    ServerBusy,
    UnsupportedMediaType,
    XxgkError,
)
from shared.logging import get_logger
from worker.crawler.antibot import detect_challenge
from worker.crawler.discovery import in_scope
from worker.crawler.politeness import Lease, Outcome, PolitenessGate, bounded_wait_s
from worker.crawler.robots import RobotsCache, SharedRobotsStore
from worker.crawler.ssrf import AddressPolicy, GuardedTransport

log = get_logger(__name__)

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# how much of an error page we read to recognise a challenge or a WAF page
ERROR_BODY_BYTES = 256 * 1024
ROBOTS_MAX_BYTES = 512 * 1024
# the whole exchange (all hops, whole body) may take this many times the per-read timeout:
# read timeouts alone do not stop a server that trickles one byte every few seconds
DEADLINE_FACTOR = 5
ACCEPTED_ENCODINGS = "gzip, deflate"


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str
    final_url: str
    status: int
    headers: dict[str, str]
    content: bytes  # decoded from Content-Encoding; empty when not_modified
    sha256: str | None  # of ``content``; None when not_modified (nothing was downloaded)
    content_type: str | None
    not_modified: bool
    etag: str | None
    last_modified: str | None
    elapsed_s: float
    redirects: tuple[str, ...] = field(default=())


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date; ``None`` if absent or bad.

    Capped at :data:`~worker.crawler.politeness.MAX_HOST_WAIT_S` (a day): a server cannot close
    a host for ever, nor hand the gate a number it cannot store."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is true too, but not a number
        return bounded_wait_s(float(value))
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    current = time.time() if now is None else now
    return bounded_wait_s(moment.timestamp() - current)


# ---------------------------------------------------------------------------------------------
# bounded decompression


class _Inflater:
    """One zlib stage (gzip, or deflate with or without its zlib wrapper) that never produces
    more than it is asked for in one call."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._raw_fallback = encoding == "deflate"
        self._started = False
        self._inflater = self._new()

    def _new(self, wbits: int | None = None) -> Any:
        if wbits is None:
            wbits = 16 + zlib.MAX_WBITS if self.encoding == "gzip" else zlib.MAX_WBITS
        return zlib.decompressobj(wbits)

    def feed(self, data: bytes, limit: int) -> bytes:
        out = bytearray()
        pending = data
        while pending and len(out) <= limit:
            try:
                piece = self._inflater.decompress(pending, limit + 1 - len(out))
            except zlib.error as exc:
                if self._raw_fallback and not self._started:
                    # "deflate" sent as a raw deflate stream (no zlib header): common enough
                    self._raw_fallback = False
                    self._inflater = self._new(-zlib.MAX_WBITS)
                    continue
                raise _BadEncoding(f"corrupt {self.encoding} body: {exc}") from exc
            self._started = True
            out += piece
            pending = self._inflater.unconsumed_tail
            if not pending and self._inflater.eof and self._inflater.unused_data:
                if self.encoding != "gzip" or not self._inflater.unused_data.startswith(b"\x1f\x8b"):
                    break  # trailing junk after the stream: browsers ignore it, so do we
                # gzip allows several members back to back
                pending = self._inflater.unused_data
                self._inflater = self._new()
        return bytes(out)

    def flush(self, limit: int) -> bytes:
        return self._inflater.flush()[: limit + 1]


class _BadEncoding(Exception):
    pass


class BoundedDecoder:
    """Undo ``Content-Encoding`` (gzip/deflate, possibly chained) with a cap on the output."""

    def __init__(self, content_encoding: str | None, limit: int) -> None:
        self.limit = limit
        codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
        codings = ["gzip" if c == "x-gzip" else c for c in codings if c != "identity"]
        unknown = [c for c in codings if c not in ("gzip", "deflate")]
        if unknown:
            raise UnsupportedMediaType(f"content-encoding {', '.join(unknown)} was not asked for")
        # applied in order, so undone in reverse
        self.stages = [_Inflater(c) for c in reversed(codings)]

    def feed(self, data: bytes) -> bytes:
        for stage in self.stages:
            data = stage.feed(data, self.limit)
        return data

    def flush(self) -> bytes:
        data = b""
        for stage in self.stages:
            data = (stage.feed(data, self.limit) if data else b"") + stage.flush(self.limit)
        return data


# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Exchange:
    """One hop's answer, read within the caps."""

    status: int
    headers: dict[str, str]
    body: bytes
    location: str | None


class Fetcher:
    """GET one URL politely and safely; see the module docstring for what each hop does.

    ``transport``: a test seam. Without one, a :class:`GuardedTransport` over httpx's own is
    used. With one *and* an ``address_policy``, the guard wraps it; with one and no policy the
    given transport is used as is (``httpx.MockTransport`` in tests).
    ``scope_domains``: the site's own domains (``*.gov.cn`` and ``settings.extra_allowed_domains``
    are always in scope). ``politeness_wait_s``: how long ``fetch`` may sleep for the host's
    turn before raising ``PolitenessDeferred`` (:func:`worker.pipeline.politeness_wait_s`: a
    fetch batch sleeps through its host's delay between pages, and comes back later for longer
    waits). Redirect hops and robots.txt wait up to
    ``redirect_wait_s`` so that work already done is not thrown away.
    """

    def __init__(
        self,
        settings: Any,
        *,
        transport: httpx.BaseTransport | None = None,
        address_policy: AddressPolicy | None = None,
        gate: PolitenessGate,
        robots: RobotsCache | None = None,
        scope_domains: Iterable[str] = (),
        politeness_wait_s: float = 0.0,
        redirect_wait_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.gate = gate
        self.robots = robots
        self.user_agent: str = settings.user_agent
        self.max_fetch_bytes: int = settings.max_fetch_bytes
        self.politeness_wait_s = politeness_wait_s
        self.redirect_wait_s = (
            redirect_wait_s if redirect_wait_s is not None else 3 * settings.politeness_delay_s
        )
        if transport is None:
            address_policy = address_policy or AddressPolicy(settings.ssrf_allow)
            transport = GuardedTransport(address_policy)
        elif address_policy is not None:
            transport = GuardedTransport(address_policy, inner=transport)
        self.address_policy = address_policy
        self.scope_domains: tuple[str, ...] = (
            *settings.extra_allowed_domains,
            *scope_domains,
            *(sorted(address_policy.allowed_names()) if address_policy else ()),
        )
        timeout_s = float(settings.fetch_timeout_s)
        self.deadline_s = DEADLINE_FACTOR * timeout_s
        self._client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(
                connect=min(timeout_s, 10.0), read=timeout_s, write=timeout_s, pool=timeout_s
            ),
            follow_redirects=False,
            trust_env=False,  # an environment proxy would bypass the SSRF guard
            # no cookies kept or sent, ever: not a session's, not a challenge's, not a
            # ``Domain=.gov.cn`` cookie one site sets for all the others
            cookies=http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[])),
            headers={
                "User-Agent": self.user_agent,
                "Accept": "text/html,application/xhtml+xml,application/pdf,application/msword,*/*;q=0.8",
                "Accept-Language": "zh-CN,zh;q=0.9",
                "Accept-Encoding": ACCEPTED_ENCODINGS,
            },
        )

    # -- public -----------------------------------------------------------------------------

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        max_bytes: int | None = None,
        scope_domains: Iterable[str] = (),
    ) -> FetchResult:
        """GET ``url`` (conditional when ``etag``/``last_modified`` are given)."""
        started = time.monotonic()
        cap = min(max_bytes or self.max_fetch_bytes, self.max_fetch_bytes)
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            final_url, exchange, redirects = self._follow(
                url,
                headers,
                cap=cap,
                scope=(*self.scope_domains, *scope_domains),
                started=started,
                check_robots=True,
                truncate=False,
            )
        except PolitenessDeferred:
            raise  # not a failure: the host's turn has not come
        except XxgkError as exc:
            exc.with_source(url, None)
            log.info(
                "page_fetch_failed",
                url=url,
                error=exc.code,
                reason=exc.message,
                elapsed_ms=round((time.monotonic() - started) * 1000),
            )
            raise
        elapsed = time.monotonic() - started
        not_modified = exchange.status == 304
        digest = None if not_modified else hashlib.sha256(exchange.body).hexdigest()
        result = FetchResult(
            url=url,
            final_url=final_url,
            status=exchange.status,
            headers=exchange.headers,
            content=b"" if not_modified else exchange.body,
            sha256=digest,
            content_type=exchange.headers.get("content-type"),
            not_modified=not_modified,
            etag=exchange.headers.get("etag") or (etag if not_modified else None),
            last_modified=exchange.headers.get("last-modified") or (last_modified if not_modified else None),
            elapsed_s=elapsed,
            redirects=redirects,
        )
        log.info(
            "page_fetched",
            url=url,
            final_url=final_url,
            status=result.status,
            sha256=digest,
            bytes=len(result.content),
            elapsed_ms=round(elapsed * 1000),
            not_modified=not_modified,
        )
        return result

    def fetch_text(self, url: str) -> tuple[int, str]:
        """``(status, text)`` of a small text resource such as robots.txt: redirects followed,
        statuses returned rather than raised, the first 512 KiB only; politeness and the SSRF
        guard apply; robots.txt itself is not consulted."""
        started = time.monotonic()
        _, exchange, _ = self._follow(
            url,
            {},
            cap=ROBOTS_MAX_BYTES,
            scope=(*self.scope_domains, _host(url)),
            started=started,
            check_robots=False,
            truncate=True,
            raise_for_status=False,
        )
        return exchange.status, exchange.body.decode("utf-8", errors="replace")

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- hops -------------------------------------------------------------------------------

    def _follow(
        self,
        url: str,
        headers: dict[str, str],
        *,
        cap: int,
        scope: tuple[str, ...],
        started: float,
        check_robots: bool,
        truncate: bool,
        raise_for_status: bool = True,
    ) -> tuple[str, _Exchange, tuple[str, ...]]:
        current = url
        visited: list[str] = []
        for hop in range(MAX_REDIRECTS + 1):
            self._check_url(current, scope)
            robots_fetched_now = False
            if check_robots and self.robots is not None:
                robots_fetched_now = not self.robots.is_cached(current)
                self._check_robots(current)
            # a first hop waits only as long as the caller allows; a hop that follows work
            # already done (a redirect, a robots.txt fetch) waits for its turn
            first_hop = hop == 0 and check_robots and not robots_fetched_now
            wait_s = (
                self.politeness_wait_s if first_hop else max(self.politeness_wait_s, self.redirect_wait_s)
            )
            exchange = self._exchange(
                current,
                headers,
                cap=cap,
                started=started,
                wait_s=wait_s,
                truncate=truncate,
                raise_for_status=raise_for_status,
            )
            if exchange.location is None:
                return current, exchange, tuple(visited)
            visited.append(current)
            current = exchange.location
        raise FetchRejected(f"more than {MAX_REDIRECTS} redirects", source=url)

    def _check_url(self, url: str, scope: tuple[str, ...]) -> None:
        try:
            parts = urlsplit(url)
            # .port parses lazily: ":99999" or ":abc" raise ValueError here, not deep in robots.txt
            port = parts.port
        except ValueError as exc:
            raise FetchRejected(f"malformed URL {url!r}: {exc}", source=url) from exc
        if port == 0:
            raise FetchRejected(f"malformed URL {url!r}: port 0", source=url)
        if parts.scheme.lower() not in ("http", "https"):
            raise FetchRejected(f"scheme {parts.scheme!r} is not fetched", source=url)
        if parts.username is not None or parts.password is not None:
            raise FetchRejected("URLs with userinfo are not fetched", source=url)
        if not in_scope(url, scope):
            log.warning("page_rejected", url=url, reason="out of scope")
            raise FetchRejected(
                f"{parts.hostname} is outside the crawl scope (government domains only)", source=url
            )

    def _check_robots(self, url: str) -> None:
        assert self.robots is not None
        verdict = self.robots.verdict(url, self.user_agent)
        if verdict.allowed:
            return
        if verdict.state == "unreachable":
            raise ServerBusy(
                "robots.txt is unreachable (5xx/timeout): complete disallow for now (RFC 9309)",
                retry_after_s=verdict.retry_after_s,
                source=url,
            )
        log.info("page_rejected", url=url, reason="robots.txt")
        raise BlockedBySite("robots.txt disallows this URL for our user agent", source=url)

    def _exchange(
        self,
        url: str,
        headers: dict[str, str],
        *,
        cap: int,
        started: float,
        wait_s: float,
        truncate: bool,
        raise_for_status: bool,
    ) -> _Exchange:
        host = _host(url)
        crawl_delay = self.robots.crawl_delay(url, self.user_agent) if self.robots is not None else None
        lease = self.gate.acquire(host, wait_s=wait_s, delay_s=crawl_delay)
        outcome: Outcome = "error"
        retry_after: float | None = None
        try:
            exchange, outcome, retry_after = self._send(
                url, headers, cap=cap, started=started, truncate=truncate, raise_for_status=raise_for_status
            )
            return exchange
        except ServerBusy as exc:
            outcome, retry_after = "throttled", exc.retry_after_s
            raise
        except (FetchRejected, DocumentError):
            outcome = "ok"  # the host answered; the answer is the problem
            raise
        finally:
            self._release(lease, outcome, retry_after)

    def _release(self, lease: Lease, outcome: Outcome, retry_after: float | None) -> None:
        self.gate.release(lease, outcome=outcome, retry_after_s=retry_after)

    def _send(
        self,
        url: str,
        headers: dict[str, str],
        *,
        cap: int,
        started: float,
        truncate: bool,
        raise_for_status: bool,
    ) -> tuple[_Exchange, Outcome, float | None]:
        try:
            request = self._client.build_request("GET", url, headers=headers)
        except httpx.InvalidURL as exc:
            raise FetchRejected(f"invalid URL: {exc}", source=url) from exc
        try:
            response = self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise FetchTimeout(f"timed out: {type(exc).__name__}", source=url) from exc
        except httpx.RemoteProtocolError as exc:
            if "location header" in str(exc).lower():
                # httpx builds the redirect target even when we follow redirects ourselves:
                # an unparseable Location (octal/hex IPv4, full-width digits) is the server's
                # fault and will not get better on a retry
                raise FetchRejected(f"invalid redirect target: {exc}", source=url) from exc
            raise FetchTimeout(f"connection failed: {type(exc).__name__}: {exc}", source=url) from exc
        except httpx.TransportError as exc:
            raise FetchTimeout(f"connection failed: {type(exc).__name__}: {exc}", source=url) from exc
        try:
            status = response.status_code
            response_headers = {k.lower(): v for k, v in response.headers.items()}
            location = response_headers.get("location")
            if status in REDIRECT_STATUSES and location:
                return _Exchange(status, response_headers, b"", urljoin(url, location.strip())), "ok", None
            ok = 200 <= status < 300 or status == 304
            body_cap = cap if ok else min(cap, ERROR_BODY_BYTES)
            body = self._read_body(response, url, cap=body_cap, started=started, truncate=truncate or not ok)
        except httpx.TimeoutException as exc:
            raise FetchTimeout(f"timed out reading the body: {type(exc).__name__}", source=url) from exc
        except httpx.TransportError as exc:
            raise FetchTimeout(
                f"connection failed reading the body: {type(exc).__name__}", source=url
            ) from exc
        finally:
            response.close()
        exchange = _Exchange(status, response_headers, body, None)
        challenge = detect_challenge(status, response_headers, body)
        if challenge:
            log.warning("page_blocked", url=url, status=status, challenge=challenge)
            raise BlockedBySite(f"anti-bot challenge: {challenge} (HTTP {status})", source=url)
        if not raise_for_status or 200 <= status < 300 or status == 304:
            outcome: Outcome = "error" if status >= 500 or status == 429 else "ok"
            return exchange, outcome, parse_retry_after(response_headers.get("retry-after"))
        if status == 429 or status >= 500:
            raise ServerBusy(
                f"HTTP {status}",
                retry_after_s=parse_retry_after(response_headers.get("retry-after")),
                source=url,
            )
        if 300 <= status < 400:
            raise FetchRejected(f"HTTP {status} without a usable Location", source=url)
        raise FetchRejected(f"HTTP {status}", source=url)

    def _read_body(
        self, response: httpx.Response, url: str, *, cap: int, started: float, truncate: bool
    ) -> bytes:
        declared = response.headers.get("content-length", "")
        if not truncate and declared.isdigit() and int(declared) > cap:
            raise LimitExceeded(f"Content-Length {declared} is over the {cap}-byte cap", source=url)
        try:
            decoder = BoundedDecoder(response.headers.get("content-encoding"), cap)
        except UnsupportedMediaType as exc:
            exc.with_source(url, None)
            raise
        chunks: list[bytes] = []
        raw_total = decoded_total = 0
        try:
            for raw in self._raw_chunks(response, started, url):
                raw_total += len(raw)
                decoded = decoder.feed(raw)
                decoded_total += len(decoded)
                chunks.append(decoded)
                if raw_total > cap or decoded_total > cap:
                    if truncate:
                        break
                    kind = "raw" if raw_total > cap else "decompressed"
                    raise LimitExceeded(f"{kind} body over the {cap}-byte cap", source=url)
            else:
                tail = decoder.flush()
                decoded_total += len(tail)
                chunks.append(tail)
                if decoded_total > cap and not truncate:
                    raise LimitExceeded(f"decompressed body over the {cap}-byte cap", source=url)
        except _BadEncoding as exc:
            if truncate:
                return b"".join(chunks)[:cap]
            raise CorruptDocument(str(exc), source=url) from exc
        return b"".join(chunks)[:cap]

    def _raw_chunks(self, response: httpx.Response, started: float, url: str) -> Iterator[bytes]:
        # a response built in memory (httpx.MockTransport with content=…) was read when it was
        # made; its raw bytes are still in its stream
        chunks: Iterable[bytes] = response.stream if response.is_stream_consumed else response.iter_raw()  # type: ignore[assignment]
        for chunk in chunks:
            if time.monotonic() - started > self.deadline_s:
                raise FetchTimeout(f"the download took longer than {self.deadline_s:.0f}s", source=url)
            if chunk:
                yield chunk


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def build_fetcher(
    settings: Any,
    gate: PolitenessGate,
    *,
    robots_ttl_s: float = 24 * 3600.0,
    transport: httpx.BaseTransport | None = None,
    address_policy: AddressPolicy | None = None,
    robots_store: SharedRobotsStore | None = None,
    **options: Any,
) -> Fetcher:
    """A :class:`Fetcher` whose robots.txt cache fetches through the fetcher itself (same
    politeness, same SSRF guard). ``robots_store``: the shared tier behind the per-process
    robots.txt cache (a :class:`~worker.crawler.robots.RedisRobotsStore`), so that all fetch
    workers ask a site for robots.txt once per TTL rather than once each."""
    fetcher = Fetcher(
        settings, transport=transport, address_policy=address_policy, gate=gate, robots=None, **options
    )
    fetcher.robots = RobotsCache(
        fetcher.fetch_text, ttl_s=robots_ttl_s, user_agent=settings.user_agent, shared=robots_store
    )
    return fetcher
