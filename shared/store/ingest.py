"""Ingest: bytes → record → rules → store + outbox, idempotent on (source, sha256).

:func:`ingest_document` is the one function both ``xxgk ingest`` and the
crawler's parse task call. What it does, in order:

1. If these bytes were already stored for this source (URL, else path), return
   ``unchanged`` — nothing is written.
2. Read the bytes with ``read`` *outside* any transaction (parsing is slow; the
   worker passes its sandboxed reader, with limits bound via ``functools.partial``).
   A :class:`~shared.errors.PermanentError` (unreadable, not a report …) is
   recorded on the ``source_documents`` row (status ``failed`` + reason) and
   returned as ``failed``; a :class:`~shared.errors.TransientError` propagates.
3. Run the single-report rules (``shared.rules.check_report``), then, in **one
   transaction**: the agency, the report (new, or a new revision when the
   canonical content changed — with a ``report.changed`` event carrying the
   cell-level diff), its cells, its findings (single-report and cross-year
   against the previous year) and their outbox rows; then the next year's
   reports of the same agency are re-checked against this one, so a cross-year
   mismatch is found once whichever year arrives first.

**Transactions: ingest_document commits** (its own transaction, or the
failure record), so pass a session with no pending work of your own. A
unique-constraint race with a concurrent ingest of the same source is retried;
database outages raise :class:`~shared.errors.StoreUnavailable`.

Concurrency: the agency row is locked (``SELECT … FOR UPDATE`` on PostgreSQL;
SQLite transactions are ``BEGIN IMMEDIATE``) before the cross-year reads, so
two years of one agency ingested at the same moment still meet.
"""

from __future__ import annotations

import hashlib
import json
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session, col, select

from shared.errors import PermanentError, StoreUnavailable, XxgkError
from shared.logging import get_logger
from shared.parse import read_report
from shared.record import Finding, ParseEvidence, Report
from shared.rules import CheckContext, FilerLevel, check_report
from shared.rules.cross import PREVIOUS_YEAR_RULES, check_against_previous, check_revision, diff_reports
from shared.rules.thresholds import Thresholds
from shared.store.agencies import region_code_from_site_id, resolve_agency, site_by_name
from shared.store.findings import reconcile_findings, resolve_missing, thresholds_from_settings
from shared.store.models import (
    AGENCY_LEVELS,
    Agency,
    Cell,
    ReportRevision,
    SourceDocument,
    StoredReport,
    utc_now,
)

log = get_logger(__name__)

IngestStatus = Literal["new", "unchanged", "revised", "failed"]
# a unique-constraint race (two workers, one source) is settled by running again
MAX_STORE_ATTEMPTS = 3
# source_documents.error_code of a document whose ingest crashed with a non-domain exception (a
# reader or rule bug): not one of the error tree's codes, so `xxgk db`-side queries can find them
INTERNAL_ERROR_CODE = "internal_error"
# SQLModel's stubs do not declare __table__, which SQLAlchemy's mapper sets on every table model
CELLS: sa.Table = Cell.__table__  # type: ignore[attr-defined]


@dataclass
class IngestResult:
    status: IngestStatus
    report_id: int | None = None
    revision: int | None = None
    findings: list[Finding] = field(default_factory=list)  # what this call found (empty when unchanged)
    event_ids: list[str] = field(default_factory=list)  # outbox rows this call added
    error: dict[str, Any] | None = None  # XxgkError.as_dict() when failed
    source: str | None = None
    sha256: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "report_id": self.report_id,
            "revision": self.revision,
            "findings": [f.to_json_dict() for f in self.findings],
            "event_ids": list(self.event_ids),
            "error": self.error,
            "source": self.source,
            "sha256": self.sha256,
        }


