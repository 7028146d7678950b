"""PDF, DOCX, DOC/WPS and OCR carriers produce the same blocks as HTML.

The real test of an extractor is the seeds: every seed exists as HTML and as one or
more other carriers, and the cell grids must come out the same. Small documents
generated here pin down the hard cases one at a time (merged cells, tracked changes,
headers/footers, a table broken by a page break, a rotated page).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import re
import struct
import sys
import unicodedata
from pathlib import Path

import docx
import olefile
import pypdfium2 as pdfium
import pytest
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas
from reportlab.platypus import Paragraph as RLParagraph
from reportlab.platypus import SimpleDocTemplate
from reportlab.platypus import Table as RLTable

from shared.errors import OcrUnavailable
from shared.extract import DEFAULT_LIMITS, extract_document
from shared.extract.blocks import Paragraph, Table
from tests.conftest import SEEDS_DIR

HAS_OCR = (
    importlib.util.find_spec("rapidocr") is not None and importlib.util.find_spec("onnxruntime") is not None
)
needs_ocr = pytest.mark.skipif(not HAS_OCR, reason="OCR extra not installed (pip install -e .[ocr])")
# OCR costs ~1-4 s per picture on 2 vCPU: few tests, each on a cropped table


def squash(text: str) -> str:
    """Compare cell text as a reader would: no whitespace, full-width forms folded."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def grids(doc) -> list[list[list[str]]]:
    return [[[squash(c) for c in row] for row in t.rows] for t in doc.tables]


def read(path: Path):
    return extract_document(path.read_bytes(), filename=path.name)


# ---------------------------------------------------------------- the seeds: every carrier = HTML


def _seed_pairs() -> list[tuple[str, str]]:
    docs = SEEDS_DIR / "docs"
    if not docs.is_dir():
        # an empty list would skip silently even in CI; this one case asks the seeds_dir
        # fixture, which skips locally and fails with CI=true
        return [("", "")]
    pairs = []
    for html in sorted(docs.glob("*_rendered.html")):
        for suffix in (".pdf", ".docx", ".doc"):
            other = html.with_suffix(suffix)
            if other.exists():
                pairs.append((html.name, other.name))
    return pairs


@pytest.mark.parametrize(("html_name", "other_name"), _seed_pairs())
def test_seed_grids_match_the_html_carrier(seeds_dir: Path, html_name: str, other_name: str) -> None:
    docs = seeds_dir / "docs"
    want = grids(read(docs / html_name))
    got = read(docs / other_name)
    assert len(want) == 3
    assert grids(got) == want  # all three tables, cell for cell, merged cells repeated
    assert not got.ocr


@pytest.mark.parametrize(("html_name", "other_name"), _seed_pairs())
def test_seed_paragraphs_match_the_html_carrier(seeds_dir: Path, html_name: str, other_name: str) -> None:
    docs = seeds_dir / "docs"
    want = [squash(b.text) for b in read(docs / html_name).blocks if isinstance(b, Paragraph)]
    got = [squash(b.text) for b in read(docs / other_name).blocks if isinstance(b, Paragraph)]
    if other_name.endswith(".pdf"):
        # the seed PDFs were exported without the page's <h2> copy of the title (their first
        # page is empty); everything else, wrapped lines joined, is the same
        want = want[1:]
    assert got == want


def test_a_wps_file_is_read_by_the_doc_reader(seeds_dir: Path) -> None:
    data = (seeds_dir / "docs" / "002_ba2450cc1c30b59a_rendered.doc").read_bytes()
    as_wps = extract_document(data, filename="report.wps")  # Kingsoft WPS: MS Word binary inside
    assert grids(as_wps) == grids(extract_document(data, filename="report.doc"))


