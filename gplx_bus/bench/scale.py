"""`make bench-scale`: one worker holding many citizens (issue 15): memory, disk, restore, tick. Minutes, not CI.

    python -m gplx_bus.bench.scale [--citizens 1000000] [--open-cases 50000] [--json FILE]

The state: `citizens - open_cases` citizens who hold a health certificate and nothing else (a certificate is kept
for months before the renewal it supports), and `open_cases` applications that stay open (identity and police
answered, no payment). The sources are written at full producer speed (confluent-kafka, murmur2 partitioner) in four
quarters; after each quarter is consumed (group lag 0) the worker's VmRSS/VmHWM and the RocksDB folder are measured.

Then:
- tick: the worker runs with GPLX_TICK_SECONDS=TICK_SECONDS. The open cases are submitted just before the run
  (the timer reads the wall clock), so none is due: the CPU the worker uses while idle over TICK_WINDOW seconds,
  divided by the ticks in that window, bounds the cost of one tick that touches no case from above (idle polling
  included). Then DUE_CASES cases dated 2025 (past every deadline) are published and a second window counts the
  ClockTicks the timer wrote (records on cases.clock, distinct citizens) and the CPU, their processing included;
- restore: the worker is stopped and a new one started on an empty data dir in the same group; restore time is from
  its spawn to its CaseOpened for a new application published at the spawn (it is processed only once the table is
  recovered), with its VmHWM; beside it, Kafka's ConsumerPerformance reading the same changelog (the ceiling).

Nothing here is asserted; `tests/integration/test_bench_smoke.py` runs a small version.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from gplx_bus.bench import bus_env, ceilings, processor_runs
from topology.kafka_python import new_client

TICK_SECONDS = 5.0
TICK_WINDOW = 30.0
DUE_CASES = 100


@dataclass
class Options:
    citizens: int = 1_000_000
    open_cases: int = 50_000
    json_path: Path | None = None
    bootstrap: str | None = None
    registry_url: str | None = None
    connection: object = None  # topology.connection.Connection, for a cluster given
    tick_window: float = TICK_WINDOW
    memray: Path | None = None  # run the loaded worker under `memray run --native`, writing this file
    worker_env: dict | None = None  # extra environment of the loaded worker, e.g. PYTHONMALLOC=malloc


def certificate_records(registry, catalogue, template, count: int) -> list[bus_env.Record]:
    """`count` certificates of distinct citizens, varied from one of the simulator's (fast: no validation)."""
    from schemas.serde import AvroSerializer, SerializationContext
    from topology import catalogue as topics

    topic = catalogue.name(topics.HEALTH_EXAM_RESULTS)
    serialize, ctx = AvroSerializer(registry), SerializationContext(topic)
    records = []
    for i in range(count):
        cccd = f"{template.cccd[:3]}19{i:07d}"
        serial, clinic, year = f"{i % 99_999 + 1:05d}", template.clinic_code, template.certificate_number[-2:]
        event = template.model_copy(update={"cccd": cccd, "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-cert/{i}")),
                                            "certificate_number": f"{serial}/GKSKLX/{clinic}/{year}"})
        records.append(bus_env.Record(topics.HEALTH_EXAM_RESULTS, cccd.encode(), serialize(event, ctx),
                                      "HealthCertificate", ""))
    return records


