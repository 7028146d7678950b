"""The outbox relay on SQLite + fakeredis: stream, subscriptions, signatures, retries, dead letters."""

from __future__ import annotations

import base64
import json
import random
from datetime import date, timedelta

import fakeredis
import pytest
from pydantic import ValidationError
from sqlmodel import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

import worker.alerts.relay as relay_module
from shared.errors import ConfigError
from shared.settings import Settings
from shared.store.ingest import ingest_document
from shared.store.models import Delivery, OutboxEvent, utc_now
from shared.store.outbox import add_subscription, claim_due_deliveries, new_webhook_secret, retry_deliveries
from shared.store.queries import list_deliveries, list_events
from tests.store_support import add_synthetic_events, make_record, read_json_record, record_bytes
from worker.alerts.relay import RelayConfig, relay_once, run_relay
from worker.alerts.stream import RedisEventStream
from worker.alerts.webhooks import RETRY_SCHEDULE_S, WebhookResponse, next_attempt_at

TODAY = date(2026, 6, 1)
STREAM = "xxgk:events"
SECRET = new_webhook_secret()
CATCH_ALL = "https://hooks.example.org/all"


class RecordingSink:
    """A webhook receiver in memory: answers from a script of status codes (default 200)."""

    def __init__(self, statuses=None):
        self.requests = []
        self.statuses = list(statuses or [])

    def send(self, url, body, headers):
        self.requests.append((url, body, dict(headers)))
        status = self.statuses.pop(0) if self.statuses else 200
        if status is None:
            return WebhookResponse(None, "ConnectError: refused")
        return WebhookResponse(status, None if status < 300 else f"HTTP {status}")


@pytest.fixture
def redis():
    client = fakeredis.FakeRedis()
    yield client
    client.close()


def config(**kw):
    base = {"webhook_urls": (CATCH_ALL,), "webhook_secret": SECRET, "max_attempts": 3, "lease_s": 30.0}
    return RelayConfig(**{**base, **kw})


def seed_events(store, *, region="350128", agency="平潭综合实验区财政金融局"):
    """Two years with a carry-over mismatch and one silent edit: two events of two types."""
    last = make_record(
        agency,
        2020,
        new_received={"natural_person": 5},
        carried_forward={"natural_person": 2},
        site_id_code=f"{region}0001",
    )
    this = make_record(
        agency,
        2021,
        new_received={"natural_person": 1},
        carried_over={"natural_person": 1},
        site_id_code=f"{region}0001",
    )
    with store() as session:
        for record, name in ((last, "2020"), (this, "2021")):
            ingest_document(
                session,
                record_bytes(record),
                url=f"https://www.pingtan.gov.cn/{name}.htm",
                today=TODAY,
                read=read_json_record,
            )
        this.evidence.narrative = "修改后的正文"
        ingest_document(
            session,
            record_bytes(this),
            url="https://www.pingtan.gov.cn/2021.htm",
            today=TODAY,
            read=read_json_record,
        )
    with store() as session:
        return list(session.exec(select(OutboxEvent).order_by(OutboxEvent.id)).all())


def test_events_reach_the_stream_with_id_type_and_payload(store, redis):
    outbox = seed_events(store)
    assert {e.type for e in outbox} == {"report.anomalous", "report.changed"}
    stats = relay_once(store, redis, None, config=config())
    assert stats.published == len(outbox)
    entries = list(RedisEventStream(redis, STREAM).iter_all())
    assert [m["id"] for _, m in entries] == [e.event_id for e in outbox]
    anomaly = next(m for _, m in entries if m["type"] == "report.anomalous")
    assert anomaly["payload"]["report"]["agency"] == "平潭综合实验区财政金融局"
    assert anomaly["payload"]["year"] == 2021
    assert anomaly["payload"]["source_url"] == "https://www.pingtan.gov.cn/2021.htm"
    assert anomaly["payload"]["findings"][0]["rule"] == "carry_over_mismatch"
    raw = redis.xrange(STREAM)[0][1]
    assert set(raw) == {b"id", b"type", b"payload"}
    # a second pass has nothing left to publish
    assert relay_once(store, redis, None, config=config()).published == 0
    assert len(list(RedisEventStream(redis, STREAM).iter_all())) == len(outbox)


