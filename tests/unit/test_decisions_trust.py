"""Decisions a citizen can trust (issue 10), without a broker:
- an old (pre-July-2025) province code a citizen still holds never dead-letters an application; the case is routed
  to the current province and the typed code is kept on CaseOpened;
- the new licence prints the population database's name, date of birth and sex, not what was typed on the portal;
- a certificate signed in the future is refused (SIGNED_IN_FUTURE) and never "the latest".
"""
from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from producers.adapters import identity
from producers.adapters.localdb import JsonLinesDatabase, write_records
from schemas import models, reference
from schemas.errors import ERROR_CLASSES, SignedInFuture
from tests.case_scenarios import T0, Script
from tests.unit.test_assembler import run
from topology.decision import Application, CaseFacts, CertificateOnFile, IdentityResult, LicenceRecord, Outcome, \
    Payment, decide, exam_finding
from topology.processor import assembler
from topology.processor.assembler import refuse_signed_in_future
from topology.rules import Reason, load_rule_set

RULES = load_rule_set()
UTC = dt.timezone.utc
SRC = {"system": "test", "instance": "t1"}
EID = "123e4567-e89b-12d3-a456-426614174000"


def outputs_of(kind, outputs):
    return [o.event for o in outputs if o.kind == kind]


# --- defect 2: old province codes ---------------------------------------------------------------------------------
def test_a_code_that_is_both_old_and_current_means_the_same_province_either_way():
    """The ambiguity of "01" or "44" is harmless only while the data says so: every old code that is also a current
    code maps to itself. If a decree changed that, reading a residence would need more than the code."""
    both = [code for code in reference.provinces() if reference.is_current_province_code(code)]
    assert len(both) == 34
    assert all(reference.current_code_for(code) == code for code in both)


@pytest.mark.parametrize("typed, routed", [
    ("34", "33"),  # Thái Bình -> Hưng Yên: the observed dead letter
    ("02", "08"),  # Hà Giang -> Tuyên Quang
    ("30", "31"),  # Hải Dương -> Hải Phòng
    ("44", "44"),  # old Quảng Bình and current Quảng Trị: both 44
    ("01", "01"),
    ("79", "79"),
])
def test_an_application_with_an_old_residence_code_is_routed_to_its_current_province(typed, routed):
    script = Script("old-code", 1)
    events = [(topic, e.model_copy(update={"residence_province": typed}) if topic == "portal.applications" else e)
              for topic, e in script.events()]
    application = next(e for _, e in events if isinstance(e, models.ApplicationSubmitted))
    assert models.ApplicationSubmitted.model_validate(application.model_dump()).residence_province == typed
    state, outputs = run(events)
    [opened] = outputs_of("opened", outputs)
    assert opened.province == routed
    assert opened.residence_province_original == (typed if typed != routed else None)
    assert state.case.application.residence_province == typed  # the application record keeps it too
    assert {o.event.province for o in outputs} == {routed}
    assert outputs_of("approved", outputs)


def _application(old: str, **over):
    data = dict(event_id=EID, occurred_at=T0, source=SRC, application_id="APP-1", cccd=f"0{old}090123456",
                full_name="Nguyễn Văn A", date_of_birth=dt.date(1990, 5, 17), phone="0912345678",
                licence_number=f"{old}0123456789", classes=["B2"], residence_province=old,
                residence_ward="Xã Vũ Thư", delivery_method="POST", postal_address="1 Lê Lợi, Xã Vũ Thư",
                fee_quoted_vnd=135_000)
    return models.ApplicationSubmitted(**{**data, **over})


def _certificate(old: str):
    return models.HealthCertificate(
        event_id=EID, occurred_at=T0, source=SRC, certificate_number=f"00012/GKSKLX/{old}001/25", version_kind="ADD",
        cccd=f"0{old}190123456", clinic_code=f"{old}001", health_group=3, requested_class="C",
        conclusions=[{"licence_class": "C", "fit": True}], signed_at=T0, doctor="BS. Trần B", signature=b"s")


def _licence_status(old: str):
    return models.LicenceStatus(
        event_id=EID, occurred_at=T0, source=SRC, request_id="R1", case_id="C1", cccd=f"0{old}090123456",
        province=reference.current_code_for(old), licence_number=f"{old}0123456789", found=True, revoked=False,
        unresolved_violations=0, point_balance=12,
        classes=[{"licence_class": "B2", "issued_on": dt.date(2016, 1, 1), "expires_on": dt.date(2026, 1, 1)}])


@pytest.mark.parametrize("make", [_application, _certificate, _licence_status],
                         ids=["application", "certificate", "licence-status"])
@pytest.mark.parametrize("old", sorted(reference.provinces()))
def test_every_old_code_a_citizen_holds_passes_validation(make, old):
    """Audit of schemas/validation.py: the fields that carry a province code or an old-code-derived value (CCCD
    prefix, licence number prefix, certificate facility code and clinic code, ward, residence) accept every old
    code; only `province`, the routing code the processor itself writes, is current-only."""
    assert make(old)


# --- defect 3: the licence prints the CCCD record -----------------------------------------------------------------
REQUEST = dict(event_id="1b4e28ba-2fa1-11d2-883f-0016d3cca427", occurred_at=T0, source=SRC, correlation_id="c",
               request_id="r", case_id="c", cccd="001185012345", province="01", full_name="Nguyen Thi An",
               date_of_birth=dt.date(1985, 3, 14), phone="0912345678")
RECORD = {"cccd": "001185012345", "full_name": "Nguyễn Thị An", "date_of_birth": "1985-03-04", "sex": "FEMALE",
          "phones": ["0912345678"]}


