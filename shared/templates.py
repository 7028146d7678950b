"""The two official table layouts as data (国办公开办函〔2019〕60号 and 〔2021〕30号).

Every row and column carries its record key, the official label and the label
variants seen in the wild. Matching code (``shared.parse``) normalises labels
with :func:`shared.parse.labels.normalise_label` before comparing, so variants
here only need to cover wording, not width of brackets or whitespace.

Adding a variant seen in a real report is one string in a ``variants`` tuple
plus a test snippet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

TemplateId = Literal["2019", "2021"]
TEMPLATE_IDS: tuple[TemplateId, ...] = ("2019", "2021")


@dataclass(frozen=True, slots=True)
class Label:
    key: str
    official: str
    variants: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return (self.official, *self.variants)


@dataclass(frozen=True, slots=True)
class DisclosureItem:
    """One row of section 二: e.g. 规章 with its fields in column order."""

    key: str
    label: Label
    caption: str  # the 第二十条第（X）项 caption of its sub-table
    fields: tuple[Label, ...]
    # fields whose value is an amount in 万元 (may be decimal, may arrive in 元)
    amount_fields: tuple[str, ...] = ()
    # fields that may be negative (本年增/减)
    signed_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Template:
    id: TemplateId
    name: str
    disclosure: tuple[DisclosureItem, ...]
    application_rows: tuple[Label, ...]
    application_columns: tuple[Label, ...]
    review_groups: tuple[Label, ...]
    review_outcomes: tuple[Label, ...]
    # labels that occur only in this layout: they decide the format, not the year
    markers: tuple[str, ...] = field(default=())

    @property
    def outcome_rows(self) -> tuple[str, ...]:
        """Rows whose sum must equal (七)总计: everything between 上年结转 and 总计."""
        keys = [r.key for r in self.application_rows]
        return tuple(keys[keys.index("granted") : keys.index("total")])

    def cell_count(self) -> tuple[int, int, int]:
        return (
            sum(len(i.fields) for i in self.disclosure),
            len(self.application_rows) * len(self.application_columns),
            len(self.review_groups) * len(self.review_outcomes),
        )

    def disclosure_item(self, key: str) -> DisclosureItem:
        return next(i for i in self.disclosure if i.key == key)


# ---------------------------------------------------------------- section 三 (shared frame)

APPLICATION_COLUMNS: tuple[Label, ...] = (
    Label("natural_person", "自然人"),
    Label("commercial", "商业企业"),
    Label("research", "科研机构"),
    Label("social_welfare", "社会公益组织"),
    Label("legal_service", "法律服务机构"),
    Label("other_org", "其他"),
    Label("total", "总计", ("合计",)),
)

_ROWS_HEAD: tuple[Label, ...] = (
    Label(
        "new_received",
        "一、本年新收政府信息公开申请数量",
        ("本年新收政府信息公开申请数量", "本年新收申请数量"),
    ),
    Label(
        "carried_over",
        "二、上年结转政府信息公开申请数量",
        ("上年结转政府信息公开申请数量", "上年结转申请数量"),
    ),
    Label("granted", "（一）予以公开", ("予以公开",)),
    Label(
        "partially_granted",
        "（二）部分公开（区分处理的，只计这一情形，不计其他情形）",
        ("部分公开", "（二）部分公开"),
    ),
    Label("denied_state_secret", "1.属于国家秘密", ("属于国家秘密",)),
    Label("denied_law_prohibited", "2.其他法律行政法规禁止公开", ("其他法律行政法规禁止公开",)),
    Label("denied_three_safety", "3.危及“三安全一稳定”", ("危及三安全一稳定", "危及“三安全一稳定”")),
    Label("denied_third_party", "4.保护第三方合法权益", ("保护第三方合法权益",)),
    Label(
        "denied_internal_affairs",
        "5.属于三类内部事务信息",
        ("属于三类内部事务信息", "属于第三类内部事务信息"),
    ),
    Label("denied_process_info", "6.属于四类过程性信息", ("属于四类过程性信息", "属于第四类过程性信息")),
    Label("denied_enforcement_file", "7.属于行政执法案卷", ("属于行政执法案卷",)),
    Label("denied_query_matter", "8.属于行政查询事项", ("属于行政查询事项",)),
    Label("unavailable_not_held", "1.本机关不掌握相关政府信息", ("本机关不掌握相关政府信息",)),
    Label("unavailable_needs_creation", "2.没有现成信息需要另行制作", ("没有现成信息需要另行制作",)),
    Label("unavailable_unclear", "3.补正后申请内容仍不明确", ("补正后申请内容仍不明确",)),
    Label(
        "rejected_complaint",
        "1.信访举报投诉类申请",
        ("信访举报投诉类申请", "信访举报类申请", "信访投诉举报类申请"),
    ),
    Label("rejected_duplicate", "2.重复申请", ("重复申请",)),
    Label("rejected_publication", "3.要求提供公开出版物", ("要求提供公开出版物",)),
    Label(
        "rejected_mass_repeat",
        "4.无正当理由大量反复申请",
        ("无正当理由大量反复申请", "无正当理由由大量反复申请"),
    ),
    Label(
        "rejected_confirmation",
        "5.要求行政机关确认或重新出具已获取信息",
        ("要求行政机关确认或重新出具已获取信息",),
    ),
)

_ROWS_TAIL: tuple[Label, ...] = (
    Label("total", "（七）总计", ("总计",)),
    Label("carried_forward", "四、结转下年度继续办理", ("结转下年度继续办理",)),
)

APPLICATION_ROWS_2019: tuple[Label, ...] = (
    *_ROWS_HEAD,
    Label("other_handling", "（六）其他处理", ("其他处理",)),
    *_ROWS_TAIL,
)

APPLICATION_ROWS_2021: tuple[Label, ...] = (
    *_ROWS_HEAD,
    Label(
        "other_no_correction",
        "1.申请人无正当理由逾期不补正、行政机关不再处理其政府信息公开申请",
        ("申请人无正当理由逾期不补正、行政机关不再处理其政府信息公开申请", "申请人无正当理由逾期不补正"),
    ),
    Label(
        "other_no_fee",
        "2.申请人逾期未按收费通知要求缴纳费用、行政机关不再处理其政府信息公开申请",
        (
            "申请人逾期未按收费通知要求缴纳费用、行政机关不再处理其政府信息公开申请",
            "申请人逾期未按收费通知要求缴纳费用",
        ),
    ),
    Label("other_misc", "3.其他", ("其他",)),
    *_ROWS_TAIL,
)

# ---------------------------------------------------------------- section 四 (same in both)

REVIEW_GROUPS: tuple[Label, ...] = (
    Label("review", "行政复议"),
    Label("litigation_direct", "未经复议直接起诉", ("行政诉讼未经复议直接起诉",)),
    Label("litigation_after_review", "复议后起诉", ("行政诉讼复议后起诉",)),
)

REVIEW_OUTCOMES: tuple[Label, ...] = (
    Label("upheld", "结果维持"),
    Label("corrected", "结果纠正"),
    Label("other", "其他结果"),
    Label("pending", "尚未审结"),
    Label("total", "总计", ("合计",)),
)

# ---------------------------------------------------------------- section 二

_C1, _C5, _C6, _C8, _C9 = (
    "第二十条第（一）项",
    "第二十条第（五）项",
    "第二十条第（六）项",
    "第二十条第（八）项",
    "第二十条第（九）项",
)

_OLD_COUNTS = (
    Label("new_made", "本年新制作数量"),
    Label("new_published", "本年新公开数量"),
    Label("total_published", "对外公开总数量"),
)
_OLD_ITEMS = (
    Label("previous_items", "上一年项目数量"),
    Label("change", "本年增/减", ("本年增减", "本年增（减）")),
    Label("decisions", "处理决定数量"),
)

DISCLOSURE_2019: tuple[DisclosureItem, ...] = (
    DisclosureItem("regulations", Label("regulations", "规章"), _C1, _OLD_COUNTS),
    DisclosureItem(
        "normative_documents",
        Label("normative_documents", "规范性文件", ("行政规范性文件",)),
        _C1,
        _OLD_COUNTS,
    ),
    DisclosureItem("licensing", Label("licensing", "行政许可"), _C5, _OLD_ITEMS, signed_fields=("change",)),
    DisclosureItem(
        "other_services",
        Label("other_services", "其他对外管理服务事项"),
        _C5,
        _OLD_ITEMS,
        signed_fields=("change",),
    ),
    DisclosureItem("punishment", Label("punishment", "行政处罚"), _C6, _OLD_ITEMS, signed_fields=("change",)),
    DisclosureItem("coercion", Label("coercion", "行政强制"), _C6, _OLD_ITEMS, signed_fields=("change",)),
    DisclosureItem(
        "fees",
        Label("fees", "行政事业性收费"),
        _C8,
        _OLD_ITEMS[:2],
        signed_fields=("change",),
    ),
    DisclosureItem(
        "procurement",
        Label("procurement", "政府集中采购"),
        _C9,
        (Label("projects", "采购项目数量"), Label("amount_wan_yuan", "采购总金额")),
        amount_fields=("amount_wan_yuan",),
    ),
)

_NEW_COUNTS = (
    Label("made", "本年制发件数"),
    Label("repealed", "本年废止件数"),
    Label("in_force", "现行有效件数"),
)
_NEW_DECISIONS = (Label("decisions", "本年处理决定数量", ("处理决定数量",)),)

DISCLOSURE_2021: tuple[DisclosureItem, ...] = (
    DisclosureItem("regulations", Label("regulations", "规章"), _C1, _NEW_COUNTS),
    DisclosureItem(
        "normative_documents",
        Label("normative_documents", "行政规范性文件", ("规范性文件",)),
        _C1,
        _NEW_COUNTS,
    ),
    DisclosureItem("licensing", Label("licensing", "行政许可"), _C5, _NEW_DECISIONS),
    DisclosureItem("punishment", Label("punishment", "行政处罚"), _C6, _NEW_DECISIONS),
    DisclosureItem("coercion", Label("coercion", "行政强制"), _C6, _NEW_DECISIONS),
    DisclosureItem(
        "fees",
        Label("fees", "行政事业性收费"),
        _C8,
        (Label("amount_wan_yuan", "本年收费金额", ("收费金额",)),),
        amount_fields=("amount_wan_yuan",),
    ),
)

TEMPLATES: dict[TemplateId, Template] = {
    "2019": Template(
        id="2019",
        name="国办公开办函〔2019〕60号",
        disclosure=DISCLOSURE_2019,
        application_rows=APPLICATION_ROWS_2019,
        application_columns=APPLICATION_COLUMNS,
        review_groups=REVIEW_GROUPS,
        review_outcomes=REVIEW_OUTCOMES,
        markers=(
            "本年新制作数量",
            "本年新公开数量",
            "对外公开总数量",
            "上一年项目数量",
            "其他对外管理服务事项",
            "政府集中采购",
            "采购项目数量",
            "第二十条第（九）项",
        ),
    ),
    "2021": Template(
        id="2021",
        name="国办公开办函〔2021〕30号",
        disclosure=DISCLOSURE_2021,
        application_rows=APPLICATION_ROWS_2021,
        application_columns=APPLICATION_COLUMNS,
        review_groups=REVIEW_GROUPS,
        review_outcomes=REVIEW_OUTCOMES,
        markers=(
            "本年制发件数",
            "本年废止件数",
            "现行有效件数",
            "本年处理决定数量",
            "本年收费金额",
            "申请人无正当理由逾期不补正",
            "申请人逾期未按收费通知要求缴纳费用",
        ),
    ),
}

# Official section headings, in order (both formats). Section numbers are the record's 一..六.
SECTION_HEADINGS: tuple[Label, ...] = (
    Label("overview", "一、总体情况"),
    Label("active_disclosure", "二、主动公开政府信息情况"),
    Label("applications", "三、收到和处理政府信息公开申请情况"),
    Label(
        "reviews",
        "四、政府信息公开行政复议、行政诉讼情况",
        ("四、因政府信息公开申请行政复议、提起行政诉讼的情况",),
    ),
    Label("problems", "五、存在的主要问题及改进情况", ("五、政府信息公开工作存在的主要问题及改进情况",)),
    Label("other", "六、其他需要报告的事项"),
)

# Official captions of the section 二 sub-tables; anything else that looks like one
# (e.g. 第二十六条第（六）项) is a template deviation.
OFFICIAL_CAPTIONS: frozenset[str] = frozenset({_C1, _C5, _C6, _C8, _C9})


def template(template_id: TemplateId) -> Template:
    return TEMPLATES[template_id]
