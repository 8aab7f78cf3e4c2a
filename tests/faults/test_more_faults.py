"""The other fault scenarios (`make faults`; deselected by default: several minutes each on a shared machine).

Same day, same seed, same baseline comparison as test_three_nodes.py; each fault is its own scenario.
"""
from __future__ import annotations

import shutil
import time

import pytest

from tests.faults import harness
from tests.faults.harness import run_day
from test_three_nodes import CASES, SEED, check  # noqa: F401 - the same day and checks

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]

HANG_S, REGISTRY_DOWN_S, PORTAL_DOWN_S, PORTAL_500_S = 30, 30, 60, 30


@pytest.fixture(scope="module")
def baseline(cluster3, workroot):
    return run_day(cluster3, workroot, CASES, SEED)


def scenario(cluster3, workroot, baseline, fault: harness.Fault):
    # below pytest's 600 s per test, so a run that does not settle still reports its figures
    run = run_day(cluster3, workroot, CASES, SEED, fault, timeout_s=480)
    return check(run, baseline)


def test_hang_one_broker_30s(cluster3, workroot, baseline):
    def inject(run):
        node, _ = harness.busiest_leader(run)
        run.cluster.hang_node(node)
        time.sleep(HANG_S)  # the fault's duration, not a wait for a condition
        run.cluster.resume_node(node)
        return f"SIGSTOP broker {node} for {HANG_S}s, then SIGCONT"
    scenario(cluster3, workroot, baseline, harness.Fault("hang-broker-30s", inject, background=True))


def test_rolling_restart_under_load(cluster3, workroot, baseline):
    def inject(run):
        took = []
        for node in run.cluster.nodes:
            started = time.monotonic()
            run.cluster.restart_node(node.spec.node_id)
            harness.wait_in_sync(run)  # an operator waits for no under-replicated partition before the next
            took.append(f"{node.spec.node_id}:{time.monotonic() - started:.0f}s")
        return f"rolling restart (SIGTERM, start, in sync) {' '.join(took)}"
    scenario(cluster3, workroot, baseline, harness.Fault("rolling-restart", inject, background=True))


def test_kill_a_worker_during_a_rebalance(cluster3, workroot, baseline):
    def inject(run):
        harness.wait_group_members(run, 2)
        run.workers.start("w3")  # joins: the group rebalances
        harness.wait_rebalancing(run)
        run.workers.kill("w1")
        return "w3 joins 2 workers; SIGKILL w1 during the rebalance"
    scenario(cluster3, workroot, baseline, harness.Fault("kill-worker-in-rebalance", inject, workers=2))


def test_kill_both_workers(cluster3, workroot, baseline):
    def inject(run):
        harness.wait_group_members(run, 2)
        run.workers.kill("w1")
        run.workers.kill("w2")
        run.workers.start("w1")
        run.workers.start("w2")
        return "SIGKILL both workers at once, both started again (memory:// store: restored from the changelog)"
    scenario(cluster3, workroot, baseline, harness.Fault("kill-both-workers", inject, workers=2))


def test_registry_down_30s(cluster3, workroot, baseline):
    def inject(run):
        run.cluster.kill_registry()
        time.sleep(REGISTRY_DOWN_S)  # the outage's duration
        took = run.cluster.start_registry()
        return f"SIGKILL the schema registry, started again after {REGISTRY_DOWN_S}s (answering {took:.0f}s later)"
    scenario(cluster3, workroot, baseline, harness.Fault("registry-down-30s", inject, background=True))


def test_portal_down_60s_then_failing_30s(cluster3, workroot, baseline):
    def inject(run):
        run.portal.go_down()
        time.sleep(PORTAL_DOWN_S)  # the outage's duration
        run.portal.come_up()
        run.portal.refuse_for(PORTAL_500_S)  # the stand-in answers 503; the sink retries every 5xx alike
        time.sleep(PORTAL_500_S)
        return f"portal port closed {PORTAL_DOWN_S}s, then 5xx for {PORTAL_500_S}s"
    scenario(cluster3, workroot, baseline, harness.Fault("portal-down-60s-5xx-30s", inject, background=True))


def test_processor_disk_state_deleted(cluster3, workroot, baseline):
    def inject(run):
        harness.wait_group_members(run, 1)
        run.workers.kill("w1")
        shutil.rmtree(run.workers.datadir("w1"))
        run.workers.start("w1")
        return "SIGKILL the worker, delete its RocksDB folder, start it: state from the changelog only"
    scenario(cluster3, workroot, baseline,
             harness.Fault("disk-state-deleted", inject, store="rocksdb://"))
