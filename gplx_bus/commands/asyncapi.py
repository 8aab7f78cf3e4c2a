"""`gplx-bus asyncapi`: write the bus's AsyncAPI 3.0 document (topics, events, who may send and receive what).

Thin on purpose: the document is built by `topology.asyncapi` from the catalogue and the Avro contracts; this
command only picks the endpoints (flags, then the same environment variables every other command reads) and
the output. Check the result with `node deploy/asyncapi/validate.mjs FILE` (see deploy/asyncapi/).
"""
from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from gplx_bus.commands import options
from topology.asyncapi import build_document, to_json, to_yaml
from topology.catalogue import Catalogue



class Format(str, Enum):
    yaml = "yaml"
    json = "json"


def command(
    output: Path = typer.Option(None, "--output", "-o", help="Write the document to FILE (default: stdout).",
                                dir_okay=False, metavar="FILE"),
    fmt: Optional[Format] = typer.Option(None, "--format", "-f", case_sensitive=False,
                                         help="Output format (default: json for a .json FILE, else yaml)."),
    bootstrap: Optional[str] = options.bootstrap_servers("--server"),  # --server: its name before 0.2
    registry_url: Optional[str] = options.registry_url(),
    prefix: str = options.topic_prefix(),
) -> None:
    """Write the AsyncAPI 3.0 document of the bus: one channel per topic, one message per Avro event, the
    send/receive operations each principal's ACLs allow.

    Example: gplx-bus asyncapi --output asyncapi.yaml
    """
    fmt = fmt.value if fmt else ("json" if output is not None and output.suffix.lower() == ".json" else "yaml")
    conn = options.connection(bootstrap, None, registry_url, None, prefix)
    document = build_document(Catalogue.build(prefix=conn.prefix), server_url=conn.bootstrap,
                              registry_url=conn.registry_url)
    text = to_json(document) if fmt == "json" else to_yaml(document)
    if output is None:
        sys.stdout.write(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output} ({fmt}): {len(document['channels'])} channels, {len(document['operations'])} "
               f"operations, {len(document['components']['messages'])} messages", err=True)
