"""The store's tables (SQLModel), one class per table.

Conventions every store module (and the crawler's ``crawl_state``) relies on:

- Times are **aware UTC** ``datetime`` values (``utc_now()``). SQLModel's
  ``UTCDateTime`` refuses naive values and returns aware UTC on SQLite and
  PostgreSQL alike, so comparisons never mix aware and naive values.
- JSON columns are ``JSON`` on SQLite and ``JSONB`` on PostgreSQL.
- Natural keys carry unique constraints; writers rely on them for idempotency.
- Cells use ``row_key`` / ``column_key`` (``row`` and ``column`` are SQL keywords)
  so researchers can write plain SQL across reports, e.g.::

      SELECT a.name, r.year, c.value
      FROM cells c JOIN reports r ON r.id = c.report_id AND r.revision = c.revision
      JOIN agencies a ON a.id = r.agency_id
      WHERE c.section = 'applications' AND c.row_key = 'new_received' AND c.column_key = 'total';

Schema changes go through an Alembic migration in ``shared/store/migrations``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def utc_now() -> datetime:
    """Now as aware UTC, the store's one time convention."""
    return datetime.now(UTC)


def _json(nullable: bool = True) -> Any:
    return sa.Column(sa.JSON().with_variant(JSONB(), "postgresql"), nullable=nullable)


AGENCY_LEVELS = ("department", "government", "township")
SOURCE_STATUSES = ("parsed", "failed")
REVIEW_STATUSES = ("open", "confirmed", "dismissed")
DELIVERY_STATUSES = ("pending", "delivered", "dead")
PAGE_KINDS = ("listing", "report", "attachment")
PAGE_STATES = ("discovered", "fetched", "parsed", "failed", "blocked", "not_modified")


class Agency(SQLModel, table=True):
    """A reporting body, the same across years and carriers.

    ``key`` is the normalised name (:func:`shared.store.agencies.normalise_agency_name`);
    ``region_code`` is the 6-digit 行政区划代码 when known, else ``''`` so the
    unique constraint also holds for unknown regions."""

    __tablename__ = "agencies"
    __table_args__ = (sa.UniqueConstraint("key", "region_code", name="uq_agencies_key_region"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True)
    name: str
    level: str = "department"
    region_code: str = Field(default="", index=True)
    site_id_code: str | None = None
    site: str | None = None
    created_at: datetime = Field(default_factory=utc_now)


class SourceDocument(SQLModel, table=True):
    """One set of bytes seen at one source (URL or path): the unit of idempotency."""

    __tablename__ = "source_documents"
    __table_args__ = (sa.UniqueConstraint("locator", "sha256", name="uq_source_documents_locator_sha256"),)

    id: int | None = Field(default=None, primary_key=True)
    locator: str = Field(index=True)  # the URL, else the absolute path, else "sha256:<hex>"
    url: str | None = None
    path: str | None = None
    sha256: str = Field(index=True)
    size_bytes: int = 0
    media_type: str | None = None
    content_type: str | None = None
    fetched_at: datetime | None = None
    etag: str | None = None
    last_modified: str | None = None
    archive_key: str | None = None
    status: str = "parsed"  # SOURCE_STATUSES
    error_code: str | None = None
    error_message: str | None = None
    report_id: int | None = Field(default=None, foreign_key="reports.id", index=True)
    revision: int | None = None
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


class StoredReport(SQLModel, table=True):
    """One report as published at one source; ``revision`` is the current one.

    Every revision's full record lives in ``report_revisions``; cells of every
    revision in ``cells``."""

    __tablename__ = "reports"

    id: int | None = Field(default=None, primary_key=True)
    locator: str = Field(unique=True)
    identity: str  # Report.identity(): what findings and events are keyed by
    agency_id: int | None = Field(default=None, foreign_key="agencies.id", index=True)
    year: int | None = Field(default=None, index=True)
    template: str | None = None
    title: str | None = None
    published_on: date | None = None
    revision: int = 1
    confidence: float = 1.0
    source_url: str | None = None
    source_path: str | None = None
    sha256: str
    media_type: str | None = None
    first_seen_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


class ReportRevision(SQLModel, table=True):
    __tablename__ = "report_revisions"
    __table_args__ = (
        sa.UniqueConstraint("report_id", "revision", name="uq_report_revisions_report_revision"),
    )

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="reports.id", index=True)
    revision: int
    source_document_id: int | None = Field(default=None, foreign_key="source_documents.id")
    sha256: str
    content_hash: str  # of the canonical record: new bytes with the same content are no new revision
    record: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))
    created_at: datetime = Field(default_factory=utc_now)


