"""Smoke test of `gplx-bus bench --quick` on the session's broker: every section is there with positive numbers.

No timing assertions: the numbers depend on the machine and what else runs on it.
"""
from __future__ import annotations

import json

import pytest

from gplx_bus.bench import run as bench_bus
from gplx_bus.bench import scale

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _positive(section: dict, *paths: str) -> None:
    for path in paths:
        value = section
        for part in path.split("."):
            value = value[part]
        assert isinstance(value, (int, float)) and value > 0, f"{path} = {value!r}"


@pytest.mark.timeout(1200)  # about 3 minutes on a quiet 2-core machine; far more when it is shared
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
    _positive(results["ceiling_b_prime"], "events_per_s", "decisions")
    _positive(results["ceiling_f"], "events_per_s")
    _positive(results["processor"], "events_per_s", "cases_per_s", "decided", "input_events")
    # B′ does the same work: the same decisions (its interim notices may differ: they follow the order in which
    # one citizen's inputs from different topics arrive, which differs between two consumers)
    assert results["ceiling_b_prime"]["decisions"] == results["processor"]["decided"]
    assert results["processor"]["decided"] == results["processor"]["cases"]
    _positive(results["processor_two_workers"], "events_per_s", "cases_per_s", "decided")
    _positive(results["processor_unbatched"], "events_per_s", "decided")
    assert results["processor_two_workers"]["decided"] == results["processor_two_workers"]["cases"]
    _positive(results["latency"], "decided", "p50_ms", "p95_ms", "p99_ms")
    _positive(results["sdk"], "sdk.records_per_s", "kafka_python_raw.records_per_s",
              "confluent_kafka.records_per_s", "sdk_vs_confluent")
    _positive(results["memory"], "VmHWM_MB", "VmHWM_MB_baseline", "rocksdb_MB", "open_cases")
    for mode in ("plain", "secured"):
        _positive(results["security"][mode], "events_per_s", "broker_start_seconds", "decided")
        assert results["security"][mode]["decided"] == results["security"]["cases"]


@pytest.mark.timeout(600)
def test_small_scale_bench_measures_memory_restore_and_tick(kafka_bootstrap, schema_registry_url, tmp_path):
    out = tmp_path / "scale.json"
    options = scale.Options(citizens=2000, open_cases=200, json_path=out, bootstrap=kafka_bootstrap,
                            registry_url=schema_registry_url, tick_window=scale.TICK_SECONDS + 1)
    scale.run(options, log=lambda text: None)

    results = json.loads(out.read_text())
    assert [s["citizens"] for s in results["memory"]["steps"]] == [500, 1000, 1500, 2000]
    _positive(results["memory"]["steps"][-1], "VmRSS", "VmHWM", "rocksdb_MB")
    assert results["memory"]["decided_during_load"] == 0  # the open cases stayed open
    _positive(results["tick"]["no_case_due"], "ticks", "cpu_ms_per_tick_upper_bound")
    assert results["tick"]["no_case_due"]["cases_ticked"] == 0
    due = results["tick"]["cases_due"]
    assert due["cases_ticked"] == due["due_cases"] == due["due_cases_decided"] == scale.DUE_CASES
    _positive(results["restore"], "seconds", "VmHWM", "changelog_consumer_performance.records")
    assert "worker_VmHWM_MB" in results["goals"] and "restore_seconds" in results["goals"]
