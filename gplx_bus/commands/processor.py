"""`gplx-bus processor run`: one worker of the faust case processor (run several for more throughput)."""
from __future__ import annotations

import sys
from enum import Enum
from typing import Optional

import typer

from gplx_bus.commands import options
from topology.connection import Connection, environment

app = typer.Typer(no_args_is_help=True)

#: How long the cluster may take to answer before the worker starts (faust itself would retry and then print a
#: traceback); a cluster that answers at all answers a metadata request in well under this.
PROBE_TIMEOUT_MS = 5_000


class Store(str, Enum):
    rocksdb = "rocksdb://"
    memory = "memory://"


@app.command()
def run(
    store: Store = typer.Option(Store.rocksdb, envvar="GPLX_STORE",
                                help="Table store: rocksdb:// (on disk, for production) or memory:// (tests)."),
    data_dir: str = typer.Option("", "--data-dir", "--datadir", envvar="GPLX_DATADIR",
                                 help="RocksDB folder of this worker (default $GPLX_HOME/processor/<prefix><pid>)."),
    tick_seconds: float = typer.Option(30.0, envvar="GPLX_TICK_SECONDS", min=0.1, max=86400,
                                       help="How often deadlines are checked, seconds (0.1 to 86400)."),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url(),
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
) -> None:
    """Assemble, decide and route renewal cases until interrupted (settings also from the environment).

    Example: gplx-bus processor run --store memory:// -b 127.0.0.1:9092
    """
    conn = options.connection(bootstrap, client_config, registry_url, registry_user, prefix)
    require_cluster(conn)
    worker_env = {**environment(), "GPLX_STORE": store.value, "GPLX_TICK_SECONDS": str(tick_seconds)}
    if data_dir:
        worker_env["GPLX_DATADIR"] = data_dir
    from topology.processor.__main__ import main
    from topology.processor.settings import ProcessorSettings

    sys.argv = [sys.argv[0], "worker"]
    main(ProcessorSettings.from_env(worker_env, connection=conn))


def require_cluster(conn: Connection) -> None:
    """One metadata round trip before faust starts: an unreachable cluster is one line (TopologyError), not
    faust's retries and traceback."""
    from topology.apply import connect

    connect(conn, timeout_ms=PROBE_TIMEOUT_MS).close()
