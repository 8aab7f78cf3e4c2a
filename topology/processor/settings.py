"""Settings of the case processor, from the environment (the worker is started by the CLI, the demo and tests).

| variable | default | meaning |
| --- | --- | --- |
| KAFKA_BOOTSTRAP_SERVERS | 127.0.0.1:9092 | the cluster |
| SCHEMA_REGISTRY_URL | http://127.0.0.1:8081/apis/ccompat/v7 | Confluent-compatible registry |
| GPLX_TOPIC_PREFIX | (none) | prefix of every topic name (tests, parallel environments) |
| GPLX_STORE | rocksdb:// | table store; memory:// for fast tests |
| GPLX_DATADIR | $GPLX_HOME/processor/<worker> | RocksDB files of this worker (one per worker on a host) |
| GPLX_ROCKSDB_MEMORY_MB | 64 | RocksDB memory of the worker, memtables and block cache together (see store.py) |
| GPLX_TICK_SECONDS | 30 | how often the timer looks for cases past a deadline |
| GPLX_INPUT_PARTITIONS | 12 | partition count of the co-partitioned inputs (must match the topics) |
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from topology.catalogue import CASE_PROCESSOR_APP_ID


@dataclass(frozen=True)
class ProcessorSettings:
    bootstrap_servers: str
    registry_url: str
    prefix: str = ""
    store: str = "rocksdb://"
    datadir: Path = Path(".")
    tick_seconds: float = 30.0
    input_partitions: int = 12
    rocksdb_memory_mb: int = 64

    @property
    def app_id(self) -> str:
        """Consumer group and prefix of the internal (changelog) topics."""
        return self.prefix + CASE_PROCESSOR_APP_ID

    @classmethod
    def from_env(cls) -> "ProcessorSettings":
        home = Path(os.environ.get("GPLX_HOME") or Path.home() / ".cache" / "gplx-bus")
        prefix = os.environ.get("GPLX_TOPIC_PREFIX", "")
        return cls(
            bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            registry_url=os.environ.get("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081/apis/ccompat/v7"),
            prefix=prefix,
            store=os.environ.get("GPLX_STORE", "rocksdb://"),
            datadir=Path(os.environ.get("GPLX_DATADIR") or home / "processor" / f"{prefix}{os.getpid()}"),
            tick_seconds=float(os.environ.get("GPLX_TICK_SECONDS", "30")),
            input_partitions=int(os.environ.get("GPLX_INPUT_PARTITIONS", "12")),
            rocksdb_memory_mb=int(os.environ.get("GPLX_ROCKSDB_MEMORY_MB", "64")),
        )
