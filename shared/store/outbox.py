"""The transactional outbox, subscriptions and webhook deliveries (store side).

An event is a row before it is a message: :func:`add_event` writes it in the
caller's transaction (the report's, with its findings). The relay
(``worker.alerts.relay``) later claims unpublished rows, publishes them, plans
one :class:`Delivery` per matching webhook endpoint and marks them published.

Event ids are stable: ``sha256(type | aggregate | revision | fingerprint)``,
where the aggregate is the report identity (agency|year|source) or, for
``report.missing``, the agency and year. Re-running a check gives the same id,
and the unique constraint on ``outbox.event_id`` makes creation exactly-once;
delivery is at-least-once and consumers deduplicate on the id.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from shared.errors import ConfigError
from shared.store.agencies import normalise_agency_name
from shared.store.models import Delivery, OutboxEvent, Subscription

# which event a finding of each rule becomes; every other rule is an anomaly
EVENT_TYPE_BY_RULE: dict[str, str] = {
    "report_changed": "report.changed",
    "missing_report": "report.missing",
}
DEFAULT_EVENT_TYPE = "report.anomalous"
EVENT_TYPES: tuple[str, ...] = ("report.anomalous", "report.changed", "report.missing")
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}


def event_type_for(rule: str) -> str:
    return EVENT_TYPE_BY_RULE.get(rule, DEFAULT_EVENT_TYPE)


def make_event_id(event_type: str, aggregate: str, revision: int | None, fingerprint: str) -> str:
    key = "|".join([event_type, aggregate, "" if revision is None else str(revision), fingerprint])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def add_event(
    session: Session,
    *,
    event_type: str,
    aggregate: str,
    revision: int | None,
    fingerprint: str,
    payload: dict[str, Any],
    now: datetime,
    report_id: int | None = None,
    agency_id: int | None = None,
    agency: str | None = None,
    region_code: str | None = None,
    year: int | None = None,
    rule: str | None = None,
    severity: str | None = None,
) -> str | None:
    """Add one outbox row in the caller's transaction; ``None`` when that event id already exists."""
    event_id = make_event_id(event_type, aggregate, revision, fingerprint)
    if session.exec(select(OutboxEvent.id).where(OutboxEvent.event_id == event_id)).first() is not None:
        return None
    session.add(
        OutboxEvent(
            event_id=event_id,
            type=event_type,
            aggregate=aggregate,
            report_id=report_id,
            agency_id=agency_id,
            agency=agency,
            region_code=region_code or None,
            year=year,
            rule=rule,
            severity=severity,
            payload=payload,
            created_at=now,
        )
    )
    return event_id


def event_message(event: OutboxEvent) -> dict[str, Any]:
    """The event as published: the stream entry's fields and the webhook body's ``data``."""
    return {"id": event.event_id, "type": event.type, "payload": event.payload}


# ------------------------------------------------------------------ relay: publishing


