"""The topic catalogue and the pure diff that applies it: no broker needed."""
from __future__ import annotations

from pathlib import Path

import pytest

from topology import catalogue as cat
from topology.apply import AddPartitions, AlterConfigs, CreateTopic, ObservedTopic, Plan, diff
from topology.catalogue import Catalogue


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.build(prefix="t.", replication_factor=1)


def observed_from(c: Catalogue) -> dict[str, ObservedTopic]:
    """The cluster state after a perfect apply of `c`."""
    return {t.name: ObservedTopic(t.name, t.partitions, t.replication_factor, dict(t.configs)) for t in c.managed}


# --- catalogue --------------------------------------------------------------------------------------------------
def test_one_cases_topic_per_current_province(catalogue):
    province_topics = [t for t in catalogue.names() if t.startswith("t.cases.province.")]
    assert len(province_topics) == 34 == len(catalogue.provinces)
    assert catalogue.province_topic("01") == "t.cases.province.01"
    assert catalogue.province_topic("79") == "t.cases.province.79"
    with pytest.raises(KeyError):
        catalogue.province_topic("02")  # Hà Giang merged into Tuyên Quang (08) on 1 Jul 2025


def test_every_topic_is_catalogued_once_and_keyed_by_cccd(catalogue):
    names = catalogue.names()
    assert len(names) == len(set(names)) == 14 + 34
    for base in (cat.HEALTH_EXAM_RESULTS, cat.PORTAL_APPLICATIONS, cat.PAYMENT_TRANSACTIONS, cat.IDENTITY_REQUESTS,
                 cat.IDENTITY_RESULTS, cat.POLICE_REQUESTS, cat.POLICE_LICENCE_STATUS, cat.CASES_EVENTS,
                 cat.ISSUANCE_REQUESTS, cat.PAYMENT_REFUND_REQUESTS, cat.DLQ, cat.CASES_CLOCK, cat.CASES_REROUTED):
        assert catalogue.name(base) == "t." + base
    assert {t.key for t in catalogue if t.name != "t." + cat.CLINICS_KEYS} == {"cccd"}
    assert catalogue.topic(cat.CLINICS_KEYS).key == "clinic_code/key_id"
    assert all(t.event_types and all(e.startswith("vn.gplx.") for e in t.event_types) for t in catalogue)


def test_co_partitioned_inputs_share_one_count():
    c = Catalogue.build(input_partitions=7, replication_factor=1)
    group = c.group(cat.CASE_INPUTS_GROUP)
    assert set(group.topics) == {cat.HEALTH_EXAM_RESULTS, cat.PORTAL_APPLICATIONS, cat.PAYMENT_TRANSACTIONS,
                                 cat.IDENTITY_RESULTS, cat.POLICE_LICENCE_STATUS, cat.CASES_CLOCK, cat.CASES_REROUTED,
                                 c.changelog(cat.CITIZENS_TABLE), c.changelog(cat.DEADLINES_TABLE)}
    assert {t.partitions for t in c.managed if t.name in group.topics} == {7}
    with pytest.raises(ValueError, match="co-partitioned"):
        Catalogue.build(partitions={cat.PORTAL_APPLICATIONS: 3}, replication_factor=1)
    with pytest.raises(ValueError, match="unknown topic"):
        Catalogue.build(partitions={"no.such.topic": 3}, replication_factor=1)


# Kafka's own test vectors for Utils.murmur2 (clients/src/test/.../UtilsTest.java, testMurmur2)
MURMUR2 = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
           b"a-little-bit-longer-string": -1486304829, b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
           b"abc": 479470107}


@pytest.mark.parametrize("key,java_hash", sorted(MURMUR2.items()))
def test_expected_partition_is_kafkas_murmur2(key, java_hash):
    """The processor's notion of "the right partition" must be the Java client's (and kafka-python's, aiokafka's,
    librdkafka's murmur2_random): toPositive(murmur2(key)) % partitions."""
    for partitions in (1, 4, 6, 12, 7):
        assert cat.expected_partition(key, partitions) == (java_hash & 0x7FFFFFFF) % partitions


