"""Only the operator registers contracts; every other client looks them up (topology.contracts, serde)."""
from __future__ import annotations

import pytest

from schemas import models, testing
from schemas.errors import RegistryUnavailable, SchemaNotRegistered
from schemas.registry import InMemoryRegistry
from schemas.serde import AvroSerializer, SerializationContext
from topology import contracts
from topology.catalogue import CASE_PROCESSOR, IDENTITY, PORTAL, Catalogue

# .example() gives a quick valid event where the property is not about the values themselves.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")

CATALOGUE = Catalogue.build(prefix="u.", replication_factor=1)


def test_the_operator_registers_every_subject_of_the_catalogue_once():
    registry = InMemoryRegistry()
    done = contracts.register(registry, CATALOGUE)
    assert [s for s, _ in done] == [s for s, _ in contracts.subjects(CATALOGUE)]
    assert set(registry.subjects()) == {s for s, _ in done}
    assert "u.cases.province.01-vn.gplx.cases.CaseApproved" in registry.subjects()
    assert contracts.register(registry, CATALOGUE) == done  # idempotent: same ids, no new version
    assert registry.get_latest("u.dlq-vn.gplx.dlq.DeadLetter").version == 1


def test_a_writer_checks_only_the_subjects_it_writes():
    assert contracts.subjects(CATALOGUE, writer=IDENTITY) == [  # its answers, and dead letters of poison requests
        ("u.identity.results-vn.gplx.identity.IdentityCheckResult", "vn.gplx.identity.IdentityCheckResult"),
        ("u.dlq-vn.gplx.dlq.DeadLetter", "vn.gplx.dlq.DeadLetter")]
    assert contracts.check_registered(_registered(), CATALOGUE, writer=CASE_PROCESSOR) == 19  # province topics left out


def test_a_missing_contract_names_the_subject_and_the_operators_command():
    with pytest.raises(SchemaNotRegistered) as exc:
        contracts.check_registered(InMemoryRegistry(), CATALOGUE, writer=IDENTITY)
    message = str(exc.value)
    assert "u.identity.results-vn.gplx.identity.IdentityCheckResult" in message
    assert "gplx-bus schemas register" in message and "\n" not in message


def test_lookup_only_serializer_never_registers():
    registry = InMemoryRegistry()
    serialize = AvroSerializer(registry, auto_register=False)
    event = testing.events(models.CaseOpened).example()
    with pytest.raises(SchemaNotRegistered, match="u.cases.events-vn.gplx.cases.CaseOpened"):
        serialize(event, SerializationContext("u.cases.events"))
    assert registry.subjects() == []
    contracts.register(registry, CATALOGUE)
    assert serialize(event, SerializationContext("u.cases.events"))[:1] == b"\x00"


def test_an_unreachable_registry_is_waited_out_only_where_asked():
    class Down(InMemoryRegistry):
        def lookup(self, subject, schema):
            raise RegistryUnavailable("registry down")

    assert contracts.check_registered(Down(), CATALOGUE, writer=PORTAL, outage_ok=True) == 0
    with pytest.raises(RegistryUnavailable):
        contracts.check_registered(Down(), CATALOGUE, writer=PORTAL)


def _registered() -> InMemoryRegistry:
    registry = InMemoryRegistry()
    contracts.register(registry, CATALOGUE)
    return registry
