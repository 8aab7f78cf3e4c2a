"""Ceilings: what the broker and the Python clients can do on this machine, with no logic at all.

- Ceiling A: Apache Kafka's own ProducerPerformance / ConsumerPerformance (kafka-tools jar, same broker, same
  record size, acks=all, no compression; the JVM is the fastest client we have);
- Ceiling B: a raw consume -> produce loop per Python client (aiokafka: faust's client; kafka-python: the SDK's;
  confluent-kafka: librdkafka, reference) moving the same records (our serialized inputs) between two topics.
"""
from __future__ import annotations

import asyncio
import re
import subprocess
import time
import uuid

from gplx_bus.bench import bus_env
from topology.kafka_python import new_client


# ---- ceiling A ---------------------------------------------------------------------------------------------------
def _java(bus: bus_env.Bus, tool: str, args: list[str], timeout: float) -> str:
    cmd = ["java", "-Xmx512m", "-cp", f"{bus.lib}/*", f"org.apache.kafka.tools.{tool}", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{tool} failed ({result.returncode}): {(result.stderr or result.stdout)[-400:]}")
    return result.stdout


_PRODUCER_SUMMARY = re.compile(
    r"(?P<records>\d+) records sent, (?P<rps>[\d.]+) records/sec \((?P<mbps>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, "
    r"(?P<p99>\d+) ms 99th")


def parse_producer_performance(text: str) -> dict:
    matches = list(_PRODUCER_SUMMARY.finditer(text))
    if not matches:
        raise RuntimeError(f"no summary in ProducerPerformance output: {text[-300:]}")
    m = matches[-1]  # the last line is the whole run; earlier ones are 5-second windows
    return {"records": int(m["records"]), "records_per_s": float(m["rps"]), "MB_per_s": float(m["mbps"]),
            "avg_latency_ms": float(m["avg"]), "max_latency_ms": float(m["max"]),
            "p50_ms": int(m["p50"]), "p95_ms": int(m["p95"]), "p99_ms": int(m["p99"])}


def parse_consumer_performance(text: str) -> dict:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(("WARN", "["))]
    header_at = next(i for i, line in enumerate(lines) if line.startswith("start.time"))
    names = [n.strip() for n in lines[header_at].split(",")]
    values = [v.strip() for v in lines[header_at + 1].split(",")]
    row = dict(zip(names, values))
    return {"records": int(row["data.consumed.in.nMsg"]), "records_per_s": float(row["nMsg.sec"]),
            "MB_per_s": float(row["MB.sec"]), "fetch_records_per_s": float(row.get("fetch.nMsg.sec", 0) or 0),
            "rebalance_ms": float(row.get("rebalance.time.ms", 0) or 0)}


def _client_config(bus: bus_env.Bus, kind: str) -> list[str]:
    """Kafka's perf tools read the same client properties file (security settings) as our clients."""
    return [f"--{kind}.config", bus.connection.client_config] if bus.connection.client_config else []


def ceiling_a(bus: bus_env.Bus, records: int, record_size: int, log=print) -> dict:
    topic = f"bench{uuid.uuid4().hex[:6]}.ceiling-a"
    bus_env.create_plain_topics(bus, [topic])
    try:
        produced = parse_producer_performance(_java(bus, "ProducerPerformance", [
            "--topic", topic, "--num-records", str(records), "--record-size", str(record_size),
            "--throughput", "-1", "--producer-props", f"bootstrap.servers={bus.bootstrap}", "acks=all",
            "linger.ms=10", f"batch.size={64 * 1024}", "compression.type=none", *_client_config(bus, "producer")],
            timeout=300))
        consumed = parse_consumer_performance(_java(bus, "ConsumerPerformance", [
            "--bootstrap-server", bus.bootstrap, "--topic", topic, "--messages", str(records),
            "--timeout", "60000", "--group", f"bench-{uuid.uuid4().hex[:6]}", *_client_config(bus, "consumer")],
            timeout=300))
    finally:
        bus_env.delete_topics(bus, topic)
    log(f"  ceiling A: produce {produced['records_per_s']:.0f} rec/s ({produced['MB_per_s']} MB/s, "
        f"p99 {produced['p99_ms']} ms), consume {consumed['records_per_s']:.0f} rec/s")
    return {"record_size": record_size, "records": records, "settings": "acks=all linger.ms=10 batch.size=65536 "
            "compression.type=none, 12 partitions", "producer": produced, "consumer": consumed}


