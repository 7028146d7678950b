"""Queue ``crawl``: discovery, the sweep of the SQL frontier, missing_report."""

from __future__ import annotations

from celery import shared_task

from worker.tasks.base import PipelineTask, limits


@shared_task(bind=True, base=PipelineTask, name="xxgk.crawl.discover_site", **limits("crawl"))
def discover_site(self: PipelineTask, site_id: int, force: bool = False) -> str:
    """Seed one site's entry pages and enqueue the fetches that are due (all, with ``force``)."""
    return self.run_stage("discover", int(site_id), force=bool(force))


@shared_task(bind=True, base=PipelineTask, name="xxgk.crawl.discover_sites", **limits("crawl"))
def discover_sites(self: PipelineTask, force: bool = False) -> str:
    """One discover_site per registered site."""
    return self.run_stage("discover_all", force=bool(force))


@shared_task(bind=True, base=PipelineTask, name="xxgk.crawl.sweep_stuck", **limits("crawl"))
def sweep_stuck(self: PipelineTask) -> str:
    """Re-enqueue pages no message carries any more, and revisits that came due."""
    return self.run_stage("sweep")


@shared_task(bind=True, base=PipelineTask, name="xxgk.crawl.check_missing", **limits("crawl"))
def check_missing(self: PipelineTask) -> str:
    """missing_report for every tracked agency whose deadline (plus grace) has passed."""
    return self.run_stage("check_missing")
