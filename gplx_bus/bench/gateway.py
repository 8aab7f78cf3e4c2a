"""Benchmark of the clinic gateway: certificates per second through `gplx-bus clinic serve` (HTTPS, signature check,
idempotency index, SDK publish with acks=all) with N concurrent clients, and the latency percentiles, against the
HTTP ceiling measured in the same run on the same server: `POST /v1/echo`, the same authentication and JSON body
parsing with no Kafka and no signature check.

The gateway runs as its own process (a real `gplx-bus clinic serve`), the clients as threads of this one, each
with its own keep-alive HTTPS connection. Certificates are made and signed before the clock starts. Every
certificate answered 202 is checked to be on the topic (end offsets) before the result is reported.

    .venv/bin/python -m gplx_bus.bench.gateway            # starts a local broker + registry for the run
    make bench-gateway

`run(...)` returns the result as a dict (the lead wires it into `gplx-bus bench`).
"""
from __future__ import annotations

import json
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from topology.kafka_python import new_client

CLINIC = "BVBENCH"


def run(bootstrap: str | None = None, registry_url: str | None = None, *, clients: int = 16,
        certificates: int = 3000) -> dict:
    """One run: the echo ceiling, then `certificates` distinct certificates through the gateway, `clients` at a
    time. Without `bootstrap` a local broker and registry are started for the run and stopped after."""
    with ExitStack() as stack:
        if bootstrap is None:
            from deploy.local.cluster import LocalCluster

            endpoints = stack.enter_context(LocalCluster())
            bootstrap, registry_url = endpoints.bootstrap_servers, endpoints.schema_registry_url
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gplx-bench-gateway-")))
        return _run(bootstrap, registry_url, work, clients, certificates)


def run_on(bootstrap: str, registry_url: str, work: Path, *, clients: int, certificates: int) -> dict:
    """One run on a cluster that is up, in the folder `work` (keys, TLS files, the gateway's log)."""
    return _run(bootstrap, registry_url, work, clients, certificates)


def _run(bootstrap: str, registry_url: str, work: Path, clients: int, count: int) -> dict:
    from consumers.clinic_keys import publish_key
    from deploy.local.ports import free_port
    from producers.gateway.credentials import issue
    from producers.gateway.service import CertificateBody
    from schemas import models, signature
    from schemas.registry import RegistryClient
    from topology import contracts
    from topology.apply import create_topics
    from topology.catalogue import HEALTH_EXAM_RESULTS, Catalogue
    from topology.connection import Connection, environment

    prefix = f"bench-gw-{uuid.uuid4().hex[:6]}."
    catalogue = Catalogue.build(prefix=prefix, replication_factor=1, input_partitions=12, provinces=[])
    create_topics(bootstrap, catalogue)
    with RegistryClient(registry_url) as registry:
        contracts.register(registry, catalogue)  # as the operator: the gateway only looks schema ids up
    conn = Connection(bootstrap=bootstrap, registry_url=registry_url, prefix=prefix)
    key = ec.generate_private_key(ec.SECP256R1())
    publish_key(conn, catalogue, CLINIC, key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    api_key = issue(work / "keys.json", CLINIC, work / "clinic.apikey").read_text().strip()
    now = datetime.now(timezone.utc)
    bodies = []
    for i in range(count):
        cert = signature.signed(models.HealthCertificate(
            event_id=str(uuid.uuid4()), occurred_at=now, source={"system": "clinic", "instance": CLINIC},
            certificate_number=f"{i:05d}/GKSKLX/{CLINIC}/26", version_kind="ADD", cccd=f"001085{i:06d}",
            clinic_code=CLINIC, health_group=3, requested_class="B", conclusions=[{"licence_class": "B", "fit": True}],
            signed_at=now - timedelta(days=1), doctor="BS. Trần Văn Ánh", signature=b""), key)
        bodies.append(CertificateBody.model_validate(cert.model_dump()).model_dump_json().encode())

    port = free_port()
    env = {**environment(), **conn.to_env()}
    log = open(work / "gateway.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "gplx_bus.cli", "clinic", "serve", "--port", str(port),
                               "--api-keys", str(work / "keys.json"), "--tls-dir", str(work / "tls")],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"https://127.0.0.1:{port}"
    try:
        _wait_ready(url, work / "tls" / "ca.pem", server)
        context = ssl.create_default_context(cafile=str(work / "tls" / "ca.pem"))
        echo = _load(url, context, api_key, "/v1/echo", bodies, clients)
        gateway = _load(url, context, api_key, "/v1/certificates", bodies, clients)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    on_topic = _records(bootstrap, catalogue.name(HEALTH_EXAM_RESULTS))
    accepted = gateway.pop("accepted")
    echo.pop("accepted")
    if on_topic != accepted:
        raise RuntimeError(f"{accepted} certificates answered 202 but {on_topic} records on the topic")
    return {"clients": clients, "certificates": count, "echo": echo, "gateway": gateway,
            "on_topic": on_topic, "share_of_http_ceiling": round(gateway["per_s"] / echo["per_s"], 3)}


def _wait_ready(url: str, ca: Path, server: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the gateway exited with {server.returncode} (see its log)")
        if ca.exists():
            try:
                if httpx.get(url + "/health", verify=ssl.create_default_context(cafile=str(ca)),
                             timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.2)  # polling the gateway's readiness
    raise RuntimeError("the gateway did not become ready")


def _load(url: str, context: ssl.SSLContext, api_key: str, path: str, bodies: list[bytes], clients: int) -> dict:
    """POST every body once, `clients` at a time; throughput and latency percentiles."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    cursor = iter(range(len(bodies)))

    def client() -> None:
        mine, seen = [], {}
        with httpx.Client(base_url=url, verify=context, timeout=60, headers={
                "Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}) as http:
            while True:
                with lock:
                    i = next(cursor, None)
                if i is None:
                    break
                start = time.perf_counter()
                status = http.post(path, content=bodies[i]).status_code
                mine.append(time.perf_counter() - start)
                seen[status] = seen.get(status, 0) + 1
        with lock:
            latencies.extend(mine)
            for status, n in seen.items():
                statuses[status] = statuses.get(status, 0) + n

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {"requests": len(latencies), "seconds": round(elapsed, 2), "per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(cuts[49] * 1000, 1), "p99_ms": round(cuts[98] * 1000, 1),
            "statuses": {str(k): v for k, v in sorted(statuses.items())}, "accepted": statuses.get(202, 0)}


def _records(bootstrap: str, topic: str) -> int:
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    consumer = new_client(KafkaConsumer, bootstrap_servers=bootstrap, group_id=None)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Clinic gateway throughput and latency against the HTTP ceiling.")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--certificates", type=int, default=3000)
    args = parser.parse_args()
    from topology.connection import BOOTSTRAP_ENV, REGISTRY_URL_ENV, environment

    env = environment()  # a cluster of one's own if set, else a local one for the run
    print(json.dumps(run(env.get(BOOTSTRAP_ENV), env.get(REGISTRY_URL_ENV), clients=args.clients,
                         certificates=args.certificates), indent=2))
