"""``xxgk parse``, ``xxgk check`` and ``xxgk rules``: local files, no services."""


# so every other `xxgk` command (and `--help`) starts without them

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import click

from shared.errors import LimitExceeded, UnreadableInput, XxgkError
from shared.extract import ExtractLimits
from shared.record import Report
from shared.settings import get_settings
from worker.cli import main

EXIT_OK, EXIT_FINDINGS, EXIT_UNREADABLE = 0, 1, 2


def _read(path: Path) -> Report:
    settings = get_settings()
    limits = ExtractLimits.from_settings(settings)
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise LimitExceeded(
                f"file is {size} bytes, over the {limits.max_bytes}-byte cap", source=str(path)
            )
        # read at most one byte past the cap: a device or a file growing under us (/dev/zero,
        # a log) reports a small st_size and would otherwise be read without end
        with path.open("rb") as handle:
            data = handle.read(limits.max_bytes + 1)
    except OSError as exc:
        # missing path, permission denied, EIO on /proc/self/mem: this input is lost, the others are not
        raise UnreadableInput(exc.strerror or str(exc), source=str(path)) from None
    if len(data) > limits.max_bytes:
        raise LimitExceeded(f"file is over the {limits.max_bytes}-byte cap", source=str(path))
    from worker.sandbox import read_report_sandboxed

    return read_report_sandboxed(data, path=str(path), limits=limits)


def _failure_line(path: Path, exc: XxgkError) -> str:
    """``xxgk: <path>: <code>: <message>`` and the sha256 when the bytes were read."""
    digest = f" (sha256 {exc.sha256})" if exc.sha256 else ""
    return f"xxgk: {path}: {exc.code}: {exc.message}{digest}"


def _failure_json(path: Path, exc: XxgkError) -> str:
    """The ``--json`` line standing in for a record, so output lines match inputs one to one."""
    failure = {
        "source": {"path": str(path), "sha256": exc.sha256},
        "error": {"error": exc.code, "message": exc.message},
    }
    return json.dumps(failure, ensure_ascii=False)


def _summary(report: Report) -> str:
    conf = report.confidence
    head = (
        f"{report.source.path}: {report.agency or '?'} {report.year or '?'} "
        f"template={report.template or '?'} published_on={report.published_on or '?'}"
        f" confidence={conf.score:.2f}"
    )
    lines = [head]
    filled = sum(1 for _, v in report.iter_cells() if v is not None)
    total = sum(1 for _ in report.iter_cells())
    lines.append(f"  cells: {filled}/{total} filled")
    for reason in conf.reasons:
        lines.append(f"  note: {reason}")
    for f in report.findings or []:
        cells = f" [{', '.join(f.cells[:4])}{'…' if len(f.cells) > 4 else ''}]" if f.cells else ""
        lines.append(f"  {f.severity:7} {f.rule}: {f.message}{cells}")
    return "\n".join(lines)


def _run(paths: tuple[Path, ...], as_json: bool, with_rules: bool) -> int:
    worst = EXIT_OK
    for path in paths:
        try:
            report = _read(path)
        except XxgkError as exc:
            exc.with_source(str(path), None)
            click.echo(_failure_line(path, exc), err=True)
            if as_json:
                click.echo(_failure_json(path, exc))
            worst = EXIT_UNREADABLE
            continue
        if with_rules:
            from shared.rules import DEFAULT_THRESHOLDS, CheckContext, check_report

            thresholds = DEFAULT_THRESHOLDS.with_township_deadline(get_settings().township_deadline_mmdd)
            context = CheckContext(today=date.today(), thresholds=thresholds)
            report.findings = check_report(report, context=context)
            if any(f.severity == "error" for f in report.findings) and worst == EXIT_OK:
                worst = EXIT_FINDINGS
        if as_json:
            click.echo(report.to_json())
        else:
            click.echo(_summary(report))
    return worst


_paths = click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="one canonical JSON record per input, one per line")
@_paths
def parse(as_json: bool, paths: tuple[Path, ...]) -> None:
    """Extract the canonical record from local files (any carrier)."""
    sys.exit(_run(paths, as_json, with_rules=False))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="one canonical JSON record (with findings) per line")
@_paths
def check(as_json: bool, paths: tuple[Path, ...]) -> None:
    """Parse and run the single-report rules. Exit 1 on an error-level finding, 2 on unreadable input."""
    sys.exit(_run(paths, as_json, with_rules=True))


@main.command()
@click.option("--json", "as_json", is_flag=True)
def rules(as_json: bool) -> None:
    """The rule table: id, severity, one-line description."""
    from shared.rules import RULES

    if as_json:
        click.echo(json.dumps([r.describe() for r in RULES], ensure_ascii=False))
        return
    for r in RULES:
        click.echo(f"{r.id:22} {r.severity:8} {r.scope:7} {r.title}")
