"""Options several commands share, declared once so their flags, defaults and environment variables agree."""
from __future__ import annotations

import typer


def check_bootstrap(value: str | None) -> str | None:
    """host:port[,host:port...] with a port 1-65535, said in one line before any client is built."""
    if value is None:
        return value
    for server in value.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536 or ":" in host.strip("[]"):
            raise typer.BadParameter(f"{server.strip()!r} is not host:port (e.g. 127.0.0.1:9092; several: "
                                     f"a:9092,b:9092)")
    return value


def bootstrap_servers():
    return typer.Option("localhost:9092", "--bootstrap-servers", "-b", envvar="KAFKA_BOOTSTRAP_SERVERS",
                        help="host:port of the Kafka cluster.", callback=check_bootstrap)


def registry_url():
    return typer.Option("http://127.0.0.1:8081/apis/ccompat/v7", "--registry-url", envvar="SCHEMA_REGISTRY_URL",
                        help="Confluent-compatible schema registry URL.")


def topic_prefix():
    return typer.Option("", "--prefix", help="Topic name prefix (e.g. for a test environment).")


def verbose():
    return typer.Option(False, "--verbose", "-v", help="Debug logging on stderr.")
