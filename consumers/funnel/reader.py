"""Read whole topics, incrementally: every record from the beginning, then whatever arrived since.

Why assign partitions instead of joining a consumer group: the report reads everything, every time, and must
not move anybody's committed offsets; `catch_up()` reads to the end offsets *as they were when it was called*, so
it always returns, and calling it again picks up what arrived meanwhile (the demo's live progress does that).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from schemas.errors import DeserializationError
from schemas.serde import AvroDeserializer, SchemaRegistry, SerializationContext
from topology.connection import Connection

from consumers.read import HERE, partitions_of, records_to_end


class TopicReader:
    """Decoded events per topic: `reader.catch_up(); reader.events["<topic>"]`."""

    def __init__(self, bootstrap_servers: str | Connection, registry: SchemaRegistry, topics: list[str]) -> None:
        from kafka import KafkaConsumer

        self._deserialize = AvroDeserializer(registry)
        self._consumer = KafkaConsumer(**Connection.of(bootstrap_servers).kafka_python_kwargs(), group_id=None,
                                       enable_auto_commit=False, client_id="gplx-funnel")
        self._partitions = [tp for t in topics for tp in partitions_of(self._consumer, t)]
        self._consumer.assign(self._partitions)
        self._consumer.seek_to_beginning(*self._partitions)
        self.events: dict[str, list[Any]] = defaultdict(list)
        self.undecodable = 0

    def catch_up(self, timeout_s: float = 30.0) -> int:
        """Read up to the current end of every partition; returns how many records were read."""
        read = 0
        for record in records_to_end(self._consumer, self._partitions, start=HERE, timeout_s=timeout_s):
            read += 1
            try:
                event = self._deserialize(record.value, SerializationContext(record.topic))
            except DeserializationError:
                self.undecodable += 1  # the processor dead-letters such input; the report counts it
                continue
            if event is not None:
                self.events[record.topic].append(event)
        return read

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> "TopicReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
