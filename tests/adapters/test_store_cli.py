"""The store's commands end to end on a SQLite file (embedded mode: no Redis)."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from shared.settings import get_settings
from worker.cli import main

SEED_A = "000_230915953f1370e3.txt"  # 城郊乡人民政府 2020, one template_deviation
SEED_B = "004_f6bc76c28a8b0cd7.txt"  # 固镇县城市管理局 2020


@pytest.fixture
def xxgk(sqlite_url, monkeypatch):
    monkeypatch.setenv("XXGK_DATABASE_URL", sqlite_url)
    monkeypatch.delenv("XXGK_REDIS_URL", raising=False)
    monkeypatch.setenv("XXGK_WEBHOOK_URLS", "")
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args, code=0):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    yield run
    get_settings.cache_clear()


@pytest.fixture
def seeds(seeds_dir, tmp_path):
    folder = tmp_path / "seeds"
    folder.mkdir()
    for name in (SEED_A, SEED_B):
        shutil.copy(seeds_dir / name, folder / name)
    return folder


def test_db_upgrade_and_current(xxgk):
    assert "schema at revision 0001" in xxgk("db", "upgrade")
    assert "current=0001 head=0001" in xxgk("db", "current")


def test_ingest_twice_then_read_the_store(xxgk, seeds):
    first = xxgk("ingest", str(seeds / SEED_A), str(seeds / SEED_B))
    assert first.count("new ") == 2 and "2 new" in first
    second = xxgk("ingest", str(seeds))
    assert "2 unchanged" in second and "0 event(s) added" in second

    reports = json.loads(xxgk("reports", "list", "--json"))
    assert {r["agency"] for r in reports} == {"城郊乡人民政府", "固镇县城市管理局"}
    assert {r["level"] for r in reports} == {"township", "department"}
    assert len(json.loads(xxgk("reports", "list", "--json", "--agency", "城郊乡"))) == 1
    assert json.loads(xxgk("reports", "list", "--json", "--year", "2019")) == []

    town = next(r for r in reports if r["agency"] == "城郊乡人民政府")
    shown = json.loads(xxgk("reports", "show", str(town["id"]), "--json"))
    assert shown["record"]["year"] == 2020 and shown["record"]["template"] == "2019"
    assert [rev["revision"] for rev in shown["revisions"]] == [1]
    assert [f["rule"] for f in shown["findings"]] == ["template_deviation"]
    assert "城郊乡人民政府 2020" in xxgk("reports", "show", town["sha256"][:12])

    findings = json.loads(xxgk("findings", "list", "--json", "--rule", "template_deviation"))
    assert len(findings) == 1 and findings[0]["status"] == "open"
    assert json.loads(xxgk("findings", "list", "--json", "--severity", "error")) == []


def test_a_dismissed_finding_stays_dismissed_after_a_new_revision(xxgk, seeds):
    xxgk("ingest", str(seeds / SEED_A))
    [finding] = json.loads(xxgk("findings", "list", "--json"))
    assert "dismissed" in xxgk(
        "findings", "dismiss", finding["fingerprint"][:12], "--note", "错别字，不影响数据"
    )
    path = seeds / SEED_A
    path.write_text(path.read_text(encoding="utf-8").replace("精心组织部署", "精心部署"), encoding="utf-8")
    assert "1 revised" in xxgk("ingest", str(path))
    [again] = json.loads(xxgk("findings", "list", "--json", "--rule", "template_deviation"))
    assert (again["status"], again["note"], again["last_seen_revision"]) == (
        "dismissed",
        "错别字，不影响数据",
        2,
    )
    assert (
        json.loads(xxgk("findings", "list", "--json", "--status", "open", "--rule", "template_deviation"))
        == []
    )
    events = json.loads(xxgk("alerts", "list", "--json", "--type", "report.changed"))
    assert len(events) == 1 and events[0]["payload"]["diff"][0]["cell"] == "narrative"


def test_unreadable_files_exit_2_and_are_recorded(xxgk, tmp_path):
    junk = tmp_path / "junk.html"
    junk.write_text("<html><body>招聘公告</body></html>", encoding="utf-8")
    out = xxgk("ingest", str(junk), code=2)
    assert "failed" in out
    assert json.loads(xxgk("db", "counts", "--json"))["source_documents"] == 1


def test_subscriptions_relay_and_alerts_in_embedded_mode(xxgk, seeds):
    added = xxgk("subscriptions", "add", "http://127.0.0.1:9/hook", "--region", "35", "--severity", "warning")
    assert "secret: whsec_" in added
    [sub] = json.loads(xxgk("subscriptions", "list", "--json"))
    assert (sub["region_prefix"], sub["min_severity"]) == ("35", "warning")
    assert "secret" not in sub
    xxgk("subscriptions", "add", "ftp://nowhere", code=2)

    xxgk("ingest", str(seeds / SEED_A), str(seeds / SEED_B))
    events = json.loads(xxgk("alerts", "list", "--json", "--unpublished"))
    assert len(events) >= 1
    assert "published=0 held=" in xxgk("relay", "--once")
    # no Redis, no stream: the events are not claimed as published, and still listed
    held = json.loads(xxgk("alerts", "list", "--json", "--unpublished"))
    assert [e["id"] for e in held] == [e["id"] for e in events]
    assert " held " in xxgk("alerts", "list")
    tail = xxgk("alerts", "tail", "--from-start", "--count", "1", "--json")
    assert json.loads(tail.splitlines()[0])["id"] == events[-1]["id"]
    assert json.loads(xxgk("alerts", "dead", "--json")) == []
    xxgk("alerts", "retry", "999", code=2)


def test_confirming_an_unknown_finding_is_a_clear_error(xxgk):
    out = xxgk("findings", "confirm", "nosuchfinding", code=2)
    assert "no finding" in out
