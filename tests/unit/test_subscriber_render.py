"""Provincial subscriber: Vietnamese rendering, old->new province codes, CCCD masking (pure, no broker)."""
from __future__ import annotations

import datetime as dt
import io
import json
import uuid

import pytest

from consumers.subscriber import JsonlOutput, TableOutput, UnknownProvince, labels, render, resolve
from schemas import models, reference
from schemas.errors import GplxError

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 8, 14, 17, 30, tzinfo=UTC)  # 00:30 on 15/08/2025 in Hà Nội
CCCD = "079085123456"


def meta(**extra):
    return dict(event_id=str(uuid.uuid4()), occurred_at=T0, source={"system": "test", "instance": "t"},
                correlation_id="case-1", case_id="c0ffee00-case", cccd=CCCD, province="79", **extra)


# ---- provinces ----

def test_old_code_maps_to_current_province_and_says_so():
    choice = resolve("02")
    assert (choice.code, choice.name) == ("08", "Tuyên Quang")
    assert choice.describe() == "02 Hà Giang → 08 Tuyên Quang"


def test_current_code_is_itself():
    assert resolve("01").describe() == "01 Hà Nội"
    assert resolve("1").code == "01"  # one digit is accepted as its two-digit code


def test_unknown_code_is_one_line_gplx_error():
    with pytest.raises(UnknownProvince) as err:
        resolve("99")
    assert isinstance(err.value, GplxError) and "\n" not in str(err.value) and "'99'" in str(err.value)


def test_every_old_code_resolves_to_its_merged_province():
    for old, p in reference.provinces().items():
        assert resolve(old).code == p.new_code


def test_codes_that_are_both_old_and_current_route_the_same_either_way():
    """Why 'current wins' is safe: an old code that is also a current code merged into that same current unit."""
    for code in set(reference.provinces()) & set(reference.current_provinces()):
        assert reference.current_code_for(code) == code


# ---- labels ----

def test_every_reason_code_has_a_vietnamese_label():
    assert set(labels.REASONS) == {c.value for c in models.ReasonCode}
    assert labels.reason("EXAM_MISSING") == "Thiếu giấy khám sức khỏe"
    assert labels.reason("SOMETHING_NEW") == "SOMETHING_NEW"  # newer code than the table: shown, not hidden


def test_every_case_event_has_a_state_label():
    for name in models.EVENT_TYPES:
        if name.startswith("vn.gplx.cases."):
            assert name.rsplit(".", 1)[1] in labels.STATES
    assert labels.state("CaseApproved") == ("APPROVED", "Đã duyệt")
    assert labels.state("CaseRejected") == ("REJECTED", "Từ chối")


def test_dates_are_dd_mm_yyyy_in_ho_chi_minh_time():
    assert labels.vn_datetime(T0) == "15/08/2025 00:30"
    assert labels.vn_date(T0) == "15/08/2025"
    assert labels.vn_date(dt.date(2025, 1, 2)) == "02/01/2025"


def test_cccd_masking():
    assert labels.mask_cccd(CCCD) == "079******456"
    assert labels.mask_cccd("123") == "***"


# ---- views ----

def test_rejected_case_shows_state_and_reasons_in_vietnamese():
    v = render.view(models.CaseRejected(**meta(reasons=["EXAM_MISSING", "ZERO_POINTS"], rule_set_version="2025.1")))
    assert (v.state, v.state_label) == ("REJECTED", "Từ chối")
    assert v.reasons == (("EXAM_MISSING", "Thiếu giấy khám sức khỏe"), ("ZERO_POINTS", "GPLX đã bị trừ hết điểm"))
    assert v.province_name == "Hồ Chí Minh"
    row = render.table_row(v)
    assert row.startswith("15/08/2025 00:30  Từ chối")
    assert "079******456" in row and CCCD not in row
    assert "Thiếu giấy khám sức khỏe; GPLX đã bị trừ hết điểm" in row


def test_opened_case_shows_deadlines_as_dates():
    v = render.view(models.CaseOpened(**meta(application_id="a-1", classes=["B", "C1"],
                                             missing_notice_due_at=dt.datetime(2025, 8, 18, 10, tzinfo=UTC),
                                             decision_due_at=dt.datetime(2025, 8, 21, 20, tzinfo=UTC))))
    assert dict(v.details) == {"Hạng": "B, C1", "Hạn báo thiếu": "18/08/2025", "Hạn quyết định": "22/08/2025"}
    assert v.state_label == "Đã tiếp nhận"


def test_approved_with_warning_and_awaiting_missing():
    approved = render.view(models.CaseApproved(**meta(classes=["B"], warnings=["NAME_OR_DOB_DIFFERS"],
                                                      rule_set_version="2025.1")))
    assert approved.state_label == "Đã duyệt" and approved.reasons[0][0] == "NAME_OR_DOB_DIFFERS"
    awaiting = render.view(models.CaseAwaiting(**meta(missing=["EXAM_MISSING", "PAYMENT_MISSING"])))
    assert [label for _, label in awaiting.reasons] == ["Thiếu giấy khám sức khỏe", "Chưa nộp lệ phí"]


def test_approval_and_issuance_show_the_2025_classes_and_restrictions():
    approved = render.view(models.CaseApproved(**meta(classes=["A1", "B11"], warnings=[], rule_set_version="2025.1",
                                                      new_classes=["A", "B"],
                                                      restrictions=["AUTOMATIC_TRANSMISSION_ONLY", "NEW_CODE"])))
    assert dict(approved.details) == {"Hạng": "A1, B11", "Hạng cấp đổi": "A, B",
                                      "Điều kiện": "Chỉ xe ô tô số tự động; NEW_CODE"}
    older = render.view(models.CaseApproved(**meta(classes=["B"], warnings=[], rule_set_version="2025.1")))
    assert dict(older.details) == {"Hạng": "B"}  # a record from before the fields: nothing invented


def test_delivery_failure_event_is_shown():
    v = render.view(models.IssuanceDeliveryFailed(**meta(issuance_id="iss-1", attempts=6, last_error="HTTP 503")))
    assert v.state_label == "Gửi đề nghị cấp GPLX thất bại"
    assert ("Số lần gửi", "6") in v.details and ("Lỗi", "HTTP 503") in v.details


def test_json_keeps_codes_labels_and_the_event():
    event = models.CaseEscalated(**meta(reasons=["LICENCE_EXPIRED"], note="hết hạn > 1 năm"))
    doc = render.to_json(render.view(event))
    assert doc["state"] == "ESCALATED" and doc["state_label"] == "Chuyển tỉnh xử lý"
    assert doc["reasons"] == [{"code": "LICENCE_EXPIRED", "label": "GPLX đã hết hạn"}]
    assert doc["occurred_at"] == "2025-08-14T17:30:00Z" and doc["occurred_at_vn"] == "15/08/2025 00:30"
    assert doc["event"]["event_id"] == event.event_id and doc["cccd"] == CCCD
    json.dumps(doc)  # JSON-ready as it is


def test_outputs_write_one_line_per_event():
    events = [render.view(models.CaseAwaiting(**meta(missing=["EXAM_MISSING"]))) for _ in range(3)]
    out = io.StringIO()
    jsonl = JsonlOutput(out)
    for v in events:
        jsonl.emit(v)
    assert [json.loads(line)["event_id"] for line in out.getvalue().splitlines()] == [v.event_id for v in events]
    out = io.StringIO()
    table = TableOutput(out)
    for v in events:
        table.emit(v)
    lines = out.getvalue().splitlines()
    assert lines[0] == render.table_header() and len(lines) == 4 and "Chờ bổ sung" in lines[1]
