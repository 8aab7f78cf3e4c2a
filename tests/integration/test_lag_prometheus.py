"""The rules with promtool, and a real Prometheus server scraping the exporter until a lag alert fires."""
from __future__ import annotations

import re
import shutil
import string
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from consumers.lag import LagConfig, LagMonitor
from consumers.lag.exporter import LagExporter
from test_lag_support import create_topics, free_port

pytestmark = pytest.mark.integration
PROM_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool absent: install the Debian package `prometheus` (make debs)")
needs_prometheus = pytest.mark.skipif(shutil.which("prometheus") is None,
                                      reason="prometheus absent: install the Debian package `prometheus` (make debs)")


@needs_promtool
def test_promtool_checks_and_unit_tests_the_rules():
    for args in (["check", "rules", "rules.yml"], ["test", "rules", "rules_test.yml"]):
        result = subprocess.run(["promtool", *args], cwd=PROM_DIR, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def fast_rules(sla_other: int) -> str:
    """rules.yml with its real expressions, but `for:` durations of 1s and a tiny SLA for class `other`."""
    text = (PROM_DIR / "rules.yml").read_text()
    text = re.sub(r"for: \d+[smh]", "for: 1s", text)
    text, n = re.subn(r"vector\(\d+\)(\s*\n\s*labels: \{class: other\})", rf"vector({sla_other})\1", text)
    assert n == 1
    return text


@needs_prometheus
@needs_promtool
def test_prometheus_scrapes_exporter_and_lag_alert_fires(kafka_bootstrap, unique_name, tmp_path):
    topic, gid = f"{unique_name}-t", f"{unique_name}-g"
    create_topics(kafka_bootstrap, (topic, 1))
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for _ in range(5):
        producer.send(topic, b"x")
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=gid, enable_auto_commit=False)
    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(1, "", -1)})  # 4 records behind, and stays so
    consumer.close()

    config = LagConfig(bootstrap_servers=kafka_bootstrap, group_pattern=f"^{re.escape(gid)}$", window_seconds=4,
                       stall_after_seconds=2, other_sla_seconds=2, request_timeout_ms=5000)
    exporter = LagExporter(config, port=0, addr="127.0.0.1", interval=0.5, monitor=LagMonitor(config))
    exporter.start()
    rules = tmp_path / "rules.yml"
    rules.write_text(fast_rules(sla_other=2))
    prom_yml = tmp_path / "prometheus.yml"
    prom_yml.write_text(string.Template((PROM_DIR / "prometheus.yml.tmpl").read_text()).substitute(
        EXPORTER_TARGET=f"127.0.0.1:{exporter.port}", SCRAPE_INTERVAL="1s", EVALUATION_INTERVAL="1s",
        RULES_FILE=str(rules)))
    check = subprocess.run(["promtool", "check", "config", str(prom_yml)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr

    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    prom = subprocess.Popen(["prometheus", f"--config.file={prom_yml}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        firing = wait_for_alerts(base, gid, {"GplxConsumerLagAboveSLA", "GplxConsumerStoppedOrStalled"}, timeout=60)
        print("firing:", sorted(firing))
        lag = httpx.get(f"{base}/api/v1/query", params={"query": f'kafka_consumergroup_lag{{group="{gid}"}}'}).json()
        assert [r["value"][1] for r in lag["data"]["result"]] == ["4"]
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait(timeout=10)
        log.close()
        exporter.stop()


def wait_for_alerts(base: str, group: str, names: set[str], timeout: float) -> set[str]:
    deadline, firing, last = time.monotonic() + timeout, set(), None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(f"{base}/api/v1/alerts", timeout=2).json()
            firing = {a["labels"]["alertname"] for a in last["data"]["alerts"]
                      if a["state"] == "firing" and a["labels"].get("group") == group}
            if names <= firing:
                return firing
        except (httpx.HTTPError, ValueError):
            pass  # Prometheus still starting (refused, or "Service Unavailable" before its rules are loaded)
        time.sleep(0.5)  # poll pacing
    raise AssertionError(f"alerts {names - firing} not firing within {timeout}s; last answer: {last}")
