"""Lag in seconds, estimated from a table of (log-end offset, wall time) samples. Pure: no I/O, no clock.

Why a table: Kafka does not say *when* an offset was written without reading the record. Like
kafka-lag-exporter, we sample each partition's log-end offset on every poll and keep the points. The lag in
seconds of a group is then the age of its oldest unconsumed record:

    lag_seconds = now - t(committed + 1)

where t(o) is the wall time at which the log end first reached offset o, i.e. when record o-1 was appended
(the record at the committed offset is appended when the end moves from `committed` to `committed + 1`).
t(o) is interpolated linearly between the two samples that bracket o.

Properties the SREs rely on:
- caught up (committed >= end): 0, whatever the topic's age - an idle topic shows 0 and does not grow;
- a stopped consumer: t(committed + 1) is fixed, so the lag grows at exactly wall-clock rate;
- flat stretches are compressed to their first and last point (as kafka-lag-exporter did), so a table of
  bounded size spans hours of an idle topic while keeping the "still at offset X at time T" information
  that interpolation needs;
- if the committed offset is older than the oldest sample, the table cannot answer (`needs_lookup`). The
  monitor then uses the timestamp of the record itself, read by a consumer seek (see `reader`), and falls
  back to the lower bound `now - oldest sample` if that record is gone. We chose the record timestamp over
  extrapolation because extrapolating a rate measured over a few seconds to hours in the past can be wrong by
  orders of magnitude, while the record timestamp is exact up to producer clock skew.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    offset: int
    at: float  # wall-clock seconds


@dataclass(frozen=True)
class Estimate:
    seconds: float
    source: str  # "caught-up" | "interpolated" | "needs-lookup"
    # For "needs-lookup": `seconds` is the lower bound now - oldest sample time (the record is older than that).


class EndOffsetTable:
    """The (end offset, time) history of one partition, bounded to `max_points`."""

    def __init__(self, max_points: int = 720) -> None:
        if max_points < 3:
            raise ValueError("max_points must be at least 3 to keep a flat stretch and a rise")
        self._points: deque[Point] = deque(maxlen=max_points)

    @property
    def points(self) -> list[Point]:
        return list(self._points)

    def add(self, offset: int, at: float) -> None:
        """Record that the log end was `offset` at wall time `at`."""
        pts = self._points
        if pts and (offset < pts[-1].offset or at < pts[-1].at):
            # The log went backwards (topic deleted and re-created, or a clock jump): the history is void.
            pts.clear()
        if len(pts) >= 2 and pts[-1].offset == offset and pts[-2].offset == offset:
            # Still on the same flat stretch: move its end forward instead of piling up identical points.
            pts[-1] = Point(offset, at)
            return
        pts.append(Point(offset, at))

    def estimate(self, committed: int, now: float) -> Estimate:
        """Seconds since the record at `committed` (the next one the group will read) was appended."""
        pts = self._points
        if not pts or committed >= pts[-1].offset:
            # Nothing unconsumed as far as we know (an empty table only happens before the first sample).
            return Estimate(0.0, "caught-up")
        target = committed + 1  # the end offset right after record `committed` was appended
        upper = next(i for i, p in enumerate(pts) if p.offset >= target)  # exists: target <= pts[-1].offset
        if upper == 0:
            return Estimate(max(0.0, now - pts[0].at), "needs-lookup")
        lo, hi = pts[upper - 1], pts[upper]
        written_at = lo.at + (target - lo.offset) / (hi.offset - lo.offset) * (hi.at - lo.at)
        return Estimate(max(0.0, now - written_at), "interpolated")
