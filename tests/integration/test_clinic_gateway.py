"""The HTTPS clinic gateway on the real broker and registry, over real HTTPS (issue 16).

- bad inputs: each its HTTP status and a one-line reason, nothing written to Kafka (end offsets unchanged);
- idempotency: a repeat is the same answer, other content under the same number and version is 409, and the
  answers survive a restart of the gateway (its index is read back from the topic);
- 1,000 random bodies (hypothesis): never accepted, never a 500, nothing written;
- a certificate through the gateway is decided exactly as one published with the SDK; a forged or unsigned one
  that reached the topic directly is dead-lettered SIGNATURE_INVALID by the processor;
- the broker stopped mid-batch: no item reported accepted is missing from the topic.
"""
from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from consumers.clinic_keys import publish_key
from consumers.portal.standin import write_tls_files
from producers.gateway.credentials import ApiKeys, issue
from producers.gateway.http import GatewayServer, openapi_document
from producers.gateway.service import CertificateBody
from producers.testing import create_topics, read_to_end
from schemas import models, signature
from schemas.registry import RegistryClient
from tests.case_scenarios import Script
from tests.processor_harness import wait_for
from topology import catalogue as topics
from topology import contracts
from topology.catalogue import Catalogue
from topology.connection import Connection

pytestmark = pytest.mark.integration

CLINIC, OTHER = "BVBM", "BVK2"
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def certificate(serial: int, clinic: str = CLINIC, kind: str = "ADD", **changes) -> models.HealthCertificate:
    fields = dict(event_id=str(uuid.uuid4()), occurred_at=NOW, source={"system": "clinic", "instance": clinic},
                  certificate_number=f"{serial % 100000:05d}/GKSKLX/{clinic}/26", version_kind=kind,
                  cccd=f"001085{serial:06d}", clinic_code=clinic, health_group=3, requested_class="B",
                  conclusions=[] if kind == "REVOKE" else [{"licence_class": "B", "fit": True}],
                  signed_at=NOW - timedelta(days=1), doctor="BS. Trần Văn Ánh", signature=b"")
    return models.HealthCertificate(**{**fields, **changes})


def as_json(cert: models.HealthCertificate) -> dict:
    return json.loads(CertificateBody.model_validate(cert.model_dump()).model_dump_json())


class Deployment:
    """Private topics, a registered clinic key, API keys for two clinics, the gateway over HTTPS."""

    def __init__(self, bootstrap: str, registry_url: str, tmp: Path, catalogue: Catalogue | None = None,
                 delivery_timeout_s: float = 10.0) -> None:
        self.prefix = catalogue.prefix if catalogue else f"g{uuid.uuid4().hex[:8]}."
        self.catalogue = catalogue or Catalogue.build(prefix=self.prefix, replication_factor=1, input_partitions=3,
                                                      provinces=[])
        if catalogue is None:
            create_topics(bootstrap, self.catalogue)
            with RegistryClient(registry_url) as registry:
                contracts.register(registry, self.catalogue)  # as the operator: the gateway only looks them up
        self.conn = Connection(bootstrap=bootstrap, registry_url=registry_url, prefix=self.prefix)
        self.key = ec.generate_private_key(ec.SECP256R1())
        pem = self.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        publish_key(self.conn, self.catalogue, CLINIC, pem)
        store = tmp / "api-keys.json"
        self.api_key = issue(store, CLINIC, tmp / "bvbm.apikey").read_text().strip()
        self.other_key = issue(store, OTHER, tmp / "bvk2.apikey").read_text().strip()
        self.api_keys = ApiKeys.load(store)
        tls = write_tls_files(tmp / "tls", name="gateway")
        self.tls, self.ca = (tls["cert"], tls["key"]), tls["ca"]
        self.delivery_timeout_s = delivery_timeout_s
        self.server: GatewayServer | None = None
        self.http: httpx.Client | None = None

    def start(self) -> "Deployment":
        self.server = GatewayServer(self.conn, self.api_keys, tls=self.tls, catalogue=self.catalogue,
                                    delivery_timeout_s=self.delivery_timeout_s).start()
        self.http = httpx.Client(base_url=self.server.url, timeout=60,
                                 verify=ssl.create_default_context(cafile=str(self.ca)),
                                 headers={"Authorization": f"Bearer {self.api_key}"})
        return self

    def stop(self) -> None:
        if self.http:
            self.http.close()
        if self.server:
            self.server.stop()

    def signed(self, cert: models.HealthCertificate) -> models.HealthCertificate:
        return signature.signed(cert, self.key)

    def post(self, body, **kwargs) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.http.post("/v1/certificates", content=content, headers={"Content-Type": "application/json",
                                                                            **kwargs.pop("headers", {})}, **kwargs)

    def records(self) -> int:
        """Records on health.exam-results now (sum of the end offsets)."""
        return sum(end_offsets(self.conn.bootstrap, self.catalogue.name(topics.HEALTH_EXAM_RESULTS)).values())


