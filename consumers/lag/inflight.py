"""Is anything still in flight? The check the demo (and any end-to-end run) waits on before it moves the clock
or reports: every given consumer group has read every record of its topics, and no topic grew since the last look
(a processed record's outputs may reach the broker just after its offset was committed).

Which group reads which topic comes from the catalogue (`consumers.lag.groups.group_topics`); lag per partition
is `consumers.lag.model.lag_messages`. A group that has not committed yet counts from offset 0, so a component
that has not started is in flight, not idle.

    with InFlight(conn, group_topics(catalogue, [CASE_PROCESSOR, IDENTITY, ...])) as flight:
        while not flight.settled():
            time.sleep(0.5)
"""
from __future__ import annotations

from typing import Iterable, Mapping

from consumers.lag.model import lag_messages
from topology.connection import Connection


class InFlight:
    """Looks at end offsets and committed offsets; `settled()` is True after two equal looks with no lag."""

    def __init__(self, connection: str | Connection, groups: Mapping[str, Iterable[str]], *,
                 extra_topics: Iterable[str] = ()) -> None:
        from topology.apply import connect

        self.groups = {g: set(ts) for g, ts in groups.items()}
        self.topics = sorted({t for ts in self.groups.values() for t in ts} | set(extra_topics))
        self._connection = connection
        self._admin = connect(connection)
        self.error: str | None = None  # why the last look could not say (None: it could)
        self._partitions = None
        self._last: tuple | None = None
        self.lag = -1  # total records not yet read at the last look (-1: not looked yet)
        self.lag_by_group: dict[str, int] = {}  # the same, per group with records unread (what is stuck)

    def look(self) -> tuple[tuple, int] | None:
        """(end offsets of the watched topics, total lag of the groups), or None while the cluster cannot say yet
        (e.g. a group coordinator still being elected). After a failure the next look asks on a new client: as in
        the lag monitor, a client that lost its broker is not worth nursing back (kafka-python's admin client was
        seen failing every look after a rolling restart of the three nodes, while a new one answered at once)."""
        from kafka.admin import OffsetSpec
        from kafka.errors import KafkaError
        from kafka.structs import TopicPartition

        from topology.apply import connect
        from topology.errors import TopologyError

        try:
            if self._admin is None:
                self._admin = connect(self._connection)
            if self._partitions is None:
                described = self._admin.describe_topics(self.topics)
                self._partitions = [TopicPartition(t["name"], p.get("partition_index", p.get("partition")))
                                    for t in described for p in t["partitions"]]
            ends = {tp: o.offset for tp, o in self._admin.list_partition_offsets(
                {tp: OffsetSpec.LATEST for tp in self._partitions}).items()}
            committed = self._admin.list_group_offsets(list(self.groups))
        except (KafkaError, TopologyError) as exc:
            self.error = type(exc).__name__
            self.close()
            return None
        self.error = None
        by_group = {}
        for group, topics in self.groups.items():
            offsets = {tp: om.offset for tp, om in committed.get(group, {}).items()}
            by_group[group] = sum(lag_messages(end, offsets.get(tp)) for tp, end in ends.items() if tp.topic in topics)
        self.lag_by_group = {g: n for g, n in by_group.items() if n}
        lag = self.lag = sum(by_group.values())
        return tuple(sorted((tp.topic, tp.partition, end) for tp, end in ends.items())), lag

    def settled(self) -> bool:
        """Nothing unread by any group, and no topic grew since the previous call."""
        snapshot = self.look()
        quiet = snapshot is not None and snapshot[1] == 0 and snapshot == self._last
        self._last = snapshot
        return quiet

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def __enter__(self) -> "InFlight":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
