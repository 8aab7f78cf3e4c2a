"""`gplx-bus adapters run`: answer identity checks, licence look-ups and refund requests until Ctrl-C.

Thin on purpose: the adapters live in `producers.adapters`; this module reads the options (connection options
from `options`) and prints counters.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from gplx_bus.commands import options
from gplx_bus.signals import stop_on_signals
from producers.adapters import identity, police
from producers.adapters.runner import DEFAULT_DATA_DIR, IDENTITY_DB, POLICE_DB, AdapterSet
from topology.catalogue import Catalogue

app = typer.Typer(no_args_is_help=True, help="Identity, police and payment adapters (request/answer).")
console = Console(stderr=True)


@app.callback()
def group() -> None:
    """Identity, police and payment adapters (request/answer)."""  # a group even with one command, so `adapters <command>` keeps working


def _fields(fields: dict[str, str]) -> str:
    return "\n".join(f"  {name}: {meaning}" for name, meaning in fields.items())


# Rich keeps the help's line breaks: a paragraph is one line here, the field lists one line per field.
RUN_HELP = f"""Run the adapters until interrupted; print what each answered.

{"Both databases are JSON-lines files, one citizen per line, keyed by cccd, re-read when they change. Samples "
 "(fake citizens): producers/adapters/samples/identity.jsonl and police.jsonl; more in producers/adapters/README.md."}

{"On a secured cluster each adapter has a principal of its own (User:identity, User:police, User:payment: the "
 "catalogue's ACLs give each only its topics): run one process per principal, e.g. --no-police --no-payment "
 "--client-config identity.properties."}

Identity (population) database fields, --identity-db:
{_fields(identity.RECORD_FIELDS)}

Licence (police) database fields, --police-db:
{_fields(police.RECORD_FIELDS)}

Example: gplx-bus adapters run --data-dir gplx-data --no-payment
"""


@app.command("run", help=RUN_HELP)
def run(
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="Folder of the local databases."),
    identity_db: Path = typer.Option(None, "--identity-db", help=f"Population database, JSON lines by cccd "
                                     f"(default DATA_DIR/{IDENTITY_DB}), fields above."),
    police_db: Path = typer.Option(None, "--police-db", help=f"Licence database, JSON lines by cccd "
                                   f"(default DATA_DIR/{POLICE_DB}), fields above."),
    identity: bool = typer.Option(True, "--identity/--no-identity", help="Answer identity checks."),
    police: bool = typer.Option(True, "--police/--no-police", help="Answer licence look-ups."),
    payment: bool = typer.Option(True, "--payment/--no-payment", help="Also answer refund requests."),
    payment_ledger: Path = typer.Option(None, "--payment-ledger", help="The gateway's ledger (JSON lines)."),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url(),
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
) -> None:
    if not (identity or police or payment):
        raise typer.BadParameter("nothing to run: --no-identity, --no-police and --no-payment together",
                                 param_hint="--identity/--police/--payment")
    conn = options.connection(bootstrap, client_config, registry_url, registry_user, prefix)
    adapters = AdapterSet(conn, conn.registry_url, catalogue=Catalogue.build(prefix=conn.prefix), data_dir=data_dir,
                          identity_db=identity_db, police_db=police_db, payment_ledger=payment_ledger,
                          run_identity=identity, run_police=police, run_payment=payment)
    stop = stop_on_signals()  # before "running" is said: an early SIGTERM still stops cleanly with a summary
    adapters.start()
    running = [f"{name} ({path})" for name, path, wanted in (
        ("identity", adapters.identity_db, identity), ("police", adapters.police_db, police),
        ("payment", adapters.payment_ledger, payment)) if wanted]
    console.print(f"adapters running on {conn}: {', '.join(running)}; Ctrl-C to stop")
    shown = time.monotonic()
    try:
        while not stop.wait(0.2):  # short steps: see gplx_bus/signals.py
            if time.monotonic() - shown >= 10:
                console.print("  " + _counters(adapters))
                shown = time.monotonic()
            if not all(r.running for r in adapters.responders.values()):
                raise typer.Exit(1)
    finally:
        adapters.stop()
        console.print("stopped: " + _counters(adapters))


def _counters(adapters: AdapterSet) -> str:
    return ", ".join(f"{name} {s.requests} requests / {s.answers} answers / {s.skipped} skipped"
                     for name, s in adapters.stats().items())
