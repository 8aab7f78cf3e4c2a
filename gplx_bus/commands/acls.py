"""`gplx-bus acls apply [--dry-run]`: the catalogue's ACLs onto the cluster (the diff lives in `topology.acls`).

The admin login comes from a Kafka client config file (`--client-config`, the file Kafka's own tools take as
`--command-config`); without
one, a secured local stack (`gplx-bus local up --secure`) lends its admin's file.
"""
from __future__ import annotations

from typing import Optional

import typer

from deploy.local.cluster import load_state
from deploy.local.security import ADMIN_USER
from deploy.local.settings import gplx_home
from gplx_bus.commands import options
from topology import acls as acl_plan
from topology import apply as topology_apply
from topology.apply import TopologyError
from topology.catalogue import Catalogue

app = typer.Typer(no_args_is_help=True, help="The catalogue's ACLs: apply them to the cluster.")


def connect_admin(bootstrap: str | None, client_config: str | None):
    """A KafkaAdminClient logged in with the client config file (--client-config / KAFKA_CLIENT_CONFIG, as Kafka's
    own --command-config), or without one the secured local stack's admin file."""
    if client_config is None:
        state = load_state(gplx_home())
        if state is None or state.secure_dir is None:
            raise TopologyError("no admin login: give --client-config FILE (a Kafka client config of a super "
                                "user), or start a secured local stack with `gplx-bus local up --secure`")
        client_config = str(state.client_config(ADMIN_USER))
        bootstrap = bootstrap or state.bootstrap_servers
    return topology_apply.connect(options.connection(bootstrap, client_config, None, None, ""))


@app.command("apply")
def apply_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the diff, change nothing."),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    prefix: str = options.topic_prefix(),
) -> None:
    """Add the bindings the catalogue implies, remove managed ones it no longer implies, leave the rest alone.

    Example: gplx-bus acls apply --dry-run --client-config admin.properties -b broker1:9093
    """
    catalogue = Catalogue.build(prefix=prefix)
    admin = connect_admin(bootstrap, client_config)
    try:
        the_plan = acl_plan.plan(catalogue, admin)
        for line in the_plan.lines():
            print("  " + line)
        if dry_run or the_plan.is_empty:
            return
        for line in acl_plan.apply(the_plan, catalogue, admin):
            print("  done: " + line)
    finally:
        admin.close()
