"""Make a Kafka cluster match the topic catalogue: observe, diff, apply.

Why three steps: the diff (`diff`) is a pure function of the catalogue and the observed state, so every rule
about what is safe is unit-tested without a broker; `observe` and `apply` are the only I/O. Running it twice is
harmless: the second plan is empty ("nothing to change").

Refused on purpose (a human must decide, with a migration plan):
- fewer partitions than exist: Kafka cannot shrink a topic;
- a different count for a co-partitioned input: cccd -> partition would no longer be the same on every input, and
  the join (one worker owns all facts of one citizen) would silently break;
- a different replication factor: that needs a partition reassignment, not a config change.
Adding partitions to a topic outside a co-partition group is allowed (new records of a key may land on another
partition from then on; the diff says so).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Mapping

from topology.catalogue import Catalogue, TopicSpec
from topology.connection import Connection
from topology.diagnose import cannot_reach, refuse_unreachable
from topology.errors import TopologyError  # noqa: F401 - defined there, imported here as before
from topology.kafka_python import new_client


# --- observed state ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObservedTopic:
    """What the cluster says about one topic: partition count, replication factor, effective config values."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]


# --- plan -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CreateTopic:
    spec: TopicSpec

    def describe(self) -> str:
        cfg = ", ".join(f"{k}={v}" for k, v in sorted(self.spec.configs.items()))
        return (f"+ create {self.spec.name} partitions={self.spec.partitions} "
                f"replication={self.spec.replication_factor} {cfg}")


@dataclass(frozen=True)
class AlterConfigs:
    topic: str
    changes: Mapping[str, tuple[str | None, str]]  # key -> (current, desired)

    def describe(self) -> str:
        diff = ", ".join(f"{k}: {old} -> {new}" for k, (old, new) in sorted(self.changes.items()))
        return f"~ configs {self.topic}: {diff}"


@dataclass(frozen=True)
class AddPartitions:
    topic: str
    current: int
    desired: int

    def describe(self) -> str:
        return (f"~ partitions {self.topic}: {self.current} -> {self.desired} "
                f"(new records of a key may go to another partition from now on)")


@dataclass(frozen=True)
class Refusal:
    topic: str
    reason: str

    def describe(self) -> str:
        return f"! refused {self.topic}: {self.reason}"


Change = CreateTopic | AlterConfigs | AddPartitions


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    unchanged: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_empty(self) -> bool:
        """True when the cluster already matches the catalogue (no change, no refusal)."""
        return not self.changes and not self.refusals

    def lines(self) -> list[str]:
        """The human-readable diff, one line per change or refusal."""
        if self.is_empty:
            return [f"nothing to change ({len(self.unchanged)} topics match the catalogue)"]
        return [c.describe() for c in self.changes] + [r.describe() for r in self.refusals]


# --- the pure diff ----------------------------------------------------------------------------------------------
def diff(catalogue: Catalogue, observed: Mapping[str, ObservedTopic]) -> Plan:
    """Desired state (catalogue) vs observed state (topic name -> ObservedTopic) -> Plan. No I/O.

    Topics on the cluster that the catalogue does not know are left alone (other teams, internal topics).
    Config keys the catalogue does not set are left alone too: we manage what we declare.
    """
    changes: list[Change] = []
    refusals: list[Refusal] = []
    unchanged: list[str] = []
    group_refused: set[str] = set()

    # Co-partition groups first: one wrong member puts the whole group on hold, including creating missing
    # members, because a new member would not share the count of the existing ones.
    for group in catalogue.groups:
        wrong = {n: observed[n].partitions for n in group.topics
                 if n in observed and observed[n].partitions != group.partitions}
        if not wrong:
            continue
        group_refused.update(group.topics)
        counts = ", ".join(f"{n}={c}" for n, c in sorted(wrong.items()))
        for name in group.topics:
            if name in wrong:
                reason = (f"co-partitioned input of '{group.name}' has {wrong[name]} partitions, catalogue says "
                          f"{group.partitions}; changing it breaks the cccd->partition mapping shared by the join "
                          f"(migrate the whole group to new topics instead)")
            else:
                reason = (f"held back: other members of co-partition group '{group.name}' differ from the "
                          f"catalogue ({counts})")
            refusals.append(Refusal(name, reason))

    for spec in catalogue.managed:
        seen = observed.get(spec.name)
        if seen is None:
            if spec.name not in group_refused:
                changes.append(CreateTopic(spec))
            continue
        before = len(changes) + len(refusals)
        if seen.replication_factor != spec.replication_factor:
            refusals.append(Refusal(spec.name, (
                f"replication factor {seen.replication_factor} -> {spec.replication_factor} needs a partition "
                f"reassignment (kafka-reassign-partitions), not a config change")))
        if spec.name not in group_refused and seen.partitions != spec.partitions:
            if seen.partitions > spec.partitions:
                refusals.append(Refusal(spec.name, (
                    f"has {seen.partitions} partitions, catalogue says {spec.partitions}; Kafka cannot remove "
                    f"partitions (recreate the topic or raise the catalogue's count)")))
            elif spec.co_partition_group is None:
                changes.append(AddPartitions(spec.name, seen.partitions, spec.partitions))
        config_changes = {k: (seen.configs.get(k), v) for k, v in spec.configs.items()
                          if seen.configs.get(k) != v}
        if config_changes:
            changes.append(AlterConfigs(spec.name, config_changes))
        if len(changes) + len(refusals) == before:
            unchanged.append(spec.name)
    return Plan(tuple(changes), tuple(refusals), tuple(unchanged))


