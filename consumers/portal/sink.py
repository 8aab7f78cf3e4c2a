"""The portal issuance sink: IssuanceRequested from `issuance.requests` -> POST /issuances at the national portal.

Promises, and how they are kept:
- never loses an issuance: the offset of a record is committed only after the portal accepted it or after it was
  dead-lettered (DLQ + IssuanceDeliveryFailed acknowledged by the broker with acks=all). A crash in between means
  the record is read and sent again;
- issues each licence once: every POST carries `Idempotency-Key: <issuance_id>` (deterministic, from the case), so
  the copies that at-least-once delivery makes are recognised by the portal;
- survives a portal outage: failed attempts are retried with jittered exponential backoff, up to `max_attempts`;
  then the request goes to the DLQ and the case shows IssuanceDeliveryFailed. A 4xx other than 408/425/429 is not
  retried (the portal will never take that request) and is dead-lettered at once;
- is who it says it is: with `credentials` every POST carries the bearer key id, a timestamp and the HMAC-SHA256
  of its exact body (`consumers.portal.signing`). A 401 (wrong secret, unknown key id, clock more than 5 minutes
  off) is such a 4xx: dead-lettered at once with the portal's one-line reason, then `gplx-bus dlq replay` once fixed.

One record at a time (max_poll_records=1): the portal call dominates, and committing per record keeps "what was
delivered" and "what is committed" the same thing. max.poll.interval is sized to the longest retry sequence, so a
long outage does not get the sink thrown out of its group mid-retry.

Kafka errors while dead-lettering (broker down) end `run()` with the exception and without a commit: the record
stays for the next start. `stop` interrupts a backoff wait at once; the record being retried is then not
committed and is delivered on the next start.

    stop = threading.Event()
    sink = IssuanceSink(bootstrap, registry_url, portal.url)
    thread = threading.Thread(target=sink.run, args=(stop,)); thread.start()  # or sink.start()/sink.stop()
"""
from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from dataclasses import dataclass, field

from schemas import models
from schemas.errors import DeserializationError, RegistryUnavailable
from schemas.registry import RegistryClient
from schemas.serde import AvroDeserializer, AvroSerializer, SchemaRegistry, SerializationContext, key_bytes
from topology import contracts
from topology.catalogue import CASES_EVENTS, DLQ, ISSUANCE_REQUESTS, PORTAL, Catalogue, consumer_group
from topology.connection import Connection

from consumers.portal import deadletter
from consumers.portal.backoff import Backoff
from consumers.portal.client import PortalClient
from consumers.portal.signing import PortalCredentials

log = logging.getLogger(__name__)


@dataclass
class SinkStats:
    """Counters of one sink; read them from any thread (plain ints, updated by the sink's thread only)."""

    delivered: int = 0  # issuances the portal accepted
    attempts: int = 0  # POSTs made
    failed_attempts: int = 0
    dead_lettered: int = 0  # records sent to the DLQ (delivery given up, or undecodable)
    undecodable: int = 0
    commit_failures: int = 0
    errors: list[str] = field(default_factory=list)  # why run() ended, if it ended on an error


