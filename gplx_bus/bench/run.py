"""Whole-bus benchmark: ceilings, the case processor (throughput, latency, memory) and the producer SDK, in one run.

    python -m gplx_bus.bench.run [--cases N] [--record-size B] [--json FILE] [--quick]
    gplx-bus bench ...                                   (same options)

Uses the cluster in KAFKA_BOOTSTRAP_SERVERS / SCHEMA_REGISTRY_URL, or starts a local one (and stops it). Every
section runs on fresh topics under a unique prefix, with a fixed seed; ratios are taken within this one run, so a
busy machine shifts all numbers together. Not a test: no number here is asserted anywhere.

Sections (JSON keys): machine, ceiling_a, ceiling_b, ceiling_b_prime (same-work hand loop), ceiling_f (no-op faust
agent), processor, processor_unbatched / processor_batched (the gain of batching),
processor_two_workers, latency, sdk, security (secured vs plain node), memory, gateway (the HTTPS clinic gateway
against an echo endpoint on the same server), goals.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gplx_bus.bench import bus_env, ceilings, gateway, processor_runs, sdk_runs, secured
from topology.connection import environment

SECTIONS = ("machine", "ceiling_a", "ceiling_b", "ceiling_b_prime", "ceiling_f", "processor", "processor_unbatched",
            "processor_batched", "processor_two_workers",
            "latency", "sdk", "security", "memory", "gateway")


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
    sdk_rounds: int = 3              # the SDK section's rows, interleaved; medians
    security_cases: int = 1000       # per node, secured and plain
    gateway_certificates: int = 3000  # through the clinic gateway, 16 clients at a time
    bootstrap: str | None = None
    registry_url: str | None = None
    connection: object = None  # topology.connection.Connection: security settings for a cluster given

    @classmethod
    def quick_defaults(cls, **overrides) -> "Options":
        base = dict(cases=300, latency_rate=20.0, latency_seconds=5.0, open_cases=500, ceiling_a_records=20_000,
                    sdk_records=10_000, sdk_rounds=1, security_cases=100, gateway_certificates=200, quick=True)
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
        results["processor"], results["latency"], same = processor_runs.throughput_and_latency(
            bus, registry, options.cases, options.latency_rate, options.latency_seconds, workdir, log)
        results.update(same)  # ceiling_f, ceiling_b_prime: on the same published inputs as ours

        log(f"ours, one worker, batching off (GPLX_BATCH_SIZE=1) and on: {options.cases} cases, joined first")
        results["processor_unbatched"] = processor_runs.throughput_scaled(
            bus, registry, options.cases, workdir, workers=1, log=log, env={"GPLX_BATCH_SIZE": "1"})
        results["processor_batched"] = processor_runs.throughput_scaled(bus, registry, options.cases, workdir,
                                                                        workers=1, log=log)

        log(f"ours, two workers in one group: {options.cases} cases")
        results["processor_two_workers"] = processor_runs.throughput_scaled(bus, registry, options.cases, workdir,
                                                                            workers=2, log=log)

        log("producer SDK vs confluent-kafka")
        results["sdk"] = sdk_runs.sdk_throughput(bus, registry, sample.events, sample.records, log,
                                                  min_records=options.sdk_records, rounds=options.sdk_rounds)

        log(f"security: ours on a secured and on a plain node, {options.security_cases} cases each")
        results["security"] = secured.security_cost(bus, registry, options.security_cases, workdir, log)

        log(f"memory: {options.open_cases} open cases")
        results["memory"] = processor_runs.memory(bus, registry, options.open_cases, workdir, log)

        log(f"clinic gateway: {options.gateway_certificates} certificates, 16 HTTPS clients, against an echo")
        (workdir / "gateway").mkdir()
        results["gateway"] = gateway.run_on(bus.bootstrap, bus.registry_url, workdir / "gateway", clients=16,
                                            certificates=options.gateway_certificates)
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


def _ratio(value: float, ceiling: float) -> float:
    return round(value / ceiling, 3) if ceiling else 0.0


def _goal(value, goal: str, met: bool | None) -> dict:
    return {"value": value, "goal": goal, "met": met}


def goals(r: dict) -> dict:
    """Ratios against ceilings measured in this run (issue 15); "met": None marks a reference, not a goal."""
    ours = r["processor"]["events_per_s"]
    vs_b_prime = _ratio(ours, r["ceiling_b_prime"]["events_per_s"])
    vs_a = _ratio(ours, r["ceiling_a"]["producer"]["records_per_s"])
    sdk = r["sdk"]
    sdk_vs_raw = sdk["sdk_vs_kafka_python_raw"]
    memory = r["memory"]["extrapolated_VmHWM_MB_at_1M_open_cases"]
    return {
        "ours_vs_ceiling_b_prime": _goal(vs_b_prime, ">= 0.5 (same-work hand loop)", vs_b_prime >= 0.5),
        "ours_vs_ceiling_b_prime_per_cpu_s": _goal(
            _ratio(r["processor"]["events_per_worker_cpu_s"], r["ceiling_b_prime"]["events_per_cpu_s"]),
            ">= 0.5 (events per CPU-second of the worker / of the hand loop: robust to a shared machine)",
            _ratio(r["processor"]["events_per_worker_cpu_s"], r["ceiling_b_prime"]["events_per_cpu_s"]) >= 0.5),
        "ours_vs_ceiling_a_producer": _goal(vs_a, ">= 0.04 (Kafka's ProducerPerformance)", vs_a >= 0.04),
        "ours_vs_ceiling_f": _goal(_ratio(ours, r["ceiling_f"]["events_per_s"]),
                                   "(reported: a no-op faust agent, faust's own ceiling)", None),
        "ours_vs_ceiling_b_aiokafka": _goal(_ratio(ours, r["ceiling_b"]["aiokafka"]["records_per_s"]),
                                            "(reference: a one-in-one-out loop, no work)", None),
        "batching_gain": _goal(_ratio(r["processor_batched"]["events_per_s"],
                                      r["processor_unbatched"]["events_per_s"]),
                               "(reported: one worker, batches of GPLX_BATCH_SIZE against one event at a time)", None),
        "cases_per_s": _goal(r["processor"]["cases_per_s"], "(reference)", None),
        "cases_per_s_two_workers": _goal(r["processor_two_workers"]["cases_per_s"], "(reference)", None),
        "latency_p99_ms": _goal(r["latency"]["p99_ms"], f"<= 200 at 100 cases/s (run at "
                                f"{r['latency']['rate_cases_per_s']:g}/s)", r["latency"]["p99_ms"] <= 200),
        "sdk_vs_kafka_python_raw": _goal(sdk_vs_raw, ">= 0.8 (same records, topics, header, producer settings)", sdk_vs_raw >= 0.8),
        "sdk_vs_confluent": _goal(sdk["sdk_vs_confluent"], "(reference)", None),
        "secured_vs_plain_throughput": _goal(r["security"]["secured_vs_plain_throughput"],
                                             ">= 0.8 (SASL_SSL + SCRAM + ACLs against plaintext)",
                                             r["security"]["secured_vs_plain_throughput"] >= 0.8),
        "rss_at_1M_open_cases_MB": _goal(memory, "<= 300 (extrapolated here; measured by make bench-scale)",
                                         memory <= 300),
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
    bp, f = results["ceiling_b_prime"], results["ceiling_f"]
    table.add_row("B′: same-work hand loop (events/s)", f"{bp['events_per_s']:,.0f}",
                  f"aiokafka batched, assembler.handle, state in a dict; {bp['decisions']} decisions, "
                  f"{bp['events_per_cpu_s']:,.0f} per CPU-s")
    table.add_row("F: no-op faust agent (events/s)", f"{f['events_per_s']:,.0f}", "consume and ack only")
    table.add_row("ours: case processor (events/s)", f"{p['events_per_s']:,.0f}",
                  f"{p['cases_per_s']:,.0f} cases/s; {p['events_per_worker_cpu_s']:,.0f} per worker CPU-s; {p['decided']}/{p['cases']} decided in {p['window_seconds']}s"
                  f" (+{p['startup_seconds']}s start-up); CPU s worker {cpu['worker_cpu_seconds']} / broker "
                  f"{cpu['broker_cpu_seconds']} / others {cpu['other_processes_cpu_seconds']} of "
                  f"{cpu['interval_cpu_capacity_seconds']}")
    for name, what in (("processor_unbatched", "one event at a time"), ("processor_batched", "batched")):
        row = results[name]
        table.add_row(f"ours, joined first, {what} (events/s)", f"{row['events_per_s']:,.0f}",
                      f"{row['decided']}/{row['cases']} decided in {row['window_seconds']}s")
    two = results["processor_two_workers"]
    table.add_row("ours: two workers, one group (events/s)", f"{two['events_per_s']:,.0f}",
                  f"{two['cases_per_s']:,.0f} cases/s; {two['decided']}/{two['cases']} decided in "
                  f"{two['window_seconds']}s; worker CPU s {two['worker_cpu_seconds']}")
    table.add_row("SDK Publisher.send", f"{s['sdk']['records_per_s']:,.0f}", f"validate+encode+send, {s['compression']}")
    table.add_row("kafka-python raw (SDK settings)", f"{s['kafka_python_raw']['records_per_s']:,.0f}",
                  "the SDK's bytes, topics and header")
    table.add_row("confluent-kafka (SDK settings)", f"{s['confluent_kafka']['records_per_s']:,.0f}",
                  "the SDK's bytes, topics and header")
    sec = results["security"]
    for mode in ("plain", "secured"):
        table.add_row(f"ours on a fresh {mode} node (events/s)", f"{sec[mode]['events_per_s']:,.0f}",
                      f"{sec['cases']} cases; the node started in {sec[mode]['broker_start_seconds']} s")
    gw = results.get("gateway")
    if gw:
        table.add_row("HTTPS echo endpoint, 16 clients (req/s)", f"{gw['echo']['per_s']:,.0f}",
                      f"the gateway's HTTP ceiling; p99 {gw['echo']['p99_ms']} ms")
        table.add_row("clinic gateway, 16 clients (certificates/s)", f"{gw['gateway']['per_s']:,.0f}",
                      f"{gw['share_of_http_ceiling']} of the echo; p99 {gw['gateway']['p99_ms']} ms; acks=all")
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
