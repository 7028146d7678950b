"""Fixtures shared by the adapter tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlmodel import Session

from shared.store.engine import open_store


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Callable[[], Session]]:
    """A fresh SQLite store (migrated), as its session factory."""
    engine, session_factory = open_store(sqlite_url)
    yield session_factory
    engine.dispose()
