"""SSRF at scale: hundreds of hostile targets, 0 connections to a canary.

Every attempt aims at an address the crawler must never reach — loopback in every spelling
(decimal, octal, hex, short forms, trailing dots, full-width and circled digits, IPv6-mapped,
IPv4-compatible, NAT64, 6to4), ``localhost`` variants, private/link-local/metadata ranges, and
government-looking names that a patched resolver points at those ranges (DNS rebinding
included) — directly, by one redirect from the allow-listed portal, through redirect chains of
the portal's own hops, scheme-relative and userinfo tricks. Each goes through the crawler's
real :class:`~worker.crawler.http.Fetcher` (with a crawl scope that admits the target, so that
the SSRF guard is what has to refuse it) and through a bare ``httpx`` client on the
:class:`~worker.crawler.ssrf.GuardedTransport` following redirects itself.

Two independent witnesses, neither the crawler's own account:

- **canaries**: listeners on every loopback address a target spells (``127.0.0.1``, ``127.0.0.2``,
  ``127.1.2.3``, ``::1``), on the port the targets name — any TCP connection to them is counted;
- **a tripwire** on ``socket.create_connection``: every connect the process makes is recorded,
  and any connect that is not to the portal or a canary is refused *before* it happens, so no
  packet ever leaves loopback even if the guard failed.

Names are answered by a patched resolver only: no real DNS lookup is made.
"""

from __future__ import annotations

import contextlib
import ipaddress
import select
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from shared.errors import XxgkError
from shared.settings import Settings
from worker.crawler.http import MAX_REDIRECTS, Fetcher
from worker.crawler.politeness import LocalPolitenessGate
from worker.crawler.ssrf import AddressPolicy, GuardedTransport

REAL_GETADDRINFO = socket.getaddrinfo
REAL_CREATE_CONNECTION = socket.create_connection
CANARY_V4 = ("127.0.0.1", "127.0.0.2", "127.1.2.3")
CANARY_V6 = ("::1",)


# --------------------------------------------------------------------------- targets


def loopback_spellings(port: int) -> list[str]:
    """Hosts (as they appear in a URL's authority) that all mean a loopback canary address."""
    hosts = [
        "127.0.0.1",
        "127.1",
        "127.0.1",
        "2130706433",
        "017700000001",
        "0x7f000001",
        "0x7F000001",
        "0x7f.1",
        "0x7f.0.0.1",
        "0x7f.0x0.0x0.0x1",
        "0177.0.0.1",
        "0177.0000.0000.0001",
        "0177.1",
        "127.000.000.001",
        "127.0.0.1.",
        "0x7f.0.0.1.",
        "127.0.0.2",
        "2130706434",
        "0x7f000002",
        "0177.0.0.02",
        "127.0.2",
        "127.1.2.3",
        "0x7f.0x1.0x2.0x3",
        "0177.01.02.03",
        "2130772483",
        "127.66051",
        "[::1]",
        "[0:0:0:0:0:0:0:1]",
        "[::0:1]",
        "[0000::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[0:0:0:0:0:ffff:127.0.0.1]",
        "[::ffff:127.0.0.2]",
        "[::127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "[64:ff9b::127.0.0.1]",
        "[2002:7f00:1::]",
        "[2002:7f00:1::1]",
        "１２７.０.０.１",
        "127。0。0。1",
        "①②⑦.⓪.⓪.①",
        "127.0.0.1%2e",
        "%31%32%37.0.0.1",
        "localhost",
        "LOCALHOST",
        "localhost.",
        "LocalHost",
        "sub.localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
        "127.0.0.1.nip.io",
        "loopback.xx.gov.cn",
        "www.localtest.me",
        "0",
        "0.0.0.0",
        "[::]",
        "0x0",
        "00",
    ]
    return [f"{host}:{port}" for host in hosts]


NON_LOOPBACK = [
    "10.0.0.1",
    "10.255.255.254",
    "012.0.0.1",
    "0xa.0.0.1",
    "167772161",
    "10.1",
    "172.16.0.1",
    "172.31.255.255",
    "0xac.0x10.0.1",
    "2886729729",
    "192.168.0.1",
    "192.168.1.1",
    "0xc0.0xa8.0.1",
    "3232235521",
    "0300.0250.0.1",
    "169.254.169.254",
    "2852039166",
    "0xa9fea9fe",
    "0251.0376.0251.0376",
    "169.254.170.2",
    "100.100.100.200",
    "100.64.0.1",
    "192.0.0.1",
    "198.18.0.1",
    "224.0.0.1",
    "255.255.255.255",
    "240.0.0.1",
    "192.0.2.1",
    "[::ffff:10.0.0.1]",
    "[::ffff:169.254.169.254]",
    "[::ffff:a9fe:a9fe]",
    "[fd00:ec2::254]",
    "[fc00::1]",
    "[fe80::1]",
    "[fec0::1]",
    "[ff02::1]",
    "[64:ff9b::a00:1]",
    "[2001:db8::1]",
    "[2001::1]",
    "[100::1]",
    "metadata.google.internal",
    "metadata.xx.gov.cn",
    "intranet.xx.gov.cn",
    "oa.xx.gov.cn",
    "mixed.xx.gov.cn",
    "v6private.xx.gov.cn",
]


