"""The local stack: one (or three) Kafka nodes in KRaft mode and a schema registry, started and stopped together.

Used alike by `gplx-bus local up`, the pytest fixture, the demo and the benchmarks. Each launch has its own data
folder and free loopback ports (unless fixed ports are asked for), so two test runs at once do not collide.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable

from deploy.local import jars
from deploy.local.errors import LauncherError
from deploy.local.kafka import KafkaNode, NodeSpec, wait_until_ready, with_fix
from deploy.local.ports import free_port, require_free
from deploy.local.process import ManagedProcess, cmdline, pid_alive, stop_pid
from deploy.local.security import ADMIN_USER, SecureFiles, new_password, upsert_scram_users, user_name, wait_scram_users
from deploy.local.settings import kafka_version
from deploy.local.tools import require_java
from topology.kafka_python import new_client

_PORT_RETRIES = 3


@dataclass
class Endpoints:
    """What clients need: the bootstrap servers and the registry's Confluent-compatible URL."""

    bootstrap_servers: str
    schema_registry_url: str | None
    kafka_version: str
    data_dir: str
    marker: str
    pids: list[int] = field(default_factory=list)
    broker_start_seconds: float = 0.0
    registry_start_seconds: float = 0.0
    #: "PLAINTEXT", or "SASL_SSL" for a secured stack (`secure_dir` then holds the CA and the client configs)
    security_protocol: str = "PLAINTEXT"
    secure_dir: str | None = None
    #: node id (as text: JSON keys) -> pid of its JVM, for `gplx-bus local kill|hang|resume|restart`
    node_pids: dict[str, int] = field(default_factory=dict)

    def client_config(self, user: str = ADMIN_USER) -> Path:
        """The Kafka client properties file of a SCRAM user of a secured stack."""
        if self.secure_dir is None:
            raise LauncherError("this local stack is not secured (start it with `gplx-bus local up --secure`)")
        return SecureFiles(Path(self.secure_dir)).client_config(user)


