"""Fixtures of the fault scenarios: one three-node KRaft cluster (and registry) per module, a fault-free baseline
run per module, and the figures of every run collected for the end of the test output."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from deploy.local.cluster import LocalCluster
from tests.faults import harness


@pytest.fixture(scope="module")
def cluster3():
    """Three combined broker/controller nodes and a registry of their own: scenarios kill nodes of it."""
    keep = _kept("cluster")
    cluster = LocalCluster(nodes=3, ready_timeout=120, data_dir=keep)
    cluster.start()
    yield cluster
    cluster.stop(timeout=15)


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


def pytest_terminal_summary(terminalreporter):
    FIGURES = harness.FIGURES
    if not FIGURES:
        return
    terminalreporter.section("fault scenarios: figures")
    for figures in FIGURES:
        terminalreporter.write_line(figures.line())
        for line in (figures.worker_exits + figures.client_errors + figures.differences + figures.problems[:5]
                     + figures.notes):
            terminalreporter.write_line(f"    {line}")
    out = os.environ.get("GPLX_FAULTS_REPORT")
    if out:
        Path(out).write_text(json.dumps([{**f.__dict__} for f in FIGURES], indent=2, default=str))
