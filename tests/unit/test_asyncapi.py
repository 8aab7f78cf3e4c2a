"""The AsyncAPI document against its sources: the topic catalogue (channels, ACLs) and the Avro contracts.

No node here: the reference validator runs in tests/integration/test_asyncapi_validator.py.
"""
from __future__ import annotations

import dataclasses
import json

import pytest
import typer
from typer.testing import CliRunner

from gplx_bus.commands.asyncapi import command
from schemas import loader
from schemas.errors import SchemaError
from topology import asyncapi
from topology.catalogue import Catalogue, consumer_group

REGISTRY = "http://127.0.0.1:8081/apis/ccompat/v7"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.build(replication_factor=3)


@pytest.fixture(scope="module")
def doc(catalogue) -> dict:
    return asyncapi.build_document(catalogue, server_url="127.0.0.1:9092", registry_url=REGISTRY)


def resolve(doc: dict, ref: str):
    """Follow a local `#/a/b` reference (escaping is not needed for our ids)."""
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_header_and_server(doc):
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] and doc["info"]["version"] and "CCCD" in doc["info"]["description"]
    server = doc["servers"]["kafka"]
    assert server["host"] == "127.0.0.1:9092" and server["protocol"] == "kafka"
    assert server["bindings"]["kafka"] == {"schemaRegistryUrl": REGISTRY, "schemaRegistryVendor": "apicurio",
                                           "bindingVersion": "0.5.0"}
    json.dumps(doc)  # plain JSON data all the way down


def test_server_url_forms(catalogue):
    d = asyncapi.build_document(catalogue, server_url="kafka://b1:9092, b2:9092", registry_url=REGISTRY)
    assert d["servers"]["kafka"]["host"] == "b1:9092"
    assert "b2:9092" in d["servers"]["kafka"]["description"]
    with pytest.raises(ValueError, match="bootstrap"):
        asyncapi.build_document(catalogue, server_url=" , ", registry_url=REGISTRY)


def test_every_topic_is_a_channel_with_its_binding(catalogue, doc):
    channels = doc["channels"]
    assert len(channels) == len(catalogue) == 14 + 34
    by_address = {c["address"]: c for c in channels.values()}
    assert set(by_address) == set(catalogue.names())
    assert sum(a.startswith("cases.province.") for a in by_address) == 34
    for topic in catalogue:
        binding = by_address[topic.name]["bindings"]["kafka"]
        assert binding["topic"] == topic.name
        assert binding["partitions"] == topic.partitions and binding["replicas"] == topic.replication_factor == 3
        config = binding["topicConfiguration"]
        assert config["cleanup.policy"] == topic.configs["cleanup.policy"].split(",")
        assert config.get("retention.ms") == (int(topic.configs["retention.ms"]) if "retention.ms" in topic.configs
                                              else None)  # clinics.keys: compacted, no retention
        assert config["min.insync.replicas"] == 2
    assert by_address["cases.province.01"]["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"] == [
        "compact", "delete"]
    assert by_address["cases.events"]["bindings"]["kafka"]["topicConfiguration"]["retention.ms"] == 730 * 86_400_000
    assert by_address["health.exam-results"]["x-co-partition-group"] == "case-inputs"
    assert "x-co-partition-group" not in by_address["dlq"]
    assert "murmur2_random" in by_address["health.exam-results"]["x-partitioner"]
    assert "x-partitioner" not in by_address["dlq"]


def test_channels_carry_exactly_the_topics_event_types(catalogue, doc):
    by_address = {c["address"]: c for c in doc["channels"].values()}
    for topic in catalogue:
        messages = by_address[topic.name]["messages"]
        assert {resolve(doc, m["$ref"])["x-avro-full-name"] for m in messages.values()} == set(topic.event_types)


def test_every_event_type_is_a_message_with_its_avro_schema(doc):
    messages = doc["components"]["messages"]
    assert set(messages) == {loader.short_name(e) for e in loader.event_names()}
    for event in loader.event_names():
        message = messages[loader.short_name(event)]
        assert message["name"] == loader.short_name(event) and message["x-avro-full-name"] == event
        assert message["payload"] == {"schemaFormat": "application/vnd.apache.avro;version=1.9.0",
                                      "schema": loader.event_schema(event)}
        assert message["summary"] and message["title"] and message["contentType"] == "application/octet-stream"
        kafka = message["bindings"]["kafka"]
        assert (kafka["schemaIdLocation"], kafka["schemaIdPayloadEncoding"]) == ("payload", "confluent")
        key = kafka["key"] if event == "vn.gplx.clinics.ClinicKey" else resolve(doc, kafka["key"]["$ref"])
        assert key["type"] == "string"  # ClinicKey: "<clinic code>/<key id>", every other event: the CCCD
    health = messages["HealthCertificate"]
    assert health["title"] == "Health certificate"
    assert health["summary"].startswith("A driver's health certificate from a clinic")


def test_operations_match_the_topic_acls(catalogue, doc):
    internal = {t.name for t in catalogue.internal}  # the processor's changelogs: not part of the contract
    from_acls = {(a.principal, {"WRITE": "send", "READ": "receive"}[a.operation], a.resource_name)
                 for a in catalogue.acls()
                 if a.resource_type == "TOPIC" and a.pattern_type == "LITERAL" and a.operation in ("WRITE", "READ")
                 and a.resource_name not in internal}
    from_doc = {(op["x-principal"], op["action"], resolve(doc, op["channel"]["$ref"])["address"])
                for op in doc["operations"].values()}
    assert from_doc == from_acls
    assert len(doc["operations"]) == len(from_acls)  # no two pairs collapsed onto one operation id


