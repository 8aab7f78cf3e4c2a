"""Environment of the bus benchmark: the broker (started here or taken from the environment), the machine, private
topics under a unique prefix, the workload (simulator plans with answers) and a fast bulk loader.

Nothing here measures; it prepares what `bench_bus` measures, the same way for every section.
"""
from __future__ import annotations

import datetime as dt
import os
import platform
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from topology.connection import Connection, environment

PROVINCES = ("01", "79")  # the simulator's provinces; only their cases.province.<code> topics are created
SEED = 20250901  # fixed: the same citizens, ids and events on every run
START = dt.datetime(2025, 9, 1, 10, 0, tzinfo=dt.timezone.utc)  # a Monday: no deadline passes during the bench
INPUT_PARTITIONS = 12
DECISIONS = ("vn.gplx.cases.CaseApproved", "vn.gplx.cases.CaseRejected", "vn.gplx.cases.CaseEscalated")


# ---- the bus -----------------------------------------------------------------------------------------------------
@dataclass
class Bus:
    bootstrap: str
    registry_url: str
    kafka_version: str
    mode: str  # "local" (started by the bench) or "external"
    lib: Path  # Kafka jars (for ProducerPerformance / ConsumerPerformance)
    _cluster: object = None
    connection: Connection | None = None  # how every client connects: bootstrap, registry, security settings

    def __post_init__(self) -> None:
        self.connection = (self.connection or Connection()).with_endpoints(self.bootstrap, self.registry_url)

    def broker_pids(self) -> list[int]:
        """Pids of the broker JVMs we started (empty for an external cluster)."""
        if self._cluster is None:
            return []
        return [n.process.pid for n in self._cluster.nodes if n.process and n.process.alive()]

    def stop(self) -> None:
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None


def open_bus(bootstrap: str | None = None, registry_url: str | None = None,
             connection: Connection | None = None) -> Bus:
    """The cluster in the arguments or in KAFKA_BOOTSTRAP_SERVERS (and SCHEMA_REGISTRY_URL), else a local one;
    `connection` (security settings) applies to a cluster given, not to one started here."""
    from deploy.local.cluster import LocalCluster
    from deploy.local.jars import ensure_kafka_jars
    from deploy.local.settings import kafka_version

    bootstrap = bootstrap or environment().get("KAFKA_BOOTSTRAP_SERVERS")
    registry_url = registry_url or environment().get("SCHEMA_REGISTRY_URL")
    lib = ensure_kafka_jars()
    if bootstrap and registry_url:
        return Bus(bootstrap, registry_url, f"external (tools {kafka_version()})", "external", lib,
                   connection=connection)
    for attempt in range(3):
        cluster = LocalCluster(with_registry=not registry_url, with_kafka=not bootstrap)
        try:
            endpoints = cluster.start()
            break
        except Exception as exc:  # noqa: BLE001
            # deploy/local/cluster.py's random cluster id starts with '-' 1 time in 32 and kafka-storage then
            # rejects `--cluster-id -xyz`; a new id is the workaround until the launcher is fixed.
            if "--cluster-id" not in str(exc) or attempt == 2:
                raise
    return Bus(bootstrap or endpoints.bootstrap_servers, registry_url or endpoints.schema_registry_url,
               kafka_version() if not bootstrap else f"external (tools {kafka_version()})",
               "local" if not bootstrap else "external", lib, cluster, connection if bootstrap else None)


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() else ""
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    mem_kb = 0
    if Path("/proc/meminfo").exists():
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {"cores": os.cpu_count(), "cpu_model": models[0] if models else platform.processor(),
            "memory_gb": round(mem_kb / 1024 / 1024, 1), "python": platform.python_version(),
            "platform": platform.platform(), "load_average_at_start": list(os.getloadavg())}


def versions() -> dict:
    from importlib.metadata import version

    out = {}
    for name in ("kafka-python", "aiokafka", "confluent-kafka", "faust-streaming", "fastavro", "rocksdict"):
        try:
            out[name] = version(name)
        except Exception:  # noqa: BLE001 - absent package: say so
            out[name] = None
    try:
        import lz4.frame  # noqa: F401
        out["lz4"] = True
    except ImportError:
        out["lz4"] = False
    return out


