"""Settings of the local stack, read from the environment so the CLI, the tests and the benchmarks agree.

| variable | default | meaning |
| --- | --- | --- |
| GPLX_HOME | ~/.cache/gplx-bus | jars (fetched once) and the state of `gplx-bus local up` |
| GPLX_KAFKA_VERSION | 4.1.1 | Apache Kafka version fetched from Maven Central |
| GPLX_KAFKA_HEAP | -Xms256m -Xmx768m | broker JVM heap options |
| GPLX_MAVEN_ARGS | (none) | extra Maven arguments, e.g. `-s mirror-settings.xml` for an in-house mirror |
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_KAFKA_VERSION = "4.1.1"


def gplx_home() -> Path:
    return Path(os.environ.get("GPLX_HOME") or Path.home() / ".cache" / "gplx-bus")


def kafka_version() -> str:
    return os.environ.get("GPLX_KAFKA_VERSION") or DEFAULT_KAFKA_VERSION


def kafka_heap_opts() -> list[str]:
    return (os.environ.get("GPLX_KAFKA_HEAP") or "-Xms256m -Xmx768m").split()


def maven_args() -> list[str]:
    return (os.environ.get("GPLX_MAVEN_ARGS") or "").split()
