"""Restart Redis under the ``Procfile``'s ``beat`` and ``fetch`` (threads pool) lines, run by honcho
— which restarts nothing and stops the whole fleet when one process exits: both keep running,
and work resumes on the restarted server.

Each process is taken to the state it used to die in. The fetch worker holds an unacked message
(a task with an ETA) when Redis goes away: kombu then closed the consumer's channel twice and the
worker exited on ``AttributeError: 'NoneType' object has no attribute 'hostname'``. Beat holds the
RedBeat lock, and the restarted Redis (no persistence: a private ``redis-server`` on a free port)
has neither the lock nor the schedule: beat exited on ``LockNotOwnedError``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis as redis_lib
from celery import Celery

from bench.simweb.stack import RedisServer
from shared.store.engine import open_store
from tests.conftest import IN_CI
from worker.tasks.fetch import fetch_page

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SURVIVE_S = 25.0  # beat ticks every 3 s here, and a worker that dies does so within a second


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"{what} within {timeout_s:.0f} s; honcho's output ends:\n{tail(log)}")


def tail(log: Path, chars: int = 6000) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-chars:]


def send(broker_url: str, name: str, queue: str, **options: object) -> str:
    app = Celery("redis-restart-test", set_as_current=False)
    app.conf.update(broker_url=broker_url, task_serializer="json", broker_connection_retry_on_startup=True)
    try:
        return app.send_task(name, args=[10**9], queue=queue, **options).id
    finally:
        app.close()


def test_beat_and_a_threads_worker_outlive_a_redis_restart(tmp_path: Path, sqlite_url: str) -> None:
    if shutil.which("redis-server") is None:
        reason = "redis-server is not installed (the test restarts a Redis of its own)"
        if IN_CI:
            pytest.fail(f"{reason}; with CI=true it must run, not skip")
        pytest.skip(reason)
    engine, _sessions = open_store(sqlite_url)  # the schema the fetch task reads (page 10**9: none)
    engine.dispose()
    (tmp_path / "redis").mkdir()
    with RedisServer(workdir=tmp_path / "redis") as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("XXGK_")}
        env.update(
            {
                "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONPATH": str(REPO),
                "XXGK_REDIS_URL": server.url,
                "XXGK_DATABASE_URL": sqlite_url,
                "XXGK_ARCHIVE_DIR": str(tmp_path / "archive"),
                "XXGK_LOG_LEVEL": "INFO",
                "XXGK_SWEEP_INTERVAL_S": "3",
                "XXGK_FETCH_CONCURRENCY": "4",
            }
        )
        log = tmp_path / "honcho.log"
        with log.open("wb") as out:
            honcho = subprocess.Popen(
                [
                    str(VENV_BIN / "honcho"),
                    "start",
                    "-f",
                    str(REPO / "Procfile"),
                    "-d",
                    str(REPO),
                    "-e",
                    os.devnull,
                    "--no-colour",
                    "fetch",
                    "beat",
                ],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        client = redis_lib.Redis.from_url(server.url)
        try:
            wait_until(lambda: "ready." in tail(log, 10**6), 30, "the fetch worker was not ready", log)
            wait_until(lambda: client.llen("crawl") > 0, 30, "beat sent no sweep", log)
            held = send(server.url, fetch_page.name, "fetch", countdown=3600)
            wait_until(lambda: held in tail(log, 10**6), 15, "the worker did not take the ETA task", log)

            server.restart(down_s=1.0)  # SIGKILL, 1 s down, a fresh empty server on the same port
            restarted_at = time.monotonic()
            assert client.llen("crawl") == 0  # what beat sends from here on, it sent after the restart

            after = send(server.url, fetch_page.name, "fetch")

            def ran_after() -> bool:
                return any(
                    "task_finished" in line and after in line for line in tail(log, 10**6).splitlines()
                )

            wait_until(ran_after, 30, "the worker did not run a task sent after the restart", log)
            wait_until(lambda: client.llen("crawl") > 0, 30, "beat sent no sweep after the restart", log)
            while time.monotonic() - restarted_at < SURVIVE_S and honcho.poll() is None:
                time.sleep(0.5)
            output = tail(log, 10**6)
            assert honcho.poll() is None, f"a process exited and honcho stopped the fleet:\n{tail(log)}"
            assert "Unrecoverable error" not in output and "LockNotOwnedError" not in output, tail(log)
            assert "beat_lock_reacquired" in output  # beat really lost its lock and took it again
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(honcho.pid, signal.SIGTERM)
            try:
                honcho.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(honcho.pid, signal.SIGKILL)
                honcho.wait()
            client.close()