def resolver_table(canary_port: int) -> dict[str, list[str]]:
    """What the patched resolver answers: government-looking names pointing inside."""
    return {
        "localhost": ["127.0.0.1", "::1"],
        "localhost.": ["127.0.0.1"],
        "sub.localhost": ["127.0.0.1"],
        "localhost.localdomain": ["127.0.0.1"],
        "ip6-localhost": ["::1"],
        "ip6-loopback": ["::1"],
        "127.0.0.1.nip.io": ["127.0.0.1"],
        "loopback.xx.gov.cn": ["127.0.0.2"],
        "www.localtest.me": ["127.0.0.1"],
        "metadata.google.internal": ["169.254.169.254"],
        "metadata.xx.gov.cn": ["169.254.169.254"],
        "intranet.xx.gov.cn": ["10.0.0.5"],
        "oa.xx.gov.cn": ["192.168.10.10"],
        "mixed.xx.gov.cn": ["93.184.216.34", "127.0.0.1"],
        "v6private.xx.gov.cn": ["fd12:3456::1"],
    }


@dataclass
class Attempt:
    how: str  # direct | redirect | chain-N | too-long-chain | scheme-relative | userinfo | fragment
    url: str


def attempts(portal: str, canary_port: int) -> list[Attempt]:
    targets = [f"http://{host}/admin" for host in loopback_spellings(canary_port)]
    targets += [f"http://{host}/latest/meta-data/" for host in NON_LOOPBACK]
    targets += [f"http://{host}:{canary_port}/x" for host in NON_LOOPBACK if host.endswith(".xx.gov.cn")]
    targets += [
        f"https://127.0.0.1:{canary_port}/",
        f"http://[::1]:{canary_port}/",
        f"https://localhost:{canary_port}/",
    ]
    out: list[Attempt] = []
    for i, target in enumerate(targets):
        out.append(Attempt("direct", target))
        out.append(Attempt("redirect", f"{portal}/redirect?to={quote(target, safe='')}"))
        hops = 2 + i % (MAX_REDIRECTS - 1)  # chains that stay within the redirect budget
        out.append(Attempt(f"chain-{hops}", f"{portal}/chain?n={hops - 1}&to={quote(target, safe='')}"))
    for target in targets[::7]:
        out.append(
            Attempt("too-long-chain", f"{portal}/chain?n={MAX_REDIRECTS + 2}&to={quote(target, safe='')}")
        )
    tricky = [
        f"//127.0.0.1:{canary_port}/",
        f"//[::1]:{canary_port}/",
        f"//2130706433:{canary_port}/",
        f"http://www.xx.gov.cn@127.0.0.1:{canary_port}/",
        f"http://127.0.0.1:{canary_port}#@www.xx.gov.cn/",
        f"http://127.0.0.1:{canary_port}\\@www.xx.gov.cn/",
        f"http://www.xx.gov.cn:80@[::1]:{canary_port}/",
        f"http:/127.0.0.1:{canary_port}/",
        f"HTTP://127.0.0.1:{canary_port}/",
        f"http://127.0.0.1:{canary_port}/%2e%2e/",
        f"http://[::ffff:127.0.0.1]:{canary_port}/",
        f"http://0x7f.1:{canary_port}/",
        f"gopher://127.0.0.1:{canary_port}/_x",
        "file:///etc/passwd",
        f"ftp://127.0.0.1:{canary_port}/",
        f"dict://127.0.0.1:{canary_port}/",
    ]
    for target in tricky:
        out.append(Attempt("redirect-trick", f"{portal}/redirect?to={quote(target, safe='')}"))
    return out


# --------------------------------------------------------------------------- witnesses


class PortalHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path == "/redirect":
            self._redirect(query["to"][0])
            return
        if parts.path == "/chain":
            hops = int(query["n"][0])
            target = query["to"][0]
            if hops <= 0:
                self._redirect(target)
            else:
                self._redirect(f"/chain?n={hops - 1}&to={quote(target, safe='')}")
            return
        body = b"<html><body>ok</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        # servers in the wild send non-ASCII Locations as raw UTF-8: so do we
        self._headers_buffer.append(b"Location: " + location.encode("utf-8") + b"\r\n")  # type: ignore[attr-defined]
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Canaries:
    port: int
    listeners: list[socket.socket] = field(default_factory=list)
    hits: list[tuple[str, Any]] = field(default_factory=list)

    def drain(self) -> None:
        readable, _, _ = select.select(self.listeners, [], [], 0)
        for listener in readable:
            with contextlib.suppress(BlockingIOError):
                connection, peer = listener.accept()
                self.hits.append((listener.getsockname()[0], peer))
                connection.close()


