"""Least privilege proven by the whole pipeline working (issue 11): every component on the secured broker under
its own principal, with only the ACLs the catalogue grants.

One secured single node (SASL_SSL + SCRAM-SHA-512, StandardAuthorizer, deny by default) and a plain registry on
loopback, started by the launcher for this module. The catalogue's topics and ACLs for a private prefix (provinces
01 and 79) are applied as admin; then each component runs with the client config file of its own principal, read
as every command of ours reads one (`Connection.from_env(client_config=...)`):

| component | principal |
| --- | --- |
| case processor worker (faust subprocess, `Connection.to_env()`) | User:case-processor |
| identity / police / payment adapters (one AdapterSet each) | User:identity, User:police, User:payment |
| simulated portal applications / health certificates / payments (SDK) | User:portal, User:clinic, User:payment |
| issuance sink to the stand-in national portal | User:portal |
| province subscriber 01 | User:province-01 |
| lag monitor, and the run's progress watch (group and end offsets) | User:sre |
| the clock moved past the deadline of still-open cases (ClockTicks, the processor's own topic) | User:case-processor |

Admin only sets up (topics, ACLs, schemas) and is the test's own eyes (reading the topics back to reconcile the
funnel with the simulator's plan). What security costs (processor throughput secured vs plain, start time of a
secured node) is measured by `gplx-bus bench` (gplx_bus/bench/secured.py), not here.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deploy.local.cluster import Endpoints, LocalCluster
from deploy.local.security import ADMIN_USER, SecureFiles, user_name
from producers.principals import PrincipalPublishers
from topology import acls
from topology import apply as topics_apply
from topology import catalogue as topics
from topology.catalogue import (CASE_PROCESSOR, CLINIC, IDENTITY, PAYMENT, POLICE, PORTAL, SRE, Catalogue,
                                load_current_provinces, province_principal)
from topology.connection import Connection

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROVINCES = ("01", "79")
SUBSCRIBED = "01"
PARTITIONS = 6  # co-partitioned inputs: what demo.processor_worker tells the worker (DEMO_INPUT_PARTITIONS)
APPLICATIONS = 24
SEED = 2
PREFIX = f"spl{uuid.uuid4().hex[:6]}."
CATALOGUE = Catalogue.build(prefix=PREFIX, replication_factor=1, input_partitions=PARTITIONS,
                            provinces=[p for p in load_current_provinces() if p.code in PROVINCES])
PRINCIPALS = sorted({a.principal for a in CATALOGUE.acls()})
_FINAL = ("CaseApproved", "CaseRejected", "CaseEscalated")


@dataclass
class SecuredStack:
    cluster: LocalCluster
    endpoints: Endpoints
    start_seconds: float

    @property
    def files(self) -> SecureFiles:
        return self.cluster.secure

    def connection(self, principal: str) -> Connection:
        """The principal's connection, from its generated client config file (as `--client-config` reads it)."""
        return Connection.from_env({}, client_config=self.files.client_config(user_name(principal)),
                                   bootstrap=self.endpoints.bootstrap_servers,
                                   registry_url=self.endpoints.schema_registry_url, prefix=PREFIX)

    @property
    def admin(self) -> Connection:
        return self.connection(f"User:{ADMIN_USER}")


@pytest.fixture(scope="module")
def stack():
    cluster = LocalCluster(secure=True, principals=PRINCIPALS)
    started = time.monotonic()
    endpoints = cluster.start()
    try:
        yield SecuredStack(cluster, endpoints, time.monotonic() - started)
    finally:
        cluster.stop()


class _Collect:
    """A subscriber output that keeps the views (thread-safe enough: one writer, read after it stopped)."""

    def __init__(self) -> None:
        self.views = []

    def emit(self, view) -> None:
        self.views.append(view)

    def close(self) -> None:
        pass