def claim_unpublished(session: Session, limit: int) -> list[OutboxEvent]:
    """Oldest unpublished rows, locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so relays share work;
    SQLite's single writer makes the lock implicit)."""
    stmt = (
        select(OutboxEvent)
        .where(col(OutboxEvent.published_at).is_(None))
        .order_by(col(OutboxEvent.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.exec(stmt).all())


# ``outbox.last_error`` of a row whose deliveries were planned by a relay without a stream: it
# stays unpublished (nothing reached ``xxgk:events``) until a relay with Redis publishes it
HELD_NO_STREAM = "held: no event stream (XXGK_REDIS_URL unset); webhook deliveries planned"


def claim_unplanned(session: Session, limit: int) -> list[OutboxEvent]:
    """Embedded mode: unpublished rows whose deliveries have not been planned yet (not held)."""
    stmt = (
        select(OutboxEvent)
        .where(col(OutboxEvent.published_at).is_(None), col(OutboxEvent.last_error).is_(None))
        .order_by(col(OutboxEvent.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.exec(stmt).all())


def unplanned_count(session: Session) -> int:
    stmt = (
        select(func.count())
        .select_from(OutboxEvent)
        .where(col(OutboxEvent.published_at).is_(None), col(OutboxEvent.last_error).is_(None))
    )
    return int(session.exec(stmt).one())


def mark_held(session: Session, events: Sequence[OutboxEvent]) -> None:
    """Deliveries planned, but no stream: keep the rows unpublished (a later relay with Redis
    publishes them) and say why."""
    session.execute(
        sa.update(OutboxEvent)
        .where(col(OutboxEvent.id).in_([e.id for e in events]))
        .values(last_error=HELD_NO_STREAM)
    )


def unpublished_count(session: Session) -> int:
    stmt = select(func.count()).select_from(OutboxEvent).where(col(OutboxEvent.published_at).is_(None))
    return int(session.exec(stmt).one())


def subscription_matches(sub: Subscription, event: OutboxEvent) -> bool:
    """Every filter the subscription sets must hold (region prefix, agency, rule, severity, type)."""
    if not sub.active:
        return False
    if sub.event_types and event.type not in sub.event_types:
        return False
    if sub.region_prefix and not (event.region_code or "").startswith(sub.region_prefix):
        return False
    if sub.agency and (
        not event.agency or normalise_agency_name(sub.agency) != normalise_agency_name(event.agency)
    ):
        return False
    if sub.rule and sub.rule != event.rule:
        return False
    if sub.min_severity:
        rank = SEVERITY_RANK.get(event.severity or "", -1)
        if rank < SEVERITY_RANK.get(sub.min_severity, 0):
            return False
    return True


def plan_deliveries(
    session: Session,
    events: Sequence[OutboxEvent],
    *,
    subscriptions: Sequence[Subscription],
    catch_all_urls: Iterable[str],
    now: datetime,
) -> int:
    """One delivery row per (event, endpoint that wants it); idempotent: existing rows are kept."""
    catch_all = list(catch_all_urls)
    wanted: dict[tuple[str, str], int | None] = {}
    for event in events:
        for sub in subscriptions:
            if subscription_matches(sub, event):
                wanted.setdefault((event.event_id, sub.url), sub.id)
        for url in catch_all:
            wanted.setdefault((event.event_id, url), None)
    if not wanted:
        return 0
    existing = set(
        session.exec(
            select(Delivery.event_id, Delivery.endpoint).where(
                col(Delivery.event_id).in_({event_id for event_id, _ in wanted})
            )
        ).all()
    )
    fresh = [key for key in wanted if key not in existing]
    session.add_all(
        Delivery(
            event_id=event_id, endpoint=url, subscription_id=wanted[(event_id, url)], next_attempt_at=now
        )
        for event_id, url in fresh
    )
    return len(fresh)


def active_subscriptions(session: Session) -> list[Subscription]:
    return list(session.exec(select(Subscription).where(col(Subscription.active).is_(True))).all())


# ------------------------------------------------------------------ relay: webhook deliveries


def claim_due_deliveries(session: Session, *, now: datetime, limit: int, lease_s: float) -> list[Delivery]:
    """Pending deliveries that are due, leased for ``lease_s`` and counted as an attempt.

    The caller commits right away, then sends. A relay killed mid-send loses
    nothing: the lease expires and the delivery is due again (the attempt
    counter bounds how often that can happen)."""
    stmt = (
        select(Delivery)
        .where(Delivery.status == "pending", col(Delivery.next_attempt_at) <= now)
        .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = list(session.exec(stmt).all())
    if claimed:
        # one UPDATE for the batch; the loaded rows are updated in memory too (synchronize_session)
        session.execute(
            sa.update(Delivery)
            .where(col(Delivery.id).in_([d.id for d in claimed]))
            .values(attempts=Delivery.attempts + 1, next_attempt_at=now + timedelta(seconds=lease_s))
        )
    return claimed


def mark_published(session: Session, events: Sequence[OutboxEvent], *, now: datetime) -> None:
    """One UPDATE for a published batch."""
    session.execute(
        sa.update(OutboxEvent)
        .where(col(OutboxEvent.id).in_([e.id for e in events]))
        .values(published_at=now, publish_attempts=OutboxEvent.publish_attempts + 1, last_error=None)
    )


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    delivery_id: int
    delivered: bool
    status_code: int | None
    error: str | None
    retry_at: datetime | None  # None and not delivered: dead

    @property
    def dead(self) -> bool:
        return not self.delivered and self.retry_at is None


def record_delivery_outcomes(session: Session, outcomes: Sequence[DeliveryOutcome], *, now: datetime) -> None:
    """Delivered, due again at ``retry_at``, or dead — for a batch of sends, in the caller's transaction.

    Successes (the common case) are one UPDATE per status code; failures one each."""
    delivered: dict[int | None, list[int]] = {}
    for outcome in outcomes:
        if outcome.delivered:
            delivered.setdefault(outcome.status_code, []).append(outcome.delivery_id)
            continue
        values: dict[str, Any] = {"last_status_code": outcome.status_code, "last_error": outcome.error}
        if outcome.retry_at is None:
            values["status"] = "dead"
        else:
            values.update(status="pending", next_attempt_at=outcome.retry_at)
        session.execute(sa.update(Delivery).where(col(Delivery.id) == outcome.delivery_id).values(**values))
    for status_code, ids in delivered.items():
        session.execute(
            sa.update(Delivery)
            .where(col(Delivery.id).in_(ids))
            .values(status="delivered", delivered_at=now, last_status_code=status_code, last_error=None)
        )


def pending_delivery_count(session: Session) -> int:
    stmt = select(func.count()).select_from(Delivery).where(Delivery.status == "pending")
    return int(session.exec(stmt).one())


def next_delivery_due(session: Session) -> datetime | None:
    stmt = (
        select(Delivery.next_attempt_at)
        .where(Delivery.status == "pending")
        .order_by(col(Delivery.next_attempt_at))
    )
    return session.exec(stmt).first()


def retry_deliveries(session: Session, ref: str, *, now: datetime) -> list[Delivery]:
    """Make dead (or pending) deliveries due now with a fresh attempt budget.

    ``ref`` is a delivery id, or an event id (all of its deliveries)."""
    if ref.isdigit():
        found = session.get(Delivery, int(ref))
        rows = [found] if found else []
    else:
        rows = list(session.exec(select(Delivery).where(Delivery.event_id == ref)).all())
    retried = []
    for delivery in rows:
        if delivery.status == "delivered":
            continue
        delivery.status = "pending"
        delivery.attempts = 0
        delivery.next_attempt_at = now
        delivery.last_error = None
        session.add(delivery)
        retried.append(delivery)
    return retried


# ------------------------------------------------------------------ subscriptions


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes (one per endpoint)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def add_subscription(
    session: Session,
    url: str,
    *,
    name: str | None = None,
    secret: str | None = None,
    region_prefix: str | None = None,
    agency: str | None = None,
    rule: str | None = None,
    min_severity: str | None = None,
    event_types: Sequence[str] | None = None,
) -> Subscription:
    """Validate and add a subscription (flushes; the caller commits); a secret is generated if not given."""
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"webhook URL must be http(s): {url!r}")
    if min_severity and min_severity not in SEVERITY_RANK:
        raise ConfigError(f"unknown severity {min_severity!r}; expected one of {', '.join(SEVERITY_RANK)}")
    unknown = [t for t in event_types or () if t not in EVENT_TYPES]
    if unknown:
        raise ConfigError(f"unknown event type(s) {', '.join(unknown)}; expected {', '.join(EVENT_TYPES)}")
    sub = Subscription(
        name=name,
        url=url,
        secret=secret or new_webhook_secret(),
        region_prefix=region_prefix or None,
        agency=agency or None,
        rule=rule or None,
        min_severity=min_severity or None,
        event_types=list(event_types) if event_types else None,
    )
    session.add(sub)
    session.flush()
    return sub
