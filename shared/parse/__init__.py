"""Blocks → the canonical record.

:func:`parse_document` is the parser proper (pure: a :class:`Document` in, a
:class:`Report` out). :func:`read_report` is the whole core path for raw bytes:
hash, extract, parse — what ``xxgk parse``, ingest and the parse task call.
"""

from __future__ import annotations

import hashlib

from shared.errors import XxgkError
from shared.extract import DEFAULT_LIMITS, Document, ExtractLimits, extract_document
from shared.record import Report, Source


def parse_document(doc: Document, *, source: Source | None = None) -> Report:
    """Find sections 二/三/四, align rows and columns by label, read numbers and identity.

    Raises :class:`shared.errors.NotAReport` when the document is readable but is not an
    annual report."""
    from shared.parse.report import parse_blocks

    return parse_blocks(doc, source=source or Source(media_type=doc.media_type))


def read_report(
    data: bytes,
    *,
    path: str | None = None,
    url: str | None = None,
    content_type: str | None = None,
    limits: ExtractLimits = DEFAULT_LIMITS,
) -> Report:
    sha256 = hashlib.sha256(data).hexdigest()
    locator = url or path
    try:
        doc = extract_document(data, filename=path or url, content_type=content_type, limits=limits)
        source = Source(url=url, path=path if not url else None, sha256=sha256, media_type=doc.media_type)
        return parse_document(doc, source=source)
    except XxgkError as exc:
        raise exc.with_source(locator, sha256) from None
