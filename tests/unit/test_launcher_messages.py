"""What `gplx-bus local up` says when Kafka does not start: the reason itself, never only the path of a log that
the failed start deletes with its data folder (issue 12)."""
from __future__ import annotations

from pathlib import Path

from deploy.local.kafka import KafkaNode, NodeSpec, _tool_failure, with_fix
from deploy.local.process import ManagedProcess

SLF4J = ('SLF4J: Failed to load class "org.slf4j.impl.StaticLoggerBinder".\n'
         "SLF4J: Defaulting to no-operation (NOP) logger implementation\n")


def _node(tmp_path: Path, log: str | None) -> KafkaNode:
    node = KafkaNode(NodeSpec(1, 19092, 19093, tmp_path), tmp_path, "4.1.1", "gplx-test")
    node.process = ManagedProcess("kafka-1", ["true"], tmp_path / "broker.log")
    if log is not None:
        node.process.log_path.write_text(log)
    return node


def test_a_log_without_an_error_line_is_quoted_not_pointed_at(tmp_path):
    reason = _node(tmp_path, SLF4J + "Terminating due to java.lang.OutOfMemoryError: Java heap space\n").failure_reason()
    assert reason == "its log ends: Terminating due to java.lang.OutOfMemoryError: Java heap space"
    assert "GPLX_KAFKA_HEAP" in with_fix(reason)


def test_a_deleted_log_is_said_to_be_gone(tmp_path):
    reason = _node(tmp_path, None).failure_reason()
    assert "is gone" in reason and "broker.log" in reason


def test_an_error_line_is_the_reason(tmp_path):
    log = "[2026-01-01] INFO starting\n[2026-01-01] ERROR Exiting Kafka due to fatal exception (kafka.Kafka$)\nbye\n"
    assert _node(tmp_path, log).failure_reason().endswith("ERROR Exiting Kafka due to fatal exception (kafka.Kafka$)")


def test_a_java_tool_failure_is_its_exception_not_slf4j_noise():
    output = (SLF4J + 'Exception in thread "main" org.apache.kafka.common.config.ConfigException: Missing required '
              'configuration "process.roles"\n\tat org.apache.kafka.common.config.ConfigDef.parseValue(ConfigDef.java:534)\n')
    assert _tool_failure(output).startswith('Exception in thread "main" org.apache.kafka.common.config.ConfigException')
    assert _tool_failure(SLF4J) == "no output"


def test_node_faults_without_a_running_stack_say_how_to_start_one(tmp_path):
    """`gplx-bus local kill|hang|resume|restart|controller|leader` with nothing running: one line and the fix."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "GPLX_HOME": str(tmp_path), "GPLX_DEBUG": ""}
    for args in (["kill", "1"], ["leader", "portal.applications"]):  # every one goes through DetachedNodes
        done = subprocess.run([sys.executable, "-m", "gplx_bus.cli", "local", *args], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "gplx-bus local up --nodes 3" in lines[0], done.stderr


def test_the_active_controller_is_the_leader_of_the_highest_epoch(tmp_path):
    import json

    from deploy.local.cluster import active_controller

    for node, (leader, epoch) in {1: (2, 5), 2: (3, 7), 3: (None, None)}.items():
        folder = tmp_path / f"node-{node}" / "logs" / "__cluster_metadata-0"
        folder.mkdir(parents=True)
        if leader is not None:  # node 3 has not written its file yet
            (folder / "quorum-state").write_text(json.dumps({"leaderId": leader, "leaderEpoch": epoch}))
    assert active_controller(tmp_path / f"node-{n}" for n in (1, 2, 3)) == 3
