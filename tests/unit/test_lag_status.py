"""Status rules as tables: (window of (t, committed, end, lag_seconds, assigned), expected status)."""
import pytest

from consumers.lag.status import Sample, Status, Thresholds, group_status, partition_status

TH = Thresholds(sla_seconds=60.0, stall_after_seconds=30.0, warn_min_samples=3)


def w(*rows):
    return [Sample(at, c, e, ls, assigned) for at, c, e, ls, assigned in rows]


CASES = [
    ("empty window", w(), Status.UNKNOWN),
    ("idle topic, caught up", w((0, 5, 5, 0, False), (40, 5, 5, 0, False)), Status.OK),
    ("caught up after a backlog", w((0, 1, 9, 5, True), (10, 9, 9, 0, True)), Status.OK),
    ("healthy, moving, small lag", w((0, 1, 3, 1, True), (10, 4, 5, 1, True), (20, 8, 9, 1, True)), Status.OK),
    ("rewind", w((0, 10, 20, 1, True), (10, 4, 20, 9, True), (20, 20, 20, 0, True)), Status.REWIND),
    ("stopped, nobody owns it", w((0, 5, 8, 3, False), (15, 5, 9, 18, False), (30, 5, 10, 33, False)), Status.STOP),
    ("alive but not moving", w((0, 5, 8, 3, True), (15, 5, 8, 18, True), (30, 5, 8, 33, True)), Status.STALL),
    ("caught up, then stopped while records arrived", w((0, 5, 5, 0, False), (10, 5, 6, 1, False), (40, 5, 9, 31, False)),
     Status.STOP),
    ("not moving but window too short", w((0, 5, 8, 3, True), (10, 5, 8, 13, True)), Status.OK),
    ("stuck shorter than threshold, lag growing", w((0, 5, 6, 1, True), (10, 5, 7, 11, True), (19, 5, 8, 21, True)),
     Status.WARN),
    ("over SLA while moving", w((0, 1, 90, 70, True), (10, 2, 90, 75, True)), Status.ERR),
    ("lag growing while moving", w((0, 1, 5, 1, True), (10, 2, 7, 2, True), (20, 3, 9, 3, True)), Status.WARN),
    ("lag up then down", w((0, 1, 5, 1, True), (10, 2, 9, 2, True), (20, 8, 10, 1, True)), Status.OK),
    ("lag growing, too few samples", w((0, 1, 5, 1, True), (10, 2, 9, 2, True)), Status.OK),
]


@pytest.mark.parametrize("name,window,expected", CASES, ids=[c[0] for c in CASES])
def test_partition_status(name, window, expected):
    assert partition_status(window, TH) is expected


def test_group_status_is_the_worst_partition():
    assert group_status([Status.OK, Status.STOP, Status.WARN]) is Status.STOP
    assert group_status([Status.STALL, Status.REWIND]) is Status.REWIND
    assert group_status([]) is Status.UNKNOWN


def test_codes_are_burrows():
    assert [s.value for s in Status] == [0, 1, 2, 3, 4, 5, 6]
