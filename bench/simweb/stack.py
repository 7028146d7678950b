"""The real xxgk-watch stack as processes, for the crawl and pipeline benches and the chaos run.

:class:`XxgkStack` makes a fresh PostgreSQL database (dropped at the end), picks a Redis
database and a broker key prefix, writes the site registry of a simulated web, and starts
Celery workers by kind — exactly the ``Procfile``'s commands — as child processes it can
count CPU for, kill with SIGKILL and restart. :class:`RedisServer` is a private
``redis-server`` on another loopback port (``--save "" --appendonly no``) for runs that restart
Redis: the machine's shared Redis is never restarted.

Everything is loopback and bounded; nothing here is imported by ``shared/`` or ``worker/``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("XXGK_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
SHARED_REDIS = os.environ.get("XXGK_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
# the crawler's per-host keys for the simulated hosts shared by every deployment on a Redis
# (worker/crawler/politeness.py, robots.py); host ownership lives under the deployment's prefix
HOST_STATE_PATTERNS = ("xxgk:polite:127.0.1.*", "xxgk:robots:*//127.0.1.*")
QUEUES = ("crawl", "fetch", "parse", "alerts")


def tree_cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """User + system CPU of each of these processes and their live descendants (psutil), by pid."""
    import psutil

    cpu: dict[int, float] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                cpu[proc.pid] = times.user + times.system
    return cpu


def postgres_cpu_seconds(database: str) -> float:
    """CPU of the PostgreSQL backends serving ``database`` right now (psutil; needs permission)."""
    import psutil

    total = 0.0
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if cmdline.startswith("postgres:") and f" {database} " in f"{cmdline} ":
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """A private redis-server on a loopback port, restartable, never persisted to disk."""

    def __init__(self, port: int = 0, *, workdir: Path | None = None) -> None:
        # 0: a free port now, so that two runs (a bench here, CI there) never share one server
        self.port = port or _free_port()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="xxgk-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        if _listening(self.port):
            raise RuntimeError(
                f"127.0.0.1:{self.port} is taken: refusing to share (or restart) another Redis"
            )
        self.proc = subprocess.Popen(
            [
                binary,
                "--logfile",
                str(self.workdir / "redis.log"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_up()
        return self

    def _wait_up(self, timeout_s: float = 15.0) -> None:
        import redis

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
                return
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not come up")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, down_s: float = 1.0) -> None:
        """Stop (everything in memory is gone: queues, unacked messages, gate state), wait, start."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        time.sleep(down_s)
        self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if os.environ.get("XXGK_BENCH_KEEP"):
            print(f"kept {self.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class Worker:
    kind: str  # crawl | fetch | parse | alerts | relay | beat
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class XxgkStack:
    """A throw-away deployment: own database, own Redis keyspace, own archive; workers as children."""

    redis_url: str = SHARED_REDIS
    delay_s: float = 1.0
    env_overrides: dict[str, str] = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="xxgk-stack-")))
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    workers: list[Worker] = field(default_factory=list)
    database: str = ""
    # the module Celery loads (``-A``): the negative control swaps in Celery's default delivery
    celery_app: str = "worker.app"
    relay_options: tuple[str, ...] = ()

    # -- setup ---------------------------------------------------------------------------------

    @property
    def prefix(self) -> str:
        return f"xxgkbench{self.run_id}:"

    @property
    def database_url(self) -> str:
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.database}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("XXGK_")}
        env.update(
            {
                "PYTHONPATH": str(REPO),
                "XXGK_DATABASE_URL": self.database_url,
                "XXGK_REDIS_URL": self.redis_url,
                "XXGK_BROKER_KEY_PREFIX": self.prefix,
                "XXGK_ARCHIVE_DIR": str(self.workdir / "archive"),
                "XXGK_SSRF_ALLOW": "127.0.1.0/24",
                "XXGK_POLITENESS_DELAY_S": str(self.delay_s),
                "XXGK_LOG_JSON": "1",
                "XXGK_LOG_LEVEL": "WARNING",
            }
        )
        env.update(self.env_overrides)
        return env

    def create_database(self) -> None:
        import psycopg

        self.database = f"xxgk_bench_{self.run_id}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        self.xxgk("db", "upgrade")

    def drop_database(self) -> None:
        import psycopg

        if not self.database:
            return
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        self.database = ""

    def redis(self) -> Any:
        import redis

        return redis.Redis.from_url(self.redis_url)

    def clear_redis(self) -> None:
        """Our broker keys and the crawler's per-host state of the ``127.0.1.*`` hosts: politeness
        gate, host ownership, shared robots.txt (so that no run inherits the one before it)."""
        client = self.redis()
        for pattern in (f"{self.prefix}*", f"_kombu.binding.*{self.prefix}*", *HOST_STATE_PATTERNS):
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)

    def xxgk(self, *args: str, check: bool = True, timeout_s: float = 300.0) -> str:
        result = subprocess.run(
            [str(VENV_BIN / "xxgk"), *args],
            cwd=self.workdir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"xxgk {' '.join(args)} failed: {result.stderr[-2000:]}")
        return result.stdout

    def import_sites(self, truth: dict[str, Any], port: int) -> int:
        lines = ["sites:"]
        for host in truth["hosts"]:
            lines += [
                f"  - name: {host['name']}",
                "    level: government",
                "    entry_urls:",
                f"      - http://{host['address']}:{port}{host['entry_path']}",
                f"    domains: [{host['address']}]",
            ]
        registry = self.workdir / "sites.yaml"
        registry.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.xxgk("sites", "import", str(registry))
        return len(truth["hosts"])

    # -- workers -------------------------------------------------------------------------------

    def worker_command(self, kind: str, *, concurrency: int = 1, pool: str | None = None) -> list[str]:
        if kind == "relay":
            return [str(VENV_BIN / "xxgk"), "relay", "--interval", "0.5", *self.relay_options]
        if kind == "beat":
            return [
                str(VENV_BIN / "celery"),
                "-A",
                self.celery_app,
                "beat",
                "--pidfile=",
                "-l",
                "WARNING",
                "-s",
                str(self.workdir / "beat-schedule"),
            ]
        # as in the Procfile
        pools = {"crawl": "threads", "fetch": "threads", "parse": "threads", "alerts": "solo"}
        command = [
            str(VENV_BIN / "celery"),
            "-A",
            self.celery_app,
            "worker",
            "-Q",
            kind,
            "-P",
            pool or pools[kind],
            "-n",
            f"{kind}.{uuid.uuid4().hex[:6]}@bench",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "WARNING",
            "--max-tasks-per-child",
            "100000",
        ]
        if (pool or pools[kind]) != "solo":
            command += ["-c", str(concurrency)]
        return command

    def start_worker(
        self,
        kind: str,
        *,
        concurrency: int = 1,
        pool: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Worker:
        name = f"{kind}-{len([w for w in self.workers if w.kind == kind]) + 1}"
        log_path = self.workdir / f"{name}.log"
        env = {**self.env(), **(extra_env or {})}
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                self.worker_command(kind, concurrency=concurrency, pool=pool),
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = Worker(kind, name, proc, log_path)
        self.workers.append(worker)
        return worker

    def kill_worker(self, worker: Worker, sig: int = signal.SIGKILL) -> None:
        """SIGKILL the worker's whole process group (the main process and its pool children)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.proc.wait(timeout=10)

    def stop_workers(self, *, timeout_s: float = 20.0) -> None:
        for worker in self.workers:
            if worker.alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for worker in self.workers:
            remaining = max(deadline - time.monotonic(), 0.1)
            try:
                worker.proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                self.kill_worker(worker)
        # a prefork child may outlive its parent for a moment: the group goes too
        for worker in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.proc.pid, signal.SIGKILL)
        self.workers = [w for w in self.workers if w.alive]

    def worker_pids(self, *kinds: str) -> list[int]:
        return [w.proc.pid for w in self.workers if w.alive and (not kinds or w.kind in kinds)]

    def send_task(
        self, name: str, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None
    ) -> None:

        app = self._celery_app()
        app.send_task(name, args=args or [], kwargs=kwargs or {}, queue=name.split(".")[1])

    def _celery_app(self) -> Any:
        if not hasattr(self, "_app"):
            from celery import Celery

            app = Celery("bench", set_as_current=False)
            app.conf.update(
                broker_url=self.redis_url,
                broker_transport_options={"global_keyprefix": self.prefix},
                task_serializer="json",
                broker_connection_retry_on_startup=True,
            )
            self._app = app
        return self._app

    def crawl_all(self) -> None:
        """What ``xxgk crawl`` does with Redis: one discover_site(force) per site."""
        self.xxgk("crawl")

    # -- reading the store ---------------------------------------------------------------------

    def sql(self, query: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return list(conn.execute(query, params or {}).fetchall())

    def page_states(self) -> dict[str, int]:
        return {state: int(n) for state, n in self.sql("SELECT state, count(*) FROM pages GROUP BY state")}

    def pending_pages(self, horizon_s: float | None = None) -> int:
        """Pages with work left: not at rest, or due (or leased) within the hour. With ``horizon_s``,
        pages whose next attempt is scheduled further out than that (a long Retry-After, a
        robots.txt back-off) do not count: they are deferred, not pending."""
        if horizon_s is None:
            rows = self.sql(
                "SELECT count(*) FROM pages WHERE state IN ('discovered', 'fetched')"
                " OR (next_fetch_at IS NOT NULL AND next_fetch_at < now() + interval '1 hour')"
            )
        else:
            rows = self.sql(
                "SELECT count(*) FROM pages WHERE state = 'fetched'"
                " OR (next_fetch_at IS NULL AND state = 'discovered')"
                " OR next_fetch_at < now() + make_interval(secs => %(h)s)",
                {"h": horizon_s},
            )
        return int(rows[0][0])

    def queue_lengths(self) -> dict[str, int]:
        client = self.redis()
        return {queue: int(client.llen(f"{self.prefix}{queue}")) for queue in QUEUES}

    def redis_bytes(self) -> dict[str, int]:
        """MEMORY USAGE of every key this deployment owns: broker keys and the per-host state."""
        client = self.redis()
        sizes: dict[str, int] = {"broker": 0, "politeness": 0}
        for key in client.scan_iter(match=f"{self.prefix}*", count=1000):
            sizes["broker"] += int(client.memory_usage(key, samples=0) or 0)
        for pattern in HOST_STATE_PATTERNS:
            for key in client.scan_iter(match=pattern, count=1000):
                sizes["politeness"] += int(client.memory_usage(key, samples=0) or 0)
        return sizes

    def wait_idle(
        self, *, timeout_s: float, settle_s: float = 2.0, on_poll: Any = None, poll_s: float = 1.0
    ) -> bool:
        """Until no page has work left (twice in a row, ``settle_s`` apart) or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        calm_since: float | None = None
        while time.monotonic() < deadline:
            if on_poll is not None:
                on_poll()
            total = self.sql("SELECT count(*) FROM pages")[0][0]
            if total and self.pending_pages() == 0:
                calm_since = calm_since or time.monotonic()
                if time.monotonic() - calm_since >= settle_s:
                    return True
            else:
                calm_since = None
            time.sleep(poll_s)
        return False

    def close(self) -> None:
        self.stop_workers()
        with contextlib.suppress(Exception):
            self.clear_redis()
        with contextlib.suppress(Exception):
            self.drop_database()
        if os.environ.get("XXGK_BENCH_KEEP"):  # worker logs, for a post-mortem
            print(f"kept {self.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> XxgkStack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.create_database()
        self.clear_redis()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sampler:
    """A background thread that samples, every ``interval_s``: the CPU seconds of some process trees
    (a process that exits keeps its last sample, so a recycled pool child is not forgotten) and
    any number of gauges (Redis bytes, PostgreSQL backend CPU …). Benchmarks read the series for
    the window the server's log says the crawl took."""

    def __init__(self, pids: Any, gauges: dict[str, Any] | None = None, *, interval_s: float = 0.5) -> None:
        import threading

        self._pids = pids  # a callable returning the root pids, re-read each sample
        self.gauges = gauges or {}
        self.interval_s = interval_s
        self.series: list[tuple[float, float, dict[str, float]]] = []
        self._last_cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def _cpu(self) -> float:
        # processes that exited keep their last reading: a killed worker's CPU still counts
        self._last_cpu.update(tree_cpu_seconds(self._pids()))
        return sum(self._last_cpu.values())

    def sample(self) -> None:
        values: dict[str, float] = {}
        for name, gauge in self.gauges.items():
            with contextlib.suppress(Exception):
                values[name] = float(gauge())
        self.series.append((time.time(), self._cpu(), values))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def start(self) -> Sampler:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.sample()

    def _at(self, moment: float) -> tuple[float, float, dict[str, float]]:
        before = [s for s in self.series if s[0] <= moment]
        return before[-1] if before else self.series[0]

    def cpu_between(self, start: float, end: float) -> float:
        """CPU seconds used from the last sample at or before ``start`` to the first one after ``end``."""
        after = [s for s in self.series if s[0] >= end]
        last = after[0] if after else self.series[-1]
        return last[1] - self._at(start)[1]

    def gauge_between(self, name: str, start: float, end: float) -> list[float]:
        return [s[2][name] for s in self.series if start <= s[0] <= end and name in s[2]]
