"""Webhook endpoints go through the crawler's SSRF guard: a subscription cannot make the
relay post to loopback, private or metadata addresses unless they are allow-listed."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from worker.alerts.webhooks import HttpxWebhookSink


class _Counting(BaseHTTPRequestHandler):
    hits = 0

    def do_POST(self) -> None:
        type(self).hits += 1
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver():
    _Counting.hits = 0
    server = HTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_loopback_receiver_is_refused_without_allow_list(receiver):
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    response = HttpxWebhookSink().send(url, b"{}", {})
    assert not response.delivered
    assert response.status_code is None
    assert response.error and response.error.startswith("refused:")
    assert _Counting.hits == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/hook",
        "http://[::1]:9/hook",
        "http://2130706433/",
    ],
)
def test_private_and_metadata_endpoints_are_refused_before_connecting(url, monkeypatch):
    def no_connect(*args: object, **kwargs: object) -> None:
        raise AssertionError("the guard let a connection through")

    monkeypatch.setattr(socket, "create_connection", no_connect)
    response = HttpxWebhookSink().send(url, b"{}", {})
    assert response.error and response.error.startswith("refused:")


def test_allow_listed_receiver_gets_the_post(receiver):
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    response = HttpxWebhookSink(allow=["127.0.0.1"]).send(url, b"{}", {})
    assert response.delivered
    assert _Counting.hits == 1
