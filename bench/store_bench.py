"""Store and relay throughput: reports stored per second (SQLite, PostgreSQL), events relayed per second.

    .venv/bin/python bench/store_bench.py [--reports 300] [--events 2000] [--write]

- **ingest**: ``ingest_document`` on distinct synthetic 2021-format records
  (consistent tables, a 2 kB narrative, one agency per ten years so the
  cross-year rules run); ``read`` returns the prepared record, so the figure is
  rules + store (one transaction per report: report, revision, 200 cells,
  findings, outbox), not parsing. A second pass over the same bytes measures
  the idempotent ``unchanged`` path.
- **relay**: synthetic outbox rows published to a Redis stream (real Redis at
  ``XXGK_TEST_REDIS_URL`` / 127.0.0.1:6379 db 15 when reachable, else fakeredis)
  and delivered to one webhook endpoint through an in-memory sink that signs
  nothing away (the Standard Webhooks signature is computed for every request).

PostgreSQL runs in a throw-away schema of ``XXGK_TEST_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and is skipped when unreachable.
``--write`` replaces this script's section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from shared.logging import configure_logging  # noqa: E402
from shared.record import Report, empty_report  # noqa: E402
from shared.store.engine import make_engine, open_store  # noqa: E402
from shared.store.ingest import ingest_document  # noqa: E402
from shared.store.models import utc_now  # noqa: E402
from shared.store.outbox import add_event, new_webhook_secret  # noqa: E402
from shared.templates import APPLICATION_COLUMNS  # noqa: E402
from worker.alerts.relay import RelayConfig, relay_once  # noqa: E402
from worker.alerts.webhooks import WebhookResponse  # noqa: E402

PG_URL = os.environ.get("XXGK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("XXGK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SECTION = "## Store and relay (`bench/store_bench.py`)"
TODAY = date(2026, 6, 1)
NARRATIVE = "本机关认真贯彻落实《中华人民共和国政府信息公开条例》，持续深化政务公开工作，" * 40


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def synthetic_report(n: int) -> Report:
    agency, year = f"第{n // 10}县第{n % 7}局", 2015 + n % 10
    report = empty_report(
        "2021",
        agency=agency,
        year=year,
        title=f"{agency}{year}年政府信息公开工作年度报告",
        published_on=f"{year + 1}-01-20",
    )
    cols = [c.key for c in APPLICATION_COLUMNS if c.key != "total"]
    for row in report.applications.values():
        for c in cols:
            row[c] = 0
    for i, c in enumerate(cols):
        report.applications["new_received"][c] = (n + i) % 5
        report.applications["granted"][c] = (n + i) % 5
        report.applications["total"][c] = (n + i) % 5
    for row in report.applications.values():
        row["total"] = sum(row[c] or 0 for c in cols)
    for group in report.reviews.values():
        for key in group:
            group[key] = 0
    for item in report.active_disclosure.values():
        for key in item:
            item[key] = n % 3
    report.evidence.narrative = NARRATIVE + f"第{n}份。"
    return report


def bench_ingest(url: str, count: int) -> dict[str, float]:
    engine, session_factory = open_store(url)
    reports = {f"doc-{n}".encode(): synthetic_report(n) for n in range(count)}

    def read(data: bytes, **_kw: Any) -> Report:
        return reports[data].model_copy(deep=True)

    try:
        timings = {}
        for label in ("new", "unchanged"):
            started = time.perf_counter()
            for data in reports:
                with session_factory() as session:
                    result = ingest_document(
                        session, data, path=f"/bench/{data.decode()}", today=TODAY, read=read
                    )
                assert result.status == label, result
            timings[label] = count / (time.perf_counter() - started)
        return timings
    finally:
        engine.dispose()


class NullSink:
    def __init__(self) -> None:
        self.sent = 0

    def send(self, url: str, body: bytes, headers: dict[str, str]) -> WebhookResponse:
        self.sent += 1
        return WebhookResponse(200)


def bench_relay(url: str, count: int, redis_client: Any, stream: str) -> dict[str, float]:
    engine, session_factory = open_store(url)
    config = RelayConfig(
        batch=100,
        stream=stream,
        webhook_urls=("https://hooks.example.org/x",),
        webhook_secret=new_webhook_secret(),
    )
    try:
        # what the ingest bench left in the outbox is relayed first, untimed
        while relay_once(session_factory, redis_client, NullSink(), config=config).busy:
            pass
        redis_client.delete(stream)
        now = utc_now()
        with session_factory() as session:
            for n in range(count):
                add_event(
                    session,
                    event_type="report.anomalous",
                    aggregate=f"某局|2021|/bench/{n}",
                    revision=1,
                    fingerprint=f"{n:032x}",
                    now=now,
                    agency="某局",
                    region_code="350128",
                    year=2021,
                    rule="t3_identity",
                    severity="error",
                    payload={
                        "report": {"agency": "某局", "year": 2021},
                        "year": 2021,
                        "source_url": f"/bench/{n}",
                        "findings": [{"rule": "t3_identity"}],
                    },
                )
            session.commit()
        sink = NullSink()
        started = time.perf_counter()
        while relay_once(session_factory, redis_client, sink, config=config).busy:
            pass
        elapsed = time.perf_counter() - started
        assert sink.sent == count and redis_client.xlen(stream) == count
        return {"relayed": count / elapsed}
    finally:
        redis_client.delete(stream)
        engine.dispose()


def pg_schema_url() -> tuple[str, Any] | None:
    if not _reachable("127.0.0.1", 5432):
        return None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return f"{PG_URL}?options=-csearch_path%3D{schema}", drop


def redis_client() -> tuple[Any, str]:
    if _reachable("127.0.0.1", 6379):
        client = redis.Redis.from_url(REDIS_URL)
        return client, f"Redis {client.info()['redis_version']} (127.0.0.1, db 15)"
    import fakeredis

    return fakeredis.FakeRedis(), "fakeredis (no Redis reachable)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=int, default=300)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--write", action="store_true", help="replace this script's section of BENCHMARKS.md")
    args = parser.parse_args()

    configure_logging(level="WARNING")
    client, redis_label = redis_client()
    stream = f"xxgk:events:bench:{uuid.uuid4().hex[:8]}"
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite:///{tmp}/bench.sqlite3"
        rows.append(
            (
                "SQLite (file, WAL)",
                {**bench_ingest(sqlite, args.reports), **bench_relay(sqlite, args.events, client, stream)},
            )
        )
    pg = pg_schema_url()
    if pg is not None:
        url, drop = pg
        try:
            rows.append(
                (
                    "PostgreSQL (127.0.0.1)",
                    {**bench_ingest(url, args.reports), **bench_relay(url, args.events, client, stream)},
                )
            )
        finally:
            drop()
    client.close()

    load = os.getloadavg()[0]
    lines = [
        SECTION,
        "",
        f"`.venv/bin/python bench/store_bench.py --reports {args.reports} --events {args.events}` — "
        "synthetic 2021-format records through `ingest_document` (single-report and cross-year rules, "
        "one transaction per report with its 200 cells, findings and outbox rows; parsing excluded), "
        "then again (the idempotent `unchanged` path); then synthetic outbox rows relayed in batches of "
        f"100 to a stream on {redis_label} and to one signed webhook endpoint (in-memory receiver). "
        f"One run, load average {load:.1f} on {os.cpu_count()} CPUs while it ran (other jobs share the "
        "machine), so read these as orders of magnitude.",
        "",
        "| store | reports stored/s (new) | re-ingest/s (unchanged) | events relayed/s (stream + webhook) |",
        "| --- | --- | --- | --- |",
    ]
    for label, figures in rows:
        lines.append(
            f"| {label} | {figures['new']:.0f} | {figures['unchanged']:.0f} | {figures['relayed']:.0f} |"
        )
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(ROOT / "BENCHMARKS.md", text)
    return 0


def write_section(path: Path, text: str) -> None:
    """Replace this script's section (up to the next ``## ``), or append it; other sections stay."""
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    start = current.find(SECTION)
    if start == -1:
        updated = current.rstrip("\n") + "\n\n\n" + text
    else:
        end = current.find("\n## ", start + len(SECTION))
        updated = current[:start] + text + (current[end:] if end != -1 else "")
    path.write_text(updated.rstrip("\n") + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
