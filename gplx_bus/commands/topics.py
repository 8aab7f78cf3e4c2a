"""`gplx-bus topics`: list the catalogue, and make the cluster match it.

Thin on purpose: the catalogue and the diff live in `topology`; this module only reads the options, prints.
"""
from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from gplx_bus.commands import options
from topology.apply import apply as apply_plan
from topology.apply import connect, plan
from topology.catalogue import Catalogue

app = typer.Typer(no_args_is_help=True, help="List the topic catalogue and apply it to the cluster.")

@app.command("list")
def list_topics(
    acls: bool = typer.Option(False, "--acls", help="Show the ACL bindings instead of the topics."),
    prefix: str = options.topic_prefix(),
) -> None:
    """Print every catalogued topic (or its ACLs); needs no broker.

    Example: gplx-bus topics list --acls
    """
    catalogue = Catalogue.build(prefix=prefix)
    console = Console()
    if acls:
        table = Table("principal", "resource", "name", "pattern", "operation")
        for a in catalogue.acls():
            table.add_row(a.principal, a.resource_type, a.resource_name, a.pattern_type, a.operation)
    else:
        table = Table("topic", "partitions", "replicas", "cleanup", "retention.ms", "writers", "readers")
        for t in catalogue:
            table.add_row(t.name, str(t.partitions) + (" (co-part.)" if t.co_partition_group else ""),
                          str(t.replication_factor), t.configs.get("cleanup.policy", ""),
                          t.configs.get("retention.ms", ""), " ".join(sorted(t.writers)),
                          " ".join(sorted(t.readers)))
    console.print(table)


@app.command("apply")
def apply_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the diff, change nothing."),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    prefix: str = options.topic_prefix(),
) -> None:
    """Create missing topics, alter configs that differ, add partitions where safe; refuse unsafe changes.

    Example: gplx-bus topics apply --dry-run -b broker1:9093 --client-config admin.properties
    """
    conn = options.connection(bootstrap, client_config, None, None, prefix)
    catalogue = Catalogue.build(prefix=conn.prefix)
    admin = connect(conn)
    try:
        the_plan = plan(catalogue, admin)
        print(f"cluster {conn}:")
        for line in the_plan.lines():
            print("  " + line)
        if dry_run or the_plan.is_empty:
            return
        for line in apply_plan(the_plan, admin):  # raises TopologyError if the plan holds refusals
            print("  done: " + line)
    finally:
        admin.close()