# --- I/O --------------------------------------------------------------------------------------------------------
def connect(bootstrap_servers: str | Connection, *, timeout_ms: int = 10_000):
    """A KafkaAdminClient, or TopologyError naming the address when the broker cannot be reached."""
    from kafka.admin import KafkaAdminClient  # imported here so the pure diff needs no Kafka client
    from kafka.errors import KafkaError

    refuse_unreachable(bootstrap_servers, TopologyError)  # a known cause at once, not after the timeout
    try:
        return new_client(KafkaAdminClient, **Connection.of(bootstrap_servers).kafka_python_kwargs(),
                          client_id="gplx-bus-topology",
                          bootstrap_timeout_ms=timeout_ms, request_timeout_ms=max(timeout_ms, 30_000))
    except (KafkaError, OSError):
        raise TopologyError(cannot_reach(bootstrap_servers)) from None


def observe(catalogue: Catalogue, admin) -> dict[str, ObservedTopic]:
    """Ask the cluster about the catalogue's topics (missing ones are simply absent from the result)."""
    from kafka.admin import ConfigResource, ConfigResourceType

    specs = {t.name: t for t in catalogue.managed}
    present = _described(admin, list(specs))
    if not present:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, list(specs[name].configs)) for name in present]
    # 'all' (not 'modified'): a desired value equal to the broker default must count as already set.
    configs = admin.describe_configs(resources, config_filter="all").get("topic", {})
    observed = {}
    for name, topic in present.items():
        partitions = topic["partitions"]
        observed[name] = ObservedTopic(
            name=name,
            partitions=len(partitions),
            replication_factor=max(len(p.get("replica_nodes") or ()) for p in partitions),
            configs={k: v.get("value") for k, v in configs.get(name, {}).items()},
        )
    return observed


def plan(catalogue: Catalogue, admin) -> Plan:
    """Observe the cluster and diff it against the catalogue."""
    return diff(catalogue, observe(catalogue, admin))


