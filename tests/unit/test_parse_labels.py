"""Label normalisation and matching: width, wrapping, numbering, typos."""

from __future__ import annotations

import pytest

from shared.parse.labels import LabelIndex, core_label, normalise_label
from shared.templates import TEMPLATES


@pytest.mark.parametrize(
    ("printed", "normalised"),
    [
        ("第二十条第（一）项", "第二十条第(一)项"),
        ("本年新\n制作数量", "本年新制作数量"),
        ("商业 企业", "商业企业"),
        ("1、属于国家秘密", "1.属于国家秘密"),
        ("3.危及“三安全一稳定”", "3.危及三安全一稳定"),
        ("（七）　总计", "(七)总计"),
    ],
)
def test_normalise_label(printed: str, normalised: str) -> None:
    assert normalise_label(printed) == normalised


def test_core_label_drops_numbering_and_punctuation() -> None:
    assert core_label("三、（一）予以公开") == "予以公开"
    assert core_label("（二）部分公开（区分处理的），只计这一情形，不计其他情形") == core_label(
        "（二）部分公开（区分处理的，只计这一情形，不计其他情形）"
    )


@pytest.fixture(scope="module")
def rows() -> LabelIndex:
    layout = TEMPLATES["2021"]
    return LabelIndex((r.key, r.official, r.variants) for r in layout.application_rows)


def test_exact_match_ignores_width_and_numbering(rows: LabelIndex) -> None:
    match = rows.match("（一）予以公开")
    assert match is not None
    assert (match.key, match.kind) == ("granted", "exact")
    assert rows.match("1、属于国家秘密").key == "denied_state_secret"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("printed", "key"),
    [
        ("4.无正当理由由大量反复申请", "rejected_mass_repeat"),  # typo (doubled 由)
        ("1.信访举报类申请", "rejected_complaint"),  # missing word
        ("5.属于第三类内部事务信息", "denied_internal_affairs"),
    ],
)
def test_known_variants_match_as_variants(rows: LabelIndex, printed: str, key: str) -> None:
    match = rows.match(printed)
    assert match is not None
    assert (match.key, match.kind) == (key, "variant")
    assert match.deviates


def test_unknown_typo_matches_fuzzily(rows: LabelIndex) -> None:
    match = rows.match("2.没有现成信息需另行制作")  # 要 dropped: not a listed variant
    assert match is not None
    assert match.key == "unavailable_needs_creation"
    assert match.kind == "fuzzy"
    assert match.score < 1


def test_label_with_an_annotation_matches_by_prefix(rows: LabelIndex) -> None:
    match = rows.match("一、本年新收政府信息公开申请数量（件）")
    assert match is not None
    assert (match.key, match.kind) == ("new_received", "prefix")


def test_short_labels_never_match_fuzzily(rows: LabelIndex) -> None:
    assert rows.match("其他处理") is None  # a 2021 group, not the row 3.其他
    assert rows.match("其它") is None


def test_unrelated_text_does_not_match(rows: LabelIndex) -> None:
    assert rows.match("本机关认真贯彻落实条例") is None
    assert rows.match("") is None


def test_only_restricts_candidates(rows: LabelIndex) -> None:
    assert rows.match("1.属于国家秘密", only=frozenset({"granted"})) is None
