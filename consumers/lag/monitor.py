"""The lag monitor: each `sample()` reads one snapshot, feeds the end-offset tables and the status windows,
and returns a `LagReport`. All I/O goes through the injected reader, so tests can drive it with fake snapshots
and fake times (the snapshot's `taken_at` is the only clock the monitor uses).
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

from consumers.lag.config import LagConfig
from consumers.lag.estimator import EndOffsetTable
from consumers.lag.model import TP, GroupLag, LagReport, OffsetSnapshot, PartitionLag, lag_messages
from consumers.lag.status import Sample, Status, Thresholds, group_status, partition_status

log = logging.getLogger(__name__)


class OffsetReader(Protocol):
    def snapshot(self, wants_group: Callable[[str], bool], extra_topics: list[str]) -> OffsetSnapshot: ...
    def record_timestamp(self, tp: TP, offset: int) -> float | None: ...
    def close(self) -> None: ...


class LagMonitor:
    def __init__(self, config: LagConfig, reader_factory: Callable[[], OffsetReader] | None = None) -> None:
        self.config = config
        self._reader_factory = reader_factory or self._kafka_reader
        self._reader: OffsetReader | None = None
        self._tables: dict[TP, EndOffsetTable] = {}
        self._windows: dict[tuple[str, TP], deque[Sample]] = {}
        # (tp, committed) -> record timestamp; a stuck group asks for the same offset every sample.
        self._record_ts: dict[tuple[TP, int], float | None] = {}

    def _kafka_reader(self) -> OffsetReader:
        from consumers.lag.reader import KafkaOffsetReader  # kafka-python only when really talking to Kafka

        c = self.config
        return KafkaOffsetReader(c.bootstrap_servers, c.client_id, c.request_timeout_ms)

    def sample(self) -> LagReport:
        """One poll. Raises whatever the reader raises; the reader is then dropped and rebuilt next time,
        because a client that lost its broker is not worth nursing back."""
        if self._reader is None:
            self._reader = self._reader_factory()
        try:
            snap = self._reader.snapshot(self.config.wants_group, [self.config.dlq_topic])
            return self._digest(snap)
        except Exception:
            self.reset_connection()
            raise

    def reset_connection(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def close(self) -> None:
        self.reset_connection()

    def _digest(self, snap: OffsetSnapshot) -> LagReport:
        now = snap.taken_at
        for tp, end in snap.end_offsets.items():
            self._table(tp).add(end, now)
        self._forget(set(snap.end_offsets), {(g.group, tp) for g in snap.groups.values()
                                             for tp in (*g.committed, *g.never_committed)})

        groups = []
        for obs in sorted(snap.groups.values(), key=lambda g: g.group):
            topics = {t for t, _ in obs.committed} | {t for t, _ in obs.never_committed}
            group_class, sla = self.config.classify(topics)
            th = Thresholds(sla, self.config.stall_after_seconds, self.config.warn_min_samples)
            positions = {**{tp: snap.start_offsets[tp] for tp in obs.never_committed if tp in snap.start_offsets},
                         **obs.committed}
            rows = []
            for tp, committed in sorted(positions.items()):
                if tp not in snap.end_offsets:  # topic deleted since the commit: nothing to measure
                    continue
                end = snap.end_offsets[tp]
                seconds, source = self._lag_seconds(tp, committed, now)
                window = self._window((obs.group, tp), Sample(now, committed, end, seconds, tp in obs.assigned))
                status = partition_status(window, th)
                rows.append(PartitionLag(obs.group, tp[0], tp[1], committed, end, lag_messages(end, committed),
                                         round(seconds, 3), source, status.name,
                                         never_committed=tp not in obs.committed))
            gstatus = group_status(Status[r.status] for r in rows)
            groups.append(GroupLag(obs.group, group_class, obs.state, gstatus.name, rows))
            log.debug("group=%s class=%s status=%s partitions=%d", obs.group, group_class, gstatus.name, len(rows))
        return LagReport(now, groups, dict(snap.end_offsets))

    def _lag_seconds(self, tp: TP, committed: int, now: float) -> tuple[float, str]:
        est = self._table(tp).estimate(committed, now)
        if est.source != "needs-lookup":
            return est.seconds, est.source
        key = (tp, committed)
        if key not in self._record_ts:
            # Only the current committed offset of each partition is worth remembering.
            self._record_ts = {k: v for k, v in self._record_ts.items() if k[0] != tp}
            try:
                self._record_ts[key] = self._reader.record_timestamp(tp, committed) if self._reader else None
            except Exception:  # a failed lookup must not fail the whole sample; the lower bound still holds
                log.warning("record timestamp lookup failed for %s@%d", tp, committed, exc_info=True)
                self._record_ts[key] = None
        ts = self._record_ts[key]
        if ts is None:
            return est.seconds, "lower-bound"
        # The lower bound is measured on our own clock and is certain; producer clocks may be skewed.
        return max(est.seconds, now - ts), "record-timestamp"

    def _table(self, tp: TP) -> EndOffsetTable:
        if tp not in self._tables:
            self._tables[tp] = EndOffsetTable(self.config.table_max_points)
        return self._tables[tp]

    def _window(self, key: tuple[str, TP], sample: Sample) -> list[Sample]:
        w = self._windows.setdefault(key, deque())
        w.append(sample)
        # Keep one sample at or beyond the window's edge, so a full window spans at least window_seconds.
        while len(w) > 1 and w[1].at <= sample.at - self.config.window_seconds:
            w.popleft()
        return list(w)

    def _forget(self, live_tps: set[TP], live_keys: set[tuple[str, TP]]) -> None:
        """Drop state for partitions and group positions that disappeared, so memory stays bounded."""
        for tp in set(self._tables) - live_tps:
            del self._tables[tp]
        for key in set(self._windows) - live_keys:
            del self._windows[key]
        self._record_ts = {k: v for k, v in self._record_ts.items() if (k[0] in live_tps)}
