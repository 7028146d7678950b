"""``xxgk sites import|list``, ``xxgk crawl``, ``xxgk sweep`` and ``xxgk demo``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from shared.errors import XxgkError
from shared.settings import get_settings
from worker.cli import main


def _session_factory():  # type: ignore[no-untyped-def]
    from shared.store.engine import open_store

    _engine, factory = open_store(get_settings().database_url)
    return factory


def _fail(exc: XxgkError) -> None:
    click.echo(f"xxgk: {exc}", err=True)
    sys.exit(2)


@main.group()
def sites() -> None:
    """The site registry: which government sites are watched."""


@sites.command("import")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def sites_import(path: Path) -> None:
    """Add or update the sites in a YAML or CSV registry file (see worker/sites.py for the format)."""
    from worker.sites import import_sites, read_registry

    try:
        specs = read_registry(path)
        with _session_factory()() as session:
            outcome = import_sites(session, specs)
    except XxgkError as exc:
        _fail(exc)
        return
    click.echo(f"{len(outcome.names)} sites: {outcome.created} added, {outcome.updated} updated")


@sites.command("list")
@click.option("--json", "as_json", is_flag=True, help="a JSON array")
def sites_list(as_json: bool) -> None:
    """The registered sites with their crawl state."""
    from shared.store.crawl_state import crawl_counts, list_sites

    with _session_factory()() as session:
        rows: list[dict[str, Any]] = []
        for site in list_sites(session):
            assert site.id is not None
            counts = crawl_counts(session, site_ids=[site.id])
            rows.append(
                {
                    "id": site.id,
                    "name": site.name,
                    "agency": site.agency_name,
                    "level": site.level,
                    "region_code": site.region_code,
                    "entry_urls": list(site.entry_urls),
                    "domains": list(site.domains),
                    "pages": counts.by_state,
                }
            )
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        pages = ", ".join(f"{state} {n}" for state, n in sorted(row["pages"].items())) or "not crawled yet"
        click.echo(
            f"{row['id']:>4}  {row['name']}  [{row['level'] or '?'} {row['region_code'] or ''}]  {pages}"
        )
        for url in row["entry_urls"]:
            click.echo(f"        {url}")


@main.command()
@click.option("--site", "site_names", multiple=True, help="a site's name or id (repeatable); default: all")
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=600.0,
    show_default=True,
    help="embedded mode: stop after this many seconds",
)
def crawl(site_names: tuple[str, ...], timeout_s: float) -> None:
    """Crawl now: revisit every page of the sites (conditional GETs make unchanged pages cheap).

    With XXGK_REDIS_URL set this enqueues discovery for the workers and returns; without it the
    whole pipeline runs here, in-process, and waits until it is done."""
    from shared.store.crawl_state import find_site, list_sites

    settings = get_settings()
    if not settings.redis_url and _is_postgresql(settings.database_url):
        # a shared PostgreSQL means workers elsewhere: an in-process crawl would ignore their
        # per-host politeness budget (kept in Redis) and leave its events off the stream
        click.echo(
            "xxgk: XXGK_DATABASE_URL is PostgreSQL but XXGK_REDIS_URL is unset: set it to hand the "
            "crawl to the workers (in-process crawls are for SQLite, e.g. `xxgk demo`)",
            err=True,
        )
        sys.exit(2)
    with _session_factory()() as session:
        if site_names:
            found = [(name, find_site(session, name)) for name in site_names]
            unknown = [name for name, site in found if site is None]
            if unknown:
                raise click.ClickException(f"no such site: {', '.join(unknown)} (see `xxgk sites list`)")
            site_ids = [site.id for _name, site in found if site is not None and site.id is not None]
        else:
            site_ids = [site.id for site in list_sites(session) if site.id is not None]
    if not site_ids:
        raise click.ClickException("no sites registered: `xxgk sites import FILE` first")
    if settings.redis_url:
        from worker.app import create_celery_app

        app = create_celery_app(settings)
        for site_id in site_ids:
            app.send_task("xxgk.crawl.discover_site", args=[site_id], kwargs={"force": True})
        click.echo(f"enqueued discovery of {len(site_ids)} sites (queue crawl)")
        return
    _crawl_in_process(settings, site_ids, timeout_s)


def _is_postgresql(database_url: str) -> bool:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(database_url).get_backend_name() == "postgresql"
    except ArgumentError:
        return database_url.startswith(("postgres", "postgresql"))


def _crawl_in_process(settings, site_ids: list[int], timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    from worker.crawler.politeness import LocalPolitenessGate
    from worker.pipeline import FollowUp, InProcessPipeline, build_resources

    resources = build_resources(settings, gate=LocalPolitenessGate(settings.politeness_delay_s))
    pipeline = InProcessPipeline(resources, force=True)

    def show(stage: str, result) -> None:  # type: ignore[no-untyped-def]
        if stage in ("fetch", "ingest") and not result.outcome.startswith("skipped"):
            click.echo(f"{stage:6} {result.outcome:14} page {result.target}")

    pipeline.on_result = show
    pipeline.submit(FollowUp("discover", site_id) for site_id in site_ids)
    stats = pipeline.run(timeout_s=timeout_s)
    if resources.relay is not None:
        resources.relay()
    summary = ", ".join(
        f"{stage}: " + " ".join(f"{k}={v}" for k, v in sorted(outcomes.items()))
        for stage, outcomes in stats.outcomes.items()
    )
    click.echo(f"done — {summary}")
    for error in stats.errors:
        click.echo(f"error: {error}", err=True)


@main.command()
def sweep() -> None:
    """Re-enqueue pages no message carries any more, and revisits that are due (what beat runs)."""
    settings = get_settings()
    if not settings.redis_url:
        raise click.ClickException("the sweep hands work to Celery workers: set XXGK_REDIS_URL")
    from worker.app import create_celery_app

    create_celery_app(settings).send_task("xxgk.crawl.sweep_stuck")
    click.echo("sweep enqueued (queue crawl)")


@main.command()
@click.option("--serve-only", is_flag=True, help="only serve the sample portal (crawl it with real workers)")
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    help="where the SQLite store and archive go (default: a new temporary directory)",
)
@click.option(
    "--delay",
    "delay_s",
    type=float,
    default=None,
    help="seconds between requests to one host (default 0.2 for the loopback portal)",
)
@click.option("--port", type=int, default=0, help="--serve-only: the port (default: any free one)")
@click.pass_context
def demo(
    ctx: click.Context, serve_only: bool, workdir: Path | None, delay_s: float | None, port: int
) -> None:
    """Serve a sample government portal on 127.0.0.x, crawl it, parse, check, store, alert."""
    from rich.console import Console

    from shared.logging import configure_logging
    from worker.demo import run as demo_run

    if not ctx.find_root().params.get("verbose"):
        # the progress lines tell the story; page-level warnings would only repeat them
        configure_logging(json=False, level="ERROR")
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=150)
    if serve_only:
        demo_run.serve_only(console, port=port, workdir=workdir)
        return
    outcome = demo_run.run_demo(
        workdir=workdir, console=console, delay_s=demo_run.DEMO_DELAY_S if delay_s is None else delay_s
    )
    demo_run.print_outcome(outcome, console)
