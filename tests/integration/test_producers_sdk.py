"""The producer SDK, the clinic import CLI and the simulator against the real broker and schema registry."""
from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from producers import simulator
from producers.adapters import clinic
from producers.errors import BrokerUnavailable, RegistryUnreachable
from producers.sdk import Publisher
from producers.testing import create_topics, private_catalogue, read_events, topic_size
from schemas.registry import RegistryClient
from topology import catalogue as topics
from topology import contracts

pytestmark = pytest.mark.integration

START = dt.datetime(2025, 9, 1, 10, 0, tzinfo=dt.timezone.utc)
SAMPLE = Path(clinic.__file__).parent / "samples" / "health-certificates.csv"


@pytest.fixture
def catalogue(kafka_bootstrap, schema_registry_url):
    cat = private_catalogue()
    create_topics(kafka_bootstrap, cat)
    with RegistryClient(schema_registry_url) as registry:
        contracts.register(registry, cat)  # as the operator: the SDK only looks them up
    return cat


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_publish_and_read_back_keyed_by_cccd_and_co_partitioned(kafka_bootstrap, schema_registry_url, catalogue):
    plan = simulator.make_plan("01,79", 40, seed=5, start=START)
    events = [s.event for s in plan.events]
    with RegistryClient(schema_registry_url) as registry, \
            Publisher(kafka_bootstrap, registry, catalogue=catalogue) as publisher:
        results = publisher.publish_many(events)
        single = publisher.publish(events[0])
    assert len(results) == len(events) and single.offset > results[0].offset
    partition_of: dict[str, set[int]] = {}
    for event, result in zip(events, results):
        assert result.event_id == event.event_id
        partition_of.setdefault(event.cccd, set()).add(result.partition)
    assert all(len(p) == 1 for p in partition_of.values())  # one citizen, one partition number on every topic

    with RegistryClient(schema_registry_url) as registry:
        read = read_events(kafka_bootstrap, registry, catalogue.name(topics.PORTAL_APPLICATIONS), count=40)
        pays = read_events(kafka_bootstrap, registry, catalogue.name(topics.PAYMENT_TRANSACTIONS), count=40)
    sent = {e.event_id: e for e in events}
    assert len(read) == 40 and all(sent[e.event_id] == e and key == e.cccd for key, e in read)
    assert Counter(e.status for _, e in pays) == Counter(p.status for p in plan.payments)


def test_simulator_publishes_every_planned_event(kafka_bootstrap, schema_registry_url, catalogue):
    plan = simulator.make_plan("01", 60, seed=9, start=START)
    with Publisher(kafka_bootstrap, schema_registry_url, catalogue=catalogue) as publisher:
        report = simulator.publish(plan, publisher, rate=0, check_every=25)
    counts = plan.counts()["event"]
    assert report.published == counts
    assert topic_size(kafka_bootstrap, catalogue.name(topics.HEALTH_EXAM_RESULTS)) == counts["HealthCertificate"]
    assert topic_size(kafka_bootstrap, catalogue.name(topics.PORTAL_APPLICATIONS)) == 60


def test_unreachable_broker_is_a_one_line_error_in_bounded_time(schema_registry_url):
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as info:
        Publisher(f"127.0.0.1:{port}", schema_registry_url, connect_timeout_s=3)
    assert time.monotonic() - started < 10
    assert f"127.0.0.1:{port}" in str(info.value) and "\n" not in str(info.value)


def test_unreachable_registry_is_a_one_line_error(kafka_bootstrap, catalogue):
    plan = simulator.make_plan("01", 1, seed=1, start=START)
    with Publisher(kafka_bootstrap, f"http://127.0.0.1:{closed_port()}/apis/ccompat/v7", catalogue=catalogue,
                   connect_timeout_s=3) as publisher:
        with pytest.raises(RegistryUnreachable) as info:
            publisher.publish(plan.events[0].event)
    assert "unreachable" in str(info.value) and "\n" not in str(info.value)


def test_cli_with_a_closed_port_prints_one_line_and_no_traceback(tmp_path):
    """Through the real composition root's error handling (gplx_bus.cli.main), in a child process."""
    script = ("from gplx_bus import cli\n"
              "from gplx_bus.commands import clinic\n"
              "if 'clinic' not in [g.name for g in cli.app.registered_groups]:\n"
              "    cli.app.add_typer(clinic.app, name='clinic')\n"
              "cli.main()\n")
    env = {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port()}", "PATH": "/usr/bin:/bin",
           "SCHEMA_REGISTRY_URL": f"http://127.0.0.1:{closed_port()}/apis/ccompat/v7"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script, "clinic", "publish", str(SAMPLE)], env=env,
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert time.monotonic() - started < 30
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gplx-bus: error: cannot reach Kafka at 127.0.0.1:")
    assert "Traceback" not in done.stderr


def test_clinic_publish_cli_reports_the_bad_row_and_publishes_the_good_ones(
        kafka_bootstrap, schema_registry_url, catalogue, tmp_path, monkeypatch):
    from gplx_bus.commands.clinic import app

    export = tmp_path / "export.csv"
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    lines.insert(3, lines[1].replace("00101/", "00177/").replace(",2,B2,", ",two,B2,"))
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", schema_registry_url)
    rejects = tmp_path / "rejects.csv"
    result = CliRunner().invoke(app, ["publish", str(export), "--prefix", catalogue.prefix,
                                      "--rejects", str(rejects)])
    out = result.output.splitlines()
    assert result.exit_code == 1, result.output
    assert out[2] == "row 3: rejected: field 'health_group' breaks rule integer: must be a whole number (1, 2 or 3)"
    assert sum(line.startswith("row ") and " accepted " in line for line in out) == 5
    assert out[-1] == f"6 rows: 5 accepted, 1 rejected (written to {rejects})"
    assert topic_size(kafka_bootstrap, catalogue.name(topics.HEALTH_EXAM_RESULTS)) == 5
    assert "00177/GKSKLX" in rejects.read_text(encoding="utf-8")
    assert rejects.stat().st_mode & 0o777 == 0o600  # health data: owner only
