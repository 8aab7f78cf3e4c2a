"""Helpers shared by the lag integration tests (no tests here): a paced sampler, a steady producer, a consumer."""
from __future__ import annotations

import socket
import threading
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

from consumers.lag import LagMonitor, LagReport


def create_topics(bootstrap: str, *specs: tuple[str, int]) -> None:
    with KafkaAdminClient(bootstrap_servers=bootstrap) as admin:
        admin.create_topics([NewTopic(name, partitions, 1) for name, partitions in specs])
        admin.wait_for_topics([name for name, _ in specs])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample_until(monitor: LagMonitor, predicate, timeout: float, pace: float = 0.5) -> tuple[LagReport, list]:
    """Sample every `pace` seconds until `predicate(report)` holds; returns it and all reports seen."""
    seen, deadline = [], time.monotonic() + timeout
    while True:
        report = monitor.sample()
        seen.append(report)
        if predicate(report):
            return report, seen
        if time.monotonic() > deadline:
            last = report.to_json()
            raise AssertionError(f"condition not met within {timeout}s; last report: {last}")
        time.sleep(pace)  # the sampler's own pacing, not synchronisation


def group(report: LagReport, name: str):
    return next((g for g in report.groups if g.group == name), None)


class SteadyProducer(threading.Thread):
    """Writes one record every `period` seconds to every partition of `topic` until stopped."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, period: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
        self.topic, self.partitions, self.period = topic, partitions, period
        self.stop_event = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop_event.wait(self.period):
            for p in range(self.partitions):
                self.producer.send(self.topic, f"r{i}".encode(), partition=p)
            self.producer.flush()
            i += 1

    def stop(self) -> None:
        self.stop_event.set()
        self.join(10)
        self.producer.close()


class CommittingConsumer(threading.Thread):
    """A group member that polls and commits its positions synchronously after every poll, until stopped
    (positions, not consumed records, so that a group on an empty topic has committed offsets too)."""

    def __init__(self, bootstrap: str, group_id: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id,
                                      auto_offset_reset="earliest", enable_auto_commit=False)
        # Subscribe only once the topic's metadata is known: a member that joins before it gets an empty
        # assignment and may not rejoin in time (seen as a flaky idle-group test).
        deadline = time.monotonic() + 30
        while not self.consumer.partitions_for_topic(topic) and time.monotonic() < deadline:
            self.consumer.poll(timeout_ms=100)
        self.consumer.subscribe([topic])
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.consumer.poll(timeout_ms=200)
            assigned = self.consumer.assignment()
            if assigned:
                self.consumer.commit({tp: OffsetAndMetadata(self.consumer.position(tp), "", -1) for tp in assigned})
        self.consumer.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(30)
