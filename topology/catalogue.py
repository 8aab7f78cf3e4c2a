"""The topic catalogue: every topic of the bus, declared once, as data.

Why one declarative catalogue: the topics' partition counts, retention, event types and the principals allowed
to touch them are one contract. `topology.apply` makes a cluster match it, producers and consumers look names up
in it, and the ACLs are derived from it, so nobody hand-types "cases.province.01" or an ACL that drifts.

Rules of thumb encoded here:
- every topic is keyed by the citizen id (cccd);
- the five source topics the case processor joins form ONE co-partition group with ONE partition count, so the
  same cccd lands on the same partition number everywhere and one worker owns all facts about one citizen;
- "the same partition" means Kafka's default (Java) partitioner, murmur2 of the key (`expected_partition`).
  Producers that partition otherwise (librdkafka's default: confluent-kafka, kcat, Go, .NET) put a record on
  another partition; the case processor forwards it to the right one through `cases.rerouted`, never drops it;
- one `cases.province.<code>` topic per CURRENT province (34 since 1 Jul 2025), each readable only by that
  province's principal.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Iterable, Iterator, Mapping

from topology.connection import environment
from topology.errors import SettingsError

# --- topic base names (without prefix) --------------------------------------------------------------------------
HEALTH_EXAM_RESULTS = "health.exam-results"
PORTAL_APPLICATIONS = "portal.applications"
PAYMENT_TRANSACTIONS = "payment.transactions"
IDENTITY_REQUESTS = "identity.requests"
IDENTITY_RESULTS = "identity.results"
POLICE_REQUESTS = "police.requests"
POLICE_LICENCE_STATUS = "police.licence-status"
CASES_EVENTS = "cases.events"
CASES_CLOCK = "cases.clock"
CASES_REROUTED = "cases.rerouted"
CASES_PROVINCE_PREFIX = "cases.province."
ISSUANCE_REQUESTS = "issuance.requests"
PAYMENT_REFUND_REQUESTS = "payment.refund-requests"
DLQ = "dlq"
CLINICS_KEYS = "clinics.keys"

#: The co-partition group of the case processor's inputs (the join is a table keyed by cccd over these).
CASE_INPUTS_GROUP = "case-inputs"

#: Environment variable giving the default replication factor: 1 on a single local broker, 3 in production.
REPLICATION_FACTOR_ENV = "GPLX_REPLICATION_FACTOR"

#: The consumer group / faust app id of the case processor; its internal topics start with this id.
CASE_PROCESSOR_APP_ID = "gplx-case-processor"
#: The case processor's faust tables (topology/processor/app.py); each has a changelog topic named by faust,
#: `<app id>-<table>-changelog`, declared here with faust's leader topic (`Catalogue.internal`).
CITIZENS_TABLE = "citizens"
DEADLINES_TABLE = "deadlines"

# --- principals -------------------------------------------------------------------------------------------------
PORTAL = "User:portal"
CLINIC = "User:clinic"
IDENTITY = "User:identity"
POLICE = "User:police"
PAYMENT = "User:payment"
CASE_PROCESSOR = "User:case-processor"
SRE = "User:sre"
#: The lag exporter counts cases by state from the audit stream (payloads carry CCCDs: a principal of its own).
LAG_EXPORTER = "User:lag-exporter"
#: The case store (consumers/casestore) materializes the audit stream into a database for the status API; its
#: offsets live in that database, its group `case-store` only mirrors them for `gplx-bus lag`.
CASE_STORE = "User:case-store"
#: The HTTPS clinic gateway (`gplx-bus clinic serve`): writes health certificates only; reads them back (its
#: idempotency index is rebuilt from the topic at start) and reads the clinic keys.
GATEWAY = "User:gateway"
#: Operators' principal for `gplx-bus clinic keys add|revoke` (the only writer of clinics.keys).
KEY_OPERATOR = "User:operator"


_MURMUR2_M = 0x5BD1E995
_BLOCKS = struct.Struct("<I")


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), unsigned: the same value as kafka-python's
    `kafka.partitioner.default.murmur2`, about 3x cheaper (blocks unpacked at once, not byte by byte). The
    producer SDK's partitioner and the processor's partition check hash every record with it."""
    length = len(data)
    h = 0x9747B28C ^ length
    end = length & ~3
    for (k,) in _BLOCKS.iter_unpack(data[:end]):
        k = (k * _MURMUR2_M) & 0xFFFFFFFF
        k = ((k ^ (k >> 24)) * _MURMUR2_M) & 0xFFFFFFFF
        h = ((h * _MURMUR2_M) & 0xFFFFFFFF) ^ k
    rest = length - end
    if rest:
        if rest == 3:
            h ^= data[end + 2] << 16
        if rest >= 2:
            h ^= data[end + 1] << 8
        h = ((h ^ data[end]) * _MURMUR2_M) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * _MURMUR2_M) & 0xFFFFFFFF
    return h ^ (h >> 15)