def test_operation_ids_and_their_messages(catalogue, doc):
    ops = doc["operations"]
    for op_id in ("clinic_sends_health_exam_results", "province_01_receives_cases",
                  "case_processor_sends_cases_province_01", "case_processor_receives_cases_clock",
                  "case_processor_sends_cases_clock", "sre_receives_dlq", "portal_receives_issuance_requests"):
        assert op_id in ops, op_id
    assert ops["province_01_receives_cases"]["channel"] == {"$ref": "#/channels/cases_province_01"}
    for op in ops.values():
        channel_ref = op["channel"]["$ref"]
        # AsyncAPI 3: an operation's messages must be the channel's own (referenced through the channel)
        assert all(m["$ref"].startswith(channel_ref + "/messages/") for m in op["messages"])
        assert len(op["messages"]) == len(resolve(doc, channel_ref)["messages"])
        if op["action"] == "receive":
            assert op["bindings"]["kafka"]["groupId"]["enum"] == [consumer_group(op["x-principal"])]
        else:
            assert "bindings" not in op


def test_prefix_changes_addresses_not_ids():
    prefixed = Catalogue.build(prefix="t.", replication_factor=1)
    d = asyncapi.build_document(prefixed, server_url="localhost:9092", registry_url=REGISTRY)
    assert d["channels"]["cases_province_01"]["address"] == "t.cases.province.01"
    assert d["operations"]["province_01_receives_cases"]["bindings"]["kafka"]["groupId"]["enum"] == ["t.province-01"]
    assert d["channels"]["dlq"]["bindings"]["kafka"]["topicConfiguration"]["min.insync.replicas"] == 1


def test_an_event_without_a_schema_is_refused(catalogue):
    broken = dataclasses.replace(catalogue.topics[0], event_types=("vn.gplx.nowhere.Missing",))
    bad = Catalogue(prefix="", topics=(broken,) + catalogue.topics[1:], groups=catalogue.groups,
                    provinces=catalogue.provinces)
    with pytest.raises(SchemaError, match="vn.gplx.nowhere.Missing"):
        asyncapi.build_document(bad, server_url="localhost:9092", registry_url=REGISTRY)


def test_the_document_is_deterministic(catalogue, doc):
    again = asyncapi.build_document(catalogue, server_url="127.0.0.1:9092", registry_url=REGISTRY)
    assert asyncapi.to_yaml(again) == asyncapi.to_yaml(doc) and asyncapi.to_json(again) == asyncapi.to_json(doc)


# --- the YAML writer (its output is also read back by js-yaml in the integration test) --------------------------
def test_yaml_shapes():
    data = {"a": {"b": [1, "x", {"c": None, "d": True}], "e": {}, "f": []}, "$ref": "#/x", "yes": "no",
            "multi": "line one\n\nline two", "dotted.key": ["compact", "delete"], "nested": [[1, 2], []]}
    assert asyncapi.to_yaml(data) == (
        "a:\n"
        "  b:\n"
        "    - 1\n"
        "    - x\n"
        "    - c: null\n"
        "      d: true\n"
        "  e: {}\n"
        "  f: []\n"
        '$ref: "#/x"\n'
        '"yes": "no"\n'
        "multi: |-\n"
        "  line one\n"
        "\n"
        "  line two\n"
        "dotted.key:\n"
        "  - compact\n"
        "  - delete\n"
        "nested:\n"
        "  - - 1\n"
        "    - 2\n"
        "  - []\n"
    )


def test_yaml_quotes_what_would_change_meaning():
    for text in ("true", "Null", "3.0.0", "12", "-1", "a: b", "#comment", " lead", "trail ", "", "x\ty", "ok\u2028",
                 "đổi GPLX", "- item", "@at", "*star", "&anchor", "!tag", "%pct", "{}", "[x]", "'q'", '"dq"'):
        line = asyncapi.to_yaml({"k": text}).rstrip("\n")
        value = line[len("k: "):]
        assert value.startswith('"'), (text, line)
    assert asyncapi.to_yaml({"k": "ok\u2028"}) == 'k: "ok\\u2028"\n'
    assert asyncapi.to_yaml({"k": " indented\nblock"}).startswith('k: "')  # would need an indentation indicator
    assert asyncapi.to_yaml({"k": "ends\n"}).startswith('k: "')
    with pytest.raises(TypeError):
        asyncapi.to_yaml({"k": object()})


# --- the command ------------------------------------------------------------------------------------------------
def _cli():
    app = typer.Typer()
    app.command()(command)
    return app


def test_command_writes_json_and_yaml(tmp_path, monkeypatch):
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", "http://registry.example:8081/apis/ccompat/v7")
    monkeypatch.setenv("GPLX_REPLICATION_FACTOR", "1")
    runner = CliRunner()
    result = runner.invoke(_cli(), ["--output", str(tmp_path / "bus.json"), "--server", "kafka://k1:9092"])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "bus.json").read_text(encoding="utf-8"))
    assert written["servers"]["kafka"]["host"] == "k1:9092"
    assert written["servers"]["kafka"]["bindings"]["kafka"]["schemaRegistryUrl"].startswith("http://registry.example")
    assert "48 channels" in result.output

    result = runner.invoke(_cli(), ["--format", "yaml", "-o", str(tmp_path / "bus.yaml")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "bus.yaml").read_text(encoding="utf-8").startswith('asyncapi: "3.0.0"\n')

    result = runner.invoke(_cli(), ["--format", "xml"])
    assert result.exit_code == 2 and "'yaml', 'json'" in result.output


def test_command_reads_the_bootstrap_servers_from_the_environment(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker-a:9093,broker-b:9093")
    result = CliRunner().invoke(_cli(), ["--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["servers"]["kafka"]["host"] == "broker-a:9093"
