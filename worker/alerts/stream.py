"""The event stream on Redis: ``XADD xxgk:events`` with fields ``id``, ``type``, ``payload`` (JSON).

Consumers deduplicate on ``id``: the relay publishes at least once (a relay
killed between XADD and marking the outbox row published adds the entry again
on restart, with the same ``id``). The SQL outbox, not the stream, is the
replay log.

The stream is bounded: every XADD carries ``MAXLEN ~ max_len``
(``XXGK_STREAM_MAX_LEN``), so Redis drops the oldest entries as new ones arrive.
``~`` lets Redis trim whole radix-tree nodes only (cheap; the stream may hold up
to a node — ``stream-node-max-entries``, 100 by default — beyond the bound,
never fewer than it). A subscriber that falls further behind than the bound
loses the entries in between from the stream — :meth:`RedisEventStream.read` tells
it so (``trimmed``) — and catches up from the outbox (``xxgk alerts list``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

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


class StreamBatch(NamedTuple):
    entries: list[tuple[str, dict[str, Any]]]
    # the stream no longer holds the entry read from: what followed it may have been trimmed
    trimmed: bool


def _is_entry_id(entry_id: str) -> bool:
    """A real ``<ms>-<seq>`` entry id, not ``"$"``, ``"0"`` or ``"0-0"`` (from the start)."""
    ms, _, seq = entry_id.partition("-")
    return ms.isdigit() and seq.isdigit() and (int(ms), int(seq)) != (0, 0)


def _entry(entry_id: Any, fields: dict[Any, Any]) -> tuple[str, dict[str, Any]]:
    return (entry_id.decode() if isinstance(entry_id, bytes) else entry_id, decode_entry(fields))


class RedisEventStream:
    """Publishes to and reads from the event stream (a ``redis.Redis`` or ``fakeredis`` client)."""

    def __init__(self, client: Any, stream: str = EVENTS_STREAM, *, max_len: int | None = None) -> None:
        """``max_len``: trim to about this many entries on every XADD; ``None`` or 0: never trim."""
        self.client = client
        self.stream = stream
        self.max_len = max_len or None

    def publish_many(self, messages: Iterable[dict[str, Any]]) -> list[str]:
        pipe = self.client.pipeline(transaction=False)
        for message in messages:
            # XADD key MAXLEN ~ max_len * field value …: the trim is part of the command, so the
            # bound holds whoever publishes (several relays, a relay restarted mid-batch)
            pipe.xadd(self.stream, encode_entry(message), maxlen=self.max_len, approximate=True)
        return [e.decode() if isinstance(e, bytes) else e for e in pipe.execute()]

    def read(self, last_id: str, *, block_ms: int | None, count: int = 100) -> StreamBatch:
        """Entries after ``last_id`` ("0" for all, "$" for new ones), waiting up to ``block_ms``,
        and whether the stream was trimmed past ``last_id`` (entries after it may be lost).

        After a real entry id, the read is ``XRANGE last_id +``, which includes ``last_id``
        itself: trimming only ever drops the oldest entries, so when ``last_id`` is still there
        nothing after it is gone — one command, no race with a concurrent trim. ``XREAD BLOCK``
        only waits for something new to read."""
        if not _is_entry_id(last_id):
            answer = self.client.xread({self.stream: last_id}, block=block_ms, count=count) or []
            return StreamBatch([_entry(i, f) for _stream, items in answer for i, f in items], trimmed=False)
        entries = self._range_from(last_id, count + 1)
        if all(entry_id == last_id for entry_id, _ in entries):
            self.client.xread({self.stream: last_id}, block=block_ms, count=1)  # wait, then re-read
            entries = self._range_from(last_id, count + 1)
        trimmed = bool(entries) and entries[0][0] != last_id
        return StreamBatch([e for e in entries if e[0] != last_id][:count], trimmed=trimmed)

    def _range_from(self, first_id: str, count: int) -> list[tuple[str, dict[str, Any]]]:
        return [_entry(i, f) for i, f in self.client.xrange(self.stream, min=first_id, max="+", count=count)]

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