@dataclass
class PipelineRun:
    result: object  # demo.DemoResult-like: funnel, problems
    plan: object
    portal_ids: set[str]
    portal_stats: dict
    subscriber_views: list
    lag_report: object
    sink_errors: list[str]
    adapter_stats: dict
    sent_by: dict
    issuance_sample: object
    worker_log: str
    seconds: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def pipeline(stack):
    """The whole pipeline, every component under its own principal, run once for the module's checks."""
    from contextlib import ExitStack

    from consumers.lag.config import LagConfig
    from consumers.lag.monitor import LagMonitor
    from consumers.portal import IssuanceSink, StandinPortal
    from consumers.portal.signing import write_secret_file
    from consumers.subscriber.consume import ProvinceSubscriber
    from gplx_bus.commands import demo
    from producers import simulator
    from producers.adapters.runner import AdapterSet

    # Our own folder (worker log, adapter databases): kept when GPLX_KEEP_WORKDIR is set, for a post-mortem.
    workdir = Path(tempfile.mkdtemp(prefix="gplx-secured-pipeline-"))
    print(f"\nwork folder {workdir}")
    registry_url = stack.endpoints.schema_registry_url
    admin = stack.admin
    seconds = {}
    started = time.monotonic()
    admin_client = topics_apply.connect(admin)
    try:
        topics_apply.apply(topics_apply.plan(CATALOGUE, admin_client), admin_client)
        acls.apply(acls.plan(CATALOGUE, admin_client), CATALOGUE, admin_client)
    finally:
        admin_client.close()
    demo.register_schemas(admin, registry_url, CATALOGUE)
    seconds["topics, ACLs, schemas"] = time.monotonic() - started

    plan = simulator.make_plan(",".join(PROVINCES), APPLICATIONS, SEED)
    simulator.write_databases(plan, workdir)
    deadline = time.monotonic() + 150
    with ExitStack() as stack_ctx:
        worker = stack_ctx.enter_context(demo.processor_worker(
            stack.connection(CASE_PROCESSOR), registry_url, CATALOGUE, workdir))
        adapter_sets = {}
        for name, principal in (("identity", IDENTITY), ("police", POLICE), ("payment", PAYMENT)):
            adapter_sets[name] = stack_ctx.enter_context(AdapterSet(
                stack.connection(principal), registry_url, catalogue=CATALOGUE, data_dir=workdir,
                run_identity=name == "identity", run_police=name == "police", run_payment=name == "payment"))
        credentials = write_secret_file(workdir / "portal.secret")  # the portal edge is signed too
        portal = stack_ctx.enter_context(StandinPortal(keys={credentials.key_id: credentials.secret}))
        sink = IssuanceSink(stack.connection(PORTAL), registry_url, portal.url, catalogue=CATALOGUE,
                            credentials=credentials).start()
        stack_ctx.callback(sink.stop)
        collected = _Collect()
        stop_subscriber = threading.Event()
        subscriber = ProvinceSubscriber(stack.connection(province_principal(SUBSCRIBED)), registry_url, SUBSCRIBED,
                                        output=collected, catalogue=CATALOGUE, from_beginning=True)
        subscribed = threading.Thread(target=subscriber.run, kwargs={"stop": stop_subscriber}, daemon=True)
        subscribed.start()
        stack_ctx.callback(subscribed.join, 30)
        stack_ctx.callback(stop_subscriber.set)
        reader = stack_ctx.enter_context(demo.topic_reader(admin, registry_url, CATALOGUE))  # the test's eyes
        watch = demo.Watch(stack.connection(SRE), CATALOGUE, reader, portal, worker, plan)
        stack_ctx.callback(watch.close)

        publishers = PrincipalPublishers(stack.connection, registry_url, CATALOGUE, client_id="gplx-test")
        try:
            simulator.publish(plan, publishers)
        finally:
            publishers.close()
        seconds["services up, day published"] = time.monotonic() - started
        assert watch.until("processing", watch.settled, deadline), "the pipeline did not settle"
        demo.move_clock_past_deadline(stack.connection(CASE_PROCESSOR), registry_url, CATALOGUE,
                                      watch.open_cases())
        watch.until("deciding", watch.finished, deadline)
        seconds["pipeline"] = time.monotonic() - started
        funnel, problems = demo.report(watch, plan)
        portal_ids, portal_stats = set(portal.issuances()), portal.stats()
        monitor = LagMonitor(LagConfig(bootstrap_servers=stack.connection(SRE), prefix=PREFIX))
        try:
            lag_report = monitor.sample()
        finally:
            monitor.close()
        # the subscriber has seen what its topic holds now
        province_end = _end_offsets(admin, CATALOGUE.province_topic(SUBSCRIBED))
        _wait(lambda: subscriber_position(subscriber, admin) >= province_end, 30, "the province subscriber")
        adapter_stats = {name: s.stats() for name, s in adapter_sets.items()}
        issuance_sample = reader.events[CATALOGUE.name(topics.ISSUANCE_REQUESTS)][0]
        sink_errors = list(sink.stats.errors)
    worker_log = Path(worker.log_path).read_text(errors="replace")  # the worker has stopped: its whole log
    if not os.environ.get("GPLX_KEEP_WORKDIR"):
        shutil.rmtree(workdir, ignore_errors=True)
    return PipelineRun(result=demo.DemoResult(PREFIX, CATALOGUE, plan, funnel, problems), plan=plan,
                       portal_ids=portal_ids, portal_stats=portal_stats, subscriber_views=list(collected.views),
                       lag_report=lag_report, sink_errors=sink_errors, adapter_stats=adapter_stats,
                       sent_by=dict(publishers.sent), issuance_sample=issuance_sample,
                       worker_log=worker_log, seconds=seconds)


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)  # pacing between polls


