"""The default group filter is exactly our groups, from the catalogue (and follows a prefix)."""
import re

import pytest

from consumers.lag import LagConfig
from consumers.lag.groups import our_groups
from topology.catalogue import Catalogue, consumer_group, province_principal

PROVINCES = [p.code for p in Catalogue.build(replication_factor=1).provinces]


def test_our_groups_are_processor_sink_adapters_and_every_province():
    expected = {"gplx-case-processor", "portal", "identity", "police", "payment", "case-store"} | {
        consumer_group(province_principal(c)) for c in PROVINCES}
    assert set(our_groups()) == expected
    assert len(PROVINCES) == 34  # the province label stays bounded


@pytest.mark.parametrize("group", ["gplx-case-processor", "portal", "identity", "police", "payment",
                                   "province-01", f"province-{PROVINCES[-1]}"])
def test_default_pattern_takes_ours(group):
    assert LagConfig().wants_group(group)


@pytest.mark.parametrize("group", ["gplx-sub-HN", "gplx-case-processor-x", "portal2", "xportal", "province-99",
                                   "sre", "console-consumer-123", "t-abc-portal"])
def test_default_pattern_leaves_out_anything_else(group):
    assert not LagConfig().wants_group(group)


def test_prefix_moves_groups_dlq_and_classes(monkeypatch):
    monkeypatch.setenv("GPLX_TOPIC_PREFIX", "t-1-")
    cfg = LagConfig.from_env()
    assert cfg.wants_group("t-1-portal") and cfg.wants_group("t-1-gplx-case-processor")
    assert not cfg.wants_group("portal")
    assert cfg.dlq_topic == "t-1-dlq"
    assert cfg.classify({"t-1-cases.province.01"})[0] == "province-subscriber"
    assert cfg.classify({"t-1-issuance.requests"})[0] == "portal-sink"
    assert cfg.province_of("t-1-cases.province.01") == "01"


def test_group_pattern_still_overrides(monkeypatch):
    monkeypatch.setenv("GPLX_LAG_GROUP_PATTERN", "^gplx")
    cfg = LagConfig.from_env()
    assert cfg.wants_group("gplx-sub-HN") and not cfg.wants_group("portal")
    assert LagConfig.from_env(group_pattern="^x$").group_pattern == "^x$"
    assert re.compile(LagConfig().group_pattern)


def test_kafka_pythons_undecodable_member_dump_is_dropped_other_warnings_kept(caplog):
    import logging

    import consumers.lag.reader  # noqa: F401 - installs the filter

    groups_log = logging.getLogger("kafka.admin._groups")
    with caplog.at_level(logging.WARNING, logger="kafka.admin._groups"):
        groups_log.warning("Unable to decode member_metadata for DescribedGroup(... bytes ...)/faust-1")
        groups_log.warning("Unable to decode member_assignment for DescribedGroup(...)/faust-1")
        groups_log.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]
