"""Findings in the store: keyed by fingerprint, reconciled on every check, reviewed by people.

:func:`reconcile_findings` is the one place findings are written. Given the
findings a check produced for one report and the rules that check covers, it

- inserts the new ones (status ``open``) and adds one outbox event each;
- refreshes the ones still present (message, numbers, last-seen revision) without
  announcing them again — a new revision re-announces only what is new in it;
- marks as resolved the ones of those rules that are gone;
- never touches ``status`` (open / confirmed / dismissed): a person's verdict
  survives re-checks, re-parses and new revisions.

A fingerprint is ``Finding.fingerprint(report identity)``; ``report_changed``
findings belong to one revision, so theirs also names the revision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from shared.errors import ConfigError
from shared.record import Finding
from shared.rules.cross import RULES_BY_ID as CROSS_RULES_BY_ID
from shared.rules.thresholds import DEFAULT_THRESHOLDS, Thresholds
from shared.settings import get_settings
from shared.store.models import REVIEW_STATUSES, Agency, FindingRecord, StoredReport
from shared.store.outbox import add_event, event_type_for

# findings of these rules record one event in a report's history and are never "resolved"
PER_REVISION_RULES: frozenset[str] = frozenset({"report_changed"})
# how many diff entries a report.changed payload carries (webhook payloads stay small)
MAX_DIFF_IN_PAYLOAD = 100


def thresholds_from_settings() -> Thresholds:
    """The rules' thresholds with the local township deadline (``XXGK_TOWNSHIP_DEADLINE_MMDD``)."""
    return DEFAULT_THRESHOLDS.with_township_deadline(get_settings().township_deadline_mmdd)


def finding_fingerprint(identity: str, finding: Finding, *, revision: int | None = None) -> str:
    if finding.rule in PER_REVISION_RULES:
        identity = f"{identity}#r{revision}"
    return finding.fingerprint(identity)


def report_payload(report: StoredReport, agency: Agency | None) -> dict[str, Any]:
    """The report's identity as events carry it."""
    return {
        "id": report.id,
        "identity": report.identity,
        "agency": agency.name if agency else None,
        "agency_id": agency.id if agency else None,
        "agency_level": agency.level if agency else None,
        "region_code": (agency.region_code or None) if agency else None,
        "year": report.year,
        "template": report.template,
        "title": report.title,
        "published_on": report.published_on.isoformat() if report.published_on else None,
        "revision": report.revision,
        "source_url": report.source_url or report.source_path,
        "sha256": report.sha256,
    }


def finding_payload(finding: Finding, fingerprint: str) -> dict[str, Any]:
    return {**finding.to_json_dict(), "fingerprint": fingerprint}


@dataclass
class Reconciled:
    current: list[FindingRecord] = field(default_factory=list)
    created: list[FindingRecord] = field(default_factory=list)
    resolved: list[FindingRecord] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)