class LocalCluster:
    """Start with `start()`, stop with `stop()`; also a context manager."""

    def __init__(
        self,
        nodes: int = 1,
        with_registry: bool = True,
        with_kafka: bool = True,
        data_dir: Path | None = None,
        broker_port: int | None = None,
        registry_port: int | None = None,
        version: str | None = None,
        tie_to_parent: bool = True,
        ready_timeout: float = 90.0,
        secure: bool = False,
        principals: Iterable[str] = (),
    ):
        """`secure`: SASL_SSL + SCRAM-SHA-512, TLS from a generated CA, StandardAuthorizer (see `security`).
        `principals` (secure only): users ("User:portal") given SCRAM credentials and a client config each."""
        if nodes not in (1, 3):
            raise LauncherError(f"a local cluster has 1 or 3 nodes, not {nodes}")
        self.node_count = nodes
        self.with_registry = with_registry
        self.with_kafka = with_kafka
        self.version = version or kafka_version()
        self.owns_data_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="gplx-kafka-"))
        self.fixed_broker_port = broker_port
        self.fixed_registry_port = registry_port
        self.tie_to_parent = tie_to_parent
        self.ready_timeout = ready_timeout
        self.marker = f"gplx-{uuid.uuid4().hex[:12]}"
        self.nodes: list[KafkaNode] = []
        self.hung: set[int] = set()  # nodes SIGSTOPped by hang_node
        self.registry: ManagedProcess | None = None
        self.endpoints: Endpoints | None = None
        self.secure = SecureFiles(self.data_dir / "secure") if secure else None
        self.principals = [user_name(p) for p in principals]

    def __enter__(self) -> Endpoints:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- start -------------------------------------------------------------------------------------------------
    def start(self) -> Endpoints:
        require_java()
        lib = jars.ensure_kafka_jars(self.version) if self.with_kafka else None
        registry_jar = self._registry_jar() if self.with_registry else None
        try:
            broker_seconds = self._start_kafka(lib) if lib else 0.0
            registry_url, registry_seconds = self._start_registry(registry_jar) if registry_jar else (None, 0.0)
        except BaseException:
            self.stop()
            raise
        self.endpoints = Endpoints(
            bootstrap_servers=",".join(node.bootstrap for node in self.nodes),
            schema_registry_url=registry_url,
            kafka_version=self.version,
            data_dir=str(self.data_dir),
            marker=self.marker,
            pids=self.pids(),
            broker_start_seconds=round(broker_seconds, 2),
            registry_start_seconds=round(registry_seconds, 2),
            security_protocol="SASL_SSL" if self.secure else "PLAINTEXT",
            secure_dir=str(self.secure.root) if self.secure else None,
            node_pids={str(n.spec.node_id): n.process.pid for n in self.nodes if n.process},
        )
        return self.endpoints

    def _start_kafka(self, lib: Path) -> float:
        if self.secure:
            self.secure.create()
        for attempt in range(_PORT_RETRIES):
            self.nodes = [self._node(i, lib) for i in range(1, self.node_count + 1)]
            voters = ",".join(node.spec.voter for node in self.nodes)
            cluster_id = _kafka_cluster_id()
            for node in self.nodes:
                node.format(cluster_id, voters, replication=min(3, self.node_count), secure=self.secure)
            started = time.monotonic()
            for node in self.nodes:
                node.start()
            try:
                wait_until_ready(self.nodes[0].bootstrap, self.node_count, self.ready_timeout,
                                 alive=lambda: all(n.alive() for n in self.nodes), client=self._admin_login())
                if self.secure:
                    self._create_users()
                return time.monotonic() - started
            except LauncherError as exc:
                reasons = [n.failure_reason() for n in self.nodes if not n.alive()]
                # said now: a data folder of our own goes (log included) with the failed start
                reason = reasons[0] if reasons else f"{exc}; {self.nodes[0].failure_reason()}"
                for node in self.nodes:
                    node.stop(5)
                port_clash = any("already in use" in r for r in reasons)
                if port_clash and self.fixed_broker_port is None and attempt + 1 < _PORT_RETRIES:
                    continue  # another process took a free port between our check and the bind: pick new ones
                log = f"; log: {self.nodes[0].spec.data_dir / 'broker.log'}" if not self.owns_data_dir else ""
                raise LauncherError(f"Kafka {self.version} did not start: {with_fix(reason)}{log}") from None
        raise AssertionError("unreachable")

    def _admin_login(self) -> dict:
        """The admin's login before its client config exists (written once the bootstrap address is known)."""
        return admin_login(self.secure)

    def _create_users(self) -> None:
        """Client configs for admin and every principal; SCRAM credentials for the principals (admin's came at
        format time). Passwords are random, kept 0600 in the run's folder, never printed."""
        from kafka import KafkaAdminClient

        bootstrap = ",".join(node.bootstrap for node in self.nodes)
        self.secure.save_password(ADMIN_USER, self.secure.password(ADMIN_USER), bootstrap)
        passwords = {user: new_password() for user in self.principals if user != ADMIN_USER}
        admin = new_client(KafkaAdminClient, bootstrap_servers=bootstrap, client_id="gplx-launcher",
                           **self._admin_login())
        try:
            upsert_scram_users(admin, passwords)
            wait_scram_users(admin, list(passwords))
        finally:
            admin.close()
        for user, password in passwords.items():
            self.secure.save_password(user, password, bootstrap)

    def _node(self, node_id: int, lib: Path) -> KafkaNode:
        if self.fixed_broker_port is not None:
            broker_port = require_free(self.fixed_broker_port + node_id - 1, "Kafka broker", "--kafka-port")
        else:
            broker_port = free_port()
        spec = NodeSpec(node_id, broker_port, free_port(), self.data_dir / f"node-{node_id}")
        return KafkaNode(spec, lib, self.version, self.marker, self.tie_to_parent)

    def _registry_jar(self) -> Path:
        from deploy.local import registry

        return registry.ensure_registry_built(jars.gplx_home() / "jars")

    def _start_registry(self, jar: Path) -> tuple[str, float]:
        from deploy.local import registry

        port = (require_free(self.fixed_registry_port, "schema registry", "--registry-port")
                if self.fixed_registry_port else free_port())
        cmd, env = registry.registry_command(jar, port, self.data_dir / "registry")
        cmd = [cmd[0], f"-Dgplx.run={self.marker}", *cmd[1:]]
        self.registry = ManagedProcess("registry", cmd, self.data_dir / "registry.log", env,
                                       tie_to_parent=self.tie_to_parent).start()
        started = time.monotonic()
        base = f"http://127.0.0.1:{port}"
        _wait_http_ok(base + registry.REGISTRY_HEALTH_PATH, self.ready_timeout, self.registry)
        return base + registry.CCOMPAT_PATH, time.monotonic() - started

    # -- broker outage (for fault tests) ---------------------------------------------------------------------------
    def stop_brokers(self, timeout: float = 20.0) -> None:
        """Stop the Kafka nodes but keep their data and ports, so `start_brokers` brings the same cluster back."""
        with ThreadPoolExecutor(max(1, len(self.nodes))) as pool:
            list(pool.map(lambda node: node.stop(timeout), self.nodes))

    def start_brokers(self) -> float:
        """Start the stopped nodes again on the same ports and data; returns seconds until they answer."""
        for node in self.nodes:
            node.start()
        return wait_until_ready(self.nodes[0].bootstrap, self.node_count, self.ready_timeout,
                                alive=lambda: all(n.alive() for n in self.nodes), client=self._admin_login())

    # -- one node at a time (fault tests, `gplx-bus local kill|hang|resume|restart`) ---------------------------------
    def node(self, node_id: int) -> KafkaNode:
        """The node with this id (1..nodes)."""
        for node in self.nodes:
            if node.spec.node_id == node_id:
                return node
        raise LauncherError(f"there is no node {node_id}: this cluster has nodes "
                            f"{', '.join(str(n.spec.node_id) for n in self.nodes) or 'none (not started)'}")

    def kill_node(self, node_id: int) -> None:
        """SIGKILL one node (a crashed machine: no controlled shutdown); its data and ports stay for a restart."""
        self.node(node_id).signal(signal.SIGKILL)

    def hang_node(self, node_id: int) -> None:
        """SIGSTOP one node: alive to the kernel, silent to the cluster (a GC pause, a frozen VM)."""
        self.node(node_id).signal(signal.SIGSTOP)
        self.hung.add(node_id)

    def resume_node(self, node_id: int) -> None:
        """SIGCONT a node hung by `hang_node`."""
        self.node(node_id).signal(signal.SIGCONT)
        self.hung.discard(node_id)

    def restart_node(self, node_id: int, timeout: float = 20.0) -> float:
        """Stop the node (gracefully, SIGKILL after `timeout`; nothing to do if it is dead) and start it again on
        the same ports and data; returns the seconds until the cluster lists it again."""
        node = self.node(node_id)
        node.stop(timeout)
        self.hung.discard(node_id)  # stop_pid sends SIGCONT with its SIGKILL
        return self.start_node(node_id)

    def start_node(self, node_id: int) -> float:
        """Start a stopped or killed node again; returns the seconds until the cluster lists all nodes."""
        node = self.node(node_id)
        if node.alive():
            raise LauncherError(f"node {node_id} is running (pid {node.process.pid}); restart_node stops it first")
        node.start()
        return wait_until_ready(node.bootstrap, self.node_count, self.ready_timeout, alive=node.alive,
                                client=self._admin_login())

    def kill_registry(self) -> None:
        """SIGKILL the schema registry (an outage); `start_registry` brings it back on the same port and data."""
        self.registry.popen.send_signal(signal.SIGKILL)
        self.registry.popen.wait()

    def start_registry(self) -> float:
        """Start a killed registry again (same command, port and H2 data); returns seconds until it answers."""
        from deploy.local import registry

        if self.registry.alive():
            return 0.0
        self.registry = replace(self.registry, popen=None)  # same command, port, data and log
        started = time.monotonic()
        self.registry.start()
        base = self.endpoints.schema_registry_url.split(registry.CCOMPAT_PATH)[0]
        _wait_http_ok(base + registry.REGISTRY_HEALTH_PATH, self.ready_timeout, self.registry)
        return time.monotonic() - started

    def controller(self) -> int:
        """The id of the active KRaft controller (the quorum's leader), from the live nodes' own record of it."""
        return active_controller([n.spec.data_dir for n in self.nodes if n.alive()])

    def leader(self, topic: str, partition: int) -> int:
        """The id of the broker leading `topic`'s `partition` now (-1 while none is elected). Asks the running nodes
        that are not hung: kafka-python's bootstrap waits for ever on a SIGSTOPped node (it accepts the connection
        and never answers; bootstrap_timeout_ms does not bound that wait)."""
        answering = [n.bootstrap for n in self.nodes if n.alive() and n.spec.node_id not in self.hung]
        return partition_leader(",".join(answering), topic, partition, self._admin_login())

    # -- stop and inspect --------------------------------------------------------------------------------------
    def pids(self) -> list[int]:
        procs = [n.process for n in self.nodes if n.process] + ([self.registry] if self.registry else [])
        return [p.pid for p in procs if p.alive()]

    def stop(self, timeout: float = 20.0) -> dict[str, str]:
        """Stop everything (registry first: it is a client of nothing, but the broker outlives its users)."""
        outcome = {}
        if self.registry:
            outcome["registry"] = self.registry.stop(timeout)
        # All nodes at once: a quorum stopped one by one leaves the last node without a controller majority, and
        # its controlled shutdown then hangs until SIGKILL.
        with ThreadPoolExecutor(max(1, len(self.nodes))) as pool:
            stopped = pool.map(lambda node: node.stop(timeout), self.nodes)
            outcome.update({f"kafka-{node.spec.node_id}": o for node, o in zip(self.nodes, stopped)})
        if self.owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        return outcome


