"""PLACEHOLDER until issue 4 lands a killable subprocess sandbox: runs in-process for now."""

from __future__ import annotations

from shared.extract import ExtractLimits
from shared.parse import read_report
from shared.record import Report


def read_report_sandboxed(data: bytes, *, path: str | None = None, url: str | None = None,
                          content_type: str | None = None, limits: ExtractLimits) -> Report:
    return read_report(data, path=path, url=url, content_type=content_type, limits=limits)
