"""Webhooks the Standard Webhooks way: signed body, stable id, retries with backoff.

Each request carries ``webhook-id`` (the event id: stable across retries, the
receiver's idempotency key), ``webhook-timestamp`` (this attempt) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` of ``id.timestamp.body``),
computed by the ``standardwebhooks`` package — never by hand. The body is
``{"type", "timestamp", "data"}`` with ``data`` the event's payload, the same
bytes on every retry.

Outcomes (spec §"Retries"/"Status handling"): 2xx delivered; 410 Gone dead at
once (the endpoint asked to be dropped); anything else — 3xx included
(redirects are never followed), 429/5xx, timeouts, refused connections — is
retried on :data:`RETRY_SCHEDULE_S` with ±20 % jitter (``Retry-After``
honoured when longer), until ``max_attempts`` attempts made it dead.

Secrets (``XXGK_WEBHOOK_SECRET``, a subscription's secret) come in two forms,
and receivers must derive the HMAC key by the same rule (:func:`secret_key`):

- ``whsec_<base64>`` (what ``xxgk subscriptions add`` generates), or a bare
  base64 string of a key of at least :data:`MIN_BARE_KEY_BYTES` (24, the
  Standard Webhooks minimum): the key is the base64-decoded bytes;
- any other string — ``"hunter2"`` or ``"password"`` included, although
  they happen to be valid base64 — (an operator's plain-text passphrase): the key is its raw
  UTF-8 bytes, so a receiver verifies with ``Webhook(secret.encode("utf-8"))``.

A ``whsec_`` secret whose rest is not base64 is a :class:`~shared.errors.ConfigError`
(not silently used as text: a standard receiver would decode it and disagree).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
from standardwebhooks.webhooks import Webhook

from shared.errors import ConfigError, XxgkError

# seconds to wait after attempt 1, 2, 3, …; the Standard Webhooks example schedule
RETRY_SCHEDULE_S: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
JITTER = 0.2
GONE = 410
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
# a bare (unprefixed) secret is read as base64 only when it decodes to a key this long: short
# passphrases that happen to be valid base64 ("password") stay text
MIN_BARE_KEY_BYTES = 24
DEFAULT_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    status_code: int | None  # None: no HTTP answer (timeout, refused, DNS …)
    error: str | None = None
    retry_after_s: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSink(Protocol):
    """Sends one signed request; never raises for network trouble (returns it as ``error``)."""

    def send(self, url: str, body: bytes, headers: dict[str, str]) -> WebhookResponse: ...


class HttpxWebhookSink:
    """The production sink: httpx, no redirects, no proxies from the environment.

    Webhook URLs are configuration, but a subscription can be added by anyone with CLI
    access, so every request goes through the same SSRF guard as the crawler: an endpoint
    on a private, loopback or metadata address is refused unless allow-listed
    (``XXGK_WEBHOOK_ALLOW``).
    """

    def __init__(
        self,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = "xxgk-watch-webhooks/0.1",
        allow: list[str] | None = None,
    ) -> None:
        if transport is None:
            from worker.crawler.ssrf import AddressPolicy, GuardedTransport

            transport = GuardedTransport(AddressPolicy(allow or ()))
        self.client = httpx.Client(
            timeout=timeout_s,
            follow_redirects=False,
            trust_env=False,
            transport=transport,
            headers={"user-agent": user_agent},
        )

    def send(self, url: str, body: bytes, headers: dict[str, str]) -> WebhookResponse:
        try:
            response = self.client.post(
                url, content=body, headers={**headers, "content-type": "application/json"}
            )
        except httpx.HTTPError as exc:
            return WebhookResponse(None, f"{type(exc).__name__}: {exc}")
        except XxgkError as exc:  # refused by the SSRF guard before any connection
            return WebhookResponse(None, f"refused: {exc.message}")
        retry_after = _retry_after(response.headers.get("retry-after"))
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        return WebhookResponse(response.status_code, error, retry_after)

    def close(self) -> None:
        self.client.close()


def build_webhook_sink(settings: Any) -> HttpxWebhookSink:
    """The sink the relay uses: guarded, with the operator's allow-list."""
    return HttpxWebhookSink(allow=[*settings.webhook_allow, *settings.ssrf_allow])


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: the schedule's delay is good enough
    if math.isnan(seconds):
        return None
    # a day at most (the schedule's longest step): "Retry-After: 1e20" or "inf" would overflow
    # the timedelta in next_attempt_at and take the relay down
    return min(max(0.0, seconds), float(RETRY_SCHEDULE_S[-1]))


def webhook_body(message: dict[str, Any], *, created_at: datetime) -> str:
    """The request body: the same text on every attempt (receivers verify these exact bytes)."""
    return json.dumps(
        {"type": message["type"], "timestamp": created_at.isoformat(), "data": message["payload"]},
        ensure_ascii=False,
        sort_keys=True,
    )


def _strict_b64decode(text: str) -> bytes | None:
    """Bytes of a strictly valid base64 string (missing padding tolerated), else ``None``.

    Strict on purpose: the lenient default drops unknown characters, so a passphrase such as
    ``"open sesame!"`` would silently turn into some other key."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True) or None
    except (binascii.Error, ValueError):
        return None


def secret_key(secret: str) -> bytes:
    """The HMAC key of a webhook secret (the rule in the module docstring)."""
    if secret.startswith(SECRET_PREFIX):
        key = _strict_b64decode(secret[len(SECRET_PREFIX) :])
        if key is None:
            raise ConfigError("webhook secret starts with whsec_ but the rest is not base64")
        return key
    key = _strict_b64decode(secret)
    if key is not None and len(key) >= MIN_BARE_KEY_BYTES:
        return key
    return secret.encode("utf-8")


def sign(secret: str, event_id: str, body: str, *, at: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    signature = Webhook(secret_key(secret)).sign(msg_id=event_id, timestamp=at, data=body)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def next_attempt_at(
    attempts: int,
    response: WebhookResponse,
    *,
    now: datetime,
    max_attempts: int,
    rng: random.Random | None = None,
) -> datetime | None:
    """When to try again after ``attempts`` failed attempts; ``None``: dead, stop trying."""
    if response.status_code == GONE or attempts >= max_attempts:
        return None
    base = RETRY_SCHEDULE_S[min(max(attempts, 1), len(RETRY_SCHEDULE_S)) - 1]
    delay = base * (1 + (rng or random).uniform(-JITTER, JITTER))
    if response.retry_after_s is not None:
        delay = max(delay, response.retry_after_s)
    return now + timedelta(seconds=delay)
