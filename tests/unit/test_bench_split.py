"""The bench's steps publish whole cases: the memory curve is read per open case (gplx_bus.bench)."""
from __future__ import annotations

from gplx_bus.bench.bus_env import Record
from gplx_bus.bench.processor_runs import split_by_case


def _record(case: str, kind: str) -> Record:
    return Record("topic", b"k", f"{case}/{kind}".encode(), kind, case)


def test_each_case_in_one_part_with_its_certificate_signed_days_earlier():
    # publishing (time) order as the simulator makes it: every certificate first, the answers last
    cases = [f"APP-{i}" for i in range(8)]
    records = ([_record(c, "HealthCertificate") for c in cases] + [_record(c, "ApplicationSubmitted") for c in cases]
               + [_record(c, "IdentityCheckResult") for c in cases] + [_record("", "Other")])

    parts = split_by_case(records, 4)

    assert [len({r.case for r in part if r.case}) for part in parts] == [2, 2, 2, 2]
    for part in parts:  # every case whole, in publishing order
        for case in {r.case for r in part if r.case}:
            assert [r.event_type for r in part if r.case == case] == [
                "HealthCertificate", "ApplicationSubmitted", "IdentityCheckResult"]
    assert sum(map(len, parts)) == len(records)
    assert any(r.case == "" for r in parts[0])
