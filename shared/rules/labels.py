"""Short Chinese names of rows, columns and cells, for finding messages."""

from __future__ import annotations

import math

from shared.templates import TEMPLATES

# the group a numbered sub-row sits under, by key prefix (the form prints 1.–8. under each)
_ROW_GROUPS: tuple[tuple[str, str], ...] = (
    ("denied_", "（三）不予公开"),
    ("unavailable_", "（四）无法提供"),
    ("rejected_", "（五）不予处理"),
    ("other_no_", "（六）其他处理"),
    ("other_misc", "（六）其他处理"),
)

_ROW_OVERRIDES: dict[str, str] = {
    "new_received": "一、本年新收",
    "carried_over": "二、上年结转",
    "partially_granted": "（二）部分公开",
    "carried_forward": "四、结转下年度继续办理",
}

COLUMN_NAMES: dict[str, str] = {
    "natural_person": "自然人",
    "commercial": "商业企业",
    "research": "科研机构",
    "social_welfare": "社会公益组织",
    "legal_service": "法律服务机构",
    "other_org": "其他（法人或其他组织）",
    "total": "总计",
}

REVIEW_GROUP_NAMES: dict[str, str] = {
    "review": "行政复议",
    "litigation_direct": "行政诉讼（未经复议直接起诉）",
    "litigation_after_review": "行政诉讼（复议后起诉）",
}

REVIEW_OUTCOME_NAMES: dict[str, str] = {
    "upheld": "结果维持",
    "corrected": "结果纠正",
    "other": "其他结果",
    "pending": "尚未审结",
    "total": "总计",
}

SECTION_NAMES: dict[str, str] = {
    "active_disclosure": "二、主动公开政府信息情况",
    "applications": "三、收到和处理政府信息公开申请情况",
    "reviews": "四、政府信息公开行政复议、行政诉讼情况",
}


def _build_row_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for layout in TEMPLATES.values():
        for label in layout.application_rows:
            official = label.official
            # drop the form's explanatory parenthesis: （二）部分公开（区分处理的，…）
            cut = official.find("（", 1)
            short = official[:cut] if cut > 0 else official
            group = next((name for prefix, name in _ROW_GROUPS if label.key.startswith(prefix)), "")
            names[label.key] = _ROW_OVERRIDES.get(label.key, f"{group}{short}")
    return names


ROW_NAMES: dict[str, str] = _build_row_names()


def _build_disclosure_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for layout in TEMPLATES.values():
        for item in layout.disclosure:
            for fld in item.fields:
                names[f"{item.key}.{fld.key}"] = f"{item.label.official}·{fld.official}"
    return names


DISCLOSURE_NAMES: dict[str, str] = _build_disclosure_names()


def cell_name(path: str) -> str:
    """``applications.granted.natural_person`` → ``（一）予以公开·自然人`` (other paths as they are)."""
    if path.count(".") != 2:
        return path
    section, row, col = path.split(".")
    if section == "applications":
        return f"{ROW_NAMES.get(row, row)}·{COLUMN_NAMES.get(col, col)}"
    if section == "reviews":
        return f"{REVIEW_GROUP_NAMES.get(row, row)}·{REVIEW_OUTCOME_NAMES.get(col, col)}"
    return DISCLOSURE_NAMES.get(f"{row}.{col}", f"{row}·{col}")


def count(value: float) -> str:
    """Counts print as ints, amounts with their decimals (no trailing zeros).

    Never raises: the parser caps cells at 12 digits, but a record can come from elsewhere
    (the store, an older parser), and a message must not crash a rule run — an int too big
    for ``float()`` or for ``str()`` (over 4,300 digits) prints as its order of magnitude."""
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:
            return f"约1e{int(abs(value).bit_length() * math.log10(2))}"
    if not math.isfinite(value):
        return str(value)
    if value.is_integer():
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")
