"""Repository functions over the ``sites`` and ``pages`` tables: the crawl frontier in SQL.

The SQL store, not Redis, is the source of truth for every URL (reliability.md §1.7):
Celery messages carry page ids only, and anything a lost message leaves behind is found
again here by :func:`due_pages_by_host` / :func:`stuck_fetched_page_ids` (the sweep).

A page's life::

    discovered ──fetch──► fetched ──ingest──► parsed | failed
        │  ▲                 (listing pages: links extracted, then parsed)
        │  └── revisit when next_fetch_at passes (calendar-aware interval) ──┐
        ├──► not_modified (304, or the same bytes again) ──────────────────┤
        ├──► failed  (4xx, SSRF guard, out of scope, too many attempts) ───┤
        └──► blocked (anti-bot page, robots.txt) ──────────────────────────┘

``next_fetch_at`` doubles as the fetch lease: :func:`claim_for_fetch` succeeds only while
it is unset or past, and pushes it ``lease_s`` ahead, so two workers holding a message for
the same page never fetch it twice, and a worker killed mid-fetch gives the page back
when the lease runs out. Every write is a guarded ``UPDATE``/``INSERT … ON CONFLICT DO
NOTHING``: running any step twice is harmless.

Nothing here reads the clock: ``now`` is passed in (aware UTC).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult
from sqlmodel import Session, col, select

from shared.store.models import Page, Site

LISTING, REPORT, ATTACHMENT = "listing", "report", "attachment"
DISCOVERED, FETCHED, PARSED, FAILED, BLOCKED, NOT_MODIFIED = (
    "discovered",
    "fetched",
    "parsed",
    "failed",
    "blocked",
    "not_modified",
)
# a page in one of these states has nothing pending and is only revisited when due
AT_REST = (PARSED, FAILED, BLOCKED, NOT_MODIFIED)
ERROR_TEXT_MAX = 500


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


# --------------------------------------------------------------------------- sites


@dataclass(frozen=True)
class SiteSpec:
    """One entry of a site registry file (``xxgk sites import``)."""

    name: str
    entry_urls: tuple[str, ...]
    agency: str | None = None
    level: str | None = None
    region_code: str | None = None
    domains: tuple[str, ...] = ()

    @property
    def scope_domains(self) -> tuple[str, ...]:
        """The declared domains, else the hosts of the entry URLs."""
        if self.domains:
            return tuple(d.strip().lower().rstrip(".") for d in self.domains)
        return tuple(dict.fromkeys(host_of(u) for u in self.entry_urls if host_of(u)))


def upsert_site(
    session: Session, spec: SiteSpec, *, agency_id: int | None = None, now: datetime | None = None
) -> tuple[Site, bool]:
    """Create the site, or update it in place (same ``name``). Returns ``(site, created)``.

    ``now`` is the registration time of a new site (tracking for missing_report starts
    from it); default: the store's clock."""
    site = session.exec(select(Site).where(Site.name == spec.name)).first()
    created = site is None
    if site is None:
        site = Site(name=spec.name) if now is None else Site(name=spec.name, created_at=now)
    site.agency_name = spec.agency or spec.name
    site.agency_id = agency_id if agency_id is not None else site.agency_id
    site.level = spec.level
    site.region_code = spec.region_code
    site.entry_urls = list(spec.entry_urls)
    site.domains = list(spec.scope_domains)
    session.add(site)
    session.flush()
    return site, created


def list_sites(session: Session) -> list[Site]:
    return list(session.exec(select(Site).order_by(Site.name)))


def find_site(session: Session, name_or_id: str | int) -> Site | None:
    if isinstance(name_or_id, int) or str(name_or_id).isdigit():
        by_id = session.get(Site, int(name_or_id))
        if by_id is not None:
            return by_id
    return session.exec(select(Site).where(Site.name == str(name_or_id))).first()


# --------------------------------------------------------------------------- pages: discovery


