"""The renewal funnel, computed from what the bus carried: pure functions over decoded events, no Kafka.

Why a funnel by reason codes: the pilot failed because nobody could see *where* applications got stuck. Every
final decision on `cases.events` names its reasons, so a case's furthest stage is the first stage whose gate one
of its reasons belongs to (a case rejected for PHONE_NOT_TIED stopped at "identity matched"). Approved cases
pass every gate; they reach "delivered" once the portal holds their issuance.

Inputs are what the topics and the portal hold:
- `portal.applications`: ApplicationSubmitted (the applications, by residence province);
- `cases.events`: CaseOpened (application id -> case id) and the final CaseApproved/Rejected/Escalated;
- `issuance.requests`: IssuanceRequested (case -> issuance id);
- `payment.refund-requests`: RefundRequested;
- the portal's set of accepted issuance ids (Idempotency-Keys).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from schemas import reference

#: (stage key, English label, Vietnamese label, reason codes that stop a case *before* reaching this stage).
STAGES: tuple[tuple[str, str, str, frozenset[str]], ...] = (
    ("applications", "applications", "Hồ sơ nộp", frozenset()),
    ("identity", "identity matched", "Khớp CCCD", frozenset({
        "IDENTITY_MISMATCH", "PHONE_NOT_TIED", "IDENTITY_MISSING"})),
    ("licence", "licence ok", "GPLX hợp lệ", frozenset({
        "LICENCE_STATUS_MISSING", "LICENCE_NOT_FOUND", "LICENCE_REVOKED", "UNRESOLVED_VIOLATION", "ZERO_POINTS",
        "LICENCE_EXPIRED", "CLASS_NOT_HELD"})),
    ("certificate", "certificate ok", "Có GKSK hợp lệ", frozenset({"EXAM_MISSING", "EXAM_EXPIRED", "EXAM_WRONG_CLASS", "UNFIT"})),
    ("paid", "paid", "Đã nộp lệ phí", frozenset({"PAYMENT_MISSING", "PAYMENT_FAILED", "PAYMENT_INSUFFICIENT"})),
    ("approved", "approved", "Được duyệt", frozenset()),
    ("delivered", "delivered to portal", "Đã gửi Cổng DVC", frozenset()),
)
STAGE_KEYS = tuple(s[0] for s in STAGES)
FINAL = {"CaseApproved": "APPROVED", "CaseRejected": "REJECTED", "CaseEscalated": "ESCALATED"}


@dataclass
class Case:
    """One application as the topics tell it."""

    application_id: str
    province: str
    case_id: str | None = None
    decisions: dict[str, Any] = field(default_factory=dict)  # event_id -> final event (distinct ids)
    issuance_ids: set[str] = field(default_factory=set)
    refund_ids: set[str] = field(default_factory=set)
    delivered: bool = False
    old_code: bool = False  # the residence was typed with a pre-July-2025 province code (routed to `province`)

    @property
    def exchanged(self) -> bool:
        """Approved with a pre-2025 class exchanged for a 2025 one (old A2 -> A, old B1 car licence -> B, ...)."""
        decision = self.decision if self.outcome == "APPROVED" else None
        new = tuple(getattr(decision, "new_classes", None) or ())
        return bool(new) and set(new) != set(decision.classes)

    @property
    def decision(self):
        """The final decision, if exactly one (a second distinct one is an error the reconciliation reports)."""
        return next(iter(self.decisions.values())) if len(self.decisions) == 1 else None

    @property
    def outcome(self) -> str | None:
        return FINAL[type(self.decision).__name__] if self.decision is not None else None

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(getattr(self.decision, "reasons", ()) or ())

    def reached(self) -> int:
        """Index in STAGES of the furthest stage this case reached."""
        if self.case_id is None or self.outcome is None:
            return 0  # never became a case, or has no (single) decision: nothing is known past the application
        if self.outcome == "APPROVED":
            return STAGE_KEYS.index("delivered") if self.delivered else STAGE_KEYS.index("approved")
        reasons = set(self.reasons)
        for index, (_, _, _, stops) in enumerate(STAGES):
            if reasons & stops:
                return index - 1
        return STAGE_KEYS.index("paid")  # every fact in order but not approved (e.g. withdrawn)


@dataclass
class Funnel:
    cases: dict[str, Case]  # application id -> case
    portal_received: int = 0  # POSTs the portal accepted, repeats included
    portal_distinct: int = 0  # distinct issuance ids the portal holds

    def provinces(self) -> list[str]:
        return sorted({c.province for c in self.cases.values()})

    def stage_counts(self, province: str | None = None) -> dict[str, int]:
        """Stage -> how many applications reached it (cumulative: a stage counts everyone who got past it)."""
        reached = Counter(c.reached() for c in self._of(province))
        return {key: sum(n for index, n in reached.items() if index >= i) for i, key in enumerate(STAGE_KEYS)}

    def outcomes(self, province: str | None = None) -> Counter:
        """APPROVED / REJECTED / ESCALATED / UNDECIDED counts."""
        return Counter(c.outcome or "UNDECIDED" for c in self._of(province))

    def reasons(self, outcome: str, province: str | None = None) -> Counter:
        """Reason code -> cases with that outcome listing it (a case with two reasons counts under both)."""
        return Counter(r for c in self._of(province) if c.outcome == outcome for r in c.reasons)

    def warnings(self, province: str | None = None) -> Counter:
        """Warning code -> approved cases carrying it (name differs from the CCCD record, overpaid, ...)."""
        return Counter(w for c in self._of(province) if c.outcome == "APPROVED"
                       for w in (getattr(c.decision, "warnings", ()) or ()))

    def old_codes(self, province: str | None = None) -> int:
        """Applications typed with an old province code (routed to the current province, not dead-lettered)."""
        return sum(1 for c in self._of(province) if c.old_code)

    def exchanged(self, province: str | None = None) -> int:
        """Approvals that exchanged a pre-2025 class for a 2025 one."""
        return sum(1 for c in self._of(province) if c.exchanged)

    def refunds(self, province: str | None = None) -> int:
        return sum(1 for c in self._of(province) if c.refund_ids)

    def undecided(self) -> list[str]:
        return sorted(a for a, c in self.cases.items() if c.outcome is None)

    def _of(self, province: str | None) -> Iterable[Case]:
        return [c for c in self.cases.values() if province is None or c.province == province]


def compute(applications: Iterable[Any], case_events: Iterable[Any], issuances: Iterable[Any] = (),
            refunds: Iterable[Any] = (), portal_ids: Iterable[str] = (), *, portal_received: int = 0) -> Funnel:
    """Build the funnel from decoded events (any order; duplicates, i.e. re-deliveries, are harmless)."""
    cases: dict[str, Case] = {}
    for app in applications:
        if type(app).__name__ == "ApplicationSubmitted" and app.application_id not in cases:
            routed = reference.current_code_of(app.residence_province)
            cases[app.application_id] = Case(app.application_id, routed, old_code=routed != app.residence_province)
    by_case: dict[str, Case] = {}
    finals: dict[str, list] = defaultdict(list)
    for event in case_events:
        kind = type(event).__name__
        if kind == "CaseOpened":
            case = cases.setdefault(event.application_id, Case(event.application_id, event.province))
            case.case_id = event.case_id
            by_case[event.case_id] = case
        elif kind in FINAL:
            finals[event.case_id].append(event)
    for case_id, events in finals.items():
        if case_id in by_case:
            by_case[case_id].decisions.update((e.event_id, e) for e in events)
    delivered = set(portal_ids)
    for issuance in issuances:
        if issuance.case_id in by_case:
            case = by_case[issuance.case_id]
            case.issuance_ids.add(issuance.issuance_id)
            case.delivered = case.delivered or issuance.issuance_id in delivered
    for refund in refunds:
        if refund.case_id in by_case:
            by_case[refund.case_id].refund_ids.add(refund.refund_id)
    return Funnel(cases, portal_received=portal_received, portal_distinct=len(delivered))


# --- reconciliation with what the simulator planned -------------------------------------------------------------
def expected_final(outcome: str, reasons: Iterable[str]) -> tuple[str, frozenset[str]]:
    """What a planned outcome becomes once the clock passed the deadline: a case still AWAITING a fact is
    escalated with that fact's reason plus DEADLINE_EXCEEDED."""
    if outcome == "AWAITING":
        return "ESCALATED", frozenset(reasons) | {"DEADLINE_EXCEEDED"}
    return outcome, frozenset(reasons)


