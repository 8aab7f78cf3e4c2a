"""Micro-measure of one timer tick at N citizens with few cases due: the old full scan against the deadline index.

    .venv/bin/python -m tests.measure_tick [N ...]

Both read what a worker's RocksDB store would hand faust: JSON bytes, decoded on read (faust's table decodes each
value it returns). The states are copies of a real open case (tests/data/recorded-day), 1 in 1,000 past its
deadline, deadlines of the others spread over the next 5 days.
"""
from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta, timezone

from tests.recorded_day import STATES
from topology.processor import deadlines


class JsonStore(dict):
    """key -> JSON bytes, decoded on every read, as faust's table over RocksDB."""

    def __setitem__(self, key, value):
        super().__setitem__(key, json.dumps(value).encode())

    def get(self, key, default=None):
        raw = super().get(key)
        return default if raw is None else json.loads(raw)

    def items(self):
        return ((k, json.loads(v)) for k, v in super().items())


def build(n: int, now: datetime) -> tuple[JsonStore, JsonStore]:
    sample = json.loads(STATES.read_text())["open-case-missing-facts"]["state"]
    citizens, index = JsonStore(), JsonStore()
    for i in range(n):
        due = now - timedelta(minutes=1) if i % 1000 == 0 else now + timedelta(minutes=1 + i % (5 * 24 * 60))
        state = json.loads(json.dumps(sample))
        state["case"]["application"]["notice_due_at"] = due.isoformat()
        cccd = f"{i:012d}"
        citizens[cccd.encode()] = state
        deadlines.place(index, i % 12, cccd, None, due)
    return citizens, index


def old_tick(citizens: JsonStore, now: datetime) -> list[str]:
    """The timer before the index: every state decoded and looked at (its check, as it was, on the JSON)."""
    return [k.decode() for k, s in citizens.items() if _deadline_passed(s, now)]


def _deadline_passed(state: dict, now: datetime) -> bool:
    case = state.get("case")
    if not case or case["final"]:
        return False
    app = case["application"]
    due = app.get("decision_due_at") if case["status"] == "AWAITING" else app.get("notice_due_at")
    return due is not None and datetime.fromisoformat(due) <= now


def best_of(runs: int, fn, *args) -> tuple[float, list]:
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = list(fn(*args))
        best = min(best, time.perf_counter() - started)
    return best, result


def main(sizes: list[int]) -> None:
    now = datetime(2025, 9, 3, 3, 0, tzinfo=timezone.utc)
    for n in sizes:
        citizens, index = build(n, now)
        old, due_old = best_of(3, old_tick, citizens, now)
        new, due_new = best_of(3, deadlines.due, index, now, range(12))
        assert sorted(due_old) == sorted(due_new)
        print(f"N={n:>7,} citizens, {len(due_new)} due: full scan {old * 1000:8.1f} ms, "
              f"index {new * 1000:6.2f} ms ({len(index)} index keys)")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000, 10_000, 100_000])
