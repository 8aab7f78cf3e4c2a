"""`gplx-bus clinic ...`: health certificates from clinics.

- `publish FILE`: import a hospital system's export (CSV or JSON), straight to Kafka or through the gateway
  (`--via URL`); one line per row (accepted, or rejected with the field and rule), rejected rows to a file to fix
  and re-import; exit status 1 when any row was rejected;
- `serve`: the HTTPS clinic gateway (README, "The clinic gateway");
- `api-key CODE`: a clinic's API key for the gateway; `keys add|revoke|list`: clinic signing keys on clinics.keys.
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import datetime as dt
import logging

import typer

from gplx_bus.commands import options
from consumers import clinic_keys
from consumers.follower import FollowerError
from gplx_bus.signals import stop_on_signals, wait_until_set
from producers.adapters import clinic
from producers.gateway import credentials
from producers.gateway.client import GatewayClient, Signing, load_private_key
from producers.sdk import Publisher
from topology.catalogue import Catalogue
from topology.diagnose import refuse_unreachable

app = typer.Typer(no_args_is_help=True, help="Clinics: publish health certificates, the HTTPS gateway, keys.")
keys_app = typer.Typer(no_args_is_help=True, help="Clinic signing keys on the compacted topic clinics.keys.")
app.add_typer(keys_app, name="keys")


@app.callback()
def group() -> None:
    """Clinics: publish health certificates, run the HTTPS clinic gateway, manage API keys and signing keys."""


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
    via: Optional[str] = typer.Option(None, "--via", metavar="URL", help="Publish through the clinic gateway at URL "
                                      "(e.g. https://gateway.example:8443) instead of straight to Kafka."),
    api_key_file: Optional[Path] = typer.Option(None, "--api-key-file", metavar="FILE",
                                                help="With --via: the clinic's API key (first line of FILE)."),
    ca: Optional[Path] = typer.Option(None, "--ca", metavar="FILE", help="With --via: the CA that signed the "
                                      "gateway's certificate (default: the system's CAs)."),
    signing_key: Optional[Path] = typer.Option(None, "--signing-key", metavar="FILE", help="Sign each certificate "
                                               "with this ECDSA P-256 private key (PEM) before publishing."),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url(),
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
) -> None:
    """Publish each row as a HealthCertificate; a bad row is reported and does not stop the others.

    Example: gplx-bus clinic publish export.csv --rejects rejected.csv
    Through the gateway: gplx-bus clinic publish export.csv --via https://127.0.0.1:8443 --api-key-file clinic.key
    --ca gateway-tls/ca.pem --signing-key clinic-signing.pem
    """
    fmt = clinic.detect_format(file, fmt.value if fmt else None)
    rows = clinic.load_rows(file, fmt, encoding)  # the file is checked before the bus is contacted
    key = load_private_key(signing_key) if signing_key else None
    if via:
        if api_key_file is None:
            raise typer.BadParameter("--via needs --api-key-file FILE (gplx-bus clinic api-key)")
        publisher = GatewayClient(via, _first_line(api_key_file), ca=ca)
    else:
        conn = options.connection(bootstrap, client_config, registry_url, registry_user, prefix)
        publisher = Publisher(conn, conn.registry_url, catalogue=Catalogue.build(prefix=conn.prefix),
                              client_id="gplx-clinic-import", connect_timeout_s=10)
    with publisher:
        results = clinic.publish_rows(rows, Signing(publisher, key) if key else publisher)
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


def _first_line(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, IndexError):
        raise typer.BadParameter(f"cannot read a key from the first line of {path}") from None


@app.command("serve")
def serve(
    port: int = typer.Option(8443, "--port", "-p", min=0, max=65535, help="Port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    api_keys: Path = typer.Option(..., "--api-keys", metavar="FILE", help="The clinics' API key store "
                                  "(hashes only; made by `gplx-bus clinic api-key`)."),
    tls_dir: Path = typer.Option(..., "--tls-dir", metavar="DIR", help="HTTPS with gateway.pem/gateway.key from "
                                 "DIR; if absent, a new CA and a certificate for --host, 127.0.0.1 and localhost "
                                 "are written there (give DIR/ca.pem to the clinics)."),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url(),
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
    verbose: bool = options.verbose(),
) -> None:
    """Run the HTTPS clinic gateway until interrupted (POST /v1/certificates, POST /v1/certificates:batch, GET /v1/certificates/{number}, GET /openapi.json).

    It reads health.exam-results and clinics.keys to their end before it says ready, so a restart never accepts a
    duplicate.

    Example: gplx-bus clinic serve --api-keys gateway-keys.json --tls-dir ./gateway-tls --port 8443
    """
    from consumers.portal.standin import write_tls_files
    from producers.gateway.http import GatewayServer

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    keys = credentials.ApiKeys.load(api_keys)
    cert, key = tls_dir / "gateway.pem", tls_dir / "gateway.key"
    if not (cert.exists() and key.exists()):
        write_tls_files(tls_dir, (host, "127.0.0.1", "localhost"), name="gateway")
        typer.echo(f"wrote a new CA ({tls_dir / 'ca.pem'}) and gateway certificate for {host} to {tls_dir}", err=True)
    conn = options.connection(bootstrap, client_config, registry_url, registry_user, prefix)
    stop = stop_on_signals()
    try:
        server = GatewayServer(conn, keys, host=host, port=port, tls=(cert, key))
    except OSError as exc:
        typer.echo(f"gplx-bus: error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2)
    with server:
        typer.echo(f"clinic gateway ready on {server.url} ({len(server.index)} "
                   f"certificate versions known)", err=True)
        wait_until_set(stop)


@app.command("api-key")
def api_key(
    clinic_code: str = typer.Argument(..., help="The clinic's code (as in its certificate numbers)."),
    store: Path = typer.Option(..., "--store", metavar="FILE", help="The gateway's API key store (created if "
                               "absent; hashes only, 0600)."),
    out: Path = typer.Option(..., "--out", metavar="FILE", help="Where to write the new key for the clinic (0600); "
                             "it is not shown."),
) -> None:
    """Make a new API key for a clinic: its hash goes into the store, the key into --out for the clinic.

    Example: gplx-bus clinic api-key 79001 --store gateway-keys.json --out clinic-79001.apikey
    """
    credentials.issue(store, clinic_code, out)
    typer.echo(f"API key for clinic {clinic_code} written to {out} (0600); {store} updated: restart the gateway")


def _keys_connection(bootstrap, client_config, registry_url, registry_user, prefix):
    conn = options.connection(bootstrap, client_config, registry_url, registry_user, prefix)
    # a closed port or a refused login is one line at once, as in the other commands: the keys' follower would
    # otherwise wait for the broker (it waits out outages) until its 30 s catch-up ends
    refuse_unreachable(conn, FollowerError)
    return conn, Catalogue.build(prefix=conn.prefix)


@keys_app.command("add")
def keys_add(
    clinic_code: str = typer.Argument(..., help="The clinic's code."),
    public_key: Path = typer.Option(..., "--public-key", metavar="FILE", help="The clinic's ECDSA P-256 public "
                                    "key, PEM or DER (SubjectPublicKeyInfo)."),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url(),
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
) -> None:
    """Register a clinic's public key on clinics.keys. From now on every certificate of this clinic must be signed.

    Example: gplx-bus clinic keys add 79001 --public-key clinic-79001.pub.pem
    """
    conn, catalogue = _keys_connection(bootstrap, client_config, registry_url, registry_user, prefix)
    event = clinic_keys.publish_key(conn, catalogue, clinic_code, public_key.read_bytes())
    typer.echo(f"key {event.key_id} of clinic {clinic_code} registered at {event.registered_at.isoformat()}")


@keys_app.command("revoke")
def keys_revoke(
    clinic_code: str = typer.Argument(..., help="The clinic's code."),
    key_id: str = typer.Option(..., "--key-id", help="The key to revoke (gplx-bus clinic keys list)."),
    at: Optional[dt.datetime] = typer.Option(None, "--at", formats=["%Y-%m-%dT%H:%M:%S%z"], help="Revoked from "
                                             "this time (default now); certificates signed before stay valid. For "
                                             "a stolen key, the time it was stolen."),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url(),
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
) -> None:
    """Revoke a clinic key: certificates it signed before the revocation time stay valid, later ones are refused.

    Example: gplx-bus clinic keys revoke 79001 --key-id 3f2a9c0d1e4b5a67 --at 2026-03-01T00:00:00+0700
    """
    conn, catalogue = _keys_connection(bootstrap, client_config, registry_url, registry_user, prefix)
    event = clinic_keys.revoke_key(conn, catalogue, clinic_code, key_id, at)
    typer.echo(f"key {key_id} of clinic {clinic_code} revoked from {event.revoked_at.isoformat()}")


@keys_app.command("list")
def keys_list(
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url(),
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
) -> None:
    """Every clinic key on clinics.keys: clinic, key id, registered, revoked.

    Example: gplx-bus clinic keys list
    """
    conn, catalogue = _keys_connection(bootstrap, client_config, registry_url, registry_user, prefix)
    keys = clinic_keys.ClinicKeys(conn, catalogue).start()
    try:
        for k in keys.book.all():
            revoked = k.revoked_at.isoformat() if k.revoked_at else "-"
            typer.echo(f"{k.clinic_code}\t{k.key_id}\tregistered {k.registered_at.isoformat()}\trevoked {revoked}")
    finally:
        keys.close()
