"""The faust app of the case processor: the whole topology at a glance.

    inputs (co-partitioned, keyed by cccd)          table "citizens" (cccd -> citizen state, RocksDB + changelog)
      portal.applications    ─┐                                 │
      health.exam-results    ─┤                                 ▼
      payment.transactions   ─┼──> agent `assemble` ──> assembler.handle() ──> cases.events, cases.province.<code>,
      identity.results       ─┤    (concurrency 1,                              identity.requests, police.requests,
      police.licence-status  ─┤     in batches)                                 issuance.requests,
      cases.clock            ─┤ <── timer `clock` (ticks for cases past a deadline)  payment.refund-requests
                              │     reads table "deadlines" (partition/hour -> cases due, changelog; deadlines.py)
      cases.rerouted         ─┘ <── inputs found on another partition than murmur2(cccd)'s, forwarded there
                                    undecodable / invalid / failing input ──> dlq (reason + original bytes)

Processing guarantee: at-least-once, concurrency 1 per agent (faust #606: with concurrency > 1 an agent can
commit past an unprocessed message; its exactly-once mode has open bugs #323, #517). Outputs carry ids derived
from the case, and an input replayed after a crash re-sends exactly the outputs it produced, so downstream sees
at most a re-delivery of the same id, never a second approval or refund (see `assembler`). Batches keep this: faust
acks a batch's inputs only after the agent has handed all their outputs and table writes to the producer
(see `assemble`).

No record skipped: faust 0.15.3 can drop records it fetched around a rebalance and commit past them. The agent
checks each input partition's offsets and reads what never reached it from the log itself (see `offsets`).

Wrong partition: co-partitioning holds only if producers partition by Kafka's murmur2 of the cccd (librdkafka's
default is CRC32). A record elsewhere would meet the wrong shard of the table, so it is not applied where it
arrived: it is forwarded unchanged to `cases.rerouted` on its citizen's partition and applied when read from
there (see `forward`).
"""
from __future__ import annotations

import asyncio
import faulthandler
import logging
import signal
import sys
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Awaitable, Callable, Mapping

import faust
from aiokafka.errors import IllegalStateError
from faust import streams as faust_streams

from consumers.clinic_keys import ClinicKeys
from schemas import deadletter, models
from schemas.errors import DeserializationError, DlqCode, TransientError
from schemas.privacy import failure_summary
from schemas.registry import RegistryClient
from schemas.serde import AvroDeserializer, AvroSerializer, SerializationContext
from topology import catalogue as topics
from topology import contracts
from topology.catalogue import Catalogue
from topology.processor import assembler, citizen, deadlines, store
from topology.processor.offsets import LogReader, OffsetGuard
from topology.processor.outputs import SOURCE, Output, output_id
from topology.processor.settings import ProcessorSettings
from topology.rules import load_rule_set

log = logging.getLogger("gplx.processor")

INPUTS = (topics.PORTAL_APPLICATIONS, topics.HEALTH_EXAM_RESULTS, topics.PAYMENT_TRANSACTIONS,
          topics.IDENTITY_RESULTS, topics.POLICE_LICENCE_STATUS, topics.CASES_CLOCK, topics.CASES_REROUTED)
#: How long the agent waits to fill a batch (settings.batch_size inputs; see `assemble`): the latency a batch adds
#: when inputs trickle in.
BATCH_WITHIN = 0.01  # seconds
#: How long the agent waits for the end offsets of clinics.keys before it waits for the keys' follower instead.
CONFIRM_TIMEOUT_S = 2.0
#: After the broker did not answer that request, how long the agent goes straight to the follower's wait: during a
#: failover each certificate would otherwise pay CONFIRM_TIMEOUT_S first.
CONFIRM_HOLD_OFF_S = 10.0
#: How often idle input partitions are checked for records that never reached the agent (offsets.py).
IDLE_CHECK_SECONDS = 5.0
#: Header the processor adds to a forwarded record: where it arrived, `<topic>/<partition>/<offset>`.
REROUTED_FROM = "gplx-rerouted-from"


