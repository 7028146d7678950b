"""Caps every extractor honours. Each one, when hit, raises :class:`shared.errors.LimitExceeded`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class LimitSettings(Protocol):
    """The fields of :class:`shared.settings.Settings` the limits come from (the extractors stay
    free of pydantic and of the environment)."""

    @property
    def max_document_bytes(self) -> int: ...
    @property
    def max_decompressed_bytes(self) -> int: ...
    @property
    def max_pdf_pages(self) -> int: ...
    @property
    def max_html_depth(self) -> int: ...
    @property
    def extract_timeout_s(self) -> float: ...
    @property
    def extract_memory_mb(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ExtractLimits:
    max_bytes: int = 50 * 1024 * 1024
    max_decompressed_bytes: int = 200 * 1024 * 1024
    max_pages: int = 100
    max_depth: int = 256
    timeout_s: float = 60.0
    # resident memory of the sandboxed child; OCR of a scan peaks near 1 GB (seed 004 ~1030 MB),
    # so 1024 killed honest scans now and then
    memory_mb: int = 2048
    # elements an HTML page may have (~250 bytes of tree each; real report pages have a few thousand)
    max_html_elements: int = 300_000
    # lines a text document may have (real reports have a few thousand)
    max_text_lines: int = 200_000

    @classmethod
    def from_settings(cls, settings: LimitSettings) -> ExtractLimits:
        return cls(
            max_bytes=settings.max_document_bytes,
            max_decompressed_bytes=settings.max_decompressed_bytes,
            max_pages=settings.max_pdf_pages,
            max_depth=settings.max_html_depth,
            timeout_s=settings.extract_timeout_s,
            memory_mb=settings.extract_memory_mb,
        )


DEFAULT_LIMITS = ExtractLimits()