def reconcile_findings(
    session: Session,
    *,
    report: StoredReport,
    agency: Agency | None,
    findings: Iterable[Finding],
    rules: frozenset[str] | None,
    now: datetime,
    diff: list[dict[str, Any]] | None = None,
) -> Reconciled:
    """Write what one check of ``report`` found. ``rules`` is what the check covered (``None``: every
    rule except the per-revision ones); findings of other rules are left alone."""
    assert report.id is not None
    out = Reconciled()
    wanted: dict[str, Finding] = {}
    for f in findings:
        wanted.setdefault(finding_fingerprint(report.identity, f, revision=report.revision), f)
    existing = (
        {
            row.fingerprint: row
            for row in session.exec(
                select(FindingRecord).where(col(FindingRecord.fingerprint).in_(list(wanted)))
            ).all()
        }
        if wanted
        else {}
    )

    for fingerprint, f in wanted.items():
        row = existing.get(fingerprint)
        if row is None:
            row = FindingRecord(
                fingerprint=fingerprint,
                report_id=report.id,
                agency_id=agency.id if agency else None,
                year=report.year,
                rule=f.rule,
                severity=f.severity,
                scope="cross" if f.rule in CROSS_RULES_BY_ID else "report",
                message=f.message,
                cells=list(f.cells),
                expected=f.expected,
                actual=f.actual,
                first_seen_revision=report.revision,
                last_seen_revision=report.revision,
                first_seen_at=now,
                last_seen_at=now,
            )
            out.created.append(row)
        else:
            row.message, row.cells, row.expected, row.actual = f.message, list(f.cells), f.expected, f.actual
            row.severity, row.report_id, row.year = f.severity, report.id, report.year
            row.last_seen_revision, row.last_seen_at = report.revision, now
            if row.resolved_at is not None:
                row.resolved_at = None
                out.created.append(row)  # it is back: tell subscribers again
        session.add(row)
        out.current.append(row)

    for row in out.created:
        payload: dict[str, Any] = {
            "report": report_payload(report, agency),
            "year": report.year,
            "source_url": report.source_url or report.source_path,
            "findings": [finding_payload(wanted[row.fingerprint], row.fingerprint)],
        }
        if diff is not None and row.rule == "report_changed":
            payload["diff"] = diff[:MAX_DIFF_IN_PAYLOAD]
            payload["diff_total"] = len(diff)
        event_id = add_event(
            session,
            event_type=event_type_for(row.rule),
            aggregate=report.identity,
            revision=report.revision,
            fingerprint=row.fingerprint,
            payload=payload,
            now=now,
            report_id=report.id,
            agency_id=agency.id if agency else None,
            agency=agency.name if agency else None,
            region_code=agency.region_code if agency else None,
            year=report.year,
            rule=row.rule,
            severity=row.severity,
        )
        if event_id:
            row.event_id = row.event_id or event_id
            out.event_ids.append(event_id)

    stale = select(FindingRecord).where(
        FindingRecord.report_id == report.id,
        col(FindingRecord.resolved_at).is_(None),
        col(FindingRecord.rule).not_in(PER_REVISION_RULES),
    )
    if rules is not None:
        stale = stale.where(col(FindingRecord.rule).in_(rules))
    for row in session.exec(stale).all():
        if row.fingerprint not in wanted:
            row.resolved_at = now
            session.add(row)
            out.resolved.append(row)
    return out


def resolve_missing(session: Session, *, agency_id: int, year: int, now: datetime) -> int:
    """A report for (agency, year) arrived: its ``missing_report`` finding is resolved."""
    rows = session.exec(
        select(FindingRecord).where(
            FindingRecord.rule == "missing_report",
            FindingRecord.agency_id == agency_id,
            FindingRecord.year == year,
            col(FindingRecord.resolved_at).is_(None),
        )
    ).all()
    for row in rows:
        row.resolved_at = now
        session.add(row)
    return len(rows)


def find_finding(session: Session, ref: str) -> FindingRecord | None:
    """By numeric id, full fingerprint, or a unique fingerprint prefix (at least 6 characters)."""
    if ref.isdigit():
        row = session.get(FindingRecord, int(ref))
        if row is not None:
            return row
    row = session.exec(select(FindingRecord).where(FindingRecord.fingerprint == ref)).first()
    if row is not None or len(ref) < 6:
        return row
    matches = session.exec(
        select(FindingRecord).where(col(FindingRecord.fingerprint).startswith(ref)).limit(2)
    ).all()
    return matches[0] if len(matches) == 1 else None


def review_finding(
    session: Session, ref: str, *, status: str, note: str | None, now: datetime
) -> FindingRecord:
    """Confirm or dismiss (or reopen) a finding; the verdict outlives re-checks."""
    if status not in REVIEW_STATUSES:
        raise ConfigError(f"unknown review status {status!r}; expected one of {', '.join(REVIEW_STATUSES)}")
    row = find_finding(session, ref)
    if row is None:
        raise LookupError(f"no finding {ref!r} (give an id or a fingerprint)")
    row.status = status
    row.note = note if note is not None else row.note
    row.reviewed_at = now
    session.add(row)
    return row