class KeysConfirmer:
    """Make the clinic keys complete as of now if their follower has read `clinics.keys` to its end offsets, asked
    of the broker now (one request).

    Why: a live certificate arrived after the follower's last round, and waiting for its next rounds (one to two of
    its 50 ms fetch wait, in a thread, the agent stopped meanwhile) made up most of last-fact-to-decision latency;
    the keys topic rarely changes, so its follower is nearly always at the end already. Else, or if the broker does
    not answer, the agent waits for the follower in a thread as before. After an unanswered request it goes straight
    to that wait for `hold_off_s`: during a failover every certificate would otherwise pay `timeout_s` first."""

    def __init__(self, read_ends: Callable[[], Awaitable[dict[int, int]]], keys, *, what: str,
                 timeout_s: float = CONFIRM_TIMEOUT_S, hold_off_s: float = CONFIRM_HOLD_OFF_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read_ends, self._keys, self._what = read_ends, keys, what
        self._timeout_s, self._hold_off_s, self._clock = timeout_s, hold_off_s, clock
        self._failed_at: float | None = None

    async def __call__(self) -> None:
        if self._failed_at is not None and self._clock() - self._failed_at < self._hold_off_s:
            return
        asked_at = time.time()
        try:
            ends = await asyncio.wait_for(self._read_ends(), self._timeout_s)
        except Exception as exc:  # noqa: BLE001 - the thread's wait is the fallback, and it reports a broker down
            self._failed_at = self._clock()
            log.info("end offsets of %s not read (%s); waiting for its follower for %.0f s", self._what,
                     failure_summary(exc), self._hold_off_s)
            return
        self._failed_at = None
        self._keys.confirm_as_of(asked_at, ends)


def create_app(settings: ProcessorSettings) -> faust.App:
    catalogue = Catalogue.build(prefix=settings.prefix, input_partitions=settings.input_partitions)
    store.set_memory_budget(settings.rocksdb_memory_mb)
    rules = load_rule_set()
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap_servers}",
        broker_credentials=settings.connection.faust_broker_credentials(),
        store=store.url_for(settings.store),  # rocksdb:// -> the worker-wide memory budget (see store.py)
        datadir=str(settings.datadir),
        topic_partitions=settings.input_partitions,
        topic_replication_factor=catalogue.topic(topics.CASES_EVENTS).replication_factor,
        processing_guarantee="at_least_once",
        key_serializer="raw",
        value_serializer="raw",
        table_value_serializer="json",  # the citizen state (see citizen.py)
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=0.02,  # batches outputs and changelog writes: 5 ms gave ~1,500 events/s, 20 ms ~2,000
        web_enabled=False,
        table_standby_replicas=0,
        topic_allow_declare=False,  # `topics apply` creates every topic, the internal ones too (Catalogue.internal)
        topic_disable_leader=True,  # nothing runs on the leader only: no leader topic to declare
    )
    registry = RegistryClient(settings.registry_url, auth=settings.connection.registry_auth)
    serialize = AvroSerializer(registry, auto_register=False)  # the operator registers (topology.contracts)
    contracts.check_registered(registry, catalogue, writer=topics.CASE_PROCESSOR, outage_ok=True)
    clinic_keys = ClinicKeys(settings.connection, catalogue, registry)  # started at the first certificate
    deserialize = AvroDeserializer(registry)
    base_of = {catalogue.name(base): base for base in INPUTS}
    inputs = app.topic(*base_of, key_serializer="raw", value_serializer="raw")
    citizens = app.Table(topics.CITIZENS_TABLE, default=None, partitions=settings.input_partitions,
                         key_type=bytes,  # bytes keys are stored raw: the cccd, as on the input topics
                         value_type=bytes)  # raw too: JSON the agent encodes once (citizen.encode)
    due_index = app.Table(topics.DEADLINES_TABLE, default=None, partitions=settings.input_partitions,
                          key_type=bytes)  # <partition>/<hour> -> {cccd: deadline}: see deadlines.py

    async def produce(topic: str, key: bytes | None, value: bytes, partition: int | None = None,
                      headers: list | None = None) -> None:
        """Straight to faust's producer: its Topic.send wraps every record in futures and callbacks (~6% CPU by
        py-spy). At-least-once holds: faust flushes this producer before each offset commit, and a record that
        cannot be delivered crashes the worker, so its input is processed again after the restart."""
        delivery = await app.producer.send(topic, key, value, partition=partition, timestamp=None, headers=headers)
        delivery.add_done_callback(lambda fut: _crash_on_failure(app, topic, fut))

    async def send(output: Output) -> None:
        names = [catalogue.province_topic(output.event.province) if base == "province" else catalogue.name(base)
                 for base in output.topics]
        values = await registry_call(serialize.serialize_for_topics, output.event,
                                     [SerializationContext(name) for name in names])
        key = output.key.encode()
        for name, value in zip(names, values):
            await produce(name, key, value)

    async def dead_letter(message, code: DlqCode, text: str) -> None:
        dlq = catalogue.name(topics.DLQ)
        # A forwarded record is dead-lettered under the place it arrived at (the record an operator can find at
        # its source); a replayed forward then gives the same letter id.
        topic, partition, offset = position = _first_position(message, rerouted_topic)
        letter = deadletter.dead_letter(message, code=code, text=text, source=SOURCE, position=position,
                                        event_id=output_id(f"{topic}/{partition}/{offset}", "dead-letter"))
        value = await registry_call(serialize, letter, SerializationContext(dlq))
        await produce(dlq, message.key, value)
        log.warning("dead-lettered %s[%s]@%s: %s", topic, partition, offset, code)

    log_reader = LogReader(settings.connection.aiokafka_kwargs())
    app.on_before_shutdown.connect(lambda sender, **_: log_reader.stop())

    async def fetch(tp, start: int, end: int) -> list:
        """Records faust's consumer skipped, as the faust messages it would have delivered (generation included)."""
        return [app.consumer._to_message(tp, record) for record in await log_reader.fetch(tp, start, end)]

    async def seek(tp, offset: int) -> None:
        try:
            await app.consumer.seek(tp, offset)
        except IllegalStateError:  # revoked meanwhile: its next owner starts from the committed offset
            log.info("%s[%s] was revoked before the seek back to %s", tp.topic, tp.partition, offset)

    # faust keeps the committed offsets it sought to in `_committed_offset` (no public accessor in 0.15.3).
    guard = OffsetGuard(committed=lambda tp: app.consumer._committed_offset.get(tp), fetch=fetch,
                        passed=lambda tp, first, last: app.consumer._add_gap(tp, first, last))

    rerouted_topic = catalogue.name(topics.CASES_REROUTED)
    partitions = catalogue.group(topics.CASE_INPUTS_GROUP).partitions
    forwarded: Counter[str] = Counter()  # input topic -> records forwarded from it (since this worker started)

    async def forward(message, partition: int) -> None:
        """Send a record that arrived on the wrong partition to its citizen's partition of `cases.rerouted`
        (same key, value bytes and headers, plus where it arrived), instead of applying it here.

        Why not apply it here: this partition's shard of the table does not hold the citizen, so a certificate
        applied here would never meet its case. Why a topic of its own rather than the right partition of the same
        topic: only the source may write its topic (ACLs), and the replay guard compares offsets per topic; on
        `cases.rerouted` every forwarded record of one citizen has its own increasing offsets on one partition.
        At-least-once: the forward is flushed before this input's offset is committed (as every output); after a
        crash the input may be forwarded twice, and the second copy is a duplicate the assembler ignores."""
        headers = [*(h for h in _header_pairs(message.headers) if h[0] != REROUTED_FROM),
                   (REROUTED_FROM, f"{message.topic}/{message.partition}/{message.offset}".encode())]
        await produce(rerouted_topic, message.key, message.value, partition=partition, headers=headers)
        forwarded[message.topic] += 1
        # Topic and positions only: the key is a CCCD.
        log.warning("forwarded %s[%s]@%s to %s[%s]: its producer does not partition by murmur2 of the key "
                    "(librdkafka: partitioner=murmur2_random); %d forwarded from this topic so far",
                    message.topic, message.partition, message.offset, rerouted_topic, partition,
                    forwarded[message.topic])

    async def registry_call(serde, *args):
        """Run a (de)serializer; a registry outage is waited out (it is transient), never dead-lettered.
        Only the first use of each schema id or subject reaches the registry: the serde caches them."""
        delay = 0.5
        while True:
            try:
                return serde(*args)
            except TransientError as exc:  # the registry is away: wait for it
                log.warning("schema registry unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    clinics_keys_topic = catalogue.name(topics.CLINICS_KEYS)
    confirm_clinic_keys = KeysConfirmer(lambda: log_reader.end_offsets(clinics_keys_topic), clinic_keys,
                                        what=clinics_keys_topic)

    def stored(key: bytes) -> bytes | None:
        """The citizen's value in the table, from its store in one read: the table's own `get` asks the store
        whether it holds the key, then reads it (two RocksDB reads per input)."""
        return citizens.data.get(key)

    async def apply(message, states: dict, batch: "_Batch") -> bool:
        """One input: checks, then `assembler.handle` on the citizen's state as this batch left it (`states`);
        True when the input changed `states` (False: dead-lettered or forwarded)."""
        topic = base_of[message.topic]
        try:
            item = await registry_call(deserialize, message.value, SerializationContext(message.topic))
            if message.key is None or item.cccd.encode() != message.key:
                raise _KeyMismatch(f"record key does not equal the event's cccd on {message.topic}")
            arrival = _arrival_time(message) or item.occurred_at
            assembler.refuse_signed_in_future(item, arrival, rules)
            if isinstance(item, models.HealthCertificate):
                if clinic_keys.started and not clinic_keys.ready_as_of(arrival):
                    await confirm_clinic_keys()  # one request instead of the follower's next rounds
                if clinic_keys.ready_as_of(arrival):  # the keys are read up to its arrival: a check, no wait
                    clinic_keys.refuse_unverified(item, arrival)
                else:  # in a thread: starts the follower, or waits for it to read clinics.keys (blocking)
                    await asyncio.to_thread(clinic_keys.refuse_unverified, item, arrival)
        except DeserializationError as exc:
            await dead_letter(message, exc.code, str(exc))
            return False
        except _KeyMismatch as exc:
            await dead_letter(message, DlqCode.PROCESSING_FAILED, str(exc))
            return False
        if topic != topics.CASES_REROUTED:  # what is on cases.rerouted is where we put it
            partition = topics.expected_partition(message.key, partitions)
            if message.partition != partition:
                await forward(message, partition)
                return False
        if message.key in states:
            state = states[message.key]
        else:
            state = citizen.decode(stored(message.key))  # the table holds JSON (see citizen.py)
            batch.deadline_before[message.key] = citizen.deadline(state)  # what the index holds for it now
        try:
            step = assembler.handle(state, item, topic, message.offset, rules)
        except Exception as exc:  # noqa: BLE001 - a bug on one input must not stop every case behind it
            # Not log.exception: the message may quote the input (personal data); it goes to the DLQ.
            log.error("processing failed at %s[%s]@%s: %s", message.topic, message.partition, message.offset,
                      failure_summary(exc))
            if message.key in states:  # handle() may have changed the state half-way: as the inputs before left it
                states[message.key] = batch.rebuild(message.key, stored(message.key), rules)
            await dead_letter(message, DlqCode.PROCESSING_FAILED, f"{type(exc).__name__}: {exc}")
            return False
        for output in step.outputs:
            await send(output)
        states[message.key] = step.state
        batch.applied.setdefault(message.key, []).append((item, topic, message.offset))
        if topic == topics.CASES_CLOCK:
            batch.ticked_at[message.key] = item.occurred_at
        log.debug("%s %s[%s]@%s -> %s", step.note, topic, message.partition, message.offset,
                  [o.kind for o in step.outputs])
        return True

    @app.agent(inputs, concurrency=1)
    async def assemble(stream):
        """Inputs in batches of up to settings.batch_size (or what came within BATCH_WITHIN seconds): each applied
        in order, then one table write per citizen touched (one changelog record instead of one per input).
        faust acks a batch's events only once this loop body is done with them, so an offset is committed only
        after the outputs and the table writes of every input before it were handed to the producer (which faust
        flushes before committing): at-least-once, as with one event at a time. The deadline index is written with
        the citizen, from the deadline the batch found to the one it leaves (deadlines.py)."""
        try:
            async for events in stream.take_events(settings.batch_size, within=BATCH_WITHIN):
                with guard.applying():  # busy, however long: the idle check leaves the queue alone
                    await apply_batch(events)
        except Exception as exc:
            # Not an input's failure (those are dead-lettered in apply): a table or changelog write failed. faust
            # would restart the agent without this batch, its offsets never acked and its partitions held by a
            # worker that no longer processes them. Stop the worker instead: its partitions go to another worker
            # (or to this one restarted), which reads them again from the last commit.
            log.error("the case agent failed: %s; stopping the worker", failure_summary(exc))
            await app.crash(exc)
            raise

    async def apply_batch(events) -> None:
        states: dict[bytes, object] = {}  # cccd -> its state after this batch's inputs so far
        batch = _Batch()
        last: dict[bytes, object] = {}  # cccd -> the batch's last event applied to it
        # The table reads and writes the store (and changelog) partition of the current event, which
        # take_events leaves unset in the agent's task: it is set here to the input being applied, and for a
        # write to the citizen's last input (else a read probes every partition's store, a write fails).
        for event in events:
            _make_current(event)  # the table partition of the records missed too: the same partition
            for message in [*await guard.missing_before(event.message), event.message]:  # see offsets.py
                if await apply(message, states, batch):
                    last[message.key] = event
        moves, of_partition = [], {}  # deadline moves; an event of each partition (the index's writes)
        for key, state in states.items():
            _make_current(last[key])
            citizens[key] = citizen.encode(state)  # assigned back, so the changelog sees the change
            partition = last[key].message.partition
            moves.append((partition, key.decode(), batch.deadline_before[key], citizen.deadline(state)))
            of_partition[partition] = last[key]
        deadlines.place_all(due_index, moves, select=lambda partition: _make_current(of_partition[partition]))
        for partition, cccd, _, after in moves:
            if cccd.encode() in batch.ticked_at:
                _make_current(of_partition[partition])
                deadlines.drop_stale(due_index, partition, cccd, batch.ticked_at[cccd.encode()], after)
        _make_current(None)

    @app.task
    async def stack_dumps():
        """`kill -USR1 <worker pid>`: every thread's and asyncio task's stack into the log (where a stuck worker
        waits)."""
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _dump_stacks)

    @app.timer(interval=IDLE_CHECK_SECONDS)
    async def offsets_check():
        """Idle input partitions whose records never reached the agent (offsets.py, `check_idle`)."""
        generation = app.consumer_generation_id
        if app.rebalancing or not app.consumer.flow_active:  # offsets are being sought and recovered now
            return
        mine = [tp for tp in app.consumer.assignment() if tp.topic in base_of]
        try:
            await guard.check_idle(mine, generation=generation, highwater=app.consumer.highwater, seek=seek)
        except Exception as exc:  # e.g. a broker down: the next check tries again; the inputs stay uncommitted
            log.warning("checking idle partitions failed: %s", failure_summary(exc))

    @app.timer(interval=settings.tick_seconds)
    async def clock():
        """Tick every open case whose notice or decision deadline has passed (the agent re-evaluates it), as the
        deadline index of this worker's partitions lists them."""
        now = datetime.now(timezone.utc)
        clock_topic = catalogue.name(topics.CASES_CLOCK)
        mine = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == due_index.changelog_topic_name}
        for cccd in list(deadlines.due(due_index, now, mine)):
            value = await registry_call(serialize, assembler.tick(cccd, now), SerializationContext(clock_topic))
            await produce(clock_topic, cccd.encode(), value)

    app.gplx = {"catalogue": catalogue, "citizens": citizens, "deadlines": due_index,  # for tests and tools
                "assemble": assemble,
                "forwarded": forwarded}
    return app