def admin_login(secure: SecureFiles | None) -> dict:
    """kafka-python settings of the admin's SASL_SSL login on a secured stack ({} on a plain one)."""
    if secure is None:
        return {}
    return {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "ssl_cafile": str(secure.ca),
            "sasl_plain_username": ADMIN_USER, "sasl_plain_password": secure.password(ADMIN_USER)}


def active_controller(node_dirs: Iterable[Path]) -> int:
    """The active controller's id: the leader of the highest epoch in the nodes' `quorum-state` files (each
    KRaft voter writes the leader it knows there on every election). A node that is killed or hung keeps an old
    epoch, so the highest epoch among the live nodes wins."""
    best: tuple[int, int] | None = None
    for folder in node_dirs:
        path = Path(folder) / "logs" / "__cluster_metadata-0" / "quorum-state"
        try:
            state = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            continue  # not written yet, or being rewritten: the other nodes say it too
        epoch, leader = int(state.get("leaderEpoch", -1)), int(state.get("leaderId", -1))
        if leader >= 0 and (best is None or epoch > best[0]):
            best = (epoch, leader)
    if best is None:
        raise LauncherError("no node knows an active controller yet (no quorum elected); wait and ask again")
    return best[1]


def partition_leader(bootstrap: str, topic: str, partition: int, client: dict | None = None) -> int:
    """The broker id leading one partition (-1 while none is elected), from a metadata request."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = new_client(KafkaAdminClient, bootstrap_servers=bootstrap, client_id="gplx-launcher",
                           request_timeout_ms=5000, bootstrap_timeout_ms=5000, **(client or {}))
    except (KafkaError, OSError) as exc:
        raise LauncherError(f"no broker answered at {bootstrap} ({type(exc).__name__}): is the cluster up?") from None
    try:
        described = admin.describe_topics([topic])
    finally:
        admin.close()
    for t in described:
        if t.get("error_code", 0):
            raise LauncherError(f"topic {topic!r} is unknown to the cluster (error {t['error_code']}): "
                                "check the name (`gplx-bus topics list`)")
        for p in t["partitions"]:
            if p.get("partition_index", p.get("partition")) == partition:
                return int(p.get("leader_id", p.get("leader", -1)))
    raise LauncherError(f"topic {topic!r} has no partition {partition}")


def _kafka_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (what `kafka-storage random-uuid` gives).

    One that starts with '-' is drawn again: StorageTool's argument parser would take it for an option.
    """
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _wait_http_ok(url: str, timeout: float, process: ManagedProcess) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            tail = process.log_tail(5).replace("\n", " | ")
            raise LauncherError(f"schema registry exited during start-up: {tail[-300:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)  # pacing between polls
    raise LauncherError(f"schema registry did not become ready at {url} within {timeout:.0f}s; log: {process.log_path}")


# -- state of `gplx-bus local up` (a detached stack that outlives the command) --------------------------------
def state_file(home: Path) -> Path:
    return home / "run" / "local" / "state.json"


def save_state(home: Path, endpoints: Endpoints) -> None:
    path = state_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(endpoints), indent=2))