def test_doc_without_paragraph_properties_still_yields_text_marked_flat(
    seeds_dir: Path, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged.doc"
    damaged.write_bytes((seeds_dir / "docs" / "002_ba2450cc1c30b59a_rendered.doc").read_bytes())
    with olefile.OleFileIO(str(damaged), write_mode=True) as ole:
        word = bytearray(ole.openstream("WordDocument").read())
        # FibRgFcLcb97 pair 13 (PlcfBtePapx, the paragraph property index): zero its length
        csw = struct.unpack_from("<H", word, 32)[0]
        at = 34 + csw * 2
        cslw = struct.unpack_from("<H", word, at)[0]
        pairs = at + 2 + cslw * 4 + 2
        struct.pack_into("<I", word, pairs + 13 * 8 + 4, 0)
        ole.write_stream("WordDocument", bytes(word))
    doc = extract_document(damaged.read_bytes(), filename="damaged.doc")
    assert doc.flat
    assert not doc.tables
    assert any("tab-separated" in w for w in doc.warnings)
    assert any("\t" in b.text and "本年新收" in b.text for b in doc.blocks if isinstance(b, Paragraph))


# ---------------------------------------------------------------- DOCX written by python-docx


def _docx_bytes() -> bytes:
    document = docx.Document()
    document.core_properties.title = "测试县人民政府2023年政府信息公开工作年度报告"
    document.add_paragraph("测试县人民政府2023年政府信息公开工作年度报告")
    edited = document.add_paragraph("本年度")
    edited._p.append(parse_xml(f'<w:bookmarkStart {nsdecls("w")} w:id="0" w:name="_GoBack"/>'))
    edited._p.append(
        parse_xml(
            f'<w:ins {nsdecls("w")} w:id="1" w:author="a" w:date="2024-01-01T00:00:00Z">'
            "<w:r><w:t>新增</w:t></w:r></w:ins>"
        )
    )
    edited._p.append(
        parse_xml(
            f'<w:del {nsdecls("w")} w:id="2" w:author="a" w:date="2024-01-01T00:00:00Z">'
            "<w:r><w:delText>删除</w:delText></w:r></w:del>"
        )
    )
    edited._p.append(parse_xml(f'<w:bookmarkEnd {nsdecls("w")} w:id="0"/>'))
    edited.add_run("内容")

    table = document.add_table(rows=4, cols=4)
    top = table.cell(0, 0).merge(table.cell(0, 3))  # gridSpan 4
    top.text = "第二十条第（一）项"
    for col, text in enumerate(["信息内容", "本年制发件数", "本年废止件数", "现行有效件数"]):
        table.cell(1, col).text = text
    side = table.cell(2, 0).merge(table.cell(3, 0))  # vMerge restart + continue
    side.text = "规章"
    table.cell(2, 1).text = "1"
    wide = table.cell(2, 2).merge(table.cell(2, 3))
    wide.text = "2"
    for col, text in ((1, "3"), (2, ""), (3, "5")):
        table.cell(3, col).text = text
    document.add_paragraph("三、收到和处理政府信息公开申请情况")
    # a table inside a content control: python-docx's own iterator would not see it
    body = document.element.body
    sdt = parse_xml(
        f"<w:sdt {nsdecls('w')}><w:sdtPr/><w:sdtContent>"
        "<w:tbl><w:tblGrid><w:gridCol/><w:gridCol/></w:tblGrid>"
        "<w:tr><w:tc><w:p><w:r><w:t>甲</w:t></w:r></w:p></w:tc>"
        "<w:tc><w:p><w:r><w:t>7</w:t></w:r></w:p></w:tc></w:tr>"
        "<w:tr><w:trPr><w:gridBefore w:val='1'/></w:trPr>"
        "<w:tc><w:p><w:r><w:t>8</w:t></w:r></w:p></w:tc></w:tr>"
        "</w:tbl></w:sdtContent></w:sdt>"
    )
    body.insert(len(body) - 1, sdt)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_docx_merged_cells_are_repeated_into_the_grid() -> None:
    doc = extract_document(_docx_bytes(), filename="report.docx")
    first = doc.tables[0].rows
    assert first[0] == ("第二十条第（一）项",) * 4
    assert first[2] == ("规章", "1", "2", "2")
    assert first[3] == ("规章", "3", "", "5")  # vMerge continues the text, blanks stay ""


def test_docx_reads_accepted_text_in_order_and_tables_in_content_controls() -> None:
    doc = extract_document(_docx_bytes(), filename="report.docx")
    kinds = ["T" if isinstance(b, Table) else b.text for b in doc.blocks]
    assert kinds == [
        "测试县人民政府2023年政府信息公开工作年度报告",
        "本年度新增内容",  # w:ins kept, w:del dropped, bookmarks ignored
        "T",
        "三、收到和处理政府信息公开申请情况",
        "T",
    ]
    assert doc.tables[1].rows == (("甲", "7"), ("", "8"))  # gridBefore leaves a blank
    assert doc.meta["title"] == "测试县人民政府2023年政府信息公开工作年度报告"


# ---------------------------------------------------------------- PDF written by reportlab


def _cjk_font() -> str:
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return "STSong-Light"


def _report_pdf(rows: int = 40) -> bytes:
    """Two-plus pages: running header and footer with page numbers, a long paragraph that
    wraps, a ruled table with merged cells that breaks across the page with a repeated
    header row."""
    font = _cjk_font()
    style = ParagraphStyle("body", fontName=font, fontSize=11, leading=16, wordWrap="CJK", spaceAfter=8)

    def furniture(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(font, 9)
        canvas.drawCentredString(A4[0] / 2, A4[1] - 30, "测试县人民政府办公室")
        canvas.drawCentredString(A4[0] / 2, 25, f"- {doc.page} -")
        canvas.restoreState()

    long_text = "为进一步做好政府信息公开工作，" * 12 + "特此报告。"
    data = [["信息内容", "本年制发件数", "本年废止件数", "现行有效件数"], ["第二十条第（一）项", "", "", ""]]
    data += [[f"事项{i}", str(i), str(i + 1), str(2 * i + 1)] for i in range(rows)]
    table = RLTable(data, repeatRows=1, colWidths=[160, 90, 90, 90])
    table.setStyle(
        [
            ("FONTNAME", (0, 0), (-1, -1), font),
            ("GRID", (0, 0), (-1, -1), 0.75, "black"),
            ("SPAN", (0, 1), (3, 1)),
        ]
    )
    story = [
        RLParagraph("测试县人民政府2023年政府信息公开工作年度报告", style),
        RLParagraph(long_text, style),
        RLParagraph("二、主动公开政府信息情况", style),
        table,
        RLParagraph("六、其他需要报告的事项", style),
    ]
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4, title="测试报告").build(
        story, onFirstPage=furniture, onLaterPages=furniture
    )
    return buffer.getvalue()


def test_pdf_table_broken_across_pages_is_one_grid_with_merged_cells_repeated() -> None:
    doc = extract_document(_report_pdf(), filename="report.pdf")
    assert len(doc.tables) == 1
    rows = doc.tables[0].rows
    assert rows[0] == ("信息内容", "本年制发件数", "本年废止件数", "现行有效件数")  # the repeated header once
    assert rows[1] == ("第二十条第（一）项",) * 4
    assert [r[0] for r in rows[2:]] == [f"事项{i}" for i in range(40)]
    assert rows[-1] == ("事项39", "39", "40", "79")


def test_pdf_drops_running_headers_footers_and_page_numbers_and_joins_wrapped_lines() -> None:
    doc = extract_document(_report_pdf(), filename="report.pdf")
    texts = [b.text for b in doc.blocks if isinstance(b, Paragraph)]
    assert texts == [
        "测试县人民政府2023年政府信息公开工作年度报告",
        "为进一步做好政府信息公开工作，" * 12 + "特此报告。",
        "二、主动公开政府信息情况",
        "六、其他需要报告的事项",
    ]
    assert doc.meta["title"] == "测试报告"


def test_pdf_rotated_page_is_read_as_displayed() -> None:
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=(595, 842))
    c.setPageRotation(90)  # shown turned clockwise: the content is drawn turned the other way
    c.rotate(90)
    # a standard font: PDFium has no metrics for a non-embedded CID font turned sideways
    c.setFont("Helvetica", 12)
    c.drawString(60, -60, "1. Overview")
    c.drawString(60, -80, "2. Proactive disclosure")
    left, top, widths, height = 60, -100, (120, 80), 24
    xs = [left, left + widths[0], left + sum(widths)]
    for r in range(3):
        c.line(xs[0], top - r * height, xs[-1], top - r * height)
    for x in xs:
        c.line(x, top, x, top - 2 * height)
    c.drawString(xs[0] + 4, top - 17, "Regulations")
    c.drawString(xs[1] + 4, top - 17, "12")
    c.drawString(xs[0] + 4, top - 41, "Normative documents")
    c.drawString(xs[1] + 4, top - 41, "3")
    c.showPage()
    c.save()
    doc = extract_document(buffer.getvalue(), filename="rotated.pdf")
    assert [b.text for b in doc.blocks if isinstance(b, Paragraph)] == [
        "1. Overview",
        "2. Proactive disclosure",
    ]
    assert doc.tables[0].rows == (("Regulations", "12"), ("Normative documents", "3"))


