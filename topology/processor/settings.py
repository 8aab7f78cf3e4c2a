"""Settings of the case processor (the worker is started by the CLI, the demo and tests).

`from_env(environ)` reads the mapping it is given (the CLI passes its own; `python -m topology.processor` passes
the process environment); the connection (cluster, security, registry, prefix) is `topology.connection`'s:

| variable | default | meaning |
| --- | --- | --- |
| KAFKA_BOOTSTRAP_SERVERS | 127.0.0.1:9092 | the cluster |
| KAFKA_CLIENT_CONFIG | (none) | Kafka client properties file: security.protocol, SASL, TLS (see connection.py) |
| SCHEMA_REGISTRY_URL | http://127.0.0.1:8081/apis/ccompat/v7 | Confluent-compatible registry |
| SCHEMA_REGISTRY_USER, SCHEMA_REGISTRY_PASSWORD | (none) | the registry's basic-auth credentials |
| GPLX_TOPIC_PREFIX | (none) | prefix of every topic name (tests, parallel environments) |
| GPLX_STORE | rocksdb:// | table store; memory:// for fast tests |
| GPLX_DATADIR | $GPLX_HOME/processor/<worker> | RocksDB files of this worker (one per worker on a host) |
| GPLX_ROCKSDB_MEMORY_MB | 64 | RocksDB memory of the worker, memtables and block cache together (see store.py) |
| GPLX_TICK_SECONDS | 30 | how often the timer looks for cases past a deadline |
| GPLX_INPUT_PARTITIONS | 12 | partition count of the co-partitioned inputs (must match the topics) |
| GPLX_BATCH_SIZE | 500 | inputs the agent takes at a time (one table write per citizen per batch; see app.py) |
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from topology.catalogue import CASE_PROCESSOR_APP_ID
from topology.connection import Connection


@dataclass(frozen=True)
class ProcessorSettings:
    connection: Connection = field(default_factory=Connection)
    store: str = "rocksdb://"
    datadir: Path = Path(".")
    tick_seconds: float = 30.0
    input_partitions: int = 12
    rocksdb_memory_mb: int = 64
    batch_size: int = 500

    @property
    def bootstrap_servers(self) -> str:
        return self.connection.bootstrap

    @property
    def registry_url(self) -> str:
        return self.connection.registry_url

    @property
    def prefix(self) -> str:
        return self.connection.prefix

    @property
    def app_id(self) -> str:
        """Consumer group and prefix of the internal (changelog) topics."""
        return self.prefix + CASE_PROCESSOR_APP_ID

    @classmethod
    def from_env(cls, environ: Mapping[str, str], connection: Connection | None = None) -> "ProcessorSettings":
        """The worker's settings from `environ`; the connection from it too unless one is given."""
        connection = connection or Connection.from_env(environ)
        home = Path(environ.get("GPLX_HOME") or Path.home() / ".cache" / "gplx-bus")
        return cls(
            connection=connection,
            store=environ.get("GPLX_STORE", "rocksdb://"),
            datadir=Path(environ.get("GPLX_DATADIR") or home / "processor" / f"{connection.prefix}{os.getpid()}"),
            tick_seconds=float(environ.get("GPLX_TICK_SECONDS", "30")),
            input_partitions=int(environ.get("GPLX_INPUT_PARTITIONS", "12")),
            rocksdb_memory_mb=int(environ.get("GPLX_ROCKSDB_MEMORY_MB", "64")),
            batch_size=int(environ.get("GPLX_BATCH_SIZE", "500")),
        )
