"""A cell of hundreds or thousands of digits is damage, not a value: unreadable, never a crash.

400 nines used to overflow ``float()`` in the rules' messages (``xxgk check``), 5,000 digits
exceeded Python's int→str limit when the record was printed (``xxgk parse --json``).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from shared.parse import read_report
from shared.parse.numbers import MAX_INTEGER_DIGITS, read_cell
from shared.rules import check_report
from shared.rules.cross import check_carry_over
from shared.rules.labels import count
from shared.rules.thresholds import DEFAULT_THRESHOLDS
from tests.unit.rule_cases import busy_report
from worker.cli import main

TITLE = "某某县财政局2021年政府信息公开工作年度报告"
NEW = "applications.new_received.total"


def _html(total: str) -> bytes:
    return f"""<html><head><meta charset="utf-8"><title>{TITLE}</title></head><body>
<h1>{TITLE}</h1><p>三、收到和处理政府信息公开申请情况</p><table>
<tr><td colspan="3">一、本年新收政府信息公开申请数量</td><td>{total}</td></tr>
<tr><td colspan="3">二、上年结转政府信息公开申请数量</td><td>0</td></tr>
</table></body></html>""".encode()


def _tab_text(total: str) -> bytes:
    zeros = "\t".join(["0"] * 6)
    return (
        f"{TITLE}\n三、收到和处理政府信息公开申请情况\n"
        f"一、本年新收政府信息公开申请数量\t{zeros}\t{total}\n"
        f"二、上年结转政府信息公开申请数量\t{zeros}\t0\n"
    ).encode()


CARRIERS = {"html": (_html, "report.html"), "tabs": (_tab_text, "report.txt")}


def test_read_cell_bounds_the_integer_digits() -> None:
    assert read_cell("9" * MAX_INTEGER_DIGITS).value == int("9" * MAX_INTEGER_DIGITS)
    assert read_cell("0001" + "0" * (MAX_INTEGER_DIGITS - 1)).value == 10 ** (MAX_INTEGER_DIGITS - 1)
    for text in ("9" * (MAX_INTEGER_DIGITS + 1), "9" * 400, "9" * 5000 + ".5", "1" + ",000" * 5 + "元"):
        reading = read_cell(text, amount=True)
        assert reading.value is None and not reading.blank
        assert reading.problem is not None and "digits" in reading.problem
        assert len(reading.problem) < 200  # quotes the start of the text, not all of it


@pytest.mark.parametrize("carrier", sorted(CARRIERS))
@pytest.mark.parametrize("digits", [13, 400, 5000])
def test_absurd_cell_is_unreadable_and_checked_without_crash(carrier: str, digits: int) -> None:
    build, name = CARRIERS[carrier]
    report = read_report(build("9" * digits), path=name)
    assert report.cell(NEW) is None
    assert "digits" in report.confidence.uncertain_cells[NEW]
    report.findings = check_report(report, today=date(2022, 6, 1))
    record = json.loads(report.to_json())
    assert record["applications"]["new_received"]["total"] is None


@pytest.mark.parametrize("carrier", sorted(CARRIERS))
def test_cli_check_and_parse_json_survive(tmp_path: Path, carrier: str) -> None:
    build, name = CARRIERS[carrier]
    path = tmp_path / name
    path.write_bytes(build("9" * 5000))
    for args in (["check", str(path)], ["parse", "--json", str(path)]):
        result = CliRunner().invoke(main, args)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert result.exit_code in (0, 1)


def test_count_never_raises() -> None:
    assert count(3) == "3" and count(2.5) == "2.5" and count(4.0) == "4"
    assert count(10**400) == "1" + "0" * 400  # too big for float(), printed exactly
    assert count(10**5000) == "约1e5000"  # too big for str(): its magnitude
    assert count(float("inf")) == "inf"


def test_carry_over_with_a_huge_stored_value_does_not_overflow() -> None:
    current, previous = busy_report(year=2022), busy_report(year=2021)
    previous.applications["carried_forward"]["natural_person"] = 10**400
    (finding,) = check_carry_over(current, previous, DEFAULT_THRESHOLDS)
    assert finding.rule == "carry_over_mismatch"


def test_a_huge_stated_count_in_the_narrative_is_not_a_count() -> None:
    report = busy_report()
    report.evidence.narrative = f"本年度共收到{'9' * 5000}件政府信息公开申请，办结{'9' * 5000}件。"
    findings = check_report(report, today=date(2022, 6, 1))
    assert "text_table_mismatch" not in {f.rule for f in findings}
