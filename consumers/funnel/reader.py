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


class TopicReader:
    """Decoded events per topic: `reader.catch_up(); reader.events["<topic>"]`."""

    def __init__(self, bootstrap_servers: str | Connection, registry: SchemaRegistry, topics: list[str]) -> None:
        from kafka import KafkaConsumer
        from kafka.structs import TopicPartition

        self._deserialize = AvroDeserializer(registry)
        self._consumer = KafkaConsumer(**Connection.of(bootstrap_servers).kafka_python_kwargs(), group_id=None,
                                       enable_auto_commit=False, client_id="gplx-funnel")
        self._partitions = [TopicPartition(t, p) for t in topics
                            for p in sorted(self._consumer.partitions_for_topic(t) or ())]
        self._consumer.assign(self._partitions)
        self._consumer.seek_to_beginning(*self._partitions)
        self.events: dict[str, list[Any]] = defaultdict(list)
        self.undecodable = 0

    def catch_up(self, timeout_s: float = 30.0) -> int:
        """Read up to the current end of every partition; returns how many records were read."""
        import time

        ends = self._consumer.end_offsets(self._partitions)
        deadline = time.monotonic() + timeout_s
        read = 0
        while any(self._consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read to the end of the topics within {timeout_s:.0f}s")
            for tp, records in self._consumer.poll(timeout_ms=200).items():
                for record in records:
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
