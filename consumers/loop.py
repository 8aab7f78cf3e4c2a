"""The consume -> act -> commit loop of every consumer that is not the faust case processor.

A consumer of the bus (the portal sink, the adapters' responders, the clinic gateway, the case store...) is its
`act` and its wiring; everything else is here, once:

- **decode** each record with the registry (Confluent wire format) and check it is the expected event type;
- **dead-letter poison**: an undecodable record (its `DlqCode`), an unexpected event type (`UNKNOWN_EVENT_TYPE`)
  or a record `act` failed on with an error that is not transient (`PROCESSING_FAILED`, logged as type and
  place only: the message may quote personal data) goes to the `dlq` topic, built by `schemas.deadletter`,
  acknowledged (acks=all) before its offset is committed; the partition moves on;
- **wait out outages**: a `TransientError` (registry or broker away) while polling (a retriable Kafka error),
  decoding or dead-lettering is retried with backoff until it passes or the loop is stopped, never dead-lettered;
  raised by `act` (or by waiting for its effects) the batch is re-read from the first record not committed, after
  a backoff;
- **commit after the effect**: a record's offset is committed only once `act` returned and every delivery it
  handed back was acknowledged, so a crash in between re-delivers the record (at-least-once: make `act`
  idempotent, e.g. with deterministic event ids or an idempotency key); a commit that fails (the group
  coordinator moved) is retried after each poll while the partition stays assigned;
- **stop**: `stop()` (or setting the Event given to `run`) ends the loop after the current record; an `act`
  that is waiting (e.g. a backoff) should watch `loop.stopping` and raise `Stopped` to leave its record
  uncommitted for the next start.

A new consumer writes only its act:

    def act(record, event: models.IssuanceRequested) -> Iterable[Pending] | None:
        ...  # the effect; return the deliveries (objects with .result() or .get()) to acknowledge first

    loop = ConsumeLoop("portal-sink", connection=conn, registry=registry, topic=catalogue.name(ISSUANCE_REQUESTS),
                       group_id=catalogue.prefix + consumer_group(PORTAL), expects=models.IssuanceRequested,
                       act=act, dlq_topic=catalogue.name(DLQ))
    loop.start()   # a daemon thread; the broker is reached here, so a bad address fails in the caller
    ...
    loop.stop()    # or: loop.run(stop_event) in the caller's thread (a command), returns the stats

Every option is keyword-only; see `ConsumeLoop.__init__`. Counters: `loop.stats` (`LoopStats`). Errors that end
the loop (a Kafka error while dead-lettering, a bug in the loop) are in `stats.errors` and logged; `run()` raises
them.
"""
from __future__ import annotations

import logging
import random
import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from consumers.backoff import Backoff
from schemas import deadletter, models
from schemas.errors import DeserializationError, DlqCode, TransientError
from schemas.privacy import failure_summary
from schemas.registry import RegistryClient
from schemas.serde import AvroDeserializer, AvroSerializer, SchemaRegistry, SerializationContext, key_bytes
from topology.connection import Connection, environment
from topology.diagnose import cannot_reach, refuse_unreachable
from topology.kafka_python import new_client

log = logging.getLogger(__name__)

#: act(record, event) -> deliveries to acknowledge before the commit (objects with `.result()` or `.get()`), or None.
Act = Callable[[Any, models.Event], "Iterable[Any] | None"]


class Stopped(Exception):
    """Raised by an `act` interrupted by `stop()` before its effect happened: the record is not committed."""


@dataclass
class LoopStats:
    """Counters of one loop (plain ints, updated by the loop's thread only; read them from any thread)."""

    records: int = 0  # records read
    acted: int = 0  # records `act` returned for (committed once their deliveries are acknowledged)
    dead_lettered: int = 0  # records sent to the DLQ (undecodable, unexpected type, or act failed on them)
    undecodable: int = 0  # of those: not decodable or not the expected type
    retries: int = 0  # batches re-read because act or its deliveries hit a transient error
    outage_waits: int = 0  # waits for the registry or broker while decoding or dead-lettering
    commit_failures: int = 0  # failed commit attempts (each retried while the partition stays assigned)
    errors: list[str] = field(default_factory=list)  # why the loop ended, if it ended on an error


