"""No input record skipped: the agent checks that each input partition's offsets reach it without a hole, and reads
what faust's consumer skipped itself, before the record that revealed the hole.

Why: faust 0.15.3 can drop a record it has already fetched when a rebalance lands between the fetch and the agent,
and then commit past it. Traced on the broker (README, Reliability findings): a record fetched while the worker
recovers its tables sits in the stream's queue; faust seeks the partition to its committed offset (a no-op when the
group never committed there) and then clears the queue as it resumes; the partition reads on from the next offset,
and faust's commit goes past the hole (it takes holes for transaction markers, see `Consumer._add_gap`). The
citizen's case would miss an input for good.

So the agent knows, per input partition and consumer generation, the next offset it expects: the committed one when
the partition is (re)assigned, else the log's start. A record beyond it means offsets in between did not reach the
agent: they are read directly from the log (`fetch`, a plain consumer outside the group) and applied first, in
order. Usually there are none: a transaction's commit marker takes an offset that holds no record. Records below
the expected offset (faust's own re-deliveries) are applied again: the assembler applies an input once, by its
event id. Seeking faust's consumer back instead was tried and does not work: records already fetched move faust's
read offset on after the seek, and it then drops the records read again.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable, Optional

log = logging.getLogger("gplx.processor.offsets")


@dataclass
class _Partition:
    generation: int
    expected: int  # the next offset to apply


class OffsetGuard:
    """Record by record, what must be applied before it (see the module docstring).

    Keyword-only:
        committed: the group's committed offset of a partition as faust holds it (None if never committed).
        earliest: awaitable, the first offset of a partition's log.
        fetch: awaitable, the records of a partition from one offset up to (not including) another, in order.
    """

    def __init__(self, *, committed: Callable[[object], Optional[int]],
                 earliest: Callable[[object], Awaitable[int]],
                 fetch: Callable[[object, int, int], Awaitable[list]]):
        self._committed, self._earliest, self._fetch = committed, earliest, fetch
        self._partitions: dict[object, _Partition] = {}
        self.records_recovered = 0  # records faust's consumer skipped, read by `fetch` and applied
        self.empty_holes = 0  # holes without records (transaction markers, deleted or compacted records)

    async def missing_before(self, message) -> list:
        """The records of `message`'s partition that did not reach the agent before it (usually none)."""
        tp, offset = message.tp, message.offset
        part = self._partitions.get(tp)
        if part is None or part.generation != message.generation_id:
            # (Re)assigned: faust has sought the partition to its committed offset.
            start = self._committed(tp)
            if start is None:
                start = await self._earliest(tp)
            part = self._partitions[tp] = _Partition(message.generation_id, start)
        if offset < part.expected:
            return []  # a re-delivery
        missing = []
        if offset > part.expected:
            missing = await self._fetch(tp, part.expected, offset)
            if missing:
                self.records_recovered += len(missing)
                log.warning("%s[%s]: %d record(s) between offsets %s and %s had not reached the agent; read "
                            "from the log and applied", tp.topic, tp.partition, len(missing), part.expected, offset - 1)
            else:
                self.empty_holes += 1
                log.debug("%s[%s]: offsets %s..%s hold no record", tp.topic, tp.partition, part.expected, offset - 1)
        part.expected = offset + 1
        return missing


class LogReader:
    """`OffsetGuard`'s fetch: reads a partition's records between two offsets with its own aiokafka consumer, outside
    the group (no commit, no rebalance), started at the first use. Its isolation level is faust's consumer's
    (read_uncommitted under at-least-once), so it returns what faust would have delivered."""

    def __init__(self, client_kwargs: dict, *, timeout_s: float = 30.0):
        self._kwargs, self._timeout_s = client_kwargs, timeout_s
        self._consumer = None

    async def fetch(self, tp, start: int, end: int) -> list:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(**self._kwargs, group_id=None, enable_auto_commit=False)
            await self._consumer.start()
        partition = TopicPartition(tp.topic, tp.partition)
        self._consumer.assign([partition])
        self._consumer.seek(partition, start)
        records = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        while await self._consumer.position(partition) < end:
            if loop.time() > deadline:  # the worker stops rather than commit past records it could not read
                raise TimeoutError(f"could not read {tp.topic}[{tp.partition}] offsets {start}..{end - 1} "
                                   f"in {self._timeout_s:.0f}s")
            batch = await self._consumer.getmany(partition, timeout_ms=500)
            records += [r for r in batch.get(partition, ()) if start <= r.offset < end]
        return records

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
