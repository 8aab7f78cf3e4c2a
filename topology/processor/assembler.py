"""The pure core of the case processor: one input at a time, per citizen, no I/O.

`handle(state, event, topic, offset, rules)` takes the citizen's state (see `citizen`), one input (a decoded event,
a ClockTick included) and where it came from, and returns the new state and the outputs to send. The faust agent is only
plumbing around this function, so every rule of assembly is testable without Kafka.

Guarantees this function gives (the agent relies on them):
- order independence: a case is decided only once all its facts are in (identity, licence status, payment, and a
  health certificate where the class needs one) or its deadline has passed, so the decision does not depend on the
  order the facts arrived in;
- idempotence: a duplicate input (same application, transaction, certificate version, answer) changes nothing;
- each output kind happens at most once per case (approval, refund, ...), with an id derived from the case;
- replay after a crash: an input the state has already applied (offset <= the last applied offset of its topic)
  changes nothing, but re-emits the outputs that input produced, identically, in case they were lost in the crash.

Time: the case's clock is the latest `occurred_at` of its inputs (a ClockTick's is the time it declares), never the
wall clock, so a replay decides exactly as the first run did and tests can move time with a tick.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from schemas import models
from schemas.errors import SignedInFuture
from schemas.reference import current_code_of
from topology.decision import CaseFacts, Outcome, decide, exam_classes, exam_finding, renewals
from topology.processor import citizen
from topology.processor.citizen import (ApplicationRecord, Case, Certificate, Citizen, EarlyAnswers, Fee,
                                        IdentityAnswer, IdentityRecordData, LicenceAnswer, PaymentRecord, Refund)
from topology.processor.outputs import Output, build, case_id_for
from topology.rules import Reason, RuleSet

_VERSION_RANK = {"ADD": 1, "EDIT": 2}


def tick(cccd: str, now: datetime) -> models.ClockTick:
    """The clock: "it is now `now` for this citizen" (sent by the processor's timer, or by a test)."""
    from topology.processor.outputs import SOURCE, output_id

    return models.ClockTick(event_id=output_id(cccd, f"tick/{now.isoformat()}"), occurred_at=now, source=SOURCE,
                            cccd=cccd)


def refuse_signed_in_future(item: models.Event, arrival: datetime, rules: RuleSet) -> None:
    """Raise SignedInFuture for a health certificate signed later than its arrival plus the allowed clock skew.

    `arrival` must be the same on a replay: the processor passes the Kafka record's timestamp, which is stored in
    the log with the record. Not the certificate's `occurred_at`: the clinic writes that too (the clinic adapter
    defaults it to `signed_at`), so a wrong clock or a forged record would be judged by its own date. Not the wall
    clock: a replay a year later would judge differently."""
    if isinstance(item, models.HealthCertificate) and item.signed_at > arrival + rules.certificate_clock_skew:
        raise SignedInFuture(
            f"certificate signed at {item.signed_at.isoformat()}, more than {rules.certificate_clock_skew} after it"
            f" reached the bus ({arrival.isoformat()}): a certificate signed in the future is invalid",
            schema=item.avro_name)


@dataclass
class Step:
    state: Citizen
    outputs: list[Output] = field(default_factory=list)
    note: str = ""  # what the input did, for logs and counters: opened, fact, decided, duplicate, replay, ...


def handle(state: Citizen | None, item: models.Event, topic: str, offset: int, rules: RuleSet) -> Step:
    state = state or Citizen()
    position = f"{topic}:{offset}"
    if state.applied.get(topic, -1) >= offset:
        return Step(state, _replayed(state, position), "replay")
    state.applied[topic] = offset
    now = item.occurred_at
    step = Step(state)
    handler = _HANDLERS.get(type(item).__name__)
    step.note = handler(state, item, step) if handler else "ignored"
    case = state.case
    if case is not None and not case.final:
        case.clock = max(case.clock or now, now)
        _evaluate(state, case.clock, position, step, rules)
    elif case is not None and step.note == "fact":
        _refund(case, now, position, step)  # money taken for a decided case goes back (a late payment)
    citizen.prune_certificates(state, now)
    return step


# --- one handler per input type: record the fact, say what happened -------------------------------------------
def _application(state: Citizen, event: models.ApplicationSubmitted, step: Step) -> str:
    case = state.case
    if event.application_id in state.closed or (case and case.application.application_id == event.application_id):
        return "duplicate"
    if case and not case.final:
        # A new application supersedes the open one (the portal allows one open renewal per citizen).
        case.withdrawn = True
        step.note = "superseded"
    if case:
        state.closed[case.application.application_id] = case.status
    # Routed by the current province; an old code the citizen typed is kept as they typed it (see CaseOpened).
    province = current_code_of(event.residence_province)
    case = state.case = Case(case_id_for(event.application_id), ApplicationRecord(
        application_id=event.application_id, cccd=event.cccd, province=province,
        residence_province=event.residence_province,
        classes=list(event.classes), submitted_at=event.occurred_at,
        licence_number=event.licence_number, full_name=event.full_name,
        date_of_birth=event.date_of_birth, phone=event.phone,
        delivery_method=event.delivery_method, postal_address=event.postal_address,
        fee_quoted_vnd=event.fee_quoted_vnd,
    ))
    case.payments = state.early_payments.pop(event.application_id, {})
    # Answers that overtook their application (possible when topics are replayed: no order across topics)
    early = state.early_answers.pop(case.case_id, None)
    if early is not None:
        case.identity, case.licence, case.withdrawn = early.identity, early.licence, early.withdrawn
    return "opened"


def _withdrawn(state: Citizen, event: models.ApplicationWithdrawn, step: Step) -> str:
    case = state.case
    if case and case.application.application_id == event.application_id:
        if case.final or case.withdrawn:
            return "duplicate"
        case.withdrawn = True
        return "fact"
    if event.application_id in state.closed:
        return "duplicate"
    # Withdrawn before the application reached us (topics replayed out of order): the case opens withdrawn.
    early = state.early_answers.setdefault(case_id_for(event.application_id), EarlyAnswers())
    if early.withdrawn:
        return "duplicate"
    early.withdrawn = True
    return "fact"


def _certificate(state: Citizen, event: models.HealthCertificate, step: Step) -> str:
    known = state.certificates.get(event.certificate_number)
    if event.version_kind == "REVOKE":
        if known and known.revoked:
            return "duplicate"
        # Kept as a tombstone so that an ADD arriving after its REVOKE cannot revive the certificate.
        state.certificates[event.certificate_number] = replace(known or _certificate_record(event), revoked=True)
        return "fact"
    record = _certificate_record(event)
    if known and (known.revoked or (known.rank, known.signed_at) >= (record.rank, record.signed_at)):
        return "duplicate"  # an EDIT already replaced this ADD, or this very version was seen
    state.certificates[event.certificate_number] = record
    return "fact"


def _certificate_record(event: models.HealthCertificate) -> Certificate:
    return Certificate(signed_at=event.signed_at, health_group=event.health_group,
                       conclusions={c.licence_class: c.fit for c in event.conclusions},
                       rank=_VERSION_RANK.get(event.version_kind, 0))


def _identity(state: Citizen, event: models.IdentityCheckResult, step: Step) -> str:
    # The CCCD record's own data (null from an older adapter): the new licence prints it, not what was typed.
    record = IdentityRecordData(full_name=event.record_full_name, sex=event.record_sex,
                                date_of_birth=event.record_date_of_birth)
    return _answer(state, event.case_id, "identity", IdentityAnswer(
        match=event.match, phone_tied=event.phone_tied, mismatched_fields=sorted(event.mismatched_fields),
        record=record))


def _licence(state: Citizen, event: models.LicenceStatus, step: Step) -> str:
    return _answer(state, event.case_id, "licence", LicenceAnswer(
        found=event.found, revoked=event.revoked, unresolved_violations=event.unresolved_violations,
        point_balance=event.point_balance,
        classes={c.licence_class: c.expires_on for c in event.classes},
        issued_on={c.licence_class: c.issued_on for c in event.classes},  # old or new class
    ))


def _answer(state: Citizen, case_id: str, fact: str, answer: IdentityAnswer | LicenceAnswer) -> str:
    """Record the identity or police answer on its case; the first answer counts, later ones are duplicates."""
    case = state.case
    if case is not None and case.case_id == case_id:
        if case.final or getattr(case, fact) is not None:
            return "duplicate"
        setattr(case, fact, answer)
        return "fact"
    early = state.early_answers.setdefault(case_id, EarlyAnswers())
    if getattr(early, fact) is not None:
        return "duplicate"
    setattr(early, fact, answer)
    return "fact"


def _payment(state: Citizen, event: models.PaymentTransaction, step: Step) -> str:
    """Every transaction of the case is kept (payments add up, refunds subtract); the same one twice counts once.
    A payment for a decided case is kept too, so that `_refund` gives it back."""
    payment = PaymentRecord(transaction_id=event.transaction_id, status=event.status, amount_vnd=event.amount_vnd,
                            gateway_reference=event.gateway_reference, at=event.occurred_at)
    case = state.case
    if case is None or case.application.application_id != event.application_id:
        if event.application_id in state.closed:
            return "duplicate"
        payments = state.early_payments.setdefault(event.application_id, {})  # paid before the application
    else:
        payments = case.payments
    if event.transaction_id in payments:
        return "duplicate"
    payments[event.transaction_id] = payment
    return "fact"


def _tick(state: Citizen, tick: models.ClockTick, step: Step) -> str:
    return "tick"


_HANDLERS = {
    "ApplicationSubmitted": _application,
    "ApplicationWithdrawn": _withdrawn,
    "HealthCertificate": _certificate,
    "IdentityCheckResult": _identity,
    "LicenceStatus": _licence,
    "PaymentTransaction": _payment,
    "ClockTick": _tick,
}


# --- deciding -----------------------------------------------------------------------------------------------------
def missing_facts(case: Case, facts: CaseFacts, rules: RuleSet) -> list[str]:
    """Facts the case still waits for, as reason codes (what a CaseAwaiting lists)."""
    missing = []
    if case.identity is None:
        missing.append(Reason.IDENTITY_MISSING)
    if case.licence is None:
        missing.append(Reason.LICENCE_STATUS_MISSING)
    # The health rule follows the 2025 class a class is renewed into (old A2 -> A: none; old B1 -> B: needed).
    if any(exam_finding(c, facts.certificates, rules, facts.application.submitted_at) is Reason.EXAM_MISSING
           for c in exam_classes(renewals(facts, rules), rules)):
        missing.append(Reason.EXAM_MISSING)
    if not case.payments:
        missing.append(Reason.PAYMENT_MISSING)
    return [str(m) for m in missing]


def _evaluate(state: Citizen, now: datetime, position: str, step: Step, rules: RuleSet) -> None:
    case = state.case
    app = case.application
    submitted = app.submitted_at
    if app.decision_due_at is None:
        app.notice_due_at = rules.calendar.add_working_days(submitted, rules.notify_after_working_days)
        app.decision_due_at = rules.calendar.add_working_days(submitted, rules.escalate_after_working_days)
    _emit(case, ("opened", "identity-request", "licence-request"), now, position, step)
    elapsed = rules.calendar.working_days_between(submitted, now)
    before_deadline = not case.withdrawn and elapsed < rules.escalate_after_working_days
    facts = citizen.case_facts(state)  # built once: both the missing-facts check and the decision read it
    missing = missing_facts(case, facts, rules)
    decision = decide(facts, rules, now)
    if (before_deadline and missing) or decision.outcome is Outcome.AWAITING:
        # Undecided: facts still to come, or every fact is in but one may still change (e.g. a new exam). The
        # case waits for both what has not arrived and what the facts in hand already say (a licence not found or
        # revoked, an unfit or expired exam): known blockers are shown at once, not when the last fact arrives.
        # The decision itself still waits for every fact, so its reasons do not depend on the order they came in.
        blockers = [] if decision.outcome is Outcome.APPROVED else [r for r in decision.reasons if r not in missing]
        return _await(state, missing + blockers, elapsed, now, position, step, rules)
    case.final, case.status, case.reasons = True, str(decision.outcome), list(decision.reasons)
    case.warnings = [w for w in decision.warnings if w in _REASON_CODES]
    case.rule_set_version = decision.rule_set_version
    case.new_classes, case.restrictions = list(decision.new_classes), list(decision.restrictions)
    case.note = f"test required: {decision.test_required}" if decision.test_required else None
    state.closed[app.application_id] = case.status
    step.note = "decided"
    if decision.outcome is Outcome.APPROVED:
        _emit(case, ("approved", "issuance"), now, position, step)
    elif decision.outcome is Outcome.REJECTED:
        _emit(case, ("rejected",), now, position, step)
    else:
        _emit(case, ("escalated",), now, position, step)
    # What the case keeps of the money: nothing if rejected, else at most the fee owed (an escalated case keeps
    # what it holds up to the fee, for the province to settle). Refunds the gateway made before the decision are
    # not ours to make again.
    keep = 0 if decision.outcome is Outcome.REJECTED else min(decision.fee_owed_vnd, decision.fee_paid_vnd)
    refunded_before = sum(p.amount_vnd for p in case.payments.values() if p.status == "REFUNDED")
    case.fee = Fee(owed=decision.fee_owed_vnd, keep=keep, refunded_before=refunded_before)
    _refund(case, now, position, step)


_TIME_UNKNOWN = datetime.min.replace(tzinfo=timezone.utc)  # a payment kept before payment times were: earliest


def _refund(case: Case, now: datetime, position: str, step: Step) -> None:
    """Give back what a decided case does not keep: at the decision (a rejection: everything; otherwise the excess
    over the fee) and for any payment that arrives after it. One RefundRequested per gateway transaction, since
    the gateway refunds a transaction at most once: a transaction refunded already is never asked again, the
    latest transactions are refunded first (the earliest are kept), and the id comes from the transaction
    (output kind "refund/<transaction id>"), so the same money is never asked back twice."""
    fee = case.fee
    paid = {tx: p for tx, p in case.payments.items() if p.status == "PAID"}
    asked = sum(r.amount_vnd for r in case.refunds.values())
    due = sum(p.amount_vnd for p in paid.values()) - fee.refunded_before - fee.keep - asked
    covered = case.status != "REJECTED" and fee.keep >= fee.owed  # the fee is held: the rest is excess
    reasons = [str(Reason.OVERPAID)] if covered else list(case.reasons)
    refunded = {r.transaction_id for r in case.refunds.values()}  # includes an old-style "refund" kind
    for tx, p in sorted(paid.items(), key=lambda item: (item[1].at or _TIME_UNKNOWN, item[0]), reverse=True):
        if due <= 0:
            break
        if tx in refunded:
            continue
        amount = min(due, p.amount_vnd)
        case.refunds[f"refund/{tx}"] = Refund(transaction_id=tx, gateway_reference=p.gateway_reference,
                                              amount_vnd=amount, reasons=reasons)
        due -= amount
        _emit(case, (f"refund/{tx}",), now, position, step)


# What a case may wait for without anything being wrong yet: answers and documents still on their way. Told by the
# 2-working-day notice only; anything else the citizen has to act on (a new exam, the rest of the fee) is told
# at once.
_ON_THE_WAY = frozenset({Reason.IDENTITY_MISSING, Reason.LICENCE_STATUS_MISSING, Reason.EXAM_MISSING,
                         Reason.PAYMENT_MISSING})


def _await(state: Citizen, waiting: list[str], elapsed: int, now: datetime, position: str, step: Step,
           rules: RuleSet) -> None:
    """Not decidable yet: remember what the case waits for. As soon as something blocks it (not only facts on their
    way), say so: one CaseAwaiting per distinct set of reasons ("awaiting/<sorted reasons>"). After 2 working days
    the notice, once, whatever it waits for."""
    case = state.case
    case.missing = waiting
    # EXAM_MISSING although a certificate arrived (revoked) or PAYMENT_MISSING although a payment did (refunded):
    # a known fact, not one on its way.
    known = {Reason.EXAM_MISSING: bool(state.certificates), Reason.PAYMENT_MISSING: bool(case.payments)}
    if any(r not in _ON_THE_WAY or known.get(r) for r in waiting):
        # The status stays OPEN: AWAITING means the notice was sent (the timer then waits for the decision due).
        _emit(case, ("awaiting/" + ",".join(sorted(waiting)),), now, position, step)
    if elapsed >= rules.notify_after_working_days:
        case.status = "AWAITING"
        if "awaiting" not in case.emitted:
            case.notified = waiting  # what the notice said, for an identical re-send on a replay
        _emit(case, ("awaiting",), now, position, step)


_REASON_CODES = {symbol for symbol in models.ReasonCode.__members__}


def _emit(case: Case, kinds: tuple[str, ...], now: datetime, position: str, step: Step) -> None:
    for kind in kinds:
        if kind not in case.emitted:
            case.emitted[kind] = (position, now)
            step.outputs.append(build(kind, case, now))


def _replayed(state: Citizen, position: str) -> list[Output]:
    """Outputs an input already applied had produced: sent again (same ids) in case the crash lost them."""
    case = state.case
    if case is None:
        return []
    return [build(kind, case, at) for kind, (pos, at) in case.emitted.items() if pos == position]
