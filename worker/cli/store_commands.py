"""The store's commands: ``db``, ``ingest``, ``reports``, ``findings``, ``alerts``, ``subscriptions``,
``relay``.

All read ``XXGK_DATABASE_URL`` (default: a SQLite file in the working
directory, created on first use); ``alerts tail`` and ``relay`` also read
``XXGK_REDIS_URL`` (unset: embedded mode — the outbox stands in for the stream).
``list`` commands print a JSON array with ``--json``.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import click

from shared.errors import ConfigError, XxgkError
from shared.settings import get_settings
from worker.cli import main

EXIT_OK, EXIT_UNREADABLE = 0, 2


def _open_store() -> Any:
    """The session factory for this command; the engine is disposed when the command ends."""
    from sqlalchemy.exc import OperationalError

    from shared.store.engine import open_store

    try:
        engine, session_factory = open_store(get_settings().database_url)
    except XxgkError as exc:
        _fail(str(exc))
    except OperationalError as exc:
        _fail(f"cannot open the store ({get_settings().database_url.split('@')[-1]}): {exc.orig or exc}")
    click.get_current_context().call_on_close(engine.dispose)
    return session_factory


def _redis_client() -> Any:
    url = get_settings().redis_url
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, default=str))


def _fail(message: str) -> NoReturn:
    click.echo(f"xxgk: {message}", err=True)
    sys.exit(EXIT_UNREADABLE)


# ------------------------------------------------------------------ db


@main.group()
def db() -> None:
    """The store's schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the store's schema (Alembic, migrations shipped in the package)."""
    from shared.store.engine import make_engine, upgrade_schema

    engine = make_engine(get_settings().database_url)
    try:
        now = upgrade_schema(engine, revision)
    finally:
        engine.dispose()
    click.echo(f"schema at revision {now} ({engine.url.render_as_string(hide_password=True)})")


@db.command("current")
def db_current() -> None:
    """The schema revision in place, and the newest one this code knows."""
    from shared.store.engine import current_revision, head_revision, make_engine

    engine = make_engine(get_settings().database_url)
    try:
        click.echo(f"current={current_revision(engine) or 'none'} head={head_revision()}")
    finally:
        engine.dispose()


@db.command("counts")
@click.option("--json", "as_json", is_flag=True)
def db_counts(as_json: bool) -> None:
    """Rows per table."""
    from shared.store.queries import table_counts

    with _open_store()() as session:
        counts = table_counts(session)
    if as_json:
        _echo_json(counts)
        return
    for name, n in counts.items():
        click.echo(f"{name:18} {n}")


# ------------------------------------------------------------------ ingest


def _sandboxed_reader() -> Callable[..., Any]:
    from shared.extract import ExtractLimits
    from worker.sandbox import read_report_sandboxed

    return partial(read_report_sandboxed, limits=ExtractLimits.from_settings(get_settings()))


class _Progress:
    """A rich progress bar on a terminal, one plain line per file otherwise."""

    def __init__(self, total: int, *, as_json: bool) -> None:
        self.as_json = as_json
        self.bar: Any = None
        if sys.stderr.isatty() and not as_json:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("ingest"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
                transient=True,
            )
            self.task = self.bar.add_task("", total=total)
            self.bar.start()

    def __call__(self, path: Path, result: Any, crash: str | None) -> None:
        if self.as_json:
            body = result.as_dict() if result is not None else {"status": "crashed", "error": crash}
            _echo_json({"path": str(path), **body})
        line = _result_line(path, result, crash)
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=path.name)
            if result is None or result.status != "unchanged":
                self.bar.console.print(line, markup=False, highlight=False)
        elif not self.as_json:
            click.echo(line)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _result_line(path: Path, result: Any, crash: str | None) -> str:
    if result is None:
        return f"crashed   {path}: {crash}"
    if result.status == "failed":
        return f"failed    {path}: {result.error['error']}: {result.error['message']}"
    return (
        f"{result.status:9} {path} report={result.report_id} revision={result.revision} "
        f"findings={len(result.findings)} events={len(result.event_ids)}"
    )


@main.command()
@click.option("--json", "as_json", is_flag=True, help="one JSON object per file, one per line")
@click.option("--site", "site_name", default=None, help="the registry site these files belong to")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
def ingest(as_json: bool, site_name: str | None, paths: tuple[Path, ...]) -> None:
    """Parse, check and store local files as if crawled (source = the path); emits events.

    The same bytes again change nothing; changed bytes at the same path make a new
    revision and a report.changed event. Exit 2 when a file could not be read."""
    from shared.store.ingest import expand_paths, ingest_paths

    session_factory = _open_store()
    files = expand_paths(paths)
    progress = _Progress(len(files), as_json=as_json)
    try:
        summary = ingest_paths(
            files,
            session_factory=session_factory,
            today=_beijing_today(),
            read=_sandboxed_reader(),
            site_name=site_name,
            progress=progress,
        )
    except XxgkError as exc:
        progress.stop()
        _fail(str(exc))
        return
    progress.stop()
    counts = summary.counts()
    if not as_json:
        click.echo(
            f"{len(files)} file(s): "
            + ", ".join(f"{n} {k}" for k, n in counts.items() if n)
            + f"; {summary.event_count} event(s) added"
        )
    if counts["failed"] or counts["crashed"]:
        sys.exit(EXIT_UNREADABLE)


# ------------------------------------------------------------------ reports


@main.group()
def reports() -> None:
    """Stored reports."""


@reports.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--year", type=int)
@click.option("--agency", help="part of the agency's name")
@click.option("--region", help="region-code prefix, e.g. 35 for Fujian")
@click.option("--limit", type=int, default=200, show_default=True)
def reports_list(as_json: bool, year: int | None, agency: str | None, region: str | None, limit: int) -> None:
    """Stored reports, newest year first."""
    from shared.store.queries import list_reports

    with _open_store()() as session:
        rows = list_reports(session, year=year, agency=agency, region=region, limit=limit)
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        click.echo(
            f"{r['id']:>5} {r['year'] or '?':>4} {r['agency'] or '?'} rev={r['revision']} "
            f"template={r['template'] or '?'} findings={r['open_findings']} {r['source']}"
        )
    if not rows:
        click.echo("no reports stored", err=True)


@reports.command("show")
@click.option("--json", "as_json", is_flag=True)
@click.argument("ref")
def reports_show(as_json: bool, ref: str) -> None:
    """One report: the canonical record, its findings and its revisions. REF: id, source or sha256."""
    from shared.store.queries import find_report, show_report

    with _open_store()() as session:
        report = find_report(session, ref)
        if report is None:
            _fail(f"no report {ref!r}")
            return
        shown = show_report(session, report)
    if as_json:
        _echo_json(shown)
        return
    click.echo(
        f"report {shown['id']}: {shown['agency'] or '?'} {shown['year'] or '?'} "
        f"(level={shown['level'] or '?'} region={shown['region_code'] or '?'})"
    )
    click.echo(f"  source: {shown['source']}")
    for rev in shown["revisions"]:
        click.echo(f"  revision {rev['revision']}: sha256={rev['sha256'][:16]}… seen {rev['created_at']}")
    record = shown["record"]
    filled = sum(
        1
        for s in ("active_disclosure", "applications", "reviews")
        for cols in record.get(s, {}).values()
        for v in cols.values()
        if v is not None
    )
    click.echo(
        f"  template={record.get('template')} published_on={record.get('published_on')} cells filled={filled}"
    )
    for f in shown["findings"]:
        state = "resolved" if f["resolved"] else f["status"]
        click.echo(f"  {f['severity']:7} {f['rule']} [{state}] {f['message']}  ({f['fingerprint'][:12]})")


# ------------------------------------------------------------------ findings


@main.group()
def findings() -> None:
    """Findings in the store, and their review status."""


@findings.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--year", type=int)
@click.option("--agency", help="part of the agency's name")
@click.option("--region", help="region-code prefix")
@click.option("--rule")
@click.option("--severity", type=click.Choice(["error", "warning", "info"]))
@click.option("--status", type=click.Choice(["open", "confirmed", "dismissed"]))
@click.option("--all", "include_resolved", is_flag=True, help="include findings a later check resolved")
@click.option("--limit", type=int, default=200, show_default=True)
def findings_list(as_json: bool, limit: int, include_resolved: bool, **filters: Any) -> None:
    """Findings, newest first."""
    from shared.store.queries import list_findings

    with _open_store()() as session:
        rows = list_findings(session, include_resolved=include_resolved, limit=limit, **filters)
    if as_json:
        _echo_json(rows)
        return
    for f in rows:
        click.echo(
            f"{f['id']:>5} {f['fingerprint'][:12]} {f['severity']:7} {f['rule']:22} {f['status']:9} "
            f"{f.get('agency') or '?'} {f['year'] or '?'}: {f['message']}"
        )
    if not rows:
        click.echo("no findings", err=True)


def _review(ref: str, status: str, note: str | None) -> None:
    from shared.store.findings import review_finding
    from shared.store.models import utc_now

    with _open_store()() as session:
        try:
            row = review_finding(session, ref, status=status, note=note, now=utc_now())
        except LookupError as exc:
            _fail(str(exc.args[0]))
            return
        session.commit()
        click.echo(f"finding {row.id} ({row.fingerprint[:12]}) {row.rule}: {status}")


_ref = click.argument("ref", metavar="FINGERPRINT_OR_ID")
_note = click.option("--note", help="why (kept with the finding)")


@findings.command("confirm")
@_ref
@_note
def findings_confirm(ref: str, note: str | None) -> None:
    """Mark a finding confirmed; it stays so after re-checks."""
    _review(ref, "confirmed", note)


@findings.command("dismiss")
@_ref
@_note
def findings_dismiss(ref: str, note: str | None) -> None:
    """Mark a finding dismissed (a false alarm); it stays so after re-checks."""
    _review(ref, "dismissed", note)


@findings.command("reopen")
@_ref
@_note
def findings_reopen(ref: str, note: str | None) -> None:
    """Put a reviewed finding back to open."""
    _review(ref, "open", note)


@findings.command("check-missing")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="default: today")
def findings_check_missing(today: Any) -> None:
    """Record missing_report for registry agencies past their deadline (what the beat task runs)."""
    from shared.store.missing import check_missing_reports

    day = today.date() if today else _beijing_today()
    with _open_store()() as session:
        event_ids = check_missing_reports(session, day)
    click.echo(f"{len(event_ids)} missing report(s) newly recorded")


# ------------------------------------------------------------------ alerts


@main.group()
def alerts() -> None:
    """Events: the stream, the outbox, webhook deliveries."""


def _event_line(message: dict[str, Any]) -> str:
    payload = message.get("payload") or {}
    report = payload.get("report") or {}
    agency = report.get("agency") or (payload.get("agency") or {}).get("name") or "?"
    rules = ",".join(f.get("rule", "?") for f in payload.get("findings") or [])
    return f"{message.get('type')} {message.get('id', '')[:16]} {agency} {payload.get('year') or '?'} {rules}"


@alerts.command("tail")
@click.option(
    "--from-start",
    is_flag=True,
    help="replay what the stream still holds first (about the newest XXGK_STREAM_MAX_LEN events)",
)
@click.option("--count", type=int, default=None, help="stop after this many events")
@click.option("--json", "as_json", is_flag=True, help="one JSON event per line")
@click.option("--stream", default=None, hidden=True)
@click.option("--block-ms", type=int, default=5000, hidden=True)
def alerts_tail(
    from_start: bool, count: int | None, as_json: bool, stream: str | None, block_ms: int
) -> None:
    """Follow the event stream (XREAD BLOCK); embedded mode follows the outbox instead.

    The stream is trimmed to about XXGK_STREAM_MAX_LEN events: falling further behind than
    that (a paused terminal, a slow pipe) skips the trimmed ones, and tail says so on stderr.
    The outbox keeps every event: ``xxgk alerts list`` shows them."""
    client = _redis_client()
    shown = 0

    def show(message: dict[str, Any]) -> bool:
        nonlocal shown
        _echo_json(message) if as_json else click.echo(_event_line(message))
        shown += 1
        return count is not None and shown >= count

    try:
        if client is not None:
            from worker.alerts.stream import EVENTS_STREAM, RedisEventStream

            events = RedisEventStream(client, stream or EVENTS_STREAM)
            last = "0" if from_start else "$"
            last_event = None
            while True:
                batch = events.read(last, block_ms=block_ms)
                if batch.trimmed:
                    click.echo(
                        f"xxgk: warning: the stream no longer holds entry {last} (event {last_event}):"
                        " it was trimmed past (XXGK_STREAM_MAX_LEN), so events after it may be missing"
                        " here; `xxgk alerts list` reads the outbox, which has them all",
                        err=True,
                    )
                for entry_id, message in batch.entries:
                    last, last_event = entry_id, message.get("id")
                    if show(message):
                        return
        else:
            _tail_outbox(from_start, show)
    except KeyboardInterrupt:
        return


def _tail_outbox(from_start: bool, show: Callable[[dict[str, Any]], bool]) -> None:
    from shared.store.queries import list_events

    session_factory = _open_store()
    stop = threading.Event()
    with session_factory() as session:
        newest = list_events(session, limit=1)
    after = 0 if from_start or not newest else newest[0]["seq"]
    while True:
        with session_factory() as session:
            rows = list_events(session, after_id=after, limit=500, newest_first=False)
        for row in rows:
            after = row["seq"]
            if show({"id": row["id"], "type": row["type"], "payload": row["payload"]}):
                return
        if not rows:
            stop.wait(1.0)


@alerts.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--type", "event_type", type=click.Choice(["report.anomalous", "report.changed", "report.missing"])
)
@click.option("--unpublished", is_flag=True, help="only events the relay has not published yet")
@click.option("--limit", type=int, default=100, show_default=True)
def alerts_list(as_json: bool, event_type: str | None, unpublished: bool, limit: int) -> None:
    """Events in the outbox, newest first, with their delivery state.

    The outbox is the complete log: events trimmed from the stream (XXGK_STREAM_MAX_LEN) are here."""
    from shared.store.queries import list_events

    with _open_store()() as session:
        rows = list_events(session, event_type=event_type, unpublished=unpublished, limit=limit)
    if as_json:
        _echo_json(rows)
        return
    for e in rows:
        # held: webhooks planned, but no stream has had the event yet (relay ran without Redis)
        published = "published" if e["published_at"] else ("held" if e["last_error"] else "pending")
        d = e["deliveries"]
        click.echo(
            f"{e['seq']:>6} {published:9} webhooks={d['delivered']}/{d['total']}"
            + (f" dead={d['dead']}" if d["dead"] else "")
            + f" {_event_line(e)}"
        )
    if not rows:
        click.echo("no events", err=True)


@alerts.command("dead")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", type=int, default=100, show_default=True)
def alerts_dead(as_json: bool, limit: int) -> None:
    """Dead-lettered webhook deliveries (gave up after XXGK_WEBHOOK_MAX_ATTEMPTS, or 410 Gone)."""
    from shared.store.queries import list_deliveries

    with _open_store()() as session:
        rows = list_deliveries(session, status="dead", limit=limit)
    if as_json:
        _echo_json(rows)
        return
    for d in rows:
        click.echo(
            f"{d['id']:>6} {d['event_id'][:16]} {d['endpoint']} attempts={d['attempts']} "
            f"last={d['last_status_code'] or '-'} {d['last_error'] or ''}"
        )
    if not rows:
        click.echo("no dead deliveries", err=True)


@alerts.command("retry")
@click.argument("ref", metavar="DELIVERY_ID_OR_EVENT_ID")
def alerts_retry(ref: str) -> None:
    """Send a dead (or waiting) delivery again with a fresh attempt budget."""
    from shared.store.models import utc_now
    from shared.store.outbox import retry_deliveries

    with _open_store()() as session:
        retried = retry_deliveries(session, ref, now=utc_now())
        session.commit()
    if not retried:
        _fail(f"no undelivered delivery {ref!r}")
    click.echo(f"{len(retried)} delivery(ies) due again; the relay sends them on its next pass")


# ------------------------------------------------------------------ subscriptions


@main.group()
def subscriptions() -> None:
    """Who receives which events by webhook (XXGK_WEBHOOK_URLS receive everything)."""


@subscriptions.command("add")
@click.argument("url")
@click.option("--name")
@click.option("--region", "region_prefix", help="region-code prefix, e.g. 35 (Fujian) or 350128")
@click.option("--agency", help="the agency's name (normalised before matching)")
@click.option("--rule", help="one rule id")
@click.option(
    "--severity", "min_severity", type=click.Choice(["info", "warning", "error"]), help="at least this"
)
@click.option(
    "--type",
    "event_types",
    multiple=True,
    type=click.Choice(["report.anomalous", "report.changed", "report.missing"]),
)
@click.option("--secret", help="a whsec_… secret; generated when not given")
def subscriptions_add(url: str, **options: Any) -> None:
    """Add a webhook subscription; prints its signing secret once."""
    from shared.store.outbox import add_subscription

    with _open_store()() as session:
        try:
            sub = add_subscription(session, url, **options)
        except ConfigError as exc:
            _fail(str(exc))
            return
        session.commit()
        click.echo(f"subscription {sub.id} → {sub.url}")
        click.echo(f"secret: {sub.secret}")


@subscriptions.command("list")
@click.option("--json", "as_json", is_flag=True)
def subscriptions_list(as_json: bool) -> None:
    """Subscriptions (secrets are not shown)."""
    from sqlmodel import select

    from shared.store.models import Subscription
    from shared.store.queries import subscription_dict

    with _open_store()() as session:
        rows = [subscription_dict(s) for s in session.exec(select(Subscription)).all()]
    if as_json:
        _echo_json(rows)
        return
    for s in rows:
        filters = " ".join(
            f"{k}={s[k]}" for k in ("region_prefix", "agency", "rule", "min_severity", "event_types") if s[k]
        )
        click.echo(
            f"{s['id']:>4} {'active' if s['active'] else 'off':6} {s['url']} {filters or '(everything)'}"
        )
    for url in get_settings().webhook_urls:
        click.echo(f"   - env    {url} (everything, XXGK_WEBHOOK_URLS)")


@subscriptions.command("remove")
@click.argument("subscription_id", type=int)
def subscriptions_remove(subscription_id: int) -> None:
    """Stop a subscription (kept for its delivery history)."""
    from shared.store.models import Subscription

    with _open_store()() as session:
        sub = session.get(Subscription, subscription_id)
        if sub is None:
            _fail(f"no subscription {subscription_id}")
            return
        sub.active = False
        session.add(sub)
        session.commit()
    click.echo(f"subscription {subscription_id} stopped")


# ------------------------------------------------------------------ relay


def _beijing_today() -> date:
    """Deadlines are Beijing dates: the host's local date (often UTC) is a day behind from 16:00 UTC."""
    from worker.pipeline import beijing_today

    return beijing_today()