def expected_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default (Java) partitioner picks for `key`: positive murmur2 modulo the count.
    Co-partitioning relies on it: every record of one citizen, on every input topic, lands on this number."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def province_principal(code: str) -> str:
    """The principal of one province's transport/police office (reads only its own cases topic)."""
    return f"User:province-{code}"


# --- retention: storage limitation --------------------------------------------------------------------------------
# Every topic is keyed by a CCCD and most carry names, phones, addresses or health data: personal data under Law
# 91/2025/QH15 (Decree 13/2023 before it), which allows keeping it only as long as the purpose needs. So no topic
# keeps anything forever; each period below is the longest need of the topic's readers, with that need written
# next to it (it is also each topic's `retention_why`, and the README's "Personal data" table).
_DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class Retention:
    """How long a topic keeps records (`retention.ms`), and why that long (the purpose that needs it)."""

    days: int
    why: str

    @property
    def ms(self) -> int:
        return self.days * _DAY_MS


#: A health certificate is valid 12 months and usually arrives before the application, which may come up to a
#: year later: a replay of the inputs over that year must rebuild the case table. A month of margin; after 400
#: days no source record can change a decision any more.
SOURCE_RETENTION = Retention(400, "a health certificate is valid 12 months and is joined to an application "
                                  "that may come a year later; replaying a year of inputs rebuilds the cases")
#: Requests to identity/police are re-asked on timeout, so a week covers any adapter outage.
REQUEST_RETENTION = Retention(7, "an unanswered request is asked again; a week covers an adapter outage")
#: Clock ticks matter only until the processor has read them (minutes); a day covers a worker outage.
CLOCK_RETENTION = Retention(1, "a tick matters only until the processor reads it; a day covers a worker outage")
#: The audit stream: every decision must stay explainable while it can still be contested. A citizen may complain
#: within 90 days of a decision (Law on Complaints 2011, Art. 9) and sue within 1 year (Law on Administrative
#: Procedure 2015, Art. 116); audits look at the previous year. Two years covers both with the case's own weeks.
#: A case still contested after that must be exported into its complaint file (no tool yet); the licence itself
#: lives in the police database, so the bus need not be the archive beyond that.
AUDIT_RETENTION = Retention(730, "complaints within 90 days and lawsuits within 1 year of a decision "
                                 "(Law on Complaints Art. 9, Law on Administrative Procedure Art. 116), "
                                 "and the yearly audit of the previous year")
#: A province works its escalated cases by hand within weeks; 180 days covers that plus the 90-day complaint
#: window. The history stays in cases.events, and the province keeps its own records of what it handled.
PROVINCE_RETENTION = Retention(180, "the province's manual handling of escalated cases plus the 90-day "
                                    "complaint window; the full history is in cases.events")
#: Issuance requests must survive a long outage of the portal (the sink retries; delivery is idempotent).
HANDOFF_RETENTION = Retention(30, "an issuance must survive a long outage of the portal")
#: Refunds: the gateway's monthly reconciliation and a disputed refund must still find the request.
REFUND_RETENTION = Retention(90, "the payment gateway's monthly reconciliation and disputed refunds")
#: Dead letters hold the original bytes (all of an input's personal data, health data included) and are read by
#: the operator alone: short. Two weeks to triage and replay, even across the Tết holiday (up to 9 days off).
#: clinics.keys has no personal data and is compacted without a time limit.
KEYS_RETENTION = ("compacted, no time limit: a clinic's keys (active or revoked) must outlive every certificate "
                  "they signed and every replay of the sources; only each key's latest state is kept")
DLQ_RETENTION = Retention(14, "triage and replay by the operator, even across the Tết holiday; "
                              "holds the original bytes of poison input")


def _delete(retention: Retention) -> dict[str, str]:
    return {"cleanup.policy": "delete", "retention.ms": str(retention.ms)}


# --- data classes -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Province:
    code: str
    name: str


