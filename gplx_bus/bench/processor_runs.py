"""The case processor under measurement: a real worker subprocess (`python -m topology.processor`, RocksDB store)
on private topics, watched from outside through its output topic cases.events and /proc/<pid>/status.

Sections:
- throughput: the inputs of N cases published ahead, then the worker started; timed from its first output record to
  its last decision (record CreateTimes, so start-up and group join are excluded) and also wall-clock from spawn;
- throughput with two workers: the same on two worker processes in one group (published once the group is stable);
- latency: on the same, warmed-up worker, cases published at a steady rate (all facts of a case together); per
  case, CreateTime of its decision minus CreateTime of its last input;
- memory: a separate worker fed M cases that stay open (no payment); VmHWM before/after and du of GPLX_DATADIR.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gplx_bus.bench import bus_env, same_work
from topology.kafka_python import new_client



class Worker:
    """One case-processor worker subprocess; always stop() it (the bench does, in finally)."""

    def __init__(self, bus: bus_env.Bus, prefix: str, workdir: Path, name: str, overrides: dict | None = None,
                 env: dict | None = None, memray: Path | None = None):
        self.bus, self.prefix, self.name = bus, prefix, name
        self.env = env or {}  # processor settings on top of the bench's (settings.py)
        self.memray = memray  # record the worker's allocations, native stacks included, into this file
        self.overrides = overrides or {}  # faust settings on top of the processor's (gplx_bus.bench.worker_variant)
        self.datadir = workdir / f"{prefix}{name}-data"  # fresh RocksDB per worker: topics are fresh too
        self.log = workdir / f"{prefix}{name}.log"
        self.process = None
        self.started_at = 0.0

    def start(self) -> "Worker":
        from deploy.local.process import ManagedProcess

        env = {**self.bus.connection.to_env(), "GPLX_TOPIC_PREFIX": self.prefix,
               "GPLX_STORE": "rocksdb://", "GPLX_DATADIR": str(self.datadir),
               "GPLX_TICK_SECONDS": "3600", "GPLX_INPUT_PARTITIONS": str(bus_env.INPUT_PARTITIONS),
               "GPLX_LOG_LEVEL": "warning", **self.env}
        cmd = [sys.executable, "-m", "topology.processor"]
        if self.overrides:
            env["GPLX_BENCH_FAUST_OVERRIDES"] = json.dumps(self.overrides)
            cmd = [sys.executable, "-m", "gplx_bus.bench.worker_variant"]
        if self.memray:  # pip install -e '.[profile]'
            cmd = [sys.executable, "-m", "memray", "run", "--native", "-q", "-o", str(self.memray), *cmd[1:]]
        self.process = ManagedProcess(f"bench-{self.name}", cmd, self.log, env).start()
        self.started_at = time.time()
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def status(self) -> dict:
        """VmHWM / VmRSS in MB from /proc (the peak and current resident set of the worker)."""
        out = {}
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(("VmHWM:", "VmRSS:")):
                    out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
        except (FileNotFoundError, ProcessLookupError):
            pass
        return out

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def datadir_mb(self) -> float:
        result = subprocess.run(["du", "-sk", str(self.datadir)], capture_output=True, text=True)
        return round(int(result.stdout.split()[0]) / 1024, 1) if result.returncode == 0 and result.stdout else 0.0

    def stop(self) -> str:
        return self.process.stop(timeout=30) if self.process else "never started"

    def log_tail(self) -> str:
        return self.process.log_tail(15) if self.process else ""

    def exit_status(self) -> str:
        """How the worker ended: its exit code, or the signal that killed it (-9: SIGKILL, e.g. the OOM killer)."""
        code = self.process.popen.poll() if self.process and self.process.popen else None
        return "running" if code is None else f"exit code {code}"


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (and its reaped children: none here)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return 0.0


class CpuMeter:
    """CPU seconds used by the worker, the broker (local mode) and the whole machine between start() and stop()."""

    def __init__(self, worker: "Worker", bus: bus_env.Bus):
        self.worker, self.broker_pids = worker, bus.broker_pids()

    @staticmethod
    def _machine() -> tuple[float, float]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]
        return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK"), sum(fields) / os.sysconf("SC_CLK_TCK")

    def _sample(self) -> tuple[float, float, float, float]:
        busy, total = self._machine()
        return (self.worker.cpu_seconds(), sum(process_cpu_seconds(p) for p in self.broker_pids), busy, total)

    def start(self) -> "CpuMeter":
        self.first = self._sample()
        return self

    def stop(self) -> dict:
        last = self._sample()
        worker, broker, busy, total = (b - a for a, b in zip(self.first, last))
        cores = os.cpu_count() or 1
        return {"worker_cpu_seconds": round(worker, 1),
                "broker_cpu_seconds": round(broker, 1) if self.broker_pids else None,
                "machine_busy_fraction": round(busy / total, 2) if total else None,
                "other_processes_cpu_seconds": round(busy - worker - broker, 1),
                "interval_cpu_capacity_seconds": round(total, 1), "cores": cores}


class CaseWatcher:
    """Reads cases.events from the beginning: first output time, decisions (key -> CreateTime), opened count."""

    def __init__(self, bus: bus_env.Bus, catalogue, registry):
        from kafka import KafkaConsumer
        from kafka.structs import TopicPartition

        from schemas.serde import AvroDeserializer
        from topology import catalogue as topics

        self.topic = catalogue.name(topics.CASES_EVENTS)
        self.consumer = new_client(KafkaConsumer, **bus.connection.kafka_python_kwargs(), group_id=None,
                                   enable_auto_commit=False, auto_offset_reset="earliest")
        parts = self.consumer.partitions_for_topic(self.topic) or set()
        self.consumer.assign([TopicPartition(self.topic, p) for p in parts])
        self.deserialize = AvroDeserializer(registry)
        self.names: dict[int, str] = {}
        self.first_ts: int | None = None
        self.decisions: dict[bytes, int] = {}   # cccd -> CreateTime of its decision (ms)
        self.last_decision_ts = 0
        self.opened = 0
        self.records = 0

    def poll(self, timeout_ms: int = 200) -> None:
        from schemas.serde import SerializationContext

        for records in self.consumer.poll(timeout_ms=timeout_ms, max_records=5000).values():
            for r in records:
                self.records += 1
                schema_id = int.from_bytes(r.value[1:5], "big")
                name = self.names.get(schema_id)
                if name is None:
                    name = self.names[schema_id] = self.deserialize.decode(r.value, SerializationContext(self.topic))[0]
                self.first_ts = r.timestamp if self.first_ts is None else min(self.first_ts, r.timestamp)
                if name in bus_env.DECISIONS:
                    self.decisions[r.key] = r.timestamp
                    self.last_decision_ts = max(self.last_decision_ts, r.timestamp)
                elif name.endswith("CaseOpened"):
                    self.opened += 1

    def wait(self, done, worker: Worker, timeout_s: float, stall_s: float = 30.0) -> bool:
        """Poll until done() or timeout, or until nothing new arrived for stall_s (after something did)."""
        deadline = time.monotonic() + timeout_s
        last_change, seen = time.monotonic(), -1
        while time.monotonic() < deadline:
            self.poll()
            if done():
                return True
            if not worker.alive():
                raise RuntimeError(f"worker {worker.name} exited ({worker.exit_status()}): {worker.log_tail()}")
            if self.records != seen:
                seen, last_change = self.records, time.monotonic()
            elif self.records and time.monotonic() - last_change > stall_s:
                return False
        return False

    def close(self) -> None:
        self.consumer.close()


def inputs_consumed(bus: bus_env.Bus, catalogue, prefix: str) -> bool:
    """True when the worker's group has committed every input record (lag 0 on every input topic)."""
    from kafka import KafkaAdminClient
    from kafka.admin import OffsetSpec
    from kafka.structs import TopicPartition

    from topology.catalogue import CASE_PROCESSOR_APP_ID
    from topology.processor.app import INPUTS

    group = prefix + CASE_PROCESSOR_APP_ID
    admin = new_client(KafkaAdminClient, **bus.connection.kafka_python_kwargs())
    try:
        committed = {tp: om.offset for tp, om in admin.list_group_offsets([group]).get(group, {}).items()}
        tps = [TopicPartition(catalogue.name(b), p) for b in INPUTS for p in range(bus_env.INPUT_PARTITIONS)]
        ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
    finally:
        admin.close()
    return all(committed.get(tp, 0) >= end.offset for tp, end in ends.items())


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))  # nearest rank
    return ordered[index]


