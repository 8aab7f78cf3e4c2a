"""The faust app of the case processor: the whole topology at a glance.

    inputs (co-partitioned, keyed by cccd)          table "citizens" (cccd -> citizen state, RocksDB + changelog)
      portal.applications    ─┐                                 │
      health.exam-results    ─┤                                 ▼
      payment.transactions   ─┼──> agent `assemble` ──> assembler.handle() ──> cases.events, cases.province.<code>,
      identity.results       ─┤    (concurrency 1)                              identity.requests, police.requests,
      police.licence-status  ─┤                                                 issuance.requests,
      cases.clock            ─┘ <── timer `clock` (ticks for cases past a deadline)  payment.refund-requests
                                    undecodable / invalid / failing input ──> dlq (reason + original bytes)

Processing guarantee: at-least-once, concurrency 1 per agent (faust #606: with concurrency > 1 an agent can
commit past an unprocessed message; its exactly-once mode has open bugs #323, #517). Outputs carry ids derived
from the case, and an input replayed after a crash re-sends exactly the outputs it produced, so downstream sees
at most a re-delivery of the same id, never a second approval or refund (see `assembler`).
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

import faust

from schemas import models
from schemas.errors import DeserializationError, RegistryUnavailable
from schemas.registry import RegistryClient
from schemas.serde import AvroDeserializer, AvroSerializer, SerializationContext
from topology import catalogue as topics
from topology.catalogue import Catalogue
from topology.processor import assembler, store
from topology.processor.outputs import SOURCE, Output, output_id
from topology.processor.settings import ProcessorSettings
from topology.rules import load_rule_set

log = logging.getLogger("gplx.processor")

INPUTS = (topics.PORTAL_APPLICATIONS, topics.HEALTH_EXAM_RESULTS, topics.PAYMENT_TRANSACTIONS,
          topics.IDENTITY_RESULTS, topics.POLICE_LICENCE_STATUS, topics.CASES_CLOCK)


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
    )
    registry = RegistryClient(settings.registry_url, auth=settings.connection.registry_auth)
    serialize = AvroSerializer(registry)
    deserialize = AvroDeserializer(registry)
    base_of = {catalogue.name(base): base for base in INPUTS}
    inputs = app.topic(*base_of, key_serializer="raw", value_serializer="raw")
    citizens = app.Table("citizens", default=None, partitions=settings.input_partitions,
                         key_type=bytes)  # bytes keys are stored raw: the cccd, as on the input topics

    async def produce(topic: str, key: bytes | None, value: bytes) -> None:
        """Straight to faust's producer: its Topic.send wraps every record in futures and callbacks (~6% CPU by
        py-spy). At-least-once holds: faust flushes this producer before each offset commit, and a record that
        cannot be delivered crashes the worker, so its input is processed again after the restart."""
        delivery = await app.producer.send(topic, key, value, partition=None, timestamp=None, headers=None)
        delivery.add_done_callback(lambda fut: _crash_on_failure(app, topic, fut))

    async def send(output: Output) -> None:
        names = [catalogue.province_topic(output.event.province) if base == "province" else catalogue.name(base)
                 for base in output.topics]
        values = await registry_call(serialize.serialize_for_topics, output.event,
                                     [SerializationContext(name) for name in names])
        key = output.key.encode()
        for name, value in zip(names, values):
            await produce(name, key, value)

    async def dead_letter(message, code: str, text: str) -> None:
        dlq = catalogue.name(topics.DLQ)
        letter = models.DeadLetter(
            event_id=output_id(f"{message.topic}/{message.partition}/{message.offset}", "dead-letter"),
            occurred_at=datetime.now(timezone.utc), source=SOURCE, original_topic=message.topic,
            original_partition=message.partition, original_offset=message.offset, original_key=message.key,
            original_value=message.value or b"", error_code=code, error_text=text[:2000],
            first_seen_at=datetime.now(timezone.utc))
        value = await registry_call(serialize, letter, SerializationContext(dlq))
        await produce(dlq, message.key, value)
        log.warning("dead-lettered %s[%s]@%s: %s", message.topic, message.partition, message.offset, code)

    async def registry_call(serde, *args):
        """Run a (de)serializer; a registry outage is waited out (it is transient), never dead-lettered.
        Only the first use of each schema id or subject reaches the registry: the serde caches them."""
        delay = 0.5
        while True:
            try:
                return serde(*args)
            except RegistryUnavailable as exc:
                log.warning("schema registry unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    @app.agent(inputs, concurrency=1)
    async def assemble(stream):
        async for event in stream.events():
            message = event.message
            topic = base_of[message.topic]
            try:
                item = await registry_call(deserialize, message.value, SerializationContext(message.topic))
                if message.key is None or item.cccd.encode() != message.key:
                    raise _KeyMismatch(f"record key does not equal the event's cccd on {message.topic}")
            except DeserializationError as exc:
                await dead_letter(message, exc.code, str(exc))
                continue
            except _KeyMismatch as exc:
                await dead_letter(message, "PROCESSING_FAILED", str(exc))
                continue
            try:
                step = assembler.handle(citizens.get(message.key), item, topic, message.offset, rules)
            except Exception as exc:  # noqa: BLE001 - a bug on one input must not stop every case behind it
                log.exception("processing failed at %s[%s]@%s", message.topic, message.partition, message.offset)
                await dead_letter(message, "PROCESSING_FAILED", f"{type(exc).__name__}: {exc}")
                continue
            for output in step.outputs:
                await send(output)
            citizens[message.key] = step.state  # assigned back, so the changelog sees the change
            log.debug("%s %s[%s]@%s -> %s", step.note, topic, message.partition, message.offset,
                      [o.kind for o in step.outputs])

    @app.timer(interval=settings.tick_seconds)
    async def clock():
        """Tick every open case whose notice or decision deadline has passed (the agent re-evaluates it)."""
        now = datetime.now(timezone.utc)
        clock_topic = catalogue.name(topics.CASES_CLOCK)
        for key, state in list(citizens.items()):
            if state and _deadline_passed(state, now):
                cccd = key.decode()
                value = await registry_call(serialize, assembler.tick(cccd, now),
                                            SerializationContext(clock_topic))
                await produce(clock_topic, key, value)

    app.gplx = {"catalogue": catalogue, "citizens": citizens, "assemble": assemble}  # for tests and tools
    return app


class _KeyMismatch(Exception):
    pass


def _crash_on_failure(app: faust.App, topic: str, delivery: asyncio.Future) -> None:
    """A record the producer gave up on (after its retries) must not be committed past: stop the worker."""
    if not delivery.cancelled() and delivery.exception() is not None:
        log.error("could not deliver a record to %s: %r; stopping the worker", topic, delivery.exception())
        asyncio.ensure_future(app.crash(delivery.exception()))


def _deadline_passed(state: dict, now: datetime) -> bool:
    case = state.get("case")
    if not case or case["final"]:
        return False
    app = case["application"]
    due = app.get("decision_due_at") if case["status"] == "AWAITING" else app.get("notice_due_at")
    return due is not None and datetime.fromisoformat(due) <= now

