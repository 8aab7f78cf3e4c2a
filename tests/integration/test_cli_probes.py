"""What a new operator tries first, through the real CLI: each bad input or dead endpoint gives one line naming the
problem and the fix (or typer's usage box for a bad option value), a non-zero exit, no traceback and no hang."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

GPLX = [sys.executable, "-m", "gplx_bus.cli"]
ROOT = Path(__file__).parents[2]
CLOSED = "127.0.0.1:1"  # nothing listens on port 1


def run(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*GPLX, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "GPLX_DEBUG": "", **env})


def one_line(result: subprocess.CompletedProcess, *words: str) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("gplx-bus: error:")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def usage_error(result: subprocess.CompletedProcess, *words: str) -> None:
    """typer's own box for a bad option value: exit 2, the option named, no traceback."""
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    flat = " ".join(result.stderr.replace("│", " ").split())
    for word in words:
        assert word in flat, flat


@pytest.mark.parametrize("args", [
    ("subscribe", "--province", "79", "-b", CLOSED),
    ("portal", "sink", "-b", CLOSED),
    ("dlq", "list", "-b", CLOSED),
    ("clinic", "keys", "list", "-b", CLOSED),
])
def test_a_closed_broker_port_is_one_line(args, tmp_path):
    from consumers.portal import write_secret_file

    write_secret_file(tmp_path / "portal.secret")  # the sink signs its requests: it needs a secret to start
    one_line(run(*args, GPLX_PORTAL_SECRET_FILE=str(tmp_path / "portal.secret")), "Kafka", "bootstrap")


@pytest.mark.parametrize("args", [
    ("subscribe", "--province", "79", "-b", "garbage::"),
    ("lag", "-b", "no-port"),
    ("dlq", "list", "-b", "host:99999"),
])
def test_a_malformed_bootstrap_is_named(args):
    usage_error(run(*args), "is not host:port")


@pytest.mark.parametrize("args, words", [
    (("portal", "standin", "--port", "70000"), ("--port", "65535")),
    (("lag", "serve", "--port", "-3"), ("--port",)),
    (("processor", "run", "--tick-seconds", "-1"), ("--tick-seconds",)),
    (("simulate", "--applications", "100000000", "--dry-run"), ("--applications", "100000")),
])
def test_out_of_range_values_are_refused_before_anything_runs(args, words):
    usage_error(run(*args, timeout=30), *words)


def test_a_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        one_line(run("portal", "standin", "--port", port, "--portal-secret-file", str(tmp_path / "s")),
                 "cannot listen", "in use", "--port")
        one_line(run("lag", "serve", "--port", port, "--no-cases", "-b", CLOSED), "cannot listen", "--port")


def test_a_rate_that_would_run_for_days_is_refused(tmp_path):
    one_line(run("simulate", "--applications", "10", "--rate", "0.000001", "--data-dir", str(tmp_path)),
             "--rate", "24 hours")


@pytest.mark.parametrize("name, data, words", [
    ("export.csv", "Bác sĩ Hòa,".encode("cp1252", errors="replace") + b"\xe0\xf2\n", ("not utf-8", "--encoding")),
    ("noise.csv", bytes(range(256)), ("binary",)),
    ("empty.csv", b"", ("empty",)),
    ("headers.csv", b"a,b\n1,2\n", ("lacks required column",)),
    ("object.json", b'{\n  "certificate_number": "1"\n}\n', ("one JSON object",)),
])
def test_clinic_publish_refuses_a_bad_file_before_the_bus(tmp_path, name, data, words):
    path = tmp_path / name
    path.write_bytes(data)
    # The broker port is closed: the file's problem must be reported, not the broker's.
    one_line(run("clinic", "publish", str(path), KAFKA_BOOTSTRAP_SERVERS=CLOSED), *words)


