"""The funnel's TopicReader on the real broker and registry: a read that fails half-way (the registry away while a
poll's records are being decoded) loses nothing and repeats nothing; the next call starts after the last record
handled. The fault harness and the demo watch a run through this reader while brokers and the registry fail."""
from __future__ import annotations

import pytest

from consumers.funnel import TopicReader
from schemas.errors import RegistryUnavailable
from schemas.registry import RegistryClient
from topology import catalogue as topics
from topology.catalogue import Province

from test_portal_sink import issuance, publish

pytestmark = pytest.mark.integration


class RegistryAwayOnce:
    """A deserializer that answers like the registry being unreachable at its `at`-th call, once."""

    def __init__(self, inner, at: int):
        self.inner, self.at, self.calls = inner, at, 0

    def __call__(self, data, ctx):
        self.calls += 1
        if self.calls == self.at:
            raise RegistryUnavailable("schema registry unreachable (test)")
        return self.inner(data, ctx)


def test_a_read_failing_half_way_loses_and_repeats_nothing(kafka_bootstrap, schema_registry_url, private_topics):
    catalogue = private_topics([Province("79", "Hồ Chí Minh")])
    topic = catalogue.name(topics.ISSUANCE_REQUESTS)
    sent = [issuance(i) for i in range(60)]
    publish(kafka_bootstrap, schema_registry_url, topic, sent)

    with RegistryClient(schema_registry_url) as registry, TopicReader(kafka_bootstrap, registry, [topic]) as reader:
        reader._deserialize = RegistryAwayOnce(reader._deserialize, at=25)  # records 25.. of a poll not handled
        with pytest.raises(RegistryUnavailable):
            reader.catch_up()
        assert 0 < len(reader.events[topic]) < len(sent)  # it did fail half-way
        reader.catch_up()
        got = sorted(e.issuance_id for e in reader.events[topic])

    assert got == sorted(e.issuance_id for e in sent)


class KafkaTroubleOnce(RegistryAwayOnce):
    """As if the client failed (KafkaTimeoutError) at the `at`-th record, once."""

    def __call__(self, data, ctx):
        from kafka.errors import KafkaTimeoutError

        if self.calls + 1 == self.at:
            self.calls += 1
            raise KafkaTimeoutError("client stuck (test)")
        return super().__call__(data, ctx)


def test_a_kafka_error_half_way_gets_a_new_client_that_resumes(kafka_bootstrap, schema_registry_url, private_topics):
    from kafka.errors import KafkaTimeoutError

    catalogue = private_topics([Province("79", "Hồ Chí Minh")])
    topic = catalogue.name(topics.ISSUANCE_REQUESTS)
    sent = [issuance(i) for i in range(60)]
    publish(kafka_bootstrap, schema_registry_url, topic, sent)

    with RegistryClient(schema_registry_url) as registry, TopicReader(kafka_bootstrap, registry, [topic]) as reader:
        first_client = reader._consumer
        reader._deserialize = KafkaTroubleOnce(reader._deserialize, at=25)
        with pytest.raises(KafkaTimeoutError):
            reader.catch_up()
        assert reader._consumer is None  # the failed client is dropped, not nursed back
        reader.catch_up()
        assert reader._consumer is not None and reader._consumer is not first_client
        got = sorted(e.issuance_id for e in reader.events[topic])

    assert got == sorted(e.issuance_id for e in sent)
