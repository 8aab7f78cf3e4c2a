"""The exporter's case signals on the real broker and registry: case events published to a prefixed
`cases.events` show up in /metrics as cases by state and decisions by reason; a missing topic and a broker
outage are counted and survived."""
from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timezone

import httpx
import pytest
from kafka import KafkaAdminClient, KafkaProducer

from consumers.lag import LagConfig, LagMonitor
from consumers.lag.cases_reader import CaseSignals
from consumers.lag.exporter import LagExporter
from schemas import models
from schemas.registry import RegistryClient
from schemas.serde import AvroSerializer, SerializationContext, key_bytes
from test_lag_support import create_topics

pytestmark = pytest.mark.integration
T = datetime(2025, 7, 1, 8, 0, tzinfo=timezone.utc)
SRC = {"system": "t", "instance": "1"}


def case_events(n: int) -> list[models.Event]:
    """Case n opened and decided: n % 3 == 0 rejected (UNFIT), 1 escalated (DEADLINE_EXCEEDED), 2 approved."""
    who = {"case_id": str(uuid.uuid4()), "cccd": f"0010850{n:05d}", "province": "01"}

    def meta():
        return {"event_id": str(uuid.uuid4()), "occurred_at": T, "source": SRC, **who}

    opened = models.CaseOpened(**meta(), application_id=f"a{n}", classes=["B"], missing_notice_due_at=T,
                               decision_due_at=T)
    decision = [
        models.CaseRejected(**meta(), reasons=["UNFIT"], rule_set_version="2025.1"),
        models.CaseEscalated(**meta(), reasons=["DEADLINE_EXCEEDED"]),
        models.CaseApproved(**meta(), classes=["B"], warnings=[], rule_set_version="2025.1"),
    ][n % 3]
    return [opened, decision]


class Publisher:
    def __init__(self, bootstrap: str, registry_url: str, topic: str) -> None:
        self.topic = topic
        self.ser = AvroSerializer(RegistryClient(registry_url))
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")

    def send(self, *events: models.Event, raw: bytes | None = None) -> None:
        for e in events:
            self.producer.send(self.topic, self.ser(e, SerializationContext(self.topic)), key=key_bytes(e.cccd))
        if raw is not None:
            self.producer.send(self.topic, raw, key=b"001085000000")
        self.producer.flush()

    def close(self) -> None:
        self.producer.close()


def metric(text: str, name: str, labels: str = "") -> float | None:
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def wait_for(url: str, wanted: dict[tuple[str, str], float], timeout: float) -> str:
    deadline, text = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        text = httpx.get(url, timeout=5).text
        if all(metric(text, n, lab) == v for (n, lab), v in wanted.items()):
            return text
        time.sleep(0.3)  # poll pacing
    got = {k: metric(text, *k) for k in wanted}
    raise AssertionError(f"not within {timeout}s: wanted {wanted}, got {got}")


def start_exporter(bootstrap: str, registry_url: str, prefix: str, **options) -> tuple[LagExporter, CaseSignals]:
    config = LagConfig(bootstrap_servers=bootstrap, prefix=prefix, request_timeout_ms=2000)
    signals = CaseSignals(bootstrap, prefix + "cases.events", RegistryClient(registry_url), interval=0.5,
                          request_timeout_ms=2000, **options)
    exporter = LagExporter(config, port=0, addr="127.0.0.1", interval=0.5, monitor=LagMonitor(config),
                           extra_collectors=[signals])
    exporter.start()
    return exporter, signals


def test_case_events_become_metrics(kafka_bootstrap, schema_registry_url, unique_name):
    prefix = f"{unique_name}-"
    topic = prefix + "cases.events"
    create_topics(kafka_bootstrap, (topic, 3))
    pub = Publisher(kafka_bootstrap, schema_registry_url, topic)
    first = [case_events(n) for n in range(6)]  # 2 rejected, 2 escalated, 2 approved
    pub.send(*[e for evs in first for e in evs], raw=b"not avro at all")
    pub.send(first[0][1])  # a re-delivered rejection: same event, must not count twice
    exporter, _ = start_exporter(kafka_bootstrap, schema_registry_url, prefix)
    url = f"http://127.0.0.1:{exporter.port}/metrics"
    try:
        text = wait_for(url, {
            ("gplx_cases_reader_up", ""): 1.0, ("gplx_cases_reader_ready", ""): 1.0,
            ("gplx_cases", '{state="REJECTED"}'): 2.0, ("gplx_cases", '{state="ESCALATED"}'): 2.0,
            ("gplx_cases", '{state="APPROVED"}'): 2.0, ("gplx_cases", '{state="OPENED"}'): 0.0,
            ("gplx_decisions_total", '{outcome="REJECTED",reason="UNFIT"}'): 2.0,
            ("gplx_decisions_total", '{outcome="ESCALATED",reason="DEADLINE_EXCEEDED"}'): 2.0,
            ("gplx_decided_cases_total", '{outcome="APPROVED"}'): 2.0,
            ("gplx_case_events_read_total", '{result="undecodable"}'): 1.0,
            ("gplx_case_events_read_total", '{result="duplicate"}'): 1.0,
            ("gplx_cases_reader_lag_messages", ""): 0.0,
        }, timeout=60)
        assert metric(text, "gplx_cases_reader_errors_total", '{reason="kafka"}') == 0.0

        # Live: a case opened after the start, then rejected.
        later = case_events(9)
        pub.send(later[0])
        wait_for(url, {("gplx_cases", '{state="OPENED"}'): 1.0}, timeout=30)
        pub.send(later[1])
        wait_for(url, {("gplx_cases", '{state="OPENED"}'): 0.0,
                       ("gplx_decisions_total", '{outcome="REJECTED",reason="UNFIT"}'): 3.0}, timeout=30)
    finally:
        exporter.stop()
        pub.close()
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:  # it committed nothing, joined nothing
        assert not [g for g in admin.list_groups() if g["group_id"].startswith(prefix)]


