"""Contracts: every .avsc is well formed and documented, and its generated model agrees with it field by field."""
from __future__ import annotations

import datetime as dt
import enum
import json
import typing
from importlib import resources

import fastavro
import pytest
from pydantic import AwareDatetime, ValidationError

from schemas import loader, models, reference

EVENTS = sorted(models.EVENT_TYPES)
META = ["event_id", "occurred_at", "source", "correlation_id"]
AREAS = {"portal", "clinics", "identity", "police", "payment", "cases", "dlq", "processor"}


def test_every_event_named_in_the_issue_exists():
    short = {loader.short_name(n) for n in EVENTS}
    assert short >= {
        "ApplicationSubmitted", "ApplicationWithdrawn", "HealthCertificate", "IdentityCheckRequested",
        "IdentityCheckResult", "LicenceLookupRequested", "LicenceStatus", "PaymentTransaction", "RefundRequested",
        "CaseOpened", "CaseAwaiting", "CaseApproved", "CaseRejected", "CaseEscalated", "IssuanceRequested",
        "DeadLetter"}


def _walk_records(schema):
    """Yield every record and enum definition inside a schema."""
    if isinstance(schema, list):
        for b in schema:
            yield from _walk_records(b)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum"):
            yield schema
        for f in schema.get("fields", []):
            yield from _walk_records(f["type"])
        for key in ("items", "values"):
            if key in schema:
                yield from _walk_records(schema[key])
        if isinstance(schema.get("type"), (dict, list)):
            yield from _walk_records(schema["type"])


@pytest.mark.parametrize("name", EVENTS)
def test_schema_parses_is_documented_and_namespaced(name):
    schema = loader.event_schema(name)
    fastavro.parse_schema(schema)  # raises if not valid Avro
    assert name.startswith("vn.gplx.") and name.split(".")[2] in AREAS
    for rec in _walk_records(schema):
        assert rec.get("doc"), f"{name}: {rec['name']} has no doc"
        for f in rec.get("fields", []):
            assert f.get("doc"), f"{name}: field {rec['name']}.{f['name']} has no doc"
        if rec["type"] == "enum":
            assert rec.get("default") in rec["symbols"], f"{rec['name']}: enum needs a default for forward compat"


@pytest.mark.parametrize("name", EVENTS)
def test_common_metadata_on_every_event(name):
    fields = {f["name"]: f for f in loader.event_schema(name)["fields"]}
    assert list(fields)[:4] == META
    assert fields["event_id"]["type"] == {"type": "string", "logicalType": "uuid"}
    assert fields["occurred_at"]["type"] == {"type": "long", "logicalType": "timestamp-millis"}
    assert fields["correlation_id"]["type"] == ["null", "string"] and fields["correlation_id"]["default"] is None
    src = fields["source"]["type"]
    src_name = src if isinstance(src, str) else f"{src['namespace']}.{src['name']}"
    assert src_name == "vn.gplx.common.Source"


def test_case_events_carry_case_cccd_and_current_province():
    for name in EVENTS:
        if ".cases." in name or name.endswith(("Requested", "Result", "LicenceStatus")):
            fields = {f["name"] for f in loader.event_schema(name)["fields"]}
            assert {"case_id", "cccd", "province"} <= fields, name


def test_reason_code_is_defined_once_and_shared():
    texts = [p.read_text() for area in resources.files("schemas").joinpath("avro").iterdir() if area.is_dir()
             for p in area.iterdir()]
    definitions = [t for t in texts if '"name": "ReasonCode"' in t]
    assert len(definitions) == 1
    users = [n for n in EVENTS if any(r["name"] == "ReasonCode" and r["namespace"] == "vn.gplx.common"
                                      for r in _walk_records(loader.event_schema(n)))]
    assert {loader.short_name(n) for n in users} >= {"CaseAwaiting", "CaseRejected", "CaseEscalated", "RefundRequested"}
    rc = loader.shared_type("vn.gplx.common.ReasonCode")
    assert {"IDENTITY_MISMATCH", "PHONE_NOT_TIED", "EXAM_MISSING", "EXAM_EXPIRED", "UNFIT", "PAYMENT_FAILED",
            "PAYMENT_MISSING", "LICENCE_NOT_FOUND", "LICENCE_REVOKED", "UNRESOLVED_VIOLATION", "ZERO_POINTS",
            "LICENCE_EXPIRED", "IDENTITY_MISSING", "LICENCE_STATUS_MISSING", "APPLICATION_WITHDRAWN"} <= set(rc["symbols"])
    # The same Python enum serves every event (one ReasonCode, not one per file).
    assert models.ENUM_TYPES["vn.gplx.common.ReasonCode"] is models.ReasonCode


def test_dead_letter_error_codes_match_error_classes():
    from schemas.errors import ERROR_CLASSES
    symbols = set(models.ErrorCode.__members__)
    assert set(ERROR_CLASSES) <= symbols


# ---- model <-> schema agreement, computed independently of the generator ----

_EXPECTED = {"string": str, "bytes": bytes, "boolean": bool, "int": int, "long": int, "double": float, "float": float}


