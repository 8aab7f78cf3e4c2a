"""`gplx-bus processor run`: one worker of the faust case processor (run several for more throughput)."""
from __future__ import annotations

import sys
from typing import Optional

import typer

from gplx_bus.commands import options
from topology.connection import environment

app = typer.Typer(no_args_is_help=True)


@app.command()
def run(
    store: str = typer.Option("rocksdb://", envvar="GPLX_STORE", help="Table store: rocksdb:// or memory://."),
    datadir: str = typer.Option("", envvar="GPLX_DATADIR", help="RocksDB folder of this worker."),
    tick_seconds: float = typer.Option(30.0, envvar="GPLX_TICK_SECONDS", min=0.1, max=86400,
                                       help="How often deadlines are checked, seconds (0.1 to 86400)."),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url(),
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
) -> None:
    """Assemble, decide and route renewal cases until interrupted (settings also from the environment)."""
    conn = options.connection(bootstrap, client_config, registry_url, registry_user, prefix)
    worker_env = {**environment(), "GPLX_STORE": store, "GPLX_TICK_SECONDS": str(tick_seconds)}
    if datadir:
        worker_env["GPLX_DATADIR"] = datadir
    from topology.processor.__main__ import main
    from topology.processor.settings import ProcessorSettings

    sys.argv = [sys.argv[0], "worker"]
    main(ProcessorSettings.from_env(worker_env, connection=conn))
