"""The launcher itself: stops a hung broker, keeps concurrent launches apart, leaves nothing behind."""
from __future__ import annotations

import json
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


def test_a_second_local_up_of_the_same_home_is_refused_and_the_first_left_alone(tmp_path):
    """Two `gplx-bus local up` with one GPLX_HOME share its data folder: the second, on other ports, used to format
    the first one's KRaft storage. Now it is refused in one line, while the first starts and once it runs."""
    from deploy.local.jars import kafka_lib_dir
    from deploy.local.ports import free_port

    home = tmp_path / "home"
    home.mkdir()
    (home / "jars").symlink_to(kafka_lib_dir().parent)  # the cached jars; the run's state and data of its own
    env = {**os.environ, "GPLX_HOME": str(home), "GPLX_DEBUG": ""}
    gplx = [sys.executable, "-m", "gplx_bus.cli", "local"]
    first_port, second_port = free_port(), free_port()

    def second_up() -> str:
        result = subprocess.run([*gplx, "up", "--no-registry", "--kafka-port", str(second_port)], env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        [line] = [line for line in result.stderr.splitlines() if line.startswith("gplx-bus: error:")]
        assert "gplx-bus local down" in line and "another GPLX_HOME" in line, line
        return line

    first = subprocess.Popen([*gplx, "up", "--no-registry", "--kafka-port", str(first_port)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = home / "run" / "local" / "up.lock"
        _wait_for(lambda: lock.exists() and f"pid {first.pid}," in lock.read_text(), 30, "the first up to start")
        assert "is already starting (pid " in second_up()  # its broker needs seconds to answer; this takes one
        _, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
        line = second_up()
        assert "is already running" in line and f"127.0.0.1:{first_port}" in line
        status = subprocess.run([*gplx, "status", "--json"], env=env, capture_output=True, text=True, timeout=60)
        state = json.loads(status.stdout)
        assert state["running"] and state["bootstrap_servers"] == f"127.0.0.1:{first_port}"
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=state["bootstrap_servers"])
        assert len(admin.describe_cluster()["brokers"]) == 1  # the first stack still answers
        admin.close()
    finally:
        subprocess.run([*gplx, "down"], env=env, capture_output=True, timeout=60)
        first.kill()
        first.wait()
