"""Scanned pages and images → paragraphs and cell grids, by OCR (the ``[ocr]`` extra).

Engine: RapidOCR 3.x on onnxruntime (Apache-2.0 / MIT). Its PP-OCR detection and
recognition models ship inside the wheel, so it installs from PyPI and runs offline on
CPU; in the research runs it read every table number of the scan test correctly, where
tesseract ``chi_sim`` read about half (docs/DECISIONS.md, "Document carriers").

Per page image (grayscale):

1. a blank page (no ink) is skipped;
2. ruling lines are found by morphology (long thin runs of ink), the page is deskewed
   by the median slope of the long horizontal rules, and the rules become the same
   lattice as a PDF's (:func:`shared.extract.layout.find_tables`);
3. RapidOCR reads text lines with a box per character (per word for digits and Latin),
   so a line that the detector ran across a cell border is split back by geometry;
4. glyphs inside a cell become the cell's text, the rest text lines; the page is then a
   :class:`~shared.extract.layout.PageLayout` like any PDF page.

Everything read this way is flagged: ``Document.ocr`` is set, and cells whose glyphs
scored under :data:`LOW_CONFIDENCE` are listed in ``Document.warnings``.

numpy, OpenCV and RapidOCR are imported lazily: without the extra, asking for OCR
raises :class:`~shared.errors.OcrUnavailable` naming the ``pip install`` line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from io import BytesIO
from types import ModuleType
from typing import TYPE_CHECKING, Any, SupportsFloat, SupportsIndex

from shared.errors import CorruptDocument, EmptyDocument, LimitExceeded, OcrUnavailable, UnsupportedMediaType
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

if TYPE_CHECKING:
    import numpy as np
    import pypdfium2 as pdfium
    from PIL.Image import Image
    from rapidocr import RapidOCR

INSTALL_HINT = "pip install -e .[ocr]  (rapidocr + onnxruntime)"
# a glyph read with less confidence than this makes its cell "uncertain"
LOW_CONFIDENCE = 0.8
# images bigger than this are refused before they are decoded (decompression bombs)
MAX_IMAGE_PIXELS = 60_000_000
# pages are OCRed at this resolution at most (more costs time, not accuracy)
MAX_OCR_DPI = 300
MIN_OCR_DPI = 150
DEFAULT_DPI = 200
# an image whose pixels vary less than this (0-255 grey levels) is blank
BLANK_STDDEV = 3.0
# ruling lines: a straight run of ink at least this long (points) is a rule; the longest stroke
# of a body-text character is ~11 pt, the shortest cell border ~18 pt
RULE_MIN_POINTS = 15.0
# skews smaller than this (degrees) are left alone
MIN_DESKEW_DEGREES = 0.05
# a blank cell with this many pixels darker than INK_LEVEL is read again on its own
INK_LEVEL = 128
MIN_INK_PIXELS = 12
REREAD_MIN_SCORE = 0.6
MAX_DESKEW_DEGREES = 5.0
# Set by :mod:`worker.sandbox` in its child process: called with 1 before each page OCR reads,
# so that the parent can give that page its own wall-time budget. None (nobody listens) in pure use.
on_ocr_pages: Callable[[int], None] | None = None

_DIGITISH = re.compile(r"[0-9OoDlI|丨,，.．]+")
_DIGIT_FIXES = str.maketrans({"O": "0", "o": "0", "D": "0", "l": "1", "I": "1", "|": "1", "丨": "1"})


def _require_ocr() -> tuple[ModuleType, ModuleType, type[RapidOCR]]:
    try:
        import cv2
        import numpy
        from rapidocr import RapidOCR
    except ImportError as exc:
        raise OcrUnavailable(
            f"this document needs OCR, which is not installed ({exc.name} is missing): {INSTALL_HINT}"
        ) from None
    return cv2, numpy, RapidOCR


@lru_cache(maxsize=1)
def _engine() -> RapidOCR:
    _, _, rapid_ocr = _require_ocr()
    return rapid_ocr(
        params={
            "Global.log_level": "error",
            "Global.return_word_box": True,  # a box per character: cells are split by geometry
            # the 0/180-degree line classifier: scans of these reports are upright, and it
            # costs ~5% of the time
            "Global.use_cls": False,
        }
    )


# ---------------------------------------------------------------- entry points


def extract_image(data: bytes, *, limits: ExtractLimits, content_type: str | None = None) -> Document:
    """OCR a PNG, JPEG or (multi-page) TIFF into blocks."""
    _require_ocr()
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        image = Image.open(BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise CorruptDocument(f"the image cannot be read ({exc})") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise LimitExceeded(f"the image is {width}x{height} pixels, over the {MAX_IMAGE_PIXELS}-pixel cap")
    frames = getattr(image, "n_frames", 1)
    if frames > limits.max_pages:
        raise LimitExceeded(f"the image has {frames} pages, over the {limits.max_pages}-page cap")
    dpi = _image_dpi(image.info.get("dpi"))

    pages: list[PageLayout] = []
    warnings: list[str] = []
    for frame in range(frames):
        _announce(1)
        try:
            image.seek(frame)
            gray = ImageOps.exif_transpose(image).convert("L")
        except (OSError, ValueError, SyntaxError) as exc:
            raise CorruptDocument(f"image page {frame + 1} cannot be decoded ({exc})") from None
        scale = dpi / 72
        if dpi > MAX_OCR_DPI:
            gray = gray.resize(
                (round(gray.width * MAX_OCR_DPI / dpi), round(gray.height * MAX_OCR_DPI / dpi))
            )
            scale = MAX_OCR_DPI / 72
        layout, low = read_page_image(_to_array(gray), pixels_per_point=scale)
        pages.append(layout)
        warnings.extend(f"ocr: page {frame + 1}: {note}" for note in low)

    blocks = assemble(pages)
    if not blocks:
        raise EmptyDocument("OCR found no text in the image")
    warnings.insert(0, "ocr: the whole document was read by OCR; its cells are uncertain")
    return Document(blocks=blocks, media_type=_media_type(image.format), ocr=True, warnings=warnings)


def ocr_pdf_pages(
    pdf: pdfium.PdfDocument, pages: list[tuple[int, float]]
) -> tuple[list[PageLayout], list[str]]:
    """Render and OCR the given PDF pages (index, dots per inch of the scan). Returns one
    layout per page (in points, as displayed) and the low-confidence notes."""
    _require_ocr()
    layouts: list[PageLayout] = []
    notes: list[str] = []
    for index, scan_dpi in pages:
        _announce(1)
        dpi = min(max(scan_dpi, MIN_OCR_DPI), MAX_OCR_DPI)
        page = pdf[index]
        try:
            width_pt, height_pt = page.get_size()
            pixels = width_pt * height_pt * (dpi / 72) ** 2
            if pixels > MAX_IMAGE_PIXELS:  # a poster-sized page: render it coarser, not bigger
                dpi *= (MAX_IMAGE_PIXELS / pixels) ** 0.5
            bitmap = page.render(scale=dpi / 72, grayscale=True)
            gray = bitmap.to_numpy()
        finally:
            page.close()
        if gray.ndim == 3:
            gray = gray[:, :, 0]
        layout, low = read_page_image(gray, pixels_per_point=dpi / 72)
        layouts.append(layout)
        notes.extend(f"ocr: page {index + 1}: {note}" for note in low)
    return layouts, notes


def _announce(pages: int) -> None:
    if on_ocr_pages is not None:
        on_ocr_pages(pages)


def _image_dpi(value: object) -> float:
    """PIL's ``info["dpi"]``: an (x, y) pair of numbers (IFDRational for TIFF), or anything else."""
    first = value[0] if isinstance(value, tuple) and value else value
    if not isinstance(first, SupportsFloat | SupportsIndex | str | bytes | bytearray):
        return DEFAULT_DPI  # float() would raise TypeError
    try:
        dpi = float(first)
    except (TypeError, ValueError):
        return DEFAULT_DPI
    return dpi if 50 <= dpi <= 1200 else DEFAULT_DPI


