"""`records_to_end`'s deadline bounds every lookup that can wait on a broker, not only the polls.

A fake kafka-python consumer stands in for one whose partition has no answering leader: its end-offset and
position lookups wait as long as they are allowed to, and an unbounded one fails the test at once instead of
hanging it. The same bound on the real cluster (a SIGSTOPped leader) is tested in tests/faults/test_three_nodes.py.
"""
from __future__ import annotations

import time

import pytest
from kafka.errors import KafkaTimeoutError
from kafka.structs import TopicPartition

from consumers.errors import ReadTimedOut
from consumers.read import records_to_end

TP = TopicPartition("cases.events", 0)


class LeaderlessConsumer:
    """Lookups that never complete: each waits its whole `timeout_ms` (briefly capped to keep the test fast)."""

    def __init__(self, *, ends_known: bool):
        self.ends_known = ends_known
        self.timeouts: list[tuple[str, int]] = []

    def _wait(self, call: str, timeout_ms) -> None:
        assert timeout_ms is not None, f"{call} without a bound would wait for kafka-python's request timeout"
        self.timeouts.append((call, timeout_ms))
        time.sleep(min(timeout_ms, 50) / 1000)

    def assign(self, tps):
        pass

    def end_offsets(self, tps, timeout_ms=None):
        self._wait("end_offsets", timeout_ms)
        if not self.ends_known:
            raise KafkaTimeoutError("Failed to get offsets by timestamps (test)")
        return {tp: 10 for tp in tps}

    def seek(self, tp, offset):
        pass

    def seek_to_beginning(self, tp):
        pass

    def position(self, tp, timeout_ms=None):
        self._wait("position", timeout_ms)
        return None  # kafka-python: the reset lookup did not finish within timeout_ms

    def poll(self, timeout_ms=0):
        return {}


@pytest.mark.parametrize("ends_known", [False, True], ids=["end-offsets-unanswered", "positions-unanswered"])
def test_a_read_ends_at_its_deadline_when_lookups_go_unanswered(ends_known):
    kafka = LeaderlessConsumer(ends_known=ends_known)
    started = time.monotonic()
    with pytest.raises(ReadTimedOut, match="did not reach its end within 1s"):
        list(records_to_end(kafka, [TP], timeout_s=1.0))
    assert time.monotonic() - started < 3
    calls = {call for call, _ in kafka.timeouts}
    assert calls == ({"end_offsets", "position"} if ends_known else {"end_offsets"})
    assert all(0 <= ms <= 1000 for _, ms in kafka.timeouts), kafka.timeouts  # each within what was left
