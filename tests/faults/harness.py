"""The fault harness: a seeded simulated day through the whole pipeline on the three-node cluster, a fault injected
while it runs, and the figures that say whether anything was lost, done twice, and how fast it recovered.

The pipeline is the demo's (gplx_bus/commands/demo.py): the same adapters, stand-in portal, issuance sink, topic
reader, watch, clock and funnel report; only the case processor workers are started here, because a scenario
kills them one by one (several workers, each its own subprocess and data folder).

A run: topics under a fresh prefix at RF 3 / min ISR 2 -> workers, adapters, portal, sink -> the day published at a
steady rate by the SDK -> once a third of it is acknowledged, the scenario's fault -> settled (lag 0, nothing in
flight) -> the clock past the deadline -> every decision and delivery -> figures. A `Monitor` (two threads) samples the
processor's lag (consumers/lag) and the decisions written, four times a second, to time the recovery.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from deploy.local.cluster import LocalCluster
from deploy.local.process import ManagedProcess
from topology import catalogue as topics
from topology.catalogue import Catalogue
from topology.connection import Connection
from tests.processor_harness import wait_for  # noqa: F401 - the scenarios poll with it too

INPUT_PARTITIONS = 6
#: The simulated day's start, one for the whole test session: the same seed then gives the same events, times
#: included, in every run of it. Not a fixed date: the adapters stamp their answers with the wall clock, and a day
#: far in the past would see every answer arrive after its case's deadline.
START = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
#: Fields of a decision not compared with the fault-free run: occurred_at is the case's clock, the latest input's
#: time, and the adapters' answers carry the wall-clock time they were given.
NOT_COMPARED = ("occurred_at",)
PROVINCES = ("01", "79")
DECISIONS = ("CaseApproved", "CaseRejected", "CaseEscalated")
#: Output topics whose records carry a deterministic event id (outputs.output_id): one id, one content.
OUTPUTS = (topics.CASES_EVENTS, topics.ISSUANCE_REQUESTS, topics.PAYMENT_REFUND_REQUESTS,
           topics.IDENTITY_REQUESTS, topics.POLICE_REQUESTS)
#: Faust's session timeout is 60 s by default: a SIGKILLed worker's partitions wait that long for a new owner.
#: The harness uses 10 s (faust reads BROKER_SESSION_TIMEOUT from the environment); recovery scales with it.
SESSION_TIMEOUT_S = 10
#: Client errors that mean a producer lost its idempotent state in a leader move (must never appear).
PRODUCER_STATE_ERRORS = ("OutOfOrderSequence", "ProducerFenced", "InvalidProducerEpoch", "UnknownProducerId")


@dataclass
class Figures:
    """What one run showed (printed in the test output and collected for the README's table)."""

    scenario: str
    cases: int
    seed: int
    inputs_acknowledged: int = 0
    inputs_on_topics: int = 0          # sum of the input topics' end offsets
    inputs_committed: int = 0          # sum of the processor group's committed offsets on them
    dlq: int = 0
    decided: int = 0
    compared: int = 0                  # cases compared with the fault-free run
    identical: int = 0
    differences: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # reconciliation with the simulator's plan
    approvals: int = 0
    portal_distinct: int = 0
    portal_received: int = 0
    paid_rejections: int = 0
    refunds: int = 0
    conflicting_ids: int = 0           # an id with two different contents on an output topic
    output_records: int = 0
    redelivered: int = 0               # output records repeated (same id, same content): at-least-once cost
    fault: str = ""
    fault_at_s: float | None = None    # seconds after the day started publishing
    lag0_after_fault_s: float | None = None
    first_decision_after_fault_s: float | None = None
    publish_ended_after_fault_s: float | None = None
    total_s: float = 0.0
    client_errors: list[str] = field(default_factory=list)
    worker_exits: list[str] = field(default_factory=list)  # workers that exited on their own (and were restarted)
    exporter_up_at_end: bool | None = None      # the lag exporter reports (up=1) after the fault
    exporter_scrapes_failed: int = 0            # /metrics requests not answered during the run
    notes: list[str] = field(default_factory=list)

    @property
    def nothing_lost(self) -> bool:
        return (self.inputs_on_topics == self.inputs_acknowledged == self.inputs_committed
                and self.decided == self.cases and self.identical == self.compared == self.cases)

    @property
    def nothing_lost_vs_plan(self) -> bool:
        """Without a baseline (the soak): every input consumed, every case decided as the simulator planned."""
        return (self.inputs_on_topics == self.inputs_acknowledged == self.inputs_committed
                and self.decided == self.cases and not self.problems)

    @property
    def nothing_twice(self) -> bool:
        return (self.portal_distinct == self.approvals and self.refunds == self.paid_rejections
                and self.conflicting_ids == 0)

    def line(self) -> str:
        def s(x):
            return "-" if x is None else f"{x:.1f}"
        return (f"{self.scenario}: fault {self.fault or 'none'} at {s(self.fault_at_s)}s; inputs acked "
                f"{self.inputs_acknowledged}, on topics {self.inputs_on_topics}, committed {self.inputs_committed}, "
                f"DLQ {self.dlq}; decided {self.decided}/{self.cases}, identical to fault-free "
                f"{self.identical}/{self.compared}; portal {self.portal_distinct} distinct "
                f"({self.portal_received} requests) for {self.approvals} approvals; refunds {self.refunds} for "
                f"{self.paid_rejections} paid rejections; ids with 2 contents {self.conflicting_ids}; re-delivered "
                f"outputs {self.redelivered}/{self.output_records}; lag 0 {s(self.lag0_after_fault_s)}s and first "
                f"decision {s(self.first_decision_after_fault_s)}s after the fault (publishing ended "
                f"{s(self.publish_ended_after_fault_s)}s after it); worker exits {len(self.worker_exits)}; "
                f"run {self.total_s:.0f}s")


class Workers:
    """Case processor workers, each a `python -m topology.processor` subprocess with its own data folder.

    Supervised as a deployment would be (Kubernetes' restartPolicy: Always): a worker that exits on its own is
    started again at once, and why it exited (its log's last error line) is kept for the figures. A worker the
    scenario kills stays down until the scenario starts it."""

    def __init__(self, conn: Connection, registry_url: str, catalogue: Catalogue, workdir: Path, store: str):
        self.env = {**conn.to_env(), "SCHEMA_REGISTRY_URL": registry_url, "GPLX_TOPIC_PREFIX": catalogue.prefix,
                    "GPLX_STORE": store, "GPLX_TICK_SECONDS": "3600", "GPLX_INPUT_PARTITIONS": str(INPUT_PARTITIONS),
                    "GPLX_REPLICATION_FACTOR": str(catalogue.topic(topics.CASES_EVENTS).replication_factor),
                    "BROKER_SESSION_TIMEOUT": str(SESSION_TIMEOUT_S), "GPLX_LOG_LEVEL": "info"}
        self.workdir = workdir
        self.procs: dict[str, ManagedProcess] = {}
        self.starts: Counter = Counter()
        self.down_on_purpose: set[str] = set()
        self.exits: list[str] = []  # "w1: <last error line>" of every worker that exited on its own
        self._stop = threading.Event()
        # The supervisor and the scenario both start workers: without the lock, a scenario's start() (which
        # un-marks the worker before its new process exists) let the supervisor start a second copy of the same
        # worker, which nobody stopped (kill-both-workers left two processes behind, session 8).
        self._lock = threading.RLock()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True, name="fault-supervisor")
        self._supervisor.start()

    def _supervise(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                for name, proc in list(self.procs.items()):
                    if not proc.alive() and name not in self.down_on_purpose and not self._stop.is_set():
                        code = proc.popen.returncode if proc.popen else None  # -9: killed from outside
                        self.exits.append(f"{name} (exit status {code}): {last_error(proc.log_path)}")
                        self.start(name)

    def start(self, name: str) -> ManagedProcess:
        with self._lock:
            self.down_on_purpose.discard(name)
            self.starts[name] += 1
            proc = ManagedProcess(f"worker-{name}", [sys.executable, "-m", "topology.processor"],
                                  self.workdir / f"worker-{name}-{self.starts[name]}.log",
                                  {**self.env, "GPLX_DATADIR": str(self.datadir(name))}).start()
            self.procs[name] = proc
            return proc

    def datadir(self, name: str) -> Path:
        return self.workdir / f"worker-{name}"

    def kill(self, name: str) -> None:
        with self._lock:
            self.down_on_purpose.add(name)
            os.kill(self.procs[name].pid, signal.SIGKILL)
            self.procs[name].popen.wait()

    def dump_stacks(self) -> None:
        """Every live worker writes its threads' and tasks' stacks into its log (SIGUSR1, see the processor)."""
        for proc in self.procs.values():
            if proc.alive():
                os.kill(proc.pid, signal.SIGUSR1)

    def stop(self) -> None:
        self._stop.set()
        self._supervisor.join(5)
        with self._lock:
            for proc in self.procs.values():
                proc.stop(timeout=15)

    # what demo.Watch asks of "the worker": the deployment goes on while a worker runs or is being restarted
    def alive(self) -> bool:
        return any(p.alive() for p in self.procs.values()) or len(self.exits) < 10

    def log_tail(self, lines: int = 3) -> str:
        return " | ".join(p.log_tail(lines) for p in self.procs.values())

    def memory_kb(self) -> dict[str, int]:
        return {name: rss_kb(p.pid) for name, p in self.procs.items() if p.alive()}


# Why a worker stopped, most telling first: the processor's own decision to stop ("...; stopping the worker"), its
# one-line exit (__main__), then mode's first crash record (later ones are the shutdown's, often CancelledError).
# The last error line is often only the shutdown's trace (a session 10 CI run reported
# "asyncio.exceptions.CancelledError" for a worker exit, and nothing more).
_STOP_REASONS = ("stopping the worker", "case processor:", "Crashed reason=")


def last_error(log: Path) -> str:
    """The line of a worker's log that says why it stopped, else its last line naming an error (no personal data:
    the processor logs ids and codes). Each start of a worker has its own log, so an earlier run's reason is not
    reported again."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "no log"
    for marker in _STOP_REASONS:
        reasons = [line for line in lines if marker in line]
        if reasons:
            return reasons[0].strip()[:300]
    errors = [line for line in lines if "Error" in line or "ERROR" in line or "Exception" in line]
    return (errors[-1] if errors else lines[-1] if lines else "empty log").strip()[:300]


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


class Monitor:
    """Samples the processor group's lag (consumers/lag) and the decisions on cases.events, every 0.25 s, each in
    its own thread: a read of cases.events that waits on a partition without a leader must not leave the lag
    unsampled meanwhile (seen in CI: a 15 s gap that hid the return to lag 0)."""

    def __init__(self, conn: Connection, registry_url: str, catalogue: Catalogue):
        from consumers.lag import LagConfig, LagMonitor

        self.group = catalogue.prefix + topics.CASE_PROCESSOR_APP_ID
        self.inputs = {catalogue.name(b) for b in _inputs()}
        self.lag_monitor = LagMonitor(LagConfig(bootstrap_servers=conn.bootstrap, group_pattern="^" + self.group
                                                + "$", request_timeout_ms=3000))
        self.conn, self.registry_url, self.catalogue = conn, registry_url, catalogue
        self.lags: list[tuple[float, int | None]] = []  # (monotonic time, processor lag; None: no figure)
        self.decisions: list[tuple[float, int]] = []  # (monotonic time, decision records on cases.events)
        self.stop_event = threading.Event()
        self.lag_failures: Counter = Counter()  # why a lag sample had no figure (the lag thread's own)
        self.read_failures: Counter = Counter()  # why a read of cases.events failed (the decisions thread's own)
        self.stopped_at: float | None = None
        self._threads = [threading.Thread(target=self._sample_lag, daemon=True, name="fault-monitor-lag"),
                         threading.Thread(target=self._read_decisions, daemon=True, name="fault-monitor-decisions")]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _sample_lag(self) -> None:
        try:
            while not self.stop_event.is_set():
                lag = self._lag()
                self.lags.append((time.monotonic(), lag))  # the time the figure was known, as before the split
                self.stop_event.wait(0.25)
        finally:
            self.lag_monitor.close()

    def _read_decisions(self) -> None:
        from consumers.funnel import TopicReader
        from schemas.registry import RegistryClient

        with RegistryClient(self.registry_url) as registry, \
                TopicReader(self.conn, registry, [self.catalogue.name(topics.CASES_EVENTS)]) as reader:
            while not self.stop_event.is_set():
                try:
                    reader.catch_up(timeout_s=5)
                except Exception as exc:  # noqa: BLE001 - a broker away: read again
                    self.read_failures[type(exc).__name__] += 1
                decided = sum(type(e).__name__ in DECISIONS for es in reader.events.values() for e in es)
                self.decisions.append((time.monotonic(), decided))
                self.stop_event.wait(0.25)

    def _lag(self) -> int | None:
        try:
            report = self.lag_monitor.sample()
        except Exception as exc:  # noqa: BLE001 - a broker away: no figure this time
            self.lag_failures[type(exc).__name__] += 1
            return None
        parts = [p for g in report.groups if g.group == self.group for p in g.partitions if p.topic in self.inputs]
        if not parts:  # e.g. its coordinator moving: the group is in no broker's ListGroups answer for a while
            self.lag_failures["group not listed"] += 1
            return None
        return sum(p.lag_messages for p in parts)

    def lag0_after(self, t: float, not_before: float) -> float | None:
        """Seconds from `t` to the first sample at lag 0 taken after `not_before` (publishing done)."""
        for at, lag in self.lags:
            if at >= max(t, not_before) and lag == 0:
                return at - t
        return None

    def lag_story(self, t: float) -> str:
        """The lag samples after `t`, for a run whose lag never read 0: how many, how far apart, why some had no
        figure, and the last ones."""
        after = [(at, lag) for at, lag in self.lags if at >= t]
        times = [t, *(at for at, _ in after), self.stopped_at or time.monotonic()]  # the gaps at both ends count
        gaps = [b - a for a, b in zip(times, times[1:])]
        last = ", ".join(f"{at - t:.1f}s: {'-' if lag is None else lag}" for at, lag in after[-5:])
        return (f"lag samples after the fault: {len(after)}, {sum(lag is None for _, lag in after)} without a "
                f"figure, longest gap {max(gaps):.1f}s; failures {dict(self.lag_failures)}, reads failed "
                f"{dict(self.read_failures)}; last {last}")

    def first_decision_after(self, t: float) -> float | None:
        before = max((d for at, d in self.decisions if at <= t), default=0)
        for at, decided in self.decisions:
            if at > t and decided > before:
                return at - t
        return None

    def stop(self) -> None:
        self.stopped_at = self.stopped_at or time.monotonic()
        self.stop_event.set()
        for thread in self._threads:
            thread.join(15)


class ExporterWatch(threading.Thread):
    """The Prometheus lag exporter (`gplx-bus lag serve`) on the run's groups, scraped every second: it must keep
    answering through the fault and report a fresh successful sample (up=1) at the end."""

    def __init__(self, conn: Connection, catalogue: Catalogue):
        super().__init__(daemon=True, name="fault-exporter-scraper")
        from consumers.lag import LagConfig, LagMonitor
        from consumers.lag.exporter import LagExporter

        config = LagConfig(bootstrap_servers=conn.bootstrap, group_pattern="^" + catalogue.prefix.replace(".", r"\."),
                           request_timeout_ms=3000)
        self.exporter = LagExporter(config, port=0, addr="127.0.0.1", interval=1.0, monitor=LagMonitor(config))
        self.exporter.start()
        self.url = f"http://127.0.0.1:{self.exporter.port}/metrics"
        self.failed = 0
        self.stop_event = threading.Event()
        self.start()

    def run(self) -> None:
        import httpx

        while not self.stop_event.wait(1.0):
            try:
                httpx.get(self.url, timeout=2).raise_for_status()
            except httpx.HTTPError:
                self.failed += 1

    def finish(self, since: float, timeout_s: float = 30) -> tuple[bool, int]:
        """(up=1 with a successful sample after `since`, within `timeout_s`; scrapes not answered)."""
        import re

        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = httpx.get(self.url, timeout=2).text
            up = re.search(r"^gplx_lag_exporter_up (\S+)$", text, re.M)
            last = re.search(r"^gplx_lag_exporter_last_success_timestamp_seconds (\S+)$", text, re.M)
            if up and last and float(up.group(1)) == 1.0 and float(last.group(1)) > since:
                return True, self.failed
            time.sleep(0.5)  # pacing between scrapes
        return False, self.failed

    def stop(self) -> None:
        self.stop_event.set()
        self.join(5)
        self.exporter.stop()


def _inputs():
    from topology.processor.app import INPUTS

    return INPUTS


class Captured:
    """Log records of the in-process clients (SDK, adapters, sink) naming a lost producer state."""

    def __init__(self):
        import logging

        self.found: list[str] = []
        outer = self

        class Handler(logging.Handler):
            def emit(self, record):
                text = record.getMessage()
                if record.exc_info and record.exc_info[1] is not None:
                    text += f" {type(record.exc_info[1]).__name__}"
                if any(e in text for e in PRODUCER_STATE_ERRORS):
                    outer.found.append(f"{record.name}: {text[:200]}")

        self.handler = Handler(level=logging.WARNING)
        self.logging = logging

    def __enter__(self):
        self.logging.getLogger().addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        self.logging.getLogger().removeHandler(self.handler)


@dataclass
class Fault:
    """What a scenario does: `inject(run)` once a third of the day is acknowledged (returns a label), `heal(run)`
    once every decision is in (restart what was killed, so the next scenario finds three nodes)."""

    name: str
    inject: Callable[["Run"], str]
    heal: Callable[["Run"], None] = lambda run: None
    workers: int = 1
    store: str = "memory://"
    #: True: injected in a thread, the run goes on meanwhile (a fault that lasts, e.g. SIGSTOP for 30 s)
    background: bool = False
    #: share of the day acknowledged before the fault is injected
    at_fraction: float = 1 / 3


class Run:
    """One run of the day under one fault (or none); `figures` at the end."""

    def __init__(self, cluster: LocalCluster, registry_url: str, workdir: Path, cases: int, seed: int,
                 fault: Fault | None, rate: float, portal=None):
        from producers import simulator

        self.cluster, self.registry_url, self.fault = cluster, registry_url, fault
        self.conn = Connection(bootstrap=cluster.endpoints.bootstrap_servers, registry_url=registry_url)
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.plan = simulator.make_plan(",".join(PROVINCES), cases, seed, start=START)
        all_provinces = Catalogue.build(replication_factor=1).provinces
        self.catalogue = Catalogue.build(prefix=f"f{uuid.uuid4().hex[:6]}.", replication_factor=3,
                                         input_partitions=INPUT_PARTITIONS,
                                         provinces=[p for p in all_provinces if p.code in PROVINCES])
        self.rate = rate
        self.figures = Figures(fault.name if fault else "fault-free", cases, seed)
        self.workers: Workers | None = None
        self.monitor: Monitor | None = None  # set while the run goes (its samples: lag and decisions over time)
        self.portal = portal
        self.sink = None
        self.fault_at: float | None = None
        self.publishing_done = threading.Event()
        self.stopping = threading.Event()  # set when the run ends (also on failure): a lasting fault stops injecting

    # -- the run ---------------------------------------------------------------------------------------------------
    def go(self, timeout_s: float = 300) -> Figures:
        from gplx_bus.commands import demo
        from producers import simulator

        started = time.monotonic()
        deadline = started + timeout_s
        fault = self.fault
        with ExitStack() as stack, Captured() as captured:
            demo.create_topics(self.conn, self.catalogue)
            demo.register_schemas(self.conn, self.registry_url, self.catalogue)
            simulator.write_databases(self.plan, self.workdir)
            self.workers = Workers(self.conn, self.registry_url, self.catalogue, self.workdir,
                                   fault.store if fault else "memory://")
            stack.callback(self.workers.stop)
            for i in range(fault.workers if fault else 1):
                self.workers.start(f"w{i + 1}")
            adapter_set = stack.enter_context(demo.adapters(self.conn, self.registry_url, self.catalogue,
                                                            self.workdir))
            secret, tls = self.workdir / "portal.secret", demo.write_tls_files(self.workdir / "portal-tls")
            self.portal = stack.enter_context(demo.standin_portal(secret, tls))
            self.sink = stack.enter_context(demo.issuance_sink(self.conn, self.registry_url, self.catalogue,
                                                               self.portal.url, secret, tls["ca"]))
            reader = stack.enter_context(demo.topic_reader(self.conn, self.registry_url, self.catalogue))
            watch = demo.Watch(self.conn, self.catalogue, reader, self.portal, self.workers, self.plan)
            stack.callback(watch.close)
            monitor = self.monitor = Monitor(self.conn, self.registry_url, self.catalogue)
            monitor.start()
            stack.callback(monitor.stop)
            exporter = ExporterWatch(self.conn, self.catalogue)
            stack.callback(exporter.stop)

            third = threading.Event()
            published: dict = {}
            at = int(len(self.plan.events) * (fault.at_fraction if fault else 1 / 3))

            def publish():
                from producers.sdk import Publisher
                try:
                    with Publisher(self.conn, self.registry_url, catalogue=self.catalogue,
                                   client_id="gplx-faults-simulator", delivery_timeout_s=120) as publisher:
                        published["report"] = simulator.publish(
                            self.plan, publisher, rate=self.rate, check_every=50,
                            on_progress=lambda n: n >= at and third.set())
                except Exception as exc:  # noqa: BLE001 - reported as a finding
                    published["error"] = f"{type(exc).__name__}: {exc}"
                finally:
                    published["ended"] = time.monotonic()
                    self.publishing_done.set()
                    third.set()

            publish_started = time.monotonic()
            publisher = threading.Thread(target=publish, name="fault-publisher", daemon=True)
            publisher.start()
            third.wait(timeout_s)
            self.fault_at, self.fault_wall = time.monotonic(), time.time()
            injector = None
            if fault:
                if fault.background:
                    injector = threading.Thread(target=lambda: published.setdefault("fault", fault.inject(self)),
                                                daemon=True)
                    injector.start()
                    stack.callback(injector.join, timeout_s)  # a failed run still ends its fault first
                    stack.callback(self.stopping.set)  # (callbacks run last-in first: this, then the join)
                else:
                    published["fault"] = fault.inject(self)
            publisher.join(timeout_s)
            if "error" in published:
                self.figures.client_errors.append(f"simulator publishing: {published['error']}")
            settled = watch.until("processing", watch.settled, deadline)
            stuck = []
            if not settled:  # what is stuck: the groups behind, and where each worker waits (its log)
                stuck = [f"not settled; records unread by group: {watch.in_flight.lag_by_group}"]
                self.workers.dump_stacks()
            if injector:
                injector.join(timeout_s)
            ticks = 0
            if settled:
                ticks = demo.move_clock_past_deadline(self.conn, self.registry_url, self.catalogue,
                                                      watch.open_cases())
                watch.until("deciding", watch.finished, deadline)
            monitor.stop()
            f = self.figures
            f.exporter_up_at_end, f.exporter_scrapes_failed = exporter.finish(since=self.fault_wall)
            f.fault = published.get("fault", "")
            f.fault_at_s = self.fault_at - publish_started
            f.publish_ended_after_fault_s = published.get("ended", self.fault_at) - self.fault_at
            f.lag0_after_fault_s = monitor.lag0_after(self.fault_at, published.get("ended", self.fault_at))
            f.first_decision_after_fault_s = monitor.first_decision_after(self.fault_at)
            if f.lag0_after_fault_s is None:
                f.notes.append(monitor.lag_story(self.fault_at))
            report = published.get("report")
            answers = adapter_set.stats()
            # acknowledged inputs: the simulator's, the adapters' answers (identity, police), the clock ticks
            # (the payment adapter's refund results go to payment.transactions, an input too)
            f.inputs_acknowledged = ((report.total if report else 0) + ticks
                                     + sum(a.answers for a in answers.values()))
            funnel, problems = demo.report(watch, self.plan)
            f.problems = stuck + problems
            self._count(watch, funnel)
            if fault:
                fault.heal(self)
            f.client_errors += captured.found
            f.worker_exits = list(self.workers.exits)
            f.total_s = time.monotonic() - started
        return f

    # -- the figures -----------------------------------------------------------------------------------------------
    def _count(self, watch, funnel) -> None:
        from kafka import KafkaConsumer
        from kafka.structs import TopicPartition

        from topology import apply

        f = self.figures
        admin = apply.connect(self.conn)
        inputs = [self.catalogue.name(b) for b in _inputs()]
        group = self.catalogue.prefix + topics.CASE_PROCESSOR_APP_ID
        consumer = KafkaConsumer(bootstrap_servers=self.conn.bootstrap, group_id=None, enable_auto_commit=False)
        try:
            tps = [TopicPartition(t, p) for t in inputs for p in range(INPUT_PARTITIONS)]
            ends = consumer.end_offsets(tps)
            dlq_tps = [TopicPartition(self.catalogue.name(topics.DLQ), p)
                       for p in consumer.partitions_for_topic(self.catalogue.name(topics.DLQ)) or ()]
            f.dlq = sum(consumer.end_offsets(dlq_tps).values())
        finally:
            consumer.close()
        try:
            committed = admin.list_group_offsets([group]).get(group, {})
        finally:
            admin.close()
        f.inputs_on_topics = sum(ends.values())
        f.inputs_committed = sum(max(om.offset, 0) for tp, om in committed.items() if tp.topic in inputs)
        cases = funnel.cases.values()
        f.decided = sum(1 for c in cases if c.outcome)
        f.approvals = sum(1 for c in cases if c.outcome == "APPROVED")
        f.paid_rejections = sum(1 for e in self.plan.expected if e.refund_expected)  # money to give back
        f.refunds = sum(len(c.refund_ids) for c in cases)  # distinct refund ids requested
        f.portal_distinct = self.portal.distinct
        f.portal_received = self.portal.received
        self.decisions, f.output_records, f.redelivered, f.conflicting_ids = self._outputs()

    def _outputs(self) -> tuple[dict[str, dict], int, int, int]:
        """(application id -> its final decision's content, output records, repeats, ids with 2 contents)."""
        from consumers.funnel import TopicReader
        from schemas.registry import RegistryClient

        names = [self.catalogue.name(b) for b in OUTPUTS]
        contents: dict[tuple[str, str], set] = defaultdict(set)
        records = 0
        decisions, app_of_case = {}, {}
        with RegistryClient(self.registry_url) as registry, TopicReader(self.conn, registry, names) as reader:
            # A 90,000-case soak's outputs (~460,000 records) took more than 60 s to read under load (session 8:
            # the soak ended in ReadTimedOut after every case was decided); the deadline is for the whole read.
            reader.catch_up(timeout_s=1800)
            for topic, events in reader.events.items():
                for e in events:
                    records += 1
                    dump = e.model_dump(mode="json")
                    contents[(topic, dump["event_id"])].add(repr(sorted(dump.items())))
                    kind = type(e).__name__
                    if kind == "CaseOpened":
                        app_of_case[e.case_id] = e.application_id
                    elif kind in DECISIONS:
                        decisions[e.case_id] = {"kind": kind, **{k: v for k, v in dump.items()
                                                                 if k not in NOT_COMPARED}}
        by_app = {app_of_case.get(case, case): d for case, d in decisions.items()}
        repeats = records - len(contents)
        conflicting = sum(1 for c in contents.values() if len(c) > 1)
        return by_app, records, repeats, conflicting


def compare(run: Run, baseline: Run) -> None:
    """Every application's final decision against the fault-free run of the same seed."""
    f = run.figures
    apps = {e.application_id for e in run.plan.expected}
    f.compared = len(apps)
    f.identical = sum(1 for a in apps if a in run.decisions and run.decisions[a] == baseline.decisions.get(a))
    f.differences = [f"{a}: {run.decisions.get(a, {}).get('kind')} vs {baseline.decisions.get(a, {}).get('kind')}"
                     for a in sorted(apps) if run.decisions.get(a) != baseline.decisions.get(a)][:10]


# -- fault helpers ---------------------------------------------------------------------------------------------------
def busiest_leader(run: Run) -> tuple[int, str]:
    """The broker leading the most of the busiest input partitions (by records so far) and a label."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=run.conn.bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(run.catalogue.name(b), p) for b in _inputs() for p in range(INPUT_PARTITIONS)]
        ends = consumer.end_offsets(tps)
    finally:
        consumer.close()
    by_partition = Counter()
    for tp, end in ends.items():
        by_partition[tp.partition] += end
    busiest = [p for p, _ in by_partition.most_common(2)]
    leaders = Counter(run.cluster.leader(run.catalogue.name(topics.PORTAL_APPLICATIONS), p) for p in busiest)
    node = leaders.most_common(1)[0][0]
    return node, f"SIGKILL broker {node} (leader of busiest input partitions {busiest})"


def all_nodes_up(cluster: LocalCluster) -> None:
    """Start any node (or the registry) that is not running, resume any hung one: a scenario that failed half-way
    must not leave its fault to the next."""
    for node_id in list(cluster.hung):
        cluster.resume_node(node_id)
    for node in cluster.nodes:
        if not node.alive():
            cluster.start_node(node.spec.node_id)
    cluster.start_registry()


def wait_group_members(run: Run, members: int, timeout: float = 90) -> None:
    """Until the processor's consumer group has `members` members (every worker joined)."""
    from topology import apply

    group = run.catalogue.prefix + topics.CASE_PROCESSOR_APP_ID
    admin = apply.connect(run.conn)
    try:
        def joined():
            try:
                return len(admin.describe_groups([group]).get(group, {}).get("members", [])) >= members
            except Exception:  # noqa: BLE001 - coordinator moving: ask again
                return False
        wait_for(joined, timeout, f"{members} workers in the group")
    finally:
        admin.close()


#: Every run's figures, printed at the end of the session (tests/faults/conftest.py).
FIGURES: list[Figures] = []


def run_day(cluster: LocalCluster, workroot: Path, cases: int, seed: int, fault: Fault | None = None,
            rate: float = 60.0, timeout_s: float = 300) -> Run:
    """One run of the day under `fault` (or none); every node is started first."""
    all_nodes_up(cluster)
    name = fault.name if fault else "fault-free"
    run = Run(cluster, cluster.endpoints.schema_registry_url, workroot / name, cases, seed, fault, rate)
    FIGURES.append(run.figures)
    run.go(timeout_s)
    return run


def wait_rebalancing(run: Run, timeout: float = 60) -> None:
    """Until the processor's group is rebalancing (a member joined or left and the assignment is in flux)."""
    from topology import apply

    group = run.catalogue.prefix + topics.CASE_PROCESSOR_APP_ID
    admin = apply.connect(run.conn)
    try:
        def rebalancing():
            try:
                state = admin.describe_groups([group]).get(group, {}).get("group_state")
                return state in ("PreparingRebalance", "CompletingRebalance")
            except Exception:  # noqa: BLE001 - coordinator moving: ask again
                return False
        wait_for(rebalancing, timeout, "the group to rebalance", interval=0.05)
    finally:
        admin.close()


def wait_in_sync(run: Run, timeout: float = 120) -> None:
    """Until no partition of the cluster is under-replicated (every replica back in the ISR)."""
    from topology import apply

    admin = apply.connect(run.conn)
    try:
        def in_sync():
            try:
                described = admin.describe_topics()
            except Exception:  # noqa: BLE001 - a broker still starting: ask again
                return False
            return all(len(p["isr_nodes"]) == len(p["replica_nodes"]) for t in described for p in t["partitions"])
        wait_for(in_sync, timeout, "every replica back in sync")
    finally:
        admin.close()
