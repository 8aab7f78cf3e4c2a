"""`gplx-bus processor run`: one worker of the faust case processor (run several for more throughput)."""
from __future__ import annotations

import os
import sys

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def run(
    store: str = typer.Option("rocksdb://", envvar="GPLX_STORE", help="Table store: rocksdb:// or memory://."),
    datadir: str = typer.Option("", envvar="GPLX_DATADIR", help="RocksDB folder of this worker."),
    prefix: str = typer.Option("", envvar="GPLX_TOPIC_PREFIX", help="Topic name prefix."),
    tick_seconds: float = typer.Option(30.0, envvar="GPLX_TICK_SECONDS", min=0.1, max=86400,
                                       help="How often deadlines are checked, seconds (0.1 to 86400)."),
) -> None:
    """Assemble, decide and route renewal cases until interrupted (settings also from the environment)."""
    os.environ.update(GPLX_STORE=store, GPLX_TOPIC_PREFIX=prefix, GPLX_TICK_SECONDS=str(tick_seconds))
    if datadir:
        os.environ["GPLX_DATADIR"] = datadir
    from topology.processor.__main__ import main

    sys.argv = [sys.argv[0], "worker"]
    main()
