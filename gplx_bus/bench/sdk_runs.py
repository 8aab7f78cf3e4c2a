"""Producer SDK throughput: the kafka-python `Publisher` against raw kafka-python and confluent-kafka.

Rows (each publishes the same input events of the workload, cycled to `min_records`, and waits for every
acknowledgement):
- sdk: `Publisher.send(event)` for each event, then flush: validation + Avro encoding + kafka-python;
- kafka-python raw: the SDK's producer settings (acks=all, idempotent, linger 10 ms, batch 64 KiB, the SDK's
  compression codec) and the SDK's records exactly: the bytes it encoded, to the same topics, with the same key and
  the same `gplx-event-type` header. So the ratio is the SDK's own overhead, not a different load: until session 7
  the raw row sent to one topic (12 partitions, fuller batches) without the header, while the SDK spread the same
  records over five topics (60 partitions);
- confluent-kafka: the same records, topics and header (the reference; librdkafka does batching/compression in C).

`rounds` > 1 runs the three rows one after another that many times and reports each row's median and the median
of the rounds' ratios (each round's rows ran back to back), so a burst of load on a shared machine moves one round,
not the ratio. Each row also counts records per CPU-second of this process (all its threads: the clients' sender
threads too), steadier than the wall rate when other work shares the machine. Alone (a bus of its own unless KAFKA_BOOTSTRAP_SERVERS /
SCHEMA_REGISTRY_URL are set):

    python -m gplx_bus.bench.sdk_runs [--cases 5000] [--records 100000] [--rounds 3] [--json FILE]
"""
from __future__ import annotations

import os
import statistics
import time

from gplx_bus.bench import bus_env