def _media_type(pil_format: str | None) -> str:
    known = {"PNG": "image/png", "JPEG": "image/jpeg", "TIFF": "image/tiff"}
    if pil_format not in known:
        raise UnsupportedMediaType(f"cannot OCR {pil_format or 'unknown'} images")
    return known[pil_format]


def _to_array(image: Image) -> np.ndarray:
    _, numpy, _ = _require_ocr()
    array: np.ndarray = numpy.asarray(image, dtype=numpy.uint8)
    return array


# ---------------------------------------------------------------- one page


def read_page_image(gray: np.ndarray, *, pixels_per_point: float) -> tuple[PageLayout, list[str]]:
    """OCR one grayscale page image into a layout in points; also the notes on
    low-confidence cells."""
    cv2, numpy, _ = _require_ocr()
    height_px, width_px = gray.shape[:2]
    layout = PageLayout(width=width_px / pixels_per_point, height=height_px / pixels_per_point)
    if float(gray.std()) < BLANK_STDDEV:
        return layout, []

    gray = _deskew(gray, cv2, numpy)
    segments = [
        Segment(
            s.x0 / pixels_per_point, s.y0 / pixels_per_point, s.x1 / pixels_per_point, s.y1 / pixels_per_point
        )
        for s in _rules(gray, cv2, numpy, min_length=round(RULE_MIN_POINTS * pixels_per_point))
    ]
    tables: list[TableFragment] = find_tables(segments, origin="ocr")

    engine = _engine()
    result = engine(gray, use_det=True, use_cls=False, use_rec=True, return_word_box=True)
    glyphs = _glyphs(result, pixels_per_point)
    remaining = glyphs
    for table in tables:
        remaining = fill_cells(table, remaining)
        _reread_inked_blank_cells(table, gray, pixels_per_point, engine, numpy)
    notes = _fix_and_flag_cells(tables, glyphs)
    lines: list[Line] = glyphs_to_lines(remaining)
    layout.items = sorted([*lines, *tables], key=lambda item: item.top)
    return layout, notes


