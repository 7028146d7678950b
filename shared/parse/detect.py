"""Which official layout a report uses, decided by its labels, never by its year.

Each :class:`~shared.templates.Template` lists ``markers``: labels printed only in
that layout (``本年新制作数量`` / ``政府集中采购`` for 60号; ``本年制发件数`` /
``申请人无正当理由逾期不补正`` for 30号). The layout whose markers the tables
carry most wins. Narrative text is searched only when there are no grids (a
run-together page), since a 2021 report may well talk about 政府集中采购 in prose.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.extract.blocks import Document, Paragraph
from shared.parse.labels import core_label, normalise_label
from shared.parse.numbers import looks_like_value
from shared.templates import TEMPLATE_IDS, TEMPLATES, TemplateId

FIRST_2021_FORMAT_YEAR = 2021
OTHER_HANDLING = core_label("（六）其他处理")


@dataclass(frozen=True, slots=True)
class TemplateChoice:
    template: TemplateId | None
    hits: dict[str, tuple[str, ...]]  # template id -> markers found
    source: str  # "tables" | "text" | "none"


def _normalised_markers() -> dict[TemplateId, tuple[tuple[str, str], ...]]:
    return {tid: tuple((m, normalise_label(m)) for m in TEMPLATES[tid].markers) for tid in TEMPLATE_IDS}


_MARKERS = _normalised_markers()


def _choose(text: str, source: str) -> TemplateChoice:
    hits: dict[str, tuple[str, ...]] = {
        tid: tuple(m for m, norm in _MARKERS[tid] if norm in text) for tid in TEMPLATE_IDS
    }
    ranked = sorted(TEMPLATE_IDS, key=lambda tid: len(hits[tid]), reverse=True)
    best, runner = ranked[0], ranked[1]
    if not hits[best] or len(hits[best]) == len(hits[runner]):
        return TemplateChoice(None, hits, source)
    return TemplateChoice(best, hits, source)


def _single_other_handling_row(doc: Document) -> bool:
    """A ``（六）其他处理`` row carrying numbers of its own: the 60号 layout's single row
    (in 30号 其他处理 is a group whose numbers sit on three sub-rows)."""
    for table in doc.tables:
        for row in table.rows:
            cells = [c for c in dict.fromkeys(row) if c.strip()]
            labels = [c for c in cells if not looks_like_value(c)]
            if labels and core_label(labels[-1]) == OTHER_HANDLING and len(cells) > len(labels):
                return True
    return False


def detect_template(doc: Document) -> TemplateChoice:
    table_text = "".join(
        normalise_label(cell) for t in doc.tables for row in t.rows for cell in dict.fromkeys(row)
    )
    if table_text:
        choice = _choose(table_text, "tables")
        if choice.template is not None:
            return choice
        if _single_other_handling_row(doc):
            return TemplateChoice("2019", {**choice.hits, "2019": ("（六）其他处理 as one row",)}, "tables")
    text = normalise_label("".join(b.text for b in doc.blocks if isinstance(b, Paragraph)))
    choice = _choose(text, "text")
    return choice if choice.template is not None else TemplateChoice(None, choice.hits, "none")


def template_for_year(year: int | None) -> TemplateId:
    """Only to shape an empty record when no label decided: the layout in force that year."""
    return "2021" if year is None or year >= FIRST_2021_FORMAT_YEAR else "2019"


def text_has_table_labels(doc: Document) -> bool:
    """True when table labels appear in running text: tables whose cell boundaries were lost."""
    text = normalise_label(doc.text())
    return any(normalise_label(m) in text for tid in TEMPLATE_IDS for m in TEMPLATES[tid].markers) or (
        "本年新收政府信息公开申请数量" in text
    )
