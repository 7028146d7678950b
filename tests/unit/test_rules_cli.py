"""``xxgk rules`` prints the table; ``xxgk check`` exits 1 on an error finding, 0 otherwise, 2 unreadable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from shared.errors import CorruptDocument
from shared.record import Report
from shared.rules import RULES
from tests.unit.rule_cases import busy_report
from worker.cli import documents, main


def test_rules_lists_the_whole_table() -> None:
    result = CliRunner().invoke(main, ["rules"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == [r.id for r in RULES]
    assert "t3_identity" in lines[0] and "error" in lines[0]


def test_rules_json_describes_each_rule() -> None:
    result = CliRunner().invoke(main, ["rules", "--json"])
    described = json.loads(result.output)
    assert [d["id"] for d in described] == [r.id for r in RULES]
    assert {d["scope"] for d in described} == {"report", "store"}


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch) -> dict[str, Report | Exception]:
    """File name → the record ``_read`` returns for it (or the error it raises)."""
    table: dict[str, Report | Exception] = {}

    def fake_read(path: Path) -> Report:
        found = table[path.name]
        if isinstance(found, Exception):
            raise found
        return found.model_copy(deep=True)

    monkeypatch.setattr(documents, "_read", fake_read)
    return table


def _faulty() -> Report:
    report = busy_report()
    report.applications["total"]["total"] = 99
    return report


def _check(tmp_path: Path, *names: str, json_out: bool = True):
    paths = []
    for name in names:
        (tmp_path / name).write_bytes(b"x")
        paths.append(str(tmp_path / name))
    return CliRunner().invoke(main, ["check", *(["--json"] if json_out else []), *paths])


def test_check_exit_codes(tmp_path: Path, reports: dict) -> None:
    reports["clean.txt"] = busy_report()
    reports["faulty.txt"] = _faulty()
    reports["warned.txt"] = busy_report(agency="某某县财政局", year=2021, published_on="2022-03-01")
    reports["broken.pdf"] = CorruptDocument("not a PDF")

    assert _check(tmp_path, "clean.txt").exit_code == 0
    assert _check(tmp_path, "warned.txt").exit_code == 0
    faulty = _check(tmp_path, "faulty.txt")
    assert faulty.exit_code == 1
    out = json.loads(faulty.output.splitlines()[0])
    assert {f["rule"] for f in out["findings"]} >= {"t3_row_sum", "t3_identity", "t3_result_sum"}
    assert _check(tmp_path, "broken.pdf").exit_code == 2
    assert _check(tmp_path, "faulty.txt", "broken.pdf").exit_code == 2


def test_check_prints_findings_for_people(tmp_path: Path, reports: dict) -> None:
    reports["faulty.txt"] = _faulty()
    result = _check(tmp_path, "faulty.txt", json_out=False)
    assert result.exit_code == 1
    assert "t3_row_sum" in result.output and "（七）总计行" in result.output


def test_check_exits_2_for_a_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", str(tmp_path / "absent.txt")])
    assert result.exit_code == 2
