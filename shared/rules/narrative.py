"""Numbers the narrative states about applications and cases, against the tables.

Deliberately conservative — a false alarm costs more than a miss:

- a claim is a key verb (收到/办结/结转至下年度/行政复议/行政诉讼), at most a short
  stretch of words *without* digits or clause punctuation, then ``N件`` (or 起/宗);
  so ``收到申请较上年增加5件``, ``办结率100%`` and ``1000余件`` are not claims;
- stretches with comparison or subset words (较, 同比, 其中, 占, 上年 …) are skipped;
- every table figure that the phrase can reasonably mean is accepted
  (``收到`` may or may not include applications carried over);
- 行政复议/行政诉讼 counts are claims only in a sentence about 信息公开;
- a kind of claim is reported only when *no* figure stated for it matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from shared.record import Number
from shared.rules.facts import Facts
from shared.rules.labels import count as n
from shared.rules.registry import Violation, rule

_FILL = r"[^，。；：:！？!?,;\d\n]"
_NUMBER = r"(?:共计|合计|总计|累计|共)?(?P<n>\d+)(?:件|起|宗)"
# words that make a stated number a comparison or a subset, not the figure itself
_NOT_THE_FIGURE = re.compile(
    r"较|比|同比|环比|增加|减少|增长|下降|其中|涉及|占|平均|上年|去年|结转|率|时长|时限|不到|超过|以上"
)


@dataclass(frozen=True, slots=True)
class Figure:
    name: str  # 表格中的…
    cells: tuple[str, ...]
    value: Number


@dataclass(frozen=True, slots=True)
class Claim:
    kind: str  # what the narrative states, in Chinese, for the message
    # each pattern starts with a literal word: the regex engine then jumps between occurrences
    # of it (an alternation at the start would make it try every position, ~15× slower)
    patterns: tuple[re.Pattern[str], ...]
    # the table figures the statement may mean
    figures: Callable[[Facts], list[Figure]]
    needs: str = "applications"  # the table that must have been filled for the claim to be judged
    fill_must_contain: str | None = None
    # the sentence so far must say this: a 司法局 reporting the 行政复议 cases it handles as its
    # business is not talking about cases arising from information disclosure
    sentence_must_contain: str | None = None
    # patterns the number comes *before* (``1件结转下年度``): the number is read just before the match
    number_first: tuple[re.Pattern[str], ...] = ()


def _each(heads: tuple[str, ...], tail: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(re.escape(head) + tail) for head in heads)


def _cell(facts: Facts, name: str, *paths: str) -> Figure:
    return Figure(name, paths, sum(facts.value(p) for p in paths))


NEW = "applications.new_received.total"
CARRIED = "applications.carried_over.total"
DONE = "applications.total.total"
FORWARD = "applications.carried_forward.total"
REVIEW = "reviews.review.total"
SUED_DIRECT = "reviews.litigation_direct.total"
SUED_AFTER = "reviews.litigation_after_review.total"


def _received_or_accepted(facts: Facts) -> list[Figure]:
    # 收到/受理 N件 may count new applications only, or with those carried over, or those handled
    return [
        _cell(facts, "本年新收总计", NEW),
        _cell(facts, "本年新收与上年结转之和", NEW, CARRIED),
        _cell(facts, "（七）总计", DONE),
    ]


_RECEIVED = ("收到", "新收", "受理")

CLAIMS: tuple[Claim, ...] = (
    Claim(
        "收到申请",
        (
            *_each(_RECEIVED, rf"(?:了|过)?(?P<fill>{_FILL}{{0,20}}?){_NUMBER}"),
            *_each(_RECEIVED, r"(?:了|过)?(?P<fill>)(?P<n>\d+)件(?:政府信息公开|依申请公开|信息公开)?申请"),
        ),
        _received_or_accepted,
        fill_must_contain="申请",
    ),
    Claim(
        "办结申请",
        _each(("办结",), rf"(?:了)?(?P<fill>{_FILL}{{0,12}}?){_NUMBER}"),
        lambda facts: [_cell(facts, "（七）总计", DONE)],
    ),
    Claim(
        "结转下年度",
        _each(("结转",), r"(?:至|到)?(?:下一?年度?|\d{4}年度?)(?:继续办理)?(?P<fill>)" + _NUMBER),
        lambda facts: [_cell(facts, "结转下年度继续办理总计", FORWARD)],
        number_first=_each(("件",), r"(?:申请)?结转(?:至|到)?下一?年度?"),
    ),
    Claim(
        "行政复议",
        _each(("行政复议",), r"(?P<fill>(?:案件|申请)?)" + _NUMBER),
        lambda facts: [_cell(facts, "行政复议总计", REVIEW)],
        needs="reviews",
        sentence_must_contain="信息公开",
    ),
    Claim(
        "行政诉讼",
        _each(("行政诉讼",), r"(?P<fill>(?:案件)?)" + _NUMBER),
        lambda facts: [
            _cell(facts, "行政诉讼总计", SUED_DIRECT, SUED_AFTER),
            _cell(facts, "未经复议直接起诉总计", SUED_DIRECT),
            _cell(facts, "复议后起诉总计", SUED_AFTER),
        ],
        needs="reviews",
        sentence_must_contain="信息公开",
    ),
)

# 本年度未收到政府信息公开申请。 — the whole sentence must be about receiving none
NONE_RECEIVED = re.compile(
    r"未(?:收到|受理|接到)(?:过)?(?:任何)?(?:政府信息公开|依申请公开|信息公开)?(?:政府信息)?申请(?:件)?(?=[，。；,;.]|$)"
)


_NUMBER_BEFORE = re.compile(r"(?<!\d)\d{1,7}\Z")
_SENTENCE_ENDS = "。；;！？!?\n"


def _sentence_before(text: str, at: int) -> str:
    start = max(text.rfind(mark, 0, at) for mark in _SENTENCE_ENDS) + 1
    return text[start:at]


# a stated count longer than this is no count (and int() refuses over 4,300 digits)
_MAX_STATED_DIGITS = 12


def _stated(claim: Claim, text: str) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for pattern in claim.number_first:
        for match in pattern.finditer(text):
            number = _NUMBER_BEFORE.search(text, max(0, match.start() - 8), match.start())
            if number:
                found.append((int(number.group(0)), text[number.start() : match.end()]))
    for pattern in claim.patterns:
        for match in pattern.finditer(text):
            if _NOT_THE_FIGURE.search(match.group("fill")):
                continue
            if claim.fill_must_contain and claim.fill_must_contain not in match.group(0):
                continue
            needed = claim.sentence_must_contain
            if needed and needed not in _sentence_before(text, match.start()):
                continue
            digits = match.group("n")
            if len(digits.lstrip("0")) > _MAX_STATED_DIGITS:
                continue
            found.append((int(digits), match.group(0)))
    return found


@rule(
    "text_table_mismatch",
    "warning",
    "正文所述申请、办结、结转、复议、诉讼件数与表格不符",
    extraction_sensitive=True,
)
def text_table_mismatch(facts: Facts) -> Iterator[Violation]:
    text = facts.report.evidence.narrative
    if not text:
        return
    for claim in CLAIMS:
        if claim.needs in facts.blank_tables:
            continue
        stated = _stated(claim, text)
        if not stated:
            continue
        figures = claim.figures(facts)
        tolerance = facts.thresholds.tolerance
        if any(abs(value - figure.value) < tolerance for value, _ in stated for figure in figures):
            continue
        value, snippet = stated[0]
        main = figures[0]
        yield Violation(
            f"正文称“{snippet}”（{claim.kind}{value}件），而表格中{main.name}为{n(main.value)}件",
            main.cells,
            expected=main.value,
            actual=value,
        )
    if "applications" not in facts.blank_tables:
        none = NONE_RECEIVED.search(text)
        received = facts.value(NEW)
        if none and received > 0:
            yield Violation(
                f"正文称“{none.group(0)}”，而表格中本年新收总计为{n(received)}件",
                (NEW,),
                expected=received,
                actual=0,
            )
