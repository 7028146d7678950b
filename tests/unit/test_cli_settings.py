"""A bad setting stops any ``xxgk`` command with one clear line and exit 2, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from shared.errors import ConfigError
from shared.record import Source
from shared.settings import Settings, get_settings
from worker.cli import main


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    # get_settings() is cached: each test must read its own environment, and leave none behind
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


BAD = [
    ("XXGK_MAX_PDF_PAGES", "abc", "valid integer"),
    ("XXGK_SEASON_MONTHS", "a", "month numbers"),
    ("XXGK_SEASON_MONTHS", "1,13", "1 to 12"),
    ("XXGK_DATABASE_URL", "garbage", "not a database URL"),
    ("XXGK_TOWNSHIP_DEADLINE_MMDD", "13-45", "MM-DD"),
    ("XXGK_TOWNSHIP_DEADLINE_MMDD", "02-30", "MM-DD"),
    ("XXGK_TOWNSHIP_DEADLINE_MMDD", "0220", "MM-DD"),
    ("XXGK_STREAM_MAX_LEN", "-1", "greater than or equal to 0"),
]


@pytest.mark.parametrize(("name", "value", "says"), BAD)
@pytest.mark.parametrize("command", [["rules"], ["parse", "nothing.html"], ["check", "--json", "x.txt"]])
def test_bad_setting_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str, command: list[str]
) -> None:
    monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"xxgk: config_error: {name}: ")
    assert says in line


def test_a_database_url_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XXGK_DATABASE_URL", "postgresql://user:s3cret@host:notaport/db")
    result = CliRunner().invoke(main, ["rules"])
    assert result.exit_code == 2
    assert "s3cret" not in result.output


def test_good_settings_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XXGK_DATABASE_URL", "postgresql+psycopg://user:pw@127.0.0.1:5432/db")
    monkeypatch.setenv("XXGK_SEASON_MONTHS", "1; 2,3")
    monkeypatch.setenv("XXGK_TOWNSHIP_DEADLINE_MMDD", "02-29")
    settings = Settings()
    assert settings.season_months == [1, 2, 3] and settings.township_deadline_mmdd == "02-29"
    assert CliRunner().invoke(main, ["rules"]).exit_code == 0


def test_settings_validation_happens_without_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    # an unreachable host is still a well-formed URL: only the shape is checked at start-up
    monkeypatch.setenv("XXGK_DATABASE_URL", "postgresql://nobody@203.0.113.1:1/db")
    assert Settings().database_url.endswith("/db")
    with pytest.raises(ValidationError):
        Settings(database_url="::")


def test_a_config_error_from_a_command_is_one_line_and_exit_2() -> None:
    @main.command("_raise_config_error", hidden=True)
    def _raise() -> None:
        raise ConfigError("sites.yaml: entry 1: every site needs a name")

    try:
        result = CliRunner().invoke(main, ["_raise_config_error"])
    finally:
        main.commands.pop("_raise_config_error")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["xxgk: config_error: sites.yaml: entry 1: every site needs a name"]
    assert isinstance(result.exception, SystemExit)


def test_other_validation_errors_are_not_disguised_as_config() -> None:
    # a record failing its own model is a bug: it must fail loudly, not as "config_error"
    @main.command("_raise_other", hidden=True)
    def _raise() -> None:
        Source.model_validate({"nonsense": 1})

    try:
        result = CliRunner().invoke(main, ["_raise_other"])
    finally:
        main.commands.pop("_raise_other")
    assert isinstance(result.exception, ValidationError)
    assert "config_error" not in result.output
