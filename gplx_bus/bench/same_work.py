"""Ceilings that do the processor's work, or faust's part of it, without what we add around it.

- B′, the same-work hand loop: one asyncio task, aiokafka, batched: getmany → decode → the same checks as the
  agent (key = cccd, certificate not signed in the future, right partition) → `assembler.handle` → encode the
  outputs → produce; the citizen state in a plain dict (no table, no changelog, no persistence); offsets committed
  after a producer flush every COMMIT_SECONDS (faust's default commit interval), so at-least-once too. It reads the
  processor's input topics with its own consumer group and writes its outputs to its own catalogue's topics.
- F, faust's own ceiling: a faust app with one agent over the same input topics that only consumes and acks
  (`python -m gplx_bus.bench.same_work`, a subprocess like the worker). It records the wall-clock time of its first
  and of its N-th event in a JSON file that the bench polls.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from gplx_bus.bench import bus_env
from topology.connection import environment

COMMIT_SECONDS = 2.8  # faust's broker_commit_interval default
BATCH = 1000


# ---- B′ ----------------------------------------------------------------------------------------------------------
def hand_loop(bus: bus_env.Bus, registry, catalogue, expected: int, log=print) -> dict:
    """Process the `expected` input records on `catalogue`'s input topics; outputs to a catalogue of its own."""
    from topology import catalogue as topics

    out_prefix = bus_env.unique_prefix("handloop")
    out_catalogue = bus_env.create_catalogue(bus, out_prefix)
    try:
        result = asyncio.run(_hand_loop(bus, registry, catalogue, out_catalogue, expected))
    finally:
        bus_env.delete_topics(bus, out_prefix)
    seconds = result.pop("seconds")
    result.update({"records": expected, "seconds": round(seconds, 2), "events_per_s": round(expected / seconds, 1),
                   "events_per_cpu_s": round(expected / max(result["cpu_seconds"], 1e-3), 1),
                   "output_topic_of_decisions": topics.CASES_EVENTS})
    log(f"  ceiling B′ (same-work hand loop): {result['events_per_s']:.0f} events/s, "
        f"{result['decisions']} decisions, {result['outputs_on_cases_events']} records on cases.events")
    return result


async def _hand_loop(bus, registry, catalogue, out_catalogue, expected: int) -> dict:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from schemas.errors import DeserializationError
    from schemas.serde import AvroDeserializer, AvroSerializer, SerializationContext
    from topology import catalogue as topics
    from topology.processor import assembler
    from topology.processor.app import INPUTS
    from topology.rules import load_rule_set

    rules = load_rule_set()
    deserialize, serialize = AvroDeserializer(registry), AvroSerializer(registry)
    base_of = {catalogue.name(base): base for base in INPUTS}
    contexts = {name: SerializationContext(name) for name in base_of}
    partitions = catalogue.group(topics.CASE_INPUTS_GROUP).partitions
    cases_events = out_catalogue.name(topics.CASES_EVENTS)
    consumer = AIOKafkaConsumer(*base_of, **bus.connection.aiokafka_kwargs(),
                                group_id=f"bench-handloop-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest",
                                enable_auto_commit=False, max_poll_records=BATCH)
    producer = AIOKafkaProducer(**bus.connection.aiokafka_kwargs(), acks="all", linger_ms=20)
    state: dict[bytes, dict] = {}
    counts = {"outputs": 0, "outputs_on_cases_events": 0, "decisions": 0, "skipped": 0}
    await consumer.start()
    await producer.start()
    try:
        consumed, started, committed_at = 0, None, time.monotonic()
        cpu0 = time.process_time()
        while consumed < expected:
            batches = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
            for msgs in batches.values():
                if started is None:
                    started = time.perf_counter()
                for m in msgs:
                    consumed += 1
                    try:
                        item = deserialize(m.value, contexts[m.topic])
                        if m.key is None or item.cccd.encode() != m.key:
                            raise DeserializationError("key mismatch")
                        arrival = datetime.fromtimestamp(m.timestamp / 1000, timezone.utc)
                        assembler.refuse_signed_in_future(item, arrival, rules)
                    except DeserializationError:  # SignedInFuture included
                        counts["skipped"] += 1  # the processor dead-letters these; none in the workload
                        continue
                    if topics.expected_partition(m.key, partitions) != m.partition:
                        counts["skipped"] += 1  # the processor forwards these; none in the workload
                        continue
                    step = assembler.handle(state.get(m.key), item, base_of[m.topic], m.offset, rules)
                    state[m.key] = step.state
                    for output in step.outputs:
                        names = [out_catalogue.province_topic(output.event.province) if base == "province"
                                 else out_catalogue.name(base) for base in output.topics]
                        values = serialize.serialize_for_topics(output.event,
                                                                [SerializationContext(n) for n in names])
                        key = output.key.encode()
                        for name, value in zip(names, values):
                            await producer.send(name, value, key=key)
                            counts["outputs"] += 1
                            counts["outputs_on_cases_events"] += name == cases_events
                        counts["decisions"] += output.kind in ("approved", "rejected", "escalated")
            if time.monotonic() - committed_at >= COMMIT_SECONDS:
                await producer.flush()  # commit after effect
                await consumer.commit()
                committed_at = time.monotonic()
        await producer.flush()
        await consumer.commit()
        return {**counts, "seconds": time.perf_counter() - started,
                "cpu_seconds": round(time.process_time() - cpu0, 2), "citizens_in_state": len(state)}
    finally:
        await producer.stop()
        await consumer.stop()


