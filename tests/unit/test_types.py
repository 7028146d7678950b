"""`mypy --strict` holds for the pure core and store (pyproject.toml [tool.mypy]: files = shared)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_mypy_strict_on_shared() -> None:
    # the venv's own mypy (same interpreter: its stubs and the pydantic plugin); the incremental
    # cache in the git-ignored .mypy_cache makes a re-run take a second or two instead of ~15
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--cache-dir",
            str(REPO / ".mypy_cache"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
