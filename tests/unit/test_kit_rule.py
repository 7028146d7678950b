"""The reference kit follows the services' rule: missing kit skips locally, fails with ``CI=true``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import conftest
from tests.unit import test_extract_documents, test_parse_golden


@pytest.fixture
def no_kit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    missing = tmp_path / "no-kit"
    monkeypatch.setattr(test_parse_golden, "KIT", missing)
    monkeypatch.setattr(test_parse_golden, "SEEDS", missing / "seeds")
    monkeypatch.setattr(test_parse_golden, "DOCS", missing / "seeds" / "docs")
    monkeypatch.setattr(test_parse_golden, "CORPUS", missing / "corpus")
    monkeypatch.setattr(test_extract_documents, "SEEDS_DIR", missing / "seeds")
    return missing


def test_a_missing_kit_fails_in_ci(monkeypatch: pytest.MonkeyPatch, no_kit: Path) -> None:
    monkeypatch.setattr(conftest, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        conftest.require_kit(no_kit / "seeds")


def test_a_missing_kit_skips_outside_ci(monkeypatch: pytest.MonkeyPatch, no_kit: Path) -> None:
    monkeypatch.setattr(conftest, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="reference kit"):
        conftest.require_kit(no_kit / "seeds")


def test_a_present_kit_is_returned(tmp_path: Path) -> None:
    assert conftest.require_kit(tmp_path) == tmp_path


@pytest.mark.parametrize(("fixture", "setting"), [("seeds_dir", "SEEDS_DIR"), ("corpus_dir", "CORPUS_DIR")])
def test_the_kit_fixtures_fail_in_ci(
    monkeypatch: pytest.MonkeyPatch, no_kit: Path, fixture: str, setting: str
) -> None:
    monkeypatch.setattr(conftest, setting, no_kit / "missing")
    body = getattr(conftest, fixture).__wrapped__  # the fixture's own function, outside pytest's cache
    monkeypatch.setattr(conftest, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        body()
    monkeypatch.setattr(conftest, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception):
        body()


def test_parametrised_kit_tests_keep_one_case_without_the_kit(
    monkeypatch: pytest.MonkeyPatch, no_kit: Path
) -> None:
    # an empty parameter list is skipped by pytest itself, even with CI=true: never return one
    (case,) = test_parse_golden._cases()
    assert case.values == (None, None) and not case.marks
    monkeypatch.setattr(conftest, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        test_parse_golden.test_golden(None, None)
    assert test_extract_documents._seed_pairs() == [("", "")]
