"""Only the operator registers contracts: every other client works against a registry it cannot write to.

The registry is the real Apicurio of the session, seen through a transport that refuses every write (as a registry
with write access for the operator alone would): a client that tried to register would fail here.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from producers.adapters.runner import AdapterSet
from producers.sdk import Publisher
from schemas import models, testing
from schemas.errors import SchemaNotRegistered
from schemas.registry import RegistryClient
from topology import catalogue as topics
from topology import contracts
from topology.catalogue import Catalogue

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")]

ROOT = Path(__file__).parents[2]


class ReadOnly(httpx.HTTPTransport):
    """Forwards reads and look-ups to the real registry; refuses registrations and config changes (HTTP 403)."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method in ("PUT", "DELETE") or (request.method == "POST" and path.endswith("/versions")):
            self.refused.append(f"{request.method} {path}")
            return httpx.Response(403, json={"message": "read-only"})
        return super().handle_request(request)


def read_only(url: str) -> tuple[RegistryClient, ReadOnly]:
    transport = ReadOnly()
    return RegistryClient(url, transport=transport), transport


def test_a_client_never_registers_and_names_the_missing_subject(kafka_bootstrap, schema_registry_url, unique_name,
                                                                tmp_path):
    catalogue = Catalogue.build(prefix=unique_name + ".", replication_factor=1)  # nothing registered under it
    event = testing.events(models.HealthCertificate).example()
    subject = f"{catalogue.name(topics.HEALTH_EXAM_RESULTS)}-{event.avro_name}"
    registry, transport = read_only(schema_registry_url)
    with registry, Publisher(kafka_bootstrap, registry, catalogue=catalogue, connect_timeout_s=10) as publisher:
        with pytest.raises(SchemaNotRegistered, match=subject + r".*gplx-bus schemas register"):
            publisher.send(event)
        with pytest.raises(SchemaNotRegistered, match=catalogue.name(topics.IDENTITY_RESULTS)):
            AdapterSet(kafka_bootstrap, registry, catalogue=catalogue, data_dir=tmp_path,
                       run_police=False, run_payment=False).start()
    assert transport.refused == []  # it only looked up
    with RegistryClient(schema_registry_url) as operator:
        assert not [s for s in operator.subjects() if s.startswith(catalogue.prefix)]


def test_after_the_operator_registered_a_read_only_client_publishes(kafka_bootstrap, schema_registry_url,
                                                                   private_topics):
    catalogue = private_topics([p for p in Catalogue.build().provinces if p.code == "01"])  # registers them
    event = testing.events(models.HealthCertificate).example()
    registry, transport = read_only(schema_registry_url)
    with registry, Publisher(kafka_bootstrap, registry, catalogue=catalogue) as publisher:
        delivered = publisher.publish(event)
        assert contracts.check_registered(registry, catalogue, writer=topics.CASE_PROCESSOR) > 10
    assert delivered.topic == catalogue.name(topics.HEALTH_EXAM_RESULTS)
    assert transport.refused == []


def test_the_cli_says_so_in_one_line(kafka_bootstrap, schema_registry_url, unique_name):
    """`gplx-bus clinic publish` against a prefix whose contracts were never registered."""
    sample = ROOT / "producers" / "adapters" / "samples" / "health-certificates.csv"
    done = subprocess.run([sys.executable, "-m", "gplx_bus.cli", "clinic", "publish", str(sample),
                           "-b", kafka_bootstrap, "--registry-url", schema_registry_url,
                           "--prefix", unique_name + "."],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, "GPLX_DEBUG": ""})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("gplx-bus: error: schema registry has no subject "
                           f"{unique_name}.health.exam-results-vn.gplx.clinics.HealthCertificate"), line
    assert "gplx-bus schemas register" in line