class IssuanceSink:
    """Consumes IssuanceRequested (consumer group `portal`, the catalogue's reader of issuance.requests) and
    delivers each to the portal; see the module docstring for the guarantees."""

    def __init__(self, bootstrap_servers: str | Connection, registry: str | SchemaRegistry, portal_url: str, *,
                 prefix: str = "", catalogue: Catalogue | None = None, group_id: str | None = None,
                 max_attempts: int = 6, backoff: Backoff | None = None, request_timeout_s: float = 10.0,
                 auto_register: bool = False, rng: random.Random | None = None,
                 connect_timeout_s: float = 10.0, credentials: PortalCredentials | None = None,
                 portal_verify: object = True) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.catalogue = catalogue or Catalogue.build(prefix=prefix)
        self.topic = self.catalogue.name(ISSUANCE_REQUESTS)
        self.group_id = group_id or self.catalogue.prefix + consumer_group(PORTAL)
        self.bootstrap_servers = bootstrap_servers
        self.portal_url = portal_url
        self.max_attempts = max_attempts
        self.backoff = backoff or Backoff(base_s=0.5, max_s=30.0, jitter=0.5)
        self.stats = SinkStats()
        self._request_timeout_s = request_timeout_s
        self._credentials = credentials  # its repr hides the secret
        self._portal_verify = portal_verify  # httpx's verify: True, a CA file or an SSLContext
        self._registry = RegistryClient(registry, auth=Connection.of(bootstrap_servers).registry_auth) \
            if isinstance(registry, str) else registry
        self._deserializer = AvroDeserializer(self._registry)
        self._serializer = AvroSerializer(self._registry, auto_register=auto_register)
        self._rng = rng or random.Random()
        self._connect_ms = int(connect_timeout_s * 1000)
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    # ---- in-process control (the demo) ----

    def start(self) -> "IssuanceSink":
        """Run in a daemon thread until stop()."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run_logged, args=(self._stop,), name="portal-sink",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> SinkStats:
        if self._stop is not None:
            self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        return self.stats

    def _run_logged(self, stop: threading.Event) -> None:
        try:
            self.run(stop)
        except Exception as exc:  # noqa: BLE001 - a thread has nobody to raise to: record and log it
            self.stats.errors.append(f"{type(exc).__name__}: {exc}")
            log.error("portal sink stopped on an error: %s: %s", type(exc).__name__, exc)

    # ---- the loop ----

    def run(self, stop: threading.Event) -> SinkStats:
        """Consume and deliver until `stop` is set."""
        from kafka import KafkaConsumer, KafkaProducer

        contracts.check_registered(self._registry, self.catalogue, writer=PORTAL, outage_ok=True)
        worst_s = self.max_attempts * self._request_timeout_s + self.backoff.worst_case(self.max_attempts) + 60
        consumer = KafkaConsumer(
            self.topic, **Connection.of(self.bootstrap_servers).kafka_python_kwargs(), group_id=self.group_id,
            client_id="gplx-portal-sink", enable_auto_commit=False,
            auto_offset_reset="earliest",  # a new group must not skip issuances already waiting
            max_poll_records=1, max_poll_interval_ms=max(300_000, int(worst_s * 1000)),
            bootstrap_timeout_ms=self._connect_ms,
        )
        producer = KafkaProducer(**Connection.of(self.bootstrap_servers).kafka_python_kwargs(),
                                 client_id="gplx-portal-sink",
                                 acks="all", enable_idempotence=True, bootstrap_timeout_ms=self._connect_ms,
                                 max_block_ms=self._connect_ms)
        client = PortalClient(self.portal_url, timeout_s=self._request_timeout_s, stop=stop,
                              credentials=self._credentials, verify=self._portal_verify)
        log.info("portal sink: %s (group %s) -> %s, %d attempts, %s", self.topic, self.group_id, self.portal_url,
                 self.max_attempts, f"signed as key id {self._credentials.key_id}" if self._credentials
                 else "UNSIGNED (no portal secret)")
        try:
            while not stop.is_set():
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        if not self._process(record, client, producer, stop):
                            return self.stats  # stopped mid-retry: not committed, delivered on the next start
                        self._commit(consumer, record)
        finally:
            client.close()
            producer.close(timeout=10)
            consumer.close(autocommit=False)
        return self.stats

    def _process(self, record, client: PortalClient, producer, stop: threading.Event) -> bool:
        """Deliver or dead-letter one record; False if stopped before either happened."""
        issuance = self._decode(record, producer, stop)
        if issuance is None:
            return not stop.is_set()  # dead-lettered (True), or stopped while the registry was away (False)
        last_error = ""
        for attempt in range(1, self.max_attempts + 1):
            self.stats.attempts += 1
            outcome = client.deliver(issuance)
            if outcome.delivered:
                self.stats.delivered += 1
                log.info("issuance %s delivered (attempt %d, HTTP %s)", issuance.issuance_id, attempt,
                         outcome.status)
                return True
            self.stats.failed_attempts += 1
            last_error = outcome.error
            log.warning("issuance %s: attempt %d/%d failed: %s", issuance.issuance_id, attempt, self.max_attempts,
                        outcome.error)
            if not outcome.retryable:
                break
            # Pacing between attempts (not synchronisation); set() on stop ends the wait at once.
            if attempt < self.max_attempts and stop.wait(self.backoff.delay(attempt, self._rng)):
                return False
        self._give_up(record, issuance, attempts=attempt, last_error=last_error, producer=producer)
        return True

    def _decode(self, record, producer, stop: threading.Event) -> models.IssuanceRequested | None:
        """The issuance, or None after dead-lettering an undecodable record (or when stopped)."""
        ctx = SerializationContext(record.topic)
        attempt = 0
        while True:
            try:
                event = self._deserializer(record.value, ctx)
                break
            except RegistryUnavailable as exc:  # our own registry is away: wait for it, never dead-letter
                attempt += 1
                log.warning("schema registry unavailable (%s); retrying", exc)
                if stop.wait(self.backoff.delay(min(attempt, 10), self._rng)):
                    return None
            except DeserializationError as exc:
                self.stats.undecodable += 1
                self._send_dead_letter(record, exc.code, str(exc), None, producer)
                return None
        if not isinstance(event, models.IssuanceRequested):
            self.stats.undecodable += 1
            name = "tombstone" if event is None else event.avro_name
            self._send_dead_letter(record, "UNKNOWN_EVENT_TYPE", f"{record.topic} carries {name}, expected "
                                   f"vn.gplx.cases.IssuanceRequested", getattr(event, "correlation_id", None),
                                   producer)
            return None
        return event

    def _give_up(self, record, issuance: models.IssuanceRequested, *, attempts: int, last_error: str,
                 producer) -> None:
        """DLQ envelope + IssuanceDeliveryFailed on cases.events and the province's topic, all acknowledged."""
        now = dt.datetime.now(dt.timezone.utc)
        text = (f"portal delivery of issuance {issuance.issuance_id} failed after {attempts} attempt(s); "
                f"last error: {last_error}")
        failed = deadletter.delivery_failed(issuance, attempts=attempts, last_error=last_error, now=now)
        topics = [self.catalogue.name(CASES_EVENTS)]
        try:
            topics.append(self.catalogue.province_topic(issuance.province))
        except KeyError:
            log.warning("no topic for province %s in this catalogue; failure recorded on %s only",
                        issuance.province, topics[0])
        futures = [self._send(producer, topic, issuance.cccd, failed) for topic in topics]
        self._send_dead_letter(record, "PROCESSING_FAILED", text, issuance.case_id, producer, futures)
        log.error("issuance %s dead-lettered after %d attempt(s): %s", issuance.issuance_id, attempts, last_error)

    def _send_dead_letter(self, record, code: str, text: str, correlation_id: str | None, producer,
                          pending: list | None = None) -> None:
        letter = deadletter.dead_letter(record, error_code=code, error_text=text, correlation_id=correlation_id,
                                        now=dt.datetime.now(dt.timezone.utc))
        dlq = self.catalogue.name(DLQ)
        futures = list(pending or []) + [producer.send(dlq, key=record.key,
                                                       value=self._serializer(letter, SerializationContext(dlq)))]
        for future in futures:
            future.get(timeout=30)  # acknowledged (acks=all) before the offset may be committed
        self.stats.dead_lettered += 1

    def _send(self, producer, topic: str, key: str, event: models.Event):
        return producer.send(topic, key=key_bytes(key), value=self._serializer(event, SerializationContext(topic)))

    def _commit(self, consumer, record) -> None:
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata, TopicPartition

        try:
            consumer.commit({TopicPartition(record.topic, record.partition): OffsetAndMetadata(record.offset + 1,
                                                                                               "", -1)})
        except KafkaError as exc:  # the partition moved to another member: it re-sends; the key dedupes
            self.stats.commit_failures += 1
            log.warning("commit of %s[%d]@%d failed (%s); the record will be delivered again (same key)",
                        record.topic, record.partition, record.offset, exc)
