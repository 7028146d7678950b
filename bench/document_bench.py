"""Pages per second per document carrier, next to PDFium's raw text extraction, and the sandbox's cost.

For the seeds of the reference kit (``seeds/docs``: the same five reports as text PDF,
scanned PDF, DOCX, DOC and HTML) this times

- **raw**: pypdfium2 alone on the text PDF — open, ``get_text_bounded()`` of every page,
  close (research/extraction.md anchor A2, ~8.5 ms for 5 pages): the fastest the chosen
  library can turn these PDFs into text, and the yardstick for the rest;
- **pdf**: ``extract_document`` on the text PDF (glyph boxes, ruling lines, lattice,
  furniture, paragraph and table flow);
- **pdfplumber tables**: ``find_tables()`` on the same pages, the research's pick for ruled
  tables, for the decision record;
- **docx**, **doc**, **html**: ``extract_document`` on the other carriers of the same
  reports (pages = the page count of the report's PDF, so the rates are comparable);
- **scanned pdf** (OCR; needs the ``[ocr]`` extra; ``--ocr-repeat`` runs);
- **sandbox**: ``read_report`` in-process vs ``read_report_sandboxed`` (a forkserver child
  per document) vs a fresh ``python -c`` interpreter per document that imports the parser
  (the alternative design), per document.

Each figure is the median of ``--repeat`` runs after one warm-up. No asserts: a measurement,
not a test. The load average is printed because the figures depend on it.

    .venv/bin/python bench/document_bench.py [--repeat 9] [--ocr-repeat 1] [--kit /work/shared]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pdfplumber
import pypdfium2 as pdfium

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.extract import ExtractLimits, extract_document  # noqa: E402
from shared.logging import configure_logging  # noqa: E402
from shared.parse import read_report  # noqa: E402
from worker.sandbox import read_report_sandboxed  # noqa: E402


def median_s(func: Callable[[], object], repeat: int, *, warm_up: bool = True) -> float:
    if warm_up:
        func()  # imports, caches, the forkserver
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def raw_pdfium_text(data: bytes) -> None:
    pdf = pdfium.PdfDocument(data)
    for index in range(len(pdf)):
        page = pdf[index]
        textpage = page.get_textpage()
        textpage.get_text_bounded()
        textpage.close()
        page.close()
    pdf.close()


def pdfplumber_tables(data: bytes) -> None:
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for page in pdf.pages:
            page.find_tables()


def fresh_interpreter(path: Path) -> None:
    code = (
        "import sys; from shared.parse import read_report; from shared.extract import ExtractLimits; "
        "read_report(open(sys.argv[1], 'rb').read(), path=sys.argv[1], limits=ExtractLimits())"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, cwd=ROOT, capture_output=True)


def page_count(pdf_path: Path) -> int:
    pdf = pdfium.PdfDocument(pdf_path.read_bytes())
    try:
        return len(pdf)
    finally:
        pdf.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kit", default="/work/shared", type=Path)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--ocr-repeat", type=int, default=1)
    args = parser.parse_args()
    configure_logging(level="WARNING")
    docs = args.kit / "seeds" / "docs"
    limits = ExtractLimits(timeout_s=600)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; median of {args.repeat} runs")

    totals: dict[str, list[float]] = {}  # carrier -> [seconds, pages]
    rows: list[tuple[str, str, int, float]] = []
    for pdf_path in sorted(docs.glob("*_rendered.pdf")):
        pages = page_count(pdf_path)
        data = pdf_path.read_bytes()
        measured = {
            "raw pdfium text": median_s(lambda d=data: raw_pdfium_text(d), args.repeat),
            "pdf (text layer)": median_s(lambda d=data: extract_document(d, filename="r.pdf"), args.repeat),
            "pdfplumber find_tables": median_s(lambda d=data: pdfplumber_tables(d), max(args.repeat // 3, 1)),
        }
        for suffix, name in ((".docx", "docx"), (".doc", "doc"), (".html", "html")):
            other = pdf_path.with_suffix(suffix)
            if other.exists():
                content = other.read_bytes()
                measured[name] = median_s(
                    lambda c=content, n=other.name: extract_document(c, filename=n), args.repeat
                )
        scanned = pdf_path.with_name(pdf_path.stem + "_scanned.pdf")
        if scanned.exists() and args.ocr_repeat > 0:
            try:
                from shared.extract import ocr

                ocr._engine()  # model loading (~0.6 s) is paid once per process, not per page
                content = scanned.read_bytes()
                measured["scanned pdf (OCR)"] = median_s(
                    lambda c=content: extract_document(c, filename="s.pdf", limits=limits),
                    args.ocr_repeat,
                    warm_up=False,
                )
            except ImportError:
                pass
        for carrier, seconds in measured.items():
            rows.append((pdf_path.stem, carrier, pages, seconds))
            total = totals.setdefault(carrier, [0.0, 0.0])
            total[0] += seconds
            total[1] += pages

    print("\nper report:")
    for stem, carrier, pages, seconds in rows:
        rate = pages / seconds
        print(f"  {stem[:3]} {carrier:24} {pages} pages {seconds * 1000:9.1f} ms  {rate:8.2f} pages/s")
    raw_rate = totals["raw pdfium text"][1] / totals["raw pdfium text"][0]
    print("\nall seeds:")
    print(f"  {'carrier':24} {'pages/s':>9} {'ms/page':>9} {'x raw':>7}")
    for carrier, (seconds, pages) in totals.items():
        rate = pages / seconds
        print(f"  {carrier:24} {rate:9.2f} {1000 / rate:9.1f} {raw_rate / rate:7.1f}")

    print("\nsandbox, per document (002 text PDF):")
    path = docs / "002_ba2450cc1c30b59a_rendered.pdf"
    data = path.read_bytes()
    in_process = median_s(lambda: read_report(data, path=str(path), limits=limits), args.repeat)
    forked = median_s(lambda: read_report_sandboxed(data, path=str(path), limits=limits), args.repeat)
    fresh = median_s(lambda: fresh_interpreter(path), max(args.repeat // 3, 3))
    print(f"  in-process read_report            {in_process * 1000:8.1f} ms")
    print(
        f"  forkserver child (the sandbox)    {forked * 1000:8.1f} ms  "
        f"(+{(forked - in_process) * 1000:.1f} ms)"
    )
    print(
        f"  fresh interpreter per document    {fresh * 1000:8.1f} ms  (+{(fresh - in_process) * 1000:.1f} ms)"
    )


if __name__ == "__main__":
    main()
