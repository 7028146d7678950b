"""The chaos run's short mode (``bench/chaos.py --short``): kills, a Redis restart, dropped
PostgreSQL connections — 0 pages lost, 0 duplicates, every seeded anomaly stored once and
delivered; and the negative control (Celery's default acks, no sweep) must lose pages.

Runs the harness as a subprocess (it starts its own redis-server on a free loopback port, a fresh
PostgreSQL database, the simulated web on 127.0.1.x and the workers) and reads its JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI, require_service

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(420)
def test_chaos_short_run_loses_nothing_and_the_control_does(tmp_path: Path) -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    if shutil.which("redis-server") is None:
        reason = "redis-server is not installed (the chaos run restarts its own Redis)"
        if IN_CI:
            pytest.fail(f"{reason}; with CI=true the chaos run must run, not skip")
        pytest.skip(reason)
    out = tmp_path / "chaos.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "chaos.py"), "--short", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert out.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    ours, control = results["xxgk"], results["control"]
    assert ours["redis_restarted"] and ours["pg_connections_dropped"], ours["timeline"]
    assert set(ours["kills"]) >= {"fetch", "parse", "crawl", "relay", "alerts"}, ours["kills"]
    assert ours["lost"] == 0, (ours["lost_documents"], ours["not_terminal"])
    assert ours["without_reason"] == 0
    assert ours["duplicate_report_rows"] == 0 and ours["duplicate_findings"] == 0
    assert ours["wrong_findings"] == []
    assert ours["seeded_anomalies"] > 0
    assert ours["anomalies_stored_once"] == ours["seeded_anomalies"]
    assert ours["anomalies_delivered"] == ours["seeded_anomalies"]
    assert control["lost"] > 0, "the negative control lost nothing: the harness cannot see loss"
    assert run.returncode == 0, run.stdout[-3000:]
