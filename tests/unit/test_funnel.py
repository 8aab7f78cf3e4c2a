"""The funnel computation (consumers.funnel) on hand-made events: stages, outcomes, reasons, refunds, portal
deliveries, and the reconciliation with a simulator plan. No broker."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from consumers.funnel import STAGES, compute, expected_final, reconcile
from consumers.funnel.render import funnel_table, reasons_table
from producers import simulator
from schemas import models
from topology.processor import citizen
from topology.processor.outputs import build, case_id_for

T0 = dt.datetime(2025, 6, 2, 2, 0, tzinfo=dt.timezone.utc)  # a Monday
SRC = {"system": "portal", "instance": "test"}
STAGE = [s[0] for s in STAGES]


def application(app_id: str, province: str, serial: int) -> models.ApplicationSubmitted:
    return models.ApplicationSubmitted(
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, app_id)), occurred_at=T0, source=SRC, application_id=app_id, cccd=f"001085{serial:06d}",
        full_name="Nguyễn Văn An", date_of_birth=dt.date(1985, 1, 1), phone="0912345678",
        licence_number="010000000001", classes=["B"], residence_province=province, residence_ward="Phường Ba Đình",
        delivery_method="PICKUP", postal_address=None, fee_quoted_vnd=135_000)


REFUND = "refund/tx"  # the processor's output kind of a refund: "refund/<transaction id>"


def case_of(app: models.ApplicationSubmitted) -> citizen.Case:
    """The processor's case for an application (what outputs.build turns into events)."""
    return citizen.Case(
        case_id_for(app.application_id),
        citizen.ApplicationRecord(
            application_id=app.application_id, cccd=app.cccd, province=app.residence_province,
            classes=list(app.classes), submitted_at=T0, licence_number=app.licence_number,
            full_name=app.full_name, date_of_birth=app.date_of_birth, phone=app.phone,
            delivery_method=app.delivery_method, postal_address=app.postal_address,
            fee_quoted_vnd=app.fee_quoted_vnd, notice_due_at=T0 + dt.timedelta(days=2),
            decision_due_at=T0 + dt.timedelta(days=7)),
        rule_set_version="test",
        refunds={REFUND: citizen.Refund(transaction_id=f"tx-{app.application_id}", gateway_reference="ref",
                                        amount_vnd=135_000, reasons=["UNFIT"])})


class Bus:
    """Hand-made topic contents: what the processor, the sink and the portal would have produced."""

    def __init__(self) -> None:
        self.applications, self.case_events, self.issuances, self.refunds = [], [], [], []
        self.portal: set[str] = set()
        self.serial = 0

    def case(self, province: str, outcome: str | None, reasons=(), *, refund=False, delivered=True,
             warnings=()) -> str:
        self.serial += 1
        app = application(f"HS-{self.serial:04d}", province, self.serial)
        self.applications.append(app)
        case = case_of(app)
        self.case_events.append(build("opened", case, T0).event)
        case.reasons, case.warnings = list(reasons), list(warnings)
        if outcome == "APPROVED":
            self.case_events.append(build("approved", case, T0).event)
            issuance = build("issuance", case, T0).event
            self.issuances.append(issuance)
            if delivered:
                self.portal.add(issuance.issuance_id)
        elif outcome is not None:
            self.case_events.append(build(outcome.lower(), case, T0).event)
            if refund:
                self.refunds.append(build(REFUND, case, T0).event)
        return app.application_id

    def funnel(self, **kwargs):
        return compute(self.applications, self.case_events, self.issuances, self.refunds, self.portal, **kwargs)


def test_each_case_stops_at_the_stage_of_its_first_reason():
    bus = Bus()
    bus.case("01", "APPROVED")
    bus.case("01", "APPROVED", delivered=False)
    bus.case("01", "REJECTED", ["IDENTITY_MISMATCH", "PHONE_NOT_TIED"], refund=True)
    bus.case("01", "ESCALATED", ["LICENCE_NOT_FOUND"])
    bus.case("01", "REJECTED", ["UNFIT"], refund=True)
    bus.case("01", "ESCALATED", ["PAYMENT_FAILED", "DEADLINE_EXCEEDED"])
    bus.case("01", "ESCALATED", ["EXAM_MISSING", "DEADLINE_EXCEEDED"])
    bus.case("79", "APPROVED")
    bus.case("79", None)  # opened, never decided
    funnel = bus.funnel()

    assert funnel.stage_counts("01") == dict(zip(STAGE, [7, 6, 5, 3, 2, 2, 1]))
    assert funnel.stage_counts("79") == dict(zip(STAGE, [2, 1, 1, 1, 1, 1, 1]))
    assert funnel.stage_counts() == dict(zip(STAGE, [9, 7, 6, 4, 3, 3, 2]))
    assert funnel.outcomes("01") == {"APPROVED": 2, "REJECTED": 2, "ESCALATED": 3}
    assert funnel.outcomes("79") == {"APPROVED": 1, "UNDECIDED": 1}
    assert funnel.reasons("ESCALATED") == {"DEADLINE_EXCEEDED": 2, "LICENCE_NOT_FOUND": 1, "PAYMENT_FAILED": 1,
                                           "EXAM_MISSING": 1}
    assert funnel.reasons("REJECTED", "01") == {"IDENTITY_MISMATCH": 1, "PHONE_NOT_TIED": 1, "UNFIT": 1}
    assert funnel.refunds("01") == 2 and funnel.refunds("79") == 0
    assert funnel.undecided() == ["HS-0009"]
    assert funnel.provinces() == ["01", "79"]


