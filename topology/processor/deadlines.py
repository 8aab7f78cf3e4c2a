"""The deadline index: which citizens have a case deadline in which hour, per partition (issue 15).

Why: the timer used to read every citizen's state on every tick, O(citizens) when a handful of cases are due.
It now reads this index: the keys (one per partition and hour that holds a deadline) and the entries of the hours
that have begun, so a tick costs O(hours of the 5-working-day horizon + cases due), whatever the citizens.

Where it lives: the faust table `deadlines` beside `citizens`, with its own changelog. Keys are
`<partition>/<UTC hour of the deadline>`, values `{cccd: deadline ISO}`. Only the agent writes it, in the same
event as the citizen's state, and faust sends a table change to the changelog partition of the event being
processed: the index entries of a citizen live on the citizen's partition, so the worker that owns that partition
restores them from the same partition of the index's changelog and a rebalance moves them together. The key names
its partition because faust's memory store keeps every partition in one dict (two partitions, same hour).

Why an hour per key: a key per case would make the tick read every case's key; a key per partition would rewrite
that partition's whole index on every change. An hour holds the deadlines of the cases submitted in that hour
2 or 5 working days earlier: tens to a few hundred per partition.

Crash safety (at-least-once): the state and the index are two changelog records, and a crash can keep one and lose
the other; the input is then processed again, as a replay that leaves the state as it is. So the agent re-asserts
the citizen's current entry on every event (`place`: an entry lost is written again), and an entry left behind
(its state moved on) is found due by the timer like any other: its ClockTick decides nothing (the case is not due:
it only moves the case's clock, as any tick), and the agent then drops every entry of that citizen in the hours
up to the tick but the current one (`drop_stale`).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Collection, Iterator, MutableMapping

Index = MutableMapping[bytes, dict]  # the faust table, or a dict in tests


def bucket_key(partition: int, due: datetime) -> bytes:
    return f"{partition}/{due.astimezone(timezone.utc):%Y-%m-%dT%H}".encode()


def place(index: Index, partition: int, cccd: str, before: datetime | None, after: datetime | None) -> None:
    """Record that the citizen's deadline moved from `before` to `after` (None: no open case or no deadline).
    Writes only what changes, so an input that leaves the deadline alone costs one read."""
    if before is not None and (after is None or bucket_key(partition, before) != bucket_key(partition, after)):
        _remove(index, bucket_key(partition, before), cccd)
    if after is not None:
        key = bucket_key(partition, after)
        entries = index.get(key) or {}
        if entries.get(cccd) != after.isoformat():
            index[key] = {**entries, cccd: after.isoformat()}  # a new value: faust logs assignments only


def _remove(index: Index, key: bytes, cccd: str) -> None:
    entries = index.get(key) or {}
    if cccd not in entries:
        return
    rest = {c: at for c, at in entries.items() if c != cccd}
    if rest:
        index[key] = rest
    else:
        del index[key]


def drop_stale(index: Index, partition: int, cccd: str, ticked_at: datetime, current: datetime | None) -> None:
    """After a ClockTick: remove the citizen from this partition's hours up to the tick but its current deadline's.
    Reads the bucket keys (a tick happens for due cases only)."""
    prefix, last = f"{partition}/".encode(), bucket_key(partition, ticked_at)
    keep = None if current is None else bucket_key(partition, current)
    for key in [k for k in index.keys() if k.startswith(prefix) and k <= last and k != keep]:
        _remove(index, key, cccd)


def due(index: Index, now: datetime, partitions: Collection[int]) -> Iterator[str]:
    """The citizens (cccd) of `partitions` whose indexed deadline is at or before `now`; reads only the hours that
    have begun. `partitions`: this worker's active ones (faust's memory store keeps a revoked partition's keys)."""
    hour = bucket_key(0, now).split(b"/", 1)[1]
    for key in list(index.keys()):  # a copy: the agent may change the table between two awaits of the timer
        partition, bucket = key.split(b"/", 1)
        if bucket > hour or int(partition) not in partitions:
            continue
        for cccd, at in (index.get(key) or {}).items():
            if datetime.fromisoformat(at) <= now:
                yield cccd
