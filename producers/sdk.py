"""The producer SDK: how every source system (clinic, portal, payment gateway, identity, police) puts an event on
the bus.

Why one small SDK instead of each adapter configuring kafka-python itself: the guarantees the case processor relies
on are set here once and cannot be forgotten -
- the record is the validated pydantic model, encoded in the Confluent wire format with the registered schema
  (TopicRecordNameStrategy), so kcat and the provinces' tools can decode it;
- the key is the citizen's CCCD as UTF-8, so all facts about one citizen land on the same partition number of
  every co-partitioned topic (the case processor's join depends on it);
- the topic comes from the catalogue by event type, so nobody hand-types a topic name;
- the producer is idempotent with acks=all: a retry after a lost acknowledgement does not duplicate the record,
  and an acknowledged record survives the loss of the leader;
- every failure is a typed, one-line `PublishError` within a bounded time, never a hang or a traceback.

Compression: lz4 when the `lz4` package is installed (cheap on CPU), else gzip (always available in kafka-python).
`COMPRESSION` says which one this process uses.

    with Publisher("127.0.0.1:9092", "http://127.0.0.1:8081/apis/ccompat/v7") as pub:
        result = pub.publish(certificate)          # DeliveryResult(topic, partition, offset, event_id)
"""
from __future__ import annotations

import atexit
import functools
import logging
import weakref
from dataclasses import dataclass
from typing import Iterable

from kafka.errors import KafkaError, KafkaTimeoutError
from pydantic import ValidationError

from producers.errors import BrokerUnavailable, DeliveryError, InvalidEvent, PublishError, UnroutableEvent
from schemas.errors import SerializationError
from schemas.models import VALIDATED, Event
from schemas.registry import RegistryClient
from schemas.serde import AvroSerializer, SchemaRegistry, SerializationContext, key_bytes
from schemas.validation import explain
from topology.catalogue import CASES_REROUTED, Catalogue, expected_partition
from topology.connection import Connection
from topology.diagnose import cannot_reach, refuse_unreachable

log = logging.getLogger(__name__)

#: Header naming the Avro type, so tools can filter without decoding the value.
EVENT_TYPE_HEADER = "gplx-event-type"


def _pick_compression() -> str:
    try:
        import lz4.frame  # noqa: F401

        return "lz4"
    except ImportError:
        return "gzip"


#: The compression codec this process uses ("lz4" if the lz4 package is installed, else "gzip").
COMPRESSION = _pick_compression()


@dataclass(frozen=True)
class DeliveryResult:
    """Where the broker stored an acknowledged record."""

    topic: str
    partition: int
    offset: int
    event_id: str


def routes(catalogue: Catalogue) -> dict[str, str]:
    """Avro full name -> the one topic that carries it. Types on several topics (case events) are left out:
    their publisher must say which topic. `cases.rerouted` is no route: only the case processor forwards to it."""
    seen: dict[str, list[str]] = {}
    rerouted = catalogue.name(CASES_REROUTED)
    for spec in (t for t in catalogue.topics if t.name != rerouted):
        for name in spec.event_types:
            seen.setdefault(name, []).append(spec.name)
    return {name: topics[0] for name, topics in seen.items() if len(topics) == 1}


def key_partitioner():
    """Kafka's default partitioner for the SDK's producer: the partitions of kafka-python's DefaultPartitioner
    (murmur2 of the key bytes, positive, modulo the partition count: `topology.catalogue.expected_partition`),
    without its per-record cost (it sorts and copies the topic's partition lists and hashes byte by byte for every
    record). A record without a key goes where DefaultPartitioner sends it (a random available partition)."""
    from kafka.partitioner.default import DefaultPartitioner

    class KeyPartitioner(DefaultPartitioner):
        def partition(self, topic, key, serialized_key, value, serialized_value, cluster):
            if serialized_key is None:
                return super().partition(topic, key, serialized_key, value, serialized_value, cluster)
            # a topic's partitions are numbered 0..n-1, so DefaultPartitioner's sorted(all)[i] is i
            return expected_partition(serialized_key, len(cluster.partitions_for_topic(topic)))

    return KeyPartitioner()


