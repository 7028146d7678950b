"""The simulated government web's HTTP server: one listener per loopback host, a request log, faults.

One asyncio loop serves every host of a :class:`~bench.simweb.portal.Portal` (one listening
socket per address, all on one port) plus a control listener on ``127.0.0.1``. Everything a
benchmark concludes comes from :class:`RequestLog` — what the *server* saw: per request the
host, path, arrival and completion times, how many requests that host was already serving
(``in_flight``), the status, the bytes and whether it was conditional. Never from a crawler's
own counters.

Faults are per host, set on demand through the control API (or ``--fault`` at start), and
consumed request by request: ``status`` (429 with ``Retry-After``, 503 bursts …),
``challenge_412`` (瑞数-style script and cookie), ``challenge_521`` (加速乐), ``block_200`` (a WAF
page with status 200), ``trickle`` (the body at a few bytes per second), ``delay`` (a slow
answer), ``reset`` (TCP RST after the request) and ``hang`` (no answer; the connection is held
until the client gives up or ``max_hang_s`` passes).

Bounded: the server exits after ``max_seconds`` or ``max_requests``, whichever comes first,
and binds loopback addresses only.

Control API (JSON, ``127.0.0.1:<control port>``)::

    GET  /health                  {"ok": true, "requests": n}
    GET  /truth                   the portal's ground truth (hosts, pages, reports, expected anomalies)
    GET  /log?since=SEQ           {"next": SEQ', "entries": [...]}; entries are :data:`LOG_FIELDS` lists
    POST /log/reset               forget the log (a new measurement phase)
    GET  /faults, POST /faults    list / add faults: {"host": "127.0.1.3", "kind": "status", "status": 429,
                                  "retry_after": "30", "count": 1, "path_prefix": null}
    DELETE /faults                clear every fault
    POST /stop                    exit
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.simweb.portal import HostSite, Page, Portal

# the columns of one log entry, in order (entries travel as lists to keep the log small)
LOG_FIELDS: tuple[str, ...] = (
    "seq",
    "host",
    "path",
    "method",
    "status",
    "arrived",
    "finished",
    "in_flight",
    "bytes",
    "conditional",
    "fault",
    "ua",
)
MAX_HEAD_BYTES = 16 * 1024
IDLE_TIMEOUT_S = 30.0

CHALLENGE_412 = (
    b'<!DOCTYPE html><html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
    b'<script type="text/javascript" r="m">$_ts=window[\'$_ts\'];if(!$_ts)$_ts={};$_ts.nsd=60122;'
    b'$_ts.cd="qqzErpAlEGqGcGVzqqzqqq";</script>'
    b'<script type="text/javascript" charset="utf-8" src="/4QbVtADbnLVIc/c.FxJzG50F.js" r="m"></script>'
    b"</head><body></body></html>"
)
CHALLENGE_521 = (
    b"<html><body><script>document.cookie=('_')+('_')+('j')+('s')+('l')+('_')+('c')+('l')+('e')+('a')+('r')"
    b"+('a')+('n')+('c')+('e')+('=')+(+new Date())+'|0|'+'abc';"
    b"location.href=location.pathname+location.search"
    b"</script></body></html>"
)
BLOCK_200 = (
    "<html><head><meta charset='utf-8'><title>网站防火墙</title></head><body>"
    "<h1>您的访问被拦截</h1><p>您的请求带有不合法参数，已被网站管理员设置拦截！（安全狗）</p></body></html>"
).encode()
REASONS = {
    200: "OK",
    304: "Not Modified",
    404: "Not Found",
    412: "Precondition Failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    521: "Web Server Is Down",
}


@dataclass
class Fault:
    """One injected misbehaviour of a host; ``count`` requests (``None``: until cleared)."""

    kind: str  # status | challenge_412 | challenge_521 | block_200 | trickle | delay | reset | hang
    count: int | None = 1
    status: int = 503
    retry_after: str | None = None
    path_prefix: str | None = None
    rate_bps: int = 64  # trickle
    delay_s: float = 5.0  # delay
    max_hang_s: float = 120.0  # hang

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fault = cls(**known)
        if fault.kind not in (
            "status",
            "challenge_412",
            "challenge_521",
            "block_200",
            "trickle",
            "delay",
            "reset",
            "hang",
        ):
            raise ValueError(f"unknown fault kind {fault.kind!r}")
        return fault

    def applies(self, path: str) -> bool:
        return self.path_prefix is None or path.startswith(self.path_prefix)


@dataclass
class RequestLog:
    entries: list[list[Any]] = field(default_factory=list)
    seq: int = 0
    total: int = 0

    def add(self, entry: list[Any]) -> None:
        self.entries.append(entry)
        self.total += 1

    def since(self, seq: int) -> list[list[Any]]:
        # entries are appended in completion order with increasing seq numbers
        lo, hi = 0, len(self.entries)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.entries[mid][0] < seq:
                lo = mid + 1
            else:
                hi = mid
        return self.entries[lo:]


class SimServer:
    def __init__(
        self,
        portal: Portal,
        *,
        control_port: int = 0,
        max_seconds: float = 3600.0,
        max_requests: int = 1_000_000,
        log_path: str | None = None,
    ) -> None:
        for host in portal.hosts:
            if not ipaddress.ip_address(host.address).is_loopback:
                raise ValueError(f"refusing to serve on {host.address}: loopback only")
        self.portal = portal
        self.control_port = control_port
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.log_path = log_path
        self.log = RequestLog()
        self.faults: dict[str, list[Fault]] = {}
        self.in_flight: dict[str, int] = {}
        self.stopped = asyncio.Event()
        self.stop_reason = ""
        self._seq = 0
        self._servers: list[asyncio.AbstractServer] = []
        self._truth_json: bytes | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> tuple[int, int]:
        port = self.portal.config.port
        for host in self.portal.hosts:
            server = await asyncio.start_server(
                lambda r, w, h=host: self._serve_connection(r, w, h),
                host.address,
                port,
                reuse_address=True,
                backlog=512,
            )
            if port == 0:
                port = server.sockets[0].getsockname()[1]
            self._servers.append(server)
        self.portal.config = type(self.portal.config)(**{**vars(self.portal.config), "port": port})
        control = await asyncio.start_server(
            self._serve_control, "127.0.0.1", self.control_port, reuse_address=True
        )
        self._servers.append(control)
        self.control_port = control.sockets[0].getsockname()[1]
        return port, self.control_port

    async def run(self) -> str:
        loop = asyncio.get_running_loop()
        loop.call_later(self.max_seconds, self._stop, f"max_seconds={self.max_seconds:g} reached")
        await self.stopped.wait()
        for server in self._servers:
            server.close()
        self.save_log()
        return self.stop_reason

    def _stop(self, reason: str) -> None:
        if not self.stopped.is_set():
            self.stop_reason = reason
            self.stopped.set()

    def save_log(self) -> None:
        if not self.log_path:
            return
        with open(self.log_path, "w", encoding="utf-8") as out:
            for entry in self.log.entries:
                out.write(json.dumps(dict(zip(LOG_FIELDS, entry, strict=True)), ensure_ascii=False) + "\n")

    # -- the simulated hosts ------------------------------------------------------------------

    async def _read_head(self, reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]] | None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT_S)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > 0:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                await reader.readexactly(min(int(length), 1 << 20))
        return method.upper(), target, headers

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: HostSite
    ) -> None:
        try:
            while not self.stopped.is_set():
                request = await self._read_head(reader)
                if request is None:
                    break
                keep_alive = await self._serve_request(writer, host, *request)
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def _take_fault(self, address: str, path: str) -> Fault | None:
        faults = self.faults.get(address)
        if not faults:
            return None
        for fault in faults:
            if fault.applies(path):
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        faults.remove(fault)
                return fault
        return None

    async def _serve_request(
        self, writer: asyncio.StreamWriter, host: HostSite, method: str, target: str, headers: dict[str, str]
    ) -> bool:
        arrived = time.time()
        self._seq += 1
        seq = self._seq
        address = host.address
        in_flight = self.in_flight.get(address, 0)
        self.in_flight[address] = in_flight + 1
        if target.startswith(("http://", "https://")):  # absolute form: keep path and query
            parts = urlsplit(target)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        path = target
        conditional = "if-none-match" in headers or "if-modified-since" in headers
        keep_alive = headers.get("connection", "").lower() != "close"
        status, sent, fault_kind = 0, 0, None
        try:
            fault = self._take_fault(address, path)
            fault_kind = fault.kind if fault else None
            status, sent, keep_alive = await self._respond(
                writer, host, method, path, headers, fault, keep_alive
            )
        except (ConnectionError, asyncio.CancelledError):
            keep_alive = False
        finally:
            self.in_flight[address] -= 1
            self.log.add(
                [
                    seq,
                    address,
                    path,
                    method,
                    status,
                    arrived,
                    time.time(),
                    in_flight,
                    sent,
                    conditional,
                    fault_kind,
                    headers.get("user-agent", "")[:60],
                ]
            )
            if self.log.total >= self.max_requests:
                self._stop(f"max_requests={self.max_requests} reached")
        return keep_alive

    async def _respond(  # noqa: PLR0917 - one request's parts, called from one place
        self,
        writer: asyncio.StreamWriter,
        host: HostSite,
        method: str,
        path: str,
        headers: dict[str, str],
        fault: Fault | None,
        keep_alive: bool,
    ) -> tuple[int, int, bool]:
        if fault is not None:
            if fault.kind == "reset":
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return 0, 0, False
            if fault.kind == "hang":
                with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                    await asyncio.wait_for(self.stopped.wait(), fault.max_hang_s)
                writer.transport.abort()
                return 0, 0, False
            if fault.kind == "status":
                extra = [("Retry-After", fault.retry_after)] if fault.retry_after else []
                body = f"<html><body><h1>{fault.status}</h1></body></html>".encode()
                return await self._send(writer, fault.status, body, "text/html", extra, method, keep_alive)
            if fault.kind == "challenge_412":
                extra = [("Set-Cookie", "FSSBBIl1UgzbN7N80S=qUGbZ3mD; Path=/; HttpOnly")]
                return await self._send(writer, 412, CHALLENGE_412, HTML_TYPE, extra, method, keep_alive)
            if fault.kind == "challenge_521":
                extra = [("Set-Cookie", "__jsluid_h=8d2b1e0c; max-age=31536000; path=/; HttpOnly")]
                return await self._send(writer, 521, CHALLENGE_521, HTML_TYPE, extra, method, keep_alive)
            if fault.kind == "block_200":
                return await self._send(writer, 200, BLOCK_200, HTML_TYPE, [], method, keep_alive)
            if fault.kind == "delay":
                await asyncio.sleep(fault.delay_s)
        page = host.lookup(path)
        if page is None:
            return await self._send(
                writer, 404, b"<html><body>404</body></html>", HTML_TYPE, [], method, keep_alive
            )
        extra: list[tuple[str, str]] = []
        if host.validators:
            extra = [("ETag", page.etag), ("Last-Modified", page.last_modified_http)]
            if _not_modified(page, headers):
                return await self._send(writer, 304, b"", None, extra, method, keep_alive)
        rate = fault.rate_bps if fault is not None and fault.kind == "trickle" else None
        return await self._send(
            writer, 200, page.body, page.content_type, extra, method, keep_alive, rate_bps=rate
        )

    async def _send(  # noqa: PLR0917 - the parts of one response
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        content_type: str | None,
        extra: list[tuple[str, str]],
        method: str,
        keep_alive: bool,
        *,
        rate_bps: int | None = None,
    ) -> tuple[int, int, bool]:
        lines = [
            f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}",
            f"Date: {formatdate(usegmt=True)}",
            "Server: simweb",
        ]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        if status != 304:
            lines.append(f"Content-Length: {len(body)}")
        lines += [f"{name}: {value}" for name, value in extra]
        lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        payload = b"" if method == "HEAD" or status == 304 else body
        if rate_bps:
            step = max(1, rate_bps // 4)
            for start in range(0, len(payload), step):
                writer.write(payload[start : start + step])
                await writer.drain()
                await asyncio.sleep(0.25)
        else:
            writer.write(payload)
            await writer.drain()
        return status, len(payload), keep_alive

    # -- control ------------------------------------------------------------------------------

    async def _serve_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await self._read_head_with_body(reader)
            if request is None:
                return
            method, target, body = request
            status, answer = self._control(method, target, body)
            payload = (
                json.dumps(answer, ensure_ascii=False).encode() if not isinstance(answer, bytes) else answer
            )
            writer.write(
                f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _read_head_with_body(self, reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT_S)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        length = 0
        for line in lines[1:]:
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1].strip() or 0)
        body = await reader.readexactly(length) if length else b""
        return method.upper(), target, body

    def _control(self, method: str, target: str, body: bytes) -> tuple[int, Any]:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        route = (method, parts.path)
        if route == ("GET", "/health"):
            return 200, {"ok": True, "requests": self.log.total, "in_flight": sum(self.in_flight.values())}
        if route == ("GET", "/truth"):
            if self._truth_json is None:
                self._truth_json = json.dumps(self.portal.truth(), ensure_ascii=False).encode()
            return 200, self._truth_json
        if route == ("GET", "/log"):
            since = int(query.get("since", ["0"])[0])
            entries = self.log.since(since)
            return 200, {
                "next": (entries[-1][0] + 1) if entries else since,
                "fields": LOG_FIELDS,
                "entries": entries,
            }
        if route == ("POST", "/log/reset"):
            self.log.entries.clear()
            return 200, {"ok": True, "next": self._seq + 1}
        if route == ("GET", "/faults"):
            return 200, {host: [vars(f) for f in faults] for host, faults in self.faults.items()}
        if route == ("POST", "/faults"):
            specs = json.loads(body or b"[]")
            for spec in specs if isinstance(specs, list) else [specs]:
                self.faults.setdefault(spec["host"], []).append(Fault.from_dict(spec))
            return 200, {"ok": True}
        if route == ("DELETE", "/faults"):
            self.faults.clear()
            return 200, {"ok": True}
        if route == ("POST", "/stop"):
            asyncio.get_running_loop().call_soon(self._stop, "stopped by control")
            return 200, {"ok": True}
        return 404, {"error": f"no route {method} {parts.path}"}


HTML_TYPE = "text/html; charset=utf-8"


def _not_modified(page: Page, headers: dict[str, str]) -> bool:
    tags = headers.get("if-none-match")
    if tags is not None:
        return tags.strip() == "*" or page.etag in [t.strip() for t in tags.split(",")]
    since = headers.get("if-modified-since")
    if since:
        try:
            return page.last_modified <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


async def serve(server: SimServer) -> str:
    port, control = await server.start()
    print(f"READY port={port} control={control}", flush=True)
    sys.stdout.flush()
    return await server.run()