@dataclass(frozen=True)
class PageSpec:
    url: str
    kind: str
    title: str | None = None
    year_hint: int | None = None


# the dialects whose INSERT has ON CONFLICT DO NOTHING … RETURNING (PostgreSQL ≥ 9.5, SQLite ≥ 3.35)
INSERTS: dict[str, Callable[..., Any]] = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}


def _insert_ignore(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """``INSERT … ON CONFLICT (url) DO NOTHING RETURNING id``: ids of the rows really inserted."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    insert = INSERTS.get(dialect)
    if insert is None:  # pragma: no cover - the store supports these two
        raise NotImplementedError(dialect)
    statement = (
        insert(Page).values(rows).on_conflict_do_nothing(index_elements=["url"]).returning(col(Page.id))
    )
    return [int(row[0]) for row in session.execute(statement)]


def add_pages(
    session: Session,
    *,
    site_id: int | None,
    pages: Iterable[PageSpec],
    now: datetime,
    state: str = DISCOVERED,
    error: str | None = None,
) -> list[int]:
    """Record newly found URLs as ``discovered``; URLs already known are left as they are.

    Returns the ids of the pages that are new (the caller enqueues their fetch). Links that
    are refused without a request (out of scope) are recorded with ``state=FAILED`` and the
    ``error``, so a report hosted off-scope is visible rather than silently dropped."""
    rows: dict[str, dict[str, Any]] = {}
    for spec in pages:
        if spec.url in rows:
            continue
        rows[spec.url] = {
            "url": spec.url,
            "host": host_of(spec.url),
            "site_id": site_id,
            "kind": spec.kind,
            "title": (spec.title or None) and spec.title[:500],
            "year_hint": spec.year_hint,
            "state": state,
            "attempts": 0,
            "next_fetch_at": None,
            "last_error": error,
            "state_changed_at": now,
            "created_at": now,
        }
    return _insert_ignore(session, list(rows.values()))


def seed_site(session: Session, site: Site, *, now: datetime, force: bool = False) -> list[int]:
    """Make sure the site's entry URLs are known listing pages; return the ids to fetch now.

    New entry pages are always due. With ``force`` every page of the site is made due now
    (``xxgk crawl --site``): its lists, reports and attachments are revisited — with
    conditional GETs, so unchanged pages cost a 304."""
    assert site.id is not None
    new_ids = add_pages(
        session, site_id=site.id, now=now, pages=[PageSpec(url=url, kind=LISTING) for url in site.entry_urls]
    )
    if not force:
        return new_ids
    session.execute(
        sa.update(Page)
        .where(col(Page.site_id) == site.id, col(Page.state) != FETCHED)
        .where(sa.or_(col(Page.next_fetch_at).is_(None), col(Page.next_fetch_at) > now))
        .values(next_fetch_at=now)
    )
    due = session.exec(
        select(col(Page.id)).where(col(Page.site_id) == site.id, col(Page.state) != FETCHED)
    ).all()
    return sorted({*new_ids, *(int(i) for i in due if i is not None)})


# --------------------------------------------------------------------------- pages: fetching


@dataclass(frozen=True)
class Claim:
    """The outcome of :func:`claim_for_fetch`: the page when ours (or when its attempts are
    ``exhausted``, so the caller can record that), else why not."""

    page: Page | None
    reason: str = "claimed"  # claimed | missing | not_due | leased | pending_ingest | exhausted
    retry_after_s: float | None = None


def claim_for_fetch(
    session: Session, page_id: int, *, now: datetime, lease_s: float, max_attempts: int
) -> Claim:
    """Take the page for one fetch: a guarded UPDATE, so exactly one concurrent caller wins."""
    result = cast(
        "CursorResult[Any]",
        session.execute(
            sa.update(Page)
            .where(col(Page.id) == page_id, col(Page.state) != FETCHED, col(Page.attempts) < max_attempts)
            .where(sa.or_(col(Page.next_fetch_at).is_(None), col(Page.next_fetch_at) <= now))
            .values(next_fetch_at=now + timedelta(seconds=lease_s), attempts=col(Page.attempts) + 1)
            .execution_options(synchronize_session=False)
        ),
    )
    page = session.get(Page, page_id, populate_existing=True)
    if result.rowcount == 1 and page is not None:
        return Claim(page)
    if page is None:
        return Claim(None, "missing")
    if page.state == FETCHED:
        return Claim(None, "pending_ingest")
    if page.attempts >= max_attempts:
        return Claim(page, "exhausted")
    remaining = (page.next_fetch_at - now).total_seconds() if page.next_fetch_at else 0.0
    # a lease is never longer than lease_s; anything further out is a scheduled revisit
    if remaining > lease_s:
        return Claim(None, "not_due", retry_after_s=remaining)
    return Claim(None, "leased", retry_after_s=max(remaining, 0.0))


def give_back(session: Session, page_id: int, *, until: datetime) -> None:
    """Undo a claim that did no work (politeness said "not yet"): the attempt does not count."""
    session.execute(
        sa.update(Page)
        .where(col(Page.id) == page_id)
        .values(
            next_fetch_at=until, attempts=sa.case((col(Page.attempts) > 0, col(Page.attempts) - 1), else_=0)
        )
        .execution_options(synchronize_session=False)
    )


def _transition(session: Session, page_id: int, *, now: datetime, **values: Any) -> None:
    state = values.get("state")
    if state is not None:
        values["state_changed_at"] = now
    session.execute(
        sa.update(Page)
        .where(col(Page.id) == page_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def record_fetched(
    session: Session,
    page_id: int,
    *,
    now: datetime,
    sha256: str,
    content_type: str | None,
    etag: str | None,
    last_modified: str | None,
    next_fetch_at: datetime,
    state: str = FETCHED,
) -> None:
    """New bytes were archived: ``fetched`` (awaiting ingest), or ``parsed`` for a listing."""
    _transition(
        session,
        page_id,
        now=now,
        state=state,
        sha256=sha256,
        content_type=content_type,
        etag=etag,
        last_modified=last_modified,
        fetched_at=now,
        next_fetch_at=next_fetch_at,
        attempts=0,
        last_error=None,
    )


def record_unchanged(
    session: Session,
    page_id: int,
    *,
    now: datetime,
    next_fetch_at: datetime,
    etag: str | None = None,
    last_modified: str | None = None,
    keep_state: bool = False,
) -> None:
    """A 304, or the same bytes as last time: nothing to ingest.

    ``keep_state``: the page is ``failed`` because its content could not be ingested (not a
    report, unreadable); the same content fails the same way, so it stays ``failed`` with
    its reason. (A fetch failure forgets the copy, so it never comes back as a 304.)"""
    values: dict[str, Any] = {"fetched_at": now, "next_fetch_at": next_fetch_at, "attempts": 0}
    if not keep_state:
        values.update(state=NOT_MODIFIED, last_error=None)
    if etag:
        values["etag"] = etag
    if last_modified:
        values["last_modified"] = last_modified
    _transition(session, page_id, now=now, **values)


def record_failure(
    session: Session, page_id: int, *, now: datetime, state: str, error: str, next_fetch_at: datetime | None
) -> None:
    """A permanent fetch outcome (``failed`` or ``blocked``) with its reason; revisited when due.

    The stored validators and hash are forgotten: what we hold is no longer known to be
    current, so the next fetch is unconditional and its bytes are ingested afresh."""
    _transition(
        session,
        page_id,
        now=now,
        state=state,
        last_error=error[:ERROR_TEXT_MAX],
        next_fetch_at=next_fetch_at,
        attempts=0,
        etag=None,
        last_modified=None,
        sha256=None,
    )


def record_retry(session: Session, page_id: int, *, error: str, until: datetime) -> None:
    """A transient failure: keep the state, note why, and let the page be retried from ``until``."""
    session.execute(
        sa.update(Page)
        .where(col(Page.id) == page_id)
        .values(last_error=error[:ERROR_TEXT_MAX], next_fetch_at=until)
        .execution_options(synchronize_session=False)
    )


def begin_ingest(session: Session, page_id: int, *, max_attempts: int) -> tuple[Page | None, str]:
    """Count an ingest attempt before the (slow, possibly fatal) parse: ``(page, "ok")``, or
    ``(page, "exhausted")`` when earlier attempts never finished — a document that kills its
    worker every time is quarantined instead of being redelivered forever — or ``(None, why)``."""
    result = cast(
        "CursorResult[Any]",
        session.execute(
            sa.update(Page)
            .where(col(Page.id) == page_id, col(Page.state) == FETCHED, col(Page.attempts) < max_attempts)
            .values(attempts=col(Page.attempts) + 1)
            .execution_options(synchronize_session=False)
        ),
    )
    page = session.get(Page, page_id, populate_existing=True)
    if page is None or page.state != FETCHED or page.sha256 is None:
        return None, "not_fetched"
    return page, "ok" if result.rowcount == 1 else "exhausted"


def record_ingested(
    session: Session, page_id: int, *, now: datetime, state: str, error: str | None = None
) -> None:
    _transition(
        session, page_id, now=now, state=state, last_error=error and error[:ERROR_TEXT_MAX], attempts=0
    )


# --------------------------------------------------------------------------- the sweep


def _due(now: datetime, stale_before: datetime | None = None) -> Any:
    """Not awaiting ingest, and due: ``next_fetch_at`` passed, or never set (a new page) — for
    the sweep only once unclaimed since ``stale_before`` (its message may still be on its way)."""
    never_claimed = sa.and_(col(Page.next_fetch_at).is_(None), col(Page.state) == DISCOVERED)
    if stale_before is not None:
        never_claimed = sa.and_(never_claimed, col(Page.state_changed_at) <= stale_before)
    return sa.and_(col(Page.state) != FETCHED, sa.or_(col(Page.next_fetch_at) <= now, never_claimed))


def due_pages_by_host(session: Session, *, now: datetime, stale_before: datetime, limit: int) -> list[int]:
    """One page per host that has pages to fetch now and that no message may be carrying any more
    (the fetch stage works the rest of the host's due pages itself):

    * at rest and due for their revisit (``next_fetch_at`` passed);
    * ``discovered`` with an expired lease (a worker died mid-fetch);
    * ``discovered`` and never claimed since ``stale_before`` (the message was lost)."""
    first = sa.func.min(col(Page.id))
    # the hosts waiting longest first, so that a busy frontier does not starve late hosts' revisits
    waiting_since = sa.func.min(sa.func.coalesce(col(Page.next_fetch_at), col(Page.state_changed_at)))
    statement = (
        select(first)
        .where(_due(now, stale_before))
        .group_by(col(Page.host))
        .order_by(waiting_since, first)
        .limit(limit)
    )
    return [int(i) for i in session.exec(statement).all() if i is not None]


def next_due_page_id(session: Session, *, host: str, now: datetime, skip: Iterable[int] = ()) -> int | None:
    """The host's next page to fetch now: list pages first (they lead to the rest), then oldest."""
    statement = (
        select(col(Page.id))
        .where(col(Page.host) == host, _due(now))
        .order_by(sa.case((col(Page.kind) == LISTING, 0), else_=1), col(Page.id))
        .limit(1)
    )
    skipped = list(skip)
    if skipped:
        statement = statement.where(col(Page.id).not_in(skipped))
    found = session.exec(statement).first()
    return None if found is None else int(found)


def defer_host(session: Session, *, host: str, now: datetime, until: datetime) -> int:
    """The host asked us to wait (Retry-After, backoff, an open circuit): its pages due now are
    due at ``until`` instead, so the sweep leaves the host to the one follow-up that waits for
    it. Attempts are not touched. Returns how many pages moved."""
    result = cast(
        "CursorResult[Any]",
        session.execute(
            sa.update(Page)
            .where(col(Page.host) == host, _due(now))
            .values(next_fetch_at=until)
            .execution_options(synchronize_session=False)
        ),
    )
    return int(result.rowcount or 0)


def hosts_of_pages(session: Session, page_ids: Sequence[int]) -> dict[int, str]:
    """``{page id: host}`` for the pages that exist."""
    if not page_ids:
        return {}
    rows = session.exec(select(col(Page.id), col(Page.host)).where(col(Page.id).in_(list(page_ids)))).all()
    return {int(page_id): host for page_id, host in rows if page_id is not None}


def soonest_pending(
    session: Session, *, host: str, now: datetime, within_s: float
) -> tuple[int, float] | None:
    """``(page id, seconds from now)`` of the host's page that comes due first within ``within_s``:
    a retry after a transient error, a lease about to lapse, a revisit."""
    statement = (
        select(col(Page.id), col(Page.next_fetch_at))
        .where(col(Page.host) == host, col(Page.state) != FETCHED)
        .where(col(Page.next_fetch_at) > now, col(Page.next_fetch_at) <= now + timedelta(seconds=within_s))
        .order_by(col(Page.next_fetch_at), col(Page.id))
        .limit(1)
    )
    row = session.exec(statement).first()
    if row is None or row[0] is None or row[1] is None:
        return None
    due_at = row[1] if row[1].tzinfo is not None else row[1].replace(tzinfo=now.tzinfo)
    return int(row[0]), max((due_at - now).total_seconds(), 0.0)


def stuck_fetched_page_ids(session: Session, *, stale_before: datetime, limit: int) -> list[int]:
    """Pages fetched but not ingested since ``stale_before``: their ingest message was lost."""
    statement = (
        select(col(Page.id))
        .where(col(Page.state) == FETCHED, col(Page.state_changed_at) <= stale_before)
        .order_by(col(Page.state_changed_at), col(Page.id))
        .limit(limit)
    )
    return [int(i) for i in session.exec(statement).all() if i is not None]


# --------------------------------------------------------------------------- reading


def blocked_site_ids(session: Session) -> set[int]:
    """Sites the crawler cannot see into: no list page ever read, at least one blocked
    (anti-bot page, robots.txt). Their agencies' reports are unknown, not missing."""
    statement = select(col(Page.site_id), col(Page.state)).where(
        col(Page.kind) == LISTING, col(Page.site_id).is_not(None)
    )
    states: dict[int, set[str]] = {}
    for site_id, state in session.exec(statement).all():
        if site_id is not None:
            states.setdefault(int(site_id), set()).add(state)
    return {
        site_id for site_id, seen in states.items() if BLOCKED in seen and not seen & {PARSED, NOT_MODIFIED}
    }


@dataclass
class CrawlCounts:
    by_state: dict[str, int] = field(default_factory=dict)
    by_kind_state: dict[tuple[str, str], int] = field(default_factory=dict)

    def total(self) -> int:
        return sum(self.by_state.values())


def crawl_counts(session: Session, *, site_ids: Sequence[int] | None = None) -> CrawlCounts:
    statement = select(col(Page.kind), col(Page.state), sa.func.count()).group_by(
        col(Page.kind), col(Page.state)
    )
    if site_ids is not None:
        statement = statement.where(col(Page.site_id).in_(list(site_ids)))
    counts = CrawlCounts()
    for kind, state, n in session.exec(statement).all():
        counts.by_kind_state[(kind, state)] = int(n)
        counts.by_state[state] = counts.by_state.get(state, 0) + int(n)
    return counts


def pages_of(session: Session, *, site_id: int | None = None) -> list[Page]:
    statement = select(Page).order_by(col(Page.id))
    if site_id is not None:
        statement = statement.where(col(Page.site_id) == site_id)
    return list(session.exec(statement))