def test_a_relay_dying_before_its_commit_republishes_the_same_ids(store, redis, monkeypatch):
    outbox = seed_events(store)

    def crash(*_a, **_kw):
        raise RuntimeError("killed between XADD and commit")

    monkeypatch.setattr(relay_module, "plan_deliveries", crash)
    with pytest.raises(RuntimeError):
        relay_once(store, redis, None, config=config())
    monkeypatch.undo()
    assert len(redis.xrange(STREAM)) == len(outbox)  # published, but not marked
    relay_once(store, redis, None, config=config())
    ids = [m["id"] for _, m in RedisEventStream(redis, STREAM).iter_all()]
    assert len(ids) == 2 * len(outbox) and set(ids) == {e.event_id for e in outbox}


def test_embedded_mode_delivers_webhooks_but_never_marks_events_published(store, redis):
    """Without Redis nothing reaches ``xxgk:events``: the rows must stay unpublished (a relay with a
    stream publishes them later), while their webhooks are still planned, sent and recorded."""
    outbox = seed_events(store)
    sink = RecordingSink()
    stats = relay_once(store, None, sink, config=config())
    assert (stats.published, stats.held, stats.delivered) == (0, len(outbox), len(outbox))
    with store() as session:
        events = list_events(session)
        assert all(e["published_at"] is None for e in events)  # still listed, not "published"
        assert {d["status"] for d in list_deliveries(session)} == {"delivered"}
    # held rows are not planned or sent again by the next embedded pass, and --drain ends
    again = relay_once(store, None, sink, config=config())
    assert (again.held, again.delivered, len(sink.requests)) == (0, 0, len(outbox))
    total = run_relay(store, None, sink, config=config(), interval_s=0.01, drain=True)
    assert not total.busy
    # a relay with a stream publishes them, once, without re-sending the webhooks
    assert relay_once(store, redis, sink, config=config()).published == len(outbox)
    assert [m["id"] for _, m in RedisEventStream(redis, STREAM).iter_all()] == [e.event_id for e in outbox]
    assert len(sink.requests) == len(outbox)
    with store() as session:
        assert all(e["published_at"] and e["last_error"] is None for e in list_events(session))