class DeadLetters:
    """Writes dead letters (and, with them, any events that must land in the same step) and waits for the broker's
    acknowledgement of all of them. Built by the loop; `act` may use `loop.dead_letters` for a give-up of its own
    (e.g. the sink after its last portal attempt)."""

    def __init__(self, producer, serializer: AvroSerializer, dlq_topic: str, source: dict) -> None:
        self.producer, self.dlq_topic, self.source = producer, dlq_topic, source
        self._serialize = serializer

    def send(self, record, code: DlqCode | str, text: str, *, correlation_id: str | None = None,
             events: Iterable[tuple[str, str | None, models.Event]] = ()) -> models.DeadLetter:
        """Send `events` ((topic, key, event) triples) and the record's letter; return once all are acknowledged."""
        letter = deadletter.dead_letter(record, code=code, text=text, source=self.source,
                                        correlation_id=correlation_id)
        futures = [self.producer.send(topic, key=key_bytes(key), value=self._serialize(event,
                                                                                       SerializationContext(topic)))
                   for topic, key, event in events]
        futures.append(self.producer.send(self.dlq_topic, key=record.key,
                                          value=self._serialize(letter, SerializationContext(self.dlq_topic))))
        for future in futures:
            future.get(timeout=30)  # acknowledged (acks=all) before the offset may be committed
        return letter