class _KeyMismatch(Exception):
    pass


@dataclass
class _Batch:
    """What a batch remembers per citizen besides its state, for the deadline index written at its end."""

    deadline_before: dict = field(default_factory=dict)  # cccd -> the deadline the index held at the batch's start
    ticked_at: dict = field(default_factory=dict)  # cccd -> the latest ClockTick applied in the batch
    applied: dict = field(default_factory=dict)  # cccd -> [(event, topic, offset)] applied to it in the batch

    def rebuild(self, key: bytes, stored: bytes | None, rules) -> object:
        """The citizen's state as the inputs applied in this batch left it, from its state in the table: after an
        input failed half-way through `assembler.handle`, which changes the state it is given. Why not a copy
        before each input: a deep copy per input cost more than the table read; a failure is rare, and `handle`
        is a pure function, so applying the same inputs again gives the same state."""
        state = citizen.decode(stored)
        for item, topic, offset in self.applied.get(key, ()):
            state = assembler.handle(state, item, topic, offset, rules).state
        return state


def _dump_stacks() -> None:
    out = sys.__stderr__  # the process's own stderr (the log file): faust replaces sys.stderr with a logging proxy
    faulthandler.dump_traceback(file=out, all_threads=True)
    for task in asyncio.all_tasks():
        task.print_stack(limit=12, file=out)
    out.flush()


