"""The adapters on the shared consume loop (consumers.loop), on the real broker and registry: a request that cannot
be decoded, or is not a request, goes to the DLQ with its code (it used to be skipped with a log line) and the
partition moves on; a registry outage is waited out (the responder's thread used to die) and the request answered
once the registry is back, with nothing dead-lettered."""
from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest

from producers.adapters.localdb import write_records
from producers.adapters.runner import IDENTITY_DB, AdapterSet
from producers.sdk import Publisher
from producers.testing import create_topics, private_catalogue, read_events, topic_size, wait_until
from schemas import models
from schemas.errors import RegistryUnavailable
from schemas.registry import RegistryClient
from schemas.serde import AvroSerializer, SerializationContext
from topology import catalogue as topics
from topology import contracts
from topology.processor.assembler import tick

pytestmark = pytest.mark.integration

NOW = dt.datetime(2025, 9, 1, 9, 0, tzinfo=dt.timezone.utc)
CCCD = "001085012345"
SOURCE = models.Source(system="case-processor", instance="test")


class FlakyRegistry:
    """A registry client that is 'down' (RegistryUnavailable) while `down` is set."""

    def __init__(self, inner: RegistryClient) -> None:
        self.inner, self.down, self.refused = inner, threading.Event(), 0

    def _call(self, name, *args):
        if self.down.is_set():
            self.refused += 1
            raise RegistryUnavailable("schema registry at test unreachable (simulated outage)")
        return getattr(self.inner, name)(*args)

    def register(self, subject, schema):
        return self._call("register", subject, schema)

    def lookup(self, subject, schema):
        return self._call("lookup", subject, schema)

    def get_by_id(self, schema_id):
        return self._call("get_by_id", schema_id)


@pytest.fixture
def adapter_bus(kafka_bootstrap, schema_registry_url, tmp_path):
    catalogue = private_catalogue()
    create_topics(kafka_bootstrap, catalogue)
    registry = RegistryClient(schema_registry_url)
    contracts.register(registry, catalogue)  # as the operator: the adapters only look them up
    write_records(tmp_path / IDENTITY_DB, [{"cccd": CCCD, "full_name": "Nguyễn Văn A",
                                             "date_of_birth": "1985-01-02", "sex": "MALE",
                                             "phones": ["0912345678"]}])
    with Publisher(kafka_bootstrap, registry, catalogue=catalogue, client_id="test-case-processor") as publisher:
        yield catalogue, registry, publisher
    registry.close()


def request(n: int) -> models.IdentityCheckRequested:
    return models.IdentityCheckRequested(
        event_id=str(uuid.uuid4()), occurred_at=NOW, source=SOURCE, correlation_id=f"case-{n}",
        request_id=f"req-{n}", case_id=f"case-{n}", cccd=CCCD, province="01", full_name="Nguyễn Văn A",
        date_of_birth=dt.date(1985, 1, 2), phone="0912345678")


def test_undecodable_and_foreign_requests_are_dead_lettered_and_the_rest_answered(kafka_bootstrap, adapter_bus, tmp_path):
    from kafka import KafkaProducer

    catalogue, registry, publisher = adapter_bus
    requests = catalogue.name(topics.IDENTITY_REQUESTS)
    wrong = AvroSerializer(registry)(tick(CCCD, NOW), SerializationContext(requests))  # not a request
    raw = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for value in (b"not avro at all", wrong):
        raw.send(requests, key=CCCD.encode(), value=value).get(30)
    raw.close()
    publisher.publish(request(1))

    with AdapterSet(kafka_bootstrap, registry, catalogue=catalogue, data_dir=tmp_path, run_police=False,
                    run_payment=False) as adapters:
        assert wait_until(lambda: adapters.stats()["identity"].answers == 1, timeout_s=30)
        assert wait_until(lambda: adapters.stats()["identity"].skipped == 2, timeout_s=30)
        assert adapters.responders["identity"].running  # still consuming after the poison
    letters = [e for _, e in read_events(kafka_bootstrap, registry, catalogue.name(topics.DLQ), count=2)]
    assert sorted(letter.error_code for letter in letters) == ["BAD_MAGIC_BYTE", "UNKNOWN_EVENT_TYPE"]
    assert {letter.original_topic for letter in letters} == {requests}
    assert {letter.source.system for letter in letters} == {"identity-adapter"}
    [(_, answer)] = read_events(kafka_bootstrap, registry, catalogue.name(topics.IDENTITY_RESULTS), count=1)
    assert answer.request_id == "req-1"


def test_a_registry_outage_is_waited_out_not_dead_lettered(kafka_bootstrap, adapter_bus, tmp_path, caplog):
    catalogue, registry, publisher = adapter_bus
    publisher.publish(request(2))
    flaky = FlakyRegistry(registry)
    flaky.down.set()
    with AdapterSet(kafka_bootstrap, flaky, catalogue=catalogue, data_dir=tmp_path, run_police=False,
                    run_payment=False) as adapters:
        identity = adapters.responders["identity"]
        assert wait_until(lambda: identity.loop.stats.outage_waits >= 1, timeout_s=30)
        assert identity.running and adapters.stats()["identity"].answers == 0
        flaky.down.clear()
        assert wait_until(lambda: adapters.stats()["identity"].answers == 1, timeout_s=60)
        assert not identity.loop.stats.errors
        # The loop reads its topic's metadata before its first join: a member that joined without it was assigned
        # nothing ("No partition metadata"), and under load stayed so for minutes (faults harness, CI).
        assert not [r for r in caplog.records if "No partition metadata" in r.getMessage()]
    assert topic_size(kafka_bootstrap, catalogue.name(topics.DLQ)) == 0
    [(_, answer)] = read_events(kafka_bootstrap, registry, catalogue.name(topics.IDENTITY_RESULTS), count=1)
    assert answer.request_id == "req-2"
