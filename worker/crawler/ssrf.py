"""The SSRF guard: which addresses the crawler may connect to, and a transport that connects only there.

A page (or a compromised government site) can link or redirect to ``127.0.0.1:6379``,
``169.254.169.254`` or an intranet host. URL strings prove nothing: ``2130706433``,
``0177.0.0.1`` and ``0x7f.1`` are all 127.0.0.1, and a public-looking name can resolve to
10.0.0.5 — or resolve to a public address for the check and to a private one for the
connection (DNS rebinding). So :class:`AddressPolicy` judges the *resolved* addresses, and
:class:`GuardedTransport` resolves once, checks, then connects to exactly the address it
checked, keeping the name in the ``Host`` header and in TLS SNI/certificate verification.

Refused: every address that is not plainly global unicast (the table :data:`SPECIAL_NETWORKS`,
then ``ipaddress``'s ``is_global`` as a catch-all), cloud metadata endpoints, and IPv4 addresses
smuggled inside IPv6 forms — unless the operator allow-listed it (``XXGK_SSRF_ALLOW``: IPs, CIDRs
or ``host[:port]``; the test portal on 127.0.0.1 is the usual case).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from shared.errors import FetchRejected, FetchTimeout, XxgkError
from shared.logging import get_logger

log = get_logger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"http": 80, "https": 443}

# Cloud instance-metadata endpoints: the prize of most SSRF attacks. Checked first so the
# reason says so (AWS/GCP/Azure/OpenStack; AWS IPv6; ECS task metadata; Alibaba Cloud).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)

# (network, reason): IANA special-purpose ranges we never crawl. Listed explicitly rather than
# trusting ipaddress.is_private alone, whose tables were wrong in older CPython patch releases
# (CVE-2024-4032).
SPECIAL_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
        ("192.0.2.0/24", "reserved (documentation)"),
        ("192.88.99.0/24", "reserved (6to4 relay)"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "reserved (benchmarking)"),
        ("198.51.100.0/24", "reserved (documentation)"),
        ("203.0.113.0/24", "reserved (documentation)"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::ffff:0:0/96", "IPv4-mapped IPv6"),
        ("::/96", "IPv4-compatible IPv6"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "reserved (discard-only)"),
        ("2001::/23", "reserved (IETF protocol assignments, Teredo)"),
        ("2001:db8::/32", "reserved (documentation)"),
        ("2002::/16", "6to4 (embeds an IPv4 address)"),
        ("fc00::/7", "private (unique local)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)
# NAT64 well-known prefix: the last 32 bits are an IPv4 address that must itself be global
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")

# inet_aton spellings of IPv4: decimal, octal (leading 0), hex (0x), 1 to 4 parts
_LOOSE_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.I)

Resolver = Callable[..., list[tuple[Any, ...]]]


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host string spells, in any spelling a C resolver accepts, else ``None``."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _LOOSE_IPV4.match(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text.rstrip(".")))
        except OSError:
            return None
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why we must not connect to ``ip``, or ``None`` when it is plainly global unicast."""
    if ip in METADATA_ADDRESSES:
        return "cloud metadata endpoint"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return "IPv4-mapped IPv6"
    for network, reason in SPECIAL_NETWORKS:
        if ip.version == network.version and ip in network:
            return reason
    if isinstance(ip, ipaddress.IPv6Address) and ip in NAT64_PREFIX:
        embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        inner = refusal_reason(embedded)
        return f"NAT64 of a {inner} address" if inner else None
    if not ip.is_global:
        return "not globally routable"
    return None


@dataclass(frozen=True, slots=True)
class _AllowEntry:
    network: IPNetwork | None
    name: str | None
    port: int | None

    def matches(self, host: str, port: int, ip: IPAddress) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return ip.version == self.network.version and ip in self.network
        return self.name == host


def _parse_allow_entry(entry: str) -> _AllowEntry:
    text = entry.strip().lower()
    try:
        return _AllowEntry(ipaddress.ip_network(text.strip("[]"), strict=False), None, None)
    except ValueError:
        pass
    host, port = text, None
    bracketed = re.fullmatch(r"\[([0-9a-f:.]+)\]:(\d+)", text)
    if bracketed:
        host, port = bracketed.group(1), int(bracketed.group(2))
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    ip = parse_ip_literal(host)
    if ip is not None:
        return _AllowEntry(ipaddress.ip_network(ip), None, port)
    return _AllowEntry(None, host.rstrip("."), port)