# ---- sections ----------------------------------------------------------------------------------------------------
def throughput_and_latency(bus, registry, cases: int, latency_rate: float, latency_seconds: float,
                           workdir: Path, log=print, overrides: dict | None = None) -> tuple[dict, dict, dict]:
    """Section 3 (ours), its same-work ceilings F and B′ on the same inputs, and section 4 (latency) on one
    worker."""
    prefix = bus_env.unique_prefix("proc")
    catalogue = bus_env.create_catalogue(bus, prefix)
    load = bus_env.workload(registry, catalogue, cases, workdir=workdir / "db-throughput")
    # No separate warm-up: everything is published ahead, and the window runs from the first output to the last
    # decision, so the worker's start-up and group join are outside it.
    load_seconds = bus_env.bulk_load(bus, catalogue, load.records)
    log(f"  published {len(load.records)} input events of {cases} cases ahead in {load_seconds:.1f}s")
    # The ceilings that do (part of) the same work read the same published inputs, each with its own group.
    ceilings = {"ceiling_f": same_work.faust_ceiling(bus, prefix, catalogue, len(load.records), workdir, log),
                "ceiling_b_prime": same_work.hand_loop(bus, registry, catalogue, len(load.records), log)}
    worker = Worker(bus, prefix, workdir, "throughput" + ("-variant" if overrides else ""), overrides).start()
    watcher = CaseWatcher(bus, catalogue, registry)
    try:
        meter = CpuMeter(worker, bus).start()
        complete = watcher.wait(lambda: len(watcher.decisions) >= load.decisions_expected, worker,
                                timeout_s=max(120.0, cases / 20))
        cpu = meter.stop()
        wall = watcher.last_decision_ts / 1000 - worker.started_at
        rates = _window_rates(watcher, len(load.records))
        window, decided = rates["window_seconds"], rates["decided"]
        throughput = {
            "cases": cases, "input_events": len(load.records), "input_events_by_type": load.by_type,
            "complete": complete, **rates,
            "wall_seconds_from_spawn": round(wall, 2),
            "startup_seconds": round((watcher.first_ts or 0) / 1000 - worker.started_at, 2),
            "cpu_from_spawn_to_last_decision": cpu,
            "events_per_worker_cpu_s": round(len(load.records) / max(cpu["worker_cpu_seconds"], 1e-3), 1),
            "output_records_on_cases_events": watcher.records,
            "answers": "precomputed: identity.answer/police.answer (the adapters' pure functions) on the "
                       "processor's own requests (assembler.handle), published with the other facts",
            "mean_input_value_bytes": load.mean_value_size,
        }
        log(f"  ours: {throughput['events_per_s']} events/s, {throughput['cases_per_s']} cases/s "
            f"({decided}/{cases} decided in {window:.1f}s)")
        latency = steady_latency(bus, registry, catalogue, worker, watcher, latency_rate, latency_seconds,
                                 workdir, log)
        latency["VmHWM_MB_after_throughput_and_latency"] = worker.status().get("VmHWM")
        return throughput, latency, ceilings
    finally:
        watcher.close()
        worker.stop()
        bus_env.delete_topics(bus, prefix)


