"""``xxgk demo``: serve the sample portal, crawl it twice, and show what the watch found.

Embedded mode: no Redis, no PostgreSQL, no Celery. The same pipeline stages the Celery
workers run (:func:`worker.pipeline.run_stage`) run on a few threads in this process,
against a SQLite file and an archive directory in a fresh work directory; politeness
comes from an in-process gate (a short delay, since the portal is on loopback).

The story, in two passes:

1. first crawl: list pages (a TRS pager hidden in a script, 下一页 links on a GBK site),
   HTML reports, a PDF behind an ``onclick``, a DOCX; robots.txt keeps us off a draft; the
   SSRF guard refuses a redirect to the cloud metadata address; an anti-bot page is
   recorded as blocked; a faulty filing and a blank one raise anomalies;
2. a week later: everything is revisited with conditional GETs (304s), and the one report
   that was edited after publication is fetched, parsed and flagged as changed.

Then ``missing_report`` runs for the registry (one agency never filed), the outbox relay
publishes the events, and a summary is printed.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func
from sqlmodel import Session, col, select

from shared.settings import Settings, get_settings
from worker.demo.portal import SITES, DemoPortal
from worker.pipeline import FollowUp, InProcessPipeline, PipelineResources, StageResult, build_resources

# the demo's calendar: the registry starts tracking when each agency's first report was due,
# and the missing_report check runs "as of" the end of the 2020 reporting season
DEMO_TODAY = date(2021, 4, 20)
DEMO_REGISTERED: dict[str, datetime] = {
    "郑庄子镇人民政府": datetime(2022, 1, 1, tzinfo=UTC),
    "官坡镇人民政府": datetime(2024, 1, 1, tzinfo=UTC),
}
DEFAULT_REGISTERED = datetime(2021, 1, 1, tzinfo=UTC)
DEMO_DELAY_S = 0.2
PASS_TIMEOUT_S = 40.0


@dataclass
class PassReport:
    name: str
    seconds: float
    stats: dict[str, dict[str, int]]
    requests: int
    not_modified: int


@dataclass
class DemoOutcome:
    workdir: Path
    database_url: str
    passes: list[PassReport] = field(default_factory=list)
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    pages: dict[str, int] = field(default_factory=dict)
    reports: list[dict[str, Any]] = field(default_factory=list)
    politeness_violations: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


class _Progress:
    """A progress bar on a terminal, plain lines otherwise."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self._progress: Any = None
        self._task: Any = None
        self.done = 0

    def start(self, title: str) -> None:
        self.done = 0
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[last]}"),
                console=self.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(title, total=None, last="")
        else:
            self.console.print(f"{title} …")

    def step(
        self,
        stage: str,
        result: StageResult,
        describe: Callable[[str, StageResult], str | None],
        pending: int,
    ) -> None:
        self.done += 1
        line = describe(stage, result)
        if self.live and self._progress is not None:
            self._progress.update(
                self._task, completed=self.done, total=self.done + pending, last=(line or "")[:60]
            )
        elif line:
            self.console.print(f"  {line}", highlight=False, soft_wrap=True)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _describe_pages(session_factory: Callable[[], Session]) -> Callable[[str, StageResult], str | None]:
    from shared.store.models import Page

    def describe(stage: str, result: StageResult) -> str | None:
        if stage not in ("fetch", "ingest") or result.target is None:
            return None
        if result.outcome.startswith("skipped"):
            return None
        with session_factory() as session:
            page = session.get(Page, result.target)
        if page is None:
            return None
        where = page.url.split("://", 1)[-1]
        if stage == "fetch":
            extra = f", {result.detail['new_links']} new links" if result.detail.get("new_links") else ""
            reason = (
                f" — {page.last_error}" if result.outcome in ("failed", "blocked") and page.last_error else ""
            )
            return f"fetch  {result.outcome:12} {page.kind:10} {where}{extra}{reason}"
        events = result.detail.get("events") or 0
        return f"ingest {result.outcome:12} {page.kind:10} {where}" + (f", {events} events" if events else "")

    return describe


