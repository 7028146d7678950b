"""``python -m bench.simweb``: serve a simulated government web until stopped or a bound is reached.

    python -m bench.simweb --hosts 50 --reports 40 --port 0 --max-seconds 900 --log /tmp/simweb.jsonl

Prints ``READY port=P control=C`` once every listener is up; the control API
(:mod:`bench.simweb.server`) serves the request log, the ground truth and faults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bench.simweb.portal import PortalConfig, build_portal
from bench.simweb.server import Fault, SimServer, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simweb", description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--reports", type=int, default=20, help="reports per host")
    parser.add_argument("--page-size", type=int, default=15, help="reports per list page")
    parser.add_argument("--network", default="127.0.1", help="host i listens on NETWORK.(i+1); loopback only")
    parser.add_argument("--port", type=int, default=0, help="one port for every host (0: any free port)")
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--log", help="write the request log here (JSON lines) on exit")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        help='a fault as JSON, e.g. \'{"host": "127.0.1.3", "kind": "status", "status": 429, '
        '"retry_after": "30"}\' (repeatable)',
    )
    parser.add_argument("--config", help="PortalConfig overrides as JSON (e.g. '{\"crawl_delay_s\": 3}')")
    args = parser.parse_args(argv)

    overrides = json.loads(args.config) if args.config else {}
    config = PortalConfig(
        hosts=args.hosts,
        reports_per_host=args.reports,
        list_page_size=args.page_size,
        port=args.port,
        network=args.network,
        **overrides,
    )
    server = SimServer(
        build_portal(config),
        control_port=args.control_port,
        max_seconds=args.max_seconds,
        max_requests=args.max_requests,
        log_path=args.log,
    )
    for text in args.fault:
        spec = json.loads(text)
        server.faults.setdefault(spec["host"], []).append(Fault.from_dict(spec))
    reason = asyncio.run(serve(server))
    print(f"STOPPED {reason}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
