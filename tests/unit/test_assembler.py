"""The case processor's pure core: every outcome, in every order that matters, duplicates and replays."""
from __future__ import annotations

import itertools
import random
from datetime import timedelta

import pytest

from tests.case_scenarios import T0, Script, scripts
from topology.processor import citizen
from topology.processor.assembler import handle, tick
from topology.processor.citizen import deadline
from topology.processor.outputs import output_id
from topology.rules import load_rule_set

RULES = load_rule_set()
DEADLINE_TICK = T0 + timedelta(days=14)  # well past 5 working days


def run(events, rules=RULES, to_deadline=True):
    """Feed (topic, event) pairs through the core for one citizen; return (state, outputs)."""
    state, outputs, offsets = None, [], {}
    for topic, event in events:
        offsets[topic] = offsets.get(topic, -1) + 1
        step = handle(state, event, topic, offsets[topic], rules)
        state = step.state
        outputs += step.outputs
    if to_deadline and events:
        step = handle(state, tick(events[0][1].cccd, DEADLINE_TICK), "clock", 0, rules)
        state, outputs = step.state, outputs + step.outputs
    return state, outputs


def decision_of(outputs):
    finals = [o for o in outputs if o.kind in ("approved", "rejected", "escalated")]
    assert len(finals) == 1, [o.kind for o in outputs]
    event = finals[0].event
    return finals[0].kind.upper(), tuple(getattr(event, "reasons", ()))


@pytest.mark.parametrize("script", scripts(), ids=lambda s: s.name)
def test_each_script_gets_its_outcome(script):
    state, outputs = run(script.events())
    outcome, reasons = decision_of(outputs)
    assert outcome == script.expected
    assert set(reasons) == set(script.expected_reasons)
    kinds = [o.kind for o in outputs]
    assert kinds.count("issuance") == (1 if outcome == "APPROVED" else 0)
    paid_and_rejected = outcome == "REJECTED" and script.payment == "PAID"
    refunds = [o.event for o in outputs if o.kind.startswith("refund")]
    assert [r.amount_vnd for r in refunds] == ([135000] if paid_and_rejected else [])
    assert {"opened", "identity-request", "licence-request"} <= set(kinds)


@pytest.mark.parametrize("script", scripts(), ids=lambda s: s.name)
def test_order_does_not_change_the_decision(script):
    events = script.events()
    expected = decision_of(run(events)[1])
    orders = list(itertools.permutations(events)) if len(events) <= 5 else \
        [random.Random(seed).sample(events, len(events)) for seed in range(60)]
    for order in orders:
        assert decision_of(run(list(order))[1]) == expected, [type(e).__name__ for _, e in order]


@pytest.mark.parametrize("script", scripts(), ids=lambda s: s.name)
def test_duplicates_change_nothing(script):
    events = script.events()
    _, once = run(events)
    _, twice = run([e for pair in zip(events, events) for e in pair])
    assert [(o.kind, o.event.event_id) for o in twice] == [(o.kind, o.event.event_id) for o in once]


def test_replay_after_crash_re_emits_the_same_outputs():
    script = scripts()[0]
    state, outputs, offsets = None, [], {}
    steps = []
    for topic, event in script.events():
        offsets[topic] = offsets.get(topic, -1) + 1
        step = handle(state, event, topic, offsets[topic], RULES)
        state = step.state
        steps.append((topic, offsets[topic], event, step.outputs))
    # The last input decided the case; replaying it (as after a crash before the offset commit) sends the same
    topic, offset, event, first = steps[-1]
    again = handle(state, event, topic, offset, RULES)
    assert again.note == "replay"
    assert [o.event for o in again.outputs] == [o.event for o in first]
    assert {o.kind for o in first} >= {"approved", "issuance"}


def test_awaiting_notice_after_two_working_days_then_escalation():
    script = next(s for s in scripts() if s.name == "exam-missing")
    state, outputs = run(script.events(), to_deadline=False)
    assert [o.kind for o in outputs] == ["opened", "identity-request", "licence-request"]
    # Monday 09:00 + 2 working days = Wednesday 09:00: the notice is due, listing what is missing
    wednesday = T0 + timedelta(days=2, minutes=1)
    step = handle(state, tick(script.cccd, wednesday), "clock", 0, RULES)
    assert [o.kind for o in step.outputs] == ["awaiting"]
    assert step.outputs[0].event.missing == ["EXAM_MISSING"]
    # Monday + 5 working days = next Monday: escalated
    step = handle(step.state, tick(script.cccd, T0 + timedelta(days=7, minutes=1)), "clock", 1, RULES)
    assert [o.kind for o in step.outputs] == ["escalated"]


