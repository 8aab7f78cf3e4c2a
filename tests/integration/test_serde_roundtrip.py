"""Every event type through the real broker and the real schema registry (Apicurio ccompat), and back equal."""
from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import loader, models, serde, testing
from schemas.errors import IncompatibleSchema, SchemaNotFound, UnknownSchemaId
from schemas.registry import RegistryClient

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")]

EVENTS = sorted(models.EVENT_TYPES)


@pytest.fixture(scope="module")
def registry(schema_registry_url):
    with RegistryClient(schema_registry_url) as client:
        yield client


@pytest.fixture(scope="module")
def topic(kafka_bootstrap):
    """A fresh topic; auto-creation may be off, so create it."""
    from kafka.admin import KafkaAdminClient, NewTopic

    name = f"it.serde.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
        yield name
        admin.delete_topics([name])
    finally:
        admin.close()


def test_every_event_type_through_kafka_and_registry(kafka_bootstrap, registry, topic):
    from kafka import KafkaConsumer, KafkaProducer

    ser, de = serde.AvroSerializer(registry), serde.AvroDeserializer(RegistryClient(registry.url))
    sent = []

    @settings(max_examples=5, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(EVENTS).flatmap(lambda n: testing.events(models.EVENT_TYPES[n])))
    def collect(event):
        sent.append(event)

    collect()
    for name in EVENTS:  # and at least one of every type, whatever hypothesis picked
        sent.append(testing.events(models.EVENT_TYPES[name]).example())

    ctx = serde.SerializationContext(topic)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for i, event in enumerate(sent):
        key = getattr(event, "cccd", None) or str(i)
        producer.send(topic, key=serde.key_bytes(key), value=ser(event, ctx), headers=[("i", str(i).encode())])
    producer.flush(30)
    producer.close()

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=20_000)
    received = {}
    for message in consumer:
        received[int(dict(message.headers)["i"])] = de(message.value, ctx)
        if len(received) == len(sent):
            break
    consumer.close()
    assert [received.get(i) for i in range(len(sent))] == sent
    # One subject per (topic, event type): TopicRecordNameStrategy.
    for name in EVENTS:
        latest = registry.get_latest(serde.subject_name(topic, name))
        assert latest.schema_id == registry.lookup(serde.subject_name(topic, name), loader.event_schema_text(name))


def test_registry_client_against_apicurio(registry, topic):
    name = "vn.gplx.payment.PaymentTransaction"
    subject = serde.subject_name(f"{topic}.compat", name)
    text = loader.event_schema_text(name)
    schema_id = registry.register(subject, text)
    assert RegistryClient(registry.url).register(subject, text) == schema_id  # idempotent
    registry.set_compatibility(subject, "FULL_TRANSITIVE")
    assert registry.get_compatibility(subject) == "FULL_TRANSITIVE"
    schema = loader.event_schema(name)
    schema["fields"].append({"name": "channel", "type": "string", "doc": "no default: breaks FULL"})
    ok, messages = registry.check_compatibility(subject, schema)
    assert not ok
    with pytest.raises(IncompatibleSchema):
        RegistryClient(registry.url).register(subject, schema)
    schema["fields"][-1]["default"] = "web"
    assert registry.check_compatibility(subject, schema)[0]
    with pytest.raises(SchemaNotFound):
        registry.get_latest(f"{topic}.no-such-subject")
    with pytest.raises(UnknownSchemaId):
        serde.AvroDeserializer(registry)(b"\x00\x7f\xff\xff\xf0" + b"\x00", serde.SerializationContext(topic))
