"""Queue ``fetch``: one polite, guarded, conditional HTTP request per task."""

from __future__ import annotations

from celery import shared_task

from worker.tasks.base import PipelineTask, limits


@shared_task(bind=True, base=PipelineTask, name="xxgk.fetch.fetch_page", **limits("fetch"))
def fetch_page(self: PipelineTask, page_id: int) -> str:
    """Fetch page ``page_id`` (if it is due and nobody holds it); enqueue links or its ingest."""
    return self.run_stage("fetch", int(page_id))