def test_expected_partition_agrees_with_kafka_pythons_default_partitioner():
    from kafka.cluster import ClusterMetadata
    from kafka.partitioner.default import DefaultPartitioner

    class Cluster(ClusterMetadata):  # just enough metadata for the partitioner: one topic of 12 partitions
        def topics(self, exclude_internal_topics=True):
            return {"t"}

        def partitions_for_topic(self, topic):
            return set(range(12))

        def available_partitions_for_topic(self, topic):
            return set(range(12))

    partitioner, cluster = DefaultPartitioner(), Cluster()
    keys = [f"0010850{n:05d}".encode() for n in range(500)]
    assert [cat.expected_partition(k, 12) for k in keys] == [partitioner.partition("t", None, k, None, None, cluster)
                                                           for k in keys]
    assert len({cat.expected_partition(k, 12) for k in keys}) == 12


def test_replication_factor_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(cat.REPLICATION_FACTOR_ENV, "3")
    c = Catalogue.build()
    assert {t.replication_factor for t in c} == {3}
    assert {t.configs["min.insync.replicas"] for t in c} == {"2"}
    monkeypatch.delenv(cat.REPLICATION_FACTOR_ENV)
    assert {t.replication_factor for t in Catalogue.build()} == {1}
    monkeypatch.setenv(cat.REPLICATION_FACTOR_ENV, "three")
    with pytest.raises(ValueError, match="GPLX_REPLICATION_FACTOR"):
        Catalogue.build()


def test_every_topic_has_retention_or_compaction(catalogue):
    for t in catalogue:
        assert "cleanup.policy" in t.configs
        if "compact" not in t.configs["cleanup.policy"]:
            assert "retention.ms" in t.configs
    assert catalogue.topic(cat.CASES_EVENTS).configs["retention.ms"] == str(730 * DAY_MS)  # the audit stream


DAY_MS = 24 * 60 * 60 * 1000
README = Path(__file__).resolve().parents[2] / "README.md"


def test_no_topic_keeps_personal_data_forever_and_each_says_why(catalogue):
    """Storage limitation (Law 91/2025/QH15): every topic is keyed by a CCCD, so every topic holds personal data,
    says which, deletes it after a finite time (-1 is forever; a compact-only topic keeps each key's latest record
    forever) and says why that long."""
    for t in catalogue:
        assert t.personal_data, f"{t.name}: which personal data it holds is not said"
        if t.personal_data == "none":  # clinics.keys: public keys, compacted, kept as long as they may verify
            assert t.configs["cleanup.policy"] == "compact" and len(t.retention_why) > 20
            continue
        assert "delete" in t.configs["cleanup.policy"].split(","), f"{t.name} never deletes"
        retention_ms = int(t.configs["retention.ms"])
        assert 0 < retention_ms <= 730 * DAY_MS, f"{t.name}: retention.ms={retention_ms}"
        assert retention_ms % DAY_MS == 0 and len(t.retention_why) > 20, f"{t.name}: no reason for its retention"
    assert catalogue.topic(cat.DLQ).configs["retention.ms"] == str(14 * DAY_MS)  # original bytes: short