class Cell(SQLModel, table=True):
    """One cell of one revision: ``value`` NULL means blank (never 0)."""

    __tablename__ = "cells"
    __table_args__ = (
        sa.UniqueConstraint(
            "report_id", "revision", "section", "row_key", "column_key", name="uq_cells_cell"
        ),
        sa.Index("ix_cells_lookup", "section", "row_key", "column_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="reports.id", index=True)
    revision: int
    section: str
    row_key: str
    column_key: str
    value: float | None = None
    raw_text: str | None = None


class FindingRecord(SQLModel, table=True):
    """One anomaly, keyed by its fingerprint so its review status survives re-checks.

    ``resolved_at`` is set when a re-check no longer finds it; ``status`` is the
    people's verdict (open / confirmed / dismissed) and is never touched by checks."""

    __tablename__ = "findings"

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(unique=True)
    report_id: int | None = Field(default=None, foreign_key="reports.id", index=True)
    agency_id: int | None = Field(default=None, foreign_key="agencies.id", index=True)
    year: int | None = Field(default=None, index=True)
    rule: str = Field(index=True)
    severity: str = Field(index=True)
    scope: str = "report"  # "report" (single-report rules) or "cross"
    message: str
    cells: list[str] = Field(default_factory=list, sa_column=_json(nullable=False))
    expected: Any = Field(default=None, sa_column=_json())
    actual: Any = Field(default=None, sa_column=_json())
    status: str = Field(default="open", index=True)  # REVIEW_STATUSES
    note: str | None = None
    reviewed_at: datetime | None = None
    first_seen_revision: int | None = None
    last_seen_revision: int | None = None
    event_id: str | None = None
    first_seen_at: datetime = Field(default_factory=utc_now)
    last_seen_at: datetime = Field(default_factory=utc_now)
    resolved_at: datetime | None = None


class OutboxEvent(SQLModel, table=True):
    """An event is a row before it is a message: written in the report's transaction."""

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_unpublished", "published_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True)
    type: str = Field(index=True)
    aggregate: str  # the report identity, or agency|year for report.missing
    report_id: int | None = Field(default=None, foreign_key="reports.id", index=True)
    agency_id: int | None = Field(default=None, foreign_key="agencies.id")
    agency: str | None = None
    region_code: str | None = None
    year: int | None = None
    rule: str | None = None
    severity: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))
    created_at: datetime = Field(default_factory=utc_now)
    published_at: datetime | None = None
    publish_attempts: int = 0
    last_error: str | None = None


class Subscription(SQLModel, table=True):
    """Who wants which events: every filter that is set must match (``None`` = any)."""

    __tablename__ = "subscriptions"

    id: int | None = Field(default=None, primary_key=True)
    name: str | None = None
    url: str
    secret: str  # whsec_… ; never logged
    region_prefix: str | None = None
    agency: str | None = None  # matched on the normalised name
    rule: str | None = None
    min_severity: str | None = None  # info < warning < error
    event_types: list[str] | None = Field(default=None, sa_column=_json())
    active: bool = True
    created_at: datetime = Field(default_factory=utc_now)


class Delivery(SQLModel, table=True):
    """One event to one webhook endpoint: retried with backoff, dead after a bounded number of attempts."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "endpoint", name="uq_deliveries_event_endpoint"),
        sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(foreign_key="outbox.event_id", index=True)
    endpoint: str  # the URL
    subscription_id: int | None = Field(default=None, foreign_key="subscriptions.id")
    status: str = "pending"  # DELIVERY_STATUSES
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utc_now)
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    created_at: datetime = Field(default_factory=utc_now)


class Site(SQLModel, table=True):
    """The site registry (written by ``xxgk sites import``); agencies here are tracked for missing_report."""

    __tablename__ = "sites"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    agency_id: int | None = Field(default=None, foreign_key="agencies.id")
    agency_name: str | None = None
    level: str | None = None
    region_code: str | None = None
    entry_urls: list[str] = Field(default_factory=list, sa_column=_json(nullable=False))
    domains: list[str] = Field(default_factory=list, sa_column=_json(nullable=False))
    created_at: datetime = Field(default_factory=utc_now)


class Page(SQLModel, table=True):
    """A URL the crawler knows, with its state machine (see ``shared.store.crawl_state``)."""

    __tablename__ = "pages"
    __table_args__ = (sa.Index("ix_pages_state_next_fetch", "state", "next_fetch_at"),)

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(unique=True)
    host: str = Field(index=True)
    site_id: int | None = Field(default=None, foreign_key="sites.id", index=True)
    kind: str = "listing"  # PAGE_KINDS
    title: str | None = None
    year_hint: int | None = None
    state: str = "discovered"  # PAGE_STATES
    attempts: int = 0
    last_error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    sha256: str | None = None
    content_type: str | None = None
    fetched_at: datetime | None = None
    next_fetch_at: datetime | None = None
    state_changed_at: datetime = Field(default_factory=utc_now)
    created_at: datetime = Field(default_factory=utc_now)