def run(options: Options, log=print) -> dict:
    from schemas.registry import RegistryClient

    started = time.monotonic()
    results: dict = {"options": {k: (v if v is None or isinstance(v, (str, int, float, bool)) else str(v))
                                 for k, v in vars(options).items()},
                     "started_at": dt.datetime.now(dt.timezone.utc).isoformat()}
    bus = bus_env.open_bus(options.bootstrap, options.registry_url, options.connection)
    workdir = processor_runs.fresh_workdir()
    registry = RegistryClient(bus.registry_url, auth=bus.connection.registry_auth)
    prefix = bus_env.unique_prefix("scale")
    worker = watcher = None
    try:
        results["machine"] = {**bus_env.machine(), "kafka": bus.kafka_version, "clients": bus_env.versions()}
        catalogue = bus_env.create_catalogue(bus, prefix)
        log(f"workload: {options.open_cases} open cases + {options.citizens - options.open_cases} certificates")
        t0 = time.monotonic()
        # dated now: with a tick every few seconds, cases dated 2025 would all be past their deadlines and decided
        cases = bus_env.workload(registry, catalogue, options.open_cases, seed=bus_env.SEED + 4, payments=False,
                                 keep_events=True, workdir=workdir / "db-scale",
                                 start=dt.datetime.now(dt.timezone.utc).replace(microsecond=0))
        template = next(e for _, e in cases.events if type(e).__name__ == "HealthCertificate")
        certificates = certificate_records(registry, catalogue, template,
                                           max(0, options.citizens - options.open_cases))
        results["workload"] = {"open_cases": options.open_cases, "certificate_citizens": len(certificates),
                               "input_events": len(cases.records) + len(certificates),
                               "seconds_to_build": round(time.monotonic() - t0, 1)}
        worker = processor_runs.Worker(bus, prefix, workdir, "scale",
                                       env={"GPLX_TICK_SECONDS": str(TICK_SECONDS), **(options.worker_env or {})},
                                       memray=options.memray).start()
        watcher = processor_runs.CaseWatcher(bus, catalogue, registry)
        results["memory"] = _load_in_quarters(bus, catalogue, prefix, worker, watcher, cases, certificates, log)
        results["memory"]["decided_during_load"] = len(watcher.decisions)  # 0: every case stayed open
        results["tick"] = _tick_cost(bus, registry, catalogue, worker, watcher, options.tick_window, workdir, log)
        worker.stop()
        results["restore"] = _restore(bus, registry, catalogue, prefix, workdir, watcher, log)
    except BaseException:
        _keep_logs(workdir, options.json_path)  # the workdir is removed below: its worker logs say why
        raise
    finally:
        if watcher is not None:
            watcher.close()
        if worker is not None:
            worker.stop()
        registry.close()
        bus_env.delete_topics(bus, prefix)
        bus.stop()
        processor_runs.remove_workdir(workdir)
    results["seconds"] = round(time.monotonic() - started, 1)
    memory = results["memory"]["steps"][-1]
    results["goals"] = {
        "worker_VmHWM_MB": {"value": memory.get("VmHWM"), "goal": f"<= 300 at {options.citizens:,} citizens / "
                            f"{options.open_cases:,} open cases (measured)", "met": memory.get("VmHWM", 1e9) <= 300},
        "restore_seconds": {"value": results["restore"]["seconds"], "goal": "<= 300",
                            "met": results["restore"]["seconds"] <= 300},
    }
    path = options.json_path or Path("bench-results") / f"scale-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    results["json_path"] = str(path)
    return results


def _keep_logs(workdir: Path, json_path: Path | None) -> None:
    import shutil

    folder = (json_path.parent if json_path else Path("bench-results")) / f"scale-logs-{workdir.name}"
    folder.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("*.log"):
        shutil.copy(log, folder / log.name)
    print(f"worker logs kept in {folder}", file=sys.stderr)


