"""The decision, table-driven: one row per reason code, one row per licence class, and the timeouts."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timedelta
from importlib import resources

import pytest

from topology.decision import (Application, CaseFacts, Decision, CertificateOnFile, IdentityResult, LicenceRecord,
                               Outcome, Payment, decide)
from topology.rules import Reason, RuleSetError, load_rule_set, parse_rule_set

RULES = load_rule_set()
SUBMITTED = datetime(2025, 3, 3, 9, 0)  # Monday
SOON = SUBMITTED + timedelta(hours=1)


def cert(classes=("B",), fit=True, signed=datetime(2025, 2, 1, 8), number="00001/GKSKLX/79001/25", group=2,
         revoked=False) -> CertificateOnFile:
    return CertificateOnFile(number, signed, {c: fit for c in classes}, group, revoked)


def facts(classes=("B",), **overrides) -> CaseFacts:
    """A case that is approved as it stands; each test row changes one thing."""
    base = CaseFacts(
        application=Application("app-1", "001090000001", "01", tuple(classes), SUBMITTED, "010123456789"),
        identity=IdentityResult(match=True, phone_tied=True),
        licence=LicenceRecord(found=True, classes={c: date(2026, 6, 1) for c in classes}),
        certificates=(cert(classes),),
        payments=(Payment("PAID", 135_000),),
    )
    return replace(base, **overrides)


def test_the_happy_case_is_approved():
    d = decide(facts(), RULES, SOON)
    assert d == Decision(Outcome.APPROVED, rule_set_version="2025.1", fee_owed_vnd=135_000, fee_paid_vnd=135_000,
                         new_classes=("B",))


# --- one row per reason code ------------------------------------------------------------------------------------
_EXPIRED_LONG_AGO = LicenceRecord(found=True, classes={"B": date(2023, 1, 1)})
ROWS = [
    # reason, facts, expected outcome
    ("APPLICATION_WITHDRAWN", facts(withdrawn=True), Outcome.REJECTED),
    ("IDENTITY_MISMATCH", facts(identity=IdentityResult(False, True, frozenset({"cccd"}))), Outcome.REJECTED),
    ("IDENTITY_MISMATCH", facts(identity=IdentityResult(False, True)), Outcome.REJECTED),
    ("PHONE_NOT_TIED", facts(identity=IdentityResult(True, False)), Outcome.REJECTED),
    ("LICENCE_REVOKED", facts(licence=LicenceRecord(True, {"B": date(2026, 6, 1)}, revoked=True)), Outcome.REJECTED),
    ("UNRESOLVED_VIOLATION", facts(licence=LicenceRecord(True, {"B": date(2026, 6, 1)}, unresolved_violations=2)),
     Outcome.REJECTED),
    ("ZERO_POINTS", facts(licence=LicenceRecord(True, {"B": date(2026, 6, 1)}, point_balance=0)), Outcome.REJECTED),
    ("UNFIT", facts(certificates=(cert(fit=False),)), Outcome.REJECTED),
    ("LICENCE_NOT_FOUND", facts(licence=LicenceRecord(found=False)), Outcome.ESCALATED),
    ("CLASS_NOT_HELD", facts(licence=LicenceRecord(True, {"A1": None})), Outcome.ESCALATED),
    ("LICENCE_EXPIRED", facts(licence=_EXPIRED_LONG_AGO), Outcome.ESCALATED),
    ("CLASS_NOT_RENEWABLE", facts(("A4",), licence=LicenceRecord(True, {"A4": date(2026, 6, 1)})), Outcome.ESCALATED),
    ("IDENTITY_MISSING", facts(identity=None), Outcome.AWAITING),
    ("LICENCE_STATUS_MISSING", facts(licence=None), Outcome.AWAITING),
    ("EXAM_MISSING", facts(certificates=()), Outcome.AWAITING),
    ("EXAM_EXPIRED", facts(certificates=(cert(signed=datetime(2024, 1, 10)),)), Outcome.AWAITING),
    ("EXAM_WRONG_CLASS", facts(certificates=(cert(classes=("A1",), group=1),)), Outcome.AWAITING),
    ("PAYMENT_INSUFFICIENT", facts(payments=(Payment("PAID", 100_000),)), Outcome.AWAITING),
    ("PAYMENT_MISSING", facts(payments=()), Outcome.AWAITING),
    ("PAYMENT_MISSING", facts(payments=(Payment("PAID", 135_000), Payment("REFUNDED", 135_000))), Outcome.AWAITING),
    ("PAYMENT_FAILED", facts(payments=(Payment("FAILED"),)), Outcome.AWAITING),
]


@pytest.mark.parametrize("reason, case, outcome", ROWS, ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)])
def test_each_reason_code(reason, case, outcome):
    d = decide(case, RULES, SOON)
    assert d.outcome is outcome
    assert d.reasons == (reason,)


def test_every_reason_code_of_the_brief_has_a_row():
    codes = {r[0] for r in ROWS} | {"NAME_OR_DOB_DIFFERS", "DEADLINE_EXCEEDED"} | {r[4][0] for r in FEES if r[4]}
    assert codes == {str(r) for r in Reason}


def test_name_or_dob_difference_is_only_a_warning():
    d = decide(facts(identity=IdentityResult(False, True, frozenset({"full_name", "date_of_birth"}))), RULES, SOON)
    assert d.outcome is Outcome.APPROVED
    assert d.warnings == ("NAME_OR_DOB_DIFFERS",)


def test_all_rejecting_reasons_are_listed_and_rejection_beats_waiting():
    case = facts(identity=IdentityResult(True, False), certificates=(), payments=(),
                 licence=LicenceRecord(True, {"B": date(2026, 6, 1)}, revoked=True, point_balance=0))
    d = decide(case, RULES, SOON)
    assert d.outcome is Outcome.REJECTED
    assert d.reasons == ("PHONE_NOT_TIED", "LICENCE_REVOKED", "ZERO_POINTS")


def test_escalation_beats_waiting():
    d = decide(facts(licence=LicenceRecord(found=False), payments=()), RULES, SOON)
    assert (d.outcome, d.reasons) == (Outcome.ESCALATED, ("LICENCE_NOT_FOUND",))


# --- fees: the quote is owed, payments add up, a quote other than the rule is a warning ----------------------------
def quoted(case: CaseFacts, fee: int | None) -> CaseFacts:
    return replace(case, application=replace(case.application, fee_quoted_vnd=fee))


PAID, FAILED, REFUNDED = (lambda vnd: Payment("PAID", vnd)), Payment("FAILED", 135_000), Payment("REFUNDED", 135_000)
FEES = [
    # payments, fee quoted on the application, outcome, reasons, warnings, owed, held
    ((PAID(135_000),), 135_000, Outcome.APPROVED, (), (), 135_000, 135_000),
    ((PAID(135_000),), None, Outcome.APPROVED, (), (), 135_000, 135_000),  # no quote: the rule is owed
    ((PAID(100_000),), 135_000, Outcome.AWAITING, ("PAYMENT_INSUFFICIENT",), (), 135_000, 100_000),
    ((PAID(100_000), PAID(35_000)), 135_000, Outcome.APPROVED, (), (), 135_000, 135_000),  # they add up
    ((PAID(1_350_000),), 135_000, Outcome.APPROVED, (), ("OVERPAID",), 135_000, 1_350_000),
    ((FAILED, PAID(135_000)), 135_000, Outcome.APPROVED, (), (), 135_000, 135_000),  # paid after a failure
    ((PAID(100_000), FAILED), 135_000, Outcome.AWAITING, ("PAYMENT_INSUFFICIENT",), (), 135_000, 100_000),
    ((PAID(135_000), REFUNDED), 135_000, Outcome.AWAITING, ("PAYMENT_MISSING",), (), 135_000, 0),
    ((FAILED, FAILED), 135_000, Outcome.AWAITING, ("PAYMENT_FAILED",), (), 135_000, 0),
    # a quote other than the rule: the citizen owes what the portal showed, finance is warned
    ((PAID(115_000),), 115_000, Outcome.APPROVED, (), ("FEE_QUOTE_DIFFERS",), 115_000, 115_000),
    ((PAID(135_000),), 150_000, Outcome.AWAITING, ("PAYMENT_INSUFFICIENT",), ("FEE_QUOTE_DIFFERS",), 150_000,
     135_000),
    ((), 0, Outcome.APPROVED, (), ("FEE_QUOTE_DIFFERS",), 0, 0),
]


@pytest.mark.parametrize("payments, quote, outcome, reasons, warnings, owed, held", FEES)
def test_fees(payments, quote, outcome, reasons, warnings, owed, held):
    d = decide(quoted(facts(payments=payments), quote), RULES, SOON)
    assert (d.outcome, d.reasons, d.warnings, d.fee_owed_vnd, d.fee_paid_vnd) == (
        outcome, reasons, warnings, owed, held)


def test_fees_are_dated_data():
    assert (RULES.fee_vnd(date(2024, 12, 31)), RULES.fee_vnd(date(2025, 1, 1))) == (None, 135_000)
    doc = _doc()
    doc["fees"].append({"service": "renewal", "channel": "online", "amount_vnd": 150_000,
                        "effective_from": "2025-06-01"})
    rules = parse_rule_set(doc, RULES.calendar)
    june = replace(facts(), application=replace(facts().application, submitted_at=datetime(2025, 6, 2, 9)))
    assert decide(facts(), rules, SOON).outcome is Outcome.APPROVED  # March: 135,000 owed and paid
    d = decide(june, rules, datetime(2025, 6, 2, 10))
    assert (d.outcome, d.reasons, d.fee_owed_vnd) == (Outcome.AWAITING, ("PAYMENT_INSUFFICIENT",), 150_000)


# --- expired licences: theory test under a year, full test from a year ------------------------------------------
@pytest.mark.parametrize("expired_on, test", [
    (date(2025, 3, 2), "THEORY"),   # expired yesterday
    (date(2024, 3, 4), "THEORY"),   # 11 months 27 days
    (date(2024, 3, 3), "FULL"),     # exactly one year
    (date(2020, 1, 1), "FULL"),
])
def test_expired_licence_goes_to_the_province_for_testing(expired_on, test):
    d = decide(facts(licence=LicenceRecord(True, {"B": expired_on})), RULES, SOON)
    assert (d.outcome, d.reasons, d.test_required) == (Outcome.ESCALATED, ("LICENCE_EXPIRED",), test)


def test_licence_expiring_on_submission_day_is_still_valid():
    d = decide(facts(licence=LicenceRecord(True, {"B": SUBMITTED.date()})), RULES, SOON)
    assert d.outcome is Outcome.APPROVED


# --- one row per licence class ----------------------------------------------------------------------------------
CLASSES = [
    # class, validity years (None: never expires), exam needed, health group
    ("A1", None, False, 1), ("A", None, False, 2), ("B1", None, False, 1),
    ("B", 10, True, 2), ("C1", 10, True, 3),
    ("C", 5, True, 3), ("D1", 5, True, 3), ("D2", 5, True, 3), ("D", 5, True, 3), ("BE", 5, True, 3),
    ("C1E", 5, True, 3), ("CE", 5, True, 3), ("D1E", 5, True, 3), ("D2E", 5, True, 3), ("DE", 5, True, 3),
]


@pytest.mark.parametrize("cls, years, exam, group", CLASSES, ids=[c[0] for c in CLASSES])
def test_class_table(cls, years, exam, group):
    entry = RULES.licence_class(cls)
    assert (entry.validity_years, entry.exam_required, entry.health_group) == (years, exam, group)
    # Without any certificate, only the classes needing an exam wait for one.
    d = decide(facts((cls,), certificates=(), licence=LicenceRecord(True, {cls: None})), RULES, SOON)
    assert d.outcome is (Outcome.AWAITING if exam else Outcome.APPROVED)
    assert d.reasons == (("EXAM_MISSING",) if exam else ())


def test_the_class_table_covers_exactly_the_2025_classes():
    assert set(RULES.classes) == {c[0] for c in CLASSES}


def test_pre_2025_class_is_treated_conservatively():
    entry = RULES.licence_class("B2")
    assert entry.exam_required and entry.health_group == 3


# --- health certificates ----------------------------------------------------------------------------------------
def test_higher_health_group_covers_a_lower_one():
    d = decide(facts(("B",), certificates=(cert(classes=("C",), group=3),)), RULES, SOON)
    assert d.outcome is Outcome.APPROVED


def test_lower_health_group_does_not_cover_a_higher_one():
    d = decide(facts(("C",), certificates=(cert(classes=("B",), group=2),)), RULES, SOON)
    assert d.reasons == ("EXAM_WRONG_CLASS",)  # a certificate came, for the wrong class: a new exam is needed


def test_unfit_for_a_lower_group_excludes_a_higher_one():
    d = decide(facts(("C",), certificates=(cert(classes=("B",), fit=False),)), RULES, SOON)
    assert d.reasons == ("UNFIT",)


def test_the_latest_valid_certificate_wins():
    old_fit = cert(signed=datetime(2025, 1, 5), number="00001/GKSKLX/79001/25")
    new_unfit = cert(fit=False, signed=datetime(2025, 2, 20), number="00002/GKSKLX/79001/25")
    assert decide(facts(certificates=(old_fit, new_unfit)), RULES, SOON).reasons == ("UNFIT",)
    assert decide(facts(certificates=(new_unfit, replace(old_fit, signed_at=datetime(2025, 2, 25)))),
                  RULES, SOON).outcome is Outcome.APPROVED


def test_revoked_certificate_does_not_count():
    assert decide(facts(certificates=(cert(revoked=True),)), RULES, SOON).reasons == ("EXAM_MISSING",)


@pytest.mark.parametrize("signed, submitted, valid", [
    (datetime(2025, 1, 2), datetime(2026, 1, 2, 9), True),    # signed 2025: valid 12 months, last day included
    (datetime(2025, 1, 2), datetime(2026, 1, 3, 9), False),
    (datetime(2024, 9, 1), datetime(2025, 3, 1, 9), True),    # signed 2024: valid 6 months
    (datetime(2024, 9, 1), datetime(2025, 3, 2, 9), False),
    (datetime(2024, 12, 31), datetime(2025, 7, 1, 9), False),  # signed the day before the change: still 6 months
])
def test_certificate_validity_depends_on_the_signing_date(signed, submitted, valid):
    case = facts(certificates=(cert(signed=signed),), licence=LicenceRecord(True, {"B": date(2030, 1, 1)}))
    case = replace(case, application=replace(case.application, submitted_at=submitted))
    d = decide(case, RULES, submitted + timedelta(hours=1))
    assert d.reasons == (() if valid else ("EXAM_EXPIRED",))


# --- timeouts: 2 working days -> notice, 5 -> escalation --------------------------------------------------------
@pytest.mark.parametrize("now, outcome, notify", [
    (datetime(2025, 3, 3, 10), Outcome.AWAITING, False),
    (datetime(2025, 3, 5, 8, 59), Outcome.AWAITING, False),   # 1 working day and 23h59
    (datetime(2025, 3, 5, 9), Outcome.AWAITING, True),        # 2 working days: CaseAwaiting notice
    (datetime(2025, 3, 10, 8, 59), Outcome.AWAITING, True),   # the weekend does not count
    (datetime(2025, 3, 10, 9), Outcome.ESCALATED, False),     # 5 working days
])
def test_timeouts(now, outcome, notify):
    d = decide(facts(payments=()), RULES, now)
    assert (d.outcome, d.notify_missing) == (outcome, notify)
    if outcome is Outcome.ESCALATED:
        assert d.reasons == ("PAYMENT_MISSING", "DEADLINE_EXCEEDED")
        assert d.next_check_at is None
    else:
        assert d.next_check_at == (datetime(2025, 3, 10, 9) if notify else datetime(2025, 3, 5, 9))


def test_tet_stretches_the_deadlines():
    case = facts(payments=())
    case = replace(case, application=replace(case.application, submitted_at=datetime(2025, 1, 24, 9)))
    assert decide(case, RULES, datetime(2025, 2, 3, 9)).notify_missing is False  # only 1 working day
    assert decide(case, RULES, datetime(2025, 2, 4, 9)).notify_missing is True
    assert decide(case, RULES, datetime(2025, 2, 7, 8)).outcome is Outcome.AWAITING
    assert decide(case, RULES, datetime(2025, 2, 7, 9)).outcome is Outcome.ESCALATED


def test_rejection_does_not_wait_for_timeouts():
    d = decide(facts(identity=IdentityResult(True, False), payments=()), RULES, datetime(2025, 3, 20))
    assert (d.outcome, d.reasons) == (Outcome.REJECTED, ("PHONE_NOT_TIED",))


# --- dated rules ------------------------------------------------------------------------------------------------
def _doc():
    return json.loads(resources.files("topology").joinpath("data/rules-2025.json").read_text(encoding="utf-8"))


def test_a_later_dated_entry_replaces_a_rule_from_its_date():
    doc = _doc()
    doc["rules"].append({"code": "PAYMENT_FAILED", "outcome": "REJECT", "effective_from": "2025-06-01"})
    rules = parse_rule_set(doc, RULES.calendar)
    before = decide(facts(payments=(Payment("FAILED"),)), rules, SOON)
    case = facts(payments=(Payment("FAILED"),))
    case = replace(case, application=replace(case.application, submitted_at=datetime(2025, 6, 2, 9)))
    after = decide(case, rules, datetime(2025, 6, 2, 10))
    assert (before.outcome, after.outcome) == (Outcome.AWAITING, Outcome.REJECTED)


def test_a_rule_can_be_switched_off():
    doc = _doc()
    doc["rules"].append({"code": "PHONE_NOT_TIED", "outcome": "OFF", "effective_from": "2025-01-01"})
    rules = parse_rule_set(doc, RULES.calendar)
    assert decide(facts(identity=IdentityResult(True, False)), rules, SOON).outcome is Outcome.APPROVED


def test_malformed_rules_fail_loudly():
    doc = _doc()
    doc["rules"].append({"code": "NO_SUCH_CODE", "outcome": "REJECT", "effective_from": "2025-01-01"})
    with pytest.raises(RuleSetError, match="NO_SUCH_CODE"):
        parse_rule_set(doc, RULES.calendar)


def test_decide_is_deterministic():
    case = facts(payments=(), certificates=())
    assert decide(case, RULES, SOON) == decide(case, RULES, SOON)
