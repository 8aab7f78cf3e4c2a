"""Portal sink pieces without a broker: backoff schedule, request signing and its verification, stand-in portal,
delivery/dead-letter decisions."""
from __future__ import annotations

import datetime as dt
import json
import os
import random
import stat
import threading
import time
import uuid
from types import SimpleNamespace

import httpx
import pytest

from kafka.structs import TopicPartition

from consumers.loop import DeadLetters
from consumers.portal import Backoff, IssuanceSink, PortalClient, PortalCredentials, StandinPortal, signing
from consumers.subscriber import WebhookFailed, WebhookOutput, render
from schemas import models
from schemas.registry import InMemoryRegistry
from schemas.serde import AvroDeserializer, AvroSerializer, SerializationContext
from topology import contracts
from topology.catalogue import Catalogue

UTC = dt.timezone.utc


def issuance(n: int = 1) -> models.IssuanceRequested:
    return models.IssuanceRequested(
        event_id=str(uuid.uuid4()), occurred_at=dt.datetime(2025, 8, 1, tzinfo=UTC),
        source={"system": "test", "instance": "t"}, correlation_id=f"case-{n}", issuance_id=f"iss-{n}",
        case_id=f"case-{n}", cccd="079085123456", province="79", full_name="Nguyễn Văn A",
        date_of_birth=dt.date(1985, 3, 4), licence_number="790123456789", classes=["B"],
        delivery_method="POST", postal_address="1 Lê Lợi, Sài Gòn")


# ---- backoff ----