def validated(event: Event) -> Event:
    """The event, validated against its model; InvalidEvent names every broken field and rule, never the values
    (they may be PII).

    An event pydantic built by validation (constructor, `model_validate`, a decoded record) with every nested record
    validated too is returned as is: validating it again would cost more than encoding it, on every record. Anything
    else is validated again here: `model_construct`, `model_copy(update=...)`, a validated event holding a record
    made by either (see `schemas.models.VALIDATED`)."""
    if not isinstance(event, Event):
        raise InvalidEvent(f"expected an event model from schemas.models, got {type(event).__name__}")
    if VALIDATED in event.__dict__:
        return event
    try:
        return type(event).model_validate(event.model_dump())
    except ValidationError as exc:
        raise InvalidEvent(f"{event.avro_name}: {explain(exc)}") from None


class PendingDelivery:
    """A record handed to the producer; `result()` waits (bounded) for the broker's acknowledgement."""

    __slots__ = ("_future", "topic", "event_id", "_timeout_s")  # one per record sent: no __dict__ each

    def __init__(self, future, topic: str, event_id: str, timeout_s: float) -> None:
        self._future = future
        self.topic = topic
        self.event_id = event_id
        self._timeout_s = timeout_s

    def result(self, timeout_s: float | None = None) -> DeliveryResult:
        try:
            meta = self._future.get(timeout=timeout_s or self._timeout_s)
        except KafkaError as exc:
            raise DeliveryError(f"topic {self.topic}: record not acknowledged: {_one_line(exc)}") from None
        return DeliveryResult(meta.topic, meta.partition, meta.offset, self.event_id)


