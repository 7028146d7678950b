"""Crawl benchmark: xxgk-watch vs Scrapy vs scrapy-redis on the same simulated government web.

    .venv/bin/python bench/crawl_bench.py                       # 50 hosts × 40 reports, 1 s delay
    .venv/bin/python bench/crawl_bench.py --quick               # 10 hosts × 10 reports, 0.5 s
    .venv/bin/python bench/crawl_bench.py --crawlers xxgk,scrapy --json out.json

One simulated web (:mod:`bench.simweb`, hosts ``127.0.1.1 …``, one listener per address so
every crawler sees distinct hosts) is crawled in turn by:

``xxgk``          the real stack: ``xxgk sites import`` + ``xxgk crawl``; Celery workers as in the
                  ``Procfile`` — crawl (prefork 1), **two fetch workers** (threads), parse, alerts,
                  beat — on Redis (db 13 of the local server, own key prefix) and a fresh PostgreSQL
                  database; then a second pass (``xxgk crawl`` again: conditional GETs).
``xxgk-fetch-only`` the same without a parse worker: the crawler alone, as Scrapy runs here (one pass).
``scrapy``        one Scrapy process, ``CrawlSpider`` + default ``LinkExtractor`` (attachments
                  allowed), ``DOWNLOAD_DELAY`` = the delay, ``RANDOMIZE_DOWNLOAD_DELAY=False``,
                  ``CONCURRENT_REQUESTS_PER_DOMAIN=1``, ``ROBOTSTXT_OBEY=True``, AutoThrottle off,
                  ``DownloaderAwarePriorityQueue`` (Scrapy's broad-crawl advice).
``scrapy-cache``  the same with ``HTTPCACHE_ENABLED`` + ``RFC2616Policy`` and ``Cache-Control:
                  max-age=0`` on requests (revalidate, do not trust the heuristic freshness): two
                  passes, for the 304 ratio Scrapy can reach.
``scrapy-redis``  ``RedisCrawlSpider`` in ``--redis-procs`` processes (4) sharing a scheduler and
                  dupefilter in Redis, each with the same per-process politeness settings.

All figures come from the simulated web's request log (:mod:`bench.simweb.analysis`), never
from a crawler's counters: pages/s, efficiency against the politeness-bound maximum,
violations per host (overlap, or less than ``max(delay, Crawl-delay)`` between arrivals),
robots.txt-disallowed requests, recall of report documents, the 304 ratio of a second pass,
the gap after a ``429 Retry-After``, CPU seconds per 1,000 pages (process trees sampled with
psutil over the crawl window; PostgreSQL backends separately), Redis bytes per known URL
(``MEMORY USAGE`` of the crawler's keys, peak during the crawl).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.simweb import analysis  # noqa: E402
from bench.simweb.analysis import LogEntry  # noqa: E402
from bench.simweb.process import SimWebProcess  # noqa: E402
from bench.simweb.stack import SHARED_REDIS, Sampler, XxgkStack, postgres_cpu_seconds  # noqa: E402

RETRY_AFTER_HOST_INDEX = 2  # this host answers its column page once with 429 + Retry-After


# --------------------------------------------------------------------------- Scrapy child process


def scrapy_child(args: argparse.Namespace) -> int:
    """Runs inside the Scrapy process: one spider, settings from the command line."""
    from scrapy.crawler import CrawlerProcess
    from scrapy.linkextractors import LinkExtractor
    from scrapy.spiders import CrawlSpider, Rule

    entry_urls = json.loads(Path(args.urls_file).read_text())
    hosts = sorted({url.split("/")[2].split(":")[0] for url in entry_urls})
    settings: dict[str, Any] = {
        "BOT_NAME": "simweb-bench",
        "USER_AGENT": "scrapy-bench/1.0 (loopback benchmark)",
        "ROBOTSTXT_OBEY": True,
        "DOWNLOAD_DELAY": args.delay,
        "RANDOMIZE_DOWNLOAD_DELAY": False,
        "CONCURRENT_REQUESTS": max(16, len(hosts)),
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "AUTOTHROTTLE_ENABLED": False,
        "DOWNLOAD_TIMEOUT": 20,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "INFO",
        "LOGSTATS_INTERVAL": 60,
        "CLOSESPIDER_TIMEOUT": args.timeout,
    }
    if args.mode in ("scrapy", "scrapy-cache"):
        settings["SCHEDULER_PRIORITY_QUEUE"] = "scrapy.pqueues.DownloaderAwarePriorityQueue"
    if args.mode == "scrapy-cache":
        settings.update(
            {
                "HTTPCACHE_ENABLED": True,
                "HTTPCACHE_POLICY": "scrapy.extensions.httpcache.RFC2616Policy",
                "HTTPCACHE_DIR": args.cache_dir,
                "DEFAULT_REQUEST_HEADERS": {
                    "Cache-Control": "max-age=0",
                    "Accept-Language": "zh-CN,zh;q=0.9",
                },
            }
        )
    if args.mode == "scrapy-redis":
        settings.update(
            {
                "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
                "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
                "SCHEDULER_PERSIST": True,
                "REDIS_URL": args.redis_url,
                "MAX_IDLE_TIME_BEFORE_CLOSE": args.idle_close,
            }
        )

    rules = (Rule(LinkExtractor(deny_extensions=[]), callback="parse_page", follow=True),)

    def parse_page(self: Any, response: Any) -> Any:
        yield {"url": response.url, "status": response.status}

    base: type = CrawlSpider
    attributes: dict[str, Any] = {
        "name": args.spider_name,
        "allowed_domains": hosts,
        "rules": rules,
        "parse_page": parse_page,
    }
    if args.mode == "scrapy-redis":
        from scrapy_redis.spiders import RedisCrawlSpider

        base = RedisCrawlSpider
        attributes["redis_key"] = f"{args.spider_name}:start_urls"
    else:
        attributes["start_urls"] = entry_urls
    spider = type("SimwebSpider", (base,), attributes)
    process = CrawlerProcess(settings)
    process.crawl(spider)
    process.start()
    return 0


# --------------------------------------------------------------------------- measuring one pass


def pass_metrics(
    entries: list[LogEntry],
    truth: dict[str, Any],
    args: argparse.Namespace,
    *,
    cpu_s: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    delays = analysis.host_delays(truth, args.delay)
    fault_host = (
        truth["hosts"][RETRY_AFTER_HOST_INDEX]["address"]
        if len(truth["hosts"]) > RETRY_AFTER_HOST_INDEX
        else None
    )
    polite = analysis.politeness(entries, delays, tolerance_s=args.tolerance)
    lenient = analysis.politeness(entries, delays, tolerance_s=0.1 * args.delay)
    crawl_delay_hosts = [h["address"] for h in truth["hosts"] if h.get("crawl_delay_s")]
    # efficiency over the plain hosts: no injected fault, no Crawl-delay (which Scrapy ignores)
    unequal_hosts = [*crawl_delay_hosts, *([fault_host] if fault_host else [])]
    rate = analysis.throughput(entries, delays, exclude_hosts=unequal_hosts)
    # the like-for-like rate: hosts every crawler owes the same spacing (Scrapy does not apply
    # Crawl-delay, so a run's overall window is not equal politeness)
    plain = [e for e in entries if e.host not in set(unequal_hosts)]
    plain_window = (max(e.finished for e in plain) - min(e.arrived for e in plain)) if plain else 0.0
    ratio, hits, conditional_pool = analysis.not_modified_ratio(entries, truth)
    found_ratio, found, wanted = analysis.recall(entries, truth)
    retry_gaps = analysis.gap_after(entries, fault_host, status=429) if fault_host else []
    metrics: dict[str, Any] = {
        "requests": rate.requests,
        "seconds": round(rate.seconds, 2),
        "pages_per_s": round(rate.pages_per_s, 2),
        "bound_pages_per_s": round(rate.bound_requests_per_s, 2),
        "plain_hosts": len({e.host for e in plain}),
        "plain_requests": len(plain),
        "plain_seconds": round(plain_window, 2),
        "plain_pages_per_s": round(len(plain) / plain_window, 2) if plain_window > 0 else None,
        "plain_bound_pages_per_s": round(
            sum(1.0 / delays[h] for h in {e.host for e in plain} if delays.get(h)), 2
        ),
        "efficiency": None if rate.efficiency is None else round(rate.efficiency, 3),
        "hosts": rate.hosts,
        "violations": polite.violations,
        "hosts_with_violations": polite.hosts_with_violations,
        "overlapping": sum(h.overlapping for h in polite.hosts.values()),
        "violations_lenient": lenient.violations,
        "hosts_with_violations_lenient": lenient.hosts_with_violations,
        "crawl_delay_violations": polite.crawl_delay_violations(truth),
        "crawl_delay_hosts": len(crawl_delay_hosts),
        "min_gap_s": None if polite.min_gap_s is None else round(polite.min_gap_s, 3),
        "disallowed_requests": analysis.disallowed_requests(entries, truth),
        "recall": round(found_ratio, 3),
        "documents_found": found,
        "documents": wanted,
        "not_modified_ratio": None if ratio is None else round(ratio, 3),
        "not_modified": hits,
        "validator_host_requests": conditional_pool,
        "retry_after_s": args.retry_after,
        "gap_after_429_s": [round(g, 2) for g in retry_gaps],
        "retry_after_respected": all(g >= args.retry_after - 0.05 for g in retry_gaps)
        if retry_gaps
        else None,
        "by_kind": analysis.requests_by_kind(entries, truth),
        "violations_by_host": {h: p.violations for h, p in sorted(polite.hosts.items()) if p.violations},
    }
    if cpu_s is not None and rate.requests:
        metrics["cpu_s"] = round(cpu_s, 2)
        metrics["cpu_s_per_1000_pages"] = round(cpu_s * 1000 / rate.requests, 2)
    metrics.update(extra or {})
    return metrics


def crawl_window(entries: list[LogEntry]) -> tuple[float, float]:
    if not entries:
        now = time.time()
        return now, now
    return min(e.arrived for e in entries), max(e.finished for e in entries)


def add_retry_after_fault(web: SimWebProcess, truth: dict[str, Any], args: argparse.Namespace) -> None:
    web.clear_faults()
    if len(truth["hosts"]) > RETRY_AFTER_HOST_INDEX:
        host = truth["hosts"][RETRY_AFTER_HOST_INDEX]
        web.add_faults(
            [
                {
                    "host": host["address"],
                    "kind": "status",
                    "status": 429,
                    "retry_after": str(int(args.retry_after)),
                    "count": 1,
                    "path_prefix": host["entry_path"],
                }
            ]
        )


# --------------------------------------------------------------------------- xxgk


def run_xxgk(
    web: SimWebProcess, truth: dict[str, Any], args: argparse.Namespace, *, fetch_only: bool = False
) -> dict[str, Any]:
    """``fetch_only``: no parse worker — the crawler alone, the way Scrapy runs here (reports are
    left fetched, their ingest messages queued); one pass."""
    overrides = {
        "XXGK_SWEEP_INTERVAL_S": "10",
        "XXGK_FETCH_TIMEOUT_S": "20",
        "XXGK_FETCH_CONCURRENCY": str(args.fetch_threads),
    }
    results: dict[str, Any] = {}
    with XxgkStack(redis_url=args.redis_url, delay_s=args.delay, env_overrides=overrides) as stack:
        stack.import_sites(truth, web.port)
        stack.start_worker("crawl", concurrency=2)
        for _ in range(args.fetch_workers):
            stack.start_worker("fetch", concurrency=args.fetch_threads)
        if not fetch_only:
            stack.start_worker("parse", concurrency=args.parse_concurrency, pool=args.parse_pool)
        stack.start_worker("alerts")
        stack.start_worker("beat")
        time.sleep(args.warmup)
        fetch_roles = ("crawl", "fetch")
        for number in (1,) if fetch_only else (1, 2):
            web.reset_log()
            if number == 1:
                add_retry_after_fault(web, truth, args)
            else:
                web.clear_faults()
            crawl_sampler = Sampler(
                lambda: stack.worker_pids(*fetch_roles),
                {
                    "redis_bytes": lambda: sum(stack.redis_bytes().values()),
                    "pg_cpu": lambda: postgres_cpu_seconds(stack.database),
                },
            ).start()
            all_sampler = Sampler(stack.worker_pids).start()
            started = time.time()
            stack.crawl_all()
            if fetch_only:
                finished = _wait_fetched(stack, timeout_s=args.timeout)
            else:
                finished = stack.wait_idle(timeout_s=args.timeout, settle_s=3.0)
            crawl_sampler.stop()
            all_sampler.stop()
            entries = web.fetch_log()
            t0, t1 = crawl_window(entries)
            known = int(stack.sql("SELECT count(*) FROM pages")[0][0])
            redis_peak = max(crawl_sampler.gauge_between("redis_bytes", t0, t1) or [0])
            pg_cpu = crawl_sampler.gauge_between("pg_cpu", t0 - 1, t1 + 1)
            extra = {
                "completed": finished,
                "wall_s_to_idle": round(time.time() - started, 1),
                "known_urls": known,
                "redis_peak_bytes": int(redis_peak),
                "redis_bytes_per_known_url": round(redis_peak / known, 1) if known else None,
                "redis_end_bytes": int(sum(stack.redis_bytes().values())),
                "cpu_all_workers_s": round(all_sampler.cpu_between(t0, t1), 2),
                "postgres_backend_cpu_s": round(pg_cpu[-1] - pg_cpu[0], 2) if len(pg_cpu) > 1 else None,
                "pg_bytes_per_known_url": _pg_bytes_per_url(stack, known),
                "page_states": stack.page_states(),
                "reports": int(stack.sql("SELECT count(*) FROM reports")[0][0]),
            }
            metrics = pass_metrics(entries, truth, args, cpu_s=crawl_sampler.cpu_between(t0, t1), extra=extra)
            metrics["cpu_all_workers_s_per_1000_pages"] = (
                round(extra["cpu_all_workers_s"] * 1000 / metrics["requests"], 2)
                if metrics["requests"]
                else None
            )
            results[f"pass{number}"] = metrics
            label = "xxgk-fetch-only" if fetch_only else "xxgk"
            _save_log(args, f"{label}-pass{number}", entries)
            _progress(f"{label} pass {number}", metrics)
    return results


def _wait_fetched(stack: XxgkStack, *, timeout_s: float) -> bool:
    """Until no page is waiting for its fetch (ingest left to a parse worker that is not running)."""
    deadline = time.monotonic() + timeout_s
    calm = 0
    while time.monotonic() < deadline:
        waiting = stack.sql(
            "SELECT count(*) FROM pages WHERE state = 'discovered'"
            " AND (next_fetch_at IS NULL OR next_fetch_at < now() + interval '1 hour')"
        )[0][0]
        known = stack.sql("SELECT count(*) FROM pages")[0][0]
        calm = calm + 1 if known and not waiting else 0
        if calm >= 3:
            return True
        time.sleep(1.0)
    return False


def _pg_bytes_per_url(stack: XxgkStack, known: int) -> float | None:
    if not known:
        return None
    size = stack.sql("SELECT pg_total_relation_size('pages')")[0][0]
    return round(int(size) / known, 1)


# --------------------------------------------------------------------------- Scrapy


def _redis_gauge(client: Any, pattern: str) -> Any:
    def measure() -> int:
        return sum(int(client.memory_usage(k, samples=0) or 0) for k in client.scan_iter(match=pattern))

    return measure


def _live_pids(procs: list[subprocess.Popen[bytes]]) -> Any:
    return lambda: [p.pid for p in procs if p.poll() is None]


def _scrapy_command(
    args: argparse.Namespace, mode: str, urls_file: Path, spider_name: str, cache_dir: Path
) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "scrapy-child",
        "--mode",
        mode,
        "--urls-file",
        str(urls_file),
        "--delay",
        str(args.delay),
        "--timeout",
        str(int(args.timeout)),
        "--spider-name",
        spider_name,
        "--redis-url",
        args.redis_url,
        "--cache-dir",
        str(cache_dir),
        "--idle-close",
        str(args.idle_close),
    ]


def run_scrapy(
    web: SimWebProcess, truth: dict[str, Any], args: argparse.Namespace, mode: str
) -> dict[str, Any]:
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{mode}-"))
    urls_file = workdir / "urls.json"
    urls_file.write_text(json.dumps(web.entry_urls()))
    spider_name = f"simweb{uuid.uuid4().hex[:8]}"
    passes = 2 if mode == "scrapy-cache" else args.scrapy_passes
    results: dict[str, Any] = {}
    for number in range(1, passes + 1):
        web.reset_log()
        if number == 1:
            add_retry_after_fault(web, truth, args)
        else:
            web.clear_faults()
        command = _scrapy_command(args, mode, urls_file, spider_name, workdir / "httpcache")
        procs: list[subprocess.Popen[bytes]] = []
        client = None
        if mode == "scrapy-redis":
            import redis

            client = redis.Redis.from_url(args.redis_url)
            for key in client.scan_iter(match=f"{spider_name}:*"):
                client.delete(key)
            client.lpush(f"{spider_name}:start_urls", *web.entry_urls())
        count = args.redis_procs if mode == "scrapy-redis" else 1
        gauges: dict[str, Any] = {}
        if client is not None:
            gauges["redis_bytes"] = _redis_gauge(client, f"{spider_name}:*")
        sampler = Sampler(_live_pids(procs), gauges)
        started = time.time()
        for n in range(count):
            log_file = open(workdir / f"scrapy-{number}-{n}.log", "wb")  # noqa: SIM115 - closed with the process
            procs.append(
                subprocess.Popen(
                    command,
                    cwd=workdir,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "PYTHONPATH": str(REPO)},
                )
            )
        sampler.start()
        deadline = time.monotonic() + args.timeout + 60
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.5)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        sampler.stop()
        entries = web.fetch_log()
        t0, t1 = crawl_window(entries)
        extra: dict[str, Any] = {
            "processes": count,
            "wall_s": round(time.time() - started, 1),
            "exit_codes": [p.returncode for p in procs],
        }
        if client is not None:
            known = int(client.scard(f"{spider_name}:dupefilter") or 0)
            peak = max(sampler.gauge_between("redis_bytes", t0, t1 + args.idle_close) or [0])
            extra.update(
                {
                    "known_urls": known,
                    "redis_peak_bytes": int(peak),
                    "redis_bytes_per_known_url": round(peak / known, 1) if known else None,
                }
            )
            for key in client.scan_iter(match=f"{spider_name}:*"):
                client.delete(key)
        metrics = pass_metrics(entries, truth, args, cpu_s=sampler.cpu_between(t0, t1), extra=extra)
        results[f"pass{number}"] = metrics
        _save_log(args, f"{mode}-pass{number}", entries)
        _progress(f"{mode} pass {number}", metrics)
    if os.environ.get("XXGK_BENCH_KEEP"):  # the Scrapy logs, for a post-mortem
        print(f"kept {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


# --------------------------------------------------------------------------- report


def _save_log(args: argparse.Namespace, name: str, entries: list[LogEntry]) -> None:
    """The server's log of one pass as JSON lines (``--save-logs DIR``), for a closer look."""
    if not args.save_logs:
        return
    Path(args.save_logs).mkdir(parents=True, exist_ok=True)
    with open(Path(args.save_logs) / f"{name}.jsonl", "w", encoding="utf-8") as out:
        for entry in entries:
            out.write(json.dumps({f: getattr(entry, f) for f in entry.__slots__}, ensure_ascii=False) + "\n")


