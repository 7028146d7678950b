"""The real crawler components against the bundled portal on loopback, embedded (no Redis, no Celery).

- the whole ``xxgk demo`` story: reports from every carrier, anomalies, a silent edit, 304s,
  robots.txt, the anti-bot page, missing_report — judged from the store and the server's log;
- SSRF: links and redirects to another port on 127.0.0.1, to 10.x, to 169.254.169.254 and to a
  name that resolves to loopback are refused and recorded; a canary listener proves no
  connection was made; the allow-listed portal still works.
"""

from __future__ import annotations

import io
import socket
import threading
from datetime import UTC, date, datetime

import pytest
from rich.console import Console
from sqlmodel import select

from shared.settings import Settings
from shared.store import crawl_state
from shared.store.crawl_state import SiteSpec
from shared.store.models import Page
from worker.crawler.politeness import LocalPolitenessGate
from worker.demo import run as demo_run
from worker.demo.portal import (
    EDITED_REPORT,
    REPORT_PATHS,
    ROBOTS_DISALLOWED_PATH,
    SSRF_PORT_REDIRECT_PATH,
    SSRF_REDIRECT_PATH,
    DemoPortal,
    Route,
)
from worker.pipeline import FollowUp, InProcessPipeline, build_resources

DELAY_S = 0.05


@pytest.fixture(scope="module")
def demo_outcome(tmp_path_factory):
    """One full demo run (two passes), shared by the assertions below."""
    captured: dict[str, list] = {}
    original_exit = DemoPortal.__exit__

    def keep_log(self, *exc):
        captured["requests"] = list(self.requests)
        captured["port"] = [self.port]
        return original_exit(self, *exc)

    DemoPortal.__exit__ = keep_log  # type: ignore[method-assign]
    try:
        console = Console(file=io.StringIO(), width=200)
        outcome = demo_run.run_demo(workdir=tmp_path_factory.mktemp("demo"), console=console, delay_s=DELAY_S)
        demo_run.print_outcome(outcome, console)
    finally:
        DemoPortal.__exit__ = original_exit  # type: ignore[method-assign]
    return outcome, captured["requests"], console.file.getvalue()


def test_the_demo_stores_every_report_once_from_every_carrier(demo_outcome):
    outcome, _requests, _text = demo_outcome
    found = sorted((r["agency"], r["year"], r["media_type"]) for r in outcome.reports)
    assert found == sorted(
        [
            ("丰城市段潭乡人民政府", 2020, "text/html"),
            ("固镇县城市管理局", 2020, "application/pdf"),
            ("城郊乡人民政府", 2020, "text/html"),
            (
                "官坡镇人民政府",
                2023,
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ),
            ("郑庄子镇", 2021, "text/html"),
        ]
    )
    assert [r["revision"] for r in outcome.reports if r["agency"] == "城郊乡人民政府"] == [2]


def test_the_demo_raises_each_expected_alert_once(demo_outcome):
    outcome, _requests, _text = demo_outcome
    alerts = [(a["type"], a["agency"], a["year"], a["rule"]) for a in outcome.alerts]
    assert len({a["id"] for a in outcome.alerts}) == len(alerts)
    expected = {
        ("report.anomalous", "丰城市段潭乡人民政府", 2020, "t3_identity"),
        ("report.anomalous", "丰城市段潭乡人民政府", 2020, "t3_result_sum"),
        ("report.anomalous", "丰城市段潭乡人民政府", 2020, "t3_row_sum"),
        ("report.anomalous", "郑庄子镇", 2021, "blank_table"),
        ("report.changed", "城郊乡人民政府", 2020, "report_changed"),
        ("report.missing", "丰城市人民政府", 2020, "missing_report"),
    }
    assert expected <= set(alerts)
    # blocked by an anti-bot page is "unknown", never "missing"
    assert not any(a[1] == "某市卫生健康委员会" for a in alerts)
    # no Redis in the demo, so no stream: the events are kept, but never claimed as published
    assert not any(a["published"] for a in outcome.alerts)


def test_the_demo_is_polite_obeys_robots_and_revisits_with_304s(demo_outcome):
    outcome, requests, _text = demo_outcome
    assert outcome.politeness_violations == []
    assert all(r.in_flight == 0 for r in requests)
    assert all(r.user_agent.startswith("xxgk-watch/") for r in requests)
    assert not [r for r in requests if r.path == ROBOTS_DISALLOWED_PATH]
    first, second = outcome.passes
    assert second.not_modified >= 14 and first.not_modified == 0
    edited = [r for r in requests if r.path == REPORT_PATHS[EDITED_REPORT]]
    assert [r.status for r in edited] == [200, 200]  # new bytes on the second pass: no 304
    unchanged = [r for r in requests if r.path == REPORT_PATHS["guzhen_cgj_2020"]]
    assert [(r.status, r.conditional) for r in unchanged] == [(200, False), (304, True)]


