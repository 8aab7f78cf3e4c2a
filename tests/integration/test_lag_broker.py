"""Lag monitor against the real broker: status transitions, lag seconds, and agreement with the admin API."""
from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetSpec, TopicPartition
from kafka.structs import OffsetAndMetadata

from consumers.lag import LagConfig, LagMonitor
from test_lag_support import CommittingConsumer, SteadyProducer, create_topics, group, sample_until

pytestmark = pytest.mark.integration


def monitor_for(bootstrap: str, prefix: str, **kw) -> LagMonitor:
    cfg = dict(bootstrap_servers=bootstrap, group_pattern=f"^{prefix}", window_seconds=6.0, stall_after_seconds=3.0,
               other_sla_seconds=30.0, request_timeout_ms=5000)
    cfg.update(kw)
    return LagMonitor(LagConfig(**cfg))


def test_stop_stall_resume_and_idle(kafka_bootstrap, unique_name):
    busy, idle = f"{unique_name}-busy", f"{unique_name}-idle"
    g_stop, g_stall, g_idle = f"{unique_name}-g-stop", f"{unique_name}-g-stall", f"{unique_name}-g-idle"
    create_topics(kafka_bootstrap, (busy, 2), (idle, 1))
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for i in range(5):
        producer.send(idle, b"x")
    producer.flush()
    producer.close()

    # The idle group reads everything there is, then leaves; the two others start caught up on the busy topic.
    for g, topic in ((g_idle, idle), (g_stop, busy)):
        c = CommittingConsumer(kafka_bootstrap, g, topic)
        c.start()
        mon = monitor_for(kafka_bootstrap, g)
        sample_until(mon, lambda r: (x := group(r, g)) is not None and x.total_lag == 0 and len(x.partitions) >= 1, 30)
        mon.close()
        c.stop()
    staller = KafkaConsumer(busy, bootstrap_servers=kafka_bootstrap, group_id=g_stall, enable_auto_commit=False,
                            auto_offset_reset="latest")
    deadline = time.monotonic() + 30
    while not staller.assignment() and time.monotonic() < deadline:
        staller.poll(timeout_ms=200)
    staller.commit({tp: OffsetAndMetadata(staller.position(tp), "", -1) for tp in staller.assignment()})
    # From here the staller stays a live member (heartbeat thread) and never commits again.

    writer = SteadyProducer(kafka_bootstrap, busy, 2, period=0.1)
    writer.start()
    monitor = monitor_for(kafka_bootstrap, unique_name)
    try:
        report, _ = sample_until(monitor, lambda r: getattr(group(r, g_stop), "status", None) == "STOP"
                                 and getattr(group(r, g_stall), "status", None) == "STALL", 30)
        t1, lag1 = report.taken_at, group(report, g_stop).max_lag_seconds
        assert group(report, g_idle).status == "OK"
        assert all(p.lag_seconds == 0 and p.lag_messages == 0 for p in group(report, g_idle).partitions)

        report2, _ = sample_until(monitor, lambda r: r.taken_at - t1 >= 3.0, 30)
        dt, dlag = report2.taken_at - t1, group(report2, g_stop).max_lag_seconds - lag1
        print(f"lag seconds grew {dlag:.2f}s over {dt:.2f}s wall clock")
        assert dlag == pytest.approx(dt, abs=0.6)  # a stopped group falls behind at wall-clock rate
        idle_rows = group(report2, g_idle).partitions
        assert [(p.lag_seconds, p.status) for p in idle_rows] == [(0.0, "OK")]  # idle: still 0, not growing

        resumed = CommittingConsumer(kafka_bootstrap, g_stop, busy)
        resumed.start()
        try:
            report3, _ = sample_until(monitor, lambda r: group(r, g_stop).status == "OK"
                                      and group(r, g_stop).max_lag_seconds < 2.0, 60)
            print("after resume:", [(p.partition, p.lag_messages, p.lag_seconds) for p in group(report3, g_stop).partitions])
        finally:
            resumed.stop()
    finally:
        writer.stop()
        staller.close()
        monitor.close()


def test_offsets_match_the_admin_api(kafka_bootstrap, unique_name):
    topic, gid = f"{unique_name}-t", f"{unique_name}-g"
    create_topics(kafka_bootstrap, (topic, 3))
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for p, n in enumerate((7, 0, 12)):
        for i in range(n):
            producer.send(topic, b"x", partition=p)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=gid, enable_auto_commit=False)
    commits = {TopicPartition(topic, 0): 3, TopicPartition(topic, 1): 0, TopicPartition(topic, 2): 12}
    consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in commits.items()})
    consumer.close()

    monitor = monitor_for(kafka_bootstrap, gid)
    try:
        report = monitor.sample()
    finally:
        monitor.close()
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
        committed = admin.list_group_offsets([gid])[gid]
        ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in committed})
    ours = {(p.topic, p.partition): (p.committed_offset, p.end_offset, p.lag_messages) for p in group(report, gid).partitions}
    theirs = {(tp.topic, tp.partition): (committed[tp].offset, ends[tp].offset, ends[tp].offset - committed[tp].offset)
              for tp in committed}
    assert ours == theirs
    assert ours == {(topic, 0): (3, 7, 4), (topic, 1): (0, 0, 0), (topic, 2): (12, 12, 0)}


def test_partitions_a_group_never_committed_count_from_the_log_start(kafka_bootstrap, unique_name):
    """A group stopped mid-batch that committed only some partitions: the admin API (and kafka-consumer-groups)
    list only the committed ones; our report counts the others from the log start, flagged."""
    topic, gid = f"{unique_name}-t", f"{unique_name}-g"
    create_topics(kafka_bootstrap, (topic, 3))
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for p, n in enumerate((5, 9, 4)):
        for i in range(n):
            producer.send(topic, b"x", partition=p)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=gid, enable_auto_commit=False)
    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(2, "", -1)})  # only partition 0, ever
    consumer.close()
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
        assert set(admin.list_group_offsets([gid])[gid]) == {TopicPartition(topic, 0)}  # the blind spot

    monitor = monitor_for(kafka_bootstrap, gid)
    try:
        report = monitor.sample()
    finally:
        monitor.close()
    rows = {p.partition: (p.committed_offset, p.end_offset, p.lag_messages, p.never_committed)
            for p in group(report, gid).partitions}
    assert rows == {0: (2, 5, 3, False), 1: (0, 9, 9, True), 2: (0, 4, 4, True)}
    assert group(report, gid).total_lag == 16
