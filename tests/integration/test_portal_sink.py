"""Portal issuance sink on the real broker and registry, against the stand-in portal: each issuance exactly once
at the portal (also when re-delivered), survives the portal being down, and after N failures writes the DLQ
envelope and an IssuanceDeliveryFailed that the province sees. Every request is signed with the secret of a 0600
file the stand-in verifies over real HTTP; a forged or wrongly signed request is refused (401), never issued."""
from __future__ import annotations

import datetime as dt
import io
import stat
import time
import uuid

import httpx
import pytest

from consumers.portal import (Backoff, IssuanceSink, PortalCredentials, StandinPortal, read_secret_file,
                              write_secret_file)
from consumers.subscriber import JsonlOutput, ProvinceSubscriber
from schemas import models
from schemas.registry import RegistryClient
from schemas.serde import AvroDeserializer, AvroSerializer, SerializationContext, key_bytes
from topology.catalogue import Province

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc
FAST = Backoff(base_s=0.05, max_s=0.5, jitter=0.5)


@pytest.fixture
def catalogue(private_topics):
    return private_topics([Province("79", "Hồ Chí Minh")])


@pytest.fixture
def secret_file(tmp_path):
    """The shared secret as an operator deploys it: a 0600 file both sides read."""
    path = tmp_path / "portal.secret"
    write_secret_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return path


@pytest.fixture
def portal(secret_file):
    credentials = read_secret_file(secret_file)
    with StandinPortal(keys={credentials.key_id: credentials.secret}) as p:
        yield p


def issuance(i: int) -> models.IssuanceRequested:
    case_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"case/{i}"))
    return models.IssuanceRequested(
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{case_id}/issuance")), occurred_at=dt.datetime.now(UTC),
        source={"system": "test", "instance": "it"}, correlation_id=case_id,
        issuance_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{case_id}/issuance")), case_id=case_id,
        cccd=f"0790850{i:05d}", province="79", full_name="Trần Thị B", date_of_birth=dt.date(1985, 5, 6),
        licence_number=f"79{i:010d}", classes=["B"], delivery_method="PICKUP")


def publish(bootstrap: str, registry_url: str, topic: str, events: list) -> None:
    from kafka import KafkaProducer

    ser = AvroSerializer(RegistryClient(registry_url))
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for event in events:
        producer.send(topic, key=key_bytes(event.cccd), value=ser(event, SerializationContext(topic)))
    producer.flush(30)
    producer.close()


