"""InFlight (is anything still in flight?) over fake admin clients: it settles after two equal looks with no lag,
and after a failed look it asks on a new client instead of the one that failed."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from kafka.errors import KafkaTimeoutError
from kafka.structs import TopicPartition

from consumers.lag.inflight import InFlight

TP = TopicPartition("t", 0)


class FakeAdmin:
    """Answers like KafkaAdminClient for one topic of one partition: end offset `end`, group committed `at`."""

    def __init__(self, end: int, at: int, fails: bool = False):
        self.end, self.at, self.fails, self.closed = end, at, fails, False

    def describe_topics(self, topics):
        return [{"name": "t", "partitions": [{"partition_index": 0}]}]

    def list_partition_offsets(self, specs):
        if self.fails:
            raise KafkaTimeoutError("no answer")
        return {TP: SimpleNamespace(offset=self.end)}

    def list_group_offsets(self, groups):
        return {"g": {TP: SimpleNamespace(offset=self.at)}}

    def close(self):
        self.closed = True


@pytest.fixture
def admins(monkeypatch):
    """The admin clients connect() hands out, in order."""
    made: list[FakeAdmin] = []
    queue: list[FakeAdmin] = []

    def connect(_connection, **_):
        made.append(queue.pop(0))
        return made[-1]

    monkeypatch.setattr("topology.apply.connect", connect)
    return SimpleNamespace(made=made, queue=queue)


def test_settled_after_two_equal_looks_without_lag(admins):
    admins.queue += [FakeAdmin(end=5, at=5)]
    flight = InFlight("127.0.0.1:9092", {"g": ["t"]})
    assert not flight.settled()  # the first look has nothing to compare with
    assert flight.settled()


def test_lag_is_not_settled(admins):
    admins.queue += [FakeAdmin(end=5, at=3)]
    flight = InFlight("127.0.0.1:9092", {"g": ["t"]})
    assert not flight.settled() and not flight.settled()
    assert flight.lag == 2 and flight.lag_by_group == {"g": 2}


def test_a_failed_look_is_asked_again_on_a_new_client(admins):
    admins.queue += [FakeAdmin(end=5, at=5, fails=True), FakeAdmin(end=5, at=5)]
    flight = InFlight("127.0.0.1:9092", {"g": ["t"]})
    assert flight.look() is None and flight.error == "KafkaTimeoutError"
    assert admins.made[0].closed
    assert flight.look() is not None and flight.error is None
    assert len(admins.made) == 2  # the second look asked the new client
