"""Make a cluster's ACLs match the catalogue: observe, diff, apply (the ACL twin of `topology.apply`).

Which bindings are ours ("managed"): an ALLOW binding on a TOPIC or GROUP whose name lies under the catalogue's
prefix, held by a principal the catalogue names or by a province principal (`User:province-<code>`, so a province
that leaves the catalogue loses its rights). Only managed bindings are ever deleted, and only when the catalogue no
longer implies them. Everything else is "foreign" and left alone, counted in the plan: DENY bindings, other
principals (people, tools), other resource types (CLUSTER, TRANSACTIONAL_ID), and names under another prefix
(so two environments sharing a cluster with different prefixes do not remove each other's rights). With an empty
prefix every name is under it: an unprefixed apply manages all TOPIC/GROUP ALLOWs of the catalogue's principals.

Running it twice is harmless: `apply` waits until the broker reports the new state, so the second plan is empty.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from topology.apply import TopologyError
from topology.catalogue import AclBinding, Catalogue

_PROVINCE_PRINCIPALS = "User:province-"
_MANAGED_TYPES = ("TOPIC", "GROUP")


@dataclass(frozen=True)
class AclPlan:
    add: tuple[AclBinding, ...]
    remove: tuple[AclBinding, ...]
    unchanged: int
    foreign: int

    @property
    def is_empty(self) -> bool:
        return not self.add and not self.remove

    def lines(self) -> list[str]:
        out = [f"+ {describe(a)}" for a in self.add] + [f"- {describe(a)}" for a in self.remove]
        out.append(f"= {self.unchanged} binding(s) already in place" if out or self.unchanged
                   else "= no bindings in place")
        if self.foreign:
            out.append(f"  {self.foreign} binding(s) not managed by the catalogue: left alone")
        if self.is_empty:
            out.append("nothing to change")
        return out


def describe(a: AclBinding) -> str:
    pattern = "*" if a.pattern_type == "PREFIXED" else ""
    host = "" if a.host == "*" else f" from {a.host}"
    return f"{a.permission.lower()} {a.principal} {a.operation} {a.resource_type.lower()} {a.resource_name}{pattern}{host}"


def is_managed(binding: AclBinding, catalogue: Catalogue, principals: frozenset[str]) -> bool:
    return (binding.permission == "ALLOW"
            and binding.resource_type in _MANAGED_TYPES
            and binding.resource_name.startswith(catalogue.prefix)
            and (binding.principal in principals or binding.principal.startswith(_PROVINCE_PRINCIPALS)))


def diff(catalogue: Catalogue, observed: list[AclBinding]) -> AclPlan:
    """Pure: what to add and remove so the managed bindings equal `catalogue.acls()`."""
    desired = set(catalogue.acls())
    principals = frozenset(a.principal for a in desired)
    managed = {a for a in observed if is_managed(a, catalogue, principals)}
    foreign = len(set(observed) - managed)
    key = lambda a: (a.principal, a.resource_type, a.resource_name, a.operation)  # noqa: E731
    return AclPlan(add=tuple(sorted(desired - managed, key=key)), remove=tuple(sorted(managed - desired, key=key)),
                   unchanged=len(desired & managed), foreign=foreign)


# --- I/O: kafka-python's admin client ------------------------------------------------------------------------
def _to_kafka(a: AclBinding):
    from kafka.admin import (ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern,
                             ResourceType)

    return ACL(principal=a.principal, host=a.host, operation=ACLOperation[a.operation],
               permission_type=ACLPermissionType[a.permission],
               resource_pattern=ResourcePattern(ResourceType[a.resource_type], a.resource_name,
                                                ACLResourcePatternType[a.pattern_type]))


def _from_kafka(acl) -> AclBinding:
    pattern = acl.resource_pattern
    return AclBinding(principal=acl.principal, resource_type=pattern.resource_type.name,
                      resource_name=pattern.resource_name, pattern_type=pattern.pattern_type.name,
                      operation=acl.operation.name, permission=acl.permission_type.name, host=acl.host)


def observe(admin) -> list[AclBinding]:
    """Every ACL binding of the cluster."""
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePatternFilter
    from kafka.admin import ResourceType
    from kafka.errors import SecurityDisabledError

    everything = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                           permission_type=ACLPermissionType.ANY,
                           resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))
    try:
        acls, _ = admin.describe_acls(everything)
    except SecurityDisabledError:
        raise TopologyError("the cluster has no authorizer, so it has no ACLs to apply; start a secured stack "
                            "(`gplx-bus local up --secure`) or enable an authorizer on the brokers") from None
    return [_from_kafka(a) for a in acls]


def plan(catalogue: Catalogue, admin) -> AclPlan:
    return diff(catalogue, observe(admin))


def apply(the_plan: AclPlan, catalogue: Catalogue, admin, settle_timeout: float = 30.0) -> list[str]:
    """Create and delete what the plan says, then wait until the broker reports the catalogue's state."""
    from kafka.admin import ACLFilter

    done = []
    if the_plan.add:
        result = admin.create_acls([_to_kafka(a) for a in the_plan.add])
        if result["failed"]:
            raise TopologyError(f"the broker refused {len(result['failed'])} ACL(s): {result['failed'][0]!r}; "
                                "the admin login needs ALTER on the cluster (a super user)")
        done += [f"added {describe(a)}" for a in the_plan.add]
    if the_plan.remove:
        # An exact binding as a filter matches that binding only (LITERAL/PREFIXED, named principal and host).
        filters = [_to_kafka(a) for a in the_plan.remove]
        for _, _, error in admin.delete_acls([ACLFilter(f.principal, f.host, f.operation, f.permission_type,
                                                        f.resource_pattern) for f in filters]):
            if error.errno != 0:
                raise TopologyError(f"the broker refused to delete an ACL: {error.__name__}")
        done += [f"removed {describe(a)}" for a in the_plan.remove]
    deadline = time.monotonic() + settle_timeout
    while not plan(catalogue, admin).is_empty:  # the new bindings go through the metadata log first
        if time.monotonic() > deadline:
            raise TopologyError(f"the ACLs did not show up within {settle_timeout:.0f}s; run the apply again")
        time.sleep(0.1)  # pacing between polls
    return done


