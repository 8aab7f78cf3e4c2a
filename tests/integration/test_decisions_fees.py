"""Fees and awaiting states on the real broker (issue 10): a short payment waits, payments add up, the excess and a
rejected case's money are refunded once per transaction, money for a decided case goes back, and what blocks a
case is on `cases.events` before any clock tick."""
from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest

from schemas import models
from tests.case_scenarios import SRC, T0, Script
from tests.processor_harness import ProcessorBus, wait_for
from topology import catalogue as topics
from topology.processor.assembler import tick

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DEADLINE = T0 + timedelta(days=14)
REVOKED = ("LICENCE_REVOKED",)

# script, refunds as (index of the refunded transaction, or "late", amount, reasons)
FEES = [
    (Script("underpaid", 1, amounts=(100_000,), expected="ESCALATED",
            expected_reasons=("PAYMENT_INSUFFICIENT", "DEADLINE_EXCEEDED")), []),
    (Script("paid-in-two", 2, amounts=(100_000, 35_000)), []),
    (Script("overpaid", 3, amounts=(1_350_000,)), [(0, 1_215_000, ("OVERPAID",))]),
    (Script("rejected-paid-in-two", 4, revoked=True, amounts=(100_000, 35_000), expected="REJECTED",
            expected_reasons=REVOKED), [(0, 100_000, REVOKED), (1, 35_000, REVOKED)]),
    (Script("approved-then-paid-again", 5), [("late", 135_000, ("OVERPAID",))]),
    (Script("rejected-then-paid-again", 6, revoked=True, expected="REJECTED", expected_reasons=REVOKED),
     [(0, 135_000, REVOKED), ("late", 135_000, REVOKED)]),
]
# script, the reasons its CaseAwaiting shows as soon as every fact is in (no tick yet)
AWAITING = [
    (Script("cert-expired", 11, certificate="expired", expected="ESCALATED",
            expected_reasons=("EXAM_EXPIRED", "DEADLINE_EXCEEDED")), ["EXAM_EXPIRED"]),
    (Script("cert-wrong-class", 12, certificate="wrong-class", expected="ESCALATED",
            expected_reasons=("EXAM_WRONG_CLASS", "DEADLINE_EXCEEDED")), ["EXAM_WRONG_CLASS"]),
    (Script("cert-revoked", 13, certificate="revoked", expected="ESCALATED",
            expected_reasons=("EXAM_MISSING", "DEADLINE_EXCEEDED")), ["EXAM_MISSING"]),
    (Script("pay-failed", 14, payment="FAILED", expected="ESCALATED",
            expected_reasons=("PAYMENT_FAILED", "DEADLINE_EXCEEDED")), ["PAYMENT_FAILED"]),
    (FEES[0][0], ["PAYMENT_INSUFFICIENT"]),
]


@pytest.fixture
def worker(pbus, tmp_path):
    w = pbus.worker(tmp_path).start()
    yield w
    w.stop()
    for log in sorted(tmp_path.glob("*.log")):  # shown by pytest only when the test failed
        print(f"--- last lines of {log.name} ---", *log.read_text(errors="replace").splitlines()[-40:], sep="\n")


def late_payment(script: Script) -> tuple[str, models.PaymentTransaction]:
    return (topics.PAYMENT_TRANSACTIONS, models.PaymentTransaction(
        event_id=f"00000000-0000-4000-8000-{script.serial:012d}", occurred_at=T0 + timedelta(hours=1), source=SRC,
        transaction_id=f"late-{script.serial}", application_id=script.application_id, cccd=script.cccd,
        status="PAID", amount_vnd=135_000, gateway_reference=f"GW-late-{script.serial}"))


def transactions(script: Script) -> list[str]:
    return [e.transaction_id for _, e in script.events() if isinstance(e, models.PaymentTransaction)]


def latest_awaiting(bus: ProcessorBus) -> dict[str, list[str]]:
    latest = {}
    for _, event, _ in bus.read(topics.CASES_EVENTS):
        if isinstance(event, models.CaseAwaiting):
            latest[event.case_id] = list(event.missing)
    return latest


def test_fees_refunds_and_awaiting_states_on_the_bus(pbus, worker):
    cases = [s for s, _ in FEES] + [s for s, _ in AWAITING if s not in [f for f, _ in FEES]]
    # every fact twice; half the cases with the payments before the application
    pbus.publish([pair for i, case in enumerate(cases)
                  for pair in (case.events() if i % 2 else reversed(case.events())) for _ in range(2)])

    # Before any tick: a blocked case shows its reasons, and is not decided.
    def shown():
        latest = latest_awaiting(pbus)
        return latest if all(latest.get(s.case_id) == reasons for s, reasons in AWAITING) else None
    wait_for(shown, 120, "a CaseAwaiting with its reasons on every blocked case")
    assert not {s.case_id for s, _ in AWAITING} & set(pbus.finals())

    # The approved and the rejected case are decided without a tick; then money arrives for them, twice.
    decided_early = [s for s, _ in FEES if s.name.endswith("-then-paid-again")]
    wait_for(lambda: all(s.case_id in pbus.finals() for s in decided_early), 120, "the early decisions")
    pbus.publish([late_payment(s) for s in decided_early for _ in range(2)])
    wait_for(pbus.inputs_consumed, 120, "the processor to consume every input")
    pbus.publish([(topics.CASES_CLOCK, tick(case.cccd, DEADLINE)) for case in cases])
    finals = wait_for(lambda: (f := pbus.finals()) and all(c.case_id in f for c in cases) and f, 120,
                      "a decision on every case")

    for case in cases:
        [decision] = {e.event_id: e for e in finals[case.case_id]}.values()
        assert type(decision).__name__ == "Case" + case.expected.capitalize(), case.name
        assert set(getattr(decision, "reasons", ())) == set(case.expected_reasons), case.name
    refunds = defaultdict(dict)  # case -> refund id -> (transaction, amount, reasons); re-deliveries identical
    for _, r, _ in pbus.read(topics.PAYMENT_REFUND_REQUESTS):
        content = (r.transaction_id, r.amount_vnd, tuple(r.reasons))
        assert refunds[r.case_id].setdefault(r.refund_id, content) == content
    for script, expected in FEES:
        ids = transactions(script) + [f"late-{script.serial}"]
        want = sorted((ids[-1] if i == "late" else ids[i], amount, reasons) for i, amount, reasons in expected)
        assert sorted(refunds.get(script.case_id, {}).values()) == want, script.name
    assert set(refunds) == {s.case_id for s, expected in FEES if expected}  # no other case refunded
    issued = [e.case_id for _, e, _ in pbus.read(topics.ISSUANCE_REQUESTS)]
    assert sorted(set(issued)) == sorted(c.case_id for c in cases if c.expected == "APPROVED")
    assert len(issued) == len(set(issued))
