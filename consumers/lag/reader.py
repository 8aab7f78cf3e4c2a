"""I/O: offsets and record timestamps from Kafka, through the admin API (kafka-python 3.0.x).

kafka-python 3.0 names: `list_groups`, `describe_groups`, `list_group_offsets`, `list_partition_offsets`
(the 2.x names `list_consumer_groups` / `list_consumer_group_offsets` are gone). We never read
`__consumer_offsets`: the group coordinator's OffsetFetch answer is the same source `kafka-consumer-groups.sh`
uses, and it needs only DESCRIBE on the group instead of READ on an internal topic.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from kafka import KafkaAdminClient, KafkaConsumer, OffsetSpec, TopicPartition

from consumers.lag.model import TP, GroupObservation, OffsetSnapshot
from topology.connection import Connection
from topology.kafka_python import new_client

log = logging.getLogger(__name__)


def _not_an_undecodable_member(record: logging.LogRecord) -> bool:
    """kafka-python warns "Unable to decode member_metadata ..." with the whole group, bytes and all, for every
    faust member at every describe (faust's subscription carries user data kafka-python's parser does not take):
    kilobytes of noise per sample in the exporter's and the harness's logs. Only that message is dropped."""
    return not record.getMessage().startswith("Unable to decode member_")


logging.getLogger("kafka.admin._groups").addFilter(_not_an_undecodable_member)

# Group states in which no member owns anything, or the group is going away.
_NO_MEMBERS = {"Empty", "Dead"}


class KafkaOffsetReader:
    """Reads one `OffsetSnapshot` per call. Not thread-safe; one per sampler."""

    def __init__(self, bootstrap_servers: str | Connection, client_id: str = "gplx-lag-monitor",
                 request_timeout_ms: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self._bootstrap = bootstrap_servers
        self._client_id = client_id
        self._timeout_ms = request_timeout_ms
        self._clock = clock
        self._admin: KafkaAdminClient | None = None
        self._consumer: KafkaConsumer | None = None

    def _admin_client(self) -> KafkaAdminClient:
        if self._admin is None:  # lazily, so a monitor can be built while the broker is still away
            self._admin = new_client(
                KafkaAdminClient,
                **Connection.of(self._bootstrap).kafka_python_kwargs(), client_id=self._client_id,
                request_timeout_ms=self._timeout_ms, bootstrap_timeout_ms=self._timeout_ms,
                reconnect_backoff_max_ms=1000,
            )
        return self._admin

    def snapshot(self, wants_group: Callable[[str], bool], extra_topics: Iterable[str] = ()) -> OffsetSnapshot:
        """Committed offsets of the wanted groups, then the end offsets of every partition they (or
        `extra_topics`) cover. Committed first, so end >= committed in the snapshot and lag is never negative."""
        admin = self._admin_client()
        listed = [g for g in admin.list_groups()
                  if g.get("protocol_type") in ("consumer", "") and wants_group(g["group_id"])]
        group_ids = sorted(g["group_id"] for g in listed)
        groups: dict[str, GroupObservation] = {}
        subscribed: dict[str, set[str]] = {}  # group -> topics it commits on or its members subscribe to
        if group_ids:
            described = admin.describe_groups(group_ids)
            offsets = admin.list_group_offsets(group_ids)
            for gid in group_ids:
                desc = described.get(gid, {})
                state = desc.get("group_state", "Unknown")
                committed = {(tp.topic, tp.partition): om.offset
                             for tp, om in offsets.get(gid, {}).items() if om.offset >= 0}
                groups[gid] = GroupObservation(gid, state, committed, _assigned(desc, state))
                subscribed[gid] = {t for t, _ in committed} | _subscribed(desc, state)

        wanted_extra = [t for t in extra_topics if t]
        topics_needed = {t for ts in subscribed.values() for t in ts} | set(wanted_extra)
        existing = set(admin.list_topics()) if topics_needed else set()
        present = sorted(topics_needed & existing)
        partitions_of: dict[str, list[int]] = {
            topic["name"]: [p["partition_index"] for p in topic["partitions"]]
            for topic in (admin.describe_topics(present) if present else [])}
        tps: set[TP] = {tp for g in groups.values() for tp in g.committed}
        for t in wanted_extra:  # e.g. the DLQ, which no monitored group reads but whose size we export
            tps.update((t, p) for p in partitions_of.get(t, ()))
        for gid, obs in groups.items():
            never = frozenset((t, p) for t in subscribed[gid] for p in partitions_of.get(t, ())
                              if (t, p) not in obs.committed)
            if never:
                groups[gid] = replace(obs, never_committed=never)
                tps |= never
        never_tps = {tp for g in groups.values() for tp in g.never_committed}
        starts = {}
        if never_tps:  # where a group without a commit starts: the log start (auto.offset.reset=earliest)
            answer = admin.list_partition_offsets({TopicPartition(t, p): OffsetSpec.EARLIEST for t, p in never_tps})
            starts = {(tp.topic, tp.partition): ot.offset for tp, ot in answer.items()}
        taken_at = self._clock()
        ends = {}
        if tps:
            answer = admin.list_partition_offsets({TopicPartition(t, p): OffsetSpec.LATEST for t, p in tps})
            ends = {(tp.topic, tp.partition): ot.offset for tp, ot in answer.items()}
        log.debug("snapshot groups=%d partitions=%d never-committed=%d", len(groups), len(ends), len(never_tps))
        return OffsetSnapshot(taken_at=taken_at, end_offsets=ends, groups=groups, start_offsets=starts)

    def record_timestamp(self, tp: TP, offset: int) -> float | None:
        """Timestamp (seconds) of the record at `offset`, by a seek and one fetch; None if it is gone
        (retention) or not readable in time. Used only when the committed offset predates our samples."""
        if self._consumer is None:
            self._consumer = new_client(
                KafkaConsumer,
                **Connection.of(self._bootstrap).kafka_python_kwargs(), client_id=f"{self._client_id}-ts",
                group_id=None,
                enable_auto_commit=False, max_poll_records=1, request_timeout_ms=max(self._timeout_ms, 1000) + 1000,
                fetch_max_wait_ms=100,
            )
        part = TopicPartition(*tp)
        self._consumer.assign([part])
        self._consumer.seek(part, offset)
        deadline = time.monotonic() + self._timeout_ms / 1000
        while time.monotonic() < deadline:
            for records in self._consumer.poll(timeout_ms=200, max_records=1).values():
                for rec in records:
                    # A compacted or expired offset yields the next record; its time is then a lower bound too.
                    return rec.timestamp / 1000.0 if rec.timestamp >= 0 else None
        log.info("no record at %s:%d within %d ms", tp, offset, self._timeout_ms)
        return None

    def close(self) -> None:
        for client in (self._admin, self._consumer):
            if client is not None:
                try:
                    client.close()
                except Exception:  # closing a client whose broker is gone may raise; nothing to save
                    log.debug("error closing kafka client", exc_info=True)
        self._admin = self._consumer = None


def _assigned(desc: dict, state: str) -> frozenset[TP]:
    """Partitions owned by a live member, from DescribeGroups' decoded member assignments."""
    if state in _NO_MEMBERS:
        return frozenset()
    owned = set()
    for member in desc.get("members", []):
        assignment = member.get("member_assignment")
        if not isinstance(assignment, dict):  # undecodable (non-consumer protocol): we cannot tell
            continue
        for entry in assignment.get("assigned_partitions", []):
            owned.update((entry["topic"], p) for p in entry["partitions"])
    return frozenset(owned)


def _subscribed(desc: dict, state: str) -> set[str]:
    """Topics the live members subscribe to, from DescribeGroups' decoded member metadata."""
    if state in _NO_MEMBERS:
        return set()
    topics = set()
    for member in desc.get("members", []):
        metadata = member.get("member_metadata")
        if isinstance(metadata, dict):  # undecodable (non-consumer protocol): we cannot tell
            topics.update(metadata.get("topics") or ())
    return topics
