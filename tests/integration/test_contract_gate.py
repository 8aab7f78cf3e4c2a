"""This session's contract changes through the registry gate: the previous release (tests/data/
released-before-issue-10, the schemas/released of the last landing) is registered under FULL_TRANSITIVE, then
`gplx-bus schemas check --registry` and `schemas register` accept today's schemas as its next version.
The gate itself refusing a breaking change is tested in test_serde_roundtrip.py."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from schemas import compat
from schemas.registry import RegistryClient
from topology import contracts
from topology.catalogue import Catalogue

pytestmark = pytest.mark.integration
BEFORE = Path(__file__).parents[1] / "data" / "released-before-issue-10"


def test_the_previous_release_accepts_todays_schemas_as_its_next_version(schema_registry_url):
    prefix = f"gate{uuid.uuid4().hex[:6]}."
    subjects = contracts.subjects(Catalogue.build(prefix=prefix, replication_factor=1))
    with RegistryClient(schema_registry_url) as registry:
        for subject, event in subjects:
            old = BEFORE / f"{event.rsplit('.', 1)[1]}.avsc"
            if not old.exists():  # a contract added since (ClinicKey): `register` below gives it its first version
                continue
            registry.register(subject, old.read_text(encoding="utf-8"))
            registry.set_compatibility(subject, compat.LEVEL)
    changed = [p.name for p in sorted(BEFORE.glob("*.avsc"))
               if json.loads(p.read_text()) != json.loads((Path(compat.__file__).parent / "released" / p.name).read_text())]
    assert {"IdentityCheckResult.avsc", "IssuanceRequested.avsc", "CaseOpened.avsc", "CaseApproved.avsc"} <= set(changed)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gplx_bus.cli", "schemas", *args, "--registry-url",
                               schema_registry_url, "--prefix", prefix], capture_output=True, text=True, timeout=300)

    checked = cli("check", "--registry")
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
    registered = cli("register")
    assert registered.returncode == 0, registered.stderr[-2000:]
    with RegistryClient(schema_registry_url) as registry:
        subject = next(s for s, e in subjects if e.endswith(".IssuanceRequested"))
        assert "new_classes" in registry.get_latest(subject).schema  # the new version is the latest now