@dataclass(frozen=True)
class CoPartitionGroup:
    """Topics that must always have the same partition count (declared once, here)."""

    name: str
    partitions: int
    topics: tuple[str, ...]  # full names (with prefix)


@dataclass(frozen=True)
class TopicSpec:
    """Desired state of one topic. `configs` holds only the keys we manage; others are left to the broker."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]
    event_types: tuple[str, ...]
    writers: frozenset[str]
    readers: frozenset[str]
    key: str = "cccd"
    co_partition_group: str | None = None
    description: str = ""
    #: The personal data its records hold ("" if none), and why its retention is as long as it is.
    personal_data: str = ""
    retention_why: str = ""


@dataclass(frozen=True)
class AclBinding:
    """One Kafka ACL as data (ALLOW only: everything not granted is denied by the authorizer)."""

    principal: str
    resource_type: str  # "TOPIC" | "GROUP"
    resource_name: str
    pattern_type: str  # "LITERAL" | "PREFIXED"
    operation: str  # "READ" | "WRITE" | "DESCRIBE" | "DESCRIBE_CONFIGS" | "CREATE" | "ALL"
    permission: str = "ALLOW"
    host: str = "*"


def load_current_provinces() -> tuple[Province, ...]:
    """The 34 current provinces, copied into topology/data from the reference provinces.csv."""
    text = resources.files("topology").joinpath("data/provinces-current.json").read_text(encoding="utf-8")
    return tuple(Province(p["code"], p["name"]) for p in json.loads(text)["provinces"])


def default_replication_factor() -> int:
    """Replication factor from GPLX_REPLICATION_FACTOR (default 1: the single local broker)."""
    raw = environment().get(REPLICATION_FACTOR_ENV, "1")
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{REPLICATION_FACTOR_ENV}={raw!r} is not an integer (use 1 locally, 3 in production)")
    if value < 1:
        raise SettingsError(f"{REPLICATION_FACTOR_ENV}={value} must be at least 1")
    return value


def min_insync_for(replication_factor: int) -> int:
    """min.insync.replicas: 2 when there are 3+ replicas (acks=all survives one broker down), else 1."""
    return 2 if replication_factor >= 3 else 1


@dataclass(frozen=True)
class Catalogue:
    """All topics and co-partition groups of one deployment (optionally under a name prefix, e.g. for tests)."""

    prefix: str
    topics: tuple[TopicSpec, ...]
    groups: tuple[CoPartitionGroup, ...]
    provinces: tuple[Province, ...]
    #: The case processor's own topics (its faust tables' changelogs): not part of
    #: the published contract (no events, no other reader), but created by `topics apply` like the others, so that
    #: no worker creates them itself (faust may not: `topic_allow_declare=False`). Two workers starting together
    #: raced to create them, and one then saw a changelog with "0 partitions" and stopped processing.
    internal: tuple[TopicSpec, ...] = ()
    _by_name: Mapping[str, TopicSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", MappingProxyType({t.name: t for t in self.topics}))

    # -- construction --------------------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        *,
        prefix: str = "",
        replication_factor: int | None = None,
        input_partitions: int = 12,
        partitions: Mapping[str, int] | None = None,
        provinces: Iterable[Province] | None = None,
    ) -> "Catalogue":
        """Build the catalogue.

        `replication_factor` defaults to GPLX_REPLICATION_FACTOR. `input_partitions` is the ONE count of the
        co-partitioned inputs (12 divides evenly among 1, 2, 3, 4 or 6 workers). `partitions` overrides the count of
        other topics by base name (e.g. {"dlq": 1}); it may not name a co-partitioned input. `prefix` is put in
        front of every topic name so tests and parallel environments do not collide.
        """
        rf = default_replication_factor() if replication_factor is None else replication_factor
        if rf < 1 or input_partitions < 1:
            raise SettingsError("replication factor and partition counts must be at least 1")
        overrides = dict(partitions or {})
        provs = tuple(provinces) if provinces is not None else load_current_provinces()
        # an out-of-sync replica never becomes leader: it could lack records already acknowledged with acks=all
        base = {"min.insync.replicas": str(min_insync_for(rf)), "unclean.leader.election.enable": "false"}
        p = prefix

        def spec(name: str, count: int, retention: Retention, events: Iterable[str], writers: Iterable[str],
                 readers: Iterable[str], description: str, group: str | None = None, *, personal: str,
                 configs: Mapping[str, str] | None = None) -> TopicSpec:
            if group is None:
                count = overrides.pop(name, count)
            elif name in overrides:
                raise SettingsError(f"{name} is co-partitioned: change input_partitions, not its own count")
            return TopicSpec(
                name=p + name, partitions=count, replication_factor=rf,
                configs=MappingProxyType({**base, **_delete(retention), **(configs or {})}),
                event_types=tuple(events), writers=frozenset(writers), readers=frozenset(readers),
                co_partition_group=group, description=description, personal_data=personal,
                retention_why=retention.why,
            )

        inputs = CASE_INPUTS_GROUP
        src = SOURCE_RETENTION
        topics = [
            spec(HEALTH_EXAM_RESULTS, input_partitions, src, ["vn.gplx.clinics.HealthCertificate"],
                 [CLINIC, GATEWAY], [CASE_PROCESSOR, GATEWAY], "Health certificates from clinics (ADD/EDIT/REVOKE).",
                 inputs,
                 personal="CCCD; health data: health group, doctor's conclusions (sensitive)"),
            spec(PORTAL_APPLICATIONS, input_partitions, src,
                 ["vn.gplx.portal.ApplicationSubmitted", "vn.gplx.portal.ApplicationWithdrawn"],
                 [PORTAL], [CASE_PROCESSOR], "Renewal applications from the national portal.", inputs,
                 personal="CCCD, full name, date of birth, phone, licence number, address"),
            spec(PAYMENT_TRANSACTIONS, input_partitions, src, ["vn.gplx.payment.PaymentTransaction"],
                 [PAYMENT], [CASE_PROCESSOR], "Fee paid / failed / refunded, from the payment gateway.", inputs,
                 personal="CCCD, payments"),
            spec(IDENTITY_RESULTS, input_partitions, src, ["vn.gplx.identity.IdentityCheckResult"],
                 [IDENTITY], [CASE_PROCESSOR], "Answers of the population database (VNeID).", inputs,
                 personal="CCCD, full name, date of birth, sex from the CCCD record"),
            spec(POLICE_LICENCE_STATUS, input_partitions, src, ["vn.gplx.police.LicenceStatus"],
                 [POLICE], [CASE_PROCESSOR], "Answers of the police licence and violation database.", inputs,
                 personal="CCCD, licence number and classes, revocation, violations, points"),
            # The processor's own clock: ticks keyed by cccd move a case past its 2- and 5-working-day deadlines
            # through the same stream as its facts (a table may only be changed from the stream).
            spec(CASES_CLOCK, input_partitions, CLOCK_RETENTION, ["vn.gplx.processor.ClockTick"],
                 [CASE_PROCESSOR], [CASE_PROCESSOR], "Clock ticks for cases whose deadline passed.", inputs,
                 personal="CCCD"),
            # Input records a producer put on another partition than expected_partition(cccd) (librdkafka's default
            # partitioner is CRC32, not murmur2): the processor forwards them here, same key, value bytes and
            # headers, to the partition of their citizen, and reads them back with the other inputs. Kept as long
            # as the sources: a replay of the inputs must find them too.
            spec(CASES_REROUTED, input_partitions, src, _CASE_INPUT_EVENTS, [CASE_PROCESSOR], [CASE_PROCESSOR],
                 "Input records that arrived on the wrong partition, forwarded to their citizen's partition "
                 "by the case processor.", inputs,
                 personal="any input's: CCCD, name, phone, health data"),
            spec(IDENTITY_REQUESTS, 6, REQUEST_RETENTION, ["vn.gplx.identity.IdentityCheckRequested"],
                 [CASE_PROCESSOR], [IDENTITY], "Identity checks the case processor asks for.",
                 personal="CCCD, full name, date of birth, phone"),
            spec(POLICE_REQUESTS, 6, REQUEST_RETENTION, ["vn.gplx.police.LicenceLookupRequested"],
                 [CASE_PROCESSOR], [POLICE], "Licence look-ups the case processor asks for.",
                 personal="CCCD, licence number"),
            # The audit stream: every decision stays explainable while it can be contested (AUDIT_RETENTION).
            # The portal's issuance sink (consumers/portal, running as User:portal) writes IssuanceDeliveryFailed
            # here and to the province topic, and dead-letters what it cannot deliver.
            spec(CASES_EVENTS, 12, AUDIT_RETENTION, _CASE_EVENTS,
                 [CASE_PROCESSOR, PORTAL], [LAG_EXPORTER, CASE_STORE], "Every case event: the full audit stream.",
                 personal="CCCD, province, classes, decision reasons (UNFIT etc. reveal health data)"),
            spec(ISSUANCE_REQUESTS, 6, HANDOFF_RETENTION, ["vn.gplx.cases.IssuanceRequested"],
                 [CASE_PROCESSOR], [PORTAL], "Approved cases for the national portal to print and publish.",
                 personal="CCCD, full name, date of birth, sex, licence number, postal address"),
            spec(PAYMENT_REFUND_REQUESTS, 3, REFUND_RETENTION, ["vn.gplx.payment.RefundRequested"],
                 [CASE_PROCESSOR], [PAYMENT], "Refunds owed for paid cases that were rejected or withdrawn.",
                 personal="CCCD, payments, decision reasons"),
            spec(DLQ, 3, DLQ_RETENTION, ["vn.gplx.dlq.DeadLetter"],
                 [CASE_PROCESSOR, PORTAL, IDENTITY, POLICE, PAYMENT], [SRE],
                 "Poison input with the reason and the original bytes.",
                 personal="any input's, in the original bytes: CCCD, name, phone, health data"),
        ]
        # Compacted only, no retention: no personal data, and a key must outlive every certificate it signed.
        topics.append(TopicSpec(
            name=p + CLINICS_KEYS, partitions=1, replication_factor=rf,
            configs=MappingProxyType({**base, "cleanup.policy": "compact"}),
            event_types=("vn.gplx.clinics.ClinicKey",), writers=frozenset([KEY_OPERATOR]),
            readers=frozenset([CASE_PROCESSOR, GATEWAY]), key="clinic_code/key_id",
            description="Clinic public keys, each key's latest state (active or revoked), against which every "
                        "consumer verifies signed health certificates.",
            personal_data="none", retention_why=KEYS_RETENTION))
        for province in provs:
            # Compacted: the province's work queue is the latest state of each citizen's case; the full history
            # is in cases.events. delete too, so a closed case leaves the topic after PROVINCE_RETENTION.
            topics.append(spec(
                CASES_PROVINCE_PREFIX + province.code, 3, PROVINCE_RETENTION,
                _CASE_EVENTS, [CASE_PROCESSOR, PORTAL], [province_principal(province.code)],
                f"Cases of {province.name} (province code {province.code}).",
                personal="CCCD, classes, decision reasons (as cases.events)",
                configs={"cleanup.policy": "compact,delete", "min.compaction.lag.ms": str(_DAY_MS)},
            ))
        if overrides:
            raise SettingsError(f"unknown topic(s) in partitions override: {', '.join(sorted(overrides))}")
        internal = _processor_topics(p, rf, input_partitions, base)
        group = CoPartitionGroup(  # a changelog must have its table's partitions: faust refuses it otherwise
            name=inputs, partitions=input_partitions,
            topics=tuple(t.name for t in (*topics, *internal) if t.co_partition_group == inputs),
        )
        return cls(prefix=prefix, topics=tuple(topics), groups=(group,), provinces=provs, internal=internal)

    # -- look-ups ------------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[TopicSpec]:
        return iter(self.topics)

    def __len__(self) -> int:
        return len(self.topics)

    def topic(self, base_name: str) -> TopicSpec:
        """The spec of a topic by its base name (without prefix), e.g. catalogue.topic("dlq")."""
        try:
            return self._by_name[self.prefix + base_name]
        except KeyError:
            raise KeyError(f"no topic {base_name!r} in the catalogue") from None

    def name(self, base_name: str) -> str:
        """Full topic name (with prefix) of a base name; raises KeyError if the topic is not catalogued."""
        return self.topic(base_name).name

    def province_topic(self, code: str) -> str:
        """Full name of the cases topic of a CURRENT province code (e.g. "01")."""
        return self.name(CASES_PROVINCE_PREFIX + code)

    def group(self, name: str) -> CoPartitionGroup:
        return next(g for g in self.groups if g.name == name)

    def names(self) -> list[str]:
        return [t.name for t in self.topics]

    @property
    def managed(self) -> tuple[TopicSpec, ...]:
        """Every topic `topics apply` creates and keeps as declared: the published ones and the internal ones."""
        return self.topics + self.internal

    def changelog(self, table: str) -> str:
        """The full name of the changelog topic of one of the case processor's tables."""
        return f"{self.prefix}{CASE_PROCESSOR_APP_ID}-{table}-changelog"

    # -- ACLs ----------------------------------------------------------------------------------------------------
    def acls(self) -> list[AclBinding]:
        """The ACL bindings the catalogue implies, sorted and without duplicates.

        Derived from each topic's writers/readers (the internal topics' too: the case processor reads and writes
        its changelogs but creates no topic, `topics apply` does), plus: each reader gets its consumer group, the
        case processor its faust app id's groups, and the SRE principal may describe every topic and its configs
        (metadata only, no payloads, since payloads carry PII) and read the DLQ.
        """
        out: set[AclBinding] = set()
        for t in self.managed:
            for w in t.writers:
                out.add(AclBinding(w, "TOPIC", t.name, "LITERAL", "WRITE"))
            for r in t.readers:
                out.add(AclBinding(r, "TOPIC", t.name, "LITERAL", "READ"))
        for principal in sorted({r for t in self.topics for r in t.readers}):
            out.add(AclBinding(principal, "GROUP", self.prefix + consumer_group(principal), "LITERAL", "READ"))
        out.add(AclBinding(CASE_PROCESSOR, "GROUP", self.prefix + CASE_PROCESSOR_APP_ID, "PREFIXED", "ALL"))
        for op in ("DESCRIBE", "DESCRIBE_CONFIGS"):
            out.add(AclBinding(SRE, "TOPIC", self.prefix or "*", "PREFIXED" if self.prefix else "LITERAL", op))
        out.add(AclBinding(SRE, "GROUP", self.prefix or "*", "PREFIXED" if self.prefix else "LITERAL", "DESCRIBE"))
        return sorted(out, key=lambda a: (a.principal, a.resource_type, a.resource_name, a.operation))

    def acls_for(self, principal: str) -> list[AclBinding]:
        return [a for a in self.acls() if a.principal == principal]


