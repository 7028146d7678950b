"""The Celery application: queues, routes, delivery guarantees and the beat schedule.

One queue per stage, each consumed by its own kind of worker (``Procfile``)::

    crawl   xxgk.crawl.*   discovery fan-out, the stuck-page sweep, missing_report   (threads, small)
    fetch   xxgk.fetch.*   one host per task: its due pages, politely spaced          (threads: I/O bound)
    parse   xxgk.parse.*   extract → parse → check → store → outbox                  (threads: see below)
    alerts  xxgk.alerts.*  outbox → Redis stream + webhooks                           (solo)

Parse workers use the threads pool on purpose: each document is parsed in its own
killable sandbox process (:mod:`worker.sandbox`), which is where the CPU goes, and the
children of a prefork pool are daemonic and may not start processes of their own.

Delivery (reliability.md §1.3): messages are JSON and carry ids only; ``acks_late`` +
``task_reject_on_worker_lost`` + prefetch 1 make delivery at-least-once, and every task is
idempotent over the SQL state of its page. The Redis visibility timeout
(``XXGK_BROKER_VISIBILITY_TIMEOUT_S``, 4 h) is far longer than any task's hard time limit
and any retry countdown (capped at ``XXGK_MAX_RETRY_DELAY_S``, 10 min): an ETA near the
visibility timeout is what makes Redis deliver a task twice. Long waits are not countdowns
at all: they are ``next_fetch_at`` in SQL, picked up by the sweep.

Beat (RedBeat, so only one beat runs even if two are started) schedules coarse triggers
only — per-URL due times live in the ``pages`` table:

- ``sweep-stuck`` every ``XXGK_SWEEP_INTERVAL_S`` (60 s): re-enqueue what no message carries
  any more (crashed workers, a Redis restart) and the revisits that came due. Revisits are
  calendar-aware: daily in ``XXGK_SEASON_MONTHS`` (January–March), weekly otherwise.
- ``discover-sites`` hourly: seeds the entry pages of newly imported sites.
- ``check-missing-*``: ``missing_report`` daily while deadlines pass (Feb–May: 31 Jan for
  departments, local township dates, 31 Mar for governments, plus the grace period), and
  monthly for the rest of the year (late filers stay flagged until their report appears).
- ``relay-outbox`` every 30 s: a safety net for the ``xxgk relay`` process.

A Redis restart (reliability: nothing supervises the ``Procfile``'s processes under honcho)
must leave every process running. Workers reconnect through kombu for ever
(``broker_connection_max_retries=None``) and run without remote control: its pidbox
subscription shares the consumer's channel and, when it is the first to see the dead
connection, kombu 5.7 closes that channel twice, the second time without a transport, and the
worker exits on ``AttributeError`` whenever a message is unacked (any task running or held for
an ETA). Beat talks to Redis through redis-py's own retry (``redbeat_redis_options``) and runs
:class:`RelockingRedBeatScheduler`: RedBeat exits on ``LockNotOwnedError`` when its lock is
gone, which is what a Redis restart without persistence does to it (and to the schedule).

``celery -A worker.app worker -Q fetch -P threads -c 32`` etc.; see the ``Procfile`` (a fetch
thread works one host at a time and mostly sleeps for its politeness delay, so fetch workers
run many threads: hosts crawled at once ≈ fetch threads over all fetch workers).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.schedules import crontab
from kombu import Exchange, Queue
from redbeat import RedBeatScheduler
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import LockNotOwnedError
from redis.retry import Retry

from shared.logging import get_logger
from shared.settings import Settings, get_settings
from worker.tasks.base import TIME_LIMITS

log = get_logger("worker.beat")

QUEUES: tuple[str, ...] = tuple(TIME_LIMITS)
TASK_MODULES: tuple[str, ...] = (
    "worker.tasks.crawl",
    "worker.tasks.fetch",
    "worker.tasks.parse",
    "worker.tasks.alerts",
)
TASK_ROUTES: dict[str, dict[str, str]] = {f"xxgk.{queue}.*": {"queue": queue} for queue in QUEUES}

# when missing_report runs (crontab fields): daily while the deadlines pass, monthly after
CHECK_MISSING_SCHEDULES: dict[str, dict[str, str]] = {
    "check-missing-deadline-season": {"minute": "15", "hour": "6", "month_of_year": "2-5"},
    "check-missing-rest-of-year": {
        "minute": "15",
        "hour": "6",
        "day_of_month": "1",
        "month_of_year": "1,6-12",
    },
}


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    schedule: dict[str, dict[str, Any]] = {
        "sweep-stuck": {"task": "xxgk.crawl.sweep_stuck", "schedule": float(settings.sweep_interval_s)},
        "discover-sites": {"task": "xxgk.crawl.discover_sites", "schedule": crontab(minute="5")},
        "relay-outbox": {"task": "xxgk.alerts.relay_outbox", "schedule": 30.0},
    }
    for name, fields in CHECK_MISSING_SCHEDULES.items():
        schedule[name] = {"task": "xxgk.crawl.check_missing", "schedule": crontab(**fields)}
    return schedule


class RelockingRedBeatScheduler(RedBeatScheduler):
    """RedBeat that outlives a Redis restart: the ``beat_scheduler`` below, so every ``celery beat``
    of this app (Procfile, compose, tests) runs it without naming it.

    RedBeat extends its lock on every tick and raises ``LockNotOwnedError`` out of ``tick`` — so
    beat exits — when the lock key is gone or holds another beat's token. A Redis restart without
    persistence does exactly that, and also erases the schedule entries, which RedBeat writes
    only when beat starts. Here a lost lock sends beat back to where it stands on starting: wait
    for the lock (RedBeat's own blocking ``acquire``; if another beat took it meanwhile, this one
    stays idle as a second beat does), then install the static schedule again (``last_run_at``
    of entries that survived is kept). Connection errors never get here: redis-py retries them.
    """

    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            return float(super().tick(*args, **kwargs))
        except LockNotOwnedError:
            if self.lock is None:
                raise
            log.warning("beat_lock_lost", lock_key=self.lock_key, action="waiting for the lock")
            self.lock.acquire()
            log.warning("beat_lock_reacquired", lock_key=self.lock_key, action="reinstalling the schedule")
            self.setup_schedule()
            return 0.0  # tick again now, with the lock held


def celery_config(settings: Settings) -> dict[str, Any]:
    broker_url = settings.redis_url or "memory://"
    transport_options: dict[str, Any] = {"visibility_timeout": settings.broker_visibility_timeout_s}
    if settings.broker_key_prefix:
        transport_options["global_keyprefix"] = settings.broker_key_prefix
    longest_task = max(hard for hard, _soft in TIME_LIMITS.values())
    if settings.broker_visibility_timeout_s < 3 * max(longest_task, settings.max_retry_delay_s):
        from shared.errors import ConfigError

        raise ConfigError(
            f"XXGK_BROKER_VISIBILITY_TIMEOUT_S={settings.broker_visibility_timeout_s} must be at least 3× the"
            f" longest task ({longest_task}s) and retry delay ({settings.max_retry_delay_s}s):"
            " otherwise Redis redelivers tasks that are still running or waiting"
        )
    return {
        "broker_url": broker_url,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        # a Redis restart or outage of any length: reconnect for ever (default: give up after 100 tries)
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # SIGTERM: stop taking work, give running tasks a moment, then requeue what is unfinished
        "worker_soft_shutdown_timeout": 10.0,
        "worker_enable_soft_shutdown_on_idle": True,
        "worker_max_tasks_per_child": 500,
        "worker_max_memory_per_child": 1024 * 1024,  # KiB
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        # No pidbox (celery inspect / control): its fanout subscription lives on the consumer's
        # channel, and when it sees a Redis restart first, kombu 5.7 closes that channel twice and the
        # worker dies with AttributeError if any message is unacked (tests/integration/test_redis_restart.py).
        "worker_enable_remote_control": False,
        # one direct exchange and routing key per queue: a message reaches exactly its stage's queue
        "task_default_queue": "crawl",
        "task_default_exchange": "crawl",
        "task_default_routing_key": "crawl",
        "task_queues": [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES],
        "task_routes": TASK_ROUTES,
        "task_create_missing_queues": False,
        "timezone": "Asia/Shanghai",  # deadlines are Beijing dates
        "enable_utc": True,
        "beat_schedule": beat_schedule(settings),
        "beat_scheduler": "worker.app:RelockingRedBeatScheduler",
        # beat wakes at least this often and holds RedBeat's lock for 5× as long: a beat killed
        # outright (no release) blocks its successor — and with it the sweep, the safety net of
        # every lost message — for at most 25 s, not 150 s (chaos run: beat killed every ~40 s)
        "beat_max_loop_interval": 5,
        "redbeat_redis_url": settings.redis_url,
        # redis-py's own reconnect for beat's client (lock, schedule): connection errors and timeouts
        # are retried for ever (jittered backoff, at most 5 s apart); timeouts turn a dead peer into an error
        "redbeat_redis_options": {
            "retry": Retry(ExponentialWithJitterBackoff(base=0.5, cap=5.0), retries=-1),
            "socket_connect_timeout": 5.0,
            "socket_timeout": 30.0,
            "socket_keepalive": True,
        },
        "redbeat_key_prefix": f"{settings.broker_key_prefix}xxgk:redbeat",
        "redbeat_lock_timeout": 25,
    }


def create_celery_app(settings: Settings | None = None) -> Celery:
    """A configured Celery app; tasks are registered from :data:`TASK_MODULES`."""
    settings = settings or get_settings()
    app = Celery("xxgk", include=list(TASK_MODULES), set_as_current=False)
    app.conf.update(celery_config(settings))
    from worker.tasks import signals

    signals.connect(app, settings)
    return app


# the one module-level object: what `celery -A worker.app` loads
app = create_celery_app()