def test_pdf_unruled_rows_become_a_word_position_table() -> None:
    font = _cjk_font()
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=(595, 842))
    c.setFont(font, 11)
    c.drawString(60, 780, "四、政府信息公开行政复议、行政诉讼情况")
    for i, label in enumerate(["结果维持", "结果纠正", "其他结果"]):
        y = 750 - 20 * i
        c.drawString(60, y, label)
        for j, value in enumerate((i, i + 1, 10 * i)):
            c.drawString(200 + 80 * j, y, str(value))
    c.showPage()
    c.save()
    doc = extract_document(buffer.getvalue(), filename="unruled.pdf")
    table = doc.tables[0]
    assert table.origin == "pdf-words"
    assert table.rows == (
        ("结果维持", "0", "1", "0"),
        ("结果纠正", "1", "2", "10"),
        ("其他结果", "2", "3", "20"),
    )


# ---------------------------------------------------------------- OCR


@functools.cache
def _scanned_table_png(seeds_dir: Path) -> bytes:
    """The section 四 table of a scanned seed page, cropped, as a PNG (a few seconds to OCR)."""
    pdf = pdfium.PdfDocument((seeds_dir / "docs" / "002_ba2450cc1c30b59a_rendered_scanned.pdf").read_bytes())
    image = pdf[3].render(scale=150 / 72, grayscale=True).to_pil()
    pdf.close()
    width, height = image.size
    crop = image.crop((0, int(height * 0.5), width, int(height * 0.85)))
    buffer = io.BytesIO()
    crop.save(buffer, format="PNG", dpi=(150, 150))
    return buffer.getvalue()


