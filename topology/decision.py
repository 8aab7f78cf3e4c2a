"""The decision on a renewal case: a pure function of its facts, the rule set and the time.

Why pure: the case processor may replay a year of events, re-deliver after a crash or re-evaluate on a timer; the
same facts, rules and `now` must give the same decision, and tests can state every rule as a table row.
No I/O, no clock, no globals: `now` is passed in, the calendar travels inside the RuleSet.

Precedence, most final first:
1. any REJECT rule fires       -> REJECTED (all rejecting reasons). Early: a revoked licence is not kept waiting
                                  for its health certificate, and a paid fee is refunded sooner.
2. any ESCALATE rule fires     -> ESCALATED: the province takes the case over. LICENCE_NOT_FOUND escalates rather
                                  than rejects (old paper licences are often simply not digitised: the domain says
                                  the case waits for verification); LICENCE_EXPIRED escalates for a theory
                                  (expired < 12 months) or full test.
3. any AWAIT rule fires        -> AWAITING the missing facts; after 2 working days since submission the
                                  CaseAwaiting notice is due (`notify_missing`); after 5 working days the case is
                                  ESCALATED with DEADLINE_EXCEEDED.
4. otherwise                   -> APPROVED.
WARN rules (name/date of birth differ, OVERPAID, FEE_QUOTE_DIFFERS) only add warnings.
Fees: the case owes the fee quoted on its application (`fee_owed`); the payments it holds add up (PAID minus
REFUNDED). Less than owed waits (PAYMENT_INSUFFICIENT); more is OVERPAID and the processor refunds the excess.
Classes: each applied class is first resolved to the 2025 class it renews into (`topology.classes`: pre-2025 classes
are exchanged by Law 36/2024 Art. 89); the health certificate rule follows that new class, the expiry is the held
class's, and an APPROVED decision names the new classes and their restrictions.
Rules are those in force on the (Vietnamese) date the application was submitted; certificate and licence validity
are judged at submission too, so a citizen does not lose because the system was slow.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Mapping

from topology.calendar import VIETNAM_TZ
from topology.classes import HeldClass, Renewal, sex_from_cccd
from topology.rules import Effect, Reason, RuleSet


# --- facts ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Application:
    application_id: str
    cccd: str
    province: str  # current (post-2025) province code; routes the case
    classes: tuple[str, ...]  # classes to renew, as the citizen wrote them (see topology.classes for their era)
    submitted_at: datetime
    licence_number: str = ""
    fee_quoted_vnd: int | None = None  # the fee the portal showed the citizen; None: the fee rule applies
    date_of_birth: date | None = None  # for the old B1's age-based expiry


@dataclass(frozen=True)
class IdentityResult:
    """The population database's answer (mirrors vn.gplx.identity.IdentityCheckResult)."""

    match: bool
    phone_tied: bool
    mismatched_fields: frozenset[str] = frozenset()  # e.g. {"full_name"}; empty when match


@dataclass(frozen=True)
class LicenceRecord:
    """The licence as the police database holds it, from its answer (the event schemas.models.LicenceStatus; named
    apart from it so that neither is mistaken for the other)."""

    found: bool
    classes: Mapping[str, date | None] = field(default_factory=dict)  # class -> expires_on (None: never)
    issued_on: Mapping[str, date] = field(default_factory=dict)  # class -> issue date (tells old from new)
    revoked: bool = False
    unresolved_violations: int = 0
    point_balance: int = 12


@dataclass(frozen=True)
class CertificateOnFile:
    """Latest version of one health certificate on file for the citizen (an EDIT replaces the ADD; a REVOKE sets
    `revoked`), built from the schemas.models.HealthCertificate events."""

    number: str
    signed_at: datetime
    conclusions: Mapping[str, bool]  # class -> fit
    health_group: int = 0
    revoked: bool = False


@dataclass(frozen=True)
class Payment:
    """One gateway transaction of the case (a case keeps every one: several payments add up)."""

    status: str  # "PAID" | "FAILED" | "REFUNDED" | "UNKNOWN"
    amount_vnd: int = 0


@dataclass(frozen=True)
class CaseFacts:
    """Everything known about one case. The processor maps events onto this; None means "not arrived yet"."""

    application: Application
    identity: IdentityResult | None = None
    licence: LicenceRecord | None = None
    certificates: tuple[CertificateOnFile, ...] = ()
    payments: tuple[Payment, ...] = ()
    withdrawn: bool = False


# --- decision ---------------------------------------------------------------------------------------------------
class Outcome(StrEnum):
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    AWAITING = "AWAITING"
    ESCALATED = "ESCALATED"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reasons: tuple[str, ...] = ()  # reason codes, in rule order
    warnings: tuple[str, ...] = ()
    notify_missing: bool = False  # AWAITING for >= 2 working days: the CaseAwaiting notice is due
    next_check_at: datetime | None = None  # when a timeout changes an AWAITING decision if nothing arrives
    test_required: str | None = None  # "THEORY" or "FULL" when LICENCE_EXPIRED
    rule_set_version: str = ""
    fee_owed_vnd: int = 0  # what the case owes (see `fee_owed`)
    fee_paid_vnd: int = 0  # what the gateway holds for it: PAID minus REFUNDED
    new_classes: tuple[str, ...] = ()  # APPROVED: the 2025 classes to issue (pre-2025 classes exchanged)
    restrictions: tuple[str, ...] = ()  # APPROVED: restriction codes of the exchange, printed with them