class ConsumeLoop:
    """Consume `topic` in `group_id`: decode, act, wait for the effects, commit; dead-letter poison; wait out
    outages. See the module docstring."""

    def __init__(self, name: str, *, connection: str | Connection, registry: str | SchemaRegistry, topic: str,
                 group_id: str, act: Act, expects: type | tuple[type, ...], dlq_topic: str,
                 source: dict | None = None, max_poll_records: int = 200, max_poll_interval_ms: int = 300_000,
                 backoff: Backoff | None = None, connect_timeout_s: float = 10.0, auto_register: bool = False,
                 client_id: str | None = None, rng: random.Random | None = None) -> None:
        """
        name: the consumer's name, in logs, thread and client ids (e.g. "portal-sink", "identity").
        connection: where and how to connect (a Connection, or a bootstrap string).
        registry: a RegistryClient (shared, not closed here) or a registry URL (a client is made and closed).
        topic, group_id: what to read, as which consumer group (from the catalogue).
        act: act(record, event) -> deliveries to acknowledge before the commit, or None. Raise `Stopped` when
            interrupted by stop(); a `TransientError` (wrap your own outage errors in one, as the responder's
            AnswersNotPublished does) to re-read the batch later; anything else dead-letters the record as
            PROCESSING_FAILED (a Kafka error ends the loop instead: the broker, not the record, is wrong).
        expects: the event class(es) act takes; any other type (or a tombstone) is dead-lettered.
        dlq_topic: the catalogue's dlq topic (with its prefix).
        source: the DeadLetter's source (default {"system": name, "instance": GPLX_INSTANCE or the host name}).
        max_poll_records: records per poll (1 when each act is long, e.g. an HTTP call with retries).
        max_poll_interval_ms: longest time between polls before the group evicts the member: above the longest
            act of a batch.
        backoff: delays between retries of transient errors (default 0.5 s doubling to 30 s, jittered).
        connect_timeout_s: how long the first connection to the broker may take.
        auto_register: register the DeadLetter schema on first use (False in production: `schemas register`).
        client_id: Kafka client id (default gplx-<name>).
        """
        self.name, self.topic, self.group_id, self.dlq_topic = name, topic, group_id, dlq_topic
        self.stats = LoopStats()
        self._connection = Connection.of(connection)
        self._owned_registry = None
        if isinstance(registry, str):
            registry = self._owned_registry = RegistryClient(registry, auth=self._connection.registry_auth)
        self._deserialize = AvroDeserializer(registry)
        self._serializer = AvroSerializer(registry, auto_register=auto_register)
        self._act, self._expects = act, expects
        self._source = source or {"system": name, "instance": environment().get("GPLX_INSTANCE",
                                                                               socket.gethostname())}
        self._max_poll_records, self._max_poll_interval_ms = max_poll_records, max_poll_interval_ms
        self.backoff = backoff or Backoff(base_s=0.5, max_s=30.0, jitter=0.5)
        self._connect_ms = int(connect_timeout_s * 1000)
        self._client_id = client_id or f"gplx-{name}"
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer = self._producer = None
        self._owed: dict[Any, int] = {}  # partition -> offset of the last record done whose commit failed
        # Batches re-read in a row, for the backoff's attempt number: reset by the next batch committed whole (on
        # any partition: one outage, one count); a batch that committed its first records before the error still
        # counts. Counting with the lifetime stats instead made every wait the full 30 s once a long-lived loop had
        # seen ten outages.
        self._batch_failures = 0
        self.dead_letters: DeadLetters | None = None

    # ---- lifecycle -------------------------------------------------------------------------------------------

    @property
    def stopping(self) -> threading.Event:
        """Set when the loop should stop; an act that waits should wait on it (`loop.stopping.wait(s)`)."""
        return self._stop

    def start(self) -> "ConsumeLoop":
        """Connect in the caller's thread (an unreachable broker is a clear error here), then consume in a daemon
        thread until stop()."""
        self._connect()
        self._thread = threading.Thread(target=self._run_logged, name=f"gplx-{self.name}", daemon=True)
        self._thread.start()
        log.info("%s consuming %s as group %s", self.name, self.topic, self.group_id)
        return self

    def stop(self, timeout_s: float = 30.0) -> LoopStats:
        """Ask the loop to stop and wait up to `timeout_s` for its thread; returns the counters."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("%s did not stop within %ss", self.name, timeout_s)
        return self.stats

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self, stop: threading.Event | None = None) -> LoopStats:
        """Consume in the caller's thread until `stop` (or stop()) is set; raises what ended the loop early."""
        if stop is not None:
            self._stop = stop
        if self._consumer is None:
            self._connect()
        try:
            while not self._stop.is_set():
                polled = self._wait_out(self._poll, "polling")
                if polled is _STOPPED:
                    break
                for tp, records in polled.items():
                    if self._stop.is_set():
                        break  # records of the partitions left are not committed: read again next start
                    self._batch(tp, records)
                if self._owed:
                    self._pay_owed_commits()
        finally:
            self._close()
        return self.stats

    def _run_logged(self) -> None:
        try:
            self.run()
        except Exception as exc:  # noqa: BLE001 - a thread has nobody to raise to: record and log it
            self.stats.errors.append(f"{type(exc).__name__}: {exc}")
            log.error("%s stopped on an error: %s", self.name, failure_summary(exc))

    def _connect(self) -> None:
        from kafka import KafkaConsumer, KafkaProducer
        from kafka.errors import KafkaError

        from producers.errors import BrokerUnavailable

        refuse_unreachable(self._connection, BrokerUnavailable)  # a known cause at once, not after the timeout
        kwargs = self._connection.kafka_python_kwargs()
        try:
            self._consumer = new_client(
                KafkaConsumer,
                self.topic, **kwargs, group_id=self.group_id, client_id=self._client_id, enable_auto_commit=False,
                auto_offset_reset="earliest",  # a new group must not skip what is already waiting
                max_poll_records=self._max_poll_records, max_poll_interval_ms=self._max_poll_interval_ms,
                bootstrap_timeout_ms=self._connect_ms,
                # A member that joins before its metadata names the topic is assigned nothing; kafka-python should
                # rejoin at the next metadata update, but under load we saw groups stay empty until the 5-minute
                # refresh (fault runs: 18 refund requests unread). A 30 s refresh bounds that.
                metadata_max_age_ms=30_000)
            # ...and reading the topic's metadata before the first poll makes the first join see it.
            if not self._consumer.partitions_for_topic(self.topic):
                log.warning("%s: topic %s is not known to the cluster yet; consuming once it is", self.name,
                            self.topic)
            self._producer = KafkaProducer(**kwargs, client_id=self._client_id, acks="all", enable_idempotence=True,
                                           bootstrap_timeout_ms=self._connect_ms, max_block_ms=self._connect_ms)
        except (KafkaError, OSError):
            self._close()
            raise BrokerUnavailable(f"{self.name}: {cannot_reach(self._connection)}") from None
        self.dead_letters = DeadLetters(self._producer, self._serializer, self.dlq_topic, self._source)

    def _close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=10)
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
        self._consumer = self._producer = None
        if self._owned_registry is not None:
            self._owned_registry.close()
            self._owned_registry = None

    # ---- one batch of one partition ---------------------------------------------------------------------------

    def _batch(self, tp, records) -> None:
        """Handle the records of one partition: commit what was done (all of them, unless stopped or retrying)."""
        pending: list = []
        done = None  # offset of the last record handled
        for record in records:
            self.stats.records += 1
            try:
                event = self._decode(record)
                if event is _STOPPED:
                    break
                if event is not _POISON:
                    pending += list(self._act(record, event) or ())
                    self.stats.acted += 1
            except Stopped:
                break
            except TransientError as exc:  # act or its effects hit an outage: keep what is done, re-read the rest
                seek_to = record.offset
                if done is not None:
                    try:
                        _settle(pending)
                        self._commit(tp, done)
                    except TransientError:
                        seek_to = records[0].offset
                return self._retry_later(tp, seek_to, exc)
            except Exception as exc:  # noqa: BLE001 - poison: one bad record must not stop the partition
                if _is_kafka_error(exc):
                    raise  # our broker, not the record: end the loop without committing
                log.error("%s could not act on %s[%d]@%d: %s", self.name, record.topic, record.partition,
                          record.offset, failure_summary(exc))
                if self._dead_letter(record, DlqCode.PROCESSING_FAILED, f"{type(exc).__name__}: {exc}") is _STOPPED:
                    break
            done = record.offset
        if done is not None:
            try:
                _settle(pending)
            except Stopped:
                return  # an effect was interrupted by stop(): nothing of this batch is committed, read next start
            except TransientError as exc:
                return self._retry_later(tp, records[0].offset, exc)
            self._commit(tp, done)
            self._batch_failures = 0

    def _decode(self, record):
        """The expected event, or _POISON (dead-lettered), or _STOPPED."""
        ctx = SerializationContext(record.topic)
        try:
            event = self._wait_out(lambda: self._deserialize(record.value, ctx), "decoding")
        except DeserializationError as exc:
            self.stats.undecodable += 1
            return self._dead_letter(record, exc.code, str(exc)) or _POISON
        if event is _STOPPED:
            return event
        if not isinstance(event, self._expects):
            self.stats.undecodable += 1
            name = "a tombstone" if event is None else event.avro_name
            return self._dead_letter(record, DlqCode.UNKNOWN_EVENT_TYPE,
                                     f"{record.topic} carries {name}, expected {_names(self._expects)}",
                                     correlation_id=getattr(event, "correlation_id", None)) or _POISON
        return event

    def _dead_letter(self, record, code, text: str, correlation_id: str | None = None):
        """Send the record's letter, waiting out outages; None when sent, _STOPPED if stopped first."""
        sent = self._wait_out(lambda: self.dead_letters.send(record, code, text, correlation_id=correlation_id),
                              "dead-lettering")
        if sent is _STOPPED:
            return _STOPPED
        self.stats.dead_lettered += 1
        log.warning("%s dead-lettered %s[%d]@%d: %s", self.name, record.topic, record.partition, record.offset,
                    code)
        return None

    def _poll(self) -> dict:
        """One poll. A retriable Kafka error is a TransientError, waited out: a broker that died (the group
        coordinator, a leader) surfaces through poll and kafka-python reconnects at the next one. It ended the portal
        sink's loop when the faults harness killed the coordinator's broker under load (session 8). A non-retriable
        one (e.g. not authorized) ends the loop: asking again would not help."""
        from kafka.errors import KafkaError

        try:
            return self._consumer.poll(timeout_ms=500)
        except KafkaError as exc:
            if not exc.retriable:
                raise
            raise TransientError(failure_summary(exc)) from exc

    def _wait_out(self, call: Callable[[], Any], what: str):
        """call(), retried with backoff while it raises a TransientError; _STOPPED if stopped meanwhile."""
        attempt = 0
        while True:
            try:
                return call()
            except TransientError as exc:
                attempt += 1
                self.stats.outage_waits += 1
                log.warning("%s: %s while %s; retrying", self.name, exc, what)
                if self._stop.wait(self.backoff.delay(min(attempt, 10), self._rng)):
                    return _STOPPED

    def _retry_later(self, tp, offset: int, exc: Exception) -> None:
        """A transient error: re-read the partition from `offset` after a pause (nothing after it is committed)."""
        log.warning("%s: %s; re-reading %s[%d] from offset %d later", self.name, exc, tp.topic, tp.partition,
                    offset)
        self.stats.retries += 1
        self._batch_failures += 1
        self._consumer.seek(tp, offset)
        self._stop.wait(self.backoff.delay(min(self._batch_failures, 10), self._rng))

    def _commit(self, tp, offset: int) -> None:
        """Commit up to `offset` (its record done). A failed commit is owed and retried after each poll while the
        partition stays ours: without that, a commit lost to a coordinator move (NotCoordinator, a timeout) left
        the group behind for good when no later record came, and a restart acted on those records again."""
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata

        try:
            self._consumer.commit({tp: OffsetAndMetadata(offset + 1, "", -1)})
        except KafkaError as exc:
            self.stats.commit_failures += 1
            if self._owed.get(tp) != offset:  # one warning per offset, not one per retry
                log.warning("%s: commit of %s[%d]@%d failed (%s); retrying while the partition is ours (if it "
                            "moves, its next owner acts on the record again: act is idempotent)", self.name,
                            tp.topic, tp.partition, offset, exc)
            self._owed[tp] = offset
        else:
            self._owed.pop(tp, None)

    def _pay_owed_commits(self) -> None:
        """Retry the commits that failed, for the partitions still assigned to this member."""
        assigned = self._consumer.assignment()
        for tp, offset in list(self._owed.items()):
            if tp in assigned:
                self._commit(tp, offset)
            else:  # moved in a rebalance: the new owner reads from the last committed offset
                del self._owed[tp]


_STOPPED, _POISON = object(), object()


def _settle(pending: Iterable) -> None:
    """Wait for every delivery act handed back (SDK PendingDelivery.result() or kafka-python future.get())."""
    for p in pending:
        (p.result if hasattr(p, "result") else p.get)()


def _names(expects: type | tuple[type, ...]) -> str:
    classes = expects if isinstance(expects, tuple) else (expects,)
    return " or ".join(getattr(c, "avro_name", c.__name__) for c in classes)


def _is_kafka_error(exc: BaseException) -> bool:
    from kafka.errors import KafkaError

    return isinstance(exc, KafkaError)