def end_offsets(bootstrap: str, topic: str) -> dict:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return consumer.end_offsets(tps)
    finally:
        consumer.close()


@pytest.fixture
def gateway(kafka_bootstrap, schema_registry_url, tmp_path):
    deployment = Deployment(kafka_bootstrap, schema_registry_url, tmp_path).start()
    yield deployment
    deployment.stop()


def test_bad_inputs_get_their_status_and_one_line_reason_and_nothing_reaches_kafka(gateway):
    good = gateway.signed(certificate(1))
    bad_signature = as_json(good) | {"signature": as_json(gateway.signed(certificate(2)))["signature"]}
    stranger = signature.signed(certificate(3), ec.generate_private_key(ec.SECP256R1()))
    cases = {
        "malformed JSON": (b'{"certificate_number": ', {}, 400, "malformed_json", None),
        "wrong type": (as_json(good) | {"health_group": "hai"}, {}, 422, "invalid_field", "health_group"),
        "invalid CCCD": (as_json(good) | {"cccd": "12345"}, {}, 422, "invalid_field", "cccd"),
        "another clinic's code": (as_json(gateway.signed(certificate(5, clinic=OTHER))), {}, 403,
                                  "not_your_clinic", "clinic_code"),
        "missing signature": (as_json(certificate(6)), {}, 422, "signature", "signature_key_id"),
        "bad signature": (bad_signature, {}, 422, "signature", "signature"),
        "unknown key": (as_json(stranger), {}, 422, "signature", "signature"),
        "over the size limit": (as_json(good) | {"doctor": "x" * 70_000}, {}, 413, "too_large", None),
        "no API key": (as_json(good), {"Authorization": ""}, 401, "unauthorized", None),
        "unknown API key": (as_json(good), {"Authorization": "Bearer gk_nope"}, 401, "unauthorized", None),
        "a list, not a certificate": ([as_json(good)], {}, 422, "invalid_field", "(body)"),
    }
    before = gateway.records()
    for name, (body, headers, status, error, field) in cases.items():
        reply = gateway.post(body, headers=headers)
        data = reply.json()
        assert (reply.status_code, data["error"], data.get("field")) == (status, error, field), (name, data)
        assert "\n" not in data["message"] and data["thong_bao"], name
        assert "001085" not in data["message"] and "Trần" not in data["message"], name  # no personal data
        print(f"{name}: {reply.status_code} {data['message']}")
    assert gateway.records() == before == 0


