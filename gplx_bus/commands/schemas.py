"""`gplx-bus schemas register|check|release`: the event contracts against the registry and their last release.

Subjects follow TopicRecordNameStrategy (`<topic>-<record full name>`); the topics and the events each carries
come from the topic catalogue, so a subject exists exactly where an event can travel.
"""
from __future__ import annotations

from enum import Enum
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from gplx_bus.commands import options
from schemas import compat, loader
from schemas.registry import RegistryClient
from topology import contracts
from topology.catalogue import Catalogue

app = typer.Typer(no_args_is_help=True)

#: The registry's compatibility levels (Confluent's names; Apicurio's ccompat API takes the same).
Level = Enum("Level", {name: name for name in ("BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE",
                                                "FULL", "FULL_TRANSITIVE", "NONE")}, type=str)
console = Console()

def _catalogue(prefix: str) -> Catalogue:
    return Catalogue.build(prefix=prefix, replication_factor=1)


@app.command()
def register(
    registry_url: Optional[str] = options.registry_url("--url"),  # --url: its name before 0.2
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
    level: Level = typer.Option(compat.LEVEL, help="Compatibility level set on every subject."),
) -> None:
    """Register every event schema under each topic that carries it, and set the subject's compatibility.

    Example: gplx-bus schemas register --registry-url http://127.0.0.1:8081/apis/ccompat/v7
    """
    conn = options.connection(None, None, registry_url, registry_user, prefix)
    table = Table("subject", "schema id", "compatibility")
    with RegistryClient(conn.registry_url, auth=conn.registry_auth) as client:
        for subject, schema_id in contracts.register(client, _catalogue(conn.prefix), level.value):
            table.add_row(subject, str(schema_id), level.value)
    console.print(table)


@app.command()
def check(
    registry: bool = typer.Option(False, "--registry", help="Also ask the registry whether each subject accepts "
                                                           "the current schema."),
    registry_url: Optional[str] = options.registry_url("--url"),  # --url: its name before 0.2
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
    level: Level = typer.Option("FULL",
                                help="Level for the offline check against schemas/released."),
) -> None:
    """Check every schema against its last released version (offline), and with --registry against the registry.

    Example: gplx-bus schemas check --registry
    """
    problems = []
    for name, messages in compat.check_released(level.value).items():
        problems += messages
        status = "[red]incompatible[/]" if messages else (
            "[green]ok[/]" if compat.released_schema(name) else "[yellow]never released[/]")
        console.print(f"{loader.short_name(name):<24} {status}")
    if registry:
        conn = options.connection(None, None, registry_url, registry_user, prefix)
        with RegistryClient(conn.registry_url, auth=conn.registry_auth) as client:
            for subject, event in contracts.subjects(_catalogue(conn.prefix)):
                ok, messages = client.check_compatibility(subject, loader.event_schema_text(event))
                if not ok:
                    problems += [f"{subject}: {m}" for m in messages] or [f"{subject}: refused by the registry"]
        console.print(f"registry {client.url}: " + ("[green]ok[/]" if not problems else "[red]see below[/]"))
    for message in problems:
        typer.echo(f"  {message}")  # plain: one message per line, never wrapped, greppable in CI logs
    if problems:
        raise typer.Exit(1)


@app.command()
def release(
    yes: bool = typer.Option(False, "--yes", help="Confirm: overwrite schemas/released with the current schemas."),
) -> None:
    """Record the current schemas as the released versions (do this when a version ships, then commit).

    Example: gplx-bus schemas release --yes
    """
    if not yes:
        raise typer.BadParameter("release overwrites schemas/released/*.avsc; pass --yes to confirm")
    for path in compat.release():
        console.print(f"released {path.name}")
