"""Alert delivery: the outbox relay, the Redis event stream and signed webhooks.

- :mod:`worker.alerts.relay` — ``relay_once`` / ``run_relay``: outbox rows →
  stream ``xxgk:events`` (at least once) → one delivery per subscribed webhook
  endpoint, retried with backoff, dead-lettered after a bounded number of attempts.
- :mod:`worker.alerts.stream` — the Redis stream adapter (the only place its key is built).
- :mod:`worker.alerts.webhooks` — Standard Webhooks signing (the ``standardwebhooks``
  package), the HTTP sink, the retry schedule.
"""
