"""``xxgk sites import|list`` and ``xxgk crawl`` without Redis (in-process pipeline), on the demo portal."""

from __future__ import annotations

import json

import pytest
import structlog
from click.testing import CliRunner

from shared.settings import get_settings
from worker.cli import main
from worker.demo.portal import DemoPortal


@pytest.fixture(autouse=True)
def _keep_logging_config():
    """``xxgk`` configures structlog for people (WARNING and up); later tests capture INFO events."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def env(tmp_path, monkeypatch):
    def configure(**values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()

    monkeypatch.delenv("XXGK_REDIS_URL", raising=False)
    configure(
        XXGK_DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}", XXGK_ARCHIVE_DIR=str(tmp_path / "archive")
    )
    yield configure
    get_settings.cache_clear()


def test_sites_import_then_an_embedded_crawl(tmp_path, env):
    runner = CliRunner()
    with DemoPortal() as portal:
        env(XXGK_SSRF_ALLOW=",".join(portal.allow_list), XXGK_POLITENESS_DELAY_S="0.05")
        registry = tmp_path / "sites.yaml"
        registry.write_text(portal.registry_yaml(), encoding="utf-8")
        imported = runner.invoke(main, ["sites", "import", str(registry)])
        assert imported.exit_code == 0, imported.output
        assert "7 sites: 7 added, 0 updated" in imported.output
        again = runner.invoke(main, ["sites", "import", str(registry)])
        assert "7 sites: 0 added, 7 updated" in again.output

        crawled = runner.invoke(main, ["crawl", "--site", "固镇县城市管理局", "--site", "官坡镇人民政府"])
        assert crawled.exit_code == 0, crawled.output
        assert "done — " in crawled.output and "ingest: new=2" in crawled.output.replace("failed=1 ", "")
        hosts = {r.host for r in portal.requests}
        assert hosts == {portal.host(1), portal.host(2)}  # only the two sites asked for

    listed = runner.invoke(main, ["sites", "list", "--json"])
    rows = {row["name"]: row for row in json.loads(listed.output)}
    assert rows["固镇县城市管理局"]["pages"] == {
        "parsed": 3,
        "failed": 1,
    }  # 2 lists, the PDF; its wrapper page
    assert rows["丰城市人民政府"]["pages"] == {}


def test_crawl_refuses_unknown_sites_and_an_empty_registry(env):
    runner = CliRunner()
    empty = runner.invoke(main, ["crawl"])
    assert empty.exit_code != 0 and "no sites registered" in empty.output
    unknown = runner.invoke(main, ["crawl", "--site", "nowhere"])
    assert unknown.exit_code != 0 and "no such site: nowhere" in unknown.output


def test_a_broken_registry_file_is_a_clear_error_not_a_traceback(tmp_path, env):
    bad = tmp_path / "sites.yaml"
    bad.write_text("- name: a\n  entry_urls: [ftp://x]\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["sites", "import", str(bad)])
    assert result.exit_code == 2
    assert "is not an http(s) URL" in result.output and "Traceback" not in result.output


def test_an_in_process_crawl_against_postgresql_without_redis_is_refused(env):
    """It would bypass the shared per-host politeness budget and keep its events off the stream."""
    env(XXGK_DATABASE_URL="postgresql+psycopg://xxgk@127.0.0.1:1/xxgk")
    result = CliRunner().invoke(main, ["crawl"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "XXGK_REDIS_URL is unset" in lines[0] and "Traceback" not in result.output
