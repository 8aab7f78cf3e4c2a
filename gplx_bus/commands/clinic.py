"""`gplx-bus clinic publish FILE`: import a hospital system's health-certificate export (CSV or JSON).

Prints one line per row (accepted, or rejected with the field and rule), and can write the rejected rows, with
their reasons, to a file to fix and re-import. Exit status 1 when any row was rejected.
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from gplx_bus.commands import options
from producers.adapters import clinic
from producers.sdk import Publisher
from topology.catalogue import Catalogue

app = typer.Typer(no_args_is_help=True, help="Clinics: publish health certificates from an export file.")


@app.callback()
def group() -> None:
    """Clinics: publish health certificates from a hospital system's export."""  # a group even with one command, so `clinic <command>` keeps working


class ExportFormat(str, Enum):
    csv = "csv"
    json = "json"


@app.command("publish")
def publish(
    file: Path = typer.Argument(..., help="CSV or JSON export (see producers/adapters/samples/)."),
    fmt: Optional[ExportFormat] = typer.Option(None, "--format", help="csv or json (default: from the file name)."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding of the export, e.g. utf-8, cp1258 "
                                 "(Windows Vietnamese), cp1252; a UTF-16 file with a BOM is recognised."),
    rejects: Path = typer.Option(None, "--rejects", help="Write rejected rows and their reasons here."),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url(),
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
) -> None:
    """Publish each row as a HealthCertificate; a bad row is reported and does not stop the others.

    Example: gplx-bus clinic publish export.csv --rejects rejected.csv
    """
    fmt = clinic.detect_format(file, fmt.value if fmt else None)
    rows = clinic.load_rows(file, fmt, encoding)  # the file is checked before the bus is contacted
    conn = options.connection(bootstrap, client_config, registry_url, registry_user, prefix)
    with Publisher(conn, conn.registry_url, catalogue=Catalogue.build(prefix=conn.prefix),
                   client_id="gplx-clinic-import",
                   connect_timeout_s=10) as publisher:
        results = clinic.publish_rows(rows, publisher)
    for result in results:
        typer.echo(result.line())
    rejected = sum(not r.accepted for r in results)
    duplicates = sum(r.duplicate_of is not None for r in results)
    sent = len(results) - rejected - duplicates
    summary = f"{len(results)} rows: {sent} accepted, {rejected} rejected"
    if duplicates:
        summary += f", {duplicates} duplicate(s) of earlier rows not sent again"
    if rejected and rejects is not None:
        clinic.write_rejects(rejects, results, fmt)
        summary += f" (written to {rejects})"
    typer.echo(summary)
    if rejected:
        raise typer.Exit(1)
