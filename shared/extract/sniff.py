"""Decide a document's carrier from its bytes: magic numbers first, markup next.

The file name and the HTTP ``Content-Type`` are hints only: government sites
serve PDFs as ``application/octet-stream`` and HTML as ``.doc`` often enough.
"""

from __future__ import annotations

import re
import zipfile
from io import BytesIO

from shared.errors import UnsupportedMediaType

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MARKUP = re.compile(rb"<\s*(!doctype\s+html|html|head|body|table|meta|div|p|title)\b", re.I)
_MARKDOWN_TABLE = re.compile(r"^\s*\|.*\|\s*$\n^\s*\|?\s*:?-{3,}", re.M)
_TEXT_SAMPLE = 64 * 1024


def _looks_like_text(sample: bytes) -> bool:
    if not sample:
        return False
    if sample.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return True
    if b"\x00" in sample:
        return False
    # control bytes other than \t \n \r \f \x1b are rare in any text encoding we accept
    bad = sum(1 for b in sample if b < 0x20 and b not in (9, 10, 12, 13, 27))
    if bad > len(sample) // 200:
        return False
    # a character cut by the sample boundary, or a few damaged bytes in a GBK page, is still text
    tolerated = max(2, len(sample) // 500)
    return any(
        sample.decode(codec, errors="replace").count("\ufffd") <= tolerated for codec in ("utf-8", "gb18030")
    )


def _markup_sample(sample: bytes) -> bytes:
    """The sample as UTF-8 when it starts with a UTF-16 BOM, so that markup is found in it."""
    for bom, codec in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if sample.startswith(bom):
            return sample[len(bom) :].decode(codec, errors="replace").encode("utf-8")
    return sample


def _zip_is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(BytesIO(data)) as zf:
            names = set(zf.namelist()[:2000])
    except (zipfile.BadZipFile, ValueError, OSError):
        return False
    return "word/document.xml" in names


def sniff_media_type(data: bytes, *, filename: str | None = None, content_type: str | None = None) -> str:
    head = data[:8]
    if data[:1024].lstrip().startswith(b"%PDF-") or head.startswith(b"%PDF"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        if _zip_is_docx(data):
            return DOCX
        raise UnsupportedMediaType("a zip archive that is not a Word document")
    if head.startswith(OLE_MAGIC):
        name = (filename or "").lower()
        return "application/vnd.ms-works" if name.endswith(".wps") else "application/msword"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    sample = data[:_TEXT_SAMPLE]
    if not _looks_like_text(sample):
        raise UnsupportedMediaType("the bytes are neither text nor a known document format")
    if _MARKUP.search(_markup_sample(sample[:16384])[:8192]) or (content_type or "").lower().startswith(
        ("text/html", "application/xhtml")
    ):
        return "text/html"
    name = (filename or "").lower()
    if name.endswith((".md", ".markdown")) or _MARKDOWN_TABLE.search(sample.decode("utf-8", errors="ignore")):
        return "text/markdown"
    return "text/plain"
