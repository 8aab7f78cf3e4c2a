"""`gplx-bus dlq list|show|replay` on the real broker, through the real CLI, with the real case processor: a dead
letter replayed after its cause is gone becomes a decided case, once; a second replay sends nothing."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from schemas import models
from schemas.serde import SerializationContext
from tests.case_scenarios import Script
from tests.processor_harness import ProcessorBus, wait_for
from topology import catalogue as topics
from topology.processor.outputs import output_id

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def cli(bus: ProcessorBus, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gplx_bus.cli", "dlq", *args, "-b", bus.bootstrap,
                           "--registry-url", bus.registry_url, "--prefix", bus.prefix],
                          capture_output=True, text=True, timeout=120)


def dead_letter(bus: ProcessorBus, base: str, key: bytes, value: bytes, code: str, text: str) -> str:
    """Put a record on `base` and its dead letter on the DLQ, and commit the processor's group past the record:
    the state a worker leaves behind when it dead-lettered that record (before its cause was fixed)."""
    topic = bus.catalogue.name(base)
    meta = bus.producer.send(topic, key=key, value=value).get(timeout=30)
    group = KafkaConsumer(bootstrap_servers=bus.bootstrap, group_id=bus.group, enable_auto_commit=False)
    group.commit({TopicPartition(topic, meta.partition): OffsetAndMetadata(meta.offset + 1, "", -1)})
    group.close()
    now = datetime.now(timezone.utc)
    letter = models.DeadLetter(
        event_id=output_id(f"{topic}/{meta.partition}/{meta.offset}", "dead-letter"), occurred_at=now,
        source={"system": "case-processor", "instance": "test"}, original_topic=topic,
        original_partition=meta.partition, original_offset=meta.offset, original_key=key, original_value=value,
        error_code=code, error_text=text, first_seen_at=now)
    dlq = bus.catalogue.name(topics.DLQ)
    bus.producer.send(dlq, key=key, value=bus.serialize(letter, SerializationContext(dlq))).get(timeout=30)
    return letter.event_id


def test_list_show_and_replay_once(pbus, tmp_path):
    script = Script("dlq-replayed", 9101)
    events = script.events()
    [(_, application)] = [(b, e) for b, e in events if b == topics.PORTAL_APPLICATIONS]
    app_topic = pbus.catalogue.name(topics.PORTAL_APPLICATIONS)
    app_id = dead_letter(pbus, topics.PORTAL_APPLICATIONS, script.cccd.encode(),
                         pbus.serialize(application, SerializationContext(app_topic)),
                         "PROCESSING_FAILED", "a transient failure, since fixed")
    garbage_id = dead_letter(pbus, topics.HEALTH_EXAM_RESULTS, b"001085009102", b"\x00\x01not avro at all",
                             "GARBAGE_PAYLOAD", "not Avro")

    listed = cli(pbus, "list", "--output", "jsonl")
    assert listed.returncode == 0, listed.stderr
    rows = {r["id"]: r for r in map(json.loads, listed.stdout.splitlines())}
    assert set(rows) == {app_id, garbage_id}
    assert script.cccd not in listed.stdout  # a listing carries no payload
    only = cli(pbus, "list", "--output", "jsonl", "--code", "garbage_payload", "--topic", topics.HEALTH_EXAM_RESULTS)
    assert [json.loads(line)["id"] for line in only.stdout.splitlines()] == [garbage_id]

    shown = json.loads(cli(pbus, "show", app_id).stdout)
    assert shown["original_value"]["decoded"]["type"] == "vn.gplx.portal.ApplicationSubmitted"
    assert shown["original_value"]["valid_now"] is True
    raw = json.loads(cli(pbus, "show", garbage_id).stdout)["original_value"]
    assert "decoded" not in raw and raw["hex"].startswith("00016e6f74")
    missing = cli(pbus, "show", "no-such-id")
    assert missing.returncode == 2 and "no dead letter with id no-such-id" in missing.stderr
    assert "Traceback" not in missing.stderr
    refused = cli(pbus, "replay")
    assert refused.returncode == 2 and "name dead letter ids or a filter" in refused.stderr

    # Every other fact of the case is on the bus; only the application sits in the DLQ.
    worker = pbus.worker(tmp_path).start()
    try:
        pbus.publish([(b, e) for b, e in events if b != topics.PORTAL_APPLICATIONS])
        wait_for(pbus.inputs_consumed, 120, "the processor to consume the facts")
        assert script.case_id not in pbus.finals()

        dry = cli(pbus, "replay", app_id, "--dry-run")
        assert dry.returncode == 0 and f"would-replay      {app_id}" in dry.stdout
        first = cli(pbus, "replay", "--topic", topics.PORTAL_APPLICATIONS)
        assert first.returncode == 0, first.stderr
        assert f"replayed          {app_id}" in first.stdout
        finals = wait_for(lambda: (f := pbus.finals()).get(script.case_id) and f, 120, "the replayed case decided")
        assert [type(e).__name__ for e in finals[script.case_id]] == ["CaseApproved"]

        again = cli(pbus, "replay", app_id)
        assert again.returncode == 0 and f"already-replayed  {app_id}" in again.stdout
        copies = [r for _, _, r in pbus.read(topics.PORTAL_APPLICATIONS)
                  if ("gplx-replay-of", app_id.encode()) in (r.headers or [])]
        assert len(copies) == 1  # on the bus once, whatever the operator ran twice
        wait_for(pbus.inputs_consumed, 120, "the processor to consume the replay")
        assert len({e.event_id for e in pbus.finals()[script.case_id]}) == 1
    finally:
        worker.stop()
