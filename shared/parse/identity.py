"""Who filed the report, for which year, under which title, published when.

Sources, most trusted first (``spec/domain.md`` "Identity"):

- the title line ``<机构><YYYY>年(度)政府信息公开工作年度报告`` (or ``<YYYY>年<机构>…``),
  from the page meta (``ArticleTitle``, a crawler's ``标题``, ``<title>`` minus the
  site suffix) or a short paragraph at the top;
- the signature: the agency line and date at the end (``丰城市段潭乡人民政府`` /
  ``2021年1月12日``);
- the body: ``我镇…郑庄子镇…`` — the named place of the kind the report calls itself.

A site footer's ``主办单位`` (the website's owner) is never the filer. The year is
the year the report covers: the title's, else the statistics period's
(``统计期限为YYYY年1月1日至…``), else the year the narrative talks about — never just
the publication year.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from shared.extract.blocks import Document, Paragraph

# meta keys, in order of trust (compared case-insensitively)
TITLE_META_KEYS = ("ArticleTitle", "标题", "title", "dc.title", "og:title")
DATE_META_KEYS = (
    "PubDate",
    "发布时间",
    "发布日期",
    "publishdate",
    "pubdate",
    "firstpublishedtime",
    "成文日期",
    "date",
)
SITE_ID_META_KEYS = ("SiteIDCode", "网站标识码")
SITE_NAME_META_KEYS = ("SiteName", "网站名称")

# how many leading / trailing paragraphs may hold the title / the signature
TITLE_SEARCH_PARAGRAPHS = 8
SIGNATURE_SEARCH_PARAGRAPHS = 8
MAX_TITLE_LENGTH = 80
MAX_AGENCY_LENGTH = 40
MAX_SIGNATURE_LINE = 80
STATISTICS_WINDOW = 80

_SPACES = re.compile(r"[\s\u00a0\u3000]+")
_REPORT_WORDS = r"(?:政府信息公开|政务公开|信息公开)(?:工作)?(?:年度)?(?:报告|年报)"
_TITLE = re.compile(
    r"(?P<before>[^\s，。；：:,]*?)\s*(?P<year>(?:19|20)\d{2})\s*年\s*度?\s*(?P<after>[^，。；]*?)\s*"
    + _REPORT_WORDS
)
_TITLE_PREFIXES = ("关于", "印发", "公布")
_TITLE_SEPARATORS = re.compile(r"[-_|·—>»/]+")
# words that show the text before a year is a sentence, not a name ("我乡编制了2020年度…")
_NOT_AN_AGENCY = re.compile(r"^[我本现特各]|编制|印发|发布|完成|根据|按照|以下")
_DATE = re.compile(r"((?:19|20)\d{2})\s*(?:年|-|/|\.)\s*(\d{1,2})\s*(?:月|-|/|\.)\s*(\d{1,2})\s*日?")
_CN_DIGITS = {
    "〇": 0,
    "○": 0,
    "零": 0,
    "一": 1,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_DATE = re.compile(
    r"([〇○零一二三四五六七八九]{4})年([一二三四五六七八九十]{1,3})月([一二三四五六七八九十]{1,3})日"
)
_DATE_LINE = re.compile(
    r"^(?P<agency>[^\d〇○零一二三四五六七八九]{0,40}?)\s*"
    r"(?P<date>(?:19|20)\d{2}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日|[〇○零一二三四五六七八九]{4}年[一二三四五六七八九十]{1,3}月[一二三四五六七八九十]{1,3}日)\s*$"
)
_PUBLISHED_LINE = re.compile(
    r"(?:发布日期|发布时间|成文日期|日期|时间)\s*[:：]\s*((?:19|20)\d{2}[-/.年]\s*\d{1,2}[-/.月]\s*\d{1,2})"
)
_STATISTICS = re.compile(
    r"统计(?:期限|时限|区间|时间|周期|范围|口径)?[^。；]{0,16}?((?:19|20)\d{2})\s*年\s*1\s*月\s*1\s*日"
    r"\s*(?:起)?\s*(?:至|到|—|-|～|~)\s*(?:((?:19|20)\d{2})\s*年\s*)?12\s*月\s*31\s*日"
)
_YEAR_MENTION = re.compile(r"((?:19|20)\d{2})\s*年(?!\s*\d{1,2}\s*月)")
_SITE_ID = re.compile(r"网站标识码\s*[:：]?\s*([0-9A-Za-z]{10})")
# lines of a site's footer: whoever is named there owns the website, not the report
_FOOTER = re.compile(
    r"^(?:主办单位|主办|承办单位|承办|协办|技术支持|维护单位|联系电话|联系方式|电话|传真|地址|邮编|邮箱|网站标识码|"
    r"版权所有|Copyright|©|ICP|.{0,3}ICP备|.{0,3}公网安备|访问量|附件|当前位置|来源)",
    re.I,
)
_AGENCY_SUFFIX = re.compile(
    r"(?:人民政府|政府|办公厅|办公室|委员会|管理委员会|管委会|局|厅|委|办|办事处|街道|镇|乡|中心|院|署|会|所|站|队|处|公司)$"
)
_AGENCY_CHARS = re.compile(r"^[\u4e00-\u9fff（）()]+$")
# the kind of body a report calls itself: 我镇 / 本局 / 我区 …
_SELF = re.compile(r"(?:我|本)(镇|乡|街道|区|县|市|局|委|办|厅|院|中心|署)")
# characters that end a phrase before a place name inside running text
_NAME_BREAK = set("的了在由为是对和与及将把从向于按据全各该本我其此等、，。；：（）《》“”\"' ")


@dataclass
class Identity:
    agency: str | None = None
    agency_source: str | None = None  # "title" | "signature" | "body"
    year: int | None = None
    year_source: str | None = None  # "title" | "statistics" | "body"
    title: str | None = None
    title_year: int | None = None
    statistics_year: int | None = None
    published_on: str | None = None
    site_id_code: str | None = None
    site_name: str | None = None
    notes: list[str] = field(default_factory=list)


def _squash(text: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def _meta(doc: Document, keys: tuple[str, ...]) -> str | None:
    lowered = {k.lower(): v for k, v in doc.meta.items() if v and v.strip()}
    for key in keys:
        value = lowered.get(key.lower())
        if value:
            return value.strip()
    return None


def _cn_number(text: str) -> int:
    if len(text) == 1:
        return 10 if text == "十" else _CN_DIGITS[text]
    if text.startswith("十"):
        return 10 + _CN_DIGITS[text[1]]
    if text.endswith("十"):
        return _CN_DIGITS[text[0]] * 10
    if "十" in text:
        return _CN_DIGITS[text[0]] * 10 + _CN_DIGITS[text[2]]
    return int("".join(str(_CN_DIGITS[c]) for c in text))


def parse_date(text: str) -> str | None:
    """``2021年1月20日``, ``2022-02-08 16:34``, ``二〇二一年一月十二日`` → ``YYYY-MM-DD``."""
    s = unicodedata.normalize("NFKC", text)
    m = _DATE.search(s)
    if m:
        y, mo, d = (int(g) for g in m.groups())
    else:
        m = _CN_DATE.search(s)
        if not m:
            return None
        y, mo, d = _cn_number(m.group(1)), _cn_number(m.group(2)), _cn_number(m.group(3))
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return None
    return f"{y:04d}-{mo:02d}-{d:02d}"


@dataclass(frozen=True, slots=True)
class TitleParts:
    title: str
    agency: str | None
    year: int


def read_title(text: str) -> TitleParts | None:
    """Split a title line into agency and year; ``None`` when it is not a report title."""
    s = _squash(text)
    if not s or len(s) > MAX_TITLE_LENGTH * 2:
        return None
    m = _TITLE.search(s)
    if not m:
        return None
    title = s[m.start() : m.end()].strip()
    agency = (m.group("before") or m.group("after") or "").strip()
    for prefix in _TITLE_PREFIXES:
        if agency.startswith(prefix):
            agency = agency[len(prefix) :]
    # a site name or breadcrumb glued before the title: "某某网-某某局2021年…"
    agency = _TITLE_SEPARATORS.split(agency)[-1].strip() or None
    if agency and (
        len(agency) > MAX_AGENCY_LENGTH
        or not re.search(r"[\u4e00-\u9fff]", agency)
        or _NOT_AN_AGENCY.search(agency)
    ):
        agency = None
    return TitleParts(title=title, agency=agency, year=int(m.group("year")))


def _paragraphs(doc: Document) -> list[str]:
    out: list[str] = []
    for block in doc.blocks:
        if isinstance(block, Paragraph):
            out.extend(line.strip() for line in block.text.splitlines() if line.strip())
    return out


def _title_from_document(doc: Document, paragraphs: list[str]) -> TitleParts | None:
    for key in TITLE_META_KEYS:
        value = _meta(doc, (key,))
        if value:
            parts = read_title(value)
            if parts:
                return parts
    for line in paragraphs[:TITLE_SEARCH_PARAGRAPHS]:
        if len(_squash(line)) <= MAX_TITLE_LENGTH:
            parts = read_title(line)
            if parts:
                return parts
        else:
            # a run-together page: the title opens the text
            head = _squash(line[: MAX_TITLE_LENGTH * 2])[:MAX_TITLE_LENGTH]
            parts = read_title(head)
            if parts and parts.agency and head.startswith(parts.title):
                return parts
    return None


def looks_like_agency(text: str) -> bool:
    if len(text) > MAX_AGENCY_LENGTH * 2:
        return False
    s = _squash(text).replace(" ", "")
    return (
        2 <= len(s) <= MAX_AGENCY_LENGTH
        and bool(_AGENCY_CHARS.match(s))
        and bool(_AGENCY_SUFFIX.search(s))
        and not _FOOTER.match(s)
    )


def read_signature(paragraphs: list[str]) -> tuple[str | None, str | None]:
    """(agency, date) from the report's last lines, skipping a site footer."""
    agency: str | None = None
    date: str | None = None
    tail = paragraphs[-SIGNATURE_SEARCH_PARAGRAPHS:]
    for line in reversed(tail):
        if len(line) > MAX_SIGNATURE_LINE:
            continue  # a paragraph of text, not a signature line
        s = _squash(line)
        if _FOOTER.match(s.replace(" ", "")):
            continue
        m = _DATE_LINE.match(s)
        if m and date is None:
            date = parse_date(m.group("date"))
            before = m.group("agency").strip()
            if before and looks_like_agency(before) and agency is None:
                agency = before.replace(" ", "")
            continue
        if agency is None and looks_like_agency(s):
            agency = s.replace(" ", "")
    return agency, date