def load_state(home: Path) -> Endpoints | None:
    path = state_file(home)
    if not path.exists():
        return None
    return Endpoints(**json.loads(path.read_text()))


def running_pids(endpoints: Endpoints) -> list[int]:
    """The stack's pids still alive and still ours (a recycled pid does not carry our marker)."""
    return [pid for pid in endpoints.pids if pid_alive(pid) and endpoints.marker in cmdline(pid)]


@contextmanager
def only_stack_of(home: Path, kafka_port: int, registry_port: int | None):
    """Held while `gplx-bus local up` starts a stack from `home`: one stack per GPLX_HOME, since they share its
    data folder (a second one would format the first one's KRaft storage, and delete it on failure). A second
    `up`, while the first starts or once it runs, is refused in one line and touches nothing."""
    fix = "`gplx-bus local down` first, or use another GPLX_HOME"
    lock_path = home / "run" / "local" / "up.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by the kernel however this process ends
        except BlockingIOError:
            lock.seek(0)
            raise LauncherError(f"a stack from this GPLX_HOME ({home}) is already starting "
                                f"({lock.read().strip() or 'pid unknown'}); wait for it, or {fix}") from None
        running = load_state(home)
        if running and running_pids(running):
            registry = f", registry at {running.schema_registry_url}" if running.schema_registry_url else ""
            raise LauncherError(f"a stack from this GPLX_HOME ({home}) is already running: pids "
                                f"{running_pids(running)}, Kafka at {running.bootstrap_servers}{registry}; {fix}")
        lock.truncate(0)
        lock.write(f"pid {os.getpid()}, Kafka port {kafka_port}"
                   + (f", registry port {registry_port}" if registry_port else ""))
        lock.flush()
        try:
            yield
        finally:
            lock.truncate(0)