def run_demo(
    *,
    workdir: Path | None = None,
    delay_s: float = DEMO_DELAY_S,
    console: Console | None = None,
    settings: Settings | None = None,
    today: date = DEMO_TODAY,
    workers: int = 4,
) -> DemoOutcome:
    """Serve, crawl twice, check, relay; return what happened (the CLI prints it)."""
    console = console or Console()
    base = settings or get_settings()
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="xxgk-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{workdir / 'xxgk.sqlite3'}"
    outcome = DemoOutcome(workdir=workdir, database_url=database_url)

    with DemoPortal() as portal:
        settings = base.model_copy(
            update={
                "database_url": database_url,
                "archive_dir": workdir / "archive",
                "redis_url": None,
                "ssrf_allow": portal.allow_list,
                "politeness_delay_s": delay_s,
                "webhook_urls": list(base.webhook_urls),
            }
        )
        console.print(
            f"[bold]xxgk demo[/bold] — a sample portal: {len(SITES)} agencies on "
            f"{portal.addresses[0]}–{portal.addresses_in_use[-1]} port {portal.port} (loopback)"
        )
        console.print(f"  store     {database_url}\n  archive   {workdir / 'archive'}")
        console.print(
            f"  politeness {delay_s:g} s between requests to a host, one at a time (shortened for the "
            f"loopback portal; the default is {base.politeness_delay_s:g} s)"
        )
        console.print(f"  SSRF allow-list: {', '.join(portal.allow_list)} (the sample portal, its port only)")
        console.print(
            f"  calendar: simulated — missing_report is checked as of {today.isoformat()}, the end of"
            " the 2020 reporting season"
        )

        from worker.crawler.politeness import LocalPolitenessGate

        gate = LocalPolitenessGate(delay_s)
        resources = build_resources(settings, gate=gate, politeness_wait=min(5.0, 20 * delay_s))
        resources.today = lambda: today
        _register(resources, portal)
        progress = _Progress(console)
        describe = _describe_pages(resources.session_factory)

        for number, (title, force, edit) in enumerate(
            (
                ("Pass 1 — first crawl", False, False),
                ("Pass 2 — a week later: revisit everything (one report was edited meanwhile)", True, True),
            ),
            start=1,
        ):
            if edit:
                portal.publish_edit()
            seen_requests = len(portal.requests)
            console.print(f"\n[bold]{title}[/bold]")
            pipeline = InProcessPipeline(resources, workers=workers, force=force)
            pipeline.on_result = lambda stage, result, p=pipeline: progress.step(
                stage, result, describe, p.pending
            )
            progress.start(f"pass {number}")
            started = time.monotonic()
            pipeline.submit([FollowUp("discover_all")])
            stats = pipeline.run(timeout_s=PASS_TIMEOUT_S)
            progress.stop()
            new_requests = portal.requests[seen_requests:]
            report = PassReport(
                title,
                time.monotonic() - started,
                stats.outcomes,
                len(new_requests),
                sum(1 for r in new_requests if r.status == 304),
            )
            outcome.passes.append(report)
            console.print(
                f"  {report.requests} requests in {report.seconds:.1f} s, "
                f"{report.not_modified} answered 304 Not Modified"
            )
            for error in stats.errors[:5]:
                console.print(f"  [red]error[/red] {error}")

        console.print("\n[bold]missing_report[/bold] — tracked agencies past their deadline")
        from worker.pipeline import run_stage

        checked = run_stage(resources, "check_missing")
        console.print(f"  {checked.detail.get('events', 0)} new report.missing events")
        if resources.relay is not None:
            resources.relay()
        outcome.politeness_violations = portal.politeness_violations(delay_s)
        _collect(resources, outcome)
    return outcome


def _register(resources: PipelineResources, portal: DemoPortal) -> None:
    from worker.sites import import_sites, parse_registry

    specs = parse_registry(portal.registry_yaml())
    with resources.session_factory() as session:
        for spec in specs:
            import_sites(session, [spec], now=DEMO_REGISTERED.get(spec.name, DEFAULT_REGISTERED))


def _collect(resources: PipelineResources, outcome: DemoOutcome) -> None:
    from shared.store.models import Agency, FindingRecord, OutboxEvent, Page, StoredReport

    with resources.session_factory() as session:
        for state, n in session.exec(select(Page.state, func.count()).group_by(Page.state)).all():
            outcome.pages[state] = int(n)
        for page in session.exec(select(Page).where(col(Page.state).in_(("failed", "blocked")))).all():
            line = f"{page.url.split('://', 1)[-1]} — {page.last_error}"
            (outcome.blocked if page.state == "blocked" else outcome.refused).append(line)
        reports = session.exec(
            select(StoredReport, Agency).join(Agency, isouter=True).order_by(col(StoredReport.id))
        )
        for report, agency in reports.all():
            outcome.reports.append(
                {
                    "agency": agency.name if agency else None,
                    "year": report.year,
                    "template": report.template,
                    "revision": report.revision,
                    "media_type": report.media_type,
                    "url": report.source_url,
                }
            )
        findings = session.exec(
            select(FindingRecord, Agency)
            .join(Agency, isouter=True)
            .where(col(FindingRecord.resolved_at).is_(None))
            .order_by(col(FindingRecord.id))
        )
        for finding, agency in findings.all():
            outcome.anomalies.append(
                {
                    "agency": agency.name if agency else None,
                    "year": finding.year,
                    "rule": finding.rule,
                    "severity": finding.severity,
                    "message": finding.message,
                }
            )
        for event in session.exec(select(OutboxEvent).order_by(col(OutboxEvent.id))).all():
            outcome.alerts.append(
                {
                    "id": event.event_id,
                    "type": event.type,
                    "agency": event.agency,
                    "year": event.year,
                    "rule": event.rule,
                    "severity": event.severity,
                    "published": event.published_at is not None,
                }
            )


