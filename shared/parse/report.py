"""Blocks → the canonical record: the parser's one entry point, :func:`parse_blocks`.

Order of work:

1. identity (title, agency, year, published_on) from meta, title line, signature, body;
2. the layout from the labels (:mod:`shared.parse.detect`); when no label decides,
   the record's ``template`` is null (report-schema.md: decided by the labels, never
   the year) and the year only shapes the tables, so the JSON still has every cell;
3. the grids (:mod:`shared.parse.grid`), then — when the document's cell
   boundaries were lost (``doc.flat``) or no grid gave section 三 although its
   labels are in the text — the run-together reader ``shared.parse.flat``;
4. not-a-report: neither a report title/heading nor any table labels →
   :class:`~shared.errors.NotAReport`; a report with no tables at all → the same,
   "no statistical tables (sections 二/三/四) found";
5. evidence and confidence for the rules and for people.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from shared.errors import NotAReport
from shared.extract.blocks import Document
from shared.parse.detect import detect_template, template_for_year, text_has_table_labels
from shared.parse.grid import GridReading, read_grids
from shared.parse.identity import Identity, read_identity
from shared.parse.numbers import clean_cell_text
from shared.parse.sections import locate_headings, sections_in_order
from shared.record import SECTIONS, ParseConfidence, ParseEvidence, Report, Source, empty_report
from shared.templates import TEMPLATES, Template

CONFIDENCE_FLAT = 0.7
CONFIDENCE_OCR = 0.8
CONFIDENCE_TEMPLATE_FROM_YEAR = 0.8
TABLE_SECTIONS = ("active_disclosure", "applications", "reviews")

NO_TABLES = "no statistical tables (sections 二/三/四) found"
NOT_A_REPORT = (
    "not a 政府信息公开工作年度报告: no report title, no section headings and no statistical tables"
)

FlatReader = Callable[[str, Template], Any]


def _flat_reader() -> FlatReader | None:
    """``shared.parse.flat.read_flat_tables`` when that module is installed."""
    try:
        module = importlib.import_module("shared.parse.flat")
    except ImportError:
        return None
    reader: FlatReader | None = getattr(module, "read_flat_tables", None)
    return reader


def _merge_flat(grid: GridReading, flat: Any, layout: Template) -> list[str]:
    """Cells the run-together text gave for rows no grid gave. Returns the paths filled."""
    grid_rows = set(grid.rows_found)
    filled: list[str] = []
    amount_paths = {
        f"active_disclosure.{item.key}.{f}" for item in layout.disclosure for f in item.amount_fields
    }
    for path, value in flat.cells.items():
        row = path.rsplit(".", 1)[0]
        if row in grid_rows or path in grid.cells:
            continue
        grid.cells[path] = value
        filled.append(path)
        raw = flat.raw.get(path)
        if raw is not None:
            grid.raw[path] = raw
            cleaned = clean_cell_text(raw)
            if path in amount_paths and cleaned.endswith("元"):
                grid.units[path] = "万元" if cleaned.endswith("万元") else "元"
    for path, why in flat.uncertain.items():
        if path.rsplit(".", 1)[0] not in grid_rows:
            grid.uncertain.setdefault(path, why)
    for row in flat.found_rows:
        if row not in grid.rows_found:
            grid.rows_found.append(row)
        section = row.split(".", 1)[0]
        if section in TABLE_SECTIONS:
            grid.saw(section)
    return filled


def _report_signal(identity: Identity, headings: list[str]) -> bool:
    return identity.title is not None or any(key in TABLE_SECTIONS for key in headings)


def _tables_look_like_a_report(grid: GridReading) -> bool:
    """A lone 行政许可/行政处罚 grid without a 第二十条 caption is just some table;
    section 三 or 四 grids, or captioned section-二 grids, are the report's own."""
    return bool({"applications", "reviews"} & set(grid.sections)) or bool(grid.captions)