def stop_detached(home: Path, timeout: float = 20.0) -> list[str]:
    """Stop the stack recorded in the state file; only pids still carrying our marker are signalled."""
    endpoints = load_state(home)
    if endpoints is None:
        return []
    stopped = [f"{pid}: {stop_pid(pid, timeout)}" for pid in running_pids(endpoints)]
    state_file(home).unlink()
    shutil.rmtree(endpoints.data_dir, ignore_errors=True)
    return stopped



# -- one node of the detached stack (`gplx-bus local kill|hang|resume|restart|controller|leader`) ------------------
class DetachedNodes:
    """The nodes of the stack `gplx-bus local up` left running, driven from a later command."""

    def __init__(self, home: Path):
        self.home = home
        endpoints = load_state(home)
        if endpoints is None or not running_pids(endpoints):
            raise LauncherError("no local stack is running from this GPLX_HOME: start one with "
                                "`gplx-bus local up --nodes 3`")
        self.endpoints = endpoints

    def _pid(self, node_id: int) -> int:
        pid = self.endpoints.node_pids.get(str(node_id))
        if pid is None:
            raise LauncherError(f"there is no node {node_id}: the stack has nodes "
                                f"{', '.join(sorted(self.endpoints.node_pids)) or 'none'}")
        return pid

    def _alive(self, node_id: int) -> bool:
        pid = self._pid(node_id)
        return pid_alive(pid) and self.endpoints.marker in cmdline(pid)

    def signal(self, node_id: int, sig: int) -> int:
        """Send `sig` to a running node's JVM; returns its pid."""
        if not self._alive(node_id):
            raise LauncherError(f"node {node_id} is not running: `gplx-bus local restart {node_id}` starts it")
        pid = self._pid(node_id)
        os.kill(pid, sig)
        if sig == signal.SIGKILL:
            deadline = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)  # polling until the kernel reaped it
        return pid

    def restart(self, node_id: int, timeout: float = 20.0, ready_timeout: float = 90.0) -> float:
        """Stop the node if it runs (SIGTERM, then SIGKILL), start it on the same ports and data, wait until the
        cluster lists every node; the new pid goes into the state file."""
        if self._alive(node_id):
            stop_pid(self._pid(node_id), timeout)
        node = self._node(node_id)
        node.start()
        self.endpoints.node_pids[str(node_id)] = node.process.pid
        self.endpoints.pids = [pid for pid in self.endpoints.pids if pid_alive(pid)] + [node.process.pid]
        save_state(self.home, self.endpoints)
        login = admin_login(SecureFiles(Path(self.endpoints.secure_dir)) if self.endpoints.secure_dir else None)
        return wait_until_ready(node.bootstrap, len(self.endpoints.node_pids), ready_timeout, alive=node.alive,
                                client=login)

    def _node(self, node_id: int) -> KafkaNode:
        folder = Path(self.endpoints.data_dir) / f"node-{node_id}"
        props = dict(line.split("=", 1) for line in (folder / "server.properties").read_text().splitlines()
                     if "=" in line and not line.startswith("#"))
        broker_port = int(props["advertised.listeners"].rsplit(":", 1)[1])
        controller_port = int(props["controller.quorum.voters"].split(f"{node_id}@127.0.0.1:", 1)[1].split(",")[0])
        spec = NodeSpec(node_id, broker_port, controller_port, folder)
        return KafkaNode(spec, jars.ensure_kafka_jars(self.endpoints.kafka_version), self.endpoints.kafka_version,
                         self.endpoints.marker, tie_to_parent=False)

    def controller(self) -> int:
        live = [Path(self.endpoints.data_dir) / f"node-{n}" for n in self.endpoints.node_pids if self._alive(int(n))]
        return active_controller(live)

    def leader(self, topic: str, partition: int) -> int:
        login = admin_login(SecureFiles(Path(self.endpoints.secure_dir)) if self.endpoints.secure_dir else None)
        return partition_leader(self.endpoints.bootstrap_servers, topic, partition, login)
