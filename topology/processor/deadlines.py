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
from typing import Callable, Collection, Iterable, Iterator, MutableMapping

Index = MutableMapping[bytes, dict]  # the faust table, or a dict in tests


def bucket_key(partition: int, due: datetime) -> bytes:
    return f"{partition}/{due.astimezone(timezone.utc):%Y-%m-%dT%H}".encode()


def place(index: Index, partition: int, cccd: str, before: datetime | None, after: datetime | None) -> None:
    """Record that the citizen's deadline moved from `before` to `after` (None: no open case or no deadline).
    Writes only what changes, so an input that leaves the deadline alone costs one read."""
    place_all(index, [(partition, cccd, before, after)])


Move = tuple[int, str, "datetime | None", "datetime | None"]  # (partition, cccd, before, after), as for `place`


def place_all(index: Index, moves: Iterable[Move], select: Callable[[int], None] | None = None) -> None:
    """`place` for many citizens (one move each, e.g. the citizens of one batch): every hour's bucket they touch is
    read once and written once, if it changed. Why: an hour's bucket holds up to a few hundred citizens, and a batch
    of a replay touches many of them; a write per citizen re-encoded the whole bucket each time (O(n²) per hour).
    `select(partition)` is called before a bucket of that partition is read (the agent sets faust's current event:
    the table reads and writes the store and changelog partition of the current event)."""
    changes: dict[bytes, dict[str, str | None]] = {}  # bucket -> cccd -> its entry there (None: removed)
    for partition, cccd, before, after in moves:
        new = None if after is None else bucket_key(partition, after)
        if before is not None and bucket_key(partition, before) != new:
            changes.setdefault(bucket_key(partition, before), {})[cccd] = None
        if new is not None:
            changes.setdefault(new, {})[cccd] = after.isoformat()
    for key, change in changes.items():
        if select is not None:
            select(int(key.split(b"/", 1)[0]))
        entries = index.get(key) or {}
        updated = {c: at for c, at in entries.items() if change.get(c, at) is not None}
        updated.update((c, at) for c, at in change.items() if at is not None)
        if updated == entries:
            continue
        if updated:
            index[key] = updated  # a new value: faust logs assignments only
        else:
            del index[key]


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
