"""A certificate published by a librdkafka client with its default partitioner (CRC32, not Java's murmur2) lands on
another partition than its citizen's: the case processor must forward it there, apply it once, and decide the case.

Three clinics publish the certificates of three approvable cases: one through confluent-kafka's default Producer,
one through kcat (both librdkafka, partitioner `consistent_random`), one through confluent-kafka configured as the
README asks (`partitioner=murmur2_random`). Everything else goes through the SDK (murmur2).
"""
from __future__ import annotations

import json
import subprocess
import zlib
from dataclasses import replace

import pytest
from confluent_kafka import Producer

from schemas.serde import SerializationContext
from tests.case_scenarios import scripts
from tests.integration.test_processor import assert_decisions, play_to_the_end, workers  # noqa: F401
from tests.processor_harness import PARTITIONS
from topology import catalogue as topics
from topology.catalogue import expected_partition
from topology.processor.app import REROUTED_FROM

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def approvable_cases(count: int, *, misrouted: bool):
    """Approvable cases whose cccd librdkafka's default partitioner (crc32 % n) sends to another partition than
    murmur2's (misrouted=True), or to the same one (False): chosen up front, so the test shows both."""
    template = next(s for s in scripts() if s.name == "approved")
    out, serial = [], 8000 + (0 if misrouted else 500)
    while len(out) < count:
        case = replace(template, serial=serial, name=f"partitioner-{serial}")
        key = case.cccd.encode()
        if (zlib.crc32(key) % PARTITIONS != expected_partition(key, PARTITIONS)) == misrouted:
            out.append(case)
        serial += 1
    return out


def confluent_publish(bootstrap: str, topic: str, key: bytes, value: bytes, **config) -> int:
    """Publish one record with confluent-kafka (default config unless told), return its partition."""
    delivered = []
    producer = Producer({"bootstrap.servers": bootstrap, **config})
    producer.produce(topic, key=key, value=value,
                     on_delivery=lambda err, msg: delivered.append(err or msg.partition()))
    assert producer.flush(30) == 0
    [partition] = delivered
    assert isinstance(partition, int), partition
    return partition


def test_a_certificate_on_the_wrong_partition_is_forwarded_and_applied_once(pbus, workers, tmp_path):
    by_confluent, by_kcat, poisoned = approvable_cases(3, misrouted=True)
    [by_murmur2] = approvable_cases(1, misrouted=False)
    cases = [by_confluent, by_kcat, by_murmur2]
    health = pbus.catalogue.name(topics.HEALTH_EXAM_RESULTS)
    certificate = {case.cccd: next(e for base, e in case.events() if base == topics.HEALTH_EXAM_RESULTS)
                   for case in cases}
    value = {cccd: pbus.serialize(cert, SerializationContext(health)) for cccd, cert in certificate.items()}
    expected = {case.cccd: expected_partition(case.cccd.encode(), PARTITIONS) for case in cases}
    workers()

    arrived = {by_confluent.cccd: confluent_publish(pbus.bootstrap, health, by_confluent.cccd.encode(),
                                                    value[by_confluent.cccd])}
    value_file = tmp_path / "certificate.avro"
    value_file.write_bytes(value[by_kcat.cccd])  # a file is one message to kcat, whatever bytes it holds
    subprocess.run(["kcat", "-P", "-b", pbus.bootstrap, "-t", health, "-k", by_kcat.cccd, "-H", "clinic=BVBM",
                    str(value_file)], check=True, timeout=60)
    on_murmur2 = confluent_publish(pbus.bootstrap, health, by_murmur2.cccd.encode(), value[by_murmur2.cccd],
                                   partitioner="murmur2_random")
    assert on_murmur2 == expected[by_murmur2.cccd], "librdkafka's murmur2_random is not Java's partitioner"
    pbus.publish([pair for case in cases for pair in case.events() if pair[0] != topics.HEALTH_EXAM_RESULTS])
    # poison on the wrong partition is dead-lettered where it arrived, not forwarded
    poison = b"not avro, and on the wrong partition"
    poison_arrived = confluent_publish(pbus.bootstrap, health, poisoned.cccd.encode(), poison)

    assert_decisions(play_to_the_end(pbus, cases), cases)  # all three approved: each certificate met its case

    [by_kcat_record] = [r for r in pbus.raw_records(health) if r.key == by_kcat.cccd.encode()]
    arrived[by_kcat.cccd] = by_kcat_record.partition
    for cccd in (by_confluent.cccd, by_kcat.cccd):  # the premise: librdkafka's default put them elsewhere
        assert arrived[cccd] != expected[cccd]
    assert poison_arrived != expected_partition(poisoned.cccd.encode(), PARTITIONS)
    [letter] = [e for _, e, _ in pbus.read(topics.DLQ)]  # flushed before its input was committed
    assert (letter.original_topic, letter.original_partition) == (health, poison_arrived)
    assert letter.original_value == poison and letter.error_code == "BAD_MAGIC_BYTE"

    # forwarded once each, unchanged, to the citizen's partition, with where it arrived; the well-partitioned
    # certificate was not forwarded
    forwarded = {r.key.decode(): r for _, _, r in pbus.read(topics.CASES_REROUTED)}
    assert len(pbus.read(topics.CASES_REROUTED)) == 2
    assert set(forwarded) == {by_confluent.cccd, by_kcat.cccd}
    for cccd, record in forwarded.items():
        assert record.partition == expected[cccd]
        assert record.value == value[cccd]
        headers = dict(record.headers)
        assert headers[REROUTED_FROM].decode().startswith(f"{health}/{arrived[cccd]}/")
    assert dict(forwarded[by_kcat.cccd].headers)["clinic"] == b"BVBM"  # the producer's headers travel along

    # counted in the worker's log, which names topics and positions but never a CCCD
    log = (tmp_path / "w1-1.log").read_text(errors="replace")
    forward_lines = [line for line in log.splitlines() if "forwarded " in line and "from this topic so far" in line]
    assert len(forward_lines) == 2 and forward_lines[-1].rstrip().endswith("2 forwarded from this topic so far")
    assert not any(case.cccd in log for case in cases + [poisoned])

    # applied exactly once, on the citizen's partition: the table shard of the partition the record arrived on
    # never saw the citizen, and the citizen's state applied the forwarded record (and nothing else of rerouted)
    states = [r for r in pbus.changelog("citizens") if r.key.decode() in expected]
    assert {r.key.decode() for r in states} == set(expected)
    assert all(r.partition == expected[r.key.decode()] for r in states)
    latest = {r.key.decode(): json.loads(r.value) for r in states}
    for cccd, record in forwarded.items():
        assert latest[cccd]["applied"][topics.CASES_REROUTED] == record.offset
        assert certificate[cccd].certificate_number in latest[cccd]["certificates"]
        assert topics.HEALTH_EXAM_RESULTS not in latest[cccd]["applied"]
    assert topics.CASES_REROUTED not in latest[by_murmur2.cccd]["applied"]
