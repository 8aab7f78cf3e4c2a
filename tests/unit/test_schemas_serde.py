"""Serde properties: round trip is identity, bytes equal the Apache `avro` package's, the header is Confluent's."""
from __future__ import annotations

import io
import json
import struct

import avro.io
import avro.schema
import pytest
from hypothesis import HealthCheck, given, settings

from schemas import loader, models, serde, testing
from schemas.errors import (BadMagicByte, DomainInvalid, GarbagePayload, SchemaMismatch, SchemaNotFound,
                            SerializationError, TruncatedPayload, UnknownEventType, UnknownSchemaId)
from schemas.registry import InMemoryRegistry

# .example() gives a quick valid event where the property is not about the values themselves.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")

EVENTS = sorted(models.EVENT_TYPES)
TOPIC = "cases.events"
CTX = serde.SerializationContext(TOPIC)
_AVRO_WRITERS: dict[str, avro.io.DatumWriter] = {}


def avro_package_bytes(avro_name: str, record: dict) -> bytes:
    """Reference encoding by the Apache avro package (slow, independent implementation)."""
    if avro_name not in _AVRO_WRITERS:
        _AVRO_WRITERS[avro_name] = avro.io.DatumWriter(avro.schema.parse(loader.event_schema_text(avro_name)))
    buf = io.BytesIO()
    _AVRO_WRITERS[avro_name].write(record, avro.io.BinaryEncoder(buf))
    return buf.getvalue()


@pytest.fixture(scope="module")
def registry():
    return InMemoryRegistry()


@pytest.mark.parametrize("name", EVENTS)
def test_round_trip_identity_and_bytes_match_avro_package(name, registry):
    model = models.EVENT_TYPES[name]
    ser, de = serde.AvroSerializer(registry), serde.AvroDeserializer(registry)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(testing.events(model))
    def prop(event):
        data = ser(event, CTX)
        magic, schema_id = struct.unpack(">bI", data[:5])
        assert magic == 0
        assert registry.get_by_id(schema_id) == loader.event_schema_text(name)
        assert de(data, CTX) == event
        assert data[5:] == avro_package_bytes(name, event.to_avro_dict())

    prop()


def test_subject_is_topic_record_name(registry):
    ser = serde.AvroSerializer(registry)
    event = testing.events(models.CaseRejected).example()
    ser(event, serde.SerializationContext("cases.events"))
    ser(event, serde.SerializationContext("cases.province.01"))
    assert "cases.events-vn.gplx.cases.CaseRejected" in registry.subjects()
    assert "cases.province.01-vn.gplx.cases.CaseRejected" in registry.subjects()


def test_one_event_for_several_topics_is_the_same_bytes_as_one_by_one():
    class PerSubjectIds(InMemoryRegistry):  # a registry that gives each subject its own id, as one may
        def register(self, subject, schema):
            super().register(subject, schema)
            return 99 + len(self.subjects())  # subjects are registered once each: the serializer caches them

    ser = serde.AvroSerializer(PerSubjectIds())
    event = testing.events(models.CaseApproved).example()
    contexts = [serde.SerializationContext(t) for t in ("cases.events", "cases.province.01", "cases.province.79")]
    together = ser.serialize_for_topics(event, contexts)
    assert together == [ser(event, ctx) for ctx in contexts]
    assert len({value[:5] for value in together}) == 3 and len({value[5:] for value in together}) == 1


def test_keys_are_plain_utf8():
    assert serde.key_bytes("001090123456") == b"001090123456"
    assert serde.key_str(b"001090123456") == "001090123456"
    assert serde.key_bytes(None) is None


def test_tombstones_pass_through(registry):
    assert serde.AvroSerializer(registry)(None, CTX) is None
    assert serde.AvroDeserializer(registry)(None, CTX) is None


def test_without_auto_register_an_unregistered_schema_fails_fast():
    ser = serde.AvroSerializer(InMemoryRegistry(), auto_register=False)
    with pytest.raises(SchemaNotFound):
        ser(testing.events(models.CaseOpened).example(), CTX)


def test_bad_record_raises_serialization_error(registry):
    with pytest.raises(SerializationError) as exc:
        serde.AvroSerializer(registry).serialize_dict("vn.gplx.payment.PaymentTransaction", {"oops": 1}, CTX)
    assert "vn.gplx.payment.PaymentTransaction" in str(exc.value) and TOPIC in str(exc.value)


# ---- typed errors ----

def test_bad_magic_byte(registry):
    de = serde.AvroDeserializer(registry)
    for data in (b"", b"\x00\x00", b"\x01\x00\x00\x00\x01abc", b'{"json": true}'):
        with pytest.raises(BadMagicByte) as exc:
            de(data, CTX)
        assert exc.value.code == "BAD_MAGIC_BYTE" and TOPIC in str(exc.value)


def test_unknown_schema_id(registry):
    with pytest.raises(UnknownSchemaId) as exc:
        serde.AvroDeserializer(registry)(b"\x00\x7f\xff\xff\xfe" + b"\x00" * 10, CTX)
    assert exc.value.code == "UNKNOWN_SCHEMA_ID" and "2147483646" in str(exc.value)


