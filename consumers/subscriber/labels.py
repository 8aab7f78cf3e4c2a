"""Vietnamese labels for case states and reason codes, and the small formatting rules of the readable output.

Why a table of labels (not the codes themselves): the readers are provincial officers; "EXAM_MISSING" means
nothing to them, "Thiếu giấy khám sức khỏe" does. The codes stay in the JSON output for machines. A code without a
label (a newer schema than this table) is shown as the code itself rather than hidden.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

#: Times are shown in Vietnam's time zone, whatever the machine's zone is.
VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

#: Avro short name of a case event -> (state code, Vietnamese label).
STATES: dict[str, tuple[str, str]] = {
    "CaseOpened": ("OPENED", "Đã tiếp nhận"),
    "CaseAwaiting": ("AWAITING", "Chờ bổ sung"),
    "CaseApproved": ("APPROVED", "Đã duyệt"),
    "CaseRejected": ("REJECTED", "Từ chối"),
    "CaseEscalated": ("ESCALATED", "Chuyển tỉnh xử lý"),
    "IssuanceRequested": ("ISSUANCE_REQUESTED", "Đề nghị cấp GPLX"),
    "IssuanceDeliveryFailed": ("ISSUANCE_FAILED", "Gửi đề nghị cấp GPLX thất bại"),
}

#: ReasonCode symbol -> Vietnamese label (every symbol of vn.gplx.common.ReasonCode; a unit test checks).
REASONS: dict[str, str] = {
    "IDENTITY_MISMATCH": "Thông tin không khớp với CCCD",
    "PHONE_NOT_TIED": "Số điện thoại không gắn với CCCD",
    "EXAM_MISSING": "Thiếu giấy khám sức khỏe",
    "EXAM_EXPIRED": "Giấy khám sức khỏe đã hết hạn",
    "UNFIT": "Không đủ điều kiện sức khỏe",
    "PAYMENT_FAILED": "Thanh toán lệ phí thất bại",
    "PAYMENT_MISSING": "Chưa nộp lệ phí",
    "LICENCE_NOT_FOUND": "Không tìm thấy GPLX trong cơ sở dữ liệu",
    "LICENCE_REVOKED": "GPLX đã bị thu hồi",
    "UNRESOLVED_VIOLATION": "Còn vi phạm chưa giải quyết",
    "ZERO_POINTS": "GPLX đã bị trừ hết điểm",
    "LICENCE_EXPIRED": "GPLX đã hết hạn",
    "IDENTITY_MISSING": "Chưa có kết quả xác thực danh tính",
    "LICENCE_STATUS_MISSING": "Chưa có kết quả tra cứu GPLX",
    "APPLICATION_WITHDRAWN": "Người dân đã rút hồ sơ",
    "CLASS_NOT_HELD": "Không có hạng GPLX đề nghị đổi",
    "NAME_OR_DOB_DIFFERS": "Họ tên hoặc ngày sinh khác CCCD (cấp theo CCCD)",
    "DEADLINE_EXCEEDED": "Quá thời hạn xử lý",
    "MANUAL_REVIEW": "Cần xem xét thủ công",
    "PAYMENT_INSUFFICIENT": "Lệ phí nộp chưa đủ",
    "OVERPAID": "Nộp thừa lệ phí (hoàn lại phần thừa)",
    "EXAM_WRONG_CLASS": "Giấy khám sức khỏe không đúng hạng GPLX",
    "CLASS_NOT_RENEWABLE": "Hạng GPLX cũ không còn được cấp đổi trực tuyến",
    "FEE_QUOTE_DIFFERS": "Lệ phí báo trên Cổng khác mức lệ phí quy định",
    "UNKNOWN": "Lý do khác",
}


#: Restriction codes of the class exchange (topology/data/class-exchange-2025.json) -> Vietnamese label; a code
#: without a label is shown as itself.
RESTRICTIONS: dict[str, str] = {
    "TWO_WHEELERS_UNDER_175CC_OR_14KW": "Chỉ xe mô tô hai bánh dưới 175 cm³ hoặc dưới 14 kW",
    "AUTOMATIC_TRANSMISSION_ONLY": "Chỉ xe ô tô số tự động",
    "TRACTOR_CERTIFICATE_UP_TO_3500KG": "Kèm chứng chỉ điều khiển máy kéo đến 3.500 kg",
    "SPECIAL_USE_VEHICLE_CERTIFICATE_TRACTOR_1000KG":
        "Chứng chỉ điều khiển xe máy chuyên dùng (máy kéo đến 1.000 kg)",
}


def restriction(code: str) -> str:
    return RESTRICTIONS.get(code, code)


def state(event_type: str) -> tuple[str, str]:
    """(state code, label) of an event type; unknown types show their own name."""
    return STATES.get(event_type, (event_type.upper(), event_type))


def reason(code: str) -> str:
    return REASONS.get(code, code)


def vn_datetime(value: dt.datetime) -> str:
    """dd/mm/yyyy HH:MM in Asia/Ho_Chi_Minh (a naive value is taken as UTC, as on the wire)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")


def vn_date(value: dt.date | dt.datetime) -> str:
    """dd/mm/yyyy; a datetime is first put in Vietnam's zone (a deadline at 17:00 UTC is the next day there)."""
    if isinstance(value, dt.datetime):
        return vn_datetime(value)[:10]
    return value.strftime("%d/%m/%Y")


def mask_cccd(cccd: str) -> str:
    """079******123: the birth-province code and the last three digits, enough to tell two citizens apart on a
    screen without showing the number (a CCCD is personal data)."""
    if len(cccd) < 7:
        return "*" * len(cccd)
    return cccd[:3] + "*" * (len(cccd) - 6) + cccd[-3:]
