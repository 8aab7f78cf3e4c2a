"""The provincial subscriber: read one province's cases topic in that province's consumer group, show each event,
commit after showing it.

Why a consumer group per province (`province-<code>`, from the catalogue's principal naming): the province's
officers can stop and start the subscriber and it resumes where it left off (committed offsets), and the ACLs the
catalogue derives already grant exactly that group to the province's principal.

Starting point: `from_beginning` only matters for a partition where the group has NO committed offset yet (Kafka's
auto.offset.reset: earliest instead of latest). A group that has committed always resumes; it is never rewound.
At the end of a run the position of every assigned partition that was fully handled is committed, even where no
event arrived, so the next run resumes from there rather than from "latest" (which would skip what arrived between
the runs).

Delivery: at-least-once. Offsets are committed only after the output has finished with the events before them; a
crash between output and commit shows those events again on the next run.

Records that do not decode (bad bytes, unknown schema, domain-invalid) are skipped with a warning and counted: the
case processor's DLQ upstream is the place for poison input, and one bad record must not stop a province's view.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from schemas.errors import DeserializationError
from schemas.registry import RegistryClient
from schemas.serde import AvroDeserializer, SchemaRegistry, SerializationContext
from topology.catalogue import Catalogue, consumer_group, province_principal
from topology.connection import Connection

from consumers.subscriber import provinces, render
from consumers.subscriber.outputs import Output
from consumers.errors import TopicNotReadable  # noqa: F401 - defined there, imported here as before
from topology.kafka_python import new_client

log = logging.getLogger(__name__)


@dataclass
class SubscribeResult:
    """What one run did."""

    province: provinces.ProvinceChoice
    topic: str
    group_id: str
    events: int = 0  # shown by the output
    skipped: int = 0  # undecodable records skipped
    committed: dict[int, int] = field(default_factory=dict)  # partition -> last committed offset


class ProvinceSubscriber:
    """Consume `cases.province.<code>` for one province into an `Output`.

        sub = ProvinceSubscriber("127.0.0.1:9092", registry_url, "02", output=JsonlOutput())
        result = sub.run(max_events=10, idle_timeout_s=5)    # 02 Hà Giang -> reads cases.province.08
    """

    def __init__(self, bootstrap_servers: str | Connection, registry: str | SchemaRegistry, province: str, *,
                 output: Output,
                 prefix: str = "", from_beginning: bool = False, group_id: str | None = None,
                 catalogue: Catalogue | None = None, connect_timeout_s: float = 10.0) -> None:
        self.province = provinces.resolve(province)  # UnknownProvince (one line) before touching the network
        catalogue = catalogue or Catalogue.build(prefix=prefix)
        self.topic = catalogue.province_topic(self.province.code)
        self._province_group = catalogue.prefix + consumer_group(province_principal(self.province.code))
        self.group_id = group_id or self._province_group
        self.bootstrap_servers = bootstrap_servers
        self.from_beginning = from_beginning
        self._output = output
        self._registry = RegistryClient(registry, auth=Connection.of(bootstrap_servers).registry_auth) \
            if isinstance(registry, str) else registry
        self._deserializer = AvroDeserializer(self._registry)
        self._connect_ms = int(connect_timeout_s * 1000)

    def run(self, *, max_events: int | None = None, idle_timeout_s: float | None = None,
            stop: threading.Event | None = None) -> SubscribeResult:
        """Consume until `max_events` were shown, nothing arrived for `idle_timeout_s` (counted from when the
        partitions were assigned), or `stop` is set. Returns the counts; output errors propagate after the
        events already shown have been committed."""
        from kafka import KafkaConsumer

        stop = stop or threading.Event()
        result = SubscribeResult(self.province, self.topic, self.group_id)
        consumer = new_client(
            KafkaConsumer,
            self.topic, **Connection.of(self.bootstrap_servers).kafka_python_kwargs(), group_id=self.group_id,
            client_id=f"gplx-subscriber-{self.province.code}",
            enable_auto_commit=False,  # we commit after the output is done (at-least-once)
            auto_offset_reset="earliest" if self.from_beginning else "latest",  # only without a committed offset
            bootstrap_timeout_ms=self._connect_ms, max_poll_records=200,
        )
        # A topic this login may not describe looks like a missing one, and kafka-python would then wait for it
        # forever without a word (a metadata listener swallows TopicAuthorizationFailedError): say so instead.
        if not consumer.partitions_for_topic(self.topic):
            consumer.close(autocommit=False)
            raise TopicNotReadable(
                f"{self.topic} does not exist or this login may not read it: province {self.province.code}'s "
                f"principal {province_principal(self.province.code)} reads it in group {self._province_group} "
                "(check --client-config, and that `gplx-bus topics apply` and `gplx-bus acls apply` ran)")
        ctx = SerializationContext(self.topic)
        last_activity: float | None = None  # starts when partitions are assigned (joining takes seconds)
        unfinished: set = set()  # partitions holding fetched records that were not shown (max_events hit)
        try:
            while not stop.is_set() and not _reached(result, max_events):
                batch = consumer.poll(timeout_ms=500)
                now = time.monotonic()
                if last_activity is None and consumer.assignment():
                    last_activity = now
                if not batch:
                    if idle_timeout_s is not None and last_activity is not None \
                            and now - last_activity >= idle_timeout_s:
                        break
                    continue
                last_activity = now
                done: dict = {}  # TopicPartition -> next offset to read
                try:
                    for tp, records in batch.items():
                        for record in records:
                            if _reached(result, max_events):
                                unfinished.add(tp)
                                break
                            self._handle(record, ctx, result)
                            done[tp] = record.offset + 1
                finally:
                    # Commit what the output has finished with, also when it raised on a later event.
                    self._commit(consumer, done, set(batch), result)
            # Pin the position of quiet partitions too, so the next run resumes here and not at "latest".
            self._commit(consumer, {}, unfinished, result)
        finally:
            consumer.close(autocommit=False)
        log.info("subscriber %s: %d events shown, %d undecodable skipped", self.topic, result.events,
                 result.skipped)
        return result

    def _handle(self, record, ctx: SerializationContext, result: SubscribeResult) -> None:
        if record.value is None:
            return  # a tombstone on the compacted province topic: a closed case left, nothing to show
        try:
            event = self._deserializer(record.value, ctx)
        except DeserializationError as exc:
            result.skipped += 1
            # The error text names topic/schema/rule, never the payload (no PII).
            log.warning("skipping undecodable record %s[%d]@%d: %s %s", record.topic, record.partition,
                        record.offset, exc.code, exc)
            return
        self._output.emit(render.view(event))
        result.events += 1

    def _commit(self, consumer, done: dict, busy: set, result: SubscribeResult) -> None:
        """Commit `done` (next offsets after what was shown), and the position of every assigned partition not in
        `busy` (nothing fetched and unshown there, so the next run resumes exactly at that position)."""
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata

        offsets = {tp: OffsetAndMetadata(off, "", -1) for tp, off in done.items()}
        for tp in consumer.assignment():
            if tp not in busy and tp not in offsets:
                offsets[tp] = OffsetAndMetadata(consumer.position(tp), "", -1)
        if not offsets:
            return
        try:
            consumer.commit(offsets)
        except KafkaError as exc:  # e.g. a rebalance took the partition: its new owner shows the events again
            log.warning("commit failed on %s (%s); those events may be shown again", self.topic, exc)
            return
        result.committed.update({tp.partition: meta.offset for tp, meta in offsets.items()})


def _reached(result: SubscribeResult, max_events: int | None) -> bool:
    return max_events is not None and result.events >= max_events
