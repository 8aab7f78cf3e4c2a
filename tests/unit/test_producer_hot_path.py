"""The producer SDK's per-record shortcuts keep its contract: an event is validated once (never trusted when it was
built without validation), the compiled Avro writer gives fastavro's bytes, the cheap murmur2 gives kafka-python's
partitions."""
from __future__ import annotations

import copy
import io
import os
import pickle

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import DefaultPartitioner
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from producers.errors import InvalidEvent
from producers.sdk import key_partitioner, validated
from schemas import encoder, loader, logical, models, testing
from schemas.models import is_validated
from schemas.registry import InMemoryRegistry
from schemas.serde import AvroSerializer, SerializationContext
from topology.catalogue import expected_partition, murmur2

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")

EVENTS = sorted(models.EVENT_TYPES)


def _certificate() -> models.HealthCertificate:
    return testing.events(models.HealthCertificate).example()


# ---- validated once --------------------------------------------------------------------------------------------

def test_a_validated_event_is_trusted_and_not_validated_again():
    event = _certificate()
    assert is_validated(event) and is_validated(event.source)
    assert validated(event) is event  # no second validation: the same object back
    for same_values in (copy.copy(event), copy.deepcopy(event), pickle.loads(pickle.dumps(event)),
                        event.model_copy(), models.HealthCertificate.model_validate(event.model_dump())):
        assert is_validated(same_values) and same_values == event


def test_the_mark_is_invisible_to_dumps_equality_and_hashing():
    event = _certificate()
    built = models.HealthCertificate.model_construct(**dict(event))
    assert not is_validated(built)
    assert built == event and event.model_dump() == built.model_dump()
    assert "_gplx_validated" not in repr(event)
    assert dict(event).keys() == models.HealthCertificate.model_fields.keys()
    source = models.Source(system="x", instance="y")
    assert source.model_dump_json() == '{"system":"x","instance":"y"}'
    assert hash(source) == hash(models.Source.model_construct(**dict(source)))


@pytest.mark.parametrize("unchecked", [
    lambda e: type(e).model_construct(**{**dict(e), "health_group": 9}),
    lambda e: e.model_copy(update={"health_group": 9}),
    lambda e: copy.deepcopy(e.model_copy(update={"health_group": 9})),
    # a validated event holding a nested record made without validation: pydantic does not look inside it
    lambda e: type(e)(**{**dict(e), "source": models.Source.model_construct(system=7, instance="y")}),
    lambda e: type(e)(**{**dict(e), "conclusions": [models.Conclusion.model_construct(licence_class=7, fit="maybe")]}),
], ids=["model_construct", "model_copy_update", "copy_of_an_update", "nested_construct", "nested_in_a_list"])
def test_events_built_without_validation_are_validated_again_and_refused(unchecked):
    bad = unchecked(_certificate())
    assert not is_validated(bad)
    with pytest.raises(InvalidEvent):
        validated(bad)


def test_a_valid_copy_with_an_update_is_validated_again_and_accepted():
    event = _certificate()
    updated = event.model_copy(update={"doctor": "BS. Khác"})
    assert not is_validated(updated)
    again = validated(updated)
    assert is_validated(again) and again.doctor == "BS. Khác" and again is not updated


# ---- the compiled Avro writer ------------------------------------------------------------------------------------

def _fastavro_body(event: models.Event) -> bytes:
    schema = loader.event_schema(event.avro_name)
    to_wire = logical.converters(schema)[0]
    record = event.to_avro_dict()
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(logical.strip(schema)),
                               record if to_wire is None else to_wire(record))
    return buf.getvalue()


@pytest.mark.parametrize("name", EVENTS)
def test_compiled_writer_gives_fastavros_bytes(name):
    model = models.EVENT_TYPES[name]
    encode = encoder.compile_writer(loader.event_schema(name))
    assert encode is not None, f"{name}: no compiled writer (a union other than ['null', T]?)"

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(testing.events(model))
    def prop(event):
        assert encode(event) == _fastavro_body(event)
        assert encode(event, b"\x00head") == b"\x00head" + _fastavro_body(event)

    prop()


def test_varints_beyond_the_small_table_and_negative_numbers():
    out = bytearray()
    for n in (0, -1, 1, 4095, 4096, -4096, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)):
        encoder._long(out, n)
    buf = io.BytesIO()
    for n in (0, -1, 1, 4095, 4096, -4096, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)):
        fastavro.schemaless_writer(buf, "long", n)
    assert bytes(out) == buf.getvalue()


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic warns when dumping the bad value for fastavro
def test_serializer_uses_fastavro_for_an_event_not_validated():
    ser = AvroSerializer(InMemoryRegistry())
    ctx = SerializationContext("health.exam-results")
    event = _certificate()
    unchecked = event.model_copy(update={"doctor": event.doctor})  # same values, but not known to be valid
    assert ser(unchecked, ctx) == ser(event, ctx)
    broken = type(event).model_construct(**{**dict(event), "health_group": "three"})
    with pytest.raises(Exception) as exc:  # fastavro checks the value the compiled writer would trust
        ser(broken, ctx)
    assert type(exc.value).__name__ == "SerializationError"


# ---- partitions --------------------------------------------------------------------------------------------------

@given(st.binary(max_size=64))
def test_murmur2_is_kafka_pythons(data):
    assert murmur2(data) == kafka_python_murmur2(data)


def test_key_partitioner_picks_default_partitioners_partition():
    class Cluster:  # the two calls partitioners make on kafka-python's ClusterMetadata
        def __init__(self, n):
            self.n = n

        def topics(self):
            return {"t"}

        def partitions_for_topic(self, topic):
            return set(range(self.n))

        def available_partitions_for_topic(self, topic):
            return set(range(self.n))

    ours, theirs = key_partitioner(), DefaultPartitioner()
    for n in (1, 3, 12, 48):
        cluster = Cluster(n)
        for _ in range(300):
            key = os.urandom(12)
            assert ours.partition("t", None, key, None, b"", cluster) == \
                theirs.partition("t", None, key, None, b"", cluster) == expected_partition(key, n)
    assert ours.partition("t", None, None, None, b"", Cluster(12)) in range(12)  # no key: a random partition