def test_output_ids_are_deterministic_and_distinct_per_kind():
    script = scripts()[0]
    _, a = run(script.events())
    _, b = run(script.events())
    assert [o.event.event_id for o in a] == [o.event.event_id for o in b]
    assert len({o.event.event_id for o in a}) == len(a)


def test_old_province_is_routed_by_its_current_code():
    script = next(s for s in scripts() if s.name == "approved-old-province")
    _, outputs = run(script.events())
    assert {o.event.province for o in outputs if hasattr(o.event, "province")} == {"08"}


# --- fees: payments add up, the excess and a rejected case's money go back, once -------------------------------
def refunds_of(outputs):
    return [(o.event.transaction_id, o.event.amount_vnd, tuple(o.event.reasons)) for o in outputs
            if o.kind.startswith("refund")]


def tx(script, i):
    """The transaction id of the script's i-th payment (see Script.events)."""
    return [e for t, e in script.events() if type(e).__name__ == "PaymentTransaction"][i].transaction_id


REVOKED = ("LICENCE_REVOKED",)
FEE_CASES = [
    # script, refunds as (index of the transaction refunded, amount, reasons)
    (Script("underpaid", 101, amounts=(100_000,), expected="ESCALATED",
            expected_reasons=("PAYMENT_INSUFFICIENT", "DEADLINE_EXCEEDED")), []),  # kept for the province
    (Script("paid-in-two", 102, amounts=(100_000, 35_000)), []),
    (Script("overpaid", 103, amounts=(1_350_000,)), [(0, 1_215_000, ("OVERPAID",))]),
    (Script("overpaid-in-two", 104, amounts=(100_000, 100_000)), [(1, 65_000, ("OVERPAID",))]),  # latest first
    (Script("rejected-paid-in-two", 105, revoked=True, amounts=(100_000, 35_000), expected="REJECTED",
            expected_reasons=REVOKED), [(1, 35_000, REVOKED), (0, 100_000, REVOKED)]),
    (Script("rejected-overpaid", 106, revoked=True, amounts=(1_350_000,), expected="REJECTED",
            expected_reasons=REVOKED), [(0, 1_350_000, REVOKED)]),
    (Script("escalated-overpaid", 107, licence_found=False, amounts=(200_000,), expected="ESCALATED",
            expected_reasons=("LICENCE_NOT_FOUND",)), [(0, 65_000, ("OVERPAID",))]),
]


@pytest.mark.parametrize("script, refunds", FEE_CASES, ids=lambda c: getattr(c, "name", ""))
def test_fees_in_every_order_and_twice(script, refunds):
    events = script.events()
    expected = [(tx(script, i), amount, reasons) for i, amount, reasons in refunds]
    orders = [random.Random(seed).sample(events, len(events)) for seed in range(30)]
    for order in [events, list(reversed(events)), [e for pair in zip(events, events) for e in pair], *orders]:
        _, outputs = run(order)
        assert decision_of(outputs) == (script.expected, script.expected_reasons)
        assert sorted(refunds_of(outputs)) == sorted(expected)  # a payment after the decision comes after it
        assert [o.kind for o in outputs].count("issuance") == (script.expected == "APPROVED")


def test_an_overpaid_approval_says_so():
    _, outputs = run(FEE_CASES[2][0].events())
    assert [o.event.warnings for o in outputs if o.kind == "approved"] == [["OVERPAID"]]


def late_payment(script, amount=135_000):
    from tests.case_scenarios import SRC
    from schemas import models
    return ("payment.transactions", models.PaymentTransaction(
        event_id=f"00000000-0000-4000-8000-{script.serial:012d}", occurred_at=DEADLINE_TICK + timedelta(days=1),
        source=SRC, transaction_id=f"late-{script.serial}", application_id=script.application_id,
        cccd=script.cccd, status="PAID", amount_vnd=amount, gateway_reference="GW-late"))


