"""Fixtures of the fault scenarios: one three-node KRaft cluster (and registry) per module, a fault-free baseline
run per module, and the figures of every run collected for the end of the test output."""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from deploy.local.cluster import LocalCluster
from deploy.local.process import pid_alive
from tests.faults import harness


@pytest.fixture(scope="module")
def cluster3():
    """Three combined broker/controller nodes and a registry of their own: scenarios kill nodes of it."""
    keep = _kept("cluster")
    cluster = LocalCluster(nodes=3, ready_timeout=120, data_dir=keep)
    cluster.start()
    yield cluster
    harness.all_nodes_up(cluster)  # the last scenario's fault may have left a node dead: stop a whole cluster
    pids = cluster.pids()
    outcome = cluster.stop(timeout=15)
    # Stopped together, the nodes lose their controller majority while shutting down; the last one's controlled
    # shutdown can then wait for a quorum that is gone (seen on Kafka 4.1.1), and the launcher's SIGKILL ends it.
    # Which node is last is a race: at least one node stops gracefully, and nothing is left.
    nodes = {name: how for name, how in outcome.items() if name.startswith("kafka-")}
    assert "terminated" in nodes.values() and set(nodes.values()) <= {"terminated", "killed"}, outcome
    assert not any(pid_alive(pid) for pid in pids), "a node or the registry outlived stop()"


@pytest.fixture(scope="module")
def workroot():
    kept = _kept("runs")
    folder = kept or Path(tempfile.mkdtemp(prefix="gplx-faults-"))
    yield folder
    if not kept:
        shutil.rmtree(folder, ignore_errors=True)


def _kept(part: str) -> Path | None:
    """`GPLX_FAULTS_KEEP=DIR`: the nodes' data and every run's logs stay under DIR (to read a failure after)."""
    root = os.environ.get("GPLX_FAULTS_KEEP")
    if not root:
        return None
    Path(root).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{part}-", dir=root))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """The figures of the runs since the last test's teardown ride on its report: under pytest-xdist the runs happen
    in a worker process, and only reports reach the process that prints the summary."""
    report = (yield).get_result()  # printed by tests/conftest.py's pytest_terminal_summary
    if report.when == "teardown":
        while harness.FIGURES:
            report.user_properties.append(("fault_figures", dataclasses.asdict(harness.FIGURES.pop(0))))