def parse_blocks(doc: Document, *, source: Source) -> Report:
    identity = read_identity(doc)
    heading_hits = locate_headings(doc)
    headings = sections_in_order(heading_hits)
    choice = detect_template(doc)
    # the shape to read the grids into; the record's template stays choice.template
    template_id = choice.template or template_for_year(identity.year)
    layout = TEMPLATES[template_id]
    confidence = ParseConfidence()

    grid = read_grids(doc, layout)
    labels_in_text = text_has_table_labels(doc)
    grid_has_applications = any(r.startswith("applications.") for r in grid.rows_found)
    flat_filled: list[str] = []
    if doc.flat or (not grid_has_applications and labels_in_text):
        reader = _flat_reader()
        if reader is None:
            confidence.lower(0.5, "table cells run together and the run-together reader is unavailable")
        else:
            flat = reader(doc.text(), layout)
            flat_filled = _merge_flat(grid, flat, layout)
            if flat_filled or flat.found_rows:
                confidence.lower(CONFIDENCE_FLAT, "cell boundaries recovered from run-together text")

    signal = _report_signal(identity, headings)
    if not grid.sections and not labels_in_text:
        raise NotAReport(NO_TABLES if signal else NOT_A_REPORT)
    if not signal and not labels_in_text and not _tables_look_like_a_report(grid):
        raise NotAReport(NOT_A_REPORT)

    report = empty_report(
        template_id,
        agency=identity.agency,
        year=identity.year,
        title=identity.title,
        published_on=identity.published_on,
        source=source,
    )
    # a layout guessed from the year is not a finding about the report: template_mismatch
    # and the cross-year rules must not judge a guess (the rules infer the shape from the rows)
    report.template = choice.template
    tables = {
        "active_disclosure": report.active_disclosure,
        "applications": report.applications,
        "reviews": report.reviews,
    }
    for path, value in grid.cells.items():
        section, row, col = path.split(".")
        cells = tables[section].get(row)
        if cells is not None and col in cells:
            cells[col] = value

    if choice.template is None:
        basis = f"the year {identity.year}" if identity.year else "no year either; the current layout assumed"
        confidence.lower(
            CONFIDENCE_TEMPLATE_FROM_YEAR,
            f"no format-specific label found: template left null, cells shaped as layout {template_id}"
            f" chosen from {basis}",
        )
    for score, reason in grid.reasons:
        confidence.lower(score, reason)
    confidence.uncertain_cells.update(grid.uncertain)
    if doc.ocr:
        confidence.lower(CONFIDENCE_OCR, "cells read by OCR")
        for path, value in grid.cells.items():
            if value is not None:
                confidence.uncertain_cells.setdefault(path, "read by OCR")
    for note in [*grid.notes, *identity.notes]:
        if note not in confidence.reasons:
            confidence.reasons.append(note)

    tables_found = [s for s in SECTIONS if s in grid.sections]
    found = set(grid.rows_found)
    missing: list[str] = []
    for section in tables_found:
        rows = {
            "active_disclosure": [i.key for i in layout.disclosure],
            "applications": [r.key for r in layout.application_rows],
            "reviews": [g.key for g in layout.review_groups],
        }[section]
        missing.extend(f"{section}.{row}" for row in rows if f"{section}.{row}" not in found)
    if missing:
        confidence.lower(0.9, f"{len(missing)} template row(s) not found in the tables")

    report.confidence = confidence
    report.evidence = ParseEvidence(
        raw_cells=dict(grid.raw),
        units=dict(grid.units),
        label_deviations=list(grid.deviations),
        captions=list(grid.captions),
        sections_found=headings,
        tables_found=tables_found,
        missing_rows=missing,
        extra_rows=list(grid.extra_rows),
        statistics_year=identity.statistics_year,
        title_year=identity.title_year,
        narrative=doc.text(),
        site_id_code=identity.site_id_code,
        site_name=identity.site_name,
    )
    return report
