"""Records and readers for the store and alert tests (no parser needed).

- :func:`make_record` builds a canonical record for one agency and year with
  consistent tables (so single-report rules stay quiet) and the cells a test
  wants to set.
- :func:`read_json_record` is a ``read`` for :func:`shared.store.ingest.ingest_document`
  whose documents *are* canonical records as JSON (plus ``narrative``) —
  editing one cell of such a file is editing one cell of the report.
- :func:`label_reader` reads the kit's seeds and corpus through their
  hand-made labels (the record a correct parser must produce) and takes the
  narrative from the raw text, for store tests that must not depend on the
  parser's progress.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.errors import NotAReport
from shared.record import Report, Source, empty_report
from shared.store.models import OutboxEvent, utc_now
from shared.store.outbox import make_event_id
from shared.templates import APPLICATION_COLUMNS

NARRATIVE = (
    "根据《中华人民共和国政府信息公开条例》要求，本机关编制本年度政府信息公开工作年度报告。"
    "本报告由总体情况、主动公开政府信息情况、收到和处理政府信息公开申请情况、政府信息公开行政复议、"
    "行政诉讼情况、存在的主要问题及改进情况、其他需要报告的事项六个部分组成。"
)


def make_record(
    agency: str,
    year: int,
    *,
    template: str | None = None,
    new_received: dict[str, int] | None = None,
    carried_over: dict[str, int] | None = None,
    carried_forward: dict[str, int] | None = None,
    in_force: dict[str, tuple[int, int, int]] | None = None,
    narrative: str = "",
    site_id_code: str | None = None,
    published_on: str | None = None,
) -> Report:
    """A consistent record: granted = new + carried over − carried forward, every blank a zero."""
    tpl = template or ("2021" if year >= 2021 else "2019")
    report = empty_report(
        tpl,
        agency=agency,
        year=year,
        title=f"{agency}{year}年政府信息公开工作年度报告",
        published_on=published_on or f"{year + 1}-01-20",
    )
    cols = [c.key for c in APPLICATION_COLUMNS if c.key != "total"]
    new = {c: (new_received or {}).get(c, 0) for c in cols}
    over = {c: (carried_over or {}).get(c, 0) for c in cols}
    forward = {c: (carried_forward or {}).get(c, 0) for c in cols}
    for row in report.applications:
        for c in cols:
            report.applications[row][c] = 0
    for c in cols:
        report.applications["new_received"][c] = new[c]
        report.applications["carried_over"][c] = over[c]
        report.applications["carried_forward"][c] = forward[c]
        report.applications["granted"][c] = new[c] + over[c] - forward[c]
        report.applications["total"][c] = new[c] + over[c] - forward[c]
    for values in report.applications.values():
        values["total"] = sum(values[c] or 0 for c in cols)
    for group in report.reviews.values():
        for key in group:
            group[key] = 0
    for item in report.active_disclosure.values():
        for key in item:
            item[key] = 0
    for item, (made, repealed, force) in (in_force or {}).items():
        report.active_disclosure[item].update({"made": made, "repealed": repealed, "in_force": force})
    report.evidence.narrative = narrative
    report.evidence.site_id_code = site_id_code
    return report


def record_bytes(report: Report) -> bytes:
    body = report.to_json_dict(with_findings=False)
    body["narrative"] = report.evidence.narrative
    body["site_id_code"] = report.evidence.site_id_code
    return json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8")


def read_json_record(
    data: bytes, *, path: str | None = None, url: str | None = None, content_type: str | None = None
) -> Report:
    try:
        body: dict[str, Any] = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise NotAReport("not a JSON record", source=url or path) from None
    narrative = body.pop("narrative", "")
    site_id_code = body.pop("site_id_code", None)
    body.pop("source", None)
    report = Report.model_validate(body)
    report.source = Source(url=url, path=None if url else path, media_type="application/json")
    report.evidence.narrative = narrative
    report.evidence.site_id_code = site_id_code
    return report


def label_reader(*label_dirs: Path):
    """A ``read`` that answers with the hand-made label of the file (by stem) and its text as narrative."""

    def read(
        data: bytes, *, path: str | None = None, url: str | None = None, content_type: str | None = None
    ) -> Report:
        stem = Path(path or url or "").stem
        for folder in label_dirs:
            label = folder / f"{stem}.json"
            if label.is_file():
                break
        else:
            raise NotAReport("no label for this file", source=path or url)
        body = json.loads(label.read_text(encoding="utf-8"))
        known = {
            k: body[k]
            for k in (
                "agency",
                "year",
                "template",
                "title",
                "published_on",
                "active_disclosure",
                "applications",
                "reviews",
            )
            if k in body
        }
        report = Report.model_validate(known)
        report.source = Source(url=url, path=None if url else path, media_type="text/plain")
        text = data.decode("utf-8", errors="replace")
        report.evidence.narrative = text.split("正文", 1)[-1]
        return report

    return read


def add_synthetic_events(session_factory, count: int, *, region_code: str = "350128") -> list[str]:
    """``count`` outbox rows as a report's findings would leave them (for relay tests and benchmarks)."""
    now = utc_now()
    rows = []
    for n in range(count):
        aggregate, fingerprint = f"某局|2021|https://example.gov.cn/{n}", f"{n:032x}"
        finding = {"rule": "carry_over_mismatch", "severity": "warning", "message": f"第{n}条", "cells": []}
        rows.append(
            OutboxEvent(
                event_id=make_event_id("report.anomalous", aggregate, 1, fingerprint),
                type="report.anomalous",
                aggregate=aggregate,
                agency="某局",
                region_code=region_code,
                year=2021,
                rule="carry_over_mismatch",
                severity="warning",
                created_at=now,
                payload={
                    "report": {"agency": "某局", "year": 2021},
                    "year": 2021,
                    "source_url": f"https://example.gov.cn/{n}",
                    "findings": [finding],
                },
            )
        )
    with session_factory() as session:
        session.add_all(rows)
        session.commit()
    return [row.event_id for row in rows]