def decide(facts: CaseFacts, rules: RuleSet, now: datetime) -> Decision:
    """Decide a case. Pure: same arguments, same Decision."""
    app = facts.application
    submitted_on = _local_date(app.submitted_at)
    in_force = rules.in_force(submitted_on)
    plan = renewals(facts, rules)
    findings, test_required = _findings(facts, plan, rules, submitted_on)

    by_effect: dict[Effect, tuple[str, ...]] = {}  # one pass over the rules: decide runs on every input
    for code, rule in in_force.items():
        if code in findings:
            by_effect[rule.effect] = by_effect.get(rule.effect, ()) + (str(code),)

    def fired(effect: Effect) -> tuple[str, ...]:
        return by_effect.get(effect, ())

    owed, _ = fee_owed(app, rules, submitted_on)
    common = dict(warnings=fired(Effect.WARN), rule_set_version=rules.version, fee_owed_vnd=owed,
                  fee_paid_vnd=fee_paid(facts.payments))
    if rejected := fired(Effect.REJECT):
        return Decision(Outcome.REJECTED, rejected, **common)
    if escalated := fired(Effect.ESCALATE):
        test = test_required if Reason.LICENCE_EXPIRED in escalated else None
        return Decision(Outcome.ESCALATED, escalated, test_required=test, **common)
    if awaited := fired(Effect.AWAIT):
        elapsed = rules.calendar.working_days_between(app.submitted_at, now)
        if elapsed >= rules.escalate_after_working_days:
            return Decision(Outcome.ESCALATED, awaited + (str(Reason.DEADLINE_EXCEEDED),), **common)
        notify = elapsed >= rules.notify_after_working_days
        next_after = rules.escalate_after_working_days if notify else rules.notify_after_working_days
        return Decision(Outcome.AWAITING, awaited, notify_missing=notify,
                        next_check_at=rules.calendar.add_working_days(app.submitted_at, next_after), **common)
    return Decision(Outcome.APPROVED, **common, new_classes=_unique(r.new_class for r in plan if r.new_class),
                    restrictions=_unique(x for r in plan for x in r.restrictions))


def renewals(facts: CaseFacts, rules: RuleSet) -> tuple[Renewal, ...]:
    """What each applied class renews into (topology.classes); face value until the licence record is in."""
    app, licence = facts.application, facts.licence
    held = None
    if licence is not None and licence.found:
        held = {c: HeldClass(c, licence.issued_on.get(c), exp) for c, exp in licence.classes.items()}
    return rules.exchange.resolve(app.classes, held, app.date_of_birth, sex_from_cccd(app.cccd))


def exam_classes(plan: tuple[Renewal, ...], rules: RuleSet) -> tuple[str, ...]:
    """The 2025 classes of a renewal that need a health certificate (the health rule follows the NEW class)."""
    return _unique(r.new_class for r in plan if r.new_class and rules.licence_class(r.new_class).exam_required)


def _unique(items) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


# --- the checks: which reason codes the facts show --------------------------------------------------------------
def _findings(facts: CaseFacts, plan: tuple[Renewal, ...], rules: RuleSet,
              submitted_on: date) -> tuple[set[Reason], str | None]:
    found: set[Reason] = set()
    test_required = None
    if facts.withdrawn:
        found.add(Reason.APPLICATION_WITHDRAWN)

    identity = facts.identity
    if identity is None:
        found.add(Reason.IDENTITY_MISSING)
    else:
        if not identity.match:
            fields = identity.mismatched_fields
            personal_only = bool(fields) and fields <= rules.identity_warn_only_fields
            found.add(Reason.NAME_OR_DOB_DIFFERS if personal_only else Reason.IDENTITY_MISMATCH)
        if not identity.phone_tied:
            found.add(Reason.PHONE_NOT_TIED)

    licence = facts.licence
    if licence is None:
        found.add(Reason.LICENCE_STATUS_MISSING)
    elif not licence.found:
        found.add(Reason.LICENCE_NOT_FOUND)
    else:
        if licence.revoked:
            found.add(Reason.LICENCE_REVOKED)
        if licence.unresolved_violations > 0:
            found.add(Reason.UNRESOLVED_VIOLATION)
        if licence.point_balance <= 0:
            found.add(Reason.ZERO_POINTS)
        for renewal in plan:
            if renewal.finding:  # CLASS_NOT_HELD, CLASS_NOT_RENEWABLE
                found.add(Reason(renewal.finding))
            expires_on = renewal.expires_on  # of the held class: printed, or by the old law (old classes)
            if expires_on is not None and expires_on < submitted_on:
                found.add(Reason.LICENCE_EXPIRED)
                months = rules.theory_test_if_expired_less_than_months
                test = "THEORY" if submitted_on < _add_months(expires_on, months) else "FULL"
                test_required = "FULL" if "FULL" in (test, test_required) else test

    for cls in exam_classes(plan, rules):
        exam = exam_finding(cls, facts.certificates, rules, facts.application.submitted_at)
        if exam is not None:
            found.add(exam)

    owed, quote_differs = fee_owed(facts.application, rules, submitted_on)
    if quote_differs:
        found.add(Reason.FEE_QUOTE_DIFFERS)
    held = fee_paid(facts.payments)
    if held > owed:
        found.add(Reason.OVERPAID)  # the case goes on; the processor refunds the excess
    elif 0 < held < owed:
        found.add(Reason.PAYMENT_INSUFFICIENT)  # an amount short of the fee is not a payment of the fee
    elif held < owed:  # nothing held: never paid, paid and refunded, or every attempt failed
        failed_only = any(p.status == "FAILED" for p in facts.payments) and \
            not any(p.status == "PAID" for p in facts.payments)
        found.add(Reason.PAYMENT_FAILED if failed_only else Reason.PAYMENT_MISSING)
    return found, test_required