@contextmanager
def store_errors() -> Iterator[None]:
    """Database outages (connection lost, locked, serialisation failure) are transient: retry later.
    Integrity and programming errors are not, and propagate as they are."""
    try:
        yield
    except OperationalError as exc:
        raise StoreUnavailable(f"database unavailable: {exc.orig or exc}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable(f"database connection lost: {exc.orig or exc}") from exc
        raise


def source_locator(url: str | None, path: str | None, sha256: str) -> str:
    return url or path or f"sha256:{sha256}"


def content_hash(report: Report) -> str:
    """Of what a reader sees: identity, dates, cells and narrative — not the bytes, not the source."""
    body = report.to_json_dict(with_findings=False)
    body.pop("source", None)
    body.pop("confidence", None)
    body["narrative"] = " ".join(report.evidence.narrative.split())
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def ingest_document(
    session: Session,
    data: bytes,
    *,
    url: str | None = None,
    path: str | None = None,
    content_type: str | None = None,
    fetched_at: datetime | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
    archive_key: str | None = None,
    site_name: str | None = None,
    today: date,
    read: Callable[..., Report] = read_report,
) -> IngestResult:
    sha256 = hashlib.sha256(data).hexdigest()
    locator = source_locator(url, path, sha256)
    meta = {
        "url": url,
        "path": path if not url else None,
        "size_bytes": len(data),
        "content_type": content_type,
        "fetched_at": fetched_at,
        "etag": etag,
        "last_modified": last_modified,
        "archive_key": archive_key,
    }
    with store_errors():
        seen = _source_document(session, locator, sha256)
        seen_state = (seen.status, seen.report_id, seen.revision) if seen else None
        site = site_by_name(session, site_name)
        site_level = site.level if site and site.level in AGENCY_LEVELS else None
        session.rollback()  # no transaction (and on SQLite no write lock) while parsing
    if seen_state is not None and seen_state[0] == "parsed":
        return IngestResult("unchanged", seen_state[1], seen_state[2], source=locator, sha256=sha256)

    try:
        report = read(data, path=path, url=url, content_type=content_type)
    except PermanentError as exc:
        exc.with_source(locator, sha256)
        with store_errors():
            _record_failure(session, locator, sha256, exc, meta)
        log.info("document_failed", source=locator, sha256=sha256, error=exc.code)
        return IngestResult("failed", error=exc.as_dict(), source=locator, sha256=sha256)

    thresholds = thresholds_from_settings()
    context = CheckContext(
        today=today, thresholds=thresholds, filer_level=FilerLevel(site_level) if site_level else None
    )
    report.source.url = report.source.url or url
    report.source.path = report.source.path or (path if not url else None)
    report.source.sha256 = report.source.sha256 or sha256
    single = list(check_report(report, context=context))
    for attempt in range(1, MAX_STORE_ATTEMPTS + 1):
        try:
            with store_errors():
                result = _store(
                    session,
                    report,
                    single,
                    locator=locator,
                    sha256=sha256,
                    meta=meta,
                    site_name=site_name,
                    thresholds=thresholds,
                )
                session.commit()
        except IntegrityError:
            session.rollback()
            if attempt == MAX_STORE_ATTEMPTS:
                raise
            log.info("ingest_race_retried", source=locator, sha256=sha256, attempt=attempt)
            continue
        except BaseException:
            session.rollback()
            raise
        result.source, result.sha256 = locator, sha256
        log.info(
            "report_stored",
            source=locator,
            sha256=sha256,
            status=result.status,
            report_id=result.report_id,
            revision=result.revision,
            findings=len(result.findings),
            events=len(result.event_ids),
        )
        return result
    raise AssertionError("unreachable")


def _source_document(session: Session, locator: str, sha256: str) -> SourceDocument | None:
    return session.exec(
        select(SourceDocument).where(SourceDocument.locator == locator, SourceDocument.sha256 == sha256)
    ).first()


def _record_failure(
    session: Session, locator: str, sha256: str, exc: XxgkError, meta: dict[str, Any]
) -> None:
    for attempt in range(1, MAX_STORE_ATTEMPTS + 1):
        try:
            row = _source_document(session, locator, sha256) or SourceDocument(locator=locator, sha256=sha256)
            if row.status == "parsed" and row.id is not None:
                session.rollback()  # a concurrent ingest parsed it after all
                return
            for key, value in meta.items():
                setattr(row, key, value)
            row.status, row.error_code, row.error_message = "failed", exc.code, exc.message
            row.updated_at = utc_now()
            session.add(row)
            session.commit()
            return
        except IntegrityError:
            session.rollback()
            if attempt == MAX_STORE_ATTEMPTS:
                raise


class _InternalError(PermanentError):
    """A crash (not a domain error) as it is recorded on its source_documents row."""

    code = INTERNAL_ERROR_CODE


def _record_crash(session: Session, data: bytes, *, sha256: str, path: str, exc: Exception) -> None:
    """Leave a ``failed`` row for a crashed local ingest, so the document is visible and retriable
    like any other failure. Best effort: the crash itself is already logged."""
    locator = source_locator(None, path, sha256)
    meta = {"url": None, "path": path, "size_bytes": len(data)}
    try:
        session.rollback()  # the crash may have left the transaction half-done
        with store_errors():
            _record_failure(session, locator, sha256, _InternalError(f"{type(exc).__name__}: {exc}"), meta)
    except Exception as record_exc:  # the store is down too: the log line above is what remains
        session.rollback()
        log.error("ingest_crash_unrecorded", path=path, sha256=sha256, error=repr(record_exc))


def _published_on(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def load_record(revision: ReportRevision) -> Report:
    report = Report.model_validate(revision.record)
    report.evidence = ParseEvidence.model_validate(revision.evidence or {})
    return report


def current_record(session: Session, report: StoredReport) -> Report:
    rev = session.exec(
        select(ReportRevision).where(
            ReportRevision.report_id == report.id, ReportRevision.revision == report.revision
        )
    ).one()
    return load_record(rev)


def best_report(session: Session, agency_id: int, year: int) -> StoredReport | None:
    """The report that stands for (agency, year) in cross-year rules: most confident, then latest."""
    return session.exec(
        select(StoredReport)
        .where(StoredReport.agency_id == agency_id, StoredReport.year == year)
        .order_by(
            col(StoredReport.confidence).desc(), col(StoredReport.updated_at).desc(), col(StoredReport.id)
        )
    ).first()


def _store(
    session: Session,
    report: Report,
    single: list[Finding],
    *,
    locator: str,
    sha256: str,
    meta: dict[str, Any],
    site_name: str | None,
    thresholds: Thresholds,
) -> IngestResult:
    now = utc_now()
    seen = _source_document(session, locator, sha256)
    if seen is not None and seen.status == "parsed":
        return IngestResult("unchanged", seen.report_id, seen.revision)

    agency = _agency_for(session, report, site_name)
    if agency is not None:
        # serialise writers of one agency: the cross-year reads below must see each other's commits
        session.exec(select(Agency.id).where(Agency.id == agency.id).with_for_update()).first()

    stored = session.exec(
        select(StoredReport).where(StoredReport.locator == locator).with_for_update()
    ).first()
    digest = content_hash(report)
    before: Report | None = None
    if stored is not None:
        assert stored.id is not None
        current = session.exec(
            select(ReportRevision).where(
                ReportRevision.report_id == stored.id, ReportRevision.revision == stored.revision
            )
        ).one()
        if current.content_hash == digest:
            _upsert_source(
                session,
                seen,
                locator=locator,
                sha256=sha256,
                meta=meta,
                report=report,
                report_id=stored.id,
                revision=stored.revision,
            )
            return IngestResult("unchanged", stored.id, stored.revision)
        before = load_record(current)

    status: IngestStatus = "new" if stored is None else "revised"
    stored = stored or StoredReport(
        locator=locator, identity="", sha256=sha256, revision=0, first_seen_at=now
    )
    stored.revision += 1
    stored.identity = _identity(report, locator)
    stored.agency_id = agency.id if agency else None
    stored.year, stored.template, stored.title = report.year, report.template, report.title
    stored.published_on = _published_on(report.published_on)
    stored.confidence = report.confidence.score
    stored.source_url, stored.source_path = meta["url"], meta["path"]
    stored.sha256, stored.media_type, stored.updated_at = sha256, report.source.media_type, now
    session.add(stored)
    session.flush()
    assert stored.id is not None

    source = _upsert_source(
        session,
        seen,
        locator=locator,
        sha256=sha256,
        meta=meta,
        report=report,
        report_id=stored.id,
        revision=stored.revision,
    )
    session.add(
        ReportRevision(
            report_id=stored.id,
            revision=stored.revision,
            source_document_id=source.id,
            sha256=sha256,
            content_hash=digest,
            record=report.to_json_dict(with_findings=False),
            evidence=report.evidence.model_dump(mode="json"),
            created_at=now,
        )
    )
    # one multi-row INSERT: building 200 ORM objects per report would cost more than the rest of the ingest
    session.execute(sa.insert(CELLS), list(_cells(report, stored.id, stored.revision)))

    findings = list(single)
    diff: list[dict[str, Any]] | None = None
    if before is not None:
        changes = diff_reports(before, report)
        diff = [c.as_dict() for c in changes]
        findings.extend(check_revision(before, report, revision=stored.revision))
    if agency is not None and report.year is not None:
        assert agency.id is not None  # resolve_agency flushed it
        previous = best_report(session, agency.id, report.year - 1)
        if previous is not None:
            findings.extend(
                check_against_previous(report, current_record(session, previous), thresholds=thresholds)
            )
    outcome = reconcile_findings(
        session, report=stored, agency=agency, findings=findings, rules=None, now=now, diff=diff
    )
    event_ids = list(outcome.event_ids)

    if agency is not None and report.year is not None:
        assert agency.id is not None
        resolve_missing(session, agency_id=agency.id, year=report.year, now=now)
        event_ids.extend(_recheck_next_year(session, agency, report.year, now=now, thresholds=thresholds))
    return IngestResult(status, stored.id, stored.revision, findings=findings, event_ids=event_ids)


def _identity(report: Report, locator: str) -> str:
    """``Report.identity()`` with the store's locator (agency|year|source)."""
    return f"{report.agency or '?'}|{report.year or '?'}|{locator}"


def _agency_for(session: Session, report: Report, site_name: str | None) -> Agency | None:
    site = site_by_name(session, site_name)
    name = report.agency or (site.agency_name if site else None)
    if not name:
        return None
    region = (
        region_code_from_site_id(report.evidence.site_id_code) or (site.region_code if site else "") or ""
    )
    return resolve_agency(
        session,
        name,
        region_code=region,
        site_id_code=report.evidence.site_id_code,
        site=site.name if site else (report.evidence.site_name or None),
    )


def _upsert_source(
    session: Session,
    seen: SourceDocument | None,
    *,
    locator: str,
    sha256: str,
    meta: dict[str, Any],
    report: Report,
    report_id: int,
    revision: int,
) -> SourceDocument:
    row = seen or SourceDocument(locator=locator, sha256=sha256)
    for key, value in meta.items():
        setattr(row, key, value)
    row.media_type = report.source.media_type
    row.status, row.error_code, row.error_message = "parsed", None, None
    row.report_id, row.revision, row.updated_at = report_id, revision, utc_now()
    session.add(row)
    session.flush()
    return row


def _cells(report: Report, report_id: int, revision: int) -> Iterable[dict[str, Any]]:
    raw = report.evidence.raw_cells
    for path, value in report.iter_cells():
        section, row, column = path.split(".")
        yield {
            "report_id": report_id,
            "revision": revision,
            "section": section,
            "row_key": row,
            "column_key": column,
            "value": None if value is None else float(value),
            "raw_text": raw.get(path),
        }


def _recheck_next_year(
    session: Session, agency: Agency, year: int, *, now: datetime, thresholds: Thresholds
) -> list[str]:
    """The next year's reports of this agency, re-checked against whatever now stands for ``year``."""
    assert agency.id is not None
    following = session.exec(
        select(StoredReport).where(StoredReport.agency_id == agency.id, StoredReport.year == year + 1)
    ).all()
    if not following:
        return []
    previous = best_report(session, agency.id, year)
    previous_record = current_record(session, previous) if previous else None
    event_ids: list[str] = []
    for later in following:
        record = current_record(session, later)
        findings = (
            check_against_previous(record, previous_record, thresholds=thresholds) if previous_record else []
        )
        outcome = reconcile_findings(
            session, report=later, agency=agency, findings=findings, rules=PREVIOUS_YEAR_RULES, now=now
        )
        event_ids.extend(outcome.event_ids)
    return event_ids


# ------------------------------------------------------------------ many local files


@dataclass
class IngestSummary:
    results: list[tuple[Path, IngestResult]] = field(default_factory=list)
    crashed: list[tuple[Path, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"new": 0, "unchanged": 0, "revised": 0, "failed": 0, "crashed": len(self.crashed)}
        for _, result in self.results:
            out[result.status] += 1
        return out

    @property
    def event_count(self) -> int:
        return sum(len(r.event_ids) for _, r in self.results)


def expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Files as given, and the files under given directories (sorted, hidden ones skipped)."""
    files: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            files.extend(
                p
                for p in sorted(entry.rglob("*"))
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(entry).parts)
            )
        else:
            files.append(entry)
    return files


def ingest_paths(
    paths: Iterable[Path | str],
    *,
    session_factory: Callable[[], Session],
    today: date,
    read: Callable[..., Report] = read_report,
    site_name: str | None = None,
    progress: Callable[[Path, IngestResult | None, str | None], None] | None = None,
) -> IngestSummary:
    """Ingest local files as if crawled (source = the absolute path).

    ``progress(path, result, crash)`` is called after each file — the CLI draws
    its progress bar or plain lines from it. A file whose reading crashes with a
    non-domain exception (a parser bug) is logged and counted, and the run goes on."""
    summary = IngestSummary()
    for file in expand_paths(paths):
        absolute = file.resolve()
        try:
            data = absolute.read_bytes()
        except OSError as exc:
            summary.crashed.append((file, f"{exc.strerror}"))
            if progress:
                progress(file, None, exc.strerror)
            continue
        with session_factory() as session:
            try:
                result = ingest_document(
                    session, data, path=str(absolute), today=today, read=read, site_name=site_name
                )
            except StoreUnavailable:
                raise
            except Exception as exc:  # a bug in a reader or rule: loud in the log, the run goes on
                sha256 = hashlib.sha256(data).hexdigest()
                # the traceback as text: rendering it with locals for every file would stall a long run
                log.error(
                    "ingest_crashed",
                    path=str(absolute),
                    sha256=sha256,
                    error=f"{type(exc).__name__}: {exc}",
                    traceback="".join(traceback.format_exception(exc, limit=-8)),
                )
                _record_crash(session, data, sha256=sha256, path=str(absolute), exc=exc)
                summary.crashed.append((file, f"{type(exc).__name__}: {exc}"))
                if progress:
                    progress(file, None, f"{type(exc).__name__}: {exc}")
                continue
        summary.results.append((file, result))
        if progress:
            progress(file, result, None)
    return summary
