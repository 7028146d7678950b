"""Parser throughput per carrier, next to a read-decode-scan baseline.

    .venv/bin/python bench/parse_bench.py [--repeat 20] [--kit /work/shared]

For each carrier (text, HTML) it takes every input of that kind in the reference
kit (seeds, their HTML renderings, the corpus), and in one process, N times over:

- **parse**: read the file, then ``shared.parse.read_report`` (sniff, decode,
  extract blocks, parse into the canonical record) — what ``xxgk parse`` does per
  file, without process start-up;
- **baseline**: read the same file, decode it (UTF-8, else GB18030) and run a
  handful of regular expressions over the text (title, digit runs, headings):
  the floor any parser pays.

Prints reports per second for both and their ratio, counted against the CPU time
of this process (what "on one core" means; other load on the machine does not
count) and, in brackets, against the wall clock. The target is ≥ 300 reports/s
per carrier on one core. This is a measuring tool, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.errors import XxgkError  # noqa: E402
from shared.parse import read_report  # noqa: E402

DEFAULT_KIT = ROOT.parent / "shared"
TARGET_PER_S = 300
CARRIERS: dict[str, tuple[str, ...]] = {"text": (".txt", ".md"), "html": (".html", ".htm")}
_SCANS = (
    re.compile(r"(?:19|20)\d{2}\s*年[^。\n]{0,40}?政府信息公开工作年度报告"),
    re.compile(r"\d+"),
    re.compile(r"[一二三四五六]、[^\n。]{2,30}"),
    re.compile(r"第二十条第[（(][一二三四五六七八九][)）]项"),
    re.compile(r"<t[dh][^>]*>"),
)


def inputs(kit: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {name: [] for name in CARRIERS}
    for folder in (kit / "seeds", kit / "seeds" / "docs", kit / "corpus" / "raw"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            for name, suffixes in CARRIERS.items():
                if path.suffix.lower() in suffixes:
                    found[name].append(path)
    return found


def parse_once(path: Path) -> None:
    # an unreadable input still costs its time; it is counted like the others
    with contextlib.suppress(XxgkError):
        read_report(path.read_bytes(), path=str(path))


def baseline_once(path: Path) -> None:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("gb18030", errors="replace")
    for pattern in _SCANS:
        for _ in pattern.finditer(text):
            pass


def rate(paths: list[Path], repeat: int, work: Callable[[Path], None]) -> tuple[float, float]:
    """(per CPU second of this process, per wall-clock second). CPU time is what "on one
    core" means; wall time also counts whatever else the machine is doing."""
    for path in paths:  # warm caches and imports once, outside the clock
        work(path)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(repeat):
        for path in paths:
            work(path)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done = len(paths) * repeat
    return done / cpu, done / wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20, help="passes over every input (default 20)")
    ap.add_argument("--kit", type=Path, default=DEFAULT_KIT, help="the reference kit (seeds/, corpus/)")
    args = ap.parse_args(argv)

    found = inputs(args.kit)
    if not any(found.values()):
        print(f"no inputs under {args.kit}", file=sys.stderr)
        return 2
    print(f"reports per CPU second of one process (per wall-clock second in brackets), x{args.repeat}")
    print(f"{'carrier':8} {'files':>5} {'parse/s':>16} {'baseline/s':>18} {'baseline÷parse':>15}  target")
    for name, paths in found.items():
        if not paths:
            continue
        parsed, parsed_wall = rate(paths, args.repeat, parse_once)
        base, base_wall = rate(paths, args.repeat, baseline_once)
        verdict = "ok" if parsed >= TARGET_PER_S else f"below {TARGET_PER_S}/s"
        print(
            f"{name:8} {len(paths):5d} {parsed:7.0f} ({parsed_wall:6.0f}) {base:8.0f} ({base_wall:7.0f})"
            f" {base / parsed:15.1f}  {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
