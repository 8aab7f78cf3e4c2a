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
WARN rules (name/date of birth differ) only add warnings.
Rules are those in force on the (Vietnamese) date the application was submitted; certificate and licence validity
are judged at submission too, so a citizen does not lose because the system was slow.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Mapping

from topology.calendar import VIETNAM_TZ
from topology.rules import Effect, Reason, RuleSet


# --- facts ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Application:
    application_id: str
    cccd: str
    province: str  # current (post-2025) province code; routes the case
    classes: tuple[str, ...]  # classes to renew
    submitted_at: datetime
    licence_number: str = ""


@dataclass(frozen=True)
class IdentityResult:
    """The population database's answer (mirrors vn.gplx.identity.IdentityCheckResult)."""

    match: bool
    phone_tied: bool
    mismatched_fields: frozenset[str] = frozenset()  # e.g. {"full_name"}; empty when match


@dataclass(frozen=True)
class LicenceStatus:
    """The police database's answer (mirrors vn.gplx.police.LicenceStatus)."""

    found: bool
    classes: Mapping[str, date | None] = field(default_factory=dict)  # class -> expires_on (None: never)
    revoked: bool = False
    unresolved_violations: int = 0
    point_balance: int = 12


@dataclass(frozen=True)
class HealthCertificate:
    """Latest version of one certificate (an EDIT replaces the ADD; a REVOKE sets `revoked`)."""

    number: str
    signed_at: datetime
    conclusions: Mapping[str, bool]  # class -> fit
    health_group: int = 0
    revoked: bool = False


@dataclass(frozen=True)
class Payment:
    status: str  # "PAID" | "FAILED" | "REFUNDED" | "UNKNOWN" (latest transaction)
    amount_vnd: int = 0


@dataclass(frozen=True)
class CaseFacts:
    """Everything known about one case. The processor maps events onto this; None means "not arrived yet"."""

    application: Application
    identity: IdentityResult | None = None
    licence: LicenceStatus | None = None
    certificates: tuple[HealthCertificate, ...] = ()
    payment: Payment | None = None
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


def decide(facts: CaseFacts, rules: RuleSet, now: datetime) -> Decision:
    """Decide a case. Pure: same arguments, same Decision."""
    app = facts.application
    submitted_on = _local_date(app.submitted_at)
    in_force = rules.in_force(submitted_on)
    findings, test_required = _findings(facts, rules, submitted_on, now)

    def fired(effect: Effect) -> tuple[str, ...]:
        return tuple(str(code) for code, rule in in_force.items() if rule.effect is effect and code in findings)

    common = dict(warnings=fired(Effect.WARN), rule_set_version=rules.version)
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
    return Decision(Outcome.APPROVED, **common)


# --- the checks: which reason codes the facts show --------------------------------------------------------------
def _findings(facts: CaseFacts, rules: RuleSet, submitted_on: date,
              now: datetime | None = None) -> tuple[set[Reason], str | None]:
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
        for cls in facts.application.classes:
            if cls not in licence.classes:
                found.add(Reason.CLASS_NOT_HELD)
                continue
            expires_on = licence.classes[cls]
            if expires_on is not None and expires_on < submitted_on:
                found.add(Reason.LICENCE_EXPIRED)
                months = rules.theory_test_if_expired_less_than_months
                test = "THEORY" if submitted_on < _add_months(expires_on, months) else "FULL"
                test_required = "FULL" if "FULL" in (test, test_required) else test

    for cls in facts.application.classes:
        if rules.licence_class(cls).exam_required:
            exam = exam_finding(cls, facts.certificates, rules, facts.application.submitted_at, now)
            if exam is not None:
                found.add(exam)

    payment = facts.payment
    if payment is None or payment.status not in ("PAID", "FAILED"):
        found.add(Reason.PAYMENT_MISSING)  # REFUNDED or UNKNOWN: no fee currently held for the case
    elif payment.status == "FAILED":
        found.add(Reason.PAYMENT_FAILED)
    return found, test_required


def exam_finding(cls: str, certificates: tuple[HealthCertificate, ...], rules: RuleSet,
                  submitted_at: datetime, now: datetime | None = None) -> Reason | None:
    """None if the latest valid certificate covering `cls` says fit; otherwise UNFIT, EXAM_EXPIRED or EXAM_MISSING.

    A certificate signed after `now` (the moment judged, beyond the allowed clock skew) is ignored: it cannot be
    genuine, and as the latest it would override real conclusions. The processor already dead-letters such a
    certificate on arrival (SIGNED_IN_FUTURE); this is the second guard, for any other caller."""
    covering = [(c, v) for c in certificates if not c.revoked and not _signed_after(c, now, rules)
                if (v := _verdict(c, cls, rules)) is not None]
    if not covering:
        return Reason.EXAM_MISSING
    valid = [(c, v) for c, v in covering if _valid_at(c, rules, submitted_at)]
    if not valid:
        return Reason.EXAM_EXPIRED
    _, fit = max(valid, key=lambda cv: (cv[0].signed_at, cv[0].number))  # the latest conclusion wins
    return None if fit else Reason.UNFIT


def _signed_after(cert: HealthCertificate, moment: datetime | None, rules: RuleSet) -> bool:
    return moment is not None and cert.signed_at > moment + rules.certificate_clock_skew


def _verdict(cert: HealthCertificate, cls: str, rules: RuleSet) -> bool | None:
    """What a certificate says about a class: explicit conclusion first; else fit for a class of the same or a
    higher health group covers it (inferred rule), and unfit for the same or a lower group excludes it."""
    if cls in cert.conclusions:
        return cert.conclusions[cls]
    group = rules.licence_class(cls).health_group
    groups = [(rules.licence_class(c).health_group, fit) for c, fit in cert.conclusions.items()]
    if any(fit and g >= group for g, fit in groups):
        return True
    if any(not fit and g <= group for g, fit in groups):
        return False
    return None


def _valid_at(cert: HealthCertificate, rules: RuleSet, moment: datetime) -> bool:
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
