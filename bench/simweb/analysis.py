"""What the server's request log says about a crawler (pure): politeness, efficiency, 304s, recall.

Every figure the benchmarks publish is computed here from :class:`LogEntry` rows — the
server's view — and the portal's ground truth, never from a crawler's own counters.

Definitions:

- **delay of a host**: ``max(configured delay, robots.txt Crawl-delay)`` — what a polite crawler
  owes that host (Scrapy parses Crawl-delay but does not apply it, scrapy#892; it is counted
  against it all the same, since the site asked for it).
- **violation**: a request that arrived while another request to the same host was still being
  served (``in_flight > 0``), or less than ``delay − tolerance`` after the previous arrival.
- **efficiency**: over the hosts without injected faults, ``Σ (N_h − 1)·delay_h / Σ span_h``,
  where ``span_h`` is the time between the host's first and last arrival — 1.0 means every host
  was asked exactly once per delay for as long as it had work, the politeness-bound maximum.
- **304 ratio**: of the requests a pass made to validator-capable hosts (robots.txt excluded),
  the share answered ``304 Not Modified``.
- **recall**: of the portal's report documents (inline HTML reports and attachments), the share
  requested at least once and answered 200 or 304.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class LogEntry:
    seq: int
    host: str
    path: str
    method: str
    status: int
    arrived: float
    finished: float
    in_flight: int
    bytes: int
    conditional: bool
    fault: str | None
    ua: str


@dataclass
class HostPoliteness:
    host: str
    delay_s: float
    requests: int = 0
    overlapping: int = 0
    too_soon: int = 0
    min_gap_s: float | None = None

    @property
    def violations(self) -> int:
        return self.overlapping + self.too_soon


@dataclass
class PolitenessReport:
    hosts: dict[str, HostPoliteness] = field(default_factory=dict)

    @property
    def violations(self) -> int:
        return sum(h.violations for h in self.hosts.values())

    @property
    def hosts_with_violations(self) -> int:
        return sum(1 for h in self.hosts.values() if h.violations)

    def crawl_delay_violations(self, truth: dict[str, Any]) -> int:
        delayed = {h["address"] for h in truth["hosts"] if h.get("crawl_delay_s")}
        return sum(h.violations for a, h in self.hosts.items() if a in delayed)

    @property
    def min_gap_s(self) -> float | None:
        gaps = [h.min_gap_s for h in self.hosts.values() if h.min_gap_s is not None]
        return min(gaps) if gaps else None


def host_delays(truth: dict[str, Any], delay_s: float) -> dict[str, float]:
    return {h["address"]: max(delay_s, float(h.get("crawl_delay_s") or 0.0)) for h in truth["hosts"]}


def by_host(entries: Iterable[LogEntry]) -> dict[str, list[LogEntry]]:
    grouped: dict[str, list[LogEntry]] = defaultdict(list)
    for entry in entries:
        grouped[entry.host].append(entry)
    for rows in grouped.values():
        rows.sort(key=lambda e: e.arrived)
    return grouped


def politeness(
    entries: Iterable[LogEntry], delays: dict[str, float], *, tolerance_s: float = 0.01
) -> PolitenessReport:
    report = PolitenessReport()
    for host, rows in by_host(entries).items():
        stats = HostPoliteness(host, delays.get(host, 0.0), requests=len(rows))
        previous: LogEntry | None = None
        for entry in rows:
            if entry.in_flight > 0:
                stats.overlapping += 1
            if previous is not None:
                gap = entry.arrived - previous.arrived
                stats.min_gap_s = gap if stats.min_gap_s is None else min(stats.min_gap_s, gap)
                if entry.in_flight == 0 and gap < stats.delay_s - tolerance_s:
                    stats.too_soon += 1
            previous = entry
        report.hosts[host] = stats
    return report


@dataclass
class Throughput:
    requests: int
    seconds: float
    efficiency: float | None  # politeness-bound, over hosts without faults
    bound_requests_per_s: float  # Σ 1/delay over the hosts that were crawled
    hosts: int

    @property
    def pages_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def throughput(
    entries: list[LogEntry], delays: dict[str, float], *, exclude_hosts: Iterable[str] = ()
) -> Throughput:
    if not entries:
        return Throughput(0, 0.0, None, 0.0, 0)
    excluded = set(exclude_hosts)
    first = min(e.arrived for e in entries)
    last = max(e.finished for e in entries)
    busy = span = 0.0
    grouped = by_host(entries)
    for host, rows in grouped.items():
        if host in excluded or len(rows) < 2:
            continue
        busy += (len(rows) - 1) * delays.get(host, 0.0)
        span += rows[-1].arrived - rows[0].arrived
    bound = sum(1.0 / delays[h] for h in grouped if delays.get(h))
    return Throughput(len(entries), last - first, (busy / span) if span > 0 else None, bound, len(grouped))


def not_modified_ratio(entries: Iterable[LogEntry], truth: dict[str, Any]) -> tuple[float | None, int, int]:
    """``(ratio, 304s, requests)`` over validator-capable hosts, robots.txt excluded."""
    capable = {h["address"] for h in truth["hosts"] if h.get("validators")}
    rows = [e for e in entries if e.host in capable and e.path != "/robots.txt" and e.status]
    hits = sum(1 for e in rows if e.status == 304)
    return ((hits / len(rows)) if rows else None), hits, len(rows)


def documents(truth: dict[str, Any]) -> set[tuple[str, str]]:
    return {(h["address"], r["path"]) for h in truth["hosts"] for r in h["reports"]}


def recall(entries: Iterable[LogEntry], truth: dict[str, Any]) -> tuple[float, int, int]:
    """``(recall, found, total)`` of report documents, by what the server answered 200/304."""
    from bench.simweb.portal import page_key

    wanted = documents(truth)
    got = {(e.host, page_key(e.path)) for e in entries if e.status in (200, 304)}
    found = len(wanted & got)
    return (found / len(wanted) if wanted else 1.0), found, len(wanted)


def disallowed_requests(entries: Iterable[LogEntry], truth: dict[str, Any]) -> int:
    rules = {h["address"]: tuple(h.get("disallowed") or ()) for h in truth["hosts"]}
    return sum(1 for e in entries if rules.get(e.host) and e.path.startswith(rules[e.host]))


def gap_after(entries: list[LogEntry], host: str, *, status: int) -> list[float]:
    """For each response with ``status`` to ``host``: seconds until the next request to the host arrived."""
    rows = by_host(entries).get(host, [])
    gaps = []
    for i, entry in enumerate(rows):
        if entry.status == status and i + 1 < len(rows):
            gaps.append(rows[i + 1].arrived - entry.finished)
    return gaps


def requests_by_kind(entries: Iterable[LogEntry], truth: dict[str, Any]) -> dict[str, int]:
    from bench.simweb.portal import page_key

    kinds = {(h["address"], path): kind for h in truth["hosts"] for path, kind in h["pages"].items()}
    counts: dict[str, int] = defaultdict(int)
    for entry in entries:
        counts[kinds.get((entry.host, page_key(entry.path)), "unknown")] += 1
    return dict(counts)
