"""A case row from the case's events: pure functions, no database, no Kafka.

The row is what `cases.events` says about one case: its state (never moved back by a late re-delivery, the order
of `consumers.lag.cases`), province, reasons of the decision, what it waits for, deadlines and times. Every time is
the case's own (`occurred_at` of its events), never the wall clock of the store, so a rebuild from the topic gives
the identical row (the checksum test relies on it).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from consumers.lag.cases import _RANK as RANK  # one order of states, shared with the lag exporter's book

NS = "vn.gplx.cases."
KINDS = ("CaseOpened", "CaseAwaiting", "CaseApproved", "CaseRejected", "CaseEscalated", "IssuanceDeliveryFailed")
STATE_OF = {"CaseOpened": "OPENED", "CaseAwaiting": "AWAITING", "CaseApproved": "APPROVED",
            "CaseRejected": "REJECTED", "CaseEscalated": "ESCALATED", "IssuanceDeliveryFailed": "DELIVERY_FAILED"}
DECIDED = ("APPROVED", "REJECTED", "ESCALATED")

#: The facts a case needs, and the reason codes saying one is missing or wrong.
FACTS: dict[str, frozenset[str]] = {
    "identity": frozenset({"IDENTITY_MISSING", "IDENTITY_MISMATCH", "PHONE_NOT_TIED"}),
    "licence": frozenset({"LICENCE_STATUS_MISSING", "LICENCE_NOT_FOUND", "LICENCE_REVOKED", "UNRESOLVED_VIOLATION",
                          "ZERO_POINTS", "LICENCE_EXPIRED", "CLASS_NOT_HELD", "CLASS_NOT_RENEWABLE"}),
    "certificate": frozenset({"EXAM_MISSING", "EXAM_EXPIRED", "EXAM_WRONG_CLASS", "UNFIT"}),
    "payment": frozenset({"PAYMENT_MISSING", "PAYMENT_FAILED", "PAYMENT_INSUFFICIENT"}),
}

#: Columns of the `cases` table, in order (db.SCHEMA).
COLUMNS = ("case_id", "application_id", "cccd", "province", "state", "reasons", "missing", "warnings", "classes",
           "new_classes", "missing_notice_due_at", "decision_due_at", "opened_at", "decided_at", "updated_at",
           "events")
_LISTS = ("reasons", "missing", "warnings", "classes", "new_classes")


@dataclass
class CaseRow:
    case_id: str
    cccd: str
    province: str
    state: str
    updated_at: int
    application_id: str | None = None
    reasons: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    new_classes: list[str] = field(default_factory=list)
    missing_notice_due_at: int | None = None
    decision_due_at: int | None = None
    opened_at: int | None = None
    decided_at: int | None = None
    events: int = 0

    def to_db(self) -> tuple:
        values = asdict(self)
        return tuple(json.dumps(values[c]) if c in _LISTS else values[c] for c in COLUMNS)

    @classmethod
    def from_db(cls, values) -> "CaseRow":
        row = dict(zip(COLUMNS, values))
        for c in _LISTS:
            row[c] = json.loads(row[c])
        return cls(**row)

    def facts(self) -> dict[str, str]:
        """Fact -> "present" / "missing" / "problem" / "unknown" (before the first CaseAwaiting or decision)."""
        codes = set(self.missing) | set(self.reasons)
        out = {}
        for fact, fact_codes in FACTS.items():
            hit = codes & fact_codes
            if hit:
                out[fact] = "missing" if hit <= {"IDENTITY_MISSING", "LICENCE_STATUS_MISSING", "EXAM_MISSING",
                                                 "PAYMENT_MISSING"} else "problem"
            elif self.state == "OPENED":
                out[fact] = "unknown"
            else:
                out[fact] = "present"
        return out


def millis(value: Any) -> int | None:
    """An Avro timestamp-millis as decoded (datetime) or already an integer -> milliseconds."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    return int(round(value.timestamp() * 1000))


def apply(row: CaseRow | None, kind: str, record: dict) -> CaseRow:
    """The row after one (new, distinct) event of its case. Kind is the Avro short name (KINDS)."""
    at = millis(record["occurred_at"])
    state = STATE_OF[kind]
    if row is None:
        row = CaseRow(case_id=record["case_id"], cccd=record["cccd"], province=record["province"], state=state,
                      updated_at=at)
    elif RANK[state] >= RANK[row.state]:
        row.state = state
    row.events += 1
    row.updated_at = max(row.updated_at, at)
    row.province = record["province"] or row.province
    if kind == "CaseOpened":
        row.application_id = record["application_id"]
        row.classes = list(record["classes"])
        row.missing_notice_due_at = millis(record["missing_notice_due_at"])
        row.decision_due_at = millis(record["decision_due_at"])
        row.opened_at = at
    elif kind == "CaseAwaiting" and row.state == "AWAITING":
        row.missing = sorted(set(record["missing"]))
    elif kind in ("CaseApproved", "CaseRejected", "CaseEscalated") and row.decided_at is None:
        row.decided_at = at
        row.missing = []
        row.reasons = sorted({str(r) for r in record.get("reasons") or ()})
        row.warnings = sorted({str(w) for w in record.get("warnings") or ()})
        if kind == "CaseApproved":
            row.new_classes = list(record.get("new_classes") or ())
    return row