@pytest.mark.parametrize("record, mismatched, expected", [
    (RECORD, ["full_name", "date_of_birth"], ("Nguyễn Thị An", dt.date(1985, 3, 4), "FEMALE")),
    ({**RECORD, "full_name": "nguyen thi  an"}, ["date_of_birth"], ("nguyen thi  an", dt.date(1985, 3, 4), "FEMALE")),
    ({**RECORD, "sex": None}, ["full_name", "date_of_birth"],  # no sex on record: the CCCD's 4th digit (1: female)
     ("Nguyễn Thị An", dt.date(1985, 3, 4), "FEMALE")),
    ({**RECORD, "date_of_birth": "04/03/1985"}, ["full_name", "date_of_birth"], ("Nguyễn Thị An", None, "FEMALE")),
    (None, ["cccd"], (None, None, None)),  # unknown CCCD: no record to copy
])
def test_the_identity_answer_carries_the_record(tmp_path, record, mismatched, expected):
    path = tmp_path / "identity.jsonl"
    write_records(path, [record] if record else [])
    answer = identity.answer(models.IdentityCheckRequested(**REQUEST), JsonLinesDatabase(path), T0)
    assert answer.mismatched_fields == mismatched
    assert (answer.record_full_name, answer.record_date_of_birth, answer.record_sex) == expected


def _with_identity_record(script: Script, **record):
    return [(topic, e.model_copy(update=record) if isinstance(e, models.IdentityCheckResult) else e)
            for topic, e in script.events()]


@pytest.mark.parametrize("mismatched, record, printed", [
    (("full_name",), dict(record_full_name="Nguyễn Văn Ân", record_date_of_birth=dt.date(1985, 3, 4),
                          record_sex="MALE"), ("Nguyễn Văn Ân", dt.date(1985, 3, 4), "MALE")),
    (("date_of_birth",), dict(record_full_name="Nguyễn Văn An", record_date_of_birth=dt.date(1985, 4, 3),
                              record_sex="MALE"), ("Nguyễn Văn An", dt.date(1985, 4, 3), "MALE")),
    ((), dict(record_full_name="Nguyễn Văn An", record_date_of_birth=dt.date(1985, 3, 4), record_sex="MALE"),
     ("Nguyễn Văn An", dt.date(1985, 3, 4), "MALE")),
    (("full_name",), {}, ("Nguyễn Văn An", dt.date(1985, 3, 4), None)),  # an older adapter: the portal's data
])
def test_the_issuance_prints_the_cccd_record_and_the_difference_stays_a_warning(mismatched, record, printed):
    script = Script("record", 4, identity_match=not mismatched, mismatched_fields=mismatched)
    _, outputs = run(_with_identity_record(script, **record))
    [approved] = outputs_of("approved", outputs)
    assert approved.warnings == (["NAME_OR_DOB_DIFFERS"] if mismatched else [])
    [issuance] = outputs_of("issuance", outputs)
    assert (issuance.full_name, issuance.date_of_birth, issuance.sex) == printed


# --- defect 7: certificates signed in the future ----------------------------------------------------------------
ARRIVAL = dt.datetime(2025, 6, 1, 2, 0, tzinfo=UTC)


def _signed(at: dt.datetime) -> models.HealthCertificate:
    return _certificate("01").model_copy(update={"signed_at": at})


@pytest.mark.parametrize("signed_at, refused", [
    (ARRIVAL - dt.timedelta(days=20), False),
    (ARRIVAL, False),
    (ARRIVAL + dt.timedelta(minutes=4), False),  # a clinic clock a few minutes fast
    (ARRIVAL + dt.timedelta(minutes=5), False),  # the allowed skew (rule data), inclusive
    (ARRIVAL + dt.timedelta(minutes=5, milliseconds=1), True),
    (dt.datetime(2099, 1, 1, tzinfo=UTC), True),  # the observed forgery
])
def test_a_certificate_signed_beyond_the_clock_skew_after_its_arrival_is_refused(signed_at, refused):
    if refused:
        with pytest.raises(SignedInFuture) as exc:
            refuse_signed_in_future(_signed(signed_at), ARRIVAL, RULES)
        assert exc.value.code == "SIGNED_IN_FUTURE" and "001190123456" not in str(exc.value)
    else:
        refuse_signed_in_future(_signed(signed_at), ARRIVAL, RULES)


def test_only_certificates_are_judged_and_the_code_is_a_dead_letter_code():
    refuse_signed_in_future(_application("01", occurred_at=dt.datetime(2099, 1, 1, tzinfo=UTC)), ARRIVAL, RULES)
    assert ERROR_CLASSES["SIGNED_IN_FUTURE"] is SignedInFuture
    assert "SIGNED_IN_FUTURE" in models.ErrorCode.__members__
    assert RULES.certificate_clock_skew == dt.timedelta(minutes=5)  # from topology/data/rules-2025.json


def test_a_certificate_signed_after_the_application_counts_whatever_order_the_topics_are_read_in():
    """The guard is the arrival check above, not the case's clock: a genuine certificate signed two hours after the
    application, read before it (topics are read in parallel), still decides the case (it once waited for a tick)."""
    script = Script("cert-after-application", 7001)
    events = script.events()
    [(base, cert)] = [(b, e) for b, e in events if type(e).__name__ == "HealthCertificate"]
    application = next(e for _, e in events if type(e).__name__ == "ApplicationSubmitted")
    later = application.occurred_at + dt.timedelta(hours=2)
    cert = cert.model_copy(update={"signed_at": later, "occurred_at": later})
    state = None
    for offset, (topic, event) in enumerate([(base, cert)] + [(b, e) for b, e in events if b != base]):
        step = assembler.handle(state, event, topic, offset, RULES)
        state = step.state
    assert state.case.final and state.case.status == "APPROVED"
