"""The SSRF guard: resolved addresses are judged, the checked address is the one connected to,
and redirects to loopback, private and metadata addresses are refused before any connection.

Only loopback traffic is ever sent: for 10.x and 169.254.x we prove the guard refuses before
a connection is attempted (a recording transport sees nothing), and for 127.0.0.1 on another
port a canary listener proves that no connection arrives.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from structlog.testing import capture_logs

from shared.errors import FetchRejected
from shared.settings import Settings
from worker.crawler.http import Fetcher
from worker.crawler.politeness import LocalPolitenessGate
from worker.crawler.ssrf import AddressPolicy, GuardedTransport, parse_ip_literal, refusal_reason

PUBLIC_V4 = "93.184.216.34"


REAL_GETADDRINFO = socket.getaddrinfo


def fake_resolver(table: dict[str, list[str]]) -> Any:
    """A getaddrinfo that answers names from ``table`` and never touches the network
    (IP literals, as the pinned connection uses, go to the real one: no lookup happens)."""
    calls: list[str] = []

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(host)
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answers = table[host]
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in answers
        ]

    getaddrinfo.calls = calls  # type: ignore[attr-defined]
    return getaddrinfo


# --------------------------------------------------------------------------- the address table


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("2130706433", "loopback"),  # decimal
        ("0x7f.0.0.1", "loopback"),  # hex
        ("0177.0.0.1", "loopback"),  # octal
        ("127.1", "loopback"),  # short form
        ("0.0.0.0", "unspecified"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "shared address space (CGNAT)"),
        ("169.254.169.254", "cloud metadata endpoint"),
        ("100.100.100.200", "cloud metadata endpoint"),
        ("169.254.1.1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "broadcast"),
        ("198.18.0.1", "reserved (benchmarking)"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "IPv4-mapped IPv6"),
        ("::ffff:8.8.8.8", "IPv4-mapped IPv6"),
        ("fd00:ec2::254", "cloud metadata endpoint"),
        ("fd12:3456::1", "private (unique local)"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("2002:7f00:1::1", "6to4 (embeds an IPv4 address)"),
        ("64:ff9b::a00:1", "NAT64 of a private address"),
        ("2001::1", "reserved (IETF protocol assignments, Teredo)"),
        ("2001:db8::1", "reserved (documentation)"),
    ],
)
def test_non_global_addresses_are_refused_in_every_spelling(host: str, reason: str) -> None:
    ip = parse_ip_literal(host)
    assert ip is not None
    assert refusal_reason(ip) == reason
    with pytest.raises(FetchRejected, match="SSRF guard"):
        AddressPolicy([], resolver=fake_resolver({})).check_host(host, 80)


@pytest.mark.parametrize("host", ["8.8.8.8", PUBLIC_V4, "2001:4860:4860::8888", "64:ff9b::808:808"])
def test_global_addresses_pass(host: str) -> None:
    assert AddressPolicy([], resolver=fake_resolver({})).check_host(host, 443) == [host]


def test_names_are_judged_by_every_address_they_resolve_to() -> None:
    resolver = fake_resolver(
        {
            "www.xx.gov.cn": [PUBLIC_V4],
            "intranet.xx.gov.cn": ["10.0.0.5"],
            "mixed.xx.gov.cn": [PUBLIC_V4, "192.168.0.9"],
        }
    )
    policy = AddressPolicy([], resolver=resolver)
    assert policy.check_host("www.xx.gov.cn", 80) == [PUBLIC_V4]
    with pytest.raises(FetchRejected, match=r"10\.0\.0\.5 \(private\)"):
        policy.check_host("intranet.xx.gov.cn", 80)
    with pytest.raises(FetchRejected, match=r"192\.168\.0\.9"):
        policy.check_host("mixed.xx.gov.cn", 80)
    with pytest.raises(FetchRejected, match="does not resolve"):
        policy.check_host("nx.xx.gov.cn", 80)


def test_allow_list_entries_are_ips_cidrs_and_hosts_with_optional_ports() -> None:
    resolver = fake_resolver({"portal.test": ["127.0.0.1"], "localhost": ["127.0.0.1", "::1"]})
    policy = AddressPolicy(["127.0.0.1:8765", "10.1.0.0/16", "portal.test", "[::1]:9000"], resolver=resolver)
    assert policy.check_host("127.0.0.1", 8765) == ["127.0.0.1"]
    with pytest.raises(FetchRejected):
        policy.check_host("127.0.0.1", 6379)  # the portal's address, another port
    assert policy.check_host("10.1.2.3", 80) == ["10.1.2.3"]
    with pytest.raises(FetchRejected):
        policy.check_host("10.2.0.1", 80)
    assert policy.check_host("portal.test", 1234) == ["127.0.0.1"]
    assert policy.check_host("::1", 9000) == ["::1"]
    with pytest.raises(FetchRejected):
        policy.check_host("localhost", 8765)  # ::1 on 8765 is not allowed
    assert policy.allowed_names() == {"127.0.0.1", "portal.test", "::1"}


def test_a_real_lookup_is_used_when_no_resolver_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = fake_resolver({"evil.xx.gov.cn": ["10.9.8.7"]})
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(FetchRejected, match="private"):
        AddressPolicy([]).check_host("evil.xx.gov.cn", 80)
    assert resolver.calls == ["evil.xx.gov.cn"]


# --------------------------------------------------------------------------- pinning (no rebinding gap)


def test_the_transport_connects_to_the_address_it_checked_keeping_the_name() -> None:
    seen: list[httpx.Request] = []

    def inner(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"ok")

    # a rebinding resolver: public for the first answer, loopback afterwards
    answers = iter([[PUBLIC_V4], ["127.0.0.1"], ["127.0.0.1"]])
    table: dict[str, list[str]] = {}
    base = fake_resolver(table)

    def rebinding(host: str, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        table[host] = next(answers)
        return base(host, port, *args, **kwargs)

    transport = GuardedTransport(AddressPolicy([], resolver=rebinding), inner=httpx.MockTransport(inner))
    with httpx.Client(transport=transport) as client:
        response = client.get("https://www.xx.gov.cn/zfxxgk/index.html")
        with pytest.raises(FetchRejected, match="loopback"):
            client.get("https://www.xx.gov.cn/again")  # the rebound answer is checked too
    assert response.status_code == 200
    (request,) = seen
    assert request.url.host == PUBLIC_V4  # connect to the checked IP …
    assert request.url.path == "/zfxxgk/index.html"
    assert request.headers["host"] == "www.xx.gov.cn"  # … speaking to the name
    assert request.extensions["sni_hostname"] == "www.xx.gov.cn"  # and verifying its certificate


def test_the_transport_refuses_other_schemes() -> None:
    transport = GuardedTransport(
        AddressPolicy([], resolver=fake_resolver({})),
        inner=httpx.MockTransport(lambda r: httpx.Response(200)),
    )
    with pytest.raises(FetchRejected, match="scheme"):
        transport.handle_request(httpx.Request("GET", "ftp://www.xx.gov.cn/a"))


# --------------------------------------------------------------------------- a real local portal


class PortalHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", parse_qs(parts.query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = "<html><body>2023年政府信息公开工作年度报告</body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def portal() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), PortalHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def canary() -> Iterator[tuple[int, Any]]:
    """A listener nobody should reach; ``reached()`` tells whether a connection arrived."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)

    def reached() -> bool:
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            return False
        connection.close()
        return True

    try:
        yield listener.getsockname()[1], reached
    finally:
        listener.close()


