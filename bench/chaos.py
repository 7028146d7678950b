"""The chaos run: crawl a simulated web while workers die, Redis restarts and PostgreSQL drops connections.

    .venv/bin/python bench/chaos.py --short          # what CI runs (tests/chaos/), ~2 min with the control
    .venv/bin/python bench/chaos.py                  # the long run: thousands of pages
    .venv/bin/python bench/chaos.py --no-control     # our configuration only

Set-up: a simulated web (:mod:`bench.simweb`) whose reports carry known *seeded anomalies*
(the faulty seed's ``t3_*`` findings), some hosts misbehaving (503 bursts, 429 + Retry-After,
connection resets, a 412 anti-bot host, a robots.txt-disallowed draft); the real stack
(:class:`~bench.simweb.stack.XxgkStack`) on its **own** ``redis-server`` (a free loopback port,
no persistence) and a fresh PostgreSQL database; Celery workers of every kind (crawl, two
fetch, parse, alerts), beat (the sweep) and the ``xxgk relay`` process delivering webhooks to
a receiver in this process. While pages are pending:

- a worker of some kind is SIGKILLed (with its pool children) every few seconds and restarted
  a moment later, cycling through the kinds so that each is killed, the relay included;
- Redis is killed and restarted once (queues, unacked messages, politeness state and the
  stream are gone);
- every PostgreSQL connection of the run's database is terminated once (``pg_terminate_backend``).

Pass (our configuration): **0 pages lost** (every URL ends ``parsed``, ``failed`` with a reason,
``blocked`` or ``not_modified``, and every report document of a reachable host is parsed),
**0 duplicate report rows** (one report per document, one revision, one finding per rule), each
seeded anomaly **stored exactly once** and **delivered at least once with its stable id** (the
webhook receiver saw that event id; the stream reader's view is reported too).

The **negative control** is the same run with Celery's default delivery (``acks_late=False``,
``reject_on_worker_lost=False``; :mod:`bench.simweb.celery_default_acks`) and no beat, hence no
sweep: it must lose pages, or the harness could not see loss.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import random
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.simweb.portal import FAULTY_RULES, page_key  # noqa: E402
from bench.simweb.process import SimWebProcess  # noqa: E402
from bench.simweb.stack import RedisServer, Worker, XxgkStack  # noqa: E402

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"chaos-run-secret-for-tests-only").decode()  # a test value
KILLED_KINDS = ("fetch", "parse", "crawl", "relay", "alerts", "fetch", "parse")
TERMINAL = ("parsed", "failed", "blocked", "not_modified")


@dataclass
class Mode:
    hosts: int
    reports: int
    delay_s: float
    kill_every_s: tuple[float, float]
    timeout_s: float
    control_timeout_s: float
    kill_beat: bool
    # Redis is restarted at 35 % of the pages or this long into the crawl; PostgreSQL at 55 % or this
    # long after Redis — whichever comes first
    redis_after_s: float = 10.0
    pg_after_s: float = 8.0


# the short run must last long enough for every kind to be killed at least once: a crawl of six
# hosts at the politeness bound is over in ~15 s at 0.5 s a request
SHORT = Mode(
    hosts=6,
    reports=14,
    delay_s=0.5,
    kill_every_s=(1.0, 2.5),
    timeout_s=150,
    control_timeout_s=60,
    kill_beat=False,
)
LONG = Mode(
    hosts=40,
    reports=50,
    delay_s=0.05,
    kill_every_s=(3.0, 8.0),
    timeout_s=1500,
    control_timeout_s=600,
    kill_beat=True,
    redis_after_s=240.0,
    pg_after_s=120.0,
)


# --------------------------------------------------------------------------- witnesses


class WebhookReceiver:
    """Records every webhook delivery's ``webhook-id`` (the event id); always answers 204."""

    def __init__(self) -> None:
        received: Counter[str] = Counter()
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                event_id = self.headers.get("webhook-id")
                if event_id:
                    received[event_id] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.netloc}/hook"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class StreamReader:
    """XREADs the event stream continuously (reconnecting through the Redis restart), keeping the ids."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.ids: Counter[str] = Counter()
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import redis

        from worker.alerts.stream import EVENTS_STREAM, decode_entry

        last = "0"
        client = redis.Redis.from_url(self.redis_url, socket_timeout=5, socket_connect_timeout=2)
        while not self._stop.is_set():
            try:
                answer = client.xread({EVENTS_STREAM: last}, block=500, count=500) or []
            except redis.exceptions.RedisError:
                self.errors += 1
                last = "0"  # a restarted Redis has a new stream
                time.sleep(0.3)
                continue
            for _stream, entries in answer:
                for entry_id, fields in entries:
                    last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    event = decode_entry(fields)
                    if event.get("id"):
                        self.ids[event["id"]] += 1

    def __enter__(self) -> StreamReader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------- the run


@dataclass
class ChaosLog:
    events: list[tuple[float, str]] = field(default_factory=list)
    kills: Counter[str] = field(default_factory=Counter)
    self_exits: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    def note(self, text: str) -> None:
        self.events.append((round(time.monotonic() - self.started, 1), text))
        print(f"  [{self.events[-1][0]:6.1f}s] {text}", flush=True)


def expected_pages(truth: dict[str, Any], blocked_hosts: set[str]) -> int:
    """Pages the crawler should come to know (everything linked except home pages and robots.txt)."""
    kinds = ("listing", "report", "attachment", "detail", "noise", "draft")
    total = 0
    for host in truth["hosts"]:
        if host["address"] in blocked_hosts:
            total += 1
            continue
        total += sum(1 for kind in host["pages"].values() if kind in kinds)
    return total


def _detail_prefix(host: dict[str, Any]) -> str:
    """Where a host's report pages live: faults there hit content, not robots.txt (whose 5xx means
    "disallow everything for a while", RFC 9309 — a different test)."""
    return "/xxgk/zfxxgknb/20" if host["platform"] == "trs" else "/art/"


def host_faults(truth: dict[str, Any]) -> tuple[list[dict[str, Any]], set[str]]:
    """Misbehaving hosts: one anti-bot host (blocked for good), 503 bursts, a 429, resets, 500s."""
    hosts = truth["hosts"]
    faults: list[dict[str, Any]] = []
    blocked: set[str] = set()
    if len(hosts) >= 4:
        blocked.add(hosts[3]["address"])
        faults.append({"host": hosts[3]["address"], "kind": "challenge_412", "count": None})
    if len(hosts) >= 2:
        faults.append(
            {
                "host": hosts[1]["address"],
                "kind": "status",
                "status": 503,
                "count": 3,
                "path_prefix": _detail_prefix(hosts[1]),
            }
        )
    if len(hosts) >= 3:
        faults.append(
            {
                "host": hosts[2]["address"],
                "kind": "status",
                "status": 429,
                "retry_after": "2",
                "count": 1,
                "path_prefix": _detail_prefix(hosts[2]),
            }
        )
    if len(hosts) >= 5:
        faults.append(
            {
                "host": hosts[4]["address"],
                "kind": "reset",
                "count": 3,
                "path_prefix": _detail_prefix(hosts[4]),
            }
        )
    for host in hosts[5::7]:
        faults.append(
            {
                "host": host["address"],
                "kind": "status",
                "status": 500,
                "count": 2,
                "path_prefix": _detail_prefix(host),
            }
        )
    return faults, blocked


def run_once(
    *, mode: Mode, control: bool, redis_port: int, seed: int, log_level: str = "WARNING"
) -> dict[str, Any]:
    rng = random.Random(seed)
    label = "negative control (default acks, no sweep)" if control else "xxgk (acks_late + sweep)"
    print(f"== {label}: {mode.hosts} hosts × {mode.reports} reports", flush=True)
    chaos = ChaosLog()
    with contextlib.ExitStack() as stack_:
        redis_server = stack_.enter_context(RedisServer(port=redis_port))
        web = stack_.enter_context(SimWebProcess(hosts=mode.hosts, reports=mode.reports, max_seconds=3600))
        receiver = stack_.enter_context(WebhookReceiver())
        truth = web.truth()
        faults, blocked_hosts = host_faults(truth)
        web.add_faults(faults)
        overrides = {
            "XXGK_SWEEP_INTERVAL_S": "3",
            "XXGK_STUCK_AFTER_S": "30",
            "XXGK_FETCH_LEASE_S": "10",
            "XXGK_FETCH_TIMEOUT_S": "5",
            "XXGK_WEBHOOK_URLS": receiver.url,
            # the receiver is on loopback: the webhook sink's SSRF guard must be told it is ours
            "XXGK_WEBHOOK_ALLOW": receiver.netloc,
            "XXGK_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "XXGK_LOG_LEVEL": log_level,
        }
        stack = stack_.enter_context(
            XxgkStack(
                redis_url=redis_server.url,
                delay_s=mode.delay_s,
                env_overrides=overrides,
                celery_app="bench.simweb.celery_default_acks" if control else "worker.app",
                relay_options=("--lease-s", "5"),
            )
        )
        reader = stack_.enter_context(StreamReader(redis_server.url))
        stack.import_sites(truth, web.port)
        kinds = {"crawl": 1, "fetch": 2, "parse": 1, "alerts": 1, "relay": 1}
        # the Procfile's pools; 8 fetch threads a worker (the Procfile has 32) work 16 hosts at once,
        # plenty for a run about losing nothing
        pools = {"crawl": ("threads", 2), "parse": ("threads", 2), "fetch": ("threads", 8)}

        def start(kind: str) -> Worker:
            pool, concurrency = pools.get(kind, (None, 1))
            return stack.start_worker(kind, pool=pool, concurrency=concurrency)

        for kind, count in kinds.items():
            for _ in range(count):
                start(kind)
        if not control:
            start("beat")
        time.sleep(4)
        expected = expected_pages(truth, blocked_hosts)
        started = time.monotonic()
        stack.crawl_all()
        chaos.note(f"crawl started, {expected} pages expected")

        timeout = mode.control_timeout_s if control else mode.timeout_s
        deadline = started + timeout
        next_kill = started + rng.uniform(*mode.kill_every_s)
        # every kind once, in a random order, before any kind a second time
        first = list(dict.fromkeys(KILLED_KINDS)) + (["beat"] if mode.kill_beat and not control else [])
        rest = [kind for kind in KILLED_KINDS if KILLED_KINDS.count(kind) > 1][
            : len(KILLED_KINDS) - len(first)
        ]
        rng.shuffle(first)
        rng.shuffle(rest)
        kill_cycle = first + rest
        kill_index = 0
        restarts: list[tuple[float, str]] = []
        redis_restarted = pg_dropped = False
        redis_at = 0.0
        last_progress, last_change = -1, time.monotonic()
        done = False
        while time.monotonic() < deadline:
            now = time.monotonic()
            states = _states(stack)
            at_rest = sum(n for s, n in states.items() if s in TERMINAL)
            pending = stack_pending(stack)
            progress = at_rest
            if progress != last_progress:
                last_progress, last_change = progress, now
            known = sum(states.values())
            chaos_due = pending > 0 or known == 0  # discovery has not written the entry pages yet
            # restarts, and workers that died on their own
            for when, kind in list(restarts):
                if now >= when:
                    start(kind)
                    restarts.remove((when, kind))
            for worker in list(stack.workers):
                if not worker.alive and all(k != worker.kind for _w, k in restarts):
                    stack.workers.remove(worker)
                    chaos.self_exits[worker.kind] += 1
                    chaos.note(f"{worker.name} exited by itself (code {worker.proc.returncode}); restarting")
                    start(worker.kind)
            calm = mode.kill_every_s[0] >= 1e9
            if calm and now - last_change > 15:
                chaos.note(f"calm run: no progress for 15 s; states {states}")
                break
            # Redis at 35 % of the pages (or redis_after_s in), PostgreSQL at 55 % (or pg_after_s later)
            if (
                chaos_due
                and not calm
                and not redis_restarted
                and (at_rest >= 0.35 * expected or now - started > mode.redis_after_s)
            ):
                chaos.note(f"Redis killed and restarted (queues: {stack.queue_lengths()})")
                redis_server.restart(down_s=1.0)
                redis_restarted, redis_at = True, time.monotonic()
            if (
                chaos_due
                and not calm
                and redis_restarted
                and not pg_dropped
                and (at_rest >= 0.55 * expected or now - redis_at > mode.pg_after_s)
            ):
                terminated = stack.sql(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )[0][0]
                chaos.note(f"PostgreSQL: {terminated} connections terminated")
                pg_dropped = True
            if chaos_due and known and now >= next_kill:
                kind = kill_cycle[kill_index % len(kill_cycle)]
                kill_index += 1
                victims = [w for w in stack.workers if w.kind == kind and w.alive]
                if victims:
                    victim = rng.choice(victims)
                    stack.kill_worker(victim, signal.SIGKILL)
                    stack.workers.remove(victim)
                    chaos.kills[kind] += 1
                    chaos.note(f"SIGKILL {victim.name} (at rest {at_rest}/{expected}, pending {pending})")
                    restarts.append((now + rng.uniform(0.3, 1.5), kind))
                next_kill = now + rng.uniform(*mode.kill_every_s)
            if not chaos_due and not restarts and _published_all(stack):
                done = True
                break
            if control and now - last_change > 20 and now - started > 30:
                chaos.note("no progress for 20 s: the control has stalled")
                break
            time.sleep(0.25)
        # let the relay finish what was written (bounded), then stop everything
        settle_until = time.monotonic() + (10 if control else 30)
        while time.monotonic() < settle_until and not _published_all(stack):
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        time.sleep(1.0)
        verdict = verify(stack, truth, blocked_hosts, receiver, reader)
        verdict.update(
            {
                "mode": "control" if control else "xxgk",
                "completed": done,
                "elapsed_s": round(elapsed, 1),
                "expected_pages": expected,
                "kills": dict(chaos.kills),
                "self_exits": dict(chaos.self_exits),
                "redis_restarted": redis_restarted,
                "pg_connections_dropped": pg_dropped,
                "stream_reader_errors": reader.errors,
                "timeline": chaos.events,
            }
        )
        return verdict


def _states(stack: XxgkStack) -> dict[str, int]:
    try:
        return stack.page_states()
    except Exception:
        return {}


# a page whose next attempt is further out than this is *deferred* (scheduled, with its reason), not pending
DEFERRED_AFTER_S = 60.0


def stack_pending(stack: XxgkStack) -> int:
    try:
        return stack.pending_pages(horizon_s=DEFERRED_AFTER_S)
    except Exception:
        return 1


def _published_all(stack: XxgkStack) -> bool:
    try:
        unpublished = stack.sql("SELECT count(*) FROM outbox WHERE published_at IS NULL")[0][0]
        undelivered = stack.sql("SELECT count(*) FROM deliveries WHERE status = 'pending'")[0][0]
    except Exception:
        return False
    return unpublished == 0 and undelivered == 0


# --------------------------------------------------------------------------- the verdict


def verify(
    stack: XxgkStack,
    truth: dict[str, Any],
    blocked_hosts: set[str],
    receiver: WebhookReceiver,
    reader: StreamReader,
) -> dict[str, Any]:
    port = truth["port"]
    pages = stack.sql("SELECT id, url, kind, state, last_error FROM pages")
    unfinished = stack.sql(
        "SELECT url, state, attempts, extract(epoch FROM next_fetch_at - now()),"
        " extract(epoch FROM now() - state_changed_at), last_error"
        " FROM pages WHERE state NOT IN ('parsed', 'failed', 'blocked', 'not_modified') ORDER BY id"
    )
    by_key = {
        (_host(url), page_key(_path(url))): (pid, kind, state, error)
        for pid, url, kind, state, error in pages
    }
    # not at rest: *deferred* when a later attempt is scheduled with its reason (the sweep will hand
    # it out when due), *lost* when nothing will ever pick it up again (no schedule, or overdue
    # for longer than the sweep needs, or fetched and never ingested)
    deferred = [
        u
        for u, st, _a, due_in, _age, error in unfinished
        if st == "discovered" and due_in is not None and float(due_in) > 0 and error
    ]
    not_terminal = [u for u, *_rest in unfinished if u not in set(deferred)]
    deferred_hosts = {_host(u) for u in deferred}
    no_reason = [url for _pid, url, _k, state, error in pages if state in ("failed", "blocked") and not error]
    reports = stack.sql("SELECT id, locator, revision FROM reports")
    report_of = {}
    duplicate_reports = 0
    for rid, locator, revision in reports:
        key = (_host(locator), page_key(_path(locator)))
        if key in report_of:
            duplicate_reports += 1
        report_of[key] = rid
        if revision != 1:
            duplicate_reports += 1
    findings = stack.sql("SELECT report_id, rule, event_id FROM findings")
    findings_by_report: dict[int, Counter[str]] = {}
    event_of: dict[tuple[int, str], str | None] = {}
    for rid, rule, event_id in findings:
        findings_by_report.setdefault(rid, Counter())[rule] += 1
        event_of[(rid, rule)] = event_id
    published = {eid for (eid,) in stack.sql("SELECT event_id FROM outbox WHERE published_at IS NOT NULL")}
    deliveries = stack.sql(
        "SELECT status, count(*), max(attempts), min(last_error), min(next_attempt_at - now())"
        " FROM deliveries GROUP BY status"
    )

    lost_documents: list[str] = []
    deferred_documents: list[str] = []
    missing_blocked: list[str] = []
    anomalies = stored_once = delivered = streamed = 0
    wrong_findings: list[str] = []
    for host in truth["hosts"]:
        address = host["address"]
        if address in blocked_hosts:
            entry = by_key.get((address, page_key(host["entry_path"])))
            if entry is None or entry[2] != "blocked":
                missing_blocked.append(address)
            continue
        for document in host["reports"]:
            key = (address, page_key(document["path"]))
            page = by_key.get(key)
            if page is None or page[2] != "parsed" or key not in report_of:
                where = f"http://{address}:{port}{document['path']} ({page[2] if page else 'unknown'})"
                if address in deferred_hosts:
                    deferred_documents.append(where)
                else:
                    lost_documents.append(where)
                continue
            counts = findings_by_report.get(report_of[key], Counter())
            for rule in FAULTY_RULES:
                expected = 1 if rule in document["expected_rules"] else 0
                if counts.get(rule, 0) != expected:
                    wrong_findings.append(
                        f"{document['path']} {rule}: {counts.get(rule, 0)} stored, {expected} expected"
                    )
                if expected:
                    anomalies += 1
                    if counts.get(rule, 0) == 1:
                        stored_once += 1
                    event_id = event_of.get((report_of[key], rule))
                    if event_id and event_id in published and receiver.received.get(event_id, 0) >= 1:
                        delivered += 1
                    if event_id and reader.ids.get(event_id, 0) >= 1:
                        streamed += 1
    duplicate_findings = sum(1 for c in findings_by_report.values() for n in c.values() if n > 1)
    lost = len(lost_documents) + len(not_terminal)
    redelivered = sum(n - 1 for n in receiver.received.values() if n > 1)
    return {
        "pages": len(pages),
        "page_states": Counter(state for _p, _u, _k, state, _e in pages),
        "lost": lost,
        "lost_documents": lost_documents[:20],
        "lost_document_count": len(lost_documents),
        "not_terminal": not_terminal[:20],
        "not_terminal_detail": [
            {
                "url": u,
                "state": st,
                "attempts": a,
                "next_fetch_in_s": None if n is None else round(float(n), 1),
                "state_age_s": None if age is None else round(float(age), 1),
                "last_error": (e or "")[:200],
            }
            for u, st, a, n, age, e in unfinished[:20]
        ],
        "deferred": len(deferred),
        "deferred_documents": len(deferred_documents),
        "deferred_reasons": dict(
            Counter((e or "")[:90] for u, _s, _a, _n, _g, e in unfinished if u in set(deferred))
        ),
        "not_terminal_count": len(not_terminal),
        "without_reason": len(no_reason),
        "blocked_hosts_not_blocked": missing_blocked,
        "reports": len(reports),
        "duplicate_report_rows": duplicate_reports,
        "duplicate_findings": duplicate_findings,
        "seeded_anomalies": anomalies,
        "anomalies_stored_once": stored_once,
        "anomalies_delivered": delivered,
        "anomalies_seen_on_stream": streamed,
        "wrong_findings": wrong_findings[:20],
        "webhook_events_received": len(receiver.received),
        "deliveries": {
            str(status): {
                "count": int(n),
                "max_attempts": attempts,
                "an_error": error,
                "next_attempt_in": str(due),
            }
            for status, n, attempts, error, due in deliveries
        },
        "webhook_redeliveries": redelivered,
    }


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or "").lower()


def _path(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def passed(result: dict[str, Any]) -> bool:
    return (
        result["lost"] == 0
        and result["without_reason"] == 0
        and not result["blocked_hosts_not_blocked"]
        and result["duplicate_report_rows"] == 0
        and result["duplicate_findings"] == 0
        and not result["wrong_findings"]
        and result["seeded_anomalies"] > 0
        and result["anomalies_stored_once"] == result["seeded_anomalies"]
        and result["anomalies_delivered"] == result["seeded_anomalies"]
    )


def exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so that every worker, server and database this run made goes too."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def main(argv: list[str] | None = None) -> int:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--short", action="store_true", help="the CI-sized run (about two minutes with the control)"
    )
    parser.add_argument("--hosts", type=int)
    parser.add_argument("--reports", type=int)
    parser.add_argument("--no-control", action="store_true")
    parser.add_argument("--only-control", action="store_true")
    parser.add_argument("--redis-port", type=int, default=0, help="the private Redis (default: a free port)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--calm", action="store_true", help="no kills, no restarts: check the harness itself")
    parser.add_argument(
        "--log-level", default="WARNING", help="the workers' XXGK_LOG_LEVEL (INFO for a post-mortem)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    mode = SHORT if args.short else LONG
    if args.hosts or args.reports:
        mode = Mode(
            **{**vars(mode), "hosts": args.hosts or mode.hosts, "reports": args.reports or mode.reports}
        )
    if args.calm:
        mode = Mode(**{**vars(mode), "kill_every_s": (1e9, 1e9)})

    results: dict[str, Any] = {}
    if not args.only_control:
        results["xxgk"] = run_once(
            mode=mode, control=False, redis_port=args.redis_port, seed=args.seed, log_level=args.log_level
        )
    if not args.no_control:
        results["control"] = run_once(
            mode=mode, control=True, redis_port=args.redis_port, seed=args.seed, log_level=args.log_level
        )
    summary_keys = (
        "pages",
        "expected_pages",
        "lost",
        "lost_document_count",
        "not_terminal_count",
        "deferred",
        "duplicate_report_rows",
        "duplicate_findings",
        "seeded_anomalies",
        "anomalies_stored_once",
        "anomalies_delivered",
        "anomalies_seen_on_stream",
        "webhook_redeliveries",
        "kills",
        "redis_restarted",
        "pg_connections_dropped",
        "elapsed_s",
    )
    for name, result in results.items():
        print(f"{name}: " + ", ".join(f"{k}={result.get(k)}" for k in summary_keys), flush=True)
    ok = True
    if "xxgk" in results:
        ok &= passed(results["xxgk"])
        print(f"xxgk: {'PASS' if passed(results['xxgk']) else 'FAIL'}")
    if "control" in results:
        saw_loss = results["control"]["lost"] > 0
        ok &= saw_loss
        print(
            "negative control: "
            + ("lost pages, as it must" if saw_loss else "NO LOSS: the harness cannot see loss")
        )
    if args.json:
        args.json.write_text(
            json.dumps({"mode": vars(mode), "results": results}, ensure_ascii=False, indent=2, default=str)
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