@pytest.fixture
def canaries() -> Iterator[Canaries]:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    found = Canaries(port)
    try:
        for address in CANARY_V4 + CANARY_V6:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            listener = socket.socket(family, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind((address, port))
            except OSError:
                listener.close()
                if family == socket.AF_INET6:
                    continue  # no IPv6 loopback here: the tripwire still covers ::1
                raise
            listener.listen(64)
            listener.setblocking(False)
            found.listeners.append(listener)
        yield found
    finally:
        for listener in found.listeners:
            listener.close()


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


@dataclass
class Tripwire:
    """Records every outgoing connect; refuses (before any packet) those not to the portal or a canary."""

    portal: tuple[str, int]
    canary_port: int
    connects: list[tuple[str, int]] = field(default_factory=list)
    refused: list[tuple[str, int]] = field(default_factory=list)

    def create_connection(self, address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        host, port = str(address[0]), int(address[1])
        self.connects.append((host, port))
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            ip = None
        to_canary = port == self.canary_port and ip is not None and ip.is_loopback
        if (host, port) != self.portal and not to_canary:
            self.refused.append((host, port))
            raise ConnectionRefusedError(f"tripwire: {host}:{port} is neither the portal nor a canary")
        return REAL_CREATE_CONNECTION(address, *args, **kwargs)

    def beyond_portal(self) -> list[tuple[str, int]]:
        return [c for c in self.connects if c != self.portal]


def patched_resolver(table: dict[str, list[str]]) -> Any:
    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(name.split("%", 1)[0])
            return REAL_GETADDRINFO(host, port, *args, **kwargs)  # a literal: no lookup happens
        answers = table.get(name.lower())
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (patched resolver)")
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in answers
        ]

    return getaddrinfo


# --------------------------------------------------------------------------- the run


@pytest.mark.slow
def test_hundreds_of_ssrf_attempts_never_reach_a_canary(
    portal: str, canaries: Canaries, monkeypatch: pytest.MonkeyPatch
) -> None:
    portal_port = urlsplit(portal).port
    assert portal_port is not None
    tripwire = Tripwire(("127.0.0.1", portal_port), canaries.port)
    monkeypatch.setattr(socket, "getaddrinfo", patched_resolver(resolver_table(canaries.port)))
    monkeypatch.setattr(socket, "create_connection", tripwire.create_connection)
    plan = attempts(portal, canaries.port)
    hosts = sorted({urlsplit(a.url).hostname or "" for a in plan} | set(resolver_table(canaries.port)))
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        ssrf_allow=[f"127.0.0.1:{portal_port}"],
        # the crawl scope admits every target, so that the SSRF guard is what must refuse them
        extra_allowed_domains=[h for h in hosts if h],
        fetch_timeout_s=2.0,
    )
    fetcher = Fetcher(
        settings, address_policy=AddressPolicy(settings.ssrf_allow), gate=LocalPolitenessGate(0.0)
    )
    bare = httpx.Client(
        transport=GuardedTransport(AddressPolicy(settings.ssrf_allow)),
        follow_redirects=True,
        timeout=2.0,
        trust_env=False,
        max_redirects=MAX_REDIRECTS,
    )
    outcomes: dict[str, int] = {}
    untyped: list[tuple[str, str]] = []
    fetched: list[str] = []
    try:
        for attempt in plan:
            try:
                result = fetcher.fetch(attempt.url)
                # ``http:/host`` is a path on the portal to urljoin: harmless, but nothing else is
                if urlsplit(result.final_url).netloc != urlsplit(portal).netloc:
                    fetched.append(result.final_url)
                outcomes["fetched_from_portal"] = outcomes.get("fetched_from_portal", 0) + 1
            except XxgkError as exc:
                outcomes[exc.code] = outcomes.get(exc.code, 0) + 1
            except Exception as exc:
                untyped.append((attempt.url, f"{type(exc).__name__}: {exc}"))
            with contextlib.suppress(Exception):  # any refusal is fine on the bare client
                bare.get(attempt.url)
            canaries.drain()
    finally:
        fetcher.close()
        bare.close()
    canaries.drain()

    attempts_made = 2 * len(plan)
    kinds: dict[str, int] = {}
    for attempt in plan:
        kind = attempt.how.split("-")[0] if attempt.how.startswith("chain") else attempt.how
        kinds[kind] = kinds.get(kind, 0) + 1
    print(
        f"ssrf-scale: {attempts_made} attempts ({len(plan)} URLs × fetcher and bare transport) {kinds}; "
        f"fetcher outcomes {outcomes}; canary connections {len(canaries.hits)}; "
        f"connects beyond the portal {len(tripwire.beyond_portal())}"
    )
    assert attempts_made >= 300, attempts_made
    assert canaries.hits == [], f"connections reached a canary: {canaries.hits[:10]}"
    assert tripwire.beyond_portal() == [], (
        f"connects beyond the portal: {sorted(set(tripwire.beyond_portal()))[:20]}"
    )
    assert untyped == [], f"untyped errors from the fetcher: {untyped[:5]}"
    assert fetched == [], f"fetched off the portal: {fetched[:5]}"
    # every attempt ends in a typed error (an unparsable Location is httpx's RemoteProtocolError, which
    # the fetcher reports as a transient ``fetch_timeout``; refused either way) or on the portal itself
    assert sum(outcomes.values()) == len(plan), outcomes
