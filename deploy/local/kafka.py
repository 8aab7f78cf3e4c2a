"""One Apache Kafka node in KRaft mode (combined broker and controller), run from the cached jars.

A node is formatted (`kafka.tools.StorageTool format`) and started (`kafka.Kafka server.properties`) as a
subprocess. Readiness is a metadata request that lists this broker, never a sleep. Several nodes sharing one
`controller.quorum.voters` line form a quorum on one host (three for the fault tests).
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from deploy.local.errors import LauncherError
from deploy.local.process import ManagedProcess
from deploy.local.security import ADMIN_USER, SecureFiles, write_private
from deploy.local.settings import kafka_heap_opts
from topology.kafka_python import new_client

_LOG4J1 = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
"""
_LOG4J2 = """\
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
"""


@dataclass
class NodeSpec:
    node_id: int
    broker_port: int
    controller_port: int
    data_dir: Path

    @property
    def voter(self) -> str:
        return f"{self.node_id}@127.0.0.1:{self.controller_port}"


def server_properties(node: NodeSpec, voters: str, replication: int, secure: SecureFiles | None = None) -> str:
    """Broker config; replication of internal topics follows the size of the quorum.

    Plain: one PLAINTEXT client listener. Secure: SASL_SSL + SCRAM, TLS and the authorizer (see `security`).
    """
    listeners = secure.server_properties(node.broker_port, node.controller_port) if secure else [
        f"listeners=PLAINTEXT://127.0.0.1:{node.broker_port},CONTROLLER://127.0.0.1:{node.controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{node.broker_port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    ]
    return "\n".join([
        "process.roles=broker,controller",
        f"node.id={node.node_id}",
        f"controller.quorum.voters={voters}",
        *listeners,
        f"log.dirs={node.data_dir / 'logs'}",
        "num.partitions=1",
        f"default.replication.factor={replication}",
        f"min.insync.replicas={min(2, replication)}",  # __consumer_offsets too: RF 3 / min ISR 2 on three nodes
        "unclean.leader.election.enable=false",  # never elect a replica that may miss acknowledged records
        f"offsets.topic.replication.factor={replication}",
        "offsets.topic.num.partitions=10",  # 50 by default: slow first group join on a laptop-sized broker
        f"transaction.state.log.replication.factor={replication}",
        f"transaction.state.log.min.isr={min(2, replication)}",
        "transaction.state.log.num.partitions=5",
        "group.initial.rebalance.delay.ms=0",
        # Every topic, the processor's changelogs included, is made by `gplx-bus topics apply` from the catalogue,
        # never by a client naming one: with auto-create on, a metadata request for a misspelled topic made it.
        "auto.create.topics.enable=false",
        "log.retention.check.interval.ms=60000",
        "",
    ])


class KafkaNode:
    """One node's files and process."""

    def __init__(self, spec: NodeSpec, lib_dir: Path, version: str, marker: str, tie_to_parent: bool = True):
        self.spec = spec
        self.lib_dir = lib_dir
        self.version = version
        self.marker = marker
        self.tie_to_parent = tie_to_parent
        self.process: ManagedProcess | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.spec.broker_port}"

    @property
    def config_path(self) -> Path:
        return self.spec.data_dir / "server.properties"

    def _java(self, main_class: str, *args: str) -> list[str]:
        major = int(self.version.split(".")[0])
        logging = (
            [f"-Dlog4j.configuration=file:{self.spec.data_dir / 'log4j.properties'}"]
            if major < 4
            else [f"-Dlog4j2.configurationFile={self.spec.data_dir / 'log4j2.properties'}"]
        )
        return ["java", *kafka_heap_opts(), "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
                f"-Dgplx.run={self.marker}", *logging, "-cp", f"{self.lib_dir}/*", main_class, *args]

    def format(self, cluster_id: str, voters: str, replication: int, secure: SecureFiles | None = None) -> None:
        self.spec.data_dir.mkdir(parents=True, exist_ok=True)
        # 0600: in secure mode it holds the admin's password (inter-broker login)
        write_private(self.config_path, server_properties(self.spec, voters, replication, secure))
        (self.spec.data_dir / "log4j.properties").write_text(_LOG4J1)
        (self.spec.data_dir / "log4j2.properties").write_text(_LOG4J2)
        result = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.config_path),
                       "--ignore-formatted", *(secure.format_args() if secure else [])),
            capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 0:
            reason = _tool_failure(f"{result.stderr}\n{result.stdout}")
            if secure:  # the tool may echo its --add-scram argument
                reason = reason.replace(secure.password(ADMIN_USER), "***")
            raise LauncherError(f"formatting KRaft storage of node {self.spec.node_id} failed: {with_fix(reason)}")

    def start(self) -> None:
        self.process = ManagedProcess(
            name=f"kafka-{self.spec.node_id}",
            cmd=self._java("kafka.Kafka", str(self.config_path)),
            log_path=self.spec.data_dir / "broker.log",
            tie_to_parent=self.tie_to_parent,
        ).start()

    def stop(self, timeout: float = 20.0) -> str:
        return self.process.stop(timeout) if self.process else "gone"

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def signal(self, sig: int) -> None:
        """Send `sig` to the node's JVM (SIGKILL: a crash; SIGSTOP/SIGCONT: a hang and its end); SIGKILL waits
        until it is gone, so a restart right after finds its ports free."""
        if not self.alive():
            raise LauncherError(f"node {self.spec.node_id} is not running")
        os.kill(self.process.pid, sig)
        if sig == signal.SIGKILL:
            self.process.popen.wait()

    def failure_reason(self) -> str:
        """Why the node died, in one line, from its log: the last error, else its last lines. Never only the log's
        path: a failed start deletes the run's folder, and that log with it."""
        if self.process is None:
            return "it was never started"
        if not self.process.log_path.exists():
            return f"its log {self.process.log_path} is gone (deleted while it ran?)"
        tail = self.process.log_tail(60)
        if "Address already in use" in tail:
            return f"port {self.spec.broker_port} or {self.spec.controller_port} is already in use"
        errors = [line for line in tail.splitlines() if " ERROR " in line or "Exception" in line]
        if errors:
            return errors[-1][:300]
        return last_lines(tail)