class AddressPolicy:
    """Decides, after DNS resolution, whether the crawler may connect to ``host:port``.

    ``allow`` entries are IPs (``127.0.0.1``), CIDRs (``10.1.0.0/16``) or ``host[:port]``
    (``127.0.0.1:8765``, ``portal.test``, ``[::1]:8000``); an entry with a port allows that
    port only. ``resolver`` defaults to :func:`socket.getaddrinfo`, looked up at call time.
    """

    def __init__(self, allow: Iterable[str] = (), *, resolver: Resolver | None = None) -> None:
        self.allow = [_parse_allow_entry(entry) for entry in allow if entry.strip()]
        self._resolver = resolver

    def allowed_names(self) -> set[str]:
        """Hosts named by the allow-list (names and single IPs): the crawl may treat them as in scope."""
        names = {entry.name for entry in self.allow if entry.name}
        names |= {
            str(entry.network.network_address)
            for entry in self.allow
            if entry.network is not None and entry.network.num_addresses == 1
        }
        return names

    def _allow_listed(self, host: str, port: int, ip: IPAddress) -> bool:
        return any(entry.matches(host, port, ip) for entry in self.allow)

    def _resolve(self, host: str, port: int) -> list[IPAddress]:
        literal = parse_ip_literal(host)
        if literal is not None:
            return [literal]
        resolver = self._resolver or socket.getaddrinfo
        try:
            infos = resolver(host, port, 0, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            if exc.errno == socket.EAI_AGAIN:
                raise FetchTimeout(f"DNS lookup of {host} failed for now: {exc}") from exc
            raise FetchRejected(f"{host} does not resolve: {exc}") from exc
        except UnicodeError as exc:
            raise FetchRejected(f"{host} is not a valid host name") from exc
        addresses: list[IPAddress] = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise FetchRejected(f"{host} resolves to no address")
        return addresses

    def check_host(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` we may connect to; raises :class:`FetchRejected` if any is refused.

        One refused address refuses the name: a name that resolves to both a public and a
        private address is either misconfigured or an attack.
        """
        name = host.strip("[]").lower().rstrip(".")
        if not name:
            raise FetchRejected("empty host")
        addresses = self._resolve(name, port)
        for ip in addresses:
            if self._allow_listed(name, port, ip):
                continue
            reason = refusal_reason(ip)
            if reason:
                log.warning("address_refused", host=name, port=port, ip=str(ip), reason=reason)
                raise FetchRejected(f"SSRF guard: {name}:{port} resolves to {ip} ({reason})")
        return [str(ip) for ip in addresses]


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport that checks every request's address and connects only to it.

    Resolve once, check, then rewrite the request URL to the checked IP, keeping the
    original ``Host`` header and (for HTTPS) the name as SNI and for certificate checks:
    no window for DNS rebinding between the check and the connect. Keep-alive is off in
    the default inner transport, so a connection opened for one name is never reused for
    another name on the same IP.
    """

    def __init__(self, policy: AddressPolicy, inner: httpx.BaseTransport | None = None) -> None:
        self.policy = policy
        self._inner = inner or httpx.HTTPTransport(
            limits=httpx.Limits(max_keepalive_connections=0), retries=0, trust_env=False
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        scheme = request.url.scheme
        if scheme not in DEFAULT_PORTS:
            raise FetchRejected(f"scheme {scheme!r} is not fetched", source=str(request.url))
        host = request.url.raw_host.decode("ascii").lower()
        port = request.url.port or DEFAULT_PORTS[scheme]
        try:
            ip = self.policy.check_host(host, port)[0]
        except XxgkError as exc:
            exc.with_source(str(request.url), None)
            raise
        extensions = dict(request.extensions)
        if scheme == "https" and parse_ip_literal(host) is None:
            extensions["sni_hostname"] = host
        headers = request.headers.copy()
        if "host" not in headers:
            headers["Host"] = request.url.netloc.decode("ascii")
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=ip),
            headers=headers,
            stream=request.stream,
            extensions=extensions,
        )
        return self._inner.handle_request(pinned)

    def close(self) -> None:
        self._inner.close()
