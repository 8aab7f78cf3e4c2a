"""TopicFollower's promises to the case processor without a broker: a fake kafka-python consumer in one `_round`."""
from __future__ import annotations

import re
import time

import pytest
from kafka.errors import UnsupportedVersionError
from kafka.structs import TopicPartition

from consumers.follower import FollowerError, TopicFollower
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


# -- the start: a broker away is waited for; an answer that will not change is final ---------------------------------

class _TopicConsumer(_Consumer):
    """A reachable one-partition topic, read to its end (offset 0 of an empty topic)."""

    def __init__(self, partitions):
        super().__init__(position=0, highwater=0)
        self.partitions, self.closed = partitions, False

    def partitions_for_topic(self, topic):
        if isinstance(self.partitions, Exception):  # its metadata request failed
            raise self.partitions
        return self.partitions

    def assign(self, tps):
        pass

    def seek_to_beginning(self, *tps):
        pass

    def end_offsets(self, tps):
        return {tp: 0 for tp in tps}

    def close(self):
        self.closed = True


def _starting(monkeypatch, failures: list[Exception], partitions=frozenset({0})):
    """A follower whose consumer's making fails with each of `failures` in turn, then works; the attempts made."""
    from consumers import backoff, follower as module

    attempts = []

    def new_client(cls, **configs):
        attempts.append(_TopicConsumer(set(partitions)))
        if len(attempts) <= len(failures):
            failure = failures[len(attempts) - 1]
            if isinstance(failure, tuple):  # ("metadata", error): made, then its metadata request fails
                attempts[-1].partitions = failure[1]
                return attempts[-1]
            raise failure
        return attempts[-1]

    monkeypatch.setattr(module, "new_client", new_client)
    monkeypatch.setattr(module, "_CONNECT_BACKOFF", backoff.Backoff(base_s=0.0, max_s=0.0, jitter=0.0), raising=False)
    follower = TopicFollower(Connection(), registry=None, topic=TOPIC, apply=lambda record, event: None, name="t")
    return follower.start(), attempts


def test_a_broker_away_at_the_start_is_waited_for(monkeypatch):
    """Seen in a controller kill: the case processor starts its key follower at the first certificate; a connection
    error then made every later check fail (FollowerError) until the worker was restarted."""
    from kafka.errors import KafkaConnectionError, KafkaTimeoutError

    follower, attempts = _starting(monkeypatch, [KafkaTimeoutError("bootstrap"), ConnectionRefusedError(),
                                                 ("metadata", KafkaConnectionError("socket disconnected"))])
    try:
        follower.catch_up(timeout_s=5)  # raised "cannot read clinics.keys: KafkaTimeoutError" before
        assert len(attempts) == 4
        assert attempts[2].closed and not attempts[3].closed  # the client whose metadata failed was closed
    finally:
        follower.close()


@pytest.mark.parametrize("partitions, failures, says", [
    (frozenset({0}), [UnsupportedVersionError("no")], "cannot read clinics.keys: UnsupportedVersionError"),
    (frozenset({0}), [ValueError("bad config")], "cannot read clinics.keys: ValueError"),
    (frozenset(), [], "topic clinics.keys does not exist or this login may not see it"),
], ids=["non-retriable", "not-kafka", "missing"])
def test_an_error_that_will_not_change_fails_at_once(monkeypatch, partitions, failures, says):
    follower, attempts = _starting(monkeypatch, failures, partitions)
    try:
        started = time.monotonic()
        with pytest.raises(FollowerError, match=re.escape(says)):
            follower.catch_up(timeout_s=5)
        assert time.monotonic() - started < 2 and len(attempts) == 1
    finally:
        follower.close()
