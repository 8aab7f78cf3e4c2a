"""Hypothesis strategies that build *valid* events from the schemas, for property tests anywhere in the project.

Why here and not in tests/: producers and the case processor want valid random events too, and the strategies must
follow the same schemas and domain rules as the models. Imports hypothesis, so import this module from tests only.

    from schemas.testing import events, avro_dicts
    @given(events(models.HealthCertificate))
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

from schemas import models, reference

_T0, _T1 = dt.datetime(2000, 1, 1), dt.datetime(2040, 12, 31)
_TIMESTAMPS = st.datetimes(_T0, _T1, timezones=st.just(dt.timezone.utc)).map(
    lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))
_DATES = st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31))
_CLASSES = sorted(reference.licence_classes())
_OLD_PROVINCES = sorted(reference.provinces())
_CURRENT_PROVINCES = sorted(reference.current_provinces())
_WORD = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=24).filter(
    lambda s: s.strip() != "")
_CODE = st.from_regex(r"[A-Z][A-Z0-9]{1,7}", fullmatch=True)

_BY_NAME: dict[str, st.SearchStrategy] = {
    "event_id": st.uuids().map(str),
    "cccd": st.tuples(st.sampled_from(_OLD_PROVINCES), st.integers(0, 5), st.integers(0, 99),
                      st.integers(0, 999_999)).map(lambda t: f"0{t[0]}{t[1]}{t[2]:02d}{t[3]:06d}"),
    "province": st.sampled_from(_CURRENT_PROVINCES),
    "residence_province": st.sampled_from(sorted(set(_CURRENT_PROVINCES) | set(_OLD_PROVINCES))),
    "residence_province_original": st.none() | st.sampled_from(_OLD_PROVINCES),
    "record_full_name": st.none() | _WORD,
    "licence_class": st.sampled_from(_CLASSES),
    "requested_class": st.sampled_from(_CLASSES),
    "clinic_code": _CODE,
    "certificate_number": st.integers(0, 99_999).map(lambda n: f"{n:05d}/GKSKLX/X/25"),  # facility fixed below
    "health_group": st.integers(1, 3),
    "point_balance": st.integers(0, 12),
    "unresolved_violations": st.integers(0, 50),
    "original_partition": st.integers(0, 2**31 - 1),
    "original_offset": st.integers(0, 2**63 - 1),
    "phone": st.from_regex(r"0[0-9]{9}", fullmatch=True),
}


def _field(name: str, avro_type: Any) -> st.SearchStrategy:
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name == "classes" and isinstance(avro_type, dict) and avro_type.get("items") == "string":
        return st.lists(st.sampled_from(_CLASSES), min_size=1, max_size=4, unique=True)
    if name == "reasons":
        return st.lists(_type(avro_type["items"]), min_size=1, max_size=4)
    if name.endswith("_vnd"):
        return st.integers(0, 10**12)
    if name.endswith("_id") and name != "correlation_id":
        return _WORD
    if name in ("full_name", "licence_number", "residence_ward"):
        return _WORD
    return _type(avro_type)


_NAMED: dict[str, Any] = {}


def _type(avro_type: Any) -> st.SearchStrategy:
    if isinstance(avro_type, list):  # ['null', T]
        return st.one_of(st.none(), *[_type(b) for b in avro_type if b != "null"])
    if isinstance(avro_type, str):
        primitives = {
            "string": st.text(max_size=24), "bytes": st.binary(max_size=64), "boolean": st.booleans(),
            "int": st.integers(-(2**31), 2**31 - 1), "long": st.integers(-(2**63), 2**63 - 1),
            "double": st.floats(allow_nan=False), "float": st.floats(width=32, allow_nan=False),
        }
        if avro_type in primitives:
            return primitives[avro_type]
        return st.deferred(lambda: _NAMED[avro_type])
    logical = avro_type.get("logicalType")
    if logical == "timestamp-millis":
        return _TIMESTAMPS
    if logical == "date":
        return _DATES
    if logical == "uuid":
        return st.uuids().map(str)
    kind = avro_type["type"]
    if kind == "enum":
        strategy = st.sampled_from(avro_type["symbols"])
        _NAMED[f"{avro_type['namespace']}.{avro_type['name']}" if "namespace" in avro_type else avro_type["name"]] = strategy
        return strategy
    if kind == "array":
        return st.lists(_type(avro_type["items"]), max_size=4)
    if kind == "record":
        fields = {f["name"]: _field(f["name"], f["type"]) for f in avro_type["fields"]}
        strategy = st.fixed_dictionaries(fields).map(_make_consistent)
        if "namespace" in avro_type:
            _NAMED[f"{avro_type['namespace']}.{avro_type['name']}"] = strategy
        return strategy
    return _type(kind)


def _make_consistent(record: dict[str, Any]) -> dict[str, Any]:
    """Apply the cross-field rules of schemas.validation.MODEL_RULES to a random record."""
    if "cccd" in record and "date_of_birth" in record:
        born = record["date_of_birth"]
        sex = int(record["cccd"][3]) % 2
        digit = (born.year - 1900) // 100 * 2 + sex
        record["cccd"] = f"{record['cccd'][:3]}{digit}{born.year % 100:02d}{record['cccd'][6:]}"
    if "certificate_number" in record and "clinic_code" in record:
        serial = record["certificate_number"].split("/")[0]
        record["certificate_number"] = f"{serial}/GKSKLX/{record['clinic_code']}/25"
    if "health_group" in record and "requested_class" in record:
        needed = reference.licence_classes()[record["requested_class"]].health_group or 1
        record["health_group"] = max(record["health_group"], needed)
    if "issued_on" in record and record.get("expires_on") is not None:
        record["expires_on"] = max(record["expires_on"], record["issued_on"])
    if record.get("match") and "mismatched_fields" in record:
        record["mismatched_fields"] = []
    return record


def avro_dicts(model: type[models.Event]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid decoded-Avro dicts for an event type."""
    return _type(model.avro_schema)


def events(model: type[models.Event]) -> st.SearchStrategy[models.Event]:
    """Valid event models of a type."""
    return avro_dicts(model).map(model.from_avro_dict)


def any_event() -> st.SearchStrategy[models.Event]:
    return st.one_of(*[events(m) for m in models.EVENT_TYPES.values()])