# ---- topics ------------------------------------------------------------------------------------------------------
def unique_prefix(tag: str) -> str:
    return f"bench{uuid.uuid4().hex[:6]}.{tag}."


def catalogue_for(prefix: str):
    from topology.catalogue import Catalogue

    provinces = [p for p in Catalogue.build(replication_factor=1).provinces if p.code in PROVINCES]
    return Catalogue.build(prefix=prefix, replication_factor=1, input_partitions=INPUT_PARTITIONS,
                           provinces=provinces)


def create_catalogue(bus: Bus, prefix: str):
    from producers.testing import create_topics
    from schemas.registry import RegistryClient
    from topology import contracts

    catalogue = catalogue_for(prefix)
    create_topics(bus.connection, catalogue)
    with RegistryClient(bus.registry_url) as registry:
        contracts.register(registry, catalogue)  # as the operator: the clients only look them up
    return catalogue


def create_plain_topics(bus: Bus, names: list[str], partitions: int = INPUT_PARTITIONS) -> None:
    from kafka.admin import NewTopic

    from topology import apply

    admin = apply.connect(bus.connection)
    try:
        admin.create_topics([NewTopic(n, partitions, 1) for n in names])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            described = admin.describe_topics(names)
            if all(t.get("error_code", 0) == 0 and len(t.get("partitions") or ()) == partitions for t in described):
                return
            time.sleep(0.2)  # pacing: metadata propagation
    finally:
        admin.close()


def delete_topics(bus: Bus, prefix: str) -> None:
    """Best effort: drop this run's topics (on an external cluster they would otherwise pile up)."""
    from topology import apply

    try:
        admin = apply.connect(bus.connection)
    except Exception:  # noqa: BLE001
        return
    try:
        names = [n for n in admin.list_topics() if n.startswith(prefix)]
        if names:
            admin.delete_topics(names)
    except Exception:  # noqa: BLE001 - cleanup only
        pass
    finally:
        admin.close()


# ---- workload ----------------------------------------------------------------------------------------------------
@dataclass
class Record:
    base: str        # catalogue base name of the topic
    key: bytes
    value: bytes
    event_type: str  # short Avro name
    case: str        # application id the record belongs to ("" for none)


@dataclass
class Workload:
    records: list[Record]
    cases: int
    decisions_expected: int
    by_type: dict = field(default_factory=dict)
    events: list = field(default_factory=list)  # (base, event model) for the SDK section

    @property
    def mean_value_size(self) -> int:
        return round(sum(len(r.value) for r in self.records) / max(1, len(self.records)))