def reconcile(funnel: Funnel, expected: Iterable[Any]) -> list[str]:
    """Differences between the topics and the plan, one line each, by application id (never a cccd or name).

    `expected` items need `application_id`, `outcome`, `reasons`, `warnings`, `refund_expected` (the simulator's
    ExpectedOutcome, or anything shaped like it).
    """
    problems: list[str] = []
    planned = {e.application_id: e for e in expected}
    for app_id in sorted(set(funnel.cases) - set(planned)):
        problems.append(f"{app_id}: on the bus but not in the plan")
    for app_id, plan in sorted(planned.items()):
        case = funnel.cases.get(app_id)
        if case is None or case.case_id is None:
            problems.append(f"{app_id}: no case was opened")
            continue
        if len(case.decisions) > 1:
            problems.append(f"{app_id}: {len(case.decisions)} different final decisions")
            continue
        want_outcome, want_reasons = expected_final(plan.outcome, plan.reasons)
        if case.outcome is None:
            problems.append(f"{app_id}: no final decision (expected {want_outcome})")
            continue
        if case.outcome != want_outcome or set(case.reasons) != want_reasons:
            problems.append(f"{app_id}: {case.outcome} {sorted(case.reasons)}, expected {want_outcome} "
                            f"{sorted(want_reasons)}")
        if case.outcome == "APPROVED" and set(case.decision.warnings or ()) != set(plan.warnings):
            problems.append(f"{app_id}: warnings {sorted(case.decision.warnings or ())}, expected "
                            f"{sorted(plan.warnings)}")
        if bool(case.refund_ids) != bool(plan.refund_expected) or len(case.refund_ids) > 1:
            problems.append(f"{app_id}: {len(case.refund_ids)} refund(s), expected "
                            f"{1 if plan.refund_expected else 0}")
        approved = case.outcome == "APPROVED"
        if len(case.issuance_ids) != (1 if approved else 0):
            problems.append(f"{app_id}: {len(case.issuance_ids)} issuance request(s) for a {case.outcome} case")
        if approved and not case.delivered:
            problems.append(f"{app_id}: approved but not delivered to the portal")
    return problems
