"""Golden files: the seeds (text), their HTML renderings and the Shanghai corpus page parse
to their hand-made labels, every cell and the identity (through the real extractors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.parse import read_report
from tests.conftest import CORPUS_DIR, SEEDS_DIR, SHARED_KIT, require_kit

KIT = SHARED_KIT
SEEDS = SEEDS_DIR
DOCS = SEEDS / "docs"
CORPUS = CORPUS_DIR
CELL_SECTIONS = ("active_disclosure", "applications", "reviews")


def _cases() -> list[Any]:
    cases: list[tuple[Path, Path]] = []
    if SEEDS.is_dir():
        cases += [(p, SEEDS / "expected" / f"{p.stem}.json") for p in sorted(SEEDS.glob("*.txt"))]
        cases += [(p, DOCS / "expected" / f"{p.stem}.json") for p in sorted(DOCS.glob("*.html"))]
    if CORPUS.is_dir():
        cases.append((CORPUS / "raw" / "001.html", CORPUS / "labels" / "001.json"))
    if not cases:
        # one case that asks for the kit when it runs: skipped locally, a failure with CI=true
        return [pytest.param(None, None, id="reference-kit")]
    return [pytest.param(doc, label, id=doc.name) for doc, label in cases]


def _leaves(obj: Any, prefix: str) -> list[tuple[str, Any]]:
    if isinstance(obj, dict):
        return [leaf for key, val in obj.items() for leaf in _leaves(val, f"{prefix}.{key}")]
    return [(prefix, obj)]


@pytest.mark.parametrize(("document", "label_file"), _cases())
def test_golden(document: Path | None, label_file: Path | None) -> None:
    if document is None or label_file is None:
        require_kit(KIT)
        return  # the kit appeared after collection: nothing was collected from it
    label = json.loads(label_file.read_text(encoding="utf-8"))
    report = read_report(document.read_bytes(), path=str(document))
    got = report.to_json_dict()

    wrong = [
        f"{path}: want {want!r} got {have!r}"
        for section in CELL_SECTIONS
        if section in label
        for path, want in _leaves(label[section], section)
        if (have := report.cell(path)) != want or (type(have) is not type(want) and want is not None)
    ]
    assert not wrong, "\n".join(wrong)
    for field in ("agency", "year", "template", "published_on"):
        if field in label:
            assert got[field] == label[field], field
    if document.suffix == ".txt":
        assert got["title"] == label["title"]
