"""The case processor on the real broker: every outcome in every order, two workers, a SIGKILL, poison input."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest

from producers.testing import group_settled
from tests.case_scenarios import T0, scripts
from tests.processor_harness import PARTITIONS, wait_for
from topology import catalogue as topics
from topology.catalogue import expected_partition
from topology.processor.assembler import tick

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DEADLINE = T0 + timedelta(days=14)


@pytest.fixture
def workers(pbus, tmp_path):
    started = []

    def start(name="w1", tick_seconds=3600):
        worker = pbus.worker(tmp_path, name, tick_seconds).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    for log in sorted(tmp_path.glob("*.log")):  # shown by pytest only when the test failed
        print(f"--- last lines of {log.name} ---", *log.read_text(errors="replace").splitlines()[-40:], sep="\n")


def copies(offset: int):
    return [replace(s, serial=s.serial + offset, name=f"{s.name}+{offset}") for s in scripts()]


def play_to_the_end(bus, cases, timeout=120, ends=None):
    """Wait until the processor consumed every input (up to `ends`, see ProcessorBus.inputs_consumed), move the
    clock past the deadline, wait for decisions."""
    try:
        wait_for(lambda: bus.inputs_consumed(ends), timeout, "the processor to consume every input")
    except AssertionError as timeout_error:
        raise AssertionError(f"{timeout_error}; (committed, end) where behind: {bus.behind}") from None
    bus.publish([(topics.CASES_CLOCK, tick(case.cccd, DEADLINE)) for case in cases])
    return wait_for(lambda: decided(bus, cases), timeout, "a decision on every case")


def decided(bus, cases):
    """The final decisions if every case has one, else None (for wait_for)."""
    finals = bus.finals()
    return finals if all(c.case_id in finals for c in cases) else None


def assert_decisions(finals, cases):
    for case in cases:
        [decision] = {e.event_id: e for e in finals[case.case_id]}.values()  # exactly one distinct decision
        assert type(decision).__name__ == "Case" + case.expected.capitalize(), case.name
        assert set(getattr(decision, "reasons", ())) == set(case.expected_reasons), case.name


def test_every_outcome_in_every_order_and_duplicates_change_nothing(pbus, workers):
    natural, reverse, doubled = copies(1000), copies(2000), copies(3000)
    workers()
    pbus.publish([pair for case in natural for pair in case.events()])
    # payment, answers and exam before the application; identity after payment
    pbus.publish([pair for case in reverse for pair in reversed(case.events())])
    pbus.publish([pair for case in doubled for pair in case.events() for _ in range(2)])
    cases = natural + reverse + doubled
    finals = play_to_the_end(pbus, cases)
    assert_decisions(finals, cases)

    approvals = {c.case_id for c in cases if c.expected == "APPROVED"}
    issued = Counter(e.case_id for _, e, _ in pbus.read(topics.ISSUANCE_REQUESTS))
    assert set(issued) == approvals and set(issued.values()) == {1}
    refunds = Counter(e.case_id for _, e, _ in pbus.read(topics.PAYMENT_REFUND_REQUESTS))
    owed = {c.case_id for c in cases if c.expected == "REJECTED" and c.payment == "PAID"}
    assert set(refunds) == owed and set(refunds.values()) == {1}
    # routed by the current province: Hà Giang (old 02) cases land on Tuyên Quang's topic (08)
    on_08 = {e.case_id for _, e, _ in pbus.read(topics.CASES_PROVINCE_PREFIX + "08")}
    assert on_08 == {c.case_id for c in cases if c.province_old == "02"}


def test_two_workers_share_the_partitions_and_decide_the_same(pbus, workers):
    cases = copies(4000)
    workers("w1"), workers("w2")
    # Records published during a rebalance are still decided (at-least-once), but faust drops acked-but-uncommitted
    # offsets of revoked partitions, so a partition it keeps may show lag until its next record and the
    # commit-based wait in play_to_the_end would not end.
    wait_for(lambda: group_settled(pbus.bootstrap, pbus.group, 2), 90,
             "both workers to join the group and the rebalance to end")
    pbus.publish([pair for case in cases for pair in case.events()])
    assert_decisions(play_to_the_end(pbus, cases), cases)


def test_sigkill_mid_flight_loses_nothing_and_issues_nothing_twice(pbus, workers):
    approvable = next(s for s in scripts() if s.name == "approved")
    cases = [replace(approvable, serial=5000 + i, name=f"kill-{i}") for i in range(400)]
    worker = workers()
    pbus.publish([pair for case in cases for pair in case.events()])
    wait_for(lambda: len(pbus.finals()) >= 40, 120, "the first decisions")
    worker.kill()  # in flight: most cases are still undecided
    decided_before_restart = len(pbus.finals())
    worker.start()
    finals = wait_for(lambda: decided(pbus, cases), 180, "a decision on every case after the restart")
    assert decided_before_restart < len(cases)
    issued = pbus.read(topics.ISSUANCE_REQUESTS)
    distinct = {(e.case_id, e.issuance_id) for _, e, _ in issued}
    assert len({case_id for case_id, _ in distinct}) == len(cases)
    assert len(distinct) == len(cases), "a case was issued under two different ids"
    assert all(len({e.event_id for e in events}) == 1 for events in finals.values())
    print(f"\nSIGKILL test: {len(cases)} cases, {decided_before_restart} decided before the kill; issuance "
          f"messages {len(issued)} for {len(distinct)} distinct issuance ids "
          f"({len(issued) - len(distinct)} re-deliveries of the same id)")


def test_poison_in_each_input_topic_goes_to_the_dlq_and_the_cases_behind_it_are_decided(pbus, workers):
    case = copies(6000)[0]
    poison = {}
    for i, base in enumerate((topics.PORTAL_APPLICATIONS, topics.HEALTH_EXAM_RESULTS, topics.PAYMENT_TRANSACTIONS,
                              topics.IDENTITY_RESULTS, topics.POLICE_LICENCE_STATUS, topics.CASES_CLOCK)):
        value = b"\x00\x00\x00\xff\xf0garbage" if i % 2 else b"not avro at all %d" % i
        pbus.publish_raw(base, case.cccd.encode(), value)
        poison[pbus.catalogue.name(base)] = value
    workers()
    pbus.publish(case.events())
    wait_for(lambda: case.case_id in pbus.finals(), 120, "the case behind the poison to be decided")
    letters = {e.original_topic: e for _, e, _ in pbus.read(topics.DLQ)}
    assert set(letters) == set(poison)
    for topic, letter in letters.items():
        assert letter.original_value == poison[topic]
        assert letter.original_key == case.cccd.encode()
        assert letter.error_code in ("BAD_MAGIC_BYTE", "UNKNOWN_SCHEMA_ID", "GARBAGE_PAYLOAD", "TRUNCATED_PAYLOAD")
        assert letter.error_text


def test_the_timer_moves_cases_past_their_deadline_without_help(pbus, workers):
    """No tick from the test: the worker's own timer finds the open cases whose deadline passed (the scripts are
    dated June 2025, so by the wall clock every deadline has passed) and sends their ClockTicks."""
    waiting = [c for c in copies(7000) if c.name.startswith(("exam-missing", "payment-missing"))]
    workers(tick_seconds=1)
    pbus.publish([pair for case in waiting for pair in case.events()])
    finals = wait_for(lambda: decided(pbus, waiting), 120, "the timer to escalate the waiting cases")
    assert_decisions(finals, waiting)  # escalated with what is missing + DEADLINE_EXCEEDED


def test_deadlines_fire_after_a_restart_that_restores_the_index_from_its_changelog(pbus, workers):
    """Issue 15: the timer reads the deadline index, not the citizens. A worker indexes waiting cases and stops
    before its timer runs; a new worker on an empty data folder (everything restored from the changelogs) ticks
    them from the restored index alone: no input reaches it after the restart."""
    waiting = [c for c in copies(8000) if c.name.startswith(("exam-missing", "payment-missing"))]
    first = workers("before", tick_seconds=3600)
    pbus.publish([pair for case in waiting for pair in case.events()])
    wait_for(pbus.inputs_consumed, 120, "the first worker to consume every input")
    first.stop()
    assert not pbus.finals(), "decided before the restart: the test would prove nothing"
    # co-partitioned: each citizen's entries are on the citizen's partition of the index's changelog
    latest = {(r.partition, r.key): json.loads(r.value) if r.value else {} for r in pbus.changelog("deadlines")}
    indexed = {cccd: partition for (partition, key), entries in latest.items() for cccd in entries
               if key.startswith(b"%d/" % partition)}
    assert indexed == {c.cccd: expected_partition(c.cccd.encode(), PARTITIONS) for c in waiting}
    workers("after", tick_seconds=1)  # another data folder: no RocksDB file of the first worker
    finals = wait_for(lambda: decided(pbus, waiting), 120, "the restored index to escalate the waiting cases")
    assert_decisions(finals, waiting)  # escalated with what is missing + DEADLINE_EXCEEDED
