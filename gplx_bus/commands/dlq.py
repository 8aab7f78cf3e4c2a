"""`gplx-bus dlq list|show|replay`: the dead letters, for the operator/SRE principal (the DLQ holds original bytes,
i.e. personal data). Thin: the work is in `consumers.dlq`."""
from __future__ import annotations

import base64
import datetime as dt
import json
import re
from enum import Enum
from typing import Optional

import typer
from kafka import KafkaProducer
from kafka.errors import KafkaError
from rich.console import Console
from rich.table import Table

from consumers.dlq import Filter, decode_original, read_letters, replay as replay_letters
from consumers.dlq.letters import DlqError, consumer
from gplx_bus.commands import options
from schemas.registry import RegistryClient
from schemas.serde import AvroDeserializer
from topology import catalogue as topics
from topology.catalogue import Catalogue
from topology.connection import Connection

app = typer.Typer(help="Dead letters: list, show (original bytes decoded), replay once after a fix.",
                  no_args_is_help=True)
console = Console()


class Output(str, Enum):
    table = "table"
    jsonl = "jsonl"


_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _moment(text: Optional[str], flag: str) -> Optional[dt.datetime]:
    """An ISO time (local times are Vietnam's, UTC+7) or an age like 30m, 6h, 2d."""
    if not text:
        return None
    if m := _RELATIVE.match(text.strip()):
        return dt.datetime.now(dt.timezone.utc) - dt.timedelta(**{_UNITS[m[2]]: int(m[1])})
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r}: use an ISO time (2026-11-30T09:00) or an age (30m, 6h, 2d)",
                                 param_hint=flag) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone(dt.timedelta(hours=7)))


def _filter(ids, topic, code, since, until) -> Filter:
    return Filter(topic=topic, code=code.upper() if code else None, since=_moment(since, "--since"),
                  until=_moment(until, "--until"), ids=frozenset(ids or ()))


TopicOpt = typer.Option(None, "--topic", "-t", help="Original topic (with or without the prefix).")
CodeOpt = typer.Option(None, "--code", "-c", help="Error code, e.g. DOMAIN_INVALID, UNKNOWN_SCHEMA_ID.")
SinceOpt = typer.Option(None, "--since", help="First seen at or after: ISO time or an age (30m, 6h, 2d).")
UntilOpt = typer.Option(None, "--until", help="First seen before: ISO time or an age.")


def _read(conn: Connection, which: Filter):
    deserialize = AvroDeserializer(RegistryClient(conn.registry_url, auth=conn.registry_auth))
    dlq_topic = Catalogue.build(prefix=conn.prefix, provinces=[]).name(topics.DLQ)
    kafka = consumer(conn)
    try:
        views, unreadable = read_letters(kafka, deserialize, dlq_topic, which, prefix=conn.prefix)
    except KafkaError as exc:
        raise DlqError(f"reading {dlq_topic} failed: {type(exc).__name__}: {exc} (broker up? principal allowed "
                       f"to read the DLQ?)") from None
    finally:
        kafka.close()
    return views, unreadable, deserialize


@app.command("list")
def list_(
    topic: Optional[str] = TopicOpt,
    code: Optional[str] = CodeOpt,
    since: Optional[str] = SinceOpt,
    until: Optional[str] = UntilOpt,
    output: Output = typer.Option(Output.table, "--output", "-o", help="table or jsonl (one JSON object a line)."),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url(),
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
) -> None:
    """List dead letters (no payloads: ids, where from, why).

    Example: gplx-bus dlq list --topic portal.applications --code DOMAIN_INVALID --since 6h
    """
    conn = options.connection(bootstrap, client_config, registry_url, registry_user, prefix)
    views, unreadable, _ = _read(conn, _filter(None, topic, code, since, until))
    if output is Output.jsonl:
        for v in views:
            typer.echo(json.dumps(v.summary(), ensure_ascii=False))
    else:
        table = Table(title=f"{len(views)} dead letter(s)")
        for col in ("id", "first seen (UTC)", "original", "code", "reason"):
            table.add_column(col, overflow="fold")
        for v in views:
            s = v.summary()
            table.add_row(s["id"], s["first_seen_at"][:19], s["original"], s["error_code"], s["error_text"][:120])
        console.print(table)
    if unreadable:
        typer.echo(f"{unreadable} DLQ record(s) could not be decoded as DeadLetter (skipped)", err=True)


