"""Made-up case events in the shape of `cases.events` (decoded records), for the tests and `make bench-status`.

Each case opens, usually waits for something, then is decided (approved, rejected or escalated) or stays
waiting; times are the case's own. Deterministic for a seed. CCCDs are fake (serial numbers from 900000).
"""
from __future__ import annotations

import datetime as dt
import random
import uuid

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 9, 1, 1, 0, tzinfo=UTC)
PROVINCES = ("01", "79", "48")


def case_events(cases: int, *, seed: int = 1, provinces=PROVINCES, start: int = 0) -> list[tuple[str, dict]]:
    """(Avro short name, record) of `cases` cases, each case's events in order."""
    rnd = random.Random(seed)
    out = []
    for i in range(start, start + cases):
        case_id = str(uuid.UUID(int=rnd.getrandbits(128)))
        cccd = f"0{rnd.choice(('01', '79', '48'))}{rnd.randint(0, 3)}{rnd.randint(50, 99)}{900000 + i % 100000:06d}"
        at = T0 + dt.timedelta(seconds=i * 7)
        common = dict(source={"system": "synthetic", "instance": "1"}, correlation_id=case_id, case_id=case_id,
                      cccd=cccd, province=provinces[i % len(provinces)])

        def event(kind: str, minutes: int, **fields):
            record = dict(common, event_id=str(uuid.UUID(int=rnd.getrandbits(128))),
                          occurred_at=at + dt.timedelta(minutes=minutes), **fields)
            out.append((kind, record))

        event("CaseOpened", 0, application_id=f"APP-{i:07d}", classes=["B"],
              missing_notice_due_at=at + dt.timedelta(days=2), decision_due_at=at + dt.timedelta(days=7),
              residence_province_original=None)
        fate = rnd.random()
        if fate < 0.6:
            event("CaseAwaiting", 5, missing=["EXAM_MISSING", "PAYMENT_MISSING"])
        if fate < 0.15:
            continue  # still waiting
        if fate < 0.7:
            event("CaseApproved", 30, classes=["B"], warnings=[], rule_set_version="2025.1", new_classes=["B"],
                  restrictions=[])
        elif fate < 0.9:
            event("CaseRejected", 30, reasons=["PHONE_NOT_TIED"], rule_set_version="2025.1")
        else:
            event("CaseEscalated", 30, reasons=["DEADLINE_EXCEEDED", "EXAM_MISSING"], note=None)
    return out
