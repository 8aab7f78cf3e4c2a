"""The generated AsyncAPI document through the reference validator (npm @asyncapi/parser + Avro schema parser).

Why node: the Python validators we tried accept documents the reference parser rejects. The validator lives in
deploy/asyncapi/ (pinned by its package-lock.json); this module installs it with `npm ci` when node_modules is
missing or older than the lock file, so a fresh clone needs only node and npm. No Kafka broker is needed.

The negative tests matter as much as the positive one: they show the validator really reports broken references,
operations using another channel's messages, broken Avro schemas and binding values out of range as errors.
"""
from __future__ import annotations

import copy
import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gplx_bus.commands.asyncapi import command
from topology import asyncapi
from topology.catalogue import Catalogue

VALIDATOR_DIR = Path(__file__).resolve().parents[2] / "deploy" / "asyncapi"
REGISTRY = "http://127.0.0.1:8081/apis/ccompat/v7"


@pytest.fixture(scope="session")
def validator() -> str:
    """Path of validate.mjs, after `npm ci` if the installed packages are missing or stale."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        pytest.skip("node and npm are needed for the AsyncAPI validator (deploy/asyncapi)")
    installed = VALIDATOR_DIR / "node_modules" / ".package-lock.json"  # npm writes it after every install
    lock = VALIDATOR_DIR / "package-lock.json"
    with open(VALIDATOR_DIR / ".install.lock", "w") as guard:  # parallel test runs must not install at once
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
            # --ignore-scripts: no dependency needs one; the only install script is a telemetry ping.
            subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=VALIDATOR_DIR,
                           check=True, timeout=600, env={**os.environ, "SCARF_ANALYTICS": "false"},
                           capture_output=True)
    return str(VALIDATOR_DIR / "validate.mjs")


def validate(validator: str, path: Path) -> tuple[int, dict]:
    done = subprocess.run(["node", validator, str(path), "--json"], capture_output=True, text=True, timeout=180)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.fixture(scope="module")
def document() -> dict:
    return asyncapi.build_document(Catalogue.build(replication_factor=3), server_url="127.0.0.1:9092",
                                   registry_url=REGISTRY)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_the_generated_document_has_no_errors_nor_warnings(validator, tmp_path, fmt, monkeypatch):
    monkeypatch.setenv("GPLX_REPLICATION_FACTOR", "3")
    app = typer.Typer()
    app.command()(command)
    out = tmp_path / f"gplx-bus.{fmt}"
    result = CliRunner().invoke(app, ["--output", str(out), "--format", fmt])
    assert result.exit_code == 0, result.output

    code, report = validate(validator, out)
    assert report["errors"] == [] and code == 0
    assert report["warnings"] == []
    expected = asyncapi.build_document(Catalogue.build(), server_url="x:9092", registry_url=REGISTRY)
    assert report["counts"] == {"channels": len(expected["channels"]), "operations": len(expected["operations"]),
                                "messages": len(expected["components"]["messages"]), "servers": 1}
    assert report["counts"]["channels"] == 14 + 34  # 14 topics (clinics.keys the latest) + one per province


def test_the_yaml_reads_back_as_the_same_data(validator, tmp_path, document):
    """The hand-written YAML writer, checked by a real YAML parser (js-yaml, what the AsyncAPI parser uses)."""
    tricky = ["true", "no", "3.0.0", "-1", "a: b", "#x", " lead", "trail ", "", "tab\there", "nl\n", "\nlead nl",
              "two\n\nparas", "  indented\nblock", "quote \" and \\ backslash", "đổi GPLX", "line\u2028sep",
              "c1\u0085ctl", "emoji \U0001F697", "*star", "&amp", "!tag", "@at", "`tick`", "{a}", "[b]", "- dash"]
    data = {**document, "x-tricky": {f"k{i}": s for i, s in enumerate(tricky)} | {"list": tricky, "keys": {
        s or "empty": i for i, s in enumerate(tricky[:8])}}}
    path = tmp_path / "roundtrip.yaml"
    path.write_text(asyncapi.to_yaml(data), encoding="utf-8")
    done = subprocess.run(["node", validator, str(path), "--print-input"], capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout) == data


def _break(document: dict, how: str) -> dict:
    d = copy.deepcopy(document)
    if how == "operation-to-missing-channel":
        d["operations"]["clinic_sends_health_exam_results"]["channel"] = {"$ref": "#/channels/no_such_channel"}
    elif how == "message-of-another-channel":
        d["operations"]["clinic_sends_health_exam_results"]["messages"] = [
            {"$ref": "#/channels/dlq/messages/DeadLetter"}]
    elif how == "avro-undefined-type":
        d["components"]["messages"]["HealthCertificate"]["payload"]["schema"]["fields"][0]["type"] = "vn.gplx.Nope"
    elif how == "avro-not-a-type":
        d["components"]["messages"]["LicenceStatus"]["payload"]["schema"]["type"] = "recrod"
    elif how == "binding-out-of-range":
        d["channels"]["dlq"]["bindings"]["kafka"]["partitions"] = 0
    return d


@pytest.mark.parametrize("how, code, path_start", [
    ("operation-to-missing-channel", "invalid-ref", "operations/clinic_sends_health_exam_results/channel"),
    ("message-of-another-channel", "asyncapi3-operation-messages-from-referred-channel",
     "operations/clinic_sends_health_exam_results/messages/0"),
    ("avro-undefined-type", "avro-schema", "components/messages/HealthCertificate/payload/schema"),
    ("avro-not-a-type", "asyncapi-document-resolved", "components/messages/LicenceStatus/payload"),
    ("binding-out-of-range", "asyncapi-document-resolved", "channels/dlq/bindings/kafka"),
])
def test_a_broken_document_is_reported_as_an_error(validator, tmp_path, document, how, code, path_start):
    path = tmp_path / f"{how}.json"
    path.write_text(asyncapi.to_json(_break(document, how)), encoding="utf-8")
    exit_code, report = validate(validator, path)
    assert exit_code == 1 and not report["valid"]
    assert any(e["code"] == code and e["path"].startswith(path_start) for e in report["errors"]), report["errors"]