def test_backoff_doubles_up_to_the_cap():
    b = Backoff(base_s=0.5, max_s=4.0, jitter=0)
    assert [b.delay(a) for a in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert b.worst_case(4) == 0.5 + 1.0 + 2.0


def test_backoff_jitter_stays_within_its_band():
    b, rng = Backoff(base_s=1.0, max_s=8.0, jitter=0.5), random.Random(7)
    for attempt in range(1, 10):
        for _ in range(200):
            d = b.delay(attempt, rng)
            assert b.nominal(attempt) * 0.5 <= d <= b.nominal(attempt)
    delays = {round(b.delay(3, rng), 6) for _ in range(50)}
    assert len(delays) > 40  # actually jittered


def test_backoff_rejects_nonsense_and_survives_huge_attempts():
    with pytest.raises(ValueError):
        Backoff(base_s=2, max_s=1)
    assert Backoff(base_s=1, max_s=30, jitter=0).delay(10_000) == 30


# ---- signing and verification ----

CREDS = PortalCredentials("sink-a", b"s" * 40)
KEYS = {"sink-a": CREDS.secret}
BODY = b'{"issuance_id":"iss-1","full_name":"Nguy\xe1\xbb\x85n V\xc4\x83n A"}'
NOW = 1_780_000_000


def test_signed_request_verifies_and_headers_follow_the_scheme():
    headers = signing.sign(CREDS, BODY, now=NOW)
    assert headers["Authorization"] == "Bearer sink-a" and headers["X-GPLX-Timestamp"] == str(NOW)
    import hashlib
    import hmac
    expected = hmac.new(b"s" * 40, f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert headers["X-GPLX-Signature"] == expected  # the canonical string the README documents
    assert signing.verify(headers, BODY, KEYS, now=NOW) is None
    assert signing.verify({**headers, "X-GPLX-Signature": expected.upper()}, BODY, KEYS, now=NOW) is None


def test_a_tampered_body_is_refused():
    headers = signing.sign(CREDS, BODY, now=NOW)
    for altered in (BODY.replace(b"iss-1", b"iss-2"), BODY + b" ", BODY[:-1], b""):
        assert "signature does not match" in signing.verify(headers, altered, KEYS, now=NOW)


def test_a_changed_timestamp_with_the_old_signature_is_refused():
    headers = signing.sign(CREDS, BODY, now=NOW)
    moved = {**headers, "X-GPLX-Timestamp": str(NOW + 1)}
    assert "signature does not match" in signing.verify(moved, BODY, KEYS, now=NOW)


def test_a_wrong_secret_or_an_unknown_key_id_is_refused():
    forged = signing.sign(PortalCredentials("sink-a", b"t" * 40), BODY, now=NOW)
    assert "signature does not match" in signing.verify(forged, BODY, KEYS, now=NOW)
    stranger = signing.sign(PortalCredentials("sink-b", CREDS.secret), BODY, now=NOW)
    assert signing.verify(stranger, BODY, KEYS, now=NOW) == "unknown key id"


def test_stale_or_future_timestamps_are_refused_beyond_five_minutes():
    headers = signing.sign(CREDS, BODY, now=NOW)
    assert signing.verify(headers, BODY, KEYS, now=NOW + 300) is None  # the limit itself is accepted
    assert signing.verify(headers, BODY, KEYS, now=NOW - 300) is None
    assert "301s behind the portal's clock" in signing.verify(headers, BODY, KEYS, now=NOW + 301)
    assert "301s ahead of the portal's clock" in signing.verify(headers, BODY, KEYS, now=NOW - 301)


@pytest.mark.parametrize("drop, reason", [
    ("Authorization", "missing Authorization"),
    ("X-GPLX-Timestamp", "missing X-GPLX-Timestamp"),
    ("X-GPLX-Signature", "missing X-GPLX-Signature"),
])
def test_missing_headers_are_each_named(drop, reason):
    headers = {k: v for k, v in signing.sign(CREDS, BODY, now=NOW).items() if k != drop}
    assert signing.verify(headers, BODY, KEYS, now=NOW).startswith(reason)


def test_malformed_headers_are_refused():
    headers = signing.sign(CREDS, BODY, now=NOW)
    assert "not 'Bearer" in signing.verify({**headers, "Authorization": "Basic c2luazpw"}, BODY, KEYS, now=NOW)
    assert "not unix seconds" in signing.verify({**headers, "X-GPLX-Timestamp": "2026-11-30T12:00:00Z"}, BODY,
                                                KEYS, now=NOW)
    assert "not unix seconds" in signing.verify({**headers, "X-GPLX-Timestamp": "9" * 5000}, BODY, KEYS, now=NOW)
    assert "signature does not match" in signing.verify({**headers, "X-GPLX-Signature": "ü" * 64}, BODY, KEYS,
                                                        now=NOW)


def test_the_secret_is_never_shown():
    creds = PortalCredentials.generate("k")
    assert creds.secret.decode() not in repr(creds) and creds.secret.decode() not in str(creds)
    with pytest.raises(ValueError):
        PortalCredentials("k", b"short")


def test_secret_file_is_written_0600_and_read_back(tmp_path, caplog):
    path = tmp_path / "portal.secret"
    written = signing.write_secret_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing.read_secret_file(path, written.key_id) == written
    os.chmod(path, 0o644)
    signing.read_secret_file(path)
    assert "accessible by group or others" in caplog.text and written.secret.decode() not in caplog.text
    (tmp_path / "short").write_text("abc\n")
    with pytest.raises(signing.SecretFileError, match="at least 32"):
        signing.read_secret_file(tmp_path / "short")
    with pytest.raises(signing.SecretFileError, match="cannot read"):
        signing.read_secret_file(tmp_path / "absent")


# ---- stand-in portal ----

def post(portal: StandinPortal, event: models.IssuanceRequested, key: str | None = None) -> httpx.Response:
    """A request signed with the portal's own credentials, as the sink sends it."""
    body = json.dumps(event.model_dump(mode="json")).encode()
    return httpx.post(portal.url + "/issuances", content=body, timeout=5,
                      headers={"Idempotency-Key": key or event.issuance_id, "Content-Type": "application/json",
                               **signing.sign(portal.credentials, body)})


def test_standin_refuses_unsigned_altered_and_stale_requests_with_401():
    with StandinPortal() as portal:
        event = issuance(1)
        body = json.dumps(event.model_dump(mode="json")).encode()
        base = {"Idempotency-Key": event.issuance_id, "Content-Type": "application/json"}
        unsigned = httpx.post(portal.url + "/issuances", content=body, headers=base, timeout=5)
        signed = signing.sign(portal.credentials, body)
        altered = httpx.post(portal.url + "/issuances", content=body.replace(b"B", b"C"),
                             headers={**base, **signed}, timeout=5)
        stale = httpx.post(portal.url + "/issuances", content=body, timeout=5,
                           headers={**base, **signing.sign(portal.credentials, body, now=time.time() - 400)})
        assert [r.status_code for r in (unsigned, altered, stale)] == [401, 401, 401]
        assert unsigned.json()["error"].startswith("missing Authorization")
        assert "signature does not match" in altered.json()["error"]
        assert "behind the portal's clock" in stale.json()["error"]
        assert unsigned.headers["WWW-Authenticate"].startswith("Bearer")
        assert (portal.unauthorized, portal.received, portal.distinct) == (3, 0, 0)
        assert sum(portal.unauthorized_reasons().values()) == 3
        assert post(portal, event).status_code == 201 and portal.distinct == 1


def test_standin_checks_authentication_before_refusing_for_overload():
    with StandinPortal() as portal:
        portal.refuse_next(1)
        assert httpx.post(portal.url + "/issuances", json={}, timeout=5).status_code == 401
        assert post(portal, issuance(1)).status_code == 503  # the refusal slot was not used by the forgery
        assert (portal.unauthorized, portal.refused) == (1, 1)


def test_standin_dedupes_by_idempotency_key():
    with StandinPortal() as portal:
        first, again = post(portal, issuance(1)), post(portal, issuance(1))
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json() == again.json()
        post(portal, issuance(2))
        assert (portal.received, portal.distinct) == (3, 2)
        assert httpx.get(portal.url + "/issuances").json()["distinct"] == 2
        assert post(portal, issuance(3), key="other").status_code == 422  # key must be the issuance id


def test_standin_refuses_next_k_then_accepts():
    with StandinPortal() as portal:
        portal.refuse_next(2)
        assert [post(portal, issuance(1)).status_code for _ in range(3)] == [503, 503, 201]
        assert (portal.refused, portal.distinct) == (2, 1)


def test_standin_refuses_for_a_window_and_via_control_api():
    with StandinPortal() as portal:
        portal.refuse_for(60)
        assert post(portal, issuance(1)).status_code == 503
        httpx.post(portal.url + "/_control", json={"refuse_for_s": 0})
        assert post(portal, issuance(1)).status_code == 201


def test_standin_down_means_connection_refused_then_back_on_the_same_port():
    with StandinPortal() as portal:
        port = portal.port
        portal.go_down()
        with pytest.raises(httpx.ConnectError):
            post(portal, issuance(1))
        portal.come_up()
        assert portal.port == port and post(portal, issuance(1)).status_code == 201


# ---- portal client ----

def test_client_classifies_outcomes():
    def answer(status, **kw):
        return PortalClient("http://portal", transport=httpx.MockTransport(lambda r: httpx.Response(status, **kw)))

    assert answer(201).deliver(issuance()).delivered
    assert answer(503).deliver(issuance()).retryable
    assert answer(429).deliver(issuance()).retryable
    assert not answer(400).deliver(issuance()).retryable
    refused = answer(401, json={"error": "unknown key id\nsecond line"}).deliver(issuance())
    assert not refused.retryable and refused.status == 401
    assert refused.error == "HTTP 401 from http://portal/issuances: unknown key id"
    assert answer(401).deliver(issuance()).error.endswith(": unauthorized (no reason given)")


def test_client_signs_the_exact_bytes_it_sends_on_every_attempt():
    seen = []

    def capture(request):
        seen.append((request.headers, request.content))  # case-insensitive, like any server's
        return httpx.Response(201)

    client = PortalClient("http://portal", credentials=CREDS, transport=httpx.MockTransport(capture))
    client.deliver(issuance(5))
    client.deliver(issuance(5))
    for headers, body in seen:
        assert signing.verify(headers, body, KEYS) is None
        assert json.loads(body)["issuance_id"] == "iss-5" and headers["idempotency-key"] == "iss-5"
        assert "Nguyễn".encode() in body  # UTF-8 as is, the bytes signed
    assert CREDS.secret.decode() not in json.dumps([dict(h) for h, _ in seen])

    seen = {}

    def capture(request):
        seen.update(key=request.headers["Idempotency-Key"], path=request.url.path)
        return httpx.Response(200)

    PortalClient("http://portal/", transport=httpx.MockTransport(capture)).deliver(issuance(5))
    assert seen == {"key": "iss-5", "path": "/issuances"}


# ---- the sink's per-record decisions (fake client and producer, in-memory registry) ----

class FakeClient:
    """Answers with `outcomes` in turn, then with `then` forever."""

    def __init__(self, outcomes, then=None):
        self.outcomes, self.then, self.calls = list(outcomes), then, 0

    def deliver(self, _):
        self.calls += 1
        return self.outcomes.pop(0) if self.outcomes else self.then


class FakeProducer:
    def __init__(self):
        self.sent = []

    def send(self, topic, key=None, value=None):
        self.sent.append((topic, key, value))
        return SimpleNamespace(get=lambda timeout=None: None)


def make_sink(registry, attempts=3, backoff=None):
    contracts.register(registry, Catalogue.build(prefix="u.", replication_factor=1))  # as the operator
    return IssuanceSink("unused:9092", registry, "http://portal", prefix="u.", max_attempts=attempts,
                        backoff=backoff or Backoff(base_s=0.001, max_s=0.002))


class FakeConsumer:
    """Commits succeed, except the first `failing` ones (a coordinator that moved); `assigned` is assignment()."""

    def __init__(self, failing=0, assigned=()):
        self.committed, self.failing, self.assigned = [], failing, set(assigned)

    def commit(self, offsets):
        from kafka.errors import NotCoordinatorError

        if self.failing:
            self.failing -= 1
            raise NotCoordinatorError("coordinator moved")
        self.committed += [(tp.partition, meta.offset) for tp, meta in offsets.items()]

    def assignment(self):
        return self.assigned


def drive(sink, rec, client, producer, consumer=None):
    """One record through the sink's loop (decode, act, dead-letter, commit) without a broker; the commits."""
    loop = sink.loop
    loop._consumer = consumer = consumer or FakeConsumer()
    loop.dead_letters = DeadLetters(producer, loop._serializer, loop.dlq_topic, {"system": "t", "instance": "t"})
    sink._client = client
    loop._batch(TopicPartition(rec.topic, rec.partition), [rec])
    return consumer.committed


def record(registry, event, offset=7):
    value = AvroSerializer(registry)(event, SerializationContext("u.issuance.requests"))
    return SimpleNamespace(topic="u.issuance.requests", partition=2, offset=offset, key=b"079085123456",
                           value=value)


def outcome(delivered=False, retryable=True, error="HTTP 503"):
    from consumers.portal.client import Outcome
    return Outcome(delivered, retryable, "" if delivered else error)


def test_sink_retries_then_delivers():
    registry = InMemoryRegistry()
    sink, producer = make_sink(registry), FakeProducer()
    client = FakeClient([outcome(), outcome(), outcome(True)])
    assert drive(sink, record(registry, issuance()), client, producer) == [(2, 8)]
    assert (client.calls, sink.stats.delivered, producer.sent) == (3, 1, [])


def test_sink_delivers_a_batch_at_once_and_a_repeated_issuance_once():
    registry = InMemoryRegistry()
    sink, producer = make_sink(registry), FakeProducer()
    together = threading.Barrier(3, timeout=10)  # broken (an error) unless three deliveries are in flight at once

    class SlowPortal:
        calls: list = []

        def deliver(self, issuance):
            self.calls.append(issuance.issuance_id)
            together.wait()
            return outcome(True)

    sink._client = portal = SlowPortal()
    sink.loop._consumer = consumer = FakeConsumer()
    # the copy of iss-2 comes while iss-2 is surely in flight (the barrier waits for iss-3, after it)
    batch = [record(registry, issuance(n), offset=offset) for offset, n in enumerate((1, 2, 2, 3), start=1)]
    sink.loop._batch(TopicPartition("u.issuance.requests", 2), batch)
    assert sorted(portal.calls) == ["iss-1", "iss-2", "iss-3"]  # the copy of iss-2 waited for its delivery
    assert consumer.committed == [(2, 5)] and (sink.stats.delivered, sink.stats.joined) == (3, 1)


def test_a_failed_commit_is_retried_while_the_partition_stays_assigned():
    # A commit lost to a coordinator move used to be dropped: with no later record on the partition, the group
    # stayed behind for good (the faults harness's "18 unread" payment group) and a restart acted again.
    registry = InMemoryRegistry()
    sink, producer = make_sink(registry), FakeProducer()
    tp = TopicPartition("u.issuance.requests", 2)
    consumer = FakeConsumer(failing=2, assigned=[tp])
    assert drive(sink, record(registry, issuance()), FakeClient([outcome(True)]), producer, consumer) == []
    assert sink.loop._owed == {tp: 7} and sink.stats.commit_failures == 1
    sink.loop._pay_owed_commits()  # fails once more: still owed
    assert consumer.committed == [] and sink.loop._owed == {tp: 7}
    sink.loop._pay_owed_commits()
    assert consumer.committed == [(2, 8)] and sink.loop._owed == {} and sink.stats.commit_failures == 2


def test_a_failed_commit_is_dropped_once_the_partition_moved():
    registry = InMemoryRegistry()
    sink, producer = make_sink(registry), FakeProducer()
    consumer = FakeConsumer(failing=1, assigned=[])  # a rebalance gave the partition to another member
    drive(sink, record(registry, issuance()), FakeClient([outcome(True)]), producer, consumer)
    sink.loop._pay_owed_commits()
    assert consumer.committed == [] and sink.loop._owed == {}  # its new owner reads from the last commit


def test_sink_dead_letters_after_n_attempts_and_tells_the_case():
    registry = InMemoryRegistry()
    sink, producer = make_sink(registry, attempts=3), FakeProducer()
    client, rec = FakeClient([], then=outcome()), record(registry, issuance())
    assert drive(sink, rec, client, producer) == [(2, 8)]
    assert client.calls == 3 and sink.stats.dead_lettered == 1
    de = AvroDeserializer(registry)
    by_topic = {t: de(v, SerializationContext(t)) for t, _, v in producer.sent}
    assert set(by_topic) == {"u.cases.events", "u.cases.province.79", "u.dlq"}
    failed, letter = by_topic["u.cases.events"], by_topic["u.dlq"]
    assert isinstance(failed, models.IssuanceDeliveryFailed)
    assert (failed.issuance_id, failed.attempts, failed.last_error) == ("iss-1", 3, "HTTP 503")
    assert (letter.original_topic, letter.original_partition, letter.original_offset) == ("u.issuance.requests", 2, 7)
    assert letter.error_code == "PROCESSING_FAILED" and "after 3 attempt(s)" in letter.error_text
    assert (letter.original_value, letter.original_key) == (rec.value, rec.key)  # original bytes, unchanged
    assert "Nguyễn" not in letter.error_text and "079085123456" not in letter.error_text


def test_sink_does_not_retry_a_permanent_refusal():
    registry = InMemoryRegistry()
    sink, producer = make_sink(registry, attempts=5), FakeProducer()
    client = FakeClient([outcome(retryable=False, error="HTTP 400")])
    drive(sink, record(registry, issuance()), client, producer)
    assert client.calls == 1 and sink.stats.dead_lettered == 1


def test_sink_dead_letters_garbage_with_its_code():
    registry = InMemoryRegistry()
    sink, producer = make_sink(registry), FakeProducer()
    bad = SimpleNamespace(topic="u.issuance.requests", partition=0, offset=1, key=None, value=b"not avro")
    assert drive(sink, bad, FakeClient([]), producer) == [(0, 2)]
    [(topic, _, value)] = producer.sent
    letter = AvroDeserializer(registry)(value, SerializationContext(topic))
    assert topic == "u.dlq" and letter.error_code == "BAD_MAGIC_BYTE" and letter.original_value == b"not avro"
    assert sink.stats.undecodable == 1


def test_sink_stop_interrupts_the_backoff_without_giving_up():
    registry = InMemoryRegistry()
    sink, producer = make_sink(registry, attempts=5, backoff=Backoff(base_s=60, max_s=60)), FakeProducer()
    threading.Timer(0.2, sink.loop.stopping.set).start()
    started = time.monotonic()
    committed = drive(sink, record(registry, issuance()), FakeClient([], then=outcome()), producer)
    assert time.monotonic() - started < 10 and producer.sent == []  # neither delivered nor dead-lettered
    assert committed == []  # read again on the next start


def test_webhook_output_retries_with_event_id_as_key_then_gives_up():
    keys = []

    def flaky(request):
        keys.append(request.headers["Idempotency-Key"])
        return httpx.Response(503 if len(keys) < 3 else 200)

    event = models.CaseAwaiting(event_id=str(uuid.uuid4()), occurred_at=dt.datetime(2025, 8, 1, tzinfo=UTC),
                                source={"system": "t", "instance": "t"}, case_id="c", cccd="079085123456",
                                province="79", missing=["EXAM_MISSING"])
    fast = Backoff(base_s=0.001, max_s=0.002)
    WebhookOutput("http://hook", backoff=fast, transport=httpx.MockTransport(flaky)).emit(render.view(event))
    assert keys == [event.event_id] * 3
    never = WebhookOutput("http://hook", attempts=2, backoff=fast,
                          transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    with pytest.raises(WebhookFailed):
        never.emit(render.view(event))


# ---- HTTPS to the stand-in, verified against its generated CA ----

def test_client_over_https_verifies_the_standin_against_its_ca(tmp_path):
    import ssl

    from consumers.portal.standin import write_tls_files

    files = write_tls_files(tmp_path)
    assert stat.S_IMODE(files["key"].stat().st_mode) == 0o600
    with StandinPortal(tls=(files["cert"], files["key"])) as portal:
        assert portal.url.startswith("https://127.0.0.1:")
        trusted = PortalClient(portal.url, credentials=portal.credentials, timeout_s=5,
                               verify=ssl.create_default_context(cafile=str(files["ca"])))
        assert trusted.deliver(issuance(1)).delivered and portal.distinct == 1
        untrusted = PortalClient(portal.url, credentials=portal.credentials, timeout_s=5).deliver(issuance(2))
        assert not untrusted.delivered and "ConnectError" in untrusted.error  # system CAs do not know it
        with pytest.raises(httpx.HTTPError):  # plain HTTP to the TLS port: refused, and the portal lives on
            httpx.post(portal.url.replace("https", "http") + "/issuances", json={}, timeout=5)
        assert trusted.deliver(issuance(3)).delivered and portal.distinct == 2
        trusted.close()


class PollScript(FakeConsumer):
    """poll() follows a script: "x" raises `error` (default: a lost connection), "." returns nothing; it stops the
    loop at the script's end and counts its calls."""

    def __init__(self, script, stop, error=None):
        from kafka.errors import KafkaConnectionError

        super().__init__()
        self.script, self.stop, self.polls = list(script), stop, 0
        self.error = error or KafkaConnectionError("connection reset")

    def poll(self, timeout_ms=0):
        self.polls += 1
        step = self.script.pop(0)
        if not self.script:
            self.stop.set()
        if step == "x":
            raise self.error
        return {}

    def close(self, autocommit=False):
        pass


def test_a_broker_lost_during_a_poll_is_waited_out_not_the_end_of_the_loop():
    from kafka.errors import TopicAuthorizationFailedError

    registry = InMemoryRegistry()
    sink = make_sink(registry)
    stop = threading.Event()
    sink.loop._consumer = consumer = PollScript("x.", stop)
    sink.loop._producer = SimpleNamespace(close=lambda timeout=None: None)
    stats = sink.loop.run(stop)  # used to raise: the portal sink's loop ended when the coordinator's broker died
    assert consumer.polls == 2 and stats.outage_waits == 1 and not stats.errors

    refused = make_sink(registry)
    refused.loop._consumer = PollScript("x.", threading.Event(), TopicAuthorizationFailedError("not authorized"))
    refused.loop._producer = SimpleNamespace(close=lambda timeout=None: None)
    with pytest.raises(TopicAuthorizationFailedError):  # not retriable: the loop ends with the reason
        refused.loop.run(threading.Event())


def test_the_poll_backoff_counts_consecutive_failures_only():
    """Eleven outages in a loop's life, each over at the next poll, each wait 0.5 s, not 30 s (session 8)."""
    registry = InMemoryRegistry()
    sink, stop, attempts = make_sink(registry), threading.Event(), []
    sink.loop.backoff = SimpleNamespace(delay=lambda attempt, rng=None: attempts.append(attempt) or 0.0)
    sink.loop._consumer = PollScript("x." * 11 + "xxx.", stop)
    sink.loop._producer = SimpleNamespace(close=lambda timeout=None: None)
    stats = sink.loop.run(stop)
    assert attempts == [1] * 11 + [1, 2, 3] and stats.outage_waits == 14


def test_the_re_read_backoff_counts_from_one_again_after_a_committed_batch():
    from schemas.errors import TransientError

    registry = InMemoryRegistry()
    sink, attempts, script = make_sink(registry), [], ["fail", "fail", "ok", "fail", "ok"]
    sink.loop.backoff = SimpleNamespace(delay=lambda attempt, rng=None: attempts.append(attempt) or 0.0)

    def act(rec, event):
        if script.pop(0) == "fail":
            raise TransientError("registry away")

    sink.loop._act = act
    consumer = FakeConsumer()
    consumer.seek = lambda tp, offset: None
    rec = record(registry, issuance())
    for _ in range(5):
        drive(sink, rec, FakeClient([]), FakeProducer(), consumer)
    assert attempts == [1, 2, 1] and consumer.committed == [(2, 8), (2, 8)]


def test_a_delivery_finished_before_act_returns_does_not_deadlock():
    """add_done_callback on a finished future runs the callback at once, in act's thread (under the sink's lock)."""
    from concurrent.futures import Future

    registry = InMemoryRegistry()
    sink = make_sink(registry)
    done = Future()
    done.set_result(None)
    sink._pool = SimpleNamespace(submit=lambda *args: done, shutdown=lambda wait=True: None)
    finished = threading.Event()
    threading.Thread(target=lambda: (sink.act(None, issuance(1)), finished.set()), daemon=True).start()
    assert finished.wait(5), "act deadlocked on its own lock"
    assert sink._in_flight == {}
