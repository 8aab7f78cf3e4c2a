"""Offline schema evolution: incompatible changes are refused with a message naming the field."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from schemas import compat, loader

HC = "vn.gplx.clinics.HealthCertificate"
PT = "vn.gplx.payment.PaymentTransaction"


def field(schema, name):
    return next(f for f in schema["fields"] if f["name"] == name)


def test_current_schemas_are_compatible_with_their_release():
    results = compat.check_released("FULL")
    assert set(results) == set(loader.event_names())
    assert all(compat.released_schema(n) is not None for n in results), "every event has a released version"
    assert results == {n: [] for n in results}


def test_required_field_added_without_default_is_refused():
    old, new = loader.event_schema(HC), loader.event_schema(HC)
    new["fields"].append({"name": "x", "type": "string", "doc": "new"})
    assert compat.check_compatible(new, old, "BACKWARD") == [
        "HealthCertificate: field 'x' added without a default — incompatible (BACKWARD)"]
    new["fields"][-1]["default"] = ""
    assert compat.check_compatible(new, old, "FULL") == []


def test_field_removed_without_default_breaks_forward_only():
    old, new = loader.event_schema(PT), loader.event_schema(PT)
    new["fields"] = [f for f in new["fields"] if f["name"] != "gateway_reference"]
    assert compat.check_compatible(new, old, "BACKWARD") == []
    messages = compat.check_compatible(new, old, "FULL")
    assert len(messages) == 1 and "'gateway_reference' removed" in messages[0] and "(FORWARD)" in messages[0]


def test_type_narrowed_long_to_int_is_refused_and_widening_is_backward_only():
    old, new = loader.event_schema(PT), loader.event_schema(PT)
    field(new, "amount_vnd")["type"] = "int"
    messages = compat.check_compatible(new, old, "BACKWARD")
    assert messages == ["PaymentTransaction: field 'amount_vnd': type long cannot be read as int (narrowed)"
                        " — incompatible (BACKWARD)"]
    # int -> long widening: new readers read old data, but old readers cannot read new data
    assert compat.check_compatible(old, new, "BACKWARD") == []
    assert any("amount_vnd" in m and "FORWARD" in m for m in compat.check_compatible(old, new, "FULL"))


def test_nested_field_change_names_the_path():
    old, new = loader.event_schema(HC), loader.event_schema(HC)
    field(new, "conclusions")["type"]["items"]["fields"][1]["type"] = "string"
    messages = compat.check_compatible(new, old, "BACKWARD")
    assert messages and "field 'conclusions[].fit'" in messages[0]


def test_enum_symbols_and_defaults():
    name = "vn.gplx.cases.CaseRejected"
    old, new = loader.event_schema(name), loader.event_schema(name)
    field(new, "reasons")["type"]["items"]["symbols"].insert(0, "NEW_CODE")
    assert compat.check_compatible(new, old, "FULL") == []  # old readers map NEW_CODE to the default UNKNOWN
    del field(old, "reasons")["type"]["items"]["default"]
    messages = compat.check_compatible(new, old, "FULL")
    assert messages and "NEW_CODE" in messages[0] and "(FORWARD)" in messages[0]


def test_nullable_made_required_and_logical_type_change():
    old, new = loader.event_schema(PT), loader.event_schema(PT)
    field(new, "failure_reason")["type"] = "string"
    del field(new, "failure_reason")["default"]
    assert any("failure_reason" in m for m in compat.check_compatible(new, old, "BACKWARD"))
    old, new = loader.event_schema(PT), loader.event_schema(PT)
    field(new, "occurred_at")["type"] = {"type": "long", "logicalType": "timestamp-micros"}
    assert any("occurred_at" in m and "logical type" in m for m in compat.check_compatible(new, old, "BACKWARD"))


def test_record_rename_is_refused_unless_aliased():
    old, new = loader.event_schema(PT), loader.event_schema(PT)
    new["name"] = "Payment"
    assert any("record name changed" in m for m in compat.check_compatible(new, old, "BACKWARD"))
    new["aliases"] = ["vn.gplx.payment.PaymentTransaction"]
    assert compat.check_compatible(new, old, "BACKWARD") == []


def test_cli_check_fails_on_an_incompatible_release(tmp_path, monkeypatch):
    from gplx_bus.commands.schemas import app

    for name in loader.event_names():
        schema = loader.event_schema(name)
        if name == HC:
            schema["fields"] = [f for f in schema["fields"] if f["name"] != "doctor"]  # current adds 'doctor'
        (tmp_path / f"{loader.short_name(name)}.avsc").write_text(json.dumps(schema))
    monkeypatch.setattr(compat, "released_dir", lambda: tmp_path)
    result = CliRunner().invoke(app, ["check"])
    assert result.exit_code == 1
    assert "HealthCertificate: field 'doctor' added without a default — incompatible (BACKWARD)" in result.output
    (tmp_path / "HealthCertificate.avsc").write_text(json.dumps(loader.event_schema(HC)))
    assert CliRunner().invoke(app, ["check"]).exit_code == 0


@pytest.mark.parametrize("level", ["BOGUS"])
def test_unknown_level_is_an_error(level):
    with pytest.raises(ValueError):
        compat.check_compatible(loader.event_schema(PT), loader.event_schema(PT), level)
