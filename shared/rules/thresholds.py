"""Every number a rule compares against, as data with documented defaults.

Rules never read settings or the clock: the caller builds a :class:`Thresholds`
(usually the defaults, perhaps with a local township deadline from
``XXGK_TOWNSHIP_DEADLINE_MMDD``) and passes it in a ``CheckContext``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum

from shared.templates import TemplateId


class FilerLevel(StrEnum):
    """Who filed the report, as far as the publication deadline is concerned (条例 Art. 49)."""

    DEPARTMENT = "department"  # 县级以上人民政府部门: 31 Jan
    GOVERNMENT = "government"  # a government's own (本级) report, by its office: 31 Mar
    TOWNSHIP = "township"  # 乡镇、街道: set locally


LEVEL_NAMES: dict[FilerLevel | None, str] = {
    FilerLevel.DEPARTMENT: "政府部门",
    FilerLevel.GOVERNMENT: "人民政府本级",
    FilerLevel.TOWNSHIP: "乡镇（街道）",
    None: "级别不明的机关",
}


@dataclass(frozen=True, slots=True)
class MonthDay:
    month: int
    day: int

    @classmethod
    def parse(cls, text: str) -> MonthDay:
        """``"02-20"`` (the form of ``XXGK_TOWNSHIP_DEADLINE_MMDD``) → MonthDay(2, 20)."""
        month, day = (int(part) for part in text.strip().split("-"))
        date(2000, month, day)  # validates (2000 is a leap year, so 02-29 passes)
        return cls(month, day)

    def in_year(self, year: int) -> date:
        if (self.month, self.day) == (2, 29):
            try:
                return date(year, 2, 29)
            except ValueError:
                return date(year, 2, 28)
        return date(year, self.month, self.day)

    def __str__(self) -> str:
        return f"{self.month}月{self.day}日"


def _default_deadlines() -> dict[FilerLevel, MonthDay]:
    return {
        FilerLevel.DEPARTMENT: MonthDay(1, 31),
        FilerLevel.GOVERNMENT: MonthDay(3, 31),
        # Townships are not named in Art. 49; 怀化 (2022) used 20 Feb for county collections.
        FilerLevel.TOWNSHIP: MonthDay(2, 20),
    }


def _default_amount_ceilings() -> dict[FilerLevel | None, float]:
    # 万元. Above these an amount is more likely written in 元 than real:
    # a township collecting 1亿元 in fees, a department 50亿元, a whole government 500亿元.
    return {
        FilerLevel.TOWNSHIP: 10_000.0,
        FilerLevel.DEPARTMENT: 500_000.0,
        FilerLevel.GOVERNMENT: 5_000_000.0,
        None: 5_000_000.0,
    }


@dataclass(frozen=True, slots=True)
class Thresholds:
    # late_publication: deadline in the year after the report year, by filer level
    deadlines: dict[FilerLevel, MonthDay] = field(default_factory=_default_deadlines)
    # reports for years up to this one fell under the 2007 regulation: 31 Mar for every body
    legacy_until_year: int = 2018
    legacy_deadline: MonthDay = MonthDay(3, 31)
    # template_mismatch: which official layout each report year must use (first year, last year or None)
    template_years: tuple[tuple[int, int | None, TemplateId], ...] = (
        (2019, 2020, "2019"),  # 国办公开办函〔2019〕60号
        (2021, None, "2021"),  # 国办公开办函〔2021〕30号
    )
    # unit_suspect: implausible amounts (万元) by filer level
    amount_ceilings_wan_yuan: dict[FilerLevel | None, float] = field(default_factory=_default_amount_ceilings)
    # uncertainty: below this parse confidence, arithmetic failures on uncertain cells drop to info
    low_confidence: float = 0.6
    # split_cell: the largest cell value that may be half of a split number (KIROGOVCOMPARE: single digits)
    split_max_part: int = 9
    # arithmetic: amounts are decimals; counts are ints
    tolerance: float = 1e-6
    # copied_report (cross-report, engineer F): narrative similarity above this is a copy (宿迁: 50%)
    copied_similarity: float = 0.5

    def deadline(self, level: FilerLevel | None, report_year: int) -> date:
        """The last day a report for ``report_year`` may be published (unknown level: the latest)."""
        if report_year <= self.legacy_until_year:
            return self.legacy_deadline.in_year(report_year + 1)
        if level is None:
            return max(d.in_year(report_year + 1) for d in self.deadlines.values())
        return self.deadlines[level].in_year(report_year + 1)

    def template_for_year(self, report_year: int) -> TemplateId | None:
        for first, last, template_id in self.template_years:
            if report_year >= first and (last is None or report_year <= last):
                return template_id
        return None

    def with_township_deadline(self, mmdd: str) -> Thresholds:
        """A copy with the local township deadline, e.g. from ``settings.township_deadline_mmdd``."""
        deadlines = dict(self.deadlines)
        deadlines[FilerLevel.TOWNSHIP] = MonthDay.parse(mmdd)
        return replace(self, deadlines=deadlines)


DEFAULT_THRESHOLDS = Thresholds()