def test_the_readme_tables_every_topics_personal_data_and_retention(catalogue):
    """The README's "Personal data" table names each topic with the catalogue's retention, so the two agree."""
    section = README.read_text(encoding="utf-8").split("## Personal data", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 4:
            rows[cells[0].strip("`")] = cells
    for t in catalogue:
        base = t.name.removeprefix(catalogue.prefix)
        base = "cases.province.<code>" if base.startswith(cat.CASES_PROVINCE_PREFIX) else base
        assert base in rows, f"{base} is not in the README's Personal data table"
        if "retention.ms" not in t.configs:
            assert rows[base][2] == "compacted", f"{base}: README says {rows[base][2]!r}, the catalogue compacted"
            continue
        days = int(t.configs["retention.ms"]) // DAY_MS
        assert rows[base][2] == f"{days} day{'s' * (days != 1)}", f"{base}: README says {rows[base][2]!r}, the catalogue {days} days"
        assert rows[base][1] and rows[base][3], f"{base}: the README does not say what it holds or why"


def _topic_acls(catalogue, principal):
    return {(a.resource_name, a.operation) for a in catalogue.acls_for(principal) if a.resource_type == "TOPIC"}


def test_each_province_reads_only_its_own_topic(catalogue):
    for province in catalogue.provinces:
        acls = _topic_acls(catalogue, cat.province_principal(province.code))
        assert acls == {(catalogue.province_topic(province.code), "READ")}


def test_clinics_write_only_exam_results(catalogue):
    assert _topic_acls(catalogue, cat.CLINIC) == {("t.health.exam-results", "WRITE")}


def test_the_gateway_writes_only_exam_results_and_reads_them_and_the_keys(catalogue):
    assert _topic_acls(catalogue, cat.GATEWAY) == {("t.health.exam-results", "WRITE"),
                                                   ("t.health.exam-results", "READ"), ("t.clinics.keys", "READ")}
    assert _topic_acls(catalogue, cat.KEY_OPERATOR) == {("t.clinics.keys", "WRITE")}


@pytest.mark.parametrize("principal, expected", [
    # the portal's issuance sink also reports failed deliveries on the case topics and dead-letters to the DLQ
    (cat.PORTAL, {("t.portal.applications", "WRITE"), ("t.issuance.requests", "READ"), ("t.cases.events", "WRITE"),
                  ("t.dlq", "WRITE")} | {(f"t.cases.province.{p.code}", "WRITE")
                                         for p in Catalogue.build(replication_factor=1).provinces}),
    # the adapters dead-letter requests they cannot decode or answer (consumers.loop)
    (cat.IDENTITY, {("t.identity.requests", "READ"), ("t.identity.results", "WRITE"), ("t.dlq", "WRITE")}),
    (cat.POLICE, {("t.police.requests", "READ"), ("t.police.licence-status", "WRITE"), ("t.dlq", "WRITE")}),
    (cat.PAYMENT, {("t.payment.transactions", "WRITE"), ("t.payment.refund-requests", "READ"),
                   ("t.dlq", "WRITE")}),
])
def test_source_systems_touch_only_their_topics(catalogue, principal, expected):
    assert _topic_acls(catalogue, principal) == expected


def test_case_processor_reads_inputs_and_writes_outputs(catalogue):
    acls = _topic_acls(catalogue, cat.CASE_PROCESSOR)
    reads = {n for n, op in acls if op == "READ"}
    writes = {n for n, op in acls if op == "WRITE"}
    assert reads == set(catalogue.group(cat.CASE_INPUTS_GROUP).topics) | {"t.clinics.keys"}  # verifies signatures
    assert writes >= {catalogue.province_topic(p.code) for p in catalogue.provinces}
    assert writes >= {"t.cases.events", "t.identity.requests", "t.police.requests", "t.issuance.requests",
                      "t.payment.refund-requests", "t.dlq"}
    # the processor both writes and reads its clock (its timer, its agent), the records it forwards to the
    # partition of their citizen (see test_expected_partition_is_kafkas_murmur2) and its tables' changelogs
    assert reads & writes == {"t.cases.clock", "t.cases.rerouted", *(t.name for t in catalogue.internal)}


def test_sre_sees_metadata_not_payloads(catalogue):
    acls = catalogue.acls_for(cat.SRE)
    reads = {a.resource_name for a in acls if a.resource_type == "TOPIC" and a.operation == "READ"}
    assert reads == {"t.dlq"}
    assert {(a.operation, a.pattern_type, a.resource_name) for a in acls if a.resource_type == "TOPIC"} >= {
        ("DESCRIBE", "PREFIXED", "t."), ("DESCRIBE_CONFIGS", "PREFIXED", "t.")}


# --- the pure diff ----------------------------------------------------------------------------------------------
def test_empty_cluster_creates_everything(catalogue):
    plan = diff(catalogue, {})
    assert [type(c) for c in plan.changes] == [CreateTopic] * len(catalogue.managed)
    assert not plan.refusals


def test_diff_is_idempotent(catalogue):
    plan = diff(catalogue, observed_from(catalogue))
    assert plan.is_empty
    assert plan.lines() == [f"nothing to change ({len(catalogue.managed)} topics match the catalogue)"]


def test_changed_config_is_altered(catalogue):
    seen = observed_from(catalogue)
    dlq = seen["t.dlq"]
    seen["t.dlq"] = ObservedTopic(dlq.name, dlq.partitions, dlq.replication_factor,
                                  {**dlq.configs, "retention.ms": "1000"})
    plan = diff(catalogue, seen)
    assert plan.changes == (AlterConfigs("t.dlq", {"retention.ms": ("1000", catalogue.topic("dlq").configs[
        "retention.ms"])}),)
    assert "retention.ms: 1000 ->" in plan.lines()[0]


def test_more_partitions_outside_a_group_are_added(catalogue):
    bigger = Catalogue.build(prefix="t.", replication_factor=1, partitions={cat.DLQ: 6})
    plan = diff(bigger, observed_from(catalogue))
    assert plan.changes == (AddPartitions("t.dlq", 3, 6),) and not plan.refusals


def test_fewer_partitions_refused(catalogue):
    smaller = Catalogue.build(prefix="t.", replication_factor=1, partitions={cat.DLQ: 1})
    plan = diff(smaller, observed_from(catalogue))
    assert not plan.changes
    [refusal] = plan.refusals
    assert refusal.topic == "t.dlq" and "cannot remove partitions" in refusal.reason


@pytest.mark.parametrize("new_count", [6, 24])
def test_co_partition_count_change_refused_both_ways(catalogue, new_count):
    other = Catalogue.build(prefix="t.", replication_factor=1, input_partitions=new_count)
    plan = diff(other, observed_from(catalogue))
    assert not plan.changes
    assert {r.topic for r in plan.refusals} == set(catalogue.group(cat.CASE_INPUTS_GROUP).topics)
    assert all("cccd->partition" in r.reason for r in plan.refusals)


def test_missing_member_of_a_broken_group_is_not_created(catalogue):
    seen = observed_from(catalogue)
    del seen["t.portal.applications"]
    other = Catalogue.build(prefix="t.", replication_factor=1, input_partitions=6)
    plan = diff(other, seen)
    assert not any(isinstance(c, CreateTopic) for c in plan.changes)
    held = next(r for r in plan.refusals if r.topic == "t.portal.applications")
    assert "held back" in held.reason


def test_replication_factor_change_refused(catalogue):
    three = Catalogue.build(prefix="t.", replication_factor=3)
    plan = diff(three, observed_from(catalogue))
    assert len(plan.refusals) == len(catalogue.managed)
    assert all("reassignment" in r.reason for r in plan.refusals)
    # min.insync.replicas follows the replication factor; that config change alone would be allowed
    assert all(isinstance(c, AlterConfigs) and set(c.changes) == {"min.insync.replicas"} for c in plan.changes)


def test_unknown_topics_on_the_cluster_are_left_alone(catalogue):
    seen = observed_from(catalogue)
    seen["someone.else"] = ObservedTopic("someone.else", 1, 1, {})
    assert diff(catalogue, seen).is_empty


def test_plan_lines_name_every_change_and_refusal(catalogue):
    plan = Plan()
    assert plan.is_empty
    plan = diff(Catalogue.build(prefix="t.", replication_factor=1, partitions={cat.DLQ: 1}), {})
    assert len(plan.lines()) == len(catalogue.managed)
    assert all(line.startswith("+ create ") for line in plan.lines())


def test_internal_topics_are_the_ones_faust_would_create(tmp_path):
    """The worker may not create topics (topic_allow_declare=False): `topics apply` must create exactly the names
    and partition counts faust uses for its tables' changelogs."""
    from topology.processor.app import create_app
    from topology.processor.settings import ProcessorSettings

    settings = ProcessorSettings.from_env({"GPLX_TOPIC_PREFIX": "p.", "GPLX_STORE": "memory://",
                                           "GPLX_DATADIR": str(tmp_path), "GPLX_INPUT_PARTITIONS": "6"})
    app = create_app(settings)
    c = Catalogue.build(prefix="p.", input_partitions=6, replication_factor=1)
    assert app.conf.topic_allow_declare is False
    assert app.conf.topic_disable_leader is True
    faust_topics = {t.changelog_topic.get_topic_name(): t.partitions for t in app.tables.values()}
    assert {t.name: t.partitions for t in c.internal} == faust_topics
    assert {t.name for t in c.internal} <= {t.name for t in c.managed} and not {t.name for t in c.internal} & set(c.names())