def test_clinic_publish_of_a_missing_file_names_the_file():
    one_line(run("clinic", "publish", "/no/such/export.csv", KAFKA_BOOTSTRAP_SERVERS=CLOSED), "no such file")


def test_lag_serve_exits_promptly_on_sigterm_with_the_broker_down():
    proc = subprocess.Popen([*GPLX, "lag", "serve", "--port", "0", "-b", CLOSED,
                             "--schema-registry-url", "http://127.0.0.1:1"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        line = ""
        while "serving lag metrics" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
        assert "serving lag metrics on http://127.0.0.1:" in line  # loopback by default
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 5.0
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.integration
def test_adapters_run_prints_its_summary_on_sigterm(kafka_bootstrap, schema_registry_url, tmp_path):
    from schemas.registry import RegistryClient
    from topology import contracts
    from topology.catalogue import Catalogue

    prefix = f"probe{os.getpid()}."
    with RegistryClient(schema_registry_url) as registry:  # as the operator: the adapters only look them up
        contracts.register(registry, Catalogue.build(prefix=prefix, replication_factor=1))
    proc = subprocess.Popen([*GPLX, "adapters", "run", "-b", kafka_bootstrap, "--registry-url", schema_registry_url,
                             "--prefix", prefix, "--data-dir", str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        line = ""
        while "adapters running" not in line and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stderr.readline()
        assert "adapters running" in line
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, rest = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "stopped: " in rest, rest
        assert time.monotonic() - started < 15.0
    finally:
        proc.kill()
        proc.wait()


def test_processor_run_with_the_broker_down_is_one_line_not_fausts_traceback(tmp_path):
    started = time.monotonic()
    result = run("processor", "run", "-b", CLOSED, "--store", "memory://", "--data-dir", str(tmp_path), timeout=30)
    one_line(result, "cannot reach Kafka at 127.0.0.1:1", "--bootstrap-servers", "gplx-bus local up")
    assert time.monotonic() - started < 15
    assert "faust" not in result.stderr.lower()  # the worker never started


@pytest.mark.parametrize("args, words", [
    (("processor", "run", "--store", "redis://"), ("--store", "rocksdb://", "memory://")),
    (("asyncapi", "--format", "xml"), ("--format", "yaml", "json")),
    (("schemas", "check", "--level", "STRICT"), ("--level", "FULL_TRANSITIVE")),
    (("local", "up", "--kafka-port", "70000"), ("--kafka-port", "65535")),
])
def test_a_value_outside_a_fixed_set_is_refused_naming_the_choices(args, words):
    usage_error(run(*args, timeout=30), *words)


def test_simulate_accepts_an_old_province_code_as_subscribe_does(tmp_path):
    result = run("simulate", "--provinces", "02,79", "--applications", "20", "--dry-run", "--data-dir", str(tmp_path),
                 "--expected", str(tmp_path / "expected.jsonl"), timeout=60)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "old province code" in line]
    assert notes == ["old province codes read as their current province: 02 Hà Giang → 08 Tuyên Quang"]
    provinces = {json.loads(line)["province"] for line in (tmp_path / "expected.jsonl").read_text().splitlines()}
    assert provinces <= {"08", "79"} and "08" in provinces
    one_line(run("simulate", "--provinces", "02,00", "--dry-run", "--data-dir", str(tmp_path)), "'00'", "old")


def test_the_processor_refuses_to_start_without_its_topics(kafka_bootstrap, schema_registry_url, tmp_path):
    """The worker may not create topics (faust's own creation raced between two workers): without `topics apply`
    it names the missing ones and the command, instead of a worker that never processes anything."""
    result = run("processor", "run", "--store", "memory://", "--data-dir", str(tmp_path), "-b", kafka_bootstrap,
                 "--registry-url", schema_registry_url, "--prefix", "never-applied.", timeout=120)
    one_line(result, "topics missing", "never-applied.health.exam-results", "gplx-bus topics apply --prefix never-applied.")
