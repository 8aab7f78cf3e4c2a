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
    table = Table(title="Renewal funnel per province (Phễu hồ sơ đổi GPLX theo tỉnh)", title_justify="left")
    table.add_column("province (tỉnh)")
    for _, english, vietnamese, _ in STAGES:
        table.add_column(f"{english}\n{vietnamese}", justify="right")
    for header in ("rejected\nTừ chối", "escalated\nChuyển tỉnh", "refunds\nHoàn phí", "undecided\nChưa xử lý"):
        table.add_column(header, justify="right")
    rows = [(f"{code} {province_name(code)}", code) for code in funnel.provinces()] + [("all (tổng)", None)]
    for label, code in rows:
        counts, outcomes = funnel.stage_counts(code), funnel.outcomes(code)
        first = counts[STAGES[0][0]] or 1
        cells = [f"{n} ({100 * n / first:.0f}%)" if i else str(n) for i, n in enumerate(counts.values())]
        table.add_row(label, *cells, str(outcomes["REJECTED"]), str(outcomes["ESCALATED"]),
                      str(funnel.refunds(code)), str(outcomes["UNDECIDED"]),
                      end_section=code == funnel.provinces()[-1] if funnel.provinces() else False,
                      style="bold" if code is None else None)
    return table


def reasons_table(funnel: Funnel) -> Table:
    provinces = funnel.provinces()
    table = Table(title="Rejections and escalations by reason (Lý do từ chối / chuyển tỉnh)", title_justify="left")
    table.add_column("outcome")
    table.add_column("reason")
    table.add_column("lý do")
    for code in provinces:
        table.add_column(code, justify="right")
    table.add_column("all", justify="right")
    for outcome in ("REJECTED", "ESCALATED"):
        for code_, total in sorted(funnel.reasons(outcome).items(), key=lambda kv: (-kv[1], kv[0])):
            per = [str(funnel.reasons(outcome, p)[code_]) for p in provinces]
            table.add_row(outcome.lower(), code_, reason_label(code_), *per, str(total))
    return table