def test_truncated_and_garbage(registry):
    event = testing.events(models.HealthCertificate).example().model_copy(update={"signature": b"s" * 20})
    data = serde.AvroSerializer(registry)(event, CTX)  # ends in 20 signature bytes: cutting 3 is a truncation
    de = serde.AvroDeserializer(registry)
    with pytest.raises(TruncatedPayload) as exc:
        de(data[:-3], CTX)
    assert "vn.gplx.clinics.HealthCertificate" in str(exc.value)
    with pytest.raises(GarbagePayload) as exc:
        de(data + b"\x00", CTX)
    assert "left over" in str(exc.value)


def test_domain_invalid_names_field_and_rule_but_no_pii(registry):
    ser, de = serde.AvroSerializer(registry), serde.AvroDeserializer(registry)
    record = testing.events(models.ApplicationSubmitted).example().to_avro_dict()
    record["cccd"] = "003090123456"  # schema-valid, domain-invalid (03 is no province)
    data = ser.serialize_dict("vn.gplx.portal.ApplicationSubmitted", record, CTX)
    with pytest.raises(DomainInvalid) as exc:
        de(data, CTX)
    msg = str(exc.value)
    assert exc.value.code == "DOMAIN_INVALID"
    assert "field 'cccd' breaks rule cccd_province" in msg and TOPIC in msg and "ApplicationSubmitted" in msg
    assert "003090123456" not in msg
    # decode() skips domain validation, for tools that must read what is there
    name, raw = de.decode(data, CTX)
    assert name == "vn.gplx.portal.ApplicationSubmitted" and raw["cccd"] == "003090123456"


def test_unknown_event_type_and_unsafe_writer_schemas():
    reg = InMemoryRegistry()
    de = serde.AvroDeserializer(reg)
    foreign = reg.register("x-foreign", {"type": "record", "name": "Foreign", "namespace": "elsewhere",
                                         "fields": [{"name": "a", "type": "string"}]})
    with pytest.raises(UnknownEventType):
        de(struct.pack(">bI", 0, foreign) + b"\x02a", CTX)
    # A writer schema claiming to be ours but with an array of nulls: refused before reading any payload.
    hostile = loader.event_schema("vn.gplx.cases.CaseAwaiting")
    hostile["fields"].append({"name": "spin", "type": {"type": "array", "items": "null"}, "default": []})
    hid = reg.register("x-hostile", hostile)
    with pytest.raises(SchemaMismatch) as exc:
        de(struct.pack(">bI", 0, hid) + b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f", CTX)
    assert "zero-width" in str(exc.value)
    recursive = {"type": "record", "name": "CaseAwaiting", "namespace": "vn.gplx.cases", "fields": [
        {"name": "next", "type": ["null", "vn.gplx.cases.CaseAwaiting"], "default": None}]}
    rid = reg.register("x-recursive", recursive)
    with pytest.raises(SchemaMismatch) as exc:
        de(struct.pack(">bI", 0, rid) + b"\x02" * 100_000 + b"\x00", CTX)
    assert "recursive" in str(exc.value)


# ---- schema evolution on the wire ----

def _evolved(name, extra_field):
    schema = loader.event_schema(name)
    schema["fields"].append(extra_field)
    return schema


def test_newer_writer_with_extra_defaulted_field_is_read_by_current_reader():
    reg = InMemoryRegistry()
    name = "vn.gplx.payment.PaymentTransaction"
    newer = _evolved(name, {"name": "channel", "type": "string", "default": "web", "doc": "Payment channel."})
    event = testing.events(models.PaymentTransaction).example()
    import fastavro
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(newer), {**event.to_avro_dict(), "channel": "app"})
    sid = reg.register(serde.subject_name(TOPIC, name), newer)
    assert serde.AvroDeserializer(reg)(struct.pack(">bI", 0, sid) + buf.getvalue(), CTX) == event


def test_incompatible_writer_is_schema_mismatch():
    reg = InMemoryRegistry(default_level="NONE")
    name = "vn.gplx.payment.PaymentTransaction"
    older = loader.event_schema(name)
    older["fields"] = [f for f in older["fields"] if f["name"] != "gateway_reference"]  # our reader needs it
    sid = reg.register("x-old", older)
    with pytest.raises(SchemaMismatch) as exc:
        serde.AvroDeserializer(reg)(struct.pack(">bI", 0, sid) + b"\x00" * 40, CTX)
    assert "gateway_reference" in str(exc.value)


def test_in_memory_registry_enforces_compatibility():
    reg = InMemoryRegistry()
    name = "vn.gplx.payment.PaymentTransaction"
    subject = serde.subject_name(TOPIC, name)
    reg.register(subject, loader.event_schema_text(name))
    breaking = _evolved(name, {"name": "channel", "type": "string", "doc": "no default"})
    ok, messages = reg.check_compatibility(subject, breaking)
    assert not ok and any("'channel' added without a default" in m for m in messages)
    from schemas.errors import IncompatibleSchema
    with pytest.raises(IncompatibleSchema):
        reg.register(subject, breaking)
    fine = _evolved(name, {"name": "channel", "type": "string", "default": "web", "doc": "d"})
    assert reg.register(subject, json.dumps(fine)) != reg.lookup(subject, loader.event_schema_text(name))
