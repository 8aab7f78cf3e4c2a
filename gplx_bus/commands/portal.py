"""`gplx-bus portal standin` (a local stand-in of the national portal's issuance API) and `gplx-bus portal sink`
(deliver issuance requests to a portal). Thin: the work is in `consumers.portal`."""
from __future__ import annotations

import logging
import ssl
import sys
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

import typer

from consumers.portal import Backoff, IssuanceSink, StandinPortal
from consumers.portal.sink import CONCURRENCY, MAX_ATTEMPTS
from consumers.portal.standin import write_tls_files
from consumers.portal.signing import DEFAULT_KEY_ID, read_secret_file, write_secret_file
from gplx_bus.commands import options
from gplx_bus.signals import stop_on_signals, wait_until_set

SECRET_FILE_ENV = "GPLX_PORTAL_SECRET_FILE"
KEY_ID_ENV = "GPLX_PORTAL_KEY_ID"
CA_ENV = "GPLX_PORTAL_CA"


def _secret_file_option():
    return typer.Option(None, "--portal-secret-file", envvar=SECRET_FILE_ENV, metavar="FILE",
                        help="File whose first line is the shared secret the requests are signed with "
                             "(HMAC-SHA256; keep it 0600). Never give the secret itself on a command line.")


def _key_id_option():
    return typer.Option(DEFAULT_KEY_ID, "--portal-key-id", envvar=KEY_ID_ENV,
                        help="Key id sent as 'Authorization: Bearer <key id>': which sender and secret.")


def _credentials(path: Path, key_id: str):
    return read_secret_file(path, key_id)


app = typer.Typer(help="National portal: the issuance sink and a local stand-in portal.", no_args_is_help=True)


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING if verbose else logging.CRITICAL)


