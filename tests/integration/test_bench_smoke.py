"""Smoke test of `gplx-bus bench --quick` on the session's broker: every section is there with positive numbers.

No timing assertions: the numbers depend on the machine and what else runs on it.
"""
from __future__ import annotations

import json

import pytest

from gplx_bus.bench import run as bench_bus

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _positive(section: dict, *paths: str) -> None:
    for path in paths:
        value = section
        for part in path.split("."):
            value = value[part]
        assert isinstance(value, (int, float)) and value > 0, f"{path} = {value!r}"


def test_quick_bench_writes_every_section(kafka_bootstrap, schema_registry_url, tmp_path):
    out = tmp_path / "bench.json"
    options = bench_bus.Options.quick_defaults(json_path=out, bootstrap=kafka_bootstrap,
                                               registry_url=schema_registry_url)
    bench_bus.run(options, log=lambda text: None)

    results = json.loads(out.read_text())
    for section in (*bench_bus.SECTIONS, "goals"):
        assert section in results, section
    _positive(results["machine"], "cores")
    _positive(results["ceiling_a"], "producer.records_per_s", "producer.MB_per_s", "consumer.records_per_s")
    _positive(results["ceiling_b"], "aiokafka.records_per_s", "kafka-python.records_per_s",
              "confluent-kafka.records_per_s")
    _positive(results["processor"], "events_per_s", "cases_per_s", "decided", "input_events")
    assert results["processor"]["decided"] == results["processor"]["cases"]
    _positive(results["processor_two_workers"], "events_per_s", "cases_per_s", "decided")
    assert results["processor_two_workers"]["decided"] == results["processor_two_workers"]["cases"]
    _positive(results["latency"], "decided", "p50_ms", "p95_ms", "p99_ms")
    _positive(results["sdk"], "sdk.records_per_s", "kafka_python_raw.records_per_s",
              "confluent_kafka.records_per_s", "sdk_vs_confluent")
    _positive(results["memory"], "VmHWM_MB", "VmHWM_MB_baseline", "rocksdb_MB", "open_cases")
