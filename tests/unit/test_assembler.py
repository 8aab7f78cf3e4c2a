"""The case processor's pure core: every outcome, in every order that matters, duplicates and replays."""
from __future__ import annotations

import itertools
import random
from datetime import timedelta

import pytest

from tests.case_scenarios import T0, scripts
from topology.processor.assembler import handle, tick
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