def _tool_failure(output: str) -> str:
    """The line of a Java tool's output that says what failed: its first exception or error, else its last line
    (never SLF4J's notices about missing bindings, which every run prints)."""
    lines = [line.strip() for line in output.splitlines() if line.strip() and not line.startswith("SLF4J:")]
    errors = [line for line in lines if ("Exception" in line or "Error" in line) and not line.startswith("at ")]
    return (errors[0] if errors else lines[-1] if lines else "no output")[:300]


def with_fix(reason: str) -> str:
    """The reason, and the fix where the reason is one we know."""
    if "OutOfMemoryError" in reason:
        return f"{reason}; give the JVM more heap: GPLX_KAFKA_HEAP (now {' '.join(kafka_heap_opts())!r})"
    return reason


def last_lines(text: str, lines: int = 3, width: int = 300) -> str:
    """The last lines of a log (not SLF4J's notices), joined on one line for an error message."""
    kept = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("SLF4J:")][-lines:]
    return f"its log ends: {' | '.join(kept)[-width:]}" if kept else "its log is empty"


def wait_until_ready(bootstrap: str, expected_brokers: int, timeout: float, alive, client: dict | None = None) -> float:
    """Poll a metadata request until `expected_brokers` brokers are listed. Returns the seconds it took.

    `client`: extra kafka-python settings (the admin's SASL_SSL login on a secured stack).
    """
    from kafka import KafkaAdminClient  # imported here: the launcher's CLI help must not pay for it
    from kafka.errors import KafkaError

    started = time.monotonic()
    deadline = started + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if not alive():
            raise LauncherError("broker process exited during start-up")
        try:
            admin = new_client(KafkaAdminClient, bootstrap_servers=bootstrap, request_timeout_ms=3000,
                               bootstrap_timeout_ms=3000, client_id="gplx-launcher", **(client or {}))
            try:
                brokers = admin.describe_cluster().get("brokers", [])
            finally:
                admin.close()
            if len(brokers) >= expected_brokers:
                return time.monotonic() - started
            last_error = f"{len(brokers)} of {expected_brokers} brokers registered"
        except (KafkaError, OSError, ValueError) as exc:
            last_error = type(exc).__name__
        time.sleep(0.2)  # pacing between polls
    raise LauncherError(f"broker at {bootstrap} did not answer a metadata request within {timeout:.0f}s "
                        f"({last_error})")