def test_webhooks_are_signed_the_standard_webhooks_way(store, redis):
    outbox = seed_events(store)
    sink = RecordingSink()
    relay_once(store, redis, sink, config=config())
    assert len(sink.requests) == len(outbox)
    by_id = {e.event_id: e for e in outbox}
    for url, body, headers in sink.requests:
        assert url == CATCH_ALL
        data = Webhook(SECRET).verify(body, headers)
        event = by_id[headers["webhook-id"]]
        assert data["type"] == event.type and data["data"] == event.payload
        with pytest.raises(WebhookVerificationError):
            Webhook(new_webhook_secret()).verify(body, headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(body.replace(b"2021", b"2022"), headers)


def test_subscriptions_filter_by_region_agency_rule_and_severity(store, redis):
    with store() as session:
        fujian = add_subscription(session, "https://fj.example.org/hook", region_prefix="35")
        beijing = add_subscription(session, "https://bj.example.org/hook", region_prefix="11")
        bureau = add_subscription(
            session,
            "https://bureau.example.org/hook",
            agency="平潭综合实验区财政金融局",
            rule="carry_over_mismatch",
        )
        errors = add_subscription(session, "https://errors.example.org/hook", min_severity="error")
        changes = add_subscription(
            session, "https://changes.example.org/hook", event_types=["report.changed"]
        )
        session.commit()
        secrets = {s.url: s.secret for s in (fujian, beijing, bureau, errors, changes)}
    outbox = seed_events(store)
    sink = RecordingSink()
    relay_once(store, redis, sink, config=config(webhook_urls=()))
    got: dict[str, set[str]] = {}
    for url, body, headers in sink.requests:
        Webhook(secrets[url]).verify(body, headers)  # each endpoint signs with its own secret
        got.setdefault(url, set()).add(json.loads(body)["data"]["findings"][0]["rule"])
    all_rules = {e.rule for e in outbox}
    assert got["https://fj.example.org/hook"] == all_rules
    assert "https://bj.example.org/hook" not in got
    assert got["https://bureau.example.org/hook"] == {"carry_over_mismatch"}
    assert "https://errors.example.org/hook" not in got  # warnings and info only
    assert got["https://changes.example.org/hook"] == {"report_changed"}


def test_failed_deliveries_back_off_then_succeed(store, redis):
    assert len(seed_events(store)) == 2
    sink = RecordingSink(statuses=[500, None])
    stats = relay_once(store, redis, sink, config=config())
    assert stats.retried == 2 and stats.delivered == 0
    with store() as session:
        waiting = session.exec(select(Delivery).where(Delivery.status == "pending")).all()
        assert len(waiting) == 2
        assert all(d.attempts == 1 and d.next_attempt_at > utc_now() for d in waiting)
        for d in waiting:  # time passes
            d.next_attempt_at = utc_now() - timedelta(seconds=1)
            session.add(d)
        session.commit()
    stats = relay_once(store, redis, sink, config=config())
    assert stats.delivered == 2
    ids = [h["webhook-id"] for _, _, h in sink.requests]
    assert len(ids) == 4 and len(set(ids)) == 2  # retries carry the same webhook-id


def test_deliveries_die_after_max_attempts_and_can_be_retried(store, redis):
    seed_events(store)
    sink = RecordingSink(statuses=[503] * 100)
    for _ in range(3):
        relay_once(store, redis, sink, config=config(max_attempts=3))
        with store() as session:
            for d in session.exec(select(Delivery).where(Delivery.status == "pending")).all():
                d.next_attempt_at = utc_now() - timedelta(seconds=1)
                session.add(d)
            session.commit()
    with store() as session:
        dead = list_deliveries(session, status="dead")
    assert len(dead) == 2 and all(d["attempts"] == 3 and d["last_status_code"] == 503 for d in dead)
    assert relay_once(store, redis, sink, config=config()).delivered == 0
    with store() as session:
        retried = retry_deliveries(session, dead[0]["event_id"], now=utc_now())
        session.commit()
    assert len(retried) == 1
    sink.statuses = []
    assert relay_once(store, redis, sink, config=config()).delivered == 1


def test_410_gone_is_dead_at_once(store, redis):
    seed_events(store)
    sink = RecordingSink(statuses=[410])
    stats = relay_once(store, redis, sink, config=config(batch=1))
    assert stats.dead == 1


def test_a_claimed_delivery_is_leased_so_a_killed_relay_loses_nothing(store, redis):
    seed_events(store)
    relay_once(store, redis, None, config=config())  # publish and plan only
    with store() as session:
        claimed = claim_due_deliveries(session, now=utc_now(), limit=10, lease_s=0.0)
        session.commit()  # ... and the relay that claimed them dies here
    assert len(claimed) == 2
    sink = RecordingSink()
    assert relay_once(store, redis, sink, config=config()).delivered == 2


def test_no_secret_means_no_unsigned_request(store, redis):
    seed_events(store)
    sink = RecordingSink()
    stats = relay_once(store, redis, sink, config=config(webhook_secret=None))
    assert sink.requests == [] and stats.retried == 2
    with store() as session:
        assert all("XXGK_WEBHOOK_SECRET" in d["last_error"] for d in list_deliveries(session))


def test_run_relay_drains_and_stops(store, redis):
    outbox = seed_events(store)
    sink = RecordingSink()
    total = run_relay(store, redis, sink, config=config(batch=1), interval_s=0.01, drain=True)
    assert (total.published, total.delivered) == (len(outbox), len(outbox))


def test_backoff_follows_the_schedule_with_jitter_and_honours_retry_after():
    now = utc_now()
    rng = random.Random(7)
    first = next_attempt_at(1, WebhookResponse(500), now=now, max_attempts=8, rng=rng)
    assert first is not None
    assert 0.8 * RETRY_SCHEDULE_S[0] <= (first - now).total_seconds() <= 1.2 * RETRY_SCHEDULE_S[0]
    later = next_attempt_at(3, WebhookResponse(429, retry_after_s=7200), now=now, max_attempts=8, rng=rng)
    assert later is not None and (later - now).total_seconds() >= 7200
    assert next_attempt_at(8, WebhookResponse(500), now=now, max_attempts=8) is None
    assert next_attempt_at(1, WebhookResponse(410), now=now, max_attempts=8) is None


@pytest.mark.parametrize("plain", ["correct horse battery staple", "hunter2", "password", "口令-secret!"])
def test_a_plain_text_secret_signs_with_its_utf8_bytes(store, redis, plain):
    """Not whsec_/base64: used as raw UTF-8 bytes (receivers verify with the same bytes)."""
    seed_events(store)
    sink = RecordingSink()
    stats = relay_once(store, redis, sink, config=config(webhook_secret=plain))
    assert stats.delivered == len(sink.requests) > 0
    for _url, body, headers in sink.requests:
        assert Webhook(plain.encode("utf-8")).verify(body, headers)["type"].startswith("report.")


def test_secret_forms_whsec_base64_and_plain_text():
    from worker.alerts.webhooks import secret_key

    raw = bytes(range(32))
    encoded = base64.b64encode(raw).decode("ascii")
    assert secret_key("whsec_" + encoded) == raw
    assert secret_key(encoded) == raw
    assert secret_key(encoded.rstrip("=")) == raw
    assert secret_key("open sesame!") == b"open sesame!"
    assert secret_key("password") == b"password"  # valid base64, but no 24-byte key: text
    with pytest.raises(ConfigError):
        secret_key("whsec_not base64!")


def test_one_delivery_failing_unexpectedly_is_recorded_not_fatal(store, redis, monkeypatch):
    seed_events(store)
    sink = RecordingSink()
    real_sign = relay_module.sign
    calls = []

    def flaky_sign(secret, event_id, body, *, at):
        calls.append(event_id)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real_sign(secret, event_id, body, at=at)

    monkeypatch.setattr(relay_module, "sign", flaky_sign)
    stats = relay_once(store, redis, sink, config=config(concurrency=1))
    assert (stats.delivered, stats.retried) == (1, 1)
    with store() as session:
        failed = [d for d in list_deliveries(session) if d["status"] == "pending"]
    assert len(failed) == 1 and failed[0]["attempts"] == 1 and "RuntimeError: boom" in failed[0]["last_error"]


@pytest.mark.parametrize("value", ["99999999999999999999", "1e400", "inf", "nan"])
def test_an_absurd_webhook_retry_after_cannot_overflow_the_schedule(value):
    from worker.alerts.webhooks import _retry_after

    seconds = _retry_after(value)
    assert seconds is None or 0 <= seconds <= RETRY_SCHEDULE_S[-1]
    now = utc_now()
    at = next_attempt_at(2, WebhookResponse(429, retry_after_s=seconds), now=now, max_attempts=8)
    assert at is not None and (at - now).total_seconds() <= RETRY_SCHEDULE_S[-1] * 1.2


# ------------------------------------------------------------------ a bounded stream


def test_many_relay_passes_keep_the_stream_near_its_bound_and_the_newest_events(store, redis):
    """XADD … MAXLEN ~ stream_max_len: the stream never grows past about the bound, the newest
    events are the ones kept, and the outbox still holds (and counts published) every event."""
    ids = add_synthetic_events(store, 1_000)
    bound = 150
    cfg = config(stream_max_len=bound, batch=37, webhook_urls=())
    passes = 0
    while relay_once(store, redis, None, config=cfg).published:
        passes += 1
        # ~ trims whole nodes only: a real Redis may keep up to a node (100 entries) more
        assert redis.xlen(STREAM) <= bound + 100
    assert passes == -(-len(ids) // 37)
    kept = [m["id"] for _, m in RedisEventStream(redis, STREAM).iter_all()]
    assert bound <= len(kept) <= bound + 100
    assert kept == ids[-len(kept) :]  # the newest, in publication order
    with store() as session:
        events = list_events(session, limit=len(ids) + 1)
    assert len(events) == len(ids) and all(e["published_at"] for e in events)


def test_stream_max_len_zero_never_trims(store, redis):
    ids = add_synthetic_events(store, 300)
    while relay_once(store, redis, None, config=config(stream_max_len=0, webhook_urls=())).published:
        pass
    assert redis.xlen(STREAM) == len(ids)


def test_the_relay_takes_its_bound_from_xxgk_stream_max_len(monkeypatch):
    assert RelayConfig().stream_max_len == Settings().stream_max_len == 100_000
    monkeypatch.setenv("XXGK_STREAM_MAX_LEN", "5000")
    assert RelayConfig.from_settings(Settings()).stream_max_len == 5000
    monkeypatch.setenv("XXGK_STREAM_MAX_LEN", "-1")
    with pytest.raises(ValidationError):
        Settings()


def test_a_reader_can_tell_the_stream_was_trimmed_past_its_position(redis):
    events = RedisEventStream(redis, STREAM, max_len=100)
    first = events.publish_many([message(n) for n in range(10)])
    batch = events.read(first[0], block_ms=None)
    assert [m["id"] for _, m in batch.entries] == [f"e{n:03d}" for n in range(1, 10)]
    assert not batch.trimmed
    later = events.publish_many([message(n) for n in range(10, 500)])
    assert 100 <= redis.xlen(STREAM) <= 200
    batch = events.read(first[-1], block_ms=None)
    # e009 is gone, and e010… with it: the reader is told, and goes on from the oldest kept
    assert batch.trimmed
    assert batch.entries[0][0] == redis.xrange(STREAM, count=1)[0][0].decode()
    assert events.read(later[-1], block_ms=None) == ([], False)
    assert not events.read("0", block_ms=None, count=5).trimmed


def message(n):
    return {"id": f"e{n:03d}", "type": "report.anomalous", "payload": {"year": 2021}}


@pytest.mark.parametrize("bound", [100, 0])
def test_alerts_tail_warns_when_it_fell_behind_a_trim(monkeypatch, sqlite_url, bound):
    """A tail slower than the relay by more than the bound skips what was trimmed, and says so
    on stderr (stdout stays one event per line); ``alerts list`` reads the outbox instead.
    Untrimmed (bound 0), the same slow tail misses nothing and warns of nothing."""
    from click.testing import CliRunner

    import worker.cli.store_commands as store_commands
    from shared.settings import get_settings
    from worker.cli import main

    client = fakeredis.FakeRedis()
    events = RedisEventStream(client, STREAM, max_len=bound)
    events.publish_many([message(n) for n in range(150)])
    real_read = RedisEventStream.read
    reads = []

    def slow_reader(self, last_id, **kw):
        if reads:  # between two reads the relay publishes 300 more: the tail's next ones are trimmed
            events.publish_many([message(n) for n in range(150, 450)])
        reads.append(last_id)
        return real_read(self, last_id, **kw)

    monkeypatch.setattr(RedisEventStream, "read", slow_reader)
    monkeypatch.setattr(store_commands, "_redis_client", lambda: client)
    monkeypatch.setenv("XXGK_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["alerts", "tail", "--from-start", "--count", "101", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    shown = [json.loads(line)["id"] for line in result.stdout.splitlines()]
    if not bound:
        assert shown == [f"e{n:03d}" for n in range(101)]
        assert result.stderr == ""
        return
    [(_, oldest)] = client.xrange(STREAM, count=1)
    oldest_kept = oldest[b"id"].decode()
    assert shown == [f"e{n:03d}" for n in range(100)] + [oldest_kept]
    assert oldest_kept > "e100"  # e100… were trimmed before the tail got to them
    (warning,) = result.stderr.splitlines()
    assert "no longer holds" in warning and "(event e099)" in warning and "xxgk alerts list" in warning
