"""The outbox relay: SQL rows → Redis stream → signed webhooks. At least once, nothing lost.

One pass (:func:`relay_once`) does two things:

1. **Publish.** Claim up to ``batch`` unpublished outbox rows (``FOR UPDATE SKIP
   LOCKED`` on PostgreSQL, so several relays share work; on SQLite run one
   relay), XADD each to ``xxgk:events`` with ``MAXLEN ~ XXGK_STREAM_MAX_LEN`` (the
   stream keeps about the newest that many; the outbox keeps all), plan one
   delivery per webhook endpoint that wants it (subscriptions + the catch-all
   ``XXGK_WEBHOOK_URLS``), mark the rows published, commit. Killed before the
   commit, the rows stay unpublished and are added to the stream again on
   restart — same ``id``, so consumers deduplicate. Embedded mode (no Redis):
   there is no stream, so the rows are
   *not* marked published — a row is published only once it is in
   ``xxgk:events``. Their deliveries are still planned (webhooks work without
   Redis), and the row is marked held (``outbox.last_error``) so the next pass
   does not plan it again; a relay that has a stream later publishes it.
2. **Deliver.** Claim up to ``batch`` due deliveries under a lease (attempt
   counted, committed), POST the signed requests (``concurrency`` at a time),
   record delivered / retry at / dead in one commit. Killed mid-batch, the lease
   expires and the batch is due again (some endpoints get a request twice, with
   the same ``webhook-id``).

:func:`run_relay` loops over passes for the ``xxgk relay`` process; the Celery
alerts task calls :func:`relay_once`.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from shared.errors import StoreUnavailable
from shared.logging import get_logger
from shared.settings import Settings, get_settings
from shared.store.engine import SessionFactory
from shared.store.models import Delivery, OutboxEvent, Subscription, utc_now
from shared.store.outbox import (
    DeliveryOutcome,
    active_subscriptions,
    claim_due_deliveries,
    claim_unplanned,
    claim_unpublished,
    event_message,
    mark_held,
    mark_published,
    next_delivery_due,
    pending_delivery_count,
    plan_deliveries,
    record_delivery_outcomes,
    unplanned_count,
    unpublished_count,
)
from worker.alerts.stream import EVENTS_STREAM, RedisEventStream
from worker.alerts.webhooks import (
    WebhookResponse,
    WebhookSink,
    next_attempt_at,
    sign,
    webhook_body,
)

log = get_logger(__name__)

DEFAULT_BATCH = 100
# a claimed delivery is not re-sent by another relay for this long (covers a batch's requests)
DEFAULT_LEASE_S = 60.0
# webhook requests in flight at once
DEFAULT_CONCURRENCY = 8


@dataclass
class RelayStats:
    published: int = 0
    # embedded mode: rows whose deliveries were planned but that wait, unpublished, for a stream
    held: int = 0
    planned: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0

    def __iadd__(self, other: RelayStats) -> RelayStats:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    @property
    def busy(self) -> bool:
        return bool(self.published or self.held or self.delivered or self.retried or self.dead)


@dataclass(frozen=True)
class RelayConfig:
    batch: int = DEFAULT_BATCH
    stream: str = EVENTS_STREAM
    # XADD … MAXLEN ~ this; 0: never trim (default: XXGK_STREAM_MAX_LEN's)
    stream_max_len: int = Settings.model_fields["stream_max_len"].default
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str | None = None
    max_attempts: int = 8
    lease_s: float = DEFAULT_LEASE_S
    concurrency: int = DEFAULT_CONCURRENCY

    @classmethod
    def from_settings(cls, settings: Any = None, **overrides: Any) -> RelayConfig:
        if settings is None:
            settings = get_settings()
        base = cls(
            webhook_urls=tuple(settings.webhook_urls),
            webhook_secret=settings.webhook_secret,
            max_attempts=settings.webhook_max_attempts,
            stream_max_len=settings.stream_max_len,
        )
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def relay_once(
    session_factory: SessionFactory,
    redis: Any,
    webhook_sink: WebhookSink | None,
    *,
    batch: int | None = None,
    config: RelayConfig | None = None,
    rng: random.Random | None = None,
) -> RelayStats:
    """One publish pass and one delivery pass. ``redis`` None: embedded mode, no stream."""
    config = config or RelayConfig.from_settings()
    if batch is not None:
        config = replace(config, batch=batch)
    stats = publish_pending(session_factory, redis, config=config)
    if webhook_sink is not None:
        stats += deliver_due(session_factory, webhook_sink, config=config, rng=rng)
    return stats


def publish_pending(session_factory: SessionFactory, redis: Any, *, config: RelayConfig) -> RelayStats:
    """Stream mode: XADD, plan deliveries, mark published. Embedded mode (``redis`` None): plan
    deliveries and mark the rows held — never published, since nothing reached a stream."""
    stats = RelayStats()
    with session_factory() as session:
        events = (
            claim_unpublished(session, config.batch)
            if redis is not None
            else claim_unplanned(session, config.batch)
        )
        if not events:
            session.rollback()
            return stats
        if redis is not None:
            # before the commit: a crash in between re-publishes (at least once), never loses
            stream = RedisEventStream(redis, config.stream, max_len=config.stream_max_len)
            stream.publish_many([event_message(e) for e in events])
        now = utc_now()
        stats.planned = plan_deliveries(
            session,
            events,
            subscriptions=active_subscriptions(session),
            catch_all_urls=config.webhook_urls,
            now=now,
        )
        if redis is not None:
            mark_published(session, events, now=now)
        else:
            mark_held(session, events)
        session.commit()
    if redis is not None:
        stats.published = len(events)
        log.info("events_published", count=len(events), deliveries=stats.planned, stream=True)
    else:
        stats.held = len(events)
        log.warning(
            "events_held_no_stream",
            count=len(events),
            deliveries=stats.planned,
            hint="XXGK_REDIS_URL is unset: events stay unpublished until a relay with a stream runs",
        )
    return stats


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    event_id: str
    endpoint: str
    attempts: int
    secret: str | None
    body: str


def deliver_due(
    session_factory: SessionFactory,
    sink: WebhookSink,
    *,
    config: RelayConfig,
    rng: random.Random | None = None,
) -> RelayStats:
    """Send the due deliveries of one batch (``config.concurrency`` at a time), then record the outcomes
    in one transaction. Killed before that commit, the batch is sent again when its lease ends."""
    stats = RelayStats()
    with session_factory() as session:
        claimed = claim_due_deliveries(session, now=utc_now(), limit=config.batch, lease_s=config.lease_s)
        jobs = _jobs(session, claimed, config) if claimed else []
        session.commit()
    if not jobs:
        return stats
    with ThreadPoolExecutor(max_workers=max(1, min(config.concurrency, len(jobs)))) as pool:
        responses = list(pool.map(lambda job: _send(sink, job), jobs))
    now = utc_now()
    outcomes = []
    for job, response in zip(jobs, responses, strict=True):
        retry_at = (
            None
            if response.delivered
            else next_attempt_at(job.attempts, response, now=now, max_attempts=config.max_attempts, rng=rng)
        )
        outcome = DeliveryOutcome(
            job.delivery_id, response.delivered, response.status_code, response.error, retry_at
        )
        outcomes.append(outcome)
        if outcome.delivered:
            stats.delivered += 1
        elif outcome.dead:
            stats.dead += 1
            log.warning(
                "delivery_dead",
                event_id=job.event_id,
                endpoint=job.endpoint,
                attempts=job.attempts,
                status=response.status_code,
                error=response.error,
            )
        else:
            stats.retried += 1
            log.info(
                "delivery_retried",
                event_id=job.event_id,
                endpoint=job.endpoint,
                attempts=job.attempts,
                status=response.status_code,
                retry_at=retry_at.isoformat() if retry_at else None,
            )
    with session_factory() as session:
        record_delivery_outcomes(session, outcomes, now=now)
        session.commit()
    return stats


def _jobs(session: Session, claimed: list[Delivery], config: RelayConfig) -> list[_Job]:
    events = {
        e.event_id: e
        for e in session.exec(
            select(OutboxEvent).where(col(OutboxEvent.event_id).in_([d.event_id for d in claimed]))
        ).all()
    }
    sub_ids = {d.subscription_id for d in claimed if d.subscription_id is not None}
    secrets = {
        s.id: s.secret
        for s in (
            session.exec(select(Subscription).where(col(Subscription.id).in_(sub_ids))).all()
            if sub_ids
            else []
        )
    }
    jobs = []
    for d in claimed:
        event = events[d.event_id]
        assert d.id is not None
        secret = secrets.get(d.subscription_id) if d.subscription_id is not None else config.webhook_secret
        jobs.append(
            _Job(
                d.id,
                d.event_id,
                d.endpoint,
                d.attempts,
                secret,
                webhook_body(event_message(event), created_at=event.created_at),
            )
        )
    return jobs


def _send(sink: WebhookSink, job: _Job) -> WebhookResponse:
    if not job.secret:
        return WebhookResponse(
            None, "no signing secret: set XXGK_WEBHOOK_SECRET (or the subscription's secret)"
        )
    try:
        headers = sign(job.secret, job.event_id, job.body, at=utc_now())
        return sink.send(job.endpoint, job.body.encode("utf-8"), headers)
    except Exception as exc:
        # one bad job (a malformed secret, a sink bug) is recorded on its delivery — attempt
        # counted, retried, dead in the end — instead of killing the relay with the batch claimed
        error = f"{type(exc).__name__}: {exc}"
        log.error(
            "delivery_failed_unexpectedly",
            event_id=job.event_id,
            endpoint=job.endpoint,
            delivery_id=job.delivery_id,
            error=error,
        )
        return WebhookResponse(None, error)


def outstanding(session_factory: SessionFactory, *, stream: bool = True) -> tuple[int, int, datetime | None]:
    """(events still to relay, pending deliveries, when the next delivery is due).

    Without a stream, held rows cannot be published here, so only unplanned ones count —
    otherwise ``--drain`` would never end."""
    with session_factory() as session:
        waiting = unpublished_count(session) if stream else unplanned_count(session)
        return waiting, pending_delivery_count(session), next_delivery_due(session)


def run_relay(
    session_factory: SessionFactory,
    redis: Any,
    webhook_sink: WebhookSink | None,
    *,
    config: RelayConfig | None = None,
    interval_s: float = 1.0,
    drain: bool = False,
    stop: threading.Event | None = None,
) -> RelayStats:
    """Relay until ``stop`` is set — or, with ``drain``, until nothing is unpublished or pending
    (pending includes deliveries waiting for a retry).

    Store or Redis outages are logged and retried after ``interval_s`` (doubling, at most 60 s)."""
    config = config or RelayConfig.from_settings()
    stop = stop or threading.Event()
    total = RelayStats()
    backoff = interval_s
    while not stop.is_set():
        try:
            stats = relay_once(session_factory, redis, webhook_sink, config=config)
            unpublished, pending, due = (
                (0, 0, None) if stats.busy else outstanding(session_factory, stream=redis is not None)
            )
            backoff = interval_s
        except Exception as exc:
            if not _is_outage(exc):
                raise
            log.warning("relay_pass_failed", error=f"{type(exc).__name__}: {exc}", retry_in_s=backoff)
            stop.wait(backoff)
            backoff = min(60.0, backoff * 2)
            continue
        total += stats
        if stats.busy:
            continue
        if drain and not unpublished and not pending:
            break
        wait = interval_s
        if due is not None:
            wait = max(0.05, min(interval_s, (due - utc_now()).total_seconds()))
        stop.wait(wait)
    return total


def _is_outage(exc: Exception) -> bool:
    """Redis or database connectivity trouble: wait and try again, do not crash the process."""
    return isinstance(exc, StoreUnavailable | OperationalError | RedisConnectionError | RedisTimeoutError)
