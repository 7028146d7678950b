"""Which kind of body filed a report, from its name alone.

The deadline of Art. 49 depends on it: a government's own report (filed by its
office) is due 31 Mar, a department's 31 Jan, a township's on a local date.
Suffix tables, not if-statements: a township is a name whose core (after
``人民政府``/``办事处`` …) ends in 乡/镇/街道/苏木 — so 固镇县城市管理局 (a county
bureau whose county happens to contain 镇) stays a department, and 镇江市人民政府
a government.
"""

from __future__ import annotations

import re
from functools import lru_cache

from shared.rules.thresholds import FilerLevel

# stripped, repeatedly, before looking at what kind of place remains
BODY_SUFFIXES: tuple[str, ...] = (
    "党政综合办公室",
    "党政办公室",
    "党政办",
    "办公室",
    "办公厅",
    "人民政府",
    "政府",
    "办事处",
    "党工委",
    "党委",
)
TOWNSHIP_SUFFIXES: tuple[str, ...] = ("乡", "镇", "街道", "街道办", "苏木")

GOVERNMENT_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"人民政府(办公厅|办公室)?$"),
    re.compile(r"政府办(公厅|公室)?$"),
    # a zone's administrative committee governs the zone; a city's 城管委 is a department
    re.compile(r"(区|园|新城|港|岛|基地)(管委会|管理委员会|工委管委会)$"),
    re.compile(r"(行政公署|行署)$"),
    # a bare place name is a whole-area report: 上海市, 平潭综合实验区, 某某县
    re.compile(r"(省|市|县|区|自治州|自治县|自治区|旗|盟|林区|特区)$"),
)

_SPACES = re.compile(r"\s+")


def _core(name: str) -> str:
    core = name
    changed = True
    while changed:
        changed = False
        for suffix in BODY_SUFFIXES:
            if core.endswith(suffix) and len(core) > len(suffix):
                core = core[: -len(suffix)]
                changed = True
    return core


@lru_cache(maxsize=4096)
def infer_filer_level(agency: str | None) -> FilerLevel | None:
    """Township, government or department; None when there is no name to go by."""
    if not agency:
        return None
    name = _SPACES.sub("", agency)
    if not name:
        return None
    if _core(name).endswith(TOWNSHIP_SUFFIXES):
        return FilerLevel.TOWNSHIP
    if any(pattern.search(name) for pattern in GOVERNMENT_PATTERNS):
        return FilerLevel.GOVERNMENT
    return FilerLevel.DEPARTMENT