def _body_agency(text: str) -> str | None:
    """The named body of the kind the report calls itself (``我镇`` → ``郑庄子镇``)."""
    kinds = Counter(_SELF.findall(text))
    if not kinds:
        return None
    kind = kinds.most_common(1)[0][0]
    names: Counter[str] = Counter()
    for m in re.finditer(re.escape(kind), text):
        start = m.start()
        j = start
        while (
            j > 0
            and start - j < 12
            and "\u4e00" <= text[j - 1] <= "\u9fff"
            and text[j - 1] not in _NAME_BREAK
        ):
            j -= 1
        name = text[j : m.end()]
        if len(name) - len(kind) >= 2 and name not in ("乡镇", "城镇", "村镇", "集镇"):
            following = text[m.end() : m.end() + 4]
            names[name + ("人民政府" if following.startswith("人民政府") else "")] += 1
    if not names:
        return None
    best = max(names.items(), key=lambda kv: (kv[1], len(kv[0])))
    return best[0]


def read_statistics_year(text: str) -> int | None:
    # callers outside read_identity may pass raw text: normalise the windows after each 统计
    # (full-width digits); NFKC of already normalised text is a cheap no-op
    start = text.find("统计")
    while start != -1:
        m = _STATISTICS.match(unicodedata.normalize("NFKC", text[start : start + STATISTICS_WINDOW]))
        if m:
            return int(m.group(1))
        start = text.find("统计", start + 2)
    return None


