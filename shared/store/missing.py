"""``missing_report`` over the site registry: the beat task's entry point.

Every agency in the ``sites`` table is tracked from the year before its site
was registered (the report that was due when tracking began). For each year
whose deadline for the agency's level plus the grace period has passed with no
stored report, one finding and one ``report.missing`` event — once: the
finding's fingerprint and the event id are stable, and a report that arrives
later resolves the finding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from datetime import date, datetime

from sqlmodel import Session, col, select

from shared.record import Finding
from shared.rules.cross import check_missing_report, due_years
from shared.rules.thresholds import Thresholds
from shared.settings import get_settings
from shared.store.agencies import agency_for_site
from shared.store.findings import thresholds_from_settings
from shared.store.models import Agency, FindingRecord, Site, StoredReport, utc_now
from shared.store.outbox import add_event, event_type_for

# the 2019 revision of the regulations: no format, no duty to track before that
FIRST_TRACKED_YEAR = 2019


def missing_aggregate(agency: Agency, year: int) -> str:
    return f"{agency.key}|{agency.region_code}|{year}"


def missing_fingerprint(agency: Agency, year: int) -> str:
    return hashlib.sha256(f"{missing_aggregate(agency, year)}|missing_report".encode()).hexdigest()[:32]


def check_missing_reports(
    session: Session,
    today: date,
    *,
    grace_days: int | None = None,
    thresholds: Thresholds | None = None,
    since_year: int | None = None,
    skip_site_ids: Collection[int] = (),
) -> list[str]:
    """Record missing reports of tracked agencies; returns the ids of the events added. Commits.

    ``grace_days`` and ``thresholds`` (the township deadline) default to the settings
    (``XXGK_MISSING_REPORT_GRACE_DAYS``, ``XXGK_TOWNSHIP_DEADLINE_MMDD``)."""
    if grace_days is None:
        grace_days = get_settings().missing_report_grace_days
    thresholds = thresholds or thresholds_from_settings()
    now = utc_now()
    event_ids: list[str] = []
    for site in session.exec(select(Site).order_by(col(Site.id))).all():
        if site.id in skip_site_ids:
            continue  # the crawler could not look (anti-bot page, robots.txt): unknown, not missing
        agency = agency_for_site(session, site)
        if agency is None:
            continue
        assert agency.id is not None
        first = since_year or max(FIRST_TRACKED_YEAR, site.created_at.year - 1)
        years = due_years(
            agency.level, first_year=first, today=today, grace_days=grace_days, thresholds=thresholds
        )
        have = (
            set(
                session.exec(
                    select(StoredReport.year).where(
                        StoredReport.agency_id == agency.id, col(StoredReport.year).in_(years)
                    )
                ).all()
            )
            if years
            else set()
        )
        for year in years:
            finding = check_missing_report(
                agency.name,
                agency.level,
                year,
                today=today,
                grace_days=grace_days,
                thresholds=thresholds,
                have_report=year in have,
            )
            if finding is not None:
                event_id = _record_missing(session, agency, year, finding, now=now)
                if event_id:
                    event_ids.append(event_id)
    session.commit()
    return event_ids


def _record_missing(
    session: Session, agency: Agency, year: int, finding: Finding, *, now: datetime
) -> str | None:
    fingerprint = missing_fingerprint(agency, year)
    row = session.exec(select(FindingRecord).where(FindingRecord.fingerprint == fingerprint)).first()
    if row is not None and row.resolved_at is None:
        return None
    if row is None:
        row = FindingRecord(
            fingerprint=fingerprint,
            agency_id=agency.id,
            year=year,
            rule=finding.rule,
            severity=finding.severity,
            scope="cross",
            message=finding.message,
            expected=finding.expected,
            first_seen_at=now,
            last_seen_at=now,
        )
    row.resolved_at, row.last_seen_at = None, now
    session.add(row)
    payload = {
        "agency": {
            "id": agency.id,
            "name": agency.name,
            "level": agency.level,
            "region_code": agency.region_code or None,
        },
        "report": None,
        "year": year,
        "source_url": None,
        "findings": [{**finding.to_json_dict(), "fingerprint": fingerprint}],
    }
    event_id = add_event(
        session,
        event_type=event_type_for(finding.rule),
        aggregate=missing_aggregate(agency, year),
        revision=None,
        fingerprint=fingerprint,
        payload=payload,
        now=now,
        agency_id=agency.id,
        agency=agency.name,
        region_code=agency.region_code,
        year=year,
        rule=finding.rule,
        severity=finding.severity,
    )
    row.event_id = row.event_id or event_id
    return event_id
