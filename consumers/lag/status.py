"""Burrow-style status of a consumer group, per partition and per group. Pure function over a sample window.

The admin API gives committed offsets but no commit timestamps, so "is the consumer committing?" is answered
from what we can see: whether the committed offset moves between our samples, and whether a live group member
owns the partition (DescribeGroups). The window holds the samples of the last `window_seconds` (plus one at
or beyond the edge, so a full window really spans `window_seconds`).

Rules, first match wins (codes are Burrow's, so dashboards from Burrow users read the same):

| code | status  | partition rule |
| ---- | ------- | -------------- |
| 0    | UNKNOWN | no samples yet |
| 6    | REWIND  | the committed offset went backwards between two samples of the window (a reset, or a consumer that commits stale offsets) |
| 1    | OK      | lag is 0 at the latest sample (caught up; an idle topic is OK) |
| 4    | STOP    | the trailing run of samples with the same committed offset and lag > 0 spans >= `stall_after_seconds` (there was something to read and the offset did not move for that long), and no live member owns the partition (the consumer is gone) |
| 5    | STALL   | as STOP, but a live member owns the partition (the consumer is alive, heartbeating, and not progressing) |
| 3    | ERR     | lag in seconds at the latest sample is above the group's SLA |
| 2    | WARN    | at least `warn_min_samples` samples, lag in messages never decreases across the window and ends higher than it started |
| 1    | OK      | otherwise |

Group status: the highest code among its partitions (REWIND > STALL > STOP > ERR > WARN > OK); UNKNOWN when the
group has no committed partitions yet.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from consumers.lag.model import lag_messages


class Status(IntEnum):
    UNKNOWN = 0
    OK = 1
    WARN = 2
    ERR = 3
    STOP = 4
    STALL = 5
    REWIND = 6


@dataclass(frozen=True)
class Sample:
    """One observation of a group on one partition."""

    at: float
    committed: int
    end: int
    lag_seconds: float
    assigned: bool  # a live member of the group owns this partition

    @property
    def lag(self) -> int:
        return lag_messages(self.end, self.committed)


@dataclass(frozen=True)
class Thresholds:
    sla_seconds: float  # ERR above this
    stall_after_seconds: float  # STOP/STALL once the offset has not moved for this long with lag > 0
    warn_min_samples: int = 3


def partition_status(window: Sequence[Sample], th: Thresholds) -> Status:
    if not window:
        return Status.UNKNOWN
    latest = window[-1]
    if any(b.committed < a.committed for a, b in zip(window, window[1:])):
        return Status.REWIND
    if latest.lag == 0:
        return Status.OK
    if latest.at - _stuck_since(window) >= th.stall_after_seconds:
        return Status.STALL if latest.assigned else Status.STOP
    if latest.lag_seconds > th.sla_seconds:
        return Status.ERR
    lags = [s.lag for s in window]
    if len(window) >= th.warn_min_samples and lags[-1] > lags[0] and all(b >= a for a, b in zip(lags, lags[1:])):
        return Status.WARN
    return Status.OK


def _stuck_since(window: Sequence[Sample]) -> float:
    """Time of the first sample of the trailing run with the latest committed offset and lag > 0."""
    latest = window[-1]
    since = latest.at
    for s in reversed(window):
        if s.committed != latest.committed or s.lag == 0:
            break
        since = s.at
    return since


def group_status(partition_statuses: Iterable[Status]) -> Status:
    return max(partition_statuses, default=Status.UNKNOWN)
