"""Session fixtures: one real Kafka cluster and schema registry for the whole test run.

Where they come from, in order:
1. `KAFKA_BOOTSTRAP_SERVERS` (and `SCHEMA_REGISTRY_URL`) set: that cluster is used as it is.
2. A Docker engine answers: testcontainers' `KafkaContainer` (the registry still comes from the local launcher).
3. Otherwise the local launcher (`deploy.local`) starts Apache Kafka and Apicurio Registry from Maven Central jars.
The test header says which one was used. After the run, any process this run started and left behind is reported
as a failure and killed.
"""
from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.local.cluster import LocalCluster
from deploy.local.process import pid_alive, stop_pid
from topology.connection import Connection

SESSION_ENV = "GPLX_TEST_SESSION"


@dataclass
class Bus:
    mode: str
    bootstrap_servers: "str | Connection"  # a Connection (the admin's login) on the secured local stack
    schema_registry_url: str
    kafka_version: str


def _secure() -> bool:
    """GPLX_LOCAL_SECURE=1: the local session stack is secured (SASL_SSL + SCRAM) and the tests connect as admin.
    Off by default: many tests still hand `kafka_bootstrap` to a Kafka client as a plain string."""
    return os.environ.get("GPLX_LOCAL_SECURE", "0") == "1"


def _docker_reachable() -> bool:
    if not Path("/var/run/docker.sock").exists() and not os.environ.get("DOCKER_HOST"):
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


def _mode() -> str:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return "external"
    return "testcontainers" if _docker_reachable() else "local"


def pytest_configure(config):
    # Every process started during this run inherits this variable: that is how leftovers are found. Under
    # pytest-xdist (`make test` runs two workers) each worker's processes carry the run's id plus the worker's name.
    os.environ.setdefault(SESSION_ENV, uuid.uuid4().hex)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and not os.environ[SESSION_ENV].endswith(f"-{worker}"):
        os.environ[SESSION_ENV] += f"-{worker}"


def pytest_report_header(config):
    mode = _mode()
    where = {
        "external": f"the cluster in the environment ({os.environ.get('KAFKA_BOOTSTRAP_SERVERS')})",
        "testcontainers": "testcontainers KafkaContainer (Docker)",
        "local": "the local launcher (Apache Kafka + Apicurio Registry from Maven Central jars)",
    }[mode]
    secured = ", secured (GPLX_LOCAL_SECURE=1)" if mode == "local" and _secure() else ""
    return f"gplx-bus: Kafka from {where}{secured}"


@pytest.fixture(scope="session")
def bus():
    mode = _mode()
    if mode == "local" and _secure():
        from deploy.local.security import ADMIN_USER

        with LocalCluster(secure=True, principals=["User:sre"]) as endpoints:
            admin = Connection.from_env({}, client_config=endpoints.secure_dir + f"/clients/{ADMIN_USER}.properties",
                                        bootstrap=endpoints.bootstrap_servers)
            yield Bus("local, secured", admin, endpoints.schema_registry_url, endpoints.kafka_version)
        return
    if mode == "local":
        with LocalCluster() as endpoints:
            yield Bus(mode, endpoints.bootstrap_servers, endpoints.schema_registry_url, endpoints.kafka_version)
        return
    registry_url = os.environ.get("SCHEMA_REGISTRY_URL")
    registry = None if registry_url else LocalCluster(with_kafka=False)
    if registry:
        registry_url = registry.start().schema_registry_url
    try:
        if mode == "external":
            yield Bus(mode, os.environ["KAFKA_BOOTSTRAP_SERVERS"], registry_url, "external")
        else:
            from testcontainers.kafka import KafkaContainer

            with KafkaContainer().with_kraft() as kafka:
                yield Bus(mode, kafka.get_bootstrap_server(), registry_url, "container")
    finally:
        if registry:
            registry.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(bus) -> str:
    return bus.bootstrap_servers


@pytest.fixture(scope="session")
def schema_registry_url(bus) -> str:
    return bus.schema_registry_url


