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
    handled) to the end offsets at the time of the call. Raises ReadTimedOut after `timeout_s`."""
    if not tps:
        return
    kafka.assign(tps)
    ends = kafka.end_offsets(tps)
    for tp in tps:
        if start and tp in start:
            kafka.seek(tp, start[tp])
        else:
            kafka.seek_to_beginning(tp)
    deadline = time.monotonic() + timeout_s
    while any(kafka.position(tp) < ends[tp] for tp in tps):
        if time.monotonic() > deadline:
            raise ReadTimedOut(f"reading {', '.join(sorted({tp.topic for tp in tps}))} did not reach its end "
                               f"within {timeout_s:.0f}s; is the broker up and the topic readable by this "
                               f"principal?")
        for tp, records in kafka.poll(timeout_ms=200).items():
            for r in records:
                if r.offset >= ends[tp]:
                    kafka.seek(tp, r.offset)  # arrived after the call: the next call reads it
                    break
                yield r