def _load_in_quarters(bus, catalogue, prefix, worker, watcher, cases, certificates, log) -> dict:
    base = {**worker.status(), "rocksdb_MB": worker.datadir_mb()}
    quarters = processor_runs.split_by_case(cases.records, 4)
    steps, started, publish = [], time.monotonic(), 0.0
    for q in range(4):
        part = certificates[len(certificates) * q // 4:len(certificates) * (q + 1) // 4]
        publish += bus_env.bulk_load(bus, catalogue, part + quarters[q])
        opened = cases.cases * (q + 1) // 4
        if not watcher.wait(lambda: watcher.opened >= opened, worker, timeout_s=3600, stall_s=600):
            raise RuntimeError(f"{opened} cases not opened: {watcher.opened}; {worker.log_tail()}")
        processor_runs._wait_consumed(bus, catalogue, prefix, worker, timeout_s=3600)
        steps.append({"citizens": len(certificates) * (q + 1) // 4 + opened, "open_cases": opened,
                      **worker.status(), "rocksdb_MB": worker.datadir_mb(),
                      "seconds": round(time.monotonic() - started, 1)})
        log(f"  {steps[-1]['citizens']:,} citizens ({opened:,} open): VmRSS {steps[-1].get('VmRSS')} MB, "
            f"VmHWM {steps[-1].get('VmHWM')} MB, RocksDB {steps[-1]['rocksdb_MB']} MB, {steps[-1]['seconds']} s")
    seconds = time.monotonic() - started
    events = len(cases.records) + len(certificates)
    return {"baseline": base, "steps": steps, "publish_seconds": round(publish, 1),
            "process_seconds": round(seconds, 1), "events_per_s": round(events / seconds, 1)}


def _tick_cost(bus, registry, catalogue, worker, watcher, window: float, workdir: Path, log) -> dict:
    from topology import catalogue as topics

    clock = catalogue.name(topics.CASES_CLOCK)
    before = _clock_ticks(bus, clock)
    idle = _tick_window(worker, window)
    idle_ticks = Counter(_clock_ticks(bus, clock)) - Counter(before)
    idle.update(clock_ticks_written=idle_ticks.total(), cases_ticked=len(idle_ticks))
    log(f"  tick, no case due: <= {idle['cpu_ms_per_tick_upper_bound']} ms CPU per tick "
        f"({idle['worker_cpu_seconds']} s in {idle['window_seconds']} s), {idle['clock_ticks_written']} ClockTicks")
    due = bus_env.workload(registry, catalogue, DUE_CASES, seed=bus_env.SEED + 6, payments=False,
                           workdir=workdir / "db-due")  # dated 2025: past both deadlines on the wall clock
    decided_before, before = len(watcher.decisions), _clock_ticks(bus, clock)
    with_due = _tick_window(worker, window, publish=lambda: bus_env.bulk_load(bus, catalogue, due.records))
    watcher.wait(lambda: len(watcher.decisions) - decided_before >= DUE_CASES, worker, timeout_s=120)
    due_ticks = Counter(_clock_ticks(bus, clock)) - Counter(before)  # the window's and any after it, to the decisions
    with_due.update(due_cases=DUE_CASES, due_cases_decided=len(watcher.decisions) - decided_before,
                    clock_ticks_written=due_ticks.total(), cases_ticked=len(due_ticks))
    log(f"  tick, {DUE_CASES} cases due: {with_due['clock_ticks_written']} ClockTicks for "
        f"{with_due['cases_ticked']} cases, {with_due['due_cases_decided']} decided; "
        f"<= {with_due['cpu_ms_per_tick_upper_bound']} ms CPU per tick over {with_due['window_seconds']} s "
        f"(their processing included)")
    return {"tick_seconds": TICK_SECONDS, "no_case_due": idle, "cases_due": with_due}


def _tick_window(worker, window: float, publish=None) -> dict:
    cpu0, t0 = worker.cpu_seconds(), time.monotonic()
    if publish:
        publish()
    time.sleep(window)  # the measured window itself (nothing to poll): the worker is idle but for its ticks
    cpu, elapsed = worker.cpu_seconds() - cpu0, time.monotonic() - t0
    ticks = max(1, int(elapsed // TICK_SECONDS))
    return {"window_seconds": round(elapsed, 1), "ticks": ticks, "worker_cpu_seconds": round(cpu, 2),
            "cpu_ms_per_tick_upper_bound": round(cpu * 1000 / ticks, 1)}


def _clock_ticks(bus, topic: str) -> list[bytes]:
    """The keys (citizens) of every ClockTick on the timer's topic so far."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    consumer = new_client(KafkaConsumer, **bus.connection.kafka_python_kwargs(), enable_auto_commit=False,
                          auto_offset_reset="earliest", consumer_timeout_ms=2000)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        keys: list[bytes] = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=1000).values():
                keys.extend(r.key for r in records)
        return keys
    finally:
        consumer.close()


def _restore(bus, registry, catalogue, prefix, workdir, watcher, log) -> dict:
    from topology.catalogue import CASE_PROCESSOR_APP_ID

    changelog = f"{prefix}{CASE_PROCESSOR_APP_ID}-citizens-changelog"
    probe = bus_env.workload(registry, catalogue, 1, seed=bus_env.SEED + 5, payments=False,
                             workdir=workdir / "db-probe")
    opened_before = watcher.opened
    worker = processor_runs.Worker(bus, prefix, workdir, "scale-restored").start()
    try:
        bus_env.bulk_load(bus, catalogue, probe.records)
        if not watcher.wait(lambda: watcher.opened > opened_before, worker, timeout_s=3600, stall_s=3600):
            raise RuntimeError(f"the restored worker did not open the new case: {worker.log_tail()}")
        seconds = time.time() - worker.started_at
        result = {"seconds": round(seconds, 1), **worker.status(), "rocksdb_MB": worker.datadir_mb(),
                  "measured": "spawn of a worker on an empty data dir -> CaseOpened of an application published at "
                              "its spawn (processed once the table is restored from the changelog)"}
    finally:
        worker.stop()
    perf = ceilings.consume_topic(bus, changelog)
    result["changelog_consumer_performance"] = perf
    log(f"  restore: {result['seconds']} s, VmHWM {result.get('VmHWM')} MB; ConsumerPerformance on the changelog: "
        f"{perf['records']:,} records in {perf['seconds']} s")
    return result


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=Options.citizens)
    parser.add_argument("--open-cases", type=int, default=Options.open_cases)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--memray", type=Path, help="record the loaded worker with memray (native stacks) here")
    parser.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE",
                        help="set in the loaded worker's environment (repeatable), e.g. PYTHONMALLOC=malloc")
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.worker_env):
        parser.error("--worker-env takes NAME=VALUE, e.g. --worker-env PYTHONMALLOC=malloc")
    results = run(Options(citizens=args.citizens, open_cases=args.open_cases, json_path=args.json,
                          memray=args.memray, worker_env=dict(i.split("=", 1) for i in args.worker_env)),
                  log=lambda text: print(text, file=sys.stderr, flush=True))
    print(json.dumps({k: results[k] for k in ("memory", "tick", "restore", "goals", "seconds")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
