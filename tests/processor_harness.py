"""Test harness for the case processor on the real broker: private topics, a worker subprocess, read-back.

The worker runs as a real subprocess (`python -m topology.processor`), so tests can SIGKILL it like a crashed
pod and start it again on the same RocksDB folder.
"""
from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from deploy.local.process import ManagedProcess
from producers.testing import create_topics, read_to_end
from schemas.registry import RegistryClient
from schemas.serde import AvroDeserializer, AvroSerializer, SerializationContext
from topology import catalogue as topics
from topology import contracts
from topology.catalogue import Catalogue
from topology.processor.app import INPUTS

PARTITIONS = 4


def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)  # pacing between polls of a condition
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class ProcessorBus:
    """One private deployment of the bus: prefixed topics (a few provinces only), a producer, readers."""

    def __init__(self, bootstrap: str, registry_url: str, provinces: tuple[str, ...] = ("01", "08")):
        self.bootstrap = bootstrap
        self.registry_url = registry_url
        self.prefix = f"p{uuid.uuid4().hex[:8]}."
        all_provinces = Catalogue.build(replication_factor=1).provinces
        self.catalogue = Catalogue.build(prefix=self.prefix, replication_factor=1, input_partitions=PARTITIONS,
                                         provinces=[p for p in all_provinces if p.code in provinces])
        create_topics(bootstrap, self.catalogue)
        self.registry = RegistryClient(registry_url)
        contracts.register(self.registry, self.catalogue)  # as the operator: the components only look them up
        self.serialize = AvroSerializer(self.registry)
        self.deserialize = AvroDeserializer(self.registry)
        self.behind: dict[str, tuple] = {}  # partitions not yet consumed at the last check: (committed, end)
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                      linger_ms=5)

    @property
    def group(self) -> str:
        return self.prefix + topics.CASE_PROCESSOR_APP_ID

    def publish(self, pairs) -> None:
        for base, event in pairs:
            topic = self.catalogue.name(base)
            self.producer.send(topic, key=event.cccd.encode(), value=self.serialize(event, SerializationContext(topic)))
        self.producer.flush()

    def publish_raw(self, base: str, key: bytes, value: bytes) -> None:
        self.producer.send(self.catalogue.name(base), key=key, value=value)
        self.producer.flush()

    def worker(self, tmp: Path, name: str = "w1", tick_seconds: float = 3600) -> "Worker":
        return Worker(self, tmp / name, tick_seconds)

    def inputs_consumed(self, ends: dict | None = None) -> bool:
        """True when the processor's group has committed every input record (lag 0 on all inputs). `ends`: the
        offset to reach per TopicPartition instead of each input's end (after a transactional producer's last
        record: the commit marker behind it is never consumed, so its partition's end is never reached)."""
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            committed = {tp: om.offset for tp, om in admin.list_group_offsets([self.group]).get(self.group, {}).items()}
            if ends is None:
                tps = [TopicPartition(self.catalogue.name(b), p) for b in INPUTS for p in range(PARTITIONS)]
                ends = {tp: o.offset for tp, o in admin.list_partition_offsets(
                    {tp: OffsetSpec.LATEST for tp in tps}).items()}
        except KafkaError:  # e.g. the group coordinator is still being elected: not consumed yet
            return False
        finally:
            admin.close()
        self.behind = {f"{tp.topic}[{tp.partition}]": (committed.get(tp), end)
                       for tp, end in ends.items() if committed.get(tp, 0) < end}
        return not self.behind

    def read(self, base: str) -> list:
        """Every record of a topic now: [(key, event, raw record)]."""
        return [(record.key, event, record)
                for record, event in read_to_end(self.bootstrap, self.registry, self.catalogue.name(base))]

    def changelog(self, table: str) -> list:
        """Every record of a table's changelog (JSON values, not Avro)."""
        return self.raw_records(f"{self.group}-{table}-changelog")

    def raw_records(self, topic: str) -> list:
        """Every record of a topic (full name) now, undecoded: kafka-python ConsumerRecords."""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False)
        try:
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends = consumer.end_offsets(tps)
            out = []
            while any(consumer.position(tp) < ends[tp] for tp in tps):
                for records in consumer.poll(timeout_ms=500).values():
                    out += records
            return out
        finally:
            consumer.close()

    def finals(self) -> dict[str, list]:
        """case_id -> final decision events (approved/rejected/escalated) on cases.events."""
        out = defaultdict(list)
        for _, event, _ in self.read(topics.CASES_EVENTS):
            if type(event).__name__ in ("CaseApproved", "CaseRejected", "CaseEscalated"):
                out[event.case_id].append(event)
        return out

    def close(self) -> None:
        self.producer.close()
        self.registry.close()


class Worker:
    def __init__(self, bus: ProcessorBus, datadir: Path, tick_seconds: float = 3600):
        self.bus = bus
        self.datadir = datadir
        self.tick_seconds = tick_seconds
        self.process: ManagedProcess | None = None
        self.runs = 0

    def start(self) -> "Worker":
        self.runs += 1
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bus.bootstrap, "SCHEMA_REGISTRY_URL": self.bus.registry_url,
            "GPLX_TOPIC_PREFIX": self.bus.prefix, "GPLX_STORE": "rocksdb://", "GPLX_DATADIR": str(self.datadir),
            "GPLX_TICK_SECONDS": str(self.tick_seconds), "GPLX_INPUT_PARTITIONS": str(PARTITIONS),
            "GPLX_LOG_LEVEL": os.environ.get("GPLX_TEST_WORKER_LOG_LEVEL", "info"),  # debug to investigate
        }
        self.process = ManagedProcess(f"worker-{self.datadir.name}", [sys.executable, "-m", "topology.processor"],
                                      self.datadir.parent / f"{self.datadir.name}-{self.runs}.log", env).start()
        return self

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.popen.wait()

    def stop(self) -> None:
        if self.process:
            self.process.stop(timeout=30)
