"""The simulated government web as data, and the log analysis every benchmark figure comes from.

The portal's ground truth must be true: each seeded report parses to the agency the truth
names and carries exactly the anomalies the truth expects (checked with the real parser and
rules); every report document is reachable by the project's own link discovery. The analysis
must count violations, efficiency, 304s and recall the way ``bench/simweb/analysis.py`` says.
"""

from __future__ import annotations

from datetime import date

import pytest

from bench.simweb import analysis
from bench.simweb.analysis import LogEntry
from bench.simweb.portal import FAULTY_RULES, PortalConfig, build_portal, page_key, town_name
from shared.parse import read_report
from shared.rules import check_report

CONFIG = PortalConfig(hosts=5, reports_per_host=12, port=8000)


@pytest.fixture(scope="module")
def portal():
    return build_portal(CONFIG)


def test_the_portal_is_deterministic_and_loopback_only(portal) -> None:
    again = build_portal(CONFIG)
    assert [sorted(h.pages) for h in portal.hosts] == [sorted(h.pages) for h in again.hosts]
    assert [h.address for h in portal.hosts] == [
        "127.0.1.1",
        "127.0.1.2",
        "127.0.1.3",
        "127.0.1.4",
        "127.0.1.5",
    ]
    with pytest.raises(ValueError, match="loopback"):
        PortalConfig(network="10.0.0").address(0)


def test_hosts_mix_platforms_encodings_validators_and_robots(portal) -> None:
    assert {h.platform for h in portal.hosts} == {"trs", "hanweb"}
    assert {h.encoding for h in portal.hosts} == {"utf-8", "gbk"}
    assert {h.validators for h in portal.hosts} == {True, False}
    assert b"Disallow: /private/" in portal.hosts[0].pages["/robots.txt"].body
    with_delay = build_portal(PortalConfig(hosts=10, reports_per_host=2))
    assert [h.crawl_delay_s for h in with_delay.hosts].count(2.0) == 1
    assert b"Crawl-delay: 2" in with_delay.hosts[6].pages["/robots.txt"].body


def test_trs_pager_is_only_a_script_and_hanweb_pages_are_linked() -> None:
    trs, hanweb = build_portal(PortalConfig(hosts=2, reports_per_host=30)).hosts
    first = trs.pages["/xxgk/zfxxgknb/index.html"].body.decode()
    assert "createPageHTML(" in first and "index_1.html" not in first
    assert "/xxgk/zfxxgknb/index_1.html" in trs.pages
    listing = hanweb.pages[hanweb.entry_path].body.decode()
    assert "下一页" in listing and "pageNum=2" in listing
    assert hanweb.lookup("/col/col4001/index.html?uid=50001&pageNum=2") is not None  # any query order


def test_town_names_are_unique_and_gbk_hosts_use_gbk_only_characters() -> None:
    names = {town_name(n) for n in range(5000)}
    assert len(names) == 5000
    assert town_name(7, gbk_only=True)[0] in "堃镕"
    with pytest.raises(ValueError):
        town_name(10**9)


def test_every_report_document_is_found_by_the_projects_own_discovery(portal) -> None:
    from worker.crawler.discovery import decode_page, extract_links

    for host in portal.hosts:
        base = f"http://{host.address}:8000"
        seen: set[str] = set()
        todo = [host.entry_path]
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            page = host.lookup(path)
            if page is None or page.kind not in ("listing", "detail"):
                continue
            for link in extract_links(decode_page(page.body, page.content_type), base + path):
                todo.append(page_key(link.url.removeprefix(base)))
        wanted = {page_key(r.path) for r in host.reports}
        assert wanted <= seen, (host.address, sorted(wanted - seen)[:3])


