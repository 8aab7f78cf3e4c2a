"""Issue 15: the deadline index. A tick reads the cases due, not every citizen; the index agrees with a full scan
of the states at every moment of a recorded day; an entry a crash left behind is dropped after its tick."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.recorded_day import run_day
from topology.processor import citizen, deadlines

T = datetime(2025, 9, 3, 3, 0, tzinfo=timezone.utc)
ALL = range(12)  # the worker owns every partition


class CountingIndex(dict):
    """A dict that counts the entries (citizens) of the values it hands out: what a tick touches."""

    touched = 0

    def get(self, key, default=None):
        value = super().get(key, default)
        self.touched += len(value or {})
        return value


def index_of(n: int, due_soon: int) -> CountingIndex:
    """n citizens over 12 partitions, deadlines spread over the next 5 days; `due_soon` are already due."""
    index = CountingIndex()
    for i in range(n):
        due = T - timedelta(minutes=5 + i) if i < due_soon else T + timedelta(hours=2 + (i * 7) % 120)
        deadlines.place(index, i % 12, f"{i:012d}", None, due)
    return index


def test_a_tick_touches_only_the_cases_due():
    index = index_of(10_000, due_soon=3)
    index.touched = 0
    assert sorted(deadlines.due(index, T, ALL)) == [f"{i:012d}" for i in range(3)]
    assert index.touched == 3  # of 10,000 indexed citizens
    later = T + timedelta(days=6)
    assert len(list(deadlines.due(index, later, ALL))) == 10_000
    assert sorted(deadlines.due(index, later, {1, 2})) == sorted(f"{i:012d}" for i in range(10_000) if i % 12 in (1, 2))


def test_a_deadline_moves_and_goes():
    index = {}
    deadlines.place(index, 3, "001", None, T)
    deadlines.place(index, 3, "002", None, T + timedelta(minutes=10))
    assert index == {b"3/2025-09-03T03": {"001": T.isoformat(), "002": (T + timedelta(minutes=10)).isoformat()}}
    deadlines.place(index, 3, "001", T, T + timedelta(days=3))  # the notice went out: now the decision's
    assert index[b"3/2025-09-06T03"] == {"001": (T + timedelta(days=3)).isoformat()}
    assert list(deadlines.due(index, T + timedelta(minutes=10), ALL)) == ["002"]
    deadlines.place(index, 3, "002", T + timedelta(minutes=10), None)  # decided
    deadlines.place(index, 3, "001", T + timedelta(days=3), None)
    assert index == {}


def test_an_entry_a_crash_left_behind_is_ticked_once_then_dropped():
    index = {}
    deadlines.place(index, 5, "001", None, T)  # the notice deadline ...
    # ... moved to the decision's in the state, but the crash lost the index record; the replay re-asserts it
    deadlines.place(index, 5, "001", T + timedelta(days=3), T + timedelta(days=3))
    assert list(deadlines.due(index, T + timedelta(minutes=1), ALL)) == ["001"]  # the stale entry: one tick
    deadlines.drop_stale(index, 5, "001", T + timedelta(minutes=1), T + timedelta(days=3))
    assert list(deadlines.due(index, T + timedelta(minutes=1), ALL)) == []
    assert list(index) == [b"5/2025-09-06T03"]


def test_the_index_agrees_with_a_full_scan_through_a_recorded_day(monkeypatch):
    """Maintained as the agent does after each input, the index lists, at every tick of the day, exactly the
    citizens a scan of every state finds past their deadline (the timer's old way)."""
    from topology.processor import assembler

    index, states, checks = {}, {}, []
    handle = assembler.handle

    def handle_and_index(state, item, topic, offset, rules):
        before = citizen.deadline(state)
        step = handle(state, item, topic, offset, rules)
        states[item.cccd] = step.state
        deadlines.place(index, hash(item.cccd) % 12, item.cccd, before, citizen.deadline(step.state))
        if type(item).__name__ == "ClockTick":
            now = item.occurred_at
            scan = sorted(c for c, s in states.items() if (d := citizen.deadline(s)) is not None and d <= now)
            checks.append((sorted(deadlines.due(index, now, ALL)), scan))
        return step

    monkeypatch.setattr(assembler, "handle", handle_and_index)
    run_day()
    assert len(checks) > 500 and any(scan for _, scan in checks)
    assert all(listed == scan for listed, scan in checks)