# ---- F -----------------------------------------------------------------------------------------------------------
def faust_ceiling(bus: bus_env.Bus, prefix: str, catalogue, expected: int, workdir: Path, log=print,
                  timeout_s: float = 300.0) -> dict:
    """Start the no-op faust app on `catalogue`'s inputs; wait until it has seen `expected` events."""
    from deploy.local.process import ManagedProcess

    from topology.processor.app import INPUTS

    out = workdir / f"{prefix}faust-noop.json"
    env = {**bus.connection.to_env(), "GPLX_TOPIC_PREFIX": prefix, "GPLX_DATADIR": str(workdir / f"{prefix}noop"),
           "GPLX_INPUT_PARTITIONS": str(bus_env.INPUT_PARTITIONS), "GPLX_BENCH_NOOP_EXPECTED": str(expected),
           "GPLX_BENCH_NOOP_OUT": str(out), "GPLX_BENCH_NOOP_TOPICS": ",".join(catalogue.name(b) for b in INPUTS)}
    process = ManagedProcess("bench-faust-noop", [sys.executable, "-m", "gplx_bus.bench.same_work"],
                             workdir / f"{prefix}faust-noop.log", env).start()
    try:
        deadline = time.monotonic() + timeout_s
        while not out.exists():
            if not process.alive():
                raise RuntimeError(f"the no-op faust app exited: {process.log_tail(15)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the no-op faust app saw fewer than {expected} events in {timeout_s:.0f}s")
            time.sleep(0.2)  # polling the file the app writes once it has seen every event
        seen = json.loads(out.read_text())
    finally:
        process.stop(timeout=30)
    seconds = max(1e-3, seen["last"] - seen["first"])
    result = {"records": expected, "seconds": round(seconds, 2), "events_per_s": round(expected / seconds, 1),
              "what": "faust agent over the same input topics, stream.events(), no work (consume and ack)"}
    log(f"  ceiling F (no-op faust agent): {result['events_per_s']:.0f} events/s")
    return result


def _noop_app():
    import faust

    from topology.processor.settings import ProcessorSettings

    env = environment()
    settings = ProcessorSettings.from_env(env)
    expected, out = int(env["GPLX_BENCH_NOOP_EXPECTED"]), Path(env["GPLX_BENCH_NOOP_OUT"])
    app = faust.App(settings.prefix + "bench-faust-noop", broker=f"kafka://{settings.bootstrap_servers}",
                    broker_credentials=settings.connection.faust_broker_credentials(), store="memory://",
                    datadir=str(settings.datadir), topic_partitions=settings.input_partitions,
                    processing_guarantee="at_least_once", key_serializer="raw", value_serializer="raw",
                    consumer_auto_offset_reset="earliest", web_enabled=False)
    inputs = app.topic(*env["GPLX_BENCH_NOOP_TOPICS"].split(","), key_serializer="raw", value_serializer="raw")
    seen = {"count": 0, "first": 0.0}

    @app.agent(inputs, concurrency=1)
    async def noop(stream):
        async for _ in stream.events():
            seen["count"] += 1
            if seen["count"] == 1:
                seen["first"] = time.time()
            if seen["count"] == expected:
                out.write_text(json.dumps({"first": seen["first"], "last": time.time()}))

    return app


if __name__ == "__main__":
    import logging

    from faust import Worker

    settings_dir = Path(environment()["GPLX_DATADIR"])
    settings_dir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    Worker(_noop_app(), loglevel="warning", quiet=True).execute_from_commandline()
