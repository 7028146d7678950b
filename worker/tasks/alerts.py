"""Queue ``alerts``: publish what the outbox holds (stream + webhooks)."""

from __future__ import annotations

from celery import shared_task

from worker.tasks.base import PipelineTask, limits


@shared_task(bind=True, base=PipelineTask, name="xxgk.alerts.relay_outbox", **limits("alerts"))
def relay_outbox(self: PipelineTask) -> str:
    """One relay pass; safe to run any number of times (events carry stable ids)."""
    return self.run_stage("alerts")