def wait_for(condition, timeout_s: float = 60, what: str = "condition"):
    """Poll with a deadline (no fixed sleeps as synchronisation)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def read_topic(bootstrap: str, registry_url: str, topic: str, count: int, timeout_s: float = 30) -> list:
    from kafka import KafkaConsumer

    de = AvroDeserializer(RegistryClient(registry_url))
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=int(timeout_s * 1000))
    out = []
    try:
        for message in consumer:
            out.append((message, de(message.value, SerializationContext(topic))))
            if len(out) >= count:
                break
    finally:
        consumer.close()
    return out


def committed_total(bootstrap: str, group: str) -> int:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
        return sum(meta.offset for meta in offsets.values() if meta.offset > 0)
    finally:
        admin.close()


def sink(kafka_bootstrap, schema_registry_url, catalogue, portal, secret_file, **kw) -> IssuanceSink:
    kw.setdefault("credentials", read_secret_file(secret_file))
    return IssuanceSink(kafka_bootstrap, schema_registry_url, portal.url, catalogue=catalogue, backoff=FAST, **kw)


def test_each_issuance_exactly_once_at_the_portal_even_when_redelivered(kafka_bootstrap, schema_registry_url,
                                                                        catalogue, portal, secret_file):
    approvals = [issuance(i) for i in range(6)]
    topic = catalogue.name("issuance.requests")
    # Two of them twice on the topic, as after a case-processor replay (same deterministic issuance_id).
    publish(kafka_bootstrap, schema_registry_url, topic, approvals + approvals[:2])
    records = len(approvals) + 2

    first = sink(kafka_bootstrap, schema_registry_url, catalogue, portal, secret_file).start()
    try:
        # a copy read while its original is in flight joins that delivery instead of a second POST
        wait_for(lambda: first.stats.delivered + first.stats.joined == records, what="every record delivered")
        wait_for(lambda: committed_total(kafka_bootstrap, first.group_id) == records, what="offsets committed")
    finally:
        first.stop()
    assert first.group_id == catalogue.prefix + "portal"
    assert (portal.received, portal.distinct) == (first.stats.delivered, len(approvals))
    assert set(portal.issuances()) == {a.issuance_id for a in approvals}

    # Everything delivered again (a group that lost its offsets): the portal still has each issuance once.
    again = sink(kafka_bootstrap, schema_registry_url, catalogue, portal, secret_file,
                 group_id=catalogue.prefix + "replay").start()
    try:
        wait_for(lambda: again.stats.delivered + again.stats.joined == records, what="re-delivery")
    finally:
        again.stop()
    assert (portal.received, portal.distinct) == (first.stats.delivered + again.stats.delivered, len(approvals))
    assert first.stats.errors == again.stats.errors == []


def test_survives_the_portal_being_down_then_refusing(kafka_bootstrap, schema_registry_url, catalogue, portal,
                                                     secret_file):
    approvals = [issuance(i) for i in range(100, 104)]
    portal.go_down()
    publish(kafka_bootstrap, schema_registry_url, catalogue.name("issuance.requests"), approvals)
    running = sink(kafka_bootstrap, schema_registry_url, catalogue, portal, secret_file,
                   max_attempts=50).start()
    try:
        wait_for(lambda: running.stats.failed_attempts >= 3, what="attempts failing while the portal is down")
        portal.refuse_next(4)  # when it comes back it is still overloaded for a while
        portal.come_up()
        wait_for(lambda: portal.distinct == len(approvals), what="every issuance delivered after the outage")
        wait_for(lambda: committed_total(kafka_bootstrap, running.group_id) == len(approvals), what="commits")
    finally:
        stats = running.stop()
    assert portal.refused == 4 and portal.received == len(approvals)
    assert stats.delivered == len(approvals) and stats.dead_lettered == 0 and stats.failed_attempts >= 7


def test_after_n_failures_dlq_and_failure_event_then_continues(kafka_bootstrap, schema_registry_url, catalogue,
                                                               portal, secret_file):
    doomed, later = issuance(200), issuance(201)
    topic = catalogue.name("issuance.requests")
    portal.refuse_for(3600)
    publish(kafka_bootstrap, schema_registry_url, topic, [doomed])
    running = sink(kafka_bootstrap, schema_registry_url, catalogue, portal, secret_file,
                   max_attempts=3).start()
    try:
        wait_for(lambda: running.stats.dead_lettered == 1, what="dead-lettering after 3 attempts")
        wait_for(lambda: committed_total(kafka_bootstrap, running.group_id) == 1, what="commit after the DLQ")
        portal.refuse_for(0)
        publish(kafka_bootstrap, schema_registry_url, topic, [later])
        wait_for(lambda: portal.distinct == 1, what="the next issuance delivered")
    finally:
        stats = running.stop()
    assert stats.failed_attempts == 3 and portal.refused == 3 and set(portal.issuances()) == {later.issuance_id}

    [(_, letter)] = read_topic(kafka_bootstrap, schema_registry_url, catalogue.name("dlq"), 1)
    # the topic holds both issuances (maybe on different partitions): compare with the doomed one's record
    [original] = [record for record, event in read_topic(kafka_bootstrap, schema_registry_url, topic, 2)
                  if event.issuance_id == doomed.issuance_id]
    assert isinstance(letter, models.DeadLetter) and letter.error_code == "PROCESSING_FAILED"
    assert (letter.original_topic, letter.original_partition, letter.original_offset) == (
        topic, original.partition, original.offset)
    assert letter.original_value == original.value and letter.original_key == original.key
    assert "after 3 attempt(s)" in letter.error_text and "HTTP 503" in letter.error_text

    [(_, failed)] = read_topic(kafka_bootstrap, schema_registry_url, catalogue.name("cases.events"), 1)
    assert isinstance(failed, models.IssuanceDeliveryFailed)
    assert (failed.issuance_id, failed.case_id, failed.attempts) == (doomed.issuance_id, doomed.case_id, 3)

    # The province sees it, in Vietnamese.
    out = io.StringIO()
    result = ProvinceSubscriber(kafka_bootstrap, schema_registry_url, "79", output=JsonlOutput(out),
                                catalogue=catalogue, from_beginning=True).run(max_events=1, idle_timeout_s=30)
    assert result.events == 1 and '"state_label": "Gửi đề nghị cấp GPLX thất bại"' in out.getvalue()


def test_a_forged_post_is_refused_and_never_issued(portal):
    """Anyone who can reach the portal, without the secret: a plain POST of a well-formed issuance."""
    event = issuance(300)
    forged = httpx.post(portal.url + "/issuances", json=event.model_dump(mode="json"),
                        headers={"Idempotency-Key": event.issuance_id}, timeout=5)
    guessed = httpx.post(portal.url + "/issuances", json=event.model_dump(mode="json"), timeout=5,
                         headers={"Idempotency-Key": event.issuance_id, "Authorization": "Bearer gplx-portal-sink",
                                  "X-GPLX-Timestamp": str(int(time.time())), "X-GPLX-Signature": "0" * 64})
    assert (forged.status_code, guessed.status_code) == (401, 401)
    assert forged.json()["error"].startswith("missing Authorization")
    assert "signature does not match" in guessed.json()["error"]
    assert (portal.unauthorized, portal.received, portal.distinct) == (2, 0, 0) and portal.issuances() == {}
    assert httpx.get(portal.url + "/issuances", timeout=5).json()["unauthorized"] == 2


def test_a_sink_with_the_wrong_secret_dead_letters_at_once_with_the_reason(kafka_bootstrap, schema_registry_url,
                                                                          catalogue, portal, secret_file):
    doomed = issuance(400)
    publish(kafka_bootstrap, schema_registry_url, catalogue.name("issuance.requests"), [doomed])
    impostor = PortalCredentials.generate()  # the right key id, another secret
    running = sink(kafka_bootstrap, schema_registry_url, catalogue, portal, secret_file, max_attempts=5,
                   credentials=impostor).start()
    try:
        wait_for(lambda: running.stats.dead_lettered == 1, what="dead-lettering of the refused request")
        wait_for(lambda: committed_total(kafka_bootstrap, running.group_id) == 1, what="commit after the DLQ")
    finally:
        stats = running.stop()
    assert stats.attempts == 1 and stats.delivered == 0  # a 401 is not retried
    assert (portal.unauthorized, portal.distinct) == (1, 0)
    [(_, letter)] = read_topic(kafka_bootstrap, schema_registry_url, catalogue.name("dlq"), 1)
    assert letter.error_code == "PROCESSING_FAILED" and "HTTP 401" in letter.error_text
    assert "signature does not match the body" in letter.error_text
    for secret in (impostor.secret, read_secret_file(secret_file).secret):
        assert secret not in repr(letter.model_dump()).encode()
