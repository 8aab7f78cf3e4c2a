"""Pure rendering of case events for provincial officers: no Kafka, no I/O, so every rule here is unit-tested.

A `CaseView` is what an officer needs from any case event: which case, its state and the reasons, in Vietnamese,
with times in Vietnam's zone. The JSON form (jsonl and webhook) keeps the codes and the full event for machines;
the table form is for eyes and masks the CCCD.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from schemas import reference
from schemas.models import Event

from consumers.subscriber import labels

_DELIVERY = {"POST": "Gửi bưu điện", "PICKUP": "Nhận trực tiếp", "UNKNOWN": "Chưa rõ"}


@dataclass(frozen=True)
class CaseView:
    """One case event, ready to show."""

    event_id: str
    event_type: str  # Avro short name, e.g. CaseRejected
    state: str  # e.g. REJECTED
    state_label: str  # e.g. Từ chối
    case_id: str
    cccd: str
    province: str
    province_name: str
    occurred_at: dt.datetime
    reasons: tuple[tuple[str, str], ...] = ()  # (code, Vietnamese label)
    details: tuple[tuple[str, str], ...] = ()  # (Vietnamese label, value), e.g. ("Hạng", "B, C1")
    event: dict[str, Any] = field(default_factory=dict, compare=False)  # the whole event, JSON-ready


def view(event: Event) -> CaseView:
    """The view of a case event (any event with case_id, cccd and province; others get empty fields)."""
    data = event.model_dump()
    short = event.avro_name.rsplit(".", 1)[-1]
    state, state_label = labels.state(short)
    codes = data.get("reasons") or data.get("missing") or data.get("warnings") or []
    province = data.get("province", "")
    return CaseView(
        event_id=data["event_id"], event_type=short, state=state, state_label=state_label,
        case_id=data.get("case_id", ""), cccd=data.get("cccd", ""), province=province,
        province_name=reference.current_provinces().get(province, ""), occurred_at=data["occurred_at"],
        reasons=tuple((str(c), labels.reason(str(c))) for c in codes),
        details=tuple(_details(short, data)), event=event.model_dump(mode="json"),
    )


def _details(short: str, data: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    if data.get("classes"):
        out.append(("Hạng", ", ".join(data["classes"])))
    if data.get("new_classes"):  # approvals and issuances: the 2025 classes issued (old classes exchanged)
        out.append(("Hạng cấp đổi", ", ".join(data["new_classes"])))
    if data.get("restrictions"):
        out.append(("Điều kiện", "; ".join(labels.restriction(r) for r in data["restrictions"])))
    if short == "CaseOpened":
        out.append(("Hạn báo thiếu", labels.vn_date(data["missing_notice_due_at"])))
        out.append(("Hạn quyết định", labels.vn_date(data["decision_due_at"])))
    if short == "CaseApproved" and data.get("warnings"):
        out.append(("Lưu ý", "; ".join(labels.reason(str(w)) for w in data["warnings"])))
    if data.get("note"):
        out.append(("Ghi chú", data["note"]))
    if short == "IssuanceRequested":
        out.append(("Nhận GPLX", _DELIVERY.get(str(data["delivery_method"]), str(data["delivery_method"]))))
    if short == "IssuanceDeliveryFailed":
        out.append(("Số lần gửi", str(data["attempts"])))
        out.append(("Lỗi", data["last_error"]))
    return out


# ---- JSON (jsonl lines and webhook bodies) ---------------------------------------------------------------------

def to_json(v: CaseView) -> dict[str, Any]:
    """Codes for machines, labels for people, and the event itself; the CCCD is not masked (the province's own
    systems need it to act on the case)."""
    return {
        "event_id": v.event_id,
        "event_type": v.event_type,
        "state": v.state,
        "state_label": v.state_label,
        "case_id": v.case_id,
        "cccd": v.cccd,
        "province": v.province,
        "province_name": v.province_name,
        "occurred_at": v.occurred_at.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
        "occurred_at_vn": labels.vn_datetime(v.occurred_at),
        "reasons": [{"code": c, "label": label} for c, label in v.reasons],
        "details": {label: value for label, value in v.details},
        "event": v.event,
    }


# ---- table (one aligned line per event) ------------------------------------------------------------------------

#: (header, width); the last column takes what is left.
COLUMNS = (("Thời gian", 16), ("Trạng thái", 22), ("Hồ sơ", 8), ("CCCD", 12), ("Lý do / chi tiết", 0))


def table_header() -> str:
    return _line([h for h, _ in COLUMNS])


def table_row(v: CaseView) -> str:
    """One line: time, state, short case id, masked CCCD, reasons and details."""
    reasons = "; ".join(label for _, label in v.reasons)
    details = "; ".join(f"{label}: {value}" for label, value in v.details
                        if not (v.event_type == "CaseApproved" and label == "Lưu ý"))  # warnings are the reasons
    text = " | ".join(part for part in (reasons, details) if part) or "-"
    return _line([labels.vn_datetime(v.occurred_at), v.state_label, v.case_id[:8], labels.mask_cccd(v.cccd), text])


def _line(cells: list[str]) -> str:
    parts = []
    for (_, width), cell in zip(COLUMNS, cells):
        parts.append(cell if not width else (cell[: width - 1] + "…" if len(cell) > width else cell.ljust(width)))
    return "  ".join(parts).rstrip()
