"""TopicFollower's promises to the case processor without a broker: a fake kafka-python consumer in one `_round`."""
from __future__ import annotations

import time

from kafka.structs import TopicPartition

from consumers.follower import TopicFollower
from topology.connection import Connection

TOPIC = "clinics.keys"
TP = TopicPartition(TOPIC, 0)


class _Consumer:
    """At offset `position` of a one-partition topic whose high-water mark is `highwater`; nothing to poll."""

    def __init__(self, position: int, highwater: int):
        self._position, self._highwater = position, highwater

    def poll(self, timeout_ms: int):
        return {}

    def position(self, tp):
        return self._position

    def highwater(self, tp):
        return self._highwater


def _follower(position: int, highwater: int, previous_poll: float) -> TopicFollower:
    follower = TopicFollower(Connection(), registry=None, topic=TOPIC, apply=lambda record, event: None, name="t")
    follower._round(_Consumer(position, highwater), [TP], previous_poll)
    return follower


def test_end_offsets_read_already_make_it_complete_as_of_when_they_were_asked():
    before = time.time() - 60
    follower = _follower(position=3, highwater=3, previous_poll=before)
    asked_at = time.time()
    assert not follower.complete_as_of(asked_at)  # the rounds alone: complete as of the previous poll only
    assert follower.confirm_as_of(asked_at, {0: 3})
    assert follower.complete_as_of(asked_at) and not follower.complete_as_of(asked_at + 1)
    assert follower.confirm_as_of(before, {0: 3}) and follower.complete_as_of(asked_at)  # never moves back


def test_a_record_not_read_yet_or_an_unknown_partition_confirms_nothing():
    follower = _follower(position=3, highwater=4, previous_poll=time.time() - 60)
    asked_at = time.time()
    assert not follower.confirm_as_of(asked_at, {0: 4})  # offset 3 is on the topic, not applied yet
    assert not follower.confirm_as_of(asked_at, {0: 3, 1: 0})  # a partition the follower does not read
    assert not follower.confirm_as_of(asked_at, {})
    assert not follower.complete_as_of(asked_at)


def test_a_follower_that_failed_confirms_nothing():
    follower = _follower(position=3, highwater=3, previous_poll=time.time() - 60)
    follower._error = "topic clinics.keys does not exist"
    assert not follower.confirm_as_of(time.time(), {0: 3})