def workload(registry, catalogue, cases: int, *, seed: int = SEED, payments: bool = True,
             keep_events: bool = False, workdir: Path | None = None, start: dt.datetime = START) -> Workload:
    """The simulator's events for `cases` applications plus the identity and police answers the adapters would give.

    Answers: the processor's identity/police requests are computed offline with the pure `assembler.handle` on
    each application, and answered with the adapters' own pure `identity.answer` / `police.answer` over the
    simulator's databases: the exact records the AdapterSet would publish, without a round-trip at run time.
    With `payments=False` no payment is published, so every case stays open (PAYMENT_MISSING), until the
    processor's timer finds its deadline passed on the wall clock: with the default `start` (2025) at once, so a
    run that keeps cases open with a short GPLX_TICK_SECONDS passes `start` = now (every event is before `start`).
    Failure modes that leave a case AWAITING are set to 0 when payments are on, so every case is decided.
    """
    from collections import Counter

    from producers import simulator
    from producers.adapters import identity, police
    from producers.adapters.localdb import JsonLinesDatabase
    from producers.sdk import routes
    from schemas.serde import AvroSerializer, SerializationContext
    from topology import catalogue as topics
    from topology.processor import assembler
    from topology.rules import load_rule_set

    waits = [mode for mode, (outcome, _, _) in simulator.EXPECTED.items() if mode and outcome == "AWAITING"]
    rates = simulator.parse_failure_rates(",".join(f"{mode}=0" for mode in waits))
    plan = simulator.make_plan(PROVINCES, cases, seed, start=start, failure_rates=rates)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="gplx-bench-db-"))
    paths = simulator.write_databases(plan, workdir)
    id_db, police_db = JsonLinesDatabase(paths["identity"]), JsonLinesDatabase(paths["police"])
    rules = load_rule_set()
    scheduled: list[tuple[dt.datetime, str, object, str]] = []
    app_of_tx = {tx.transaction_id: tx.application_id for tx in plan.payments}
    app_of_cccd: dict[str, str] = {}
    for item in plan.events:
        event = item.event
        name = type(event).__name__
        if name == "PaymentTransaction":
            if not payments:
                continue
            scheduled.append((item.at, topics.PAYMENT_TRANSACTIONS, event, app_of_tx[event.transaction_id]))
            continue
        if name == "ApplicationSubmitted":
            app_of_cccd[event.cccd] = event.application_id
            step = assembler.handle(None, event, topics.PORTAL_APPLICATIONS, 0, rules)
            answered = min(item.at + dt.timedelta(seconds=30), plan.start)
            for out in step.outputs:
                if out.kind == "identity-request":
                    scheduled.append((answered, topics.IDENTITY_RESULTS,
                                      identity.answer(out.event, id_db, now=answered), event.application_id))
                elif out.kind == "licence-request":
                    scheduled.append((answered, topics.POLICE_LICENCE_STATUS,
                                      police.answer(out.event, police_db, now=answered), event.application_id))
        scheduled.append((item.at, None, event, ""))
    route = routes(catalogue)
    serialize = AvroSerializer(registry)
    records, events, counts = [], [], Counter()
    scheduled.sort(key=lambda s: (s[0], s[2].event_id))
    for _, base, event, app in scheduled:
        topic = catalogue.name(base) if base else route[event.avro_name]
        base = base or topic[len(catalogue.prefix):]
        short = type(event).__name__
        app = app or getattr(event, "application_id", "") or app_of_cccd.get(event.cccd, "")
        records.append(Record(base, event.cccd.encode(), serialize(event, SerializationContext(topic)), short, app))
        counts[short] += 1
        if keep_events:
            events.append((base, event))
    return Workload(records, cases, cases if payments else 0, dict(counts), events)


# ---- a fast loader (confluent-kafka, Java-compatible partitioner so co-partitioning matches the SDK's) ----------
def confluent_producer(bus: Bus, **extra):
    from confluent_kafka import Producer

    config = {**bus.connection.confluent_config(), "acks": "all", "enable.idempotence": True, "linger.ms": 10,
              "batch.size": 64 * 1024, "partitioner": "murmur2_random", "queue.buffering.max.messages": 1_000_000}
    config.update(extra)
    return Producer(config)


def produce_all(producer, topic: str, records: list[Record], flush_timeout: float = 60) -> None:
    """confluent-kafka: produce every record, waiting for queue room when the local buffer is full, then flush."""
    for r in records:
        while True:
            try:
                producer.produce(topic, key=r.key, value=r.value)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(flush_timeout)


def bulk_load(bus: Bus, catalogue, records: list[Record], on_delivered=None) -> float:
    """Publish records as fast as the broker takes them; returns seconds. `on_delivered(record, ts_ms)`."""
    producer = confluent_producer(bus)
    errors: list = []
    started = time.perf_counter()
    for r in records:
        def done(err, msg, r=r):
            if err is not None:
                errors.append(err)
            elif on_delivered:
                on_delivered(r, msg.timestamp()[1])
        while True:
            try:
                producer.produce(catalogue.name(r.base), key=r.key, value=r.value, on_delivery=done)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    left = producer.flush(60)
    if errors or left:
        raise RuntimeError(f"bulk load: {len(errors)} errors ({errors[:1]}), {left} not delivered")
    return time.perf_counter() - started
