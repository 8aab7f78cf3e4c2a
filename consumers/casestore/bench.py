"""`make bench-status`: the case store on PostgreSQL, one run (not in CI).

1. Query latency on 1,000,000 generated cases (COPY-loaded, then ANALYZE): p50/p99 of the by-application-id query
   and of the province page query (a province, a `since`, 100 rows), through `CaseStore`, one connection.
2. Write rate of the materializer (`CaseStore.act`, batches of 2,000 records, each one transaction with its
   offsets) against the ceiling: a plain COPY of the same final rows and history into an empty database.
   The materializer is fed decoded records directly (no Kafka), so this is the database side of the write path.

    python -m consumers.casestore.bench [--cases 1000000] [--write-cases 50000]
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid

import psycopg

from consumers.casestore import model
from consumers.casestore.db import database
from consumers.casestore.store import CaseStore, Record
from consumers.casestore.synthetic import case_events
from deploy.local.postgres import LocalPostgres
from schemas import reference

STATES = (("APPROVED", []), ("REJECTED", ["PHONE_NOT_TIED"]), ("ESCALATED", ["DEADLINE_EXCEEDED", "EXAM_MISSING"]),
          ("AWAITING", []), ("OPENED", []))


def new_database(pg: LocalPostgres, name: str) -> str:
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg.url.replace("/cases?", f"/{name}?")


def generated_rows(n: int, seed: int = 1):
    rnd = random.Random(seed)
    provinces = sorted(reference.current_provinces())
    t0 = 1_735_689_600_000  # 2025-01-01
    for i in range(n):
        state, reasons = STATES[rnd.randrange(len(STATES))]
        at = t0 + i * 30_000
        yield (str(uuid.UUID(int=rnd.getrandbits(128))), f"APP-{i:08d}", f"0{rnd.randint(1, 96):02d}"
               f"{rnd.randint(0, 3)}{rnd.randint(50, 99)}{i % 1_000_000:06d}", rnd.choice(provinces), state,
               json.dumps(reasons), json.dumps(["EXAM_MISSING"] if state == "AWAITING" else []), "[]", '["B"]',
               '["B"]', at + 172_800_000, at + 604_800_000, at, at + 3_600_000 if reasons or state == "APPROVED"
               else None, at + 3_600_000, 3)


def copy_rows(url: str, rows, events=()) -> float:
    database(url).create_schema()
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            with cur.copy(f"COPY cases ({', '.join(model.COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            if events:
                with cur.copy("COPY case_events (event_id, case_id, type, occurred_at, topic_partition, "
                              "topic_offset, body) FROM STDIN") as copy:
                    for row in events:
                        copy.write_row(row)
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    return (f"p50 {statistics.median(ms):.2f} ms, p99 {ms[int(len(ms) * 0.99) - 1]:.2f} ms, "
            f"max {ms[-1]:.2f} ms ({len(ms)} queries)")


def latency(pg: LocalPostgres, cases: int, queries: int) -> None:
    url = new_database(pg, "latency")
    print(f"loading {cases:,} generated cases with COPY ...", flush=True)
    seconds = copy_rows(url, generated_rows(cases))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE cases")
    print(f"  {cases:,} rows in {seconds:.1f}s ({cases / seconds:,.0f} rows/s)")
    store = CaseStore(database(url), "cases.events")
    rnd = random.Random(2)
    provinces = sorted(reference.current_provinces())
    by_id, by_province = [], []
    for _ in range(queries):
        app = f"APP-{rnd.randrange(cases):08d}"
        started = time.perf_counter()
        assert store.by_application(app) is not None
        by_id.append(time.perf_counter() - started)
        since = 1_735_689_600_000 + rnd.randrange(cases) * 30_000
        started = time.perf_counter()
        store.province_page(rnd.choice(provinces), since_ms=since, limit=100)
        by_province.append(time.perf_counter() - started)
    store.close()
    print(f"GET by application id:  {percentiles(by_id)}")
    print(f"province page (since, 100 rows): {percentiles(by_province)}")


def write_rate(pg: LocalPostgres, cases: int) -> None:
    events = case_events(cases, seed=5)
    records = [Record(i % 12, i // 12, kind, rec) for i, (kind, rec) in enumerate(events)]
    url = new_database(pg, "materializer")
    store = CaseStore(database(url), "cases.events")
    started = time.perf_counter()
    for i in range(0, len(records), 2000):
        store.act(records[i:i + 2000])
    act_s = time.perf_counter() - started
    rows = [r.to_db() for r in store.all_rows()]
    history = store._conn.execute("SELECT event_id, case_id, type, occurred_at, topic_partition, topic_offset, "
                                  "body FROM case_events").fetchall()
    store.close()
    copy_s = copy_rows(new_database(pg, "ceiling"), rows, history)
    print(f"materializer: {cases:,} cases ({len(events):,} events) in {act_s:.1f}s = {cases / act_s:,.0f} cases/s "
          f"({len(events) / act_s:,.0f} events/s), batches of 2,000 records, one transaction each")
    print(f"ceiling, COPY of the same {len(rows):,} rows + {len(history):,} history rows: {copy_s:.1f}s = "
          f"{cases / copy_s:,.0f} cases/s; the materializer reaches {copy_s / act_s:.0%} of it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--write-cases", type=int, default=50_000)
    args = parser.parse_args()
    with LocalPostgres() as pg:
        print(f"PostgreSQL started by the launcher in {pg.start_seconds:.1f}s on 127.0.0.1:{pg.port}")
        write_rate(pg, args.write_cases)
        latency(pg, args.cases, args.queries)


if __name__ == "__main__":
    main()
