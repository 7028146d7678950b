"""Reading one cell: blanks stay blank, zeros are zero, units and widths are honoured."""

from __future__ import annotations

import pytest

from shared.parse.numbers import looks_like_value, read_cell, read_number


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("12", 12),
        ("１２３", 123),  # full-width digits
        ("1 234", 1234),  # a space inside the number
        ("\u30000", 0),  # a full-width space before it
        ("\u00a07 ", 7),  # NBSP
        ("1,234", 1234),
        ("0.0", 0),
        ("无", 0),  # a printed zero
        ("12件", 12),  # a count word after the number
        ("-3", -3),  # 本年增/减 may be negative
        ("－3", -3),  # full-width minus
        ("[bookmark: _GoBack]5", 5),  # Word debris
    ],
)
def test_reads_counts(text: str, value: int) -> None:
    got, unit = read_number(text)
    assert got == value
    assert isinstance(got, int)
    assert unit is None


@pytest.mark.parametrize("text", ["", "  ", "/", "-", "—", "——", "－", "\u3000", "--"])
def test_blank_marks_are_blank_not_zero(text: str) -> None:
    reading = read_cell(text)
    assert reading.value is None
    assert reading.blank
    assert reading.problem is None


def test_amount_in_wan_yuan_is_kept() -> None:
    assert read_number("570.6387万元", amount=True) == (570.6387, "万元")


def test_amount_in_yuan_becomes_wan_yuan() -> None:
    assert read_number("251000元", amount=True) == (25.1, "元")


def test_bare_amount_under_a_yuan_header_is_converted() -> None:
    assert read_cell("50000", amount=True, default_unit="元").value == 5


def test_bare_amount_under_a_wan_yuan_header_is_kept() -> None:
    assert read_cell("24252.311082", amount=True, default_unit="万元").value == 24252.311082


def test_yuan_in_a_count_cell_is_a_problem() -> None:
    reading = read_cell("251000元")
    assert reading.value is None
    assert reading.problem and "元" in reading.problem


@pytest.mark.parametrize("text", ["约10", "十二", "见附件", "1/2"])
def test_unreadable_text_is_none_with_a_note(text: str) -> None:
    reading = read_cell(text)
    assert reading.value is None
    assert not reading.blank
    assert reading.problem


@pytest.mark.parametrize(
    ("text", "is_value"),
    [
        ("0", True),
        ("", True),
        ("—", True),
        ("无", True),
        ("570.6387万元", True),
        ("规章", False),
        ("1.属于国家秘密", False),
        ("（七）总计", False),
        ("3.其他", False),
    ],
)
def test_values_are_told_from_labels(text: str, is_value: bool) -> None:
    assert looks_like_value(text) is is_value
