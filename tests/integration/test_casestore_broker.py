"""The case store on the real broker and registry, into SQLite and into a real PostgreSQL server (started once for
this module by the launcher, deploy/local/postgres.py).

What must hold, on both databases:
- `gplx-bus status store run` (a real process) SIGKILLed mid-stream and started again: no case missing, no event
  applied twice: the events per case in the database equal the distinct event ids per case on the topic, although
  the topic also holds re-deliveries (same event id, as the processor re-sends after a crash);
- every decided case's row has the decision's state and reasons;
- a rebuild from the beginning of cases.events into an empty database gives the identical tables (checksum), and
  SQLite and PostgreSQL hold identical tables too.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import pytest

from consumers.casestore.consumer import StoreConsumer
from consumers.casestore.db import database
from consumers.casestore.demo import catch_up
from consumers.casestore.model import STATE_OF
from consumers.casestore.store import CaseStore
from consumers.casestore.synthetic import case_events
from deploy.local.postgres import LocalPostgres
from schemas.registry import RegistryClient
from schemas.serde import AvroSerializer, SerializationContext, key_bytes
from topology.catalogue import CASES_EVENTS, Province

pytestmark = pytest.mark.integration
PROVINCES = [Province("01", "Hà Nội"), Province("79", "Hồ Chí Minh"), Province("48", "Đà Nẵng")]
CASES = 1000


@pytest.fixture(scope="module")
def postgres():
    with LocalPostgres() as pg:
        yield pg


@pytest.fixture(scope="module")
def topic_events(kafka_bootstrap, schema_registry_url, request):
    """A private cases.events with CASES synthetic cases, 200 of their events delivered twice."""
    from kafka import KafkaAdminClient, KafkaProducer

    from topology import apply as topo
    from topology.catalogue import Catalogue

    catalogue = Catalogue.build(prefix=f"t-casestore-{os.getpid()}-{int(time.time())}.", replication_factor=1,
                                input_partitions=3, provinces=PROVINCES)
    admin = topo.connect(kafka_bootstrap)
    topo.apply(topo.plan(catalogue, admin), admin)
    admin.close()
    topic = catalogue.name(CASES_EVENTS)
    events = case_events(CASES, seed=7)
    sent = events + events[100:300]  # re-deliveries: same event ids
    ser, ctx = AvroSerializer(RegistryClient(schema_registry_url)), SerializationContext(topic)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=20)
    for kind, record in sent:
        producer.send(topic, key=key_bytes(record["cccd"]),
                      value=ser.serialize_dict("vn.gplx.cases." + kind, record, ctx))
    producer.flush(60)
    producer.close()
    yield topic, events
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.delete_topics([t.name for t in catalogue.managed])
    admin.close()


def store_process(url: str, kafka_bootstrap: str, registry_url: str, topic: str) -> subprocess.Popen:
    prefix = topic[:-len(CASES_EVENTS)]
    return subprocess.Popen(
        [sys.executable, "-m", "gplx_bus.cli", "status", "store", "run", "--database", url, "--batch-size", "40",
         "-b", kafka_bootstrap, "--registry-url", registry_url, "--prefix", prefix],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)  # polling the database
    return result


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/cases.db"
    pg = request.getfixturevalue("postgres")
    name = f"t{int(time.time() * 1000)}"
    import psycopg

    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg.url.replace("/cases?", f"/{name}?")


def test_killed_mid_stream_then_restarted_applies_every_event_once(db_url, topic_events, kafka_bootstrap,
                                                                    schema_registry_url, tmp_path):
    topic, events = topic_events
    db = database(db_url)
    store = CaseStore(db, topic)
    total_records = len(events) + 200
    first = store_process(db_url, kafka_bootstrap, schema_registry_url, topic)
    try:
        at_kill = wait_for(lambda: (n := sum(store.offsets().values())) >= total_records // 3 and n, 60,
                           "the store to apply a third of the topic")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert at_kill < total_records, "the store finished before it could be killed mid-stream"
    second = store_process(db_url, kafka_bootstrap, schema_registry_url, topic)
    try:
        wait_for(lambda: sum(store.offsets().values()) == total_records, 120, "the restarted store to catch up")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0, second.stderr.read().decode()[-500:]
    print(f"\n{db.dialect}: killed after {at_kill} of {total_records} records")

    per_case = defaultdict(set)
    for _, record in events:
        per_case[record["case_id"]].add(record["event_id"])
    assert store.event_counts() == {case: len(ids) for case, ids in per_case.items()}
    rows = {r.case_id: r for r in store.all_rows()}
    assert len(rows) == CASES and all(r.events == len(per_case[c]) for c, r in rows.items())
    for kind, record in events:
        if kind in ("CaseApproved", "CaseRejected", "CaseEscalated"):
            row = rows[record["case_id"]]
            assert (row.state, row.reasons) == (STATE_OF[kind], sorted(record.get("reasons") or []))
    checksum = store.checksum()
    store.close()

    rebuilt = CaseStore(database(f"sqlite:///{tmp_path}/rebuilt.db"), topic)
    consumer = StoreConsumer(kafka_bootstrap, RegistryClient(schema_registry_url), rebuilt, mirror_offsets=False)
    try:
        catch_up(consumer, 120)
        assert rebuilt.checksum() == checksum  # rebuilt from the beginning (SQLite), equal to either database
    finally:
        consumer.close()
        rebuilt.close()
