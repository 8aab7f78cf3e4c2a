"""`gplx-bus local up|down|status`: the local Kafka broker and schema registry for development and the demo."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import typer
from rich.console import Console

from deploy.local.cluster import DetachedNodes, LocalCluster, load_state, only_stack_of, save_state, stop_detached
from deploy.local.process import pid_alive
from deploy.local.settings import gplx_home

app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def up(
    kafka_port: int = typer.Option(9092, min=1, max=65535, help="Broker port on 127.0.0.1."),
    registry_port: int = typer.Option(8081, min=1, max=65535, help="Schema registry port on 127.0.0.1."),
    nodes: int = typer.Option(1, min=1, max=3, help="1, or 3 for a quorum of three on this host."),
    no_registry: bool = typer.Option(False, "--no-registry", help="Start the broker only."),
    secure: bool = typer.Option(False, "--secure", help="SASL_SSL + SCRAM-SHA-512, TLS from a generated CA, ACLs "
                                "enforced; one SCRAM user and client config per catalogue principal."),
) -> None:
    """Start the local stack in the background; it keeps running until `gplx-bus local down`.

    Example: gplx-bus local up --kafka-port 19092 --registry-port 18081
    """
    home = gplx_home()
    with only_stack_of(home, kafka_port, None if no_registry else registry_port):
        cluster = LocalCluster(nodes=nodes, with_registry=not no_registry, data_dir=home / "run" / "local" / "data",
                               broker_port=kafka_port, registry_port=registry_port, tie_to_parent=False,
                               secure=secure, principals=_catalogue_principals() if secure else ())
        cluster.owns_data_dir = True  # `local down` deletes it
        with console.status("starting Kafka and the schema registry..."):
            endpoints = cluster.start()
        save_state(home, endpoints)
    console.print(f"[green]up[/] Kafka {endpoints.kafka_version} at [bold]{endpoints.bootstrap_servers}[/] "
                  f"(ready in {endpoints.broker_start_seconds}s)")
    if endpoints.schema_registry_url:
        console.print(f"   schema registry at [bold]{endpoints.schema_registry_url}[/] "
                      f"(ready in {endpoints.registry_start_seconds}s)")
    console.print(f"   export KAFKA_BOOTSTRAP_SERVERS={endpoints.bootstrap_servers}"
                  + (f" SCHEMA_REGISTRY_URL={endpoints.schema_registry_url}" if endpoints.schema_registry_url else ""))
    if endpoints.secure_dir:
        _print_secure(endpoints)
        console.print("   no ACLs yet (everything but admin is refused): `gplx-bus acls apply`")


def _catalogue_principals() -> list[str]:
    """Every principal the (unprefixed) catalogue's ACLs name: each gets a SCRAM user and a client config."""
    from topology.catalogue import Catalogue

    return sorted({a.principal for a in Catalogue.build(prefix="").acls()})


def _print_secure(endpoints) -> None:
    clients = Path(endpoints.secure_dir) / "clients"
    console.print(f"   secured: SASL_SSL + SCRAM-SHA-512, ACLs enforced; CA {Path(endpoints.secure_dir) / 'ca.pem'}")
    console.print(f"   client configs (0600, one per principal): {clients}/<user>.properties "
                  f"(Kafka tools: --command-config), <user>.kcat.properties (kcat -F)")
    console.print(f"   admin: {endpoints.client_config()}")


@app.command()
def down() -> None:
    """Stop the local stack started by `gplx-bus local up` and delete its data.

    Example: gplx-bus local down
    """
    stopped = stop_detached(gplx_home())
    console.print("stopped: " + ", ".join(stopped) if stopped else "nothing was running")


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Show whether the local stack is running, and where.

    Example: gplx-bus local status --json
    """
    endpoints = load_state(gplx_home())
    alive = bool(endpoints) and all(pid_alive(pid) for pid in endpoints.pids)
    if as_json:
        print(json.dumps({"running": alive, **(endpoints.__dict__ if endpoints else {})}))
        return
    if not endpoints:
        console.print("not running (start it with `gplx-bus local up`)")
    elif alive:
        console.print(f"[green]running[/] Kafka {endpoints.kafka_version} at {endpoints.bootstrap_servers} "
                      f"({endpoints.security_protocol}), registry at {endpoints.schema_registry_url}, "
                      f"pids {endpoints.pids}")
        if endpoints.secure_dir:
            _print_secure(endpoints)
    else:
        console.print(f"[red]broken[/]: some processes of the stack died (pids {endpoints.pids}); "
                      "run `gplx-bus local down` then `up`")
        raise typer.Exit(1)


# -- faults on one node of a running stack (`local up --nodes 3`) -------------------------------------------------
_NODE = typer.Argument(..., min=1, max=3, help="Node id: 1, 2 or 3.")


@app.command()
def kill(node: int = _NODE) -> None:
    """SIGKILL one Kafka node of the running stack (a crash: no controlled shutdown); `restart` brings it back.

    Example: gplx-bus local kill "$(gplx-bus local controller)"
    """
    pid = DetachedNodes(gplx_home()).signal(node, signal.SIGKILL)
    console.print(f"node {node} (pid {pid}) killed")


@app.command()
def hang(node: int = _NODE) -> None:
    """SIGSTOP one Kafka node (alive but silent, like a long GC pause or a frozen VM); `resume` ends it.

    Example: gplx-bus local hang 2
    """
    pid = DetachedNodes(gplx_home()).signal(node, signal.SIGSTOP)
    console.print(f"node {node} (pid {pid}) hung (SIGSTOP); `gplx-bus local resume {node}` ends it")


@app.command()
def resume(node: int = _NODE) -> None:
    """SIGCONT a node hung by `hang`.

    Example: gplx-bus local resume 2
    """
    pid = DetachedNodes(gplx_home()).signal(node, signal.SIGCONT)
    console.print(f"node {node} (pid {pid}) resumed")


@app.command()
def restart(node: int = _NODE) -> None:
    """Stop one node (SIGTERM, SIGKILL after 20 s; nothing to do if it is dead) and start it on the same ports and
    data; returns once the cluster lists every node again.

    Example: gplx-bus local restart 3
    """
    seconds = DetachedNodes(gplx_home()).restart(node)
    console.print(f"node {node} restarted; the cluster listed every node after {seconds:.1f}s")


@app.command()
def controller() -> None:
    """Print the id of the active KRaft controller.

    Example: gplx-bus local controller
    """
    print(DetachedNodes(gplx_home()).controller())


@app.command()
def leader(topic: str = typer.Argument(..., help="Topic name (with its prefix, if any)."),
           partition: int = typer.Argument(0, min=0, help="Partition number.")) -> None:
    """Print the id of the broker leading a partition (-1 while none is elected).

    Example: gplx-bus local leader portal.applications 3
    """
    print(DetachedNodes(gplx_home()).leader(topic, partition))


@app.command()
def fetch() -> None:
    """Fetch the Kafka jars and build the schema registry from Maven Central now (otherwise done on first use).

    Example: gplx-bus local fetch
    """
    from deploy.local import jars
    from deploy.local.tools import require_java

    require_java()
    kafka_lib = jars.ensure_kafka_jars()
    console.print(f"Kafka jars: {kafka_lib}")
    from deploy.local import registry

    console.print(f"schema registry: {registry.ensure_registry_built(gplx_home() / 'jars')}")