def test_redelivered_events_count_once():
    bus = Bus()
    bus.case("08", "APPROVED")
    bus.case("08", "REJECTED", ["ZERO_POINTS"], refund=True)
    bus.case_events += list(bus.case_events)  # at-least-once: every case event delivered twice
    bus.issuances += list(bus.issuances)
    bus.refunds += list(bus.refunds)
    funnel = bus.funnel(portal_received=2)
    assert funnel.provinces() == ["08"]
    assert funnel.stage_counts("08")["delivered"] == 1
    assert funnel.outcomes() == {"APPROVED": 1, "REJECTED": 1}
    assert funnel.refunds() == 1
    assert (funnel.portal_received, funnel.portal_distinct) == (2, 1)


def test_an_application_without_a_case_stops_at_the_first_stage():
    bus = Bus()
    bus.case("01", "APPROVED")
    bus.applications.append(application("HS-lost", "01", 99))
    funnel = bus.funnel()
    assert funnel.stage_counts("01")["applications"] == 2
    assert funnel.stage_counts("01")["identity"] == 1
    assert funnel.outcomes("01")["UNDECIDED"] == 1


def test_awaiting_becomes_escalated_past_the_deadline():
    assert expected_final("AWAITING", ("EXAM_MISSING",)) == ("ESCALATED", {"EXAM_MISSING", "DEADLINE_EXCEEDED"})
    assert expected_final("REJECTED", ("UNFIT",)) == ("REJECTED", {"UNFIT"})


# --- reconciliation with a simulator plan: a perfect bus reconciles; each fault is named --------------------------
def bus_as_planned(plan: simulator.Plan) -> Bus:
    """The topics as a correct processor/sink/portal would leave them for this plan."""
    bus = Bus()
    for scheduled in plan.events:
        if isinstance(scheduled.event, models.ApplicationSubmitted):
            bus.applications.append(scheduled.event)
    apps = {a.application_id: a for a in bus.applications}
    for e in plan.expected:
        case = case_of(apps[e.application_id])
        bus.case_events.append(build("opened", case, T0).event)
        outcome, reasons = expected_final(e.outcome, e.reasons)
        case.reasons, case.warnings = sorted(reasons), list(e.warnings)
        if outcome == "APPROVED":
            bus.case_events.append(build("approved", case, T0).event)
            bus.issuances.append(build("issuance", case, T0).event)
            bus.portal.add(bus.issuances[-1].issuance_id)
            if e.refund_expected:  # the excess of an overpayment
                bus.refunds.append(build(REFUND, case, T0).event)
        else:
            bus.case_events.append(build(outcome.lower(), case, T0).event)
            if e.refund_expected:
                bus.refunds.append(build(REFUND, case, T0).event)
    return bus


@pytest.fixture(scope="module")
def plan() -> simulator.Plan:
    return simulator.make_plan("01,79", 80, seed=7, start=T0)


def test_a_bus_that_did_what_the_plan_says_reconciles(plan):
    bus = bus_as_planned(plan)
    funnel = bus.funnel()
    assert reconcile(funnel, plan.expected) == []
    counts = funnel.stage_counts()
    approved = sum(1 for e in plan.expected if e.outcome == "APPROVED")
    assert counts["applications"] == 80 and counts["approved"] == counts["delivered"] == approved
    assert funnel.refunds() == sum(e.refund_expected for e in plan.expected)


def test_every_kind_of_difference_is_named_by_application_id_without_personal_data(plan):
    bus = bus_as_planned(plan)
    by_outcome = {}
    for e in plan.expected:
        by_outcome.setdefault(e.outcome, []).append(e.application_id)
    approved, rejected = by_outcome["APPROVED"], by_outcome["REJECTED"]
    undecided, undelivered, twice_refunded = approved[0], approved[1], rejected[0]
    finals = {case_id_for(undecided)}
    bus.case_events = [e for e in bus.case_events
                       if not (type(e).__name__ == "CaseApproved" and e.case_id in finals)]
    bus.portal.discard(next(i.issuance_id for i in bus.issuances if i.case_id == case_id_for(undelivered)))
    refund = next(r for r in bus.refunds if r.case_id == case_id_for(twice_refunded))
    bus.refunds.append(refund.model_copy(update={"refund_id": str(uuid.uuid4())}))

    problems = reconcile(bus.funnel(), plan.expected)
    assert any(p.startswith(f"{undecided}: no final decision") for p in problems)
    assert f"{undelivered}: approved but not delivered to the portal" in problems
    assert f"{twice_refunded}: 2 refund(s), expected 1" in problems
    cccds = {e.cccd for e in plan.expected}
    assert not any(c in p for p in problems for c in cccds)


def test_the_tables_render_without_personal_data(plan):
    from rich.console import Console

    bus = bus_as_planned(plan)
    console = Console(width=100, record=True)
    console.print(funnel_table(bus.funnel()))
    console.print(reasons_table(bus.funnel()))
    text = console.export_text()
    assert "Hà Nội" in text and "Khớp CCCD" in text and "Số điện thoại không gắn với CCCD" in text
    assert not any(e.cccd in text for e in plan.expected)


def test_old_province_codes_and_exchanged_classes_are_counted():
    typed = application("HS-old", "74", 1).model_copy(update={"classes": ["A2"]})  # old Bình Dương -> 79
    exchanged = case_of(typed.model_copy(update={"residence_province": "79"}))  # the processor routes it
    exchanged.new_classes, exchanged.restrictions = ["A"], []
    plain = application("HS-new", "79", 2)
    events = [build(kind, case, T0).event for case in (exchanged, case_of(plain)) for kind in ("opened", "approved")]
    funnel = compute([typed, plain], events)
    assert (funnel.old_codes(), funnel.old_codes("79"), funnel.exchanged()) == (1, 1, 1)
    assert [c.province for c in funnel.cases.values()] == ["79", "79"]
