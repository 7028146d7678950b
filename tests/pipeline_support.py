"""Fakes for the pipeline tests: a scripted web, an in-memory archive, a stand-in ingest.

The "web" is a dict ``url -> (body, content_type)`` or an exception to raise; ETags are
the body's hash, so a conditional GET of unchanged bytes answers 304 as a real server would.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

PORTAL = "http://www.example.gov.cn"
ENTRY = f"{PORTAL}/xxgk/zfxxgknb/index.html"
REPORT = f"{PORTAL}/xxgk/zfxxgknb/202401/t20240120_1.html"
PDF = f"{PORTAL}/upload/2024/nb2023.pdf"

LISTING_HTML = """<html><head><meta charset="utf-8"></head><body><ul>
<li><a href="./202401/t20240120_1.html">某县2023年政府信息公开工作年度报告</a></li>
<li><a href="http://spam.example.com/copy/2023nb.html">某县2023年政府信息公开工作年度报告（转载）</a></li>
</ul><script>createPageHTML(1, 0, "index", "html");</script></body></html>""".encode()
REPORT_HTML = """<html><head><meta charset="utf-8"><title>某县2023年政府信息公开工作年度报告</title></head>
<body><p>详见附件：<a href="/upload/2024/nb2023.pdf">年度报告.pdf</a></p></body></html>""".encode()


@dataclass
class FakeResult:
    url: str
    final_url: str
    status: int
    content: bytes
    sha256: str | None
    content_type: str | None
    not_modified: bool
    etag: str | None
    last_modified: str | None


class FakeFetcher:
    """``pages[url]`` is ``(body, content_type)`` or an exception to raise; ETag = the body's hash."""

    def __init__(self, pages: dict[str, Any]) -> None:
        self.pages = pages
        self.calls: list[tuple[str, str | None]] = []

    def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None, scope_domains: Any = ()
    ) -> FakeResult:
        self.calls.append((url, etag))
        entry = self.pages[url]
        if isinstance(entry, Exception):
            raise entry
        body, content_type = entry
        tag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        if etag == tag:
            return FakeResult(url, url, 304, b"", None, content_type, True, tag, None)
        digest = hashlib.sha256(body).hexdigest()
        return FakeResult(url, url, 200, body, digest, content_type, False, tag, None)


class MemoryArchive:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        self.blobs[key] = data
        return key

    def get(self, key: str) -> bytes:
        return self.blobs[key]


@dataclass
class FakeIngestResult:
    status: str
    report_id: int | None = 1
    event_ids: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None


class FakeIngest:
    """Reports are the bytes that start with ``%PDF``; everything else is not a report."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, session: Any, data: bytes, *, url: str, today: date, **_kw: Any) -> FakeIngestResult:
        self.calls.append(url)
        key = (url, hashlib.sha256(data).hexdigest())
        if not data.startswith(b"%PDF"):
            return FakeIngestResult("failed", None, error={"error": "not_a_report", "message": "no tables"})
        if key in self.seen:
            return FakeIngestResult("unchanged")
        self.seen.add(key)
        return FakeIngestResult("new", event_ids=[f"event-{len(self.seen)}"])


def web(**overrides: Any) -> dict[str, Any]:
    pages: dict[str, Any] = {
        ENTRY: (LISTING_HTML, "text/html; charset=utf-8"),
        REPORT: (REPORT_HTML, "text/html; charset=utf-8"),
        PDF: (b"%PDF-1.7 the report", "application/pdf"),
    }
    pages.update(overrides)
    return pages