class RestartableKafka:
    """A broker of its own that a fault test may stop and start again on the same address."""

    def __init__(self, cluster: LocalCluster):
        self.cluster = cluster
        self.bootstrap_servers = cluster.start().bootstrap_servers

    def stop(self) -> None:
        self.cluster.stop_brokers()

    def start(self) -> None:
        self.cluster.start_brokers()


@pytest.fixture
def restartable_kafka():
    """Always a local broker (never the shared session cluster): the test is going to take it down."""
    if _mode() != "local":
        pytest.skip("a restartable broker needs the local launcher (the session cluster must not be stopped)")
    kafka = RestartableKafka(LocalCluster(with_registry=False))
    yield kafka
    kafka.cluster.stop()


@pytest.fixture
def private_topics(kafka_bootstrap, schema_registry_url, unique_name):
    """make(provinces) -> a catalogue under this test's own prefix, its topics created now and deleted after, its
    contracts registered (as the operator does: the components only look them up)."""
    from schemas.registry import RegistryClient
    from topology import apply as topo
    from topology import contracts
    from topology.catalogue import Catalogue

    made = []

    def make(provinces):
        catalogue = Catalogue.build(prefix=unique_name + ".", replication_factor=1, input_partitions=3,
                                    provinces=provinces)
        topo.create_topics(kafka_bootstrap, catalogue)
        with RegistryClient(schema_registry_url) as registry:
            contracts.register(registry, catalogue)  # as the operator: the components only look them up
        made.append(catalogue)
        return catalogue

    yield make
    for catalogue in made:
        admin = topo.connect(kafka_bootstrap)
        try:
            admin.delete_topics([t.name for t in catalogue.managed])
        finally:
            admin.close()


@pytest.fixture
def unique_name(request) -> str:
    """A topic/group name no other test (or test run on the same cluster) uses."""
    return f"t-{request.node.name[:40].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:8]}"


def _leftovers(session_id: str) -> list[int]:
    me, found = os.getpid(), []
    needle = f"{SESSION_ENV}={session_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0") and pid_alive(int(entry.name)):
                found.append(int(entry.name))
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return found


_LEFT_IN_WORKERS: list[int] = []


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if a broker, registry or worker we started is still alive (and kill it).

    Under pytest-xdist each worker looks for its own processes: they die with it (the launcher's children get
    SIGKILL when their parent goes), so the controller, which runs last, would find none. The worker hands what it
    found to the controller, which fails the run."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is None and getattr(session.config.option, "numprocesses", None):
        left = _LEFT_IN_WORKERS  # the xdist controller: it started nothing (the workers carry its bare id)
    else:
        left = _leftovers(os.environ[SESSION_ENV])
        for pid in left:
            stop_pid(pid, timeout=5)
    if workeroutput is not None:  # an xdist worker: its exit status does not reach the run's
        workeroutput["gplx_leftovers"] = left
        return
    if left:
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            f"gplx-bus: processes left running by the tests were killed: {left}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist, in the controller: a worker ended; note the processes it found left running."""
    _LEFT_IN_WORKERS.extend(getattr(node, "workeroutput", {}).get("gplx_leftovers", []))


def pytest_terminal_summary(terminalreporter):
    """The fault scenarios' figures (tests/faults), from the reports: here, not in tests/faults/conftest.py, because
    under pytest-xdist the process that prints collects nothing and so loads only this conftest."""
    found = [value for reports in terminalreporter.stats.values() for report in reports
             for name, value in getattr(report, "user_properties", ()) if name == "fault_figures"]
    if not found:
        return
    from tests.faults.harness import Figures

    terminalreporter.section("fault scenarios: figures")
    for f in (Figures(**value) for value in found):
        terminalreporter.write_line(f.line())
        for line in f.worker_exits + f.client_errors + f.differences + f.problems[:5] + f.notes:
            terminalreporter.write_line(f"    {line}")
    out = os.environ.get("GPLX_FAULTS_REPORT")
    if out:
        Path(out).write_text(json.dumps(found, indent=2, default=str))