@pytest.mark.parametrize("name, reasons", [
    ("approved", ("OVERPAID",)),                                     # the fee was already held
    ("revoked", ("LICENCE_REVOKED",)),                               # a rejected case keeps nothing
    ("payment-missing", ("PAYMENT_MISSING", "DEADLINE_EXCEEDED")),   # closed at the deadline without the fee
])
def test_a_payment_for_a_decided_case_is_refunded_once(name, reasons):
    script = next(s for s in scripts() if s.name == name)
    state, before = run(script.events())
    topic, event = late_payment(script)
    step = handle(state, event, topic, 99, RULES)
    assert refunds_of(step.outputs) == [(event.transaction_id, 135_000, reasons)]
    assert handle(step.state, event, topic, 100, RULES).outputs == []  # the same transaction again: nothing
    assert len({o.event.event_id for o in before + step.outputs}) == len(before) + 1


@pytest.mark.parametrize("name", ["rejected-paid-in-two", "pay-short-cert-expired"])
def test_a_replay_re_sends_the_same_refunds_and_awaiting_states(name):
    script = next(s for s, _ in FEE_CASES + AWAITING_AT_ONCE if s.name == name)
    state, offsets, steps = None, {}, []
    for topic, event in script.events():
        offsets[topic] = offsets.get(topic, -1) + 1
        step = handle(state, event, topic, offsets[topic], RULES)
        state = step.state
        steps.append((topic, offsets[topic], event, step.outputs))
    if name == "rejected-paid-in-two":  # refunded at the decision, then the payment that came after it
        assert [len(refunds_of(outputs)) for *_, outputs in steps][-2:] == [1, 1]
    for topic, offset, event, first in steps:  # after a crash, every input is replayed: the same outputs again
        again = handle(state, event, topic, offset, RULES)
        assert again.note == "replay"
        assert [o.event for o in again.outputs] == [o.event for o in first]


def test_a_state_from_before_per_transaction_refunds_is_upgraded():
    """A rejected case stored with one `payment` and a "refund" output: a replay re-sends that refund as it was,
    and a payment arriving later is refunded on its own."""
    script = next(s for s in scripts() if s.name == "revoked")
    state, offsets, last = None, {}, None
    for topic, event in script.events():
        offsets[topic] = offsets.get(topic, -1) + 1
        state = handle(state, event, topic, offsets[topic], RULES).state
        last = (topic, offsets[topic], event)
    stored = citizen.to_json(state)  # as the changelog holds it, then in the shape of before
    del stored["version"]
    case = stored["case"]
    [(kind, refund)] = case.pop("refunds").items()
    [payment] = case.pop("payments").values()
    case.pop("fee")
    case["payment"] = {k: v for k, v in payment.items() if k != "at"}
    case["emitted"]["refund"] = case["emitted"].pop(kind)
    state = citizen.from_json(stored)
    topic, offset, event = last
    [old] = [o for o in handle(state, event, topic, offset, RULES).outputs if o.kind == "refund"]
    assert (old.event.transaction_id, old.event.amount_vnd, old.event.reasons) == (
        refund["transaction_id"], 135_000, ["LICENCE_REVOKED"])
    topic, late = late_payment(script)
    step = handle(state, late, topic, 99, RULES)
    assert refunds_of(step.outputs) == [(late.transaction_id, 135_000, ("LICENCE_REVOKED",))]


# --- what blocks a case is shown at once, not at the 2-working-day notice ---------------------------------------
AWAITING_AT_ONCE = [
    (Script("cert-expired", 111, certificate="expired"), ["EXAM_EXPIRED"]),
    (Script("cert-wrong-class", 112, certificate="wrong-class"), ["EXAM_WRONG_CLASS"]),
    (Script("cert-revoked", 113, certificate="revoked"), ["EXAM_MISSING"]),  # a revoked certificate does not count
    (Script("pay-failed", 114, payment="FAILED"), ["PAYMENT_FAILED"]),
    (Script("pay-short", 115, amounts=(100_000,)), ["PAYMENT_INSUFFICIENT"]),
    (Script("pay-short-cert-expired", 116, certificate="expired", amounts=(100_000,)),
     ["EXAM_EXPIRED", "PAYMENT_INSUFFICIENT"]),
]


