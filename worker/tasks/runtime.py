"""Per-process resources of a worker: the store, the archive, the fetcher, the relay.

Built lazily on the first task in each (forked) process — SQLAlchemy pools and Redis
clients must not cross ``fork()`` — and dropped by ``worker_process_init``. Tests put
their own in with :func:`install`.
"""

from __future__ import annotations

import threading

from shared.settings import get_settings
from worker.pipeline import PipelineResources, build_resources

_lock = threading.Lock()
_resources: PipelineResources | None = None
# set when the worker starts its warm shutdown: long stages (a fetch batch) stop after the current page
shutting_down = threading.Event()


def resources() -> PipelineResources:
    global _resources  # noqa: PLW0603 - one set of resources per (forked) worker process
    with _lock:
        if _resources is None:
            settings = get_settings()
            _resources = build_resources(settings)
            _resources.should_stop = shutting_down.is_set
        return _resources


def install(custom: PipelineResources | None) -> None:
    """Use ``custom`` in this process (``None``: build from settings on next use)."""
    global _resources  # noqa: PLW0603 - see resources()
    with _lock:
        _resources = custom
