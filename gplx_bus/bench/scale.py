"""`make bench-scale`: one worker holding many citizens (issue 15): memory, disk, restore, tick. Minutes, not CI.

    python -m gplx_bus.bench.scale [--citizens 1000000] [--open-cases 50000] [--json FILE]

The state: `citizens - open_cases` citizens who hold a health certificate and nothing else (a certificate is kept
for months before the renewal it supports), and `open_cases` applications that stay open (identity and police
answered, no payment). The sources are written at full producer speed (confluent-kafka, murmur2 partitioner) in four
quarters; after each quarter is consumed (group lag 0) the worker's VmRSS/VmHWM and the RocksDB folder are measured.

Then:
- tick: the worker runs with GPLX_TICK_SECONDS=TICK_SECONDS; the CPU it uses while idle over TICK_WINDOW seconds,
  divided by the ticks in that window, bounds the cost of one tick from above (idle polling included);
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
from dataclasses import dataclass
from pathlib import Path

from gplx_bus.bench import bus_env, ceilings, processor_runs

TICK_SECONDS = 5.0
TICK_WINDOW = 30.0


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
        cases = bus_env.workload(registry, catalogue, options.open_cases, seed=bus_env.SEED + 4, payments=False,
                                 keep_events=True, workdir=workdir / "db-scale")
        template = next(e for _, e in cases.events if type(e).__name__ == "HealthCertificate")
        certificates = certificate_records(registry, catalogue, template,
                                           max(0, options.citizens - options.open_cases))
        results["workload"] = {"open_cases": options.open_cases, "certificate_citizens": len(certificates),
                               "input_events": len(cases.records) + len(certificates),
                               "seconds_to_build": round(time.monotonic() - t0, 1)}
        worker = processor_runs.Worker(bus, prefix, workdir, "scale",
                                       env={"GPLX_TICK_SECONDS": str(TICK_SECONDS)}, memray=options.memray).start()
        watcher = processor_runs.CaseWatcher(bus, catalogue, registry)
        results["memory"] = _load_in_quarters(bus, catalogue, prefix, worker, watcher, cases, certificates, log)
        results["tick"] = _tick_cost(worker, options.tick_window, log)
        worker.stop()
        results["restore"] = _restore(bus, registry, catalogue, prefix, workdir, watcher, log)
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


def _load_in_quarters(bus, catalogue, prefix, worker, watcher, cases, certificates, log) -> dict:
    base = {**worker.status(), "rocksdb_MB": worker.datadir_mb()}
    cuts = [0, *(processor_runs._cut_at_case(cases.records, cases.cases * q // 4) for q in (1, 2, 3)),
            len(cases.records)]
    steps, started, publish = [], time.monotonic(), 0.0
    for q in range(4):
        part = certificates[len(certificates) * q // 4:len(certificates) * (q + 1) // 4]
        publish += bus_env.bulk_load(bus, catalogue, part + cases.records[cuts[q]:cuts[q + 1]])
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


def _tick_cost(worker, window: float, log) -> dict:
    cpu0, t0 = worker.cpu_seconds(), time.monotonic()
    time.sleep(window)  # the measured window itself (nothing to poll): the worker is idle but for its ticks
    cpu, elapsed = worker.cpu_seconds() - cpu0, time.monotonic() - t0
    ticks = max(1, int(elapsed // TICK_SECONDS))
    result = {"tick_seconds": TICK_SECONDS, "window_seconds": round(elapsed, 1), "ticks": ticks,
              "worker_cpu_seconds": round(cpu, 2), "cpu_ms_per_tick_upper_bound": round(cpu * 1000 / ticks, 1)}
    log(f"  tick: <= {result['cpu_ms_per_tick_upper_bound']} ms CPU per tick ({cpu:.2f} s in {elapsed:.0f} s)")
    return result


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
    args = parser.parse_args(argv)
    results = run(Options(citizens=args.citizens, open_cases=args.open_cases, json_path=args.json,
                          memray=args.memray),
                  log=lambda text: print(text, file=sys.stderr, flush=True))
    print(json.dumps({k: results[k] for k in ("memory", "tick", "restore", "goals", "seconds")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
