"""Amounts (万元): written in 元, or too large for the body that filed them."""

from __future__ import annotations

from collections.abc import Iterator

from shared.rules.facts import Facts
from shared.rules.labels import cell_name
from shared.rules.labels import count as n
from shared.rules.registry import Violation, rule
from shared.rules.thresholds import LEVEL_NAMES

YUAN_UNITS = frozenset({"元", "圆"})


@rule(
    "unit_suspect", "warning", "金额以元填写（应为万元），或数额与机关级别明显不符", extraction_sensitive=True
)
def unit_suspect(facts: Facts) -> Iterator[Violation]:
    if facts.layout is None or "active_disclosure" in facts.blank_tables:
        return
    evidence = facts.report.evidence
    level = facts.filer_level
    ceilings = facts.thresholds.amount_ceilings_wan_yuan
    ceiling = ceilings.get(level, ceilings[None])
    for item in facts.layout.disclosure:
        for key in item.amount_fields:
            path = f"active_disclosure.{item.key}.{key}"
            value = facts.report.cell(path)
            if value is None:
                continue
            reasons: list[str] = []
            if evidence.units.get(path, "").strip() in YUAN_UNITS:
                printed = evidence.raw_cells.get(path, "").strip()
                shown = f"（原文“{printed}”）" if printed else ""
                reasons.append(f"以元填写{shown}，表格要求以万元为单位，已折算为{n(value)}万元")
            elif value > ceiling:
                reasons.append(
                    f"为{n(value)}万元，超出{LEVEL_NAMES[level]}的合理上限{n(ceiling)}万元，疑似误以元为单位填写"
                )
            if reasons:
                message = f"{cell_name(path)}{'；'.join(reasons)}"
                yield Violation(message, (path,), expected="万元", actual=value)