@app.command()
def standin(
    port: int = typer.Option(8089, "--port", "-p", min=0, max=65535, help="Port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    secret_file: Optional[Path] = _secret_file_option(),
    key_id: str = _key_id_option(),
    tls_dir: Optional[Path] = typer.Option(None, "--tls-dir", metavar="DIR",
                                           help="Speak HTTPS with portal.pem/portal.key from DIR; if absent, a new "
                                                "CA and a certificate for --host, 127.0.0.1 and localhost are "
                                                "written there (give DIR/ca.pem to `portal sink --portal-ca`)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run the stand-in portal until interrupted. POST /issuances must be signed with the secret of
    --portal-secret-file (written 0600 with a new random secret if the file does not exist: give the same file to
    `portal sink`). Control it with POST /_control {"refuse_next": K} | {"refuse_for_s": S} | {"down_for_s": S} |
    {"reset": true}; counts at GET /issuances.

    Example: gplx-bus portal standin --port 8089 --portal-secret-file portal.secret
    """
    _logging(verbose)
    if secret_file is None:
        typer.echo(f"gplx-bus: error: the stand-in portal verifies signed requests: give --portal-secret-file FILE "
                   f"(or {SECRET_FILE_ENV}); a missing file is created with a new secret", err=True)
        raise typer.Exit(2)
    if not secret_file.exists():
        try:
            write_secret_file(secret_file)
        except OSError as exc:
            typer.echo(f"gplx-bus: error: cannot write a new portal secret to {secret_file}: {exc.strerror or exc}",
                       err=True)
            raise typer.Exit(2)
        typer.echo(f"wrote a new portal secret to {secret_file} (0600)", err=True)
    credentials = _credentials(secret_file, key_id)
    tls = None
    if tls_dir is not None:
        cert, key = tls_dir / "portal.pem", tls_dir / "portal.key"
        if not (cert.exists() and key.exists()):
            write_tls_files(tls_dir, (host, "127.0.0.1", "localhost"))
            typer.echo(f"wrote a new CA ({tls_dir / 'ca.pem'}) and portal certificate for {host} to {tls_dir}",
                       err=True)
        tls = (cert, key)
    stop = stop_on_signals()
    try:
        portal = StandinPortal(host, port, keys={credentials.key_id: credentials.secret},
                               credentials=credentials, tls=tls).start()
    except ssl.SSLError as exc:
        typer.echo(f"gplx-bus: error: cannot use the TLS files in {tls_dir}: {exc}", err=True)
        raise typer.Exit(2)
    except OSError as exc:
        typer.echo(f"gplx-bus: error: cannot listen on {host}:{port}: {exc.strerror or exc}; choose another "
                   f"--port (0 picks a free one) or stop what holds it", err=True)
        raise typer.Exit(2)
    with portal:
        typer.echo(f"stand-in portal on {portal.url} (POST /issuances signed by key id {credentials.key_id}, "
                   f"GET /issuances, POST /_control)", err=True)
        wait_until_set(stop)
        stats = portal.stats()
    typer.echo(f"received {stats['received']}, distinct {stats['distinct']}, refused {stats['refused']}, "
               f"unauthorized {stats['unauthorized']}", err=True)


#: (shortest, longest) seconds the default backoff waits across MAX_ATTEMPTS attempts: what the help promises
_OUTAGE = (Backoff().worst_case(MAX_ATTEMPTS) * (1 - Backoff().jitter), Backoff().worst_case(MAX_ATTEMPTS))


@app.command()
def sink(
    portal_url: str = typer.Option("http://127.0.0.1:8089", "--portal-url", envvar="GPLX_PORTAL_URL",
                                   help="Base URL of the portal API (POST <url>/issuances)."),
    max_attempts: int = typer.Option(MAX_ATTEMPTS, "--max-attempts", min=1,
                                     help=f"Attempts before the DLQ (with the default backoff, {MAX_ATTEMPTS} cover "
                                          f"{_OUTAGE[0] / 60:.1f} to {_OUTAGE[1] / 60:.0f} minutes of portal "
                                          f"failures on end)."),
    concurrency: int = typer.Option(CONCURRENCY, "--concurrency", min=1,
                                    help="Issuances in flight at once (each batch is committed once all of them "
                                         "were accepted or dead-lettered)."),
    backoff_base: float = typer.Option(0.5, "--backoff-base", min=0.0, help="First retry delay, seconds."),
    backoff_max: float = typer.Option(30.0, "--backoff-max", min=0.0, help="Longest retry delay, seconds."),
    secret_file: Optional[Path] = _secret_file_option(),
    key_id: str = _key_id_option(),
    portal_ca: Optional[Path] = typer.Option(None, "--portal-ca", envvar=CA_ENV, metavar="FILE",
                                             help="PEM CA the portal's HTTPS certificate must chain to (default: "
                                                  "the system's CAs)."),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url(),
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
    verbose: bool = options.verbose(),
) -> None:
    """Deliver IssuanceRequested to the portal until interrupted (at-least-once, Idempotency-Key = issuance id).

    Example: gplx-bus portal sink --portal-url http://127.0.0.1:8089 --portal-secret-file portal.secret
    """
    _logging(verbose)
    if secret_file is None:
        typer.echo(f"gplx-bus: error: the portal requires signed requests: give --portal-secret-file FILE "
                   f"(or {SECRET_FILE_ENV})", err=True)
        raise typer.Exit(2)
    credentials = _credentials(secret_file, key_id)
    verify: object = True
    if portal_ca is not None:
        try:
            verify = ssl.create_default_context(cafile=str(portal_ca))
        except (OSError, ssl.SSLError) as exc:
            typer.echo(f"gplx-bus: error: cannot use --portal-ca {portal_ca}: {getattr(exc, 'strerror', None) or exc}",
                       err=True)
            raise typer.Exit(2)
    host = urlsplit(portal_url).hostname or ""
    if urlsplit(portal_url).scheme == "http" and host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger(__name__).warning(
            "the portal URL is plain http to %s: the signature proves the sender, but the issuances (names, CCCD, "
            "addresses) travel unencrypted; use https", host)
    conn = options.connection(bootstrap, client_config, registry_url, registry_user, prefix)
    backoff = Backoff(base_s=backoff_base, max_s=max(backoff_max, backoff_base))
    issuance_sink = IssuanceSink(conn, conn.registry_url, portal_url, prefix=conn.prefix, max_attempts=max_attempts,
                                 backoff=backoff, credentials=credentials, portal_verify=verify,
                                 concurrency=concurrency)
    stats = issuance_sink.run(stop_on_signals())
    typer.echo(f"delivered {stats.delivered}, dead-lettered {stats.dead_lettered}, "
               f"failed attempts {stats.failed_attempts}", err=True)