def _make_current(event) -> None:
    """faust's current event (a context variable, so this agent's task only), as its streams set it per event.
    Not Stream._set_current_event: that also sets the stream's attribute, which take_events' background reader
    uses to collect the batch's events, and which this task must not change under it."""
    faust_streams._current_event.set(weakref.ref(event) if event is not None else None)


def _header_pairs(headers) -> list[tuple[str, bytes]]:
    """A record's headers as (name, value) pairs (faust passes aiokafka's tuple, or a mapping)."""
    if not headers:
        return []
    return list(headers.items()) if isinstance(headers, Mapping) else [tuple(h) for h in headers]


def _first_position(message, rerouted_topic: str) -> tuple[str, int, int]:
    """(topic, partition, offset) where the record first arrived: a forwarded record's REROUTED_FROM header."""
    for name, value in _header_pairs(message.headers) if message.topic == rerouted_topic else ():
        if name == REROUTED_FROM:
            topic, partition, offset = value.decode().rsplit("/", 2)
            return topic, int(partition), int(offset)
    return message.topic, message.partition, message.offset


def _crash_on_failure(app: faust.App, topic: str, delivery: asyncio.Future) -> None:
    """A record the producer gave up on (after its retries) must not be committed past: stop the worker."""
    if not delivery.cancelled() and delivery.exception() is not None:
        log.error("could not deliver a record to %s: %r; stopping the worker", topic, delivery.exception())
        asyncio.ensure_future(app.crash(delivery.exception()))


def _arrival_time(message) -> datetime | None:
    """When a record reached the bus: its Kafka timestamp (stored with it, so a replay sees the same value);
    None for a record without one (timestamp -1, from a pre-0.10 producer)."""
    stamp = message.timestamp
    return datetime.fromtimestamp(stamp, timezone.utc) if stamp is not None and stamp > 0 else None
