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
from typing import Iterable

from topology.catalogue import CASE_PROCESSOR_APP_ID, DLQ, GATEWAY, LAG_EXPORTER, Catalogue, consumer_group


def group_topics(catalogue: Catalogue, principals: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Consumer group -> the topics it reads (full names), from the catalogue's readers: the groups of
    `our_groups`, or only those of `principals` (e.g. the components a demo runs). What "nothing in flight" is
    checked against (`consumers.lag.inflight`)."""
    wanted = None if principals is None else set(principals)
    dlq = catalogue.name(DLQ)
    out: dict[str, set[str]] = {}
    for topic in catalogue.topics:
        if topic.name == dlq:
            continue
        # the clinic gateway reads without a consumer group (it follows whole topics): no lag to watch
        for reader in topic.readers - {LAG_EXPORTER, GATEWAY}:
            if wanted is None or reader in wanted:
                out.setdefault(catalogue.prefix + consumer_group(reader), set()).add(topic.name)
    return {group: sorted(names) for group, names in sorted(out.items())}


def our_groups(prefix: str = "", catalogue: Catalogue | None = None) -> list[str]:
    """Group ids of the case processor, the portal sink, the adapters and every province subscriber."""
    # replication_factor=1: only names matter here, and GPLX_REPLICATION_FACTOR must not be able to break the CLI.
    cat = catalogue or Catalogue.build(prefix=prefix, replication_factor=1)
    groups = set(group_topics(cat))
    groups.add(cat.prefix + CASE_PROCESSOR_APP_ID)  # the faust app id is its group, whatever the principal
    return sorted(groups)


def default_group_pattern(prefix: str = "", catalogue: Catalogue | None = None) -> str:
    """An anchored regex matching exactly `our_groups(prefix)`."""
    return "^(?:" + "|".join(re.escape(g) for g in our_groups(prefix, catalogue)) + ")$"
