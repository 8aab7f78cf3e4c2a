"""The exporter keeps serving when Kafka is away, says so (up=0), and recovers when it is back."""
from __future__ import annotations

import re
import time

import httpx
import pytest

from consumers.lag import LagConfig, LagMonitor
from consumers.lag.exporter import LagExporter
from test_lag_support import free_port

pytestmark = pytest.mark.integration


def metric(text: str, name: str) -> float | None:
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def wait_metric(url: str, name: str, want: float, timeout: float) -> str:
    deadline, text = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        started = time.monotonic()
        text = httpx.get(url, timeout=5).text
        assert time.monotonic() - started < 2, "a scrape must not wait for Kafka"
        if metric(text, name) == want:
            return text
        time.sleep(0.2)  # poll pacing
    raise AssertionError(f"{name} != {want} within {timeout}s:\n{text}")


def start_exporter(bootstrap: str) -> LagExporter:
    config = LagConfig(bootstrap_servers=bootstrap, group_pattern="^gplx", request_timeout_ms=1000)
    exporter = LagExporter(config, port=0, addr="127.0.0.1", interval=0.5, monitor=LagMonitor(config))
    exporter.start()
    return exporter


def test_exporter_stays_up_without_a_broker():
    exporter = start_exporter(f"127.0.0.1:{free_port()}")  # nothing listens there
    try:
        text = wait_metric(f"http://127.0.0.1:{exporter.port}/metrics", "gplx_lag_exporter_up", 0.0, 15)
        assert metric(text, "gplx_lag_exporter_last_success_timestamp_seconds") == 0.0
        assert "kafka_consumergroup_lag{" not in text
        assert exporter.sampler.is_alive()
    finally:
        exporter.stop()


def test_exporter_recovers_after_broker_restart(request):
    """Needs a fixture `restartable_kafka` with .bootstrap_servers, .stop() and .start() (same address)."""
    try:
        kafka = request.getfixturevalue("restartable_kafka")
    except pytest.FixtureLookupError:
        pytest.skip("fixture restartable_kafka (a broker the test may stop and start) is not provided yet")
    exporter = start_exporter(kafka.bootstrap_servers)
    url = f"http://127.0.0.1:{exporter.port}/metrics"
    try:
        wait_metric(url, "gplx_lag_exporter_up", 1.0, 30)
        kafka.stop()
        wait_metric(url, "gplx_lag_exporter_up", 0.0, 30)
        kafka.start()
        text = wait_metric(url, "gplx_lag_exporter_up", 1.0, 60)
        assert metric(text, "gplx_lag_exporter_last_success_timestamp_seconds") > time.time() - 30
    finally:
        exporter.stop()
