"""Settings from the environment (and an optional ``.env``), prefix ``XXGK_``.

The contract names (architecture.md) are ``XXGK_DATABASE_URL``, ``XXGK_REDIS_URL``,
``XXGK_ARCHIVE_DIR``, ``XXGK_WEBHOOK_URLS`` and ``XXGK_WEBHOOK_SECRET``; the rest
are ours. Nothing reads the environment at import time: call :func:`get_settings`.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="XXGK_", env_file=".env", extra="ignore")

    # store: a SQLite file in the working directory unless told otherwise
    database_url: str = "sqlite:///xxgk.sqlite3"
    # unset: embedded, in-process mode (no broker, no politeness sharing across machines)
    redis_url: str | None = None
    archive_dir: Path = Path("xxgk-archive")
    webhook_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_secret: str | None = None
    # webhook receivers on private/loopback addresses that the SSRF guard may reach
    webhook_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # logging
    log_json: bool = False
    log_level: str = "INFO"

    # extraction limits (each turns into a typed LimitExceeded error)
    max_document_bytes: int = 50 * 1024 * 1024
    max_decompressed_bytes: int = 200 * 1024 * 1024
    max_pdf_pages: int = 100
    max_html_depth: int = 256
    extract_timeout_s: float = 60.0
    # OCR of a 150-dpi scan peaks around 1 GB resident (onnxruntime arenas): 1024 killed honest
    # scans now and then (seed 004 at ~1030 MB), so the cap leaves room for it
    extract_memory_mb: int = 2048

    # crawling
    user_agent: str = (
        "xxgk-watch/0.1 (+https://github.com/xxgk-watch/xxgk-watch; transparency research crawler)"
    )
    fetch_timeout_s: float = 20.0
    politeness_delay_s: float = 2.0
    max_fetch_bytes: int = 50 * 1024 * 1024
    # hosts or IPs the SSRF guard lets through although they are private (the test portal)
    ssrf_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # government domains only, plus these
    extra_allowed_domains: Annotated[list[str], NoDecode] = Field(default_factory=list)
    revisit_in_season_s: int = 24 * 3600
    revisit_off_season_s: int = 7 * 24 * 3600

    # pipeline (worker/pipeline.py, worker/app.py): the reporting season is when revisits are
    # daily (deadlines 31 Jan / 31 Mar, late filings trickle in until spring)
    season_months: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [1, 2, 3])
    # a claimed page is someone's for this long; after it the sweep hands it to another worker
    fetch_lease_s: int = 300
    # one fetch task works its host's due pages for this long at most, then leaves a follow-up
    fetch_batch_s: float = 120.0
    # a page fetched but not ingested for this long is re-enqueued by the sweep
    stuck_after_s: int = 900
    sweep_interval_s: float = 60.0
    sweep_batch: int = 500
    max_page_attempts: int = 5
    # no Celery countdown ever exceeds this: far below the broker's visibility timeout
    max_retry_delay_s: int = 600
    broker_visibility_timeout_s: int = 4 * 3600
    # kombu's global key prefix: several deployments (or test runs) on one Redis database
    broker_key_prefix: str = ""

    # rules
    township_deadline_mmdd: str = "02-20"
    missing_report_grace_days: int = 14

    # alerts
    webhook_max_attempts: int = 8
    # the relay XADDs with MAXLEN ~ this (Redis trims whole nodes: up to ~100 more may stay);
    # 0: never trimmed. ~1 KB an event: 100,000 is ~100 MB of Redis. The SQL outbox keeps them all
    stream_max_len: int = Field(default=100_000, ge=0)

    @field_validator("webhook_urls", "webhook_allow", "ssrf_allow", "extra_allowed_domains", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        return value

    @field_validator("season_months", mode="before")
    @classmethod
    def _split_months(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
            bad = [part for part in parts if not part.isdigit()]
            if bad:
                raise ValueError(f"expected month numbers separated by commas (1,2,3), got {value!r}")
            return [int(part) for part in parts]
        return value

    @field_validator("season_months")
    @classmethod
    def _real_months(cls, value: list[int]) -> list[int]:
        bad = [month for month in value if not 1 <= month <= 12]
        if bad:
            raise ValueError(f"months run from 1 to 12, got {bad}")
        return value

    @field_validator("township_deadline_mmdd")
    @classmethod
    def _real_month_day(cls, value: str) -> str:
        # the rules turn it into a date for every report year: a bad one must stop the command
        # at start-up, not crash the first `check` (2000 is a leap year, so 02-29 passes)
        parts = value.strip().split("-")
        try:
            month, day = (int(part) for part in parts)
            date(2000, month, day)
        except ValueError:
            raise ValueError(f"expected a real month-day as MM-DD (02-20), got {value!r}") from None
        return value.strip()

    @field_validator("database_url")
    @classmethod
    def _parseable_database_url(cls, value: str) -> str:
        # parse only (make_url neither imports a driver nor connects), and never echo the value:
        # it may carry a password
        try:
            make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL (expected e.g. sqlite:///xxgk.sqlite3 or postgresql+psycopg://host/db)"
            ) from None
        return value

    @property
    def embedded(self) -> bool:
        return not self.redis_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