@dataclass
class RecordingTransport(httpx.BaseTransport):
    """httpx's real transport, noting every address it is asked to connect to."""

    inner: httpx.HTTPTransport = field(default_factory=httpx.HTTPTransport)
    connections: list[tuple[str, int | None]] = field(default_factory=list)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.connections.append((request.url.host, request.url.port))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def guarded(portal: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Fetcher, RecordingTransport]]:
    port = urlsplit(portal).port
    # a government name that resolves to an intranet address; everything else must not be looked up
    monkeypatch.setattr(socket, "getaddrinfo", fake_resolver({"intranet.xx.gov.cn": ["10.0.0.1"]}))
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        ssrf_allow=[f"127.0.0.1:{port}"],
        # scope lets these through so that the SSRF guard is what refuses them
        extra_allowed_domains=["127.0.0.1", "10.0.0.1", "169.254.169.254", "2130706433"],
    )
    recorder = RecordingTransport()
    fetcher = Fetcher(
        settings,
        transport=recorder,
        address_policy=AddressPolicy(settings.ssrf_allow),
        gate=LocalPolitenessGate(0.0),
    )
    yield fetcher, recorder
    fetcher.close()


def test_the_allow_listed_portal_still_works(
    portal: str, guarded: tuple[Fetcher, RecordingTransport]
) -> None:
    fetcher, recorder = guarded
    result = fetcher.fetch(f"{portal}/zfxxgknb/a.html")
    assert result.status == 200 and "年度报告".encode() in result.content
    assert recorder.connections == [("127.0.0.1", urlsplit(portal).port)]


def test_redirect_to_another_port_on_loopback_is_refused_and_never_connects(
    portal: str, guarded: tuple[Fetcher, RecordingTransport], canary: tuple[int, Any]
) -> None:
    fetcher, recorder = guarded
    canary_port, reached = canary
    with capture_logs() as logs, pytest.raises(FetchRejected, match=r"SSRF guard.*loopback"):
        fetcher.fetch(f"{portal}/redirect?to=http://127.0.0.1:{canary_port}/admin")
    assert not reached()
    assert recorder.connections == [("127.0.0.1", urlsplit(portal).port)]  # the portal only
    refused = [e for e in logs if e["event"] == "address_refused"]
    assert refused and refused[0]["port"] == canary_port and refused[0]["reason"] == "loopback"


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://10.0.0.1/", "private"),
        ("http://169.254.169.254/latest/meta-data/iam/", "cloud metadata endpoint"),
        ("http://intranet.xx.gov.cn/zfxxgknb/", "private"),  # a name resolving to 10.0.0.1
        ("http://2130706433:{canary}/", "loopback"),  # 127.0.0.1 spelled as one number
    ],
)
def test_redirects_to_private_and_metadata_addresses_are_refused_before_connecting(
    portal: str,
    guarded: tuple[Fetcher, RecordingTransport],
    canary: tuple[int, Any],
    target: str,
    reason: str,
) -> None:
    fetcher, recorder = guarded
    canary_port, reached = canary
    target = target.format(canary=canary_port)
    with capture_logs() as logs, pytest.raises(FetchRejected, match="SSRF guard") as caught:
        fetcher.fetch(f"{portal}/redirect?to={target}")
    assert reason in caught.value.message
    assert recorder.connections == [("127.0.0.1", urlsplit(portal).port)]  # no attempt beyond the portal
    assert not reached()
    assert any(e["event"] == "address_refused" and e["reason"] == reason for e in logs)
    assert any(e["event"] == "page_fetch_failed" and e["error"] == "fetch_rejected" for e in logs)


def test_a_start_url_on_a_private_address_is_refused_too(guarded: tuple[Fetcher, RecordingTransport]) -> None:
    fetcher, recorder = guarded
    with pytest.raises(FetchRejected, match="SSRF guard"):
        fetcher.fetch("http://10.0.0.1/zfxxgknb/")
    assert recorder.connections == []
