"""The funnel as rich tables: one row per province, then rejections and escalations by reason.

Labels are bilingual (English / Vietnamese): the demo is read by engineers and by provincial officers. No personal
data is shown: counts only.
"""
from __future__ import annotations

from rich.table import Table

from consumers.funnel.model import STAGES, Funnel
from consumers.subscriber.labels import reason as reason_label
from schemas import reference


def province_name(code: str) -> str:
    return reference.current_provinces().get(code, code)


def funnel_table(funnel: Funnel) -> Table:
    """Stages as rows, provinces as columns (narrow enough for an 80-column CI log with a few provinces)."""
    provinces = funnel.provinces()
    columns = [(code, code) for code in provinces] + [("all", None)]
    table = Table(title="Renewal funnel per province (Phễu hồ sơ đổi GPLX theo tỉnh)", title_justify="left")
    table.add_column("stage")
    table.add_column("giai đoạn")
    for header, _ in columns:
        table.add_column(header, justify="right")
    counts = {header: funnel.stage_counts(code) for header, code in columns}
    for index, (key, english, vietnamese, _) in enumerate(STAGES):
        cells = []
        for header, _ in columns:
            n, first = counts[header][key], counts[header][STAGES[0][0]] or 1
            cells.append(str(n) if index == 0 else f"{n} {100 * n / first:.0f}%")
        table.add_row(english, vietnamese, *cells, end_section=key == STAGES[-1][0])
    outcomes = {header: funnel.outcomes(code) for header, code in columns}
    for english, vietnamese, value in (
            ("rejected", "Từ chối", lambda h, c: outcomes[h]["REJECTED"]),
            ("escalated", "Chuyển tỉnh xử lý", lambda h, c: outcomes[h]["ESCALATED"]),
            ("refund requested", "Hoàn lệ phí", lambda h, c: funnel.refunds(c)),
            ("old province code", "Mã tỉnh cũ", lambda h, c: funnel.old_codes(c)),
            ("old class exchanged", "Đổi hạng cũ", lambda h, c: funnel.exchanged(c)),
            ("undecided", "Chưa có quyết định", lambda h, c: outcomes[h]["UNDECIDED"])):
        table.add_row(english, vietnamese, *(str(value(h, c)) for h, c in columns))
    table.caption = "; ".join(f"{code} {province_name(code)}" for code in provinces)
    table.caption_justify = "left"
    return table


def reasons_table(funnel: Funnel) -> Table:
    provinces = funnel.provinces()
    table = Table(title="Rejections and escalations by reason, approvals by warning (Lý do từ chối / chuyển tỉnh / "
                        "lưu ý khi duyệt)", title_justify="left")
    table.add_column("outcome")
    table.add_column("reason (lý do)")
    for code in provinces:
        table.add_column(code, justify="right")
    table.add_column("all", justify="right")
    rows = [(outcome.lower(), lambda p, o=outcome: funnel.reasons(o, p)) for outcome in ("REJECTED", "ESCALATED")]
    rows.append(("approved, warning", lambda p: funnel.warnings(p)))
    for label, count in rows:
        for code_, total in sorted(count(None).items(), key=lambda kv: (-kv[1], kv[0])):
            table.add_row(label, f"{code_}\n{reason_label(code_)}", *(str(count(p)[code_]) for p in provinces),
                          str(total))
    return table
