"""Helpers for tests and the demo: make a prefixed catalogue's topics, read events back with a deadline.

Why here and not in tests/: the demo and other teams' tests need the same two things - a private set of topics and
"read N events from a topic, or fail after T seconds" - and polling with a deadline (never a sleep) is easy to get
subtly wrong.
"""
from __future__ import annotations

import time
import uuid

from schemas.models import Event
from schemas.serde import AvroDeserializer, SchemaRegistry, SerializationContext
from topology.catalogue import Catalogue
from topology.connection import Connection
from topology.kafka_python import new_client


def private_catalogue(prefix: str | None = None, *, input_partitions: int = 3) -> Catalogue:
    """A catalogue under a unique prefix, without the 34 province topics (fast to create)."""
    return Catalogue.build(prefix=prefix or f"t{uuid.uuid4().hex[:8]}.", replication_factor=1,
                           input_partitions=input_partitions, provinces=[])


def create_topics(bootstrap_servers: str | Connection, catalogue: Catalogue) -> list[str]:
    """Create the catalogue's topics (`topology.apply.create_topics`); returns what was done."""
    from topology.apply import create_topics as apply_catalogue

    return apply_catalogue(bootstrap_servers, catalogue)


def read_events(bootstrap_servers: str | Connection, registry: SchemaRegistry, topic: str, *, count: int,
                timeout_s: float = 30.0, settle_s: float = 0.0) -> list[tuple[str | None, Event]]:
    """Read (key, event) pairs from the beginning of a topic until `count` arrived or `timeout_s` passed; then,
    with `settle_s`, keep reading that long to catch extra (duplicate) records. Returns what was read."""
    from kafka import KafkaConsumer

    de = AvroDeserializer(registry)
    consumer = new_client(KafkaConsumer, topic, **Connection.of(bootstrap_servers).kafka_python_kwargs(),
                          group_id=None, auto_offset_reset="earliest", enable_auto_commit=False)
    out: list[tuple[str | None, Event]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and len(out) < count:
            for records in consumer.poll(timeout_ms=200).values():
                for r in records:
                    out.append((r.key.decode() if r.key else None, de(r.value, SerializationContext(r.topic))))
        settle_until = time.monotonic() + settle_s
        while time.monotonic() < settle_until:
            for records in consumer.poll(timeout_ms=200).values():
                for r in records:
                    out.append((r.key.decode() if r.key else None, de(r.value, SerializationContext(r.topic))))
    finally:
        consumer.close()
    return out


def read_to_end(bootstrap_servers: str | Connection, registry: SchemaRegistry,
                topic: str) -> list[tuple[object, Event]]:
    """Every record of a topic from the beginning to its end offsets at the time of the call, as
    (Kafka record, decoded event) pairs: what a test reconciles against after the pipeline went quiet."""
    from kafka import KafkaConsumer

    from consumers.read import partitions_of, records_to_end

    de = AvroDeserializer(registry)
    consumer = new_client(KafkaConsumer, **Connection.of(bootstrap_servers).kafka_python_kwargs(), group_id=None,
                          enable_auto_commit=False)
    try:
        return [(r, de(r.value, SerializationContext(topic)))
                for r in records_to_end(consumer, partitions_of(consumer, topic))]
    finally:
        consumer.close()


def wait_until(predicate, *, timeout_s: float = 30.0, interval_s: float = 0.05) -> bool:
    """Poll `predicate` until it is true or the deadline passes (for counters updated by other threads)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def topic_size(bootstrap_servers: str | Connection, topic: str) -> int:
    """Number of records ever written to a topic (sum of end offsets): counts duplicates without reading."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    consumer = new_client(KafkaConsumer, **Connection.of(bootstrap_servers).kafka_python_kwargs(), group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def group_settled(bootstrap_servers: str | Connection, group: str, members: int) -> bool:
    """True when `group` has `members` members and no rebalance in progress. Publishing before that can land
    records on a partition mid-handover; faust then drops its acked-but-uncommitted offsets (see the processor
    tests). A coordinator not yet elected on a fresh cluster counts as not settled."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    admin = new_client(KafkaAdminClient, **Connection.of(bootstrap_servers).kafka_python_kwargs())
    try:
        state = admin.describe_groups([group])[group]
    except KafkaError:
        return False
    finally:
        admin.close()
    return state["group_state"] == "Stable" and len(state["members"]) == members
