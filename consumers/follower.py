"""Follow a topic from its beginning in a background thread: a small, faust-free reader for state derived from Kafka
(the clinic keys, the clinic gateway's certificate index).

Why not a consumer group: every reader needs the whole topic (each process keeps its own copy of the state), and
nothing is committed, so a restart simply reads again from the beginning. `catch_up(timeout)` is what makes the
state trustworthy: it returns once everything that was on the topic *when it was called* has been applied, so a
caller that catches up before answering has seen every record acknowledged before its question.

`wait_complete_as_of(t)` is the cheaper promise a stream processor needs: it returns once every record appended
to the topic before the time `t` has been applied (known from the high-water marks that come with every fetch, no
extra request), so a decision about a record that reached another topic at `t` sees the same state on a replay.
That takes one to two rounds of the follower's fetch wait after `t`; a caller that cannot wait so long asks the
broker for the topic's end offsets itself and hands them to `confirm_as_of` (one request, and no wait when the
follower has read that far already: a topic that rarely changes).

kafka-python's consumer is not thread-safe: only the follower's own thread touches it; `catch_up` asks that thread
for the end offsets and waits for it to get there.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from consumers.backoff import Backoff
from schemas.errors import GplxError, RegistryUnavailable
from schemas.serde import AvroDeserializer, SchemaRegistry, SerializationContext
from topology.connection import Connection
from topology.kafka_python import new_client

log = logging.getLogger(__name__)


class FollowerError(GplxError):
    """The topic could not be read (missing, broker unreachable) within the time allowed."""


#: Between attempts to reach the topic at the start (1 s .. 10 s): the rounds' own retry waits 1 s.
_CONNECT_BACKOFF = Backoff(base_s=1.0, max_s=10.0, jitter=0.2)


def _retriable(exc: BaseException) -> bool:
    """A broker away or moving (kafka-python's retriable errors: connection, timeout, no leader yet; and sockets),
    as opposed to an answer that will not change (a non-retriable broker error, or any other exception: a bad
    setting, a bug). kafka-python 3.0 reports a login or TLS handshake the broker refuses at bootstrap as a timeout
    too, so that one is waited for like an outage: the callers' limits end the wait ("is Kafka up?")."""
    return isinstance(exc, OSError) or bool(getattr(exc, "retriable", False))


class TopicFollower:
    """Hands every decoded record of `topic`, in offset order per partition, to `apply(record, event)`."""

    def __init__(self, connection: Connection, registry: SchemaRegistry, topic: str,
                 apply: Callable[[object, object], None], *, name: str) -> None:
        self._connection = connection
        self._topic = topic
        self._apply = apply
        self._decode = AvroDeserializer(registry)
        self._cond = threading.Condition()
        self._asked = 0  # catch-up requests made
        self._served = 0  # requests whose end offsets were reached
        self._error: str | None = None
        self._stop = threading.Event()
        self._complete_as_of = 0.0  # wall time (s): every record appended before it has been applied
        self._read_to: dict[int, int] = {}  # partition -> the offset up to which its records have been applied
        self._target: dict | None = None  # end offsets a catch-up waits for
        self._target_for = 0  # the catch-up request they answer
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.applied = 0

    def start(self) -> "TopicFollower":
        self._thread.start()
        return self

    def catch_up(self, timeout_s: float = 30.0) -> None:
        """Wait until every record on the topic now has been applied; FollowerError if not within the timeout."""
        with self._cond:
            self._asked += 1
            wanted = self._asked
            done = self._cond.wait_for(lambda: self._served >= wanted or self._error is not None, timeout_s)
            if self._error is not None:
                raise FollowerError(self._error)
            if not done:
                raise FollowerError(f"{self._topic}: not read to its end within {timeout_s:g}s; is Kafka up?")

    def wait_complete_as_of(self, moment: float, timeout_s: float = 30.0) -> None:
        """Wait until every record appended before `moment` (Unix seconds) has been applied."""
        with self._cond:
            done = self._cond.wait_for(lambda: self._complete_as_of >= moment or self._error is not None,
                                       timeout_s)
            if self._error is not None:
                raise FollowerError(self._error)
            if not done:
                raise FollowerError(f"{self._topic}: not read up to the time asked within {timeout_s:g}s; is Kafka up?")

    def complete_as_of(self, moment: float) -> bool:
        """True if every record appended before `moment` has been applied already: `wait_complete_as_of` would
        return at once (a caller on an event loop then needs no thread to wait in)."""
        return self._complete_as_of >= moment and self._error is None

    def confirm_as_of(self, moment: float, ends: dict[int, int]) -> bool:
        """`ends`: the topic's end offsets (partition -> offset) as the broker gave them in answer to a request sent
        at `moment` (Unix seconds) or later. True, and complete as of `moment` from now on, if every partition has
        been applied up to its end: every record appended before `moment` was below those ends."""
        with self._cond:
            if self._error is not None or not ends:
                return False
            if any(self._read_to.get(partition, -1) < end for partition, end in ends.items()):
                return False
            if moment > self._complete_as_of:
                self._complete_as_of = moment
                self._cond.notify_all()
            return True

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        from kafka.errors import KafkaError

        connected = self._connect()
        if connected is None:
            return
        consumer, tps = connected
        previous_poll = time.time()
        try:
            while not self._stop.is_set():
                poll_started = time.time()
                try:
                    self._round(consumer, tps, previous_poll)
                except KafkaError as exc:  # the broker away: keep the state, try again (callers time out meanwhile)
                    log.warning("%s: cannot read (%s); retrying", self._topic, type(exc).__name__)
                    self._stop.wait(1.0)
                    continue
                previous_poll = poll_started
        finally:
            consumer.close()

    def _connect(self):
        """(consumer, partitions), assigned from the beginning of the topic; None if closed meanwhile, or if the
        topic cannot be read for good (`_error` then says why: missing or not visible to this login, or an error
        that will not change). A broker that does not answer is waited for, as the rounds wait for one: a failover
        at the first certificate (the case processor starts its follower then) must not fail every later check.
        Callers time out meanwhile ("is Kafka up?"). Each attempt's bootstrap is short (5 s, not kafka-python's
        30 s), so a broker that is back is read within seconds, inside the callers' 30 s."""
        from kafka import KafkaConsumer
        from kafka.structs import TopicPartition

        attempt = 0
        while not self._stop.is_set():
            consumer = None
            try:
                consumer = new_client(KafkaConsumer, **self._connection.kafka_python_kwargs(), group_id=None,
                                      enable_auto_commit=False, client_id=self._thread.name,
                                      bootstrap_timeout_ms=5000, reconnect_backoff_max_ms=1000,
                                      fetch_max_wait_ms=50)  # an idle topic still says how far it goes, often
                partitions = consumer.partitions_for_topic(self._topic)
            except Exception as exc:  # noqa: BLE001 - anything but an outage is final, and named to the callers
                if consumer is not None:
                    consumer.close()
                if not _retriable(exc):
                    return self._fail(f"cannot read {self._topic}: {type(exc).__name__}")
                attempt += 1
                log.warning("%s: cannot reach it (%s, attempt %d); retrying", self._topic, type(exc).__name__,
                            attempt)
                self._stop.wait(_CONNECT_BACKOFF.delay(attempt))
                continue
            if not partitions:
                consumer.close()
                return self._fail(f"topic {self._topic} does not exist or this login may not see it (gplx-bus "
                                  f"topics apply, gplx-bus acls apply)")
            tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            return consumer, tps
        return None

    def _fail(self, why: str) -> None:
        with self._cond:
            self._error = why
            self._cond.notify_all()
        return None

    def _round(self, consumer, tps, previous_poll: float) -> None:
        """One poll: apply what came, serve catch-ups whose end offsets were reached, move `complete_as_of`."""
        with self._cond:
            asked = self._asked
        if self._target is None and asked > self._served:
            self._target, self._target_for = consumer.end_offsets(tps), asked
        for records in consumer.poll(timeout_ms=100).values():
            for record in records:
                self._take(record)
        read_to = {tp.partition: consumer.position(tp) for tp in tps}  # everything below is applied
        with self._cond:
            self._read_to = read_to
        if self._target is not None and all(consumer.position(tp) >= end for tp, end in self._target.items()):
            with self._cond:
                self._served = self._target_for
                self._cond.notify_all()
            self._target = None
        # At the high-water marks: everything appended before the previous poll began is applied (the marks came
        # with a fetch sent during or after it; the previous one, to allow for prefetching).
        marks = [consumer.highwater(tp) for tp in tps]
        if all(m is not None and consumer.position(tp) >= m for tp, m in zip(tps, marks)):
            with self._cond:
                self._complete_as_of = previous_poll
                self._cond.notify_all()

    def _take(self, record) -> None:
        if record.value is None:  # a tombstone: nothing to apply
            return
        while True:
            try:
                event = self._decode(record.value, SerializationContext(self._topic))
                break
            except RegistryUnavailable:  # transient: wait for it rather than skip the record
                log.warning("%s: schema registry unavailable; retrying", self._topic)
                if self._stop.wait(1.0):
                    return
            except GplxError as exc:  # positions only: the record may hold personal data
                log.warning("%s[%s]@%s skipped: %s", self._topic, record.partition, record.offset,
                            getattr(exc, "code", type(exc).__name__))
                return
        self._apply(record, event)
        self.applied += 1
