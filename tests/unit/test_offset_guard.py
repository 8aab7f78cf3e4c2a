"""The processor's offset guard (topology/processor/offsets.py): every record of an input partition reaches the agent,
in order, even when faust's consumer skipped some; holes without records cost one read and nothing else."""
import asyncio
from dataclasses import dataclass

import pytest

from topology.processor.offsets import OffsetGuard


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass
class Message:
    tp: TP
    offset: int
    generation_id: int = 1


P = TP("portal.applications", 10)


class Log:
    """What the guard sees of the broker: committed offsets, the log's start, the offsets that hold records."""

    def __init__(self, committed=None, start=0, records=range(100)):
        self.committed, self.start, self.records, self.fetches = dict(committed or {}), start, set(records), []

    async def earliest(self, tp):
        return self.start

    async def fetch(self, tp, start, end):
        self.fetches.append((start, end))
        return [Message(tp, o) for o in range(start, end) if o in self.records]

    def guard(self) -> OffsetGuard:
        return OffsetGuard(committed=self.committed.get, earliest=self.earliest, fetch=self.fetch)


def applied(guard, offsets, generation=1, tp=P) -> list:
    """The offsets the agent applies when faust delivers `offsets` in this order."""
    async def go():
        out = []
        for offset in offsets:
            message = Message(tp, offset, generation)
            out += [m.offset for m in await guard.missing_before(message)] + [offset]
        return out
    return asyncio.run(go())


def test_a_contiguous_partition_costs_nothing():
    log = Log(committed={P: 5})
    assert applied(log.guard(), [5, 6, 7]) == [5, 6, 7] and not log.fetches


def test_a_record_skipped_at_the_head_is_read_and_applied_first():
    """The traced loss: never committed, record 0 dropped by faust's consumer, 1.. delivered."""
    log = Log(committed={})
    guard = log.guard()
    assert applied(guard, [1, 2, 3]) == [0, 1, 2, 3] and log.fetches == [(0, 1)]
    assert guard.records_recovered == 1


def test_records_skipped_inside_a_partition_come_back_in_order():
    log = Log(committed={P: 10})
    assert applied(log.guard(), [10, 11, 14, 15]) == [10, 11, 12, 13, 14, 15]


def test_a_hole_without_records_is_passed_after_one_read():
    """A transaction's commit marker takes an offset that holds no record."""
    log = Log(committed={P: 3}, records=[3, 4, 6, 7])
    guard = log.guard()
    assert applied(guard, [3, 4, 6, 7]) == [3, 4, 6, 7]
    assert log.fetches == [(5, 6)] and guard.empty_holes == 1 and guard.records_recovered == 0


def test_redeliveries_are_applied_again_and_read_nothing():
    log = Log(committed={P: 0})
    assert applied(log.guard(), [0, 1, 2, 1, 2, 3]) == [0, 1, 2, 1, 2, 3] and not log.fetches


def test_a_new_generation_starts_again_from_the_committed_offset():
    log = Log(committed={P: 0})
    guard = log.guard()
    applied(guard, [0, 1, 2, 3])
    log.committed[P] = 2  # the rebalance: 2 and 3 were not committed, faust delivers them again
    assert applied(guard, [2, 3, 4], generation=2) == [2, 3, 4] and not log.fetches


@pytest.mark.parametrize("committed, start", [(None, 7), (7, 0)])
def test_the_start_is_the_committed_offset_else_the_log_start(committed, start):
    log = Log(committed={P: committed} if committed is not None else {}, start=start)
    assert applied(log.guard(), [8]) == [7, 8]


def test_partitions_are_independent():
    other = TP("payment.transactions", 10)
    log = Log(committed={P: 0, other: 4})
    guard = log.guard()
    assert applied(guard, [0, 1]) == [0, 1] and applied(guard, [4, 5], tp=other) == [4, 5]
    assert not log.fetches