def consume_topic(bus: bus_env.Bus, topic: str) -> dict:
    """Kafka's ConsumerPerformance reading all of `topic` (e.g. a changelog: the ceiling of a restore)."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    consumer = new_client(KafkaConsumer, **bus.connection.kafka_python_kwargs())
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends, starts = consumer.end_offsets(tps), consumer.beginning_offsets(tps)
    finally:
        consumer.close()
    records = sum(ends[tp] - starts[tp] for tp in tps)
    started = time.perf_counter()
    perf = parse_consumer_performance(_java(bus, "ConsumerPerformance", [
        "--bootstrap-server", bus.bootstrap, "--topic", topic, "--messages", str(records), "--timeout", "60000",
        "--group", f"bench-{uuid.uuid4().hex[:6]}", *_client_config(bus, "consumer")], timeout=900))
    return {**perf, "seconds_with_jvm_start": round(time.perf_counter() - started, 1),
            "seconds": round(perf["records"] / max(perf["records_per_s"], 1e-3), 1)}


# ---- ceiling B ---------------------------------------------------------------------------------------------------
def ceiling_b(bus: bus_env.Bus, records: list[bus_env.Record], log=print) -> dict:
    """Each client moves the same records from one (pre-filled) topic to its own output topic."""
    prefix = f"bench{uuid.uuid4().hex[:6]}.ceiling-b."
    src = prefix + "src"
    clients = {"aiokafka": _aiokafka_loop, "kafka-python": _kafka_python_loop, "confluent-kafka": _confluent_loop}
    bus_env.create_plain_topics(bus, [src] + [prefix + name for name in clients])
    try:
        _fill(bus, src, records)
        out = {"records": len(records), "settings": "consume (fresh group, earliest) -> produce (acks=all, "
               "linger 10 ms, no compression), 12 partitions each; timed from the first record consumed to the "
               "last acknowledgement"}
        for name, loop in clients.items():
            cpu0 = time.process_time()  # all threads of this process (librdkafka's and kafka-python's too)
            seconds = loop(bus, src, prefix + name, len(records))
            cpu = time.process_time() - cpu0  # includes connect and group join: a slight overestimate
            out[name] = {"seconds": round(seconds, 2), "records_per_s": round(len(records) / seconds, 1),
                         "cpu_seconds": round(cpu, 2), "records_per_cpu_s": round(len(records) / max(cpu, 1e-3), 1)}
            log(f"  ceiling B {name}: {out[name]['records_per_s']:.0f} records/s")
        return out
    finally:
        bus_env.delete_topics(bus, prefix)


def _fill(bus, topic, records) -> None:
    bus_env.produce_all(bus_env.confluent_producer(bus), topic, records)


def _aiokafka_loop(bus, src: str, dst: str, count: int) -> float:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async def run() -> float:
        consumer = AIOKafkaConsumer(src, **bus.connection.aiokafka_kwargs(), group_id=f"bench-{uuid.uuid4().hex[:6]}",
                                    auto_offset_reset="earliest", enable_auto_commit=True)
        producer = AIOKafkaProducer(**bus.connection.aiokafka_kwargs(), acks="all", linger_ms=10)
        await consumer.start()
        await producer.start()
        try:
            moved, started = 0, None
            while moved < count:
                batches = await consumer.getmany(timeout_ms=1000)
                for msgs in batches.values():
                    if started is None:
                        started = time.perf_counter()
                    for m in msgs:
                        await producer.send(dst, key=m.key, value=m.value)
                        moved += 1
            await producer.flush()
            return time.perf_counter() - started
        finally:
            await producer.stop()
            await consumer.stop()

    return asyncio.run(run())


def _kafka_python_loop(bus, src: str, dst: str, count: int) -> float:
    from kafka import KafkaConsumer, KafkaProducer

    consumer = new_client(KafkaConsumer, src, **bus.connection.kafka_python_kwargs(),
                          group_id=f"bench-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest",
                          enable_auto_commit=True)
    producer = KafkaProducer(**bus.connection.kafka_python_kwargs(), acks="all", linger_ms=10, batch_size=64 * 1024)
    try:
        moved, started = 0, None
        while moved < count:
            for msgs in consumer.poll(timeout_ms=1000).values():
                if started is None:
                    started = time.perf_counter()
                for m in msgs:
                    producer.send(dst, key=m.key, value=m.value)
                    moved += 1
        producer.flush()
        return time.perf_counter() - started
    finally:
        producer.close()
        consumer.close()


def _confluent_loop(bus, src: str, dst: str, count: int) -> float:
    from confluent_kafka import Consumer, Producer

    consumer = Consumer({**bus.connection.confluent_config(), "group.id": f"bench-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": True})
    producer = Producer({**bus.connection.confluent_config(), "acks": "all", "linger.ms": 10,
                         "queue.buffering.max.messages": 1_000_000})
    consumer.subscribe([src])
    try:
        moved, started = 0, None
        while moved < count:
            for m in consumer.consume(num_messages=1000, timeout=1.0):
                if m.error():
                    continue
                if started is None:
                    started = time.perf_counter()
                while True:
                    try:
                        producer.produce(dst, key=m.key(), value=m.value())
                        break
                    except BufferError:
                        producer.poll(0.05)
                moved += 1
            producer.poll(0)
        producer.flush(60)
        return time.perf_counter() - started
    finally:
        consumer.close()