def history_body(record: dict) -> str:
    """The event as kept in the case's history: everything but the CCCD (it is on the row) and `source`."""
    body = {k: (millis(v) if k.endswith("_at") else v) for k, v in record.items() if k not in ("cccd", "source")}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)


# --- what the citizen reads -------------------------------------------------------------------------------------
#: Reason code -> (Vietnamese, English) next step for the citizen.
NEXT_STEP: dict[str, tuple[str, str]] = {
    "EXAM_MISSING": ("Khám sức khỏe tại cơ sở y tế đã kết nối và chờ cơ sở gửi giấy khám điện tử.",
                     "Get a health check at a connected clinic; the clinic sends the certificate electronically."),
    "EXAM_EXPIRED": ("Giấy khám sức khỏe đã hết hạn: khám lại tại cơ sở y tế đã kết nối.",
                     "Your health certificate has expired: get a new one at a connected clinic."),
    "EXAM_WRONG_CLASS": ("Giấy khám sức khỏe không đúng hạng: khám lại cho đúng hạng GPLX đề nghị đổi.",
                         "The health certificate is for another class: get one for the class you renew."),
    "UNFIT": ("Không đủ điều kiện sức khỏe: liên hệ Sở/Công an tỉnh để được hướng dẫn.",
              "Not fit to drive this class: contact your province's office."),
    "PAYMENT_MISSING": ("Nộp lệ phí trên Cổng Dịch vụ công.", "Pay the fee on the National Public Service Portal."),
    "PAYMENT_FAILED": ("Thanh toán thất bại: nộp lại lệ phí trên Cổng Dịch vụ công.",
                       "The payment failed: pay the fee again on the portal."),
    "PAYMENT_INSUFFICIENT": ("Lệ phí nộp chưa đủ: nộp phần còn thiếu trên Cổng Dịch vụ công.",
                             "The fee paid is short: pay the rest on the portal."),
    "IDENTITY_MISSING": ("Đang chờ xác thực danh tính (VNeID); không cần làm gì thêm.",
                         "Waiting for the identity check (VNeID); nothing to do."),
    "IDENTITY_MISMATCH": ("Thông tin không khớp CCCD: kiểm tra lại họ tên, ngày sinh và nộp lại hồ sơ.",
                          "Your details do not match your CCCD: check name and date of birth and apply again."),
    "PHONE_NOT_TIED": ("Số điện thoại chưa gắn với CCCD: cập nhật trên VNeID rồi nộp lại hồ sơ.",
                       "Your phone is not tied to your CCCD: update it in VNeID and apply again."),
    "LICENCE_STATUS_MISSING": ("Đang chờ tra cứu GPLX; không cần làm gì thêm.",
                               "Waiting for the licence look-up; nothing to do."),
}
_DECIDED_STEP = {
    "APPROVED": ("Hồ sơ đã được duyệt: GPLX mới được cấp và gửi theo hình thức bạn đã chọn.",
                 "Approved: the new licence is issued and sent the way you chose."),
    "REJECTED": ("Hồ sơ bị từ chối; lệ phí đã nộp được hoàn lại. Xem lý do và nộp lại khi đủ điều kiện.",
                 "Rejected; any fee paid is refunded. See the reasons and apply again once they are fixed."),
    "ESCALATED": ("Hồ sơ được chuyển cho Sở/Công an tỉnh xử lý trực tiếp; tỉnh sẽ liên hệ bạn.",
                  "Your case went to the province to be handled by hand; they will contact you."),
    "DELIVERY_FAILED": ("Đang gửi lại đề nghị cấp GPLX; không cần làm gì thêm.",
                        "The issuance request is being sent again; nothing to do."),
    "OPENED": ("Hồ sơ đã được tiếp nhận và đang được kiểm tra.", "Received; your case is being checked."),
}


def next_step(row: CaseRow) -> dict[str, str]:
    """What the citizen should do now, in Vietnamese and English."""
    if row.state == "AWAITING":
        steps = [NEXT_STEP[c] for c in row.missing if c in NEXT_STEP] or [
            ("Hồ sơ đang chờ bổ sung.", "Your case waits for missing pieces.")]
        return {"vi": " ".join(s[0] for s in steps), "en": " ".join(s[1] for s in steps)}
    if row.state == "ESCALATED" and "EXAM_MISSING" in row.reasons:
        vi, en = _DECIDED_STEP["ESCALATED"]
        return {"vi": vi + " " + NEXT_STEP["EXAM_MISSING"][0], "en": en + " " + NEXT_STEP["EXAM_MISSING"][1]}
    vi, en = _DECIDED_STEP.get(row.state, _DECIDED_STEP["OPENED"])
    return {"vi": vi, "en": en}
