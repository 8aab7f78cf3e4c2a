"""`gplx-bus acls apply [--dry-run]`: the catalogue's ACLs onto the cluster (the diff lives in `topology.acls`).

The admin login comes from a Kafka client config file (`--command-config`, as Kafka's own tools take it); without
one, a secured local stack (`gplx-bus local up --secure`) lends its admin's file.
"""
from __future__ import annotations

from pathlib import Path

import typer

from deploy.local.cluster import load_state
from deploy.local.security import ADMIN_USER, client_kwargs
from deploy.local.settings import gplx_home
from gplx_bus.commands import options
from topology import acls as acl_plan
from topology.apply import TopologyError
from topology.catalogue import Catalogue

app = typer.Typer(no_args_is_help=True, help="The catalogue's ACLs: apply them to the cluster.")


def command_config_option():
    return typer.Option(None, "--command-config", envvar="GPLX_COMMAND_CONFIG", dir_okay=False,
                        help="Kafka client config file of an admin login (default: the secured local stack's).")


def bootstrap_option():
    return typer.Option(None, "--bootstrap-servers", "-b", envvar="KAFKA_BOOTSTRAP_SERVERS",
                        help="host:port of the Kafka cluster (default: the config file's, or the local stack's).")


def connect_admin(command_config: Path | None, bootstrap: str | None):
    """A KafkaAdminClient logged in with the given config file, or the secured local stack's admin file."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    if command_config is None:
        state = load_state(gplx_home())
        if state is None or state.secure_dir is None:
            raise TopologyError("no admin login: give --command-config FILE (a Kafka client config of a super "
                                "user), or start a secured local stack with `gplx-bus local up --secure`")
        command_config = state.client_config(ADMIN_USER)
        bootstrap = bootstrap or state.bootstrap_servers
    settings = client_kwargs(command_config)
    bootstrap = bootstrap or settings.get("bootstrap_servers")
    if not bootstrap:
        raise TopologyError(f"no broker address: set KAFKA_BOOTSTRAP_SERVERS, -b, or bootstrap.servers in "
                            f"{command_config}")
    settings["bootstrap_servers"] = bootstrap
    try:
        return KafkaAdminClient(client_id="gplx-bus-admin", bootstrap_timeout_ms=10_000, **settings)
    except (KafkaError, OSError) as exc:
        raise TopologyError(f"cannot reach Kafka at {bootstrap} with the login in {command_config} "
                            f"({type(exc).__name__}): is the broker up, and are the address, password and CA "
                            "right? (`gplx-bus local status` shows the local stack)") from None


@app.command("apply")
def apply_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the diff, change nothing."),
    prefix: str = options.topic_prefix(),
    command_config: Path = command_config_option(),
    bootstrap: str = bootstrap_option(),
) -> None:
    """Add the bindings the catalogue implies, remove managed ones it no longer implies, leave the rest alone."""
    catalogue = Catalogue.build(prefix=prefix)
    admin = connect_admin(command_config, bootstrap)
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
