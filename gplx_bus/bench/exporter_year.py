"""The lag exporter's case signals after a simulated year of `cases.events`: start-up seconds and peak RSS, as it was
(every case kept, the whole stream replayed at each start) against now (decided cases forgotten after the horizon,
a restart from the snapshot file).

Each reader runs in a child process of its own, so its peak RSS (ru_maxrss) is its own. The year is scaled down
(`--cases`, default 250,000 cases, two records each, spread over 365 days of record time); the memory of the
book itself at national scale is measured without a broker by `--book-only`.

    python -m gplx_bus.bench.exporter_year                 # starts a local Kafka + registry, ~5 minutes
    python -m gplx_bus.bench.exporter_year --book-only --cases 5000000
"""
from __future__ import annotations

import argparse
import json

import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

MODULE = "gplx_bus.bench.exporter_year"
DAY_MS = 24 * 3600 * 1000
NEVER_S = 1e9  # "before": a horizon of 31 years, nothing is forgotten
# The simulated year ends two days ago: Kafka 4 refuses record times more than an hour ahead
# (log.message.timestamp.after.max.ms), and the last cases are decided three days after they open.
YEAR_START = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=371)

def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def book_only(cases: int, decided_after_days: int = 3) -> dict:
    """A year of `cases` opened evenly and decided `decided_after_days` later, into a CaseBook kept as it was
    (nothing forgotten) and as it is now; entries held and the process's peak RSS for each (run one per process)."""
    from consumers.lag.cases import CaseBook

    out = {}
    for name, horizon in (("now", CaseBook.DEFAULT_HORIZON_S), ("before", NEVER_S)):
        child = subprocess.run([sys.executable, "-m", MODULE, "--book-child", str(cases), str(horizon),
                                str(decided_after_days)], capture_output=True, text=True, check=True)
        out[name] = json.loads(child.stdout)
    return out