def _reread_inked_blank_cells(
    table: TableFragment, gray: np.ndarray, scale: float, engine: RapidOCR, numpy: ModuleType
) -> None:
    """A cell with ink in it but no text read: the detector missed a lone digit (it does,
    at some scales); recognise the cell's picture on its own."""
    height, width = gray.shape[:2]
    for cell in table.cells:
        if cell.text or cell.r1 - cell.r0 > 1:
            continue  # merged cells hold labels, and labels are long enough to be detected
        top, bottom = table.row_bounds[cell.r0] * scale, table.row_bounds[cell.r1] * scale
        x0, x1 = cell.x0 * scale, cell.x1 * scale
        inset = max(3, round(1.5 * scale))  # keep the rules out of the picture
        box = gray[
            max(int(top) + inset, 0) : min(int(bottom) - inset, height),
            max(int(x0) + inset, 0) : min(int(x1) - inset, width),
        ]
        if box.size == 0 or int((box < INK_LEVEL).sum()) < MIN_INK_PIXELS:
            continue
        result = engine(box, use_det=False, use_cls=False, use_rec=True, return_word_box=False)
        texts, scores = getattr(result, "txts", None) or (), getattr(result, "scores", None) or ()
        if texts and scores and texts[0].strip() and float(scores[0]) >= REREAD_MIN_SCORE:
            cell.text = texts[0].strip()


