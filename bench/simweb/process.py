"""Run the simulated web as a subprocess and talk to its control API (what benchmarks and tests use).

    with SimWebProcess(hosts=50, reports=40) as web:
        urls = web.entry_urls()
        ...                                   # let a crawler loose on them
        log = web.fetch_log()                 # what the server saw
        truth = web.truth()

The server runs in its own process so that its CPU is not the crawler's and so that a
crawler killed mid-run cannot take the server's log with it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.simweb.analysis import LogEntry

REPO = Path(__file__).resolve().parents[2]


class SimWebProcess:
    def __init__(
        self,
        *,
        hosts: int = 10,
        reports: int = 20,
        page_size: int = 15,
        port: int = 0,
        max_seconds: float = 3600.0,
        max_requests: int = 1_000_000,
        faults: list[dict[str, Any]] | None = None,
        config: dict[str, Any] | None = None,
        log_path: str | None = None,
        python: str = sys.executable,
        network: str = "127.0.1",
    ) -> None:
        self.args = [
            python,
            "-m",
            "bench.simweb",
            "--hosts",
            str(hosts),
            "--reports",
            str(reports),
            "--page-size",
            str(page_size),
            "--port",
            str(port),
            "--max-seconds",
            str(max_seconds),
            "--max-requests",
            str(max_requests),
            "--network",
            network,
        ]
        if log_path:
            self.args += ["--log", log_path]
        if config:
            self.args += ["--config", json.dumps(config)]
        for fault in faults or []:
            self.args += ["--fault", json.dumps(fault)]
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.control_port = 0
        self._next_seq = 0
        self._truth: dict[str, Any] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout_s: float = 60.0) -> SimWebProcess:
        self.proc = subprocess.Popen(
            self.args,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        deadline = time.monotonic() + timeout_s
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(
                    "simweb exited before it was ready: "
                    + (self.proc.stderr.read() if self.proc.stderr else "")
                )
            if line.startswith("READY"):
                fields = dict(part.split("=", 1) for part in line.split()[1:])
                self.port, self.control_port = int(fields["port"]), int(fields["control"])
                return self
        raise RuntimeError("simweb did not become ready in time")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self._call("POST", "/stop")
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> SimWebProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control API -------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None, timeout_s: float = 30.0) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.control_port}{path}", data=data, method=method
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            return json.loads(answer.read())

    def truth(self) -> dict[str, Any]:
        if self._truth is None:
            self._truth = self._call("GET", "/truth")
        return self._truth

    def entry_urls(self) -> list[str]:
        return [f"http://{h['address']}:{self.port}{h['entry_path']}" for h in self.truth()["hosts"]]

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def fetch_log(self, *, since: int = 0) -> list[LogEntry]:
        answer = self._call("GET", f"/log?since={since}", timeout_s=120)
        fields = answer["fields"]
        return [LogEntry(**dict(zip(fields, entry, strict=True))) for entry in answer["entries"]]

    def reset_log(self) -> None:
        self._call("POST", "/log/reset")

    def add_faults(self, faults: list[dict[str, Any]]) -> None:
        self._call("POST", "/faults", faults)

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")
