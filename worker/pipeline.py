"""The crawl pipeline without Celery: discover → fetch → archive → ingest (parse, check, store, events).

Each stage is one function over a SQL session and ids; the SQL store holds every URL's
state (:mod:`shared.store.crawl_state`), so a stage can run twice, in any worker, after any
crash, and do no harm. A stage returns a :class:`StageResult` naming the follow-up work
(``fetch`` page 7, ``ingest`` page 9, ``alerts``); whoever drives the pipeline turns those
into messages: the Celery tasks in :mod:`worker.tasks` (one queue per stage), or
:class:`InProcessPipeline` here (``xxgk demo``, ``xxgk crawl`` without Redis), which runs
the very same functions on a few threads.

Errors follow the tree in :mod:`shared.errors`: a :class:`~shared.errors.PermanentError`
is recorded on the page (``failed``/``blocked``, with the reason) and the stage finishes;
a :class:`~shared.errors.TransientError` is recorded (``last_error``, when to try again)
and re-raised so the driver retries it later (``retry_after_s`` when the server or the
politeness gate said how long).

The fetch stage works a *host*, not a page (:func:`fetch_host`): it owns the host (one owner
per host across every worker, :class:`~worker.crawler.politeness.HostOwnership`), fetches the
page it was sent for and then the host's other due pages one after another, each after the
politeness delay, for up to ``host_batch_s``; then it hands the host back and leaves one
follow-up for what is left. A message for a host someone already works is dropped at once:
the owner takes that page too. One message per host instead of one per page bouncing off a
busy host is what lets a few threads keep every host busy at the politeness bound
(BENCHMARKS.md, "Crawl and pipeline"). Waits longer than the fetcher sleeps for (Retry-After,
a long Crawl-delay, backoff, an open circuit) end the batch with a delayed follow-up.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy.exc
from sqlmodel import Session

from shared.errors import (
    BlockedBySite,
    PermanentError,
    PolitenessDeferred,
    StoreUnavailable,
    TransientError,
    XxgkError,
)
from shared.logging import get_logger
from shared.settings import Settings
from shared.store import crawl_state
from shared.store.crawl_state import ATTACHMENT, BLOCKED, FAILED, FETCHED, LISTING, PARSED, REPORT, PageSpec
from shared.store.models import Page, Site

if TYPE_CHECKING:
    from worker.crawler.politeness import HostOwnership

log = get_logger(__name__)


def _beijing_zone() -> tzinfo:
    try:
        return ZoneInfo("Asia/Shanghai")
    except ZoneInfoNotFoundError:
        # a slim image without tzdata: China has kept UTC+8 without DST since 1991
        return timezone(timedelta(hours=8), "CST")


# publication deadlines (31 January, 31 March, …) are Beijing calendar dates: "today" is the
# date in Beijing, which is a day ahead of the UTC date from 16:00 UTC on
BEIJING = _beijing_zone()


def beijing_today(now: datetime | None = None) -> date:
    """The calendar date in Beijing at ``now`` (default: the current time)."""
    return (now or datetime.now(UTC)).astimezone(BEIJING).date()


Stage = Literal["discover", "discover_all", "fetch", "ingest", "sweep", "check_missing", "alerts"]
HTML_TYPES = ("text/html", "application/xhtml+xml")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class FollowUp:
    """Work a stage leaves for later: enqueue ``stage`` for ``target`` (a page or site id)."""

    stage: Stage
    target: int | None = None
    delay_s: float = 0.0  # not before this many seconds from now


@dataclass
class StageResult:
    outcome: str
    target: int | None = None
    follow_ups: list[FollowUp] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class PipelineConfig:
    """The pipeline's knobs (from :class:`~shared.settings.Settings`), with their units."""

    season_months: tuple[int, ...] = (1, 2, 3)
    revisit_in_season_s: float = 24 * 3600
    revisit_off_season_s: float = 7 * 24 * 3600
    fetch_lease_s: float = 300
    stuck_after_s: float = 900
    sweep_batch: int = 500
    max_page_attempts: int = 5
    max_retry_delay_s: float = 600
    extra_allowed_domains: tuple[str, ...] = ()
    # one fetch stage works its host this long at most, then leaves a follow-up (fairness, shutdown)
    host_batch_s: float = 120.0
    # host ownership lapses this long after the owner last renewed it (a killed worker's hosts
    # are free again after this); renewed after every page
    host_claim_ttl_s: float = 30.0
    # how long a fetch sleeps for its host's turn (the fetcher's politeness_wait_s)
    politeness_wait_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> PipelineConfig:
        return cls(
            season_months=tuple(settings.season_months),
            revisit_in_season_s=settings.revisit_in_season_s,
            revisit_off_season_s=settings.revisit_off_season_s,
            fetch_lease_s=settings.fetch_lease_s,
            stuck_after_s=settings.stuck_after_s,
            sweep_batch=settings.sweep_batch,
            max_page_attempts=settings.max_page_attempts,
            max_retry_delay_s=settings.max_retry_delay_s,
            extra_allowed_domains=tuple(settings.extra_allowed_domains),
            host_batch_s=settings.fetch_batch_s,
            # longer than the longest sleep before a request plus a normal response
            host_claim_ttl_s=max(15.0, 2 * politeness_wait_s(settings) + settings.fetch_timeout_s),
            politeness_wait_s=politeness_wait_s(settings),
        )