@pytest.mark.parametrize("script, reasons", AWAITING_AT_ONCE, ids=lambda c: getattr(c, "name", ""))
def test_a_blocked_case_shows_its_reasons_at_once(script, reasons):
    for order in (script.events(), list(reversed(script.events()))):
        state, outputs = run(order, to_deadline=False)  # every fact in, no time has passed
        awaiting = [o for o in outputs if o.kind.startswith("awaiting")]
        assert awaiting and awaiting[-1].event.missing == reasons
        assert awaiting[-1].event.event_id == output_id(script.case_id, "awaiting/" + ",".join(reasons))
        assert len({tuple(o.event.missing) for o in awaiting}) == len(awaiting)  # once per change
        assert not {"approved", "rejected", "escalated"} & {o.kind for o in outputs}
    # The notice after 2 working days and the escalation after 5 stay as they were; the worker's timer still
    # ticks the case at the notice time.
    assert state.case.status == "OPEN" and deadline(state) <= T0 + timedelta(days=2, minutes=1)
    step = handle(state, tick(script.cccd, T0 + timedelta(days=2, minutes=1)), "clock", 0, RULES)
    assert [(o.kind, o.event.missing) for o in step.outputs] == [("awaiting", reasons)]
    step = handle(step.state, tick(script.cccd, T0 + timedelta(days=7, minutes=1)), "clock", 1, RULES)
    assert decision_of(step.outputs) == ("ESCALATED", (*reasons, "DEADLINE_EXCEEDED"))


def test_facts_on_their_way_wait_for_the_notice():
    """No certificate yet, no payment yet: nothing is wrong, so nothing is shown before the notice."""
    for name in ("exam-missing", "payment-missing"):
        script = next(s for s in scripts() if s.name == name)
        _, outputs = run(script.events(), to_deadline=False)
        assert [o.kind for o in outputs] == ["opened", "identity-request", "licence-request"]


@pytest.mark.parametrize("script, shown", [
    (Script("revoked-unpaid", 121, revoked=True, payment=None), ["PAYMENT_MISSING", "LICENCE_REVOKED"]),
    (Script("not-found-unpaid", 122, licence_found=False, payment=None), ["PAYMENT_MISSING", "LICENCE_NOT_FOUND"]),
    (Script("unfit-unpaid", 123, certificate="unfit", payment=None), ["PAYMENT_MISSING", "UNFIT"]),
], ids=lambda c: getattr(c, "name", ""))
def test_a_known_blocker_is_shown_while_other_facts_are_still_on_their_way(script, shown):
    """The domain: what blocks a case (a licence not found or revoked, an unfit exam) is visible as soon as it is
    known, even while the payment is still to come; the decision itself still waits for every fact."""
    state, outputs = run(script.events(), to_deadline=False)
    awaiting = [o for o in outputs if o.kind.startswith("awaiting")]
    assert awaiting and sorted(awaiting[-1].event.missing) == sorted(shown)
    assert not {"approved", "rejected", "escalated"} & {o.kind for o in outputs}


# --- the agent's table boundary and its batches (topology/processor/app.py) --------------------------------------
def test_the_encoded_state_is_what_fausts_json_serializer_wrote():
    """The citizens table's serializer is raw and the agent encodes the state itself: the bytes must be what faust's
    json codec wrote before, so a table (and changelog) written by either reads alike."""
    from faust.serializers import codecs

    state, _ = run(next(s for s in scripts() if s.name == "revoked").events())
    data = citizen.encode(state)
    assert data == codecs.dumps("json", citizen.to_json(state))
    assert citizen.decode(data) == state and citizen.decode(None) is None


def test_a_batch_rebuilds_a_state_an_input_failed_half_way_through():
    """An input that fails inside handle() leaves the state half-changed; the batch rebuilds it from the table's
    value and the batch's inputs before it, as they left it."""
    from topology.processor.app import _Batch

    events = scripts()[0].events()
    stored_state, _ = run(events[:1], to_deadline=False)
    stored = citizen.encode(stored_state)
    batch, state = _Batch(), citizen.decode(stored)
    key = events[0][1].cccd.encode()
    for offset, (topic, event) in enumerate(events[1:3], start=100):
        state = handle(state, event, topic, offset, RULES).state
        batch.applied.setdefault(key, []).append((event, topic, offset))
    expected = citizen.to_json(state)
    state.applied["broken"] = 1  # a change made before the failure
    state.certificates.clear()
    assert citizen.to_json(batch.rebuild(key, stored, RULES)) == expected
