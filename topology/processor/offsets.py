"""No input record skipped: the agent checks that each input partition's offsets reach it without a hole, and reads
what faust's consumer skipped itself, before the record that revealed the hole.

Why: faust 0.15.3 can drop a record it has already fetched when a rebalance lands between the fetch and the agent,
and then commit past it. Traced on the broker (README, Reliability findings): a record fetched while the worker
recovers its tables sits in the stream's queue; faust seeks the partition to its committed offset (a no-op when the
group never committed there) and then clears the queue as it resumes; the partition reads on from the next offset,
and faust's commit goes past the hole (it takes holes for transaction markers, see `Consumer._add_gap`). The
citizen's case would miss an input for good.

So the agent knows, per input partition and consumer generation, the next offset it expects: the committed one when
the partition is (re)assigned, else 0 (below the log's start, the read finds nothing and passes on). A record beyond
it means offsets in between did not reach the agent: they are read directly from the log (`fetch`, a plain consumer
outside the group) and applied first, in order. Usually there are none: a transaction's commit marker takes an
offset that holds no record. Records below
the expected offset (faust's own re-deliveries) are applied again: the assembler applies an input once, by its
event id. Seeking faust's consumer back instead was tried and does not work while records flow: records already
fetched move faust's read offset on after the seek, and it then drops the records read again.

A hole at a partition's end (every record of it, when all came during the rebalance) is revealed by no later record.
A timer (`check_idle`), once the agent has received nothing for a few seconds, looks for partitions whose end is
beyond the offset expected, reads the offsets between from the log, and seeks faust's consumer back to them: with
nothing in flight, no record fetched earlier moves the seek on.
"""
from __future__ import annotations

import asyncio
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Awaitable, Callable, Optional

log = logging.getLogger("gplx.processor.offsets")


#: Seconds without a record of a partition after which a gap between the last offset applied and the partition's end
#: is read from the log (`OffsetGuard.check_idle`).
IDLE_S = 5.0


@dataclass
class _Partition:
    generation: int
    expected: int  # the next offset to apply
    seen_at: float  # monotonic time of the last record (or of the assignment)
    suspect_at: Optional[float] = None  # when check_idle first saw the end beyond `expected` (see there)


