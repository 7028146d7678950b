"""Kill the relay (SIGKILL) in the middle of 1,000 events, restart it: nothing is lost.

Real PostgreSQL, real Redis, a real webhook receiver on 127.0.0.1 that
verifies every signature; the relay runs as its own process (``xxgk relay``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis as redis_lib
import sqlalchemy as sa
from sqlmodel import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.store.engine import make_engine, open_store
from shared.store.models import Delivery, OutboxEvent
from shared.store.outbox import new_webhook_secret
from tests.store_support import add_synthetic_events
from worker.alerts.stream import RedisEventStream

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EVENTS = 1000
SECRET = new_webhook_secret()


class Receiver:
    """Records each webhook-id it gets and whether its signature verified; answers 200 a little slowly."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[str, bool]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                try:
                    Webhook(SECRET).verify(body, dict(self.headers.items()))
                    verified = True
                except WebhookVerificationError:
                    verified = False
                time.sleep(0.003)  # a real receiver takes a moment: the kill lands mid-run
                with receiver.lock:
                    receiver.received.append((self.headers.get("webhook-id", ""), verified))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pg_store_url(pg_url):
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{pg_url}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def start_relay(env: dict[str, str], stream: str, cwd: str, log_path: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-c",
        "from worker.cli import main; main()",
        "relay",
        "--drain",
        "--batch",
        "25",
        "--interval",
        "0.1",
        "--lease-s",
        "1",
        "--stream",
        stream,
    ]
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)


def test_sigkill_mid_batch_loses_no_event(pg_store_url, redis_url, tmp_path):
    engine, session_factory = open_store(pg_store_url)
    client = redis_lib.Redis.from_url(redis_url)
    stream = f"xxgk:events:test:{uuid.uuid4().hex[:8]}"
    receiver = Receiver()
    try:
        ids = set(add_synthetic_events(session_factory, EVENTS))
        env = {
            **os.environ,
            "XXGK_DATABASE_URL": pg_store_url,
            "XXGK_REDIS_URL": redis_url,
            "XXGK_WEBHOOK_URLS": receiver.url,
            "XXGK_WEBHOOK_ALLOW": "127.0.0.1",  # the test receiver is on loopback
            "XXGK_WEBHOOK_SECRET": SECRET,
            "PYTHONPATH": os.getcwd(),
        }
        log_path = str(tmp_path / "relay.log")
        first = start_relay(env, stream, str(tmp_path), log_path)
        deadline = time.monotonic() + 60
        while receiver.count() < 250 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        at_kill = (receiver.count(), client.xlen(stream))
        assert first.returncode == -signal.SIGKILL, Path(log_path).read_text()
        assert 0 < at_kill[0] < EVENTS and 0 < at_kill[1] < EVENTS, f"not killed mid-run: {at_kill}"

        second = start_relay(env, stream, str(tmp_path), log_path)
        assert second.wait(120) == 0, Path(log_path).read_text()

        in_stream = [m["id"] for _, m in RedisEventStream(client, stream).iter_all()]
        assert set(in_stream) == ids  # every id at least once (duplicates allowed: at-least-once)
        with receiver.lock:
            received = list(receiver.received)
        assert {event_id for event_id, _ in received} == ids
        assert all(verified for _, verified in received)
        with session_factory() as session:
            assert session.exec(select(OutboxEvent).where(OutboxEvent.published_at.is_(None))).all() == []
            statuses = {d.status for d in session.exec(select(Delivery)).all()}
            assert statuses == {"delivered"}
        print(
            f"\nrelay SIGKILLed after {at_kill[0]} webhooks / {at_kill[1]} stream entries; after restart: "
            f"{len(in_stream)} stream entries for {len(ids)} ids, {len(received)} webhooks for {len(ids)} ids"
        )
    finally:
        receiver.close()
        client.delete(stream)
        client.close()
        engine.dispose()