def fee_owed(app: Application, rules: RuleSet, submitted_on: date) -> tuple[int, bool]:
    """What the case owes, and whether the portal's quote differs from the fee rule in force at submission.

    Owed is the quote the citizen was shown: the portal knows the channel and any discount, and the citizen paid
    what the state's own portal asked; a quote that differs from the rule is not made the citizen's problem (no
    case waits for money it was never asked for), it is FEE_QUOTE_DIFFERS, a warning for finance to reconcile
    (a dated rule entry can make it ESCALATE). Without a quote, the fee rule is owed."""
    fee = rules.fee_vnd(submitted_on)
    if app.fee_quoted_vnd is None:
        return fee or 0, False
    return app.fee_quoted_vnd, fee is not None and fee != app.fee_quoted_vnd


def fee_paid(payments: tuple[Payment, ...]) -> int:
    """What the gateway holds for the case: every PAID transaction minus every REFUNDED one."""
    signed = {"PAID": 1, "REFUNDED": -1}
    return max(0, sum(signed.get(p.status, 0) * p.amount_vnd for p in payments))


def exam_finding(cls: str, certificates: tuple[CertificateOnFile, ...], rules: RuleSet,
                  submitted_at: datetime) -> Reason | None:
    """None if the latest valid certificate covering `cls` says fit; otherwise UNFIT, EXAM_EXPIRED, EXAM_WRONG_CLASS
    (certificates arrived, none covers the class: the citizen needs an exam for the right class) or EXAM_MISSING
    (none, or only revoked ones: a revoked certificate does not exist for the law).

    A certificate signed in the future never gets here: the processor dead-letters it on arrival (SIGNED_IN_FUTURE,
    judged against the record's own timestamp). Not judged again here against the case's clock: that clock is the
    latest fact's time, and a genuine certificate signed after the application may be read before the
    application is (topics are read in parallel); ignoring it then would make the decision depend on order."""
    current = [c for c in certificates if not c.revoked]
    covering = [(c, v) for c in current if (v := _verdict(c, cls, rules)) is not None]
    if not covering:
        return Reason.EXAM_WRONG_CLASS if current else Reason.EXAM_MISSING
    valid = [(c, v) for c, v in covering if _valid_at(c, rules, submitted_at)]
    if not valid:
        return Reason.EXAM_EXPIRED
    _, fit = max(valid, key=lambda cv: (cv[0].signed_at, cv[0].number))  # the latest conclusion wins
    return None if fit else Reason.UNFIT


def _verdict(cert: CertificateOnFile, cls: str, rules: RuleSet) -> bool | None:
    """What a certificate says about a class: explicit conclusion first; else fit for a class of the same or a
    higher health group covers it (inferred rule), and unfit for the same or a lower group excludes it."""
    conclusions = rules.exchange.conclusions_in_2025_classes(cert.conclusions)  # "B2 fit" speaks for B and C1
    if cls in conclusions:
        return conclusions[cls]
    group = rules.licence_class(cls).health_group
    groups = [(rules.licence_class(c).health_group, fit) for c, fit in conclusions.items()]
    if any(fit and g >= group for g, fit in groups):
        return True
    if any(not fit and g <= group for g, fit in groups):
        return False
    return None


def _valid_at(cert: CertificateOnFile, rules: RuleSet, moment: datetime) -> bool:
    signed_on = _local_date(cert.signed_at)
    return _local_date(moment) <= _add_months(signed_on, rules.exam_validity_months(signed_on))


def _local_date(moment: datetime) -> date:
    """The Vietnamese calendar date of a moment (naive datetimes are already local)."""
    return moment.date() if moment.tzinfo is None else moment.astimezone(VIETNAM_TZ).date()


def _add_months(day: date, months: int) -> date:
    """Same day `months` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(d, day.day))
        except ValueError:
            continue
    raise AssertionError("unreachable")
