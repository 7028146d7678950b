"""Queue ``parse``: extract → parse → check → store → outbox, for one fetched page."""

from __future__ import annotations

from celery import shared_task

from worker.tasks.base import PipelineTask, limits


@shared_task(bind=True, base=PipelineTask, name="xxgk.parse.ingest_page", **limits("parse"))
def ingest_page(self: PipelineTask, page_id: int) -> str:
    """Ingest the archived bytes of page ``page_id``; a page not in ``fetched`` is skipped."""
    return self.run_stage("ingest", int(page_id))
