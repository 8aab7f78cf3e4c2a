"""`gplx-bus bench`: the whole-bus benchmark (ceilings, case processor, latency, SDK, memory) on a local broker it
starts itself, or on the cluster in KAFKA_BOOTSTRAP_SERVERS / SCHEMA_REGISTRY_URL.

Thin: the benchmark lives in gplx_bus/bench/run.py.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from gplx_bus.bench import run as bench
from gplx_bus.commands import options as connection_options

console = Console(stderr=True)


def command(
    cases: int = typer.Option(None, "--cases", min=1, help="Cases for the throughput run (default 5000; quick 300)."),
    record_size: int = typer.Option(None, "--record-size", min=1,
                                    help="Record size for Kafka's ProducerPerformance (default 200 B, ~ our mean)."),
    json_path: Path = typer.Option(None, "--json", help="Write results here (default bench-results/bench-<time>.json)."),
    quick: bool = typer.Option(False, "--quick", help="Small sizes: about a minute (smoke test)."),
    open_cases: int = typer.Option(None, "--open-cases", min=1, help="Open cases for the memory run (default 20000)."),
    latency_rate: float = typer.Option(None, "--latency-rate", min=1.0, help="Cases/s of the latency run (100)."),
    latency_seconds: float = typer.Option(None, "--latency-seconds", min=1.0, help="Length of the latency run (20)."),
    bootstrap: Optional[str] = connection_options.bootstrap_servers(),
    client_config: Optional[str] = connection_options.client_config(),
    registry_url: Optional[str] = connection_options.registry_url(),
    registry_user: Optional[str] = connection_options.registry_user(),
) -> None:
    """Benchmark the bus: Kafka's own tools, raw client loops, the case processor, the producer SDK. Starts a
    local broker (and registry) unless --bootstrap-servers (and --registry-url) name a cluster.

    Example: gplx-bus bench --quick
    """
    conn = connection_options.connection(bootstrap, client_config, registry_url, registry_user, "")
    overrides = dict(cases=cases, record_size=record_size, json_path=json_path, open_cases=open_cases,
                     latency_rate=latency_rate, latency_seconds=latency_seconds, bootstrap=bootstrap,
                     registry_url=registry_url, connection=conn)
    if quick:
        options = bench.Options.quick_defaults(**overrides)
    else:
        options = bench.Options(**{k: v for k, v in overrides.items() if v is not None})
    results = bench.run(options, log=lambda text: console.print(text, highlight=False))
    bench.render(results, Console())
