"""Old (pre-2025) and new licence classes through the real broker: the case processor decides on the 2025 class a
class is renewed into, names it in CaseApproved and IssuanceRequested, and the portal receives it."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from consumers.portal import Backoff, IssuanceSink, StandinPortal
from tests.case_scenarios import T0, Script
from tests.processor_harness import wait_for
from topology import catalogue as topics
from topology.processor.assembler import tick

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NOTICE = T0 + timedelta(days=2, hours=1)  # Wednesday: 2 working days after submission, the CaseAwaiting is due
DEADLINE = T0 + timedelta(days=14)
NEW_ERA = date(2025, 3, 1)

# (script, the 2025 classes issued, restrictions); expected outcome and reasons are on the script.
CASES = [
    # the defect: an old B1 is a car licence (-> B, certificate needed), not the new three-wheeler B1
    (Script("old-b1-car-no-exam", 8001, classes=("B1",), certificate=None, expected="ESCALATED",
            expected_reasons=("EXAM_MISSING", "DEADLINE_EXCEEDED")), None, None),
    (Script("new-b1-three-wheeler-no-exam", 8002, classes=("B1",), certificate=None, expires_on=None,
            issued_on=NEW_ERA), ["B1"], []),
    # the defect: an old A2 renews into A, which needs no certificate
    (Script("old-a2-no-exam", 8003, classes=("A2",), certificate=None, expires_on=None), ["A"], []),
    (Script("old-a1-no-exam", 8004, classes=("A1",), certificate=None, expires_on=None),
     ["A"], ["TWO_WHEELERS_UNDER_175CC_OR_14KW"]),
    # B11 = B1 automatic; the clinic's conclusion on the old code speaks for B
    (Script("old-b1-automatic", 8005, classes=("B11",)), ["B"], ["AUTOMATIC_TRANSMISSION_ONLY"]),
    (Script("old-d-to-d2", 8006, classes=("D",)), ["D2"], []),
    (Script("old-a4-not-renewable", 8007, classes=("A4",), certificate=None, expected="ESCALATED",
            expected_reasons=("CLASS_NOT_RENEWABLE",)), None, None),
]
SCRIPTS = [s for s, _, _ in CASES]
APPROVED = {s.case_id: (new, restrictions) for s, new, restrictions in CASES if s.expected == "APPROVED"}


def test_old_and_new_classes_are_decided_on_the_2025_class_and_issued_as_it(pbus, tmp_path):
    worker = pbus.worker(tmp_path).start()
    portal = StandinPortal().start()
    sink = IssuanceSink(pbus.bootstrap, pbus.registry_url, portal.url, catalogue=pbus.catalogue,
                        credentials=portal.credentials,
                        backoff=Backoff(base_s=0.05, max_s=0.5, jitter=0.5)).start()
    try:
        pbus.publish([pair for script in SCRIPTS for pair in script.events()])
        wait_for(pbus.inputs_consumed, 120, "the processor to consume every input")
        old_b1 = SCRIPTS[0]
        pbus.publish([(topics.CASES_CLOCK, tick(old_b1.cccd, NOTICE))])
        awaiting = wait_for(lambda: [e for _, e, _ in pbus.read(topics.CASES_EVENTS)
                                     if type(e).__name__ == "CaseAwaiting" and e.case_id == old_b1.case_id],
                            60, "the old B1 case's CaseAwaiting notice")
        assert awaiting[0].missing == ["EXAM_MISSING"]
        pbus.publish([(topics.CASES_CLOCK, tick(old_b1.cccd, DEADLINE))])
        finals = wait_for(lambda: (f := pbus.finals()) and all(s.case_id in f for s in SCRIPTS) and f,
                          120, "a decision on every case")
        wait_for(lambda: portal.distinct == len(APPROVED), 60, "the portal to receive every issuance")
    finally:
        sink.stop()
        portal.stop()
        worker.stop()
        for log in sorted(tmp_path.glob("*.log")):  # shown by pytest only when the test failed
            print(f"--- last lines of {log.name} ---", *log.read_text(errors="replace").splitlines()[-40:], sep="\n")

    for script in SCRIPTS:
        [decision] = {e.event_id: e for e in finals[script.case_id]}.values()
        assert type(decision).__name__ == "Case" + script.expected.capitalize(), script.name
        assert list(getattr(decision, "reasons", ())) == list(script.expected_reasons), script.name
        if script.case_id in APPROVED:
            assert (decision.new_classes, decision.restrictions) == APPROVED[script.case_id], script.name
            assert decision.classes == list(script.classes)  # as applied for, printed on the old card

    issued = {e.case_id: e for _, e, _ in pbus.read(topics.ISSUANCE_REQUESTS)}
    assert {case_id: (e.new_classes, e.restrictions) for case_id, e in issued.items()} == APPROVED
    delivered = {body["case_id"]: (body["new_classes"], body["restrictions"])
                 for body in portal.issuances().values()}
    assert delivered == APPROVED
