"""`gplx-bus subscribe --province CODE`: a province's cases, in Vietnamese, resumable.

Thin on purpose: options become a `ProvinceSubscriber` and an output; the work is in `consumers.subscriber`.
--from-beginning only applies where the province's consumer group has no committed offset yet; a group that has
committed always resumes where it left off (reset a group with Kafka's own tools if you really mean to re-read).
"""
from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Optional

import typer

from consumers.subscriber import JsonlOutput, ProvinceSubscriber, TableOutput, WebhookOutput
from gplx_bus.commands import options

from gplx_bus.errors import BadOutput  # noqa: F401 - defined there, imported here as before


def command(
    province: str = typer.Option(..., "--province", "-p", help="Current (01..96, 34 provinces) or old pre-2025 "
                                 "province code; an old code is mapped to the province it merged into."),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="Start at the oldest event where the "
                                        "group has no committed offset yet (otherwise: only new events)."),
    output: str = typer.Option("table", "--output", "-o", help="table | jsonl | webhook (with --webhook-url) | "
                               "an http(s) URL (webhook to that URL)."),
    webhook_url: Optional[str] = typer.Option(None, "--webhook-url", help="URL for --output webhook."),
    max_events: Optional[int] = typer.Option(None, "--max-events", "-n", min=1, help="Stop after N events."),
    idle_timeout: Optional[float] = typer.Option(None, "--idle-timeout", min=0.1,
                                                 help="Stop after S seconds without a new event."),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url(),
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
    verbose: bool = options.verbose(),
) -> None:
    """Show one province's case events (state and reasons in Vietnamese); commit after showing them.

    Example: gplx-bus subscribe --province 79 --from-beginning --output jsonl
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING if verbose else logging.CRITICAL)
    conn = options.connection(bootstrap, client_config, registry_url, registry_user, prefix)
    stop = threading.Event()
    sink = _output(output, webhook_url, stop)
    subscriber = ProvinceSubscriber(conn, conn.registry_url, province, output=sink, prefix=conn.prefix,
                                    from_beginning=from_beginning)
    typer.echo(f"Tỉnh/thành: {subscriber.province.describe()} — topic {subscriber.topic}, "
               f"nhóm {subscriber.group_id}", err=True)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        result = subscriber.run(max_events=max_events, idle_timeout_s=idle_timeout, stop=stop)
    except KeyboardInterrupt:
        stop.set()
        return
    finally:
        sink.close()
    skipped = f", {result.skipped} bản ghi không đọc được (bỏ qua)" if result.skipped else ""
    typer.echo(f"{result.events} sự kiện{skipped}.", err=True)


def _output(kind: str, webhook_url: Optional[str], stop: threading.Event):
    if kind == "table":
        return TableOutput()
    if kind == "jsonl":
        return JsonlOutput()
    if kind == "webhook":
        if not webhook_url:
            raise BadOutput("--output webhook needs --webhook-url URL")
        return WebhookOutput(webhook_url, stop=stop)
    if kind.startswith(("http://", "https://")):
        return WebhookOutput(kind, stop=stop)
    raise BadOutput(f"--output {kind!r}: use table, jsonl, webhook (with --webhook-url) or an http(s) URL")