def print_outcome(outcome: DemoOutcome, console: Console) -> None:
    severity_style = {"error": "red", "warning": "yellow", "info": "cyan"}

    console.print("\n[bold]Reports stored[/bold]")
    table = Table(show_edge=False, pad_edge=False)
    for column in ("agency", "year", "template", "revision", "carrier"):
        table.add_column(column)
    for report in outcome.reports:
        carrier = (
            (report["media_type"] or "?")
            .split("/")[-1]
            .replace("vnd.openxmlformats-officedocument.wordprocessingml.document", "docx")
        )
        table.add_row(
            str(report["agency"]),
            str(report["year"]),
            str(report["template"]),
            str(report["revision"]),
            carrier,
        )
    console.print(table)

    console.print("\n[bold]Anomalies[/bold]")
    table = Table(show_edge=False, pad_edge=False)
    for column in ("agency", "year", "rule", "severity", "message"):
        table.add_column(column, overflow="fold")
    for item in outcome.anomalies:
        style = severity_style.get(item["severity"], "")
        table.add_row(
            str(item["agency"]),
            str(item["year"] or ""),
            item["rule"],
            f"[{style}]{item['severity']}[/{style}]" if style else item["severity"],
            item["message"][:90],
        )
    console.print(table)

    console.print(
        "\n[bold]Alerts raised[/bold] (outbox → Redis stream xxgk:events and webhooks; "
        "no Redis here, so only webhooks in XXGK_WEBHOOK_URLS would be called)"
    )
    table = Table(show_edge=False, pad_edge=False)
    for column in ("event id", "type", "agency", "year", "rule"):
        table.add_column(column)
    for alert in outcome.alerts:
        table.add_row(
            alert["id"][:12],
            alert["type"],
            str(alert["agency"]),
            str(alert["year"] or ""),
            str(alert["rule"] or ""),
        )
    console.print(table)

    if outcome.blocked or outcome.refused:
        console.print("\n[bold]Not fetched or not a report[/bold]")
        for line in outcome.blocked:
            console.print(f"  blocked  {line}", highlight=False, soft_wrap=True)
        for line in outcome.refused:
            console.print(f"  failed   {line}", highlight=False, soft_wrap=True)

    first, second = outcome.passes[0], outcome.passes[-1]
    console.print("\n[bold]Summary[/bold]")
    table = Table(show_header=False, show_edge=False, pad_edge=False)
    table.add_column("what")
    table.add_column("how many", justify="right")
    rows = [
        ("sites watched", len(SITES)),
        ("requests, first pass", first.requests),
        ("requests, second pass (304 Not Modified)", f"{second.requests} ({second.not_modified})"),
        (
            "reports stored (revisions)",
            f"{len(outcome.reports)} ({sum(r['revision'] for r in outcome.reports)})",
        ),
        (
            "pages parsed / failed / blocked",
            f"{outcome.pages.get('parsed', 0) + outcome.pages.get('not_modified', 0)} / "
            f"{outcome.pages.get('failed', 0)} / {outcome.pages.get('blocked', 0)}",
        ),
        (
            "anomalies (error / warning / info)",
            " / ".join(
                str(sum(1 for a in outcome.anomalies if a["severity"] == s))
                for s in ("error", "warning", "info")
            ),
        ),
        ("alerts raised", len(outcome.alerts)),
        ("politeness violations (server log)", len(outcome.politeness_violations)),
        ("time", f"{sum(p.seconds for p in outcome.passes):.1f} s"),
    ]
    for what, value in rows:
        table.add_row(what, str(value))
    console.print(table)
    console.print(
        f"\nThe store stays in {outcome.workdir}; look around with\n"
        f"  XXGK_DATABASE_URL={outcome.database_url} xxgk reports list",
        highlight=False,
        soft_wrap=True,
    )


def serve_only(
    console: Console, *, port: int = 0, workdir: Path | None = None, stop: Callable[[], bool] | None = None
) -> None:
    """Serve the portal until interrupted, and say how to crawl it with real workers."""
    workdir = Path(workdir) if workdir else Path.cwd()
    with DemoPortal(port=port) as portal:
        registry = workdir / "demo-sites.yaml"
        registry.write_text(portal.registry_yaml(), encoding="utf-8")
        allow = ",".join(portal.allow_list)
        console.print(
            f"Serving the sample portal on {', '.join(portal.addresses_in_use)} port {portal.port}."
        )
        console.print(f"Registry written to {registry}. To crawl it with real workers:", highlight=False)
        console.print(f"  export XXGK_SSRF_ALLOW={allow} XXGK_POLITENESS_DELAY_S=0.3", highlight=False)
        console.print(
            "  export XXGK_REDIS_URL=redis://127.0.0.1:6379/0 "
            "XXGK_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/xxgk",
            highlight=False,
        )
        console.print(
            f"  xxgk db upgrade && xxgk sites import {registry} && honcho start   # then: xxgk crawl",
            highlight=False,
        )
        console.print("Ctrl-C stops the portal.")
        sys.stdout.flush()
        try:
            while not (stop and stop()):
                time.sleep(0.5)
        except KeyboardInterrupt:
            console.print("stopped")
