"""Pipeline benchmark: reports/s end to end (fetch → parse → check → store → event), and where the time goes.

    .venv/bin/python bench/pipeline_bench.py              # 1 and 2 parse workers, 20 hosts × 20 reports
    .venv/bin/python bench/pipeline_bench.py --parse-workers 2 --hosts 10 --reports 10

For each parse-worker count, a fresh deployment (:class:`~bench.simweb.stack.XxgkStack`: real
Redis — db 13 of the local server under its own key prefix — and a fresh PostgreSQL database)
crawls a simulated web whose politeness delay is short (``--delay``, 0.05 s), so that parsing
and storing rather than politeness bound the rate. Workers as in the ``Procfile``: crawl,
two fetch workers, N parse workers, alerts, beat, and the ``xxgk relay`` process publishing the
outbox to the Redis stream.

Figures:

- **reports/s**: reports stored ÷ seconds from the first request the server saw to the last
  report row written; **events/s** likewise to the last outbox row published;
- **latency**: per anomalous report, from the moment the server finished sending the document
  to the moment its first event was published (p50/p95);
- **where the time goes**: task time by stage from the workers' ``task_finished`` lines
  (count, total and mean ms), CPU seconds by worker kind (psutil) and of the PostgreSQL
  backends, and an in-process profile of the core on the same documents (extract + parse,
  rules) to separate the core's cost from the plumbing's.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.simweb.portal import PortalConfig, build_portal, page_key  # noqa: E402
from bench.simweb.process import SimWebProcess  # noqa: E402
from bench.simweb.stack import SHARED_REDIS, Sampler, XxgkStack, postgres_cpu_seconds  # noqa: E402

KINDS = ("crawl", "fetch", "parse", "alerts", "relay", "beat")


def task_times(stack: XxgkStack) -> dict[str, dict[str, float]]:
    """From the workers' JSON logs: per task name, how many ran and how long they took."""
    totals: dict[str, list[float]] = defaultdict(list)
    outcomes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for worker in stack.workers:
        for line in worker.log_path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") != "task_finished" or event.get("duration_ms") is None:
                continue
            name = str(event.get("task_name") or "?")
            totals[name].append(float(event["duration_ms"]))
            outcomes[name][str(event.get("outcome"))] += 1
    return {
        name: {
            "count": len(values),
            "total_s": round(sum(values) / 1000, 2),
            "mean_ms": round(statistics.mean(values), 1),
            "p95_ms": round(sorted(values)[int(0.95 * (len(values) - 1))], 1),
            "outcomes": dict(sorted(outcomes[name].items(), key=lambda kv: -kv[1])[:6]),
        }
        for name, values in sorted(totals.items())
    }


def core_profile(hosts: int, reports: int) -> dict[str, Any]:
    """The core alone on the same documents, in this process: extract + parse, then the rules."""
    from shared.parse import read_report
    from shared.rules import check_report

    portal = build_portal(PortalConfig(hosts=hosts, reports_per_host=reports))
    by_carrier: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for host in portal.hosts:
        for report in host.reports:
            page = host.lookup(report.path)
            assert page is not None
            started = time.perf_counter()
            record = read_report(
                page.body, url=f"http://{host.address}/{report.path}", content_type=page.content_type
            )
            parsed = time.perf_counter()
            check_report(record, today=date(2024, 6, 1))
            by_carrier[report.carrier].append((parsed - started, time.perf_counter() - parsed))
    return {
        carrier: {
            "documents": len(times),
            "read_ms": round(1000 * statistics.mean(t[0] for t in times), 1),
            "rules_ms": round(1000 * statistics.mean(t[1] for t in times), 2),
        }
        for carrier, times in sorted(by_carrier.items())
    }