@pytest.mark.parametrize("carrier", ["html", "docx", "pdf"])
def test_the_truth_about_each_carrier_matches_the_real_parser_and_rules(portal, carrier: str) -> None:
    checked = 0
    for host in portal.hosts:
        for report in host.reports:
            if report.carrier != carrier or checked >= 2:
                continue
            page = host.lookup(report.path)
            assert page is not None
            url = f"http://{host.address}:8000{report.path}"
            record = read_report(page.body, url=url, content_type=page.content_type)
            assert record.agency == report.agency
            assert record.year == report.year
            rules = {f.rule for f in check_report(record, today=date(2024, 6, 1))}
            assert rules & set(FAULTY_RULES) == set(report.expected_rules)
            checked += 1
    assert checked >= 1


def test_gbk_hosts_serve_gbk_bytes_that_decode_without_replacement(portal) -> None:
    gbk = next(h for h in portal.hosts if h.encoding == "gbk")
    report = next(r for r in gbk.reports if r.carrier == "html")
    body = gbk.lookup(report.path).body
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    text = body.decode("gbk")
    assert report.agency[3:6] in text or report.agency in text
    assert any(ch in "堃镕" for ch in report.agency)


# --------------------------------------------------------------------------- analysis


def entry(
    seq: int,
    host: str,
    arrived: float,
    *,
    path: str = "/a",
    status: int = 200,
    in_flight: int = 0,
    duration: float = 0.01,
) -> LogEntry:
    return LogEntry(
        seq, host, path, "GET", status, arrived, arrived + duration, in_flight, 100, False, None, "t"
    )


def test_violations_are_overlaps_and_arrivals_closer_than_the_host_delay() -> None:
    log = [
        entry(1, "h1", 0.0),
        entry(2, "h1", 1.0),
        entry(3, "h1", 1.5),
        entry(4, "h1", 1.6, in_flight=1),
        entry(5, "h2", 0.0),
        entry(6, "h2", 2.0),
    ]
    report = analysis.politeness(log, {"h1": 1.0, "h2": 2.0})
    assert report.hosts["h1"].too_soon == 1 and report.hosts["h1"].overlapping == 1
    assert report.hosts["h2"].violations == 0
    assert report.violations == 2 and report.hosts_with_violations == 1
    assert report.min_gap_s == pytest.approx(0.1)
    lenient = analysis.politeness(log, {"h1": 1.0, "h2": 2.0}, tolerance_s=0.6)
    assert lenient.hosts["h1"].too_soon == 0


def test_efficiency_is_busy_time_over_each_hosts_active_span() -> None:
    perfect = [entry(i, "h1", float(i)) for i in range(5)] + [
        entry(10 + i, "h2", 3.0 + 2 * i) for i in range(3)
    ]
    rate = analysis.throughput(perfect, {"h1": 1.0, "h2": 2.0})
    assert rate.efficiency == pytest.approx(1.0)
    assert rate.bound_requests_per_s == pytest.approx(1.5)
    half = [entry(i, "h1", 2.0 * i) for i in range(5)]
    assert analysis.throughput(half, {"h1": 1.0}).efficiency == pytest.approx(0.5)
    assert analysis.throughput(half, {"h1": 1.0}, exclude_hosts=["h1"]).efficiency is None


def test_not_modified_ratio_recall_and_retry_after_gaps(portal) -> None:
    truth = portal.truth()
    host = truth["hosts"][0]
    capable = host["validators"]
    docs = [r["path"] for r in host["reports"]]
    log = [
        entry(1, host["address"], 0.0, path="/robots.txt"),
        entry(2, host["address"], 1.0, path=docs[0], status=304),
        entry(3, host["address"], 2.0, path=docs[1], status=200),
        entry(4, host["address"], 3.0, path=docs[2], status=429),
        entry(5, host["address"], 13.0, path=docs[2], status=200),
    ]
    ratio, hits, total = analysis.not_modified_ratio(log, truth)
    assert capable and (ratio, hits, total) == (0.25, 1, 4)
    _share, found, wanted = analysis.recall(log, truth)
    assert found == 3 and wanted == sum(len(h["reports"]) for h in truth["hosts"])
    assert analysis.gap_after(log, host["address"], status=429) == [pytest.approx(9.99)]
    draft = [entry(9, host["address"], 0.0, path="/private/draft_0.html")]
    assert analysis.disallowed_requests(draft, truth) == 1
