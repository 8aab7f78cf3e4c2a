"""Inputs from a transactional producer: every commit marker takes an offset no consumer receives. The processor's
offset guard (topology/processor/offsets.py) reads each such hole from the log once, finds it empty, and every case
is decided as with plain producers."""
from __future__ import annotations

import uuid

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from schemas.serde import SerializationContext
from tests.integration.test_processor import DEADLINE, assert_decisions, copies, decided, workers  # noqa: F401
from tests.processor_harness import wait_for
from topology import catalogue as topics
from topology.processor.assembler import tick

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def publish_in_transactions(bus, pairs) -> dict:
    """One transaction per record (kafka-python's transactional producer); returns tp -> the offset after its last
    record (what the group commits once it applied everything: the last marker is never consumed)."""
    producer = KafkaProducer(bootstrap_servers=bus.bootstrap, transactional_id=f"clinic-{uuid.uuid4().hex[:8]}")
    producer.init_transactions()
    ends = {}
    try:
        for base, event in pairs:
            topic = bus.catalogue.name(base)
            producer.begin_transaction()
            sent = producer.send(topic, key=event.cccd.encode(), value=bus.serialize(event, SerializationContext(topic)))
            producer.commit_transaction()
            meta = sent.get(timeout=30)
            ends[TopicPartition(meta.topic, meta.partition)] = meta.offset + 1
    finally:
        producer.close()
    return ends


def committed_reach(bus, ends: dict) -> bool:
    admin = KafkaAdminClient(bootstrap_servers=bus.bootstrap)
    try:
        committed = {tp: om.offset for tp, om in admin.list_group_offsets([bus.group]).get(bus.group, {}).items()}
    except KafkaError:  # e.g. the group's coordinator not elected yet: not there yet
        return False
    finally:
        admin.close()
    bus.behind = {f"{tp.topic}[{tp.partition}]": (committed.get(tp), end) for tp, end in ends.items()
                  if committed.get(tp, -1) < end}
    return not bus.behind


def test_transaction_markers_are_holes_the_processor_passes(pbus, workers, tmp_path, monkeypatch):
    monkeypatch.setenv("GPLX_TEST_WORKER_LOG_LEVEL", "debug")  # the guard's line per empty hole
    cases = copies(7000)
    ends = publish_in_transactions(pbus, [pair for case in cases for pair in case.events()])
    worker = workers()
    try:
        wait_for(lambda: committed_reach(pbus, ends), 120, "the processor to commit past every transactional input")
    except AssertionError as timeout_error:
        raise AssertionError(f"{timeout_error}; (committed, end) where behind: {pbus.behind}") from None
    pbus.publish([(topics.CASES_CLOCK, tick(case.cccd, DEADLINE)) for case in cases])
    assert_decisions(wait_for(lambda: decided(pbus, cases), 120, "a decision on every case"), cases)
    log = worker.process.log_path.read_text(errors="replace")
    assert "hold no record" in log  # the guard met the markers (worker at debug level) and let them be
