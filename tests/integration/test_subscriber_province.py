"""Provincial subscriber on the real broker and registry: reads its province topic, accepts an old province code,
skips undecodable records, and resumes after a restart without re-reading."""
from __future__ import annotations

import datetime as dt
import io
import json
import uuid

import pytest
from typer.testing import CliRunner

from consumers.subscriber import JsonlOutput, ProvinceSubscriber
from schemas import models
from schemas.registry import RegistryClient
from schemas.serde import AvroSerializer, SerializationContext, key_bytes
from topology.catalogue import Province

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc
PROVINCES = [Province("08", "Tuyên Quang"), Province("79", "Hồ Chí Minh")]


@pytest.fixture
def catalogue(private_topics):
    return private_topics(PROVINCES)


def case_event(i: int) -> models.Event:
    """A case of old Hà Giang (CCCD 002...), now routed to Tuyên Quang (08)."""
    common = dict(event_id=str(uuid.uuid4()), occurred_at=dt.datetime(2025, 8, 1, 3, i % 60, tzinfo=UTC),
                  source={"system": "test", "instance": "it"}, case_id=f"case-{i}",
                  cccd=f"0020850{i:05d}", province="08")
    if i % 2:
        return models.CaseRejected(**common, reasons=["EXAM_MISSING"], rule_set_version="2025.1")
    return models.CaseAwaiting(**common, missing=["PAYMENT_MISSING"])


def publish(bootstrap: str, registry_url: str, topic: str, events: list, raw: list[bytes] = ()) -> None:
    from kafka import KafkaProducer

    ser = AvroSerializer(RegistryClient(registry_url))
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for value in raw:
        producer.send(topic, key=b"x", value=value)
    for event in events:
        producer.send(topic, key=key_bytes(event.cccd), value=ser(event, SerializationContext(topic)))
    producer.flush(30)
    producer.close()


def subscriber(kafka_bootstrap, schema_registry_url, catalogue, out, **kw) -> ProvinceSubscriber:
    return ProvinceSubscriber(kafka_bootstrap, schema_registry_url, "02", output=JsonlOutput(out),
                              catalogue=catalogue, **kw)


def ids(out: io.StringIO) -> list[str]:
    return [json.loads(line)["event_id"] for line in out.getvalue().splitlines()]


def test_reads_its_province_and_resumes_without_rereading(kafka_bootstrap, schema_registry_url, catalogue):
    topic = catalogue.province_topic("08")
    first = [case_event(i) for i in range(5)]
    publish(kafka_bootstrap, schema_registry_url, topic, first, raw=[b"not avro at all"])

    # Run 1: old code 02 (Hà Giang) -> 08; from the beginning; the garbage record is skipped and counted.
    out = io.StringIO()
    sub = subscriber(kafka_bootstrap, schema_registry_url, catalogue, out, from_beginning=True)
    assert sub.province.describe() == "02 Hà Giang → 08 Tuyên Quang" and sub.topic == topic
    assert sub.group_id == catalogue.prefix + "province-08"
    result = sub.run(max_events=5, idle_timeout_s=30)
    assert (result.events, result.skipped) == (5, 1)
    assert sorted(ids(out)) == sorted(e.event_id for e in first)
    line = json.loads(out.getvalue().splitlines()[0])
    assert line["province"] == "08" and line["state_label"] in ("Chờ bổ sung", "Từ chối")

    # Run 2, through the CLI, after new events: only the new ones, although --from-beginning is given
    # (it applies only where the group has no committed offset).
    second = [case_event(i) for i in range(10, 13)]
    publish(kafka_bootstrap, schema_registry_url, topic, second)
    from gplx_bus.commands import subscribe
    import typer

    app = typer.Typer()
    app.command()(subscribe.command)
    cli = CliRunner().invoke(app, ["--province", "02", "--from-beginning", "--output", "jsonl", "--max-events", "3",
                                   "--idle-timeout", "30", "-b", kafka_bootstrap, "--registry-url",
                                   schema_registry_url, "--prefix", catalogue.prefix])
    assert cli.exit_code == 0, cli.output
    lines = [json.loads(x) for x in cli.stdout.splitlines() if x.startswith("{")]
    assert sorted(x["event_id"] for x in lines) == sorted(e.event_id for e in second)
    assert "02 Hà Giang → 08 Tuyên Quang" in cli.stderr

    # Run 3: nothing new, nothing shown again.
    out = io.StringIO()
    result = subscriber(kafka_bootstrap, schema_registry_url, catalogue, out).run(idle_timeout_s=3)
    assert (result.events, out.getvalue()) == (0, "")


def test_table_output_masks_cccd(kafka_bootstrap, schema_registry_url, catalogue):
    from consumers.subscriber import TableOutput

    event = case_event(1)
    publish(kafka_bootstrap, schema_registry_url, catalogue.province_topic("08"), [event])
    out = io.StringIO()
    result = ProvinceSubscriber(kafka_bootstrap, schema_registry_url, "08", output=TableOutput(out),
                                catalogue=catalogue, from_beginning=True).run(max_events=1, idle_timeout_s=30)
    assert result.events == 1
    text = out.getvalue()
    assert "Từ chối" in text and "Thiếu giấy khám sức khỏe" in text
    assert "002******001" in text and event.cccd not in text