def test_missing_topic_is_counted_then_read_once_created(kafka_bootstrap, schema_registry_url, unique_name):
    prefix = f"{unique_name}-"
    topic = prefix + "cases.events"
    exporter, _ = start_exporter(kafka_bootstrap, schema_registry_url, prefix)
    url = f"http://127.0.0.1:{exporter.port}/metrics"
    pub = None
    try:
        deadline = time.monotonic() + 30
        while True:
            text = httpx.get(url, timeout=5).text
            if (metric(text, "gplx_cases_reader_errors_total", '{reason="missing-topic"}') or 0) >= 2:
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.3)  # poll pacing
        assert metric(text, "gplx_cases_reader_up", "") == 0.0
        assert 'gplx_cases{' not in text  # absent, not zero, while there is nothing to read
        assert metric(text, "gplx_lag_exporter_up", "") == 1.0  # the lag side is not affected

        create_topics(kafka_bootstrap, (topic, 1))
        pub = Publisher(kafka_bootstrap, schema_registry_url, topic)
        pub.send(*case_events(3))
        wait_for(url, {("gplx_cases_reader_up", ""): 1.0,
                       ("gplx_decisions_total", '{outcome="REJECTED",reason="UNFIT"}'): 1.0}, timeout=60)
    finally:
        exporter.stop()
        if pub:
            pub.close()


def test_case_signals_survive_a_broker_restart(restartable_kafka, schema_registry_url, unique_name):
    kafka, prefix = restartable_kafka, f"{unique_name}-"
    topic = prefix + "cases.events"
    create_topics(kafka.bootstrap_servers, (topic, 2))
    pub = Publisher(kafka.bootstrap_servers, schema_registry_url, topic)
    pub.send(*case_events(0), *case_events(1))
    pub.close()
    exporter, _ = start_exporter(kafka.bootstrap_servers, schema_registry_url, prefix)
    url = f"http://127.0.0.1:{exporter.port}/metrics"
    counts = {("gplx_decided_cases_total", '{outcome="REJECTED"}'): 1.0,
              ("gplx_decided_cases_total", '{outcome="ESCALATED"}'): 1.0}
    try:
        wait_for(url, {("gplx_cases_reader_up", ""): 1.0, **counts}, timeout=60)
        kafka.stop()
        text = wait_for(url, {("gplx_cases_reader_up", ""): 0.0}, timeout=60)
        assert "gplx_decided_cases_total{" not in text  # absent while down, like the lag series
        assert metric(text, "gplx_cases_reader_errors_total", '{reason="kafka"}') >= 1
        kafka.start()
        wait_for(url, {("gplx_cases_reader_up", ""): 1.0, **counts}, timeout=90)
        pub = Publisher(kafka.bootstrap_servers, schema_registry_url, topic)
        pub.send(*case_events(2))
        pub.close()
        wait_for(url, {("gplx_decided_cases_total", '{outcome="APPROVED"}'): 1.0, **counts}, timeout=60)
    finally:
        exporter.stop()


def test_a_restart_resumes_from_the_snapshot_not_the_beginning(kafka_bootstrap, schema_registry_url, unique_name,
                                                               tmp_path):
    prefix = f"{unique_name}-"
    topic = prefix + "cases.events"
    create_topics(kafka_bootstrap, (topic, 3))
    pub = Publisher(kafka_bootstrap, schema_registry_url, topic)
    state = tmp_path / "cases.snapshot.json.gz"
    pub.send(*[e for n in range(30) for e in case_events(n)])  # 10 of each outcome, 60 records
    exporter, signals = start_exporter(kafka_bootstrap, schema_registry_url, prefix, state_file=state)
    url = f"http://127.0.0.1:{exporter.port}/metrics"
    try:
        wait_for(url, {("gplx_case_events_read_total", '{result="counted"}'): 60.0,
                       ("gplx_cases_reader_ready", ""): 1.0}, timeout=60)
    finally:
        exporter.stop()
        signals.stop()
    assert state.exists() and state.stat().st_mode & 0o777 == 0o600
    pub.send(*[e for n in range(30, 33) for e in case_events(n)])  # 6 records more while it was down
    exporter, signals = start_exporter(kafka_bootstrap, schema_registry_url, prefix, state_file=state)
    url = f"http://127.0.0.1:{exporter.port}/metrics"
    try:
        # Read from the beginning, the 60 old records would come back as duplicates: none did.
        wait_for(url, {("gplx_case_events_read_total", '{result="counted"}'): 66.0,
                       ("gplx_case_events_read_total", '{result="duplicate"}'): 0.0,
                       ("gplx_decided_cases_total", '{outcome="APPROVED"}'): 11.0,
                       ("gplx_cases_reader_ready", ""): 1.0}, timeout=60)
    finally:
        exporter.stop()
        signals.stop()
        pub.close()
