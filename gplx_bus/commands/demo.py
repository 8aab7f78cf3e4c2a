"""`gplx-bus demo`: the main job, end to end on a real broker, with a readable report.

Uses the cluster in the environment (KAFKA_BOOTSTRAP_SERVERS / SCHEMA_REGISTRY_URL) or starts the local stack for
the duration of the run, and leaves nothing running.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.table import Table

from deploy.local.cluster import LocalCluster

console = Console()


@contextmanager
def cluster_from_environment():
    """Yield (bootstrap servers, registry URL, where): the environment's cluster or a local one started now."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap:
        yield bootstrap, os.environ.get("SCHEMA_REGISTRY_URL"), "cluster from KAFKA_BOOTSTRAP_SERVERS"
        return
    with console.status("starting the local Kafka broker and schema registry (first run fetches jars)..."):
        cluster = LocalCluster()
        endpoints = cluster.start()
    try:
        yield (endpoints.bootstrap_servers, endpoints.schema_registry_url,
               f"local Kafka {endpoints.kafka_version} (ready in {endpoints.broker_start_seconds}s)")
    finally:
        with console.status("stopping the local stack..."):
            cluster.stop()


def command(
    messages: int = typer.Option(1000, min=1, help="Messages in the round trip."),
) -> None:
    """Run the main job: start what it needs, move events through Kafka, print a report, stop everything."""
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    with cluster_from_environment() as (bootstrap, registry_url, where):
        topic = f"demo.round-trip.{int(time.time())}"
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        admin.close()

        started = time.monotonic()
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
        for i in range(messages):
            producer.send(topic, key=f"{i % 97:012d}".encode(), value=f"event {i}".encode())
        producer.flush()
        producer.close()
        produced = time.monotonic() - started

        consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}.reader",
                                 auto_offset_reset="earliest", consumer_timeout_ms=15000)
        received = 0
        for _ in consumer:
            received += 1
            if received == messages:
                break
        consumer.close()
        total = time.monotonic() - started

    table = Table(title="gplx-bus demo: produce/consume round trip")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("cluster", where)
    table.add_row("schema registry", registry_url or "-")
    table.add_row("topic", topic)
    table.add_row("produced (acks=all, idempotent)", f"{messages}  in {produced:.2f}s")
    table.add_row("consumed", f"{received}  ({total:.2f}s round trip)")
    console.print(table)
    if received != messages:
        console.print(f"[red]lost {messages - received} messages[/]")
        raise typer.Exit(1)