def test_repeats_are_the_same_answer_conflicts_409_and_a_restart_remembers(gateway):
    add = gateway.signed(certificate(11))
    first = gateway.post(as_json(add))
    assert first.status_code == 202 and first.json()["duplicate"] is False
    event_id = first.json()["event_id"]
    # the same content again, even with another event id and signature: the first answer, nothing published
    again = gateway.post(as_json(gateway.signed(add.model_copy(update={"event_id": str(uuid.uuid4())}))))
    assert again.status_code == 202 and again.json() | {"duplicate": False} == first.json()
    conflict = gateway.post(as_json(gateway.signed(add.model_copy(update={"health_group": 2}))))
    assert conflict.status_code == 409 and conflict.json()["error"] == "conflict"
    number = add.certificate_number
    assert gateway.http.get(f"/v1/certificates/{number}").json()["status"] == "accepted"
    edit = gateway.signed(certificate(11, kind="EDIT", signed_at=NOW - timedelta(hours=1)))
    revoke = gateway.signed(certificate(11, kind="REVOKE", signed_at=NOW - timedelta(minutes=30)))
    batch = gateway.http.post("/v1/certificates:batch", json={"certificates": [
        as_json(edit), as_json(add), as_json(certificate(12)), as_json(edit)]})
    assert [r["status"] for r in batch.json()["results"]] == [202, 202, 422, 202]
    assert batch.json()["results"][1]["event_id"] == event_id
    assert gateway.http.get(f"/v1/certificates/{number}").json()["status"] == "superseded"
    assert gateway.post(as_json(revoke)).status_code == 202
    assert gateway.records() == 3  # ADD, EDIT, REVOKE: once each
    # another clinic cannot look at it
    other = gateway.http.get(f"/v1/certificates/{number}", headers={"Authorization": f"Bearer {gateway.other_key}"})
    assert other.status_code == 404

    gateway.stop()
    gateway.start()  # a new index, read back from the topic
    assert gateway.post(as_json(add)).json()["event_id"] == event_id
    assert gateway.post(as_json(gateway.signed(add.model_copy(update={"health_group": 2})))).status_code == 409
    state = gateway.http.get(f"/v1/certificates/{number}").json()
    assert state["status"] == "revoked" and [v["version_kind"] for v in state["versions"]] == ["ADD", "EDIT",
                                                                                               "REVOKE"]
    assert gateway.records() == 3
    assert gateway.http.get("/openapi.json").json() == json.loads(json.dumps(openapi_document()))


_SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
_JSON = st.recursive(_SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=8), inner, max_size=3), max_leaves=5)
_FIELDS = sorted(models.HealthCertificate.model_fields)
_BASE = as_json(certificate(77))