def _glyphs(result: Any, scale: float) -> list[Glyph]:
    glyphs: list[Glyph] = []
    if result is None or not getattr(result, "txts", None):
        return glyphs
    words = getattr(result, "word_results", None) or ()
    for i, (box, text, score) in enumerate(zip(result.boxes, result.txts, result.scores, strict=False)):
        pieces = (
            words[i] if i < len(words) and words[i] and words[i][0][2] is not None else ((text, score, box),)
        )
        for piece_text, piece_score, piece_box in pieces:
            if not piece_text or piece_box is None:
                continue
            xs = [float(p[0]) for p in piece_box]
            ys = [float(p[1]) for p in piece_box]
            glyphs.append(
                Glyph(
                    str(piece_text),
                    min(xs) / scale,
                    min(ys) / scale,
                    max(xs) / scale,
                    max(ys) / scale,
                    float(piece_score),
                )
            )
    return glyphs


def _fix_and_flag_cells(tables: list[TableFragment], glyphs: list[Glyph]) -> list[str]:
    """Digits the recogniser confused with letters (``O``→0, ``l``→1) are fixed in cells that
    are otherwise numeric; cells holding a low-confidence glyph are reported."""
    notes: list[str] = []
    for table in tables:
        for cell in table.cells:
            text = cell.text.strip()
            if (text and _DIGITISH.fullmatch(text) and any(ch.isdigit() for ch in text)) or text in (
                "O",
                "o",
                "D",
            ):
                fixed = text.translate(_DIGIT_FIXES)
                if fixed != text:
                    notes.append(f"read {text!r} as {fixed!r}")
                    cell.text = fixed
        low = [
            g
            for g in glyphs
            if g.score < LOW_CONFIDENCE and table.x0 <= g.cx <= table.x1 and table.top <= g.cy <= table.bottom
        ]
        notes.extend(f"low OCR confidence {g.score:.2f} for {g.text!r}" for g in low)
    return notes


def _deskew(gray: np.ndarray, cv2: ModuleType, numpy: ModuleType) -> np.ndarray:
    """Rotate the page so that its long horizontal rules are level."""
    ink = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)[1]
    width = gray.shape[1]
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (max(width // 20, 20), 1))
    horizontal = cv2.morphologyEx(ink, cv2.MORPH_OPEN, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(horizontal, connectivity=8)
    angles: list[float] = []
    for label in range(1, count):
        x, y, w, h, _area = stats[label]
        if w < width / 4:
            continue
        ys, xs = numpy.nonzero(labels[y : y + h, x : x + w] == label)
        if len(xs) < 10:
            continue
        slope = numpy.polyfit(xs.astype(float), ys.astype(float), 1)[0]
        angles.append(float(numpy.degrees(numpy.arctan(slope))))
    if not angles:
        return gray
    angle = float(numpy.median(angles))
    if not MIN_DESKEW_DEGREES <= abs(angle) <= MAX_DESKEW_DEGREES:
        return gray
    h, w = gray.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    rotated: np.ndarray = cv2.warpAffine(gray, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)
    return rotated


def _rules(gray: np.ndarray, cv2: ModuleType, numpy: ModuleType, *, min_length: int) -> list[Segment]:
    """Horizontal and vertical ruling lines at least ``min_length`` pixels long, in pixels."""
    ink = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 25, 15)
    segments: list[Segment] = []
    length = max(min_length, 10)
    for horizontal in (True, False):
        shape = (length, 1) if horizontal else (1, length)
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, shape)
        lines = cv2.morphologyEx(ink, cv2.MORPH_OPEN, kernel)
        # close small gaps a scan leaves in a rule
        lines = cv2.dilate(lines, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3)))
        count, _labels, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
        for label in range(1, count):
            x, y, w, h, _area = (int(v) for v in stats[label])
            if horizontal and w >= length:
                segments.append(Segment(x, y + h / 2, x + w, y + h / 2))
            elif not horizontal and h >= length:
                segments.append(Segment(x + w / 2, y, x + w / 2, y + h))
    return segments
