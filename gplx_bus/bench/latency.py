"""The latency section alone (last fact -> decision at a steady rate), variants interleaved on one bus:

    python -m gplx_bus.bench.latency --rate 100 --seconds 20 --rounds 2 \\
        --variant base:PYTHONSAFEPATH=1,PYTHONPATH=/tmp/base --variant ours:

Each round runs every variant once, in turn, each on its own topics and worker: `--warm-cases` cases published ahead
and processed first (as `gplx-bus bench` runs latency on the worker its throughput section warmed), then
`processor_runs.steady_latency`. A variant is `name:VAR=VALUE,VAR=VALUE`, the worker's extra environment (processor
settings, or another checkout's code on the same bus: `git archive HEAD | tar -x -C /tmp/base`, then PYTHONPATH to it
with PYTHONSAFEPATH=1, else the current directory comes first; PYTHONPATH comes before the editable install).
Interleaving is the point: the machine is shared, its load varies by the minute, and only runs close in time
compare. The load average and the CPU used (worker, broker, the rest of the machine) are printed beside every run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from gplx_bus.bench import bus_env, processor_runs


def one_run(bus, registry, workdir: Path, name: str, env: dict, rate: float, seconds: float, warm_cases: int,
            py_spy: Path | None = None, log=print) -> dict:
    prefix = bus_env.unique_prefix("lat")
    catalogue = bus_env.create_catalogue(bus, prefix)
    warm = bus_env.workload(registry, catalogue, warm_cases, workdir=workdir / f"db-warm-{prefix}")
    worker = processor_runs.Worker(bus, prefix, workdir, f"latency-{name}", env=env).start()
    watcher = processor_runs.CaseWatcher(bus, catalogue, registry)
    try:
        bus_env.bulk_load(bus, catalogue, warm.records)
        watcher.wait(lambda: len(watcher.decisions) >= warm.decisions_expected, worker, timeout_s=300)
        load_before = os.getloadavg()[0]
        meter = processor_runs.CpuMeter(worker, bus).start()
        spy = None
        if py_spy:  # pip install -e '.[profile]'; every thread's stacks, waiting ones too (--idle)
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-r", "50", "--idle",
                                    "-f", "raw", "-o", f"{py_spy}-{name}.txt", "-d", str(int(seconds) + 3),
                                    "--pid", str(worker.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = processor_runs.steady_latency(bus, registry, catalogue, worker, watcher, rate, seconds,
                                               workdir / f"db-{prefix}", log=lambda *_: None)
        result["cpu"] = meter.stop()
        if spy:
            spy.wait()
        result.update(variant=name, load_average=[round(load_before, 2), round(os.getloadavg()[0], 2)],
                      worker_cpu_seconds=round(worker.cpu_seconds(), 1))
        rtt = result["inputs_broker_rtt_ms"]
        log(f"  {name:>10}: p50 {result['p50_ms']:>5} p95 {result['p95_ms']:>5} p99 {result['p99_ms']:>5} "
            f"max {result['max_ms']:>5} ms (inputs' broker round trip {rtt['median_of_p50s']} / max p99 "
            f"{rtt['max_of_p99s']} ms; {result['decided']}/{result['cases']} decided), load "
            f"{result['load_average'][0]} -> {result['load_average'][1]}, cpu {result['cpu']}")
        return result
    finally:
        watcher.close()
        worker.stop()
        bus_env.delete_topics(bus, prefix)


def _variant(text: str) -> tuple[str, dict]:
    name, _, settings = text.partition(":")
    env = dict(pair.split("=", 1) for pair in settings.split(",") if pair)
    return name, env


def main(argv: list[str] | None = None) -> None:
    from schemas.registry import RegistryClient

    parser = argparse.ArgumentParser(description="Last fact -> decision latency alone, variants interleaved.")
    parser.add_argument("--rate", type=float, default=100.0, help="cases per second (default 100)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measured run (default 20)")
    parser.add_argument("--warm-cases", type=int, default=1000, help="cases processed before each run")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--variant", action="append", type=_variant, default=[],
                        help="name:VAR=VALUE,... (the worker's extra environment); default one variant 'ours'")
    parser.add_argument("--json", type=Path, help="write every run's result here")
    parser.add_argument("--py-spy", type=Path, help="record the worker's stacks during each run into PREFIX-<variant>.txt")
    args = parser.parse_args(argv)
    variants = args.variant or [("ours", {})]
    bus = bus_env.open_bus()
    workdir = processor_runs.fresh_workdir()
    registry = RegistryClient(bus.registry_url, auth=bus.connection.registry_auth)
    runs = []
    try:
        for n in range(args.rounds):
            print(f"round {n + 1}/{args.rounds} at {time.strftime('%H:%M:%S', time.gmtime())} UTC", flush=True)
            # Each round starts with the next variant: the bus's first run finds a broker just started (its JVM
            # compiling; twice the broker CPU of later runs was measured), which must not always be the same one's.
            for name, env in variants[n % len(variants):] + variants[:n % len(variants)]:
                runs.append(one_run(bus, registry, workdir, name, env, args.rate, args.seconds, args.warm_cases,
                                    args.py_spy))
    finally:
        registry.close()
        bus.stop()
        processor_runs.remove_workdir(workdir)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
