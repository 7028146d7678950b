"""The store on SQLite: idempotent ingest, revisions, cross-year rules, findings that keep their review."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel, select

from shared.parse import read_report
from shared.store.engine import current_revision, head_revision, make_engine, open_store
from shared.store.findings import review_finding
from shared.store.ingest import ingest_document, ingest_paths
from shared.store.missing import check_missing_reports
from shared.store.models import (
    Agency,
    Cell,
    FindingRecord,
    OutboxEvent,
    Site,
    SourceDocument,
    StoredReport,
    utc_now,
)
from shared.store.queries import list_findings, list_reports, show_report, table_counts
from tests.store_support import label_reader, make_record, read_json_record, record_bytes

TODAY = date(2026, 6, 1)
AGENCY = "某县财政局"


def ingest(session_factory, record_or_bytes, name, **kw):
    data = record_or_bytes if isinstance(record_or_bytes, bytes) else record_bytes(record_or_bytes)
    with session_factory() as session:
        return ingest_document(
            session, data, path=f"/reports/{name}", today=TODAY, read=read_json_record, **kw
        )


def events(session_factory, **where):
    with session_factory() as session:
        stmt = select(OutboxEvent)
        for key, value in where.items():
            stmt = stmt.where(getattr(OutboxEvent, key) == value)
        return list(session.exec(stmt).all())


# ------------------------------------------------------------------ schema


def test_a_fresh_sqlite_file_gets_the_schema_on_first_use(sqlite_url):
    engine = make_engine(sqlite_url)
    assert current_revision(engine) is None
    engine.dispose()
    engine, _ = open_store(sqlite_url)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
    engine.dispose()


# ------------------------------------------------------------------ idempotency and revisions


def test_the_same_bytes_twice_change_nothing(store):
    record = make_record(AGENCY, 2021, new_received={"natural_person": 3})
    first = ingest(store, record, "a.json")
    with store() as session:
        before = table_counts(session)
    second = ingest(store, record, "a.json")
    with store() as session:
        assert table_counts(session) == before
    assert (first.status, second.status) == ("new", "unchanged")
    assert second.report_id == first.report_id and second.revision == 1
    assert before["cells"] == 175 + 10 + 15  # one row per cell of the 2021 format


def test_one_changed_cell_is_one_revision_and_one_report_changed_event_naming_it(store):
    record = make_record(AGENCY, 2021, new_received={"natural_person": 3})
    ingest(store, record, "a.json")
    record.reviews["review"]["upheld"] = 1  # t4_sum will complain too; the point is the event
    record.reviews["review"]["total"] = 1
    revised = ingest(store, record, "a.json")
    assert (revised.status, revised.revision) == ("revised", 2)
    [changed] = events(store, type="report.changed")
    assert changed.payload["diff"] == [
        {"cell": "reviews.review.upheld", "before": 0, "after": 1},
        {"cell": "reviews.review.total", "before": 0, "after": 1},
    ]
    assert changed.payload["findings"][0]["cells"] == ["reviews.review.upheld", "reviews.review.total"]
    assert changed.payload["report"]["revision"] == 2
    with store() as session:
        assert len(session.exec(select(StoredReport)).all()) == 1
        revisions = {c.revision for c in session.exec(select(Cell)).all()}
        assert revisions == {1, 2}  # both revisions' cells are kept


def test_new_bytes_with_the_same_content_are_no_new_revision(store):
    record = make_record(AGENCY, 2021)
    ingest(store, record, "a.json")
    again = ingest(store, record_bytes(record) + b"\n\n", "a.json")
    assert (again.status, again.revision) == ("unchanged", 1)
    with store() as session:
        assert len(session.exec(select(SourceDocument)).all()) == 2  # both byte strings are on record
    assert events(store, type="report.changed") == []


def test_unreadable_input_is_recorded_on_its_source_document(store):
    result = ingest(store, b"\x00\x01 not a report", "junk.bin")
    assert result.status == "failed" and result.error["error"] == "not_a_report"
    with store() as session:
        [doc] = session.exec(select(SourceDocument)).all()
        assert (doc.status, doc.error_code, doc.report_id) == ("failed", "not_a_report", None)
    assert ingest(store, b"\x00\x01 not a report", "junk.bin").status == "failed"
    with store() as session:
        assert len(session.exec(select(SourceDocument)).all()) == 1


def test_http_metadata_and_site_are_kept(store):
    with store() as session:
        session.add(Site(name="某县门户", agency_name=AGENCY, level="department", region_code="341100"))
        session.commit()
    with store() as session:
        result = ingest_document(
            session,
            record_bytes(make_record(AGENCY, 2021)),
            url="https://www.example.gov.cn/a.html",
            etag='"abc"',
            last_modified="Mon, 01 Jan 2024 00:00:00 GMT",
            archive_key="ab/abcdef",
            fetched_at=utc_now(),
            site_name="某县门户",
            today=TODAY,
            read=read_json_record,
        )
    with store() as session:
        doc = session.exec(select(SourceDocument)).one()
        assert (doc.url, doc.etag, doc.archive_key) == (
            "https://www.example.gov.cn/a.html",
            '"abc"',
            "ab/abcdef",
        )
        agency = session.exec(select(Agency)).one()
        assert (agency.region_code, agency.level, agency.site) == ("341100", "department", "某县门户")
        assert (
            show_report(session, session.get(StoredReport, result.report_id))["revisions"][0]["etag"]
            == '"abc"'
        )


# ------------------------------------------------------------------ cross-year rules


@pytest.mark.parametrize("order", ["earlier_first", "later_first"])
def test_a_carry_over_mismatch_is_one_event_whichever_year_comes_first(store, order):
    last = make_record(
        AGENCY, 2020, new_received={"natural_person": 5}, carried_forward={"natural_person": 2}
    )
    this = make_record(AGENCY, 2021, new_received={"natural_person": 1}, carried_over={"natural_person": 1})
    pair = [(last, "2020.json"), (this, "2021.json")]
    for record, name in pair if order == "earlier_first" else reversed(pair):
        ingest(store, record, name)
    found = events(store, rule="carry_over_mismatch")
    assert len(found) == 1
    assert found[0].type == "report.anomalous" and found[0].year == 2021
    # ingesting both again changes nothing
    for record, name in pair:
        assert ingest(store, record, name).status == "unchanged"
    assert len(events(store, rule="carry_over_mismatch")) == 1


def test_the_event_id_is_the_same_whichever_order(tmp_path):
    ids = []
    for order in (0, 1):
        engine, factory = open_store(f"sqlite:///{tmp_path / f'{order}.sqlite3'}")
        last = make_record(
            AGENCY, 2020, carried_forward={"natural_person": 2}, new_received={"natural_person": 2}
        )
        this = make_record(AGENCY, 2021, carried_over={"natural_person": 1})
        pair = [(last, "2020.json"), (this, "2021.json")]
        for record, name in pair if order == 0 else reversed(pair):
            ingest(factory, record, name)
        ids.append([e.event_id for e in events(factory, rule="carry_over_mismatch")])
        engine.dispose()
    assert ids[0] == ids[1] and len(ids[0]) == 1


def test_a_corrected_previous_year_resolves_the_mismatch(store):
    last = make_record(
        AGENCY, 2020, new_received={"natural_person": 5}, carried_forward={"natural_person": 2}
    )
    this = make_record(AGENCY, 2021, new_received={"natural_person": 1}, carried_over={"natural_person": 1})
    ingest(store, this, "2021.json")
    ingest(store, last, "2020.json")
    fixed = make_record(
        AGENCY, 2020, new_received={"natural_person": 5}, carried_forward={"natural_person": 1}
    )
    ingest(store, fixed, "2020.json")
    with store() as session:
        row = session.exec(select(FindingRecord).where(FindingRecord.rule == "carry_over_mismatch")).one()
        assert row.resolved_at is not None
        assert list_findings(session, rule="carry_over_mismatch") == []


def test_the_same_body_across_carriers_and_spellings_is_one_agency(store):
    ingest(
        store,
        make_record(
            "郑庄子镇人民政府",
            2020,
            carried_forward={"natural_person": 1},
            new_received={"natural_person": 1},
        ),
        "2020.html",
    )
    ingest(store, make_record("郑庄子镇", 2021), "2021.pdf")
    with store() as session:
        [agency] = session.exec(select(Agency)).all()
        assert agency.level == "township"
    assert len(events(store, rule="carry_over_mismatch")) == 1


def test_a_review_status_survives_rechecks_and_revisions(store):
    last = make_record(
        AGENCY, 2020, new_received={"natural_person": 5}, carried_forward={"natural_person": 2}
    )
    this = make_record(AGENCY, 2021, new_received={"natural_person": 1}, carried_over={"natural_person": 1})
    ingest(store, last, "2020.json")
    ingest(store, this, "2021.json")
    with store() as session:
        [finding] = list_findings(session, rule="carry_over_mismatch")
        review_finding(
            session, finding["fingerprint"][:10], status="dismissed", note="上年报告口径不同", now=utc_now()
        )
        session.commit()
    this.evidence.narrative = "修订后的正文。"
    assert ingest(store, this, "2021.json").status == "revised"
    ingest(store, make_record(AGENCY, 2019), "2019.json")  # a neighbour arriving re-checks 2020, not 2021
    with store() as session:
        [again] = list_findings(session, rule="carry_over_mismatch")
        assert (again["status"], again["note"]) == ("dismissed", "上年报告口径不同")
        assert again["last_seen_revision"] == 2
    assert len(events(store, rule="carry_over_mismatch")) == 1


# ------------------------------------------------------------------ missing reports


def test_missing_report_for_a_registry_agency_after_deadline_and_grace(store):
    with store() as session:
        site = Site(name="某县财政局网站", agency_name=AGENCY, level="department", region_code="341100")
        site.created_at = site.created_at.replace(year=2024)
        session.add(site)
        session.commit()
    ingest(store, make_record(AGENCY, 2023), "2023.json", site_name="某县财政局网站")
    with store() as session:
        first = check_missing_reports(session, date(2025, 2, 14), grace_days=14)
        assert first == []  # 2024's deadline (2025-01-31) + 14 days not yet passed
        second = check_missing_reports(session, date(2025, 2, 15), grace_days=14)
        again = check_missing_reports(session, date(2025, 3, 1), grace_days=14)
    assert len(second) == 1 and again == []
    [missing] = events(store, type="report.missing")
    assert (missing.year, missing.region_code, missing.severity) == (2024, "341100", "error")
    ingest(store, make_record(AGENCY, 2024), "2024.json", site_name="某县财政局网站")
    with store() as session:
        assert list_findings(session, rule="missing_report") == []


# ------------------------------------------------------------------ the kit's seeds and corpus


def _kit_files(seeds_dir: Path, corpus_dir: Path) -> list[Path]:
    return sorted(seeds_dir.glob("*.txt")) + sorted((corpus_dir / "raw").iterdir())


def test_seeds_and_corpus_twice_give_the_same_row_counts_as_once(store, seeds_dir, corpus_dir):
    files = _kit_files(seeds_dir, corpus_dir)
    first = ingest_paths(files, session_factory=store, today=TODAY, read=read_report)
    with store() as session:
        once = table_counts(session)
    second = ingest_paths(files, session_factory=store, today=TODAY, read=read_report)
    with store() as session:
        twice = table_counts(session)
    assert once == twice
    assert first.counts()["crashed"] == 0
    assert second.counts()["unchanged"] == len(files) - first.counts()["failed"]
    assert once["reports"] == first.counts()["new"] > 0


def test_changing_one_cell_of_one_seed_file_is_one_revision_and_one_event_naming_it(
    store, seeds_dir, tmp_path
):
    kit = [seeds_dir / "000_230915953f1370e3.txt", seeds_dir / "004_f6bc76c28a8b0cd7.txt"]
    copies = []
    for path in kit:
        copies.append(tmp_path / path.name)
        copies[-1].write_bytes(path.read_bytes())
    ingest_paths(copies, session_factory=store, today=TODAY, read=read_report)
    with store() as session:
        before = table_counts(session)
    # seed 004 (固镇县城市管理局 2020): 行政许可 处理决定数量 231 → 232, a cell no sum constrains
    data = copies[1].read_bytes()
    assert data.count("\t\u3000231\n".encode()) == 1
    copies[1].write_bytes(data.replace("\t\u3000231\n".encode(), "\t\u3000232\n".encode()))
    summary = ingest_paths(copies, session_factory=store, today=TODAY, read=read_report)
    assert [r.status for _, r in summary.results] == ["unchanged", "revised"]
    with store() as session:
        after = table_counts(session)
        [changed] = session.exec(select(OutboxEvent).where(OutboxEvent.type == "report.changed")).all()
    assert after["reports"] == before["reports"]
    assert after["report_revisions"] == before["report_revisions"] + 1
    assert changed.payload["diff"] == [
        {"cell": "active_disclosure.licensing.decisions", "before": 231, "after": 232}
    ]
    assert changed.payload["findings"][0]["cells"] == ["active_disclosure.licensing.decisions"]
    assert changed.payload["report"]["agency"] == "固镇县城市管理局"


PINGTAN = "平潭综合实验区"
FINANCE = "平潭综合实验区财政金融局"


def test_the_pingtan_series_through_the_cross_year_rules(store, corpus_dir, capsys):
    """Corpus 002–008 (the zone, 2019–2025) and P001–P007 (its finance bureau), read through their labels."""
    raw = corpus_dir / "raw"
    files = [raw / f"{n:03d}.txt" for n in range(2, 9)] + [raw / f"P{n:03d}.txt" for n in range(1, 8)]
    ingest_paths(
        reversed(files), session_factory=store, today=TODAY, read=label_reader(corpus_dir / "labels")
    )
    with store() as session:
        cross = [f for f in list_findings(session, limit=None) if f["scope"] == "cross"]
        reports = list_reports(session, limit=None)
    by_rule: dict[str, list[tuple[str, int]]] = {}
    for f in cross:
        by_rule.setdefault(f["rule"], []).append((f["agency"], f["year"]))
    with capsys.disabled():
        print("\nPingtan cross-year findings (labels as records, raw text as narrative):")
        for rule, where in sorted(by_rule.items()):
            print(f"  {rule}: {sorted(where)}")
    assert len(reports) == 14
    assert {r["agency"] for r in reports} == {PINGTAN, FINANCE}
    # the two documented breaks of 现行有效件数 (corpus README): P003→P004 and P005→P006
    assert sorted(by_rule.get("in_force_rollforward", [])) == [(FINANCE, 2022), (FINANCE, 2024)]
    # every year's 上年结转 matches the year before's 结转下年度 in both series
    assert "carry_over_mismatch" not in by_rule
    assert "cloned_tables" not in by_rule


def test_a_crashing_reader_leaves_a_failed_row_and_a_log_line_with_its_sha256(store, tmp_path):
    import hashlib

    from structlog.testing import capture_logs

    from shared.store.ingest import INTERNAL_ERROR_CODE

    bad = tmp_path / "crash.html"
    bad.write_bytes(b"<html>the reader trips over this</html>")
    digest = hashlib.sha256(bad.read_bytes()).hexdigest()

    def buggy_reader(data, **_kw):
        raise ZeroDivisionError("a parser bug")

    with capture_logs() as logs:
        summary = ingest_paths([bad], session_factory=store, today=TODAY, read=buggy_reader)
    assert [why for _file, why in summary.crashed] == ["ZeroDivisionError: a parser bug"]
    [logged] = [e for e in logs if e["event"] == "ingest_crashed"]
    assert logged["sha256"] == digest and logged["path"] == str(bad.resolve())
    with store() as session:
        [doc] = session.exec(select(SourceDocument)).all()
    assert (doc.status, doc.error_code, doc.sha256, doc.path) == (
        "failed",
        INTERNAL_ERROR_CODE,
        digest,
        str(bad.resolve()),
    )
    assert doc.error_message.startswith("ZeroDivisionError")
