"""The monitor with a scripted reader: snapshots carry their own times, so no clock and no broker."""
import pytest

from consumers.lag import LagConfig, LagMonitor
from consumers.lag.model import GroupObservation, OffsetSnapshot

CFG = LagConfig(group_pattern="^gplx", window_seconds=30, stall_after_seconds=20)
TP0 = ("cases.province.HN", 0)


class ScriptedReader:
    def __init__(self, snapshots, record_ts=None):
        self.snapshots = list(snapshots)
        self.record_ts = record_ts or {}
        self.lookups = 0

    def snapshot(self, wants_group, extra_topics):
        snap = self.snapshots.pop(0)
        if isinstance(snap, Exception):
            raise snap
        return OffsetSnapshot(snap.taken_at, snap.end_offsets, {g: o for g, o in snap.groups.items() if wants_group(g)})

    def record_timestamp(self, tp, offset):
        self.lookups += 1
        return self.record_ts.get((tp, offset))

    def close(self):
        pass


def snap(at, end, committed, assigned=True, group="gplx-sub-HN", dlq_end=None):
    ends = {TP0: end}
    if dlq_end is not None:
        ends[("dlq", 0)] = dlq_end
    obs = GroupObservation(group, "Stable" if assigned else "Empty", {TP0: committed},
                           frozenset({TP0}) if assigned else frozenset())
    return OffsetSnapshot(at, ends, {group: obs, "other-team": obs})


def run(snaps, **kw):
    reader = ScriptedReader(snaps, **kw)
    m = LagMonitor(CFG, reader_factory=lambda: reader)
    return [m.sample() for _ in range(len(snaps))], reader


def row(report):
    [g] = report.groups
    [p] = g.partitions
    return g, p


def test_filters_groups_and_classifies_by_topic():
    [r], _ = run([snap(0, 10, 10)])
    g, p = row(r)
    assert (g.group, g.group_class) == ("gplx-sub-HN", "province-subscriber")
    assert (p.lag_messages, p.lag_seconds, p.status) == (0, 0.0, "OK")


def test_consumer_stops_then_resumes():
    snaps = [snap(t, 10 + t, 10, assigned=False) for t in range(0, 31, 5)]  # producer goes on, group gone
    snaps.append(snap(35, 45, 45))  # back and caught up
    reports, reader = run(snaps)
    secs = [row(r)[1].lag_seconds for r in reports[1:-1]]
    assert all(b - a == pytest.approx(5.0) for a, b in zip(secs, secs[1:]))  # wall-clock rate
    assert row(reports[-2])[0].status == "STOP"
    assert row(reports[-1])[0].status == "OK"
    assert reader.lookups == 0  # everything after the first sample was inside the table


def test_first_sample_uses_record_timestamp_then_lower_bound():
    reports, reader = run([snap(100, 20, 5), snap(110, 20, 6)], record_ts={(TP0, 5): 40.0})
    assert row(reports[0])[1].lag_seconds_source == "record-timestamp"
    assert row(reports[0])[1].lag_seconds == pytest.approx(60.0)
    assert row(reports[1])[1].lag_seconds_source == "lower-bound"  # offset 6 unknown to the fake reader
    assert row(reports[1])[1].lag_seconds == pytest.approx(10.0)


def test_reader_errors_propagate_and_reconnect():
    reader = ScriptedReader([ConnectionError("gone"), snap(0, 1, 1)])
    made = []
    m = LagMonitor(CFG, reader_factory=lambda: made.append(1) or reader)
    with pytest.raises(ConnectionError):
        m.sample()
    assert m.sample().groups[0].status == "OK"
    assert len(made) == 2


def test_a_partition_never_committed_counts_from_the_log_start():
    tp1 = ("cases.province.HN", 1)
    obs = GroupObservation("gplx-sub-HN", "Empty", {TP0: 7}, frozenset(), never_committed=frozenset({tp1}))
    reader = ScriptedReader([])
    reader.snapshot = lambda wants, extra: OffsetSnapshot(0, {TP0: 10, tp1: 120}, {"gplx-sub-HN": obs},
                                                           start_offsets={tp1: 20})
    [g] = LagMonitor(CFG, reader_factory=lambda: reader).sample().groups
    rows = {p.partition: p for p in g.partitions}
    assert (rows[0].lag_messages, rows[0].never_committed) == (3, False)
    assert (rows[1].committed_offset, rows[1].lag_messages, rows[1].never_committed) == (20, 100, True)
    assert g.total_lag == 103