def _processor_topics(prefix: str, rf: int, partitions: int, base: Mapping[str, str]) -> tuple[TopicSpec, ...]:
    """The case processor's internal topics, as faust would have created them: compacted changelogs with their
    tables' partitions. (No leader topic: the worker runs without faust's leader election.)"""
    app = prefix + CASE_PROCESSOR_APP_ID
    compact = MappingProxyType({**base, "cleanup.policy": "compact"})
    writer = frozenset([CASE_PROCESSOR])
    state = ("compacted, no time limit: the latest value of each key is the table's state, restored from here "
             "when a worker takes over a partition")
    return (
        TopicSpec(name=f"{app}-{CITIZENS_TABLE}-changelog", partitions=partitions, replication_factor=rf,
                  configs=compact, event_types=(), writers=writer, readers=writer,
                  co_partition_group=CASE_INPUTS_GROUP,
                  description="Changelog of the case processor's citizens table (faust; JSON states).",
                  personal_data="CCCD, name, date of birth, phone, licence, health certificates, payments",
                  retention_why=state),
        TopicSpec(name=f"{app}-{DEADLINES_TABLE}-changelog", partitions=partitions, replication_factor=rf,
                  configs=compact, event_types=(), writers=writer, readers=writer, key="partition/hour",
                  co_partition_group=CASE_INPUTS_GROUP,
                  description="Changelog of the case processor's deadline index (faust; deadlines.py).",
                  personal_data="CCCD", retention_why=state),
    )


def consumer_group(principal: str) -> str:
    """The consumer group a principal reads with: its user name (e.g. User:province-01 -> "province-01")."""
    if principal == CASE_PROCESSOR:
        return CASE_PROCESSOR_APP_ID
    return principal.split(":", 1)[1]


#: Every event type of the case processor's inputs (the rerouted topic may carry any of them).
_CASE_INPUT_EVENTS = (
    "vn.gplx.clinics.HealthCertificate",
    "vn.gplx.portal.ApplicationSubmitted",
    "vn.gplx.portal.ApplicationWithdrawn",
    "vn.gplx.payment.PaymentTransaction",
    "vn.gplx.identity.IdentityCheckResult",
    "vn.gplx.police.LicenceStatus",
    "vn.gplx.processor.ClockTick",
)

_CASE_EVENTS = (
    "vn.gplx.cases.CaseOpened",
    "vn.gplx.cases.CaseAwaiting",
    "vn.gplx.cases.CaseApproved",
    "vn.gplx.cases.CaseRejected",
    "vn.gplx.cases.CaseEscalated",
    "vn.gplx.cases.IssuanceDeliveryFailed",
)