class OffsetGuard:
    """Record by record, what must be applied before it; and, for idle partitions, whether records never came at all
    (see the module docstring).

    Keyword-only:
        committed: the group's committed offset of a partition as faust holds it (None if never committed).
        fetch: awaitable, the records of a partition from one offset up to (not including) another, in order.
        passed: awaitable, told each hole (partition, first offset, last offset) once `missing_before` has handed
            its records to the agent: faust's consumer must count those offsets as done (`Consumer._add_gap`), or
            its commit stays below the hole for good. It never delivered them, so it never acks them, and it adds
            such a gap itself only between two records it delivered: a hole at the head of a partition after a
            rebalance stopped the group's commit there (soak, session 8: two partitions' commits stayed at
            offset 15 while the worker applied 1,400 records after them). The gap counts once an offset after
            it is acked, that is once the agent's batch holding the hole's records is done.
        clock: monotonic seconds (a parameter for tests).
    """

    def __init__(self, *, committed: Callable[[object], Optional[int]],
                 fetch: Callable[[object, int, int], Awaitable[list]],
                 passed: Callable[[object, int, int], Awaitable[None]] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self._committed, self._fetch, self._clock = committed, fetch, clock
        self._passed = passed
        self._partitions: dict[object, _Partition] = {}
        self.records_recovered = 0  # records faust's consumer skipped, read by `fetch` and applied
        self.empty_holes = 0  # holes without records (transaction markers, deleted or compacted records)
        self.tails_reread = 0  # idle partitions sought back to records that never reached the agent
        self._last_record_at = clock()  # of any partition
        self._applying = 0  # batches the agent is working on now (0 or 1)

    def _partition(self, tp, generation: int) -> _Partition:
        part = self._partitions.get(tp)
        if part is None or part.generation != generation:
            # (Re)assigned: faust has sought the partition to its committed offset (never committed: the log's
            # start; a read below it finds no record, so 0 costs one read at most where the log start is not 0).
            part = self._partitions[tp] = _Partition(generation, self._committed(tp) or 0, self._clock())
        return part

    async def missing_before(self, message) -> list:
        """The records of `message`'s partition that did not reach the agent before it (usually none)."""
        tp, offset = message.tp, message.offset
        part = self._partition(tp, message.generation_id)
        part.seen_at = self._last_record_at = self._clock()
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
            if self._passed is not None:
                await self._passed(tp, part.expected, offset - 1)
        part.expected = offset + 1
        return missing

    @contextmanager
    def applying(self):
        """Around the agent's work on a batch: busy, not idle, however long one record takes. A registry outage
        held the agent in a retry on one record for 30 s; its next records waited in faust's queue, and a check
        that took "nothing received" for idle sought them back: 1,119 outputs written twice (faults harness,
        registry down 30 s)."""
        self._applying += 1
        try:
            yield
        finally:
            self._applying -= 1
            self._last_record_at = self._clock()

    async def check_idle(self, tps, *, generation: int, highwater: Callable[[object], Optional[int]],
                         seek: Callable[[object, int], Awaitable[None]], idle_s: float = IDLE_S) -> None:
        """The hole no later record reveals: records dropped at a partition's end (all of a partition's records,
        when they came during a rebalance). Only once the agent is not `applying` a batch and received nothing at
        all for `idle_s`: until then a partition's records may wait in faust's queue behind other partitions' (a
        busy partition's hole shows at its next record anyway). Then, for each of `tps` (assigned, generation
        `generation`) whose end is beyond the next offset expected, the offsets between are read from the log; if
        they hold records, faust's consumer is sought back to them (nothing is in flight, so no record fetched
        earlier moves the seek on) and the agent gets them in order; if not, they are passed."""
        now = self._clock()
        if self._applying or now - self._last_record_at < idle_s:
            return
        for tp in tps:
            part = self._partition(tp, generation)
            end, expected = highwater(tp), part.expected
            if end is None or end <= expected or now - part.seen_at < idle_s:
                part.suspect_at = None
                continue
            # Two looks: records that reached the log just now (this worker's own clock ticks) may be on their way
            # to the agent. Only a gap that stayed while the agent received nothing for another idle_s is a hole.
            if part.suspect_at is None or part.suspect_at < self._last_record_at:
                part.suspect_at = now  # the first look (again, if the agent received anything since the last)
                continue
            if now - part.suspect_at < idle_s:
                continue
            part.suspect_at = None
            records = await self._fetch(tp, expected, end)
            if (part.generation != generation or part.expected != expected
                    or self._applying or self._last_record_at > now):
                continue  # the agent moved on meanwhile (a seek now could catch records waiting in faust's queue)
            if records:
                self.tails_reread += 1
                log.warning("%s[%s]: %d record(s) from offset %s had not reached the agent; reading them again",
                            tp.topic, tp.partition, len(records), expected)
                part.seen_at = self._clock()  # one seek per idle period
                await seek(tp, expected)
            else:
                self.empty_holes += 1
                part.expected = end


class LogReader:
    """`OffsetGuard`'s fetch: reads a partition's log with its own aiokafka consumer, outside the group
    (no commit, no rebalance), started at the first use and shared by the agent and the idle check (one at a time).
    Its isolation level is faust's consumer's (read_uncommitted under at-least-once), so it returns what faust would
    have delivered."""

    def __init__(self, client_kwargs: dict, *, timeout_s: float = 30.0):
        self._kwargs, self._timeout_s = client_kwargs, timeout_s
        self._consumer = None
        self._lock = asyncio.Lock()

    async def _assigned(self, tp):
        from aiokafka import AIOKafkaConsumer, TopicPartition

        if self._consumer is None:
            # earliest: an offset below the log's start (deleted by retention) reads from the start
            self._consumer = AIOKafkaConsumer(**self._kwargs, group_id=None, enable_auto_commit=False,
                                              auto_offset_reset="earliest", fetch_max_wait_ms=50)
            await self._consumer.start()
        if tp is None:  # started only (end_offsets)
            return None
        partition = TopicPartition(tp.topic, tp.partition)
        self._consumer.assign([partition])
        return partition

    async def fetch(self, tp, start: int, end: int) -> list:
        """Raises TimeoutError after timeout_s (the worker then stops rather than commit past records it could not
        read; restarted, it reads them from the last commit)."""
        async with self._lock:
            try:
                return await asyncio.wait_for(self._fetch(tp, start, end), self._timeout_s)
            except asyncio.TimeoutError:
                raise TimeoutError(f"could not read {tp.topic}[{tp.partition}] offsets {start}..{end - 1} "
                                   f"in {self._timeout_s:.0f}s") from None

    async def _fetch(self, tp, start: int, end: int) -> list:
        partition = await self._assigned(tp)
        self._consumer.seek(partition, start)
        records = []
        while await self._consumer.position(partition) < end:
            batch = await self._consumer.getmany(partition, timeout_ms=500)
            records += [r for r in batch.get(partition, ()) if start <= r.offset < end]
        return records

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """The end offsets (partition -> high-water mark) of every partition of `topic`, asked of the broker now."""
        from aiokafka import TopicPartition

        async with self._lock:
            if self._consumer is None:
                await self._assigned(None)
            # aiokafka keeps metadata of the topics it reads; this one it may not read (no public accessor)
            partitions = await self._consumer._client._wait_on_metadata(topic)
            ends = await self._consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
            return {tp.partition: offset for tp, offset in ends.items()}

    async def stop(self) -> None:
        async with self._lock:
            if self._consumer is not None:
                await self._consumer.stop()
                self._consumer = None
