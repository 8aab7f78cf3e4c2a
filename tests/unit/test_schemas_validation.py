"""Domain rules: each rule refuses what it should, and the error names the field and the rule (never the CCCD)."""
from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from schemas import models, validation

UTC = dt.timezone.utc
NOW = dt.datetime(2025, 8, 1, 9, 30, tzinfo=UTC)
SRC = {"system": "test", "instance": "t1"}
EID = "123e4567-e89b-12d3-a456-426614174000"


def application(**over):
    data = dict(event_id=EID, occurred_at=NOW, source=SRC, application_id="APP-1", cccd="001090123456",
                full_name="Nguyễn Văn A", date_of_birth=dt.date(1990, 5, 17), phone="0912345678",
                licence_number="790123456789", classes=["B", "A1"], residence_province="01",
                residence_ward="Phường Ba Đình", delivery_method="POST", postal_address="1 Đường X",
                fee_quoted_vnd=135_000)
    data.update(over)
    return models.ApplicationSubmitted(**data)


def certificate(**over):
    data = dict(event_id=EID, occurred_at=NOW, source=SRC, certificate_number="00012/GKSKLX/BVBM/25",
                version_kind="ADD", cccd="001090123456", clinic_code="BVBM", health_group=3, requested_class="C",
                conclusions=[{"licence_class": "C", "fit": True}], signed_at=NOW, doctor="BS. Trần B",
                signature=b"\x01\x02")
    data.update(over)
    return models.HealthCertificate(**data)


def broken(make, **over) -> dict:
    """The single error a call produces, as pydantic reports it."""
    with pytest.raises(ValidationError) as exc:
        make(**over)
    errors = exc.value.errors()
    assert len(errors) == 1, errors
    return {"field": ".".join(map(str, errors[0]["loc"])), "rule": errors[0]["type"], "msg": errors[0]["msg"],
            "text": validation.explain(exc.value)}


def test_valid_examples_pass():
    assert application().cccd == "001090123456"
    assert certificate().health_group == 3


@pytest.mark.parametrize("cccd,rule", [
    ("00109012345", "cccd_format"),     # 11 digits
    ("0010901234567", "cccd_format"),   # 13 digits
    ("00109012345X", "cccd_format"),
    ("101090123456", "cccd_province"),  # must start with 0
    ("003090123456", "cccd_province"),  # 03 is not an old province code
    ("099090123456", "cccd_province"),
])
def test_cccd_structure(cccd, rule):
    err = broken(application, cccd=cccd)
    assert err["field"] == "cccd" and err["rule"] == rule
    assert cccd not in err["text"], "the CCCD must not appear in error text (PII)"


@pytest.mark.parametrize("cccd,born,rule", [
    ("001290123456", dt.date(1990, 5, 17), "cccd_century"),     # 2 = born 2000s
    ("001005123456", dt.date(2005, 1, 1), "cccd_century"),      # 0 = born 1900s
    ("001491123456", dt.date(1991, 1, 1), "cccd_century"),
    ("001091123456", dt.date(1990, 5, 17), "cccd_birth_year"),  # 91 != 90
])
def test_cccd_consistent_with_birth_date(cccd, born, rule):
    err = broken(application, cccd=cccd, date_of_birth=born)
    assert err["rule"] == rule
    assert "cccd" in err["msg"] and "date_of_birth" in err["msg"]
    assert cccd not in err["text"]


@pytest.mark.parametrize("cccd,born", [
    ("001090123456", dt.date(1990, 1, 1)),  # male 1900s
    ("001190123456", dt.date(1990, 1, 1)),  # female 1900s
    ("079205123456", dt.date(2005, 1, 1)),  # male 2000s, Hồ Chí Minh
    ("079305123456", dt.date(2005, 1, 1)),  # female 2000s
])
def test_cccd_sex_century_digits_accepted(cccd, born):
    assert application(cccd=cccd, date_of_birth=born).cccd == cccd


def test_cccd_checked_in_events_without_birth_date():
    err = broken(certificate, cccd="003090123456")
    assert err == {**err, "field": "cccd", "rule": "cccd_province"}


@pytest.mark.parametrize("classes,rule", [
    (["B", "Z9"], "licence_class_known"),
    ([], "licence_classes_non_empty"),
    (["B", "B"], "licence_classes_unique"),
])
def test_licence_classes(classes, rule):
    err = broken(application, classes=classes)
    assert err["field"] == "classes" and err["rule"] == rule


def test_pre_2025_classes_are_known():
    assert application(classes=["B2", "A3", "FC"]).classes == ["B2", "A3", "FC"]


def test_requested_and_conclusion_classes_known():
    assert broken(certificate, requested_class="B3")["rule"] == "licence_class_known"
    err = broken(certificate, conclusions=[{"licence_class": "Q", "fit": True}])
    assert err["field"] == "conclusions.0.licence_class" and err["rule"] == "licence_class_known"


def test_routing_province_must_be_current_and_old_code_hint():
    """`province` is the code the processor routes by: current only (the residence a citizen typed may be old:
    tests/unit/test_decisions_trust.py)."""
    base = dict(event_id=EID, occurred_at=NOW, source=SRC, case_id="C1", cccd="001090123456",
                rule_set_version="2025.1", reasons=["UNFIT"])
    make = lambda **o: models.CaseRejected(**{**base, **o})  # noqa: E731
    err = broken(make, province="30")  # old Hải Dương, now 31 Hải Phòng
    assert err["field"] == "province" and err["rule"] == "province_current"
    assert "'31'" in err["msg"]
    assert broken(make, province="99")["rule"] == "province_current"
    assert make(province="31").province == "31"
    assert broken(application, residence_province="99")["rule"] == "province_known"


