"""Where the six sections are: headings in paragraphs, in table cells, or run into text.

A heading is ``<一..六>、<words>`` whose words carry the section's key phrase
(:data:`HEADING_KEYWORDS`), so a numbered sub-point such as ``一、明确责任…`` inside
section 一 is not taken for a heading, and neither is the section-三 row label
``四、结转下年度继续办理``. Tables are assigned to sections by their own labels
(see :mod:`shared.parse.grid`); headings only break ties and fill
``evidence.sections_found``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from shared.extract.blocks import Document, Paragraph, Table
from shared.parse.labels import normalise_label
from shared.templates import SECTION_HEADINGS

SECTION_NUMERALS = ("一", "二", "三", "四", "五", "六")
SECTION_KEYS: tuple[str, ...] = tuple(h.key for h in SECTION_HEADINGS)

# the words that make "N、…" a section heading rather than a numbered sub-point
HEADING_KEYWORDS: dict[str, tuple[str, ...]] = {
    "overview": ("总体情况", "基本情况", "概述"),
    "active_disclosure": ("主动公开",),
    "applications": ("收到和处理", "依申请公开", "收到和办理", "申请情况"),
    "reviews": ("行政复议", "行政诉讼"),
    "problems": ("存在的主要问题", "存在问题", "主要问题", "改进情况", "改进措施"),
    "other": ("其他需要报告", "其他事项", "需要报告的事项"),
}
# headings printed longer than this are sentences, not headings
MAX_HEADING_LENGTH = 40

_HEADING = re.compile(r"^([一二三四五六])[、.．,，]")


@dataclass(frozen=True, slots=True)
class HeadingHit:
    key: str  # a SECTION_HEADINGS key
    block: int  # index of the block it was found in
    offset: int  # character offset inside a run-together paragraph (0 otherwise)
    text: str  # as printed


@lru_cache(maxsize=8192)
def match_heading(text: str) -> str | None:
    """The section key when ``text`` (one line or cell) is a section heading."""
    s = normalise_label(text)
    if not s or len(s) > MAX_HEADING_LENGTH:
        return None
    m = _HEADING.match(s)
    if not m:
        return None
    key = SECTION_KEYS[SECTION_NUMERALS.index(m.group(1))]
    rest = s[m.end() :]
    if any(word in rest for word in HEADING_KEYWORDS[key]):
        return key
    return None


_INLINE_NUMBERING = re.compile(r"([一二三四五六])[、.．]")
_NEXT_NUMBERING = re.compile(r"[一二三四五六七八九十][、.．]|\([一二三四五六七八九十]\)")


def find_inline_headings(text: str) -> list[tuple[int, str]]:
    """Headings run into a long paragraph (text that lost its line breaks): ``N、`` followed,
    before the next numbering, by the section's key phrase (typos elsewhere are fine:
    ``四、政府信息公开行政法复议、行政诉讼情况``)."""
    s = normalise_label(text)
    hits: dict[str, int] = {}
    for m in _INLINE_NUMBERING.finditer(s):
        key = SECTION_KEYS[SECTION_NUMERALS.index(m.group(1))]
        if key in hits:
            continue
        window = s[m.end() : m.end() + MAX_HEADING_LENGTH]
        cut = _NEXT_NUMBERING.search(window)
        if cut:
            window = window[: cut.start()]
        if any(word in window for word in HEADING_KEYWORDS[key]):
            hits[key] = m.start()
    return sorted((pos, key) for key, pos in hits.items())


def locate_headings(doc: Document) -> list[HeadingHit]:
    """Every section heading in document order: paragraphs, table cells, run-together text."""
    hits: list[HeadingHit] = []
    for index, block in enumerate(doc.blocks):
        if isinstance(block, Paragraph):
            text = block.text.strip()
            if len(text) <= MAX_HEADING_LENGTH * 2:
                for line in text.splitlines() or [text]:
                    key = match_heading(line)
                    if key:
                        hits.append(HeadingHit(key, index, 0, line.strip()))
            else:
                hits.extend(HeadingHit(key, index, pos, key) for pos, key in find_inline_headings(text))
        elif isinstance(block, Table):
            for row in block.rows:
                for cell in dict.fromkeys(row):  # merged cells repeat; look once
                    key = match_heading(cell)
                    if key:
                        hits.append(HeadingHit(key, index, 0, cell.strip()))
    return hits


def sections_in_order(hits: list[HeadingHit]) -> list[str]:
    """Section keys by first appearance (what ``evidence.sections_found`` holds)."""
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(hit.key, None)
    return list(seen)