def _narrative_year(text: str) -> int | None:
    years = Counter(int(y) for y in _YEAR_MENTION.findall(text))
    if not years:
        return None
    return years.most_common(1)[0][0]


def read_identity(doc: Document) -> Identity:
    # NFKC once, up front: a year or date written in full-width digits (现将２０２１年度…) must
    # read like ASCII ones — the patterns spell years as (?:19|20)\d{2}, which ２０ does not match
    paragraphs = [unicodedata.normalize("NFKC", line) for line in _paragraphs(doc)]
    body = "\n".join(paragraphs)
    ident = Identity()

    title = _title_from_document(doc, paragraphs)
    if title:
        ident.title, ident.title_year = title.title, title.year
        if title.agency:
            ident.agency, ident.agency_source = title.agency, "title"

    sig_agency, sig_date = read_signature(paragraphs)
    if ident.agency is None and sig_agency:
        ident.agency, ident.agency_source = sig_agency, "signature"
    if ident.agency is None:
        found = _body_agency(body)
        if found:
            ident.agency, ident.agency_source = found, "body"
            ident.notes.append(f"agency {found!r} taken from the body text")

    ident.statistics_year = read_statistics_year(body)
    if ident.title_year is not None:
        ident.year, ident.year_source = ident.title_year, "title"
    elif ident.statistics_year is not None:
        ident.year, ident.year_source = ident.statistics_year, "statistics"
    else:
        narrative = _narrative_year(body)
        if narrative is not None:
            ident.year, ident.year_source = narrative, "body"
            ident.notes.append(f"year {narrative} inferred from the years the text mentions")

    published = _meta(doc, DATE_META_KEYS)
    ident.published_on = parse_date(published) if published else None
    if ident.published_on is None:
        for line in paragraphs[:TITLE_SEARCH_PARAGRAPHS]:
            m = _PUBLISHED_LINE.search(unicodedata.normalize("NFKC", line[: MAX_TITLE_LENGTH * 2]))
            if m:
                ident.published_on = parse_date(m.group(1))
                break
    if ident.published_on is None and sig_date:
        ident.published_on = sig_date

    ident.site_id_code = _meta(doc, SITE_ID_META_KEYS)
    if ident.site_id_code is None:
        m = _SITE_ID.search(body)
        ident.site_id_code = m.group(1) if m else None
    ident.site_name = _meta(doc, SITE_NAME_META_KEYS)
    return ident