@pytest.mark.parametrize("number", ["12/GKSKLX/BVBM/25", "00012/GKSK/BVBM/25", "00012/GKSKLX/BVBM/2025",
                                    "00012/GKSKLX//25", "00012-GKSKLX-BVBM-25"])
def test_certificate_number_format(number):
    err = broken(certificate, certificate_number=number)
    assert err["field"] == "certificate_number" and err["rule"] == "certificate_number_format"


def test_certificate_facility_must_be_the_clinic():
    err = broken(certificate, certificate_number="00012/GKSKLX/OTHER/25")
    assert err["rule"] == "certificate_facility" and "clinic_code" in err["msg"]


def test_health_group_range_and_cover():
    assert broken(certificate, health_group=4)["rule"] == "health_group_range"
    err = broken(certificate, health_group=2, requested_class="C")
    assert err["rule"] == "health_group_covers_class" and "requested_class" in err["msg"]
    assert certificate(health_group=3, requested_class="B").health_group == 3  # higher group covers lower


def test_non_negative_vnd():
    err = broken(application, fee_quoted_vnd=-1)
    assert err["field"] == "fee_quoted_vnd" and err["rule"] == "vnd_non_negative"


def test_long_and_int_ranges_fit_avro():
    assert broken(application, fee_quoted_vnd=2**63)["rule"] == "less_than_equal"


def test_phone_format():
    err = broken(application, phone="12345")
    assert err["field"] == "phone" and err["rule"] == "phone_format"
    assert "12345" not in err["text"]


def test_timestamps_must_be_aware_and_are_normalised_to_utc_millis():
    assert broken(application, occurred_at=dt.datetime(2025, 1, 1))["rule"] == "timezone_aware"
    ict = dt.timezone(dt.timedelta(hours=7))
    e = application(occurred_at=dt.datetime(2025, 1, 1, 7, 0, 0, 123456, tzinfo=ict))
    assert e.occurred_at == dt.datetime(2025, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
    assert e.occurred_at.tzinfo is UTC


def test_event_id_must_be_uuid():
    assert broken(application, event_id="not-a-uuid")["rule"] == "uuid_format"


def test_licence_status_rules():
    base = dict(event_id=EID, occurred_at=NOW, source=SRC, request_id="R1", case_id="C1", cccd="001090123456",
                province="01", licence_number="790123456789", found=True, revoked=False, unresolved_violations=0,
                point_balance=12, classes=[{"licence_class": "B", "issued_on": dt.date(2020, 1, 1),
                                            "expires_on": dt.date(2030, 1, 1)}])
    make = lambda **o: models.LicenceStatus(**{**base, **o})  # noqa: E731
    assert make().point_balance == 12
    assert broken(make, point_balance=13)["rule"] == "point_balance_range"
    assert broken(make, unresolved_violations=-1)["rule"] == "non_negative"
    err = broken(make, classes=[{"licence_class": "B", "issued_on": dt.date(2020, 1, 1),
                                 "expires_on": dt.date(2019, 1, 1)}])
    assert err["rule"] == "expiry_after_issue" and err["field"] == "classes.0"
    # never-expiring classes carry no expiry
    assert make(classes=[{"licence_class": "A1", "issued_on": dt.date(2001, 1, 1), "expires_on": None}])


def test_rejection_needs_reasons_and_blank_ids_refused():
    base = dict(event_id=EID, occurred_at=NOW, source=SRC, case_id="C1", cccd="001090123456", province="01",
                rule_set_version="2025-07-01")
    assert models.CaseRejected(**base, reasons=["UNFIT"]).reasons == ["UNFIT"]
    assert models.CaseRejected(**base, reasons=["UNFIT"]).reasons[0] == models.ReasonCode.UNFIT
    err = broken(lambda **o: models.CaseRejected(**{**base, **o}), reasons=[])
    assert err["field"] == "reasons" and err["rule"] == "non_empty"
    err = broken(lambda **o: models.CaseRejected(**{**base, **o}), reasons=["UNFIT"], case_id=" ")
    assert err["field"] == "case_id" and err["rule"] == "not_blank"
    assert broken(lambda **o: models.CaseRejected(**{**base, **o}), reasons=["NOT_A_CODE"])["rule"] == "enum"


def test_identity_result_consistency():
    base = dict(event_id=EID, occurred_at=NOW, source=SRC, request_id="R1", case_id="C1", cccd="001090123456",
                province="01", phone_tied=True)
    assert models.IdentityCheckResult(**base, match=False, mismatched_fields=["full_name"])
    err = broken(lambda **o: models.IdentityCheckResult(**{**base, **o}), match=True, mismatched_fields=["x"])
    assert err["rule"] == "identity_result_consistent"


def test_explain_names_field_and_rule_without_values():
    with pytest.raises(ValidationError) as exc:
        application(cccd="003090123456", fee_quoted_vnd=-5)
    text = validation.explain(exc.value)
    assert "field 'cccd' breaks rule cccd_province" in text
    assert "field 'fee_quoted_vnd' breaks rule vnd_non_negative" in text
    assert "003090123456" not in text
