"""``xxgk parse`` / ``xxgk check`` on real files: an input that cannot be read costs that input only.

Each failed input gives one ``xxgk: <path>: <reason>`` line on stderr (no traceback), one JSON
error line with ``--json`` (so output lines match inputs one to one), and exit 2 at the end.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from worker.cli import main

# a small real report page: the title, section 三's heading and two rows of its table
REPORT_HTML = """<html><head><meta charset="utf-8">
<title>某某县财政局2021年政府信息公开工作年度报告</title></head><body>
<h1>某某县财政局2021年政府信息公开工作年度报告</h1>
<p>三、收到和处理政府信息公开申请情况</p>
<table>
<tr><td colspan="3">一、本年新收政府信息公开申请数量</td><td>5</td></tr>
<tr><td colspan="3">二、上年结转政府信息公开申请数量</td><td>0</td></tr>
</table></body></html>
"""


@pytest.fixture
def good(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "first.html", tmp_path / "second.html"
    first.write_text(REPORT_HTML, encoding="utf-8")
    second.write_text(REPORT_HTML.replace("财政局", "教育局"), encoding="utf-8")
    return first, second


def _invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _no_traceback(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["parse", "check"])
def test_a_missing_path_between_two_good_ones(tmp_path: Path, good: tuple[Path, Path], command: str) -> None:
    first, second = good
    missing = tmp_path / "absent.html"
    result = _invoke(command, first, missing, second)
    _no_traceback(result)
    assert result.exit_code == 2
    # both good inputs were still read and printed, in order
    assert str(first) in result.stdout and str(second) in result.stdout
    assert result.stdout.index(str(first)) < result.stdout.index(str(second))
    assert result.stderr.splitlines() == [f"xxgk: {missing}: unreadable_input: No such file or directory"]


def test_json_lines_match_inputs_one_to_one(tmp_path: Path, good: tuple[Path, Path]) -> None:
    first, second = good
    missing = tmp_path / "absent.html"
    result = _invoke("parse", "--json", first, missing, second)
    _no_traceback(result)
    assert result.exit_code == 2
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3
    assert lines[0]["source"]["path"] == str(first) and lines[0]["agency"] == "某某县财政局"
    assert lines[1] == {
        "source": {"path": str(missing), "sha256": None},
        "error": {"error": "unreadable_input", "message": "No such file or directory"},
    }
    assert lines[2]["source"]["path"] == str(second) and lines[2]["agency"] == "某某县教育局"


def test_an_input_that_is_not_a_report_carries_its_sha256(tmp_path: Path, good: tuple[Path, Path]) -> None:
    first, _ = good
    prose = tmp_path / "prose.txt"
    prose.write_bytes(b"hello world\n")
    digest = hashlib.sha256(b"hello world\n").hexdigest()
    result = _invoke("check", "--json", prose, first)
    _no_traceback(result)
    assert result.exit_code == 2
    failure = json.loads(result.stdout.splitlines()[0])
    assert failure["source"] == {"path": str(prose), "sha256": digest}
    assert failure["error"]["error"] == "not_a_report"
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"xxgk: {prose}: not_a_report: ") and line.endswith(f"(sha256 {digest})")
    assert "findings" in json.loads(result.stdout.splitlines()[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/mem is Linux's")
def test_proc_self_mem_is_an_io_error_not_a_traceback(good: tuple[Path, Path]) -> None:
    first, _ = good
    result = _invoke("parse", "/proc/self/mem", first)
    _no_traceback(result)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["xxgk: /proc/self/mem: unreadable_input: Input/output error"]
    assert str(first) in result.stdout


def test_permission_denied(monkeypatch: pytest.MonkeyPatch, good: tuple[Path, Path]) -> None:
    first, second = good
    real_open = Path.open

    # chmod 000 does not stop root (tests may run as root): refuse the open itself
    def refusing_open(self: Path, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if self == first:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", refusing_open)
    result = _invoke("parse", "--json", first, second)
    _no_traceback(result)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"xxgk: {first}: unreadable_input: Permission denied"]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["error"]["error"] == "unreadable_input" and lines[1]["source"]["path"] == str(second)


def test_all_good_inputs_exit_0(good: tuple[Path, Path]) -> None:
    result = _invoke("parse", *good)
    assert result.exit_code == 0 and result.stderr == ""