def _book_child(cases: int, horizon: float, decided_after_days: int) -> dict:
    from consumers.lag.cases import NS, CaseBook

    book = CaseBook(horizon_s=horizon)
    per_day = max(1, cases // 365)
    lag = decided_after_days * per_day
    started = time.monotonic()
    for n in range(cases + lag):
        at = (n // per_day) * DAY_MS
        if n < cases:
            book.apply(NS + "CaseOpened", {"case_id": str(uuid.UUID(int=n + 1))}, timestamp_ms=at)
        if n >= lag:
            book.apply(NS + "CaseApproved", {"case_id": str(uuid.UUID(int=n - lag + 1))}, timestamp_ms=at)
    return {"cases": cases, "entries": len(book), "seconds": round(time.monotonic() - started, 1),
            "peak_rss_mb": round(_peak_rss_mb(), 1)}

def publish_year(bootstrap: str, registry_url: str, topic: str, cases: int, *, first_day: int = 0,
                 days: int = 365) -> int:
    """`cases` cases opened over `days` days from `first_day`, each approved (2 in 3) or rejected 3 days later,
    with record times on that calendar; returns the records written."""
    from kafka import KafkaProducer

    from schemas import models
    from schemas.registry import RegistryClient
    from schemas.serde import AvroSerializer, SerializationContext, key_bytes

    ser, ctx = AvroSerializer(RegistryClient(registry_url)), SerializationContext(topic)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20, batch_size=256 * 1024,
                             compression_type="gzip")
    src, t0 = {"system": "bench", "instance": "1"}, YEAR_START
    who = {"case_id": str(uuid.uuid4()), "cccd": "001085000001", "province": "01"}
    # One validated event of each kind; the year's records are copies with their own ids and times (the hot path
    # `serialize_dict`, no pydantic per record: the publisher must not be the slow part of the bench).
    templates = [
        models.CaseOpened(event_id=str(uuid.uuid4()), occurred_at=t0, source=src, **who, application_id="a",
                          classes=["B"], missing_notice_due_at=t0, decision_due_at=t0),
        models.CaseRejected(event_id=str(uuid.uuid4()), occurred_at=t0, source=src, **who, reasons=["UNFIT"],
                            rule_set_version="2026.1"),
        models.CaseApproved(event_id=str(uuid.uuid4()), occurred_at=t0, source=src, **who, classes=["B"],
                            warnings=[], rule_set_version="2026.1"),
    ]
    plain = [(t.avro_name, t.to_avro_dict()) for t in templates]
    written, failed = 0, []
    for n in range(cases):
        day = first_day + n * days // cases
        case_id, cccd = str(uuid.uuid4()), f"0010{n % 10**8:08d}"
        for (name, record), at_day in ((plain[0], day), (plain[1 if n % 3 == 0 else 2], day + 3)):
            at = YEAR_START + timedelta(days=at_day)
            value = ser.serialize_dict(name, {**record, "event_id": str(uuid.uuid4()), "case_id": case_id,
                                              "cccd": cccd, "occurred_at": at}, ctx)
            future = producer.send(topic, value, key=key_bytes(cccd), timestamp_ms=int(at.timestamp() * 1000))
            future.add_errback(failed.append)
            written += 1
    producer.flush()
    producer.close()
    if failed:
        raise SystemExit(f"{len(failed)} of {written} records were refused, e.g. {failed[0]!r}")
    return written

def _reader_child(bootstrap: str, registry_url: str, topic: str, state_file: str, horizon: float) -> dict:
    """One start of the case reader: seconds until it has read the topic to its end, peak RSS, then stop (which
    writes the snapshot when there is a state file)."""
    from consumers.lag.cases import CaseBook
    from consumers.lag.cases_reader import CaseSignals
    from schemas.registry import RegistryClient

    signals = CaseSignals(bootstrap, topic, RegistryClient(registry_url), interval=0.2, step_seconds=5.0,
                          state_file=Path(state_file) if state_file else None)
    if horizon != CaseBook.DEFAULT_HORIZON_S:
        signals.book = CaseBook(horizon_s=horizon)  # "before": nothing forgotten
    started = time.monotonic()
    signals.start()
    while not signals._ready:  # noqa: SLF001 - the bench reads the reader's own flag
        time.sleep(0.1)  # poll pacing
    seconds = time.monotonic() - started
    held, read = len(signals.book), sum(signals.book.totals.records.values())
    signals.stop(wait=30)
    return {"start_seconds": round(seconds, 1), "peak_rss_mb": round(_peak_rss_mb(), 1), "cases_held": held,
            "records_counted_total": read}

def _reader(bootstrap: str, registry_url: str, topic: str, state_file: Path | None, horizon: float) -> dict:
    child = subprocess.run([sys.executable, "-m", MODULE, "--reader-child", bootstrap, registry_url, topic,
                            str(state_file or ""), str(horizon)], capture_output=True, text=True)
    if child.returncode != 0:
        raise SystemExit(f"reader child failed: {child.stderr.strip().splitlines()[-1:]}")
    return json.loads(child.stdout)

def run(bootstrap: str, registry_url: str, *, cases: int) -> dict:
    from consumers.lag.cases import CaseBook
    from topology.apply import connect

    topic = f"bench-{uuid.uuid4().hex[:6]}-cases.events"
    from kafka.admin import NewTopic

    admin = connect(bootstrap)
    # retention.ms=-1: the year's record times are in the past; the broker's 7-day default would delete them at once
    admin.create_topics([NewTopic(topic, 12, 1, topic_configs={"retention.ms": "-1"})])
    admin.close()
    started = time.monotonic()
    records = publish_year(bootstrap, registry_url, topic, cases)
    publish_s = time.monotonic() - started
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "cases.snapshot.json.gz"
        before = _reader(bootstrap, registry_url, topic, None, NEVER_S)
        first = _reader(bootstrap, registry_url, topic, state, CaseBook.DEFAULT_HORIZON_S)
        snapshot_kb = state.stat().st_size / 1024
        more = publish_year(bootstrap, registry_url, topic, max(1, cases // 365), first_day=365, days=1)
        restart = _reader(bootstrap, registry_url, topic, state, CaseBook.DEFAULT_HORIZON_S)
    return {"cases": cases, "records": records, "publish_seconds": round(publish_s, 1),
            "before_every_start": before, "now_first_start": first, "snapshot_kb": round(snapshot_kb, 1),
            "records_after_snapshot": more, "now_restart_from_snapshot": restart}

def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--book-child":
        print(json.dumps(_book_child(int(argv[1]), float(argv[2]), int(argv[3]))))
        return
    if argv and argv[0] == "--reader-child":
        print(json.dumps(_reader_child(argv[1], argv[2], argv[3], argv[4], float(argv[5]))))
        return
    parser = argparse.ArgumentParser(prog="python -m gplx_bus.bench.exporter_year", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=250_000, help="cases in the simulated year")
    parser.add_argument("--book-only", action="store_true", help="the book alone, no broker")
    parser.add_argument("--bootstrap-servers", help="an existing cluster (default: start a local one)")
    parser.add_argument("--registry-url", help="its schema registry")
    args = parser.parse_args(argv)
    if args.book_only:
        print(json.dumps(book_only(args.cases), indent=2))
        return
    if args.bootstrap_servers:
        print(json.dumps(run(args.bootstrap_servers, args.registry_url, cases=args.cases), indent=2))
        return
    from deploy.local.cluster import LocalCluster

    with LocalCluster() as endpoints:
        print(json.dumps(run(endpoints.bootstrap_servers, endpoints.schema_registry_url, cases=args.cases),
                         indent=2))

if __name__ == "__main__":
    main()
