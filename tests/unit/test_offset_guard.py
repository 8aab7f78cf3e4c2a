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

    def __init__(self, committed=None, records=range(100)):
        self.committed, self.records, self.fetches = dict(committed or {}), set(records), []

    async def fetch(self, tp, start, end):
        self.fetches.append((start, end))
        return [Message(tp, o) for o in range(start, end) if o in self.records]

    def guard(self) -> OffsetGuard:
        self.passed = []  # holes the guard told faust's consumer about: (tp, first, last)

        async def passed(tp, first, last):
            self.passed.append((tp, first, last))
        return OffsetGuard(committed=self.committed.get, fetch=self.fetch, passed=passed)


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


def test_never_committed_starts_at_0_and_a_log_start_beyond_is_one_empty_read():
    log = Log(committed={}, records=range(7, 20))  # retention deleted 0..6
    guard = log.guard()
    assert applied(guard, [7, 8]) == [7, 8] and log.fetches == [(0, 7)] and guard.empty_holes == 1


def test_partitions_are_independent():
    other = TP("payment.transactions", 10)
    log = Log(committed={P: 0, other: 4})
    guard = log.guard()
    assert applied(guard, [0, 1]) == [0, 1] and applied(guard, [4, 5], tp=other) == [4, 5]
    assert not log.fetches


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def idle_check(guard, log, ends: dict, generation=1):
    seeks = []

    async def seek(tp, offset):
        seeks.append((tp, offset))
    asyncio.run(guard.check_idle(list(ends), generation=generation, highwater=ends.get, seek=seek, idle_s=5))
    return seeks


def test_records_that_never_reached_the_agent_at_a_partitions_end_are_read_again_once_idle():
    """All of a partition's records dropped during the rebalance: no later record reveals the hole."""
    log, clock = Log(committed={}), Clock()
    guard = OffsetGuard(committed=log.committed.get, fetch=log.fetch, clock=clock)
    clock.now = 6
    assert idle_check(guard, log, {P: 30}) == []  # first seen now: its records may be on their way
    clock.now = 12
    assert idle_check(guard, log, {P: 30}) == []  # first look at the gap
    clock.now = 18
    assert idle_check(guard, log, {P: 30}) == [(P, 0)] and guard.tails_reread == 1  # still there: a hole
    assert idle_check(guard, log, {P: 30}) == []  # one seek per idle period, not one per check
    assert applied(guard, range(30)) == list(range(30))  # what the consumer delivers after the seek
    clock.now = 40
    assert idle_check(guard, log, {P: 30}) == []  # caught up


def test_a_partition_ending_with_a_transaction_marker_is_passed_without_a_seek():
    log, clock = Log(committed={P: 0}, records=[0, 1, 2]), Clock()  # offset 3: the marker
    guard = OffsetGuard(committed=log.committed.get, fetch=log.fetch, clock=clock)
    applied(guard, [0, 1, 2])
    for clock.now in (6, 12, 18, 24):
        assert idle_check(guard, log, {P: 4}) == []
    assert log.fetches == [(3, 4)] and guard.empty_holes == 1  # passed for good: read once


def test_nothing_is_read_again_while_the_agent_receives_records():
    """A partition's records can wait in faust's queue behind other partitions' for longer than idle_s."""
    other = TP("payment.transactions", 3)
    log, clock = Log(committed={P: 0, other: 0}), Clock()
    guard = OffsetGuard(committed=log.committed.get, fetch=log.fetch, clock=clock)
    applied(guard, [0, 1])
    clock.now = 9
    applied(guard, [0], tp=other)  # the agent is busy with another partition
    clock.now = 12
    assert idle_check(guard, log, {P: 50}) == [] and not log.fetches
    clock.now = 15  # nothing received for 6 s: a first look
    assert idle_check(guard, log, {P: 50}) == []
    clock.now = 21  # and nothing since: P's records are not in flight
    assert idle_check(guard, log, {P: 50}) == [(P, 2)]


def test_records_that_just_reached_the_log_are_not_read_again():
    """This worker's own clock ticks: the timer writes them while the agent is idle; they arrive a moment later."""
    log, clock = Log(committed={P: 0}), Clock()
    guard = OffsetGuard(committed=log.committed.get, fetch=log.fetch, clock=clock)
    applied(guard, [0, 1])
    clock.now = 10
    assert idle_check(guard, log, {P: 4}) == []  # a first look at 2..3
    clock.now = 10.1
    applied(guard, [2, 3])  # delivered
    clock.now = 16
    assert idle_check(guard, log, {P: 4}) == [] and not log.fetches


def test_nothing_is_read_again_while_the_agent_is_stuck_on_a_record():
    """The registry down: the agent retries one record for as long as it takes; the records behind it wait in faust's
    queue. That is busy, not idle (once, 1,119 outputs were written twice when the check took it for idle)."""
    log, clock = Log(committed={P: 0}), Clock()
    guard = OffsetGuard(committed=log.committed.get, fetch=log.fetch, clock=clock)
    with guard.applying():
        applied(guard, [0])
        for clock.now in (6, 12, 18, 24, 30):
            assert idle_check(guard, log, {P: 50}) == []
    assert not log.fetches
    clock.now = 31  # the batch is done: idle only counts from here
    assert idle_check(guard, log, {P: 50}) == []
    clock.now = 37  # 7 s after the batch ended (37 s after its one record): a first look at most
    assert idle_check(guard, log, {P: 50}) == [] and not log.fetches
    applied(guard, range(1, 50))
    for clock.now in (40, 50, 60):
        assert idle_check(guard, log, {P: 50}) == []
    assert not log.fetches


def test_every_hole_is_reported_for_faust_to_count_as_done_and_nothing_else():
    log = Log(committed={P: 15}, records=set(range(100)) - {30})
    # 15..63 never reached the agent (recovered); 30 holds no record; 65, 66 are re-deliveries
    assert applied(log.guard(), [64, 65, 65, 66, 70]) == [*range(15, 30), *range(31, 65), 65, 65, 66,
                                                            67, 68, 69, 70]
    assert log.passed == [(P, 15, 63), (P, 67, 69)]


def test_faust_commits_past_a_reported_hole_and_not_before():
    """What the guard's report relies on in faust 0.15's consumer: acked offsets after a hole at the head of a
    partition are never committed (the soak's stuck partitions) until the hole is added as a gap."""
    import faust

    from faust.types import TP as FaustTP

    app = faust.App(f"guard-test-{id(object())}", broker="kafka://127.0.0.1:1", store="memory://")
    consumer = app.consumer  # built, not started: no broker is reached
    tp = FaustTP("t", 0)
    consumer._committed_offset[tp] = 15
    consumer._acked[tp] = [64, 65]
    consumer._acked_index[tp] = {64, 65}
    assert consumer._new_offset(tp) is None  # stuck below the hole
    asyncio.run(consumer._add_gap(tp, 15, 63))
    assert consumer._new_offset(tp) == 66
