"""End-to-end fixtures: a fresh PostgreSQL database, an isolated slice of Redis, the sample portal,
and worker processes started (and killed) like an operator would.

Redis: database 14, with a per-run kombu key prefix (``XXGK_BROKER_KEY_PREFIX``) so queues and
beat state never mix with another run; the politeness keys of the portal's hosts and the
``xxgk:events`` stream of database 14 are cleared first (database 14 belongs to these tests).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import redis

from tests.conftest import PG_ADMIN_URL, require_service
from worker.demo.portal import DemoPortal

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
REDIS_E2E_URL = os.environ.get("XXGK_TEST_REDIS_E2E_URL", "redis://127.0.0.1:6379/14")
# the portal asks for 0.3 s between requests to a host; the crawler is configured with the same
POLITENESS_DELAY_S = 0.3


@pytest.fixture(scope="module")
def services() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)


@pytest.fixture(scope="module")
def e2e_database(services) -> Iterator[str]:
    name = f"xxgk_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def portal() -> Iterator[DemoPortal]:
    with DemoPortal(response_delay_s=0.05) as served:
        yield served


@pytest.fixture(scope="module")
def redis_slice(services, portal) -> Iterator[tuple[object, str]]:
    client = redis.Redis.from_url(REDIS_E2E_URL)
    prefix = f"xxgk_e2e_{uuid.uuid4().hex[:8]}:"
    stale = [f"xxgk:polite:{host}" for host in portal.addresses_in_use]
    client.delete("xxgk:events", *stale)
    try:
        yield client, prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.delete("xxgk:events", *stale)
        client.close()


@dataclass
class Fleet:
    """Processes started with the test's environment; logs kept for the failure message."""

    env: dict[str, str]
    logdir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        with (self.logdir / f"{name}.log").open("ab") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs[name] = proc
        return proc

    def worker(self, name: str, queues: str = "crawl,fetch,parse,alerts", concurrency: int = 4) -> None:
        self.start(
            name,
            [
                str(VENV_BIN / "celery"),
                "-A",
                "worker.app",
                "worker",
                "-Q",
                queues,
                "-P",
                "threads",
                "-c",
                str(concurrency),
                "-n",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "WARNING",
            ],
        )

    def beat(self) -> None:
        self.start(
            "beat",
            [
                str(VENV_BIN / "celery"),
                "-A",
                "worker.app",
                "beat",
                "--pidfile=",
                "-l",
                "WARNING",
            ],
        )

    def xxgk(self, *args: str, timeout_s: float = 60.0) -> str:
        done = subprocess.run(
            [str(VENV_BIN / "xxgk"), *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        assert done.returncode == 0, f"xxgk {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def kill(self, name: str, *, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after ``grace_s`` if it is still there (the whole process group)."""
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name, grace_s=10)

    def logs_by_name(self) -> dict[str, str]:
        return {path.stem: path.read_text(errors="replace") for path in sorted(self.logdir.glob("*.log"))}

    def logs(self) -> str:
        parts = []
        for path in sorted(self.logdir.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"----- {path.name} (last 3000 chars)\n{text[-3000:]}")
        return "\n".join(parts)


def e2e_environment(
    *, database_url: str, prefix: str, archive: Path, portal: DemoPortal, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XXGK_")}
    env.update(
        {
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "XXGK_DATABASE_URL": database_url,
            "XXGK_REDIS_URL": REDIS_E2E_URL,
            "XXGK_BROKER_KEY_PREFIX": prefix,
            "XXGK_ARCHIVE_DIR": str(archive),
            "XXGK_SSRF_ALLOW": ",".join(portal.allow_list),
            "XXGK_POLITENESS_DELAY_S": str(POLITENESS_DELAY_S),
            # short timeouts and leases so that a killed worker's page and host come back within seconds
            "XXGK_FETCH_TIMEOUT_S": "2",
            "XXGK_FETCH_LEASE_S": "6",
            "XXGK_STUCK_AFTER_S": "6",
            "XXGK_SWEEP_INTERVAL_S": "2",
            "XXGK_LOG_JSON": "1",
            "XXGK_LOG_LEVEL": "INFO",
        }
    )
    env.update(extra)
    return env


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    fleet: Fleet | None = None,
    interval_s: float = 0.25,
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval_s)
    logs = fleet.logs() if fleet is not None else ""
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}\n{logs}")