@main.command()
@click.option("--once", is_flag=True, help="one pass, then exit")
@click.option("--drain", is_flag=True, help="run until nothing is unpublished or pending, then exit")
@click.option("--batch", type=int, default=100, show_default=True)
@click.option(
    "--interval", "interval_s", type=float, default=1.0, show_default=True, help="idle poll, seconds"
)
@click.option("--lease-s", type=float, default=None, help="how long a claimed delivery is reserved")
@click.option("--stream", default=None, hidden=True)
def relay(
    *, once: bool, drain: bool, batch: int, interval_s: float, lease_s: float | None, stream: str | None
) -> None:
    """Publish outbox events to the stream and deliver webhooks (at least once)."""
    from worker.alerts.relay import RelayConfig, relay_once, run_relay
    from worker.alerts.webhooks import build_webhook_sink

    config = RelayConfig.from_settings(batch=batch, lease_s=lease_s, stream=stream)
    session_factory = _open_store()
    client = _redis_client()
    sink = build_webhook_sink(get_settings())
    try:
        if once:
            stats = relay_once(session_factory, client, sink, config=config)
        else:
            stats = run_relay(
                session_factory, client, sink, config=config, interval_s=interval_s, drain=drain
            )
    except KeyboardInterrupt:
        return
    finally:
        sink.close()
    click.echo(
        f"published={stats.published} held={stats.held} delivered={stats.delivered}"
        f" retried={stats.retried} dead={stats.dead}"
    )