class Publisher:
    """Publishes validated events to the bus. Thread-safe; one per process is enough.

    `registry` is a registry URL (a RegistryClient is made and owned) or any object with the registry interface
    (RegistryClient, InMemoryRegistry). Schemas are looked up, never registered: only the operator's
    `gplx-bus schemas register` changes the registry, and an unregistered schema fails fast (SchemaNotRegistered
    naming the subject). `auto_register=True` is for tests on a private in-memory registry.
    """

    def __init__(self, bootstrap_servers: str | Connection, registry: str | SchemaRegistry, *,
                 catalogue: Catalogue | None = None,
                 client_id: str = "gplx-producer", auto_register: bool = False, connect_timeout_s: float = 10.0,
                 delivery_timeout_s: float = 30.0, linger_ms: int = 10, batch_size: int = 64 * 1024,
                 compression: str | None = COMPRESSION) -> None:
        from kafka import KafkaProducer

        self.catalogue = catalogue or Catalogue.build()
        self._routes = routes(self.catalogue)
        self._delivery_timeout_s = delivery_timeout_s
        self._owned_registry = None
        if isinstance(registry, str):
            registry = self._owned_registry = RegistryClient(
                registry, timeout=connect_timeout_s, auth=Connection.of(bootstrap_servers).registry_auth)
        self._serializer = AvroSerializer(registry, auto_register=auto_register)
        # made once, not per record: avro name -> its headers (never mutated), topic -> its serialization context
        self._headers: dict[str, list[tuple[str, bytes]]] = {}
        self._contexts: dict[str, SerializationContext] = {}
        connect_ms = int(connect_timeout_s * 1000)
        request_ms = min(connect_ms, 30_000)
        try:
            refuse_unreachable(bootstrap_servers, BrokerUnavailable)  # a known cause at once, not after the timeout
            self._producer = KafkaProducer(
                **Connection.of(bootstrap_servers).kafka_python_kwargs(), client_id=client_id,
                acks="all", enable_idempotence=True,  # no duplicates on retry; survives a leader loss
                linger_ms=linger_ms, batch_size=batch_size, compression_type=compression,
                bootstrap_timeout_ms=connect_ms,  # fail fast when nothing answers at the address
                max_block_ms=connect_ms,  # send() waits this long at most for metadata (e.g. a missing topic)
                request_timeout_ms=request_ms,
                delivery_timeout_ms=max(int(delivery_timeout_s * 1000), request_ms + linger_ms),
                allow_auto_create_topics=False,  # topics come from the catalogue, never from a typo
                partitioner=key_partitioner(),  # the default partitions, cheaper per record
            )
        except BrokerUnavailable:
            self._close_registry()
            raise
        except (KafkaError, OSError):
            self._close_registry()
            raise BrokerUnavailable(cannot_reach(bootstrap_servers)) from None
        self._closed = False
        # Flush at interpreter exit even if the caller forgot close(); weak, so a dropped Publisher can be freed.
        self._atexit = functools.partial(_close_at_exit, weakref.ref(self))
        atexit.register(self._atexit)
        log.info("publisher %s connected to %s (acks=all, idempotent, %s)", client_id, bootstrap_servers,
                 compression or "no compression")

    # ---- publishing ------------------------------------------------------------------------------------------

    def topic_for(self, event: Event) -> str:
        """The catalogue's topic for the event's type (UnroutableEvent if there is none or several)."""
        try:
            return self._routes[event.avro_name]
        except KeyError:
            raise UnroutableEvent(f"{event.avro_name} has no single topic in the catalogue; pass topic=") from None

    def send(self, event: Event, *, topic: str | None = None, key: str | None = None) -> PendingDelivery:
        """Validate, encode and hand the event to the producer without waiting (for bulk publishing)."""
        if self._closed:
            raise PublishError("publisher is closed")
        event = validated(event)
        topic = topic or self.topic_for(event)
        value = self._encode(event, topic)
        return self._send(event, topic, key, value)

    def publish(self, event: Event, *, topic: str | None = None, key: str | None = None) -> DeliveryResult:
        """Publish one event and wait for the broker's acknowledgement (bounded by the delivery timeout)."""
        return self.send(event, topic=topic, key=key).result()

    def publish_many(self, events: Iterable[Event], *, topic: str | None = None) -> list[DeliveryResult]:
        """Publish events in order and wait for all of them.

        Every event is validated and encoded *before* the first is sent, so an invalid event leaves nothing
        half-published. A delivery failure raises DeliveryError after all others were waited for; its
        `results` holds the DeliveryResult (or None) of each event, in order.
        """
        prepared = []
        for event in events:
            event = validated(event)
            where = topic or self.topic_for(event)
            prepared.append((event, where, self._encode(event, where)))
        pending = [self._send(event, where, None, value) for event, where, value in prepared]
        self.flush()
        results: list[DeliveryResult | None] = []
        failures: list[DeliveryError] = []
        for p in pending:
            try:
                results.append(p.result())
            except DeliveryError as exc:
                results.append(None)
                failures.append(exc)
        if failures:
            error = DeliveryError(f"{len(failures)} of {len(pending)} events not acknowledged; first: {failures[0]}")
            error.results = results
            raise error
        return results  # type: ignore[return-value]

    # ---- lifecycle -------------------------------------------------------------------------------------------

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every record handed over so far is acknowledged or failed (bounded)."""
        try:
            self._producer.flush(timeout=timeout_s or self._delivery_timeout_s)
        except KafkaError as exc:
            raise DeliveryError(f"flush did not finish: {_one_line(exc)}") from None

    def close(self, timeout_s: float | None = None) -> None:
        """Flush and close; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._atexit)
        try:
            self._producer.close(timeout=timeout_s or self._delivery_timeout_s)  # close() flushes first
        finally:
            self._close_registry()

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals -------------------------------------------------------------------------------------------

    def _encode(self, event: Event, topic: str) -> bytes:
        context = self._contexts.get(topic) or self._contexts.setdefault(topic, SerializationContext(topic))
        try:
            return self._serializer(event, context)
        except SerializationError as exc:
            raise InvalidEvent(str(exc)) from None

    def _send(self, event: Event, topic: str, key: str | None, value: bytes) -> PendingDelivery:
        key = key if key is not None else getattr(event, "cccd", None)
        name = event.avro_name
        headers = self._headers.get(name) or self._headers.setdefault(name, [(EVENT_TYPE_HEADER, name.encode())])
        try:
            future = self._producer.send(topic, key=key_bytes(key), value=value, headers=headers)
        except KafkaTimeoutError:
            raise DeliveryError(f"topic {topic}: no metadata within the timeout; does the topic exist? "
                                f"(gplx-bus topics apply) and is Kafka up?") from None
        except KafkaError as exc:
            raise DeliveryError(f"topic {topic}: {_one_line(exc)}") from None
        return PendingDelivery(future, topic, event.event_id, self._delivery_timeout_s)

    def _close_registry(self) -> None:
        if self._owned_registry is not None:
            self._owned_registry.close()
            self._owned_registry = None


def _close_at_exit(ref: "weakref.ref[Publisher]") -> None:
    publisher = ref()
    if publisher is not None:
        try:
            publisher.close(timeout_s=10)
        except Exception:  # noqa: BLE001 - nothing useful to do at exit but say so
            log.warning("publisher could not flush at exit", exc_info=True)


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0][:300] if text else type(exc).__name__

