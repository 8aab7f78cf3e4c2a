"""The foundation on the real broker: round trips with both Python clients, the admin API, the registry."""
from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

pytestmark = pytest.mark.integration


def _create_topic(bootstrap: str, name: str, partitions: int = 3) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()


def test_topic_created_through_admin_api(kafka_bootstrap, unique_name):
    _create_topic(kafka_bootstrap, unique_name, partitions=3)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        assert unique_name in admin.list_topics()
        [described] = admin.describe_topics([unique_name])
        assert len(described["partitions"]) == 3
    finally:
        admin.close()


def test_round_trip_kafka_python(kafka_bootstrap, unique_name):
    _create_topic(kafka_bootstrap, unique_name)
    sent = [(f"079{i:09d}".encode(), f"event-{i}".encode()) for i in range(50)]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    for key, value in sent:
        producer.send(unique_name, key=key, value=value)
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(unique_name, bootstrap_servers=kafka_bootstrap, group_id=unique_name,
                             auto_offset_reset="earliest", consumer_timeout_ms=20000)
    received = []
    for record in consumer:
        received.append((record.key, record.value))
        if len(received) == len(sent):
            break
    consumer.close()
    assert sorted(received) == sorted(sent)


def test_round_trip_aiokafka(kafka_bootstrap, unique_name):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    _create_topic(kafka_bootstrap, unique_name)
    sent = [f"event-{i}".encode() for i in range(50)]

    async def run() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            for value in sent:
                await producer.send(unique_name, value=value, key=b"001090000001")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(unique_name, bootstrap_servers=kafka_bootstrap, group_id=unique_name,
                                    auto_offset_reset="earliest")
        await consumer.start()
        received = []
        try:
            async with asyncio.timeout(30):
                async for record in consumer:
                    received.append(record.value)
                    if len(received) == len(sent):
                        break
        finally:
            await consumer.stop()
        return received

    # one key -> one partition -> order is kept
    assert asyncio.run(run()) == sent


def test_schema_registered_and_fetched_by_id(schema_registry_url, unique_name):
    schema = {"type": "record", "name": "Ping", "namespace": "vn.gplx.test",
              "fields": [{"name": "n", "type": "long"}]}
    headers = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
    with httpx.Client(base_url=schema_registry_url, timeout=10) as client:
        registered = client.post(f"/subjects/{unique_name}-value/versions", headers=headers,
                                 json={"schema": json.dumps(schema)})
        assert registered.status_code == 200, registered.text
        schema_id = registered.json()["id"]
        fetched = client.get(f"/schemas/ids/{schema_id}")
        assert fetched.status_code == 200, fetched.text
    assert json.loads(fetched.json()["schema"]) == schema


def test_naming_a_topic_does_not_create_it(bus, kafka_bootstrap, unique_name):
    """auto.create.topics.enable=false on the launcher's brokers: a consumer's (or kcat's) metadata request for a
    misspelled topic used to create it, with the broker's defaults and no ACL of the catalogue."""
    if bus.mode != "local":
        pytest.skip("the broker's settings are the launcher's only on the local (plain) stack")
    consumer = KafkaConsumer(unique_name, bootstrap_servers=kafka_bootstrap, group_id=None)
    try:
        consumer.poll(timeout_ms=1000)
        assert not consumer.partitions_for_topic(unique_name)  # kafka-python 3: an empty set
    finally:
        consumer.close()
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        assert unique_name not in admin.list_topics()
    finally:
        admin.close()
