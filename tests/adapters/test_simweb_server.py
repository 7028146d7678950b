"""The simulated web's server, as a subprocess on 127.0.1.x: pages, conditional GETs, faults, the log.

What the benchmarks conclude rests on this server telling the truth: every request logged with
its host, path, times and in-flight count; faults injected exactly as asked.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from bench.simweb.process import SimWebProcess


@pytest.fixture(scope="module")
def web() -> Iterator[SimWebProcess]:
    with SimWebProcess(hosts=4, reports=6, max_seconds=300) as process:
        yield process


def get(
    web: SimWebProcess, host: str, path: str, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(host, web.port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_each_host_serves_its_own_site_with_validators_and_304s(web: SimWebProcess) -> None:
    truth = web.truth()
    host = truth["hosts"][0]
    status, headers, body = get(web, host["address"], host["entry_path"])
    assert status == 200 and b"createPageHTML" in body
    assert "etag" in headers and "last-modified" in headers
    status, _, body = get(web, host["address"], host["entry_path"], {"If-None-Match": headers["etag"]})
    assert status == 304 and body == b""
    status, _, _ = get(
        web, host["address"], host["entry_path"], {"If-Modified-Since": headers["last-modified"]}
    )
    assert status == 304
    other = truth["hosts"][1]
    assert get(web, other["address"], host["entry_path"])[0] == 404  # another host, another site
    no_validators = next(h for h in truth["hosts"] if not h["validators"])
    assert "etag" not in get(web, no_validators["address"], no_validators["entry_path"])[1]


def test_the_log_records_what_the_server_saw(web: SimWebProcess) -> None:
    web.reset_log()
    host = web.truth()["hosts"][2]["address"]
    web.add_faults([{"host": host, "kind": "delay", "delay_s": 0.5, "count": 1}])
    threads = [threading.Thread(target=get, args=(web, host, "/robots.txt")) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    for thread in threads:
        thread.join()
    log = [e for e in web.fetch_log() if e.host == host]
    assert len(log) == 2
    first, second = sorted(log, key=lambda e: e.arrived)
    assert first.fault == "delay" and first.finished - first.arrived >= 0.45
    assert second.in_flight == 1  # arrived while the first was still being served
    assert second.status == 200 and second.path == "/robots.txt" and second.bytes > 0


def test_faults_status_retry_after_challenges_and_resets(web: SimWebProcess) -> None:
    host = web.truth()["hosts"][3]
    address, path = host["address"], host["entry_path"]
    web.add_faults(
        [
            {"host": address, "kind": "status", "status": 429, "retry_after": "30", "count": 1},
            {"host": address, "kind": "challenge_412", "count": 1},
            {"host": address, "kind": "challenge_521", "count": 1},
            {"host": address, "kind": "block_200", "count": 1},
            {"host": address, "kind": "reset", "count": 1},
        ]
    )
    status, headers, _ = get(web, address, path)
    assert status == 429 and headers["retry-after"] == "30"
    status, headers, body = get(web, address, path)
    assert status == 412 and b"$_ts" in body and "80S=" in headers["set-cookie"]
    status, _, body = get(web, address, path)
    assert status == 521 and b"('j')+('s')+('l')" in body
    status, _, body = get(web, address, path)
    assert status == 200 and "安全狗".encode() in body
    with pytest.raises((ConnectionError, http.client.HTTPException, socket.error)):
        get(web, address, path)
    assert get(web, address, path)[0] == 200  # faults are used up
    faults = [e.fault for e in web.fetch_log() if e.host == address][-6:]
    assert faults == ["status", "challenge_412", "challenge_521", "block_200", "reset", None]


def test_the_server_is_bounded_by_request_count() -> None:
    with SimWebProcess(hosts=1, reports=1, max_requests=3) as web:
        host = web.truth()["hosts"][0]["address"]
        for _ in range(3):
            get(web, host, "/robots.txt")
        assert web.proc is not None
        web.proc.wait(timeout=10)
        assert web.proc.returncode == 0
