"""Apply the topic catalogue to the real broker: create, re-apply (nothing to change), refuse unsafe changes."""
from __future__ import annotations

import time
import uuid

import pytest

from topology import catalogue as cat
from topology.apply import TopologyError, apply, connect, plan
from topology.catalogue import Catalogue

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(kafka_bootstrap):
    client = connect(kafka_bootstrap)
    yield client
    client.close()


@pytest.fixture
def prefix(admin):
    """A topic prefix of its own per test; its topics are deleted afterwards."""
    p = f"t{uuid.uuid4().hex[:8]}."
    yield p
    mine = [name for name in admin.list_topics() if name.startswith(p)]
    if mine:
        admin.delete_topics(mine)


def _eventually(condition, timeout_s=15.0):
    """Brokers show an altered config a moment after the controller accepted it."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_apply_twice_second_run_changes_nothing(admin, prefix):
    catalogue = Catalogue.build(prefix=prefix, replication_factor=1)
    first = plan(catalogue, admin)
    assert len(first.changes) == len(catalogue.managed) and not first.refusals  # the changelogs too
    done = apply(first, admin)
    assert len(done) == len(catalogue.managed)

    second = plan(catalogue, admin)
    assert second.is_empty, second.lines()
    assert second.lines()[0].startswith("nothing to change")
    assert apply(second, admin) == []

    # What was created is what was declared.
    topics = {t["name"]: t for t in admin.describe_topics([t.name for t in catalogue.managed])}
    assert {len(topics[n]["partitions"]) for n in catalogue.group(cat.CASE_INPUTS_GROUP).topics} == {12}
    assert len(topics[catalogue.province_topic("01")]["partitions"]) == 3


def test_drifted_config_and_extra_partitions_are_applied(admin, prefix):
    apply(plan(Catalogue.build(prefix=prefix, replication_factor=1), admin), admin)
    from kafka.admin import ConfigResource, ConfigResourceType

    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, prefix + cat.DLQ, {"retention.ms": "1000"})])
    _eventually(lambda: any(c.describe().startswith("~ configs")
                            for c in plan(Catalogue.build(prefix=prefix, replication_factor=1), admin).changes))
    grown = Catalogue.build(prefix=prefix, replication_factor=1, partitions={cat.DLQ: 5})
    fix = plan(grown, admin)
    assert sorted(c.describe().split()[1] for c in fix.changes) == ["configs", "partitions"]
    apply(fix, admin)
    assert plan(grown, admin).is_empty


@pytest.mark.parametrize("unsafe, why", [
    ({"partitions": {cat.DLQ: 1}}, "cannot remove partitions"),
    ({"input_partitions": 6}, "cccd->partition"),
    ({"input_partitions": 24}, "cccd->partition"),
])
def test_unsafe_change_refused_and_nothing_applied(admin, prefix, unsafe, why):
    apply(plan(Catalogue.build(prefix=prefix, replication_factor=1), admin), admin)
    changed = Catalogue.build(prefix=prefix, replication_factor=1, **unsafe)
    refused = plan(changed, admin)
    assert refused.refusals and all(why in r.reason for r in refused.refusals)
    with pytest.raises(TopologyError, match="refused"):
        apply(refused, admin)
    # The cluster still matches the original catalogue.
    assert plan(Catalogue.build(prefix=prefix, replication_factor=1), admin).is_empty


def test_replication_factor_change_refused(admin, prefix):
    apply(plan(Catalogue.build(prefix=prefix, replication_factor=1), admin), admin)
    refused = plan(Catalogue.build(prefix=prefix, replication_factor=3), admin)
    assert refused.refusals and all("reassignment" in r.reason for r in refused.refusals)


def test_unreachable_broker_is_one_line():
    with pytest.raises(TopologyError, match="cannot reach Kafka at 127.0.0.1:1"):
        connect("127.0.0.1:1", timeout_ms=1000)
