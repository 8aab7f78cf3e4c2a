"""The exporter's small consumer of `cases.events`: feeds a `CaseBook` and serves its numbers as Prometheus metrics.

Why no consumer group (group_id=None, partitions assigned, read from the beginning at every start): the numbers are
a function of the audit stream as retained (730 days, `topology.catalogue.AUDIT_RETENTION`), so reading it all
gives the same counters after every restart and on every replica; a restart shows a short gap. Only a restart
after old segments were deleted starts the counters lower: `rate()` takes that for one counter reset (README,
"Personal data"). Nothing is committed, so the exporter moves nobody's offsets, needs no group ACL, and no group of ours sits
in the lag table at STOP whenever the exporter is down. The price is a replay at start (decoding without pydantic
validation, `AvroDeserializer.decode`); until the first replay reaches the end offsets the case series are
absent rather than climbing from zero.

Failure handling, like the lag sampler: a thread that never dies.
- undecodable record (bad bytes, unknown schema): counted (`gplx_case_events_read_total{result="undecodable"}`),
  skipped; it is the same record on every replay, so the count is stable too;
- topic missing: `gplx_cases_reader_errors_total{reason="missing-topic"}` +1 per check, up=0, checked again;
- broker or registry away: counted by reason, up=0, clients rebuilt and reading resumes at our own positions
  (a registry outage must not turn good records into "undecodable", so the record is read again later).
  Applying an event twice is harmless anyway (the book is keyed by case).
While up=0 the case series are absent, as the lag series are.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from kafka import KafkaAdminClient, KafkaConsumer, OffsetSpec, TopicPartition
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from consumers.lag.cases import CaseBook, book_metrics
from consumers.lag.model import lag_messages
from schemas.errors import DeserializationError, RegistryError
from schemas.serde import AvroDeserializer, SchemaRegistry, SerializationContext
from topology.connection import Connection

log = logging.getLogger(__name__)

ERROR_REASONS = ("missing-topic", "kafka", "registry")


class TopicMissing(Exception):
    pass


class CaseSignals(Collector):
    """`start()` the reader thread, register as a prometheus collector, `stop()` at the end."""

    def __init__(self, bootstrap_servers: str | Connection, topic: str, registry: SchemaRegistry, *,
                 interval: float = 5.0,
                 request_timeout_ms: int = 10_000, client_id: str = "gplx-lag-cases", step_seconds: float = 2.0):
        self.topic = topic
        self.book = CaseBook()
        self._bootstrap, self._client_id = bootstrap_servers, client_id
        self._timeout_ms, self._interval, self._step_seconds = request_timeout_ms, interval, step_seconds
        self._deserialize = AvroDeserializer(registry)
        self._ctx = SerializationContext(topic)
        self._lock = threading.Lock()  # guards book, _up, _ready, _lag, _errors against scrapes
        self._up = self._ready = False
        self._lag: int | None = None
        self._errors: Counter = Counter()
        self._positions: dict[TopicPartition, int] = {}  # next offset to apply, per partition
        self._admin: KafkaAdminClient | None = None
        self._consumer: KafkaConsumer | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gplx-cases-reader", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = 3.0) -> None:
        self._stop.set()
        self._thread.join(timeout=wait)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                more = self.step()
            except Exception as exc:  # noqa: BLE001 - never die: count, say so, rebuild, retry
                self._failed(exc)
                self._stop.wait(self._interval)
                continue
            if not more:
                self._stop.wait(self._interval)  # pacing once caught up
        self._close()

    def _failed(self, exc: Exception) -> None:
        reason = ("missing-topic" if isinstance(exc, TopicMissing)
                  else "registry" if isinstance(exc, RegistryError) else "kafka")
        with self._lock:
            was_up = self._up
            self._up = False
            self._errors[reason] += 1
        (log.warning if was_up or self._errors[reason] == 1 else log.debug)(
            "cases reader: %s: %s: %s", reason, type(exc).__name__, exc)
        if reason != "missing-topic":  # a client that lost its broker is not worth nursing back
            self._close()

    # -- one step: read what is there, within a time budget ----------------------------------------------------
    def step(self) -> bool:
        """Read up to the end offsets as they are now (at most `step_seconds`); True if more is waiting."""
        admin = self._admin_client()
        if self.topic not in set(admin.list_topics()):
            raise TopicMissing(f"topic {self.topic} does not exist")
        tps = sorted(TopicPartition(self.topic, p["partition_index"])
                     for t in admin.describe_topics([self.topic]) for p in t["partitions"])
        ends = {tp: o.offset for tp, o in admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps}).items()}
        consumer = self._consumer_for(tps)
        deadline = time.monotonic() + self._step_seconds
        while self._behind(ends) and time.monotonic() < deadline and not self._stop.is_set():
            batch = consumer.poll(timeout_ms=200)
            with self._lock:
                for tp, records in batch.items():
                    for rec in records:
                        self._apply(rec.value)
                        self._positions[tp] = rec.offset + 1
            for tp in batch:  # past transaction markers and compacted gaps too
                self._positions[tp] = max(self._positions[tp], consumer.position(tp, timeout_ms=1000) or 0)
        lag = self._behind(ends)
        with self._lock:
            self._up, self._lag = True, lag
            if lag == 0 and not self._ready:
                self._ready = True
                log.info("cases reader caught up on %s: %d cases", self.topic, len(self.book))
        return lag > 0

    def _apply(self, value: bytes | None) -> None:
        if value is None:
            self.book.apply("", {})  # a tombstone: no case event
            return
        try:
            name, record = self._deserialize.decode(value, self._ctx)
        except DeserializationError as exc:
            log.debug("cases reader: undecodable record: %s", exc)
            self.book.undecodable()
            return
        self.book.apply(name, record)  # RegistryError propagates: read it again once the registry is back

    def _behind(self, ends: dict[TopicPartition, int]) -> int:
        return sum(lag_messages(end, self._positions.get(tp, 0)) for tp, end in ends.items())

    # -- clients -----------------------------------------------------------------------------------------------
    def _admin_client(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(
                **Connection.of(self._bootstrap).kafka_python_kwargs(), client_id=self._client_id,
                request_timeout_ms=self._timeout_ms, bootstrap_timeout_ms=self._timeout_ms,
                reconnect_backoff_max_ms=1000)
        return self._admin

    def _consumer_for(self, tps: list[TopicPartition]) -> KafkaConsumer:
        if self._consumer is None or set(self._consumer.assignment()) != set(tps):
            if self._consumer is None:
                self._consumer = KafkaConsumer(
                    **Connection.of(self._bootstrap).kafka_python_kwargs(), client_id=self._client_id, group_id=None,
                    enable_auto_commit=False, auto_offset_reset="earliest",
                    request_timeout_ms=self._timeout_ms + 1000, bootstrap_timeout_ms=self._timeout_ms,
                    reconnect_backoff_max_ms=1000, fetch_max_wait_ms=100)
            self._consumer.assign(tps)
            fresh = [tp for tp in tps if tp not in self._positions]
            if fresh:
                self._consumer.seek_to_beginning(*fresh)
            for tp in tps:
                if tp in self._positions:  # resume where we were before a reconnect
                    self._consumer.seek(tp, self._positions[tp])
        return self._consumer

    def _close(self) -> None:
        for client in (self._admin, self._consumer):
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - closing a client whose broker is gone may raise
                    log.debug("error closing kafka client", exc_info=True)
        self._admin = self._consumer = None

    # -- metrics -----------------------------------------------------------------------------------------------
    def collect(self):
        with self._lock:
            up, ready, lag, errors = self._up, self._ready, self._lag, Counter(self._errors)
            totals = self.book.snapshot() if up and ready else None
        yield GaugeMetricFamily("gplx_cases_reader_up", "1 if the last read of cases.events succeeded.",
                                value=float(up))
        yield GaugeMetricFamily("gplx_cases_reader_ready", "1 once cases.events was read to its end since start.",
                                value=float(ready))
        err = CounterMetricFamily("gplx_cases_reader_errors", "Failed reads of cases.events, by reason.",
                                  labels=["reason"])
        for reason in ERROR_REASONS:
            err.add_metric([reason], float(errors[reason]))
        yield err
        if totals is not None:
            yield from book_metrics(totals, lag)