def politeness_wait_s(settings: Settings) -> float:
    """How long a fetch sleeps for its host's turn before giving the page back for later: a few
    delays (the next page of the host it works) and at least a usual robots.txt Crawl-delay
    (a sleeping thread is cheaper than a message per page), never so long that a thread idles
    for minutes."""
    return min(10.0, max(5.0, 3 * settings.politeness_delay_s))


def revisit_interval_s(now: datetime, config: PipelineConfig) -> float:
    """Calendar-aware: daily in the reporting season (January–March by default), weekly otherwise."""
    return config.revisit_in_season_s if now.month in config.season_months else config.revisit_off_season_s


def next_visit(now: datetime, config: PipelineConfig) -> datetime:
    return now + timedelta(seconds=revisit_interval_s(now, config))


def retry_delay_s(error: TransientError, attempt: int, config: PipelineConfig) -> float:
    """What the server or the gate asked for, else exponential backoff with jitter; always capped
    far below the broker's visibility timeout (an ETA near it runs the task twice)."""
    if error.retry_after_s is not None:
        delay = error.retry_after_s
    else:
        delay = min(5.0 * 2 ** max(attempt - 1, 0), config.max_retry_delay_s) * random.uniform(0.8, 1.2)
    return float(min(max(delay, 0.05), config.max_retry_delay_s))


# --------------------------------------------------------------------------- ports


class FetchResultLike(Protocol):
    """What :class:`worker.crawler.http.FetchResult` offers the pipeline (read-only)."""

    @property
    def final_url(self) -> str: ...
    @property
    def status(self) -> int: ...
    @property
    def content(self) -> bytes: ...
    @property
    def content_type(self) -> str | None: ...
    @property
    def not_modified(self) -> bool: ...
    @property
    def etag(self) -> str | None: ...
    @property
    def last_modified(self) -> str | None: ...


class FetcherLike(Protocol):
    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        scope_domains: Iterable[str] = (),
    ) -> FetchResultLike: ...


class ArchiveLike(Protocol):
    def put(self, data: bytes) -> str: ...

    def get(self, key: str) -> bytes: ...


IngestFn = Callable[..., Any]
ReadFn = Callable[..., Any]


# --------------------------------------------------------------------------- discovery


def discover_site(session: Session, site_id: int, *, now: datetime, force: bool = False) -> StageResult:
    """Make sure the site's entry pages are known; enqueue the fetches that are due.

    Links are found when a listing page is fetched (:func:`fetch_page`), so every HTTP
    request is its own step with its own politeness, retries and lease."""
    site = session.get(Site, site_id)
    if site is None:
        return StageResult("missing_site", site_id)
    due = crawl_state.seed_site(session, site, now=now, force=force)
    # one fetch per host: it works the host's other due pages too
    first_per_host: dict[str, int] = {}
    for page_id, host in sorted(crawl_state.hosts_of_pages(session, due).items()):
        first_per_host.setdefault(host, page_id)
    session.commit()
    log.info("site_discovery_started", site_id=site_id, site=site.name, due_pages=len(due), force=force)
    follow_ups = [FollowUp("fetch", page_id) for page_id in sorted(first_per_host.values())]
    return StageResult("seeded", site_id, follow_ups, {"due": len(due)})


def discover_sites(session: Session, *, now: datetime, force: bool = False) -> StageResult:
    """Fan out: one discovery per registered site."""
    sites = crawl_state.list_sites(session)
    return StageResult(
        "fanned_out",
        None,
        [FollowUp("discover", s.id) for s in sites if s.id is not None],
        {"sites": len(sites), "force": force},
    )


def _scope_domains(page: Page, site: Site | None, config: PipelineConfig) -> list[str]:
    domains = list(site.domains) if site is not None and site.domains else [crawl_state.host_of(page.url)]
    return domains + list(config.extra_allowed_domains)


def links_on_page(
    content: bytes, content_type: str | None, base_url: str, *, domains: Sequence[str]
) -> tuple[list[PageSpec], list[PageSpec]]:
    """The report, attachment and listing links of a page: ``(in scope, out of scope)``."""
    from worker.crawler.discovery import decode_page, extract_links, in_scope

    inside: list[PageSpec] = []
    outside: list[PageSpec] = []
    for link in extract_links(decode_page(content, content_type), base_url):
        spec = PageSpec(url=link.url, kind=link.kind, title=link.text or None, year_hint=link.year)
        (inside if in_scope(link.url, domains) else outside).append(spec)
    return inside, outside


