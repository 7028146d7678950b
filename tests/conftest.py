"""Shared fixtures: where the real services are, and how to get a clean slice of them.

Integration tests use real PostgreSQL and Redis. Outside CI a missing service
skips them with the reason; with ``CI=true`` a missing service is a failure. The
reference kit (seeds, corpus, spec) beside the checkout follows the same rule:
:func:`require_kit`, or the ``seeds_dir`` / ``corpus_dir`` fixtures.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

PG_ADMIN_URL = os.environ.get("XXGK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_TEST_URL = os.environ.get("XXGK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

SHARED_KIT = Path(__file__).resolve().parents[2] / "shared"
SEEDS_DIR = SHARED_KIT / "seeds"
CORPUS_DIR = SHARED_KIT / "corpus"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: integration tests must run, not skip)")
    pytest.skip(message)


def require_kit(path: Path) -> Path:
    """``path`` inside the reference kit; skip without it, fail with ``CI=true``
    (a CI run that silently skips the golden tests has not tested the parser)."""
    if path.exists():
        return path
    message = f"the reference kit is not beside the checkout ({path})"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: kit tests must run, not skip)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    name = f"xxgk_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_TEST_URL


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'xxgk.sqlite3'}"


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    return require_kit(SEEDS_DIR)


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    return require_kit(CORPUS_DIR)


@pytest.fixture(autouse=True)
def _restore_structlog_config() -> Iterator[None]:
    """``xxgk`` commands run in-process (CliRunner) configure structlog at WARNING; restore the
    configuration after each test so later tests' ``capture_logs`` still see info events."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