def test_the_demo_records_what_it_could_not_fetch_and_why(demo_outcome):
    outcome, _requests, text = demo_outcome
    blocked = "\n".join(outcome.blocked)
    failed = "\n".join(outcome.refused)
    assert "anti-bot challenge: ruishu (HTTP 412)" in blocked
    assert "robots.txt disallows" in blocked
    lines = {line.split(" — ", 1)[0].split("/", 1)[-1]: line for line in outcome.refused}
    # off the site's domains: refused by scope; another port on the portal's address: by the SSRF guard
    assert "169.254.169.254 is outside the crawl scope" in lines[SSRF_REDIRECT_PATH[1:]]
    assert "SSRF guard: 127.0.0.2:6379" in lines[SSRF_PORT_REDIRECT_PATH[1:]]
    assert failed.count("not_a_report") == 3  # a notice, another notice, a "see the attachment" page
    assert "Summary" in text and "politeness violations (server log)" in text


# --------------------------------------------------------------------------- SSRF


class Canary:
    """A TCP listener that counts connections: a refused SSRF target must see none."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def canary():
    listener = Canary()
    yield listener
    listener.close()


def test_ssrf_links_and_redirects_to_private_addresses_are_refused_and_recorded(tmp_path, canary):
    forbidden = {
        "loopback-other-port": f"http://127.0.0.1:{canary.port}/nb2020.pdf",
        "private": "http://10.0.0.8/nb2020.pdf",
        "metadata": "http://169.254.169.254/latest/meta-data/nb2020.pdf",
        "name-to-loopback": f"http://localhost:{canary.port}/nb2020.pdf",
    }
    with DemoPortal() as portal:
        links = "".join(
            f'<li><a href="{url}">{name} 2020年政府信息公开工作年度报告.pdf</a></li>'
            for name, url in forbidden.items()
        )
        links += "".join(
            f'<li><a href="/ssrf/redirect-{name}.pdf">{name} 跳转.pdf</a></li>' for name in forbidden
        )
        page = f"<html><body><ul>{links}</ul></body></html>".encode()
        published = datetime(2021, 1, 1, tzinfo=UTC)
        portal.add_route(
            0, "/ssrf/index.html", Route(body=lambda _e: page, last_modified=lambda _e: published)
        )
        for name, url in forbidden.items():
            portal.add_route(
                0, f"/ssrf/redirect-{name}.pdf", Route(body=lambda _e: b"", status=302, location=url)
            )
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}",
            archive_dir=tmp_path / "archive",
            ssrf_allow=portal.allow_list,
            politeness_delay_s=DELAY_S,
        )
        resources = build_resources(settings, gate=LocalPolitenessGate(DELAY_S), politeness_wait=2.0)
        # the scope lets every one of them through, so the SSRF guard is what must refuse
        domains = (portal.host(0), "127.0.0.1", "10.0.0.8", "169.254.169.254", "localhost")
        with resources.session_factory() as session:
            site, _ = crawl_state.upsert_site(
                session,
                SiteSpec(name="ssrf", entry_urls=(portal.url(0, "/ssrf/index.html"),), domains=domains),
            )
            session.commit()
            site_id = site.id
        pipeline = InProcessPipeline(resources, workers=2)
        pipeline.submit([FollowUp("discover", site_id)])
        stats = pipeline.run(timeout_s=30)
        served = [r.path for r in portal.requests]

    assert stats.errors == []
    with resources.session_factory() as session:
        pages = {p.url: p for p in session.exec(select(Page).where(Page.site_id == site_id)).all()}
    entry = pages[portal.url(0, "/ssrf/index.html")]
    assert entry.state == "parsed"  # the allow-listed portal itself works
    refused = {url: page for url, page in pages.items() if url != entry.url}
    assert len(refused) == 2 * len(forbidden)
    for url, page in refused.items():
        assert page.state == "failed", url
        assert "SSRF guard" in (page.last_error or ""), (url, page.last_error)
    reasons = " ".join(page.last_error or "" for page in refused.values())
    for reason in ("loopback", "private", "cloud metadata endpoint"):
        assert reason in reasons
    assert canary.connections == 0
    assert sorted(p for p in served if p.startswith("/ssrf/redirect-")) == sorted(
        f"/ssrf/redirect-{name}.pdf" for name in forbidden
    )


def test_registry_dates_drive_missing_report_tracking():
    # the demo's calendar is data: each site is tracked from the year before it was registered
    assert date(2021, 4, 20) == demo_run.DEMO_TODAY
    assert demo_run.DEFAULT_REGISTERED.year == 2021
