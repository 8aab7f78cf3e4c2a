"""Read partitions to their end: the one way every tool that reads a topic as a whole does it (the DLQ tools,
the funnel's TopicReader, test and demo helpers).

Why "the end offsets at the time of the call": a topic that keeps growing would never be read "to the end"; with
the ends fixed first the read always finishes, and a second call picks up what arrived meanwhile. Records past
those ends that a poll happens to return are left for the next call (their positions are rewound). A deadline
turns a broker that stops answering into an error instead of a hang.

    kafka = new_client(KafkaConsumer, **conn.kafka_python_kwargs(), group_id=None, enable_auto_commit=False)
    for record in records_to_end(kafka, partitions_of(kafka, topic)):   # from the beginning
        ...
"""
from __future__ import annotations

import time
from typing import Iterator, Mapping

from consumers.errors import ReadTimedOut

def partitions_of(kafka, topic: str) -> list:
    """The topic's partitions (empty if the topic does not exist)."""
    from kafka.structs import TopicPartition

    return [TopicPartition(topic, p) for p in sorted(kafka.partitions_for_topic(topic) or ())]


def records_to_end(kafka, tps: list, *, start: Mapping | None = None, timeout_s: float = 60.0) -> Iterator:
    """Every record of `tps` (assigned to `kafka` here) from `start` (None: the beginning; a {tp: offset} map,
    the beginning for partitions it does not name; a reader that keeps up passes the offsets after the records it
    handled) to the end offsets at the time of the call. Raises ReadTimedOut after `timeout_s`.

    The deadline covers every call that can wait on a broker, the end-offset and position lookups too: they wait
    for each partition's leader, bounded otherwise by the client's request timeout (kafka-python: 30 s), and a
    hung leader answers nothing until the controller fences it."""
    from kafka.errors import KafkaTimeoutError

    if not tps:
        return
    deadline = time.monotonic() + timeout_s

    def left_ms() -> int:
        return max(0, int((deadline - time.monotonic()) * 1000))

    def timed_out() -> ReadTimedOut:
        return ReadTimedOut(f"reading {', '.join(sorted({tp.topic for tp in tps}))} did not reach its end within "
                            f"{timeout_s:.0f}s; is the broker up and the topic readable by this principal?")

    def behind(tp) -> bool:
        position = kafka.position(tp, timeout_ms=left_ms())  # None: not known yet (its lookup timed out)
        return position is None or position < ends[tp]

    kafka.assign(tps)
    try:
        ends = kafka.end_offsets(tps, timeout_ms=left_ms())
    except KafkaTimeoutError:
        raise timed_out() from None
    for tp in tps:
        if start and tp in start:
            kafka.seek(tp, start[tp])
        else:
            kafka.seek_to_beginning(tp)
    while any(behind(tp) for tp in tps):
        if time.monotonic() >= deadline:
            raise timed_out()
        for tp, records in kafka.poll(timeout_ms=min(200, left_ms())).items():
            for r in records:
                if r.offset >= ends[tp]:
                    kafka.seek(tp, r.offset)  # arrived after the call: the next call reads it
                    break
                yield r