def _end_offsets(conn: Connection, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**conn.kafka_python_kwargs(), group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def subscriber_position(subscriber, admin: Connection) -> int:
    """Sum of the offsets the subscriber's group committed on its topic (read as admin)."""
    admin_client = topics_apply.connect(admin)
    try:
        offsets = admin_client.list_group_offsets([subscriber.group_id]).get(subscriber.group_id, {})
        return sum(om.offset for tp, om in offsets.items() if tp.topic == subscriber.topic and om.offset >= 0)
    finally:
        admin_client.close()


# -- the checks ------------------------------------------------------------------------------------------------
def test_every_case_decided_as_planned(pipeline):
    funnel = pipeline.result.funnel
    print(f"\nsecured pipeline: {len(pipeline.plan.expected)} applications in {', '.join(PROVINCES)}, published "
          + ", ".join(f"{user_name(p)} {n}" for p, n in sorted(pipeline.sent_by.items()))
          + "; " + ", ".join(f"{k} {v:.1f}s" for k, v in pipeline.seconds.items()))
    assert funnel is not None and not funnel.undecided()
    assert pipeline.result.problems == []
    assert set(pipeline.sent_by) == {PORTAL, CLINIC, PAYMENT}
    for name, stats in pipeline.adapter_stats.items():
        [responder] = stats.values()
        assert not responder.errors, f"{name} adapter: {responder.errors}"
    assert pipeline.adapter_stats["identity"]["identity"].answers > 0
    assert pipeline.adapter_stats["police"]["police"].answers > 0


def test_issuances_delivered_to_the_portal(pipeline):
    approved = sum(1 for e in pipeline.plan.expected if e.outcome == "APPROVED")
    assert approved > 0
    assert len(pipeline.portal_ids) == pipeline.portal_stats["distinct"] == approved
    assert not pipeline.sink_errors


def test_province_subscriber_sees_only_its_own_province(pipeline):
    views = pipeline.subscriber_views
    planned = {e.application_id for e in pipeline.plan.expected if e.province == SUBSCRIBED}
    assert planned and views
    assert {v.province for v in views} == {SUBSCRIBED}
    finals = {v.case_id for v in views if v.event_type in _FINAL}
    from topology.processor.outputs import case_id_for

    assert finals == {case_id_for(a) for a in planned}


def test_lag_monitor_as_sre_sees_every_group_caught_up(pipeline):
    report = pipeline.lag_report
    groups = {g.group: g for g in report.groups}
    for principal in (IDENTITY, POLICE, PAYMENT, PORTAL, province_principal(SUBSCRIBED)):
        assert PREFIX + topics.consumer_group(principal) in groups, sorted(groups)
    assert PREFIX + topics.CASE_PROCESSOR_APP_ID in groups
    behind = {g.group: g.total_lag for g in report.groups if g.total_lag}
    assert not behind, behind


@pytest.mark.parametrize("principal", [PORTAL, CLINIC])
def test_a_forged_issuance_is_refused_by_the_broker(pipeline, stack, principal):
    """Only the case processor may write issuance.requests: a forged IssuanceRequested from the portal's or a
    clinic's login is refused by the broker, raw (kafka-python) and through our SDK."""
    from kafka import KafkaProducer
    from kafka.errors import TopicAuthorizationFailedError

    from producers.errors import DeliveryError
    from producers.sdk import Publisher

    topic = CATALOGUE.name(topics.ISSUANCE_REQUESTS)
    approval = next(e for e in pipeline.plan.expected if e.outcome == "APPROVED")
    conn = stack.connection(principal)
    producer = KafkaProducer(**conn.kafka_python_kwargs(), max_block_ms=8000, retries=0)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(topic, key=approval.cccd.encode(), value=b"forged").get(timeout=10)
    finally:
        producer.close(timeout=5)
    real = pipeline.issuance_sample  # a real one (read as admin), re-addressed: well-formed, only not ours
    forged = real.model_copy(update={"event_id": str(uuid.uuid4()), "issuance_id": str(uuid.uuid4())})
    with Publisher(conn, stack.endpoints.schema_registry_url, catalogue=CATALOGUE) as publisher:
        with pytest.raises(DeliveryError, match="(?i)authori"):
            publisher.publish(forged)
    assert forged.issuance_id not in pipeline.portal_ids



def test_worker_log_shows_no_refusal_and_made_no_topic(pipeline, stack):
    """The worker (as User:case-processor, which may create no topic) ran on the changelogs `topics apply` made,
    created nothing else under its app id (no leader topic), and no authorization error is in its log."""
    assert not [line for line in pipeline.worker_log.splitlines() if "uthoriz" in line], "a refusal in the log"
    admin = topics_apply.connect(stack.admin)
    try:
        names = set(admin.list_topics())
    finally:
        admin.close()
    app_id = PREFIX + topics.CASE_PROCESSOR_APP_ID
    assert {name for name in names if name.startswith(app_id)} == {t.name for t in CATALOGUE.internal}


def test_the_province_subscriber_cannot_read_another_province(stack, pipeline):
    """Refused, and said so at once (kafka-python alone would wait for the topic forever, silently)."""
    from consumers.subscriber.consume import ProvinceSubscriber, TopicNotReadable

    other = next(code for code in PROVINCES if code != SUBSCRIBED)
    subscriber = ProvinceSubscriber(stack.connection(province_principal(SUBSCRIBED)),
                                    stack.endpoints.schema_registry_url, other, output=_Collect(),
                                    catalogue=CATALOGUE, group_id=PREFIX + f"province-{SUBSCRIBED}",
                                    from_beginning=True, connect_timeout_s=5)
    started = time.monotonic()
    with pytest.raises(TopicNotReadable, match=f"may not read it.*User:province-{other}"):
        subscriber.run(idle_timeout_s=10)
    assert time.monotonic() - started < 10