def sdk_throughput(bus: bus_env.Bus, registry, events: list, records: list[bus_env.Record], log=print,
                   min_records: int = 100_000, rounds: int = 1) -> dict:
    """confluent-kafka sends 10k records in ~0.1 s, too short to time: the workload is cycled to `min_records`."""
    from producers.sdk import COMPRESSION, EVENT_TYPE_HEADER

    cycles = -(-min_records // max(1, len(records)))
    events, records = events * cycles, records * cycles

    prefix = bus_env.unique_prefix("sdk")
    catalogue = bus_env.create_catalogue(bus, prefix)
    # what the raw clients send: the SDK's records, to the SDK's topics, with the SDK's header
    wire = [(catalogue.name(r.base), r.key, r.value, [(EVENT_TYPE_HEADER, _avro_name(r.event_type))])
            for r in records]
    out: dict = {"records": len(records), "compression": COMPRESSION, "rounds": rounds,
                 "settings": "acks=all, idempotent, linger 10 ms, batch 64 KiB, same compression; the same records, "
                             "topics, keys and header in every row",
                 "load_average_at_start": list(os.getloadavg())}
    runs: dict[str, list[tuple[float, float]]] = {"sdk": [], "kafka_python_raw": [], "confluent_kafka": []}
    try:
        for n in range(rounds):
            runs["sdk"].append(_sdk_row(bus, registry, catalogue, events))
            runs["kafka_python_raw"].append(_kafka_python_row(bus, wire, COMPRESSION))
            runs["confluent_kafka"].append(_confluent_row(bus, wire, COMPRESSION))
            log(f"  round {n + 1}/{rounds}: " + ", ".join(f"{row} {rates[-1][0]:.0f}/s ({rates[-1][1]:.0f} per CPU-s)"
                                                          for row, rates in runs.items())
                + f"; load {os.getloadavg()[0]:.2f}")
    finally:
        bus_env.delete_topics(bus, prefix)
    for row, rates in runs.items():
        median = statistics.median(r for r, _ in rates)
        out[row] = {"records_per_s": round(median, 1), "seconds": round(len(records) / median, 2),
                    "records_per_cpu_s": round(statistics.median(c for _, c in rates), 1),
                    "runs": [round(r, 1) for r, _ in rates], "runs_per_cpu_s": [round(c, 1) for _, c in rates]}
    out["load_average_at_end"] = list(os.getloadavg())
    # the goal's ratio: the median of each round's (its two rows ran back to back, under about the same load);
    # per CPU-second of the process beside it (steadier when the machine is shared)
    per_round = [(sdk[0] / raw[0], sdk[1] / raw[1]) for sdk, raw in zip(runs["sdk"], runs["kafka_python_raw"])]
    out["sdk_vs_kafka_python_raw_rounds"] = [round(r[0], 3) for r in per_round]
    out["sdk_vs_kafka_python_raw"] = round(statistics.median(r[0] for r in per_round), 3)
    out["sdk_vs_kafka_python_raw_per_cpu_s"] = round(statistics.median(r[1] for r in per_round), 3)
    out["sdk_vs_confluent"] = _ratio(out["sdk"], out["confluent_kafka"])
    out["kafka_python_raw_vs_confluent"] = _ratio(out["kafka_python_raw"], out["confluent_kafka"])
    return out


def _sdk_row(bus: bus_env.Bus, registry, catalogue, events: list) -> tuple[float, float]:
    from producers.sdk import Publisher

    # warm-up outside the timed part: connections, and for every topic and event type its registry look-up
    # and its topic metadata (a first send to a topic waits for its metadata: ~0.3 s of 1.3 s if left in)
    first_of_each = {(base, type(event).__name__): event for base, event in reversed(events)}
    with Publisher(bus.connection, registry, catalogue=catalogue, client_id="bench-sdk") as publisher:
        for event in [*first_of_each.values(), *(event for _, event in events[:50])]:
            publisher.send(event)
        publisher.flush()
        started = _clocks()
        for _, event in events:
            publisher.send(event)
        publisher.flush()
        return _rates(len(events), started)


def _kafka_python_row(bus: bus_env.Bus, wire: list, compression: str) -> tuple[float, float]:
    from kafka import KafkaProducer

    producer = KafkaProducer(**bus.connection.kafka_python_kwargs(), acks="all", enable_idempotence=True,
                             linger_ms=10, batch_size=64 * 1024, compression_type=compression)
    try:
        # warm-up as the SDK's: every topic's metadata, then a few records
        for topic, key, value, headers in [*_one_per_topic(wire), *wire[:50]]:
            producer.send(topic, key=key, value=value, headers=headers)
        producer.flush()
        started = _clocks()
        for topic, key, value, headers in wire:
            producer.send(topic, key=key, value=value, headers=headers)
        producer.flush()
        return _rates(len(wire), started)
    finally:
        producer.close()


def _confluent_row(bus: bus_env.Bus, wire: list, compression: str) -> tuple[float, float]:
    producer = bus_env.confluent_producer(bus, **{"compression.type": compression or "none"})
    for topic, key, value, headers in [*_one_per_topic(wire), *wire[:50]]:
        producer.produce(topic, key=key, value=value, headers=headers)
    producer.flush(30)
    started = _clocks()
    for topic, key, value, headers in wire:
        while True:
            try:
                producer.produce(topic, key=key, value=value, headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)
    return _rates(len(wire), started)


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _rates(count: int, started: tuple[float, float]) -> tuple[float, float]:
    """(records per second, records per CPU-second of this process: every thread, the client's sender too)."""
    wall, cpu = time.perf_counter() - started[0], time.process_time() - started[1]
    return count / wall, count / cpu


def _one_per_topic(wire: list) -> list:
    return list({w[0]: w for w in wire}.values())


def _avro_name(short: str) -> bytes:
    from schemas.models import event_type

    return event_type(short).avro_name.encode()


def _ratio(row: dict, other: dict) -> float:
    return round(row["records_per_s"] / other["records_per_s"], 3)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    from pathlib import Path

    from schemas.registry import RegistryClient

    parser = argparse.ArgumentParser(description="The producer SDK against raw kafka-python (same records, "
                                                 "topics, header and producer settings), rows interleaved.")
    parser.add_argument("--cases", type=int, default=5000, help="the workload of `gplx-bus bench` (5000)")
    parser.add_argument("--records", type=int, default=100_000, help="records per row (the workload cycled)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three rows; medians reported")
    parser.add_argument("--json", type=Path, help="write the results there too")
    args = parser.parse_args(argv)
    bus = bus_env.open_bus()
    registry = RegistryClient(bus.registry_url, auth=bus.connection.registry_auth)
    try:
        sample = bus_env.workload(registry, bus_env.catalogue_for("sample."), args.cases, keep_events=True)
        results = sdk_throughput(bus, registry, sample.events, sample.records, min_records=args.records,
                                 rounds=args.rounds)
    finally:
        registry.close()
        bus.stop()
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