def throughput_scaled(bus, registry, cases: int, workdir: Path, workers: int = 2, log=print,
                      env: dict | None = None) -> dict:
    """Section 3b: the same cases with `workers` worker processes in one consumer group, faust's way to scale.

    The workers join first and the inputs are published once the group is stable and every worker has finished
    taking its partitions, so the window (first output to last decision) holds no rebalance; loading overlaps the
    start of processing (it takes ~1 s). Why the second wait: the group is Stable on the broker ~0.3 s before faust
    has recovered and resumed its partitions; inputs published in between reach the agent late (faust drops some, and
    the worker reads them from the log: topology/processor/offsets.py), which is a rebalance's cost, not throughput."""
    prefix = bus_env.unique_prefix("scaled")
    catalogue = bus_env.create_catalogue(bus, prefix)
    load = bus_env.workload(registry, catalogue, cases, workdir=workdir / "db-scaled")
    env = {"GPLX_LOG_LEVEL": "info", **(env or {})}  # faust's "Worker ready" lines (_wait_workers_ready)
    procs = [Worker(bus, prefix, workdir, f"scaled-{i}", env=env).start() for i in range(workers)]
    watcher = CaseWatcher(bus, catalogue, registry)
    try:
        _wait_group_stable(bus, prefix, workers, procs)
        _wait_workers_ready(procs)
        bus_env.bulk_load(bus, catalogue, load.records)
        # 300 s, not 120: a run on a shared machine once had 299 of 300 decided at 120 s (3 of 3 complete alone)
        complete = watcher.wait(lambda: len(watcher.decisions) >= load.decisions_expected, procs[0],
                                timeout_s=max(300.0, cases / 20))
        result = {"workers": workers, "settings": env or {}, "cases": cases, "input_events": len(load.records), "complete": complete,
                  **_window_rates(watcher, len(load.records)),
                  "worker_cpu_seconds": [round(process_cpu_seconds(p.pid), 1) for p in procs]}
        log(f"  ours, {workers} workers: {result['events_per_s']} events/s, {result['cases_per_s']} cases/s")
        return result
    finally:
        watcher.close()
        for p in procs:
            p.stop()
        bus_env.delete_topics(bus, prefix)


