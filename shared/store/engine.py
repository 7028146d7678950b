"""Engines, sessions and schema migrations. Nothing is created at import time.

- :func:`make_engine` builds an engine from a URL (``postgresql://`` and
  ``postgres://`` become psycopg 3). SQLite gets WAL, a busy timeout, foreign
  keys and ``BEGIN IMMEDIATE`` transactions: one writer at a time, so a
  transaction that reads and then writes never loses the write lock to another
  process mid-way (the ingest's cross-year checks rely on that).
- :func:`upgrade_schema` runs the Alembic migrations in
  ``shared/store/migrations`` (configured here, no ``alembic.ini`` needed), so
  ``xxgk db upgrade`` works from any directory.
- :func:`open_store` is what commands and workers call: engine + session factory,
  with the schema created on first use of a fresh database (see :func:`ensure_schema`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

from shared.errors import ConfigError
from shared.logging import get_logger

log = get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 30_000
# any constant; serialises concurrent `db upgrade` runs on one PostgreSQL database
_PG_MIGRATION_LOCK = 0x7878676B

SessionFactory = Callable[[], Session]


def normalise_database_url(url: str) -> str:
    """``postgresql://`` / ``postgres://`` → ``postgresql+psycopg://`` (psycopg 3); others unchanged."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url
        kwargs.setdefault("connect_args", {}).update(
            {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        if in_memory:
            kwargs.setdefault("poolclass", StaticPool)
        engine = sa.create_engine(url, **kwargs)
        _configure_sqlite(engine, wal=not in_memory)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # let SQLAlchemy, not pysqlite, decide when transactions begin (SQLAlchemy's documented recipe)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> SessionFactory:
    def new_session() -> Session:
        return Session(engine, expire_on_commit=False)

    return new_session


def _alembic_config(connection: sa.Connection | None = None) -> Any:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_schema(engine: Engine, revision: str = "head") -> str:
    """Create or migrate the schema to ``revision``; returns the revision now in place."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        command.upgrade(_alembic_config(conn), revision)
    now = current_revision(engine) or ""
    log.info("schema_upgraded", revision=now, dialect=engine.dialect.name)
    return now


_checked: weakref.WeakSet[Engine] = weakref.WeakSet()
_checked_lock = threading.Lock()


def ensure_schema(engine: Engine) -> None:
    """Make sure the schema is at head before first use (once per engine and process).

    A fresh database (no schema yet) and any SQLite file are migrated here, so
    ``xxgk ingest`` and ``xxgk demo`` need no prior ``db upgrade``. A PostgreSQL
    database at another revision is left alone: migrating a shared database is
    ``xxgk db upgrade``'s job, run once, not every worker's at start-up."""
    with _checked_lock:
        if engine in _checked:
            return
        current, head = current_revision(engine), head_revision()
        if current != head:
            if current is not None and not is_sqlite(engine):
                raise ConfigError(
                    f"the database schema is at revision {current}, this code needs {head}: "
                    "run `xxgk db upgrade`"
                )
            upgrade_schema(engine)
        _checked.add(engine)


def open_store(url: str) -> tuple[Engine, SessionFactory]:
    engine = make_engine(url)
    try:
        ensure_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine, make_session_factory(engine)
