"""Serde throughput per event type: fastavro (our serde) vs the Apache avro package, in one run, on one core.

    python -m gplx_bus.bench.bench_serde [--seconds 0.5] [--repeat 3] [--only HealthCertificate]

Columns (records/s): `enc` = AvroSerializer.serialize_dict (dict -> wire bytes incl. header), `dec` =
AvroDeserializer.decode (wire bytes -> dict), `dec+model` = AvroDeserializer (-> validated pydantic event),
`model+enc` = AvroSerializer(event) (event -> to_avro_dict -> bytes); `avro enc`/`avro dec` = the avro package's
DatumWriter/DatumReader on the same records; ratios = fastavro / avro. Goal: >= 100,000/s enc and dec for
HealthCertificate. Not a test: numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
import warnings
from pathlib import Path

import avro.io
import avro.schema

from schemas import loader, models, serde, testing
from schemas.registry import InMemoryRegistry

SAMPLES = 200


REPEAT = 3


def rate(fn, items, seconds: float) -> float:
    """Best of REPEAT runs: records per second of fn over items, each run about `seconds` long.

    Best-of, because on a shared machine other processes only ever make a run slower.
    """
    return max(_rate(fn, items, seconds) for _ in range(REPEAT))


def _rate(fn, items, seconds: float) -> float:
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for item in items:
            fn(item)
        n += len(items)
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    parser.add_argument("--only", help="one event (short name)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is shown")
    args = parser.parse_args()
    global REPEAT
    REPEAT = args.repeat
    warnings.simplefilter("ignore")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    registry = InMemoryRegistry()
    ser, de = serde.AvroSerializer(registry), serde.AvroDeserializer(registry)
    ctx = serde.SerializationContext("bench")
    names = [n for n in sorted(models.EVENT_TYPES) if not args.only or loader.short_name(n) == args.only]
    header = f"{'event':<24}{'enc':>10}{'dec':>10}{'dec+model':>11}{'model+enc':>11}{'avro enc':>10}" \
             f"{'avro dec':>10}{'enc x':>7}{'dec x':>7}  bytes"
    print(header)
    print("-" * len(header))
    for name in names:
        model = models.EVENT_TYPES[name]
        strategy = testing.events(model)
        events = [strategy.example() for _ in range(SAMPLES)]
        dicts = [e.to_avro_dict() for e in events]
        wire = [ser.serialize_dict(name, d, ctx) for d in dicts]
        bodies = [w[5:] for w in wire]
        schema = avro.schema.parse(loader.event_schema_text(name))
        writer, reader = avro.io.DatumWriter(schema), avro.io.DatumReader(schema, schema)

        def avro_enc(d):
            buf = io.BytesIO()
            writer.write(d, avro.io.BinaryEncoder(buf))
            return buf.getvalue()

        def avro_dec(b):
            return reader.read(avro.io.BinaryDecoder(io.BytesIO(b)))

        assert [avro_enc(d) for d in dicts] == bodies, f"{name}: avro package bytes differ"
        s = args.seconds
        enc = rate(lambda d: ser.serialize_dict(name, d, ctx), dicts, s)
        dec = rate(lambda w: de.decode(w, ctx), wire, s)
        dec_model = rate(lambda w: de(w, ctx), wire, s)
        model_enc = rate(lambda e: ser(e, ctx), events, s)
        a_enc = rate(avro_enc, dicts, s / 2)
        a_dec = rate(avro_dec, bodies, s / 2)
        size = sum(map(len, wire)) / len(wire)
        print(f"{loader.short_name(name):<24}{enc:>10,.0f}{dec:>10,.0f}{dec_model:>11,.0f}{model_enc:>11,.0f}"
              f"{a_enc:>10,.0f}{a_dec:>10,.0f}{enc / a_enc:>7.1f}{dec / a_dec:>7.1f}  {size:.0f}")


if __name__ == "__main__":
    main()