def _window_rates(watcher: CaseWatcher, input_events: int) -> dict:
    """Rates over the window from the first output record to the last decision (record CreateTimes)."""
    window = max(1e-3, (watcher.last_decision_ts - (watcher.first_ts or 0)) / 1000)
    decided = len(watcher.decisions)
    return {"decided": decided, "window_seconds": round(window, 2),
            "events_per_s": round(input_events / window, 1), "cases_per_s": round(decided / window, 1)}


def _wait_group_stable(bus, prefix: str, members: int, procs: list, timeout_s: float = 120.0) -> None:
    from producers.testing import group_settled
    from topology import catalogue as topics

    group = prefix + topics.CASE_PROCESSOR_APP_ID
    _wait_workers(procs, lambda: group_settled(bus.connection, group, members),
                  f"group {group} stable with {members} members", timeout_s, pacing_s=0.2)


def _wait_workers(procs: list, done, what: str, timeout_s: float, pacing_s: float) -> None:
    """Poll done() until true; RuntimeError (with the workers' last log lines) if one exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not all(p.alive() for p in procs):
            raise RuntimeError(f"a worker exited: {[p.log_tail() for p in procs if not p.alive()]}")
        if done():
            return
        time.sleep(pacing_s)  # pacing between polls (the group's state, the logs)
    raise RuntimeError(f"not {what} after {timeout_s:.0f}s: {[p.log_tail() for p in procs]}")


def _wait_workers_ready(procs: list, timeout_s: float = 120.0) -> None:
    """Until each worker's log says faust is ready after its latest partition assignment (faust's own info lines:
    "generation id N ..." when partitions are assigned, "Worker ready" once recovered and resumed)."""
    def ready(worker) -> bool:
        text = worker.log.read_text(errors="replace") if worker.log.exists() else ""
        assigned = text.rfind("generation id ")
        return assigned >= 0 and text.find("Worker ready", assigned) > 0

    _wait_workers(procs, lambda: all(ready(p) for p in procs), "every worker ready", timeout_s, pacing_s=0.1)


def steady_latency(bus, registry, catalogue, worker, watcher, rate: float, seconds: float, workdir: Path,
                   log=print) -> dict:
    """Cases at `rate`/s for `seconds` on an idle, warmed-up worker; last-fact-to-decision per case."""
    count = max(1, int(rate * seconds))
    warm_count = max(10, int(rate))  # one second of load, sent first and not measured (see below)
    load = bus_env.workload(registry, catalogue, warm_count + count, seed=bus_env.SEED + 1,
                            workdir=workdir / "db-latency")
    by_case: dict[str, list] = {}
    for r in load.records:
        by_case.setdefault(r.case, []).append(r)
    cases = list(by_case.values())
    last_input: dict[bytes, int] = {}
    # The broker's part before the worker can see an input: librdkafka's round-trip times of its produce requests
    # (acks=all), per second, measured in its own thread (so not delayed by this process's Python thread)
    rtt_p50: list[float] = []
    rtt_p99: list[float] = []

    def statistics(text: str) -> None:
        for broker in json.loads(text).get("brokers", {}).values():
            rtt = broker.get("rtt") or {}
            if rtt.get("cnt"):
                rtt_p50.append(rtt["p50"] / 1000)
                rtt_p99.append(rtt["p99"] / 1000)

    def delivered(record, msg):
        last_input[record.key] = max(last_input.get(record.key, 0), msg.timestamp()[1])

    def send(records) -> None:
        for r in records:
            producer.produce(catalogue.name(r.base), key=r.key, value=r.value,
                             on_delivery=lambda err, msg, r=r: err is None and delivered(r, msg))
        producer.poll(0)

    producer = bus_env.confluent_producer(bus, **{"linger.ms": 1, "statistics.interval.ms": 1000,
                                                  "stats_cb": statistics})
    # Warm-up: a new idempotent producer stamps CreateTime before it has its producer id and the topics'
    # metadata, so its first second of records would measure the producer's start, not the processor.
    warm_keys = {r.key for records in cases[:warm_count] for r in records}
    for records in cases[:warm_count]:
        send(records)
    producer.flush(30)
    watcher.wait(lambda: warm_keys <= set(watcher.decisions), worker, timeout_s=120)
    already = set(watcher.decisions)
    rtt_p50.clear(), rtt_p99.clear()
    started = time.perf_counter()
    for n, records in enumerate(cases[warm_count:]):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)  # pacing the load at `rate` cases/s
        send(records)
        watcher.poll(timeout_ms=0)
    producer.flush(30)
    sent_seconds = time.perf_counter() - started
    keys = {r.key for records in cases[warm_count:] for r in records}
    watcher.wait(lambda: len(keys & set(watcher.decisions)) >= len(keys), worker, timeout_s=120)
    latencies = [watcher.decisions[k] - last_input[k] for k in keys
                 if k in watcher.decisions and k in last_input and k not in already]
    result = {"rate_cases_per_s": rate, "seconds": round(sent_seconds, 1), "cases": len(keys),
              "input_events": sum(len(records) for records in cases[warm_count:]), "decided": len(latencies),
              "warm_up_cases": warm_count,
              "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
              "p99_ms": percentile(latencies, 99), "max_ms": max(latencies, default=0),
              "measured": "CreateTime of the decision on cases.events minus CreateTime of the case's last input",
              "inputs_broker_rtt_ms": {"median_of_p50s": round(percentile(rtt_p50, 50), 1),
                                       "max_of_p99s": round(max(rtt_p99, default=0), 1),
                                       "what": "librdkafka's produce round trips per second (acks=all)"}}
    log(f"  latency at {rate}/s: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms")
    return result


def memory(bus, registry, open_cases: int, workdir: Path, log=print) -> dict:
    """Section 6: a fresh worker, then `open_cases` cases that stay open (no payment)."""
    prefix = bus_env.unique_prefix("mem")
    catalogue = bus_env.create_catalogue(bus, prefix)
    warm = bus_env.workload(registry, catalogue, 20, seed=bus_env.SEED + 2, payments=False,
                            workdir=workdir / "db-mem-warm")
    load = bus_env.workload(registry, catalogue, open_cases, seed=bus_env.SEED + 3, payments=False,
                            workdir=workdir / "db-mem")
    worker = Worker(bus, prefix, workdir, "memory").start()
    watcher = CaseWatcher(bus, catalogue, registry)
    try:
        bus_env.bulk_load(bus, catalogue, warm.records)
        watcher.wait(lambda: watcher.opened >= warm.cases, worker, timeout_s=120)
        _wait_consumed(bus, catalogue, prefix, worker)
        base = worker.status()
        base_disk = worker.datadir_mb()
        log(f"  memory baseline (worker warm, {warm.cases} open cases): {base}")
        # Four steps (a quarter of the cases each): the shape shows whether memory levels off (RocksDB's bounded
        # memtables and caches filling) or keeps growing per case; the slope between the last two steps is the
        # per-case growth, free of the one-off buffers that fill during the first backlog.
        steps, load_seconds, started = [], 0.0, time.monotonic()
        for q, part in enumerate(split_by_case(load.records, 4)):
            cases_so_far = open_cases * (q + 1) // 4
            load_seconds += bus_env.bulk_load(bus, catalogue, part)
            if not watcher.wait(lambda: watcher.opened >= warm.cases + cases_so_far, worker,
                                timeout_s=max(300.0, open_cases / 20)):
                raise RuntimeError(f"{cases_so_far} cases not opened: {watcher.opened - warm.cases}")
            _wait_consumed(bus, catalogue, prefix, worker)
            steps.append({"open_cases": cases_so_far, **worker.status(), "rocksdb_MB": worker.datadir_mb()})
            log(f"    {cases_so_far} open cases: VmRSS {steps[-1].get('VmRSS')} MB, "
                f"RocksDB {steps[-1]['rocksdb_MB']} MB")
        seconds = time.monotonic() - started
        after, disk = steps[-1], steps[-1]["rocksdb_MB"]
        step_cases = max(1, steps[-1]["open_cases"] - steps[-2]["open_cases"])
        per_case_kb = max(0.0, after.get("VmRSS", 0) - steps[-2].get("VmRSS", 0)) * 1024 / step_cases
        disk_per_case_kb = (disk - steps[-2]["rocksdb_MB"]) * 1024 / step_cases
        estimate = after.get("VmHWM", 0) + per_case_kb * (1_000_000 - open_cases) / 1024
        result = {
            "open_cases": open_cases, "opened_seen": watcher.opened - warm.cases,
            "input_events": len(load.records), "publish_seconds": round(load_seconds, 1),
            "process_seconds": round(seconds, 1),
            "VmHWM_MB_baseline": base.get("VmHWM"), "VmRSS_MB_baseline": base.get("VmRSS"),
            "VmHWM_MB": after.get("VmHWM"), "VmRSS_MB": after.get("VmRSS"),
            "rocksdb_MB_baseline": base_disk, "rocksdb_MB": disk, "steps": steps,
            "rss_kb_per_open_case": round(per_case_kb, 3),
            "rocksdb_kb_per_open_case": round(disk_per_case_kb, 3),
            "extrapolated_VmHWM_MB_at_1M_open_cases": round(estimate, 1),
            "extrapolated_rocksdb_MB_at_1M_open_cases": round(disk + disk_per_case_kb * (1_000_000 - open_cases)
                                                              / 1024, 1),
            "extrapolation": f"linear: VmHWM at {open_cases} open cases + (VmRSS slope between "
                             f"{steps[-2]['open_cases']} "
                             f"and {open_cases}) x the remaining cases to 1,000,000; not measured at 1M. The "
                             f"slope is noisy at small sizes (allocator arenas, RocksDB memtable flushes).",
        }
        log(f"  memory: VmHWM {after.get('VmHWM')} MB for {open_cases} open cases "
            f"(baseline {base.get('VmHWM')} MB), RocksDB {disk} MB; 1M estimate {estimate:.0f} MB")
        return result
    finally:
        watcher.close()
        worker.stop()
        bus_env.delete_topics(bus, prefix)


def split_by_case(records: list, parts: int) -> list[list]:
    """The records in `parts` lists, each holding every record of its cases (a case in exactly one part, in the
    order the cases first appear), publishing order kept within each; records of no case go in the first.

    Why not cuts in publishing order: a case's certificates are signed days before its application and its answers
    come after every application, so the first quarter of the records holds certificates only and opens no case."""
    order: dict[str, int] = {}
    for r in records:
        if r.case and r.case not in order:
            order[r.case] = len(order)
    split: list[list] = [[] for _ in range(parts)]
    for r in records:
        split[order[r.case] * parts // max(1, len(order)) if r.case else 0].append(r)
    return split


def _wait_consumed(bus, catalogue, prefix, worker, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if inputs_consumed(bus, catalogue, prefix):
            return
        if not worker.alive():
            raise RuntimeError(f"worker exited: {worker.log_tail()}")
        time.sleep(0.5)  # pacing: faust commits every few seconds


def fresh_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="gplx-bench-"))


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
