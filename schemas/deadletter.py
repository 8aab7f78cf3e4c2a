"""The one builder of DeadLetter records (the `dlq` topic's envelope), for every component that dead-letters:
the case processor (faust), and the consume -> act -> commit loop (`consumers.loop`) under the portal sink, the
adapters' responders and the consumers that follow.

Why one: the envelope is what an operator triages and replays (`gplx-bus dlq`), so every writer must fill it the
same way: original position, key and value bytes unchanged, a `DlqCode`, the error text cut at one limit
(`MAX_ERROR_TEXT`), and an id derived from the position, so a letter written again after a crash (before the
commit) carries the same id. Pure: no Kafka, no registry.

    letter = dead_letter(record, code=DlqCode.PROCESSING_FAILED, text=str(exc), source=SOURCE)
"""
from __future__ import annotations

import datetime as dt
import uuid

from schemas import models
from schemas.errors import DlqCode

#: Longest error text kept in a letter (the rest is cut): a validation error naming every field fits.
MAX_ERROR_TEXT = 2000
NAMESPACE = uuid.UUID("a4e3b9c2-6f0d-4d7b-8c1e-5a2f9b3d7e60")  # fixed forever: ids must survive upgrades


def letter_id(topic: str, partition: int, offset: int) -> str:
    """The id of the letter of the record at this position (the same on every retry)."""
    return str(uuid.uuid5(NAMESPACE, f"dlq/{topic}/{partition}/{offset}"))


def dead_letter(record, *, code: DlqCode | str, text: str, source: dict, correlation_id: str | None = None,
                position: tuple[str, int, int] | None = None, event_id: str | None = None,
                now: dt.datetime | None = None) -> models.DeadLetter:
    """The DLQ envelope of a consumer record (anything with topic, partition, offset, key and value: kafka-python,
    aiokafka or faust). `position` overrides where the record is said to come from (a forwarded record is
    dead-lettered where it first arrived); `event_id` defaults to `letter_id` of that position."""
    topic, partition, offset = position or (record.topic, record.partition, record.offset)
    now = now or dt.datetime.now(dt.timezone.utc)
    return models.DeadLetter(
        event_id=event_id or letter_id(topic, partition, offset), occurred_at=now, source=source,
        correlation_id=correlation_id, original_topic=topic, original_partition=partition,
        original_offset=offset, original_key=record.key, original_value=record.value or b"",
        error_code=DlqCode(code), error_text=text[:MAX_ERROR_TEXT], first_seen_at=now)
