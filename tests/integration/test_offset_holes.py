"""Inputs from a transactional producer: every commit marker takes an offset no consumer receives. The processor's
offset guard (topology/processor/offsets.py) reads each such hole from the log once, finds it empty, and every case
is decided as with plain producers."""
from __future__ import annotations

import uuid

import pytest
from kafka import KafkaProducer
from kafka.structs import TopicPartition

from schemas.serde import SerializationContext
from tests.integration.test_processor import assert_decisions, copies, play_to_the_end, workers  # noqa: F401

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
            value = bus.serialize(event, SerializationContext(topic))
            sent = producer.send(topic, key=event.cccd.encode(), value=value)
            producer.commit_transaction()
            meta = sent.get(timeout=30)
            ends[TopicPartition(meta.topic, meta.partition)] = meta.offset + 1
    finally:
        producer.close()
    return ends


def test_transaction_markers_are_holes_the_processor_passes(pbus, workers, monkeypatch):
    monkeypatch.setenv("GPLX_TEST_WORKER_LOG_LEVEL", "debug")  # the guard's line per empty hole
    cases = copies(7000)
    ends = publish_in_transactions(pbus, [pair for case in cases for pair in case.events()])
    worker = workers()
    assert_decisions(play_to_the_end(pbus, cases, ends=ends), cases)
    log = worker.process.log_path.read_text(errors="replace")
    assert "hold no record" in log  # the guard met the markers (worker at debug level) and let them be
