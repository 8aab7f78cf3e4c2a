"""Options several commands share, declared once so their flags, defaults and environment variables agree."""
from __future__ import annotations

import typer


def bootstrap_servers():
    return typer.Option("localhost:9092", "--bootstrap-servers", "-b", envvar="KAFKA_BOOTSTRAP_SERVERS",
                        help="host:port of the Kafka cluster.")


def registry_url():
    return typer.Option("http://127.0.0.1:8081/apis/ccompat/v7", "--registry-url", envvar="SCHEMA_REGISTRY_URL",
                        help="Confluent-compatible schema registry URL.")


def topic_prefix():
    return typer.Option("", "--prefix", help="Topic name prefix (e.g. for a test environment).")


def verbose():
    return typer.Option(False, "--verbose", "-v", help="Debug logging on stderr.")