def _is_html(content_type: str | None, content: bytes) -> bool:
    if content_type and content_type.split(";")[0].strip().lower() in HTML_TYPES:
        return True
    head = content[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


# --------------------------------------------------------------------------- fetching


def fetch_page(
    session: Session,
    page_id: int,
    fetcher: FetcherLike,
    archive: ArchiveLike,
    *,
    now: datetime,
    config: PipelineConfig,
) -> StageResult:
    """One conditional GET of one page, then: listing → new links; report/attachment → ingest.

    The claim (a lease on the page in SQL) is committed before the request, so a second
    message for the same page does nothing while this one works, and a crash mid-fetch
    hands the page to the sweep once the lease runs out."""
    claim = crawl_state.claim_for_fetch(
        session, page_id, now=now, lease_s=config.fetch_lease_s, max_attempts=config.max_page_attempts
    )
    page = claim.page
    site = session.get(Site, page.site_id) if page is not None and page.site_id is not None else None
    # no transaction stays open across the request (on SQLite it would hold the write lock)
    session.commit()
    if claim.reason == "exhausted" and claim.page is not None:
        crawl_state.record_failure(
            session,
            page_id,
            now=now,
            state=FAILED,
            next_fetch_at=next_visit(now, config),
            error=f"gave up after {claim.page.attempts} attempts: {claim.page.last_error}",
        )
        session.commit()
        log.warning("page_abandoned", page_id=page_id, url=claim.page.url, attempts=claim.page.attempts)
        return StageResult("abandoned", page_id)
    if claim.page is None:
        log.debug("page_fetch_skipped", page_id=page_id, reason=claim.reason)
        return StageResult(f"skipped_{claim.reason}", page_id)
    page = claim.page
    have_copy = page.sha256 is not None
    try:
        result = fetcher.fetch(
            page.url,
            etag=page.etag if have_copy else None,
            last_modified=page.last_modified if have_copy else None,
            scope_domains=_scope_domains(page, site, config),
        )
    except PolitenessDeferred as exc:
        wait = retry_delay_s(exc, 1, config)
        crawl_state.give_back(session, page_id, until=now + timedelta(seconds=wait))
        session.commit()
        exc.retry_after_s = wait
        raise
    except TransientError as exc:
        wait = retry_delay_s(exc, page.attempts, config)
        crawl_state.record_retry(session, page_id, error=str(exc), until=now + timedelta(seconds=wait))
        session.commit()
        log.info(
            "page_fetch_deferred", page_id=page_id, url=page.url, error=exc.code, retry_in_s=round(wait, 2)
        )
        exc.retry_after_s = wait
        raise
    except PermanentError as exc:
        state = BLOCKED if isinstance(exc, BlockedBySite) else FAILED
        crawl_state.record_failure(
            session, page_id, now=now, state=state, error=str(exc), next_fetch_at=next_visit(now, config)
        )
        session.commit()
        log.warning(
            "page_rejected", page_id=page_id, url=page.url, state=state, error=exc.code, reason=exc.message
        )
        return StageResult(state, page_id, detail={"error": exc.code, "message": exc.message})

    revisit = next_visit(now, config)

    def unchanged(outcome: str, **log_fields: Any) -> StageResult:
        """A 304 or the very same bytes: nothing to ingest, note the validators and the revisit."""
        crawl_state.record_unchanged(
            session,
            page_id,
            now=now,
            next_fetch_at=revisit,
            etag=result.etag,
            last_modified=result.last_modified,
            keep_state=page.state == FAILED,
        )
        session.commit()
        log.info(f"page_{outcome}", page_id=page_id, url=page.url, **log_fields)
        return StageResult(outcome, page_id)

    if result.not_modified:
        return unchanged("not_modified")

    try:
        key = archive.put(result.content)
    except OSError as exc:
        # disk full, NFS gone, permissions: the archive's trouble, not this page's — retry later
        digest = hashlib.sha256(result.content).hexdigest()
        error = StoreUnavailable(
            f"archive write failed: {type(exc).__name__}: {exc}", source=page.url, sha256=digest
        )
        wait = retry_delay_s(error, page.attempts, config)
        crawl_state.record_retry(session, page_id, error=str(error), until=now + timedelta(seconds=wait))
        session.commit()
        log.warning(
            "archive_unavailable",
            page_id=page_id,
            url=page.url,
            sha256=digest,
            error=f"{type(exc).__name__}: {exc}",
            retry_in_s=round(wait, 2),
        )
        error.retry_after_s = wait
        raise error from exc
    if have_copy and key == page.sha256:
        return unchanged("unchanged", sha256=key)

    follow_ups: list[FollowUp] = []
    new_links = out_of_scope = 0
    if page.kind == LISTING or _is_html(result.content_type, result.content):
        inside, outside = links_on_page(
            result.content,
            result.content_type,
            result.final_url or page.url,
            domains=_scope_domains(page, site, config),
        )
        if page.kind != LISTING:
            # a report page only leads on to its attachments (the PDF behind "详见附件")
            inside = [spec for spec in inside if spec.kind == ATTACHMENT]
        new_ids = crawl_state.add_pages(session, site_id=page.site_id, pages=inside, now=now)
        # a report-looking link off the site's domains is recorded, never requested
        refused = [spec for spec in outside if spec.kind in (REPORT, ATTACHMENT)]
        crawl_state.add_pages(
            session,
            site_id=page.site_id,
            pages=refused,
            now=now,
            state=FAILED,
            error="fetch_rejected: outside the crawl scope (not the site's domains)",
        )
        new_links, out_of_scope = len(new_ids), len(outside)
        follow_ups += [FollowUp("fetch", i) for i in new_ids]
    state = PARSED if page.kind == LISTING else FETCHED
    crawl_state.record_fetched(
        session,
        page_id,
        now=now,
        sha256=key,
        content_type=result.content_type,
        etag=result.etag,
        last_modified=result.last_modified,
        next_fetch_at=revisit,
        state=state,
    )
    session.commit()
    if state == FETCHED:
        follow_ups.append(FollowUp("ingest", page_id))
    log.info(
        "page_archived",
        page_id=page_id,
        url=page.url,
        kind=page.kind,
        status=result.status,
        sha256=key,
        size=len(result.content),
        new_links=new_links,
        out_of_scope=out_of_scope,
    )
    return StageResult("fetched", page_id, follow_ups, {"new_links": new_links, "kind": page.kind})


def fetch_host(
    session: Session,
    page_id: int,
    fetcher: FetcherLike,
    archive: ArchiveLike,
    hosts: HostOwnership,
    *,
    clock: Callable[[], datetime],
    config: PipelineConfig,
    emit: Callable[[FollowUp], None] | None = None,
    on_page: Callable[[StageResult], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> StageResult:
    """Work the host of page ``page_id``: that page, then the host's other due pages (listings
    first), one :func:`fetch_page` after another, while we own the host and for at most
    ``config.host_batch_s``.

    The fetcher sleeps for the host's turn between pages (the politeness gate still decides
    every request). ``emit`` gets follow-ups as they arise — ingests at once, and one fetch per
    *other* host that got new links; the result's follow-ups are what is left for later: at
    most one fetch of this host, delayed until its next page is due (a retry, Retry-After).
    ``on_page`` sees each page's :func:`fetch_page` result (progress output)."""
    page = session.get(Page, page_id)
    host = page.host if page is not None else None
    session.rollback()  # no transaction stays open across a request
    if host is None:
        return StageResult("skipped_missing", page_id)
    token = hosts.claim_host(host, ttl_s=config.host_claim_ttl_s)
    if token is None:
        # someone works this host: their loop takes this page too (and looks again when done)
        log.debug("host_busy", page_id=page_id, host=host)
        return StageResult("host_busy", page_id)
    started = time.monotonic()
    later: list[FollowUp] = []

    def send(follow_up: FollowUp) -> None:
        (emit or later.append)(follow_up)

    outcomes: dict[str, int] = {}
    tried: list[int] = []
    deferred: tuple[int, float] | None = None
    stopped = "done"
    current: int | None = page_id
    try:
        while current is not None:
            tried.append(current)
            # the host's turn first, then the claim: a claim counts an attempt, and a worker killed
            # while sleeping for politeness must not use up the page's attempts
            wait_s = hosts.wait_for_turn(host, max_wait_s=config.politeness_wait_s)
            if wait_s > 0:
                deferred = (current, wait_s)
                stopped = "deferred"
                break
            try:
                result = fetch_page(session, current, fetcher, archive, now=clock(), config=config)
            except PolitenessDeferred as exc:
                # a wait longer than the fetcher sleeps for: Retry-After, backoff, an open circuit
                deferred = (current, exc.retry_after_s or config.max_retry_delay_s)
                stopped = "deferred"
                break
            except StoreUnavailable:
                raise  # our store or archive, not the host: the whole stage is retried
            except TransientError as exc:
                # recorded on the page with its retry time; the gate has backed the host off
                outcomes[exc.code] = outcomes.get(exc.code, 0) + 1
            except (XxgkError, sqlalchemy.exc.SQLAlchemyError):
                raise  # store trouble is run_stage's to map (a retry), not this page's fault
            except Exception as exc:
                # a bug on one page must not stop its host: record it there and go on
                session.rollback()
                _record_page_crash(session, current, exc, now=clock(), config=config)
                outcomes["crashed"] = outcomes.get("crashed", 0) + 1
            else:
                outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
                _route_follow_ups(session, result.follow_ups, send, host)
                if on_page is not None:
                    on_page(result)
            if should_stop():
                stopped = "shutdown"
                break
            if time.monotonic() - started >= config.host_batch_s:
                stopped = "budget"
                break
            if not hosts.renew_host(host, token, ttl_s=config.host_claim_ttl_s):
                stopped = "ownership_lapsed"  # a slow request outlived the claim; the new owner goes on
                token = None
                break
            current = crawl_state.next_due_page_id(session, host=host, now=clock(), skip=tried)
            session.rollback()
    finally:
        if token is not None:
            hosts.release_host(host, token)
    # also after a lapse: if the new owner is at work, this message finds the host busy; if a
    # slow request outlived the claim and nobody took over, it carries on
    continuation = _continuation(session, host, clock(), config, deferred)
    session.rollback()
    if continuation is not None:
        later.append(continuation)
    log.info(
        "host_worked",
        host=host,
        pages=len(tried),
        outcomes=outcomes,
        stopped=stopped,
        seconds=round(time.monotonic() - started, 2),
        next_in_s=round(later[-1].delay_s, 2) if later and later[-1].stage == "fetch" else None,
    )
    return StageResult(stopped, page_id, later, {"pages": len(tried), "outcomes": outcomes, "host": host})


def _route_follow_ups(
    session: Session, follow_ups: list[FollowUp], send: Callable[[FollowUp], None], host: str
) -> None:
    """Ingests go out at once; new pages of the host being worked are this batch's own work, and
    of every other host one page is enough to set its owner going. (Per page fetched, not per
    batch: that host's owner may have finished since it was last told.)"""
    new_pages = [f.target for f in follow_ups if f.stage == "fetch" and f.target is not None]
    hosts_of = crawl_state.hosts_of_pages(session, new_pages) if new_pages else {}
    session.rollback()  # on SQLite even a read holds the write lock; sending may take a while
    told_hosts = {host}
    for follow_up in follow_ups:
        if follow_up.stage == "fetch" and follow_up.target is not None:
            page_host = hosts_of.get(follow_up.target)
            if page_host is None or page_host in told_hosts:
                continue
            told_hosts.add(page_host)
        send(follow_up)


def _continuation(
    session: Session, host: str, now: datetime, config: PipelineConfig, deferred: tuple[int, float] | None
) -> FollowUp | None:
    """The one follow-up a finished batch leaves for its host. Looked up *after* the host was
    handed back, so a page whose message found the host busy a moment ago is not stranded.
    (``deferred`` waits are already capped at ``max_retry_delay_s`` by :func:`retry_delay_s`.)"""
    if deferred is not None:
        page_id, wait_s = deferred
        wait_s = min(wait_s, config.max_retry_delay_s)
        crawl_state.defer_host(session, host=host, now=now, until=now + timedelta(seconds=wait_s))
        session.commit()
        return FollowUp("fetch", page_id, delay_s=wait_s)
    due = crawl_state.next_due_page_id(session, host=host, now=now)
    if due is not None:
        return FollowUp("fetch", due)
    soon = crawl_state.soonest_pending(session, host=host, now=now, within_s=config.max_retry_delay_s)
    return None if soon is None else FollowUp("fetch", soon[0], delay_s=soon[1])


# --------------------------------------------------------------------------- ingesting


def ingest_page(
    session: Session,
    page_id: int,
    archive: ArchiveLike,
    *,
    today: date,
    now: datetime,
    read: ReadFn | None = None,
    ingest: IngestFn | None = None,
    max_attempts: int = 5,
) -> StageResult:
    """Parse, check and store a fetched page's archived bytes; events go to the outbox.

    Idempotent twice over: only a page in ``fetched`` is ingested, and the store's ingest
    is keyed by (source, sha256), so a duplicate message finds ``unchanged``."""
    page, verdict = crawl_state.begin_ingest(session, page_id, max_attempts=max_attempts)
    session.commit()  # the attempt counts even if the parse takes the worker down
    if page is None or page.sha256 is None:
        return StageResult("skipped", page_id)
    if verdict == "exhausted":
        crawl_state.record_ingested(
            session,
            page_id,
            now=now,
            state=FAILED,
            error=f"quarantined: {page.attempts} ingest attempts never finished",
        )
        session.commit()
        log.error(
            "page_quarantined", page_id=page_id, url=page.url, sha256=page.sha256, attempts=page.attempts
        )
        return StageResult("quarantined", page_id)
    try:
        data = archive.get(page.sha256)
    except (FileNotFoundError, KeyError):
        # the archive lost the bytes (another machine's disk?): fetch again
        crawl_state.record_failure(
            session,
            page_id,
            now=now,
            state=FAILED,
            next_fetch_at=now,
            error=f"archived copy {page.sha256[:12]}… is missing; refetching",
        )
        session.commit()
        return StageResult("refetch", page_id, [FollowUp("fetch", page_id)])
    except OSError as exc:
        # the archive is there but unreadable right now (NFS down, EIO): retry, keep the page
        log.warning(
            "archive_unavailable", page_id=page_id, url=page.url, sha256=page.sha256, error=type(exc).__name__
        )
        raise StoreUnavailable(
            f"archive read failed: {type(exc).__name__}: {exc}", source=page.url, sha256=page.sha256
        ) from exc
    site = session.get(Site, page.site_id) if page.site_id is not None else None
    # the store's ingest parses outside any transaction and commits its own: hand it a clean session
    session.commit()
    if ingest is None:
        from shared.store.ingest import ingest_document

        ingest = ingest_document
    kwargs: dict[str, Any] = {}
    if read is not None:
        kwargs["read"] = read
    result = ingest(
        session,
        data,
        url=page.url,
        content_type=page.content_type,
        fetched_at=page.fetched_at,
        etag=page.etag,
        last_modified=page.last_modified,
        archive_key=page.sha256,
        site_name=site.name if site is not None else None,
        today=today,
        **kwargs,
    )
    # IngestResult: status new | unchanged | revised | failed, error = XxgkError.as_dict()
    error_text = f"{result.error.get('error')}: {result.error.get('message')}" if result.error else None
    state = FAILED if result.status == "failed" else PARSED
    crawl_state.record_ingested(session, page_id, now=now, state=state, error=error_text)
    session.commit()
    event_ids = list(result.event_ids)
    log.info(
        "page_ingested",
        page_id=page_id,
        url=page.url,
        outcome=result.status,
        report_id=result.report_id,
        events=len(event_ids),
    )
    follow_ups = [FollowUp("alerts")] if event_ids else []
    return StageResult(
        result.status, page_id, follow_ups, {"events": len(event_ids), "report_id": result.report_id}
    )


# --------------------------------------------------------------------------- the sweep


def sweep_stuck(session: Session, *, now: datetime, config: PipelineConfig) -> StageResult:
    """Find what no message carries any more and hand it out again (beat runs this).

    Covers every loss Celery cannot: a worker killed mid-task (its lease expires), a
    message lost with a Redis restart, a publish that failed after commit, a task acked
    after an error. Also dispatches the revisits that have come due. One fetch per host: the
    fetch stage works all of a host's due pages."""
    stale = now - timedelta(seconds=config.stuck_after_s)
    fetch_ids = crawl_state.due_pages_by_host(session, now=now, stale_before=stale, limit=config.sweep_batch)
    ingest_ids = crawl_state.stuck_fetched_page_ids(session, stale_before=stale, limit=config.sweep_batch)
    session.rollback()  # read-only
    if fetch_ids or ingest_ids:
        log.info("pages_swept", fetch=len(fetch_ids), ingest=len(ingest_ids))
    return StageResult(
        "swept",
        None,
        [FollowUp("fetch", i) for i in fetch_ids] + [FollowUp("ingest", i) for i in ingest_ids],
        {"fetch": len(fetch_ids), "ingest": len(ingest_ids)},
    )


def check_missing(session: Session, *, today: date, check: Callable[..., Any] | None = None) -> StageResult:
    """``missing_report`` for every tracked agency past its deadline (the store's check)."""
    if check is None:
        from shared.store.missing import check_missing_reports

        check = check_missing_reports
    # a site behind an anti-bot wall (or robots.txt) says nothing about its reports
    blocked = crawl_state.blocked_site_ids(session)
    event_ids = list(check(session, today=today, skip_site_ids=blocked))  # the ids of the events added
    session.commit()
    log.info(
        "missing_reports_checked",
        today=today.isoformat(),
        events=len(event_ids),
        skipped_blocked_sites=len(blocked),
    )
    return StageResult("checked", None, [FollowUp("alerts")] if event_ids else [], {"events": len(event_ids)})


# --------------------------------------------------------------------------- running one stage


@dataclass
class PipelineResources:
    """What the stages need, built once per process by whoever drives them.

    ``fetcher``/``hosts``/``relay``/``check`` may be factories' products built lazily (a parse
    worker never needs a fetcher). ``should_stop`` turns true when the process is shutting
    down: a fetch batch then stops after its current page."""

    session_factory: Callable[[], Session]
    archive: ArchiveLike
    config: PipelineConfig
    fetcher_factory: Callable[[], FetcherLike] | None = None
    hosts_factory: Callable[[], HostOwnership] | None = None
    today: Callable[[], date] = beijing_today
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    read: ReadFn | None = None
    ingest: IngestFn | None = None  # default: shared.store.ingest.ingest_document
    relay: Callable[[], Any] | None = None
    check: Callable[..., Any] | None = None
    should_stop: Callable[[], bool] = lambda: False
    _fetcher: FetcherLike | None = field(default=None, repr=False)
    _hosts: HostOwnership | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def fetcher(self) -> FetcherLike:
        with self._lock:
            if self._fetcher is None:
                if self.fetcher_factory is None:
                    raise RuntimeError("this process has no fetcher configured")
                self._fetcher = self.fetcher_factory()
            return self._fetcher

    @property
    def hosts(self) -> HostOwnership:
        """Who works which host; without a factory, this process is the only fetcher."""
        with self._lock:
            if self._hosts is None:
                if self.hosts_factory is not None:
                    self._hosts = self.hosts_factory()
                else:
                    from worker.crawler.politeness import LocalPolitenessGate

                    self._hosts = LocalPolitenessGate()
            return self._hosts


def build_resources(
    settings: Settings,
    *,
    gate: Any | None = None,
    politeness_wait: float | None = None,
    session_factory: Callable[[], Session] | None = None,
) -> PipelineResources:
    """Wire the real adapters from settings: the store, the archive, the sandboxed reader, and a
    fetcher (built on first use) whose politeness gate — also the host ownership — is
    Redis-backed unless ``gate`` is given (the embedded mode passes a
    :class:`~worker.crawler.politeness.LocalPolitenessGate`). ``politeness_wait``: how long a
    fetch sleeps for its host's turn (default :func:`politeness_wait_s`)."""
    from functools import partial

    from shared.extract import ExtractLimits
    from shared.store.engine import open_store
    from worker.crawler.archive import ArchiveStore
    from worker.sandbox import read_report_sandboxed

    if session_factory is None:
        _engine, session_factory = open_store(settings.database_url)
    wait_s = politeness_wait_s(settings) if politeness_wait is None else politeness_wait
    gates: list[Any] = [] if gate is None else [gate]
    gate_lock = threading.Lock()

    def make_gate() -> Any:
        with gate_lock:
            if not gates:
                if not settings.redis_url:
                    raise RuntimeError("no politeness gate: set XXGK_REDIS_URL or pass a local gate")
                import redis

                from worker.crawler.politeness import RedisPolitenessGate

                client = redis.Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=5)
                # a lease outlives the longest legitimate exchange (the fetcher's deadline is 5×
                # the timeout), and no longer: a killed worker blocks its host only this long
                gates.append(
                    RedisPolitenessGate(
                        client,
                        delay_s=settings.politeness_delay_s,
                        lease_ttl_s=6 * settings.fetch_timeout_s,
                        owner_key_prefix=settings.broker_key_prefix,
                    )
                )
            return gates[0]

    def make_fetcher() -> FetcherLike:
        from worker.crawler.http import build_fetcher
        from worker.crawler.politeness import RedisPolitenessGate
        from worker.crawler.robots import RedisRobotsStore

        politeness = make_gate()
        # with Redis, robots.txt is asked once per site for every worker, not once per process
        robots_store = (
            RedisRobotsStore(politeness.redis) if isinstance(politeness, RedisPolitenessGate) else None
        )
        return build_fetcher(settings, politeness, politeness_wait_s=wait_s, robots_store=robots_store)

    return PipelineResources(
        session_factory=session_factory,
        archive=ArchiveStore(settings.archive_dir),
        config=replace(PipelineConfig.from_settings(settings), politeness_wait_s=wait_s),
        fetcher_factory=make_fetcher,
        hosts_factory=make_gate,
        read=partial(read_report_sandboxed, limits=ExtractLimits.from_settings(settings)),
        relay=make_relay(settings, session_factory),
    )


def make_relay(settings: Settings, session_factory: Callable[[], Session]) -> Callable[[], Any]:
    """One pass of the outbox relay (:func:`worker.alerts.relay.relay_once`): to the Redis stream
    when there is one, and to the configured webhooks. Clients are made on first use."""
    clients: dict[str, Any] = {}
    lock = threading.Lock()

    def relay_pass() -> Any:
        from worker.alerts.relay import RelayConfig, relay_once
        from worker.alerts.webhooks import build_webhook_sink

        with lock:
            if not clients:
                import redis

                clients["redis"] = redis.Redis.from_url(settings.redis_url) if settings.redis_url else None
                clients["sink"] = build_webhook_sink(settings)
        return relay_once(
            session_factory, clients["redis"], clients["sink"], config=RelayConfig.from_settings(settings)
        )

    return relay_pass


STAGES: tuple[str, ...] = ("discover", "discover_all", "fetch", "ingest", "sweep", "check_missing", "alerts")


def run_stage(
    resources: PipelineResources,
    stage: str,
    target: int | None = None,
    *,
    force: bool = False,
    emit: Callable[[FollowUp], None] | None = None,
    on_page: Callable[[StageResult], None] | None = None,
) -> StageResult:
    """Run one stage in its own session. Store outages and write conflicts become
    :class:`~shared.errors.TransientError` (retry); any other exception is a bug and propagates.
    ``emit``: where a long stage (a fetch batch) sends follow-ups as soon as they arise;
    ``on_page``: sees each page a fetch batch fetched."""

    now = resources.clock()
    if stage == "alerts":
        outcome = resources.relay() if resources.relay is not None else None
        return StageResult("relayed", None, detail={"outcome": outcome})
    with resources.session_factory() as session:
        try:
            if stage == "discover" and target is not None:
                return discover_site(session, target, now=now, force=force)
            if stage == "discover_all":
                return discover_sites(session, now=now, force=force)
            if stage == "fetch" and target is not None:
                return fetch_host(
                    session,
                    target,
                    resources.fetcher,
                    resources.archive,
                    resources.hosts,
                    clock=resources.clock,
                    config=resources.config,
                    emit=emit,
                    on_page=on_page,
                    should_stop=resources.should_stop,
                )
            if stage == "ingest" and target is not None:
                return ingest_page(
                    session,
                    target,
                    resources.archive,
                    today=resources.today(),
                    now=now,
                    read=resources.read,
                    ingest=resources.ingest,
                    max_attempts=resources.config.max_page_attempts,
                )
            if stage == "sweep":
                return sweep_stuck(session, now=now, config=resources.config)
            if stage == "check_missing":
                return check_missing(session, today=resources.today(), check=resources.check)
        except XxgkError:
            session.rollback()
            raise
        except sqlalchemy.exc.IntegrityError as exc:
            # a duplicate execution raced us to a unique key: the retry finds the work done
            session.rollback()
            raise TransientError(
                f"write conflict in {stage}: {exc.orig.__class__.__name__}", retry_after_s=1.0
            ) from exc
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
            session.rollback()
            raise StoreUnavailable(f"store unavailable in {stage}: {exc.orig.__class__.__name__}") from exc
    raise ValueError(f"unknown stage {stage!r} (target {target!r})")


def record_crash(resources: PipelineResources, stage: str, target: int | None, exc: BaseException) -> None:
    """An unexpected exception in a page's stage: the page becomes ``failed`` with the exception
    type in ``last_error`` (revisited as usual), and the crash is logged with its url and sha256.

    Never raises: this runs where the alternative is a dead worker thread."""
    if stage not in ("fetch", "ingest") or target is None:
        error = f"internal_error: {type(exc).__name__}: {exc}"
        log.error("stage_crashed", stage=stage, target=target, error=error, exc_info=exc)
        return
    try:
        with resources.session_factory() as session:
            now, config = resources.clock(), resources.config
            _record_page_crash(session, target, exc, now=now, config=config, stage=stage)
    except Exception as record_exc:
        log.error("stage_crash_unrecorded", stage=stage, target=target, error=repr(record_exc), exc_info=exc)


def _record_page_crash(
    session: Session,
    page_id: int,
    exc: BaseException,
    *,
    now: datetime,
    config: PipelineConfig,
    stage: str = "fetch",
) -> None:
    error = f"internal_error: {type(exc).__name__}: {exc}"
    url = sha256 = None
    try:
        page = session.get(Page, page_id)
        if page is not None:
            url, sha256 = page.url, page.sha256
            crawl_state.record_failure(
                session, page_id, now=now, state=FAILED, error=error, next_fetch_at=next_visit(now, config)
            )
            session.commit()
    except Exception as record_exc:
        session.rollback()
        log.error("stage_crash_unrecorded", stage=stage, target=page_id, error=repr(record_exc))
    log.error("stage_crashed", stage=stage, target=page_id, url=url, sha256=sha256, error=error, exc_info=exc)


# --------------------------------------------------------------------------- in-process driver


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    follow_up: FollowUp = field(compare=False)
    retries: int = field(default=0, compare=False)


@dataclass
class RunStats:
    """What an in-process run did, stage by stage (for progress output and tests)."""

    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    retries: int = 0
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, stage: str, outcome: str) -> None:
        with self._lock:  # the driver's threads all count here
            by_stage = self.outcomes.setdefault(stage, {})
            by_stage[outcome] = by_stage.get(outcome, 0) + 1

    def get(self, stage: str, outcome: str) -> int:
        return self.outcomes.get(stage, {}).get(outcome, 0)


class InProcessPipeline:
    """Runs the pipeline's stages on a few threads in this process — the embedded mode.

    The same :func:`run_stage` the Celery tasks call, fed from a local priority queue instead
    of Redis; a transient error re-queues the job after the delay the stage names (politeness
    waits included), a bounded number of times. ``on_result`` sees every finished stage
    (progress output)."""

    def __init__(
        self,
        resources: PipelineResources,
        *,
        workers: int = 8,
        max_retries: int = 50,
        force: bool = False,
        on_result: Callable[[str, StageResult], None] | None = None,
    ) -> None:
        self.resources = resources
        self.workers = workers
        self.max_retries = max_retries
        self.force = force
        self.on_result = on_result
        self.stats = RunStats()
        self._queue: list[_Job] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._busy = 0
        self._alerts_queued = False

    def submit(self, follow_ups: Iterable[FollowUp], *, delay_s: float = 0.0, retries: int = 0) -> None:
        with self._cond:
            for follow_up in follow_ups:
                if follow_up.stage == "alerts":
                    if self._alerts_queued:
                        continue  # one relay pass covers every event written before it runs
                    self._alerts_queued = True
                due = time.monotonic() + max(delay_s, follow_up.delay_s)
                heapq.heappush(self._queue, _Job(due, next(self._seq), follow_up, retries))
            self._cond.notify_all()

    def run(self, *, timeout_s: float | None = None) -> RunStats:
        """Work until nothing is queued or running (or ``timeout_s`` passes)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        threads = [
            threading.Thread(target=self._work, args=(deadline,), name=f"pipeline-{n}", daemon=True)
            for n in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return self.stats

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._busy

    def _next_job(self, deadline: float | None) -> _Job | None:
        with self._cond:
            while True:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    self._cond.notify_all()
                    return None
                if self._queue and self._queue[0].due <= now:
                    self._busy += 1
                    job = heapq.heappop(self._queue)
                    if job.follow_up.stage == "alerts":
                        self._alerts_queued = False
                    return job
                if not self._queue and self._busy == 0:
                    self._cond.notify_all()
                    return None
                wait = (self._queue[0].due - now) if self._queue else 0.5
                if deadline is not None:
                    wait = min(wait, deadline - now)
                self._cond.wait(timeout=max(wait, 0.001))

    def _work(self, deadline: float | None) -> None:
        while (job := self._next_job(deadline)) is not None:
            try:
                self._run_job(job)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _run_job(self, job: _Job) -> None:
        stage, target = job.follow_up.stage, job.follow_up.target
        try:
            result = run_stage(
                self.resources,
                stage,
                target,
                force=self.force,
                emit=lambda follow_up: self.submit([follow_up]),
                on_page=self._page_fetched,
            )
        except TransientError as exc:
            self.stats.retries += 1
            if job.retries >= self.max_retries:
                self.stats.errors.append(f"{stage} {target}: gave up: {exc}")
                self.stats.count(stage, "gave_up")
                return
            delay = exc.retry_after_s if exc.retry_after_s is not None else 0.5 * 2 ** min(job.retries, 5)
            self.submit([job.follow_up], delay_s=delay, retries=job.retries + 1)
            return
        except XxgkError as exc:
            self.stats.errors.append(f"{stage} {target}: {exc}")
            self.stats.count(stage, "error")
            return
        except Exception as exc:
            # a bug in one stage must not kill this worker thread: the queue would be left with
            # jobs nobody runs while `xxgk crawl` reports done. Record it on the page and go on.
            self.stats.errors.append(f"{stage} {target}: internal_error: {type(exc).__name__}: {exc}")
            self.stats.count(stage, "crashed")
            record_crash(self.resources, stage, target, exc)
            return
        if stage == "fetch":
            # the pages were counted one by one (_page_fetched); this was the host's batch
            stage = "host"
        self.stats.count(stage, result.outcome)
        if self.on_result is not None:
            self.on_result(stage, result)
        self.submit(result.follow_ups)

    def _page_fetched(self, result: StageResult) -> None:
        self.stats.count("fetch", result.outcome)
        if self.on_result is not None:
            self.on_result("fetch", result)


__all__ = [
    "STAGES",
    "FollowUp",
    "InProcessPipeline",
    "PipelineConfig",
    "PipelineResources",
    "RunStats",
    "StageResult",
    "check_missing",
    "discover_site",
    "discover_sites",
    "fetch_host",
    "fetch_page",
    "ingest_page",
    "next_visit",
    "revisit_interval_s",
    "run_stage",
    "sweep_stuck",
]
