"""How fast the HTML and text carriers are, next to the cheapest possible pass over the same bytes.

For every HTML and text input of the reference kit (seeds, seeds/docs, corpus/raw) this times

- the baseline: read the file, decode it (UTF-8, else GB18030) and run a heading regex and a
  number regex over it (research/extraction.md anchor A1: ~0.18 ms for 20 KB);
- ``decode_bytes`` alone;
- the carrier's extractor (``extract_document``: sniff, decode, parse, grids, flat check),

each as the best of ``--repeat`` runs, and prints ms per report per carrier plus the ratio of
extraction to baseline. No asserts: this is a measurement, not a test.

    .venv/bin/python bench/extract_bench.py [--repeat 30] [--kit /work/shared]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from shared.extract import extract_document
from shared.extract.encoding import decode_bytes

HEADING = re.compile(r"^\s*[一二三四五六]、", re.M)
NUMBER = re.compile(r"\d+(?:\.\d+)?")
CARRIERS = {".html": "html", ".htm": "html", ".txt": "text"}


def inputs(kit: Path) -> list[Path]:
    folders = (kit / "seeds", kit / "seeds" / "docs", kit / "corpus" / "raw")
    found = (p for folder in folders if folder.is_dir() for p in folder.iterdir())
    return sorted(p for p in found if p.suffix in CARRIERS)


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def baseline(path: Path) -> None:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("gb18030", errors="replace")
    HEADING.findall(text)
    NUMBER.findall(text)


def extract(path: Path) -> None:
    extract_document(path.read_bytes(), filename=path.name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kit", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args(argv)

    paths = inputs(args.kit)
    if not paths:
        print(f"no HTML or text inputs under {args.kit}", file=sys.stderr)
        return 2
    for path in paths:  # warm-up: imports, regex compilation, lxml
        extract(path)

    per_carrier: dict[str, list[tuple[float, float, float, int]]] = defaultdict(list)
    print(f"{'input':48} {'KB':>6} {'base ms':>8} {'decode ms':>9} {'extract ms':>10} {'×base':>6}")
    for path in paths:
        data = path.read_bytes()
        base = best_of(lambda path=path: baseline(path), args.repeat)
        decode = best_of(lambda data=data: decode_bytes(data), args.repeat)
        full = best_of(lambda path=path: extract(path), args.repeat)
        per_carrier[CARRIERS[path.suffix]].append((base, decode, full, len(data)))
        name = f"{path.parent.name}/{path.name}"
        print(
            f"{name[-48:]:48} {len(data) / 1024:6.1f} {base * 1e3:8.3f} {decode * 1e3:9.3f} "
            f"{full * 1e3:10.3f} {full / base:6.1f}"
        )

    print()
    header = ("carrier", "reports", "base ms/report", "extract ms/report", "×base", "MB/s")
    print("{:8} {:>7} {:>14} {:>17} {:>6} {:>6}".format(*header))
    for carrier, rows in sorted(per_carrier.items()):
        base = statistics.median(r[0] for r in rows)
        full = statistics.median(r[2] for r in rows)
        throughput = sum(r[3] for r in rows) / sum(r[2] for r in rows) / 1e6
        figures = (carrier, len(rows), base * 1e3, full * 1e3, full / base, throughput)
        print("{:8} {:7} {:14.3f} {:17.3f} {:6.1f} {:6.1f}".format(*figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
