"""The event stream on Redis: ``XADD xxgk:events`` with fields ``id``, ``type``, ``payload`` (JSON).

Consumers deduplicate on ``id``: the relay publishes at least once (a relay
killed between XADD and marking the outbox row published adds the entry again
on restart, with the same ``id``). The SQL outbox, not the stream, is the
replay log; the stream is not trimmed here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

EVENTS_STREAM = "xxgk:events"


def encode_entry(message: dict[str, Any]) -> dict[str, str]:
    return {
        "id": message["id"],
        "type": message["type"],
        "payload": json.dumps(message["payload"], ensure_ascii=False, sort_keys=True),
    }


def decode_entry(fields: dict[Any, Any]) -> dict[str, Any]:
    text = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in fields.items()
    }
    return {
        "id": text.get("id"),
        "type": text.get("type"),
        "payload": json.loads(text.get("payload") or "null"),
    }


class RedisEventStream:
    """Publishes to and reads from the event stream (a ``redis.Redis`` or ``fakeredis`` client)."""

    def __init__(self, client: Any, stream: str = EVENTS_STREAM) -> None:
        self.client = client
        self.stream = stream

    def publish_many(self, messages: Iterable[dict[str, Any]]) -> list[str]:
        pipe = self.client.pipeline(transaction=False)
        for message in messages:
            pipe.xadd(self.stream, encode_entry(message))
        return [e.decode() if isinstance(e, bytes) else e for e in pipe.execute()]

    def read(
        self, last_id: str, *, block_ms: int | None, count: int = 100
    ) -> list[tuple[str, dict[str, Any]]]:
        """Entries after ``last_id`` ("0" for all, "$" for new ones), waiting up to ``block_ms``."""
        answer = self.client.xread({self.stream: last_id}, block=block_ms, count=count) or []
        entries: list[tuple[str, dict[str, Any]]] = []
        for _stream, items in answer:
            for entry_id, fields in items:
                entries.append(
                    (entry_id.decode() if isinstance(entry_id, bytes) else entry_id, decode_entry(fields))
                )
        return entries

    def iter_all(self, *, page: int = 1000) -> Iterator[tuple[str, dict[str, Any]]]:
        start = "-"
        while True:
            items = self.client.xrange(self.stream, min=start, max="+", count=page)
            if not items:
                return
            for entry_id, fields in items:
                yield (entry_id.decode() if isinstance(entry_id, bytes) else entry_id, decode_entry(fields))
            last = items[-1][0]
            start = "(" + (last.decode() if isinstance(last, bytes) else last)  # exclusive (Redis >= 6.2)
