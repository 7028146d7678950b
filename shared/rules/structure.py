"""Rules about the report as a filing: blank tables, the right layout for the year, the right year,
omitted totals, the deadline, captions and labels, the six sections."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from functools import lru_cache

from shared.rules.facts import Facts
from shared.rules.labels import SECTION_NAMES, cell_name
from shared.rules.labels import count as n
from shared.rules.registry import Violation, rule
from shared.rules.thresholds import LEVEL_NAMES
from shared.templates import OFFICIAL_CAPTIONS, SECTION_HEADINGS, TEMPLATES

# 本报告中所列数据的统计期限为2020年1月1日至2020年12月31日 (also 统计期限自…起至…止)
STATISTICS_PERIOD = re.compile(
    r"统计(?:期限|时限|期间|时间)[^0-9]{0,6}(\d{4})\s*年\s*1\s*月\s*1\s*日\s*"
    r"(?:起\s*)?(?:至|到|—|-|－|~)\s*(\d{4})\s*年\s*12\s*月\s*31\s*日"
)
TITLE_YEAR = re.compile(r"(\d{4})\s*年")
CAPTION_LIKE = re.compile(r"第.{1,5}条第.{1,5}项")
_WIDTH = str.maketrans({"(": "（", ")": "）", " ": "", "\u3000": "", "\t": "", "\n": ""})
# what a label keeps when numbering, brackets, punctuation and spacing are set aside
_NUMBERING = re.compile(r"^(?:[（(][一二三四五六七八九十]+[）)]|[一二三四五六七八九十]+、|\d+[.、．])")
_NOT_WORDS = re.compile(r"[\W_]+")


@rule("blank_table", "error", "主动公开、依申请或复议诉讼表格缺失或全部空白")
def blank_table(facts: Facts) -> Iterator[Violation]:
    for section in ("active_disclosure", "applications", "reviews"):
        if section in facts.blank_tables:
            yield Violation(f"“{SECTION_NAMES[section]}”表格缺失或未填写任何数字", (section,))


@rule("template_mismatch", "error", "表格格式与报告年度不符（2021年起应使用〔2021〕30号格式）")
def template_mismatch(facts: Facts) -> Iterator[Violation]:
    report = facts.report
    if report.year is None or report.template is None:
        return
    wanted = facts.thresholds.template_for_year(report.year)
    if wanted is None or wanted == report.template:
        return
    yield Violation(
        f"{report.year}年度报告应使用{TEMPLATES[wanted].name}的表格格式，实际使用的是{TEMPLATES[report.template].name}格式",
        expected=wanted,
        actual=report.template,
    )


def title_year(facts: Facts) -> int | None:
    evidence = facts.report.evidence
    if evidence.title_year is not None:
        return evidence.title_year
    found = TITLE_YEAR.search(facts.report.title or "")
    return int(found.group(1)) if found else None


def statistics_year(facts: Facts) -> int | None:
    evidence = facts.report.evidence
    if evidence.statistics_year is not None:
        return evidence.statistics_year
    found = STATISTICS_PERIOD.search(evidence.narrative)
    if found and found.group(1) == found.group(2):
        return int(found.group(1))
    return None


@rule("year_mismatch", "error", "标题年份与数据统计期限年份不一致")
def year_mismatch(facts: Facts) -> Iterator[Violation]:
    titled, counted = title_year(facts), statistics_year(facts)
    if titled is None or counted is None or titled == counted:
        return
    yield Violation(
        f"标题称{titled}年度报告，而数据统计期限为{counted}年1月1日至{counted}年12月31日",
        expected=counted,
        actual=titled,
    )


@rule("total_omitted", "warning", "总计单元格空白而分项不全为0（已按分项之和参与校验）")
def total_omitted(facts: Facts) -> Iterator[Violation]:
    for path, imputed in facts.imputed.items():
        yield Violation(
            f"{cell_name(path)}空白，而其分项合计{n(imputed.value)}件；其他校验按{n(imputed.value)}件计算",
            (path,),
            expected=imputed.value,
            actual=None,
        )


def _published_on(facts: Facts) -> date | None:
    text = facts.report.published_on
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


@rule("late_publication", "warning", "发布晚于法定期限（部门1月31日，政府本级3月31日，乡镇街道按地方规定）")
def late_publication(facts: Facts) -> Iterator[Violation]:
    published, year = _published_on(facts), facts.report.year
    if published is None or year is None:
        return
    today = facts.context.today
    if today is not None and published > today:
        return  # a date in the future is a misread, not a publication
    level = facts.filer_level
    deadline = facts.thresholds.deadline(level, year)
    if published <= deadline:
        return
    days = (published - deadline).days
    who = facts.report.agency or "报告机关"
    yield Violation(
        f"{who}（{LEVEL_NAMES[level]}）{year}年度报告应于{deadline.isoformat()}前发布，"
        f"实际发布于{published.isoformat()}，逾期{days}天",
        expected=deadline.isoformat(),
        actual=published.isoformat(),
    )


@lru_cache(maxsize=4096)
def _normalise(text: str) -> str:
    return text.translate(_WIDTH)


def _words(label: str) -> str:
    return _NOT_WORDS.sub("", _NUMBERING.sub("", _normalise(label)))


@lru_cache(maxsize=4096)
def _deviates(found: str, official: str | None) -> bool:
    """A different wording, not just numbering, punctuation, a wrapped or a truncated cell."""
    if official is None:
        return True
    printed, wanted = _words(found), _words(official)
    return bool(printed) and printed not in wanted and wanted not in printed


@rule("template_deviation", "warning", "表格标题、栏目名称与官方格式不一致，或多出、缺少行列")
def template_deviation(facts: Facts) -> Iterator[Violation]:
    evidence = facts.report.evidence
    official = {_normalise(c) for c in OFFICIAL_CAPTIONS}
    wrong_captions: list[str] = []
    caption_deviations = [d.found for d in evidence.label_deviations if d.where == "caption"]
    for caption in [*evidence.captions, *caption_deviations]:
        printed = _normalise(caption)
        if CAPTION_LIKE.search(printed) and printed not in official and printed not in wrong_captions:
            wrong_captions.append(printed)
    if wrong_captions:
        yield Violation(
            f"主动公开表格标题“{'”“'.join(wrong_captions)}”不是官方格式的标题（应为第二十条第（X）项）",
            ("active_disclosure",),
            actual="；".join(wrong_captions),
        )
    for deviation in evidence.label_deviations:
        if deviation.where == "caption" or not _deviates(deviation.found, deviation.official):
            continue  # captions are judged above
        should = f"，官方格式为“{deviation.official}”" if deviation.official else ""
        yield Violation(
            f"栏目名称“{deviation.found}”与官方格式不一致{should}",
            (deviation.where,),
            expected=deviation.official,
            actual=deviation.found,
        )
    if evidence.missing_rows:
        yield Violation(
            f"表格缺少官方格式中的行或列：{'、'.join(evidence.missing_rows)}",
            tuple(sorted(evidence.missing_rows)),
        )
    if evidence.extra_rows:
        yield Violation(
            f"表格有官方格式之外的行或列：{'、'.join(evidence.extra_rows)}",
        )


SECTION_ORDER: tuple[str, ...] = tuple(h.key for h in SECTION_HEADINGS)
SECTION_TITLES: dict[str, str] = {h.key: h.official for h in SECTION_HEADINGS}


@rule("sections_missing", "warning", "六个部分有缺失或顺序错乱")
def sections_missing(facts: Facts) -> Iterator[Violation]:
    found = [key for key in facts.report.evidence.sections_found if key in SECTION_TITLES]
    if not found:
        return  # the parser recorded no headings: nothing to judge by
    first_seen = list(dict.fromkeys(found))
    missing = [key for key in SECTION_ORDER if key not in first_seen]
    present_in_order = [key for key in SECTION_ORDER if key in first_seen]
    problems: list[str] = []
    if missing:
        problems.append(f"缺少{'、'.join(f'“{SECTION_TITLES[k]}”' for k in missing)}")
    if first_seen != present_in_order:
        problems.append(f"各部分顺序为{'、'.join(SECTION_TITLES[k][:1] for k in first_seen)}，不符合官方顺序")
    if problems:
        yield Violation(
            "报告" + "；".join(problems),
            expected="、".join(SECTION_ORDER),
            actual="、".join(first_seen),
        )
