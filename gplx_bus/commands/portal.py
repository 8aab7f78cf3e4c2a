"""`gplx-bus portal standin` (a local stand-in of the national portal's issuance API) and `gplx-bus portal sink`
(deliver issuance requests to a portal). Thin: the work is in `consumers.portal`."""
from __future__ import annotations

import logging
import sys
from typing import Optional

import typer

from consumers.portal import Backoff, IssuanceSink, StandinPortal
from gplx_bus.commands import options
from gplx_bus.signals import stop_on_signals, wait_until_set

app = typer.Typer(help="National portal: the issuance sink and a local stand-in portal.", no_args_is_help=True)


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING if verbose else logging.CRITICAL)


@app.command()
def standin(
    port: int = typer.Option(8089, "--port", "-p", min=0, max=65535, help="Port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run the stand-in portal until interrupted. Control it with POST /_control
    {"refuse_next": K} | {"refuse_for_s": S} | {"down_for_s": S} | {"reset": true}; counts at GET /issuances.

    Example: gplx-bus portal standin --port 8089
    """
    _logging(verbose)
    stop = stop_on_signals()
    try:
        portal = StandinPortal(host, port).start()
    except OSError as exc:
        typer.echo(f"gplx-bus: error: cannot listen on {host}:{port}: {exc.strerror or exc}; choose another "
                   f"--port (0 picks a free one) or stop what holds it", err=True)
        raise typer.Exit(2)
    with portal:
        typer.echo(f"stand-in portal on {portal.url} (POST /issuances, GET /issuances, POST /_control)", err=True)
        wait_until_set(stop)
        stats = portal.stats()
    typer.echo(f"received {stats['received']}, distinct {stats['distinct']}, refused {stats['refused']}", err=True)


@app.command()
def sink(
    portal_url: str = typer.Option("http://127.0.0.1:8089", "--portal-url", envvar="GPLX_PORTAL_URL",
                                   help="Base URL of the portal API (POST <url>/issuances)."),
    max_attempts: int = typer.Option(6, "--max-attempts", min=1, help="Attempts before the DLQ."),
    backoff_base: float = typer.Option(0.5, "--backoff-base", min=0.0, help="First retry delay, seconds."),
    backoff_max: float = typer.Option(30.0, "--backoff-max", min=0.0, help="Longest retry delay, seconds."),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url(),
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
    verbose: bool = options.verbose(),
) -> None:
    """Deliver IssuanceRequested to the portal until interrupted (at-least-once, Idempotency-Key = issuance id).

    Example: gplx-bus portal sink --portal-url http://127.0.0.1:8089
    """
    _logging(verbose)
    conn = options.connection(bootstrap, client_config, registry_url, registry_user, prefix)
    try:
        backoff = Backoff(base_s=backoff_base, max_s=max(backoff_max, backoff_base))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    issuance_sink = IssuanceSink(conn, conn.registry_url, portal_url, prefix=conn.prefix, max_attempts=max_attempts,
                                 backoff=backoff)
    stats = issuance_sink.run(stop_on_signals())
    typer.echo(f"delivered {stats.delivered}, dead-lettered {stats.dead_lettered}, "
               f"failed attempts {stats.failed_attempts}", err=True)