@app.command()
def show(
    letter_id: str = typer.Argument(..., help="Dead letter id (from `gplx-bus dlq list`)."),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url(),
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
) -> None:
    """One dead letter as JSON, with its original value decoded where the registry knows its schema (else hex and
    base64). Contains personal data: for the operator's terminal, not for tickets or logs.

    Example: gplx-bus dlq show 3f0c9a6e-1d2b-5c4e-9f70-0a1b2c3d4e5f
    """
    conn = options.connection(bootstrap, client_config, registry_url, registry_user, prefix)
    views, _, deserialize = _read(conn, _filter([letter_id], None, None, None, None))
    if not views:
        raise DlqError(f"no dead letter with id {letter_id} (list them with `gplx-bus dlq list`)")
    v = views[-1]
    lt = v.letter
    shown = {**v.summary(), "dlq_position": f"{v.partition}@{v.offset}",
             "original_key": lt.original_key.decode(errors="replace") if lt.original_key else None,
             "original_value": decode_original(lt, deserialize)}
    typer.echo(json.dumps(shown, ensure_ascii=False, indent=2, default=_json_default))


@app.command()
def replay(
    letter_ids: Optional[list[str]] = typer.Argument(None, help="Dead letter ids; or select with the filters."),
    topic: Optional[str] = TopicOpt,
    code: Optional[str] = CodeOpt,
    since: Optional[str] = SinceOpt,
    until: Optional[str] = UntilOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be replayed; send nothing."),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
    registry_url: Optional[str] = options.registry_url(),
    registry_user: Optional[str] = options.registry_user(),
    prefix: str = options.topic_prefix(),
) -> None:
    """Put dead letters back on their original topic and partition after their cause was fixed, once each:
    a copy carries the header gplx-replay-of=<id>, and one already replayed is skipped.

    Example: gplx-bus dlq replay --topic portal.applications --code DOMAIN_INVALID --dry-run
    """
    which = _filter(letter_ids, topic, code, since, until)
    if which == Filter():
        raise DlqError("name dead letter ids or a filter (--topic, --code, --since, --until); "
                       "`gplx-bus dlq list` shows them")
    conn = options.connection(bootstrap, client_config, registry_url, registry_user, prefix)
    views, _, _ = _read(conn, which)
    missing = which.ids - {v.letter.event_id for v in views}
    if missing:
        raise DlqError(f"no dead letter with id {', '.join(sorted(missing))} (see `gplx-bus dlq list`)")
    kafka = consumer(conn)
    producer = None if dry_run else KafkaProducer(**conn.kafka_python_kwargs(), acks="all", enable_idempotence=True,
                                                  client_id="gplx-dlq-replay")
    try:
        outcomes = replay_letters(views, kafka, producer, dry_run=dry_run)
    except KafkaError as exc:
        raise DlqError(f"replay stopped: {type(exc).__name__}: {exc}; replay again: done ones are skipped") from None
    finally:
        kafka.close()
        if producer is not None:
            producer.close()
    for o in outcomes:
        at = f"@{o.offset}" if o.offset is not None else ""
        typer.echo(f"{o.status:17} {o.letter_id} -> {o.target}{at}")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("replayed", "already-replayed", "would-replay")}
    typer.echo(", ".join(f"{n} {s}" for s, n in counts.items() if n) or "nothing matched", err=True)


def _json_default(value):
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)
