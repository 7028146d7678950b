"""The base class of every xxgk task: run one pipeline stage, retry or record, dispatch follow-ups."""

from __future__ import annotations

import random
from typing import Any

import kombu.exceptions
from celery import Task

from shared.errors import PermanentError, PolitenessDeferred, StoreUnavailable, TransientError
from shared.logging import get_logger
from worker.pipeline import FollowUp, PipelineResources, StageResult, record_crash, run_stage
from worker.tasks import runtime

log = get_logger(__name__)

# the task each follow-up stage becomes
STAGE_TASKS: dict[str, str] = {
    "discover": "xxgk.crawl.discover_site",
    "fetch": "xxgk.fetch.fetch_page",
    "ingest": "xxgk.parse.ingest_page",
    "alerts": "xxgk.alerts.relay_outbox",
}
# hard / soft time limits per queue (seconds): all far below the broker's visibility timeout
TIME_LIMITS: dict[str, tuple[int, int]] = {
    "crawl": (300, 240),
    # a fetch works one host for up to XXGK_FETCH_BATCH_S (120 s), plus its last request
    "fetch": (600, 540),
    "parse": (600, 540),
    "alerts": (300, 240),
}
# a transient failure is retried this often by Celery; after that the SQL sweep owns the page
MAX_TRANSIENT_RETRIES = 5
# a host that keeps deferring (Retry-After, backoff, an open circuit) is left to the sweep after this
MAX_POLITENESS_RETRIES = 200


def limits(queue: str) -> dict[str, int]:
    hard, soft = TIME_LIMITS[queue]
    return {"time_limit": hard, "soft_time_limit": soft}


class PipelineTask(Task):  # type: ignore[misc]
    """At-least-once delivery over idempotent stages; results live in SQL, not in Celery."""

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True
    max_retries = None  # bounded per error class in run()
    typing = True

    def run_stage(self, stage: str, target: int | None = None, *, force: bool = False) -> str:
        resources = runtime.resources()
        try:
            result = run_stage(
                resources,
                stage,
                target,
                force=force,
                emit=lambda follow_up: self.enqueue(follow_up, force=force),
            )
        except TransientError as exc:
            return self._retry_or_leave(exc, resources)
        except PermanentError as exc:
            # the stage records page-level failures itself; this is one it could not pin on a page
            log.warning("task_failed", stage=stage, target=target, error=exc.code, reason=exc.message)
            return exc.code
        except Exception as exc:
            # a bug: record it so the user sees why, then let Celery mark the task failed. An
            # ingest's page is the one that crashed (failed, with the exception; revisited as any
            # failed page); a fetch batch records crashes on its own pages, so what reaches here
            # is the batch's, not the page the message named — logged only
            record_crash(resources, stage if stage != "fetch" else "fetch_batch", target, exc)
            raise
        try:
            self.dispatch(result, force=force)
        except StoreUnavailable as exc:
            return self._retry_or_leave(exc, resources)
        return result.outcome

    def _retry_or_leave(self, exc: TransientError, resources: PipelineResources) -> str:
        politeness = isinstance(exc, PolitenessDeferred)
        cap = MAX_POLITENESS_RETRIES if politeness else MAX_TRANSIENT_RETRIES
        delay = exc.retry_after_s if exc.retry_after_s is not None else 5.0 * 2**self.request.retries
        delay = min(delay, resources.config.max_retry_delay_s)
        if self.request.retries >= cap:
            log.info("task_left_to_sweep", task=self.name, error=exc.code, retries=self.request.retries)
            return f"left_to_sweep_{exc.code}"
        # a little jitter so that tasks deferred together do not return together
        countdown = delay * random.uniform(1.0, 1.1) if politeness else delay
        raise self.retry(exc=exc, countdown=countdown, max_retries=cap)

    def dispatch(self, result: StageResult, *, force: bool = False) -> None:
        for follow_up in result.follow_ups:
            self.enqueue(follow_up, force=force)

    def enqueue(self, follow_up: FollowUp, *, force: bool = False) -> None:
        args: list[Any] = [] if follow_up.target is None else [follow_up.target]
        kwargs: dict[str, Any] = {"force": True} if follow_up.stage == "discover" and force else {}
        countdown = follow_up.delay_s if follow_up.delay_s > 0 else None
        try:
            self.app.send_task(STAGE_TASKS[follow_up.stage], args=args, kwargs=kwargs, countdown=countdown)
        except kombu.exceptions.OperationalError as exc:
            # the broker is down: the stage is retried; what it wrote to SQL is found again by the
            # sweep (fetched pages awaiting ingest, due pages of every host)
            raise StoreUnavailable(f"broker unavailable: cannot enqueue {follow_up.stage}: {exc}") from exc
