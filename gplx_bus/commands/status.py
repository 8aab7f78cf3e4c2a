"""`gplx-bus status`: where is a renewal? The case store (`store run`), its HTTP API (`serve`), one case on the
command line (`show`), and the API's keys (`keys add`, `keys citizen-token`). The work is in consumers.casestore.
"""
from __future__ import annotations

import logging
import sys
from typing import Optional

import typer

from gplx_bus.commands import options
from gplx_bus.signals import stop_on_signals

app = typer.Typer(
    help="Where is a renewal? The case store (cases.events in a database) and its HTTP API.\n\n"
         "Examples:\n\n"
         "  gplx-bus status store run --database sqlite:///./cases.db   # materialize cases.events\n\n"
         "  gplx-bus status show APP-000123 --database sqlite:///./cases.db\n\n"
         "  gplx-bus status keys add helpdesk; gplx-bus status serve --port 8090",
    no_args_is_help=True)
store_app = typer.Typer(help="The case store: cases.events materialized into a database.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of the status API (stored hashed, 0600).", no_args_is_help=True)
app.add_typer(store_app, name="store")
app.add_typer(keys_app, name="keys")
log = logging.getLogger("gplx_bus.status")


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING if verbose else logging.CRITICAL)


def _database(url: str):
    from consumers.casestore.db import DatabaseError, database

    try:
        return database(url)
    except DatabaseError as exc:
        raise typer.BadParameter(str(exc), param_hint="--database") from None


def _open_store(db, topic: str):
    """The store, or one line and exit 2 when its database cannot be reached."""
    from consumers.casestore.db import DatabaseError
    from consumers.casestore.store import CaseStore

    try:
        return CaseStore(db, topic)
    except DatabaseError as exc:
        typer.echo(f"gplx-bus: error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def show(
    application_id: str = typer.Argument(..., help="The portal's application id."),
    database_url: str = options.database_url(),
    prefix: str = options.topic_prefix(),
) -> None:
    """One application: state, what is missing, the next step (vi, en), the deadline.

    Example: gplx-bus status show APP-000123 --database sqlite:///./cases.db
    """
    from consumers.casestore.api import application_view, render
    from topology.catalogue import CASES_EVENTS

    store = _open_store(_database(database_url), prefix + CASES_EVENTS)
    try:
        row = store.by_application(application_id)
    finally:
        store.close()
    if row is None:
        typer.echo(f"gplx-bus: no case for application {application_id} in {database_url.split('?')[0]}", err=True)
        raise typer.Exit(1)
    typer.echo(render(application_view(row)))


@store_app.command("run")
def store_run(
    database_url: str = options.database_url(),
    batch_size: int = typer.Option(2000, "--batch-size", min=1, max=100_000,
                                   help="Most records applied per database transaction."),
    verbose: bool = options.verbose(),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url(),
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
) -> None:
    """Materialize cases.events into the database until interrupted; resumes from the database's own offsets.

    Example: gplx-bus status store run --database postgresql://gplx@127.0.0.1:5432/cases?passfile=~/.pgpass
    """
    from consumers.casestore.consumer import StoreConsumer
    from schemas.registry import RegistryClient
    from topology.catalogue import CASES_EVENTS

    _logging(verbose)
    conn = options.connection(bootstrap, client_config, registry_url, registry_user, prefix)
    db = _database(database_url)
    stop = stop_on_signals()
    store = _open_store(db, conn.prefix + CASES_EVENTS)
    try:
        consumer = StoreConsumer(conn, RegistryClient(conn.registry_url, auth=conn.registry_auth), store,
                                 max_records=batch_size)
    except LookupError as exc:
        store.close()
        raise typer.BadParameter(str(exc), param_hint="--prefix") from None
    typer.echo(f"case store: {store.topic} -> {db.safe_url} (resuming at {sum(store.offsets().values())} "
               "records applied)", err=True)
    try:
        consumer.run(stop, on_progress=lambda c: log.info(
            "case store: %d events applied, %d duplicates ignored, %d other records", c.totals.applied,
            c.totals.duplicates, c.totals.skipped))
    finally:
        consumer.close()
        store.close()


@app.command()
def serve(
    port: int = typer.Option(8090, "--port", "-p", min=0, max=65535, help="HTTP port (0: any free)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default; put a TLS "
                             "proxy in front for anything else: the answers hold personal data)."),
    database_url: str = options.database_url(),
    keys: str = options.keys_file(),
    prefix: str = options.topic_prefix(),
) -> None:
    """Serve the status API (GET /v1/applications/{id}, /v1/citizens/{cccd}/applications,
    /v1/provinces/{code}/cases, /v1/funnel) until interrupted.

    Example: gplx-bus status serve --port 8090 --database sqlite:///./cases.db --keys-file ./keys.json
    """
    from consumers.casestore.auth import Keys, KeysError
    from consumers.casestore.server import ApiServer
    from topology.catalogue import CASES_EVENTS

    try:
        loaded = Keys.load(keys)
    except KeysError as exc:
        raise typer.BadParameter(str(exc), param_hint="--keys-file") from None
    db = _database(database_url)
    _open_store(db, prefix + CASES_EVENTS).close()  # reachable, and its tables exist, before saying ready
    stop = stop_on_signals()
    server = ApiServer(db, prefix, loaded, host=host, port=port)
    try:
        server.start()
    except OSError as exc:
        typer.echo(f"gplx-bus: error: cannot listen on {host}:{port}: {exc.strerror or exc}; choose another "
                   "--port (0 picks a free one)", err=True)
        raise typer.Exit(2)
    typer.echo(f"status API on {server.url} (docs {server.url}/docs)", err=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()


@keys_app.command("add")
def keys_add(
    principal: str = typer.Argument(..., help="helpdesk, portal or province-NN (e.g. province-01)."),
    keys: str = options.keys_file(),
) -> None:
    """Make an API key for a principal; prints it once (only its hash is kept).

    Example: gplx-bus status keys add province-01 --keys-file ./keys.json
    """
    from consumers.casestore.auth import KeysError, add_key

    try:
        typer.echo(add_key(keys, principal))
    except KeysError as exc:
        raise typer.BadParameter(str(exc)) from None


@keys_app.command("citizen-token")
def keys_citizen_token(
    cccd: str = typer.Argument(..., help="The citizen's CCCD (12 digits)."),
    ttl: int = typer.Option(600, "--ttl", min=1, max=3600, help="Seconds the token is valid."),
    keys: str = options.keys_file(),
) -> None:
    """Sign a citizen's authorization for a CCCD query (what the portal does after the citizen logged in).

    Example: gplx-bus status keys citizen-token 001085012345 --ttl 300
    """
    from consumers.casestore.auth import Keys, KeysError

    try:
        typer.echo(Keys.load(keys).citizen_token(cccd, ttl))
    except KeysError as exc:
        raise typer.BadParameter(str(exc), param_hint="--keys-file") from None