# --- the README's "who can do what" table ------------------------------------------------------------------------

def access_table() -> str:
    """The Markdown table of README "Security": each principal's rights, as the catalogue's ACLs grant them, and
    the personal data of what it reads. One province stands for all 34 (`<code>`); tests/unit check the README."""
    from topology.catalogue import Catalogue, Province

    catalogue = Catalogue.build(prefix="", replication_factor=1, provinces=[Province("<code>", "any province")])
    personal = {t.name: t.personal_data for t in catalogue.managed}
    rows = ["| principal | writes | reads (consumer group) | also | personal data it reads |",
            "| --- | --- | --- | --- | --- |"]
    for principal in sorted({a.principal for a in catalogue.acls()}):
        grants = catalogue.acls_for(principal)
        literal = [a for a in grants if a.pattern_type == "LITERAL" and a.resource_name != "*"]
        writes = [a.resource_name for a in literal if a.resource_type == "TOPIC" and a.operation == "WRITE"]
        reads = [a.resource_name for a in literal if a.resource_type == "TOPIC" and a.operation == "READ"]
        groups = [a.resource_name for a in literal if a.resource_type == "GROUP" and a.operation == "READ"]
        also = sorted({f"{a.operation} on {_scope(a)} {a.resource_type.lower()}" for a in grants
                       if a not in literal or a.operation not in ("READ", "WRITE")})
        seen = "; ".join(f"{name}: {personal[name]}" for name in reads if personal.get(name)) or "none"
        rows.append(f"| `{principal}` | {_names(writes)} | {_names(reads)}"
                    f"{' (' + _names(groups) + ')' if groups else ''} | {'; '.join(also) or '-'} | {seen} |")
    return "\n".join(rows) + "\n"


def _scope(a: AclBinding) -> str:
    return "every" if a.resource_name == "*" else f"prefixed `{a.resource_name}*`"


def _names(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in sorted(names)) or "-"
