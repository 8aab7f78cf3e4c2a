"""Whole-bus benchmark: ceilings, the case processor (throughput, latency, memory) and the producer SDK, in one run.

    python -m gplx_bus.bench.run [--cases N] [--record-size B] [--json FILE] [--quick]
    gplx-bus bench ...                                   (same options)

Uses the cluster in KAFKA_BOOTSTRAP_SERVERS / SCHEMA_REGISTRY_URL, or starts a local one (and stops it). Every
section runs on fresh topics under a unique prefix, with a fixed seed; ratios are taken within this one run, so a
busy machine shifts all numbers together. Not a test: no number here is asserted anywhere.

Sections (JSON keys): machine, ceiling_a, ceiling_b, processor, processor_two_workers, latency, sdk, memory, goals.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gplx_bus.bench import bus_env, ceilings, processor_runs, sdk_runs
from topology.connection import environment

SECTIONS = ("machine", "ceiling_a", "ceiling_b", "processor", "processor_two_workers", "latency", "sdk", "memory")


@dataclass
class Options:
    cases: int = 5000
    record_size: int = 200           # ~ the mean serialized input event (196 bytes in the simulator's mix)
    json_path: Path | None = None
    quick: bool = False
    latency_rate: float = 100.0      # cases/s
    latency_seconds: float = 20.0
    open_cases: int = 20_000        # ~95k input events: a few minutes for one worker on a shared 2-core machine
    ceiling_a_records: int = 200_000
    sdk_records: int = 100_000
    bootstrap: str | None = None
    registry_url: str | None = None
    connection: object = None  # topology.connection.Connection: security settings for a cluster given

    @classmethod
    def quick_defaults(cls, **overrides) -> "Options":
        base = dict(cases=300, latency_rate=20.0, latency_seconds=5.0, open_cases=500, ceiling_a_records=20_000,
                    sdk_records=10_000, quick=True)
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)


def default_json_path() -> Path:
    return Path("bench-results") / f"bench-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"


def run(options: Options, log=print) -> dict:
    """Run every section; returns the results dict (also written as JSON)."""
    from schemas.registry import RegistryClient

    started = time.monotonic()
    results: dict = {"options": {k: (v if v is None or isinstance(v, (str, int, float, bool)) else str(v))
                                 for k, v in vars(options).items()},  # a Path or a Connection (its bootstrap)
                     "started_at": dt.datetime.now(dt.timezone.utc).isoformat()}
    log("starting the bus..." if not (options.bootstrap or environment().get("KAFKA_BOOTSTRAP_SERVERS"))
        else "using the cluster in the environment")
    bus = bus_env.open_bus(options.bootstrap, options.registry_url, options.connection)
    workdir = processor_runs.fresh_workdir()
    registry = RegistryClient(bus.registry_url, auth=bus.connection.registry_auth)
    try:
        results["machine"] = {**bus_env.machine(), "kafka": bus.kafka_version, "bus": bus.mode,
                              "clients": bus_env.versions()}
        log("ceiling A: Kafka's ProducerPerformance / ConsumerPerformance")
        results["ceiling_a"] = ceilings.ceiling_a(bus, options.ceiling_a_records, options.record_size, log)

        log(f"ceiling B: raw consume -> produce loops (the input events of {options.cases} cases)")
        sample = bus_env.workload(registry, bus_env.catalogue_for("sample."), options.cases, keep_events=True,
                                  workdir=workdir / "db-sample")
        results["ceiling_b"] = ceilings.ceiling_b(bus, sample.records, log)

        log(f"ours: the case processor on {options.cases} cases published ahead; then latency at "
            f"{options.latency_rate:g} cases/s")
        results["processor"], results["latency"] = processor_runs.throughput_and_latency(
            bus, registry, options.cases, options.latency_rate, options.latency_seconds, workdir, log)

        log(f"ours, two workers in one group: {options.cases} cases")
        results["processor_two_workers"] = processor_runs.throughput_scaled(bus, registry, options.cases, workdir,
                                                                            workers=2, log=log)

        log("producer SDK vs confluent-kafka")
        results["sdk"] = sdk_runs.sdk_throughput(bus, registry, sample.events, sample.records, log,
                                                  min_records=options.sdk_records)

        log(f"memory: {options.open_cases} open cases")
        results["memory"] = processor_runs.memory(bus, registry, options.open_cases, workdir, log)
    finally:
        registry.close()
        bus.stop()
        processor_runs.remove_workdir(workdir)
    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    results["goals"] = goals(results)
    results["seconds"] = round(time.monotonic() - started, 1)
    path = options.json_path or default_json_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    results["json_path"] = str(path)
    return results


def goals(r: dict) -> dict:
    best_b = max(r["ceiling_b"][c]["records_per_s"] for c in ("aiokafka", "kafka-python", "confluent-kafka"))
    aio = r["ceiling_b"]["aiokafka"]["records_per_s"]
    ours = r["processor"]["events_per_s"]
    cores = r["machine"]["cores"]
    return {
        "assembly_vs_ceiling_b_aiokafka": {"value": round(ours / aio, 3), "goal": ">= 0.5",
                                           "met": ours / aio >= 0.5},
        "assembly_vs_ceiling_b_aiokafka_per_cpu_s": {
            "value": round(r["processor"]["events_per_worker_cpu_s"] / r["ceiling_b"]["aiokafka"]["records_per_cpu_s"],
                           3), "goal": ">= 0.5 (CPU-normalised: robust to a shared machine)",
            "met": r["processor"]["events_per_worker_cpu_s"] / r["ceiling_b"]["aiokafka"]["records_per_cpu_s"] >= 0.5},
        "assembly_vs_ceiling_b_best_client": {"value": round(ours / best_b, 3), "goal": "(reference)",
                                              "met": None},
        "assembly_vs_ceiling_a_producer": {"value": round(ours / r["ceiling_a"]["producer"]["records_per_s"], 3),
                                           "goal": "(reference)", "met": None},
        "cases_per_s": {"value": r["processor"]["cases_per_s"], "goal": f">= 1000 on 2 cores (this machine: "
                        f"{cores})", "met": r["processor"]["cases_per_s"] >= 1000},
        "cases_per_s_two_workers": {"value": r["processor_two_workers"]["cases_per_s"],
                                    "goal": ">= 1000 (two worker processes, same machine)",
                                    "met": r["processor_two_workers"]["cases_per_s"] >= 1000},
        "latency_p99_ms": {"value": r["latency"]["p99_ms"], "goal": f"<= 200 at 100 cases/s (run at "
                           f"{r['latency']['rate_cases_per_s']:g}/s)", "met": r["latency"]["p99_ms"] <= 200},
        "sdk_vs_confluent": {"value": r["sdk"]["sdk_vs_confluent"], "goal": ">= 0.5",
                             "met": r["sdk"]["sdk_vs_confluent"] >= 0.5},
        "rss_at_1M_open_cases_MB": {"value": r["memory"]["extrapolated_VmHWM_MB_at_1M_open_cases"],
                                    "goal": "<= 300 (extrapolated, not measured)",
                                    "met": r["memory"]["extrapolated_VmHWM_MB_at_1M_open_cases"] <= 300},
    }


def render(results: dict, console=None) -> None:
    """The results as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    m = results["machine"]
    console.print(f"[bold]gplx-bus bench[/] - {m['cores']} cores, {m['cpu_model']}, {m['memory_gb']} GB, "
                  f"Kafka {m['kafka']} ({m['bus']}), Python {m['python']}; load {m['load_average_at_start'][0]:.2f}"
                  f" -> {m['load_average_at_end'][0]:.2f}; {results['seconds']}s")
    table = Table(title="throughput (records/s unless noted)")
    for col, just in (("what", "left"), ("rate", "right"), ("detail", "left")):
        table.add_column(col, justify=just)
    a, b, p, s = results["ceiling_a"], results["ceiling_b"], results["processor"], results["sdk"]
    cpu = p["cpu_from_spawn_to_last_decision"]
    table.add_row("A: Kafka ProducerPerformance", f"{a['producer']['records_per_s']:,.0f}",
                  f"{a['record_size']} B, {a['producer']['MB_per_s']} MB/s, p50/p95/p99 "
                  f"{a['producer']['p50_ms']}/{a['producer']['p95_ms']}/{a['producer']['p99_ms']} ms")
    table.add_row("A: Kafka ConsumerPerformance", f"{a['consumer']['records_per_s']:,.0f}",
                  f"{a['consumer']['MB_per_s']} MB/s")
    for client in ("aiokafka", "kafka-python", "confluent-kafka"):
        table.add_row(f"B: raw consume->produce, {client}", f"{b[client]['records_per_s']:,.0f}",
                      f"{b['records']} records in {b[client]['seconds']}s; "
                      f"{b[client]['records_per_cpu_s']:,.0f} per CPU-s")
    table.add_row("ours: case processor (events/s)", f"{p['events_per_s']:,.0f}",
                  f"{p['cases_per_s']:,.0f} cases/s; {p['events_per_worker_cpu_s']:,.0f} per worker CPU-s; {p['decided']}/{p['cases']} decided in {p['window_seconds']}s"
                  f" (+{p['startup_seconds']}s start-up); CPU s worker {cpu['worker_cpu_seconds']} / broker "
                  f"{cpu['broker_cpu_seconds']} / others {cpu['other_processes_cpu_seconds']} of "
                  f"{cpu['interval_cpu_capacity_seconds']}")
    two = results["processor_two_workers"]
    table.add_row("ours: two workers, one group (events/s)", f"{two['events_per_s']:,.0f}",
                  f"{two['cases_per_s']:,.0f} cases/s; {two['decided']}/{two['cases']} decided in "
                  f"{two['window_seconds']}s; worker CPU s {two['worker_cpu_seconds']}")
    table.add_row("SDK Publisher.send", f"{s['sdk']['records_per_s']:,.0f}", f"validate+encode+send, {s['compression']}")
    table.add_row("kafka-python raw (SDK settings)", f"{s['kafka_python_raw']['records_per_s']:,.0f}",
                  "pre-serialized")
    table.add_row("confluent-kafka (SDK settings)", f"{s['confluent_kafka']['records_per_s']:,.0f}", "pre-serialized")
    console.print(table)
    lat, mem = results["latency"], results["memory"]
    other = Table(title="latency and memory")
    other.add_column("what")
    other.add_column("value", justify="right")
    other.add_row(f"last fact -> decision at {lat['rate_cases_per_s']:g} cases/s ({lat['decided']} cases)",
                  f"p50 {lat['p50_ms']} / p95 {lat['p95_ms']} / p99 {lat['p99_ms']} ms")
    other.add_row(f"worker VmHWM, {mem['open_cases']:,} open cases",
                  f"{mem['VmHWM_MB']} MB (baseline {mem['VmHWM_MB_baseline']} MB)")
    other.add_row("RocksDB size (du GPLX_DATADIR)", f"{mem['rocksdb_MB']} MB")
    other.add_row("per open case: RSS / RocksDB", f"{mem['rss_kb_per_open_case']} / {mem['rocksdb_kb_per_open_case']} KB")
    other.add_row("1M open cases, extrapolated linearly (not measured)",
                  f"{mem['extrapolated_VmHWM_MB_at_1M_open_cases']:,} MB RSS, "
                  f"{mem['extrapolated_rocksdb_MB_at_1M_open_cases']:,} MB disk")
    console.print(other)
    goals_table = Table(title="goals (ratios from this run)")
    for col in ("goal", "value", "target", "met"):
        goals_table.add_column(col)
    for name, g in results["goals"].items():
        met = "-" if g["met"] is None else ("yes" if g["met"] else "[red]no[/]")
        goals_table.add_row(name, str(g["value"]), g["goal"], met)
    console.print(goals_table)
    if "json_path" in results:
        console.print(f"JSON: {results['json_path']}")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int)
    parser.add_argument("--record-size", type=int)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--open-cases", type=int)
    parser.add_argument("--latency-rate", type=float)
    parser.add_argument("--latency-seconds", type=float)
    args = parser.parse_args(argv)
    overrides = dict(cases=args.cases, record_size=args.record_size, json_path=args.json,
                     open_cases=args.open_cases, latency_rate=args.latency_rate,
                     latency_seconds=args.latency_seconds)
    if args.quick:
        options = Options.quick_defaults(**overrides)
    else:
        options = Options(**{k: v for k, v in overrides.items() if v is not None})
    results = run(options, log=lambda text: print(text, file=sys.stderr, flush=True))
    render(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
