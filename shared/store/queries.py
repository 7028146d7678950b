"""The read side: what did agency X file, when, what is wrong with it, what changed.

Every function returns plain dicts (JSON-ready: dates as ISO strings), the
shape ``xxgk … --json`` prints.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_
from sqlmodel import Session, col, select

from shared.store.agencies import normalise_agency_name
from shared.store.models import (
    Agency,
    Cell,
    Delivery,
    FindingRecord,
    OutboxEvent,
    Page,
    ReportRevision,
    Site,
    SourceDocument,
    StoredReport,
    Subscription,
)

DEFAULT_LIMIT = 200


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _agency_filter(agency: str) -> ColumnElement[bool]:
    return or_(col(Agency.name).contains(agency), col(Agency.key).contains(normalise_agency_name(agency)))


def _where_year_agency_region(
    stmt: Any, year_column: Any, *, year: int | None, agency: str | None, region: str | None
) -> Any:
    """The filters reports and findings share: a year, an agency (name or key, substring) and a
    region code prefix; ``Agency`` must be joined."""
    if year is not None:
        stmt = stmt.where(year_column == year)
    if agency:
        stmt = stmt.where(_agency_filter(agency))
    if region:
        stmt = stmt.where(col(Agency.region_code).startswith(region))
    return stmt


def _agency_dict(agency: Agency | None) -> dict[str, Any]:
    if agency is None:
        return {"agency": None, "agency_id": None, "level": None, "region_code": None}
    return {
        "agency": agency.name,
        "agency_id": agency.id,
        "level": agency.level,
        "region_code": agency.region_code or None,
    }


def list_reports(
    session: Session,
    *,
    year: int | None = None,
    agency: str | None = None,
    region: str | None = None,
    limit: int | None = DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    open_findings = (
        select(FindingRecord.report_id, func.count().label("n"))
        .where(col(FindingRecord.resolved_at).is_(None))
        .group_by(col(FindingRecord.report_id))
        .subquery()
    )
    stmt = (
        select(StoredReport, Agency, open_findings.c.n)
        .join(Agency, col(Agency.id) == col(StoredReport.agency_id), isouter=True)
        .join(open_findings, open_findings.c.report_id == col(StoredReport.id), isouter=True)
        .order_by(col(StoredReport.year).desc(), col(Agency.name), col(StoredReport.id))
    )
    stmt = _where_year_agency_region(stmt, StoredReport.year, year=year, agency=agency, region=region)
    if limit:
        stmt = stmt.limit(limit)
    return [
        {
            "id": report.id,
            **_agency_dict(agency_row),
            "year": report.year,
            "template": report.template,
            "title": report.title,
            "published_on": _iso(report.published_on),
            "revision": report.revision,
            "confidence": round(report.confidence, 3),
            "source": report.source_url or report.source_path or report.locator,
            "sha256": report.sha256,
            "open_findings": n or 0,
            "first_seen_at": _iso(report.first_seen_at),
            "updated_at": _iso(report.updated_at),
        }
        for report, agency_row, n in session.exec(stmt).all()
    ]


def find_report(session: Session, ref: str) -> StoredReport | None:
    """By id, by source (URL or path), or by a sha256 (prefix of at least 8) of any of its revisions."""
    if ref.isdigit():
        found = session.get(StoredReport, int(ref))
        if found is not None:
            return found
    found = session.exec(select(StoredReport).where(StoredReport.locator == ref)).first()
    if found is not None or len(ref) < 8:
        return found
    report_id = session.exec(
        select(ReportRevision.report_id).where(col(ReportRevision.sha256).startswith(ref.lower()))
    ).first()
    return session.get(StoredReport, report_id) if report_id is not None else None


def show_report(session: Session, report: StoredReport) -> dict[str, Any]:
    """The canonical record of the current revision, its findings, and every revision."""
    agency = session.get(Agency, report.agency_id) if report.agency_id else None
    revisions = session.exec(
        select(ReportRevision, SourceDocument)
        .join(SourceDocument, col(SourceDocument.id) == col(ReportRevision.source_document_id), isouter=True)
        .where(ReportRevision.report_id == report.id)
        .order_by(col(ReportRevision.revision))
    ).all()
    current = next(rev for rev, _ in revisions if rev.revision == report.revision)
    findings = session.exec(
        select(FindingRecord).where(FindingRecord.report_id == report.id).order_by(col(FindingRecord.id))
    ).all()
    return {
        "id": report.id,
        **_agency_dict(agency),
        "year": report.year,
        "revision": report.revision,
        "source": report.source_url or report.source_path or report.locator,
        "record": current.record,
        "findings": [finding_dict(f, agency) for f in findings],
        "revisions": [
            {
                "revision": rev.revision,
                "sha256": rev.sha256,
                "created_at": _iso(rev.created_at),
                "fetched_at": _iso(doc.fetched_at) if doc else None,
                "etag": doc.etag if doc else None,
                "archive_key": doc.archive_key if doc else None,
            }
            for rev, doc in revisions
        ],
    }


def finding_dict(row: FindingRecord, agency: Agency | None = None) -> dict[str, Any]:
    out = {
        "id": row.id,
        "fingerprint": row.fingerprint,
        "report_id": row.report_id,
        "year": row.year,
        "rule": row.rule,
        "severity": row.severity,
        "scope": row.scope,
        "message": row.message,
        "cells": list(row.cells or []),
        "expected": row.expected,
        "actual": row.actual,
        "status": row.status,
        "note": row.note,
        "resolved": row.resolved_at is not None,
        "first_seen_revision": row.first_seen_revision,
        "last_seen_revision": row.last_seen_revision,
        "first_seen_at": _iso(row.first_seen_at),
        "resolved_at": _iso(row.resolved_at),
        "event_id": row.event_id,
    }
    if agency is not None:
        out.update(_agency_dict(agency))
    return out


def list_findings(
    session: Session,
    *,
    year: int | None = None,
    agency: str | None = None,
    region: str | None = None,
    rule: str | None = None,
    severity: str | None = None,
    status: str | None = None,
    include_resolved: bool = False,
    limit: int | None = DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    stmt = (
        select(FindingRecord, Agency)
        .join(Agency, col(Agency.id) == col(FindingRecord.agency_id), isouter=True)
        .order_by(col(FindingRecord.id).desc())
    )
    if not include_resolved:
        stmt = stmt.where(col(FindingRecord.resolved_at).is_(None))
    stmt = _where_year_agency_region(stmt, FindingRecord.year, year=year, agency=agency, region=region)
    if rule:
        stmt = stmt.where(FindingRecord.rule == rule)
    if severity:
        stmt = stmt.where(FindingRecord.severity == severity)
    if status:
        stmt = stmt.where(FindingRecord.status == status)
    if limit:
        stmt = stmt.limit(limit)
    return [finding_dict(row, agency_row) for row, agency_row in session.exec(stmt).all()]


def list_events(
    session: Session,
    *,
    event_type: str | None = None,
    unpublished: bool = False,
    after_id: int | None = None,
    limit: int | None = DEFAULT_LIMIT,
    newest_first: bool = True,
) -> list[dict[str, Any]]:
    deliveries = (
        select(
            Delivery.event_id,
            func.count().label("total"),
            func.sum(case((col(Delivery.status) == "delivered", 1), else_=0)).label("delivered"),
            func.sum(case((col(Delivery.status) == "dead", 1), else_=0)).label("dead"),
        )
        .group_by(col(Delivery.event_id))
        .subquery()
    )
    stmt = select(OutboxEvent, deliveries.c.total, deliveries.c.delivered, deliveries.c.dead).join(
        deliveries, deliveries.c.event_id == col(OutboxEvent.event_id), isouter=True
    )
    stmt = stmt.order_by(col(OutboxEvent.id).desc() if newest_first else col(OutboxEvent.id))
    if event_type:
        stmt = stmt.where(OutboxEvent.type == event_type)
    if unpublished:
        stmt = stmt.where(col(OutboxEvent.published_at).is_(None))
    if after_id is not None:
        stmt = stmt.where(col(OutboxEvent.id) > after_id)
    if limit:
        stmt = stmt.limit(limit)
    return [
        {
            "seq": event.id,
            "id": event.event_id,
            "type": event.type,
            "agency": event.agency,
            "region_code": event.region_code,
            "year": event.year,
            "rule": event.rule,
            "severity": event.severity,
            "created_at": _iso(event.created_at),
            "published_at": _iso(event.published_at),
            "last_error": event.last_error,
            "deliveries": {"total": total or 0, "delivered": int(delivered or 0), "dead": int(dead or 0)},
            "payload": event.payload,
        }
        for event, total, delivered, dead in session.exec(stmt).all()
    ]


def list_deliveries(
    session: Session, *, status: str | None = None, limit: int | None = DEFAULT_LIMIT
) -> list[dict[str, Any]]:
    stmt = select(Delivery).order_by(col(Delivery.id).desc())
    if status:
        stmt = stmt.where(Delivery.status == status)
    if limit:
        stmt = stmt.limit(limit)
    return [
        {
            "id": d.id,
            "event_id": d.event_id,
            "endpoint": d.endpoint,
            "subscription_id": d.subscription_id,
            "status": d.status,
            "attempts": d.attempts,
            "next_attempt_at": _iso(d.next_attempt_at),
            "last_status_code": d.last_status_code,
            "last_error": d.last_error,
            "delivered_at": _iso(d.delivered_at),
        }
        for d in session.exec(stmt).all()
    ]


def subscription_dict(sub: Subscription) -> dict[str, Any]:
    return {
        "id": sub.id,
        "name": sub.name,
        "url": sub.url,
        "region_prefix": sub.region_prefix,
        "agency": sub.agency,
        "rule": sub.rule,
        "min_severity": sub.min_severity,
        "event_types": sub.event_types,
        "active": sub.active,
        "created_at": _iso(sub.created_at),
    }


def table_counts(session: Session) -> dict[str, int]:
    """Rows per table: what "ingesting twice changes nothing" is measured with."""
    models = {
        "agencies": Agency,
        "source_documents": SourceDocument,
        "reports": StoredReport,
        "report_revisions": ReportRevision,
        "cells": Cell,
        "findings": FindingRecord,
        "outbox": OutboxEvent,
        "deliveries": Delivery,
        "subscriptions": Subscription,
        "sites": Site,
        "pages": Page,
    }
    return {
        name: int(session.exec(select(func.count()).select_from(model)).one())
        for name, model in models.items()
    }
