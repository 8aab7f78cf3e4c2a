"""Which consumer groups are ours: derived from the topic catalogue, so the lag monitor watches exactly the groups
our components use and nothing else.

Why derive instead of a name convention (the old default was `^gplx`): our groups are named after the principal
that reads (`portal`, `province-01`, `identity`, ...; see `topology.catalogue.consumer_group`), and only the case
processor's starts with "gplx". A regex built from the catalogue follows the catalogue when a province or an
adapter is added, and it keeps label cardinality bounded: one series set per group we run (34 provinces at most),
never a test's or another team's group.

Left out on purpose: principals whose only topic is the DLQ (the SRE principal). A DLQ read is an ad-hoc
inspection, not a pipeline stage; its group would sit at STOP with lag forever and page someone. The DLQ's size is
exported on its own (`gplx_dlq_messages_total`). Also the lag exporter's own principal: it reads the audit stream
without a consumer group.
"""
from __future__ import annotations

import re

from topology.catalogue import CASE_PROCESSOR_APP_ID, DLQ, GATEWAY, LAG_EXPORTER, Catalogue, consumer_group


def our_groups(prefix: str = "", catalogue: Catalogue | None = None) -> list[str]:
    """Group ids of the case processor, the portal sink, the adapters and every province subscriber."""
    # replication_factor=1: only names matter here, and GPLX_REPLICATION_FACTOR must not be able to break the CLI.
    cat = catalogue or Catalogue.build(prefix=prefix, replication_factor=1)
    dlq = cat.name(DLQ)
    # the clinic gateway reads without a consumer group (it follows whole topics): no lag to watch
    readers = {r for t in cat.topics if t.name != dlq for r in t.readers} - {LAG_EXPORTER, GATEWAY}
    groups = {cat.prefix + consumer_group(r) for r in readers}
    groups.add(cat.prefix + CASE_PROCESSOR_APP_ID)  # the faust app id is its group, whatever the principal
    return sorted(groups)


def default_group_pattern(prefix: str = "", catalogue: Catalogue | None = None) -> str:
    """An anchored regex matching exactly `our_groups(prefix)`."""
    return "^(?:" + "|".join(re.escape(g) for g in our_groups(prefix, catalogue)) + ")$"