@pytest.mark.slow
@needs_ocr
def test_ocr_reads_a_scanned_table_into_the_html_grid(seeds_dir: Path) -> None:
    doc = extract_document(_scanned_table_png(seeds_dir), filename="scan.png")
    assert doc.ocr
    assert any(w.startswith("ocr:") for w in doc.warnings)
    html = read(seeds_dir / "docs" / "002_ba2450cc1c30b59a_rendered.html")
    reviews = grids(html)[2]
    assert reviews in grids(doc)
    assert all(t.origin == "ocr" for t in doc.tables)


@pytest.mark.slow
@needs_ocr
def test_a_pdf_page_without_text_layer_goes_to_ocr(seeds_dir: Path) -> None:
    png = _scanned_table_png(seeds_dir)
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=(595, 842 * 0.35))
    c.drawImage(ImageReader(io.BytesIO(png)), 0, 0, width=595, height=842 * 0.35)
    c.showPage()
    c.save()
    doc = extract_document(buffer.getvalue(), filename="scan.pdf")
    assert doc.ocr
    assert any("scanned page" in w for w in doc.warnings)
    html = read(seeds_dir / "docs" / "002_ba2450cc1c30b59a_rendered.html")
    assert grids(html)[2] in grids(doc)


def test_without_the_ocr_extra_a_scan_says_how_to_install_it(
    seeds_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # import rapidocr -> ImportError
    data = (seeds_dir / "docs" / "002_ba2450cc1c30b59a_rendered_scanned.pdf").read_bytes()
    with pytest.raises(OcrUnavailable, match=re.escape("pip install -e .[ocr]")):
        extract_document(data, filename="scan.pdf", limits=DEFAULT_LIMITS)
    with pytest.raises(OcrUnavailable):
        extract_document(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, filename="scan.png")
