"""PDF → paragraphs and cell grids, with pypdfium2 (PDFium) alone.

Why PDFium and nothing else on the text route (docs/DECISIONS.md, "Document carriers"):
it reads the CJK text layer of Word/WPS/LibreOffice exports and of non-embedded CID fonts
correctly, it is as fast as PyMuPDF without PyMuPDF's AGPL, and it renders pages for OCR.
Table grids come from the page's own ruling lines, which PDFium hands us as path
objects: :mod:`shared.extract.layout` turns the rules into a lattice and the glyph boxes
into cell text. (pdfplumber's table finder, the research pick, gave the same grids but is
~10× slower and mis-places rotated pages, see the decision record.)

Per page:

- glyphs: every non-generated character with its loose box, mapped to the page as
  displayed (``/Rotate`` and the crop box applied);
- rules: the axis-parallel pieces of path objects (also inside form XObjects), which
  is what table borders are;
- a page with no usable text layer — fewer than :data:`MIN_TEXT_CHARS` non-space
  characters over an image, or mostly U+FFFD / private-use / unmapped characters — goes
  to OCR (:mod:`shared.extract.ocr`, the ``[ocr]`` extra).

Hostile files: a page cap before any page is loaded, a cap on path segments per page and
on form nesting, and a truncated file (no ``%%EOF``) is refused rather than half-read.
PDFium itself can still loop or crash on crafted input, which is why
:mod:`worker.sandbox` runs this module in a killable child process.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from shared.errors import CorruptDocument, EmptyDocument, LimitExceeded, UnsupportedMediaType
from shared.extract.blocks import Document
from shared.extract.layout import (
    Glyph,
    Line,
    PageLayout,
    Segment,
    TableFragment,
    assemble,
    fill_cells,
    find_tables,
    glyphs_to_lines,
)
from shared.extract.limits import ExtractLimits

MEDIA_TYPE = "application/pdf"
# under this many non-space characters a page that carries an image is a scan
MIN_TEXT_CHARS = 50
# this share of unusable characters (U+FFFD, private use, unmapped glyphs) means a garbled text layer
GARBLED_SHARE = 0.3
# an image covering this share of the page makes a text-less page a scan
SCAN_IMAGE_SHARE = 0.3
# beyond this many path segments on one page we stop looking for ruling lines
MAX_SEGMENTS_PER_PAGE = 50_000
MAX_FORM_DEPTH = 8
_EOF_WINDOW = 8192
_META_KEYS = {
    "Title": "title",
    "Author": "author",
    "Subject": "subject",
    "Keywords": "keywords",
    "Creator": "creator",
    "Producer": "producer",
    "CreationDate": "created",
    "ModDate": "modified",
}
_PDF_DATE = re.compile(r"D:(\d{4})(\d{2})?(\d{2})?")
# a PDF transformation matrix (a, b, c, d, e, f)
_Matrix = tuple[float, float, float, float, float, float]


@dataclass(slots=True)
class _Page:
    layout: PageLayout
    needs_ocr: bool
    reason: str = ""
    scan_dpi: float = 0.0  # resolution of the page's largest image, for rendering it to OCR


def extract_pdf(data: bytes, *, limits: ExtractLimits, content_type: str | None = None) -> Document:
    """Read a PDF's text layer (and, when a page has none, OCR it) into blocks."""
    if len(data) > limits.max_bytes:
        raise LimitExceeded(f"PDF is {len(data)} bytes, over the {limits.max_bytes}-byte cap")
    if b"%%EOF" not in data[-_EOF_WINDOW:]:
        raise CorruptDocument("the PDF is truncated (no %%EOF at its end)")
    pdf = _open(data)
    try:
        count = len(pdf)
        if count > limits.max_pages:
            raise LimitExceeded(f"PDF has {count} pages, over the {limits.max_pages}-page cap")
        if count == 0:
            raise EmptyDocument("the PDF has no pages")
        pages = [_read_page(pdf, index) for index in range(count)]
        doc_warnings: list[str] = []
        scanned = [index for index, page in enumerate(pages) if page.needs_ocr]
        if scanned:
            from shared.extract.ocr import DEFAULT_DPI, ocr_pdf_pages

            layouts, notes = ocr_pdf_pages(pdf, [(i, pages[i].scan_dpi or DEFAULT_DPI) for i in scanned])
            for index, layout in zip(scanned, layouts, strict=True):
                pages[index].layout = layout
            reasons = sorted({pages[i].reason for i in scanned})
            doc_warnings.append(
                f"ocr: {len(scanned)} of {count} pages had no usable text layer ({', '.join(reasons)}); "
                "their text and cells were read by OCR and are uncertain"
            )
            doc_warnings.extend(notes)
        meta = _metadata(pdf)
    finally:
        pdf.close()

    blocks = assemble([p.layout for p in pages])
    if not blocks:
        raise EmptyDocument("the PDF has no text (no text layer, and OCR found none)")
    doc = Document(blocks=blocks, media_type=MEDIA_TYPE, meta=meta, ocr=bool(scanned), warnings=doc_warnings)
    return doc


