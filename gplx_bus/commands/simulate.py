"""`gplx-bus simulate`: play a day of renewal applications for some provinces onto the bus.

Writes the identity/police databases and the payment ledger the adapters read (--data-dir), publishes the
certificates, applications and payments through the SDK at --rate events/s, and prints the expected outcome per
case (and, with --expected FILE, writes one JSON line per application for reconciliation).
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from gplx_bus.commands import options
from producers import simulator
from producers.adapters.runner import DEFAULT_DATA_DIR
from producers.sdk import COMPRESSION, Publisher
from schemas.privacy import write_private
from topology.catalogue import Catalogue

console = Console(stderr=True)


#: Bounds that keep a typo from running for days or eating the machine's memory (issue: 100,000,000 planned
#: silently to 1.6 GB; a rate of 0.000001 waited for ever).
MAX_APPLICATIONS = 100_000
MAX_RUN_SECONDS = 24 * 3600


def command(
    provinces: str = typer.Option("01,79", "--provinces", help="Province codes, comma-separated; an old (pre-July-"
                                  "2025) code is read as the province it merged into."),
    applications: int = typer.Option(100, "--applications", min=0, max=MAX_APPLICATIONS,
                                     help=f"How many applications (at most {MAX_APPLICATIONS:,} per run: the "
                                     f"plan is held in memory; run more seeds for more)."),
    seed: int = typer.Option(1, "--seed", help="Same seed (and --start): same citizens, ids and events."),
    rate: float = typer.Option(0.0, "--rate", min=0.0, help="Events per second; 0 = as fast as possible "
                               "(a run may last at most 24 hours)."),
    failure_rates: str = typer.Option("", "--failure-rates",
                                      help="Override rates, e.g. phone_not_tied=0.2,payment_failed=0 "
                                           f"(modes: {', '.join(simulator.FAILURE_MODES)})."),
    start: str = typer.Option(None, "--start", help="End of the simulated day, ISO 8601 (default: now)."),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="Where the adapters' databases go."),
    expected: Path = typer.Option(None, "--expected", help="Write the expected outcome per application here."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan and write the databases; publish nothing."),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url(),
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
) -> None:
    """Simulate applications with the pilot's failure modes and publish them.

    Example: gplx-bus simulate --provinces 01,02 --applications 500 --rate 50
    """
    conn = options.connection(bootstrap, client_config, registry_url, registry_user, prefix)
    try:
        moment = dt.datetime.fromisoformat(start) if start else None
    except ValueError:
        raise simulator.SimulationError("--start must be ISO 8601, e.g. 2025-09-01T17:00:00+07:00") from None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone(dt.timedelta(hours=7)))
    rates = simulator.parse_failure_rates(failure_rates)
    simulator.parse_provinces(provinces)  # a bad code is refused before the note below
    if renamed := simulator.old_province_codes(provinces):
        typer.echo(f"old province codes read as their current province: {', '.join(renamed)}", err=True)
    with console.status(f"planning {applications:,} applications", spinner="dots"):
        plan = simulator.make_plan(provinces, applications, seed, start=moment, failure_rates=rates)
    if rate > 0 and len(plan.events) / rate > MAX_RUN_SECONDS:
        raise simulator.SimulationError(
            f"--rate {rate:g} would take {len(plan.events) / rate / 3600:,.0f} hours for {len(plan.events):,} "
            f"events; at most 24 hours: use --rate {len(plan.events) / MAX_RUN_SECONDS:.2g} or more, or 0")
    paths = simulator.write_databases(plan, data_dir)
    if expected is not None:
        # one line per citizen with CCCD and outcome: personal data, owner only
        write_private(expected, "".join(json.dumps(e.as_dict(), ensure_ascii=False) + "\n" for e in plan.expected))
    report = None
    if not dry_run:
        with Publisher(conn, conn.registry_url, catalogue=Catalogue.build(prefix=conn.prefix),
                       client_id="gplx-simulator") as publisher, Progress(
                TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                console=console) as progress:
            task = progress.add_task("events", total=len(plan.events))
            report = simulator.publish(plan, publisher, rate=rate,
                                       on_progress=lambda n: progress.update(task, completed=n))
    _print_summary(plan, report, paths, expected)


def _print_summary(plan: simulator.Plan, report, paths: dict, expected: Path | None) -> None:
    counts = plan.counts()
    table = Table(title=f"simulated {len(plan.expected)} applications (seed {plan.seed}, day ending "
                        f"{plan.start.isoformat()})")
    table.add_column("expected outcome")
    table.add_column("cases", justify="right")
    for outcome, n in sorted(counts["outcome"].items()):
        table.add_row(outcome, str(n))
    console.print(table)
    console.print("failure modes: " + ", ".join(f"{k} {v}" for k, v in counts["failure"].most_common()))
    console.print("provinces: " + ", ".join(f"{k} {v}" for k, v in sorted(counts["province"].items())))
    if report is not None:
        console.print(f"published {report.total} events in {report.seconds}s ({COMPRESSION}): "
                      + ", ".join(f"{k} {v}" for k, v in sorted(report.published.items())))
    else:
        console.print("dry run: nothing published")
    console.print("databases: " + ", ".join(f"{k} {p}" for k, p in paths.items())
                  + (f"; expected outcomes in {expected}" if expected else ""))
