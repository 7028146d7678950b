"""The one exception tree of xxgk-watch.

Every error the project raises on purpose sits here; its branch decides what a
worker does with it::

    XxgkError                      base; carries ``source`` (URL or path) and ``sha256``
    ├── TransientError             retry with backoff; ``retry_after_s`` when the server said so
    │   ├── FetchTimeout           connect/read timeout, connection reset
    │   ├── ServerBusy             HTTP 429 / 5xx
    │   ├── PolitenessDeferred     the host's politeness budget says "not yet"
    │   └── StoreUnavailable       database or Redis down
    └── PermanentError             record and move on; the page stays retriable by hand
        ├── DocumentError          the bytes cannot be turned into blocks
        │   ├── EmptyDocument          zero bytes / only whitespace
        │   ├── UnsupportedMediaType   not HTML, text, PDF, DOCX, DOC, WPS or an image
        │   ├── CorruptDocument        truncated PDF, broken zip, undecodable OLE, garbage bytes
        │   ├── LimitExceeded          size, pages, decompressed bytes, nesting, wall time, memory
        │   ├── UnsafeDocument         DTD / entity declarations, zip bombs, cyclic object graphs
        │   └── OcrUnavailable         (an UnsupportedMediaType) a scan, but the [ocr] extra is not installed
        ├── NotAReport             readable, but not a 政府信息公开工作年度报告
        ├── BlockedBySite          anti-bot challenge (412/521 + script, WAF page), robots.txt
        ├── FetchRejected          HTTP 4xx other than 429, SSRF guard, out of scope
        ├── UnreadableInput        a local input the OS will not give us (missing, permission, I/O error)
        └── ConfigError            bad settings or site registry

A rule that crashes is a bug: it is *not* caught here and fails loudly.
"""

from __future__ import annotations


class XxgkError(Exception):
    """Base of every deliberate error. ``str()`` is one clear line for people."""

    code = "error"

    def __init__(self, message: str, *, source: str | None = None, sha256: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.sha256 = sha256

    def with_source(self, source: str | None, sha256: str | None) -> XxgkError:
        """Fill in where the error happened, keeping what is already known."""
        self.source = self.source or source
        self.sha256 = self.sha256 or sha256
        return self

    def __str__(self) -> str:
        where = f" [{self.source}]" if self.source else ""
        return f"{self.code}: {self.message}{where}"

    def as_dict(self) -> dict[str, str | None]:
        return {"error": self.code, "message": self.message, "source": self.source, "sha256": self.sha256}


class TransientError(XxgkError):
    """Worth retrying later with backoff."""

    code = "transient"

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kw: str | None) -> None:
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s


class FetchTimeout(TransientError):
    code = "fetch_timeout"


class ServerBusy(TransientError):
    code = "server_busy"


class PolitenessDeferred(TransientError):
    code = "politeness_deferred"


class StoreUnavailable(TransientError):
    code = "store_unavailable"


class PermanentError(XxgkError):
    """Retrying the same input will fail the same way: record it and move on."""

    code = "permanent"


class DocumentError(PermanentError):
    code = "document_error"


class EmptyDocument(DocumentError):
    code = "empty_document"


class UnsupportedMediaType(DocumentError):
    code = "unsupported_media_type"


class CorruptDocument(DocumentError):
    code = "corrupt_document"


class LimitExceeded(DocumentError):
    code = "limit_exceeded"


class UnsafeDocument(DocumentError):
    code = "unsafe_document"


class NotAReport(PermanentError):
    code = "not_a_report"


class BlockedBySite(PermanentError):
    code = "blocked"


class FetchRejected(PermanentError):
    code = "fetch_rejected"


class UnreadableInput(PermanentError):
    """The bytes could not be had at all (``OSError`` on a local path): nothing was parsed."""

    code = "unreadable_input"


class ConfigError(PermanentError):
    code = "config_error"


class OcrUnavailable(UnsupportedMediaType):
    """A scanned page or image needs OCR, and the ``[ocr]`` extra is not installed."""

    code = "ocr_unavailable"
