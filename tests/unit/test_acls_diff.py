"""The ACL diff (topology.acls.diff): what is managed, what is added, removed, or left alone."""
from __future__ import annotations

from topology.acls import diff
from topology.catalogue import AclBinding, Catalogue, Province

CATALOGUE = Catalogue.build(prefix="t.", replication_factor=1, provinces=[Province("01", "Hà Nội")])


def test_an_empty_cluster_gets_every_binding():
    plan = diff(CATALOGUE, [])
    assert set(plan.add) == set(CATALOGUE.acls()) and not plan.remove and plan.unchanged == 0
    assert plan.lines()[0].startswith("+ allow ")


def test_the_catalogue_applied_is_nothing_to_change():
    plan = diff(CATALOGUE, CATALOGUE.acls())
    assert plan.is_empty and plan.unchanged == len(CATALOGUE.acls())
    assert plan.lines()[-1] == "nothing to change"


def test_managed_bindings_the_catalogue_dropped_are_removed():
    stale = [AclBinding("User:portal", "TOPIC", "t.retired", "LITERAL", "WRITE"),
             AclBinding("User:province-48", "TOPIC", "t.cases.province.48", "LITERAL", "READ")]  # a province left
    plan = diff(CATALOGUE, [*CATALOGUE.acls(), *stale])
    assert set(plan.remove) == set(stale) and not plan.add and plan.foreign == 0


def test_foreign_bindings_are_counted_and_never_removed():
    foreign = [
        AclBinding("User:alice", "TOPIC", "t.dlq", "LITERAL", "READ"),  # a principal the catalogue does not name
        AclBinding("User:portal", "TOPIC", "other.dlq", "LITERAL", "READ"),  # another prefix's
        AclBinding("User:portal", "TOPIC", "t.dlq", "LITERAL", "READ", permission="DENY"),  # a DENY
        AclBinding("User:portal", "CLUSTER", "kafka-cluster", "LITERAL", "IDEMPOTENT_WRITE"),  # not TOPIC/GROUP
    ]
    plan = diff(CATALOGUE, [*CATALOGUE.acls(), *foreign])
    assert plan.is_empty and plan.foreign == len(foreign)
    assert "4 binding(s) not managed by the catalogue: left alone" in " ".join(plan.lines())


def test_processor_reads_and_writes_its_changelogs_but_creates_no_topic():
    """`topics apply` creates the changelogs (Catalogue.internal): the processor gets no prefix right on topics."""
    granted = {(a.resource_type, a.resource_name, a.pattern_type, a.operation)
               for a in CATALOGUE.acls_for("User:case-processor")}
    for table in ("citizens", "deadlines"):
        name = f"t.gplx-case-processor-{table}-changelog"
        assert {("TOPIC", name, "LITERAL", "READ"), ("TOPIC", name, "LITERAL", "WRITE")} <= granted
    assert not [g for g in granted if g[0] == "TOPIC" and (g[2] == "PREFIXED" or g[3] in ("ALL", "CREATE"))]
    assert ("GROUP", "t.gplx-case-processor", "PREFIXED", "ALL") in granted
