"""Hostile documents: every input ends in a record the rules can check, or a typed XxgkError.

A small, fixed sample of ``bench/fuzz.py`` (the long run does 50,000 documents: see
RELIABILITY.md), plus hypothesis-generated HTML and text grids fed straight to the core.
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz import HEADINGS, LABELS, NUMBERS, FuzzRun, fuzz_limits, sandbox_budget_s
from shared.errors import XxgkError
from shared.parse import read_report
from shared.rules import check_report


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_sample_of_the_fuzz_run_ends_in_records_or_typed_errors() -> None:
    run = FuzzRun(seed=5, workers=2, hang_s=sandbox_budget_s() + 15.0, save_dir=None)
    run.run(list(range(240)), progress_every=0)
    summary = run.summary()
    assert summary["documents"] == 240
    assert (summary["crashes"], summary["hangs"], summary["untyped"]) == (0, 0, 0), summary["findings"]
    carriers = set(summary["by_carrier"])
    assert {"html", "text", "docx", "pdf"} <= carriers
    assert any("report" in outcomes for outcomes in summary["by_carrier"].values())


cells = st.one_of(st.sampled_from(NUMBERS), st.sampled_from(LABELS), st.text(max_size=8))
spans = st.sampled_from(["1", "2", "3", "0", "-1", "999999", "x", ""])


@st.composite
def html_documents(draw: st.DrawFn) -> bytes:
    parts = [
        "<html><head><meta charset='utf-8'><title>某县2023年政府信息公开工作年度报告</title></head><body>"
    ]
    for heading in HEADINGS:
        if draw(st.booleans()):
            parts.append(f"<p>{heading}</p>")
        rows = draw(st.lists(st.lists(st.tuples(cells, spans, spans), max_size=9), max_size=14))
        table = "".join(
            "<tr>" + "".join(f"<td colspan='{c}' rowspan='{r}'>{text}</td>" for text, c, r in row) + "</tr>"
            for row in rows
        )
        parts.append(f"<table>{table}</table>")
    return ("".join(parts) + "</body></html>").encode("utf-8", errors="surrogatepass")


@st.composite
def text_documents(draw: st.DrawFn) -> bytes:
    separator = draw(st.sampled_from(["\t", "|", "  ", "\n"]))
    lines = ["某乡2021年政府信息公开工作年度报告"]
    for heading in HEADINGS:
        lines.append(heading)
        lines += [separator.join(row) for row in draw(st.lists(st.lists(cells, max_size=8), max_size=12))]
    return "\n".join(lines).encode("utf-8", errors="surrogatepass")


def outcome(data: bytes, name: str) -> str:
    try:
        report = read_report(data, path=name, limits=fuzz_limits())
    except XxgkError as exc:
        return exc.code
    check_report(report, today=date(2024, 6, 1))
    return "report"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(html_documents())
def test_generated_html_grids_end_in_a_record_or_a_typed_error(data: bytes) -> None:
    assert outcome(data, "doc.html")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_documents())
def test_generated_text_grids_end_in_a_record_or_a_typed_error(data: bytes) -> None:
    assert outcome(data, "doc.txt")
