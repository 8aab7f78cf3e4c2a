"""Plain data passed between the reader (I/O), the pure estimators and the outputs (table, JSON, metrics).

Kept free of Kafka types so the pure parts and their tests need no broker and no client library.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

# (topic, partition) - a tuple rather than kafka.TopicPartition so pure code does not import the client.
TP = tuple[str, int]


def lag_messages(end: int, committed: int | None) -> int:
    """Consumer lag in messages on one partition: end offset - committed offset, never negative; no commit
    (None or Kafka's -1) counts from 0. The one place this is computed."""
    return max(0, end - max(committed or 0, 0))


@dataclass(frozen=True)
class GroupObservation:
    """What the admin API says about one consumer group at one moment."""

    group: str
    state: str  # Stable, Empty, PreparingRebalance, Dead, ... as the broker reports it
    committed: dict[TP, int]  # committed offset per partition (only partitions with a commit)
    assigned: frozenset[TP] = frozenset()  # partitions owned by a live member right now
    # Partitions of the group's topics with no committed offset at all (never committed, or the commit expired):
    # `kafka-consumer-groups` leaves them out, which hides a backlog; we count them from the log start.
    never_committed: frozenset[TP] = frozenset()


@dataclass(frozen=True)
class OffsetSnapshot:
    """One poll of the cluster: end offsets first, then committed offsets, both stamped with one wall time."""

    taken_at: float  # wall-clock seconds (time.time()) when the end offsets were read
    end_offsets: dict[TP, int]
    groups: dict[str, GroupObservation]
    start_offsets: dict[TP, int] = field(default_factory=dict)  # log-start offsets of never-committed partitions


@dataclass(frozen=True)
class PartitionLag:
    """One row of the report: a group's position on one partition."""

    group: str
    topic: str
    partition: int
    committed_offset: int
    end_offset: int
    lag_messages: int
    lag_seconds: float
    lag_seconds_source: str  # "interpolated", "caught-up", "record-timestamp", "lower-bound"
    status: str
    never_committed: bool = False  # counted from the log start: the group's reset position (earliest for ours)


@dataclass(frozen=True)
class GroupLag:
    group: str
    group_class: str
    state: str
    status: str
    partitions: list[PartitionLag] = field(default_factory=list)

    @property
    def total_lag(self) -> int:
        return sum(p.lag_messages for p in self.partitions)

    @property
    def max_lag_seconds(self) -> float:
        return max((p.lag_seconds for p in self.partitions), default=0.0)


@dataclass(frozen=True)
class LagReport:
    """The result of one sample: everything the CLI table, `--json` and the exporter show."""

    taken_at: float
    groups: list[GroupLag]
    end_offsets: dict[TP, int]  # every partition we read, including ones no group reads (e.g. the DLQ)

    def to_json(self) -> dict:
        return {
            "taken_at": self.taken_at,
            "groups": [
                {**{k: v for k, v in asdict(g).items() if k != "partitions"},
                 "total_lag": g.total_lag, "max_lag_seconds": g.max_lag_seconds,
                 "partitions": [asdict(p) for p in g.partitions]}
                for g in self.groups
            ],
        }
