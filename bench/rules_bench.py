"""How fast the rule engine is, next to the parser: findings per second over the seeds and corpus.

Each report is parsed (timed, best of ``--parse-repeat``), then checked
``--repeat`` times (timed, best of 5 batches). Checking must cost well under a
tenth of parsing: the exit status is 1 when all checks together take a tenth
of all parses or more. Per-report ratios are printed too; on a loaded machine
a single report's best parse time can swing 2-3×, so judge those by the median.

    .venv/bin/python bench/rules_bench.py [--repeat 200] [--kit /work/shared]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date
from pathlib import Path

from shared.parse import read_report
from shared.record import Report
from shared.rules import check_report

SUFFIXES = {".txt", ".html", ".htm", ".pdf", ".docx", ".doc"}


def inputs(kit: Path) -> list[Path]:
    seeds = sorted(p for p in (kit / "seeds").iterdir() if p.suffix in SUFFIXES)
    corpus = sorted(p for p in (kit / "corpus" / "raw").iterdir() if p.suffix in SUFFIXES)
    return seeds + corpus


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kit", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--repeat", type=int, default=200, help="checks per report per batch")
    ap.add_argument("--parse-repeat", type=int, default=5)
    args = ap.parse_args(argv)

    today = date(2026, 6, 1)
    rows: list[tuple[str, float, float, int]] = []
    for path in inputs(args.kit):
        data = path.read_bytes()
        parse_s = best_of(lambda data=data, path=path: read_report(data, path=str(path)), args.parse_repeat)
        report = read_report(data, path=str(path))
        findings = len(check_report(report, today=today))

        def batch(report: Report = report) -> None:
            for _ in range(args.repeat):
                check_report(report, today=today)

        check_s = best_of(batch, 5) / args.repeat
        rows.append((path.name, parse_s, check_s, findings))

    print(f"{'report':42} {'parse ms':>9} {'check ms':>9} {'check/parse':>11} {'findings':>8}")
    for name, parse_s, check_s, findings in rows:
        print(f"{name:42} {parse_s * 1e3:9.2f} {check_s * 1e3:9.3f} {check_s / parse_s:11.2%} {findings:8d}")
    total_findings = sum(r[3] for r in rows)
    check_total = sum(r[2] for r in rows)
    parse_total = sum(r[1] for r in rows)
    ratios = [r[2] / r[1] for r in rows]
    print(
        f"\n{len(rows)} reports: parse {parse_total / len(rows) * 1e3:.2f} ms/report, "
        f"check {check_total / len(rows) * 1e3:.3f} ms/report "
        f"({len(rows) / check_total:,.0f} reports/s, {total_findings / check_total:,.0f} findings/s; "
        f"{total_findings} findings); check/parse overall {check_total / parse_total:.2%}, "
        f"median {statistics.median(ratios):.2%}, max {max(ratios):.2%}"
    )
    return 0 if check_total / parse_total < 0.1 else 1


if __name__ == "__main__":
    sys.exit(main())
