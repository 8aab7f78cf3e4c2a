"""The exporter's small consumer of `cases.events`: feeds a `CaseBook` and serves its numbers as Prometheus metrics.

Why no consumer group (group_id=None, partitions assigned): nothing is committed, so the exporter moves nobody's
offsets, needs no group ACL, and no group of ours sits in the lag table at STOP whenever the exporter is down.

Where it starts: with a `state_file` (`lag serve --state-file`), from its last snapshot: the book (counters, open
and recently decided cases) and the next offset per partition, written atomically (0600) every `save_every_s`
and at stop. The start then reads only what came since, whatever the history: after a simulated year it is the
snapshot's size that counts, not the topic's. Without one (or when it is unreadable, or of another topic), from
the beginning of the audit stream as retained (730 days, `topology.catalogue.AUDIT_RETENTION`): the numbers
are a function of the retained stream, the same after every restart and on every replica, but the start
replays it all. Either way, until the reader reaches the end offsets the case series are absent rather than
climbing from zero; a restart whose snapshot is older than the retention starts the counters lower, which
`rate()` takes for one counter reset.

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

import gzip
import json
import logging
import os
import threading
import time
from collections import Counter
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, OffsetSpec, TopicPartition
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from consumers.lag.cases import CaseBook, book_metrics
from consumers.lag.model import lag_messages
from schemas.errors import DeserializationError, RegistryError
from schemas.privacy import open_private
from schemas.serde import AvroDeserializer, SchemaRegistry, SerializationContext
from topology.connection import Connection
from topology.kafka_python import new_client

log = logging.getLogger(__name__)

ERROR_REASONS = ("missing-topic", "kafka", "registry")


class TopicMissing(Exception):
    pass


class CaseSignals(Collector):
    """`start()` the reader thread, register as a prometheus collector, `stop()` at the end."""

    def __init__(self, bootstrap_servers: str | Connection, topic: str, registry: SchemaRegistry, *,
                 interval: float = 5.0, state_file: Path | None = None, save_every_s: float = 60.0,
                 request_timeout_ms: int = 10_000, client_id: str = "gplx-lag-cases", step_seconds: float = 2.0):
        self.topic = topic
        self.book = CaseBook()
        self._state_file, self._save_every_s = state_file, save_every_s
        self._saved_at = time.monotonic()
        self._dirty = False
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
        self.load_state()
        while not self._stop.is_set():
            try:
                more = self.step()
            except Exception as exc:  # noqa: BLE001 - never die: count, say so, rebuild, retry
                self._failed(exc)
                self._stop.wait(self._interval)
                continue
            if time.monotonic() - self._saved_at >= self._save_every_s:
                self.save_state()
            if not more:
                self._stop.wait(self._interval)  # pacing once caught up
        self.save_state()
        self._close()

    # -- the snapshot file ---------------------------------------------------------------------------------------
    def load_state(self) -> bool:
        """Start from the snapshot file if there is a good one; True if it was used."""
        if self._state_file is None or not self._state_file.exists():
            return False
        try:
            with gzip.open(self._state_file, "rt", encoding="utf-8") as f:
                data = json.load(f)
            if data.get("topic") != self.topic:
                raise ValueError(f"it is of topic {data.get('topic')!r}")
            book = CaseBook.restore(data["book"])
            positions = {TopicPartition(self.topic, int(p)): int(o) for p, o in data["positions"].items()}
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
            log.warning("cases reader: ignoring the snapshot %s (%s); reading %s from its beginning",
                        self._state_file, type(exc).__name__ if not isinstance(exc, ValueError) else exc, self.topic)
            return False
        with self._lock:
            self.book, self._positions = book, positions
        log.info("cases reader: resumed from %s: %d cases held, at %d records read",
                 self._state_file, len(book), sum(book.totals.records.values()))
        return True

    def save_state(self) -> None:
        """Write the snapshot (book + positions) atomically: a crash leaves the previous one whole."""
        if self._state_file is None or not self._dirty:
            return
        with self._lock:
            data = {"topic": self.topic, "saved_at_ms": int(time.time() * 1000), "book": self.book.dump(),
                    "positions": {str(tp.partition): o for tp, o in sorted(self._positions.items())}}
            self._dirty = False
        tmp = self._state_file.with_name(self._state_file.name + ".tmp")
        try:
            self._state_file.parent.mkdir(parents=True, exist_ok=True)
            with open_private(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3) as f:
                f.write(json.dumps(data, separators=(",", ":")).encode())
            os.replace(tmp, self._state_file)
        except OSError as exc:
            log.warning("cases reader: cannot write the snapshot %s: %s", self._state_file, exc.strerror or exc)
            self._dirty = True
        self._saved_at = time.monotonic()

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
                        self._apply(rec.value, rec.timestamp)
                        self._positions[tp] = rec.offset + 1
                    self._dirty = self._dirty or bool(records)
            for tp in batch:  # past transaction markers and compacted gaps too
                self._positions[tp] = max(self._positions[tp], consumer.position(tp, timeout_ms=1000) or 0)
        lag = self._behind(ends)
        with self._lock:
            self._up, self._lag = True, lag
            if lag == 0 and not self._ready:
                self._ready = True
                log.info("cases reader caught up on %s: %d cases", self.topic, len(self.book))
        return lag > 0

    def _apply(self, value: bytes | None, timestamp_ms: int | None = None) -> None:
        if value is None:
            self.book.apply("", {})  # a tombstone: no case event
            return
        try:
            name, record = self._deserialize.decode(value, self._ctx)
        except DeserializationError as exc:
            log.debug("cases reader: undecodable record: %s", exc)
            self.book.undecodable()
            return
        self.book.apply(name, record, timestamp_ms)  # RegistryError propagates: read it again once the registry is back

    def _behind(self, ends: dict[TopicPartition, int]) -> int:
        return sum(lag_messages(end, self._positions.get(tp, 0)) for tp, end in ends.items())

    # -- clients -----------------------------------------------------------------------------------------------
    def _admin_client(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = new_client(
                KafkaAdminClient,
                **Connection.of(self._bootstrap).kafka_python_kwargs(), client_id=self._client_id,
                request_timeout_ms=self._timeout_ms, bootstrap_timeout_ms=self._timeout_ms,
                reconnect_backoff_max_ms=1000)
        return self._admin

    def _consumer_for(self, tps: list[TopicPartition]) -> KafkaConsumer:
        if self._consumer is None or set(self._consumer.assignment()) != set(tps):
            if self._consumer is None:
                self._consumer = new_client(
                    KafkaConsumer,
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
