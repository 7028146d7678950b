"""Process-level hooks: structlog for Celery, one canonical line per task, fresh resources per child."""

from __future__ import annotations

import time
from typing import Any

import structlog
from celery import Celery, signals

from shared.logging import configure_logging, get_logger
from shared.settings import Settings

log = get_logger("worker.tasks")
_started: dict[str, float] = {}
_connected = False


def connect(app: Celery, settings: Settings) -> None:
    """Connect the hooks once per process (signals are global in Celery)."""
    global _connected  # noqa: PLW0603 - Celery's signals are process-global
    if _connected:
        return
    _connected = True

    @signals.setup_logging.connect(weak=False)
    def _setup_logging(**_kw: Any) -> None:
        # services log JSON when XXGK_LOG_JSON=1; Celery must not install its own handlers
        configure_logging(json=settings.log_json, level=settings.log_level)

    @signals.worker_process_init.connect(weak=False)
    def _fresh_resources(**_kw: Any) -> None:
        from worker.tasks import runtime

        runtime.install(None)

    @signals.worker_shutting_down.connect(weak=False)
    def _stop_long_stages(**_kw: Any) -> None:
        from worker.tasks import runtime

        runtime.shutting_down.set()

    @signals.task_prerun.connect(weak=False)
    def _bind(task_id: str | None = None, task: Any = None, **_kw: Any) -> None:
        structlog.contextvars.bind_contextvars(task_id=task_id, task_name=getattr(task, "name", None))
        if task_id:
            _started[task_id] = time.monotonic()

    @signals.task_postrun.connect(weak=False)
    def _finished(
        task_id: str | None = None, task: Any = None, retval: Any = None, state: str | None = None, **_kw: Any
    ) -> None:
        began = _started.pop(task_id or "", None)
        duration_ms = round((time.monotonic() - began) * 1000) if began is not None else None
        outcome = retval if isinstance(retval, str) else (state or "").lower()
        log.info("task_finished", outcome=outcome, state=state, duration_ms=duration_ms)
        structlog.contextvars.unbind_contextvars("task_id", "task_name")