def _strip(annotation):
    """Remove Annotated[...] wrappers."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _assert_agrees(avro_type, annotation, where):
    annotation = _strip(annotation)
    if isinstance(avro_type, list):
        assert avro_type[0] == "null" and len(avro_type) == 2, where
        args = typing.get_args(annotation)
        assert type(None) in args, f"{where}: nullable in schema, not optional in model"
        inner = [a for a in args if a is not type(None)]
        return _assert_agrees(avro_type[1], inner[0], where)
    assert type(None) not in typing.get_args(annotation), f"{where}: optional in model, not nullable in schema"
    if isinstance(avro_type, str) and avro_type in _EXPECTED:
        assert annotation is _EXPECTED[avro_type], f"{where}: {avro_type} vs {annotation}"
        return
    if isinstance(avro_type, str):  # named reference
        target = models.RECORD_TYPES.get(avro_type) or models.ENUM_TYPES.get(avro_type)
        assert annotation is target, where
        return
    logical = avro_type.get("logicalType")
    if logical == "uuid":
        assert annotation is str, where
    elif logical == "timestamp-millis":
        assert annotation is AwareDatetime, f"{where}: timestamps must be timezone-aware datetimes"
    elif logical == "date":
        assert annotation is dt.date, where
    elif avro_type["type"] == "array":
        assert typing.get_origin(annotation) is list, where
        _assert_agrees(avro_type["items"], typing.get_args(annotation)[0], where + "[]")
    elif avro_type["type"] == "enum":
        assert issubclass(annotation, enum.Enum) and [m.value for m in annotation] == avro_type["symbols"], where
    elif avro_type["type"] == "record":
        _assert_record_agrees(avro_type, annotation, where)
    else:
        _assert_agrees(avro_type["type"], annotation, where)


def _assert_record_agrees(schema, model, where):
    fields = schema["fields"]
    assert list(model.model_fields) == [f["name"] for f in fields], f"{where}: field names/order differ"
    for f in fields:
        info = model.model_fields[f["name"]]
        path = f"{where}.{f['name']}"
        _assert_agrees(f["type"], info.annotation, path)
        if "default" in f:
            assert not info.is_required() and info.default == f["default"], f"{path}: default differs"
        else:
            assert info.is_required(), f"{path}: required in schema, has a default in model"
        assert info.description == f["doc"], f"{path}: doc not carried to the model"


@pytest.mark.parametrize("name", EVENTS)
def test_model_agrees_with_schema_field_by_field(name):
    model = models.EVENT_TYPES[name]
    assert model.avro_name == name
    _assert_record_agrees(loader.event_schema(name), model, loader.short_name(name))


def test_agreement_check_can_fail():
    """The comparison above must notice a drifted model (guards against a vacuous test)."""
    schema = loader.event_schema("vn.gplx.payment.PaymentTransaction")
    schema["fields"].append({"name": "extra", "type": "string", "doc": "x"})
    with pytest.raises(AssertionError):
        _assert_record_agrees(schema, models.PaymentTransaction, "PaymentTransaction")
    schema = loader.event_schema("vn.gplx.payment.PaymentTransaction")
    next(f for f in schema["fields"] if f["name"] == "amount_vnd")["type"] = "string"
    with pytest.raises(AssertionError):
        _assert_record_agrees(schema, models.PaymentTransaction, "PaymentTransaction")


def test_unknown_field_is_refused():
    with pytest.raises(ValidationError) as exc:
        models.Source(system="portal", instance="p1", colour="red")
    assert exc.value.errors()[0]["type"] == "extra_forbidden"


def test_event_types_registry_and_lookup_by_short_name():
    assert models.EVENT_TYPES["vn.gplx.clinics.HealthCertificate"] is models.HealthCertificate
    assert models.event_type("HealthCertificate") is models.HealthCertificate
    with pytest.raises(KeyError):
        models.event_type("Nope")


# ---- reference data ----

def test_reference_provinces():
    prov = reference.provinces()
    assert len(prov) == 63 and len(reference.current_provinces()) == 34
    assert reference.current_code_for("30") == "31"  # Hải Dương -> Hải Phòng
    assert reference.current_provinces()["44"] == "Quảng Trị"  # the same code means another unit now
    assert prov["44"].old_name == "Quảng Bình"


def test_reference_licence_classes():
    cls = reference.licence_classes()
    assert reference.classes_2025() == ["A1", "A", "B1", "B", "C1", "C", "D1", "D2", "D", "BE", "C1E", "CE", "D1E",
                                        "D2E", "DE"]
    assert set(reference.classes_pre_2025()) == {"A2", "A3", "A4", "B11", "B12", "B2", "E", "F", "FB2", "FC", "FD", "FE"}
    assert [c for c in cls.values() if c.health_group == 1] == [cls["A1"], cls["B1"]]
    assert {c.code for c in cls.values() if c.health_group == 2} == {"A", "B"}
    assert {c.code for c in cls.values() if c.validity_years is None and not c.pre_2025} == {"A1", "A", "B1"}
    assert cls["B"].validity_years == 10 and cls["C1"].validity_years == 10 and cls["CE"].validity_years == 5
    assert not cls["A"].needs_health_certificate and cls["B"].needs_health_certificate
