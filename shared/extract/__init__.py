"""Carriers → :class:`~shared.extract.blocks.Document` (paragraphs and cell grids).

:func:`extract_document` decides the carrier from the bytes (magic numbers,
markup), not from the file name, and hands them to one extractor. Each
extractor is a pure function ``bytes, ExtractLimits -> Document`` in its own
module; adding a carrier is one module plus one entry in ``EXTRACTORS``.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from shared.errors import EmptyDocument, LimitExceeded, UnsupportedMediaType, XxgkError
from shared.extract.blocks import Document, Paragraph, Table
from shared.extract.limits import DEFAULT_LIMITS, ExtractLimits
from shared.extract.sniff import DOCX, sniff_media_type

__all__ = [
    "DEFAULT_LIMITS",
    "Document",
    "ExtractLimits",
    "Paragraph",
    "Table",
    "extract_document",
    "sniff_media_type",
]

# media type -> "module:function"; imported lazily so that `xxgk parse a.html` does not
# pay for pdfium or python-docx
EXTRACTORS: dict[str, str] = {
    "text/html": "shared.extract.html:extract_html",
    "text/plain": "shared.extract.text:extract_text",
    "text/markdown": "shared.extract.text:extract_text",
    "application/pdf": "shared.extract.pdf:extract_pdf",
    DOCX: "shared.extract.docx:extract_docx",
    "application/msword": "shared.extract.doc:extract_doc",
    "application/vnd.ms-works": "shared.extract.doc:extract_doc",  # Kingsoft WPS (OLE)
    "image/png": "shared.extract.ocr:extract_image",
    "image/jpeg": "shared.extract.ocr:extract_image",
    "image/tiff": "shared.extract.ocr:extract_image",
}


class Extractor(Protocol):
    """The signature every ``EXTRACTORS`` function has."""

    def __call__(
        self, data: bytes, *, limits: ExtractLimits, content_type: str | None = None
    ) -> Document: ...


def _extractor(media_type: str) -> Extractor:
    target = EXTRACTORS.get(media_type)
    if target is None:
        raise UnsupportedMediaType(f"cannot read {media_type} documents")
    module, func = target.split(":")
    extractor: Extractor = getattr(importlib.import_module(module), func)
    return extractor


def extract_document(
    data: bytes,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    limits: ExtractLimits = DEFAULT_LIMITS,
) -> Document:
    """Turn raw bytes into blocks. ``content_type`` is the HTTP header (its charset is used
    for decoding text carriers); ``filename`` is a hint only, the bytes decide."""
    if not data or not data.strip():
        raise EmptyDocument("the document is empty")
    if len(data) > limits.max_bytes:
        raise LimitExceeded(f"document is {len(data)} bytes, over the {limits.max_bytes}-byte cap")
    media_type = sniff_media_type(data, filename=filename, content_type=content_type)
    extractor = _extractor(media_type)
    try:
        doc = extractor(data, limits=limits, content_type=content_type)
    except XxgkError:
        raise
    except RecursionError as exc:
        raise LimitExceeded("document nesting is too deep") from exc
    doc.media_type = doc.media_type or media_type
    return doc
