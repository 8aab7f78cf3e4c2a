"""Read whole topics, incrementally: every record from the beginning, then whatever arrived since.

Why assign partitions instead of joining a consumer group: the report reads everything, every time, and must
not move anybody's committed offsets; `catch_up()` reads to the end offsets *as they were when it was called*, so
it always returns, and calling it again picks up what arrived meanwhile (the demo's live progress does that).

A call that fails half-way (a broker or the registry away) loses nothing: every call starts right after the last
record handled, because a poll hands out records before they are handled and an abandoned poll would otherwise skip
them; after a Kafka error on a new client, because kafka-python's can stay stuck after every broker restarted. A read
past its deadline (`ReadTimedOut`, e.g. a partition whose leader hangs) keeps its client: a new one's bootstrap can
wait on a hung broker for ever (README, open findings), and the kept one reads on once the leader has moved (broker
test in tests/faults/test_three_nodes.py).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from kafka.errors import KafkaError

from schemas.errors import DeserializationError
from schemas.serde import AvroDeserializer, SchemaRegistry, SerializationContext
from topology.connection import Connection

from consumers.read import partitions_of, records_to_end
from topology.kafka_python import new_client


class TopicReader:
    """Decoded events per topic: `reader.catch_up(); reader.events["<topic>"]`."""

    def __init__(self, bootstrap_servers: str | Connection, registry: SchemaRegistry, topics: list[str]) -> None:
        self._connection = Connection.of(bootstrap_servers)
        self._deserialize = AvroDeserializer(registry)
        self._consumer = self._new_consumer()
        self._partitions = [tp for t in topics for tp in partitions_of(self._consumer, t)]
        self._next: dict[Any, int] = {}  # partition -> offset after the last record handled (else: the beginning)
        self.events: dict[str, list[Any]] = defaultdict(list)
        self.undecodable = 0

    def catch_up(self, timeout_s: float = 30.0) -> int:
        """Read up to the current end of every partition; returns how many records were read."""
        from kafka.structs import TopicPartition

        if self._consumer is None:
            self._consumer = self._new_consumer()
        read = 0
        try:
            for record in records_to_end(self._consumer, self._partitions, start=self._next, timeout_s=timeout_s):
                try:
                    event = self._deserialize(record.value, SerializationContext(record.topic))
                except DeserializationError:
                    self.undecodable += 1  # the processor dead-letters such input; the report counts it
                    event = None
                if event is not None:
                    self.events[record.topic].append(event)
                self._next[TopicPartition(record.topic, record.partition)] = record.offset + 1
                read += 1
        except KafkaError:  # the client's own trouble: a new one at the next call
            self._consumer.close()
            self._consumer = None
            raise
        return read

    def _new_consumer(self):
        from kafka import KafkaConsumer

        return new_client(KafkaConsumer, **self._connection.kafka_python_kwargs(), group_id=None,
                          enable_auto_commit=False, client_id="gplx-funnel")

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()

    def __enter__(self) -> "TopicReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
