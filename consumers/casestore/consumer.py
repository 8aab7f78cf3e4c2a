"""The Kafka side of the case store: read `cases.events` from the offsets the database holds, hand each polled
batch to `CaseStore.act`, repeat.

Why assigned partitions and not a group subscription: the offsets that count are in the database, committed with
the rows; a group rebalance would add nothing but a second source of truth. One store process per database (it
reads every partition). After each transaction the offsets are also committed to the `case-store` consumer group,
only so that `gplx-bus lag` shows how far behind the store is; a lost Kafka commit loses nothing.
"""
from __future__ import annotations

import logging
import threading
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from consumers.casestore.model import KINDS, NS
from consumers.casestore.store import ActResult, CaseStore, Record
from schemas.errors import DeserializationError
from schemas.serde import AvroDeserializer, SchemaRegistry, SerializationContext
from topology.catalogue import AUDIT_RETENTION, CASE_STORE, CASES_EVENTS, consumer_group
from topology.connection import Connection
from topology.kafka_python import new_client

log = logging.getLogger(__name__)


class StoreConsumer:
    """`step()` reads and applies one poll; `run(stop)` until the event is set; `lag()` is what is left."""

    def __init__(self, bootstrap: str | Connection, registry: SchemaRegistry, store: CaseStore, *,
                 max_records: int = 2000, mirror_offsets: bool = True) -> None:
        conn = Connection.of(bootstrap)
        self.store, self.topic = store, store.topic
        self._deserialize = AvroDeserializer(registry)
        self._ctx = SerializationContext(self.topic)
        self._mirror = mirror_offsets
        self._consumer = new_client(
            KafkaConsumer,
            **conn.kafka_python_kwargs(), client_id="gplx-case-store",
            group_id=self.topic[:-len(CASES_EVENTS)] + consumer_group(CASE_STORE) if mirror_offsets else None,
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=max_records,
            fetch_max_wait_ms=200)
        partitions = self._consumer.partitions_for_topic(self.topic)
        if not partitions:
            self._consumer.close()
            raise LookupError(f"topic {self.topic} does not exist (create the catalogue's topics: "
                              "gplx-bus topics apply)")
        self._tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(self._tps)
        stored = store.offsets()
        for tp in self._tps:
            if tp.partition in stored:
                self._consumer.seek(tp, stored[tp.partition])
            else:
                self._consumer.seek_to_beginning(tp)
        self.totals = ActResult()

    def step(self, timeout_ms: int = 500) -> int:
        """Poll once, apply what came in one transaction; returns the number of records read."""
        polled = self._consumer.poll(timeout_ms=timeout_ms)
        batch = [self._record(rec) for records in polled.values() for rec in records]
        if not batch:
            return 0
        result = self.store.act(batch)
        self.totals.applied += result.applied
        self.totals.duplicates += result.duplicates
        self.totals.skipped += result.skipped
        if self._mirror:
            ends = {}
            for rec in batch:
                ends[rec.partition] = max(ends.get(rec.partition, 0), rec.offset + 1)
            try:
                self._consumer.commit({TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1)
                                       for p, o in ends.items()})
            except Exception as exc:  # noqa: BLE001 - only the lag view suffers; the database holds the truth
                log.warning("case store: could not mirror offsets to Kafka: %s", type(exc).__name__)
        return len(batch)

    def lag(self) -> int:
        """Records of the topic not applied yet (end offsets now minus the database's offsets)."""
        ends = self._consumer.end_offsets(self._tps)
        stored = self.store.offsets()
        begins = self._consumer.beginning_offsets(self._tps)
        return sum(max(0, end - stored.get(tp.partition, begins[tp])) for tp, end in ends.items())

    def run(self, stop: threading.Event, *, on_progress=None) -> None:
        """Poll and apply until `stop` is set; once at start and every hour, drop the cases `cases.events` no
        longer keeps either (not updated for AUDIT_RETENTION)."""
        last = time.monotonic()
        purged_at = None
        while not stop.is_set():
            if purged_at is None or time.monotonic() - purged_at > 3600:
                gone = self.store.purge(int(time.time() * 1000) - AUDIT_RETENTION.ms)
                if gone:
                    log.info("case store: %d case(s) older than the %d-day retention deleted", gone,
                             AUDIT_RETENTION.days)
                purged_at = time.monotonic()
            read = self.step()
            if on_progress and (read or time.monotonic() - last > 30):
                on_progress(self)
                last = time.monotonic()

    def close(self) -> None:
        self._consumer.close()

    def _record(self, rec) -> Record:
        if rec.value is None:
            return Record(rec.partition, rec.offset)
        try:
            name, record = self._deserialize.decode(rec.value, self._ctx)
        except DeserializationError:
            log.warning("case store: undecodable record at %s[%d]@%d skipped", rec.topic, rec.partition, rec.offset)
            return Record(rec.partition, rec.offset)
        kind = name[len(NS):] if name.startswith(NS) else None
        if kind not in KINDS or not record.get("case_id"):
            return Record(rec.partition, rec.offset)
        return Record(rec.partition, rec.offset, kind, record)
