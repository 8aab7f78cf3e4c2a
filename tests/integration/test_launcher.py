"""The launcher itself: stops a hung broker, keeps concurrent launches apart, leaves nothing behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from deploy.local.cluster import LocalCluster
from deploy.local.process import pid_alive

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_stop_kills_a_hung_broker():
    cluster = LocalCluster(with_registry=False)
    endpoints = cluster.start()
    [pid] = endpoints.pids
    os.kill(pid, signal.SIGSTOP)  # a hung JVM: it will not act on SIGTERM
    try:
        started = time.monotonic()
        outcome = cluster.stop(timeout=2.0)
        assert outcome == {"kafka-1": "killed"}
        assert time.monotonic() - started < 15
        assert not pid_alive(pid)
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_healthy_broker_stops_on_sigterm():
    cluster = LocalCluster(with_registry=False)
    endpoints = cluster.start()
    assert cluster.stop(timeout=30) == {"kafka-1": "terminated"}
    assert not any(pid_alive(pid) for pid in endpoints.pids)


def test_two_launchers_at_once_do_not_collide():
    clusters = [LocalCluster(with_registry=False), LocalCluster(with_registry=False)]
    try:
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(lambda c: c.start(), clusters)
        assert first.bootstrap_servers != second.bootstrap_servers
        assert first.data_dir != second.data_dir
        from kafka import KafkaAdminClient

        for endpoints in (first, second):
            admin = KafkaAdminClient(bootstrap_servers=endpoints.bootstrap_servers)
            assert len(admin.describe_cluster()["brokers"]) == 1
            admin.close()
    finally:
        for cluster in clusters:
            cluster.stop()


def test_broker_dies_with_a_killed_parent():
    """Even a SIGKILLed test run (no finalizers) leaves no broker behind: PR_SET_PDEATHSIG."""
    script = (
        "from deploy.local.cluster import LocalCluster\n"
        "e = LocalCluster(with_registry=False).start()\n"
        "print(e.pids[0], flush=True)\n"
        "import time; time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        broker_pid = int(parent.stdout.readline())
        assert pid_alive(broker_pid)
        parent.kill()
        parent.wait()
        _wait_for(lambda: not pid_alive(broker_pid), 15, "the orphaned broker to die")
    finally:
        parent.kill()


def test_a_quorum_of_three_on_one_host():
    """The fault tests' mode: three combined broker/controllers; a topic replicated three times takes acks=all."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic

    cluster = LocalCluster(nodes=3, with_registry=False)
    endpoints = cluster.start()
    try:
        assert len(endpoints.bootstrap_servers.split(",")) == 3
        admin = KafkaAdminClient(bootstrap_servers=endpoints.bootstrap_servers)
        assert len(admin.describe_cluster()["brokers"]) == 3
        admin.create_topics([NewTopic("replicated", 3, 3)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=endpoints.bootstrap_servers, acks="all")
        for i in range(30):
            producer.send("replicated", key=str(i).encode(), value=b"v")
        producer.flush()
        producer.close()
        consumer = KafkaConsumer("replicated", bootstrap_servers=endpoints.bootstrap_servers,
                                 auto_offset_reset="earliest", consumer_timeout_ms=20000)
        received = 0
        for _ in consumer:
            received += 1
            if received == 30:
                break
        consumer.close()
        assert received == 30
    finally:
        outcome = cluster.stop(timeout=15)
    # Stopped together, the nodes lose their controller majority while shutting down; the last one's controlled
    # shutdown can then wait for a quorum that is gone (seen once on Kafka 4.1.1 with the nodes stopped together;
    # every time when they were stopped one by one), and the launcher's SIGKILL ends it. Which node is last is a
    # race, so the test asks only that the first to stop did so gracefully and that nothing is left.
    assert "terminated" in outcome.values(), outcome
    assert set(outcome.values()) <= {"terminated", "killed"}, outcome
    assert not any(pid_alive(pid) for pid in endpoints.pids)
