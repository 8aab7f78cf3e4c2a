"""`gplx-bus asyncapi`: write the bus's AsyncAPI 3.0 document (topics, events, who may send and receive what).

Thin on purpose: the document is built by `topology.asyncapi` from the catalogue and the Avro contracts; this
command only picks the endpoints (flags, then the same environment variables every other command reads) and
the output. Check the result with `node deploy/asyncapi/validate.mjs FILE` (see deploy/asyncapi/).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from topology.asyncapi import build_document, to_json, to_yaml
from topology.catalogue import Catalogue

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_REGISTRY = "http://127.0.0.1:8081/apis/ccompat/v7"
FORMATS = ("yaml", "json")


def command(
    output: Path = typer.Option(None, "--output", "-o", help="Write the document to FILE (default: stdout).",
                                dir_okay=False, metavar="FILE"),
    fmt: str = typer.Option(None, "--format", "-f", metavar="yaml|json",
                            help="Output format (default: json for a .json FILE, else yaml)."),
    server: str = typer.Option(None, "--server", metavar="URL", envvar="KAFKA_BOOTSTRAP_SERVERS",
                               help=f"Kafka bootstrap servers, host:port[,host:port] (default: "
                                    f"$KAFKA_BOOTSTRAP_SERVERS, else {DEFAULT_BOOTSTRAP})."),
    prefix: str = typer.Option("", help="Topic name prefix (as used by `gplx-bus topics apply`)."),
) -> None:
    """Write the AsyncAPI 3.0 document of the bus: one channel per topic, one message per Avro event, the
    send/receive operations each principal's ACLs allow."""
    fmt = (fmt or ("json" if output is not None and output.suffix.lower() == ".json" else "yaml")).lower()
    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of: {', '.join(FORMATS)}", param_hint="--format")
    registry = os.environ.get("SCHEMA_REGISTRY_URL") or DEFAULT_REGISTRY
    try:
        document = build_document(Catalogue.build(prefix=prefix), server_url=server or DEFAULT_BOOTSTRAP,
                                  registry_url=registry)
    except ValueError as exc:  # bad --server, or a catalogue naming an event without a schema
        typer.echo(f"gplx-bus: error: {exc}", err=True)
        raise typer.Exit(2)
    text = to_json(document) if fmt == "json" else to_yaml(document)
    if output is None:
        sys.stdout.write(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output} ({fmt}): {len(document['channels'])} channels, {len(document['operations'])} "
               f"operations, {len(document['components']['messages'])} messages", err=True)
