"""The rules over the hand-made labels of the seeds and the corpus (no parser involved).

Each label is the record a correct parser produces; its ``expected_findings``
are the error-level rules a correct checker must raise, and no other error may
appear. The raw text stands in for the narrative (so the text rules meet real
prose) and its 第…条第…项 lines for the captions.
"""

from __future__ import annotations

import html
import json
import re
from datetime import date
from pathlib import Path

from shared.parse import read_report
from shared.record import Report, empty_report
from shared.rules import check_report

CAPTION = re.compile(r"第[^\s|\t]{1,5}条第[（(][^\s|\t]{1,3}[）)]项")
TAGS = re.compile(r"<[^>]+>")


def record_from_label(label: dict, raw_text: str) -> Report:
    report = empty_report(label["template"])
    for key in ("agency", "year", "title", "published_on"):
        if label.get(key) is not None:
            setattr(report, key, label[key])
    # cells a label leaves out are not known; 0 keeps them out of every rule's way
    for path, _ in report.iter_cells():
        report.set_cell(path, 0)
    for section in ("active_disclosure", "applications", "reviews"):
        for row, cols in (label.get(section) or {}).items():
            for col, value in cols.items():
                report.set_cell(f"{section}.{row}.{col}", value)
    report.evidence.narrative = raw_text
    report.evidence.captions = CAPTION.findall(raw_text)
    return report


def _labelled(inputs: Path, labels: Path) -> list[tuple[str, Path, Path]]:
    out = []
    for label in sorted(labels.glob("*.json")):
        raws = [p for p in inputs.glob(f"{label.stem}.*") if p.suffix in (".txt", ".html")]
        if raws:
            out.append((label.stem, raws[0], label))
    return out


def _check(raw: Path, label_path: Path) -> tuple[set[str], set[str], list]:
    label = json.loads(label_path.read_text("utf-8"))
    text = raw.read_text("utf-8")
    if raw.suffix == ".html":
        text = html.unescape(TAGS.sub("", text))
    findings = check_report(record_from_label(label, text), today=date(2026, 6, 1))
    expected = set(label.get("expected_findings") or [])
    return expected, {f.rule for f in findings}, findings


def test_seed_labels_raise_exactly_the_expected_errors(seeds_dir: Path) -> None:
    cases = _labelled(seeds_dir, seeds_dir / "expected")
    assert len(cases) == 5
    for stem, raw, label in cases:
        expected, raised, findings = _check(raw, label)
        assert expected <= raised, (stem, expected - raised)
        errors = {f.rule for f in findings if f.severity == "error"}
        unexpected = [(f.rule, f.message) for f in findings if f.rule in errors - expected]
        assert errors <= expected, (stem, unexpected)


def test_seed_001_is_blank_tables_and_nothing_else(seeds_dir: Path) -> None:
    label = json.loads((seeds_dir / "expected" / "001_8d444e37c1d0efbd.json").read_text("utf-8"))
    report = empty_report("2021", agency=label["agency"], year=label["year"])
    for section in ("active_disclosure", "applications", "reviews"):
        for row, cols in label[section].items():
            for col, value in cols.items():
                report.set_cell(f"{section}.{row}.{col}", value)
    report.evidence.narrative = (seeds_dir / "001_8d444e37c1d0efbd.txt").read_text("utf-8")
    assert {f.rule for f in check_report(report)} == {"blank_table"}


def test_corpus_labels_raise_every_expected_finding_and_no_other_error(corpus_dir: Path) -> None:
    cases = _labelled(corpus_dir / "raw", corpus_dir / "labels")
    assert len(cases) >= 19
    for stem, raw, label in cases:
        expected, raised, findings = _check(raw, label)
        assert expected <= raised, (stem, expected - raised)
        errors = {f.rule for f in findings if f.severity == "error"}
        unexpected = [(f.rule, f.message) for f in findings if f.rule in errors - expected]
        assert errors <= expected, (stem, unexpected)
        # the narratives of the corpus agree with their tables (the labels' notes say so)
        assert "text_table_mismatch" not in raised, (stem, [f.message for f in findings])


# ---------------------------------------------------------------- through the parser


def _parsed_findings(raw: Path) -> list:
    report = read_report(raw.read_bytes(), path=str(raw))
    return check_report(report, today=date(2026, 6, 1))


def test_parsed_seeds_and_corpus_raise_the_expected_errors_only(seeds_dir: Path, corpus_dir: Path) -> None:
    """What ``score_corpus.py --require-findings --max-false-errors 0`` asks, in-process."""
    seeds = _labelled(seeds_dir, seeds_dir / "expected")
    cases = [*seeds, *_labelled(corpus_dir / "raw", corpus_dir / "labels")]
    for stem, raw, label_path in cases:
        expected = set(json.loads(label_path.read_text("utf-8")).get("expected_findings") or [])
        findings = _parsed_findings(raw)
        raised = {f.rule for f in findings}
        assert expected <= raised, (stem, expected - raised)
        errors = [f for f in findings if f.severity == "error"]
        unexpected = [(f.rule, f.message) for f in errors if f.rule not in expected]
        assert not unexpected, (stem, unexpected)