def _open(data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            raise UnsupportedMediaType("the PDF is password-protected") from None
        raise CorruptDocument(f"PDFium cannot open the file ({exc})") from None


def _metadata(pdf: pdfium.PdfDocument) -> dict[str, str]:
    meta: dict[str, str] = {}
    try:
        info = pdf.get_metadata_dict(skip_empty=True)
    except Exception:
        return meta
    for key, name in _META_KEYS.items():
        value = (info.get(key) or "").strip()
        if not value:
            continue
        if name in ("created", "modified") and (m := _PDF_DATE.match(value)):
            value = "-".join(part for part in m.groups() if part)
        meta[name] = value
    return meta


# ---------------------------------------------------------------- one page


class _Display:
    """Maps PDF user space (origin bottom-left, unrotated) to the page as displayed
    (origin top-left, ``/Rotate`` applied, crop box as the visible area)."""

    def __init__(self, page: pdfium.PdfPage) -> None:
        self.left, self.bottom, self.right, self.top = page.get_cropbox()
        self.rotation = page.get_rotation() % 360
        w, h = self.right - self.left, self.top - self.bottom
        self.width, self.height = (h, w) if self.rotation in (90, 270) else (w, h)

    def point(self, x: float, y: float) -> tuple[float, float]:
        if self.rotation == 90:
            return y - self.bottom, x - self.left
        if self.rotation == 180:
            return self.right - x, y - self.bottom
        if self.rotation == 270:
            return self.top - y, self.right - x
        return x - self.left, self.top - y

    def box(self, left: float, bottom: float, right: float, top: float) -> tuple[float, float, float, float]:
        (ax, ay), (bx, by) = self.point(left, bottom), self.point(right, top)
        return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


def _read_page(pdf: pdfium.PdfDocument, index: int) -> _Page:
    try:
        page = pdf[index]
    except pdfium.PdfiumError as exc:
        # a broken or cyclic page tree; a report with a page missing is not a report we can trust
        raise CorruptDocument(f"page {index + 1} of the PDF cannot be loaded ({exc})") from None
    try:
        display = _Display(page)
        textpage = page.get_textpage()
        try:
            glyphs, unusable = _glyphs(textpage, display)
        finally:
            textpage.close()
        segments, image_share, image_dpi = _rules_and_images(page, display)
    finally:
        page.close()

    layout = PageLayout(width=display.width, height=display.height)
    visible = sum(1 for g in glyphs if g.text.strip())
    if visible and unusable / visible >= GARBLED_SHARE:
        return _Page(layout, needs_ocr=True, reason="garbled text layer", scan_dpi=image_dpi)
    if visible < MIN_TEXT_CHARS and image_share >= SCAN_IMAGE_SHARE:
        return _Page(layout, needs_ocr=True, reason="scanned page", scan_dpi=image_dpi)

    tables: list[TableFragment] = find_tables(segments)
    remaining = glyphs
    for table in tables:
        remaining = fill_cells(table, remaining)
    lines: list[Line] = glyphs_to_lines(remaining)
    layout.items = sorted([*lines, *tables], key=lambda item: item.top)
    return _Page(layout, needs_ocr=False)


def _glyphs(textpage: pdfium.PdfTextPage, display: _Display) -> tuple[list[Glyph], int]:
    """Every character PDFium found (not the spaces and line ends it generates), and how
    many of them are unusable (no Unicode mapping, U+FFFD, private use)."""
    raw = textpage.raw
    rect = pdfium_c.FS_RECTF()
    glyphs: list[Glyph] = []
    unusable = 0
    for i in range(pdfium_c.FPDFText_CountChars(raw)):
        if pdfium_c.FPDFText_IsGenerated(raw, i) == 1:
            continue
        code = pdfium_c.FPDFText_GetUnicode(raw, i)
        if code in (0xFFFE, 0xFFFF) or (code < 0x20 and code not in (0x09,)):
            continue
        char = chr(code) if code < 0x110000 else "\ufffd"
        if char == "\ufffd" or 0xE000 <= code <= 0xF8FF or pdfium_c.FPDFText_HasUnicodeMapError(raw, i) == 1:
            unusable += 1
        if not pdfium_c.FPDFText_GetLooseCharBox(raw, i, rect):
            continue
        x0, top, x1, bottom = display.box(rect.left, rect.bottom, rect.right, rect.top)
        if x1 < 0 or bottom < 0 or x0 > display.width or top > display.height:
            continue  # outside the crop box: not printed
        glyphs.append(Glyph(char if char != "\t" else " ", x0, top, x1, bottom))
    return glyphs, unusable


def _matrix(obj: ctypes.c_void_p) -> _Matrix:
    m = pdfium_c.FS_MATRIX()
    if not pdfium_c.FPDFPageObj_GetMatrix(obj, m):
        return (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    return (m.a, m.b, m.c, m.d, m.e, m.f)


def _compose(inner: _Matrix, outer: _Matrix) -> _Matrix:
    a, b, c, d, e, f = inner
    A, B, C, D, E, F = outer
    return (a * A + b * C, a * B + b * D, c * A + d * C, c * B + d * D, e * A + f * C + E, e * B + f * D + F)


def _rules_and_images(page: pdfium.PdfPage, display: _Display) -> tuple[list[Segment], float, float]:
    """Axis-parallel line pieces of the page's paths (table rules), in display space; the
    share of the page covered by its largest image, and that image's resolution (dpi)."""
    segments: list[Segment] = []
    largest_image = 0.0
    image_dpi = 0.0
    pixel_w, pixel_h = ctypes.c_uint(), ctypes.c_uint()
    page_area = max(display.width * display.height, 1.0)
    x = ctypes.c_float()
    y = ctypes.c_float()
    left, bottom, right, top = ctypes.c_float(), ctypes.c_float(), ctypes.c_float(), ctypes.c_float()
    identity: _Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)

    def walk(objects: list[ctypes.c_void_p], outer: _Matrix, depth: int) -> None:
        nonlocal largest_image, image_dpi
        for obj in objects:
            kind = pdfium_c.FPDFPageObj_GetType(obj)
            if kind == pdfium_c.FPDF_PAGEOBJ_FORM:
                if depth >= MAX_FORM_DEPTH:
                    continue
                matrix = _compose(_matrix(obj), outer)
                inner = [
                    pdfium_c.FPDFFormObj_GetObject(obj, i)
                    for i in range(pdfium_c.FPDFFormObj_CountObjects(obj))
                ]
                walk(inner, matrix, depth + 1)
            elif kind == pdfium_c.FPDF_PAGEOBJ_IMAGE:
                if pdfium_c.FPDFPageObj_GetBounds(obj, left, bottom, right, top):
                    width_pt = abs(right.value - left.value)
                    area = width_pt * abs(top.value - bottom.value)
                    share = min(area / page_area, 1.0)
                    if share > largest_image:
                        largest_image = share
                        if pdfium_c.FPDFImageObj_GetImagePixelSize(obj, pixel_w, pixel_h) and width_pt > 0:
                            # as placed on the page (a rotated page swaps the sides; take the larger dpi)
                            height_pt = abs(top.value - bottom.value) or width_pt
                            image_dpi = 72 * max(pixel_w.value / width_pt, pixel_h.value / height_pt)
            elif kind == pdfium_c.FPDF_PAGEOBJ_PATH and len(segments) < MAX_SEGMENTS_PER_PAGE:
                _path_segments(obj, _compose(_matrix(obj), outer), display, segments, x=x, y=y)

    objects = [
        pdfium_c.FPDFPage_GetObject(page.raw, i) for i in range(pdfium_c.FPDFPage_CountObjects(page.raw))
    ]
    walk(objects, identity, 0)
    return segments, largest_image, image_dpi


def _path_segments(
    obj: ctypes.c_void_p,
    matrix: _Matrix,
    display: _Display,
    out: list[Segment],
    *,
    x: ctypes.c_float,
    y: ctypes.c_float,
) -> None:
    a, b, c, d, e, f = matrix
    start: tuple[float, float] | None = None
    current: tuple[float, float] | None = None
    for i in range(pdfium_c.FPDFPath_CountSegments(obj)):
        segment = pdfium_c.FPDFPath_GetPathSegment(obj, i)
        if not pdfium_c.FPDFPathSegment_GetPoint(segment, x, y):
            continue
        point = display.point(a * x.value + c * y.value + e, b * x.value + d * y.value + f)
        kind = pdfium_c.FPDFPathSegment_GetType(segment)
        if kind == pdfium_c.FPDF_SEGMENT_LINETO and current is not None:
            _add_straight(current, point, out)
        if kind == pdfium_c.FPDF_SEGMENT_MOVETO:
            start = point
        current = point
        if pdfium_c.FPDFPathSegment_GetClose(segment) and start is not None and current is not None:
            _add_straight(current, start, out)
            current = start


def _add_straight(p: tuple[float, float], q: tuple[float, float], out: list[Segment]) -> None:
    (x0, y0), (x1, y1) = p, q
    if abs(y1 - y0) < 0.5 <= abs(x1 - x0) or abs(x1 - x0) < 0.5 <= abs(y1 - y0):
        out.append(Segment(x0, y0, x1, y1))
