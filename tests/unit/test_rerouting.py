"""A record forwarded to `cases.rerouted` (it arrived on the wrong partition) against the assembler's replay guard,
which compares offsets per topic: the forward must be neither dropped as a replay nor applied twice."""
from __future__ import annotations

from types import SimpleNamespace

from tests.case_scenarios import scripts
from topology import catalogue as topics
from topology.processor.app import REROUTED_FROM, _first_position
from topology.processor.assembler import handle
from topology.rules import load_rule_set

RULES = load_rule_set()


def test_a_forwarded_certificate_decides_its_case_once_whatever_the_offsets():
    events = next(s for s in scripts() if s.name == "approved").events()
    [certificate] = [e for base, e in events if base == topics.HEALTH_EXAM_RESULTS]
    state = None
    for base, event in events:  # every fact but the certificate, at offsets far above the rerouted topic's
        if base != topics.HEALTH_EXAM_RESULTS:
            state = handle(state, event, base, 1000, RULES).state
    # the citizen's own partition of health.exam-results was at offset 500: the forwarded copy's offset 0 on
    # cases.rerouted is not comparable with it and must not be taken for a replay
    state.applied[topics.HEALTH_EXAM_RESULTS] = 500
    first = handle(state, certificate, topics.CASES_REROUTED, 0, RULES)
    assert first.note == "decided"
    assert {o.kind for o in first.outputs} >= {"approved", "issuance"}
    # a crash before the commit: the same forwarded record read again re-sends the same outputs, nothing new
    again = handle(first.state, certificate, topics.CASES_REROUTED, 0, RULES)
    assert again.note == "replay" and [o.event for o in again.outputs] == [o.event for o in first.outputs]
    # a crash before the original's commit: it is forwarded a second time, at a new offset: a duplicate
    twice = handle(again.state, certificate, topics.CASES_REROUTED, 1, RULES)
    assert twice.note == "duplicate" and twice.outputs == []


def message(topic, partition, offset, headers):
    return SimpleNamespace(topic=topic, partition=partition, offset=offset, headers=headers)


def test_a_forwarded_record_is_dead_lettered_under_where_it_arrived():
    header = (REROUTED_FROM, b"p.health.exam-results/3/41")
    assert _first_position(message("p.cases.rerouted", 1, 7, [("clinic", b"x"), header]), "p.cases.rerouted") == (
        "p.health.exam-results", 3, 41)
    assert _first_position(message("p.cases.rerouted", 1, 7, None), "p.cases.rerouted") == ("p.cases.rerouted", 1, 7)
    # only the processor writes cases.rerouted: the header on a source topic is a producer's, not trusted
    assert _first_position(message("p.health.exam-results", 2, 9, [header]), "p.cases.rerouted") == (
        "p.health.exam-results", 2, 9)
