"""The local schema registry (Apicurio, Confluent-compatible API) builds, starts and speaks ccompat v7."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from deploy.local.registry import (
    CCOMPAT_PATH,
    REGISTRY_HEALTH_PATH,
    ensure_registry_built,
    registry_command,
)
from tests.network import accepts, non_loopback_addresses

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SR_JSON = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
READY_TIMEOUT_S = 120

RENEWAL_V1 = {
    "type": "record",
    "name": "RenewalRequested",
    "namespace": "vn.gplx.test",
    "fields": [
        {"name": "application_id", "type": "string"},
        {"name": "licence_number", "type": "string"},
    ],
}
# A new field without a default: readers on v2 cannot decode v1 records, so BACKWARD refuses it.
RENEWAL_V2_BREAKING = {
    **RENEWAL_V1,
    "fields": [*RENEWAL_V1["fields"], {"name": "licence_class", "type": "string"}],
}
RENEWAL_V2_OK = {
    **RENEWAL_V1,
    "fields": [*RENEWAL_V1["fields"], {"name": "licence_class", "type": ["null", "string"], "default": None}],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _canonical(schema: str | dict) -> str:
    parsed = json.loads(schema) if isinstance(schema, str) else schema
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"))


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _wait_ready(proc: subprocess.Popen, base: str, log: Path) -> float:
    started = time.monotonic()
    deadline = started + READY_TIMEOUT_S
    with httpx.Client(timeout=2.0) as client:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"registry exited with {proc.returncode} before ready:\n{log.read_text()[-4000:]}")
            try:
                if client.get(base + REGISTRY_HEALTH_PATH).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"registry not ready after {READY_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")
            time.sleep(0.1)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def test_registry_builds_starts_and_checks_compatibility(tmp_path):
    cache_dir = Path(os.environ.get("GPLX_HOME") or Path.home() / ".cache" / "gplx-bus")
    jar = ensure_registry_built(cache_dir)
    assert jar.is_file()

    port = _free_port()
    cmd, extra_env = registry_command(jar, port, tmp_path / "registry")
    log = tmp_path / "registry.log"
    base = f"http://127.0.0.1:{port}"
    ccompat = base + CCOMPAT_PATH
    subject = "gplx.renewal.requested-value"

    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env={**os.environ, **extra_env}, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        ready_s = _wait_ready(proc, base, log)
        print(f"registry ready in {ready_s:.1f} s, VmRSS {_rss_kib(proc.pid) // 1024} MiB")

        with httpx.Client(timeout=10.0) as client:
            # Register, then read back by id.
            r = client.post(f"{ccompat}/subjects/{subject}/versions", headers=SR_JSON,
                            json={"schema": json.dumps(RENEWAL_V1)})
            assert r.status_code == 200, r.text
            schema_id = r.json()["id"]
            assert isinstance(schema_id, int)

            r = client.get(f"{ccompat}/schemas/ids/{schema_id}")
            assert r.status_code == 200, r.text
            assert _canonical(r.json()["schema"]) == _canonical(RENEWAL_V1)

            # Registering the same schema again is idempotent.
            r = client.post(f"{ccompat}/subjects/{subject}/versions", headers=SR_JSON,
                            json={"schema": json.dumps(RENEWAL_V1)})
            assert r.json()["id"] == schema_id

            # Per-subject compatibility. Apicurio answers the PUT with "compatibilityLevel"
            # (Confluent answers "compatibility"); accept either.
            r = client.put(f"{ccompat}/config/{subject}", headers=SR_JSON, json={"compatibility": "BACKWARD"})
            assert r.status_code == 200, r.text
            assert "BACKWARD" in (r.json().get("compatibility"), r.json().get("compatibilityLevel"))
            r = client.get(f"{ccompat}/config/{subject}")
            assert r.json()["compatibilityLevel"] == "BACKWARD"

            # A new required field is refused by the check...
            r = client.post(f"{ccompat}/compatibility/subjects/{subject}/versions/latest",
                            params={"verbose": "true"}, headers=SR_JSON,
                            json={"schema": json.dumps(RENEWAL_V2_BREAKING)})
            assert r.status_code == 200, r.text
            print("compatibility check (breaking, verbose):", r.text)
            assert r.json()["is_compatible"] is False
            # ...and by registration, whose 409 message names the offending field.
            r = client.post(f"{ccompat}/subjects/{subject}/versions", headers=SR_JSON,
                            json={"schema": json.dumps(RENEWAL_V2_BREAKING)})
            print("register (breaking):", r.status_code, r.text)
            assert r.status_code == 409, r.text
            assert "licence_class" in r.json()["message"]

            # An optional field with a default is accepted.
            r = client.post(f"{ccompat}/compatibility/subjects/{subject}/versions/latest",
                            headers=SR_JSON, json={"schema": json.dumps(RENEWAL_V2_OK)})
            assert r.json()["is_compatible"] is True, r.text
            r = client.post(f"{ccompat}/subjects/{subject}/versions", headers=SR_JSON,
                            json={"schema": json.dumps(RENEWAL_V2_OK)})
            assert r.status_code == 200, r.text
            assert r.json()["id"] != schema_id
            assert client.get(f"{ccompat}/subjects/{subject}/versions").json() == [1, 2]
    finally:
        _stop(proc)
    assert proc.returncode is not None


def test_the_launched_registry_and_broker_listen_on_loopback_only(bus):
    """Apicurio 3.0.9 does not enforce basic auth: whoever reaches its port may delete schemas. The launcher binds
    it (and the broker) to 127.0.0.1, so from the machine's other addresses the ports refuse."""
    if os.environ.get("SCHEMA_REGISTRY_URL"):
        pytest.skip("the registry in SCHEMA_REGISTRY_URL was not started by our launcher")
    addresses = non_loopback_addresses()
    if not addresses:
        pytest.skip("this machine has no non-loopback address")
    ports = {"registry": urlsplit(bus.schema_registry_url).port}
    if bus.mode == "local":  # else the broker is not ours either
        ports["broker"] = int(bus.bootstrap_servers.rsplit(":", 1)[1])
    for name, port in ports.items():
        assert accepts("127.0.0.1", port), f"{name} is not listening on 127.0.0.1:{port}"
        reachable = [a for a in addresses if accepts(a, port)]
        assert not reachable, f"{name} port {port} is reachable on {reachable}"