def apply(plan: Plan, admin) -> list[str]:
    """Carry out a plan; all or nothing with respect to refusals.

    A plan with refusals is not applied at all (TopologyError): half-applying a topology whose unsafe parts were
    refused would leave it in a state nobody declared. Returns the lines describing what was done.
    """
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import KafkaError

    if plan.refusals:
        first = plan.refusals[0]
        more = f" (and {len(plan.refusals) - 1} more)" if len(plan.refusals) > 1 else ""
        raise TopologyError(f"refused to apply: {first.topic}: {first.reason}{more}")
    done: list[str] = []
    try:
        creates = [c.spec for c in plan.changes if isinstance(c, CreateTopic)]
        if creates:
            admin.create_topics(
                {s.name: {"num_partitions": s.partitions, "replication_factor": s.replication_factor,
                          "configs": dict(s.configs)} for s in creates},
                wait_for_metadata=True)
            done += [f"created {s.name}" for s in creates]
        alters = [c for c in plan.changes if isinstance(c, AlterConfigs)]
        if alters:
            result = admin.alter_configs([
                ConfigResource(ConfigResourceType.TOPIC, a.topic, {k: new for k, (_, new) in a.changes.items()})
                for a in alters])
            failed = {k: v for k, v in result.get("topic", {}).items() if v != "OK"}
            if failed:
                name, why = next(iter(failed.items()))
                raise TopologyError(f"altering configs of {name} failed: {why}")
            _wait_for(lambda: _configs_visible(admin, alters), "config changes")
            done += [f"altered configs of {a.topic}" for a in alters]
        adds = [c for c in plan.changes if isinstance(c, AddPartitions)]
        if adds:
            admin.create_partitions({a.topic: a.desired for a in adds})
            _wait_for(lambda: _partitions_visible(admin, adds), "new partitions")
            done += [f"added partitions to {a.topic} ({a.current} -> {a.desired})" for a in adds]
    except KafkaError as exc:
        raise TopologyError(f"Kafka refused a topic change: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    return done


def missing_topics(bootstrap_servers: str | Connection, names: list[str]) -> list[str]:
    """Those of `names` the cluster does not have (or does not show this principal)."""
    admin = connect(bootstrap_servers)
    try:
        present = _described(admin, names)
    finally:
        admin.close()
    return [name for name in names if name not in present]


def _described(admin, names: list[str]) -> dict[str, dict]:
    """The topics among `names` the cluster describes (name -> its description); absent or refused ones left out."""
    return {t["name"]: t for t in admin.describe_topics(names) if t.get("error_code", 0) == 0 and t.get("partitions")}


def create_topics(bootstrap_servers: str | Connection, catalogue: Catalogue) -> list[str]:
    """Make the cluster match the catalogue (connect, plan, apply, close): what the demo, the tests and the tools
    that need a private set of topics call. Returns the lines describing what was done."""
    admin = connect(bootstrap_servers)
    try:
        return apply(plan(catalogue, admin), admin)
    finally:
        admin.close()


def delete_under_prefix(bootstrap_servers: str | Connection, prefix: str, *, groups: bool = True) -> list[str]:
    """Delete every topic (and, with `groups`, every consumer group) whose name starts with `prefix`: the end of a
    run under a prefix of its own (demo, tests). Refuses an empty prefix. Returns the topics deleted."""
    from kafka.errors import KafkaError

    if not prefix:
        raise TopologyError("refusing to delete under an empty prefix (that is every topic of the cluster)")
    admin = connect(bootstrap_servers)
    try:
        mine = [t for t in admin.list_topics() if t.startswith(prefix)]
        if mine:
            admin.delete_topics(mine, raise_errors=False)
        if groups:
            listed = [g.get("group_id") if isinstance(g, dict) else g[0] for g in admin.list_groups()]
            mine_groups = [g for g in listed if isinstance(g, str) and g.startswith(prefix)]
            if mine_groups:
                admin.delete_groups(mine_groups)
        return mine
    except KafkaError as exc:
        raise TopologyError(f"deleting the topics under {prefix} failed: {type(exc).__name__}") from exc
    finally:
        admin.close()


# The controller accepts a change before every broker's metadata cache shows it (KRaft propagates it within a
# second or so). Waiting here keeps "apply, then plan again" honest: the second plan sees what the first did.
def _wait_for(condition, what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TopologyError(f"the cluster accepted the {what} but did not show them within {timeout_s:.0f}s")
        time.sleep(0.2)


def _configs_visible(admin, alters: list[AlterConfigs]) -> bool:
    from kafka.admin import ConfigResource, ConfigResourceType

    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, a.topic, list(a.changes)) for a in alters],
        config_filter="all").get("topic", {})
    return all(described.get(a.topic, {}).get(k, {}).get("value") == new
               for a in alters for k, (_, new) in a.changes.items())


def _partitions_visible(admin, adds: list[AddPartitions]) -> bool:
    counts = {t["name"]: len(t.get("partitions") or ()) for t in admin.describe_topics([a.topic for a in adds])}
    return all(counts.get(a.topic) == a.desired for a in adds)
