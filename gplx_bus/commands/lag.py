"""`gplx-bus lag`: consumer lag per group, topic and partition; `gplx-bus lag serve`: the Prometheus exporter.

Thin on purpose: options become a `LagConfig`, the work is in `consumers.lag`. A one-shot `lag` takes a single
sample, so its lag seconds come from record timestamps and its status can only be OK or ERR; the window rules
(STOP, STALL, REWIND, WARN) need `--watch` or the exporter.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from consumers.lag import LagConfig, LagMonitor, LagReport
from consumers.lag.model import PartitionLag
from gplx_bus.commands import options
from gplx_bus.signals import stop_on_signals, wait_until_set
from topology.connection import Connection
from topology.diagnose import CONNECT_ERRORS, cannot_reach

app = typer.Typer(help="Consumer lag (messages, seconds, status) per group, topic and partition.",
                  no_args_is_help=False)
log = logging.getLogger("gplx_bus.lag")

_STATUS_STYLE = {"OK": "green", "WARN": "yellow", "ERR": "red", "STOP": "bold red", "STALL": "bold red",
                 "REWIND": "magenta", "UNKNOWN": "dim"}

PatternOpt = typer.Option(None, "--group-pattern", envvar="GPLX_LAG_GROUP_PATTERN",
                          help="Regex of the group ids to watch (default: exactly our groups, from the catalogue: "
                               "the case processor, portal sink, adapters and province subscribers).")


def _config(conn: Connection, pattern: Optional[str], group: Optional[str] = None, **extra) -> LagConfig:
    if group:
        pattern = f"^{re.escape(group)}$"
    return LagConfig(bootstrap_servers=conn, prefix=conn.prefix, group_pattern=pattern,
                     **{k: v for k, v in extra.items() if v is not None})


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING if verbose else logging.CRITICAL)


@app.callback(invoke_without_command=True)
def lag(
    ctx: typer.Context,
    group: Optional[str] = typer.Option(None, "--group", "-g", help="Only this consumer group."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh until interrupted."),
    interval: float = typer.Option(5.0, "--interval", "-i", min=0.2, help="Seconds between samples with --watch."),
    as_json: bool = typer.Option(False, "--json", help="JSON (one document per sample with --watch)."),
    pattern: Optional[str] = PatternOpt,
    window: Optional[float] = typer.Option(None, "--window", min=1.0, help="Status window in seconds (default 600)."),
    stall_after: Optional[float] = typer.Option(None, "--stall-after", min=1.0, help="STOP/STALL after this many seconds "
                                                "without progress (default 300)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    prefix: str = options.topic_prefix(),
) -> None:
    """Show committed offset, end offset, lag in messages and seconds, and status."""
    if ctx.invoked_subcommand is not None:
        return
    _setup_logging(verbose)
    conn = options.connection(bootstrap, client_config, None, None, prefix)
    monitor = LagMonitor(_config(conn, pattern, group, window_seconds=window, stall_after_seconds=stall_after))
    console = Console()
    try:
        if not watch:
            report = _sample_or_exit(monitor)
            console.print_json(json.dumps(report.to_json())) if as_json else console.print(render_table(report))
            return
        if as_json:
            while True:
                print(json.dumps(_sample_or_exit(monitor).to_json()), flush=True)
                time.sleep(interval)
        with Live(render_table(_sample_or_exit(monitor)), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(interval)  # pacing of the watch loop
                try:
                    live.update(render_table(monitor.sample()), refresh=True)
                except Exception as exc:  # keep watching through a broker restart
                    log.warning("sample failed: %s", exc)
    finally:
        monitor.close()


def _sample_or_exit(monitor: LagMonitor) -> LagReport:
    try:
        return monitor.sample()
    except Exception as exc:
        if isinstance(exc, CONNECT_ERRORS):
            typer.echo(f"gplx-bus: error: {cannot_reach(monitor.config.bootstrap_servers)}", err=True)
        else:
            typer.echo(f"gplx-bus: error: cannot read offsets from {monitor.config.bootstrap_servers}: "
                       f"{type(exc).__name__}: {exc}. Is the broker up? Set --bootstrap-servers or "
                       f"KAFKA_BOOTSTRAP_SERVERS.", err=True)
        raise typer.Exit(2)


def render_table(report: LagReport) -> Table:
    table = Table(title=f"consumer lag at {time.strftime('%H:%M:%S', time.localtime(report.taken_at))}")
    for col in ("group", "class", "status", "topic", "part", "committed", "end", "lag", "lag s"):
        table.add_column(col, justify="right" if col in ("part", "committed", "end", "lag", "lag s") else "left")
    if not report.groups:
        table.caption = "no consumer group matches the filter"
    for g in report.groups:
        for i, p in enumerate(g.partitions or [None]):
            first = i == 0
            status = p.status if p else g.status
            table.add_row(
                g.group if first else "", g.group_class if first else "",
                f"[{_STATUS_STYLE[status]}]{status}[/]",
                p.topic if p else "-", str(p.partition) if p else "", _committed_cell(p),
                str(p.end_offset) if p else "", str(p.lag_messages) if p else "",
                f"{p.lag_seconds:.1f}" + ("≥" if p and p.lag_seconds_source == "lower-bound" else "") if p else "",
            )
    if any(p.never_committed for g in report.groups for p in g.partitions):
        table.caption = "never: the group has no committed offset there; its lag counts from the log start"
    return table


def _committed_cell(p: PartitionLag | None) -> str:
    if p is None:
        return ""
    return "never" if p.never_committed else str(p.committed_offset)


@app.command()
def serve(
    port: int = typer.Option(9308, "--port", "-p", min=0, max=65535, help="HTTP port for /metrics (0: any free)."),
    addr: str = typer.Option("127.0.0.1", "--host", "--addr", help="Address to listen on (loopback by default: "
                             "the metrics name groups and provinces; use 0.0.0.0 only behind a firewall)."),
    interval: float = typer.Option(15.0, "--interval", "-i", min=0.2, help="Seconds between samples."),
    pattern: Optional[str] = PatternOpt,
    window: Optional[float] = typer.Option(None, "--window", min=1.0, help="Status window in seconds (default 600)."),
    stall_after: Optional[float] = typer.Option(None, "--stall-after", min=1.0, help="STOP/STALL threshold (default 300)."),
    cases: bool = typer.Option(True, "--cases/--no-cases", help="Also read cases.events for cases by state and "
                               "decisions by reason (needs the schema registry)."),
    state_file: Optional[Path] = typer.Option(None, "--state-file", envvar="GPLX_LAG_STATE_FILE",
                                              help="Snapshot of the case counts (gzip JSON, 0600, case ids only), "
                                              "saved every minute and at stop: a restart reads cases.events from "
                                              "there, not from its beginning. Without it every start replays the "
                                              "retained stream."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url("--schema-registry-url"),  # its name before 0.2
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
) -> None:
    """Serve lag metrics for Prometheus until interrupted; stays up (gplx_lag_exporter_up=0) without a broker.

    Example: gplx-bus lag serve --port 9308 --host 0.0.0.0
    """
    from consumers.lag.exporter import LagExporter

    _setup_logging(verbose)
    conn = options.connection(bootstrap, client_config, registry_url, registry_user, prefix)
    config = _config(conn, pattern, window_seconds=window, stall_after_seconds=stall_after)
    extras, what = [], "no case metrics (--no-cases)"
    if cases and not registry_url:  # the exporter needs no registry for lag: case metrics only where one is named
        what = "no case metrics: set --registry-url or SCHEMA_REGISTRY_URL"
    elif cases:
        signals = _case_signals(config, conn, interval, state_file)
        extras, what = [signals], f"cases from {signals.topic}"
    exporter = LagExporter(config, port=port, addr=addr, interval=interval, extra_collectors=extras)
    try:
        exporter.start()
    except OSError as exc:  # nothing was started: the HTTP server comes first
        typer.echo(f"gplx-bus: error: cannot listen on {addr}:{port}: {exc.strerror or exc}; choose another "
                   f"--port (0 picks a free one) or stop what holds it", err=True)
        raise typer.Exit(2)
    stop = stop_on_signals()
    typer.echo(f"serving lag metrics on http://{addr}:{exporter.port}/metrics "
               f"(bootstrap {config.bootstrap_servers}, groups {_groups_label(config)}; {what})", err=True)
    try:
        wait_until_set(stop)
    finally:
        exporter.stop()


def _groups_label(config: LagConfig) -> str:
    from consumers.lag.groups import default_group_pattern, our_groups

    if config.group_pattern == default_group_pattern(config.prefix):
        return f"ours ({len(our_groups(config.prefix))}, prefix {config.prefix!r})"
    return f"/{config.group_pattern}/"


def _case_signals(config: LagConfig, conn: Connection, interval: float, state_file: Path | None):
    from consumers.lag.cases_reader import CaseSignals
    from schemas.registry import RegistryClient
    from topology.catalogue import CASES_EVENTS

    return CaseSignals(conn, config.prefix + CASES_EVENTS, RegistryClient(conn.registry_url, auth=conn.registry_auth),
                       interval=min(interval, 5.0), request_timeout_ms=config.request_timeout_ms,
                       state_file=state_file)


def main() -> None:  # `python -m gplx_bus.commands.lag` until the command is registered in commands/__init__.py
    app(prog_name="gplx-bus lag")


if __name__ == "__main__":
    main()