def run(parse_workers: int, args: argparse.Namespace) -> dict[str, Any]:
    overrides = {
        "XXGK_LOG_LEVEL": "INFO",
        "XXGK_SWEEP_INTERVAL_S": "10",
        "XXGK_FETCH_CONCURRENCY": str(args.fetch_threads),
    }
    with (
        # no Crawl-delay hosts here: a host asking 2 s between requests would take a minute for
        # its pages and bound the run's rate (the crawl benchmark measures politeness)
        SimWebProcess(
            hosts=args.hosts, reports=args.reports, max_seconds=3600, config={"crawl_delay_every": 0}
        ) as web,
        XxgkStack(redis_url=args.redis_url, delay_s=args.delay, env_overrides=overrides) as stack,
    ):
        truth = web.truth()
        stack.import_sites(truth, web.port)
        stack.start_worker("crawl", concurrency=2)
        for _ in range(2):
            stack.start_worker("fetch", concurrency=args.fetch_threads)
        for _ in range(parse_workers):
            stack.start_worker("parse", pool=args.parse_pool, concurrency=args.parse_threads)
        stack.start_worker("alerts")
        stack.start_worker("relay")
        stack.start_worker("beat")
        time.sleep(args.warmup)
        samplers = {kind: Sampler(lambda k=kind: stack.worker_pids(k)) for kind in KINDS}
        samplers["postgres"] = Sampler(lambda: [], {"pg_cpu": lambda: postgres_cpu_seconds(stack.database)})
        for sampler in samplers.values():
            sampler.start()
        started = time.time()
        stack.crawl_all()
        completed = stack.wait_idle(timeout_s=args.timeout, settle_s=2.0)
        # the relay publishes what ingest wrote; wait for it too
        deadline = time.monotonic() + 120
        while (
            time.monotonic() < deadline
            and stack.sql("SELECT count(*) FROM outbox WHERE published_at IS NULL")[0][0]
        ):
            time.sleep(0.5)
        for sampler in samplers.values():
            sampler.stop()
        log = web.fetch_log()
        first_request = min(e.arrived for e in log)
        served = {}
        for e in log:
            if e.status == 200:
                served.setdefault((e.host, page_key(e.path)), e.finished)
        reports = stack.sql("SELECT count(*), extract(epoch FROM max(first_seen_at)) FROM reports")[0]
        outbox = stack.sql("SELECT count(*), extract(epoch FROM max(published_at)) FROM outbox")[0]
        first_events = stack.sql(
            "SELECT r.locator, extract(epoch FROM min(o.published_at))"
            " FROM outbox o JOIN reports r ON r.id = o.report_id"
            " WHERE o.published_at IS NOT NULL GROUP BY r.locator"
        )
        latencies = []
        for locator, published in first_events:
            from urllib.parse import urlsplit

            parts = urlsplit(locator)
            key = (parts.hostname, page_key(parts.path + (f"?{parts.query}" if parts.query else "")))
            if key in served and published is not None:
                latencies.append(float(published) - served[key])
        report_count, last_report = int(reports[0]), float(reports[1] or started)
        event_count, last_event = int(outbox[0]), float(outbox[1] or started)
        window = [first_request, max(last_report, last_event)]
        cpu = {kind: round(samplers[kind].cpu_between(*window), 1) for kind in KINDS}
        pg = samplers["postgres"].gauge_between("pg_cpu", window[0] - 1, window[1] + 1)
        cpu["postgres"] = round(pg[-1] - pg[0], 1) if len(pg) > 1 else None
        latencies.sort()
        result = {
            "parse_workers": parse_workers,
            "completed": completed,
            "requests": len(log),
            "reports": report_count,
            "events": event_count,
            "seconds_to_last_report": round(last_report - first_request, 1),
            "reports_per_s": round(report_count / (last_report - first_request), 2) if report_count else 0.0,
            "events_per_s": round(event_count / (last_event - first_request), 2) if event_count else 0.0,
            "latency_p50_s": round(latencies[len(latencies) // 2], 2) if latencies else None,
            "latency_p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 2) if latencies else None,
            "cpu_s_by_kind": cpu,
            "task_times": task_times(stack),
            "page_states": stack.page_states(),
        }
        print(
            f"[{parse_workers} parse worker(s)] reports={report_count} events={event_count} "
            f"reports/s={result['reports_per_s']} events/s={result['events_per_s']} "
            f"latency p50={result['latency_p50_s']} s p95={result['latency_p95_s']} s cpu={cpu}",
            flush=True,
        )
        return result


def main(argv: list[str] | None = None) -> int:
    # SIGTERM unwinds like Ctrl-C: workers, servers and databases this run made go too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--reports", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--parse-workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--fetch-threads", type=int, default=32, help="per fetch worker (two of them)")
    parser.add_argument("--parse-pool", default="threads", help="as in the Procfile")
    parser.add_argument("--parse-threads", type=int, default=2, help="threads per parse worker (Procfile: 2)")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--redis-url", default=SHARED_REDIS)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    results: dict[str, Any] = {"core_profile": core_profile(min(args.hosts, 5), args.reports)}
    print(f"core alone (in-process, per document): {results['core_profile']}", flush=True)
    for workers in args.parse_workers:
        results[f"parse_workers_{workers}"] = run(workers, args)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "results": results},
                indent=2,
                ensure_ascii=False,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