def _progress(label: str, metrics: dict[str, Any]) -> None:
    keys = (
        "requests",
        "seconds",
        "pages_per_s",
        "bound_pages_per_s",
        "plain_pages_per_s",
        "efficiency",
        "violations",
        "violations_lenient",
        "min_gap_s",
        "hosts_with_violations",
        "crawl_delay_violations",
        "disallowed_requests",
        "recall",
        "not_modified_ratio",
        "gap_after_429_s",
        "cpu_s_per_1000_pages",
        "redis_bytes_per_known_url",
    )
    print(f"[{label}] " + " ".join(f"{k}={metrics.get(k)}" for k in keys), flush=True)


def markdown_table(results: dict[str, Any], args: argparse.Namespace) -> str:
    rows = [
        ("pages/s (pass 1)", lambda r: r["pass1"]["pages_per_s"]),
        ("politeness-bound pages/s", lambda r: r["pass1"]["bound_pages_per_s"]),
        (
            "pages/s on the hosts owed 1 delay (no Crawl-delay, no fault) / their bound",
            lambda r: f"{r['pass1']['plain_pages_per_s']} / {r['pass1']['plain_bound_pages_per_s']}",
        ),
        (
            "seconds to finish those hosts (requests)",
            lambda r: f"{r['pass1']['plain_seconds']} ({r['pass1']['plain_requests']})",
        ),
        ("efficiency vs bound", lambda r: r["pass1"]["efficiency"]),
        (
            "violations, 10 ms tolerance (hosts)",
            lambda r: f"{r['pass1']['violations']} ({r['pass1']['hosts_with_violations']})",
        ),
        ("of which on Crawl-delay hosts", lambda r: r["pass1"]["crawl_delay_violations"]),
        (
            "violations at 10 % tolerance (hosts)",
            lambda r: f"{r['pass1']['violations_lenient']} ({r['pass1']['hosts_with_violations_lenient']})",
        ),
        ("closest two requests to one host", lambda r: f"{r['pass1']['min_gap_s']} s"),
        ("robots.txt-disallowed requests", lambda r: r["pass1"]["disallowed_requests"]),
        (
            "recall of report documents",
            lambda r: (
                f"{r['pass1']['recall']:.0%} ({r['pass1']['documents_found']}/{r['pass1']['documents']})"
            ),
        ),
        (
            "gap after 429 Retry-After",
            lambda r: ", ".join(f"{g:g} s" for g in r["pass1"]["gap_after_429_s"]) or "—",
        ),
        (
            "304 ratio, second pass",
            lambda r: (
                f"{r['pass2']['not_modified_ratio']:.0%}"
                if "pass2" in r and r["pass2"]["not_modified_ratio"] is not None
                else "—"
            ),
        ),
        ("CPU s / 1,000 pages (crawler)", lambda r: r["pass1"].get("cpu_s_per_1000_pages", "—")),
        ("Redis bytes / known URL (peak)", lambda r: r["pass1"].get("redis_bytes_per_known_url", "—")),
    ]
    names = list(results)
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, getter in rows:
        cells = []
        for name in names:
            try:
                cells.append(str(getter(results[name])))
            except (KeyError, TypeError, ValueError):
                cells.append("—")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "scrapy-child":
        child = argparse.ArgumentParser()
        for name in ("--mode", "--urls-file", "--spider-name", "--redis-url", "--cache-dir"):
            child.add_argument(name)
        child.add_argument("--delay", type=float)
        child.add_argument("--timeout", type=int)
        child.add_argument("--idle-close", type=int, default=10)
        return scrapy_child(child.parse_args(argv[1:]))

    # SIGTERM unwinds like Ctrl-C: workers, servers and databases this run made go too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--reports", type=int, default=40, help="reports per host")
    parser.add_argument("--delay", type=float, default=1.0, help="politeness delay per host, seconds")
    parser.add_argument("--crawlers", default="xxgk,scrapy,scrapy-redis,scrapy-cache")
    parser.add_argument("--fetch-workers", type=int, default=2)
    parser.add_argument(
        "--fetch-threads", type=int, default=32, help="per fetch worker: a thread works one host at a time"
    )
    parser.add_argument("--parse-pool", default="threads", help="as in the Procfile")
    parser.add_argument("--parse-concurrency", type=int, default=2, help="as in the Procfile")
    parser.add_argument("--redis-procs", type=int, default=4)
    parser.add_argument(
        "--scrapy-passes", type=int, default=1, help="passes of plain Scrapy (no cache: no 304s)"
    )
    parser.add_argument("--retry-after", type=float, default=10.0)
    parser.add_argument(
        "--tolerance", type=float, default=0.01, help="spacing tolerance for a violation, seconds"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="per pass, seconds")
    parser.add_argument("--idle-close", type=int, default=10, help="scrapy-redis: close after idle seconds")
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--redis-url", default=SHARED_REDIS)
    parser.add_argument("--quick", action="store_true", help="10 hosts × 10 reports, 0.5 s delay")
    parser.add_argument(
        "--no-crawl-delay",
        action="store_true",
        help="no host asks for a Crawl-delay (Scrapy ignores it): every crawler owes every host the same",
    )
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument("--save-logs", help="write each pass's server log here (JSON lines)")
    args = parser.parse_args(argv)
    if args.quick:
        args.hosts, args.reports, args.delay, args.retry_after = 10, 10, 0.5, 5.0

    crawlers = [c.strip() for c in args.crawlers.split(",") if c.strip()]
    print(
        f"simulated web: {args.hosts} hosts × {args.reports} reports, delay {args.delay:g} s; "
        f"crawlers: {', '.join(crawlers)}",
        flush=True,
    )
    results: dict[str, Any] = {}
    web_config = {"crawl_delay_every": 0} if args.no_crawl_delay else None
    with SimWebProcess(
        hosts=args.hosts, reports=args.reports, max_seconds=6 * 3600, config=web_config
    ) as web:
        truth = web.truth()
        for crawler in crawlers:
            if crawler == "xxgk":
                results[crawler] = run_xxgk(web, truth, args)
            elif crawler == "xxgk-fetch-only":
                results[crawler] = run_xxgk(web, truth, args, fetch_only=True)
            else:
                results[crawler] = run_scrapy(web, truth, args, crawler)
    table = markdown_table(results, args)
    print(table)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"args": vars(args), "results": results}, indent=2, ensure_ascii=False)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
