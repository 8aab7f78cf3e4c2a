"""Replay dead letters onto their original topic and partition, once per dead letter (see the package doc)."""
from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from consumers.dlq.letters import DeadLetterView, DlqError
from consumers.read import records_to_end

#: Header on a replayed record naming the dead letter it came from: the proof it was replayed, and by whom.
REPLAY_HEADER = "gplx-replay-of"


@dataclass(frozen=True)
class ReplayOutcome:
    letter_id: str
    target: str  # topic[partition]
    status: str  # "replayed" | "already-replayed" | "would-replay"
    offset: int | None = None  # where the replayed copy (or the earlier one) sits


def already_replayed(kafka: KafkaConsumer, views: list[DeadLetterView], *,
                     timeout_s: float = 120.0) -> dict[str, tuple[str, int]]:
    """dead letter id -> (topic[partition], offset) of a copy already replayed, found by its header on the
    original partition after the original offset (a replay always goes there)."""
    first: dict[TopicPartition, int] = {}
    for v in views:
        tp = TopicPartition(v.letter.original_topic, v.letter.original_partition)
        first[tp] = min(first.get(tp, v.letter.original_offset + 1), v.letter.original_offset + 1)
    wanted = {v.letter.event_id for v in views}
    found: dict[str, tuple[str, int]] = {}
    for r in records_to_end(kafka, sorted(first, key=lambda tp: (tp.topic, tp.partition)), start=first,
                            timeout_s=timeout_s):
        for name, value in r.headers or ():
            if name == REPLAY_HEADER and value.decode(errors="replace") in wanted:
                found.setdefault(value.decode(), (f"{r.topic}[{r.partition}]", r.offset))
    return found


def replay(views: list[DeadLetterView], kafka: KafkaConsumer, producer: KafkaProducer, *,
           dry_run: bool = False, timeout_s: float = 30.0) -> list[ReplayOutcome]:
    """Put each dead letter's original key and value back on its original topic and partition, with the replay
    header, unless a copy is already there. Each send is acknowledged (acks=all) before the next is reported."""
    done = already_replayed(kafka, views)
    outcomes = []
    for v in views:
        lt = v.letter
        target = f"{lt.original_topic}[{lt.original_partition}]"
        if lt.event_id in done:
            where, offset = done[lt.event_id]
            outcomes.append(ReplayOutcome(lt.event_id, where, "already-replayed", offset))
            continue
        if dry_run:
            outcomes.append(ReplayOutcome(lt.event_id, target, "would-replay"))
            continue
        try:
            meta = producer.send(lt.original_topic, key=lt.original_key, value=lt.original_value,
                                 partition=lt.original_partition,
                                 headers=[(REPLAY_HEADER, lt.event_id.encode())]).get(timeout=timeout_s)
        except KafkaError as exc:
            raise DlqError(f"could not replay dead letter {lt.event_id} to {target}: {type(exc).__name__}: {exc}; "
                           f"{len(outcomes)} done before it (replay again: done ones are skipped)") from None
        done[lt.event_id] = (target, meta.offset)
        outcomes.append(ReplayOutcome(lt.event_id, target, "replayed", meta.offset))
    return outcomes
