"""The request/answer loop shared by the identity, police and payment adapters.

Why at-least-once with commit-after-publish: an answer must never be lost (a case would wait for it until its
deadline), so the request's offset is committed only after the broker acknowledged the answer. A crash between the
two re-delivers the request; the answer is then produced again with the *same* deterministic event id, and the
case processor drops it as a duplicate. Exactly-once transactions would buy nothing more here.

One thread per adapter, one consumer each (KafkaConsumer is not thread-safe); the Publisher is shared.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Callable

from producers.errors import BrokerUnavailable, PublishError
from producers.sdk import Publisher
from schemas.errors import DeserializationError, RegistryUnavailable
from schemas.models import Event
from schemas.privacy import failure_summary
from schemas.serde import AvroDeserializer, SchemaRegistry, SerializationContext
from topology.connection import Connection
from topology.diagnose import cannot_reach, refuse_unreachable

log = logging.getLogger(__name__)

#: handle(request) -> the answers to publish (an empty list: nothing to say, e.g. a refund already done).
Handler = Callable[[Event], list[Event]]


@dataclass
class ResponderStats:
    """Counters for tests and the demo (no PII)."""

    requests: int = 0
    answers: int = 0
    skipped: int = 0  # undecodable, unexpected type, or the handler failed on it
    retries: int = 0  # batches re-read because an answer could not be published
    errors: list[str] = field(default_factory=list)


class Responder:
    """Consume `request_topic` in `group_id`, answer each request with `handle`, publish, then commit."""

    def __init__(self, name: str, *, bootstrap_servers: str | Connection, registry: SchemaRegistry,
                 publisher: Publisher,
                 request_topic: str, group_id: str, handle: Handler, request_type: type[Event],
                 on_published: Callable[[Event, list[Event]], None] | None = None,
                 connect_timeout_s: float = 10.0, retry_backoff_s: float = 2.0) -> None:
        self.name = name
        self.request_topic = request_topic
        self.group_id = group_id
        self.stats = ResponderStats()
        self._bootstrap = bootstrap_servers
        self._deserialize = AvroDeserializer(registry)
        self._publisher = publisher
        self._handle = handle
        self._request_type = request_type
        self._on_published = on_published
        self._connect_timeout_s = connect_timeout_s
        self._retry_backoff_s = retry_backoff_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer = None

    # ---- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect (in the caller's thread, so an unreachable broker is a clear error here) and start polling."""
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError

        timeout_ms = int(self._connect_timeout_s * 1000)
        refuse_unreachable(self._bootstrap, BrokerUnavailable)  # a known cause at once, not after the timeout
        try:
            self._consumer = KafkaConsumer(
                self.request_topic, **Connection.of(self._bootstrap).kafka_python_kwargs(), group_id=self.group_id,
                client_id=f"gplx-{self.name}-adapter", enable_auto_commit=False, auto_offset_reset="earliest",
                bootstrap_timeout_ms=timeout_ms, max_poll_records=200)
        except (KafkaError, OSError):
            raise BrokerUnavailable(f"{self.name} adapter: {cannot_reach(self._bootstrap)}") from None
        self._thread = threading.Thread(target=self._run, name=f"gplx-{self.name}-adapter", daemon=True)
        self._thread.start()
        log.info("%s adapter consuming %s as group %s", self.name, self.request_topic, self.group_id)

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("%s adapter did not stop within %ss", self.name, timeout_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ---- the loop --------------------------------------------------------------------------------------------

    def _run(self) -> None:
        consumer = self._consumer
        try:
            while not self._stop.is_set():
                batch = consumer.poll(timeout_ms=500)
                for tp, records in batch.items():
                    if self._stop.is_set():
                        break
                    self._process(consumer, tp, records)
        except Exception as exc:  # noqa: BLE001 - a dying adapter must say why, then stop
            log.error("%s adapter stopped on an unexpected error: %s", self.name, failure_summary(exc))
            self.stats.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            consumer.close()

    def _process(self, consumer, tp, records) -> None:
        from kafka.structs import OffsetAndMetadata

        pending, answered, sent_ids = [], [], set()
        for record in records:
            self.stats.requests += 1
            request, answers = self._answers(record)
            answered.append((request, answers))
            # A request delivered twice in one batch gets the same answer (same event id): publish it once.
            fresh = [a for a in answers if a.event_id not in sent_ids]
            sent_ids.update(a.event_id for a in fresh)
            try:
                pending += [self._publisher.send(a) for a in fresh]
            except PublishError as exc:
                return self._retry_later(consumer, tp, records[0].offset, exc)
        try:
            for p in pending:
                p.result()  # wait for the broker's acknowledgement of every answer of this batch
        except PublishError as exc:
            return self._retry_later(consumer, tp, records[0].offset, exc)
        self.stats.answers += len(pending)
        for request, answers in answered:
            if self._on_published is not None and request is not None:
                self._on_published(request, answers)
        consumer.commit({tp: OffsetAndMetadata(records[-1].offset + 1, "", -1)})

    def _answers(self, record) -> tuple[Event | None, list[Event]]:
        """(the decoded request or None, its answers); a record that cannot be answered is logged and skipped."""
        try:
            request = self._deserialize(record.value, SerializationContext(record.topic))
        except RegistryUnavailable:
            raise  # transient and global: let the loop fail loudly rather than skip requests
        except DeserializationError as exc:
            # The case processor is the only writer of request topics; a bad record is its bug. Say so and move
            # on: blocking the partition would starve every other citizen's case.
            log.warning("%s adapter skipped %s[%d]@%d: %s", self.name, record.topic, record.partition,
                        record.offset, exc)
            self.stats.skipped += 1
            return None, []
        if not isinstance(request, self._request_type):
            log.warning("%s adapter skipped %s[%d]@%d: unexpected event type %s", self.name, record.topic,
                        record.partition, record.offset, request.avro_name if request else None)
            self.stats.skipped += 1
            return None, []
        try:
            answers = self._handle(request)
        except Exception as exc:  # noqa: BLE001 - one bad request must not stop the adapter
            # type and place only: the message may quote the request's personal data
            log.error("%s adapter could not answer %s[%d]@%d: %s", self.name, record.topic, record.partition,
                      record.offset, failure_summary(exc))
            self.stats.skipped += 1
            return None, []
        return request, answers

    def _retry_later(self, consumer, tp, offset: int, exc: Exception) -> None:
        """Answers not acknowledged: re-read the batch after a pause (nothing was committed)."""
        log.warning("%s adapter could not publish answers (%s); retrying in %ss", self.name, exc,
                    self._retry_backoff_s)
        self.stats.retries += 1
        consumer.seek(tp, offset)
        self._stop.wait(self._retry_backoff_s)