@st.composite
def bodies(draw):
    """Random JSON, a certificate with random fields replaced (or dropped), or random bytes."""
    kind = draw(st.sampled_from(["json", "certificate", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return json.dumps(draw(_JSON)).encode()
    base = dict(_BASE)  # made once: building and validating a model per example would double the test's time
    for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=3)):
        if draw(st.booleans()):
            base[name] = draw(_SCALAR)
        else:
            base.pop(name, None)
    if draw(st.booleans()):
        base["signature_key_id"] = draw(st.text(max_size=20))
    return json.dumps(base).encode()


def test_a_thousand_random_bodies_are_refused_clearly_and_nothing_is_written(gateway):
    """1,000 bodies: 100 examples of 10, each 10 sent at once (real HTTPS, the time spent is the requests')."""
    seen: dict[int, int] = {}

    def post(body):
        reply = gateway.post(body)
        return reply.status_code, reply.json()

    with ThreadPoolExecutor(10) as pool:
        @settings(max_examples=100, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
        @given(st.lists(bodies(), min_size=10, max_size=10))
        def refused(batch):
            for status, data in pool.map(post, batch):
                assert status in (400, 403, 413, 422), (status, data)
                assert data["message"] and "\n" not in data["message"]
                seen[status] = seen.get(status, 0) + 1

        refused()
    print("statuses of 1,000 random bodies:", dict(sorted(seen.items())))
    assert sum(seen.values()) >= 1000 and gateway.records() == 0


@pytest.mark.slow
def test_through_the_gateway_a_certificate_is_decided_as_one_from_the_sdk(pbus, tmp_path, schema_registry_url):
    deployment = Deployment(pbus.bootstrap, schema_registry_url, tmp_path, catalogue=pbus.catalogue).start()
    worker = pbus.worker(tmp_path).start()
    try:
        via_sdk, via_gateway, forged, unsigned = (Script(n, s) for n, s in (
            ("via-sdk", 901), ("via-gateway", 902), ("forged", 903), ("unsigned", 904)))
        for script in (via_sdk, via_gateway, forged, unsigned):
            for base, event in script.events():
                if base != topics.HEALTH_EXAM_RESULTS:
                    pbus.publish([(base, event)])
                elif script is via_sdk:
                    pbus.publish([(base, deployment.signed(event))])
                elif script is via_gateway:
                    reply = deployment.post(as_json(deployment.signed(event)))
                    assert reply.status_code == 202, reply.json()
                elif script is forged:  # signed, then altered: straight to the topic, as a forger would
                    pbus.publish([(base, deployment.signed(event).model_copy(update={"doctor": "BS. Giả Mạo"}))])
                else:
                    pbus.publish([(base, event)])
        finals = wait_for(lambda: (lambda f: f if {via_sdk.case_id, via_gateway.case_id} <= set(f) else None)(
            pbus.finals()), 120, "both decisions")

        def decision(case_id):
            (event,) = finals[case_id]
            return type(event).__name__, sorted(getattr(event, "reasons", []) or []), event.new_classes

        assert decision(via_sdk.case_id) == decision(via_gateway.case_id) == ("CaseApproved", [], ["B"])
        letters = wait_for(lambda: (lambda ls: ls if len(ls) == 2 else None)(
            [e for _, e, _ in pbus.read(topics.DLQ) if e.error_code == "SIGNATURE_INVALID"]), 60, "two letters")
        texts = sorted(letter.error_text for letter in letters)
        assert "does not verify" in texts[0] and "unsigned certificate" in texts[1], texts
        assert forged.case_id not in finals and unsigned.case_id not in finals  # waiting for a valid certificate
    finally:
        worker.stop()
        deployment.stop()


@pytest.mark.slow
def test_broker_down_mid_batch_no_item_reported_accepted_is_missing(restartable_kafka, schema_registry_url,
                                                                     tmp_path):
    deployment = Deployment(restartable_kafka.bootstrap_servers, schema_registry_url, tmp_path,
                            delivery_timeout_s=5).start()
    answers: list[tuple[str, int]] = []  # (event id, status) of every item
    stopped = threading.Event()

    def client():
        serial = 1000
        with httpx.Client(base_url=deployment.server.url, timeout=60,
                          verify=ssl.create_default_context(cafile=str(deployment.ca)),
                          headers={"Authorization": f"Bearer {deployment.api_key}"}) as http:
            while not (stopped.is_set() and any(s == 503 for _, s in answers)):
                certs = [deployment.signed(certificate(serial + i)) for i in range(50)]
                serial += 50
                reply = http.post("/v1/certificates:batch", json={"certificates": [as_json(c) for c in certs]})
                assert reply.status_code == 200, reply.text
                answers.extend((c.event_id, r["status"]) for c, r in zip(certs, reply.json()["results"]))

    thread = threading.Thread(target=client)
    down = False
    try:
        thread.start()
        wait_for(lambda: sum(s == 202 for _, s in answers) >= 100, 60, "the first accepted items")
        restartable_kafka.stop()
        down = True
        stopped.set()
        thread.join(timeout=120)
        assert not thread.is_alive()
        restartable_kafka.start()
        down = False
        # back: the gateway's readers of Kafka survived the outage and read again, and a new certificate is
        # accepted again (the gateway builds a new producer after a failed delivery: kafka-python's idempotent one
        # stayed failed after its batches expired)
        deployment.server.keys.catch_up(timeout_s=60)
        assert deployment.server.keys.alive and deployment.server.index_alive
        with httpx.Client(base_url=deployment.server.url, timeout=60,
                          verify=ssl.create_default_context(cafile=str(deployment.ca)),
                          headers={"Authorization": f"Bearer {deployment.api_key}"}) as http:
            def accepted_again() -> bool:
                cert = deployment.signed(certificate(90_000 + len(answers)))
                status = http.post("/v1/certificates", json=as_json(cert)).status_code
                answers.append((cert.event_id, status))
                return status == 202
            wait_for(accepted_again, 90, "a certificate accepted after the broker came back")
    finally:
        stopped.set()
        if down:
            restartable_kafka.start()
        deployment.stop()
    accepted = {e for e, s in answers if s == 202}
    assert {s for _, s in answers} <= {202, 503} and len(accepted) < len(answers)
    registry = RegistryClient(schema_registry_url)
    on_topic = {event.event_id for _, event in read_to_end(
        restartable_kafka.bootstrap_servers, registry,
        deployment.catalogue.name(topics.HEALTH_EXAM_RESULTS))}
    registry.close()
    print(f"{len(answers)} items: {len(accepted)} accepted, {len(answers) - len(accepted)} answered 503; "
          f"{len(on_topic)} on the topic")
    assert accepted <= on_topic, f"{len(accepted - on_topic)} items reported accepted are not on the topic"


def test_the_readme_python_client_is_accepted(gateway, tmp_path):
    """The README's sample client, as printed, against this gateway (only its URL and file names' folder differ)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    sample = readme.split("Python, standard library and `cryptography` only", 1)[1].split("```python\n", 1)[1]
    sample = sample.split("```", 1)[0].replace("https://127.0.0.1:8443", gateway.server.url)
    work = tmp_path / "client"
    (work / "gateway-tls").mkdir(parents=True)
    (work / "gateway-tls" / "ca.pem").write_bytes(gateway.ca.read_bytes())
    (work / "bvbm.apikey").write_text(gateway.api_key + "\n")
    (work / "bvbm-signing.pem").write_bytes(gateway.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (work / "client.py").write_text(sample, encoding="utf-8")
    done = subprocess.run([sys.executable, "client.py"], cwd=work, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("202 "), done.stdout + done.stderr
    assert gateway.records() == 1


def test_clinic_publish_goes_through_the_gateway_signed(gateway, tmp_path):
    from typer.testing import CliRunner

    from gplx_bus.cli import app

    rows = [{"certificate_number": f"0070{i}/GKSKLX/{CLINIC}/26", "version_kind": "ADD", "cccd": f"00108500070{i}",
             "clinic_code": CLINIC, "health_group": 3, "requested_class": "B",
             "conclusions": [{"licence_class": "B", "fit": True}], "signed_at": "2026-03-02T08:30:00+07:00",
             "doctor": "BS. Lê Thị Hồng", "signature": "c2ln"} for i in range(2)]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(rows + [rows[0] | {"cccd": "12"}]), encoding="utf-8")
    signing = tmp_path / "signing.pem"
    signing.write_bytes(gateway.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    api_key = tmp_path / "bvbm.apikey"
    api_key.write_text(gateway.api_key + "\n")
    result = CliRunner().invoke(app, ["clinic", "publish", str(export), "--via", gateway.server.url,
                                      "--api-key-file", str(api_key), "--ca", str(gateway.ca),
                                      "--signing-key", str(signing)])
    assert result.exit_code == 1, result.output  # the third row is refused
    assert "2 accepted, 1 rejected" in result.output and "cccd_format" in result.output, result.output
    assert gateway.records() == 2
    # without --signing-key the gateway refuses the unsigned rows, and says why
    again = CliRunner().invoke(app, ["clinic", "publish", str(export), "--via", gateway.server.url,
                                     "--api-key-file", str(api_key), "--ca", str(gateway.ca)])
    assert "HTTP 422 from the gateway: signature_key_id is missing" in again.output, again.output
    assert gateway.records() == 2


def test_keys_add_list_revoke_commands(kafka_bootstrap, schema_registry_url, tmp_path):
    from typer.testing import CliRunner

    from gplx_bus.cli import app

    prefix = f"k{uuid.uuid4().hex[:8]}."
    keys_catalogue = Catalogue.build(prefix=prefix, replication_factor=1, input_partitions=1, provinces=[])
    create_topics(kafka_bootstrap, keys_catalogue)
    with RegistryClient(schema_registry_url) as registry:
        contracts.register(registry, keys_catalogue)  # as the operator (`gplx-bus schemas register`)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "bvbm.pub.pem"
    pem.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    conn = ["--bootstrap-servers", kafka_bootstrap, "--registry-url", schema_registry_url, "--prefix", prefix]
    runner = CliRunner()
    added = runner.invoke(app, ["clinic", "keys", "add", CLINIC, "--public-key", str(pem), *conn])
    assert added.exit_code == 0, added.output
    kid = added.output.split()[1]
    again = runner.invoke(app, ["clinic", "keys", "add", CLINIC, "--public-key", str(pem), *conn])
    assert again.exit_code != 0 and "already registered" in str(again.exception or again.output)
    revoked = runner.invoke(app, ["clinic", "keys", "revoke", CLINIC, "--key-id", kid,
                                  "--at", "2026-03-01T00:00:00+0700", *conn])
    assert revoked.exit_code == 0 and "revoked from 2026-02-28T17:00:00+00:00" in revoked.output, revoked.output
    listed = runner.invoke(app, ["clinic", "keys", "list", *conn])
    assert listed.exit_code == 0 and f"{CLINIC}\t{kid}\t" in listed.output and "revoked 2026-02-28" in listed.output
