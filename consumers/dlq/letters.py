"""Reading the DLQ: every dead letter up to the topic's end at the time of the call, filtered, and the original
record decoded where the registry still knows its schema."""
from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from schemas import models
from schemas.errors import DeserializationError
from schemas.serde import AvroDeserializer, SerializationContext
from topology.connection import Connection
from topology.diagnose import cannot_reach, refuse_unreachable

from consumers.errors import DlqError  # noqa: F401 - defined there, imported here as before
from consumers.read import partitions_of, records_to_end
from topology.kafka_python import new_client


@dataclass(frozen=True)
class Filter:
    """Which dead letters: by original topic (full name or without the prefix), error code and time seen."""

    topic: str | None = None
    code: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    ids: frozenset[str] = frozenset()

    def matches(self, letter: models.DeadLetter, prefix: str = "") -> bool:
        if self.ids and letter.event_id not in self.ids:
            return False
        if self.topic and letter.original_topic not in (self.topic, prefix + self.topic):
            return False
        if self.code and letter.error_code != self.code:
            return False
        if self.since and letter.first_seen_at < self.since:
            return False
        return not (self.until and letter.first_seen_at >= self.until)


@dataclass(frozen=True)
class DeadLetterView:
    """A dead letter and where it sits on the DLQ."""

    letter: models.DeadLetter
    partition: int
    offset: int

    def summary(self) -> dict:
        """One line's worth, without the payload (no personal data on a listing)."""
        lt = self.letter
        return {"id": lt.event_id, "first_seen_at": lt.first_seen_at.isoformat(),
                "original": f"{lt.original_topic}[{lt.original_partition}]@{lt.original_offset}",
                "error_code": lt.error_code, "error_text": lt.error_text, "source": lt.source.system,
                "value_bytes": len(lt.original_value)}


def consumer(conn: Connection | str) -> KafkaConsumer:
    conn = Connection.of(conn)
    refuse_unreachable(conn, DlqError)  # a known cause at once, not after the timeout
    try:
        return new_client(KafkaConsumer, **conn.kafka_python_kwargs(), group_id=None, enable_auto_commit=False,
                          client_id="gplx-dlq", request_timeout_ms=10_000, bootstrap_timeout_ms=10_000)
    except KafkaError:
        raise DlqError(cannot_reach(conn)) from None


def partitions(kafka: KafkaConsumer, topic: str) -> list[TopicPartition]:
    found = partitions_of(kafka, topic)
    if not found:
        raise DlqError(f"topic {topic} does not exist on this cluster (wrong --prefix or bootstrap?)")
    return found


def read_letters(kafka: KafkaConsumer, deserialize: AvroDeserializer, dlq_topic: str, which: Filter = Filter(), *,
                 prefix: str = "") -> tuple[list[DeadLetterView], int]:
    """(dead letters matching the filter in DLQ order, number of DLQ records that could not be decoded)."""
    out, unreadable = [], 0
    for r in records_to_end(kafka, partitions(kafka, dlq_topic)):
        try:
            letter = deserialize(r.value, SerializationContext(dlq_topic))
        except DeserializationError:
            unreadable += 1
            continue
        if isinstance(letter, models.DeadLetter) and which.matches(letter, prefix):
            out.append(DeadLetterView(letter, r.partition, r.offset))
    out.sort(key=lambda v: (v.letter.first_seen_at, v.partition, v.offset))
    return out, unreadable


def decode_original(letter: models.DeadLetter, deserialize: AvroDeserializer) -> dict:
    """The original value as the bus would read it now: the decoded event, or why not, plus the raw bytes."""
    raw = letter.original_value
    shown: dict = {"bytes": len(raw), "hex": raw[:64].hex() + ("…" if len(raw) > 64 else ""),
                   "base64": base64.b64encode(raw).decode()}
    ctx = SerializationContext(letter.original_topic)
    try:
        name, record = deserialize.decode(raw, ctx)
        shown["decoded"] = {"type": name, "record": record}
    except DeserializationError as exc:
        shown["not_decodable"] = f"{exc.code}: {exc.detail}"
        return shown
    try:  # would the bus accept it now (after a fix of the rules or the registry)? Then a replay will work.
        deserialize(raw, ctx)
        shown["valid_now"] = True
    except DeserializationError as exc:
        shown["valid_now"] = False
        shown["still_invalid"] = f"{exc.code}: {exc.detail}"
    return shown


def parse_ids(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.strip() for v in values if v.strip())
