"""Old (pre-2025) and new licence classes: the exchange table row by row, the era, old validity, and decisions."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timedelta
from importlib import resources

import pytest

from tests.case_scenarios import Script
from topology.classes import HeldClass, parse_class_exchange, sex_from_cccd
from topology.decision import (Application, CaseFacts, CertificateOnFile, IdentityResult, LicenceRecord, Outcome,
                               Payment, decide)
from topology.processor import citizen
from topology.processor.assembler import handle
from topology.rules import RuleSetError, load_rule_set, parse_rule_set

RULES = load_rule_set()
EXCHANGE = RULES.exchange
SUBMITTED = datetime(2025, 3, 3, 9, 0)  # Monday
SOON = SUBMITTED + timedelta(hours=1)
OLD = date(2016, 5, 2)  # issued under the 2008 law
NEW = date(2025, 2, 3)  # issued under Law 36/2024
MAN_1985 = ("001085000001", date(1985, 3, 4))  # CCCD digit 4 = 0: male, born 1900s


def case(applied, held, *, issued=OLD, expires=None, certificates=(), person=MAN_1985) -> CaseFacts:
    """A case approvable but for the class: `held` codes on the record, all issued on `issued`."""
    cccd, born = person
    return CaseFacts(
        application=Application("app-1", cccd, "01", tuple(applied), SUBMITTED, "010123456789", date_of_birth=born),
        identity=IdentityResult(match=True, phone_tied=True),
        licence=LicenceRecord(found=True, classes={c: expires for c in held}, issued_on={c: issued for c in held}),
        certificates=tuple(certificates), payments=(Payment("PAID", 135_000),))


def cert(conclusions, fit=True, signed=datetime(2025, 2, 1, 8)) -> CertificateOnFile:
    return CertificateOnFile("00001/GKSKLX/79001/25", signed, {c: fit for c in conclusions}, 3)


# --- the exchange table, one row per old class (Law 36/2024/QH15 Art. 89) -------------------------------------
TR = "TRACTOR_CERTIFICATE_UP_TO_3500KG"
EXCHANGE_ROWS = [
    # old class printed on the card, new class issued, restrictions, health certificate needed
    ("A1", "A", ("TWO_WHEELERS_UNDER_175CC_OR_14KW",), False),
    ("A2", "A", (), False),
    ("A3", "B1", (), False),
    ("A4", None, ("SPECIAL_USE_VEHICLE_CERTIFICATE_TRACTOR_1000KG",), None),  # no licence class: not renewable
    ("B11", "B", ("AUTOMATIC_TRANSMISSION_ONLY",), True),  # B1 automatic
    ("B12", "B", (TR,), True),
    ("B1", "B", (TR,), True),
    ("B2", "B", (TR,), True),
    ("C", "C", (), True),
    ("D", "D2", (), True),
    ("E", "D", (), True),
    ("FB2", "BE", (), True),
    ("FC", "CE", (), True),
    ("FD", "D2E", (), True),
    ("FE", "DE", (), True),
]


@pytest.mark.parametrize("old, new, restrictions, exam", EXCHANGE_ROWS, ids=[r[0] for r in EXCHANGE_ROWS])
def test_exchange_table(old, new, restrictions, exam):
    [renewal] = EXCHANGE.resolve([old], {old: HeldClass(old, OLD)})
    assert (renewal.old, renewal.new_class, renewal.restrictions) == (True, new, restrictions)
    # The decision without any certificate: the health rule follows the NEW class.
    d = decide(case([old], [old], expires=date(2027, 1, 1)), RULES, SOON)
    if exam is None:
        assert (d.outcome, d.reasons) == (Outcome.ESCALATED, ("CLASS_NOT_RENEWABLE",))
    elif exam:
        assert (d.outcome, d.reasons) == (Outcome.AWAITING, ("EXAM_MISSING",))
    else:
        assert (d.outcome, d.new_classes, d.restrictions) == (Outcome.APPROVED, (new,), restrictions)


def test_the_table_has_exactly_the_old_classes_and_only_2025_classes_as_targets():
    assert set(EXCHANGE.old) == {r[0] for r in EXCHANGE_ROWS}
    assert all(set(row.new_classes) <= set(RULES.classes) for row in EXCHANGE.old.values())


@pytest.mark.parametrize("held, applied, new", [("B2", "C1", "C1"), ("B1", "C1", "C1"), ("FB2", "C1E", "C1E"),
                                                ("B2", "B", "B")])
def test_the_citizen_may_ask_for_another_class_the_exchange_allows(held, applied, new):
    [renewal] = EXCHANGE.resolve([applied], {held: HeldClass(held, OLD)})
    assert (renewal.held, renewal.new_class, renewal.finding) == (held, new, None)


def test_a_class_the_exchange_does_not_allow_is_not_held():
    [renewal] = EXCHANGE.resolve(["D"], {"B2": HeldClass("B2", OLD)})
    assert renewal.finding == "CLASS_NOT_HELD"
    d = decide(case(["CE"], ["FB2"]), RULES, SOON)
    assert (d.outcome, d.reasons) == (Outcome.ESCALATED, ("CLASS_NOT_HELD",))


# --- the era: from the issue date, only for codes of both eras -------------------------------------------------
@pytest.mark.parametrize("code, issued, old, new", [
    ("B1", date(2024, 12, 31), True, "B"),     # the car licence
    ("B1", date(2025, 1, 1), False, "B1"),     # three-wheelers
    ("A1", date(2024, 12, 31), True, "A"),
    ("A1", NEW, False, "A1"),
    ("D", OLD, True, "D2"),
    ("D", NEW, False, "D"),
    ("B", OLD, False, "B"),                    # only a 2025 code: whatever the record's date says
    ("A2", NEW, True, "A"),                    # only an old code
    ("B1", None, False, "B1"),                 # no issue date: face value
])
def test_era_follows_the_issue_date(code, issued, old, new):
    [renewal] = EXCHANGE.resolve([code], {code: HeldClass(code, issued)})
    assert (renewal.old, renewal.new_class) == (old, new)


def test_before_the_licence_record_arrives_codes_are_read_at_face_value():
    assert [r.new_class for r in EXCHANGE.resolve(["A2", "B1", "B2", "A4"], None)] == ["A", "B1", "B", None]


def test_old_class_codes_on_a_certificate_speak_for_their_2025_classes():
    assert EXCHANGE.conclusions_in_2025_classes({"B2": True, "B1": True}) == {"B": True, "C1": True, "B1": True}
    assert EXCHANGE.conclusions_in_2025_classes({"E": True, "FD": False}) == {"D": True, "D2E": False}
    assert decide(case(["B2"], ["B2"], certificates=[cert(["B2"])]), RULES, SOON).outcome is Outcome.APPROVED
    assert decide(case(["B2"], ["B2"], certificates=[cert(["B2"], fit=False)]), RULES, SOON).reasons == ("UNFIT",)


# --- the two cases of the defect -------------------------------------------------------------------------------
def test_old_b1_car_licence_without_certificate_waits_for_one():
    d = decide(case(["B1"], ["B1"]), RULES, SOON)
    assert (d.outcome, d.reasons) == (Outcome.AWAITING, ("EXAM_MISSING",))
    # a certificate for new B1 (group 1, three-wheelers) does not cover the car class B (group 2)
    assert decide(case(["B1"], ["B1"], certificates=[cert(["B1"])]), RULES, SOON).reasons == ("EXAM_WRONG_CLASS",)
    d = decide(case(["B1"], ["B1"], certificates=[cert(["B"])]), RULES, SOON)
    assert (d.outcome, d.new_classes, d.restrictions) == (Outcome.APPROVED, ("B",), (TR,))


def test_new_b1_three_wheeler_licence_needs_no_certificate():
    d = decide(case(["B1"], ["B1"], issued=NEW), RULES, SOON)
    assert (d.outcome, d.new_classes, d.restrictions) == (Outcome.APPROVED, ("B1",), ())


def test_old_a2_without_certificate_is_approved_as_a():
    d = decide(case(["A2"], ["A2"]), RULES, SOON)
    assert (d.outcome, d.reasons, d.new_classes, d.restrictions) == (Outcome.APPROVED, (), ("A",), ())


def test_a4_goes_to_the_province():
    d = decide(case(["A4"], ["A4"]), RULES, SOON)
    assert (d.outcome, d.reasons) == (Outcome.ESCALATED, ("CLASS_NOT_RENEWABLE",))
    # an old code the table does not know either
    assert decide(case(["F"], ["F"]), RULES, SOON).reasons == ("CLASS_NOT_RENEWABLE",)


def test_several_classes_are_renewed_together():
    d = decide(case(["A1", "B11"], ["A1", "B11"], certificates=[cert(["B"])]), RULES, SOON)
    assert (d.outcome, d.new_classes) == (Outcome.APPROVED, ("A", "B"))
    assert d.restrictions == ("TWO_WHEELERS_UNDER_175CC_OR_14KW", "AUTOMATIC_TRANSMISSION_ONLY")


# --- old validity: the OLD licence's expiry when the record has none -------------------------------------------
WOMAN_1975 = ("001175000002", date(1975, 8, 20))  # digit 4 = 1: female, 1900s
MAN_1960 = ("001060000003", date(1960, 5, 1))
WOMAN_1960 = ("001160000004", date(1960, 5, 1))


@pytest.mark.parametrize("held, issued, person, expires", [
    ("A1", OLD, MAN_1985, None), ("A2", OLD, MAN_1985, None), ("A3", OLD, MAN_1985, None),
    ("A4", OLD, MAN_1985, date(2026, 5, 2)), ("B2", OLD, MAN_1985, date(2026, 5, 2)),
    ("C", OLD, MAN_1985, date(2021, 5, 2)), ("FC", OLD, MAN_1985, date(2021, 5, 2)),
    ("B1", date(2000, 1, 1), MAN_1960, date(2020, 5, 1)),      # until 60 for men
    ("B1", date(2000, 1, 1), WOMAN_1960, date(2015, 5, 1)),    # until 55 for women
    ("B1", date(2015, 1, 1), MAN_1960, date(2025, 1, 1)),      # issued after 50: 10 years
    ("B12", date(2010, 4, 30), MAN_1960, date(2020, 5, 1)),    # issued at 49: still until 60
    ("B12", date(2010, 5, 2), MAN_1960, date(2020, 5, 2)),     # issued the day after turning 50: 10 years
    ("B11", date(2006, 1, 1), WOMAN_1960, date(2016, 1, 1)),   # issued after 45 (woman): 10 years
    ("B1", date(2010, 1, 1), WOMAN_1975, date(2030, 8, 20)),
])
def test_old_validity(held, issued, person, expires):
    cccd, born = person
    [renewal] = EXCHANGE.resolve([held], {held: HeldClass(held, issued)}, born, sex_from_cccd(cccd))
    assert renewal.expires_on == expires


def test_old_b1_expired_by_age_goes_to_the_province_for_a_test():
    d = decide(case(["B1"], ["B1"], issued=date(2000, 1, 1), person=MAN_1960, certificates=[cert(["B"])]),
               RULES, SOON)
    assert (d.outcome, d.reasons, d.test_required) == (Outcome.ESCALATED, ("LICENCE_EXPIRED",), "FULL")
    d = decide(case(["B1"], ["B1"], issued=date(2015, 1, 1), person=MAN_1960, certificates=[cert(["B"])]),
               RULES, SOON)
    assert (d.outcome, d.test_required) == (Outcome.ESCALATED, "THEORY")  # expired 2 months ago
    d = decide(case(["B1"], ["B1"], issued=date(2010, 1, 1), person=WOMAN_1975, certificates=[cert(["B"])]),
               RULES, SOON)
    assert d.outcome is Outcome.APPROVED


def test_the_printed_expiry_wins_over_the_old_rule():
    d = decide(case(["B1"], ["B1"], issued=date(2000, 1, 1), expires=date(2027, 1, 1), person=MAN_1960,
                    certificates=[cert(["B"])]), RULES, SOON)
    assert d.outcome is Outcome.APPROVED


@pytest.mark.parametrize("cccd, sex", [("001085000001", "male"), ("001185000001", "female"),
                                       ("001205000001", "male"), ("001305000001", "female")])
def test_sex_from_the_cccd(cccd, sex):
    assert sex_from_cccd(cccd) == sex


# --- the table is data and is checked ---------------------------------------------------------------------------
def _doc():
    text = resources.files("topology").joinpath("data/class-exchange-2025.json").read_text(encoding="utf-8")
    return json.loads(text)


def test_a_target_that_is_not_a_2025_class_fails_loudly():
    doc = _doc()
    doc["old_classes"]["A2"]["new_classes"] = ["A2"]
    with pytest.raises(ValueError, match="not 2025 classes"):
        parse_class_exchange(doc, RULES.classes)


def test_a_rule_set_whose_class_table_misses_a_target_fails_loudly():
    doc = json.loads(resources.files("topology").joinpath("data/rules-2025.json").read_text(encoding="utf-8"))
    del doc["classes"]["D2"]
    with pytest.raises(RuleSetError, match="D2"):
        parse_rule_set(doc, RULES.calendar)


def test_the_exchange_is_deterministic():
    facts = case(["C1"], ["B2", "B1"])
    assert decide(facts, RULES, SOON) == decide(replace(facts), RULES, SOON)
    assert EXCHANGE.resolve(["C1"], {"B2": HeldClass("B2", OLD), "B1": HeldClass("B1", OLD)})[0].held == "B1"


# --- the processor's core: no waiting for a certificate the new class does not need -----------------------------
def _handle_all(events, strip_issued_on=False):
    state, outputs, offsets = None, [], {}
    for topic, event in events:
        offsets[topic] = offsets.get(topic, -1) + 1
        step = handle(state, event, topic, offsets[topic], RULES)
        state, outputs = step.state, outputs + step.outputs
        if strip_issued_on and state.case and state.case.licence:  # a state stored before issue dates were kept
            stored = citizen.to_json(state)
            del stored["case"]["licence"]["issued_on"]
            state = citizen.from_json(stored)
    return state, {o.kind: o.event for o in outputs}


def test_old_a2_is_approved_as_a_without_waiting_for_the_deadline():
    _, out = _handle_all(Script("a2", 1, classes=("A2",), certificate=None, expires_on=None).events())
    assert (out["approved"].new_classes, out["issuance"].new_classes, out["issuance"].restrictions) == \
        (["A"], ["A"], [])
    assert out["issuance"].classes == ["A2"]


def test_old_b1_waits_for_a_certificate_and_a_state_without_issue_dates_reads_codes_at_face_value():
    state, out = _handle_all(Script("b1", 2, classes=("B1",), certificate=None).events())
    assert "approved" not in out and state.case.missing == ["EXAM_MISSING"]
    _, out = _handle_all(Script("b1", 2, classes=("B1",), certificate=None).events(), strip_issued_on=True)
    assert out["approved"].new_classes == ["B1"]  # the pre-fix reading, no crash


def test_of_several_held_old_classes_the_least_restricted_one_is_renewed():
    """Held A1 and A2 (old), "A" asked: A2's plain A, not A1's A restricted to under 175 cm3."""
    d = decide(case(["A"], ["A1", "A2"]), RULES, SOON)
    assert (d.outcome, d.new_classes, d.restrictions) == (Outcome.APPROVED, ("A",), ())
