"""The canonical report record of ``spec/report-schema.md`` as typed models.

``Report.to_json_dict()`` is exactly the contract shape: blank cells are
``None`` (JSON ``null``), zero is ``0``, amounts are in 万元. The cell tables are
plain nested dicts keyed as in :mod:`shared.templates`, so the JSON needs no
translation; :func:`empty_cells` builds them with every cell blank.

Alongside the contract, a parsed report carries :class:`ParseConfidence`
(how sure the parser is, and why) and :class:`ParseEvidence` (what the rules
need besides numbers: raw cell text, labels as printed, section order, the
narrative). Evidence is not part of the JSON contract; confidence is printed
as an extra ``confidence`` key, which consumers may ignore.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.templates import TEMPLATES, Template, TemplateId

Number = int | float
CellValue = Number | None
CellTable = dict[str, dict[str, CellValue]]
Severity = Literal["error", "warning", "info"]
SECTIONS = ("active_disclosure", "applications", "reviews")


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    path: str | None = None
    sha256: str | None = None
    media_type: str | None = None

    @property
    def locator(self) -> str | None:
        return self.url or self.path


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: str
    severity: Severity
    message: str
    cells: list[str] = Field(default_factory=list)
    expected: CellValue | str | None = None
    actual: CellValue | str | None = None

    def fingerprint(self, report_identity: str) -> str:
        """Stable across re-runs: the report's identity + rule + the cells involved."""
        key = "|".join([report_identity, self.rule, *sorted(self.cells)])
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "cells": list(self.cells),
        }
        if self.expected is not None or self.actual is not None:
            out["expected"] = self.expected
            out["actual"] = self.actual
        return out


class ParseConfidence(BaseModel):
    """1.0 = every cell read from an explicit cell boundary under an exact label."""

    score: float = 1.0
    reasons: list[str] = Field(default_factory=list)
    # dotted cell paths whose value the parser is unsure of, with why
    uncertain_cells: dict[str, str] = Field(default_factory=dict)

    def lower(self, to: float, reason: str) -> None:
        self.score = min(self.score, to)
        if reason not in self.reasons:
            self.reasons.append(reason)


class LabelDeviation(BaseModel):
    where: str  # a dotted path (row/column) or "caption"
    found: str
    official: str | None = None


class ParseEvidence(BaseModel):
    """What the rules need besides the numbers. Never printed in the contract JSON."""

    raw_cells: dict[str, str] = Field(default_factory=dict)  # dotted path -> text as printed
    units: dict[str, str] = Field(default_factory=dict)  # dotted path -> "元" | "万元" as printed
    label_deviations: list[LabelDeviation] = Field(default_factory=list)
    captions: list[str] = Field(default_factory=list)  # section 二 captions as printed
    sections_found: list[str] = Field(default_factory=list)  # SECTION_HEADINGS keys, in document order
    tables_found: list[str] = Field(default_factory=list)  # which of SECTIONS had a table at all
    missing_rows: list[str] = Field(default_factory=list)  # template rows not found
    extra_rows: list[str] = Field(default_factory=list)  # printed rows matching no template row
    statistics_year: int | None = None  # 统计期限 …YYYY年1月1日至YYYY年12月31日
    title_year: int | None = None
    narrative: str = ""  # body text without the tables, for text rules and similarity
    site_id_code: str | None = None  # 网站标识码 (SiteIDCode) when the page carries one
    site_name: str | None = None


class Report(BaseModel):
    """The canonical record (report-schema.md)."""

    model_config = ConfigDict(extra="forbid")

    agency: str | None = None
    year: int | None = None
    template: TemplateId | None = None
    title: str | None = None
    published_on: str | None = None  # YYYY-MM-DD
    source: Source = Field(default_factory=Source)
    active_disclosure: CellTable = Field(default_factory=dict)
    applications: CellTable = Field(default_factory=dict)
    reviews: CellTable = Field(default_factory=dict)
    findings: list[Finding] | None = None  # None for `parse`, a list for `check`
    confidence: ParseConfidence = Field(default_factory=ParseConfidence)
    evidence: ParseEvidence = Field(default_factory=ParseEvidence, exclude=True)

    # ------------------------------------------------------------ access

    def cell(self, path: str) -> CellValue:
        section, row, col = path.split(".")
        value: CellValue = getattr(self, section).get(row, {}).get(col)
        return value

    def set_cell(self, path: str, value: CellValue) -> None:
        section, row, col = path.split(".")
        getattr(self, section).setdefault(row, {})[col] = value

    def iter_cells(self) -> Iterator[tuple[str, CellValue]]:
        for section in SECTIONS:
            for row, cols in getattr(self, section).items():
                for col, value in cols.items():
                    yield f"{section}.{row}.{col}", value

    @property
    def layout(self) -> Template | None:
        return TEMPLATES[self.template] if self.template else None

    def identity(self) -> str:
        """Who filed what: the key findings and events are fingerprinted with."""
        return f"{self.agency or '?'}|{self.year or '?'}|{self.source.locator or self.source.sha256 or '?'}"

    # ------------------------------------------------------------ JSON

    def to_json_dict(self, *, with_findings: bool | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "agency": self.agency,
            "year": self.year,
            "template": self.template,
            "title": self.title,
            "published_on": self.published_on,
            "source": self.source.model_dump(exclude_none=True),
            "active_disclosure": self.active_disclosure,
            "applications": self.applications,
            "reviews": self.reviews,
        }
        include = self.findings is not None if with_findings is None else with_findings
        if include:
            out["findings"] = [f.to_json_dict() for f in self.findings or []]
        out["confidence"] = {
            "score": round(self.confidence.score, 3),
            "reasons": list(self.confidence.reasons),
            "uncertain_cells": dict(self.confidence.uncertain_cells),
        }
        return out

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_json_dict(**kw), ensure_ascii=False)


def empty_cells(layout: Template) -> tuple[CellTable, CellTable, CellTable]:
    """All three tables of a layout with every cell blank (None)."""
    disclosure: CellTable = {item.key: {f.key: None for f in item.fields} for item in layout.disclosure}
    applications: CellTable = {
        r.key: {c.key: None for c in layout.application_columns} for r in layout.application_rows
    }
    reviews: CellTable = {g.key: {o.key: None for o in layout.review_outcomes} for g in layout.review_groups}
    return disclosure, applications, reviews


def empty_report(template_id: TemplateId, **fields: Any) -> Report:
    d, a, r = empty_cells(TEMPLATES[template_id])
    return Report(template=template_id, active_disclosure=d, applications=a, reviews=r, **fields)
