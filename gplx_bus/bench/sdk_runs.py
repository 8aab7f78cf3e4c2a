"""Producer SDK throughput: the kafka-python `Publisher` against confluent-kafka with the same settings and payloads.

Rows (each publishes the same input events of the workload, cycled to `min_records`, acks=all, idempotent,
linger 10 ms, batch 64 KiB, the SDK's compression codec, to a fresh topic per row, and waits for every acknowledgement):
- sdk: `Publisher.send(event)` for each event, then flush: validation + Avro encoding + kafka-python;
- kafka-python raw: the SDK's producer settings, pre-serialized bytes (what the client alone costs);
- confluent-kafka: pre-serialized bytes (the reference; librdkafka does batching/compression in C).
"""
from __future__ import annotations

import time

from gplx_bus.bench import bus_env


def sdk_throughput(bus: bus_env.Bus, registry, events: list, records: list[bus_env.Record], log=print,
                   min_records: int = 100_000) -> dict:
    """confluent-kafka sends 10k records in ~0.1 s, too short to time: the workload is cycled to `min_records`."""
    from kafka import KafkaProducer

    from producers.sdk import COMPRESSION, Publisher

    rounds = -(-min_records // max(1, len(records)))
    events, records = events * rounds, records * rounds

    prefix = bus_env.unique_prefix("sdk")
    catalogue = bus_env.create_catalogue(bus, prefix)
    out = {"records": len(records), "compression": COMPRESSION,
           "settings": "acks=all, idempotent, linger 10 ms, batch 64 KiB, same compression"}
    try:
        # warm-up outside the timed part: connections, and for every topic and event type its registry look-up
        # and its topic metadata (a first send to a topic waits for its metadata: ~0.3 s of 1.3 s if left in)
        first_of_each = {(base, type(event).__name__): event for base, event in reversed(events)}
        with Publisher(bus.connection, registry, catalogue=catalogue, client_id="bench-sdk") as publisher:
            for event in [*first_of_each.values(), *(event for _, event in events[:50])]:
                publisher.send(event)
            publisher.flush()
            started = time.perf_counter()
            for base, event in events:
                publisher.send(event)
            publisher.flush()
            out["sdk"] = _row(len(events), time.perf_counter() - started)
        log(f"  sdk Publisher: {out['sdk']['records_per_s']:.0f} events/s")

        topic = prefix + "raw-kafka-python"
        bus_env.create_plain_topics(bus, [topic, prefix + "raw-confluent"])
        producer = KafkaProducer(**bus.connection.kafka_python_kwargs(), acks="all", enable_idempotence=True,
                                 linger_ms=10, batch_size=64 * 1024, compression_type=COMPRESSION)
        try:
            for r in records[:50]:
                producer.send(topic, key=r.key, value=r.value)
            producer.flush()
            started = time.perf_counter()
            for r in records:
                producer.send(topic, key=r.key, value=r.value)
            producer.flush()
            out["kafka_python_raw"] = _row(len(records), time.perf_counter() - started)
        finally:
            producer.close()
        log(f"  kafka-python raw: {out['kafka_python_raw']['records_per_s']:.0f} records/s")

        topic = prefix + "raw-confluent"
        producer = bus_env.confluent_producer(bus, **{"compression.type": COMPRESSION or "none"})
        for r in records[:50]:
            producer.produce(topic, key=r.key, value=r.value)
        producer.flush(30)
        started = time.perf_counter()
        bus_env.produce_all(producer, topic, records)
        out["confluent_kafka"] = _row(len(records), time.perf_counter() - started)
        log(f"  confluent-kafka: {out['confluent_kafka']['records_per_s']:.0f} records/s")
        out["sdk_vs_confluent"] = round(out["sdk"]["records_per_s"] / out["confluent_kafka"]["records_per_s"], 3)
        out["kafka_python_raw_vs_confluent"] = round(
            out["kafka_python_raw"]["records_per_s"] / out["confluent_kafka"]["records_per_s"], 3)
        return out
    finally:
        bus_env.delete_topics(bus, prefix)


def _row(count: int, seconds: float) -> dict:
    return {"seconds": round(seconds, 2), "records_per_s": round(count / seconds, 1)}
